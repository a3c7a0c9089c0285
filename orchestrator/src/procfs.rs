//! The one reader of `/proc/PID/stat` (proc(5)).
//!
//! Field 2 (`comm`, in parentheses) may itself hold spaces and parentheses,
//! so the fields after it are split after the *last* `)`.

/// The fields of `/proc/PID/stat` csdci reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// Field 5: the process group id.
    pub pgrp: i32,
    /// Field 22: start time, in clock ticks since boot.
    pub start_time: u64,
}

impl Stat {
    /// True when the process has exited (a zombie not yet reaped, or dead).
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// `/proc/PID/stat` of `pid`, or `None` when the process does not exist (or
/// the file cannot be parsed).
pub fn stat(pid: u32) -> Option<Stat> {
    parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses the text of a `/proc/PID/stat` file.
pub fn parse(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    // rest's fields are numbered from 3 (state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_with_spaces_and_parentheses() {
        let text = "4242 (a) b (c)) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615\n";
        assert_eq!(
            parse(text),
            Some(Stat {
                state: 'S',
                pgrp: 4240,
                start_time: 987654,
            })
        );
        let zombie = "7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0 0\n";
        assert!(parse(zombie).unwrap().is_zombie());
        assert_eq!(parse("7 (sh"), None);
        assert_eq!(parse("7 (sh) S 1 7"), None);
    }

    #[test]
    fn this_process() {
        let me = stat(std::process::id()).unwrap();
        assert!(!me.is_zombie());
        assert!(me.start_time > 0);
        assert_eq!(me.pgrp, nix::unistd::getpgrp().as_raw());
    }
}
