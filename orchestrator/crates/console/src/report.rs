//! Turning the captured lines of one crash report into a title.
//!
//! The captured lines are filtered to the report's own context (caller id), then the
//! report's group formats are tried: the earliest title match wins, its arguments
//! come from capture groups and from the guilty stack frame.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::{Captures, Regex, RegexSet};

use crate::FindingKind;
use crate::oops::{Format, Group, Part, StackFmt, TABLE};
use crate::prefix::{self, Context};
use crate::stack::{self, Extractor, GENERIC_SKIP};
use crate::title;

/// The title of one report.
#[derive(Clone, Debug, PartialEq)]
pub struct Titled {
    /// Normalized title.
    pub title: String,
    /// The report is truncated or garbled.
    pub corrupted: bool,
    /// Why it is judged corrupted.
    pub corrupted_reason: Option<&'static str>,
    /// Kind of the finding, from the format that titled it.
    pub kind: FindingKind,
    /// False when the report shows none of its group's evidence of a crash (see
    /// [`crate::oops::Group::evidence`]).
    pub evidence: bool,
}

/// Removes what a serial console adds around kernel text: trailing CR, NUL bytes
/// and ANSI escape sequences.
pub fn clean_line(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut raw = raw;
    while let Some(r) = raw.strip_suffix(b"\r") {
        raw = r;
    }
    if memchr::memchr2(0, 0x1b, raw).is_none() {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            0 => i += 1,
            0x1b => {
                i += 1;
                if raw.get(i) == Some(&b'[') {
                    // CSI: parameters and intermediates up to a final byte 0x40..=0x7e.
                    i += 1;
                    while i < raw.len() && !(0x40..=0x7e).contains(&raw[i]) {
                        i += 1;
                    }
                    i += 1;
                } else {
                    i += 1;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Builds the report text from captured raw lines (the first is the report's own
/// line): prefixes stripped, other contexts and unreliable frames dropped, lines a
/// mailer wrapped joined again.
pub fn report_text(raw: &[u8], ctx: &Context) -> String {
    report_text_wrapped(raw, ctx).0
}

/// [`report_text`], and whether the report's first line was wrapped (a fragment).
pub fn report_text_wrapped(raw: &[u8], ctx: &Context) -> (String, bool) {
    let (text, wrapped, _) = report_text_end(raw, ctx, usize::MAX);
    (text, wrapped)
}

/// [`report_text_wrapped`], and where the report ends in `raw`: the index of its
/// last line and the offset just past that line (see [`crate::span`] for what
/// belongs to a report). Lines from index `cut` on (where another finding
/// starts) never do.
pub fn report_text_end(raw: &[u8], ctx: &Context, cut: usize) -> (String, bool, (usize, usize)) {
    let mut end = crate::span::End::new(raw);
    let mut first_wrapped = false;
    let mut text = String::with_capacity(raw.len().min(1 << 16));
    let mut lines = raw.split(|&b| b == b'\n');
    let mut text_lines = 0usize;
    let mut skip_text = false;
    let mut cpu_traceback = false;
    let mut min_lines = 22;
    let mut first = true;
    // The previous raw line, when its text was kept (a wrapped tail joins it).
    let mut prev: Option<Vec<u8>> = None;
    for (idx, raw_line) in (&mut lines).enumerate() {
        let line = clean_line(raw_line);
        if idx >= cut {
            end.stop();
        }
        if !first
            && let Some(p) = &prev
            && prefix::is_wrapped_tail(p, &line)
        {
            end.wrapped_tail(idx, raw_line);
            first_wrapped |= !text[..text.len() - 1].contains('\n');
            text.pop();
            text.push(' ');
            text.push_str(&String::from_utf8_lossy(&line));
            text.push('\n');
            prev = None;
            continue;
        }
        prev = None;
        let lctx = if first {
            ctx.clone()
        } else {
            prefix::context(&line)
        };
        let (stripped, questionable) = prefix::strip(&line, &lctx);
        if idx > 0 {
            end.line(idx, raw_line, ctx, &lctx, stripped, questionable);
        }
        if first {
            if crate::find::find(&line, b"BUG: KMSAN:").is_some() {
                min_lines = 16;
            }
        } else if questionable
            || (lctx != *ctx && !(cpu_traceback && matches!(lctx, Context::Cpu(_))))
        {
            continue;
        }
        text_lines += 1;
        let mut skip_line = skip_text;
        if crate::find::find(&line, b"Disabling lock debugging due to kernel taint").is_some() {
            skip_line = true;
        } else if crate::find::find(&line, b"Sending NMI from CPU").is_some() {
            cpu_traceback = true;
        } else if text_lines > min_lines
            && (crate::find::find(&line, b"Kernel panic - not syncing").is_some()
                || crate::find::find(
                    &line,
                    b"WARNING: possible circular locking dependency detected",
                )
                .is_some())
        {
            skip_text = true;
            skip_line = true;
        }
        if !first && skip_line {
            continue;
        }
        first = false;
        text.push_str(&String::from_utf8_lossy(stripped));
        text.push('\n');
        prev = Some(line.into_owned());
    }
    (text, first_wrapped, end.last())
}

/// Per-group set of single-line title patterns, to find candidates in one pass.
static TITLE_SETS: LazyLock<Vec<RegexSet>> = LazyLock::new(|| {
    TABLE
        .iter()
        .map(|g| {
            RegexSet::new(g.formats.iter().map(|f| f.title.as_str())).expect("built-in patterns")
        })
        .collect()
});

/// Titles the report in `text` (see [`report_text`]) of table group `group`.
pub fn describe(group: usize, text: &str) -> Titled {
    let g: &Group = &TABLE[group];
    let first_end = text.find('\n').unwrap_or(text.len());
    let first_line = &text[..first_end];
    let in_first: Vec<usize> = TITLE_SETS[group].matches(first_line).into_iter().collect();
    let candidates: Vec<(usize, usize)> = if !in_first.is_empty() {
        // Single-line titles can only match inside the first line; multi-line ones
        // are tried on the whole text.
        g.formats
            .iter()
            .enumerate()
            .filter(|(i, f)| f.multiline || in_first.contains(i))
            .filter_map(|(i, f)| {
                let hay = if f.multiline { text } else { first_line };
                f.title.find(hay).map(|m| (i, m.start()))
            })
            .collect()
    } else {
        g.formats
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.title.find(text).map(|m| (i, m.start())))
            .collect()
    };

    let mut start_pos = text.len();
    let mut desc: Option<String> = None;
    let mut used: Option<&Format> = None;
    let mut corrupted: Option<&'static str> = None;
    let mut matched_title = false;
    for (i, pos) in candidates {
        let f = &g.formats[i];
        if pos > start_pos || (pos == start_pos && desc.is_some()) {
            continue;
        }
        if pos < start_pos {
            desc = None;
            used = None;
            start_pos = pos;
        }
        matched_title = true;
        let caps: Captures = match &f.report {
            Some(r) => match r.captures(text) {
                Some(c) => c,
                None => continue,
            },
            None => {
                let hay = if f.multiline {
                    text
                } else {
                    first_line_or_all(text, pos)
                };
                match f.title.captures_at(hay, pos) {
                    Some(c) => c,
                    None => continue,
                }
            }
        };
        let mut args: Vec<String> = caps
            .iter()
            .skip(1)
            .map(|m| m.map(|m| m.as_str().to_string()).unwrap_or_default())
            .collect();
        corrupted = None;
        if let Some(st) = &f.stack {
            let start = f
                .anchor
                .and_then(|a| a(&caps, text))
                .unwrap_or_else(|| caps.get(0).map(|m| m.start()).unwrap_or(0));
            let (frames, ok) = extract_frames(st, &text[start..]);
            if !ok {
                corrupted = Some("extracted no frames");
            }
            args.extend(frames);
        }
        desc = Some(render(f.fmt, &args));
        used = Some(f);
    }
    let desc = match desc {
        Some(d) => d,
        None => {
            if matched_title {
                corrupted = Some("matched title but not report regexp");
            }
            match text.find(g.header) {
                Some(p) => {
                    let end = text[p..].find('\n').map(|e| p + e).unwrap_or(text.len());
                    text[p..end].to_string()
                }
                None => first_line.to_string(),
            }
        }
    };
    if corrupted.is_none() && used.is_some_and(|f| f.corrupted) {
        corrupted = Some("report format is marked as corrupted");
    }
    let title = title::normalize(&desc);
    if corrupted.is_none() {
        corrupted = corruption(&title, text, used);
    }
    let specific = used.is_some_and(|f| !f.corrupted);
    let evidence = specific
        || g.evidence
            .as_ref()
            .is_none_or(|e| e.is_match(first_line) || has_stack_trace(text));
    Titled {
        kind: used.and_then(|f| f.kind).unwrap_or(g.kind),
        title,
        corrupted: corrupted.is_some(),
        corrupted_reason: corrupted,
        evidence,
    }
}

/// Might a report of `group` starting with `line` turn out to be no crash? True when
/// the group asks for evidence, the line shows none and no specific format titles it.
pub fn may_be_noise(group: usize, line: &[u8]) -> bool {
    let g = &TABLE[group];
    let Some(e) = &g.evidence else { return false };
    let text = String::from_utf8_lossy(line);
    !e.is_match(&text)
        && !TITLE_SETS[group]
            .matches(&text)
            .into_iter()
            .any(|i| !g.formats[i].corrupted)
}

/// Does the text hold a stack trace (a trace header with a frame soon after)?
fn has_stack_trace(text: &str) -> bool {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if stack::is_stack_start(l)
            && lines
                .clone()
                .take(15)
                .any(|n| !stack::frames_in_line(n).is_empty())
        {
            return true;
        }
    }
    false
}

/// Single-line title patterns only ever match inside the first line.
fn first_line_or_all(text: &str, pos: usize) -> &str {
    let end = text[pos..]
        .find('\n')
        .map(|e| pos + e)
        .unwrap_or(text.len());
    &text[..end]
}

/// Fills `{N}` placeholders (1-based) with arguments.
fn render(fmt: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(fmt.len() + 32);
    let mut rest = fmt;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                match after[..close].parse::<usize>() {
                    Ok(n) if n >= 1 => match args.get(n - 1) {
                        Some(a) => out.push_str(a),
                        None => out.push_str("%!v(MISSING)"),
                    },
                    _ => {
                        out.push('{');
                        out.push_str(&after[..close]);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn skipped(st: &StackFmt, frame: &str) -> bool {
    GENERIC_SKIP.is_match(frame) || st.skip.as_ref().is_some_and(|r| r.is_match(frame))
}

fn push_frames(st: &StackFmt, caps: &Captures, frames: &mut Vec<String>) {
    for m in caps.iter().skip(1).flatten() {
        if !skipped(st, m.as_str()) {
            frames.push(m.as_str().to_string());
        }
    }
}

/// Finds the guilty frame(s) of a report starting at `text`.
fn extract_frames(st: &StackFmt, text: &str) -> (Vec<String>, bool) {
    let (mut frames, mut ok) = extract_with(st, &st.parts, text);
    for parts in &st.parts2 {
        if ok {
            break;
        }
        (frames, ok) = extract_with(st, parts, text);
    }
    (frames, ok)
}

fn pick(st: &StackFmt, raw: &[String]) -> Option<String> {
    let stripped: Vec<String> = raw
        .iter()
        .map(|f| stack::strip_frame(f).to_string())
        .collect();
    st.extractor.pick(&stripped)
}

fn extract_with(st: &StackFmt, parts: &[Part], text: &str) -> (Vec<String>, bool) {
    let mut lines = text.split('\n');
    let mut raw: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let mut ok = true;
    let mut traces = 0;
    let mut idx = 0;
    'parts: loop {
        if idx >= parts.len() || (matches!(parts[idx], Part::Trace) && traces > 0) {
            match pick(st, &raw) {
                Some(f) => results.push(f),
                None => {
                    results.push("corrupted".to_string());
                    ok = false;
                }
            }
            raw.clear();
        }
        if idx >= parts.len() {
            break;
        }
        match &parts[idx] {
            Part::Trace => {
                traces += 1;
                let last = idx + 1 == parts.len();
                // With the first frame taken and nothing after the trace, the
                // remaining frames cannot change the choice.
                let early_exit = last && st.extractor == Extractor::First;
                for ln in &mut lines {
                    if stack::is_corrupting_line(ln) {
                        ok = false;
                        idx += 1;
                        continue 'parts;
                    }
                    if stack::is_stack_start(ln) {
                        idx += 1;
                        continue 'parts;
                    }
                    if let Some(Part::Line(next)) = parts.get(idx + 1)
                        && let Some(c) = next.captures(ln)
                    {
                        push_frames(st, &c, &mut raw);
                        idx += 2;
                        continue 'parts;
                    }
                    for name in stack::frames_in_line(ln) {
                        if !skipped(st, name) {
                            raw.push(name.to_string());
                        }
                    }
                    if early_exit && !raw.is_empty() {
                        break;
                    }
                }
            }
            Part::Line(re) => {
                for ln in &mut lines {
                    if stack::is_corrupting_line(ln) {
                        ok = false;
                        idx += 1;
                        continue 'parts;
                    }
                    if let Some(c) = re.captures(ln) {
                        push_frames(st, &c, &mut raw);
                        break;
                    }
                }
            }
        }
        idx += 1;
    }
    (results, ok)
}

/// Keywords that start a stack trace, checked one by one for a frame after them.
const STACK_KEYS: &[&str] = &[
    "Call Trace",
    "Call trace",
    "Allocated:",
    "Allocated by task ",
    "Freed:",
    "Freed by task ",
    " backtrace",
    "Backtrace:",
    "Uninit was stored to memory at",
    "badaddr: ",
];

static STACK_KEYS_AC: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(STACK_KEYS).expect("static patterns"));

static TIMESTAMP_IN_TITLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[ *[0-9]+\.[0-9]+\]").expect("static regex"));

/// Does the stack-start keyword `key` really start a trace in `line`?
fn key_confirmed(key: usize, line: &str) -> bool {
    match STACK_KEYS[key] {
        "Allocated by task " | "Freed by task " | " backtrace" => stack::is_stack_start(line),
        "badaddr: " => stack::is_riscv_stack_start(line),
        _ => true,
    }
}

/// Judges whether a titled report is truncated or garbled.
fn corruption(title: &str, text: &str, f: Option<&Format>) -> Option<&'static str> {
    if TIMESTAMP_IN_TITLE.is_match(title) {
        return Some("title matches corrupted regexp");
    }
    let f = f?;
    if f.no_stack_trace {
        return None;
    }
    // First occurrence of each stack keyword ("Call Trace" and "Call trace" are one).
    let mut first: [Option<usize>; 10] = [None; 10];
    for m in STACK_KEYS_AC.find_overlapping_iter(text) {
        let k = m.pattern().as_usize();
        if first[k].is_some() {
            continue;
        }
        let ls = text[..m.start()].rfind('\n').map(|p| p + 1).unwrap_or(0);
        let le = text[m.start()..]
            .find('\n')
            .map(|p| m.start() + p)
            .unwrap_or(text.len());
        if key_confirmed(k, &text[ls..le]) {
            first[k] = Some(m.start());
        }
    }
    // "Call Trace"/"Call trace" form one key: keep the earlier.
    let call = match (first[0], first[1]) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut keys = vec![(call, false)];
    for (k, pos) in first.iter().enumerate().skip(2) {
        keys.push((*pos, STACK_KEYS[k] == "badaddr: "));
    }
    let mut has_stack = false;
    for (pos, riscv) in keys {
        let Some(pos) = pos else { continue };
        let mut lines = text[pos..].split('\n');
        let rest: Vec<&str> = lines.by_ref().take(17).collect();
        if rest.len() < 4 {
            return Some("call trace is missed");
        }
        let mut bad = true;
        for ln in rest.iter().skip(1).take(15) {
            if stack::is_stack_start(ln) {
                break;
            }
            if ln.contains("(stack is not available)") || !stack::frames_in_line(ln).is_empty() {
                has_stack = true;
                bad = false;
                break;
            }
        }
        if !riscv && bad {
            return Some("no frames in a stack trace");
        }
    }
    if !has_stack {
        return Some("no stack trace in report");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oops::group_of;

    fn title_of(log: &str) -> Titled {
        let first = log.lines().next().unwrap_or("");
        let g = group_of(first.as_bytes()).expect("a report line");
        let ctx = prefix::context(first.as_bytes());
        describe(g, &report_text(log.as_bytes(), &ctx))
    }

    #[test]
    fn soft_lockup_in_smp_call_function() {
        let log = "\
[  100.1] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [scftorture_invo:75]
[  100.1] Modules linked in: scftorture
[  100.1] CPU: 1 PID: 75 Comm: scftorture_invo Not tainted 6.12.0 #1
[  100.1] RIP: 0010:csd_lock_wait+0x2a/0x40
[  100.1] Code: 00 00
[  100.1] Call Trace:
[  100.1]  <IRQ>
[  100.1]  ? watchdog_timer_fn+0x1/0x2
[  100.1]  </IRQ>
[  100.1]  <TASK>
[  100.1]  smp_call_function_many_cond+0x1/0x2
[  100.1]  smp_call_function+0x1/0x2
[  100.1]  scftorture_invoke_one+0x1/0x2 [scftorture]
[  100.1]  scftorture_invoker+0x1/0x2 [scftorture]
[  100.1]  kthread+0x1/0x2
[  100.1]  ret_from_fork+0x1/0x2
[  100.1]  </TASK>
";
        let t = title_of(log);
        assert_eq!(t.title, "BUG: soft lockup in smp_call_function");
        assert_eq!(t.kind, FindingKind::SoftLockup);
        assert!(!t.corrupted, "{:?}", t.corrupted_reason);
    }

    #[test]
    fn renders_placeholders() {
        assert_eq!(
            render(
                "KASAN: {1} {3} in {4}",
                &["a".into(), "b".into(), "c".into(), "d".into()]
            ),
            "KASAN: a c in d"
        );
    }

    #[test]
    fn cleans_console_noise() {
        assert_eq!(&*clean_line(b"\x1b[31mBUG:\x1b[0m x\0\r"), b"BUG: x");
        assert_eq!(&*clean_line(b"BUG: y\r\r"), b"BUG: y");
    }
}
