//! Regression tests from the review of the consensus core (each asserts the correct behaviour and failed
//! before its fix).

mod cluster;

use std::panic::{AssertUnwindSafe, catch_unwind};

use cluster::*;
use raft_core::consensus::RaftLog;
use raft_core::consensus::kv::KvState;
use raft_core::consensus::mem_log::MemLog;
use raft_core::consensus::server::{
    ClientId, Effect, Entry, EntryBody, Input, Message, PeerStatus, Role, Server, ServerId, Timer,
};
use raft_core::storage::snapshot::SnapshotMeta;
use raft_core::{Bugs, LogIndex, Term};

const ABC: [&str; 3] = ["a", "b", "c"];

fn server(name: &str, term: Term, log: &mut MemLog) -> Server {
    server_with(name, term, Bugs::none(), log)
}

fn server_with(name: &str, term: Term, bugs: Bugs, log: &mut MemLog) -> Server {
    Server::recover(config(name, &ABC, bugs), term, None, LogIndex(0), None, log).unwrap().0
}

/// The cluster change that removes `c` from {a, b, c}, appended at `index` in term 1.
fn removal_of_c(index: u64) -> Entry {
    use raft_core::consensus::server::Membership;
    let without_c = [(sid("a"), Membership::Voter), (sid("b"), Membership::Voter)].into_iter().collect();
    Entry { index: LogIndex(index), term: Term(1), payload: EntryBody::ClusterChange { cluster: without_c }.encode() }
}

fn msg(s: &mut Server, log: &mut MemLog, from: &str, m: Message) -> Vec<Effect> {
    s.handle(0, Input::Message { from: sid(from), msg: m }, log).unwrap()
}

fn cmd_entry(index: u64, term: u64, key: &str, value: &str) -> Entry {
    Entry {
        index: LogIndex(index),
        term: Term(term),
        payload: EntryBody::Command { client: ClientId(9), request: index, command: put(key, value) }.encode(),
    }
}

fn noop_entry(index: u64, term: u64) -> Entry {
    Entry { index: LogIndex(index), term: Term(term), payload: EntryBody::Noop.encode() }
}

fn ae(term: u64, prev: u64, prev_term: u64, entries: Vec<Entry>, commit: u64) -> Message {
    Message::AppendEntries {
        term: Term(term),
        prev_index: LogIndex(prev),
        prev_term: Term(prev_term),
        entries,
        commit: LogIndex(commit),
    }
}

fn meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta {
        index: LogIndex(index),
        term: Term(term),
        machine_version: 1,
        cluster: ABC.iter().map(|s| s.to_string()).collect(),
    }
}

fn sends_pre_vote(fx: &[Effect]) -> bool {
    fx.iter().any(|e| matches!(e, Effect::Send { msg: Message::PreVote { .. }, .. }))
}

// ---------------------------------------------------------------------------------------------
// R1: `receiving_snapshot` is never cleared unless the install completes
// ---------------------------------------------------------------------------------------------

#[test]
fn r1_follower_that_saw_a_snapshot_message_campaigns_again_after_the_transfer_died() {
    let mut log = MemLog::new();
    let mut s = server("c", Term(1), &mut log);
    // Leader a's sender delivers its first message (live phase), then fails (ack lost / a crashes).
    msg(&mut s, &mut log, "a", Message::InstallSnapshotLive { term: Term(2), meta: meta(20, 2), entries: vec![] });
    // A new leader b (term 3) replicates to c normally...
    msg(&mut s, &mut log, "b", ae(3, 0, 0, vec![noop_entry(1, 3)], 1));
    log.write_all();
    assert_eq!(s.current_term(), Term(3));
    // ...then b goes away too. c's election timer fires over and over (Ra: receive_snapshot_timeout
    // after 30 s and a higher-term AER both abort the receive).
    let mut campaigned = false;
    for _ in 0..100 {
        let fx = s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
        campaigned |= sends_pre_vote(&fx);
    }
    assert!(campaigned, "c never starts a pre-vote again: receiving_snapshot stays set forever");
}

/// The same in a cluster: the stuck follower ends up holding the most up-to-date log, so no one else
/// can win and it never campaigns: no leader, forever.
#[test]
fn r1_cluster_has_no_leader_forever_after_a_failed_transfer() {
    assert!(r1_scenario(false).is_none(), "control: without the snapshot message a leader is found");
    if let Some(e) = r1_scenario(true) {
        panic!("{e}");
    }
}

fn r1_scenario(deliver_live: bool) -> Option<String> {
    let mut c = Cluster::new_configured(&ABC, Bugs::none(), |cfg| cfg.snapshot_interval = 5);
    let leader = c.elect();
    let mut followers = c.servers.keys().filter(|s| **s != leader).cloned();
    let (lag, other) = (followers.next().unwrap(), followers.next().unwrap());
    c.isolated.insert(lag.clone());
    for i in 0..12u64 {
        c.command(&leader, 1, i, put(&format!("k{}", i % 3), "v"));
        c.deliver_all();
        // Only the leader compacts (other keeps its whole log).
        let taken: Vec<(SnapshotMeta, Vec<LogIndex>)> = c
            .effects
            .iter()
            .filter_map(|(n, e)| match e {
                Effect::TakeSnapshot { meta, live_indexes, .. } if *n == leader => {
                    Some((meta.clone(), live_indexes.iter().collect()))
                }
                _ => None,
            })
            .collect();
        if let Some((m, keep)) = taken.last() {
            let cur = c.logs[&leader].snapshot_index_term().map_or(0, |s| s.0.0);
            if m.index.0 > cur {
                c.logs.get_mut(&leader).unwrap().install_snapshot(m.index, m.term, keep);
                c.input(&leader, Input::SnapshotWritten { index: m.index });
            }
        }
    }
    let snap = c.logs[&leader].snapshot_index_term().unwrap();
    c.isolated.remove(&lag);
    c.fire(&leader.0, Timer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.server(&leader.0).peers()[&lag].status, PeerStatus::SendingSnapshot);
    // The sender's first message reaches lag; then the sender fails and the leader is gone for good.
    let term = c.server(&leader.0).current_term();
    if deliver_live {
        c.input(
            &lag,
            Input::Message {
                from: leader.clone(),
                msg: Message::InstallSnapshotLive { term, meta: meta(snap.0.0, snap.1.0), entries: vec![] },
            },
        );
    }
    c.input(&leader, Input::SnapshotSenderFailed { peer: lag.clone() });
    c.isolated.insert(leader.clone());
    // other wins (lag grants) and replicates its whole log to lag with append-entries.
    let new = c.elect();
    assert_eq!(new, other);
    c.command(&other, 2, 1, put("after", "x"));
    c.run_until(|c| c.log_entries(&lag.0) == c.log_entries(&other.0));
    // other goes away, the old leader comes back: its log is behind lag's.
    c.isolated.insert(other.clone());
    c.isolated.remove(&leader);
    let start = c.now;
    while c.now < start + 120_000 {
        c.deliver_all();
        if c.leaders()
            .iter()
            .any(|l| !c.isolated.contains(l) && c.server(&l.0).current_term() >= c.server(&lag.0).current_term())
        {
            return None;
        }
        c.fire_next_timer();
    }
    Some(format!(
        "no leader among {leader} and {lag} for 120 s: {lag} never campaigns (role {:?}), {leader} is refused",
        c.server(&lag.0).role()
    ))
}

// ---------------------------------------------------------------------------------------------
// R2: a granted pre-vote reply from an earlier round is counted
// ---------------------------------------------------------------------------------------------

