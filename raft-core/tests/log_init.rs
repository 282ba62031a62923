//! A server's log (`ServerLog`) over the real storage actors: init of an existing log (segment refs,
//! compaction and cleanup, the gap check, last written, pending), the reactions to `Written`,
//! `ResendFrom` and `Segments`, restarts, and PR 589 fix 3 (`segref-tuple-delete`) from its real fault
//! sequence: a power loss after a WAL file's segments were fsynced but before its unlink was durable.

mod common;

use std::collections::BTreeMap;

use common::*;
use raft_core::storage::durable_files::MetaStore;
use raft_core::storage::log::{LogInitReport, ServerLog};
use raft_core::storage::messages::WalMsg;
use raft_core::storage::segref::SegRef;
use raft_core::storage::shared::NodeShared;
use raft_core::storage::snapshot::{SnapshotMeta, write_local_snapshot};
use raft_core::storage::{Envelope, LogEvent, StorageError};
use raft_core::{Bug, Bugs, LogIndex, ProcessId, Term, Uid};
use vfs::{CrashModel, CrashPoint, ErrorKind, FileSystem, OpKind};

const SEG: u16 = 8;

fn node(seed: u64, bugs: &Bugs) -> Node {
    let mut n = Node::new(seed, wal_config(1 << 20, bugs.clone()), segment_writer_config(SEG));
    n.boot_and_recover().unwrap();
    n
}

fn seg_name(num: u64) -> String {
    format!("{num:016}.segment")
}

fn sr(num: u64, first: u64, last: u64) -> SegRef {
    SegRef { file: seg_name(num), first: LogIndex(first), last: LogIndex(last) }
}

fn last_wal_index(n: &Node, uid: &Uid) -> Option<LogIndex> {
    n.wal.last_writer_seq(uid).map(|w| w.last())
}

/// Ra's `ra_log:init` as a (re)starting server process does it: registered with `process` first, the
/// WAL asked for its last index of this writer; whatever init casts is routed.
fn init_log(n: &mut Node, name: &str, process: u64, bugs: &Bugs) -> Result<(ServerLog, LogInitReport), StorageError> {
    let uid = Uid::new(name);
    n.shared.directory.register(&uid, name, Some(ProcessId(process)));
    let last = last_wal_index(n, &uid);
    let mut out = Vec::new();
    let result = ServerLog::init(
        &uid,
        ProcessId(process),
        "",
        last,
        &IndexListMachine,
        bugs,
        &mut n.shared,
        &mut n.fs,
        &mut out,
    );
    n.route(out);
    result
}

/// A brand-new server whose first entry (index 0) has been written. Its directory is made durable first
/// (as `Writer::start` does), so power-loss tests lose only what the log itself leaves unsynced.
fn start_new(n: &mut Node, name: &str, process: u64, bugs: &Bugs) -> ServerLog {
    n.fs.mkdir_all(name).unwrap();
    let root = n.fs.open_dir(".").unwrap();
    n.fs.fsync(root).unwrap();
    n.fs.close(root).unwrap();
    let writes = n.wal.stats().writes;
    let (mut log, report) = init_log(n, name, process, bugs).unwrap();
    assert!(report.brand_new);
    assert_eq!(log.pending().iter().collect::<Vec<_>>(), vec![LogIndex(0)]);
    deliver(n, &mut log, process);
    assert_eq!(n.wal.stats().writes - writes, 1, "the first entry is cast once");
    assert_eq!(log.last_written(), (LogIndex(0), Term(0)));
    assert!(log.pending().is_empty());
    log
}

/// Runs the node and hands every event for `process` to the log until nothing more happens. Returns
/// the segment files the log unlinked.
fn deliver(n: &mut Node, log: &mut ServerLog, process: u64) -> Vec<String> {
    let mut gone = Vec::new();
    loop {
        n.run();
        let events = n.events.remove(&ProcessId(process)).unwrap_or_default();
        if events.is_empty() {
            return gone;
        }
        for e in &events {
            gone.extend(handle(n, log, e).unwrap());
        }
    }
}

fn handle(n: &mut Node, log: &mut ServerLog, e: &LogEvent) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    let r = log.handle_event(e, &mut n.shared, &mut n.fs, &mut out);
    n.route(out);
    r
}

/// Appends `from..=to` at `term` (payloads from [`payload_for`]); the WAL casts are queued, not run.
fn append(n: &mut Node, log: &mut ServerLog, from: u64, to: u64, term: u64) {
    for i in from..=to {
        let mut out = Vec::new();
        log.append(LogIndex(i), Term(term), payload_for(i, term).into(), &mut n.shared, &mut n.fs, &mut out).unwrap();
        n.route(out);
    }
}

fn roll_over(n: &mut Node) {
    n.send_wal(WalMsg::ForceRollOver);
}

/// Everything in `from..=to` via `fold`.
fn read(n: &mut Node, log: &mut ServerLog, from: u64, to: u64) -> Result<TableContents, StorageError> {
    let Node { shared, fs, .. } = n;
    log.fold(LogIndex(from), LogIndex(to), BTreeMap::new(), shared, fs, |mut acc, i, t, d| {
        acc.insert(i.0, (t.0, d.to_vec()));
        acc
    })
}

fn fetch(n: &mut Node, log: &mut ServerLog, index: u64) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
    Ok(log.fetch(LogIndex(index), &n.shared, &mut n.fs)?.map(|(t, d)| (t.0, d.to_vec())))
}

