//! The CLI's own errors and their exit codes.

use std::fmt;

/// Exit code for a bad invocation: unknown dialect, unreadable file, malformed flag.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when `catalog lint` found errors.
pub const EXIT_LINT: i32 = 1;

/// A failure that ends the command with a message on stderr.
#[derive(Debug)]
pub struct Failure {
    pub exit_code: i32,
    pub message: String,
    /// The message is the command's report (lint findings) and goes to stdout, not stderr.
    pub is_report: bool,
}

impl Failure {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit_code: EXIT_USAGE,
            message: message.into(),
            is_report: false,
        }
    }

    /// A report of problems found in the input (exit 1), printed on stdout.
    pub fn findings(report: impl Into<String>) -> Failure {
        Failure {
            exit_code: EXIT_LINT,
            message: report.into(),
            is_report: true,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<payerr::Error> for Failure {
    fn from(e: payerr::Error) -> Failure {
        Failure::usage(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::usage(format!("i/o error: {e}"))
    }
}
