//! Snapshots and snapshot transfer in the pure consensus server: local snapshots every N applied
//! entries, the leader's snapshot sender for a far-behind follower, sender failure and exponential
//! backoff, PR 589 fix 4 (a pre-vote from a backoff peer is answered at once) and its bug switch, and
//! the follower's install path.
//!
//! The harness does not execute `TakeSnapshot`, `StartSnapshotSender` or `AcceptSnapshotChunk`; these
//! tests play the snapshot writer, the sender and the follower's storage by hand.

mod cluster;

use cluster::*;
use raft_core::consensus::RaftLog;
use raft_core::consensus::kv::{KvCommand, KvResult, KvState, ValueSource};
use raft_core::consensus::mem_log::MemLog;
use raft_core::consensus::sender::{SenderConfig, SenderEffect, SnapshotSender};
use raft_core::consensus::server::{
    Effect, Entry, EntryBody, Input, Message, PeerStatus, RECEIVE_SNAPSHOT_TIMEOUT_MS, Role, Server, ServerId, Timer,
    snapshot_backoff_ms,
};
use raft_core::storage::snapshot::SnapshotMeta;
use raft_core::{Bug, Bugs, LogIndex, Seq, Term};

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

fn cluster_with_interval(members: &[&str], bugs: Bugs, interval: u64) -> Cluster {
    Cluster::new_configured(members, bugs, |cfg| cfg.snapshot_interval = interval)
}

/// The effects `name` produced since position `mark` of the effect record.
fn effects_since(c: &Cluster, mark: usize, name: &ServerId) -> Vec<Effect> {
    c.effects[mark..].iter().filter(|(n, _)| n == name).map(|(_, e)| e.clone()).collect()
}

fn take_snapshots(fx: &[Effect]) -> Vec<(SnapshotMeta, Vec<u8>, Seq)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::TakeSnapshot { meta, state, live_indexes } => {
                Some((meta.clone(), state.clone(), live_indexes.clone()))
            }
            _ => None,
        })
        .collect()
}

fn senders(fx: &[Effect]) -> Vec<(ServerId, LogIndex)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::StartSnapshotSender { peer, index } => Some((peer.clone(), *index)),
            _ => None,
        })
        .collect()
}

fn snapshot_index(c: &Cluster, name: &ServerId) -> Option<LogIndex> {
    c.logs[name].snapshot_index_term().map(|(i, _)| i)
}

/// Plays the snapshot writer for `name`: every `TakeSnapshot` above the log's snapshot is installed
/// into the log (keeping its live indexes) and reported with `SnapshotWritten`. Returns their metas.
fn complete_snapshots(c: &mut Cluster, name: &ServerId) -> Vec<SnapshotMeta> {
    let mut done = Vec::new();
    loop {
        let current = snapshot_index(c, name).map_or(0, |i| i.0);
        let next = c.effects.iter().find_map(|(n, e)| match e {
            Effect::TakeSnapshot { meta, live_indexes, .. } if n == name && meta.index.0 > current => {
                Some((meta.clone(), live_indexes.clone()))
            }
            _ => None,
        });
        let Some((meta, live)) = next else { return done };
        let keep: Vec<LogIndex> = live.iter().collect();
        c.logs.get_mut(name).unwrap().install_snapshot(meta.index, meta.term, &keep);
        c.input(name, Input::SnapshotWritten { index: meta.index });
        done.push(meta);
    }
}

/// The `TakeSnapshot` that `name` emitted for `index`.
fn snapshot_taken(c: &Cluster, name: &ServerId, index: LogIndex) -> (SnapshotMeta, Vec<u8>, Seq) {
    c.effects
        .iter()
        .find_map(|(n, e)| match e {
            Effect::TakeSnapshot { meta, state, live_indexes } if n == name && meta.index == index => {
                Some((meta.clone(), state.clone(), live_indexes.clone()))
            }
            _ => None,
        })
        .expect("the snapshot was taken")
}

fn peer_status(c: &Cluster, leader: &ServerId, peer: &ServerId) -> PeerStatus {
    c.servers[leader].peers()[peer].status
}

/// A 3-server cluster (snapshot every 5 applied entries) whose follower `lag` was isolated while the
/// leader applied 12 commands and compacted its log; `lag` is back and the leader has just started a
/// snapshot sender for it.
struct Behind {
    c: Cluster,
    leader: ServerId,
    lag: ServerId,
    other: ServerId,
    /// The leader's snapshot index (what the sender sends).
    snap: LogIndex,
    /// Where the effect record stood before `lag` rejoined.
    mark: usize,
}

fn far_behind(bugs: Bugs) -> Behind {
    let mut c = cluster_with_interval(&["a", "b", "c"], bugs, 5);
    let leader = c.elect();
    let mut followers = c.servers.keys().filter(|s| **s != leader).cloned();
    let (lag, other) = (followers.next().unwrap(), followers.next().unwrap());
    assert_eq!(c.servers[&lag].leader(), Some(&leader), "the follower knew the leader before the partition");
    c.isolated.insert(lag.clone());
    // "stable" is written once: its value lives below every later snapshot.
    c.command(&leader, 1, 100, put("stable", "s"));
    for i in 0..12u64 {
        c.command(&leader, 1, i, put(&format!("k{}", i % 3), &format!("v{i}")));
        c.deliver_all();
        complete_snapshots(&mut c, &leader);
        complete_snapshots(&mut c, &other);
    }
    assert_eq!(c.replies().len(), 13, "the majority kept committing");
    let lag_last = c.logs[&lag].last_index_term().0;
    let snap = snapshot_index(&c, &leader).expect("the leader compacted its log");
    assert!(c.logs[&leader].first_index() > LogIndex(lag_last.0 + 1), "the entries the follower needs are gone");
    c.isolated.remove(&lag);
    let mark = c.effects.len();
    c.fire(&leader.0, Timer::Heartbeat);
    c.deliver_all();
    Behind { c, leader, lag, other, snap, mark }
}

