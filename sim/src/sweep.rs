//! Sweep: cut power at every filesystem call of one run, in every crash image the disk admits there.
//!
//! Why: a random power loss lands between two steps, and a crash point lands where a scenario guessed the
//! bug hides; a sweep needs neither luck nor a guess. ALICE and CrashMonkey do this to one program
//! outside a simulation; here it is a whole cluster, with the checkers judging every recovery.
//!
//! How: the world runs once with no crash fault (the *base* run). Before each step it is cloned; when the
//! step made calls on a swept node that change or sync its disk, the clone replays that step with a
//! *held* power cut after each such call (`SimFs::arm_power_cut_held`: the node powers off, the pending
//! state stays as it was). `vfs` enumerates the crash images of that moment (`none`, `all`, each prefix,
//! each omit-one, each torn last write, filtered by the crash model); each image is applied to its own
//! clone of the cut world, which then runs to its end — reboot, recovery, the rest of the workload, heal,
//! liveness — and is judged. Identical images (same bytes on the node's disk) of the same crash point are
//! explored once. Cuts fall in the safety phase only (the heal ends faults), and not in the first boot
//! (its disk is empty).
//!
//! Key invariant: a failure is reproducible from a plain seed file — the base world plus one
//! `Fault::ExactPowerCut { at: AfterCall(seq), image }` armed from the start — because the clone that
//! found it is the base run up to that call, and the base run is a pure function of its config.

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use scenarios::{CutAt, Fault, PlannedFault, WorldSpec};
use vfs::{CrashModel, OpKind, TreeEntry};

use crate::checkers::Violation;
use crate::image::from_decisions;
use crate::world::Stepped;
use crate::{Outcome, World, WorldConfig};

/// What a sweep does besides the world it sweeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepOptions {
    /// The nodes whose calls are cut.
    pub nodes: Vec<usize>,
    /// The crash model whose admitted images are explored (`Pessimistic` admits every enumerated one;
    /// `Corrupting` adds torn writes with a garbage sector).
    pub model: CrashModel,
    /// After a cut, the heal comes this long after the node's reboot (`restart_after_ms`) if that is
    /// before the world's own heal: what follows a recovery is judged without running the rest of a long
    /// safety phase for every image. `None`: the world's heal.
    pub horizon_ms: Option<u64>,
    /// This process sweeps crash point `p` (numbered in base-run order) when `p % shard.1 == shard.0`.
    pub shard: (u64, u64),
    /// Crash images drawn at random from `model` at each crash point, besides the enumerated ones
    /// (seeded by the world's seed, the node and the call, so a sweep stays reproducible).
    pub random_images: u64,
    /// Only calls the base run makes in this window of simulated time are cut (`[from, to)`, in ms; the
    /// safety phase's end bounds it too).
    pub window_ms: (u64, u64),
}

/// Where a sweep is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepProgress {
    /// Simulated time of the base run.
    pub now_ns: u64,
    /// The end of its safety phase (where cuts stop).
    pub safety_end_ns: u64,
    /// Crash points cut so far.
    pub crash_points: u64,
    /// Crash images run so far.
    pub images: u64,
    /// Failures so far.
    pub failures: u64,
}

/// One crash image that failed a checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepFailure {
    /// The node cut.
    pub node: usize,
    /// The call after which power was cut.
    pub after_call: u64,
    /// Simulated time of the cut.
    pub cut_ns: u64,
    /// That call, as the FS trace line shows it.
    pub call: String,
    /// The crash image's label (`none`, `all`, `prefix 3/5`, `torn 77 1/2`, …).
    pub image_label: String,
    /// What failed.
    pub failure: ImageFailure,
    /// The world that replays it: the base world with the cut and its image as its fault plan.
    pub spec: WorldSpec,
}

/// How the run of one crash image failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageFailure {
    /// A checker reported a violation.
    Violation(Violation),
    /// The system under test panicked (a broken invariant), with this message.
    Panic(String),
}

impl ImageFailure {
    /// The checker, or `panic`.
    pub fn checker(&self) -> &str {
        match self {
            ImageFailure::Violation(v) => &v.checker,
            ImageFailure::Panic(_) => "panic",
        }
    }
}

/// What a sweep found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// The base run's outcome (with no cut).
    pub base: Outcome,
    /// Calls after which power was cut.
    pub crash_points: u64,
    /// Crash images enumerated over all crash points.
    pub images_enumerated: u64,
    /// Distinct images run (identical images of one crash point run once).
    pub images_run: u64,
    /// Every failing image, in sweep order.
    pub failures: Vec<SweepFailure>,
}

