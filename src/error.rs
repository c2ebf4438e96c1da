//! Typed errors at the library boundary.
//!
//! Parsers and decoders see bytes, not paths, so they return [`FormatError`]; the engine wraps it
//! into [`Error`] with the file name so that every message the user sees is one line that names
//! the file and the problem.

use std::path::PathBuf;

/// What is wrong with a file's bytes, from the parser's or decoder's point of view.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("unknown image format (magic bytes {0})")]
    UnknownFormat(String),
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("invalid {0}")]
    Invalid(String),
    #[error("unsupported {0}")]
    Unsupported(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("read error at offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("the file changed on disk while it was open (it is now {len} bytes)")]
    FileChanged { len: u64 },
    #[error("cancelled")]
    Cancelled,
}

impl FormatError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Self::Unsupported(msg.into())
    }
    pub fn truncated(msg: impl Into<String>) -> Self {
        Self::Truncated(msg.into())
    }
    pub fn too_large(msg: impl Into<String>) -> Self {
        Self::TooLarge(msg.into())
    }
}

/// An error that names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("{}: {source}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error("{}: descriptor {index}: {source}", path.display())]
    Descriptor {
        path: PathBuf,
        index: u64,
        #[source]
        source: FormatError,
    },
    #[error("{}: {msg}", path.display())]
    Request { path: PathBuf, msg: String },
}

impl Error {
    /// Whether the problem is in the file's bytes (as opposed to the request or the OS).
    pub fn is_format(&self) -> bool {
        matches!(self, Error::Format { .. } | Error::Descriptor { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
