//! The `--run` command, checked before anything is tested: a script named by a
//! relative path is resolved against the directory csdci was started from (the
//! command runs in csdci's own checkout, where an untracked script is not), and
//! a command that does not exist or cannot be executed is refused, so exit 126
//! or 127 never counts as "bad".

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

/// Characters after which the first word of a shell command ends.
const WORD_END: &[char] = &[' ', '\t', '\n', ';', '&', '|', '<', '>', '(', ')'];
/// Characters that make a word something only the shell can expand.
const EXPANDED: &[char] = &['$', '`', '\\', '"', '\'', '*', '?', '[', '~', '{'];

/// Quotes `s` for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Checks `cmd` and returns it with a relative script path made absolute
/// (against `cwd`); `tree` is the repository, where a tracked script may live.
pub fn resolve(cmd: &str, cwd: &Path, tree: &Path) -> Result<String, String> {
    // The first word after leading `NAME=value` assignments.
    let mut rest = cmd.trim_start();
    let mut offset = cmd.len() - rest.len();
    let word = loop {
        let end = rest.find(WORD_END).unwrap_or(rest.len());
        let w = &rest[..end];
        let is_assignment = w.split_once('=').is_some_and(|(n, _)| {
            !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !is_assignment || end == rest.len() {
            break w;
        }
        let next = rest[end..].trim_start();
        offset += rest.len() - next.len();
        rest = next;
    };
    if word.is_empty() || word.contains(EXPANDED) {
        // Shell syntax (a subshell, quotes, variables): the shell decides;
        // exit 126/127 still aborts the bisection.
        return Ok(cmd.to_string());
    }
    if !word.contains('/') {
        let found = Command::new("sh")
            .args(["-c", "command -v -- \"$1\" >/dev/null", "sh", word])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        return if found {
            Ok(cmd.to_string())
        } else {
            Err(format!(
                "'{word}': command not found (give a path to a script, e.g. ./{word})"
            ))
        };
    }
    let path = Path::new(word);
    let (script, from_cwd) = if path.is_absolute() {
        (path.to_path_buf(), false)
    } else if cwd.join(path).exists() {
        (cwd.join(path), true)
    } else if tree.join(path).exists() {
        // In the repository: it runs from csdci's checkout of each commit.
        return Ok(cmd.to_string());
    } else {
        return Err(format!(
            "'{word}': no such file in {} (a relative script is looked up in the directory csdci is started from) nor in the tree {}",
            cwd.display(),
            tree.display()
        ));
    };
    let meta = std::fs::metadata(&script).map_err(|e| format!("'{}': {e}", script.display()))?;
    if !meta.is_file() {
        return Err(format!("'{}' is not a file", script.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "'{}' is not executable (chmod +x {}, or run it as 'sh {word}')",
            script.display(),
            word
        ));
    }
    if !from_cwd {
        return Ok(cmd.to_string());
    }
    let script = std::path::absolute(&script).unwrap_or(script);
    let mut out = cmd[..offset].to_string();
    out.push_str(&quote(&script.to_string_lossy()));
    out.push_str(&cmd[offset + word.len()..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, mode: u32) {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn relative_scripts_resolve_against_the_start_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let (cwd, tree) = (tmp.path().join("cwd"), tmp.path().join("tree"));
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::create_dir_all(tree.join("tools")).unwrap();
        script(&cwd, "t.sh", 0o755);
        script(&cwd, "plain.sh", 0o644);
        script(&tree.join("tools"), "in-tree.sh", 0o755);
        let abs = format!("'{}'", cwd.join("t.sh").display());
        assert_eq!(resolve("./t.sh", &cwd, &tree).unwrap(), abs);
        assert_eq!(
            resolve("  FOO=1 ./t.sh --x; echo", &cwd, &tree).unwrap(),
            format!("  FOO=1 {abs} --x; echo")
        );
        assert_eq!(
            resolve("./tools/in-tree.sh", &cwd, &tree).unwrap(),
            "./tools/in-tree.sh"
        );
        let e = resolve("./missing.sh", &cwd, &tree).unwrap_err();
        assert!(
            e.contains("no such file") && e.contains("missing.sh"),
            "{e}"
        );
        let e = resolve("./plain.sh", &cwd, &tree).unwrap_err();
        assert!(
            e.contains("not executable") && e.contains("chmod +x"),
            "{e}"
        );
        let e = resolve("no-such-command-xyz arg", &cwd, &tree).unwrap_err();
        assert!(e.contains("command not found"), "{e}");
        // Builtins, shell syntax and commands on PATH pass as they are.
        for ok in [
            "test ! -f BUG",
            "exit 0",
            "! grep -q bad state",
            "(exit 1)",
            "$T",
            "grep -q x y",
        ] {
            assert_eq!(resolve(ok, &cwd, &tree).unwrap(), ok);
        }
    }
}
