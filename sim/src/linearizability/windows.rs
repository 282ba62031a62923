//! A client history judged while it grows, so that a run of a simulated day holds the operations of the
//! last few seconds rather than of the whole day: each key's operations are cut into windows at quiet
//! moments, and a window that is checked is replaced by what the rest of the history can still see of it
//! — the states the key may hold at the cut, and the operations with no reply whose effect nothing has
//! observed yet.
//!
//! Why a cut is exact. A key is cut at time `T` when every operation on it invoked before `T` has
//! returned before `T` or never will (unknown outcome): real time then orders every known operation of
//! the window before every operation after `T`. What crosses the cut is the key's state and the unknown
//! operations, which may take effect at any time after their invocation:
//! - An unknown write (or compare-and-set) whose value no known operation of the window *observed* — no
//!   read or refused compare-and-set returned it, no applied compare-and-set expected it — is left out of
//!   the window's search and carried over: a linearization that placed it in the window had to overwrite
//!   its value before anything looked (a look would have observed it), so dropping it there changes
//!   nothing, and one that placed it last equals placing it first after the cut, where it still may go.
//! - An unknown write whose value was observed took effect in every linearization (values are unique,
//!   so nothing else wrote it): it is searched in its window and settled with it.
//! - The states the key may hold at the cut are found by probing: the window's history plus a read,
//!   after everything, that returns the candidate state; the candidates are every value that can be last.
//!
//! The next window starts from those states (writes of each, concurrent with one another, just before
//! the cut) and the carried operations (invoked just after them), so its check is the check of the whole
//! history since the start. A window that is not linearizable is never cut: it stays for the end of the
//! run, where the whole check explains it. A window the search cannot decide within its budget is not
//! cut either; it grows until the next quiet moment.
//!
//! Preconditions (checked where they are cheap; a window that breaks them is simply not cut): every
//! write's value is unique and not absent (the engine numbers its writes), and nothing appends (an
//! append's effect is observed only inside a longer value).
//!
//! Owns: `Windows` and the cut. Does not know when a key is quiet: the caller (the engine, which knows
//! what is in flight) asks for the cut.

use std::collections::{BTreeMap, BTreeSet};

use super::{Budget, Call, Model, Op, Ret, Value, Verdict, check};

/// Search steps per key for a window's checks (each probe is one check). A window this hard is left
/// for a later cut, or for the end of the run's larger budget.
const WINDOW_STEPS: u64 = 1 << 18;

/// The process of the writes that restore a key's possible states at the start of a window.
pub const SETTLED_PROCESS: u64 = u64::MAX - 1;

/// What a cut did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The window was checked and replaced by its end states and carried operations.
    Settled,
    /// Too few operations to be worth a check yet.
    TooFew,
    /// Not cut: the window breaks a precondition, or the search could not decide it within its budget.
    Kept,
    /// The window has no linearization: it stays, and the key is never cut again.
    NotLinearizable,
}

/// One key's window.
#[derive(Debug, Clone)]
struct KeyWindow {
    key: Option<String>,
    /// The states the key may hold at the window's start; empty before the first cut (absent).
    start: Vec<Value>,
    /// The last cut: every operation of the window was invoked at or after it.
    start_ns: u64,
    /// Unknown writes and compare-and-sets from before the cut whose values nothing has observed.
    carried: Vec<Op>,
    /// The window's operations, in the order recorded.
    ops: Vec<Op>,
    /// The latest return of a known operation of the window.
    last_return_ns: u64,
    /// A window of this key had no linearization: it is kept to the end.
    failed: bool,
    /// Operations checked and let go at this key's cuts.
    settled: u64,
}

/// A client history cut into per-key windows as it is recorded.
#[derive(Debug, Clone)]
pub struct Windows {
    model: Model,
    /// A window is checked once it holds this many operations.
    min_ops: usize,
    keys: BTreeMap<Option<String>, KeyWindow>,
    recorded: u64,
    settled: u64,
}

/// The value an operation writes if it takes effect.
fn effect(call: &Call) -> Option<&Value> {
    match call {
        Call::Write(v) => Some(v),
        Call::Cas { new, .. } => Some(new),
        Call::Read | Call::Append(_) => None,
    }
}

