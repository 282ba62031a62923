//! The accepted range of every knob of a world, and of every planned fault: what `WorldConfig::validate`
//! holds a seed file, a `--set` and a scenario to, so that a bad world is refused in one line naming the
//! knob, its value and the range, before it can hang a run or exhaust the machine (knob by knob, and for
//! what grows with the run, jointly: the client operations a run keeps).
//!
//! Ranges come from what Ra and RabbitMQ run, with headroom, not from what the tests happen to use
//! (Ra 3.1.10: `src/ra.hrl`, `src/ra_server_proc.erl`; RabbitMQ 4.0's documented defaults). Where the
//! harness goes beyond Ra on purpose (WAL files far below Ra's minimum, to roll over often), the range
//! says so.
//!
//! Owns: the table of knob ranges and the fault plan's checks. Must not run anything.

use scenarios::{CutAt, Fault, WorldSpec};

/// A simulated day: the longest phase, stagger or fault duration accepted (the soak's length).
const DAY_MS: u64 = 86_400_000;

/// One knob's accepted range and where it comes from.
struct Bound {
    knob: &'static str,
    value: Read,
    min: fn(&WorldSpec) -> u64,
    max: u64,
    why: &'static str,
}

/// How a knob is read from a world.
enum Read {
    U64(fn(&WorldSpec) -> u64),
    U32(fn(&WorldSpec) -> u32),
}

impl Read {
    fn of(&self, s: &WorldSpec) -> u64 {
        match self {
            Read::U64(f) => f(s),
            Read::U32(f) => u64::from(f(s)),
        }
    }
}

/// A relative weight among the random faults.
const fn weight(knob: &'static str, value: fn(&WorldSpec) -> u32) -> Bound {
    Bound { knob, value: Read::U32(value), min: |_| 0, max: 1_000, why: "a relative weight" }
}

/// A percentage.
const fn percent(knob: &'static str, value: fn(&WorldSpec) -> u32) -> Bound {
    Bound { knob, value: Read::U32(value), min: |_| 0, max: 100, why: "a percentage" }
}

