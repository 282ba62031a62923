//! A tiny deterministic harness for the pure consensus server: in-memory logs, a FIFO network with
//! optional partitions, timers fired by hand or by earliest deadline, and every effect recorded.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raft_core::Bugs;
use raft_core::consensus::RaftLog;
use raft_core::consensus::kv::{KvCommand, KvState};
use raft_core::consensus::mem_log::MemLog;
use raft_core::consensus::server::{ClientId, ConsensusConfig, Effect, Input, Message, Role, Server, ServerId, Timer};
use raft_core::{LogIndex, Term};

pub fn sid(name: &str) -> ServerId {
    ServerId(name.to_owned())
}

pub fn config(id: &str, members: &[&str], bugs: Bugs) -> ConsensusConfig {
    ConsensusConfig {
        id: sid(id),
        members: members.iter().map(|m| sid(m)).collect(),
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        heartbeat_ms: 50,
        snapshot_interval: 0,
        max_append_entries: 64,
        machine_version: 1,
        rng_seed: id.bytes().map(u64::from).sum(),
        bugs,
    }
}

pub struct Cluster {
    pub servers: BTreeMap<ServerId, Server>,
    pub logs: BTreeMap<ServerId, MemLog>,
    /// What each server made durable with `PersistTermAndVote`.
    pub persisted: BTreeMap<ServerId, (Term, Option<ServerId>)>,
    pub network: VecDeque<(ServerId, ServerId, Message)>,
    pub timers: BTreeMap<(ServerId, Timer), u64>,
    pub now: u64,
    /// Every effect, in order, with its server.
    pub effects: Vec<(ServerId, Effect)>,
    /// Servers cut off from everyone (messages to and from them are dropped).
    pub isolated: BTreeSet<ServerId>,
    /// Whether logs make appends durable right after each step (a fast disk).
    pub auto_write: bool,
}

impl Cluster {
    /// A new cluster, started as Ra's `ra:start_cluster` starts one: every server new (no election
    /// timer of its own), then `trigger_election` to the first member.
    pub fn new(members: &[&str], bugs: Bugs) -> Cluster {
        Cluster::new_configured(members, bugs, |_| {})
    }

    pub fn server(&self, name: &str) -> &Server {
        &self.servers[&sid(name)]
    }

    pub fn log(&mut self, name: &str) -> &mut MemLog {
        self.logs.get_mut(&sid(name)).unwrap()
    }

    /// Feeds one input to a server and routes its effects.
    pub fn input(&mut self, name: &ServerId, input: Input) {
        let server = self.servers.get_mut(name).unwrap();
        let log = self.logs.get_mut(name).unwrap();
        let fx = server.handle(self.now, input, log).unwrap();
        self.apply_effects(name, fx);
        if self.auto_write {
            self.write(name);
        }
    }

    /// Makes everything `name` appended durable and tells it.
    pub fn write(&mut self, name: &ServerId) {
        let log = self.logs.get_mut(name).unwrap();
        let before = log.last_written();
        let after = log.write_all();
        if after != before {
            let server = self.servers.get_mut(name).unwrap();
            let log = self.logs.get_mut(name).unwrap();
            let fx = server.handle(self.now, Input::Written, log).unwrap();
            self.apply_effects(name, fx);
        }
    }

    fn apply_effects(&mut self, name: &ServerId, fx: Vec<Effect>) {
        for e in fx {
            match &e {
                Effect::Send { to, msg } => self.network.push_back((name.clone(), to.clone(), msg.clone())),
                Effect::SetTimer { timer, after_ms } => {
                    self.timers.insert((name.clone(), timer.clone()), self.now + after_ms);
                }
                Effect::CancelTimer(timer) => {
                    self.timers.remove(&(name.clone(), timer.clone()));
                }
                Effect::PersistTermAndVote { term, voted_for } => {
                    self.persisted.insert(name.clone(), (*term, voted_for.clone()));
                }
                _ => {}
            }
            self.effects.push((name.clone(), e));
        }
    }

    /// Delivers one message; false when the network is empty.
    pub fn deliver_one(&mut self) -> bool {
        let Some((from, to, msg)) = self.network.pop_front() else { return false };
        if self.isolated.contains(&from) || self.isolated.contains(&to) {
            return true;
        }
        self.input(&to, Input::Message { from, msg });
        true
    }

