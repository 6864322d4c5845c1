//! Why the front door turned a request away, in seed 000's format: an error type with its HTTP
//! status, a stable code and a message for the developer reading it.

use std::time::Duration;

/// A refused request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status.
    pub status: u16,
    /// Seed 000 error type (`authentication_error`, `permission_error`, `rate_limit_error`,
    /// `idempotence_error`, `api_error`).
    pub kind: &'static str,
    /// Stable error code.
    pub code: &'static str,
    /// What went wrong and how to fix it. Never carries a key, secret or signature.
    pub message: String,
    /// For `rate_limited`: when to try again (`Retry-After`, whole seconds rounded up).
    pub retry_after: Option<Duration>,
}

impl Rejection {
    fn new(status: u16, kind: &'static str, code: &'static str, message: &str) -> Rejection {
        Rejection {
            status,
            kind,
            code,
            message: message.to_owned(),
            retry_after: None,
        }
    }

    /// 401 `authentication_error`.
    pub fn authentication(code: &'static str, message: &str) -> Rejection {
        Rejection::new(401, "authentication_error", code, message)
    }

    /// 403 `permission_error`.
    pub fn permission(code: &'static str, message: &str) -> Rejection {
        Rejection::new(403, "permission_error", code, message)
    }

    /// 429 `rate_limit_error` / `rate_limited` with its `Retry-After`.
    pub fn rate_limited(retry_after: Duration) -> Rejection {
        Rejection {
            retry_after: Some(retry_after),
            ..Rejection::new(
                429,
                "rate_limit_error",
                "rate_limited",
                "too many requests for this API key: wait for Retry-After seconds, then send again",
            )
        }
    }

    /// 400 `idempotence_error` (seed 000's status for the type).
    pub fn idempotence(code: &'static str, message: &str) -> Rejection {
        Rejection::new(400, "idempotence_error", code, message)
    }

    /// 503 `api_error` / `store_unavailable`: the state store did not answer, so nothing was
    /// forwarded and the request can be sent again.
    pub fn store_unavailable() -> Rejection {
        Rejection::new(
            503,
            "api_error",
            "store_unavailable",
            "the gateway cannot reach its state store; nothing was forwarded, send the request again",
        )
    }

    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(|d| {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            secs.max(1)
        })
    }
}
