//! `sim hunt` through the binary: one seed decides every run whatever the number of jobs, the hunt
//! mutates what it keeps, and a finding is confirmed and written as a seed file that replays; and its
//! mutations (called directly) put bit rot only into worlds that survive a rotted node.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod binary;

use binary::sim;

use serde_json::Value;

/// Each run's line without what depends on the host (wall times).
fn runs(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .filter(|v| v.get("run").is_some())
        .map(|mut v| {
            let o = v.as_object_mut().expect("an object");
            o.remove("wall_ms");
            o.remove("elapsed_ms");
            v
        })
        .collect()
}

/// Short worlds, so that a debug build runs a few batches in seconds (the liveness phase ends as soon as
/// the cluster converges).
const SHORT: [&str; 2] = ["--set", "safety_ms=400"];

#[test]
fn one_seed_decides_every_run_whatever_the_jobs() {
    let dir = binary::scratch("hunt", "determinism");
    let hunt = |seed: &str, jobs: &str, runs_: &str| {
        let mut args = vec!["hunt", "--swarm", "--runs", runs_, "--seed", seed, "--jobs", jobs, "--json"];
        args.extend(SHORT);
        let (code, out, err) = sim(&dir, &args);
        assert_eq!(code, 0, "{out}\n{err}");
        runs(&out)
    };
    let one_job = hunt("3", "1", "32");
    assert_eq!(one_job.len(), 32);
    assert_eq!(one_job, hunt("3", "2", "32"), "two jobs run the same hunt");
    // After the first batch of fresh worlds the hunt mutates what reached new coverage.
    let mutants = one_job.iter().filter(|v| v["origin"].as_str().is_some_and(|o| o.contains("mutated"))).count();
    assert!(mutants > 0, "{one_job:#?}");
    assert!(one_job.last().expect("runs")["corpus"].as_u64().expect("a count") > 0);
    assert_ne!(one_job[..16], hunt("4", "2", "16")[..], "another seed, another hunt");
}

#[test]
fn a_finding_is_confirmed_and_written_as_a_seed_file_that_replays() {
    let dir = binary::scratch("hunt", "finding");
    // Swarm's seed 0 loses the config's rename with this switch on: the hunt's first fresh world.
    let (code, out, err) =
        sim(&dir, &["hunt", "--swarm", "--bug", "config-no-dir-sync", "--runs", "16", "--seed-dir", "found"]);
    assert_eq!(code, 10, "{out}\n{err}");
    assert!(out.contains("run 0 (a fresh world): VIOLATION"), "{out}");
    assert!(out.contains("stopped at the first finding"), "{out}");
    let file = dir.join("found/hunt-0-0-config-no-dir-sync.json");
    let text = std::fs::read_to_string(&file).expect("the seed file");
    assert!(
        text.contains("found by `sim hunt --scenario swarm --seed 0 --bug config-no-dir-sync --runs 16`"),
        "{text}"
    );
    let (code, out, err) = sim(&dir, &["replay", "--check", file.to_str().expect("a path")]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("passes with the switches off"), "{out}");
}

#[test]
fn a_budget_of_nothing_is_a_usage_error() {
    let dir = binary::scratch("hunt", "usage");
    for args in [&["hunt", "--swarm", "--runs", "0"][..], &["hunt", "--swarm", "--time-budget", "0"][..]] {
        let (code, _, err) = sim(&dir, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// The hunt's mutations put bit rot into a plan only in worlds that survive a rotted
/// node — three nodes or more, no membership change — where `validate` accepts the world; a planned rot
/// anywhere else is refused by `validate` too, so no hunt can judge a world the checkers do not excuse.
#[test]
fn the_hunt_adds_bit_rot_only_where_a_rotted_node_is_survived() {
    use scenarios::{Fault, PlannedFault};
    use sim::hunt::mutate::mutate_once;
    // (nodes, membership_change_weight, whether rot may be added)
    let cases = [(1, 0, false), (2, 0, false), (3, 2, false), (3, 0, true), (5, 0, true)];
    let calls = vec![("write".to_owned(), "*.wal".to_owned())];
    let planned_rot =
        |spec: &scenarios::WorldSpec| spec.fault_plan.iter().any(|p| matches!(p.fault, Fault::BitRot { .. }));
    for (nodes, churn, may_rot) in cases {
        let mut base = scenarios::swarm(0);
        base.nodes = nodes;
        base.membership_change_weight = churn;
        base.bit_rot_weight = 0;
        base.fault_plan.clear();
        let what = format!("{nodes} nodes, membership_change_weight {churn}");
        let accepted =
            |spec: &scenarios::WorldSpec| sim::WorldConfig::new(spec.clone(), raft_core::Bugs::none()).validate();
        accepted(&base).unwrap_or_else(|e| panic!("{what}: the base world is invalid: {e}"));
        let mut rotted = 0;
        for trial in 0..300 {
            let mut spec = base.clone();
            let mut rng = scenarios::rng::stream(trial, 0x4855);
            for _ in 0..8 {
                mutate_once(&mut spec, &calls, &mut rng);
                assert!(may_rot || !planned_rot(&spec), "{what}: trial {trial} planned bit rot");
                if planned_rot(&spec) {
                    rotted += 1;
                    assert_eq!(accepted(&spec).is_ok(), may_rot, "{what}: trial {trial}: {:?}", accepted(&spec));
                }
            }
        }
        assert!(!may_rot || rotted > 0, "{what}: no mutation added bit rot in 300 trials");
        let mut planned = base.clone();
        planned.fault_plan.push(PlannedFault { at_ms: 10, plus_ns: 0, node: 0, fault: Fault::BitRot { pick: 7 } });
        assert_eq!(accepted(&planned).is_ok(), may_rot, "{what}: a planned rot: {:?}", accepted(&planned));
    }
}
