//! `sim run`: one scenario, one seed; the trace on request; a seed file for a failure.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use clap::Args;

use sim::run_page::PageSource;

use super::page::write_page;
use super::{Plan, Recording, Usage, WorldArgs, report_failure, run_seed, scenario_named};

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The scenario (`sim list scenarios`).
    #[arg(long)]
    pub(crate) scenario: String,
    /// The seed.
    #[arg(long)]
    pub(crate) seed: u64,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    /// Prints the rendered trace (with its legend) before the result.
    #[arg(long)]
    pub(crate) trace: bool,
    /// With --trace: a MSG line per message delivered or dropped.
    #[arg(long)]
    pub(crate) messages: bool,
    /// With --trace: an FS line per filesystem call that changes or syncs a disk.
    #[arg(long)]
    pub(crate) fs: bool,
    /// Prints the result as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    /// Writes the clients' history as JSON lines (what `sim check-history` reads).
    #[arg(long, value_name = "FILE")]
    pub(crate) history: Option<std::path::PathBuf>,
    /// Writes a self-contained page drawing the run: members' roles and indexes, messages, faults, the
    /// clients' operations, the violation, and the trace beside it.
    #[arg(long, value_name = "OUT.html")]
    pub(crate) html: Option<std::path::PathBuf>,
}

pub(crate) fn run(args: &RunArgs) -> Result<u8, Usage> {
    let plan = Plan::new(scenario_named(&args.scenario)?, &args.world)?;
    let recording = Recording {
        messages: args.messages,
        fs: args.fs,
        timeline: args.html.is_some(),
        history: args.history.is_some(),
    };
    let f = run_seed(&plan, args.seed, recording);
    if let (Some(out), Ok(r)) = (&args.html, &f.result) {
        let title = format!("{} seed {}", plan.scenario.name, args.seed);
        let reproduce = plan.reproduce(args.seed);
        let source = PageSource { title: &title, reproduce: &reproduce, bugs: &plan.bugs };
        write_page(out, &source, r).map_err(Usage)?;
    }
    if args.trace
        && let Ok(r) = &f.result
    {
        println!("{}\n", sim::trace::LEGEND);
        for line in &r.trace {
            println!("{line}");
        }
        println!();
    }
    if let (Some(path), Ok(r)) = (&args.history, &f.result) {
        std::fs::write(path, sim::history::to_jsonl(&r.history, sim::linearizability::Model::CasRegister))
            .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
    }
    if args.json {
        println!("{}", f.json(&plan));
    } else if f.failed() {
        report_failure(&plan, &f, &args.world, &plan.reproduce(args.seed));
    } else {
        println!("seed {}: {}", f.seed, f.summary());
    }
    Ok(f.exit_code())
}
