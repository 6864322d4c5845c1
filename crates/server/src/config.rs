//! The service's settings: the `[serve]` table of `payerr.toml`, then `PAYERR_*` variables, then flags
//! (docs/configuration.md lists them all in one table).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// Settings of `payerr serve`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port (the `listening` log line tells which).
    pub listen: String,
    /// Largest request body; a larger one is refused with 413 before it is read.
    pub max_body_bytes: usize,
    /// Most items in one `POST /v1/normalize/batch`.
    pub max_batch_items: usize,
    /// Time allowed from the end of the request head to the end of the answer, body upload included.
    pub request_timeout_ms: u64,
    /// Most requests handled at once (health, readiness and metrics are not counted); past it, 429.
    pub max_concurrency: usize,
    /// On SIGTERM or SIGINT, how long in-flight requests may take to finish.
    pub shutdown_grace_ms: u64,
    /// `text` for people, `json` for log pipelines.
    pub log_format: LogFormat,
    /// `error`, `warn`, `info` (one line per request) or `debug`.
    pub log_level: LogLevel,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".to_owned(),
            max_body_bytes: 1024 * 1024,
            max_batch_items: 1000,
            request_timeout_ms: 10_000,
            max_concurrency: 1024,
            shutdown_grace_ms: 30_000,
            log_format: LogFormat::Text,
            log_level: LogLevel::Info,
        }
    }
}

/// The environment variables read by [`ServeConfig::apply_env`], each with its setting.
pub const ENV_VARS: &[&str] = &[
    "PAYERR_LISTEN",
    "PAYERR_MAX_BODY_BYTES",
    "PAYERR_MAX_BATCH_ITEMS",
    "PAYERR_REQUEST_TIMEOUT_MS",
    "PAYERR_MAX_CONCURRENCY",
    "PAYERR_SHUTDOWN_GRACE_MS",
    "PAYERR_LOG_FORMAT",
    "PAYERR_LOG_LEVEL",
];

impl ServeConfig {
    /// Overrides settings from `PAYERR_*` variables, read through `var` so tests need not touch the
    /// process environment. A variable that does not parse is an error naming it.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        for name in ENV_VARS {
            if let Some(value) = var(name) {
                self.set(name, &value)
                    .map_err(|e| format!("{name}={value:?}: {e}"))?;
            }
        }
        Ok(())
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        fn parse<T: FromStr>(value: &str) -> Result<T, String>
        where
            T::Err: fmt::Display,
        {
            value.trim().parse().map_err(|e: T::Err| e.to_string())
        }
        match name {
            "PAYERR_LISTEN" => self.listen = value.trim().to_owned(),
            "PAYERR_MAX_BODY_BYTES" => self.max_body_bytes = parse(value)?,
            "PAYERR_MAX_BATCH_ITEMS" => self.max_batch_items = parse(value)?,
            "PAYERR_REQUEST_TIMEOUT_MS" => self.request_timeout_ms = parse(value)?,
            "PAYERR_MAX_CONCURRENCY" => self.max_concurrency = parse(value)?,
            "PAYERR_SHUTDOWN_GRACE_MS" => self.shutdown_grace_ms = parse(value)?,
            "PAYERR_LOG_FORMAT" => self.log_format = parse(value)?,
            "PAYERR_LOG_LEVEL" => self.log_level = parse(value)?,
            _ => return Err("not a payerr serve setting".to_owned()),
        }
        Ok(())
    }

    /// Checks the settings together; the error says which one is wrong.
    pub fn validate(&self) -> Result<SocketAddr, String> {
        let addr = self.listen.parse::<SocketAddr>().map_err(|_| {
            format!(
                "listen address {:?} is not IP:PORT (e.g. 127.0.0.1:8080)",
                self.listen
            )
        })?;
        let positive = [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_batch_items", self.max_batch_items as u64),
            ("request_timeout_ms", self.request_timeout_ms),
            ("max_concurrency", self.max_concurrency as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be greater than 0"));
        }
        Ok(addr)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `2026-11-21T10:00:00.000Z INFO request key=value ...`
    Text,
    /// One JSON object per line.
    Json,
}

/// Least severe level written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Failures that lose service.
    Error,
    /// Problems the service survived (a catalog reload that failed lint).
    Warn,
    /// Start, stop, reloads and one line per request.
    Info,
    /// Everything.
    Debug,
}

impl LogLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format {s:?}; expected text or json")),
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            _ => Err(format!(
                "unknown log level {s:?}; expected error, warn, info or debug"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_and_names_what_it_cannot_parse() {
        let mut config = ServeConfig::default();
        config
            .apply_env(|name| match name {
                "PAYERR_LISTEN" => Some("0.0.0.0:9000".to_owned()),
                "PAYERR_MAX_BATCH_ITEMS" => Some(" 50 ".to_owned()),
                "PAYERR_LOG_FORMAT" => Some("json".to_owned()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.max_batch_items, 50);
        assert_eq!(config.log_format, LogFormat::Json);
        let e = config
            .apply_env(|name| (name == "PAYERR_MAX_BODY_BYTES").then(|| "1MB".to_owned()))
            .unwrap_err();
        assert!(e.starts_with("PAYERR_MAX_BODY_BYTES=\"1MB\""), "{e}");
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let config = ServeConfig {
            listen: "localhost".to_owned(),
            ..ServeConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("IP:PORT"));
        let config = ServeConfig {
            max_concurrency: 0,
            ..ServeConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("max_concurrency"));
        assert!(ServeConfig::default().validate().is_ok());
    }
}
