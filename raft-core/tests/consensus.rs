//! Unit tests of the pure consensus server, driven by inputs and asserting effects: the KV machine
//! (put/get/cas, live indexes, encodings), entry bodies, restart recovery, and KV commands through a
//! replicated cluster.

mod cluster;

use std::collections::BTreeMap;

use cluster::*;
use raft_core::consensus::RaftLog;
use raft_core::consensus::kv::{KvCommand, KvMachine, KvResult, KvState, ValueSource};
use raft_core::consensus::mem_log::MemLog;
use raft_core::consensus::server::{ClientId, Effect, EntryBody, Input, Message, Role, Server, Timer};
use raft_core::storage::snapshot::LiveIndexes;
use raft_core::{Bugs, LogIndex, Seq, Term};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

#[test]
fn three_servers_elect_one_leader_and_replicate() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    let leader = c.elect();
    c.command(&leader, 1, 1, put("k", "v1"));
    c.command(&leader, 1, 2, get("k"));
    c.run_until(|c| c.replies().len() == 2);
    assert_eq!(c.replies()[1].2, KvResult::Value(Some(b"v1".to_vec())));
    let followers: Vec<_> =
        c.servers.iter().filter(|(_, s)| *s.role() == Role::Follower).count().to_string().into_bytes();
    assert_eq!(followers, b"2");
}

// ---------------------------------------------------------------------------------------------------
// The KV machine on its own
// ---------------------------------------------------------------------------------------------------

/// A log for the machine: index → command.
#[derive(Default)]
struct Entries(BTreeMap<u64, KvCommand>);

impl ValueSource for Entries {
    fn command_at(&mut self, index: LogIndex) -> Option<KvCommand> {
        self.0.get(&index.0).cloned()
    }
}

/// Applies `cmd` at `index`, recording it in the log first (as the server does: entries are in the
/// log before they apply).
fn apply(state: &mut KvState, log: &mut Entries, index: u64, cmd: KvCommand) -> KvResult {
    log.0.insert(index, cmd.clone());
    state.apply(LogIndex(index), &cmd, log)
}

fn cas(key: &str, expected: Option<&str>, new: &str) -> KvCommand {
    KvCommand::Cas { key: key.into(), expected: expected.map(|e| e.as_bytes().to_vec()), new: new.as_bytes().to_vec() }
}

fn value(v: &str) -> KvResult {
    KvResult::Value(Some(v.as_bytes().to_vec()))
}

fn live(indexes: &[u64]) -> Seq {
    Seq::from_indexes(indexes.iter().map(|i| LogIndex(*i)))
}

#[test]
fn kv_put_and_get() {
    let (mut s, mut log) = (KvState::new(), Entries::default());
    assert!(s.is_empty());
    assert_eq!(apply(&mut s, &mut log, 1, get("a")), KvResult::Value(None));
    assert_eq!(apply(&mut s, &mut log, 2, put("a", "1")), KvResult::Ok);
    assert_eq!(apply(&mut s, &mut log, 3, get("a")), value("1"));
    assert_eq!(apply(&mut s, &mut log, 4, put("a", "2")), KvResult::Ok);
    assert_eq!(apply(&mut s, &mut log, 5, get("a")), value("2"));
    assert_eq!(apply(&mut s, &mut log, 6, get("b")), KvResult::Value(None));
    assert_eq!(apply(&mut s, &mut log, 7, put("", "")), KvResult::Ok, "empty key and value are fine");
    assert_eq!(apply(&mut s, &mut log, 8, get("")), KvResult::Value(Some(vec![])));
    assert_eq!(s.len(), 2);
    assert_eq!(s.index_of("a"), Some(LogIndex(4)));
    assert_eq!(s.index_of(""), Some(LogIndex(7)));
    assert_eq!(s.index_of("b"), None);
}

