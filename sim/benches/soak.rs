//! The soak: one world run for a long simulated time (a day by default) with a steady workload, snapshots
//! on and a fault every two seconds, sampling the process's resident memory as simulated time passes —
//! to show that what the harness holds is bounded by the work in flight, not by how long the run is.
//!
//! `cargo bench -p sim --bench soak -- [--hours H] [--sample-minutes M]` prints one tab-separated line per
//! sample: simulated hours, resident MiB (`VmRSS`), events so far, wall seconds, and the sizes of what
//! the world holds that could grow with the run (`World::retained`: client history operations held,
//! trace lines, unknown operations carried, unanswered requests, indexes the log-shape records keep);
//! then the run's client and history counts. `cargo xtask bench
//! --soak-hours H` runs it and draws the plot in BENCHMARKS.md.
#![allow(clippy::disallowed_methods, clippy::disallowed_types, clippy::print_stdout, missing_docs)]

use std::time::Instant;

use raft_core::Bugs;
use scenarios::{CrashModel, WorldSpec};
use sim::{World, WorldConfig};

/// The soak's world: three nodes, one group, a put/get/cas every 20 ms on 8 keys (values up to 1 KiB),
/// a snapshot every 50 applied entries, and a power loss, VM crash, WAL restart or isolation about every
/// 2 s of the whole run.
fn world(hours: f64) -> WorldSpec {
    WorldSpec {
        safety_ms: (hours * 3_600_000.0) as u64,
        client_interval_ms: 20,
        value_size_max_bytes: 1 << 10,
        fault_every_ms: 2_000,
        power_loss_weight: 1,
        vm_crash_weight: 1,
        wal_restart_weight: 1,
        partition_weight: 1,
        crash_model: CrashModel::Pessimistic,
        ..scenarios::base(1)
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let hours: f64 = arg("--hours").map_or(24.0, |h| h.parse().expect("--hours H"));
    let sample_ns: u64 =
        arg("--sample-minutes").map_or(15, |m| m.parse::<u64>().expect("--sample-minutes M")) * 60_000_000_000;
    let cfg = WorldConfig::new(world(hours), Bugs::none());
    cfg.validate().expect("the soak's world is valid");
    let start = Instant::now();
    let mut world = World::new(cfg);
    let mut next = 0u64;
    let mut steps = 0u64;
    println!(
        "sim_hours\trss_mib\tsteps\twall_s\thistory_ops\ttrace_lines\tunknown_carried\tunanswered\twritten_indexes"
    );
    let sample = |w: &World, steps: u64| {
        let r = w.retained();
        println!(
            "{:.3}\t{:.1}\t{steps}\t{:.1}\t{}\t{}\t{}\t{}\t{}",
            w.now_ns() as f64 / 3.6e12,
            rss_mib(),
            start.elapsed().as_secs_f64(),
            r.history_ops,
            r.trace_lines,
            r.unknown_carried,
            r.unanswered,
            r.written_indexes,
        );
    };
    while world.step() {
        steps += 1;
        if world.now_ns() >= next {
            sample(&world, steps);
            next += sample_ns;
        }
    }
    sample(&world, steps);
    let result = world.finish();
    println!("# outcome: {:?}; {} events; wall {:.1} s", result.outcome, result.events, start.elapsed().as_secs_f64());
    println!("# written horizon indexes: {}", sim::checkers::WRITTEN_HORIZON_INDEXES);
    println!("# trace keep lines: {}", sim::world::TRACE_KEEP_LINES);
    println!("# max recorded faults: {}", sim::world::MAX_RECORDED_FAULTS);
    for (name, n) in &result.coverage {
        if name.contains("history") || name.contains("client") || name.contains("unknown operations") {
            println!("# {name}: {n}");
        }
    }
}
