//! Title normalization: numbers, addresses, line numbers and offsets vary between runs
//! of the same bug, so titles replace them with placeholders (`NUM`, `ADDR`, `LINE`).

use std::sync::LazyLock;

use regex::Regex;

struct Rule {
    re: Regex,
    with: &'static str,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let r = |re: &str, with: &'static str| Rule {
        re: Regex::new(re).expect("static regex"),
        with,
    };
    vec![
        r(r"syz-executor\.?[0-9]+((/|:)[0-9]+)?", "syz-executor"),
        r(r"syzkaller[0-9]+((/|:)[0-9]+)?", "syzkaller"),
        r(r"([^a-zA-Z0])(?:0x)?[0-9a-f]{6,}", "${1}ADDR"),
        r(r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})", "IP"),
        r(r"(\.\w+)(:[0-9]+)+", "${1}:LINE"),
        r(r"([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+", "${1}"),
        r(r"CPU#[0-9]+", "CPU"),
        r(r"(\W)(\d+)(\W|$)", "${1}NUM${3}"),
    ]
});

/// Maximum title length; intermixed lines can be very long.
const MAX_LEN: usize = 120;

/// Normalizes a raw title: placeholders for varying parts, printable ASCII only,
/// single spaces, at most 120 characters.
pub fn normalize(raw: &str) -> String {
    let mut s = raw.to_string();
    for rule in RULES.iter() {
        // Repeat until stable: matches may overlap (e.g. "0,1,2").
        for _ in 0..16 {
            let next = rule.re.replace_all(&s, rule.with);
            if next == s {
                break;
            }
            s = next.into_owned();
        }
    }
    sanitize(&s)
}

fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_LEN));
    let mut prev = b' ';
    for &b in s.as_bytes().iter().take(MAX_LEN) {
        let c = match b {
            b'\t' => b' ',
            0..=0x1f | 0x7f..=0xff => continue,
            c => c,
        };
        if c == b' ' && prev == b' ' {
            continue;
        }
        out.push(c as char);
        prev = c;
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        assert_eq!(
            normalize("kernel BUG at fs/ext4/inode.c:2753!"),
            "kernel BUG at fs/ext4/inode.c:LINE!"
        );
        assert_eq!(normalize("WARNING in foo+0x12/0x40"), "WARNING in foo");
        assert_eq!(
            normalize("kernel panic: stuck on CPU#3 after 22 s"),
            "kernel panic: stuck on CPU after NUM s"
        );
        assert_eq!(normalize("a at ffff88801234abcd"), "a at ADDR");
        assert_eq!(
            normalize("task syz-executor.3:1234 x"),
            "task syz-executor x"
        );
    }
}
