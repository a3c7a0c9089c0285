//! Several guests at once (`csdci bisect --max-guests W` with the QEMU
//! pipeline): a round's commits are built one after another (make is
//! parallel already; equal kernels come from the artifact cache), their runs
//! recorded and their guest roots made in order, then up to W guests boot at
//! once, each on a thread of its own with its own QEMU, root, console file
//! and `runs` row, and the results come back in the round's order. A signal
//! (or a cancelled web-started bisection) stops every guest; W guests must
//! fit the host's available memory.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::guest::{Booted, Staged, Staging};
use super::{LocalTester, LogReporter, Reporter, RunResult};
use crate::interrupt::{self, interrupted};
use crate::testers::RunRequest;
use crate::{Error, Result};

/// The share of the host's available memory W guests may take together.
pub const MEMORY_SHARE: f64 = 0.8;

/// Whether `workers` guests of `memory_mb` each fit in [`MEMORY_SHARE`] of
/// `available_mb` (the host's MemAvailable; unknown: they fit). The error
/// names the flags to change.
pub fn check_memory(workers: usize, memory_mb: u64, available_mb: Option<u64>) -> Result<()> {
    let Some(available) = available_mb else {
        return Ok(());
    };
    let want = workers as u64 * memory_mb;
    let room = (available as f64 * MEMORY_SHARE) as u64;
    if workers <= 1 || want <= room {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "--max-guests {workers} × --memory {memory_mb}M = {want}M: more than {}% of this host's available memory ({room}M of {available}M); lower --max-guests or --memory",
        (MEMORY_SHARE * 100.0) as u32
    )))
}

/// This host's available memory (MemAvailable of /proc/meminfo) in MiB.
pub fn available_memory_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024)
}

/// One guest's reporter in a batch: passes stages and findings on, and its
/// console as whole lines, so guests' lines never mix mid-line.
struct GuestReporter<'a, 'r> {
    shared: &'a Mutex<&'r mut (dyn Reporter + Send)>,
    partial: Vec<u8>,
}

impl GuestReporter<'_, '_> {
    fn with(&self, f: impl FnOnce(&mut dyn Reporter)) {
        let mut r = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut **r);
    }
}

impl Reporter for GuestReporter<'_, '_> {
    fn stage(&mut self, stage: &str) {
        self.with(|r| r.stage(stage));
    }
    fn build_line(&mut self, line: &str) {
        self.with(|r| r.build_line(line));
    }
    fn console(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        if let Some(n) = self.partial.iter().rposition(|&b| b == b'\n') {
            let lines: Vec<u8> = self.partial.drain(..=n).collect();
            self.with(|r| r.console(&lines));
        }
    }
    fn finding(&mut self, title: &str) {
        self.with(|r| r.finding(title));
    }
}

impl Drop for GuestReporter<'_, '_> {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.with(|r| r.console(&rest));
        }
    }
}

/// A run of a batch between its staging and its end.
struct Pending {
    index: usize,
    guest: Staged,
    build_s: f64,
    start: Instant,
}

impl LocalTester {
    /// Boots up to `workers` guests at once in [`run_batch`]
    /// (`--max-guests`); refused when that many guests of the spec's memory
    /// do not fit the host ([`check_memory`]).
    ///
    /// [`run_batch`]: crate::testers::Tester::run_batch
    pub fn with_workers(mut self, workers: usize) -> Result<Self> {
        check_memory(workers, self.opts.spec.memory_mb, available_memory_mb())?;
        self.workers = workers.max(1);
        Ok(self)
    }

    /// Runs `runs` (commits already prepared, or built here), up to
    /// [`LocalTester::with_workers`] guests at once; one result per run, in
    /// order.
    pub(crate) fn run_parallel(&mut self, runs: &[RunRequest]) -> Vec<Result<RunResult>> {
        let mut reporter = std::mem::replace(&mut self.reporter, Box::new(LogReporter));
        let mut out = Vec::with_capacity(runs.len());
        for wave in runs.chunks(self.workers.max(1)) {
            out.extend(self.wave(wave, reporter.as_mut()));
        }
        self.reporter = reporter;
        out
    }

