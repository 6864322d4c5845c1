//! Line-precise diagnostics for catalog files (`payerr catalog lint`).

use std::fmt;
use std::ops::Range;

use serde::Serialize;

use crate::catalog::Dialect;
use crate::taxonomy::Taxonomy;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The file is rejected.
    Error,
}

/// One problem in a catalog file, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file, as named by the caller.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn at(
        file: &str,
        text: &str,
        span: Range<usize>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = line_column(text, span.start);
        Diagnostic {
            file: file.to_owned(),
            line,
            column,
            severity,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
        };
        write!(
            f,
            "{}:{}:{}: {severity}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// 1-based line and character column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Checks one catalog file and returns every problem found (empty when the file is good).
pub fn lint(file: &str, text: &str, taxonomy: &Taxonomy) -> Vec<Diagnostic> {
    Dialect::parse(file, text, taxonomy)
        .err()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "a = 1\n余额 = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 6 + "余额 ".len()), (2, 4));
        assert_eq!(line_column(text, 10_000), (3, 1));
    }
}
