//! Negative tests: every checker rejects a constructed bad input (and accepts the matching good one).
//! None relies on a bug in the system under test; each builds the bad observation by hand — a log with
//! a hole, two leaders in a term, a referenced segment that is not on disk, a disk that cannot boot.

use std::collections::{BTreeMap, BTreeSet};

use raft_core::consensus::RaftLog;
use raft_core::consensus::kv::{KvCommand, KvState, ValueSource};
use raft_core::consensus::server::Role;
use raft_core::storage::StorageError;
use raft_core::storage::durable_files::{ServerConfig, write_config};
use raft_core::storage::segref::SegRef;
use raft_core::storage::shared::Directory;
use raft_core::{Bugs, LogIndex, Payload, Seq, TableId, Term, Uid};
use scenarios::WorldSpec;
use sim::checkers::{self, Checkers, ContactObligations, OperationKind};
use sim::{Outcome, World, WorldConfig};
use vfs::{FileSystem, OpenOptions, SimFs, SimFsConfig};

/// A log built entry by entry, holes and all.
#[derive(Debug, Clone)]
struct HandLog {
    entries: BTreeMap<u64, (Term, Vec<u8>)>,
    snapshot: Option<(LogIndex, Term)>,
    first: LogIndex,
    written: (LogIndex, Term),
    /// The snapshot's live indexes.
    live: Seq,
}

impl HandLog {
    /// Entries `(index, term)` with payload `[index as u8]`, all written.
    fn of(entries: &[(u64, u64)]) -> HandLog {
        let entries: BTreeMap<u64, (Term, Vec<u8>)> =
            entries.iter().map(|&(i, t)| (i, (Term(t), vec![i as u8]))).collect();
        let first = LogIndex(entries.keys().next().copied().unwrap_or(0));
        let written = entries.iter().next_back().map_or((LogIndex(0), Term(0)), |(i, (t, _))| (LogIndex(*i), *t));
        HandLog { entries, snapshot: None, first, written, live: Seq::new() }
    }
}

impl RaftLog for HandLog {
    fn last_index_term(&self) -> (LogIndex, Term) {
        self.written
    }
    fn last_written(&self) -> (LogIndex, Term) {
        self.written
    }
    fn first_index(&self) -> LogIndex {
        self.first
    }
    fn snapshot_index_term(&self) -> Option<(LogIndex, Term)> {
        self.snapshot
    }
    fn fetch(&mut self, index: LogIndex) -> Result<Option<(Term, Payload)>, StorageError> {
        Ok(self.entries.get(&index.0).map(|(t, p)| (*t, Payload::from(&p[..]))))
    }
    fn append(&mut self, index: LogIndex, term: Term, payload: Payload) -> Result<(), StorageError> {
        self.entries.insert(index.0, (term, payload.to_vec()));
        Ok(())
    }
    fn write_sparse(&mut self, index: LogIndex, term: Term, payload: Payload) -> Result<(), StorageError> {
        self.append(index, term, payload)
    }
    fn snapshot_live_indexes(&self) -> Seq {
        self.live.clone()
    }
    fn has_pending(&self) -> bool {
        false
    }
    fn pending_may_be_lost(&self) -> bool {
        false
    }
    fn can_write(&self) -> bool {
        true
    }
    fn set_last_index(&mut self, index: LogIndex) -> Result<bool, StorageError> {
        self.entries.retain(|i, _| *i <= index.0);
        Ok(true)
    }
}

fn disk() -> SimFs {
    SimFs::new(SimFsConfig {
        seed: 7,
        sector_size: 512,
        capacity_bytes: 1 << 30,
        max_file_size: 1 << 30,
        record_ops: false,
    })
}

/// Raft's Leader Completeness concerns leaders of higher terms than the committed entry's: what a new
/// leader of term T must hold is the highest entry committed in a term before T.
#[test]
fn a_new_leader_is_judged_by_the_entries_committed_before_its_term() {
    let mut c = Checkers::new(4_000);
    let voters = BTreeSet::from([0, 1, 2]);
    c.commit_advanced(0, LogIndex(364), Term(2), voters.clone());
    c.commit_advanced(0, LogIndex(365), Term(4), voters.clone());
    c.commit_advanced(1, LogIndex(900), Term(1), voters);
    let cases = [
        (2, None),
        (3, Some((LogIndex(364), Term(2)))),
        (4, Some((LogIndex(364), Term(2)))),
        (5, Some((LogIndex(365), Term(4)))),
    ];
    for (term, want) in cases {
        assert_eq!(c.highest_committed_before(0, Term(term)), want, "a leader of term {term}");
    }
    assert_eq!(c.highest_committed(0), Some((LogIndex(365), Term(4))));
}

