//! The table of kernel crash reports: which line starts a report ("header"), which
//! lines that contain a header are not crashes ("suppressions"), and how each kind of
//! report is turned into a title ("formats").
//!
//! Titles follow syzkaller's conventions so that they can be compared with its
//! dashboards and test corpus: the formats below are written to produce the same
//! titles for the same kernel messages. Order matters: the first group whose header a
//! line contains claims the line, and among formats matching at the same position the
//! first one wins.

use std::sync::LazyLock;

use regex::Regex;

use crate::FindingKind;
use crate::stack::Extractor;

/// One step of locating the guilty frame in a report.
pub enum Part {
    /// Advance to the first line matching this; its capture groups are frames.
    Line(Regex),
    /// Parse a stack trace from here (until the next trace starts).
    Trace,
}

/// How the guilty frame of a format is found.
pub struct StackFmt {
    /// Steps tried first.
    pub parts: Vec<Part>,
    /// Steps tried in turn when `parts` (and the alternatives before) find no frame.
    pub parts2: Vec<Vec<Part>>,
    /// Format-specific frames to skip (in addition to the generic ones).
    pub skip: Option<Regex>,
    /// Choice among the remaining frames.
    pub extractor: Extractor,
}

/// One way of titling a report.
pub struct Format {
    /// Matched anywhere in the report text; the earliest match wins.
    pub title: Regex,
    /// The title regex may span lines.
    pub multiline: bool,
    /// When present, must also match; its groups become the arguments.
    pub report: Option<Regex>,
    /// Title template: `{N}` is the N-th argument (capture groups, then frames).
    pub fmt: &'static str,
    /// Guilty-frame extraction, appended to the arguments.
    pub stack: Option<StackFmt>,
    /// Reports of this format carry no stack trace (no corruption check).
    pub no_stack_trace: bool,
    /// A report matched only by this format is truncated or garbled.
    pub corrupted: bool,
    /// Finding kind, when it differs from the group's.
    pub kind: Option<FindingKind>,
    /// Where in the report the guilty stack is looked for, when not at the title
    /// (given the title's captures and the report text).
    pub anchor: Option<fn(&regex::Captures, &str) -> Option<usize>>,
}

/// All formats that start with one header.
pub struct Group {
    /// The literal that starts a report.
    pub header: &'static str,
    /// Formats, in priority order.
    pub formats: Vec<Format>,
    /// Lines that contain the header but are not crashes.
    pub suppressions: Vec<Regex>,
    /// Default finding kind.
    pub kind: FindingKind,
    /// When present, a report that no specific format titles is a crash only if
    /// its first line matches this or it has a stack trace (a mere message that
    /// carries the header, or a fragment of a wrapped line, is not).
    pub evidence: Option<Regex>,
}

impl Group {
    /// Is `line` a report start of this group?
    pub fn matches(&self, line: &[u8]) -> bool {
        crate::find::contains(line, self.header.as_bytes()) && !self.suppressed_in(line)
    }

    /// Does a suppression of this group match `line`?
    pub fn suppressed_in(&self, line: &[u8]) -> bool {
        if self.suppressions.is_empty() {
            return false;
        }
        let text = String::from_utf8_lossy(line);
        self.suppressions.iter().any(|r| r.is_match(&text))
    }
}

/// Expands the placeholders shared by many patterns.
fn re(p: &str) -> Regex {
    let p = p
        .replace("{{ADDR}}", "0x[0-9a-f]+")
        .replace("{{PC}}", r"\[<?(?:0x)?[0-9a-f]+>?\]")
        .replace("{{FUNC}}", r"([a-zA-Z0-9_]+)(?:\.|\+)")
        .replace("{{SRC}}", r"([a-zA-Z0-9\-_/.]+\.[a-z]+:[0-9]+)");
    Regex::new(&p).unwrap_or_else(|e| panic!("bad built-in pattern {p:?}: {e}"))
}

const RIP: &str = r"(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:{{PC}} +){0,2}{{FUNC}}|(?:[0-9]+:)?0x[0-9a-f]+|(?:[0-9]+:)?{{PC}} +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))";
const CALL_TRACE: &str = r"(?:Call (?:T|t)race:)|(?:Backtrace:)";

fn line(p: &str) -> Part {
    Part::Line(re(p))
}

fn rip() -> Part {
    line(RIP)
}

fn call_trace() -> Part {
    line(CALL_TRACE)
}

fn stack(parts: Vec<Part>) -> StackFmt {
    StackFmt {
        parts,
        parts2: Vec::new(),
        skip: None,
        extractor: Extractor::First,
    }
}

/// The common "frames after Call Trace:" stack.
fn trace() -> StackFmt {
    stack(vec![call_trace(), Part::Trace])
}

/// RIP frame, then the call trace.
fn rip_trace() -> StackFmt {
    stack(vec![rip(), call_trace(), Part::Trace])
}

/// WARNINGs: the trace after the trapping RIP (or after Call Trace: on old kernels).
fn warning_stack(skip: &[&str]) -> StackFmt {
    let first = format!(r"(?:{RIP}|--- interrupt: [0-9]+ at {{{{FUNC}}}})");
    stack(vec![line(&first), Part::Trace])
        .parts2(vec![call_trace(), Part::Trace])
        .skip(skip)
}

