//! Quoting a finding from a stored console without reading the console whole:
//! seek to its first byte, read to its last, with a few lines of context (the
//! byte range is the analyzer's [`Finding::start_byte`](crate::Finding) ..
//! `end_byte`). A 50 MB console costs a few KiB of reading.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

/// Bytes read before a finding to find its context lines.
const BACK: u64 = 16 * 1024;
/// Bytes of a finding quoted at most.
const MAX_BYTES: u64 = 256 * 1024;
/// Bytes read after a finding for its context lines.
const AFTER: u64 = 8 * 1024;

/// Lines of a console around a finding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excerpt {
    /// Context lines before the finding's first line.
    pub before: Vec<String>,
    /// The finding's lines (at most `max_lines`).
    pub lines: Vec<String>,
    /// Context lines after its last line.
    pub after: Vec<String>,
    /// The finding had more lines than were quoted.
    pub cut: bool,
}

impl Excerpt {
    /// All lines, in console order.
    pub fn all(&self) -> Vec<String> {
        let mut v = self.before.clone();
        v.extend(self.lines.iter().cloned());
        v.extend(self.after.iter().cloned());
        v
    }
}

fn lines_of(bytes: &[u8]) -> Vec<String> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() && bytes.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect()
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, len: u64) -> std::io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at))?;
    let mut buf = Vec::with_capacity(len.min(1 << 20) as usize);
    r.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The lines of byte range `range` of a console (a finding's), at most
/// `max_lines` of them, with `context` lines before and after.
pub fn around<R: Read + Seek>(
    r: &mut R,
    range: Range<u64>,
    context: usize,
    max_lines: usize,
) -> std::io::Result<Excerpt> {
    let mut out = Excerpt::default();
    if context > 0 && range.start > 0 {
        let from = range.start.saturating_sub(BACK);
        let back = read_at(r, from, range.start - from)?;
        let mut before = lines_of(&back);
        // The window's first line is cut unless it starts the console.
        if from > 0 && !before.is_empty() {
            before.remove(0);
        }
        let skip = before.len().saturating_sub(context);
        out.before = before.split_off(skip);
    }
    let len = range.end.saturating_sub(range.start);
    let body = read_at(r, range.start, len.min(MAX_BYTES))?;
    let mut lines = lines_of(&body);
    out.cut = len > MAX_BYTES || lines.len() > max_lines;
    lines.truncate(max_lines);
    out.lines = lines;
    if context > 0 && !out.cut {
        let bytes = read_at(r, range.end, AFTER)?;
        let mut after = lines_of(&bytes);
        // A line cut by the window's end is left out.
        if bytes.len() as u64 == AFTER && !bytes.ends_with(b"\n") {
            after.pop();
        }
        after.truncate(context);
        out.after = after;
    }
    Ok(out)
}

/// The last `n` lines of a console (read from its end).
pub fn tail<R: Read + Seek>(r: &mut R, n: usize) -> std::io::Result<Vec<String>> {
    let size = r.seek(SeekFrom::End(0))?;
    let from = size.saturating_sub(BACK);
    let bytes = read_at(r, from, size - from)?;
    let mut lines = lines_of(&bytes);
    if from > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn console() -> (Vec<u8>, Range<u64>) {
        let mut s = String::new();
        for i in 1..=2000 {
            s.push_str(&format!("line {i}\r\n"));
        }
        let start = s.find("line 1000\r").unwrap() as u64;
        let end = s.find("line 1011\r").unwrap() as u64;
        (s.into_bytes(), start..end)
    }

    #[test]
    fn a_finding_with_context() {
        let (c, r) = console();
        let e = around(&mut Cursor::new(&c), r, 3, 100).unwrap();
        assert_eq!(e.before, ["line 997", "line 998", "line 999"]);
        assert_eq!(e.lines.first().unwrap(), "line 1000");
        assert_eq!(e.lines.last().unwrap(), "line 1010");
        assert_eq!(e.after, ["line 1011", "line 1012", "line 1013"]);
        assert!(!e.cut);
        assert_eq!(e.all().len(), 17);
        let e = around(&mut Cursor::new(&c), 0..7, 3, 100).unwrap();
        assert!(e.before.is_empty());
        assert_eq!(e.lines, ["line 1"]);
        let e = around(&mut Cursor::new(&c), 0..c.len() as u64, 3, 10).unwrap();
        assert!(e.cut);
        assert_eq!(e.lines.len(), 10);
    }

    #[test]
    fn the_end_of_a_console() {
        let (c, _) = console();
        assert_eq!(
            tail(&mut Cursor::new(&c), 2).unwrap(),
            ["line 1999", "line 2000"]
        );
        assert_eq!(tail(&mut Cursor::new(b"a\nb"), 5).unwrap(), ["a", "b"]);
        assert!(tail(&mut Cursor::new(b""), 5).unwrap().is_empty());
    }
}
