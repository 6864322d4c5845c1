//! The gateway's configuration file (docs/gateway.md): where to listen, where to record, and the
//! providers to proxy with their dialect, upstream, fallback, timeout and status path.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hyper::http::uri::Authority;
use hyper::Uri;
use payerr::{PollPolicy, RetryPolicy};
use payerr_frontdoor::client::ClientConfig;
use payerr_frontdoor::Settings;
use payerr_server::{LogFormat, LogLevel};
use serde::Deserialize;

/// The whole file. Unknown keys are refused, so a typo is an error rather than a silent default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Directory of the event database.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Directory of extra catalog files, as for the other commands.
    #[serde(default)]
    pub catalog_dir: Option<PathBuf>,
    /// Backoff between retries (SPEC §7).
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Polling of unknown outcomes (SPEC §7).
    #[serde(default)]
    pub poll: PollPolicy,
    /// Time for one client request, every attempt, wait and poll included, in milliseconds.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Largest request body accepted from a client, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Time a client gets to send each request head (from the connection's opening or its previous
    /// answer), and then the request's body, in milliseconds. An idle keep-alive connection is
    /// closed after it.
    #[serde(default = "default_client_timeout_ms")]
    pub client_timeout_ms: u64,
    /// Log format: `text` or `json`.
    #[serde(default = "default_log_format")]
    pub log_format: LogFormat,
    /// Log level.
    #[serde(default = "default_log_level")]
    pub log_level: LogLevel,
    /// Events waiting for the database writer; past this they are dropped and counted.
    #[serde(default = "default_event_queue")]
    pub event_queue: usize,
    /// Longest time an accepted event waits before it is committed, in milliseconds.
    #[serde(default = "default_event_flush_ms")]
    pub event_flush_ms: u64,
    /// Days events are kept; older ones are deleted by the writer. 0 (the default): kept for ever.
    #[serde(default)]
    pub event_retention_days: u64,
    /// Time given to in-flight requests after SIGTERM, in milliseconds.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// The providers, reached at `/{id}/…`.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// The clients allowed through the front door (docs/client-guide.md); none: the gateway is open.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Lets an open gateway (no clients) listen on an address other than loopback.
    #[serde(default)]
    pub allow_open: bool,
    /// Where nonces, rate buckets and idempotency records live: `embedded` (this process, SQLite
    /// under `data_dir`) or `redis://host:port[/db]`, shared by every gateway on that Redis.
    #[serde(default)]
    pub store: Option<String>,
    /// Prefix of every Redis key, so that several deployments can share one Redis.
    #[serde(default = "default_store_prefix")]
    pub store_prefix: String,
    /// Largest distance between a request's `Timestamp` and the gateway's clock, in seconds.
    #[serde(default = "default_timestamp_tolerance_s")]
    pub timestamp_tolerance_s: u64,
    /// How long an idempotency key and its answer are kept, in seconds.
    #[serde(default = "default_idempotency_ttl_s")]
    pub idempotency_ttl_s: u64,
    /// Refuses a POST without `Idempotency-Key`.
    #[serde(default)]
    pub idempotency_required: bool,
}

/// One provider behind the gateway.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// First path segment of the gateway's URLs for this provider.
    pub id: String,
    /// Dialect of its responses (a catalog id).
    pub dialect: String,
    /// Base URL requests are forwarded to: `http://host:port` with an optional path prefix.
    pub upstream: String,
    /// Provider tried when this one certainly did not process a request (`failover_safe`).
    #[serde(default)]
    pub fallback: Option<String>,
    /// Time for one attempt, connection included, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Connection set-up time, in milliseconds; a failure here is "not sent" and safe to retry.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Path of the status query for an operation, with `{id}`, e.g. `/payments/{id}`: when set,
    /// unknown outcomes are polled there.
    #[serde(default)]
    pub status_path: Option<String>,
    /// `proxy` answers the provider's response with verdict headers; `verdict` answers the verdict.
    #[serde(default)]
    pub mode: Mode,
    /// Request headers repeated on status queries (credentials, language); others are not sent.
    #[serde(default = "default_poll_headers")]
    pub poll_headers: Vec<String>,
}

/// What the client gets back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The provider's response, unchanged, plus `Payerr-*` headers.
    #[default]
    Proxy,
    /// The verdict as the body.
    Verdict,
}

