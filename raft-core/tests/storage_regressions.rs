//! Regression tests for the storage II review findings (H1–H4, M1–M4, L1). Each asserts the corrected
//! behaviour; each fails on the code the review was run against.

mod common;

use common::*;
use raft_core::storage::boot::{load_directory, pre_init};
use raft_core::storage::durable_files::{ConfigError, NamesStore, read_config};
use raft_core::storage::log::{LogInitReport, ServerLog};
use raft_core::storage::messages::WalMsg;
use raft_core::storage::new_server::NewServerStart;
use raft_core::storage::segment::SegmentError;
use raft_core::storage::snapshot::{
    INDEXES_FILE, SNAPSHOTS_DIR, SnapshotMeta, snapshot_dir_name, write_local_snapshot,
};
use raft_core::storage::{LogEvent, StorageError};
use raft_core::{Bug, Bugs, LogIndex, Payload, ProcessId, Seq, Term, Uid};
use vfs::{CrashModel, FileSystem, OpenOptions};

fn meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta { index: LogIndex(index), term: Term(term), machine_version: 1, cluster: vec!["s1".into()] }
}

fn seq(i: &[u64]) -> Seq {
    Seq::from_indexes(i.iter().copied().map(LogIndex))
}

fn entry(index: u64, term: u64) -> Option<(Term, Payload)> {
    Some((Term(term), Payload::from(payload_for(index, term))))
}

/// Registers `name` (running as `process`) and inits its log.
fn try_init_log(
    n: &mut Node,
    name: &str,
    process: u64,
    bugs: &Bugs,
) -> Result<(ServerLog, LogInitReport), StorageError> {
    let uid = Uid::new(name);
    n.shared.directory.register(&uid, name, Some(ProcessId(process)));
    let last = n.wal.last_writer_seq(&uid).map(|w| w.last());
    let mut out = Vec::new();
    let r = ServerLog::init(
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
    r
}

/// A brand-new server whose first entry (index 0) has been written.
fn start_new(n: &mut Node, name: &str, process: u64) -> ServerLog {
    n.fs.mkdir_all(name).unwrap();
    let (mut log, report) = try_init_log(n, name, process, &Bugs::none()).unwrap();
    assert!(report.brand_new);
    deliver(n, &mut log, process);
    assert_eq!(log.last_written(), (LogIndex(0), Term(0)));
    log
}

/// Runs the node and hands every event to the log until none come; returns the unlinked segments.
fn deliver(n: &mut Node, log: &mut ServerLog, process: u64) -> Vec<String> {
    let mut gone = Vec::new();
    loop {
        n.run();
        let evs = n.events.remove(&ProcessId(process)).unwrap_or_default();
        if evs.is_empty() {
            return gone;
        }
        for e in &evs {
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

fn append(n: &mut Node, log: &mut ServerLog, from: u64, to: u64, term: u64) {
    for i in from..=to {
        let mut out = Vec::new();
        log.append(LogIndex(i), Term(term), payload_for(i, term).into(), &mut n.shared, &mut n.fs, &mut out).unwrap();
        n.route(out);
    }
}

fn fetch(n: &mut Node, log: &mut ServerLog, index: u64) -> Option<(Term, Payload)> {
    log.fetch(LogIndex(index), &n.shared, &mut n.fs).unwrap()
}

/// Makes the data directory's entries (a new server's directory among them) durable.
fn sync_root_dir(n: &mut Node) {
    let root = n.fs.open_dir(".").unwrap();
    n.fs.fsync(root).unwrap();
    n.fs.close(root).unwrap();
}

/// The next unlink of a WAL file fails with EIO (the segment writer, which unlinks flushed files, stops).
fn fail_next_wal_unlink(n: &mut Node) {
    n.fs.inject_error(vfs::ErrorRule {
        kind: Some(vfs::OpKind::Unlink),
        path_glob: "wal/*.wal".into(),
        error: vfs::ErrorKind::Io,
        after_seq: 0,
        times: 1,
    });
}

fn assert_actors_healthy(n: &Node) {
    assert_eq!(n.wal_error, None, "WAL stopped");
    assert_eq!(n.segment_writer_error, None, "segment writer stopped");
    assert!(n.worker_errors.is_empty(), "worker failed: {:?}", n.worker_errors);
}

fn names_in(names: &NamesStore) -> Vec<String> {
    names.entries().map(|(n, _)| n.clone()).collect()
}

/// H1: minor compaction must not delete the newest (active) segment: a flush into it already queued
/// behind the `SnapshotWritten` (Ra's `compactable_segrefs` skips it).
#[test]
fn h1_minor_compaction_keeps_the_active_segment() {
    let mut n = Node::new(5, wal_config(1 << 20, Bugs::none()), segment_writer_config(8));
    n.boot_and_recover().unwrap();
    let uid = Uid::new("s1");
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 10, 1);
    n.send_wal(WalMsg::ForceRollOver);
    deliver(&mut n, &mut log, 1);
    // 0..=10 with 8 entries a segment: two segments, the newer one (8..10) still has room.
    let refs: Vec<_> = log.segrefs().to_vec();
    assert_eq!(refs.len(), 2, "{refs:?}");
    let (active, older) = (refs[0].file.clone(), refs[1].file.clone());
    assert_eq!((refs[0].first, refs[0].last), (LogIndex(8), LogIndex(10)));
    assert_eq!((refs[1].first, refs[1].last), (LogIndex(0), LogIndex(7)));

    append(&mut n, &mut log, 11, 12, 1);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(12), Term(1)), "11..12 acknowledged");

    // The worker writes a snapshot at 10 (no live indexes) and sends SnapshotWritten ...
    let job = log.take_snapshot(meta(10, 1), index_list_state(&[]), Seq::new());
    n.route(vec![job]);
    assert!(n.step_worker());
    // ... then the roll-over's flush appends 11..12 to the active segment.
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    let evs = n.events.remove(&ProcessId(1)).unwrap();
    assert!(matches!(evs.first(), Some(LogEvent::SnapshotWritten { .. })), "{evs:?}");
    assert!(
        evs.iter().any(|e| matches!(e, LogEvent::Segments { segrefs, .. } if segrefs.iter().any(|r| r.file == active))),
        "the flush went into the active segment: {evs:?}"
    );
    let mut unlinked = Vec::new();
    for e in &evs {
        unlinked.extend(handle(&mut n, &mut log, e).unwrap());
    }
    assert_actors_healthy(&n);

    // Only the older segment went; the active one survives and serves the acknowledged entries.
    assert_eq!(unlinked, vec![older.clone()]);
    let files = n.segment_files(&uid);
    assert!(files.contains(&active), "active segment deleted: {files:?}");
    assert!(!files.contains(&older), "older segment kept: {files:?}");
    assert!(log.segrefs().iter().any(|r| r.file == active && r.first <= LogIndex(11) && LogIndex(12) <= r.last));
    assert_eq!(fetch(&mut n, &mut log, 11), entry(11, 1));
    assert_eq!(fetch(&mut n, &mut log, 12), entry(12, 1));
    let folded = log.fold(LogIndex(11), LogIndex(12), 0, &n.shared, &mut n.fs, |a, _, _, _| a + 1).unwrap();
    assert_eq!(folded, 2);
    assert_eq!(n.shared.mem_tables.tables_of(&uid).len(), 1, "the flushed entries left the mem tables");
}

/// H2: a `Segments` notification evicts the cached reader of every file it names, so an overwrite
/// flushed into the same segment is read back, not the stale entry.
#[test]
fn h2_overwrite_into_the_same_segment_is_read_back() {
    let mut n = Node::new(6, wal_config(1 << 20, Bugs::none()), segment_writer_config(16));
    n.boot_and_recover().unwrap();
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 5, 1);
    n.send_wal(WalMsg::ForceRollOver);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.segrefs().len(), 1);
    let file = log.segrefs()[0].file.clone();
    // Reading 3 from the segment caches its reader.
    assert_eq!(fetch(&mut n, &mut log, 3), entry(3, 1));
    // Overwrite 3..5 in term 2, flushed into the same segment.
    append(&mut n, &mut log, 3, 5, 2);
    deliver(&mut n, &mut log, 1);
    n.send_wal(WalMsg::ForceRollOver);
    deliver(&mut n, &mut log, 1);
    assert_actors_healthy(&n);
    assert_eq!(log.segrefs().len(), 1, "{:?}", log.segrefs());
    assert_eq!(log.segrefs()[0].file, file, "same segment");
    for i in 3..=5 {
        assert_eq!(fetch(&mut n, &mut log, i), entry(i, 2), "index {i}");
    }
    assert_eq!(fetch(&mut n, &mut log, 2), entry(2, 1));
    assert_eq!(log.last_written(), (LogIndex(5), Term(2)));
}

