//! One server's log (Ra's `ra_log`): init from disk, appends through the mem table and the WAL, reads
//! across mem tables, segments and the snapshot, and the reactions to `Written`, `Segments` and
//! `SnapshotWritten`.
//!
//! Key invariant: every segment ref the log holds names an existing file whose index covers the ref's
//! (possibly truncated) range. Init establishes it by listing segments, compacting their refs newest
//! first and deleting every file no longer referenced — **by name**; the `segref-tuple-delete` switch
//! restores Ra's pre-fix comparison of `(name, range)` pairs, which deletes a segment whose range was
//! merely truncated by a replayed WAL file (PR 589 fix 3). Everything below the snapshot is dropped
//! except the machine's live indexes.

use std::collections::BTreeMap;

use crate::bugs::{Bug, Bugs};
use crate::seq::Seq;
use crate::storage::mem_table::{DeleteJob, InsertError, MemTable, SparseInsertError};
use crate::storage::messages::{WalAppend, WalMsg};
use crate::storage::segment::{IndexParse, SegmentError, SegmentReader};
use crate::storage::segref::{SegRef, SegRefs};
use crate::storage::shared::NodeShared;
use crate::storage::snapshot::{self, LiveIndexes, SnapshotMeta};
use crate::storage::{Envelope, LogEvent, StorageError, join, zpad_num};
use crate::types::{LogIndex, Payload, ProcessId, TableId, Term, Uid};
use vfs::FileSystem;

mod resend;

/// What log init found and did (for traces and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInitReport {
    /// Segment refs listed from disk, newest first.
    pub listed: Vec<SegRef>,
    /// Refs after compaction, newest first.
    pub compacted: Vec<SegRef>,
    /// Segment files deleted as unreferenced.
    pub deleted_segments: Vec<String>,
    /// Whether the `indexes` file had to be rebuilt from the snapshot.
    pub indexes_rebuilt: bool,
    /// Whether the log was brand new (its first entry, index 0, was appended).
    pub brand_new: bool,
}

/// A server's log.
#[derive(Debug, Clone)]
pub struct ServerLog {
    uid: Uid,
    process: ProcessId,
    dir: String,
    bugs: Bugs,
    mt: MemTable,
    segrefs: SegRefs,
    readers: BTreeMap<String, SegmentReader>,
    snapshot: Option<SnapshotMeta>,
    live_indexes: Seq,
    /// `(first, last)` of the log proper (above the snapshot); `None` when empty.
    range: Option<(LogIndex, LogIndex)>,
    last_term: Term,
    last_written: (LogIndex, Term),
    /// Appended, not yet reported written.
    pending: Seq,
    /// The WAL process this log last cast to, and when (Ra's `last_wal_write`): `tick` resends what is
    /// still pending once that WAL has restarted and 5 s have passed.
    last_wal_write: (u64, u64),
    /// When (seconds) and to which WAL process the last resend went (Ra's `last_resend_time`), and the
    /// index it was asked to start from: no other resend within the resend window unless the WAL
    /// restarted since or it starts lower.
    last_resend: Option<(u64, u64, LogIndex)>,
}

/// Where a log holds an index.
enum Located {
    Nowhere,
    MemTable(Term, Payload),
    /// In this segment file, whose reader is open.
    Segment(String),
}

/// Ra's `?WAL_RESEND_TIMEOUT`: a tick resends pending entries only this long after the last WAL write.
pub const WAL_RESEND_TIMEOUT_MS: u64 = 5_000;
/// Ra's `?DEFAULT_RESEND_WINDOW_SEC`: a resend is not repeated within this window (same WAL process).
pub const RESEND_WINDOW_SECONDS: u64 = 20;

