//! A LAVA lab over its REST API v0.2: the client ([`client`]: token, submit,
//! poll, logs, devices, cancel), the job csdci submits ([`job`]: the kernel
//! and initramfs by URL, boot `qemu` with the spec's vCPUs and memory and
//! csdci's kernel command line, a monitor test that waits for the guest
//! init's end line), the job log ([`log`]: the serial console lines, in
//! order, and the dispatcher's own result), and what a finished job means
//! for csdci ([`states`]). [`crate::testers::lava`] puts them together.

pub mod client;
pub mod job;
pub mod log;
pub mod states;

use std::path::PathBuf;

/// LAVA errors. [`Error::is_usage`] ones are the user's to fix (exit 3);
/// [`Error::Unreachable`] is an outage (the bisection waits for the lab).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no lava token: give --lava-token-file FILE (a file holding the API token) or set CSDCI_LAVA_TOKEN"
    )]
    NoToken,
    #[error("cannot read the lava token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the lava token file {0} is empty")]
    EmptyToken(PathBuf),
    #[error(
        "lava at {url} refused the token from {from} (HTTP {status}: {detail}); create one with 'lava-server manage tokens add --user USER' and pass it with --lava-token-file"
    )]
    BadToken {
        url: String,
        from: String,
        status: u16,
        detail: String,
    },
    #[error("bad --lava-url '{url}': {why} (use e.g. http://lava.example.org/)")]
    BadUrl { url: String, why: String },
    #[error(
        "lava at {url} has no device of type '{device_type}'{tags} (its device types: {known}); pick one with --device-type"
    )]
    NoDevices {
        url: String,
        device_type: String,
        tags: String,
        known: String,
    },
    #[error("lava at {url} is unreachable: {why}")]
    Unreachable { url: String, why: String },
    #[error("lava refused the job: {0}")]
    Rejected(String),
    #[error("lava answered HTTP {status} to {what}: {body}")]
    Http {
        what: String,
        status: u16,
        body: String,
    },
    #[error("lava sent an unexpected answer to {what}: {why}")]
    Answer { what: String, why: String },
    #[error(transparent)]
    Job(#[from] job::Error),
}

impl Error {
    /// True for errors the user fixes in their flags or files (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::NoToken
                | Error::TokenFile { .. }
                | Error::EmptyToken(_)
                | Error::BadToken { .. }
                | Error::BadUrl { .. }
                | Error::NoDevices { .. }
                | Error::Rejected(_)
                | Error::Job(_)
        )
    }

    /// True when the lab could not be reached (or answered like a server
    /// that is down: 502/503/504): wait and try again.
    pub fn is_outage(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}
