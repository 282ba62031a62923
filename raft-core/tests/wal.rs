//! Ports of Ra's `ra_log_wal_SUITE` scenarios onto the storage actors, driven by the small
//! deterministic loop in `common`.

mod common;

use std::collections::BTreeMap;

use common::*;
use raft_core::storage::messages::WalMsg;
use raft_core::storage::wal::{self, WriterSeq};
use raft_core::storage::wal_format::{self, Parsed};
use raft_core::storage::{LogEvent, NodeNotice, Ranges, StorageError};
use raft_core::{Bug, Bugs, LogIndex, ProcessId, Seq, Uid};

fn seq(from: u64, to: u64) -> Seq {
    Seq::from_range(LogIndex(from), LogIndex(to))
}

fn node(seed: u64, max_size: u64) -> Node {
    let mut n = Node::new(seed, wal_config(max_size, Bugs::none()), segment_writer_config(4096));
    n.boot_and_recover().unwrap();
    n
}

#[test]
fn basic_log_writes() {
    let mut n = node(1, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 10, 1);
    n.run();
    assert_eq!(n.written(ProcessId(1)), seq(1, 10));
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(10))));
}

/// Two WAL files of one server whose process is not running at boot (the node just lost power).
fn two_wal_files_then_power_loss(seed: u64, bugs: Bugs) -> Node {
    let mut n = Node::new(seed, wal_config(1 << 20, bugs), segment_writer_config(4096));
    n.boot_and_recover().unwrap();
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 100, 1);
    n.send_wal(WalMsg::ForceRollOver);
    w.write_range(&mut n, 101, 200, 1);
    n.run_wal_only();
    assert_eq!(n.written(ProcessId(1)), seq(1, 200));
    n.power_loss(vfs::CrashModel::Pessimistic);
    n.register(&Uid::new("s1"), None);
    n
}

#[test]
fn recover_multi_wal_with_concurrent_deletes() {
    let mut failures_with_bug = 0;
    for seed in 0..40 {
        let mut fixed = two_wal_files_then_power_loss(seed, Bugs::none());
        fixed.boot_and_recover().unwrap_or_else(|e| panic!("seed {seed}: fixed recovery failed: {e}"));
        assert_eq!(fixed.wal.last_writer_seq(&Uid::new("s1")), Some(WriterSeq::InSeq(LogIndex(200))));
        assert_eq!(segment_contents(&mut fixed, &Uid::new("s1")).len(), 200, "seed {seed}");

        let mut buggy = two_wal_files_then_power_loss(seed, Bugs::of(&[Bug::WalRecoveryRescan]));
        match buggy.boot_and_recover() {
            Ok(()) => {}
            Err(StorageError::GapDetected { index, .. }) => {
                assert_eq!(index, LogIndex(101));
                failures_with_bug += 1;
            }
            Err(e) => panic!("seed {seed}: unexpected error {e}"),
        }
    }
    assert!(failures_with_bug > 0, "wal-recovery-rescan never produced gap_detected");
}

// ---- helpers ---------------------------------------------------------------------------------------

const P1: ProcessId = ProcessId(1);
const P2: ProcessId = ProcessId(2);

fn seq_of(indexes: &[u64]) -> Seq {
    Seq::from_indexes(indexes.iter().map(|&i| LogIndex(i)))
}

/// The `Written` events a process received, in order, as (term, indexes).
fn written_events(n: &Node, process: ProcessId) -> Vec<(u64, Seq)> {
    n.events
        .get(&process)
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            LogEvent::Written { term, seq, .. } => Some((term.0, seq.clone())),
            _ => None,
        })
        .collect()
}

/// The WAL directory's names, sorted.
fn wal_dir(n: &mut Node) -> Vec<String> {
    let mut names = n.wal_files();
    names.sort();
    names
}

fn wal_dir_of(nums: &[u64]) -> Vec<String> {
    let mut names: Vec<String> = nums.iter().map(|n| format!("{n:016}.wal")).collect();
    names.push("writers.snapshot".to_owned());
    names
}

/// (index, term, trunc) of every whole record in a WAL file.
fn wal_records(n: &mut Node, path: &str) -> Vec<(u64, u64, bool)> {
    use vfs::FileSystem;
    let data = n.fs.read_file(path).unwrap();
    assert_eq!(data[..wal_format::HEADER_SIZE], wal_format::file_header());
    let mut out = Vec::new();
    let mut pos = wal_format::HEADER_SIZE;
    while let Parsed::Record(r) = wal_format::parse_at(&data, pos) {
        assert!(r.checksum_ok(false));
        out.push((r.index.0, r.term.0, r.trunc));
        pos = r.end;
    }
    out
}

/// A deterministic, never-zero payload of `len` bytes for index `i`.
fn big_payload(i: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|j| ((i * 31 + j) % 255 + 1) as u8).collect()
}

/// `big_payload` entries `from..=to` at `term`, as mem table or segment contents.
fn big_entries(from: u64, to: u64, term: u64, len: usize) -> TableContents {
    (from..=to).map(|i| (i, (term, big_payload(i, len)))).collect()
}

/// `writers.snapshot` bytes for a map keyed by uid string (the WAL's own encoder).
fn encode_writers_snapshot(writers: &BTreeMap<String, WriterSeq>) -> Vec<u8> {
    wal::encode_writers_snapshot(&writers.iter().map(|(u, s)| (Uid::new(u), *s)).collect())
}

fn decode_writers_snapshot(b: &[u8]) -> BTreeMap<String, WriterSeq> {
    let map = wal::decode_writers_snapshot(b).expect("a readable writers.snapshot");
    map.into_iter().map(|(u, s)| (u.0, s)).collect()
}

fn read_writers_snapshot(n: &mut Node) -> BTreeMap<String, WriterSeq> {
    use vfs::FileSystem;
    decode_writers_snapshot(&n.fs.read_file("wal/writers.snapshot").unwrap())
}

