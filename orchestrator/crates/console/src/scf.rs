//! scftorture's own console output (kernel/scftorture.c):
//!
//! ```text
//! scftorture: --- Start of test:  verbose=1 holdoff=10 ...
//! scftorture:  scf_invoked_count ver: 55450 resched: 0 single: 1/2 ... ste: 0 stnmie: 0 stnmoe: 0 staf: 0
//! scftorture:  !!! scf_invoked_count VER: ... ste: 1 stnmie: 0 stnmoe: 0 staf: 0
//! scf_handler: Memory-ordering failure, scfs_prim: 1.
//! scftorture: --- End of test: SUCCESS:  verbose=1 ...
//! ```
//!
//! With `CONFIG_HOTPLUG_CPU` the stats line carries torture.c's CPU hotplug
//! counters (`onoff: ONLINED/ATTEMPTS:OFFLINED/ATTEMPTS min,max:min,max
//! sum:sum (HZ=n)`), and the kernel announces each hotplug (x86 smpboot.c):
//!
//! ```text
//! scftorture:  scf_invoked_count VER: 15568 ... all: 367/357 onoff: 3/3:4/4 8,19:2,9 41:17 (HZ=250) ste: 0 ...
//! smpboot: CPU 2 is now offline
//! smpboot: Booting Node 0 Processor 2 APIC 0x2
//! ```

use crate::ScfOnoff;

/// What one scftorture line says.
#[derive(Debug, PartialEq, Default)]
pub struct ScfLine {
    /// "--- Start of test".
    pub start: bool,
    /// Result of an "--- End of test: R" line.
    pub end: Option<String>,
    /// `scf_invoked_count` of a stats line.
    pub invocations: Option<u64>,
    /// Error counters (ste, stnmie, stnmoe, staf) of a stats line.
    pub errors: Option<[u64; 4]>,
    /// A stats line carrying scftorture's "!!!" error flag.
    pub bang: bool,
    /// CPU hotplug counters of a stats line (`onoff: a/b:c/d`).
    pub onoff: Option<ScfOnoff>,
}

/// A CPU hotplug the kernel announced.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum CpuEvent {
    /// "CPU N is now offline".
    Offline(u32),
    /// "Booting Node M Processor N APIC ..." (printed for CPUs brought up
    /// after boot; boot itself prints "Booting SMP configuration").
    Online(u32),
}

/// The prefix of the kernel's x86 CPU bring-up and teardown messages.
pub const SMPBOOT: &str = "smpboot: ";

/// Reads a CPU hotplug announcement ("smpboot: CPU 2 is now offline",
/// "smpboot: Booting Node 0 Processor 2 APIC 0x2").
pub fn cpu_event(text: &str) -> Option<CpuEvent> {
    let rest = &text[text.find(SMPBOOT)? + SMPBOOT.len()..];
    if let Some(r) = rest.strip_prefix("CPU ")
        && let Some((n, tail)) = r.split_once(' ')
        && tail.trim_end().starts_with("is now offline")
    {
        return n.parse().ok().map(CpuEvent::Offline);
    }
    if let Some(r) = rest.strip_prefix("Booting Node ") {
        let p = r.find(" Processor ")? + " Processor ".len();
        let n: String = r[p..].chars().take_while(|c| c.is_ascii_digit()).collect();
        return n.parse().ok().map(CpuEvent::Online);
    }
    None
}