#[test]
fn election_safety_rejects_two_leaders_in_one_term() {
    let mut c = Checkers::new(4_000);
    assert_eq!(c.leader(0, 3, "n1", 10), None);
    assert_eq!(c.leader(0, 3, "n1", 20), None, "the same leader seen again is fine");
    assert_eq!(c.leader(0, 4, "n2", 30), None, "a new term may have a new leader");
    assert_eq!(c.leader(1, 3, "n2g2", 35), None, "another group's term 3 is another term");
    let v = c.leader(0, 3, "n2", 40).expect("n1 and n2 both lead term 3");
    assert_eq!((v.checker.as_str(), v.node.as_str(), v.time_ns), ("election-safety", "n2", 40));
    assert_eq!(c.first(), Some(&v));
}

#[test]
fn log_matching_rejects_a_different_term_a_different_payload_and_a_missing_index() {
    let good = HandLog::of(&[(1, 1), (2, 1), (3, 2)]);
    let mut logs: Vec<(String, HandLog)> = vec![("n1".into(), good.clone()), ("n2".into(), good.clone())];
    assert_eq!(checkers::log_matching(&mut logs, LogIndex(1), LogIndex(3)), Ok(()));

    let other_term = HandLog::of(&[(1, 1), (2, 1), (3, 3)]);
    let mut logs: Vec<(String, HandLog)> = vec![("n1".into(), good.clone()), ("n2".into(), other_term)];
    let (node, detail) = checkers::log_matching(&mut logs, LogIndex(1), LogIndex(3)).unwrap_err();
    assert_eq!(node, "n2");
    assert!(detail.contains("index 3: term 3 here, term 2 on n1"), "{detail}");

    let mut other_payload = good.clone();
    other_payload.entries.insert(2, (Term(1), vec![99]));
    let mut logs: Vec<(String, HandLog)> = vec![("n1".into(), good.clone()), ("n3".into(), other_payload)];
    let (node, detail) = checkers::log_matching(&mut logs, LogIndex(1), LogIndex(3)).unwrap_err();
    assert_eq!(node, "n3");
    assert!(detail.contains("different payload"), "{detail}");

    let short = HandLog::of(&[(1, 1), (2, 1)]);
    let mut logs: Vec<(String, HandLog)> = vec![("n1".into(), good.clone()), ("n2".into(), short)];
    let (_, detail) = checkers::log_matching(&mut logs, LogIndex(1), LogIndex(3)).unwrap_err();
    assert!(detail.contains("lacks committed index 3"), "{detail}");
}

#[test]
fn leader_completeness_rejects_a_leader_without_a_committed_entry() {
    let committed = (LogIndex(5), Term(2));
    let mut complete = HandLog::of(&[(4, 1), (5, 2), (6, 3)]);
    assert_eq!(checkers::leader_completeness(&mut complete, committed), Ok(()));
    let mut covered = HandLog::of(&[(8, 3)]);
    covered.snapshot = Some((LogIndex(7), Term(3)));
    assert_eq!(checkers::leader_completeness(&mut covered, committed), Ok(()), "a snapshot covers it");

    let mut short = HandLog::of(&[(4, 1)]);
    let detail = checkers::leader_completeness(&mut short, committed).unwrap_err();
    assert!(detail.contains("lacks committed entry 5 (term 2)"), "{detail}");
    let mut overwritten = HandLog::of(&[(4, 1), (5, 3)]);
    assert!(checkers::leader_completeness(&mut overwritten, committed).is_err(), "term 3 at 5 is another entry");
}

struct Values;
impl ValueSource for Values {
    fn command_at(&mut self, _: LogIndex) -> Option<KvCommand> {
        None
    }
}

#[test]
fn state_machine_safety_rejects_different_states_at_the_same_applied_index() {
    let put = KvCommand::Put { key: "k".into(), value: vec![1] };
    let mut a = KvState::new();
    a.apply(LogIndex(3), &put, &mut Values);
    let mut b = KvState::new();
    b.apply(LogIndex(4), &put, &mut Values);
    let same = [("n1".to_owned(), LogIndex(9), &a), ("n2".to_owned(), LogIndex(9), &a)];
    assert_eq!(checkers::state_machine_safety(&same), Ok(()));
    let behind = [("n1".to_owned(), LogIndex(9), &a), ("n2".to_owned(), LogIndex(4), &b)];
    assert_eq!(checkers::state_machine_safety(&behind), Ok(()), "different applied indexes may differ");
    let split = [("n1".to_owned(), LogIndex(9), &a), ("n2".to_owned(), LogIndex(9), &b)];
    let detail = checkers::state_machine_safety(&split).unwrap_err();
    assert!(detail.contains("n1 and n2 both applied index 9"), "{detail}");
}

