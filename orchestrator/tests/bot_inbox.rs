//! The patch bot end to end: real-format series made by `git format-patch
//! --cover-letter --base` on a small real git tree (where "build" is `make`
//! and "test" is a script, both in the bubblewrap sandbox), delivered to a
//! real public-inbox (`public-inbox-init`, `public-inbox-mda`) served by
//! `public-inbox-httpd` on loopback, read by `csdci bot run` over HTTP
//! (`new.atom` + `t.mbox.gz`), replies through a real SMTP server on
//! loopback; plus a dry run from a local mbox, series assembly on
//! format-patch output, the parser over a large generated corpus, and the
//! sandbox's limits.
//!
//! Needs Debian's `public-inbox` and `bubblewrap` (`.ci/deps`); the tests
//! that need them say so and pass when they are missing.

#[path = "common/smtp.rs"]
#[allow(dead_code)]
mod smtp;

#[path = "common/inbox.rs"]
#[allow(dead_code)]
mod inbox;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use csdci::bot::series::{self, assemble, latest, parse_mail, split_mbox};
use csdci::sandbox::{Limits, Sandbox};
use inbox::{Inbox, free_port};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn git(dir: &Path, args: &[&str]) -> String {
    git_as(dir, args, "alice@example.org")
}

/// `git` with the committer address `committer` (format-patch names the
/// cover letter's Message-ID after it and the current second).
fn git_as(dir: &Path, args: &[&str], committer: &str) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Alice Dev")
        .env("GIT_AUTHOR_EMAIL", "alice@example.org")
        .env("GIT_COMMITTER_NAME", "Alice Dev")
        .env("GIT_COMMITTER_EMAIL", committer)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(dir: &Path, file: &str, text: &str) {
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    if file.ends_with(".sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

const PROG_OK: &str =
    "#include <stdio.h>\nint main(void)\n{\n\tprintf(\"ok\\n\");\n\treturn 0;\n}\n";
const MAKEFILE: &str = "prog: prog.c\n\tcc -o prog prog.c\n";

/// The tree: `master` (builds, test passes) and `buggy` (test fails).
fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "master"]);
    write(dir, "prog.c", PROG_OK);
    write(dir, "Makefile", MAKEFILE);
    write(
        dir,
        "test.sh",
        "#!/bin/sh\n./prog | grep -qx ok || { echo \"BUG: prog printed $(./prog)\"; exit 1; }\n",
    );
    write(dir, ".gitignore", "prog\n");
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "initial import"]);
    git(dir, &["tag", "base"]);
    git(dir, &["checkout", "-q", "-b", "buggy"]);
    write(dir, "prog.c", &PROG_OK.replace("ok\\n", "BUG\\n"));
    git(dir, &["commit", "-q", "-am", "prog: print the wrong thing"]);
    git(dir, &["tag", "bugbase"]);
    git(dir, &["checkout", "-q", "master"]);
}