/// H3: a late `Written` whose last index is a live index below the snapshot does not move
/// `last_written` back (only indexes in the log range count, as Ra's `fetch_term`).
#[test]
fn h3_late_written_below_the_snapshot_keeps_last_written() {
    let mut n = Node::new(7, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 5, 1);
    n.run();
    // Held back: the Written for 1..5 at term 1.
    let stale = n.events.remove(&ProcessId(1)).unwrap();
    assert!(
        stale
            .iter()
            .any(|e| matches!(e, LogEvent::Written { seq, term, .. } if *term == Term(1) && seq.contains(LogIndex(5))))
    );
    append(&mut n, &mut log, 6, 8, 2);
    deliver(&mut n, &mut log, 1);
    // A snapshot at 8 keeping 5 live.
    let job = log.take_snapshot(meta(8, 2), index_list_state(&[5]), seq(&[5]));
    n.route(vec![job]);
    deliver(&mut n, &mut log, 1);
    assert_actors_healthy(&n);
    assert_eq!(log.snapshot().map(|s| s.index), Some(LogIndex(8)));
    assert_eq!(log.last_written(), (LogIndex(8), Term(2)));
    assert_eq!(fetch(&mut n, &mut log, 5), entry(5, 1), "5 is live");

    for e in &stale {
        handle(&mut n, &mut log, e).unwrap();
    }
    assert_eq!(log.last_written(), (LogIndex(8), Term(2)), "last_written regressed");
    assert!(log.pending().is_empty(), "pending {:?}", log.pending());
}

/// H4: an overwrite sets `last_written` to the entry before it with *that* entry's term (Ra 3.1.8
/// `write/2`).
#[test]
fn h4_overwrite_takes_the_term_of_the_new_last_written_entry() {
    let mut n = Node::new(8, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 5, 1);
    deliver(&mut n, &mut log, 1);
    append(&mut n, &mut log, 6, 8, 2);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(8), Term(2)));
    append(&mut n, &mut log, 6, 6, 3);
    assert_eq!(log.last_written(), (LogIndex(5), Term(1)), "index 5 has term 1");
    let (lw, lw_term) = log.last_written();
    assert_eq!(log.fetch_term(lw, &n.shared, &mut n.fs).unwrap(), Some(lw_term));
    // Once the overwrite is written, last_written moves on with the new term.
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(6), Term(3)));
    assert_actors_healthy(&n);
}

