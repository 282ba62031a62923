//! The hunt's mutations: small changes to a world with an explicit fault plan.
//!
//! Why these: a crash-recovery bug lives in a window a few filesystem calls wide, reached by a world
//! that makes the window likely. So the mutations move a power cut a few calls earlier or later, change
//! what its crash image keeps, put a second cut into the recovery it caused, arm a new cut before or
//! after the next call of some kind on some kind of file (from the calls the hunt has seen runs make, all
//! kinds alike), surround a cut with the faults that stretch windows (a slow disk, an isolation, a WAL
//! or segment writer restart, a disk error — on a seen kind of call or a directory listing — another
//! crash) or with a media fault (a bit of a durable entry rotted, where the world can survive a rotted
//! node), drop or move an entry, or change a knob of the world (value sizes, groups, WAL and segment
//! sizes, snapshot interval, crash model, workload) among the values swarm draws. Fault weights are not
//! among the knobs: a corpus entry's faults are all explicit (random faults off). None of them knows a
//! bug switch.
//!
//! Owns: the operators. Pure: a function of the world, the vocabulary and the random stream.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::RngCore;
use scenarios::rng::below;
use scenarios::{CrashImage, CrashModel, CutAt, DiskErrorKind, Fault, PlannedFault, RebootCut, WorldSpec};

/// A kind of filesystem call on a kind of path (`vfs` call name, path glob): where a cut can be armed.
pub type CallClass = (String, String);

/// One mutation's effect, for a reader (the hunt's `--json` lines and a finding's note).
pub type Applied = String;

/// Applies one randomly chosen operator to `spec`; what it did, or `None` when the chosen operator
/// found nothing to change (no entry of the kind it needs).
pub fn mutate_once(spec: &mut WorldSpec, calls: &[CallClass], rng: &mut ChaCha8Rng) -> Option<Applied> {
    match below(rng, 10) {
        0 | 1 => arm_cut(spec, calls, rng),
        2 | 3 => shift_cut(spec, rng),
        4 => change_image(spec, rng),
        5 => reboot_cut(spec, rng),
        6 => add_fault(spec, calls, rng),
        7 => drop_entry(spec, rng),
        8 => retime_entry(spec, rng),
        _ => change_knob(spec, rng),
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len() as u64) as usize]
}

/// A small distance, more often tiny than large: 1 to 2^k with k uniform in 0..=7.
fn small(rng: &mut ChaCha8Rng) -> u64 {
    let k = below(rng, 8);
    1 + below(rng, 1 << k)
}

/// A time for a new entry: near an existing one (a fault around a cut) half of the time, else anywhere
/// in the safety phase.
fn time_ms(spec: &WorldSpec, rng: &mut ChaCha8Rng) -> u64 {
    let end = spec.safety_ms.max(1);
    if !spec.fault_plan.is_empty() && below(rng, 2) == 0 {
        let at = pick(rng, &spec.fault_plan).at_ms;
        let d = below(rng, 400);
        let t = if below(rng, 2) == 0 { at.saturating_sub(d) } else { at + d };
        t.min(end - 1)
    } else {
        below(rng, end)
    }
}

/// Indices of the plan's entries that `is` accepts.
fn entries(spec: &WorldSpec, is: impl Fn(&Fault) -> bool) -> Vec<usize> {
    (0..spec.fault_plan.len()).filter(|&k| is(&spec.fault_plan[k].fault)).collect()
}

fn maybe_reboot_cut(rng: &mut ChaCha8Rng) -> Option<u64> {
    (below(rng, 4) == 0).then(|| small(rng) * 2)
}

fn arm_cut(spec: &mut WorldSpec, calls: &[CallClass], rng: &mut ChaCha8Rng) -> Option<Applied> {
    if calls.is_empty() {
        return None;
    }
    let (call, path_glob) = pick(rng, calls).clone();
    let node = below(rng, spec.nodes as u64) as usize;
    let at_ms = time_ms(spec, rng);
    let reboot_cut_after_calls = maybe_reboot_cut(rng);
    let before = below(rng, 2) == 0;
    let what = format!(
        "arm a cut on n{} at {at_ms} ms {} the next {call} of {path_glob}{}",
        node + 1,
        if before { "before" } else { "after" },
        reboot_cut_after_calls.map_or(String::new(), |k| format!(", another {k} calls into its reboot"))
    );
    let fault = if before {
        Fault::PowerCutBefore { call, path_glob, reboot_cut_after_calls }
    } else {
        Fault::PowerCutAfter { call, path_glob, reboot_cut_after_calls }
    };
    spec.fault_plan.push(PlannedFault { at_ms, plus_ns: 0, node, fault });
    Some(what)
}

