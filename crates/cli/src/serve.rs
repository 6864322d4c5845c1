//! `payerr serve`: settings from the file, the environment and the flags, then the service.

use std::path::PathBuf;

use payerr::Engine;
use payerr_server::{Reload, ServeConfig};

use crate::args::ServeArgs;
use crate::config::{self, Config};
use crate::failure::Failure;

pub fn run(
    config: Config,
    catalog_dir: Option<PathBuf>,
    engine: Engine,
    args: &ServeArgs,
) -> Result<String, Failure> {
    let settings = settings(&config.serve, args, |name| std::env::var(name).ok())?;
    // SIGHUP re-reads the same catalog directory with the same policies; the service keeps the
    // previous engine when this fails.
    let reload: Reload =
        Box::new(move || config::engine(&config, catalog_dir.as_deref()).map_err(|f| f.message));
    payerr_server::run(settings, engine, reload).map_err(Failure::usage)?;
    Ok(String::new())
}

/// The file's `[serve]` table, then `PAYERR_*` variables, then flags.
fn settings(
    file: &ServeConfig,
    args: &ServeArgs,
    var: impl Fn(&str) -> Option<String>,
) -> Result<ServeConfig, Failure> {
    let mut settings = file.clone();
    settings.apply_env(var).map_err(Failure::usage)?;
    let flag = |name: &str, e: String| Failure::usage(format!("--{name}: {e}"));
    if let Some(listen) = &args.listen {
        settings.listen = listen.clone();
    }
    if let Some(format) = &args.log_format {
        settings.log_format = format.parse().map_err(|e| flag("log-format", e))?;
    }
    if let Some(level) = &args.log_level {
        settings.log_level = level.parse().map_err(|e| flag("log-level", e))?;
    }
    settings.max_body_bytes = args.max_body_bytes.unwrap_or(settings.max_body_bytes);
    settings.max_batch_items = args.max_batch_items.unwrap_or(settings.max_batch_items);
    settings.request_timeout_ms = args
        .request_timeout_ms
        .unwrap_or(settings.request_timeout_ms);
    settings.max_concurrency = args.max_concurrency.unwrap_or(settings.max_concurrency);
    settings.shutdown_grace_ms = args.shutdown_grace_ms.unwrap_or(settings.shutdown_grace_ms);
    settings.validate().map_err(Failure::usage)?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let file = ServeConfig {
            listen: "127.0.0.1:1".to_owned(),
            max_batch_items: 10,
            max_concurrency: 7,
            ..ServeConfig::default()
        };
        let env = |name: &str| match name {
            "PAYERR_LISTEN" => Some("127.0.0.1:2".to_owned()),
            "PAYERR_MAX_BATCH_ITEMS" => Some("20".to_owned()),
            _ => None,
        };
        let args = ServeArgs {
            listen: Some("127.0.0.1:3".to_owned()),
            ..ServeArgs::default()
        };
        let s = settings(&file, &args, env).unwrap();
        assert_eq!(
            (s.listen.as_str(), s.max_batch_items, s.max_concurrency),
            ("127.0.0.1:3", 20, 7)
        );
        let bad = ServeArgs {
            log_format: Some("xml".to_owned()),
            ..ServeArgs::default()
        };
        let e = settings(&file, &bad, |_| None).unwrap_err();
        assert!(e.message.starts_with("--log-format"), "{}", e.message);
    }
}