/// Power loss that keeps everything, then the server re-registered without a running process (the
/// names store is not modelled yet).
fn restart_node(n: &mut Node, uids: &[&Uid]) {
    n.power_loss(vfs::CrashModel::NoLoss);
    for uid in uids {
        n.register(uid, None);
    }
}

fn union(a: TableContents, b: TableContents) -> TableContents {
    a.into_iter().chain(b).collect()
}

// ---- writes ----------------------------------------------------------------------------------------

#[test]
fn sparse_writes() {
    let mut n = node(2, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_sparse(&mut n, 12, 1, b"value", Some(LogIndex(11)));
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq_of(&[12]))]);
    // A sparse write at 15 naming 12 as the previous index.
    w.write_sparse(&mut n, 15, 1, b"value2", Some(LogIndex(12)));
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq_of(&[12])), (1, seq_of(&[15]))]);
    assert!(n.resends(P1).is_empty());
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(15))));
    assert!(n.take_casts().is_empty());

    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(w.tid(), seq_of(&[12, 15]))])]), wal_path(1))]);
    let expected: TableContents = [(12, (1, b"value".to_vec())), (15, (1, b"value2".to_vec()))].into();
    assert_eq!(segment_contents(&mut n, &w.uid), expected);
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[2]));
}

#[test]
fn sparse_write_same_batch() {
    let mut n = node(3, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_sparse(&mut n, 12, 1, b"value", Some(LogIndex(11)));
    w.write_sparse(&mut n, 15, 1, b"value2", Some(LogIndex(12)));
    n.run();
    // One batch: one event holding both.
    assert_eq!(written_events(&n, P1), vec![(1, seq_of(&[12, 15]))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(15))));
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(w.tid(), seq_of(&[12, 15]))])]), wal_path(1))]);
    assert_eq!(segment_contents(&mut n, &w.uid).keys().copied().collect::<Vec<_>>(), vec![12, 15]);
}

#[test]
fn sparse_write_recover() {
    let mut n = node(4, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_sparse(&mut n, 12, 1, b"value", Some(LogIndex(11)));
    n.run();
    w.write_sparse(&mut n, 15, 1, b"value2", Some(LogIndex(12)));
    n.run();
    assert_eq!(n.written(P1), seq_of(&[12, 15]));

    // No mem tables survive: initial-mode recovery creates a fresh table and sparse-inserts into it.
    restart_node(&mut n, &[&w.uid]);
    n.boot_wal_only().unwrap();
    let tables = mem_table_contents(&n, &w.uid);
    let expected: TableContents = [(12, (1, b"value".to_vec())), (15, (1, b"value2".to_vec()))].into();
    assert_eq!(tables.len(), 1);
    let (tid, contents) = &tables[0];
    assert_eq!(contents, &expected);
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(*tid, seq_of(&[12, 15]))])]), wal_path(1))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(15))));

    n.finish_recovery();
    assert_eq!(segment_contents(&mut n, &w.uid), expected);
    // No process runs yet: the segment writer deleted the flushed entries itself.
    assert!(mem_table_contents(&n, &w.uid).iter().all(|(_, c)| c.is_empty()));
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[2]));
}

#[test]
fn rewrite() {
    let mut n = node(5, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    // The same index twice in one batch, to the same table at the same term.
    w.write(&mut n, 12, 1, b"value");
    w.append_raw(&mut n, w.tid(), Some(11), 12, 1, b"value");
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq_of(&[12]))]);
    // And once more in a new batch.
    w.append_raw(&mut n, w.tid(), Some(11), 12, 1, b"value");
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq_of(&[12])), (1, seq_of(&[12]))]);
    assert!(n.resends(P1).is_empty());
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(12))));
    assert_eq!(wal_records(&mut n, &wal_path(1)), vec![(12, 1, false); 3]);

    // 13, then a resend from 12 to the same table: the WAL is back at 12, and the file's range for the
    // table is cut below the resent index before it is extended (Ra's `update_ranges` uses
    // `ra_seq:add`, which limits the old range "as in some resend cases we may have got back before the
    // prior range").
    w.write(&mut n, 13, 1, b"value13");
    n.run();
    w.append_raw(&mut n, w.tid(), Some(11), 12, 1, b"value");
    n.run();
    assert_eq!(
        written_events(&n, P1),
        vec![(1, seq_of(&[12])), (1, seq_of(&[12])), (1, seq_of(&[13])), (1, seq_of(&[12]))]
    );
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(12))));

    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(w.tid(), seq_of(&[12]))])]), wal_path(1))]);
    assert_eq!(segment_contents(&mut n, &w.uid), [(12, (1, b"value".to_vec()))].into());
    // 14 after 13 is a gap for the WAL, which last saw 12.
    w.write(&mut n, 14, 1, b"value14");
    n.run();
    assert_eq!(n.resends(P1), vec![LogIndex(13)]);
}

#[test]
fn consecutive_terms_in_batch_should_result_in_two_written_events() {
    let mut n = node(6, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 3, 1);
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3))]);
    w.write(&mut n, 4, 1, &payload_for(4, 1));
    w.write(&mut n, 5, 2, &payload_for(5, 2));
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3)), (1, seq_of(&[4])), (2, seq_of(&[5]))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(5))));
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(w.tid(), seq(1, 5))])]), wal_path(1))]);
    assert_eq!(segment_contents(&mut n, &w.uid), union(entries(1, 4, 1), entries(5, 5, 2)));
}

#[test]
fn overwrite_in_same_batch() {
    let mut n = node(7, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 3, 1);
    n.run();
    let tid1 = w.tid();
    // Write 4 and 5, then immediately overwrite 5 at term 2 (which needs a new mem table).
    w.write(&mut n, 4, 1, &payload_for(4, 1));
    w.write(&mut n, 5, 1, &payload_for(5, 1));
    w.write(&mut n, 5, 2, &payload_for(5, 2));
    n.run();
    let tid2 = w.tid();
    assert_ne!(tid1, tid2);
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3)), (1, seq(4, 5)), (2, seq_of(&[5]))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(5))));
    assert_eq!(mem_table_contents(&n, &w.uid), vec![(tid1, entries(1, 5, 1)), (tid2, entries(5, 5, 2))]);

    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(
        n.take_casts(),
        vec![(ranges_of(&[(&w.uid, vec![(tid2, seq_of(&[5])), (tid1, seq(1, 5))])]), wal_path(1))]
    );
    assert_eq!(segment_contents(&mut n, &w.uid), union(entries(1, 4, 1), entries(5, 5, 2)));
}