impl StackFmt {
    fn parts2(mut self, p: Vec<Part>) -> Self {
        self.parts2.push(p);
        self
    }
    fn skip(mut self, s: &[&str]) -> Self {
        if !s.is_empty() {
            self.skip = Some(Regex::new(&s.join("|")).expect("built-in skip pattern"));
        }
        self
    }
    fn extractor(mut self, e: Extractor) -> Self {
        self.extractor = e;
        self
    }
}

fn f(title: &str, fmt: &'static str) -> Format {
    Format {
        multiline: title.contains(r"\n"),
        title: re(title),
        report: None,
        fmt,
        stack: None,
        no_stack_trace: false,
        corrupted: false,
        kind: None,
        anchor: None,
    }
}

impl Format {
    fn report(mut self, r: &str) -> Self {
        self.report = Some(re(r));
        self
    }
    fn stack(mut self, s: StackFmt) -> Self {
        self.stack = Some(s);
        self
    }
    fn no_stack(mut self) -> Self {
        self.no_stack_trace = true;
        self
    }
    fn corrupted(mut self) -> Self {
        self.corrupted = true;
        self
    }
    fn kind(mut self, k: FindingKind) -> Self {
        self.kind = Some(k);
        self
    }
    fn anchor(mut self, a: fn(&regex::Captures, &str) -> Option<usize>) -> Self {
        self.anchor = Some(a);
        self
    }
}

fn group(header: &'static str, kind: FindingKind, formats: Vec<Format>, supp: &[&str]) -> Group {
    Group {
        header,
        formats,
        suppressions: supp.iter().map(|s| re(s)).collect(),
        kind,
        evidence: None,
    }
}

