//! Console line prefixes: printk timestamps, caller ids and the "context" they name,
//! and the prefixes that log tools put before kernel lines.
//!
//! A line such as `[  12.345678][   T123] BUG: ...` carries a timestamp and a caller id
//! (`T123` is a task, `C3` a CPU). Lines of one report share one context, which is how
//! interleaved reports from several CPUs are told apart.
//!
//! Consoles from the wild come through log tools that add their own prefixes, all
//! stripped here (they may be followed by the printk timestamp as well):
//!
//! ```text
//! Jan  3 12:34:56 host kernel: [  369.812345] BUG: ...     rsyslog (traditional)
//! Jan 03 12:34:56 host kernel: BUG: ...                     journalctl -k (short)
//! 2023-01-03T12:34:56+0100 host kernel: BUG: ...            journalctl -o short-iso
//! [  369.812345] host kernel: BUG: ...                      journalctl -o short-monotonic
//! kernel: BUG: ...                                          journald's bare form
//! [Tue Jan  3 12:34:56 2023] BUG: ...                       dmesg -T
//! [Jan 3 12:34] BUG: ...  /  [  +0.000123] ...              dmesg -H / -e (reltime)
//! [<    0.000123>] ...  /  [  369.812345 <    0.000123>]    dmesg -d
//! 2023-01-03T12:34:56,123456+01:00 BUG: ...                 dmesg --time-format iso
//! kern  :warn  : [  369.812345] BUG: ...                    dmesg -x
//! [  369.812345] [  T123] BUG: ...                          dmesg, caller id
//! ```
//!
//! A syslog line from another program (`host systemd[1]: ...`) has the context
//! [`Context::Other`]: it belongs to no kernel report.

/// Where a console line came from, as far as its prefix tells.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Context {
    /// No prefix at all.
    #[default]
    None,
    /// A timestamp (or a log tool's kernel prefix) but no caller id.
    Console,
    /// A task caller id (`T123`).
    Task(u32),
    /// A CPU caller id (`C3`).
    Cpu(u32),
    /// A log line of another program than the kernel (syslog/journald).
    Other,
}

impl Context {
    /// True for contexts that name a task or CPU (`CONFIG_PRINTK_CALLER=y`).
    pub fn is_caller(&self) -> bool {
        matches!(self, Context::Task(_) | Context::Cpu(_))
    }

