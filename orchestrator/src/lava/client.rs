//! The LAVA REST API v0.2 over HTTP (ureq): `Authorization: Token ...` on
//! every request, JSON in and out. A transport failure is
//! [`Error::Unreachable`] (an outage, worth waiting for); 401/403 is
//! [`Error::BadToken`]; other non-2xx answers are [`Error::Http`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Error;

/// The environment variable read when no token file is given.
pub const TOKEN_ENV: &str = "CSDCI_LAVA_TOKEN";

/// Answers larger than this are cut (a job log is fetched in pieces).
const MAX_BODY: u64 = 64 << 20;

/// An API token and where it came from (the secret is never printed).
#[derive(Clone)]
pub struct Token {
    secret: String,
    from: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(from {})", self.from)
    }
}

impl Token {
    /// The token in `file` (its first line), else in `$CSDCI_LAVA_TOKEN`.
    pub fn load(file: Option<&Path>) -> Result<Token, Error> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::TokenFile {
                    path: path.to_path_buf(),
                    source,
                })?;
                let secret = text.lines().next().unwrap_or("").trim().to_string();
                if secret.is_empty() {
                    return Err(Error::EmptyToken(path.to_path_buf()));
                }
                Ok(Token {
                    secret,
                    from: format!("the file {}", path.display()),
                })
            }
            None => match std::env::var(TOKEN_ENV) {
                Ok(s) if !s.trim().is_empty() => Ok(Token {
                    secret: s.trim().to_string(),
                    from: format!("${TOKEN_ENV}"),
                }),
                _ => Err(Error::NoToken),
            },
        }
    }

    /// Where the token came from (`the file F`, `$CSDCI_LAVA_TOKEN`).
    pub fn source(&self) -> &str {
        &self.from
    }
}

/// A job as `GET /api/v0.2/jobs/ID/` shows it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Job {
    pub id: u64,
    /// Submitted, Scheduling, Scheduled, Running, Canceling, Finished.
    pub state: String,
    /// Unknown, Complete, Incomplete, Canceled.
    pub health: String,
    /// The device it runs (ran) on.
    #[serde(default)]
    pub actual_device: Option<String>,
    #[serde(default)]
    pub submit_time: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub failure_comment: Option<String>,
}

impl Job {
    /// The job has ended (whatever its health).
    pub fn finished(&self) -> bool {
        self.state == "Finished"
    }
}

/// A device as `GET /api/v0.2/devices/` lists it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Device {
    pub hostname: String,
    pub device_type: String,
    /// Idle, Reserved, Running.
    pub state: String,
    /// Good, Unknown, Looping, Bad, Maintenance, Retired.
    pub health: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub worker_host: Option<String>,
}

impl Device {
    /// LAVA schedules test jobs on it (health Good or Unknown).
    pub fn schedulable(&self) -> bool {
        matches!(self.health.as_str(), "Good" | "Unknown")
    }
}

/// A worker as `GET /api/v0.2/workers/` lists it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Worker {
    pub hostname: String,
    /// Online, Offline.
    pub state: String,
    /// Active, Maintenance, Retired.
    pub health: String,
}

#[derive(Deserialize)]
struct Page<T> {
    next: Option<String>,
    results: Vec<T>,
}

/// A LAVA server.
#[derive(Clone)]
pub struct Client {
    url: String,
    token: Token,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({}, {:?})", self.url, self.token)
    }
}

