//! Where a finding ends: its last console line and the byte just past it.
//!
//! A report's first line is found by its header; its end is not marked (only
//! WARN/BUG print `---[ end trace ]---`, and registers may follow even that).
//! A [`Span`] follows the lines after the first: a line that looks like part of
//! a kernel report (indented stack frames, `<TASK>`/`</IRQ>` markers, register
//! dumps, `Call Trace:`, `CPU: … PID:`, `---[ end …`, KASAN's shadow dump, …)
//! moves the end to it; lines of another caller context are skipped (they belong
//! to another report); more than [`GAP`] other lines in a row, or the first line
//! of another finding, end the span. So a soft lockup ends with its stack, a
//! WARNING with `---[ end trace`, an oops with its registers, a CSD report with
//! the state/re-send lines and the stack dump that follow it.
//!
//! Lines are fed whole, in console order, with their console byte offsets, so
//! the result does not depend on how the console was cut into chunks.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Anchored, Input, StartKind};

use crate::prefix::{self, Context};

/// Lines in a row that are no report lines before a span ends.
pub const GAP: u32 = 8;

/// The end of one finding, followed line by line.
#[derive(Clone, Debug)]
pub(crate) struct Span {
    /// Context of the first line: lines of another caller context are skipped.
    ctx: Context,
    /// Console line number of the next line fed.
    pub(crate) next_line: u64,
    /// Last line that belongs to the finding so far.
    pub(crate) last_line: u64,
    /// Byte just past that line (its newline included).
    pub(crate) end_byte: u64,
    /// `(last_line, end_byte)` before the last line that moved them.
    before: (u64, u64),
    /// Other lines since the last one that belongs.
    gap: u32,
    /// No later line can belong any more.
    pub(crate) ended: bool,
}

impl Span {
    /// A span whose first line (console line `line`) ends at byte `end_byte`.
    pub(crate) fn new(ctx: Context, line: u64, end_byte: u64) -> Span {
        Span {
            ctx,
            next_line: line + 1,
            last_line: line,
            end_byte,
            before: (line, end_byte),
            gap: 0,
            ended: false,
        }
    }

    /// Feeds newline-terminated lines `seg` starting at console byte `base`;
    /// no line ends past `limit` (a newline the analyzer added to a cut line is
    /// not in the console). Returns the number of lines.
    pub(crate) fn push(&mut self, seg: &[u8], base: u64, limit: u64) -> usize {
        let mut n = 0;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', seg) {
            if self.ended {
                return n + memchr::memchr_iter(b'\n', &seg[start..]).count();
            }
            let end = (base + nl as u64 + 1).min(limit);
            self.line(&seg[start..nl], end);
            n += 1;
            start = nl + 1;
        }
        n
    }

    /// One line (without its newline) ending at console byte `end`.
    fn line(&mut self, raw: &[u8], end: u64) {
        let line_no = self.next_line;
        self.next_line += 1;
        if self.ended {
            return;
        }
        let (ctx, msg) = split_prefix(raw);
        if ctx != self.ctx && (ctx.is_caller() || self.ctx.is_caller()) {
            return;
        }
        if ctx != Context::Other && continues_report(msg) {
            self.extend(line_no, end);
        } else {
            self.gap += 1;
            if self.gap > GAP {
                self.ended = true;
            }
        }
    }

    /// Line `line_no`, ending at `end`, belongs to the finding.
    pub(crate) fn extend(&mut self, line_no: u64, end: u64) {
        if !self.ended && line_no >= self.last_line {
            if line_no > self.last_line {
                self.before = (self.last_line, self.end_byte);
            }
            self.last_line = line_no;
            self.end_byte = end;
            self.gap = 0;
        }
    }

    /// Ends the span before line `line_no` (the first line of another finding,
    /// which may have been fed already).
    pub(crate) fn end_before(&mut self, line_no: u64) {
        if self.last_line >= line_no {
            (self.last_line, self.end_byte) = self.before;
        }
        self.ended = true;
    }

    /// Whether a line of context `ctx` that starts another finding ends this one.
    pub(crate) fn ended_by(&self, ctx: &Context) -> bool {
        !(self.ctx.is_caller() && ctx.is_caller() && *ctx != self.ctx)
    }
}

/// The end of a crash report, found while its captured lines are turned into
/// the report's text (see [`crate::report::report_text_end`]): the same rules as
/// [`Span`], on lines whose prefix is parsed already.
pub(crate) struct End<'a> {
    raw: &'a [u8],
    /// Index of the last line that belongs, and the offset just past it.
    last: (usize, usize),
    gap: u32,
    stopped: bool,
}

