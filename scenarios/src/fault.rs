//! Fault plans: faults at chosen times and crash points, as data.

use serde::{Deserialize, Serialize};

/// One fault a plan schedules: on which node, when, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// Simulated milliseconds from the start of the run (faults after the heal are not applied).
    pub at_ms: u64,
    /// Nanoseconds after `at_ms` (below 1,000,000): the exact time of a fault `sim shrink` materialised
    /// from a random one. Absent in older files: 0.
    #[serde(default)]
    pub plus_ns: u64,
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
    /// A power cut at an exact point, keeping exactly `image` of the unsynced state: what `sim sweep`
    /// and `sim shrink` write, so a failure replays the same crash image after unrelated changes.
    ExactPowerCut {
        /// Where the cut falls.
        at: CutAt,
        /// What the disk keeps (`None`: the world's crash model chooses). If it no longer fits the
        /// pending state (the run took another path), the crash model chooses and the run counts it.
        image: Option<CrashImage>,
        /// A second cut during the reboot, if any.
        reboot_cut: Option<RebootCut>,
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
    /// The node's disk turns slow for `duration_ms`: each WAL sync takes `sync_latency_us` (a degraded
    /// or overloaded disk). The WAL process waits that long before it writes and syncs a batch, so its
    /// writers hear `Written` that much later and new appends queue behind it, as behind Ra's WAL
    /// blocked in fdatasync; the rest of the node (servers, snapshot worker) runs at full speed.
    SlowWal {
        /// How long each WAL sync takes.
        sync_latency_us: u64,
        /// How long the disk stays slow.
        duration_ms: u64,
    },
    /// The node's disk fails calls: the next `times` calls of kind `call` (a `vfs` call name) on a path
    /// matching `path_glob` fail with `error` — a transient error — or, with `duration_ms` above 0, every
    /// such call for that long — a sticky one. A failed `fsync`, `fdatasync` or `fsync_dir` keeps some of
    /// what it was to write and forgets the rest, the page cache still showing it (fsyncgate). How the
    /// node reacts is Ra's: the process that saw the error crashes and its supervisor restarts it.
    DiskError {
        /// The call kind's name.
        call: String,
        /// Glob over the normalised path (or rename target).
        path_glob: String,
        /// What the calls fail with.
        error: DiskErrorKind,
        /// How many calls fail (when `duration_ms` is 0).
        times: u32,
        /// How long every matching call fails (0: `times` calls, then none).
        duration_ms: u64,
    },
    /// The node's disk fills up with other data for `duration_ms`: every call that needs a new page fails
    /// with `ENOSPC` (rewrites of allocated pages, syncs and renames still succeed).
    DiskFull {
        /// How long the disk stays full.
        duration_ms: u64,
    },
    /// A bit of one entry's data flips on the node's medium, and the page cache no longer hides it (the
    /// page evicted, or a reboot's cold cache). `pick` chooses — the same way on every replay of the same disk — which entry of the
    /// node's segment files (an entry whose data is not all durable is passed over), which byte of its
    /// data and which bit. Nothing happens when no segment holds a durable entry, or when another node's
    /// medium is already rotted (one rotted node at a time, as one node out at a time). The entry's CRC
    /// is what stands between the flip and the cluster: Ra's read exits on it
    /// (`ra_log_segment_crc_check_failure`) and the server's supervisor restarts the server; a corrupted
    /// entry must never be served.
    BitRot {
        /// Chooses the entry, the byte and the bit.
        pick: u64,
    },
    /// An operator changes group `group`'s membership: the node's member is removed (`ra:remove_member`)
    /// or added back (`ra:add_member`), asked of whichever member leads the group now (no leader: nothing
    /// happens). The member's server keeps running, as Ra's does after `remove_member`.
    Membership {
        /// The Raft group (0-based).
        group: usize,
        /// What is asked.
        change: MemberChange,
    },
}

/// A membership change of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberChange {
    /// Remove it.
    Leave,
    /// Add it as a voter at once.
    JoinVoter,
    /// Add it as `promotable`: replicated to, promoted to voter by the leader once caught up (Ra's
    /// recommended way).
    JoinPromotable,
    /// Add it as a non-voter.
    JoinNonVoter,
}

/// The error an injected disk failure returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskErrorKind {
    /// `EIO`: a failed device or controller.
    Eio,
    /// `ENOSPC`: no space left.
    Enospc,
}

/// Where an exact power cut falls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutAt {
    /// At the plan entry's time, between two steps (a power loss).
    Now,
    /// Just before the node's filesystem call with this sequence number (the call fails).
    BeforeCall(u64),
    /// Right after the node's filesystem call with this sequence number completes. Call numbers go on
    /// across reboots, so on a node that is down when the entry is due the cut is armed at its next boot
    /// (a power cut during a reboot after a VM crash, or during a second reboot).
    AfterCall(u64),
}

