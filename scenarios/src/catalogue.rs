//! The named scenarios. Each fixes what makes its crash-recovery path likely — sizes, a fault plan aimed
//! at a durability point — and leaves the rest to the seed: which node, when each fault strikes, the
//! crash model, and (through the engine's own streams) every latency, scheduling choice and crash image.

use rand_chacha::ChaCha8Rng;

use crate::rng::{below, stream};
use crate::{CrashModel, DiskErrorKind, Fault, PlannedFault, WorldSpec, swarm};

/// A named scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// `area/what-happens`.
    pub name: &'static str,
    /// Two lines: what the scenario makes happen, and why that is where bugs hide.
    pub why: &'static str,
    /// The bug switches (by name) whose pre-fix code path it is built to reach; empty for general ones.
    pub targets: &'static [&'static str],
    build: fn(u64) -> WorldSpec,
}

impl Scenario {
    /// The world of `seed`.
    pub fn world(&self, seed: u64) -> WorldSpec {
        (self.build)(seed)
    }
}

/// Every named scenario, in a fixed order.
pub fn catalogue() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "recovery/frequent-power-loss",
            why: "Three nodes through 60 simulated seconds of power losses every ~0.7 s (crash model from the \
                  seed), then\nhealed: the default long run, where acknowledged writes must survive every reboot.",
            targets: &["indexes-badmatch", "config-no-dir-sync", "accept-no-parent-sync"],
            build: frequent_power_loss,
        },
        Scenario {
            name: "recovery/crash-between-segment-flush-and-wal-delete",
            why: "Power is cut just before a flushed WAL file's unlink, again and again, while segment writer \
                  crashes make\nWAL files replay and flush twice: Ra's segref compaction deletes a segment it still \
                  needs (PR 589 fix 3).",
            targets: &["segref-tuple-delete"],
            build: crash_between_segment_flush_and_wal_delete,
        },
        Scenario {
            name: "recovery/segment-writer-deletes-mid-recovery",
            why: "A cut before a WAL unlink leaves several WAL files of one server for the next boot; the \
                  segment writer\ndeletes the first file's mem-table entries while the WAL recovers the next \
                  (PR 589 fix 2: `gap_detected`), and unlinks them one by one.",
            targets: &["wal-recovery-rescan", "wal-unlink-no-dir-sync"],
            build: segment_writer_deletes_mid_recovery,
        },
        Scenario {
            name: "recovery/corrupt-snapshot-indexes",
            why: "Snapshots every few entries and power cut just before or after a snapshot's unsynced \
                  `indexes` write:\nthe snapshot survives with an empty, torn or missing `indexes` file (PR 589 fix 1).",
            targets: &["indexes-badmatch", "indexes-missing-trusted"],
            build: corrupt_snapshot_indexes,
        },
        Scenario {
            name: "liveness/lagging-follower-snapshot-backoff",
            why: "A follower cut off long enough to need a snapshot loses power mid-transfer, so the sender \
                  fails and\nthe leader backs off; when the follower asks for leadership the leader must \
                  still contact it (PR 589 fix 4).",
            targets: &["backoff-peer-skipped"],
            build: lagging_follower_snapshot_backoff,
        },
        Scenario {
            name: "recovery/crash-between-registration-and-config",
            why: "New groups are created during the run and power is cut just before a new member's config \
                  rename:\nits registration is durable, its config is not (PR 589 fixes 5/6, PR 614).",
            targets: &["config-orphan-registration", "registration-not-synced"],
            build: crash_between_registration_and_config,
        },
        Scenario {
            name: "recovery/config-dir-entry-lost",
            why: "Power is cut right after a new member's config rename, before anything else: without a \
                  directory fsync\nthe rename is lost and the member cannot restart (PR 589 fix 6).",
            targets: &["config-no-dir-sync"],
            build: config_dir_entry_lost,
        },
        Scenario {
            name: "membership/new-server-during-wal-rollover",
            why: "Twenty-four groups created 50 ms apart over 1 KiB WAL files: a new server's first entry can \
                  be the last\nof a file another group's append rolls over (PR 589 fix 5; a race, no fault).",
            targets: &["register-after-init"],
            build: new_server_during_wal_rollover,
        },
        Scenario {
            name: "recovery/torn-wal-tail",
            why: "Power is cut just before WAL fdatasyncs, so the tail of the WAL holds written, unsynced and \
                  torn\nrecords: recovery must keep every acknowledged entry and nothing torn.",
            targets: &[],
            build: torn_wal_tail,
        },
        Scenario {
            name: "recovery/garbage-wal-tail",
            why: "Power is cut just before WAL fdatasyncs and the drive leaves garbage in sectors it was \
                  writing that held\nno synced data (values up to 8 KiB, so a batch spans many sectors): \
                  the unacknowledged tail is garbage, and the node must still boot.",
            targets: &["wal-garbage-tail-fatal"],
            build: garbage_wal_tail,
        },
        Scenario {
            name: "recovery/segment-sync-error",
            why: "A segment fsync fails once on one node (the segment writer crashes, the log tier restarts), \
                  then power is lost:\na segment whose first sync never completed must not stop the node \
                  from booting or lose what it held.",
            targets: &["segment-reused-after-failed-sync"],
            build: segment_sync_error,
        },
        Scenario {
            name: "recovery/wal-sync-errors",
            why: "A WAL fdatasync fails on one node; the restarted WAL re-reads the file from the page \
                  cache, which shows a batch\nthat never reached the disk; power is cut before the file \
                  is deleted or early in a reboot: written entries must survive.",
            targets: &["wal-recovery-trusts-page-cache"],
            build: wal_sync_errors,
        },
        Scenario {
            name: "recovery/wal-unlink-errors",
            why: "With 2 KiB WAL files, the segment writer's unlink of a flushed WAL file fails now and \
                  then on one node:\nthe log tier restarts and flushes the file again while its servers \
                  delete what the first flush made durable.",
            targets: &["missing-index-exit"],
            build: wal_unlink_errors,
        },
        Scenario {
            name: "recovery/torn-segment-index",
            why: "Power is cut just before segment fsyncs, with 1 KiB WAL files (small flushes, so an index \
                  write can start\nwith a record straddling a sector boundary) and no snapshots: a torn \
                  index record must not read as a valid one.",
            targets: &["segment-index-unchecked"],
            build: torn_segment_index,
        },
        Scenario {
            name: "recovery/power-loss-during-snapshot-install",
            why: "A lagging follower installs a snapshot and power is cut a seeded number of calls into the \
                  install:\nthe accept path's renames, deletes and directory fsyncs must leave a bootable log.",
            targets: &["accept-no-parent-sync"],
            build: power_loss_during_snapshot_install,
        },
        Scenario {
            name: "recovery/stale-leader-installs-snapshot",
            why: "Each node in turn is cut off while clients keep writing to it (a leader appends them \
                  alone), then loses power\nsoon after it returns and takes the new leader's snapshot: \
                  recovery must not bring the stale suffix back.",
            targets: &["stale-tail-resurrected"],
            build: stale_leader_installs_snapshot,
        },
        Scenario {
            name: "recovery/follower-crash-under-overtaking",
            why: "Writes every millisecond, a snapshot every 10 entries, 1-10 ms links that overtake 2% of \
                  messages, and a node\ncrashed every ~700 ms: catch-up mixes resent entries with a \
                  stale snapshot, which must not truncate written entries.",
            targets: &["snapshot-over-written-log"],
            build: follower_crash_under_overtaking,
        },
        Scenario {
            name: "recovery/snapshot-ahead-of-slow-wal",
            why: "Each node's disk in turn turns slow (WAL syncs take 5-12 ms) and power is cut right after \
                  its next snapshot:\na server applies what the others committed before its own WAL wrote \
                  it, and must not snapshot it yet.",
            targets: &["snapshot-before-written"],
            build: snapshot_ahead_of_slow_wal,
        },
        Scenario {
            name: "network/partition-leader",
            why: "Nodes are isolated, made deaf or mute, and messages lost, duplicated and reordered, with no \
                  crash:\nelections, pre-votes and redirects must keep the history linearizable and converge.",
            targets: &[],
            build: partition_leader,
        },
        Scenario {
            name: "membership/churn-under-crashes",
            why: "Members of three or five nodes leave their groups and join again (as voters, promotable or \
                  non-voters;\nleaders remove themselves) amid power losses, crash points, WAL restarts and \
                  partitions, snapshots on.",
            targets: &[],
            build: churn_under_crashes,
        },
        Scenario {
            name: "swarm",
            why: "A random world per seed — cluster, groups, sizes, workload, fault mix, crash model — so \
                  that no\nscenario's assumptions limit what is explored.",
            targets: &[],
            build: swarm,
        },
    ]
}