#[test]
fn r2_stale_pre_vote_grant_from_an_earlier_round_is_not_counted() {
    let mut log = MemLog::new();
    let mut s = server("b", Term(1), &mut log);
    // Round 1 in term 1: c grants, its reply is delayed.
    s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
    // b learns of leader a in term 2 and follows it; later a is silent and round 2 starts.
    msg(&mut s, &mut log, "a", ae(2, 0, 0, vec![], 0));
    assert_eq!((s.role(), s.current_term()), (&Role::Follower, Term(2)));
    s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
    assert_eq!(s.role(), &Role::PreVoteCandidate);
    // The delayed round-1 grant (term 1) arrives. Ra: pre_vote_result needs term == current term and the
    // round's token.
    let fx = msg(&mut s, &mut log, "c", Message::PreVoteReply { term: Term(1), granted: true });
    assert_eq!(
        s.role(),
        &Role::PreVoteCandidate,
        "a stale round-1 grant started a real election (term {:?}): {fx:?}",
        s.current_term()
    );
}

// ---------------------------------------------------------------------------------------------
// R3: match index taken from the sender's acks; next index clamped at match + 1
// ---------------------------------------------------------------------------------------------

#[test]
fn r3_follower_that_lost_an_acked_snapshot_is_repaired() {
    let mut c = Cluster::new_configured(&ABC, Bugs::none(), |cfg| cfg.snapshot_interval = 5);
    let leader = c.elect();
    let mut followers = c.servers.keys().filter(|s| **s != leader).cloned();
    let (lag, other) = (followers.next().unwrap(), followers.next().unwrap());
    c.isolated.insert(lag.clone());
    for i in 0..12u64 {
        c.command(&leader, 1, i, put(&format!("k{}", i % 3), "v"));
        c.deliver_all();
        for n in [leader.clone(), other.clone()] {
            let taken: Vec<(SnapshotMeta, Vec<LogIndex>)> = c
                .effects
                .iter()
                .filter_map(|(who, e)| match e {
                    Effect::TakeSnapshot { meta, live_indexes, .. } if *who == n => {
                        Some((meta.clone(), live_indexes.iter().collect()))
                    }
                    _ => None,
                })
                .collect();
            if let Some((m, keep)) = taken.last() {
                let cur = c.logs[&n].snapshot_index_term().map_or(0, |s| s.0.0);
                if m.index.0 > cur {
                    c.logs.get_mut(&n).unwrap().install_snapshot(m.index, m.term, keep);
                    c.input(&n, Input::SnapshotWritten { index: m.index });
                }
            }
        }
    }
    let (snap, _) = c.logs[&leader].snapshot_index_term().unwrap();
    c.isolated.remove(&lag);
    c.fire(&leader.0, Timer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.server(&leader.0).peers()[&lag].status, PeerStatus::SendingSnapshot);
    // The follower acknowledged every chunk (server.rs acks in the same effect list as
    // AcceptSnapshotChunk, before storage did anything) and the sender reported success; then the
    // follower crashed before its install became durable and restarted with its old log.
    c.input(&leader, Input::SnapshotSenderFinished { peer: lag.clone(), index: snap });
    let mut cfg = config(&lag.0, &ABC, Bugs::none());
    cfg.snapshot_interval = 5;
    c.crash_restart(&lag.0, cfg);
    c.network.retain(|(f, t, _)| *f != lag && *t != lag);
    let target = c.logs[&leader].last_index_term().0;
    c.fire(&leader.0, Timer::Heartbeat);
    let mut n = 0;
    while n < 10_000 && c.deliver_one() {
        n += 1;
    }
    let tail: Vec<String> = c.network.iter().take(4).map(|(f, t, m)| format!("{f}->{t}: {m:?}")).collect();
    assert!(n < 10_000, "livelock: 10000 messages delivered without any timer firing, in flight now: {tail:#?}");
    // The leader learned that the follower lost the install: match index reset, and since what the
    // follower needs is below the leader's first index, a new snapshot sender is started.
    let p = &c.server(&leader.0).peers()[&lag];
    assert!(p.match_index < snap, "match index {:?} still claims the lost snapshot {snap:?}", p.match_index);
    assert_eq!(p.status, PeerStatus::SendingSnapshot, "no new transfer for the follower that lost its snapshot");
    let restarted = c
        .effects
        .iter()
        .rev()
        .any(|(who, e)| *who == leader && matches!(e, Effect::StartSnapshotSender { peer, .. } if *peer == lag));
    assert!(restarted);
    let _ = target;
}

// ---------------------------------------------------------------------------------------------
// R4: PersistLastApplied is not capped at last written (Ra's persist_last_applied caps it)
// ---------------------------------------------------------------------------------------------

#[test]
fn r4_persisted_last_applied_never_exceeds_last_written() {
    // c holds a durable, uncommitted entry 2 (term 1: x = old).
    let mut log = MemLog::new();
    log.append(LogIndex(1), Term(1), EntryBody::Noop.encode()).unwrap();
    let stale = cmd_entry(2, 1, "x", "old");
    log.append(stale.index, stale.term, stale.payload.clone()).unwrap();
    log.write_all();
    let (mut s, _) =
        Server::recover(config("c", &ABC, Bugs::none()), Term(1), None, LogIndex(1), None, &mut log).unwrap();
    // Leader b (term 2) overwrites 2 with its noop and commits 3; c applies before its WAL wrote them.
    let fx = msg(&mut s, &mut log, "b", ae(2, 1, 1, vec![noop_entry(2, 2), cmd_entry(3, 2, "y", "new")], 3));
    let persisted = fx
        .iter()
        .filter_map(|e| match e {
            Effect::PersistLastApplied(i) => Some(*i),
            _ => None,
        })
        .max()
        .unwrap();
    let written = log.last_written().0;
    // Crash now. What the WAL gives back is entries 1 and the *stale* 2 (term 1); the overwrite was
    // not durable. Recover with the persisted last applied.
    let mut durable = MemLog::new();
    durable.append(LogIndex(1), Term(1), EntryBody::Noop.encode()).unwrap();
    durable.append(stale.index, stale.term, stale.payload.clone()).unwrap();
    durable.write_all();
    let (r, _) =
        Server::recover(config("c", &ABC, Bugs::none()), Term(2), None, persisted, None, &mut durable).unwrap();
    let applied_stale = r.machine().index_of("x").is_some();
    assert!(
        persisted <= written && !applied_stale,
        "persisted last applied {persisted} > last written {written}; after a crash recovery replays the \
         never-committed entry 2 (term 1): x present = {applied_stale}, last applied {}",
        r.last_applied()
    );
}

// ---------------------------------------------------------------------------------------------
// R5: a snapshot at or below last applied is installed (Ra: SnapIdx > LastApplied guard)
// ---------------------------------------------------------------------------------------------

/// c applied 1..=10 from leader a (term 2); an older snapshot (index 5) of the same leader arrives.
fn c_with_ten_applied() -> (Server, MemLog, Vec<u8>) {
    let mut log = MemLog::new();
    let mut s = server("c", Term(1), &mut log);
    let mut entries = vec![noop_entry(1, 2)];
    entries.extend((2..=10).map(|i| cmd_entry(i, 2, &format!("k{i}"), "v")));
    msg(&mut s, &mut log, "a", ae(2, 0, 0, entries, 10));
    log.write_all();
    assert_eq!(s.last_applied(), LogIndex(10));
    let mut at5 = KvState::new();
    struct No;
    impl raft_core::consensus::kv::ValueSource for No {
        fn command_at(&mut self, _: LogIndex) -> Option<raft_core::consensus::kv::KvCommand> {
            None
        }
    }
    for i in 2..=5 {
        at5.apply(LogIndex(i), &put(&format!("k{i}"), "v"), &mut No);
    }
    (s, log, at5.encode())
}

