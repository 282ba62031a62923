//! The sequential model the search steps: a key's values numbered (`Values`), each operation as a
//! `Step` over those numbers, and what a step does to a register state.

use std::collections::BTreeMap;

use super::{Call, Op, Ret, Value};

/// A register state: 0 is absent, `k` is the `k`-th distinct value numbered.
pub(super) type State = u32;

/// The values of one key, numbered: every value its operations mention, then appends' results as the
/// search makes them. Each is found by a 64-bit polynomial hash of its bytes and its length (an append's
/// hash follows from its parts' without reading them), so numbering an append's result compares and
/// copies bytes only when it is new or its hash collides.
pub(super) struct Values {
    /// (hash, length) mixed → the first value with them; `collided` holds any later ones.
    ids: IdTable,
    collided: BTreeMap<u64, Vec<State>>,
    /// Each value's bytes, hash and `HASH_BASE` to the power of its length (state `k` at `k - 1`).
    bytes: Vec<Vec<u8>>,
    hashes: Vec<(u64, u64)>,
    /// (state, appended value's id) → state after.
    appended: IdTable,
    /// The kv model: the empty value is absent (state 0).
    empty_is_absent: bool,
    /// Bytes of every value numbered.
    value_bytes: usize,
}

pub(super) const HASH_BASE: u64 = 0x100_0000_01b3;

impl Values {
    pub(super) fn new(empty_is_absent: bool) -> Values {
        Values {
            ids: IdTable::new(),
            collided: BTreeMap::new(),
            bytes: Vec::new(),
            hashes: Vec::new(),
            appended: IdTable::new(),
            empty_is_absent,
            value_bytes: 0,
        }
    }

    pub(super) fn id(&mut self, v: &Value) -> State {
        match v {
            None => 0,
            Some(v) => self.bytes_id(v),
        }
    }

    /// (hash, base^length) of a state; absent is the empty string's.
    fn hash_of(&self, state: State) -> (u64, u64) {
        if state == 0 { (0, 1) } else { self.hashes[state as usize - 1] }
    }

    fn bytes_of(&self, state: State) -> &[u8] {
        if state == 0 { &[] } else { &self.bytes[state as usize - 1] }
    }

    /// A value's table key: its hash and length, mixed.
    fn key(hash: u64, len: usize) -> u64 {
        hash ^ (len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
    }

    /// The value of these bytes (the concatenation of `parts`), if numbered.
    fn find(&self, key: u64, parts: [&[u8]; 2]) -> Option<State> {
        let equal = |id: State| {
            let b = self.bytes_of(id);
            b.len() == parts[0].len() + parts[1].len() && b.starts_with(parts[0]) && b.ends_with(parts[1])
        };
        let first = self.ids.get(key)?;
        if equal(first) {
            return Some(first);
        }
        self.collided.get(&key)?.iter().copied().find(|&id| equal(id))
    }

    /// The memory it holds (values, their hashes and tables), roughly.
    pub(super) fn bytes(&self) -> usize {
        self.value_bytes + self.bytes.len() * 40 + (self.ids.slots.len() + self.appended.slots.len()) * 12
    }

    fn number(&mut self, key: u64, hash: (u64, u64), bytes: Vec<u8>) -> State {
        self.value_bytes += bytes.len();
        self.bytes.push(bytes);
        self.hashes.push(hash);
        let id = State::try_from(self.bytes.len()).expect("fewer values than u32");
        if self.ids.get(key).is_some() {
            self.collided.entry(key).or_default().push(id);
        } else {
            self.ids.insert(key, id);
        }
        id
    }

    pub(super) fn bytes_id(&mut self, v: &[u8]) -> State {
        if v.is_empty() && self.empty_is_absent {
            return 0;
        }
        let (mut h, mut power) = (0u64, 1u64);
        for &b in v {
            h = h.wrapping_mul(HASH_BASE).wrapping_add(u64::from(b) + 1);
            power = power.wrapping_mul(HASH_BASE);
        }
        let key = Values::key(h, v.len());
        match self.find(key, [v, &[]]) {
            Some(id) => id,
            None => self.number(key, (h, power), v.to_vec()),
        }
    }

    pub(super) fn value(&self, state: State) -> Value {
        (state != 0).then(|| self.bytes[state as usize - 1].clone())
    }

    fn append(&mut self, state: State, suffix: State) -> State {
        if suffix == 0 {
            // Appending the empty value (the kv model numbers it absent).
            return state;
        }
        let pair = (u64::from(state) << 32) | u64::from(suffix);
        if let Some(after) = self.appended.get(pair) {
            return after;
        }
        let ((h1, p1), (h2, p2)) = (self.hash_of(state), self.hash_of(suffix));
        let hash = (h1.wrapping_mul(p2).wrapping_add(h2), p1.wrapping_mul(p2));
        let key = Values::key(hash.0, self.bytes_of(state).len() + self.bytes_of(suffix).len());
        let after = match self.find(key, [self.bytes_of(state), self.bytes_of(suffix)]) {
            Some(id) => id,
            None => {
                let mut joined = self.bytes_of(state).to_vec();
                joined.extend_from_slice(self.bytes_of(suffix));
                self.number(key, hash, joined)
            }
        };
        self.appended.insert(pair, after);
        after
    }
}

/// A map from 64-bit keys to states: open addressing, linear probing from a mix of the key, at most
/// half full (the values' tables are on the search's hot path; a `BTreeMap` of them was a third of a
/// long append history's check).
struct IdTable {
    slots: Vec<(u64, State)>,
    len: usize,
}

const EMPTY_SLOT: State = State::MAX;

impl IdTable {
    fn new() -> IdTable {
        IdTable { slots: vec![(0, EMPTY_SLOT); 64], len: 0 }
    }

