//! The engine's throughput, its time compression, what the harness costs on top of the system under
//! test, and the linearizability checker on large histories.
//!
//! Run by `cargo xtask bench` (which writes `BENCHMARKS.md`), or directly with
//! `cargo bench -p sim --bench engine -- [--reps N] [--profile default|swarm|bare] [--write-histories DIR]`. Prints a Markdown
//! section on stdout. Everything runs on one core, fixed seeds; each figure is the median of the
//! repetitions with (min–max).
//!
//! Events are the engine's unit of work: one actor step (a server, WAL, segment writer or worker handling
//! its mailbox) or one scheduled event (a delivery, a timer, a client operation, a fault).
#![allow(clippy::disallowed_methods, clippy::disallowed_types, clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use raft_core::Bugs;
use scenarios::WorldSpec;
use sim::linearizability::{self, Budget, Call, Model, Op, Ret, Verdict};
use sim::{RunResult, WorldConfig};

/// The default long run (`recovery/frequent-power-loss`: 60 simulated seconds of power losses).
const DEFAULT_SCENARIO: &str = "recovery/frequent-power-loss";
const DEFAULT_SEEDS: u64 = 4;
const SWARM_SEEDS: u64 = 100;
/// The engine's search budget per key (`World::run`).
const BUDGET_PER_KEY: u64 = 2_000_000;
/// `sim check-history`'s: its clock ends the search (60 s by default), not a step count.
const CLI_BUDGET_PER_KEY: u64 = u64::MAX;

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats { median: samples[samples.len() / 2], min: samples[0], max: samples[samples.len() - 1] }
}

fn fmt(s: &Stats, digits: usize) -> String {
    format!("{:.*} ({:.*}–{:.*})", digits, s.median, digits, s.min, digits, s.max)
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One repetition over a set of worlds: events, simulated seconds, wall seconds, runs.
#[derive(Clone, Copy, Default)]
struct Rep {
    events: u64,
    sim_s: f64,
    wall_s: f64,
    runs: u64,
}

impl Rep {
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.wall_s
    }
    fn compression(&self) -> f64 {
        self.sim_s / self.wall_s
    }
    fn runs_per_s(&self) -> f64 {
        self.runs as f64 / self.wall_s
    }
    fn ns_per_event(&self) -> f64 {
        self.wall_s * 1e9 / self.events as f64
    }
}

fn run_all(worlds: &[WorldConfig]) -> Rep {
    let start = Instant::now();
    let mut rep = Rep::default();
    for cfg in worlds {
        let r: RunResult = black_box(sim::run(cfg.clone()));
        rep.events += r.events;
        rep.sim_s += r.sim_time_ns as f64 / 1e9;
        rep.runs += 1;
    }
    rep.wall_s = start.elapsed().as_secs_f64();
    rep
}

fn default_worlds() -> Vec<WorldConfig> {
    let s = scenarios::find(DEFAULT_SCENARIO).expect("in the catalogue");
    (0..DEFAULT_SEEDS).map(|seed| WorldConfig::new(s.world(seed), Bugs::none())).collect()
}

fn swarm_worlds() -> Vec<WorldConfig> {
    (0..SWARM_SEEDS).map(|seed| WorldConfig::new(scenarios::swarm(seed), Bugs::none())).collect()
}

/// The same worlds stepping the same consensus and storage code with no fault (an empty plan, no random
/// faults, a perfect network) and, if `checkers` is false, no checker but `converges`.
fn without_faults(worlds: &[WorldConfig], checkers: bool) -> Vec<WorldConfig> {
    worlds
        .iter()
        .map(|cfg| WorldConfig {
            spec: WorldSpec {
                fault_plan: Vec::new(),
                fault_every_ms: 0,
                message_loss_percent: 0,
                message_duplicate_percent: 0,
                message_reorder_percent: 0,
                ..cfg.spec.clone()
            },
            checkers,
            ..cfg.clone()
        })
        .collect()
}

/// A linearizable history, generated: every operation takes effect at a random instant inside its
/// interval, in that order, against a register per key. `concurrency` operations overlap on average;
/// process `i % concurrency` issues operation `i` (for drawing; the checker looks only at times).
fn history(ops: usize, keys: u32, concurrency: u64, seed: u64) -> Vec<Op> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n.max(1)
    };
    let spacing = 1_000u64;
    let mut planned: Vec<(u64, Op)> = (0..ops as u64)
        .map(|i| {
            let invoke_ns = i * spacing + next(spacing);
            let complete_ns = invoke_ns + 1 + next(2 * concurrency * spacing);
            let at = invoke_ns + next(complete_ns - invoke_ns);
            let key = Some(format!("k{}", next(u64::from(keys))));
            let value = Some(format!("v{i}").into_bytes());
            let call = match next(3) {
                0 => Call::Write(value),
                1 => Call::Read,
                _ => Call::Cas { expected: if next(2) == 0 { None } else { Some(b"v0".to_vec()) }, new: value },
            };
            (at, Op { process: i % concurrency, key, call, ret: Ret::Unknown, invoke_ns, complete_ns })
        })
        .collect();
    planned.sort_by_key(|(at, _)| *at);
    let mut state: std::collections::BTreeMap<Option<String>, Option<Vec<u8>>> = std::collections::BTreeMap::new();
    let mut out = Vec::with_capacity(ops);
    for (_, mut op) in planned {
        let current = state.entry(op.key.clone()).or_insert(None);
        op.ret = match &op.call {
            Call::Write(v) => {
                *current = v.clone();
                Ret::Ok
            }
            Call::Read => Ret::Read(current.clone()),
            Call::Cas { expected, new } => {
                if current == expected {
                    *current = new.clone();
                    Ret::Ok
                } else {
                    Ret::CasRefused { previous: current.clone() }
                }
            }
            Call::Append(_) => unreachable!("no appends generated"),
        };
        out.push(op);
    }
    out.sort_by_key(|o| o.invoke_ns);
    out
}