/// Makes `commits` (file, content, subject) on a branch from `from`, then
/// `git format-patch --cover-letter --base=<from> -v<v>`; returns the mails.
#[allow(clippy::too_many_arguments)]
fn series(
    tree: &Path,
    out: &Path,
    name: &str,
    from: &str,
    v: u32,
    title: &str,
    commits: &[(&str, &str, &str)],
    base: bool,
) -> Vec<PathBuf> {
    git(tree, &["checkout", "-q", "-B", name, from]);
    for (file, text, subject) in commits {
        write(tree, file, text);
        git(tree, &["add", file]);
        git(tree, &["commit", "-q", "-m", subject]);
    }
    let dir = out.join(format!("{name}-v{v}"));
    let base_arg = format!("--base={from}");
    let vv = format!("-v{v}");
    let range = format!("{from}..HEAD");
    let mut args = vec![
        "format-patch",
        "-q",
        "--cover-letter",
        "--thread=shallow",
        &vv,
        "--to=test@example.org",
        "-o",
    ];
    let d = dir.to_string_lossy().into_owned();
    args.push(&d);
    if base {
        args.push(&base_arg);
    }
    args.push(&range);
    if v > 1 {
        // v1's cover letter had this second's Message-ID.
        std::thread::sleep(Duration::from_millis(1100));
    }
    git_as(tree, &args, &format!("alice+{name}@example.org"));
    git(tree, &["checkout", "-q", "master"]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let cover = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(
        &files[0],
        cover
            .replace("*** SUBJECT HERE ***", title)
            .replace("*** BLURB HERE ***", "What this series does."),
    )
    .unwrap();
    files
}

fn csdci(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn format_patch_series_assemble_with_b4_rules() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree);
    let out = t.path().join("out");
    let v1 = series(
        &tree,
        &out,
        "feat",
        "base",
        1,
        "Feature",
        &[("a.txt", "1\n", "a: add"), ("b.txt", "1\n", "b: add")],
        true,
    );
    let v2 = series(
        &tree,
        &out,
        "feat",
        "base",
        2,
        "Feature",
        &[("a.txt", "2\n", "a: add"), ("b.txt", "2\n", "b: add")],
        true,
    );
    let mails: Vec<_> = v1
        .iter()
        .chain(&v2)
        .map(|f| parse_mail(&std::fs::read(f).unwrap()).unwrap())
        .collect();
    assert!(mails[0].is_cover());
    let base = git(&tree, &["rev-parse", "base"]);
    assert_eq!(mails[0].base_commit.as_deref(), Some(base.as_str()));
    assert_eq!(mails[1].paths, vec!["a.txt"]);
    let all = assemble(&mails);
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|s| s.complete() && s.total == 2));
    let (cur, old) = latest(all);
    assert_eq!((cur.len(), old.len()), (1, 1));
    assert_eq!(cur[0].version, 2);
    assert_eq!(cur[0].title, "Feature");
    // Incomplete: patch 2/2 missing; order of arrival does not matter.
    let partial: Vec<_> = vec![mails[4].clone(), mails[3].clone()];
    let s = assemble(&partial);
    assert_eq!(s.len(), 1);
    assert!(!s[0].complete());
    assert_eq!(s[0].missing(), vec![2]);
    // The mbox git am gets splits back into the same mails.
    assert_eq!(split_mbox(&cur[0].mbox(), 10).len(), 2);
}

/// A deterministic generator of mail-like byte strings: real headers and
/// diffs mutated (bytes flipped, cut, repeated, odd encodings).
fn corpus(seeds: &[Vec<u8>], n: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let extras: [&[u8]; 8] = [
        b"Content-Transfer-Encoding: base64\n",
        b"Content-Transfer-Encoding: quoted-printable\n",
        b"Content-Type: text/plain; charset=\"x-weird\"\n",
        b"Subject: =?utf-8?B?W1BBVENIIDEvMl0gw6k=?=\n",
        b"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n",
        b"[PATCH v99999999999 4294967295/4294967295]",
        b"References: <a> <b> <<<>>>\n",
        b"\xff\xfe\x00=\n=ZZ",
    ];
    (0..n).map(move |_| {
        let mut m = seeds[(next() as usize) % seeds.len()].clone();
        for _ in 0..(next() % 6) {
            if m.is_empty() {
                break;
            }
            let at = (next() as usize) % m.len();
            match next() % 5 {
                0 => m[at] = next() as u8,
                1 => m.truncate(at),
                2 => {
                    let e = extras[(next() as usize) % extras.len()];
                    m.splice(at..at, e.iter().copied());
                }
                3 => {
                    let end = (at + (next() as usize) % 64).min(m.len());
                    let dup = m[at..end].to_vec();
                    m.splice(at..at, dup);
                }
                _ => {
                    m.remove(at);
                }
            }
        }
        m
    })
}

/// The same entry point as `orchestrator/fuzz/fuzz_targets/series.rs`.
fn parse_entry(data: &[u8]) {
    let mails: Vec<_> = split_mbox(data, 64)
        .iter()
        .chain(std::iter::once(&data.to_vec()))
        .filter_map(|m| parse_mail(m).ok())
        .collect();
    for s in assemble(&mails) {
        let _ = (s.complete(), s.missing(), s.paths(), s.mbox());
    }
    if let Ok(t) = std::str::from_utf8(data) {
        let _ = series::parse_subject(t);
    }
}

