//! `payerr explain CODE --dialect ID`.

use payerr::{Engine, Lang};

use crate::args::{ExplainArgs, Format};
use crate::failure::Failure;
use crate::render::verdict_text;

pub fn run(engine: &Engine, args: &ExplainArgs) -> Result<String, Failure> {
    let lang = Lang::negotiate(args.lang.as_deref(), None, None);
    let verdict = engine.explain(
        &args.dialect,
        &args.code,
        args.scope.as_deref(),
        args.reason.as_deref(),
        lang,
    )?;
    Ok(match args.format {
        Format::Json => crate::json_line(&verdict),
        Format::Text => verdict_text(&verdict, engine.taxonomy()),
    })
}