fn bug_group() -> Group {
    use FindingKind as K;
    let kasan_in = r"BUG: KASAN: (?:[a-z\-]+) in {{FUNC}}";
    let kasan_free =
        r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}";
    let kmsan_parts = || {
        vec![
            Part::Trace,
            line(r"(Local variable .* created at:|Uninit was created at:)"),
            Part::Trace,
        ]
    };
    let kfence_in = r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}";
    group(
        "BUG:",
        K::Bug,
        vec![
            f("BUG: KASAN:", "KASAN: {1} {3} in {4}")
                .report(r"BUG: KASAN: ([a-z\-]+) in {{FUNC}}(?:.*\n)+?.*(Read|Write) (?:of size|at addr) (?:[0-9a-f]+)")
                .stack(stack(vec![line(kasan_in), call_trace(), Part::Trace]).skip(&[
                    "kernel_fault",
                    "tag_check",
                    "mem_abort",
                    "^el1_",
                    "^el1h_",
                ]))
                .kind(K::Kasan),
            f("BUG: KASAN:", "KASAN: invalid-free in {2}")
                .report(kasan_free)
                .stack(stack(vec![line(kasan_free), call_trace(), Part::Trace]).skip(&[
                    "slab_", "kfree", "vunmap", "vfree",
                ]))
                .kind(K::Kasan),
            f(
                r"BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)",
                "KASAN: {1} {2}",
            )
            .kind(K::Kasan),
            f("BUG: KASAN: (.*)", "KASAN: {1}").corrupted().kind(K::Kasan),
            f("BUG: KMSAN: kernel-usb-infoleak", "KMSAN: kernel-usb-infoleak in {2}")
                .report("BUG: KMSAN: kernel-usb-infoleak in {{FUNC}}")
                .stack(stack(kmsan_parts()).skip(&[
                    "alloc_skb",
                    "usb_submit_urb",
                    "usb_start_wait_urb",
                    "usb_bulk_msg",
                    "usb_interrupt_msg",
                    "usb_control_msg",
                ]))
                .no_stack()
                .kind(K::Kmsan),
            f("BUG: KMSAN:", "KMSAN: {1} in {3}")
                .report(r"BUG: KMSAN: ([a-z\-]+) in {{FUNC}}")
                .stack(stack(kmsan_parts()).skip(&[
                    "alloc_skb",
                    "netlink_ack",
                    "netlink_rcv_skb",
                    "_encrypt$",
                    "^(?:crypto|cipher|drbg|rng)_",
                ]))
                .no_stack()
                .kind(K::Kmsan),
            f("BUG: KCSAN: data-race", "KCSAN: {1}")
                .report("BUG: KCSAN: (.*)")
                .no_stack()
                .kind(K::Kcsan),
            f("BUG: KCSAN:", "KCSAN: {1}")
                .report("BUG: KCSAN: (.*)")
                .no_stack()
                .kind(K::Kcsan),
            f(
                r"BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in {{FUNC}}",
                "KFENCE: {1} {2} in {4}",
            )
            .stack(stack(vec![line(kfence_in), Part::Trace]))
            .kind(K::Kfence),
            f("BUG: KFENCE: invalid free in {{FUNC}}", "KFENCE: invalid free in {2}")
                .stack(stack(vec![line(kfence_in), Part::Trace]))
                .no_stack()
                .kind(K::Kfence),
            f("BUG: KFENCE: invalid (read|write) in {{FUNC}}", "KFENCE: invalid {1} in {3}")
                .stack(stack(vec![line(kfence_in), Part::Trace]))
                .kind(K::Kfence),
            f("BUG: KFENCE: memory corruption in {{FUNC}}", "KFENCE: memory corruption in {2}")
                .stack(stack(vec![line(kfence_in), Part::Trace]))
                .no_stack()
                .kind(K::Kfence),
            f(
                "BUG: (?:unable to handle kernel paging request|unable to handle page fault for address|Unable to handle kernel data access)",
                "BUG: unable to handle kernel paging request in {1}",
            )
            .stack(rip_trace()),
            f(
                "BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference|Kernel NULL pointer dereference)",
                "BUG: unable to handle kernel NULL pointer dereference in {1}",
            )
            .stack(rip_trace()),
            f("BUG: (?:unable to handle kernel|Unable to handle kernel)", "BUG: unable to handle kernel").corrupted(),
            f(
                "BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion|bad magic|wrong owner|wrong CPU|trylock failure on UP)",
                "BUG: {1} {2} in {3}",
            )
            .stack(trace().skip(&["spin_", "_lock", "_unlock"])),
            f("BUG: soft lockup", "BUG: soft lockup in {1}")
                .stack(rip_trace().extractor(Extractor::Stall))
                .kind(K::SoftLockup),
            f("BUG: .*still has locks held!", "BUG: still has locks held in {1}")
                .report(r"BUG: .*still has locks held!(?:.*\n)+?.*{{PC}} +{{FUNC}}")
                .kind(K::Lockdep),
            f("BUG: scheduling while atomic", "BUG: scheduling while atomic in {1}")
                .stack(trace().skip(&["schedule"])),
            f("BUG: lock held when returning to user space", "BUG: lock held when returning to user space in {1}")
                .report(r"BUG: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}")
                .no_stack()
                .kind(K::Lockdep),
            f("BUG: bad unlock balance detected!", "BUG: bad unlock balance in {1}")
                .stack(stack(vec![line("{{PC}} +{{FUNC}}"), call_trace(), Part::Trace]))
                .kind(K::Lockdep),
            f("BUG: held lock freed!", "BUG: held lock freed in {1}")
                .report(r"BUG: held lock freed!(?:.*\n)+?.*{{PC}} +{{FUNC}}")
                .kind(K::Lockdep),
            f("BUG: Bad rss-counter state", "BUG: Bad rss-counter state").no_stack(),
            f("BUG: non-zero nr_ptes on freeing mm", "BUG: non-zero nr_ptes on freeing mm").no_stack(),
            f("BUG: non-zero nr_pmds on freeing mm", "BUG: non-zero nr_pmds on freeing mm").no_stack(),
            f("BUG: Dentry .* still in use", "BUG: Dentry still in use in {1}")
                .report(r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]"),
            f("BUG: Bad page (state|cache)", "BUG: Bad page {1} in {2}").stack(
                stack(vec![line("page last allocated"), Part::Trace]).skip(&[
                    "(free|put|get|update|release)_page",
                    "free_unref",
                    "^_*folio",
                    "truncate_inode_pages",
                    "page_frag_free",
                    "alloc",
                    "vmap",
                    "page_owner",
                ]),
            ),
            f("BUG: Bad page map", "BUG: Bad page map"),
            f("BUG: workqueue lockup", "BUG: workqueue lockup").no_stack(),
            f(
                "BUG: sleeping function called from invalid context at (.*)",
                "BUG: sleeping function called from invalid context in {2}",
            )
            .stack(trace()),
            f(r"BUG: using ([a-z_]+)\(\) in preemptible", "BUG: using {1}() in preemptible code in {2}")
                .stack(trace().skip(&[
                    "dump_stack",
                    "preemption",
                    "preempt",
                    "debug_",
                    "processor_id",
                    "this_cpu",
                ])),
            f("BUG: workqueue leaked lock or atomic", "BUG: workqueue leaked lock or atomic in {1}")
                .report(r"BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: ([a-zA-Z0-9_]+)\n")
                .no_stack(),
            f("BUG: memory leak", "memory leak in {1}")
                .stack(
                    stack(vec![line(r"backtrace(?: \(crc [[:xdigit:]]*\))?:"), Part::Trace]).skip(&[
                        "kmemleak",
                        "mmap",
                        "kmem",
                        "slab",
                        "alloc",
                        "create_object",
                        "idr_get",
                        "list_lru_init",
                        "kasprintf",
                        "kvasprintf",
                        "pcpu_create",
                        "strdup",
                        "strndup",
                        "memdup",
                    ]),
                )
                .kind(K::MemoryLeak),
            f("BUG: .*stack guard page was hit at", "BUG: stack guard page was hit in {1}")
                .stack(rip_trace().extractor(Extractor::Stall)),
            f("BUG: Invalid wait context", "WARNING: locking bug in {1}")
                .stack(trace().skip(&["lock_sock", "release_sock"]))
                .kind(K::Lockdep),
            f(r"BUG:[[:space:]]*(?:\n|$)", "BUG: corrupted").corrupted(),
        ],
        &[
            "ODEBUG:",
            "Boot_DEBUG:",
            "xlog_status:",
            "DEBUG:",
            "BUG: no syscalls can create resource",
            // 2.6.3x x86 die_nmi(): a hard lockup (see hard_lockup_formats).
            "BUG: NMI Watchdog detected LOCKUP",
        ],
    )
}