#[test]
fn parser_survives_a_generated_corpus() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree);
    let files = series(
        &tree,
        &t.path().join("o"),
        "x",
        "base",
        3,
        "Corpus",
        &[
            ("a.txt", "é\n", "a: add"),
            ("prog.c", "int main(){}\n", "prog: x"),
        ],
        true,
    );
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let n: usize = std::env::var("CSDCI_PARSER_CORPUS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut ok = 0;
    for m in corpus(&seeds, n) {
        parse_entry(&m);
        ok += usize::from(parse_mail(&m).is_ok());
    }
    assert!(ok > 0, "some mutated mails still parse");
}

#[test]
fn sandbox_contains_network_writes_and_fork_bombs() {
    assert!(
        have("bwrap"),
        "bwrap is missing: run .ci/deps (apt-get install bubblewrap)"
    );
    let t = tempfile::tempdir().unwrap();
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // A folder the host can write and the sandbox sees (read-only) outside
    // its writable folders: not under /tmp, which the sandbox replaces with
    // its own tmpfs (a checkout under /tmp would hide it instead).
    let outside_dir = tempfile::Builder::new()
        .prefix("csdci-sandbox-probe-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let outside = outside_dir.path().join("written-from-the-sandbox");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let sb = Sandbox {
        writable: vec![work.clone()],
        limits: Limits {
            wall: Duration::from_secs(20),
            processes: 64,
            memory: 256 << 20,
            ..Limits::default()
        },
    };
    let r = sb
        .run(&work, "echo in > inside && cat inside", None)
        .unwrap();
    assert!(r.success(), "{r:?}");
    let r = sb
        .run(&work, &format!("echo x > {}", outside.display()), None)
        .unwrap();
    assert!(!r.success() && r.output.contains("Read-only"), "{r:?}");
    assert!(!outside.exists());
    let r = sb
        .run(
            &work,
            &format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"),
            None,
        )
        .unwrap();
    assert!(!r.output.contains("connected"), "{r:?}");
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host's loopback"
    );
    // 256 MiB of address space per process: a 400 MB allocation fails.
    let r = sb
        .run(
            &work,
            "head -c 400000000 /dev/zero | (v=$(cat); echo got ${#v})",
            None,
        )
        .unwrap();
    assert!(!r.output.contains("got 400000000"), "{r:?}");
    // A fork bomb meets pids.max (64) and the wall limit; nothing survives.
    let sb2 = Sandbox {
        limits: Limits {
            wall: Duration::from_secs(4),
            ..sb.limits.clone()
        },
        ..sb.clone()
    };
    let start = Instant::now();
    let r = sb2
        .run(
            &work,
            "csdcibomb() { csdcibomb | csdcibomb & }; csdcibomb; sleep 30",
            None,
        )
        .unwrap();
    eprintln!(
        "fork bomb: {:?} after {:.1}s",
        r.code,
        start.elapsed().as_secs_f64()
    );
    assert!(start.elapsed() < Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(300));
    let left = Command::new("pgrep")
        .args(["-f", "csdcibomb"])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "fork bomb left processes");
}

/// Reads stdout of csdci until it ends.
fn series_rows(data: &Path) -> Vec<csdci::store::series::SeriesRow> {
    csdci::store::Store::open(data)
        .unwrap()
        .series_list(None)
        .unwrap()
}

