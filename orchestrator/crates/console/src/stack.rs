//! Stack traces: frame lines, generic frames to skip, and choosing the guilty frame.
//!
//! The guilty frame is the first frame of the relevant trace that is not generic
//! infrastructure (sanitizer runtime, locking, printk, list helpers, ...). Lockups and
//! stalls loop across several functions, so for them a representative frame deeper in
//! the stack is chosen: the caller of the first "dispatch" frame (syscall entry,
//! workqueue, timer, ...). Hung tasks are grouped by what they wait on.

use std::sync::LazyLock;

use regex::Regex;

/// Parses a frame line `^ *([<pc>] ){0,2}NAME(+|.)` and returns NAME.
///
/// NAME must be followed by `+` (offset) or `.` (a compiler suffix such as `.cold`),
/// so symbolized inline frames (`name file.c:12 [inline]`) do not count. Kernels
/// before 4.9 print the first frame of a stack on the line that names it
/// (` <IRQ>  [<pc>] name+0x1/0x2`, ` <<EOE>>  <IRQ>  [<pc>] ...`): those markers
/// are skipped.
pub fn frame_name(line: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    while i < line.len() && line[i] == b' ' {
        i += 1;
    }
    for _ in 0..3 {
        match stack_marker_end(line, i) {
            Some(end) => {
                i = end;
                while i < line.len() && line[i] == b' ' {
                    i += 1;
                }
            }
            None => break,
        }
    }
    for _ in 0..2 {
        if let Some(end) = pc_at(line, i)
            && line.get(end) == Some(&b' ')
        {
            i = end + 1;
            continue;
        }
        break;
    }
    let start = i;
    while i < line.len() && (line[i].is_ascii_alphanumeric() || line[i] == b'_') {
        i += 1;
    }
    if i > start && matches!(line.get(i), Some(b'+') | Some(b'.')) {
        Some(&line[start..i])
    } else {
        None
    }
}

/// Parses a stack marker followed by a blank (`<IRQ> `, `<NMI> `, `<EOI> `,
/// `<<EOE>> `) at `i`; returns the index of the blank.
fn stack_marker_end(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    let open = s[i.min(s.len())..]
        .iter()
        .take(2)
        .take_while(|&&b| b == b'<')
        .count();
    if open == 0 {
        return None;
    }
    j += open;
    let st = j;
    while j < s.len() && s[j].is_ascii_uppercase() {
        j += 1;
    }
    if j == st || j - st > 5 {
        return None;
    }
    for _ in 0..open {
        if s.get(j) != Some(&b'>') {
            return None;
        }
        j += 1;
    }
    (s.get(j) == Some(&b' ')).then_some(j)
}

/// Parses `[<?(0x)?hex>?]` at `i`; returns the index after `]`.
fn pc_at(s: &[u8], i: usize) -> Option<usize> {
    if s.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    if s.get(j) == Some(&b'<') {
        j += 1;
    }
    if s[j.min(s.len())..].starts_with(b"0x") {
        j += 2;
    }
    let st = j;
    while j < s.len() && matches!(s[j], b'0'..=b'9' | b'a'..=b'f') {
        j += 1;
    }
    if j == st {
        return None;
    }
    if s.get(j) == Some(&b'>') {
        j += 1;
    }
    (s.get(j) == Some(&b']')).then_some(j + 1)
}

/// 32-bit ARM unwinder lines: `[<pc>] (callee) from [<pc>] (caller+0x..)`.
static ARM_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^ *\[<?(?:0x)?[0-9a-f]+>?\] \(([a-zA-Z0-9_.]+)\) from \[<?(?:0x)?[0-9a-f]+>?\] \(([a-zA-Z0-9_]+)(?:\.|\+)")
        .expect("static regex")
});

/// All frame names a trace line yields (usually zero or one).
pub fn frames_in_line(line: &str) -> Vec<&str> {
    if let Some(n) = frame_name(line.as_bytes()) {
        // frame_name returns a sub-slice of ASCII characters.
        let start = n.as_ptr() as usize - line.as_ptr() as usize;
        return vec![&line[start..start + n.len()]];
    }
    if line.contains(") from [")
        && let Some(c) = ARM_FRAME.captures(line)
    {
        return c.iter().skip(1).flatten().map(|m| m.as_str()).collect();
    }
    Vec::new()
}

/// Does the line start a stack trace (`Call Trace:`, `Allocated by task N:`, ...)?
pub fn is_stack_start(line: &str) -> bool {
    if line.contains("Call Trace") || line.contains("Call trace") || line.contains("Backtrace:") {
        return true;
    }
    if line.contains("Allocated:") || line.contains("Freed:") {
        return true;
    }
    if (line.contains("Allocated by task ") || line.contains("Freed by task "))
        && STACK_START_TASK.is_match(line)
    {
        return true;
    }
    if line.contains(" backtrace") && BACKTRACE.is_match(line) {
        return true;
    }
    if line.contains("Uninit was stored to memory at") {
        return true;
    }
    is_riscv_stack_start(line)
}

