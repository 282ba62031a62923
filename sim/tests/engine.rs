//! The engine end to end: a 3-node cluster boots through Ra's real boot path, serves a KV workload,
//! survives power losses, converges, and replays identically from its seed.

use raft_core::{Bug, Bugs};
use scenarios::WorldSpec;
use sim::world::run;
use sim::{Outcome, WorldConfig};

/// `cfg` with its world changed by `f`.
fn with(cfg: WorldConfig, f: impl FnOnce(WorldSpec) -> WorldSpec) -> WorldConfig {
    WorldConfig { spec: f(cfg.spec), ..cfg }
}

/// The world swarm drew for `seed` before several groups per node existed.
fn before_groups(seed: u64, bugs: Bugs) -> WorldConfig {
    WorldConfig::new(WorldSpec { groups: 1, group_stagger_ms: 0, ..scenarios::swarm(seed) }, bugs)
}

/// The world swarm drew for `seed` before crash points, reboot crashes and network faults existed
/// (the knobs drawn after those): how the tests pin the worlds of earlier findings.
fn swarm_as_first_drawn(seed: u64, bugs: Bugs) -> WorldConfig {
    with(before_groups(seed, bugs), |s| WorldSpec {
        crash_point_weight: 0,
        recovery_crash_percent: 0,
        one_way_partition_weight: 0,
        segment_writer_crash_weight: 0,
        message_loss_percent: 0,
        message_duplicate_percent: 0,
        message_reorder_percent: 0,
        clients: 0,
        ..s
    })
}

fn config(seed: u64, fault_every_ms: u64, bugs: Bugs) -> WorldConfig {
    let spec = WorldSpec {
        safety_ms: 10_000,
        fault_every_ms,
        power_loss_weight: 1,
        restart_after_ms: 500,
        ..scenarios::base(seed)
    };
    WorldConfig::new(spec, bugs)
}

#[test]
fn a_fault_free_cluster_elects_serves_and_converges() {
    let r = run(config(1, 0, Bugs::none()));
    assert_eq!(r.outcome, Outcome::Pass, "{:#?}", r.trace.iter().rev().take(30).collect::<Vec<_>>());
    assert!(r.coverage.get("client operations ok").copied().unwrap_or(0) > 500, "{:?}", r.coverage);
    assert!(r.coverage.get("segment flushes").copied().unwrap_or(0) > 0, "{:?}", r.coverage);
    assert!(r.coverage.get("snapshots taken").copied().unwrap_or(0) > 0, "{:?}", r.coverage);
    // The whole client history was checked for linearizability, conclusively.
    assert!(r.coverage.get("history operations").copied().unwrap_or(0) > 500, "{:?}", r.coverage);
    assert_eq!(r.coverage.get("linearizability unknown"), None);
}

#[test]
fn power_losses_are_survived() {
    for seed in 0..6 {
        let r = run(config(seed, 1_500, Bugs::none()));
        assert_eq!(r.outcome, Outcome::Pass, "seed {seed}: {:#?}", r.trace.iter().rev().take(40).collect::<Vec<_>>());
        assert!(r.coverage.get("power losses").copied().unwrap_or(0) > 0, "{:?}", r.coverage);
    }
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in 0..3 {
        let a = run(config(seed, 1_500, Bugs::none()));
        let b = run(config(seed, 1_500, Bugs::none()));
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a.events, b.events);
    }
    let a = run(config(1, 1_500, Bugs::none()));
    let b = run(config(2, 1_500, Bugs::none()));
    assert_ne!(a.trace_hash, b.trace_hash, "different seeds, different runs");
}

#[test]
fn bug_switches_without_faults_pass() {
    for bug in Bug::ALL {
        let r = run(config(3, 0, Bugs::of(&[bug])));
        assert_eq!(r.outcome, Outcome::Pass, "{bug}: {:#?}", r.trace.iter().rev().take(30).collect::<Vec<_>>());
    }
}