impl Windows {
    /// An empty history over `model`, checking a key's window once it holds `min_ops` operations.
    pub fn new(model: Model, min_ops: usize) -> Windows {
        Windows { model, min_ops, keys: BTreeMap::new(), recorded: 0, settled: 0 }
    }

    /// Adds an operation (known or unknown outcome) to its key's window.
    pub fn record(&mut self, op: Op) {
        self.recorded += 1;
        let w = self.keys.entry(op.key.clone()).or_insert_with(|| KeyWindow {
            key: op.key.clone(),
            start: Vec::new(),
            start_ns: 0,
            carried: Vec::new(),
            ops: Vec::new(),
            last_return_ns: 0,
            failed: false,
            settled: 0,
        });
        if op.ret != Ret::Unknown {
            w.last_return_ns = w.last_return_ns.max(op.complete_ns);
        }
        w.ops.push(op);
    }

    /// Lets go of an operation with no reply, `call` on `key`, that the caller knows never took effect
    /// (its command can never commit): it did not happen, so the history drops it — from the window, or
    /// from the carried operations. False if it was not there (already settled, observed and checked).
    pub fn retire(&mut self, key: Option<&str>, call: &Call) -> bool {
        let Some(w) = self.keys.get_mut(&key.map(str::to_owned)) else { return false };
        let unknown = |o: &Op| o.ret == Ret::Unknown && o.call == *call;
        if let Some(at) = w.carried.iter().position(unknown) {
            w.carried.swap_remove(at);
            return true;
        }
        match w.ops.iter().position(unknown) {
            Some(at) => {
                w.ops.remove(at);
                true
            }
            None => false,
        }
    }

    /// Operations in `key`'s window.
    pub fn window_len(&self, key: Option<&str>) -> usize {
        self.keys.get(&key.map(str::to_owned)).map_or(0, |w| w.ops.len())
    }

    /// Operations recorded so far.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// Operations checked and let go at cuts.
    pub fn settled(&self) -> u64 {
        self.settled
    }

    /// Operations on `key` checked and let go at its cuts, and the last cut.
    pub fn settled_on(&self, key: Option<&str>) -> (u64, u64) {
        self.keys.get(&key.map(str::to_owned)).map_or((0, 0), |w| (w.settled, w.start_ns))
    }

    /// Operations held: windows and carried unknown operations.
    pub fn held(&self) -> usize {
        self.keys.values().map(|w| w.ops.len() + w.carried.len()).sum()
    }

    /// Unknown operations carried across cuts, their values never observed.
    pub fn carried(&self) -> usize {
        self.keys.values().map(|w| w.carried.len()).sum()
    }

    /// Cuts `key`'s window at `now_ns`. The caller promises that no operation on `key` is in flight (every
    /// one invoked so far is recorded) and that every operation recorded later is invoked at or after
    /// `now_ns`.
    pub fn cut(&mut self, key: Option<&str>, now_ns: u64) -> Cut {
        let model = self.model;
        let Some(w) = self.keys.get_mut(&key.map(str::to_owned)) else { return Cut::TooFew };
        if w.failed {
            return Cut::Kept;
        }
        if w.ops.len() < self.min_ops {
            return Cut::TooFew;
        }
        // Known operations ordered before the cut by real time: strictly, since a call at the same
        // instant as a return is concurrent with it.
        if w.last_return_ns >= now_ns || model == Model::Kv && w.ops.iter().any(|o| matches!(o.call, Call::Append(_))) {
            return Cut::Kept;
        }
        let Some((history, kept)) = window_history(w) else { return Cut::Kept };
        let mut budget = Budget::steps(WINDOW_STEPS);
        // After every known return and after the start writes (a window of unknown operations only has
        // no return).
        let probe_ns = (w.last_return_ns + 1).max(w.start_ns);
        let mut end = Vec::new();
        for candidate in end_candidates(w, &history) {
            let mut probed = history.clone();
            probed.push(Op {
                process: SETTLED_PROCESS,
                key: key.map(str::to_owned),
                call: Call::Read,
                ret: Ret::Read(candidate.clone()),
                invoke_ns: probe_ns,
                complete_ns: probe_ns,
            });
            match check(&probed, model, &mut budget).verdict {
                Verdict::Linearizable => end.push(candidate),
                Verdict::Undecided => return Cut::Kept,
                Verdict::NotLinearizable => {}
            }
        }
        // A probe that passed linearized the window too; with none, the window itself is judged.
        if end.is_empty() {
            match check(&history, model, &mut budget).verdict {
                Verdict::Linearizable => {}
                Verdict::Undecided => return Cut::Kept,
                Verdict::NotLinearizable => {
                    w.failed = true;
                    return Cut::NotLinearizable;
                }
            }
        }
        assert!(!end.is_empty(), "a linearizable window of key {key:?} ends in none of the states it can end in");
        self.settled += w.ops.len() as u64;
        w.settled += w.ops.len() as u64;
        w.start = end;
        w.start_ns = now_ns;
        w.carried = kept;
        w.ops.clear();
        w.last_return_ns = 0;
        Cut::Settled
    }

