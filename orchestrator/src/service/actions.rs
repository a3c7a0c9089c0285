//! The dashboard's actions in `csdci serve`: a form's fields turned into
//! what the command line would have made of the same flags (a [`RunSpec`]
//! checked by [`RunSpec::validate`], a bisection [`Request`]), then started
//! as [`Work`] in a thread of this process (guests bounded by the shared
//! `--max-guests` slots), or cancelled. Every error is a usage error whose
//! message names the field; nothing starts before every check passed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use csdci_web::{SpecForm, StartBisection, StartRun};

use crate::events::short;
use crate::jobs::Job;
use crate::service::bisect::{self as bisect_service, Request};
use crate::service::work::{Key, Work};
use crate::spec::{RunSpec, parse_memory};
use crate::store::Store;
use crate::testers::TesterSpec;

fn usage(m: impl Into<String>) -> crate::Error {
    crate::Error::Usage(m.into())
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> crate::Result<Option<T>> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| usage(format!("{flag} '{v}': not a whole number")))
}

/// `base` with every non-empty field of `f` set, checked as the command line
/// checks its flags (the one validation, [`RunSpec::validate`]).
pub fn spec_from_form(base: RunSpec, f: &SpecForm) -> crate::Result<RunSpec> {
    let mut s = base;
    if let Some(n) = number("--vcpus", &f.vcpus)? {
        s.vcpus = n;
    }
    if !f.memory.trim().is_empty() {
        s.memory_mb = parse_memory(&f.memory).map_err(|e| usage(format!("--memory {e}")))?;
    }
    if let Some(n) = number("--duration", &f.duration)? {
        s.duration_s = n;
    }
    if !f.scftorture.trim().is_empty() {
        s.scftorture = f.scftorture.trim().to_string();
    }
    if !f.accel.trim().is_empty() {
        s.accel = f
            .accel
            .trim()
            .parse()
            .map_err(|e| usage(format!("--accel '{}': {e}", f.accel.trim())))?;
    }
    if !f.cmdline_extra.trim().is_empty() {
        s.cmdline_extra = f.cmdline_extra.trim().to_string();
    }
    if let Some(n) = number("--silence-timeout", &f.silence_timeout)? {
        s.silence_timeout_s = n;
    }
    if let Some(n) = number("--grace", &f.grace)? {
        s.grace_s = n;
    }
    if let Some(n) = number("--stop-after-crash", &f.stop_after_crash)? {
        s.stop_after_crash_s = Some(n);
    }
    if !f.predicate.trim().is_empty() {
        s.predicate = f.predicate.trim().to_string();
    }
    if !f.config_fragments.trim().is_empty() {
        s.config_fragments = f
            .config_fragments
            .split_whitespace()
            .map(PathBuf::from)
            .collect();
    }
    let s = s.absolute()?;
    s.validate()?;
    Ok(s)
}

/// A `--run`-style tester, made through its stored (serde) form so that a
/// field the spec gains with a default keeps that default.
fn command_tester(cmd: &str, timeout_s: Option<u64>) -> crate::Result<TesterSpec> {
    serde_json::from_value(serde_json::json!({
        "kind": "command",
        "cmd": cmd,
        "timeout_s": timeout_s,
    }))
    .map_err(|e| usage(format!("command: {e}")))
}

/// What the dashboard's actions start and stop.
pub struct Actions {
    data_dir: PathBuf,
    jobs_dir: Option<PathBuf>,
    work: Arc<Work>,
    /// `--public-url` (mails of a re-run night link there).
    public_url: Option<String>,
}

impl Actions {
    pub fn new(
        data_dir: &Path,
        jobs_dir: Option<&Path>,
        work: Arc<Work>,
        public_url: Option<String>,
    ) -> Self {
        Actions {
            data_dir: data_dir.to_path_buf(),
            jobs_dir: jobs_dir.map(Path::to_path_buf),
            work,
            public_url,
        }
    }

    /// The work of this process.
    pub fn work(&self) -> &Arc<Work> {
        &self.work
    }

    /// The valid jobs of `--jobs`.
    pub fn jobs(&self) -> Vec<Job> {
        match &self.jobs_dir {
            Some(d) => crate::jobs::load_paths(std::slice::from_ref(d))
                .into_iter()
                .filter_map(|(_, j)| j.ok())
                .collect(),
            None => Vec::new(),
        }
    }

    fn job(&self, name: &str) -> crate::Result<Option<Job>> {
        let name = name.trim();
        if name.is_empty() {
            return Ok(None);
        }
        match self.jobs().into_iter().find(|j| j.name == name) {
            Some(j) => Ok(Some(j)),
            None => Err(usage(format!("job: no valid job {name} in --jobs"))),
        }
    }

