//! One recorded attempt: what the gateway sent upstream and what came of it.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use payerr::{Category, Outcome};
use serde::{Deserialize, Serialize};

/// One attempt of the gateway at a provider: a send, a retry, a failover or a status poll.
///
/// The gateway fills it in; [`EventLog::record`](crate::EventLog::record) sanitizes every text field
/// (card numbers masked, CVV-like parameters removed, see [`sanitize`](crate::sanitize)) before it is
/// stored, so callers may pass what they have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When the attempt started, in milliseconds since the Unix epoch (see [`now_ms`]).
    pub at_ms: i64,
    /// The gateway's id for the client request; every attempt of one client request shares it.
    pub request_id: String,
    /// The provider id (from the gateway's configuration) the attempt went to.
    pub provider: String,
    /// The dialect used to read the provider's answer.
    pub dialect: String,
    /// HTTP method sent upstream.
    pub method: String,
    /// Path and query as sent upstream (CVV-like query parameters are removed before storing).
    pub path: String,
    /// 1-based number of the attempt within the client request.
    pub attempt: u32,
    /// Why this attempt was made.
    pub kind: AttemptKind,
    /// The provider's HTTP status; `None` when no response came (timeout, connection error).
    pub http_status: Option<u16>,
    /// The verdict's outcome for this attempt.
    pub outcome: Outcome,
    /// The verdict's category for this attempt.
    pub category: Category,
    /// The verdict's canonical code.
    pub code: String,
    /// The provider's own code, when it sent one.
    pub provider_code: Option<String>,
    /// Time from sending the request to the end of the response (or the failure), in microseconds.
    pub latency_us: u64,
    /// Connection or timeout description when no response came.
    pub error: Option<String>,
    /// The provider's operation id, when known (what a status poll asks about).
    pub operation_id: Option<String>,
}

/// Why an attempt was made. Stored and serialized in snake_case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// The first send of the client's request.
    Send,
    /// The same request re-sent to the same provider.
    Retry,
    /// The request sent to the fallback provider.
    Failover,
    /// A status query for an operation whose outcome was unknown or pending.
    Poll,
}

impl AttemptKind {
    /// Every kind, in declaration order.
    pub const ALL: [AttemptKind; 4] = [
        AttemptKind::Send,
        AttemptKind::Retry,
        AttemptKind::Failover,
        AttemptKind::Poll,
    ];

    /// The snake_case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Send => "send",
            AttemptKind::Retry => "retry",
            AttemptKind::Failover => "failover",
            AttemptKind::Poll => "poll",
        }
    }
}

impl fmt::Display for AttemptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AttemptKind {
    type Err = String;

    fn from_str(s: &str) -> Result<AttemptKind, String> {
        AttemptKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown attempt kind {s:?}"))
    }
}

/// The current time in milliseconds since the Unix epoch, for [`Event::at_ms`]. A clock set before
/// 1970 gives 0 rather than a panic: a wrong timestamp is better than a lost event.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_one_spelling_in_serde_and_the_database() {
        for kind in AttemptKind::ALL {
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(kind.as_str().parse::<AttemptKind>(), Ok(kind));
        }
        assert!("resend".parse::<AttemptKind>().is_err());
    }
}
