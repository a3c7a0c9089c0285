//! `csdci serve [--jobs DIR] [--max-guests N] [--public-url URL]`: the
//! long-running service. Today it is the scheduler
//! ([`crate::service::scheduler`]): it fires each job of `--jobs` by its
//! schedule and logs one line when a night fires and one when it ends (with
//! each branch's status), on standard error like every csdci log line.
//!
//! With `--listen` it serves the dashboard; with `--token-file` too, the
//! dashboard's actions start bisections and runs in threads of this process
//! ([`crate::service::work`]) and cancel them or the scheduler's nights; all
//! of them share the `--max-guests` guest slots, and SIGTERM stops them with
//! the nights (each is waited for before exit).
//!
//! When `--jobs` holds `kind: bot` files, a thread beside the scheduler
//! polls them (see [`crate::bot::serve`]); `--no-bot` turns it off. A
//! directory with bot jobs and no nightly job runs the bot alone.
//!
//! Signals: SIGHUP reads the job files again (an invalid file is logged as
//! `FILE:LINE:COLUMN: field: message`, the previous version of its job
//! kept); the first SIGTERM or SIGINT stops firing, stops the running nights
//! (builds killed, guests stopped, runs journalled as interrupted: the nights
//! resume on the next start) and exits 0 once they have ended: that is how a
//! service ends (systemd would count 130 as a failure). A second SIGTERM or
//! SIGINT kills csdci at once.
//!
//! The signals are blocked in every thread and taken by one thread with
//! `sigwait`, which turns them into messages to the scheduler; for SIGTERM
//! and SIGINT it also runs csdci's interrupt handler (see
//! [`crate::interrupt`]) so the running nights see the interrupt flag.
//! Child processes start with no signal blocked (Rust's `Command` resets the
//! mask). Exit 3 when `--jobs` is not a directory or holds no valid job.

use std::path::PathBuf;
use std::sync::Arc;

use nix::sys::signal::{SigHandler, SigSet, Signal};

use super::{Cli, EXIT_CLEAN};
use crate::events::{Sink, short};
use crate::service::scheduler::{self, Control, Notice, Observer, Outcome, Scheduler};
use crate::service::slots::{Slots, default_max_guests};
use crate::service::work::Work;

/// Arguments of `csdci serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory of job files (jobs/*.yaml) the scheduler fires.
    #[arg(
        long,
        value_name = "DIR",
        env = "CSDCI_JOBS_DIR",
        default_value = "jobs"
    )]
    pub jobs: PathBuf,
    /// Guests running at once across all jobs (default: one per 2 cores and
    /// per 4 GiB of memory).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_guests: Option<u32>,
    /// The dashboard's public URL (mails link to the regression's page there).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Serve the web dashboard on ADDR (bare `--listen`: 127.0.0.1:8080,
    /// loopback only).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub listen: Option<std::net::SocketAddr>,
    /// The token the dashboard's actions need (the file's first line); without
    /// it the dashboard only shows.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub token_file: Option<PathBuf>,
    /// Serve the dashboard only: no job fires (needs --listen).
    #[arg(long, requires = "listen")]
    pub no_scheduler: bool,
    /// Do not poll the `kind: bot` job files of --jobs.
    #[arg(long)]
    pub no_bot: bool,
}

