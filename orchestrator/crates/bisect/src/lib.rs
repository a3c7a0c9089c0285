//! Flake-aware culprit finding (Bayesian noisy binary search). Pure logic: no git,
//! no processes.
//!
//! The candidates are an ordered list (index 0 is the oldest commit after the good
//! one(s), index `n - 1` is the bad tip). "The culprit is index `i`" means every
//! commit at index `≥ i` is bad. A run of a bad commit fails with an unknown
//! probability `p` (a discrete grid prior, marginalised jointly with the position);
//! a run of a good commit fails with a small false-failure rate. The [`Engine`]
//! keeps the joint posterior, picks the next step by expected information gain per
//! cost (re-running the prepared commit is cheaper than building another) and stops
//! when the most likely culprit (or set of candidates that untestable commits make
//! indistinguishable) reaches the requested confidence.
//!
//! The engine's state is a pure function of its [`Config`] and the observations fed
//! to it: replaying them (e.g. from a journal) rebuilds it exactly.
//!
//! [`Engine::next_batch`] chooses a round of several runs at once (W testers
//! free): the batch whose joint outcome tells most about the culprit.
//!
//! The [`TimedEngine`] is the same search on failure-time evidence: a bad commit
//! fails at a rate per second of workload, each run's length is chosen (and a run
//! can be ended early) by information per guest-second, boot included.

mod batch;
mod engine;
mod posterior;
pub mod sim;
mod timed;

pub use batch::BatchStep;
pub use engine::{Conclusion, Config, Engine, Error, Obs, Step, StopReason};
pub use timed::{RunLength, TimedConfig, TimedEngine, TimedObs, TimedStep};
