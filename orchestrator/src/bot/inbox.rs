//! Where patch mails come from: a public-inbox archive over HTTP(S) as lore
//! serves it (`<inbox>/new.atom`, then each new thread as
//! `<inbox>/<msgid>/t.mbox.gz`), or a local mbox file or maildir. Polls are
//! bounded (sizes, counts, timeouts); an HTTP error leaves the position as
//! it was, and the caller backs off ([`backoff`]).
//!
//! `new.atom` holds only the newest messages (25 in public-inbox 1.9). When
//! every one of them is newer than the last position, messages may have
//! been missed in between (the bot was down, the list busy): the poll then
//! pages back through the archive's date search as Atom
//! (`<inbox>/?x=A&q=dt:<position>..&o=<offset>`, [`catch_up`]) until a
//! page comes back empty, and takes every message since the position.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// Largest body read from the server (bytes, after gunzip for threads).
const MAX_BODY: u64 = 32 << 20;
/// Most mails taken from one thread or file per poll.
const MAX_MAILS: usize = 2000;
/// Most search pages read in one catch-up.
const MAX_PAGES: usize = 50;

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
            let mut entries = parse_atom(&String::from_utf8_lossy(&feed));
            if let Some(p) = position
                && window_misses(&entries, p)
            {
                let older = catch_up(p, &mut |url_query| {
                    let page = get(agent, &format!("{base}/{url_query}"))?;
                    Ok(parse_atom(&String::from_utf8_lossy(&page)))
                })?;
                tracing::info!(
                    "{base}: new.atom does not reach back to {p}; {} messages since then from the search",
                    older.len()
                );
                for e in older {
                    if !entries.iter().any(|x| x.message_id == e.message_id) {
                        entries.push(e);
                    }
                }
                // Newest first, as the feed.
                entries.sort_by(|a, b| b.updated.cmp(&a.updated));
            }
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

/// Whether the feed's window starts after `position` (every entry newer):
/// what came between may be missing from it.
pub fn window_misses(entries: &[Entry], position: &str) -> bool {
    !entries.is_empty()
        && entries
            .iter()
            .all(|e| !e.updated.is_empty() && e.updated.as_str() > position)
}

/// `2026-12-03T07:40:00Z` as public-inbox's `dt:` search wants it
/// (`20261203074000`, UTC).
pub fn search_time(position: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(position).ok()?;
    Some(
        t.with_timezone(&chrono::Utc)
            .format("%Y%m%d%H%M%S")
            .to_string(),
    )
}

/// Every message since `position` from the archive's date search, page by
/// page (`?x=A&q=dt:<t>..&o=<offset>`, fetched by `page`) until a page is
/// empty or adds nothing new; at most [`MAX_PAGES`] pages.
pub fn catch_up(
    position: &str,
    page: &mut dyn FnMut(&str) -> Result<Vec<Entry>, String>,
) -> Result<Vec<Entry>, String> {
    let t = search_time(position).ok_or_else(|| format!("position `{position}` is not a time"))?;
    let mut out: Vec<Entry> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for _ in 0..MAX_PAGES {
        let got = page(&format!("?x=A&q=dt:{t}..&o={}", out.len()))?;
        let before = out.len();
        for e in got {
            if seen.insert(e.message_id.clone()) {
                out.push(e);
            }
        }
        if out.len() == before || out.len() >= MAX_MAILS {
            break;
        }
    }
    Ok(out)
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

    fn entry(n: u32) -> Entry {
        Entry {
            segment: format!("m{n}@x"),
            message_id: format!("m{n}@x"),
            updated: format!("2026-12-03T07:{n:02}:00Z"),
        }
    }

    #[test]
    fn catch_up_pages_until_an_empty_page() {
        // 45 messages since the position, served 20 a page, newest first.
        let all: Vec<Entry> = (10..55).rev().map(entry).collect();
        let mut asked = Vec::new();
        let got = catch_up("2026-12-03T07:10:00Z", &mut |q| {
            asked.push(q.to_string());
            let o: usize = q.rsplit("o=").next().unwrap().parse().unwrap();
            Ok(all.iter().skip(o).take(20).cloned().collect())
        })
        .unwrap();
        assert_eq!(got.len(), 45);
        assert_eq!(
            asked,
            [
                "?x=A&q=dt:20261203071000..&o=0",
                "?x=A&q=dt:20261203071000..&o=20",
                "?x=A&q=dt:20261203071000..&o=40",
                "?x=A&q=dt:20261203071000..&o=45"
            ]
        );
        // A server that ignores `o=` (the same page again) ends it too.
        let mut n = 0;
        let got = catch_up("2026-12-03T07:10:00Z", &mut |_| {
            n += 1;
            Ok(all[..5].to_vec())
        })
        .unwrap();
        assert_eq!((got.len(), n), (5, 2));
        assert!(catch_up("yesterday", &mut |_| Ok(Vec::new())).is_err());
    }

    #[test]
    fn the_window_misses_only_when_all_of_it_is_newer() {
        let feed: Vec<Entry> = (20..45).rev().map(entry).collect();
        assert!(window_misses(&feed, "2026-12-03T07:05:00Z"));
        assert!(!window_misses(&feed, "2026-12-03T07:20:00Z"));
        assert!(!window_misses(&feed, "2026-12-03T07:30:00Z"));
        assert!(!window_misses(&[], "2026-12-03T07:05:00Z"));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(60);
        assert_eq!(backoff(b, 1), b);
        assert_eq!(backoff(b, 3), b * 4);
        assert_eq!(backoff(b, 30), Duration::from_secs(3600));
    }
}
