//! Dialect catalogs: the TOML file model (docs/catalog-format.md), its checks, and the compiled
//! [`Dialect`] the matcher reads.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::lint::{Diagnostic, Severity};
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
        if !self.problems.is_empty() {
            self.problems.sort_by_key(|d| (d.line, d.column));
            return Err(self.problems);
        }
        Ok(Dialect {
            id: raw.id.into_inner().into(),
            name: raw.name,
            description: raw.description,
            source: raw.source,
            envelope: raw.envelope,
            entries,
            ranges,
            status_rules,
            by_code,
        })
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
