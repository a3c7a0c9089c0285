//! What one run of a bisection showed, after the predicate: the one typed
//! outcome from the tester's [`RunOutcome`] through the journal (stored as
//! today's strings, `pass`, `fail`, `other`, `skip`, `infra`, so old
//! journals still read) to the engine's [`Obs`].

use csdci_bisect::Obs;
use serde::{Deserialize, Serialize};

use super::Predicate;
use crate::testers::RunOutcome;

/// A run step's outcome, as journalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunObs {
    /// Nothing was found.
    Pass,
    /// The kernel failed as the predicate asks.
    Fail,
    /// The kernel failed, but not as the predicate asks (a pass for it).
    Other,
    /// The commit cannot be tested; not evidence.
    Skip,
    /// The infrastructure failed; never evidence.
    Infra,
}

impl RunObs {
    /// The journal's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunObs::Pass => "pass",
            RunObs::Fail => "fail",
            RunObs::Other => "other",
            RunObs::Skip => "skip",
            RunObs::Infra => "infra",
        }
    }

    /// The outcome a journal word names (none for a build's words or an
    /// unfinished step).
    pub fn parse(s: &str) -> Option<RunObs> {
        Some(match s {
            "pass" => RunObs::Pass,
            "fail" => RunObs::Fail,
            "other" => RunObs::Other,
            "skip" => RunObs::Skip,
            "infra" => RunObs::Infra,
            _ => return None,
        })
    }

    /// The outcome of a journalled step's `outcome` column.
    pub fn of(outcome: Option<&str>) -> Option<RunObs> {
        outcome.and_then(RunObs::parse)
    }

    /// Whether the run counts as one run of the commit (pass, fail, other).
    pub fn counts(self) -> bool {
        matches!(self, RunObs::Pass | RunObs::Fail | RunObs::Other)
    }

    /// What the engine observes: a failure that is not the predicate's is a
    /// pass; an infrastructure failure is nothing.
    pub fn obs(self) -> Option<Obs> {
        match self {
            RunObs::Pass | RunObs::Other => Some(Obs::Pass),
            RunObs::Fail => Some(Obs::Fail),
            RunObs::Skip => Some(Obs::Skip),
            RunObs::Infra => None,
        }
    }

    /// A tester's outcome after `predicate` (which reads the console
    /// analysis, when there is one), with the reason it carries.
    pub fn classify(
        predicate: &Predicate,
        outcome: &RunOutcome,
        analysis: Option<&csdci_console::Analysis>,
    ) -> (RunObs, Option<String>) {
        match outcome {
            RunOutcome::Pass => (RunObs::Pass, None),
            RunOutcome::Fail => match analysis {
                Some(a) if !predicate.matches(a) => (
                    RunObs::Other,
                    Some(format!("failed, but not as --predicate {predicate} asks")),
                ),
                _ => (RunObs::Fail, None),
            },
            RunOutcome::Skip { reason } => (RunObs::Skip, Some(reason.clone())),
            RunOutcome::Infra { reason } => (RunObs::Infra, Some(reason.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_words_round_trip_and_map_to_the_engine() {
        for o in [
            RunObs::Pass,
            RunObs::Fail,
            RunObs::Other,
            RunObs::Skip,
            RunObs::Infra,
        ] {
            assert_eq!(RunObs::parse(o.as_str()), Some(o));
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
        assert_eq!(RunObs::of(Some("ready")), None);
        assert_eq!(RunObs::of(None), None);
        assert_eq!(RunObs::Other.obs(), Some(Obs::Pass));
        assert_eq!(RunObs::Fail.obs(), Some(Obs::Fail));
        assert_eq!(RunObs::Infra.obs(), None);
        assert!(RunObs::Other.counts() && !RunObs::Skip.counts());
        let (o, why) = RunObs::classify(
            &Predicate::Csd,
            &RunOutcome::Fail,
            Some(&csdci_console::Analyzer::new().finish()),
        );
        assert_eq!(o, RunObs::Other);
        assert!(why.unwrap().contains("--predicate"));
    }
}
