//! The gateway's listener: routing (`/healthz`, `/metrics`, `/{provider}/…`), reading client bodies
//! within the limit, request ids and access logs, and graceful shutdown.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use payerr_frontdoor::door::CREDENTIAL_HEADERS;
use payerr_frontdoor::idempotency::{StoredResponse, IDEMPOTENT_REPLAYED};
use payerr_frontdoor::{Admission, FrontDoor, Presented, Rejection};
use payerr_server::connection::Connections;
use payerr_server::listener::{per_core, Listener, Serving};
use payerr_server::log::{Field, Logger};
use payerr_server::request_id::{RequestIds, REQUEST_ID};
use payerr_server::LogLevel;

use crate::detach::{Detachable, Panicked};
use crate::metrics::EventCounters;
use crate::proxy::{unix_ms, Answer, ClientRequest, Gateway};
use crate::upstream::keep_end_to_end;

/// The gateway and what serving it needs.
pub struct State {
    /// The gateway.
    pub gateway: Gateway,
    /// The checks before anything is forwarded.
    pub door: FrontDoor,
    /// Logs.
    pub logger: Arc<Logger>,
    /// Request ids.
    pub ids: RequestIds,
}

/// What the access log says of a request beyond its method, target and status.
#[derive(Default)]
struct Summary {
    /// The client's id (never its key).
    client: Option<String>,
    /// The error code of a request turned away before forwarding (by the front door or the
    /// gateway).
    rejected: Option<&'static str>,
    /// A replay of a stored idempotent answer.
    replayed: bool,
    /// Final outcome, code and attempts of a forwarded request.
    forwarded: Option<(&'static str, Arc<str>, u32)>,
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

/// The front door's refusal, with `Retry-After` when it has one.
fn refusal(rejection: &Rejection) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = error(status, rejection.kind, rejection.code, &rejection.message);
    if let Some(secs) = rejection.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// A stored answer as it was first given, marked as a replay.
fn replay(stored: StoredResponse) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(stored.body)));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

/// An answer in the form kept for replays.
fn stored(answer: &Answer) -> StoredResponse {
    StoredResponse {
        status: answer.status,
        headers: answer
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
        body: answer.body.to_vec(),
    }
}