impl<'a> End<'a> {
    /// Ends after the first line of `raw` until a later line belongs.
    pub(crate) fn new(raw: &'a [u8]) -> End<'a> {
        let first = memchr::memchr(b'\n', raw).map_or(raw.len(), |p| p + 1);
        End {
            raw,
            last: (0, first),
            gap: 0,
            stopped: false,
        }
    }

    /// No later line belongs (another finding starts).
    pub(crate) fn stop(&mut self) {
        self.stopped = true;
    }

    fn end_of(&self, line: &[u8]) -> usize {
        let at = (line.as_ptr() as usize).saturating_sub(self.raw.as_ptr() as usize);
        (at + line.len() + 1).min(self.raw.len())
    }

    fn extend(&mut self, idx: usize, line: &[u8]) {
        self.last = (idx, self.end_of(line));
        self.gap = 0;
    }

    /// Line `idx` (a slice of `raw`, without its newline) of context `lctx`,
    /// `msg` its message; the report's first line has context `ctx`.
    pub(crate) fn line(
        &mut self,
        idx: usize,
        line: &[u8],
        ctx: &Context,
        lctx: &Context,
        msg: &[u8],
        questionable: bool,
    ) {
        if self.stopped || (lctx != ctx && (lctx.is_caller() || ctx.is_caller())) {
            return;
        }
        if *lctx != Context::Other && (questionable || continues_report(msg)) {
            self.extend(idx, line);
        } else {
            self.gap += 1;
            self.stopped = self.gap > GAP;
        }
    }

    /// Line `idx` is the wrapped tail of the line before: it belongs when that
    /// one does.
    pub(crate) fn wrapped_tail(&mut self, idx: usize, line: &[u8]) {
        if !self.stopped && self.last.0 + 1 == idx {
            self.extend(idx, line);
        }
    }

    /// Index of the last line that belongs and the offset just past it.
    pub(crate) fn last(&self) -> (usize, usize) {
        self.last
    }
}

/// Starts of report lines that are no frames or registers.
const REPORT_LINES: &[&[u8]] = &[
    b"Code:",
    b"Modules linked in",
    b"CPU: ",
    b"Hardware name",
    b"Workqueue:",
    b"Call Trace",
    b"Call trace",
    b"Kernel panic",
    b"Kernel Offset",
    b"Kernel BUG",
    b"NMI backtrace",
    b"Sending NMI",
    b"task:",
    b"irq event stamp",
    b"hardirqs last",
    b"softirqs last",
    b"Stack:",
    b"Showing all locks",
    b"Showing busy",
    b"The buggy address",
    b"Allocated by",
    b"Freed by",
    b"Last potentially",
    b"Second to last",
    b"Memory state",
    b"Uninit was",
    b"Local variable",
    b"page:",
    b"page dumped",
    b"flags:",
    b"raw:",
    b"head:",
    b"Read of size",
    b"Write of size",
    b"Not tainted",
    b"Tainted:",
    b"Disabling lock debugging",
    b"Dumping ftrace",
    b"Backtrace:",
    b"Exception stack",
    b"Internal error",
    b"Process ",
    b"Mem abort info",
    b"Data abort info",
    b"ESR = ",
    b"pstate:",
    b"pc :",
    b"lr :",
    b"sp :",
    b"rcu: ",
    b"lock(",
    b"other info",
    b"stack backtrace",
    b"the existing dependency",
    b"-> #",
    b"*** DEADLOCK",
    b"Possible unsafe",
    b"possible reason",
    b"no locks held",
    b"INFO: ",
    b"\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\"",
];

/// [`REPORT_LINES`], matched at the start of a message only.
static REPORT_STARTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .start_kind(StartKind::Anchored)
        .kind(Some(AhoCorasickKind::DFA))
        .build(REPORT_LINES)
        .expect("static patterns")
});

static OFFSET: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"+0x"));

static KERNEL: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"kernel"));

/// A line's context and message (its prefix stripped). The common printk time
/// stamp (`[   12.345678] `) is recognised here; anything else goes to
/// [`prefix::parse`].
fn split_prefix(raw: &[u8]) -> (Context, &[u8]) {
    if raw.first() == Some(&b'[') {
        let head = &raw[1..raw.len().min(24)];
        if let Some(close) = memchr::memchr(b']', head)
            && close > 0
            && head[..close].iter().any(u8::is_ascii_digit)
            && head[..close]
                .iter()
                .all(|&b| b.is_ascii_digit() || b == b' ' || b == b'.')
            && head.get(close + 1) == Some(&b' ')
        {
            let rest = &raw[close + 3..];
            // A caller id or another stamp after it, or journalctl's
            // "[ 1.0] host kernel: …", need the whole parser.
            if !rest.starts_with(b"[") && KERNEL.find(&rest[..rest.len().min(96)]).is_none() {
                return (Context::Console, rest);
            }
        }
    }
    let p = prefix::parse(raw);
    (p.ctx, &raw[p.end.min(raw.len())..])
}

