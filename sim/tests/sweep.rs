//! The sweep (`sim::sweep`): every crash point of a window of one run, every crash image there. Each case
//! sweeps the same window with no switch (nothing may fail) and with one switch (it must be found, the
//! failure's world must replay to the same checker, and pass with the switch off); the counts and the
//! first failure are kept as insta snapshots, so a change in what the sweep explores shows up as a diff.

use raft_core::Bugs;
use scenarios::{CutAt, Fault, WorldSpec};
use sim::seedfile::bugs_named;
use sim::sweep::{SweepOptions, SweepReport, base_spec, sweep};
use sim::{Outcome, WorldConfig, run};
use vfs::CrashModel;

/// One swept window: a scenario's world, one node, a window of its base run.
struct Case {
    scenario: &'static str,
    /// The seed of the scenario's world.
    seed: u64,
    /// The safety phase: short, so that a window's suffix runs stay cheap.
    safety_ms: u64,
    /// `base_spec`'s `keep_planned_crashes`: the sweep cuts on top of the scenario's own cuts.
    keep_planned_crashes: bool,
    node: usize,
    window_ms: (u64, u64),
    horizon_ms: u64,
}

/// Sweeps `case` with `bug` on or off; checks and snapshots the report.
fn check(case: &Case, bug: Option<&str>) -> SweepReport {
    let world = scenarios::find(case.scenario).expect("in the catalogue").world(case.seed);
    let spec = WorldSpec { safety_ms: case.safety_ms, ..base_spec(&world, case.keep_planned_crashes) };
    let names: Vec<String> = bug.iter().map(|b| (*b).to_owned()).collect();
    let bugs: Bugs = bugs_named(&names).expect("known switches");
    let options = SweepOptions {
        nodes: vec![case.node],
        model: CrashModel::Pessimistic,
        horizon_ms: Some(case.horizon_ms),
        shard: (0, 1),
        window_ms: case.window_ms,
        random_images: 0,
    };
    let report = sweep(&WorldConfig::new(spec, bugs.clone()), &options, |_| {});
    assert_eq!(report.base, Outcome::Pass, "the base run (no cut) passes");
    assert!(report.crash_points > 0 && report.images_run > 0, "the window holds crash points: {report:?}");
    assert!(report.images_run <= report.images_enumerated);
    let mut text = format!(
        "{} crash points, {} images enumerated, {} distinct images run, {} failures\n",
        report.crash_points,
        report.images_enumerated,
        report.images_run,
        report.failures.len()
    );
    if let Some(f) = report.failures.first() {
        let image = f
            .spec
            .fault_plan
            .iter()
            .find_map(|p| match &p.fault {
                Fault::ExactPowerCut { at: CutAt::AfterCall(seq), image: Some(image), .. }
                    if *seq == f.after_call && p.node == f.node =>
                {
                    Some(image)
                }
                _ => None,
            })
            .expect("a sweep failure's plan holds its exact cut");
        assert_eq!(image.label, f.image_label);
        text.push_str(&format!(
            "first: node {} after call {} ({}), image {} keeping {} pieces: {}\n",
            f.node,
            f.after_call,
            f.call,
            image.label,
            image.kept_count(),
            f.failure.checker()
        ));
        // The failure's world is a plain seed-file world: it replays to the same checker, and with the
        // switch off it passes — the finding is the switch's.
        let replayed = run(WorldConfig::new(f.spec.clone(), bugs));
        assert_eq!(replayed.outcome.checker(), Some(f.failure.checker()), "the failure replays");
        assert_eq!(run(WorldConfig::new(f.spec.clone(), Bugs::none())).outcome, Outcome::Pass);
    }
    let name = format!("{}-n{}-{}", case.scenario.replace('/', "__"), case.node, bug.unwrap_or("no-switch"));
    insta::assert_snapshot!(name, text);
    report
}

/// Sweeps `case` with no switch (nothing may fail) and with `bug` (the first failure must be `checker`'s).
fn finds(case: &Case, bug: &str, checker: &str) {
    assert!(check(case, None).failures.is_empty(), "with no switch no crash image fails");
    let found = check(case, Some(bug));
    assert_eq!(found.failures.first().map(|f| f.failure.checker()), Some(checker), "{bug} is found");
}

/// A window of node 0's WAL appends 210 ms in: the WAL's fdatasyncs, a torn append (call 145) whose first
/// sector holds only the first byte of a record header, and the first group's config, which under
/// `config-no-dir-sync` was renamed into place with no directory fsync.
const CONFIG_DIR_ENTRY_LOST: Case = Case {
    scenario: "recovery/config-dir-entry-lost",
    seed: 0,
    safety_ms: 1_500,
    keep_planned_crashes: false,
    node: 0,
    window_ms: (210, 220),
    horizon_ms: 3_000,
};