    fn slot(&self, key: u64) -> usize {
        (zobrist(key as usize) as usize) & (self.slots.len() - 1)
    }

    fn get(&self, key: u64) -> Option<State> {
        let mask = self.slots.len() - 1;
        let mut at = self.slot(key);
        loop {
            match self.slots[at] {
                (_, EMPTY_SLOT) => return None,
                (k, v) if k == key => return Some(v),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Adds a key that is not in the table.
    fn insert(&mut self, key: u64, value: State) {
        if (self.len + 1) * 2 > self.slots.len() {
            let bigger = vec![(0, EMPTY_SLOT); self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, bigger);
            self.len = 0;
            for (k, v) in old.into_iter().filter(|s| s.1 != EMPTY_SLOT) {
                self.insert(k, v);
            }
        }
        let mask = self.slots.len() - 1;
        let mut at = self.slot(key);
        while self.slots[at].1 != EMPTY_SLOT {
            at = (at + 1) & mask;
        }
        self.slots[at] = (key, value);
        self.len += 1;
    }
}

/// One operation with its values numbered: what the sequential model needs, and nothing to clone.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    /// A read that saw this state.
    Read(State),
    /// Sets the state (a write, whether its outcome is known or not).
    Write(State),
    /// A compare-and-set that applied.
    CasApplied { expected: State, new: State },
    /// A compare-and-set that did not apply, having seen `previous`.
    CasRefused { expected: State, previous: State },
    /// A compare-and-set with no reply.
    CasUnknown { expected: State, new: State },
    /// Appends the value numbered here.
    Append(State),
    /// An outcome impossible for its call.
    Never,
}

pub(super) fn number(op: &Op, values: &mut Values) -> Step {
    match (&op.call, &op.ret) {
        (Call::Read, Ret::Read(v)) => Step::Read(values.id(v)),
        (Call::Write(v), Ret::Ok | Ret::Unknown) => Step::Write(values.id(v)),
        (Call::Cas { expected, new }, Ret::Ok) => {
            Step::CasApplied { expected: values.id(expected), new: values.id(new) }
        }
        (Call::Cas { expected, .. }, Ret::CasRefused { previous }) => {
            // Compared as numbered values: in the kv model "" and nil are one, and a cas expecting one
            // that saw the other had to apply.
            let (expected, previous) = (values.id(expected), values.id(previous));
            if previous == expected { Step::Never } else { Step::CasRefused { expected, previous } }
        }
        (Call::Cas { expected, new }, Ret::Unknown) => {
            Step::CasUnknown { expected: values.id(expected), new: values.id(new) }
        }
        (Call::Append(v), Ret::Ok | Ret::Unknown) => Step::Append(values.bytes_id(v)),
        _ => Step::Never,
    }
}

/// The sequential model: the state after `op` from `state`, if its outcome is legal there.
pub(super) fn step(state: State, op: Step, values: &mut Values) -> Option<State> {
    match op {
        Step::Read(seen) => (seen == state).then_some(state),
        Step::Write(v) => Some(v),
        Step::CasApplied { expected, new } => (state == expected).then_some(new),
        Step::CasRefused { expected, previous } => (state == previous && state != expected).then_some(state),
        Step::CasUnknown { expected, new } => Some(if state == expected { new } else { state }),
        Step::Append(suffix) => Some(values.append(state, suffix)),
        Step::Never => None,
    }
}

/// An operation that leaves the register as it found it wherever it is linearized and has a reply: a
/// read, or a compare-and-set that did not apply. If one is minimal (its call precedes every pending
/// return) and legal in the current state, some linearization of the rest, if any exists, can take it
/// first: it is legal there, it changes nothing for what follows, and every operation that must follow it
/// (invoked after it returned) still does. (A compare-and-set with no reply is not one: placed later, it
/// may apply.)
pub(super) fn is_read(op: Step) -> bool {
    matches!(op, Step::Read(_) | Step::CasRefused { .. })
}

/// Operation `op`'s Zobrist value (splitmix64 of its position): a set's hash is the XOR of its members'.
pub(super) fn zobrist(op: usize) -> u64 {
    let mut z = (op as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
