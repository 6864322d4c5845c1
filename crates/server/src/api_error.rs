//! The service's own errors, in seed 000's standardized format `{type, code, message, param}`.
//!
//! The type decides the HTTP status as seed 000's table does (`invalid_request_error` 400,
//! `api_error` 500), except for the protocol-level answers that have their own status: 404, 405,
//! 408, 413, 415, 429 and 503. docs/http.md lists every code.

use hyper::StatusCode;
use payerr::InputError;
use serde::Serialize;

/// Seed 000's error types that the service uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ErrorType {
    /// The request is wrong: fix it before sending it again.
    #[serde(rename = "invalid_request_error")]
    InvalidRequest,
    /// Too many requests at once: retry after `Retry-After`.
    #[serde(rename = "rate_limit_error")]
    RateLimit,
    /// The service failed or is going away.
    #[serde(rename = "api_error")]
    Api,
}

impl ErrorType {
    /// Every type (the OpenAPI document's enum).
    pub const ALL: &'static [ErrorType] = &[
        ErrorType::InvalidRequest,
        ErrorType::RateLimit,
        ErrorType::Api,
    ];
}

/// One error answer.
#[derive(Clone, Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub(crate) status: StatusCode,
    #[serde(rename = "type")]
    pub(crate) error_type: ErrorType,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
    /// Seconds for a `Retry-After` header.
    #[serde(skip)]
    pub(crate) retry_after_s: Option<u32>,
    /// Methods for an `Allow` header (405).
    #[serde(skip)]
    pub(crate) allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, error_type: ErrorType, code: &'static str, message: String) -> Self {
        ApiError {
            status,
            error_type,
            code,
            message,
            param: None,
            retry_after_s: None,
            allow: None,
        }
    }

    /// 400 `invalid_parameter` naming the field or query parameter.
    pub(crate) fn invalid_parameter(param: &str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorType::InvalidRequest,
            "invalid_parameter",
            message.into(),
        )
        .with_param(param)
    }

    /// 400 `missing_parameter`.
    pub(crate) fn missing_parameter(param: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorType::InvalidRequest,
            "missing_parameter",
            format!("{param} is required"),
        )
        .with_param(param)
    }

    /// 400 with a code of the request's own (`batch_too_large`, malformed JSON).
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorType::InvalidRequest,
            code,
            message.into(),
        )
    }

    /// 404 with a code that says what was not found.
    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorType::InvalidRequest,
            code,
            message.into(),
        )
    }

    /// 405, with the methods the path accepts.
    pub(crate) fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> Self {
        let mut e = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorType::InvalidRequest,
            "method_not_allowed",
            format!("{method} is not allowed on {path}; use {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    /// 408: the client did not send the whole request in time.
    pub(crate) fn timeout(limit_ms: u64) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorType::InvalidRequest,
            "request_timeout",
            format!("the request was not received and answered within {limit_ms} ms"),
        )
    }

    /// 413, before the body is read where `Content-Length` tells.
    pub(crate) fn body_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::InvalidRequest,
            "body_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 415: only JSON is accepted.
    pub(crate) fn unsupported_media_type(given: &str) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::InvalidRequest,
            "unsupported_media_type",
            format!("Content-Type {given:?} is not accepted; send application/json"),
        )
    }

    /// 429: the concurrency limit is reached.
    pub(crate) fn too_many_requests(limit: usize) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::RateLimit,
            "too_many_requests",
            format!("more than {limit} requests at once; retry after the delay"),
        );
        e.retry_after_s = Some(1);
        e
    }

    /// 500: a defect in the service, never the caller's fault.
    pub(crate) fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::Api,
            "internal_error",
            "internal error; the request id in X-Request-Id identifies it in the logs".to_owned(),
        )
    }

    /// 503 from `/readyz` while draining.
    pub(crate) fn shutting_down() -> Self {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Api,
            "shutting_down",
            "the service is shutting down; send new requests to another instance".to_owned(),
        );
        e.retry_after_s = Some(1);
        e
    }

    fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        let code = e.code;
        let mut error = ApiError::bad_request(code, e.message);
        error.param = e.param;
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_seed_000s_format_with_param() {
        let e = ApiError::invalid_parameter("dialect", "unknown dialect \"x\"");
        let body: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "invalid_request_error",
                "code": "invalid_parameter",
                "message": "unknown dialect \"x\"",
                "param": "dialect",
            })
        );
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value =
            serde_json::from_slice(&ApiError::too_many_requests(8).to_json()).unwrap();
        assert_eq!(body["type"], "rate_limit_error");
        assert_eq!(body["param"], serde_json::Value::Null);
    }
}
