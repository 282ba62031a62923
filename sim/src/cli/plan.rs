//! A seed's plan and its run: the scenario, overrides and switches an exploration shares (`Plan`), one
//! finished seed (`Finished`: its result, summary line, JSON line and exit code), and running a world with
//! a panic of the system under test caught.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use scenarios::{Scenario, WorldSpec};
use serde_json::{Map, Value, json};
use sim::seedfile::{self};
use sim::{Outcome, RunResult, WorldConfig};

use super::{Usage, WorldArgs, first_line};

/// Everything a seed needs besides the seed: the scenario, the overrides, the switches.
#[derive(Clone)]
pub(crate) struct Plan {
    pub(crate) scenario: Scenario,
    pub(crate) overrides: Map<String, Value>,
    pub(crate) bugs: Vec<String>,
}

impl Plan {
    pub(crate) fn new(scenario: Scenario, world: &WorldArgs) -> Result<Plan, Usage> {
        let mut overrides = Map::new();
        for set in &world.sets {
            seedfile::parse_override(set, &mut overrides).map_err(Usage)?;
        }
        seedfile::bugs_named(&world.bugs).map_err(Usage)?;
        let plan = Plan { scenario, overrides, bugs: world.bugs.clone() };
        // Checked once here so that a bad knob is a usage error, not a failure of every seed.
        plan.config(0).map_err(Usage)?;
        Ok(plan)
    }

    pub(crate) fn spec(&self, seed: u64) -> Result<WorldSpec, String> {
        seedfile::apply_overrides(&self.scenario.world(seed), &self.overrides)
    }

    pub(crate) fn config(&self, seed: u64) -> Result<WorldConfig, String> {
        let config = WorldConfig::new(self.spec(seed)?, seedfile::bugs_named(&self.bugs)?);
        config.validate()?;
        Ok(config)
    }

    /// The command that runs `seed` again.
    pub(crate) fn reproduce(&self, seed: u64) -> String {
        format!("sim run --scenario {} --seed {seed}{}", self.scenario.name, self.flags())
    }

    /// The switches and knobs as command-line flags (` --bug B … --set K=V …`), as every reproduce line
    /// and seed-file note spells them.
    pub(crate) fn flags(&self) -> String {
        let bugs = self.bugs.iter().map(|b| format!(" --bug {b}"));
        let sets = self.overrides.iter().map(|(k, v)| format!(" --set {k}={v}"));
        bugs.chain(sets).collect()
    }
}

/// One finished seed.
pub(crate) struct Finished {
    pub(crate) seed: u64,
    /// The run, or the panic message of the system under test.
    pub(crate) result: Result<RunResult, String>,
    /// With `--determinism`: where a second run of the seed first differed.
    pub(crate) diverged: Option<String>,
    pub(crate) wall_ms: u128,
}

impl Finished {
    pub(crate) fn exit_code(&self) -> u8 {
        if self.diverged.is_some() {
            return 14;
        }
        match &self.result {
            Ok(r) => r.outcome.exit_code(),
            Err(_) => 13,
        }
    }

    pub(crate) fn failed(&self) -> bool {
        self.exit_code() != 0
    }

    /// One line: outcome, checker, node, detail.
    pub(crate) fn summary(&self) -> String {
        if let Some(d) = &self.diverged {
            return format!("NOT DETERMINISTIC: {d}");
        }
        match &self.result {
            Ok(r) => match &r.outcome {
                Outcome::Pass => format!(
                    "PASS ({:.1} s simulated, {} events, trace {:016x})",
                    r.sim_time_ns as f64 / 1e9,
                    r.events,
                    r.trace_hash
                ),
                Outcome::Violation(v) => format!(
                    "VIOLATION {} on {} at {:.3} s: {}",
                    v.checker,
                    v.node,
                    v.time_ns as f64 / 1e9,
                    first_line(&v.detail)
                ),
            },
            Err(panic) => format!("PANIC in the system under test: {}", first_line(panic)),
        }
    }

    /// A liveness violation's diagnosis: why the group is stuck, then a line per member (empty otherwise).
    pub(crate) fn diagnosis(&self) -> &[String] {
        match &self.result {
            Ok(RunResult { outcome: Outcome::Violation(v), .. }) => &v.diagnosis,
            _ => &[],
        }
    }

    pub(crate) fn json(&self, plan: &Plan) -> Value {
        let (outcome, checker, node, detail) = match &self.result {
            _ if self.diverged.is_some() => ("nondeterministic", None, None, self.diverged.clone()),
            Ok(r) => match &r.outcome {
                Outcome::Pass => ("pass", None, None, None),
                Outcome::Violation(v) => {
                    ("violation", Some(v.checker.clone()), Some(v.node.clone()), Some(v.detail.clone()))
                }
            },
            Err(panic) => ("panic", None, None, Some(panic.clone())),
        };
        let run = self.result.as_ref().ok();
        json!({
            "seed": self.seed,
            "scenario": plan.scenario.name,
            "bugs": plan.bugs,
            "overrides": plan.overrides,
            "outcome": outcome,
            "checker": checker,
            "node": node,
            "detail": detail,
            "sim_time_ns": run.map(|r| r.sim_time_ns),
            "events": run.map(|r| r.events),
            "trace_hash": run.map(|r| format!("{:016x}", r.trace_hash)),
            "wall_ms": self.wall_ms,
            "exit_code": self.exit_code(),
            "reproduce": plan.reproduce(self.seed),
            "diagnosis": self.diagnosis(),
        })
    }
}

/// Runs one world, catching a panic of the system under test.
pub(crate) fn run_world(config: WorldConfig) -> Result<RunResult, String> {
    catch_unwind(AssertUnwindSafe(|| sim::run(config))).map_err(|payload| sim::sweep::panic_message(payload.as_ref()))
}

/// What a run records besides its notable events: MSG and FS trace lines, and the timeline its page
/// draws. None of it changes the run.
#[derive(Clone, Copy)]
pub(crate) struct Recording {
    pub(crate) messages: bool,
    pub(crate) fs: bool,
    pub(crate) timeline: bool,
    /// Keep every client operation (`--history`).
    pub(crate) history: bool,
}

impl Recording {
    /// Notable events only.
    pub(crate) const NOTABLE: Recording = Recording { messages: false, fs: false, timeline: false, history: false };
}

pub(crate) fn run_seed(plan: &Plan, seed: u64, recording: Recording) -> Finished {
    let started = Instant::now();
    let mut config = plan.config(seed).expect("checked when the plan was made");
    config.trace_messages = recording.messages;
    config.trace_fs = recording.fs;
    config.record_timeline = recording.timeline;
    config.keep_history = recording.history;
    let result = run_world(config);
    Finished { seed, result, diverged: None, wall_ms: started.elapsed().as_millis() }
}

/// Runs `seed` twice (`explore --determinism`): a divergence is a failure of its own.
pub(crate) fn run_seed_twice(plan: &Plan, seed: u64) -> Finished {
    let started = Instant::now();
    let config = plan.config(seed).expect("checked when the plan was made");
    let diverged = match catch_unwind(AssertUnwindSafe(|| sim::check_determinism(&config))) {
        Ok(Ok(_)) | Err(_) => None, // a panic is reported by the run below
        Ok(Err(d)) => {
            Some(format!("first divergence at step {}: {:?} / {:?}", d.event, d.last_lines.0, d.last_lines.1))
        }
    };
    let result = run_world(config);
    Finished { seed, result, diverged, wall_ms: started.elapsed().as_millis() }
}