    /// What is left to judge at the end of the run: each key's window from its last cut (with the writes
    /// of its possible start states and the carried operations its window observes). Its verdict is the
    /// whole history's, given the windows cut so far were linearizable.
    pub fn residual(&self) -> Vec<Op> {
        let mut out = Vec::new();
        for w in self.keys.values() {
            match window_history(w) {
                Some((history, _)) => out.extend(history),
                // A window that breaks a precondition: every carried operation, unfiltered.
                None => out.extend(
                    start_writes(w).into_iter().chain(carried_from(w, w.carried.iter())).chain(w.ops.iter().cloned()),
                ),
            }
        }
        out
    }
}

/// Writes of the possible start states, concurrent with one another, just before the window.
fn start_writes(w: &KeyWindow) -> Vec<Op> {
    let at = w.start_ns.saturating_sub(2);
    w.start
        .iter()
        .map(|s| Op {
            process: SETTLED_PROCESS,
            key: w.key.clone(),
            call: Call::Write(s.clone()),
            ret: Ret::Ok,
            invoke_ns: at,
            complete_ns: at,
        })
        .collect()
}

/// Carried operations as the window sees them: invoked just after the start writes.
fn carried_from<'a>(w: &KeyWindow, ops: impl Iterator<Item = &'a Op>) -> impl Iterator<Item = Op> {
    let at = w.start_ns.saturating_sub(1);
    ops.map(move |o| Op { invoke_ns: at, ..o.clone() })
}

/// The window's history to search: its start writes, the carried operations it observes, and its own
/// operations except the unknown ones it does not observe; beside it, the unknown operations carried on
/// (the unobserved ones). `None` when a precondition fails (a value written twice, or absent).
fn window_history(w: &KeyWindow) -> Option<(Vec<Op>, Vec<Op>)> {
    let mut written: BTreeSet<&[u8]> = BTreeSet::new();
    for v in w.start.iter().chain(w.carried.iter().chain(&w.ops).filter_map(|o| effect(&o.call))) {
        match v {
            Some(bytes) if written.insert(bytes) => {}
            _ => return None,
        }
    }
    let observed = observed_values(w.carried.iter().chain(&w.ops));
    let is_observed = |o: &Op| effect(&o.call).is_some_and(|v| observed.contains(v));
    let unknown_effect = |o: &Op| o.ret == Ret::Unknown && effect(&o.call).is_some();
    let mut history = start_writes(w);
    history.extend(carried_from(w, w.carried.iter().filter(|o| is_observed(o))));
    let mut kept: Vec<Op> = w.carried.iter().filter(|o| !is_observed(o)).cloned().collect();
    for o in &w.ops {
        if unknown_effect(o) && !is_observed(o) {
            kept.push(o.clone());
        } else {
            history.push(o.clone());
        }
    }
    Some((history, kept))
}