/// The configuration the first exploration used: small WAL files and segments, snapshots every 40
/// entries, a power loss every ~0.7 s, Pessimistic crash images.
fn exploring(seed: u64, bugs: Bugs) -> WorldConfig {
    with(config(seed, 700, bugs), |s| WorldSpec {
        wal_max_size_bytes: 8 << 10,
        segment_max_count: 32,
        snapshot_interval: 40,
        safety_ms: 5_000,
        liveness_ms: 70_000,
        liveness_workload_ms: 1_000,
        contact_bound_ms: 4_900,
        fault_every_ms: 700,
        restart_after_ms: 300,
        ..s
    })
}

fn violation_of(r: &sim::RunResult) -> Option<(String, String)> {
    match &r.outcome {
        Outcome::Pass => None,
        Outcome::Violation(v) => Some((v.checker.clone(), v.detail.clone())),
    }
}

#[test]
fn no_false_alarms_under_frequent_power_losses() {
    for seed in 0..16 {
        let r = run(exploring(seed, Bugs::none()));
        assert_eq!(violation_of(&r), None, "seed {seed}");
        assert!(r.coverage.get("power losses with unsynced state").copied().unwrap_or(0) > 0, "seed {seed}");
    }
}

#[test]
fn wal_recovery_rescan_is_found_from_power_losses_alone() {
    // PR 589 fix 2: boot after a power loss with several WAL files of a server whose process is not
    // running yet; the segment writer's step-wise delete interleaves with recovery of the next file.
    // Ra 3.0.1 also had the unsynced WAL unlink (`wal-unlink-no-dir-sync`), which leaves several WAL
    // files at boot far more often; with raft-core's fix for that the window is much smaller.
    let found: Vec<(u64, String)> = (0..30)
        .filter_map(|seed| {
            let r = run(exploring(seed, Bugs::of(&[Bug::WalRecoveryRescan, Bug::WalUnlinkNoDirSync])));
            violation_of(&r).map(|(checker, detail)| {
                assert_eq!(checker, "node-boots", "seed {seed}: {detail}");
                assert!(detail.contains("gap_detected"), "seed {seed}: {detail}");
                (seed, detail)
            })
        })
        .collect();
    assert!(!found.is_empty(), "wal-recovery-rescan never found in 30 seeds");
}

#[test]
fn indexes_badmatch_is_found_from_power_losses_alone() {
    let r = run(exploring(0, Bugs::of(&[Bug::IndexesBadmatch])));
    let (checker, detail) = violation_of(&r).expect("found");
    assert_eq!(checker, "node-boots");
    assert!(detail.contains("badmatch on indexes"), "{detail}");
}

#[test]
fn accept_no_parent_sync_is_what_the_harness_found_in_ra() {
    // Found with no switch on before raft-core fsynced `snapshots/` on the accept path; the switch
    // restores Ra 3.1.10's code and the failure. The same seeds pass without it.
    let found = (0..60).find(|&seed| {
        let r = run(exploring(seed, Bugs::of(&[Bug::AcceptNoParentSync])));
        violation_of(&r).is_some_and(|(checker, detail)| {
            checker == "node-boots" && detail.contains("gap_between_snapshot_and_log_range")
        })
    });
    let seed = found.expect("never found in 60 seeds");
    assert_eq!(violation_of(&run(exploring(seed, Bugs::none()))), None, "seed {seed}");
}

