//! Raft paper behaviours of the pure consensus server (Ongaro & Ousterhout, "In Search of an
//! Understandable Consensus Algorithm", and Ra's variations: pre-vote, written-index replication),
//! driven through the deterministic `Cluster` harness and asserted on state and recorded effects.

mod cluster;

use std::collections::{BTreeMap, BTreeSet};

use cluster::*;
use raft_core::consensus::RaftLog;
use raft_core::consensus::kv::{KvCommand, KvResult};
use raft_core::consensus::mem_log::MemLog;
use raft_core::consensus::server::{
    ClientId, ConsensusConfig, Effect, EntryBody, Input, Message, Role, Server, ServerId, Timer,
};
use raft_core::{Bugs, LogIndex, Payload, Term};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

fn isolate(c: &mut Cluster, name: &str) {
    c.isolated.insert(sid(name));
}

fn heal(c: &mut Cluster, name: &str) {
    c.isolated.remove(&sid(name));
}

fn role(c: &Cluster, name: &str) -> Role {
    c.server(name).role().clone()
}

fn term(c: &Cluster, name: &str) -> Term {
    c.server(name).current_term()
}

fn commit(c: &Cluster, name: &str) -> LogIndex {
    c.server(name).commit_index()
}

fn last_index(c: &mut Cluster, name: &str) -> LogIndex {
    c.log(name).last_index_term().0
}

fn term_at(c: &mut Cluster, name: &str, index: u64) -> Option<Term> {
    c.log(name).term_at(LogIndex(index)).unwrap()
}

/// The decoded body of every entry of `name`'s log, by index.
fn bodies(c: &Cluster, name: &str) -> Vec<(LogIndex, Term, EntryBody)> {
    c.log_entries(name).into_iter().map(|(i, t, p)| (i, t, EntryBody::decode(&p).expect("a valid entry"))).collect()
}

/// Whether any entry of `name`'s log is a command for `client`.
fn has_client_entry(c: &Cluster, name: &str, client: u64) -> bool {
    bodies(c, name).iter().any(|(_, _, b)| matches!(b, EntryBody::Command { client: cl, .. } if cl.0 == client))
}

fn replies_to(c: &Cluster, client: u64) -> Vec<(u64, KvResult)> {
    c.replies().into_iter().filter(|(cl, _, _)| *cl == client).map(|(_, r, res)| (r, res)).collect()
}

/// Every message `from` sent, in order.
fn sent_by(c: &Cluster, from: &str) -> Vec<(ServerId, Message)> {
    c.effects
        .iter()
        .filter(|(who, _)| who.0 == from)
        .filter_map(|(_, e)| match e {
            Effect::Send { to, msg } => Some((to.clone(), msg.clone())),
            _ => None,
        })
        .collect()
}

fn effects_of(c: &Cluster, who: &str) -> Vec<Effect> {
    c.effects.iter().filter(|(w, _)| w.0 == who).map(|(_, e)| e.clone()).collect()
}

fn is_pre_vote(m: &Message) -> bool {
    matches!(m, Message::PreVote { .. })
}

fn is_request_vote(m: &Message) -> bool {
    matches!(m, Message::RequestVote { .. })
}

/// Fires `name`'s election timer and delivers everything (no other timer fires).
fn campaign(c: &mut Cluster, name: &str) {
    c.fire(name, Timer::Election);
    c.deliver_all();
}

/// Fires `name`'s heartbeat timer and delivers everything.
fn heartbeat(c: &mut Cluster, name: &str) {
    c.fire(name, Timer::Heartbeat);
    c.deliver_all();
}

fn tweaked(max_append_entries: usize) -> impl Fn(&mut ConsensusConfig) {
    move |cfg: &mut ConsensusConfig| cfg.max_append_entries = max_append_entries
}

/// For every granted vote in the recorded effects: the voter's latest `PersistTermAndVote` (durable
/// before any later effect) is exactly that term and that candidate, and no voter grants two candidates
/// in one term. Returns how many grants were checked.
fn check_vote_discipline(c: &Cluster) -> usize {
    let mut durable: BTreeMap<ServerId, (Term, Option<ServerId>)> = BTreeMap::new();
    let mut granted: BTreeMap<(ServerId, Term), ServerId> = BTreeMap::new();
    let mut grants = 0;
    for (who, e) in &c.effects {
        match e {
            Effect::PersistTermAndVote { term, voted_for } => {
                if let Some((t, _)) = durable.get(who) {
                    assert!(*term >= *t, "{who} persisted term {term:?} after {t:?}");
                }
                durable.insert(who.clone(), (*term, voted_for.clone()));
            }
            Effect::Send { to, msg: Message::RequestVoteReply { term, granted: true } } => {
                assert_eq!(
                    durable.get(who),
                    Some(&(*term, Some(to.clone()))),
                    "{who} granted {to} in {term:?} before its vote was durable"
                );
                if let Some(prev) = granted.insert((who.clone(), *term), to.clone()) {
                    assert_eq!(&prev, to, "{who} voted for {prev} and {to} in {term:?}");
                }
                grants += 1;
            }
            _ => {}
        }
    }
    grants
}

/// Watches a cluster step by step: terms never go back (per server, across restarts), at most one
/// leader per term, every index applied anywhere holds the same entry everywhere, machines at the same
/// applied index are equal, and a leader's commit index is written on a quorum with matching terms.
struct Observer {
    quorum: usize,
    terms: BTreeMap<ServerId, Term>,
    leaders: BTreeMap<Term, BTreeSet<ServerId>>,
    applied: BTreeMap<LogIndex, (Term, Payload)>,
    seen_applied: BTreeMap<ServerId, LogIndex>,
}

impl Observer {
    fn new(members: usize) -> Observer {
        Observer {
            quorum: members / 2 + 1,
            terms: BTreeMap::new(),
            leaders: BTreeMap::new(),
            applied: BTreeMap::new(),
            seen_applied: BTreeMap::new(),
        }
    }

    fn observe(&mut self, c: &mut Cluster) {
        for (id, s) in &c.servers {
            let t = s.current_term();
            if let Some(prev) = self.terms.insert(id.clone(), t) {
                assert!(t >= prev, "{id}'s term went back from {prev:?} to {t:?}");
            }
            if *s.role() == Role::Leader {
                let set = self.leaders.entry(t).or_default();
                set.insert(id.clone());
                assert!(set.len() <= 1, "two leaders in {t:?}: {set:?}");
            }
            let log = c.logs.get_mut(id).unwrap();
            let from = self.seen_applied.get(id).copied().unwrap_or(LogIndex(0)).min(s.last_applied());
            for i in from.0 + 1..=s.last_applied().0 {
                let (et, p) = log.fetch(LogIndex(i)).unwrap().expect("an applied entry is in the log");
                match self.applied.get(&LogIndex(i)) {
                    Some((t0, p0)) => {
                        assert!(*t0 == et && p0[..] == p[..], "{id} applied a different entry at {i}: {et:?} vs {t0:?}")
                    }
                    None => {
                        self.applied.insert(LogIndex(i), (et, p));
                    }
                }
            }
            self.seen_applied.insert(id.clone(), s.last_applied());
        }
        let mut by_applied: BTreeMap<LogIndex, &Server> = BTreeMap::new();
        for s in c.servers.values() {
            if let Some(other) = by_applied.insert(s.last_applied(), s) {
                assert_eq!(other.machine(), s.machine(), "machines differ at applied {:?}", s.last_applied());
            }
        }
        let leaders: Vec<ServerId> = c.leaders();
        for l in leaders {
            let n = c.servers[&l].commit_index();
            if n.0 == 0 {
                continue;
            }
            let lt = c.logs.get_mut(&l).unwrap().term_at(n).unwrap();
            let holders = c
                .logs
                .values_mut()
                .filter_map(|log| (log.last_written().0 >= n).then(|| log.term_at(n).unwrap()))
                .filter(|t| *t == lt)
                .count();
            assert!(
                holders >= self.quorum,
                "leader {l} commits {n:?} but only {holders} servers have it written (quorum {})",
                self.quorum
            );
        }
    }
}

