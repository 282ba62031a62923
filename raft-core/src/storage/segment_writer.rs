//! The segment writer (Ra's `ra_log_segment_writer`): copies the mem-table ranges of a finished WAL file
//! into per-server segment files, then deletes the WAL file.
//!
//! Key invariant: a WAL file is unlinked only after every registered server's entries from it are in
//! fsynced segments whose directory was fsynced. In Ra the unlink itself is **not** followed by a WAL
//! directory fsync, so after a power cut the WAL file may come back and be replayed and flushed a second
//! time (the precondition of PR 589 fix 3); raft-core syncs the directory after the unlink (a crash just
//! before that sync still replays the file), and `wal-unlink-no-dir-sync` restores Ra's code. Steps per `MemTables{ranges, wal_file}` (docs/ra-design.md, the segment writer):
//! 1. drop every table of uids that are not registered;
//! 2. per registered uid, one step each: append its ranges to the highest existing segment (successors
//!    when full; close = fsync), fsync the server directory;
//! 3. notify the server (`Segments`), or — when it has no running process — delete the flushed keys from
//!    its mem table *itself*, a few keys per step (not atomic: the window of PR 589 fix 2);
//! 4. unlink the WAL file (Ra: without a directory fsync; see `wal-unlink-no-dir-sync`).

use std::collections::{BTreeSet, VecDeque};

use crate::bugs::{Bug, Bugs};
use crate::seq::Seq;
use crate::storage::mem_table::{DeleteJob, DeleteSpec, Lookup};
use crate::storage::messages::{SegmentWriterMsg, WalMsg};
use crate::storage::segment::{STALE_SEGMENT_BYTES, Segment, SegmentConfig, SegmentError};
use crate::storage::segref::SegRef;
use crate::storage::shared::NodeShared;
use crate::storage::{Envelope, LogEvent, StorageError, is_power_cut, join, sync_dir_best_effort, zpad_name, zpad_num};
use crate::types::{LogIndex, TableId, Uid};
use vfs::{ErrorKind, FileSystem};

/// Segment writer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentWriterConfig {
    /// The node's data directory; server `u` keeps its segments in `<data_dir>/u/`.
    pub data_dir: String,
    /// Segment sizing.
    pub segment: SegmentConfig,
    /// Keys deleted per step when the segment writer deletes flushed entries itself.
    pub delete_keys_per_step: usize,
    /// Switched-on pre-fix behaviours (only `wal-unlink-no-dir-sync` is read here).
    pub bugs: Bugs,
}

#[derive(Debug, Clone)]
struct FlushJob {
    wal_file: String,
    uids: VecDeque<(Uid, Vec<(TableId, Seq)>)>,
    delete: Option<DeleteJob>,
}

/// Counters for tests and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentWriterStats {
    /// WAL files fully processed (and unlinked).
    pub wal_files_done: u64,
    /// Entries appended to segments.
    pub entries: u64,
    /// Segment files created.
    pub segments_created: u64,
    /// Self-deletes performed for servers without a process.
    pub self_deletes: u64,
}

/// The segment writer actor.
#[derive(Debug, Clone)]
pub struct SegmentWriter {
    config: SegmentWriterConfig,
    job: Option<FlushJob>,
    stats: SegmentWriterStats,
    /// Segment files this process created or appended to. One an earlier process wrote is not
    /// appended to (its first flush of that server opens a successor): if that process crashed on a
    /// failed fsync, the page cache shows index records the disk never got (fsyncgate), and records
    /// appended after them would sit behind a hole a power cut turns into the end of the index.
    /// `segment-reused-after-failed-sync` restores Ra's append to the newest segment.
    mine: BTreeSet<String>,
}

impl SegmentWriter {
    /// A segment writer with nothing to do.
    pub fn new(config: SegmentWriterConfig) -> SegmentWriter {
        SegmentWriter { config, job: None, stats: SegmentWriterStats::default(), mine: BTreeSet::new() }
    }

    /// Counters.
    pub fn stats(&self) -> SegmentWriterStats {
        self.stats
    }

    /// Whether a flush is in progress.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// Handles one message (one step).
    pub fn handle(
        &mut self,
        msg: SegmentWriterMsg,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        match msg {
            SegmentWriterMsg::MemTables { ranges, wal_file } => {
                assert!(self.job.is_none(), "a mailbox message arrived while a flush was in progress");
                let mut uids = VecDeque::new();
                for (uid, seqs) in ranges {
                    if shared.directory.is_registered(&uid) {
                        uids.push_back((uid, seqs));
                    } else {
                        shared.mem_tables.delete_mem_tables(&uid);
                    }
                }
                self.job = Some(FlushJob { wal_file, uids, delete: None });
                out.push(Envelope::SegmentWriterContinue(SegmentWriterMsg::Continue));
                Ok(())
            }
            SegmentWriterMsg::Continue => self.continue_job(shared, fs, out),
            SegmentWriterMsg::Await { token } => {
                assert!(self.job.is_none(), "a mailbox message arrived while a flush was in progress");
                out.push(Envelope::Wal(WalMsg::SegmentWriterDrained { token }));
                Ok(())
            }
        }
    }

