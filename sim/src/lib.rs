//! The deterministic simulation engine: a one-threaded world of nodes — each a `SimFs`, Ra's storage
//! actors and a consensus server — a network, a simulated clock and an event queue, all decided by one
//! seed.
//!
//! Why one thread and one seed: every interleaving of actor steps, every message delay and every crash
//! image is drawn from seeded streams, so a failing run replays exactly from its seed. Nodes boot through
//! Ra's real boot path, serve a KV workload, suffer the faults a `scenarios::WorldSpec` describes, and
//! the named checkers judge the run. The `sim` binary (see the repository's README) is a command line
//! over this library: run, explore, sweep, hunt, shrink and replay.
//!
//! ```
//! use raft_core::{Bug, Bugs};
//! use sim::{Outcome, WorldConfig};
//!
//! // PR 589's sixth fix undone: Ra renames a server's config into place without an fsync of the
//! // directory. The scenario cuts the power right after a later rename; the first rename is lost.
//! let world = scenarios::find("recovery/config-dir-entry-lost").unwrap().world(1);
//! let buggy = sim::run(WorldConfig::new(world.clone(), Bugs::of(&[Bug::ConfigNoDirSync])));
//! match &buggy.outcome {
//!     Outcome::Violation(v) => assert_eq!(v.checker, "written-survives"),
//!     Outcome::Pass => panic!("not found"),
//! }
//! // The same world with the fix passes, and replays to the same trace.
//! let fixed = sim::run(WorldConfig::new(world.clone(), Bugs::none()));
//! assert_eq!(fixed.outcome, Outcome::Pass);
//! assert_eq!(fixed.trace_hash, sim::run(WorldConfig::new(world, Bugs::none())).trace_hash);
//! ```

pub mod checkers;
pub mod fault_classes;
pub mod history;
pub mod hunt;
pub mod image;
pub mod linearizability;
pub mod run_page;
pub mod seedfile;
pub mod shrink;
pub mod sweep;
pub mod trace;
pub mod world;

pub use world::{
    COVERAGE_MARKS, Divergence, FiredCut, Outcome, Retained, RunResult, World, WorldConfig, check_determinism,
    crash_model, missed_marks, run,
};
