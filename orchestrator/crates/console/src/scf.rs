//! scftorture's own console output (kernel/scftorture.c):
//!
//! ```text
//! scftorture: --- Start of test:  verbose=1 holdoff=10 ...
//! scftorture:  scf_invoked_count ver: 55450 resched: 0 single: 1/2 ... ste: 0 stnmie: 0 stnmoe: 0 staf: 0
//! scftorture:  !!! scf_invoked_count VER: ... ste: 1 stnmie: 0 stnmoe: 0 staf: 0
//! scf_handler: Memory-ordering failure, scfs_prim: 1.
//! scftorture: --- End of test: SUCCESS:  verbose=1 ...
//! ```

/// What one scftorture line says.
#[derive(Debug, PartialEq, Default)]
pub struct ScfLine {
    /// "--- Start of test".
    pub start: bool,
    /// Result of an "--- End of test: R" line.
    pub end: Option<String>,
    /// `scf_invoked_count` of a stats line.
    pub invocations: Option<u64>,
    /// Error counters (ste, stnmie, stnmoe, staf) of a stats line.
    pub errors: Option<[u64; 4]>,
    /// A stats line carrying scftorture's "!!!" error flag.
    pub bang: bool,
}

fn number_after(s: &str, key: &str) -> Option<u64> {
    let p = s.find(key)? + key.len();
    let digits: String = s[p..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Parses a line that contains scftorture output (or the tail of a stats line).
pub fn parse(text: &str) -> ScfLine {
    let mut out = ScfLine::default();
    if let Some(p) = text.find("scftorture: ") {
        let rest = &text[p + "scftorture: ".len()..];
        if rest.contains("--- Start of test") {
            out.start = true;
        }
        if let Some(q) = rest.find("--- End of test: ") {
            let r: String = rest[q + "--- End of test: ".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !r.is_empty() {
                out.end = Some(r);
            }
        }
        // "!!!" on a stats line means nonzero error counters; on other lines it
        // flags a setup message ("built as module, weight_resched ignored").
        if rest.trim_start().starts_with("!!!") && rest.contains("scf_invoked_count") {
            out.bang = true;
        }
    }
    if let Some(p) = text.find("scf_invoked_count ") {
        let rest = &text[p + "scf_invoked_count ".len()..];
        // "ver: N" or "VER: N"
        out.invocations = rest.find(": ").and_then(|q| number_after(&rest[q..], ":"));
    }
    if text.contains(" stnmie: ") {
        let ste = number_after(text, "ste:");
        let stnmie = number_after(text, "stnmie:");
        let stnmoe = number_after(text, "stnmoe:");
        let staf = number_after(text, "staf:");
        if let (Some(a), Some(b), Some(c), Some(d)) = (ste, stnmie, stnmoe, staf) {
            out.errors = Some([a, b, c, d]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_line() {
        let l = parse(
            "scftorture:  scf_invoked_count ver: 55450 resched: 10 single: 1/2 single_ofl: 0/0 single_rpc: 3 single_rpc_ofl: 0 many: 4/5 all: 6/7 ste: 0 stnmie: 1 stnmoe: 2 staf: 3",
        );
        assert_eq!(l.invocations, Some(55450));
        assert_eq!(l.errors, Some([0, 1, 2, 3]));
        assert!(!l.bang);
        let l = parse(
            "scftorture:  !!! scf_invoked_count VER: 7 resched: 0 ste: 1 stnmie: 0 stnmoe: 0 staf: 0",
        );
        assert!(l.bang);
        assert_eq!(l.invocations, Some(7));
    }

    #[test]
    fn setup_messages_are_not_errors() {
        assert!(!parse("scftorture: !!! built as module, weight_resched ignored").bang);
    }

    #[test]
    fn start_and_end() {
        assert!(parse("scftorture: --- Start of test:  verbose=1 holdoff=10").start);
        assert_eq!(
            parse("scftorture: --- End of test: SUCCESS:  verbose=1")
                .end
                .as_deref(),
            Some("SUCCESS")
        );
        assert_eq!(
            parse("scftorture: --- End of test: FAILURE:  verbose=1")
                .end
                .as_deref(),
            Some("FAILURE")
        );
    }
}