/// Plays the leader's snapshot sender and the follower's storage, Ra's way: first the live entries
/// (`InstallSnapshotLive`, read from the leader's log through `snapshot_live_indexes`, written sparsely
/// by the follower), then chunks of the snapshot as `InstallSnapshot`; after the last one the follower's
/// log is reset to the snapshot (keeping the sparse live entries) and `SnapshotInstalled` is fed.
/// Returns `lag`'s effects.
fn transfer_snapshot(c: &mut Cluster, leader: &ServerId, lag: &ServerId, index: LogIndex, chunk: usize) -> Vec<Effect> {
    let (meta, state, live) = snapshot_taken(c, leader, index);
    assert_eq!(c.logs[leader].snapshot_live_indexes(), live, "the leader's log knows its snapshot's live indexes");
    let term = c.servers[leader].current_term();
    let mark = c.effects.len();
    let entries: Vec<Entry> = live
        .iter()
        .map(|i| {
            let (t, p) = c.logs.get_mut(leader).unwrap().fetch(i).unwrap().expect("live entries stay readable");
            Entry { index: i, term: t, payload: p }
        })
        .collect();
    // The leader's snapshot sender actor drives the transfer; the follower's acks go back to it.
    let cfg =
        SenderConfig { leader: leader.clone(), peer: lag.clone(), term, chunk_bytes: chunk, chunk_timeout_ms: 1_000 };
    let (mut sender, mut sfx) = SnapshotSender::start(cfg, meta.clone(), &state, entries);
    let mut report = None;
    while report.is_none() {
        let mut acks = Vec::new();
        for e in sfx {
            match e {
                SenderEffect::Send(msg) => {
                    let before = c.effects.len();
                    c.input(lag, Input::Message { from: leader.clone(), msg });
                    for (who, e) in &c.effects[before..] {
                        if let (true, Effect::Send { msg, .. }) = (who == lag, e)
                            && matches!(
                                msg,
                                Message::InstallSnapshotAck { .. } | Message::InstallSnapshotLiveAck { .. }
                            )
                        {
                            acks.push(msg.clone());
                        }
                    }
                }
                SenderEffect::SetTimer { .. } => {}
                SenderEffect::Report(input) => report = Some(input),
            }
        }
        sfx = acks.iter().flat_map(|a| sender.handle_message(a)).collect();
        assert!(report.is_some() || !sfx.is_empty(), "the transfer stalled");
    }
    assert!(sender.is_done());
    assert_eq!(report, Some(Input::SnapshotSenderFinished { peer: lag.clone(), index: meta.index }));
    let log = c.logs.get_mut(lag).unwrap();
    log.reset_to_snapshot(meta.index, meta.term);
    for i in live.iter() {
        assert!(log.fetch(i).unwrap().is_some(), "live entry {i} written by the live phase");
    }
    log.write_up_to(meta.index);
    assert_eq!(log.last_written(), (meta.index, meta.term));
    c.input(lag, Input::SnapshotInstalled { meta, state, leader: leader.clone() });
    effects_since(c, mark, lag)
}

// ---------------------------------------------------------------------------------------------------
// Local snapshots
// ---------------------------------------------------------------------------------------------------

#[test]
fn snapshot_is_taken_every_interval_with_state_and_live_indexes() {
    let mut c = cluster_with_interval(&["a"], Bugs::none(), 3);
    let a = c.elect();
    // Index 1 is the leader's noop; puts land at 2, 3, ...
    assert_eq!(c.server("a").last_applied(), LogIndex(1));
    assert!(take_snapshots(&effects_since(&c, 0, &a)).is_empty());
    c.command(&a, 1, 1, put("x", "1"));
    assert!(take_snapshots(&effects_since(&c, 0, &a)).is_empty(), "2 applied < interval 3");
    let mark = c.effects.len();
    c.command(&a, 1, 2, put("y", "2"));
    let taken = take_snapshots(&effects_since(&c, mark, &a));
    assert_eq!(taken.len(), 1);
    let (meta, state, live) = &taken[0];
    assert_eq!(meta.index, LogIndex(3));
    assert_eq!(meta.term, c.server("a").current_term());
    assert_eq!(meta.machine_version, 1);
    assert_eq!(meta.cluster, vec!["a".to_owned()]);
    let decoded = KvState::decode(state).expect("the snapshot state is a KV state");
    assert_eq!(&decoded, c.machine("a"));
    assert_eq!(decoded.index_of("x"), Some(LogIndex(2)));
    assert_eq!(decoded.index_of("y"), Some(LogIndex(3)));
    assert_eq!(live, &Seq::from_indexes([LogIndex(2), LogIndex(3)]));
    assert_eq!(live, &decoded.live_indexes());

    // Complete it; the next one comes 3 applied entries after index 3.
    assert_eq!(complete_snapshots(&mut c, &a).len(), 1);
    assert_eq!(c.log("a").first_index(), LogIndex(4));
    c.command(&a, 1, 3, put("x", "3"));
    c.command(&a, 1, 4, put("z", "4"));
    assert_eq!(take_snapshots(&effects_since(&c, mark, &a)).len(), 1, "5 < 3 + 3");
    let mark = c.effects.len();
    c.command(&a, 1, 5, put("x", "5"));
    let taken = take_snapshots(&effects_since(&c, mark, &a));
    assert_eq!(taken.len(), 1);
    let (meta, state, live) = &taken[0];
    assert_eq!(meta.index, LogIndex(6));
    // x was overwritten at 4 and 6: its older indexes are no longer live.
    assert_eq!(live, &Seq::from_indexes([LogIndex(3), LogIndex(5), LogIndex(6)]));
    assert_eq!(KvState::decode(state).unwrap().live_indexes(), *live);
}

