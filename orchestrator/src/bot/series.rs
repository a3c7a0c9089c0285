//! Patch mails and series, with b4's semantics: `[PATCH vN M/K]` and
//! `[RFC PATCH ...]` subjects, the cover letter `0/K`, threading by
//! Message-ID / In-Reply-To / References, a series complete only when all K
//! patches are there, `vN+1` superseding `vN`, and the `base-commit:`
//! trailer of `git format-patch --base`.
//!
//! Everything here is pure: bytes in, [`PatchMail`] or a [`Skip`] reason out
//! (mail-parser does MIME, quoted-printable, base64 and charsets), then
//! [`assemble`] groups mails into [`Series`]. Nothing panics on any input
//! (see the fuzz target and `tests/bot_inbox.rs`).

use std::collections::{BTreeMap, HashMap};

use mail_parser::{HeaderValue, MessageParser};

/// Largest mail accepted (bytes); a bigger one is skipped.
pub const MAX_MAIL: usize = 4 << 20;
/// Most patches one series may have.
pub const MAX_PATCHES: u32 = 200;

/// What a patch subject says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `RFC` was among the prefixes.
    pub rfc: bool,
    /// Revision (`v2` → 2; 1 when absent).
    pub version: u32,
    /// `M` of `M/K` (1 for a single patch without a counter).
    pub index: u32,
    /// `K` of `M/K` (1 for a single patch).
    pub total: u32,
    /// Other prefixes (`net-next`, `RESEND`), as written.
    pub extra: Vec<String>,
    /// The subject after the brackets.
    pub title: String,
}

/// Parses a subject as b4 does: the bracketed prefixes must contain `PATCH`
/// (or `RFC` alone); `Re:`/`Aw:` replies are not patches.
pub fn parse_subject(subject: &str) -> Option<Subject> {
    let s = subject.trim();
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("re:") || lower.starts_with("aw:") || lower.starts_with("fwd:") {
        return None;
    }
    let mut rest = s;
    let mut words: Vec<String> = Vec::new();
    while let Some(after) = rest.trim_start().strip_prefix('[') {
        let end = after.find(']')?;
        words.extend(after[..end].split_whitespace().map(str::to_string));
        rest = &after[end + 1..];
    }
    if words.is_empty() {
        return None;
    }
    let mut sub = Subject {
        rfc: false,
        version: 1,
        index: 1,
        total: 1,
        extra: Vec::new(),
        title: rest.trim().to_string(),
    };
    let mut patch = false;
    for w in &words {
        let up = w.to_ascii_uppercase();
        if up == "PATCH" {
            patch = true;
        } else if up == "RFC" {
            sub.rfc = true;
        } else if let Some(v) = up.strip_prefix('V').and_then(|v| v.parse::<u32>().ok()) {
            sub.version = v.max(1);
        } else if let Some((m, k)) = w.split_once('/')
            && let (Ok(m), Ok(k)) = (m.parse::<u32>(), k.parse::<u32>())
        {
            if k == 0 || m > k || k > MAX_PATCHES {
                return None;
            }
            sub.index = m;
            sub.total = k;
        } else {
            sub.extra.push(w.clone());
        }
    }
    if !(patch || sub.rfc) || sub.title.is_empty() {
        return None;
    }
    Some(sub)
}

/// A mail that is a patch or a cover letter, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchMail {
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// In-Reply-To, without angle brackets.
    pub in_reply_to: Option<String>,
    /// References, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// The decoded Subject header.
    pub subject_line: String,
    /// The parsed subject.
    pub subject: Subject,
    /// The sender's address.
    pub from: String,
    /// The sender's name, when given.
    pub from_name: Option<String>,
    /// Date (seconds since the epoch; 0 when absent).
    pub date: i64,
    /// `base-commit:` trailer.
    pub base_commit: Option<String>,
    /// `change-id:` trailer (b4 prep).
    pub change_id: Option<String>,
    /// Files the diff touches (empty for a cover letter).
    pub paths: Vec<String>,
    /// The whole mail as received (what `git am` reads).
    pub raw: Vec<u8>,
}