    fn continue_job(
        &mut self,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        let job = self.job.as_mut().expect("Continue without a job");
        if let Some(delete) = job.delete.as_mut() {
            if !delete.step(&mut shared.mem_tables, self.config.delete_keys_per_step) {
                out.push(Envelope::SegmentWriterContinue(SegmentWriterMsg::Continue));
                return Ok(());
            }
            job.delete = None;
        }
        match job.uids.pop_front() {
            Some((uid, seqs)) => {
                let segrefs = self.flush_server(&uid, &seqs, shared, fs)?;
                let job = self.job.as_mut().expect("job");
                match shared.directory.process_of(&uid) {
                    Some(process) => out.push(Envelope::Server {
                        process,
                        event: LogEvent::Segments { uid: uid.clone(), ranges: seqs, segrefs },
                    }),
                    None => {
                        // No running server: delete what was flushed from its mem table ourselves.
                        let specs: Vec<DeleteSpec> =
                            seqs.iter().map(|(tid, seq)| DeleteSpec::Indexes(*tid, seq.clone())).collect();
                        let mut delete = DeleteJob::plan(&shared.mem_tables, &DeleteSpec::Multi(specs));
                        self.stats.self_deletes += 1;
                        if !delete.step(&mut shared.mem_tables, self.config.delete_keys_per_step) {
                            job.delete = Some(delete);
                        }
                    }
                }
                out.push(Envelope::SegmentWriterContinue(SegmentWriterMsg::Continue));
                Ok(())
            }
            None => {
                let job = self.job.take().expect("job");
                fs.unlink(&job.wal_file)?;
                // Ra follows the unlink with no directory fsync: it becomes durable only incidentally,
                // and a later WAL file's unlink can become durable before an earlier one's. Then the
                // earlier file and a later one are replayed around a missing middle one, and their
                // re-flush into the same segment makes "later wins" drop the middle file's entries
                // (found by swarm, seed 330). raft-core syncs the WAL directory here;
                // `wal-unlink-no-dir-sync` restores Ra's code.
                if !self.config.bugs.has(Bug::WalUnlinkNoDirSync) {
                    let dir = job.wal_file.rsplit_once('/').map_or("", |(d, _)| d);
                    sync_dir_best_effort(fs, dir)?;
                }
                self.stats.wal_files_done += 1;
                Ok(())
            }
        }
    }