#[test]
fn overwrite_completely() {
    let mut n = node(8, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 3, 5, 1);
    n.run();
    let tid1 = w.tid();
    assert_eq!(written_events(&n, P1), vec![(1, seq(3, 5))]);
    w.write_range(&mut n, 3, 5, 2);
    n.run();
    let tid2 = w.tid();
    assert_ne!(tid1, tid2);
    assert_eq!(written_events(&n, P1), vec![(1, seq(3, 5)), (2, seq(3, 5))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(5))));
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(tid2, seq(3, 5)), (tid1, seq(3, 5))])]), wal_path(1))]);
    // Only the term-2 entries reach the segments.
    assert_eq!(segment_contents(&mut n, &w.uid), entries(3, 5, 2));
}

#[test]
fn overwrite_inside() {
    let mut n = node(9, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 5, 1);
    n.run();
    let tid1 = w.tid();
    w.write_range(&mut n, 3, 4, 2);
    n.run();
    let tid2 = w.tid();
    assert_ne!(tid1, tid2);
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 5)), (2, seq(3, 4))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(4))));
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(tid2, seq(3, 4)), (tid1, seq(1, 5))])]), wal_path(1))]);
    // The older table is limited to below the overwrite: index 5 at term 1 is not flushed.
    assert_eq!(segment_contents(&mut n, &w.uid), union(entries(1, 2, 1), entries(3, 4, 2)));
}

#[test]
fn writes_snapshot_idx_overtakes() {
    let mut n = node(10, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 3, 1);
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3))]);
    // The snapshot index overtakes the queued writes: smallest live index becomes 6.
    n.shared.snapshots.insert(&w.uid, LogIndex(5), Seq::new());
    w.write_range(&mut n, 4, 7, 1);
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3)), (1, seq(6, 7))]);
    assert!(n.resends(P1).is_empty());
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(7))));
    // 4 and 5 were dropped; 6 carries the truncate bit.
    assert_eq!(
        wal_records(&mut n, &wal_path(1)),
        vec![(1, 1, false), (2, 1, false), (3, 1, false), (6, 1, true), (7, 1, false)]
    );
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(w.tid(), seq(6, 7))])]), wal_path(1))]);
    assert_eq!(segment_contents(&mut n, &w.uid), entries(6, 7, 1));
}

#[test]
fn writes_implicit_truncate_write() {
    let mut n = node(11, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 3, 1);
    n.run();
    // A snapshot at 5, then the next write is the first index after it (prev 5 is beyond the WAL's 3).
    n.shared.snapshots.insert(&w.uid, LogIndex(5), Seq::new());
    w.write_range(&mut n, 6, 7, 1);
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3)), (1, seq(6, 7))]);
    assert!(n.resends(P1).is_empty());
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(7))));
    assert_eq!(
        wal_records(&mut n, &wal_path(1)),
        vec![(1, 1, false), (2, 1, false), (3, 1, false), (6, 1, true), (7, 1, false)]
    );
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(w.tid(), seq(6, 7))])]), wal_path(1))]);
    assert_eq!(segment_contents(&mut n, &w.uid), entries(6, 7, 1));
}

#[test]
fn out_of_seq_writes() {
    let mut n = node(12, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 3, 1);
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3))]);
    // 5 after 3: a gap.
    w.write(&mut n, 5, 1, &payload_for(5, 1));
    n.run();
    assert_eq!(n.resends(P1), vec![LogIndex(4)]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::OutOfSeq(LogIndex(3))));
    // Dropped while out of sequence.
    w.write(&mut n, 6, 1, &payload_for(6, 1));
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3))]);
    assert_eq!(n.resends(P1), vec![LogIndex(4)]);
    // The resend resumes.
    w.write(&mut n, 4, 1, &payload_for(4, 1));
    n.run();
    w.write(&mut n, 5, 1, &payload_for(5, 1));
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3)), (1, seq_of(&[4])), (1, seq_of(&[5]))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(5))));
    // Another gap, then a roll-over: the out-of-sequence state survives it.
    w.write(&mut n, 7, 1, &payload_for(7, 1));
    n.run();
    assert_eq!(n.resends(P1), vec![LogIndex(4), LogIndex(6)]);
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    w.write(&mut n, 8, 1, &payload_for(8, 1));
    n.run();
    assert_eq!(written_events(&n, P1).len(), 3, "no Written for 8 while out of sequence");
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::OutOfSeq(LogIndex(5))));
    // The missing one.
    w.write(&mut n, 6, 1, &payload_for(6, 1));
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3)), (1, seq_of(&[4])), (1, seq_of(&[5])), (1, seq_of(&[6]))]);
    assert_eq!(n.resends(P1), vec![LogIndex(4), LogIndex(6)]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(6))));
    // File 1 was flushed (1..5); 6 is in file 2.
    assert_eq!(segment_contents(&mut n, &w.uid), entries(1, 5, 1));
    assert_eq!(wal_records(&mut n, &wal_path(2)), vec![(6, 1, false)]);
}

// ---- roll-over -------------------------------------------------------------------------------------

