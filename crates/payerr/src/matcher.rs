//! Matching (SPEC §5): exact code (within its scope) → reason → range → status rule → HTTP status →
//! fallback. An unknown code never fails: it gets the best verdict the remaining steps allow.

use std::borrow::Cow;
use std::sync::Arc;

use crate::catalog::{Dialect, Entry, Selector};
use crate::envelope::BodyKind;
use crate::taxonomy::{CanonicalCode, Decision, Taxonomy, Text};
use crate::verdict::{MatchedBy, NextAction, Outcome};

/// What the decoder read from a response, in the dialect's terms.
#[derive(Clone, Debug, Default)]
pub(crate) struct Signal<'a> {
    pub code: Option<Cow<'a, str>>,
    pub message: Option<Cow<'a, str>>,
    pub scope: Option<Cow<'a, str>>,
    pub status: Option<Cow<'a, str>>,
    pub reason: Option<Cow<'a, str>>,
    pub param: Option<Cow<'a, str>>,
    pub http_status: Option<u16>,
    pub body: Option<BodyKind>,
}

/// The decision reached, and what it was reached from.
pub(crate) struct Resolution<'d> {
    pub canonical: &'d Arc<CanonicalCode>,
    pub decision: Decision,
    pub matched_by: MatchedBy,
    /// The documented entry matched; its text explains the provider's code.
    pub entry: Option<&'d Entry>,
    /// The provider's remedy, when it still applies to the decision.
    pub remedy: Option<&'d Text>,
    pub candidates: Vec<&'d Entry>,
}

impl<'d> Resolution<'d> {
    pub(crate) fn rule(
        canonical: &'d Arc<CanonicalCode>,
        decision: Decision,
        matched_by: MatchedBy,
    ) -> Self {
        Resolution {
            canonical,
            decision,
            matched_by,
            entry: None,
            remedy: None,
            candidates: Vec::new(),
        }
    }

    fn entry(entry: &'d Entry, matched_by: MatchedBy) -> Self {
        Resolution {
            canonical: &entry.canonical,
            decision: entry.decision,
            matched_by,
            entry: Some(entry),
            remedy: entry.remedy.as_ref(),
            candidates: Vec::new(),
        }
    }

    /// Nobody can vouch for the outcome: the decision, the customer message and the remedy all become
    /// those of `outcome_unknown`, so that no text invites paying again; the entry stays as `detail`.
    fn make_unknown(&mut self, taxonomy: &'d Taxonomy) {
        let unknown = taxonomy.unknown_outcome();
        self.canonical = unknown;
        self.decision = unknown.decision;
        self.remedy = None;
    }
}

/// Decides a signal against one dialect.
pub(crate) fn decide<'d>(
    dialect: &'d Dialect,
    taxonomy: &'d Taxonomy,
    signal: &Signal<'_>,
) -> Resolution<'d> {
    if let Some(code) = signal.code.as_deref() {
        let by_code = by_code(dialect, taxonomy, code, signal).or_else(|| {
            dialect
                .range_for(code)
                .map(|r| Resolution::rule(&r.canonical, r.decision, MatchedBy::Range))
        });
        if let Some(mut resolution) = by_code {
            cap_by_status(&mut resolution, dialect, taxonomy, signal);
            return resolution;
        }
    }
    if let Some(rule) = status_rule(dialect, signal) {
        return Resolution::rule(&rule.canonical, rule.decision, MatchedBy::Status);
    }
    if let Some(canonical) = signal.http_status.and_then(|s| taxonomy.http_rule(s)) {
        return Resolution::rule(canonical, canonical.decision, MatchedBy::HttpStatus);
    }
    let fallback = taxonomy.fallback();
    Resolution::rule(fallback, fallback.decision, MatchedBy::Fallback)
}

fn same(a: Option<&str>, b: Option<&str>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.trim().eq_ignore_ascii_case(b.trim()))
}

