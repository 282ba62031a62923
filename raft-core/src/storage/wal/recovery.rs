//! WAL recovery (Ra's `recover_wal`): at every start of a WAL process, each file in order is read,
//! replayed into the mem tables (`initial` mode, at a node's boot) or only into ranges and writers
//! (`post_boot` mode, a WAL restart whose mem tables survived), and handed to the segment writer; then
//! a roll-over to a fresh file. This module owns that sequence and its per-run state (`Recovery`); the
//! WAL's appends and roll-over live in the parent module.

use std::collections::{BTreeMap, VecDeque};

use super::{WRITERS_SNAPSHOT, Wal, WalPhase, WriterSeq, decode_writers_snapshot, update_ranges};
use crate::bugs::Bug;
use crate::seq::Seq;
use crate::storage::mem_table::{DeleteJob, MemTable, SparseInsertError};
use crate::storage::messages::{SegmentWriterMsg, WalMsg};
use crate::storage::shared::NodeShared;
use crate::storage::wal_format::{self, Parsed};
use crate::storage::{Envelope, NodeNotice, Ranges, StorageError, join, write_all, zpad_num};
use crate::types::{LogIndex, Payload, Term, Uid};
use vfs::{ErrorKind, FileSystem, OpenOptions};

#[derive(Debug, Clone)]
pub(super) struct Recovery {
    pub(super) post_boot: bool,
    files: VecDeque<String>,
    /// Carried across files (always the writers; the tables too unless `wal-recovery-rescan`).
    tables: BTreeMap<Uid, MemTable>,
    last_file_num: u64,
}

impl Wal {
    pub(super) fn start_recovery(
        &mut self,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        assert_eq!(self.phase, WalPhase::Starting, "Recover sent twice");
        self.phase = WalPhase::Recovering;
        fs.mkdir_all(&self.config.dir)?;
        let post_boot = !shared.mem_tables.is_empty();
        self.recovery = Some(Recovery { post_boot, files: VecDeque::new(), tables: BTreeMap::new(), last_file_num: 0 });
        if post_boot {
            // The segment writer may be flushing WAL data right now: wait for it before listing files.
            self.await_segment_writer(out);
            return Ok(());
        }
        self.list_files_and_begin(fs, out)
    }

    fn list_files_and_begin(&mut self, fs: &mut dyn FileSystem, out: &mut Vec<Envelope>) -> Result<(), StorageError> {
        let mut files: Vec<(u64, String)> = fs
            .read_dir(&self.config.dir)?
            .into_iter()
            .filter_map(|n| zpad_num(&n, "wal").map(|num| (num, n)))
            .collect();
        files.sort();
        self.writers = read_writers(fs, &join(&self.config.dir, WRITERS_SNAPSHOT))?;
        // A writer left out of sequence waits for the resend the dead WAL asked for, which may have been
        // lost in that WAL's mailbox; nothing asks again, and every later write of the server would be
        // dropped. Ra restores the state as persisted (`wal-restart-keeps-out-of-seq`); raft-core takes the
        // writer as in sequence at its last index, so the next write that does not chain to it asks anew.
        if !self.config.bugs.has(Bug::WalRestartKeepsOutOfSeq) {
            for seq in self.writers.values_mut() {
                *seq = WriterSeq::InSeq(seq.last());
            }
        }
        let rec = self.recovery.as_mut().expect("recovering");
        rec.last_file_num = files.last().map_or(0, |(n, _)| *n);
        rec.files = files.into_iter().map(|(_, n)| join(&self.config.dir, &n)).collect();
        out.push(Envelope::WalContinue(WalMsg::RecoverNextFile));
        Ok(())
    }

    pub(super) fn segment_writer_drained(
        &mut self,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        match self.phase {
            // Post-boot mode: the drain we waited for before listing the files.
            WalPhase::Recovering => self.list_files_and_begin(fs, out),
            WalPhase::AwaitingDrain => {
                self.phase = WalPhase::Running;
                self.recovery = None;
                out.push(Envelope::Notice(NodeNotice::WalRecovered));
                Ok(())
            }
            WalPhase::Starting | WalPhase::Running => Ok(()),
        }
    }

