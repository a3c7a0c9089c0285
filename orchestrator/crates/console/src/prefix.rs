//! Console line prefixes: printk timestamps, caller ids and the "context" they name.
//!
//! A line such as `[  12.345678][   T123] BUG: ...` carries a timestamp and a caller id
//! (`T123` is a task, `C3` a CPU). Lines of one report share one context, which is how
//! interleaved reports from several CPUs are told apart.

/// Where a console line came from, as far as its prefix tells.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Context {
    /// No printk timestamp at all.
    #[default]
    None,
    /// A timestamp but no caller id.
    Console,
    /// A task caller id (`T123`).
    Task(u32),
    /// A CPU caller id (`C3`).
    Cpu(u32),
}

impl Context {
    /// True for contexts that name a task or CPU (`CONFIG_PRINTK_CALLER=y`).
    pub fn is_caller(&self) -> bool {
        matches!(self, Context::Task(_) | Context::Cpu(_))
    }
}

fn skip_spaces(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i] == b' ' {
        i += 1;
    }
    i
}

fn skip_digits(s: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    (i > start).then_some(i)
}

/// Parses `[ *N.N]` optionally followed by `[ *(C|T)N]` and a space, at `i`.
fn timestamp_at(s: &[u8], i: usize) -> Option<Context> {
    if s.get(i) != Some(&b'[') {
        return None;
    }
    let j = skip_spaces(s, i + 1);
    let j = skip_digits(s, j)?;
    if s.get(j) != Some(&b'.') {
        return None;
    }
    let j = skip_digits(s, j + 1)?;
    if s.get(j) != Some(&b']') {
        return None;
    }
    let j = j + 1;
    // Optional caller id.
    if s.get(j) == Some(&b'[') {
        let k = skip_spaces(s, j + 1);
        if let Some(&kind) = s.get(k)
            && (kind == b'C' || kind == b'T')
            && let Some(end) = skip_digits(s, k + 1)
            && s.get(end) == Some(&b']')
            && s.get(end + 1) == Some(&b' ')
        {
            let n: u32 = std::str::from_utf8(&s[k + 1..end])
                .ok()
                .and_then(|x| x.parse().ok())
                .unwrap_or(u32::MAX);
            return Some(if kind == b'C' {
                Context::Cpu(n)
            } else {
                Context::Task(n)
            });
        }
    }
    (s.get(j) == Some(&b' ')).then_some(Context::Console)
}

/// Parses the optional `<N>` log level at `i`; returns the index after it.
fn level_at(s: &[u8], i: usize) -> usize {
    if s.get(i) == Some(&b'<')
        && let Some(j) = skip_digits(s, i + 1)
        && s.get(j) == Some(&b'>')
    {
        return j + 1;
    }
    i
}

/// Parses the optional `** N printk messages dropped ** ` at the start.
fn dropped_at(s: &[u8]) -> usize {
    const HEAD: &[u8] = b"** ";
    const TAIL: &[u8] = b" printk messages dropped ** ";
    if s.starts_with(HEAD)
        && let Some(j) = skip_digits(s, HEAD.len())
        && s[j..].starts_with(TAIL)
    {
        return j + TAIL.len();
    }
    0
}

/// The context of a console line (the kind of prefix it starts with).
pub fn context(line: &[u8]) -> Context {
    let start = dropped_at(line);
    let i = level_at(line, start);
    if let Some(c) = timestamp_at(line, i) {
        return c;
    }
    // A "... login: " prompt glued before the line.
    let finder = memchr::memmem::Finder::new(b" login: ");
    for pos in finder.find_iter(&line[start..]) {
        let after = start + pos + 8;
        let i = level_at(line, after);
        if let Some(c) = timestamp_at(line, i) {
            return c;
        }
    }
    Context::None
}

/// Strips the console prefix of a line of context `ctx` (everything up to the first
/// `"] "`). Returns the rest and whether it is a questionable (`?`) stack frame.
pub fn strip<'a>(line: &'a [u8], ctx: &Context) -> (&'a [u8], bool) {
    if *ctx == Context::None {
        return (line, false);
    }
    let rest = match crate::find::find(line, b"] ") {
        Some(p) => &line[p + 2..],
        None => line,
    };
    if crate::find::find(rest, b"<EOI>").is_none() {
        if let Some(pos) = questionable_frame(rest) {
            return (&rest[pos..], true);
        }
        if let Some(r) = rest.strip_suffix(b" (unreliable)") {
            return (r, true);
        }
    }
    (rest, false)
}

/// Finds a `" ? "` marker of an unreliable frame (optionally preceded by `[<pc>]`);
/// returns the index just after `" ?"`.
fn questionable_frame(s: &[u8]) -> Option<usize> {
    let p = crate::find::find(s, b" ? ")?;
    Some(p + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts() {
        assert_eq!(context(b"[   12.345678] BUG: x"), Context::Console);
        assert_eq!(
            context(b"[   12.345678][  T123] BUG: x"),
            Context::Task(123)
        );
        assert_eq!(context(b"[   12.345678][    C3] BUG: x"), Context::Cpu(3));
        assert_eq!(context(b"BUG: x"), Context::None);
        assert_eq!(
            context(b"syzkaller login: [   12.3] BUG: x"),
            Context::Console
        );
        assert_eq!(
            context(b"** 5 printk messages dropped ** [ 1.0] x"),
            Context::Console
        );
        assert_eq!(context(b"<4>[ 1.0] x"), Context::Console);
    }

    #[test]
    fn strips() {
        let l = b"[   12.3][  T1]  ? foo+0x1/0x2";
        let c = context(l);
        let (s, q) = strip(l, &c);
        assert!(q);
        assert_eq!(s, b" foo+0x1/0x2");
        let l = b"[   12.3] Call Trace:";
        assert_eq!(strip(l, &context(l)), (&b"Call Trace:"[..], false));
    }
}