#[test]
fn commit_durability_rejects_a_committed_entry_held_by_a_minority() {
    let c = (LogIndex(12), Term(4));
    assert_eq!(checkers::commit_durability(2, 0, 3, c), Ok(()));
    assert_eq!(checkers::commit_durability(1, 1, 3, c), Ok(()), "a down member is not judged");
    assert!(checkers::commit_durability(1, 0, 3, c).unwrap_err().contains("held by 1 of 3 voters"));
    // Even voter counts: half suffices (no election quorum of the others), fewer does not.
    assert_eq!(checkers::commit_durability(2, 0, 4, c), Ok(()));
    assert!(checkers::commit_durability(1, 0, 4, c).is_err());
    assert!(checkers::commit_durability(2, 0, 5, c).is_err());
    assert!(checkers::commit_durability(0, 0, 1, c).is_err());
}

#[test]
fn written_survives_rejects_a_shorter_or_older_log_after_a_crash() {
    let before = (LogIndex(10), Term(2));
    assert_eq!(checkers::written_survives(before, (LogIndex(10), Term(2))), Ok(()));
    assert_eq!(checkers::written_survives(before, (LogIndex(8), Term(3))), Ok(()), "a newer term replaced the tail");
    let detail = checkers::written_survives(before, (LogIndex(9), Term(2))).unwrap_err();
    assert!(detail.contains("10 (term 2) before the crash and is 9 (term 2)"), "{detail}");
    assert!(checkers::written_survives(before, (LogIndex(12), Term(1))).is_err(), "an older term is behind");
    assert!(checkers::written_survives(before, (LogIndex(0), Term(0))).is_err(), "a wiped log");
}

#[test]
fn no_log_gap_rejects_a_hole_and_a_snapshot_not_adjacent_to_the_log() {
    let mut whole = HandLog::of(&[(1, 1), (2, 1), (3, 1)]);
    assert_eq!(checkers::no_log_gap(&mut whole), Ok(()));
    let mut holed = HandLog::of(&[(1, 1), (2, 1), (4, 1)]);
    assert!(checkers::no_log_gap(&mut holed).unwrap_err().contains("index 3 is missing"));
    let mut detached = HandLog::of(&[(9, 2), (10, 2)]);
    detached.snapshot = Some((LogIndex(5), Term(1)));
    assert!(checkers::no_log_gap(&mut detached).unwrap_err().contains("snapshot ends at 5 but the log starts at 9"));
    let mut adjacent = HandLog::of(&[(6, 2), (7, 2)]);
    adjacent.snapshot = Some((LogIndex(5), Term(1)));
    assert_eq!(checkers::no_log_gap(&mut adjacent), Ok(()));
}

#[test]
fn log_shape_rejects_what_was_never_written_where_it_lies() {
    // The member wrote 1..=5 in term 1 (payload [index]), then overwrote 4 in term 2 with other bytes.
    let mut written = checkers::WrittenEntries::default();
    for i in 1..=5 {
        written.note(LogIndex(i), Term(1), &[i as u8]);
    }
    written.note(LogIndex(4), Term(2), &[40]);
    let shape = |log: &mut HandLog, stored: &[checkers::StoredEntry]| checkers::log_shape(log, &written, stored);

    let mut log = HandLog::of(&[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]);
    assert_eq!(shape(&mut log, &[]), Ok(()), "every entry as written");
    let mut overwritten = HandLog::of(&[(1, 1), (2, 1), (3, 1)]);
    overwritten.entries.insert(4, (Term(2), vec![40]));
    overwritten.written = (LogIndex(4), Term(2));
    assert_eq!(shape(&mut overwritten, &[]), Ok(()), "the overwrite, and (above) the version it replaced");

    let mut other_bytes = log.clone();
    other_bytes.entries.insert(3, (Term(1), vec![33]));
    let detail = shape(&mut other_bytes, &[]).unwrap_err();
    assert!(detail.contains("index 3 in term 1 with bytes the member never wrote there"), "{detail}");
    let mut other_term = log.clone();
    other_term.entries.insert(2, (Term(2), vec![2]));
    assert!(shape(&mut other_term, &[]).unwrap_err().contains("index 2 in term 2"));
    let mut too_long = HandLog::of(&[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1)]);
    assert!(shape(&mut too_long, &[]).unwrap_err().contains("the log ends at 6, above anything written"));

    // A snapshot at 3: below it only its live indexes may be read.
    let mut compacted = log.clone();
    compacted.snapshot = Some((LogIndex(3), Term(1)));
    let detail = shape(&mut compacted, &[]).unwrap_err();
    assert!(detail.contains("index 1 is readable at or below snapshot 3"), "{detail}");
    compacted.entries.remove(&1);
    compacted.entries.remove(&3);
    compacted.first = LogIndex(2);
    compacted.live = Seq::from_indexes([LogIndex(2)]);
    assert_eq!(shape(&mut compacted, &[]), Ok(()), "live index 2 kept");

    // What the mem tables and segments hold is judged too, even where the log serves another copy.
    let stored = |place: &str, index: u64, term: u64, bytes: &[u8]| checkers::StoredEntry {
        place: place.into(),
        index: LogIndex(index),
        term: Term(term),
        digest: checkers::digest(bytes),
    };
    assert_eq!(shape(&mut log, &[stored("segment u1/1.segment", 4, 2, &[40])]), Ok(()));
    let detail = shape(&mut log, &[stored("segment u1/1.segment", 4, 2, &[4])]).unwrap_err();
    assert!(detail.starts_with("segment u1/1.segment holds index 4 in term 2"), "{detail}");
}

