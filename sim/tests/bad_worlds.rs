//! Hostile worlds are refused at once: every knob out of its range, by `--set` or in a seed file, and
//! every kind of bad planned fault, is exit 2 with one line naming the knob, its value and the range —
//! never a hang, a panic or a machine taken down.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sim")).args(args).output().expect("sim runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Exit 2, nothing on stdout, one line on stderr containing every one of `words`.
fn refused(args: &[&str], words: &[&str]) {
    let (code, out, err) = sim(args);
    assert_eq!(code, 2, "{args:?}: exit {code}\n{out}{err}");
    assert_eq!(out, "", "{args:?}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    for w in words {
        assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
    }
}

#[test]
fn every_knob_out_of_range_is_refused_by_set() {
    // (knob=value, words the message names). One per range the engine relies on, below and above.
    let cases: &[(&str, &[&str])] = &[
        ("nodes=0", &["nodes: 0 is outside 1..=15"]),
        ("nodes=1000000", &["nodes: 1000000 is outside 1..=15"]),
        ("groups=0", &["groups: 0"]),
        ("groups=129", &["groups: 129"]),
        ("keys=0", &["keys: 0 is outside 1..="]),
        ("wal_max_size_bytes=0", &["wal_max_size_bytes: 0 is outside 512..=256000000"]),
        ("wal_max_size_bytes=1000000000000", &["wal_max_size_bytes"]),
        ("segment_max_count=0", &["segment_max_count: 0"]),
        ("value_size_max_bytes=7", &["value_size_max_bytes: 7 is outside 8..="]),
        ("value_size_max_bytes=1000000000", &["value_size_max_bytes", "16777216"]),
        ("latency_max_us=100000000", &["latency_max_us"]),
        ("step_cost_us=0", &["step_cost_us: 0"]),
        ("heartbeat_ms=0", &["heartbeat_ms: 0"]),
        ("election_timeout_min_ms=0", &["election_timeout_min_ms: 0"]),
        ("client_interval_ms=0", &["client_interval_ms: 0"]),
        ("clients=100000", &["clients: 100000"]),
        ("client_timeout_ms=0", &["client_timeout_ms: 0"]),
        ("safety_ms=1000000000000", &["safety_ms"]),
        ("liveness_ms=100000000", &["liveness_ms"]),
        ("contact_bound_ms=0", &["contact_bound_ms: 0"]),
        ("fault_every_ms=100000000", &["fault_every_ms"]),
        ("power_loss_weight=1000000", &["power_loss_weight: 1000000 is outside 0..=1000"]),
        ("membership_change_weight=5000", &["membership_change_weight"]),
        ("message_loss_percent=101", &["message_loss_percent: 101 is outside 0..=100"]),
        ("recovery_crash_percent=200", &["recovery_crash_percent"]),
        ("wal_recovery_cut_percent=101", &["wal_recovery_cut_percent"]),
        ("recovery_disk_error_percent=101", &["recovery_disk_error_percent"]),
        ("partition_ms=100000000", &["partition_ms"]),
        ("restart_after_ms=100000000", &["restart_after_ms"]),
        ("snapshot_interval=100000000", &["snapshot_interval"]),
        ("group_stagger_ms=100000000", &["group_stagger_ms"]),
        ("nodes=15", &["members (nodes × groups)"]),
    ];
    for (set, words) in cases {
        // `nodes=15` alone is fine; with 24 groups (the crowded scenario's) it is too many members.
        let scenario = if set.starts_with("nodes=15") { "membership/new-server-during-wal-rollover" } else { "swarm" };
        let args = ["run", "--scenario", scenario, "--seed", "1", "--set", set];
        refused(&args, words);
        refused(&["explore", "--scenario", scenario, "--seeds", "0..2", "--set", set], words);
    }
    // Relations between knobs: the bounds of a range must be in order.
    refused(
        &["run", "--scenario", "swarm", "--seed", "1", "--set", "latency_min_us=5000", "--set", "latency_max_us=10"],
        &["latency_max_us: 10 is outside 5000..="],
    );
    // Values that are not numbers at all are refused by the same path.
    refused(&["run", "--scenario", "swarm", "--seed", "1", "--set", "nodes=many"], &["nodes"]);
}