/// The brand-new log's first entry plus `(from, to, term)` runs, later runs overwriting earlier ones.
fn expected(runs: &[(u64, u64, u64)]) -> TableContents {
    let mut e: TableContents = BTreeMap::new();
    e.insert(0, (0, Vec::new()));
    for &(from, to, term) in runs {
        e.retain(|&i, _| i < from);
        e.extend(entries(from, to, term));
    }
    e
}

fn sorted_segments(n: &mut Node, uid: &Uid) -> Vec<String> {
    let mut files = n.segment_files(uid);
    files.sort();
    files
}

/// After a power cut fired: the node is back on, with its volatile state gone.
fn power_on_after_cut(n: &mut Node) {
    assert!(n.fs.is_powered_off(), "the armed power cut did not fire");
    n.fs.power_on();
    n.shared = NodeShared::new();
    n.events.clear();
}

// ---- PR 589 fix 3: dual flush ----------------------------------------------------------------------

/// Ra's `dual_flush_does_not_delete_needed_segments`, from the real fault: s1 writes 1..=10 (WAL 1,
/// flushed into segment 1 = [0..7] and segment 2 = [8..10]) and 11..=20 (WAL 2, flushed into segment 2,
/// which now straddles WAL 1 and WAL 2, = [8..15], and segment 3 = [16..20]). The power fails after
/// those segments were fsynced but before the segment writer's unlink of WAL 2 happened. At reboot WAL
/// 2 replays and is flushed a second time, into segment 3 (now [11..13]) and segment 4 ([14..20]): at
/// init segment 2's range is truncated to [8..10] — still referenced.
struct DualFlush {
    node: Node,
    report: LogInitReport,
    log: ServerLog,
}

fn dual_flush(bugs: &Bugs) -> DualFlush {
    let uid = Uid::new("s1");
    let mut n = node(11, bugs);
    // The WAL first: each roll-over's WAL directory fsync runs before the segment writer's unlink, so
    // WAL 1's unlink is durable by the time WAL 2 is flushed.
    n.schedule = Schedule::WalFirst;
    let mut log = start_new(&mut n, "s1", 1, bugs);
    append(&mut n, &mut log, 1, 10, 1);
    roll_over(&mut n);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.segrefs(), [sr(2, 8, 10), sr(1, 0, 7)]);
    append(&mut n, &mut log, 11, 20, 1);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(20), Term(1)));

    // Power fails just before the segment writer unlinks WAL 2 (its segments are fsynced by then).
    let after = n.fs.op_seq();
    n.fs.arm_power_cut(
        CrashPoint::BeforeOp { kind: Some(OpKind::Unlink), path_glob: wal_path(2), after_seq: after },
        CrashModel::LoseUnsynced,
    );
    roll_over(&mut n);
    n.run();
    assert!(n.segment_writer_error.as_ref().is_some_and(StorageError::is_power_cut));
    power_on_after_cut(&mut n);
    drop(log);
    assert!(n.wal_files().contains(&"0000000000000002.wal".to_owned()), "WAL 2 survived");
    assert_eq!(
        segment_contents(&mut n, &uid),
        entries(1, 20, 1).into_iter().chain([(0, (0, Vec::new()))]).collect(),
        "the first flush of WAL 2 was durable"
    );

    // Reboot: the server is registered again (from the names store), then WAL recovery.
    n.register(&uid, None);
    n.boot_and_recover().unwrap();
    assert_eq!(n.segment_writer.stats().entries, 10, "WAL 2 was flushed a second time");
    assert_eq!(sorted_segments(&mut n, &uid), (1..=4).map(seg_name).collect::<Vec<_>>());

    // The server restarts.
    let (log, report) = init_log(&mut n, "s1", 2, bugs).unwrap();
    assert_eq!(report.listed, [sr(4, 14, 20), sr(3, 11, 13), sr(2, 8, 15), sr(1, 0, 7)]);
    assert_eq!(report.compacted, [sr(4, 14, 20), sr(3, 11, 13), sr(2, 8, 10), sr(1, 0, 7)]);
    assert!(!report.brand_new);
    DualFlush { node: n, report, log }
}

#[test]
fn dual_flush_does_not_delete_needed_segments() {
    let DualFlush { node: mut n, report, mut log } = dual_flush(&Bugs::none());
    assert_eq!(report.deleted_segments, Vec::<String>::new());
    assert_eq!(sorted_segments(&mut n, &Uid::new("s1")).len(), 4);
    assert_eq!(log.last_index_term(), Some((LogIndex(20), Term(1))));
    assert_eq!(log.last_written(), (LogIndex(20), Term(1)));
    assert!(log.pending().is_empty());
    assert_eq!(read(&mut n, &mut log, 0, 20).unwrap(), expected(&[(1, 20, 1)]));
}

#[test]
fn segref_tuple_delete_loses_entries_of_the_previous_wal_file() {
    let DualFlush { node: mut n, report, mut log } = dual_flush(&Bugs::of(&[Bug::SegrefTupleDelete]));
    // Segment 2's ref was only truncated ([8..15] -> [8..10]); the pre-fix tuple compare deletes it.
    assert_eq!(report.deleted_segments, vec![seg_name(2)]);
    assert!(!n.fs.exists(&format!("s1/{}", seg_name(2))).unwrap());
    // The log still references it: the entries of WAL 1 it held (8..=10) are gone (Ra: enoent).
    assert_eq!(log.segrefs()[2], sr(2, 8, 10));
    for i in 8..=10 {
        match fetch(&mut n, &mut log, i) {
            Err(StorageError::Fs(e)) => assert_eq!(e.kind, ErrorKind::NotFound, "index {i}"),
            other => panic!("index {i}: expected a missing segment file, got {other:?}"),
        }
    }
    match read(&mut n, &mut log, 0, 20) {
        Err(StorageError::Fs(e)) => assert_eq!(e.kind, ErrorKind::NotFound),
        other => panic!("fold over the log: expected enoent, got {other:?}"),
    }
    // What the other segments hold is intact.
    assert_eq!(read(&mut n, &mut log, 0, 7).unwrap(), expected(&[(1, 7, 1)]));
    assert_eq!(read(&mut n, &mut log, 11, 20).unwrap(), entries(11, 20, 1));
}

