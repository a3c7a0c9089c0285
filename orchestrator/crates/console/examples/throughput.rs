//! Feeds a file to the analyzer in 64 KiB chunks and prints MB/s (a quick check;
//! `csdci bench parse` is the real benchmark).

use std::io::Read;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: throughput FILE");
        std::process::exit(3);
    };
    let mut f = std::fs::File::open(&path)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut a = csdci_console::Analyzer::new();
    let mut total = 0usize;
    let t = Instant::now();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
        a.feed(&buf[..n]);
    }
    let r = a.finish();
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} bytes in {:.3}s = {:.0} MB/s; {} findings kept, {} dropped, title {:?}",
        total,
        s,
        total as f64 / s / 1e6,
        r.findings.len(),
        r.dropped_findings,
        r.title
    );
    Ok(())
}