#[test]
fn every_fault_class_fires_and_raises_no_false_alarm() {
    let mut fired: std::collections::BTreeMap<&'static str, u64> = std::collections::BTreeMap::new();
    for seed in 0..16 {
        let cfg = with(exploring(seed, Bugs::none()), |s| WorldSpec {
            power_loss_weight: 1,
            vm_crash_weight: 1,
            wal_restart_weight: 1,
            partition_weight: 1,
            crash_point_weight: 1,
            recovery_crash_percent: 40,
            recovery_disk_error_percent: 30,
            one_way_partition_weight: 1,
            segment_writer_crash_weight: 1,
            message_loss_percent: 2,
            message_duplicate_percent: 2,
            message_reorder_percent: 2,
            partition_ms: 800,
            groups: 2,
            group_stagger_ms: 400,
            slow_disk_weight: 1,
            disk_error_weight: 10,
            wal_recovery_cut_percent: 30,
            membership_change_weight: 1,
            wal_max_size_bytes: 2 << 10,
            value_size_max_bytes: 8 << 10,
            fault_every_ms: 300,
            crash_model: scenarios::CrashModel::UnsyncedGarbage,
            ..s
        });
        let r = run(cfg.clone());
        assert_eq!(violation_of(&r), None, "seed {seed}");
        assert_eq!(run(cfg).trace_hash, r.trace_hash, "seed {seed}: not deterministic");
        for (k, n) in &r.coverage {
            *fired.entry(k).or_default() += n;
        }
    }
    // Every fault class the engine draws (`sim list faults`) took effect somewhere.
    // Bit rot has its own test: it needs a world without membership churn (`bit_rot_needs_three_nodes_and_no_churn`);
    // so do failed directory listings (`failed_directory_listings_stop_the_process_and_lose_nothing`), which
    // would take a share of this world's disk errors from the other classes.
    let unfired: Vec<&str> =
        sim::fault_classes::unfired(&fired).into_iter().filter(|c| !["bit-flip", "listing-eio"].contains(c)).collect();
    assert_eq!(unfired, Vec::<&str>::new(), "{fired:?}");
    // The suite's coverage marks: whatever it never made happen, it did not test. A failed snapshot
    // transfer needs the receiver to go down mid-transfer, which six seeds rarely see (swarm: 1 seed in
    // 200); its targeted scenario comes with the PR 589 issue.
    let missed: Vec<&str> =
        sim::missed_marks(&fired).into_iter().filter(|m| *m != "snapshot sender failures").collect();
    assert_eq!(missed, Vec::<&str>::new(), "{fired:?}");
}

#[test]
fn registration_not_synced_loses_acknowledged_writes() {
    // Found by swarm with no switch on (seed 94: one node, power losses and VM crashes every ~0.3 s):
    // Ra's `ra_directory:register_name` inserts into the names store without a sync, so a power cut
    // before its auto-save leaves the server unregistered; WAL recovery skips its records and the
    // segment writer drops them: acknowledged writes are gone. raft-core now syncs the registration;
    // `registration-not-synced` restores Ra's code.
    // (The world as swarm drew it before crash points existed; seed 4 since a new cluster's election is
    // triggered, as Ra's `start_cluster` does.) First seen as a linearizability violation;
    // `written-survives` now sees it at the reboot: the server starts as new, its log empty.
    let world = |bugs| swarm_as_first_drawn(4, bugs);
    let buggy = run(world(Bugs::of(&[Bug::RegistrationNotSynced])));
    assert_eq!(violation_of(&buggy).map(|v| v.0), Some("written-survives".to_owned()));
    assert_eq!(violation_of(&run(world(Bugs::none()))), None);
}

#[test]
fn swarm_seeds_pass_without_bugs_and_replay_identically() {
    for seed in 0..8 {
        let cfg = WorldConfig::new(scenarios::swarm(seed), Bugs::none());
        assert_eq!(sim::check_determinism(&cfg).map(|_| ()), Ok(()), "seed {seed}");
        assert_eq!(violation_of(&run(cfg)), None, "seed {seed}");
    }
}

