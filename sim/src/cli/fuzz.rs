//! `sim fuzz`: hostile input for the three parsers a user feeds — seed files, `--set KNOB=VALUE`, the
//! `explore --out` lines `merge` reads — and whole worlds drawn anywhere inside the knobs' accepted
//! ranges, run for a short simulated time.
//!
//! Why: CI runs the harness unattended, so a bad input must be refused in one line and any valid one must
//! end in a pass or a checker's verdict — never a panic, and never a hang (the bounds of
//! `world::knob_ranges` keep the work finite; this is where that is tried).
//!
//! How: a case is a byte string from a ChaCha stream of (fuzz seed, target, case number), so one seed
//! decides every case and `--case K` replays one. `arbitrary`'s `Unstructured` turns the bytes into the
//! choices that build the input — the byte-driven interface cargo-fuzz, AFL and bolero drive on nightly
//! — starting from a valid input (a seed file of a catalogue scenario, a knob of its world, an `explore`
//! line) and mutating its JSON (hostile numbers, strings, types, deep nesting, unknown and missing fields)
//! and its bytes (truncation, garbage). A failing case is shrunk by shrinking its bytes: fewer bytes make
//! fewer and simpler choices (`Unstructured` answers the simplest one once they run out).
//!
//! What a case must do (anything else is a failure, printed with the input and the command that replays
//! it): a parser returns a value or one non-empty line without control characters; an accepted seed file
//! renders and parses back to itself; an accepted `--set` is reproduced by the `K=V` a reproduce line
//! prints (not yet through a shell: values with spaces or quotes are printed unquoted); the text `merge`
//! keeps of an accepted `explore` line reads back as the same line; a world ends in a pass or a liveness
//! verdict (a safety verdict with no switch is a failure).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use arbitrary::Unstructured;
use clap::{Args, ValueEnum};
use raft_core::Bug;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use scenarios::{Scenario, WorldSpec};
use serde_json::{Map, Number, Value, json};
use sim::seedfile::{self, Expect, ExpectedOutcome, FORMAT_VERSION, SeedFile};
use sim::{Outcome, WorldConfig};

use super::{Usage, merge, run_world};

#[derive(Args)]
pub(crate) struct FuzzArgs {
    /// A target (repeatable; default: all four).
    #[arg(long = "target", value_enum)]
    pub(crate) targets: Vec<Target>,
    /// Cases per target.
    #[arg(long, default_value_t = 1000)]
    pub(crate) cases: u64,
    /// Decides every case.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Runs only this case of each target (to replay a failure); prints its input.
    #[arg(long)]
    pub(crate) case: Option<u64>,
    /// The longest simulated time of a `world` case (safety and liveness phases together, ms).
    #[arg(long, default_value_t = 2_000)]
    pub(crate) world_ms: u64,
    /// One JSON object per target instead of the text summary.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What is fuzzed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, ValueEnum)]
pub(crate) enum Target {
    /// `SeedFile::parse` (what `replay`, `shrink` and `regress` read).
    SeedFile,
    /// `--set KNOB=VALUE` on a scenario's world, as every run-making subcommand applies it.
    Set,
    /// One line of an `explore --out` file, as `merge` reads it.
    MergeLine,
    /// A world drawn inside every knob's range (crash model, fault weights and all), run to its end.
    World,
}

impl Target {
    const ALL: [Target; 4] = [Target::SeedFile, Target::Set, Target::MergeLine, Target::World];

    fn name(self) -> &'static str {
        match self {
            Target::SeedFile => "seed-file",
            Target::Set => "set",
            Target::MergeLine => "merge-line",
            Target::World => "world",
        }
    }
}

/// How one case ended.
enum Verdict {
    /// The parser took the input (or the world passed).
    Accepted,
    /// Refused in one line.
    Refused,
    /// A world ended in a checker's verdict.
    Violation(String),
    /// A property above does not hold, or something panicked: the input and why.
    Failure { input: String, why: String },
}

