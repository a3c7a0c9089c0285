//! Running untrusted builds and tests (patches from a mailing list) inside
//! bubblewrap: no network (`--unshare-net`: a loopback-only namespace with
//! nothing listening), the host read-only (`--ro-bind / /`), a private `/tmp`
//! (tmpfs) and `/dev`, writable only the paths the caller names (the
//! worktree, the build directory, the ccache), new PID/IPC/UTS namespaces and
//! session, `--die-with-parent`. Limits: wall time (the whole process group
//! is killed), CPU seconds, address space per process, file size and core
//! dumps (`setrlimit`, inherited by everything inside) and the number of
//! processes (a `pids` cgroup where the host has one writable; as root
//! `RLIMIT_NPROC` does not apply).
//!
//! [`Sandbox::command`] gives a [`Command`] that runs a program inside (for
//! `build`'s make, see [`scoped`] / [`current`]); [`Sandbox::run`] runs a
//! shell command to its end and collects its output.

use std::cell::RefCell;
use std::ffi::CString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Limits of one sandboxed command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock time after which everything inside is killed.
    pub wall: Duration,
    /// CPU seconds per process (`RLIMIT_CPU`).
    pub cpu_s: u64,
    /// Address space per process, bytes (`RLIMIT_AS`).
    pub memory: u64,
    /// Largest file a process may write, bytes (`RLIMIT_FSIZE`).
    pub file_size: u64,
    /// Processes and threads at once (`pids.max` of a cgroup).
    pub processes: u32,
    /// Size of the private `/tmp`, bytes.
    pub tmp_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(3600),
            cpu_s: 3600,
            memory: 4 << 30,
            file_size: 2 << 30,
            processes: 512,
            tmp_size: 512 << 20,
        }
    }
}

/// A bubblewrap sandbox: what is writable and the limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Sandbox {
    /// Paths writable inside (bound read-write at the same place).
    pub writable: Vec<PathBuf>,
    /// Limits.
    pub limits: Limits,
}

/// Why a sandboxed command could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start bwrap (install Debian's bubblewrap): {0}")]
    Spawn(#[source] std::io::Error),
    #[error("sandbox: {0}")]
    Io(#[source] std::io::Error),
}

/// How a sandboxed command ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ran {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Killed at the wall-clock limit.
    pub timed_out: bool,
    /// Its output (stdout and stderr together), at most the last 64 KiB.
    pub output: String,
    /// Seconds it ran.
    pub seconds: f64,
}

impl Ran {
    /// Exit 0 in time.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// The `pids` cgroup directory of this host (v1 `pids` hierarchy, or v2
/// with the `pids` controller), if writable.
fn pids_root() -> Option<PathBuf> {
    let v1 = Path::new("/sys/fs/cgroup/pids");
    if v1.join("cgroup.procs").exists() {
        return Some(v1.to_path_buf());
    }
    let v2 = Path::new("/sys/fs/cgroup");
    let ctl = std::fs::read_to_string(v2.join("cgroup.controllers")).ok()?;
    ctl.split_whitespace()
        .any(|c| c == "pids")
        .then(|| v2.to_path_buf())
}

/// A pids cgroup that is removed (its processes killed) on drop.
#[derive(Debug)]
pub struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    fn new(max: u32) -> Option<Self> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let root = pids_root()?;
        let dir = root.join(format!(
            "csdci-sandbox-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).ok()?;
        if std::fs::write(dir.join("pids.max"), max.to_string()).is_err() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(PidsCgroup { dir })
    }

    /// Processes in it now.
    pub fn procs(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Times a fork was refused at the limit.
    pub fn refused(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("pids.events"))
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            let procs = self.procs();
            if procs.is_empty() {
                break;
            }
            for p in procs {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Sandbox>> = const { RefCell::new(None) };
}

/// Runs `f` with `sb` as this thread's sandbox: every `make` that
/// [`crate::build`] spawns on this thread meanwhile runs inside it.
pub fn scoped<R>(sb: &Sandbox, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<Sandbox>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let old = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = old);
        }
    }
    let old = CURRENT.with(|c| c.borrow_mut().replace(sb.clone()));
    let _reset = Reset(old);
    f()
}

/// This thread's sandbox (see [`scoped`]).
pub fn current() -> Option<Sandbox> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The ccache directory in use, if any (`CCACHE_DIR`, else ccache's default).
pub fn ccache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CCACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let home = dirs::home_dir()?;
    [home.join(".cache/ccache"), home.join(".ccache")]
        .into_iter()
        .find(|d| d.is_dir())
}

impl Sandbox {
    /// A sandbox writing only to `writable`, with the default limits.
    pub fn new(writable: Vec<PathBuf>) -> Self {
        Sandbox {
            writable,
            limits: Limits::default(),
        }
    }