#[test]
fn only_one_snapshot_is_pending_at_a_time() {
    let mut c = cluster_with_interval(&["a"], Bugs::none(), 2);
    let a = c.elect();
    for i in 0..10u64 {
        c.command(&a, 1, i, put(&format!("k{i}"), "v"));
    }
    assert_eq!(c.server("a").last_applied(), LogIndex(11));
    let taken = take_snapshots(&effects_since(&c, 0, &a));
    assert_eq!(taken.len(), 1, "no second snapshot while the first is not written: {taken:?}");
    assert_eq!(taken[0].0.index, LogIndex(2));
    // `SnapshotWritten` clears the pending flag; the next apply snapshots again.
    assert_eq!(complete_snapshots(&mut c, &a).len(), 1);
    let mark = c.effects.len();
    c.command(&a, 1, 100, put("after", "v"));
    let taken = take_snapshots(&effects_since(&c, mark, &a));
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].0.index, LogIndex(12));
    assert_eq!(taken[0].2.len(), 11, "every key's index is live");
}

#[test]
fn snapshot_interval_zero_never_snapshots() {
    let mut c = cluster_with_interval(&["a", "b", "c"], Bugs::none(), 0);
    let leader = c.elect();
    for i in 0..20u64 {
        c.command(&leader, 1, i, put("k", &format!("{i}")));
    }
    c.run_until(|c| c.replies().len() == 20);
    assert!(c.effects.iter().all(|(_, e)| !matches!(e, Effect::TakeSnapshot { .. })));
}

#[test]
fn followers_snapshot_on_their_own_applied_entries() {
    let mut c = cluster_with_interval(&["a", "b", "c"], Bugs::none(), 4);
    let leader = c.elect();
    for i in 0..6u64 {
        c.command(&leader, 1, i, put(&format!("k{}", i % 2), &format!("{i}")));
        c.deliver_all();
    }
    c.fire(&leader.0, Timer::Heartbeat);
    c.deliver_all();
    for name in c.servers.keys().cloned().collect::<Vec<_>>() {
        let taken = take_snapshots(&effects_since(&c, 0, &name));
        assert_eq!(taken.len(), 1, "{name} took one snapshot");
        assert_eq!(taken[0].0.index, LogIndex(4), "{name}");
        assert_eq!(KvState::decode(&taken[0].1).unwrap().live_indexes(), taken[0].2, "{name}");
    }
}

#[test]
fn get_reads_a_compacted_but_live_entry_from_the_log() {
    let mut c = cluster_with_interval(&["a"], Bugs::none(), 4);
    let a = c.elect();
    c.command(&a, 1, 0, put("keep", "original")); // index 2
    for i in 1..=10u64 {
        c.command(&a, 1, i, put("churn", &format!("c{i}"))); // indexes 3..=12
        complete_snapshots(&mut c, &a);
    }
    let snap = snapshot_index(&c, &a).unwrap();
    assert!(snap >= LogIndex(10), "compacted up to {snap}");
    assert_eq!(c.machine("a").index_of("keep"), Some(LogIndex(2)));
    let log = c.log("a");
    assert!(log.fetch(LogIndex(2)).unwrap().is_some(), "the live entry survived compaction");
    assert!(log.fetch(LogIndex(3)).unwrap().is_none(), "an overwritten value's entry was compacted");
    assert!(log.fetch(LogIndex(1)).unwrap().is_none(), "the noop was compacted");
    c.command(&a, 2, 1, get("keep"));
    c.command(&a, 2, 2, get("churn"));
    c.command(
        &a,
        2,
        3,
        KvCommand::Cas { key: "keep".into(), expected: Some(b"original".to_vec()), new: b"swapped".to_vec() },
    );
    c.command(&a, 2, 4, get("keep"));
    let replies: Vec<_> = c.replies().into_iter().filter(|r| r.0 == 2).map(|r| r.2).collect();
    assert_eq!(
        replies,
        vec![
            KvResult::Value(Some(b"original".to_vec())),
            KvResult::Value(Some(b"c10".to_vec())),
            KvResult::Cas { applied: true, previous: Some(b"original".to_vec()) },
            KvResult::Value(Some(b"swapped".to_vec())),
        ]
    );
}

// ---------------------------------------------------------------------------------------------------
// The leader's snapshot sender
// ---------------------------------------------------------------------------------------------------

#[test]
fn far_behind_follower_gets_a_snapshot_sender() {
    let b = far_behind(Bugs::none());
    let fx = effects_since(&b.c, b.mark, &b.leader);
    assert_eq!(senders(&fx), vec![(b.lag.clone(), b.snap)]);
    assert_eq!(peer_status(&b.c, &b.leader, &b.lag), PeerStatus::SendingSnapshot);
    assert_eq!(peer_status(&b.c, &b.leader, &b.other), PeerStatus::Normal);
    // The follower said where it stands; the leader did not bump next_index past what it lacks.
    assert!(b.c.server(&b.leader.0).peers()[&b.lag].next_index < b.c.logs[&b.leader].first_index());

    // While the sender runs, neither heartbeats nor new commands send the follower append-entries or
    // another sender.
    let mut c = b.c;
    let mark = c.effects.len();
    c.fire(&b.leader.0, Timer::Heartbeat);
    c.command(&b.leader, 9, 1, put("more", "x"));
    c.deliver_all();
    let fx = effects_since(&c, mark, &b.leader);
    assert!(senders(&fx).is_empty());
    assert!(!fx.iter().any(|e| matches!(e, Effect::Send { to, .. } if *to == b.lag)));
    assert!(fx.iter().any(|e| matches!(e, Effect::Send { to, msg: Message::AppendEntries { .. } } if *to == b.other)));
    assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SendingSnapshot);
}

