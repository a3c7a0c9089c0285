//! Any bytes through the bot's mbox splitter, mail parser, series assembly
//! and subject parser: nothing may panic.
#![no_main]

use csdci::bot::series::{assemble, parse_mail, parse_subject, split_mbox};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mails: Vec<_> = split_mbox(data, 64)
        .iter()
        .chain(std::iter::once(&data.to_vec()))
        .filter_map(|m| parse_mail(m).ok())
        .collect();
    for s in assemble(&mails) {
        let _ = (s.complete(), s.missing(), s.paths(), s.mbox());
    }
    if let Ok(t) = std::str::from_utf8(data) {
        let _ = parse_subject(t);
    }
});
