//! A real SMTP server on loopback for mail tests: Debian's python3-aiosmtpd
//! (installed by .ci/deps), each message it receives written to a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server: every message received is a file `N.eml` under `dir`.
pub struct Smtp {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

const SERVER: &str = r#"
import sys, os, time, itertools
from aiosmtpd.controller import Controller
out, port = sys.argv[1], int(sys.argv[2])
n = itertools.count(len(os.listdir(out)) + 1)
class Save:
    async def handle_DATA(self, server, session, envelope):
        i = next(n)
        tmp = os.path.join(out, f".{i}.tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.content)
        os.rename(tmp, os.path.join(out, f"{i}.eml"))
        return "250 OK"
c = Controller(Save(), hostname="127.0.0.1", port=port)
c.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// Debian's python (PATH may have another without Debian's packages).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

impl Smtp {
    /// Starts a server on a free port.
    pub fn start() -> Smtp {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("mail");
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Smtp {
            child: None,
            port: super::free_port(),
            dir,
            _tmp: tmp,
        };
        s.resume();
        s
    }

    /// Starts it again (same port and folder) after [`Smtp::stop`].
    pub fn resume(&mut self) {
        let ok = Command::new(python())
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "python3-aiosmtpd is missing: run .ci/deps (apt install python3-aiosmtpd)"
        );
        let child = Command::new(python())
            .args(["-c", SERVER])
            .arg(&self.dir)
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "the SMTP server did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it (a relay that is down).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The messages received so far, in order.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let p = e.path();
                        let n = p.file_stem()?.to_str()?.parse().ok()?;
                        (p.extension()? == "eml").then_some((n, p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| readable(&std::fs::read(p).unwrap_or_default()))
            .collect()
    }
}

/// A received message as a person reads it: its header block as sent,
/// then its text body decoded (base64, quoted-printable, charsets) by
/// mail-parser.
fn readable(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let head = text
        .split("\r\n\r\n")
        .next()
        .and_then(|h| h.split("\n\n").next())
        .unwrap_or("")
        .to_string();
    let body = mail_parser::MessageParser::default()
        .parse(raw)
        .and_then(|m| m.body_text(0).map(|b| b.into_owned()))
        .unwrap_or_default();
    format!("{head}\n\n{body}")
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of header `name` in a raw message (unfolded).
pub fn header(msg: &str, name: &str) -> Option<String> {
    let head = msg.split("\r\n\r\n").next().unwrap_or(msg);
    let head = head.split("\n\n").next().unwrap_or(head);
    let mut out: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = out.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if out.is_some() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case(name)
        {
            out = Some(v.trim().to_string());
        }
    }
    out
}
