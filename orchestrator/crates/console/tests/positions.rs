//! Every finding's position (first and last line, start and end byte) is the
//! same whether the console is analysed whole or fed in chunks of any size
//! (split inside lines and inside reports), and the byte offsets point at the
//! lines the line numbers name.

mod common;

use std::path::PathBuf;

use common::*;
use csdci_console::{Analysis, Analyzer, Finding, analyze, corpus};

/// Byte offset of the start of every line (1-based: `starts[n - 1]`), and the
/// end of the console.
fn line_starts(bytes: &[u8]) -> Vec<u64> {
    let mut v = vec![0u64];
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && i + 1 < bytes.len() {
            v.push(i as u64 + 1);
        }
    }
    v
}

/// Feeds `bytes` in chunks of 1 to `max` bytes (seeded).
fn chunked(bytes: &[u8], seed: u64, max: u64) -> Analysis {
    let mut rng = Rng(seed | 1);
    let mut a = Analyzer::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = ((rng.next() % max) as usize + 1).min(rest.len());
        a.feed(&rest[..n]);
        rest = &rest[n..];
    }
    a.finish()
}

/// The positions of `f` are consistent with each other and with `bytes`.
fn check_positions(name: &str, bytes: &[u8], f: &Finding) {
    assert!(f.line >= 1, "{name}: {f:?}");
    assert!(
        f.last_line >= f.line,
        "{name}: last line before the first: {f:?}"
    );
    assert!(
        f.start_byte < f.end_byte && f.end_byte <= bytes.len() as u64,
        "{name}: byte range: {f:?}"
    );
    // Lines longer than the analyzer's line limit count as several lines: the
    // line numbers then run ahead of the console's; only plain consoles are
    // checked line by line.
    if bytes.split(|&b| b == b'\n').any(|l| l.len() >= 64 * 1024) {
        return;
    }
    let starts = line_starts(bytes);
    let first = starts[(f.line - 1) as usize];
    assert_eq!(
        f.start_byte, first,
        "{name}: start byte of line {}: {f:?}",
        f.line
    );
    // The end is just past the last line: the next line's start, or the end.
    let end = starts
        .get(f.last_line as usize)
        .copied()
        .unwrap_or(bytes.len() as u64);
    assert_eq!(
        f.end_byte, end,
        "{name}: end byte of line {}: {f:?}",
        f.last_line
    );
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/syzkaller/report")
}

#[test]
fn corpus_positions_do_not_depend_on_chunks() {
    let cases = corpus::read_dir(&corpus_dir()).expect("the vendored corpus");
    assert!(cases.len() >= 700, "{} cases", cases.len());
    let mut findings = 0;
    let mut multi_line = 0;
    for (i, c) in cases.iter().enumerate() {
        let whole = analyze(&c.log);
        for f in &whole.findings {
            check_positions(&c.name, &c.log, f);
            findings += 1;
            multi_line += usize::from(f.last_line > f.line);
        }
        // Small chunks split most lines; large ones split a few reports.
        for (seed, max) in [
            (i as u64 + 1, 7),
            (i as u64 + 1000, 200),
            (i as u64 + 7, 4096),
        ] {
            let got = chunked(&c.log, seed, max);
            assert_eq!(
                got.findings, whole.findings,
                "case {}: chunks of 1..={max} bytes (seed {seed}) differ",
                c.name
            );
        }
    }
    assert!(findings > 700, "{findings} findings");
    // Crash reports span their stack traces.
    assert!(
        multi_line * 10 > findings * 8,
        "{multi_line} of {findings} multi-line"
    );
}

#[test]
fn fixture_positions_do_not_depend_on_chunks() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .chain(std::fs::read_dir(dir.join("real")).unwrap())
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        let bytes = fixture(name);
        let whole = analyze(&bytes);
        for f in &whole.findings {
            check_positions(name, &bytes, f);
        }
        for seed in 1..20 {
            assert_eq!(
                chunked(&bytes, seed, 1 + seed * 37).findings,
                whole.findings,
                "{name}: seed {seed}"
            );
        }
    }
}

