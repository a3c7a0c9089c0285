//! The reply to a tested series, in the 0-day robot's style: `Re:` the
//! cover letter (or the single patch), In-Reply-To and References set, plain
//! text: the base, what was tested, the result per patch, the guilty patch
//! with the test's output, a `Tested-by:` only when the job allows it.

use super::series::Series;
use super::test::{Outcome, PatchResult};
use crate::events::short;

/// A reply ready to store or send.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub subject: String,
    /// Message-ID (no angle brackets).
    pub message_id: String,
    pub in_reply_to: String,
    /// Oldest first.
    pub references: Vec<String>,
    pub to: Vec<String>,
    pub body: String,
}

/// What the reply says besides the outcome.
pub struct Facts<'a> {
    pub series: &'a Series,
    /// `tree branch` or the tree URL.
    pub tree: &'a str,
    pub branch: &'a str,
    pub base: &'a str,
    /// Whether the base came from the `base-commit:` trailer.
    pub base_from_trailer: bool,
    /// What was tested (the commands or the RunSpec).
    pub tested: &'a str,
    pub runs: u32,
    /// The sender.
    pub from: &'a str,
    /// The list (Cc).
    pub list: Option<&'a str>,
    /// Add `Tested-by:` for a clean or fixing series.
    pub tested_by: bool,
    /// Where the base's runs come from when they were not run for this
    /// series (`3 clean runs from the nightly job smp on 2026-12-03`).
    pub base_note: Option<&'a str>,
    /// The base's runs when they differ from `runs` (the nightly job's).
    pub base_runs: Option<u32>,
}

/// Makes a line safe to quote in a mail (no control characters, bounded).
pub fn clean(line: &str) -> String {
    let s: String = line
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .take(200)
        .collect();
    s.trim_end().to_string()
}

/// The reply to `f.series` saying `outcome`.
pub fn compose(f: &Facts<'_>, outcome: &Outcome, patches: &[PatchResult]) -> Draft {
    let s = f.series;
    let who = s.from_name.clone().unwrap_or_else(|| s.from.clone());
    let mut b = String::new();
    b.push_str(&format!("Hi {},\n\n", clean(&who)));
    b.push_str(&format!(
        "csdci tested your series \"{}\" (v{}, {} patch{}).\n\n",
        clean(&s.title),
        s.version,
        s.total,
        if s.total == 1 { "" } else { "es" }
    ));
    b.push_str(&format!(
        "tree:   {}\nbranch: {}\n",
        clean(f.tree),
        clean(f.branch)
    ));
    b.push_str(&format!(
        "base:   {}{}\n",
        short(f.base),
        if f.base_from_trailer {
            " (base-commit of the series)"
        } else {
            " (the branch head: the series has no base-commit)"
        }
    ));
    b.push_str(&format!(
        "tested: {}\nruns:   {} per commit\n",
        clean(f.tested),
        f.runs
    ));
    if let Some(n) = f.base_note {
        b.push_str(&format!("base:   {} (not run again)\n", clean(n)));
    }
    b.push('\n');
    let title_of = |idx: u32| -> String {
        s.patches
            .get(&idx)
            .map(|p| clean(&p.subject.title))
            .unwrap_or_default()
    };
    let headline = match outcome {
        Outcome::DoesNotApply { .. } => format!("RESULT: does not apply on {}", short(f.base)),
        Outcome::BaseUntestable { .. } => "RESULT: the base could not be tested".to_string(),
        Outcome::BuildFailed { patch, .. } => {
            format!("RESULT: patch {patch}/{} breaks the build", s.total)
        }
        Outcome::Clean { .. } => "RESULT: clean (builds, no failure)".to_string(),
        Outcome::Regression { guilty, .. } => {
            format!("RESULT: patch {guilty}/{} introduces a failure", s.total)
        }
        Outcome::Fixes { .. } => "RESULT: fixes a failure the base shows".to_string(),
        Outcome::StillFails { .. } => "RESULT: the failure of the base is still there".to_string(),
        Outcome::Infra { .. } => "RESULT: could not be tested (infrastructure)".to_string(),
    };
    b.push_str(&headline);
    b.push_str("\n\n");
    if !patches.is_empty() {
        b.push_str("per patch:\n");
        for p in patches {
            let mut line = format!(
                "  [{}/{}] {} {}: build {}",
                p.idx,
                s.total,
                short(&p.commit),
                title_of(p.idx),
                p.build.replace('_', " ")
            );
            if p.runs > 0 {
                line.push_str(&format!(", {} failures in {} runs", p.fails, p.runs));
            }
            if matches!(outcome, Outcome::Regression { guilty, .. } if *guilty == p.idx) {
                line.push_str("  <-- first bad patch");
            }
            b.push_str(&line);
            b.push('\n');
        }
        b.push('\n');
    }
    match outcome {
        Outcome::DoesNotApply { message } => {
            b.push_str(&format!("git am -3 on {} says:\n", short(f.base)));
            for l in message.lines().take(20) {
                b.push_str(&format!("    {}\n", clean(l)));
            }
        }
        Outcome::BaseUntestable { reason } | Outcome::Infra { reason } => {
            b.push_str(&format!("    {}\n", clean(reason)));
        }
        Outcome::BuildFailed { patch, errors } => {
            b.push_str(&format!(
                "patch {patch}/{} \"{}\" does not build; the first errors:\n",
                s.total,
                title_of(*patch)
            ));
            for e in errors.iter().take(8) {
                b.push_str(&format!("    {}\n", clean(e)));
            }
        }
        Outcome::Clean { runs } => {
            b.push_str(&format!(
                "Every patch builds; the tip passed {runs} of {runs} runs, as the base does.\n"
            ));
        }
        Outcome::Regression {
            guilty,
            tip_fails,
            base_fails,
            runs,
            excerpt,
        } => {
            let base_runs = f.base_runs.unwrap_or(*runs);
            b.push_str(&format!(
                "The tip failed {tip_fails} of {runs} runs, the base {base_fails} of {base_runs}.\n\
                 Bisecting inside the series (good: base, bad: tip) names\n\n    [{guilty}/{}] {}\n\nas the first bad patch. Its failing run ended with:\n\n",
                s.total,
                title_of(*guilty)
            ));
            for l in excerpt.lines().take(12) {
                b.push_str(&format!("    {}\n", clean(l)));
            }
        }
        Outcome::Fixes {
            runs,
            base_fails,
            base_runs,
            upper_95,
        } => {
            b.push_str(&format!(
                "The base fails, the series fixes it: 0 failures in {runs} runs: rate < {:.3} at 95%; base failed {base_fails}/{base_runs}.\n",
                upper_95
            ));
        }
        Outcome::StillFails {
            base_fails,
            tip_fails,
            runs,
            excerpt,
        } => {
            let base_runs = f.base_runs.unwrap_or(*runs);
            b.push_str(&format!(
                "The base failed {base_fails}/{base_runs} and the tip {tip_fails}/{runs}; the tip's failure ended with:\n\n"
            ));
            for l in excerpt.lines().take(12) {
                b.push_str(&format!("    {}\n", clean(l)));
            }
        }
    }
    if f.tested_by && matches!(outcome, Outcome::Clean { .. } | Outcome::Fixes { .. }) {
        b.push_str(&format!("\nTested-by: {}\n", f.from));
    }
    b.push_str("\n-- \ncsdci patch bot: every build and test ran in a sandbox with no network.\n");
    Draft::reply_to(s, b, f.from, f.list)
}

