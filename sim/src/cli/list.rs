//! `sim list scenarios|bugs|checkers|faults`.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use clap::ValueEnum;
use raft_core::Bug;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ListWhat {
    Scenarios,
    Bugs,
    Checkers,
    Faults,
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
    }
    0
}