fn install_old_snapshot(s: &mut Server, log: &mut MemLog, state: &[u8]) -> Vec<Effect> {
    let m = meta(5, 2);
    let fx = msg(
        s,
        log,
        "a",
        Message::InstallSnapshot { term: Term(2), meta: m.clone(), chunk: 0, last: true, data: state.to_vec() },
    );
    // Ra: a snapshot not above last applied is declined with a mismatch reply (which the sender forwards to
    // the leader), never accepted.
    assert!(!fx.iter().any(|e| matches!(e, Effect::AcceptSnapshotChunk { .. })), "accepted: {fx:?}");
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Send { msg: Message::InstallSnapshotDeclined { next_index, .. }, .. } if *next_index > m.index)),
        "no decline pointing past the snapshot: {fx:?}"
    );
    // A late `SnapshotInstalled` for it (storage finished something we refused) changes nothing.
    s.handle(0, Input::SnapshotInstalled { meta: m, state: state.to_vec(), leader: sid("a") }, log).unwrap()
}

#[test]
fn r5_snapshot_below_last_applied_does_not_roll_the_follower_back() {
    let (mut s, mut log, state) = c_with_ten_applied();
    install_old_snapshot(&mut s, &mut log, &state);
    assert_eq!(s.last_applied(), LogIndex(10), "last applied went back to the old snapshot's index");
}

#[test]
fn r5_valid_leader_message_after_an_old_snapshot_does_not_panic() {
    let (mut s, mut log, state) = c_with_ten_applied();
    install_old_snapshot(&mut s, &mut log, &state);
    // The same leader's next append-entries resends 6..=10 after the snapshot.
    let entries: Vec<Entry> = (6..=10).map(|i| cmd_entry(i, 2, &format!("k{i}"), "v")).collect();
    let r = catch_unwind(AssertUnwindSafe(|| {
        s.handle(0, Input::Message { from: sid("a"), msg: ae(2, 5, 2, entries, 10) }, &mut log)
    }));
    match r {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("handle failed: {e:?}"),
        Err(_) => panic!("handle panicked on a valid current-term append-entries"),
    }
}

// ---------------------------------------------------------------------------------------------
// R6: forged/malformed network input
// ---------------------------------------------------------------------------------------------

#[test]
fn r6_forged_append_entries_does_not_panic() {
    let (mut s, mut log, _) = c_with_ten_applied();
    // Same term, same leader id, a different entry at committed index 3.
    let r = catch_unwind(AssertUnwindSafe(|| {
        s.handle(0, Input::Message { from: sid("a"), msg: ae(2, 2, 2, vec![noop_entry(3, 3)], 10) }, &mut log)
    }));
    assert!(r.is_ok(), "panicked");
}

#[test]
fn r6_huge_term_does_not_overflow() {
    let mut log = MemLog::new();
    let mut s = server("c", Term(1), &mut log);
    msg(
        &mut s,
        &mut log,
        "x",
        Message::RequestVote { term: Term(u64::MAX), last_index: LogIndex(0), last_term: Term(0) },
    );
    let r = catch_unwind(AssertUnwindSafe(|| {
        s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
        // Everyone grants the pre-vote: the election bumps the term.
        for p in ["a", "b"] {
            s.handle(
                0,
                Input::Message { from: sid(p), msg: Message::PreVoteReply { term: Term(u64::MAX), granted: true } },
                &mut log,
            )
            .unwrap();
        }
    }));
    assert!(r.is_ok(), "term overflow panicked");
}

#[test]
fn r6_votes_from_non_members_do_not_elect() {
    let mut log = MemLog::new();
    let mut s = server("c", Term(1), &mut log);
    s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
    msg(&mut s, &mut log, "zz", Message::PreVoteReply { term: Term(1), granted: true });
    msg(&mut s, &mut log, "zz", Message::RequestVoteReply { term: Term(2), granted: true });
    assert_ne!(s.role(), &Role::Leader, "a non-member's votes made c leader of a 3-member cluster");
}

#[allow(dead_code)]
fn _unused(_: ServerId) {}

/// R5 from honest nodes: per-link reordering makes a follower's stale "fail, next = 2" reply reach the
/// leader after the follower applied past the leader's snapshot; its disk is slow, so its match index
/// is still 1 and nothing clamps next index above the snapshot: the leader sends an *older* snapshot,
/// the follower installs it, and the leader's very next append-entries panics it.
#[test]
fn r5_reordered_fail_reply_leads_to_an_old_snapshot_and_a_panic() {
    let mut c = Cluster::new_configured(&ABC, Bugs::none(), |cfg| {
        cfg.snapshot_interval = 5;
        cfg.max_append_entries = 2;
    });
    let l = c.elect();
    c.deliver_all();
    let mut others = c.servers.keys().filter(|s| **s != l).cloned();
    let (f, g) = (others.next().unwrap(), others.next().unwrap());
    c.auto_write = false;
    let mut held = Vec::new();
    let mut snapshot = None;
    for batch in 0..2u64 {
        for i in 0..4u64 {
            c.command(&l, 1, batch * 4 + i, put(&format!("k{i}"), "v"));
        }
        // Everything flows except messages to f, which are held (f's disk and link are slow).
        loop {
            let mut progressed = false;
            while let Some((from, to, m)) = c.network.pop_front() {
                if to == f {
                    held.push((from, m));
                } else {
                    c.input(&to, Input::Message { from, msg: m });
                }
                progressed = true;
            }
            c.write(&l);
            c.write(&g);
            if !progressed && c.network.is_empty() {
                break;
            }
        }
        if snapshot.is_none() {
            // l's first snapshot completes.
            let (m, keep) = c
                .effects
                .iter()
                .find_map(|(n, e)| match e {
                    Effect::TakeSnapshot { meta, live_indexes, .. } if *n == l => {
                        Some((meta.clone(), live_indexes.iter().collect::<Vec<_>>()))
                    }
                    _ => None,
                })
                .unwrap();
            c.logs.get_mut(&l).unwrap().install_snapshot(m.index, m.term, &keep);
            c.input(&l, Input::SnapshotWritten { index: m.index });
            snapshot = Some(m);
        }
    }
    assert_eq!(c.server(&l.0).commit_index(), LogIndex(9));
    let m = snapshot.unwrap();
    let snap = m.index;
    assert!(snap < LogIndex(9), "snapshot at {snap}");
    // f gets the held append-entries, the *last* one first: it fails (prev beyond its log).
    let last = held.pop().unwrap();
    c.input(&f, Input::Message { from: last.0.clone(), msg: last.1 });
    let (_, _, fail) = c.network.pop_back().unwrap();
    assert!(matches!(fail, Message::AppendEntriesReply { success: false, .. }), "{fail:?}");
    for (from, m) in held {
        c.input(&f, Input::Message { from, msg: m });
    }
    // Normal traffic resumes (f's disk still has not written anything): l repairs f from its log.
    c.fire(&l.0, Timer::Heartbeat);
    while let Some((from, to, m)) = c.network.pop_front() {
        c.input(&to, Input::Message { from, msg: m });
        c.write(&l);
        c.write(&g);
    }
    assert_eq!(c.server(&f.0).last_applied(), LogIndex(9));
    // The stale fail reply arrives.
    let mark = c.effects.len();
    c.input(&l, Input::Message { from: f.clone(), msg: fail });
    let started = c.effects[mark..].iter().any(|(_, e)| matches!(e, Effect::StartSnapshotSender { .. }));
    if !started {
        return;
    }
    // Play the sender: f receives snapshot `snap` — and refuses it, having applied beyond it.
    let state = c
        .effects
        .iter()
        .find_map(|(n, e)| match e {
            Effect::TakeSnapshot { meta, state, .. } if *n == l && meta.index == snap => Some(state.clone()),
            _ => None,
        })
        .unwrap();
    let term = c.server(&l.0).current_term();
    let mark = c.effects.len();
    c.input(
        &f,
        Input::Message {
            from: l.clone(),
            msg: Message::InstallSnapshot { term, meta: m.clone(), chunk: 0, last: true, data: state.clone() },
        },
    );
    assert!(!c.effects[mark..].iter().any(|(n, e)| *n == f && matches!(e, Effect::AcceptSnapshotChunk { .. })));
    c.input(&f, Input::SnapshotInstalled { meta: m.clone(), state, leader: l.clone() });
    assert_eq!(c.server(&f.0).last_applied(), LogIndex(9), "f's machine did not go back");
    c.input(&l, Input::SnapshotSenderFinished { peer: f.clone(), index: snap });
    let r = catch_unwind(AssertUnwindSafe(|| c.deliver_all()));
    assert!(r.is_ok(), "delivering l's next append-entries panicked or never went quiet");
    assert_eq!(c.server(&f.0).last_applied(), LogIndex(9));
}