/// The same fault with a pessimistic crash right *after* the unlink (issued, not dir-synced): WAL 2
/// comes back on some seeds only; every seed reads back with the fix, the switch loses 8..=10 exactly
/// on the seeds where WAL 2 came back.
#[test]
fn dual_flush_over_seeds_after_the_unlink() {
    let uid = Uid::new("s1");
    let mut outcomes = BTreeMap::new();
    for seed in 0..24 {
        for bugs in [Bugs::none(), Bugs::of(&[Bug::SegrefTupleDelete])] {
            let mut n = node(200 + seed, &bugs);
            n.schedule = Schedule::WalFirst;
            let mut log = start_new(&mut n, "s1", 1, &bugs);
            append(&mut n, &mut log, 1, 10, 1);
            roll_over(&mut n);
            deliver(&mut n, &mut log, 1);
            append(&mut n, &mut log, 11, 20, 1);
            deliver(&mut n, &mut log, 1);
            roll_over(&mut n);
            while n.segment_writer.stats().wal_files_done < 2 {
                assert!(n.step(), "seed {seed}: the node went idle before WAL 2 was unlinked");
            }
            assert!(!n.wal_files().contains(&"0000000000000002.wal".to_owned()));
            n.power_loss(CrashModel::Pessimistic);
            let back = n.wal_files().contains(&"0000000000000002.wal".to_owned());
            n.register(&uid, None);
            n.boot_and_recover().unwrap_or_else(|e| panic!("seed {seed}: boot failed: {e}"));
            let (mut log, report) = init_log(&mut n, "s1", 2, &bugs).unwrap();
            let bug = bugs.has(Bug::SegrefTupleDelete);
            let result = read(&mut n, &mut log, 0, 20);
            if bug && back {
                assert_eq!(report.deleted_segments, vec![seg_name(2)], "seed {seed}");
                assert!(
                    matches!(&result, Err(StorageError::Fs(e)) if e.kind == ErrorKind::NotFound),
                    "seed {seed}: {result:?}"
                );
            } else {
                assert_eq!(report.deleted_segments, Vec::<String>::new(), "seed {seed} bug {bug} back {back}");
                assert_eq!(result.unwrap(), expected(&[(1, 20, 1)]), "seed {seed} bug {bug}");
            }
            *outcomes.entry((bug, back)).or_insert(0) += 1;
        }
    }
    for key in [(false, false), (false, true), (true, false), (true, true)] {
        assert!(outcomes.contains_key(&key), "outcome (bug, WAL 2 back) = {key:?} never seen: {outcomes:?}");
    }
}

/// Without the fault, the switch changes nothing: a restart of the server in the running node, and a
/// reboot after a power loss that keeps everything, delete no referenced segment.
#[test]
fn segref_tuple_delete_is_harmless_without_a_power_loss() {
    for bugs in [Bugs::none(), Bugs::of(&[Bug::SegrefTupleDelete])] {
        let uid = Uid::new("s1");
        let mut n = node(12, &bugs);
        let mut log = start_new(&mut n, "s1", 1, &bugs);
        append(&mut n, &mut log, 1, 10, 1);
        roll_over(&mut n);
        deliver(&mut n, &mut log, 1);
        append(&mut n, &mut log, 11, 20, 1);
        roll_over(&mut n);
        deliver(&mut n, &mut log, 1);
        assert_eq!(log.segrefs(), [sr(3, 16, 20), sr(2, 8, 15), sr(1, 0, 7)]);
        drop(log);

        // A server restart.
        let (mut log, report) = init_log(&mut n, "s1", 2, &bugs).unwrap();
        assert_eq!(report.deleted_segments, Vec::<String>::new());
        assert_eq!(report.compacted, report.listed);
        assert_eq!(read(&mut n, &mut log, 0, 20).unwrap(), expected(&[(1, 20, 1)]));
        drop(log);

        // A node reboot.
        n.power_loss(CrashModel::NoLoss);
        n.register(&uid, None);
        n.boot_and_recover().unwrap();
        assert_eq!(n.segment_writer.stats().entries, 0, "nothing replayed");
        let (mut log, report) = init_log(&mut n, "s1", 3, &bugs).unwrap();
        assert_eq!(report.deleted_segments, Vec::<String>::new());
        assert_eq!(sorted_segments(&mut n, &uid).len(), 3);
        assert_eq!(read(&mut n, &mut log, 0, 20).unwrap(), expected(&[(1, 20, 1)]));
        assert_eq!(log.last_written(), (LogIndex(20), Term(1)));
    }
}

// ---- init of an existing log -----------------------------------------------------------------------