/// M1: `install_snapshot` keeps the live indexes (Ra: `set_first(smallest live)`), here held only in
/// the mem table.
#[test]
fn m1_install_snapshot_keeps_live_mem_table_entries() {
    let mut n = Node::new(9, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let uid = Uid::new("s1");
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 5, 1);
    deliver(&mut n, &mut log, 1);
    assert!(log.segrefs().is_empty(), "entries are only in the mem table");
    let live = seq(&[3]);
    n.shared.snapshots.insert(&uid, LogIndex(10), live.clone());
    log.install_snapshot(&meta(10, 2), &live, &mut n.shared, &mut n.fs).unwrap();
    assert_eq!(fetch(&mut n, &mut log, 3), entry(3, 1), "live index 3 dropped");
    assert_eq!(fetch(&mut n, &mut log, 4), None, "non-live index 4 kept");
    assert_eq!(fetch(&mut n, &mut log, 2), None, "non-live index 2 kept");
    assert_eq!(log.first_index(), LogIndex(11));
    assert_eq!(log.last_written(), (LogIndex(10), Term(2)));
    // Still readable once the mem table is flushed to a segment.
    n.send_wal(WalMsg::ForceRollOver);
    deliver(&mut n, &mut log, 1);
    assert_actors_healthy(&n);
    assert!(!log.segrefs().is_empty(), "flushed");
    assert_eq!(fetch(&mut n, &mut log, 3), entry(3, 1), "live index 3 lost in the flush");
    // Appends after the install chain to nothing (Ra's `previous_wal_index` of an empty range), so the
    // WAL sees no gap and writes them.
    append(&mut n, &mut log, 11, 12, 2);
    deliver(&mut n, &mut log, 1);
    assert_actors_healthy(&n);
    assert!(n.resends(raft_core::ProcessId(1)).is_empty(), "no resend after the install");
    assert_eq!(log.last_written(), (LogIndex(12), Term(2)));
    assert!(log.pending().is_empty());
}