impl ServerLog {
    /// Ra's `ra_log:init`. `last_wal_index` is the WAL's tracked last index for this uid (Ra's
    /// `last_writer_seq` call). A brand-new log appends its first entry (index 0, term 0) and the caller
    /// waits for its `Written`.
    #[allow(clippy::too_many_arguments)]
    pub fn init(
        uid: &Uid,
        process: ProcessId,
        data_dir: &str,
        last_wal_index: Option<LogIndex>,
        machine: &dyn LiveIndexes,
        bugs: &Bugs,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(ServerLog, LogInitReport), StorageError> {
        // Ra's `ra_log:init` checks the WAL first and exits with `wal_down` (its supervisor restarts it).
        if !shared.wal_registered {
            return Err(StorageError::WalDown);
        }
        let dir = join(data_dir, uid.as_str());
        fs.mkdir_all(&dir)?;
        let snap = snapshot::init_snapshots(fs, &dir, uid, machine, bugs, shared)?;
        let mut mt = shared.mem_tables.mem_table_please(uid);

        // Segment refs from disk, newest first; an unreadable or empty file has no ref.
        let mut names: Vec<(u64, String)> =
            fs.read_dir(&dir)?.into_iter().filter_map(|n| zpad_num(&n, "segment").map(|num| (num, n))).collect();
        names.sort();
        names.reverse();
        let mut listed = Vec::new();
        let mut readers = BTreeMap::new();
        for (_, name) in names {
            match SegmentReader::open_with(fs, &join(&dir, &name), index_parse(bugs)) {
                Ok(r) => {
                    if let Some(sr) = r.segref() {
                        listed.push(sr);
                        readers.insert(name, r);
                    }
                }
                // A segment whose header never reached the disk holds nothing durable: a power cut before
                // its first fsync, or — since the segment writer never appends to a segment an earlier
                // process wrote — a first fsync that failed. Skipped and deleted; Ra's `my_segrefs` →
                // `ra_log_segment:info/1` crashes on it at every restart (`segment-reused-after-failed-sync`,
                // under which such a segment may hold entries).
                Err(SegmentError::MissingHeader { .. }) if !bugs.has(Bug::SegmentReusedAfterFailedSync) => {
                    unlink_best_effort(fs, &join(&dir, &name))?;
                }
                Err(SegmentError::InvalidFormat { .. })
                    if !bugs.has(Bug::SegmentReusedAfterFailedSync)
                        && crate::storage::segment::header_never_synced(fs, &join(&dir, &name))? =>
                {
                    unlink_best_effort(fs, &join(&dir, &name))?;
                }
                Err(e) => return Err(StorageError::from(e)),
            }
        }
        let segrefs = SegRefs::from_newest_first(&listed);
        let compacted = segrefs.refs().to_vec();
        let doomed: Vec<String> = if bugs.has(Bug::SegrefTupleDelete) {
            // Ra 3.0.0: `SegRefs -- Compacted` compares whole `{Name, Range}` tuples.
            listed.iter().filter(|r| !compacted.contains(r)).map(|r| r.file.clone()).collect()
        } else {
            listed.iter().filter(|r| !compacted.iter().any(|c| c.file == r.file)).map(|r| r.file.clone()).collect()
        };
        for name in &doomed {
            // No directory fsync, as in Ra.
            unlink_best_effort(fs, &join(&dir, name))?;
            readers.remove(name);
        }

        let snap_idx = snap.current.as_ref().map(|m| m.index);
        let snap_term = snap.current.as_ref().map_or(Term(0), |m| m.term);
        let mt_range = mt.range();
        let seg_range = match (compacted.last(), compacted.first()) {
            (Some(oldest), Some(newest)) => Some((oldest.first, newest.last)),
            _ => None,
        };
        let range = combine(mt_range, seg_range);
        if let Some((first, last)) = range {
            let ok = match snap_idx {
                // Ra's snapshot index is -1 without a snapshot: the log must then start at 0.
                None => first.0 == 0,
                Some(s) => first.0 == s.0.saturating_add(1) || first <= s,
            };
            if !ok {
                return Err(StorageError::GapBetweenSnapshotAndLog {
                    uid: uid.clone(),
                    snapshot: snap_idx,
                    first,
                    last,
                });
            }
            for spec in mt.set_first(first) {
                DeleteJob::plan(&shared.mem_tables, &spec).run(&mut shared.mem_tables);
            }
        }
        // Segments overwritten by the mem table do not count as written beyond its first index.
        let trunc_seg_last = match (seg_range, mt_range) {
            (Some((sf, sl)), Some((mf, _))) => (sf < mf).then(|| LogIndex(sl.0.min(mf.0 - 1))),
            (Some((_, sl)), None) => Some(sl),
            _ => None,
        };
        let confirmed = [last_wal_index, trunc_seg_last].into_iter().flatten().max();
        let pending = match confirmed {
            Some(c) => mt.indexes().floor(LogIndex(c.0 + 1)),
            None => mt.indexes().clone(),
        };
        // Ra's `ra_range:truncate(SnapIdx, Range)`: the log proper starts above the snapshot.
        let range = match (range, snap_idx) {
            (Some((_, l)), Some(s)) if l <= s => None,
            (Some((f, l)), Some(s)) => Some((f.max(LogIndex(s.0 + 1)), l)),
            (r, _) => r,
        };
        let mut log = ServerLog {
            uid: uid.clone(),
            process,
            dir,
            bugs: bugs.clone(),
            mt,
            segrefs,
            readers,
            snapshot: snap.current.clone(),
            live_indexes: snap.live_indexes.clone(),
            range,
            last_term: snap_term,
            last_written: (LogIndex(0), Term(0)),
            pending,
            last_wal_write: (shared.wal_process, shared.clock_ms),
            last_resend: None,
        };
        if let Some((_, last)) = range {
            log.last_term = log.fetch_term(last, shared, fs)?.unwrap_or(snap_term);
        }
        let last_written_idx = [last_wal_index, snap_idx, trunc_seg_last].into_iter().flatten().max();
        if let Some(lw) = last_written_idx {
            let term = if Some(lw) == snap_idx { Some(snap_term) } else { log.fetch_term(lw, shared, fs)? };
            log.last_written = match term {
                Some(t) => (lw, t),
                // The WAL's writer index can name an entry no file holds: a restarted WAL read it back from
                // the page cache after a failed fdatasync and persisted it in `writers.snapshot`, and a
                // power cut then lost it. Ra's `ra_lib:unwrap(undefined)` crashes the init at every
                // restart (`written-beyond-log`); raft-core takes the last entry the log does hold.
                None if bugs.has(Bug::WrittenBeyondLog) => {
                    return Err(StorageError::MissingEntry { uid: uid.clone(), index: lw });
                }
                None => {
                    let held = [log.range.map(|(_, l)| l), snap_idx].into_iter().flatten().filter(|&i| i <= lw).max();
                    match held {
                        Some(i) if Some(i) == snap_idx => (i, snap_term),
                        Some(i) => (i, log.fetch_term(i, shared, fs)?.unwrap_or(snap_term)),
                        None => (LogIndex(0), Term(0)),
                    }
                }
            };
        }
        // Ra's `resend_pending(LastWalIdx, State)`: what the WAL never confirmed is cast again. (Ra does
        // it after `maybe_append_first_entry`, which blocks until index 0 is written; here that entry's
        // `Written` comes later, so the resend goes first.)
        log.resend_pending(last_wal_index, shared, out)?;
        let brand_new = log.range.is_none() && log.snapshot.is_none();
        if brand_new {
            log.append(LogIndex(0), Term(0), Payload::from(&[][..]), shared, fs, out)?;
        }
        let report = LogInitReport {
            listed,
            compacted,
            deleted_segments: doomed,
            indexes_rebuilt: snap.indexes_rebuilt,
            brand_new,
        };
        Ok((log, report))
    }

    /// The server's uid.
    pub fn uid(&self) -> &Uid {
        &self.uid
    }

    /// The server directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref()
    }

