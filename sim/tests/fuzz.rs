//! `sim fuzz` in CI: a fixed number of cases per target (one seed decides them all), each of which must
//! end as the command promises — refused in one line, accepted and round-tripping, or (a world) a pass or
//! a checker's verdict; never a panic. `cargo xtask fuzz` runs the same targets for longer.

use std::process::Command;

use serde_json::Value;

/// Runs `sim fuzz --json ARGS`: the exit code and one JSON object per target.
fn fuzz(args: &[&str]) -> (i32, Vec<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_sim")).arg("fuzz").arg("--json").args(args).output().expect("sim runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    (out.status.code().unwrap_or(-1), lines)
}

#[test]
fn every_target_survives_its_cases() {
    // (target, cases, the least each outcome must be seen: a fuzzer that only ever builds inputs the
    // parser refuses, or only ones it takes, tries half of what it should).
    let targets: [(&str, u64, u64); 4] =
        [("seed-file", 20_000, 1_000), ("set", 20_000, 300), ("merge-line", 20_000, 1_000), ("world", 400, 20)];
    for (target, cases, least) in targets {
        let (code, report) = fuzz(&["--target", target, "--cases", &cases.to_string(), "--seed", "7"]);
        let r = &report[0];
        assert_eq!(code, 0, "{target}: {r}");
        assert_eq!(r["failures"].as_array().map(Vec::len), Some(0), "{target}: {r}");
        assert_eq!(r["cases"], cases, "{target}");
        let (accepted, refused) = (r["accepted"].as_u64().unwrap(), r["refused"].as_u64().unwrap());
        let verdicts: u64 = r["violations"].as_object().unwrap().values().filter_map(Value::as_u64).sum();
        assert_eq!(accepted + refused + verdicts, cases, "{target}: {r}");
        assert!(accepted >= least && refused >= least, "{target}: too few of one kind: {r}");
    }
}

/// `sim fuzz ARGS` (text): stdout.
fn fuzz_text(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sim")).arg("fuzz").args(args).output().expect("sim runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_case_replays_alone_and_the_seed_decides_it() {
    // `--case K` runs case K alone and prints its input first; the same seed and case give the same
    // input, another seed another one.
    let input = |seed: &str, case: &str| {
        let text = fuzz_text(&["--target", "world", "--seed", seed, "--case", case]);
        assert!(text.contains("world: 1 cases"), "{text}");
        text.lines().next().unwrap_or_default().to_owned()
    };
    let first = input("3", "12");
    assert!(first.starts_with("world case 12: input: {\"seed\":"), "{first}");
    assert_eq!(first, input("3", "12"));
    assert_ne!(first, input("4", "12"));
    assert_ne!(
        first.split_once("input:").map(|p| p.1),
        input("3", "13").split_once("input:").map(|p| p.1.to_owned()).as_deref()
    );
    // The whole run is the same run twice.
    assert_eq!(
        fuzz(&["--target", "set", "--cases", "300", "--seed", "3"]),
        fuzz(&["--target", "set", "--cases", "300", "--seed", "3"])
    );
}