/// One target's counts.
#[derive(Default)]
struct Tally {
    cases: u64,
    accepted: u64,
    refused: u64,
    violations: BTreeMap<String, u64>,
    failures: Vec<(u64, String, String)>,
}

pub(crate) fn fuzz(args: &FuzzArgs) -> Result<u8, Usage> {
    let targets = if args.targets.is_empty() { Target::ALL.to_vec() } else { args.targets.clone() };
    if args.world_ms == 0 {
        return Err(Usage("--world-ms 0: a world needs at least 1 ms".into()));
    }
    let cases = match args.case {
        Some(k) => k..k + 1,
        None => 0..args.cases,
    };
    let mut failed = false;
    for target in targets {
        let mut tally = Tally::default();
        for k in cases.clone() {
            let bytes = case_bytes(args.seed, target, k);
            if args.case.is_some() {
                println!("{} case {k}: input: {}", target.name(), input_of(target, &bytes, args.world_ms));
            }
            tally.cases += 1;
            match run_case(target, &bytes, args.world_ms) {
                Verdict::Accepted => tally.accepted += 1,
                Verdict::Refused => tally.refused += 1,
                Verdict::Violation(checker) => *tally.violations.entry(checker).or_default() += 1,
                Verdict::Failure { input, why } => tally.failures.push((k, input, why)),
            }
        }
        failed |= !tally.failures.is_empty();
        report(args, target, &tally);
    }
    Ok(if failed { 1 } else { 0 })
}

fn report(args: &FuzzArgs, target: Target, t: &Tally) {
    if args.json {
        let failures: Vec<Value> = t
            .failures
            .iter()
            .map(|(k, input, why)| json!({"case": k, "input": input, "why": why, "reproduce": reproduce(args, target, *k)}))
            .collect();
        let line = json!({
            "target": target.name(), "seed": args.seed, "cases": t.cases, "accepted": t.accepted,
            "refused": t.refused, "violations": t.violations, "failures": failures,
        });
        println!("{line}");
        return;
    }
    let violations: Vec<String> = t.violations.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let verdicts = if violations.is_empty() { String::new() } else { format!(", verdicts: {}", violations.join(", ")) };
    let (took, refused) =
        if target == Target::World { ("passed", "refused") } else { ("accepted", "refused in one line") };
    println!(
        "{}: {} cases, {} {took}, {} {refused}{verdicts}, {} failures",
        target.name(),
        t.cases,
        t.accepted,
        t.refused,
        t.failures.len()
    );
    for (k, input, why) in &t.failures {
        println!("  FAILURE case {k}: {why}\n    input: {input}\n    reproduce: {}", reproduce(args, target, *k));
    }
}

fn reproduce(args: &FuzzArgs, target: Target, case: u64) -> String {
    format!("sim fuzz --target {} --seed {} --case {case} --world-ms {}", target.name(), args.seed, args.world_ms)
}

