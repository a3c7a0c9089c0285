//! The patch bot on the demo kernel with the QEMU pipeline: a real
//! public-inbox holds two series made with `git format-patch --cover-letter
//! --base` on the imported Linux 6.12 — three patches whose 2/3 is the
//! demo's planted CSD-lock regression (`demo::patches::regression` on
//! `kernel/smp.c`), and one harmless patch. A nightly job has already tested
//! the base with the same RunSpec, so the bot takes its runs as the base's
//! and says so. The bot (`test:` mode, kernel builds in the bubblewrap
//! sandbox, guests in QEMU) replies over loopback SMTP: patch 2/3 is named
//! with the regression's title and the CSD-lock console excerpt; the
//! one-patch series is clean.
//!
//! Shares the imported kernel repository and the data directory (build
//! cache, runs) with the other real-kernel tests; needs bubblewrap,
//! public-inbox and python3-aiosmtpd (`.ci/deps`).

mod common;

#[path = "common/inbox.rs"]
#[allow(dead_code)]
mod inbox;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::csdci_within as csdci;
use common::smtp::{Smtp, header};
use csdci::demo::patches;

/// The RunSpec of both the nightly job and the bot: short runs that still
/// catch the planted race, with scftorture doing only single-CPU no-wait
/// calls (the regression's path): measured here, 4 of 4 runs of the
/// regression failed with a CSD-lock report (31-42 s each), 3 of 3 of the
/// base were clean; with scftorture's default mix only about 1 in 3 runs of
/// 20 s failed.
const TEST: &str = "{vcpus: 8, memory: 1G, duration: 20, scftorture: \"nthreads=16 weight_single=1\", stop_after_crash_s: 5, predicate: csd}";

fn git_in(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> String {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("git runs");
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const AUTHOR: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "Alice Dev"),
    ("GIT_AUTHOR_EMAIL", "alice@example.org"),
    ("GIT_COMMITTER_NAME", "Alice Dev"),
    ("GIT_COMMITTER_EMAIL", "alice@example.org"),
];

/// A commit on `parent` in the bare repository `repo` that replaces `path`
/// with `edit(old text)` (plumbing only: no checkout of the kernel).
fn commit(
    repo: &Path,
    parent: &str,
    path: &str,
    edit: impl Fn(String) -> String,
    subject: &str,
    body: &str,
) -> String {
    let old = git_in(repo, &["show", &format!("{parent}:{path}")], &[], None);
    let new = edit(format!("{old}\n"));
    let blob = git_in(
        repo,
        &["hash-object", "-w", "--stdin"],
        &[],
        Some(new.as_bytes()),
    );
    let index = repo.join(format!("csdci-test-index-{}", std::process::id()));
    let ix = index.to_string_lossy().into_owned();
    let env = [("GIT_INDEX_FILE", ix.as_str())];
    git_in(repo, &["read-tree", parent], &env, None);
    git_in(
        repo,
        &[
            "update-index",
            "--cacheinfo",
            &format!("100644,{blob},{path}"),
        ],
        &env,
        None,
    );
    let tree = git_in(repo, &["write-tree"], &env, None);
    let _ = std::fs::remove_file(&index);
    let msg = format!("{subject}\n\n{body}\n\nSigned-off-by: Alice Dev <alice@example.org>\n");
    git_in(
        repo,
        &["commit-tree", &tree, "-p", parent, "-F", "-"],
        &AUTHOR,
        Some(msg.as_bytes()),
    )
}

