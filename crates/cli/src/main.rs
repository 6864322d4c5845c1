//! The `payerr` command. Thin by design: argument parsing and I/O here, every decision in the
//! `payerr` library. One module per command; a new command gets a module and a variant in `args`.

mod args;
mod catalog;
mod config;
mod explain;
mod failure;
mod gateway;
mod normalize;
mod render;
mod report;
mod serve;
mod simulate;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::failure::Failure;

/// mimalloc rather than the system's malloc: cheaper per allocation, and frees from another thread
/// (the event writer frees what the gateway's workers allocated) take no lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A value as one line of JSON. Serializing the CLI's own types cannot fail.
pub(crate) fn json_line<T: serde::Serialize>(value: &T) -> String {
    let mut text =
        serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    text.push('\n');
    text
}

fn run(cli: &Cli) -> Result<String, Failure> {
    // The gateway's file is its own (providers, listen, data_dir), so it is read by the gateway.
    if let Command::Gateway(args) = &cli.command {
        return gateway::run(cli.config.as_deref(), cli.catalog_dir.as_deref(), args);
    }
    let config = config::Config::load(cli.config.as_deref())?;
    let catalog_dir = config::catalog_dir(cli.catalog_dir.as_deref(), &config);
    let engine = config::engine(&config, catalog_dir.as_deref())?;
    match &cli.command {
        Command::Serve(args) => serve::run(config, catalog_dir, engine, args),
        Command::Explain(args) => explain::run(&engine, args),
        Command::Normalize(args) => normalize::run(&engine, args),
        Command::Catalog(command) => catalog::run(&engine, command),
        Command::Simulate(args) => simulate::run(&engine, args),
        Command::Report(args) => report::run(args),
        Command::Gateway(_) => unreachable!("handled above"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (text, code, to_stdout) = match run(&cli) {
        Ok(text) => (text, 0, true),
        Err(f) => {
            let text = if f.is_report {
                f.message
            } else {
                format!("payerr: {}\n", f.message.trim_end())
            };
            (text, f.exit_code, f.is_report)
        }
    };
    let written = if to_stdout {
        io::stdout()
            .write_all(text.as_bytes())
            .and_then(|()| io::stdout().flush())
    } else {
        io::stderr().write_all(text.as_bytes())
    };
    match written {
        // A closed pipe (`payerr ... | head`) is the reader's choice, not an error.
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => ExitCode::from(2),
        _ => ExitCode::from(code as u8),
    }
}
