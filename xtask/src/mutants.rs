//! `cargo xtask mutants`: mutation testing of `raft-core`'s storage and consensus with cargo-mutants,
//! judged by one of two oracles — the simulator alone (`sim/tests/mutation_oracle.rs`: swarm seeds, every
//! named scenario's first seeds, every seed file's world with its switches off) or raft-core's own unit
//! tests alone — in shards whose outcomes are kept under `mutants/results/ORACLE/shard-K-of-N/`, so that
//! each run adds shards and `--summary` recomputes the scores, per module, from every shard kept.
//!
//! The mutated files: `raft-core/src/storage/` and `raft-core/src/consensus/`, without `bugs.rs` (the
//! switches themselves) and `consensus/mem_log.rs` (an in-memory `RaftLog` for unit tests: the engine
//! never runs it, so its mutants would only measure the unit tests against themselves).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use crate::workspace_root;

const USAGE: &str = "usage: cargo xtask mutants [--oracle sim|unit] [--shard K/N] | --summary | --list";

/// cargo-mutants' arguments selecting the mutants (the same for both oracles).
const SELECTION: [&str; 10] = [
    "--package",
    "raft-core",
    "--file",
    "raft-core/src/storage/**",
    "--file",
    "raft-core/src/consensus/**",
    "--exclude",
    "raft-core/src/bugs.rs",
    "--exclude",
    "raft-core/src/consensus/mem_log.rs",
];

/// The outcome lists cargo-mutants writes (`mutants.out/NAME.txt`), kept per shard.
const OUTCOMES: [&str; 4] = ["caught", "missed", "timeout", "unviable"];

