//! Kernel configuration: config fragments (parsed strictly, with `file:line`
//! errors), merged onto `make tinyconfig` with the kernel's own
//! `scripts/kconfig/merge_config.sh -m`, completed by `make olddefconfig`, and
//! verified: every option a fragment asks for must survive, or the error names it
//! and the `depends on` line of its Kconfig entry.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::io_error::PathIo;

/// The fragments every csdci guest kernel is built with, embedded so the binary
/// works from any directory: (file name, text).
pub const DEFAULT_FRAGMENTS: &[(&str, &str)] = &[
    (
        "qemu-base.config",
        include_str!("../../configs/qemu-base.config"),
    ),
    (
        "csd-debug.config",
        include_str!("../../configs/csd-debug.config"),
    ),
    (
        "scftorture.config",
        include_str!("../../configs/scftorture.config"),
    ),
];

/// Kconfig errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{file}:{line}: bad config fragment line '{text}' ({reason}); expected CONFIG_X=y|m|n|\"string\"|number|0xhex, '# CONFIG_X is not set', a comment or a blank line"
    )]
    Syntax {
        file: String,
        line: usize,
        text: String,
        reason: &'static str,
    },
    #[error("cannot read config fragment {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}", dropped_message(.0))]
    Dropped(Vec<Dropped>),
    #[error("{what} failed (exit {code:?}): {tail}")]
    Make {
        what: String,
        code: Option<i32>,
        tail: String,
    },
    #[error(transparent)]
    Io(#[from] PathIo),
}

fn dropped_message(d: &[Dropped]) -> String {
    let items: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    format!(
        "the kernel configuration dropped {} requested option(s): {}",
        d.len(),
        items.join("; ")
    )
}

/// A requested option that did not survive `olddefconfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    /// Option name without `CONFIG_`.
    pub name: String,
    /// What the fragment asked for (`y`, `"str"`, `is not set`...).
    pub requested: String,
    /// Where it was asked for (`file:line`).
    pub source: String,
    /// What the final .config says (`is not set` when absent).
    pub actual: String,
    /// `file:line: depends on ...` lines of its Kconfig entry; empty when the tree
    /// has no such option.
    pub depends: Vec<String>,
    /// True when no Kconfig file of the tree defines the option.
    pub unknown: bool,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CONFIG_{}={} ({}) became {}",
            self.name, self.requested, self.source, self.actual
        )?;
        if self.unknown {
            write!(f, ": no Kconfig file of this tree defines {}", self.name)
        } else if self.depends.is_empty() {
            write!(
                f,
                ": its Kconfig entry has no 'depends on' line (a choice, a select or a limited range decided it)"
            )
        } else {
            write!(f, ": {}", self.depends.join(", "))
        }
    }
}

/// A value in a config fragment or .config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `=y`
    Yes,
    /// `=m`
    Module,
    /// `=n` or `# CONFIG_X is not set`
    No,
    /// `="..."` (kept with its quotes, as in .config)
    Str(String),
    /// A decimal or `0x` hex number, as written.
    Num(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Yes => f.write_str("y"),
            Value::Module => f.write_str("m"),
            Value::No => f.write_str("n"),
            Value::Str(s) | Value::Num(s) => f.write_str(s),
        }
    }
}

/// One config fragment: a display name and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// Where it came from (a path, or `<embedded>/name`), used in error messages.
    pub name: String,
    /// The fragment's text.
    pub text: String,
}

impl Fragment {
    /// The fragments embedded in csdci.
    pub fn defaults() -> Vec<Fragment> {
        DEFAULT_FRAGMENTS
            .iter()
            .map(|(n, t)| Fragment {
                name: format!("configs/{n}"),
                text: (*t).to_string(),
            })
            .collect()
    }

    /// Reads a user fragment and checks its syntax.
    pub fn load(path: &Path) -> Result<Fragment, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let frag = Fragment {
            name: path.display().to_string(),
            text,
        };
        frag.settings()?;
        Ok(frag)
    }

    /// The settings of this fragment, in order.
    pub fn settings(&self) -> Result<Vec<Setting>, Error> {
        parse(&self.name, &self.text)
    }
}

