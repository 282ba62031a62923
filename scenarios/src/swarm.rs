//! Swarm testing: one seed decides a whole random world. Each new knob is drawn after the older ones, so
//! that adding it leaves every earlier seed's other knobs as they were.

use crate::rng::{below, stream};
use crate::{CrashModel, WorldSpec};

/// Swarm testing: a random world per seed — cluster size, WAL and segment sizes, snapshot interval,
/// latency, fault rate and mix, crash model, workload — every probability an integer ratio.
pub fn swarm(seed: u64) -> WorldSpec {
    let mut world = first_draws(seed);
    crowd(seed, &mut world);
    widen(seed, &mut world);
    churn(seed, &mut world);
    slow_log_restart(seed, &mut world);
    workload(seed, &mut world);
    snapshot_chunks(seed, &mut world);
    recovery_disk_errors(seed, &mut world);
    segment_sizing(seed, &mut world);
    media_rot(seed, &mut world);
    listing_errors(seed, &mut world);
    world
}

/// From its own stream: in half of the worlds that draw disk errors, a quarter or half of them fail a
/// directory listing (`listing_error_percent`) — the WAL's, a server's, its snapshots' — so that what
/// a process makes of a listing that fails (stop; never take the directory as empty or gone) is judged.
fn listing_errors(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0x1157_D1E5);
    let choices = [0, 0, 25, 50];
    let percent = choices[below(&mut rng, choices.len() as u64) as usize];
    if world.disk_error_weight > 0 {
        world.listing_error_percent = percent;
    }
}

/// From its own stream: in two of five worlds that can survive it — three nodes or more, random faults,
/// no membership churn — a random fault may be bit rot (`bit_rot_weight` 1 or 3): a bit of a durable
/// segment entry reads back flipped from a node's medium, so that what a log does with an entry whose
/// CRC fails (stop, never serve it) is judged.
fn media_rot(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0xB17_207);
    let choices = [0, 0, 0, 1, 3];
    let weight = choices[below(&mut rng, choices.len() as u64) as usize];
    if world.nodes >= 3 && world.fault_every_ms > 0 && world.membership_change_weight == 0 {
        world.bit_rot_weight = weight;
    }
}

/// From its own stream: in about half of the worlds segments are small by size (a few hundred bytes to
/// a few KiB, as Ra's `segment_max_size_bytes` allows), so that the segment writer rolls over by size
/// mid-flush; and independently, in about half, a segment writes its buffered appends every one to
/// eight entries (`segment_max_pending`), so that one flush writes a segment's data and index in
/// several pieces a power cut can fall between.
fn segment_sizing(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0x05E6_512E);
    let sizes = [crate::RA_SEGMENT_MAX_SIZE_BYTES, crate::RA_SEGMENT_MAX_SIZE_BYTES, 300, 2_000];
    world.segment_max_size_bytes = sizes[below(&mut rng, sizes.len() as u64) as usize];
    let pendings = [crate::RA_SEGMENT_MAX_PENDING, crate::RA_SEGMENT_MAX_PENDING, 1, 8];
    world.segment_max_pending = pendings[below(&mut rng, pendings.len() as u64) as usize];
}

/// From its own stream: in half of the worlds some reboots meet a failing disk — a read of the names
/// store, a config, the meta store, a snapshot, a segment or a WAL file fails with `EIO` — so that
/// what a boot makes of an unreadable file (stop, or take it as empty) is judged.
fn recovery_disk_errors(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0xD1_5C_B0);
    let choices = [0, 0, 20, 50];
    world.recovery_disk_error_percent = choices[below(&mut rng, choices.len() as u64) as usize];
}

/// From its own stream: in half of the worlds a leader sends its snapshot in chunks small enough that a
/// transfer takes several (16 or 64 bytes: the machine's state is at most a few hundred), so that
/// acknowledgements, timeouts and crashes fall between the chunks of one transfer.
fn snapshot_chunks(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0xC4_0C);
    let choices = [4096, 4096, 64, 16];
    world.snapshot_chunk_bytes = choices[below(&mut rng, choices.len() as u64) as usize];
}

/// From its own stream: in half of the worlds some compare-and-sets expect the value last written to
/// their key instead of an absent key, so that they succeed against values, not only on fresh keys.
fn workload(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0xCA5E);
    let choices = [0, 0, 50, 90];
    world.cas_expected_percent = choices[below(&mut rng, choices.len() as u64) as usize];
}

