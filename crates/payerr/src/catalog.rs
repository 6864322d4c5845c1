//! Dialect catalogs: the TOML file model (docs/catalog-format.md), its checks, and the compiled
//! [`Dialect`] the matcher reads.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::lint::{Diagnostic, Severity};
use crate::responses::{
    self, Answers, Body, CodeQuery, CodeRef, ErrorBody, Placeholder, Responses, StatusRange,
    Template, Values,
};
use crate::taxonomy::{CanonicalCode, Category, Decision, Overrides, Taxonomy, Text};
use crate::verdict::{Actor, NextAction, Outcome};

/// What a dialect's codes look like; auto-detection never picks a dialect for a code of the other form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeFormat {
    /// Decimal digits (`1004`, `"6001"`).
    Numeric,
    /// Anything else (`expired_card`, `INVALID_SIGNATURE`).
    Text,
}

/// Where a dialect's fields sit in a response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Objects that may hold the fields, in order; `""` is the top level, dots separate levels.
    pub containers: Vec<String>,
    /// Candidate names of the code field.
    pub code: Vec<String>,
    /// Candidate names of the message field.
    #[serde(default)]
    pub message: Vec<String>,
    /// Candidate names of the field that scopes codes (typed-error's `type`).
    #[serde(default)]
    pub scope: Vec<String>,
    /// Candidate names of the operation-status field.
    #[serde(default)]
    pub status: Vec<String>,
    /// Candidate names of the reason field used to disambiguate codes.
    #[serde(default)]
    pub reason: Vec<String>,
    /// Candidate names of the field naming the offending parameter.
    #[serde(default)]
    pub param: Vec<String>,
    /// What codes look like.
    pub code_format: CodeFormat,
}

/// One documented code of a dialect, resolved against the taxonomy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// The provider's code.
    pub code: Arc<str>,
    /// Scope the code is documented in.
    pub scope: Option<Arc<str>>,
    /// Reason text selecting this meaning.
    pub reason: Option<Arc<str>>,
    /// Operation status the provider documents for the code.
    pub status: Option<Arc<str>>,
    /// The provider's message as documented.
    pub message: Arc<str>,
    /// The provider's remedy as documented, with its translation.
    pub remedy: Option<Text>,
    /// Canonical code.
    pub canonical: Arc<CanonicalCode>,
    /// What the code means, for support staff.
    pub text: Text,
    /// The provider writes the offending field name around the message.
    pub param_in_message: bool,
    /// The entry's own overrides, as written.
    pub overrides: Overrides,
    /// The resolved decision.
    pub decision: Decision,
}

/// A documented range or series of numeric codes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CodeRange {
    /// First code, inclusive.
    pub from: u64,
    /// Last code, inclusive.
    pub to: u64,
    /// The document's name for the range.
    pub name: String,
    /// Canonical code for undocumented codes inside.
    pub canonical: Arc<CanonicalCode>,
    /// The resolved decision.
    pub decision: Decision,
}

/// What a status rule looks at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// The envelope's status field has this value (case-insensitive).
    Status(String),
    /// The envelope's scope field has this value.
    Scope(String),
    /// A 2xx response whose body has no code at all.
    NoErrorOn2xx,
}

/// A status-level rule (matching step 4).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusRule {
    /// What it matches.
    pub selector: Selector,
    /// Canonical code it yields.
    pub canonical: Arc<CanonicalCode>,
    /// The resolved decision.
    pub decision: Decision,
}

/// A compiled dialect catalog.
#[derive(Clone, Debug)]
pub struct Dialect {
    /// Dialect id.
    pub id: Arc<str>,
    /// Human name.
    pub name: String,
    /// What its responses look like.
    pub description: String,
    /// Where its codes come from.
    pub source: Option<String>,
    /// Where its fields sit.
    pub envelope: Envelope,
    /// Documented codes, in document order.
    pub entries: Vec<Entry>,
    /// Documented ranges, in order.
    pub ranges: Vec<CodeRange>,
    /// Status rules, in order.
    pub status_rules: Vec<StatusRule>,
    /// How the provider answers (`[responses]`), for `payerr simulate`.
    pub responses: Option<Responses>,
    by_code: FxHashMap<Arc<str>, Vec<usize>>,
}