fn default_listen() -> String {
    "127.0.0.1:8090".to_owned()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("payerr-data")
}
fn default_deadline_ms() -> u64 {
    30_000
}
fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_client_timeout_ms() -> u64 {
    30_000
}
fn default_log_format() -> LogFormat {
    LogFormat::Text
}
fn default_log_level() -> LogLevel {
    LogLevel::Info
}
fn default_event_queue() -> usize {
    65_536
}
fn default_event_flush_ms() -> u64 {
    100
}
fn default_shutdown_grace_ms() -> u64 {
    30_000
}
fn default_store_prefix() -> String {
    "payerr:".to_owned()
}
fn default_timestamp_tolerance_s() -> u64 {
    300
}
fn default_idempotency_ttl_s() -> u64 {
    24 * 3600
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_poll_headers() -> Vec<String> {
    [
        "authorization",
        "api-key",
        "x-api-key",
        "client-id",
        "language",
        "accept-language",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Path segments the gateway answers itself.
const RESERVED: &[&str] = &["healthz", "metrics"];

impl GatewayConfig {
    /// Reads a file's text.
    pub fn parse(text: &str) -> Result<GatewayConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// How long events are kept: `None` (for ever) when `event_retention_days` is 0.
    pub fn event_retention(&self) -> Option<Duration> {
        (self.event_retention_days > 0)
            .then(|| Duration::from_secs(self.event_retention_days.saturating_mul(86_400)))
    }

    /// Checks everything that does not need the catalogs; `dialect_known` answers for those.
    /// Returns the listening address.
    pub fn validate(&self, dialect_known: impl Fn(&str) -> bool) -> Result<SocketAddr, String> {
        let addr: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "listen: {:?} is not an address like 127.0.0.1:8090",
                self.listen
            )
        })?;
        if self.providers.is_empty() {
            return Err("no [[providers]]: the gateway has nothing to forward to".to_owned());
        }
        for (name, value) in [
            ("deadline_ms", self.deadline_ms),
            ("event_queue", self.event_queue as u64),
            ("event_flush_ms", self.event_flush_ms),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("client_timeout_ms", self.client_timeout_ms),
            ("retry.max_attempts", self.retry.max_attempts.into()),
            ("poll.interval_ms", self.poll.interval_ms),
            ("timestamp_tolerance_s", self.timestamp_tolerance_s),
            ("idempotency_ttl_s", self.idempotency_ttl_s),
        ] {
            if value == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        let mut ids = BTreeSet::new();
        for p in &self.providers {
            let at = |e: String| format!("provider {:?}: {e}", p.id);
            let id_ok = !p.id.is_empty()
                && p.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !RESERVED.contains(&p.id.as_str());
            if !id_ok {
                return Err(at(format!(
                    "id must be letters, digits, - or _, and not {}",
                    RESERVED.join(" or ")
                )));
            }
            if !ids.insert(p.id.as_str()) {
                return Err(at("id is used twice".to_owned()));
            }
            if !dialect_known(&p.dialect) {
                return Err(at(format!(
                    "unknown dialect {:?} (see payerr catalog list)",
                    p.dialect
                )));
            }
            upstream_base(&p.upstream).map_err(at)?;
            if p.timeout_ms == 0 || p.connect_timeout_ms == 0 {
                return Err(at(
                    "timeout_ms and connect_timeout_ms must be greater than 0".to_owned(),
                ));
            }
            if let Some(path) = &p.status_path {
                if !path.starts_with('/') || !path.contains("{id}") {
                    return Err(at(format!(
                        "status_path {path:?} must start with / and contain {{id}}"
                    )));
                }
            }
        }
        for p in &self.providers {
            if let Some(fallback) = &p.fallback {
                if fallback == &p.id || !ids.contains(fallback.as_str()) {
                    return Err(format!(
                        "provider {:?}: fallback {fallback:?} is not another configured provider",
                        p.id
                    ));
                }
            }
        }
        if self.clients.is_empty() && !addr.ip().is_loopback() && !self.allow_open {
            return Err(format!(
                "listen: {addr} is not a loopback address and no [[clients]] are configured: anyone who reaches it could send payments. Add [[clients]] (docs/client-guide.md), or set allow_open = true if something in front of the gateway already checks its callers"
            ));
        }
        if let Some(store) = &self.store {
            if store != "embedded" && !store.starts_with("redis://") {
                // Not the value itself: a URL may carry a password.
                return Err(
                    "store: expected \"embedded\" or a redis:// URL (redis://[user:password@]host[:port][/db])"
                        .to_owned(),
                );
            }
        }
        // An in-flight key must outlive its request, or a second request could find it expired
        // and send the payment again.
        let longest_request_ms = u128::from(self.deadline_ms) + u128::from(self.shutdown_grace_ms);
        if u128::from(self.idempotency_ttl_s) * 1000 <= longest_request_ms {
            return Err(format!(
                "idempotency_ttl_s must be longer than deadline_ms + shutdown_grace_ms ({longest_request_ms} ms): a key must outlive the request that began it"
            ));
        }
        Ok(addr)
    }

    /// The front door's settings.
    pub fn front_door(&self) -> Settings {
        Settings {
            timestamp_tolerance: Duration::from_secs(self.timestamp_tolerance_s),
            idempotency_ttl: Duration::from_secs(self.idempotency_ttl_s),
            idempotency_required: self.idempotency_required,
        }
    }
}

/// The upstream as `(authority, path prefix without a trailing /)`; only `http://` is supported.
pub fn upstream_base(upstream: &str) -> Result<(Authority, String), String> {
    let uri: Uri = upstream
        .parse()
        .map_err(|_| format!("upstream {upstream:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "upstream {upstream:?}: only http:// upstreams are supported (terminate TLS in front of the provider's endpoint or use a local TLS proxy)"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("upstream {upstream:?} has no host"))?;
    if uri.query().is_some() {
        return Err(format!("upstream {upstream:?} must not have a query"));
    }
    let prefix = uri.path().trim_end_matches('/').to_owned();
    Ok((authority.clone(), prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        listen = "127.0.0.1:8090"
        data_dir = "./payerr-data"
        [[providers]]
        id = "acme"
        dialect = "portone"
        upstream = "http://127.0.0.1:9001"
    "#;

    fn check(text: &str) -> Result<SocketAddr, String> {
        GatewayConfig::parse(text)?.validate(|d| d == "portone" || d == "pts")
    }

    #[test]
    fn the_issue_example_is_valid_with_defaults() {
        let config = GatewayConfig::parse(MINIMAL).unwrap();
        assert!(check(MINIMAL).is_ok());
        let p = &config.providers[0];
        assert_eq!(
            (p.timeout_ms, p.mode, p.fallback.as_deref()),
            (10_000, Mode::Proxy, None)
        );
        assert_eq!(config.retry, RetryPolicy::default());
        assert_eq!(
            config.event_retention(),
            None,
            "events are kept unless told"
        );
    }

    #[test]
    fn a_retention_is_given_in_days() {
        let config =
            GatewayConfig::parse(&format!("event_retention_days = 30\n{MINIMAL}")).unwrap();
        assert_eq!(
            config.event_retention(),
            Some(Duration::from_secs(30 * 86_400))
        );
        let huge = GatewayConfig::parse(&format!("event_retention_days = {}\n{MINIMAL}", u64::MAX));
        assert_eq!(
            huge.unwrap().event_retention(),
            Some(Duration::from_secs(u64::MAX))
        );
        let negative = GatewayConfig::parse(&format!("event_retention_days = -1\n{MINIMAL}"));
        assert!(negative.is_err_and(|e| e.contains("event_retention_days")));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("listen = \"nowhere\"\n[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"", "listen"),
            ("", "no [[providers]]"),
            ("[[providers]]\nid=\"a\"\ndialect=\"nope\"\nupstream=\"http://h:1\"", "unknown dialect"),
            ("[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"https://h\"", "only http://"),
            ("[[providers]]\nid=\"a b\"\ndialect=\"pts\"\nupstream=\"http://h:1\"", "id must be"),
            ("[[providers]]\nid=\"metrics\"\ndialect=\"pts\"\nupstream=\"http://h:1\"", "id must be"),
            ("[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"\nfallback=\"a\"", "fallback"),
            ("[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"\nstatus_path=\"/p\"", "{id}"),
            ("[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"\n[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:2\"", "twice"),
            ("colour = 1", "unknown field"),
            ("listen = \"0.0.0.0:8090\"\n[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"", "allow_open"),
            ("store = \"memcached://h\"\n[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"", "store"),
            ("idempotency_ttl_s = 0\n[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"", "idempotency_ttl_s"),
            ("idempotency_ttl_s = 60\n[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"", "must outlive"),
        ];
        for (text, expected) in cases {
            let e = check(text).unwrap_err();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_store_url_that_is_refused_is_not_echoed() {
        let text = "store = \"rediss://gw:hunter2@cache:6380/0\"\n[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"";
        let e = check(text).unwrap_err();
        assert!(e.starts_with("store:") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn an_open_gateway_may_listen_beyond_loopback_only_when_told() {
        let open = "listen = \"0.0.0.0:8090\"\nallow_open = true\n[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"";
        assert!(check(open).is_ok());
        let closed = "listen = \"0.0.0.0:8090\"\n[[providers]]\nid=\"a\"\ndialect=\"pts\"\nupstream=\"http://h:1\"\n[[clients]]\nid=\"c\"\napi_key=\"ak_test_c1\"\nsecret_env=\"C_SECRET\"";
        assert!(check(closed).is_ok());
    }

    #[test]
    fn upstreams_split_into_authority_and_prefix() {
        let split = |url: &str| {
            upstream_base(url).map(|(authority, prefix)| (authority.to_string(), prefix))
        };
        assert_eq!(
            split("http://127.0.0.1:9001").unwrap(),
            ("127.0.0.1:9001".to_owned(), String::new())
        );
        assert_eq!(
            split("http://psp.local/api/v2/").unwrap(),
            ("psp.local".to_owned(), "/api/v2".to_owned())
        );
    }
}
