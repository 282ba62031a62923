//! Materialisation and shrinking. A run's record of the faults that took effect
//! (`RunResult::materialized`) replays the same run as an explicit plan with the random faults off —
//! power losses, crash points, reboot cuts after power losses, after VM crashes and after other reboot
//! cuts, faults due at the heal's very instant —, and shrinking a known seed file keeps its failure
//! with fewer faults and a smaller world.

use raft_core::Bugs;
use scenarios::{CutAt, Fault, PlannedFault, WorldSpec};
use sim::seedfile::SeedFile;
use sim::shrink::{generalise, materialize, materialized_spec, shrink};
use sim::{Outcome, RunResult, WorldConfig, run};

/// Seed files of PR 589's switches (targeted and swarm), by name.
const FAILING: [(&str, &str); 6] = [
    (
        "recovery_config-dir-entry-lost-0-config-no-dir-sync",
        include_str!("../../seeds/recovery_config-dir-entry-lost-0-config-no-dir-sync.json"),
    ),
    (
        "recovery_corrupt-snapshot-indexes-0-indexes-badmatch",
        include_str!("../../seeds/recovery_corrupt-snapshot-indexes-0-indexes-badmatch.json"),
    ),
    (
        "recovery_crash-between-segment-flush-and-wal-delete-2-segref-tuple-delete",
        include_str!("../../seeds/recovery_crash-between-segment-flush-and-wal-delete-2-segref-tuple-delete.json"),
    ),
    ("swarm-0-config-no-dir-sync", include_str!("../../seeds/swarm-0-config-no-dir-sync.json")),
    ("swarm-13-indexes-badmatch", include_str!("../../seeds/swarm-13-indexes-badmatch.json")),
    ("swarm-337-config-orphan-registration", include_str!("../../seeds/swarm-337-config-orphan-registration.json")),
];

/// Passing swarm seeds whose faults exercise every form the recorder writes: a fault due at the heal's
/// very instant (67), reboot cuts and exact cuts a down node arms at its boot (59, 16), both after a
/// VM crash (90), and disk errors a reboot meets (16).
const SWARM: [u64; 4] = [67, 59, 90, 16];

fn file(text: &str) -> SeedFile {
    SeedFile::parse(text).expect("a valid seed file")
}

/// The outcome without the trace lines it carries (those differ: see `same_run`).
fn verdict(r: &RunResult) -> Option<(String, String, u64, String)> {
    match &r.outcome {
        Outcome::Pass => None,
        Outcome::Violation(v) => Some((v.checker.clone(), v.node.clone(), v.time_ns, v.detail.clone())),
    }
}

/// The trace without what a plan renders differently from the faults it records: arming lines (a
/// random crash point names its call kind and glob, the plan its call number), planned faults skipped,
/// and DISK lines (a replayed image lists only the files that keep something).
fn comparable(r: &RunResult) -> Vec<&String> {
    r.trace.iter().filter(|l| !l.contains(" armed ") && !l.contains("skipped") && !l.contains(" DISK ")).collect()
}

/// `cfg` and the world of its materialised plan make the same run: same verdict at the same time,
/// same trace line for line (but for `comparable`), every image fits, and materialising again gives the
/// same plan. The trace hashes differ whenever there are faults: the plan's events are queued at the
/// start and a random fault's are not (the hash mixes every event's sequence number), and the arming
/// lines differ; with no fault they are equal.
fn same_run(name: &str, cfg: &WorldConfig) -> (RunResult, RunResult) {
    let (original, replay) = materialize(cfg);
    assert_eq!(replay.spec.fault_every_ms, 0, "{name}");
    assert_eq!(replay.spec.recovery_crash_percent, 0, "{name}");
    assert_eq!(replay.spec.recovery_disk_error_percent, 0, "{name}");
    let r = run(replay.clone());
    assert_eq!(verdict(&r), verdict(&original), "{name}");
    assert_eq!(r.sim_time_ns, original.sim_time_ns, "{name}");
    assert_eq!(comparable(&r), comparable(&original), "{name}");
    assert_eq!(r.coverage.get("crash images that no longer fit"), None, "{name}");
    assert_eq!(r.materialized, replay.spec.fault_plan, "{name}: materialising again changes the plan");
    if original.materialized.is_empty() && cfg.spec.fault_plan.is_empty() {
        assert_eq!(r.trace_hash, original.trace_hash, "{name}");
    }
    (original, r)
}

#[test]
fn a_failing_seed_file_replays_from_its_materialised_plan() {
    for (name, text) in FAILING {
        let cfg = file(text).config().expect("a valid world");
        same_run(name, &cfg);
    }
}