#[test]
fn init_after_a_clean_restart_reads_across_mem_tables_and_segments() {
    let bugs = Bugs::none();
    let uid = Uid::new("s1");
    let mut n = node(13, &bugs);
    let mut log = start_new(&mut n, "s1", 1, &bugs);
    append(&mut n, &mut log, 1, 20, 1);
    roll_over(&mut n);
    deliver(&mut n, &mut log, 1);
    append(&mut n, &mut log, 21, 25, 2);
    deliver(&mut n, &mut log, 1);
    drop(log);

    // The server restarts; its mem table (21..=25) survives in the running node.
    let (mut log, report) = init_log(&mut n, "s1", 2, &bugs).unwrap();
    assert!(!report.brand_new);
    assert_eq!(report.listed, [sr(3, 16, 20), sr(2, 8, 15), sr(1, 0, 7)]);
    assert_eq!(report.compacted, report.listed);
    assert_eq!(report.deleted_segments, Vec::<String>::new());
    assert!(!report.indexes_rebuilt);
    assert_eq!(log.first_index(), LogIndex(0));
    assert_eq!(log.last_index_term(), Some((LogIndex(25), Term(2))));
    assert_eq!(log.last_written(), (LogIndex(25), Term(2)));
    assert!(log.pending().is_empty());
    assert_eq!(log.segrefs(), report.compacted.as_slice());
    assert_eq!(fetch(&mut n, &mut log, 3).unwrap(), Some((1, payload_for(3, 1))));
    assert_eq!(fetch(&mut n, &mut log, 20).unwrap(), Some((1, payload_for(20, 1))));
    assert_eq!(fetch(&mut n, &mut log, 23).unwrap(), Some((2, payload_for(23, 2))));
    assert_eq!(fetch(&mut n, &mut log, 26).unwrap(), None);
    let all = expected(&[(1, 20, 1), (21, 25, 2)]);
    assert_eq!(read(&mut n, &mut log, 0, 25).unwrap(), all);
    assert_eq!(
        read(&mut n, &mut log, 18, 23).unwrap(),
        all.range(18..=23).map(|(k, v)| (*k, v.clone())).collect::<TableContents>()
    );
    assert_eq!(
        read(&mut n, &mut log, 24, 26),
        Err(StorageError::MissingEntry { uid: uid.clone(), index: LogIndex(26) })
    );

    // Appends the WAL has not seen yet are pending at init.
    append(&mut n, &mut log, 26, 27, 2);
    drop(log);
    let (mut log, _) = init_log(&mut n, "s1", 3, &bugs).unwrap();
    assert_eq!(log.last_index_term(), Some((LogIndex(27), Term(2))));
    assert_eq!(log.last_written(), (LogIndex(25), Term(2)));
    assert_eq!(log.pending().iter().map(|i| i.0).collect::<Vec<_>>(), vec![26, 27]);
    deliver(&mut n, &mut log, 3);
    assert_eq!(log.last_written(), (LogIndex(27), Term(2)));
    assert!(log.pending().is_empty());
    drop(log);

    // A clean node restart: WAL 2 (21..=27) replays into segments.
    n.power_loss(CrashModel::NoLoss);
    n.register(&uid, None);
    n.boot_and_recover().unwrap();
    let (mut log, report) = init_log(&mut n, "s1", 4, &bugs).unwrap();
    assert_eq!(report.deleted_segments, Vec::<String>::new());
    assert_eq!(report.compacted.first(), Some(&sr(4, 24, 27)));
    assert_eq!(log.last_index_term(), Some((LogIndex(27), Term(2))));
    assert_eq!(log.last_written(), (LogIndex(27), Term(2)));
    assert!(log.pending().is_empty());
    assert_eq!(read(&mut n, &mut log, 0, 27).unwrap(), expected(&[(1, 20, 1), (21, 27, 2)]));
}

/// Log 0..=20 in segments [0..7], [8..15], [16..20]; segment 1 removed and a snapshot crafted at
/// `snapshot` (if any); then a server restart.
fn init_with_snapshot(
    seed: u64,
    snapshot: Option<u64>,
    drop_first_segment: bool,
) -> (Node, Result<ServerLog, StorageError>) {
    let bugs = Bugs::none();
    let mut n = node(seed, &bugs);
    let mut log = start_new(&mut n, "s1", 1, &bugs);
    append(&mut n, &mut log, 1, 20, 1);
    roll_over(&mut n);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.segrefs(), [sr(3, 16, 20), sr(2, 8, 15), sr(1, 0, 7)]);
    drop(log);
    if drop_first_segment {
        n.fs.unlink(&format!("s1/{}", seg_name(1))).unwrap();
    }
    if let Some(index) = snapshot {
        let meta =
            SnapshotMeta { index: LogIndex(index), term: Term(1), machine_version: 1, cluster: vec!["s1".into()] };
        write_local_snapshot(&mut n.fs, "s1", &meta, &index_list_state(&[]), &raft_core::Seq::new(), &Bugs::none())
            .unwrap();
    }
    let result = init_log(&mut n, "s1", 2, &bugs).map(|(log, _)| log);
    (n, result)
}

