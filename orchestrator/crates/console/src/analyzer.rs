//! The streaming analyzer: splits chunks into lines, lets a literal prefilter pick the
//! few lines worth a look, and keeps bounded captures of crash reports until they can
//! be titled.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use crate::csd::{self, CsdEvent, CsdTracker};
use crate::oops::{self, TABLE};
use crate::prefix::{self, Context};
use crate::report::{self, clean_line};
use crate::span::Span;
use crate::{Analysis, Finding, FindingKind, ScfErrors, ScfStats, Verdict, scf, title};

/// Longest line kept whole; longer lines are split (a console cut mid-line, or
/// garbage without newlines, must not grow memory).
const MAX_LINE: usize = 64 * 1024;
/// Findings kept; later ones are only counted (see [`Analysis::finding_counts`]).
pub const MAX_FINDINGS: usize = 1000;
/// Lines kept after a report's first line to title it.
const CAPTURE_LINES: usize = 1000;
/// Bytes kept after a report's first line to title it.
const CAPTURE_BYTES: usize = 256 * 1024;
/// Reports being captured at once.
const MAX_OPEN: usize = 4;

const CSD: &str = "csd: ";
const SCF: &str = "scftorture";
const SCF_ERRORS: &str = " stnmie: ";
const MEM_ORDER: &str = "Memory-ordering failure";
const VM_DISCONNECTED: &str = "serialport: VM disconnected.";
const PANIC_LINE: &[u8] = b"Kernel panic - not syncing";

/// Literals that make a line worth parsing. At most 32 (so the scan uses the fast
/// "slim" Teddy SIMD search); every report header and every other literal the
/// analyzer reacts to contains one of them (checked by a test).
const COARSE: &[&str] = &[
    "BUG:",
    "WARNING:",
    "INFO:",
    "Unable to handle kernel",
    "general protection fault",
    "stack segment: ",
    "panic",
    "PANIC: double fault",
    "ernel BUG",
    "BUG kmalloc-",
    "divide",
    "invalid opcode:",
    "UBSAN:",
    "Booting the kernel.",
    "unregister_netdevice: waiting for",
    "VFS: ",
    "Internal error:",
    "Unhandled fault:",
    "Alignment trap:",
    "fatal error:",
    "SYZFA",
    // "Oops: int3:" is covered by "Oops: ".
    scf::SMPBOOT,
    "LOCKUP",
    "Oops: ",
    "kthread starved for",
    CSD,
    SCF,
    SCF_ERRORS,
    MEM_ORDER,
    VM_DISCONNECTED,
    "vmalloc: allocation failure:",
    "FAULT_",
];

/// The bulk prefilter over [`COARSE`].
static TRIGGERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    // Leftmost semantics let the automaton use a SIMD (Teddy) prefilter.
    AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(COARSE)
        .expect("static patterns")
});

/// Report headers; pattern i is the header of table group i.
static HEADERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(TABLE.iter().map(|g| g.header))
        .expect("static patterns")
});

/// The first table group (in table order) whose header the line contains and whose
/// suppressions it does not match.
fn group_of(line: &[u8]) -> Option<usize> {
    let mut cands: u64 = 0;
    for m in HEADERS.find_iter(line) {
        let p = m.pattern().as_usize();
        if p < 64 {
            cands |= 1 << p;
        }
    }
    while cands != 0 {
        let g = cands.trailing_zeros() as usize;
        cands &= cands - 1;
        if TABLE[g].suppressed_in(line) {
            continue;
        }
        return Some(g);
    }
    None
}

/// Where a line lies in the console: its first byte and the byte just past
/// it (its newline included, when the console has one).
#[derive(Clone, Copy, Debug)]
struct Pos {
    start: u64,
    end: u64,
}

/// A crash report being collected until it can be titled.
struct Capture {
    /// Index into `findings`; `None` while a report that may be no crash (see
    /// [`report::may_be_noise`]) waits for its title to decide.
    finding: Option<usize>,
    /// Console line of the report's first line.
    line: u64,
    /// Table group of the report's first line.
    group: usize,
    /// Context of the first line; other contexts are dropped when titling.
    ctx: Context,
    /// Raw lines, first line included, newline-terminated.
    raw: Vec<u8>,
    /// Lines in `raw`.
    lines: usize,
    /// Console byte offset of the first line.
    start_byte: u64,
    /// Console line where the first line ends (the next one when a mailer
    /// wrapped it), and the byte just past it.
    first_end: (u64, u64),
    /// Offsets in `raw` of newlines the analyzer added (to cut overlong lines).
    synthetic: Vec<usize>,
    /// Console line where another finding starts: the report ends before.
    cut: Option<u64>,
}

