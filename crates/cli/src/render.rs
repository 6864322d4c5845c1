//! Verdicts as text for people: what happened, why, what to do next, what to tell the customer.

use std::fmt::Write as _;

use payerr::{Taxonomy, Verdict};
use serde::Serialize;

/// The snake_case name of a contract enum value.
pub fn name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn line(out: &mut String, label: &str, value: impl AsRef<str>) {
    let _ = writeln!(out, "{label:<14} {}", value.as_ref());
}

/// The verdict as a short, aligned text block.
pub fn verdict_text(v: &Verdict, taxonomy: &Taxonomy) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · {} / {}   ({}, matched by {})",
        name(&v.outcome).to_uppercase(),
        v.category,
        v.code,
        v.dialect,
        name(&v.matched_by)
    );
    line(
        &mut out,
        "What happened",
        &*taxonomy.category(v.category).description,
    );
    let mut said = Vec::new();
    if let Some(scope) = &v.source.scope {
        said.push(scope.clone());
    }
    if let Some(code) = &v.source.code {
        said.push(code.clone());
    }
    if let Some(status) = &v.source.status {
        said.push(format!("status {status}"));
    }
    if let Some(reason) = &v.source.reason {
        said.push(reason.clone());
    }
    if let Some(message) = &v.source.message {
        said.push(format!("\"{message}\""));
    }
    if let Some(http) = v.source.http_status {
        said.push(format!("(HTTP {http})"));
    }
    if !said.is_empty() {
        line(&mut out, "Provider said", said.join(" "));
    }
    if let Some(detail) = &v.detail {
        line(&mut out, "Meaning", &**detail);
    }
    let retry = if v.retryable {
        "retryable with the same idempotency key"
    } else {
        "do not retry"
    };
    let failover = if v.failover_safe {
        "safe to fail over"
    } else {
        "do not fail over"
    };
    line(
        &mut out,
        "Next",
        format!(
            "{} (actor: {}); {retry}; {failover}",
            name(&v.next_action),
            name(&v.actor)
        ),
    );
    if let Some(ms) = v.retry_after_ms {
        line(&mut out, "First delay", format!("{ms} ms"));
    }
    line(&mut out, "Tell customer", &*v.message);
    if let Some(fix) = &v.how_to_fix {
        line(&mut out, "How to fix", fix.replace('\n', " "));
    }
    if let Some(param) = &v.param {
        line(&mut out, "Parameter", param);
    }
    line(
        &mut out,
        "Your API",
        format!("answer HTTP {}", v.http_status),
    );
    for c in &v.ambiguous {
        let reason = c.reason.as_deref().or(c.scope.as_deref()).unwrap_or("-");
        line(
            &mut out,
            "Could also be",
            format!(
                "{} {reason}: {} / {} ({})",
                c.provider_code,
                c.category,
                c.code,
                name(&c.outcome)
            ),
        );
    }
    out
}
