//! `sim merge`: the `--out` files of an exploration's shards as one report and exit code; lines of another
//! exploration, a seed outside its shard or a seed twice are usage errors naming the file and line.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use super::{Usage, first_line, parse_seeds, parse_shard, shard_len};

#[derive(Args)]
pub(crate) struct MergeArgs {
    /// `explore --out` files (or `merge --json` output), one or more per shard of one exploration, in any order.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Prints the merged JSON lines on stdout (in seed order, as the files have them: mergeable again)
    /// and the report on stderr.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What every line of one exploration's `--out` files shares; `merge` refuses lines that differ.
#[derive(PartialEq)]
pub(crate) struct Exploration {
    pub(crate) scenario: String,
    /// Sorted: `--bug a --bug b` and `--bug b --bug a` are one exploration.
    pub(crate) bugs: Vec<String>,
    pub(crate) overrides: Value,
    pub(crate) first: u64,
    pub(crate) end: u64,
    pub(crate) shards: u64,
}

impl Exploration {
    /// The first way `self` differs from `other`, for the error message.
    pub(crate) fn difference(&self, other: &Exploration) -> String {
        if self.scenario != other.scenario {
            format!("scenario {} (not {})", self.scenario, other.scenario)
        } else if self.bugs != other.bugs {
            format!("bugs {:?} (not {:?})", self.bugs, other.bugs)
        } else if self.overrides != other.overrides {
            format!("overrides {} (not {})", self.overrides, other.overrides)
        } else {
            format!(
                "seeds {}..{} in {} shards (not {}..{} in {})",
                self.first, self.end, self.shards, other.first, other.end, other.shards
            )
        }
    }
}

/// One seed's line of an `explore --out` file.
pub(crate) struct SeedLine {
    pub(crate) seed: u64,
    pub(crate) shard: u64,
    pub(crate) outcome: String,
    pub(crate) checker: String,
    pub(crate) node: String,
    pub(crate) detail: String,
    pub(crate) exit_code: u8,
    pub(crate) wall_ms: u64,
    pub(crate) reproduce: String,
    /// The line as the file has it (what `merge --json` prints).
    pub(crate) text: String,
    /// `FILE:LINE`, for messages.
    pub(crate) at: String,
}

impl SeedLine {
    /// One line, as `explore` reports a failure (without the violation's time, which the JSON lacks).
    pub(crate) fn summary(&self) -> String {
        match self.outcome.as_str() {
            "violation" => format!("VIOLATION {} on {}: {}", self.checker, self.node, first_line(&self.detail)),
            "panic" => format!("PANIC in the system under test: {}", first_line(&self.detail)),
            "nondeterministic" => format!("NOT DETERMINISTIC: {}", self.detail),
            other => other.to_uppercase(),
        }
    }
}

/// Parses one line of an `explore --out` file; a one-line error.
pub(crate) fn parse_seed_line(text: &str, at: String) -> Result<(Exploration, SeedLine), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let field = |name: &str| {
        v.get(name).ok_or_else(|| format!("no {name:?} field: not a line of `sim explore --out` (or of an older sim)"))
    };
    let string =
        |name: &str| field(name)?.as_str().map(str::to_owned).ok_or_else(|| format!("{name:?} is not a string"));
    let number = |name: &str| field(name)?.as_u64().ok_or_else(|| format!("{name:?} is not a whole number"));
    let optional = |name: &str| v.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
    let seeds = string("seeds")?;
    let (first, end) = parse_seeds(&seeds).map_err(|Usage(m)| format!("\"seeds\": {m}"))?;
    let (shard, shards) = parse_shard(&string("shard")?).map_err(|Usage(m)| format!("\"shard\": {m}"))?;
    let mut bugs: Vec<String> = field("bugs")?
        .as_array()
        .and_then(|a| a.iter().map(|b| b.as_str().map(str::to_owned)).collect())
        .ok_or("\"bugs\" is not a list of names")?;
    bugs.sort();
    let overrides = field("overrides")?.clone();
    if !overrides.is_object() {
        return Err("\"overrides\" is not an object".into());
    }
    let seed = number("seed")?;
    if seed < first || seed >= end || (seed - first) % shards != shard {
        return Err(format!("seed {seed} is not in shard {shard}/{shards} of {seeds}"));
    }
    let exit_code = u8::try_from(number("exit_code")?).map_err(|_| "\"exit_code\" is above 255".to_string())?;
    let exploration = Exploration { scenario: string("scenario")?, bugs, overrides, first, end, shards };
    let line = SeedLine {
        seed,
        shard,
        outcome: string("outcome")?,
        checker: optional("checker"),
        node: optional("node"),
        detail: optional("detail"),
        exit_code,
        wall_ms: v.get("wall_ms").and_then(Value::as_u64).unwrap_or(0),
        reproduce: string("reproduce")?,
        text: text.trim().to_owned(),
        at,
    };
    Ok((exploration, line))
}