#[test]
fn a_follower_within_the_log_gets_entries_not_a_snapshot() {
    let mut c = cluster_with_interval(&["a", "b", "c"], Bugs::none(), 5);
    let leader = c.elect();
    let lag = c.servers.keys().find(|s| **s != leader).cloned().unwrap();
    let other = c.servers.keys().find(|s| **s != leader && **s != lag).cloned().unwrap();
    // Compact once, then let the follower miss only entries above the snapshot.
    for i in 0..5u64 {
        c.command(&leader, 1, i, put("k", &format!("{i}")));
        c.deliver_all();
    }
    complete_snapshots(&mut c, &leader);
    complete_snapshots(&mut c, &other);
    complete_snapshots(&mut c, &lag);
    let snap = snapshot_index(&c, &leader).unwrap();
    c.isolated.insert(lag.clone());
    c.command(&leader, 1, 10, put("k", "missed"));
    c.deliver_all();
    c.isolated.remove(&lag);
    assert!(c.logs[&lag].last_index_term().0 >= snap);
    let mark = c.effects.len();
    c.fire(&leader.0, Timer::Heartbeat);
    c.deliver_all();
    assert!(senders(&effects_since(&c, mark, &leader)).is_empty());
    assert_eq!(peer_status(&c, &leader, &lag), PeerStatus::Normal);
    assert_eq!(c.logs[&lag].last_index_term(), c.logs[&leader].last_index_term());
}

#[test]
fn sender_finished_makes_the_peer_normal_and_replication_continues() {
    let b = far_behind(Bugs::none());
    let (mut c, leader, lag) = (b.c, b.leader, b.lag);
    let lag_fx = transfer_snapshot(&mut c, &leader, &lag, b.snap, 16);
    assert!(lag_fx.iter().any(|e| matches!(e,
        Effect::Send { to, msg: Message::AppendEntriesReply { success: true, last_index, .. } }
            if *to == leader && *last_index == b.snap)));
    assert_eq!(c.server(&lag.0).last_applied(), b.snap);
    assert_eq!(peer_status(&c, &leader, &lag), PeerStatus::SendingSnapshot);

    // The sender reports success before the follower's reply reaches the leader.
    let mark = c.effects.len();
    c.input(&leader, Input::SnapshotSenderFinished { peer: lag.clone(), index: b.snap });
    let peer = c.server(&leader.0).peers()[&lag].clone();
    assert_eq!(peer.status, PeerStatus::Normal);
    assert_eq!(peer.snapshot_failures, 0);
    // Only the follower's own reply raises match index (Ra: `install_snapshot_result`).
    assert!(peer.match_index < b.snap);
    assert_eq!(peer.next_index, LogIndex(c.logs[&leader].last_index_term().0.0 + 1), "entries above the snapshot sent");
    // Replication resumes from the snapshot index: prev = snapshot, entries above it.
    let fx = effects_since(&c, mark, &leader);
    let ae = fx
        .iter()
        .find_map(|e| match e {
            Effect::Send { to, msg: Message::AppendEntries { prev_index, prev_term, entries, .. } } if *to == lag => {
                Some((*prev_index, *prev_term, entries.len()))
            }
            _ => None,
        })
        .expect("append-entries to the follower");
    let (_, snap_term) = c.logs[&leader].snapshot_index_term().unwrap();
    assert_eq!((ae.0, ae.1), (b.snap, snap_term));
    assert_eq!(ae.2 as u64, c.logs[&leader].last_index_term().0.0 - b.snap.0);
    c.deliver_all();
    assert_eq!(c.logs[&lag].last_index_term(), c.logs[&leader].last_index_term());
    assert!(c.server(&leader.0).peers()[&lag].match_index >= b.snap, "the follower's reply raised match index");

    // New commands reach the follower and it applies them (including gets that read live entries).
    let stable = c.machine(&leader.0).index_of("stable").unwrap();
    assert!(stable < b.snap, "the follower needs a live entry below the snapshot");
    c.command(&leader, 5, 1, put("k0", "fresh"));
    c.command(&leader, 5, 2, get("k1"));
    c.command(&leader, 5, 3, get("stable"));
    c.deliver_all();
    c.fire(&leader.0, Timer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.server(&lag.0).last_applied(), c.server(&leader.0).last_applied());
    assert_eq!(c.machine(&lag.0), c.machine(&leader.0));
    let answers: Vec<KvResult> = c.replies().into_iter().filter(|r| r.0 == 5).map(|r| r.2).collect();
    assert_eq!(
        answers,
        vec![KvResult::Ok, KvResult::Value(Some(b"v10".to_vec())), KvResult::Value(Some(b"s".to_vec()))]
    );
}

#[test]
fn sender_failure_enters_backoff_with_a_five_second_retry_timer() {
    let b = far_behind(Bugs::none());
    let mut c = b.c;
    let mark = c.effects.len();
    c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
    assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SnapshotBackoff(1));
    assert_eq!(
        effects_since(&c, mark, &b.leader),
        vec![Effect::SetTimer { timer: Timer::SnapshotRetry(b.lag.clone()), after_ms: 5_000 }]
    );
    assert_eq!(c.timers.get(&(b.leader.clone(), Timer::SnapshotRetry(b.lag.clone()))), Some(&(c.now + 5_000)));
    // Backoff: heartbeats and commands leave the peer alone.
    let mark = c.effects.len();
    c.fire(&b.leader.0, Timer::Heartbeat);
    c.command(&b.leader, 9, 1, put("k", "v"));
    let fx = effects_since(&c, mark, &b.leader);
    assert!(senders(&fx).is_empty());
    assert!(!fx.iter().any(|e| matches!(e, Effect::Send { to, .. } if *to == b.lag)));
    assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SnapshotBackoff(1));
}

#[test]
fn retry_timer_starts_a_new_sender() {
    let b = far_behind(Bugs::none());
    let mut c = b.c;
    c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
    let mark = c.effects.len();
    // The harness's clock runs through heartbeats and the follower's pre-votes are dropped: only the
    // timer can bring the sender back.
    c.isolated.insert(b.lag.clone());
    let start = c.now;
    c.run_until(|c| !senders(&effects_since(c, mark, &b.leader)).is_empty());
    assert_eq!(c.now, start + 5_000, "the sender restarts exactly when the retry timer fires");
    assert_eq!(senders(&effects_since(&c, mark, &b.leader)), vec![(b.lag.clone(), b.snap)]);
    assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SendingSnapshot);
    assert_eq!(c.server(&b.leader.0).peers()[&b.lag].snapshot_failures, 1, "the attempt count is kept");
}

