//! Owned child processes: every process csdci starts for a VM (QEMU, virtiofsd)
//! lives in its own process group, dies with the thread that spawned it
//! (`PR_SET_PDEATHSIG(SIGKILL)`), is killed (whole group) when its owner is
//! dropped, and leaves a pid file under `<data_dir>/procs` so that the next csdci
//! start can kill what a SIGKILLed csdci left behind ([`reap_stale`]).
//!
//! NB: Linux sends the death signal when the *thread* that spawned the child
//! exits, so spawn from the thread that lives for the whole run.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::procfs;

/// Folder (under the data directory) that holds one pid file per live child.
pub fn procs_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("procs")
}

/// A child process that is killed, with its whole process group, on drop.
#[derive(Debug)]
pub struct OwnedChild {
    child: Child,
    name: String,
    pid_file: Option<PathBuf>,
    exited: Option<ExitStatus>,
}

impl OwnedChild {
    /// Spawns `cmd` as `name` (for messages) in a new process group with
    /// `PR_SET_PDEATHSIG(SIGKILL)`, and records a pid file in `procs_dir`.
    pub fn spawn(mut cmd: Command, name: &str, procs_dir: &Path) -> io::Result<Self> {
        let parent = std::process::id();
        cmd.process_group(0);
        // SAFETY: the closure only calls async-signal-safe functions (prctl,
        // getppid, _exit) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                // The parent may have died before prctl: then nobody owns us.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    nix::libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let mut owned = OwnedChild {
            child,
            name: name.to_string(),
            pid_file: None,
            exited: None,
        };
        fs::create_dir_all(procs_dir)?;
        let pid = owned.child.id();
        let record = PidRecord {
            pid,
            start: start_time(pid).unwrap_or(0),
            owner: parent,
            owner_start: start_time(parent).unwrap_or(0),
            name: name.to_string(),
        };
        let path = procs_dir.join(format!("{pid}.pid"));
        fs::write(&path, record.to_line())?;
        owned.pid_file = Some(path);
        Ok(owned)
    }

    /// The child's pid (also its process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the child's piped stdout, if it was piped.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Takes the child's piped stderr, if it was piped.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Returns the exit status if the child has exited (reaping it).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(st) = self.exited {
            return Ok(Some(st));
        }
        let st = self.child.try_wait()?;
        self.exited = st;
        Ok(st)
    }

    /// Waits up to `timeout` for the child to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait()? {
                return Ok(Some(st));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the child's whole process group with SIGKILL, reaps the child and
    /// removes its pid file. Idempotent.
    pub fn kill(&mut self) {
        let pid = self.child.id() as i32;
        // The group outlives the leader when the leader forked (virtiofsd's
        // sandbox), so always signal the group, even after the leader exited.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        if self.exited.is_none() {
            let _ = self.child.kill();
            if let Ok(st) = self.child.wait() {
                self.exited = Some(st);
            }
        }
        if let Some(p) = self.pid_file.take() {
            let _ = fs::remove_file(p);
        }
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a pid file records: enough to recognise the same process (and its
/// owner) after pid reuse.
#[derive(Debug, Clone, PartialEq)]
struct PidRecord {
    pid: u32,
    start: u64,
    owner: u32,
    owner_start: u64,
    name: String,
}

impl PidRecord {
    fn to_line(&self) -> String {
        format!(
            "{} {} {} {} {}\n",
            self.pid, self.start, self.owner, self.owner_start, self.name
        )
    }

    fn parse(s: &str) -> Option<Self> {
        let mut it = s.split_whitespace();
        Some(PidRecord {
            pid: it.next()?.parse().ok()?,
            start: it.next()?.parse().ok()?,
            owner: it.next()?.parse().ok()?,
            owner_start: it.next()?.parse().ok()?,
            name: it.collect::<Vec<_>>().join(" "),
        })
    }
}

/// Start time (clock ticks since boot, field 22 of `/proc/PID/stat`) of a live
/// process, or `None` when it does not exist.
pub fn start_time(pid: u32) -> Option<u64> {
    procfs::stat(pid).map(|s| s.start_time)
}

/// True when `pid` is a live (not zombie) process that started at `start`.
fn alive_as(pid: u32, start: u64) -> bool {
    procfs::stat(pid).is_some_and(|s| !s.is_zombie() && s.start_time == start)
}

/// Kills the children that an earlier csdci left behind (it was SIGKILLed
/// before it could clean up) and removes their pid files. Children whose owner
/// is still alive (another csdci running now) are left alone. Returns a short
/// description of each process killed.
pub fn reap_stale(data_dir: &Path) -> io::Result<Vec<String>> {
    let dir = procs_dir(data_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut killed = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "pid") {
            continue;
        }
        let Some(rec) = fs::read_to_string(&path)
            .ok()
            .and_then(|s| PidRecord::parse(&s))
        else {
            let _ = fs::remove_file(&path);
            continue;
        };
        if alive_as(rec.owner, rec.owner_start) {
            continue;
        }
        if alive_as(rec.pid, rec.start) {
            let _ = killpg(Pid::from_raw(rec.pid as i32), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(rec.pid as i32), Signal::SIGKILL);
            killed.push(format!("{} (pid {})", rec.name, rec.pid));
        }
        let _ = fs::remove_file(&path);
    }
    Ok(killed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    fn gone(pid: u32) -> bool {
        // A zombie still has /proc/PID; its state is 'Z'.
        procfs::stat(pid).is_none_or(|s| s.state == 'Z')
    }

    #[test]
    fn drop_kills_child_and_grandchildren() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        // The grandchild prints its pid then both sleep.
        cmd.args(["-c", "sleep 1000 & echo $!; wait"])
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = OwnedChild::spawn(cmd, "test-sh", &procs_dir(dir.path())).unwrap();
        let pid = child.id();
        let mut out = child.take_stdout().unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        io::BufReader::new(&mut out).read_line(&mut line).unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        assert!(!gone(pid) && !gone(grandchild));
        assert!(procs_dir(dir.path()).join(format!("{pid}.pid")).exists());
        drop(child);
        std::thread::sleep(Duration::from_millis(200));
        assert!(gone(pid), "child {pid} survived drop");
        assert!(gone(grandchild), "grandchild {grandchild} survived drop");
        assert!(!procs_dir(dir.path()).join(format!("{pid}.pid")).exists());
    }

    #[test]
    fn reap_stale_kills_orphans_of_a_dead_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let procs = procs_dir(dir.path());
        fs::create_dir_all(&procs).unwrap();
        // A process standing in for a leftover of a SIGKILLed csdci.
        let mut orphan = Command::new("sleep");
        orphan.arg("1000").process_group(0);
        let mut orphan = orphan.spawn().unwrap();
        let opid = orphan.id();
        // Owner: a process that has exited (pid 1's start time never matches
        // a fake owner start of u64::MAX).
        let rec = PidRecord {
            pid: opid,
            start: start_time(opid).unwrap(),
            owner: 1,
            owner_start: u64::MAX,
            name: "qemu".into(),
        };
        fs::write(procs.join(format!("{opid}.pid")), rec.to_line()).unwrap();
        // A child of a live owner (us) must be left alone.
        let mut mine = Command::new("sleep").arg("1000").spawn().unwrap();
        let mpid = mine.id();
        let rec2 = PidRecord {
            pid: mpid,
            start: start_time(mpid).unwrap(),
            owner: std::process::id(),
            owner_start: start_time(std::process::id()).unwrap(),
            name: "virtiofsd".into(),
        };
        fs::write(procs.join(format!("{mpid}.pid")), rec2.to_line()).unwrap();

        let killed = reap_stale(dir.path()).unwrap();
        assert_eq!(killed, vec![format!("qemu (pid {opid})")]);
        let st = orphan.wait().unwrap();
        assert!(!st.success());
        assert!(!procs.join(format!("{opid}.pid")).exists());
        assert!(procs.join(format!("{mpid}.pid")).exists());
        assert!(mine.try_wait().unwrap().is_none());
        mine.kill().unwrap();
        mine.wait().unwrap();
    }

    #[test]
    fn pid_record_round_trips() {
        let r = PidRecord {
            pid: 12,
            start: 34,
            owner: 56,
            owner_start: 78,
            name: "qemu probe".into(),
        };
        assert_eq!(PidRecord::parse(&r.to_line()), Some(r));
        assert_eq!(PidRecord::parse("garbage"), None);
    }
}