#[test]
fn a_passing_swarm_seed_replays_from_its_materialised_plan_with_every_form_of_fault() {
    let (mut heal_time, mut boot_armed, mut reboot_cuts, mut recovery_reads) = (0, 0, 0, 0);
    for seed in SWARM {
        let cfg = WorldConfig::new(scenarios::swarm(seed), Bugs::none());
        let (r, replay) = same_run(&format!("swarm {seed}"), &cfg);
        heal_time += r.materialized.iter().filter(|p| p.at_ms == cfg.spec.safety_ms).count();
        boot_armed += replay.coverage.get("planned cuts armed at the next boot").copied().unwrap_or(0);
        recovery_reads += r.coverage.get("disk errors armed into a recovery").copied().unwrap_or(0);
        assert_eq!(replay.fired_cuts, r.fired_cuts, "swarm {seed}");
        for (k, p) in r.materialized.iter().enumerate() {
            let Fault::ExactPowerCut { at, reboot_cut, .. } = &p.fault else { continue };
            if !matches!(at, CutAt::Now) {
                let f = r.fired_cuts.iter().find(|f| f.entry == k && !f.reboot).expect("a cut says where it fell");
                assert!(!f.call.is_empty() && f.time_ns >= p.at_ms * 1_000_000, "swarm {seed}: {f:?}");
            }
            if reboot_cut.is_some() {
                reboot_cuts += 1;
                assert!(r.fired_cuts.iter().any(|f| f.entry == k && f.reboot), "swarm {seed}");
            }
        }
    }
    assert!(
        heal_time > 0 && boot_armed > 0 && reboot_cuts > 0 && recovery_reads > 0,
        "{heal_time} {boot_armed} {reboot_cuts} {recovery_reads}"
    );
}

#[test]
fn a_planned_fault_due_at_the_heal_happens_before_it() {
    let spec = scenarios::swarm(67);
    let plan = vec![PlannedFault {
        at_ms: spec.safety_ms,
        plus_ns: 0,
        node: 0,
        fault: Fault::PowerLoss { reboot_cut_after_calls: None },
    }];
    let r = run(WorldConfig::new(materialized_spec(&spec, plan), Bugs::none()));
    assert_eq!(r.coverage.get("power losses"), Some(&1));
    let late = vec![PlannedFault {
        at_ms: spec.safety_ms,
        plus_ns: 1,
        node: 0,
        fault: Fault::PowerLoss { reboot_cut_after_calls: None },
    }];
    let r = run(WorldConfig::new(materialized_spec(&spec, late), Bugs::none()));
    assert_eq!(r.coverage.get("power losses"), None, "an entry after the heal is not applied");
}

#[test]
fn a_path_generalises_to_files_of_its_kind() {
    let cases = [
        ("wal/0000000000000015.wal", "wal/*.wal"),
        ("n1/snapshots/0000000000000001_0000000000000078/indexes", "n1/snapshots/*_*/indexes"),
        ("n2g3/config.tmp", "n2g3/config.tmp"),
        ("n1g12/00000000000000BE.segment", "n1g12/*.segment"),
        ("names", "names"),
    ];
    for (path, glob) in cases {
        assert_eq!(generalise(path), glob);
        assert!(vfs::glob_match(glob, path), "{glob} matches {path}");
    }
}

/// What a shrink of a known seed file must give: the same checker, no more faults than the original
/// (`most` at most), an explicit plan with the random faults off, and a world that passes with the
/// switches off.
struct Case {
    name: &'static str,
    text: &'static str,
    most: usize,
}

const CASES: [Case; 2] = [
    // Crash points before WAL unlinks: PR 589's fix 3 needs a cut before an unlink and a later restart
    // that compacts segment refs — at most two faults (seed 2's world needs one).
    Case {
        name: "recovery_crash-between-segment-flush-and-wal-delete-2-segref-tuple-delete",
        text: include_str!(
            "../../seeds/recovery_crash-between-segment-flush-and-wal-delete-2-segref-tuple-delete.json"
        ),
        most: 2,
    },
    // A power loss with a reboot cut in a three-node, three-group world: one power loss on one node.
    Case {
        name: "swarm-0-config-no-dir-sync",
        text: include_str!("../../seeds/swarm-0-config-no-dir-sync.json"),
        most: 1,
    },
];

#[test]
fn shrinking_a_seed_file_keeps_its_failure_with_fewer_faults() {
    for case in CASES {
        let f = file(case.text);
        let checker = f.expect.checker.clone().expect("a violation");
        let cfg = f.config().expect("a valid world");
        let shrunk = shrink(&cfg, &checker, 300).expect("it fails as it expects");
        let (before, after) = (&shrunk.before, &shrunk.after);
        assert!(after.faults <= before.faults && after.faults <= case.most, "{}: {before:?} → {after:?}", case.name);
        let spec: &WorldSpec = &shrunk.config.spec;
        assert_eq!((spec.fault_every_ms, spec.recovery_crash_percent), (0, 0), "{}", case.name);
        assert!(
            spec.fault_plan.iter().all(|p| match &p.fault {
                Fault::ExactPowerCut { image, .. } => image.is_some(),
                f => matches!(
                    f,
                    Fault::VmCrash { .. } | Fault::WalRestart | Fault::SegmentWriterCrash | Fault::Isolate { .. }
                ),
            }),
            "{}: {:?}",
            case.name,
            spec.fault_plan
        );
        let again = run(shrunk.config.clone());
        assert_eq!(again.outcome.checker(), Some(checker.as_str()), "{}", case.name);
        let fixed = run(WorldConfig { bugs: Bugs::none(), ..shrunk.config.clone() });
        assert_eq!(fixed.outcome, Outcome::Pass, "{}: passes with the switch off", case.name);
        assert!(!shrunk.steps.is_empty() && shrunk.runs <= 300, "{}", case.name);
    }
}

#[test]
fn a_seed_file_that_does_not_fail_as_it_says_is_refused() {
    let f = file(FAILING[0].1);
    let fixed = WorldConfig { bugs: Bugs::none(), ..f.config().expect("a valid world") };
    let err = shrink(&fixed, "written-survives", 10).expect_err("it passes");
    assert!(err.contains("does not fail with written-survives"), "{err}");
}