/// Every knob of a world but the crash model (an enum) and the fault plan (checked entry by entry).
const BOUNDS: [Bound; 50] = [
    Bound {
        knob: "nodes",
        value: Read::U64(|s| s.nodes as u64),
        min: |_| 1,
        max: 15,
        why: "RabbitMQ runs quorum queues on 3, 5 or 7 nodes",
    },
    Bound {
        knob: "groups",
        value: Read::U64(|s| s.groups as u64),
        min: |_| 1,
        max: 128,
        why: "Raft groups sharing one Ra system's WAL; swarm draws up to 12",
    },
    Bound {
        knob: "group_stagger_ms",
        value: Read::U64(|s| s.group_stagger_ms),
        min: |_| 0,
        max: DAY_MS,
        why: "a simulated day",
    },
    Bound {
        knob: "wal_max_size_bytes",
        value: Read::U64(|s| s.wal_max_size_bytes),
        min: |_| 512,
        max: 256_000_000,
        why: "Ra's default is the top (ra.hrl WAL_DEFAULT_MAX_SIZE_BYTES); the harness goes far below Ra's \
              64 KiB minimum on purpose, to roll over often",
    },
    Bound {
        knob: "segment_max_count",
        value: Read::U64(|s| u64::from(s.segment_max_count)),
        min: |_| 1,
        max: u16::MAX as u64,
        why: "entries per segment file; Ra's default is 4,096 (ra.hrl SEGMENT_MAX_ENTRIES)",
    },
    Bound {
        knob: "segment_max_size_bytes",
        value: Read::U64(|s| s.segment_max_size_bytes),
        min: |_| 0,
        max: 1 << 40,
        why: "data bytes per segment file; Ra's default is 64,000,000 (ra.hrl SEGMENT_MAX_SIZE_B), and Ra \
              takes any size (0: one entry per file)",
    },
    Bound {
        knob: "segment_max_pending",
        value: Read::U64(|s| u64::from(s.segment_max_pending)),
        min: |_| 1,
        max: 1 << 20,
        why: "appends a segment buffers before writing them; Ra's default is 1,024 (ra.hrl SEGMENT_MAX_PENDING)",
    },
    Bound {
        knob: "snapshot_interval",
        value: Read::U64(|s| s.snapshot_interval),
        min: |_| 0,
        max: 10_000_000,
        why: "applied entries between snapshots (0: never)",
    },
    Bound {
        knob: "latency_min_us",
        value: Read::U64(|s| s.latency_min_us),
        min: |_| 0,
        max: 10_000_000,
        why: "up to 10 s",
    },
    Bound {
        knob: "latency_max_us",
        value: Read::U64(|s| s.latency_max_us),
        min: |s| s.latency_min_us,
        max: 10_000_000,
        why: "from latency_min_us up to 10 s",
    },
    Bound {
        knob: "step_cost_us",
        value: Read::U64(|s| s.step_cost_us),
        min: |_| 1,
        max: 1_000_000,
        why: "simulated time per actor step (0 would let a busy node run forever in no time)",
    },
    Bound {
        knob: "heartbeat_ms",
        value: Read::U64(|s| s.heartbeat_ms),
        min: |_| 1,
        max: 60_000,
        why: "Ra ticks every 1,000 ms (ra_server_proc TICK_INTERVAL_MS)",
    },
    Bound {
        knob: "election_timeout_min_ms",
        value: Read::U64(|s| s.election_timeout_min_ms),
        min: |_| 1,
        max: 600_000,
        why: "Ra's is broadcast_time 100 ms × 5 (ra_server_proc)",
    },
    Bound {
        knob: "election_timeout_max_ms",
        value: Read::U64(|s| s.election_timeout_max_ms),
        min: |s| s.election_timeout_min_ms.max(1),
        max: 600_000,
        why: "from election_timeout_min_ms",
    },
    Bound {
        knob: "client_interval_ms",
        value: Read::U64(|s| s.client_interval_ms),
        min: |_| 1,
        max: DAY_MS,
        why: "0 would issue operations forever at one instant",
    },
    Bound {
        knob: "keys",
        value: Read::U64(|s| u64::from(s.keys)),
        min: |_| 1,
        max: 1_000_000,
        why: "the workload needs a key",
    },
    Bound {
        knob: "clients",
        value: Read::U64(|s| u64::from(s.clients)),
        min: |_| 0,
        max: 1_000,
        why: "closed-loop clients (0: the open-loop generator)",
    },
    Bound {
        knob: "client_timeout_ms",
        value: Read::U64(|s| s.client_timeout_ms),
        min: |_| 1,
        max: DAY_MS,
        why: "Ra's command timeout is 5,000 ms (ra.hrl DEFAULT_TIMEOUT)",
    },
    Bound { knob: "safety_ms", value: Read::U64(|s| s.safety_ms), min: |_| 0, max: DAY_MS, why: "a simulated day" },
    Bound { knob: "liveness_ms", value: Read::U64(|s| s.liveness_ms), min: |_| 0, max: DAY_MS, why: "a simulated day" },
    Bound {
        knob: "liveness_workload_ms",
        value: Read::U64(|s| s.liveness_workload_ms),
        min: |_| 0,
        max: DAY_MS,
        why: "a simulated day",
    },
    Bound {
        knob: "contact_bound_ms",
        value: Read::U64(|s| s.contact_bound_ms),
        min: |_| 1,
        max: DAY_MS,
        why: "a simulated day",
    },
    Bound {
        knob: "fault_every_ms",
        value: Read::U64(|s| s.fault_every_ms),
        min: |_| 0,
        max: DAY_MS,
        why: "0: no random faults",
    },
    weight("power_loss_weight", |s| s.power_loss_weight),
    weight("vm_crash_weight", |s| s.vm_crash_weight),
    weight("wal_restart_weight", |s| s.wal_restart_weight),
    weight("partition_weight", |s| s.partition_weight),
    weight("crash_point_weight", |s| s.crash_point_weight),
    weight("segment_writer_crash_weight", |s| s.segment_writer_crash_weight),
    weight("one_way_partition_weight", |s| s.one_way_partition_weight),
    weight("disk_error_weight", |s| s.disk_error_weight),
    weight("slow_disk_weight", |s| s.slow_disk_weight),
    weight("membership_change_weight", |s| s.membership_change_weight),
    weight("bit_rot_weight", |s| s.bit_rot_weight),
    percent("recovery_crash_percent", |s| s.recovery_crash_percent),
    percent("message_loss_percent", |s| s.message_loss_percent),
    percent("message_duplicate_percent", |s| s.message_duplicate_percent),
    percent("message_reorder_percent", |s| s.message_reorder_percent),
    percent("wal_recovery_cut_percent", |s| s.wal_recovery_cut_percent),
    percent("cas_expected_percent", |s| s.cas_expected_percent),
    percent("recovery_disk_error_percent", |s| s.recovery_disk_error_percent),
    percent("listing_error_percent", |s| s.listing_error_percent),
    Bound {
        knob: "partition_ms",
        value: Read::U64(|s| s.partition_ms),
        min: |_| 0,
        max: DAY_MS,
        why: "a simulated day",
    },
    Bound {
        knob: "log_restart_ms",
        value: Read::U64(|s| s.log_restart_ms),
        min: |_| 0,
        max: 60_000,
        why: "Ra's segment writer may take its 30 s shutdown before the log tier restarts, pre-init and the stores after it; twice that",
    },
    Bound {
        knob: "restart_after_ms",
        value: Read::U64(|s| s.restart_after_ms),
        min: |_| 0,
        max: DAY_MS,
        why: "a simulated day",
    },
    Bound {
        knob: "snapshot_chunk_bytes",
        value: Read::U64(|s| s.snapshot_chunk_bytes),
        min: |_| 1,
        max: 16 << 20,
        why: "a chunk holds at least a byte of state; Ra's chunks are 1 MB",
    },
    Bound {
        knob: "value_size_max_bytes",
        value: Read::U64(|s| s.value_size_max_bytes),
        min: |_| 8,
        max: 16 << 20,
        why: "every value starts with its 8-byte number; RabbitMQ 4.0's default max_message_size is 16 MiB",
    },
    Bound {
        knob: "members (nodes × groups)",
        value: Read::U64(|s| (s.nodes as u64).saturating_mul(s.groups as u64)),
        min: |_| 1,
        max: 256,
        why: "every member is a server, a log and a share of its node's WAL",
    },
    Bound {
        knob: "client operations ((safety_ms + liveness_workload_ms) / client_interval_ms)",
        value: Read::U64(|s| (s.safety_ms + s.liveness_workload_ms) / s.client_interval_ms.max(1)),
        min: |_| 0,
        max: 10_000_000,
        why: "every operation is kept for the linearizability check at the end of the run (about 200 B each)",
    },
    Bound {
        knob: "fault_plan (entries)",
        value: Read::U64(|s| s.fault_plan.len() as u64),
        min: |_| 0,
        max: 100_000,
        why: "planned faults",
    },
];

