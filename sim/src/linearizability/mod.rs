//! The `linearizability` checker: is a concurrent history of operations on registers (or on the keys of
//! a key-value store) equivalent to some sequential execution that respects real time? The engine judges
//! every run's client history with it, and `sim check-history` judges histories recorded anywhere
//! (Jepsen, Knossos, a user's own system; `crate::history` reads them).
//!
//! Per key (Horn & Kroening's P-compositionality: a history is linearizable iff each key's is), with the
//! Wing–Gong–Lowe search as Porcupine does it (a linked list of call/return events, a stack of linearized
//! calls, and a cache of (linearized set, state) pairs already explored), written here. Every value a
//! key's operations mention is numbered first, so the search steps a register of `u32` ids and never
//! clones a value; an append's result is numbered when it is first made. The cache is an open-addressing
//! table over a flat arena of bitsets, keyed by a 64-bit fingerprint (a Zobrist hash of the set, updated
//! by one XOR per step, mixed with the state): a lookup compares whole bitsets only on a fingerprint
//! match, and an entry costs its bitset's words plus about 20 bytes, with no allocation of its own.
//!
//! Key invariant: an operation whose outcome is unknown (no reply: the client timed out, crashed, or the
//! run ended) may or may not have taken effect, and its result is unconstrained; its return lies after
//! every other event, where taking effect harms nothing — which is the same as never. A search that
//! exceeds its budget — steps, the caller's clock, or 2 GiB of memory for one key — answers `Undecided`
//! rather than hanging, exhausting the machine or guessing.
//!
//! For a history that is not linearizable, the search also says why, as Porcupine does: the longest
//! sequence of operations it could linearize (with the state after each), the operation whose return it
//! could not pass there, and the states that operation could have seen.

use std::collections::BTreeMap;

mod model;
mod search;
mod stale;
pub mod windows;

use search::check_key;

/// A register's value: `None` is absent (nil).
pub type Value = Option<Vec<u8>>;

/// What an operation asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// Read the value (`read`, `get`).
    Read,
    /// Set the value (`write`, `put`).
    Write(Value),
    /// Set the value to `new` if it is `expected`.
    Cas {
        /// Required current value.
        expected: Value,
        /// New value.
        new: Value,
    },
    /// Append bytes to the value (absent counts as empty).
    Append(Vec<u8>),
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// The operation took effect (a write, an append, a compare-and-set that applied).
    Ok,
    /// A read's value.
    Read(Value),
    /// A compare-and-set that did not apply, having seen `previous` (which is not what it expected).
    CasRefused {
        /// The value it saw.
        previous: Value,
    },
    /// No reply: it may or may not have taken effect, at any time after its invocation.
    Unknown,
}

/// No process: an open-loop generator's operation (lanes are assigned when the history is drawn).
pub const NO_PROCESS: u64 = u64::MAX;

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Which client (process) issued it, or [`NO_PROCESS`].
    pub process: u64,
    /// The key (`None`: the one register of a register history).
    pub key: Option<String>,
    /// What was asked.
    pub call: Call,
    /// What came back.
    pub ret: Ret,
    /// When it was invoked.
    pub invoke_ns: u64,
    /// When it returned (ignored for [`Ret::Unknown`]).
    pub complete_ns: u64,
}

/// What a history's operations may be; `sim check-history --model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Reads and writes.
    Register,
    /// Reads, writes and compare-and-sets.
    CasRegister,
    /// Gets, puts, appends (and compare-and-sets), per key; a key never written reads as nil or as the
    /// empty string (histories of both kinds exist), which are one state here.
    Kv,
}

impl Model {
    /// Every model, in the order `--model` lists them.
    pub const ALL: [Model; 3] = [Model::Register, Model::CasRegister, Model::Kv];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Model::Register => "register",
            Model::CasRegister => "cas-register",
            Model::Kv => "kv",
        }
    }

    /// The model of that name.
    pub fn named(name: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the model has this operation.
    pub fn admits(self, call: &Call) -> bool {
        match call {
            Call::Read | Call::Write(_) => true,
            Call::Cas { .. } => self != Model::Register,
            Call::Append(_) => self == Model::Kv,
        }
    }

    /// The smallest model that admits every operation (`kv` only if one appends).
    pub fn of(history: &[Op]) -> Model {
        if history.iter().any(|o| matches!(o.call, Call::Append(_))) {
            Model::Kv
        } else if history.iter().any(|o| matches!(o.call, Call::Cas { .. })) {
            Model::CasRegister
        } else {
            Model::Register
        }
    }
}

/// A verdict, for a key or a whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Some linearization exists.
    Linearizable,
    /// The search ran out of budget.
    Undecided,
    /// No linearization exists.
    NotLinearizable,
}

/// How much searching a check may do.
pub struct Budget<'a> {
    /// Search steps per key (the engine's deterministic bound).
    pub steps_per_key: u64,
    /// Asked every 65,536 steps: false ends the search, `Undecided` (a wall-clock budget, from the CLI).
    pub keep_going: Option<&'a mut dyn FnMut() -> bool>,
    /// Stop at the first key that is not linearizable (the engine), rather than going on to the keys after
    /// it in the same pass. (With `keep_going`, a violation ends the passes either way: keys not yet
    /// decided then stay undecided.)
    pub stop_at_violation: bool,
}

