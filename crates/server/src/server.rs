//! Sockets, limits, time and signals: accepting connections, reading bodies within the limits,
//! request ids, metrics and access logs, catalog reload on SIGHUP and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use payerr::Engine;
use tokio::sync::Semaphore;

use crate::api::{self, Catalogs, Context, Reply, JSON};
use crate::api_error::ApiError;
use crate::config::{LogLevel, ServeConfig};
use crate::connection::Connections;
use crate::listener::{Listener, Serving, Threading};
use crate::log::{Field, Logger};
use crate::metrics::{route_label, Metrics};
use crate::request_id::{RequestIds, REQUEST_ID};
use crate::routes::{self, Query, Route};

/// Rebuilds the engine from the configured catalogs (on SIGHUP); the error is the lint report.
pub type Reload = Box<dyn Fn() -> Result<Engine, String> + Send + Sync>;

/// Everything the connections share.
pub(crate) struct State {
    config: ServeConfig,
    catalogs: RwLock<Arc<Catalogs>>,
    metrics: Metrics,
    logger: Arc<Logger>,
    permits: Semaphore,
    draining: AtomicBool,
    openapi: Bytes,
    reload: Reload,
    ids: RequestIds,
}

impl State {
    pub(crate) fn new(
        config: ServeConfig,
        engine: Engine,
        reload: Reload,
        logger: Arc<Logger>,
    ) -> State {
        let openapi = Bytes::from(crate::openapi::document(&config).to_string());
        State {
            permits: Semaphore::new(config.max_concurrency),
            config,
            catalogs: RwLock::new(Arc::new(Catalogs::new(engine))),
            metrics: Metrics::default(),
            logger,
            draining: AtomicBool::new(false),
            openapi,
            reload,
            ids: RequestIds::new(),
        }
    }

    fn catalogs(&self) -> Arc<Catalogs> {
        // A poisoned lock cannot hold a half-written Arc: keep serving the value in it.
        self.catalogs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds the catalogs; on failure the previous ones stay in service.
    fn reload(&self) {
        match (self.reload)() {
            Ok(engine) => {
                let catalogs = Arc::new(Catalogs::new(engine));
                let dialects = catalogs.engine.dialects().count() as u64;
                *self.catalogs.write().unwrap_or_else(|e| e.into_inner()) = catalogs;
                self.metrics.reload(true);
                self.logger.log(
                    LogLevel::Info,
                    "catalogs reloaded",
                    &[("dialects", Field::U64(dialects))],
                );
            }
            Err(report) => {
                self.metrics.reload(false);
                self.logger.log(
                    LogLevel::Warn,
                    "catalog reload failed; the previous catalogs stay in service",
                    &[("error", Field::Str(&report))],
                );
            }
        }
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let request_id = self.ids.for_request(req.headers().get(&REQUEST_ID));
        let method = req.method().clone();
        // Only when the request line will be logged: the path and query, card numbers masked.
        let target = self.logger.enabled(LogLevel::Info).then(|| {
            let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
            payerr::pan::mask_pans(uri).into_owned()
        });
        self.metrics.in_flight(1);
        let (route, result) = match routes::resolve(&method, req.uri().path()) {
            Err(e) => (None, Err(e)),
            Ok((route, params)) => (Some(route), self.route(route, params, req).await),
        };
        let mut response = match result {
            Ok(reply) => response(StatusCode::OK, reply.content_type, reply.body),
            Err(e) => error_response(&e),
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        self.metrics.request(route, status, elapsed);
        self.metrics.in_flight(-1);
        if let Some(target) = target {
            self.log_request(&request_id, &method, &target, route, status, elapsed);
        }
        response
    }

    fn log_request(
        &self,
        request_id: &str,
        method: &hyper::Method,
        target: &str,
        route: Option<Route>,
        status: u16,
        elapsed: Duration,
    ) {
        self.logger.log(
            LogLevel::Info,
            "request",
            &[
                ("request_id", Field::Str(request_id)),
                ("method", Field::Str(method.as_str())),
                ("target", Field::Str(target)),
                ("route", Field::Str(route_label(route))),
                ("status", Field::U64(status.into())),
                ("duration_us", Field::U64(elapsed.as_micros() as u64)),
            ],
        );
    }

    async fn route(
        &self,
        route: Route,
        params: Vec<String>,
        req: Request<Incoming>,
    ) -> Result<Reply, ApiError> {
        let spec = route.spec();
        let _permit = if spec.limited {
            Some(
                self.permits
                    .try_acquire()
                    .map_err(|_| ApiError::too_many_requests(self.config.max_concurrency))?,
            )
        } else {
            None
        };
        let limit = self.config.request_timeout();
        match tokio::time::timeout(limit, self.answer(route, params, req)).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::timeout(self.config.request_timeout_ms)),
        }
    }

