//! What the fixture tests share: reading a fixture, and analysing it whole and
//! in random chunks (the result must not depend on where the console was split).
#![allow(dead_code)] // each test binary uses its own part

use csdci_console::{Analysis, Analyzer, FindingKind, analyze};

pub fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Small deterministic generator (xorshift) for chunk sizes.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

pub fn analyze_chunked(bytes: &[u8], seed: u64) -> Analysis {
    let mut rng = Rng(seed | 1);
    let mut a = Analyzer::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = ((rng.next() % 97) as usize + 1).min(rest.len());
        a.feed(&rest[..n]);
        rest = &rest[n..];
    }
    a.finish()
}

pub fn check(name: &str) -> Analysis {
    let bytes = fixture(name);
    let whole = analyze(&bytes);
    for seed in 1..6 {
        assert_eq!(
            analyze_chunked(&bytes, seed),
            whole,
            "{name}: chunked feeding (seed {seed}) differs"
        );
    }
    whole
}

pub fn kinds(a: &Analysis) -> Vec<FindingKind> {
    a.findings.iter().map(|f| f.kind).collect()
}
