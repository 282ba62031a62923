//! `sim list scenarios|bugs|checkers`.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use clap::ValueEnum;
use raft_core::Bug;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ListWhat {
    Scenarios,
    Bugs,
    Checkers,
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
    }
    0
}
