//! The golden recovery traces: each recovery scenario of the catalogue, a few seeds each (and, where the
//! scenario targets a bug switch, one seed with the switch on), rendered and kept as insta snapshots. A
//! reviewer reads them to see the crash, what the disk kept, and each recovery step; a change to the
//! engine, the storage code or the renderer shows up here as a diff.

use raft_core::Bugs;
use sim::seedfile::bugs_named;
use sim::{Outcome, WorldConfig, run};

/// Runs `scenario` with `seed` and `bugs`; snapshots the outcome and the trace (without the lines of
/// routine local snapshots, which say nothing about recovery).
fn check(scenario: &str, seed: u64, bugs: &[&str]) -> Outcome {
    let spec = scenarios::find(scenario).expect("in the catalogue").world(seed);
    let names: Vec<String> = bugs.iter().map(|b| (*b).to_owned()).collect();
    let bugs: Bugs = bugs_named(&names).expect("known switches");
    let r = run(WorldConfig::new(spec, bugs));
    let outcome = match &r.outcome {
        Outcome::Pass => "PASS".to_owned(),
        Outcome::Violation(v) => format!("VIOLATION {} on {}: {}", v.checker, v.node, v.detail),
    };
    let lines: Vec<&str> =
        r.trace.iter().map(String::as_str).filter(|l| !(l.contains(" SNAPSHOT ") && l.contains(" written "))).collect();
    let name =
        format!("{}-{seed}{}", scenario.replace('/', "__"), names.iter().map(|b| format!("-{b}")).collect::<String>());
    insta::assert_snapshot!(name, format!("{outcome}\n\n{}\n\n{}", sim::trace::LEGEND, lines.join("\n")));
    r.outcome
}

fn passes(scenario: &str, seeds: &[u64]) {
    for &seed in seeds {
        assert_eq!(check(scenario, seed, &[]), Outcome::Pass, "{scenario} seed {seed}");
    }
}

fn finds(scenario: &str, seed: u64, bug: &str, checker: &str) {
    assert_eq!(check(scenario, seed, &[bug]).checker(), Some(checker), "{scenario} seed {seed} --bug {bug}");
}

#[test]
fn crash_between_segment_flush_and_wal_delete() {
    passes("recovery/crash-between-segment-flush-and-wal-delete", &[1, 2]);
    finds("recovery/crash-between-segment-flush-and-wal-delete", 14, "segref-tuple-delete", "node-boots");
}

#[test]
fn segment_writer_deletes_mid_recovery() {
    passes("recovery/segment-writer-deletes-mid-recovery", &[1, 2]);
    finds("recovery/segment-writer-deletes-mid-recovery", 4, "wal-recovery-rescan", "node-boots");
}

#[test]
fn corrupt_snapshot_indexes() {
    passes("recovery/corrupt-snapshot-indexes", &[1, 2]);
    finds("recovery/corrupt-snapshot-indexes", 0, "indexes-badmatch", "node-boots");
}

#[test]
fn crash_between_registration_and_config() {
    passes("recovery/crash-between-registration-and-config", &[1, 2]);
    finds(
        "recovery/crash-between-registration-and-config",
        12,
        "config-orphan-registration",
        "registered-implies-config",
    );
}

#[test]
fn config_dir_entry_lost() {
    passes("recovery/config-dir-entry-lost", &[1, 2]);
    finds("recovery/config-dir-entry-lost", 0, "config-no-dir-sync", "written-survives");
}

#[test]
fn torn_wal_tail() {
    passes("recovery/torn-wal-tail", &[1, 2, 3]);
}

#[test]
fn power_loss_during_snapshot_install() {
    passes("recovery/power-loss-during-snapshot-install", &[3, 5]);
    finds("recovery/power-loss-during-snapshot-install", 9, "accept-no-parent-sync", "node-boots");
}

#[test]
fn snapshot_ahead_of_slow_wal() {
    passes("recovery/snapshot-ahead-of-slow-wal", &[1]);
    finds("recovery/snapshot-ahead-of-slow-wal", 0, "snapshot-before-written", "storage-error");
}

#[test]
fn churn_under_crashes() {
    // Members leave and join amid crashes: the trace shows each change asked, appended or refused, and a
    // leader that removed itself stopping.
    passes("membership/churn-under-crashes", &[0, 1]);
}
