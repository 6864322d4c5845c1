//! One client request through the gateway: attempts, retries, failover and polling as the policy
//! decides, one event per attempt, and the answer with its verdict headers.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::Method;
use payerr::{Category, Engine, Lang, NoResponse, Options, Outcome, Response, Verdict};
use payerr_events::{AttemptKind, Event, EventLog};

use crate::config::{GatewayConfig, Mode, ProviderConfig};
use crate::metrics::Metrics;
use crate::policy::{self, Next, Situation};
use crate::upstream::{Reply, Upstream};

/// A provider with its client.
pub struct Provider {
    /// Its configuration.
    pub config: ProviderConfig,
    /// Path prefix of the upstream URL, without a trailing `/`.
    prefix: String,
    upstream: Upstream,
    /// Its id as the `Payerr-Provider` header, when it can be one.
    id_header: Option<HeaderValue>,
}

impl Provider {
    /// Builds the client; `config` has been validated.
    pub fn new(config: ProviderConfig) -> Result<Provider, String> {
        let (authority, prefix) = crate::config::upstream_base(&config.upstream)?;
        let upstream = Upstream::new(&authority, Duration::from_millis(config.connect_timeout_ms))?;
        Ok(Provider {
            id_header: HeaderValue::from_str(&config.id).ok(),
            config,
            prefix,
            upstream,
        })
    }
}

/// A client request, read and checked.
pub struct ClientRequest {
    /// Method, passed on.
    pub method: Method,
    /// The rest of the path and the query, starting with `/`, without `payerr=` parameters.
    pub path_and_query: String,
    /// End-to-end headers.
    pub headers: HeaderMap,
    /// The body, read whole so that it can be sent again.
    pub body: Bytes,
    /// The gateway's id for this request.
    pub request_id: String,
    /// `?payerr=verdict` was given.
    pub verdict_asked: bool,
}

/// What the gateway answers.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers (verdict headers included).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// The final verdict, for the access log and metrics.
    pub verdict: Verdict,
    /// Attempts made in all.
    pub attempts: u32,
}

/// Everything a request needs.
pub struct Gateway {
    /// The engine.
    pub engine: Engine,
    /// Settings.
    pub config: GatewayConfig,
    /// Providers by id.
    pub providers: BTreeMap<String, Arc<Provider>>,
    /// Where attempts are recorded.
    pub events: EventLog,
    /// Counters.
    pub metrics: Metrics,
}

/// One attempt's result with its verdict.
struct Attempt {
    reply: Reply,
    verdict: Verdict,
    /// The operation's id, looked for only when the outcome is unknown: only then is it needed (to
    /// poll it, or to hand it back), and finding it parses bodies the common case should not pay for.
    operation: Option<String>,
}

impl Gateway {
    /// Forwards a request and decides, attempt after attempt, until there is an answer to give.
    pub async fn forward(&self, first: &Provider, req: &ClientRequest) -> Answer {
        let deadline = Instant::now() + Duration::from_millis(self.config.deadline_ms);
        let mut provider = first;
        let mut tried = vec![provider.config.id.as_str()];
        let mut attempts = 0;
        let mut on_provider = 0;
        let mut kind = AttemptKind::Send;
        loop {
            attempts += 1;
            on_provider += 1;
            let sent = self
                .attempt(
                    provider,
                    req,
                    &req.method,
                    &req.path_and_query,
                    &req.headers,
                    req.body.clone(),
                    deadline,
                    attempts,
                    kind,
                )
                .await;
            let fallback = provider
                .config
                .fallback
                .as_deref()
                .filter(|f| !tried.contains(f))
                .and_then(|f| self.providers.get(f))
                .map(Arc::as_ref);
            let operation = sent.operation.clone();
            let situation = Situation {
                attempts_on_provider: on_provider,
                fallback_available: fallback.is_some(),
                can_poll: provider.config.status_path.is_some() && operation.is_some(),
                retry_after_ms: retry_after_ms(&sent.reply),
                jitter: jitter(),
            };
            match policy::next(&sent.verdict, &situation, &self.config.retry) {
                Next::Retry { delay_ms } => {
                    let delay = Duration::from_millis(delay_ms);
                    if Instant::now() + delay < deadline {
                        tokio::time::sleep(delay).await;
                        kind = AttemptKind::Retry;
                        continue;
                    }
                }
                Next::Failover => {
                    if let Some(next) = fallback {
                        provider = next;
                        tried.push(next.config.id.as_str());
                        on_provider = 0;
                        kind = AttemptKind::Failover;
                        continue;
                    }
                }
                Next::Poll => {
                    if let Some(id) = &operation {
                        // Boxed: polling is the rare path, and inline its state would make every
                        // request's task larger (it holds a whole attempt of its own).
                        return Box::pin(self.poll(provider, req, sent, id, deadline, attempts))
                            .await;
                    }
                }
                Next::Answer => {}
            }
            return self.answer(req, provider, sent, attempts, operation);
        }
    }

