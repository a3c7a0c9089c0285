//! `csdci serve` as a real process on real git repositories and a real store:
//! a `* * * * *` job fires by itself, SIGHUP with a broken file keeps the
//! old job, SIGTERM mid-night stops and a restart resumes, a last slot far in
//! the past fires once, a slot due while the night runs waits for it. No
//! timed assertions: every wait is on something observable (a log line, a
//! file, a store row) with a generous deadline.
//!
//! Jobs test with `run: ./check.sh` (a shell command, no QEMU). The parts
//! that look at the nights' rows need the night service
//! ([`csdci::service::night::run_job`]); the rest holds for the scheduler
//! alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::repo::{CSDCI, Repo};
use csdci::store::Store;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Waiting for a cron slot takes up to a minute; the night a few seconds.
const DEADLINE: Duration = Duration::from_secs(180);

/// A job directory beside a repository.
struct Setup {
    repo: Repo,
    jobs: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let repo = Repo::new();
        let jobs = repo._tmp.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        Setup { repo, jobs }
    }

    fn data(&self) -> &Path {
        &self.repo.data
    }

    /// Writes `jobs/NAME.yaml` testing the repository with `./check.sh`.
    fn job(&self, name: &str, schedule: &str) {
        std::fs::write(
            self.jobs.join(format!("{name}.yaml")),
            format!(
                "name: {name}\ntree: {}\nbranch: main\nschedule: \"{schedule}\"\nrun: ./check.sh\n",
                self.repo.path.display()
            ),
        )
        .unwrap();
    }

    /// Writes `jobs/check.sh`.
    fn script(&self, body: &str) {
        let p = self.jobs.join("check.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn serve(&self, log: &str) -> Serve {
        Serve::start(self.data(), &self.jobs, &self.repo._tmp.path().join(log))
    }
}

