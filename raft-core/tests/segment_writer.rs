//! Ports of Ra's `ra_log_segment_writer_SUITE` onto the storage actors: the real WAL rolls over and
//! hands its ranges to the real segment writer, both driven by the small deterministic loop in `common`.
//! Where Ra's suite hands the segment writer a fake mem table directly, the WAL produces the same ranges
//! here (snapshot state set between the WAL's roll-over and the segment writer's flush, so that the
//! segment writer — not the WAL — does the flooring).

mod common;

use std::collections::BTreeMap;

use common::*;
use raft_core::storage::mem_table::{DeleteJob, DeleteSpec};
use raft_core::storage::messages::WalMsg;
use raft_core::storage::segment::SegmentReader;
use raft_core::storage::segref::{SegRef, SegRefs};
use raft_core::storage::{LogEvent, StorageError};
use raft_core::{Bugs, LogIndex, ProcessId, Seq, TableId, Term, Uid};
use vfs::{CrashModel, FileSystem};

fn seq(from: u64, to: u64) -> Seq {
    Seq::from_range(LogIndex(from), LogIndex(to))
}

fn seq_of(indexes: &[u64]) -> Seq {
    Seq::from_indexes(indexes.iter().copied().map(LogIndex))
}

fn seg_name(num: u64) -> String {
    format!("{num:016}.segment")
}

fn segref(num: u64, first: u64, last: u64) -> SegRef {
    SegRef { file: seg_name(num), first: LogIndex(first), last: LogIndex(last) }
}

fn wal_name(num: u64) -> String {
    format!("{num:016}.wal")
}

/// A booted node (empty disk, recovery done) whose segments hold at most `max_count` entries.
fn node(seed: u64, max_count: u16) -> Node {
    let mut n = Node::new(seed, wal_config(1 << 20, Bugs::none()), segment_writer_config(max_count));
    n.boot_and_recover().unwrap();
    n
}

/// One `Segments` event: (uid, ranges, segrefs).
type SegmentsEvent = (Uid, Vec<(TableId, Seq)>, Vec<SegRef>);

/// Every `Segments` event a process received.
fn segments_events(n: &Node, process: u64) -> Vec<SegmentsEvent> {
    n.events
        .get(&ProcessId(process))
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            LogEvent::Segments { uid, ranges, segrefs } => Some((uid.clone(), ranges.clone(), segrefs.clone())),
            _ => None,
        })
        .collect()
}

/// Contents of one segment file of `uid`, read through a `SegmentReader`.
fn read_segment(n: &mut Node, uid: &Uid, num: u64) -> BTreeMap<u64, (u64, Vec<u8>)> {
    let path = format!("{}/{}", uid.as_str(), seg_name(num));
    let reader = SegmentReader::open(&mut n.fs, &path).unwrap();
    let indexes: Vec<LogIndex> = reader.indexes().collect();
    indexes
        .into_iter()
        .map(|i| {
            let (term, data) = reader.read(&mut n.fs, i).unwrap().expect("indexed entry");
            (i.0, (term.0, data))
        })
        .collect()
}

fn contents(items: &[(u64, u64, &[u8])]) -> BTreeMap<u64, (u64, Vec<u8>)> {
    items.iter().map(|&(i, t, d)| (i, (t, d.to_vec()))).collect()
}

/// Roll the WAL over and let both actors finish.
fn roll_over(n: &mut Node) {
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.wal_error, None);
    assert_eq!(n.segment_writer_error, None);
}