/// Case `k`'s bytes: 64 to 4,159 bytes of the ChaCha stream of (seed, target, k).
fn case_bytes(seed: u64, target: Target, k: u64) -> Vec<u8> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(target as u64).to_le_bytes());
    key[16..24].copy_from_slice(&k.to_le_bytes());
    key[24..].copy_from_slice(b"sim-fuzz");
    let mut rng = ChaCha8Rng::from_seed(key);
    let len = 64 + (rng.next_u32() % 4_096) as usize;
    let mut bytes = vec![0; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// The input a case's bytes build, for printing.
fn input_of(target: Target, bytes: &[u8], world_ms: u64) -> String {
    let mut u = Unstructured::new(bytes);
    match target {
        Target::SeedFile => seed_file_text(&mut u).unwrap_or_default(),
        Target::Set => set_case(&mut u)
            .map(|(s, seed, sets)| format!("--scenario {} --seed {seed} {}", s.name, flags(&sets)))
            .unwrap_or_default(),
        Target::MergeLine => merge_line_text(&mut u).unwrap_or_default(),
        Target::World => draw_world(&mut u, world_ms).map(|w| world_json(&w)).unwrap_or_default(),
    }
}

fn flags(sets: &[String]) -> String {
    sets.iter().map(|s| format!("--set {s:?}")).collect::<Vec<_>>().join(" ")
}

fn world_json(w: &WorldSpec) -> String {
    serde_json::to_string(w).expect("a world serialises")
}

/// Runs one case, a panic anywhere caught as a failure.
fn run_case(target: Target, bytes: &[u8], world_ms: u64) -> Verdict {
    let ran = catch_unwind(AssertUnwindSafe(|| {
        let mut u = Unstructured::new(bytes);
        match target {
            Target::SeedFile => seed_file_text(&mut u).map(|t| check_seed_file(&t)),
            Target::Set => set_case(&mut u).map(|(s, seed, sets)| check_set(&s, seed, &sets)),
            Target::MergeLine => merge_line_text(&mut u).map(|t| check_merge_line(&t)),
            Target::World => draw_world(&mut u, world_ms).map(check_world),
        }
    }));
    match ran {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(e)) => Verdict::Failure { input: String::new(), why: format!("the case could not be built: {e}") },
        Err(payload) => Verdict::Failure {
            input: input_of(target, bytes, world_ms),
            why: format!("PANIC: {}", sim::sweep::panic_message(payload.as_ref())),
        },
    }
}

/// A refusal must be one non-empty line.
fn refused(input: &str, message: &str) -> Verdict {
    if message.trim().is_empty() || message.chars().any(char::is_control) {
        return Verdict::Failure {
            input: input.to_owned(),
            why: format!("refused in not exactly one line: {message:?}"),
        };
    }
    Verdict::Refused
}

// ----- seed files -----

fn check_seed_file(text: &str) -> Verdict {
    match SeedFile::parse(text) {
        Err(message) => refused(text, &message),
        Ok(file) => match SeedFile::parse(&file.render()) {
            Ok(again) if again == file => Verdict::Accepted,
            other => Verdict::Failure {
                input: text.to_owned(),
                why: format!("accepted, but its rendering parses back as {:?}", other.map(|f| f.render())),
            },
        },
    }
}

fn seed_file_text(u: &mut Unstructured) -> arbitrary::Result<String> {
    let scenario = pick_scenario(u)?;
    let seed = small_seed(u)?;
    let bugs: Vec<String> = (0..u.int_in_range(0..=2)?)
        .map(|_| u.choose(&Bug::ALL).map(|b| b.name().to_owned()))
        .collect::<Result<_, _>>()?;
    let outcome = *u.choose(&[ExpectedOutcome::Pass, ExpectedOutcome::Violation, ExpectedOutcome::Panic])?;
    let checker = if outcome == ExpectedOutcome::Violation { Some("written-survives".to_owned()) } else { None };
    let file = SeedFile {
        format_version: FORMAT_VERSION,
        scenario: scenario.name.to_owned(),
        seed,
        bugs,
        overrides: Map::new(),
        expect: Expect { outcome, checker },
        note: "fuzz".into(),
        trace_hash: "0".into(),
        world: scenario.world(seed),
    };
    let mut value = serde_json::to_value(&file).expect("a seed file serialises");
    for _ in 0..u.int_in_range(0..=4)? {
        mutate_json(u, &mut value)?;
    }
    let mut text =
        if u.arbitrary()? { serde_json::to_string_pretty(&value).expect("JSON serialises") } else { value.to_string() };
    if u.ratio(1, 8)? {
        mutate_bytes(u, &mut text)?;
    }
    Ok(text)
}

// ----- --set -----