fn warning_group() -> Group {
    use FindingKind as K;
    let mut g = group(
        "WARNING:",
        K::Warning,
        vec![
            f(r"WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)", "WARNING: ODEBUG bug in {1}")
                .stack(warning_stack(&[
                    "debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "vunmap", "vfree",
                    "__free_", "debug_check", "kobject_",
                ])),
            f(r"WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)", "WARNING: bad usercopy in {1}")
                .stack(warning_stack(&["usercopy", "__check"])),
            f(r"WARNING: .*lib/kobject\.c.* (?:kobject_|at)", "WARNING: kobject bug in {1}")
                .stack(warning_stack(&["kobject_"])),
            f(r"WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)", "WARNING: proc registration bug in {1}")
                .stack(warning_stack(&["proc_"])),
            f(r"WARNING: .*lib/refcount\.c.* (?:refcount_|at)", "WARNING: refcount bug in {1}")
                .stack(warning_stack(&["refcount", "kobject_"])),
            f(r"WARNING: .*kernel/locking/lockdep\.c.*lock_", "WARNING: locking bug in {1}")
                .stack(warning_stack(&["lock_sock", "release_sock"]))
                .kind(K::Lockdep),
            f("WARNING: .*still has locks held!", "WARNING: still has locks held in {1}")
                .report(r"WARNING: .*still has locks held!(?:.*\n)+?.*at: {{FUNC}}")
                .kind(K::Lockdep),
            f("WARNING: Nested lock was not taken", "WARNING: nested lock was not taken in {1}")
                .stack(warning_stack(&[]))
                .kind(K::Lockdep),
            f("WARNING: lock held when returning to user space", "WARNING: lock held when returning to user space in {1}")
                .report(r"WARNING: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}")
                .no_stack()
                .kind(K::Lockdep),
            f(r"WARNING: .*mm/.*\.c.* k?.?malloc", "WARNING: kmalloc bug in {1}")
                .stack(warning_stack(&["kmalloc", "krealloc", "slab", "kmem"])),
            f(r"WARNING: .*mm/vmalloc.c.*__vmalloc_node", "WARNING: zero-size vmalloc in {1}")
                .stack(warning_stack(&[])),
            f("WARNING: .* usb_submit_urb", "WARNING in {1}/usb_submit_urb").stack(warning_stack(&[
                "usb_submit_urb",
                "usb_start_wait_urb",
                "usb_bulk_msg",
                "usb_interrupt_msg",
                "usb_control_msg",
            ])),
            f(r"WARNING: {{SRC}} at 0x\d+, CPU#\d+", "WARNING in {2}").stack(warning_stack(&[])),
            f("WARNING: .* at {{SRC}} {{FUNC}}", "WARNING in {3}").stack(warning_stack(&[])),
            f("WARNING: {{SRC}} at {{FUNC}}", "WARNING in {3}").stack(warning_stack(&[])),
            f(r"WARNING: \[.*\] {{SRC}} at {{FUNC}}.*", "WARNING in {3}").stack(warning_stack(&[])),
            f("WARNING: possible circular locking dependency detected", "possible deadlock in {1}")
                .report(r"WARNING: possible circular locking dependency detected(?:.*\n)+?.*is trying to acquire lock")
                .stack(
                    stack(vec![
                        line("at: (?:{{PC}} +)?{{FUNC}}"),
                        line("at: (?:{{PC}} +)?{{FUNC}}"),
                        Part::Trace,
                    ])
                    .skip(&["process_one_work", "flush_workqueue", "drain_workqueue", "destroy_workqueue"]),
                )
                .kind(K::Lockdep),
            f("WARNING: possible irq lock inversion dependency detected", "possible deadlock in {1}")
                .report(r"WARNING: possible irq lock inversion dependency detected(?:.*\n)+?.*just changed the state of lock(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}")
                .kind(K::Lockdep),
            f("WARNING: .*-safe -> .*-unsafe lock order detected", "possible deadlock in {1}")
                .stack(stack(vec![line("which became (?:.*) at:"), Part::Trace]))
                .kind(K::Lockdep),
            f("WARNING: possible recursive locking detected", "possible deadlock in {1}")
                .report(r"WARNING: possible recursive locking detected(?:.*\n)+?.*is trying to acquire lock(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}")
                .kind(K::Lockdep),
            f("WARNING: inconsistent lock state", "inconsistent lock state in {2}")
                .report(r"WARNING: inconsistent lock state(?:.*\n)+?.*takes(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}")
                .stack(trace())
                .kind(K::Lockdep),
            f("WARNING: suspicious RCU usage", "WARNING: suspicious RCU usage in {2}")
                .report(r"WARNING: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}")
                .stack(trace().skip(&["rcu", "kmem", "slab"]))
                .kind(K::Lockdep),
            f(
                "WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value",
                "WARNING: kernel stack regs has bad '{1}' value",
            )
            .no_stack(),
            f(
                "WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value",
                "WARNING: kernel stack frame pointer has bad value",
            )
            .no_stack(),
            f("WARNING: bad unlock balance detected!", "WARNING: bad unlock balance in {1}")
                .stack(stack(vec![line("{{PC}} +{{FUNC}}"), call_trace(), Part::Trace]))
                .kind(K::Lockdep),
            f("WARNING: held lock freed!", "WARNING: held lock freed in {1}")
                .report(r"WARNING: held lock freed!(?:.*\n)+?.*at:(?: {{PC}})? +{{FUNC}}")
                .kind(K::Lockdep),
            f("WARNING: kernel stack regs .* has bad 'bp' value", "WARNING: kernel stack regs has bad value").no_stack(),
            f("WARNING: kernel stack frame pointer .* has bad value", "WARNING: kernel stack regs has bad value").no_stack(),
            f(r"WARNING:[[:space:]]*(?:\n|$)", "WARNING: corrupted").corrupted(),
        ],
        &[
            "WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
            "WARNING: workqueue cpumask: online intersect > possible intersect",
            "WARNING: [Tt]he mand mount option",
            r"WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1",
            "WARNING: Unprivileged eBPF is enabled with eIBRS",
            r"WARNING: fbcon: Driver '(.*)' missed to adjust virtual screen size (\((?:\d+)x(?:\d+) vs\. (?:\d+)x(?:\d+)\))",
            "WARNING: See https.* for mitigation options.",
            "WARNING: kernel not compiled with CPU_SRSO",
            r"EXT4-[Ff][Ss](?: \(.*\))?:",
            "(?i)warning: .* uses (deprecated v2 capabilities|wireless extensions)",
            r"XFS \(\w+\): WARNING",
            // 3.x reported hard lockups with WARN() from the perf callback; the
            // "Watchdog detected hard LOCKUP" line that follows starts the report.
            r"kernel/watchdog(?:_hld)?\.c:[0-9]+ watchdog_overflow_callback",
        ],
    );
    // WARN()'s own lines: "WARNING: CPU: 1 PID: 2 at f.c:3 fn", 2.6-3.x "WARNING: at
    // f.c:3 fn()", 6.16+ "WARNING: f.c:3 at fn, CPU#1: comm/2". Other "WARNING:"
    // messages (boot-time mitigation notes, say) are no crash without a stack.
    g.evidence = Some(re(
        r"CPU: ?[0-9]+ PID: [0-9]+ at |WARNING: at |WARNING: {{SRC}} at ",
    ));
    g
}