#[test]
fn bot_tests_series_from_a_real_public_inbox_and_replies() {
    assert!(
        have("bwrap") && have("public-inbox-httpd") && have("cc"),
        "needs bubblewrap, public-inbox and a C compiler: run .ci/deps"
    );
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree);
    let out = t.path().join("series");
    // Where the malicious Makefile tries to write: a folder that exists (so
    // only the sandbox can stop the write).
    let outside_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(outside_dir).unwrap();
    let outside = outside_dir.join(format!("bot-pwned-{}", std::process::id()));
    let _ = std::fs::remove_file(&outside);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let lport = listener.local_addr().unwrap().port();
    let mut all: Vec<Vec<PathBuf>> = Vec::new();
    // A: clean.
    all.push(series(
        &tree,
        &out,
        "clean",
        "base",
        1,
        "Clean series",
        &[
            (
                "prog.c",
                &PROG_OK.replace("int main", "/* tidy */\nint main"),
                "prog: add a comment",
            ),
            ("README", "hello\n", "README: add"),
        ],
        true,
    ));
    // B: 2/3 introduces the failure.
    all.push(series(
        &tree,
        &out,
        "regress",
        "base",
        1,
        "Three steps",
        &[
            ("NOTES", "n\n", "notes: add"),
            (
                "prog.c",
                &PROG_OK.replace("ok\\n", "BUG\\n"),
                "prog: say something else",
            ),
            ("TODO", "t\n", "todo: add"),
        ],
        true,
    ));
    // C: fixes the failure bugbase shows.
    all.push(series(
        &tree,
        &out,
        "fix",
        "bugbase",
        1,
        "Fix the output",
        &[("prog.c", PROG_OK, "prog: print ok again")],
        true,
    ));
    // D: does not apply (made on top of a commit that is not sent).
    git(&tree, &["checkout", "-q", "-B", "side", "base"]);
    write(&tree, "other.txt", "one\n");
    git(&tree, &["add", "other.txt"]);
    git(&tree, &["commit", "-q", "-m", "other: add"]);
    git(&tree, &["checkout", "-q", "master"]);
    all.push(series(
        &tree,
        &out,
        "noapply",
        "side",
        1,
        "Change other",
        &[("other.txt", "two\n", "other: change")],
        false,
    ));
    // E: 1/2 does not compile.
    all.push(series(
        &tree,
        &out,
        "broken",
        "base",
        1,
        "Broken build",
        &[
            (
                "prog.c",
                &PROG_OK.replace("return 0;", "return 0"),
                "prog: drop a semicolon",
            ),
            ("README", "x\n", "README: add"),
        ],
        true,
    ));
    // F: v1 superseded by v2 before the bot saw either.
    all.push(series(
        &tree,
        &out,
        "feat",
        "base",
        1,
        "Feature",
        &[("feat.txt", "1\n", "feat: add")],
        true,
    ));
    all.push(series(
        &tree,
        &out,
        "feat",
        "base",
        2,
        "Feature",
        &[("feat.txt", "2\n", "feat: add")],
        true,
    ));
    // G: a Makefile that reaches for the network and writes outside.
    let evil = format!(
        "prog: prog.c\n\t-bash -c 'echo hi > /dev/tcp/127.0.0.1/{lport}'\n\techo pwned > {}\n\tcc -o prog prog.c\n",
        outside.display()
    );
    all.push(series(
        &tree,
        &out,
        "evil",
        "base",
        1,
        "Build tweak",
        &[("Makefile", &evil, "build: tweak")],
        true,
    ));

    let inbox = Inbox::start(&t.path().join("pi"));
    for s in &all {
        for m in s {
            inbox.deliver(m);
        }
    }
    // A junk mail and a reply are skipped with a reason.
    let junk = t.path().join("junk.eml");
    std::fs::write(&junk, "From: x@example.org\nTo: test@example.org\nMessage-ID: <junk@x>\nSubject: hello\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n\nnot a patch\n").unwrap();
    inbox.deliver(&junk);

    let mut smtp = smtp::Smtp::start();
    let jobs = t.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("bot.yaml"),
        format!(
            "kind: bot\nname: list-bot\ninbox: {}\ntree: {}\nbranch: [master, buggy]\npoll: 1s\nbuild: make\nrun: ./test.sh\nruns: 2\nsandbox: {{timeout: 2m, processes: 128}}\nreply:\n  from: csdci bot <bot@example.org>\n  list: test@example.org\n  tested_by: true\n  smtp: {{url: \"smtp://127.0.0.1:{}\", starttls: false}}\n",
            inbox.url,
            tree.display(),
            smtp.port
        ),
    )
    .unwrap();
    // A nightly job beside it is not read by the bot, and nightly commands skip the bot file.
    let data = t.path().join("data");
    let (code, stdout, stderr) = csdci(
        &data,
        &["bot", "run", "--jobs", &jobs.to_string_lossy(), "--once"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let rows = series_rows(&data);
    let by_title = |title: &str, v: u32| {
        rows.iter()
            .find(|r| r.title == title && r.version == v)
            .unwrap_or_else(|| panic!("no series {title} v{v} in {rows:#?}\n{stderr}"))
    };
    let res = |title: &str, v: u32| {
        let r = by_title(title, v);
        (
            r.status.clone(),
            r.result.clone().unwrap_or_default(),
            r.summary.clone().unwrap_or_default(),
        )
    };
    assert_eq!(res("Clean series", 1).1, "clean", "{stdout}\n{stderr}");
    let (_, r, s) = res("Three steps", 1);
    assert_eq!(r, "regression", "{s}\n{stdout}\n{stderr}");
    assert!(s.contains("patch 2/3"), "{s}");
    let (_, r, s) = res("Fix the output", 1);
    assert_eq!(r, "fixes");
    assert!(
        s.contains("0 failures in 2 runs: rate < 0.776 at 95%; base failed 2/2"),
        "{s}"
    );
    assert_eq!(res("Change other", 1).1, "does_not_apply");
    let (_, r, s) = res("Broken build", 1);
    assert_eq!(r, "build_failed");
    assert!(s.contains("patch 1/2") && s.contains("error"), "{s}");
    assert_eq!(res("Feature", 1).0, "superseded");
    assert_eq!(res("Feature", 2).1, "clean");
    let (_, r, s) = res("Build tweak", 1);
    assert_eq!(r, "build_failed", "{s}");
    assert!(
        !outside.exists(),
        "the malicious Makefile wrote outside the sandbox"
    );
    assert!(
        listener.accept().is_err(),
        "the malicious Makefile reached the network"
    );
    let store = csdci::store::Store::open(&data).unwrap();
    let skipped = store.bot_mails_skipped("list-bot").unwrap();
    assert!(
        skipped
            .iter()
            .any(|(m, r)| m == "junk@x" && r.contains("not a patch")),
        "{skipped:?}"
    );

    // Replies: one per tested series, threaded under the cover letter.
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 7, "{msgs:#?}");
    let regress = msgs
        .iter()
        .find(|m| smtp::header(m, "Subject").is_some_and(|s| s.contains("Three steps")))
        .expect("reply to the regression");
    let cover = by_title("Three steps", 1).head_mid.clone();
    assert_eq!(
        smtp::header(regress, "Subject").unwrap(),
        "Re: [PATCH v1 0/3] Three steps"
    );
    assert_eq!(
        smtp::header(regress, "In-Reply-To").unwrap(),
        format!("<{cover}>")
    );
    assert!(
        smtp::header(regress, "References")
            .unwrap()
            .contains(&cover)
    );
    assert!(
        regress.contains("[2/3]") && regress.contains("first bad patch"),
        "{regress}"
    );
    assert!(regress.contains("BUG: prog printed BUG"), "{regress}");
    assert!(!regress.contains("Tested-by:"));
    let fix = msgs.iter().find(|m| m.contains("Fix the output")).unwrap();
    assert!(
        fix.contains("Tested-by: csdci bot <bot@example.org>"),
        "{fix}"
    );
    assert!(fix.contains("base failed 2/2"));

    // A restart reads nothing new, tests nothing and never replies twice.
    let (code, stdout2, stderr2) = csdci(
        &data,
        &["bot", "run", "--jobs", &jobs.to_string_lossy(), "--once"],
    );
    assert_eq!(code, 0, "{stderr2}");
    assert!(!stdout2.contains("applying"), "{stdout2}");
    assert!(
        stderr2.contains("0 new mails") && stderr2.contains("0 series tested"),
        "{stderr2}"
    );
    assert_eq!(smtp.messages().len(), 7);
    // A new version posted later is picked up by the next poll.
    let v3 = series(
        &tree,
        &out,
        "feat",
        "base",
        3,
        "Feature",
        &[("feat.txt", "3\n", "feat: add")],
        true,
    );
    for m in &v3 {
        inbox.deliver(m);
    }
    let (code, _, stderr3) = csdci(
        &data,
        &["bot", "run", "--jobs", &jobs.to_string_lossy(), "--once"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        series_rows(&data)
            .iter()
            .filter(|r| r.title == "Feature"
                && r.version == 3
                && r.result.as_deref() == Some("clean"))
            .count(),
        1,
        "{stderr3}"
    );
    smtp.stop();
    let _ = std::fs::remove_file(&outside);

    // Dry run from a local mbox: the reply goes to stdout and the store.
    let mbox = t.path().join("a.mbox");
    let mut f = std::fs::File::create(&mbox).unwrap();
    for m in &all[0] {
        let mut s = String::new();
        std::fs::File::open(m)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
    let jobs2 = t.path().join("jobs2");
    std::fs::create_dir_all(&jobs2).unwrap();
    std::fs::write(
        jobs2.join("b.yaml"),
        format!("kind: bot\nname: mbox-bot\nmbox: {}\ntree: {}\nbranch: master\nrun: ./test.sh\nruns: 1\nreply:\n  from: bot@example.org\n", mbox.display(), tree.display()),
    )
    .unwrap();
    let (code, stdout, stderr) = csdci(
        &data,
        &[
            "bot",
            "run",
            "--jobs",
            &jobs2.to_string_lossy(),
            "--once",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Subject: Re: [PATCH v1 0/2] Clean series"),
        "{stdout}"
    );
    assert!(stdout.contains("In-Reply-To: <cover."), "{stdout}");
    assert!(stdout.contains("RESULT: clean"), "{stdout}");
    assert!(stdout.contains("[1/2]") && stdout.contains("[2/2]"));
}

#[test]
fn bot_job_files_are_checked_with_positions() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("bot.yaml");
    std::fs::write(
        &f,
        "kind: bot\nname: b\ninbox: ftp://x\ntree: /tmp\nbranch: master\nrun: ./t\nruns: 0\n",
    )
    .unwrap();
    let errs = csdci::jobs::bot::load_file(&f).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter()
            .any(|e| e.contains(":3:") && e.contains("inbox")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|e| e.contains(":7:") && e.contains("runs")),
        "{text:?}"
    );
    std::fs::write(
        &f,
        "kind: bot\nname: b\ninbox: http://x/l\ntree: /tmp\nbranch: master\nrun: ./t\nrunz: 1\n",
    )
    .unwrap();
    let errs = csdci::jobs::bot::load_file(&f).unwrap_err();
    assert!(errs[0].to_string().contains("runz"), "{errs:?}");
    // The nightly loader skips bot files in a directory and explains one named.
    assert!(
        csdci::jobs::load_paths(&[t.path().to_path_buf()])
            .iter()
            .all(|(_, r)| r.is_err())
    );
    let e = csdci::jobs::load_file(&f).unwrap_err();
    assert!(e[0].to_string().contains("csdci bot run"), "{e:?}");
}

/// A plain (non-patch) mail dated `date` (RFC 2822).
fn filler(n: u32, date: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.org>\nTo: test@example.org\nMessage-ID: <filler-{n}@example.org>\nSubject: chatter {n}\nDate: {date}\n\nnot a patch {n}\n"
    )
    .into_bytes()
}

