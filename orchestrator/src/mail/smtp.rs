//! Handing one message to an SMTP relay, with lettre's blocking transport:
//! STARTTLS required when the job asks for it (the default), in the clear
//! otherwise (a relay on localhost); the password, if any, is read from the
//! environment variable the job names, never from a file.

use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};

use super::Error;
use crate::jobs::Notify;

/// How long one SMTP conversation may stall.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach the relay; stored (as JSON) with every queued mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Require STARTTLS (false: plain SMTP).
    pub starttls: bool,
    /// User to log in as (none: no login).
    #[serde(default)]
    pub user: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

impl Relay {
    /// The relay of a job's `notify:`.
    pub fn from_notify(n: &Notify) -> Relay {
        Relay {
            host: n.host.clone(),
            port: n.port,
            starttls: n.starttls,
            user: n.user.clone(),
            password_env: n.password_env.clone(),
        }
    }

    /// As stored with a mail.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Read back from a stored mail.
    pub fn from_json(json: &str) -> Result<Relay, Error> {
        serde_json::from_str(json).map_err(|e| Error::Relay {
            json: json.chars().take(200).collect(),
            reason: e.to_string(),
        })
    }

    /// `smtp://host:port` (for messages).
    pub fn url(&self) -> String {
        format!("smtp://{}:{}", self.host, self.port)
    }

    /// The login, read from the environment.
    fn credentials(&self) -> Result<Option<Credentials>, Error> {
        match (&self.user, &self.password_env) {
            (None, None) => Ok(None),
            (Some(user), Some(var)) => {
                let password = std::env::var(var).map_err(|_| Error::Password(var.clone()))?;
                Ok(Some(Credentials::new(user.clone(), password)))
            }
            (Some(user), None) => Err(Error::Login(format!(
                "user `{user}` has no password: set notify.smtp.password_env"
            ))),
            (None, Some(var)) => Err(Error::Login(format!(
                "password_env `{var}` is set but no user: set notify.smtp.user"
            ))),
        }
    }
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `From:` (`ci@example.org` or `csdci <ci@example.org>`).
    pub from: String,
    /// `To:`.
    pub to: Vec<String>,
    /// `Subject:`.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// `Message-ID` without angle brackets.
    pub message_id: String,
    /// `In-Reply-To` (without angle brackets): the message this answers.
    pub in_reply_to: Option<String>,
    /// `References` (without angle brackets), oldest first.
    pub references: Vec<String>,
}

fn mailbox(address: &str) -> Result<Mailbox, Error> {
    address
        .trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| Error::Address {
            address: address.to_string(),
            reason: e.to_string(),
        })
}

fn angle(id: &str) -> String {
    format!(
        "<{}>",
        id.trim().trim_start_matches('<').trim_end_matches('>')
    )
}

/// Builds the RFC 5322 message of `m`.
pub fn message(m: &Outgoing) -> Result<Message, Error> {
    if m.to.is_empty() {
        return Err(Error::Message("no recipients".into()));
    }
    let mut b = Message::builder()
        .from(mailbox(&m.from)?)
        .subject(m.subject.clone())
        .message_id(Some(angle(&m.message_id)))
        .date_now()
        .user_agent(format!("csdci {}", env!("CARGO_PKG_VERSION")))
        .header(ContentType::TEXT_PLAIN);
    for to in &m.to {
        b = b.to(mailbox(to)?);
    }
    if let Some(parent) = &m.in_reply_to {
        b = b.in_reply_to(angle(parent));
    }
    if !m.references.is_empty() {
        let refs: Vec<String> = m.references.iter().map(|r| angle(r)).collect();
        b = b.references(refs.join(" "));
    }
    // 7bit when it can be, 8bit (as git send-email does) when the text is
    // not ASCII; lettre's own choice (quoted-printable or base64) otherwise.
    let enc = if m.body.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    let body = Body::new_with_encoding(m.body.clone(), enc).unwrap_or_else(Body::new);
    b.body(body).map_err(|e| Error::Message(e.to_string()))
}

/// Sends `m` through `relay`.
pub fn send(relay: &Relay, m: &Outgoing) -> Result<(), Error> {
    let msg = message(m)?;
    let creds = relay.credentials()?;
    let fail = |reason: String| Error::Send {
        relay: relay.url(),
        reason,
    };
    let mut t = if relay.starttls {
        SmtpTransport::starttls_relay(&relay.host).map_err(|e| fail(e.to_string()))?
    } else {
        SmtpTransport::builder_dangerous(relay.host.clone())
    }
    .port(relay.port)
    .timeout(Some(TIMEOUT));
    if let Some(c) = creds {
        t = t.credentials(c);
    }
    t.build()
        .send(&msg)
        .map(|_| ())
        .map_err(|e| fail(error_chain(&e)))
}

/// `e` and its sources, joined (lettre's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out() -> Outgoing {
        Outgoing {
            from: "csdci <ci@example.org>".into(),
            to: vec!["dev@example.org".into(), "Jane <jane@example.org>".into()],
            subject: "[csdci] csd: CSD lock is stuck in linux/master".into(),
            body: "Hello,\n\nline\n".into(),
            message_id: "csdci.r1.fixed.ab@example.org".into(),
            in_reply_to: Some("csdci.r1.report.cd@example.org".into()),
            references: vec!["csdci.r1.report.cd@example.org".into()],
        }
    }

    #[test]
    fn the_message_has_the_threading_headers() {
        let raw = String::from_utf8(message(&out()).unwrap().formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <csdci.r1.fixed.ab@example.org>\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("In-Reply-To: <csdci.r1.report.cd@example.org>\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("References: <csdci.r1.report.cd@example.org>\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{raw}"
        );
        assert!(raw.contains("Content-Transfer-Encoding: 7bit\r\n"), "{raw}");
        assert!(raw.contains("\r\nDate: "), "{raw}");
        assert!(raw.ends_with("Hello,\r\n\r\nline\r\n"), "{raw}");
    }

    #[test]
    fn non_ascii_text_goes_as_8bit() {
        let mut m = out();
        m.body = "Author: Jürgen <j@example.org>\n".into();
        let raw = String::from_utf8(message(&m).unwrap().formatted()).unwrap();
        assert!(raw.contains("Content-Transfer-Encoding: 8bit\r\n"), "{raw}");
        assert!(raw.contains("Jürgen"), "{raw}");
    }

    #[test]
    fn bad_addresses_and_logins_are_named() {
        let mut m = out();
        m.to = vec!["not an address".into()];
        let e = message(&m).unwrap_err().to_string();
        assert!(e.starts_with("bad address `not an address`"), "{e}");
        let r = Relay {
            host: "127.0.0.1".into(),
            port: 1,
            starttls: false,
            user: Some("ci".into()),
            password_env: Some("CSDCI_TEST_UNSET_SMTP_PASSWORD".into()),
        };
        let e = send(&r, &out()).unwrap_err().to_string();
        assert!(
            e.contains("CSDCI_TEST_UNSET_SMTP_PASSWORD is not set"),
            "{e}"
        );
        assert_eq!(Relay::from_json(&r.to_json()).unwrap(), r);
        assert!(Relay::from_json("{").is_err());
    }
}
