//! `csdci bench web [--runs N] [--bisections N] [--nights N] [--rounds R]`:
//! the dashboard's server time on a big store. Fills a fresh data directory
//! through the store API with N runs (each with findings), N bisections (15
//! journalled steps with posteriors each, finished with a report) and the
//! nights of one job (2 cells each), serves it with the dashboard on
//! loopback and prints, per page, the median and the slowest of R requests
//! (request sent → response read, over a loopback connection). The target is
//! < 100 ms for the overview and the job history with 10,000 runs and 500
//! bisections. A measurement, never a timed assertion.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::Cli;
use crate::cli::EXIT_CLEAN;
use crate::store::Store;
use crate::store::findings::StoredFinding;
use crate::store::runs::{Finish, NewRun};

/// Arguments of `csdci bench web`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs in the store.
    #[arg(long, default_value_t = 10_000)]
    pub runs: u32,
    /// Bisections in the store.
    #[arg(long, default_value_t = 500)]
    pub bisections: u32,
    /// Nights of the job.
    #[arg(long, default_value_t = 365)]
    pub nights: u32,
    /// Requests per page.
    #[arg(long, default_value_t = 20)]
    pub rounds: u32,
}

/// The server-time target of the overview and the history.
const TARGET_MS: f64 = 100.0;

fn fail(m: impl std::fmt::Display) -> crate::Error {
    crate::Error::Usage(format!("bench web: {m}"))
}

fn sha(i: u32, salt: u32) -> String {
    format!(
        "{:08x}{:032x}",
        salt,
        u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    )
}

/// Fills `data` (a new data directory).
fn fill(data: &Path, args: &Args) -> crate::Result<()> {
    let store = Store::open(data)?;
    // A bench store need not survive a crash.
    store
        .conn()
        .pragma_update(None, "synchronous", "OFF")
        .map_err(fail)?;
    let console = data.join("console.log");
    std::fs::write(&console, "[    0.000000] Linux version 6.12\n").map_err(fail)?;
    let mut run_ids = Vec::new();
    for i in 0..args.runs {
        let id = store.insert_run(&NewRun {
            repo: "/srv/linux".into(),
            commit: sha(i, 1),
            vcpus: 8,
            memory_mb: 2048,
            accel_requested: "kvm".into(),
            scftorture: "nthreads=8".into(),
            duration_s: 60,
            build_seconds: Some(12.0),
            build_cached: Some(true),
            console_log: Some(console.display().to_string()),
            ..Default::default()
        })?;
        let failed = i % 7 == 0;
        let findings = if failed {
            vec![StoredFinding {
                ordinal: 0,
                kind: "csd_lock".into(),
                title: "csd: CSD lock timeout in smp_call_function_many_cond".into(),
                first_line: 1,
                last_line: None,
                start_byte: None,
                end_byte: None,
                cpu: Some(3),
                task: None,
                corrupted: false,
                crash_report: false,
            }]
        } else {
            Vec::new()
        };
        store.finish_run(
            id,
            &Finish {
                accel: Some("kvm".into()),
                boot_seconds: Some(3.0),
                test_seconds: Some(60.0),
                verdict: if failed { "failed" } else { "clean" }.into(),
                title: failed.then(|| findings[0].title.clone()),
                console_findings: findings,
                ..Default::default()
            },
        )?;
        run_ids.push(id);
    }
    for b in 0..args.bisections {
        let good = vec![sha(b, 2)];
        let id = store.bisect_create(&crate::store::bisect::NewBisection {
            repo: "/srv/linux",
            good: &good,
            bad: &sha(b, 3),
            first_parent: false,
            predicate: "csd",
            tester: "command",
            settings: "{}",
        })?;
        for s in 0..15u32 {
            let commit = sha(b * 100 + s, 4);
            let step = store.bisect_step_start(id, "run", &commit, Some(s))?;
            let titles = vec!["csd: CSD lock timeout".to_string()];
            store.bisect_step_finish(
                step,
                &crate::store::bisect::Finish {
                    outcome: if s % 2 == 0 { "fail" } else { "pass" },
                    titles: &titles,
                    seconds: Some(61.0),
                    run_id: run_ids.get((b * 15 + s) as usize).copied(),
                    ..Default::default()
                },
            )?;
            store.bisect_posterior(
                id,
                step,
                &crate::store::bisect::PosteriorRow {
                    stage: 1,
                    confidence: f64::from(s) / 15.0,
                    top: commit.clone(),
                    fail_rate: 0.5,
                    false_fail: 0.001,
                },
            )?;
        }
        let result = serde_json::json!({"id": id, "status": "culprit", "confidence": 0.99});
        store.bisect_finish(id, "done", Some(&result.to_string()), None)?;
    }
    for n in 0..args.nights {
        let night = store.night_start("nightly", "master", "/srv/linux", Some(&sha(n, 5)), None)?;
        for cell in ["vcpus=4", "vcpus=8"] {
            let mut c = store.cell_start(night, cell, "{}")?;
            c.status = if n % 10 == 0 { "failed" } else { "clean" }.into();
            c.runs = 5;
            c.fails = if n % 10 == 0 { 2 } else { 0 };
            c.run_ids = run_ids
                .iter()
                .skip((n * 5) as usize)
                .take(5)
                .copied()
                .collect();
            store.cell_update(&c)?;
        }
        store.night_finish(night, "tested", None)?;
    }
    Ok(())
}