impl Capture {
    /// The report's last console line and the byte just past it, from its
    /// last line in `raw` (index, and offset just past it).
    fn end(&self, (idx, raw_end): (usize, usize)) -> (u64, u64) {
        let (tail, first_end) = self.first_end;
        if idx == 0 {
            return (tail, first_end);
        }
        let first_len = memchr::memchr(b'\n', &self.raw).map_or(self.raw.len(), |p| p + 1);
        // Newlines added after the first line (its own is in `first_end`).
        let added = self
            .synthetic
            .iter()
            .filter(|&&o| o >= first_len && o < raw_end)
            .count();
        let bytes = raw_end.saturating_sub(first_len).saturating_sub(added);
        (tail + idx as u64, first_end + bytes as u64)
    }

    /// Room left, in bytes and lines.
    fn full(&self) -> bool {
        self.lines > CAPTURE_LINES || self.raw.len() >= CAPTURE_BYTES
    }

    /// Appends whole lines, up to the limits; `seg` starts at console byte
    /// `base` and no line of it ends past `limit`.
    fn push(&mut self, seg: &[u8], base: u64, limit: u64) {
        if self.full() || seg.is_empty() {
            return;
        }
        let room_bytes = CAPTURE_BYTES - self.raw.len();
        let mut take = seg.len().min(room_bytes);
        let room_lines = CAPTURE_LINES + 1 - self.lines;
        // Cut after the room_lines-th newline.
        if let Some(p) = memchr::memchr_iter(b'\n', &seg[..take]).nth(room_lines.saturating_sub(1))
        {
            take = take.min(p + 1);
        }
        let part = &seg[..take];
        self.lines += memchr::memchr_iter(b'\n', part).count();
        if take == seg.len() && base + seg.len() as u64 > limit {
            // The newline ending `seg` is not in the console.
            self.synthetic.push(self.raw.len() + take - 1);
        }
        self.raw.extend_from_slice(part);
        if take < seg.len() {
            // Mark full.
            self.lines = CAPTURE_LINES + 1;
        }
    }
}

/// Streaming analyzer: feed bytes, then [`Analyzer::finish`].
pub struct Analyzer {
    lines: u64,
    partial: Vec<u8>,
    findings: Vec<Finding>,
    counts: BTreeMap<FindingKind, u64>,
    dropped: u64,
    open: Vec<Capture>,
    csd: CsdTracker,
    scf: ScfStats,
    scf_bang_reported: bool,
    panicked: bool,
    vm_disconnected: bool,
    /// The last line seen (at most [`LAST_LINE`] bytes), for wrapped lines.
    last_line: Vec<u8>,
    /// Lock id of each CSD finding, in the order of those findings.
    csd_finding_ids: Vec<u64>,
    /// Console byte offset of the next line to process (bytes the analyzer
    /// adds, the newline of a cut line, are not counted).
    pos: u64,
    /// Console byte offset of the last line seen (see `last_line`).
    last_line_start: u64,
    /// The CSD report being followed to its end: its finding, lock id and span.
    csd_span: Option<(usize, u64, Span)>,
}