#[test]
fn segment_index_unchecked_deletes_older_segments_after_a_torn_index_record() {
    // Found with no switch on: a power cut armed just before a segment's closing fsync tore an unsynced
    // index record so that it read as index 0; Ra's parse stretched the segment's range to 0..N and
    // init's segref compaction deleted every older segment (`missing_key` at boot). raft-core's parse
    // ends at the first record whose data does not continue the previous one. (Seed 231 of this world
    // since a new cluster's election is triggered; it was seed 53.)
    let world = |bugs| {
        with(config(231, 700, bugs), |s| WorldSpec {
            wal_max_size_bytes: 65536,
            segment_max_count: 128,
            snapshot_interval: 0,
            latency_min_us: 50,
            latency_max_us: 200,
            client_interval_ms: 1,
            keys: 16,
            clients: 0,
            client_timeout_ms: 1_000,
            safety_ms: 5_000,
            liveness_ms: 70_000,
            liveness_workload_ms: 1_000,
            contact_bound_ms: 4_900,
            fault_every_ms: 700,
            power_loss_weight: 0,
            vm_crash_weight: 1,
            wal_restart_weight: 1,
            partition_weight: 0,
            crash_point_weight: 1,
            restart_after_ms: 1_000,
            ..s
        })
    };
    let buggy = run(world(Bugs::of(&[Bug::SegmentIndexUnchecked])));
    let (checker, detail) = violation_of(&buggy).expect("found");
    assert_eq!(checker, "node-boots");
    assert!(detail.contains("missing_key"), "{detail}");
    assert_eq!(violation_of(&run(world(Bugs::none()))), None);
}

#[test]
fn stale_tail_resurrected_brings_back_a_suffix_older_than_the_snapshot() {
    // Found by swarm with no switch on (seed 108, before the consensus server followed Ra's replication:
    // a new leader's first, empty append now cuts most stale tails, so swarm seldom reaches it): a node
    // that led an older term alone holds a stale suffix, installs a newer snapshot and loses power;
    // recovery brought the suffix back above the snapshot, so its log ended in the older term again.
    // raft-core's recovery ends the log where a term goes down. The targeted scenario's world (its
    // seed file's):
    let world =
        |bugs| WorldConfig::new(scenarios::find("recovery/stale-leader-installs-snapshot").unwrap().world(91), bugs);
    let buggy = run(world(Bugs::of(&[Bug::StaleTailResurrected])));
    assert_eq!(violation_of(&buggy).map(|v| v.0), Some("written-survives".to_owned()));
    assert_eq!(violation_of(&run(world(Bugs::none()))), None);
}

/// Twelve groups on three nodes, group `g` created at `g × 100 ms` while the others write through the
/// shared WAL (2 KiB files, so it rolls over often); no faults at all.
fn new_groups_while_writing(seed: u64, bugs: Bugs) -> WorldConfig {
    with(config(seed, 0, bugs), |s| WorldSpec {
        groups: 12,
        group_stagger_ms: 100,
        wal_max_size_bytes: 2 << 10,
        client_interval_ms: 1,
        step_cost_us: 5,
        latency_min_us: 50,
        latency_max_us: 200,
        safety_ms: 2_000,
        ..s
    })
}

#[test]
fn register_after_init_loses_a_new_servers_first_entry_to_another_groups_roll_over() {
    // Ra PR 589 fix 5 (reverted in PR 614): a new server registered only after its log init. When its
    // first entry is the last one of a WAL file and another group's append rolls the WAL over before
    // the new server handles its `Written`, the segment writer drops the unregistered uid's mem table
    // and the new server crashes on its next access. A scheduling race, not a crash: no fault is on.
    // (Seed 6 since a new cluster's election is triggered; it was seed 68.)
    let buggy = run(new_groups_while_writing(6, Bugs::of(&[Bug::RegisterAfterInit])));
    // Groups were being created at run time when it struck (the run stops at the violation).
    assert!(buggy.coverage.get("groups created at run time").is_some_and(|n| *n > 0), "{:?}", buggy.coverage);
    let (checker, detail) = violation_of(&buggy).expect("found");
    assert_eq!(checker, "node-boots");
    assert!(detail.contains("was deleted"), "{detail}");
    let fixed = run(new_groups_while_writing(6, Bugs::none()));
    assert_eq!(violation_of(&fixed), None);
    assert!(fixed.coverage["client operations ok"] > 1_000);
}

