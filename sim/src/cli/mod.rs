//! The `sim` command's subcommands, one module each, and what they share: the world arguments every
//! run-making subcommand takes, a seed's plan (scenario, overrides, switches) and its run, seed files,
//! progress bars and usage errors.
//!
//! Host-facing like `main.rs`: it prints, reads the clock for progress and budgets, spawns threads and
//! touches the filesystem. Everything a run *is* lives in the library, so that tests and `cargo xtask
//! regress` see exactly what a user sees.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;

use clap::Args;
use scenarios::Scenario;

pub(crate) mod check_history;
pub(crate) mod explore;
pub(crate) mod fuzz;
pub(crate) mod hunt;
pub(crate) mod list;
pub(crate) mod merge;
pub(crate) mod page;
pub(crate) mod plan;
pub(crate) mod progress;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod seed_files;
pub(crate) mod seeds;
pub(crate) mod shrink;
pub(crate) mod sweep;

pub(crate) use plan::*;
pub(crate) use progress::*;
pub(crate) use seed_files::*;
pub(crate) use seeds::*;

/// The world arguments of every subcommand that makes runs: switches, knobs, where seed files go.
#[derive(Args)]
pub(crate) struct WorldArgs {
    /// A pre-fix behaviour to switch on (repeatable); `sim list bugs` names them.
    #[arg(long = "bug", value_name = "NAME")]
    pub(crate) bugs: Vec<String>,
    /// Sets a knob of the scenario's world (repeatable), e.g. `--set groups=2`.
    #[arg(long = "set", value_name = "KNOB=VALUE")]
    pub(crate) sets: Vec<String>,
    /// Where a failure's seed file is written.
    #[arg(long, value_name = "DIR", default_value = "seeds/found")]
    pub(crate) seed_dir: PathBuf,
    /// Beside each seed file written for a failure, a page drawing its run (`NAME.html`, as `--html`).
    #[arg(long)]
    pub(crate) pages: bool,
}

/// A usage error: one line, exit 2.
pub(crate) struct Usage(pub(crate) String);

/// The named scenario, or a usage error listing the valid names.
pub(crate) fn scenario_named(name: &str) -> Result<Scenario, Usage> {
    scenarios::find(name).ok_or_else(|| {
        let valid: Vec<&str> = scenarios::catalogue().iter().map(|s| s.name).collect();
        Usage(format!("unknown scenario {name:?}; valid: {}", valid.join(", ")))
    })
}

/// The first line of a (possibly multi-line) detail, for one-line reports.
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