#[test]
fn gap_check_between_snapshot_and_log() {
    let uid = Uid::new("s1");
    // A snapshot below the log's first index with a hole in between: Ra's `corrupt_log`.
    let (_, r) = init_with_snapshot(14, Some(3), true);
    assert_eq!(
        r.unwrap_err(),
        StorageError::GapBetweenSnapshotAndLog {
            uid: uid.clone(),
            snapshot: Some(LogIndex(3)),
            first: LogIndex(8),
            last: LogIndex(20)
        }
    );
    // No snapshot at all and a log that does not start at 0 (Ra: snapshot index -1, so first must be 0).
    let (_, r) = init_with_snapshot(15, None, true);
    assert_eq!(
        r.unwrap_err(),
        StorageError::GapBetweenSnapshotAndLog {
            uid: uid.clone(),
            snapshot: None,
            first: LogIndex(8),
            last: LogIndex(20)
        }
    );

    // Adjacent: the log continues right after the snapshot.
    let (mut n, r) = init_with_snapshot(16, Some(7), true);
    let mut log = r.unwrap();
    assert_eq!(log.first_index(), LogIndex(8));
    assert_eq!(log.last_index_term(), Some((LogIndex(20), Term(1))));
    assert_eq!(read(&mut n, &mut log, 8, 20).unwrap(), entries(8, 20, 1));
    // Inside the range.
    let (mut n, r) = init_with_snapshot(17, Some(12), false);
    let mut log = r.unwrap();
    assert_eq!(log.first_index(), LogIndex(13));
    assert_eq!(log.last_index_term(), Some((LogIndex(20), Term(1))));
    assert_eq!(log.last_written(), (LogIndex(20), Term(1)));
    assert_eq!(read(&mut n, &mut log, 13, 20).unwrap(), entries(13, 20, 1));
    // A snapshot far above the log: fine; the log proper is empty and restarts above the snapshot.
    let (_, r) = init_with_snapshot(18, Some(1000), true);
    let log = r.unwrap();
    assert_eq!(log.snapshot().map(|s| s.index), Some(LogIndex(1000)));
    assert_eq!(log.first_index(), LogIndex(1001));
    assert_eq!(log.last_index_term(), Some((LogIndex(1000), Term(1))));
    assert_eq!(log.last_written(), (LogIndex(1000), Term(1)));
    assert!(log.pending().is_empty());
}

/// Ra's `handle_overwrite`: a `Written` for entries that were overwritten in a newer term before it
/// arrived does not advance last written; the newer term's `Written` does.
#[test]
fn overwrite_then_stale_written_is_ignored() {
    let bugs = Bugs::none();
    let mut n = node(19, &bugs);
    let mut log = start_new(&mut n, "s1", 1, &bugs);
    append(&mut n, &mut log, 1, 2, 1);
    n.run();
    let stale = n.events.remove(&ProcessId(1)).unwrap_or_default();
    assert!(matches!(stale.as_slice(), [LogEvent::Written { term: Term(1), .. }]), "{stale:?}");

    // Overwrite from 1 in term 2 before the term-1 `Written` is handled.
    append(&mut n, &mut log, 1, 1, 2);
    assert_eq!(log.last_index_term(), Some((LogIndex(1), Term(2))));
    append(&mut n, &mut log, 2, 2, 2);
    assert_eq!(log.last_index_term(), Some((LogIndex(2), Term(2))));
    assert_eq!(log.pending().iter().map(|i| i.0).collect::<Vec<_>>(), vec![1, 2]);
    for e in &stale {
        handle(&mut n, &mut log, e).unwrap();
    }
    assert_eq!(log.last_written(), (LogIndex(0), Term(0)), "a term mismatch is not a write");
    assert_eq!(log.pending().iter().map(|i| i.0).collect::<Vec<_>>(), vec![1, 2]);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(2), Term(2)));
    assert!(log.pending().is_empty());
    assert_eq!(read(&mut n, &mut log, 0, 2).unwrap(), expected(&[(1, 2, 2)]));

    // Ra's `last_written_overwrite`: a `Written` of the older term that reaches past a truncating
    // overwrite advances last written only to the last entry still of that term.
    append(&mut n, &mut log, 3, 6, 2);
    n.run();
    let stale = n.events.remove(&ProcessId(1)).unwrap_or_default();
    assert!(matches!(stale.as_slice(), [LogEvent::Written { term: Term(2), .. }]), "{stale:?}");
    append(&mut n, &mut log, 4, 4, 3);
    assert_eq!(log.last_index_term(), Some((LogIndex(4), Term(3))));
    assert_eq!(log.last_written(), (LogIndex(2), Term(2)));
    assert_eq!(fetch(&mut n, &mut log, 5).unwrap(), None, "the overwrite truncated 5..=6");
    assert_eq!(fetch(&mut n, &mut log, 6).unwrap(), None, "the overwrite truncated 5..=6");
    for e in &stale {
        handle(&mut n, &mut log, e).unwrap();
    }
    assert_eq!(log.last_written(), (LogIndex(3), Term(2)), "never past the overwritten entries");
    assert_eq!(log.pending().iter().map(|i| i.0).collect::<Vec<_>>(), vec![4]);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(4), Term(3)));
    assert!(log.pending().is_empty());
    assert_eq!(read(&mut n, &mut log, 0, 4).unwrap(), expected(&[(1, 3, 2), (4, 4, 3)]));
    assert_eq!(fetch(&mut n, &mut log, 5).unwrap(), None);
}

