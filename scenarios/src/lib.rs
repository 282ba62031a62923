//! The scenario vocabulary: what a run is made of, as plain data — the world ([`WorldSpec`]: cluster,
//! workload, network, random faults, phases, crash model), fault plans ([`PlannedFault`]), the named
//! catalogue ([`catalogue`]) and swarm's seed → random world ([`swarm`]). The engine (`sim`) executes it.
//!
//! Why data and not code: a fault plan that is a value can be written into a seed file, replayed on
//! another machine, shrunk by deleting entries, and read by a reviewer. Nothing here knows the engine,
//! so the names of filesystem calls and crash models are strings the engine resolves (an unknown name
//! is the engine's typed error, never a silent no-op).
//!
//! ```
//! // A named scenario's world for seed 3, and swarm's random world for seed 3: plain values.
//! let scenario = scenarios::find("recovery/config-dir-entry-lost").expect("in the catalogue");
//! let world = scenario.world(3);
//! assert!(scenario.targets.contains(&"config-no-dir-sync"));
//! assert_eq!(scenarios::swarm(3), scenarios::swarm(3), "one seed, one world");
//! // A world is what a seed file stores.
//! let json = serde_json::to_string(&world).unwrap();
//! let back: scenarios::WorldSpec = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, world);
//! ```

mod catalogue;
mod fault;
pub mod rng;
mod spec;
mod swarm;

pub use catalogue::{Scenario, base, catalogue, find};
pub use fault::{
    CrashImage, CutAt, DiskErrorKind, Fault, FileImage, KeptEntry, MemberChange, PlannedFault, RebootCut, SectorImage,
};
pub use spec::{CrashModel, RA_SEGMENT_MAX_PENDING, RA_SEGMENT_MAX_SIZE_BYTES, WorldSpec};
pub use swarm::swarm;