/// The scenario named `name`.
pub fn find(name: &str) -> Option<Scenario> {
    catalogue().into_iter().find(|s| s.name == name)
}

/// Three nodes, one group, a steady open-loop workload, no random fault: what each scenario (and a test
/// that needs a plain world) starts from.
pub fn base(seed: u64) -> WorldSpec {
    WorldSpec {
        seed,
        nodes: 3,
        groups: 1,
        group_stagger_ms: 0,
        wal_max_size_bytes: 16 << 10,
        segment_max_count: 64,
        snapshot_interval: 50,
        latency_min_us: 200,
        latency_max_us: 2_000,
        step_cost_us: 20,
        heartbeat_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        client_interval_ms: 5,
        keys: 8,
        clients: 0,
        client_timeout_ms: 1_000,
        safety_ms: 6_000,
        liveness_ms: 70_000,
        liveness_workload_ms: 1_000,
        contact_bound_ms: 4_900,
        fault_every_ms: 0,
        power_loss_weight: 0,
        vm_crash_weight: 0,
        wal_restart_weight: 0,
        partition_weight: 0,
        crash_point_weight: 0,
        recovery_crash_percent: 0,
        segment_writer_crash_weight: 0,
        one_way_partition_weight: 0,
        message_loss_percent: 0,
        message_duplicate_percent: 0,
        message_reorder_percent: 0,
        partition_ms: 1_000,
        restart_after_ms: 300,
        crash_model: CrashModel::Pessimistic,
        fault_plan: Vec::new(),
        value_size_max_bytes: 8,
        disk_error_weight: 0,
        slow_disk_weight: 0,
        wal_recovery_cut_percent: 0,
        membership_change_weight: 0,
        log_restart_ms: 0,
        cas_expected_percent: 0,
        snapshot_chunk_bytes: 4096,
        recovery_disk_error_percent: 0,
        segment_max_size_bytes: crate::RA_SEGMENT_MAX_SIZE_BYTES,
        segment_max_pending: crate::RA_SEGMENT_MAX_PENDING,
        bit_rot_weight: 0,
        listing_error_percent: 0,
    }
}