/// A WAL append lost in transit makes the WAL see a gap; `ResendFrom` re-casts from the mem table.
#[test]
fn resend_from_recasts_appends() {
    let bugs = Bugs::none();
    let mut n = node(20, &bugs);
    let mut log = start_new(&mut n, "s1", 1, &bugs);
    append(&mut n, &mut log, 1, 3, 1);
    deliver(&mut n, &mut log, 1);
    for i in 4..=8u64 {
        let mut out = Vec::new();
        log.append(LogIndex(i), Term(1), payload_for(i, 1).into(), &mut n.shared, &mut n.fs, &mut out).unwrap();
        if i == 4 {
            assert!(matches!(out.as_slice(), [Envelope::Wal(WalMsg::Append(a))] if a.index == LogIndex(4)));
            continue; // lost
        }
        n.route(out);
    }
    n.run();
    assert_eq!(n.resends(ProcessId(1)), vec![LogIndex(4)]);
    assert_eq!(n.written(ProcessId(1)).iter().map(|i| i.0).collect::<Vec<_>>(), Vec::<u64>::new());
    assert_eq!(log.pending().iter().map(|i| i.0).collect::<Vec<_>>(), (4..=8).collect::<Vec<_>>());
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(8), Term(1)));
    assert!(log.pending().is_empty());
    assert_eq!(read(&mut n, &mut log, 0, 8).unwrap(), expected(&[(1, 8, 1)]));
    // And the resent entries are in the WAL: a node restart replays them.
    drop(log);
    n.power_loss(CrashModel::LoseUnsynced);
    n.register(&Uid::new("s1"), None);
    n.boot_and_recover().unwrap();
    let (mut log, _) = init_log(&mut n, "s1", 2, &bugs).unwrap();
    assert_eq!(log.last_written(), (LogIndex(8), Term(1)));
    assert_eq!(read(&mut n, &mut log, 0, 8).unwrap(), expected(&[(1, 8, 1)]));
}

/// Ra's `wal_crash_with_lost_message_and_log_init`: appends lost with a crashed WAL are pending when
/// the log is initialised again, and init resends them (Ra's `resend_pending`).
#[test]
fn init_resends_pending_entries_lost_with_the_wal() {
    let bugs = Bugs::none();
    let mut n = node(21, &bugs);
    let mut log = start_new(&mut n, "s1", 1, &bugs);
    append(&mut n, &mut log, 1, 9, 2);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(9), Term(2)));
    // The WAL is suspended: these casts are lost with it.
    for i in 10..=14u64 {
        let mut out = Vec::new();
        log.append(LogIndex(i), Term(2), payload_for(i, 2).into(), &mut n.shared, &mut n.fs, &mut out).unwrap();
    }
    drop(log);
    // The WAL is killed and restarts (post-boot recovery; the mem tables survive).
    n.boot_and_recover().unwrap();
    n.events.clear();
    assert_eq!(last_wal_index(&n, &Uid::new("s1")), Some(LogIndex(9)));
    let (mut log, _) = init_log(&mut n, "s1", 2, &bugs).unwrap();
    assert_eq!(log.last_written(), (LogIndex(9), Term(2)));
    assert_eq!(log.last_index_term(), Some((LogIndex(14), Term(2))));
    assert_eq!(log.pending().iter().map(|i| i.0).collect::<Vec<_>>(), (10..=14).collect::<Vec<_>>());
    deliver(&mut n, &mut log, 2);
    assert_eq!(log.last_written(), (LogIndex(14), Term(2)));
    assert!(log.pending().is_empty());
    assert_eq!(read(&mut n, &mut log, 0, 14).unwrap(), expected(&[(1, 14, 2)]));
}

/// `Segments`: the server deletes the flushed entries from its mem table (the segment writer leaves
/// them to a running server) and reads them from segments; an overwrite that makes a segment
/// unreferenced unlinks it at runtime (Ra's `overwritten_segment_is_cleared`).
#[test]
fn segments_event_deletes_flushed_mem_table_entries() {
    let bugs = Bugs::none();
    let uid = Uid::new("s1");
    let mut n = node(22, &bugs);
    let mut log = start_new(&mut n, "s1", 1, &bugs);
    append(&mut n, &mut log, 1, 15, 1);
    deliver(&mut n, &mut log, 1);
    roll_over(&mut n);
    n.run();
    let events = n.events.remove(&ProcessId(1)).unwrap_or_default();
    let [LogEvent::Segments { segrefs, .. }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(segrefs, &[sr(2, 8, 15), sr(1, 0, 7)]);
    let held: u64 = mem_table_contents(&n, &uid).iter().map(|(_, c)| c.len() as u64).sum();
    assert_eq!(held, 16, "the segment writer leaves a running server's entries alone");

    assert_eq!(handle(&mut n, &mut log, &events[0]).unwrap(), Vec::<String>::new());
    n.run();
    let held: u64 = mem_table_contents(&n, &uid).iter().map(|(_, c)| c.len() as u64).sum();
    assert_eq!(held, 0, "flushed entries deleted from the mem table");
    assert_eq!(log.segrefs(), [sr(2, 8, 15), sr(1, 0, 7)]);
    assert_eq!(read(&mut n, &mut log, 0, 15).unwrap(), expected(&[(1, 15, 1)]));

    // Overwrite 8..=19 in term 2: segment 2 ([8..15], term 1) is wholly replaced.
    append(&mut n, &mut log, 8, 19, 2);
    deliver(&mut n, &mut log, 1);
    roll_over(&mut n);
    let gone = deliver(&mut n, &mut log, 1);
    assert_eq!(gone, vec![seg_name(2)]);
    assert!(!n.fs.exists(&format!("s1/{}", seg_name(2))).unwrap());
    assert_eq!(log.segrefs(), [sr(4, 16, 19), sr(3, 8, 15), sr(1, 0, 7)]);
    let held: u64 = mem_table_contents(&n, &uid).iter().map(|(_, c)| c.len() as u64).sum();
    assert_eq!(held, 0);
    assert_eq!(read(&mut n, &mut log, 0, 19).unwrap(), expected(&[(1, 7, 1), (8, 19, 2)]));
}

/// Ra's `overwritten_segment_is_cleared_on_init`: the `Segments` event of an overwriting flush never
/// reached the server; init deletes the wholly overwritten segment, 3 remain.
#[test]
fn overwritten_segment_is_cleared_on_init() {
    let bugs = Bugs::none();
    let uid = Uid::new("s1");
    let mut n = node(23, &bugs);
    let mut log = start_new(&mut n, "s1", 1, &bugs);
    append(&mut n, &mut log, 1, 15, 1);
    roll_over(&mut n);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.segrefs(), [sr(2, 8, 15), sr(1, 0, 7)]);
    append(&mut n, &mut log, 8, 19, 2);
    roll_over(&mut n);
    n.run();
    drop(log); // closed before its events arrive
    n.events.clear();
    assert_eq!(sorted_segments(&mut n, &uid).len(), 4);

    let (mut log, report) = init_log(&mut n, "s1", 2, &bugs).unwrap();
    assert_eq!(report.listed, [sr(4, 16, 19), sr(3, 8, 15), sr(2, 8, 15), sr(1, 0, 7)]);
    assert_eq!(report.compacted, [sr(4, 16, 19), sr(3, 8, 15), sr(1, 0, 7)]);
    assert_eq!(report.deleted_segments, vec![seg_name(2)]);
    assert_eq!(sorted_segments(&mut n, &uid), vec![seg_name(1), seg_name(3), seg_name(4)]);
    assert_eq!(log.last_index_term(), Some((LogIndex(19), Term(2))));
    assert_eq!(log.last_written(), (LogIndex(19), Term(2)));
    assert_eq!(read(&mut n, &mut log, 0, 19).unwrap(), expected(&[(1, 7, 1), (8, 19, 2)]));

    // The same after a node reboot, where everything is read from segments.
    drop(log);
    n.power_loss(CrashModel::NoLoss);
    n.register(&uid, None);
    n.boot_and_recover().unwrap();
    let (mut log, report) = init_log(&mut n, "s1", 3, &bugs).unwrap();
    assert_eq!(report.deleted_segments, Vec::<String>::new());
    assert_eq!(read(&mut n, &mut log, 0, 19).unwrap(), expected(&[(1, 7, 1), (8, 19, 2)]));
}