/// A second power cut during the reboot that follows a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootCut {
    /// It falls right after this many filesystem calls of the reboot.
    pub after_calls: u64,
    /// What the disk keeps (`None`: the crash model chooses).
    pub image: Option<CrashImage>,
}

/// What a power cut keeps of a node's unsynced state, written out: the `vfs` decision vector as data
/// (`scenarios` knows nothing of `vfs`; the engine converts). A file or sector not listed keeps its
/// durable bytes; an entry operation (create, rename, unlink, …) not listed as kept is lost.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashImage {
    /// How it was chosen, for a reader: the crash model's name, or the sweep's `none`, `all`,
    /// `prefix<=N`, `omit N`, `torn N j/m`, or `shrunk`.
    pub label: String,
    /// Files whose size or sectors took a non-durable version.
    pub files: Vec<FileImage>,
    /// The pending entry operations kept, by sequence number (with what each did, for a reader).
    pub kept_entries: Vec<KeptEntry>,
}

/// What one file keeps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileImage {
    /// Inode number on the node's disk.
    pub ino: u64,
    /// Its path at the cut (for a reader).
    pub path: String,
    /// The size after this pending size change (`None`: the durable size).
    pub size_after: Option<u64>,
    /// Sectors that took a non-durable version.
    pub sectors: Vec<SectorImage>,
}

/// The version one sector took.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectorImage {
    /// Sector index in the file.
    pub sector: u64,
    /// As right after the pending operation with this sequence number.
    pub after: Option<u64>,
    /// Garbage generated from this seed (the `corrupting` model only); exclusive with `after`.
    pub garbage: Option<u64>,
}

/// A pending entry operation the cut kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptEntry {
    /// Its sequence number.
    pub seq: u64,
    /// What it did (for a reader).
    pub op: String,
}

impl CrashImage {
    /// How many unsynced pieces the image keeps (sectors, size changes and entry operations): what
    /// shrinking makes small.
    pub fn kept_count(&self) -> usize {
        let files: usize = self.files.iter().map(|f| f.sectors.len() + usize::from(f.size_after.is_some())).sum();
        files + self.kept_entries.len()
    }
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
            Fault::ExactPowerCut { .. } => "exact-power-cut",
            Fault::WalRestart => "wal-restart",
            Fault::SegmentWriterCrash => "segment-writer-crash",
            Fault::Isolate { .. } => "isolate",
            Fault::SlowWal { .. } => "slow-wal",
            Fault::DiskError { .. } => "disk-error",
            Fault::DiskFull { .. } => "disk-full",
            Fault::BitRot { .. } => "bit-rot",
            Fault::Membership { .. } => "membership",
        }
    }

    /// Whether it takes the node down (a power loss, a VM crash or a power cut); the others — WAL restart,
    /// segment writer crash, isolation, slow disk, disk errors, a full disk, bit rot — leave it running (what a
    /// disk error then brings down is the node's own reaction).
    pub fn crashes(&self) -> bool {
        !matches!(
            self,
            Fault::WalRestart
                | Fault::SegmentWriterCrash
                | Fault::Isolate { .. }
                | Fault::SlowWal { .. }
                | Fault::DiskError { .. }
                | Fault::DiskFull { .. }
                | Fault::BitRot { .. }
                | Fault::Membership { .. }
        )
    }

    /// The power cut the reboot after this fault arms, if any.
    pub fn reboot_cut_after_calls(&self) -> Option<u64> {
        match self {
            Fault::PowerLoss { reboot_cut_after_calls }
            | Fault::VmCrash { reboot_cut_after_calls }
            | Fault::PowerCutBefore { reboot_cut_after_calls, .. }
            | Fault::PowerCutAfter { reboot_cut_after_calls, .. }
            | Fault::PowerCutAfterCalls { reboot_cut_after_calls, .. } => *reboot_cut_after_calls,
            Fault::ExactPowerCut { reboot_cut, .. } => reboot_cut.as_ref().map(|r| r.after_calls),
            Fault::WalRestart
            | Fault::SegmentWriterCrash
            | Fault::Isolate { .. }
            | Fault::SlowWal { .. }
            | Fault::DiskError { .. }
            | Fault::DiskFull { .. }
            | Fault::BitRot { .. }
            | Fault::Membership { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_plain_data_that_round_trips_through_json() {
        let plan = vec![
            PlannedFault {
                at_ms: 1_200,
                plus_ns: 0,
                node: 1,
                fault: Fault::PowerLoss { reboot_cut_after_calls: Some(7) },
            },
            PlannedFault {
                at_ms: 3_000,
                plus_ns: 0,
                node: 0,
                fault: Fault::PowerCutBefore {
                    call: "unlink".into(),
                    path_glob: "wal/*.wal".into(),
                    reboot_cut_after_calls: None,
                },
            },
            PlannedFault {
                at_ms: 4_000,
                plus_ns: 0,
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