// ---------------------------------------------------------------------------------------------
// Rules the first test suites did not pin
// ---------------------------------------------------------------------------------------------

/// A follower's commit index is limited by the last entry *this* message vouched for, never by a stale
/// tail of its own log (Raft Figure 2: `min(leaderCommit, index of last new entry)`).
#[test]
fn follower_commit_never_covers_a_stale_tail() {
    let mut log = MemLog::new();
    for i in 1..=5 {
        log.append(LogIndex(i), Term(1), cmd_entry(i, 1, "k", "stale").payload).unwrap();
    }
    log.write_all();
    let mut s = server("c", Term(1), &mut log);
    // A term-2 leader whose log agrees up to 2 only; its commit index is 5 (its own entries 3..5 differ).
    msg(&mut s, &mut log, "a", ae(2, 2, 1, vec![], 5));
    assert_eq!(s.commit_index(), LogIndex(2), "committed the stale tail 3..5");
    assert_eq!(s.last_applied(), LogIndex(2));
}

/// Vote replies from an earlier term do not count towards an election in the current one.
#[test]
fn stale_vote_replies_do_not_count() {
    let mut log = MemLog::new();
    let mut s = server("a", Term(4), &mut log);
    s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
    assert_eq!(*s.role(), Role::PreVoteCandidate);
    msg(&mut s, &mut log, "b", Message::PreVoteReply { term: Term(4), granted: true });
    assert_eq!((s.role().clone(), s.current_term()), (Role::Candidate, Term(5)));
    msg(&mut s, &mut log, "b", Message::RequestVoteReply { term: Term(4), granted: true });
    assert_eq!(*s.role(), Role::Candidate, "a vote from term 4 elected a leader in term 5");
    msg(&mut s, &mut log, "b", Message::RequestVoteReply { term: Term(5), granted: true });
    assert_eq!(*s.role(), Role::Leader);
}

/// `PersistLastApplied` never exceeds what the log has written.
#[test]
fn persisted_last_applied_is_capped_at_last_written() {
    let mut log = MemLog::new();
    let mut s = server("c", Term(1), &mut log);
    let fx = msg(&mut s, &mut log, "a", ae(1, 0, 0, vec![noop_entry(1, 1), noop_entry(2, 1)], 2));
    assert_eq!(s.last_applied(), LogIndex(2));
    let persisted: Vec<LogIndex> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::PersistLastApplied(i) => Some(*i),
            _ => None,
        })
        .collect();
    assert_eq!(persisted, vec![LogIndex(0)], "entries 1..2 are applied but not written");
}

/// Ra's `receive_snapshot_timeout`: a receive that stalls is abandoned (storage told to abort) and the
/// follower may campaign again.
#[test]
fn a_stalled_snapshot_receive_is_abandoned() {
    let mut log = MemLog::new();
    let mut s = server("c", Term(1), &mut log);
    let fx =
        msg(&mut s, &mut log, "a", Message::InstallSnapshotLive { term: Term(2), meta: meta(20, 2), entries: vec![] });
    assert!(fx.iter().any(|e| matches!(e, Effect::SetTimer { timer: Timer::ReceiveSnapshot, .. })));
    // While receiving, the election timer only re-arms itself.
    assert!(!sends_pre_vote(&s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap()));
    let fx = s.handle(0, Input::Timer(Timer::ReceiveSnapshot), &mut log).unwrap();
    assert!(fx.contains(&Effect::AbortSnapshotAccept), "{fx:?}");
    assert!(sends_pre_vote(&s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap()));
    // A late `SnapshotInstalled` for the abandoned receive changes nothing.
    let state = KvState::new().encode();
    s.handle(0, Input::SnapshotInstalled { meta: meta(20, 2), state, leader: sid("a") }, &mut log).unwrap();
    assert_eq!(s.last_applied(), LogIndex(0));
}

// ---------------------------------------------------------------------------------------------
// R7: live entries a snapshot's pre-phase wrote above the log are not a log (port defects found by
// the sim's `no-log-gap` checker: Ra resets the log on abort and at recovery; raft-core did neither)
// ---------------------------------------------------------------------------------------------

/// Follower `c` with `1..=last` written (term 1) and 3 committed and applied.
fn c_written_through(last: u64) -> (Server, MemLog) {
    let mut log = MemLog::new();
    let mut s = server("c", Term(1), &mut log);
    let entries = (1..=last).map(|i| noop_entry(i, 1)).collect();
    msg(&mut s, &mut log, "a", ae(1, 0, 0, entries, 3));
    log.write_all();
    s.handle(0, Input::Written, &mut log).unwrap();
    assert_eq!((s.last_applied(), log.last_written().0), (LogIndex(3), LogIndex(last)));
    (s, log)
}

/// Follower `c` holds 1..=3 (term 1, applied) and receives the pre-phase of snapshot 9 whose live entry
/// 7 lies above its log.
fn c_receiving_live_entry_7() -> (Server, MemLog) {
    let (mut s, mut log) = c_written_through(3);
    let live = vec![cmd_entry(7, 1, "k", "v")];
    msg(&mut s, &mut log, "a", Message::InstallSnapshotLive { term: Term(1), meta: meta(9, 1), entries: live });
    assert_eq!(log.last_index_term(), (LogIndex(7), Term(1)), "the sparse write extends the log");
    (s, log)
}

#[test]
fn r7_an_aborted_receive_resets_the_log_to_the_last_applied_index() {
    let (mut s, mut log) = c_receiving_live_entry_7();
    s.handle(0, Input::Timer(Timer::ReceiveSnapshot), &mut log).unwrap();
    assert_eq!(log.last_index_term(), (LogIndex(3), Term(1)), "Ra's abort_receive: set_last_index(last applied)");
    // The leader's next append follows index 3 and is accepted: answered once the WAL wrote it (Ra
    // replies from the `written` event).
    let fx = msg(&mut s, &mut log, "a", ae(1, 3, 1, vec![noop_entry(4, 1)], 3));
    assert!(fx.iter().all(|e| !matches!(e, Effect::Send { .. })), "no reply before the write: {fx:?}");
    log.write_all();
    let fx = s.handle(0, Input::Written, &mut log).unwrap();
    let ok =
        fx.iter().any(|e| matches!(e, Effect::Send { msg: Message::AppendEntriesReply { success: true, .. }, .. }));
    assert!(ok, "{fx:?}");
}

#[test]
fn a_receive_with_live_entries_first_ends_the_log_at_the_last_applied_index() {
    // Ra 3.1.10 `handle_follower(#install_snapshot_rpc{chunk_state = {0, init}})`: `set_last_index(LastApplied)`
    // before the pre-phase, written entries above it included; a snapshot without live entries gets no
    // `init` (3.1.9+) and cuts nothing. (Follower `c` has written 1..=5 and applied 3; snapshot 9's live
    // entry 7 lies above its log.)
    for (live, last_after) in [(vec![cmd_entry(7, 1, "k", "v")], LogIndex(7)), (vec![], LogIndex(5))] {
        let (mut s, mut log) = c_written_through(5);
        let cut = !live.is_empty();
        msg(&mut s, &mut log, "a", Message::InstallSnapshotLive { term: Term(1), meta: meta(9, 1), entries: live });
        assert_eq!(log.last_index_term().0, last_after);
        let expected: Vec<Option<Term>> = (4..=5).map(|_| if cut { None } else { Some(Term(1)) }).collect();
        let held: Vec<Option<Term>> = (4..=5).map(|i| log.term_at(LogIndex(i)).unwrap()).collect();
        assert_eq!(held, expected, "entries 4 and 5 leave the log only with live entries to write");
        if cut {
            assert_eq!(log.last_written().0, LogIndex(3), "the written index goes down with the cut");
        }
    }
}

