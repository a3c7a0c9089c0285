//! csdci: find Linux kernel concurrency regressions and name the commit that
//! caused them.
//!
//! Data flow of one test: [`vcs`] (worktree at a commit) → [`kconfig`] / [`build`]
//! (fragments → verified .config → make → cached artifacts) → [`image`] (guest
//! root) → [`vm`] (virtiofsd + QEMU + QMP, console stream) → console analysis
//! (`csdci-console`) → [`verdict`] → [`store`]. The bisection engine sees only a
//! [`testers::Tester`].

pub mod bisect;
pub mod bot;
pub mod build;
pub mod cli;
pub mod demo;
pub mod error;
pub mod events;
pub mod export;
pub mod image;
pub mod interrupt;
pub mod io_error;
pub mod jobs;
pub mod kconfig;
pub mod lava;
pub mod lockfile;
pub mod mail;
pub mod process_group;
pub mod procfs;
pub mod sandbox;
pub mod service;
pub mod spec;
pub mod store;
pub mod sweep;
pub mod testers;
pub mod vcs;
pub mod verdict;
pub mod vm;

pub use error::{Error, Result};
