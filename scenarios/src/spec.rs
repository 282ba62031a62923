//! The world as data: every knob of a run, flat, so that a seed file's `overrides` name a knob by its field
//! name and a bad one is reported by that name.

use serde::{Deserialize, Serialize};

use crate::PlannedFault;

/// How a power cut treats unsynced state (the `vfs` models, by the same names; `scenarios` knows nothing of
/// `vfs`, the engine maps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashModel {
    /// Everything pending survives.
    NoLoss,
    /// Everything pending is lost.
    LoseUnsynced,
    /// Each touched sector and each entry operation independently kept or not (POSIX at its strictest).
    Pessimistic,
    /// ext4 `data=ordered`: metadata survives as a prefix of program order.
    Ext4Ordered,
    /// `Pessimistic`, and a touched sector may hold garbage, even one that held synced data (hardware that
    /// damages committed data: no software survives it, so swarm never draws it).
    Corrupting,
    /// `Pessimistic`, and a sector an unsynced write touched may hold garbage if it held no synced data:
    /// what a drive does to the sectors in flight when power fails.
    UnsyncedGarbage,
}

impl CrashModel {
    /// Every model.
    pub const ALL: [CrashModel; 6] = [
        CrashModel::NoLoss,
        CrashModel::LoseUnsynced,
        CrashModel::Pessimistic,
        CrashModel::Ext4Ordered,
        CrashModel::Corrupting,
        CrashModel::UnsyncedGarbage,
    ];