#[test]
fn segref_files_exist_rejects_a_reference_to_a_deleted_segment() {
    let mut fs = disk();
    fs.mkdir_all("u1").unwrap();
    let fd = fs.open("u1/0000000000000001.segment", &OpenOptions::create()).unwrap();
    fs.close(fd).unwrap();
    let r = |file: &str, first, last| SegRef { file: file.into(), first: LogIndex(first), last: LogIndex(last) };
    let present = [r("0000000000000001.segment", 1, 32)];
    assert_eq!(checkers::segref_files_exist(&present, "u1", &mut fs), Ok(()));
    let dangling = [r("0000000000000001.segment", 1, 32), r("0000000000000002.segment", 33, 64)];
    let detail = checkers::segref_files_exist(&dangling, "u1", &mut fs).unwrap_err();
    assert!(detail.contains("0000000000000002.segment"), "{detail}");
}

#[test]
fn live_indexes_readable_rejects_a_live_index_the_log_lost() {
    let live = Seq::from_indexes([LogIndex(3), LogIndex(7)]);
    let mut both = HandLog::of(&[(3, 1), (7, 1)]);
    assert_eq!(checkers::live_indexes_readable(&live, &mut both), Ok(()));
    let mut lost = HandLog::of(&[(3, 1), (8, 1)]);
    assert!(checkers::live_indexes_readable(&live, &mut lost).unwrap_err().contains("live index 7"));
}

#[test]
fn registered_implies_config_rejects_a_registration_without_a_config() {
    let mut fs = disk();
    let mut directory = Directory::new();
    directory.register(&Uid("u1".into()), "n1", None);
    let detail = checkers::registered_implies_config(&directory, &mut fs).unwrap_err();
    assert!(detail.contains("u1 is registered but has no usable config"), "{detail}");
    fs.mkdir_all("u1").unwrap();
    let config = ServerConfig {
        uid: Uid("u1".into()),
        name: "n1".into(),
        cluster_name: "c1".into(),
        initial_members: vec!["n1".into()],
        machine_version: 1,
    };
    write_config(&mut fs, "u1", &config, &Bugs::none()).unwrap();
    assert_eq!(checkers::registered_implies_config(&directory, &mut fs), Ok(()));
}

#[test]
fn converges_rejects_a_down_member_two_leaders_different_applied_indexes_and_no_commit() {
    let up = |applied, role, term| Some((LogIndex(applied), role, Term(term)));
    let good = [up(9, Role::Leader, 3), up(9, Role::Follower, 3), up(9, Role::Follower, 3)];
    assert_eq!(checkers::converged(&good), Ok(()));
    let down = [up(9, Role::Leader, 3), None, up(9, Role::Follower, 3)];
    assert!(checkers::converged(&down).unwrap_err().contains("n2 is not serving"));
    let two = [up(9, Role::Leader, 3), up(9, Role::Leader, 3), up(9, Role::Follower, 3)];
    assert!(checkers::converged(&two).unwrap_err().contains("2 leaders"));
    let stale = [up(9, Role::Leader, 2), up(9, Role::Follower, 3), up(9, Role::Follower, 3)];
    assert!(checkers::converged(&stale).unwrap_err().contains("0 leaders in the highest term 3"));
    let behind = [up(9, Role::Leader, 3), up(4, Role::Follower, 3), up(9, Role::Follower, 3)];
    assert!(checkers::converged(&behind).unwrap_err().contains("different indexes"));

    let mut c = Checkers::new(4_000);
    c.liveness_started(0);
    c.check_converged(checkers::converged(&good), 99);
    let v = c.first().expect("converged, but nothing committed after the heal");
    assert_eq!((v.checker.as_str(), v.detail.as_str()), ("converges", "nothing committed after the heal"));
}