/// M2: log init fails with a typed error on a segment it cannot open (Ra's `my_segrefs` crashes on a
/// missing or invalid header), on every attempt, and leaves the file alone. raft-core takes a segment
/// whose header never reached the disk for one whose first fsync never completed (its entries are still
/// in the WAL) and deletes it; Ra's crash on it is kept as `segment-reused-after-failed-sync`.
#[test]
fn m2_unopenable_segment_fails_log_init() {
    let ra = Bugs::of(&[Bug::SegmentReusedAfterFailedSync]);
    for (case, truncate) in [("missing header", true), ("invalid header", false)] {
        let mut n = Node::new(20, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
        n.boot_and_recover().unwrap();
        let uid = Uid::new("s1");
        let mut log = start_new(&mut n, "s1", 1);
        append(&mut n, &mut log, 1, 5, 1);
        n.send_wal(WalMsg::ForceRollOver);
        deliver(&mut n, &mut log, 1);
        assert_actors_healthy(&n);
        drop(log);
        let files = n.segment_files(&uid);
        assert_eq!(files.len(), 1, "{case}: {files:?}");
        let path = format!("s1/{}", files[0]);
        if truncate {
            let len = file_len(&mut n, &path);
            truncate_by(&mut n, &path, len);
        } else {
            overwrite_at(&mut n, &path, 0, b"XXXX");
        }
        let bytes = n.fs.read_file(&path).unwrap();

        n.power_loss(CrashModel::NoLoss);
        n.boot_and_recover().unwrap();
        for attempt in 0..2 {
            let got = try_init_log(&mut n, "s1", 1, &ra).map(|(_, report)| report);
            let expected = if truncate {
                SegmentError::MissingHeader { path: path.clone() }
            } else {
                SegmentError::InvalidFormat { path: path.clone() }
            };
            assert_eq!(got, Err(StorageError::Segment(expected)), "{case}, attempt {attempt}");
            assert_eq!(n.fs.read_file(&path).unwrap(), bytes, "{case}: the segment is left as it was");
        }
        let got = try_init_log(&mut n, "s1", 1, &Bugs::none()).map(|(_, report)| report);
        if truncate {
            assert!(got.is_ok(), "{case}: {got:?}");
            assert!(!n.fs.exists(&path).unwrap(), "{case}: the headerless segment is deleted");
        } else {
            let expected = SegmentError::InvalidFormat { path: path.clone() };
            assert_eq!(got, Err(StorageError::Segment(expected)), "{case}: a header that is not zeros");
        }
    }
}

/// M3: under `config-orphan-registration`, a uid without a data directory is still unregistered (every
/// Ra version: `ra_lib:is_dir(Dir)` false); one with a directory but no config stays an orphan.
#[test]
fn m3_orphan_switch_unregisters_a_uid_without_a_directory() {
    let mut n = Node::new(10, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let (ghost, kept) = (Uid::new("ghost"), Uid::new("kept"));
    n.fs.mkdir_all("kept").unwrap();
    let mut names = NamesStore::new();
    names.insert("ghost", &ghost);
    names.insert("kept", &kept);
    names.flush(&mut n.fs, "").unwrap();
    n.power_loss(CrashModel::NoLoss);
    assert!(!n.fs.exists("ghost").unwrap());
    assert!(n.fs.exists("kept").unwrap());

    let bugs = Bugs::of(&[Bug::ConfigOrphanRegistration]);
    let mut names = load_directory(&mut n.fs, "", &mut n.shared).unwrap();
    let rep = pre_init(&mut n.fs, "", &mut names, &IndexListMachine, &bugs, &mut n.shared).unwrap();
    assert_eq!(rep.unregistered, vec![(ghost.clone(), ConfigError::Missing)]);
    assert_eq!(rep.orphans, vec![(kept.clone(), ConfigError::Missing)]);
    assert!(rep.ready.is_empty() && rep.failed.is_empty());
    assert!(!n.shared.directory.is_registered(&ghost));
    assert!(n.shared.directory.is_registered(&kept));
    assert_eq!(names_in(&names), vec!["kept".to_owned()]);

    // Without the switch both go (the directory makes no difference there).
    n.power_loss(CrashModel::NoLoss);
    let mut names = load_directory(&mut n.fs, "", &mut n.shared).unwrap();
    let rep = pre_init(&mut n.fs, "", &mut names, &IndexListMachine, &Bugs::none(), &mut n.shared).unwrap();
    let mut gone: Vec<Uid> = rep.unregistered.iter().map(|(u, _)| u.clone()).collect();
    gone.sort();
    assert_eq!(gone, vec![ghost.clone(), kept.clone()]);
    assert!(rep.orphans.is_empty());
    assert!(names_in(&names).is_empty());
}

/// M4: starting as new refuses a registered uid (Ra: `{error, not_new}`), and touches nothing.
#[test]
fn m4_new_server_start_refuses_a_registered_uid() {
    let mut n = Node::new(12, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let uid = Uid::new("s1");
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 3, 1);
    deliver(&mut n, &mut log, 1);
    let mut names = NamesStore::new();
    names.insert("s1", &uid);
    let files_before = n.fs.read_dir("s1").unwrap();

    let mut out = Vec::new();
    let got = NewServerStart::begin(
        &server_config("s1"),
        ProcessId(2),
        "",
        &IndexListMachine,
        &Bugs::none(),
        &mut n.shared,
        &mut names,
        &mut n.fs,
        &mut out,
    );
    assert_eq!(got.err(), Some(StorageError::NotNew { uid: uid.clone() }));
    assert!(out.is_empty(), "nothing cast: {out:?}");
    assert_eq!(n.shared.directory.process_of(&uid), Some(ProcessId(1)), "registration untouched");
    assert_eq!(n.fs.read_dir("s1").unwrap(), files_before);
    assert_eq!(read_config(&mut n.fs, "s1").unwrap(), Err(ConfigError::Missing), "no config written");
    // The running server is unaffected.
    assert_eq!(fetch(&mut n, &mut log, 3), entry(3, 1));
}

/// M4: a uid unregistered at pre-init (config lost) whose directory still holds a log, started as new,
/// completes at once: no first entry to wait for, config written, registered, entries readable.
#[test]
fn m4_new_server_start_over_an_existing_log_completes() {
    let mut n = Node::new(11, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let uid = Uid::new("s1");
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 5, 1);
    n.send_wal(WalMsg::ForceRollOver);
    deliver(&mut n, &mut log, 1);
    drop(log);
    let mut names = NamesStore::new();
    names.insert("s1", &uid);
    names.flush(&mut n.fs, "").unwrap();
    n.power_loss(CrashModel::NoLoss); // no config was ever written for s1 here
    let mut names = load_directory(&mut n.fs, "", &mut n.shared).unwrap();
    let rep = pre_init(&mut n.fs, "", &mut names, &IndexListMachine, &Bugs::none(), &mut n.shared).unwrap();
    assert_eq!(rep.unregistered, vec![(uid.clone(), ConfigError::Missing)]);
    n.boot_and_recover().unwrap();

    let mut out = Vec::new();
    let start = NewServerStart::begin(
        &server_config("s1"),
        ProcessId(2),
        "",
        &IndexListMachine,
        &Bugs::none(),
        &mut n.shared,
        &mut names,
        &mut n.fs,
        &mut out,
    )
    .unwrap();
    n.route(out);
    assert!(!start.report().brand_new);
    assert!(start.is_started(), "nothing would ever complete the start");
    assert_eq!(read_config(&mut n.fs, "s1").unwrap(), Ok(server_config("s1")));
    assert!(n.shared.directory.is_registered(&uid));
    assert_eq!(n.shared.directory.process_of(&uid), Some(ProcessId(2)));
    assert_eq!(names_in(&names), vec!["s1".to_owned()]);

    let mut log = start.into_log();
    assert_eq!(log.last_index_term(), Some((LogIndex(5), Term(1))));
    assert_eq!(log.last_written(), (LogIndex(5), Term(1)));
    for i in 1..=5 {
        assert_eq!(fetch(&mut n, &mut log, i), entry(i, 1), "index {i}");
    }
    // And it runs: an append is written.
    append(&mut n, &mut log, 6, 6, 2);
    deliver(&mut n, &mut log, 2);
    assert_eq!(log.last_written(), (LogIndex(6), Term(2)));
    assert_actors_healthy(&n);
}

/// L1: under `indexes-badmatch`, an unreadable `indexes` file fails init *before* the other snapshot
/// directories are deleted (Ra's order: `indexes(Current)` first, then the deletes).
#[test]
fn l1_indexes_badmatch_fails_before_older_snapshots_are_deleted() {
    let mut n = Node::new(13, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let uid = Uid::new("s1");
    n.fs.mkdir_all("s1").unwrap();
    let snaps = [(5, 1), (8, 1), (12, 2)];
    for (index, term) in snaps {
        write_local_snapshot(&mut n.fs, "s1", &meta(index, term), &index_list_state(&[3]), &seq(&[3]), &Bugs::none())
            .unwrap();
    }
    let dirs = |n: &mut Node| {
        let mut d = n.fs.read_dir(&format!("s1/{SNAPSHOTS_DIR}")).unwrap();
        d.sort();
        d
    };
    let all: Vec<String> = snaps.iter().map(|&(i, t)| snapshot_dir_name(Term(t), LogIndex(i))).collect();
    assert_eq!(dirs(&mut n), all);
    let newest = format!("s1/{SNAPSHOTS_DIR}/{}", all[2]);
    let fd = n.fs.open(&format!("{newest}/{INDEXES_FILE}"), &OpenOptions::create_truncate()).unwrap();
    n.fs.write(fd, b"garbage").unwrap();
    n.fs.fsync(fd).unwrap();
    n.fs.close(fd).unwrap();

    let bugs = Bugs::of(&[Bug::IndexesBadmatch]);
    for attempt in 0..2 {
        let got = try_init_log(&mut n, "s1", 1, &bugs).map(|(_, report)| report);
        assert!(
            matches!(&got, Err(StorageError::IndexesUnreadable { dir, .. }) if *dir == newest),
            "attempt {attempt}: {got:?}"
        );
        assert_eq!(dirs(&mut n), all, "attempt {attempt}: older snapshot directories deleted");
        assert_eq!(n.shared.snapshots.read(&uid), None, "attempt {attempt}: snapshot state seeded");
    }

    // Fixed: indexes rebuilt from the machine state, then the older directories go.
    let (log, report) = try_init_log(&mut n, "s1", 1, &Bugs::none()).unwrap();
    assert!(report.indexes_rebuilt && !report.brand_new);
    assert_eq!(log.snapshot(), Some(&meta(12, 2)));
    assert_eq!(log.live_indexes(), &seq(&[3]));
    assert_eq!(dirs(&mut n), vec![all[2].clone()]);
}

/// R7 (sim swarm seed 1549): live entries a snapshot's pre-phase writes sparsely after the log are cast
/// to the WAL chained to the log's last index (Ra's `previous_wal_index`), each becoming the last index,
/// so the WAL sees no gap and makes them durable; the log's range then spans the hole.
#[test]
fn r7_sparse_writes_after_the_log_are_written_not_dropped_as_a_gap() {
    let mut n = Node::new(9, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 3, 1);
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(3), Term(1)));
    for i in [7, 9] {
        let mut out = Vec::new();
        log.write_sparse(LogIndex(i), Term(1), payload_for(i, 1).into(), &mut n.shared, &mut out).unwrap();
        n.route(out);
    }
    assert_eq!(log.last_index_term(), Some((LogIndex(9), Term(1))), "each sparse entry becomes the last index");
    deliver(&mut n, &mut log, 1);
    assert_actors_healthy(&n);
    assert!(n.resends(ProcessId(1)).is_empty(), "the WAL saw a gap and dropped the sparse writes");
    assert_eq!(log.last_written(), (LogIndex(9), Term(1)), "the sparse writes became durable");
    assert_eq!(fetch(&mut n, &mut log, 7), entry(7, 1));
    assert_eq!(fetch(&mut n, &mut log, 5), None, "the hole stays a hole");
}

/// A segment file whose header never reached the disk holds nothing durable: all zeros (a power cut kept
/// its size but not its bytes: swarm seeds 2507 and 2970), or garbage in a file no longer than a header
/// (the drive's sector in flight under `unsynced_garbage`: swarm seed 8588). The segment writer recreates
/// it, or, under `segment-zero-header-fatal` (Ra's `open_file`), stops with `invalid_segment_format`.
fn flush_over_a_bad_segment_header(bugs: Bugs, file: &[u8]) -> (Node, ServerLog) {
    let mut cfg = segment_writer_config(64);
    cfg.bugs = bugs.clone();
    let mut n = Node::new(9, wal_config(1 << 20, Bugs::none()), cfg);
    n.boot_and_recover().unwrap();
    let mut log = start_new(&mut n, "s1", 1);
    let fd = n.fs.open("s1/0000000000000001.segment", &OpenOptions::create()).unwrap();
    n.fs.write(fd, file).unwrap();
    n.fs.close(fd).unwrap();
    append(&mut n, &mut log, 1, 5, 1);
    deliver(&mut n, &mut log, 1);
    n.send_wal(WalMsg::ForceRollOver);
    deliver(&mut n, &mut log, 1);
    (n, log)
}

/// (what the file holds, whether it never reached the disk).
fn bad_segment_headers() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut garbage_then_data = vec![0xA5u8; 8];
    garbage_then_data.extend_from_slice(&[7u8; 4088]);
    vec![
        ("a zeroed header and size", vec![0u8; 4096], true),
        ("a garbage header, nothing after it", vec![0xA5u8; 8], true),
        ("a short garbage header", vec![0x5Au8; 3], true),
        // A synced header that later went bad is not software's to repair: the writer stops.
        ("a garbage header before data", garbage_then_data, false),
    ]
}

