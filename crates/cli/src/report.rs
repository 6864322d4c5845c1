//! `payerr report` (work in progress).

pub fn run(args: &crate::args::ReportArgs) -> Result<String, crate::failure::Failure> {
    let _ = (args);
    Err(crate::failure::Failure::usage("payerr report is not implemented yet"))
}
