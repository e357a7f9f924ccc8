//! Errors of descriptor parsing and validation.

use std::fmt;

use serde_saphyr::Location;

/// One problem in an input file, pointing at the exact place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the caller named it (`connectors/postgres/connector.yaml`).
    pub file: String,
    /// 1-based line; 0 when the position is unknown.
    pub line: u64,
    /// 1-based column; 0 when the position is unknown.
    pub column: u64,
    /// The field, as a path from the document root (`parameters[2].pattern`).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `location` in `file`.
    pub fn new(
        file: &str,
        location: Location,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            line: location.line(),
            column: location.column(),
            field: field.into(),
            message: message.into(),
            help: None,
        }
    }

    /// Adds a hint on how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// All problems found in one input, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

/// Why a connector descriptor could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// The file is not YAML, or does not have the descriptor's shape (a missing or unknown
    /// field, a value of the wrong type). Parsing stops at the first such problem.
    #[error("{diagnostic}")]
    Parse {
        /// Where and what.
        diagnostic: Box<Diagnostic>,
    },
    /// The descriptor has the right shape but breaks one or more rules; every broken rule
    /// is listed.
    #[error("{file}: {} problem{} in connector descriptor\n{diagnostics}", diagnostics.0.len(), if diagnostics.0.len() == 1 { "" } else { "s" })]
    Invalid {
        /// The descriptor file.
        file: String,
        /// Every problem found, in file order.
        diagnostics: Diagnostics,
    },
}

impl DescriptorError {
    /// Every diagnostic this error carries.
    pub fn diagnostics(&self) -> Vec<&Diagnostic> {
        match self {
            Self::Parse { diagnostic } => vec![diagnostic],
            Self::Invalid { diagnostics, .. } => diagnostics.0.iter().collect(),
        }
    }
}
