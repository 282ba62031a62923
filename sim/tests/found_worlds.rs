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

/// A bug found with no switch on, its story, and what its world's run must report with the switch.
struct Found {
    bug: Bug,
    /// How it was found and what the fix does (kept here, next to the world that shows it).
    story: &'static str,
    /// The checkers that may report it (the same world may reach it through several).
    checkers: &'static [&'static str],
    /// Text the violation's detail must contain ("" for any).
    detail: &'static str,
}

const FOUND: &[Found] = &[
    Found {
        bug: Bug::WalUnlinkNoDirSync,
        story: "swarm seed 330: Ra unlinks a flushed WAL file without a directory fsync; a later file's \
                unlink became durable while earlier and later files came back, their replay re-flushed \
                into the same segment, and \"later wins\" dropped the middle file's entries",
        checkers: &["node-boots", "written-survives", "storage-error"],
        detail: "",
    },
    Found {
        bug: Bug::IndexesMissingTrusted,
        story: "swarm seed 1538 (one node, a power cut armed before a snapshot's `indexes` write): the \
                snapshot survived without its `indexes` file, Ra's init read that as \"no live indexes\", \
                and a later get could not read its key's entry; raft-core rebuilds a missing file from \
                the machine",
        checkers: &["storage-error"],
        detail: "missing_key",
    },
    Found {
        bug: Bug::SnapshotOverWrittenLog,
        story: "swarm seed 317 (five nodes, 1% message loss): a lost append made the leader fall back to \
                a snapshot for a follower that meanwhile accepted the resent entries; the leader \
                committed with its acknowledgement and the stale snapshot then truncated them. raft-core \
                keeps a written log that holds the snapshot's last entry (Raft §7)",
        checkers: &["commit-durability", "leader-completeness", "log-matching"],
        detail: "",
    },
    Found {
        bug: Bug::WaitingLeaderTakesTerm,
        story: "`sim hunt` seed 0, run 13939 (a leader removing itself, its segment writer crashing, a 2 s \
                log supervisor restart): the leader whose WAL was down waited in `await_condition`, took \
                a higher term from a pre-vote, and led in it once the WAL was back, without the entries \
                another leader had committed meanwhile. raft-core's waiting leader steps down on a higher \
                term",
        checkers: &["election-safety", "leader-completeness"],
        detail: "",
    },
    Found {
        bug: Bug::ReceiveCutLosesWritten,
        story: "`sim hunt` seed 7, run 9309 (a full disk makes the WAL and then a server restart): a \
                follower restarted during a snapshot receive's pre phase, whose live entry rewrote one the \
                log held; the flush of the sparse entries shadowed the held ones after it and recovery \
                ended the log there. raft-core cuts the log after the highest live entry it holds",
        checkers: &["written-survives"],
        detail: "",
    },
    Found {
        bug: Bug::InstallWithoutLiveEntries,
        story: "`sim hunt` seed 11, run 22308 (a full disk, a Ra system restart): a follower restarted \
                between a snapshot's live phase and its last chunk; the new server began a receive at the \
                last chunk and installed a snapshot whose live entry its log had lost. raft-core refuses \
                the snapshot and the leader sends it again, live phase first",
        checkers: &["storage-error"],
        detail: "missing_key",
    },
    Found {
        bug: Bug::RemovedMemberDisrupts,
        story: "`sim hunt` seed 11, run 25997 (a plain swarm world, seed 11006591): a member removed \
                before it received its removal became a candidate and, its log too short to win, called \
                an election in a new term at every timeout; the followers took each term and the \
                leader stepped down at their replies. raft-core's followers ignore a server outside \
                their configuration, as Ra's leader does",
        checkers: &["converges"],
        detail: "leadership still changing",
    },
    Found {
        bug: Bug::RemovedCandidateCountsItself,
        story: "`sim hunt` seed 11, run 8212 (two followers silent after lost replies, a leader removing \
                itself, a power loss): the leader restarted with its removal uncommitted in its log, still \
                took itself for a voter, and counted its own vote with one member's in the configuration \
                that excludes it, while the other two members elected another leader in the same term. \
                raft-core counts only the configuration's voters",
        checkers: &["election-safety"],
        detail: "",
    },
    Found {
        bug: Bug::LeaderNoopDropped,
        story: "`sim hunt` seed 0, run 1355 (segment writer crashes with an 8 s log supervisor restart): a \
                leader elected while its WAL was down had its noop refused and never sent it again, so the \
                term committed nothing — not even its predecessor's entries — once the workload stopped. \
                raft-core appends the noop when the wait ends",
        checkers: &["converges"],
        detail: "applied different indexes",
    },
    Found {
        bug: Bug::ConfigKeptAfterTruncation,
        story: "`sim hunt` seed 11, run 42327 (disk errors, WAL restarts, power losses, two removals): a \
                leader's removal of n3, appended on it alone, was cut from its log by the next leader's \
                append from a lower index; it kept the configuration without n3, led the next term in \
                it, removed n1 and committed alone, and n1 and n3 elected a leader lacking that entry. \
                raft-core reverts a configuration whose entry a cut takes away",
        checkers: &["leader-completeness"],
        detail: "lacks committed entry",
    },
    Found {
        bug: Bug::WalRestartFlushesOverwritten,
        story: "`cargo xtask scale`, swarm seed 23291 (an isolated leader's stale tail, a segment writer \
                crash): the overwrite of that tail was lost with the restarted WAL's mailbox, and its \
                post-boot recovery flushed the overwritten entry from the older mem table; the log took \
                it as written and resent only what followed. raft-core skips a record the newest mem \
                table holds at another term and asks for the overwrite again",
        checkers: &["log-matching"],
        detail: "term 1 here, term 2",
    },
    Found {
        bug: Bug::WalGapRequestIgnored,
        story: "`sim hunt` seed 12, run 3670 (a full disk restarting n1's log tier again and again): n1g9 \
                installed snapshot 80 above the last record its WAL recovers for it (78), the WAL \
                restarted, and the tick's resend chained to 80 made the WAL ask for a resend from 79, \
                which the resend window refused; the WAL dropped every later write. \
                raft-core lets a resend that starts below the last one's start go ahead",
        checkers: &["converges"],
        detail: "applied different indexes",
    },
    Found {
        bug: Bug::WalRestartKeepsOutOfSeq,
        story: "`sim hunt` seed 12, run 14666 (a full disk restarting n1's log tier again and again): the \
                WAL asked n1g6's log for a resend and persisted the writer out of sequence; the resend \
                was lost when that WAL restarted, and the restarted WAL, still holding the writer out of \
                sequence, dropped its writes without asking again. raft-core's restarted WAL asks anew",
        checkers: &["converges"],
        detail: "applied different indexes",
    },
    Found {
        bug: Bug::SparseReadCrcUnchecked,
        story: "bit rot in `liveness/lagging-follower-snapshot-backoff` seed 13 (bit_rot_weight 3, 16 keys, a \
                snapshot every 10 entries): a bit of live entry 944's data flipped on the leader n2's \
                medium; n2's own reads failed the CRC and restarted it, but the snapshot it then sent n3 \
                carried the entry read without a check (Ra's `read_sparse`), n3 wrote it with a fresh \
                CRC and its machine could not read its key's value. raft-core checks the CRC on every \
                segment read",
        checkers: &["storage-error", "linearizability", "log-matching", "log-shape", "state-machine-safety"],
        detail: "",
    },
];

#[test]
fn each_bug_found_blind_fails_its_world_with_its_switch_and_passes_without() {
    for found in FOUND {
        let world = |bugs| WorldConfig::new(swarm_seed_file_world(found.bug), bugs);
        let buggy = run(world(Bugs::of(&[found.bug])));
        let (checker, detail) =
            violation_of(&buggy).unwrap_or_else(|| panic!("{}: not found ({})", found.bug, found.story));
        assert!(found.checkers.contains(&checker.as_str()), "{}: {checker}: {detail}", found.bug);
        assert!(detail.contains(found.detail), "{}: {detail}", found.bug);
        assert_eq!(violation_of(&run(world(Bugs::none()))), None, "{}: fails with the switch off", found.bug);
    }
}
