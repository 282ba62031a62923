//! Fault plans: faults at chosen times and crash points, as data.

use serde::{Deserialize, Serialize};

/// One fault a plan schedules: on which node, when, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// Simulated milliseconds from the start of the run (faults after the heal are not applied).
    pub at_ms: u64,
    /// The node (0-based).
    pub node: usize,
    /// What happens.
    pub fault: Fault,
}

/// What a planned fault does. Crashes take the node down; it reboots after the world's
/// `restart_after_ms` through the real boot path, and `reboot_cut_after_calls` arms a second power cut
/// that many filesystem calls into that boot (a crash during recovery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Power loss now: the world's crash model decides what the disk keeps.
    PowerLoss {
        /// A power cut this many calls into the reboot, if any.
        reboot_cut_after_calls: Option<u64>,
    },
    /// Every process gone, the page cache kept (nothing unsynced is lost).
    VmCrash {
        /// A power cut this many calls into the reboot, if any.
        reboot_cut_after_calls: Option<u64>,
    },
    /// A power cut armed now that fires just before the node's next filesystem call of kind `call`
    /// (a `vfs` call name: `unlink`, `fdatasync`, `fsync`, `fsync_dir`, `rename`, `write`, …) whose path
    /// or rename target matches `path_glob` (`*` matches within a path component, `**` across them).
    PowerCutBefore {
        /// The call kind's name.
        call: String,
        /// Glob over the normalised path.
        path_glob: String,
        /// A power cut this many calls into the reboot, if any.
        reboot_cut_after_calls: Option<u64>,
    },
    /// A power cut armed now that fires right after the node's next call of kind `call` on a path matching
    /// `path_glob` completes (between a rename and the directory fsync that would make it durable, say).
    PowerCutAfter {
        /// The call kind's name.
        call: String,
        /// Glob over the normalised path.
        path_glob: String,
        /// A power cut this many calls into the reboot, if any.
        reboot_cut_after_calls: Option<u64>,
    },
    /// A power cut armed now that fires right after the node's next `calls` filesystem calls.
    PowerCutAfterCalls {
        /// How many calls complete first (at least 1).
        calls: u64,
        /// A power cut this many calls into the reboot, if any.
        reboot_cut_after_calls: Option<u64>,
    },
    /// The WAL process restarts (mem tables survive: post-boot recovery).
    WalRestart,
    /// The segment writer crashes; Ra's `one_for_all` log supervisor restarts the WAL with it.
    SegmentWriterCrash,
    /// The node's inbound and/or outbound messages are dropped for `duration_ms`.
    Isolate {
        /// Messages to the node are dropped.
        inbound: bool,
        /// Messages from the node are dropped.
        outbound: bool,
        /// How long.
        duration_ms: u64,
    },
}

impl Fault {
    /// A short name for traces and summaries.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::PowerLoss { .. } => "power-loss",
            Fault::VmCrash { .. } => "vm-crash",
            Fault::PowerCutBefore { .. } => "power-cut-before",
            Fault::PowerCutAfter { .. } => "power-cut-after",
            Fault::PowerCutAfterCalls { .. } => "power-cut-after-calls",
            Fault::WalRestart => "wal-restart",
            Fault::SegmentWriterCrash => "segment-writer-crash",
            Fault::Isolate { .. } => "isolate",
        }
    }

    /// The power cut the reboot after this fault arms, if any.
    pub fn reboot_cut_after_calls(&self) -> Option<u64> {
        match self {
            Fault::PowerLoss { reboot_cut_after_calls }
            | Fault::VmCrash { reboot_cut_after_calls }
            | Fault::PowerCutBefore { reboot_cut_after_calls, .. }
            | Fault::PowerCutAfter { reboot_cut_after_calls, .. }
            | Fault::PowerCutAfterCalls { reboot_cut_after_calls, .. } => *reboot_cut_after_calls,
            Fault::WalRestart | Fault::SegmentWriterCrash | Fault::Isolate { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_plain_data_that_round_trips_through_json() {
        let plan = vec![
            PlannedFault { at_ms: 1_200, node: 1, fault: Fault::PowerLoss { reboot_cut_after_calls: Some(7) } },
            PlannedFault {
                at_ms: 3_000,
                node: 0,
                fault: Fault::PowerCutBefore {
                    call: "unlink".into(),
                    path_glob: "wal/*.wal".into(),
                    reboot_cut_after_calls: None,
                },
            },
            PlannedFault {
                at_ms: 4_000,
                node: 2,
                fault: Fault::Isolate { inbound: true, outbound: false, duration_ms: 500 },
            },
        ];
        let text = serde_json::to_string(&plan).expect("serialises");
        let back: Vec<PlannedFault> = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, plan);
        assert_eq!(plan[0].fault.reboot_cut_after_calls(), Some(7));
        assert_eq!(plan[2].fault.name(), "isolate");
    }
}