/// Where the reports of the real CSD regression console end.
#[test]
fn real_csd_console_spans() {
    let bytes = fixture("real/csd-regression-tcg-8cpu.log");
    let a = analyze(&bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let line = |n: u64| lines[(n - 1) as usize];
    let csd: Vec<&Finding> = a
        .findings
        .iter()
        .filter(|f| f.kind == csdci_console::FindingKind::CsdLock)
        .collect();
    assert!(csd.len() >= 5, "{csd:?}");
    // Lock #1: its state line, the NMI sent to its target and the backtrace's
    // first line; it ends where lock #2 is detected.
    let first = csd[0];
    assert!(line(first.line).contains("(#1)"), "{}", line(first.line));
    assert!(line(first.last_line + 1).contains("(#2)"), "{first:?}");
    assert!(first.last_line > first.line);
    // Lock #4 ends with the stack dump after its re-send: its </TASK>.
    let fourth = csd.iter().find(|f| line(f.line).contains("(#4)")).unwrap();
    assert!(
        line(fourth.last_line).contains("</TASK>"),
        "{}",
        line(fourth.last_line)
    );
    let seg = &bytes[fourth.start_byte as usize..fourth.end_byte as usize];
    let seg = String::from_utf8_lossy(seg);
    assert!(seg.starts_with(line(fourth.line)));
    assert!(seg.contains("Re-sending CSD lock (#4)"));
    // The console has CRLF line ends: the range ends past the newline.
    assert!(seg.ends_with("</TASK>\r\n"), "{seg}");
}

#[test]
fn a_warning_ends_with_its_end_trace_and_registers() {
    let log = "\
[    1.0] random: crng init done
[   10.0] ------------[ cut here ]------------
[   10.0] WARNING: CPU: 1 PID: 75 at kernel/smp.c:100 smp_call_function_many_cond+0x1/0x2
[   10.0] Modules linked in: scftorture
[   10.0] CPU: 1 PID: 75 Comm: scftorture_invo Not tainted 6.12.0 #1
[   10.0] RIP: 0010:smp_call_function_many_cond+0x1/0x2
[   10.0] Call Trace:
[   10.0]  <TASK>
[   10.0]  smp_call_function+0x1/0x2
[   10.0]  kthread+0x1/0x2
[   10.0]  </TASK>
[   10.0] ---[ end trace 0000000000000000 ]---
[   11.0] scftorture: scf_invoked_count VER: 100 resched: 0
[   12.0] scftorture: scf_invoked_count VER: 200 resched: 0
[   13.0] scftorture: scf_invoked_count VER: 300 resched: 0
[   14.0] scftorture: scf_invoked_count VER: 400 resched: 0
[   15.0] scftorture: scf_invoked_count VER: 500 resched: 0
[   16.0] scftorture: scf_invoked_count VER: 600 resched: 0
[   17.0] scftorture: scf_invoked_count VER: 700 resched: 0
[   18.0] scftorture: scf_invoked_count VER: 800 resched: 0
[   19.0] scftorture: scf_invoked_count VER: 900 resched: 0
[   20.0]  unrelated_indented+0x1/0x2
";
    let a = analyze(log.as_bytes());
    assert_eq!(a.findings.len(), 1, "{:?}", a.findings);
    let f = &a.findings[0];
    assert_eq!((f.line, f.last_line), (3, 12), "{f:?}");
    check_positions("warning", log.as_bytes(), f);
    let seg = &log[f.start_byte as usize..f.end_byte as usize];
    assert!(seg.starts_with("[   10.0] WARNING:"));
    assert!(seg.ends_with("---[ end trace 0000000000000000 ]---\n"));
}

/// Findings stored as JSON by versions without positions still parse.
#[test]
fn findings_without_positions_parse() {
    let old = r#"{"kind":"soft_lockup","title":"BUG: soft lockup in f","line":7,"corrupted":false,"crash_report":true}"#;
    let f: Finding = serde_json::from_str(old).unwrap();
    assert_eq!(
        (f.line, f.last_line, f.start_byte, f.end_byte),
        (7, 0, 0, 0)
    );
}

/// Byte offsets stay console offsets across lines the analyzer cuts (longer
/// than its 64 KiB line limit) and a last line without a newline.
#[test]
fn byte_offsets_survive_overlong_lines() {
    let mut log = b"[    1.0] boot\n".to_vec();
    log.extend(std::iter::repeat_n(b'A', 150_000));
    log.push(b'\n');
    let start = log.len();
    log.extend_from_slice(b"[   10.0] WARNING: CPU: 1 PID: 75 at kernel/smp.c:100 f+0x1/0x2\n");
    log.extend_from_slice(b"[   10.0] Call Trace:\n[   10.0]  <TASK>\n");
    log.extend(std::iter::repeat_n(b'B', 70_000));
    log.extend_from_slice(b"\n[   10.0]  g+0x1/0x2\n[   10.0]  </TASK>\n");
    let end_trace = b"[   10.0] ---[ end trace 0000000000000000 ]---";
    log.extend_from_slice(end_trace);
    let a = analyze(&log);
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == csdci_console::FindingKind::Warning)
        .expect("the warning");
    assert_eq!(f.start_byte, start as u64, "{f:?}");
    // The console ends without a newline: the report ends with it.
    assert_eq!(f.end_byte, log.len() as u64, "{f:?}");
    for seed in 1..30 {
        assert_eq!(
            chunked(&log, seed, 1 + seed * 5000).findings,
            a.findings,
            "seed {seed}"
        );
    }
}

/// A report whose first line is longer than the line limit: its end is still
/// a console offset.
#[test]
fn a_report_starting_on_an_overlong_line() {
    let mut log =
        b"[    1.0] boot\n[   10.0] WARNING: CPU: 1 PID: 75 at kernel/smp.c:100 f+0x1/0x2 "
            .to_vec();
    log.extend(std::iter::repeat_n(b'C', 70_000));
    log.extend_from_slice(
        b"\n[   10.0] Call Trace:\n[   10.0]  <TASK>\n[   10.0]  g+0x1/0x2\n[   10.0]  </TASK>\n",
    );
    let end = log.len() as u64;
    log.extend_from_slice(b"[   11.0] a\n[   11.0] b\n[   11.0] c\n[   11.0] d\n[   11.0] e\n");
    log.extend_from_slice(b"[   11.0] f\n[   11.0] g\n[   11.0] h\n[   11.0] i\n[   11.0] j\n");
    let a = analyze(&log);
    let f = &a.findings[0];
    assert_eq!(f.start_byte, 15, "{f:?}");
    assert_eq!(f.end_byte, end, "{f:?}");
    assert!(log[..f.end_byte as usize].ends_with(b"</TASK>\n"));
    for seed in 1..30 {
        assert_eq!(
            chunked(&log, seed, 1 + seed * 4000).findings,
            a.findings,
            "seed {seed}"
        );
    }
}