/// One random scheduling step; see the property test for the mix.
struct Chaos {
    rng: ChaCha8Rng,
    members: Vec<&'static str>,
    cfgs: BTreeMap<&'static str, ConsensusConfig>,
    crashes: bool,
    partitions: bool,
    next_request: u64,
}

impl Chaos {
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[(self.rng.next_u64() % items.len() as u64) as usize].clone()
    }

    fn command(&mut self) -> KvCommand {
        let key = self.pick(&["x", "y", "z"]);
        let value = format!("v{}", self.next_request);
        match self.rng.next_u64() % 3 {
            0 => put(key, &value),
            1 => get(key),
            _ => KvCommand::Cas { key: key.to_owned(), expected: None, new: value.into_bytes() },
        }
    }

    fn step(&mut self, c: &mut Cluster) {
        let r = self.rng.next_u64() % 100;
        match r {
            0..=64 => {
                if c.network.is_empty() {
                    c.fire_next_timer();
                } else if !self.rng.next_u64().is_multiple_of(4) {
                    c.deliver_one();
                } else {
                    // Per-link FIFO: deliver the head of a random link.
                    let (f, t, _) = c.network[(self.rng.next_u64() % c.network.len() as u64) as usize].clone();
                    c.deliver_between(&f.0, &t.0);
                }
            }
            65..=74 => {
                // Timers usually fire once messages are through, sometimes while they are in flight.
                if c.network.is_empty() || self.rng.next_u64().is_multiple_of(4) {
                    c.fire_next_timer();
                } else {
                    c.deliver_one();
                }
            }
            75..=77 => {
                // Any armed timer fires early (timings are arbitrary).
                let armed: Vec<(ServerId, Timer)> = c.timers.keys().cloned().collect();
                if !armed.is_empty() {
                    let (who, t) = self.pick(&armed);
                    c.fire(&who.0, t);
                }
            }
            78..=86 => {
                self.next_request += 1;
                let to = match c.leaders().first() {
                    Some(l) if !self.rng.next_u64().is_multiple_of(4) => l.clone(),
                    _ => sid(self.pick(&self.members.clone())),
                };
                let cmd = self.command();
                c.command(&to, 1, self.next_request, cmd);
            }
            87..=92 => {
                if c.auto_write {
                    c.deliver_one();
                } else {
                    let who = self.pick(&self.members.clone());
                    let last = last_index(c, who);
                    let upto = self.rng.next_u64() % (last.0 + 1);
                    c.write_up_to(who, LogIndex(upto));
                }
            }
            93..=95 => {
                if self.partitions {
                    let who = self.pick(&self.members.clone());
                    if !c.isolated.remove(&sid(who)) {
                        c.isolated.insert(sid(who));
                    }
                }
            }
            96..=98 => {
                c.deliver_one();
            }
            _ => {
                if self.crashes {
                    let who = self.pick(&self.members.clone());
                    let cfg = self.cfgs[who].clone();
                    c.crash_restart(who, cfg);
                }
            }
        }
    }
}

fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Exactly one leader, every other server a follower of it in its term.
fn settled(c: &Cluster) -> Option<ServerId> {
    let leaders = c.leaders();
    let [l] = leaders.as_slice() else { return None };
    let t = c.servers[l].current_term();
    c.servers
        .iter()
        .all(|(id, s)| id == l || (*s.role() == Role::Follower && s.current_term() == t && s.leader() == Some(l)))
        .then(|| l.clone())
}

// ---------------------------------------------------------------------------------------------
// Election
// ---------------------------------------------------------------------------------------------

/// §5.2 election safety: whatever election timers fire first, and however deliveries and timers then
/// interleave, each term has at most one leader; once messages outpace timeouts the cluster settles on
/// exactly one.
#[test]
fn exactly_one_leader_per_term_whatever_timers_fire() {
    for n in [1usize, 3, 5] {
        let names = &NAMES[..n];
        for seed in 0..12u64 {
            let mut c = Cluster::new_configured(names, Bugs::none(), |cfg| cfg.rng_seed = cfg.rng_seed * 31 + seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 1000 + n as u64);
            let mut obs = Observer::new(n);
            let mut order: Vec<&str> = names.to_vec();
            shuffle(&mut rng, &mut order);
            let k = 1 + (rng.next_u64() % n as u64) as usize;
            for name in &order[..k] {
                c.fire(name, Timer::Election);
                obs.observe(&mut c);
            }
            // Safety under an arbitrary schedule: timers often fire while messages are still in flight.
            for _ in 0..400 {
                if rng.next_u64().is_multiple_of(3) || !c.deliver_one() {
                    c.fire_next_timer();
                }
                obs.observe(&mut c);
            }
            // Liveness needs messages faster than election timeouts: deliver everything between timers.
            let mut steps = 0;
            loop {
                c.deliver_all();
                obs.observe(&mut c);
                if settled(&c).is_some() {
                    break;
                }
                steps += 1;
                assert!(steps < 2_000, "n={n} seed={seed}: no stable leader");
                c.fire_next_timer();
                obs.observe(&mut c);
            }
            let leader = settled(&c).unwrap();
            let t = term(&c, &leader.0);
            assert!(t >= Term(1));
            assert_eq!(obs.leaders.get(&t), Some(&BTreeSet::from([leader.clone()])));
            assert!(obs.leaders.values().all(|s| s.len() == 1));
            check_vote_discipline(&c);
        }
    }
}