/// A seed file of the repository with `edit` applied to its JSON, written as case `case`.
fn edited_seed_file(name: &str, case: usize, edit: impl FnOnce(&mut Value)) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("seeds").join(name)).expect("a seed file");
    let mut v: Value = serde_json::from_str(&text).expect("JSON");
    edit(&mut v);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad-worlds");
    std::fs::create_dir_all(&dir).expect("scratch");
    let path = dir.join(format!("case-{case}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&v).expect("JSON")).expect("write");
    path.to_str().expect("UTF-8").to_string()
}

#[test]
fn seed_files_with_bad_worlds_are_refused() {
    let base = "recovery_config-dir-entry-lost-0-config-no-dir-sync-shrunk.json";
    // (edit of the stored world, words the message names).
    type Edit = fn(&mut Value);
    let cases: &[(Edit, &[&str])] = &[
        (|v| v["world"]["nodes"] = 1_000_000.into(), &["world.nodes: 1000000 is outside 1..=15"]),
        (|v| v["world"]["keys"] = 0.into(), &["world.keys: 0"]),
        (|v| v["world"]["wal_max_size_bytes"] = 0.into(), &["world.wal_max_size_bytes: 0"]),
        (|v| v["world"]["fault_plan"][0]["node"] = 7.into(), &["fault_plan[0].node: 7"]),
        (
            |v| v["world"]["fault_plan"][0]["at_ms"] = 999_999_999.into(),
            &["fault_plan[0].at_ms: 999999999 is outside 0..="],
        ),
        (|v| v["world"]["fault_plan"][0]["plus_ns"] = 5_000_000.into(), &["fault_plan[0].plus_ns"]),
        (
            |v| {
                v["world"]["fault_plan"][0]["fault"] =
                    serde_json::json!({"PowerCutAfterCalls": {"calls": 0, "reboot_cut_after_calls": null}})
            },
            &["fault_plan[0].calls"],
        ),
        (
            |v| {
                v["world"]["fault_plan"][0]["fault"] =
                    serde_json::json!({"Isolate": {"inbound": false, "outbound": false, "duration_ms": 10}})
            },
            &["fault_plan[0]", "inbound or outbound"],
        ),
        (
            |v| {
                v["world"]["fault_plan"][0]["fault"] =
                    serde_json::json!({"SlowWal": {"sync_latency_us": 100_000_000u64, "duration_ms": 10}})
            },
            &["fault_plan[0].sync_latency_us"],
        ),
        (
            |v| v["world"]["fault_plan"][0]["fault"] = serde_json::json!({"PowerCutBefore": {"call": "frobnicate", "path_glob": "*", "reboot_cut_after_calls": null}}),
            &["fault_plan[0].call", "frobnicate"],
        ),
        (|v| v["world"]["colour"] = "blue".into(), &["colour"]),
        (|v| v["world"]["nodes"] = (-1).into(), &["nodes"]),
    ];
    for (case, (edit, words)) in cases.iter().enumerate() {
        let file = edited_seed_file(base, case, edit);
        refused(&["replay", &file], words);
        refused(&["replay", "--check", &file], words);
    }
}

#[test]
fn every_world_the_harness_draws_is_inside_the_bounds() {
    // Swarm's draws and every named scenario's: the bounds refuse only what no scenario makes.
    for seed in 0..20_000 {
        let cfg = sim::WorldConfig::new(scenarios::swarm(seed), raft_core::Bugs::none());
        assert_eq!(cfg.validate(), Ok(()), "swarm seed {seed}");
    }
    for scenario in scenarios::catalogue() {
        for seed in 0..200 {
            let cfg = sim::WorldConfig::new(scenario.world(seed), raft_core::Bugs::none());
            assert_eq!(cfg.validate(), Ok(()), "{} seed {seed}", scenario.name);
        }
    }
}

#[test]
fn what_grows_with_the_run_is_bounded_jointly() {
    // A simulated day of one operation a millisecond: every knob in range, 86 million operations kept.
    refused(
        &["run", "--scenario", "swarm", "--seed", "1", "--set", "safety_ms=86400000", "--set", "client_interval_ms=1"],
        &["client operations", "86401000 is outside 0..=10000000"],
    );
}

#[test]
fn list_knobs_shows_every_range_that_refuses() {
    // What `sim list knobs` says is accepted is what `--set` accepts: each knob's upper end is taken and
    // one above it refused (the lower end can depend on other knobs, so the upper is the one tested).
    let (code, out, err) = sim(&["list", "knobs"]);
    assert_eq!(code, 0, "{err}");
    let world = scenarios::swarm(0);
    for (knob, min, max) in sim::world::knob_ranges(&world) {
        let line = out.lines().find(|l| l.split_whitespace().next() == Some(knob));
        let line = line.unwrap_or_else(|| panic!("{knob} missing from `sim list knobs`:\n{out}"));
        assert!(line.contains(&format!("{min}..={max}")), "{line}");
        let above = format!("{knob}={}", max.saturating_add(1));
        if max < u64::MAX {
            let (code, _, err) = sim(&["run", "--scenario", "swarm", "--seed", "0", "--set", &above]);
            assert_eq!(code, 2, "{above}: {err}");
            assert!(err.contains(knob), "{above}: {err}");
        }
    }
}
