//! The patch bot inside `csdci serve`: a `kind: bot` job on a local mbox
//! (a series made by `git format-patch --cover-letter --base` on a small
//! git tree; `make` and a test script in the bubblewrap sandbox) beside
//! the dashboard with `--no-scheduler`: the bot thread still polls, tests
//! the series and sends its reply to a real SMTP server on loopback; the
//! dashboard serves the series; SIGHUP reads a bot job added since;
//! SIGTERM ends csdci serve with 0.
//!
//! Needs `bwrap` and python3-aiosmtpd (`.ci/deps`); skipped without bwrap.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::smtp::{Smtp, header};

/// Everything here is cheap; the deadline only keeps a hung bot from hanging CI.
const DEADLINE: Duration = Duration::from_secs(600);

struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Alice Dev")
        .env("GIT_AUTHOR_EMAIL", "alice@example.org")
        .env("GIT_COMMITTER_NAME", "Alice Dev")
        .env("GIT_COMMITTER_EMAIL", "alice@example.org")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, file: &str, text: &str) {
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    if file.ends_with(".sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

const PROG: &str = "#include <stdio.h>\nint main(void)\n{\n\tprintf(\"ok\\n\");\n\treturn 0;\n}\n";

/// A tree whose `make` builds `prog` and whose test checks it prints `ok`.
fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "master"]);
    write(dir, "prog.c", PROG);
    write(dir, "Makefile", "prog: prog.c\n\tcc -o prog prog.c\n");
    write(
        dir,
        "test.sh",
        "#!/bin/sh\n./prog | grep -qx ok || { echo \"BUG: prog printed $(./prog)\"; exit 1; }\n",
    );
    write(dir, ".gitignore", "prog\n");
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "initial import"]);
}