#[test]
fn fs_lines_show_the_calls_before_a_power_cut_without_changing_the_run() {
    let cfg = with(exploring(5, Bugs::none()), |s| WorldSpec { crash_point_weight: 3, ..s });
    let plain = run(cfg.clone());
    let traced = run(WorldConfig { trace_fs: true, ..cfg });
    assert_eq!((plain.trace_hash, plain.events), (traced.trace_hash, traced.events), "FS lines are not the run");
    let fs_lines = traced.trace.iter().filter(|l| l.contains(" FS ")).count();
    assert!(fs_lines > 1_000, "{fs_lines} FS lines");
    assert_eq!(traced.trace.len() - fs_lines, plain.trace.len(), "the other lines are the same");
    // Every power cut at a durability point is preceded by the call it cut, failing.
    let cuts: Vec<usize> = (0..traced.trace.len()).filter(|&i| traced.trace[i].contains("POWER CUT at op")).collect();
    assert!(!cuts.is_empty());
    for i in cuts {
        let op = traced.trace[i].split("at op ").nth(1).and_then(|r| r.split(' ').next()).expect("op number");
        let cut_call = format!("#{op} ");
        let before = traced.trace[..i].iter().rev().find(|l| l.contains(" FS ")).expect("an FS line before");
        assert!(before.contains(&cut_call) && before.ends_with("-> PoweredOff"), "{before} / {}", traced.trace[i]);
    }
}

#[test]
fn a_fault_plan_applies_each_fault_where_and_when_it_says() {
    use scenarios::{Fault, PlannedFault};
    let plan = vec![
        PlannedFault {
            at_ms: 2_000,
            plus_ns: 0,
            node: 1,
            fault: Fault::PowerCutBefore {
                call: "unlink".into(),
                path_glob: "*.wal".into(),
                reboot_cut_after_calls: Some(5),
            },
        },
        PlannedFault { at_ms: 4_000, plus_ns: 0, node: 0, fault: Fault::PowerLoss { reboot_cut_after_calls: None } },
        PlannedFault {
            at_ms: 6_000,
            plus_ns: 0,
            node: 2,
            fault: Fault::Isolate { inbound: true, outbound: true, duration_ms: 500 },
        },
        PlannedFault { at_ms: 7_000, plus_ns: 0, node: 0, fault: Fault::WalRestart },
        PlannedFault { at_ms: 8_000, plus_ns: 0, node: 1, fault: Fault::SegmentWriterCrash },
        PlannedFault {
            at_ms: 9_000,
            plus_ns: 0,
            node: 2,
            fault: Fault::PowerCutAfterCalls { calls: 3, reboot_cut_after_calls: None },
        },
    ];
    let r = run(with(config(4, 0, Bugs::none()), |s| WorldSpec { fault_plan: plan, ..s }));
    assert_eq!(r.outcome, Outcome::Pass, "{:#?}", r.trace.iter().rev().take(30).collect::<Vec<_>>());
    let at = |needle: &str| r.trace.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?}"));
    let unlink_cut = at("(before unlink wal/");
    // Armed at 2 s, it fired at n2's next WAL unlink (after the armed line).
    assert!(r.trace[unlink_cut].contains(" n2 ") && at("power cut armed before the next unlink") < unlink_cut);
    // The reboot after it was cut 5 calls in: a second crash, during recovery.
    let reboot_cut = unlink_cut + 1 + r.trace[unlink_cut + 1..].iter().position(|l| l.contains("POWER CUT")).unwrap();
    assert!(
        r.trace[reboot_cut].contains(" n2 ") && r.trace[reboot_cut].contains("after op"),
        "{}",
        r.trace[reboot_cut]
    );
    assert!(r.trace[at("POWER LOSS")].contains(" n1 "));
    assert!(r.trace[at("ISOLATED")].contains(" n3 "));
    assert!(r.trace[at("WAL process restart")].contains(" n1 "));
    assert!(r.trace[at("segment writer crash")].contains(" n2 "));
    assert!(r.trace[at("power cut armed after call")].contains(" n3 "));
    assert_eq!(r.coverage["planned faults"], 6);
    assert_eq!(r.coverage["crashes during recovery"], 1);
    assert_eq!(r.coverage["crash points fired"], 3);
}

