//! Command-line arguments. Every command's flags are here, so `payerr --help` and this file agree.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// payerr: one verdict for every payment provider's error dialect.
#[derive(Parser, Debug)]
#[command(name = "payerr", version, about, max_term_width = 100)]
pub struct Cli {
    /// Directory of extra catalog files (*.toml); a file with a built-in id replaces that dialect.
    #[arg(long, global = true, value_name = "DIR")]
    pub catalog_dir: Option<PathBuf>,
    /// Configuration file (docs/configuration.md); for `payerr gateway`, the gateway's (docs/gateway.md).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Explain one provider code: what it means, what to do, what to tell the customer.
    Explain(ExplainArgs),
    /// Turn a provider response into the canonical verdict.
    Normalize(NormalizeArgs),
    /// List, show, lint and export dialect catalogs.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Run the HTTP service (docs/http.md) until SIGTERM or SIGINT; SIGHUP reloads the catalogs.
    Serve(ServeArgs),
    /// Run a mock payment provider speaking one dialect (docs/simulator.md).
    Simulate(SimulateArgs),
    /// Run the gateway in front of the providers of `--config FILE` (docs/gateway.md).
    Gateway(GatewayArgs),
    /// Summarize the gateway's recorded attempts: approval rate, categories, codes, latency.
    Report(ReportArgs),
}

/// Flags of `payerr simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Dialect to speak (see `payerr catalog list`).
    #[arg(long, short)]
    pub dialect: String,
    /// Address to listen on (port 0 picks a free one; the `listening` log line tells which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9001")]
    pub listen: String,
    /// Log format: text or json.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: String,
    /// Log level: error, warn, info (one line per request) or debug.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Flags of `payerr gateway`; everything else is in the configuration file.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// Log format: text or json.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log level: error, warn, info or debug.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// Flags of `payerr report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The gateway's data directory.
    #[arg(long, value_name = "DIR", default_value = "payerr-data")]
    pub data_dir: PathBuf,
    /// Only attempts this recent: a number with s, m, h or d (e.g. 30m, 24h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub since: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Flags of `payerr serve`; each wins over its `PAYERR_*` variable and the `[serve]` table of the
/// configuration file (docs/configuration.md).
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080; env: PAYERR_LISTEN].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Log format: text or json [default: text; env: PAYERR_LOG_FORMAT].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log level: error, warn, info or debug [default: info; env: PAYERR_LOG_LEVEL].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Largest request body in bytes [default: 1048576; env: PAYERR_MAX_BODY_BYTES].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most items in one batch [default: 1000; env: PAYERR_MAX_BATCH_ITEMS].
    #[arg(long, value_name = "N")]
    pub max_batch_items: Option<usize>,
    /// Time allowed per request, body upload included [default: 10000; env: PAYERR_REQUEST_TIMEOUT_MS].
    #[arg(long, value_name = "MS")]
    pub request_timeout_ms: Option<u64>,
    /// Most requests handled at once [default: 1024; env: PAYERR_MAX_CONCURRENCY].
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<usize>,
    /// Time in-flight requests get to finish on shutdown [default: 30000; env: PAYERR_SHUTDOWN_GRACE_MS].
    #[arg(long, value_name = "MS")]
    pub shutdown_grace_ms: Option<u64>,
}

/// Output format for verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable at a glance (`table` is the same).
    #[value(alias = "table")]
    Text,
    /// The verdict as JSON (the public contract).
    Json,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The provider's code, e.g. 1004, expired_card, INVALID_SIGNATURE.
    pub code: String,
    /// Dialect id (see `payerr catalog list`).
    #[arg(long, short)]
    pub dialect: String,
    /// Scope of the code (typed-error's `type`, e.g. payment_error).
    #[arg(long = "type", value_name = "TYPE")]
    pub scope: Option<String>,
    /// Reason text that selects one meaning of a code documented twice (portone's status_reason).
    #[arg(long)]
    pub reason: Option<String>,
    /// Language of the texts: en or zh (others fall back to English).
    #[arg(long, short)]
    pub lang: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct NormalizeArgs {
    /// Dialect id, or `auto` to detect it from the response.
    #[arg(long, short, default_value = "auto")]
    pub dialect: String,
    /// HTTP status of the provider's response.
    #[arg(long, short, default_value_t = 200, value_parser = clap::value_parser!(u16).range(100..=599))]
    pub status: u16,
    /// A response header, as 'Name: value' (repeatable), e.g. 'Retry-After: 5'.
    #[arg(long = "header", short = 'H', value_name = "'K: V'")]
    pub headers: Vec<String>,
    /// Language of the texts: en or zh. Default: a Language or Accept-Language header, else English.
    #[arg(long, short)]
    pub lang: Option<String>,
    /// Output format (ignored with --ndjson, which always writes JSON lines).
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Stream: one {dialect, http_status, headers, body} JSON object per input line, one verdict
    /// (or one error object) per output line.
    #[arg(long)]
    pub ndjson: bool,
    /// The response body (or NDJSON stream) to read; `-` or nothing for standard input.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// Output format for catalogs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CatalogFormat {
    /// A table or summary for the terminal.
    Text,
    /// JSON.
    Json,
    /// Markdown that reads like a provider's code reference.
    Markdown,
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// List the dialects.
    List {
        /// Output format: text or json.
        #[arg(long, short, value_enum, default_value_t = CatalogFormat::Text)]
        format: CatalogFormat,
    },
    /// Show one dialect's codes.
    Show {
        /// Dialect id.
        id: String,
        /// Output format (text is the Markdown reference).
        #[arg(long, short, value_enum, default_value_t = CatalogFormat::Text)]
        format: CatalogFormat,
        /// Language of the texts: en or zh.
        #[arg(long, short)]
        lang: Option<String>,
    },
    /// Check catalog files (or directories of them); exit 1 if any has an error.
    Lint {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Export one dialect, or all, as JSON or Markdown.
    Export {
        /// Dialect id; all dialects when omitted.
        id: Option<String>,
        /// json or markdown.
        #[arg(long, short, value_enum, default_value_t = CatalogFormat::Json)]
        format: CatalogFormat,
        /// Language of the texts in Markdown: en or zh.
        #[arg(long, short)]
        lang: Option<String>,
    },
    /// List the canonical codes and categories catalogs may use.
    Codes {
        /// Output format: text or json.
        #[arg(long, short, value_enum, default_value_t = CatalogFormat::Text)]
        format: CatalogFormat,
    },
}