fn info_group() -> Group {
    use FindingKind as K;
    let old = |what: &str, tail: &str, fmt: &'static str| {
        f(&format!("INFO: {what}"), fmt)
            .report(&format!(
                r"INFO: {what} \](?:.*\n)+?.*{tail}(?:.*\n)+?.*at: {{{{PC}}}} +{{{{FUNC}}}}"
            ))
            .kind(K::Lockdep)
    };
    group(
        "INFO:",
        K::Other,
        vec![
            old(
                "possible circular locking dependency detected",
                "is trying to acquire lock",
                "possible deadlock in {1}",
            ),
            old(
                "possible irq lock inversion dependency detected",
                "just changed the state of lock",
                "possible deadlock in {1}",
            ),
            old(
                "SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
                "is trying to acquire",
                "possible deadlock in {1}",
            ),
            old(
                "possible recursive locking detected",
                "is trying to acquire lock",
                "possible deadlock in {1}",
            ),
            old(
                "inconsistent lock state",
                "takes",
                "inconsistent lock state in {1}",
            ),
            // csdci: RCU declines to dump stacks when a CSD lock is stuck; the CSD
            // report carries the evidence, so the title says so instead of "corrupted".
            f(
                r"INFO: rcu_\w+ detected stall, but suppressed full report due to a stuck CSD-lock",
                "INFO: rcu detected stall, suppressed due to stuck CSD-lock",
            )
            .no_stack()
            .kind(K::RcuStall),
            f(
                "INFO: rcu_(?:preempt|sched|bh|tasks(?:_trace|_rude)?) (?:self-)?detected(?: expedited)? stall",
                "INFO: rcu detected stall in {1}",
            )
            .stack(
                stack(vec![line("apic_timer_interrupt"), rip(), Part::Trace])
                    .parts2(vec![
                        line("(?:apic_timer_interrupt|Exception stack|el1h_64_irq)"),
                        Part::Trace,
                    ])
                    .skip(&["apic_timer_interrupt", "rcu"])
                    .extractor(Extractor::Stall),
            )
            .kind(K::RcuStall),
            f(
                "INFO: trying to register non-static key",
                "INFO: trying to register non-static key in {1}",
            )
            .stack(trace().skip(&["stack", "lock", "IRQ"]))
            .kind(K::Lockdep),
            f(
                "INFO: suspicious RCU usage",
                "INFO: suspicious RCU usage in {2}",
            )
            .report(r"INFO: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}")
            .stack(trace().skip(&["rcu", "kmem", "slab"]))
            .kind(K::Lockdep),
            f(
                r"INFO: task .*(?:\n.*)? blocked (?:in I/O wait )?for more than [0-9]+ seconds",
                "INFO: task hung in {1}",
            )
            .stack(trace().extractor(Extractor::Hang))
            .kind(K::HungTask),
            f(
                "INFO: task .* can't die for more than .* seconds",
                "INFO: task can't die in {1}",
            )
            .stack(trace().skip(&["schedule"]))
            .kind(K::HungTask),
            f("INFO: (Freed|Allocated) in (.*)", "INFO: {1} in {2}")
                .corrupted()
                .kind(K::Kasan),
            f(r"INFO:[[:space:]]*(?:\n|$)", "INFO: corrupted").corrupted(),
        ],
        &[
            "INFO: lockdep is turned off",
            "INFO: Stall ended before state dump start",
            "INFO: NMI handler",
            "INFO: recovery required on readonly filesystem",
            "(handler|interrupt).*took too long",
            "INFO: sys_.* is not present in /proc/kallsyms",
            "INFO: no syscalls can create resource",
            "rmt_storage:INFO:",
            "_INFO:",
        ],
    )
}