/// The base world of a sweep: `spec` without its random faults and without crashes during recovery.
/// Of its plan, the faults that crash nothing stay (WAL restarts, segment writer crashes, isolations, slow disks:
/// what a scenario does to reach its recovery path, such as a follower cut off until it needs a
/// snapshot); its planned crashes stay only with `keep_planned_crashes`, and then the sweep cuts on top
/// of them — a second cut in the recovery a planned cut leads to, say with several WAL files left for
/// it to flush. Its network stays as it is.
pub fn base_spec(spec: &WorldSpec, keep_planned_crashes: bool) -> WorldSpec {
    let fault_plan = spec.fault_plan.iter().filter(|p| keep_planned_crashes || !p.fault.crashes()).cloned().collect();
    WorldSpec {
        fault_every_ms: 0,
        recovery_crash_percent: 0,
        wal_recovery_cut_percent: 0,
        recovery_disk_error_percent: 0,
        fault_plan,
        ..spec.clone()
    }
}

/// Sweeps `cfg` (see the module docs): `cfg.spec` should already be a base world ([`base_spec`]).
/// `progress` is called after every step of the base run that cut something.
pub fn sweep(cfg: &WorldConfig, options: &SweepOptions, mut progress: impl FnMut(&SweepProgress)) -> SweepReport {
    assert!(options.shard.0 < options.shard.1, "shard index below the shard count");
    let safety_end_ns = cfg.spec.safety_ms * 1_000_000;
    let (points, base) = crash_points(cfg, options);
    let mut report = SweepReport { base, crash_points: 0, images_enumerated: 0, images_run: 0, failures: Vec::new() };
    // The base run again, cloned only before the steps that make a call this shard cuts.
    let mut main = World::new(cfg.clone());
    let mut step = 0u64;
    let mut due = points.iter().peekable();
    while main.running() {
        let before = due.peek().is_some_and(|p| p.step == step).then(|| main.clone());
        let stepped = main.advance();
        if stepped == Stepped::Idle {
            break;
        }
        main.settle(stepped);
        // A clone copies the trace; violations need only its tail.
        main.trim_trace(64);
        if let Some(before) = before {
            while let Some(p) = due.next_if(|p| p.step == step) {
                cut_at(&before, p.node, p.seq, &p.call, options, &mut report);
            }
            progress(&SweepProgress {
                now_ns: main.now_ns(),
                safety_end_ns,
                crash_points: report.crash_points,
                images: report.images_run,
                failures: report.failures.len() as u64,
            });
        }
        step += 1;
    }
    report
}

/// One call of the base run to cut after.
struct Point {
    /// The base run's step (actor step or event) that makes it.
    step: u64,
    node: usize,
    seq: u64,
    /// As the FS trace line shows it.
    call: String,
}

/// Runs the base world once and lists the calls this shard cuts (those that change or sync a swept
/// node's disk, in the window, before the heal), with the base run's outcome.
fn crash_points(cfg: &WorldConfig, options: &SweepOptions) -> (Vec<Point>, Outcome) {
    let safety_end_ns = cfg.spec.safety_ms * 1_000_000;
    let window_ns = (options.window_ms.0.saturating_mul(1_000_000), options.window_ms.1.saturating_mul(1_000_000));
    let mut main = World::new(cfg.clone());
    for &i in &options.nodes {
        main.disk_mut(i).set_record_ops(true);
        main.disk_mut(i).take_ops();
    }
    let mut points = Vec::new();
    let mut numbered = 0u64;
    let mut step = 0u64;
    while main.running() {
        let stepped = main.advance();
        if stepped == Stepped::Idle {
            break;
        }
        let now = main.now_ns();
        for &i in &options.nodes {
            let ops = main.disk_mut(i).take_ops();
            if now >= safety_end_ns || now < window_ns.0 || now >= window_ns.1 {
                continue;
            }
            for op in ops {
                if op.result.is_err() || !op.kind.is_mutating() || op.kind == OpKind::Open {
                    continue;
                }
                let Some(call) = crate::trace::describe_fs_op(&op) else { continue };
                numbered += 1;
                if (numbered - 1) % options.shard.1 == options.shard.0 {
                    points.push(Point { step, node: i, seq: op.seq, call });
                }
            }
        }
        main.settle(stepped);
        main.trim_trace(64);
        step += 1;
    }
    (points, main.finish().outcome)
}

