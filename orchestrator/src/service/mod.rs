//! The use cases every front end calls (the command line, the scheduler, the
//! web dashboard and the patch bot): start or resume a bisection and drive
//! it, test one commit, validate a fix, run a job's night, send the outbox.
//! Nothing here knows about clap, HTTP or terminals; progress is a stream of
//! typed [`crate::events::Event`]s that each front end draws its own way.

pub mod actions;
pub mod bisect;
pub mod dashboard;
pub mod fix;
pub mod night;
pub mod outbox;
pub mod run;
pub mod scheduler;
pub mod slots;
pub mod sweep;
pub mod work;