impl PatchMail {
    /// The thread root this mail hangs under: the first References entry,
    /// else In-Reply-To, else itself.
    pub fn root(&self) -> &str {
        self.references
            .first()
            .or(self.in_reply_to.as_ref())
            .map(String::as_str)
            .unwrap_or(&self.message_id)
    }

    /// A cover letter (`0/K`).
    pub fn is_cover(&self) -> bool {
        self.subject.index == 0
    }
}

/// Why a mail is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("larger than {MAX_MAIL} bytes")]
    TooLarge,
    #[error("not a parsable RFC 5322 message")]
    Unparsable,
    #[error("no Message-ID")]
    NoMessageId,
    #[error("not a patch: subject {0:?}")]
    NotAPatch(String),
    #[error("patch {0} has no diff")]
    NoDiff(String),
}

fn strip_id(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => t
            .split_whitespace()
            .map(strip_id)
            .filter(|s| !s.is_empty())
            .collect(),
        HeaderValue::TextList(l) => l
            .iter()
            .map(|s| strip_id(s))
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn trailer(body: &str, key: &str) -> Option<String> {
    body.lines().find_map(|l| {
        let v = l.trim().strip_prefix(key)?.trim();
        (!v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
            .then(|| v.to_string())
    })
}

/// Files a unified diff touches (`diff --git a/X b/Y`: both X and Y).
pub fn diff_paths(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in body.lines() {
        if let Some(rest) = l.strip_prefix("diff --git a/")
            && let Some((a, b)) = rest.split_once(" b/")
        {
            for p in [a, b] {
                if !out.iter().any(|o| o == p) {
                    out.push(p.to_string());
                }
            }
        }
    }
    out
}

/// Parses one mail. Patches need a diff; cover letters (`0/K`) do not.
pub fn parse_mail(raw: &[u8]) -> Result<PatchMail, Skip> {
    if raw.len() > MAX_MAIL {
        return Err(Skip::TooLarge);
    }
    // An mbox "From " line in front is not a header.
    let raw = match raw.strip_prefix(b"From ") {
        Some(r) => match memchr_newline(r) {
            Some(i) => &r[i + 1..],
            None => return Err(Skip::Unparsable),
        },
        None => raw,
    };
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(Skip::Unparsable)?;
    if msg.headers().is_empty() {
        return Err(Skip::Unparsable);
    }
    let message_id = msg
        .message_id()
        .map(strip_id)
        .filter(|s| !s.is_empty())
        .ok_or(Skip::NoMessageId)?;
    let subject_line = msg.subject().unwrap_or("").trim().to_string();
    let subject =
        parse_subject(&subject_line).ok_or_else(|| Skip::NotAPatch(subject_line.clone()))?;
    let mut body = String::new();
    for i in 0..msg.text_body_count().min(16) {
        if let Some(t) = msg.body_text(i) {
            body.push_str(&t);
            body.push('\n');
        }
    }
    // A patch sent as an attachment (text/x-patch) is a text part too, but
    // not always a "text body": read every text attachment as well.
    for part in msg.attachments().take(16) {
        if let Some(t) = part.text_contents() {
            body.push_str(t);
            body.push('\n');
        }
    }
    let paths = diff_paths(&body);
    if subject.index > 0 && paths.is_empty() {
        return Err(Skip::NoDiff(subject_line));
    }
    let from = msg.from().and_then(|a| a.first());
    let in_reply_to = ids(msg.in_reply_to()).into_iter().next();
    Ok(PatchMail {
        message_id,
        in_reply_to,
        references: ids(msg.references()),
        subject_line,
        from: from
            .and_then(|a| a.address())
            .unwrap_or("")
            .to_ascii_lowercase(),
        from_name: from.and_then(|a| a.name()).map(str::to_string),
        date: msg.date().map(|d| d.to_timestamp()).unwrap_or(0),
        base_commit: trailer(&body, "base-commit:"),
        change_id: trailer(&body, "change-id:"),
        paths,
        subject,
        raw: raw.to_vec(),
    })
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Splits an mbox (mboxo or mboxrd, as public-inbox serves) into mails,
/// undoing `>From ` quoting. Bounded: at most `max` mails.
pub fn split_mbox(data: &[u8], max: usize) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in data.split_inclusive(|&c| c == b'\n') {
        if line.starts_with(b"From ") {
            if let Some(m) = cur.take() {
                out.push(m);
                if out.len() >= max {
                    return out;
                }
            }
            cur = Some(Vec::new());
            continue;
        }
        let Some(m) = cur.as_mut() else { continue };
        // mboxrd: ">From " → "From ", ">>From " → ">From ".
        let stripped = line.iter().take_while(|&&c| c == b'>').count();
        if stripped > 0 && line[stripped..].starts_with(b"From ") {
            m.extend_from_slice(&line[1..]);
        } else {
            m.extend_from_slice(line);
        }
    }
    if let Some(m) = cur
        && out.len() < max
    {
        out.push(m);
    }
    // Trailing blank line that separates mbox entries.
    for m in &mut out {
        if m.ends_with(b"\n\n") {
            m.pop();
        }
    }
    out
}

/// A series assembled from mails.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Stable key: the thread root and the version (`<root>#v<N>`).
    pub key: String,
    /// What identifies it across versions: the `change-id`, else the
    /// sender and the normalised title of its cover (or first patch).
    pub topic: String,
    /// The revision.
    pub version: u32,
    /// K.
    pub total: u32,
    /// RFC.
    pub rfc: bool,
    /// The title (cover letter's, else the first patch's).
    pub title: String,
    /// The sender.
    pub from: String,
    /// The sender's name.
    pub from_name: Option<String>,
    /// The cover letter (0/K), if any.
    pub cover: Option<PatchMail>,
    /// The patches found, by index 1..=K.
    pub patches: BTreeMap<u32, PatchMail>,
    /// `base-commit:` of any of its mails.
    pub base_commit: Option<String>,
    /// Newest date of its mails.
    pub last_date: i64,
}

impl Series {
    /// All K patches are there.
    pub fn complete(&self) -> bool {
        (1..=self.total).all(|i| self.patches.contains_key(&i))
    }

    /// Indices missing.
    pub fn missing(&self) -> Vec<u32> {
        (1..=self.total)
            .filter(|i| !self.patches.contains_key(i))
            .collect()
    }

    /// The mail a reply goes to: the cover letter, else patch 1.
    pub fn head_mail(&self) -> Option<&PatchMail> {
        self.cover.as_ref().or_else(|| self.patches.values().next())
    }

    /// Every path its patches touch.
    pub fn paths(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .patches
            .values()
            .flat_map(|p| p.paths.iter().map(String::as_str))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The patches in order, concatenated as an mbox for `git am`.
    pub fn mbox(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in self.patches.values() {
            out.extend_from_slice(b"From csdci Mon Sep 17 00:00:00 2001\n");
            for line in p.raw.split_inclusive(|&c| c == b'\n') {
                let q = line.iter().take_while(|&&c| c == b'>').count();
                if line[q..].starts_with(b"From ") {
                    out.push(b'>');
                }
                out.extend_from_slice(line);
            }
            if !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            out.push(b'\n');
        }
        out
    }
}

/// Lowercases and squeezes a title for matching versions.
pub fn normalize_title(t: &str) -> String {
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Groups mails into series: a patch belongs to the series of its thread
/// root and version (git format-patch's shallow and deep threading, with or
/// without a cover letter, and a vN sent in reply to v(N-1)). Mails of the
/// same index twice keep the first.
pub fn assemble(mails: &[PatchMail]) -> Vec<Series> {
    let by_id: HashMap<&str, &PatchMail> =
        mails.iter().map(|m| (m.message_id.as_str(), m)).collect();
    let mut groups: BTreeMap<String, Series> = BTreeMap::new();
    for m in mails {
        let v = m.subject.version;
        // The root is the first referenced message that is a mail of this
        // series (same version); a vN thread hung under v(N-1)'s cover has
        // that cover first, so skip roots of another version.
        let chain: Vec<&str> = m
            .references
            .iter()
            .map(String::as_str)
            .chain(m.in_reply_to.as_deref())
            .collect();
        let root = chain
            .iter()
            .copied()
            .find(|id| {
                by_id
                    .get(id)
                    .is_some_and(|r| r.subject.version == v && r.subject.total == m.subject.total)
            })
            .or_else(|| {
                // The root mail is not (yet) here: b4 still groups by it.
                chain
                    .iter()
                    .copied()
                    .find(|id| !by_id.contains_key(id))
                    .filter(|_| m.subject.index > 0 && m.subject.total > 1)
            })
            .unwrap_or(&m.message_id)
            .to_string();
        let key = format!("{root}#v{v}");
        let s = groups.entry(key.clone()).or_insert_with(|| Series {
            key,
            topic: String::new(),
            version: v,
            total: m.subject.total,
            rfc: m.subject.rfc,
            title: String::new(),
            from: m.from.clone(),
            from_name: m.from_name.clone(),
            cover: None,
            patches: BTreeMap::new(),
            base_commit: None,
            last_date: 0,
        });
        if m.subject.total != s.total {
            continue;
        }
        s.last_date = s.last_date.max(m.date);
        if s.base_commit.is_none() {
            s.base_commit = m.base_commit.clone();
        }
        if m.is_cover() {
            if s.cover.is_none() {
                s.cover = Some(m.clone());
            }
        } else {
            s.patches
                .entry(m.subject.index)
                .or_insert_with(|| m.clone());
        }
    }
    let mut out: Vec<Series> = groups.into_values().collect();
    for s in &mut out {
        let head = s.cover.as_ref().or_else(|| s.patches.values().next());
        if let Some(h) = head {
            s.title = h.subject.title.clone();
            s.from = h.from.clone();
            s.from_name = h.from_name.clone();
        }
        let change = s
            .cover
            .iter()
            .chain(s.patches.values())
            .find_map(|m| m.change_id.clone());
        s.topic = match change {
            Some(c) => format!("change-id:{c}"),
            None => format!("{}:{}", s.from, normalize_title(&s.title)),
        };
    }
    out
}

/// The newest version of every topic: series superseded by a higher
/// version of the same topic are returned in the second list.
pub fn latest(series: Vec<Series>) -> (Vec<Series>, Vec<Series>) {
    let mut best: HashMap<String, u32> = HashMap::new();
    for s in &series {
        let b = best.entry(s.topic.clone()).or_insert(0);
        *b = (*b).max(s.version);
    }
    series
        .into_iter()
        .partition(|s| best.get(&s.topic).copied() == Some(s.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        let s = parse_subject("[PATCH v2 1/3] smp: Avoid invalid CSD lookup").unwrap();
        assert_eq!((s.version, s.index, s.total, s.rfc), (2, 1, 3, false));
        assert_eq!(s.title, "smp: Avoid invalid CSD lookup");
        let s = parse_subject("[RFC PATCH 0/2] cover").unwrap();
        assert_eq!((s.version, s.index, s.total, s.rfc), (1, 0, 2, true));
        let s = parse_subject("[PATCH] one").unwrap();
        assert_eq!((s.index, s.total), (1, 1));
        let s = parse_subject("[PATCH net-next v3 04/10] x").unwrap();
        assert_eq!((s.version, s.index, s.total), (3, 4, 10));
        assert_eq!(s.extra, vec!["net-next"]);
        let s = parse_subject("[RFC][PATCH v4 2/2] y").unwrap();
        assert_eq!((s.version, s.index, s.rfc), (4, 2, true));
        assert!(parse_subject("Re: [PATCH 1/2] x").is_none());
        assert!(parse_subject("[GIT PULL] x").is_none());
        assert!(parse_subject("plain").is_none());
        assert!(parse_subject("[PATCH 3/2] x").is_none());
        assert!(parse_subject("[PATCH 1/0] x").is_none());
        assert!(parse_subject("[PATCH 1/2]").is_none());
        assert!(parse_subject("[PATCH 1/2 x").is_none());
    }

    #[test]
    fn odd_mails_are_skipped_with_a_reason() {
        assert_eq!(parse_mail(b""), Err(Skip::Unparsable));
        assert_eq!(
            parse_mail(b"Subject: [PATCH] x\n\nbody"),
            Err(Skip::NoMessageId)
        );
        assert!(matches!(
            parse_mail(b"Message-ID: <a@b>\nSubject: hello\n\nbody"),
            Err(Skip::NotAPatch(_))
        ));
        assert!(matches!(
            parse_mail(b"Message-ID: <a@b>\nSubject: [PATCH 1/2] x\n\nno diff"),
            Err(Skip::NoDiff(_))
        ));
        let big = vec![b'a'; MAX_MAIL + 1];
        assert_eq!(parse_mail(&big), Err(Skip::TooLarge));
    }

    const DIFF: &str = "---\n a.c | 1 +\n\ndiff --git a/a.c b/a.c\nindex 1..2 100644\n--- a/a.c\n+++ b/a.c\n@@ -1 +1,2 @@\n x\n+\u{e9}t\u{e9}\n";

    #[test]
    fn base64_quoted_printable_and_charsets() {
        use std::io::Write;
        // base64 UTF-8 body, RFC 2047 subject in ISO-8859-1.
        let b64 = {
            let body = format!("Sign\u{e9}-off\n{DIFF}base-commit: 0123abcd\n");
            let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut s = String::new();
            for c in body.as_bytes().chunks(3) {
                let n = (u32::from(c[0]) << 16)
                    | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                    | u32::from(*c.get(2).unwrap_or(&0));
                for i in 0..4 {
                    if i <= c.len() {
                        s.push(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
                    } else {
                        s.push('=');
                    }
                }
            }
            s
        };
        let mut m = Vec::new();
        write!(
            m,
            "From: =?ISO-8859-1?Q?Ren=E9?= <rene@example.org>\nMessage-ID: <b64@x>\nSubject: =?ISO-8859-1?Q?[PATCH_1/1]_caf=E9?=\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n{b64}\n"
        )
        .unwrap();
        let p = parse_mail(&m).unwrap();
        assert_eq!(p.subject.title, "caf\u{e9}");
        assert_eq!(p.from_name.as_deref(), Some("Ren\u{e9}"));
        assert_eq!(p.paths, vec!["a.c"]);
        assert_eq!(p.base_commit.as_deref(), Some("0123abcd"));
        // quoted-printable, latin-1 body
        let qp = "From: a@b\nMessage-ID: <qp@x>\nSubject: [PATCH 1/1] qp\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nd=E9j=E0\n---\ndiff --git a/b=\n.c b/b.c\n--- a/b.c\n+++ b/b.c\n";
        let p = parse_mail(qp.as_bytes()).unwrap();
        assert_eq!(p.paths, vec!["b.c"]);
        // unknown charset, broken base64: still no panic
        let bad = "Message-ID: <bad@x>\nSubject: [PATCH 1/1] bad\nContent-Type: text/plain; charset=x-unknown-42\nContent-Transfer-Encoding: base64\n\n!!!not base64***\n";
        assert!(parse_mail(bad.as_bytes()).is_err());
    }

    #[test]
    fn mbox_round_trip() {
        let a = b"Message-ID: <1@x>\nSubject: [PATCH 1/1] a\n\nFrom here\n>From there\n".to_vec();
        let s = Series {
            key: "k".into(),
            topic: "t".into(),
            version: 1,
            total: 1,
            rfc: false,
            title: "a".into(),
            from: "x".into(),
            from_name: None,
            cover: None,
            patches: [(
                1,
                PatchMail {
                    message_id: "1@x".into(),
                    in_reply_to: None,
                    references: vec![],
                    subject_line: "[PATCH 1/1] a".into(),
                    subject: parse_subject("[PATCH 1/1] a").unwrap(),
                    from: "x".into(),
                    from_name: None,
                    date: 0,
                    base_commit: None,
                    change_id: None,
                    paths: vec![],
                    raw: a.clone(),
                },
            )]
            .into_iter()
            .collect(),
            base_commit: None,
            last_date: 0,
        };
        let mails = split_mbox(&s.mbox(), 10);
        assert_eq!(mails, vec![a]);
    }
}
