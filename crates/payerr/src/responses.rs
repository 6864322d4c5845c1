//! How a dialect answers, as data: the optional `[responses]` table of a catalog
//! (docs/catalog-format.md) and the pure rendering of a provider's answer from it. `payerr simulate`
//! serves these answers; the library only builds the status and body.
//!
//! A body is a JSON template whose placeholders (`{id}`, `{code}`, `{message}`, `{type}`, `{reason}`,
//! `{status}`) each stand for one whole JSON value: `{code}` becomes a number or a string per the
//! dialect's `code_format`, the others JSON-escaped strings (or `null` when there is no value).

use std::fmt;
use std::sync::Arc;

use crate::catalog::{CodeFormat, Dialect, Selector};
use crate::json::write_str;
use crate::verdict::Outcome;

/// The `[responses]` table of a dialect, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Responses {
    /// The answer when the operation succeeded (only `{id}` is available).
    pub success: Body,
    /// The pending or unknown-outcome answer given before the final one (only `{id}` is available).
    pub pending: Option<Body>,
    /// The answer for a documented code.
    pub error: ErrorBody,
    /// The code answered for an operation that does not exist.
    pub not_found: Option<CodeRef>,
    /// The code answered when the service is unavailable (the request was not processed).
    pub service_unavailable: Option<CodeRef>,
    /// The code answered for an internal or system error (the request may have run).
    pub internal_error: Option<CodeRef>,
}

/// A body template with its HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    /// HTTP status of the answer.
    pub http_status: u16,
    /// The body.
    pub template: Template,
}

/// The answer for a documented code: one template, the HTTP status chosen by scope, then by range,
/// then the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    /// HTTP status when no scope or range below applies.
    pub http_status: u16,
    /// HTTP status per scope (typed-error's `type`), compared without case.
    pub by_scope: Vec<(Arc<str>, u16)>,
    /// HTTP status per numeric code range, first match wins.
    pub by_range: Vec<StatusRange>,
    /// Value of `{status}` for a code whose entry documents no status.
    pub default_status: Option<String>,
    /// The body.
    pub template: Template,
}

/// An HTTP status for the numeric codes `from..=to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    /// First code, inclusive.
    pub from: u64,
    /// Last code, inclusive.
    pub to: u64,
    /// HTTP status of those codes.
    pub http_status: u16,
}

/// A documented code named by the `[responses]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRef {
    /// The provider's code.
    pub code: String,
    /// Its scope, when the dialect has one.
    pub scope: Option<String>,
    /// Its reason, for a code documented more than once.
    pub reason: Option<String>,
}

/// A placeholder of a body template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// `{id}`: the operation id, a string.
    Id,
    /// `{code}`: the provider code, a number or a string per the dialect's `code_format`.
    Code,
    /// `{message}`: the provider's message for the code, as documented.
    Message,
    /// `{type}`: the code's scope (typed-error's `type`), or `null`.
    Type,
    /// `{reason}`: the code's reason (portone's `status_reason`), else the message.
    Reason,
    /// `{status}`: the operation status documented for the code, else `default_status`, else `null`.
    Status,
}

impl Placeholder {
    /// Every placeholder, in the order the documentation lists them.
    pub const ALL: &'static [Placeholder] = &[
        Placeholder::Id,
        Placeholder::Code,
        Placeholder::Message,
        Placeholder::Type,
        Placeholder::Reason,
        Placeholder::Status,
    ];

    /// The name written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Id => "id",
            Placeholder::Code => "code",
            Placeholder::Message => "message",
            Placeholder::Type => "type",
            Placeholder::Reason => "reason",
            Placeholder::Status => "status",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

/// A JSON body with placeholders. Any `{name}` with `name` made of `[a-z0-9_]` is a placeholder: JSON
/// itself never has a bare word right after `{`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// An unknown `{name}` in a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPlaceholder {
    /// Byte offset of the `{` in the template text.
    pub offset: usize,
    /// The name between the braces.
    pub name: String,
}