#[test]
fn accept_mem_tables() {
    let mut n = node(1, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write(&mut n, 1, 42, b"a");
    w.write(&mut n, 2, 42, b"b");
    w.write(&mut n, 3, 43, b"c");
    n.run();
    assert!(n.wal_files().contains(&wal_name(1)));
    let tid = w.tid();
    roll_over(&mut n);

    // The flushed file is gone; the next one is open.
    let files = n.wal_files();
    assert!(!files.contains(&wal_name(1)), "{files:?}");
    assert!(files.contains(&wal_name(2)), "{files:?}");
    assert_eq!(n.segment_writer.stats().wal_files_done, 1);

    let events = segments_events(&n, 1);
    assert_eq!(events, vec![(w.uid.clone(), vec![(tid, seq(1, 3))], vec![segref(1, 1, 3)])]);
    assert_eq!(read_segment(&mut n, &w.uid, 1), contents(&[(1, 42, b"a"), (2, 42, b"b"), (3, 43, b"c")]));
}

#[test]
fn accept_mem_tables_append() {
    let mut n = node(2, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write(&mut n, 1, 42, b"a");
    w.write(&mut n, 2, 42, b"b");
    w.write(&mut n, 3, 43, b"c");
    roll_over(&mut n);
    w.write(&mut n, 4, 43, b"d");
    w.write(&mut n, 5, 43, b"e");
    let tid = w.tid();
    roll_over(&mut n);

    let events = segments_events(&n, 1);
    assert_eq!(events.len(), 2);
    // The second flush appended to the existing (highest) segment: one file, range 1..5.
    assert_eq!(events[1], (w.uid.clone(), vec![(tid, seq(4, 5))], vec![segref(1, 1, 5)]));
    assert_eq!(n.segment_files(&w.uid), vec![seg_name(1)]);
    assert_eq!(
        read_segment(&mut n, &w.uid, 1),
        contents(&[(1, 42, b"a"), (2, 42, b"b"), (3, 43, b"c"), (4, 43, b"d"), (5, 43, b"e")])
    );
    let files = n.wal_files();
    assert!(!files.contains(&wal_name(1)) && !files.contains(&wal_name(2)), "{files:?}");
}

#[test]
fn accept_mem_tables_overwrite() {
    let mut n = node(3, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write(&mut n, 3, 42, b"c");
    w.write(&mut n, 4, 42, b"d");
    w.write(&mut n, 5, 42, b"e");
    let tid = w.tid();
    roll_over(&mut n);
    // An overwrite from a new leader: index 1 again, in a successor table.
    w.write(&mut n, 1, 43, b"a");
    w.write(&mut n, 2, 43, b"b");
    w.write(&mut n, 3, 43, b"c2");
    let tid2 = w.tid();
    assert_ne!(tid, tid2);
    roll_over(&mut n);

    let events = segments_events(&n, 1);
    assert_eq!(events[0], (w.uid.clone(), vec![(tid, seq(3, 5))], vec![segref(1, 3, 5)]));
    assert_eq!(events[1], (w.uid.clone(), vec![(tid2, seq(1, 3))], vec![segref(1, 1, 3)]));
    let path = format!("s1/{}", seg_name(1));
    let reader = SegmentReader::open(&mut n.fs, &path).unwrap();
    assert_eq!(reader.segref(), Some(segref(1, 1, 3)));
    // The later, lower records won: 4 and 5 are gone (Ra: missing_key), 3 is the new entry.
    assert_eq!(reader.read(&mut n.fs, LogIndex(4)).unwrap(), None);
    assert_eq!(reader.read(&mut n.fs, LogIndex(5)).unwrap(), None);
    assert_eq!(read_segment(&mut n, &w.uid, 1), contents(&[(1, 43, b"a"), (2, 43, b"b"), (3, 43, b"c2")]));
}

#[test]
fn accept_mem_tables_overwrite_same_wal() {
    let mut n = node(4, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    for (i, d) in [(2, b"b"), (3, b"c"), (4, b"d"), (5, b"e")] {
        w.write(&mut n, i, 42, d);
    }
    let tid = w.tid();
    w.write(&mut n, 4, 43, b"d2");
    w.write(&mut n, 5, 43, b"e2");
    w.write(&mut n, 6, 43, b"f");
    let tid2 = w.tid();
    roll_over(&mut n);

    // Both tables came from one WAL file, newest first; the older one is limited to the newer's start.
    let events = segments_events(&n, 1);
    assert_eq!(events, vec![(w.uid.clone(), vec![(tid2, seq(4, 6)), (tid, seq(2, 5))], vec![segref(1, 2, 6)])]);
    assert_eq!(
        read_segment(&mut n, &w.uid, 1),
        contents(&[(2, 42, b"b"), (3, 42, b"c"), (4, 43, b"d2"), (5, 43, b"e2"), (6, 43, b"f")])
    );
}

#[test]
fn accept_mem_tables_multi_segment() {
    let mut n = node(5, 8);
    let mut w = Writer::start(&mut n, "s1", 1);
    for i in 1..=10 {
        w.write(&mut n, i, 2, b"x");
    }
    let tid = w.tid();
    roll_over(&mut n);
    let events = segments_events(&n, 1);
    // Newest segment first.
    assert_eq!(events, vec![(w.uid.clone(), vec![(tid, seq(1, 10))], vec![segref(2, 9, 10), segref(1, 1, 8)])]);
    assert_eq!(n.segment_files(&w.uid), vec![seg_name(1), seg_name(2)]);
    assert_eq!(n.segment_writer.stats().segments_created, 2);
    assert_eq!(segment_contents(&mut n, &w.uid).len(), 10);
}

#[test]
fn accept_mem_tables_multi_segment_max_size() {
    let mut config = segment_writer_config(4096);
    config.segment.max_size_bytes = 1000;
    let mut n = Node::new(6, wal_config(1 << 20, Bugs::none()), config);
    n.boot_and_recover().unwrap();
    let mut w = Writer::start(&mut n, "s1", 1);
    // Ra's suite: term_to_binary of 120 random bytes is 126 bytes; eight of them exceed 1000.
    for i in 1..=10u64 {
        let payload: Vec<u8> = (0..126u64).map(|b| (i * 31 + b * 7) as u8).collect();
        w.write(&mut n, i, 2, &payload);
    }
    let tid = w.tid();
    roll_over(&mut n);
    let events = segments_events(&n, 1);
    assert_eq!(events, vec![(w.uid.clone(), vec![(tid, seq(1, 10))], vec![segref(2, 9, 10), segref(1, 1, 8)])]);
}

#[test]
fn accept_mem_tables_multi_segment_overwrite() {
    let mut n = node(7, 8);
    let mut w = Writer::start(&mut n, "s1", 1);
    for i in 1..=10 {
        w.write(&mut n, i, 2, b"x");
    }
    roll_over(&mut n);
    let first = segments_events(&n, 1)[0].2.clone();
    assert_eq!(first, vec![segref(2, 9, 10), segref(1, 1, 8)]);
    for i in 7..=15 {
        w.write(&mut n, i, 3, b"y");
    }
    let tid2 = w.tid();
    roll_over(&mut n);
    let second = segments_events(&n, 1)[1].clone();
    // The overwrite went into the last segment (now 7..12: the lower records dropped 9 and 10), then a
    // successor.
    assert_eq!(second, (w.uid.clone(), vec![(tid2, seq(7, 15))], vec![segref(3, 13, 15), segref(2, 7, 12)]));
    let all = segment_contents(&mut n, &w.uid);
    for i in 1..=15u64 {
        let want: &[u8] = if i >= 7 { b"y" } else { b"x" };
        assert_eq!(all[&i], (if i >= 7 { 3 } else { 2 }, want.to_vec()), "index {i}");
    }

    // The server's runtime segref bookkeeping: segment 2 shrank but is still referenced by name, so
    // nothing is deleted (PR 589 fix 3 at runtime), and segment 1 is truncated to 1..6.
    let mut refs = SegRefs::from_newest_first(&first);
    let removed = refs.update(&second.2);
    assert_eq!(removed, Vec::<String>::new());
    assert_eq!(refs.refs(), &[segref(3, 13, 15), segref(2, 7, 12), segref(1, 1, 6)]);
}

#[test]
fn accept_mem_tables_multiple_ranges() {
    let mut n = node(8, 16);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 32, 42);
    let tid = w.tid();
    // A second table (Ra's suite uses two tables of one server in one flush).
    let mt = w.mt.take().unwrap();
    w.mt = Some(n.shared.mem_tables.new_mem_table_please(&w.uid, mt));
    w.write_range(&mut n, 33, 64, 42);
    let tid2 = w.tid();
    assert_ne!(tid, tid2);
    roll_over(&mut n);
    let events = segments_events(&n, 1);
    assert_eq!(
        events,
        vec![(
            w.uid.clone(),
            vec![(tid2, seq(33, 64)), (tid, seq(1, 32))],
            vec![segref(4, 49, 64), segref(3, 33, 48), segref(2, 17, 32), segref(1, 1, 16)]
        )]
    );
    assert_eq!(segment_contents(&mut n, &w.uid), entries(1, 64, 42));
}

#[test]
fn accept_mem_tables_multiple_ranges_snapshot() {
    let mut n = node(9, 16);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 32, 42);
    let tid = w.tid();
    let mt = w.mt.take().unwrap();
    w.mt = Some(n.shared.mem_tables.new_mem_table_please(&w.uid, mt));
    w.write_range(&mut n, 33, 64, 42);
    let tid2 = w.tid();
    n.send_wal(WalMsg::ForceRollOver);
    n.run_wal_only();
    // A snapshot at 64 completes before the segment writer gets to the file.
    n.shared.snapshots.insert(&w.uid, LogIndex(64), Seq::new());
    n.run();
    let events = segments_events(&n, 1);
    assert_eq!(events, vec![(w.uid.clone(), vec![(tid2, seq(33, 64)), (tid, seq(1, 32))], vec![])]);
    assert_eq!(n.segment_files(&w.uid), Vec::<String>::new());
}

#[test]
fn accept_mem_tables_for_down_server() {
    let mut n = node(10, 4096);
    n.schedule = Schedule::SegmentWriterFirst;
    let mut up = Writer::start(&mut n, "s1", 1);
    let mut down = Writer::start(&mut n, "down", 2);
    up.write(&mut n, 1, 42, b"a");
    up.write(&mut n, 2, 42, b"b");
    up.write(&mut n, 3, 43, b"c");
    down.write_range(&mut n, 1, 40, 42);
    n.run();
    let (up_tid, down_tid) = (up.tid(), down.tid());
    // Registered, but its process is gone.
    n.shared.directory.set_process(&down.uid, None);
    assert!(n.shared.directory.is_registered(&down.uid));
    n.send_wal(WalMsg::ForceRollOver);
    n.run_wal_only();

    // Step the segment writer alone and watch the down server's table empty a few keys at a time,
    // before the WAL file is deleted.
    let mut lens = vec![n.shared.mem_tables.table_len(down_tid)];
    while n.step() {
        let len = n.shared.mem_tables.table_len(down_tid);
        if len != *lens.last().unwrap() {
            lens.push(len);
            if len > 0 {
                assert!(n.wal_files().contains(&wal_name(1)), "WAL file deleted before the mem table was");
            }
        }
    }
    assert_eq!(lens, vec![40, 32, 24, 16, 8, 0]);
    assert_eq!(n.segment_writer_error, None);
    assert_eq!(n.segment_writer.stats().self_deletes, 1);
    assert!(!n.wal_files().contains(&wal_name(1)));
    // Not sent to anyone: the down server's process got only its `Written` events.
    assert!(segments_events(&n, 2).is_empty());
    // Its entries are in its segment nonetheless.
    assert_eq!(read_segment(&mut n, &down.uid, 1), entries(1, 40, 42));
    // The running server got its event as usual.
    assert_eq!(segments_events(&n, 1), vec![(up.uid.clone(), vec![(up_tid, seq(1, 3))], vec![segref(1, 1, 3)])]);
    // The running server's table is its own business: untouched.
    assert_eq!(n.shared.mem_tables.table_len(up_tid), 3);
}

#[test]
fn accept_mem_tables_with_deleted_server() {
    let mut n = node(11, 4096);
    let mut up = Writer::start(&mut n, "s1", 1);
    let mut gone = Writer::start(&mut n, "not_self", 2);
    up.write_range(&mut n, 1, 3, 42);
    gone.write_range(&mut n, 1, 3, 42);
    n.run();
    let (up_tid, gone_tid) = (up.tid(), gone.tid());
    assert!(n.shared.directory.unregister(&gone.uid));
    roll_over(&mut n);

    assert!(!n.shared.directory.is_registered(&gone.uid));
    assert!(!n.shared.mem_tables.table_exists(gone_tid), "the unregistered server's tables are dropped");
    assert!(n.shared.mem_tables.tables_of(&gone.uid).is_empty());
    assert_eq!(n.segment_files(&gone.uid), Vec::<String>::new(), "nothing written for it");
    assert!(segments_events(&n, 2).is_empty());
    assert_eq!(segments_events(&n, 1), vec![(up.uid.clone(), vec![(up_tid, seq(1, 3))], vec![segref(1, 1, 3)])]);
    assert_eq!(read_segment(&mut n, &up.uid, 1), entries(1, 3, 42));
    assert!(!n.wal_files().contains(&wal_name(1)));
}

fn create_empty_file(n: &mut Node, path: &str) {
    let fd = n.fs.open(path, &vfs::OpenOptions::create()).unwrap();
    n.fs.fsync(fd).unwrap();
    n.fs.close(fd).unwrap();
}

#[test]
fn accept_mem_tables_with_corrupt_segment() {
    // Ra's case: the only segment file is empty (its header never reached disk).
    let mut n = node(12, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    create_empty_file(&mut n, &format!("s1/{}", seg_name(1)));
    w.write_range(&mut n, 1, 3, 42);
    let tid = w.tid();
    roll_over(&mut n);
    assert_eq!(segments_events(&n, 1), vec![(w.uid.clone(), vec![(tid, seq(1, 3))], vec![segref(1, 1, 3)])]);
    assert_eq!(read_segment(&mut n, &w.uid, 1), entries(1, 3, 42));
    assert!(!n.wal_files().contains(&wal_name(1)));

    // An empty *highest* segment is deleted and the flush appends to the one below it.
    create_empty_file(&mut n, &format!("s1/{}", seg_name(2)));
    w.write_range(&mut n, 4, 5, 42);
    roll_over(&mut n);
    assert_eq!(segments_events(&n, 1)[1].2, vec![segref(1, 1, 5)]);
    assert_eq!(n.segment_files(&w.uid), vec![seg_name(1)]);
    assert_eq!(read_segment(&mut n, &w.uid, 1), entries(1, 5, 42));
}

#[test]
fn skip_entries_lower_than_snapshot_index() {
    let mut n = node(13, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    for (i, t, d) in [(1, 42, b"a"), (2, 42, b"b"), (3, 43, b"c"), (4, 43, b"d"), (5, 43, b"e")] {
        w.write(&mut n, i, t, d);
    }
    let tid = w.tid();
    n.send_wal(WalMsg::ForceRollOver);
    n.run_wal_only();
    n.shared.snapshots.insert(&w.uid, LogIndex(3), Seq::new());
    n.run();
    assert_eq!(segments_events(&n, 1), vec![(w.uid.clone(), vec![(tid, seq(1, 5))], vec![segref(1, 4, 5)])]);
    let reader = SegmentReader::open(&mut n.fs, &format!("s1/{}", seg_name(1))).unwrap();
    for i in 1..=3 {
        assert_eq!(reader.read(&mut n.fs, LogIndex(i)).unwrap(), None, "index {i} is below the snapshot");
    }
    assert_eq!(read_segment(&mut n, &w.uid, 1), contents(&[(4, 43, b"d"), (5, 43, b"e")]));
}

#[test]
fn skip_all_entries_lower_than_snapshot_index() {
    let mut n = node(14, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 3, 43);
    let tid = w.tid();
    n.send_wal(WalMsg::ForceRollOver);
    n.run_wal_only();
    n.shared.snapshots.insert(&w.uid, LogIndex(3), Seq::new());
    n.run();
    assert_eq!(segments_events(&n, 1), vec![(w.uid.clone(), vec![(tid, seq(1, 3))], vec![])]);
    assert_eq!(n.segment_files(&w.uid), Vec::<String>::new());
}

#[test]
fn skip_entries_when_the_wal_already_floored_them() {
    // The snapshot was known at roll-over: the WAL floors the ranges itself.
    let mut n = node(15, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 5, 1);
    n.run();
    let tid = w.tid();
    n.shared.snapshots.insert(&w.uid, LogIndex(3), Seq::new());
    roll_over(&mut n);
    assert_eq!(segments_events(&n, 1), vec![(w.uid.clone(), vec![(tid, seq(4, 5))], vec![segref(1, 4, 5)])]);
    assert_eq!(segment_contents(&mut n, &w.uid), entries(4, 5, 1));
}

#[test]
fn live_indexes_1() {
    let mut n = node(16, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    for (i, t) in [(1, 42), (2, 42), (3, 43), (4, 43), (5, 43), (6, 43)] {
        w.write(&mut n, i, t, &payload_for(i, t));
    }
    n.send_wal(WalMsg::ForceRollOver);
    n.run_wal_only();
    // Snapshot at 4 that still needs 2 and 4 (Ra: insert(UId, 4, 2, [4, 2])).
    n.shared.snapshots.insert(&w.uid, LogIndex(4), seq_of(&[2, 4]));
    assert_eq!(n.shared.snapshots.smallest(&w.uid), LogIndex(2));
    n.run();
    assert_eq!(segments_events(&n, 1)[0].2, vec![segref(1, 2, 6)]);
    let reader = SegmentReader::open(&mut n.fs, &format!("s1/{}", seg_name(1))).unwrap();
    assert_eq!(reader.indexes().map(|i| i.0).collect::<Vec<_>>(), vec![2, 4, 5, 6]);
    assert_eq!(reader.read(&mut n.fs, LogIndex(3)).unwrap(), None);
    assert_eq!(
        read_segment(&mut n, &w.uid, 1),
        [2, 4, 5, 6]
            .iter()
            .map(|&i| (i, (if i == 2 { 42 } else { 43 }, payload_for(i, if i == 2 { 42 } else { 43 }))))
            .collect()
    );
}

#[test]
fn live_indexes_2() {
    // Ra's suite: ranges [{Tid1, [5]}, {Tid2, [7..9]}] (Tid1 newest) with a snapshot at 40 whose live
    // indexes are 1 and 7..9. The WAL produces exactly these ranges when 7..9 are written first and 5
    // overwrites into a successor table.
    let mut n = node(17, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_sparse(&mut n, 7, 1, b"b", None);
    w.write_sparse(&mut n, 8, 1, b"b", Some(LogIndex(7)));
    w.write_sparse(&mut n, 9, 1, b"b", Some(LogIndex(8)));
    let tid2 = w.tid();
    w.write_sparse(&mut n, 5, 1, b"a", Some(LogIndex(4)));
    let tid1 = w.tid();
    assert_ne!(tid1, tid2);
    n.send_wal(WalMsg::ForceRollOver);
    n.run_wal_only();
    n.shared.snapshots.insert(&w.uid, LogIndex(40), seq_of(&[1, 7, 8, 9]));
    n.run();
    assert_eq!(
        segments_events(&n, 1),
        vec![(w.uid.clone(), vec![(tid1, seq(5, 5)), (tid2, seq(7, 9))], vec![segref(1, 7, 9)])]
    );
    assert_eq!(read_segment(&mut n, &w.uid, 1), contents(&[(7, 1, b"b"), (8, 1, b"b"), (9, 1, b"b")]));
}

#[test]
fn missing_index_for_a_registered_server_stops_the_segment_writer() {
    let mut n = node(18, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 10, 1);
    n.run();
    let tid = w.tid();
    // Key 1 disappears from the mem table behind the segment writer's back.
    DeleteJob::plan(&n.shared.mem_tables, &DeleteSpec::Indexes(tid, seq(1, 1))).run(&mut n.shared.mem_tables);
    assert_eq!(n.shared.mem_tables.table_len(tid), 9);
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.segment_writer_error, Some(StorageError::MissingIndex { uid: w.uid.clone(), index: LogIndex(1) }));
    // The flush failed: no event, and the WAL file stays for the next recovery.
    assert!(segments_events(&n, 1).is_empty());
    assert!(n.wal_files().contains(&wal_name(1)));
    assert_eq!(n.segment_writer.stats().wal_files_done, 0);
}

#[test]
fn deleted_mem_table_is_skipped() {
    // Ra: `badarg` from ETS (the table was deleted, e.g. after a snapshot) skips the range.
    let mut n = node(19, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 10, 1);
    n.run();
    n.shared.mem_tables.delete_table(w.tid());
    roll_over(&mut n);
    assert!(n.segment_files(&w.uid).len() <= 1);
    assert_eq!(segment_contents(&mut n, &w.uid), BTreeMap::new());
    assert!(!n.wal_files().contains(&wal_name(1)));
}

#[test]
fn wal_unlink_is_not_dir_synced() {
    let uid = Uid::new("s1");
    let mut reappeared = 0;
    for seed in 0..16 {
        let mut n = node(100 + seed, 4096);
        let mut w = Writer::start(&mut n, "s1", 1);
        w.write_range(&mut n, 1, 10, 1);
        // WAL first: the roll-over's WAL directory fsync runs before the segment writer's unlink.
        n.schedule = Schedule::WalFirst;
        roll_over(&mut n);
        assert!(!n.wal_files().contains(&wal_name(1)), "seed {seed}");
        assert_eq!(segment_contents(&mut n, &uid), entries(1, 10, 1), "seed {seed}");
        let first_refs = segments_events(&n, 1)[0].2.clone();
        assert_eq!(first_refs, vec![segref(1, 1, 10)]);

        n.power_loss(CrashModel::Pessimistic);
        let back = n.wal_files().contains(&wal_name(1));
        // Everything else the flush did was synced.
        assert_eq!(segment_contents(&mut n, &uid), entries(1, 10, 1), "seed {seed}");
        n.register(&uid, Some(ProcessId(2)));
        n.boot_and_recover().unwrap_or_else(|e| panic!("seed {seed}: boot failed: {e}"));
        assert!(!n.wal_files().contains(&wal_name(1)), "seed {seed}: the replayed file is deleted again");
        assert_eq!(segment_contents(&mut n, &uid), entries(1, 10, 1), "seed {seed}");
        if back {
            reappeared += 1;
            // The replay flushed the same entries a second time, into the same segment.
            assert_eq!(n.segment_writer.stats().entries, 10, "seed {seed}");
            let events = segments_events(&n, 2);
            assert_eq!(events.len(), 1, "seed {seed}");
            assert_eq!(events[0].2, vec![segref(1, 1, 10)], "seed {seed}");
            let mut refs = SegRefs::from_newest_first(&first_refs);
            assert_eq!(refs.update(&events[0].2), Vec::<String>::new(), "seed {seed}");
        } else {
            assert_eq!(n.segment_writer.stats().entries, 0, "seed {seed}");
        }
    }
    assert!(reappeared > 0, "the unlinked WAL file never came back after a power loss");
    assert!(reappeared < 16, "the unlink never survived a power loss");
}

#[test]
fn segment_writer_deletes_are_interleavable() {
    let mut interleaved = 0;
    for seed in 0..8 {
        let mut n = node(200 + seed, 4096);
        n.schedule = Schedule::Random;
        let mut down = Writer::start(&mut n, "down", 2);
        down.write_range(&mut n, 1, 100, 1);
        n.run();
        let tid = down.tid();
        n.shared.directory.set_process(&down.uid, None);
        let mut other = Writer::start(&mut n, "s2", 3);
        n.send_wal(WalMsg::ForceRollOver);
        // Keep the WAL busy while the segment writer works.
        other.write_range(&mut n, 1, 60, 1);

        let mut delete_steps = 0;
        let mut wal_steps_mid_delete = 0;
        loop {
            let before = n.shared.mem_tables.table_len(tid);
            let Some(actor) = n.step_actor() else { break };
            let after = n.shared.mem_tables.table_len(tid);
            match actor {
                Actor::SegmentWriter => {
                    if after < before {
                        assert!(before - after <= 8, "seed {seed}: {} keys in one step", before - after);
                        delete_steps += 1;
                    }
                }
                Actor::Wal => {
                    assert_eq!(before, after);
                    if 0 < before && before < 100 {
                        wal_steps_mid_delete += 1;
                    }
                }
            }
        }
        assert_eq!(n.wal_error, None);
        assert_eq!(n.segment_writer_error, None);
        assert_eq!(n.shared.mem_tables.table_len(tid), 0, "seed {seed}");
        assert!(delete_steps > 1, "seed {seed}: the delete took {delete_steps} step(s)");
        assert_eq!(delete_steps, 13, "seed {seed}: 100 keys, 8 per step");
        assert_eq!(n.written(ProcessId(3)), seq(1, 60));
        if wal_steps_mid_delete > 0 {
            interleaved += 1;
        }
    }
    assert!(interleaved > 0, "no WAL step ever ran between two delete steps");
}

#[test]
fn segments_event_terms_are_read_from_the_mem_table() {
    // The segment writer copies (term, payload) from the mem table, not from the WAL file.
    let mut n = node(20, 4096);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 4, 7);
    roll_over(&mut n);
    let reader = SegmentReader::open(&mut n.fs, &format!("s1/{}", seg_name(1))).unwrap();
    for i in 1..=4 {
        assert_eq!(reader.read(&mut n.fs, LogIndex(i)).unwrap(), Some((Term(7), payload_for(i, 7))));
    }
}

#[test]
fn the_wal_unlink_is_dir_synced_unless_wal_unlink_no_dir_sync() {
    // raft-core's fix (found by swarm, seed 330): the WAL directory is fsynced after the unlink, so
    // unlinks become durable in order and a flushed WAL file never comes back; Ra's code (the switch)
    // lets it come back.
    for (bugs, synced) in [(Bugs::none(), true), (Bugs::of(&[raft_core::Bug::WalUnlinkNoDirSync]), false)] {
        let mut came_back = 0;
        for seed in 0..16 {
            let mut cfg = segment_writer_config(4096);
            cfg.bugs = bugs.clone();
            let mut n = Node::new(seed, wal_config(1 << 20, Bugs::none()), cfg);
            n.boot_and_recover().unwrap();
            let mut w = Writer::start(&mut n, "s1", 1);
            w.write_range(&mut n, 1, 10, 1);
            n.send_wal(WalMsg::ForceRollOver);
            n.run();
            assert_eq!(n.segment_writer.stats().wal_files_done, 1);
            n.power_loss(CrashModel::Pessimistic);
            if n.wal_files().contains(&"0000000000000001.wal".to_owned()) {
                came_back += 1;
            }
        }
        if synced {
            assert_eq!(came_back, 0, "a synced unlink was lost");
        } else {
            assert!(came_back > 0, "Ra's unsynced unlink never came back in 16 seeds");
        }
    }
}
