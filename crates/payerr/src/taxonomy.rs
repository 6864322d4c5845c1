//! Categories, their default decisions, and the one list of canonical codes (`catalogs/taxonomy.toml`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::lang::Lang;
use crate::verdict::{Actor, NextAction, Outcome};

/// The built-in taxonomy, compiled into the binary.
pub(crate) const BUILTIN_TAXONOMY: &str = include_str!("../catalogs/taxonomy.toml");

macro_rules! categories {
    ($($variant:ident => $name:literal,)*) => {
        /// Category of a verdict (SPEC §2). Serialized in snake_case.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[allow(missing_docs)] // each variant is documented in docs/taxonomy.md and taxonomy.toml
        pub enum Category { $($variant,)* }

        impl Category {
            /// Every category, in the order of SPEC §2.
            pub const ALL: &'static [Category] = &[$(Category::$variant,)*];

            /// The snake_case name used in JSON and catalogs.
            pub fn as_str(self) -> &'static str {
                match self { $(Category::$variant => $name,)* }
            }
        }

        impl FromStr for Category {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($name => Ok(Category::$variant),)* _ => Err(()) }
            }
        }
    };
}

categories! {
    Approved => "approved",
    Pending => "pending",
    ActionRequired => "action_required",
    OutcomeUnknown => "outcome_unknown",
    InProgress => "in_progress",
    Duplicate => "duplicate",
    ProviderUnavailable => "provider_unavailable",
    RateLimited => "rate_limited",
    IssuerUnavailable => "issuer_unavailable",
    InsufficientFunds => "insufficient_funds",
    LimitExceeded => "limit_exceeded",
    Declined => "declined",
    CardInvalid => "card_invalid",
    CardExpired => "card_expired",
    CardBlocked => "card_blocked",
    NotSupported => "not_supported",
    FraudRisk => "fraud_risk",
    AuthenticationFailed => "authentication_failed",
    Cancelled => "cancelled",
    InvalidRequest => "invalid_request",
    IdempotencyError => "idempotency_error",
    CredentialsInvalid => "credentials_invalid",
    PermissionDenied => "permission_denied",
    NotFound => "not_found",
    InvalidState => "invalid_state",
    AccountIssue => "account_issue",
    ConfigurationError => "configuration_error",
    ProviderError => "provider_error",
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision part of a verdict: everything a category, code, entry or rule can set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What happened.
    pub outcome: Outcome,
    /// What to do next.
    pub next_action: NextAction,
    /// The same request, same idempotency key, can succeed.
    pub retryable: bool,
    /// The provider certainly did not process the request.
    pub failover_safe: bool,
    /// Who must act.
    pub actor: Actor,
    /// Status for the merchant's own API.
    pub http_status: u16,
}

/// Optional changes to a [`Decision`], as written in catalogs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    /// Overrides the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Overrides the next action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
    /// Overrides retryability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Overrides failover safety.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_safe: Option<bool>,
    /// Overrides the actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// Overrides the merchant-facing HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

impl Decision {
    /// This decision with `overrides` applied.
    pub fn with(mut self, overrides: &Overrides) -> Decision {
        if let Some(v) = overrides.outcome {
            self.outcome = v;
        }
        if let Some(v) = overrides.next_action {
            self.next_action = v;
        }
        if let Some(v) = overrides.retryable {
            self.retryable = v;
        }
        if let Some(v) = overrides.failover_safe {
            self.failover_safe = v;
        }
        if let Some(v) = overrides.actor {
            self.actor = v;
        }
        if let Some(v) = overrides.http_status {
            self.http_status = v;
        }
        self
    }

    /// The first hard rule it breaks, if any: failover is never safe when the provider may have
    /// processed the request, and a succeeded operation is never retried.
    pub fn money_rule_violation(&self) -> Option<&'static str> {
        if self.failover_safe && matches!(self.outcome, Outcome::Unknown | Outcome::Pending) {
            return Some("failover_safe = true with an unknown or pending outcome: the provider may have processed it");
        }
        if self.retryable && self.outcome == Outcome::Succeeded {
            return Some("retryable = true with a succeeded outcome");
        }
        None
    }
}