#[test]
fn repeated_failures_back_off_exponentially_up_to_sixty_seconds() {
    let b = far_behind(Bugs::none());
    let mut c = b.c;
    for (n, delay) in [5_000u64, 10_000, 20_000, 40_000, 60_000, 60_000].into_iter().enumerate() {
        let n = n as u32 + 1;
        assert_eq!(snapshot_backoff_ms(n), delay);
        let mark = c.effects.len();
        c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
        assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SnapshotBackoff(n));
        assert_eq!(
            effects_since(&c, mark, &b.leader),
            vec![Effect::SetTimer { timer: Timer::SnapshotRetry(b.lag.clone()), after_ms: delay }],
            "failure {n}"
        );
        let mark = c.effects.len();
        c.now += delay;
        c.fire(&b.leader.0, Timer::SnapshotRetry(b.lag.clone()));
        assert_eq!(
            effects_since(&c, mark, &b.leader),
            vec![Effect::StartSnapshotSender { peer: b.lag.clone(), index: b.snap }]
        );
        assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SendingSnapshot);
    }
}

#[test]
fn backoff_delay_formula() {
    assert_eq!(snapshot_backoff_ms(1), 5_000);
    assert_eq!(snapshot_backoff_ms(2), 10_000);
    assert_eq!(snapshot_backoff_ms(3), 20_000);
    assert_eq!(snapshot_backoff_ms(4), 40_000);
    assert_eq!(snapshot_backoff_ms(5), 60_000);
    assert_eq!(snapshot_backoff_ms(64), 60_000);
    assert_eq!(snapshot_backoff_ms(u32::MAX), 60_000);
    for n in 1..100 {
        assert!(snapshot_backoff_ms(n) <= snapshot_backoff_ms(n + 1));
        assert_eq!(snapshot_backoff_ms(n), (5_000u64 * (1u64 << (n - 1).min(20))).min(60_000));
    }
}

#[test]
fn success_after_failures_resets_the_attempt_count() {
    let b = far_behind(Bugs::none());
    let mut c = b.c;
    for _ in 0..3 {
        c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
        c.fire(&b.leader.0, Timer::SnapshotRetry(b.lag.clone()));
    }
    assert_eq!(c.server(&b.leader.0).peers()[&b.lag].snapshot_failures, 3);
    transfer_snapshot(&mut c, &b.leader, &b.lag, b.snap, 8);
    c.input(&b.leader, Input::SnapshotSenderFinished { peer: b.lag.clone(), index: b.snap });
    c.deliver_all();
    assert_eq!(c.server(&b.leader.0).peers()[&b.lag].snapshot_failures, 0);
    // Make the follower fall behind a newer snapshot again; its next failure starts over at 5 s.
    c.isolated.insert(b.lag.clone());
    for i in 0..12u64 {
        c.command(&b.leader, 3, i, put(&format!("n{i}"), "v"));
        c.deliver_all();
        complete_snapshots(&mut c, &b.leader);
        complete_snapshots(&mut c, &b.other);
    }
    c.isolated.remove(&b.lag);
    let mark = c.effects.len();
    c.fire(&b.leader.0, Timer::Heartbeat);
    c.deliver_all();
    let new_snap = snapshot_index(&c, &b.leader).unwrap();
    assert!(new_snap > b.snap);
    assert_eq!(senders(&effects_since(&c, mark, &b.leader)), vec![(b.lag.clone(), new_snap)]);
    let mark = c.effects.len();
    c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
    assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SnapshotBackoff(1));
    assert_eq!(
        effects_since(&c, mark, &b.leader),
        vec![Effect::SetTimer { timer: Timer::SnapshotRetry(b.lag.clone()), after_ms: 5_000 }]
    );
}

#[test]
fn retry_timer_for_a_peer_not_in_backoff_is_ignored() {
    // Ra's snapshot_backoff_prevents_immediate_retry, second half.
    let b = far_behind(Bugs::none());
    let mut c = b.c;
    // Sending: a stale retry timer does not start a second sender.
    let mark = c.effects.len();
    c.fire(&b.leader.0, Timer::SnapshotRetry(b.lag.clone()));
    assert_eq!(effects_since(&c, mark, &b.leader), vec![]);
    assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SendingSnapshot);
    // Normal.
    c.fire(&b.leader.0, Timer::SnapshotRetry(b.other.clone()));
    assert_eq!(effects_since(&c, mark, &b.leader), vec![]);
    assert_eq!(peer_status(&c, &b.leader, &b.other), PeerStatus::Normal);
    // Unknown peer.
    c.fire(&b.leader.0, Timer::SnapshotRetry(sid("zz")));
    assert_eq!(effects_since(&c, mark, &b.leader), vec![]);
}

#[test]
fn a_failure_report_for_a_peer_without_a_running_sender_is_ignored() {
    // Ra acts only on the exit of the sender it is monitoring for that peer (status
    // {sending_snapshot, Pid, _}); a stale report (say, from a sender of an earlier term) must not put
    // an up-to-date peer into backoff.
    let b = far_behind(Bugs::none());
    let mut c = b.c;
    let mark = c.effects.len();
    c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.other.clone() });
    assert_eq!(effects_since(&c, mark, &b.leader), vec![]);
    assert_eq!(peer_status(&c, &b.leader, &b.other), PeerStatus::Normal);
    assert_eq!(c.server(&b.leader.0).peers()[&b.other].snapshot_failures, 0);
    // A duplicate report for a peer already in backoff neither counts nor re-arms the timer.
    c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
    let armed = c.timers[&(b.leader.clone(), Timer::SnapshotRetry(b.lag.clone()))];
    c.now += 1_000;
    let mark = c.effects.len();
    c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
    assert_eq!(effects_since(&c, mark, &b.leader), vec![]);
    assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SnapshotBackoff(1));
    assert_eq!(c.timers[&(b.leader.clone(), Timer::SnapshotRetry(b.lag.clone()))], armed);
}