#[test]
fn kv_get_reads_the_value_from_the_log_entry() {
    let (mut s, mut log) = (KvState::new(), Entries::default());
    apply(&mut s, &mut log, 5, put("k", "from-entry-5"));
    // The state holds only the index: whatever entry 5 holds is the value.
    assert_eq!(s.index_of("k"), Some(LogIndex(5)));
    log.0.insert(5, put("k", "rewritten"));
    assert_eq!(apply(&mut s, &mut log, 6, get("k")), value("rewritten"));
    // A cas entry's `new` is the value too.
    apply(&mut s, &mut log, 7, cas("k", Some("rewritten"), "by-cas"));
    assert_eq!(s.index_of("k"), Some(LogIndex(7)));
    assert_eq!(apply(&mut s, &mut log, 8, get("k")), value("by-cas"));
}

#[test]
fn kv_cas_semantics() {
    let (mut s, mut log) = (KvState::new(), Entries::default());
    // Expected None on an absent key: applies.
    assert_eq!(apply(&mut s, &mut log, 1, cas("k", None, "1")), KvResult::Cas { applied: true, previous: None });
    assert_eq!(s.index_of("k"), Some(LogIndex(1)));
    assert_eq!(apply(&mut s, &mut log, 2, get("k")), value("1"));
    // Expected None on a present key: does not apply, returns the value.
    assert_eq!(
        apply(&mut s, &mut log, 3, cas("k", None, "x")),
        KvResult::Cas { applied: false, previous: Some(b"1".to_vec()) }
    );
    // Mismatch: not applied, previous value returned, index unchanged.
    assert_eq!(
        apply(&mut s, &mut log, 4, cas("k", Some("nope"), "x")),
        KvResult::Cas { applied: false, previous: Some(b"1".to_vec()) }
    );
    assert_eq!(s.index_of("k"), Some(LogIndex(1)));
    assert_eq!(s.live_indexes(), live(&[1]));
    // Match: applied, previous returned, the key now points at the cas entry.
    assert_eq!(
        apply(&mut s, &mut log, 5, cas("k", Some("1"), "2")),
        KvResult::Cas { applied: true, previous: Some(b"1".to_vec()) }
    );
    assert_eq!(s.index_of("k"), Some(LogIndex(5)));
    assert_eq!(apply(&mut s, &mut log, 6, get("k")), value("2"));
    // Expected Some on an absent key: not applied, previous None, key stays absent.
    assert_eq!(
        apply(&mut s, &mut log, 7, cas("other", Some("1"), "x")),
        KvResult::Cas { applied: false, previous: None }
    );
    assert_eq!(s.index_of("other"), None);
    assert_eq!(s.len(), 1);
}

#[test]
fn kv_live_indexes_are_the_indexes_keys_point_to() {
    let (mut s, mut log) = (KvState::new(), Entries::default());
    assert_eq!(s.live_indexes(), Seq::new());
    apply(&mut s, &mut log, 1, put("a", "1"));
    apply(&mut s, &mut log, 2, put("b", "1"));
    apply(&mut s, &mut log, 3, get("a"));
    apply(&mut s, &mut log, 4, put("c", "1"));
    assert_eq!(s.live_indexes(), live(&[1, 2, 4]), "a get is never live");
    apply(&mut s, &mut log, 5, put("a", "2"));
    assert_eq!(s.live_indexes(), live(&[2, 4, 5]), "overwriting a drops its old index");
    apply(&mut s, &mut log, 6, cas("b", Some("wrong"), "x"));
    assert_eq!(s.live_indexes(), live(&[2, 4, 5]), "a failed cas changes nothing");
    apply(&mut s, &mut log, 7, cas("b", Some("1"), "2"));
    assert_eq!(s.live_indexes(), live(&[4, 5, 7]));
    // Randomised: live indexes are always exactly the set of indexes the keys point at.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for i in 8..500u64 {
        let key = format!("k{}", rng.next_u32() % 10);
        let cmd = match rng.next_u32() % 3 {
            0 => put(&key, &format!("{i}")),
            1 => get(&key),
            _ => cas(&key, None, &format!("{i}")),
        };
        apply(&mut s, &mut log, i, cmd);
        let keys = ["a", "b", "c"].map(String::from).into_iter().chain((0..10).map(|k| format!("k{k}")));
        let pointed: Vec<LogIndex> = keys.filter_map(|k| s.index_of(&k)).collect();
        assert_eq!(s.live_indexes(), Seq::from_indexes(pointed.clone()));
        assert_eq!(s.live_indexes().len(), pointed.len() as u64, "keys never share an index");
    }
}

