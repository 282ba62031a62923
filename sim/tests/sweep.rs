//! The sweep (`sim::sweep`): every crash point of a window of one run, every crash image there. Each case
//! sweeps the same window with no switch (nothing may fail) and with one switch (it must be found, the
//! failure's world must replay to the same checker, and pass with the switch off); the counts and the
//! first failure are kept as insta snapshots, so a change in what the sweep explores shows up as a diff.

use raft_core::Bugs;
use scenarios::{CutAt, Fault};
use sim::seedfile::bugs_named;
use sim::sweep::{SweepOptions, SweepReport, base_spec, sweep};
use sim::{Outcome, WorldConfig, run};
use vfs::CrashModel;

/// Sweeps node `node` of `scenario` (seed 0, `safety_ms` 1,500) between `from_ms` and `to_ms` with
/// `bug` on or off; checks and snapshots the report.
fn check(scenario: &str, node: usize, window_ms: (u64, u64), bug: Option<&str>) -> SweepReport {
    let mut spec = base_spec(&scenarios::find(scenario).expect("in the catalogue").world(0));
    spec.safety_ms = 1_500;
    let names: Vec<String> = bug.iter().map(|b| (*b).to_owned()).collect();
    let bugs: Bugs = bugs_named(&names).expect("known switches");
    let options = SweepOptions {
        nodes: vec![node],
        model: CrashModel::Pessimistic,
        horizon_ms: Some(3_000),
        shard: (0, 1),
        window_ms,
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
        let Fault::ExactPowerCut { at, image: Some(image), .. } = &f.spec.fault_plan[0].fault else {
            panic!("a sweep failure's plan starts with its exact cut: {:?}", f.spec.fault_plan)
        };
        assert_eq!(*at, CutAt::AfterCall(f.after_call));
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
    let name = format!("{}-n{node}-{}", scenario.replace('/', "__"), bug.unwrap_or("no-switch"));
    insta::assert_snapshot!(name, text);
    report
}

/// The window around node 0's fourth WAL append after the first election: the WAL's fdatasyncs, a torn
/// append whose first sector holds only the first byte of a record header, and the first group's
/// config, which under `config-no-dir-sync` was renamed into place with no directory fsync.
const WINDOW_MS: (u64, u64) = (195, 210);

#[test]
fn with_no_switch_no_crash_image_fails() {
    assert!(check("recovery/config-dir-entry-lost", 0, WINDOW_MS, None).failures.is_empty());
}

#[test]
fn a_torn_wal_header_bricks_the_node_under_wal_zero_checksum_unchecked() {
    let found = check("recovery/config-dir-entry-lost", 0, WINDOW_MS, Some("wal-zero-checksum-unchecked"));
    assert_eq!(found.failures.first().map(|f| f.failure.checker()), Some("node-boots"));
}

#[test]
fn a_lost_config_rename_loses_written_entries_under_config_no_dir_sync() {
    let found = check("recovery/config-dir-entry-lost", 0, WINDOW_MS, Some("config-no-dir-sync"));
    assert_eq!(found.failures.first().map(|f| f.failure.checker()), Some("written-survives"));
}
