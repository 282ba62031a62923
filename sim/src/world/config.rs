//! What a run is built from: [`WorldConfig`] (the `scenarios` world plus what only the engine knows) and
//! its validation, and the storage settings every node derives from it.
//!
//! Owns: the config's shape and `validate`; the mapping of a scenario's crash model to `vfs`'s; the WAL
//! and segment writer settings. Must not touch a running world: nothing here sees `World`.

use raft_core::Bugs;
use raft_core::storage::segment::SegmentConfig;
use raft_core::storage::segment_writer::SegmentWriterConfig;
use raft_core::storage::wal::{SyncMethod, WalConfig};
use vfs::OpKind;

use scenarios::{Fault, WorldSpec};

/// Everything a run depends on: the world (`scenarios` data) and what only the engine knows — the bug
/// switches and how much the trace shows. Every knob is written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldConfig {
    /// The world: cluster, workload, network, faults, phases, crash model (its `seed` decides everything
    /// else that is random).
    pub spec: WorldSpec,
    /// Switched-on pre-fix behaviours.
    pub bugs: Bugs,
    /// Render every message delivery and drop in the trace (MSG lines); off, only notable events are.
    pub trace_messages: bool,
    /// Render every filesystem call that changes or syncs a disk in the trace (FS lines, numbered as the
    /// CRASH lines number a power cut's call).
    pub trace_fs: bool,
    /// Run the checkers (always, except to measure what they cost: `cargo xtask bench`'s harness
    /// overhead). Off, only `converges` runs, since it ends the run.
    pub checkers: bool,
    /// Keep the rolling hash after every step and event (`RunResult::trail`), to locate where two runs
    /// diverge: `check_determinism` turns it on. Off, a long run does not hold a word per decision (a
    /// 15-million-event swarm seed held over 200 MB).
    pub record_trail: bool,
    /// Record the run's timeline (`RunResult::timeline`: states, messages, fault spans, when each trace
    /// line happened) for drawing it (`sim run --html`). It changes nothing in the run.
    pub record_timeline: bool,
    /// Keep every client operation for `RunResult::history` (`sim run --history`; a timeline keeps it
    /// too). Off, the history is judged in windows as it grows and only the operations since each key's
    /// last cut are held, so memory does not grow with the run's length; the verdict is the same.
    pub keep_history: bool,
}

impl WorldConfig {
    /// A world as `spec` says, with `bugs` switched on and the trace showing notable events only.
    pub fn new(spec: WorldSpec, bugs: Bugs) -> WorldConfig {
        WorldConfig {
            spec,
            bugs,
            trace_messages: false,
            trace_fs: false,
            checkers: true,
            record_trail: false,
            record_timeline: false,
            keep_history: false,
        }
    }

    /// Whether the world can be built: at least one node and one group, and a plan that names existing
    /// nodes and filesystem calls. `Err` says which knob is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.spec;
        super::bounds::check_knobs(s)?;
        if s.bit_rot_weight > 0 && (s.nodes < 3 || s.membership_change_weight > 0) {
            return Err(format!(
                "bit_rot_weight: {} needs 3 nodes or more and membership_change_weight 0 (a rotted member \
                 counts as out; this world has {} nodes, membership_change_weight {})",
                s.bit_rot_weight, s.nodes, s.membership_change_weight
            ));
        }
        if let Some(k) = s.fault_plan.iter().position(|p| matches!(p.fault, Fault::BitRot { .. }))
            && !survives_a_rotted_node(s)
        {
            return Err(format!(
                "fault_plan[{k}]: bit rot needs 3 nodes or more and no membership change (a rotted member \
                 counts as out; this world has {} nodes{})",
                s.nodes,
                if s.nodes >= 3 { " and membership changes" } else { "" }
            ));
        }
        let run_ms = s.safety_ms + s.liveness_ms;
        for (k, p) in s.fault_plan.iter().enumerate() {
            super::bounds::check_fault(k, p.at_ms, p.plus_ns, &p.fault, run_ms)?;
            if p.node >= s.nodes {
                return Err(format!("fault_plan[{k}].node: {} but the cluster has {} nodes", p.node, s.nodes));
            }
            match &p.fault {
                Fault::PowerCutBefore { call, .. } | Fault::PowerCutAfter { call, .. }
                    if OpKind::from_name(call).is_none() =>
                {
                    let names: Vec<&str> = OpKind::ALL.iter().map(|k| k.name()).collect();
                    return Err(format!("fault_plan[{k}].call: unknown call {call:?} (one of {})", names.join(", ")));
                }
                Fault::Membership { group, .. } if *group >= s.groups => {
                    return Err(format!("fault_plan[{k}].group: {group} but the world has {} groups", s.groups));
                }
                Fault::DiskError { call, .. } if OpKind::from_name(call).is_none() => {
                    let names: Vec<&str> = OpKind::ALL.iter().map(|k| k.name()).collect();
                    return Err(format!("fault_plan[{k}].call: unknown call {call:?} (one of {})", names.join(", ")));
                }
                Fault::DiskError { times: 0, duration_ms: 0, .. } => {
                    return Err(format!(
                        "fault_plan[{k}]: a disk error fails at least 1 call (times) or lasts (duration_ms)"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The `vfs` crash model a scenario's model names.
pub fn crash_model(model: scenarios::CrashModel) -> vfs::CrashModel {
    match model {
        scenarios::CrashModel::NoLoss => vfs::CrashModel::NoLoss,
        scenarios::CrashModel::LoseUnsynced => vfs::CrashModel::LoseUnsynced,
        scenarios::CrashModel::Pessimistic => vfs::CrashModel::Pessimistic,
        scenarios::CrashModel::Ext4Ordered => vfs::CrashModel::Ext4Ordered,
        scenarios::CrashModel::Corrupting => vfs::CrashModel::Corrupting,
        scenarios::CrashModel::UnsyncedGarbage => vfs::CrashModel::UnsyncedGarbage,
    }
}

/// The WAL settings of every node.
pub(super) fn wal_config(cfg: &WorldConfig) -> WalConfig {
    WalConfig {
        dir: "wal".into(),
        max_size_bytes: cfg.spec.wal_max_size_bytes,
        first_file_max_size_bytes: cfg.spec.wal_max_size_bytes,
        max_entries: None,
        sync_method: SyncMethod::Datasync,
        compute_checksums: true,
        bugs: cfg.bugs.clone(),
    }
}

/// The segment writer settings of every node.
pub(super) fn segment_writer_config(cfg: &WorldConfig) -> SegmentWriterConfig {
    SegmentWriterConfig {
        data_dir: String::new(),
        segment: SegmentConfig {
            max_count: cfg.spec.segment_max_count,
            max_size_bytes: cfg.spec.segment_max_size_bytes,
            max_pending: cfg.spec.segment_max_pending as usize,
            compute_checksums: true,
            index_parse: raft_core::storage::segment::IndexParse::for_bugs(&cfg.bugs),
        },
        delete_keys_per_step: 8,
        bugs: cfg.bugs.clone(),
    }
}

/// Whether a planned bit rot can be judged in this world: three nodes or more and no membership change
/// (by weight or planned), since a rotted member counts as out.
pub(crate) fn survives_a_rotted_node(s: &WorldSpec) -> bool {
    s.nodes >= 3
        && s.membership_change_weight == 0
        && !s.fault_plan.iter().any(|p| matches!(p.fault, Fault::Membership { .. }))
}
