//! `payerr simulate` (work in progress).

pub fn run(engine: &payerr::Engine, args: &crate::args::SimulateArgs) -> Result<String, crate::failure::Failure> {
    let _ = (engine, args);
    Err(crate::failure::Failure::usage("payerr simulate is not implemented yet"))
}