/// `git format-patch --cover-letter --base` of `base..tip` with `title`;
/// returns the mail files (cover letter first).
fn format_patch(repo: &Path, out: &Path, base: &str, tip: &str, title: &str) -> Vec<PathBuf> {
    let o = out.to_string_lossy().into_owned();
    git_in(
        repo,
        &[
            "format-patch",
            "-q",
            "--cover-letter",
            "--thread=shallow",
            "--to=test@example.org",
            &format!("--base={base}"),
            "-o",
            &o,
            &format!("{base}..{tip}"),
        ],
        &AUTHOR,
        None,
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // git names a cover letter `cover.<seconds>.git.<email>`: two series
    // formatted in the same second would share its Message-ID, so each
    // series' cover gets its own (every mail of it references the cover).
    let tag: String = title.chars().filter(char::is_ascii_alphanumeric).collect();
    for (i, f) in files.iter().enumerate() {
        let mut text = std::fs::read_to_string(f)
            .unwrap()
            .replace("<cover.", &format!("<cover.{tag}."));
        if i == 0 {
            text = text
                .replace("*** SUBJECT HERE ***", title)
                .replace("*** BLURB HERE ***", "What this series does.");
        }
        std::fs::write(f, text).unwrap();
    }
    files
}

fn append(text: &'static str) -> impl Fn(String) -> String {
    move |old: String| format!("{}{text}", old.trim_end_matches('\n').to_string() + "\n")
}

#[test]
fn bot_names_the_csd_regression_patch_of_a_kernel_series_and_passes_a_clean_one() {
    for tool in ["bwrap", "public-inbox-httpd"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "{tool} is missing: run .ci/deps"
        );
    }
    let base = common::demo_base();
    let repo = common::kernel_repo();

    // "Upstream": a bare repository borrowing the imported objects, its
    // main branch at the base; the series are made in it.
    let tmp = tempfile::tempdir().unwrap();
    let up = common::upstream(&tmp.path().join("linux.git"));
    git_in(&up, &["update-ref", "refs/heads/main", &base], &[], None);

    let p1 = commit(
        &up,
        &base,
        patches::SMP_C,
        append("\n/* CSD-lock debugging: see csdlock_debug= in kernel-parameters.txt. */\n"),
        "smp: Point to the csdlock_debug documentation",
        "Say where the CSD-lock debugging switch is documented.",
    );
    let p2 = commit(
        &up,
        &p1,
        patches::SMP_C,
        |t| patches::regression(&t).expect("the demo regression applies to 6.12"),
        patches::REGRESSION_SUBJECT,
        patches::REGRESSION_BODY,
    );
    let p3 = commit(
        &up,
        &p2,
        "kernel/scftorture.c",
        append("\n/* Run with csdlock_debug=1 to check CSD-lock waits too. */\n"),
        "scftorture: Mention csdlock_debug",
        "A note for testers.",
    );
    let regress = format_patch(
        &up,
        &tmp.path().join("regress"),
        &base,
        &p3,
        "smp: CSD-lock diagnostics",
    );
    assert_eq!(regress.len(), 4);
    let c1 = commit(
        &up,
        &base,
        patches::SMP_C,
        append("\n/* csd_data: one per CPU, for smp_call_function_single(). */\n"),
        "smp: Describe csd_data",
        "A comment only.",
    );
    let clean = format_patch(
        &up,
        &tmp.path().join("clean"),
        &base,
        &c1,
        "smp: describe csd_data",
    );

    let inbox = inbox::Inbox::start(&tmp.path().join("pi"));
    for m in regress.iter().chain(&clean) {
        inbox.deliver(m);
    }
    let mut smtp = Smtp::start();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let nightly = format!("smp-nightly-{stamp}");
    let bot = format!("smp-bot-{stamp}");
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("nightly.yaml"),
        format!(
            "name: {nightly}\ntree: {up}\nreference: {repo}\nbranch: main\nschedule: \"0 3 * * *\"\ntest: {TEST}\nruns: 2\nbisect:\n  enabled: false\n",
            up = up.display(),
            repo = repo.display()
        ),
    )
    .unwrap();
    std::fs::write(
        jobs.join("bot.yaml"),
        format!(
            "kind: bot\nname: {bot}\ninbox: {url}\ntree: {up}\nreference: {repo}\nbranch: main\npaths: [kernel/smp.c]\ntest: {TEST}\nruns: 2\nsandbox: {{timeout: 30m}}\nreply:\n  from: csdci bot <bot@example.org>\n  list: test@example.org\n  smtp: {{url: \"smtp://127.0.0.1:{port}\", starttls: false}}\n",
            url = inbox.url,
            up = up.display(),
            repo = repo.display(),
            port = smtp.port
        ),
    )
    .unwrap();
    let jobs_arg = jobs.to_string_lossy().into_owned();

    // The nightly job tests the base first.
    let (code, out) = csdci(
        &[
            "job", "run", &nightly, "--once", "--json", "--jobs", &jobs_arg,
        ],
        Duration::from_secs(20 * 60),
    );
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("night json");
    assert_eq!(v["branches"][0]["cells"][0]["status"], "clean", "{v:#}");

    let (code, out) = csdci(
        &["bot", "run", "--jobs", &jobs_arg, "--once"],
        Duration::from_secs(30 * 60),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "base: 2 clean runs from the nightly job {nightly}"
        )),
        "{out}"
    );
    // The kernel was built in the sandboxed worktree, not the nightly's.
    let wts: Vec<String> = std::fs::read_dir(common::data_dir().join("worktrees"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        wts.iter().any(|w| w.starts_with("sandboxed-linux")),
        "{wts:?}"
    );

    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 2, "{msgs:#?}\n{out}");
    let find = |what: &str| {
        msgs.iter()
            .find(|m| header(m, "Subject").is_some_and(|s| s.contains(what)))
            .unwrap_or_else(|| panic!("no reply about {what}: {msgs:#?}"))
    };
    let r = find("CSD-lock diagnostics");
    assert_eq!(
        header(r, "Subject").unwrap(),
        "Re: [PATCH 0/3] smp: CSD-lock diagnostics"
    );
    assert!(header(r, "In-Reply-To").unwrap().contains("cover."), "{r}");
    assert!(
        r.contains("RESULT: patch 2/3 introduces a failure"),
        "{r}\n{out}"
    );
    assert!(
        r.contains(&format!("[2/3] {}", patches::REGRESSION_SUBJECT)),
        "{r}"
    );
    assert!(r.contains("<-- first bad patch"), "{r}");
    assert!(r.contains("non-responsive CSD lock"), "{r}");
    assert!(
        r.contains("base:   2 clean runs from the nightly job"),
        "{r}"
    );
    assert!(r.contains("QEMU, 8 vCPUs"), "{r}");

    let c = find("describe csd_data");
    assert!(c.contains("RESULT: clean"), "{c}\n{out}");
    assert!(c.contains("the tip passed 2 of 2 runs"), "{c}");
    smtp.stop();
}