impl State {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: IpAddr,
    ) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let request_id = self.ids.for_request(req.headers().get(&REQUEST_ID));
        // The access line's method and target, taken before the request is consumed, and only
        // when the line is written.
        let logged = self.logger.enabled(LogLevel::Info).then(|| {
            (
                req.method().clone(),
                // Card numbers in a path or query never reach a log line whole.
                payerr::pan::mask_pans(req.uri().path_and_query().map_or("/", |p| p.as_str()))
                    .into_owned(),
            )
        });
        let mut summary = Summary::default();
        let mut response = self.route(req, &request_id, peer, &mut summary).await;
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        if let Some((method, target)) = logged {
            self.access_log(&request_id, &method, &target, &response, started, &summary);
        }
        response
    }

    /// The access log line of an answered request.
    fn access_log(
        &self,
        request_id: &str,
        method: &Method,
        target: &str,
        response: &Response<Full<Bytes>>,
        started: Instant,
        summary: &Summary,
    ) {
        let mut fields = vec![
            ("request_id", Field::Str(request_id)),
            ("method", Field::Str(method.as_str())),
            ("target", Field::Str(target)),
            ("status", Field::U64(response.status().as_u16().into())),
            (
                "duration_us",
                Field::U64(started.elapsed().as_micros() as u64),
            ),
        ];
        if let Some(client) = &summary.client {
            fields.push(("client", Field::Str(client)));
        }
        if let Some(code) = summary.rejected {
            fields.push(("rejected", Field::Str(code)));
        }
        if summary.replayed {
            fields.push(("replayed", Field::Str("true")));
        }
        if let Some((outcome, code, attempts)) = &summary.forwarded {
            fields.push(("outcome", Field::Str(outcome)));
            fields.push(("code", Field::Str(code)));
            fields.push(("attempts", Field::U64((*attempts).into())));
        }
        self.logger.log(LogLevel::Info, "request", &fields);
    }

    /// The response; what the access log should add goes into `summary`.
    async fn route(
        &self,
        req: Request<Incoming>,
        request_id: &str,
        peer: IpAddr,
        summary: &mut Summary,
    ) -> Response<Full<Bytes>> {
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        match req.uri().path() {
            "/healthz" if get => {
                return json(
                    Bytes::from_static(b"{\"status\":\"ok\"}"),
                    "application/json",
                )
            }
            "/metrics" if get => {
                let counters = EventCounters::of(&self.gateway.events);
                let text = self.gateway.metrics.render(&counters);
                return json(
                    Bytes::from(text),
                    "text/plain; version=0.0.4; charset=utf-8",
                );
            }
            _ => {}
        }
        let (mut parts, body) = req.into_parts();
        let limit = self.gateway.config.max_body_bytes;
        // Without it a client could hold a connection and its task for ever by sending less body
        // than its head promised. (The timer costs about 300 instructions per request: hyper
        // hands the body over after the first poll, even when it came with the head.)
        let time = Duration::from_millis(self.gateway.config.client_timeout_ms);
        let read = tokio::time::timeout(time, Limited::new(body, limit).collect()).await;
        let Ok(read) = read else {
            let message = format!(
                "the request body did not arrive within {} ms (client_timeout_ms)",
                time.as_millis()
            );
            let mut response = self.turn_away(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                &message,
                summary,
            );
            // The rest of the body may still come: the connection cannot be read on, so it is
            // closed after the answer, and the answer says so (RFC 9110 §15.5.9).
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        };
        let body = match read {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                let message = format!("the request body is larger than {limit} bytes");
                return self.turn_away(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    &message,
                    summary,
                );
            }
            Err(e) => {
                let message = format!("the request body could not be read: {e}");
                return self.turn_away(StatusCode::BAD_REQUEST, "invalid_body", &message, summary);
            }
        };
        // What the client signed: the target exactly as it sent it.
        let signed_target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let presented = Presented::new(&parts.method, signed_target, &parts.headers, &body, peer);
        let client = match self.door.authenticate(&presented, unix_ms() / 1000).await {
            Ok(client) => client.map(|c| c.id.clone()),
            Err(rejection) => return self.refuse(&rejection, summary),
        };
        summary.client.clone_from(&client);
        let target = parts.uri.path().trim_start_matches('/');
        let (id, rest) = target.split_once('/').unwrap_or((target, ""));
        let Some(provider) = self.gateway.providers.get(id) else {
            let message = format!(
                "no provider {id:?}: requests go to /{{provider_id}}/…, with a provider of the configuration ({})",
                self.gateway.providers.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            return self.turn_away(
                StatusCode::NOT_FOUND,
                "provider_not_found",
                &message,
                summary,
            );
        };
        let ticket = match self
            .door
            .begin(client.as_deref().unwrap_or_default(), &presented)
            .await
        {
            Ok(Admission::Forward(ticket)) => ticket,
            Ok(Admission::Replay(stored)) => {
                summary.replayed = true;
                self.gateway.metrics.replayed();
                return replay(stored);
            }
            Err(rejection) => return self.refuse(&rejection, summary),
        };
        let (query, verdict_asked) = split_payerr_query(parts.uri.query());
        // Not `format!`: on every request, its machinery costs more than the copy.
        let path_and_query = match query {
            Some(q) => ["/", rest, "?", &q].concat(),
            None => ["/", rest].concat(),
        };
        drop(presented);
        keep_end_to_end(&mut parts.headers);
        if !self.door.is_open() {
            // The client's credentials are for the gateway, not for the provider.
            for name in CREDENTIAL_HEADERS {
                parts.headers.remove(name);
            }
        }
        let request = ClientRequest {
            method: parts.method,
            path_and_query,
            headers: parts.headers,
            body: body.clone(),
            request_id: request_id.to_owned(),
            verdict_asked,
        };
        let answer = self.gateway.forward(provider, &request).await;
        if let Some(ticket) = ticket {
            if let Err(e) = self.door.complete(&ticket, &stored(&answer)).await {
                self.logger.log(
                    LogLevel::Error,
                    "the answer could not be stored for its idempotency key; later requests with the key answer request_being_processed until it expires",
                    &[
                        ("request_id", Field::Str(request_id)),
                        ("error", Field::Str(&e.to_string())),
                    ],
                );
            }
        }
        let mut response = Response::new(Full::new(answer.body));
        *response.status_mut() =
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
        *response.headers_mut() = answer.headers;
        summary.forwarded = Some((
            answer.verdict.outcome.as_str(),
            Arc::clone(&answer.verdict.code),
            answer.attempts,
        ));
        response
    }

    fn refuse(&self, rejection: &Rejection, summary: &mut Summary) -> Response<Full<Bytes>> {
        summary.rejected = Some(rejection.code);
        self.gateway.metrics.rejected(rejection.code);
        refusal(rejection)
    }

    /// The gateway's own refusal of a request it cannot forward (its body, or its provider id),
    /// counted and logged as the front door's are.
    fn turn_away(
        &self,
        status: StatusCode,
        code: &'static str,
        message: &str,
        summary: &mut Summary,
    ) -> Response<Full<Bytes>> {
        summary.rejected = Some(code);
        self.gateway.metrics.rejected(code);
        error(status, "invalid_request_error", code, message)
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
        header_read_timeout: Duration::from_millis(state.gateway.config.client_timeout_ms),
        grace: Duration::from_millis(state.gateway.config.shutdown_grace_ms),
        threading: per_core(),
    };
    let connect = move |stream: tokio::net::TcpStream, connections: &Connections| {
        let state = state.clone();
        // An address that cannot be read matches no allow-list but 0.0.0.0/0.
        let peer = stream
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let service = service_fn(move |req| {
            let state = state.clone();
            async move {
                // Each request runs to its end, even when its client hangs up: that cancels
                // neither an upstream call half way (its attempt unrecorded, its idempotency
                // key stranded) nor the access log line.
                let answered = Detachable::new(state.handle(req, peer)).await;
                Ok::<_, Infallible>(answered.unwrap_or_else(|Panicked| {
                        error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "api_error",
                            "internal_error",
                            "the gateway failed while answering; the outcome is unknown: query the payment before sending it again",
                        )
                    }))
            }
        });
        connections.serve(TokioIo::new(stream), service)
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
