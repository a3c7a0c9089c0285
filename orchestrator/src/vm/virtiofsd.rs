//! virtiofsd: serves the guest's root folder over vhost-user.
//!
//! Debian bookworm ships QEMU 7.2's C virtiofsd at `/usr/lib/qemu/virtiofsd`
//! (`CSDCI_VIRTIOFSD` overrides the path). It runs in the run folder (so the
//! socket path is short and relative), in the foreground, logging to
//! `virtiofsd.log` there.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Error;
use super::process::OwnedChild;

/// Where virtiofsd is looked for, in order.
const CANDIDATES: &[&str] = &[
    "/usr/lib/qemu/virtiofsd",
    "/usr/libexec/virtiofsd",
    "/usr/lib/virtiofsd",
];

/// Socket file name in the run folder.
pub const SOCKET: &str = "virtiofs.sock";

/// Longest socket path that fits `sockaddr_un.sun_path` with room to spare.
const MAX_SOCKET_PATH: usize = 100;

/// The vhost-user socket of the run in `run_dir`: an absolute path, unique per
/// run. C virtiofsd derives its pid-file lock from the socket path, so a relative
/// name shared by all runs would make concurrent guests collide; a run folder
/// too deep for `sun_path` gets a unique name in the temporary folder instead.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    let abs = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    let p = abs.join(SOCKET);
    if p.as_os_str().len() <= MAX_SOCKET_PATH {
        return p;
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    abs.hash(&mut h);
    std::env::temp_dir().join(format!("csdci-vfs-{:016x}.sock", h.finish()))
}
/// Log file name, relative to the run folder.
pub const LOG: &str = "virtiofsd.log";

/// Finds the virtiofsd binary.
pub fn binary() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("CSDCI_VIRTIOFSD") {
        return Ok(PathBuf::from(p));
    }
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or(Error::NoVirtiofsd)
}

/// virtiofsd's arguments for sharing `root`.
pub fn argv(root: &Path, socket: &Path) -> Vec<OsString> {
    let mut src = OsString::from("source=");
    src.push(root);
    let mut sock = OsString::from("--socket-path=");
    sock.push(socket);
    vec![
        "-f".into(),
        sock,
        "-o".into(),
        src,
        "-o".into(),
        "cache=auto".into(),
        "-o".into(),
        "log_level=warn".into(),
    ]
}

/// Starts virtiofsd for `root` in `run_dir` and waits until its socket is ready.
pub fn spawn(root: &Path, run_dir: &Path, procs_dir: &Path) -> Result<OwnedChild, Error> {
    let bin = binary()?;
    let socket = socket_path(run_dir);
    let _ = std::fs::remove_file(&socket);
    let log_path = run_dir.join(LOG);
    let log = File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let log2 = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
    let mut cmd = Command::new(&bin);
    cmd.args(argv(root, &socket))
        .current_dir(run_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let mut child = OwnedChild::spawn(cmd, "virtiofsd", procs_dir).map_err(|e| Error::Spawn {
        program: bin.display().to_string(),
        source: e,
    })?;
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if socket.exists() {
            return Ok(child);
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(Error::VirtiofsdDied {
                status: st.to_string(),
                log: super::tail_of(&log_path),
            });
        }
        if Instant::now() > end {
            return Err(Error::VirtiofsdDied {
                status: "no socket after 10 s".into(),
                log: super::tail_of(&log_path),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_shares_the_root_in_the_foreground() {
        let a: Vec<String> = argv(Path::new("/r/root"), Path::new("/r/virtiofs.sock"))
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            a.join(" "),
            "-f --socket-path=/r/virtiofs.sock -o source=/r/root -o cache=auto -o log_level=warn"
        );
    }

    #[test]
    fn every_run_gets_its_own_absolute_socket_that_fits_sun_path() {
        let a = socket_path(Path::new("/d/runs/1"));
        let b = socket_path(Path::new("/d/runs/2"));
        assert_eq!(a, Path::new("/d/runs/1/virtiofs.sock"));
        assert_ne!(a, b);
        let deep = Path::new("/d").join("x".repeat(150));
        let s = socket_path(&deep);
        assert!(
            s.is_absolute() && s.as_os_str().len() <= MAX_SOCKET_PATH,
            "{s:?}"
        );
        assert_ne!(s, socket_path(&Path::new("/d").join("y".repeat(150))));
    }
}
