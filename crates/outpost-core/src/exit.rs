//! The process exit codes of every `outpost` entrypoint: one table, read by Argo's retry
//! policy (only [`ExitCode::Temporary`] is retried) and by CI (`render --check`).
//!
//! Names and numbers follow sysexits.h, so a code means the same whichever step exits with
//! it. `--help` texts quote [`help_table`] rather than repeating numbers.

use std::fmt;

/// Why a process ended. `#[repr(u8)]`: the discriminant is the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ExitCode {
    /// Done.
    Success = 0,
    /// `render --check`: the committed output is stale (a diff is printed).
    Stale = 1,
    /// The generator tools (`render`, `schema`, `output-schemas`) could not use their input:
    /// a bad descriptor, options or overlay, an unreadable or unwritable file. (A command
    /// line that cannot be parsed is [`ExitCode::Usage`], as `EX_USAGE` says.)
    Input = 2,
    /// `EX_USAGE`: a command line that cannot be parsed, or bad arguments or parameters (an
    /// unknown connector or bucket scheme, an invalid run id, parameters the descriptor does
    /// not allow).
    Usage = 64,
    /// `EX_DATAERR`: data that contradicts itself or the API (a file that differs from its
    /// manifest entry, a job the control plane refused).
    Data = 65,
    /// `EX_NOINPUT`: the input is missing (an output folder without a manifest: extraction
    /// did not finish).
    NoInput = 66,
    /// `EX_SOFTWARE`: an internal error (a source answered something unexpected, the async
    /// runtime could not start).
    Software = 70,
    /// `EX_IOERR`: the output could not be written.
    Io = 74,
    /// `EX_TEMPFAIL`: a failure a retry may cure (unreachable, timed out, dropped, 5xx). The
    /// only code the WorkflowTemplates' retry policy retries.
    Temporary = 75,
    /// `EX_PROTOCOL`: an answer the protocol does not define (a control plane off its API
    /// document).
    Protocol = 76,
    /// `EX_NOPERM`: credentials or a privilege were refused (a login, a token, a store's
    /// 403, a rejected pre-signed URL).
    NoPermission = 77,
    /// `EX_CONFIG`: configuration that cannot work (a missing secret or credentials, TLS
    /// required or refused, an unreadable CA bundle).
    Config = 78,
}

impl ExitCode {
    /// Every code, in numeric order.
    pub const ALL: [ExitCode; 12] = [
        Self::Success,
        Self::Stale,
        Self::Input,
        Self::Usage,
        Self::Data,
        Self::NoInput,
        Self::Software,
        Self::Io,
        Self::Temporary,
        Self::Protocol,
        Self::NoPermission,
        Self::Config,
    ];

    /// The number the process exits with.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The code with this number, if it is one of Outpost's.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// What the code means, in a few words (the `--help` table's text).
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Stale => "the committed output is stale (`render --check`)",
            Self::Input => "unusable generator input (descriptor, options, overlay, file)",
            Self::Usage => "bad arguments or parameters",
            Self::Data => "inconsistent data (a file differs from its manifest entry)",
            Self::NoInput => "missing input (no manifest: extraction did not finish)",
            Self::Software => "internal error",
            Self::Io => "output not writable",
            Self::Temporary => "a failure a retry may cure (the only code retried)",
            Self::Protocol => "an answer the protocol does not define",
            Self::NoPermission => "credentials or privilege refused",
            Self::Config => "configuration that cannot work",
        }
    }
}

/// The number, so that messages read `(exit code 75)`.
impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        Self::from(code.code())
    }
}

impl From<ExitCode> for u8 {
    fn from(code: ExitCode) -> Self {
        code.code()
    }
}

/// The exit-code table for a `--help` text: one line per code, `  75  a failure …`.
pub fn help_table(codes: &[ExitCode]) -> String {
    codes
        .iter()
        .map(|c| format!("  {:>2}  {}\n", c.code(), c.meaning()))
        .collect()
}

/// A `--help` text's exit-code section: a heading, then [`help_table`].
pub fn help_section(codes: &[ExitCode]) -> String {
    format!("Exit codes:\n{}", help_table(codes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_sysexits_numbers() {
        let codes: Vec<u8> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, [0, 1, 2, 64, 65, 66, 70, 74, 75, 76, 77, 78]);
        for code in ExitCode::ALL {
            assert_eq!(ExitCode::from_code(code.code()), Some(code));
        }
        assert_eq!(ExitCode::from_code(3), None);
        assert_eq!(ExitCode::Temporary.to_string(), "75");
    }

    #[test]
    fn the_help_table_has_a_line_per_code() {
        let table = help_table(&[ExitCode::Success, ExitCode::Temporary]);
        assert_eq!(
            table,
            "   0  success\n  75  a failure a retry may cure (the only code retried)\n"
        );
    }
}

/// An error that knows the exit code it ends a process with. Every library error an
/// entrypoint can return implements it (most through [`exit_coded!`](crate::exit_coded)),
/// so each error is mapped to its code once, where it is defined.
pub trait ExitCoded: std::error::Error + Send + Sync + 'static {
    /// The process exit code for this error.
    fn exit_code(&self) -> ExitCode;
}

/// Implements [`ExitCoded`] for error types that have an inherent `exit_code(&self)`.
#[macro_export]
macro_rules! exit_coded {
    ($($error:ty),* $(,)?) => {$(
        impl $crate::exit::ExitCoded for $error {
            fn exit_code(&self) -> $crate::ExitCode {
                <$error>::exit_code(self)
            }
        }
    )*};
}

/// Why an entrypoint failed: the error with its causes, and the exit code it maps to. Every
/// [`ExitCoded`] error converts into one, so `?` is the whole mapping.
#[derive(Debug)]
pub struct Failure {
    code: ExitCode,
    error: Box<dyn std::error::Error + Send + Sync>,
}

impl Failure {
    /// `error`, exiting with `code`.
    pub fn new(code: ExitCode, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code,
            error: error.into(),
        }
    }

    /// A bad command line (exit 64).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Usage, message.into())
    }

    /// Configuration that cannot work (exit 78).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Config, message.into())
    }

    /// The exit code.
    pub fn code(&self) -> ExitCode {
        self.code
    }

    /// The error and its causes as one line, redacted: what is printed or shipped.
    pub fn message(&self) -> String {
        crate::redact::error_chain(&*self.error)
    }
}

impl<E: ExitCoded> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::new(error.exit_code(), error)
    }
}