#[test]
fn a_segment_header_that_never_reached_disk_is_recreated() {
    for (what, file, never_synced) in bad_segment_headers() {
        let (mut n, mut log) = flush_over_a_bad_segment_header(Bugs::none(), &file);
        if never_synced {
            assert_actors_healthy(&n);
            assert!(!log.segrefs().is_empty(), "{what}: flushed into a recreated segment");
            assert_eq!(fetch(&mut n, &mut log, 3), entry(3, 1), "{what}");
        } else {
            let err = n.segment_writer_error.as_ref().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("invalid_segment_format"), "{what}: {err:?}");
        }
    }
}

#[test]
fn segment_zero_header_fatal_restores_ras_exit() {
    for (what, file, _) in bad_segment_headers() {
        let (n, _) = flush_over_a_bad_segment_header(Bugs::of(&[Bug::SegmentZeroHeaderFatal]), &file);
        let err = n.segment_writer_error.as_ref().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("invalid_segment_format"), "{what}: {err:?}");
    }
}

/// Hands s1's log the WAL's `ResendFrom { from }`; returns the appends it casts as (previous, index).
fn resend_casts(n: &mut Node, log: &mut ServerLog, from: u64) -> Vec<(Option<LogIndex>, LogIndex)> {
    let ev = LogEvent::ResendFrom { uid: Uid::new("s1"), from: LogIndex(from) };
    let mut out = Vec::new();
    log.handle_event(&ev, &mut n.shared, &mut n.fs, &mut out).unwrap();
    out.iter()
        .filter_map(|e| match e {
            raft_core::storage::Envelope::Wal(WalMsg::Append(a)) => Some((a.prev_index, a.index)),
            _ => None,
        })
        .collect()
}

