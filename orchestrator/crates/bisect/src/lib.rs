//! Flake-aware culprit finding (Bayesian noisy binary search). Pure logic: no git,
//! no processes. See `README` of the orchestrator for how it is driven.