/// Values the key held during the window, as its operations show: what reads and refused
/// compare-and-sets returned, what applied compare-and-sets expected — and, closing over those, what an
/// unknown compare-and-set expected when the value it writes is one of them (it took effect, so the key
/// held its expected value first: an unknown write of that value, though nobody read it, is what let a
/// chain of unknown compare-and-sets reach a value somebody did read).
fn observed_values<'a>(ops: impl Iterator<Item = &'a Op> + Clone) -> BTreeSet<Value> {
    let mut seen = BTreeSet::new();
    for o in ops.clone() {
        match (&o.call, &o.ret) {
            (_, Ret::Read(v)) | (_, Ret::CasRefused { previous: v }) => {
                seen.insert(v.clone());
            }
            (Call::Cas { expected, .. }, Ret::Ok) => {
                seen.insert(expected.clone());
            }
            _ => {}
        }
    }
    // Each pass adds at least one value, and values are unique to their writes: at most one pass per
    // unknown compare-and-set.
    loop {
        let before = seen.len();
        for o in ops.clone() {
            if let (Call::Cas { expected, new }, Ret::Unknown) = (&o.call, &o.ret)
                && seen.contains(new)
            {
                seen.insert(expected.clone());
            }
        }
        if seen.len() == before {
            return seen;
        }
    }
}

