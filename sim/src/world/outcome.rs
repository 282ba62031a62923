//! What a run produces: its [`Outcome`] (pass or the first violation, and the CLI's exit code for it),
//! the [`RunResult`] (trace, hash, coverage, the materialised fault plan) and the coverage marks a suite
//! must reach.
//!
//! Owns: the result types and the exit-code classes. Must not touch a running world.

use std::collections::BTreeMap;

use scenarios::PlannedFault;

use crate::checkers::Violation;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every checker passed.
    Pass,
    /// A checker reported a violation.
    Violation(Violation),
}

impl Outcome {
    /// The `sim` CLI's exit code for this outcome: 0 passed, 10 a safety or correctness violation, 11 a
    /// liveness violation (`converges`, `lagging-follower-caught-up`), 12 a node that failed to boot or
    /// recover (`node-boots`, `registered-implies-config`). (13, a panic of the system under test, and 2,
    /// a usage error, are the CLI's own.)
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Violation(v) => match v.checker.as_str() {
                "converges" | "lagging-follower-caught-up" => 11,
                "node-boots" | "registered-implies-config" => 12,
                _ => 10,
            },
        }
    }

    /// The violated checker, if any.
    pub fn checker(&self) -> Option<&str> {
        match self {
            Outcome::Pass => None,
            Outcome::Violation(v) => Some(&v.checker),
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Pass or the first violation.
    pub outcome: Outcome,
    /// Simulated time at the end.
    pub sim_time_ns: u64,
    /// Events processed (actor steps, deliveries, timers, faults).
    pub events: u64,
    /// Rolling hash of the trace.
    pub trace_hash: u64,
    /// Coverage counts by name.
    pub coverage: BTreeMap<&'static str, u64>,
    /// The rendered trace (one line per notable event).
    pub trace: Vec<String>,
    /// The rolling hash after every step and event, for locating a divergence (empty unless the world
    /// records it: `WorldConfig::record_trail`).
    pub trail: Vec<u64>,
    /// Every fault that took effect, random or planned, as an explicit plan in time order: a power loss
    /// as an `ExactPowerCut` now with the image it left, a crash point that fired as an `ExactPowerCut`
    /// armed when it was, before or after the very call it cut, with its image (armed cuts that never
    /// fired are left out), a power cut during a reboot as the `reboot_cut` of the crash that caused
    /// the reboot (or, after a VM crash or another reboot cut, as an `ExactPowerCut` after its call
    /// that the down node arms at its boot), and VM crashes, WAL and segment writer restarts and
    /// isolations and bit rot as themselves, a disk error a reboot met as a `DiskError` due at that
    /// reboot. The same world with this plan and no random faults (`fault_every_ms`,
    /// `recovery_crash_percent`, `wal_recovery_cut_percent` and `recovery_disk_error_percent` 0) replays
    /// the same run: what
    /// `sim shrink` starts from. Its trace hash differs (fewer queue events, other CRASH lines).
    pub materialized: Vec<PlannedFault>,
    /// More faults took effect than the recorder keeps (`MAX_RECORDED_FAULTS`, a run of many simulated
    /// hours): `materialized` and `fired_cuts` are empty, and the run cannot be shrunk as one plan.
    pub materialized_overflowed: bool,
    /// Where each power cut of `materialized` fell (the call, and when), in plan order.
    pub fired_cuts: Vec<FiredCut>,
    /// The clients' history: every operation with its outcome (unknown for those never answered), in
    /// the order their outcomes became known (`sim run --history`).
    pub history: Vec<crate::linearizability::Op>,
    /// What the run recorded for drawing it (with `WorldConfig::record_timeline`).
    pub timeline: Option<super::Timeline>,
}

/// Where a power cut of a materialised plan fell: what a reader wants to know of an `ExactPowerCut`
/// besides its call number, and what shrinking re-anchors it by once earlier calls change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredCut {
    /// Its entry in `RunResult::materialized`.
    pub entry: usize,
    /// It is the entry's reboot cut (else the entry's own cut).
    pub reboot: bool,
    /// The call it fell before or after: its kind (the `vfs` name, as plans name calls)…
    pub call: String,
    /// …and its normalised path.
    pub path: String,
    /// When it fired.
    pub time_ns: u64,
}

/// Coverage marks ("sometimes" assertions): things a suite of runs must have made happen at least
/// once, or it has not tested what it claims to. A suite reports the marks it missed.
pub const COVERAGE_MARKS: [&str; 10] = [
    "client operations ok",
    "elections won",
    "power losses with unsynced state",
    "crash points fired",
    "crashes during recovery",
    "wal files replayed at boot",
    "segment flushes during recovery",
    "snapshots installed",
    "snapshot sender failures",
    "restarts",
];

/// The coverage marks `coverage` (summed over a suite) never hit.
pub fn missed_marks(coverage: &BTreeMap<&'static str, u64>) -> Vec<&'static str> {
    COVERAGE_MARKS.into_iter().filter(|m| coverage.get(m).copied().unwrap_or(0) == 0).collect()
}