impl Dialect {
    /// The entries documented for `code`, in document order.
    pub fn entries_for(&self, code: &str) -> impl Iterator<Item = &Entry> + '_ {
        self.by_code
            .get(code.trim())
            .into_iter()
            .flatten()
            .map(|&i| &self.entries[i])
    }

    /// Whether `code` is documented.
    pub fn knows(&self, code: &str) -> bool {
        self.by_code.contains_key(code.trim())
    }

    /// The first range containing a numeric `code`.
    pub fn range_for(&self, code: &str) -> Option<&CodeRange> {
        let n: u64 = code.trim().parse().ok()?;
        self.ranges.iter().find(|r| (r.from..=r.to).contains(&n))
    }

    /// The provider's answers, when the catalog has a `[responses]` table.
    pub fn answers(&self) -> Option<Answers<'_>> {
        Answers::of(self)
    }

    /// Parses and checks a catalog file. `file` names it in diagnostics.
    pub fn parse(file: &str, text: &str, taxonomy: &Taxonomy) -> Result<Dialect, Vec<Diagnostic>> {
        let raw: CatalogFile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            vec![Diagnostic::at(
                file,
                text,
                span,
                Severity::Error,
                e.message().trim_end(),
            )]
        })?;
        Compiler {
            file,
            text,
            taxonomy,
            problems: Vec::new(),
        }
        .compile(raw)
    }
}

struct Compiler<'a> {
    file: &'a str,
    text: &'a str,
    taxonomy: &'a Taxonomy,
    problems: Vec<Diagnostic>,
}