    pub(super) fn recover_next_file(
        &mut self,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        let rec = self.recovery.as_mut().expect("recovering");
        let Some(path) = rec.files.pop_front() else { return self.finish_recovery(shared, fs, out) };
        let post_boot = rec.post_boot;
        if self.config.bugs.has(Bug::WalRecoveryRescan) {
            // Ra 3.0.1: the fold carried only the writers; each file started from fresh lookups of the
            // shared tables (`mem_table_please`), which re-scan whatever is in them now.
            rec.tables.clear();
        }
        let mut tables = std::mem::take(&mut rec.tables);
        let data = fs.read_file(&path)?;
        if !self.config.bugs.has(Bug::WalRecoveryTrustsPageCache) {
            // What recovery reads comes from the page cache, which after a failed fdatasync (the crash
            // this WAL may be restarting from) still shows records that never reached the disk and never
            // will (fsyncgate: their pages are clean again). Recovery would flush them to segments —
            // durable there, so their writers take them as written — while the file keeps its shorter
            // durable content, which the next boot flushes again over the longer segment and loses them.
            // Rewriting and syncing what was read makes the file what recovery saw.
            let fd = fs.open(&path, &OpenOptions::read_write())?;
            let rewritten = write_all(fs, fd, &data).and_then(|()| fs.fdatasync(fd));
            let closed = fs.close(fd);
            rewritten?;
            closed?;
        }
        let ranges = self.recover_file(&path, &data, post_boot, &mut tables, shared)?;
        if !self.config.bugs.has(Bug::WritersUnpersistedAtHandover) {
            // Once the segment writer has the file it may flush and delete it, and with it what this
            // WAL knows of its writers; Ra persists `writers.snapshot` only at the roll-over after the
            // last file. If that fails (the WAL crashes, restarts, finds no file), a writer is unknown:
            // an append that skips one the crash lost is taken without a gap, and the skipped entry is
            // lost (`writers-unpersisted-at-handover`). So the writers go to disk first.
            self.persist_writers(fs)?;
        }
        let rec = self.recovery.as_mut().expect("recovering");
        rec.tables = tables;
        out.push(Envelope::SegmentWriter(SegmentWriterMsg::MemTables { ranges, wal_file: path }));
        out.push(Envelope::WalContinue(WalMsg::RecoverNextFile));
        Ok(())
    }

    fn finish_recovery(
        &mut self,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        let rec = self.recovery.as_ref().expect("recovering");
        let registered = &shared.directory;
        self.writers.retain(|uid, _| registered.is_registered(uid));
        self.file_num = rec.last_file_num;
        self.roll_over(shared, fs, out, None)
    }