impl Budget<'_> {
    /// A bound on steps only.
    pub fn steps(steps_per_key: u64) -> Budget<'static> {
        Budget { steps_per_key, keep_going: None, stop_at_violation: true }
    }
}

/// The verdict on one key and, if it is not linearizable, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReport {
    /// The key.
    pub key: Option<String>,
    /// Its verdict.
    pub verdict: Verdict,
    /// Its operations, as indices into the history.
    pub ops: Vec<usize>,
    /// The longest sequence of its operations the search linearized (history indices, in order): all of
    /// them for a linearizable key.
    pub linearized: Vec<usize>,
    /// The state after each of `linearized`.
    pub states_after: Vec<Value>,
    /// Not linearizable: the operation whose return the search could not pass after `linearized`.
    pub failing: Option<usize>,
    /// The states the register held at the deepest points the search reached (each after some
    /// linearization of as many operations as `linearized`, not necessarily the one shown): what
    /// `failing` could have seen there.
    pub could_have_seen: Vec<Value>,
    /// Set when the stale-read check decided the key (the search ran out first): why `failing`, a read,
    /// cannot have returned what it did.
    pub stale: Option<Stale>,
    /// Search steps spent.
    pub steps: u64,
    /// Undecided because the caller's budget ended or the search reached its memory cap, not its step
    /// budget (a later pass with more steps would not help).
    pub cut_short: bool,
}

/// Why a read is stale whatever the order of the writes before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// This write (history index) took effect after every write of the value the read returned had
    /// completed, and before the read began.
    OverwrittenBy(usize),
    /// Nothing wrote the value before the read returned.
    NeverWritten,
}

/// The verdict on a history: the worst of its keys' (not linearizable, then undecided).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// One per key in key order (the engine's check stops at the first key that fails).
    pub keys: Vec<KeyReport>,
}

impl KeyReport {
    /// A key's report before its search says more than `verdict`.
    pub(super) fn unjudged(key: Option<&str>, verdict: Verdict, ops: Vec<usize>) -> KeyReport {
        KeyReport {
            key: key.map(str::to_owned),
            verdict,
            ops,
            linearized: Vec::new(),
            states_after: Vec::new(),
            failing: None,
            could_have_seen: Vec::new(),
            stale: None,
            steps: 0,
            cut_short: false,
        }
    }
}

impl Report {
    /// The first key with the report's verdict (the one to explain).
    pub fn worst(&self) -> Option<&KeyReport> {
        self.keys.iter().find(|k| k.verdict == self.verdict)
    }
}

/// Steps per key of an open-ended check's first pass (`Budget::keep_going` set); each later pass gives
/// the keys still undecided eight times as many. So one hard key cannot hide another key's quick
/// violation, and the passes repeat at most about a seventh of the work (1/8 + 1/64 + …).
pub const FIRST_PASS_STEPS: u64 = 1 << 14;

/// Checks a history key by key (keys are independent registers in every model). With a caller's own
/// budget (`keep_going`), in passes of growing step budgets over the keys still undecided, until every
/// key is decided, a key is not linearizable (which settles the history), or the budget ends.
pub fn check(history: &[Op], model: Model, budget: &mut Budget<'_>) -> Report {
    let mut by_key: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, o) in history.iter().enumerate() {
        by_key.entry(o.key.as_deref()).or_default().push(i);
    }
    let open_ended = budget.keep_going.is_some();
    let full = budget.steps_per_key;
    let mut pass = if open_ended { full.min(FIRST_PASS_STEPS) } else { full };
    let mut keys: Vec<KeyReport> =
        by_key.into_iter().map(|(key, ops)| KeyReport::unjudged(key, Verdict::Undecided, ops)).collect();
    let verdict = loop {
        budget.steps_per_key = pass;
        let mut verdict = Verdict::Linearizable;
        let mut out_of_time = false;
        for k in &mut keys {
            if k.verdict == Verdict::Undecided && !out_of_time {
                if budget.keep_going.as_mut().is_none_or(|keep_going| keep_going()) {
                    let spent = k.steps;
                    *k = check_key(history, model, k.key.as_deref(), std::mem::take(&mut k.ops), budget);
                    k.steps += spent;
                    // Cut short (the caller's clock, the memory cap): this key and the rest stay undecided.
                    out_of_time = k.cut_short;
                } else {
                    out_of_time = true;
                }
            }
            verdict = verdict.max(k.verdict);
            if verdict == Verdict::NotLinearizable && budget.stop_at_violation {
                break;
            }
        }
        if verdict != Verdict::Undecided || pass >= full || out_of_time {
            break verdict;
        }
        pass = pass.saturating_mul(8).min(full);
    };
    budget.steps_per_key = full;
    // The engine's check stops at the first key that fails: the keys after it were never looked at.
    if verdict == Verdict::NotLinearizable && budget.stop_at_violation {
        let failed = keys.iter().position(|k| k.verdict == Verdict::NotLinearizable).expect("a key failed");
        keys.truncate(failed + 1);
    }
    Report { verdict, keys }
}