#[test]
fn converges_wants_every_kind_of_client_operation_answered_after_the_heal() {
    use OperationKind::{CasOnAbsent, CasOnValue, Get, Put};
    let up = |applied, role| Some((LogIndex(applied), role, Term(3)));
    let good = [up(9, Role::Leader), up(9, Role::Follower), up(9, Role::Follower)];
    let behind = [up(9, Role::Leader), up(4, Role::Follower), up(9, Role::Follower)];
    // (whether the workload issues compare-and-sets on a value, the kinds answered after the heal, the
    // members, the verdict: None for a pass)
    let cases: [(bool, &[OperationKind], &[_; 3], Option<&str>); 9] = [
        (false, &[Get, Put, CasOnAbsent], &good, None),
        (false, &[Get, CasOnAbsent], &good, Some("no put answered after the heal")),
        (false, &[Put], &good, Some("no get and no compare-and-set on an absent key answered after the heal")),
        // The kind comes first: the workload goes on until every kind is answered, so members differ.
        (false, &[Get, CasOnAbsent], &behind, Some("no put answered after the heal")),
        (false, &[Get, Put, CasOnAbsent], &behind, Some("members applied different indexes")),
        (false, &[], &good, Some("nothing committed after the heal")),
        (true, &[Get, Put, CasOnAbsent], &good, Some("no compare-and-set on a value answered after the heal")),
        (true, &[Get, Put, CasOnAbsent, CasOnValue], &good, None),
        (true, &[Get, Put, CasOnValue], &good, Some("no compare-and-set on an absent key answered after the heal")),
    ];
    for (on_value, answered, members, verdict) in cases {
        let mut c = Checkers::new(4_000);
        if on_value {
            c.kind_issued(CasOnValue);
        }
        // An operation answered before the heal counts for nothing.
        c.invoke(1, Put);
        c.committed(1, 5);
        c.liveness_started(10);
        for (n, kind) in answered.iter().enumerate() {
            c.invoke(100 + n as u64, *kind);
            c.committed(100 + n as u64, 20);
        }
        // An operation invoked and never answered does not count either.
        c.invoke(99, Get);
        let all = answered.len() == if on_value { 4 } else { 3 };
        assert_eq!(c.every_kind_answered_in_liveness(), all, "{answered:?}");
        c.check_converged(checkers::converged(members), 99);
        let got = c.first().map(|v| v.detail.clone());
        match verdict {
            None => assert_eq!(got, None, "{answered:?}"),
            Some(want) => assert!(got.as_deref().is_some_and(|d| d.starts_with(want)), "{answered:?}: {got:?}"),
        }
    }
}

#[test]
fn lagging_follower_caught_up_rejects_a_leader_that_ignores_a_pre_vote() {
    let mut o = ContactObligations::new(4_000_000_000);
    o.pre_vote_delivered(0, 2, 1_000);
    o.pre_vote_delivered(0, 2, 2_000_000_000); // a later pre-vote does not move the deadline
    assert_eq!(o.overdue(4_000_001_000), None, "the bound itself is allowed");
    assert_eq!(o.overdue(4_000_001_001), Some((0, 2, 4_000_001_000)));
    o.contacted(0, 2);
    assert_eq!(o.overdue(9_000_000_000), None, "answered");
    o.pre_vote_delivered(1, 0, 0);
    o.forget_leader(1);
    assert_eq!(o.overdue(9_000_000_000), None, "a leader that stepped down owes nothing");
    o.pre_vote_delivered(1, 0, 0);
    o.forget(0);
    assert_eq!(o.overdue(9_000_000_000), None, "a follower that crashed is owed nothing");
}

fn one_node(seed: u64) -> WorldConfig {
    let spec =
        WorldSpec { nodes: 1, snapshot_interval: 0, safety_ms: 1_000, restart_after_ms: 500, ..scenarios::base(seed) };
    WorldConfig::new(spec, Bugs::none())
}

#[test]
fn node_boots_rejects_a_disk_whose_wal_cannot_be_read() {
    assert_eq!(sim::run(one_node(1)).outcome, Outcome::Pass, "a blank disk boots");
    let mut fs = disk();
    // Where the first WAL file should be, a directory: recovery cannot read it.
    fs.mkdir_all("wal/0000000000000001.wal").unwrap();
    let r = World::with_disks(one_node(1), vec![fs]).run();
    let Outcome::Violation(v) = r.outcome else { panic!("a node that cannot read its WAL booted: {:?}", r.trace) };
    assert_eq!((v.checker.as_str(), v.node.as_str()), ("node-boots", "n1"), "{v:?}");
    assert!(!v.context.is_empty(), "the violation carries the trace before it");
}