#[test]
fn kv_state_encode_decode_round_trip() {
    let (mut s, mut log) = (KvState::new(), Entries::default());
    assert_eq!(KvState::decode(&s.encode()), Some(s.clone()));
    apply(&mut s, &mut log, 3, put("alpha", "1"));
    apply(&mut s, &mut log, 9, put("", "empty key"));
    apply(&mut s, &mut log, u64::MAX, put("ключ", "unicode"));
    let bytes = s.encode();
    let back = KvState::decode(&bytes).expect("round trip");
    assert_eq!(back, s);
    assert_eq!(back.live_indexes(), s.live_indexes());
    assert_eq!(back.index_of("ключ"), Some(LogIndex(u64::MAX)));
    // Truncated, extended or corrupt bytes are rejected, never misread or panicked on.
    for cut in 0..bytes.len() {
        assert_eq!(KvState::decode(&bytes[..cut]), None, "truncated at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(KvState::decode(&longer), None);
    assert_eq!(KvState::decode(&[0xff, 0xff, 0xff, 0xff]), None, "a huge count with no keys");
    let mut bad_utf8 = KvState::new().encode();
    bad_utf8[3] = 1;
    bad_utf8.extend_from_slice(&[0, 0, 0, 1, 0xff]);
    bad_utf8.extend_from_slice(&1u64.to_be_bytes());
    assert_eq!(KvState::decode(&bad_utf8), None);
}

#[test]
fn kv_command_encode_decode_round_trip() {
    let commands = [
        put("k", "v"),
        put("", ""),
        KvCommand::Put { key: "ключ".into(), value: vec![0, 1, 2, 255] },
        get("k"),
        get(""),
        cas("k", None, "new"),
        cas("k", Some("old"), "new"),
        cas("", Some(""), ""),
        KvCommand::Put { key: "big".into(), value: vec![7; 100_000] },
    ];
    for cmd in commands {
        let bytes = cmd.encode();
        assert_eq!(KvCommand::decode(&bytes), Some(cmd.clone()), "{cmd:?}");
        for cut in 0..bytes.len().min(64) {
            assert_eq!(KvCommand::decode(&bytes[..cut]), None, "{cmd:?} truncated at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(KvCommand::decode(&longer), None, "{cmd:?} with a trailing byte");
    }
    assert_eq!(KvCommand::decode(&[]), None);
    assert_eq!(KvCommand::decode(&[4, 0, 0, 0, 0]), None, "unknown tag");
    let mut bad_flag = cas("k", None, "v").encode();
    bad_flag[6] = 2;
    assert_eq!(KvCommand::decode(&bad_flag), None, "cas expected-flag other than 0/1");
    assert_eq!(KvCommand::decode(&[2, 0, 0, 0, 1, 0xff]), None, "a key that is not UTF-8");
    assert_eq!(KvCommand::decode(&[2, 0xff, 0xff, 0xff, 0xff, b'k']), None, "a length past the end");
}

#[test]
fn decoders_never_panic_on_random_bytes() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let valid = [put("key", "value").encode(), cas("k", Some("e"), "n").encode(), get("g").encode()];
    let mut decoded = 0;
    for case in 0..1_000u32 {
        let mut bytes = if case % 2 == 0 {
            let len = (rng.next_u32() % 40) as usize;
            let mut b = vec![0u8; len];
            rng.fill_bytes(&mut b);
            // Bias toward valid tags so the decoders get past their first byte.
            if let Some(first) = b.first_mut() {
                *first %= 5;
            }
            b
        } else {
            // A valid encoding with a few bytes flipped.
            let mut b = valid[case as usize % valid.len()].clone();
            for _ in 0..1 + rng.next_u32() % 3 {
                let at = (rng.next_u32() as usize) % b.len();
                b[at] = rng.next_u32() as u8;
            }
            b
        };
        if let Some(cmd) = KvCommand::decode(&bytes) {
            decoded += 1;
            assert_eq!(cmd.encode(), bytes, "a decoded command re-encodes to the same bytes");
        }
        if let Some(state) = KvState::decode(&bytes) {
            assert_eq!(KvState::decode(&state.encode()), Some(state));
        }
        let _ = KvMachine.live_indexes(1, &bytes);
        // The same bytes inside an entry payload.
        let mut payload = vec![1u8];
        payload.extend_from_slice(&[0; 16]);
        payload.append(&mut bytes);
        if let Some(body) = EntryBody::decode(&payload) {
            assert_eq!(&*body.encode(), &payload[..]);
        }
    }
    assert!(decoded > 0, "some flipped encodings still decode (flips inside values)");
}

#[test]
fn entry_body_round_trip() {
    let noop = EntryBody::Noop;
    assert_eq!(&*noop.encode(), &[0u8][..]);
    assert_eq!(EntryBody::decode(&noop.encode()), Some(EntryBody::Noop));
    assert_eq!(EntryBody::decode(&[]), Some(EntryBody::Noop), "Ra's index-0 entry is empty");
    for (client, request, command) in [
        (0, 0, put("k", "v")),
        (u64::MAX, u64::MAX, get("")),
        (42, 7, cas("k", None, "n")),
        (1, 2, cas("k", Some("o"), "")),
    ] {
        let body = EntryBody::Command { client: ClientId(client), request, command };
        let bytes = body.encode();
        assert_eq!(bytes[0], 1);
        assert_eq!(EntryBody::decode(&bytes), Some(body.clone()));
        for cut in 1..bytes.len() {
            assert_eq!(EntryBody::decode(&bytes[..cut]), None, "{body:?} truncated at {cut}");
        }
    }
    assert_eq!(EntryBody::decode(&[2]), None, "unknown tag");
    assert_eq!(EntryBody::decode(&[1; 17]), None, "a command header without a command");
}

#[test]
fn kv_machine_live_indexes_agree_with_the_state() {
    let (mut s, mut log) = (KvState::new(), Entries::default());
    assert_eq!(KvMachine.live_indexes(1, &s.encode()), Ok(Seq::new()));
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for i in 1..200u64 {
        let key = format!("k{}", rng.next_u32() % 13);
        apply(&mut s, &mut log, i, put(&key, "v"));
        if i % 17 == 0 {
            // Any machine version: live indexes depend on the state alone.
            assert_eq!(KvMachine.live_indexes(1, &s.encode()), Ok(s.live_indexes()));
            assert_eq!(KvMachine.live_indexes(99, &s.encode()), Ok(s.live_indexes()));
        }
    }
    assert_eq!(KvMachine.live_indexes(1, &s.encode()).unwrap().len(), s.len() as u64);
    assert!(KvMachine.live_indexes(1, b"not a state").is_err());
    assert!(KvMachine.live_indexes(1, &[]).is_err());
}

// ---------------------------------------------------------------------------------------------------
// KV through a replicated cluster
// ---------------------------------------------------------------------------------------------------

#[test]
fn cluster_put_get_cas_replies_in_order_and_replicas_agree() {
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    let leader = c.elect();
    let commands = [
        cas("k", None, "1"),
        cas("k", None, "x"),
        cas("k", Some("2"), "x"),
        cas("k", Some("1"), "2"),
        get("k"),
        put("k", "3"),
        get("k"),
        get("absent"),
    ];
    for (i, cmd) in commands.iter().enumerate() {
        c.command(&leader, 4, i as u64, cmd.clone());
    }
    c.run_until(|c| c.replies().len() == commands.len());
    let replies: Vec<(u64, KvResult)> = c.replies().into_iter().map(|(_, r, res)| (r, res)).collect();
    assert_eq!(
        replies,
        vec![
            (0, KvResult::Cas { applied: true, previous: None }),
            (1, KvResult::Cas { applied: false, previous: Some(b"1".to_vec()) }),
            (2, KvResult::Cas { applied: false, previous: Some(b"1".to_vec()) }),
            (3, KvResult::Cas { applied: true, previous: Some(b"1".to_vec()) }),
            (4, value("2")),
            (5, KvResult::Ok),
            (6, value("3")),
            (7, KvResult::Value(None)),
        ]
    );
    // Only the leader replies; the followers apply the same commands to the same state.
    assert!(c.effects.iter().all(|(n, e)| !matches!(e, Effect::Reply { .. }) || *n == leader));
    c.fire(&leader.0, Timer::Heartbeat);
    c.deliver_all();
    let leader_state = c.machine(&leader.0).clone();
    for name in ["a", "b", "c"] {
        assert_eq!(c.machine(name), &leader_state, "{name}");
        assert_eq!(c.server(name).last_applied(), c.server(&leader.0).last_applied(), "{name}");
    }
}

#[test]
fn a_new_leader_with_an_inherited_commit_index_keeps_serving() {
    // A follower that applied entries, then wins an election: its commit index comes from the old
    // term while its match indexes start at zero (this used to trip the leader's debug invariant).
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    let first = c.elect();
    for i in 0..5u64 {
        c.command(&first, 1, i, put("k", &format!("{i}")));
    }
    c.run_until(|c| c.replies().len() == 5);
    c.fire(&first.0, Timer::Heartbeat);
    c.deliver_all();
    let next = c.servers.keys().find(|s| **s != first).cloned().unwrap();
    let inherited = c.server(&next.0).commit_index();
    assert!(inherited >= LogIndex(6), "the follower learnt the commit index ({inherited})");
    c.isolated.insert(first.clone());
    c.fire(&next.0, Timer::Election);
    let leader = c.elect();
    assert_eq!(leader, next);
    assert!(c.server(&leader.0).current_term() > c.server(&first.0).current_term());
    assert!(c.server(&leader.0).commit_index() >= inherited);
    c.command(&leader, 2, 0, get("k"));
    c.command(&leader, 2, 1, put("k", "new"));
    c.run_until(|c| c.replies().len() == 7);
    assert_eq!(c.replies()[5].2, value("4"));
    c.isolated.remove(&first);
    c.fire(&leader.0, Timer::Heartbeat);
    c.deliver_all();
    assert_eq!(*c.server(&first.0).role(), Role::Follower);
    assert_eq!(c.machine(&first.0), c.machine(&leader.0));
}

// ---------------------------------------------------------------------------------------------------
// Restart recovery
// ---------------------------------------------------------------------------------------------------

/// The commands at indexes 2..=10 (1 is a noop).
fn recovery_commands() -> Vec<KvCommand> {
    vec![
        put("a", "2"),            // 2
        put("b", "3"),            // 3  (b stays here: live below the snapshot)
        put("a", "4"),            // 4
        get("a"),                 // 5
        put("c", "6"),            // 6  <- snapshot
        cas("b", Some("3"), "7"), // 7  reads b from a compacted but live entry
        get("a"),                 // 8
        put("a", "9"),            // 9
        cas("c", None, "x"),      // 10 fails
    ]
}

/// A log of `recovery_commands` (term 1, written) compacted at `snapshot` (if any) keeping the live
/// indexes, and the machine state at the snapshot.
fn recovery_log(snapshot: Option<u64>) -> (MemLog, Option<Vec<u8>>) {
    let mut log = MemLog::new();
    log.append(LogIndex(1), Term(1), EntryBody::Noop.encode()).unwrap();
    for (i, cmd) in recovery_commands().into_iter().enumerate() {
        let body = EntryBody::Command { client: ClientId(3), request: i as u64, command: cmd };
        log.append(LogIndex(i as u64 + 2), Term(1), body.encode()).unwrap();
    }
    log.write_all();
    let Some(snap) = snapshot else { return (log, None) };
    let state = replayed(snap);
    let keep: Vec<LogIndex> = state.live_indexes().iter().collect();
    log.install_snapshot(LogIndex(snap), Term(1), &keep);
    (log, Some(state.encode()))
}

/// The machine after applying indexes 2..=`upto` directly.
fn replayed(upto: u64) -> KvState {
    let (mut s, mut log) = (KvState::new(), Entries::default());
    for (i, cmd) in recovery_commands().into_iter().enumerate() {
        let index = i as u64 + 2;
        if index <= upto {
            apply(&mut s, &mut log, index, cmd);
        }
    }
    s
}

fn recover(last_applied: u64, snapshot: Option<u64>) -> (Server, Vec<Effect>) {
    let (mut log, state) = recovery_log(snapshot);
    let mut cfg = config("a", &["a", "b", "c"], Bugs::none());
    cfg.snapshot_interval = 2;
    Server::recover(cfg, Term(3), Some(sid("b")), LogIndex(last_applied), state.as_deref(), &mut log).unwrap()
}

#[test]
fn recovery_replays_from_the_snapshot_to_last_applied() {
    let (s, fx) = recover(9, Some(6));
    assert_eq!(s.machine(), &replayed(9));
    assert_eq!(s.machine().index_of("b"), Some(LogIndex(7)), "the cas read b's live entry below the snapshot");
    assert_eq!(s.last_applied(), LogIndex(9));
    assert_eq!(s.commit_index(), LogIndex(9));
    assert_eq!((s.role(), s.current_term(), s.voted_for()), (&Role::Follower, Term(3), Some(&sid("b"))));
    assert_eq!(s.leader(), None);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Reply { .. } | Effect::Send { .. })), "{fx:?}");
    assert!(!fx.iter().any(|e| matches!(e, Effect::TakeSnapshot { .. })), "no snapshot during replay");
    assert_eq!(fx.len(), 2, "{fx:?}");
    assert_eq!(fx[0], Effect::PersistLastApplied(LogIndex(9)));
    assert!(matches!(fx[1], Effect::SetTimer { timer: Timer::Election, .. }));
}