    /// The tree of a form: its `tree`, else the job's tree when that is a
    /// local path.
    fn tree(&self, tree: &str, job: Option<&Job>) -> crate::Result<PathBuf> {
        let tree = tree.trim();
        let path = if !tree.is_empty() {
            PathBuf::from(tree)
        } else if let Some(j) = job {
            if j.tree.contains("://") {
                return Err(usage(format!(
                    "tree: job {}'s tree is the URL {}; give the path of a local clone",
                    j.name, j.tree
                )));
            }
            PathBuf::from(&j.tree)
        } else {
            return Err(usage("tree: give the path of a git tree, or a job"));
        };
        if !path.is_absolute() {
            return Err(usage(format!(
                "tree '{}': give an absolute path",
                path.display()
            )));
        }
        crate::vcs::open_tree(&path).map_err(|e| usage(format!("tree: {e}")))
    }

    fn is_kernel(tree: &Path) -> crate::Result<()> {
        if tree.join("Kconfig").is_file() && tree.join("kernel").is_dir() {
            Ok(())
        } else {
            Err(usage(format!(
                "tree: {} is not a Linux kernel tree (no Kconfig, kernel/); give a test command to bisect with your own test",
                tree.display()
            )))
        }
    }

    /// The bisection a form asks for, checked.
    pub fn bisection_request(&self, f: &StartBisection) -> crate::Result<Request> {
        let good: Vec<String> = f.good.split_whitespace().map(str::to_string).collect();
        if good.is_empty() {
            return Err(usage("good: give at least one good revision"));
        }
        let bad = f.bad.trim();
        if bad.is_empty() {
            return Err(usage("bad: give the bad revision"));
        }
        let job = self.job(&f.job)?;
        let tree = self.tree(&f.tree, job.as_ref())?;
        let confidence: Option<f64> = match f.confidence.trim() {
            "" => None,
            c => Some(
                c.parse()
                    .map_err(|_| usage(format!("--confidence '{c}': not a number")))?,
            ),
        };
        if let Some(c) = confidence
            && !(c > 0.5 && c < 1.0)
        {
            return Err(usage(format!(
                "--confidence must be between 0.5 and 1 (exclusive), got {c}"
            )));
        }
        let max_runs: Option<u32> = number("--max-runs", &f.max_runs)?;
        if max_runs == Some(0) {
            return Err(usage("--max-runs must be at least 1"));
        }
        let verify_bad: Option<u32> = number("--verify-bad", &f.verify_bad)?;
        if f.deterministic && verify_bad.is_some_and(|n| n > 0) {
            return Err(usage(
                "--deterministic runs each commit once; it cannot verify the bad revision with --verify-bad runs",
            ));
        }
        let timeout: Option<u64> = number("--timeout", &f.timeout)?;
        let command = f.command.trim();
        let base = job
            .as_ref()
            .and_then(|j| j.cells.first())
            .map(|c| c.spec.clone())
            .unwrap_or_default();
        let (tester, predicate) =
            if !command.is_empty() || job.as_ref().is_some_and(|j| j.command.is_some()) {
                let cmd = if command.is_empty() {
                    job.as_ref()
                        .and_then(|j| j.command.clone())
                        .unwrap_or_default()
                } else {
                    command.to_string()
                };
                let predicate = match f.spec.predicate.trim() {
                    "" => "any".to_string(),
                    p => p.to_string(),
                };
                (command_tester(&cmd, timeout)?, predicate)
            } else {
                if timeout.is_some() {
                    return Err(usage("--timeout: only with a test command"));
                }
                let spec = spec_from_form(base, &f.spec)?;
                Self::is_kernel(&tree)?;
                let predicate = spec.predicate.clone();
                (
                    TesterSpec::Local {
                        spec,
                        max_guests: None,
                    },
                    predicate,
                )
            };
        crate::bisect::Predicate::parse(&predicate)
            .map_err(|e| usage(format!("--predicate '{predicate}': {e}")))?;
        Ok(Request {
            tree,
            good,
            bad: bad.to_string(),
            first_parent: false,
            tester,
            confidence,
            max_runs,
            verify_bad,
            deterministic: f.deterministic,
            revert_check: !f.no_revert_check,
            policy: Default::default(),
            max_exposure_s: None,
            predicate,
        })
    }

    /// Records (or finds the unfinished same) bisection and drives it in a
    /// thread of this process: `(id, resumed)`.
    pub fn start_bisection(&self, f: &StartBisection) -> crate::Result<(i64, bool)> {
        let req = self.bisection_request(f)?;
        let store = Store::open(&self.data_dir)?;
        let (id, resumed) = bisect_service::start_or_resume(&store, &req)?;
        drop(store);
        let data_dir = self.data_dir.clone();
        let guests = self.work.guests();
        self.work
            .spawn(Key::Bisection(id), move || {
                let events = crate::events::log_lines(format!("bisection #{id}"));
                let done = Store::open(&data_dir).map_err(crate::Error::from).and_then(|store| {
                    bisect_service::drive_bounded(
                        &store,
                        id,
                        &mut |_| Ok(()),
                        Some(guests),
                        &events,
                    )
                });
                match done {
                    Ok(r) => tracing::info!("bisection #{id}: {}", r.status),
                    Err(e) if e.is_interrupt() => tracing::info!(
                        "bisection #{id}: cancelled; it resumes when started again (or csdci bisect --resume {id})"
                    ),
                    Err(e) => tracing::error!("bisection #{id}: {e}"),
                }
            })
            .map_err(|e| usage(e.to_string()))?;
        Ok((id, resumed))
    }