#[test]
fn converges_judges_only_the_members_of_the_configuration_in_force() {
    let up = |applied, role, term| Some((LogIndex(applied), role, Term(term)));
    // n3 was removed from the group: behind or down, it is not judged; a member in the configuration is.
    let view = [up(9, Role::Leader, 3), up(9, Role::Follower, 3), up(4, Role::Follower, 3)];
    let in_config: std::collections::BTreeSet<usize> = [0, 1].into_iter().collect();
    assert_eq!(checkers::converged_in(&view, &in_config), Ok(()));
    assert_eq!(checkers::converged_in(&[view[0].clone(), view[1].clone(), None], &in_config), Ok(()));
    let everyone: std::collections::BTreeSet<usize> = [0, 1, 2].into_iter().collect();
    assert!(checkers::converged_in(&view, &everyone).unwrap_err().contains("different indexes"));
    let behind = [up(9, Role::Leader, 3), up(4, Role::Follower, 3), up(9, Role::Follower, 3)];
    assert!(checkers::converged_in(&behind, &in_config).unwrap_err().contains("different indexes"));
}

#[test]
fn a_follower_removed_from_the_configuration_is_owed_no_contact() {
    let mut o = ContactObligations::new(1_000);
    o.pre_vote_delivered(0, 1, 0);
    o.pre_vote_delivered(0, 2, 0);
    // Follower 2 leaves leader 0's configuration: only follower 1 is still owed contact.
    o.keep_peers(0, |f| f == 1);
    assert_eq!(o.overdue(2_000).map(|(l, f, _)| (l, f)), Some((0, 1)));
    o.contacted(0, 1);
    assert_eq!(o.overdue(2_000), None);
    assert!(o.is_empty());
}

#[test]
fn vote_survives_wants_a_later_term_or_a_vote_that_refuses_other_candidates() {
    let id = |s: &str| raft_core::consensus::server::ServerId(s.into());
    let (own, candidate, other) = (id("n1"), id("n2"), id("n3"));
    // (recovered term, recovered vote, whether it keeps the promise of n1's vote for n2 in term 3)
    let cases = [
        (4, None, true),
        (4, Some(&other), true),
        (3, Some(&candidate), true),
        (3, Some(&own), true), // Ra's pre-vote round votes for itself in the current term
        (3, None, false),
        (3, Some(&other), false),
        (2, Some(&candidate), false),
        (0, None, false),
    ];
    for (term, vote, keeps) in cases {
        let result = checkers::vote_survives(&own, Term(3), &candidate, Term(term), vote);
        assert_eq!(result.is_ok(), keeps, "term {term}, vote {vote:?}: {result:?}");
    }
}

#[test]
fn an_election_timeout_must_lie_in_the_configured_range() {
    // (timeout, min, max, in range)
    let cases = [
        (150, 150, 300, true),
        (300, 150, 300, true),
        (222, 150, 300, true),
        (149, 150, 300, false),
        (301, 150, 300, false),
        (0, 150, 300, false),
        (u64::MAX, 150, 300, false),
        (150, 150, 100, true), // a max below the min means the min
        (151, 150, 100, false),
    ];
    for (timeout, min, max, ok) in cases {
        let result = checkers::election_timeout_in_range(timeout, min, max);
        assert_eq!(result.is_ok(), ok, "{timeout} in {min}..={max}: {result:?}");
    }
}