    /// Recovers one file into mem tables; returns the ranges it held.
    fn recover_file(
        &mut self,
        path: &str,
        data: &[u8],
        post_boot: bool,
        tables: &mut BTreeMap<Uid, MemTable>,
        shared: &mut NodeShared,
    ) -> Result<Ranges, StorageError> {
        if data.len() < wal_format::HEADER_SIZE || data[..wal_format::HEADER_SIZE] != wal_format::file_header() {
            return Err(StorageError::UnknownWalFileFormat { file: path.to_owned() });
        }
        let mut ranges = Ranges::new();
        // Per-file writer refs; `None` marks a ref of an unregistered uid (skipped with all its records).
        let mut cache: BTreeMap<u32, Uid> = BTreeMap::new();
        let mut pos = wal_format::HEADER_SIZE;
        while let Parsed::Record(rec) = wal_format::parse_at(data, pos) {
            let uid = match rec.uid {
                Some(bytes) => {
                    let uid = Uid(String::from_utf8_lossy(bytes).into_owned());
                    if !shared.directory.is_registered(&uid) {
                        pos = rec.end;
                        continue;
                    }
                    cache.insert(rec.id_ref, uid.clone());
                    uid
                }
                None => match cache.get(&rec.id_ref) {
                    Some(uid) => uid.clone(),
                    None => {
                        pos = rec.end;
                        continue;
                    }
                },
            };
            let live = shared.snapshots.smallest(&uid);
            let smallest = if rec.trunc { rec.index.max(live) } else { live };
            // A WAL written without checksums has only zeros to offer; one written with them (always,
            // here) has a real checksum in every record, so a zero is a torn header's.
            let zero_unchecked = !self.config.compute_checksums || self.config.bugs.has(Bug::WalZeroChecksumUnchecked);
            if !rec.checksum_ok(zero_unchecked) {
                // A batch is acknowledged only after its fdatasync and the next is written after that, so
                // a power cut can damage only the last batch, whose unsynced sectors may hold zeros, parts
                // of the batch (drives persist the sectors of a write in any order), or garbage a drive
                // left in sectors in flight. Every record from the first that fails its checksum on
                // belongs to it, never acknowledged: recovery ends there. Ra ends there only if zeros
                // follow and otherwise refuses to boot (`wal_checksum_validation_failure`), at every
                // restart (`wal-garbage-tail-fatal`). The price: damage to synced records (a media fault,
                // outside the crash model) also ends recovery there, losing what follows on this node.
                let fatal =
                    self.config.bugs.has(Bug::WalGarbageTailFatal) && !wal_format::is_last_record(data, rec.end);
                if !fatal {
                    break;
                }
                return Err(StorageError::WalChecksumValidationFailure { file: path.to_owned(), offset: pos as u64 });
            }
            if rec.index < smallest {
                if rec.uid.is_some() {
                    self.writers.remove(&uid);
                }
                pos = rec.end;
                continue;
            }
            if rec.trunc {
                self.handle_trunc(&uid, rec.index, post_boot, tables, &mut ranges, shared);
            }
            // Ra decodes every payload with `binary_to_term`, which throws on the empty payload of a torn
            // record that passed unchecked; no record Ra writes has an empty payload.
            if rec.checksum == 0 && rec.payload.is_empty() && self.config.bugs.has(Bug::WalZeroChecksumUnchecked) {
                return Err(StorageError::WalRecordUndecodable { file: path.to_owned(), offset: pos as u64 });
            }
            let payload: Payload = Payload::from(rec.payload);
            loop {
                let retry = if post_boot {
                    self.recover_entry_post_boot(&uid, rec.index, rec.term, tables, &mut ranges, shared);
                    false
                } else {
                    self.recover_entry(&uid, rec.index, rec.term, &payload, tables, &mut ranges, shared)?
                };
                if !retry {
                    break;
                }
            }
            self.stats.recovered_records += 1;
            pos = rec.end;
        }
        Ok(ranges)
    }

    /// Ra's `recover_entry` in `initial` mode. Returns whether to retry (after opening a successor).
    #[allow(clippy::too_many_arguments)]
    fn recover_entry(
        &mut self,
        uid: &Uid,
        index: LogIndex,
        term: Term,
        payload: &Payload,
        tables: &mut BTreeMap<Uid, MemTable>,
        ranges: &mut Ranges,
        shared: &mut NodeShared,
    ) -> Result<bool, StorageError> {
        let mut mt = match tables.remove(uid) {
            Some(mt) => mt,
            None => shared.mem_tables.mem_table_please(uid),
        };
        let prev = match self.writers.get(uid) {
            Some(WriterSeq::InSeq(i)) => Some(*i),
            _ => None,
        };
        match mt.insert_sparse(&mut shared.mem_tables, index, term, payload.clone(), prev) {
            Ok(()) => {
                let mut seq = Seq::new();
                seq.append(index);
                update_ranges(ranges, uid, mt.tid(), &seq);
                self.writers.insert(uid.clone(), WriterSeq::InSeq(index));
                tables.insert(uid.clone(), mt);
                Ok(false)
            }
            Err(SparseInsertError::Overwriting | SparseInsertError::LimitReached) => {
                let next = shared.mem_tables.new_mem_table_please(uid, mt);
                tables.insert(uid.clone(), next);
                self.writers.remove(uid);
                Ok(true)
            }
            Err(SparseInsertError::GapDetected) => {
                Err(StorageError::GapDetected { uid: uid.clone(), index, prev, table_last: mt.indexes().last() })
            }
            Err(SparseInsertError::TableGone(tid)) => Err(StorageError::TableGone { tid }),
        }
    }