    /// The model's name (as in seed files and on the command line).
    pub fn name(self) -> &'static str {
        match self {
            CrashModel::NoLoss => "no_loss",
            CrashModel::LoseUnsynced => "lose_unsynced",
            CrashModel::Pessimistic => "pessimistic",
            CrashModel::Ext4Ordered => "ext4_ordered",
            CrashModel::Corrupting => "corrupting",
            CrashModel::UnsyncedGarbage => "unsynced_garbage",
        }
    }

    /// The model named `name`.
    pub fn from_name(name: &str) -> Option<CrashModel> {
        CrashModel::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A whole world as data: cluster, workload, network, faults and phases. Every knob is written out (no
/// `Default`): a seed file stores one resolved, so it replays the same world after unrelated changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldSpec {
    /// Decides everything else that is random.
    pub seed: u64,
    /// Cluster size (every node hosts one member of each Raft group).
    pub nodes: usize,
    /// Raft groups (1..k): each has a member on every node, all sharing the node's WAL, segment writer,
    /// names and meta stores — as Ra's quorum queues share a Ra system.
    pub groups: usize,
    /// Group `g ≥ 1` is created on every node `g ×` this many milliseconds into the run (0: every group at
    /// the first boot): a new server registering while the others write, roll the WAL over and crash.
    /// A node that is down then creates its member when it next boots.
    pub group_stagger_ms: u64,
    /// WAL roll-over size.
    pub wal_max_size_bytes: u64,
    /// Entries per segment file.
    pub segment_max_count: u16,
    /// Snapshot every this many applied entries (0: never).
    pub snapshot_interval: u64,
    /// Message latency bounds.
    pub latency_min_us: u64,
    /// Upper bound of message latency.
    pub latency_max_us: u64,
    /// Simulated time one actor step costs.
    pub step_cost_us: u64,
    /// Leader heartbeat period.
    pub heartbeat_ms: u64,
    /// Election timeout bounds.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the election timeout.
    pub election_timeout_max_ms: u64,
    /// One client operation every this many milliseconds.
    pub client_interval_ms: u64,
    /// Keys the workload uses.
    pub keys: u32,
    /// Closed-loop clients, each with at most one operation outstanding, following redirects and giving
    /// up after `client_timeout_ms` (the outcome is then unknown). 0: an open-loop generator — one
    /// operation every `client_interval_ms` to whichever node believes it leads, no retries.
    pub clients: u32,
    /// How long a closed-loop client waits for an answer.
    pub client_timeout_ms: u64,
    /// Length of the safety phase (faults on).
    pub safety_ms: u64,
    /// Bound of the liveness phase: the cluster must converge within this long after the heal (the run
    /// ends as soon as it has). Must exceed Ra's own recovery timers (snapshot retry backoff up to 60 s,
    /// a stalled snapshot receive abandoned after 30 s), or a correct cluster fails `converges`.
    pub liveness_ms: u64,
    /// How long the workload goes on after the heal (and until one operation has completed after it).
    pub liveness_workload_ms: u64,
    /// `lagging-follower-caught-up`: a follower whose pre-vote reached the leader must hear from it
    /// within this long.
    pub contact_bound_ms: u64,
    /// A fault on a random node about every this many milliseconds of the safety phase (0: none).
    pub fault_every_ms: u64,
    /// Relative weight of power losses among faults (the crash model decides what the disk keeps).
    pub power_loss_weight: u32,
    /// Relative weight of VM crashes (volatile state lost, page cache kept).
    pub vm_crash_weight: u32,
    /// Relative weight of WAL process restarts (mem tables survive: post-boot recovery).
    pub wal_restart_weight: u32,
    /// Relative weight of network isolations of one node (for `partition_ms`).
    pub partition_weight: u32,
    /// Relative weight of power cuts armed at a durability point (the next WAL unlink, segment fsync,
    /// config rename, …), where Ra's crash-recovery bugs hide.
    pub crash_point_weight: u32,
    /// Percentage of the safety phase's restarts that arm a power cut a few filesystem calls into the
    /// recovery (a second crash while the first is being recovered from).
    pub recovery_crash_percent: u32,
    /// Relative weight of segment writer crashes. Ra's log supervisor is `one_for_all`, so the WAL restarts
    /// with it (post-boot recovery, mem tables kept); the segment writer's unfinished work is lost.
    pub segment_writer_crash_weight: u32,
    /// Relative weight of one-way partitions: one node's outbound or inbound messages are dropped for
    /// `partition_ms` (it can hear but not be heard, or the reverse).
    pub one_way_partition_weight: u32,
    /// Percentage of messages lost in the safety phase.
    pub message_loss_percent: u32,
    /// Percentage of messages delivered twice in the safety phase.
    pub message_duplicate_percent: u32,
    /// Percentage of messages that overtake the link's earlier messages in the safety phase (the link is
    /// FIFO otherwise, as Erlang distribution is).
    pub message_reorder_percent: u32,
    /// How long an isolation lasts.
    pub partition_ms: u64,
    /// How long a node stays down after a crash.
    pub restart_after_ms: u64,
    /// The crash model power losses use.
    pub crash_model: CrashModel,
    /// Faults at chosen times and crash points (the scenario's plan), on top of the random ones
    /// `fault_every_ms` draws. A plan is not held to the random faults' budget (one node out at a time):
    /// what it schedules happens, except a crash of a node that is already down.
    pub fault_plan: Vec<PlannedFault>,
    /// The largest value a client writes, in bytes (at least 8: every value starts with its own 8-byte
    /// number). A put or compare-and-set writes 8 to 32 bytes, or one time in eight a size drawn
    /// log-uniformly up to this (RabbitMQ's message bodies, kilobytes to megabytes, through Ra), so that
    /// records straddle sectors and pages and one entry can fill a WAL file. Absent in older files: 8.
    #[serde(default = "eight")]
    pub value_size_max_bytes: u64,
    /// Relative weight of disk errors among the random faults: `EIO` or `ENOSPC` on a write, sync,
    /// directory sync, rename or read of one kind of file (WAL, segment, snapshot, config, stores),
    /// transient or sticky for a while, or the disk full for a while. Absent in older files: 0.
    #[serde(default)]
    pub disk_error_weight: u32,
    /// Relative weight of slow disks among the random faults (each WAL sync takes 1 to 20 ms for 100 ms
    /// to 1 s). Absent in older files: 0.
    #[serde(default)]
    pub slow_disk_weight: u32,
    /// Percentage of the random WAL restarts (and segment writer crashes, which restart the WAL) that arm
    /// a power cut a few filesystem calls into the WAL's recovery. Absent in older files: 0.
    #[serde(default)]
    pub wal_recovery_cut_percent: u32,
    /// Relative weight of membership changes among the random faults: the victim node's member of a
    /// random group leaves the group if it is in the leader's configuration, or joins it again (as a
    /// voter, a promotable member or a non-voter) if not. Absent in older files: 0.
    #[serde(default)]
    pub membership_change_weight: u32,
    /// How long the log supervisor's restart (`ra_log_sup`, one_for_all: after a segment writer crash,
    /// or when the WAL's own supervisor gives up) leaves the WAL's name unregistered — Ra starts
    /// pre-init, the meta store and the segment writer before the WAL. Appends in between find the WAL
    /// down (Ra's `await_condition` on `wal_down`; a leader hands its leadership over after 5 s).
    /// Absent in older files: 0 (the new WAL registers at once).
    #[serde(default)]
    pub log_restart_ms: u64,
    /// Percentage of the workload's compare-and-sets that expect the key to hold the value the workload
    /// last asked to write to it (which it holds when that write took effect and nothing newer did), so
    /// that compare-and-sets succeed against values and the history has reads-modify-writes to judge;
    /// the others expect the key absent. Absent in older files: 0.
    #[serde(default)]
    pub cas_expected_percent: u32,
    /// Bytes of machine state per snapshot chunk a leader sends (Ra's 1 MB). The machine's state is a
    /// few hundred bytes at most, so only a small chunk makes a transfer of several chunks — each
    /// acknowledged before the next, the receiver accepting them into its snapshot one by one. Absent in
    /// older files: 4096.
    #[serde(default = "chunk_4096")]
    pub snapshot_chunk_bytes: u64,
    /// Percentage of the reboots after a crash (random faults on) whose recovery meets a failing disk:
    /// the next one to three reads of one of the files a boot reads — the names store, a server's
    /// config, the meta store, a snapshot, a segment or a WAL file — fail with `EIO`. Absent in older
    /// files: 0.
    #[serde(default)]
    pub recovery_disk_error_percent: u32,
    /// Data bytes after which a segment file takes no further entry (Ra's system setting
    /// `segment_max_size_bytes`, 64,000,000 by default): a small one makes the segment writer roll over
    /// by size, not only by count. Absent in older files: Ra's default.
    #[serde(default = "ra_segment_max_size")]
    pub segment_max_size_bytes: u64,
    /// Appends a segment buffers before it writes them out (Ra's `segment_max_pending`, 1,024 by
    /// default): a small one writes one segment's data and index in several pieces within one flush.
    /// Absent in older files: Ra's default.
    #[serde(default = "ra_segment_max_pending")]
    pub segment_max_pending: u32,
    /// Weight of bit rot among the random faults: one bit of a durable entry in the node's segment files
    /// reads back flipped from the medium ([`crate::Fault::BitRot`]), one rotted node at a time. Needs
    /// three nodes or more and no membership churn (a rotted member counts as out). Absent in older
    /// files: 0.
    #[serde(default)]
    pub bit_rot_weight: u32,
    /// Percentage of the random disk errors (`disk_error_weight`) that fail a directory listing
    /// (`read_dir`) instead of a file's call: the WAL's directory, a server's directory or its snapshots
    /// directory, with `EIO`, transient or sticky like any other disk error. Absent in older files: 0.
    #[serde(default)]
    pub listing_error_percent: u32,
}

/// Ra's `segment_max_size_bytes` default (ra.hrl `SEGMENT_MAX_SIZE_B`).
pub const RA_SEGMENT_MAX_SIZE_BYTES: u64 = 64_000_000;
/// Ra's `segment_max_pending` default (ra.hrl `SEGMENT_MAX_PENDING`).
pub const RA_SEGMENT_MAX_PENDING: u32 = 1024;

fn ra_segment_max_size() -> u64 {
    RA_SEGMENT_MAX_SIZE_BYTES
}

fn ra_segment_max_pending() -> u32 {
    RA_SEGMENT_MAX_PENDING
}

/// The value of `snapshot_chunk_bytes` in worlds written before it existed.
fn chunk_4096() -> u64 {
    4096
}

/// The value of `value_size_max_bytes` in worlds written before it existed.
fn eight() -> u64 {
    8
}