/// The same history broken: its last read sees a value overwritten for certain before it began (a write
/// that completed before another write of the key began, which completed before the read began) — a
/// stale read, the commonest violation.
fn broken(mut h: Vec<Op>) -> Vec<Op> {
    let last = (0..h.len()).rev().find(|&i| matches!(h[i].ret, Ret::Read(_))).expect("a read");
    let writes: Vec<&Op> =
        h.iter().filter(|o| o.key == h[last].key && matches!(o.call, Call::Write(_)) && o.ret == Ret::Ok).collect();
    let stale = writes
        .iter()
        .filter(|w| {
            writes.iter().any(|x| x.invoke_ns > w.complete_ns && x.complete_ns < h[last].invoke_ns && x.call != w.call)
        })
        .max_by_key(|w| w.complete_ns)
        .map(|w| match &w.call {
            Call::Write(v) => v.clone(),
            _ => unreachable!("writes only"),
        })
        .expect("an overwritten write");
    h[last].ret = Ret::Read(stale);
    h
}

/// The histories the checker is timed on (and `--write-histories` writes for `sim check-history` and
/// Porcupine): name, file stem, history, its verdict.
fn histories() -> Vec<(&'static str, &'static str, Vec<Op>, Verdict)> {
    let crowded = history(1_000, 1, 20, 2);
    vec![
        (
            "10,000 operations over 100 keys, ~4 overlapping",
            "ops10000-keys100-c4",
            history(10_000, 100, 4, 1),
            Verdict::Linearizable,
        ),
        (
            "1,000 operations on one key, ~4 overlapping",
            "ops1000-keys1-c4",
            history(1_000, 1, 4, 2),
            Verdict::Linearizable,
        ),
        (
            "1,000 operations on one key, ~20 concurrent writers",
            "ops1000-keys1-c20",
            crowded.clone(),
            Verdict::Linearizable,
        ),
        ("the same with one stale read", "ops1000-keys1-c20-stale", broken(crowded), Verdict::NotLinearizable),
    ]
}

