//! Work a long-running csdci (`csdci serve`) runs in its own threads beside
//! the scheduler: bisections and runs the dashboard started, and the
//! scheduler's nights. Each piece has a [`Key`], a thread and a
//! [`Cancel`](crate::interrupt::Cancel): cancelling it stops it the way
//! SIGTERM stops the CLI (builds killed, the guest or `--run` command
//! stopped, the run journalled as interrupted, the bisection left to
//! resume). Every guest it boots takes a slot of the shared
//! [`Slots`](super::slots::Slots) (`--max-guests`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::interrupt::{self, Cancel};
use crate::service::slots::Slots;
use crate::testers::{Prepared, RunReport, RunRequest, Tester};

/// What a piece of work is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Driving bisection ID.
    Bisection(i64),
    /// The night of job NAME.
    Night(String),
    /// Testing one commit (the run's row id once it is recorded; a serial
    /// number before).
    Run(u64),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Bisection(id) => write!(f, "bisection #{id}"),
            Key::Night(job) => write!(f, "the night of {job}"),
            Key::Run(n) => write!(f, "run {n}"),
        }
    }
}

#[derive(Debug)]
struct Entry {
    cancel: Cancel,
    thread: Option<JoinHandle<()>>,
}

/// The work running in this process.
#[derive(Debug)]
pub struct Work {
    guests: Arc<Slots>,
    running: Mutex<HashMap<Key, Entry>>,
    serial: std::sync::atomic::AtomicU64,
}

/// Why work was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} runs already in this csdci serve")]
    Running(Key),
    #[error("cannot start a thread for {0}: {1}")]
    Thread(Key, String),
}

