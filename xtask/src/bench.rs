//! `cargo xtask bench`: runs the release benchmarks and writes `BENCHMARKS.md` with the machine, the
//! date and the exact commands, so every figure in the file can be reproduced.

use crate::workspace_root;
use std::process::Command;
use std::time::Instant;

/// Benchmark binaries, each printing a Markdown section on stdout.
const BENCHES: [(&str, &str); 3] = [("vfs", "vfs"), ("raft-core", "storage"), ("sim", "engine")];

const USAGE: &str = "usage: cargo xtask bench [--reps N] [--find-ranges N] [--rss-seeds N] [--soak-hours N] \
                     [--fuzz-cases N] [--porcupine DIR] [--hunt-seeds N] [--hunt-budget SECS] \
                     [--hunt-switches A,B,…|all] [--only SECTION,…]\n\
                     --only re-measures only the named sections (memory, soak, fuzz, hunt, find, scale, mutants) and writes \
                     each over its old text in BENCHMARKS.md";

/// The sections `--only` can re-measure alone: (name, the heading its text starts with). `scale` renders
/// the last `cargo xtask scale` record again.
const ALONE: [(&str, &str); 7] = [
    ("scale", "## sim: the no-false-alarm claim at scale\n"),
    ("memory", "## sim: memory\n"),
    ("soak", "## sim: memory over a long run (the soak)\n"),
    ("fuzz", "## sim fuzz: hostile input and arbitrary worlds\n"),
    ("hunt", "## sim hunt: coverage over time, guided and blind\n"),
    ("find", "## sim: time to find each bug switch\n"),
    ("mutants", "## raft-core: mutation score\n"),
];

