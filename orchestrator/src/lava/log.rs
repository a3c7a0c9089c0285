//! A LAVA job log (`GET /api/v0.2/jobs/ID/logs/`): YAML, one entry per line,
//! `- {"dt": ..., "lvl": ..., "msg": ...}`. `target` lines are the serial
//! console while the dispatcher reads it, `feedback` lines the console read
//! between actions; together, in order, they are the console csdci analyses.
//! The `results` entry of case `job` carries the dispatcher's verdict
//! (`error_type`, `error_msg`); `kernel-messages` results what LAVA itself
//! saw (a panic during boot). Entries are JSON except where LAVA tags a
//! value YAML's way; those are read as YAML. The log is fetched in pieces as it grows
//! ([`Log::feed`] keeps the position).

use serde::Deserialize;

/// One log entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Entry {
    /// When the dispatcher logged it (UTC, no zone).
    #[serde(default)]
    pub dt: String,
    /// `info`, `debug`, `target`, `feedback`, `input`, `results`, `error`, `exception`...
    pub lvl: String,
    /// A line of text, or a result mapping.
    pub msg: serde_json::Value,
}

impl Entry {
    /// The console line this entry is, if it is one.
    pub fn console(&self) -> Option<&str> {
        match self.lvl.as_str() {
            "target" | "feedback" => self.msg.as_str(),
            _ => None,
        }
    }
}

/// The dispatcher's final word (the `job` result).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobResult {
    /// `pass` or `fail`.
    pub result: String,
    /// `Infrastructure`, `Job`, `Test`, `Bootloader`, `Configuration`, `Canceled`, ...
    pub error_type: Option<String>,
    /// The error message.
    pub error_msg: Option<String>,
}

/// What the log showed so far.
#[derive(Debug, Default)]
pub struct Log {
    /// Lines consumed (the `start=` of the next fetch).
    lines: usize,
    /// Console lines seen.
    console_lines: usize,
    /// Console lines that are not the firmware's or LAVA's echo: the kernel
    /// (or the guest) said something.
    kernel_lines: usize,
    job: Option<JobResult>,
    lava_panic: Option<String>,
    end_marker_seen: bool,
    unparsed: usize,
    first_console_at: Option<chrono::NaiveDateTime>,
    init_at: Option<chrono::NaiveDateTime>,
    last_console_at: Option<chrono::NaiveDateTime>,
    boot_command: Option<String>,
}

/// The line csdci's guest init prints on every way out (images/init.sh).
pub const END_MARKER: &str = "csdci: powering off";

impl Log {
    /// A log read from the start.
    pub fn new() -> Self {
        Log::default()
    }

    /// The line number the next fetch starts at.
    pub fn position(&self) -> usize {
        self.lines
    }

    /// Consumes a piece of the log (the answer to `?start=position()`) and
    /// returns the console bytes it held, one `\n`-ended line per entry. A
    /// last line without its newline (cut mid-write) is left for the next
    /// fetch.
    pub fn feed(&mut self, text: &str) -> Vec<u8> {
        let mut console = Vec::new();
        let mut rest = text;
        while let Some(n) = rest.find('\n') {
            let line = &rest[..n];
            rest = &rest[n + 1..];
            self.lines += 1;
            self.entry(line, &mut console);
        }
        // A complete last line without newline is still a whole entry when
        // it parses; otherwise it is fetched again.
        if !rest.trim().is_empty() && parse(rest).is_some() {
            self.lines += 1;
            self.entry(rest, &mut console);
        }
        console
    }

