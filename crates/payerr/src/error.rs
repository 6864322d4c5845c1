//! The one error type of the library.

use std::fmt;

use crate::lint::Diagnostic;

/// What went wrong, so that callers can map it (the CLI to exit codes, the service to HTTP statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A dialect id that no catalog defines.
    UnknownDialect,
    /// A catalog file that fails lint.
    InvalidCatalog,
    /// The built-in taxonomy is inconsistent (a build defect, caught by tests).
    InvalidTaxonomy,
}

/// An error from the library, with its kind, a message for people, and lint diagnostics where the
/// error is a bad catalog.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    diagnostics: Vec<Diagnostic>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn taxonomy(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidTaxonomy, message)
    }

    pub(crate) fn unknown_dialect(id: &str, known: &[&str]) -> Error {
        Error::new(
            ErrorKind::UnknownDialect,
            format!("unknown dialect `{id}`; known: auto, {}", known.join(", ")),
        )
    }

    pub(crate) fn catalog(file: &str, diagnostics: Vec<Diagnostic>) -> Error {
        let errors = diagnostics.len();
        Error {
            kind: ErrorKind::InvalidCatalog,
            message: format!("{file}: {errors} error(s); run `payerr catalog lint {file}`"),
            diagnostics,
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Line-precise problems, when a catalog failed to load.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for d in &self.diagnostics {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