/// Bytes kept of the last line; longer lines are never wrapped ones.
const LAST_LINE: usize = 256;

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// A fresh analyzer.
    pub fn new() -> Self {
        Analyzer {
            lines: 0,
            partial: Vec::new(),
            findings: Vec::new(),
            counts: BTreeMap::new(),
            dropped: 0,
            open: Vec::new(),
            csd: CsdTracker::default(),
            scf: ScfStats::default(),
            scf_bang_reported: false,
            panicked: false,
            vm_disconnected: false,
            last_line: Vec::new(),
            csd_finding_ids: Vec::new(),
            pos: 0,
            last_line_start: 0,
            csd_span: None,
        }
    }

    /// Feeds a chunk of console bytes; chunks may split lines anywhere.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        if !self.partial.is_empty() {
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.push_partial(rest);
                    return;
                }
                Some(p) => {
                    self.push_partial(&rest[..p + 1]);
                    rest = &rest[p + 1..];
                }
            }
        }
        match memchr::memrchr(b'\n', rest) {
            None => self.push_partial(rest),
            Some(p) => {
                self.block(&rest[..p + 1]);
                self.push_partial(&rest[p + 1..]);
            }
        }
    }

    /// Adds to the incomplete last line; a completed (or overlong) line is processed.
    fn push_partial(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.partial.len();
            let take = bytes.len().min(room);
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            let complete = self.partial.last() == Some(&b'\n');
            if complete || self.partial.len() >= MAX_LINE {
                let mut line = std::mem::take(&mut self.partial);
                if !complete {
                    line.push(b'\n');
                }
                // Already at most MAX_LINE bytes of content.
                self.lines_block(&line, !complete);
                self.partial = line;
                self.partial.clear();
            }
        }
    }

    /// Processes newline-terminated lines; lines of [`MAX_LINE`] bytes or more are
    /// split exactly as they are when they arrive in pieces.
    fn block(&mut self, block: &[u8]) {
        if block.len() <= MAX_LINE || !may_have_long_line(block) {
            return self.lines_block(block, false);
        }
        let mut start = 0; // first byte not yet processed
        let mut line_start = 0;
        for nl in memchr::memchr_iter(b'\n', block) {
            if nl - line_start >= MAX_LINE {
                self.lines_block(&block[start..line_start], false);
                let mut content = &block[line_start..nl];
                let mut piece = Vec::with_capacity(MAX_LINE + 1);
                loop {
                    let take = content.len().min(MAX_LINE);
                    piece.clear();
                    piece.extend_from_slice(&content[..take]);
                    piece.push(b'\n');
                    // The last piece's newline is the line's own.
                    self.lines_block(&piece, take == MAX_LINE);
                    content = &content[take..];
                    if take < MAX_LINE {
                        break;
                    }
                }
                start = nl + 1;
            }
            line_start = nl + 1;
        }
        self.lines_block(&block[start..], false);
    }

    /// Processes newline-terminated lines of normal length; `synthetic`: the
    /// block is one line whose newline the analyzer added (not in the console).
    fn lines_block(&mut self, block: &[u8], synthetic: bool) {
        let base = self.pos;
        // Console bytes of the block.
        let limit = base + block.len() as u64 - u64::from(synthetic && !block.is_empty());
        let mut seg = 0;
        while seg < block.len() {
            let Some(m) = TRIGGERS.find(&block[seg..]) else {
                break;
            };
            let at = seg + m.start();
            let ls = memchr::memrchr(b'\n', &block[seg..at])
                .map(|p| seg + p + 1)
                .unwrap_or(seg);
            let le = memchr::memchr(b'\n', &block[at..])
                .map(|p| at + p + 1)
                .unwrap_or(block.len());
            self.plain(&block[seg..ls], base + seg as u64, limit);
            let at = Pos {
                start: base + ls as u64,
                end: (base + le as u64).min(limit),
            };
            if ls > 0 {
                let ps = memchr::memrchr(b'\n', &block[..ls - 1])
                    .map(|p| p + 1)
                    .unwrap_or(0);
                let prev = &block[ps..ls - 1];
                let prev_start = base + ps as u64;
                self.interesting(
                    &block[ls..le],
                    at,
                    &prev[..prev.len().min(LAST_LINE)],
                    prev_start,
                );
            } else {
                let prev = std::mem::take(&mut self.last_line);
                self.interesting(&block[ls..le], at, &prev, self.last_line_start);
                self.last_line = prev;
            }
            seg = le;
        }
        self.plain(&block[seg..], base + seg as u64, limit);
        // Remember the last line for the next block.
        let body = block.strip_suffix(b"\n").unwrap_or(block);
        if !block.is_empty() {
            let ls = memchr::memrchr(b'\n', body).map(|p| p + 1).unwrap_or(0);
            let last = &body[ls..];
            self.last_line.clear();
            self.last_line
                .extend_from_slice(&last[..last.len().min(LAST_LINE)]);
            self.last_line_start = base + ls as u64;
        }
        self.pos = limit;
    }

    /// Lines without any trigger: counted, and kept by open captures; `seg`
    /// starts at console byte `base`, no line of it ends past `limit`.
    fn plain(&mut self, seg: &[u8], base: u64, limit: u64) {
        if seg.is_empty() {
            return;
        }
        self.lines += count_newlines(seg);
        for c in &mut self.open {
            c.push(seg, base, limit);
        }
        self.follow_csd(seg, base, limit);
        self.close_full();
    }

    /// Feeds lines to the CSD report being followed; an ended one is done.
    fn follow_csd(&mut self, seg: &[u8], base: u64, limit: u64) {
        if let Some((_, _, s)) = &mut self.csd_span {
            s.push(seg, base, limit);
            if s.ended {
                self.end_csd_span(None);
            }
        }
    }

    /// Stops following the CSD report (before line `before`, when given) and
    /// records where it ends.
    fn end_csd_span(&mut self, before: Option<u64>) {
        if let Some((i, _, mut s)) = self.csd_span.take()
            && let Some(f) = self.findings.get_mut(i)
        {
            if let Some(l) = before {
                s.end_before(l);
            }
            f.last_line = s.last_line;
            f.end_byte = s.end_byte;
        }
    }

    /// Line `line_no` of context `ctx` starts another finding: the reports
    /// followed so far end before it.
    fn end_spans(&mut self, ctx: &Context, line_no: u64) {
        for c in &mut self.open {
            if c.cut.is_none() && !(c.ctx.is_caller() && ctx.is_caller() && *ctx != c.ctx) {
                c.cut = Some(line_no);
            }
        }
        if self
            .csd_span
            .as_ref()
            .is_some_and(|(_, _, s)| s.ended_by(ctx))
        {
            self.end_csd_span(Some(line_no));
        }
    }

    fn close_full(&mut self) {
        let mut i = 0;
        while i < self.open.len() {
            if self.open[i].full() {
                let c = self.open.remove(i);
                self.title(c);
            } else {
                i += 1;
            }
        }
    }

    /// A line with a trigger literal, at console bytes `at`; `prev` is the
    /// line before it, starting at console byte `prev_start`.
    fn interesting(&mut self, raw: &[u8], at: Pos, prev: &[u8], prev_start: u64) {
        self.lines += 1;
        let line_no = self.lines;
        let body = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = clean_line(body);
        let line: &[u8] = &line;
        // A mailer's wrap: the line is the tail of the previous one.
        let prev = clean_line(prev);
        let joined: Option<Vec<u8>> = prefix::is_wrapped_tail(&prev, line).then(|| {
            let mut j = prev.to_vec();
            j.push(b' ');
            j.extend_from_slice(line);
            j
        });

        let group = match group_of(line) {
            Some(g) if joined.as_deref().is_some_and(|j| TABLE[g].suppressed_in(j)) => None,
            g => g,
        };
        let second_report = match group {
            Some(_) => !oops::is_report_start_ignore(line),
            None => oops::INFO_WITH_STACK
                .iter()
                .any(|p| crate::find::find(line, p.as_bytes()).is_some()),
        };
        if second_report {
            // Without caller ids a new report ends the previous ones.
            let mut i = 0;
            while i < self.open.len() {
                if !self.open[i].ctx.is_caller() {
                    let c = self.open.remove(i);
                    self.title(c);
                } else {
                    i += 1;
                }
            }
        }
        // The closing "---[ end Kernel panic - not syncing: ... ]---" repeats the panic.
        let group = group.filter(|_| crate::find::find(line, b"---[ end ").is_none());
        if group.is_some() {
            // A wrapped first line starts on the line before.
            let first = line_no - u64::from(joined.is_some());
            self.end_spans(&prefix::context(line), first);
        }
        for c in &mut self.open {
            c.push(raw, at.start, at.end);
        }
        self.follow_csd(raw, at.start, at.end);
        self.close_full();
        if let Some(g) = group {
            match &joined {
                // The report starts on the previous line, of which this is the tail.
                Some(j) => {
                    let mut r = j.clone();
                    r.push(b'\n');
                    let first = Pos {
                        start: prev_start,
                        end: at.end,
                    };
                    self.report_start(g, j, &r, (line_no - 1, line_no), first);
                }
                None => self.report_start(g, line, raw, (line_no, line_no), at),
            }
        }
        if crate::find::find(line, PANIC_LINE).is_some() {
            self.panicked = true;
        }
        let text = String::from_utf8_lossy(line);
        let at_line = at;
        let mut lctx: Option<Context> = None;
        // Glued lines may carry several CSD messages.
        let mut from = 0;
        while let Some(p) = text[from..].find(CSD) {
            let at = from + p;
            let end = text[at + CSD.len()..]
                .find(CSD)
                .map(|q| at + CSD.len() + q)
                .unwrap_or(text.len());
            let ctx = lctx.get_or_insert_with(|| prefix::context(line));
            self.csd_line(&text[at..end], line_no, at_line, ctx);
            from = end;
        }
        if text.contains(SCF) || text.contains(SCF_ERRORS) {
            self.scf_line(&text, line_no, at_line);
        }
        if text.contains(scf::SMPBOOT) {
            match scf::cpu_event(&text) {
                Some(scf::CpuEvent::Offline(_)) => self.scf.cpus_offlined += 1,
                Some(scf::CpuEvent::Online(_)) => self.scf.cpus_onlined += 1,
                None => {}
            }
        }
        if text.contains(MEM_ORDER) {
            self.scf.memory_ordering_failures += 1;
            let what = text
                .find(MEM_ORDER)
                .map(|p| text[..p].trim_end().trim_end_matches(':'))
                .and_then(|s| s.rsplit([' ', ']']).next())
                .filter(|s| !s.is_empty())
                .map(|f| format!("scftorture: Memory-ordering failure in {f}"))
                .unwrap_or_else(|| "scftorture: Memory-ordering failure".into());
            self.end_spans(&prefix::context(line), line_no);
            self.add(
                FindingKind::MemoryOrdering,
                || title::normalize(&what),
                line_no,
                at_line,
                None,
                None,
            );
        }
        if text.contains(VM_DISCONNECTED) {
            self.vm_disconnected = true;
        }
    }

    /// Records a finding starting on line `line`, at console bytes `at` (its
    /// first line; a span may move its end later); returns its index when kept.
    fn add(
        &mut self,
        kind: FindingKind,
        title: impl FnOnce() -> String,
        line: u64,
        at: Pos,
        cpu: Option<u32>,
        task: Option<String>,
    ) -> Option<usize> {
        *self.counts.entry(kind).or_default() += 1;
        if self.findings.len() >= MAX_FINDINGS {
            self.dropped += 1;
            return None;
        }
        self.findings.push(Finding {
            kind,
            title: title(),
            line,
            last_line: line,
            start_byte: at.start,
            end_byte: at.end,
            cpu,
            task,
            corrupted: false,
            crash_report: false,
        });
        Some(self.findings.len() - 1)
    }

    /// A report of table group `group` starts on lines `lines` (first, last:
    /// two lines when a mailer wrapped it), at console bytes `at`.
    fn report_start(
        &mut self,
        group: usize,
        line: &[u8],
        raw: &[u8],
        (line_no, tail): (u64, u64),
        at: Pos,
    ) {
        let g = &TABLE[group];
        let finding = if report::may_be_noise(group, line) {
            // Added when titled, if it is a crash after all.
            None
        } else {
            let provisional = || {
                let text = String::from_utf8_lossy(line);
                text.find(g.header)
                    .map(|p| title::normalize(&text[p..]))
                    .unwrap_or_else(|| title::normalize(&text))
            };
            let Some(idx) = self.add(g.kind, provisional, line_no, at, None, None) else {
                return;
            };
            self.findings[idx].crash_report = true;
            Some(idx)
        };
        if self.open.len() >= MAX_OPEN {
            let c = self.open.remove(0);
            self.title(c);
        }
        let mut c = Capture {
            finding,
            line: line_no,
            group,
            ctx: prefix::context(line),
            raw: Vec::with_capacity(4096),
            lines: 0,
            start_byte: at.start,
            first_end: (tail, at.end),
            synthetic: Vec::new(),
            cut: None,
        };
        c.push(raw, at.start, at.end);
        self.open.push(c);
    }

    /// Adds the finding of a capture that waited for its title, in console order;
    /// `end`: its last line and the byte just past it.
    fn insert_finding(
        &mut self,
        c: &Capture,
        t: &report::Titled,
        end: (u64, u64),
    ) -> Option<usize> {
        *self.counts.entry(t.kind).or_default() += 1;
        if self.findings.len() >= MAX_FINDINGS {
            self.dropped += 1;
            return None;
        }
        let at = self.findings.partition_point(|f| f.line <= c.line);
        for o in &mut self.open {
            if let Some(i) = o.finding.as_mut()
                && *i >= at
            {
                *i += 1;
            }
        }
        if let Some((i, _, _)) = &mut self.csd_span
            && *i >= at
        {
            *i += 1;
        }
        self.findings.insert(
            at,
            Finding {
                kind: t.kind,
                title: String::new(),
                line: c.line,
                last_line: end.0,
                start_byte: c.start_byte,
                end_byte: end.1,
                cpu: None,
                task: None,
                corrupted: false,
                crash_report: true,
            },
        );
        Some(at)
    }

    /// Titles a closed capture and updates its finding.
    fn title(&mut self, c: Capture) {
        // Lines of the capture from the one where another finding starts.
        let cut = c.cut.map_or(usize::MAX, |l| {
            usize::try_from(l.saturating_sub(c.first_end.0)).unwrap_or(usize::MAX)
        });
        let (text, first_wrapped, last) = report::report_text_end(&c.raw, &c.ctx, cut);
        let end = c.end(last);
        let t = report::describe(c.group, &text);
        // A wrapped line's fragment that shows no evidence of a crash is none.
        let crash = t.evidence || !first_wrapped;
        let idx = match c.finding {
            Some(i) => i,
            None if !crash => return,
            None => match self.insert_finding(&c, &t, end) {
                Some(i) => i,
                None => return,
            },
        };
        let (cpu, task) = crate::who::cpu_and_task(&text);
        let f = &mut self.findings[idx];
        if f.kind != t.kind {
            if let Some(n) = self.counts.get_mut(&f.kind) {
                *n = n.saturating_sub(1);
            }
            *self.counts.entry(t.kind).or_default() += 1;
        }
        f.kind = t.kind;
        f.title = t.title;
        (f.last_line, f.end_byte) = end;
        f.corrupted = t.corrupted;
        f.cpu = cpu;
        f.task = task;
    }

    /// A CSD message on line `line_no` (console bytes `at`, context `ctx`).
    fn csd_line(&mut self, text: &str, line_no: u64, at: Pos, ctx: &Context) {
        let Some(ev) = csd::parse(text) else { return };
        let waiting = matches!(ev, CsdEvent::Waiting { .. });
        let id = match &ev {
            CsdEvent::Waiting { id, .. }
            | CsdEvent::State { id, .. }
            | CsdEvent::Resent { id }
            | CsdEvent::Unstuck { id } => *id,
        };
        let new = self.csd.record(ev);
        // The report followed so far goes on with messages about its lock and
        // ends with one about another.
        match &mut self.csd_span {
            Some((_, sid, s)) if *sid == id => s.extend(line_no, at.end),
            Some(_) => self.end_csd_span(Some(line_no)),
            None => {}
        }
        if new && waiting {
            self.end_spans(ctx, line_no);
            let (cpu, func) = match self.csd.get(id) {
                Some(g) => (g.waiter_cpu, g.func.clone()),
                None => (None, None),
            };
            let title = match func {
                Some(f) => format!("csd: non-responsive CSD lock in {f}"),
                None => "csd: non-responsive CSD lock".to_string(),
            };
            if self
                .add(
                    FindingKind::CsdLock,
                    || title::normalize(&title),
                    line_no,
                    at,
                    cpu,
                    None,
                )
                .is_some()
            {
                self.csd_finding_ids.push(id);
                let i = self.findings.len() - 1;
                self.csd_span = Some((i, id, Span::new(ctx.clone(), line_no, at.end)));
            }
        }
    }

    /// Final CSD titles, now that every message is in: each lock's function as any
    /// message printed it whole, and for the first CSD finding (the CSD report's
    /// title) the function most locks wait on.
    fn retitle_csd(&mut self, groups: &[crate::CsdGroup]) {
        let main = csd::title_func(groups);
        let mut ids = self.csd_finding_ids.iter();
        let mut first = true;
        for f in self
            .findings
            .iter_mut()
            .filter(|f| f.kind == FindingKind::CsdLock)
        {
            let Some(id) = ids.next() else { break };
            let func = if first {
                main.clone()
            } else {
                groups
                    .iter()
                    .find(|g| g.id == *id)
                    .and_then(|g| g.func.clone())
            };
            first = false;
            if let Some(func) = func {
                f.title = title::normalize(&format!("csd: non-responsive CSD lock in {func}"));
            }
        }
    }

    /// A scftorture line on line `line_no`, at console bytes `at`.
    fn scf_line(&mut self, text: &str, line_no: u64, at: Pos) {
        let l = scf::parse(text);
        if l.start {
            self.scf.started = true;
        }
        if let Some(n) = l.invocations {
            self.scf.invocations = Some(n);
            self.scf.stats_lines += 1;
        }
        if let Some(o) = l.onoff {
            self.scf.onoff = Some(o);
        }
        if let Some([ste, stnmie, stnmoe, staf]) = l.errors {
            self.scf.errors = ScfErrors {
                ste,
                stnmie,
                stnmoe,
                staf,
            };
        }
        if l.bang && !self.scf_bang_reported {
            self.scf_bang_reported = true;
            self.add(
                FindingKind::ScftortureFailure,
                || "scftorture: error counters (!!!)".into(),
                line_no,
                at,
                None,
                None,
            );
        }
        if let Some(r) = l.end {
            if r == "FAILURE" {
                self.add(
                    FindingKind::ScftortureFailure,
                    || "scftorture: End of test: FAILURE".into(),
                    line_no,
                    at,
                    None,
                    None,
                );
            }
            self.scf.result = Some(r);
        }
    }

    /// Findings so far (the run pipeline polls this to stop a doomed guest early).
    /// Titles of reports still being collected are provisional (their first line).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// True once the console shows a kernel panic.
    pub fn panicked(&self) -> bool {
        self.panicked
    }

    /// True once scftorture printed its End-of-test line.
    pub fn workload_finished(&self) -> bool {
        self.scf.result.is_some()
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// CSD groups so far.
    pub fn csd_groups(&self) -> Vec<crate::CsdGroup> {
        self.csd.finish()
    }

    /// Ends the stream and returns the analysis.
    pub fn finish(mut self) -> Analysis {
        if !self.partial.is_empty() {
            let mut line = std::mem::take(&mut self.partial);
            line.push(b'\n');
            // Shorter than MAX_LINE; its newline is not in the console.
            self.lines_block(&line, true);
        }
        for c in std::mem::take(&mut self.open) {
            self.title(c);
        }
        self.end_csd_span(None);
        let csd = self.csd.finish();
        self.retitle_csd(&csd);
        let failed = self.scf.result.as_deref() == Some("FAILURE");
        let verdict = if !self.findings.is_empty() || self.dropped > 0 || failed {
            Verdict::Crash
        } else if self.scf.result.is_some() {
            Verdict::Clean
        } else {
            Verdict::Incomplete
        };
        let primary = self
            .findings
            .iter()
            .find(|f| f.crash_report)
            .or_else(|| self.findings.first());
        Analysis {
            verdict,
            title: primary.map(|f| f.title.clone()),
            corrupted: primary.is_some_and(|f| f.corrupted)
                || (primary.is_some() && self.vm_disconnected),
            panicked: self.panicked,
            csd,
            scftorture: self.scf,
            lines: self.lines,
            finding_counts: self.counts,
            dropped_findings: self.dropped,
            findings: self.findings,
        }
    }
}

