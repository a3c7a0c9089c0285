//! QMP client: the handshake, the two events csdci acts on (`SHUTDOWN`,
//! `GUEST_PANICKED`) and the two commands it sends (`inject-nmi`, `quit`).
//!
//! Commands and events are the `qapi` crate's types. Its schema is QEMU 9.1's
//! while Debian bookworm runs QEMU 7.2, so each line is first read as plain JSON
//! and an event the typed schema cannot decode is still delivered, by name.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use qapi::qmp;
use serde_json::Value;

use super::Error;

/// A QMP event, as far as csdci cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// QEMU is shutting down. `reason` is QEMU's `ShutdownCause`
    /// (`guest-shutdown`, `guest-reset`, `host-qmp-quit`, ...).
    Shutdown { guest: bool, reason: String },
    /// The guest reported a panic through pvpanic.
    GuestPanicked { action: String },
    /// Any other event, by name.
    Other(String),
    /// The QMP connection closed (QEMU exited).
    Closed,
}

/// A connected QMP session. Events go to the callback given to [`Qmp::connect`]
/// from a reader thread; commands wait for their response.
pub struct Qmp {
    stream: UnixStream,
    responses: Receiver<Result<Value, String>>,
}

/// How long to wait for the greeting and for each command's response.
const TIMEOUT: Duration = Duration::from_secs(30);

impl Qmp {
    /// Reads the greeting from `stream`, negotiates capabilities, and starts
    /// delivering events to `on_event`.
    pub fn connect(
        stream: UnixStream,
        on_event: impl FnMut(Event) + Send + 'static,
    ) -> Result<Self, Error> {
        let reader = stream
            .try_clone()
            .map_err(|e| Error::Qmp(format!("cannot clone socket: {e}")))?;
        let (greet_tx, greet_rx) = channel();
        let (resp_tx, responses) = channel();
        std::thread::Builder::new()
            .name("qmp-reader".into())
            .spawn(move || read_loop(reader, greet_tx, resp_tx, on_event))
            .map_err(|e| Error::Qmp(format!("cannot start reader thread: {e}")))?;
        match greet_rx.recv_timeout(TIMEOUT) {
            Ok(Ok(greeting)) => tracing::debug!(?greeting, "qmp greeting"),
            Ok(Err(e)) => return Err(Error::Qmp(format!("bad greeting: {e}"))),
            Err(_) => return Err(Error::Qmp("no greeting from qemu".into())),
        }
        let mut q = Qmp { stream, responses };
        q.execute(qmp::qmp_capabilities { enable: None })?;
        Ok(q)
    }

    /// Sends `command` and waits for its response.
    pub fn execute<C: qapi::Command>(&mut self, command: C) -> Result<Value, Error> {
        let msg = qapi::Execute::<C, qapi::Never>::new(command, None);
        let mut line = serde_json::to_vec(&msg)
            .map_err(|e| Error::Qmp(format!("cannot encode {}: {e}", C::NAME)))?;
        line.push(b'\n');
        self.stream
            .write_all(&line)
            .map_err(|e| Error::Qmp(format!("{}: {e}", C::NAME)))?;
        match self.responses.recv_timeout(TIMEOUT) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::Qmp(format!("{}: {e}", C::NAME))),
            Err(RecvTimeoutError::Timeout) => {
                Err(Error::Qmp(format!("{}: no response in 30 s", C::NAME)))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(Error::Qmp(format!("{}: connection closed", C::NAME)))
            }
        }
    }

    /// Injects an NMI into every vCPU (x86: the guest's NMI handlers run; with
    /// `unknown_nmi_panic` the kernel panics and prints backtraces).
    pub fn inject_nmi(&mut self) -> Result<(), Error> {
        self.execute(qmp::inject_nmi {}).map(drop)
    }

    /// Asks QEMU to exit now.
    pub fn quit(&mut self) -> Result<(), Error> {
        self.execute(qmp::quit {}).map(drop)
    }
}