    async fn answer(
        &self,
        route: Route,
        params: Vec<String>,
        req: Request<Incoming>,
    ) -> Result<Reply, ApiError> {
        let (parts, body) = req.into_parts();
        let query = Query::parse(parts.uri.query())?;
        let body = if route.spec().method == "POST" {
            check_content_type(&parts.headers)?;
            read_body(body, &parts.headers, self.config.max_body_bytes).await?
        } else {
            Bytes::new()
        };
        let catalogs = self.catalogs();
        let cx = Context {
            catalogs: &catalogs,
            config: &self.config,
            metrics: &self.metrics,
            openapi: &self.openapi,
            draining: self.draining.load(Ordering::Relaxed),
            log_lines_dropped: self.logger.dropped(),
        };
        let request = api::Request {
            params,
            query,
            headers: &parts.headers,
            body,
        };
        // A defect in a handler answers 500 for this request instead of taking the connection down.
        catch_unwind(AssertUnwindSafe(|| api::dispatch(route, &cx, &request)))
            .unwrap_or_else(|_| Err(ApiError::internal()))
    }
}

/// JSON only (`application/json`, or any `+json` type); a request without a type is read as JSON.
fn check_content_type(headers: &hyper::HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let media = text.split(';').next().unwrap_or("").trim();
    let suffix = media.len().checked_sub(5).and_then(|at| media.get(at..));
    if media.eq_ignore_ascii_case(JSON) || suffix.is_some_and(|s| s.eq_ignore_ascii_case("+json")) {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(text))
    }
}

/// Reads at most `limit` bytes; a declared or actual larger body is a 413 without reading the rest.
async fn read_body(
    body: Incoming,
    headers: &hyper::HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::body_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ApiError::body_too_large(limit)),
        Err(e) => Err(ApiError::bad_request(
            "invalid_parameter",
            format!("the request body could not be read: {e}"),
        )),
    }
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let mut response = response(e.status(), JSON, Bytes::from(e.to_json()));
    let headers = response.headers_mut();
    if let Some(seconds) = e.retry_after_s {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = e.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// Serves until SIGTERM or SIGINT, then drains for at most `shutdown_grace_ms`; SIGHUP reloads.
pub(crate) async fn serve(addr: SocketAddr, state: Arc<State>) -> Result<(), String> {
    let listener = Listener::bind(addr, true).await?;
    let logger = state.logger.clone();
    logger.log(
        LogLevel::Info,
        "listening",
        &[
            ("addr", Field::Str(&listener.local.to_string())),
            ("version", Field::Str(env!("CARGO_PKG_VERSION"))),
            (
                "dialects",
                Field::U64(state.catalogs().engine.dialects().count() as u64),
            ),
        ],
    );
    let serving = Serving {
        logger: &logger,
        header_read_timeout: state.config.request_timeout(),
        grace: Duration::from_millis(state.config.shutdown_grace_ms),
        threading: Threading::Shared,
    };
    let serving_state = state.clone();
    let connect = move |stream, connections: &Connections| {
        let state = serving_state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(state.handle(req).await) }
        });
        connections.serve(TokioIo::new(stream), service)
    };
    listener
        .serve(
            serving,
            connect,
            || state.reload(),
            || state.draining.store(true, Ordering::Relaxed),
        )
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_bodies_are_accepted() {
        let mut headers = hyper::HeaderMap::new();
        assert!(check_content_type(&headers).is_ok());
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(check_content_type(&headers).is_ok(), "{ok}");
        }
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            check_content_type(&headers).unwrap_err().code,
            "unsupported_media_type"
        );
    }
}