#[test]
fn a_fault_plan_naming_what_does_not_exist_is_refused() {
    use scenarios::{Fault, PlannedFault};
    let planned = |fault: Fault, node: usize| {
        with(config(0, 0, Bugs::none()), |s| WorldSpec {
            fault_plan: vec![PlannedFault { at_ms: 1, plus_ns: 0, node, fault }],
            ..s
        })
    };
    let cut =
        |call: &str| Fault::PowerCutBefore { call: call.into(), path_glob: "*".into(), reboot_cut_after_calls: None };
    assert_eq!(planned(cut("fsync_dir"), 2).validate(), Ok(()));
    assert!(planned(cut("fsync_dir"), 3).validate().unwrap_err().starts_with("fault_plan[0].node: 3"));
    assert!(planned(cut("fsyncdir"), 0).validate().unwrap_err().contains("unknown call \"fsyncdir\""));
    let zero = Fault::PowerCutAfterCalls { calls: 0, reboot_cut_after_calls: None };
    assert_eq!(planned(zero, 0).validate(), Err("fault_plan[0].calls: 0 is outside 1..=1099511627776".into()));
    assert!(
        with(config(0, 0, Bugs::none()), |s| WorldSpec { groups: 0, ..s })
            .validate()
            .unwrap_err()
            .starts_with("groups: 0 is outside 1..=128")
    );
}

/// Ra's `ra:start_cluster`: one started member of each new group is told `trigger_election` — new servers
/// arm no election timer of their own — and the start is tried again while no member knows a leader or
/// holds an entry after members × 5 s. Here every node loses power 1 ms in, just after the trigger and
/// before any election can finish: the nodes come back with empty logs, new servers waiting for a trigger,
/// and only the retry at 15 s can elect a leader — the run converges only because it does.
#[test]
fn a_new_cluster_elects_when_triggered_and_its_start_is_retried_until_it_forms() {
    let power_loss = |node| scenarios::PlannedFault {
        at_ms: 1,
        plus_ns: 0,
        node,
        fault: scenarios::Fault::PowerLoss { reboot_cut_after_calls: None },
    };
    let cfg = with(config(1, 0, Bugs::none()), |s| WorldSpec {
        fault_plan: (0..3).map(power_loss).collect(),
        safety_ms: 20_000,
        ..s
    });
    let r = run(cfg);
    assert_eq!(violation_of(&r), None);
    let triggers: Vec<&String> =
        r.trace.iter().filter(|l| l.contains("trigger_election (the cluster's start)")).collect();
    let retries = r.coverage.get("cluster starts retried (no leader after Ra's start timeout)").copied();
    assert_eq!((triggers.len(), retries), (2, Some(1)), "the start and one retry: {triggers:?}");
    let first_leader = r.trace.iter().find(|l| l.contains(" LEADER ")).expect("a leader");
    let at_ms: f64 = first_leader.split_whitespace().next().and_then(|t| t.parse().ok()).expect("a time");
    assert!((15_000.0..15_100.0).contains(&at_ms), "elected at the retry: {first_leader}");
    // Without the power losses the first trigger elects at once and nothing is retried.
    let quiet = run(config(1, 0, Bugs::none()));
    assert_eq!(violation_of(&quiet), None);
    assert_eq!(quiet.coverage.get("cluster starts retried (no leader after Ra's start timeout)"), None);
    let first_leader = quiet.trace.iter().position(|l| l.contains(" LEADER ")).expect("a leader");
    let trigger = quiet.trace.iter().position(|l| l.contains("trigger_election")).expect("a trigger");
    assert!(trigger < first_leader, "the triggered member leads first");
}

