//! The run loop: start virtiofsd (for a folder root) and QEMU, pump the console, react to QMP events
//! and limits, and make sure both processes are gone before returning.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::process::{self, OwnedChild};
use super::qemu::{self, Spec};
use super::qmp::{self, Qmp};
use super::{
    Accel, Control, Error, NMI_MARKER, Root, VmConfig, VmExit, VmOutcome, accel, virtiofsd,
};

/// How long the guest gets after an NMI to print its backtraces.
const NMI_GRACE: Duration = Duration::from_secs(10);
/// How long a panicked guest gets to finish printing and reset by itself.
const PANIC_GRACE: Duration = Duration::from_secs(10);
/// How long QEMU gets to exit after `quit` before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// How often the callback is polled with an empty slice.
const TICK: Duration = Duration::from_millis(250);

/// Lines that show the guest's init is running (boot time ends there).
const BOOT_MARKERS: &[&[u8]] = &[b"as init process", b"csdci: init started"];

/// The QMP socket's fd number inside QEMU.
const QMP_FD: i32 = 3;

enum Msg {
    Console(Vec<u8>),
    ConsoleEof,
    Qmp(qmp::Event),
}

fn validate(cfg: &VmConfig) -> Result<(), Error> {
    if !cfg.kernel.is_file() {
        return Err(Error::Config(format!(
            "kernel {} does not exist",
            cfg.kernel.display()
        )));
    }
    match &cfg.root {
        Root::Virtiofs(dir) if !dir.is_dir() => {
            return Err(Error::Config(format!(
                "root folder {} does not exist",
                dir.display()
            )));
        }
        Root::Initramfs(archive) if !archive.is_file() => {
            return Err(Error::Config(format!(
                "initramfs {} does not exist",
                archive.display()
            )));
        }
        _ => {}
    }
    if cfg.vcpus == 0 {
        return Err(Error::Config("vcpus must be at least 1".into()));
    }
    if cfg.memory_mb < 64 {
        return Err(Error::Config(format!(
            "memory {} MiB is too small (at least 64)",
            cfg.memory_mb
        )));
    }
    Ok(())
}

