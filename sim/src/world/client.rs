//! The client workload and its history: the open-loop generator or closed-loop clients (one operation
//! outstanding each, following redirects, giving up at a timeout), which member each operation goes to,
//! and the history the linearizability checker judges.
//!
//! Owns: `InFlight`, `Client`, the client random stream, `history`. Must not judge the history (that is
//! `obligations::finish`).

use raft_core::consensus::kv::{KvCommand, KvResult};
use raft_core::consensus::server::{ClientId, Input, Role};
use scenarios::rng::below;

use crate::checkers::OperationKind;
use crate::linearizability;

use super::fates::Fate;
use super::node::ServerWork;
use super::{Event, World};

/// A client operation not yet answered.
#[derive(Clone)]
pub(super) struct InFlight {
    /// The group whose machine it goes to.
    pub(super) group: usize,
    pub(super) key: String,
    pub(super) call: linearizability::Call,
    /// The closed-loop client that asked, or the open-loop generator (`NO_PROCESS`).
    pub(super) process: u64,
    pub(super) invoke_ns: u64,
    pub(super) command: KvCommand,
}

/// A key's history window is cut (checked and let go) once it holds this many operations: a few
/// seconds of a long run's workload, and more than most short runs ever record, whose histories are then
/// judged whole at the end as before.
pub(super) const HISTORY_WINDOW_OPS: usize = 1024;

/// A closed-loop client.
#[derive(Clone)]
pub(super) struct Client {
    /// Where it sends: the leader it last heard of.
    pub(super) target: Option<usize>,
    /// Its outstanding request.
    pub(super) request: Option<u64>,
}

impl World {
    /// The workload's clock ticks: a new operation, until a while after the heal.
    pub(super) fn client_tick(&mut self) {
        // The workload stops a while after the heal (once an operation of every kind has been answered
        // after it), so that members can converge.
        let stop = (self.cfg.spec.safety_ms + self.cfg.spec.liveness_workload_ms) * 1_000_000;
        if self.now_ns < stop || !self.checkers.every_kind_answered_in_liveness() {
            self.client_op();
            let interval = self.cfg.spec.client_interval_ms * 1_000_000;
            self.schedule(interval, Event::ClientOp);
        }
    }

    /// A closed-loop client's operation is still unanswered: give up (outcome unknown).
    pub(super) fn client_timeout(&mut self, client: usize, request: u64) {
        if self.clients[client].request == Some(request)
            && let Some(f) = self.in_flight.remove(&request)
        {
            self.count("client timeouts");
            self.follow_unknown(request, &f);
            self.record_unknown(f);
            self.clients[client] = Client { target: None, request: None };
        }
    }

    /// A closed-loop client sends its redirected operation again.
    pub(super) fn client_retry(&mut self, client: usize, request: u64) {
        if self.clients[client].request == Some(request) && self.in_flight.contains_key(&request) {
            self.client_send(client, request);
        }
    }

    /// Whether group `g`'s member on node `i` serves (its node up, its server running).
    pub(super) fn serving(&self, i: usize, g: usize) -> bool {
        self.nodes[i].up && self.nodes[i].members[g].host.is_some()
    }

