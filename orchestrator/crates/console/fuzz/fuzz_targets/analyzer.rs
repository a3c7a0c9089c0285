//! Fuzz target: the analyzer must never panic or hang, and the analysis must not
//! depend on how the console was split into chunks.
//!
//! Run (stable toolchain): `RUSTC_BOOTSTRAP=1 cargo fuzz run analyzer` in this folder.

#![no_main]

use csdci_console::{Analyzer, analyze};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    let whole = analyze(body);
    let step = usize::from(ctl % 61) + 1;
    let mut a = Analyzer::new();
    for chunk in body.chunks(step) {
        a.feed(chunk);
        // The run pipeline polls these while feeding.
        let _ = (a.findings().len(), a.panicked(), a.workload_finished());
    }
    assert_eq!(a.finish(), whole, "chunking changed the analysis");
});