// ---- restarts --------------------------------------------------------------------------------------

/// Ra's `recovery`: three terms with overlaps, part in segments, part only in the WAL; the commit index
/// (last applied, persisted lazily in the meta store) and everything acknowledged survive a power
/// loss, and the restarted log folds to the same entries.
#[test]
fn server_restart_replays_to_its_commit_index() {
    let uid = Uid::new("s1");
    let want = expected(&[(1, 10, 1), (6, 15, 2), (12, 20, 3)]);
    let models = [
        (CrashModel::NoLoss, 1),
        (CrashModel::LoseUnsynced, 1),
        (CrashModel::Pessimistic, 8),
        (CrashModel::Ext4Ordered, 4),
    ];
    for (model, seeds) in models {
        for seed in 0..seeds {
            let bugs = Bugs::none();
            let mut n = node(300 + seed, &bugs);
            let mut log = start_new(&mut n, "s1", 1, &bugs);
            append(&mut n, &mut log, 1, 10, 1);
            roll_over(&mut n);
            deliver(&mut n, &mut log, 1);
            append(&mut n, &mut log, 6, 15, 2);
            roll_over(&mut n);
            deliver(&mut n, &mut log, 1);
            append(&mut n, &mut log, 12, 20, 3);
            deliver(&mut n, &mut log, 1);
            assert_eq!(log.last_written(), (LogIndex(20), Term(3)));
            let mut meta = MetaStore::new();
            meta.store_term_and_vote_sync(&mut n.fs, "", &uid, Term(3), Some("s1".into())).unwrap();
            meta.store_last_applied(&uid, LogIndex(18));
            meta.flush(&mut n.fs, "").unwrap();
            drop(log);

            n.power_loss(model);
            let meta = MetaStore::load(&mut n.fs, "").unwrap();
            n.register(&uid, None);
            n.boot_and_recover().unwrap_or_else(|e| panic!("{model:?} seed {seed}: boot failed: {e}"));
            let (mut log, report) = init_log(&mut n, "s1", 2, &bugs).unwrap();
            assert!(!report.brand_new);
            let m = meta.get(&uid);
            assert_eq!((m.current_term, m.voted_for.as_deref()), (Term(3), Some("s1")));
            let commit = m.last_applied.max(log.snapshot().map_or(LogIndex(0), |s| s.index));
            assert_eq!(commit, LogIndex(18), "{model:?} seed {seed}");
            let replayed = read(&mut n, &mut log, 0, commit.0).unwrap();
            assert_eq!(replayed, want.range(..=18).map(|(k, v)| (*k, v.clone())).collect::<TableContents>());
            assert_eq!(log.last_index_term(), Some((LogIndex(20), Term(3))), "{model:?} seed {seed}");
            assert_eq!(log.last_written(), (LogIndex(20), Term(3)), "{model:?} seed {seed}");
            assert_eq!(read(&mut n, &mut log, 0, 20).unwrap(), want, "{model:?} seed {seed}");
        }
    }
}

// ---- found with disk errors ------------------------------------------------------------------------