    /// The live indexes of the current snapshot.
    pub fn live_indexes(&self) -> &Seq {
        &self.live_indexes
    }

    /// The segment refs, newest first.
    pub fn segrefs(&self) -> &[SegRef] {
        self.segrefs.refs()
    }

    /// The first index held above the snapshot (`snapshot + 1` when the log is empty).
    pub fn first_index(&self) -> LogIndex {
        match (self.range, &self.snapshot) {
            (Some((f, _)), _) => f,
            (None, Some(s)) => LogIndex(s.index.0 + 1),
            (None, None) => LogIndex(0),
        }
    }

    /// The last index and its term (the snapshot's when the log proper is empty).
    pub fn last_index_term(&self) -> Option<(LogIndex, Term)> {
        match (self.range, &self.snapshot) {
            (Some((_, l)), _) => Some((l, self.last_term)),
            (None, Some(s)) => Some((s.index, s.term)),
            (None, None) => None,
        }
    }

    /// The last durable index and its term.
    pub fn last_written(&self) -> (LogIndex, Term) {
        self.last_written
    }

    /// Indexes appended but not yet reported written.
    pub fn pending(&self) -> &Seq {
        &self.pending
    }

    /// Appends (or, with `index <= last`, overwrites from) `index`: inserts into the mem table (a
    /// successor table on overwrite) and casts to the WAL. A gap is Ra's `integrity_error`.
    pub fn append(
        &mut self,
        index: LogIndex,
        term: Term,
        payload: Payload,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        // Ra's `ra_log:append`/`write` find the WAL unregistered before they change anything.
        if !shared.wal_registered {
            return Err(StorageError::WalDown);
        }
        let last = self.last_index_term().map(|(l, _)| l);
        if let Some(l) = last
            && index.0 > l.0.saturating_add(1)
        {
            return Err(StorageError::IntegrityError { uid: self.uid.clone(), index, last: l });
        }
        let overwrite = last.is_some_and(|l| index <= l);
        if overwrite {
            self.pending = self.pending.below(index);
            if self.last_written.0 >= index {
                // Ra's `write/2` (since 3.1.8): last written becomes the entry before the overwrite,
                // with *that* entry's term.
                let lw = LogIndex(index.0.saturating_sub(1)).min(self.last_written.0);
                let lw_term = match &self.snapshot {
                    Some(sn) if lw <= sn.index => sn.term,
                    _ => self.fetch_term(lw, shared, fs)?.unwrap_or(Term(0)),
                };
                self.last_written = (lw, lw_term);
            }
        }
        match self.mt.insert(&mut shared.mem_tables, index, term, payload.clone()) {
            Ok(()) => {}
            Err(InsertError::Overwriting | InsertError::LimitReached | InsertError::UnexpectedSparse) => {
                self.mt = shared.mem_tables.new_mem_table_please(&self.uid, self.mt.clone());
                self.mt.insert(&mut shared.mem_tables, index, term, payload.clone()).map_err(|e| match e {
                    InsertError::TableGone(tid) => StorageError::TableGone { tid },
                    other => panic!("a fresh successor table refused {index}: {other:?}"),
                })?;
            }
            Err(InsertError::TableGone(tid)) => return Err(StorageError::TableGone { tid }),
        }
        // Ra's `previous_wal_index`: the last index of the range (none when empty, as after a snapshot
        // install), so the WAL does not see a gap after an install; an overwrite chains to `index - 1`.
        let prev_index = match self.range {
            _ if overwrite => index.0.checked_sub(1).map(LogIndex),
            Some((_, l)) => Some(l),
            None => None,
        };
        self.pending = self.pending.below(index);
        self.pending.append(index);
        self.range = Some(match self.range {
            Some((f, _)) if f <= index => (f, index),
            _ => (index, index),
        });
        self.last_term = term;
        self.cast(index, term, payload, prev_index, shared, out);
        Ok(())
    }