impl Work {
    /// No work yet; guests bounded by `guests`.
    pub fn new(guests: Arc<Slots>) -> Arc<Work> {
        Arc::new(Work {
            guests,
            running: Mutex::new(HashMap::new()),
            serial: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// The guest slots every piece of work shares.
    pub fn guests(&self) -> Arc<Slots> {
        self.guests.clone()
    }

    /// A fresh number for a [`Key::Run`].
    pub fn next_serial(&self) -> u64 {
        self.serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `f` in a thread of its own under `key`, inside the cancel scope
    /// of `key` (refused while work of the same key runs). The entry goes
    /// when `f` returns.
    pub fn spawn(
        self: &Arc<Self>,
        key: Key,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), Refused> {
        let mut running = self.lock();
        if running.contains_key(&key) {
            return Err(Refused::Running(key));
        }
        let cancel = Cancel::new();
        let (me, k, c) = (Arc::clone(self), key.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name(format!("{key}"))
            .spawn(move || {
                interrupt::scoped(&c, f);
                me.lock().remove(&k);
            })
            .map_err(|e| Refused::Thread(key.clone(), e.to_string()))?;
        running.insert(
            key,
            Entry {
                cancel,
                thread: Some(thread),
            },
        );
        Ok(())
    }

    /// Runs `f` on the calling thread under `key` (a night the scheduler
    /// started in its own thread), so that [`Work::cancel`] reaches it.
    pub fn run_here<R>(&self, key: Key, f: impl FnOnce() -> R) -> R {
        let cancel = Cancel::new();
        self.lock().insert(
            key.clone(),
            Entry {
                cancel: cancel.clone(),
                thread: None,
            },
        );
        struct Remove<'a>(&'a Work, Key);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                self.0.lock().remove(&self.1);
            }
        }
        let _remove = Remove(self, key);
        interrupt::scoped(&cancel, f)
    }

    /// Whether work `key` runs now.
    pub fn is_running(&self, key: &Key) -> bool {
        self.lock().contains_key(key)
    }

    /// The work running now.
    pub fn running(&self) -> Vec<Key> {
        self.lock().keys().cloned().collect()
    }

    /// Asks work `key` to stop (it ends on its own soon after: the guest is
    /// stopped, the run journalled as interrupted); false when none runs.
    pub fn cancel(&self, key: &Key) -> bool {
        match self.lock().get(key) {
            Some(e) => {
                e.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Waits for the threads [`Work::spawn`] started (the caller asked them
    /// to stop first, e.g. by SIGTERM).
    pub fn join_all(&self) {
        let threads: Vec<JoinHandle<()>> = self
            .lock()
            .values_mut()
            .filter_map(|e| e.thread.take())
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A tester whose every run holds a guest slot (waiting, interruptibly, for
/// one), so the work of a `csdci serve` never boots more than `--max-guests`
/// guests at once.
pub struct SlotTester {
    inner: Box<dyn Tester>,
    guests: Arc<Slots>,
}

impl SlotTester {
    pub fn new(inner: Box<dyn Tester>, guests: Arc<Slots>) -> Self {
        SlotTester { inner, guests }
    }
}

impl Tester for SlotTester {
    fn prepare(&mut self, commit: &str) -> crate::Result<Prepared> {
        self.inner.prepare(commit)
    }

    fn run_once(&mut self, commit: &str, attempt: u32) -> crate::Result<RunReport> {
        let _slot = self
            .guests
            .acquire_unless(interrupt::interrupted)
            .ok_or(crate::Error::Interrupted)?;
        self.inner.run_once(commit, attempt)
    }

    fn workers(&self) -> usize {
        self.inner.workers().min(self.guests.max()).max(1)
    }

    fn run_batch(&mut self, runs: &[RunRequest]) -> Vec<crate::Result<RunReport>> {
        // One slot per run of the batch (never more than the bound).
        let mut slots = Vec::new();
        for _ in runs {
            match self.guests.acquire_unless(interrupt::interrupted) {
                Some(s) => slots.push(s),
                None => {
                    return runs
                        .iter()
                        .map(|_| Err(crate::Error::Interrupted))
                        .collect();
                }
            }
        }
        self.inner.run_batch(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cancel_reaches_the_work_and_the_entry_goes() {
        let work = Work::new(Arc::new(Slots::new(1)));
        let (tx, rx) = std::sync::mpsc::channel();
        work.spawn(Key::Bisection(4), move || {
            while !interrupt::interrupted() {
                std::thread::sleep(Duration::from_millis(10));
            }
            tx.send(()).unwrap();
        })
        .unwrap();
        assert!(work.is_running(&Key::Bisection(4)));
        assert_eq!(
            work.spawn(Key::Bisection(4), || {}),
            Err(Refused::Running(Key::Bisection(4)))
        );
        assert!(!work.cancel(&Key::Bisection(5)));
        assert!(work.cancel(&Key::Bisection(4)));
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        work.join_all();
        assert!(!work.is_running(&Key::Bisection(4)));
        // The rest of the process was not interrupted.
        assert!(!interrupt::interrupted());
        let n = work.run_here(Key::Night("j".into()), || work.running().len());
        assert_eq!(n, 1);
        assert!(work.running().is_empty());
    }

    /// Counts the runs going on at once across every tester sharing it.
    struct Busy {
        now: Arc<std::sync::atomic::AtomicUsize>,
        peak: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Tester for Busy {
        fn prepare(&mut self, _: &str) -> crate::Result<Prepared> {
            Ok(Prepared::Ready { artifact_id: None })
        }
        fn run_once(&mut self, _: &str, _: u32) -> crate::Result<RunReport> {
            use std::sync::atomic::Ordering::SeqCst;
            let n = self.now.fetch_add(1, SeqCst) + 1;
            self.peak.fetch_max(n, SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            self.now.fetch_sub(1, SeqCst);
            Ok(RunReport {
                outcome: crate::testers::RunOutcome::Pass,
                analysis: None,
                console_log: None,
                run_id: None,
                seconds: 0.02,
                exposure: None,
            })
        }
    }

    #[test]
    fn work_sharing_the_slots_never_runs_more_guests_than_max() {
        let work = Work::new(Arc::new(Slots::new(2)));
        let now = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for id in 0..5 {
            let busy = Busy {
                now: now.clone(),
                peak: peak.clone(),
            };
            let guests = work.guests();
            work.spawn(Key::Bisection(id), move || {
                let mut t = SlotTester::new(Box::new(busy), guests);
                for a in 0..4 {
                    t.run_once("c", a).unwrap();
                }
            })
            .unwrap();
        }
        work.join_all();
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A cancelled one waiting for a slot gives up (interrupted).
        let one = Work::new(Arc::new(Slots::new(1)));
        let held = one.guests();
        let _slot = held.acquire();
        let (tx, rx) = std::sync::mpsc::channel();
        let busy = Busy {
            now: now.clone(),
            peak: peak.clone(),
        };
        let guests = one.guests();
        one.spawn(Key::Bisection(9), move || {
            let mut t = SlotTester::new(Box::new(busy), guests);
            tx.send(t.run_once("c", 0).map(|_| ())).unwrap();
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(one.cancel(&Key::Bisection(9)));
        let r = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(r, Err(crate::Error::Interrupted)), "{r:?}");
    }
}