#[test]
fn catches_up_past_new_atom_and_replies_once_to_an_incomplete_series() {
    assert!(
        have("bwrap") && have("public-inbox-httpd") && have("cc"),
        "needs bubblewrap, public-inbox and a C compiler: run .ci/deps"
    );
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree);
    let out = t.path().join("series");
    let inbox = Inbox::start(&t.path().join("pi"));
    let now = chrono::Utc::now();
    let rfc2822 = |m: i64| (now + chrono::Duration::minutes(m)).to_rfc2822();
    inbox.deliver_bytes(&filler(0, &rfc2822(-60)));

    let mut smtp = smtp::Smtp::start();
    let jobs = t.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("bot.yaml"),
        format!(
            "kind: bot\nname: late-bot\ninbox: {}\ntree: {}\nbranch: master\nincomplete_after: 3s\nrun: ./test.sh\nruns: 1\nsandbox: {{timeout: 2m}}\nreply:\n  from: csdci bot <bot@example.org>\n  list: test@example.org\n  smtp: {{url: \"smtp://127.0.0.1:{}\", starttls: false}}\n",
            inbox.url,
            tree.display(),
            smtp.port
        ),
    )
    .unwrap();
    let data = t.path().join("data");
    let run = || {
        csdci(
            &data,
            &["bot", "run", "--jobs", &jobs.to_string_lossy(), "--once"],
        )
    };
    // The first poll sets the position (the filler's date).
    let (code, _, stderr) = run();
    assert_eq!(code, 0, "{stderr}");
    assert!(series_rows(&data).is_empty());

    // While the bot is away: a complete series, 2 of a 3-patch series, then
    // 30 newer mails, so new.atom (25 entries) holds none of the patches.
    let late = series(
        &tree,
        &out,
        "late",
        "base",
        1,
        "Late series",
        &[("NOTES", "late\n", "notes: add")],
        true,
    );
    let partial = series(
        &tree,
        &out,
        "partial",
        "base",
        1,
        "Partial series",
        &[
            ("A", "a\n", "a: add"),
            ("B", "b\n", "b: add"),
            ("C", "c\n", "c: add"),
        ],
        true,
    );
    for m in late.iter().chain(&partial[..3]) {
        inbox.deliver(m);
    }
    for n in 1..=30 {
        inbox.deliver_bytes(&filler(n, &rfc2822(n as i64)));
    }
    let feed = inbox.get("new.atom");
    assert_eq!(feed.matches("<entry").count(), 25);
    assert!(
        !feed.contains("Late series") && !feed.contains("Partial series"),
        "the patches are still in new.atom: the test would not need a catch-up"
    );

    let (code, stdout, stderr) = run();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("new.atom does not reach back"), "{stderr}");
    let rows = series_rows(&data);
    let row = |title: &str| {
        rows.iter()
            .find(|r| r.title == title)
            .unwrap_or_else(|| panic!("no series {title}: {rows:#?}\n{stdout}\n{stderr}"))
            .clone()
    };
    assert_eq!(
        row("Late series").result.as_deref(),
        Some("clean"),
        "{stderr}"
    );
    assert_eq!(row("Partial series").status, "waiting");
    assert_eq!(smtp.messages().len(), 1);

    // After incomplete_after, one reply names the missing patch; never again.
    std::thread::sleep(Duration::from_secs(4));
    let (code, stdout, stderr) = run();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("incomplete: patch 3/3 never arrived"),
        "{stdout}"
    );
    let partial_row = series_rows(&data)
        .into_iter()
        .find(|r| r.title == "Partial series")
        .unwrap();
    assert_eq!(partial_row.status, "incomplete");
    let (code, _, stderr) = run();
    assert_eq!(code, 0, "{stderr}");
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    let inc = msgs
        .iter()
        .find(|m| smtp::header(m, "Subject").is_some_and(|s| s.contains("Partial series")))
        .expect("the reply to the incomplete series");
    assert_eq!(
        smtp::header(inc, "Subject").unwrap(),
        "Re: [PATCH v1 0/3] Partial series"
    );
    assert_eq!(
        smtp::header(inc, "In-Reply-To").unwrap(),
        format!("<{}>", partial_row.head_mid)
    );
    assert!(
        inc.contains("RESULT: incomplete series, missing 3/3"),
        "{inc}"
    );
    assert!(
        inc.contains("[1/3] a: add") && inc.contains("[2/3] b: add"),
        "{inc}"
    );
    assert!(inc.contains("after waiting 3s"), "{inc}");
    smtp.stop();
}