impl fmt::Display for UnknownPlaceholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<String> = Placeholder::ALL
            .iter()
            .map(|p| format!("{{{}}}", p.name()))
            .collect();
        write!(
            f,
            "unknown placeholder `{{{}}}` (known: {})",
            self.name,
            known.join(", ")
        )
    }
}

/// What a template is filled with. `None` renders `null`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Values<'a> {
    /// `{id}`.
    pub id: &'a str,
    /// `{code}`.
    pub code: Option<&'a str>,
    /// `{message}`.
    pub message: Option<&'a str>,
    /// `{type}`.
    pub scope: Option<&'a str>,
    /// `{reason}`.
    pub reason: Option<&'a str>,
    /// `{status}`.
    pub status: Option<&'a str>,
}

impl Template {
    /// Splits `text` into literal JSON and placeholders; the first unknown placeholder is an error.
    pub fn parse(text: &str) -> Result<Template, UnknownPlaceholder> {
        let bytes = text.as_bytes();
        let mut parts = Vec::new();
        let (mut literal_from, mut at) = (0, 0);
        while at < bytes.len() {
            if bytes[at] != b'{' {
                at += 1;
                continue;
            }
            let name_len = bytes[at + 1..]
                .iter()
                .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || **b == b'_')
                .count();
            if name_len == 0 || bytes.get(at + 1 + name_len) != Some(&b'}') {
                at += 1;
                continue;
            }
            let name = &text[at + 1..at + 1 + name_len];
            let placeholder = Placeholder::ALL
                .iter()
                .copied()
                .find(|p| p.name() == name)
                .ok_or_else(|| UnknownPlaceholder {
                    offset: at,
                    name: name.to_owned(),
                })?;
            if literal_from < at {
                parts.push(Part::Text(text[literal_from..at].to_owned()));
            }
            parts.push(Part::Value(placeholder));
            at += name_len + 2;
            literal_from = at;
        }
        if literal_from < text.len() {
            parts.push(Part::Text(text[literal_from..].to_owned()));
        }
        Ok(Template { parts })
    }

    /// The placeholders used, in order of appearance.
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Value(v) => Some(*v),
            Part::Text(_) => None,
        })
    }

    /// The body with every placeholder replaced by its JSON value.
    pub fn render(&self, values: &Values<'_>, format: CodeFormat) -> String {
        let mut out = Vec::with_capacity(128);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.extend_from_slice(text.as_bytes()),
                Part::Value(Placeholder::Code) => match values.code {
                    Some(code) if format == CodeFormat::Numeric && is_json_integer(code) => {
                        out.extend_from_slice(code.as_bytes())
                    }
                    code => write_opt_str(&mut out, code),
                },
                Part::Value(Placeholder::Id) => write_str(&mut out, values.id),
                Part::Value(Placeholder::Message) => write_opt_str(&mut out, values.message),
                Part::Value(Placeholder::Type) => write_opt_str(&mut out, values.scope),
                Part::Value(Placeholder::Reason) => write_opt_str(&mut out, values.reason),
                Part::Value(Placeholder::Status) => write_opt_str(&mut out, values.status),
            }
        }
        // Built from UTF-8 text and escaped UTF-8 strings only.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

fn write_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(v) => write_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// Decimal digits without a superfluous leading zero: what JSON accepts as a number.
fn is_json_integer(code: &str) -> bool {
    !code.is_empty()
        && code.bytes().all(|b| b.is_ascii_digit())
        && (code == "0" || !code.starts_with('0'))
}

/// Which code to answer: as sent in `X-Simulate-Code`, `X-Simulate-Type` and `X-Simulate-Reason`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CodeQuery<'a> {
    /// The provider's code.
    pub code: &'a str,
    /// Its scope (typed-error's `type`).
    pub scope: Option<&'a str>,
    /// Its reason (portone's `status_reason`), for a code documented more than once.
    pub reason: Option<&'a str>,
}

