//! The canonical verdict: the public contract (SPEC §1). Field names and enum spellings never change;
//! fields may be added.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::json::JsonWriter;
use crate::taxonomy::Category;

/// Declares an enum of the contract with its wire spellings, so that `ALL` (the OpenAPI document's enum)
/// and `as_str` (the fast JSON writer) come from one list. serde spells the same names; a unit test
/// holds the two together.
macro_rules! wire_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every value, in declaration order (the OpenAPI document's enum).
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The snake_case name used in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)* }
            }
        }
    };
}

wire_enum! {
    /// What happened to the operation at the provider.
    pub enum Outcome {
        /// The provider completed the operation.
        Succeeded => "succeeded",
        /// The provider certainly did not complete the operation.
        Failed => "failed",
        /// The provider may or may not have executed it: query, never re-submit under a new key.
        Unknown => "unknown",
        /// Accepted and still processing: a webhook or a later query tells the result.
        Pending => "pending",
    }
}

wire_enum! {
    /// What the caller should do next.
    pub enum NextAction {
        /// Nothing: the operation is final.
        None => "none",
        /// Asynchronous processing: a webhook or a later poll tells the result.
        Wait => "wait",
        /// Outcome unknown: query the operation's status; do not re-submit with a new key.
        Poll => "poll",
        /// Re-send the same request with the same idempotency key after the delay.
        Retry => "retry",
        /// Get a new token, then retry.
        RefreshCredentials => "refresh_credentials",
        /// Try another provider.
        Failover => "failover",
        /// The customer must correct data, authenticate, use another method or call their bank.
        CustomerAction => "customer_action",
        /// A developer must change the request.
        FixRequest => "fix_request",
        /// Merchant operations must act (balance, KYC, enabling a service, configuration).
        MerchantAction => "merchant_action",
        /// Open a ticket with the provider.
        ContactProvider => "contact_provider",
    }
}

wire_enum! {
    /// Who must act on the verdict.
    pub enum Actor {
        /// Nobody.
        None => "none",
        /// The paying customer or cardholder.
        Customer => "customer",
        /// The merchant's operations staff (or its systems, for polling).
        Merchant => "merchant",
        /// The merchant's developers.
        Developer => "developer",
        /// The payment provider.
        Provider => "provider",
    }
}

wire_enum! {
    /// Which matching step decided the verdict (SPEC §5).
    pub enum MatchedBy {
        /// An exact documented code.
        Code => "code",
        /// An exact code within its scope (typed-error's `type`).
        CodeAndScope => "code_and_scope",
        /// A code documented with several meanings, told apart by the reason text.
        CodeAndReason => "code_and_reason",
        /// A documented range or series of codes.
        Range => "range",
        /// A status-level rule (result status, scope, success rule).
        Status => "status",
        /// The HTTP status alone.
        HttpStatus => "http_status",
        /// Nothing usable: the safe default.
        Fallback => "fallback",
            /// No response at all (a gateway's timeout or connection failure): decided by how the
            /// attempt failed (`Engine::no_response`).
            Transport => "transport",
    }
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

impl Verdict {
    /// Appends this verdict as JSON: exactly the bytes `serde_json::to_writer` writes, in less time
    /// (the HTTP service writes every verdict this way; see the `json` module for why).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = JsonWriter::object(out);
        o.str("dialect", &self.dialect);
        o.str("outcome", self.outcome.as_str());
        o.str("category", self.category.as_str());
        o.str("code", &self.code);
        o.str("message", &self.message);
        o.str("next_action", self.next_action.as_str());
        o.bool("retryable", self.retryable);
        o.opt_u64("retry_after_ms", self.retry_after_ms);
        o.bool("failover_safe", self.failover_safe);
        o.str("actor", self.actor.as_str());
        o.u64("http_status", self.http_status.into());
        o.opt_str("param", self.param.as_deref());
        o.opt_str("how_to_fix", self.how_to_fix.as_deref());
        o.str("matched_by", self.matched_by.as_str());
        let out = o.key("ambiguous");
        out.push(b'[');
        for (i, candidate) in self.ambiguous.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            candidate.write_json(out);
        }
        out.push(b']');
        self.source.write_json(o.key("source"));
        o.opt_str("detail", self.detail.as_deref());
        o.end();
    }
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

impl Source {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = JsonWriter::object(out);
        o.opt_str("code", self.code.as_deref());
        o.opt_str("message", self.message.as_deref());
        o.some_str("type", self.scope.as_deref());
        o.some_str("status", self.status.as_deref());
        o.some_str("reason", self.reason.as_deref());
        o.opt_u64("http_status", self.http_status.map(u64::from));
        o.end();
    }
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

impl Candidate {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = JsonWriter::object(out);
        o.str("provider_code", &self.provider_code);
        o.some_str("scope", self.scope.as_deref());
        o.some_str("reason", self.reason.as_deref());
        o.str("provider_message", &self.provider_message);
        o.str("code", &self.code);
        o.str("category", self.category.as_str());
        o.str("outcome", self.outcome.as_str());
        o.str("next_action", self.next_action.as_str());
        o.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_name(value: impl Serialize) -> String {
        serde_json::to_value(value)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    #[test]
    fn wire_names_are_serde_names() {
        for v in Outcome::ALL {
            assert_eq!(v.as_str(), serde_name(v));
        }
        for v in NextAction::ALL {
            assert_eq!(v.as_str(), serde_name(v));
        }
        for v in Actor::ALL {
            assert_eq!(v.as_str(), serde_name(v));
        }
        for v in MatchedBy::ALL {
            assert_eq!(v.as_str(), serde_name(v));
        }
        for v in Category::ALL {
            assert_eq!(v.as_str(), serde_name(v));
        }
    }
}
