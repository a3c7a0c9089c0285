//! CSD-lock debug reports (`CONFIG_CSD_LOCK_WAIT_DEBUG`, kernel/smp.c), grouped by
//! lock id.
//!
//! ```text
//! smp: csd: Detected non-responsive CSD lock (#1) on CPU#3, waiting 5000155348 ns for CPU#00 scf_handler_1+0x0/0x21 [scftorture](0xffff888003c1b4a0).
//! smp:     csd: CSD lock (#1) handling prior scf_handler_1+0x0/0x21 [scftorture](0x0) request.
//! smp: csd: Re-sending CSD lock (#1) IPI from CPU#03 to CPU#00
//! smp: csd: CSD lock (#1) got unstuck on CPU#03, CPU#00 released the lock.
//! ```
//! Each waiting call gets its own id; several ids waiting on one CSD address is the
//! signature of a lost or misrouted IPI.

use std::collections::BTreeMap;

use crate::CsdGroup;

/// Most lock ids kept; later ones are only counted.
const MAX_GROUPS: usize = 1024;

/// What one CSD line says.
#[derive(Debug, PartialEq)]
pub enum CsdEvent {
    /// "Detected"/"Continued non-responsive CSD lock".
    Waiting {
        /// Lock id (`#N`).
        id: u64,
        /// True for "Detected" (the first report of this id).
        first: bool,
        /// CPU that waits.
        waiter: Option<u32>,
        /// CPU that should run the function.
        target: Option<u32>,
        /// Wait so far, in ns (signed in the kernel).
        wait_ns: Option<i64>,
        /// Function name (symbol only).
        func: Option<String>,
        /// The function was printed whole (`name+0xoff/0xsize`), not cut short.
        func_whole: bool,
        /// The `info` argument, usually the CSD's data pointer.
        info: Option<String>,
    },
    /// "\tcsd: CSD lock (#N) handling prior F(I) request." / "unresponsive." / ...
    State {
        /// Lock id.
        id: u64,
        /// What the target CPU is doing.
        what: String,
    },
    /// "csd: Re-sending CSD lock (#N) IPI from CPU#a to CPU#b".
    Resent {
        /// Lock id.
        id: u64,
    },
    /// "csd: CSD lock (#N) got unstuck on CPU#a, CPU#b released the lock."
    Unstuck {
        /// Lock id.
        id: u64,
    },
}

fn num_after<'a>(s: &'a str, key: &str) -> Option<(&'a str, &'a str)> {
    let p = s.find(key)? + key.len();
    let rest = &s[p..];
    let end = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    Some((&rest[..end], &rest[end..]))
}

fn lock_id(s: &str) -> Option<u64> {
    num_after(s, "(#").and_then(|(n, _)| n.parse().ok())
}

fn cpu(s: &str) -> Option<u32> {
    s.parse::<i64>().ok().and_then(|v| u32::try_from(v).ok())
}

/// Bare symbol of `name+0x0/0x21 [module]`, and whether it is whole: `%pS` prints
/// a symbol with its offset, so a name without one was cut short (a console that
/// lost the rest of the line).
fn symbol(s: &str) -> Option<(String, bool)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(s.len());
    let whole = s[end..].starts_with("+0x") && s[end..].contains('/');
    (end > 0).then(|| (s[..end].to_string(), whole))
}

/// The function of a "handling prior F(I) request" state, printed whole.
fn prior_func(what: &str) -> Option<String> {
    let f = what.strip_prefix("handling prior ")?;
    symbol(f).filter(|(_, whole)| *whole).map(|(n, _)| n)
}