/// Ra's `ra_log_sup` restarts the segment writer and the stores before the WAL: for `log_restart_ms`
/// the WAL's name is unregistered and every append finds it down. Each node's segment writer crashes in
/// turn (at 2, 4 and 6 s) with clients writing: the leader's turns commands away and waits (Ra's
/// `await_condition`, back to leader), a follower's waits in silence, and once the WAL registers the
/// cluster goes on — no checker fires, and the run converges.
#[test]
fn appends_while_the_log_supervisor_restarts_find_the_wal_down_and_wait() {
    let crash = |node: usize| scenarios::PlannedFault {
        at_ms: 2_000 * (node as u64 + 1),
        plus_ns: 0,
        node,
        fault: scenarios::Fault::SegmentWriterCrash,
    };
    let world = |log_restart_ms| {
        with(config(3, 0, Bugs::none()), |s| WorldSpec {
            fault_plan: (0..3).map(crash).collect(),
            log_restart_ms,
            safety_ms: 8_000,
            ..s
        })
    };
    let r = run(world(1_000));
    assert_eq!(violation_of(&r), None);
    let count = |k: &str| r.coverage.get(k).copied().unwrap_or(0);
    assert_eq!(count("WAL down while the log supervisor restarts"), 3);
    assert!(count("await_condition: a leader's WAL down") >= 1, "{:?}", r.coverage);
    assert!(count("await_condition: a follower's WAL down") >= 1, "{:?}", r.coverage);
    // The same world with the WAL registering at once never waits for it.
    let at_once = run(world(0));
    assert_eq!(violation_of(&at_once), None);
    let waits = at_once.coverage.keys().filter(|k| k.contains("WAL down")).count();
    assert_eq!(waits, 0, "{:?}", at_once.coverage);
}

/// A running server crashes on `wal_down` only where Ra's does — a snapshot's pre-phase write
/// (`{ok, L} = ra_log:write_sparse(…)`) — and its supervisor restarts it: swarm seed 52 has such a crash
/// and passes. Anywhere else a step failing with `wal_down` is `storage-error` (Ra's server waits).
#[test]
fn a_server_crashing_on_wal_down_in_a_snapshot_pre_phase_is_restarted_not_reported() {
    let r = run(WorldConfig::new(scenarios::swarm(52), Bugs::none()));
    assert_eq!(violation_of(&r), None);
    assert!(r.coverage.get("servers crashed on wal_down").copied().unwrap_or(0) >= 1, "{:?}", r.coverage);
}

/// Swarm seed 40: a leave appended by a leader that then lost its leadership never committed, so the
/// member is still in the configuration at the heal; the operator asks again and it takes effect (the
/// member, leading by then, removes itself and stops) before the run converges.
#[test]
fn a_membership_change_lost_with_its_leader_is_asked_again_after_the_heal() {
    let r = run(WorldConfig::new(scenarios::swarm(40), Bugs::none()));
    assert_eq!(violation_of(&r), None);
    let asked_again = r.coverage.get("membership changes asked again after the heal").copied().unwrap_or(0);
    assert!(asked_again >= 1, "{:?}", r.coverage);
    let after_heal: Vec<&String> = r.trace.iter().skip_while(|l| !l.contains("HEAL")).collect();
    assert!(after_heal.iter().any(|l| l.contains("removed from its cluster")), "{after_heal:#?}");
}