fn set_case(u: &mut Unstructured) -> arbitrary::Result<(Scenario, u64, Vec<String>)> {
    let scenario = pick_scenario(u)?;
    let seed = small_seed(u)?;
    let world = scenario.world(seed);
    let Value::Object(fields) = serde_json::to_value(&world).expect("a world serialises") else {
        unreachable!("a world is an object")
    };
    let knobs: Vec<&String> = fields.keys().collect();
    let ranges = sim::world::knob_ranges(&world);
    let mut sets = Vec::new();
    for _ in 0..u.int_in_range(1..=3)? {
        let knob = match u.int_in_range(0..=9)? {
            0 => hostile_string(u)?,
            _ => (*u.choose(&knobs)?).clone(),
        };
        let value = match u.int_in_range(0..=5)? {
            // Just inside or outside the knob's range.
            0 | 1 => match ranges.iter().find(|(k, _, _)| *k == knob) {
                Some((_, min, max)) => {
                    let edges = [min.saturating_sub(1), *min, *max, max.saturating_add(1), u64::MAX];
                    u.choose(&edges)?.to_string()
                }
                None => hostile_value(u, 0)?.to_string(),
            },
            2 => hostile_string(u)?,
            _ => hostile_value(u, 0)?.to_string(),
        };
        let separator = if u.ratio(1, 16)? { "" } else { "=" };
        sets.push(format!("{knob}{separator}{value}"));
    }
    Ok((scenario, seed, sets))
}

fn check_set(scenario: &Scenario, seed: u64, sets: &[String]) -> Verdict {
    let input = format!("--scenario {} --seed {seed} {}", scenario.name, flags(sets));
    let mut overrides = Map::new();
    for set in sets {
        if let Err(message) = seedfile::parse_override(set, &mut overrides) {
            return refused(&input, &message);
        }
    }
    let world = match world_with(scenario, seed, &overrides) {
        Ok(w) => w,
        Err(message) => return refused(&input, &message),
    };
    // A reproduce line spells each override `--set K=V` with V as JSON: it must give the same world.
    let mut again = Map::new();
    for (knob, value) in &overrides {
        if let Err(message) = seedfile::parse_override(&format!("{knob}={value}"), &mut again) {
            return Verdict::Failure { input, why: format!("its reproduce flag is refused: {message}") };
        }
    }
    match world_with(scenario, seed, &again) {
        Ok(w) if w == world => Verdict::Accepted,
        other => Verdict::Failure { input, why: format!("its reproduce flags give another world: {other:?}") },
    }
}

fn world_with(scenario: &Scenario, seed: u64, overrides: &Map<String, Value>) -> Result<WorldSpec, String> {
    let world = seedfile::apply_overrides(&scenario.world(seed), overrides)?;
    WorldConfig::new(world.clone(), raft_core::Bugs::none()).validate()?;
    Ok(world)
}

// ----- explore --out lines -----

fn merge_line_text(u: &mut Unstructured) -> arbitrary::Result<String> {
    let scenario = pick_scenario(u)?;
    let first = small_seed(u)?;
    let end = first + u.int_in_range(1..=100_000)?;
    let shards = u.int_in_range(1..=64)?;
    let shard = u.int_in_range(0..=shards - 1)?;
    let seed = first + shard + shards * u.int_in_range(0..=(end - first) / shards)?;
    let outcome = *u.choose(&["pass", "violation", "panic", "nondeterministic"])?;
    let mut value = json!({
        "seed": seed, "scenario": scenario.name, "bugs": [], "overrides": {}, "outcome": outcome,
        "checker": if outcome == "violation" { json!("converges") } else { Value::Null },
        "node": Value::Null, "detail": Value::Null, "sim_time_ns": 1_000_000_u64, "events": 10, "trace_hash": "0",
        "wall_ms": 3, "exit_code": if outcome == "pass" { 0 } else { 10 },
        "reproduce": format!("sim run --scenario {} --seed {seed}", scenario.name),
        "seeds": format!("{first}..{end}"), "shard": format!("{shard}/{shards}"),
    });
    for _ in 0..u.int_in_range(0..=3)? {
        mutate_json(u, &mut value)?;
    }
    let mut text = value.to_string();
    if u.ratio(1, 8)? {
        mutate_bytes(u, &mut text)?;
    }
    Ok(text)
}

