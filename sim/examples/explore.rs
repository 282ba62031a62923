//! A first exploration until the `sim` CLI exists (issue 7): runs 3-node clusters under frequent power
//! losses for a range of seeds, with no bug switch and with each of Ra's pre-fix switches, and prints
//! which seeds each one fails and why.
//!
//! `cargo run --release -p sim --example explore -- [--seeds N] [--model pessimistic|lose_unsynced|ext4_ordered]`
#![allow(clippy::print_stdout, missing_docs)]

use raft_core::{Bug, Bugs};
use sim::world::run;
use sim::{Outcome, WorldConfig};
use vfs::CrashModel;

fn config(seed: u64, model: CrashModel, bugs: Bugs) -> WorldConfig {
    WorldConfig {
        seed,
        nodes: 3,
        wal_max_size_bytes: 8 << 10,
        segment_max_count: 32,
        snapshot_interval: 40,
        latency_min_us: 200,
        latency_max_us: 2_000,
        step_cost_us: 20,
        heartbeat_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        client_interval_ms: 5,
        keys: 8,
        clients: 0,
        client_timeout_ms: 1_000,
        safety_ms: 60_000,
        liveness_ms: 70_000,
        liveness_workload_ms: 1_000,
        contact_bound_ms: 4_900,
        fault_every_ms: 700,
        power_loss_weight: 1,
        vm_crash_weight: 0,
        wal_restart_weight: 0,
        partition_weight: 0,
        crash_point_weight: 0,
        recovery_crash_percent: 0,
        one_way_partition_weight: 0,
        segment_writer_crash_weight: 0,
        message_loss_percent: 0,
        message_duplicate_percent: 0,
        message_reorder_percent: 0,
        partition_ms: 1_000,
        restart_after_ms: 300,
        crash_model: model,
        bugs,
        trace_messages: false,
        trace_fs: false,
        fault_plan: Vec::new(),
        groups: 1,
        group_stagger_ms: 0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seeds: u64 = arg("--seeds").map(|s| s.parse().expect("--seeds N")).unwrap_or(20);
    let model = match arg("--model").as_deref() {
        None | Some("pessimistic") => CrashModel::Pessimistic,
        Some("lose_unsynced") => CrashModel::LoseUnsynced,
        Some("ext4_ordered") => CrashModel::Ext4Ordered,
        Some(other) => panic!("unknown crash model {other}"),
    };
    println!(
        "3 nodes, a power loss every ~0.7 s ({} model), 60 s of faults then healed until converged (bound 70 s), seeds 0..{seeds}\n",
        model.name()
    );
    println!("| switch | seeds failing | first failure |");
    println!("|---|---|---|");
    let mut switches: Vec<(String, Bugs)> = vec![("(none)".into(), Bugs::none())];
    switches.extend(Bug::ALL.iter().map(|b| (b.name().to_owned(), Bugs::of(&[*b]))));
    // Ra 3.0.1 had fix 2's bug *and* the unsynced WAL unlink, which leaves several WAL files at boot
    // far more often than raft-core's synced unlink does.
    switches.push((
        "wal-recovery-rescan + wal-unlink-no-dir-sync".into(),
        Bugs::of(&[Bug::WalRecoveryRescan, Bug::WalUnlinkNoDirSync]),
    ));
    for (name, bugs) in switches {
        let mut failing = Vec::new();
        let mut first = String::from("—");
        let mut events = 0;
        for seed in 0..seeds {
            let r = run(config(seed, model, bugs.clone()));
            events += r.events;
            if let Outcome::Violation(v) = r.outcome {
                if failing.is_empty() {
                    first = format!("seed {seed}: {} on {} — {}", v.checker, v.node, v.detail);
                }
                failing.push(seed);
            }
        }
        println!("| {name} | {}/{seeds} {:?} | {first} |", failing.len(), failing);
        let _ = events;
    }
}