/// Why a code cannot be answered in a dialect. The messages name the dialect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeError {
    /// Neither an entry nor a documented range has this code.
    UnknownCode {
        /// Dialect id.
        dialect: String,
        /// The code asked for.
        code: String,
    },
    /// A scope was given to a dialect without scopes.
    NoScopes {
        /// Dialect id.
        dialect: String,
    },
    /// The scope is not one the dialect knows.
    UnknownScope {
        /// Dialect id.
        dialect: String,
        /// The scope asked for.
        scope: String,
        /// The dialect's scopes.
        known: Vec<String>,
    },
    /// A reason was given to a dialect without reasons.
    NoReasons {
        /// Dialect id.
        dialect: String,
    },
    /// None of the code's documented meanings has this reason.
    UnknownReason {
        /// Dialect id.
        dialect: String,
        /// The code asked for.
        code: String,
        /// The reason asked for.
        reason: String,
        /// The code's documented reasons.
        known: Vec<String>,
    },
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeError::UnknownCode { dialect, code } => write!(
                f,
                "code `{code}` is not documented in dialect `{dialect}` (see `payerr catalog show {dialect}`)"
            ),
            CodeError::NoScopes { dialect } => {
                write!(f, "dialect `{dialect}` has no type (scope) field")
            }
            CodeError::UnknownScope {
                dialect,
                scope,
                known,
            } => write!(
                f,
                "type `{scope}` is not one of dialect `{dialect}`: {}",
                known.join(", ")
            ),
            CodeError::NoReasons { dialect } => {
                write!(f, "dialect `{dialect}` has no reason field")
            }
            CodeError::UnknownReason {
                dialect,
                code,
                reason,
                known,
            } => write!(
                f,
                "code `{code}` of dialect `{dialect}` is not documented with reason `{reason}`: {}",
                known.join(", ")
            ),
        }
    }
}

impl std::error::Error for CodeError {}

/// A rendered provider answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub http_status: u16,
    /// JSON body.
    pub body: String,
    /// The provider code answered; `None` for the success and pending bodies.
    pub code: Option<Arc<str>>,
    /// What the answer says happened, per the catalog's decision for the code.
    pub outcome: Outcome,
}

/// A code resolved against a dialect: what fills the error template.
#[derive(Clone, Debug)]
pub(crate) struct Resolved<'d> {
    pub code: &'d str,
    pub scope: Option<&'d str>,
    pub reason: Option<&'d str>,
    pub message: &'d str,
    pub status: Option<&'d str>,
    pub outcome: Outcome,
}

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The scopes a dialect knows: those of its entries and of its scope rules, in document order.
pub(crate) fn known_scopes(dialect: &Dialect) -> Vec<&str> {
    let from_entries = dialect.entries.iter().filter_map(|e| e.scope.as_deref());
    let from_rules = dialect
        .status_rules
        .iter()
        .filter_map(|r| match &r.selector {
            Selector::Scope(s) => Some(s.as_str()),
            _ => None,
        });
    let mut scopes: Vec<&str> = Vec::new();
    for scope in from_entries.chain(from_rules) {
        if !scopes.iter().any(|s| same(s, scope)) {
            scopes.push(scope);
        }
    }
    scopes
}

