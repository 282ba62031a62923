//! The simulator as a mutation-testing oracle (`cargo xtask mutants`): bounded runs with no bug switch
//! that must all pass — swarm seeds, every named scenario's first seeds, and every seed file's world
//! with its switches off (each such file is a world some bug once failed, which the fixed code passes).
//! A mutant of `raft-core` is caught when any of them fails: a checker's violation or a panic.
//!
//! Not run by `cargo test` (`test = false` in `sim/Cargo.toml`): cargo-mutants selects it with
//! `--test mutation_oracle`, once per mutant. What it costs, timed on the unmutated tree at 5615d53 with
//! the `mutants` profile on two idle cores: 60–68 s of wall time (130 s of CPU: each swarm half 45–58 s,
//! the seed files 19 s, the named scenarios 8 s; libtest runs the short two first, then a swarm half
//! beside each). A mutant's rebuild takes seconds, so a mutant the oracle misses costs about a minute,
//! and a shard of a twentieth of the selection one to two hours; each test stops at its first failure,
//! so a caught mutant costs less. (It took about 20 s when swarm's worlds were smaller; swarm's segment
//! sizing, media faults and the later knobs made each world dearer.)
// Reads the seed files of `seeds/`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use raft_core::Bugs;
use scenarios::WorldSpec;
use sim::{Outcome, WorldConfig};

/// Swarm seeds per half (two halves run side by side).
const SWARM_SEEDS_PER_HALF: u64 = 250;
/// Seeds of each named scenario.
const SCENARIO_SEEDS: u64 = 3;

/// Runs one world with no switch; `Err` says how it failed.
fn passes(what: &str, spec: WorldSpec) -> Result<(), String> {
    let config = WorldConfig::new(spec, Bugs::none());
    config.validate().map_err(|e| format!("{what}: invalid world: {e}"))?;
    match catch_unwind(AssertUnwindSafe(|| sim::run(config))) {
        Ok(r) => match r.outcome {
            Outcome::Pass => Ok(()),
            Outcome::Violation(v) => Err(format!("{what}: {} on {}: {}", v.checker, v.node, v.detail)),
        },
        Err(payload) => Err(format!("{what}: panic: {}", sim::sweep::panic_message(payload.as_ref()))),
    }
}

/// Runs each world until the first failure, which fails the test.
fn all_pass(worlds: impl Iterator<Item = (String, WorldSpec)>) {
    for (what, spec) in worlds {
        if let Err(e) = passes(&what, spec) {
            panic!("caught: {e}");
        }
    }
}

fn swarm(seeds: std::ops::Range<u64>) -> impl Iterator<Item = (String, WorldSpec)> {
    seeds.map(|seed| (format!("swarm seed {seed}"), scenarios::swarm(seed)))
}

#[test]
fn swarm_first_half() {
    all_pass(swarm(0..SWARM_SEEDS_PER_HALF));
}

#[test]
fn swarm_second_half() {
    all_pass(swarm(SWARM_SEEDS_PER_HALF..2 * SWARM_SEEDS_PER_HALF));
}

#[test]
fn every_named_scenario() {
    all_pass(
        scenarios::catalogue()
            .iter()
            .filter(|s| s.name != "swarm")
            .flat_map(|s| (0..SCENARIO_SEEDS).map(move |seed| (format!("{} seed {seed}", s.name), s.world(seed)))),
    );
}

#[test]
fn every_seed_file_with_its_switches_off() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("seeds/")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    all_pass(names.into_iter().map(|name| {
        let text = std::fs::read_to_string(dir.join(&name)).expect("readable");
        let file = sim::seedfile::SeedFile::parse(&text).expect("a seed file");
        (name, file.world)
    }));
}