fn check_merge_line(text: &str) -> Verdict {
    match merge::parse_seed_line(text, "fuzz:1".into()) {
        Err(message) => refused(text, &message),
        // `merge --json` prints an accepted line's text as it kept it, to be merged again: it must read
        // back as the same exploration and seed.
        Ok((e, line)) => match merge::parse_seed_line(&line.text, "fuzz:2".into()) {
            Ok((e2, l2))
                if e2 == e
                    && (l2.seed, l2.shard, &l2.outcome, l2.exit_code)
                        == (line.seed, line.shard, &line.outcome, line.exit_code) =>
            {
                Verdict::Accepted
            }
            other => Verdict::Failure {
                input: text.to_owned(),
                why: format!(
                    "accepted, but the text merge keeps reads back otherwise: {:?}",
                    other.map(|(_, l)| l.seed)
                ),
            },
        },
    }
}

// ----- whole worlds -----

/// A world with every bounded knob kept or drawn inside its range (log-uniformly, so small values are
/// common and the extremes are reached), a random crash model, the run phases within `world_ms`, and in
/// half the worlds a few planned faults.
fn draw_world(u: &mut Unstructured, world_ms: u64) -> arbitrary::Result<WorldSpec> {
    let seed = small_seed(u)?;
    let mut world = scenarios::base(seed);
    let Value::Object(mut fields) = serde_json::to_value(&world).expect("a world serialises") else {
        unreachable!("a world is an object")
    };
    // In table order: a knob whose range depends on an earlier one (latency, election timeout) sees it.
    for (knob, _, _) in sim::world::knob_ranges(&world) {
        if !u.arbitrary::<bool>()? {
            continue;
        }
        let (min, max) = range_of(&world, knob);
        let max = match knob {
            "safety_ms" | "liveness_ms" | "liveness_workload_ms" => max.min(world_ms / 2),
            _ => max,
        };
        let value = log_uniform(u, min, max.max(min))?;
        fields.insert(knob.to_owned(), Value::from(value));
        world = serde_json::from_value(Value::Object(fields.clone())).expect("an in-range knob deserialises");
    }
    // A knob left as it was may now lie below a range an earlier draw moved (latency_max_us below a
    // drawn latency_min_us): brought inside, in table order.
    for (knob, _, _) in sim::world::knob_ranges(&world) {
        let (min, max) = range_of(&world, knob);
        if let Some(value) = fields.get(knob).and_then(Value::as_u64)
            && (value < min || value > max)
        {
            fields.insert(knob.to_owned(), Value::from(value.clamp(min, max)));
            world = serde_json::from_value(Value::Object(fields.clone())).expect("an in-range knob deserialises");
        }
    }
    world.crash_model = *u.choose(&scenarios::CrashModel::ALL)?;
    // A short run that still does something: safety and liveness phases of 100 ms or more each. The
    // liveness checkers judge the world's own knobs: a stagger or an election timeout beyond the run is
    // a `converges` verdict, not a failure.
    let half = (world_ms / 2).max(1);
    world.safety_ms = log_uniform(u, 100.min(half), half)?;
    world.liveness_ms = log_uniform(u, 100.min(half), half)?;
    world.liveness_workload_ms = world.liveness_workload_ms.min(world.liveness_ms);
    // Half the worlds also get planned faults: each a fault some catalogue scenario plans (power cuts at
    // a call, disk errors, slow disks, isolations, membership changes, …), moved to a random node and time.
    if u.arbitrary()? {
        let pool: Vec<scenarios::PlannedFault> =
            scenarios::catalogue().iter().flat_map(|s| s.world(seed).fault_plan).collect();
        let run_ms = (world.safety_ms + world.liveness_ms).max(1);
        for _ in 0..u.int_in_range(1..=6)? {
            let mut p = u.choose(&pool)?.clone();
            p.node = u.int_in_range(0..=world.nodes.saturating_sub(1))?;
            p.at_ms = u.int_in_range(0..=run_ms - 1)?;
            p.plus_ns = u.int_in_range(0..=999_999)?;
            world.fault_plan.push(p);
        }
        world.fault_plan.sort_by_key(|p| (p.at_ms, p.plus_ns));
    }
    Ok(world)
}

