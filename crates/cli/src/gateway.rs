//! `payerr gateway --config FILE`: the gateway's own configuration file, the engine with its
//! catalogs and policies, then the gateway (docs/gateway.md).

use std::fs;
use std::path::Path;

use payerr_gateway::GatewayConfig;

use crate::args::GatewayArgs;
use crate::config::{self, Config};
use crate::failure::Failure;

pub fn run(
    config_path: Option<&Path>,
    catalog_dir: Option<&Path>,
    args: &GatewayArgs,
) -> Result<String, Failure> {
    let path = config_path.ok_or_else(|| {
        Failure::usage("payerr gateway needs --config FILE (see docs/gateway.md for the format)")
    })?;
    let text = fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read config {}: {e}", path.display())))?;
    let mut settings = GatewayConfig::parse(&text)
        .map_err(|e| Failure::usage(format!("config {}: {e}", path.display())))?;
    let flag = |name: &str, e: String| Failure::usage(format!("--{name}: {e}"));
    if let Some(format) = &args.log_format {
        settings.log_format = format.parse().map_err(|e| flag("log-format", e))?;
    }
    if let Some(level) = &args.log_level {
        settings.log_level = level.parse().map_err(|e| flag("log-level", e))?;
    }
    // The same catalogs and policies as every other command: --catalog-dir, PAYERR_CATALOG_DIR,
    // then the file's catalog_dir.
    let shared = Config {
        catalog_dir: settings.catalog_dir.clone(),
        retry: settings.retry,
        poll: settings.poll,
        ..Config::default()
    };
    let catalog_dir = config::catalog_dir(catalog_dir, &shared);
    let engine = config::engine(&shared, catalog_dir.as_deref())?;
    payerr_gateway::run(settings, engine).map_err(Failure::usage)?;
    Ok(String::new())
}
