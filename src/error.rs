//! The library's one error type. The C layer maps each variant to a fixed
//! `ps_status` number; hosts map statuses to HTTP codes.

use std::io;

/// Everything that can go wrong, from opening a file to filling a buffer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The file exists but may not be read.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Reading the source failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not a container this library knows (HTTP 415).
    #[error("unsupported format: {0}")]
    UnsupportedFormat(String),
    /// The container is recognised but broken where it matters.
    #[error("malformed media: {0}")]
    Malformed(String),
    /// A request parameter is garbage, negative, overflowing or repeated (HTTP 400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The requested start or byte range lies outside the stream (HTTP 416).
    #[error("range not satisfiable: {0}")]
    RangeNotSatisfiable(String),
    /// The source ended before the planned range did: the file shrank while served.
    #[error("source changed while serving: {0}")]
    SourceChanged(String),
    /// A caller-supplied argument is out of its domain.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Classifies an I/O error raised while opening `what`.
    pub(crate) fn from_open(err: io::Error, what: &str) -> Error {
        match err.kind() {
            io::ErrorKind::NotFound => Error::NotFound(what.to_string()),
            io::ErrorKind::PermissionDenied => Error::PermissionDenied(what.to_string()),
            _ => Error::Io(err),
        }
    }

    pub(crate) fn malformed(msg: impl Into<String>) -> Error {
        Error::Malformed(msg.into())
    }

    pub(crate) fn bad_request(msg: impl Into<String>) -> Error {
        Error::BadRequest(msg.into())
    }

    pub(crate) fn unsatisfiable(msg: impl Into<String>) -> Error {
        Error::RangeNotSatisfiable(msg.into())
    }

    /// The same error again, for each caller that shares one outcome
    /// (`io::Error` is not `Clone`; its kind and message carry over).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::NotFound(m) => Error::NotFound(m.clone()),
            Error::PermissionDenied(m) => Error::PermissionDenied(m.clone()),
            Error::Io(io) => Error::Io(io::Error::new(io.kind(), io.to_string())),
            Error::UnsupportedFormat(m) => Error::UnsupportedFormat(m.clone()),
            Error::Malformed(m) => Error::Malformed(m.clone()),
            Error::BadRequest(m) => Error::BadRequest(m.clone()),
            Error::RangeNotSatisfiable(m) => Error::RangeNotSatisfiable(m.clone()),
            Error::SourceChanged(m) => Error::SourceChanged(m.clone()),
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
        }
    }

    /// The HTTP status a host should answer with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::PermissionDenied(_) => 403,
            Error::UnsupportedFormat(_) | Error::Malformed(_) => 415,
            Error::BadRequest(_) => 400,
            Error::RangeNotSatisfiable(_) => 416,
            Error::Io(_) | Error::SourceChanged(_) | Error::InvalidArgument(_) => 500,
        }
    }
}