/// A split vote: two candidates in the same term each get half the votes of a four-member cluster, so
/// no one wins that term; a later election (higher term) elects exactly one.
#[test]
fn split_vote_then_recovery() {
    let names = &["a", "b", "c", "d"];
    let mut c = Cluster::new(names, Bugs::none());
    let mut obs = Observer::new(4);
    c.fire("a", Timer::Election);
    c.fire("b", Timer::Election);
    // Deliver pre-votes and their replies until both are candidates in term 1.
    assert!(
        c.deliver_until(|c| { *c.server("a").role() == Role::Candidate && *c.server("b").role() == Role::Candidate })
    );
    obs.observe(&mut c);
    assert_eq!((term(&c, "a"), term(&c, "b")), (Term(1), Term(1)));
    // c hears a first, d hears b first.
    assert!(c.deliver_between("a", "c"));
    assert!(c.deliver_between("b", "d"));
    c.deliver_all();
    obs.observe(&mut c);
    assert_eq!(role(&c, "a"), Role::Candidate);
    assert_eq!(role(&c, "b"), Role::Candidate);
    assert!(c.leaders().is_empty(), "a split term has no leader");
    assert_eq!(c.server("c").voted_for(), Some(&sid("a")));
    assert_eq!(c.server("d").voted_for(), Some(&sid("b")));
    assert_eq!(check_vote_discipline(&c), 2);

    // Recovery: timers run on; a higher term elects exactly one leader.
    let mut steps = 0;
    while settled(&c).is_none() {
        steps += 1;
        assert!(steps < 10_000);
        if !c.deliver_one() {
            c.fire_next_timer();
        }
        obs.observe(&mut c);
    }
    let leader = settled(&c).unwrap();
    let t = term(&c, &leader.0);
    assert!(t > Term(1), "the split term stays leaderless");
    assert!(!obs.leaders.contains_key(&Term(1)));
    assert!(obs.leaders.values().all(|s| s.len() == 1));
    check_vote_discipline(&c);
    // The new leader can commit.
    c.command(&leader, 7, 1, put("k", "v"));
    c.run_until(|c| !replies_to(c, 7).is_empty());
    assert_eq!(replies_to(&c, 7), vec![(1, KvResult::Ok)]);
}

/// §5.4.1 election restriction: a candidate whose log is behind a majority cannot be elected, though
/// its term reaches the others.
#[test]
fn candidate_with_stale_log_is_refused() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    campaign(&mut c, "a");
    assert_eq!(role(&c, "a"), Role::Leader);
    isolate(&mut c, "c");
    c.command(&sid("a"), 1, 1, put("k", "v"));
    c.deliver_all();
    assert_eq!(commit(&c, "a"), LogIndex(2));
    // c missed index 2. A vote request from it (as after a pre-vote) is refused by b.
    heal(&mut c, "c");
    isolate(&mut c, "a");
    let c_last = c.log("c").last_index_term();
    assert_eq!(c_last, (LogIndex(1), Term(1)));
    c.input(
        &sid("b"),
        Input::Message {
            from: sid("c"),
            msg: Message::RequestVote { term: Term(2), last_index: c_last.0, last_term: c_last.1 },
        },
    );
    let reply = sent_by(&c, "b").into_iter().last().unwrap();
    assert_eq!(reply, (sid("c"), Message::RequestVoteReply { term: Term(2), granted: false }));
    assert_eq!(term(&c, "b"), Term(2), "the higher term is still adopted");
    assert_eq!(c.server("b").voted_for(), None);
    // And c's own pre-vote never gets b's grant: c fires its timer repeatedly, never becomes candidate.
    for _ in 0..5 {
        campaign(&mut c, "c");
        assert_ne!(role(&c, "c"), Role::Candidate);
        assert_ne!(role(&c, "c"), Role::Leader);
    }
    // b, whose log is complete, wins.
    campaign(&mut c, "b");
    assert_eq!(role(&c, "b"), Role::Leader);
    assert_eq!(term_at(&mut c, "b", 2), Some(Term(1)));
}

// ---------------------------------------------------------------------------------------------
// Stale leaders and log repair
// ---------------------------------------------------------------------------------------------

/// §5.3: a leader cut off keeps accepting commands it cannot commit; a new leader is elected in a
/// higher term; on healing the old leader becomes a follower and its uncommitted entries are replaced.
#[test]
fn stale_leader_steps_down_and_its_uncommitted_entries_are_overwritten() {
    let names = &["a", "b", "c"];
    let mut c = Cluster::new(names, Bugs::none());
    let old = c.elect();
    let old_term = term(&c, &old.0);
    isolate(&mut c, &old.0);
    c.command(&old, 10, 1, put("lost", "1"));
    c.command(&old, 10, 2, put("lost", "2"));
    c.deliver_all();
    let old_log_len = last_index(&mut c, &old.0);
    assert_eq!(role(&c, &old.0), Role::Leader, "it does not know yet");
    assert!(commit(&c, &old.0) < old_log_len);
    assert!(has_client_entry(&c, &old.0, 10));

    let new = c.elect();
    assert_ne!(new, old);
    let new_term = term(&c, &new.0);
    assert!(new_term > old_term);
    c.command(&new, 20, 1, put("kept", "1"));
    c.run_until(|c| !replies_to(c, 20).is_empty());

    heal(&mut c, &old.0);
    let (o, n) = (old.clone(), new.clone());
    c.run_until(|c| {
        *c.server(&o.0).role() == Role::Follower
            && c.log_entries(&o.0) == c.log_entries(&n.0)
            && c.server(&o.0).commit_index() == c.server(&n.0).commit_index()
    });
    assert_eq!(term(&c, &old.0), term(&c, &new.0));
    assert_eq!(c.server(&old.0).leader(), Some(&new));
    assert!(!has_client_entry(&c, &old.0, 10), "the stale leader's uncommitted entries are gone");
    assert!(has_client_entry(&c, &old.0, 20));
    assert!(replies_to(&c, 10).is_empty(), "uncommitted commands were never acknowledged");
    assert_eq!(c.machine(&old.0), c.machine(&new.0));
    assert!(c.machine(&old.0).index_of("lost").is_none());
    check_vote_discipline(&c);
}