/// The scenario's own stream of `seed` (the engine's streams are derived from the seed separately).
fn choices(seed: u64) -> ChaCha8Rng {
    stream(seed, 0x5CE7_A210)
}

fn pick<T: Copy>(r: &mut ChaCha8Rng, from: &[T]) -> T {
    from[below(r, from.len() as u64) as usize]
}

/// A model that may lose unsynced directory operations and sectors independently.
fn losing_model(r: &mut ChaCha8Rng) -> CrashModel {
    pick(r, &[CrashModel::Pessimistic, CrashModel::LoseUnsynced])
}

/// `count` faults on `node`, the first after `start_ms`, then about every `every_ms` (seeded jitter).
fn repeated(
    r: &mut ChaCha8Rng,
    node: usize,
    start_ms: u64,
    every_ms: u64,
    count: u64,
    fault: &Fault,
) -> Vec<PlannedFault> {
    (0..count)
        .map(|k| PlannedFault {
            at_ms: start_ms + k * every_ms + below(r, every_ms / 2),
            plus_ns: 0,
            node,
            fault: fault.clone(),
        })
        .collect()
}

/// `rounds` times (the first at `first_ms`, then every `every_ms`): `node` is cut off for `cut_off_ms.0` plus
/// up to `cut_off_ms.1` ms, long enough to need a snapshot, then a power cut is armed as it reconnects, to
/// fire 1 to `max_calls` filesystem calls later — inside the snapshot install the leader starts at once.
fn cut_off_then_cut_into_install(
    r: &mut ChaCha8Rng,
    node: usize,
    rounds: u64,
    (first_ms, every_ms): (u64, u64),
    cut_off_ms: (u64, u64),
    max_calls: u64,
) -> Vec<PlannedFault> {
    let mut plan = Vec::new();
    for k in 0..rounds {
        let start = first_ms + k * every_ms;
        let duration_ms = cut_off_ms.0 + below(r, cut_off_ms.1);
        plan.push(PlannedFault {
            at_ms: start,
            plus_ns: 0,
            node,
            fault: Fault::Isolate { inbound: true, outbound: true, duration_ms },
        });
        plan.push(PlannedFault {
            at_ms: start + duration_ms + 1,
            plus_ns: 0,
            node,
            fault: Fault::PowerCutAfterCalls { calls: 1 + below(r, max_calls), reboot_cut_after_calls: None },
        });
    }
    plan
}