    /// Queries the operation's status until its outcome is known, the poll timeout or the deadline;
    /// answers the final status, or the first answer as unknown with the operation id.
    async fn poll(
        &self,
        provider: &Provider,
        req: &ClientRequest,
        first: Attempt,
        id: &str,
        deadline: Instant,
        mut attempts: u32,
    ) -> Answer {
        let until =
            deadline.min(Instant::now() + Duration::from_millis(self.config.poll.timeout_ms));
        let path = provider
            .config
            .status_path
            .as_deref()
            .unwrap_or_default()
            .replace("{id}", id);
        let headers = poll_headers(&req.headers, &provider.config.poll_headers);
        let mut delay = first
            .verdict
            .retry_after_ms
            .unwrap_or(self.config.poll.interval_ms);
        while Instant::now() + Duration::from_millis(delay) < until {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            attempts += 1;
            let polled = self
                .attempt(
                    provider,
                    req,
                    &Method::GET,
                    &path,
                    &headers,
                    Bytes::new(),
                    until,
                    attempts,
                    AttemptKind::Poll,
                )
                .await;
            // A status query that cannot find the operation yet proves nothing about it.
            let known = polled.verdict.outcome != Outcome::Unknown
                && polled.verdict.category != Category::NotFound;
            if known {
                return self.answer(req, provider, polled, attempts, Some(id.to_owned()));
            }
            delay = polled
                .verdict
                .retry_after_ms
                .unwrap_or(self.config.poll.interval_ms);
        }
        self.answer(req, provider, first, attempts, Some(id.to_owned()))
    }

    /// Sends once, judges the reply and records the event.
    #[allow(clippy::too_many_arguments)] // one attempt's whole description; a struct would only rename it
    async fn attempt(
        &self,
        provider: &Provider,
        req: &ClientRequest,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
        deadline: Instant,
        number: u32,
        kind: AttemptKind,
    ) -> Attempt {
        let at_ms = unix_ms();
        let started = Instant::now();
        let timeout = deadline
            .saturating_duration_since(started)
            .min(Duration::from_millis(provider.config.timeout_ms));
        let reply = if timeout.is_zero() {
            Reply::Failed {
                sent: NoResponse::NotSent,
                error: "the request's deadline passed before this attempt".to_owned(),
            }
        } else {
            let target = if provider.prefix.is_empty() {
                Cow::Borrowed(path_and_query)
            } else {
                Cow::Owned([provider.prefix.as_str(), path_and_query].concat())
            };
            provider
                .upstream
                .send(method, &target, headers, body, timeout)
                .await
        };
        let elapsed = started.elapsed();
        let verdict = self.judge(&provider.config.dialect, &reply, lang(&req.headers));
        let operation = (verdict.outcome == Outcome::Unknown)
            .then(|| operation_id(&reply, req))
            .flatten();
        self.metrics
            .attempt(&provider.config.id, kind.as_str(), elapsed);
        let (http_status, error) = match &reply {
            Reply::Response { status, .. } => (Some(*status), None),
            Reply::Failed { error, .. } => (None, Some(error.clone())),
        };
        self.events.record(Event {
            at_ms,
            request_id: req.request_id.clone(),
            provider: provider.config.id.clone(),
            dialect: provider.config.dialect.clone(),
            method: method.as_str().to_owned(),
            path: path_and_query.to_owned(),
            attempt: number,
            kind,
            http_status,
            outcome: verdict.outcome,
            category: verdict.category,
            // Not `to_string()`: through `Display`, an `Arc<str>` is copied by the formatter.
            code: String::from(&*verdict.code),
            provider_code: verdict.source.code.clone(),
            latency_us: elapsed.as_micros() as u64,
            error,
            operation_id: operation.clone(),
        });
        Attempt {
            reply,
            verdict,
            operation,
        }
    }