    /// Delivers until the network is empty (bounded).
    pub fn deliver_all(&mut self) {
        for _ in 0..100_000 {
            if !self.deliver_one() {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    /// Fires a server's timer now.
    pub fn fire(&mut self, name: &str, timer: Timer) {
        self.timers.remove(&(sid(name), timer.clone()));
        self.input(&sid(name), Input::Timer(timer));
    }

    /// Advances the clock to the earliest timer and fires it; returns it.
    pub fn fire_next_timer(&mut self) -> Option<(ServerId, Timer)> {
        let ((name, timer), at) =
            self.timers.iter().min_by_key(|(k, at)| (**at, (*k).clone())).map(|(k, v)| (k.clone(), *v))?;
        self.timers.remove(&(name.clone(), timer.clone()));
        self.now = self.now.max(at);
        self.input(&name, Input::Timer(timer.clone()));
        Some((name, timer))
    }

    /// Runs timers and messages until `done` holds (bounded).
    pub fn run_until(&mut self, mut done: impl FnMut(&Cluster) -> bool) {
        for _ in 0..10_000 {
            self.deliver_all();
            if done(self) {
                return;
            }
            self.fire_next_timer().expect("a timer to fire");
        }
        panic!("condition never reached");
    }

    pub fn leaders(&self) -> Vec<ServerId> {
        self.servers.iter().filter(|(_, s)| *s.role() == Role::Leader).map(|(n, _)| n.clone()).collect()
    }

    /// Runs until exactly one leader exists among the non-isolated servers; returns it.
    pub fn elect(&mut self) -> ServerId {
        self.run_until(|c| c.leaders().iter().filter(|l| !c.isolated.contains(*l)).count() == 1);
        self.leaders().into_iter().find(|l| !self.isolated.contains(l)).unwrap()
    }

    /// A client command to `name`.
    pub fn command(&mut self, name: &ServerId, client: u64, request: u64, command: KvCommand) {
        self.input(name, Input::Command { client: ClientId(client), request, command });
    }

    /// Every reply a server produced, as (client, request, result).
    pub fn replies(&self) -> Vec<(u64, u64, raft_core::consensus::kv::KvResult)> {
        self.effects
            .iter()
            .filter_map(|(_, e)| match e {
                Effect::Reply { client, request, result } => Some((client.0, *request, result.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn machine(&self, name: &str) -> &KvState {
        self.server(name).machine()
    }
}

pub fn put(key: &str, value: &str) -> KvCommand {
    KvCommand::Put { key: key.to_owned(), value: value.as_bytes().to_vec() }
}

pub fn get(key: &str) -> KvCommand {
    KvCommand::Get { key: key.to_owned() }
}

impl Cluster {
    /// Like [`Cluster::new`], with every member's config passed through `tweak` first (e.g. to set a
    /// snapshot interval).
    pub fn new_configured(members: &[&str], bugs: Bugs, tweak: impl Fn(&mut ConsensusConfig)) -> Cluster {
        let mut c = Cluster {
            servers: BTreeMap::new(),
            logs: BTreeMap::new(),
            persisted: BTreeMap::new(),
            network: VecDeque::new(),
            timers: BTreeMap::new(),
            now: 0,
            effects: Vec::new(),
            isolated: BTreeSet::new(),
            auto_write: true,
        };
        for m in members {
            let mut cfg = config(m, members, bugs.clone());
            tweak(&mut cfg);
            let mut log = MemLog::new();
            let (s, fx) = Server::recover(cfg, Term(0), None, LogIndex(0), None, &mut log).unwrap();
            c.servers.insert(sid(m), s);
            c.logs.insert(sid(m), log);
            c.apply_effects(&sid(m), fx);
        }
        c.input(&sid(members[0]), Input::TriggerElection);
        c
    }
}

impl Cluster {
    /// Delivers the oldest queued message from `from` to `to` (dropped if either side is isolated),
    /// leaving every other message queued; false when none is queued.
    pub fn deliver_between(&mut self, from: &str, to: &str) -> bool {
        let Some(pos) = self.network.iter().position(|(f, t, _)| f.0 == from && t.0 == to) else { return false };
        let (f, t, msg) = self.network.remove(pos).unwrap();
        if !self.isolated.contains(&f) && !self.isolated.contains(&t) {
            self.input(&t, Input::Message { from: f, msg });
        }
        true
    }

    /// Delivers one message at a time until `done` holds; false if the network empties first.
    pub fn deliver_until(&mut self, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if !self.deliver_one() {
                return done(self);
            }
        }
    }

    /// Makes `name`'s log durable up to `index` (never lowering what is written) and tells the server.
    pub fn write_up_to(&mut self, name: &str, index: LogIndex) {
        let id = sid(name);
        let log = self.logs.get_mut(&id).unwrap();
        let before = log.last_written();
        if index > before.0 {
            log.write_up_to(index);
        }
        if log.last_written() != before {
            let server = self.servers.get_mut(&id).unwrap();
            let fx = server.handle(self.now, Input::Written, log).unwrap();
            self.apply_effects(&id, fx);
        }
    }

    /// Crashes and restarts `name` with `cfg`: unwritten entries are lost, term and vote come back from
    /// what `PersistTermAndVote` made durable, role, commit index and machine restart from scratch
    /// (last applied 0), and its timers are gone until recovery arms them. Messages in flight stay.
    pub fn crash_restart(&mut self, name: &str, cfg: ConsensusConfig) {
        let id = sid(name);
        let old = self.logs.get_mut(&id).unwrap();
        assert!(old.snapshot_index_term().is_none(), "crash_restart does not model snapshots");
        let (written, _) = old.last_written();
        let mut log = MemLog::new();
        for i in 1..=written.0 {
            let (t, p) = old.fetch(LogIndex(i)).unwrap().expect("a written entry is readable");
            log.append(LogIndex(i), t, p).unwrap();
        }
        log.write_all();
        self.timers.retain(|(n, _), _| *n != id);
        let (term, voted_for) = self.persisted.get(&id).cloned().unwrap_or((Term(0), None));
        let (s, fx) = Server::recover(cfg, term, voted_for, LogIndex(0), None, &mut log).unwrap();
        self.servers.insert(id.clone(), s);
        self.logs.insert(id.clone(), log);
        self.apply_effects(&id, fx);
    }

    /// Every entry of `name`'s log above its snapshot, as (index, term, payload).
    pub fn log_entries(&self, name: &str) -> Vec<(LogIndex, Term, raft_core::Payload)> {
        let mut log = self.logs[&sid(name)].clone();
        let (last, _) = log.last_index_term();
        (log.first_index().0..=last.0)
            .filter_map(|i| log.fetch(LogIndex(i)).unwrap().map(|(t, p)| (LogIndex(i), t, p)))
            .collect()
    }
}