/// RISC-V prints registers and then the stack without a header.
pub fn is_riscv_stack_start(line: &str) -> bool {
    line.contains("badaddr: ") && RISCV_START.is_match(line)
}

static STACK_START_TASK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:Allocated|Freed) by task [0-9]+:").expect("static regex"));
static BACKTRACE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[^k] backtrace(?: \(crc [[:xdigit:]]*\))?:").expect("static regex")
});
static RISCV_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"status: [0-9a-f]{16} badaddr: [0-9a-f]{16} cause: [0-9a-f]{16}")
        .expect("static regex")
});

/// Fault-injection frames interleaved with a report make it unreliable.
pub fn is_corrupting_line(line: &str) -> bool {
    line.contains("should_fail") && SHOULD_FAIL.is_match(line)
}

static SHOULD_FAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^( \[<?(?:0x)?[0-9a-f]+>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x")
        .expect("static regex")
});

/// Generic frames that never name the culprit.
const SKIP: &[&str] = &[
    "__sanitizer",
    "__asan",
    "kasan",
    "hwasan",
    "__msan",
    "kmsan",
    "kcsan_setup_watchpoint",
    "check_memory_region",
    "check_heap_object",
    "check_object",
    "read_word_at_a_time",
    "(read|write)_once_.*nocheck",
    "print_address_description",
    "panic",
    "invalid_op",
    "report_bug",
    "fixup_bug",
    "print_report",
    "print_usage_bug",
    "do_error",
    "_trap$|do_trap",
    "show_stack",
    "dump_stack",
    "walk_stack",
    "dump_backtrace",
    "warn_slowpath",
    "warn_alloc",
    "warn_bogus",
    "__warn",
    "alloc_page",
    "k?v?(?:m|z|c)alloc",
    "krealloc",
    "kmem_cache",
    "allocate_slab",
    "__alloc_frozen_pages_noprof",
    "folio_(?:alloc|unlock)",
    "filemap_alloc_folio",
    "__filemap_get_folio",
    "find_or_create_page",
    "do_read_cache_folio",
    "read_cache_page",
    "pagecache_get_page",
    "grab_cache_page_write_begin",
    "slab_",
    "debug_object",
    "timer_is_static_object",
    "work_is_static_object",
    "__might_fault",
    "print_unlock",
    "imbalance_bug",
    "lockdep",
    "bh_enable",
    "bh_disable",
    "perf_trace",
    "lock_acquire",
    "lock_release",
    "lock_class",
    "mark_lock",
    "(reacquire|mark)_held_locks",
    "raw_spin_rq",
    "spin_lock",
    "spin_trylock",
    "spin_unlock",
    "read_lock",
    "read_trylock",
    "write_lock",
    "write_trylock",
    "read_unlock",
    "write_unlock",
    "^down$",
    "down_read",
    "down_write",
    "down_trylock",
    "up_read",
    "up_write",
    "^mutex_",
    "^__mutex_",
    "^rt_mutex_",
    "owner_on_cpu",
    "osq_lock",
    "osq_unlock",
    "atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)",
    "(set|clear|change|test)_bit",
    "__wake_up",
    "^refcount_",
    "^kref_",
    "ref_tracker",
    "seqprop_assert",
    "memcpy",
    "memcmp",
    "memset",
    "memchr",
    "memmove",
    "memdup",
    "strcmp",
    "strncmp",
    "strcpy",
    "strlcpy",
    "strncpy",
    "strscpy",
    "strlen",
    "strstr",
    "strnstr",
    "strnlen",
    "strchr",
    "strdup",
    "strndup",
    "copy_to_user",
    "copy_from_user",
    "copy_to_iter",
    "copy_from_iter",
    "copy_page_to_iter",
    "copy_page_from_iter",
    "copy_folio_to_iter",
    "^copyin$",
    "^copyout$",
    "put_user",
    "get_user",
    "might_fault",
    "might_sleep",
    "list_add",
    "list_del",
    "list_replace",
    "list_move",
    "list_splice",
    "^rb_",
    "^__rb_",
    "_indirect_thunk_",
    "string",
    "pointer",
    "snprintf",
    "scnprintf",
    "kasprintf",
    "kvasprintf",
    "printk",
    "va_format",
    "dev_info",
    "dev_notice",
    "dev_warn",
    "dev_err",
    "dev_alert",
    "dev_crit",
    "dev_emerg",
    "program_check_exception",
    "program_check_common",
    "del_timer",
    "flush_work",
    "__cancel_work_timer",
    "cancel_work_sync",
    "try_to_grab_pending",
    "flush_workqueue",
    "drain_workqueue",
    "destroy_workqueue",
    "queue_work",
    "finish_wait",
    "kthread_stop",
    "kobject_",
    "add_uevent_var",
    "get_device_parent",
    "device_add",
    "device_del",
    "device_unregister",
    "device_destroy",
    "device_release",
    "devres_release_all",
    "hwrng_unregister",
    "i2c_del_adapter",
    "__unregister_client",
    "device_for_each_child",
    "rollback_registered",
    "unregister_netdev",
    "sysfs_remove",
    "device_remove_file",
    "tty_unregister_device",
    "dummy_urb_enqueue",
    "usb_kill_urb",
    "usb_kill_anchored_urbs",
    "usb_control_msg",
    "usb_hcd_submit_urb",
    "usb_submit_urb",
    "^complete$",
    "wait_for_completion",
    "^kv?free$",
    "kfree_skb",
    "readb$",
    "readw$",
    "readl$",
    "readq$",
    "writeb$",
    "writew$",
    "writel$",
    "writeq$",
    "logic_in",
    "logic_out",
    "^crc\\d+",
    "crc_itu_t",
    "__might_resched",
    "assertfail",
    "^iput$",
    "^iput_final$",
    "^ihold$",
    "hex_dump_to_buffer",
    "print_hex_dump",
    "^klist_",
    "(trace|lockdep)_(hard|soft)irq",
    "^(un)?lock_page",
    "stack_trace_consume_entry",
    "arch_stack_walk",
    "stack_trace_save",
    "insert_work",
    "__queue_delayed_work",
    "queue_delayed_work_on",
    "ida_free",
    "do_(kernel|translation)_fault",
    "do_mem_abort",
    "el1_abort",
    "el1h_64_sync(?:_handler)?",
    "print_tainted",
    "xas_(?:start|load|find)",
    "find_lock_entries",
    "truncate_inode_pages_range",
    "__phys_addr",
    "__fortify_report",
    "cleanup_srcu_struct",
    "rhashtable_lookup",
    "extract_(user|iter)_to_sg",
    "drop_nlink",
    "^get_taint$",
    "^put_device$",
    "lock_timer_base",
    "__timer_delete_sync",
    "sk_stop_timer_sync",
    "__mod_timer",
    "fast_dput",
    "dput",
    "mark_buffer_dirty",
];