    fn judge(&self, dialect: &str, reply: &Reply, lang: Lang) -> Verdict {
        let judged = match reply {
            Reply::Response {
                status,
                headers,
                body,
            } => {
                let pairs: Vec<(&str, &str)> = headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
                    .collect();
                let response = Response {
                    http_status: *status,
                    headers: pairs,
                    body,
                };
                let options = Options {
                    dialect: Some(dialect),
                    lang,
                };
                self.engine.normalize(&response, &options)
            }
            Reply::Failed { sent, .. } => self.engine.no_response(dialect, *sent, lang),
        };
        // Dialects were checked at start, so this cannot fail; were it to, unknown is the safe
        // answer (never a retry, never a failover).
        judged.unwrap_or_else(|_| {
            self.engine
                .no_response(payerr::engine::GENERIC_DIALECT, NoResponse::MaybeSent, lang)
                .unwrap_or_else(|e| unreachable!("the generic dialect is built in: {e}"))
        })
    }

    fn answer(
        &self,
        req: &ClientRequest,
        provider: &Provider,
        last: Attempt,
        attempts: u32,
        operation: Option<String>,
    ) -> Answer {
        let Attempt { reply, verdict, .. } = last;
        let verdict_mode = req.verdict_asked || provider.config.mode == Mode::Verdict;
        let (status, mut headers, body) = match reply {
            _ if verdict_mode => {
                let mut body = Vec::with_capacity(1024);
                verdict.write_json(&mut body);
                (verdict.http_status, json_headers(), Bytes::from(body))
            }
            // End-to-end headers only, read with room for the verdict's.
            Reply::Response {
                status,
                headers,
                body,
            } => (status, headers, body),
            Reply::Failed { error, .. } => {
                let body = error_body(&verdict, &error, operation.as_deref());
                (verdict.http_status, json_headers(), Bytes::from(body))
            }
        };
        // The enum names are static: only the code, the attempts and the operation are copied.
        // The names are made at compile time (`const`), not parsed on every answer.
        let value = HeaderValue::from_static;
        let added = [
            (
                const { HeaderName::from_static("payerr-outcome") },
                Some(value(verdict.outcome.as_str())),
            ),
            (
                const { HeaderName::from_static("payerr-category") },
                Some(value(verdict.category.as_str())),
            ),
            (
                const { HeaderName::from_static("payerr-code") },
                HeaderValue::from_str(&verdict.code).ok(),
            ),
            (
                const { HeaderName::from_static("payerr-next-action") },
                Some(value(verdict.next_action.as_str())),
            ),
            (
                const { HeaderName::from_static("payerr-retryable") },
                Some(value(bool_text(verdict.retryable))),
            ),
            (
                const { HeaderName::from_static("payerr-failover-safe") },
                Some(value(bool_text(verdict.failover_safe))),
            ),
            (
                const { HeaderName::from_static("payerr-provider") },
                provider.id_header.clone(),
            ),
            (
                const { HeaderName::from_static("payerr-attempts") },
                Some(count_header(attempts)),
            ),
            (
                const { HeaderName::from_static("payerr-operation-id") },
                operation
                    .as_deref()
                    .and_then(|o| HeaderValue::from_str(o).ok()),
            ),
        ];
        // Room for all of them at once, rather than the map growing as they come.
        headers.reserve(added.len());
        for (header, value) in added {
            if let Some(value) = value {
                headers.insert(header, value);
            }
        }
        self.metrics
            .request(&provider.config.id, verdict.outcome.as_str());
        Answer {
            status,
            headers,
            body,
            verdict,
            attempts,
        }
    }
}

/// A count as a header value; the usual small ones without an allocation.
fn count_header(n: u32) -> HeaderValue {
    static DIGITS: [HeaderValue; 10] = [
        HeaderValue::from_static("0"),
        HeaderValue::from_static("1"),
        HeaderValue::from_static("2"),
        HeaderValue::from_static("3"),
        HeaderValue::from_static("4"),
        HeaderValue::from_static("5"),
        HeaderValue::from_static("6"),
        HeaderValue::from_static("7"),
        HeaderValue::from_static("8"),
        HeaderValue::from_static("9"),
    ];
    usize::try_from(n)
        .ok()
        .and_then(|n| DIGITS.get(n))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(n))
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers
}

/// Seed 000's error format for an attempt that got no response, with the operation id when known.
fn error_body(verdict: &Verdict, error: &str, operation: Option<&str>) -> Vec<u8> {
    let message = format!(
        "{error}. {}",
        verdict.how_to_fix.as_deref().unwrap_or(&verdict.message)
    );
    let body = serde_json::json!({
        "type": "api_error",
        "code": &*verdict.code,
        "message": payerr::pan::mask_pans(&message),
        "param": null,
        "operation_id": operation,
    });
    body.to_string().into_bytes()
}