/// Resolves a code the way the matcher reads it back: the scope narrows only when it names one of
/// the code's documented scopes, the reason picks one meaning, and the first documented meaning is
/// taken when nothing narrows further. A numeric code inside a documented range is answered with the
/// range's name as its message.
pub(crate) fn resolve<'d>(
    dialect: &'d Dialect,
    query: &CodeQuery<'d>,
) -> Result<Resolved<'d>, CodeError> {
    let id = || dialect.id.to_string();
    let code = query.code.trim();
    // The scope as the catalog spells it, so that the answer looks like the provider's.
    let scope = match query.scope {
        None => None,
        Some(_) if dialect.envelope.scope.is_empty() => {
            return Err(CodeError::NoScopes { dialect: id() })
        }
        Some(scope) => {
            let known = known_scopes(dialect);
            let found = known.iter().copied().find(|k| same(k, scope));
            Some(found.ok_or_else(|| CodeError::UnknownScope {
                dialect: id(),
                scope: scope.to_owned(),
                known: known.iter().map(|s| s.to_string()).collect(),
            })?)
        }
    };
    if query.reason.is_some() && dialect.envelope.reason.is_empty() {
        return Err(CodeError::NoReasons { dialect: id() });
    }
    let mut entries: Vec<_> = dialect.entries_for(code).collect();
    if entries.is_empty() {
        let range = dialect
            .range_for(code)
            .ok_or_else(|| CodeError::UnknownCode {
                dialect: id(),
                code: code.to_owned(),
            })?;
        return Ok(Resolved {
            code,
            scope,
            reason: query.reason.or(Some(&range.name)),
            message: &range.name,
            status: None,
            outcome: range.decision.outcome,
        });
    }
    if let Some(scope) = scope {
        if entries
            .iter()
            .any(|e| e.scope.as_deref().is_some_and(|s| same(s, scope)))
        {
            entries.retain(|e| e.scope.as_deref().is_some_and(|s| same(s, scope)));
        }
    }
    if let Some(reason) = query.reason {
        let known: Vec<String> = entries
            .iter()
            .filter_map(|e| e.reason.as_deref().map(str::to_owned))
            .collect();
        if !known.is_empty() {
            entries.retain(|e| e.reason.as_deref().is_some_and(|r| same(r, reason)));
            if entries.is_empty() {
                return Err(CodeError::UnknownReason {
                    dialect: id(),
                    code: code.to_owned(),
                    reason: reason.to_owned(),
                    known,
                });
            }
        }
    }
    let entry = entries[0];
    Ok(Resolved {
        code: &entry.code,
        scope: scope.or(entry.scope.as_deref()),
        reason: entry
            .reason
            .as_deref()
            .or(query.reason)
            .or(Some(&entry.message)),
        message: &entry.message,
        status: entry.status.as_deref(),
        outcome: entry.decision.outcome,
    })
}

/// A dialect's answers: its `[responses]` table read against its entries and ranges.
#[derive(Clone, Copy, Debug)]
pub struct Answers<'d> {
    dialect: &'d Dialect,
    responses: &'d Responses,
}

