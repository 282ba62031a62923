//! The scenario vocabulary: what a run is made of, as plain data — the world ([`WorldSpec`]: cluster,
//! workload, network, random faults, phases, crash model), fault plans ([`PlannedFault`]), the named
//! catalogue ([`catalogue`]) and swarm's seed → random world ([`swarm`]). The engine (`sim`) executes it.
//!
//! Why data and not code: a fault plan that is a value can be written into a seed file, replayed on
//! another machine, shrunk by deleting entries, and read by a reviewer. Nothing here knows the engine,
//! so the names of filesystem calls and crash models are strings the engine resolves (an unknown name
//! is the engine's typed error, never a silent no-op).

mod catalogue;
mod fault;
pub mod rng;
mod spec;
mod swarm;

pub use catalogue::{Scenario, base, catalogue, find};
pub use fault::{
    CrashImage, CutAt, DiskErrorKind, Fault, FileImage, KeptEntry, MemberChange, PlannedFault, RebootCut, SectorImage,
};
pub use spec::{CrashModel, WorldSpec};
pub use swarm::swarm;
