//! The canonical verdict: the public contract (SPEC §1). Field names and enum spellings never change;
//! fields may be added.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::taxonomy::Category;

/// What happened to the operation at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The provider completed the operation.
    Succeeded,
    /// The provider certainly did not complete the operation.
    Failed,
    /// The provider may or may not have executed it: query, never re-submit under a new key.
    Unknown,
    /// Accepted and still processing: a webhook or a later query tells the result.
    Pending,
}

impl Outcome {
    /// Every value, in declaration order (the OpenAPI document's enum).
    pub const ALL: &'static [Outcome] = &[
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::Unknown,
        Outcome::Pending,
    ];
}

/// What the caller should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextAction {
    /// Nothing: the operation is final.
    None,
    /// Asynchronous processing: a webhook or a later poll tells the result.
    Wait,
    /// Outcome unknown: query the operation's status; do not re-submit with a new key.
    Poll,
    /// Re-send the same request with the same idempotency key after the delay.
    Retry,
    /// Get a new token, then retry.
    RefreshCredentials,
    /// Try another provider.
    Failover,
    /// The customer must correct data, authenticate, use another method or call their bank.
    CustomerAction,
    /// A developer must change the request.
    FixRequest,
    /// Merchant operations must act (balance, KYC, enabling a service, configuration).
    MerchantAction,
    /// Open a ticket with the provider.
    ContactProvider,
}

impl NextAction {
    /// Every value, in declaration order (the OpenAPI document's enum).
    pub const ALL: &'static [NextAction] = &[
        NextAction::None,
        NextAction::Wait,
        NextAction::Poll,
        NextAction::Retry,
        NextAction::RefreshCredentials,
        NextAction::Failover,
        NextAction::CustomerAction,
        NextAction::FixRequest,
        NextAction::MerchantAction,
        NextAction::ContactProvider,
    ];
}

/// Who must act on the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// Nobody.
    None,
    /// The paying customer or cardholder.
    Customer,
    /// The merchant's operations staff (or its systems, for polling).
    Merchant,
    /// The merchant's developers.
    Developer,
    /// The payment provider.
    Provider,
}

impl Actor {
    /// Every value, in declaration order (the OpenAPI document's enum).
    pub const ALL: &'static [Actor] = &[
        Actor::None,
        Actor::Customer,
        Actor::Merchant,
        Actor::Developer,
        Actor::Provider,
    ];
}

/// Which matching step decided the verdict (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// An exact documented code.
    Code,
    /// An exact code within its scope (typed-error's `type`).
    CodeAndScope,
    /// A code documented with several meanings, told apart by the reason text.
    CodeAndReason,
    /// A documented range or series of codes.
    Range,
    /// A status-level rule (result status, scope, success rule).
    Status,
    /// The HTTP status alone.
    HttpStatus,
    /// Nothing usable: the safe default.
    Fallback,
}

impl MatchedBy {
    /// Every value, in declaration order (the OpenAPI document's enum).
    pub const ALL: &'static [MatchedBy] = &[
        MatchedBy::Code,
        MatchedBy::CodeAndScope,
        MatchedBy::CodeAndReason,
        MatchedBy::Range,
        MatchedBy::Status,
        MatchedBy::HttpStatus,
        MatchedBy::Fallback,
    ];
}

/// The canonical verdict for one provider response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Dialect id used (given or detected).
    pub dialect: Arc<str>,
    /// What happened to the operation.
    pub outcome: Outcome,
    /// Category of the result.
    pub category: Category,
    /// Canonical code, finer than the category (docs/taxonomy.md).
    pub code: Arc<str>,
    /// Message safe to show an end user, in the requested language.
    pub message: Arc<str>,
    /// What to do next.
    pub next_action: NextAction,
    /// Re-sending the same request unchanged (same idempotency key) can succeed.
    pub retryable: bool,
    /// Suggested first delay before retrying or polling; the provider's `Retry-After` wins.
    pub retry_after_ms: Option<u64>,
    /// The provider certainly did not process the request, so another provider may be tried.
    pub failover_safe: bool,
    /// Who must act.
    pub actor: Actor,
    /// Status a merchant's own API should return for this verdict.
    pub http_status: u16,
    /// Offending request field, when the provider named one.
    pub param: Option<String>,
    /// The provider's remedy text, or the canonical one, in the requested language where translated.
    pub how_to_fix: Option<Arc<str>>,
    /// Which matching step decided.
    pub matched_by: MatchedBy,
    /// Candidate meanings when one code has several and nothing told them apart.
    pub ambiguous: Vec<Candidate>,
    /// What the provider said.
    pub source: Source,
    /// What the provider's code means, for support staff, in the requested language.
    pub detail: Option<Arc<str>>,
}

/// What the provider said, as received (card numbers masked).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The provider's code, as text.
    pub code: Option<String>,
    /// The provider's message.
    pub message: Option<String>,
    /// The scope of the code (typed-error's `type`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The operation status field (result-status `resultStatus`, portone `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The reason text (portone `status_reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// HTTP status of the response; absent when explaining a code without a response.
    pub http_status: Option<u16>,
}

/// One documented meaning of an ambiguous code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The provider's code.
    pub provider_code: Arc<str>,
    /// The scope it is documented in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Arc<str>>,
    /// The reason text that selects this meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Arc<str>>,
    /// The provider's documented message.
    pub provider_message: Arc<str>,
    /// Canonical code of this meaning.
    pub code: Arc<str>,
    /// Category of this meaning.
    pub category: Category,
    /// Outcome of this meaning.
    pub outcome: Outcome,
    /// Next action of this meaning.
    pub next_action: NextAction,
}