#[test]
fn a_repeated_live_entries_message_writes_a_pending_entry_again_only_after_a_wal_restart() {
    // Found by `sim hunt` (seed 12, run 7998): a second copy of a live entry still pending is staged
    // apart from the first, whose `Written` then stands for both (pending is by index); a log tier
    // restart that loses part of the second copy and flushes the rest cuts the older segments off.
    // Hunt seed 7's run 9170 is why a pending one goes again after a WAL restart: it may be lost.
    // (written before the repeat, WAL restarted since the first write, sparse writes after the repeat)
    for (written, wal_restarted, writes) in [(false, false, 1), (false, true, 2), (true, true, 1), (true, false, 1)] {
        let (mut s, mut log) = c_receiving_live_entry_7();
        assert_eq!(log.sparse_writes, 1);
        if written {
            log.write_all();
            s.handle(0, Input::Written, &mut log).unwrap();
        }
        log.wal_restarted = wal_restarted;
        let live = vec![cmd_entry(7, 1, "k", "v")];
        msg(&mut s, &mut log, "a", Message::InstallSnapshotLive { term: Term(1), meta: meta(9, 1), entries: live });
        assert_eq!(log.sparse_writes, writes, "written {written}, WAL restarted {wal_restarted}");
        assert_eq!(log.last_index_term(), (LogIndex(7), Term(1)));
    }
}

#[test]
fn r7_recovery_ends_the_log_before_a_hole_the_pre_phase_left() {
    let (_, mut log) = c_receiving_live_entry_7();
    log.write_all();
    // The node crashes mid-receive; the disk keeps 1..=3 and the sparse 7. Ra's recovery scan from the
    // applied index stops at the hole and resets the log there.
    Server::recover(config("c", &ABC, Bugs::none()), Term(1), None, LogIndex(3), None, &mut log).unwrap();
    assert_eq!(log.last_index_term(), (LogIndex(3), Term(1)), "the log must not claim 4..=6, which it lacks");
}

// ---------------------------------------------------------------------------------------------
// R8: a stale snapshot must not truncate written entries the leader may have counted (found by the
// sim's `leader-completeness` checker with message loss, swarm seed 317)
// ---------------------------------------------------------------------------------------------

/// Follower `c` has written 1..=5 (term 1) and applied 3; the leader, which fell back to a snapshot
/// after an earlier rejected append, now sends snapshot 4 (term 1).
fn stale_snapshot_to_c(bugs: Bugs) -> (MemLog, Vec<Effect>) {
    let mut log = MemLog::new();
    let mut s = Server::recover(config("c", &ABC, bugs), Term(1), None, LogIndex(0), None, &mut log).unwrap().0;
    let entries = (1..=5).map(|i| noop_entry(i, 1)).collect();
    msg(&mut s, &mut log, "a", ae(1, 0, 0, entries, 3));
    log.write_all();
    s.handle(0, Input::Written, &mut log).unwrap();
    assert_eq!(s.last_applied(), LogIndex(3));
    let install = Message::InstallSnapshot { term: Term(1), meta: meta(4, 1), chunk: 0, last: true, data: vec![] };
    let fx = msg(&mut s, &mut log, "a", install);
    (log, fx)
}

#[test]
fn r8_a_snapshot_whose_last_entry_the_written_log_holds_is_not_installed() {
    let (log, fx) = stale_snapshot_to_c(Bugs::none());
    assert!(!fx.iter().any(|e| matches!(e, Effect::AcceptSnapshotChunk { .. })), "{fx:?}");
    let told = fx.iter().any(|e| {
        matches!(e, Effect::Send { msg: Message::InstallSnapshotDeclined { last_index: LogIndex(5), .. }, .. })
    });
    assert!(told, "the sender (and through it the leader) hears that c holds 5: {fx:?}");
    assert_eq!(log.last_written(), (LogIndex(5), Term(1)), "written entries kept");
}

#[test]
fn r8_snapshot_over_written_log_restores_ras_install() {
    let (_, fx) = stale_snapshot_to_c(Bugs::of(&[raft_core::Bug::SnapshotOverWrittenLog]));
    assert!(fx.iter().any(|e| matches!(e, Effect::AcceptSnapshotChunk { .. })), "Ra installs it: {fx:?}");
}

// ---------------------------------------------------------------------------------------------
// R9: a stale suffix an installed snapshot made obsolete does not come back at recovery (found by the
// sim's `written-survives` checker, swarm seed 108)
// ---------------------------------------------------------------------------------------------

/// `c` wrote 1..=37 in term 1 (it led term 1 alone), then installed snapshot 30 of term 2; its disk
/// still holds 31..=37 of term 1.
fn c_after_a_snapshot_over_a_stale_suffix() -> MemLog {
    let mut log = MemLog::new();
    for i in 1..=37 {
        log.append(LogIndex(i), Term(1), EntryBody::Noop.encode()).unwrap();
    }
    log.write_all();
    log.install_snapshot(LogIndex(30), Term(2), &[]);
    log
}

#[test]
fn r9_recovery_drops_a_suffix_older_than_the_snapshot() {
    let mut log = c_after_a_snapshot_over_a_stale_suffix();
    Server::recover(config("c", &ABC, Bugs::none()), Term(2), None, LogIndex(30), None, &mut log).unwrap();
    assert_eq!(log.last_index_term(), (LogIndex(30), Term(2)), "31..=37 of term 1 cannot follow 30 of term 2");
}

#[test]
fn r9_stale_tail_resurrected_restores_ras_recovery() {
    let mut log = c_after_a_snapshot_over_a_stale_suffix();
    let bugs = Bugs::of(&[raft_core::Bug::StaleTailResurrected]);
    Server::recover(config("c", &ABC, bugs), Term(2), None, LogIndex(30), None, &mut log).unwrap();
    assert_eq!(log.last_index_term(), (LogIndex(37), Term(1)), "the log ends in the older term again");
}

// ---------------------------------------------------------------------------------------------
// R10: while receiving a snapshot, appends of the same term are ignored (Ra's `receive_snapshot`
// state); found by the sim, swarm seed 3176: the snapshot's chunk was lost, the leader later appended
// after the sparse live entry, and the follower applied into the hole (`missing_key`)
// ---------------------------------------------------------------------------------------------

#[test]
fn r10_an_append_chained_to_a_pre_phase_entry_is_ignored_while_receiving() {
    let (mut s, mut log) = c_receiving_live_entry_7();
    log.write_all();
    s.handle(0, Input::Written, &mut log).unwrap();
    let fx = s.handle(0, Input::Message { from: sid("a"), msg: ae(1, 7, 1, vec![noop_entry(8, 1)], 8) }, &mut log);
    let fx = fx.expect("no storage error: nothing is applied from the hole");
    assert!(!fx.iter().any(|e| matches!(e, Effect::Send { msg: Message::AppendEntriesReply { .. }, .. })), "{fx:?}");
    assert_eq!(s.last_applied(), LogIndex(3));
    assert_eq!(log.last_index_term(), (LogIndex(7), Term(1)), "8 not appended after the hole");
}

// ---------------------------------------------------------------------------------------------
// R11: a storage error while the KV machine reads a live value is that error, not `missing_key`
// (sim seed 18 of recovery/power-loss-during-snapshot-install: a power cut during the segment read
// was reported as a lost live entry)
// ---------------------------------------------------------------------------------------------

/// A [`MemLog`] whose reads of `fail_at` fail with a power cut's EIO.
struct FailingLog {
    inner: MemLog,
    fail_at: Option<LogIndex>,
}