/// A follower holding divergent entries of an old term — longer than the new leader's log — has them
/// replaced, its tail truncated, and ends with exactly the leader's log.
#[test]
fn divergent_follower_log_is_repaired() {
    let names = &["a", "b", "c", "d", "e"];
    let mut c = Cluster::new(names, Bugs::none());
    campaign(&mut c, "a");
    assert_eq!(role(&c, "a"), Role::Leader);
    // a replicates X, Y, Z to b only: not committed.
    for n in ["c", "d", "e"] {
        isolate(&mut c, n);
    }
    for (r, k) in [(1, "x"), (2, "y"), (3, "z")] {
        c.command(&sid("a"), 30, r, put(k, "old"));
    }
    c.deliver_all();
    assert_eq!(commit(&c, "a"), LogIndex(1));
    assert_eq!(last_index(&mut c, "b"), LogIndex(4));
    assert_eq!(c.log("b").last_written(), (LogIndex(4), Term(1)));

    // c, d, e elect c in term 2, which commits one command.
    for n in ["a", "b"] {
        isolate(&mut c, n);
    }
    for n in ["c", "d", "e"] {
        heal(&mut c, n);
    }
    campaign(&mut c, "c");
    assert_eq!(role(&c, "c"), Role::Leader);
    assert_eq!(term(&c, "c"), Term(2));
    c.command(&sid("c"), 31, 1, put("p", "new"));
    c.deliver_all();
    assert_eq!(commit(&c, "c"), LogIndex(3));
    assert_eq!(last_index(&mut c, "c"), LogIndex(3), "shorter than b's divergent log");

    // b rejoins (a stays away): its entries 2..4 of term 1 are replaced and 4 truncated.
    heal(&mut c, "b");
    c.run_until(|c| c.log_entries("b") == c.log_entries("c") && c.server("b").commit_index() == LogIndex(3));
    let b = bodies(&c, "b");
    assert_eq!(b.len(), 4, "entries 0..=3");
    assert_eq!(b[2], (LogIndex(2), Term(2), EntryBody::Noop));
    assert!(matches!(&b[3], (LogIndex(3), Term(2), EntryBody::Command { client: ClientId(31), .. })));
    assert!(!has_client_entry(&c, "b", 30));
    assert_eq!(c.log("b").last_written(), (LogIndex(3), Term(2)));
    assert_eq!(role(&c, "b"), Role::Follower);
    assert_eq!(c.machine("b"), c.machine("c"));
    assert!(replies_to(&c, 30).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Commitment (§5.4.2, Figure 8) and written indexes
// ---------------------------------------------------------------------------------------------

/// Builds the Figure 8 situation with five servers (a plays S1, e plays S5), one entry per
/// append-entries so a new leader's noop does not ride along with older entries:
/// (a) a leads term 1 and replicates X (index 2, term 1) to b only;
/// (b) e is elected in term 2 by c, d, e and appends its noop at index 2, then goes away;
/// (c) a is elected in term 3 and replicates X to c and d: X is now on a majority, but a's own term-3
///     noop (index 3) is only on a and b.
fn figure8() -> Cluster {
    let names = &["a", "b", "c", "d", "e"];
    let mut c = Cluster::new_configured(names, Bugs::none(), tweaked(1));
    campaign(&mut c, "a");
    heartbeat(&mut c, "a");
    assert_eq!(role(&c, "a"), Role::Leader);
    assert!(names.iter().all(|n| c.server(n).commit_index() == LogIndex(1)));

    // (a)
    for n in ["c", "d", "e"] {
        isolate(&mut c, n);
    }
    c.command(&sid("a"), 80, 1, put("x", "1"));
    c.deliver_all();
    assert_eq!(term_at(&mut c, "b", 2), Some(Term(1)));
    assert_eq!(commit(&c, "a"), LogIndex(1));

    // (b)
    for n in ["a", "b"] {
        isolate(&mut c, n);
    }
    for n in ["c", "d", "e"] {
        heal(&mut c, n);
    }
    c.fire("e", Timer::Election);
    assert!(c.deliver_until(|c| *c.server("e").role() == Role::Leader));
    assert_eq!(term(&c, "e"), Term(2));
    isolate(&mut c, "e");
    c.deliver_all();
    assert_eq!(term_at(&mut c, "e", 2), Some(Term(2)));
    assert_eq!(last_index(&mut c, "c"), LogIndex(1), "e's noop reached no one");

    // (c)
    heal(&mut c, "a");
    heal(&mut c, "b");
    heartbeat(&mut c, "a"); // c and d answer with term 2: a steps down
    assert_eq!(role(&c, "a"), Role::Follower);
    // a wins term 3 and pipelines one entry per message on every reply (Ra's `pipeline_rpcs`): c and d
    // are cut off as soon as X reached them, before a's term-3 noop does.
    c.fire("a", Timer::Election);
    let holds_x = |c: &Cluster, n: &str| c.log_entries(n).iter().any(|(i, t, _)| *i == LogIndex(2) && *t == Term(1));
    while !(c.isolated.contains(&sid("c")) && c.isolated.contains(&sid("d"))) {
        assert!(c.deliver_one(), "X reaches c and d");
        for n in ["c", "d"] {
            if holds_x(&c, n) {
                isolate(&mut c, n);
            }
        }
    }
    c.deliver_all();
    assert_eq!(role(&c, "a"), Role::Leader);
    assert_eq!(term(&c, "a"), Term(3));
    for n in ["a", "b", "c", "d"] {
        assert_eq!(term_at(&mut c, n, 2), Some(Term(1)), "{n} holds X");
        assert!(c.log(n).last_written().0 >= LogIndex(2));
    }
    assert_eq!(term_at(&mut c, "a", 3), Some(Term(3)));
    assert_eq!(term_at(&mut c, "c", 3), None);
    assert_eq!(term_at(&mut c, "d", 3), None);
    c
}

/// Figure 8 (c)→(d): X (term 1) sits on four of five servers, yet the term-3 leader must not commit it
/// by counting — and indeed e, elected next, overwrites it.
#[test]
fn figure8_old_term_entry_on_a_majority_is_not_committed_by_counting() {
    let mut c = figure8();
    assert_eq!(commit(&c, "a"), LogIndex(1), "X is replicated on a majority but not committed");
    assert!(replies_to(&c, 80).is_empty());

    // (d) a crashes (goes away); e comes back, steps down on the higher term, and wins term 4 with c and d.
    isolate(&mut c, "a");
    heal(&mut c, "c");
    heal(&mut c, "d");
    heal(&mut c, "e");
    heartbeat(&mut c, "e");
    assert_eq!(role(&c, "e"), Role::Follower);
    campaign(&mut c, "e");
    assert_eq!(role(&c, "e"), Role::Leader);
    assert_eq!(term(&c, "e"), Term(4));
    heartbeat(&mut c, "e"); // one entry per message: the second carries e's term-4 noop
    assert_eq!(commit(&c, "e"), LogIndex(3));
    for n in ["c", "d", "e"] {
        assert_eq!(term_at(&mut c, n, 2), Some(Term(2)), "X overwritten on {n}");
    }
    // Everyone converges on e's log; no one ever applied X.
    heal(&mut c, "a");
    c.run_until(|c| ["a", "b", "c", "d"].iter().all(|n| c.log_entries(n) == c.log_entries("e")));
    for n in ["a", "b", "c", "d", "e"] {
        assert!(!has_client_entry(&c, n, 80));
        assert!(c.machine(n).index_of("x").is_none());
    }
    assert!(replies_to(&c, 80).is_empty());
}

/// Figure 8 (e): once the term-3 leader's own entry reaches a majority, it commits — and X with it; e
/// can no longer be elected.
#[test]
fn figure8_current_term_entry_commits_the_older_one() {
    let mut c = figure8();
    heal(&mut c, "c");
    heal(&mut c, "d");
    heartbeat(&mut c, "a"); // c and d missed a's noop: they say where they are, and a sends it
    assert_eq!(commit(&c, "a"), LogIndex(3));
    assert_eq!(replies_to(&c, 80), vec![(1, KvResult::Ok)], "X applied and acknowledged by the new leader");
    assert_eq!(c.machine("a").index_of("x"), Some(LogIndex(2)));

    isolate(&mut c, "a");
    heal(&mut c, "e");
    heartbeat(&mut c, "e");
    for _ in 0..3 {
        campaign(&mut c, "e");
        assert_ne!(role(&c, "e"), Role::Leader);
    }
    for n in ["b", "c", "d"] {
        assert_eq!(term(&c, n), Term(3), "e's pre-votes were refused without bumping terms");
        assert_eq!(term_at(&mut c, n, 2), Some(Term(1)));
    }
}

/// §5.4.2 in a three-member cluster: b inherits X (term 1) and wins term 2; replicating X to c puts it
/// on every server, but b commits nothing until its own term-2 noop is on a majority.
#[test]
fn only_current_term_entries_commit_by_counting() {
    let mut c = Cluster::new_configured(&["a", "b", "c"], Bugs::none(), tweaked(1));
    campaign(&mut c, "a");
    heartbeat(&mut c, "a");
    isolate(&mut c, "c");
    c.command(&sid("a"), 5, 1, put("x", "1"));
    assert!(c.deliver_between("a", "b"));
    isolate(&mut c, "a"); // b's acknowledgement never reaches a
    c.deliver_all();
    assert_eq!(commit(&c, "a"), LogIndex(1));
    assert_eq!(c.log("b").last_written(), (LogIndex(2), Term(1)));

    heal(&mut c, "c");
    c.fire("b", Timer::Election);
    // c answers b's first (empty) append-entries with its written index 2 before b's noop reaches it.
    let c_matched = |c: &Cluster| c.server("b").peers().get(&sid("c")).is_some_and(|p| p.match_index >= LogIndex(2));
    assert!(c.deliver_until(c_matched));
    assert_eq!(role(&c, "b"), Role::Leader);
    assert_eq!(term(&c, "b"), Term(2));
    for n in ["a", "b", "c"] {
        assert_eq!(term_at(&mut c, n, 2), Some(Term(1)));
        assert!(c.log(n).last_written().0 >= LogIndex(2));
    }
    assert_eq!(c.server("b").peers()[&sid("c")].match_index, LogIndex(2));
    assert_eq!(commit(&c, "b"), LogIndex(1), "index 2 is of term 1: not committed by counting");
    assert!(replies_to(&c, 5).is_empty());

    c.deliver_all();
    assert_eq!(commit(&c, "b"), LogIndex(3));
    assert_eq!(replies_to(&c, 5), vec![(1, KvResult::Ok)]);
}

/// The leader's commit is the quorum of **written** indexes: followers that appended but did not write
/// do not count; once one writes, the leader commits.
#[test]
fn commit_advances_only_on_written_indexes() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    campaign(&mut c, "a");
    assert_eq!(commit(&c, "a"), LogIndex(1));
    c.auto_write = false;
    c.command(&sid("a"), 3, 1, put("k", "v"));
    c.deliver_all();
    for n in ["b", "c"] {
        assert_eq!(last_index(&mut c, n), LogIndex(2), "{n} appended");
        assert_eq!(c.log(n).last_written().0, LogIndex(1), "{n} did not write");
    }
    assert_eq!(commit(&c, "a"), LogIndex(1));
    c.write(&sid("a"));
    c.deliver_all();
    assert_eq!(commit(&c, "a"), LogIndex(1), "the leader's own write is one of three");
    assert!(c.server("a").peers().values().all(|p| p.match_index == LogIndex(1)));
    c.write(&sid("b"));
    c.deliver_all();
    assert_eq!(c.server("a").peers()[&sid("b")].match_index, LogIndex(2));
    assert_eq!(commit(&c, "a"), LogIndex(2));
    assert_eq!(replies_to(&c, 3), vec![(1, KvResult::Ok)]);

    // And the leader's own write counts the same way: b and c written, a not.
    c.command(&sid("a"), 3, 2, put("k", "w"));
    c.deliver_all();
    c.write(&sid("b"));
    c.write(&sid("c"));
    c.deliver_all();
    assert_eq!(commit(&c, "a"), LogIndex(3), "two followers wrote index 3");
    assert_eq!(c.log("a").last_written().0, LogIndex(2));
}

/// A follower answers an append that brought new entries only when the WAL has written some of them
/// (Ra: no reply on receipt; `handle_follower({ra_log_event, …})` replies when `last_written` moved),
/// and the reply carries its last written index, not its last appended.
#[test]
fn followers_reply_with_last_written_not_last_appended() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    campaign(&mut c, "a");
    c.auto_write = false;
    c.command(&sid("a"), 4, 1, put("k", "v"));
    c.command(&sid("a"), 4, 2, put("k", "w"));
    let before = c.effects.len();
    c.deliver_all();
    let replies = c.effects[before..]
        .iter()
        .filter(|(w, e)| w.0 == "b" && matches!(e, Effect::Send { msg: Message::AppendEntriesReply { .. }, .. }))
        .count();
    assert_eq!(replies, 0, "nothing written yet, nothing reported");
    assert_eq!(c.log("b").last_written().0, LogIndex(1));
    assert_eq!(last_index(&mut c, "b"), LogIndex(3));
    // Partial write: the Written reply names exactly what is durable.
    let before = c.effects.len();
    c.write_up_to("b", LogIndex(2));
    let (_, e) = c.effects[before..].iter().rfind(|(w, _)| w.0 == "b").unwrap().clone();
    let Effect::Send { to, msg: Message::AppendEntriesReply { success: true, last_index, last_term, .. } } = e else {
        panic!("expected a written reply, got {e:?}");
    };
    assert_eq!(to, sid("a"));
    assert_eq!((last_index, last_term), c.log("b").last_written());
    assert_eq!(last_index, LogIndex(2));
    c.deliver_all();
    assert_eq!(c.server("a").peers()[&sid("b")].match_index, LogIndex(2));
}