    /// Casts an append of the current mem table's entry to the WAL.
    fn cast(
        &mut self,
        index: LogIndex,
        term: Term,
        payload: Payload,
        prev_index: Option<LogIndex>,
        shared: &NodeShared,
        out: &mut Vec<Envelope>,
    ) {
        self.last_wal_write = (shared.wal_process, shared.clock_ms);
        out.push(Envelope::Wal(WalMsg::Append(WalAppend {
            uid: self.uid.clone(),
            process: self.process,
            tid: self.mt.tid(),
            prev_index,
            index,
            term,
            payload,
        })));
    }

    /// Ra's `ra_log:set_last_index`: the log ends at `index` — a held entry or the snapshot's index —
    /// with a successor mem table (so that the next append at `index + 1` does not collide with entries
    /// left above it), the range, pending set and last written limited to it. `Ok(false)`: not found.
    pub fn set_last_index(
        &mut self,
        index: LogIndex,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<bool, StorageError> {
        let snapshot = self.snapshot.as_ref().map(|m| (m.index, m.term));
        let (term, last_written) = match snapshot {
            Some((si, st)) if si == index => (st, (si, st)),
            _ => {
                let Some(term) = self.fetch_term(index, shared, fs)? else { return Ok(false) };
                let lw = index.min(self.last_written.0);
                let lw_term = match snapshot {
                    Some((si, st)) if si == lw => st,
                    _ => self.fetch_term(lw, shared, fs)?.unwrap_or_else(|| panic!("last written {lw} has no term")),
                };
                (term, (lw, lw_term))
            }
        };
        self.mt = shared.mem_tables.new_mem_table_please(&self.uid, self.mt.clone());
        self.range = match self.range {
            Some((f, l)) if f <= index => Some((f, l.min(index))),
            _ => None,
        };
        self.last_term = term;
        self.pending = self.pending.limit(index);
        self.last_written = last_written;
        Ok(true)
    }

    /// Ra's `write_sparse`: writes an entry that does not follow the last one (a live entry an incoming
    /// snapshot's pre-phase sends) into the mem table and casts it to the WAL chained to the log's last
    /// index (Ra's `previous_wal_index`: what this writer last cast), then makes it the log's last index —
    /// the range spans a hole until the snapshot is installed (or the receive aborted: `set_last_index`).
    pub fn write_sparse(
        &mut self,
        index: LogIndex,
        term: Term,
        payload: Payload,
        shared: &mut NodeShared,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        if !shared.wal_registered {
            return Err(StorageError::WalDown);
        }
        let last = self.mt.indexes().last();
        match self.mt.insert_sparse(&mut shared.mem_tables, index, term, payload.clone(), last) {
            Ok(()) => {}
            Err(SparseInsertError::TableGone(tid)) => return Err(StorageError::TableGone { tid }),
            Err(_) => {
                self.mt = shared.mem_tables.new_mem_table_please(&self.uid, self.mt.clone());
                self.mt
                    .insert_sparse(&mut shared.mem_tables, index, term, payload.clone(), None)
                    .map_err(|_| StorageError::IntegrityError { uid: self.uid.clone(), index, last: index })?;
            }
        }
        let prev_index = self.range.map(|(_, l)| l);
        self.range = Some(match self.range {
            Some((f, _)) if f <= index => (f, index),
            _ => (index, index),
        });
        self.last_term = term;
        self.pending = self.pending.below(index);
        self.pending.append(index);
        self.cast(index, term, payload, prev_index, shared, out);
        Ok(())
    }

    /// The term at `index` (mem table, then segments, then the snapshot boundary).
    pub fn fetch_term(
        &mut self,
        index: LogIndex,
        shared: &NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<Option<Term>, StorageError> {
        if let Some(s) = &self.snapshot
            && s.index == index
        {
            return Ok(Some(s.term));
        }
        // Ra's `ra_log:fetch_term`: the mem table's term, else the segment index's (`term_query`),
        // without reading the entry's data.
        Ok(match self.locate(index, shared, fs)? {
            Located::Nowhere => None,
            Located::MemTable(term, _) => Some(term),
            Located::Segment(file) => self.readers.get(&file).expect("opened").term(index),
        })
    }

    /// The entry at `index`, from the mem table or a segment; `None` if the log does not hold it.
    pub fn fetch(
        &mut self,
        index: LogIndex,
        shared: &NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<Option<(Term, Payload)>, StorageError> {
        Ok(match self.locate(index, shared, fs)? {
            Located::Nowhere => None,
            Located::MemTable(term, payload) => Some((term, payload)),
            Located::Segment(file) => {
                let reader = self.readers.get(&file).expect("opened");
                reader.read(fs, index)?.map(|(t, d)| (t, Payload::from(d)))
            }
        })
    }

    /// Where the log holds `index`: its mem table entry, or the segment (whose reader is then open).
    fn locate(
        &mut self,
        index: LogIndex,
        shared: &NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<Located, StorageError> {
        // Ra's `sparse_read`/`fetch_term`: only indexes in the log range, or live below the snapshot.
        // Older mem tables may still hold entries an overwrite truncated.
        let in_range = self.range.is_some_and(|(f, l)| f <= index && index <= l);
        if !in_range && !self.live_indexes.contains(index) {
            return Ok(Located::Nowhere);
        }
        match self.mt.lookup(&shared.mem_tables, index) {
            Ok(Some((term, payload))) => return Ok(Located::MemTable(term, payload)),
            Ok(None) => {}
            Err(gone) => return Err(StorageError::TableGone { tid: gone.0 }),
        }
        match self.open_segment_holding(index, fs)? {
            Some(file) => Ok(Located::Segment(file)),
            None => Ok(Located::Nowhere),
        }
    }

    /// The segment holding `index` (the newest one), its reader open; `None` if no segment holds it.
    fn open_segment_holding(
        &mut self,
        index: LogIndex,
        fs: &mut dyn FileSystem,
    ) -> Result<Option<String>, StorageError> {
        let Some(sr) = self.segrefs.find(index) else { return Ok(None) };
        let file = sr.file.clone();
        let stale = self.readers.get(&file).is_none_or(|r| r.range().is_none_or(|(_, l)| l < index));
        if stale {
            let reader = SegmentReader::open_with(fs, &join(&self.dir, &file), index_parse(&self.bugs))?;
            self.readers.insert(file.clone(), reader);
        }
        Ok(Some(file))
    }

    /// Folds `from..=to` in order; a missing entry is an error (Ra: `missing_key`).
    pub fn fold<A>(
        &mut self,
        from: LogIndex,
        to: LogIndex,
        mut acc: A,
        shared: &NodeShared,
        fs: &mut dyn FileSystem,
        mut f: impl FnMut(A, LogIndex, Term, &[u8]) -> A,
    ) -> Result<A, StorageError> {
        let mut i = from;
        while i <= to {
            match self.fetch(i, shared, fs)? {
                Some((t, d)) => acc = f(acc, i, t, &d),
                None => return Err(StorageError::MissingEntry { uid: self.uid.clone(), index: i }),
            }
            i = LogIndex(i.0 + 1);
        }
        Ok(acc)
    }

    /// Handles a storage event for this server. Returns the segment files it unlinked (no dir fsync).
    pub fn handle_event(
        &mut self,
        event: &LogEvent,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<Vec<String>, StorageError> {
        match event {
            LogEvent::Written { term, seq, .. } => {
                self.handle_written(*term, seq, shared, fs, out)?;
                Ok(Vec::new())
            }
            LogEvent::ResendFrom { from, .. } => {
                self.resend_from(*from, shared, out)?;
                Ok(Vec::new())
            }
            LogEvent::Segments { ranges, segrefs, .. } => self.handle_segments(ranges, segrefs, shared, fs),
            LogEvent::SnapshotWritten { meta, live_indexes, .. } => {
                self.handle_snapshot_written(meta, live_indexes, shared, fs)
            }
            LogEvent::SnapshotError { meta, .. } => {
                // Ra's `ra_snapshot:handle_error`: the partial snapshot goes (`recursive_delete`, which
                // crashes the server if it fails); the snapshot state does not move.
                if self.snapshot.as_ref().is_none_or(|s| s.index < meta.index) {
                    let snapshots = join(&self.dir, snapshot::SNAPSHOTS_DIR);
                    let dir = join(&snapshots, &snapshot::snapshot_dir_name(meta.term, meta.index));
                    snapshot::recursive_delete(fs, &dir)?;
                }
                Ok(Vec::new())
            }
        }
    }

    fn handle_segments(
        &mut self,
        ranges: &[(TableId, Seq)],
        new_refs: &[SegRef],
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<Vec<String>, StorageError> {
        let gone = self.segrefs.update(new_refs);
        // Ra evicts every open segment named in the notification: it may have been appended to.
        for r in new_refs {
            self.readers.remove(&r.file);
        }
        for name in &gone {
            self.readers.remove(name);
            unlink_best_effort(fs, &join(&self.dir, name))?;
        }
        for (tid, seq) in ranges {
            if let Some(spec) = self.mt.record_flushed(*tid, seq) {
                DeleteJob::plan(&shared.mem_tables, &spec).run(&mut shared.mem_tables);
            }
        }
        // Ra: "the segment writer flush _could_ overtake WAL notifications" (a restarted WAL's recovery
        // flushes what its predecessor wrote but never confirmed): what the mem tables no longer hold is
        // no longer pending, and the last written index rises to the segments' last.
        self.pending = match self.mt.range() {
            Some((start, _)) if self.pending.first().is_some_and(|f| start > f) => self.pending.floor(start),
            Some(_) => self.pending.clone(),
            None => Seq::new(),
        };
        // (Ra takes the segments' last index whatever the log's range; one a later overwrite cut off
        // is not part of the log, so raft-core stops at the log's last index.) The term is the
        // segment's, as Ra's (`ra_log_segments:fetch_term`): what the disk holds at that index. An
        // older WAL file flushed after the log staged an overwrite of its indexes holds the old term
        // there while the overwrite is still pending; the mem table's term would claim the overwrite
        // written before it is.
        let log_last = self.range.map(|(_, l)| l);
        let segments_last = self.segrefs.refs().iter().map(|r| r.last).max();
        if let Some(last) = segments_last.filter(|&l| l > self.last_written.0 && Some(l) <= log_last) {
            let term = self.segment_term(last, fs)?.unwrap_or(self.last_written.1);
            self.last_written = (last, term);
        }
        Ok(gone)
    }

    /// The term the segments hold at `index` (the newest segment holding it), without the mem table.
    fn segment_term(&mut self, index: LogIndex, fs: &mut dyn FileSystem) -> Result<Option<Term>, StorageError> {
        Ok(match self.open_segment_holding(index, fs)? {
            Some(file) => self.readers.get(&file).expect("opened").term(index),
            None => None,
        })
    }

    fn handle_snapshot_written(
        &mut self,
        meta: &SnapshotMeta,
        live: &Seq,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<Vec<String>, StorageError> {
        if self.snapshot.as_ref().is_some_and(|s| s.index >= meta.index) {
            return Ok(Vec::new());
        }
        shared.snapshots.insert(&self.uid, meta.index, live.clone());
        let snapshots = join(&self.dir, snapshot::SNAPSHOTS_DIR);
        if let Some(old) = self.snapshot.replace(meta.clone()) {
            snapshot::recursive_delete(fs, &join(&snapshots, &snapshot::snapshot_dir_name(old.term, old.index)))?;
        }
        self.live_indexes = live.clone();
        let smallest = shared.snapshots.smallest(&self.uid);
        for spec in self.mt.set_first(smallest) {
            DeleteJob::plan(&shared.mem_tables, &spec).run(&mut shared.mem_tables);
        }
        self.pending = self.pending.floor(smallest);
        self.range = match self.range {
            Some((_, l)) if l > meta.index => Some((LogIndex(meta.index.0 + 1), l)),
            _ => None,
        };
        if self.range.is_none() {
            self.last_term = meta.term;
        }
        if self.last_written.0 < meta.index {
            self.last_written = (meta.index, meta.term);
        }
        self.minor_compaction(meta.index, fs)
    }

    /// Deletes segments wholly at or below the snapshot that hold no live index (no dir fsync).
    fn minor_compaction(
        &mut self,
        snapshot_index: LogIndex,
        fs: &mut dyn FileSystem,
    ) -> Result<Vec<String>, StorageError> {
        let live = self.live_indexes.clone();
        // Ra's `compactable_segrefs`: never the newest (active) segment, which the segment writer may
        // still append to.
        let doomed: Vec<SegRef> = self
            .segrefs
            .refs()
            .iter()
            .skip(1)
            .filter(|r| r.last <= snapshot_index && live.in_range(r.first, r.last).is_empty())
            .cloned()
            .collect();
        let keep: Vec<SegRef> = self.segrefs.refs().iter().filter(|r| !doomed.contains(r)).cloned().collect();
        self.segrefs = SegRefs::from_newest_first(&keep);
        let mut names = Vec::new();
        for r in doomed {
            self.readers.remove(&r.file);
            unlink_best_effort(fs, &join(&self.dir, &r.file))?;
            names.push(r.file);
        }
        Ok(names)
    }

    /// A follower installed a snapshot (storage: `SnapshotAccept::complete` already ran): the log
    /// restarts above it with a fresh mem table.
    pub fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        live: &Seq,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<Vec<String>, StorageError> {
        // Ra's `install_snapshot`: forget everything below the smallest live index (live entries the
        // snapshot's pre-phase wrote sparsely stay).
        let smallest = live.first().unwrap_or(LogIndex(meta.index.0.saturating_add(1)));
        for spec in self.mt.set_first(smallest) {
            DeleteJob::plan(&shared.mem_tables, &spec).run(&mut shared.mem_tables);
        }
        self.mt = shared.mem_tables.new_mem_table_please(&self.uid, self.mt.clone());
        self.snapshot = Some(meta.clone());
        self.live_indexes = live.clone();
        self.range = None;
        self.last_term = meta.term;
        self.last_written = (meta.index, meta.term);
        self.pending = self.pending.floor(smallest);
        self.minor_compaction(meta.index, fs)
    }

    /// The background worker's job for a local snapshot: returns the envelope that sends it.
    pub fn take_snapshot(&self, meta: SnapshotMeta, state: Vec<u8>, live_indexes: Seq) -> Envelope {
        Envelope::Worker(crate::storage::worker::WorkerMsg::WriteSnapshot {
            uid: self.uid.clone(),
            process: self.process,
            server_dir: self.dir.clone(),
            meta,
            state,
            live_indexes,
            bugs: self.bugs.clone(),
        })
    }

    /// Whether any bug switch is on for this log (for traces).
    pub fn bugs(&self) -> &Bugs {
        &self.bugs
    }
}

/// The index parse the log uses: raft-core's checked parse, or what a switch restores (`IndexParse::for_bugs`).
fn index_parse(bugs: &Bugs) -> IndexParse {
    IndexParse::for_bugs(bugs)
}

fn combine(a: Option<(LogIndex, LogIndex)>, b: Option<(LogIndex, LogIndex)>) -> Option<(LogIndex, LogIndex)> {
    match (a, b) {
        (Some((af, al)), Some((bf, bl))) => Some((af.min(bf), al.max(bl))),
        (x, None) | (None, x) => x,
    }
}

fn unlink_best_effort(fs: &mut dyn FileSystem, path: &str) -> Result<(), StorageError> {
    match fs.unlink(path) {
        Err(e) if crate::storage::is_power_cut(&e) => Err(e.into()),
        _ => Ok(()),
    }
}

// Kept below everything else so that adding it moved no line above (the mutation shards' outcomes name
// mutants by line).
impl ServerLog {
    /// The entry at `index` as Ra's `sparse_read` and `partial_read` read it (`ra_log_segment:read_sparse`):
    /// what the snapshot sender's pre-phase sends. The CRC is checked as `fetch` checks it, unless
    /// `sparse-read-crc-unchecked` restores Ra's read, which does not check it.
    pub fn sparse_read(
        &mut self,
        index: LogIndex,
        shared: &NodeShared,
        fs: &mut dyn FileSystem,
    ) -> Result<Option<(Term, Payload)>, StorageError> {
        if !self.bugs.has(Bug::SparseReadCrcUnchecked) {
            return self.fetch(index, shared, fs);
        }
        match self.locate(index, shared, fs)? {
            Located::Segment(file) => {
                let reader = self.readers.get(&file).expect("opened");
                Ok(reader.read_with(fs, index, false)?.map(|(t, d)| (t, Payload::from(d))))
            }
            Located::Nowhere | Located::MemTable(..) => self.fetch(index, shared, fs),
        }
    }
}