/// The modules scores are given for: (name, path prefixes under `raft-core/src/`).
const MODULES: [(&str, &[&str]); 10] = [
    ("WAL", &["storage/wal.rs", "storage/wal/", "storage/wal_format.rs"]),
    ("segment writer", &["storage/segment_writer.rs", "storage/segref.rs"]),
    ("segments", &["storage/segment.rs"]),
    ("mem tables", &["storage/mem_table.rs"]),
    ("log", &["storage/log.rs", "storage/log/", "storage/messages.rs"]),
    ("snapshots", &["storage/snapshot.rs"]),
    (
        "boot/config",
        &[
            "storage/durable_files.rs",
            "storage/boot.rs",
            "storage/new_server.rs",
            "storage/shared.rs",
            "storage/worker.rs",
            "storage/mod.rs",
            "storage/error.rs",
        ],
    ),
    ("consensus server", &["consensus/server/", "consensus/mod.rs"]),
    ("sender", &["consensus/sender.rs"]),
    ("KV", &["consensus/kv.rs"]),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Oracle {
    Sim,
    Unit,
}

impl Oracle {
    fn name(self) -> &'static str {
        match self {
            Oracle::Sim => "sim",
            Oracle::Unit => "unit",
        }
    }

    /// What cargo-mutants runs for each mutant.
    fn test_args(self) -> Vec<&'static str> {
        match self {
            // Only the oracle's test target is built and run, with the workspace's `mutants` profile: the
            // release profile's optimisation (the simulator's runs are most of the cost; a debug build runs
            // them tens of times slower), plus incremental compilation and many codegen units, so that a
            // mutant's rebuild recompiles the function it changed instead of raft-core, scenarios, sim and
            // the oracle whole. Measured on two cores: a mutant's rebuild 1–3 s instead of 28 s, the
            // oracle's runs 18 s instead of 17 s.
            //
            // cargo-mutants' own baseline runs the mutated package's tests (raft-core's), whatever the test
            // package: it is skipped, and `run` checks the oracle on the unmutated tree itself first. Its
            // timeout is then fixed: the oracle takes 60–68 s on two idle cores (`mutation_oracle.rs` says
            // how it was timed) and up to 117 s with a build beside it, so the limit is 240 s, twice the
            // busiest run seen. A timeout counts as caught, so a limit near the oracle's own time would
            // count a missed mutant as caught. Shards 0–8 ran with 120 s beside other work; judged again
            // with 180–240 s, 23 of shards 7 and 8's 35 timeouts were misses (`mutants/results/sim/
            // timeouts-rechecked/`).
            Oracle::Sim => vec![
                "--test-package",
                "sim",
                "--profile",
                "mutants",
                "--cargo-test-arg=--test",
                "--cargo-test-arg=mutation_oracle",
                "--baseline=skip",
                "--timeout=240",
                "--build-timeout=900",
            ],
            Oracle::Unit => vec!["--test-package", "raft-core", "--profile", "mutants"],
        }
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut oracle = Oracle::Sim;
    let mut shard: Option<(u32, u32)> = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--summary" => return summary(),
            "--list" => return list(),
            "--oracle" => {
                oracle = match rest.next().map(String::as_str) {
                    Some("sim") => Oracle::Sim,
                    Some("unit") => Oracle::Unit,
                    _ => return Err(USAGE.into()),
                }
            }
            "--shard" => {
                let value = rest.next().ok_or(USAGE)?;
                let (k, n) = value.split_once('/').ok_or(USAGE)?;
                let (k, n): (u32, u32) = (k.parse().map_err(|_| USAGE)?, n.parse().map_err(|_| USAGE)?);
                if n == 0 || k >= n {
                    return Err(format!("--shard {value}: K must be below N (shards are numbered from 0)"));
                }
                shard = Some((k, n));
            }
            _ => return Err(USAGE.into()),
        }
    }
    ensure_cargo_mutants()?;
    if oracle == Oracle::Sim {
        // The baseline: the oracle passes on the unmutated tree, or no mutant's result means anything.
        crate::run(
            "cargo",
            &["test", "--profile", "mutants", "--locked", "-p", "sim", "--test", "mutation_oracle"],
            &[],
        )
        .map_err(|e| format!("the oracle fails on the unmutated tree: {e}"))?;
    }
    let (k, n) = shard.unwrap_or((0, 1));
    let out = std::env::temp_dir().join(format!("xtask-mutants-{}-{k}-of-{n}-{}", oracle.name(), std::process::id()));
    let out_str = out.to_str().ok_or("temp path is not UTF-8")?;
    let shard_arg = format!("{k}/{n}");
    let mut args: Vec<&str> = vec!["mutants"];
    args.extend(SELECTION);
    args.extend(oracle.test_args());
    args.extend(["--shard", &shard_arg, "--output", out_str, "--no-shuffle"]);
    // The commit cargo-mutants copies (the tree as it is now; a commit landing while the shard runs is
    // not what it judged).
    let commit = crate::bench::command_line("git", &["rev-parse", "--short", "HEAD"]);
    let started = Instant::now();
    // cargo-mutants exits non-zero when a mutant is missed: that is a result, not a failure of the run.
    let _ = crate::run("cargo", &args, &[]);
    let wall_s = started.elapsed().as_secs_f64();
    let produced = out.join("mutants.out");
    if !produced.join("caught.txt").exists() {
        return Err(format!("cargo mutants wrote no outcomes in {}", produced.display()));
    }
    let kept = results_dir().join(oracle.name()).join(format!("shard-{k}-of-{n}"));
    std::fs::create_dir_all(&kept).map_err(|e| format!("{}: {e}", kept.display()))?;
    let mut counts = Vec::new();
    for name in OUTCOMES {
        let text = std::fs::read_to_string(produced.join(format!("{name}.txt"))).unwrap_or_default();
        counts.push(format!("\"{name}\": {}", text.lines().count()));
        std::fs::write(kept.join(format!("{name}.txt")), text).map_err(|e| e.to_string())?;
    }
    let date = crate::bench::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let version = crate::bench::command_line("cargo", &["mutants", "--version"]);
    let record = format!(
        "{{\"oracle\": \"{}\", \"shard\": \"{k}/{n}\", \"commit\": \"{commit}\", \"date\": \"{date}\", \
         \"cargo_mutants\": \"{version}\", \"wall_s\": {wall_s:.0}, {}}}\n",
        oracle.name(),
        counts.join(", ")
    );
    std::fs::write(kept.join("run.json"), &record).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&out);
    println!("kept {}: {record}", kept.display());
    Ok(())
}