/// The caller's language for verdict texts: `Language` (seed 001 style), then `Accept-Language`.
fn lang(headers: &HeaderMap) -> Lang {
    // Names, not `&str`s: a map looks a `&str` up only after parsing it, on every attempt.
    const LANGUAGE: HeaderName = HeaderName::from_static("language");
    let header = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    header(&LANGUAGE)
        .and_then(Lang::parse)
        .or_else(|| header(&header::ACCEPT_LANGUAGE).and_then(Lang::from_accept_language))
        .unwrap_or_default()
}

/// The provider's `Retry-After`, when it sent one.
fn retry_after_ms(reply: &Reply) -> Option<u64> {
    let Reply::Response { headers, .. } = reply else {
        return None;
    };
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    let date = headers.get(header::DATE).and_then(|v| v.to_str().ok());
    payerr::retry::parse_retry_after(value, date, SystemTime::now())
}

/// Fields that name an operation, at the top level of a JSON body or in its usual containers.
const ID_FIELDS: &[&str] = &[
    "id",
    "payment_id",
    "order_id",
    "merchant_order_id",
    "transaction_id",
    "operation_id",
];
const ID_CONTAINERS: &[&str] = &["", "data", "result", "payment"];

/// The operation's id: what the provider answered, else the request's `Idempotency-Key`, else an
/// id in the request body, the order in which providers and the simulator identify operations.
fn operation_id(reply: &Reply, req: &ClientRequest) -> Option<String> {
    operation_id_in_reply(reply)
        .or_else(|| {
            req.headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .filter(|v| safe_id(v))
                .map(str::to_owned)
        })
        .or_else(|| id_in_json(&req.body))
}

fn operation_id_in_reply(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Response { body, .. } => id_in_json(body),
        Reply::Failed { .. } => None,
    }
}

fn id_in_json(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ID_CONTAINERS.iter().find_map(|container| {
        let object = if container.is_empty() {
            &value
        } else {
            value.get(container)?
        };
        ID_FIELDS.iter().find_map(|field| {
            let id = match object.get(field)? {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            safe_id(&id).then_some(id)
        })
    })
}

/// Ids go into a URL path: only characters that need no escaping, and never a card number.
fn safe_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        && payerr::pan::mask_pans(id) == id
}

/// The request headers a status query repeats.
fn poll_headers(headers: &HeaderMap, names: &[String]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in names {
        for value in headers.get_all(name.as_str()) {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                out.append(name, value.clone());
            }
        }
    }
    out
}

/// The wall clock in unix milliseconds (0 before 1970).
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A number in `[0, 1)` for backoff jitter: std's randomly keyed hasher over a counter is random
/// enough to spread retries, and needs no dependency.
fn jitter() -> f64 {
    static STATE: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let hash = STATE
        .get_or_init(RandomState::new)
        .hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], body: &str) -> ClientRequest {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        ClientRequest {
            method: Method::POST,
            path_and_query: "/pay".to_owned(),
            headers: map,
            body: Bytes::from(body.to_owned()),
            request_id: "r1".to_owned(),
            verdict_asked: false,
        }
    }

    fn response(body: &str) -> Reply {
        Reply::Response {
            status: 200,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn the_operation_id_comes_from_the_provider_then_the_key_then_the_request() {
        let req = request(&[("idempotency-key", "key-1")], r#"{"order_id":"o-9"}"#);
        assert_eq!(
            operation_id(&response(r#"{"result":{"id":"op_7"}}"#), &req).as_deref(),
            Some("op_7")
        );
        assert_eq!(
            operation_id(&response("<html>"), &req).as_deref(),
            Some("key-1")
        );
        let no_key = request(&[], r#"{"order_id":"o-9"}"#);
        let timeout = Reply::Failed {
            sent: NoResponse::MaybeSent,
            error: String::new(),
        };
        assert_eq!(operation_id(&timeout, &no_key).as_deref(), Some("o-9"));
        // Ids that would change the status path, or carry a card number, are not used.
        let unsafe_ids = request(
            &[("idempotency-key", "../admin")],
            r#"{"id":"4111111111111111"}"#,
        );
        assert_eq!(operation_id(&timeout, &unsafe_ids), None);
    }

    #[test]
    fn status_queries_repeat_only_the_listed_headers() {
        let req = request(
            &[
                ("authorization", "Bearer t"),
                ("x-simulate-code", "1001"),
                ("content-type", "application/json"),
            ],
            "",
        );
        let kept = poll_headers(&req.headers, &["authorization".to_owned()]);
        assert_eq!(kept.len(), 1);
        assert!(kept.contains_key("authorization"));
    }

    #[test]
    fn counts_are_written_in_decimal() {
        for n in [0, 1, 9, 10, 11, 123, u32::MAX] {
            assert_eq!(count_header(n), n.to_string().as_str());
        }
    }

    #[test]
    fn jitter_is_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..100).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