#[test]
fn recovery_uses_the_snapshot_index_when_last_applied_is_behind_it() {
    let (s, fx) = recover(3, Some(6));
    assert_eq!(s.machine(), &replayed(6));
    assert_eq!(s.last_applied(), LogIndex(6));
    assert_eq!(s.commit_index(), LogIndex(6));
    assert_eq!(fx.len(), 1, "nothing replayed, only the election timer: {fx:?}");
    assert!(matches!(fx[0], Effect::SetTimer { timer: Timer::Election, .. }));
}

#[test]
fn recovery_without_a_snapshot_replays_the_log_and_never_replies() {
    let (s, fx) = recover(10, None);
    assert_eq!(s.machine(), &replayed(10));
    assert_eq!(s.last_applied(), LogIndex(10));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Reply { .. } | Effect::Redirect { .. })), "{fx:?}");
    let (s, _) = recover(0, None);
    assert_eq!(s.machine(), &KvState::new());
    assert_eq!(s.last_applied(), LogIndex(0));
}

#[test]
fn recovery_caps_last_applied_at_the_last_index() {
    let (s, _) = recover(1_000, Some(6));
    assert_eq!(s.last_applied(), LogIndex(10));
    assert_eq!(s.commit_index(), LogIndex(10));
    assert_eq!(s.machine(), &replayed(10));
}