/// Every bounded knob (as a seed file's `world` names it) and its accepted range in `s` (a lower end
/// can depend on other knobs). The fault plan's entry count is not a knob of its own and is left out.
pub fn knob_ranges(s: &WorldSpec) -> Vec<(&'static str, u64, u64)> {
    BOUNDS.iter().filter(|b| !b.knob.contains(' ')).map(|b| (b.knob, (b.min)(s), b.max)).collect()
}

/// Every bounded knob with its value in `s`, its accepted range there and why the range is what it is
/// (`sim list knobs`).
pub fn knob_table(s: &WorldSpec) -> Vec<KnobRange> {
    BOUNDS
        .iter()
        .filter(|b| !b.knob.contains(' '))
        .map(|b| KnobRange { knob: b.knob, value: b.value.of(s), min: (b.min)(s), max: b.max, why: b.why })
        .collect()
}

/// One row of [`knob_table`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnobRange {
    /// The knob, as a seed file's `world` and `--set` name it.
    pub knob: &'static str,
    /// Its value in the world asked about.
    pub value: u64,
    /// The smallest value accepted (it can depend on other knobs).
    pub min: u64,
    /// The largest value accepted.
    pub max: u64,
    /// Where the range comes from.
    pub why: &'static str,
}

/// The first knob outside its range, as one line.
pub(super) fn check_knobs(s: &WorldSpec) -> Result<(), String> {
    for b in &BOUNDS {
        let (value, min) = (b.value.of(s), (b.min)(s));
        if value < min || value > b.max {
            return Err(format!("{}: {value} is outside {min}..={} ({})", b.knob, b.max, b.why));
        }
    }
    Ok(())
}