/// Installs cargo-mutants from the registry when it is missing.
fn ensure_cargo_mutants() -> Result<(), String> {
    let present =
        std::process::Command::new("cargo").args(["mutants", "--version"]).output().is_ok_and(|o| o.status.success());
    if present { Ok(()) } else { crate::run("cargo", &["install", "cargo-mutants", "--locked"], &[]) }
}

fn results_dir() -> PathBuf {
    workspace_root().join("mutants").join("results")
}

/// The mutants of the selection, one per line (what the shards split).
fn list() -> Result<(), String> {
    ensure_cargo_mutants()?;
    let mut args = vec!["mutants", "--list"];
    args.extend(SELECTION);
    crate::run("cargo", &args, &[])
}

/// The module a mutant's line (`raft-core/src/storage/wal.rs:12:5: replace …`) belongs to.
fn module_of(line: &str) -> Option<&'static str> {
    let path = line.split(':').next()?.strip_prefix("raft-core/src/")?;
    MODULES.iter().find(|(_, prefixes)| prefixes.iter().any(|p| path.starts_with(p))).map(|(name, _)| *name)
}

/// Outcomes per mutant for one oracle, from every shard kept (a mutant in several shards: the last read,
/// in shard order).
fn outcomes(oracle: &str) -> BTreeMap<String, &'static str> {
    let mut by_mutant = BTreeMap::new();
    let dir = results_dir().join(oracle);
    let shards: Vec<PathBuf> =
        std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    for shard in judged_in_order(shards) {
        for name in OUTCOMES {
            let text = std::fs::read_to_string(shard.join(format!("{name}.txt"))).unwrap_or_default();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                by_mutant.insert(line.trim().to_owned(), name);
            }
        }
    }
    by_mutant
}

/// Kept runs in the order they judged (their `run.json`'s date, then name), so that where a mutant was
/// judged again — a timeout re-run with a longer limit, a blind spot closed — the later outcome counts.
fn judged_in_order(mut shards: Vec<PathBuf>) -> Vec<PathBuf> {
    let date = |shard: &PathBuf| -> String {
        let text = std::fs::read_to_string(shard.join("run.json")).unwrap_or_default();
        let record: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        record["date"].as_str().unwrap_or_default().to_owned()
    };
    shards.sort_by_cached_key(|shard| (date(shard), shard.clone()));
    shards
}

/// The mutants the selection holds now (cargo-mutants' `--list`), if cargo-mutants is installed.
fn current_selection() -> Option<BTreeSet<String>> {
    let mut args = vec!["mutants", "--list"];
    args.extend(SELECTION);
    let out = std::process::Command::new("cargo").args(&args).current_dir(workspace_root()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_owned()).collect())
}

/// Outcomes per mutant for one oracle, only those of mutants the selection still holds: a kept outcome
/// whose mutant name (file, line, column, replacement) is no longer listed was judged on code that has
/// since moved or changed, and is not counted. Also says how many were left out so.
fn current_outcomes(oracle: &str, selection: Option<&BTreeSet<String>>) -> (BTreeMap<String, &'static str>, usize) {
    let all = outcomes(oracle);
    let Some(selection) = selection else { return (all, 0) };
    let before = all.len();
    let current: BTreeMap<String, &'static str> = all.into_iter().filter(|(m, _)| selection.contains(m)).collect();
    let stale = before - current.len();
    (current, stale)
}

/// The mutants `mutants/triage.md` judges equivalent or unreachable by design: no oracle can catch them,
/// so they leave the score's denominator (a row's first column is the whole mutant name, in backticks).
fn not_catchable() -> Vec<String> {
    ruled_out_in(&std::fs::read_to_string(workspace_root().join("mutants/triage.md")).unwrap_or_default())
}

/// The mutants a triage table rules out.
fn ruled_out_in(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|row| {
            let cells: Vec<&str> = row.split(" | ").collect();
            let name = cells.first()?.trim_start_matches('|').trim().strip_prefix('`')?.strip_suffix('`')?;
            let verdict = cells.get(1)?.trim();
            // A `|` inside a table cell is written `\|`.
            matches!(verdict, "equivalent" | "unreachable by design").then(|| name.replace("\\|", "|"))
        })
        .collect()
}

