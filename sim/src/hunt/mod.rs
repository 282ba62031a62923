//! The hunt: a coverage-guided search over worlds and fault plans (AFL's loop, applied to fault
//! schedules), for the crash windows a few filesystem calls wide that blind sampling finds by luck.
//!
//! Why: swarm draws a world and its faults at random; a bug that needs a power cut between a segment
//! flush and the WAL file's unlink, in a world whose WAL rolls over often, is found once in thousands
//! of seeds. The hunt keeps every run that reached a state no earlier run had ([`coverage`]) with its
//! faults written out as an explicit plan, and spends most runs on small changes of those
//! ([`mutate`]): a cut moved a few calls, another crash image, a second cut in the recovery, a slow
//! disk around it, another knob. A quarter of the runs are fresh worlds, so the hunt samples as swarm
//! does too.
//!
//! How it stays deterministic: runs go in batches of [`BATCH`]. A batch is made from the corpus as the
//! previous batches left it, and its results are taken back in batch order, so which worlds run — and
//! what each does — is a function of the hunt's seed alone; more jobs only run a batch faster. A run is
//! an ordinary world (`WorldSpec` with its plan): a finding replays, shrinks and regresses as a seed
//! file like any other.
//!
//! Owns: the corpus, the coverage seen so far, the calls seen (where a new cut may be armed), the choice
//! of the next worlds. Pure: no clock, no threads, no printing; `sim hunt` runs the batches.

pub mod coverage;
pub mod mutate;

use std::collections::BTreeSet;

use raft_core::Bugs;
use rand_chacha::ChaCha8Rng;
use scenarios::rng::{below, stream};
use scenarios::{Scenario, WorldSpec};
use serde_json::{Map, Value};

use crate::shrink::{generalise, materialized_spec};
use crate::{RunResult, WorldConfig};
use mutate::CallClass;

/// Runs per batch: the unit the corpus is updated by, whatever the number of jobs.
pub const BATCH: usize = 16;

/// One run in four is a fresh world (after the first batch, which is all fresh).
const FRESH_ONE_IN: u64 = 4;

/// A fresh run records its filesystem calls (to learn where cuts can be armed) while fewer than this
/// many have, and one fresh run in `TRACE_CALLS_ONE_IN` after that.
const TRACED_FIRST: u64 = 4;
const TRACE_CALLS_ONE_IN: u64 = 16;

/// Mutations stacked on one child: 1 to this many.
const MAX_STACK: u64 = 3;

/// A plan longer than this only shrinks (a long plan is a slow run, and rarely the point).
const MAX_PLAN: usize = 48;

/// What a hunt searches: the worlds it starts from and the switches on.
#[derive(Clone)]
pub struct HuntOptions {
    /// Fresh worlds are this scenario's (`swarm` for random worlds).
    pub scenario: Scenario,
    /// Knobs set on every fresh world (`--set`).
    pub overrides: Map<String, Value>,
    /// Switched-on pre-fix behaviours.
    pub bugs: Bugs,
    /// Decides the whole hunt.
    pub seed: u64,
    /// No guidance: every run a fresh world, as swarm samples (what the hunt is measured against).
    pub blind: bool,
}

/// Where a candidate world came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The scenario's world of this seed.
    Fresh {
        /// The world's seed.
        seed: u64,
    },
    /// Mutations of a corpus entry's world.
    Mutant {
        /// The run that put the entry in the corpus.
        parent: u64,
        /// What each mutation did.
        applied: Vec<String>,
    },
}

impl Origin {
    /// One line for a reader.
    pub fn describe(&self) -> String {
        match self {
            Origin::Fresh { seed } => format!("fresh world, seed {seed}"),
            Origin::Mutant { parent, applied } => format!("run {parent} mutated: {}", applied.join("; ")),
        }
    }
}

/// One run the hunt asks for.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its number in the hunt (from 0).
    pub run: u64,
    /// The world to run (with `trace_fs` on when its calls are to be learnt).
    pub config: WorldConfig,
    /// Where it came from.
    pub origin: Origin,
}

/// What the hunt made of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Absorbed {
    /// Coverage points no earlier run reached.
    pub new_points: usize,
    /// It failed (a checker's violation or a panic): a finding to confirm.
    pub failed: bool,
}

/// The hunt's counts so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HuntStats {
    /// Runs taken back.
    pub runs: u64,
    /// Corpus entries.
    pub corpus: usize,
    /// Distinct coverage points reached.
    pub points: usize,
    /// Kinds of call on kinds of file seen (where a cut may be armed).
    pub call_classes: usize,
}

struct Entry {
    run: u64,
    /// The run's world with its faults as an explicit plan (random faults off).
    spec: WorldSpec,
    new_points: usize,
    picked: u64,
}

/// The hunt's state between batches.
pub struct Hunt {
    options: HuntOptions,
    rng: ChaCha8Rng,
    corpus: Vec<Entry>,
    seen: BTreeSet<u64>,
    /// The kinds of call seen, sorted, each once.
    calls: Vec<CallClass>,
    next_run: u64,
    fresh: u64,
    traced: u64,
    runs: u64,
}