/// The states the key may hold after the window: the value of every write that can be the last one to
/// take effect (a known write no other known write begins after the end of, or an observed unknown
/// one), or with no known write, the start states too.
fn end_candidates(w: &KeyWindow, history: &[Op]) -> Vec<Value> {
    let latest_invoke =
        w.ops.iter().filter(|o| o.ret == Ret::Ok && effect(&o.call).is_some()).map(|o| o.invoke_ns).max();
    let mut candidates: Vec<Value> = Vec::new();
    let mut add = |v: &Value| {
        if !candidates.contains(v) {
            candidates.push(v.clone());
        }
    };
    for o in history {
        let Some(v) = effect(&o.call) else { continue };
        let last_possible = match o.ret {
            Ret::Unknown => true,
            Ret::Ok if o.process == SETTLED_PROCESS => latest_invoke.is_none(),
            Ret::Ok => latest_invoke.is_none_or(|t| o.complete_ns >= t),
            _ => false,
        };
        if last_possible {
            add(v);
        }
    }
    if w.start.is_empty() && latest_invoke.is_none() {
        add(&None);
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u8) -> Value {
        Some(vec![b'v', b'0' + n])
    }

    fn op(call: Call, ret: Ret, invoke_ns: u64, complete_ns: u64) -> Op {
        Op { process: 0, key: Some("k".into()), call, ret, invoke_ns, complete_ns }
    }

    fn write(n: u8, at: u64, to: u64) -> Op {
        op(Call::Write(v(n)), Ret::Ok, at, to)
    }

    fn read(seen: Option<u8>, at: u64, to: u64) -> Op {
        op(Call::Read, Ret::Read(seen.and_then(v)), at, to)
    }

    fn unknown_write(n: u8, at: u64) -> Op {
        op(Call::Write(v(n)), Ret::Unknown, at, u64::MAX)
    }

    /// Each case: a history in time order, with the times at which the key is quiet and cut; the
    /// windowed verdict (cutting at every quiet moment with the smallest window) must be the whole
    /// history's.
    #[test]
    fn a_cut_history_has_the_whole_histories_verdict() {
        let cases: Vec<(&str, Vec<Op>, Vec<u64>)> = vec![
            ("sequential", vec![write(1, 0, 1), read(Some(1), 2, 3), write(2, 4, 5), read(Some(2), 6, 7)], vec![4, 6]),
            ("stale read across a cut", vec![write(1, 0, 1), write(2, 2, 3), read(Some(1), 4, 5)], vec![4]),
            ("concurrent writes, either last", vec![write(1, 0, 5), write(2, 1, 4), read(Some(1), 6, 7)], vec![6]),
            (
                "concurrent writes, then both seen",
                vec![write(1, 0, 5), write(2, 1, 4), read(Some(1), 6, 7), read(Some(2), 8, 9)],
                vec![6, 8],
            ),
            // An unknown write may take effect long after: carried over the cut, then observed.
            (
                "unknown write seen late",
                vec![write(1, 0, 1), unknown_write(2, 2), read(Some(1), 3, 4), read(Some(2), 6, 7)],
                vec![5],
            ),
            // Seen before the cut, it cannot take effect a second time after an overwrite.
            (
                "unknown write resurrected",
                vec![
                    unknown_write(2, 0),
                    read(Some(2), 1, 2),
                    write(3, 3, 4),
                    read(Some(3), 5, 6),
                    read(Some(2), 7, 8),
                ],
                vec![3, 5, 7],
            ),
            (
                "unknown write never seen",
                vec![unknown_write(2, 0), write(3, 1, 2), read(Some(3), 3, 4), read(None, 5, 6)],
                vec![3, 5],
            ),
            (
                "read of the initial absent value",
                vec![read(None, 0, 1), write(1, 2, 3), read(Some(1), 4, 5)],
                vec![2, 4],
            ),
            ("a value nobody wrote", vec![write(1, 0, 1), read(Some(9), 2, 3)], vec![2]),
            // Unknown compare-and-sets take the key from an unknown write nobody read to a value a read
            // saw: the write must stay in the history (found by swarm's compare-and-sets that expect a
            // value).
            (
                "a chain of unknown compare-and-sets from an unread unknown write",
                vec![
                    write(1, 0, 1),
                    unknown_write(2, 2),
                    op(Call::Cas { expected: v(2), new: v(3) }, Ret::Unknown, 3, u64::MAX),
                    op(Call::Cas { expected: v(3), new: v(4) }, Ret::Unknown, 4, u64::MAX),
                    read(Some(4), 5, 6),
                    read(Some(4), 8, 9),
                ],
                vec![7],
            ),
            (
                "compare-and-set seen",
                vec![
                    op(Call::Cas { expected: None, new: v(1) }, Ret::Unknown, 0, u64::MAX),
                    op(Call::Cas { expected: None, new: v(2) }, Ret::CasRefused { previous: v(1) }, 1, 2),
                    read(Some(1), 3, 4),
                ],
                vec![3],
            ),
        ];
        for (name, history, cuts) in cases {
            let whole = check(&history, Model::CasRegister, &mut Budget::steps(1 << 20)).verdict;
            let mut windows = Windows::new(Model::CasRegister, 1);
            let mut cut_results = Vec::new();
            let mut pending = cuts.iter().peekable();
            for o in &history {
                while let Some(&&t) = pending.peek()
                    && t <= o.invoke_ns
                {
                    cut_results.push(windows.cut(Some("k"), t));
                    pending.next();
                }
                windows.record(o.clone());
            }
            let residual = windows.residual();
            let windowed = if cut_results.contains(&Cut::NotLinearizable) {
                Verdict::NotLinearizable
            } else {
                check(&residual, Model::CasRegister, &mut Budget::steps(1 << 20)).verdict
            };
            assert_eq!(windowed, whole, "{name}: cuts {cut_results:?}, residual {residual:?}");
            assert!(
                cut_results.contains(&Cut::Settled) || whole == Verdict::NotLinearizable,
                "{name}: never cut ({cut_results:?})"
            );
        }
    }

    /// A small deterministic generator (splitmix64) for the random histories below.
    struct Draw(u64);

    impl Draw {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    /// A random history of bursts of concurrent operations on one register (some with no reply, taking
    /// effect late or never), run against a real register, then one read's answer changed one time in
    /// three; and the quiet moments between bursts, where it may be cut.
    fn random_history(seed: u64) -> (Vec<Op>, Vec<u64>) {
        let mut draw = Draw(seed);
        let mut ops = Vec::new();
        let mut effect_at = Vec::new();
        let mut cuts = Vec::new();
        let mut t = 1;
        let mut number = 0u8;
        for _ in 0..1 + draw.below(6) {
            let mut end = t;
            for _ in 0..1 + draw.below(4) {
                let invoke = t + draw.below(4);
                let complete = invoke + 1 + draw.below(6);
                let call = match draw.below(3) {
                    0 => Call::Read,
                    1 => {
                        number += 1;
                        Call::Write(v(number))
                    }
                    _ => {
                        // Half of them expect a value written before (the workload's
                        // `cas_expected_percent`), the others an absent key.
                        let expected = if number > 0 && draw.below(2) == 0 {
                            v(1 + draw.below(u64::from(number)) as u8)
                        } else {
                            None
                        };
                        number += 1;
                        Call::Cas { expected, new: v(number) }
                    }
                };
                let unknown = call != Call::Read && draw.below(5) == 0;
                let at = if unknown {
                    // Maybe never, maybe long after the burst.
                    (draw.below(2) == 0).then(|| invoke + draw.below(40))
                } else {
                    Some(invoke + draw.below(complete - invoke + 1))
                };
                if !unknown {
                    end = end.max(complete);
                }
                effect_at.push(at);
                let ret = if unknown { Ret::Unknown } else { Ret::Ok };
                ops.push(Op { process: 0, key: Some("k".into()), call, ret, invoke_ns: invoke, complete_ns: complete });
            }
            cuts.push(end + 1);
            t = end + 1 + draw.below(3);
        }
        // Run the register in the order of the effects, filling in what each operation returned.
        let mut order: Vec<usize> = (0..ops.len()).filter(|&i| effect_at[i].is_some()).collect();
        order.sort_by_key(|&i| (effect_at[i], i));
        let mut state: Value = None;
        for i in order {
            let o = &mut ops[i];
            match o.call.clone() {
                Call::Read => o.ret = Ret::Read(state.clone()),
                Call::Write(x) => state = x,
                Call::Cas { expected, new } => {
                    if state == expected {
                        state = new;
                    } else if o.ret != Ret::Unknown {
                        o.ret = Ret::CasRefused { previous: state.clone() };
                    }
                }
                Call::Append(_) => unreachable!("no appends drawn"),
            }
        }
        ops.retain(|o| o.ret != Ret::Ok || o.call != Call::Read);
        if draw.below(3) == 0 {
            let reads: Vec<usize> = (0..ops.len()).filter(|&i| matches!(ops[i].ret, Ret::Read(_))).collect();
            if !reads.is_empty() {
                let r = reads[draw.below(reads.len() as u64) as usize];
                let seen = draw.below(u64::from(number) + 1) as u8;
                ops[r].ret = Ret::Read((seen > 0).then(|| v(seen)).flatten());
            }
        }
        ops.sort_by_key(|o| o.invoke_ns);
        (ops, cuts)
    }

    /// Cuts `history` at every time of `cuts` where nothing is in flight, as the engine does.
    fn windowed_verdict(history: &[Op], cuts: &[u64]) -> (Verdict, usize) {
        let mut windows = Windows::new(Model::CasRegister, 1);
        let mut pending = cuts.iter().peekable();
        let mut settled = 0;
        let mut failed = false;
        for o in history {
            while let Some(&&t) = pending.peek()
                && t <= o.invoke_ns
            {
                match windows.cut(Some("k"), t) {
                    Cut::Settled => settled += 1,
                    Cut::NotLinearizable => failed = true,
                    Cut::Kept | Cut::TooFew => {}
                }
                pending.next();
            }
            windows.record(o.clone());
        }
        if failed {
            return (Verdict::NotLinearizable, settled);
        }
        (check(&windows.residual(), Model::CasRegister, &mut Budget::steps(1 << 20)).verdict, settled)
    }

    #[test]
    fn random_histories_cut_at_their_quiet_moments_keep_their_verdicts() {
        let (mut verdicts, mut cuts_made) = (BTreeMap::new(), 0);
        for seed in 0..4000 {
            let (history, cuts) = random_history(seed);
            let whole = check(&history, Model::CasRegister, &mut Budget::steps(1 << 20)).verdict;
            let (windowed, settled) = windowed_verdict(&history, &cuts);
            assert_eq!(windowed, whole, "seed {seed}: {history:?}, cuts at {cuts:?}");
            *verdicts.entry(format!("{whole:?}")).or_insert(0) += 1;
            cuts_made += settled;
        }
        // Both verdicts drawn often, and most quiet moments cut.
        assert!(verdicts.values().all(|&n| n > 400) && verdicts.len() == 2, "{verdicts:?}");
        assert!(cuts_made > 4000, "{cuts_made} cuts");
    }

    #[test]
    fn a_window_below_its_size_or_with_a_return_at_the_cut_is_not_cut() {
        let mut windows = Windows::new(Model::CasRegister, 2);
        windows.record(write(1, 0, 5));
        assert_eq!(windows.cut(Some("k"), 6), Cut::TooFew);
        windows.record(read(Some(1), 6, 9));
        assert_eq!(windows.cut(Some("k"), 9), Cut::Kept, "a return at the cut's instant is concurrent with it");
        assert_eq!(windows.cut(Some("k"), 10), Cut::Settled);
        assert_eq!((windows.settled(), windows.held()), (2, 0));
    }
}
