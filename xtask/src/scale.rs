//! The harness's scale figures, measured by long runs that do not belong in CI:
//!
//! - `cargo xtask fuzz [--cases N] [--world-cases N] [--seed S]`: `sim fuzz` over every target, longer
//!   than CI's fixed count; prints each target's counts and any failing case with the command that replays
//!   it. `cargo xtask bench` runs it too (`--fuzz-cases`) for its section of `BENCHMARKS.md`.
//! - `cargo xtask scale [--swarm-seeds N] [--determinism-seeds N]`: the no-false-alarm claim at scale —
//!   `sim explore --swarm` with no switch over seeds `0..N`, and `--determinism` (every seed run twice)
//!   over `0..M`, each sharded over GNU parallel (one shard per core, `sim merge` for the verdict); writes
//!   the commands, wall times and summaries to `bench/scale.json`, which `bench` renders.
//!
//! Owns: those two commands and the Markdown both sections become.

use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::workspace_root;

const FUZZ_USAGE: &str = "usage: cargo xtask fuzz [--cases N] [--world-cases N] [--seed S]";
const SCALE_USAGE: &str = "usage: cargo xtask scale [--swarm-seeds N] [--determinism-seeds N]";

/// Where `scale` keeps its last measurement (committed; `bench` renders it).
const SCALE_FILE: &str = "bench/scale.json";

/// `--flag N` pairs into numbers, each flag one of `known`.
fn numbers(args: &[String], known: &[&str], usage: &str) -> Result<Vec<(String, u64)>, String> {
    let mut out = Vec::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value: u64 = rest.next().and_then(|v| v.parse().ok()).ok_or(usage)?;
        if !known.contains(&flag.as_str()) {
            return Err(usage.into());
        }
        out.push((flag.clone(), value));
    }
    Ok(out)
}

/// Builds the release `sim`; its path.
pub(crate) fn release_sim() -> Result<String, String> {
    crate::run("cargo", &["build", "--release", "--locked", "-q", "-p", "sim"], &[])?;
    let sim = workspace_root().join("target/release/sim");
    sim.to_str().map(str::to_owned).ok_or_else(|| "target path is not UTF-8".into())
}

/// One target's result of `sim fuzz --json`, with its wall time.
struct FuzzResult {
    report: Value,
    wall_s: f64,
}

fn run_fuzz(sim: &str, target: &str, cases: u64, seed: u64) -> Result<FuzzResult, String> {
    let args = ["fuzz", "--json", "--target", target, "--cases", &cases.to_string(), "--seed", &seed.to_string()];
    println!("$ sim {}", args.join(" "));
    let start = Instant::now();
    let out = Command::new(sim).args(args).current_dir(workspace_root()).output().map_err(|e| format!("{sim}: {e}"))?;
    let wall_s = start.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let report = text
        .lines()
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("sim fuzz --target {target}: no report (exit {:?})", out.status.code()))?;
    Ok(FuzzResult { report, wall_s })
}

/// Runs every target: parsers with `cases`, worlds with `world_cases`.
fn fuzz_all(sim: &str, cases: u64, world_cases: u64, seed: u64) -> Result<Vec<FuzzResult>, String> {
    let mut results = Vec::new();
    for (target, n) in [("seed-file", cases), ("set", cases), ("merge-line", cases), ("world", world_cases)] {
        if n > 0 {
            results.push(run_fuzz(sim, target, n, seed)?);
        }
    }
    Ok(results)
}

fn failures(r: &FuzzResult) -> usize {
    r.report["failures"].as_array().map_or(0, Vec::len)
}

fn verdicts(r: &FuzzResult) -> String {
    let v = r.report["violations"].as_object().cloned().unwrap_or_default();
    if v.is_empty() {
        return "—".into();
    }
    v.iter().map(|(checker, n)| format!("{checker} {n}")).collect::<Vec<_>>().join(", ")
}

pub(crate) fn fuzz(args: &[String]) -> Result<(), String> {
    let mut cases = 1_000_000;
    let mut world_cases = 20_000;
    let mut seed = 1;
    for (flag, n) in numbers(args, &["--cases", "--world-cases", "--seed"], FUZZ_USAGE)? {
        match flag.as_str() {
            "--cases" => cases = n,
            "--world-cases" => world_cases = n,
            _ => seed = n,
        }
    }
    let sim = release_sim()?;
    let results = fuzz_all(&sim, cases, world_cases, seed)?;
    let mut failed = 0;
    for r in &results {
        println!("{}", r.report);
        failed += failures(r);
    }
    if failed > 0 {
        Err(format!("{failed} failing cases (each printed with the command that replays it)"))
    } else {
        Ok(())
    }
}