impl RaftLog for FailingLog {
    fn last_index_term(&self) -> (LogIndex, Term) {
        self.inner.last_index_term()
    }
    fn last_written(&self) -> (LogIndex, Term) {
        self.inner.last_written()
    }
    fn first_index(&self) -> LogIndex {
        self.inner.first_index()
    }
    fn snapshot_index_term(&self) -> Option<(LogIndex, Term)> {
        self.inner.snapshot_index_term()
    }
    fn fetch(
        &mut self,
        index: LogIndex,
    ) -> Result<Option<(Term, raft_core::Payload)>, raft_core::storage::StorageError> {
        if self.fail_at == Some(index) {
            let e = vfs::FsError::new(vfs::ErrorKind::PoweredOff, vfs::OpKind::Fstat, "seg");
            return Err(raft_core::storage::StorageError::Fs(e));
        }
        self.inner.fetch(index)
    }
    fn append(
        &mut self,
        index: LogIndex,
        term: Term,
        payload: raft_core::Payload,
    ) -> Result<(), raft_core::storage::StorageError> {
        self.inner.append(index, term, payload)
    }
    fn write_sparse(
        &mut self,
        index: LogIndex,
        term: Term,
        payload: raft_core::Payload,
    ) -> Result<(), raft_core::storage::StorageError> {
        self.inner.write_sparse(index, term, payload)
    }
    fn snapshot_live_indexes(&self) -> raft_core::seq::Seq {
        self.inner.snapshot_live_indexes()
    }
    fn has_pending(&self) -> bool {
        self.inner.has_pending()
    }
    fn pending_may_be_lost(&self) -> bool {
        self.inner.pending_may_be_lost()
    }
    fn can_write(&self) -> bool {
        self.inner.can_write()
    }
    fn set_last_index(&mut self, index: LogIndex) -> Result<bool, raft_core::storage::StorageError> {
        self.inner.set_last_index(index)
    }
}

#[test]
fn r11_a_power_cut_while_reading_a_live_value_is_a_power_cut() {
    let mut log = FailingLog { inner: MemLog::new(), fail_at: None };
    let mut s = Server::recover(config("c", &ABC, Bugs::none()), Term(1), None, LogIndex(0), None, &mut log).unwrap().0;
    let get2 = Entry {
        index: LogIndex(2),
        term: Term(1),
        payload: EntryBody::Command { client: ClientId(9), request: 2, command: get("k") }.encode(),
    };
    let m = ae(1, 0, 0, vec![cmd_entry(1, 1, "k", "v"), get2], 1);
    s.handle(0, Input::Message { from: sid("a"), msg: m }, &mut log).unwrap();
    log.inner.write_all();
    // Applying the get at 2 reads k's value at 1; that read hits the power cut.
    log.fail_at = Some(LogIndex(1));
    let m = ae(1, 2, 1, vec![], 2);
    let err = s.handle(0, Input::Message { from: sid("a"), msg: m }, &mut log).unwrap_err();
    assert!(err.is_power_cut(), "expected the power cut, got {err}");
}

// ---------------------------------------------------------------------------------------------
// R12: a snapshot names live entries, so it waits until they are written here (Ra 3.0.0's
// `{written, Idx}` release-cursor condition; `snapshot-before-written` restores the old order)
// ---------------------------------------------------------------------------------------------

fn takes_snapshot_at(fx: &[Effect]) -> Option<LogIndex> {
    fx.iter().find_map(|e| match e {
        Effect::TakeSnapshot { meta, .. } => Some(meta.index),
        _ => None,
    })
}

/// Follower c appends and applies 1..=4 (commit 4, snapshot every 4 entries) before its WAL wrote any
/// of them; returns what the snapshot decision was then, and after the `Written`.
fn r12_snapshot_of_unwritten_entries(bugs: Bugs) -> (Option<LogIndex>, Option<LogIndex>) {
    let mut log = MemLog::new();
    let cfg = raft_core::consensus::server::ConsensusConfig { snapshot_interval: 4, ..config("c", &ABC, bugs) };
    let mut s = Server::recover(cfg, Term(1), None, LogIndex(0), None, &mut log).unwrap().0;
    let entries = (1..=4).map(|i| cmd_entry(i, 1, &format!("k{i}"), "v")).collect();
    let fx = msg(&mut s, &mut log, "a", ae(1, 0, 0, entries, 4));
    assert_eq!(s.last_applied(), LogIndex(4), "a follower applies what it has appended");
    let before_written = takes_snapshot_at(&fx);
    log.write_all();
    let fx = s.handle(0, Input::Written, &mut log).unwrap();
    (before_written, takes_snapshot_at(&fx))
}

#[test]
fn r12_a_snapshot_waits_until_its_live_entries_are_written_here() {
    // Fixed: no snapshot while entry 4 (live: k4's value) is only in memory; taken at the Written.
    assert_eq!(r12_snapshot_of_unwritten_entries(Bugs::none()), (None, Some(LogIndex(4))));
    // Ra before 3.0.0: the snapshot is taken at once; a power cut before the WAL's fsync keeps the
    // snapshot (synced by its own writer) and loses entry 4, which the machine still reads.
    let old = Bugs::of(&[raft_core::Bug::SnapshotBeforeWritten]);
    assert_eq!(r12_snapshot_of_unwritten_entries(old), (Some(LogIndex(4)), None));
}

// ---------------------------------------------------------------------------------------------
// R13: a snapshot's install waits until the live entries its pre-phase wrote are written (Ra 3.0.0's
// `{awaiting_pending, …}` phase; `install-before-live-written` restores the install at once)
// ---------------------------------------------------------------------------------------------

fn accepts_last_chunk(fx: &[Effect]) -> bool {
    fx.iter().any(|e| matches!(e, Effect::AcceptSnapshotChunk { last: true, .. }))
}

/// Follower c receives snapshot 10 whose live entry 7 its pre-phase writes sparsely, then the last chunk
/// before its WAL wrote entry 7; returns whether the chunk was completed (and answered) then, and after
/// the `Written`.
fn r13_last_chunk_before_the_live_entry_is_written(bugs: Bugs) -> (bool, bool) {
    let mut log = MemLog::new();
    let mut s = Server::recover(config("c", &ABC, bugs), Term(1), None, LogIndex(0), None, &mut log).unwrap().0;
    let live = vec![cmd_entry(7, 1, "k", "v")];
    msg(&mut s, &mut log, "a", Message::InstallSnapshotLive { term: Term(1), meta: meta(10, 1), entries: live });
    assert!(log.has_pending(), "the live entry waits for the WAL");
    let last = Message::InstallSnapshot { term: Term(1), meta: meta(10, 1), chunk: 0, last: true, data: vec![1] };
    let fx = msg(&mut s, &mut log, "a", last);
    let at_once = accepts_last_chunk(&fx);
    let answered = fx.iter().any(|e| matches!(e, Effect::Send { msg: Message::InstallSnapshotAck { .. }, .. }));
    assert_eq!(at_once, answered, "the chunk is answered exactly when it is completed");
    log.write_all();
    let fx = s.handle(0, Input::Written, &mut log).unwrap();
    (at_once, accepts_last_chunk(&fx))
}

#[test]
fn r13_an_install_waits_until_its_live_entries_are_written_here() {
    // Fixed: the last chunk is held while entry 7 is only in memory, and completed at the Written.
    assert_eq!(r13_last_chunk_before_the_live_entry_is_written(Bugs::none()), (false, true));
    // Ra before 3.0.0: completed at once; the install syncs the snapshot, and a power cut before the WAL's
    // fsync keeps it and loses entry 7, which the machine still reads.
    let old = Bugs::of(&[raft_core::Bug::InstallBeforeLiveWritten]);
    assert_eq!(r13_last_chunk_before_the_live_entry_is_written(old), (true, false));
}

// ---------------------------------------------------------------------------------------------
// R14: a follower's stale tail, reported as Ra's follower does, never moves the leader's next index past
// its own log (`next-index-past-log` restores Ra's unbounded next index, and the leader's next RPC to
// that peer fails — Ra's `make_rpc_effect` crashes)
// ---------------------------------------------------------------------------------------------