impl<'d> Answers<'d> {
    /// The answers of `dialect`, when its catalog has a `[responses]` table.
    pub fn of(dialect: &'d Dialect) -> Option<Answers<'d>> {
        dialect
            .responses
            .as_ref()
            .map(|responses| Answers { dialect, responses })
    }

    /// The success answer for operation `id`.
    pub fn success(&self, id: &str) -> Answer {
        self.body(&self.responses.success, id, Outcome::Succeeded)
    }

    /// The pending or unknown-outcome answer for operation `id`, when the dialect has one.
    pub fn pending(&self, id: &str) -> Option<Answer> {
        let body = self.responses.pending.as_ref()?;
        Some(self.body(body, id, Outcome::Pending))
    }

    fn body(&self, body: &Body, id: &str, outcome: Outcome) -> Answer {
        let values = Values {
            id,
            ..Values::default()
        };
        Answer {
            http_status: body.http_status,
            body: body
                .template
                .render(&values, self.dialect.envelope.code_format),
            code: None,
            outcome,
        }
    }

    /// The answer for a documented code (or a numeric code inside a documented range), with the
    /// document's message, in the dialect's error envelope and HTTP status.
    pub fn code(&self, query: &CodeQuery<'_>, id: &str) -> Result<Answer, CodeError> {
        let resolved = resolve(self.dialect, query)?;
        let error = &self.responses.error;
        let values = Values {
            id,
            code: Some(resolved.code),
            message: Some(resolved.message),
            scope: resolved.scope,
            reason: resolved.reason,
            status: resolved.status.or(error.default_status.as_deref()),
        };
        Ok(Answer {
            http_status: self.http_status(resolved.scope, resolved.code),
            body: error
                .template
                .render(&values, self.dialect.envelope.code_format),
            code: Some(resolved.code.into()),
            outcome: resolved.outcome,
        })
    }

    /// The HTTP status of a code's answer: by scope, else by range, else the default.
    fn http_status(&self, scope: Option<&str>, code: &str) -> u16 {
        let error = &self.responses.error;
        let by_scope = scope.and_then(|scope| {
            error
                .by_scope
                .iter()
                .find(|(s, _)| same(s, scope))
                .map(|(_, status)| *status)
        });
        let by_range = || {
            let n: u64 = code.parse().ok()?;
            error
                .by_range
                .iter()
                .find(|r| (r.from..=r.to).contains(&n))
                .map(|r| r.http_status)
        };
        by_scope.or_else(by_range).unwrap_or(error.http_status)
    }

    fn reference(&self, code: &CodeRef, id: &str) -> Option<Answer> {
        let query = CodeQuery {
            code: &code.code,
            scope: code.scope.as_deref(),
            reason: code.reason.as_deref(),
        };
        // Lint resolved every reference when the catalog was read.
        self.code(&query, id).ok()
    }

    /// The answer for an operation `id` that does not exist: the dialect's not-found code, else a
    /// 404 in its error envelope with code `not_found`.
    pub fn not_found(&self, id: &str) -> Answer {
        if let Some(answer) = self
            .responses
            .not_found
            .as_ref()
            .and_then(|c| self.reference(c, id))
        {
            return answer;
        }
        let values = Values {
            id,
            code: Some("not_found"),
            message: Some("Not found"),
            ..Values::default()
        };
        Answer {
            http_status: 404,
            body: self
                .responses
                .error
                .template
                .render(&values, self.dialect.envelope.code_format),
            code: None,
            outcome: Outcome::Failed,
        }
    }

    /// The dialect's service-unavailable code, when it documents one.
    pub fn service_unavailable(&self, id: &str) -> Option<Answer> {
        let code = self.responses.service_unavailable.as_ref()?;
        self.reference(code, id)
    }

    /// The dialect's internal or system error code, when it documents one.
    pub fn internal_error(&self, id: &str) -> Option<Answer> {
        let code = self.responses.internal_error.as_ref()?;
        self.reference(code, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            id: "op_\"1\"",
            code: Some("1004"),
            message: Some("line\nbreak"),
            scope: None,
            reason: Some("R"),
            status: Some("F"),
        }
    }

    #[test]
    fn placeholders_become_json_values_and_the_rest_is_kept_as_written() {
        let t = Template::parse(
            r#"{"code": {code}, "msg": {message}, "type": {type}, "id": {id}, "r": {reason}, "s": {status}, "x": {}}"#,
        )
        .unwrap();
        let numeric = t.render(&values(), CodeFormat::Numeric);
        assert_eq!(
            numeric,
            r#"{"code": 1004, "msg": "line\nbreak", "type": null, "id": "op_\"1\"", "r": "R", "s": "F", "x": {}}"#
        );
        let text = t.render(&values(), CodeFormat::Text);
        assert!(text.starts_with(r#"{"code": "1004","#), "{text}");
        assert_eq!(
            t.placeholders().map(Placeholder::name).collect::<Vec<_>>(),
            ["code", "message", "type", "id", "reason", "status"]
        );
    }

    #[test]
    fn numeric_codes_that_are_not_json_numbers_stay_strings() {
        let t = Template::parse("{code}").unwrap();
        let render = |code| {
            t.render(
                &Values {
                    code: Some(code),
                    ..Values::default()
                },
                CodeFormat::Numeric,
            )
        };
        assert_eq!(render("0"), "0");
        assert_eq!(render("0012"), "\"0012\"");
        assert_eq!(render("12a"), "\"12a\"");
        assert_eq!(render(""), "\"\"");
    }

    #[test]
    fn unknown_placeholders_are_reported_at_their_brace() {
        let e = Template::parse(r#"{"a": {id}, "b": {cdoe}}"#).unwrap_err();
        assert_eq!((e.offset, e.name.as_str()), (17, "cdoe"));
        assert!(e.to_string().contains("{message}"), "{e}");
        // Braces that cannot be placeholders are JSON.
        let t = Template::parse(r#"{"a": {"B": {}}, "c": "{X}"}"#).unwrap();
        assert_eq!(t.placeholders().count(), 0);
    }
}