fn panic_group() -> Group {
    use FindingKind as K;
    group(
        "Kernel panic",
        K::Panic,
        vec![
            f("Kernel panic - not syncing: stack-protector:", "kernel panic: stack is corrupted in {1}")
                .report("Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: {{FUNC}}")
                .no_stack(),
            f("Kernel panic - not syncing: stack-protector:", "kernel panic: stack is corrupted in {1}")
                .report("Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: [a-f0-9]+")
                .stack(trace().skip(&["stack_chk"])),
            f("Kernel panic - not syncing: corrupted stack end", "kernel panic: corrupted stack end in {1}")
                .report("Kernel panic - not syncing: corrupted stack end detected inside scheduler")
                .stack(trace().skip(&["schedule", "retint_kernel"]).extractor(Extractor::Stall)),
            f("Kernel panic - not syncing: kernel stack overflow", "kernel stack overflow in {1}")
                .stack(trace().skip(&["bad_stack"]).extractor(Extractor::Stall)),
            f("Kernel panic - not syncing: Attempted to kill init!", "kernel panic: Attempted to kill init!"),
            f(
                "Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+",
                "kernel panic: Couldn't open N_TTY ldisc",
            ),
            f("Kernel panic - not syncing: Fatal exception", "kernel panic: Fatal exception").corrupted(),
            f("Kernel panic - not syncing: panic_on_warn set", "kernel panic: panic_on_warn set").corrupted(),
            f("Kernel panic - not syncing: hung_task: blocked tasks", "kernel panic: hung_task: blocked tasks").corrupted(),
            f("Kernel panic - not syncing: (.*)", "kernel panic: {1}"),
        ],
        &[],
    )
}

/// Single-format groups titled "X in FRAME" with the RIP frame and call trace.
fn rip_group(header: &'static str, title: &str, fmt: &'static str, kind: FindingKind) -> Group {
    group(header, kind, vec![f(title, fmt).stack(rip_trace())], &[])
}

/// Hard lockups: the perf/buddy watchdog's "Watchdog detected hard LOCKUP on cpu N"
/// (kernel/watchdog.c, 3.x-4.x watchdog_hld.c with "NMI watchdog: "), and 2.6's
/// die_nmi() "NMI Watchdog detected LOCKUP on CPU N" (x86_64) / "... on CPUN, eip"
/// (i386) / "BUG: NMI Watchdog detected LOCKUP on CPUN, ip" (2.6.3x x86).
///
/// The guilty frame is the code the NMI interrupted, as for soft lockups but without
/// the stall-style anchor search (interrupts are off while it spins, so the top
/// non-generic frame is the spinning code). It is found, in order: in the locked
/// CPU's "NMI backtrace for cpu N" when another CPU detected it (buddy detector,
/// all-CPU backtraces); at the interrupted RIP and the call trace after it
/// (show_regs()); at a RIP inside the NMI's own trace (dump_stack() on 4.14+, the
/// frames after it); in the call trace past the NMI frames (WARN() and
/// dump_stack() on older kernels, 2.6's RIPs that name no function).
fn hard_lockup_formats() -> Vec<Format> {
    let nmi_frames = [
        "^watchdog_",
        "hardlockup",
        "perf_event",
        "pmu_handle_irq",
        "handle_pmi",
        "nmi_|_nmi",
        "backtrace",
    ];
    let st = rip_trace()
        .parts2(vec![rip(), Part::Trace])
        .parts2(vec![call_trace(), Part::Trace])
        .skip(&nmi_frames);
    vec![
        f(
            "Watchdog detected hard LOCKUP on cpu ([0-9]+)|NMI Watchdog detected LOCKUP on CPU ?([0-9]+)",
            "BUG: hard lockup in {3}",
        )
        .stack(st)
        .anchor(nmi_backtrace_of_locked_cpu)
        .kind(FindingKind::HardLockup),
        f("hard LOCKUP", "BUG: hard lockup").corrupted(),
    ]
}

/// The start of the locked CPU's "NMI backtrace for cpu N" (its number is the
/// title's first non-empty capture), when the report has one.
fn nmi_backtrace_of_locked_cpu(caps: &regex::Captures, text: &str) -> Option<usize> {
    let cpu = caps.iter().skip(1).flatten().next()?.as_str();
    let line = format!("NMI backtrace for cpu {cpu}\n");
    let p = text.find(&line)?;
    (p == 0 || text.as_bytes()[p - 1] == b'\n').then_some(p)
}

