//! The `linearizability` checker: is a concurrent history of KV operations equivalent to some sequential
//! execution that respects real time? Per key, with the Wing–Gong–Lowe search as Porcupine does it
//! (a linked list of call/return events, a stack of linearized calls, and a cache of
//! (linearized set, state) pairs already explored), written here. The cache orders its entries by a
//! 64-bit fingerprint first (a Zobrist hash of the set, updated by one XOR per step, mixed with the
//! state's hash), so a lookup compares whole bitsets only on a fingerprint match: comparing them
//! outright was a quarter of a swarm run's time.
//!
//! Key invariant: an operation whose outcome is unknown (no reply: the client timed out or the run
//! ended) may or may not have taken effect, and its result is unconstrained; its return lies after every
//! other event. A search that exceeds its step budget answers `Unknown` rather than hanging.

use std::collections::{BTreeMap, BTreeSet};

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

type State = Option<Vec<u8>>;

/// The sequential KV model: the state after `op` with `outcome` from `state`, if that is legal.
fn step(state: &State, op: &KvOp, outcome: &KvOutcome) -> Option<State> {
    let unknown = *outcome == KvOutcome::Unknown;
    match op {
        KvOp::Put(v) => (unknown || *outcome == KvOutcome::Ok).then(|| Some(v.clone())),
        KvOp::Get => match outcome {
            KvOutcome::Unknown => Some(state.clone()),
            KvOutcome::Value(v) if v == state => Some(state.clone()),
            _ => None,
        },
        KvOp::Cas { expected, new } => {
            let applies = state == expected;
            match outcome {
                KvOutcome::Unknown => Some(if applies { Some(new.clone()) } else { state.clone() }),
                KvOutcome::Cas { applied, previous } if previous == state && *applied == applies => {
                    Some(if applies { Some(new.clone()) } else { state.clone() })
                }
                _ => None,
            }
        }
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

/// FNV-1a of a register state (`None` distinct from every value).
fn state_hash(state: &State) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in state.iter().flat_map(|v| std::iter::once(1u8).chain(v.iter().copied())) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.rotate_left(29)
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
    let mut head: Option<usize> = Some(0);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut state: State = None;
    // (fingerprint of set and state, set, state).
    let mut cache: BTreeSet<(u64, Vec<u64>, State)> = BTreeSet::new();
    let mut set_hash = 0u64;
    let mut stack: Vec<(usize, State)> = Vec::new();
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

    loop {
        steps += 1;
        if steps > budget {
            return None;
        }
        let Some(e) = head else { return Some(true) };
        let Some(c) = cur else {
            // Nothing left to try at this level: backtrack.
            let Some((call, prev_state)) = stack.pop() else { return Some(false) };
            let _ = e;
            state = prev_state;
            let op = events[call].op;
            linearized[op / 64] &= !(1 << (op % 64));
            set_hash ^= zobrist(op);
            unlift(&mut events, &mut head, call);
            cur = events[call].next;
            continue;
        };
        let ev = events[c];
        if ev.is_call {
            let o = ops[ev.op];
            if let Some(next_state) = step(&state, &o.op, &o.outcome) {
                linearized[ev.op / 64] |= 1 << (ev.op % 64);
                let next_hash = set_hash ^ zobrist(ev.op);
                let fingerprint = next_hash ^ state_hash(&next_state);
                if cache.insert((fingerprint, linearized.clone(), next_state.clone())) {
                    stack.push((c, std::mem::replace(&mut state, next_state)));
                    set_hash = next_hash;
                    lift(&mut events, &mut head, c);
                    cur = head;
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