/// The generic-frame matcher shared by all formats.
pub static GENERIC_SKIP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&SKIP.join("|")).expect("static regex"));

/// Syscall-wrapper prefixes; the shortest stripped form names the frame.
const STRIP_PREFIXES: &[&str] = &[
    "SYSC_",
    "SyS_",
    "sys_",
    "__x64_",
    "__ia32_",
    "__arm64_",
    "____sys_",
    "___sys_",
    "__sys_",
    "__se_",
    "__se_sys_",
    "__do_sys_",
    "compat_SYSC_",
    "compat_SyS_",
    "ksys_",
];

/// Removes the syscall-wrapper prefix that shortens the name most.
pub fn strip_frame(frame: &str) -> &str {
    let mut best = frame;
    for p in STRIP_PREFIXES {
        if let Some(s) = frame.strip_prefix(p)
            && s.len() < best.len()
        {
            best = s;
        }
    }
    best
}

/// How the guilty frame is chosen among the non-skipped frames of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extractor {
    /// The first frame.
    First,
    /// Lockups/stalls: the caller of the first dispatch ("anchor") frame.
    Stall,
    /// Hung tasks: grouped by what they wait on.
    Hang,
}

/// Frames that dispatch work; a stall is attributed to the frame above them.
static STALL_ANCHORS: LazyLock<Regex> = LazyLock::new(|| {
    let anchors = [
        "process_one_work",
        "do_syscall_",
        "do_fast_syscall_",
        "sysenter_dispatch",
        "tracesys_phase2",
        "el0_svc_handler",
        "invoke_syscall",
        "ret_fast_syscall",
        "netif_receive_skb",
        "do_softirq",
        "call_timer_fn",
        "_run_timers",
        "run_timer_softirq",
        "hrtimer_run",
        "run_ksoftirqd",
        "smpboot_thread_fn",
        "^kthread$",
        "start_secondary",
        "cpu_startup_entry",
        "ret_from_fork",
        "vfs_write",
        "vfs_read",
        "vfs_iter_read",
        "vfs_iter_write",
        "do_iter_read",
        "do_iter_write",
        "call_read_iter",
        "call_write_iter",
        "new_sync_read",
        "new_sync_write",
        "vfs_ioctl",
        "ksys_ioctl",
        "compat_ioctl",
        "compat_sys_ioctl",
        "blkdev_driver_ioctl",
        "blkdev_ioctl",
        "do_iter_readv_writev",
        "^call_mmap",
        "mmap_region",
        "do_mmap",
        "do_dentry_open",
        "vfs_open",
        "^sock_sendmsg",
        "^sock_recvmsg",
        "^sock_release",
        "^__sock_release",
        "^setsockopt$",
        "kernel_setsockopt",
        "sock_common_setsockopt",
        "^listen$",
        "kernel_listen",
        "sk_common_release",
        "^sock_mmap",
        "^accept$",
        "kernel_accept",
        "^sock_do_ioctl",
        "^sock_ioctl",
        "^compat_sock_ioctl",
        "^nfnetlink_rcv_msg",
        "^rtnetlink_rcv_msg",
        "^netlink_dump",
        "^(sys_)?(socketpair|connect|ioctl)",
        "__do_fault",
        "do_page_fault",
        "^page_fault$",
        "__fput",
        "task_work_run",
        "exit_to_usermode",
        "smp_call_function",
        "tasklet_action",
        "tasklet_hi_action",
    ];
    Regex::new(&anchors.join("|")).expect("static regex")
});