/// The checkers whose verdict a drawn world can earn by its knobs alone.
const LIVENESS_CHECKERS: [&str; 2] = ["converges", "lagging-follower-caught-up"];

fn check_world(world: WorldSpec) -> Verdict {
    let input = world_json(&world);
    // `corrupting` power cuts garble synced data too (hardware loss no checker may blame on the software;
    // the engine never draws it): any verdict is the world's own doing.
    let hardware_loss = world.crash_model == scenarios::CrashModel::Corrupting;
    let config = WorldConfig::new(world, raft_core::Bugs::none());
    if let Err(message) = config.validate() {
        return refused(&input, &message);
    }
    match run_world(config) {
        Ok(r) => match r.outcome {
            Outcome::Pass => Verdict::Accepted,
            // A liveness verdict can be the world's own doing (a stagger or an election timeout beyond
            // the run); a safety verdict with no switch on and no hardware loss is a finding — or a false
            // alarm — either way a failure of the case.
            Outcome::Violation(v) if hardware_loss || LIVENESS_CHECKERS.contains(&v.checker.as_str()) => {
                Verdict::Violation(v.checker)
            }
            Outcome::Violation(v) => Verdict::Failure {
                input,
                why: format!(
                    "VIOLATION {} on {} with no switch: {}",
                    v.checker,
                    v.node,
                    v.detail.lines().next().unwrap_or("")
                ),
            },
        },
        Err(panic) => Verdict::Failure { input, why: format!("PANIC in the system under test: {panic}") },
    }
}

/// `knob`'s accepted range in `world` (a lower end can depend on other knobs).
fn range_of(world: &WorldSpec, knob: &str) -> (u64, u64) {
    sim::world::knob_ranges(world)
        .into_iter()
        .find(|(k, _, _)| *k == knob)
        .map(|(_, min, max)| (min, max))
        .expect("the knob is in the table")
}

/// `min..=max`, the binary exponent uniform: as likely 1..2 as 1,024..2,048.
fn log_uniform(u: &mut Unstructured, min: u64, max: u64) -> arbitrary::Result<u64> {
    let bits_of = |x: u64| 64 - x.leading_zeros();
    let bits = u.int_in_range(bits_of(min)..=bits_of(max))?;
    let (lo, hi) = match bits {
        0 => (0, 0),
        64 => (1 << 63, u64::MAX),
        b => (1 << (b - 1), (1 << b) - 1),
    };
    u.int_in_range(lo.clamp(min, max)..=hi.clamp(min, max))
}

// ----- shared pieces -----

fn pick_scenario(u: &mut Unstructured) -> arbitrary::Result<Scenario> {
    let catalogue = scenarios::catalogue();
    Ok(*u.choose(&catalogue)?)
}

fn small_seed(u: &mut Unstructured) -> arbitrary::Result<u64> {
    u.int_in_range(0..=1_000)
}

/// Replaces, removes or adds one node somewhere in `node`.
fn mutate_json(u: &mut Unstructured, node: &mut Value) -> arbitrary::Result<()> {
    let descend = u.ratio(2, 3)?;
    match node {
        Value::Object(map) if descend && !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = u.choose(&keys)?.clone();
            if u.ratio(1, 6)? {
                map.remove(&key);
                return Ok(());
            }
            if u.ratio(1, 10)? {
                map.insert(hostile_string(u)?, hostile_value(u, 0)?);
                return Ok(());
            }
            return mutate_json(u, map.get_mut(&key).expect("the key is there"));
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = u.choose_index(items.len())?;
            if u.ratio(1, 6)? {
                items.remove(i);
                return Ok(());
            }
            if u.ratio(1, 10)? {
                let copy = items[i].clone();
                items.push(copy);
                return Ok(());
            }
            return mutate_json(u, &mut items[i]);
        }
        _ => {}
    }
    *node = hostile_value(u, 0)?;
    Ok(())
}