/// `BENCHMARKS.md`'s fuzz section.
pub(crate) fn fuzz_section(sim: &str, cases: u64) -> Result<String, String> {
    let world_cases = (cases / 20).max(1);
    let seed = 1;
    let results = fuzz_all(sim, cases, world_cases, seed)?;
    let mut text = format!(
        "## sim fuzz: hostile input and arbitrary worlds\n\n\
         `sim fuzz --seed {seed} --cases {cases}` for the three parsers a user feeds and `--cases {world_cases}` for \
         whole worlds (every knob drawn inside its range, half with planned faults, run for up to 2 simulated \
         seconds, no bug switch). A refusal must be one line, an accepted input must round-trip, a world must end \
         in a pass or a liveness verdict; a panic anywhere fails. A world's `converges` verdict judges its own \
         knobs (a group stagger or an election timeout beyond the run); a safety verdict fails the case unless \
         the world's crash model is `corrupting` (hardware loss of synced data, which no checker may blame on \
         the software; the verdicts in that column are all such worlds). CI runs 20,000 cases per parser and \
         400 worlds (`sim/tests/fuzz.rs`); `cargo xtask fuzz` runs longer.\n\n\
         | target | cases | accepted (worlds: passed) | refused in one line | verdicts | failures | wall s | cases/s |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for r in &results {
        let cases = r.report["cases"].as_u64().unwrap_or(0);
        text.push_str(&format!(
            "| {} | {cases} | {} | {} | {} | {} | {:.1} | {:.0} |\n",
            r.report["target"].as_str().unwrap_or("?"),
            r.report["accepted"],
            r.report["refused"],
            verdicts(r),
            failures(r),
            r.wall_s,
            cases as f64 / r.wall_s.max(1e-9)
        ));
    }
    Ok(text)
}