/// The numbers of `onoff: ONL/ONLA:OFFL/OFFLA`.
fn onoff(text: &str) -> Option<ScfOnoff> {
    let rest = &text[text.find(" onoff: ")? + " onoff: ".len()..];
    let field = rest.split_whitespace().next()?;
    let (on, off) = field.split_once(':')?;
    let pair = |s: &str| -> Option<(u64, u64)> {
        let (a, b) = s.split_once('/')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let (online, online_attempts) = pair(on)?;
    let (offline, offline_attempts) = pair(off)?;
    Some(ScfOnoff {
        online,
        online_attempts,
        offline,
        offline_attempts,
    })
}

fn number_after(s: &str, key: &str) -> Option<u64> {
    let p = s.find(key)? + key.len();
    let digits: String = s[p..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Parses a line that contains scftorture output (or the tail of a stats line).
pub fn parse(text: &str) -> ScfLine {
    let mut out = ScfLine::default();
    if let Some(p) = text.find("scftorture: ") {
        let rest = &text[p + "scftorture: ".len()..];
        if rest.contains("--- Start of test") {
            out.start = true;
        }
        if let Some(q) = rest.find("--- End of test: ") {
            let r: String = rest[q + "--- End of test: ".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !r.is_empty() {
                out.end = Some(r);
            }
        }
        // "!!!" on a stats line means nonzero error counters; on other lines it
        // flags a setup message ("built as module, weight_resched ignored").
        if rest.trim_start().starts_with("!!!") && rest.contains("scf_invoked_count") {
            out.bang = true;
        }
    }
    if let Some(p) = text.find("scf_invoked_count ") {
        let rest = &text[p + "scf_invoked_count ".len()..];
        // "ver: N" or "VER: N"
        out.invocations = rest.find(": ").and_then(|q| number_after(&rest[q..], ":"));
    }
    out.onoff = onoff(text);
    if text.contains(" stnmie: ") {
        let ste = number_after(text, "ste:");
        let stnmie = number_after(text, "stnmie:");
        let stnmoe = number_after(text, "stnmoe:");
        let staf = number_after(text, "staf:");
        if let (Some(a), Some(b), Some(c), Some(d)) = (ste, stnmie, stnmoe, staf) {
            out.errors = Some([a, b, c, d]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_line() {
        let l = parse(
            "scftorture:  scf_invoked_count ver: 55450 resched: 10 single: 1/2 single_ofl: 0/0 single_rpc: 3 single_rpc_ofl: 0 many: 4/5 all: 6/7 ste: 0 stnmie: 1 stnmoe: 2 staf: 3",
        );
        assert_eq!(l.invocations, Some(55450));
        assert_eq!(l.errors, Some([0, 1, 2, 3]));
        assert!(!l.bang);
        let l = parse(
            "scftorture:  !!! scf_invoked_count VER: 7 resched: 0 ste: 1 stnmie: 0 stnmoe: 0 staf: 0",
        );
        assert!(l.bang);
        assert_eq!(l.invocations, Some(7));
    }

    #[test]
    fn hotplug_counters_of_a_stats_line() {
        // A real stats line (csdci run, 6.12 under TCG, no hotplug asked for).
        let l = parse(
            "[   18.648714] scftorture:  scf_invoked_count VER: 15568 resched: 0 single: 3264/2907 single_ofl: 0/0 single_rpc: 2932 single_rpc_ofl: 0 many: 707/724 all: 367/357 onoff: 0/0:0/0 -1,0:-1,0 0:0 (HZ=250) ste: 0 stnmie: 0 stnmoe: 0 staf: 0",
        );
        assert_eq!(l.invocations, Some(15568));
        assert_eq!(l.errors, Some([0, 0, 0, 0]));
        assert_eq!(l.onoff, Some(ScfOnoff::default()));
        let l = parse(
            "scftorture:  scf_invoked_count VER: 9 all: 1/1 onoff: 3/4:5/7 8,19:2,9 41:17 (HZ=250) ste: 0 stnmie: 0 stnmoe: 0 staf: 0",
        );
        assert_eq!(
            l.onoff,
            Some(ScfOnoff {
                online: 3,
                online_attempts: 4,
                offline: 5,
                offline_attempts: 7,
            })
        );
        // The Start line names the parameters, not counters.
        let start = "scftorture: --- Start of test:  verbose=1 holdoff=0 longwait=0 nthreads=4 onoff_holdoff=5 onoff_interval=10 shutdown_secs=0";
        assert_eq!(parse(start).onoff, None);
        // A kernel without CPU hotplug prints no onoff field.
        assert_eq!(
            parse(
                "scftorture:  scf_invoked_count ver: 7 all: 1/1 ste: 0 stnmie: 0 stnmoe: 0 staf: 0"
            )
            .onoff,
            None
        );
    }

    #[test]
    fn cpu_hotplug_announcements() {
        assert_eq!(
            cpu_event("[   25.104021] smpboot: CPU 2 is now offline"),
            Some(CpuEvent::Offline(2))
        );
        assert_eq!(
            cpu_event("[   25.631877] smpboot: Booting Node 0 Processor 13 APIC 0xd"),
            Some(CpuEvent::Online(13))
        );
        for other in [
            "[    0.205888] smpboot: x86: Booting SMP configuration:",
            "[    1.244963] smpboot: Total of 8 processors activated (21281.99 BogoMIPS)",
            "[    0.181575] smpboot: CPU0: AMD QEMU TCG CPU version 2.5+ (family: 0xf, model: 0x6b, stepping: 0x1)",
            "CPU 2 is now offline",
        ] {
            assert_eq!(cpu_event(other), None, "{other}");
        }
    }

    /// Part of a real console: `csdci run --vcpus 4 --load tlb --scftorture
    /// "nthreads=4 onoff_holdoff=2 onoff_interval=50"` on Linux 6.12 (TCG).
    const HOTPLUG_CONSOLE: &str = r#"csdci: tlb shootdowns at workload start: 4
csdci: workload running for 20 s
csdci: background load started: 1 process(es) at a time, one thread on each of 4 CPUs, 10 ms each, 256 KiB maps, nice 19
[    6.170662] process 108 (csdci-tlbload) no longer affine to cpu1
[    6.394439] smpboot: CPU 1 is now offline
[    6.645938] process 122 (csdci-tlbload) no longer affine to cpu3
[    6.822554] smpboot: CPU 3 is now offline
[    7.354384] smpboot: CPU 2 is now offline
[    7.571834] smpboot: Booting Node 0 Processor 2 APIC 0x2
[    8.207731] process 202 (csdci-tlbload) no longer affine to cpu2
[    8.276949] smpboot: CPU 2 is now offline
[    8.599414] smpboot: Booting Node 0 Processor 2 APIC 0x2
[    9.115766] smpboot: Booting Node 0 Processor 3 APIC 0x3
[    9.379729] smpboot: Booting Node 0 Processor 1 APIC 0x1
[    9.394706] APIC: Stale IRR: 10000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000 ISR: 00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000
[   10.111881] process 351 (csdci-tlbload) no longer affine to cpu1
[   10.278508] smpboot: CPU 1 is now offline
[   11.335692] process 392 (csdci-tlbload) no longer affine to cpu2
[   11.398382] smpboot: CPU 2 is now offline
[   11.635980] smpboot: Booting Node 0 Processor 1 APIC 0x1
[   12.091374] smpboot: Booting Node 0 Processor 2 APIC 0x2
[   12.570454] smpboot: CPU 3 is now offline
[   12.834694] process 468 (csdci-tlbload) no longer affine to cpu2
[   12.980866] smpboot: CPU 2 is now offline
[   13.266617] process 492 (csdci-tlbload) no longer affine to cpu1
[   13.306505] smpboot: CPU 1 is now offline
[   13.519755] smpboot: Booting Node 0 Processor 2 APIC 0x2
[   26.598741] scftorture:  scf_invoked_count VER: 72494 resched: 0 single: 77003/68197 single_ofl: 54166/48203 single_rpc: 67655 single_rpc_ofl: 0 many: 16994/17179 all: 8525/8525 onoff: 22/22:24/24 6,301:18,86 796:1073 (HZ=250) ste: 0 stnmie: 0 stnmoe: 0 staf: 0
[   26.599448] scftorture:  scf_invoked_count VER: 72494 resched: 0 single: 77003/68197 single_ofl: 54166/48203 single_rpc: 67655 single_rpc_ofl: 0 many: 16994/17179 all: 8525/8525 onoff: 22/22:24/24 6,301:18,86 796:1073 (HZ=250) ste: 0 stnmie: 0 stnmoe: 0 staf: 0
[   26.599705] scftorture: --- End of test: SUCCESS:  verbose=0 holdoff=0 longwait=0 nthreads=4 onoff_holdoff=2 onoff_interval=50 shutdown_secs=0 stat_interval=60 stutter=5 use_cpus_read_lock=0, weight_resched=0, weight_single=-1, weight_single_rpc=-1, weight_single_wait=-1, weight_many=-1, weight_many_wait=-1, weight_all=-1, weight_all_wait=-1
"#;

    #[test]
    fn a_real_hotplug_console_is_counted_in_the_stats() {
        let a = crate::analyze(HOTPLUG_CONSOLE.as_bytes());
        let s = &a.scftorture;
        assert_eq!(s.cpus_offlined, 9);
        assert_eq!(s.cpus_onlined, 7);
        assert_eq!(
            s.onoff,
            Some(ScfOnoff {
                online: 22,
                online_attempts: 22,
                offline: 24,
                offline_attempts: 24,
            })
        );
        assert_eq!(s.invocations, Some(72494));
        assert_eq!(s.result.as_deref(), Some("SUCCESS"));
        assert!(a.findings.is_empty(), "{:?}", a.findings);
        // The same in chunks of any size.
        for size in [1, 7, 64, 500] {
            let mut an = crate::Analyzer::new();
            for c in HOTPLUG_CONSOLE.as_bytes().chunks(size) {
                an.feed(c);
            }
            assert_eq!(&an.finish().scftorture, s, "chunks of {size}");
        }
    }

    #[test]
    fn setup_messages_are_not_errors() {
        assert!(!parse("scftorture: !!! built as module, weight_resched ignored").bang);
    }

    #[test]
    fn start_and_end() {
        assert!(parse("scftorture: --- Start of test:  verbose=1 holdoff=10").start);
        assert_eq!(
            parse("scftorture: --- End of test: SUCCESS:  verbose=1")
                .end
                .as_deref(),
            Some("SUCCESS")
        );
        assert_eq!(
            parse("scftorture: --- End of test: FAILURE:  verbose=1")
                .end
                .as_deref(),
            Some("FAILURE")
        );
    }
}