    /// True for kernel lines that carry some prefix.
    pub fn is_kernel_prefix(&self) -> bool {
        matches!(self, Context::Console | Context::Task(_) | Context::Cpu(_))
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

/// Exactly `n` digits at `i`.
fn digits_n(s: &[u8], i: usize, n: usize) -> Option<usize> {
    (s.len() >= i + n && s[i..i + n].iter().all(u8::is_ascii_digit)).then_some(i + n)
}

fn byte(s: &[u8], i: usize, b: u8) -> Option<usize> {
    (s.get(i) == Some(&b)).then_some(i + 1)
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

fn word_in(s: &[u8], i: usize, words: &[&[u8; 3]]) -> Option<usize> {
    let w = s.get(i..i + 3)?;
    words.iter().any(|m| &m[..] == w).then_some(i + 3)
}

/// `hh:mm` (and `:ss` when `secs`), optionally followed by a fraction.
fn clock_at(s: &[u8], i: usize, secs: bool) -> Option<usize> {
    let mut j = skip_digits(s, i).filter(|&j| j - i <= 2)?;
    j = digits_n(s, byte(s, j, b':')?, 2)?;
    if secs {
        j = digits_n(s, byte(s, j, b':')?, 2)?;
        if matches!(s.get(j), Some(b'.') | Some(b','))
            && let Some(k) = skip_digits(s, j + 1)
        {
            j = k;
        }
    }
    Some(j)
}

/// `Mmm dd` (the day space-padded or not) at `i`.
fn month_day_at(s: &[u8], i: usize) -> Option<usize> {
    let j = skip_spaces(s, word_in(s, i, &MONTHS)?);
    skip_digits(s, j).filter(|&k| k - j <= 2)
}

/// `Mmm dd hh:mm:ss[.frac]` (rsyslog, journalctl short/short-precise).
fn syslog_date_at(s: &[u8], i: usize) -> Option<usize> {
    let j = month_day_at(s, i)?;
    clock_at(s, byte(s, j, b' ')?, true)
}

/// `YYYY-MM-DD[T ]hh:mm:ss[.,frac][Z|+hh[:]mm]`; also says whether the fraction
/// had a comma (dmesg's iso format, which no host name follows).
fn iso_date_at(s: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = digits_n(s, i, 4)?;
    j = digits_n(s, byte(s, j, b'-')?, 2)?;
    j = digits_n(s, byte(s, j, b'-')?, 2)?;
    if !matches!(s.get(j), Some(b'T') | Some(b' ')) {
        return None;
    }
    let comma = s[j + 1..].iter().take(9).any(|&b| b == b',');
    j = clock_at(s, j + 1, true)?;
    match s.get(j) {
        Some(b'Z') => j += 1,
        Some(b'+') | Some(b'-') => {
            j = digits_n(s, j + 1, 2)?;
            if s.get(j) == Some(&b':') {
                j += 1;
            }
            j = digits_n(s, j, 2)?;
        }
        _ => {}
    }
    Some((j, comma))
}

/// The `host tag: ` of a syslog line at `i`; returns the end and whether the tag
/// is the kernel's.
fn host_and_tag_at(s: &[u8], i: usize) -> Option<(usize, bool)> {
    let token = |from: usize| -> Option<usize> {
        let end = s[from..]
            .iter()
            .take(80)
            .position(|&b| b == b' ')
            .map(|p| from + p)
            .unwrap_or(s.len());
        (end > from && end - from < 80).then_some(end)
    };
    let is_tag = |a: usize, b: usize| b > a + 1 && s[b - 1] == b':';
    let is_kernel = |a: usize, b: usize| {
        let t = &s[a..b - 1];
        t == b"kernel" || (t.starts_with(b"kernel[") && t.ends_with(b"]"))
    };
    let after = |e: usize| if s.get(e) == Some(&b' ') { e + 1 } else { e };
    // "kernel: " right away (the host left out).
    let e1 = token(i)?;
    if is_tag(i, e1) && is_kernel(i, e1) {
        return Some((after(e1), true));
    }
    if is_tag(i, e1) || s.get(e1) != Some(&b' ') {
        return None;
    }
    let e2 = token(e1 + 1)?;
    is_tag(e1 + 1, e2).then(|| (after(e2), is_kernel(e1 + 1, e2)))
}

/// A log tool's header at `i`: a date, a host and a tag (or a bare `kernel: `).
/// Returns the end and whether the line is the kernel's.
fn host_header_at(s: &[u8], i: usize) -> Option<(usize, bool)> {
    match s.get(i)? {
        b'k' => {
            let e = byte(s, i + 6, b':')?;
            (&s[i..i + 6] == b"kernel" && s.get(e) == Some(&b' ')).then_some((e + 1, true))
        }
        b'A'..=b'Z' => {
            // Optional weekday (journalctl short-full: "Tue 2023-01-03 12:34:56 CET").
            let mut j = i;
            if let Some(k) = word_in(s, i, &WEEKDAYS).and_then(|k| byte(s, k, b' ')) {
                j = k;
            }
            let mut d = syslog_date_at(s, j).or_else(|| iso_date_at(s, j).map(|(e, _)| e))?;
            d = byte(s, d, b' ')?;
            // A time zone name.
            let z = s[d..]
                .iter()
                .take(6)
                .take_while(|b| b.is_ascii_uppercase())
                .count();
            if z >= 2 && s.get(d + z) == Some(&b' ') {
                d += z + 1;
            }
            host_and_tag_at(s, d)
        }
        b'0'..=b'9' => {
            let (d, comma) = iso_date_at(s, i).or_else(|| {
                // journalctl -o short-unix: "1672749296.123456 host kernel: ".
                let e = skip_digits(s, i).filter(|&e| e - i >= 9)?;
                Some((skip_digits(s, byte(s, e, b'.')?)?, false))
            })?;
            let d = byte(s, d, b' ')?;
            if comma {
                // dmesg --time-format iso: the message follows.
                return Some((d, true));
            }
            host_and_tag_at(s, d)
        }
        _ => None,
    }
}

/// `kern  :warn  : ` (dmesg -x) at `i`.
fn decode_at(s: &[u8], i: usize) -> Option<usize> {
    const FAC: &[&[u8]] = &[
        b"kern",
        b"user",
        b"mail",
        b"daemon",
        b"auth",
        b"syslog",
        b"lpr",
        b"news",
        b"uucp",
        b"cron",
        b"authpriv",
        b"ftp",
        b"local0",
        b"local1",
        b"local2",
        b"local3",
        b"local4",
        b"local5",
        b"local6",
        b"local7",
    ];
    const LEV: &[&[u8]] = &[
        b"emerg", b"alert", b"crit", b"err", b"warn", b"notice", b"info", b"debug",
    ];
    let field = |from: usize, names: &[&[u8]]| -> Option<usize> {
        let end = from
            + s[from..]
                .iter()
                .take(9)
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
        if !names.contains(&&s[from..end]) {
            return None;
        }
        byte(s, skip_spaces(s, end), b':')
    };
    if !s.get(i)?.is_ascii_lowercase() {
        return None;
    }
    let j = field(i, FAC)?;
    let j = field(j, LEV)?;
    byte(s, j, b' ')
}

/// `[ *N.N]` optionally followed by ` <delta>` inside the brackets.
fn printk_time(s: &[u8], j: usize) -> Option<usize> {
    let j = skip_spaces(s, j);
    let j = skip_digits(s, j)?;
    let mut j = skip_digits(s, byte(s, j, b'.')?)?;
    if s.get(j) == Some(&b' ') && s.get(j + 1) == Some(&b'<') {
        j = delta(s, j + 1)?;
    }
    Some(j)
}

/// `<    0.000123>`.
fn delta(s: &[u8], j: usize) -> Option<usize> {
    let j = skip_spaces(s, byte(s, j, b'<')?);
    let j = skip_digits(s, j)?;
    let j = skip_digits(s, byte(s, j, b'.')?)?;
    byte(s, j, b'>')
}

/// One bracketed time stamp at `i` (the bracket contents of the forms listed in the
/// module documentation); returns the index after `]`.
fn stamp_at(s: &[u8], i: usize) -> Option<usize> {
    let j = byte(s, i, b'[')?;
    let k = skip_spaces(s, j);
    let end = match s.get(k)? {
        b'0'..=b'9' => printk_time(s, j)?,
        b'<' => delta(s, k)?,
        b'+' | b'-' => {
            let e = skip_digits(s, k + 1)?;
            skip_digits(s, byte(s, e, b'.')?)?
        }
        b'A'..=b'Z' if k == j => {
            if let Some(w) = word_in(s, k, &WEEKDAYS) {
                // ctime: "Tue Jan  3 12:34:56 2023" (optionally " <delta>").
                let d = month_day_at(s, byte(s, w, b' ')?)?;
                let c = clock_at(s, byte(s, d, b' ')?, true)?;
                let mut y = digits_n(s, byte(s, c, b' ')?, 4)?;
                if s.get(y) == Some(&b' ') {
                    y = delta(s, y + 1)?;
                }
                y
            } else {
                // reltime: "Jan 3 12:34" / "Jan10 12:34".
                let d = month_day_at(s, k)?;
                clock_at(s, byte(s, d, b' ')?, false)?
            }
        }
        _ => return None,
    };
    byte(s, end, b']')
}

/// A caller id `[ *(C|T)N]` at `i`; returns its context and the index after `]`.
fn caller_at(s: &[u8], i: usize) -> Option<(Context, usize)> {
    let k = skip_spaces(s, byte(s, i, b'[')?);
    let kind = *s.get(k)?;
    if kind != b'C' && kind != b'T' {
        return None;
    }
    let end = skip_digits(s, k + 1)?;
    let close = byte(s, end, b']')?;
    let n: u32 = std::str::from_utf8(&s[k + 1..end])
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(u32::MAX);
    let ctx = if kind == b'C' {
        Context::Cpu(n)
    } else {
        Context::Task(n)
    };
    Some((ctx, close))
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

/// A parsed prefix: where the kernel message starts and the line's context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// Index of the first byte of the message.
    pub end: usize,
    /// The context the prefix names.
    pub ctx: Context,
}

/// Time stamps, caller id and what may follow them, from `i`. `any` says whether
/// something was recognised before `i`.
fn stamps_from(s: &[u8], mut i: usize, mut any: bool) -> Option<Prefix> {
    let mut ctx = Context::Console;
    i = level_at(s, i);
    while let Some(e) = stamp_at(s, i) {
        any = true;
        i = e;
        // The caller id glued to the time stamp ("[ 1.0][ T1] ", the console's
        // form) or after a space (dmesg's).
        let glued = caller_at(s, i);
        let spaced = if glued.is_none() && s.get(i) == Some(&b' ') {
            caller_at(s, i + 1)
        } else {
            None
        };
        if let Some((c, e)) = glued.or(spaced) {
            ctx = c;
            i = byte(s, e, b' ')?;
            break;
        }
        i = byte(s, i, b' ')?;
    }
    if !any {
        return None;
    }
    if !ctx.is_caller()
        && let Some((e, true)) = host_and_tag_at(s, i)
    {
        // journalctl -o short-monotonic: "[  369.812345] host kernel: ".
        return stamps_from(s, e, true);
    }
    Some(Prefix { end: i, ctx })
}

/// Parses the prefix at the start of `line` (after `start`).
fn parse_at(line: &[u8], start: usize) -> Option<Prefix> {
    let mut i = start;
    let mut any = false;
    if let Some((e, kernel)) = host_header_at(line, i) {
        if !kernel {
            return Some(Prefix {
                end: e,
                ctx: Context::Other,
            });
        }
        i = e;
        any = true;
    }
    if let Some(e) = decode_at(line, i) {
        i = e;
        any = true;
    }
    match stamps_from(line, i, any) {
        Some(p) => Some(p),
        None if any => Some(Prefix {
            end: i,
            ctx: Context::Console,
        }),
        None => None,
    }
}

/// The prefix of a console line: where its message starts and its context.
pub fn parse(line: &[u8]) -> Prefix {
    let start = dropped_at(line);
    if let Some(p) = parse_at(line, start) {
        return p;
    }
    // Pasted consoles: leading blanks or mail quote marks before a prefix.
    let mut i = start;
    while i < line.len() && matches!(line[i], b' ' | b'\t' | b'>') {
        i += 1;
    }
    if i > start
        && i < line.len()
        && let Some(p) = parse_at(line, i)
    {
        return p;
    }
    // A "... login: " prompt glued before the line.
    let finder = memchr::memmem::Finder::new(b" login: ");
    for pos in finder.find_iter(&line[start..]) {
        let after = start + pos + 8;
        if let Some(p) = stamps_from(line, after, false) {
            return p;
        }
    }
    Prefix {
        end: 0,
        ctx: Context::None,
    }
}

/// The context of a console line (the kind of prefix it starts with).
pub fn context(line: &[u8]) -> Context {
    parse(line).ctx
}

/// Strips the console prefix of a line of context `ctx`. Returns the rest and
/// whether it is a questionable (`?`) stack frame.
pub fn strip<'a>(line: &'a [u8], ctx: &Context) -> (&'a [u8], bool) {
    if *ctx == Context::None {
        return (line, false);
    }
    let p = parse(line);
    let rest = if p.ctx != Context::None {
        &line[p.end..]
    } else {
        match crate::find::find(line, b"] ") {
            Some(p) => &line[p + 2..],
            None => line,
        }
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

/// Widest line a mailer leaves alone; wrapped lines are cut before it.
const WRAP_MAX: usize = 100;
/// A line plus the next word longer than this was wrapped by the common mailers
/// (72 to 80 columns).
const WRAP_MIN: usize = 66;

/// Is `line` the tail of `prev` that a mailer (or a bug tracker) wrapped onto a line
/// of its own? Only when unambiguous: `prev` is a kernel line with a prefix and as
/// long as wrapped lines are, `line` has no prefix, does not start with a blank (a
/// mailer drops the blank it wraps at) and its first word would not have fitted.
/// A user-space trap line cut right after its `traps: COMM[PID]` also counts.
pub fn is_wrapped_tail(prev: &[u8], line: &[u8]) -> bool {
    let prev = trim_end(prev);
    if context(line) != Context::None {
        return false;
    }
    let line = trim_end(line);
    if line.is_empty()
        || matches!(line[0], b' ' | b'\t')
        // A time stamp cut short or glued ("[   44.37][    C4]" with no blank).
        || (line[0] == b'[' && matches!(line.get(1), Some(b' ' | b'0'..=b'9')))
        || prev.len() > WRAP_MAX
    {
        return false;
    }
    let p = parse(prev);
    if !p.ctx.is_kernel_prefix() || p.end >= prev.len() {
        return false;
    }
    let word = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    if prev.len() + 1 + word > WRAP_MIN {
        return true;
    }
    let msg = &prev[p.end..];
    msg.starts_with(b"traps: ")
        && msg.ends_with(b"]")
        && !msg[7..].contains(&b' ')
        && msg.contains(&b'[')
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\r' | b'\t'] = s {
        s = rest;
    }
    s
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
    fn log_tool_prefixes() {
        let msg = |l: &[u8]| {
            let p = parse(l);
            (String::from_utf8_lossy(&l[p.end..]).into_owned(), p.ctx)
        };
        let console = |m: &str| (m.to_string(), Context::Console);
        for l in [
            &b"Jan  3 12:34:56 myhost kernel: [  369.812345] BUG: x"[..],
            b"Jan 03 12:34:56 myhost kernel: BUG: x",
            b"Jan 03 12:34:56.123456 myhost kernel: BUG: x",
            b"Tue 2023-01-03 12:34:56 CET myhost kernel: BUG: x",
            b"2023-01-03T12:34:56+0100 myhost kernel: BUG: x",
            b"2023-01-03T12:34:56.123456+01:00 myhost kernel: [  369.8] BUG: x",
            b"1672749296.123456 myhost kernel: BUG: x",
            b"[  369.812345] myhost kernel: BUG: x",
            b"kernel: BUG: x",
            b"Jan  3 12:34:56 kernel: BUG: x",
            b"[Tue Jan  3 12:34:56 2023] BUG: x",
            b"[Tue Jan 10 12:34:56 2023 <    0.000123>] BUG: x",
            b"[Jan 3 12:34] BUG: x",
            b"[Jan10 12:34] BUG: x",
            b"[  +0.000123] BUG: x",
            b"[ +12.345678] BUG: x",
            b"[<    0.000123>] BUG: x",
            b"[  369.812345 <    0.000123>] BUG: x",
            b"2023-01-03T12:34:56,123456+01:00 BUG: x",
            b"kern  :warn  : [  369.812345] BUG: x",
            b"> [  369.812345] BUG: x",
            b"    [  369.812345] BUG: x",
        ] {
            assert_eq!(msg(l), console("BUG: x"), "{}", String::from_utf8_lossy(l));
        }
        assert_eq!(
            msg(b"[  369.812345] [  T123] BUG: x"),
            ("BUG: x".into(), Context::Task(123))
        );
        assert_eq!(
            msg(b"Jan  3 12:34:56 myhost kernel: [  369.8][    C2] BUG: x"),
            ("BUG: x".into(), Context::Cpu(2))
        );
        // Frames keep their leading blank; unreliable ones are still recognised.
        let l = b"Jan 03 12:34:56 myhost kernel:  ? bit_wait+0x60/0x60";
        assert_eq!(strip(l, &context(l)), (&b" bit_wait+0x60/0x60"[..], true));
        // Other programs' lines are no kernel lines.
        assert_eq!(
            context(b"Jan  3 12:34:56 myhost systemd[1]: Started Session 3 of user root."),
            Context::Other
        );
        // Kernel messages that look like a host and a tag are not taken for one.
        assert_eq!(
            msg(b"[   12.3] usb 1-1: new high-speed USB device number 2"),
            console("usb 1-1: new high-speed USB device number 2")
        );
        assert_eq!(context(b"BUG: soft lockup"), Context::None);
        assert_eq!(context(b"Call Trace:"), Context::None);
        assert_eq!(
            context(b"kthread starved for 10500 jiffies!"),
            Context::None
        );
        assert_eq!(context(b"[drm] Initialized"), Context::None);
    }

    #[test]
    fn wrapped_tails() {
        let prev = b"Jan  3 12:34:56 myhost kernel: [ 5801.391239] traps: gnome-shell[1566]";
        assert!(is_wrapped_tail(
            prev,
            b"general protection fault ip:7f8a1c7a4f1d sp:7ffd6e8b3a10 error:0 in"
        ));
        assert!(is_wrapped_tail(
            b"[ 5801.391239] traps: gnome-shell[1566]",
            b"general protection fault ip:7f8a1c7a4f1d sp:7ffd6e8b3a10 error:0"
        ));
        let prev = b"[  246.100211] INFO: task kworker/u16:3:1234 blocked for more than 120";
        assert!(is_wrapped_tail(prev, b"seconds."));
        // A short kernel line followed by user-space output is no wrap.
        assert!(!is_wrapped_tail(
            b"[   12.1] random: crng init done",
            b"Starting sshd"
        ));
        // Nor is a line with its own prefix, an indented one, or one after a long line.
        assert!(!is_wrapped_tail(prev, b"[  246.1] seconds."));
        assert!(!is_wrapped_tail(prev, b"  seconds."));
        assert!(!is_wrapped_tail(&[b'x'; 150], b"seconds."));
        assert!(!is_wrapped_tail(prev, b"[   44.379966][    C4] "));
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
