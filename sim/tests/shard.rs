//! `sim explore --shard I/N` and `sim merge`, through the binary: the shards of a range, merged, are the
//! unsharded run of the range (same seeds, outcomes, trace hashes, exit code), and `merge` refuses files
//! that are not the shards of one exploration.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod binary;

use binary::sim;

use serde_json::Value;

fn lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// What a seed's run is, without what depends on the host or the shard (wall time, the shard field).
fn result(v: &Value) -> Value {
    let keys = ["seed", "outcome", "checker", "node", "sim_time_ns", "events", "trace_hash", "exit_code", "reproduce"];
    keys.iter().map(|k| ((*k).to_string(), v[*k].clone())).collect::<serde_json::Map<_, _>>().into()
}

#[test]
fn shards_merged_are_the_unsharded_run() {
    // (case, explore arguments without --seeds, seeds, how many, shards): a passing range, and one that
    // finds a bug (so that merge's exit code and failing seeds are compared too).
    let cases: [(&str, &[&str], &str, usize, u64); 2] = [
        ("swarm", &["--swarm"], "0..12", 12, 2),
        ("swarm-bug", &["--swarm", "--bug", "config-no-dir-sync"], "0..7", 7, 3),
    ];
    for (case, explore_args, seeds, count, shards) in cases {
        let dir = binary::scratch("shard", case);
        let explore = |extra: &[&str]| {
            let mut args = vec!["explore", "--seeds", seeds, "--jobs", "1", "--seed-dir", "found"];
            args.extend_from_slice(explore_args);
            args.extend_from_slice(extra);
            sim(&dir, &args)
        };
        let (whole_code, whole_out, _) = explore(&["--out", "whole.jsonl"]);
        let mut files = Vec::new();
        for i in 0..shards {
            let (shard, file) = (format!("{i}/{shards}"), format!("shard-{i}.jsonl"));
            let (code, _, err) = explore(&["--shard", &shard, "--out", &file]);
            assert!(code == 0 || code >= 10, "{case}: shard {shard} exited {code}: {err}");
            let text = std::fs::read_to_string(dir.join(&file)).expect("the shard's --out");
            for v in lines(&text) {
                let seed = v["seed"].as_u64().expect("a seed");
                assert_eq!(seed % shards, i, "{case}: seed {seed} in {file}");
                assert_eq!(v["shard"], Value::from(shard.clone()), "{case}: {file}");
            }
            files.push(file);
        }
        // Given in reverse: the order of the files does not matter.
        let mut args = vec!["merge", "--json"];
        args.extend(files.iter().rev().map(String::as_str));
        let (merged_code, merged_out, merged_report) = sim(&dir, &args);
        let whole = lines(&std::fs::read_to_string(dir.join("whole.jsonl")).expect("the unsharded --out"));
        let merged = lines(&merged_out);
        assert_eq!(whole.len(), count, "{case}");
        assert_eq!(
            merged.iter().map(result).collect::<Vec<_>>(),
            whole.iter().map(result).collect::<Vec<_>>(),
            "{case}"
        );
        assert_eq!(merged_code, whole_code, "{case}: merge exits as explore over the whole range\n{merged_report}");
        // The report: the failing seeds and the counts explore printed.
        let failing = |text: &str| text.lines().find(|l| l.starts_with("failing seeds:")).map(str::to_owned);
        assert_eq!(failing(&merged_report), failing(&whole_out), "{case}");
        let failed = whole.iter().filter(|v| v["exit_code"] != 0).count();
        let summary = format!("swarm: {count} of {count} seeds run, {failed} failed, merged from {shards} file(s)");
        assert!(merged_report.contains(&summary), "{case}: {summary:?} not in\n{merged_report}");
        if case == "swarm-bug" {
            assert!(failed > 0, "{case}: the switch should be found in {seeds}");
        }
    }
}

#[test]
fn merge_refuses_files_that_are_not_one_exploration() {
    let dir = binary::scratch("shard", "refuse");
    let (code, _, err) =
        sim(&dir, &["explore", "--swarm", "--seeds", "0..4", "--shard", "1/2", "--jobs", "1", "--out", "b.jsonl"]);
    assert_eq!(code, 0, "{err}");
    let b = std::fs::read_to_string(dir.join("b.jsonl")).expect("the --out file");
    let first_line = b.lines().next().expect("a line");
    // (file name, its content, the error naming it): each a variant of a real line.
    let cases = [
        (
            "bugs.jsonl",
            first_line.replace("\"bugs\":[]", "\"bugs\":[\"config-no-dir-sync\"]"),
            "bugs.jsonl:1: another exploration",
        ),
        (
            "overrides.jsonl",
            first_line.replace("\"overrides\":{}", "\"overrides\":{\"groups\":1}"),
            "overrides.jsonl:1: another exploration",
        ),
        (
            "range.jsonl",
            first_line.replace("\"seeds\":\"0..4\"", "\"seeds\":\"0..6\""),
            "range.jsonl:1: another exploration",
        ),
        ("again.jsonl", first_line.to_string(), "again.jsonl:1: seed 1 again (already in b.jsonl:1)"),
        (
            "outside.jsonl",
            first_line.replace("\"shard\":\"1/2\"", "\"shard\":\"0/2\""),
            "outside.jsonl:1: seed 1 is not in shard 0/2",
        ),
        ("old.jsonl", first_line.replace("\"shard\":\"1/2\",", ""), "old.jsonl:1: no \"shard\" field"),
        ("junk.jsonl", "not json".to_string(), "junk.jsonl:1: not JSON"),
    ];
    for (file, content, expected) in cases {
        std::fs::write(dir.join(file), format!("{content}\n")).expect("a test file");
        let (code, out, err) = sim(&dir, &["merge", "b.jsonl", file]);
        assert_eq!(code, 2, "{file}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{file}: one line: {err}");
        assert!(err.starts_with(&format!("sim: error: {expected}")), "{file}: {err}");
    }
    // A bad --shard is a one-line usage error.
    for shard in ["2/2", "0/0", "1", "a/2", "1/b", "1/2/3"] {
        let (code, _, err) = sim(&dir, &["explore", "--swarm", "--seeds", "0..4", "--shard", shard]);
        assert_eq!((code, err.lines().count()), (2, 1), "--shard {shard}: {err}");
        assert!(err.starts_with(&format!("sim: error: --shard {shard:?}")), "{err}");
    }
    // A shard not given is reported, not an error: explore reports a time budget it reached the same way.
    let (code, out, err) = sim(&dir, &["merge", "b.jsonl"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("swarm: 2 of 4 seeds run (no seed of shard 0/2), 0 failed"), "{out}");
}