/// The score table: per module, for each oracle, caught (a timeout counts: the run hung) out of the
/// viable mutants it judged that `triage.md` does not rule out (equivalent, unreachable by design).
pub(crate) fn section() -> Option<String> {
    let ruled_out = not_catchable();
    let keep = |o: BTreeMap<String, &'static str>| -> BTreeMap<String, &'static str> {
        o.into_iter().filter(|(m, _)| !ruled_out.contains(m)).collect()
    };
    let selection = current_selection();
    let ((all_sim, stale_sim), (all_unit, stale_unit)) =
        (current_outcomes("sim", selection.as_ref()), current_outcomes("unit", selection.as_ref()));
    let judged = all_sim.len().max(all_unit.len());
    let (sim, unit) = (keep(all_sim), keep(all_unit));
    if judged == 0 && stale_sim + stale_unit == 0 {
        return None;
    }
    let score = |o: &BTreeMap<String, &str>, module: Option<&str>| -> (usize, usize) {
        let mine = o.iter().filter(|(m, _)| module.is_none() || module_of(m) == module);
        let viable: Vec<&str> = mine.map(|(_, v)| *v).filter(|v| *v != "unviable").collect();
        (viable.iter().filter(|v| **v != "missed").count(), viable.len())
    };
    let cell = |(caught, viable): (usize, usize)| {
        if viable == 0 {
            "–".to_owned()
        } else {
            format!("{caught}/{viable} ({:.0}%)", 100.0 * caught as f64 / viable as f64)
        }
    };
    // What the simulator adds: of the mutants both oracles judged that the unit tests missed, those the
    // simulator caught.
    let adds = |module: Option<&str>| -> (usize, usize) {
        let judged: Vec<&str> = unit
            .iter()
            .filter(|(m, v)| **v == "missed" && (module.is_none() || module_of(m) == module))
            .filter_map(|(m, _)| sim.get(m).copied())
            .filter(|v| *v != "unviable")
            .collect();
        (judged.iter().filter(|v| **v != "missed").count(), judged.len())
    };
    let mut rows = Vec::new();
    for (name, _) in MODULES {
        let (u, s, a) = (score(&unit, Some(name)), score(&sim, Some(name)), adds(Some(name)));
        rows.push(format!("| {name} | {} | {} | {} |", cell(u), cell(s), cell(a)));
    }
    rows.push(format!(
        "| **all** | {} | {} | {} |",
        cell(score(&unit, None)),
        cell(score(&sim, None)),
        cell(adds(None))
    ));
    let shards = |oracle: &str| std::fs::read_dir(results_dir().join(oracle)).map(|d| d.count()).unwrap_or(0);
    Some(format!(
        "\n## raft-core: mutation score\n\n`cargo xtask mutants --oracle unit|sim --shard K/N` (cargo-mutants on \
         `raft-core/src/storage/` and `raft-core/src/consensus/`; its outcomes kept in `mutants/results/`), \
         summed by `cargo xtask mutants --summary`. Caught out of the viable mutants judged so far (a timeout \
         counts as caught: the run hung; the simulator's limit is 240 s, the oracle taking 60–68 s on two \
         idle cores; where a mutant was judged again, its latest judgment counts), leaving out {} that `mutants/triage.md` rules out (equivalent, or \
         code the engine never runs); {judged} of {} mutants judged, shards kept: unit {}, sim {}; left \
         out as stale (judged on code whose mutant has since moved or changed): unit {stale_unit}, sim \
         {stale_sim}. The simulator's oracle is `sim/tests/mutation_oracle.rs` alone. The last column is what \
         the simulator adds: of the mutants both judged that the unit tests missed, those it caught.\n\n\
         | module | raft-core's unit tests | the simulator | the simulator, where the unit tests miss |\n\
         |---|---:|---:|---:|\n{}\n",
        ruled_out.iter().filter(|m| selection.as_ref().is_none_or(|s| s.contains(*m))).count(),
        selection.as_ref().map_or("the".to_owned(), |s| s.len().to_string()),
        shards("unit"),
        shards("sim"),
        rows.join("\n")
    ))
}

