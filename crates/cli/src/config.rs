//! Configuration file and user catalog directory: the only places the CLI reads besides its input.

use std::fs;
use std::path::{Path, PathBuf};

use payerr::{Engine, Settings};
use serde::Deserialize;

use crate::failure::Failure;

/// `payerr.toml` (docs/configuration.md).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of user catalogs.
    pub catalog_dir: Option<PathBuf>,
    /// Retry policy.
    pub retry: payerr::RetryPolicy,
    /// Polling policy.
    pub poll: payerr::PollPolicy,
    /// `payerr serve` settings.
    pub serve: payerr_server::ServeConfig,
}

impl Config {
    /// Reads `path`, or `payerr.toml` in the working directory when it exists, else the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, Failure> {
        let default = Path::new("payerr.toml");
        let path = match path {
            Some(p) => p,
            None if default.is_file() => default,
            None => return Ok(Config::default()),
        };
        let text = fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read config {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            Failure::usage(format!(
                "config {}: {}",
                path.display(),
                e.message().trim_end()
            ))
        })
    }
}

/// Reads every `*.toml` file of a directory, sorted by name, as `(file name, text)`.
pub fn read_catalog_dir(dir: &Path) -> Result<Vec<(String, String)>, Failure> {
    catalog_files(dir)?
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}

/// The `*.toml` files of a directory, sorted; a file path is returned as itself.
pub fn catalog_files(path: &Path) -> Result<Vec<PathBuf>, Failure> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = fs::read_dir(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The user catalog directory: `--catalog-dir`, else `PAYERR_CATALOG_DIR`, else the config's.
pub fn catalog_dir(flag: Option<&Path>, config: &Config) -> Option<PathBuf> {
    flag.map(Path::to_owned)
        .or_else(|| std::env::var_os("PAYERR_CATALOG_DIR").map(PathBuf::from))
        .or_else(|| config.catalog_dir.clone())
}

/// The engine for this invocation: built-ins, the configured policies, and the user catalogs of
/// `catalog_dir`.
pub fn engine(config: &Config, catalog_dir: Option<&Path>) -> Result<Engine, Failure> {
    let settings = Settings {
        retry: config.retry,
        poll: config.poll,
    };
    let user = match catalog_dir {
        Some(dir) => read_catalog_dir(dir)?,
        None => Vec::new(),
    };
    Ok(Engine::new(settings, &user)?)
}