#[test]
fn stepping_down_cancels_retry_timers_and_ignores_sender_results() {
    let b = far_behind(Bugs::none());
    let mut c = b.c;
    c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
    let term = c.server(&b.leader.0).current_term();
    let mark = c.effects.len();
    let msg = Message::AppendEntries {
        term: Term(term.0 + 1),
        prev_index: LogIndex(0),
        prev_term: Term(0),
        entries: vec![],
        commit: LogIndex(0),
    };
    c.input(&b.leader, Input::Message { from: b.other.clone(), msg });
    let fx = effects_since(&c, mark, &b.leader);
    assert_eq!(*c.server(&b.leader.0).role(), Role::Follower);
    assert!(fx.contains(&Effect::CancelTimer(Timer::SnapshotRetry(b.lag.clone()))));
    assert!(fx.contains(&Effect::CancelTimer(Timer::Heartbeat)));
    assert!(!c.timers.contains_key(&(b.leader.clone(), Timer::SnapshotRetry(b.lag.clone()))));
    assert!(c.server(&b.leader.0).peers().is_empty());
    let mark = c.effects.len();
    c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
    c.input(&b.leader, Input::SnapshotSenderFinished { peer: b.lag.clone(), index: b.snap });
    c.fire(&b.leader.0, Timer::SnapshotRetry(b.lag.clone()));
    assert_eq!(effects_since(&c, mark, &b.leader), vec![]);
}

// ---------------------------------------------------------------------------------------------------
// PR 589 fix 4: a pre-vote from a backoff peer
// ---------------------------------------------------------------------------------------------------

/// `far_behind`, then the sender fails: the follower is in backoff(1) and, getting no heartbeats,
/// times out and pre-votes. Returns the scenario and the effect mark before the pre-vote.
fn backoff_then_pre_vote(bugs: Bugs) -> (Behind, usize) {
    let mut b = far_behind(bugs);
    b.c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
    assert_eq!(peer_status(&b.c, &b.leader, &b.lag), PeerStatus::SnapshotBackoff(1));
    let mark = b.c.effects.len();
    b.c.fire(&b.lag.0, Timer::Election);
    assert_eq!(*b.c.server(&b.lag.0).role(), Role::PreVoteCandidate);
    let term = b.c.server(&b.leader.0).current_term();
    assert!(effects_since(&b.c, mark, &b.lag).iter().any(|e| matches!(e,
        Effect::Send { to, msg: Message::PreVote { term: t, .. } } if *to == b.leader && *t == term)));
    b.c.deliver_all();
    (b, mark)
}

#[test]
fn pre_vote_from_a_backoff_peer_starts_a_sender_at_once() {
    // Ra's leader_pre_vote_sends_snapshot_to_backoff_peer.
    let (b, mark) = backoff_then_pre_vote(Bugs::none());
    let fx = effects_since(&b.c, mark, &b.leader);
    let cancel = fx.iter().position(|e| *e == Effect::CancelTimer(Timer::SnapshotRetry(b.lag.clone())));
    let start = fx.iter().position(|e| *e == Effect::StartSnapshotSender { peer: b.lag.clone(), index: b.snap });
    assert!(cancel.is_some(), "retry timer cancelled: {fx:?}");
    assert!(start.is_some(), "sender started: {fx:?}");
    assert!(cancel < start);
    assert_eq!(senders(&fx).len(), 1);
    assert_eq!(peer_status(&b.c, &b.leader, &b.lag), PeerStatus::SendingSnapshot);
    assert!(!b.c.timers.contains_key(&(b.leader.clone(), Timer::SnapshotRetry(b.lag.clone()))));
    // Enforcing leadership also refreshed the normal peer, and the leader stayed leader.
    assert!(fx.iter().any(|e| matches!(e, Effect::Send { to, msg: Message::AppendEntries { .. } } if *to == b.other)));
    assert_eq!(*b.c.server(&b.leader.0).role(), Role::Leader);
    // The attempt count survives for the next failure.
    assert_eq!(b.c.server(&b.leader.0).peers()[&b.lag].snapshot_failures, 1);
}

#[test]
fn pre_vote_from_a_backoff_peer_is_skipped_with_the_bug_switch() {
    let (b, mark) = backoff_then_pre_vote(Bugs::of(&[Bug::BackoffPeerSkipped]));
    let fx = effects_since(&b.c, mark, &b.leader);
    assert!(senders(&fx).is_empty(), "no sender: {fx:?}");
    assert!(!fx.iter().any(|e| matches!(e, Effect::CancelTimer(Timer::SnapshotRetry(_)))));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Send { to, .. } if *to == b.lag)));
    assert_eq!(peer_status(&b.c, &b.leader, &b.lag), PeerStatus::SnapshotBackoff(1));
    assert!(b.c.timers.contains_key(&(b.leader.clone(), Timer::SnapshotRetry(b.lag.clone()))));
    // The normal peer still got its fresh RPC.
    assert!(fx.iter().any(|e| matches!(e, Effect::Send { to, msg: Message::AppendEntries { .. } } if *to == b.other)));
}

/// Runs the backoff scenario until the leader contacts the lagging follower again; returns how long
/// after the failure that took. The follower restarts when the transfer fails (PR 589 fix 4's world: the
/// sender failed because the follower's node went down): a restarted follower has an election timer,
/// where one still waiting in Ra's `await_condition` after the failed append would wait out its 30 s.
fn time_to_recontact(bugs: Bugs) -> u64 {
    let mut b = far_behind(bugs.clone());
    b.c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
    let lag = b.lag.0.clone();
    b.c.crash_restart(&lag, {
        let mut cfg = config(&lag, &["a", "b", "c"], bugs);
        cfg.snapshot_interval = 5;
        cfg
    });
    let (failed_at, mark) = (b.c.now, b.c.effects.len());
    let leader = b.leader.clone();
    b.c.run_until(|c| !senders(&effects_since(c, mark, &leader)).is_empty());
    assert_eq!(*b.c.server(&leader.0).role(), Role::Leader, "the lagging follower cannot win an election");
    b.c.now - failed_at
}

