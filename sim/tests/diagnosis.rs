//! The liveness diagnosis: when `converges` or `lagging-follower-caught-up` fires, the violation says why
//! the group is stuck (a verdict naming the member that holds it back and what it waits for) and what each
//! member is doing. Stuck worlds from seed files and built here, each with the verdict it must get.

use sim::seedfile::SeedFile;
use sim::{Outcome, WorldConfig};

/// The diagnosis of a run: the verdict line and the member lines (empty when it passed).
fn diagnosis_of(config: WorldConfig) -> (Option<String>, Vec<String>) {
    match sim::run(config).outcome {
        Outcome::Pass => (None, Vec::new()),
        Outcome::Violation(v) => (Some(v.checker), v.diagnosis),
    }
}

fn from_file(text: &str) -> (Option<String>, Vec<String>) {
    diagnosis_of(SeedFile::parse(text).expect("a valid seed file").config().expect("a valid world"))
}

#[test]
fn a_stuck_group_gets_a_verdict_and_a_line_per_member() {
    // (seed file, checker, words the verdict holds, members). Leaders in snapshot backoff: PR 589 fix 4's
    // switch (the leader skips the peer until its retry timer) and Ra 3.1.10's kept status (no timer).
    let cases: [(&str, &str, &[&str], usize); 3] = [
        (
            include_str!("../../seeds/liveness_lagging-follower-snapshot-backoff-16-backoff-peer-skipped.json"),
            "lagging-follower-caught-up",
            &["why: n1 is in snapshot backoff until ", "the leader sends it nothing", "the leader n3 committed"],
            3,
        ),
        (
            include_str!("../../seeds/swarm-78-backoff-peer-skipped.json"),
            "lagging-follower-caught-up",
            &["why: n5 is in snapshot backoff until ", "the leader sends it nothing"],
            5,
        ),
        (
            include_str!("../../seeds/swarm-1250-backoff-status-kept-shrunk.json"),
            "converges",
            &["why: n3 is in snapshot backoff with no retry timer set; the leader sends it nothing"],
            3,
        ),
    ];
    for (text, checker, words, members) in cases {
        let parsed = SeedFile::parse(text).expect("a valid seed file");
        let file = format!("{} seed {} {:?}", parsed.scenario, parsed.seed, parsed.bugs);
        let (got, diagnosis) = from_file(text);
        assert_eq!(got.as_deref(), Some(checker), "{file}");
        let verdict = diagnosis.first().unwrap_or_else(|| panic!("{file}: no diagnosis"));
        for w in words {
            assert!(verdict.contains(w), "{file}: {verdict:?} lacks {w:?}");
        }
        assert_eq!(diagnosis.len(), 1 + members, "{file}: {diagnosis:#?}");
        let leader = diagnosis.iter().find(|l| l.contains(": leader, term")).expect("a leader line");
        assert!(leader.contains("snapshot backoff after"), "{leader}");
    }
}

#[test]
fn a_group_without_a_leader_says_so() {
    // The cluster's start triggers one member's election, whose pre-votes every message loss drops;
    // election timeouts far beyond the run: nobody campaigns again.
    let mut world = scenarios::base(1);
    world.election_timeout_min_ms = 600_000;
    world.election_timeout_max_ms = 600_000;
    world.message_loss_percent = 100;
    world.safety_ms = 500;
    world.liveness_ms = 500;
    let (checker, diagnosis) = diagnosis_of(WorldConfig::new(world, raft_core::Bugs::none()));
    assert_eq!(checker.as_deref(), Some("converges"));
    assert!(diagnosis[0].starts_with("why: no leader at the end: "), "{diagnosis:#?}");
    assert!(diagnosis[0].contains("pre-vote candidate in term 0"), "the triggered member: {diagnosis:#?}");
    assert!(diagnosis[1..].iter().all(|l| l.contains("no append from a leader since it started")), "{diagnosis:#?}");
}

#[test]
fn only_a_liveness_violation_is_diagnosed() {
    // A safety finding (a switch's seed file) and a pass carry none.
    let (checker, diagnosis) =
        from_file(include_str!("../../seeds/recovery_config-dir-entry-lost-0-config-no-dir-sync.json"));
    assert_eq!(checker.as_deref(), Some("written-survives"));
    assert!(diagnosis.is_empty(), "{diagnosis:#?}");
    let (checker, diagnosis) = diagnosis_of(WorldConfig::new(scenarios::base(2), raft_core::Bugs::none()));
    assert_eq!((checker, diagnosis.len()), (None, 0));
}