impl Hunt {
    /// A hunt with nothing run yet.
    pub fn new(options: HuntOptions) -> Hunt {
        let rng = stream(options.seed, 0x4_0A7);
        Hunt {
            options,
            rng,
            corpus: Vec::new(),
            seen: BTreeSet::new(),
            calls: Vec::new(),
            next_run: 0,
            fresh: 0,
            traced: 0,
            runs: 0,
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> HuntStats {
        HuntStats {
            runs: self.runs,
            corpus: self.corpus.len(),
            points: self.seen.len(),
            call_classes: self.calls.len(),
        }
    }

    /// The world seed of the hunt's `k`-th fresh world: hunt seed 0 starts where swarm's seeds start.
    pub fn fresh_seed(hunt_seed: u64, k: u64) -> u64 {
        hunt_seed.wrapping_mul(1_000_000).wrapping_add(k)
    }

    /// The next batch of runs, made from the corpus as the batches taken back so far left it.
    pub fn next_batch(&mut self) -> Vec<Candidate> {
        (0..BATCH).map(|_| self.next_candidate()).collect()
    }

    fn next_candidate(&mut self) -> Candidate {
        let run = self.next_run;
        self.next_run += 1;
        let fresh = self.options.blind
            || self.corpus.is_empty()
            || run < BATCH as u64
            || below(&mut self.rng, FRESH_ONE_IN) == 0;
        if !fresh {
            for _ in 0..8 {
                if let Some(c) = self.mutant(run) {
                    return c;
                }
            }
        }
        self.fresh_candidate(run)
    }

    fn fresh_candidate(&mut self, run: u64) -> Candidate {
        let seed = Hunt::fresh_seed(self.options.seed, self.fresh);
        self.fresh += 1;
        let spec = crate::seedfile::apply_overrides(&self.options.scenario.world(seed), &self.options.overrides)
            .expect("the overrides were checked on the scenario's world before the hunt");
        let mut config = WorldConfig::new(spec, self.options.bugs.clone());
        if self.traced < TRACED_FIRST || self.fresh.is_multiple_of(TRACE_CALLS_ONE_IN) {
            config.trace_fs = true;
            self.traced += 1;
        }
        Candidate { run, config, origin: Origin::Fresh { seed } }
    }

    /// A mutant of a corpus entry, or `None` when the mutations drawn made no valid world.
    fn mutant(&mut self, run: u64) -> Option<Candidate> {
        let k = self.pick_entry();
        self.corpus[k].picked += 1;
        let parent = self.corpus[k].run;
        let mut spec = self.corpus[k].spec.clone();
        let stack = 1 + below(&mut self.rng, MAX_STACK);
        let mut applied = Vec::new();
        for _ in 0..stack {
            let done = if spec.fault_plan.len() >= MAX_PLAN {
                let gone = below(&mut self.rng, spec.fault_plan.len() as u64) as usize;
                spec.fault_plan.remove(gone);
                Some(format!("drop entry {gone} (a long plan)"))
            } else {
                mutate::mutate_once(&mut spec, &self.calls, &mut self.rng)
            };
            applied.extend(done);
        }
        if applied.is_empty() {
            return None;
        }
        // Entries in time order, as a materialised plan is (equal times keep their order).
        spec.fault_plan.sort_by_key(|p| (p.at_ms, p.plus_ns));
        let config = WorldConfig::new(spec, self.options.bugs.clone());
        config.validate().ok()?;
        Some(Candidate { run, config, origin: Origin::Mutant { parent, applied } })
    }

    /// A corpus entry, weighted to those that brought more new coverage and were picked less.
    fn pick_entry(&mut self) -> usize {
        let weight = |e: &Entry| (1 + e.new_points.min(32) as u64) * 64 / (4 + e.picked);
        let total: u64 = self.corpus.iter().map(|e| weight(e).max(1)).sum();
        let mut at = below(&mut self.rng, total);
        for (k, e) in self.corpus.iter().enumerate() {
            let w = weight(e).max(1);
            if at < w {
                return k;
            }
            at -= w;
        }
        self.corpus.len() - 1
    }

    /// Takes a run back (call in run order): its new coverage, whether it joins the corpus, the calls
    /// it made. A run that panicked adds nothing but its failure.
    pub fn absorb(&mut self, candidate: &Candidate, result: &Result<RunResult, String>) -> Absorbed {
        self.runs += 1;
        let Ok(r) = result else { return Absorbed { new_points: 0, failed: true } };
        if candidate.config.trace_fs {
            self.learn_calls(&r.trace);
        }
        let new_points = coverage::points(r).into_iter().filter(|p| self.seen.insert(*p)).count();
        let failed = r.outcome.checker().is_some();
        // A run whose plan overflowed the recorder cannot be replayed as one: it joins no corpus.
        if new_points > 0 && !failed && !r.materialized_overflowed {
            let spec = materialized_spec(&candidate.config.spec, r.materialized.clone());
            self.corpus.push(Entry { run: candidate.run, spec, new_points, picked: 0 });
        }
        Absorbed { new_points, failed }
    }

    /// Adds the (call, kind of path) pairs of a trace's FS lines to the calls a cut may be armed at.
    fn learn_calls(&mut self, trace: &[String]) {
        for line in trace {
            let Some((_, "FS", detail)) = coverage::columns(line) else { continue };
            // `#seq call path [-> target] [@offset+length] [-> error]`
            let mut words = detail.split_whitespace().skip(1);
            let (Some(call), Some(path)) = (words.next(), words.next()) else { continue };
            self.calls.push((call.to_owned(), path_class(path)));
        }
        self.calls.sort_unstable();
        self.calls.dedup();
    }
}

/// A path as a glob over every path of its kind: file numbers (`shrink::generalise`) and any other
/// number (a node's or a group's directory) are `*`.
pub fn path_class(path: &str) -> String {
    let mut out = String::new();
    for c in generalise(path).chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('*') {
                out.push('*');
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_classes_cover_every_file_of_a_kind() {
        let cases = [
            ("wal/0000000000000092.wal", "wal/*.wal"),
            ("n1g2/snapshots/0000000000000001_0000000000000320/indexes", "n*g*/snapshots/*_*/indexes"),
            ("n3/config.tmp", "n*/config.tmp"),
            ("names", "names"),
        ];
        for (path, want) in cases {
            assert_eq!(path_class(path), want, "{path}");
        }
    }
}
