//! `sim list scenarios|bugs|checkers|faults|knobs`.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::fmt::Write as _;
use std::io::Write as _;

use clap::ValueEnum;
use raft_core::Bug;

/// `writeln!` into the listing (a `String` cannot fail to take a write).
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ListWhat {
    Scenarios,
    Bugs,
    Checkers,
    Faults,
    Knobs,
}

pub(crate) fn list(what: ListWhat) -> u8 {
    let mut out = String::new();
    write_list(what, &mut out);
    // A reader that stops early (`| head`) is not an error.
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("sim: error: writing the list: {e}");
            1
        }
        _ => 0,
    }
}

/// The listing of `what`, as lines.
fn write_list(what: ListWhat, out: &mut String) {
    match what {
        ListWhat::Scenarios => {
            for s in scenarios::catalogue() {
                w!(out, "{}", s.name);
                for line in s.why.lines() {
                    w!(out, "    {}", line.trim());
                }
                if !s.targets.is_empty() {
                    w!(out, "    targets: {}", s.targets.join(", "));
                }
            }
        }
        ListWhat::Bugs => {
            // One name a line: scripts read it (`scripts/pr589.sh`, `switch-table.sh`, `cargo xtask bench`).
            for b in Bug::ALL {
                w!(out, "{}", b.name());
            }
        }
        ListWhat::Checkers => {
            for c in sim::checkers::CHECKERS {
                w!(out, "{c}");
            }
        }
        ListWhat::Faults => {
            use sim::fault_classes::{Drawn, FAULT_CLASSES};
            for c in FAULT_CLASSES {
                w!(out, "{}", c.name);
                w!(out, "    {}", c.what);
                match c.drawn {
                    Drawn::Knob(knob) => w!(out, "    drawn by swarm ({knob}); counted as \"{}\"", c.fired),
                    Drawn::Never(why) => w!(out, "    never drawn: {why}"),
                }
            }
        }
        ListWhat::Knobs => {
            let spec = scenarios::swarm(0);
            w!(out, "knob (--set KNOB=VALUE), its value in swarm seed 0's world, the accepted range, why");
            for k in sim::world::knob_table(&spec) {
                let range = format!("{}..={}", k.min, k.max);
                w!(out, "{:<28} {:>10}  {range:<20} {}", k.knob, k.value, k.why);
            }
            let model = serde_json::to_string(&spec.crash_model).unwrap_or_default();
            w!(out, "{:<28} {:>10}  one of {CRASH_MODELS}", "crash_model", model.trim_matches('"'));
            w!(out, "fault_plan: a list of planned faults (see docs/seed-files.md)");
        }
    }
}

/// The crash models a world may name.
const CRASH_MODELS: &str = "no_loss, lose_unsynced, pessimistic, ext4_ordered, unsynced_garbage, corrupting";