    /// One wave of at most `workers` runs: built and staged in order, booted
    /// at once, concluded in order.
    fn wave(
        &mut self,
        wave: &[RunRequest],
        reporter: &mut (dyn Reporter + Send),
    ) -> Vec<Result<RunResult>> {
        let mut out: Vec<Option<Result<RunResult>>> = wave.iter().map(|_| None).collect();
        let mut pending = Vec::new();
        for (index, r) in wave.iter().enumerate() {
            if interrupted() || self.cancel.load(Ordering::SeqCst) {
                out[index] = Some(Err(Error::Interrupted));
                continue;
            }
            let start = Instant::now();
            let (b, build_s) = match self.built_for_run(&r.commit, start, reporter) {
                Ok(Ok(b)) => b,
                Ok(Err(done)) => {
                    out[index] = Some(Ok(done));
                    continue;
                }
                Err(e) => {
                    out[index] = Some(Err(e));
                    continue;
                }
            };
            match self.stage_guest(&r.commit, &b, reporter) {
                Ok(Staging::Ready(guest)) => pending.push(Pending {
                    index,
                    guest: *guest,
                    build_s,
                    start,
                }),
                Ok(Staging::Done(done)) => {
                    out[index] = Some(Ok(done.with_build_time(build_s, start)));
                }
                Err(e) => out[index] = Some(Err(e)),
            }
        }
        let booted = self.boot_all(&pending, reporter);
        for (p, b) in pending.into_iter().zip(booted) {
            let r = self
                .conclude(p.guest, b, reporter)
                .map(|r| r.with_build_time(p.build_s, p.start));
            out[p.index] = Some(r);
        }
        out.into_iter()
            .map(|r| r.unwrap_or(Err(Error::Interrupted)))
            .collect()
    }

    /// Boots every pending guest at once, each on its own thread (QEMU dies
    /// with the thread that started it; the thread keeps the work's cancel
    /// scope), and waits for all.
    fn boot_all(&self, pending: &[Pending], reporter: &mut (dyn Reporter + Send)) -> Vec<Booted> {
        // The accelerator probe (a first run on this host) once, here, not
        // by every guest at once; a failure shows in each guest's run.
        if let Some(p) = pending.first() {
            let cfg = p.guest.vm_config();
            let _ = crate::vm::accel::resolve(cfg.accel, &cfg.kernel, &cfg.data_dir);
        }
        let shared = Mutex::new(reporter);
        let scope = interrupt::current().unwrap_or_default();
        let cancel = &*self.cancel;
        std::thread::scope(|s| {
            let threads: Vec<_> = pending
                .iter()
                .map(|p| {
                    let (shared, scope) = (&shared, &scope);
                    s.spawn(move || {
                        interrupt::scoped(scope, || {
                            let mut r = GuestReporter {
                                shared,
                                partial: Vec::new(),
                            };
                            p.guest.boot(cancel, &mut r)
                        })
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_must_fit_four_fifths_of_the_available_memory() {
        // 4 × 4G = 16G of 20G available: exactly 80%, fits.
        assert!(check_memory(4, 4096, Some(20480)).is_ok());
        // 4 × 8G = 32G of 24G: refused, naming both flags and the numbers.
        let e = check_memory(4, 8192, Some(24576)).unwrap_err().to_string();
        for want in [
            "--max-guests 4",
            "--memory 8192M",
            "32768M",
            "80%",
            "24576M",
        ] {
            assert!(e.contains(want), "{want} missing: {e}");
        }
        assert!(matches!(
            check_memory(4, 8192, Some(24576)),
            Err(Error::Usage(_))
        ));
        // One guest is never refused here (RunSpec::validate checks it
        // against the host's RAM), nor an unknown host.
        assert!(check_memory(1, 1 << 20, Some(1024)).is_ok());
        assert!(check_memory(64, 1 << 20, None).is_ok());
    }

    #[test]
    fn a_guest_passes_its_console_on_in_whole_lines() {
        #[derive(Default)]
        struct Seen(Vec<Vec<u8>>);
        impl Reporter for Seen {
            fn console(&mut self, bytes: &[u8]) {
                self.0.push(bytes.to_vec());
            }
        }
        let mut seen = Seen::default();
        {
            let shared = Mutex::new(&mut seen as &mut (dyn Reporter + Send));
            let mut a = GuestReporter {
                shared: &shared,
                partial: Vec::new(),
            };
            let mut b = GuestReporter {
                shared: &shared,
                partial: Vec::new(),
            };
            a.console(b"[ 1.0] Linux ver");
            b.console(b"[ 2.0] smp: csd\n[ 2.1] x");
            a.console(b"sion 6.12\n");
            drop(b);
            a.console(b"tail");
        }
        assert_eq!(
            seen.0,
            [
                b"[ 2.0] smp: csd\n".to_vec(),
                b"[ 1.0] Linux version 6.12\n".to_vec(),
                b"[ 2.1] x".to_vec(),
                b"tail".to_vec(),
            ]
        );
    }
}