/// Follower `c` appended 1..=4 in term 1 (only 1 written) when leader `b` of term 2, whose log ends at
/// 3, sends a one-entry append the log already holds: it does not validate the tail, so `c` answers up
/// to 2 (its next index 3; its written index 1 as the match: R15); then the WAL writes the stale tail
/// and `c` reports it, with its next index 5.
#[test]
fn r14_a_follower_reports_its_stale_tail_once_written() {
    let mut log = MemLog::new();
    let mut c = server("c", Term(1), &mut log);
    msg(&mut c, &mut log, "a", ae(1, 0, 0, (1..=4).map(|i| noop_entry(i, 1)).collect(), 0));
    log.write_up_to(LogIndex(1));
    let fx = msg(&mut c, &mut log, "b", ae(2, 1, 1, vec![noop_entry(2, 1)], 0));
    let validated = Message::AppendEntriesReply {
        term: Term(2),
        success: true,
        next_index: LogIndex(3),
        last_index: LogIndex(1),
        last_term: Term(1),
    };
    let sends = |fx: Vec<Effect>| fx.into_iter().filter(|e| matches!(e, Effect::Send { .. })).collect::<Vec<_>>();
    assert_eq!(sends(fx), vec![Effect::Send { to: sid("b"), msg: validated }], "Ra: only what the append validated");
    log.write_all();
    let fx = c.handle(0, Input::Written, &mut log).unwrap();
    let tail = Message::AppendEntriesReply {
        term: Term(2),
        success: true,
        next_index: LogIndex(5),
        last_index: LogIndex(4),
        last_term: Term(1),
    };
    assert_eq!(
        sends(fx),
        vec![Effect::Send { to: sid("b"), msg: tail }],
        "Ra: the written index moved, so it is reported"
    );
}

