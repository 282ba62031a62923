//! The `linearizability` checker: is a concurrent history of KV operations equivalent to some sequential
//! execution that respects real time? Per key, with the Wing–Gong–Lowe search as Porcupine does it
//! (a linked list of call/return events, a stack of linearized calls, and a cache of
//! (linearized set, state) pairs already explored), written here. The values a key ever holds are numbered
//! first, so the search steps a register of `u32` ids and never clones a value. The cache is an
//! open-addressing table over a flat arena of bitsets, keyed by a 64-bit fingerprint (a Zobrist hash of
//! the set, updated by one XOR per step, mixed with the state): a lookup compares whole bitsets only on a
//! fingerprint match, and an entry costs its bitset's words plus 16 bytes, with no allocation of its own.
//! (A `BTreeSet` of `(fingerprint, Vec<u64>, state)` spent a third of a swarm run in its search and its
//! allocator, and tens of MiB on a crowded key.)
//!
//! Key invariant: an operation whose outcome is unknown (no reply: the client timed out or the run
//! ended) may or may not have taken effect, and its result is unconstrained; its return lies after every
//! other event. A search that exceeds its step budget answers `Unknown` rather than hanging.

use std::collections::BTreeMap;

/// One client operation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// Set the value.
    Put(Vec<u8>),
    /// Read the value.
    Get,
    /// Compare-and-set.
    Cas {
        /// Required current value (`None`: absent).
        expected: Option<Vec<u8>>,
        /// New value.
        new: Vec<u8>,
    },
}

/// What an operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOutcome {
    /// A put completed.
    Ok,
    /// A get's value.
    Value(Option<Vec<u8>>),
    /// A cas: whether it applied and the value it saw.
    Cas {
        /// Whether the swap happened.
        applied: bool,
        /// The value before.
        previous: Option<Vec<u8>>,
    },
    /// No reply: it may or may not have happened.
    Unknown,
}

/// One operation of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The key.
    pub key: String,
    /// What was asked.
    pub op: KvOp,
    /// What came back.
    pub outcome: KvOutcome,
    /// When it was invoked.
    pub invoke_ns: u64,
    /// When it returned (ignored for `Unknown`).
    pub return_ns: u64,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some linearization exists.
    Linearizable,
    /// None exists; the key whose sub-history failed.
    NotLinearizable {
        /// The key.
        key: String,
    },
    /// The search hit its step budget.
    Unknown {
        /// The key.
        key: String,
    },
}

/// A register state: 0 is absent, `k` is the key's `k`-th distinct value; `UNSEEN` is a value no
/// operation wrote (a read of it matches no state).
type State = u32;
const UNSEEN: State = u32::MAX;

/// One operation with its values numbered: what the sequential model needs, and nothing to clone.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A put of value `0` (its outcome is `Ok` or unknown: either way it may take effect).
    Put(State),
    /// A put whose outcome is impossible for a put.
    Never,
    /// A get that read this state (`None`: no reply).
    Get(Option<State>),
    /// A compare-and-set; `seen` is `(applied, previous)` if it replied.
    Cas { expected: State, new: State, seen: Option<(bool, State)> },
}

/// Numbers the values of one key's operations (absent is 0) and translates each operation.
fn number_values(ops: &[&Operation]) -> Vec<Step> {
    // Written values only: nothing else can be a state.
    let mut ids: BTreeMap<&[u8], State> = BTreeMap::new();
    for o in ops {
        if let KvOp::Put(v) | KvOp::Cas { new: v, .. } = &o.op {
            let next = ids.len() as State + 1;
            ids.entry(v.as_slice()).or_insert(next);
        }
    }
    let id = |v: &Option<Vec<u8>>| match v {
        None => 0,
        Some(v) => ids.get(v.as_slice()).copied().unwrap_or(UNSEEN),
    };
    let written = |v: &Vec<u8>| ids[v.as_slice()];
    ops.iter()
        .map(|o| match (&o.op, &o.outcome) {
            (KvOp::Put(v), KvOutcome::Ok | KvOutcome::Unknown) => Step::Put(written(v)),
            (KvOp::Get, KvOutcome::Value(v)) => Step::Get(Some(id(v))),
            (KvOp::Get, KvOutcome::Unknown) => Step::Get(None),
            (KvOp::Cas { expected, new }, KvOutcome::Cas { applied, previous }) => {
                Step::Cas { expected: id(expected), new: written(new), seen: Some((*applied, id(previous))) }
            }
            (KvOp::Cas { expected, new }, KvOutcome::Unknown) => {
                Step::Cas { expected: id(expected), new: written(new), seen: None }
            }
            _ => Step::Never,
        })
        .collect()
}