fn build() -> Vec<Group> {
    use FindingKind as K;
    vec![
        bug_group(),
        warning_group(),
        info_group(),
        rip_group(
            "Unable to handle kernel",
            "Unable to handle kernel (paging request|NULL pointer dereference|access to user memory)",
            "BUG: unable to handle kernel {1} in {2}",
            K::Bug,
        ),
        group(
            "general protection fault",
            K::GeneralProtectionFault,
            vec![
                f(
                    "general protection fault.*:",
                    "general protection fault in {1}",
                )
                .stack(rip_trace()),
            ],
            &[
                r"general protection fault .* error:\d+ in ",
                // User space's trap (show_signal(): "traps: COMM[PID] general
                // protection fault ip:X sp:Y error:Z in LIB[...]"), also when a
                // mailer wrapped it apart.
                r"general protection fault ip:[0-9a-f]+ sp:[0-9a-f]+ error:",
                r"traps: .*general protection fault",
            ],
        ),
        rip_group(
            "stack segment: ",
            "stack segment: ",
            "stack segment fault in {1}",
            K::GeneralProtectionFault,
        ),
        panic_group(),
        group(
            "PANIC: double fault",
            K::Panic,
            vec![f("PANIC: double fault", "PANIC: double fault in {1}").stack(stack(vec![rip()]))],
            &[],
        ),
        group(
            "rust_kernel: panicked",
            K::Panic,
            vec![
                f("rust_kernel: panicked", "{1} in {2}")
                    .report(r"rust_kernel: panicked at [^\n]*?\n(.+?)\n")
                    .stack(trace().skip(&[r"__rustc::rust_begin_unwind"])),
            ],
            &[],
        ),
        group(
            "kernel BUG",
            K::Bug,
            vec![
                f("kernel BUG at mm/usercopy.c", "BUG: bad usercopy in {1}")
                    .stack(trace().skip(&["usercopy", "__check"])),
                f(
                    "kernel BUG at lib/list_debug.c",
                    "BUG: corrupted list in {1}",
                )
                .stack(trace()),
                f("kernel BUG at (.*)", "kernel BUG in {2}").stack(rip_trace().skip(&["^skb_"])),
            ],
            &[],
        ),
        group(
            "Kernel BUG",
            K::Bug,
            vec![f("Kernel BUG (.*)", "kernel BUG {1}")],
            &[],
        ),
        group(
            "BUG kmalloc-",
            K::Bug,
            vec![f(
                "BUG kmalloc-.*: Object already free",
                "BUG: Object already free",
            )],
            &[],
        ),
        group(
            "divide error:",
            K::Bug,
            vec![f("divide error: ", "divide error in {1}").stack(stack(vec![rip()]))],
            &[],
        ),
        group(
            "divide_error:",
            K::Bug,
            vec![f("divide_error: ", "divide error in {1}").stack(stack(vec![rip()]))],
            &[],
        ),
        group(
            "invalid opcode:",
            K::Bug,
            vec![f("invalid opcode: ", "invalid opcode in {1}").stack(stack(vec![rip()]))],
            &[],
        ),
        group(
            "UBSAN:",
            K::Ubsan,
            vec![
                f("UBSAN:", "UBSAN: undefined-behaviour in {1}")
                    .report("UBSAN: Undefined behaviour in")
                    .stack(trace().skip(&["ubsan", "overflow"])),
                f(
                    "UBSAN: array-index-out-of-bounds in",
                    "UBSAN: array-index-out-of-bounds in {1}",
                )
                .stack(trace().skip(&["ubsan", "overflow"])),
                f("UBSAN:", "UBSAN: {1} in {2}")
                    .report("UBSAN: (.*?) in")
                    .stack(trace().skip(&["ubsan", "overflow"])),
            ],
            &[],
        ),
        group(
            "Booting the kernel.",
            K::Other,
            vec![f("^Booting the kernel", "unexpected kernel reboot").no_stack()],
            &["Parsing ELF|Decompressing Linux|Unknown parameter '"],
        ),
        group(
            "unregister_netdevice: waiting for",
            K::Other,
            vec![
                f(
                    "unregister_netdevice: waiting for (?:.*) to become free",
                    "unregister_netdevice: waiting for DEV to become free",
                )
                .no_stack(),
            ],
            &[],
        ),
        group(
            "VFS: Close: file count is 0",
            K::Other,
            vec![
                f(
                    "VFS: Close: file count is 0",
                    "VFS: Close: file count is zero (use-after-free)",
                )
                .no_stack(),
            ],
            &[],
        ),
        group(
            "VFS: Busy inodes after unmount",
            K::Other,
            vec![
                f(
                    "VFS: Busy inodes after unmount",
                    "VFS: Busy inodes after unmount (use-after-free)",
                )
                .no_stack(),
            ],
            &[],
        ),
        rip_group(
            "Internal error:",
            "Internal error:",
            "Internal error in {1}",
            K::Oops,
        ),
        rip_group(
            "Unhandled fault:",
            "Unhandled fault:",
            "Unhandled fault in {1}",
            K::Oops,
        ),
        rip_group(
            "Alignment trap:",
            "Alignment trap:",
            "Alignment trap in {1}",
            K::Oops,
        ),
        group(
            "trusty: panic",
            K::Panic,
            vec![
                f(
                    "trusty: panic.* ASSERT FAILED",
                    "trusty: ASSERT FAILED: {1}",
                )
                .report(r"trusty: panic \(.*?\):(?: DEBUG)? ASSERT FAILED at \(.*?\): (.+)")
                .no_stack(),
                f(
                    "trusty: panic.* ASSERT FAILED.*: *(.*)",
                    "trusty: ASSERT FAILED: {1}",
                )
                .corrupted(),
                f("trusty: panic", "trusty: panic: {1}")
                    .report(r"trusty: panic \(.*?\): (.+)")
                    .no_stack(),
            ],
            &[],
        ),
        group(
            "fatal error:",
            K::Other,
            vec![f("fatal error:", "go runtime error").no_stack()],
            &["ALSA", "fatal error: cannot create timer"],
        ),
        group(
            "SYZFAIL:",
            K::Other,
            vec![f("SYZFAIL:(.*)", "SYZFAIL:{1}").no_stack()],
            &[],
        ),
        group(
            "SYZFATAL:",
            K::Other,
            vec![f("SYZFATAL:(.*)", "SYZFATAL:{1}").no_stack()],
            &[],
        ),
        group(
            "panic:",
            K::Panic,
            vec![
                f(
                    "panic: Sentry detected .* stuck task",
                    "panic: Sentry detected stuck tasks",
                )
                .no_stack(),
                f("panic:(.*)", "panic:{1}").no_stack(),
            ],
            &[
                "_panic:",
                "xlog_status:",
                r"ddb\.onpanic:",
                "evtlog_status:",
            ],
        ),
        rip_group("Oops: int3:", "Oops: int3:", "int3 in {1}", K::Oops),
        // csdci additions (not in syzkaller): they come last so that they never take a
        // line that a report above claims.
        group(
            "hard LOCKUP",
            K::HardLockup,
            hard_lockup_formats(),
            &["Kernel panic", "Hard LOCKUP"],
        ),
        group(
            "Watchdog detected LOCKUP",
            K::HardLockup,
            hard_lockup_formats(),
            &["Kernel panic"],
        ),
        // A bare x86 "Oops: 0000 [#1] SMP" whose "BUG:" line was lost.
        group(
            "Oops: ",
            K::Oops,
            vec![f(r"Oops: .*\[#[0-9]+\]", "Oops in {1}").stack(rip_trace())],
            &["Internal error: Oops", "Oops: int3:"],
        ),
        // The RCU grace-period kthread starved: RCU stalls follow.
        group(
            "kthread starved for",
            K::RcuStall,
            vec![
                f(
                    r"(rcu_\w+) kthread starved for",
                    "INFO: rcu kthread starved",
                )
                .no_stack(),
            ],
            &[],
        ),
    ]
}