/// Parses a line (from "csd: " on) into an event.
pub fn parse(text: &str) -> Option<CsdEvent> {
    let rest = text.strip_prefix("csd: ")?;
    if let Some(tail) = rest
        .strip_prefix("Detected non-responsive CSD lock ")
        .map(|t| (true, t))
        .or_else(|| {
            rest.strip_prefix("Continued non-responsive CSD lock ")
                .map(|t| (false, t))
        })
    {
        let (first, tail) = tail;
        let id = lock_id(tail)?;
        let waiter = num_after(tail, "on CPU#").and_then(|(n, _)| cpu(n));
        let wait_ns = num_after(tail, "waiting ").and_then(|(n, _)| n.parse().ok());
        let (target, after) = match num_after(tail, " for CPU#") {
            Some((n, after)) => (cpu(n), Some(after)),
            None => (None, None),
        };
        let (mut func, mut info) = (None, None);
        let mut func_whole = false;
        if let Some(after) = after {
            // "FUNC(INFO)." possibly followed by whatever got glued to the line.
            match after
                .find('(')
                .and_then(|o| after[o..].find(')').map(|c| (o, o + c)))
            {
                Some((open, close)) => {
                    (func, func_whole) = split(symbol(&after[..open]));
                    info = Some(after[open + 1..close].to_string());
                }
                None => (func, func_whole) = split(symbol(after.trim_end().trim_end_matches('.'))),
            }
        }
        return Some(CsdEvent::Waiting {
            id,
            first,
            waiter,
            target,
            wait_ns,
            func,
            func_whole,
            info,
        });
    }
    if rest.starts_with("Re-sending CSD lock ") {
        return Some(CsdEvent::Resent { id: lock_id(rest)? });
    }
    if rest.starts_with("CSD lock ") && rest.contains("got unstuck") {
        return Some(CsdEvent::Unstuck { id: lock_id(rest)? });
    }
    if rest.starts_with("CSD lock ") {
        let id = lock_id(rest)?;
        let what = rest
            .find(") ")
            .map(|p| rest[p + 2..].trim_end().trim_end_matches('.').to_string())
            .unwrap_or_default();
        return Some(CsdEvent::State { id, what });
    }
    None
}

fn split(s: Option<(String, bool)>) -> (Option<String>, bool) {
    match s {
        Some((n, w)) => (Some(n), w),
        None => (None, false),
    }
}

/// Most distinct whole function names kept to complete cut-short ones.
const MAX_NAMES: usize = 64;

/// CSD groups by lock id.
#[derive(Default)]
pub struct CsdTracker {
    groups: BTreeMap<u64, CsdGroup>,
    /// Lock ids whose function was only seen cut short.
    cut_short: std::collections::BTreeSet<u64>,
    /// Whole function names any message printed, in order of appearance.
    whole_names: Vec<String>,
    /// Lines about lock ids beyond the first 1024 (only counted).
    pub dropped: u64,
}

impl CsdTracker {
    /// Records one event; returns true when it is the first report of a lock id.
    pub fn record(&mut self, ev: CsdEvent) -> bool {
        let id = match &ev {
            CsdEvent::Waiting { id, .. }
            | CsdEvent::State { id, .. }
            | CsdEvent::Resent { id }
            | CsdEvent::Unstuck { id } => *id,
        };
        let is_new = !self.groups.contains_key(&id);
        if is_new && self.groups.len() >= MAX_GROUPS {
            self.dropped += 1;
            return false;
        }
        let g = self.groups.entry(id).or_insert_with(|| CsdGroup {
            id,
            ..CsdGroup::default()
        });
        match ev {
            CsdEvent::Waiting {
                waiter,
                target,
                wait_ns,
                func,
                func_whole,
                info,
                ..
            } => {
                g.reports += 1;
                g.waiter_cpu = waiter.or(g.waiter_cpu);
                g.target_cpu = target.or(g.target_cpu);
                if let Some(f) = func {
                    let was_cut = g.func.is_none() || self.cut_short.contains(&id);
                    if func_whole {
                        if self.whole_names.len() < MAX_NAMES && !self.whole_names.contains(&f) {
                            self.whole_names.push(f.clone());
                        }
                        self.cut_short.remove(&id);
                        g.func = Some(f);
                    } else if was_cut && g.func.as_ref().is_none_or(|o| o.len() < f.len()) {
                        // A cut-short name never replaces a whole one.
                        self.cut_short.insert(id);
                        g.func = Some(f);
                    }
                }
                if info.is_some() {
                    g.csd = info;
                }
                if let Some(w) = wait_ns {
                    g.max_wait_ns = Some(g.max_wait_ns.map_or(w, |m| m.max(w)));
                }
            }
            CsdEvent::State { what, .. } => {
                if let Some(f) = prior_func(&what)
                    && self.whole_names.len() < MAX_NAMES
                    && !self.whole_names.contains(&f)
                {
                    self.whole_names.push(f);
                }
                g.target_state = Some(what);
            }
            CsdEvent::Resent { .. } => g.resent = true,
            CsdEvent::Unstuck { .. } => g.unstuck = true,
        }
        is_new
    }

    /// The group of lock `id`.
    pub fn get(&self, id: u64) -> Option<&CsdGroup> {
        self.groups.get(&id)
    }