    /// Checks a run's form and tests its commit in a thread of this process
    /// (holding a guest slot); returns the commit.
    pub fn start_run(&self, f: &StartRun) -> crate::Result<String> {
        let rev = f.commit.trim();
        if rev.is_empty() {
            return Err(usage("commit: give the commit or revision to test"));
        }
        let job = self.job(&f.job)?;
        let base = job
            .as_ref()
            .and_then(|j| j.cells.first())
            .map(|c| c.spec.clone())
            .unwrap_or_default();
        let spec = spec_from_form(base, &f.spec)?;
        let tree = self.tree(&f.tree, job.as_ref())?;
        Self::is_kernel(&tree)?;
        let commit = crate::vcs::resolve(&tree, rev).map_err(|e| usage(format!("commit: {e}")))?;
        let data_dir = self.data_dir.clone();
        let guests = self.work.guests();
        let key = Key::Run(self.work.next_serial());
        let c = commit.clone();
        self.work
            .spawn(key, move || {
                let Some(_slot) = guests.acquire_unless(crate::interrupt::interrupted) else {
                    return;
                };
                let events = crate::events::log_lines(format!("run of {}", short(&c)));
                let mut reporter =
                    crate::testers::local::EventReporter::new(events, spec.duration_s);
                match crate::service::run::test_commit(&tree, &data_dir, &c, spec, &mut reporter) {
                    Ok(_) => tracing::info!("run of {} ended", short(&c)),
                    Err(e) => tracing::error!("run of {}: {e}", short(&c)),
                }
            })
            .map_err(|e| usage(e.to_string()))?;
        Ok(commit)
    }

    /// Runs a night of job `name` now in a thread of this process (as the
    /// scheduler would, sharing its guest slots; cancellable).
    pub fn rerun(&self, name: &str) -> crate::Result<()> {
        let job = self
            .job(name)?
            .ok_or_else(|| usage("job: give the job to run"))?;
        let data_dir = self.data_dir.clone();
        let opts = crate::service::night::Options {
            public_url: self.public_url.clone(),
            guests: Some(self.work.guests()),
        };
        self.work
            .spawn(Key::Night(job.name.clone()), move || {
                let name = job.name.clone();
                let events = crate::events::log_lines(format!("job {name}"));
                let store = match Store::open(&data_dir) {
                    Ok(s) => s,
                    Err(e) => return tracing::error!("job {name}: store: {e}"),
                };
                match crate::service::night::run_job(&store, &job, &opts, &events) {
                    Ok(_) => {
                        let _ = store.job_set_finished(&name);
                        tracing::info!("job {name}: night ended")
                    }
                    Err(e) if e.is_interrupt() => {
                        tracing::info!("job {name}: night cancelled; it resumes on its next start")
                    }
                    Err(e) if e.is_busy() => tracing::warn!("job {name}: {e}"),
                    Err(e) => {
                        let _ = store.job_set_finished(&name);
                        tracing::error!("job {name}: night failed: {e}")
                    }
                }
            })
            .map_err(|e| usage(e.to_string()))
    }

    /// Cancels bisection `id` if it runs here.
    pub fn cancel_bisection(&self, id: i64) -> bool {
        self.work.cancel(&Key::Bisection(id))
    }

    /// Cancels the night of job `name` if one runs here.
    pub fn cancel_night(&self, name: &str) -> bool {
        self.work.cancel(&Key::Night(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_checked_as_the_flags_are() {
        let ok = spec_from_form(
            RunSpec::default(),
            &SpecForm {
                vcpus: "4".into(),
                memory: "1G".into(),
                predicate: "csd".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (ok.vcpus, ok.memory_mb, ok.predicate.as_str()),
            (4, 1024, "csd")
        );
        let err = |f: SpecForm| {
            spec_from_form(RunSpec::default(), &f)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(SpecForm {
                vcpus: "0".into(),
                ..Default::default()
            })
            .contains("--vcpus 0: must be at least 1"),
        );
        assert!(
            err(SpecForm {
                vcpus: "many".into(),
                ..Default::default()
            })
            .contains("--vcpus 'many'")
        );
        assert!(
            err(SpecForm {
                memory: "lots".into(),
                ..Default::default()
            })
            .contains("--memory")
        );
        assert!(
            err(SpecForm {
                predicate: "title:(".into(),
                ..Default::default()
            })
            .contains("--predicate")
        );
        assert!(
            err(SpecForm {
                accel: "warp".into(),
                ..Default::default()
            })
            .contains("--accel 'warp'")
        );
    }
}
