//! Bugs found blind, replayed from the worlds of their swarm seed files in `seeds/`: each is found with
//! its switch and not without it. The files are re-made (`scripts/refind-seeds.sh`) when a change to
//! the engine moves a finding to another seed, so these tests follow them instead of pinning a world.
#![allow(clippy::disallowed_methods)]

use raft_core::{Bug, Bugs};
use scenarios::WorldSpec;
use sim::WorldConfig;
use sim::world::run;

/// The world of the swarm seed file in `seeds/` that finds `bug` alone (`swarm-<seed>-<bug>.json`, not
/// shrunk) — or, when swarm no longer finds it, of a hunt's file (`hunt-<seed>-<run>-<bug>.json`) or of
/// its targeted scenario's file
/// (`<scenario>-<seed>-<bug>.json`): these files are re-made when the engine's behaviour moves a finding
/// to another seed, and `cargo xtask regress` checks each one.
fn swarm_seed_file_world(bug: Bug) -> WorldSpec {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let suffix = format!("-{}.json", bug.name());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("seeds/")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("sweep_") && n.ends_with(&suffix))
        .collect();
    names.sort_by_key(|n| (!n.starts_with("swarm-"), n.clone()));
    names
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).expect("readable");
            sim::seedfile::SeedFile::parse(&text).expect("a seed file")
        })
        .find(|file| file.bugs == [bug.name()])
        .unwrap_or_else(|| panic!("no seed file for {bug} alone in seeds/"))
        .world
}

fn violation_of(r: &sim::RunResult) -> Option<(String, String)> {
    match &r.outcome {
        sim::Outcome::Pass => None,
        sim::Outcome::Violation(v) => Some((v.checker.clone(), v.detail.clone())),
    }
}

#[test]
fn wal_unlink_no_dir_sync_loses_entries_through_out_of_order_unlinks() {
    // First found by swarm with no switch on (seed 330): Ra unlinks a flushed WAL file without a
    // directory fsync; a later file's unlink became durable while earlier and later files came back,
    // their replay re-flushed into the same segment, and "later wins" dropped the middle file's entries.
    let world = |bugs| WorldConfig::new(swarm_seed_file_world(Bug::WalUnlinkNoDirSync), bugs);
    let buggy = run(world(Bugs::of(&[Bug::WalUnlinkNoDirSync])));
    let (checker, _) = violation_of(&buggy).expect("found");
    assert!(["node-boots", "written-survives", "storage-error"].contains(&checker.as_str()), "{checker}");
    assert_eq!(violation_of(&run(world(Bugs::none()))), None);
}

#[test]
fn indexes_missing_trusted_loses_live_entries() {
    // First found by swarm with no switch on (seed 1538: one node, a power cut armed before a snapshot's
    // `indexes` write): the snapshot survived without its `indexes` file, Ra's init read that as "no
    // live indexes", and a later get could not read its key's entry (`missing_key`). Fix 1 covers only
    // an unreadable file; raft-core also rebuilds a missing one from the machine.
    let world = |bugs| WorldConfig::new(swarm_seed_file_world(Bug::IndexesMissingTrusted), bugs);
    let buggy = run(world(Bugs::of(&[Bug::IndexesMissingTrusted])));
    let (checker, detail) = violation_of(&buggy).expect("found");
    assert_eq!(checker, "storage-error");
    assert!(detail.contains("missing_key"), "{detail}");
    assert_eq!(violation_of(&run(world(Bugs::none()))), None);
}

#[test]
fn snapshot_over_written_log_loses_a_committed_entry() {
    // First found by swarm with no switch on (seed 317: five nodes, 1% message loss — a lost append made
    // the leader fall back to a snapshot for a follower that meanwhile accepted the resent entries; the
    // leader committed with its acknowledgement and the stale snapshot then truncated them). raft-core
    // keeps a written log that holds the snapshot's last entry (Raft §7); `snapshot-over-written-log`
    // restores Ra's install.
    let world = |bugs| WorldConfig::new(swarm_seed_file_world(Bug::SnapshotOverWrittenLog), bugs);
    let buggy = run(world(Bugs::of(&[Bug::SnapshotOverWrittenLog])));
    let checker = violation_of(&buggy).map(|v| v.0);
    assert!(
        matches!(checker.as_deref(), Some("commit-durability" | "leader-completeness" | "log-matching")),
        "{checker:?}"
    );
    assert_eq!(violation_of(&run(world(Bugs::none()))), None);
}

#[test]
fn waiting_leader_takes_term_leads_in_a_term_it_never_won() {
    // First found by `sim hunt` with no switch on (hunt seed 0, run 1713: six groups, segment writer
    // crashes with an 8 s log supervisor restart, a member leaving): a leader whose WAL was down waited in
    // `await_condition`, took a higher term from a pre-vote, and led in it once the WAL was back — while
    // another member had won that term. raft-core's waiting leader steps down on a higher term;
    // `waiting-leader-takes-term` restores Ra's wait.
    let world = |bugs| WorldConfig::new(swarm_seed_file_world(Bug::WaitingLeaderTakesTerm), bugs);
    let buggy = run(world(Bugs::of(&[Bug::WaitingLeaderTakesTerm])));
    let (checker, detail) = violation_of(&buggy).expect("found");
    assert_eq!(checker, "election-safety", "{detail}");
    assert_eq!(violation_of(&run(world(Bugs::none()))), None);
}

#[test]
fn receive_cut_loses_written_entries_of_a_follower_restarted_mid_receive() {
    // First found by `sim hunt` with no switch on (hunt seed 7, run 9309: a full disk makes the WAL and
    // then a server restart): a follower restarted during a snapshot receive's pre phase, whose live entry
    // rewrote one the log held; the flush of the sparse entries shadowed the held ones after it and
    // recovery ended the log there. raft-core cuts the log after the highest live entry it holds;
    // `receive-cut-loses-written` restores Ra's cut to the last applied index.
    let world = |bugs| WorldConfig::new(swarm_seed_file_world(Bug::ReceiveCutLosesWritten), bugs);
    let buggy = run(world(Bugs::of(&[Bug::ReceiveCutLosesWritten])));
    let (checker, detail) = violation_of(&buggy).expect("found");
    assert_eq!(checker, "written-survives", "{detail}");
    assert_eq!(violation_of(&run(world(Bugs::none()))), None);
}
