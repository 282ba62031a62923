//! `sim shrink`: a failing seed file cut down to the fewest faults and the smallest world that still
//! fail with the same checker, its report, and the shrunk seed file.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use scenarios::WorldSpec;
use serde_json::Value;
use sim::Outcome;
use sim::seedfile::{self, ExpectedOutcome, SeedFile};

use super::{Usage, first_line, scenario_named};

#[derive(Args)]
pub(crate) struct ShrinkArgs {
    /// The seed file (it must expect a violation, and find it).
    pub(crate) file: PathBuf,
    /// Where the shrunk seed file is written.
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub(crate) out: PathBuf,
    /// Candidate runs to spend at most (each a whole run of the world).
    #[arg(long, value_name = "N", default_value_t = sim::shrink::DEFAULT_MAX_RUNS)]
    pub(crate) max_runs: usize,
}

pub(crate) fn shrink(args: &ShrinkArgs) -> Result<u8, Usage> {
    let path = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|e| Usage(format!("{path}: {e}")))?;
    let file = SeedFile::parse(&text).map_err(|e| Usage(format!("{path}: {e}")))?;
    let checker = match (&file.expect.outcome, &file.expect.checker) {
        (ExpectedOutcome::Violation, Some(c)) => c.clone(),
        _ => return Err(Usage(format!("{path}: it expects no violation of a named checker: nothing to shrink"))),
    };
    let scenario = scenario_named(&file.scenario)?;
    let config = file.config().map_err(|e| Usage(format!("{path}: {e}")))?;
    let started = Instant::now();
    // A candidate world may panic the system under test; it is then simply not the same failure.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let msg = info.payload().downcast_ref::<String>().map(String::as_str);
        let msg = msg.or_else(|| info.payload().downcast_ref::<&str>().copied()).unwrap_or("");
        eprintln!("sim: a candidate panicked (not the same failure): {}", first_line(msg));
    }));
    let shrunk = sim::shrink::shrink(&config, &checker, args.max_runs);
    std::panic::set_hook(hook);
    let shrunk = shrunk.map_err(|e| Usage(format!("{path}: {e}")))?;
    let wall = started.elapsed().as_secs_f64();

    let (b, a) = (&shrunk.before, &shrunk.after);
    println!(
        "{path}: {checker}, shrunk in {} runs, {wall:.1} s{}",
        shrunk.runs,
        if shrunk.budget_exhausted { " (run budget spent)" } else { "" }
    );
    println!("  {:<34} {:>12} {:>12}", "", "before", "after");
    let secs = |ns: u64| format!("{:.3} s", ns as f64 / 1e9);
    let rows = [
        ("faults (plan entries)", b.faults.to_string(), a.faults.to_string()),
        ("  of which carry a reboot cut", b.reboot_cuts.to_string(), a.reboot_cuts.to_string()),
        ("unsynced pieces the images keep", b.kept_pieces.to_string(), a.kept_pieces.to_string()),
        ("events", b.events.to_string(), a.events.to_string()),
        ("simulated time", secs(b.sim_time_ns), secs(a.sim_time_ns)),
    ];
    for (what, before, after) in rows {
        println!("  {what:<34} {before:>12} {after:>12}");
    }
    let changed = changed_knobs(&file.world, &shrunk.config.spec);
    if !changed.is_empty() {
        println!("  knobs: {}", changed.join(", "));
    }
    println!("steps:");
    for step in &shrunk.steps {
        println!("  {step}");
    }
    println!("shrunk plan:");
    for line in sim::shrink::describe_plan(&shrunk.config.spec.fault_plan, &shrunk.result.fired_cuts) {
        println!("  {line}");
    }
    if shrunk.config.spec.fault_plan.is_empty() {
        let w = &shrunk.config.spec;
        let net = [
            ("message loss", w.message_loss_percent),
            ("duplication", w.message_duplicate_percent),
            ("overtaking", w.message_reorder_percent),
        ];
        let net: Vec<String> = net.iter().filter(|(_, p)| *p > 0).map(|(what, p)| format!("{what} {p}%")).collect();
        if net.is_empty() {
            println!("  (no fault: the failure needs only an interleaving)");
        } else {
            println!("  (no planned fault; the safety phase keeps {})", net.join(", "));
        }
    }
    println!("what happens (the shrunk run's crash, disk, failure and violation lines):");
    let notable =
        |l: &&String| l.split_whitespace().nth(2).is_some_and(|k| ["CRASH", "DISK", "FAIL", "VIOLATION"].contains(&k));
    for line in shrunk.result.trace.iter().filter(notable).take(40) {
        println!("  {line}");
    }

    let v = match &shrunk.result.outcome {
        Outcome::Violation(v) => v,
        Outcome::Pass => unreachable!("a shrunk world fails"),
    };
    // Every knob that differs from the scenario's world, so that replay finds the world it derives.
    let overrides = seedfile::overrides_between(&scenario.world(file.seed), &shrunk.config.spec);
    let out = SeedFile {
        format_version: seedfile::FORMAT_VERSION,
        scenario: file.scenario.clone(),
        seed: file.seed,
        bugs: file.bugs.clone(),
        overrides,
        expect: file.expect.clone(),
        note: format!(
            "shrunk by `sim shrink` from {} ({} → {} faults, {} → {} kept unsynced pieces, {} → {} events): {} on {}: {}",
            args.file.file_name().map_or(path.clone(), |n| n.to_string_lossy().into_owned()),
            b.faults,
            a.faults,
            b.kept_pieces,
            a.kept_pieces,
            b.events,
            a.events,
            v.checker,
            v.node,
            first_line(&v.detail)
        ),
        trace_hash: format!("{:016x}", shrunk.result.trace_hash),
        world: shrunk.config.spec.clone(),
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Usage(format!("cannot create {}: {e}", dir.display())))?;
    }
    let tmp = args.out.with_extension("json.tmp");
    std::fs::write(&tmp, out.render()).map_err(|e| Usage(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &args.out).map_err(|e| Usage(format!("cannot write {}: {e}", args.out.display())))?;
    println!("wrote {} (check it: sim replay --check {})", args.out.display(), args.out.display());
    Ok(0)
}

/// `knob a → b` for every knob but the plan that shrinking changed.
pub(crate) fn changed_knobs(from: &WorldSpec, to: &WorldSpec) -> Vec<String> {
    let before = match serde_json::to_value(from).expect("a world serialises") {
        Value::Object(m) => m,
        _ => unreachable!("a world is an object"),
    };
    seedfile::overrides_between(from, to)
        .into_iter()
        .filter(|(k, _)| k != "fault_plan")
        .map(|(k, v)| format!("{k} {} → {v}", before.get(&k).map_or(String::new(), Value::to_string)))
        .collect()
}
