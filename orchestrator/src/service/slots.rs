//! Guest slots: bounds how many guests run at once across every job of one
//! `csdci serve` (`--max-guests`). A night takes a slot around each run; the
//! wait blocks on a condition variable (no polling).

use std::sync::{Condvar, Mutex};

/// A counting semaphore of guest slots.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot<'a> {
    slots: &'a Slots,
}

impl Slots {
    /// `max` slots (at least 1).
    pub fn new(max: usize) -> Self {
        Slots {
            max: max.max(1),
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// The number of slots.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Slots in use now.
    pub fn in_use(&self) -> usize {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a free slot and takes it.
    pub fn acquire(&self) -> Slot<'_> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= self.max {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot { slots: self }
    }

    /// Waits for a free slot and takes it, unless `stop` becomes true first
    /// (checked each second while waiting): `None` then.
    pub fn acquire_unless(&self, stop: impl Fn() -> bool) -> Option<Slot<'_>> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= self.max {
            if stop() {
                return None;
            }
            used = self
                .freed
                .wait_timeout(used, std::time::Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *used += 1;
        Some(Slot { slots: self })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut used = self.slots.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(1);
        self.slots.freed.notify_one();
    }
}

/// The default `--max-guests` for this host: one guest per 2 cores and per
/// 4 GiB of memory, at least 1.
pub fn default_max_guests() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(4, |kb| kb / (1024 * 1024));
    (cores / 2).min((mem_gib / 4) as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn at_most_max_are_held_at_once() {
        let slots = Arc::new(Slots::new(2));
        let peak = Arc::new(Mutex::new(0usize));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (slots, peak) = (slots.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _s = slots.acquire();
                    let n = slots.in_use();
                    let mut p = peak.lock().unwrap();
                    *p = (*p).max(n);
                    drop(p);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*peak.lock().unwrap(), 2);
        assert_eq!(slots.in_use(), 0);
        // A waiter asked to stop gives up instead of waiting for a slot.
        let one = Slots::new(1);
        let held = one.acquire();
        assert!(one.acquire_unless(|| true).is_none());
        drop(held);
        assert!(one.acquire_unless(|| true).is_some());
        assert!(default_max_guests() >= 1);
    }
}
