//! Catalog export: JSON for tools, Markdown that reads like a provider's code reference for docs sites.

use std::fmt::Write as _;

use serde::Serialize;

use crate::catalog::{CodeRange, Dialect, Entry, Envelope, Selector, StatusRule};
use crate::lang::Lang;
use crate::taxonomy::{CanonicalCode, Category, Decision, Text};

#[derive(Serialize)]
struct DialectView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    source: Option<&'a str>,
    envelope: &'a Envelope,
    ranges: Vec<RuleView<'a>>,
    status_rules: Vec<RuleView<'a>>,
    entries: Vec<EntryView<'a>>,
}

#[derive(Serialize)]
struct RuleView<'a> {
    selector: String,
    canonical: &'a str,
    category: Category,
    #[serde(flatten)]
    decision: Decision,
}

#[derive(Serialize)]
struct EntryView<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    remedy: Option<&'a Text>,
    canonical: &'a str,
    category: Category,
    text: &'a Text,
    customer_message: &'a Text,
    param_in_message: bool,
    #[serde(flatten)]
    decision: Decision,
}

fn range_selector(r: &CodeRange) -> String {
    format!("{}-{} {}", r.from, r.to, r.name)
}

fn status_selector(r: &StatusRule) -> String {
    match &r.selector {
        Selector::Status(v) => format!("status = {v}"),
        Selector::Scope(v) => format!("scope = {v}"),
        Selector::NoErrorOn2xx => "2xx without an error".to_owned(),
    }
}

/// The dialect as JSON: envelope, rules and every entry with its resolved decision.
pub fn to_json(dialect: &Dialect) -> serde_json::Value {
    let view = DialectView {
        id: &dialect.id,
        name: &dialect.name,
        description: &dialect.description,
        source: dialect.source.as_deref(),
        envelope: &dialect.envelope,
        ranges: dialect
            .ranges
            .iter()
            .map(|r| rule_view(range_selector(r), &r.canonical, r.decision))
            .collect(),
        status_rules: dialect
            .status_rules
            .iter()
            .map(|r| rule_view(status_selector(r), &r.canonical, r.decision))
            .collect(),
        entries: dialect.entries.iter().map(entry_view).collect(),
    };
    // Plain data with string keys: serializing it cannot fail.
    serde_json::to_value(view).unwrap_or_default()
}

fn rule_view(selector: String, canonical: &CanonicalCode, decision: Decision) -> RuleView<'_> {
    RuleView {
        selector,
        canonical: &canonical.code,
        category: canonical.category,
        decision,
    }
}

fn entry_view(e: &Entry) -> EntryView<'_> {
    EntryView {
        code: &e.code,
        scope: e.scope.as_deref(),
        reason: e.reason.as_deref(),
        status: e.status.as_deref(),
        message: &e.message,
        remedy: e.remedy.as_ref(),
        canonical: &e.canonical.code,
        category: e.canonical.category,
        text: &e.text,
        customer_message: &e.canonical.message,
        param_in_message: e.param_in_message,
        decision: e.decision,
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn enum_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The dialect as a Markdown code reference, with texts in `lang`.
pub fn to_markdown(dialect: &Dialect, lang: Lang) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {} (`{}`)\n\n{}\n",
        dialect.name, dialect.id, dialect.description
    );
    if let Some(source) = &dialect.source {
        let _ = writeln!(md, "Source: {source}\n");
    }
    let env = &dialect.envelope;
    let _ = writeln!(
        md,
        "Code field: `{}`; message: `{}`; looked up at the top level or under {}.\n",
        env.code.join("` / `"),
        env.message.join("` / `"),
        env.containers
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if !dialect.ranges.is_empty() || !dialect.status_rules.is_empty() {
        md.push_str("## Ranges and status rules\n\n| applies to | canonical code | category | outcome | next action |\n|---|---|---|---|---|\n");
        let rules = dialect
            .ranges
            .iter()
            .map(|r| (range_selector(r), &r.canonical, r.decision))
            .chain(
                dialect
                    .status_rules
                    .iter()
                    .map(|r| (status_selector(r), &r.canonical, r.decision)),
            );
        for (selector, canonical, d) in rules {
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} | {} |",
                cell(&selector),
                canonical.code,
                canonical.category,
                enum_name(&d.outcome),
                enum_name(&d.next_action)
            );
        }
        md.push('\n');
    }
    let mut scope: Option<Option<&str>> = None;
    for e in &dialect.entries {
        if scope != Some(e.scope.as_deref()) {
            scope = Some(e.scope.as_deref());
            let title = e.scope.as_deref().unwrap_or("Codes");
            let _ = writeln!(md, "## {title}\n\n| code | message | meaning | canonical | outcome | next action | retry | failover | how to fix |\n|---|---|---|---|---|---|---|---|---|");
        }
        let fix = e
            .remedy
            .as_ref()
            .unwrap_or(&e.canonical.how_to_fix)
            .get(lang);
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | `{}` ({}) | {} | {} | {} | {} | {} |",
            e.code,
            cell(&e.message),
            cell(e.text.get(lang)),
            e.canonical.code,
            e.canonical.category,
            enum_name(&e.decision.outcome),
            enum_name(&e.decision.next_action),
            yes(e.decision.retryable),
            yes(e.decision.failover_safe),
            cell(fix)
        );
    }
    md
}