/// One GET over a new loopback connection: (status line, body bytes, time).
fn get(addr: std::net::SocketAddr, path: &str) -> crate::Result<(String, usize, Duration)> {
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).map_err(fail)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(fail)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(fail)?;
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&buf);
    let status = text.lines().next().unwrap_or("").to_string();
    Ok((status, buf.len(), took))
}

/// Runs `csdci bench web`.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    let tmp = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
    let data = tmp.path().join("data");
    let t = Instant::now();
    fill(&data, args)?;
    println!(
        "store: {} runs, {} bisections (15 steps each), {} nights of 2 cells; filled in {:.1} s",
        args.runs,
        args.bisections,
        args.nights,
        t.elapsed().as_secs_f64()
    );
    let listener = csdci_web::bind(([127, 0, 0, 1], 0).into()).map_err(fail)?;
    let addr = listener.local_addr().map_err(fail)?;
    let dash = Arc::new(crate::service::dashboard::StoreDashboard::new(&data, None));
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let server = std::thread::spawn(move || {
        csdci_web::serve(listener, dash, csdci_web::Options::default(), flag)
    });
    let mid = args.bisections / 2 + 1;
    let run = args.runs / 2;
    let pages = [
        ("overview", "/".to_string(), true),
        ("overview JSON", "/api/v1/overview".to_string(), true),
        ("job history", "/jobs/nightly".to_string(), true),
        ("job history JSON", "/api/v1/jobs/nightly".to_string(), true),
        ("bisection", format!("/bisections/{mid}"), false),
        ("run", format!("/runs/{run}"), false),
        ("search", "/search?q=00000001".to_string(), false),
    ];
    println!(
        "{:<18} {:>10} {:>10} {:>10}  target",
        "page", "median ms", "max ms", "bytes"
    );
    let mut over = 0;
    for (name, path, targeted) in &pages {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..args.rounds.max(1) {
            let (status, n, took) = get(addr, path)?;
            if !status.contains(" 200 ") {
                return Err(fail(format!("{path}: {status}")));
            }
            bytes = n;
            times.push(took.as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let max = times[times.len() - 1];
        let verdict = if !targeted {
            "-".to_string()
        } else if median < TARGET_MS {
            format!("< {TARGET_MS} ms: met")
        } else {
            over += 1;
            format!("< {TARGET_MS} ms: MISSED")
        };
        println!("{name:<18} {median:>10.1} {max:>10.1} {bytes:>10}  {verdict}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = server.join();
    if over > 0 {
        println!("{over} page(s) over the target");
    }
    Ok(EXIT_CLEAN)
}
