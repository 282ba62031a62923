//! Every class of fault the harness can inject: what it does to a node, how swarm draws it (or why the
//! engine never does), and the coverage counter that counts it taking effect. `sim list faults` prints
//! this; `sim explore --coverage` reports each class's count and names any drawn class no seed fired.
//!
//! Why a table: a fault class that exists in `vfs` or in plans but that no random run ever fires finds
//! nothing nobody aimed at; the table makes that visible, and `every_fault_class_fires` (sim's engine
//! tests) holds swarm to it.

use std::collections::BTreeMap;

/// One class of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultClass {
    /// Its name (kebab-case).
    pub name: &'static str,
    /// What it does.
    pub what: &'static str,
    /// How random runs draw it.
    pub drawn: Drawn,
    /// The coverage counter that counts it taking effect (empty for a class the engine never injects).
    pub fired: &'static str,
}

/// How random runs draw a fault class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawn {
    /// By swarm and by scenarios that set this knob (a weight or a percentage of `WorldSpec`).
    Knob(&'static str),
    /// Never by the engine; the reason.
    Never(&'static str),
}

/// Every fault class: the engine's (drawn by swarm), then `vfs`'s media faults (which the engine never
/// injects, but for a bit flip in a segment entry's data: the one place Ra checks a checksum on a read).
pub const FAULT_CLASSES: [FaultClass; 36] = [
    class(
        "power-loss",
        "power fails: the crash model decides what of the unsynced state the disk keeps",
        "power_loss_weight",
        "power losses",
    ),
    class(
        "vm-crash",
        "the Erlang VM dies: every process and its state gone, the page cache (and unsynced data) kept",
        "vm_crash_weight",
        "vm crashes",
    ),
    class(
        "crash-point",
        "power fails just before a chosen kind of durability call (a WAL fdatasync, a rename, an unlink, …)",
        "crash_point_weight",
        "crash points fired",
    ),
    class(
        "recovery-crash",
        "power fails again a number of calls into the reboot that follows a crash",
        "recovery_crash_percent",
        "crashes during recovery",
    ),
    class(
        "recovery-read-eio",
        "the reboot after a crash meets a failing disk: reads of the names store, a config, the meta store, a snapshot, a segment or a WAL file fail with EIO",
        "recovery_disk_error_percent",
        "disk errors armed into a recovery",
    ),
    class(
        "listing-eio",
        "a directory listing fails with EIO (the WAL's directory, a server's, its snapshots'): a share of the random disk errors",
        "listing_error_percent",
        "disk errors fired: directory listing EIO",
    ),
    class(
        "wal-restart",
        "the WAL process alone restarts (its mailbox lost, mem tables kept): post-boot recovery",
        "wal_restart_weight",
        "wal restart faults",
    ),
    class(
        "wal-recovery-cut",
        "power fails a few calls into the recovery of a restarted WAL (or segment writer)",
        "wal_recovery_cut_percent",
        "power cuts during a WAL restart's recovery",
    ),
    class(
        "segment-writer-crash",
        "the segment writer crashes mid-flush; the log supervisor restarts it with the WAL",
        "segment_writer_crash_weight",
        "segment writer crashes",
    ),
    class(
        "slow-disk",
        "each WAL sync takes milliseconds for a while, so appends queue behind it",
        "slow_disk_weight",
        "slow disks",
    ),
    class("isolation", "a node's messages are dropped both ways for a while", "partition_weight", "isolations"),
    class(
        "one-way-partition",
        "a node's inbound or outbound messages are dropped for a while",
        "one_way_partition_weight",
        "one-way partitions",
    ),
    class(
        "membership-change",
        "an operator removes a member from its group or adds it back (voter, promotable or non-voter)",
        "membership_change_weight",
        "membership changes appended",
    ),
    class("message-loss", "a message is lost", "message_loss_percent", "messages lost"),
    class("message-duplication", "a message is delivered twice", "message_duplicate_percent", "messages duplicated"),
    class(
        "message-reordering",
        "a message overtakes others on its link",
        "message_reorder_percent",
        "messages reordered",
    ),
    class("write-eio", "a write fails with EIO", "disk_error_weight", "disk errors fired: write EIO"),
    class(
        "write-enospc",
        "a write (or a file creation) fails with ENOSPC",
        "disk_error_weight",
        "disk errors fired: ENOSPC",
    ),
    class(
        "fdatasync-eio",
        "a WAL fdatasync fails: some of what it was to write is dropped, the page cache still shows it (fsyncgate)",
        "disk_error_weight",
        "disk errors fired: fdatasync EIO",
    ),
    class(
        "fsync-eio",
        "a file fsync fails, with fsyncgate semantics",
        "disk_error_weight",
        "disk errors fired: fsync EIO",
    ),
    class(
        "dir-fsync-eio",
        "a directory fsync fails: the filesystem shuts down until the machine restarts",
        "disk_error_weight",
        "disk errors fired: directory fsync EIO",
    ),
    class("rename-eio", "a rename fails with EIO", "disk_error_weight", "disk errors fired: rename EIO"),
    class("read-eio", "a read fails with EIO", "disk_error_weight", "disk errors fired: read EIO"),
    class("create-eio", "creating a file fails with EIO", "disk_error_weight", "disk errors fired: create EIO"),
    class("open-eio", "opening a file fails with EIO", "disk_error_weight", "disk errors fired: open EIO"),
    class("unlink-eio", "an unlink fails with EIO", "disk_error_weight", "disk errors fired: unlink EIO"),
    class(
        "sticky-disk-errors",
        "a kind of call fails every time for a while (a degraded disk), not just the next few times",
        "disk_error_weight",
        "sticky disk errors",
    ),
    class(
        "full-disk",
        "the disk fills up with other data for a while: every call that needs a new page fails with ENOSPC",
        "disk_error_weight",
        "full disks",
    ),
    class(
        "fsyncgate-drop",
        "a failed sync dropped writes for good while the page cache keeps showing them",
        "disk_error_weight",
        "failed syncs that dropped writes",
    ),
    class(
        "filesystem-shutdown",
        "after a failed directory fsync every mutating call fails until the machine restarts",
        "disk_error_weight",
        "filesystems shut down",
    ),
    class(
        "garbage-sectors",
        "a power cut leaves garbage in sectors being written that held no synced data (`unsynced_garbage`)",
        "crash_model",
        "crash images with garbage sectors",
    ),
    class(
        "bit-flip",
        "a bit of a durable segment entry's data reads back flipped from the medium, the page cache no longer holding it (one rotted node at a time; where Ra keeps no checksum a read checks, never drawn)",
        "bit_rot_weight",
        "bit rots injected",
    ),
    never("latent-sector-error", "reads of a sector fail with EIO until it is rewritten"),
    never("lost-write", "a write the disk acknowledged is never stored"),
    never("misdirected-write", "a write lands on other sectors of the file"),
    FaultClass {
        name: "corrupting-power-loss",
        what: "a power cut may leave garbage in any sector being written, synced data included (`corrupting`)",
        drawn: Drawn::Never(MEDIA),
        fired: "",
    },
];

const MEDIA: &str = "hardware loss of synced data where Ra keeps no checksum a read checks, which no \
                     checker may blame on the software: vfs injects it for raft-core's corruption suites \
                     (typed errors, no panic, checksums), the engine never does";

const fn class(name: &'static str, what: &'static str, knob: &'static str, fired: &'static str) -> FaultClass {
    FaultClass { name, what, drawn: Drawn::Knob(knob), fired }
}

const fn never(name: &'static str, what: &'static str) -> FaultClass {
    FaultClass { name, what, drawn: Drawn::Never(MEDIA), fired: "" }
}

/// The classes random runs draw whose counter is 0 in `coverage` (summed over a suite).
pub fn unfired(coverage: &BTreeMap<&'static str, u64>) -> Vec<&'static str> {
    FAULT_CLASSES
        .iter()
        .filter(|c| matches!(c.drawn, Drawn::Knob(_)))
        .filter(|c| coverage.get(c.fired).copied().unwrap_or(0) == 0)
        .map(|c| c.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_drawn_class_names_a_knob_of_the_world_and_a_counter() {
        let knobs = serde_json::to_value(scenarios::swarm(0)).expect("a world serialises");
        for (i, c) in FAULT_CLASSES.iter().enumerate() {
            assert!(FAULT_CLASSES[..i].iter().all(|o| o.name != c.name), "{} twice", c.name);
            match c.drawn {
                Drawn::Knob(k) => {
                    assert!(knobs.get(k).is_some(), "{}: no knob {k}", c.name);
                    assert!(!c.fired.is_empty(), "{}", c.name);
                }
                Drawn::Never(_) => assert!(c.fired.is_empty(), "{}", c.name),
            }
        }
    }
}