#[test]
fn roll_over_max_size() {
    const LEN: usize = 1024;
    const WRITES: u64 = 100;
    let max_size = 10 * 1024;
    let mut n = node(13, max_size);
    let mut w = Writer::start(&mut n, "s1", 1);
    for i in 1..=WRITES {
        w.write(&mut n, i, 1, &big_payload(i, LEN));
    }
    n.run();
    assert_eq!(n.written(P1), seq(1, WRITES));
    // Where the files must split: a roll-over happens before an append once the file exceeds the max.
    let first_record = 3 + 2 + w.uid.as_str().len() + wal_format::FIXED_BODY + LEN;
    let later_record = 3 + wal_format::FIXED_BODY + LEN;
    let mut files: Vec<Seq> = vec![Seq::new()];
    let mut size = 0;
    for i in 1..=WRITES {
        if size > max_size as usize {
            files.push(Seq::new());
            size = 0;
        }
        size += if size == 0 { first_record } else { later_record };
        files.last_mut().unwrap().append(LogIndex(i));
    }
    assert!(files.len() > 5, "{files:?}");
    let rolled = &files[..files.len() - 1];
    let expected_casts: Vec<_> = rolled
        .iter()
        .enumerate()
        .map(|(k, s)| (ranges_of(&[(&w.uid, vec![(w.tid(), s.clone())])]), wal_path(k as u64 + 1)))
        .collect();
    assert_eq!(n.take_casts(), expected_casts);
    assert_eq!(n.wal.stats().files, files.len() as u64);
    // The segment writer flushed every rolled file and deleted it.
    assert_eq!(n.segment_writer.stats().wal_files_done, rolled.len() as u64);
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[files.len() as u64]));
    let last_rolled = rolled.last().unwrap().last().unwrap().0;
    assert_eq!(segment_contents(&mut n, &w.uid), big_entries(1, last_rolled, 1, LEN));
    let current: Vec<u64> = wal_records(&mut n, &wal_path(files.len() as u64)).iter().map(|r| r.0).collect();
    assert_eq!(current, files.last().unwrap().iter().map(|i| i.0).collect::<Vec<_>>());
}

#[test]
fn roll_over_entry_limit() {
    let mut config = wal_config(1 << 30, Bugs::none());
    config.max_entries = Some(1000);
    let mut n = Node::new(14, config, segment_writer_config(4096));
    n.boot_and_recover().unwrap();
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 1001, 1);
    n.run();
    assert_eq!(n.written(P1), seq(1, 1001));
    // 1000 is the last entry before the limit.
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(w.tid(), seq(1, 1000))])]), wal_path(1))]);
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[2]));
    assert_eq!(segment_contents(&mut n, &w.uid), entries(1, 1000, 1));
    assert_eq!(wal_records(&mut n, &wal_path(2)), vec![(1001, 1, false)]);
}

#[test]
fn roll_over_with_data_larger_than_max_size() {
    const LEN: usize = 64 * 1024;
    let mut n = node(15, 1024 * 2 * 10);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write(&mut n, 1, 1, &big_payload(1, LEN));
    w.write(&mut n, 2, 1, &big_payload(2, LEN));
    n.run();
    assert_eq!(n.written(P1), seq(1, 2));
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(w.tid(), seq_of(&[1]))])]), wal_path(1))]);
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[2]));
    assert_eq!(segment_contents(&mut n, &w.uid), big_entries(1, 1, 1, LEN));
    // The second entry only rolls the WAL when the next one arrives.
    w.write(&mut n, 3, 1, &big_payload(3, LEN));
    n.run();
    assert_eq!(n.written(P1), seq(1, 3));
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(w.tid(), seq_of(&[2]))])]), wal_path(2))]);
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[3]));
    assert_eq!(segment_contents(&mut n, &w.uid), big_entries(1, 2, 1, LEN));
}

// ---- writers map -----------------------------------------------------------------------------------

#[test]
fn writers_snapshot_persisted_at_rollover() {
    let mut n = node(16, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 50, 1);
    n.run();
    assert_eq!(n.written(P1), seq(1, 50));
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.take_casts().len(), 1);
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[2]), "no tmp file left behind");
    assert_eq!(read_writers_snapshot(&mut n), [("s1".to_owned(), WriterSeq::InSeq(LogIndex(50)))].into());
}

#[test]
fn writers_snapshot_survives_empty_wal_recovery() {
    let mut n = node(17, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 10, 1);
    n.run();
    assert_eq!(n.written(P1), seq(1, 10));
    // Restart: recovery replays the WAL, and its roll-over writes the writers snapshot.
    restart_node(&mut n, &[&w.uid]);
    n.boot_and_recover().unwrap();
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[2]), "file 1 flushed and deleted");
    assert_eq!(read_writers_snapshot(&mut n), [("s1".to_owned(), WriterSeq::InSeq(LogIndex(10)))].into());
    // Restart again: the only WAL file is empty, so the writers map comes from the snapshot alone.
    restart_node(&mut n, &[&w.uid]);
    n.boot_and_recover().unwrap();
    assert_eq!(n.wal.stats().recovered_records, 0);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(10))));
    // Gap detection works from the seeded state.
    let mut w2 = Writer::start(&mut n, "s1", 2);
    w2.write(&mut n, 20, 1, &payload_for(20, 1));
    n.run();
    assert_eq!(n.resends(P2), vec![LogIndex(11)]);
    assert!(written_events(&n, P2).is_empty());
}

#[test]
fn forget_writer_removes_entry() {
    let mut n = node(18, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 5, 1);
    n.run();
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(5))));
    n.send_wal(WalMsg::ForgetWriter(w.uid.clone()));
    n.run();
    assert_eq!(n.wal.last_writer_seq(&w.uid), None);
    // Without tracking, a write is accepted whatever its previous index.
    w.write(&mut n, 10, 1, &payload_for(10, 1));
    n.run();
    assert!(n.resends(P1).is_empty());
    assert_eq!(n.written(P1), seq(1, 5).union(&seq_of(&[10])));
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(10))));
}

