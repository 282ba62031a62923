//! The Wing–Gong–Lowe search over one key's operations: the event list, the stack of linearized calls,
//! the cache of explored (linearized set, state) pairs, the read-first rule, and the deepest point the
//! search got stuck at (the explanation of a violation).

use super::model::{State, Step, Values, is_read, number, step, zobrist};
use super::stale::stale_read;
use super::{Budget, Call, KeyReport, Model, Op, Ret, Stale, Verdict};

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

    /// The memory it holds.
    fn bytes(&self) -> usize {
        self.slots.len() * 4 + self.fingerprints.len() * 12 + self.sets.len() * 8
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
        self.slots[at] = u32::try_from(entry + 1).expect("fewer entries than u32");
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

/// A register state's contribution to a fingerprint (splitmix64, apart from every Zobrist value).
fn state_hash(state: State) -> u64 {
    zobrist((state as usize) ^ (1 << 40)).rotate_left(29)
}

/// Removes a call and its return from the list.
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

/// Puts them back (in reverse order of removal).
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

/// The first minimal call of the list that is a read legal in `state`.
fn legal_read(events: &[Event], head: Option<usize>, steps_of: &[Step], state: State) -> Option<usize> {
    let mut cur = head;
    while let Some(c) = cur {
        let ev = events[c];
        if !ev.is_call {
            return None;
        }
        let op = steps_of[ev.op];
        if is_read(op) && matches!(op, Step::Read(s) | Step::CasRefused { previous: s, .. } if s == state) {
            return Some(c);
        }
        cur = ev.next;
    }
    None
}

/// The deepest point the search got stuck at: the calls linearized then (each with the state before
/// it), the state after the last, and the return it could not pass with the states it was tried in.
/// The stack only grows and shrinks at its top, so the path is kept by copying what changed since the
/// last note (below `low_water` nothing did): the copying costs no more than the search's own steps.
struct Stuck {
    depth: Option<usize>,
    low_water: usize,
    path: Vec<(usize, State)>,
    last_state: State,
    op: usize,
    states: Vec<State>,
}

impl Stuck {
    fn note(&mut self, stack: &[(usize, State, bool)], state: State, op: usize) {
        if self.depth.is_none_or(|d| stack.len() > d) {
            self.depth = Some(stack.len());
            self.path.truncate(self.low_water);
            self.path.extend(stack[self.low_water..].iter().map(|&(call, before, _)| (call, before)));
            self.low_water = stack.len();
            self.last_state = state;
            self.op = op;
            self.states.clear();
        }
        if self.depth == Some(stack.len()) && self.op == op && !self.states.contains(&state) {
            self.states.push(state);
        }
    }
}

/// Linearized calls (each with the state before it) as (operation, state after) pairs.
fn with_states_after(events: &[Event], path: &[(usize, State)], last: State) -> Vec<(usize, State)> {
    path.iter().enumerate().map(|(i, &(call, _))| (events[call].op, path.get(i + 1).map_or(last, |s| s.1))).collect()
}

/// How often (in steps) the search asks the caller's budget and weighs its memory: a power of two.
const POLL_STEPS: u64 = 1 << 14;

/// The memory one key's search may take (its cache of explored pairs and its numbered values) before it
/// answers undecided: a hostile or merely enormous history must not take the machine down.
const MAX_SEARCH_BYTES: usize = 2 << 30;

/// Checks one key's operations (`ops`: indices into `history`).
pub(super) fn check_key(
    history: &[Op],
    model: Model,
    key: Option<&str>,
    ops: Vec<usize>,
    budget: &mut Budget<'_>,
) -> KeyReport {
    let mut values = Values::new(model == Model::Kv);
    // A read with no reply constrains nothing and changes nothing: it is left out of the search.
    let searched: Vec<usize> =
        ops.iter().copied().filter(|&i| !(history[i].call == Call::Read && history[i].ret == Ret::Unknown)).collect();
    let steps_of: Vec<Step> = searched.iter().map(|&i| number(&history[i], &mut values)).collect();
    let mut report = KeyReport::unjudged(key, Verdict::Linearizable, ops);
    // The search's times, which the stale check must share: a completion before its invocation counts
    // as at the invocation.
    let times: Vec<(u64, Option<u64>)> = searched
        .iter()
        .map(|&i| {
            let o = &history[i];
            (o.invoke_ns, (o.ret != Ret::Unknown).then_some(o.complete_ns.max(o.invoke_ns)))
        })
        .collect();
    let stale = stale_read(&steps_of, &times);
    let n = searched.len();
    // Events sorted by time; at equal times calls before returns (operations overlapping at an instant
    // are concurrent). Unknown outcomes return after everything.
    let mut order: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(n * 2);
    for (i, &(invoke, complete)) in times.iter().enumerate() {
        order.push((invoke, 0, i, true));
        order.push((complete.unwrap_or(u64::MAX), 1, i, false));
    }
    order.sort();
    let mut events: Vec<Event> = Vec::with_capacity(order.len());
    let mut call_at = vec![0usize; n];
    let mut ret_at = vec![0usize; n];
    for (pos, &(_, _, op, is_call)) in order.iter().enumerate() {
        events.push(Event {
            op,
            is_call,
            other: 0,
            prev: pos.checked_sub(1),
            next: (pos + 1 < order.len()).then_some(pos + 1),
        });
        if is_call {
            call_at[op] = pos;
        } else {
            ret_at[op] = pos;
        }
    }
    for op in 0..n {
        events[call_at[op]].other = ret_at[op];
        events[ret_at[op]].other = call_at[op];
    }
    let mut head: Option<usize> = (n > 0).then_some(0);
    let words = n.div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut state: State = 0;
    let mut cache = Explored::new(words);
    let mut set_hash = 0u64;
    // (call, state before it, whether it was a read taken first at its level).
    let mut stack: Vec<(usize, State, bool)> = Vec::new();
    let mut stuck = Stuck { depth: None, low_water: 0, path: Vec::new(), last_state: 0, op: 0, states: Vec::new() };
    let mut cur = head;
    let mut steps = 0u64;
    let mut stopped = false;
    // A new level: before trying its calls in order, take a read that is legal now, if there is one.
    let mut fresh = true;
    let verdict = loop {
        if stale.is_some() && steps >= STALE_SEARCH_STEPS {
            // Enough searching for an explanation: the stale read decides.
            break Verdict::Undecided;
        }
        steps += 1;
        if steps > budget.steps_per_key {
            break Verdict::Undecided;
        }
        if steps & (POLL_STEPS - 1) == 0 {
            if let Some(keep_going) = budget.keep_going.as_mut()
                && !keep_going()
            {
                stopped = true;
                break Verdict::Undecided;
            }
            if cache.bytes() + values.bytes() > MAX_SEARCH_BYTES {
                // A key too hard for the memory a check may take: undecided, not the machine's memory.
                stopped = true;
                break Verdict::Undecided;
            }
        }
        if head.is_none() {
            break Verdict::Linearizable;
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
            let Some((call, prev_state, read_first)) = stack.pop() else { break Verdict::NotLinearizable };
            stuck.low_water = stuck.low_water.min(stack.len());
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
            if let Some(next_state) = step(state, steps_of[ev.op], &mut values) {
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
            stuck.note(&stack, state, ev.op);
            cur = None;
        }
    };
    report.steps = steps;
    report.cut_short = stopped;
    if let (Some((read, overwrite)), Verdict::Undecided) = (stale, verdict) {
        // The search ran out first; the stale read settles it.
        report.verdict = Verdict::NotLinearizable;
        report.failing = Some(searched[read]);
        report.stale = Some(overwrite.map_or(Stale::NeverWritten, |x| Stale::OverwrittenBy(searched[x])));
        return report;
    }
    assert!(
        stale.is_none() || verdict == Verdict::NotLinearizable,
        "a stale read ({stale:?}) in a history the search linearized"
    );
    report.verdict = verdict;
    let (path, failing, seen) = match verdict {
        Verdict::Linearizable => {
            let path: Vec<(usize, State)> = stack.iter().map(|&(call, before, _)| (call, before)).collect();
            (with_states_after(&events, &path, state), None, Vec::new())
        }
        Verdict::NotLinearizable => {
            (with_states_after(&events, &stuck.path, stuck.last_state), Some(stuck.op), stuck.states)
        }
        Verdict::Undecided => (Vec::new(), None, Vec::new()),
    };
    report.linearized = path.iter().map(|&(op, _)| searched[op]).collect();
    report.states_after = path.iter().map(|&(_, s)| values.value(s)).collect();
    report.failing = failing.map(|op| searched[op]);
    report.could_have_seen = seen.into_iter().map(|s| values.value(s)).collect();
    report
}

/// Steps a search spends looking for the longest linearization when a stale read has already decided
/// the key (its explanation is better than the bare read when found).
const STALE_SEARCH_STEPS: u64 = 1 << 20;