/// `wal-recovery-trusts-page-cache` (found by this harness, Ra 3.1.10's `ra_log_wal:recover_wal`): the
/// fdatasync of a batch fails and the WAL crashes; the page cache still shows the batch, which never
/// reaches the disk. The restarted WAL's recovery re-reads the file and hands it to the segment writer,
/// whose flush makes entry 6 durable in a segment, so the server takes it as written; power fails just
/// before the segment writer unlinks the WAL file. At the reboot the file, which ends at 5 on disk, is
/// flushed again and supersedes the segment's tail: with Ra's recovery, entry 6 is lost. raft-core's
/// recovery rewrote and synced what it read, so the file holds 6 too.
#[test]
fn a_restarted_wal_makes_what_it_reads_durable() {
    for trusting in [true, false] {
        let bugs = if trusting { Bugs::of(&[Bug::WalRecoveryTrustsPageCache]) } else { Bugs::none() };
        let mut n = node(41, &bugs);
        let uid = Uid::new("s1");
        let mut log = start_new(&mut n, "s1", 1, &Bugs::none());
        append(&mut n, &mut log, 1, 5, 1);
        deliver(&mut n, &mut log, 1);
        assert_eq!(log.last_written(), (LogIndex(5), Term(1)));

        n.fs.inject_error(vfs::ErrorRule {
            kind: Some(OpKind::Fdatasync),
            path_glob: wal_path(1),
            error: ErrorKind::Io,
            after_seq: 0,
            times: 1,
        });
        append(&mut n, &mut log, 6, 6, 1);
        n.run();
        assert!(matches!(&n.wal_error, Some(StorageError::Fs(e)) if e.kind == ErrorKind::Io), "{:?}", n.wal_error);
        assert_eq!(log.last_written(), (LogIndex(5), Term(1)), "6 was never confirmed");

        let after = n.fs.op_seq();
        n.fs.arm_power_cut(
            CrashPoint::BeforeOp { kind: Some(OpKind::Unlink), path_glob: wal_path(1), after_seq: after },
            CrashModel::LoseUnsynced,
        );
        n.restart_wal();
        // The server handles each event as it comes (it runs while the segment writer works).
        while n.step() {
            for e in n.events.remove(&ProcessId(1)).unwrap_or_default() {
                handle(&mut n, &mut log, &e).unwrap();
            }
        }
        assert_eq!(log.last_written(), (LogIndex(6), Term(1)), "flushed to a synced segment: written");
        assert!(n.segment_writer_error.as_ref().is_some_and(StorageError::is_power_cut));
        power_on_after_cut(&mut n);
        drop(log);

        n.register(&uid, None);
        n.boot_and_recover().unwrap();
        let (log, _) = init_log(&mut n, "s1", 2, &Bugs::none()).unwrap();
        let want = if trusting { LogIndex(5) } else { LogIndex(6) };
        assert_eq!(log.last_index_term().map(|(i, _)| i), Some(want), "trusting the page cache: {trusting}");
    }
}

/// `written-beyond-log` (found by this harness with disk errors, with `wal-recovery-trusts-page-cache`;
/// Ra 3.1.10's `ra_log:init`, which takes `max(LastWalIdx, …)` as last written and crashes on
/// `ra_lib:unwrap(fetch_term(…))`): the fdatasync of entry 6, s1's first record in WAL 2, fails and the
/// WAL crashes; the restarted WAL's recovery reads 6 from the page cache and persists `writers.snapshot`
/// naming it; power fails before anything else syncs 6. At the reboot WAL 2 holds nothing of s1, so the
/// WAL's last index for s1 stays 6, which no file holds: Ra's init crashes at every restart. raft-core
/// takes the last entry the log holds.
#[test]
fn a_writer_index_no_file_holds_is_not_taken_as_written() {
    for crash_on_it in [true, false] {
        let wal_bugs = Bugs::of(&[Bug::WalRecoveryTrustsPageCache]);
        let mut n = node(42, &wal_bugs);
        let uid = Uid::new("s1");
        let mut log = start_new(&mut n, "s1", 1, &Bugs::none());
        append(&mut n, &mut log, 1, 5, 1);
        deliver(&mut n, &mut log, 1);
        roll_over(&mut n);
        deliver(&mut n, &mut log, 1);
        // Entry 6 is the first record of s1 in WAL 2.
        n.fs.inject_error(vfs::ErrorRule {
            kind: Some(OpKind::Fdatasync),
            path_glob: wal_path(2),
            error: ErrorKind::Io,
            after_seq: 0,
            times: 1,
        });
        append(&mut n, &mut log, 6, 6, 1);
        n.run();
        assert!(n.wal_error.is_some());
        // The restarted WAL recovers (persisting `writers.snapshot`, then the directory fsync of its
        // roll-over) before the segment writer flushes; power fails right after that fsync.
        let after = n.fs.op_seq();
        n.fs.arm_power_cut(
            CrashPoint::AfterMatchingOp { kind: Some(OpKind::FsyncDir), path_glob: "wal".into(), after_seq: after },
            CrashModel::LoseUnsynced,
        );
        n.schedule = Schedule::WalFirst;
        n.restart_wal();
        n.run();
        power_on_after_cut(&mut n);
        drop(log);

        n.register(&uid, None);
        n.boot_and_recover().unwrap();
        assert_eq!(last_wal_index(&n, &uid), Some(LogIndex(6)), "writers.snapshot names 6");
        let bugs = if crash_on_it { Bugs::of(&[Bug::WrittenBeyondLog]) } else { Bugs::none() };
        let got = init_log(&mut n, "s1", 2, &bugs).map(|(log, _)| log.last_written());
        if crash_on_it {
            assert_eq!(got.err(), Some(StorageError::MissingEntry { uid: uid.clone(), index: LogIndex(6) }));
        } else {
            assert_eq!(got.ok(), Some((LogIndex(5), Term(1))));
        }
    }
}
