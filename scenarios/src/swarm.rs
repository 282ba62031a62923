//! Swarm testing: one seed decides a whole random world. Each new knob is drawn after the older ones, so
//! that adding it leaves every earlier seed's other knobs as they were.

use crate::rng::{below, stream};
use crate::{CrashModel, WorldSpec};

/// Swarm testing: a random world per seed — cluster size, WAL and segment sizes, snapshot interval,
/// latency, fault rate and mix, crash model, workload — every probability an integer ratio.
pub fn swarm(seed: u64) -> WorldSpec {
    let mut world = first_draws(seed);
    crowd(seed, &mut world);
    world
}

/// A crowded node, drawn from its own stream so that it changes no earlier draw: one seed in four hosts
/// many groups (RabbitMQ puts every quorum queue of a vhost in one Ra system, so hundreds of servers share
/// a WAL) created 100 or 400 ms apart. Each creation registers a new server and casts its first entry
/// into a WAL that the other groups' appends keep rolling over — the interleaving of starting a server
/// with roll-overs, which two or three groups reach too rarely for swarm to find what it breaks.
fn crowd(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0xC20D);
    let mut pick = |choices: &[u64]| choices[below(&mut rng, choices.len() as u64) as usize];
    if pick(&[0, 0, 0, 1]) == 1 {
        world.groups = pick(&[6, 12]) as usize;
        world.group_stagger_ms = pick(&[100, 400]);
    }
}

/// Every knob, in the order the knobs were added.
fn first_draws(seed: u64) -> WorldSpec {
    let mut rng = stream(seed, 0x5_7A_8A);
    let mut pick = |choices: &[u64]| choices[below(&mut rng, choices.len() as u64) as usize];
    let nodes = pick(&[1, 3, 3, 3, 5]) as usize;
    let latency_min_us = pick(&[50, 200, 1_000]);
    let election_timeout_min_ms = pick(&[150, 300]);
    let crash_model = match pick(&[0, 0, 1, 1, 2, 3]) {
        0 => CrashModel::Pessimistic,
        1 => CrashModel::LoseUnsynced,
        2 => CrashModel::Ext4Ordered,
        _ => CrashModel::NoLoss,
    };
    WorldSpec {
        seed,
        nodes,
        wal_max_size_bytes: pick(&[4 << 10, 8 << 10, 16 << 10, 64 << 10, 1 << 20]),
        segment_max_count: pick(&[8, 32, 128, 4096]) as u16,
        snapshot_interval: pick(&[0, 10, 40, 200]),
        latency_min_us,
        latency_max_us: latency_min_us * pick(&[1, 4, 10]),
        // An actor step's simulated cost bounds a node's throughput (50 µs: 20,000 steps/s); with a client
        // every millisecond and snapshots every 10 entries that saturates a node, and the backlog then
        // needs longer than the liveness bound to drain. Swarm keeps the cluster below saturation.
        step_cost_us: pick(&[5, 10, 20]),
        heartbeat_ms: 50,
        election_timeout_min_ms,
        election_timeout_max_ms: election_timeout_min_ms * 2,
        client_interval_ms: pick(&[1, 5, 20]),
        keys: pick(&[1, 4, 16]) as u32,
        safety_ms: pick(&[2_000, 5_000]),
        // Ra's snapshot retry backoff reaches 60 s; the run ends as soon as the cluster converges.
        liveness_ms: 70_000,
        liveness_workload_ms: 1_000,
        contact_bound_ms: 4_900,
        fault_every_ms: pick(&[0, 300, 700, 2_000]),
        power_loss_weight: pick(&[0, 1, 3]) as u32,
        vm_crash_weight: pick(&[0, 1]) as u32,
        wal_restart_weight: pick(&[0, 1]) as u32,
        partition_weight: pick(&[0, 1]) as u32,
        partition_ms: pick(&[300, 1_000]),
        restart_after_ms: pick(&[100, 300, 1_000]),
        crash_model,
        fault_plan: Vec::new(),
        // Drawn last, so that adding this knob did not reorder the draws of the earlier ones.
        crash_point_weight: pick(&[0, 1, 3]) as u32,
        recovery_crash_percent: pick(&[0, 0, 20, 50]) as u32,
        one_way_partition_weight: pick(&[0, 0, 1]) as u32,
        message_loss_percent: pick(&[0, 0, 1, 5]) as u32,
        message_duplicate_percent: pick(&[0, 0, 1, 5]) as u32,
        message_reorder_percent: pick(&[0, 0, 0, 2]) as u32,
        clients: pick(&[0, 0, 2, 8]) as u32,
        client_timeout_ms: pick(&[300, 1_000, 3_000]),
        segment_writer_crash_weight: pick(&[0, 0, 1]) as u32,
        // Several groups share each node's WAL and segment writer; a staggered group registers a new
        // server while the others write and roll the WAL over.
        groups: pick(&[1, 1, 2, 3]) as usize,
        group_stagger_ms: pick(&[0, 0, 400, 1_500]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_one_seed_in_four_is_crowded_and_crowding_changes_only_the_group_knobs() {
        let crowded = (0..400)
            .filter(|&seed| {
                let (world, first) = (swarm(seed), first_draws(seed));
                let is_crowded = world != first;
                if is_crowded {
                    assert!(world.groups >= 6 && world.group_stagger_ms <= 400, "seed {seed}: {world:?}");
                    let restored =
                        WorldSpec { groups: first.groups, group_stagger_ms: first.group_stagger_ms, ..world };
                    assert_eq!(restored, first, "seed {seed}");
                }
                is_crowded
            })
            .count();
        assert!((70..130).contains(&crowded), "{crowded} of 400 crowded");
    }
}
