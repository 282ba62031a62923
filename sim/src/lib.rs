//! The deterministic simulation engine: a one-threaded world of nodes — each a `SimFs`, Ra's storage
//! actors and a consensus server — a network, a simulated clock and an event queue, all decided by one
//! seed.
//!
//! Why one thread and one seed: every interleaving of actor steps, every message delay and every crash
//! image is drawn from seeded streams, so a failing run replays exactly from its seed. Nodes boot through
//! Ra's real boot path, serve a KV workload, suffer the faults a `scenarios::WorldSpec` describes, and
//! the named checkers judge the run.

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
    COVERAGE_MARKS, Divergence, FiredCut, Outcome, RunResult, World, WorldConfig, check_determinism, crash_model,
    missed_marks, run,
};
