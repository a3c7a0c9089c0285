//! One process at a time: an exclusive `flock` on a file, which the kernel
//! releases when its holder ends, however it ends (SIGKILL included).

use std::fs::File;
use std::io;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    _flock: Flock<File>,
}

/// Takes the lock on `path` (creating the file and its directory) without
/// waiting; `Ok(None)` while another process holds it.
pub fn try_lock(path: &Path) -> io::Result<Option<Lock>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(flock) => Ok(Some(Lock { _flock: flock })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("x.lock");
        let held = try_lock(&path).unwrap().expect("free lock");
        // flock locks belong to the open file, so a second open conflicts even
        // within one process, as another process would.
        assert!(try_lock(&path).unwrap().is_none());
        drop(held);
        assert!(try_lock(&path).unwrap().is_some());
    }
}
