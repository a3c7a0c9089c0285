//! The `--run CMD` tester, like `git bisect run`: `sh -c CMD` in a csdci-owned
//! worktree checked out at the commit. Exit 0: good; 125: cannot be tested;
//! 1..=124: bad; 126 or 127 (the command was not found or is not executable),
//! 128 or more (or killed by a signal): abort.
//!
//! With `--policy timed` (a bisection on failure-time evidence) each run gets
//! the most seconds it may use in `CSDCI_MAX_EXPOSURE_S` and is stopped (its
//! process group killed) once it has used them or the engine says a clean run
//! has shown enough: a stopped run is clean. The run's exposure is the
//! command's wall time, and a failing exit is a failure at that time.
//!
//! With `--max-guests W` a round's runs go at once, each in a worktree of its
//! own (all in csdci's mirror of the repository).
//!
//! The command runs in its own process group under a guardian shell (see
//! [`crate::process_group`]): when it ends, when it runs past its timeout, when
//! csdci is asked to stop (SIGINT/SIGTERM: the run ends as interrupted, the
//! bisection stays resumable) and when csdci dies (kill -9 included), the whole
//! group is killed, so nothing the script started keeps running in the
//! worktree.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::process_group::{self, Group};
use crate::testers::{Exposure, Prepared, RunOutcome, RunPlan, RunReport, RunRequest, Tester};
use crate::vcs::worktree::Worktree;

/// What a run that exceeds its timeout means (never "bad").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The commit cannot be tested (like exit 125).
    Skip,
    /// The bisection stops (like exit 128 or more).
    Abort,
}

/// One csdci-owned worktree and the commit checked out in it.
struct Slot {
    worktree: Worktree,
    head: Option<String>,
    /// When it was last prepared or run (a counter): the least recently used
    /// slot takes the next commit.
    used: u64,
}

/// A run in progress.
struct Running {
    group: Group,
    log: PathBuf,
    start: Instant,
    commit: String,
}

/// Runs a shell command per test, in up to `workers` worktrees at once.
pub struct CommandTester {
    cmd: String,
    repo: PathBuf,
    slots: Vec<Slot>,
    clock: u64,
    log_dir: PathBuf,
    timeout: Option<(Duration, OnTimeout)>,
}

impl CommandTester {
    /// A tester running `cmd` in a worktree at `worktree` of `repo`, writing each
    /// run's output to `log_dir`. Installs csdci's SIGINT/SIGTERM handler, so
    /// that a signal ends the run (its process group killed) as interrupted.
    pub fn new(repo: &Path, worktree: &Path, log_dir: &Path, cmd: &str) -> crate::Result<Self> {
        crate::interrupt::install_interrupt_handler();
        let worktree = Worktree::ensure(repo, worktree)?;
        std::fs::create_dir_all(log_dir).map_err(|e| crate::Error::io(log_dir, e))?;
        Ok(CommandTester {
            cmd: cmd.to_string(),
            repo: repo.to_path_buf(),
            slots: vec![Slot {
                worktree,
                head: None,
                used: 0,
            }],
            clock: 0,
            log_dir: log_dir.to_path_buf(),
            timeout: None,
        })
    }

    /// Runs up to `workers` commands at once (`--max-guests`), each in its own
    /// worktree beside the first (`<worktree>-w1`, `-w2`, ...), all in csdci's
    /// mirror of the repository.
    pub fn with_workers(mut self, workers: usize) -> crate::Result<Self> {
        let first = self.slots[0].worktree.path().to_path_buf();
        for k in self.slots.len()..workers.max(1) {
            let mut name = first.file_name().unwrap_or_default().to_os_string();
            name.push(format!("-w{k}"));
            let worktree = Worktree::ensure(&self.repo, &first.with_file_name(name))?;
            self.slots.push(Slot {
                worktree,
                head: None,
                used: 0,
            });
        }
        Ok(self)
    }

    /// Kills a run after `timeout` (its whole process group) and counts it as
    /// `on_timeout` says: untestable, or the end of the bisection.
    pub fn with_timeout(mut self, timeout: Duration, on_timeout: OnTimeout) -> Self {
        self.timeout = Some((timeout, on_timeout));
        self
    }

    /// Checks `commit` out in slot `k` (unless it is there already).
    fn checkout(&mut self, k: usize, commit: &str) -> crate::Result<()> {
        self.clock += 1;
        let slot = &mut self.slots[k];
        slot.used = self.clock;
        if slot.head.as_deref() != Some(commit) {
            slot.head = None;
            slot.worktree.checkout(commit)?;
            slot.head = Some(commit.to_string());
        }
        Ok(())
    }

    /// The slot holding `commit` among `free`, else the least recently used
    /// of them.
    fn pick(&self, commit: &str, free: &[usize]) -> Option<usize> {
        free.iter()
            .copied()
            .find(|&k| self.slots[k].head.as_deref() == Some(commit))
            .or_else(|| free.iter().copied().min_by_key(|&k| self.slots[k].used))
    }