/// A text in English and Simplified Chinese.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// English.
    pub en: Arc<str>,
    /// Simplified Chinese.
    pub zh: Arc<str>,
}

impl Text {
    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &Arc<str> {
        match lang {
            Lang::En => &self.en,
            Lang::Zh => &self.zh,
        }
    }
}

/// One canonical code with its customer message and remedy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CanonicalCode {
    /// The code, snake_case.
    pub code: Arc<str>,
    /// Its category.
    pub category: Category,
    /// Message safe to show an end user.
    pub message: Text,
    /// What the merchant's developers or operations should do.
    pub how_to_fix: Text,
    /// The resolved decision: category defaults with the code's overrides.
    pub decision: Decision,
}

/// Defaults of one category.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CategoryInfo {
    /// The category.
    pub category: Category,
    /// What it means.
    pub description: Arc<str>,
    /// Its default decision.
    pub decision: Decision,
}

/// A rule of matching step 5: an HTTP status range and the canonical code it yields.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpRule {
    /// First status, inclusive.
    pub from: u16,
    /// Last status, inclusive.
    pub to: u16,
    /// The canonical code.
    pub canonical: Arc<CanonicalCode>,
}

/// Categories, canonical codes, HTTP rules and the fallback.
#[derive(Clone, Debug)]
pub struct Taxonomy {
    categories: Vec<CategoryInfo>,
    codes: FxHashMap<Arc<str>, Arc<CanonicalCode>>,
    http_rules: Vec<HttpRule>,
    fallback: Arc<CanonicalCode>,
    unknown: Arc<CanonicalCode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxonomyFile {
    categories: BTreeMap<String, CategoryFile>,
    http_rules: Vec<HttpRuleFile>,
    fallback: String,
    codes: BTreeMap<String, CodeFile>,
}

// No deny_unknown_fields here: serde does not support it together with `flatten`.
#[derive(Deserialize)]
struct CategoryFile {
    description: String,
    #[serde(flatten)]
    decision: Decision,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpRuleFile {
    from: u16,
    to: u16,
    canonical: String,
}

#[derive(Deserialize)]
struct CodeFile {
    category: String,
    message: Text,
    how_to_fix: Text,
    #[serde(flatten)]
    overrides: Overrides,
}

impl Taxonomy {
    /// The built-in taxonomy.
    pub fn builtin() -> Result<Taxonomy, Error> {
        Taxonomy::parse(BUILTIN_TAXONOMY)
    }