/// Call numbers and reboot cuts: far beyond any run's calls (a run of a simulated day makes millions).
const MAX_CALLS: u64 = 1 << 40;

/// A planned fault's own numbers: when it falls (inside the run), how long it lasts, how many calls.
pub(super) fn check_fault(k: usize, at_ms: u64, plus_ns: u64, fault: &Fault, run_ms: u64) -> Result<(), String> {
    let at = |what: &str, v: u64, lo: u64, hi: u64| {
        if v < lo || v > hi { Err(format!("fault_plan[{k}].{what}: {v} is outside {lo}..={hi}")) } else { Ok(()) }
    };
    at("at_ms", at_ms, 0, run_ms)?;
    at("plus_ns", plus_ns, 0, 999_999)?;
    match fault {
        Fault::PowerLoss { reboot_cut_after_calls }
        | Fault::VmCrash { reboot_cut_after_calls }
        | Fault::PowerCutBefore { reboot_cut_after_calls, .. }
        | Fault::PowerCutAfter { reboot_cut_after_calls, .. } => {
            at("reboot_cut_after_calls", reboot_cut_after_calls.unwrap_or(0), 0, MAX_CALLS)
        }
        Fault::PowerCutAfterCalls { calls, reboot_cut_after_calls } => {
            at("calls", *calls, 1, MAX_CALLS)?;
            at("reboot_cut_after_calls", reboot_cut_after_calls.unwrap_or(0), 0, MAX_CALLS)
        }
        Fault::ExactPowerCut { at: cut, reboot_cut, .. } => {
            if let CutAt::BeforeCall(n) | CutAt::AfterCall(n) = cut {
                at("at.call", *n, 0, MAX_CALLS)?;
            }
            at("reboot_cut.after_calls", reboot_cut.as_ref().map_or(0, |r| r.after_calls), 0, MAX_CALLS)
        }
        Fault::Isolate { inbound, outbound, duration_ms } => {
            if !inbound && !outbound {
                return Err(format!("fault_plan[{k}]: an isolation drops inbound or outbound messages, or both"));
            }
            at("duration_ms", *duration_ms, 0, DAY_MS)
        }
        Fault::SlowWal { sync_latency_us, duration_ms } => {
            at("sync_latency_us", *sync_latency_us, 0, 10_000_000)?;
            at("duration_ms", *duration_ms, 0, DAY_MS)
        }
        Fault::DiskError { times, duration_ms, .. } => {
            at("times", u64::from(*times), 0, 1_000_000)?;
            at("duration_ms", *duration_ms, 0, DAY_MS)
        }
        Fault::DiskFull { duration_ms } => at("duration_ms", *duration_ms, 0, DAY_MS),
        Fault::WalRestart | Fault::SegmentWriterCrash | Fault::Membership { .. } | Fault::BitRot { .. } => Ok(()),
    }
}