fn shift_cut(spec: &mut WorldSpec, rng: &mut ChaCha8Rng) -> Option<Applied> {
    let cuts =
        entries(spec, |f| matches!(f, Fault::ExactPowerCut { at: CutAt::BeforeCall(_) | CutAt::AfterCall(_), .. }));
    if cuts.is_empty() {
        return None;
    }
    let k = *pick(rng, &cuts);
    let d = small(rng);
    let later = below(rng, 2) == 0;
    let flip = below(rng, 4) == 0;
    let Fault::ExactPowerCut { at, image, .. } = &mut spec.fault_plan[k].fault else { unreachable!("chosen above") };
    let (before, seq) = match *at {
        CutAt::BeforeCall(s) => (true, s),
        CutAt::AfterCall(s) => (false, s),
        CutAt::Now => unreachable!("chosen above"),
    };
    let seq = if later { seq + d } else { seq.saturating_sub(d).max(1) };
    let before = before ^ flip;
    *at = if before { CutAt::BeforeCall(seq) } else { CutAt::AfterCall(seq) };
    // The image kept the pending state of the old call; the crash model chooses one at the new call.
    *image = None;
    Some(format!("move cut {k} to {} call {seq}", if before { "before" } else { "after" }))
}

fn change_image(spec: &mut WorldSpec, rng: &mut ChaCha8Rng) -> Option<Applied> {
    let cuts = entries(spec, |f| matches!(f, Fault::ExactPowerCut { .. }));
    if cuts.is_empty() {
        return None;
    }
    let k = *pick(rng, &cuts);
    let Fault::ExactPowerCut { image, .. } = &mut spec.fault_plan[k].fault else { unreachable!("chosen above") };
    let what = match (below(rng, 3), image.as_mut()) {
        (0, _) | (_, None) => {
            *image = None;
            "the crash model chooses"
        }
        (1, Some(_)) => {
            *image = Some(CrashImage { label: "hunt: nothing kept".into(), files: vec![], kept_entries: vec![] });
            "nothing unsynced kept"
        }
        (_, Some(im)) => {
            // Each piece kept or dropped by a coin: a prefix, an omission, a torn file — any of them.
            for f in &mut im.files {
                f.sectors.retain(|_| below(rng, 2) == 0);
                if below(rng, 2) == 0 {
                    f.size_after = None;
                }
            }
            im.kept_entries.retain(|_| below(rng, 2) == 0);
            im.label = "hunt: pieces dropped".into();
            "some unsynced pieces dropped"
        }
    };
    Some(format!("image of cut {k}: {what}"))
}

fn reboot_cut(spec: &mut WorldSpec, rng: &mut ChaCha8Rng) -> Option<Applied> {
    let crashes = entries(spec, Fault::crashes);
    if crashes.is_empty() {
        return None;
    }
    let k = *pick(rng, &crashes);
    let calls = small(rng) * 2;
    let set = below(rng, 4) != 0;
    let after = set.then_some(calls);
    match &mut spec.fault_plan[k].fault {
        Fault::ExactPowerCut { reboot_cut, .. } => {
            *reboot_cut = after.map(|after_calls| RebootCut { after_calls, image: None })
        }
        Fault::PowerLoss { reboot_cut_after_calls }
        | Fault::VmCrash { reboot_cut_after_calls }
        | Fault::PowerCutBefore { reboot_cut_after_calls, .. }
        | Fault::PowerCutAfter { reboot_cut_after_calls, .. }
        | Fault::PowerCutAfterCalls { reboot_cut_after_calls, .. } => *reboot_cut_after_calls = after,
        _ => return None,
    }
    Some(match after {
        Some(c) => format!("entry {k}: a second cut {c} calls into its reboot"),
        None => format!("entry {k}: no cut in its reboot"),
    })
}

fn add_fault(spec: &mut WorldSpec, calls: &[CallClass], rng: &mut ChaCha8Rng) -> Option<Applied> {
    let node = below(rng, spec.nodes as u64) as usize;
    let at_ms = time_ms(spec, rng);
    let fault = match below(rng, 9) {
        0 => Fault::PowerLoss { reboot_cut_after_calls: maybe_reboot_cut(rng) },
        1 => Fault::VmCrash { reboot_cut_after_calls: maybe_reboot_cut(rng) },
        2 => Fault::WalRestart,
        3 => Fault::SegmentWriterCrash,
        4 => {
            let (inbound, outbound) = *pick(rng, &[(true, true), (true, false), (false, true)]);
            Fault::Isolate { inbound, outbound, duration_ms: *pick(rng, &[100, 300, 1_000, 2_000]) }
        }
        5 => Fault::SlowWal {
            sync_latency_us: *pick(rng, &[1_000, 5_000, 12_000, 20_000]),
            duration_ms: *pick(rng, &[100, 300, 1_000]),
        },
        6 => Fault::PowerCutAfterCalls { calls: small(rng), reboot_cut_after_calls: maybe_reboot_cut(rng) },
        7 => {
            // Only where a rotted node can be survived (`WorldConfig::validate` refuses it elsewhere).
            if !crate::world::survives_a_rotted_node(spec) {
                return None;
            }
            Fault::BitRot { pick: rng.next_u64() }
        }
        _ => {
            if calls.is_empty() {
                return None;
            }
            // A seen kind of call, or one time in eight a directory listing (which changes no disk, so
            // no FS line shows it and the calls seen never hold it).
            let (call, path_glob) = if below(rng, 8) == 0 {
                let (call, glob) = *pick(rng, &crate::world::LISTING_SITES);
                (call.to_owned(), glob.to_owned())
            } else {
                pick(rng, calls).clone()
            };
            Fault::DiskError {
                call,
                path_glob,
                error: DiskErrorKind::Eio,
                times: 1 + below(rng, 3) as u32,
                duration_ms: 0,
            }
        }
    };
    let what = format!("add {} on n{} at {at_ms} ms", fault.name(), node + 1);
    spec.fault_plan.push(PlannedFault { at_ms, plus_ns: 0, node, fault });
    Some(what)
}