#[test]
fn recovery_trims_stale_writers() {
    use vfs::FileSystem;
    let mut n = node(19, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 5, 1);
    n.run();
    restart_node(&mut n, &[&w.uid]);
    // The snapshot written at boot is empty; inject a stale writer and a registered one with no WAL data.
    assert_eq!(read_writers_snapshot(&mut n), BTreeMap::new());
    let stale = Uid::new("stale_uid_not_registered");
    let quiet = Uid::new("s9");
    n.register(&quiet, None);
    let injected: BTreeMap<String, WriterSeq> = [
        (stale.as_str().to_owned(), WriterSeq::InSeq(LogIndex(99))),
        (quiet.as_str().to_owned(), WriterSeq::InSeq(LogIndex(42))),
    ]
    .into();
    let path = "wal/writers.snapshot";
    let fd = n.fs.open(path, &vfs::OpenOptions::create_truncate()).unwrap();
    n.fs.write(fd, &encode_writers_snapshot(&injected)).unwrap();
    n.fs.fsync(fd).unwrap();
    n.fs.close(fd).unwrap();

    n.boot_and_recover().unwrap();
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(5))));
    assert_eq!(n.wal.last_writer_seq(&quiet), Some(WriterSeq::InSeq(LogIndex(42))), "the snapshot was read");
    assert_eq!(n.wal.last_writer_seq(&stale), None);
    // The trimmed map is what the recovery roll-over persisted.
    assert_eq!(
        read_writers_snapshot(&mut n),
        [("s1".to_owned(), WriterSeq::InSeq(LogIndex(5))), ("s9".to_owned(), WriterSeq::InSeq(LogIndex(42)))].into()
    );
}

// ---- recovery --------------------------------------------------------------------------------------

#[test]
fn recover() {
    for model in [vfs::CrashModel::NoLoss, vfs::CrashModel::Pessimistic] {
        for seed in 0..4 {
            let ctx = format!("{model:?} seed {seed}");
            let mut n = node(100 + seed, 1 << 20);
            let uid = Uid::new("s1");
            assert_eq!(n.wal.last_writer_seq(&uid), None);
            let mut w = Writer::start(&mut n, "s1", 1);
            w.write_range(&mut n, 1, 100, 1);
            n.send_wal(WalMsg::ForceRollOver);
            w.write_range(&mut n, 101, 200, 2);
            // The segment writer does not run (Ra's suite mocks it): both WAL files stay.
            n.run_wal_only();
            let terms: Vec<u64> = written_events(&n, P1).iter().map(|(t, _)| *t).collect();
            assert_eq!(terms, vec![1, 2], "{ctx}");
            assert_eq!(n.written(P1), seq(1, 200), "{ctx}");
            assert_eq!(n.take_casts().len(), 1, "{ctx}");

            n.power_loss(model);
            n.register(&uid, None);
            n.boot_wal_only().unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(n.wal.last_writer_seq(&uid), Some(WriterSeq::InSeq(LogIndex(200))), "{ctx}");
            let expected = union(entries(1, 100, 1), entries(101, 200, 2));
            let tables = mem_table_contents(&n, &uid);
            assert_eq!(tables.len(), 1, "{ctx}");
            let (tid, contents) = &tables[0];
            assert_eq!(contents, &expected, "{ctx}");
            assert_eq!(
                n.take_casts(),
                vec![
                    (ranges_of(&[(&uid, vec![(*tid, seq(1, 100))])]), wal_path(1)),
                    (ranges_of(&[(&uid, vec![(*tid, seq(101, 200))])]), wal_path(2)),
                ],
                "{ctx}"
            );
            n.finish_recovery();
            assert_eq!(segment_contents(&mut n, &uid), expected, "{ctx}");
            assert_eq!(wal_dir(&mut n), wal_dir_of(&[3]), "{ctx}");

            // The tracking state was recovered: an out-of-sequence write is refused.
            let mut w2 = Writer::start(&mut n, "s1", 2);
            w2.write(&mut n, 220, 2, &payload_for(220, 2));
            n.run();
            assert_eq!(n.resends(P2), vec![LogIndex(201)], "{ctx}");
            assert!(written_events(&n, P2).is_empty(), "{ctx}");
        }
    }
}

#[test]
fn recover_overwrite() {
    let mut n = node(20, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 10, 1);
    n.run_wal_only();
    w.write_range(&mut n, 5, 20, 2);
    n.run_wal_only();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 10)), (2, seq(5, 20))]);

    restart_node(&mut n, &[&w.uid]);
    n.boot_wal_only().unwrap();
    let tables = mem_table_contents(&n, &w.uid);
    assert_eq!(tables.len(), 2);
    let (old, new) = (tables[0].0, tables[1].0);
    assert_eq!(tables, vec![(old, entries(1, 10, 1)), (new, entries(5, 20, 2))]);
    let mt = n.shared.mem_tables.mem_table_please(&w.uid);
    assert_eq!(mt.range(), Some((LogIndex(1), LogIndex(20))));
    assert_eq!((mt.tid(), mt.prev().map(|p| p.tid())), (new, Some(old)));
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(new, seq(5, 20)), (old, seq(1, 10))])]), wal_path(1))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(20))));
    n.finish_recovery();
    assert_eq!(segment_contents(&mut n, &w.uid), union(entries(1, 4, 1), entries(5, 20, 2)));
}

#[test]
fn recover_with_snapshot_index() {
    let mut n = node(21, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 100, 1);
    n.run_wal_only();
    assert_eq!(n.written(P1), seq(1, 100));
    restart_node(&mut n, &[&w.uid]);
    // Snapshot state is seeded before WAL recovery: snapshot at 50, smallest live index 51.
    n.shared.snapshots.insert(&w.uid, LogIndex(50), Seq::new());
    n.boot_wal_only().unwrap();
    let tables = mem_table_contents(&n, &w.uid);
    assert_eq!(tables.len(), 1);
    let (tid, contents) = &tables[0];
    assert_eq!(contents, &entries(51, 100, 1));
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(*tid, seq(51, 100))])]), wal_path(1))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(100))));
    n.finish_recovery();
    assert_eq!(segment_contents(&mut n, &w.uid), entries(51, 100, 1));
}