/// False when every line of `block` is shorter than [`MAX_LINE`]: a run of
/// `MAX_LINE` bytes without a newline covers a whole aligned window of half that
/// size, so it suffices that each such window holds a newline.
fn may_have_long_line(block: &[u8]) -> bool {
    block
        .chunks_exact(MAX_LINE / 2)
        .any(|w| memchr::memchr(b'\n', w).is_none())
}

/// Counts newlines (memchr's counting routine is vectorized).
fn count_newlines(s: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', s).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_literals_cover_everything_the_analyzer_reacts_to() {
        assert!(COARSE.len() <= 32);
        assert!(TABLE.len() <= 64);
        let mut all: Vec<&str> = TABLE.iter().map(|g| g.header).collect();
        all.extend(oops::INFO_WITH_STACK);
        all.extend([
            CSD,
            SCF,
            SCF_ERRORS,
            MEM_ORDER,
            VM_DISCONNECTED,
            scf::SMPBOOT,
        ]);
        for lit in all {
            assert!(
                COARSE.iter().any(|c| lit.contains(c)),
                "{lit:?} is not covered by the prefilter"
            );
        }
    }

    #[test]
    fn newline_counting() {
        assert_eq!(count_newlines(b"a\nb\n\n"), 3);
        assert!(!may_have_long_line(&vec![b'\n'; MAX_LINE * 3]));
        let mut v = vec![b'x'; MAX_LINE * 3];
        v.push(b'\n');
        assert!(may_have_long_line(&v));
    }
}