/// The sequential KV model: the state after `op` from `state`, if its outcome is legal there.
fn step(state: State, op: Step) -> Option<State> {
    match op {
        Step::Put(v) => Some(v),
        Step::Never => None,
        Step::Get(None) => Some(state),
        Step::Get(Some(seen)) => (seen == state).then_some(state),
        Step::Cas { expected, new, seen } => {
            let applies = state == expected;
            let after = if applies { new } else { state };
            match seen {
                None => Some(after),
                Some((applied, previous)) => (previous == state && applied == applies).then_some(after),
            }
        }
    }
}

/// The search's cache of explored (linearized set, state) pairs: an open-addressing table of entry
/// numbers over a flat arena of bitsets (`words` per entry), probed linearly from the fingerprint.
struct Explored {
    words: usize,
    /// Entry numbers + 1 (0: empty slot); a power of two long, at most half full.
    slots: Vec<u32>,
    fingerprints: Vec<u64>,
    states: Vec<State>,
    sets: Vec<u64>,
}

impl Explored {
    fn new(words: usize) -> Explored {
        Explored { words, slots: vec![0; 1024], fingerprints: Vec::new(), states: Vec::new(), sets: Vec::new() }
    }

    /// Adds the pair; false if it was there already.
    fn insert(&mut self, fingerprint: u64, set: &[u64], state: State) -> bool {
        let mask = self.slots.len() - 1;
        let mut at = (fingerprint as usize) & mask;
        loop {
            match self.slots[at] {
                0 => break,
                n => {
                    let e = n as usize - 1;
                    if self.fingerprints[e] == fingerprint
                        && self.states[e] == state
                        && self.sets[e * self.words..(e + 1) * self.words] == *set
                    {
                        return false;
                    }
                }
            }
            at = (at + 1) & mask;
        }
        let entry = self.fingerprints.len();
        self.slots[at] = u32::try_from(entry + 1).expect("fewer entries than the search budget");
        self.fingerprints.push(fingerprint);
        self.states.push(state);
        self.sets.extend_from_slice(set);
        if self.fingerprints.len() * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let mut slots = vec![0u32; self.slots.len() * 2];
        let mask = slots.len() - 1;
        for (e, &fingerprint) in self.fingerprints.iter().enumerate() {
            let mut at = (fingerprint as usize) & mask;
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = e as u32 + 1;
        }
        self.slots = slots;
    }
}

#[derive(Debug, Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    /// The matching event (return of a call, call of a return).
    other: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Operation `op`'s Zobrist value (splitmix64 of its position): a set's hash is the XOR of its members'.