#[test]
fn recover_delete_uid() {
    let mut n = node(22, 1 << 20);
    let mut s1 = Writer::start(&mut n, "s1", 1);
    let mut s2 = Writer::start(&mut n, "DELETEDUID", 2);
    s1.write_range(&mut n, 1, 3, 1);
    s2.write_range(&mut n, 5, 9, 9);
    n.send_wal(WalMsg::ForceRollOver);
    n.run_wal_only();
    assert_eq!(
        n.take_casts(),
        vec![(
            ranges_of(&[(&s1.uid, vec![(s1.tid(), seq(1, 3))]), (&s2.uid, vec![(s2.tid(), seq(5, 9))])]),
            wal_path(1)
        )]
    );
    s1.write_range(&mut n, 4, 6, 1);
    s2.write(&mut n, 10, 9, &payload_for(10, 9));
    n.run_wal_only();
    assert_eq!(n.written(P1), seq(1, 6));
    assert_eq!(n.written(P2), seq(5, 10));

    // s2 is deleted; the segment writer then flushes file 1 and drops s2's mem tables instead.
    assert!(n.shared.directory.unregister(&s2.uid));
    n.run();
    assert_eq!(n.segment_writer_error, None);
    assert!(n.shared.mem_tables.tables_of(&s2.uid).is_empty());
    assert!(n.segment_files(&s2.uid).is_empty());
    assert_eq!(segment_contents(&mut n, &s1.uid), entries(1, 3, 1));
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[2]));

    // Recovery of file 2 skips s2's record.
    restart_node(&mut n, &[&s1.uid]);
    n.boot_wal_only().unwrap();
    let tables = mem_table_contents(&n, &s1.uid);
    assert_eq!(tables.len(), 1);
    let (tid, contents) = &tables[0];
    assert_eq!(contents, &entries(4, 6, 1));
    assert!(n.shared.mem_tables.tables_of(&s2.uid).is_empty());
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&s1.uid, vec![(*tid, seq(4, 6))])]), wal_path(2))]);
    assert_eq!(n.wal.last_writer_seq(&s1.uid), Some(WriterSeq::InSeq(LogIndex(6))));
    assert_eq!(n.wal.last_writer_seq(&s2.uid), None);
    assert_eq!(n.wal.stats().recovered_records, 3);
    n.finish_recovery();
    assert_eq!(segment_contents(&mut n, &s1.uid), entries(1, 6, 1));
    assert!(n.segment_files(&s2.uid).is_empty());
    assert!(!read_writers_snapshot(&mut n).contains_key(s2.uid.as_str()));
}

#[test]
fn recover_empty() {
    let mut n = node(23, 1 << 20);
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[1]));
    n.power_loss(vfs::CrashModel::NoLoss);
    n.boot_wal_only().unwrap();
    assert_eq!(n.take_casts(), vec![(Ranges::new(), wal_path(1))]);
    assert_eq!(n.wal.stats().recovered_records, 0);
    n.finish_recovery();
    assert!(n.shared.mem_tables.is_empty());
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[2]));
    assert_eq!(read_writers_snapshot(&mut n), BTreeMap::new());
    // And once more.
    n.power_loss(vfs::CrashModel::NoLoss);
    n.boot_and_recover().unwrap();
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[3]));
}

/// 100 entries of 1000 bytes in WAL file 1, then a power loss that keeps them.
fn hundred_big_entries(seed: u64) -> (Node, Uid) {
    let mut n = node(seed, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    for i in 1..=100 {
        w.write(&mut n, i, 1, &big_payload(i, 1000));
    }
    n.run();
    assert_eq!(n.written(P1), seq(1, 100));
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[1]));
    restart_node(&mut n, &[&w.uid]);
    (n, w.uid)
}

/// Recovery yields 1..99 of [`hundred_big_entries`].
fn assert_recovers_first_99(n: &mut Node, uid: &Uid) {
    n.boot_wal_only().unwrap();
    let tables = mem_table_contents(n, uid);
    assert_eq!(tables.len(), 1);
    let (tid, contents) = &tables[0];
    assert_eq!(contents, &big_entries(1, 99, 1, 1000));
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(uid, vec![(*tid, seq(1, 99))])]), wal_path(1))]);
    assert_eq!(n.wal.last_writer_seq(uid), Some(WriterSeq::InSeq(LogIndex(99))));
    n.finish_recovery();
    assert_eq!(segment_contents(n, uid), big_entries(1, 99, 1, 1000));
}

#[test]
fn recover_with_partial_last_entry() {
    let (mut n, uid) = hundred_big_entries(24);
    truncate_by(&mut n, &wal_path(1), 10);
    assert_recovers_first_99(&mut n, &uid);
}

#[test]
fn recover_with_last_entry_corruption() {
    let (mut n, uid) = hundred_big_entries(25);
    let len = file_len(&mut n, &wal_path(1));
    overwrite_at(&mut n, &wal_path(1), len - 10, &[0; 10]);
    assert_recovers_first_99(&mut n, &uid);
}

/// A power cut left garbage in the unsynced sectors of the last batch: the last record fails its
/// checksum and non-zero bytes that verify as nothing follow it. Ra refuses to boot at every restart
/// (`wal-garbage-tail-fatal`); raft-core ends recovery at the bad record.
#[test]
fn recover_with_garbage_after_a_torn_last_record() {
    for fatal in [true, false] {
        let (mut n, uid) = hundred_big_entries(28);
        if fatal {
            n.wal_config.bugs = Bugs::of(&[Bug::WalGarbageTailFatal]);
        }
        let len = file_len(&mut n, &wal_path(1));
        let garbage: Vec<u8> = (0..600u32).map(|i| (i.wrapping_mul(151) % 251) as u8 | 1).collect();
        overwrite_at(&mut n, &wal_path(1), len - 300, &garbage);
        if fatal {
            let err = n.boot_and_recover().unwrap_err();
            assert!(matches!(err, StorageError::WalChecksumValidationFailure { .. }), "{err:?}");
            assert_eq!(wal_dir(&mut n), wal_dir_of(&[1]), "the WAL file is kept");
        } else {
            assert_recovers_first_99(&mut n, &uid);
        }
    }
}