#[test]
fn backoff_peer_is_recontacted_within_an_election_timeout_only_with_the_fix() {
    let fixed = time_to_recontact(Bugs::none());
    let buggy = time_to_recontact(Bugs::of(&[Bug::BackoffPeerSkipped]));
    assert!(fixed <= 300, "fixed: the follower's first pre-vote brings the sender back ({fixed} ms)");
    assert_eq!(buggy, 5_000, "with the switch only the retry timer does");
}

/// A script without any pre-vote from a peer in backoff: far behind, two failed senders with retries,
/// a successful transfer, catch-up, a pre-vote from a normal follower, a pre-vote while the sender
/// runs, and more commands.
fn script_without_backoff_pre_vote(bugs: Bugs) -> Cluster {
    let b = far_behind(bugs);
    let mut c = b.c;
    for _ in 0..2 {
        c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
        c.fire(&b.leader.0, Timer::SnapshotRetry(b.lag.clone()));
    }
    // A pre-vote from the lagging follower while its sender runs.
    c.fire(&b.lag.0, Timer::Election);
    c.deliver_all();
    transfer_snapshot(&mut c, &b.leader, &b.lag, b.snap, 16);
    c.input(&b.leader, Input::SnapshotSenderFinished { peer: b.lag.clone(), index: b.snap });
    c.deliver_all();
    // A pre-vote from a follower while every peer is normal (its log is up to date, so it may win).
    c.fire(&b.other.0, Timer::Election);
    c.deliver_all();
    let leader = c.elect();
    for i in 0..4u64 {
        c.command(&leader, 7, i, put("z", &format!("{i}")));
    }
    c.run_until(|c| c.replies().len() == 17);
    c
}

#[test]
fn bug_switch_without_a_backoff_pre_vote_behaves_like_the_fix() {
    let fixed = script_without_backoff_pre_vote(Bugs::none());
    let buggy = script_without_backoff_pre_vote(Bugs::of(&[Bug::BackoffPeerSkipped]));
    assert!(fixed.effects.iter().any(|(_, e)| matches!(e, Effect::Send { msg: Message::PreVote { .. }, .. })));
    assert_eq!(fixed.effects, buggy.effects);
    assert_eq!(fixed.timers, buggy.timers);
    assert_eq!(fixed.now, buggy.now);
    for (name, s) in &fixed.servers {
        let t = &buggy.servers[name];
        assert_eq!(s.role(), t.role());
        assert_eq!(s.machine(), t.machine());
        assert_eq!(s.peers(), t.peers());
        assert_eq!(s.commit_index(), t.commit_index());
    }
}

#[test]
fn pre_vote_while_the_sender_runs_starts_no_second_sender() {
    for bugs in [Bugs::none(), Bugs::of(&[Bug::BackoffPeerSkipped])] {
        let b = far_behind(bugs);
        let mut c = b.c;
        let mark = c.effects.len();
        c.fire(&b.lag.0, Timer::Election);
        c.deliver_all();
        let fx = effects_since(&c, mark, &b.leader);
        assert!(senders(&fx).is_empty());
        assert!(!fx.iter().any(|e| matches!(e, Effect::CancelTimer(_))));
        assert_eq!(peer_status(&c, &b.leader, &b.lag), PeerStatus::SendingSnapshot);
    }
}

#[test]
fn pre_vote_from_another_follower_also_recontacts_the_backoff_peer() {
    // Ra's make_all_rpcs covers every backoff peer, whoever sent the pre-vote.
    for (bugs, fixed) in [(Bugs::none(), true), (Bugs::of(&[Bug::BackoffPeerSkipped]), false)] {
        let b = far_behind(bugs);
        let mut c = b.c;
        c.input(&b.leader, Input::SnapshotSenderFailed { peer: b.lag.clone() });
        c.isolated.insert(b.lag.clone());
        let mark = c.effects.len();
        c.fire(&b.other.0, Timer::Election);
        c.deliver_all();
        let fx = effects_since(&c, mark, &b.leader);
        assert_eq!(senders(&fx).len(), usize::from(fixed));
        assert_eq!(fx.contains(&Effect::CancelTimer(Timer::SnapshotRetry(b.lag.clone()))), fixed);
        let expected = if fixed { PeerStatus::SendingSnapshot } else { PeerStatus::SnapshotBackoff(1) };
        assert_eq!(peer_status(&c, &b.leader, &b.lag), expected);
    }
}

// ---------------------------------------------------------------------------------------------------
// The follower's install path
// ---------------------------------------------------------------------------------------------------

struct NoValues;

impl ValueSource for NoValues {
    fn command_at(&mut self, _index: LogIndex) -> Option<KvCommand> {
        None
    }
}

fn follower(name: &str, term: Term) -> (Server, MemLog) {
    let mut log = MemLog::new();
    let (s, _) =
        Server::recover(config(name, &["a", "b", "c"], Bugs::none()), term, None, LogIndex(0), None, &mut log).unwrap();
    (s, log)
}