    /// Starts one run of `commit` in slot `k`.
    fn spawn(&mut self, k: usize, commit: &str, attempt: u32) -> crate::Result<Running> {
        self.spawn_for(k, commit, attempt, None)
    }

    /// [`CommandTester::spawn`], telling the command how long it may run.
    fn spawn_for(
        &mut self,
        k: usize,
        commit: &str,
        attempt: u32,
        max_exposure_s: Option<f64>,
    ) -> crate::Result<Running> {
        self.checkout(k, commit)?;
        let short = crate::events::short(commit);
        let log = self.log_dir.join(format!("{short}-{attempt}.log"));
        let out = File::create(&log).map_err(|e| crate::Error::io(&log, e))?;
        let err = out.try_clone().map_err(|e| crate::Error::io(&log, e))?;
        let start = Instant::now();
        let mut cmd = process_group::command("csdci-run", "sh");
        cmd.arg("-c")
            .arg(&self.cmd)
            .current_dir(self.slots[k].worktree.path())
            .env("CSDCI_COMMIT", commit)
            .env("CSDCI_ATTEMPT", attempt.to_string())
            .env("CSDCI_REPO", &self.repo)
            .env("CSDCI_WORKER", k.to_string());
        if let Some(m) = max_exposure_s {
            cmd.env("CSDCI_MAX_EXPOSURE_S", format!("{m:.3}"));
        }
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let group = Group::spawn(&mut cmd).map_err(|e| crate::Error::io("sh", e))?;
        Ok(Running {
            group,
            log,
            start,
            commit: commit.to_string(),
        })
    }

    /// A run that ran past its timeout (already killed).
    fn timed_out(&self, r: Running) -> crate::Result<RunReport> {
        let (timeout, on_timeout) = self.timeout.expect("a deadline passed");
        let what = format!("timed out after {}", seconds(timeout));
        match on_timeout {
            OnTimeout::Skip => Ok(RunReport {
                outcome: RunOutcome::Skip { reason: what },
                analysis: None,
                console_log: Some(r.log),
                run_id: None,
                seconds: r.start.elapsed().as_secs_f64(),
                exposure: None,
            }),
            OnTimeout::Abort => Err(crate::bisect::Error::Aborted {
                commit: r.commit,
                status: what,
                log: r.log,
            }
            .into()),
        }
    }