impl Extractor {
    /// Picks the guilty frame among `frames` (already stripped of syscall prefixes).
    pub fn pick(self, frames: &[String]) -> Option<String> {
        let first = frames.first()?;
        match self {
            Extractor::First => Some(first.clone()),
            Extractor::Stall => {
                let mut prev = first;
                for f in frames {
                    if STALL_ANCHORS.is_match(f) {
                        if f.contains("smp_call_function") {
                            return Some("smp_call_function".into());
                        }
                        return Some(prev.clone());
                    }
                    prev = f;
                }
                None
            }
            Extractor::Hang => {
                for f in frames {
                    if f.contains("rtnl_lock") {
                        return Some(f.clone());
                    }
                    for a in [
                        "synchronize_rcu",
                        "synchronize_srcu",
                        "synchronize_net",
                        "synchronize_sched",
                    ] {
                        if f.contains(a) {
                            return Some("synchronize_rcu".into());
                        }
                    }
                }
                const WAITING: &[&str] = &[
                    "sched",
                    "_lock",
                    "_slowlock",
                    "down",
                    "rwsem",
                    "completion",
                    "kthread",
                    "wait",
                    "synchronize",
                    "context_switch",
                    "__switch_to",
                    "cancel_delayed_work",
                    "rcu_barrier",
                ];
                frames
                    .iter()
                    .find(|f| !WAITING.iter().any(|w| f.contains(w)))
                    .cloned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(frame_name(b" dump_stack+0x1/0x2"), Some(&b"dump_stack"[..]));
        assert_eq!(
            frame_name(b" [<ffffffff81000000>] foo.cold+0x1/0x2"),
            Some(&b"foo"[..])
        );
        assert_eq!(
            frame_name(b" __dump_stack lib/dump_stack.c:17 [inline]"),
            None
        );
        assert_eq!(frame_name(b"Call Trace:"), None);
        assert_eq!(
            frame_name(b" <IRQ>  [<ffffffff8003d4f5>] lock_timer_base+0x1b/0x3c"),
            Some(&b"lock_timer_base"[..])
        );
        assert_eq!(
            frame_name(b" <<EOE>>  <IRQ>  [<ffffffff812d4f21>] tg3_poll_work+0x21/0x40"),
            Some(&b"tg3_poll_work"[..])
        );
        assert_eq!(frame_name(b" <IRQ>"), None);
        assert_eq!(frame_name(b" </NMI>"), None);
        assert_eq!(frame_name(b"RIP: 0010:foo+0x1/0x2"), None);
    }

    #[test]
    fn stall_picks_caller_of_anchor() {
        let f: Vec<String> = ["foo", "bar", "do_syscall_64"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(Extractor::Stall.pick(&f).as_deref(), Some("bar"));
        let f: Vec<String> = ["csd_lock_wait", "smp_call_function_many_cond", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            Extractor::Stall.pick(&f).as_deref(),
            Some("smp_call_function")
        );
    }

    #[test]
    fn skip_and_strip() {
        assert!(GENERIC_SKIP.is_match("kasan_report"));
        assert!(!GENERIC_SKIP.is_match("ip6_send_skb"));
        assert_eq!(strip_frame("__x64_sys_connect"), "sys_connect");
        assert_eq!(strip_frame("__do_sys_ioctl"), "ioctl");
    }
}