#[test]
fn follower_install_path_accepts_chunks_acks_and_replies() {
    let (mut s, mut log) = follower("c", Term(1));
    let mut state = KvState::new();
    state.apply(LogIndex(7), &put("x", "1"), &mut NoValues);
    state.apply(LogIndex(15), &put("y", "2"), &mut NoValues);
    state.apply(LogIndex(20), &put("z", "3"), &mut NoValues);
    let meta = SnapshotMeta {
        index: LogIndex(20),
        term: Term(2),
        machine_version: 1,
        cluster: vec!["a".into(), "b".into(), "c".into()],
    };
    let bytes = state.encode();
    let (first, rest) = bytes.split_at(10);
    let a = sid("a");

    let msg =
        Message::InstallSnapshot { term: Term(3), meta: meta.clone(), chunk: 0, last: false, data: first.to_vec() };
    let fx = s.handle(0, Input::Message { from: a.clone(), msg }, &mut log).unwrap();
    assert_eq!(fx[0], Effect::PersistTermAndVote { term: Term(3), voted_for: None });
    assert!(matches!(fx[1], Effect::SetTimer { timer: Timer::Election, .. }));
    assert_eq!(
        fx[2..],
        [
            Effect::SetTimer { timer: Timer::ReceiveSnapshot, after_ms: RECEIVE_SNAPSHOT_TIMEOUT_MS },
            Effect::AcceptSnapshotChunk {
                meta: meta.clone(),
                chunk: 0,
                last: false,
                data: first.to_vec(),
                leader: a.clone()
            },
            Effect::Send { to: a.clone(), msg: Message::InstallSnapshotAck { term: Term(3), chunk: 0 } },
        ]
    );
    assert_eq!((s.current_term(), s.leader(), s.role()), (Term(3), Some(&a), &Role::Follower));

    // Receiving a snapshot suspends elections.
    let fx = s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
    assert_eq!(fx.len(), 1);
    assert!(matches!(fx[0], Effect::SetTimer { timer: Timer::Election, .. }));
    assert_eq!(*s.role(), Role::Follower);

    let msg = Message::InstallSnapshot { term: Term(3), meta: meta.clone(), chunk: 1, last: true, data: rest.to_vec() };
    let fx = s.handle(0, Input::Message { from: a.clone(), msg }, &mut log).unwrap();
    assert!(matches!(fx[0], Effect::SetTimer { timer: Timer::Election, .. }));
    assert_eq!(
        fx[1..],
        [
            Effect::SetTimer { timer: Timer::ReceiveSnapshot, after_ms: RECEIVE_SNAPSHOT_TIMEOUT_MS },
            Effect::AcceptSnapshotChunk {
                meta: meta.clone(),
                chunk: 1,
                last: true,
                data: rest.to_vec(),
                leader: a.clone()
            },
            Effect::Send { to: a.clone(), msg: Message::InstallSnapshotAck { term: Term(3), chunk: 1 } },
        ]
    );

    // Storage completed the accept: the log is reset to the snapshot.
    log.reset_to_snapshot(meta.index, meta.term);
    let fx = s
        .handle(0, Input::SnapshotInstalled { meta: meta.clone(), state: bytes.clone(), leader: a.clone() }, &mut log)
        .unwrap();
    assert_eq!(s.machine(), &state);
    assert_eq!(s.commit_index(), LogIndex(20));
    assert_eq!(s.last_applied(), LogIndex(20));
    assert_eq!(
        fx,
        vec![
            Effect::CancelTimer(Timer::ReceiveSnapshot),
            Effect::PersistLastApplied(LogIndex(20)),
            Effect::Send {
                to: a.clone(),
                msg: Message::AppendEntriesReply {
                    term: Term(3),
                    success: true,
                    next_index: LogIndex(21),
                    last_index: LogIndex(20),
                    last_term: Term(2),
                },
            },
        ]
    );

    // Replication continues above the snapshot.
    let entry = |index: u64, cmd: KvCommand| raft_core::consensus::server::Entry {
        index: LogIndex(index),
        term: Term(3),
        payload: EntryBody::Command { client: raft_core::consensus::server::ClientId(1), request: index, command: cmd }
            .encode(),
    };
    let msg = Message::AppendEntries {
        term: Term(3),
        prev_index: LogIndex(20),
        prev_term: Term(2),
        entries: vec![entry(21, put("w", "4"))],
        commit: LogIndex(21),
    };
    let fx = s.handle(0, Input::Message { from: a.clone(), msg }, &mut log).unwrap();
    assert_eq!(log.last_index_term(), (LogIndex(21), Term(3)));
    assert_eq!(s.last_applied(), LogIndex(21));
    assert_eq!(s.machine().index_of("w"), Some(LogIndex(21)));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Send { .. })), "answered once written: {fx:?}");
    log.write_all();
    let written = s.handle(0, Input::Written, &mut log).unwrap();
    assert!(
        written
            .iter()
            .any(|e| matches!(e, Effect::Send { msg: Message::AppendEntriesReply { success: true, .. }, .. }))
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::Reply { .. })), "followers do not answer clients");

    // Elections resume once the install is over.
    let fx = s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
    assert_eq!(*s.role(), Role::PreVoteCandidate);
    assert_eq!(fx.iter().filter(|e| matches!(e, Effect::Send { msg: Message::PreVote { .. }, .. })).count(), 2);
}

#[test]
fn install_snapshot_from_a_stale_term_is_not_accepted() {
    let (mut s, mut log) = follower("c", Term(5));
    let meta = SnapshotMeta { index: LogIndex(9), term: Term(4), machine_version: 1, cluster: vec![] };
    let msg = Message::InstallSnapshot { term: Term(4), meta, chunk: 0, last: true, data: KvState::new().encode() };
    let fx = s.handle(0, Input::Message { from: sid("a"), msg }, &mut log).unwrap();
    assert!(!fx.iter().any(|e| matches!(e, Effect::AcceptSnapshotChunk { .. })));
    assert_eq!(s.current_term(), Term(5));
    assert_eq!(s.leader(), None);
    // Not receiving: its election timer still starts a pre-vote.
    s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
    assert_eq!(*s.role(), Role::PreVoteCandidate);
}

#[test]
fn install_snapshot_makes_a_candidate_follow_the_sender() {
    let (mut s, mut log) = follower("c", Term(2));
    s.handle(0, Input::Timer(Timer::Election), &mut log).unwrap();
    assert_eq!(*s.role(), Role::PreVoteCandidate);
    let meta = SnapshotMeta { index: LogIndex(9), term: Term(2), machine_version: 1, cluster: vec![] };
    let msg = Message::InstallSnapshot { term: Term(2), meta, chunk: 0, last: false, data: vec![0, 0] };
    let fx = s.handle(0, Input::Message { from: sid("b"), msg }, &mut log).unwrap();
    assert_eq!(*s.role(), Role::Follower);
    assert_eq!(s.leader(), Some(&sid("b")));
    assert_eq!(s.current_term(), Term(2));
    assert!(!fx.iter().any(|e| matches!(e, Effect::PersistTermAndVote { .. })), "same term: nothing to persist");
    assert!(fx.iter().any(|e| matches!(e, Effect::AcceptSnapshotChunk { chunk: 0, .. })));
}
