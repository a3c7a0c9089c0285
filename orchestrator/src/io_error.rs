//! An I/O error with the path it concerns: the one `{path}: {source}` message
//! that every module's error enum shows for a failed file operation (each has
//! an `Io(#[from] PathIo)` variant, `#[error(transparent)]`).

use std::path::PathBuf;

/// An I/O error on `path`.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct PathIo {
    /// The file or program the operation concerned.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: std::io::Error,
}

impl PathIo {
    /// Wraps `source` with the path it concerns.
    pub fn new(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PathIo {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn message_and_source() {
        let e = PathIo::new("/x/y", std::io::Error::other("boom"));
        assert_eq!(e.to_string(), "/x/y: boom");
        assert_eq!(e.source().unwrap().to_string(), "boom");
        let wrapped = crate::Error::from(e);
        assert_eq!(wrapped.to_string(), "/x/y: boom");
        assert_eq!(wrapped.source().unwrap().to_string(), "boom");
    }
}