/// Seeds per range when timing how long a bug switch takes to be found: a targeted scenario's range, and
/// swarm's (a switch not found within a range counts as not found there).
const TARGETED_RANGE: u64 = 100;
const SWARM_RANGE: u64 = 200;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut reps = "5".to_string();
    let mut find_ranges = 20u64;
    let mut rss_seeds = 10_000u64;
    let mut soak_hours = 24u64;
    let mut fuzz_cases = 200_000u64;
    let mut porcupine = None;
    let mut hunt_seeds = 3u64;
    let mut hunt_budget = 60u64;
    let mut hunt_switches: Vec<String> = Vec::new();
    let mut only: Option<Vec<String>> = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or(USAGE)?;
        if flag == "--only" {
            let names: Vec<String> = value.split(',').map(str::to_owned).collect();
            if let Some(bad) = names.iter().find(|n| !ALONE.iter().any(|(a, _)| a == n)) {
                return Err(format!("--only: no section {bad:?} to re-measure alone\n{USAGE}"));
            }
            only = Some(names);
            continue;
        }
        if flag == "--porcupine" {
            porcupine = Some(value.clone());
            continue;
        }
        if flag == "--hunt-switches" {
            hunt_switches = value.split(',').filter(|b| !b.is_empty()).map(str::to_owned).collect();
            continue;
        }
        let n: u64 = value.parse().map_err(|_| USAGE.to_string())?;
        match flag.as_str() {
            "--reps" if n >= 1 => reps = value.clone(),
            "--find-ranges" => find_ranges = n,
            "--rss-seeds" => rss_seeds = n,
            "--soak-hours" => soak_hours = n,
            "--fuzz-cases" => fuzz_cases = n,
            "--hunt-seeds" => hunt_seeds = n,
            "--hunt-budget" if n >= 1 => hunt_budget = n,
            _ => return Err(USAGE.into()),
        }
    }
    if let Some(names) = &only {
        let wanted = |name: &str| names.iter().any(|n| n == name);
        rss_seeds = if wanted("memory") { rss_seeds } else { 0 };
        soak_hours = if wanted("soak") { soak_hours } else { 0 };
        fuzz_cases = if wanted("fuzz") { fuzz_cases } else { 0 };
        hunt_seeds = if wanted("hunt") { hunt_seeds } else { 0 };
        find_ranges = if wanted("find") { find_ranges } else { 0 };
    }
    let mut sections = Vec::new();
    let mut commands = Vec::new();
    for (package, bench) in BENCHES.into_iter().filter(|_| only.is_none()) {
        let args = ["bench", "--quiet", "-p", package, "--bench", bench, "--", "--reps", &reps];
        commands.push(format!("cargo {}", args.join(" ")));
        let text = cargo_stdout(&args)?;
        print!("{text}");
        sections.push(text);
    }
    let sim = crate::scale::release_sim()?;
    // Failures' seed files go to a scratch directory, not `seeds/found/`.
    let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
    let dir = dir.to_str().ok_or("temp path is not UTF-8")?.to_string();
    if only.is_none() {
        let reps_n: usize = reps.parse().map_err(|_| USAGE.to_string())?;
        let text = crate::bench_history::section(&sim, &dir, porcupine.as_deref(), reps_n)?;
        print!("{text}");
        sections.push(text);
        commands.push(match &porcupine {
            Some(p) => format!("sim check-history --json FILES; porcupine-driver FILES (checkout {p})"),
            None => "sim check-history --json FILES".to_string(),
        });
    }
    if only.is_none() {
        let reps_n: usize = reps.parse().map_err(|_| USAGE.to_string())?;
        let text = crate::bench_page::section(&sim, &format!("{dir}/pages"), reps_n)?;
        print!("{text}");
        sections.push(text);
        commands.push("sim replay FILE --html PAGE; scripts/browser-test.sh --show data-load-ms PAGE".into());
    }
    if rss_seeds > 0 {
        let text = memory_section(&sim, &dir, rss_seeds)?;
        print!("{text}");
        sections.push(text);
        commands.push(format!("sim explore --swarm --seeds 0..{rss_seeds}"));
    }
    if soak_hours > 0 {
        let text = crate::bench_soak::section(soak_hours)?;
        print!("{text}");
        sections.push(text);
        commands.push(format!("cargo bench -p sim --bench soak -- --hours {soak_hours}"));
    }
    if fuzz_cases > 0 {
        let text = crate::scale::fuzz_section(&sim, fuzz_cases)?;
        print!("{text}");
        sections.push(text);
        commands.push(format!("sim fuzz --seed 1 --cases {fuzz_cases} (worlds: {})", (fuzz_cases / 20).max(1)));
    }
    let wants_mutants = only.as_ref().is_none_or(|names| names.iter().any(|n| n == "mutants"));
    if let Some(text) = crate::mutants::section().filter(|_| wants_mutants) {
        print!("{text}");
        sections.push(text);
        commands.push("cargo xtask mutants --summary (the shards kept in mutants/results/)".into());
    }
    let wants_scale = only.as_ref().is_none_or(|names| names.iter().any(|n| n == "scale"));
    if let Some(text) = crate::scale::scale_section().filter(|_| wants_scale) {
        print!("{text}");
        sections.push(text);
        commands.push("cargo xtask scale (its last run, bench/scale.json)".into());
    }
    if hunt_seeds > 0 {
        if hunt_switches == ["all"] {
            hunt_switches = String::from_utf8_lossy(
                &Command::new(&sim).args(["list", "bugs"]).output().map_err(|e| format!("sim list bugs: {e}"))?.stdout,
            )
            .lines()
            .map(str::to_owned)
            .collect();
        }
        let text = crate::bench_hunt::section(&sim, &dir, hunt_seeds, hunt_budget, &hunt_switches)?;
        print!("{text}");
        sections.push(text);
        commands.push(format!(
            "sim hunt --swarm [--blind] [--bug B] --seed S --time-budget {hunt_budget} --json, seeds 0..{hunt_seeds}"
        ));
    }
    if find_ranges > 0 {
        let text = time_to_find_section(&sim, &dir, find_ranges)?;
        print!("{text}");
        sections.push(text);
        commands.push(format!(
            "sim explore (--scenario S | --swarm) --bug B --seeds R --stop-on-failure --json, {find_ranges} ranges"
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let path = workspace_root().join("BENCHMARKS.md");
    if only.is_some() {
        let mut text = std::fs::read_to_string(&path).map_err(|e| format!("read BENCHMARKS.md: {e}"))?;
        let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
        for (section, command) in sections.iter().zip(&commands) {
            text = splice_section(&text, section, &format!("`{command}` on {date}"))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("write BENCHMARKS.md: {e}"))?;
        println!("re-measured {} section(s) of BENCHMARKS.md", sections.len());
        return Ok(());
    }
    let document = format!(
        "# Benchmarks\n\n\
         Written by `cargo xtask bench --reps {reps}`; do not edit by hand above the line that starts the \
         hand-kept part (\"Measured by scripts\", at the end). Every figure is a median over the \
         repetitions with (min–max), from a release build.\n\n\
         - date: {}\n- machine: {}\n- toolchain: {}\n- commands: {}\n\n{}",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine(),
        command_line("rustc", &["--version"]),
        commands.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
        sections.join("\n")
    );
    let kept = kept_part(&std::fs::read_to_string(&path).unwrap_or_default());
    std::fs::write(&path, format!("{document}{kept}")).map_err(|e| format!("write BENCHMARKS.md: {e}"))?;
    println!("wrote BENCHMARKS.md");
    Ok(())
}

/// Runs `cargo ARGS` in the workspace (echoing the command); its stdout, or its stderr as the error.
pub(crate) fn cargo_stdout(args: &[&str]) -> Result<String, String> {
    println!("$ cargo {}", args.join(" "));
    let output = Command::new("cargo")
        .args(args)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&output.stderr)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `sim` with `args`; returns stdout, the exit code and the wall time.
fn sim_output(sim: &str, args: &[&str]) -> Result<(String, i32, f64), String> {
    let start = Instant::now();
    let output = Command::new(sim)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run {sim}: {e}"))?;
    let wall = start.elapsed().as_secs_f64();
    Ok((String::from_utf8_lossy(&output.stdout).into_owned(), output.status.code().unwrap_or(-1), wall))
}

/// Peak resident memory of one `explore --swarm` over `seeds` seeds (the CLI reports it).
fn memory_section(sim: &str, dir: &str, seeds: u64) -> Result<String, String> {
    let range = format!("0..{seeds}");
    println!("$ sim explore --swarm --seeds {range}");
    let (out, code, wall) = sim_output(sim, &["explore", "--swarm", "--seeds", &range, "--seed-dir", dir])?;
    let summary = out.lines().find(|l| l.starts_with("swarm: ")).ok_or_else(|| format!("no summary (exit {code})"))?;
    let peak = summary
        .split("peak memory ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .ok_or_else(|| format!("no peak memory in {summary:?}"))?;
    Ok(format!(
        "\n## sim: memory\n\n`sim explore --swarm --seeds {range}` (every core, every checker, no bug switch): \
         peak resident memory **{peak} MiB** (the process's `VmHWM`), {wall:.0} s wall. Goal: under 200 MiB.\n\n\
         Its summary: `{summary}`\n"
    ))
}

/// For each bug switch, targeted (its scenario) and swarm: how many seeds and wall seconds until the first
/// violation, in each of `ranges` disjoint seed ranges; the median and the spread.
fn time_to_find_section(sim: &str, dir: &str, ranges: u64) -> Result<String, String> {
    let (bugs, _, _) = sim_output(sim, &["list", "bugs"])?;
    let (listing, _, _) = sim_output(sim, &["list", "scenarios"])?;
    // A switch's targeted scenario: the one naming it with the fewest targets.
    let mut scenarios: Vec<(String, Vec<String>)> = Vec::new();
    for line in listing.lines() {
        if let Some(targets) = line.trim().strip_prefix("targets: ") {
            if let Some(last) = scenarios.last_mut() {
                last.1 = targets.split(", ").map(str::to_string).collect();
            }
        } else if !line.starts_with(' ') && !line.is_empty() {
            scenarios.push((line.trim().to_string(), Vec::new()));
        }
    }
    let mut rows = Vec::new();
    for bug in bugs.lines().map(str::trim).filter(|b| !b.is_empty()) {
        let targeted = scenarios.iter().filter(|(_, t)| t.iter().any(|x| x == bug)).min_by_key(|(_, t)| t.len());
        let mut modes: Vec<(String, Vec<String>, u64)> = Vec::new();
        if let Some((name, _)) = targeted {
            modes.push((format!("`{name}`"), vec!["--scenario".into(), name.clone()], TARGETED_RANGE));
        }
        modes.push(("swarm".into(), vec!["--swarm".into()], SWARM_RANGE));
        for (label, how, size) in modes {
            let mut found = Vec::new();
            for r in 0..ranges {
                let range = format!("{}..{}", r * size, (r + 1) * size);
                let mut args: Vec<&str> = vec!["explore"];
                args.extend(how.iter().map(String::as_str));
                args.extend(["--bug", bug, "--seeds", &range, "--stop-on-failure", "--json", "--seed-dir", dir]);
                println!("$ sim {}", args.join(" "));
                let (out, _, wall) = sim_output(sim, &args)?;
                let first = out
                    .lines()
                    .find(|l| l.contains("\"outcome\":\"violation\"") || l.contains("\"outcome\":\"panic\""))
                    .and_then(|l| l.split("\"seed\":").nth(1))
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse::<u64>().ok());
                found.push(first.map(|seed| (seed - r * size + 1, wall)));
            }
            rows.push(find_row(bug, &label, size, &found));
        }
    }
    Ok(format!(
        "\n## sim: time to find each bug switch\n\n\
         For each switch, with it on: `sim explore --stop-on-failure` over {ranges} disjoint seed ranges \
         ({TARGETED_RANGE} seeds each for its targeted scenario, {SWARM_RANGE} for swarm), every core; the seeds \
         up to and including the first violation and the wall time of the run. Median over the ranges (a \
         range that does not find it counts as not found: its median is then \"not found\"), with the \
         range's min–max. Goals: targeted median under 1 s, swarm median under 30 s.\n\n\
         | switch | how | found in | seeds to find, median (min–max) | wall s, median (min–max) |\n\
         |---|---|---|---|---|\n{}",
        rows.join("")
    ))
}

/// One table row: `found[r]` is the seeds and wall seconds to the first violation in range `r`; a range
/// that did not find it sorts last, so the median is "not found" when fewer than half the ranges found it.
fn find_row(bug: &str, label: &str, size: u64, found: &[Option<(u64, f64)>]) -> String {
    fn median_of<T: Copy + PartialOrd>(mut xs: Vec<Option<T>>) -> Option<T> {
        xs.sort_by(|a, b| match (a, b) {
            (Some(a), Some(b)) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        xs[xs.len() / 2]
    }
    let hits: Vec<(u64, f64)> = found.iter().flatten().copied().collect();
    let seeds = median_of(found.iter().map(|f| f.map(|h| h.0)).collect());
    let walls = median_of(found.iter().map(|f| f.map(|h| h.1)).collect());
    let spread = |f: fn(&(u64, f64)) -> f64| {
        let xs: Vec<f64> = hits.iter().map(f).collect();
        (xs.iter().copied().fold(f64::INFINITY, f64::min), xs.iter().copied().fold(0.0, f64::max))
    };
    let (seed_cell, wall_cell) = match (seeds, walls) {
        (Some(m), Some(w)) => {
            let (lo, hi) = spread(|h| h.0 as f64);
            let (wlo, whi) = spread(|h| h.1);
            (format!("{m} ({lo:.0}–{hi:.0})"), format!("{w:.2} ({wlo:.2}–{whi:.2})"))
        }
        _ => (format!("not found (> {size})"), "—".to_string()),
    };
    format!("| `{bug}` | {label} | {}/{} ranges | {seed_cell} | {wall_cell} |\n", hits.len(), found.len())
}

pub(crate) fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    format!("{model}, {cores} cores, {memory} RAM, Linux {}", kernel.trim())
}

/// The line that starts BENCHMARKS.md's hand-kept part: measurements the scripts each section names
/// make (the switch tables, sweeps, shrinks, hunts), which `bench` keeps as they are when it rewrites
/// the rest.
const KEPT_MARKER: &str = "<!-- kept by cargo xtask bench: measured by the scripts each section names -->";

/// The hand-kept part of an existing BENCHMARKS.md, from its marker line to the end ("" if none).
/// `existing` with the section of `section`'s heading replaced by `section` (to the next heading or
/// the hand-kept part), and the header's line of sections re-measured alone saying when (`stamp`).
fn splice_section(existing: &str, section: &str, stamp: &str) -> Result<String, String> {
    let section = section.trim_start_matches('\n');
    let heading = ALONE
        .iter()
        .map(|(_, h)| *h)
        .find(|h| section.starts_with(h))
        .ok_or_else(|| format!("a section with no heading to splice: {:?}", section.lines().next()))?;
    let from = existing.find(heading).ok_or_else(|| format!("BENCHMARKS.md has no {:?} to replace", heading.trim()))?;
    let rest = &existing[from + heading.len()..];
    let end = [rest.find("\n## "), rest.find(KEPT_MARKER)]
        .into_iter()
        .flatten()
        .min()
        .map_or(existing.len(), |e| from + heading.len() + e);
    let mut out = format!("{}{}\n{}", &existing[..from], section.trim_end(), &existing[end..]);
    // The header says which sections were re-measured alone, and when (one entry per heading).
    const PREFIX: &str = "- re-measured alone since: ";
    let title = heading.trim().trim_start_matches("## ");
    let entry = format!("{title}: {stamp}");
    match out.find(PREFIX) {
        Some(at) => {
            let line_end = out[at..].find('\n').map_or(out.len(), |e| at + e);
            let mut entries: Vec<String> = out[at + PREFIX.len()..line_end]
                .split("; ")
                .filter(|e| !e.is_empty() && !e.starts_with(&format!("{title}: ")))
                .map(str::to_owned)
                .collect();
            entries.push(entry);
            out.replace_range(at..line_end, &format!("{PREFIX}{}", entries.join("; ")));
        }
        None => {
            let at = out.find("\n- commands: ").ok_or("BENCHMARKS.md has no commands line")?;
            out.insert_str(at, &format!("\n{PREFIX}{entry}"));
        }
    }
    Ok(out)
}

fn kept_part(existing: &str) -> String {
    existing.find(KEPT_MARKER).map(|at| format!("\n{}", &existing[at..])).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Benchmarks\n\n- date: then\n- commands: `a`\n\n## vfs: x\n\nold vfs\n\n\
                        ## sim: memory over a long run (the soak)\n\nold soak\n\n## sim: memory\n\nold memory\n";

    #[test]
    fn a_section_measured_alone_replaces_its_old_text_and_is_stamped() {
        let soak = "\n## sim: memory over a long run (the soak)\n\nnew soak\n";
        let once = splice_section(FILE, soak, "`s` on today").expect("spliced");
        assert!(once.contains("new soak") && !once.contains("old soak"), "{once}");
        assert!(once.contains("old vfs") && once.contains("old memory"), "{once}");
        assert!(once.contains("- re-measured alone since: sim: memory over a long run (the soak): `s` on today\n"));
        // Again, and another section: one entry per section, the newest.
        let twice = splice_section(&once, soak, "`s` on tomorrow").expect("spliced");
        let memory = splice_section(&twice, "## sim: memory\n\nnew memory\n", "`m` on tomorrow").expect("spliced");
        assert!(memory.contains("new memory") && !memory.contains("old memory") && memory.contains("new soak"));
        assert!(memory.contains(
            "- re-measured alone since: sim: memory over a long run (the soak): `s` on tomorrow; sim: memory: `m` on tomorrow\n"
        ));
        assert_eq!(memory.matches("## ").count(), FILE.matches("## ").count());
    }

    #[test]
    fn a_section_with_no_heading_or_no_old_text_is_refused() {
        assert!(splice_section(FILE, "## sim: unheard of\n", "x").is_err());
        assert!(splice_section("# Benchmarks\n- commands: x\n", "## sim: memory\n\nnew\n", "x").is_err());
    }
}
