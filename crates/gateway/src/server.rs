//! The gateway's listener: routing (`/healthz`, `/metrics`, `/{provider}/…`), reading client bodies
//! within the limit, request ids and access logs, and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use payerr_server::listener::{Listener, Serving};
use payerr_server::log::{Field, Logger};
use payerr_server::request_id::{RequestIds, REQUEST_ID};
use payerr_server::LogLevel;

use crate::metrics::EventCounters;
use crate::proxy::{ClientRequest, Gateway};
use crate::upstream::end_to_end;

/// Time a client gets to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The gateway and what serving it needs.
pub struct State {
    /// The gateway.
    pub gateway: Gateway,
    /// Logs.
    pub logger: Arc<Logger>,
    /// Request ids.
    pub ids: RequestIds,
}

/// A seed 000 error answered by the gateway itself.
fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "type": kind, "code": code, "message": message, "param": null });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl State {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let request_id = self.ids.for_request(req.headers().get(REQUEST_ID));
        let method = req.method().clone();
        // Card numbers in a path or query never reach a log line whole.
        let target = payerr::pan::mask_pans(req.uri().path_and_query().map_or("/", |p| p.as_str()))
            .into_owned();
        let (mut response, summary) = self.route(req, &request_id).await;
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        let status = response.status().as_u16();
        let mut fields = vec![
            ("request_id", Field::Str(&request_id)),
            ("method", Field::Str(method.as_str())),
            ("target", Field::Str(&target)),
            ("status", Field::U64(status.into())),
            (
                "duration_us",
                Field::U64(started.elapsed().as_micros() as u64),
            ),
        ];
        if let Some((outcome, code, attempts)) = &summary {
            fields.push(("outcome", Field::Str(outcome)));
            fields.push(("code", Field::Str(code)));
            fields.push(("attempts", Field::U64((*attempts).into())));
        }
        self.logger.log(LogLevel::Info, "request", &fields);
        response
    }

    /// The response, and for forwarded requests (outcome, code, attempts) for the log.
    async fn route(
        &self,
        req: Request<Incoming>,
        request_id: &str,
    ) -> (Response<Full<Bytes>>, Option<(&'static str, String, u32)>) {
        let path = req.uri().path().to_owned();
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        match path.as_str() {
            "/healthz" if get => {
                return (
                    json(
                        Bytes::from_static(b"{\"status\":\"ok\"}"),
                        "application/json",
                    ),
                    None,
                )
            }
            "/metrics" if get => {
                let events = &self.gateway.events;
                let counters = EventCounters {
                    recorded: events.recorded(),
                    written: events.written(),
                    dropped: events.dropped(),
                };
                let text = self.gateway.metrics.render(&counters);
                return (
                    json(
                        Bytes::from(text),
                        "text/plain; version=0.0.4; charset=utf-8",
                    ),
                    None,
                );
            }
            _ => {}
        }
        let mut segments = path.trim_start_matches('/').splitn(2, '/');
        let id = segments.next().unwrap_or_default();
        let Some(provider) = self.gateway.providers.get(id) else {
            let message = format!(
                "no provider {id:?}: requests go to /{{provider_id}}/…, with a provider of the configuration ({})",
                self.gateway.providers.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            return (
                error(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "provider_not_found",
                    &message,
                ),
                None,
            );
        };
        let rest = segments.next().unwrap_or_default();
        let (query, verdict_asked) = split_payerr_query(req.uri().query());
        let path_and_query = match query {
            Some(q) => format!("/{rest}?{q}"),
            None => format!("/{rest}"),
        };
        let (parts, body) = req.into_parts();
        let limit = self.gateway.config.max_body_bytes;
        let body = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                let message = format!("the request body is larger than {limit} bytes");
                return (
                    error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "invalid_request_error",
                        "body_too_large",
                        &message,
                    ),
                    None,
                );
            }
            Err(e) => {
                let message = format!("the request body could not be read: {e}");
                return (
                    error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        "invalid_body",
                        &message,
                    ),
                    None,
                );
            }
        };
        let request = ClientRequest {
            method: parts.method,
            path_and_query,
            headers: end_to_end(&parts.headers),
            body,
            request_id: request_id.to_owned(),
            verdict_asked,
        };
        let answer = self.gateway.forward(provider, &request).await;
        let mut response = Response::new(Full::new(answer.body));
        *response.status_mut() =
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
        *response.headers_mut() = answer.headers;
        let summary = (
            answer.verdict.outcome.as_str(),
            answer.verdict.code.to_string(),
            answer.attempts,
        );
        (response, Some(summary))
    }
}

fn json(body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The query without the gateway's own `payerr=` parameters, and whether the verdict was asked for.
fn split_payerr_query(query: Option<&str>) -> (Option<String>, bool) {
    let Some(query) = query else {
        return (None, false);
    };
    let mut verdict = false;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("payerr=") {
            Some(value) => {
                verdict |= value == "verdict";
                false
            }
            None => true,
        })
        .collect();
    let kept = (!kept.is_empty()).then(|| kept.join("&"));
    (kept, verdict)
}

/// Serves until SIGTERM or SIGINT, then lets in-flight requests finish for at most the grace period.
pub async fn serve(addr: SocketAddr, state: Arc<State>) -> Result<(), String> {
    let listener = Listener::bind(addr, false).await?;
    let logger = state.logger.clone();
    let providers = state.gateway.providers.len() as u64;
    logger.log(
        LogLevel::Info,
        "listening",
        &[
            ("addr", Field::Str(&listener.local.to_string())),
            ("providers", Field::U64(providers)),
            ("version", Field::Str(env!("CARGO_PKG_VERSION"))),
        ],
    );
    let serving = Serving {
        logger: &logger,
        header_read_timeout: HEADER_TIMEOUT,
        grace: Duration::from_millis(state.gateway.config.shutdown_grace_ms),
    };
    let connect = |stream, builder: &http1::Builder, graceful: &GracefulShutdown| {
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(state.handle(req).await) }
        });
        graceful.watch(builder.serve_connection(TokioIo::new(stream), service))
    };
    listener.serve(serving, connect, || {}, || {}).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_takes_its_own_query_parameters_out() {
        assert_eq!(split_payerr_query(None), (None, false));
        assert_eq!(split_payerr_query(Some("payerr=verdict")), (None, true));
        assert_eq!(
            split_payerr_query(Some("a=1&payerr=verdict&b=2")),
            (Some("a=1&b=2".to_owned()), true)
        );
        assert_eq!(
            split_payerr_query(Some("a=1&payerr=proxy")),
            (Some("a=1".to_owned()), false)
        );
    }
}