fn cut_before(call: &str, path_glob: &str) -> Fault {
    Fault::PowerCutBefore { call: call.into(), path_glob: path_glob.into(), reboot_cut_after_calls: None }
}

fn cut_after(call: &str, path_glob: &str) -> Fault {
    Fault::PowerCutAfter { call: call.into(), path_glob: path_glob.into(), reboot_cut_after_calls: None }
}

fn frequent_power_loss(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    WorldSpec {
        wal_max_size_bytes: 8 << 10,
        segment_max_count: 32,
        snapshot_interval: 40,
        safety_ms: 60_000,
        fault_every_ms: 700,
        power_loss_weight: 1,
        crash_model: pick(&mut r, &[CrashModel::Pessimistic, CrashModel::LoseUnsynced, CrashModel::Ext4Ordered]),
        ..base(seed)
    }
}

fn crash_between_segment_flush_and_wal_delete(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    let mut plan = repeated(&mut r, node, 400, 700, 7, &cut_before("unlink", "*.wal"));
    plan.extend(repeated(&mut r, node, 700, 1_400, 3, &Fault::SegmentWriterCrash));
    plan.sort_by_key(|p| p.at_ms);
    WorldSpec {
        wal_max_size_bytes: pick(&mut r, &[4 << 10, 8 << 10]),
        segment_max_count: pick(&mut r, &[8, 16, 32]) as u16,
        crash_model: losing_model(&mut r),
        fault_plan: plan,
        ..base(seed)
    }
}

fn segment_writer_deletes_mid_recovery(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let nodes = pick(&mut r, &[1, 3]);
    let node = below(&mut r, nodes as u64) as usize;
    WorldSpec {
        nodes,
        wal_max_size_bytes: 4 << 10,
        segment_max_count: pick(&mut r, &[32, 4096]) as u16,
        snapshot_interval: 0,
        client_interval_ms: 2,
        crash_model: losing_model(&mut r),
        fault_plan: repeated(&mut r, node, 300, 600, 9, &cut_before("unlink", "*.wal")),
        ..base(seed)
    }
}

fn corrupt_snapshot_indexes(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    let fault = if below(&mut r, 2) == 0 { cut_after("write", "indexes") } else { cut_before("fsync", "snapshot.dat") };
    WorldSpec {
        snapshot_interval: pick(&mut r, &[10, 20, 40]),
        crash_model: losing_model(&mut r),
        fault_plan: repeated(&mut r, node, 300, 700, 7, &fault),
        ..base(seed)
    }
}

fn lagging_follower_snapshot_backoff(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    // The cut lands a few calls into the install, so the sender's chunk times out and the leader backs off.
    let plan = cut_off_then_cut_into_install(&mut r, node, 2, (500, 5_000), (1_500, 1_000), 20);
    WorldSpec {
        snapshot_interval: pick(&mut r, &[10, 20]),
        safety_ms: 11_000,
        crash_model: CrashModel::NoLoss,
        fault_plan: plan,
        ..base(seed)
    }
}