fn drop_entry(spec: &mut WorldSpec, rng: &mut ChaCha8Rng) -> Option<Applied> {
    if spec.fault_plan.is_empty() {
        return None;
    }
    let k = below(rng, spec.fault_plan.len() as u64) as usize;
    let gone = spec.fault_plan.remove(k);
    Some(format!("drop entry {k} ({})", gone.fault.name()))
}

fn retime_entry(spec: &mut WorldSpec, rng: &mut ChaCha8Rng) -> Option<Applied> {
    if spec.fault_plan.is_empty() {
        return None;
    }
    let k = below(rng, spec.fault_plan.len() as u64) as usize;
    let d = small(rng) * 3;
    let p = &mut spec.fault_plan[k];
    p.at_ms = if below(rng, 2) == 0 { p.at_ms.saturating_sub(d) } else { (p.at_ms + d).min(spec.safety_ms) };
    p.plus_ns = 0;
    Some(format!("entry {k} now at {} ms", p.at_ms))
}

/// The knobs a mutation changes and the values it chooses among: swarm's own choices (`scenarios::swarm`).
const KNOBS: [(&str, &[u64]); 14] = [
    ("value_size_max_bytes", &[8, 512, 8 << 10, 64 << 10, 256 << 10]),
    ("groups", &[1, 2, 3, 6]),
    ("wal_max_size_bytes", &[1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 64 << 10, 1 << 20]),
    ("segment_max_count", &[8, 32, 128, 4096]),
    ("snapshot_interval", &[0, 10, 40, 200]),
    ("keys", &[1, 4, 16]),
    ("clients", &[0, 2, 8]),
    ("log_restart_ms", &[0, 50, 400, 2_000, 8_000]),
    ("restart_after_ms", &[100, 300, 1_000]),
    ("crash_model", &[0, 1, 2, 3, 4]),
    ("cas_expected_percent", &[0, 50, 90]),
    ("snapshot_chunk_bytes", &[4096, 64, 16]),
    ("segment_max_size_bytes", &[scenarios::RA_SEGMENT_MAX_SIZE_BYTES, 300, 2_000]),
    ("segment_max_pending", &[scenarios::RA_SEGMENT_MAX_PENDING as u64, 1, 8]),
];

fn change_knob(spec: &mut WorldSpec, rng: &mut ChaCha8Rng) -> Option<Applied> {
    let (knob, choices) = *pick(rng, &KNOBS);
    let v = *pick(rng, choices);
    match knob {
        "value_size_max_bytes" => spec.value_size_max_bytes = v,
        "groups" => spec.groups = v as usize,
        "wal_max_size_bytes" => spec.wal_max_size_bytes = v,
        "segment_max_count" => spec.segment_max_count = v as u16,
        "snapshot_interval" => spec.snapshot_interval = v,
        "keys" => spec.keys = v as u32,
        "clients" => spec.clients = v as u32,
        "log_restart_ms" => spec.log_restart_ms = v,
        "restart_after_ms" => spec.restart_after_ms = v,
        "cas_expected_percent" => spec.cas_expected_percent = v as u32,
        "snapshot_chunk_bytes" => spec.snapshot_chunk_bytes = v,
        "segment_max_size_bytes" => spec.segment_max_size_bytes = v,
        "segment_max_pending" => spec.segment_max_pending = v as u32,
        _ => {
            spec.crash_model = [
                CrashModel::Pessimistic,
                CrashModel::LoseUnsynced,
                CrashModel::Ext4Ordered,
                CrashModel::NoLoss,
                CrashModel::UnsyncedGarbage,
            ][v as usize];
            return Some(format!("crash_model={:?}", spec.crash_model));
        }
    }
    Some(format!("{knob}={v}"))
}