/// Ra's test, under Ra's rule (`wal-garbage-tail-fatal`). raft-core cannot tell damage to synced records
/// from the unsynced tail of a power cut (whose sectors a drive may persist out of order) and ends
/// recovery at the bad record: here, before the first record, so nothing is recovered.
#[test]
fn checksum_failure_in_middle_of_file_should_fail() {
    for ra in [true, false] {
        let (mut n, uid) = hundred_big_entries(26);
        if ra {
            n.wal_config.bugs = Bugs::of(&[Bug::WalGarbageTailFatal]);
        }
        // Offset 1000 lies in the payload of the first record (which starts right after the 5-byte header).
        overwrite_at(&mut n, &wal_path(1), 1000, &[0; 10]);
        if ra {
            let err = n.boot_and_recover().unwrap_err();
            assert_eq!(err, StorageError::WalChecksumValidationFailure { file: wal_path(1), offset: 5 });
            assert!(!n.notices.contains(&NodeNotice::WalRecovered));
            assert!(n.segment_files(&uid).is_empty());
            assert_eq!(wal_dir(&mut n), wal_dir_of(&[1]), "the WAL file is kept");
        } else {
            n.boot_and_recover().unwrap();
            assert_eq!(segment_contents(&mut n, &uid), BTreeMap::new(), "recovery ended at the first record");
        }
    }
}

/// `writers-unpersisted-at-handover` (found by this harness with disk errors; Ra 3.1.10's
/// `ra_log_wal:recover_wal/2`): the WAL crashes with entry 6 in its mailbox; its restarted recovery hands
/// WAL 1 to the segment writer, then fails to create `writers.snapshot.tmp` and crashes again; the segment
/// writer flushes and deletes WAL 1. The next WAL knows nothing of s1, so its append of 7 (chained to 6)
/// goes through without a gap: Ra's 6 is never asked for again. raft-core's recovery persists the
/// writers before it hands a file over, so the next WAL knows s1 ended at 5 and asks for 6.
#[test]
fn writers_survive_the_segment_writer_deleting_every_wal_file() {
    for unpersisted in [true, false] {
        let mut n = node(30, 1 << 20);
        if unpersisted {
            n.wal_config.bugs = Bugs::of(&[Bug::WritersUnpersistedAtHandover]);
        }
        let mut w = Writer::start(&mut n, "s1", 1);
        w.write_range(&mut n, 1, 5, 1);
        n.run();
        assert_eq!(n.written(P1), seq(1, 5));
        // The append of 6 is in the WAL's mailbox when it crashes.
        w.write(&mut n, 6, 1, &payload_for(6, 1));
        n.fs.inject_error(vfs::ErrorRule {
            kind: Some(vfs::OpKind::Create),
            path_glob: "wal/writers.snapshot.tmp".into(),
            error: vfs::ErrorKind::Io,
            after_seq: 0,
            times: 1,
        });
        n.restart_wal();
        n.run();
        assert!(n.wal_error.is_some(), "the writers snapshot could not be created");
        n.restart_wal();
        n.run();
        assert_eq!(n.wal_error, None);
        assert_eq!(n.segment_writer.stats().wal_files_done, 1, "WAL 1 flushed and deleted");
        w.write(&mut n, 7, 1, &payload_for(7, 1));
        n.run();
        if unpersisted {
            assert!(n.resends(P1).is_empty(), "7 taken without a gap");
            assert!(n.written(P1).contains(LogIndex(7)) && !n.written(P1).contains(LogIndex(6)));
        } else {
            assert_eq!(n.resends(P1), vec![LogIndex(6)], "the gap before 7 is seen");
            assert!(!n.written(P1).contains(LogIndex(7)));
        }
    }
}

#[test]
fn recover_existing_mem_table() {
    let mut n = node(27, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 100, 1);
    n.run();
    assert_eq!(n.written(P1), seq(1, 100));
    let mt_before = w.mt.clone().unwrap();
    let tid = w.tid();

    // Only the WAL (and segment writer) restart: the mem tables survive, so recovery is post-boot mode.
    n.boot();
    n.run();
    assert_eq!((n.wal_error.clone(), n.segment_writer_error.clone()), (None, None));
    assert!(n.notices.contains(&NodeNotice::WalRecovered));
    assert_eq!(n.wal.stats().recovered_records, 100);
    assert_eq!(n.shared.mem_tables.mem_table_please(&w.uid), mt_before);
    assert_eq!(mt_before.range(), Some((LogIndex(1), LogIndex(100))));
    assert_eq!(mem_table_contents(&n, &w.uid), vec![(tid, entries(1, 100, 1))]);
    assert_eq!(n.take_casts(), vec![(ranges_of(&[(&w.uid, vec![(tid, seq(1, 100))])]), wal_path(1))]);
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(100))));
    assert_eq!(segment_contents(&mut n, &w.uid), entries(1, 100, 1));
    assert_eq!(wal_dir(&mut n), wal_dir_of(&[2]));

    // The tracking state was recovered: gap detection still works.
    w.write(&mut n, 220, 2, &payload_for(220, 2));
    n.run();
    assert_eq!(n.resends(P1), vec![LogIndex(101)]);
}

// ---- durability ------------------------------------------------------------------------------------

#[test]
fn written_not_sent_before_fsync() {
    let mut n = node(28, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 5, 1);
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 5))]);
    // The next batch's fdatasync never happens: the power goes first.
    n.fs.arm_power_cut(
        vfs::CrashPoint::BeforeOp {
            kind: Some(vfs::OpKind::Fdatasync),
            path_glob: "*.wal".into(),
            after_seq: n.fs.op_seq(),
        },
        vfs::CrashModel::Pessimistic,
    );
    w.write_range(&mut n, 6, 10, 1);
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 5))], "no Written for the unsynced batch");
    let err = n.wal_error.clone().expect("the WAL stopped");
    assert!(err.is_power_cut(), "{err}");
    assert!(matches!(&err, StorageError::Fs(e) if e.op == vfs::OpKind::Fdatasync && e.path == wal_path(1)), "{err}");
    assert!(n.fs.is_powered_off());
    let cuts = n.fs.take_power_cuts();
    assert_eq!(cuts.len(), 1);
    assert_eq!(cuts[0].trigger, format!("before fdatasync {}", wal_path(1)));
}

