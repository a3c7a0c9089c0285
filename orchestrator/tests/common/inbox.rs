//! A real public-inbox for the patch bot's tests: Debian's `public-inbox`
//! (`public-inbox-init -V2`, mail delivered with `public-inbox-mda`, served
//! by `public-inbox-httpd` on loopback), killed when dropped.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A public-inbox `test` (list address `test@example.org`) at `dir`, served
/// on loopback at `url`.
pub struct Inbox {
    pub config: PathBuf,
    pub url: String,
    _httpd: Killed,
}

impl Inbox {
    /// Makes the inbox and starts its httpd.
    pub fn start(dir: &Path) -> Inbox {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("config");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}/test");
        let st = Command::new("public-inbox-init")
            .args(["-V2", "test"])
            .arg(dir.join("test"))
            .args([&url, "test@example.org"])
            .env("PI_CONFIG", &config)
            .status()
            .unwrap();
        assert!(st.success());
        let st = Command::new("git")
            .args(["config", "-f"])
            .arg(&config)
            .args(["publicinboxmda.spamcheck", "none"])
            .status()
            .unwrap();
        assert!(st.success());
        let httpd = Command::new("public-inbox-httpd")
            .args(["-W", "1", "-l", &format!("http://127.0.0.1:{port}")])
            .env("PI_CONFIG", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let inbox = Inbox {
            config,
            url,
            _httpd: Killed(httpd),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "public-inbox-httpd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        inbox
    }

    /// Delivers one mail file (format-patch output or a plain message).
    pub fn deliver(&self, mail: &Path) {
        self.deliver_bytes(&std::fs::read(mail).unwrap());
    }

    /// Delivers one mail.
    pub fn deliver_bytes(&self, text: &[u8]) {
        // format-patch's "From <sha> Mon Sep 17 ..." mbox line is not a header.
        let body = match text.strip_prefix(b"From ") {
            Some(r) => &r[r.iter().position(|&c| c == b'\n').unwrap() + 1..],
            None => text,
        };
        let mut c = Command::new("public-inbox-mda")
            .env("PI_CONFIG", &self.config)
            .env("ORIGINAL_RECIPIENT", "test@example.org")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(body).unwrap();
        assert!(c.wait().unwrap().success(), "public-inbox-mda failed");
    }

    /// GET `path` under the inbox's URL (`new.atom`), as text.
    pub fn get(&self, path: &str) -> String {
        ureq::get(format!("{}/{path}", self.url))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    }
}