/// Groups 2.. created `stagger_ms` apart; `fault` armed on a seeded node just before each creation.
fn new_members_with(seed: u64, fault: Fault) -> WorldSpec {
    let mut r = choices(seed);
    let groups = 4;
    let stagger_ms = 700;
    let plan = (1..groups as u64)
        .map(|g| PlannedFault {
            at_ms: g * stagger_ms - 1,
            plus_ns: 0,
            node: below(&mut r, 3) as usize,
            fault: fault.clone(),
        })
        .collect();
    WorldSpec {
        groups,
        group_stagger_ms: stagger_ms,
        crash_model: losing_model(&mut r),
        fault_plan: plan,
        ..base(seed)
    }
}

fn crash_between_registration_and_config(seed: u64) -> WorldSpec {
    new_members_with(seed, cut_before("rename", "config"))
}

fn config_dir_entry_lost(seed: u64) -> WorldSpec {
    new_members_with(seed, cut_after("rename", "config"))
}

/// Twice the groups of its first version (twelve, 100 ms apart, over 2 KiB WAL files, a 2 s safety
/// phase; its seed files keep that world), each roll-over twice as often, and no safety phase left
/// after the last group: a seed finds the race four times as often, in two thirds of the time.
fn new_server_during_wal_rollover(seed: u64) -> WorldSpec {
    WorldSpec {
        groups: 24,
        group_stagger_ms: 50,
        wal_max_size_bytes: 1 << 10,
        client_interval_ms: 1,
        step_cost_us: 5,
        latency_min_us: 50,
        latency_max_us: 200,
        safety_ms: 1_400,
        ..base(seed)
    }
}

fn torn_wal_tail(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    WorldSpec {
        // Not `Corrupting`: garbage in a sector the synced tail shares with an unsynced record loses
        // acknowledged entries in any WAL that appends in place (Ra's included) — a model question first.
        crash_model: losing_model(&mut r),
        fault_plan: repeated(&mut r, node, 300, 500, 10, &cut_before("fdatasync", "*.wal")),
        ..base(seed)
    }
}

fn garbage_wal_tail(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    // A slow disk (5 ms syncs) batches several records per write, so that a damaged record has others
    // after it.
    let mut plan = vec![PlannedFault {
        at_ms: 200,
        plus_ns: 0,
        node,
        fault: Fault::SlowWal { sync_latency_us: 5_000, duration_ms: 6_000 },
    }];
    plan.extend(repeated(&mut r, node, 300, 500, 10, &cut_before("fdatasync", "*.wal")));
    WorldSpec {
        value_size_max_bytes: 8 << 10,
        // An open-loop write every millisecond: with 5 ms syncs each batch holds several records.
        clients: 0,
        client_interval_ms: 1,
        crash_model: CrashModel::UnsyncedGarbage,
        fault_plan: plan,
        ..base(seed)
    }
}

fn segment_sync_error(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    let mut plan = Vec::new();
    for k in 0..3u64 {
        let at_ms = 300 + k * 1_800 + below(&mut r, 600);
        let fault = Fault::DiskError {
            call: "fsync".into(),
            path_glob: "*/*.segment".into(),
            error: DiskErrorKind::Eio,
            times: 1,
            duration_ms: 0,
        };
        plan.push(PlannedFault { at_ms, plus_ns: 0, node, fault });
        let loss_ms = at_ms + 400 + below(&mut r, 1_000);
        plan.push(PlannedFault {
            at_ms: loss_ms,
            plus_ns: 0,
            node,
            fault: Fault::PowerLoss { reboot_cut_after_calls: None },
        });
    }
    WorldSpec {
        // Small WAL files: segment flushes (and their fsyncs) every few writes.
        wal_max_size_bytes: 2 << 10,
        snapshot_interval: 0,
        crash_model: losing_model(&mut r),
        fault_plan: plan,
        ..base(seed)
    }
}