/// Does the message part of a console line (its prefix stripped) look like a
/// line of a kernel report?
pub fn continues_report(msg: &[u8]) -> bool {
    let msg = match msg.strip_suffix(b"\r") {
        Some(m) => m,
        None => msg,
    };
    let Some(&first) = msg.first() else {
        return false;
    };
    // Stack frames and continuation lines are indented; `<TASK>`, `</IRQ>`;
    // KASAN's shadow dump (`>ffff…: fb fb`) and its `====` rulers; old kernels'
    // `[<ffffffff81000000>] f+0x1/0x2` frames.
    if matches!(first, b' ' | b'\t' | b'<' | b'>' | b'=' | b'[') {
        return true;
    }
    if msg.starts_with(b"---[ ") || OFFSET.find(msg).is_some() {
        return true;
    }
    if register(msg) {
        return true;
    }
    REPORT_STARTS
        .find(Input::new(msg).anchored(Anchored::Yes))
        .is_some()
}

/// A register dump line: `RIP: 0010:…`, `R10: …`, `FS:  …`, `CR2: …`, `PKRU: …`,
/// arm64's `x29: …` (an upper-case name of at most 5 letters and digits, or `x`
/// and a number, then a colon).
fn register(msg: &[u8]) -> bool {
    let name = msg.iter().take(6).position(|&b| b == b':');
    let Some(n) = name.filter(|&n| n > 0) else {
        return false;
    };
    let name = &msg[..n];
    let upper = name[0].is_ascii_uppercase()
        && name
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let arm = name.len() > 1 && name[0] == b'x' && name[1..].iter().all(u8::is_ascii_digit);
    upper || arm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines() {
        for l in [
            " smp_call_function+0x1/0x2",
            "<TASK>",
            "RIP: 0010:csd_lock_wait+0x2a/0x40",
            "R10: 0000000000000000 R11: ffffc900001d4ff8",
            "FS:  0000000000000000(0000)",
            "PKRU: 55555554",
            "x29: ffff800008003e30 x28: 0000000000000000",
            "---[ end trace 0000000000000000 ]---",
            "CPU: 1 PID: 75 Comm: scftorture_invo Not tainted 6.12.0 #1",
            "==================================================================",
        ] {
            assert!(continues_report(l.as_bytes()), "{l}");
        }
        for l in [
            "",
            "scftorture: --- End of test: SUCCESS",
            "smp: csd: Re-sending CSD lock (#1) IPI from CPU#01 to CPU#06",
            "systemd[1]: Started foo.",
            "random: crng init done",
        ] {
            assert!(!continues_report(l.as_bytes()), "{l}");
        }
    }

    #[test]
    fn the_fast_prefix_agrees_with_the_parser() {
        for l in [
            "[   10.123456] RIP: 0010:f+0x1/0x2",
            "[   10.123456][  T123] RIP: 0010:f+0x1/0x2",
            "[   10.123456] [  C1] x",
            "[  369.812345] host kernel: BUG: x",
            "[  +0.000123] x",
            "[ ] x",
            "[1.0] ",
            "<6>[    1.0] y",
            "plain",
            "[    1.0] the kernel command line",
        ] {
            let p = prefix::parse(l.as_bytes());
            let (ctx, msg) = split_prefix(l.as_bytes());
            assert_eq!((ctx, msg), (p.ctx, &l.as_bytes()[p.end..]), "{l}");
        }
    }

    #[test]
    fn a_span_ends_after_its_stack() {
        let text = "[ 1.0] Call Trace:\n[ 1.0]  <TASK>\n[ 1.0]  f+0x1/0x2\n[ 1.0]  </TASK>\n\
                    [ 2.0] a\n[ 2.0] b\n[ 2.0] c\n[ 2.0] d\n[ 2.0] e\n[ 2.0] f\n[ 2.0] g\n[ 2.0] h\n\
                    [ 2.0] i\n[ 3.0]  g+0x1/0x2\n";
        let mut s = Span::new(Context::Console, 10, 100);
        let n = s.push(text.as_bytes(), 100, u64::MAX);
        assert_eq!(n, 14);
        assert_eq!(s.last_line, 14);
        let fourth = text.match_indices('\n').nth(3).unwrap().0 as u64;
        assert_eq!(s.end_byte, 100 + fourth + 1);
        assert!(s.ended);
    }

    #[test]
    fn other_callers_are_skipped() {
        let mut s = Span::new(Context::Task(5), 1, 10);
        s.push(
            b"[ 1.0][ T6]  f+0x1/0x2\n[ 1.0][ T5]  g+0x1/0x2\n",
            10,
            u64::MAX,
        );
        assert_eq!(s.last_line, 3);
        assert!(s.ended_by(&Context::Console));
        assert!(!s.ended_by(&Context::Task(6)));
    }
}