    /// Parses a taxonomy file and checks that it is complete and consistent.
    pub fn parse(text: &str) -> Result<Taxonomy, Error> {
        let file: TaxonomyFile =
            toml::from_str(text).map_err(|e| Error::taxonomy(format!("taxonomy.toml: {e}")))?;
        let mut categories = Vec::with_capacity(Category::ALL.len());
        for &category in Category::ALL {
            let info = file.categories.get(category.as_str()).ok_or_else(|| {
                Error::taxonomy(format!(
                    "taxonomy.toml: category `{category}` has no defaults"
                ))
            })?;
            categories.push(CategoryInfo {
                category,
                description: info.description.as_str().into(),
                decision: info.decision,
            });
        }
        if let Some(extra) = file
            .categories
            .keys()
            .find(|k| k.parse::<Category>().is_err())
        {
            return Err(Error::taxonomy(format!(
                "taxonomy.toml: `{extra}` is not a category of the contract"
            )));
        }
        let mut codes = FxHashMap::default();
        for (code, def) in &file.codes {
            let category: Category = def.category.parse().map_err(|()| {
                Error::taxonomy(format!(
                    "taxonomy.toml: code `{code}` has unknown category `{}`",
                    def.category
                ))
            })?;
            let decision = categories[category as usize].decision.with(&def.overrides);
            if let Some(why) = decision.money_rule_violation() {
                return Err(Error::taxonomy(format!(
                    "taxonomy.toml: code `{code}`: {why}"
                )));
            }
            let code: Arc<str> = code.as_str().into();
            codes.insert(
                code.clone(),
                Arc::new(CanonicalCode {
                    code,
                    category,
                    message: def.message.clone(),
                    how_to_fix: def.how_to_fix.clone(),
                    decision,
                }),
            );
        }
        let lookup = |code: &str| {
            codes.get(code).cloned().ok_or_else(|| {
                Error::taxonomy(format!("taxonomy.toml: unknown canonical code `{code}`"))
            })
        };
        let http_rules = file
            .http_rules
            .iter()
            .map(|r| {
                Ok(HttpRule {
                    from: r.from,
                    to: r.to,
                    canonical: lookup(&r.canonical)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let fallback = lookup(&file.fallback)?;
        let unknown = lookup(Category::OutcomeUnknown.as_str())?;
        Ok(Taxonomy {
            categories,
            codes,
            http_rules,
            fallback,
            unknown,
        })
    }

    /// Defaults of every category, in SPEC order.
    pub fn categories(&self) -> &[CategoryInfo] {
        &self.categories
    }

    /// Defaults of one category.
    pub fn category(&self, category: Category) -> &CategoryInfo {
        &self.categories[category as usize]
    }

    /// A canonical code by name.
    pub fn code(&self, code: &str) -> Option<&Arc<CanonicalCode>> {
        self.codes.get(code)
    }

    /// Every canonical code, sorted by category then code.
    pub fn codes(&self) -> Vec<&Arc<CanonicalCode>> {
        let mut all: Vec<_> = self.codes.values().collect();
        all.sort_by(|a, b| (a.category, &a.code).cmp(&(b.category, &b.code)));
        all
    }

    /// The canonical code that an HTTP status alone yields, if any rule covers it.
    pub fn http_rule(&self, status: u16) -> Option<&Arc<CanonicalCode>> {
        self.http_rules
            .iter()
            .find(|r| (r.from..=r.to).contains(&status))
            .map(|r| &r.canonical)
    }

    /// The rules of matching step 5, in order.
    pub fn http_rules(&self) -> &[HttpRule] {
        &self.http_rules
    }

    /// The generic code of an outcome nobody can vouch for (`outcome_unknown`), used when a provider's
    /// status or several meanings contradict a code.
    pub fn unknown_outcome(&self) -> &Arc<CanonicalCode> {
        &self.unknown
    }

    /// The canonical code used when nothing decides.
    pub fn fallback(&self) -> &Arc<CanonicalCode> {
        &self.fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_round_trip_through_serde_and_from_str() {
        for &c in Category::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
        }
        assert_eq!(Category::ALL.len(), 28);
    }

    #[test]
    fn overrides_apply_only_what_they_name() {
        let base = Decision {
            outcome: Outcome::Failed,
            next_action: NextAction::Retry,
            retryable: true,
            failover_safe: true,
            actor: Actor::Provider,
            http_status: 503,
        };
        let changed = base.with(&Overrides {
            outcome: Some(Outcome::Unknown),
            failover_safe: Some(false),
            ..Overrides::default()
        });
        assert_eq!(changed.outcome, Outcome::Unknown);
        assert!(!changed.failover_safe);
        assert_eq!(changed.next_action, NextAction::Retry);
        assert_eq!(changed.http_status, 503);
    }

    #[test]
    fn money_rules_reject_failover_on_uncertain_outcomes() {
        let d = Decision {
            outcome: Outcome::Unknown,
            next_action: NextAction::Poll,
            retryable: false,
            failover_safe: true,
            actor: Actor::Merchant,
            http_status: 202,
        };
        assert!(d.money_rule_violation().is_some());
        let ok = Decision {
            failover_safe: false,
            ..d
        };
        assert!(ok.money_rule_violation().is_none());
    }
}