/// What one QMP line is.
#[derive(Debug, PartialEq)]
enum Message {
    Greeting(Value),
    Response(Result<Value, String>),
    Event(Event),
    Unknown,
}

fn classify(line: &str) -> Message {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return Message::Unknown;
    };
    if let Some(g) = v.get("QMP") {
        return Message::Greeting(g.clone());
    }
    if let Some(r) = v.get("return") {
        return Message::Response(Ok(r.clone()));
    }
    if let Some(e) = v.get("error") {
        let desc = e
            .get("desc")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Message::Response(Err(desc.to_string()));
    }
    let Some(name) = v.get("event").and_then(Value::as_str).map(str::to_string) else {
        return Message::Unknown;
    };
    let typed = serde_json::from_value::<qmp::Event>(v.clone()).ok();
    let field = |k: &str| {
        v.get("data")
            .and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Message::Event(match (typed, name.as_str()) {
        (Some(qmp::Event::SHUTDOWN { data, .. }), _) => Event::Shutdown {
            guest: data.guest,
            reason: field("reason"),
        },
        (None, "SHUTDOWN") => Event::Shutdown {
            guest: v
                .get("data")
                .and_then(|d| d.get("guest"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            reason: field("reason"),
        },
        (Some(qmp::Event::GUEST_PANICKED { .. }), _) | (None, "GUEST_PANICKED") => {
            Event::GuestPanicked {
                action: field("action"),
            }
        }
        _ => Event::Other(name),
    })
}

fn read_loop(
    stream: UnixStream,
    greet: Sender<Result<Value, String>>,
    responses: Sender<Result<Value, String>>,
    mut on_event: impl FnMut(Event),
) {
    let reader = BufReader::new(stream);
    for line in reader.lines() {
        let Ok(line) = line else { break };
        match classify(&line) {
            Message::Greeting(g) => {
                let _ = greet.send(Ok(g));
            }
            Message::Response(r) => {
                let _ = responses.send(r);
            }
            Message::Event(e) => on_event(e),
            Message::Unknown => {
                tracing::debug!(line, "unrecognised qmp line");
            }
        }
    }
    let _ = greet.send(Err("connection closed".into()));
    on_event(Event::Closed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_qemu_7_2_lines() {
        let g = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#;
        assert!(matches!(classify(g), Message::Greeting(_)));
        assert_eq!(
            classify(r#"{"return": {}}"#),
            Message::Response(Ok(serde_json::json!({})))
        );
        assert_eq!(
            classify(r#"{"error": {"class": "GenericError", "desc": "nope"}}"#),
            Message::Response(Err("nope".into()))
        );
        let sd = r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#;
        assert_eq!(
            classify(sd),
            Message::Event(Event::Shutdown {
                guest: true,
                reason: "guest-shutdown".into()
            })
        );
        let p = r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "GUEST_PANICKED", "data": {"action": "run"}}"#;
        assert_eq!(
            classify(p),
            Message::Event(Event::GuestPanicked {
                action: "run".into()
            })
        );
    }

    #[test]
    fn unknown_events_and_fields_are_delivered_by_name() {
        // A reason the 9.1 schema does not know, and an event it does not know.
        let sd = r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "from-the-future", "extra": 1}}"#;
        assert_eq!(
            classify(sd),
            Message::Event(Event::Shutdown {
                guest: false,
                reason: "from-the-future".into()
            })
        );
        let other = r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "NOT_AN_EVENT", "data": {}}"#;
        assert_eq!(
            classify(other),
            Message::Event(Event::Other("NOT_AN_EVENT".into()))
        );
        assert_eq!(classify("not json"), Message::Unknown);
    }

    #[test]
    fn commands_are_encoded_with_qapi_names() {
        let v = serde_json::to_value(qapi::Execute::<_, qapi::Never>::new(
            qmp::inject_nmi {},
            None,
        ))
        .unwrap();
        assert_eq!(v["execute"], "inject-nmi");
    }
}