/// One `CONFIG_X=...` line of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Option name without `CONFIG_`.
    pub name: String,
    /// Requested value.
    pub value: Value,
    /// `file:line` of the request.
    pub source: String,
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse_value(v: &str) -> Result<Value, &'static str> {
    match v {
        "y" => return Ok(Value::Yes),
        "m" => return Ok(Value::Module),
        "n" => return Ok(Value::No),
        "" => return Err("empty value"),
        _ => {}
    }
    if let Some(inner) = v.strip_prefix('"') {
        let Some(body) = inner.strip_suffix('"') else {
            return Err("unterminated string");
        };
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.next().is_none() => {
                    return Err("dangling backslash in string");
                }
                '"' => return Err("unescaped quote in string"),
                _ => {}
            }
        }
        return Ok(Value::Str(v.to_string()));
    }
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Value::Num(v.to_string()));
        }
        return Err("bad hex number");
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Value::Num(v.to_string()));
    }
    Err("value is not y, m, n, a quoted string or a number")
}

/// Parses a fragment (or a .config): every line must be `CONFIG_X=value`,
/// `# CONFIG_X is not set`, a comment or blank.
pub fn parse(file: &str, text: &str) -> Result<Vec<Setting>, Error> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |reason| Error::Syntax {
            file: file.to_string(),
            line: i + 1,
            text: raw.to_string(),
            reason,
        };
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let c = comment.trim();
            if let Some(rest) = c.strip_prefix("CONFIG_")
                && let Some(name) = rest.strip_suffix(" is not set")
            {
                if !is_name(name) {
                    return Err(err("bad option name"));
                }
                out.push(Setting {
                    name: name.to_string(),
                    value: Value::No,
                    source: format!("{file}:{}", i + 1),
                });
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(err("no '='"));
        };
        let Some(name) = key.strip_prefix("CONFIG_") else {
            return Err(err("option name must start with CONFIG_"));
        };
        if !is_name(name) || key != key.trim() {
            return Err(err("bad option name"));
        }
        let value = parse_value(value).map_err(err)?;
        out.push(Setting {
            name: name.to_string(),
            value,
            source: format!("{file}:{}", i + 1),
        });
    }
    Ok(out)
}

/// Parses a final .config into name → value (absent options are "not set").
pub fn parse_dotconfig(text: &str) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("CONFIG_")
            && let Some((name, value)) = rest.split_once('=')
        {
            let v = match value {
                "y" => Value::Yes,
                "m" => Value::Module,
                "n" => Value::No,
                v if v.starts_with('"') => Value::Str(v.to_string()),
                v => Value::Num(v.to_string()),
            };
            map.insert(name.to_string(), v);
        }
    }
    map
}

fn same_number(a: &str, b: &str) -> bool {
    let num = |s: &str| -> Option<i128> {
        if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            i128::from_str_radix(h, 16).ok()
        } else {
            s.parse().ok()
        }
    };
    a == b || matches!((num(a), num(b)), (Some(x), Some(y)) if x == y)
}

/// Checks that every requested setting (the last request of each option wins)
/// is what `final_config` says. `srctree` is searched for the Kconfig entries of
/// dropped options.
pub fn verify(srctree: &Path, fragments: &[Fragment], final_config: &str) -> Result<(), Error> {
    let mut wanted: BTreeMap<String, Setting> = BTreeMap::new();
    for f in fragments {
        for s in f.settings()? {
            wanted.insert(s.name.clone(), s);
        }
    }
    let have = parse_dotconfig(final_config);
    let mut dropped = Vec::new();
    for (name, s) in &wanted {
        let actual = have.get(name).cloned().unwrap_or(Value::No);
        let ok = match (&s.value, &actual) {
            (Value::Num(a), Value::Num(b)) => same_number(a, b),
            (a, b) => a == b,
        };
        if !ok {
            let (depends, unknown) = kconfig_depends(srctree, name);
            dropped.push(Dropped {
                name: name.clone(),
                requested: if s.value == Value::No {
                    "n".into()
                } else {
                    s.value.to_string()
                },
                source: s.source.clone(),
                actual: if actual == Value::No {
                    "not set".into()
                } else {
                    format!("={actual}")
                },
                depends,
                unknown,
            });
        }
    }
    if dropped.is_empty() {
        Ok(())
    } else {
        Err(Error::Dropped(dropped))
    }
}