    /// All groups, by id, with `shared_with` filled in and cut-short function names
    /// completed from the whole names other messages printed (the one most locks
    /// wait on, among those that complete it).
    pub fn finish(&self) -> Vec<CsdGroup> {
        let mut out: Vec<CsdGroup> = self.groups.values().cloned().collect();
        let waiting_on = |name: &str| {
            self.groups
                .iter()
                .filter(|(id, g)| !self.cut_short.contains(id) && g.func.as_deref() == Some(name))
                .count()
        };
        for g in &mut out {
            if !self.cut_short.contains(&g.id) {
                continue;
            }
            let Some(cut) = g.func.clone() else { continue };
            let mut best: Option<(&String, usize)> = None;
            for n in self.whole_names.iter().filter(|n| n.starts_with(&cut)) {
                let c = waiting_on(n);
                if best.is_none_or(|(_, b)| c > b) {
                    best = Some((n, c));
                }
            }
            if let Some((n, _)) = best {
                g.func = Some(n.clone());
            }
        }
        let addr_of = |g: &CsdGroup| g.csd.clone().filter(|c| is_address(c));
        for i in 0..out.len() {
            let Some(a) = addr_of(&out[i]) else { continue };
            let others: Vec<u64> = out
                .iter()
                .filter(|o| o.id != out[i].id && addr_of(o).as_deref() == Some(&a))
                .map(|o| o.id)
                .collect();
            out[i].shared_with = others;
        }
        out
    }
}

/// The function most of the groups' locks wait on (the earliest lock's among
/// equals): what a CSD report is titled by.
pub fn title_func(groups: &[CsdGroup]) -> Option<String> {
    let mut best: Option<(&str, usize)> = None;
    for g in groups {
        let Some(f) = g.func.as_deref() else { continue };
        let n = groups
            .iter()
            .filter(|o| o.func.as_deref() == Some(f))
            .count();
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((f, n));
        }
    }
    best.map(|(f, _)| f.to_string())
}

/// A real pointer, not NULL.
fn is_address(s: &str) -> bool {
    let h = s.trim_start_matches("0x");
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) && h.bytes().any(|b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_waiting_line() {
        let ev = parse("csd: Detected non-responsive CSD lock (#1) on CPU#3, waiting 5000155348 ns for CPU#00 scf_handler_1+0x0/0x21 [scftorture](0xffff888003c1b4a0).").unwrap();
        assert_eq!(
            ev,
            CsdEvent::Waiting {
                id: 1,
                first: true,
                waiter: Some(3),
                target: Some(0),
                wait_ns: Some(5000155348),
                func: Some("scf_handler_1".into()),
                func_whole: true,
                info: Some("0xffff888003c1b4a0".into()),
            }
        );
        let ev = parse("csd: Continued non-responsive CSD lock (#2) on CPU#1, waiting -5 ns for CPU#-1 do_sync_core+0x0/0x30(0x0).").unwrap();
        match ev {
            CsdEvent::Waiting {
                id,
                first,
                target,
                wait_ns,
                func,
                ..
            } => {
                assert_eq!((id, first, target, wait_ns), (2, false, None, Some(-5)));
                assert_eq!(func.as_deref(), Some("do_sync_core"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_other_lines() {
        assert_eq!(
            parse("csd: Re-sending CSD lock (#1) IPI from CPU#03 to CPU#00"),
            Some(CsdEvent::Resent { id: 1 })
        );
        assert_eq!(
            parse("csd: CSD lock (#1) got unstuck on CPU#03, CPU#00 released the lock."),
            Some(CsdEvent::Unstuck { id: 1 })
        );
        assert_eq!(
            parse(
                "csd: CSD lock (#4) handling prior scf_handler_1+0x0/0x21 [scftorture](0x0) request."
            ),
            Some(CsdEvent::State {
                id: 4,
                what: "handling prior scf_handler_1+0x0/0x21 [scftorture](0x0) request".into()
            })
        );
        assert_eq!(parse("csd: cnt(0000000): 0000->0000 queue"), None);
    }

    #[test]
    fn shared_address() {
        let mut t = CsdTracker::default();
        for (id, cpu) in [(1, 3), (2, 5)] {
            t.record(parse(&format!("csd: Detected non-responsive CSD lock (#{id}) on CPU#{cpu}, waiting 5000000000 ns for CPU#00 f+0x0/0x1(0xffff888000c6e0c0).")).unwrap());
        }
        let g = t.finish();
        assert_eq!(g[0].shared_with, vec![2]);
        assert_eq!(g[1].shared_with, vec![1]);
    }
}