    /// Waits for `runs` (polling every 50 ms), each until it ends or runs past
    /// its timeout; on SIGINT/SIGTERM the unfinished ones are killed and end
    /// as interrupted. One result per run, in order.
    fn wait_all(&mut self, runs: Vec<crate::Result<Running>>) -> Vec<crate::Result<RunReport>> {
        let mut runs: Vec<Option<crate::Result<Running>>> = runs.into_iter().map(Some).collect();
        let mut out: Vec<Option<crate::Result<RunReport>>> = runs.iter().map(|_| None).collect();
        loop {
            let interrupted = crate::interrupt::interrupted();
            let mut pending = false;
            for (slot, result) in runs.iter_mut().zip(out.iter_mut()) {
                let Some(run) = slot.take() else { continue };
                let mut r = match run {
                    Ok(r) => r,
                    Err(e) => {
                        *result = Some(Err(e));
                        continue;
                    }
                };
                match r.group.try_wait() {
                    Ok(Some(status)) => *result = Some(finished(r, status)),
                    Ok(None) if interrupted => {
                        let _ = r.group.kill();
                        *result = Some(Err(crate::Error::Interrupted));
                    }
                    Ok(None) => {
                        let late = self.timeout.is_some_and(|(t, _)| r.start.elapsed() >= t);
                        if late {
                            let _ = r.group.kill();
                            *result = Some(self.timed_out(r));
                        } else {
                            *slot = Some(Ok(r));
                            pending = true;
                        }
                    }
                    Err(e) => *result = Some(Err(crate::Error::io("sh", e))),
                }
            }
            if !pending {
                return out
                    .into_iter()
                    .map(|r| r.unwrap_or(Err(crate::Error::Interrupted)))
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The report of a run that ended with `status`, or the end of the
/// bisection when the status says so (126, 127, 128 or more, a signal).
fn finished(r: Running, status: std::process::ExitStatus) -> crate::Result<RunReport> {
    drop(r.group);
    let seconds = r.start.elapsed().as_secs_f64();
    let outcome = match status.code() {
        Some(0) => RunOutcome::Pass,
        Some(125) => RunOutcome::Skip {
            reason: "--run command exited 125".into(),
        },
        Some(1..=124) => RunOutcome::Fail,
        code => {
            let status = match code {
                Some(c @ (126 | 127)) => {
                    format!("exit {c}: command not found or not executable")
                }
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".to_string(),
            };
            return Err(crate::bisect::Error::Aborted {
                commit: r.commit,
                status,
                log: r.log,
            }
            .into());
        }
    };
    Ok(RunReport {
        outcome,
        analysis: None,
        console_log: Some(r.log),
        run_id: None,
        seconds,
        exposure: None,
    })
}

/// `N s` for a timeout: whole seconds without a fraction.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// How often a planned run asks whether to stop early.
const STOP_CHECK: Duration = Duration::from_millis(250);

impl CommandTester {
    /// One run of `commit` under `plan` (see the module documentation).
    fn planned(
        &mut self,
        commit: &str,
        attempt: u32,
        plan: &RunPlan<'_>,
    ) -> crate::Result<RunReport> {
        if crate::interrupt::interrupted() {
            return Err(crate::Error::Interrupted);
        }
        let all: Vec<usize> = (0..self.slots.len()).collect();
        let k = self.pick(commit, &all).unwrap_or(0);
        let mut r = self.spawn_for(k, commit, attempt, Some(plan.max_exposure_s))?;
        let mut checked = Duration::ZERO;
        loop {
            let t = r.start.elapsed();
            match r.group.try_wait() {
                Ok(Some(status)) => {
                    let mut report = finished(r, status)?;
                    let e = t.as_secs_f64();
                    report.exposure = Some(Exposure {
                        exposure_s: e,
                        failed_at_s: (report.outcome == RunOutcome::Fail).then_some(e),
                    });
                    return Ok(report);
                }
                Ok(None) if crate::interrupt::interrupted() => {
                    let _ = r.group.kill();
                    return Err(crate::Error::Interrupted);
                }
                Ok(None) => {
                    if self.timeout.is_some_and(|(d, _)| t >= d) {
                        let _ = r.group.kill();
                        return self.timed_out(r);
                    }
                    let e = t.as_secs_f64();
                    let stop = e >= plan.max_exposure_s
                        || (t >= checked + STOP_CHECK && {
                            checked = t;
                            (plan.should_stop)(e)
                        });
                    if stop {
                        let _ = r.group.kill();
                        drop(r.group);
                        return Ok(RunReport {
                            outcome: RunOutcome::Pass,
                            analysis: None,
                            console_log: Some(r.log),
                            run_id: None,
                            seconds: e,
                            exposure: Some(Exposure {
                                exposure_s: e,
                                failed_at_s: None,
                            }),
                        });
                    }
                }
                Err(e) => return Err(crate::Error::io("sh", e)),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Tester for CommandTester {
    fn run_planned(
        &mut self,
        commit: &str,
        attempt: u32,
        plan: &RunPlan<'_>,
    ) -> crate::Result<RunReport> {
        self.planned(commit, attempt, plan)
    }

    fn prepare(&mut self, commit: &str) -> crate::Result<Prepared> {
        if crate::interrupt::interrupted() {
            return Err(crate::Error::Interrupted);
        }
        let all: Vec<usize> = (0..self.slots.len()).collect();
        let k = self.pick(commit, &all).unwrap_or(0);
        self.checkout(k, commit)?;
        Ok(Prepared::Ready { artifact_id: None })
    }

    fn run_once(&mut self, commit: &str, attempt: u32) -> crate::Result<RunReport> {
        let mut out = self.run_batch(&[RunRequest {
            commit: commit.to_string(),
            attempt,
        }]);
        out.pop().unwrap_or(Err(crate::Error::Interrupted))
    }

    fn workers(&self) -> usize {
        self.slots.len()
    }

    /// Runs every request at once, each in a worktree of its own (a commit
    /// run twice gets two), in waves of [`Tester::workers`] when there are
    /// more.
    fn run_batch(&mut self, runs: &[RunRequest]) -> Vec<crate::Result<RunReport>> {
        let mut out = Vec::with_capacity(runs.len());
        for wave in runs.chunks(self.slots.len()) {
            if crate::interrupt::interrupted() {
                out.extend(wave.iter().map(|_| Err(crate::Error::Interrupted)));
                continue;
            }
            // Requests first take the slots that hold their commit, then the
            // least recently used of the rest.
            let mut free: Vec<usize> = (0..self.slots.len()).collect();
            let mut slot_of: Vec<Option<usize>> = vec![None; wave.len()];
            for (i, r) in wave.iter().enumerate() {
                if let Some(pos) = free
                    .iter()
                    .position(|&k| self.slots[k].head.as_deref() == Some(r.commit.as_str()))
                {
                    slot_of[i] = Some(free.remove(pos));
                }
            }
            for (i, r) in wave.iter().enumerate() {
                if slot_of[i].is_none() {
                    let wanted = |k: usize| {
                        wave.iter()
                            .any(|w| self.slots[k].head.as_deref() == Some(w.commit.as_str()))
                    };
                    let k = free
                        .iter()
                        .copied()
                        .filter(|&k| !wanted(k))
                        .min_by_key(|&k| self.slots[k].used)
                        .or_else(|| self.pick(&r.commit, &free));
                    if let Some(k) = k {
                        free.retain(|&x| x != k);
                        slot_of[i] = Some(k);
                    }
                }
            }
            let started: Vec<crate::Result<Running>> = wave
                .iter()
                .zip(&slot_of)
                .map(|(r, k)| match k {
                    Some(k) => self.spawn(*k, &r.commit, r.attempt),
                    None => Err(crate::Error::Interrupted),
                })
                .collect();
            out.extend(self.wait_all(started));
        }
        out
    }
}