/// A follower that learns of a new leader through a failed append-entries and then makes its stale,
/// older-term tail durable must not have that tail counted towards the new leader's commit: entries
/// with the same index but another term are not a match (Log Matching).
#[test]
fn stale_tail_written_after_a_failed_append_is_not_counted() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    campaign(&mut c, "a");
    c.auto_write = false;
    // a, alone, appends X and Y (term 1), not yet written.
    isolate(&mut c, "b");
    isolate(&mut c, "c");
    c.command(&sid("a"), 40, 1, put("x", "1"));
    c.command(&sid("a"), 40, 2, put("y", "1"));
    c.deliver_all();
    assert_eq!(c.log("a").last_index_term(), (LogIndex(3), Term(1)));
    assert_eq!(c.log("a").last_written().0, LogIndex(1));

    // b and c elect b in term 2; b's noop commits; Z and W are appended by c but written only by b.
    isolate(&mut c, "a");
    heal(&mut c, "b");
    heal(&mut c, "c");
    campaign(&mut c, "b");
    assert_eq!(role(&c, "b"), Role::Leader);
    c.write(&sid("b"));
    c.write(&sid("c"));
    c.deliver_all();
    assert_eq!(commit(&c, "b"), LogIndex(2));
    c.command(&sid("b"), 41, 1, put("z", "1"));
    c.command(&sid("b"), 41, 2, put("w", "1"));
    c.deliver_all();
    c.write(&sid("b"));
    c.deliver_all();
    assert_eq!(c.log("b").last_written(), (LogIndex(4), Term(2)));
    assert_eq!(c.log("c").last_written().0, LogIndex(2));
    assert_eq!(commit(&c, "b"), LogIndex(2));

    // a comes back: b's heartbeat fails on a (prev index 4 beyond a's log) and makes a b's follower;
    // then a's WAL writes X and Y, and a reports them as written.
    heal(&mut c, "a");
    c.fire("b", Timer::Heartbeat);
    assert!(c.deliver_between("b", "a"));
    assert_eq!(role(&c, "a"), Role::Follower);
    assert_eq!(c.server("a").leader(), Some(&sid("b")));
    c.write(&sid("a"));
    assert_eq!(c.log("a").last_written(), (LogIndex(3), Term(1)));
    c.deliver_all();
    // Only b has written b's entry 3 (a holds Y there, c has not written): it must not commit.
    assert_eq!(commit(&c, "b"), LogIndex(2), "a's term-1 entry 3 counted as b's term-2 entry 3");
    assert!(replies_to(&c, 41).is_empty());
    assert!(c.server("b").peers()[&sid("a")].match_index <= LogIndex(2));

    // Once a has b's entries written, b commits.
    c.write(&sid("a"));
    c.deliver_all();
    c.write(&sid("a"));
    c.deliver_all();
    assert_eq!(c.log_entries("a"), c.log_entries("b"));
    assert_eq!(commit(&c, "b"), LogIndex(4));
    assert_eq!(replies_to(&c, 41).len(), 2);
    assert!(!has_client_entry(&c, "a", 40));
}