/// A one-patch series `title` on master, as an mbox at `mbox`.
fn series_mbox(tree: &Path, out: &Path, name: &str, title: &str, mbox: &Path) {
    git(tree, &["checkout", "-q", "-B", name, "master"]);
    write(tree, "prog.c", &format!("/* {name} */\n{PROG}"));
    git(
        tree,
        &["commit", "-q", "-am", &format!("prog: note {name}")],
    );
    let dir = out.join(name);
    let d = dir.to_string_lossy().into_owned();
    git(
        tree,
        &[
            "format-patch",
            "-q",
            "--cover-letter",
            "--thread=shallow",
            "--to=test@example.org",
            "--base=master",
            "-o",
            &d,
            "master..HEAD",
        ],
    );
    git(tree, &["checkout", "-q", "master"]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut f = std::fs::File::create(mbox).unwrap();
    for (i, p) in files.iter().enumerate() {
        let mut s = String::new();
        std::fs::File::open(p)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        if i == 0 {
            s = s
                .replace("*** SUBJECT HERE ***", title)
                .replace("*** BLURB HERE ***", "What this series does.");
        }
        f.write_all(s.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

fn bot_job(jobs: &Path, name: &str, mbox: &Path, tree: &Path, smtp: u16) {
    std::fs::write(
        jobs.join(format!("{name}.yaml")),
        format!(
            "kind: bot\nname: {name}\nmbox: {}\ntree: {}\nbranch: master\npoll: 2s\nbuild: make\nrun: ./test.sh\nruns: 1\nsandbox: {{timeout: 2m, processes: 128}}\nreply:\n  from: csdci bot <bot@example.org>\n  list: test@example.org\n  smtp: {{url: \"smtp://127.0.0.1:{smtp}\", starttls: false}}\n",
            mbox.display(),
            tree.display()
        ),
    )
    .unwrap();
}

/// Waits (polling, up to [`DEADLINE`]) until `smtp` holds `n` messages.
fn wait_for_mails(smtp: &Smtp, n: usize, serve: &mut Owned) -> Vec<String> {
    let start = Instant::now();
    loop {
        let m = smtp.messages();
        if m.len() >= n {
            return m;
        }
        assert!(
            serve.0.try_wait().unwrap().is_none(),
            "csdci serve ended before reply {n} was sent"
        );
        assert!(
            start.elapsed() < DEADLINE,
            "no reply {n} within {DEADLINE:?}: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET path` on the dashboard at `addr` (HTTP/1.0, the whole answer).
fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

#[test]
fn serve_runs_the_bot_beside_the_dashboard() {
    if !Path::new("/usr/bin/bwrap").exists() {
        eprintln!("skipped: bubblewrap (bwrap) is missing; run .ci/deps");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    make_tree(&tree);
    let mbox1 = t.path().join("one.mbox");
    series_mbox(&tree, t.path(), "first", "First series", &mbox1);
    let mbox2 = t.path().join("two.mbox");
    series_mbox(&tree, t.path(), "second", "Second series", &mbox2);
    let smtp = Smtp::start();
    let jobs = t.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    bot_job(&jobs, "bot-one", &mbox1, &tree, smtp.port);
    let data = t.path().join("data");

    let mut child = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--jobs"])
        .arg(&jobs)
        .args(["--listen", "127.0.0.1:0", "--no-scheduler"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("serve: {line}");
            if let Some(i) = line.find("http://") {
                let addr: String = line[i + 7..].chars().take_while(|c| *c != '/').collect();
                let _ = tx.send(addr);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut serve = Owned(child);
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("csdci serve names the dashboard's address");

    // The bot polls although the nightly scheduler is off; its reply goes out.
    let mails = wait_for_mails(&smtp, 1, &mut serve);
    let m = &mails[0];
    assert_eq!(
        header(m, "Subject").as_deref(),
        Some("Re: [PATCH 0/1] First series"),
        "{m}"
    );
    assert!(
        header(m, "In-Reply-To").is_some_and(|v| v.contains("cover.")),
        "{m}"
    );
    assert!(m.contains("clean"), "{m}");

    // The store has the series and its reply, marked sent; the dashboard serves it.
    let start = Instant::now();
    let id = loop {
        let store = csdci::store::Store::open_read_only(&data).unwrap();
        let rows = store.series_list(Some("bot-one")).unwrap();
        let sent = rows.iter().find_map(|r| {
            store
                .series_reply(r.id)
                .unwrap()
                .filter(|x| x.status == "sent")
                .map(|_| r.id)
        });
        if let Some(id) = sent {
            break id;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the reply was never marked sent"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let api = http_get(&addr, &format!("/api/v1/series/{id}"));
    assert!(
        api.starts_with("HTTP/1.0 200") || api.starts_with("HTTP/1.1 200"),
        "{api}"
    );
    assert!(api.contains("\"status\":\"sent\""), "{api}");
    assert!(api.contains("\"result\":\"clean\""), "{api}");
    let overview = http_get(&addr, "/");
    assert!(
        overview.contains(&format!("href=\"/series/{id}\"")),
        "{overview}"
    );

    // SIGHUP reads the job files again: a bot job added since is polled.
    bot_job(&jobs, "bot-two", &mbox2, &tree, smtp.port);
    signal(&serve.0, nix::sys::signal::Signal::SIGHUP);
    let mails = wait_for_mails(&smtp, 2, &mut serve);
    assert!(
        mails
            .iter()
            .any(|m| header(m, "Subject").as_deref() == Some("Re: [PATCH 0/1] Second series")),
        "{mails:?}"
    );
    // Each series is answered once, however often the jobs are polled.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(smtp.messages().len(), 2);

    // SIGTERM stops the bot with the rest; csdci serve exits 0.
    signal(&serve.0, nix::sys::signal::Signal::SIGTERM);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = serve.0.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < DEADLINE, "csdci serve did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("bot: polling 1 job: bot-one"), "{log}");
    assert!(
        log.contains("bot: job files read again: 2 jobs: bot-one, bot-two"),
        "{log}"
    );
}