#[test]
fn a_snapshot_releases_the_memory_and_segments_it_made_redundant() {
    let r = |file: &str, first, last| SegRef { file: file.into(), first: LogIndex(first), last: LogIndex(last) };
    let seq = |indexes: &[u64]| Seq::from_indexes(indexes.iter().map(|&i| LogIndex(i)));
    let names = |files: &[&str]| files.iter().map(|f| f.to_string()).collect::<BTreeSet<String>>();
    let before = [r("3.segment", 61, 90), r("2.segment", 31, 60), r("1.segment", 1, 30)];
    let after = [r("3.segment", 61, 90)];
    // (snapshot, live, in memory, refs now, on disk, unlink failed, released)
    type Case<'a> = (u64, &'a [u64], &'a [u64], &'a [SegRef], &'a [&'a str], &'a [&'a str], bool);
    let cases: [Case; 12] = [
        // Everything redundant is gone: memory from 71 on, the two old segments deleted.
        (70, &[], &[71, 72], &after, &["3.segment"], &[], true),
        // An entry below the snapshot still in memory.
        (70, &[], &[70, 71], &after, &["3.segment"], &[], false),
        // A live index keeps what lies from it up in memory (not what lies below it).
        (70, &[65], &[65, 66, 71], &after, &["3.segment"], &[], true),
        (70, &[65], &[64, 65, 71], &after, &["3.segment"], &[], false),
        // A redundant segment still named by the log, or still on disk.
        (70, &[], &[71], &[after[0].clone(), before[1].clone()], &["3.segment", "2.segment"], &[], false),
        (70, &[], &[71], &after, &["3.segment", "1.segment"], &[], false),
        // ... unless its unlink failed (Ra deletes best effort).
        (70, &[], &[71], &after, &["3.segment", "1.segment"], &["1.segment"], true),
        // A segment holding a live index stays.
        (70, &[40], &[71], &[after[0].clone(), before[1].clone()], &["3.segment", "2.segment"], &[], true),
        // The newest segment stays even wholly below the snapshot.
        (95, &[], &[], &before[..1], &["3.segment"], &[], true),
        // A segment reaching above the snapshot stays.
        (45, &[], &[46], &before[..2], &["3.segment", "2.segment"], &[], true),
        (45, &[], &[46], &before[..2], &["3.segment", "2.segment", "1.segment"], &[], false),
        // Files the log never named are not its to delete.
        (70, &[], &[71], &after, &["3.segment", "0.segment"], &[], true),
    ];
    for (snapshot, live, in_memory, refs_now, on_disk, failed, released) in cases {
        let (live, in_memory, on_disk, failed) = (seq(live), seq(in_memory), names(on_disk), names(failed));
        let seen = checkers::AfterSnapshot {
            snapshot: LogIndex(snapshot),
            live: &live,
            in_memory: &in_memory,
            refs_before: &before,
            refs_now,
            on_disk: &on_disk,
            unlink_failed: &failed,
        };
        let result = checkers::resources_released(&seen);
        assert_eq!(result.is_ok(), released, "snapshot {snapshot}, live {live}, memory {in_memory}: {result:?}");
    }
}

#[test]
fn a_flush_releases_its_table_and_the_older_ones_up_to_its_last_index() {
    let seq = |lo: u64, hi: u64| Seq::from_range(LogIndex(lo), LogIndex(hi));
    // Tables t1 (oldest) to t3 (newest); the flush names t2 up to 20.
    let flushed = [(TableId(2), LogIndex(20))];
    // (t1's, t2's, t3's indexes held now, released)
    let cases = [
        (None, Some(seq(21, 30)), Some(seq(15, 40)), true), // t3 is newer: an overwrite, not flushed yet
        (None, None, Some(seq(1, 40)), true),
        (None, Some(seq(20, 30)), None, false), // t2 still holds its flushed last index
        (None, Some(seq(5, 6)), None, false),
        (Some(seq(18, 18)), Some(seq(21, 22)), None, false), // an older table below the flushed index
        (Some(seq(21, 25)), Some(seq(21, 22)), None, true),  // an older table above it: not flushed
    ];
    for (t1, t2, t3, released) in cases {
        let held: Vec<(TableId, Seq)> =
            [(1, t1), (2, t2), (3, t3)].into_iter().filter_map(|(t, s)| Some((TableId(t), s?))).collect();
        let result = checkers::flush_released(&flushed, &held);
        assert_eq!(result.is_ok(), released, "{held:?}: {result:?}");
    }
}

#[test]
fn the_last_written_index_names_an_entry_the_log_holds_and_flushes_and_snapshots_never_lower_it() {
    let (i, t) = (LogIndex, Term);
    // (last written, last index, snapshot, mem tables' term there, a segment spans it, before a flush and
    // the segments' last after it, holds)
    let cases = [
        ((i(10), t(2)), Some(i(12)), None, Some(t(2)), false, None, true),
        ((i(0), t(0)), None, None, None, false, None, true), // a new log
        ((i(13), t(2)), Some(i(12)), None, None, false, None, false), // above the last index
        ((i(10), t(1)), Some(i(12)), None, Some(t(2)), false, None, false), // the overwritten entry's term
        ((i(10), t(1)), Some(i(12)), None, Some(t(2)), true, None, true), // a segment may hold term 1 there
        ((i(10), t(2)), Some(i(12)), None, None, true, None, true), // flushed: the segment holds it
        ((i(5), t(3)), Some(i(12)), Some((i(5), t(3))), None, false, None, true),
        ((i(5), t(2)), Some(i(12)), Some((i(5), t(3))), None, false, None, false), // not the snapshot's term
        ((i(4), t(3)), Some(i(12)), Some((i(5), t(3))), None, false, None, false), // below the snapshot
        ((i(10), t(2)), Some(i(12)), None, Some(t(2)), false, Some((i(11), i(9))), false), // a flush lowered it
        ((i(11), t(2)), Some(i(12)), None, Some(t(2)), false, Some((i(11), i(9))), true),
        ((i(11), t(2)), Some(i(12)), None, Some(t(2)), true, Some((i(11), i(12))), false), // segments hold 12
        ((i(11), t(2)), Some(i(12)), None, Some(t(2)), true, Some((i(11), i(14))), true),  // 13, 14 overwritten
    ];
    for (last_written, last_index, snapshot, memory_term, in_segments, flush, holds) in cases {
        let seen = checkers::WrittenSeen {
            last_written,
            last_index,
            snapshot,
            memory_term,
            in_segments,
            before_event: flush.map(|(before, _)| (before, checkers::LogEventHandled::Flush)),
            segments_last: flush.map(|(_, segments_last)| segments_last),
            segment_term: None,
        };
        let result = checkers::last_written(&seen);
        assert_eq!(result.is_ok(), holds, "{seen:?}: {result:?}");
    }
}