/// The follower's reported next index counts its unwritten tail, which may be stale and longer than
/// the new leader's log: the leader must not take a next index past its own log (the next
/// append-entries is read from there).
#[test]
fn written_reply_cannot_push_next_index_past_the_leaders_log() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    campaign(&mut c, "a");
    c.auto_write = false;
    // P (index 2) is written by b and c and commits; a itself has not written it.
    c.command(&sid("a"), 50, 1, put("p", "1"));
    c.deliver_all();
    c.write(&sid("b"));
    c.write(&sid("c"));
    c.deliver_all();
    assert_eq!(commit(&c, "a"), LogIndex(2));
    // a, alone, appends X, Y, Z (term 1) after it: nothing of a's is written beyond index 1.
    isolate(&mut c, "b");
    isolate(&mut c, "c");
    for r in 2..5 {
        c.command(&sid("a"), 50, r, put("stale", "1"));
    }
    c.deliver_all();
    assert_eq!(c.log("a").last_index_term(), (LogIndex(5), Term(1)));
    assert_eq!(c.log("a").last_written().0, LogIndex(1));

    // b wins term 2 with c; its log ends at its noop, index 3.
    isolate(&mut c, "a");
    heal(&mut c, "b");
    heal(&mut c, "c");
    campaign(&mut c, "b");
    c.write(&sid("b"));
    c.write(&sid("c"));
    c.deliver_all();
    assert_eq!(c.log("b").last_index_term(), (LogIndex(3), Term(2)));
    assert_eq!(commit(&c, "b"), LogIndex(3));

    // a learns of b through a failed heartbeat, then writes up to P (which b has too).
    heal(&mut c, "a");
    c.fire("b", Timer::Heartbeat);
    assert!(c.deliver_between("b", "a"));
    assert_eq!(c.server("a").leader(), Some(&sid("b")));
    c.write_up_to("a", LogIndex(2));
    c.deliver_all();
    let b_next = LogIndex(last_index(&mut c, "b").0 + 1);
    assert!(c.server("b").peers()[&sid("a")].next_index <= b_next, "next index past the leader's log");
    // Replication to a goes on (reading the log from the next index) and converges.
    heartbeat(&mut c, "b");
    c.write(&sid("a"));
    c.deliver_all();
    assert_eq!(c.log_entries("a"), c.log_entries("b"));
    assert_eq!(c.server("b").peers()[&sid("a")].match_index, LogIndex(3));
    assert_eq!(c.server("b").peers()[&sid("a")].next_index, b_next);
    // P is acknowledged (by a, then again by b, which applies it as leader); the stale tail never is.
    assert!(!replies_to(&c, 50).is_empty());
    assert!(replies_to(&c, 50).iter().all(|r| *r == (1, KvResult::Ok)), "only P was ever committed");
    let stale =
        |b: &EntryBody| matches!(b, EntryBody::Command { command: KvCommand::Put { key, .. }, .. } if key == "stale");
    assert!(!bodies(&c, "a").iter().any(|(_, _, b)| stale(b)), "a's stale tail is gone");
}

// ---------------------------------------------------------------------------------------------
// Pre-vote and votes
// ---------------------------------------------------------------------------------------------

/// An isolated follower firing its election timer over and over stays in its term (pre-vote only);
/// after healing it rejoins as a follower without disturbing the leader.
#[test]
fn prevote_keeps_a_partitioned_node_from_inflating_terms() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    let leader = c.elect();
    let t = term(&c, &leader.0);
    let x = c.servers.keys().find(|n| **n != leader).unwrap().clone();
    isolate(&mut c, &x.0);
    let mark = c.effects.len();
    c.command(&leader, 9, 1, put("k", "v"));
    c.deliver_all();
    for _ in 0..50 {
        campaign(&mut c, &x.0);
        assert_eq!(term(&c, &x.0), t, "pre-vote does not bump the term");
    }
    assert_eq!(role(&c, &x.0), Role::PreVoteCandidate);
    let x_effects: Vec<&Effect> = c.effects[mark..].iter().filter(|(w, _)| *w == x).map(|(_, e)| e).collect();
    // Ra's pre-vote round persists a vote for itself in the current term, never a new term.
    assert!(x_effects.iter().all(|e| !matches!(e, Effect::PersistTermAndVote { term, .. } if *term != t)));
    assert!(x_effects.iter().any(|e| matches!(e, Effect::Send { msg: Message::PreVote { .. }, .. })));
    assert!(!x_effects.iter().any(|e| matches!(e, Effect::Send { msg: Message::RequestVote { .. }, .. })));
    assert!(commit(&c, &leader.0) >= LogIndex(2), "the majority side made progress");

    heal(&mut c, &x.0);
    let start = c.now;
    while c.now < start + 5_000 {
        c.deliver_all();
        c.fire_next_timer();
    }
    c.deliver_all();
    assert_eq!(c.leaders(), vec![leader.clone()]);
    for s in c.servers.values() {
        assert_eq!(s.current_term(), t, "{} changed term", s.id());
    }
    assert_eq!(role(&c, &x.0), Role::Follower);
    assert_eq!(c.server(&x.0).leader(), Some(&leader));
    assert_eq!(c.log_entries(&x.0), c.log_entries(&leader.0));
    assert!(!c.effects[mark..].iter().any(|(_, e)| matches!(e, Effect::Send { msg: Message::RequestVote { .. }, .. })));
}

