//! `csdci bench serve-idle [--jobs N] [--settle-s S] [--window-s W]`: the
//! memory and wakeups of an idle `csdci serve`. Makes a small git repository
//! and N job files (`run: ./check.sh`, a schedule that does not fire during
//! the measurement), starts `csdci serve` on them in a fresh data directory,
//! waits until it has logged its jobs and `S` more seconds, then prints its
//! resident memory (`VmRSS`, `VmHWM` of `/proc/PID/status`; the budget is
//! 50 MB with 20 jobs), its threads, and the context switches of all its
//! threads during `W` seconds (0 when nothing polls). Ends it with SIGTERM
//! and prints the exit code. A measurement, never a timed assertion: exit 0
//! unless something could not be measured.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Cli;
use crate::cli::EXIT_CLEAN;

/// Arguments of `csdci bench serve-idle`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Job files to serve.
    #[arg(long, default_value_t = 20)]
    pub jobs: usize,
    /// Seconds to let it settle after it logged its jobs.
    #[arg(long, default_value_t = 3)]
    pub settle_s: u64,
    /// Seconds over which its context switches are counted.
    #[arg(long, default_value_t = 10)]
    pub window_s: u64,
}

/// The RSS budget of an idle `csdci serve` with 20 jobs.
const BUDGET_KB: u64 = 50 * 1000;

fn fail(m: impl Into<String>) -> crate::Error {
    crate::Error::Usage(m.into())
}

fn run(cmd: &mut Command) -> crate::Result<()> {
    let out = cmd.output().map_err(|e| fail(format!("{cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// A `Name: value kB` field of `/proc/PID/status` (in kB), or a count.
fn status_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Context switches (voluntary and not) of every thread of `pid`.
fn switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|s| {
            status_field(&s, "voluntary_ctxt_switches").unwrap_or(0)
                + status_field(&s, "nonvoluntary_ctxt_switches").unwrap_or(0)
        })
        .sum()
}

fn setup(dir: &Path, jobs: usize) -> crate::Result<()> {
    let repo = dir.join("repo");
    let jobs_dir = dir.join("jobs");
    for d in [&repo, &jobs_dir] {
        std::fs::create_dir_all(d).map_err(|e| crate::Error::io(d, e))?;
    }
    let git = |args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .env("GIT_AUTHOR_NAME", "csdci bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.org")
            .env("GIT_COMMITTER_NAME", "csdci bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.org"))
    };
    git(&["init", "-q", "-b", "main"])?;
    let state = repo.join("state");
    std::fs::write(&state, "good\n").map_err(|e| crate::Error::io(&state, e))?;
    git(&["add", "state"])?;
    git(&["commit", "-qm", "base"])?;
    let script = jobs_dir.join("check.sh");
    std::fs::write(&script, "#!/bin/sh\ngrep -q good state\n")
        .map_err(|e| crate::Error::io(&script, e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| crate::Error::io(&script, e))?;
    for i in 0..jobs {
        let f = jobs_dir.join(format!("job-{i:02}.yaml"));
        // 03:MM on 1 January: nothing fires while it is measured.
        let text = format!(
            "name: job-{i:02}\ntree: {}\nbranch: main\nschedule: \"{} 3 1 1 *\"\nrun: ./check.sh\n",
            repo.display(),
            i % 60
        );
        std::fs::write(&f, text).map_err(|e| crate::Error::io(&f, e))?;
    }
    Ok(())
}

/// Runs `csdci bench serve-idle`.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    let tmp = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
    setup(tmp.path(), args.jobs)?;
    let exe = std::env::current_exe().map_err(|e| crate::Error::io("/proc/self/exe", e))?;
    let mut child = Command::new(exe)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("serve")
        .arg("--jobs")
        .arg(tmp.path().join("jobs"))
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("starting csdci serve: {e}")))?;
    let pid = child.id();
    let stderr = child.stderr.take().expect("piped");
    // Read its log on a thread (so the pipe never fills), telling when the
    // jobs are listed.
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("watching ") {
                let _ = tx.send(());
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let ready = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    let kill = |sig| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
    };
    if !ready {
        kill(nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        let log = reader.join().unwrap_or_default();
        return Err(fail(format!(
            "csdci serve did not list its jobs within 60 s:\n{log}"
        )));
    }
    std::thread::sleep(Duration::from_secs(args.settle_s));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| crate::Error::io(format!("/proc/{pid}/status"), e))?;
    let rss = status_field(&status, "VmRSS").unwrap_or(0);
    let hwm = status_field(&status, "VmHWM").unwrap_or(0);
    let threads = status_field(&status, "Threads").unwrap_or(0);
    let before = switches(pid);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(args.window_s));
    let woke = switches(pid).saturating_sub(before);
    let window = t.elapsed().as_secs_f64();
    kill(nix::sys::signal::Signal::SIGTERM);
    let code = child.wait().ok().and_then(|s| s.code());
    let log = reader.join().unwrap_or_default();
    let mb = |kb: u64| kb as f64 / 1000.0;
    println!("csdci serve, idle, {} job files:", args.jobs);
    println!(
        "  VmRSS  {:6.1} MB   budget {:.0} MB with 20 jobs: {}",
        mb(rss),
        mb(BUDGET_KB),
        if rss <= BUDGET_KB { "within" } else { "OVER" }
    );
    println!("  VmHWM  {:6.1} MB   (peak)", mb(hwm));
    println!("  threads {threads}");
    println!("  context switches in {window:.1} s idle: {woke} (all threads)");
    println!(
        "  exit after SIGTERM: {}",
        code.map_or("killed by a signal".into(), |c| c.to_string())
    );
    let fired = log.lines().filter(|l| l.contains("night fired")).count();
    if fired > 0 {
        println!("  note: {fired} night(s) fired during the measurement");
    }
    Ok(EXIT_CLEAN)
}
