//! The simulator's own errors (a bad `X-Simulate-*` header, an oversized body, an unknown control
//! endpoint), in seed 000's format `{type, code, message, param}` so that no provider dialect's
//! answer can be mistaken for one: the codes are the simulator's, never a provider's.

use std::time::Duration;

use serde::Serialize;

/// A request the simulator refuses to play.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Rejection {
    #[serde(skip)]
    pub status: u16,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<&'static str>,
    /// Methods the endpoint accepts, for a 405.
    #[serde(skip)]
    pub allow: Option<&'static str>,
    /// Whether the answer closes the connection (`Connection: close`).
    #[serde(skip)]
    pub close: bool,
}

impl Rejection {
    fn new(status: u16, code: &'static str, message: String, param: Option<&'static str>) -> Self {
        Rejection {
            status,
            kind: "invalid_request_error",
            code,
            message,
            param,
            allow: None,
            close: false,
        }
    }

    /// A simulator header with a value that cannot be read or used.
    pub fn header(param: &'static str, message: impl Into<String>) -> Self {
        Rejection::new(400, "invalid_simulate_header", message.into(), Some(param))
    }

    /// An `X-Simulate-*` header the simulator does not know (a typo would otherwise go unnoticed).
    pub fn unknown_header(message: String) -> Self {
        Rejection::new(400, "invalid_simulate_header", message, None)
    }

    /// A code the dialect does not document.
    pub fn code(param: &'static str, message: impl Into<String>) -> Self {
        Rejection::new(400, "unknown_simulate_code", message.into(), Some(param))
    }

    /// A body over the limit.
    pub fn body_too_large(limit: usize) -> Self {
        Rejection::new(
            413,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
            None,
        )
    }

    /// A body that could not be read to its end.
    pub fn unreadable_body(error: &str) -> Self {
        Rejection::new(
            400,
            "unreadable_body",
            format!("the request body could not be read: {error}"),
            None,
        )
    }

    /// A body that did not come whole in time; the connection is closed after the answer, since the
    /// rest of the body may still arrive.
    pub fn request_timeout(time: Duration) -> Self {
        Rejection {
            close: true,
            ..Rejection::new(
                408,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} ms",
                    time.as_millis()
                ),
                None,
            )
        }
    }

    /// An unknown `/__simulator/…` endpoint.
    pub fn no_endpoint(path: &str) -> Self {
        Rejection::new(
            404,
            "unknown_simulator_endpoint",
            format!(
                "{path} is not a simulator endpoint (GET /__simulator/stats, POST /__simulator/reset)"
            ),
            None,
        )
    }

    /// A control endpoint called with another method.
    pub fn method(path: &str, allow: &'static str) -> Self {
        Rejection {
            allow: Some(allow),
            ..Rejection::new(
                405,
                "method_not_allowed",
                format!("{path} accepts {allow} only"),
                None,
            )
        }
    }

    /// A failure of the simulator itself.
    pub fn server(message: String) -> Self {
        Rejection {
            kind: "api_error",
            ..Rejection::new(500, "simulator_error", message, None)
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        // Strings and an optional string: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_seed_000s_format_with_param() {
        let r = Rejection::header("X-Simulate-Fault", "bad \"fault\"");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "invalid_request_error",
                "code": "invalid_simulate_header",
                "message": "bad \"fault\"",
                "param": "X-Simulate-Fault"
            })
        );
        let v: serde_json::Value =
            serde_json::from_str(&Rejection::body_too_large(10).to_json()).unwrap();
        assert_eq!(v["param"], serde_json::Value::Null);
        assert_eq!(Rejection::body_too_large(10).status, 413);
    }
}