#[test]
fn recovered_server_serves_reads_after_winning_an_election() {
    // Recover all three members from the same compacted log; the elected leader answers a get for a
    // key whose value lives below its snapshot.
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    for name in ["a", "b", "c"] {
        let (mut log, state) = recovery_log(Some(6));
        let cfg = config(name, &["a", "b", "c"], Bugs::none());
        let (s, _) = Server::recover(cfg, Term(3), None, LogIndex(8), state.as_deref(), &mut log).unwrap();
        assert_eq!(s.machine(), &replayed(8));
        c.servers.insert(sid(name), s);
        c.logs.insert(sid(name), log);
    }
    let leader = c.elect();
    c.command(&leader, 9, 0, get("b"));
    c.command(&leader, 9, 1, get("a"));
    c.run_until(|c| c.replies().iter().filter(|r| r.0 == 9).count() == 2);
    // Entries 9 and 10 (above every last_applied) commit under the new leader's noop before the gets.
    let gets: Vec<KvResult> = c.replies().into_iter().filter(|r| r.0 == 9).map(|r| r.2).collect();
    assert_eq!(gets, vec![value("7"), value("9")]);
    let log = c.log(&leader.0);
    assert!(log.fetch(LogIndex(2)).unwrap().is_none(), "a's overwritten entry was compacted");
    assert!(log.fetch(LogIndex(3)).unwrap().is_some(), "b's entry was live at the snapshot");
}