/// Steps 1 and 2: the documented entries for `code`, narrowed by scope, then by reason.
fn by_code<'d>(
    dialect: &'d Dialect,
    taxonomy: &'d Taxonomy,
    code: &str,
    signal: &Signal<'_>,
) -> Option<Resolution<'d>> {
    let scope = signal.scope.as_deref();
    // The scope narrows only when it names one of the code's documented scopes; a code sent under
    // another scope is still the documented code.
    let scoped = dialect
        .entries_for(code)
        .any(|e| same(e.scope.as_deref(), scope));
    let candidates = || {
        dialect
            .entries_for(code)
            .filter(move |e| !scoped || same(e.scope.as_deref(), scope))
    };
    let by = if scoped {
        MatchedBy::CodeAndScope
    } else {
        MatchedBy::Code
    };
    let mut iter = candidates();
    let first = iter.next()?;
    if iter.next().is_none() {
        return Some(Resolution::entry(first, by));
    }
    let reason = signal.reason.as_deref();
    let mut by_reason = candidates().filter(|e| same(e.reason.as_deref(), reason));
    if let (Some(hit), None) = (by_reason.next(), by_reason.next()) {
        return Some(Resolution::entry(hit, MatchedBy::CodeAndReason));
    }
    // Several meanings and nothing to tell them apart: report all, decide as the first, and never let
    // one meaning's retry or failover stand unless every meaning allows it.
    let all: Vec<&Entry> = candidates().collect();
    let mut resolution = Resolution::entry(first, by);
    resolution.decision.retryable = all.iter().all(|e| e.decision.retryable);
    resolution.decision.failover_safe = all.iter().all(|e| e.decision.failover_safe);
    if all
        .iter()
        .any(|e| e.decision.outcome != first.decision.outcome)
    {
        resolution.make_unknown(taxonomy);
    }
    resolution.candidates = all;
    Some(resolution)
}

/// The provider's own status caps a code's certainty: a code documented as a failure, sent with a
/// status that says the outcome is unknown (or one that contradicts it), yields `unknown`.
fn cap_by_status<'d>(
    resolution: &mut Resolution<'d>,
    dialect: &Dialect,
    taxonomy: &'d Taxonomy,
    signal: &Signal<'_>,
) {
    let Some(status) = signal.status.as_deref() else {
        return;
    };
    let Some(rule) = dialect
        .status_rules
        .iter()
        .find(|r| matches!(&r.selector, Selector::Status(v) if same(Some(v), Some(status))))
    else {
        return;
    };
    let said = rule.decision.outcome;
    let ours = resolution.decision.outcome;
    if said != ours && ours != Outcome::Unknown {
        resolution.make_unknown(taxonomy);
    }
}

/// Step 4: the first status rule that applies.
fn status_rule<'d>(
    dialect: &'d Dialect,
    signal: &Signal<'_>,
) -> Option<&'d crate::catalog::StatusRule> {
    let success_http = signal.http_status.is_some_and(|s| (200..300).contains(&s));
    // Any error field (a code, a message, a type) means an error object is present.
    let error_free = signal.code.is_none()
        && signal.message.is_none()
        && signal.scope.is_none()
        && signal.body != Some(BodyKind::NotJson);
    dialect.status_rules.iter().find(|r| match &r.selector {
        Selector::Status(v) => same(Some(v), signal.status.as_deref()),
        Selector::Scope(v) => same(Some(v), signal.scope.as_deref()),
        Selector::NoErrorOn2xx => success_http && error_free,
    })
}

/// The suggested first delay for a decision (SPEC §7); the provider's `Retry-After` wins.
pub(crate) fn first_delay(
    decision: &Decision,
    retry_after: Option<u64>,
    retry_base_ms: u64,
    poll_interval_ms: u64,
) -> Option<u64> {
    match decision.next_action {
        NextAction::Retry | NextAction::RefreshCredentials => {
            Some(retry_after.unwrap_or(retry_base_ms))
        }
        _ if decision.retryable => Some(retry_after.unwrap_or(retry_base_ms)),
        NextAction::Poll => Some(retry_after.unwrap_or(poll_interval_ms)),
        NextAction::Wait => retry_after,
        _ => None,
    }
}
