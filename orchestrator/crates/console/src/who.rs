//! Which CPU and task a report names.

use std::sync::LazyLock;

use regex::Regex;

static CPU_PID_COMM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"CPU: (\d+) (?:UID: \d+ )?PID: \d+ Comm: (\S+)").expect("static regex")
});
static SOFT_LOCKUP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"CPU#(\d+) stuck for \d+s! \[(.+?):\d+\]").expect("static regex"));
static HUNG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"INFO: task (.+?):\d+ blocked").expect("static regex"));
static HARD_LOCKUP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"LOCKUP on (?:cpu |CPU ?)(\d+)").expect("static regex"));
/// 2.6-3.x show_regs(): "Pid: 4521, comm: java Not tainted ...".
static OLD_PID_COMM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Pid: \d+, comm: (\S+)").expect("static regex"));

/// The CPU and task (comm) a report's text names, from its first line or its
/// `CPU: N PID: P Comm: C` line.
pub fn cpu_and_task(text: &str) -> (Option<u32>, Option<String>) {
    let first = text.lines().next().unwrap_or("");
    let mut cpu = None;
    let mut task = None;
    if let Some(c) = SOFT_LOCKUP.captures(first) {
        cpu = c[1].parse().ok();
        task = Some(c[2].to_string());
    } else if let Some(c) = HUNG.captures(first) {
        task = Some(c[1].to_string());
    } else if let Some(c) = HARD_LOCKUP.captures(first) {
        cpu = c[1].parse().ok();
    }
    if (cpu.is_none() || task.is_none())
        && let Some(c) = text
            .lines()
            .take(200)
            .find(|l| l.contains(" Comm: "))
            .and_then(|l| CPU_PID_COMM.captures(l))
    {
        cpu = cpu.or_else(|| c[1].parse().ok());
        task = task.or_else(|| Some(c[2].to_string()));
    }
    if task.is_none()
        && let Some(c) = text
            .lines()
            .take(200)
            .find(|l| l.starts_with("Pid: "))
            .and_then(|l| OLD_PID_COMM.captures(l))
    {
        task = Some(c[1].to_string());
    }
    (cpu, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            cpu_and_task(
                "watchdog: BUG: soft lockup - CPU#2 stuck for 22s! [scftorture_invo:75]\n"
            ),
            (Some(2), Some("scftorture_invo".into()))
        );
        assert_eq!(
            cpu_and_task("BUG: x\nCPU: 1 PID: 9 Comm: syz-executor0 Not tainted\n"),
            (Some(1), Some("syz-executor0".into()))
        );
    }
}
