//! `payerr simulate --dialect ID`: a mock provider speaking one dialect (docs/simulator.md).

use payerr::Engine;
use payerr_simulator::Settings;

use crate::args::SimulateArgs;
use crate::failure::Failure;

pub fn run(engine: &Engine, args: &SimulateArgs) -> Result<String, Failure> {
    let dialect = crate::catalog::dialect(engine, &args.dialect)?;
    let flag = |name: &str, e: String| Failure::usage(format!("--{name}: {e}"));
    let settings = Settings {
        listen: args.listen.clone(),
        log_format: args.log_format.parse().map_err(|e| flag("log-format", e))?,
        log_level: args.log_level.parse().map_err(|e| flag("log-level", e))?,
    };
    payerr_simulator::run(&settings, dialect.clone()).map_err(Failure::usage)?;
    Ok(String::new())
}