    /// Whether bubblewrap can be used here.
    pub fn available() -> bool {
        Command::new("bwrap")
            .args(["--ro-bind", "/", "/", "--unshare-net", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// bwrap's arguments up to the program: `cwd` is the directory the
    /// program starts in; `extra` are writable besides [`Sandbox::writable`].
    pub fn bwrap_args(&self, cwd: &Path, extra: &[&Path]) -> Vec<String> {
        let mut a: Vec<String> = [
            "--die-with-parent",
            "--new-session",
            "--unshare-net",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--hostname",
            "csdci-sandbox",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--size",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(self.limits.tmp_size.to_string());
        a.extend(["--tmpfs".into(), "/tmp".into()]);
        let mut paths: Vec<&Path> = self.writable.iter().map(PathBuf::as_path).collect();
        paths.extend(extra);
        for p in paths {
            if p.exists() {
                let s = p.to_string_lossy().into_owned();
                a.extend(["--bind".into(), s.clone(), s]);
            }
        }
        a.extend([
            "--setenv".into(),
            "TMPDIR".into(),
            "/tmp".into(),
            "--chdir".into(),
            cwd.to_string_lossy().into_owned(),
        ]);
        a
    }

    /// A guarded command (see [`crate::process_group::command`]) running
    /// `program` in the sandbox from `cwd`, with `extra` writable too; add
    /// the program's arguments with `.arg`. The rlimits are set in the
    /// child; the returned cgroup (if any) must live until it ends.
    pub fn command(
        &self,
        name: &str,
        program: &str,
        cwd: &Path,
        extra: &[&Path],
    ) -> (Command, Option<PidsCgroup>) {
        let mut cmd = crate::process_group::command(name, "bwrap");
        cmd.args(self.bwrap_args(cwd, extra)).arg("--").arg(program);
        let cg = PidsCgroup::new(self.limits.processes);
        let procs = cg.as_ref().and_then(|c| {
            CString::new(c.dir.join("cgroup.procs").as_os_str().as_encoded_bytes()).ok()
        });
        let l = self.limits.clone();
        // SAFETY: only async-signal-safe calls (setrlimit, open, write,
        // close) between fork and exec; the path was allocated before.
        unsafe {
            cmd.pre_exec(move || {
                use nix::sys::resource::{Resource, setrlimit};
                setrlimit(Resource::RLIMIT_AS, l.memory, l.memory)?;
                setrlimit(Resource::RLIMIT_CPU, l.cpu_s, l.cpu_s)?;
                setrlimit(Resource::RLIMIT_FSIZE, l.file_size, l.file_size)?;
                setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
                if let Some(p) = &procs {
                    let fd = libc_open(p);
                    if fd >= 0 {
                        let _ = nix::unistd::write(std::os::fd::BorrowedFd::borrow_raw(fd), b"0\n");
                        let _ = nix::unistd::close(fd);
                    }
                }
                Ok(())
            });
        }
        (cmd, cg)
    }

    /// Runs `sh -c script` in the sandbox from `cwd` to its end or the wall
    /// limit, output collected (last 64 KiB) and appended to `log`.
    pub fn run(&self, cwd: &Path, script: &str, log: Option<&Path>) -> Result<Ran, Error> {
        let (mut cmd, cg) = self.command("csdci-sandbox", "sh", cwd, &[]);
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = crate::process_group::Group::spawn(&mut cmd).map_err(Error::Spawn)?;
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut readers = Vec::new();
        for s in [
            child
                .child_mut()
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .child_mut()
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 8192];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        const KEEP: usize = 64 << 10;
        let mut out: Vec<u8> = Vec::new();
        let mut timed_out = false;
        let mut status = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(b) => {
                    out.extend_from_slice(&b);
                    if out.len() > 2 * KEEP {
                        out.drain(..out.len() - KEEP);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if start.elapsed() > self.limits.wall {
                timed_out = true;
                status = Some(child.kill().map_err(Error::Io)?);
                drop(cg);
                break;
            }
        }
        let status = match status {
            Some(s) => s,
            None => child
                .wait_while(|| true)
                .map_err(Error::Io)?
                .ok_or_else(|| Error::Io(std::io::Error::other("lost the sandboxed process")))?,
        };
        for r in readers {
            let _ = r.join();
        }
        if out.len() > KEEP {
            out.drain(..out.len() - KEEP);
        }
        let output = String::from_utf8_lossy(&out).into_owned();
        if let Some(log) = log {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
            {
                let _ = f.write_all(output.as_bytes());
            }
        }
        Ok(Ran {
            code: if timed_out { None } else { status.code() },
            timed_out,
            output,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// `open(path, O_WRONLY)` without allocating (for `pre_exec`).
fn libc_open(path: &CString) -> i32 {
    use std::os::fd::IntoRawFd;
    match nix::fcntl::open(
        path.as_c_str(),
        nix::fcntl::OFlag::O_WRONLY,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd.into_raw_fd(),
        Err(_) => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_bind_writable_after_tmp() {
        let t = tempfile::tempdir().unwrap();
        let sb = Sandbox::new(vec![t.path().to_path_buf()]);
        let a = sb.bwrap_args(t.path(), &[]);
        let tmp = a.iter().position(|x| x == "/tmp").unwrap();
        let bind = a.iter().position(|x| x == "--bind").unwrap();
        assert!(tmp < bind);
        assert!(a.contains(&"--unshare-net".to_string()));
    }
}