/// The reply to a series some of whose patches never arrived (sent once,
/// after the job's `incomplete_after`): which ones are missing.
pub fn compose_incomplete(
    s: &Series,
    missing: &[u32],
    waited: &str,
    from: &str,
    list: Option<&str>,
) -> Draft {
    let who = s.from_name.clone().unwrap_or_else(|| s.from.clone());
    let names: Vec<String> = missing.iter().map(|i| format!("{i}/{}", s.total)).collect();
    let mut b = format!("Hi {},\n\n", clean(&who));
    b.push_str(&format!(
        "csdci did not test your series \"{}\" (v{}, {} patch{}): after waiting {waited},\n",
        clean(&s.title),
        s.version,
        s.total,
        if s.total == 1 { "" } else { "es" }
    ));
    b.push_str(&format!(
        "patch{} {} never arrived.\n\nRESULT: incomplete series, missing {}\n\nreceived:\n",
        if missing.len() == 1 { "" } else { "es" },
        names.join(", "),
        names.join(", ")
    ));
    for (idx, p) in &s.patches {
        b.push_str(&format!(
            "  [{idx}/{}] {}\n",
            s.total,
            clean(&p.subject.title)
        ));
    }
    b.push_str(
        "\nPlease resend the whole series (a new version is tested as soon as all of it is there).\n",
    );
    b.push_str("\n-- \ncsdci patch bot\n");
    Draft::reply_to(s, b, from, list)
}

impl Draft {
    /// A reply with `body` to the series' head mail (its cover letter, else
    /// patch 1), threaded under it, to the author and the list.
    fn reply_to(s: &Series, body: String, from: &str, list: Option<&str>) -> Draft {
        let (subject_line, head_id, mut refs) = match s.head_mail() {
            Some(h) => (
                h.subject_line.clone(),
                h.message_id.clone(),
                h.references.clone(),
            ),
            None => (s.title.clone(), String::new(), Vec::new()),
        };
        if !head_id.is_empty() && !refs.contains(&head_id) {
            refs.push(head_id.clone());
        }
        let mut to = vec![s.from.clone()];
        to.extend(list.map(str::to_string));
        to.retain(|a| !a.is_empty());
        let stamp = chrono::Utc::now().timestamp_millis();
        Draft {
            subject: format!("Re: {}", clean(&subject_line)),
            message_id: format!(
                "csdci-bot.{}.{stamp}@{}",
                short_hash(&head_id),
                crate::bot::domain_of(from)
            ),
            in_reply_to: head_id,
            references: refs,
            to,
            body,
        }
    }
}

fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(s.as_bytes())[..6])
}