/// Leader `a` (log 1..=3) gets that report from `c`: with the fix it keeps `c`'s next index at 4 and its
/// heartbeat goes out; with Ra's code the next index is 6 and the heartbeat cannot be built.
#[test]
fn r14_a_next_index_past_the_leaders_log_is_bounded() {
    for bugs in [Bugs::none(), Bugs::of(&[raft_core::Bug::NextIndexPastLog])] {
        let ra = bugs.has(raft_core::Bug::NextIndexPastLog);
        let mut c = Cluster::new(&ABC, bugs);
        c.fire("a", Timer::Election);
        c.deliver_all();
        c.command(&sid("a"), 4, 1, put("k", "v"));
        c.deliver_all();
        let (last, _) = c.logs[&sid("a")].last_index_term();
        let term = c.server("a").current_term();
        let report = Message::AppendEntriesReply {
            term,
            success: true,
            next_index: LogIndex(last.0 + 3),
            last_index: LogIndex(last.0 + 2),
            last_term: Term(term.0 - 1),
        };
        let (a, log) = (c.servers.get_mut(&sid("a")).unwrap(), c.logs.get_mut(&sid("a")).unwrap());
        a.handle(0, Input::Message { from: sid("c"), msg: report }, log).unwrap();
        let next = a.peers()[&sid("c")].next_index;
        let heartbeat = a.handle(0, Input::Timer(Timer::Heartbeat), log);
        if ra {
            assert_eq!(next, LogIndex(last.0 + 3));
            assert!(heartbeat.is_err(), "Ra's leader reads an entry it does not have: {heartbeat:?}");
        } else {
            assert_eq!(next, LogIndex(last.0 + 1));
            assert!(heartbeat.is_ok_and(|fx| {
                fx.iter().any(|e| matches!(e, Effect::Send { msg: Message::AppendEntries { .. }, .. }))
            }));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// R15: a success reply for entries the follower holds but has not written never names them as its
// match index (`unvalidated-reply-unwritten` restores Ra's reply, and a leader commits with a follower
// that has not written the entry: found by raft_paper's random schedules, five members)
// ---------------------------------------------------------------------------------------------

#[test]
fn r15_an_unvalidated_reply_reports_no_more_than_is_written() {
    for (bugs, reported) in [(Bugs::none(), 1), (Bugs::of(&[raft_core::Bug::UnvalidatedReplyUnwritten]), 2)] {
        let mut log = MemLog::new();
        let mut c = Server::recover(config("c", &ABC, bugs), Term(1), None, LogIndex(0), None, &mut log).unwrap().0;
        msg(&mut c, &mut log, "a", ae(1, 0, 0, (1..=4).map(|i| noop_entry(i, 1)).collect(), 0));
        log.write_up_to(LogIndex(1));
        // The leader probes from a next index it lowered: one entry the follower holds, unwritten.
        let fx = msg(&mut c, &mut log, "a", ae(1, 1, 1, vec![noop_entry(2, 1)], 0));
        let reply = fx.iter().find_map(|e| match e {
            Effect::Send { msg: Message::AppendEntriesReply { success: true, next_index, last_index, .. }, .. } => {
                Some((*next_index, *last_index))
            }
            _ => None,
        });
        assert_eq!(reply, Some((LogIndex(3), LogIndex(reported))), "{fx:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// R16: an empty append that a later append overtook does not cut what the later one brought
// (`stale-empty-append-truncates` restores Ra's `set_last_index(PLIdx)`; swarm seed 2278)
// ---------------------------------------------------------------------------------------------

#[test]
fn r16_an_overtaken_empty_append_keeps_the_leaders_newer_entries() {
    for (bugs, kept) in [(Bugs::none(), 2), (Bugs::of(&[raft_core::Bug::StaleEmptyAppendTruncates]), 1)] {
        let mut log = MemLog::new();
        let mut c = Server::recover(config("c", &ABC, bugs), Term(1), None, LogIndex(0), None, &mut log).unwrap().0;
        msg(&mut c, &mut log, "a", ae(1, 0, 0, vec![noop_entry(1, 1)], 0));
        // The append of 2 overtook the tick `a` sent when its log ended at 1; `c` wrote 2 and said so.
        msg(&mut c, &mut log, "a", ae(1, 1, 1, vec![noop_entry(2, 1)], 0));
        log.write_all();
        c.handle(0, Input::Written, &mut log).unwrap();
        let fx = msg(&mut c, &mut log, "a", ae(1, 1, 1, vec![], 0));
        assert_eq!(log.last_index_term(), (LogIndex(kept), Term(1)), "{fx:?}");
        if kept == 2 {
            let reply = fx.iter().find_map(|e| match e {
                Effect::Send { msg: Message::AppendEntriesReply { success: true, last_index, .. }, .. } => {
                    Some(*last_index)
                }
                _ => None,
            });
            assert_eq!(reply, Some(LogIndex(1)), "success up to the empty append's previous index only");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A snapshot receive's cut keeps what a live entry vouches for (`receive-cut-loses-written`)
// ---------------------------------------------------------------------------------------------

/// A follower has written 1..=10 (term 1) and applied 5 when a snapshot arrives whose live entries are 7
/// and 9, which it holds with the same term, and 15. Ra ends the log at the last applied index and writes
/// all three again — sparse writes that, flushed after a restart, shadow the held entries 8 and 10. Fixed,
/// the log ends after 9 (log matching: the leader's 9 is the follower's, and so is everything before it)
/// and only 15 is written.
#[test]
fn a_receive_keeps_the_entries_its_live_entries_vouch_for() {
    struct Case {
        bugs: Bugs,
        /// Which of 6..=10 the log holds after the live entries.
        held: Vec<u64>,
        written_again: Vec<u64>,
    }
    let cases = [
        Case { bugs: Bugs::none(), held: vec![6, 7, 8, 9], written_again: vec![15] },
        Case {
            bugs: Bugs::of(&[raft_core::Bug::ReceiveCutLosesWritten]),
            held: vec![7, 9],
            written_again: vec![7, 9, 15],
        },
    ];
    for case in cases {
        let mut log = MemLog::new();
        let mut s = Server::recover(config("c", &ABC, case.bugs.clone()), Term(1), None, LogIndex(0), None, &mut log)
            .unwrap()
            .0;
        let entries: Vec<Entry> = (1..=10).map(|i| cmd_entry(i, 1, "k", &format!("v{i}"))).collect();
        msg(&mut s, &mut log, "a", ae(1, 0, 0, entries, 5));
        log.write_all();
        assert_eq!(s.last_applied(), LogIndex(5));
        let live = [7, 9, 15].into_iter().map(|i| cmd_entry(i, 1, "k", &format!("v{i}"))).collect();
        msg(&mut s, &mut log, "a", Message::InstallSnapshotLive { term: Term(1), meta: meta(20, 1), entries: live });
        let held: Vec<u64> = (6..=10).filter(|&i| log.term_at(LogIndex(i)).unwrap().is_some()).collect();
        assert_eq!(held, case.held, "{:?}", case.bugs);
        let sparse: Vec<u64> = log.snapshot_live_indexes().iter().map(|i| i.0).collect();
        assert_eq!(sparse, case.written_again, "{:?}", case.bugs);
    }
}

// ---------------------------------------------------------------------------------------------
// A server outside the configuration cannot make a follower take its term (`removed-member-disrupts`)
// ---------------------------------------------------------------------------------------------

/// Follower `c` of {a, b, c} in term 3, following leader `a`, hears a vote request and a pre-vote of term
/// 9 from `zz`, a member removed before it learnt so. Ra's follower takes term 9 (and its leader steps
/// down at `c`'s next reply); fixed, `c` ignores both. A member's requests are handled as before, and so
/// are an outsider's when `c` knows no leader: `zz` may be a member that re-joined after `c`'s log ends,
/// and then the only way to a new leader (swarm seed 15546: a group left with no leader for good).
#[test]
fn a_follower_ignores_elections_called_by_a_server_outside_its_configuration() {
    struct Case {
        bugs: Bugs,
        from: &'static str,
        knows_leader: bool,
        term_after: u64,
    }
    let cases = [
        Case { bugs: Bugs::none(), from: "zz", knows_leader: true, term_after: 3 },
        Case {
            bugs: Bugs::of(&[raft_core::Bug::RemovedMemberDisrupts]),
            from: "zz",
            knows_leader: true,
            term_after: 9,
        },
        Case { bugs: Bugs::none(), from: "b", knows_leader: true, term_after: 9 },
        Case { bugs: Bugs::none(), from: "zz", knows_leader: false, term_after: 9 },
    ];
    let requests = [
        Message::RequestVote { term: Term(9), last_index: LogIndex(0), last_term: Term(0) },
        Message::PreVote { term: Term(9), last_index: LogIndex(0), last_term: Term(0) },
    ];
    for case in &cases {
        for request in &requests {
            let mut log = MemLog::new();
            let mut s = server_with("c", Term(3), case.bugs.clone(), &mut log);
            if case.knows_leader {
                msg(&mut s, &mut log, "a", ae(3, 0, 0, vec![], 0));
            }
            let fx = msg(&mut s, &mut log, case.from, request.clone());
            assert_eq!(
                s.current_term(),
                Term(case.term_after),
                "{request:?} from {} (knows a leader: {}): {fx:?}",
                case.from,
                case.knows_leader
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A candidate outside its configuration does not count itself (`removed-candidate-counts-itself`)
// ---------------------------------------------------------------------------------------------

/// `c` of {a, b, c} has appended (not committed) the configuration {a, b}: its own removal. It still
/// takes itself for a voter (Ra's `get_membership` keeps the last known standing) and campaigns; `a`
/// grants its pre-vote. Ra counts `c`'s own vote with `a`'s — two, the quorum of {a, b} — and calls the
/// election; fixed, only `a`'s counts and `c` stays in its pre-vote round.
#[test]
fn a_candidate_outside_its_configuration_does_not_count_itself() {
    struct Case {
        bugs: Bugs,
        role_after_grant: Role,
    }
    let cases = [
        Case { bugs: Bugs::none(), role_after_grant: Role::PreVoteCandidate },
        Case { bugs: Bugs::of(&[raft_core::Bug::RemovedCandidateCountsItself]), role_after_grant: Role::Candidate },
    ];
    for case in cases {
        let mut log = MemLog::new();
        let mut c = server_with("c", Term(1), case.bugs.clone(), &mut log);
        msg(&mut c, &mut log, "a", ae(1, 0, 0, vec![noop_entry(1, 1), removal_of_c(2)], 1));
        log.write_all();
        c.handle(0, Input::Written, &mut log).unwrap();
        assert!(!c.cluster().contains_key(&sid("c")), "the removal is in force on append");
        c.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
        assert_eq!(c.role(), &Role::PreVoteCandidate, "{:?}", case.bugs);
        msg(&mut c, &mut log, "a", Message::PreVoteReply { term: Term(1), granted: true });
        assert_eq!(c.role(), &case.role_after_grant, "{:?}", case.bugs);
    }
}

// ---------------------------------------------------------------------------------------------
// A configuration whose entry a cut takes away goes with it (`config-kept-after-truncation`)
// ---------------------------------------------------------------------------------------------

/// `a` of {a, b, c} has appended, from the leader of term 1, a noop at 1, a command at 2 and the removal
/// of `c` at 3 (uncommitted). The leader of term 2 holds only 1: its append after 1 overwrites 2 —
/// or, empty, ends the log at 1 — and the removal's entry is gone. Raft: the latest configuration in the
/// log is in force again, {a, b, c}; Ra reverts only when an entry of another term lands on index 3, so
/// `a` keeps {a, b}. An entry written at 3 itself reverts in both.
#[test]
fn a_configuration_cut_from_the_log_is_no_longer_in_force() {
    struct Case {
        name: &'static str,
        bugs: Bugs,
        append: Message,
        c_in_force: bool,
    }
    let fixed = Bugs::none();
    let ra = Bugs::of(&[raft_core::Bug::ConfigKeptAfterTruncation]);
    let overwrite_from_2 = ae(2, 1, 1, vec![noop_entry(2, 2)], 1);
    let empty_after_1 = ae(2, 1, 1, vec![], 1);
    let overwrite_at_3 = ae(2, 2, 1, vec![noop_entry(3, 2)], 1);
    let cases = [
        Case {
            name: "overwritten from below",
            bugs: fixed.clone(),
            append: overwrite_from_2.clone(),
            c_in_force: true,
        },
        Case { name: "overwritten from below, Ra", bugs: ra.clone(), append: overwrite_from_2, c_in_force: false },
        Case { name: "cut by an empty append", bugs: fixed.clone(), append: empty_after_1.clone(), c_in_force: true },
        Case { name: "cut by an empty append, Ra", bugs: ra.clone(), append: empty_after_1, c_in_force: false },
        Case { name: "overwritten at its index", bugs: fixed, append: overwrite_at_3.clone(), c_in_force: true },
        Case { name: "overwritten at its index, Ra", bugs: ra, append: overwrite_at_3, c_in_force: true },
    ];
    for case in cases {
        let mut log = MemLog::new();
        let mut a = server_with("a", Term(1), case.bugs.clone(), &mut log);
        let entries = vec![noop_entry(1, 1), cmd_entry(2, 1, "k", "v"), removal_of_c(3)];
        msg(&mut a, &mut log, "b", ae(1, 0, 0, entries, 1));
        log.write_all();
        a.handle(0, Input::Written, &mut log).unwrap();
        assert!(!a.cluster().contains_key(&sid("c")), "{}: the removal is in force on append", case.name);
        msg(&mut a, &mut log, "c", case.append);
        assert_eq!(a.cluster().contains_key(&sid("c")), case.c_in_force, "{}: {:?}", case.name, a.cluster());
    }
}