    /// Ra's `recover_entry` in `post_boot` mode: the tables survived, so only rebuild ranges and writers.
    fn recover_entry_post_boot(
        &mut self,
        uid: &Uid,
        index: LogIndex,
        term: Term,
        tables: &mut BTreeMap<Uid, MemTable>,
        ranges: &mut Ranges,
        shared: &mut NodeShared,
    ) {
        let mt = match tables.remove(uid) {
            Some(mt) => mt,
            None => shared.mem_tables.mem_table_please(uid),
        };
        let found = mt.tid_for(&shared.mem_tables, index, term);
        let overwritten = mt.term_at(&shared.mem_tables, index).is_some_and(|t| t != term);
        if overwritten && !self.config.bugs.has(Bug::WalRestartFlushesOverwritten) {
            // The newest table holding this index holds another term: the log overwrote the record,
            // and the overwrite was cast to the WAL process this one replaces, which lost it with its
            // mailbox. Ra's `tid_for` walks on to an older table still holding the record and flushes
            // it to segments, and the log takes the segments' last index as written; or, when no table
            // holds it (already flushed), Ra sets the writer's sequence to its index. Either way the
            // resend starts after it and the overwrite never reaches disk
            // (`wal-restart-flushes-overwritten`). So the record stays out of the ranges, and the
            // writer's sequence ends before it: the WAL asks for the overwrite again. (Records the
            // overwrite cut off may follow in the file and raise the sequence again; then the log's
            // check of what the WAL confirms — a written range above a pending index — resends it.)
            let before = LogIndex(index.0.saturating_sub(1));
            let last = match self.writers.get(uid) {
                Some(WriterSeq::InSeq(i)) => (*i).min(before),
                _ => before,
            };
            self.writers.insert(uid.clone(), WriterSeq::InSeq(last));
            tables.insert(uid.clone(), mt);
            return;
        }
        match found {
            None => {
                ranges.remove(uid);
            }
            Some(tid) => {
                let mut seq = Seq::new();
                seq.append(index);
                update_ranges(ranges, uid, tid, &seq);
            }
        }
        self.writers.insert(uid.clone(), WriterSeq::InSeq(index));
        tables.insert(uid.clone(), mt);
    }

    /// Ra's `handle_trunc`: the record was the first write after a snapshot.
    fn handle_trunc(
        &mut self,
        uid: &Uid,
        index: LogIndex,
        post_boot: bool,
        tables: &mut BTreeMap<Uid, MemTable>,
        ranges: &mut Ranges,
        shared: &mut NodeShared,
    ) {
        if !post_boot && let Some(mt) = tables.get_mut(uid) {
            let specs = mt.set_first(LogIndex(index.0.saturating_sub(1)));
            for spec in specs {
                DeleteJob::plan(&shared.mem_tables, &spec).run(&mut shared.mem_tables);
            }
            if let Some(seqs) = ranges.get_mut(uid) {
                for (_, seq) in seqs.iter_mut() {
                    *seq = seq.floor(index);
                }
            }
        }
        self.writers.remove(uid);
    }
}

/// Reads `writers.snapshot`; missing or unreadable gives an empty map (Ra's `recover_writers`).
fn read_writers(fs: &mut dyn FileSystem, path: &str) -> Result<BTreeMap<Uid, WriterSeq>, StorageError> {
    match fs.read_file(path) {
        Ok(bytes) => Ok(decode_writers_snapshot(&bytes).unwrap_or_default()),
        Err(e) if e.kind == ErrorKind::PoweredOff => Err(StorageError::Fs(e)),
        Err(_) => Ok(BTreeMap::new()),
    }
}