impl Compiler<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.push(Diagnostic::at(
            self.file,
            self.text,
            span,
            Severity::Error,
            message.into(),
        ));
    }

    fn compile(mut self, raw: CatalogFile) -> Result<Dialect, Vec<Diagnostic>> {
        let id_ok = !raw.id.get_ref().is_empty()
            && raw
                .id
                .get_ref()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok || raw.id.get_ref() == "auto" {
            self.error(
                raw.id.span(),
                format!(
                    "dialect id `{}` must be [a-z0-9-]+ and not `auto`",
                    raw.id.get_ref()
                ),
            );
        }
        if raw.envelope.code.is_empty() || raw.envelope.containers.is_empty() {
            self.error(
                raw.id.span(),
                "envelope needs at least one container and one code field",
            );
        }
        let ranges = raw
            .ranges
            .iter()
            .filter_map(|r| self.range(r))
            .collect::<Vec<_>>();
        let status_rules = raw
            .status_rules
            .iter()
            .filter_map(|r| self.status_rule(r))
            .collect::<Vec<_>>();
        let entries = raw
            .entries
            .iter()
            .filter_map(|e| self.entry(e))
            .collect::<Vec<_>>();
        let by_code = self.index(&raw.entries, &entries);
        let mut dialect = Dialect {
            id: raw.id.into_inner().into(),
            name: raw.name,
            description: raw.description,
            source: raw.source,
            envelope: raw.envelope,
            entries,
            ranges,
            status_rules,
            responses: None,
            by_code,
        };
        // Answers refer to the dialect's codes and scopes, so they are checked against it.
        dialect.responses = raw.responses.and_then(|r| self.responses(&dialect, r));
        if !self.problems.is_empty() {
            self.problems.sort_by_key(|d| (d.line, d.column));
            return Err(self.problems);
        }
        Ok(dialect)
    }

    fn responses(&mut self, dialect: &Dialect, raw: ResponsesFile) -> Option<Responses> {
        let only_id = [Placeholder::Id];
        let success = self.body(dialect, "success", &raw.success, &only_id);
        let pending = raw
            .pending
            .as_ref()
            .map(|p| self.body(dialect, "pending", p, &only_id));
        let error = self.error_body(dialect, &raw.error);
        let not_found = raw.not_found.map(|r| self.code_ref(dialect, r));
        let service_unavailable = raw.service_unavailable.map(|r| self.code_ref(dialect, r));
        let internal_error = raw.internal_error.map(|r| self.code_ref(dialect, r));
        // Every part was checked above, so that lint reports all of them; any failure drops the table.
        fn checked<T>(part: Option<Option<T>>) -> Option<Option<T>> {
            part.map(|p| p.ok_or(())).transpose().ok()
        }
        Some(Responses {
            success: success?,
            pending: checked(pending)?,
            error: error?,
            not_found: checked(not_found)?,
            service_unavailable: checked(service_unavailable)?,
            internal_error: checked(internal_error)?,
        })
    }

    fn http_status(&mut self, status: &Spanned<u16>) -> bool {
        let ok = (100..=599).contains(status.get_ref());
        if !ok {
            self.error(
                status.span(),
                format!("http_status {} is not 100-599", status.get_ref()),
            );
        }
        ok
    }

    /// Parses a template, checks it uses only `allowed` placeholders and is valid JSON once they are
    /// filled in (with a code of the dialect's format).
    fn template(
        &mut self,
        dialect: &Dialect,
        table: &str,
        body: &Spanned<String>,
        allowed: &[Placeholder],
    ) -> Option<Template> {
        // Placeholders are plain ASCII, so they appear as written in the TOML source: point at them.
        let source = self.text.get(body.span()).unwrap_or_default();
        let at = |needle: &str| {
            let start = body.span().start;
            start + source.find(needle).unwrap_or(0)..start + source.len()
        };
        let template = match Template::parse(body.get_ref()) {
            Ok(t) => t,
            Err(e) => {
                self.error(
                    at(&format!("{{{}}}", e.name)),
                    format!("responses.{table}.body: {e}"),
                );
                return None;
            }
        };
        if let Some(p) = template.placeholders().find(|p| !allowed.contains(p)) {
            let allowed: Vec<String> = allowed
                .iter()
                .map(|p| format!("{{{}}}", p.name()))
                .collect();
            self.error(
                at(&format!("{{{}}}", p.name())),
                format!(
                    "responses.{table}.body: placeholder `{{{}}}` is not available here (only {})",
                    p.name(),
                    allowed.join(", ")
                ),
            );
            return None;
        }
        let code = match dialect.envelope.code_format {
            CodeFormat::Numeric => "1000",
            CodeFormat::Text => "sample_code",
        };
        let sample = Values {
            id: "op_1",
            code: Some(code),
            message: Some("message"),
            scope: Some("type"),
            reason: Some("reason"),
            status: Some("F"),
        };
        let rendered = template.render(&sample, dialect.envelope.code_format);
        if let Err(e) = serde_json::from_str::<de::IgnoredAny>(&rendered) {
            self.error(
                body.span(),
                format!(
                    "responses.{table}.body is not valid JSON once its placeholders are filled in: {e} (in {rendered})"
                ),
            );
            return None;
        }
        Some(template)
    }

    fn body(
        &mut self,
        dialect: &Dialect,
        table: &str,
        raw: &BodyFile,
        allowed: &[Placeholder],
    ) -> Option<Body> {
        let status_ok = self.http_status(&raw.http_status);
        let template = self.template(dialect, table, &raw.body, allowed)?;
        status_ok.then(|| Body {
            http_status: *raw.http_status.get_ref(),
            template,
        })
    }

    fn error_body(&mut self, dialect: &Dialect, raw: &ErrorBodyFile) -> Option<ErrorBody> {
        let mut ok = self.http_status(&raw.http_status);
        let known = responses::known_scopes(dialect);
        let mut by_scope = Vec::new();
        for (scope, status) in &raw.http_status_by_scope {
            ok &= self.http_status(status);
            if !known.iter().any(|k| k.eq_ignore_ascii_case(scope)) {
                ok = false;
                self.error(
                    status.span(),
                    format!(
                        "http_status_by_scope: `{scope}` is not a scope of this dialect (known: {})",
                        known.join(", ")
                    ),
                );
            }
            by_scope.push((Arc::from(scope.as_str()), *status.get_ref()));
        }
        let mut by_range = Vec::new();
        for r in &raw.http_status_by_range {
            let range = r.get_ref();
            ok &= self.http_status(&range.http_status);
            if range.from > range.to {
                ok = false;
                self.error(
                    r.span(),
                    format!(
                        "http_status_by_range: from {} is greater than to {}",
                        range.from, range.to
                    ),
                );
            }
            by_range.push(StatusRange {
                from: range.from,
                to: range.to,
                http_status: *range.http_status.get_ref(),
            });
        }
        let template = self.template(dialect, "error", &raw.body, Placeholder::ALL)?;
        ok.then(|| ErrorBody {
            http_status: *raw.http_status.get_ref(),
            by_scope,
            by_range,
            default_status: raw.default_status.clone(),
            template,
        })
    }

    /// A code the `[responses]` table names must be one the dialect documents.
    fn code_ref(&mut self, dialect: &Dialect, raw: Spanned<CodeRefFile>) -> Option<CodeRef> {
        let span = raw.span();
        let raw = raw.into_inner();
        let code = CodeRef {
            code: raw.code.0.trim().to_owned(),
            scope: raw.scope,
            reason: raw.reason,
        };
        let query = CodeQuery {
            code: &code.code,
            scope: code.scope.as_deref(),
            reason: code.reason.as_deref(),
        };
        if let Err(e) = responses::resolve(dialect, &query) {
            self.error(span, format!("responses: {e}"));
            return None;
        }
        Some(code)
    }

    /// Resolves `canonical` (and checks `category` against it), then applies `overrides`.
    fn resolve(
        &mut self,
        canonical: &Spanned<String>,
        category: Option<&Spanned<String>>,
        overrides: &Overrides,
        span: Range<usize>,
    ) -> Option<(Arc<CanonicalCode>, Decision)> {
        let Some(code) = self.taxonomy.code(canonical.get_ref()).cloned() else {
            self.error(
                canonical.span(),
                format!(
                    "unknown canonical code `{}` (see docs/taxonomy.md)",
                    canonical.get_ref()
                ),
            );
            return None;
        };
        if let Some(category) = category {
            match category.get_ref().parse::<Category>() {
                Err(()) => self.error(
                    category.span(),
                    format!(
                        "unknown category `{}` (see docs/taxonomy.md)",
                        category.get_ref()
                    ),
                ),
                Ok(c) if c != code.category => self.error(
                    category.span(),
                    format!(
                        "category `{c}` does not match canonical code `{}`, which is `{}`",
                        code.code, code.category
                    ),
                ),
                Ok(_) => {}
            }
        }
        let decision = code.decision.with(overrides);
        if let Some(why) = decision.money_rule_violation() {
            self.error(span.clone(), why);
        }
        if !(100..=599).contains(&decision.http_status) {
            self.error(
                span,
                format!("http_status {} is not 100-599", decision.http_status),
            );
        }
        Some((code, decision))
    }

    fn range(&mut self, r: &Spanned<RangeFile>) -> Option<CodeRange> {
        let raw = r.get_ref();
        if raw.from > raw.to {
            self.error(
                r.span(),
                format!("range from {} is greater than to {}", raw.from, raw.to),
            );
        }
        let (canonical, decision) =
            self.resolve(&raw.canonical, None, &raw.overrides(), r.span())?;
        Some(CodeRange {
            from: raw.from,
            to: raw.to,
            name: raw.name.clone(),
            canonical,
            decision,
        })
    }

    fn status_rule(&mut self, r: &Spanned<StatusRuleFile>) -> Option<StatusRule> {
        let raw = r.get_ref();
        let mut selectors = Vec::new();
        if let Some(s) = &raw.status {
            selectors.push(Selector::Status(s.clone()));
        }
        if let Some(s) = &raw.scope {
            selectors.push(Selector::Scope(s.clone()));
        }
        if raw.no_error_on_2xx == Some(true) {
            selectors.push(Selector::NoErrorOn2xx);
        }
        if selectors.len() != 1 {
            self.error(
                r.span(),
                "a status rule needs exactly one of `status`, `scope`, `no_error_on_2xx = true`",
            );
        }
        let (canonical, decision) =
            self.resolve(&raw.canonical, None, &raw.overrides(), r.span())?;
        Some(StatusRule {
            selector: selectors.into_iter().next()?,
            canonical,
            decision,
        })
    }

    fn entry(&mut self, e: &Spanned<EntryFile>) -> Option<Entry> {
        let raw = e.get_ref();
        let missing = |this: &mut Self, what: &str, value: Option<&String>| {
            if value.is_none_or(|v| v.trim().is_empty()) {
                this.error(
                    raw.text.span(),
                    format!(
                        "code `{}`: missing translation `{what}`",
                        raw.code.get_ref().0
                    ),
                );
            }
        };
        missing(self, "text.en", raw.text.get_ref().en.as_ref());
        missing(self, "text.zh", raw.text.get_ref().zh.as_ref());
        if raw.remedy.is_some() && raw.remedy_zh.as_ref().is_none_or(|z| z.trim().is_empty()) {
            self.error(
                e.span(),
                format!(
                    "code `{}`: `remedy` is set but its translation `remedy_zh` is missing",
                    raw.code.get_ref().0
                ),
            );
        }
        if raw.message.trim().is_empty() {
            self.error(
                e.span(),
                format!("code `{}`: empty `message`", raw.code.get_ref().0),
            );
        }
        let (canonical, decision) = self.resolve(
            &raw.canonical,
            Some(&raw.category),
            &raw.overrides(),
            e.span(),
        )?;
        let text = raw.text.get_ref();
        Some(Entry {
            code: raw.code.get_ref().0.trim().into(),
            scope: raw.scope.as_deref().map(Arc::from),
            reason: raw.reason.as_deref().map(Arc::from),
            status: raw.status.as_deref().map(Arc::from),
            message: raw.message.as_str().into(),
            remedy: raw.remedy.as_ref().map(|en| Text {
                en: en.as_str().into(),
                zh: raw.remedy_zh.as_deref().unwrap_or_default().into(),
            }),
            canonical,
            text: Text {
                en: text.en.as_deref().unwrap_or_default().into(),
                zh: text.zh.as_deref().unwrap_or_default().into(),
            },
            param_in_message: raw.param_in_message,
            overrides: raw.overrides(),
            decision,
        })
    }

    /// Indexes entries by code and reports codes documented twice in one scope without distinct
    /// reasons. `raw` and `entries` are parallel only when no entry failed, which is the only case in
    /// which the index is used.
    fn index(
        &mut self,
        raw: &[Spanned<EntryFile>],
        entries: &[Entry],
    ) -> FxHashMap<Arc<str>, Vec<usize>> {
        let mut by_code: FxHashMap<Arc<str>, Vec<usize>> = FxHashMap::default();
        let mut seen: FxHashSet<(String, String, String)> = FxHashSet::default();
        for e in raw {
            let r = e.get_ref();
            let code = r.code.get_ref().0.trim().to_owned();
            // The matcher compares scopes and reasons without case, so lint does too.
            let scope = r.scope.clone().unwrap_or_default().to_ascii_lowercase();
            let reason = r.reason.clone().unwrap_or_default().to_ascii_lowercase();
            if !seen.insert((code.clone(), scope.clone(), reason)) {
                let scope = if scope.is_empty() { "-" } else { &scope };
                self.error(
                    r.code.span(),
                    format!("duplicate code `{code}` in scope `{scope}`: entries with the same code need distinct `reason`s"),
                );
            }
        }
        for (i, entry) in entries.iter().enumerate() {
            by_code.entry(entry.code.clone()).or_default().push(i);
        }
        by_code
    }
}

