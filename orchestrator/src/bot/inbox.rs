//! Where patch mails come from: a public-inbox archive over HTTP(S) as lore
//! serves it (`<inbox>/new.atom`, then each new thread as
//! `<inbox>/<msgid>/t.mbox.gz`), or a local mbox file or maildir. Polls are
//! bounded (sizes, counts, timeouts); an HTTP error leaves the position as
//! it was, and the caller backs off ([`backoff`]).

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// Largest body read from the server (bytes, after gunzip for threads).
const MAX_BODY: u64 = 32 << 20;
/// Most mails taken from one thread or file per poll.
const MAX_MAILS: usize = 2000;

/// A source of mails.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A public-inbox's URL (`https://lore.kernel.org/linux-kernel`).
    PublicInbox(String),
    /// A local mbox file.
    Mbox(PathBuf),
    /// A local maildir (`new/` and `cur/`).
    Maildir(PathBuf),
}

impl Source {
    /// What the store keys the position by.
    pub fn key(&self) -> String {
        match self {
            Source::PublicInbox(u) => u.clone(),
            Source::Mbox(p) => format!("mbox:{}", p.display()),
            Source::Maildir(p) => format!("maildir:{}", p.display()),
        }
    }
}

/// One poll's mails and the position after it.
#[derive(Debug, Clone, Default)]
pub struct Polled {
    pub mails: Vec<Vec<u8>>,
    /// The new position (newest Atom `<updated>` seen).
    pub position: Option<String>,
}

/// The HTTP client (ureq, native TLS, timeouts, no automatic status
/// errors hidden: every non-2xx is an error).
pub fn agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(true)
        .user_agent(format!("csdci-bot/{}", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, String> {
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    resp.body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| format!("GET {url}: {e}"))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Percent-decodes a URL path segment.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An Atom entry: the message's URL segment (escaped Message-ID) and time.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub segment: String,
    pub message_id: String,
    pub updated: String,
}

/// The entries of a public-inbox Atom feed (`<entry>` with `<link
/// href=".../<msgid>/"/>` and `<updated>`), newest first as served.
pub fn parse_atom(xml: &str) -> Vec<Entry> {
    let link = regex::Regex::new(r#"<link\b[^>]*\bhref="([^"]*)""#).expect("static regex");
    let upd = regex::Regex::new(r"<updated>([^<]*)</updated>").expect("static regex");
    let mut out = Vec::new();
    for chunk in xml.split("<entry").skip(1).take(MAX_MAILS) {
        let body = chunk.split("</entry>").next().unwrap_or("");
        let Some(href) = link.captures(body).map(|c| xml_unescape(&c[1])) else {
            continue;
        };
        let Some(seg) = href.trim_end_matches('/').rsplit('/').next() else {
            continue;
        };
        if seg.is_empty() {
            continue;
        }
        out.push(Entry {
            segment: seg.to_string(),
            message_id: percent_decode(seg),
            updated: upd
                .captures(body)
                .map(|c| c[1].trim().to_string())
                .unwrap_or_default(),
        });
    }
    out
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(MAX_BODY)
        .read_to_end(&mut out)
        .map_err(|e| format!("gunzip: {e}"))?;
    Ok(out)
}

fn mid_of(raw: &[u8]) -> Option<String> {
    let m = mail_parser::MessageParser::default().parse_headers(raw)?;
    m.message_id().map(|s| s.to_string())
}

/// Polls `src` once. `seen(mid)` says whether a Message-ID is known (its
/// thread is not fetched again). `position` is the last poll's.
pub fn poll(
    agent: &ureq::Agent,
    src: &Source,
    position: Option<&str>,
    seen: &dyn Fn(&str) -> bool,
) -> Result<Polled, String> {
    match src {
        Source::PublicInbox(url) => {
            let base = url.trim_end_matches('/');
            let feed = get(agent, &format!("{base}/new.atom"))?;
            let entries = parse_atom(&String::from_utf8_lossy(&feed));
            let mut got: HashSet<String> = HashSet::new();
            let mut mails = Vec::new();
            let mut newest = position.map(str::to_string);
            // Oldest first, so a failure part-way keeps what came before.
            for e in entries.iter().rev() {
                if position.is_some_and(|p| !e.updated.is_empty() && e.updated.as_str() < p) {
                    continue;
                }
                if got.contains(&e.message_id) || seen(&e.message_id) {
                    continue;
                }
                let gz = get(agent, &format!("{base}/{}/t.mbox.gz", e.segment))?;
                for m in crate::bot::series::split_mbox(&gunzip(&gz)?, MAX_MAILS) {
                    if let Some(id) = mid_of(&m) {
                        got.insert(id);
                    }
                    mails.push(m);
                }
                if newest.as_deref().is_none_or(|n| e.updated.as_str() > n) {
                    newest = Some(e.updated.clone());
                }
            }
            Ok(Polled {
                mails,
                position: newest,
            })
        }
        Source::Mbox(p) => {
            let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(Polled {
                mails: crate::bot::series::split_mbox(&data, MAX_MAILS),
                position: None,
            })
        }
        Source::Maildir(p) => {
            let mut files: Vec<PathBuf> = ["new", "cur"]
                .iter()
                .flat_map(|d| std::fs::read_dir(p.join(d)).into_iter().flatten().flatten())
                .map(|e| e.path())
                .filter(|f| f.is_file())
                .collect();
            files.sort();
            files.truncate(MAX_MAILS);
            let mails = files
                .iter()
                .filter_map(|f| std::fs::read(f).ok())
                .filter(|m| m.len() as u64 <= MAX_BODY)
                .collect();
            Ok(Polled {
                mails,
                position: None,
            })
        }
    }
}

/// Seconds to wait after `failures` failed polls in a row: `base` doubled
/// per failure, at most an hour.
pub fn backoff(base: Duration, failures: u32) -> Duration {
    let f = failures.min(16);
    (base * 2u32.saturating_pow(f.saturating_sub(1))).min(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atom_entries() {
        let xml = r#"<feed><entry><author><name>A</name></author><title>[PATCH 1/2] x</title><updated>2026-01-02T03:04:05Z</updated><link href="http://h/test/20260101.abc%2Fd@x.org/"/><id>urn:uuid:1</id></entry><entry><updated>2026-01-01T00:00:00Z</updated><link href="http://h/test/b@x/"/></entry></feed>"#;
        let e = parse_atom(xml);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].message_id, "20260101.abc/d@x.org");
        assert_eq!(e[0].segment, "20260101.abc%2Fd@x.org");
        assert_eq!(e[0].updated, "2026-01-02T03:04:05Z");
        assert!(parse_atom("<entry><link href=\"\"/>").is_empty());
        assert_eq!(percent_decode("a%"), "a%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(60);
        assert_eq!(backoff(b, 1), b);
        assert_eq!(backoff(b, 3), b * 4);
        assert_eq!(backoff(b, 30), Duration::from_secs(3600));
    }
}