#[test]
fn recover_implicit_truncate() {
    let mut n = node(40, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 3, 1);
    n.run();
    // A snapshot at 5 (smallest live 6), then the next write is 6: it carries the truncate bit.
    n.shared.snapshots.insert(&w.uid, LogIndex(5), Seq::new());
    w.write_range(&mut n, 6, 7, 1);
    n.run();
    assert_eq!(written_events(&n, P1), vec![(1, seq(1, 3)), (1, seq(6, 7))]);
    restart_node(&mut n, &[&w.uid]);
    // The snapshot state is gone at restart (Ra: "this could happen potentially in some edge cases").
    n.boot_wal_only().unwrap();
    let tables = mem_table_contents(&n, &w.uid);
    assert_eq!(tables.len(), 1, "one table");
    assert_eq!(tables[0].1, entries(6, 7, 1), "the truncate record dropped 1..3");
    let casts = n.take_casts();
    assert_eq!(casts, vec![(ranges_of(&[(&w.uid, vec![(tables[0].0, seq(6, 7))])]), wal_path(1))]);
    n.finish_recovery();
}

#[test]
fn appends_during_recovery_wait_for_it() {
    let mut n = Node::new(41, wal_config(1 << 20, Bugs::none()), segment_writer_config(4096));
    let mut w = Writer::start(&mut n, "s1", 1);
    n.boot();
    // Queued behind `Recover` in the WAL's mailbox, as casts to Ra's registered WAL name would be.
    w.write_range(&mut n, 1, 5, 1);
    n.send_wal(WalMsg::ForceRollOver);
    w.write_range(&mut n, 6, 7, 1);
    n.run();
    assert!(n.wal_error.is_none() && n.segment_writer_error.is_none());
    assert_eq!(n.wal.stats().deferred_while_recovering, 8);
    assert_eq!(n.written(P1), seq(1, 7));
    assert!(n.resends(P1).is_empty());
    // The forced roll-over ran between 5 and 6: 1..5 went to segments, 6..7 are in the current file.
    assert_eq!(segment_contents(&mut n, &w.uid).keys().copied().collect::<Vec<_>>(), (1..=5).collect::<Vec<_>>());
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(7))));
}

#[test]
fn a_drained_reply_for_another_wal_process_is_ignored() {
    let mut n = Node::new(42, wal_config(1 << 20, Bugs::none()), segment_writer_config(4096));
    n.boot_wal_only().unwrap();
    // A late reply meant for a predecessor WAL process (another incarnation) changes nothing.
    n.send_wal(WalMsg::SegmentWriterDrained { token: u64::MAX });
    n.run_wal_only();
    assert_eq!(n.wal.phase(), &raft_core::storage::wal::WalPhase::AwaitingDrain);
    n.finish_recovery();
    assert_eq!(n.wal.phase(), &raft_core::storage::wal::WalPhase::Running);
}

/// Ra's WAL answers `last_writer_seq` between batches, after the batch it arrived with was synced; a
/// server's log init that asks while a batch is in flight must not take the batch's entries as written
/// (a power cut before the sync would lose entries the server had counted).
#[test]
fn last_writer_seq_counts_only_synced_batches() {
    let mut n = node(1, 1 << 20);
    let mut w = Writer::start(&mut n, "s1", 1);
    w.write_range(&mut n, 1, 10, 1);
    n.run();
    w.write_range(&mut n, 11, 12, 1);
    // The two appends are taken into the batch; its write and sync are still to come.
    assert!(n.step() && n.step());
    assert_eq!(n.written(ProcessId(1)), seq(1, 10));
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(10))), "the batch is unsynced");
    n.run();
    assert_eq!(n.written(ProcessId(1)), seq(1, 12));
    assert_eq!(n.wal.last_writer_seq(&w.uid), Some(WriterSeq::InSeq(LogIndex(12))));
}

/// `wal-restart-keeps-out-of-seq` (found by `sim hunt`, seed 12, no switch; Ra 3.1.10's `recover_wal/2`
/// seeds its writers from `writers.snapshot`): a writer the WAL marked out of sequence, with that state
/// persisted by a roll-over, waits for a resend; the WAL restarts before the resend arrives (lost with its
/// mailbox). Ra's restarted WAL still holds the writer out of sequence and drops every write of it without
/// asking again; raft-core's asks anew at the first write that does not chain.
#[test]
fn a_restarted_wal_asks_again_for_the_resend_its_predecessor_lost() {
    for keeps in [false, true] {
        let bugs = if keeps { Bugs::of(&[Bug::WalRestartKeepsOutOfSeq]) } else { Bugs::none() };
        let mut n = Node::new(12, wal_config(1 << 20, bugs), segment_writer_config(4096));
        n.boot_and_recover().unwrap();
        let mut w = Writer::start(&mut n, "s1", 1);
        w.write_range(&mut n, 1, 3, 1);
        n.run();
        // 5 after 3: the WAL asks for 4 on, and a roll-over persists the writer out of sequence.
        w.write(&mut n, 5, 1, &payload_for(5, 1));
        n.run();
        n.send_wal(WalMsg::ForceRollOver);
        n.run();
        assert_eq!(read_writers_snapshot(&mut n)["s1"], WriterSeq::OutOfSeq(LogIndex(3)));
        // The log's resend never reaches that WAL: it restarts first.
        n.restart_wal();
        n.run();
        w.write(&mut n, 6, 1, &payload_for(6, 1));
        n.run();
        let asked_again = n.resends(P1) == vec![LogIndex(4), LogIndex(4)];
        assert_eq!(asked_again, !keeps, "resend requests {:?} (switch on: {keeps})", n.resends(P1));
        if !keeps {
            // The log answers the request with what is pending, from 4 (chained to 3).
            for i in 4..=6 {
                w.write(&mut n, i, 1, &payload_for(i, 1));
            }
            n.run();
            assert_eq!(n.written(P1), seq(1, 6));
        }
    }
}