fn summary() -> Result<(), String> {
    let text = section().ok_or("no shard kept yet under mutants/results/")?;
    print!("{text}");
    let (sim, _) = current_outcomes("sim", current_selection().as_ref());
    let missed: Vec<String> = sim.into_iter().filter(|(_, v)| *v == "missed").map(|(m, _)| m).collect();
    let ruled_out = not_catchable();
    let open = missed.iter().filter(|m| !ruled_out.contains(m)).count();
    println!("\nmissed by the simulator ({}; {open} not ruled out by mutants/triage.md):", missed.len());
    for m in missed {
        let mark = if ruled_out.contains(&m) { "ruled out " } else { "          " };
        println!("  {mark}{m}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mutated_file_has_a_module() {
        let cases = [
            ("raft-core/src/storage/wal_format.rs:3:1: replace x", Some("WAL")),
            ("raft-core/src/storage/segment.rs:3:1: replace x", Some("segments")),
            ("raft-core/src/storage/segment_writer.rs:3:1: replace x", Some("segment writer")),
            ("raft-core/src/consensus/server/election.rs:9:9: replace x", Some("consensus server")),
            ("raft-core/src/consensus/kv.rs:9:9: replace x", Some("KV")),
            ("raft-core/src/storage/boot.rs:1:1: replace x", Some("boot/config")),
            ("vfs/src/lib.rs:1:1: replace x", None),
        ];
        for (line, module) in cases {
            assert_eq!(module_of(line), module, "{line}");
        }
    }

    #[test]
    fn a_later_judgment_of_a_mutant_counts_over_an_earlier_one() {
        let root = std::env::temp_dir().join(format!("xtask-judged-in-order-{}", std::process::id()));
        let runs = [("z-first", "2026-12-07 09:00 UTC"), ("a-second", "2026-12-08 01:00 UTC"), ("m-undated", "")];
        let mut shards = Vec::new();
        for (name, date) in runs {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).expect("a scratch directory");
            if !date.is_empty() {
                std::fs::write(dir.join("run.json"), format!("{{\"date\": \"{date}\"}}")).expect("written");
            }
            shards.push(dir);
        }
        let order: Vec<String> = judged_in_order(shards)
            .iter()
            .map(|p| p.file_name().expect("a name").to_string_lossy().into_owned())
            .collect();
        std::fs::remove_dir_all(&root).expect("removed");
        assert_eq!(order, ["m-undated", "z-first", "a-second"]);
    }

    #[test]
    fn the_triage_table_rules_out_equivalent_and_unreachable_mutants_only() {
        let table = "| mutant | verdict | why |\n|---|---|---|\n\
            | `a.rs:1:1: replace \\|\\| with && in f` | equivalent | x |\n\
            | `a.rs:2:1: replace g -> bool with true` | unreachable by design | y |\n\
            | `a.rs:3:1: replace h -> bool with true` | blind spot (open) | z |\n\
            not a row | `a.rs:4:1` | equivalent |\n";
        assert_eq!(
            ruled_out_in(table),
            vec!["a.rs:1:1: replace || with && in f".to_owned(), "a.rs:2:1: replace g -> bool with true".to_owned()]
        );
    }

    #[test]
    fn every_file_of_the_selection_is_in_one_module() {
        let src = workspace_root().join("raft-core/src");
        let mut files = Vec::new();
        let mut dirs = vec![src.join("storage"), src.join("consensus")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("a source directory") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 20, "{files:?}");
        for path in files {
            let relative = path.strip_prefix(workspace_root()).expect("inside").to_string_lossy().into_owned();
            if relative.ends_with("consensus/mem_log.rs") {
                continue; // excluded from the selection
            }
            assert!(module_of(&format!("{relative}:1:1: replace x")).is_some(), "{relative} has no module");
        }
        assert!(std::path::Path::new(&src).join("consensus/mem_log.rs").exists(), "the excluded file is named right");
    }
}
