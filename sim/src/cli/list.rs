//! `sim list scenarios|bugs|checkers|faults|knobs`.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use clap::ValueEnum;
use raft_core::Bug;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ListWhat {
    Scenarios,
    Bugs,
    Checkers,
    Faults,
    Knobs,
}

pub(crate) fn list(what: ListWhat) -> u8 {
    match what {
        ListWhat::Scenarios => {
            for s in scenarios::catalogue() {
                println!("{}", s.name);
                for line in s.why.lines() {
                    println!("    {}", line.trim());
                }
                if !s.targets.is_empty() {
                    println!("    targets: {}", s.targets.join(", "));
                }
            }
        }
        ListWhat::Bugs => {
            for b in Bug::ALL {
                println!("{}", b.name());
            }
        }
        ListWhat::Checkers => {
            for c in sim::checkers::CHECKERS {
                println!("{c}");
            }
        }
        ListWhat::Faults => {
            use sim::fault_classes::{Drawn, FAULT_CLASSES};
            for c in FAULT_CLASSES {
                println!("{}", c.name);
                println!("    {}", c.what);
                match c.drawn {
                    Drawn::Knob(knob) => println!("    drawn by swarm ({knob}); counted as \"{}\"", c.fired),
                    Drawn::Never(why) => println!("    never drawn: {why}"),
                }
            }
        }
        ListWhat::Knobs => {
            let spec = scenarios::swarm(0);
            println!("knob (--set KNOB=VALUE), its value in swarm seed 0's world, the accepted range, why");
            for k in sim::world::knob_table(&spec) {
                let range = format!("{}..={}", k.min, k.max);
                println!("{:<28} {:>10}  {range:<20} {}", k.knob, k.value, k.why);
            }
            let model = serde_json::to_string(&spec.crash_model).unwrap_or_default();
            println!("{:<28} {:>10}  one of {CRASH_MODELS}", "crash_model", model.trim_matches('"'));
            println!("fault_plan: a list of planned faults (see docs/seed-files.md)");
        }
    }
    0
}

/// The crash models a world may name.
const CRASH_MODELS: &str = "no_loss, lose_unsynced, pessimistic, ext4_ordered, unsynced_garbage, corrupting";