fn wal_sync_errors(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    let mut plan = Vec::new();
    for k in 0..6u64 {
        let at_ms = 300 + k * 900 + below(&mut r, 400);
        let fault = Fault::DiskError {
            call: "fdatasync".into(),
            path_glob: "wal/*.wal".into(),
            error: DiskErrorKind::Eio,
            times: 1,
            duration_ms: 0,
        };
        plan.push(PlannedFault { at_ms, plus_ns: 0, node, fault });
        // The restarted WAL's recovery hands the file it re-read to the segment writer, which flushes
        // and syncs it and then deletes the file: power is cut just before that delete, or (the VM
        // died first, its page cache kept) a few calls into the reboot.
        let fault = if below(&mut r, 2) == 0 {
            cut_before("unlink", "wal/*.wal")
        } else {
            Fault::VmCrash { reboot_cut_after_calls: Some(1 + below(&mut r, 60)) }
        };
        plan.push(PlannedFault { at_ms: at_ms + 1 + below(&mut r, 30), plus_ns: 0, node, fault });
    }
    WorldSpec { crash_model: losing_model(&mut r), fault_plan: plan, ..base(seed) }
}

fn wal_unlink_errors(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    let fault = Fault::DiskError {
        call: "unlink".into(),
        path_glob: "wal/*.wal".into(),
        error: DiskErrorKind::Eio,
        times: 1,
        duration_ms: 0,
    };
    WorldSpec { wal_max_size_bytes: 2 << 10, fault_plan: repeated(&mut r, node, 300, 400, 12, &fault), ..base(seed) }
}

fn torn_segment_index(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    WorldSpec {
        wal_max_size_bytes: 1 << 10,
        snapshot_interval: 0,
        // Per-sector choices: a write can keep its later sectors and lose its first.
        crash_model: CrashModel::Pessimistic,
        fault_plan: repeated(&mut r, node, 300, 500, 10, &cut_before("fsync", "*.segment")),
        ..base(seed)
    }
}

fn power_loss_during_snapshot_install(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    let plan = cut_off_then_cut_into_install(&mut r, node, 3, (400, 2_500), (1_000, 500), 40);
    WorldSpec {
        snapshot_interval: 10,
        safety_ms: 8_000,
        crash_model: losing_model(&mut r),
        fault_plan: plan,
        ..base(seed)
    }
}

/// The plan of `recovery/stale-leader-installs-snapshot`: no plan can name the leader, so every node
/// takes its turn; a turn that isolates the leader leaves it a suffix of client writes in its old term.
fn stale_leader_installs_snapshot(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let nodes = 3;
    let mut plan = Vec::new();
    for k in 0..6u64 {
        let node = ((seed + k) % nodes) as usize;
        let start_ms = 500 + k * 1_200 + below(&mut r, 200);
        let duration_ms = 300 + below(&mut r, 300);
        plan.push(PlannedFault {
            at_ms: start_ms,
            plus_ns: 0,
            node,
            fault: Fault::Isolate { inbound: true, outbound: true, duration_ms },
        });
        // After the snapshot install that follows the reconnection, before the new leader's log grows
        // past the stale suffix.
        plan.push(PlannedFault {
            at_ms: start_ms + duration_ms + 100 + below(&mut r, 500),
            plus_ns: 0,
            node,
            fault: Fault::PowerLoss { reboot_cut_after_calls: None },
        });
    }
    WorldSpec {
        nodes: nodes as usize,
        snapshot_interval: 10,
        clients: 8,
        keys: 1,
        client_interval_ms: 20,
        safety_ms: 8_000,
        crash_model: losing_model(&mut r),
        fault_plan: plan,
        ..base(seed)
    }
}

fn follower_crash_under_overtaking(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let node = below(&mut r, 3) as usize;
    let crash = if below(&mut r, 2) == 0 {
        Fault::VmCrash { reboot_cut_after_calls: None }
    } else {
        Fault::PowerLoss { reboot_cut_after_calls: None }
    };
    WorldSpec {
        snapshot_interval: 10,
        client_interval_ms: 1,
        keys: 1,
        latency_min_us: 1_000,
        latency_max_us: 10_000,
        message_reorder_percent: 2,
        crash_model: losing_model(&mut r),
        fault_plan: repeated(&mut r, node, 300, 700, 8, &crash),
        ..base(seed)
    }
}