/// Runs `csdci serve`.
pub fn exec(cli: &Cli, args: &Args) -> crate::Result<u8> {
    let (control, inbox) = scheduler::control();
    let bot_control = (!args.no_bot).then(crate::bot::serve::Control::new);
    take_signals(control, bot_control.clone())?;
    let max_guests = args
        .max_guests
        .map_or_else(default_max_guests, |n| n as usize);
    // The dashboard's bisections and runs and the scheduler's nights share
    // the guest slots; each can be cancelled from the dashboard.
    let work = Work::new(Arc::new(Slots::new(max_guests)));
    let web = match args.listen {
        Some(addr) => Some(start_web(cli, args, addr, work.clone())?),
        None => None,
    };
    let bot = match bot_control {
        Some(c) => start_bot(cli, args, c)?,
        None => None,
    };
    let bot_only = bot.is_some()
        && crate::jobs::bot::load_dir(&args.jobs)
            .iter()
            .any(|(_, j)| j.is_ok())
        && crate::jobs::load_paths(std::slice::from_ref(&args.jobs)).is_empty();
    if args.no_scheduler || bot_only {
        if bot_only && !args.no_scheduler {
            tracing::info!(
                "csdci serve: {} holds bot jobs only; no nightly scheduler",
                args.jobs.display()
            );
        }
        while !crate::interrupt::interrupted() {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        stop_bot(bot);
        stop_web(web);
        work.join_all();
        tracing::info!("csdci serve: stopped");
        return Ok(EXIT_CLEAN);
    }
    tracing::info!(
        "csdci serve: jobs from {}, at most {max_guests} guest{} at once, data in {}",
        args.jobs.display(),
        if max_guests == 1 { "" } else { "s" },
        cli.data_dir().display()
    );
    let opts = scheduler::Options {
        max_guests,
        public_url: args.public_url.clone(),
        work: Some(work.clone()),
    };
    let ran = Scheduler::run(&cli.data_dir(), &args.jobs, &opts, inbox, Arc::new(Log));
    stop_bot(bot);
    stop_web(web);
    work.join_all();
    ran?;
    tracing::info!("csdci serve: stopped");
    Ok(EXIT_CLEAN)
}

/// The dashboard's thread and its stop flag.
type Web = (
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
);

/// Binds `addr` and serves the dashboard from a thread of its own.
fn start_web(
    cli: &Cli,
    args: &Args,
    addr: std::net::SocketAddr,
    work: Arc<Work>,
) -> crate::Result<Web> {
    let token = match &args.token_file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| crate::Error::Usage(format!("--token-file {}: {e}", f.display())))?;
            let token = text.lines().next().unwrap_or("").trim().to_string();
            if token.len() < 16 {
                return Err(crate::Error::Usage(format!(
                    "--token-file {}: the token must be at least 16 characters",
                    f.display()
                )));
            }
            Some(token)
        }
        None => None,
    };
    let listener =
        csdci_web::bind(addr).map_err(|e| crate::Error::Usage(format!("--listen {addr}: {e}")))?;
    let local = listener.local_addr().unwrap_or(addr);
    if !local.ip().is_loopback() {
        tracing::warn!("the dashboard listens on {local}, beyond this machine");
    }
    tracing::info!(
        "csdci serve: dashboard on http://{local}/ (actions {})",
        if token.is_some() {
            "need the token"
        } else {
            "off: no --token-file"
        }
    );
    let jobs = (!args.no_scheduler || args.jobs.is_dir()).then_some(args.jobs.as_path());
    let mut dash = crate::service::dashboard::StoreDashboard::new(&cli.data_dir(), jobs);
    if token.is_some() {
        dash = dash.with_work(work, args.public_url.clone());
    }
    let dash = Arc::new(dash);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let opts = csdci_web::Options { token, poll: None };
    let thread = std::thread::Builder::new()
        .name("web".into())
        .spawn(move || {
            if let Err(e) = csdci_web::serve(listener, dash, opts, flag) {
                tracing::error!("dashboard: {e}");
            }
        })
        .map_err(|e| crate::Error::Usage(format!("cannot start the dashboard thread: {e}")))?;
    Ok((stop, thread))
}

/// Stops the dashboard and waits for its thread.
fn stop_web(web: Option<Web>) {
    if let Some((stop, thread)) = web {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = thread.join();
    }
}

/// The bot's thread and its control.
type Bot = (Arc<crate::bot::serve::Control>, std::thread::JoinHandle<()>);

/// Starts the thread that polls the `kind: bot` job files of `--jobs` (none
/// when `--jobs` is not a directory). A directory without bot files gets the
/// thread too: it waits, and a SIGHUP after one was added starts polling it.
fn start_bot(
    cli: &Cli,
    args: &Args,
    control: Arc<crate::bot::serve::Control>,
) -> crate::Result<Option<Bot>> {
    if !args.jobs.is_dir() {
        return Ok(None);
    }
    let (data, jobs, c) = (cli.data_dir(), args.jobs.clone(), control.clone());
    let thread = std::thread::Builder::new()
        .name("bot".into())
        .spawn(move || {
            if let Err(e) = crate::bot::serve::run(&data, &jobs, &c) {
                tracing::error!("bot: {e}");
            }
        })
        .map_err(|e| crate::Error::Usage(format!("cannot start the bot thread: {e}")))?;
    Ok(Some((control, thread)))
}

/// Stops the bot and waits for its thread (its current cycle ends first).
fn stop_bot(bot: Option<Bot>) {
    if let Some((control, thread)) = bot {
        control.stop();
        let _ = thread.join();
    }
}

/// Blocks SIGHUP, SIGINT and SIGTERM in this thread (and so in every thread
/// started after it) and starts the thread that takes them.
fn take_signals(
    control: Control,
    bot: Option<Arc<crate::bot::serve::Control>>,
) -> crate::Result<()> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGHUP, Signal::SIGINT, Signal::SIGTERM] {
        set.add(s);
    }
    let fail = |e: std::io::Error| crate::Error::Usage(format!("cannot take signals: {e}"));
    set.thread_block()
        .map_err(|e| fail(std::io::Error::from(e)))?;
    crate::interrupt::install_interrupt_handler();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut stops = 0;
            loop {
                match set.wait() {
                    Ok(Signal::SIGHUP) => {
                        tracing::info!("SIGHUP: reading the job files again");
                        control.reload();
                        if let Some(b) = &bot {
                            b.reload();
                        }
                    }
                    Ok(sig) => {
                        stops += 1;
                        if stops == 1 {
                            tracing::info!(
                                "{sig}: stopping (the running nights stop and resume on the next start; {sig} again kills csdci)"
                            );
                            deliver(sig);
                            control.stop();
                            if let Some(b) = &bot {
                                b.stop();
                            }
                        } else {
                            die(sig);
                        }
                    }
                    Err(_) => {}
                }
            }
        })
        .map_err(fail)?;
    Ok(())
}