/// Ra's `follower(enter)` and `trigger_election` (`ra_server_proc`): a server whose log holds nothing
/// above index 0 arms no election timer — not at its start, not when it steps down — and waits for a
/// trigger or a leader; a server with an entry arms one at recovery. A trigger makes a follower
/// campaign at once (a pre-vote to every peer); a leader ignores it; granting a vote arms nothing.
#[test]
fn new_servers_wait_for_a_trigger_and_recovered_ones_arm_their_timer() {
    struct Case {
        what: &'static str,
        entries: u64,
        timer_at_recovery: bool,
    }
    let cases = [
        Case { what: "an empty log (a new server)", entries: 0, timer_at_recovery: false },
        Case { what: "a log with one entry", entries: 1, timer_at_recovery: true },
    ];
    for case in cases {
        let mut log = MemLog::new();
        for i in 1..=case.entries {
            log.append(LogIndex(i), Term(1), EntryBody::Noop.encode()).unwrap();
        }
        log.write_all();
        let (mut s, fx) =
            Server::recover(config("a", &["a", "b", "c"], Bugs::none()), Term(1), None, LogIndex(0), None, &mut log)
                .unwrap();
        let armed = fx.iter().any(|e| matches!(e, Effect::SetTimer { timer: Timer::Election, .. }));
        assert_eq!(armed, case.timer_at_recovery, "{}: {fx:?}", case.what);
        // A vote granted to a peer as up to date arms nothing (Ra's `handle_follower(#request_vote_rpc{})`).
        let vote = Message::RequestVote { term: Term(2), last_index: LogIndex(5), last_term: Term(1) };
        let fx = s.handle(0, Input::Message { from: sid("b"), msg: vote }, &mut log).unwrap();
        assert!(fx.iter().any(|e| matches!(e, Effect::PersistTermAndVote { .. })), "{}: {fx:?}", case.what);
        let armed = fx.iter().any(|e| matches!(e, Effect::SetTimer { timer: Timer::Election, .. }));
        assert_eq!(armed, case.timer_at_recovery, "{}: stepping down to term 2: {fx:?}", case.what);
        // The trigger: a pre-vote round at once.
        let fx = s.handle(0, Input::TriggerElection, &mut log).unwrap();
        assert_eq!(s.role(), &Role::PreVoteCandidate, "{}", case.what);
        let pre_votes = fx.iter().filter(|e| matches!(e, Effect::Send { .. })).count();
        assert_eq!(pre_votes, 2, "{}: {fx:?}", case.what);
    }
    // A leader ignores a trigger (Ra's `leader({call, From}, trigger_election, …)` only replies).
    let mut c = Cluster::new(&["a", "b", "c"], Bugs::none());
    c.deliver_all();
    assert_eq!(c.leaders(), vec![sid("a")], "the triggered member leads");
    let term = c.server("a").current_term();
    c.input(&sid("a"), Input::TriggerElection);
    c.deliver_all();
    assert_eq!((c.leaders(), c.server("a").current_term()), (vec![sid("a")], term));
}