/// The report table, built once.
pub static TABLE: LazyLock<Vec<Group>> = LazyLock::new(build);

/// Lines that start a second report but are commonly part of the first one.
pub fn is_report_start_ignore(line: &[u8]) -> bool {
    static IGNORES: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
        aho_corasick::AhoCorasick::new([
            "invalid opcode: 0000",
            "Kernel panic - not syncing",
            "unregister_netdevice: waiting for",
            "PANIC: double fault",
            "Internal error:",
            "kthread starved for",
        ])
        .expect("static patterns")
    });
    // "Oops:" lines belong to the report that precedes them (except x86 int3 traps,
    // which have no other header).
    IGNORES.is_match(line)
        || (crate::find::contains(line, b"Oops: ") && !crate::find::contains(line, b"Oops: int3:"))
}

/// Informational messages that carry a stack trace of their own; a report that
/// runs into one ends there.
pub const INFO_WITH_STACK: &[&str] = &[
    "vmalloc: allocation failure:",
    "FAULT_INJECTION: forcing a failure",
    "FAULT_FLAG_ALLOW_RETRY missing",
];

/// The group claiming `line`, if any.
pub fn group_of(line: &[u8]) -> Option<usize> {
    TABLE.iter().position(|g| g.matches(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_builds_and_claims_lines() {
        assert!(TABLE.len() > 20);
        assert_eq!(
            group_of(b"watchdog: BUG: soft lockup - CPU#1 stuck for 22s!").map(|i| TABLE[i].header),
            Some("BUG:")
        );
        assert_eq!(group_of(b"ODEBUG: object is on stack"), None);
        assert_eq!(
            group_of(b"NMI watchdog: Watchdog detected hard LOCKUP on cpu 3")
                .map(|i| TABLE[i].header),
            Some("hard LOCKUP")
        );
        for l in [
            &b"NMI Watchdog detected LOCKUP on CPU 1"[..],
            b"NMI Watchdog detected LOCKUP on CPU0, eip c011f0a5, registers:",
            b"BUG: NMI Watchdog detected LOCKUP on CPU3, ip ffffffff8103e3a4, registers:",
        ] {
            assert_eq!(
                group_of(l).map(|i| TABLE[i].header),
                Some("Watchdog detected LOCKUP")
            );
        }
    }
}