    /// Where an operation for group `g` goes without a better hint: the member that believes it leads,
    /// else any serving member (which redirects); `None` when none serves.
    pub(super) fn pick_target(&mut self, g: usize) -> Option<usize> {
        let up: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.serving(i, g)).collect();
        if up.is_empty() {
            return None;
        }
        let leader = up
            .iter()
            .copied()
            .find(|&i| self.nodes[i].members[g].host.as_ref().is_some_and(|h| *h.server.role() == Role::Leader));
        // The draw happens even when a leader is known: the worlds swarm found bugs in were drawn so.
        let any = up[below(&mut self.client_rng, up.len() as u64) as usize];
        Some(leader.unwrap_or(any))
    }

    /// A new operation: from the open-loop generator, or from an idle closed-loop client.
    pub(super) fn client_op(&mut self) {
        let closed_loop = !self.clients.is_empty();
        let client = if closed_loop {
            let idle: Vec<usize> = (0..self.clients.len()).filter(|&c| self.clients[c].request.is_none()).collect();
            if idle.is_empty() {
                self.count("client operations skipped (every client busy)");
                return;
            }
            Some(idle)
        } else {
            None
        };
        // A closed-loop client keeps to its group; the open-loop generator picks one (no draw with one
        // group, so that single-group worlds keep their random streams).
        let groups: Vec<usize> = (0..self.cfg.spec.groups).filter(|&g| self.created[g]).collect();
        let open_loop_group =
            if groups.len() > 1 { groups[below(&mut self.client_rng, groups.len() as u64) as usize] } else { 0 };
        let serving_somewhere = |w: &World, g: usize| (0..w.nodes.len()).any(|i| w.serving(i, g));
        let (client, group) = match client {
            Some(idle) => {
                let idle: Vec<usize> = idle
                    .into_iter()
                    .filter(|&c| {
                        self.created[c % self.cfg.spec.groups] && serving_somewhere(self, c % self.cfg.spec.groups)
                    })
                    .collect();
                if idle.is_empty() {
                    return;
                }
                let c = idle[below(&mut self.client_rng, idle.len() as u64) as usize];
                (Some(c), c % self.cfg.spec.groups)
            }
            None => (None, open_loop_group),
        };
        // The open-loop generator asks the node that believes it leads, else anyone (who redirects).
        let target = if closed_loop {
            0
        } else {
            match self.pick_target(group) {
                Some(t) => t,
                None => return,
            }
        };
        let k = below(&mut self.client_rng, u64::from(self.cfg.spec.keys.max(1)));
        let key = if group == 0 { format!("k{k}") } else { format!("g{}/k{k}", group + 1) };
        self.client_seq += 1;
        let kind = below(&mut self.client_rng, 3);
        let value = self.new_value(self.client_seq, kind != 0);
        let (command, call, kind) = match kind {
            0 => (KvCommand::Get { key: key.clone() }, linearizability::Call::Read, OperationKind::Get),
            1 => {
                let call = linearizability::Call::Write(Some(history_value(&value)));
                (KvCommand::Put { key: key.clone(), value }, call, OperationKind::Put)
            }
            _ => {
                let expected = self.cas_expectation(&key);
                let call = linearizability::Call::Cas {
                    expected: expected.as_deref().map(history_value),
                    new: Some(history_value(&value)),
                };
                let kind = if expected.is_some() { OperationKind::CasOnValue } else { OperationKind::CasOnAbsent };
                (KvCommand::Cas { key: key.clone(), expected, new: value }, call, kind)
            }
        };
        if self.cfg.spec.cas_expected_percent > 0
            && let KvCommand::Put { value, .. } | KvCommand::Cas { new: value, .. } = &command
        {
            self.last_value_asked.insert(key.clone(), value.clone());
        }
        let request = self.client_seq;
        let process = client.map_or(linearizability::NO_PROCESS, |c| c as u64);
        self.settle_history(&key);
        let f = InFlight { group, key, call, process, invoke_ns: self.now_ns, command: command.clone() };
        self.in_flight.insert(request, f);
        self.checkers.invoke(request, kind);
        self.count("client operations");
        match client {
            Some(c) => {
                self.clients[c].request = Some(request);
                self.client_send(c, request);
                let timeout = self.cfg.spec.client_timeout_ms * 1_000_000;
                self.schedule(timeout, Event::ClientTimeout { client: c, request });
            }
            None => self.nodes[target].members[group].server_box.push_back(ServerWork::Input(Input::Command {
                client: ClientId(1),
                request,
                command,
            })),
        }
    }

    /// What a compare-and-set on `key` expects: one time in `cas_expected_percent` / 100 the value the
    /// workload last asked to write to `key` (nothing yet: absent), else an absent key. No draw when the
    /// percentage is 0, so that older worlds keep their streams.
    fn cas_expectation(&mut self, key: &str) -> Option<Vec<u8>> {
        let percent = u64::from(self.cfg.spec.cas_expected_percent);
        if percent == 0 || below(&mut self.client_rng, 100) >= percent {
            return None;
        }
        self.last_value_asked.get(key).cloned()
    }

    /// The value write number `n` carries: its number (8 bytes, so every value is unique), then filler up
    /// to a drawn size — 8 to 32 bytes, or one time in eight a size drawn log-uniformly up to
    /// `value_size_max_bytes` (no draw when that is 8, so that older worlds keep their streams; none for
    /// a get, whose value is never sent).
    fn new_value(&mut self, n: u64, writes: bool) -> Vec<u8> {
        let max = self.cfg.spec.value_size_max_bytes.max(8);
        let mut value = n.to_be_bytes().to_vec();
        if max == 8 || !writes {
            return value;
        }
        let size = if below(&mut self.client_rng, 8) == 0 {
            let top = 63 - u64::from(max.leading_zeros());
            let exp = 3 + below(&mut self.client_rng, top - 2);
            let (lo, hi) = (1u64 << exp, ((1u64 << exp) * 2 - 1).min(max));
            lo + below(&mut self.client_rng, hi - lo + 1)
        } else {
            8 + below(&mut self.client_rng, 25).min(max - 8)
        };
        value.extend((8..size).map(|k| (n as u8).wrapping_mul(31).wrapping_add(k as u8)));
        value
    }

    /// A closed-loop client sends its outstanding operation: to the leader it last heard of if that member
    /// is serving, else to a member that believes it leads, else to any serving member.
    pub(super) fn client_send(&mut self, c: usize, request: u64) {
        let g = self.in_flight[&request].group;
        let target = match self.clients[c].target.filter(|&t| self.serving(t, g)) {
            Some(t) => t,
            None => match self.pick_target(g) {
                Some(t) => t,
                None => return, // the timeout will give up on it
            },
        };
        self.clients[c].target = Some(target);
        let command = self.in_flight[&request].command.clone();
        let client = ClientId(c as u64 + 2);
        let input = Input::Command { client, request, command };
        self.nodes[target].members[g].server_box.push_back(ServerWork::Input(input));
    }

    /// A server answered `request`: with a result, or with a redirect (the command was not appended;
    /// `hint` is the leader it knows). The first answer counts (a new leader may answer again for an
    /// inherited entry).
    pub(super) fn client_done(
        &mut self,
        client: ClientId,
        request: u64,
        result: Option<KvResult>,
        hint: Option<usize>,
    ) {
        let closed = (client.0 >= 2).then(|| (client.0 - 2) as usize);
        self.fates.forget(request);
        self.dead_in_flight.remove(&request);
        if self.given_up.remove(&request) {
            // The history gave up on it (`settle_history`): the answer counts for the run only.
            if result.is_some() {
                self.count("client answers after the history gave up on them");
                self.count("client operations ok");
                self.checkers.committed(request, self.now_ns);
            }
            return;
        }
        if !self.in_flight.contains_key(&request) {
            return;
        }
        let Some(result) = result else {
            match closed {
                // A closed-loop client follows the redirect a moment later.
                Some(c) if self.clients[c].request == Some(request) => {
                    self.count("client redirects");
                    self.clients[c].target = hint;
                    self.schedule(10_000_000, Event::ClientRetry { client: c, request });
                }
                // The open-loop generator drops it.
                _ => {
                    self.in_flight.remove(&request);
                }
            }
            return;
        };
        let f = self.in_flight.remove(&request).expect("checked");
        if let Some(c) = closed
            && self.clients[c].request == Some(request)
        {
            self.clients[c].request = None;
        }
        self.count("client operations ok");
        self.checkers.committed(request, self.now_ns);
        let ret = match result {
            KvResult::Ok | KvResult::Cas { applied: true, .. } => linearizability::Ret::Ok,
            KvResult::Value(v) => linearizability::Ret::Read(v.as_deref().map(history_value)),
            KvResult::Cas { applied: false, previous } => {
                linearizability::Ret::CasRefused { previous: previous.as_deref().map(history_value) }
            }
        };
        self.record_op(linearizability::Op {
            process: f.process,
            key: Some(f.key),
            call: f.call,
            ret,
            invoke_ns: f.invoke_ns,
            complete_ns: self.now_ns,
        });
    }

    /// An operation whose outcome nobody will learn: it may take effect at any time after its invocation.
    pub(super) fn record_unknown(&mut self, f: InFlight) {
        self.record_op(linearizability::Op {
            process: f.process,
            key: Some(f.key),
            call: f.call,
            ret: linearizability::Ret::Unknown,
            invoke_ns: f.invoke_ns,
            complete_ns: u64::MAX,
        });
    }

    /// The history recorded `f` as unknown: follow its command's fate (`fates`), unless it is a read,
    /// whose fate changes nothing.
    fn follow_unknown(&mut self, request: u64, f: &InFlight) {
        if f.call == linearizability::Call::Read {
            self.fates.forget(request);
        } else {
            self.unknown_followed.insert(request, (f.key.clone(), f.call.clone()));
        }
    }

    /// What commits showed about unanswered commands: a committed one took effect (it stays unknown in
    /// the history: when is unknown); a dead one never will, and the history lets its operation go.
    pub(super) fn learn_fates(&mut self, fates: Vec<Fate>) {
        for fate in fates {
            match fate {
                Fate::Committed(request) => {
                    if self.unknown_followed.remove(&request).is_some() {
                        self.count("unknown operations whose commands committed");
                    }
                }
                Fate::Dead(request) => {
                    if let Some((key, call)) = self.unknown_followed.remove(&request) {
                        if self.history.retire(Some(&key), &call) {
                            self.count("unknown operations let go: their commands can never commit");
                        }
                        if self.given_up.remove(&request) {
                            self.given_up_dead += 1;
                        }
                        self.checkers.forget_invocation(request);
                    } else if self.in_flight.get(&request).is_some_and(|f| f.process == linearizability::NO_PROCESS) {
                        self.dead_in_flight.insert(request);
                    }
                }
            }
        }
    }

    fn record_op(&mut self, op: linearizability::Op) {
        if let Some(whole) = self.whole_history.as_mut() {
            whole.push(op.clone());
        }
        self.history.record(op);
    }

    /// Before an operation on `key` is invoked: cuts the key's history window if nothing on it is in
    /// flight (`linearizability::windows`). An open-loop operation unanswered for longer than a client's
    /// timeout is given up first — recorded as unknown, as a closed-loop client's would be — so that one
    /// lost to a crash cannot hold the window open for the rest of the run; its answer, if one comes,
    /// still counts for the run (liveness), not for the history. Only windows of `HISTORY_WINDOW_OPS`
    /// are cut, so a short run's history is judged whole, as it always was.
    fn settle_history(&mut self, key: &str) {
        if self.history.window_len(Some(key)) < HISTORY_WINDOW_OPS {
            return;
        }
        let timeout_ns = self.cfg.spec.client_timeout_ms * 1_000_000;
        let now = self.now_ns;
        let lapsed: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| {
                f.key == key && f.process == linearizability::NO_PROCESS && now.saturating_sub(f.invoke_ns) > timeout_ns
            })
            .map(|(&request, _)| request)
            .collect();
        for request in lapsed {
            let f = self.in_flight.remove(&request).expect("listed");
            self.count("client operations the history gave up on");
            if self.dead_in_flight.remove(&request) {
                // Its command can never commit: it did not happen (and no answer will come).
                self.count("unknown operations let go: their commands can never commit");
                self.given_up_dead += 1;
                self.checkers.forget_invocation(request);
                continue;
            }
            self.given_up.insert(request);
            self.follow_unknown(request, &f);
            self.record_unknown(f);
        }
        let busy = self.in_flight.values().any(|f| f.key == key);
        if busy {
            return;
        }
        match self.history.cut(Some(key), now) {
            linearizability::windows::Cut::Settled => self.count("history windows checked and let go"),
            linearizability::windows::Cut::NotLinearizable => self.count("history windows not linearizable"),
            linearizability::windows::Cut::Kept | linearizability::windows::Cut::TooFew => {}
        }
    }
}

/// A value as the history keeps it, readable in `sim check-history`'s output and pages: `v<N>` for the
/// write numbered N (its first 8 bytes) when that is all of it, else `v<N>:<length>:<hash>` with a
/// 64-bit hash of all of it, so a history of large values stays small and a damaged value (same number,
/// other bytes) still differs from the one written. Anything shorter than a number is kept as hex.
fn history_value(value: &[u8]) -> Vec<u8> {
    let Some(number) = value.get(..8) else {
        return value.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes();
    };
    let n = u64::from_be_bytes(number.try_into().expect("8 bytes"));
    if value.len() == 8 {
        return format!("v{n}").into_bytes();
    }
    // Large values are hashed on every write and every read: a word at a time.
    format!("v{n}:{}:{:016x}", value.len(), crate::checkers::digest(value)).into_bytes()
}