/// Milliseconds and the verdict's name, with a budget of `steps` per key.
fn linearizability_ms(h: &[Op], steps: u64, expected: Verdict) -> (f64, &'static str) {
    let start = Instant::now();
    let mut keep_going = || true;
    let mut budget = Budget {
        steps_per_key: steps,
        keep_going: (steps == CLI_BUDGET_PER_KEY).then_some(&mut keep_going as &mut dyn FnMut() -> bool),
        stop_at_violation: steps == BUDGET_PER_KEY,
    };
    let verdict = black_box(linearizability::check(h, Model::CasRegister, &mut budget)).verdict;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    assert!(verdict == expected || verdict == Verdict::Undecided, "{verdict:?}, expected {expected:?}");
    let said = match verdict {
        Verdict::Linearizable => "linearizable",
        Verdict::Undecided => "undecided (search budget spent)",
        Verdict::NotLinearizable => "not linearizable",
    };
    (ms, said)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let reps: usize = arg("--reps").map(|r| r.parse().expect("--reps N")).unwrap_or(5);
    // `--write-histories DIR` writes the checker's histories as JSON lines (for `cargo xtask bench`'s
    // comparison with Porcupine) and stops.
    if let Some(dir) = arg("--write-histories") {
        for (_, stem, h, _) in histories() {
            let path = std::path::Path::new(&dir).join(format!("{stem}.jsonl"));
            std::fs::write(&path, sim::history::to_jsonl(&h, Model::CasRegister)).expect("write a history");
        }
        return;
    }
    // `--profile WORKLOAD` runs one workload in a loop, for perf/callgrind.
    if let Some(which) = arg("--profile") {
        let worlds = match which.as_str() {
            "default" => default_worlds(),
            "swarm" => swarm_worlds(),
            "bare" => without_faults(&default_worlds(), false),
            other => panic!("unknown workload {other}"),
        };
        for _ in 0..reps {
            black_box(run_all(&worlds));
        }
        return;
    }
    let default = default_worlds();
    let swarm = swarm_worlds();
    let quiet = without_faults(&default, true);
    let bare = without_faults(&default, false);
    let mut samples: [Vec<Rep>; 4] = Default::default();
    for _ in 0..reps {
        for (k, worlds) in [&default, &swarm, &quiet, &bare].into_iter().enumerate() {
            samples[k].push(run_all(worlds));
        }
    }
    let of = |k: usize, f: fn(&Rep) -> f64| stats(samples[k].iter().map(f).collect());
    println!("## sim: engine throughput and time compression\n");
    println!(
        "One core, every checker on, no bug switch, {reps} repetitions. The default scenario is \
         `{DEFAULT_SCENARIO}` seeds 0..{DEFAULT_SEEDS} (three nodes, 60 simulated seconds of power losses \
         every ~0.7 s, then healed); swarm is `scenarios::swarm` seeds 0..{SWARM_SEEDS}. An event is one \
         actor step or one scheduled event (delivery, timer, client operation, fault). Goal: ≥ 1,000,000 \
         events/s per core with all checkers on.\n"
    );
    println!("| workload | events/s | simulated s per wall s | runs/s | events per run |");
    println!("|---|---|---|---|---|");
    for (k, name) in [(0, "default scenario"), (1, "swarm")] {
        let eps = of(k, Rep::events_per_s);
        println!(
            "| {name} | {} ({}–{}) | {} | {} | {} |",
            thousands(eps.median),
            thousands(eps.min),
            thousands(eps.max),
            fmt(&of(k, Rep::compression), 0),
            fmt(&of(k, Rep::runs_per_s), 1),
            thousands(samples[k][0].events as f64 / samples[k][0].runs as f64),
        );
    }
    println!(
        "\nReading the figures. A swarm run is shorter and more varied than the default scenario's, so more of \
         its time goes to booting worlds and to the end-of-run checks. Profile of `sim explore --swarm --seeds \
         0..100 --jobs 1` (perf, self and children): the world's loop 47% — log reads for append-entries \
         and the KV machine (`ServerLog::fetch`, segment reads) 15%, the WAL 10%, applying entries 9%; the \
         end-of-run checks 9%; `memmove` and the allocator about 25% between them (messages and entries are \
         owned `Vec`s, cloned per send). The linearizability search was 35% of it (a `BTreeSet` cache of \
         cloned bitsets and values) before its values were numbered, its cache made a flat open-addressing \
         table and its reads taken first: swarm went from about 830,000 events/s to what the table shows.\n\n\
         Profiling: `cargo build --release -p sim`, then `perf record --call-graph dwarf target/release/sim \
         explore --swarm --seeds 0..100 --jobs 1` and `perf report --children` (Debian's `linux-perf`), or \
         `valgrind --tool=callgrind` on a single `sim run --scenario swarm --seed N` for instruction counts."
    );
    let full = of(0, Rep::ns_per_event).median;
    let quiet_ns = of(2, Rep::ns_per_event).median;
    let bare_ns = of(3, Rep::ns_per_event).median;
    println!(
        "\n## sim: harness overhead\n\n\
         The default scenario's worlds, in the same process: as run (faults, every checker), with no fault \
         (empty plan, no random faults, perfect network) and every checker, and with no fault and no checker \
         but `converges` (which ends the run) — the same consensus and storage code stepped by the same \
         scheduler. Cost per event, median of {reps}. Goal: overhead ≤ 2×.\n"
    );
    println!("| run | ns per event | events per run | ratio to bare |");
    println!("|---|---|---|---|");
    for (k, name, ns) in
        [(0, "full (faults + checkers)", full), (2, "no fault, checkers", quiet_ns), (3, "bare", bare_ns)]
    {
        println!(
            "| {name} | {ns:.0} | {} | {:.2}× |",
            thousands(samples[k][0].events as f64 / samples[k][0].runs as f64),
            ns / bare_ns
        );
    }
    println!(
        "\n## sim: linearizability checker\n\n\
         Generated histories of puts, gets and compare-and-sets (each takes effect at a random instant \
         inside its interval), and one broken by a stale read; `linearizability::check` with the engine's \
         budget of {BUDGET_PER_KEY} search steps per key, and with `sim check-history`'s (no step bound; \
         its clock stops it, 60 s by default), {reps} repetitions. Goals: 10,000 operations in under 1 s; \
         1,000 operations on one key with 20 concurrent writers decided in under 1 s.\n"
    );
    println!("| history | engine's budget: ms | verdict | check-history's budget: ms | verdict |");
    println!("|---|---|---|---|---|");
    for (name, _, h, expected) in histories() {
        let engine: Vec<(f64, &str)> = (0..reps).map(|_| linearizability_ms(&h, BUDGET_PER_KEY, expected)).collect();
        let cli: Vec<(f64, &str)> = (0..reps).map(|_| linearizability_ms(&h, CLI_BUDGET_PER_KEY, expected)).collect();
        println!(
            "| {name} | {} | {} | {} | {} |",
            fmt(&stats(engine.iter().map(|r| r.0).collect()), 1),
            engine[0].1,
            fmt(&stats(cli.iter().map(|r| r.0).collect()), 1),
            cli[0].1
        );
    }
}