/// The server's base URL, normalised (`http://host/`, no `/api/...`).
pub fn base_url(url: &str) -> Result<String, Error> {
    let u = url.trim();
    let bad = |why: &str| Error::BadUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .ok_or_else(|| bad("it must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("no host"));
    }
    let mut base = u.trim_end_matches('/').to_string();
    for suffix in ["/api/v0.2", "/api"] {
        if let Some(s) = base.strip_suffix(suffix) {
            base = s.to_string();
        }
    }
    Ok(format!("{base}/"))
}

impl Client {
    /// A client for the server at `url` (`http://host/`; a trailing
    /// `/api/v0.2/` is accepted).
    pub fn new(url: &str, token: Token) -> Result<Client, Error> {
        let url = base_url(url)?;
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .build();
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .user_agent(format!("csdci/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Ok(Client { url, token, agent })
    }

    /// The server's base URL (ends with `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The job's page in LAVA's web interface.
    pub fn job_url(&self, id: u64) -> String {
        format!("{}scheduler/job/{id}", self.url)
    }

    fn api(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}api/v0.2/{path}", self.url)
        }
    }

    /// One request; `(status, body)`. Transport failures are outages;
    /// 401/403 are a refused token.
    fn call(&self, what: &str, path: &str, body: Option<&str>) -> Result<(u16, String), Error> {
        let url = self.api(path);
        let auth = format!("Token {}", self.token.secret);
        let res = match body {
            Some(b) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(b),
            None => self.agent.get(&url).header("Authorization", &auth).call(),
        };
        let mut resp = res.map_err(|e| Error::Unreachable {
            url: self.url.clone(),
            why: format!("{what}: {e}"),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| Error::Unreachable {
                url: self.url.clone(),
                why: format!("{what}: reading the answer: {e}"),
            })?;
        if status == 401 || status == 403 {
            return Err(Error::BadToken {
                url: self.url.clone(),
                from: self.token.from.clone(),
                status,
                detail: detail(&text),
            });
        }
        Ok((status, text))
    }

    fn get_json<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T, Error> {
        let (status, text) = self.call(what, path, None)?;
        if !(200..300).contains(&status) {
            return Err(Error::Http {
                what: what.to_string(),
                status,
                body: detail(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| Error::Answer {
            what: what.to_string(),
            why: e.to_string(),
        })
    }

    fn pages<T: DeserializeOwned>(&self, what: &str, first: &str) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        let mut next = Some(first.to_string());
        // A bounded number of pages: a lab with more devices than this is cut.
        for _ in 0..50 {
            let Some(path) = next.take() else { break };
            let page: Page<T> = self.get_json(what, &path)?;
            out.extend(page.results);
            next = page.next;
        }
        Ok(out)
    }

    /// Checks the token: the user it belongs to. An anonymous answer (no
    /// user) is a refused token too.
    pub fn whoami(&self) -> Result<String, Error> {
        #[derive(Deserialize)]
        struct Me {
            user: Option<String>,
        }
        let me: Me = self.get_json("GET system/whoami", "system/whoami/")?;
        match me.user.filter(|u| !u.is_empty()) {
            Some(u) => Ok(u),
            None => Err(Error::BadToken {
                url: self.url.clone(),
                from: self.token.from.clone(),
                status: 200,
                detail: "the server does not know this token (anonymous)".into(),
            }),
        }
    }

    /// Submits a job definition (YAML or JSON); its id.
    pub fn submit(&self, definition: &str) -> Result<u64, Error> {
        #[derive(Deserialize)]
        struct Submitted {
            job_ids: Vec<u64>,
        }
        let body = serde_json::json!({ "definition": definition }).to_string();
        let (status, text) = self.call("POST jobs", "jobs/", Some(&body))?;
        if status == 400 {
            return Err(Error::Rejected(detail(&text)));
        }
        if !(200..300).contains(&status) {
            return Err(Error::Http {
                what: "POST jobs".into(),
                status,
                body: detail(&text),
            });
        }
        let s: Submitted = serde_json::from_str(&text).map_err(|e| Error::Answer {
            what: "POST jobs".into(),
            why: e.to_string(),
        })?;
        s.job_ids.first().copied().ok_or_else(|| Error::Answer {
            what: "POST jobs".into(),
            why: "no job id".into(),
        })
    }

    /// The job's state.
    pub fn job(&self, id: u64) -> Result<Job, Error> {
        self.get_json(&format!("GET jobs/{id}"), &format!("jobs/{id}/"))
    }

    /// The job's log from line `start` (0-based) on, as LAVA's YAML text;
    /// `None` while the worker has sent nothing yet (404).
    pub fn logs(&self, id: u64, start: usize) -> Result<Option<String>, Error> {
        let what = format!("GET jobs/{id}/logs");
        let (status, text) = self.call(&what, &format!("jobs/{id}/logs/?start={start}"), None)?;
        match status {
            404 => Ok(None),
            200..=299 => Ok(Some(text)),
            _ => Err(Error::Http {
                what,
                status,
                body: detail(&text),
            }),
        }
    }

    /// Asks LAVA to cancel the job (it ends `Canceled` a few seconds later).
    pub fn cancel(&self, id: u64) -> Result<(), Error> {
        let what = format!("GET jobs/{id}/cancel");
        let (status, text) = self.call(&what, &format!("jobs/{id}/cancel/"), None)?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(Error::Http {
                what,
                status,
                body: detail(&text),
            })
        }
    }

    /// The devices of `device_type`.
    pub fn devices(&self, device_type: &str) -> Result<Vec<Device>, Error> {
        self.pages(
            "GET devices",
            &format!(
                "devices/?device_type={}&limit=100",
                query_escape(device_type)
            ),
        )
    }

    /// The names of the server's device types.
    pub fn device_types(&self) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Dt {
            name: String,
        }
        let v: Vec<Dt> = self.pages("GET devicetypes", "devicetypes/?limit=100")?;
        Ok(v.into_iter().map(|d| d.name).collect())
    }

    /// The server's workers.
    pub fn workers(&self) -> Result<Vec<Worker>, Error> {
        self.pages("GET workers", "workers/?limit=100")
    }
}

/// The `message` or `detail` of a JSON error answer, else the text (cut).
fn detail(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        for k in ["message", "detail"] {
            if let Some(s) = v.get(k).and_then(|m| m.as_str()) {
                return s.to_string();
            }
        }
    }
    text.trim().chars().take(300).collect()
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where a token file given relative to the current directory is, made
/// absolute so a stored bisection finds it from anywhere.
pub fn absolute_token_file(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised_and_checked() {
        assert_eq!(
            base_url("http://127.0.0.1:18080").unwrap(),
            "http://127.0.0.1:18080/"
        );
        assert_eq!(
            base_url("https://lava.example.org/api/v0.2/").unwrap(),
            "https://lava.example.org/"
        );
        let e = base_url("lava.example.org").unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("http://"), "{e}");
        assert!(base_url("http://").is_err());
    }

    #[test]
    fn error_answers_show_their_message() {
        assert_eq!(detail(r#"{"detail":"Invalid token."}"#), "Invalid token.");
        assert_eq!(
            detail(r#"{"message":"Devices unavailable: Device type 'x' is unavailable."}"#),
            "Devices unavailable: Device type 'x' is unavailable."
        );
        assert_eq!(detail("<html>502</html>\n"), "<html>502</html>");
        assert_eq!(query_escape("qemu x&y"), "qemu%20x%26y");
    }

    #[test]
    fn tokens_come_from_a_file_and_are_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cret\n").unwrap();
        let t = Token::load(Some(&f)).unwrap();
        assert_eq!(t.secret, "s3cret");
        assert!(!format!("{t:?}").contains("s3cret"));
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(Token::load(Some(&f)), Err(Error::EmptyToken(_))));
        let e = Token::load(Some(&dir.path().join("none"))).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("none"), "{e}");
    }
}
