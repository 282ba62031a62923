//! Swarm exploration until the `sim` CLI exists (issue 7): every seed is a different random world
//! (`sim::swarm`). Lists failing seeds, or replays one seed with its trace.
//!
//! `cargo run --release -p sim --example swarm -- [--seeds A..B] [--bug NAME]`
//! `cargo run --release -p sim --example swarm -- --seed N [--bug NAME] [--node n1] [--messages] [--fs]`
//!   (prints the trace; `--messages` adds a MSG line per delivered or dropped message, `--fs` an FS line
//!   per filesystem call that changes or syncs a disk)
//! `cargo run --release -p sim --example swarm -- --seeds A..B --determinism`   (each seed run twice)
#![allow(clippy::print_stdout, missing_docs)]

use raft_core::{Bug, Bugs};
use sim::{Outcome, run, swarm};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let bugs = match arg("--bug") {
        Some(name) => Bugs::of(&[Bug::from_name(&name).unwrap_or_else(|| panic!("unknown bug switch {name}"))]),
        None => Bugs::none(),
    };
    if let Some(seed) = arg("--seed") {
        let seed: u64 = seed.parse().expect("--seed N");
        let node = arg("--node").unwrap_or_default();
        let mut cfg = swarm(seed, bugs);
        cfg.trace_messages = args.iter().any(|a| a == "--messages");
        cfg.trace_fs = args.iter().any(|a| a == "--fs");
        println!("{cfg:?}");
        let r = run(cfg);
        println!("{:?}\ncoverage {:?}\ntrace hash {:016x}, {} events\n", r.outcome, r.coverage, r.trace_hash, r.events);
        println!("{}\n", sim::trace::LEGEND);
        for line in r.trace.iter().filter(|l| l.contains(&node)) {
            println!("{line}");
        }
        return;
    }
    let range = arg("--seeds").unwrap_or_else(|| "0..100".into());
    let (a, b) = range.split_once("..").expect("--seeds A..B");
    let (a, b): (u64, u64) = (a.parse().expect("A"), b.parse().expect("B"));
    let mut failing = 0;
    let twice = args.iter().any(|a| a == "--determinism");
    let mut coverage: std::collections::BTreeMap<&'static str, (u64, u64)> = std::collections::BTreeMap::new();
    for seed in a..b {
        let cfg = swarm(seed, bugs.clone());
        if twice && let Err(d) = sim::check_determinism(&cfg) {
            failing += 1;
            println!("seed {seed}: not deterministic, first divergence at step {}: {:?}", d.event, d.last_lines);
            continue;
        }
        let r = run(cfg.clone());
        for (k, n) in &r.coverage {
            let e = coverage.entry(k).or_default();
            e.0 += n;
            e.1 += u64::from(*n > 0);
        }
        if let Outcome::Violation(v) = r.outcome {
            failing += 1;
            println!(
                "seed {seed}: {} on {} — {} | {} nodes, {} model, fault every {} ms",
                v.checker,
                v.node,
                v.detail,
                cfg.nodes,
                cfg.crash_model.name(),
                cfg.fault_every_ms
            );
        }
    }
    println!("coverage over the range (total, seeds where it happened):");
    for (k, (n, seeds)) in &coverage {
        println!("  {k}: {n} in {seeds} seeds");
    }
    let summed = coverage.iter().map(|(k, (n, _))| (*k, *n)).collect();
    println!("coverage marks missed: {:?}", sim::missed_marks(&summed));
    println!("{failing} of {} seeds failed", b - a);
}