pub(super) fn run(
    cfg: &VmConfig,
    on_console: &mut dyn FnMut(&[u8]) -> Control,
) -> Result<VmOutcome, Error> {
    validate(cfg)?;
    std::fs::create_dir_all(&cfg.run_dir).map_err(|e| Error::io(&cfg.run_dir, e))?;
    let (Root::Virtiofs(root_path) | Root::Initramfs(root_path)) = &cfg.root;
    let root_path = std::path::absolute(root_path).map_err(|e| Error::io(root_path, e))?;
    let kernel = std::path::absolute(&cfg.kernel).map_err(|e| Error::io(&cfg.kernel, e))?;
    let procs = process::procs_dir(&cfg.data_dir);
    let (engine, accel) = accel::resolve(cfg.accel, &kernel, &cfg.data_dir)?;
    if accel == Accel::Tcg
        && let Some(w) = super::limits::tcg_oversubscribed(cfg.vcpus, super::limits::host_cpus())
    {
        tracing::warn!("{w}");
    }
    let mut log = File::create(&cfg.console_log).map_err(|e| Error::io(&cfg.console_log, e))?;

    let mut vfs = match cfg.root {
        Root::Virtiofs(_) => Some(virtiofsd::spawn(&root_path, &cfg.run_dir, &procs)?),
        Root::Initramfs(_) => None,
    };
    let socket = virtiofsd::socket_path(&cfg.run_dir);

    let (qmp_host, qmp_guest) =
        UnixStream::pair().map_err(|e| Error::Qmp(format!("socketpair: {e}")))?;
    let append = qemu::cmdline_for(cfg.root.kind(), &cfg.cmdline_extra);
    let spec = Spec {
        kernel: &kernel,
        engine: &engine,
        vcpus: cfg.vcpus,
        memory_mb: cfg.memory_mb,
        append: &append,
        root: match cfg.root {
            Root::Virtiofs(_) => qemu::RootArg::Virtiofs { socket: &socket },
            Root::Initramfs(_) => qemu::RootArg::Initrd(&root_path),
        },
        qmp_fd: QMP_FD,
    };
    let stderr_path = cfg.run_dir.join("qemu.stderr");
    let stderr = File::create(&stderr_path).map_err(|e| Error::io(&stderr_path, e))?;
    let bin = qemu::binary();
    let argv = qemu::argv(&spec);
    // The exact command line, for the dashboard's download and for a person
    // reproducing the run by hand (shell-quoted, one line).
    let line: Vec<String> = std::iter::once(bin.to_string_lossy().into_owned())
        .chain(argv.iter().map(|a| a.to_string_lossy().into_owned()))
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=,:@+".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect();
    let cmdline_path = cfg.run_dir.join("qemu-cmdline.txt");
    if let Err(e) = std::fs::write(&cmdline_path, format!("{}\n", line.join(" "))) {
        tracing::warn!("cannot write {}: {e}", cmdline_path.display());
    }
    let mut cmd = Command::new(&bin);
    cmd.args(&argv)
        .current_dir(&cfg.run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let guest_fd = qmp_guest.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            use nix::libc;
            if guest_fd == QMP_FD {
                if libc::fcntl(QMP_FD, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(guest_fd, QMP_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    tracing::debug!(?cmd, "starting qemu");
    let mut qemu_child = OwnedChild::spawn(cmd, "qemu", &procs).map_err(|e| Error::Spawn {
        program: bin.display().to_string(),
        source: e,
    })?;
    drop(qmp_guest);
    let started = Instant::now();

    let (tx, rx) = channel();
    let stdout = qemu_child
        .take_stdout()
        .ok_or_else(|| Error::Qmp("qemu stdout not piped".into()))?;
    let ctx = tx.clone();
    std::thread::Builder::new()
        .name("vm-console".into())
        .spawn(move || pump_console(stdout, ctx))
        .map_err(|e| Error::Qmp(format!("cannot start console thread: {e}")))?;
    let qtx = tx.clone();
    drop(tx);
    let mut qmp = match Qmp::connect(qmp_host, move |e| {
        let _ = qtx.send(Msg::Qmp(e));
    }) {
        Ok(q) => Some(q),
        Err(e) => {
            // QEMU refusing its arguments (too many vCPUs, ...) closes QMP first.
            if let Ok(Some(st)) = qemu_child.wait_timeout(Duration::from_secs(2)) {
                drain(&rx, &mut log, on_console, Duration::from_secs(1));
                return Ok(VmOutcome {
                    exit: VmExit::QemuDied(format!(
                        "qemu exited ({st}): {}",
                        super::tail_of(&stderr_path)
                    )),
                    accel,
                    boot_seconds: None,
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
            return Err(e);
        }
    };

    let mut st = State::new(started);
    let mut last_tick = Instant::now();
    let mut exited_at: Option<Instant> = None;
    let mut vfs_gone_at: Option<Instant> = None;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Msg::Console(bytes)) => {
                log.write_all(&bytes)
                    .map_err(|e| Error::io(&cfg.console_log, e))?;
                st.saw_output(&bytes);
                if on_console(&bytes) == Control::Stop {
                    st.end(VmExit::Stopped);
                }
            }
            Ok(Msg::ConsoleEof) => st.console_eof = true,
            Ok(Msg::Qmp(ev)) => st.event(ev),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => st.console_eof = true,
        }
        let now = Instant::now();
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            if on_console(&[]) == Control::Stop {
                st.end(VmExit::Stopped);
            }
        }
        if exited_at.is_none()
            && qemu_child
                .try_wait()
                .map_err(|e| Error::Qmp(format!("wait for qemu: {e}")))?
                .is_some()
        {
            exited_at = Some(now);
        }
        if let Some(t) = exited_at {
            // Keep reading until the console pipe is drained.
            if st.console_eof || now.duration_since(t) > Duration::from_secs(2) {
                break;
            }
            continue;
        }
        // virtiofsd exits by itself once QEMU drops the vhost-user connection,
        // which QEMU does while shutting down: only its death while QEMU keeps
        // running without a shutdown is an infrastructure failure.
        if let Some(Ok(Some(status))) = vfs.as_mut().map(|v| v.try_wait()) {
            let since = *vfs_gone_at.get_or_insert(now);
            if st.shutdown_reason.is_none() && now.duration_since(since) > Duration::from_secs(5) {
                return Err(Error::VirtiofsdDied {
                    status: status.to_string(),
                    log: super::tail_of(&cfg.run_dir.join(virtiofsd::LOG)),
                });
            }
        }
        if st.paused && st.ending.is_none() {
            let stderr = super::tail_of(&stderr_path);
            let why = stderr
                .lines()
                .find(|l| l.to_ascii_lowercase().contains("error"))
                .unwrap_or(&stderr);
            st.end(VmExit::QemuDied(format!("qemu paused the guest: {why}")));
            st.quit_at = Some(now);
            if let Some(q) = qmp.as_mut() {
                let _ = q.quit();
            }
        }
        if st.ending.is_none() {
            let silent = now.duration_since(st.last_output);
            if now.duration_since(started) > cfg.deadline {
                let msg = format!(
                    "\n{NMI_MARKER} (past the {} s deadline)\n",
                    cfg.deadline.as_secs()
                );
                inject_nmi(&mut qmp, &mut log, on_console, &msg);
                st.end(VmExit::Deadline);
                st.nmi_at = Some(now);
            } else if silent > cfg.silence_timeout {
                let msg = format!(
                    "\n{NMI_MARKER} (console silent for {} s)\n",
                    silent.as_secs()
                );
                inject_nmi(&mut qmp, &mut log, on_console, &msg);
                st.end(VmExit::Silent);
                st.nmi_at = Some(now);
            }
        }
        let want_quit = match (&st.ending, st.nmi_at, st.panicked_at) {
            (Some(VmExit::Stopped), _, _) => true,
            (_, Some(t), _) => now.duration_since(t) > NMI_GRACE,
            (_, None, Some(t)) => now.duration_since(t) > PANIC_GRACE,
            _ => false,
        };
        if want_quit && st.quit_at.is_none() {
            st.quit_at = Some(now);
            if let Some(q) = qmp.as_mut()
                && let Err(e) = q.quit()
            {
                tracing::debug!(%e, "qmp quit");
            }
        }
        if let Some(t) = st.quit_at
            && now.duration_since(t) > QUIT_GRACE
        {
            tracing::warn!(
                "qemu did not quit in {} s: killing it",
                QUIT_GRACE.as_secs()
            );
            qemu_child.kill();
        }
    }
    drain(&rx, &mut log, on_console, Duration::from_millis(200));
    let status = qemu_child.try_wait().ok().flatten();
    qemu_child.kill();
    if let Some(v) = vfs.as_mut() {
        v.kill();
    }
    drop(qmp.take());
    if vfs.is_some() {
        let _ = std::fs::remove_file(&socket);
    }
    let _ = log.flush();

    let exit = match st.ending.take() {
        Some(e) => e,
        None => match st.shutdown_reason.as_deref() {
            Some("guest-shutdown") => VmExit::PoweredOff,
            Some("guest-reset" | "guest-panic") => VmExit::Panicked,
            Some(other) => VmExit::QemuDied(format!("qemu shut down ({other})")),
            None => VmExit::QemuDied(format!(
                "qemu exited ({}) without a guest shutdown: {}",
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "killed".into()),
                super::tail_of(&stderr_path)
            )),
        },
    };
    Ok(VmOutcome {
        exit,
        accel,
        boot_seconds: st.boot.map(|b| b.duration_since(started).as_secs_f64()),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What the loop knows so far.
struct State {
    ending: Option<VmExit>,
    shutdown_reason: Option<String>,
    panicked_at: Option<Instant>,
    nmi_at: Option<Instant>,
    quit_at: Option<Instant>,
    last_output: Instant,
    boot: Option<Instant>,
    console_eof: bool,
    /// QEMU stopped the guest (csdci never asks it to).
    paused: bool,
    /// Tail of the previous chunk, so markers split across reads are found.
    carry: Vec<u8>,
}

impl State {
    fn new(started: Instant) -> Self {
        State {
            ending: None,
            shutdown_reason: None,
            panicked_at: None,
            nmi_at: None,
            quit_at: None,
            last_output: started,
            boot: None,
            console_eof: false,
            paused: false,
            carry: Vec::new(),
        }
    }

    /// The first reason to end wins.
    fn end(&mut self, why: VmExit) {
        if self.ending.is_none() {
            self.ending = Some(why);
        }
    }

    fn saw_output(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        self.last_output = now;
        if self.boot.is_some() {
            return;
        }
        self.carry.extend_from_slice(bytes);
        if BOOT_MARKERS
            .iter()
            .any(|m| self.carry.windows(m.len()).any(|w| w == *m))
        {
            self.boot = Some(now);
            self.carry.clear();
        } else {
            let keep = self.carry.len().saturating_sub(64);
            self.carry.drain(..keep);
        }
    }

    fn event(&mut self, ev: qmp::Event) {
        tracing::debug!(?ev, "qmp event");
        match ev {
            qmp::Event::Shutdown { reason, .. } => {
                self.shutdown_reason.get_or_insert(reason);
            }
            qmp::Event::GuestPanicked { .. } => {
                self.panicked_at.get_or_insert(Instant::now());
                self.end(VmExit::Panicked);
            }
            // QEMU pauses the guest by itself on a KVM internal error.
            qmp::Event::Other(name) if name == "STOP" => self.paused = true,
            qmp::Event::Other(_) | qmp::Event::Closed => {}
        }
    }
}

fn inject_nmi(
    qmp: &mut Option<Qmp>,
    log: &mut File,
    on_console: &mut dyn FnMut(&[u8]) -> Control,
    msg: &str,
) {
    tracing::info!("{}", msg.trim());
    let _ = log.write_all(msg.as_bytes());
    let _ = on_console(msg.as_bytes());
    if let Some(q) = qmp.as_mut()
        && let Err(e) = q.inject_nmi()
    {
        tracing::warn!(%e, "inject-nmi failed");
    }
}

fn pump_console(mut out: impl Read, tx: std::sync::mpsc::Sender<Msg>) {
    let mut buf = vec![0u8; 16384];
    loop {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send(Msg::Console(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(Msg::ConsoleEof);
}

/// Passes on console bytes still queued after QEMU exited.
fn drain(
    rx: &Receiver<Msg>,
    log: &mut File,
    on_console: &mut dyn FnMut(&[u8]) -> Control,
    wait: Duration,
) {
    let end = Instant::now() + wait;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(Msg::Console(b)) => {
                let _ = log.write_all(&b);
                let _ = on_console(&b);
            }
            Ok(Msg::ConsoleEof) | Err(_) => break,
            Ok(Msg::Qmp(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_marker_split_across_chunks_is_found() {
        let t0 = Instant::now();
        let mut st = State::new(t0);
        st.saw_output(b"[    3.1] Run /sbin/init as in");
        assert!(st.boot.is_none());
        st.saw_output(b"it process\r\n");
        assert!(st.boot.is_some());
    }

    #[test]
    fn first_ending_wins_and_panic_event_ends() {
        let mut st = State::new(Instant::now());
        st.event(qmp::Event::GuestPanicked {
            action: "run".into(),
        });
        st.end(VmExit::Stopped);
        assert_eq!(st.ending, Some(VmExit::Panicked));
        st.event(qmp::Event::Shutdown {
            guest: true,
            reason: "guest-reset".into(),
        });
        assert_eq!(st.shutdown_reason.as_deref(), Some("guest-reset"));
    }
}