/// A running `csdci serve`, its log in a file; killed when dropped.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(data: &Path, jobs: &Path, log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new(CSDCI)
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--jobs"])
            .arg(jobs)
            .args(["--max-guests", "2"])
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("csdci serve starts");
        Serve {
            child,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        regex::Regex::new("\x1b\\[[0-9;]*m")
            .unwrap()
            .replace_all(&raw, "")
            .into_owned()
    }

    /// Waits until the log satisfies `ok`, or panics with it.
    fn wait_log(&mut self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if ok(&log) {
                return log;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("csdci serve exited ({st}) before {what}; log:\n{log}");
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no {what} within {DEADLINE:?}; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Sends SIGTERM and waits for the exit.
    fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "csdci serve still runs {DEADLINE:?} after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of `log` containing `needle`.
fn lines<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

/// The slot of the last `job J: night fired for SLOT` line.
fn fired_slot(log: &str, job: &str) -> String {
    let prefix = format!("job {job}: night fired for ");
    let l = lines(log, &prefix).pop().expect("a fired line");
    let rest = &l[l.find(&prefix).unwrap() + prefix.len()..];
    rest.split_whitespace().next().unwrap().to_string()
}

fn nights(data: &Path, job: &str) -> Vec<csdci::store::nights::Night> {
    Store::open_read_only(data)
        .unwrap()
        .nights(Some(job), None, 100)
        .unwrap()
}

fn last_slot(data: &Path, job: &str) -> Option<String> {
    Store::open_read_only(data)
        .unwrap()
        .job_last_slot(job)
        .unwrap()
}

#[test]
fn a_minutely_job_fires_a_night_by_itself() {
    let s = Setup::new();
    s.script("grep -q good state");
    s.job("minutely", "* * * * *");
    let mut serve = s.serve("serve.log");
    let log = serve.wait_log("night fired", |l| {
        l.contains("job minutely: night fired for ")
    });
    assert!(log.contains("watching 1 job"), "{log}");
    // The slot is in the store before the night runs.
    let slot = fired_slot(&log, "minutely");
    assert!(slot.ends_with(":00Z"), "{slot}");
    assert_eq!(
        last_slot(s.data(), "minutely").as_deref(),
        Some(slot.as_str())
    );
    let log = serve.wait_log("night ended", |l| l.contains("job minutely: night ended"));
    assert!(!log.contains("night failed"), "{log}");

    // Needs the night service: the night's row, tested and finished, its
    // one cell clean.
    let n = nights(s.data(), "minutely");
    assert!(!n.is_empty(), "no night row; log:\n{log}");
    let first = n.last().unwrap();
    assert_eq!(first.branch, "main");
    assert_eq!(first.status, "tested", "{first:?}\n{log}");
    assert!(first.finished_at.is_some());
    let cells = Store::open_read_only(s.data())
        .unwrap()
        .cells(first.id)
        .unwrap();
    assert_eq!(cells.len(), 1, "{cells:?}");
    assert_eq!(cells[0].status, "clean", "{cells:?}");

    let st = serve.stop();
    assert_eq!(st.code(), Some(0), "{}", serve.log());
}

#[test]
fn sighup_with_a_broken_file_keeps_the_old_job() {
    let s = Setup::new();
    s.script("true");
    s.job("a", "0 3 1 1 *");
    s.job("b", "0 4 1 1 *");
    let mut serve = s.serve("serve.log");
    serve.wait_log("the jobs", |l| l.contains("job b: next night"));
    let a_next = |log: &str| {
        lines(log, "job a: next night ")
            .last()
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    let before = a_next(&serve.log()).unwrap();

    // a.yaml breaks on line 4, b goes, c comes.
    let a = s.jobs.join("a.yaml");
    let text = std::fs::read_to_string(&a).unwrap();
    std::fs::write(&a, text.replace("0 3 1 1 *", "0 25 1 1 *")).unwrap();
    std::fs::remove_file(s.jobs.join("b.yaml")).unwrap();
    s.job("c", "0 5 1 1 *");
    serve.signal(Signal::SIGHUP);
    let log = serve.wait_log("the reload", |l| l.contains("reloaded: "));
    let errors = lines(&log, " ERROR ");
    let want = format!("{}:4:", a.display());
    assert!(
        errors.iter().any(|l| l.contains(&want)
            && l.contains("schedule")
            && l.contains("hour 25 out of range 0–23")),
        "no `{want}… hour 25` error line:\n{log}"
    );
    assert!(
        log.contains("job a: ") && log.contains("is invalid; keeping the version read before"),
        "{log}"
    );
    assert!(
        log.contains("reloaded: 2 jobs; added c, removed b"),
        "{log}"
    );
    // The old a is still in effect: its schedule's next night.
    assert_eq!(a_next(&log).unwrap(), before);

    // Fixed: the new version replaces it.
    std::fs::write(&a, text.replace("0 3 1 1 *", "0 6 1 1 *")).unwrap();
    serve.signal(Signal::SIGHUP);
    let log = serve.wait_log("the second reload", |l| lines(l, "reloaded: ").len() == 2);
    let after = a_next(&log).unwrap();
    assert_ne!(after, before, "{log}");
    assert!(after.ends_with("T06:00:00Z"), "{after}");
    let st = serve.stop();
    assert_eq!(st.code(), Some(0), "{}", serve.log());
}

#[test]
fn sigterm_mid_night_stops_and_a_restart_resumes() {
    let s = Setup::new();
    let marks = s.repo._tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let go = marks.join("go");
    // The first run waits (for `go`, which never comes while serve runs);
    // once `go` exists the check passes at once.
    s.script(&format!(
        "echo $$ >> {m}/started\nwhile [ ! -e {go} ]; do sleep 0.2; done\ngrep -q good state",
        m = marks.display(),
        go = go.display()
    ));
    s.job("long", "* * * * *");
    let mut serve = s.serve("serve1.log");
    serve.wait_log("night fired", |l| l.contains("job long: night fired for "));

    // Needs the night service from here on: the check starts...
    let started = marks.join("started");
    let t = Instant::now();
    while !started.exists() {
        assert!(
            t.elapsed() < DEADLINE,
            "check.sh never started; log:\n{}",
            serve.log()
        );
        if serve.log().contains("job long: night failed") {
            panic!("the night failed before its check ran:\n{}", serve.log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid: i32 = std::fs::read_to_string(&started)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let night = nights(s.data(), "long");
    assert_eq!(night.len(), 1, "{night:?}");
    assert_eq!(night[0].status, "running");

    // ...SIGTERM: serve stops the check and exits 0.
    let st = serve.stop();
    let log1 = serve.log();
    assert_eq!(st.code(), Some(0), "{log1}");
    assert!(log1.contains("job long: night interrupted"), "{log1}");
    let t = Instant::now();
    while csdci::procfs::stat(pid as u32).is_some_and(|s| !s.is_zombie()) {
        assert!(
            t.elapsed() < DEADLINE,
            "check.sh (pid {pid}) outlived csdci serve"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let store = Store::open_read_only(s.data()).unwrap();
    let unfinished = store.night_unfinished("long", "main").unwrap();
    assert_eq!(
        unfinished.as_ref().map(|n| n.id),
        Some(night[0].id),
        "the night is left resumable: {unfinished:?}"
    );
    drop(store);

    // Restart with no slot due (the schedule now names 1 January only): the
    // night left running fires at once and ends.
    std::fs::write(&go, "").unwrap();
    s.job("long", "0 3 1 1 *");
    let mut serve = s.serve("serve2.log");
    let log = serve.wait_log("the resumed night's end", |l| {
        l.contains("job long: night ended") || l.contains("job long: night failed")
    });
    assert!(
        log.contains("job long: night fired to resume the night left running"),
        "{log}"
    );
    assert!(log.contains("job long: night ended"), "{log}");
    let n = nights(s.data(), "long");
    assert_eq!(n.len(), 1, "resumed, not a second night: {n:?}");
    assert_eq!(n[0].id, night[0].id);
    assert_eq!(n[0].status, "tested", "{n:?}\n{log}");
    let st = serve.stop();
    assert_eq!(st.code(), Some(0), "{}", serve.log());
}

/// The latest 03:00 UTC at or before now.
fn latest_three_am(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive().and_hms_opt(3, 0, 0).unwrap().and_utc();
    if today <= now {
        today
    } else {
        today - chrono::TimeDelta::days(1)
    }
}

#[test]
fn a_last_slot_far_in_the_past_fires_once_at_start() {
    let s = Setup::new();
    s.script("grep -q good state");
    s.job("daily", "0 3 * * *");
    Store::open(s.data())
        .unwrap()
        .job_set_slot("daily", "2020-01-01T03:00:00Z")
        .unwrap();
    let expected = latest_three_am(Utc::now());
    let mut serve = s.serve("serve.log");
    let log = serve.wait_log("night ended", |l| {
        l.contains("job daily: night ended") || l.contains("job daily: night failed")
    });
    let slot = fired_slot(&log, "daily");
    let again = latest_three_am(Utc::now());
    assert!(
        slot == csdci::service::scheduler::slot_text(expected)
            || slot == csdci::service::scheduler::slot_text(again),
        "{slot} is not the latest 03:00; log:\n{log}"
    );
    // Started more than a minute after the slot: logged as a missed night.
    if Utc::now() - expected > chrono::TimeDelta::minutes(2) {
        assert!(log.contains("missed nights run once"), "{log}");
    }
    assert_eq!(last_slot(s.data(), "daily").as_deref(), Some(slot.as_str()));
    // The loop looks at every job again after a night ends, before it takes
    // the next message: once the reload is logged, a burst would have shown.
    serve.signal(Signal::SIGHUP);
    let log = serve.wait_log("the reload", |l| l.contains("reloaded: "));
    assert_eq!(lines(&log, "night fired").len(), 1, "{log}");

    // Needs the night service: exactly one night row, tested.
    let n = nights(s.data(), "daily");
    assert_eq!(n.len(), 1, "{n:?}\n{log}");
    assert_eq!(n[0].status, "tested", "{n:?}\n{log}");
    let st = serve.stop();
    assert_eq!(st.code(), Some(0), "{}", serve.log());
}

#[test]
fn a_slot_due_while_the_night_runs_waits_for_it() {
    let s = Setup::new();
    let marks = s.repo._tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let go = marks.join("go");
    s.script(&format!(
        "while [ ! -e {go} ]; do sleep 0.2; done\ngrep -q good state",
        go = go.display()
    ));
    s.job("slow", "* * * * *");
    let mut serve = s.serve("serve.log");
    serve.wait_log("night fired", |l| l.contains("job slow: night fired for "));
    // Needs the night service (the check holds the night open): the next
    // minute's slot is queued, not run beside it.
    let log = serve.wait_log("the queued slot", |l| {
        l.contains("job slow: ") && l.contains("is due while its previous night runs")
    });
    assert_eq!(lines(&log, "job slow: night fired").len(), 1, "{log}");
    std::fs::write(&go, "").unwrap();
    let log = serve.wait_log("the queued night", |l| {
        lines(l, "job slow: night fired").len() == 2
    });
    let ended = log
        .find("job slow: night ended")
        .expect("first night ended");
    let second = log.rfind("job slow: night fired").unwrap();
    assert!(
        ended < second,
        "the second night fired before the first ended:\n{log}"
    );
    let st = serve.stop();
    assert_eq!(st.code(), Some(0), "{}", serve.log());
}

#[test]
fn bad_jobs_directories_exit_3() {
    let s = Setup::new();
    let run = |jobs: &Path| {
        Command::new(CSDCI)
            .arg("--data-dir")
            .arg(s.data())
            .args(["serve", "--jobs"])
            .arg(jobs)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = run(&s.jobs.join("missing"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("not a directory of job files"), "{err}");

    // Every file invalid: each error named, exit 3.
    std::fs::write(
        s.jobs.join("x.yaml"),
        "name: x\ntree: /tmp\nbranch: main\nschedule: \"0 2 * * *\"\nvpcus: 4\n",
    )
    .unwrap();
    let out = run(&s.jobs);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let want = format!("{}:5:", s.jobs.join("x.yaml").display());
    assert!(err.contains(&want) && err.contains("vpcus"), "{err}");
    assert!(err.contains("no valid job file"), "{err}");
    // Nothing fired: the store was not even made.
    assert!(!s.data().join(csdci::store::DB_FILE).exists());
}