/// A pre-vote changes nothing durable on the voter: no term bump, no vote, no persist effect.
#[test]
fn prevote_request_changes_no_term_or_vote() {
    let cfg = config("a", &["a", "b", "c"], Bugs::none());
    let mut log = MemLog::new();
    let (mut s, _) = Server::recover(cfg, Term(3), None, LogIndex(0), None, &mut log).unwrap();
    let fx = s
        .handle(
            0,
            Input::Message {
                from: sid("b"),
                msg: Message::PreVote { term: Term(3), last_index: LogIndex(0), last_term: Term(0) },
            },
            &mut log,
        )
        .unwrap();
    assert_eq!(fx, vec![Effect::Send { to: sid("b"), msg: Message::PreVoteReply { term: Term(3), granted: true } }]);
    assert_eq!((s.current_term(), s.voted_for()), (Term(3), None));
    // A stale-term pre-vote is refused with the current term.
    let fx = s
        .handle(
            0,
            Input::Message {
                from: sid("c"),
                msg: Message::PreVote { term: Term(2), last_index: LogIndex(9), last_term: Term(2) },
            },
            &mut log,
        )
        .unwrap();
    assert_eq!(fx, vec![Effect::Send { to: sid("c"), msg: Message::PreVoteReply { term: Term(3), granted: false } }]);
    assert_eq!((s.current_term(), s.voted_for()), (Term(3), None));
}

/// The vote is made durable before the granting reply, in the same effect list; a second candidate in
/// that term is refused without a new persist; a higher term resets the vote (persisted first too).
#[test]
fn vote_is_persisted_before_the_granting_reply() {
    let cfg = config("a", &["a", "b", "c"], Bugs::none());
    let mut log = MemLog::new();
    let (mut s, _) = Server::recover(cfg, Term(3), None, LogIndex(0), None, &mut log).unwrap();
    let rv = |t: u64| Message::RequestVote { term: Term(t), last_index: LogIndex(0), last_term: Term(0) };
    let fx = s.handle(0, Input::Message { from: sid("b"), msg: rv(4) }, &mut log).unwrap();
    let persist = fx
        .iter()
        .position(|e| *e == Effect::PersistTermAndVote { term: Term(4), voted_for: Some(sid("b")) })
        .expect("the vote is persisted");
    let reply = fx
        .iter()
        .position(|e| {
            *e == Effect::Send { to: sid("b"), msg: Message::RequestVoteReply { term: Term(4), granted: true } }
        })
        .expect("the vote is granted");
    assert!(persist < reply, "{fx:?}");
    assert!(fx[..persist].iter().all(|e| !matches!(e, Effect::Send { .. })));

    let fx = s.handle(0, Input::Message { from: sid("c"), msg: rv(4) }, &mut log).unwrap();
    assert!(fx.iter().all(|e| !matches!(e, Effect::PersistTermAndVote { .. })));
    assert!(
        fx.contains(&Effect::Send { to: sid("c"), msg: Message::RequestVoteReply { term: Term(4), granted: false } })
    );
    assert_eq!(s.voted_for(), Some(&sid("b")));

    let fx = s.handle(0, Input::Message { from: sid("c"), msg: rv(5) }, &mut log).unwrap();
    let persist =
        fx.iter().position(|e| *e == Effect::PersistTermAndVote { term: Term(5), voted_for: Some(sid("c")) }).unwrap();
    let reply = fx
        .iter()
        .position(|e| matches!(e, Effect::Send { msg: Message::RequestVoteReply { granted: true, .. }, .. }))
        .unwrap();
    assert!(persist < reply);

    // The same discipline over a whole cluster's recorded effects, split vote included.
    let mut c = Cluster::new(&["a", "b", "c", "d"], Bugs::none());
    c.fire("a", Timer::Election);
    c.fire("b", Timer::Election);
    c.run_until(|c| settled(c).is_some());
    assert!(check_vote_discipline(&c) >= 2);
    for (who, (t, v)) in &c.persisted {
        assert_eq!(c.servers[who].current_term(), *t);
        assert_eq!(c.servers[who].voted_for(), v.as_ref());
    }
}

// ---------------------------------------------------------------------------------------------
// Leaders, clients, heartbeats
// ---------------------------------------------------------------------------------------------

/// Commands to a non-leader are redirected to the known leader (or to none before any election).
#[test]
fn client_command_to_a_follower_is_redirected() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    c.command(&sid("b"), 2, 1, put("k", "v"));
    assert_eq!(effects_of(&c, "b").last(), Some(&Effect::Redirect { client: ClientId(2), request: 1, leader: None }));
    let leader = c.elect();
    let follower = c.servers.keys().find(|n| **n != leader).unwrap().clone();
    let before = last_index(&mut c, &follower.0);
    c.command(&follower, 2, 2, put("k", "v"));
    assert_eq!(
        effects_of(&c, &follower.0).last(),
        Some(&Effect::Redirect { client: ClientId(2), request: 2, leader: Some(leader.clone()) })
    );
    assert_eq!(last_index(&mut c, &follower.0), before, "nothing appended on the follower");
    c.deliver_all();
    assert!(replies_to(&c, 2).is_empty());
    // Sent to the leader, the same command is applied.
    c.command(&leader, 2, 3, put("k", "v"));
    c.run_until(|c| !replies_to(c, 2).is_empty());
    assert_eq!(replies_to(&c, 2), vec![(3, KvResult::Ok)]);
}

/// A new leader's first act is a noop entry of its own term after its last entry, sent to every peer;
/// the noop commits with no client reply, and commits the previous term's entries with it.
#[test]
fn leader_appends_a_noop_at_term_start() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    let mark = c.effects.len();
    campaign(&mut c, "a");
    assert_eq!(role(&c, "a"), Role::Leader);
    assert_eq!(bodies(&c, "a").last(), Some(&(LogIndex(1), Term(1), EntryBody::Noop)));
    for peer in ["b", "c"] {
        let appends: Vec<(LogIndex, Vec<raft_core::consensus::server::Entry>)> = c.effects[mark..]
            .iter()
            .filter_map(|(w, e)| match e {
                Effect::Send { to, msg: Message::AppendEntries { prev_index, entries, .. } }
                    if w.0 == "a" && to.0 == peer =>
                {
                    Some((*prev_index, entries.clone()))
                }
                _ => None,
            })
            .collect();
        // Ra: the new leader's tick first (an empty append after its last index), then its noop.
        assert!(appends.len() >= 2, "{appends:?}");
        assert_eq!(appends[0], (LogIndex(0), vec![]));
        let noop = &appends[1].1;
        assert_eq!(noop.len(), 1);
        assert_eq!((noop[0].index, noop[0].term), (LogIndex(1), Term(1)));
        assert_eq!(EntryBody::decode(&noop[0].payload), Some(EntryBody::Noop));
    }
    assert_eq!(commit(&c, "a"), LogIndex(1));
    assert!(c.replies().is_empty());

    // Next term: b takes over with a's entry 2 (term 1) uncommitted; its noop at 3 commits both.
    isolate(&mut c, "c");
    c.command(&sid("a"), 6, 1, put("k", "v"));
    assert!(c.deliver_between("a", "b"));
    isolate(&mut c, "a");
    c.deliver_all();
    heal(&mut c, "c");
    campaign(&mut c, "b");
    assert_eq!(role(&c, "b"), Role::Leader);
    let b = bodies(&c, "b");
    assert_eq!(b.last(), Some(&(LogIndex(3), Term(2), EntryBody::Noop)));
    assert_eq!(commit(&c, "b"), LogIndex(3));
    assert_eq!(replies_to(&c, 6), vec![(1, KvResult::Ok)], "b applied a's entry and answered the client");
}