/// A WAL that restarted with a stale view of a writer (its `writers.snapshot` rename lost to a power cut)
/// asks it to resend from an index long since flushed to segments; Ra's `resend_from0` resends only the
/// pending entries, the first chained to `from - 1`, so the WAL accepts them. raft-core resent from the
/// mem tables and stopped at the first flushed index: nothing was resent and the server never wrote
/// again (found by the sim, swarm seed 3568: a one-node cluster that committed nothing after the heal).
#[test]
fn a_resend_from_a_flushed_index_sends_the_pending_entries_chained_to_the_request() {
    let mut n = Node::new(9, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 5, 1);
    deliver(&mut n, &mut log, 1);
    n.send_wal(WalMsg::ForceRollOver);
    deliver(&mut n, &mut log, 1);
    assert!(!log.segrefs().is_empty(), "1..=5 flushed");
    let mut out = Vec::new();
    log.append(LogIndex(6), Term(1), payload_for(6, 1).into(), &mut n.shared, &mut n.fs, &mut out).unwrap();
    let sent = resend_casts(&mut n, &mut log, 3);
    assert_eq!(sent, vec![(Some(LogIndex(2)), LogIndex(6))], "only the pending entry, chained to from - 1");
}

/// `segment-reused-after-failed-sync` (found by this harness with disk errors; Ra 3.1.10's
/// `ra_log_segment_writer` opens the newest segment for appends whoever wrote it): the fsync that
/// creates s1's first segment fails, so the header it wrote never reaches the disk though the page
/// cache still shows it (fsyncgate), and the segment writer crashes; its supervisor restarts the log tier
/// (a fresh segment writer and WAL, the mem tables kept), and the WAL's recovery hands the file to the new
/// segment writer again. Ra's appends to that segment and syncs it: its header is still not on disk, so
/// after a power cut the server cannot init, at any restart. raft-core's segment writer starts a
/// successor instead (created and synced anew), and init deletes the headerless segment (its entries are
/// in the successor).
#[test]
fn a_segment_whose_first_sync_failed_is_never_appended_to() {
    for reuse in [true, false] {
        let bugs = if reuse { Bugs::of(&[Bug::SegmentReusedAfterFailedSync]) } else { Bugs::none() };
        let mut sw = segment_writer_config(64);
        sw.bugs = bugs.clone();
        let mut n = Node::new(22, wal_config(1 << 20, Bugs::none()), sw);
        n.boot_and_recover().unwrap();
        let mut log = start_new(&mut n, "s1", 1);
        sync_root_dir(&mut n);
        append(&mut n, &mut log, 1, 5, 1);
        deliver(&mut n, &mut log, 1);
        assert_eq!(log.last_written(), (LogIndex(5), Term(1)));

        n.fs.inject_error(vfs::ErrorRule {
            kind: Some(vfs::OpKind::Fsync),
            path_glob: "s1/*.segment".into(),
            error: vfs::ErrorKind::Io,
            after_seq: 0,
            times: 1,
        });
        n.send_wal(WalMsg::ForceRollOver);
        n.run();
        let failed = n.segment_writer_error.take();
        assert!(
            matches!(&failed, Some(StorageError::Segment(SegmentError::Fs(e))) | Some(StorageError::Fs(e)) if e.kind == vfs::ErrorKind::Io),
            "{failed:?}"
        );
        // The log tier restarts: a fresh segment writer and WAL, whose recovery flushes the file again.
        n.boot();
        deliver(&mut n, &mut log, 1);
        assert_actors_healthy(&n);
        let segments = n.segment_files(&Uid::new("s1"));
        assert_eq!(segments.len(), if reuse { 1 } else { 2 }, "{segments:?}");
        drop(log);

        n.power_loss(CrashModel::LoseUnsynced);
        n.boot_and_recover().unwrap();
        let got = try_init_log(&mut n, "s1", 2, &bugs).map(|(log, _)| log.last_index_term());
        if reuse {
            // The segment's header is not on disk: the server cannot init, at any restart.
            assert!(matches!(got, Err(StorageError::Segment(_))), "{got:?}");
        } else {
            assert_eq!(got, Ok(Some((LogIndex(5), Term(1)))));
        }
    }
}