/// Finds `config NAME` in the tree's Kconfig files and returns the
/// `file:line: depends on ...` lines of each entry, and whether none was found.
pub fn kconfig_depends(srctree: &Path, name: &str) -> (Vec<String>, bool) {
    let pattern = format!("^[[:space:]]*(menu)?config[[:space:]]+{name}[[:space:]]*$");
    let out = Command::new("git")
        .arg("-C")
        .arg(srctree)
        .args(["grep", "-n", "-E", &pattern, "--", "*Kconfig*"])
        .output();
    let hits: Vec<(String, usize)> = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':');
                let file = it.next()?.to_string();
                let line = it.next()?.parse().ok()?;
                Some((file, line))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    if hits.is_empty() {
        return (Vec::new(), true);
    }
    let mut deps = Vec::new();
    for (file, line) in hits {
        let Ok(text) = std::fs::read_to_string(srctree.join(&file)) else {
            continue;
        };
        for (j, l) in text.lines().enumerate().skip(line) {
            let t = l.trim();
            let first = t.split_whitespace().next().unwrap_or("");
            if matches!(
                first,
                "config"
                    | "menuconfig"
                    | "endmenu"
                    | "menu"
                    | "choice"
                    | "endchoice"
                    | "if"
                    | "endif"
                    | "source"
                    | "comment"
                    | "mainmenu"
            ) {
                break;
            }
            if t.starts_with("depends on") {
                deps.push(format!("{file}:{}: {t}", j + 1));
            }
        }
    }
    (deps, false)
}

/// Runs `make` for a config target and turns a failure into [`Error::Make`].
/// Under [`crate::sandbox::scoped`] (untrusted code) it runs in the
/// sandbox, writable only the source and object trees.
fn make(srctree: &Path, objtree: &Path, kconfig: &Path, target: &str) -> Result<(), Error> {
    let (mut cmd, _pids) = sandboxed("make", srctree, &[srctree, objtree]);
    let out = cmd
        .arg("-C")
        .arg(srctree)
        .arg(format!("O={}", objtree.display()))
        .arg(target)
        .env("KCONFIG_CONFIG", kconfig)
        .output()
        .map_err(|source| Error::Io(PathIo::new("make", source)))?;
    if out.status.success() {
        return Ok(());
    }
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    let tail: Vec<&str> = all.lines().rev().take(8).collect();
    Err(Error::Make {
        what: format!("make {target}"),
        code: out.status.code(),
        tail: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
    })
}

/// `program` as a command: plain, or inside this thread's sandbox (see
/// [`crate::sandbox::current`]) starting in `cwd` with `rw` writable.
fn sandboxed(
    program: &str,
    cwd: &Path,
    rw: &[&Path],
) -> (Command, Option<crate::sandbox::PidsCgroup>) {
    match crate::sandbox::current() {
        Some(sb) => sb.command("csdci-kconfig", program, cwd, rw),
        None => (Command::new(program), None),
    }
}

