//! `cargo install --path orchestrator` gives a `csdci` that works from any
//! folder, without the repository: it is installed into a temporary root and run
//! from a temporary folder outside the checkout, with a temporary HOME.
//!
//! The install is a debug build into this workspace's own target directory, so it
//! reuses what `cargo test` has just built (a release install from scratch is the
//! same code, minutes slower). It needs `bash` (the completion is sourced) and
//! `man` (Debian's man-db, which `.ci/deps` installs) to render csdci.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (`orchestrator/..`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("orchestrator has a parent")
        .to_path_buf()
}

/// The target directory this test was built in (`CARGO_TARGET_TMPDIR` is its
/// `tmp/`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Whether `tool` runs; when it does not, fails the test as root (who can run
/// `.ci/deps`) and says loudly that the check is skipped otherwise.
fn have_tool(tool: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    assert!(
        !nix::unistd::Uid::effective().is_root(),
        "{tool} not found: run .ci/deps (installs Debian's {package})"
    );
    eprintln!(
        "!!! SKIPPED: {tool} not found and not root, so cannot install Debian's {package}; \
         this check did not run"
    );
    false
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(what: &str, o: &Output) -> String {
    format!(
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// The installed binary run in `cwd` with nothing of the build's environment.
fn csdci(bin: &Path, cwd: &Path, home: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(cwd).env("HOME", home);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO") || k.starts_with("CSDCI_") || k.starts_with("XDG_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.output().expect("installed csdci runs")
}

#[test]
fn installed_csdci_works_from_any_folder() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let started = std::time::Instant::now();
    let o = Command::new(cargo())
        .arg("install")
        .arg("--path")
        .arg(repo().join("orchestrator"))
        .args(["--debug", "--locked", "--root"])
        .arg(&root)
        .arg("--target-dir")
        .arg(target_dir())
        .current_dir(t.path())
        .output()
        .expect("cargo runs");
    assert!(o.status.success(), "{}", show("cargo install", &o));
    eprintln!(
        "cargo install took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let bin = root.join("bin/csdci");
    assert!(bin.is_file(), "cargo install put no {}", bin.display());

    // A folder that is neither in the checkout nor above it.
    let cwd = t.path().join("elsewhere");
    let home = t.path().join("home");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    assert!(!cwd.starts_with(repo()) && !repo().starts_with(&cwd));

    // --version: the version and the commit it was built from.
    let head = Command::new("git")
        .arg("-C")
        .arg(repo())
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .expect("git runs");
    assert!(head.status.success(), "{}", show("git rev-parse", &head));
    let o = csdci(&bin, &cwd, &home, &["--version"]);
    assert!(o.status.success(), "{}", show("csdci --version", &o));
    assert_eq!(
        text(&o.stdout),
        format!(
            "csdci {} (commit {})\n",
            env!("CARGO_PKG_VERSION"),
            text(&head.stdout).trim()
        )
    );

    // The kernel config fragments and the guest init are inside the binary.
    let image = std::fs::read(&bin).unwrap();
    for asset in [
        "configs/qemu-base.config",
        "configs/csd-debug.config",
        "configs/scftorture.config",
        "images/init.sh",
    ] {
        let want = std::fs::read(repo().join(asset)).unwrap();
        assert!(
            memchr::memmem::find(&image, &want).is_some(),
            "{asset} is not embedded in the installed csdci"
        );
    }

    // parse: a console log given from this folder, nothing else needed.
    let log = cwd.join("console.log");
    std::fs::copy(
        repo().join("orchestrator/crates/console/tests/fixtures/csd_soft_lockup.log"),
        &log,
    )
    .unwrap();
    let o = csdci(&bin, &cwd, &home, &["parse", "console.log"]);
    assert_eq!(o.status.code(), Some(1), "{}", show("csdci parse", &o));
    let out = text(&o.stdout);
    assert!(
        out.contains("title: BUG: soft lockup in smp_call_function"),
        "{out}"
    );
    assert!(out.contains("CSD locks:"), "{out}");

    // The store, under the default data dir in HOME: no bisections yet.
    let o = csdci(&bin, &cwd, &home, &["bisect", "list"]);
    assert!(o.status.success(), "{}", show("csdci bisect list", &o));
    assert!(
        text(&o.stdout).contains("status"),
        "{}",
        show("bisect list", &o)
    );

    // Completions, from the clap definitions.
    for (shell, marker) in [
        ("bash", "_csdci()"),
        ("zsh", "#compdef csdci"),
        ("fish", "complete -c csdci"),
    ] {
        let o = csdci(&bin, &cwd, &home, &["completions", shell]);
        assert!(o.status.success(), "{}", show("csdci completions", &o));
        let out = text(&o.stdout);
        assert!(
            out.len() > 2000,
            "{shell} completion is {} bytes",
            out.len()
        );
        assert!(out.contains(marker), "{shell} completion lacks {marker}");
        for sub in ["bisect", "parse", "bench", "demo", "completions", "man"] {
            assert!(out.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let script = cwd.join("csdci.bash");
    let o = csdci(&bin, &cwd, &home, &["completions", "bash"]);
    std::fs::write(&script, &o.stdout).unwrap();
    // Sourced by bash, it completes `csdci bi<TAB>` to the bisect subcommand.
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p csdci && COMP_WORDS=(csdci bi) && COMP_CWORD=1 \
             && _csdci csdci bi csdci && printf 'reply: %s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("bash runs");
    assert!(o.status.success(), "{}", show("bash completion", &o));
    let out = text(&o.stdout);
    assert!(out.contains("-F _csdci"), "{out}");
    assert!(out.contains("reply: bisect\n"), "{out}");

    // The man page renders.
    let o = csdci(&bin, &cwd, &home, &["man"]);
    assert!(o.status.success(), "{}", show("csdci man", &o));
    std::fs::write(cwd.join("csdci.1"), &o.stdout).unwrap();
    let o = csdci(&bin, &cwd, &home, &["man", "--dir", "man1"]);
    assert!(o.status.success(), "{}", show("csdci man --dir", &o));
    for page in ["csdci.1", "csdci-bisect.1", "csdci-bench-corpus.1"] {
        assert!(cwd.join("man1").join(page).is_file(), "no man1/{page}");
    }
    if have_tool("man", "man-db") {
        let o = Command::new("man")
            .args(["-l", "csdci.1"])
            .current_dir(&cwd)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("man runs");
        assert!(o.status.success(), "{}", show("man -l csdci.1", &o));
        let out = text(&o.stdout);
        for want in [
            "NAME",
            "SYNOPSIS",
            "SUBCOMMANDS",
            "csdci-bisect(1)",
            "VERSION",
        ] {
            assert!(out.contains(want), "man -l csdci.1 lacks {want}:\n{out}");
        }
    }

    // bench corpus outside any checkout: the source tree csdci was built from.
    let vendored = repo().join("orchestrator/crates/console/testdata/syzkaller/report");
    let o = csdci(&bin, &cwd, &home, &["bench", "corpus"]);
    assert!(o.status.success(), "{}", show("csdci bench corpus", &o));
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!("corpus: {} (747 files", vendored.display())),
        "{out}"
    );
    // Inside a checkout (here a stand-in with three cases), from a subfolder:
    // that checkout's copy.
    let fake = t.path().join("checkout");
    let fake_corpus = fake.join("orchestrator/crates/console/testdata/syzkaller/report");
    std::fs::create_dir_all(&fake_corpus).unwrap();
    for case in ["1", "2", "3"] {
        std::fs::copy(vendored.join(case), fake_corpus.join(case)).unwrap();
    }
    let sub = fake.join("orchestrator/src");
    std::fs::create_dir_all(&sub).unwrap();
    let o = csdci(&bin, &sub, &home, &["bench", "corpus"]);
    assert!(o.status.success(), "{}", show("csdci bench corpus", &o));
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!("corpus: {} (3 files", fake_corpus.display())),
        "{out}"
    );
}
