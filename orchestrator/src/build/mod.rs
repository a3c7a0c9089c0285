//! Kernel builds: a csdci-owned worktree per repository with its out-of-tree
//! `O=` build directory inside it (so kbuild uses relative paths and ccache hits
//! across worktrees), the verified .config from [`crate::kconfig`], `make
//! vmlinux modules` with ccache when present, the build log kept, and the result
//! stored in the content-addressed [`cache`]. A cache hit runs neither git
//! checkout nor make. One build at a time per data directory (`build.lock`).
//! A compile error is "untestable", never a kernel failure.

pub mod cache;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use sha2::Digest;

use crate::io_error::PathIo;
use crate::kconfig::{self, Fragment};
use crate::lockfile;
use crate::vcs::{self, worktree::Worktree};
pub use cache::{Cache, CacheKey, Entry};

/// Build errors (infrastructure; a kernel that does not compile is not an error
/// but [`Outcome::Untestable`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kconfig(kconfig::Error),
    #[error(transparent)]
    Io(#[from] PathIo),
    #[error(
        "cannot run {tool}: {source} (install it: apt-get install build-essential flex bison bc libelf-dev libssl-dev)"
    )]
    Tool {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed; log: {log}")]
    Make { what: String, log: PathBuf },
    #[error("interrupted")]
    Cancelled,
}

impl Error {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io(PathIo::new(path, source))
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The user's git tree (never modified; csdci adds its own worktree).
    pub repo: &'a Path,
    /// Full commit sha.
    pub commit: &'a str,
    /// Config fragments, applied in order on top of `tinyconfig`.
    pub fragments: &'a [Fragment],
    /// csdci's data directory.
    pub data_dir: &'a Path,
}

/// A usable kernel.
#[derive(Debug, Clone)]
pub struct Built {
    /// The cache entry holding it.
    pub entry: Entry,
    /// True when it came from the cache.
    pub cached: bool,
    /// True when `make` ran (config or compile).
    pub make_invoked: bool,
    /// Seconds this step took.
    pub seconds: f64,
}

/// A commit that cannot be tested.
#[derive(Debug, Clone)]
pub struct Untestable {
    /// One-line reason.
    pub reason: String,
    /// The first compiler error lines (`file:line:col: error: ...`).
    pub errors: Vec<String>,
    /// The kept build log.
    pub log: Option<PathBuf>,
}

/// Result of [`build`].
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Built or found in the cache.
    Ready(Built),
    /// Does not configure or compile.
    Untestable(Untestable),
}

/// Progress reports.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A new step started.
    Stage(&'static str),
    /// One line of make's output.
    Line(String),
}