#[test]
fn after_a_flush_the_last_written_term_is_the_segments_or_a_newer_written_one() {
    let (i, t) = (LogIndex, Term);
    // (last written term at 11, the mem tables' term there, the segment's term there, holds); a flush
    // raised the last written index from 9 to 11, the segments' last.
    let cases = [
        (t(3), None, Some(t(3)), true),
        (t(2), None, Some(t(3)), false),      // the term from before the flush kept
        (t(3), Some(t(3)), Some(t(2)), true), // an overwrite written since the flushed file
        (t(2), Some(t(3)), Some(t(2)), true), // the overwrite still pending: the segment's version
        (t(1), Some(t(3)), Some(t(2)), false),
        (t(1), None, None, true), // the segment's index does not name it: not judged
    ];
    for (term, memory_term, segment_term, holds) in cases {
        let seen = checkers::WrittenSeen {
            last_written: (i(11), term),
            last_index: Some(i(12)),
            snapshot: None,
            memory_term,
            in_segments: true,
            before_event: Some((i(9), checkers::LogEventHandled::Flush)),
            segments_last: Some(i(11)),
            segment_term,
        };
        let result = checkers::last_written(&seen);
        assert_eq!(result.is_ok(), holds, "{seen:?}: {result:?}");
    }
}

#[test]
fn a_segment_takes_no_entry_once_its_data_passed_its_size() {
    // (data offset, length) of each entry, the size, within it
    type Records = &'static [(u64, u32)];
    let cases: [(Records, u64, bool); 5] = [
        (&[], 300, true),
        (&[(1000, 100), (1100, 100), (1200, 100), (1300, 100)], 300, true), // the last one began at byte 300
        (&[(1000, 100), (1100, 100), (1200, 100), (1300, 100), (1400, 5)], 300, false),
        (&[(1400, 5), (1000, 400)], 300, false), // the records in index order, not offset order
        (&[(1000, 400), (1400, 5)], 400, true),
    ];
    for (records, max_size_bytes, within) in cases {
        let result = checkers::segment_within_size("n1/1.segment", records, max_size_bytes);
        assert_eq!(result.is_ok(), within, "{records:?} under {max_size_bytes}: {result:?}");
    }
}

/// `resources-released`'s handle rule: every open handle held by the node's storage, every held one open.
#[test]
fn handles_released_judges_open_against_held_handles() {
    use vfs::Fd;
    let wal = (Fd(4), "the WAL");
    let receive = (Fd(9), "n2/g1");
    let wal_file = (Fd(4), "00000000000000000002.wal");
    let snapshot_file = (Fd(9), "g1/snapshots/2_40/snapshot.dat");
    let segment_file = (Fd(7), "g1/00000000000000000003.segment");
    type Handles<'a> = &'a [(Fd, &'a str)];
    let cases: &[(Handles, Handles, Option<&str>)] = &[
        (&[], &[], None),
        (&[wal_file], &[wal], None),
        (&[wal_file, snapshot_file], &[wal, receive], None),
        // A segment the segment writer left open after its flush.
        (&[wal_file, segment_file], &[wal], Some("handle 7 on g1/00000000000000000003.segment is still open")),
        (&[segment_file], &[], Some("nothing holds a handle")),
        // The WAL's file closed under it.
        (&[], &[wal], Some("the WAL holds handle 4, which is closed")),
        // A receive's file closed while the receive goes on.
        (&[wal_file], &[wal, receive], Some("n2/g1 holds handle 9, which is closed")),
    ];
    for &(open, held, expected) in cases {
        let result = checkers::handles_released(open, held);
        match (expected, &result) {
            (None, Ok(())) => {}
            (Some(part), Err(detail)) => assert!(detail.contains(part), "{open:?} / {held:?}: {detail}"),
            _ => panic!("{open:?} / {held:?}: expected {expected:?}, got {result:?}"),
        }
    }
}