/// `missing-index-exit` (found by this harness with disk errors; Ra 3.1.10's
/// `ra_log_segment_writer:append_to_segment/6`): the segment writer flushes WAL 1 and notifies s1, then
/// its unlink of the file fails and the log tier restarts (a fresh segment writer and WAL, the mem tables
/// kept). The WAL's post-boot recovery hands WAL 1 to the new segment writer with the entries still in
/// the mem table — and s1, handling the first flush's `segments` event meanwhile, deletes them. Ra's
/// segment writer exits on the first one missing; raft-core's skips them (they are in the segment).
#[test]
fn entries_deleted_after_their_flush_do_not_stop_a_second_flush() {
    for exit in [true, false] {
        let bugs = if exit { Bugs::of(&[Bug::MissingIndexExit]) } else { Bugs::none() };
        let mut sw = segment_writer_config(64);
        sw.bugs = bugs;
        let mut n = Node::new(23, wal_config(1 << 20, Bugs::none()), sw);
        n.boot_and_recover().unwrap();
        let mut log = start_new(&mut n, "s1", 1);
        append(&mut n, &mut log, 1, 5, 1);
        deliver(&mut n, &mut log, 1);

        fail_next_wal_unlink(&mut n);
        n.send_wal(WalMsg::ForceRollOver);
        n.run();
        assert!(n.segment_writer_error.take().is_some(), "the unlink failed");
        let first_flush = n.events.remove(&ProcessId(1)).unwrap_or_default();
        assert!(first_flush.iter().any(|e| matches!(e, LogEvent::Segments { .. })));

        // The log tier restarts; its WAL hands WAL 1 to the segment writer again, and then s1 handles
        // the first flush's event, deleting the flushed entries.
        n.boot();
        n.take_casts();
        while n.take_casts().is_empty() {
            assert!(n.step(), "the WAL's recovery handed WAL 1 over");
        }
        for e in &first_flush {
            let mut out = Vec::new();
            log.handle_event(e, &mut n.shared, &mut n.fs, &mut out).unwrap();
            n.route(out);
        }
        n.run();
        if exit {
            let expected = StorageError::MissingIndex { uid: Uid::new("s1"), index: LogIndex(0) };
            assert_eq!(n.segment_writer_error, Some(expected));
        } else {
            assert_actors_healthy(&n);
            assert!(n.notices.contains(&raft_core::storage::NodeNotice::WalRecovered));
            assert!(!n.wal_files().contains(&"0000000000000001.wal".to_owned()), "WAL 1 done with");
            assert_eq!(fetch(&mut n, &mut log, 5), entry(5, 1));
        }
    }
}

/// `wal-restart-flushes-overwritten` (found by `cargo xtask scale`, swarm seed 23291, no switch; Ra
/// 3.1.10's post-boot `recover_entry` with `ra_mt:tid_for`): s1 wrote its log in term 1, then overwrote
/// 4..=6 in term 2 — and the WAL process restarted with those appends still in its mailbox. Its post-boot
/// recovery meets term 1's 4 and 5 in its file, and either finds them in the mem table the overwrite
/// superseded and flushes them (the log then takes the segments' last index as written), or, when an
/// earlier flush already took them from the tables (a failed WAL unlink kept the file), sets the writer's
/// sequence to 5. Either way the WAL's next gap asks only for what follows: term 2's 4 and 5 never reach
/// the disk, and after a power cut the log holds term 1 there. raft-core keeps an overwritten record out
/// of the flush and ends the writer's sequence before it. A third shape: term 1's log went past the
/// overwrite (to 8), so records the overwrite cut off follow in the file and raise the writer's sequence
/// again; the log's own check of what the WAL confirms (a written range above a pending index) resends
/// the overwrite — with Ra's path too here, because raft-core's log never takes a last written index
/// above its last index (a departure, ARCHITECTURE.md).
#[test]
fn a_wal_restart_never_flushes_a_record_the_log_overwrote() {
    struct Shape {
        name: &'static str,
        /// s1's log in term 1 is 1..=`term_1_last`; term 2 overwrites 4..=6.
        term_1_last: u64,
        /// The WAL file with term 1's records was flushed (its unlink failing) before the overwrite.
        flushed_first: bool,
        /// Terms of 1..=7 after a power cut, with Ra's path and with raft-core's.
        with_switch: [u64; 7],
        without: [u64; 7],
    }
    let lost = [1, 1, 1, 1, 1, 2, 2];
    let kept = [1, 1, 1, 2, 2, 2, 2];
    let shapes = [
        Shape {
            name: "found in the superseded table",
            term_1_last: 5,
            flushed_first: false,
            with_switch: lost,
            without: kept,
        },
        Shape { name: "already flushed", term_1_last: 5, flushed_first: true, with_switch: lost, without: kept },
        Shape {
            name: "stale tail past the overwrite",
            term_1_last: 8,
            flushed_first: false,
            with_switch: kept,
            without: kept,
        },
    ];
    for shape in &shapes {
        for flushes_overwritten in [true, false] {
            let case = format!("{}, Ra's path: {flushes_overwritten}", shape.name);
            let bugs = if flushes_overwritten { Bugs::of(&[Bug::WalRestartFlushesOverwritten]) } else { Bugs::none() };
            let mut n = Node::new(24, wal_config(1 << 20, bugs.clone()), segment_writer_config(64));
            n.boot_and_recover().unwrap();
            let mut log = start_new(&mut n, "s1", 1);
            sync_root_dir(&mut n);
            append(&mut n, &mut log, 1, shape.term_1_last, 1);
            deliver(&mut n, &mut log, 1);
            assert_eq!(log.last_written(), (LogIndex(shape.term_1_last), Term(1)), "{case}");
            if shape.flushed_first {
                fail_next_wal_unlink(&mut n);
                n.send_wal(WalMsg::ForceRollOver);
                deliver(&mut n, &mut log, 1);
                assert!(n.segment_writer_error.take().is_some(), "{case}: the unlink failed");
                assert_eq!(log.segrefs().len(), 1, "{case}: term 1's log flushed");
            }

            append(&mut n, &mut log, 4, 6, 2);
            if shape.flushed_first {
                n.boot();
            } else {
                n.restart_wal();
            }
            deliver(&mut n, &mut log, 1);
            append(&mut n, &mut log, 7, 7, 2);
            deliver(&mut n, &mut log, 1);
            assert_actors_healthy(&n);
            assert_eq!(log.last_written(), (LogIndex(7), Term(2)), "{case}");
            n.send_wal(WalMsg::ForceRollOver);
            deliver(&mut n, &mut log, 1);
            drop(log);

            n.power_loss(CrashModel::LoseUnsynced);
            n.boot_and_recover().unwrap();
            let (mut log, _) = try_init_log(&mut n, "s1", 2, &bugs).unwrap();
            let terms: Vec<u64> = (1..=7).map(|i| fetch(&mut n, &mut log, i).map_or(0, |(t, _)| t.0)).collect();
            assert_eq!(terms, if flushes_overwritten { shape.with_switch } else { shape.without }, "{case}");
        }
    }
}