// ---- wire model ------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    id: Spanned<String>,
    name: String,
    description: String,
    #[serde(default)]
    source: Option<String>,
    envelope: Envelope,
    #[serde(default)]
    ranges: Vec<Spanned<RangeFile>>,
    #[serde(default)]
    status_rules: Vec<Spanned<StatusRuleFile>>,
    entries: Vec<Spanned<EntryFile>>,
    #[serde(default)]
    responses: Option<ResponsesFile>,
}

/// `[responses]`: how the provider answers, for `payerr simulate`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponsesFile {
    #[serde(default)]
    not_found: Option<Spanned<CodeRefFile>>,
    #[serde(default)]
    service_unavailable: Option<Spanned<CodeRefFile>>,
    #[serde(default)]
    internal_error: Option<Spanned<CodeRefFile>>,
    success: BodyFile,
    #[serde(default)]
    pending: Option<BodyFile>,
    error: ErrorBodyFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyFile {
    http_status: Spanned<u16>,
    body: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorBodyFile {
    http_status: Spanned<u16>,
    #[serde(default)]
    http_status_by_scope: BTreeMap<String, Spanned<u16>>,
    #[serde(default)]
    http_status_by_range: Vec<Spanned<StatusRangeFile>>,
    #[serde(default)]
    default_status: Option<String>,
    body: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRangeFile {
    from: u64,
    to: u64,
    http_status: Spanned<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRefFile {
    code: CodeText,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// Declares a catalog table that may carry the six decision overrides, with strict keys (serde cannot
/// combine `deny_unknown_fields` with `flatten`, so the override keys are spelled into each table).
macro_rules! table_with_overrides {
    ($name:ident { $($field:tt)* }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($field)*
            #[serde(default)]
            outcome: Option<Outcome>,
            #[serde(default)]
            next_action: Option<NextAction>,
            #[serde(default)]
            retryable: Option<bool>,
            #[serde(default)]
            failover_safe: Option<bool>,
            #[serde(default)]
            actor: Option<Actor>,
            #[serde(default)]
            http_status: Option<u16>,
        }

        impl $name {
            fn overrides(&self) -> Overrides {
                Overrides {
                    outcome: self.outcome,
                    next_action: self.next_action,
                    retryable: self.retryable,
                    failover_safe: self.failover_safe,
                    actor: self.actor,
                    http_status: self.http_status,
                }
            }
        }
    };
}

table_with_overrides!(RangeFile {
    from: u64,
    to: u64,
    name: String,
    canonical: Spanned<String>,
});

table_with_overrides!(StatusRuleFile {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    no_error_on_2xx: Option<bool>,
    canonical: Spanned<String>,
});

table_with_overrides!(EntryFile {
    code: Spanned<CodeText>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    status: Option<String>,
    message: String,
    #[serde(default)]
    remedy: Option<String>,
    #[serde(default)]
    remedy_zh: Option<String>,
    canonical: Spanned<String>,
    category: Spanned<String>,
    text: Spanned<TextFile>,
    #[serde(default)]
    param_in_message: bool,
});

/// Both languages optional at parse time, so that lint can name each missing translation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextFile {
    #[serde(default)]
    en: Option<String>,
    #[serde(default)]
    zh: Option<String>,
}

/// A code written as a TOML string or integer.
struct CodeText(String);

impl<'de> Deserialize<'de> for CodeText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = CodeText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a code as a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CodeText, E> {
                Ok(CodeText(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CodeText, E> {
                Ok(CodeText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CodeText, E> {
                Ok(CodeText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