#[test]
fn a_torn_wal_header_bricks_the_node_under_wal_zero_checksum_unchecked() {
    finds(&CONFIG_DIR_ENTRY_LOST, "wal-zero-checksum-unchecked", "node-boots");
}

#[test]
fn a_lost_config_rename_loses_written_entries_under_config_no_dir_sync() {
    // The no-switch sweep of this window is `a_torn_wal_header…`'s.
    let found = check(&CONFIG_DIR_ENTRY_LOST, Some("config-no-dir-sync"));
    assert_eq!(found.failures.first().map(|f| f.failure.checker()), Some("written-survives"));
}

/// A second cut, on top of the scenario's own cut before a WAL unlink: the reboot it causes finds
/// several WAL files, flushes them and unlinks them one after another — under `wal-unlink-no-dir-sync`
/// with no directory fsync, so the second cut (call 818, 718.6 ms) can keep a later unlink and lose an
/// earlier one.
#[test]
fn a_second_cut_keeps_a_later_wal_unlink_under_wal_unlink_no_dir_sync() {
    let case = Case {
        scenario: "recovery/segment-writer-deletes-mid-recovery",
        seed: 0,
        safety_ms: 1_500,
        keep_planned_crashes: true,
        node: 0,
        window_ms: (710, 725),
        horizon_ms: 3_000,
    };
    finds(&case, "wal-unlink-no-dir-sync", "written-survives");
}

/// A segment's index write that starts with the record straddling the first sector boundary (record
/// 15, bytes 488..520), torn so that only its later sectors reached the disk: the record reads as
/// index 0 with a nonzero length, which Ra's parse (`segment-index-unchecked`) accepts. Node 0 of seed
/// 3's world, call 993 at 805 ms (seed 0's world, pinned before a new cluster's election was triggered,
/// no longer tears such a record with one cut; seeds 1 and 2 neither).
#[test]
fn an_index_write_torn_at_its_start_reads_as_index_0_under_segment_index_unchecked() {
    let case = Case {
        scenario: "recovery/torn-segment-index",
        seed: 3,
        safety_ms: 1_500,
        keep_planned_crashes: false,
        node: 0,
        window_ms: (800, 810),
        horizon_ms: 3_000,
    };
    finds(&case, "segment-index-unchecked", "node-boots");
}

/// A follower cut while the leader pipelines at 1 ms with overtaking links: no crash image of the window
/// fails with no switch. Before the consensus server followed Ra's replication, a cut here under
/// `snapshot-over-written-log` made the follower take a snapshot the leader sent while it was already
/// accepting the resent entries past it; with Ra's await_condition and pipelining the window is gone
/// (no single cut of node 1 finds it in seed 0's world, nor in seed 104's with its own cuts kept), and the
/// switch is found by the scenario's seed files (`recovery/follower-crash-under-overtaking` seed 104)
/// until a sweep world is pinned again.
#[test]
fn a_follower_cut_under_overtaking_raises_no_false_alarm() {
    let case = Case {
        scenario: "recovery/follower-crash-under-overtaking",
        seed: 0,
        safety_ms: 1_500,
        keep_planned_crashes: false,
        node: 1,
        window_ms: (230, 235),
        horizon_ms: 1_000,
    };
    assert!(check(&case, None).failures.is_empty(), "with no switch no crash image fails");
}

/// A cut of node 0 at 740 ms of seed 1's world, on top of the scenario's isolations and cuts: the node
/// holds a stale suffix of term 3 under a snapshot it installed, and the reboot brings the suffix back
/// under `stale-tail-resurrected` (`seeds/sweep_recovery_stale-leader-installs-snapshot-1-n0-c212-…`; seed
/// 0's world, pinned before a new cluster's election was triggered, no longer reaches it with one cut).
#[test]
fn a_stale_suffix_comes_back_after_a_snapshot_install_under_stale_tail_resurrected() {
    let case = Case {
        scenario: "recovery/stale-leader-installs-snapshot",
        seed: 1,
        safety_ms: 8_000,
        keep_planned_crashes: true,
        node: 0,
        window_ms: (735, 745),
        horizon_ms: 3_000,
    };
    finds(&case, "stale-tail-resurrected", "written-survives");
}

/// Node 0's disk is slow from 400 ms (each WAL sync 5 ms): it applies an entry the others committed
/// before its WAL wrote it, and the snapshot worker syncs a snapshot naming it live while the WAL still
/// waits. A cut there loses the entry the snapshot needs under `snapshot-before-written`.
#[test]
fn a_snapshot_synced_ahead_of_a_slow_wal_names_a_lost_entry_under_snapshot_before_written() {
    let case = Case {
        scenario: "recovery/snapshot-ahead-of-slow-wal",
        seed: 0,
        safety_ms: 1_500,
        keep_planned_crashes: false,
        node: 0,
        window_ms: (550, 560),
        horizon_ms: 3_000,
    };
    finds(&case, "snapshot-before-written", "storage-error");
}