/// Cuts node `i` of a copy of `before` right after call `seq` of its next step, and runs every distinct
/// crash image of that moment to the end.
fn cut_at(before: &World, i: usize, seq: u64, call: &str, options: &SweepOptions, report: &mut SweepReport) {
    let mut cut = before.clone();
    cut.arm_held_cut(i, seq);
    let stepped = cut.advance();
    let fs = cut.disk_mut(i);
    assert_eq!(fs.held_cut(), Some(seq), "the replayed step makes the same calls as the base run's");
    fs.set_record_ops(false);
    fs.take_ops();
    report.crash_points += 1;
    let mut images = fs.enumerate_crash_images(options.model);
    if options.random_images > 0 {
        let seed = before.config().spec.seed ^ (i as u64) << 56 ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        images.extend(fs.sample_crash_images(options.model, options.random_images, seed));
    }
    report.images_enumerated += images.len() as u64;
    if let Some(horizon_ms) = options.horizon_ms {
        let restart_ms = cut.config().spec.restart_after_ms;
        cut.heal_at(cut.now_ns().div_ceil(1_000_000) + restart_ms + horizon_ms);
    }
    let mut seen = BTreeSet::new();
    for image in images {
        let mut w = cut.clone();
        let applied = w.disk_mut(i).release_held_cut(&image.decisions).expect("an enumerated image fits its state");
        if !seen.insert(disk_hash(&w.disk_mut(i).tree())) {
            continue;
        }
        report.images_run += 1;
        let ran = catch_unwind(AssertUnwindSafe(move || {
            w.settle(stepped);
            while w.step() {}
            w.finish().outcome
        }));
        let failure = match ran {
            Ok(Outcome::Pass) => None,
            Ok(Outcome::Violation(v)) => Some(ImageFailure::Violation(v)),
            Err(payload) => Some(ImageFailure::Panic(panic_message(payload.as_ref()))),
        };
        if let Some(failure) = failure {
            let image_label = image.label.clone();
            let spec = with_cut(&cut.config().spec, i, seq, before.now_ns(), from_decisions(&applied, &image.label));
            report.failures.push(SweepFailure {
                node: i,
                after_call: seq,
                cut_ns: cut.now_ns(),
                call: call.to_owned(),
                image_label,
                failure,
                spec,
            });
        }
    }
}

/// `spec` with a plan entry that cuts node `i` right after call `seq`, keeping `image`; `step_ns` is the
/// time of the base run when the step that makes the call began. The entry is due then, after every
/// entry due by then: an event due at the current time is handled before any actor steps (an actor
/// step runs only while no event is due, and its calls fall `step_cost_us` later), so the cut is armed
/// before the step's calls and after anything the plan arms or crashes first — as the sweep's held cut
/// was. On a node that is down then (the call is its reboot's) it is armed at that boot; at time 0,
/// before the first boot.
fn with_cut(spec: &WorldSpec, i: usize, seq: u64, step_ns: u64, image: scenarios::CrashImage) -> WorldSpec {
    let entry = PlannedFault {
        at_ms: step_ns / 1_000_000,
        plus_ns: step_ns % 1_000_000,
        node: i,
        fault: Fault::ExactPowerCut { at: CutAt::AfterCall(seq), image: Some(image), reboot_cut: None },
    };
    let mut spec = spec.clone();
    let at = spec.fault_plan.iter().position(|p| p.at_ms * 1_000_000 + p.plus_ns > step_ns);
    spec.fault_plan.insert(at.unwrap_or(spec.fault_plan.len()), entry);
    spec
}

/// The message of a caught panic (a `String` or `&str` payload), for reports.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// FNV-1a over a disk's tree: paths, kinds and contents.
fn disk_hash(tree: &std::collections::BTreeMap<String, TreeEntry>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (path, entry) in tree {
        eat(path.as_bytes());
        match entry {
            TreeEntry::Dir => eat(b"\x00d"),
            TreeEntry::File(bytes) => {
                eat(b"\x00f");
                eat(&(bytes.len() as u64).to_le_bytes());
                eat(bytes);
            }
        }
    }
    h
}

/// The report of a sweep split over shards (`SweepOptions::shard`): counts summed, failures in sweep
/// order (by simulated time of the cut, then node and call).
pub fn merge(reports: Vec<SweepReport>) -> SweepReport {
    let mut merged =
        SweepReport { base: Outcome::Pass, crash_points: 0, images_enumerated: 0, images_run: 0, failures: Vec::new() };
    for r in reports {
        if merged.base == Outcome::Pass {
            merged.base = r.base;
        }
        merged.crash_points += r.crash_points;
        merged.images_enumerated += r.images_enumerated;
        merged.images_run += r.images_run;
        merged.failures.extend(r.failures);
    }
    merged.failures.sort_by_key(|f| (f.cut_ns, f.node, f.after_call));
    merged
}