    /// Ra's `flush_mem_table_ranges` for one server; returns its new segrefs, newest first.
    fn flush_server(
        &mut self,
        uid: &Uid,
        seqs_newest_first: &[(TableId, Seq)],
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<Vec<SegRef>, StorageError> {
        let (snap_idx, smallest, live) = match shared.snapshots.read(uid) {
            Some(s) => (Some(s.snapshot_index), s.smallest_live, s.live_indexes.clone()),
            None => (None, LogIndex(0), Seq::new()),
        };
        let keep = |seq: Seq| -> Seq {
            if live.is_empty() {
                return seq;
            }
            let above_snapshot = seq.floor(LogIndex(snap_idx.map_or(0, |s| s.0 + 1)));
            match seq.range() {
                Some((first, last)) => above_snapshot.union(&live.in_range(first, last)),
                None => above_snapshot,
            }
        };
        // Newest first in, oldest first out; each older seq limited to at most the newer one's start.
        let mut oldest_first: Vec<(TableId, Seq)> = Vec::new();
        for (tid, seq0) in seqs_newest_first {
            let floored = seq0.floor(smallest);
            let seq = match oldest_first.first() {
                None => floored,
                Some((_, newer)) => match newer.first() {
                    Some(start) => floored.limit(start),
                    None => floored,
                },
            };
            if seq.is_empty() {
                continue;
            }
            oldest_first.insert(0, (*tid, keep(seq)));
        }
        let mut all: Vec<SegRef> = Vec::new();
        for (tid, seq) in &oldest_first {
            let refs = self.flush_range(uid, *tid, seq, shared, fs)?;
            // Each call returns newest first; later calls are newer.
            let mut combined = refs;
            combined.extend(all);
            all = combined;
        }
        // A segment appended to by consecutive calls appears once (its newest ref).
        let mut out: Vec<SegRef> = Vec::new();
        for r in all {
            if out.last().is_some_and(|prev: &SegRef| prev.file == r.file) {
                continue;
            }
            out.push(r);
        }
        Ok(out)
    }

    fn server_dir(&self, uid: &Uid) -> String {
        join(&self.config.data_dir, uid.as_str())
    }

    /// Opens the highest-numbered existing segment for appending, or creates the first. `Ok(None)`
    /// when the server directory is gone.
    fn open_file(&mut self, dir: &str, fs: &mut dyn FileSystem) -> Result<Option<Segment>, StorageError> {
        loop {
            let names = match fs.read_dir(dir) {
                Ok(n) => n,
                Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let highest = names.iter().filter_map(|n| zpad_num(n, "segment")).max();
            let created = highest.is_none();
            let path = join(dir, &zpad_name(highest.unwrap_or(1), "segment"));
            match Segment::open_append(fs, &path, self.config.segment) {
                Ok(seg) => {
                    if created {
                        self.stats.segments_created += 1;
                    }
                    if created || self.mine.contains(&path) || self.config.bugs.has(Bug::SegmentReusedAfterFailedSync) {
                        self.mine.insert(path);
                        return Ok(Some(seg));
                    }
                    // Written by an earlier segment writer process: start a successor.
                    return self.open_successor(seg, fs).map(Some);
                }
                Err(SegmentError::MissingHeader { .. }) => {
                    // The header never reached disk: delete the empty file and retry.
                    fs.unlink(&path)?;
                }
                // An all-zero header never reached disk either (the file's size did), nor did a bad header
                // in a file no longer than a header (garbage a power cut left in the sector being
                // written): it holds nothing durable, so the same; `segment-zero-header-fatal` restores
                // Ra's exit.
                Err(SegmentError::InvalidFormat { .. })
                    if !self.config.bugs.has(Bug::SegmentZeroHeaderFatal)
                        && crate::storage::segment::header_never_synced(fs, &path)? =>
                {
                    fs.unlink(&path)?;
                }
                Err(SegmentError::Fs(e)) if e.kind == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn open_successor(&mut self, seg: Segment, fs: &mut dyn FileSystem) -> Result<Segment, StorageError> {
        let path = seg.path().to_owned();
        seg.close(fs)?;
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let num = zpad_num(name, "segment").expect("segment names are zero-padded");
        let next = join(dir, &zpad_name(num + 1, "segment"));
        self.stats.segments_created += 1;
        let seg = Segment::open_append(fs, &next, self.config.segment)?;
        self.mine.insert(next);
        Ok(seg)
    }

    /// Ra's `flush_mem_table_range`: returns the refs of every segment touched, newest first.
    fn flush_range(
        &mut self,
        uid: &Uid,
        tid: TableId,
        seq: &Seq,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<Vec<SegRef>, StorageError> {
        let dir = self.server_dir(uid);
        let Some(mut seg) = self.open_file(&dir, fs)? else {
            shared.mem_tables.delete_mem_tables(uid);
            return Ok(Vec::new());
        };
        // A last segment holding only data below the smallest live index is left alone.
        let smallest = shared.snapshots.smallest(uid);
        if seg.range().is_some_and(|(_, last)| last < smallest) && seg.data_bytes() > STALE_SEGMENT_BYTES {
            seg = self.open_successor(seg, fs)?;
        }
        let mut closed: Vec<SegRef> = Vec::new();
        let start = smallest.max(seq.first().unwrap_or(LogIndex(0)));
        for index in seq.floor(start).iter() {
            let (term, payload) = match shared.mem_tables.lookup(tid, index) {
                Lookup::Found(term, payload) => (term, payload),
                Lookup::Missing if index < shared.snapshots.smallest(uid) => {
                    // A snapshot completed after we started: skip what it covers.
                    continue;
                }
                Lookup::Missing if shared.directory.is_registered(uid) => {
                    if !self.config.bugs.has(Bug::MissingIndexExit) {
                        // The server deleted it since the ranges were made: a flush made it durable
                        // (a restarted WAL's recovery offered it again), a snapshot covers it, or an
                        // overwrite replaced it. Ra exits here (`missing-index-exit`).
                        continue;
                    }
                    seg.abandon(fs);
                    return Err(StorageError::MissingIndex { uid: uid.clone(), index });
                }
                Lookup::Missing | Lookup::TableGone => {
                    // Ra's `append_to_segment` returns `undefined`: the server went away mid-flush. Only
                    // the first segment is closed (synced); a successor opened meanwhile is left as it
                    // is, no directory fsync follows and no segrefs are reported.
                    if closed.is_empty() {
                        seg.close(fs)?;
                    } else {
                        seg.abandon(fs);
                    }
                    return Ok(Vec::new());
                }
            };
            loop {
                match seg.append(fs, index, term, &payload) {
                    Ok(true) => break,
                    Ok(false) => {
                        if let Some(r) = seg.segref() {
                            closed.insert(0, r);
                        }
                        seg = self.open_successor(seg, fs)?;
                    }
                    Err(e) => {
                        let err = StorageError::from(e);
                        if !matches!(&err, StorageError::Fs(fe) if is_power_cut(fe)) {
                            seg.abandon(fs);
                        }
                        return Err(err);
                    }
                }
            }
            self.stats.entries += 1;
        }
        let mut refs: Vec<SegRef> = seg.segref().into_iter().collect();
        refs.extend(closed);
        seg.close(fs)?;
        sync_dir_best_effort(fs, &dir)?;
        Ok(refs)
    }
}