/// A flush that lands over a pending overwrite (found by `sim hunt --swarm --seed 12`, run 5024, as
/// `written-survives`): s1 wrote 1..=5 in term 1 and the WAL rolled over; the log then staged 3..=6 in
/// term 2, and the segment writer flushed the old file (1..=5 of term 1) before the WAL wrote the
/// overwrite. The `{segments, …}` event raises the last written index to 5, with the term the segment
/// holds there, as Ra's handler does (`ra_log_segments:fetch_term`): 5 of term 1 is what the disk has.
/// raft-core took the mem table's term and claimed 5 of term 2 written while it was still pending — a
/// power cut then showed 5 of term 1. Once the WAL writes the overwrite, 6 of term 2 is written.
#[test]
fn a_flush_over_a_pending_overwrite_reports_the_term_on_disk() {
    let mut n = Node::new(25, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    let mut log = start_new(&mut n, "s1", 1);
    append(&mut n, &mut log, 1, 5, 1);
    deliver(&mut n, &mut log, 1);
    n.send_wal(WalMsg::ForceRollOver);
    n.run_wal_only();
    append(&mut n, &mut log, 3, 6, 2);
    n.schedule = Schedule::SegmentWriterFirst;
    while !n.events.get(&ProcessId(1)).is_some_and(|e| e.iter().any(|e| matches!(e, LogEvent::Segments { .. }))) {
        assert!(n.step(), "the segment writer flushes WAL 1");
    }
    for e in n.events.remove(&ProcessId(1)).unwrap_or_default() {
        handle(&mut n, &mut log, &e).unwrap();
    }
    assert_eq!(log.pending(), &seq(&[3, 4, 5, 6]), "the overwrite is not written yet");
    assert_eq!(log.last_written(), (LogIndex(5), Term(1)), "the term the disk holds at 5");
    n.schedule = Schedule::Random;
    deliver(&mut n, &mut log, 1);
    assert_eq!(log.last_written(), (LogIndex(6), Term(2)));
}

/// `wal-gap-request-ignored` (found by `sim hunt`, seed 12, no switch; Ra 3.1.10's `resend_from0`): a
/// resend chained to an index the WAL does not have (a tick's resend after a WAL restart, chained to a
/// snapshot's index above the WAL's last record for the server) makes the WAL ask, once, to resend from
/// after its own last record, and drop every write of the server until one chains to what it has. Ra's
/// resend window refuses that request (it comes just after the resend it answers), and the server never
/// writes again. raft-core lets a resend that starts below the last one's start go ahead.
#[test]
fn a_wal_request_below_the_last_resend_goes_ahead_within_the_window() {
    for (ignored, expected) in [(false, vec![(Some(2), 4), (Some(4), 5), (Some(5), 6)]), (true, vec![])] {
        let bugs = if ignored { Bugs::of(&[Bug::WalGapRequestIgnored]) } else { Bugs::none() };
        let mut n = Node::new(9, wal_config(1 << 20, Bugs::none()), segment_writer_config(64));
        n.boot_and_recover().unwrap();
        n.fs.mkdir_all("s1").unwrap();
        let (mut log, _) = try_init_log(&mut n, "s1", 1, &bugs).unwrap();
        deliver(&mut n, &mut log, 1);
        append(&mut n, &mut log, 1, 3, 1);
        deliver(&mut n, &mut log, 1);
        assert_eq!(log.last_written(), (LogIndex(3), Term(1)));
        // 4..=6 never reach the WAL (its casts are dropped): they stay pending.
        for i in 4..=6 {
            let mut lost = Vec::new();
            log.append(LogIndex(i), Term(1), payload_for(i, 1).into(), &mut n.shared, &mut n.fs, &mut lost).unwrap();
        }
        let resend = |log: &mut ServerLog, n: &mut Node, from: u64| {
            resend_casts(n, log, from).into_iter().map(|(p, i)| (p.map(|p| p.0), i.0)).collect::<Vec<_>>()
        };
        // As a tick's resend: from the last written index + 1, chained to it.
        let all = vec![(Some(3), 4), (Some(4), 5), (Some(5), 6)];
        assert_eq!(resend(&mut log, &mut n, 4), all, "the first resend goes");
        assert_eq!(resend(&mut log, &mut n, 4), vec![], "the same again within the window does not");
        // A WAL whose last record of s1 is 2 asks for 3 on: only the pending ones go, chained to 2.
        assert_eq!(resend(&mut log, &mut n, 3), expected, "a request from below it (switch on: {ignored})");
    }
}
