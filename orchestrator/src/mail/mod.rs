//! Mail: what csdci tells kernel developers, in the style they know from the
//! 0-day robot and syzbot. [`compose`] turns plain facts into a subject and a
//! body (pure text, no I/O but [`compose::ReportFacts::from_store`]);
//! [`smtp`] hands one message to an SMTP relay. Queueing, threading and
//! retries are `service::outbox`'s.

pub mod compose;
pub mod smtp;

pub use compose::{Draft, FixedFacts, ReportFacts, fixed, message_id, report};
pub use smtp::{Outgoing, Relay, send};

/// What can go wrong composing or sending a mail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address that is not `name@example.org` or `Name <name@example.org>`.
    #[error("bad address `{address}`: {reason}")]
    Address { address: String, reason: String },
    /// The relay needs a password and its environment variable is not set.
    #[error(
        "environment variable {0} is not set (notify.smtp.password_env names it: put the relay's password there)"
    )]
    Password(String),
    /// Login settings that do not go together.
    #[error("smtp login: {0}")]
    Login(String),
    /// The message could not be built.
    #[error("cannot build the message: {0}")]
    Message(String),
    /// The relay settings stored with a mail cannot be read.
    #[error("bad relay settings `{json}`: {reason}")]
    Relay { json: String, reason: String },
    /// The relay did not take the message.
    #[error("sending through {relay}: {reason}")]
    Send { relay: String, reason: String },
}