/// Truncates the text, or puts garbage in it.
fn mutate_bytes(u: &mut Unstructured, text: &mut String) -> arbitrary::Result<()> {
    let at = |u: &mut Unstructured, text: &String| -> arbitrary::Result<usize> {
        let mut i = u.int_in_range(0..=text.len())?;
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        Ok(i)
    };
    match u.int_in_range(0..=2)? {
        0 => {
            let i = at(u, text)?;
            text.truncate(i);
        }
        1 => {
            let i = at(u, text)?;
            let garbage = hostile_string(u)?;
            text.insert_str(i, &garbage);
        }
        _ => {
            let i = at(u, text)?;
            text.insert_str(i, &"[".repeat(u.int_in_range(1..=300)?));
        }
    }
    Ok(())
}

/// Numbers at the edges of every integer type and of JSON's floats.
const HOSTILE_NUMBERS: [&str; 16] = [
    "0",
    "1",
    "-1",
    "255",
    "65536",
    "2147483648",
    "4294967296",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "1e308",
    "-0.0",
    "0.5",
    "1e-300",
    "123456789012345678901234567890",
];

fn hostile_value(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=9)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 | 3 => {
            let text = u.choose(&HOSTILE_NUMBERS)?;
            serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String((*text).to_owned()))
        }
        4 => Value::Number(Number::from(u.arbitrary::<u64>()?)),
        5 => Value::Number(Number::from(u.arbitrary::<i64>()?)),
        6 | 7 => Value::String(hostile_string(u)?),
        8 if depth < 3 => {
            Value::Array((0..u.int_in_range(0..=4)?).map(|_| hostile_value(u, depth + 1)).collect::<Result<_, _>>()?)
        }
        _ if depth < 3 => {
            let mut map = Map::new();
            for _ in 0..u.int_in_range(0..=3)? {
                map.insert(hostile_string(u)?, hostile_value(u, depth + 1)?);
            }
            Value::Object(map)
        }
        _ => Value::Null,
    })
}

/// Names the parsers know (knobs, switches, scenarios, crash models, calls), near misses, and garbage.
fn hostile_string(u: &mut Unstructured) -> arbitrary::Result<String> {
    const WORDS: [&str; 20] = [
        "nodes",
        "groups",
        "fault_plan",
        "crash_model",
        "pessimistic",
        "swarm",
        "recovery/torn-wal-tail",
        "fsync",
        "fsync_dir",
        "*/snapshots/**",
        "config-no-dir-sync",
        "0..10",
        "3/2",
        "",
        " ",
        "=",
        "\u{0}",
        "\u{1F4A5}",
        "\u{FEFF}nodes",
        "NaN",
    ];
    Ok(match u.int_in_range(0..=3)? {
        0 | 1 => (*u.choose(&WORDS)?).to_owned(),
        2 => u.arbitrary::<String>()?,
        _ => {
            let word = *u.choose(&WORDS)?;
            word.repeat(u.int_in_range(2..=50)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_one_non_empty_line() {
        assert!(matches!(refused("in", "knob: 0 is outside 1..=15"), Verdict::Refused));
        for bad in ["", "  ", "unknown field `a\nb`", "two\nlines\n"] {
            assert!(matches!(refused("in", bad), Verdict::Failure { .. }), "{bad:?}");
        }
    }

    #[test]
    fn log_uniform_stays_in_range_and_reaches_both_ends() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(40_000).collect();
        let mut u = Unstructured::new(&bytes);
        let (mut low, mut high) = (false, false);
        for _ in 0..2_000 {
            let x = log_uniform(&mut u, 3, 1_000_000).unwrap();
            assert!((3..=1_000_000).contains(&x), "{x}");
            low |= x < 10;
            high |= x > 100_000;
        }
        assert!(low && high);
        assert_eq!(log_uniform(&mut u, 7, 7).unwrap(), 7);
        assert!(log_uniform(&mut u, 0, u64::MAX).is_ok());
    }
}