/// With a leader sending heartbeats, followers never start (pre-)elections however long time runs;
/// without them (leader gone), a follower does within the maximum election timeout.
#[test]
fn heartbeats_keep_followers_from_starting_elections() {
    let mut c = Cluster::new(&["a", "b", "c", "d", "e"], Bugs::none());
    let leader = c.elect();
    c.deliver_all();
    let t = term(&c, &leader.0);
    let mark = c.effects.len();
    let start = c.now;
    let mut heartbeats = 0;
    while c.now < start + 20_000 {
        if let Some((_, Timer::Heartbeat)) = c.fire_next_timer() {
            heartbeats += 1;
        }
        c.deliver_all();
    }
    assert!(heartbeats >= 20_000 / 50 - 1);
    assert_eq!(c.leaders(), vec![leader.clone()]);
    assert!(c.servers.values().all(|s| s.current_term() == t));
    let campaigns = c.effects[mark..]
        .iter()
        .filter(|(_, e)| matches!(e, Effect::Send { msg, .. } if is_pre_vote(msg) || is_request_vote(msg)))
        .count();
    assert_eq!(campaigns, 0);

    // The leader goes silent: some follower pre-votes within the max election timeout.
    isolate(&mut c, &leader.0);
    let mark = c.effects.len();
    let start = c.now;
    while c.now <= start + 300 {
        c.fire_next_timer();
        c.deliver_all();
        if c.effects[mark..].iter().any(|(_, e)| matches!(e, Effect::Send { msg, .. } if is_pre_vote(msg))) {
            break;
        }
    }
    assert!(
        c.effects[mark..]
            .iter()
            .any(|(w, e)| *w != leader && matches!(e, Effect::Send { msg, .. } if is_pre_vote(msg)))
    );
    assert!(c.now <= start + 300);
}

/// A cluster of one elects itself at its first timeout and commits on its own write.
#[test]
fn single_member_cluster_elects_itself_and_commits() {
    let mut c = Cluster::new(&["solo"], Bugs::none());
    c.fire_next_timer();
    assert_eq!(role(&c, "solo"), Role::Leader);
    assert_eq!(term(&c, "solo"), Term(1));
    assert_eq!(c.persisted[&sid("solo")], (Term(1), Some(sid("solo"))));
    assert_eq!(commit(&c, "solo"), LogIndex(1), "the noop");
    c.command(&sid("solo"), 1, 1, put("k", "v"));
    c.command(&sid("solo"), 1, 2, get("k"));
    c.command(
        &sid("solo"),
        1,
        3,
        KvCommand::Cas { key: "k".to_owned(), expected: Some(b"v".to_vec()), new: b"w".to_vec() },
    );
    assert_eq!(
        replies_to(&c, 1),
        vec![
            (1, KvResult::Ok),
            (2, KvResult::Value(Some(b"v".to_vec()))),
            (3, KvResult::Cas { applied: true, previous: Some(b"v".to_vec()) }),
        ]
    );
    assert_eq!(commit(&c, "solo"), LogIndex(4));
    // Without auto-write, commit waits for the write.
    c.auto_write = false;
    c.command(&sid("solo"), 1, 4, get("k"));
    assert_eq!(commit(&c, "solo"), LogIndex(4));
    c.write(&sid("solo"));
    assert_eq!(commit(&c, "solo"), LogIndex(5));
    assert_eq!(replies_to(&c, 1).last(), Some(&(4, KvResult::Value(Some(b"w".to_vec())))));
    // Heartbeats and timers on the single leader change nothing.
    for _ in 0..20 {
        c.fire_next_timer();
    }
    assert_eq!((role(&c, "solo"), term(&c, "solo")), (Role::Leader, Term(1)));
}

// ---------------------------------------------------------------------------------------------
// Randomised safety
// ---------------------------------------------------------------------------------------------

/// Long random schedules (timers fired at random, messages delivered FIFO overall or per link,
/// commands, partitions, partial writes, crash-restarts) over 20 seeds: terms are monotone in every
/// server, at most one leader per term, every applied index holds the same entry everywhere, commits
/// are written on a quorum, votes are durable before granted; after healing, everyone converges.
#[test]
fn random_schedules_keep_raft_safety() {
    let mut total_leaders = 0;
    let mut total_applied = 0;
    for seed in 0..20u64 {
        let n = if seed.is_multiple_of(3) { 5 } else { 3 };
        let members: Vec<&'static str> = NAMES[..n].to_vec();
        let max_ae = [1usize, 2, 64][(seed % 3) as usize];
        let tweak = move |cfg: &mut ConsensusConfig| {
            cfg.max_append_entries = max_ae;
            cfg.rng_seed = cfg.rng_seed.wrapping_mul(6364136223846793005).wrapping_add(seed);
        };
        let mut c = Cluster::new_configured(&members, Bugs::none(), tweak);
        c.auto_write = seed.is_multiple_of(2);
        let cfgs = members
            .iter()
            .map(|m| {
                let mut cfg = config(m, &members, Bugs::none());
                tweak(&mut cfg);
                (*m, cfg)
            })
            .collect();
        let mut chaos = Chaos {
            rng: ChaCha8Rng::seed_from_u64(0xC0FFEE ^ seed),
            members: members.clone(),
            cfgs,
            crashes: seed % 4 != 1,
            partitions: true,
            next_request: 0,
        };
        let mut obs = Observer::new(n);
        for _ in 0..4_000 {
            chaos.step(&mut c);
            obs.observe(&mut c);
        }

        // Liveness: heal, write everything, let timers run; one leader commits everything everywhere.
        c.isolated.clear();
        c.auto_write = true;
        for m in &members {
            c.write(&sid(m));
        }
        let mut steps = 0;
        loop {
            c.deliver_all();
            obs.observe(&mut c);
            if let Some(l) = settled(&c) {
                let li = c.logs[&l].last_index_term().0;
                if c.servers.values().all(|s| s.last_applied() == li) {
                    break;
                }
            }
            steps += 1;
            assert!(steps < 5_000, "seed {seed}: no convergence after healing");
            if c.fire_next_timer().is_none() {
                // Nobody leads and no server has an election timer: every log is empty (Ra's new
                // servers arm none), so the cluster never formed or lost all it wrote. Ra's
                // `start_cluster` would report `cluster_not_formed`; its caller starts it again.
                assert!(c.logs.values().all(|l| l.last_index_term().0 == LogIndex(0)), "seed {seed}: no timer");
                c.input(&sid(members[0]), Input::TriggerElection);
            }
            obs.observe(&mut c);
        }
        let leader = settled(&c).unwrap();
        for m in &members {
            assert_eq!(c.log_entries(m), c.log_entries(&leader.0), "seed {seed}: {m}'s log differs");
            assert_eq!(c.machine(m), c.machine(&leader.0), "seed {seed}: {m}'s machine differs");
        }
        check_vote_discipline(&c);
        total_leaders += obs.leaders.len();
        total_applied += obs.applied.len();
    }
    assert!(total_leaders >= 40, "the schedules exercised elections ({total_leaders} leader terms)");
    assert!(total_applied >= 100, "the schedules exercised replication ({total_applied} applied indexes)");
}