/// From its own stream: in half of the worlds a log supervisor restart leaves the WAL unregistered for
/// a while — under a second (the stores and the segment writer starting) or several (a segment writer
/// finishing its flush within its 30 s shutdown, pre-init of many servers), past the 5 s after which a
/// leader that cannot append hands its leadership over.
fn slow_log_restart(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0x1_06_5E);
    let choices = [0, 0, 0, 0, 50, 400, 2_000, 8_000];
    world.log_restart_ms = choices[below(&mut rng, choices.len() as u64) as usize];
}

/// Membership churn, from its own stream: in about half of the worlds with more than one node and
/// random faults, members leave and join their groups among the other faults (removed and re-added
/// members, promotions, a leader that removes itself).
fn churn(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0xC4_0122);
    let mut pick = |choices: &[u64]| choices[below(&mut rng, choices.len() as u64) as usize];
    let weight = pick(&[1, 1, 3]) as u32;
    if world.nodes > 1 && world.fault_every_ms > 0 && pick(&[0, 1]) == 1 {
        world.membership_change_weight = weight;
    }
}

/// Everything the named scenarios use that the first draws never reach, from its own stream (so the
/// earlier draws of every seed stay as they were): values of real sizes, 1–2 KiB WAL files (a restart
/// then falls between roll-overs, flushes and deletes), garbage in the sectors in flight at a power cut,
/// WAL restarts and segment writer crashes weighted so that they matter, a cut into the recovery of a
/// WAL restart, slow disks and disk errors — each alone in some worlds and together in others.
fn widen(seed: u64, world: &mut WorldSpec) {
    let mut rng = stream(seed, 0x21_D1_5C);
    let mut pick = |choices: &[u64]| choices[below(&mut rng, choices.len() as u64) as usize];
    world.value_size_max_bytes = pick(&[8, 8, 512, 8 << 10, 64 << 10, 256 << 10]);
    if pick(&[0, 0, 0, 1]) == 1 {
        world.wal_max_size_bytes = pick(&[1 << 10, 2 << 10]);
    }
    if pick(&[0, 0, 0, 1]) == 1 {
        world.crash_model = CrashModel::UnsyncedGarbage;
    }
    if pick(&[0, 0, 1]) == 1 {
        world.wal_restart_weight = 3;
    }
    if pick(&[0, 0, 0, 1]) == 1 {
        world.segment_writer_crash_weight = 2;
    }
    world.wal_recovery_cut_percent = pick(&[0, 0, 20, 50]) as u32;
    world.slow_disk_weight = pick(&[0, 0, 1, 3]) as u32;
    world.disk_error_weight = pick(&[0, 0, 1, 3]) as u32;
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
        // Drawn by `widen`, from its own stream.
        value_size_max_bytes: 8,
        disk_error_weight: 0,
        slow_disk_weight: 0,
        wal_recovery_cut_percent: 0,
        membership_change_weight: 0,
        log_restart_ms: 0,
        // Drawn by `workload` and `snapshot_chunks`, from their own streams.
        cas_expected_percent: 0,
        snapshot_chunk_bytes: 4096,
        // Drawn by `recovery_disk_errors`, from its own stream.
        recovery_disk_error_percent: 0,
        // Drawn by `segment_sizing`, from its own stream.
        segment_max_size_bytes: crate::RA_SEGMENT_MAX_SIZE_BYTES,
        segment_max_pending: crate::RA_SEGMENT_MAX_PENDING,
        // Drawn by `media_rot`, from its own stream.
        bit_rot_weight: 0,
        // Drawn by `listing_errors`, from its own stream.
        listing_error_percent: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_one_seed_in_four_is_crowded_and_crowding_changes_only_the_group_knobs() {
        let crowded = (0..400)
            .filter(|&seed| {
                let first = first_draws(seed);
                let mut world = first.clone();
                crowd(seed, &mut world);
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

    #[test]
    fn widening_changes_only_its_own_knobs_and_reaches_each_of_them() {
        let mut reached = [0; 7];
        for seed in 0..400 {
            let mut before = first_draws(seed);
            crowd(seed, &mut before);
            let world = swarm(seed);
            let restored = WorldSpec {
                value_size_max_bytes: before.value_size_max_bytes,
                wal_max_size_bytes: before.wal_max_size_bytes,
                crash_model: before.crash_model,
                wal_restart_weight: before.wal_restart_weight,
                segment_writer_crash_weight: before.segment_writer_crash_weight,
                wal_recovery_cut_percent: before.wal_recovery_cut_percent,
                slow_disk_weight: before.slow_disk_weight,
                disk_error_weight: before.disk_error_weight,
                membership_change_weight: before.membership_change_weight,
                log_restart_ms: before.log_restart_ms,
                cas_expected_percent: before.cas_expected_percent,
                snapshot_chunk_bytes: before.snapshot_chunk_bytes,
                recovery_disk_error_percent: before.recovery_disk_error_percent,
                segment_max_size_bytes: before.segment_max_size_bytes,
                segment_max_pending: before.segment_max_pending,
                bit_rot_weight: before.bit_rot_weight,
                listing_error_percent: before.listing_error_percent,
                ..world.clone()
            };
            assert_eq!(restored, before, "seed {seed}");
            let hits = [
                world.value_size_max_bytes >= 64 << 10,
                world.wal_max_size_bytes <= 2 << 10,
                world.crash_model == CrashModel::UnsyncedGarbage,
                world.wal_restart_weight == 3,
                world.wal_recovery_cut_percent > 0,
                world.slow_disk_weight > 0,
                world.disk_error_weight > 0,
            ];
            for (k, hit) in hits.iter().enumerate() {
                reached[k] += usize::from(*hit);
            }
        }
        assert!(reached.iter().all(|&n| n >= 40), "each widened knob in at least one world in ten: {reached:?}");
    }

    #[test]
    fn each_knob_of_its_own_stream_is_on_in_about_half_of_the_worlds() {
        let drawn: Vec<u32> = (0..400).map(|seed| swarm(seed).cas_expected_percent).collect();
        let on_values = drawn.iter().filter(|&&p| p > 0).count();
        assert!((150..250).contains(&on_values), "{on_values} of 400");
        assert!(drawn.iter().all(|p| [0, 50, 90].contains(p)), "{drawn:?}");
        let chunked = (0..400).filter(|&seed| swarm(seed).snapshot_chunk_bytes < 4096).count();
        assert!((150..250).contains(&chunked), "{chunked} of 400 with small snapshot chunks");
        let failing = (0..400).filter(|&seed| swarm(seed).recovery_disk_error_percent > 0).count();
        assert!((150..250).contains(&failing), "{failing} of 400 with disk errors in recoveries");
        let small = (0..400).filter(|&seed| swarm(seed).segment_max_size_bytes < 1 << 20).count();
        assert!((150..250).contains(&small), "{small} of 400 with small segments");
        let piecewise = (0..400).filter(|&seed| swarm(seed).segment_max_pending < 1024).count();
        assert!((150..250).contains(&piecewise), "{piecewise} of 400 writing segments in pieces");
    }

    #[test]
    fn media_rot_is_drawn_only_in_worlds_that_survive_a_rotted_node() {
        let rotted: Vec<WorldSpec> = (0..1000).map(swarm).filter(|w| w.bit_rot_weight > 0).collect();
        for w in &rotted {
            assert!(w.nodes >= 3 && w.fault_every_ms > 0 && w.membership_change_weight == 0, "{w:?}");
            assert!([1, 3].contains(&w.bit_rot_weight), "{w:?}");
        }
        assert!((60..200).contains(&rotted.len()), "{} of 1000 worlds with rot", rotted.len());
    }

    #[test]
    fn listing_errors_are_drawn_in_about_half_of_the_worlds_with_disk_errors_and_only_there() {
        let worlds: Vec<WorldSpec> = (0..1000).map(swarm).collect();
        let with_disk_errors = worlds.iter().filter(|w| w.disk_error_weight > 0).count();
        let listing: Vec<&WorldSpec> = worlds.iter().filter(|w| w.listing_error_percent > 0).collect();
        for w in &listing {
            assert!(w.disk_error_weight > 0 && [25, 50].contains(&w.listing_error_percent), "{w:?}");
        }
        let share = listing.len() * 100 / with_disk_errors.max(1);
        assert!((35..65).contains(&share), "{} of {with_disk_errors} worlds with disk errors", listing.len());
    }
}
