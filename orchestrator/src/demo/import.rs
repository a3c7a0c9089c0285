//! The demo's base: a git repository made from Debian's `linux-source-6.12`
//! tarball, committed once with a fixed author and date (so the same tarball
//! gives the same commit ids everywhere) and tagged `demo-base`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Error, git_env};

/// Debian's kernel source tarball.
pub const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
/// The Debian package that ships it.
pub const PACKAGE: &str = "linux-source-6.12";
/// Tag of the imported tree.
pub const BASE_TAG: &str = "demo-base";
/// Date of the base commit (Linux 6.12 was released on 2024-11-17).
pub const BASE_DATE: &str = "2024-11-17T22:00:00+00:00";

/// Makes sure `tarball` exists, installing Debian's package when it is the default one.
pub fn ensure_tarball(tarball: &Path) -> Result<(), Error> {
    if tarball.is_file() {
        return Ok(());
    }
    if tarball != Path::new(TARBALL) {
        return Err(Error::NoTarball {
            path: tarball.to_path_buf(),
            hint: "pass an existing kernel tarball".into(),
        });
    }
    tracing::info!("{TARBALL} is missing: installing {PACKAGE}");
    if apt_install(Path::new("apt-get"), PACKAGE) && tarball.is_file() {
        Ok(())
    } else {
        Err(Error::NoTarball {
            path: tarball.to_path_buf(),
            hint: format!("install it as root: apt-get update && apt-get install {PACKAGE}"),
        })
    }
}

/// `apt-get update`, then `apt-get install -y PACKAGE` (a fresh machine has no
/// package lists, so the install alone fails); true when the install worked.
fn apt_install(apt_get: &Path, package: &str) -> bool {
    let run = |args: &[&str]| {
        Command::new(apt_get)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    // A failed update (offline, a broken mirror) may still leave usable lists.
    if !run(&["update", "-q"]) {
        tracing::warn!("apt-get update failed; trying the install anyway");
    }
    run(&["install", "-y", "-q", package])
}

/// Turns off git's automatic `gc` and maintenance in the repository at `dir`,
/// for csdci's git commands and the user's own later ones alike: committing the
/// 92k-file tree otherwise starts a background gc that holds `.git/HEAD.lock`
/// for minutes.
pub fn disable_auto_gc(dir: &Path) -> Result<(), Error> {
    for (key, value) in [("gc.auto", "0"), ("maintenance.auto", "false")] {
        git_env(dir, &["config", key, value], &[])?;
    }
    Ok(())
}

/// Returns the sha of `demo-base` in `dir`, importing the tarball first if needed.
pub fn ensure_base(dir: &Path, tarball: &Path) -> Result<String, Error> {
    if dir.join(".git").is_dir() {
        if let Ok(sha) = git_env(
            dir,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{BASE_TAG}^{{commit}}"),
            ],
            &[],
        ) {
            return Ok(sha);
        }
        return Err(Error::ForeignRepo(dir.to_path_buf()));
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::ForeignRepo(dir.to_path_buf()));
    }
    ensure_tarball(tarball)?;
    let tmp = staging_dir(dir);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    tracing::info!(
        "unpacking {} (1.7 GB) into {}",
        tarball.display(),
        tmp.display()
    );
    let status = Command::new("tar")
        .arg("-xJf")
        .arg(tarball)
        .arg("-C")
        .arg(&tmp)
        .arg("--strip-components=1")
        .status()
        .map_err(|e| Error::io("tar", e))?;
    if !status.success() {
        return Err(Error::Tool {
            what: format!("tar -xJf {}", tarball.display()),
            detail: status.to_string(),
        });
    }
    strip_debian_gitignore(&tmp.join(".gitignore"))?;
    tracing::info!("committing the imported tree (92k files)");
    git_env(&tmp, &["init", "-q", "-b", "master"], &[])?;
    disable_auto_gc(&tmp)?;
    git_env(&tmp, &["add", "-A"], &[])?;
    let env = [
        ("GIT_AUTHOR_NAME", "csdci demo"),
        ("GIT_AUTHOR_EMAIL", "csdci-demo@example.org"),
        ("GIT_COMMITTER_NAME", "csdci demo"),
        ("GIT_COMMITTER_EMAIL", "csdci-demo@example.org"),
        ("GIT_AUTHOR_DATE", BASE_DATE),
        ("GIT_COMMITTER_DATE", BASE_DATE),
    ];
    git_env(
        &tmp,
        &[
            "commit",
            "-q",
            "-m",
            "Linux 6.12 (Debian linux-source-6.12)",
        ],
        &env,
    )?;
    git_env(&tmp, &["tag", BASE_TAG], &[])?;
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
    git_env(dir, &["rev-parse", &format!("{BASE_TAG}^{{commit}}")], &[])
}

fn staging_dir(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "linux".into());
    dir.with_file_name(format!(".{name}.importing"))
}

/// Debian's tarball ends its top-level .gitignore with a block that ignores
/// everything at the top level (`/*`); drop it so the tree behaves like upstream.
fn strip_debian_gitignore(path: &Path) -> Result<(), Error> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    if let Some(at) = text.find("#\n# Debian packaging") {
        std::fs::write(path, &text[..at]).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, key: &str) -> String {
        git_env(dir, &["config", "--get", key], &[]).unwrap_or_default()
    }

    #[test]
    fn auto_gc_is_off_in_the_imported_repository_for_plain_git_too() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("repo");
        std::fs::create_dir(&d).unwrap();
        // The user's own git settings ask for a gc at the first loose object,
        // in the foreground (so a gc that runs leaves its pack at once).
        let global = dir.path().join("gitconfig");
        std::fs::write(&global, "[gc]\n\tauto = 1\n\tautoDetach = false\n").unwrap();
        let git = |args: &[&str]| {
            let st = std::process::Command::new("git")
                .arg("-C")
                .arg(&d)
                .args(args)
                .env("GIT_CONFIG_GLOBAL", &global)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_NAME", "a")
                .env("GIT_AUTHOR_EMAIL", "a@example.org")
                .env("GIT_COMMITTER_NAME", "a")
                .env("GIT_COMMITTER_EMAIL", "a@example.org")
                .status()
                .unwrap();
            assert!(st.success(), "git {args:?}");
        };
        git(&["init", "-q"]);
        disable_auto_gc(&d).unwrap();
        assert_eq!(config(&d, "gc.auto"), "0");
        assert_eq!(config(&d, "maintenance.auto"), "false");
        for i in 0..600 {
            std::fs::write(d.join(format!("f{i}")), format!("{i}\n")).unwrap();
        }
        git(&["add", "-A"]);
        git(&["commit", "-qm", "many files"]);
        let packs = std::fs::read_dir(d.join(".git/objects/pack"))
            .unwrap()
            .count();
        assert_eq!(packs, 0, "git gc ran");
        assert!(!d.join(".git/gc.pid").exists());
    }

    #[test]
    fn apt_get_update_runs_before_the_install() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        let fake = dir.path().join("apt-get");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        assert!(apt_install(&fake, "linux-source-6.12"));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "update -q\ninstall -y -q linux-source-6.12\n"
        );
    }
}
