//! Child processes that cannot outlive csdci: a command runs under a tiny
//! guardian shell that leads a new process group, gets SIGTERM when csdci dies
//! (`PR_SET_PDEATHSIG`, kill -9 included) and then kills the whole group, the
//! command's children and grandchildren too (a killed `sh -c` or `make` would
//! leave them running). [`Group`] kills what is left of the group on every
//! exit path: when the command ends, when asked, and on drop.
//!
//! A process that moves itself to another process group or session (`setsid`)
//! escapes; test scripts and kernel builds do not.

use std::ffi::OsStr;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

/// The guardian: traps the signals that end it, starts the command in the
/// background (a trapped signal interrupts `wait` at once) and exits with the
/// command's status. On TERM/HUP/INT it SIGKILLs its whole process group.
const GUARDIAN: &str = "trap 'kill -KILL 0' TERM HUP INT; \"$@\" & wait $!";

/// How long [`Group::kill`] waits after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// A command running `program` (add its arguments with `.arg`) under the
/// guardian shell, in a new process group it leads; `name` is the guardian's
/// `$0` (shown by `ps`). Set stdio and environment on it as usual, then
/// [`Group::spawn`] it.
pub fn command(name: &str, program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(GUARDIAN)
        .arg(name)
        .arg(program)
        .process_group(0);
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)?;
            // csdci died before the death signal was armed: never start.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(io::Error::other("csdci exited"));
            }
            Ok(())
        });
    }
    cmd
}

/// A running guarded command and its process group.
#[derive(Debug)]
pub struct Group {
    child: Child,
    status: Option<ExitStatus>,
}

impl Group {
    /// Spawns a command made by [`command`].
    pub fn spawn(cmd: &mut Command) -> io::Result<Group> {
        Ok(Group {
            child: cmd.spawn()?,
            status: None,
        })
    }

    /// The guardian's process (and process group) id.
    pub fn pgid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The child handle (to take its stdout/stderr pipes).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The command's exit status once it has ended, without blocking; what it
    /// left running in its group is killed first.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        if !self.leader_exited()? {
            return Ok(None);
        }
        Ok(Some(self.reap()?))
    }

    /// Waits for the command to end (polling every 50 ms) while `keep_going`
    /// says so; `Ok(None)` when `keep_going` returned false (the group is still
    /// running then: [`Group::kill`] it or drop it).
    pub fn wait_while(
        &mut self,
        mut keep_going: impl FnMut() -> bool,
    ) -> io::Result<Option<ExitStatus>> {
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if !keep_going() {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the whole group (SIGTERM, then SIGKILL after a short grace) and
    /// reaps the guardian.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let _ = killpg(self.pgid(), Signal::SIGTERM);
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline && !self.leader_exited()? {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.reap()
    }

    /// True once the guardian has exited (it stays a zombie, so its pid, the
    /// group id, cannot be reused until [`Group::reap`]).
    fn leader_exited(&self) -> io::Result<bool> {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        loop {
            match waitid(Id::Pid(self.pgid()), flags) {
                Ok(WaitStatus::StillAlive) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// SIGKILLs what is left of the group and reaps the guardian.
    fn reap(&mut self) -> io::Result<ExitStatus> {
        let _ = killpg(self.pgid(), Signal::SIGKILL);
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        // A zombie (reparented to a pid 1 that does not reap) is dead too.
        crate::procfs::stat(pid as u32).is_some_and(|s| s.state != 'Z')
    }

    fn pids(file: &std::path::Path) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if text.ends_with("done\n") {
                return text.lines().filter_map(|l| l.parse().ok()).collect();
            }
            assert!(Instant::now() < deadline, "no pids in {}", file.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn status_of_the_command_and_its_leftovers_killed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pids");
        let mut cmd = command("csdci-test", "sh");
        cmd.arg("-c")
            .arg("sleep 1000 & echo $! > \"$0\"; echo done >> \"$0\"; exit 7")
            .arg(&file)
            .stderr(std::process::Stdio::null());
        let mut g = Group::spawn(&mut cmd).unwrap();
        let status = g.wait_while(|| true).unwrap().unwrap();
        assert_eq!(status.code(), Some(7));
        let left = pids(&file);
        assert_eq!(left.len(), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while left.iter().any(|&p| alive(p)) {
            assert!(Instant::now() < deadline, "leftover sleep survived");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn kill_and_drop_end_the_whole_group() {
        for drop_it in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("pids");
            let mut cmd = command("csdci-test", "sh");
            cmd.arg("-c")
                .arg(
                    "sleep 1000 & echo $! > \"$0\"; \
                     (sleep 1000 & echo $! >> \"$0\"; echo done >> \"$0\"; wait) & wait",
                )
                .arg(&file)
                .stderr(std::process::Stdio::null());
            let mut g = Group::spawn(&mut cmd).unwrap();
            let left = pids(&file);
            assert_eq!(left.len(), 2);
            let start = Instant::now();
            if drop_it {
                drop(g);
            } else {
                let status = g.kill().unwrap();
                assert!(!status.success());
            }
            assert!(start.elapsed() < Duration::from_secs(3));
            let deadline = Instant::now() + Duration::from_secs(5);
            while left.iter().any(|&p| alive(p)) {
                assert!(Instant::now() < deadline, "a sleep survived");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