fn zobrist(op: usize) -> u64 {
    let mut z = (op as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A register state's contribution to a fingerprint (splitmix64, apart from every Zobrist value).
fn state_hash(state: State) -> u64 {
    zobrist((state as usize) ^ (1 << 40)).rotate_left(29)
}

/// Checks one key's operations; `budget` bounds the search steps.
fn check_key(ops: &[&Operation], budget: u64) -> Option<bool> {
    if ops.is_empty() {
        return Some(true);
    }
    // Events sorted by time; at equal times calls before returns (operations overlapping at an instant
    // are concurrent). Unknown outcomes return after everything.
    let mut order: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(ops.len() * 2);
    for (i, o) in ops.iter().enumerate() {
        order.push((o.invoke_ns, 0, i, true));
        let ret = if o.outcome == KvOutcome::Unknown { u64::MAX } else { o.return_ns.max(o.invoke_ns) };
        order.push((ret, 1, i, false));
    }
    order.sort();
    let mut events: Vec<Event> = Vec::with_capacity(order.len());
    let mut call_at = vec![0usize; ops.len()];
    let mut ret_at = vec![0usize; ops.len()];
    for (pos, (_, _, op, is_call)) in order.iter().enumerate() {
        events.push(Event {
            op: *op,
            is_call: *is_call,
            other: 0,
            prev: pos.checked_sub(1),
            next: (pos + 1 < order.len()).then_some(pos + 1),
        });
        if *is_call {
            call_at[*op] = pos;
        } else {
            ret_at[*op] = pos;
        }
    }
    for op in 0..ops.len() {
        events[call_at[op]].other = ret_at[op];
        events[ret_at[op]].other = call_at[op];
    }
    let steps_of = number_values(ops);
    let mut head: Option<usize> = Some(0);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut state: State = 0;
    let mut cache = Explored::new(words);
    let mut set_hash = 0u64;
    // (call, state before it, whether it was a read taken first at its level).
    let mut stack: Vec<(usize, State, bool)> = Vec::new();
    let mut cur = head;
    let mut steps = 0u64;

    // Removes a call and its return from the list.
    fn lift(events: &mut [Event], head: &mut Option<usize>, e: usize) {
        for x in [e, events[e].other] {
            let (p, n) = (events[x].prev, events[x].next);
            match p {
                Some(p) => events[p].next = n,
                None => *head = n,
            }
            if let Some(n) = n {
                events[n].prev = p;
            }
        }
    }
    // Puts them back (in reverse order of removal).
    fn unlift(events: &mut [Event], head: &mut Option<usize>, e: usize) {
        for x in [events[e].other, e] {
            let (p, n) = (events[x].prev, events[x].next);
            match p {
                Some(p) => events[p].next = Some(x),
                None => *head = Some(x),
            }
            if let Some(n) = n {
                events[n].prev = Some(x);
            }
        }
    }

    // A new level: before trying its calls in order, take a read that is legal now, if there is one.
    let mut fresh = true;
    loop {
        steps += 1;
        if steps > budget {
            return None;
        }
        if head.is_none() {
            return Some(true);
        }
        if fresh {
            fresh = false;
            cur = head;
            if let Some(r) = legal_read(&events, head, &steps_of, state) {
                // Linearizing it first loses nothing (`is_read`), so if that fails the level fails.
                let op = events[r].op;
                linearized[op / 64] |= 1 << (op % 64);
                let next_hash = set_hash ^ zobrist(op);
                if cache.insert(next_hash ^ state_hash(state), &linearized, state) {
                    stack.push((r, state, true));
                    set_hash = next_hash;
                    lift(&mut events, &mut head, r);
                    fresh = true;
                } else {
                    linearized[op / 64] &= !(1 << (op % 64));
                    cur = None;
                }
                continue;
            }
        }
        let Some(c) = cur else {
            // Nothing left to try at this level: backtrack (past a read taken first, to the level below).
            let Some((call, prev_state, read_first)) = stack.pop() else { return Some(false) };
            state = prev_state;
            let op = events[call].op;
            linearized[op / 64] &= !(1 << (op % 64));
            set_hash ^= zobrist(op);
            unlift(&mut events, &mut head, call);
            cur = if read_first { None } else { events[call].next };
            continue;
        };
        let ev = events[c];
        if ev.is_call {
            if let Some(next_state) = step(state, steps_of[ev.op]) {
                linearized[ev.op / 64] |= 1 << (ev.op % 64);
                let next_hash = set_hash ^ zobrist(ev.op);
                let fingerprint = next_hash ^ state_hash(next_state);
                if cache.insert(fingerprint, &linearized, next_state) {
                    stack.push((c, std::mem::replace(&mut state, next_state), false));
                    set_hash = next_hash;
                    lift(&mut events, &mut head, c);
                    fresh = true;
                    continue;
                }
                linearized[ev.op / 64] &= !(1 << (ev.op % 64));
            }
            cur = ev.next;
        } else {
            // A return whose call is not linearized yet: everything before must have been tried.
            cur = None;
        }
    }
}

/// An operation that leaves the register as it found it wherever it is linearized: a get, or a
/// compare-and-set that replied it did not apply. If one is minimal (its call precedes every pending
/// return) and legal in the current state, some linearization of the rest, if any exists, can take it
/// first: it is legal there, it changes nothing for what follows, and every operation that must follow it
/// (invoked after it returned) still does. (A compare-and-set with no reply is not one: placed later, it
/// may apply.)
fn is_read(step: Step) -> bool {
    matches!(step, Step::Get(_) | Step::Cas { seen: Some((false, _)), .. })
}

/// The first minimal call of the list that is a read legal in `state`.
fn legal_read(events: &[Event], head: Option<usize>, steps_of: &[Step], state: State) -> Option<usize> {
    let mut cur = head;
    while let Some(c) = cur {
        let ev = events[c];
        if !ev.is_call {
            return None;
        }
        let op = steps_of[ev.op];
        if is_read(op) && step(state, op).is_some() {
            return Some(c);
        }
        cur = ev.next;
    }
    None
}

/// Checks a whole history, key by key.
pub fn check(history: &[Operation], budget_per_key: u64) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for o in history {
        by_key.entry(o.key.as_str()).or_default().push(o);
    }
    let mut unknown = None;
    for (key, ops) in by_key {
        match check_key(&ops, budget_per_key) {
            Some(true) => {}
            Some(false) => return Verdict::NotLinearizable { key: key.to_owned() },
            None => unknown = Some(key.to_owned()),
        }
    }
    match unknown {
        Some(key) => Verdict::Unknown { key },
        None => Verdict::Linearizable,
    }
}
