//! `payerr catalog list|show|lint|export|codes`.

use std::fmt::Write as _;
use std::fs;

use payerr::{export, Engine, Lang, Taxonomy};

use crate::args::{CatalogCommand, CatalogFormat};
use crate::config::catalog_files;
use crate::failure::Failure;
use crate::render::name;

pub fn run(engine: &Engine, command: &CatalogCommand) -> Result<String, Failure> {
    match command {
        CatalogCommand::List { format } => Ok(list(engine, *format)),
        CatalogCommand::Show { id, format, lang } => {
            let dialect = dialect(engine, id)?;
            let lang = Lang::negotiate(lang.as_deref(), None, None);
            Ok(match format {
                CatalogFormat::Json => crate::json_line(&export::to_json(dialect)),
                CatalogFormat::Text | CatalogFormat::Markdown => export::to_markdown(dialect, lang),
            })
        }
        CatalogCommand::Export { id, format, lang } => {
            let lang = Lang::negotiate(lang.as_deref(), None, None);
            let dialects = match id {
                Some(id) => vec![dialect(engine, id)?],
                None => engine.dialects().collect(),
            };
            Ok(match format {
                CatalogFormat::Markdown | CatalogFormat::Text => dialects
                    .iter()
                    .map(|d| export::to_markdown(d, lang))
                    .collect::<Vec<_>>()
                    .join("\n"),
                CatalogFormat::Json if id.is_some() => {
                    crate::json_line(&export::to_json(dialects[0]))
                }
                CatalogFormat::Json => crate::json_line(
                    &dialects
                        .iter()
                        .map(|d| export::to_json(d))
                        .collect::<Vec<_>>(),
                ),
            })
        }
        CatalogCommand::Lint { paths } => lint(engine.taxonomy(), paths),
        CatalogCommand::Codes { format } => Ok(codes(engine.taxonomy(), *format)),
    }
}

/// A dialect by id; an unknown id is a usage error listing the known ones.
pub(crate) fn dialect<'e>(engine: &'e Engine, id: &str) -> Result<&'e payerr::Dialect, Failure> {
    engine.dialect(id).ok_or_else(|| {
        let known: Vec<&str> = engine.dialects().map(|d| &*d.id).collect();
        Failure::usage(format!(
            "unknown dialect `{id}`; known: {}",
            known.join(", ")
        ))
    })
}

fn list(engine: &Engine, format: CatalogFormat) -> String {
    if format == CatalogFormat::Json {
        let rows: Vec<_> = engine
            .dialects()
            .map(|d| {
                serde_json::json!({
                    "id": &*d.id, "name": d.name, "description": d.description,
                    "source": d.source, "entries": d.entries.len(), "ranges": d.ranges.len(),
                })
            })
            .collect();
        return crate::json_line(&rows);
    }
    let mut out = format!("{:<14} {:>7}  {:<26} {}\n", "ID", "CODES", "NAME", "SOURCE");
    for d in engine.dialects() {
        let _ = writeln!(
            out,
            "{:<14} {:>7}  {:<26} {}",
            d.id,
            d.entries.len(),
            d.name,
            d.source.as_deref().unwrap_or("-")
        );
    }
    out
}

fn codes(taxonomy: &Taxonomy, format: CatalogFormat) -> String {
    if format == CatalogFormat::Json {
        return crate::json_line(&taxonomy.codes());
    }
    let mut out = format!(
        "{:<32} {:<22} {:<9} {}\n",
        "CODE", "CATEGORY", "OUTCOME", "NEXT ACTION"
    );
    for c in taxonomy.codes() {
        let _ = writeln!(
            out,
            "{:<32} {:<22} {:<9} {}",
            c.code,
            c.category,
            name(&c.decision.outcome),
            name(&c.decision.next_action)
        );
    }
    out
}

fn lint(taxonomy: &Taxonomy, paths: &[std::path::PathBuf]) -> Result<String, Failure> {
    let mut report = String::new();
    let (mut files, mut errors) = (0, 0);
    for path in paths {
        for file in catalog_files(path)? {
            files += 1;
            let label = file.display().to_string();
            let text = fs::read_to_string(&file)
                .map_err(|e| Failure::usage(format!("cannot read {label}: {e}")))?;
            for d in payerr::lint(&label, &text, taxonomy) {
                errors += 1;
                let _ = writeln!(report, "{d}");
            }
        }
    }
    let _ = writeln!(report, "{files} file(s), {errors} error(s)");
    if errors > 0 {
        return Err(Failure::findings(report));
    }
    Ok(report)
}