    fn entry(&mut self, line: &str, console: &mut Vec<u8>) {
        if line.trim().is_empty() {
            return;
        }
        let Some(e) = parse(line) else {
            self.unparsed += 1;
            return;
        };
        let at = chrono::NaiveDateTime::parse_from_str(&e.dt, "%Y-%m-%dT%H:%M:%S%.f").ok();
        if let Some(text) = e.console() {
            self.console_lines += 1;
            self.first_console_at = self.first_console_at.or(at);
            self.last_console_at = at.or(self.last_console_at);
            if self.init_at.is_none() && text.contains(super::job::START_MARKER) {
                self.init_at = at;
            }
            if is_kernel_output(text) {
                self.kernel_lines += 1;
            }
            if text.contains(END_MARKER) {
                self.end_marker_seen = true;
            }
            console.extend_from_slice(text.as_bytes());
            console.push(b'\n');
            return;
        }
        if e.lvl == "info"
            && let Some(cmd) = e
                .msg
                .as_str()
                .and_then(|m| m.strip_prefix("Boot command: "))
        {
            self.boot_command = Some(cmd.to_string());
        }
        if e.lvl != "results" {
            return;
        }
        let case = e.msg.get("case").and_then(|c| c.as_str()).unwrap_or("");
        let s = |k: &str| e.msg.get(k).and_then(|v| v.as_str()).map(str::to_string);
        match case {
            "job" => {
                self.job = Some(JobResult {
                    result: s("result").unwrap_or_default(),
                    error_type: s("error_type"),
                    error_msg: s("error_msg"),
                })
            }
            "kernel-messages" => {
                // extra: {extra: [{kind: panic, message: ...}, ...]}
                let kinds = e
                    .msg
                    .pointer("/extra/extra")
                    .and_then(|x| x.as_array())
                    .cloned()
                    .unwrap_or_default();
                for k in kinds {
                    if k.get("kind").and_then(|v| v.as_str()) == Some("panic") {
                        self.lava_panic = Some(
                            k.get("message")
                                .and_then(|m| m.as_str())
                                .unwrap_or("kernel panic")
                                .to_string(),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// The dispatcher's final result, once logged.
    pub fn job_result(&self) -> Option<&JobResult> {
        self.job.as_ref()
    }

    /// A panic LAVA's kernel-messages parser reported.
    pub fn lava_panic(&self) -> Option<&str> {
        self.lava_panic.as_deref()
    }

    /// The kernel printed something (a line that is neither firmware nor
    /// LAVA's own echo).
    pub fn kernel_output(&self) -> bool {
        self.kernel_lines > 0
    }

    /// The guest init's last line ([`END_MARKER`]) was seen.
    pub fn end_marker_seen(&self) -> bool {
        self.end_marker_seen
    }

    /// Console lines seen.
    pub fn console_lines(&self) -> usize {
        self.console_lines
    }

    /// Seconds from the first console line to the guest init's first line.
    pub fn boot_seconds(&self) -> Option<f64> {
        let (a, b) = (self.first_console_at?, self.init_at?);
        Some((b - a).num_milliseconds() as f64 / 1000.0)
    }

    /// Seconds from the first console line to the last.
    pub fn console_seconds(&self) -> Option<f64> {
        let (a, b) = (self.first_console_at?, self.last_console_at?);
        Some((b - a).num_milliseconds() as f64 / 1000.0)
    }

    /// The QEMU command line the dispatcher ran.
    pub fn boot_command(&self) -> Option<&str> {
        self.boot_command.as_deref()
    }

    /// Entries that did not parse (not JSON): skipped.
    pub fn unparsed(&self) -> usize {
        self.unparsed
    }
}

/// One entry: JSON as a rule, but LAVA writes some values with a YAML tag
/// (`"size": ! "14190528"`), so what is not JSON is read as YAML.
fn parse(line: &str) -> Option<Entry> {
    let body = line.trim_start().strip_prefix("- ")?.trim_end();
    serde_json::from_str(body)
        .ok()
        .or_else(|| serde_saphyr::from_str(body).ok())
}

/// A console line the kernel (or the guest) printed: a printk line
/// (`[    1.234] ...`) or a line of csdci's init. SeaBIOS/iPXE banners and
/// the echo of what LAVA typed (`poweroff`) are not.
fn is_kernel_output(text: &str) -> bool {
    let t = text.trim_start();
    (t.starts_with('[')
        && t[1..]
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit()))
        || t.starts_with("csdci:")
        || t.starts_with("Linux version")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/lava/samples")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn a_complete_job_gives_the_console_in_order_and_its_result() {
        let mut log = Log::new();
        let console = String::from_utf8(log.feed(&sample("complete.yaml"))).unwrap();
        let kernel = console.find("Run /init as init process").unwrap();
        let start = console.find("csdci: workload running for 5 s").unwrap();
        let end = console
            .find("scftorture: --- End of test: SUCCESS")
            .unwrap();
        let off = console.find("reboot: Power down").unwrap();
        assert!(kernel < start && start < end && end < off, "{console}");
        // LAVA's own lines are not console lines.
        assert!(!console.contains("lava-test-monitor"));
        assert!(!console.contains("downloading file://"));
        assert!(log.kernel_output() && log.end_marker_seen());
        // From SeaBIOS to csdci's init, and on to the power-off.
        let boot = log.boot_seconds().unwrap();
        assert!(boot > 3.0 && boot < 10.0, "{boot}");
        assert!(log.console_seconds().unwrap() > boot);
        let cmd = log.boot_command().unwrap();
        assert!(
            cmd.contains("qemu-system-x86_64") && cmd.contains("-smp 2"),
            "{cmd}"
        );
        assert_eq!(log.unparsed(), 0);
        let r = log.job_result().unwrap();
        assert_eq!((r.result.as_str(), r.error_type.as_deref()), ("pass", None));
    }

    #[test]
    fn the_log_can_be_read_in_pieces_cut_anywhere() {
        let text = sample("panic-connection-closed.yaml");
        let mut whole = Log::new();
        let all = whole.feed(&text);
        // Fetch as the tester does: from position(), the server having
        // written only part of the last line.
        let mut log = Log::new();
        let mut got = Vec::new();
        let mut served = 0;
        for cut in [1000, 1001, 5000, 20_000, text.len()] {
            let cut = (0..=cut.min(text.len()))
                .rev()
                .find(|&c| text.is_char_boundary(c))
                .unwrap();
            served = served.max(cut);
            let lines: Vec<&str> = text[..served].split_inclusive('\n').collect();
            let piece: String = lines[log.position().min(lines.len())..].concat();
            got.extend(log.feed(&piece));
        }
        assert_eq!(got, all);
        assert_eq!(log.position(), whole.position());
        let r = log.job_result().unwrap();
        assert_eq!(r.error_type.as_deref(), Some("Infrastructure"));
        assert_eq!(r.error_msg.as_deref(), Some("Connection closed"));
        assert!(String::from_utf8_lossy(&got).contains("Kernel panic - not syncing"));
    }

    #[test]
    fn a_job_that_never_booted_has_no_kernel_output() {
        let mut log = Log::new();
        assert!(log.feed(&sample("missing-kernel.yaml")).is_empty());
        assert!(!log.kernel_output());
        let r = log.job_result().unwrap();
        assert_eq!(r.error_type.as_deref(), Some("Job"));
        assert!(r.error_msg.as_deref().unwrap().contains("does not exist"));
    }

    #[test]
    fn firmware_banners_and_lava_echo_are_not_kernel_output() {
        assert!(!is_kernel_output(
            "SeaBIOS (version 1.16.2-debian-1.16.2-1)"
        ));
        assert!(!is_kernel_output("poweroff"));
        assert!(!is_kernel_output("[?7l"));
        assert!(is_kernel_output("[    2.706125] Run /init as init process"));
        assert!(is_kernel_output("csdci: init started (kernel 6.12)"));
    }
}