/// The plan of `recovery/snapshot-ahead-of-slow-wal`. While a node's WAL syncs slowly, the other two
/// acknowledge an entry before it has written it: as leader it commits the entry, as follower it hears
/// the commit index in the next append, and it applies the entry either way. When that crosses a
/// snapshot point the snapshot names the entry live (one key: the last put is live) and the snapshot
/// worker, at full speed, syncs it while the entry still waits for the WAL. A cut right after the
/// snapshot is synced loses the entry. The node is back 10 ms later, before the leader's next snapshot
/// truncates what it needs resent, so the machine reads the lost entry at its next get or compare.
fn snapshot_ahead_of_slow_wal(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    let nodes = 3;
    let slow_ms = 300;
    let mut plan = Vec::new();
    for k in 0..25u64 {
        let node = ((seed + k) % nodes) as usize;
        let at_ms = 400 + k * slow_ms;
        let sync_latency_us = pick(&mut r, &[5_000, 8_000, 12_000]);
        plan.push(PlannedFault {
            at_ms,
            plus_ns: 0,
            node,
            fault: Fault::SlowWal { sync_latency_us, duration_ms: slow_ms },
        });
        plan.push(PlannedFault {
            at_ms: at_ms + 50 + below(&mut r, 100),
            plus_ns: 0,
            node,
            fault: cut_after("fsync_dir", "snapshots"),
        });
    }
    WorldSpec {
        nodes: nodes as usize,
        snapshot_interval: 8,
        keys: 1,
        safety_ms: 8_000,
        restart_after_ms: 10,
        crash_model: losing_model(&mut r),
        fault_plan: plan,
        ..base(seed)
    }
}

fn churn_under_crashes(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    WorldSpec {
        nodes: pick(&mut r, &[3, 5]),
        groups: pick(&mut r, &[1, 2]),
        clients: pick(&mut r, &[0, 4]),
        snapshot_interval: pick(&mut r, &[0, 10, 40]),
        wal_max_size_bytes: pick(&mut r, &[2 << 10, 8 << 10]),
        safety_ms: 10_000,
        fault_every_ms: 250,
        membership_change_weight: 4,
        power_loss_weight: 1,
        crash_point_weight: 1,
        wal_restart_weight: 1,
        partition_weight: 1,
        recovery_crash_percent: 20,
        crash_model: losing_model(&mut r),
        ..base(seed)
    }
}

fn partition_leader(seed: u64) -> WorldSpec {
    let mut r = choices(seed);
    WorldSpec {
        nodes: pick(&mut r, &[3, 5]),
        clients: pick(&mut r, &[0, 4]),
        fault_every_ms: 500,
        partition_weight: 2,
        one_way_partition_weight: 1,
        partition_ms: pick(&mut r, &[300, 1_000]),
        message_loss_percent: pick(&mut r, &[0, 1, 5]),
        message_duplicate_percent: pick(&mut r, &[0, 2]),
        message_reorder_percent: pick(&mut r, &[0, 2]),
        ..base(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_scenario_says_why_in_two_lines() {
        let all = catalogue();
        for (i, s) in all.iter().enumerate() {
            assert!(all[..i].iter().all(|o| o.name != s.name), "{} twice", s.name);
            assert_eq!(s.why.lines().count(), 2, "{}", s.name);
            assert_eq!(find(s.name).map(|f| f.name), Some(s.name));
        }
        assert!(find("recovery/nothing").is_none());
    }

    #[test]
    fn the_seed_varies_what_a_scenario_leaves_open_and_only_that() {
        for s in catalogue() {
            assert_eq!(s.world(7), s.world(7), "{}: one seed, one world", s.name);
            let worlds: Vec<WorldSpec> = (0..16).map(|seed| WorldSpec { seed: 0, ..s.world(seed) }).collect();
            let distinct = worlds.iter().filter(|w| *w != &worlds[0]).count();
            if s.name != "membership/new-server-during-wal-rollover" {
                assert!(distinct > 0, "{}: the seed changes nothing but the engine's streams", s.name);
            }
            for w in &worlds {
                assert!(w.fault_plan.iter().all(|p| p.node < w.nodes && p.at_ms < w.safety_ms), "{}", s.name);
            }
        }
    }
}