/// Bit rot (`Fault::BitRot`): a bit of a durable segment entry's data flips on n1's medium, then n1
/// loses power. Its servers' recovery re-applies the log up to the applied index and reads the rotted
/// entry: the CRC fails, Ra's read exits, and the supervisor restarts the server until it gives up. The
/// other two converge without n1, and nothing is blamed on the software: the entry is never served.
#[test]
fn a_rotted_segment_entry_crashes_the_reader_and_is_never_served() {
    let plan = |at_ms: u64| {
        vec![
            scenarios::PlannedFault {
                at_ms,
                plus_ns: 0,
                node: 0,
                fault: scenarios::Fault::BitRot { pick: at_ms * 7919 },
            },
            scenarios::PlannedFault {
                at_ms: at_ms + 500,
                plus_ns: 0,
                node: 0,
                fault: scenarios::Fault::PowerLoss { reboot_cut_after_calls: None },
            },
        ]
    };
    let mut caught = 0;
    for (seed, at_ms) in [(0, 3_000), (1, 3_500), (2, 4_000), (3, 4_500)] {
        let cfg = with(config(seed, 0, Bugs::none()), |s| WorldSpec {
            snapshot_interval: 0,
            wal_max_size_bytes: 4 << 10,
            fault_plan: plan(at_ms),
            ..s
        });
        cfg.validate().expect("a valid world");
        let r = run(cfg);
        assert_eq!(violation_of(&r), None, "seed {seed}");
        assert_eq!(r.coverage.get("bit rots injected"), Some(&1), "seed {seed}: {:?}", r.coverage);
        caught += r.coverage.get("processes crashed on a rotted entry's checksum").copied().unwrap_or(0);
    }
    assert!(caught > 0, "no recovery read a rotted entry");
}

/// Bit rot is refused where the cluster could not survive a rotted member: fewer than three nodes, or
/// membership churn (which can leave a group needing it).
#[test]
fn bit_rot_needs_three_nodes_and_no_churn() {
    let rotting =
        |f: fn(WorldSpec) -> WorldSpec| with(config(0, 300, Bugs::none()), |s| f(WorldSpec { bit_rot_weight: 1, ..s }));
    assert_eq!(rotting(|s| s).validate(), Ok(()));
    let one = rotting(|s| WorldSpec { nodes: 1, ..s }).validate().unwrap_err();
    assert!(one.starts_with("bit_rot_weight: 1 needs 3 nodes or more"), "{one}");
    let churn = rotting(|s| WorldSpec { membership_change_weight: 1, ..s }).validate().unwrap_err();
    assert!(churn.contains("membership_change_weight 1"), "{churn}");
}

/// Every random disk error a directory listing (`listing_error_percent` 100): the WAL's directory, a
/// server's, its snapshots'. A process whose listing fails stops (Ra's `prim_file:list_dir` result
/// matches only `ok` and `enoent`) and its supervisor restarts it; nothing written is lost, and no
/// process takes the directory as empty or gone.
#[test]
fn failed_directory_listings_stop_the_process_and_lose_nothing() {
    let mut fired = 0;
    for seed in 0..8 {
        let cfg = with(exploring(seed, Bugs::none()), |s| WorldSpec {
            power_loss_weight: 1,
            disk_error_weight: 6,
            listing_error_percent: 100,
            groups: 2,
            wal_max_size_bytes: 2 << 10,
            snapshot_interval: 10,
            fault_every_ms: 300,
            ..s
        });
        cfg.validate().expect("a valid world");
        let r = run(cfg.clone());
        assert_eq!(violation_of(&r), None, "seed {seed}");
        assert_eq!(run(cfg).trace_hash, r.trace_hash, "seed {seed}: not deterministic");
        fired += r.coverage.get("disk errors fired: directory listing EIO").copied().unwrap_or(0);
    }
    assert!(fired > 0, "no listing failed");
}

/// Leaves refused one at a time during the faults (a leader takes one change at a time), each asked
/// while it kept a majority, were asked again together after the heal and removed every member:
/// `converges` then found no leader (swarm seed 246 with `listing_error_percent` 50, where the listing
/// errors only moved the draws). The operator now gives up a leave that would no longer keep a
/// majority, as the random draw never asks one.
#[test]
fn leaves_asked_again_after_the_heal_keep_a_majority() {
    let cfg = WorldConfig::new(WorldSpec { listing_error_percent: 50, ..scenarios::swarm(246) }, Bugs::none());
    let r = run(cfg);
    assert_eq!(violation_of(&r), None);
    assert!(
        r.coverage.get("membership changes given up (a majority would go)").copied().unwrap_or(0) > 0,
        "{:?}",
        r.coverage
    );
}
