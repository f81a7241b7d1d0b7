//! The crate's error type, [`ConfError`], and [`Problem`], one validation finding.
//!
//! Every variant carries the file it came from so that a message printed by `frps`/`frpc`
//! points at the right place, e.g.
//! `frps.toml: transport.maxPoolCount: invalid type: string "x", expected u32`.

use std::fmt;
use std::path::PathBuf;

/// One validation finding: the key path (frp's JSON names, e.g. `transport.tls.certFile` or
/// `proxies["ssh"].localPort`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path in frp's spelling; empty when the problem is about the file as a whole.
    pub key: String,
    /// Human-readable reason.
    pub reason: String,
}

impl Problem {
    /// Builds a problem for `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.key, self.reason)
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfError {
    /// The file (or an included file, or a `tokenSource` file) could not be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// File that failed.
        file: PathBuf,
        /// Underlying IO error.
        #[source]
        source: std::io::Error,
    },
    /// The Go-template pass failed (parse or execution).
    #[error("{}:{line}: template: {reason}", file.display())]
    Template {
        /// File being rendered.
        file: PathBuf,
        /// 1-based line of the failing action.
        line: usize,
        /// What went wrong.
        reason: String,
    },
    /// The rendered text is not valid TOML / JSON / YAML / INI.
    #[error("{}: {reason}", file.display())]
    Syntax {
        /// File being parsed.
        file: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// A value has the wrong type or an invalid value (`key` is empty for the whole document).
    #[error("{}: {}", file.display(), KeyReason(key, reason))]
    Field {
        /// File being decoded.
        file: PathBuf,
        /// Key path, frp spelling (`transport.maxPoolCount`, `proxies[2].localPort`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Strict mode found keys frp does not know.
    #[error("{}: unknown key{} {}", file.display(), if keys.len() == 1 { "" } else { "s" }, keys.join(", "))]
    UnknownKeys {
        /// File being decoded.
        file: PathBuf,
        /// Full key paths, with a "did you mean" hint where one applies.
        keys: Vec<String>,
    },
    /// The configuration parsed but breaks frp's validation rules; every problem is listed.
    #[error("{}: {}", file.display(), Problems(problems))]
    Invalid {
        /// File being validated.
        file: PathBuf,
        /// All problems found.
        problems: Vec<Problem>,
    },
}

impl ConfError {
    /// The file this error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            ConfError::Io { file, .. }
            | ConfError::Template { file, .. }
            | ConfError::Syntax { file, .. }
            | ConfError::Field { file, .. }
            | ConfError::UnknownKeys { file, .. }
            | ConfError::Invalid { file, .. } => file,
        }
    }
}

struct KeyReason<'a>(&'a str, &'a str);

impl fmt::Display for KeyReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(self.1)
        } else {
            write!(f, "{}: {}", self.0, self.1)
        }
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