/// Delivers `sig` to this thread's handler (csdci's interrupt handler sets
/// the flag the running builds, guests and commands watch).
fn deliver(sig: Signal) {
    let one = SigSet::from(sig);
    let _ = nix::sys::signal::raise(sig);
    // The pending signal is handled as it is unblocked.
    let _ = one.thread_unblock();
    let _ = one.thread_block();
}

/// Ends csdci by `sig`, as if it had no handler.
fn die(sig: Signal) -> ! {
    // SAFETY: restores the default action; no handler is involved.
    unsafe {
        let _ = nix::sys::signal::signal(sig, SigHandler::SigDfl);
    }
    let _ = nix::sys::signal::raise(sig);
    let _ = SigSet::from(sig).thread_unblock();
    std::process::exit(128 + sig as i32)
}

/// Draws the scheduler's notices and the nights' events as log lines.
struct Log;

impl Observer for Log {
    fn notice(&self, n: &Notice) {
        match n {
            Notice::Jobs {
                jobs,
                added,
                removed,
                reload,
            } => {
                if *reload {
                    let list = |v: &[String]| {
                        if v.is_empty() {
                            "none".to_string()
                        } else {
                            v.join(", ")
                        }
                    };
                    tracing::info!(
                        "reloaded: {} job{}; added {}, removed {}",
                        jobs.len(),
                        if jobs.len() == 1 { "" } else { "s" },
                        list(added),
                        list(removed)
                    );
                } else {
                    tracing::info!(
                        "watching {} job{}",
                        jobs.len(),
                        if jobs.len() == 1 { "" } else { "s" }
                    );
                }
                for (job, next) in jobs {
                    tracing::info!(
                        "job {job}: next night {}",
                        next.as_deref()
                            .unwrap_or("never (the schedule names no future time)")
                    );
                }
            }
            Notice::Invalid { line, .. } => tracing::error!("{line}"),
            Notice::KeptPrevious { job, file } => tracing::warn!(
                "job {job}: {} is invalid; keeping the version read before",
                file.display()
            ),
            Notice::KeptAll { reason } => {
                tracing::warn!("{reason}; keeping every job as it was")
            }
            Notice::Fired { job, slot, late_s } => match slot {
                Some(slot) if *late_s >= 60 => tracing::info!(
                    "job {job}: night fired for {slot} (late by {}; missed nights run once)",
                    human(*late_s)
                ),
                Some(slot) => tracing::info!("job {job}: night fired for {slot}"),
                None => tracing::info!("job {job}: night fired to resume the night left running"),
            },
            Notice::Queued { job, slot } => tracing::info!(
                "job {job}: {slot} is due while its previous night runs; it fires when that ends"
            ),
            Notice::Finished { job, outcome } => match outcome {
                Outcome::Done { night } => {
                    let branches: Vec<String> = night
                        .branches
                        .iter()
                        .map(|b| {
                            let mut s = format!("{} {}", b.branch, b.status);
                            if let Some(h) = &b.head {
                                s.push_str(&format!(" at {}", short(h)));
                            }
                            let failed = b.cells.iter().filter(|c| c.status != "clean").count();
                            if !b.cells.is_empty() {
                                s.push_str(&format!(
                                    ", {} cell{} ({failed} not clean)",
                                    b.cells.len(),
                                    if b.cells.len() == 1 { "" } else { "s" }
                                ));
                            }
                            for (what, ids) in [
                                ("opened", &b.opened),
                                ("seen again", &b.attached),
                                ("fixed", &b.fixed),
                            ] {
                                if !ids.is_empty() {
                                    let ids: Vec<String> =
                                        ids.iter().map(|i| format!("#{i}")).collect();
                                    s.push_str(&format!(", {what} regression {}", ids.join(" ")));
                                }
                            }
                            if let Some(r) = &b.reason {
                                s.push_str(&format!(" ({r})"));
                            }
                            s
                        })
                        .collect();
                    tracing::info!("job {job}: night ended: {}", branches.join("; "))
                }
                Outcome::Busy => tracing::warn!(
                    "job {job}: night skipped: another csdci process runs this job now"
                ),
                Outcome::Interrupted => {
                    tracing::info!("job {job}: night interrupted; it resumes on the next start")
                }
                Outcome::Failed { error } => {
                    tracing::error!("job {job}: night failed: {error}")
                }
            },
            Notice::Stopping { running } => {
                if running.is_empty() {
                    tracing::info!("no night runs; stopping")
                } else {
                    tracing::info!("waiting for the nights of {} to stop", running.join(", "))
                }
            }
            Notice::Error { job, message } => match job {
                Some(j) => tracing::error!("job {j}: {message}"),
                None => tracing::error!("{message}"),
            },
        }
    }

    fn night_events(&self, job: &str) -> Sink {
        crate::events::log_lines(format!("job {job}"))
    }
}

/// `3 h 20 min`, `2 d 4 h`, `45 s`.
fn human(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human(45), "45 s");
        assert_eq!(human(300), "5 min");
        assert_eq!(human(3 * 3600 + 20 * 60), "3 h 20 min");
        assert_eq!(human(2 * 86_400 + 4 * 3600 + 5), "2 d 4 h");
    }
}
