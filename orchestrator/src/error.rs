//! The crate's one error type. Each module that can fail has its own error enum
//! and a variant here; messages are short and lowercase.

use std::path::PathBuf;

use crate::io_error::PathIo;

/// Every error csdci reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something that cannot be done as asked (exit 3).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Io(#[from] PathIo),
    #[error("store: {0}")]
    Store(#[from] crate::store::Error),
    #[error("git: {0}")]
    Vcs(#[from] crate::vcs::Error),
    #[error("bisect: {0}")]
    Bisect(#[from] crate::bisect::Error),
    #[error("image: {0}")]
    Image(#[from] crate::image::Error),
    #[error("vm: {0}")]
    Vm(#[from] crate::vm::Error),
    #[error("config: {0}")]
    Kconfig(#[from] crate::kconfig::Error),
    #[error("build: {0}")]
    Build(#[from] crate::build::Error),
    #[error("lava: {0}")]
    Lava(#[from] crate::lava::Error),
    #[error("interrupted")]
    Interrupted,
    #[error("demo: {0}")]
    Demo(#[from] crate::demo::Error),
    /// Another csdci process is running a night of this job.
    #[error("job {0} is already running in another csdci process; try again when it ends")]
    JobBusy(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io(PathIo::new(path, source))
    }

    /// True when csdci stopped because it was asked to (SIGINT/SIGTERM: exit
    /// code 130, as a shell reports a process ended by SIGINT).
    pub fn is_interrupt(&self) -> bool {
        matches!(
            self,
            Error::Interrupted | Error::Bisect(crate::bisect::Error::Interrupted { .. })
        )
    }

    /// True when another csdci process is driving the bisection asked for.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            Error::Bisect(crate::bisect::Error::Busy(_)) | Error::JobBusy(_)
        )
    }

    /// True for errors caused by the user's input (exit code 3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Usage(_)
                | Error::Bisect(crate::bisect::Error::NotFound(_))
                | Error::Vcs(
                    crate::vcs::Error::NoTree(_)
                        | crate::vcs::Error::NotGit(_)
                        | crate::vcs::Error::UnknownRev { .. }
                )
                | Error::Kconfig(
                    crate::kconfig::Error::Syntax { .. } | crate::kconfig::Error::Read { .. }
                )
        ) || matches!(self, Error::Lava(e) if e.is_usage())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