/// Produces the final .config text for `fragments` on the tree `srctree`, using
/// `objtree` (the `O=` build directory) as scratch space: `make tinyconfig`,
/// `merge_config.sh -m`, `make olddefconfig`, then [`verify`]. The build's own
/// `.config` is not touched.
pub fn resolve(srctree: &Path, objtree: &Path, fragments: &[Fragment]) -> Result<String, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io(PathIo::new(path, source))
    };
    let scratch = objtree.join("csdci-kconfig");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(io(&scratch))?;
    }
    std::fs::create_dir_all(&scratch).map_err(io(&scratch))?;
    let candidate = scratch.join("candidate.config");
    make(srctree, objtree, &candidate, "tinyconfig")?;
    let mut paths = Vec::new();
    for (i, f) in fragments.iter().enumerate() {
        f.settings()?;
        let p = scratch.join(format!("{i:02}.config"));
        std::fs::write(&p, &f.text).map_err(io(&p))?;
        paths.push(p);
    }
    let script = srctree.join("scripts/kconfig/merge_config.sh");
    let (mut cmd, _pids) = sandboxed("sh", &scratch, &[srctree, objtree]);
    let out = cmd
        .arg(&script)
        .arg("-m")
        .arg(&candidate)
        .args(&paths)
        .current_dir(&scratch)
        .env("KCONFIG_CONFIG", &candidate)
        .output()
        .map_err(io(&script))?;
    if !out.status.success() {
        return Err(Error::Make {
            what: "merge_config.sh".into(),
            code: out.status.code(),
            tail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    make(srctree, objtree, &candidate, "olddefconfig")?;
    let text = std::fs::read_to_string(&candidate).map_err(io(&candidate))?;
    verify(srctree, fragments, &text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_fragments_parse() {
        for f in Fragment::defaults() {
            assert!(!f.settings().unwrap().is_empty(), "{}", f.name);
        }
    }

    #[test]
    fn parses_every_value_form() {
        let s = parse(
            "x.config",
            "# c\n\nCONFIG_A=y\nCONFIG_B=m\nCONFIG_C=n\n# CONFIG_D is not set\nCONFIG_E=\"a \\\"b\\\"\"\nCONFIG_F=42\nCONFIG_G=0x1f\nCONFIG_H=-1\n",
        )
        .unwrap();
        let v: Vec<_> = s
            .iter()
            .map(|s| (s.name.as_str(), s.value.clone()))
            .collect();
        assert_eq!(v[0], ("A", Value::Yes));
        assert_eq!(v[1], ("B", Value::Module));
        assert_eq!(v[2], ("C", Value::No));
        assert_eq!(v[3], ("D", Value::No));
        assert_eq!(v[4].1, Value::Str("\"a \\\"b\\\"\"".into()));
        assert_eq!(v[5].1, Value::Num("42".into()));
        assert_eq!(v[6].1, Value::Num("0x1f".into()));
        assert_eq!(s[7].source, "x.config:10");
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        for bad in [
            "CONFIG_A=yes",
            "A=y",
            "CONFIG_A",
            "CONFIG_A=\"x",
            "CONFIG_A B=y",
            "CONFIG_A=0xzz",
            "CONFIG_A=",
        ] {
            let e = parse("frag.config", &format!("# ok\n{bad}\n")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("frag.config:2: "), "{msg}");
            assert!(msg.contains(bad), "{msg}");
        }
    }

    #[test]
    fn verify_reports_dropped_with_dependency() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q"]);
        std::fs::write(
            dir.path().join("Kconfig"),
            "config FOO\n\tbool \"foo\"\n\tdepends on BAR && SMP\n\nconfig BAR\n\tbool\n",
        )
        .unwrap();
        run(&["add", "Kconfig"]);
        let frags = vec![Fragment {
            name: "f.config".into(),
            text: "CONFIG_FOO=y\nCONFIG_NR=0x10\nCONFIG_NOPE=y\n# CONFIG_BAR is not set\n".into(),
        }];
        let e = verify(dir.path(), &frags, "CONFIG_NR=16\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("CONFIG_FOO=y (f.config:1) became not set"),
            "{msg}"
        );
        assert!(msg.contains("Kconfig:3: depends on BAR && SMP"), "{msg}");
        assert!(
            msg.contains("no Kconfig file of this tree defines NOPE"),
            "{msg}"
        );
        assert!(!msg.contains("CONFIG_NR"), "{msg}");
        assert!(!msg.contains("CONFIG_BAR"), "{msg}");
        verify(dir.path(), &frags[..0], "CONFIG_FOO=y\n").unwrap();
    }
}