pub(crate) fn merge(args: &MergeArgs) -> Result<u8, Usage> {
    let mut exploration: Option<(Exploration, String)> = None;
    let mut lines: BTreeMap<u64, SeedLine> = BTreeMap::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        for (index, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let at = format!("{}:{}", path.display(), index + 1);
            let (e, line) = parse_seed_line(raw, at.clone()).map_err(|m| Usage(format!("{at}: {m}")))?;
            match &exploration {
                None => exploration = Some((e, at.clone())),
                Some((known, first_at)) if *known != e => {
                    return Err(Usage(format!("{at}: another exploration than {first_at}'s: {}", e.difference(known))));
                }
                Some(_) => {}
            }
            if let Some(other) = lines.get(&line.seed) {
                return Err(Usage(format!("{at}: seed {} again (already in {})", line.seed, other.at)));
            }
            lines.insert(line.seed, line);
        }
    }
    // With --json, stdout carries only the merged lines (mergeable again, readable by jq).
    let report = |text: String| if args.json { eprintln!("{text}") } else { println!("{text}") };
    let Some((e, _)) = exploration else {
        report(format!("no seeds in the {} file(s)", args.files.len()));
        return Ok(0);
    };
    if args.json {
        for line in lines.values() {
            println!("{}", line.text);
        }
    }
    let failures: Vec<&SeedLine> = lines.values().filter(|l| l.exit_code != 0).collect();
    for f in &failures {
        report(format!("seed {}: {}\n  reproduce: {}", f.seed, f.summary(), f.reproduce));
    }
    // Seeds of the range not in the files: a shard stopped early (time budget, Ctrl-C, a failure with
    // --stop-on-failure, killed) or not given. Reported, as `explore` reports a budget it reached.
    let mut per_shard: BTreeMap<u64, u64> = BTreeMap::new();
    for l in lines.values() {
        *per_shard.entry(l.shard).or_default() += 1;
    }
    let mut missing: Vec<String> = per_shard
        .iter()
        .filter_map(|(&i, &got)| {
            let want = shard_len(e.first, e.end, i, e.shards);
            (got < want).then(|| format!("{got} of the {want} seeds of shard {i}/{}", e.shards))
        })
        .collect();
    let non_empty = e.shards.min(e.end - e.first);
    let absent = non_empty - per_shard.len() as u64;
    if absent > 0 {
        let named: Vec<String> = (0..non_empty)
            .filter(|i| !per_shard.contains_key(i))
            .take(8)
            .map(|i| format!("{i}/{}", e.shards))
            .collect();
        let more = if absent > 8 { ", …" } else { "" };
        let shards = if absent == 1 { "shard" } else { "shards" };
        missing.push(format!("no seed of {shards} {}{more}", named.join(", ")));
    }
    let why = if missing.is_empty() { String::new() } else { format!(" ({})", missing.join("; ")) };
    let run_s = lines.values().map(|l| l.wall_ms).sum::<u64>() as f64 / 1000.0;
    report(format!(
        "{}: {} of {} seeds run{why}, {} failed, merged from {} file(s) ({} of {} shards, {run_s:.1} s of runs)",
        e.scenario,
        lines.len(),
        e.end - e.first,
        failures.len(),
        args.files.len(),
        per_shard.len(),
        e.shards,
    ));
    if let Some(first) = failures.first() {
        report(format!("failing seeds: {}", failures.iter().map(|f| f.seed.to_string()).collect::<Vec<_>>().join(" ")));
        report(format!("first failure: seed {}", first.seed));
    }
    Ok(failures.first().map_or(0, |f| f.exit_code))
}