/// First line of `gcc --version`.
pub fn compiler_version() -> Result<String, Error> {
    let out = Command::new("gcc")
        .arg("--version")
        .output()
        .map_err(|source| Error::Tool {
            tool: "gcc".into(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

fn have_ccache() -> bool {
    Command::new("ccache")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The worktree csdci keeps for `repo` (one per repository, so consecutive
/// builds of nearby commits are incremental). Under
/// [`crate::sandbox::scoped`] (untrusted code) it is another one,
/// `sandboxed-<name>-<hash>`, so what a sandboxed build leaves in its build
/// tree (a replaced `fixdep`, an ignored file) never reaches a trusted
/// build; both are registered in the same mirror.
pub fn worktree_dir(data_dir: &Path, repo: &Path) -> PathBuf {
    let canon = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
    let h = cache::sha256_hex(canon.to_string_lossy().as_bytes());
    let name = canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tree".into());
    let prefix = if crate::sandbox::current().is_some() {
        "sandboxed-"
    } else {
        ""
    };
    data_dir
        .join("worktrees")
        .join(format!("{prefix}{name}-{}", &h[..12]))
}

/// The `O=` directory of a worktree (a direct subdirectory, so kbuild uses
/// `srctree := ..`; kbuild writes a `.gitignore` into it, so git leaves it alone).
pub fn objtree(worktree: &Path) -> PathBuf {
    worktree.join(".csdci-build")
}

/// Holds `<data-dir>/build.lock`: one kernel build at a time.
pub struct BuildLock {
    _lock: lockfile::Lock,
}

impl BuildLock {
    /// Waits for the lock, polling `cancel`.
    pub fn acquire(data_dir: &Path, cancel: &AtomicBool) -> Result<Self, Error> {
        let path = data_dir.join("build.lock");
        let mut said = false;
        loop {
            if let Some(lock) = lockfile::try_lock(&path).map_err(Error::io(&path))? {
                return Ok(BuildLock { _lock: lock });
            }
            if !said {
                tracing::info!("waiting for another csdci build ({})", path.display());
                said = true;
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Builds `req.commit` (or finds it in the cache).
pub fn build(
    req: &Request<'_>,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, Error> {
    let start = Instant::now();
    let cache = Cache::new(req.data_dir);
    // Asked of csdci's mirror, which also holds the commits csdci made (reverts).
    let tree_id = vcs::mirror::Mirror::beside(&worktree_dir(req.data_dir, req.repo), req.repo)
        .and_then(|m| {
            vcs::git(
                m.path(),
                &["rev-parse", &format!("{}^{{tree}}", req.commit)],
            )
        })
        .map_err(|e| Error::io(req.repo)(std::io::Error::other(e.to_string())))?;
    let compiler = compiler_version()?;
    let ckey = cache::config_key(&tree_id, &compiler, req.fragments);
    let lookup = |config: &str| {
        let key = CacheKey {
            tree_id: tree_id.clone(),
            config_hash: cache::sha256_hex(config.as_bytes()),
            compiler: compiler.clone(),
        };
        (cache.lookup(&key), key)
    };
    let hit = |entry: Entry, make_invoked: bool| {
        Outcome::Ready(Built {
            entry,
            cached: true,
            make_invoked,
            seconds: start.elapsed().as_secs_f64(),
        })
    };
    if let Some(config) = cache.config(&ckey)
        && let (Some(entry), _) = lookup(&config)
    {
        return Ok(hit(entry, false));
    }

    progress(Progress::Stage("waiting for build lock"));
    let _lock = BuildLock::acquire(req.data_dir, cancel)?;
    cache.clean_staging();
    reap_stale_make(req.data_dir);
    if let Some(config) = cache.config(&ckey)
        && let (Some(entry), _) = lookup(&config)
    {
        return Ok(hit(entry, false));
    }

    progress(Progress::Stage("checking out"));
    let wt_path = worktree_dir(req.data_dir, req.repo);
    let vcs_err =
        |e: vcs::Error| Error::Io(PathIo::new(&wt_path, std::io::Error::other(e.to_string())));
    let wt = Worktree::ensure(req.repo, &wt_path).map_err(vcs_err)?;
    wt.checkout(req.commit).map_err(vcs_err)?;
    let obj = objtree(wt.path());
    std::fs::create_dir_all(&obj).map_err(Error::io(&obj))?;

    let config = match cache.config(&ckey) {
        Some(c) => c,
        None => {
            progress(Progress::Stage("configuring"));
            match kconfig::resolve(wt.path(), &obj, req.fragments) {
                Ok(c) => {
                    cache.store_config(&ckey, &c).map_err(Error::io(&obj))?;
                    c
                }
                Err(e @ (kconfig::Error::Dropped(_) | kconfig::Error::Make { .. })) => {
                    return Ok(Outcome::Untestable(Untestable {
                        reason: format!("kernel configuration failed: {e}"),
                        errors: Vec::new(),
                        log: None,
                    }));
                }
                Err(e) => return Err(Error::Kconfig(e)),
            }
        }
    };
    let (entry, key) = lookup(&config);
    if let Some(entry) = entry {
        return Ok(hit(entry, true));
    }

    // Install the config only when it changed, so kbuild's syncconfig keeps
    // every object that does not depend on a changed option.
    let dotconfig = obj.join(".config");
    if std::fs::read_to_string(&dotconfig).ok().as_deref() != Some(config.as_str()) {
        std::fs::write(&dotconfig, &config).map_err(Error::io(&dotconfig))?;
    }

    progress(Progress::Stage("compiling"));
    let log_path = obj.join("csdci-build.log");
    let mut log = std::fs::File::create(&log_path).map_err(Error::io(&log_path))?;
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get()) + 1;
    let mut args = vec![format!("-j{jobs}"), "vmlinux".into(), "modules".into()];
    if have_ccache() {
        args.push("CC=ccache gcc".into());
    }
    let status = run_make(
        req.data_dir,
        wt.path(),
        &obj,
        &args,
        &mut log,
        cancel,
        progress,
    )?;
    if !status {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let errors = compiler_errors(&text);
        let kept = keep_failed_log(req.data_dir, req.commit, &log_path);
        let reason = match errors.first() {
            Some(first) => format!("build failed: {first}"),
            None => "build failed (see the build log)".to_string(),
        };
        return Ok(Outcome::Untestable(Untestable {
            reason,
            errors,
            log: kept,
        }));
    }

    progress(Progress::Stage("installing modules"));
    let staging = cache.staging().map_err(Error::io(&obj))?;
    let mod_path = staging.join("modules");
    let install = [
        format!("INSTALL_MOD_PATH={}", mod_path.display()),
        "INSTALL_MOD_STRIP=1".into(),
        "modules_install".into(),
    ];
    if !run_make(
        req.data_dir,
        wt.path(),
        &obj,
        &install,
        &mut log,
        cancel,
        progress,
    )? {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(Error::Make {
            what: "make modules_install".into(),
            log: log_path,
        });
    }
    drop(log);
    let copy = |from: &Path, to: &str| -> Result<(), Error> {
        std::fs::copy(from, staging.join(to))
            .map(|_| ())
            .map_err(Error::io(from))
    };
    copy(&obj.join("vmlinux"), "vmlinux")?;
    let bz = obj.join("arch/x86/boot/bzImage");
    if bz.is_file() {
        copy(&bz, "bzImage")?;
    }
    copy(&dotconfig, "config")?;
    copy(&log_path, "build.log")?;
    let release_file = obj.join("include/config/kernel.release");
    let release = std::fs::read_to_string(&release_file)
        .map_err(Error::io(&release_file))?
        .trim()
        .to_string();
    let artifact_id =
        cache::artifact_id(&staging.join("vmlinux"), &mod_path).map_err(Error::io(&staging))?;
    let manifest = cache::Manifest {
        key,
        artifact_id,
        release,
        commit: req.commit.to_string(),
        build_seconds: start.elapsed().as_secs_f64(),
        created: chrono::Utc::now().to_rfc3339(),
    };
    let entry = cache
        .commit(&staging, manifest)
        .map_err(Error::io(&staging))?;
    Ok(Outcome::Ready(Built {
        entry,
        cached: false,
        make_invoked: true,
        seconds: start.elapsed().as_secs_f64(),
    }))
}

fn keep_failed_log(data_dir: &Path, commit: &str, log: &Path) -> Option<PathBuf> {
    let dir = data_dir.join("logs");
    std::fs::create_dir_all(&dir).ok()?;
    let short = &commit[..commit.len().min(12)];
    let dest = dir.join(format!(
        "build-{short}-{}.log",
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::copy(log, &dest).ok()?;
    Some(dest)
}

/// Runs make in `obj` for the tree `src`, teeing output to `log` and `progress`.
/// Make runs in its own process group, dies with csdci (PR_SET_PDEATHSIG) and
/// is killed (group and all) when `cancel` is set. Returns make's success.
/// The file naming the process group of the make that runs now.
fn make_pgid_file(data_dir: &Path) -> PathBuf {
    data_dir.join("build.make-pgid")
}

/// Kills what is left of a make whose csdci was SIGKILLed (make itself dies
/// with csdci, but compilers it started may still write into the build
/// directory). Only processes of the recorded process group that work inside
/// the recorded worktree are killed. Call with the build lock held.
fn reap_stale_make(data_dir: &Path) {
    let file = make_pgid_file(data_dir);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return;
    };
    let _ = std::fs::remove_file(&file);
    let Some((pgid, dir)) = text.trim().split_once(' ') else {
        return;
    };
    let Ok(pgid) = pgid.parse::<i32>() else {
        return;
    };
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Some(stat) = crate::procfs::stat(pid as u32) else {
            continue;
        };
        let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
        if stat.pgrp == pgid && cwd.starts_with(dir) {
            tracing::warn!("killing pid {pid} left by an interrupted kernel build");
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn run_make(
    data_dir: &Path,
    src: &Path,
    obj: &Path,
    args: &[String],
    log: &mut std::fs::File,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<bool, Error> {
    // make runs under a tiny shell that leads the process group: when csdci
    // dies, the shell gets SIGTERM (PR_SET_PDEATHSIG) and kills the whole group,
    // sub-makes and compilers included (they would outlive a killed make).
    // Under `crate::sandbox::scoped` (the patch bot's untrusted series) the
    // same make runs inside bubblewrap, writable only the source, the object
    // tree, the modules staging dir and the sandbox's own paths (ccache).
    let sandbox = crate::sandbox::current();
    let (mut cmd, _pids) = match &sandbox {
        Some(sb) => {
            let staging: Vec<PathBuf> = args
                .iter()
                .filter_map(|a| a.strip_prefix("INSTALL_MOD_PATH="))
                .map(PathBuf::from)
                .inspect(|p| {
                    let _ = std::fs::create_dir_all(p);
                })
                .collect();
            let mut rw: Vec<&Path> = vec![src, obj];
            rw.extend(staging.iter().map(PathBuf::as_path));
            sb.command("csdci-make", "make", src, &rw)
        }
        None => (crate::process_group::command("csdci-make", "make"), None),
    };
    cmd.arg("-C")
        .arg(src)
        .arg(format!("O={}", obj.display()))
        .args(args)
        // Reproducible output: the same source and config give the same bytes,
        // so artifact ids spot no-op commits.
        .env("KBUILD_BUILD_TIMESTAMP", "Sat Jan  1 00:00:00 UTC 2000")
        .env("KBUILD_BUILD_USER", "csdci")
        .env("KBUILD_BUILD_HOST", "csdci")
        .env("KBUILD_BUILD_VERSION", "1")
        .env_remove("KCONFIG_CONFIG")
        .env_remove("MAKEFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tracing::debug!("make {}", args.join(" "));
    let mut child = cmd.spawn().map_err(|source| Error::Tool {
        tool: "make".into(),
        source,
    })?;
    let pgid = Pid::from_raw(child.id() as i32);
    let pgid_file = make_pgid_file(data_dir);
    let _ = std::fs::write(&pgid_file, format!("{} {}\n", child.id(), src.display()));
    let (tx, rx) = mpsc::channel::<String>();
    let mut readers = Vec::new();
    let stdout = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    for stream in [stdout, stderr].into_iter().flatten() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut killed = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let _ = writeln!(log, "{line}");
                progress(Progress::Line(line));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if cancel.load(Ordering::Relaxed) && !killed {
            let _ = killpg(pgid, Signal::SIGTERM);
            std::thread::sleep(Duration::from_millis(500));
            let _ = killpg(pgid, Signal::SIGKILL);
            killed = true;
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().map_err(|source| Error::Tool {
        tool: "make".into(),
        source,
    })?;
    let _ = log.flush();
    let _ = std::fs::remove_file(&pgid_file);
    if killed {
        return Err(Error::Cancelled);
    }
    if status.code() == Some(127) {
        return Err(Error::Tool {
            tool: "make".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "make: not found"),
        });
    }
    Ok(status.success())
}

/// The first compiler/linker error lines of a build log (at most 3), paths made
/// relative to the source tree. Falls back to make's own error lines.
pub fn compiler_errors(log: &str) -> Vec<String> {
    let re = regex::Regex::new(r"^(?:\.\./)?(\S+?:\d+:\d+: (?:fatal )?error: .*)$")
        .expect("static regex");
    let mut out: Vec<String> = log
        .lines()
        .filter_map(|l| re.captures(l).map(|c| c[1].to_string()))
        .take(3)
        .collect();
    if out.is_empty() {
        out = log
            .lines()
            .filter(|l| {
                l.contains("undefined reference")
                    || l.contains(": error:")
                    || (l.starts_with("make") && l.contains("Error"))
                    || l.starts_with("***")
            })
            .map(|l| l.trim_start_matches("../").to_string())
            .take(3)
            .collect();
    }
    out
}

/// sha256 hex of a string (the config hash).
pub fn config_hash(config: &str) -> String {
    hex::encode(sha2::Sha256::digest(config.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_first_compiler_errors() {
        let log = "  CC      kernel/smp.o\n../kernel/smp.c:42:5: error: expected ';' before '}' token\n   42 | x\n../kernel/smp.c:50:1: error: foo\nmake[3]: *** [x] Error 1\n";
        let e = compiler_errors(log);
        assert_eq!(
            e,
            vec![
                "kernel/smp.c:42:5: error: expected ';' before '}' token",
                "kernel/smp.c:50:1: error: foo"
            ]
        );
        let e = compiler_errors(
            "ld: vmlinux.o: undefined reference to `x'\nmake: *** [Makefile] Error 2\n",
        );
        assert_eq!(e[0], "ld: vmlinux.o: undefined reference to `x'");
    }

    #[test]
    fn worktree_dir_is_stable_per_repo() {
        let d = Path::new("/data");
        assert_eq!(
            worktree_dir(d, Path::new("/nonexistent/linux")),
            worktree_dir(d, Path::new("/nonexistent/linux"))
        );
        assert_ne!(
            worktree_dir(d, Path::new("/a/linux")),
            worktree_dir(d, Path::new("/b/linux"))
        );
    }
}