/// Runs `sim explore --swarm --seeds 0..N [extra]` in one shard per core under GNU parallel, then
/// `sim merge`; the record of it.
fn sharded_swarm(sim: &str, seeds: u64, extra: &[&str]) -> Result<Value, String> {
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Kept afterwards: a failure's seed file is in `found/` there.
    let dir = std::env::temp_dir().join(format!("xtask-scale-{}-{seeds}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let d = dir.display();
    let explore = format!(
        "{sim} explore --swarm --seeds 0..{seeds} {} --jobs 1 --shard {{}}/{shards} --out {d}/shard-{{}}.jsonl \
         --seed-dir {d}/found",
        extra.join(" ")
    );
    let shown = format!(
        "seq 0 {} | parallel -j{shards} sim explore --swarm --seeds 0..{seeds} {} --jobs 1 --shard {{}}/{shards} \
         --out shard-{{}}.jsonl; sim merge shard-*.jsonl",
        shards - 1,
        extra.join(" ")
    );
    println!("$ {shown}");
    let start = Instant::now();
    let script = format!("seq 0 {} | parallel -j{shards} --halt never '{explore}' > /dev/null", shards - 1);
    let status = Command::new("bash").args(["-c", &script]).status().map_err(|e| format!("bash: {e}"))?;
    let wall_s = start.elapsed().as_secs_f64();
    let outs: Vec<String> = (0..shards).map(|k| format!("{d}/shard-{k}.jsonl")).collect();
    let merged = Command::new(sim).arg("merge").args(&outs).output().map_err(|e| format!("sim merge: {e}"))?;
    let report = String::from_utf8_lossy(&merged.stdout).trim().to_owned();
    // merge's summary line (it names the exploration: `swarm: N of M seeds run, K failed, …`); with
    // failures, the lines after it list them.
    let summary = report.lines().find(|l| l.starts_with("swarm: ")).unwrap_or("").to_owned();
    let failing = report.lines().find_map(|l| l.strip_prefix("failing seeds: ")).unwrap_or("").to_owned();
    if summary.is_empty() {
        return Err(format!(
            "sim merge gave no summary (exit {:?}): {}",
            merged.status.code(),
            String::from_utf8_lossy(&merged.stderr).trim()
        ));
    }
    println!("{summary}\nseed files of any failure: {d}/found");
    Ok(json!({
        "command": shown,
        "seeds": seeds,
        "shards": shards,
        "parallel_exit": status.code(),
        "merge_exit": merged.status.code(),
        "wall_s": (wall_s * 10.0).round() / 10.0,
        "summary": summary,
        "failing_seeds": failing,
    }))
}

pub(crate) fn scale(args: &[String]) -> Result<(), String> {
    let mut swarm_seeds = 100_000;
    let mut determinism_seeds = 10_000;
    for (flag, n) in numbers(args, &["--swarm-seeds", "--determinism-seeds"], SCALE_USAGE)? {
        match flag.as_str() {
            "--swarm-seeds" => swarm_seeds = n,
            _ => determinism_seeds = n,
        }
    }
    if Command::new("parallel").arg("--version").output().is_err() {
        return Err("GNU parallel is not installed (Debian: apt-get install parallel)".into());
    }
    let sim = release_sim()?;
    let commit = crate::bench::command_line("git", &["rev-parse", "--short", "HEAD"]);
    let date = crate::bench::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let swarm = if swarm_seeds > 0 { sharded_swarm(&sim, swarm_seeds, &[])? } else { Value::Null };
    let determinism =
        if determinism_seeds > 0 { sharded_swarm(&sim, determinism_seeds, &["--determinism"])? } else { Value::Null };
    let record = json!({ "date": date, "commit": commit, "swarm": swarm, "determinism": determinism });
    let text = serde_json::to_string_pretty(&record).expect("JSON serialises") + "\n";
    std::fs::write(workspace_root().join(SCALE_FILE), text).map_err(|e| format!("write {SCALE_FILE}: {e}"))?;
    println!("{record}\nwrote {SCALE_FILE}");
    // The figures are written either way; a failing seed (or a shard that did not finish) fails the task.
    let failed = [&record["swarm"], &record["determinism"]]
        .into_iter()
        .any(|r| !r.is_null() && (r["merge_exit"] != json!(0) || r["parallel_exit"] != json!(0)));
    if failed { Err("a seed failed or a shard did not finish: see the summaries above".into()) } else { Ok(()) }
}

/// `BENCHMARKS.md`'s scale section, from the last `cargo xtask scale` (none if it never ran).
pub(crate) fn scale_section() -> Option<String> {
    let text = std::fs::read_to_string(workspace_root().join(SCALE_FILE)).ok()?;
    let record: Value = serde_json::from_str(&text).ok()?;
    let mut out = format!(
        "## sim: the no-false-alarm claim at scale\n\n\
         Measured by `cargo xtask scale` on {} (commit {}), this machine; kept in `{SCALE_FILE}` and rendered \
         here. Swarm with no bug switch must fail on no seed, and a seed run twice must give the same run.\n\n\
         | run | seeds | shards | wall | seeds/s | exit (parallel, merge) | `sim merge` says | failing seeds |\n\
         |---|---|---|---|---|---|---|---|\n",
        record["date"].as_str().unwrap_or("?"),
        record["commit"].as_str().unwrap_or("?")
    );
    for (name, run) in [("swarm, no switch", &record["swarm"]), ("swarm `--determinism`", &record["determinism"])] {
        if run.is_null() {
            continue;
        }
        let wall = run["wall_s"].as_f64().unwrap_or(0.0);
        let seeds = run["seeds"].as_u64().unwrap_or(0);
        // A record written before `summary` and `failing_seeds` were fields keeps merge's whole report.
        let report = run["report"].as_str().unwrap_or("");
        let said = run["summary"]
            .as_str()
            .or_else(|| report.lines().find(|l| l.starts_with("swarm: ")))
            .unwrap_or("")
            .replace('|', "\\|");
        let failing = run["failing_seeds"]
            .as_str()
            .or_else(|| report.lines().find_map(|l| l.strip_prefix("failing seeds: ")))
            .filter(|f| !f.is_empty())
            .unwrap_or("none");
        out.push_str(&format!(
            "| {name} | {seeds} | {} | {:.1} min | {:.1} | {}, {} | {said} | {failing} |\n",
            run["shards"],
            wall / 60.0,
            seeds as f64 / wall.max(1e-9),
            run["parallel_exit"],
            run["merge_exit"]
        ));
    }
    out.push_str("\nCommands (in a scratch directory):\n\n");
    for run in [&record["swarm"], &record["determinism"]] {
        if let Some(c) = run["command"].as_str() {
            out.push_str(&format!("- `{c}`\n"));
        }
    }
    Some(out)
}
