//! `sim hunt` through the binary: one seed decides every run whatever the number of jobs, the hunt
//! mutates what it keeps, and a finding is confirmed and written as a seed file that replays.
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
