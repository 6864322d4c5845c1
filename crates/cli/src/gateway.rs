//! `payerr gateway` (work in progress).

pub fn run(config: Option<&std::path::Path>, catalog_dir: Option<&std::path::Path>, args: &crate::args::GatewayArgs) -> Result<String, crate::failure::Failure> {
    let _ = (config, catalog_dir, args);
    Err(crate::failure::Failure::usage("payerr gateway is not implemented yet"))
}
