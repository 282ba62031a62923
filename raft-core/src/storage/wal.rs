//! The shared write-ahead log (Ra's `ra_log_wal`): one per node, used by every server on it.
//!
//! Key invariant: nothing is acknowledged before it is durable — a batch is one `write` plus one
//! `fdatasync`, and only then does each writer get `Written`. Everything else here exists to keep Ra's
//! exact order of durable steps, because the crash-recovery bugs live in that order:
//! - roll-over: finish the batch; persist the writers map (tmp + fsync + rename); close the old file;
//!   hand its ranges to the segment writer; create the next file (header into `N.tmp`, fsync, rename);
//!   fsync the WAL directory — the last step in a continuation, so the segment writer may run (and
//!   unlink a WAL file) before that directory fsync, as it can in Ra;
//! - recovery: one file per step, each handed to the segment writer as soon as it is recovered, which
//!   may flush and delete concurrently with the recovery of the next file.
//!
//! Recovery inserts into mem tables with sparse inserts that check the writer's previous index. With
//! every fix, recovery carries its own table handles across files; the `wal-recovery-rescan` switch
//! restores Ra 3.0.1, which re-derived them from the shared (possibly half-deleted) tables per file.
//! Recovery itself is in `wal/recovery.rs`.

use std::collections::{BTreeMap, VecDeque};

use crate::bugs::Bugs;
use crate::checksum::crc32;
use crate::seq::Seq;
use crate::storage::messages::{SegmentWriterMsg, WalAppend, WalMsg};
use crate::storage::shared::NodeShared;
use crate::storage::wal_format;
use crate::storage::{Envelope, LogEvent, Ranges, StorageError, join, sync_dir_best_effort, write_all, zpad_name};
use crate::types::{LogIndex, ProcessId, TableId, Term, Uid};
use vfs::{Fd, FileSystem, OpenOptions};

mod recovery;

use recovery::Recovery;

/// How the WAL makes a batch durable (Ra's `sync_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMethod {
    /// `fdatasync` (Ra's default).
    Datasync,
    /// `fsync`.
    Sync,
    /// No sync at all: `Written` is sent for data that is only in the page cache.
    None,
}

/// WAL settings. Every knob is written out by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// The WAL directory (Ra's `wal_data_dir`), relative to the node's filesystem root.
    pub dir: String,
    /// Roll over once a file exceeds this many bytes (checked before each append).
    pub max_size_bytes: u64,
    /// The limit for the first file after a (re)start; Ra picks it at random in
    /// `[max/2, max]` so that nodes do not roll over in lockstep. The caller supplies the draw.
    pub first_file_max_size_bytes: u64,
    /// Roll over after this many entries, if set.
    pub max_entries: Option<u64>,
    /// How batches are made durable.
    pub sync_method: SyncMethod,
    /// Whether record checksums are computed (0 is written otherwise).
    pub compute_checksums: bool,
    /// Switched-on pre-fix behaviours (only `wal-recovery-rescan` is read here).
    pub bugs: Bugs,
}

/// A writer's sequence state (Ra's `{in_seq | out_of_seq, LastIdx}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterSeq {
    /// Writes accepted; the last one had this index.
    InSeq(LogIndex),
    /// A gap was seen after this index; writes are dropped until the resend arrives.
    OutOfSeq(LogIndex),
}

impl WriterSeq {
    /// The tracked last index.
    pub fn last(self) -> LogIndex {
        match self {
            WriterSeq::InSeq(i) | WriterSeq::OutOfSeq(i) => i,
        }
    }
}

/// The WAL's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalPhase {
    /// Created, `Recover` not yet handled.
    Starting,
    /// Recovering files (post-boot mode first waits for the segment writer).
    Recovering,
    /// Recovery done; waiting for the segment writer to drain before accepting writes.
    AwaitingDrain,
    /// Accepting appends.
    Running,
}

#[derive(Debug, Clone)]
struct OpenFile {
    path: String,
    fd: Fd,
    size: u64,
    entry_count: u64,
    max_size: u64,
    /// Per-file writer references (Ra's `writer_name_cache`).
    name_cache: BTreeMap<Uid, u32>,
    /// Per server, what this file holds, newest table first.
    ranges: Ranges,
}

#[derive(Debug, Clone)]
struct BatchWriter {
    uid: Uid,
    tid: TableId,
    term: Term,
    seq: Seq,
    smallest_live: LogIndex,
}

#[derive(Debug, Default, Clone)]
struct Batch {
    bytes: Vec<u8>,
    writes: u64,
    /// Per process, its batch writers oldest first (a term or table change starts a new one).
    waiting: BTreeMap<ProcessId, Vec<BatchWriter>>,
    /// Each writer's sequence as it stood before its first write in this batch (`None`: untracked).
    before: BTreeMap<Uid, Option<WriterSeq>>,
}

/// Counters for tests, traces and the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalStats {
    /// Batches written.
    pub batches: u64,
    /// Entries written.
    pub writes: u64,
    /// Files created.
    pub files: u64,
    /// Messages that arrived during recovery and were handled after it (Ra's mailbox).
    pub deferred_while_recovering: u64,
    /// Records recovered into mem tables.
    pub recovered_records: u64,
}

/// The WAL actor.
#[derive(Debug, Clone)]
pub struct Wal {
    config: WalConfig,
    phase: WalPhase,
    writers: BTreeMap<Uid, WriterSeq>,
    file: Option<OpenFile>,
    file_num: u64,
    batch: Batch,
    batch_queued: bool,
    /// An append interrupted by a roll-over, resumed by `FinishRollOver`.
    resume: Option<(WalAppend, bool, LogIndex)>,
    recovery: Option<Recovery>,
    /// Messages received while recovering, handled in order once running.
    deferred: VecDeque<WalMsg>,
    /// Distinguishes this WAL process's `Await` replies from a predecessor's.
    incarnation: u64,
    awaiting: Option<u64>,
    stats: WalStats,
}

const WRITERS_SNAPSHOT: &str = "writers.snapshot";
const WRITERS_MAGIC: &[u8; 4] = b"RAWS";

impl Wal {
    /// A WAL process that has not started yet; send it [`WalMsg::Recover`]. `incarnation` must differ
    /// between successive WAL processes of a node (a late reply to a predecessor is then ignored).
    pub fn new(config: WalConfig, incarnation: u64) -> Wal {
        Wal {
            config,
            phase: WalPhase::Starting,
            writers: BTreeMap::new(),
            file: None,
            file_num: 0,
            batch: Batch::default(),
            batch_queued: false,
            resume: None,
            recovery: None,
            deferred: VecDeque::new(),
            incarnation,
            awaiting: None,
            stats: WalStats::default(),
        }
    }

    fn await_segment_writer(&mut self, out: &mut Vec<Envelope>) {
        let token = (self.incarnation << 8) | u64::from(self.phase == WalPhase::AwaitingDrain);
        self.awaiting = Some(token);
        out.push(Envelope::SegmentWriter(SegmentWriterMsg::Await { token }));
    }

    /// The lifecycle phase.
    pub fn phase(&self) -> &WalPhase {
        &self.phase
    }

    /// Counters.
    pub fn stats(&self) -> WalStats {
        self.stats
    }

    /// The handle of the file it writes, held between steps (every other handle it opens is closed
    /// before the call that opened it returns).
    pub fn open_handle(&self) -> Option<Fd> {
        self.file.as_ref().map(|f| f.fd)
    }

    /// Ra's `last_writer_seq`: the WAL's tracked last index for `uid` — as of the last batch made
    /// durable. Ra's WAL answers the call between batches, after the batch it came in with was written and
    /// synced; a reader here asks at any moment, so a batch still in flight (a slow fsync) must not count:
    /// a server restarted then took an unsynced entry as written, counted it towards a commit, and a power
    /// cut lost it (`written-survives`, found by `sim hunt`).
    pub fn last_writer_seq(&self, uid: &Uid) -> Option<WriterSeq> {
        match self.batch.before.get(uid) {
            Some(before) => *before,
            None => self.writers.get(uid).copied(),
        }
    }

    /// The current file's path.
    pub fn current_file(&self) -> Option<&str> {
        self.file.as_ref().map(|f| f.path.as_str())
    }

    /// Handles one message (one step); see the module docs of [`crate::storage`] for the protocol.
    pub fn handle(
        &mut self,
        msg: WalMsg,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        let start = out.len();
        self.handle_one(msg, shared, fs, out)?;
        // Messages deferred during recovery run before anything newer in the mailbox: one per step,
        // each as a continuation once no other continuation (a roll-over's) is pending.
        let continuing = out[start..].iter().any(|e| matches!(e, Envelope::WalContinue(_)));
        if self.phase == WalPhase::Running && !self.deferred.is_empty() && !continuing {
            out.push(Envelope::WalContinue(WalMsg::ResumeDeferred));
        }
        Ok(())
    }

    fn handle_one(
        &mut self,
        msg: WalMsg,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        match msg {
            WalMsg::ResumeDeferred => match self.deferred.pop_front() {
                Some(next) => self.handle_one(next, shared, fs, out),
                None => Ok(()),
            },
            WalMsg::Recover => self.start_recovery(shared, fs, out),
            WalMsg::RecoverNextFile => self.recover_next_file(shared, fs, out),
            WalMsg::SegmentWriterDrained { token } => {
                if self.awaiting != Some(token) {
                    return Ok(()); // a reply meant for another WAL process or another await
                }
                self.awaiting = None;
                self.segment_writer_drained(fs, out)
            }
            WalMsg::Append(_) | WalMsg::ForceRollOver | WalMsg::ForgetWriter(_) if self.phase != WalPhase::Running => {
                // Ra's WAL registers its name before recovering, so these wait in its mailbox.
                self.stats.deferred_while_recovering += 1;
                self.deferred.push_back(msg);
                Ok(())
            }
            WalMsg::Append(append) => {
                self.handle_append(append, shared, fs, out)?;
                if self.batch.writes > 0 && !self.batch_queued {
                    self.batch_queued = true;
                    out.push(Envelope::Wal(WalMsg::CompleteBatch));
                }
                Ok(())
            }
            WalMsg::CompleteBatch => {
                self.batch_queued = false;
                self.complete_batch(fs, out)
            }
            WalMsg::FinishRollOver => self.finish_roll_over(shared, fs, out),
            WalMsg::ForceRollOver => self.roll_over(shared, fs, out, None),
            WalMsg::ForgetWriter(uid) => {
                self.writers.remove(&uid);
                Ok(())
            }
        }
    }

    // ---- appends and batches -------------------------------------------------------------------

    fn handle_append(
        &mut self,
        a: WalAppend,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        let smallest = shared.snapshots.smallest(&a.uid);
        let trunc = a.index == smallest;
        if a.index < smallest {
            self.writers.insert(a.uid.clone(), WriterSeq::InSeq(LogIndex(smallest.0 - 1)));
            return Ok(());
        }
        match self.writers.get(&a.uid).copied() {
            Some(w) if a.prev_index <= Some(w.last()) || trunc => self.write_data(a, trunc, smallest, shared, fs, out),
            None => self.write_data(a, false, smallest, shared, fs, out),
            Some(WriterSeq::OutOfSeq(_)) => Ok(()),
            Some(WriterSeq::InSeq(last)) => {
                out.push(Envelope::Server {
                    process: a.process,
                    event: LogEvent::ResendFrom { uid: a.uid.clone(), from: LogIndex(last.0.saturating_add(1)) },
                });
                self.writers.insert(a.uid, WriterSeq::OutOfSeq(last));
                Ok(())
            }
        }
    }

    fn should_roll(&self) -> bool {
        let Some(f) = &self.file else { return false };
        f.size > f.max_size || self.config.max_entries.is_some_and(|max| f.entry_count + 1 > max)
    }

    fn write_data(
        &mut self,
        a: WalAppend,
        trunc: bool,
        smallest: LogIndex,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        if self.should_roll() {
            // The append resumes after the roll-over's directory fsync (a continuation).
            return self.roll_over(shared, fs, out, Some((a, trunc, smallest)));
        }
        let file = self.file.as_mut().expect("a running WAL has an open file");
        let (id_ref, first) = match file.name_cache.get(&a.uid) {
            Some(&r) => (r, false),
            None => {
                let r = u32::try_from(file.name_cache.len()).expect("writer refs fit u32");
                file.name_cache.insert(a.uid.clone(), r);
                (r, true)
            }
        };
        let checksum =
            if self.config.compute_checksums { wal_format::record_checksum(a.index, a.term, &a.payload) } else { 0 };
        let uid_bytes = first.then_some(a.uid.as_str().as_bytes());
        let n = wal_format::encode_record(
            &mut self.batch.bytes,
            trunc,
            id_ref,
            uid_bytes,
            checksum,
            a.index,
            a.term,
            &a.payload,
        );
        file.size += n as u64;
        file.entry_count += 1;
        self.batch.writes += 1;
        let writers = self.batch.waiting.entry(a.process).or_default();
        match writers.last_mut() {
            Some(w) if w.term == a.term && w.tid == a.tid => {
                if w.seq.last().is_some_and(|l| a.index <= l) {
                    w.seq = w.seq.below(a.index);
                }
                w.seq.append(a.index);
                w.smallest_live = smallest;
            }
            _ => {
                let mut seq = Seq::new();
                seq.append(a.index);
                writers.push(BatchWriter {
                    uid: a.uid.clone(),
                    tid: a.tid,
                    term: a.term,
                    seq,
                    smallest_live: smallest,
                });
                // A writer's first append in a batch always starts a batch writer: its sequence before
                // the batch is kept here, off the path of the appends that extend one.
                let before = self.writers.get(&a.uid).copied();
                self.batch.before.entry(a.uid.clone()).or_insert(before);
            }
        }
        self.writers.insert(a.uid, WriterSeq::InSeq(a.index));
        Ok(())
    }

    /// Write + sync the batch, **then** send `Written` to each writer and record the ranges.
    fn complete_batch(&mut self, fs: &mut dyn FileSystem, out: &mut Vec<Envelope>) -> Result<(), StorageError> {
        if self.batch.writes == 0 {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let file = self.file.as_mut().expect("a batch implies an open file");
        write_all(fs, file.fd, &batch.bytes)?;
        match self.config.sync_method {
            SyncMethod::Datasync => fs.fdatasync(file.fd)?,
            SyncMethod::Sync => fs.fsync(file.fd)?,
            SyncMethod::None => {}
        }
        self.stats.batches += 1;
        self.stats.writes += batch.writes;
        for (process, writers) in batch.waiting {
            for w in writers {
                let seq = w.seq.floor(w.smallest_live);
                update_ranges(&mut file.ranges, &w.uid, w.tid, &seq);
                out.push(Envelope::Server { process, event: LogEvent::Written { uid: w.uid, term: w.term, seq } });
            }
        }
        Ok(())
    }

    // ---- roll-over -----------------------------------------------------------------------------

    /// Steps 1–4 of Ra's roll-over; step 5 (WAL directory fsync) is the `FinishRollOver` continuation.
    fn roll_over(
        &mut self,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
        resume: Option<(WalAppend, bool, LogIndex)>,
    ) -> Result<(), StorageError> {
        self.complete_batch(fs, out)?;
        self.persist_writers(fs)?;
        let max_size = match self.file.take() {
            None => self.config.first_file_max_size_bytes,
            Some(old) => {
                fs.close(old.fd)?;
                let ranges: Ranges = old
                    .ranges
                    .into_iter()
                    .map(|(uid, seqs)| {
                        let smallest = shared.snapshots.smallest(&uid);
                        let floored = seqs.into_iter().map(|(t, s)| (t, s.floor(smallest))).collect();
                        (uid, floored)
                    })
                    .collect();
                out.push(Envelope::SegmentWriter(SegmentWriterMsg::MemTables { ranges, wal_file: old.path }));
                self.config.max_size_bytes
            }
        };
        self.file_num += 1;
        let name = zpad_name(self.file_num, "wal");
        let path = join(&self.config.dir, &name);
        let tmp = join(&self.config.dir, &zpad_name(self.file_num, "tmp"));
        let fd = fs.open(&tmp, &OpenOptions::create_truncate())?;
        write_all(fs, fd, &wal_format::file_header())?;
        fs.fsync(fd)?;
        fs.close(fd)?;
        fs.rename(&tmp, &path)?;
        let fd = fs.open(&path, &OpenOptions::read_write())?;
        fs.seek(fd, wal_format::HEADER_SIZE as u64)?;
        self.stats.files += 1;
        self.file = Some(OpenFile {
            path,
            fd,
            size: 0,
            entry_count: 0,
            max_size,
            name_cache: BTreeMap::new(),
            ranges: Ranges::new(),
        });
        self.resume = resume;
        out.push(Envelope::WalContinue(WalMsg::FinishRollOver));
        Ok(())
    }

    fn finish_roll_over(
        &mut self,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        sync_dir_best_effort(fs, &self.config.dir)?;
        if self.phase == WalPhase::Recovering {
            // The final roll-over of recovery: wait until the segment writer has drained.
            self.phase = WalPhase::AwaitingDrain;
            self.await_segment_writer(out);
            return Ok(());
        }
        if let Some((a, trunc, smallest)) = self.resume.take() {
            self.write_data(a, trunc, smallest, shared, fs, out)?;
            if self.batch.writes > 0 && !self.batch_queued {
                self.batch_queued = true;
                out.push(Envelope::Wal(WalMsg::CompleteBatch));
            }
        }
        Ok(())
    }

    /// `writers.snapshot`: written to a tmp file with fsync, then renamed over the old one.
    fn persist_writers(&mut self, fs: &mut dyn FileSystem) -> Result<(), StorageError> {
        let bytes = encode_writers_snapshot(&self.writers);
        let path = join(&self.config.dir, WRITERS_SNAPSHOT);
        let tmp = format!("{path}.tmp");
        let fd = fs.open(&tmp, &OpenOptions::create_truncate())?;
        write_all(fs, fd, &bytes)?;
        fs.fsync(fd)?;
        fs.close(fd)?;
        fs.rename(&tmp, &path)?;
        Ok(())
    }
}

/// Ra's `update_ranges`: extend the newest range if it is the same table, else start a new one.
/// Extending is Ra's `ra_seq:add`: the old range is first cut below the first added index (a resend may
/// go back before the end of the prior range), then the added indexes are appended.
fn update_ranges(ranges: &mut Ranges, uid: &Uid, tid: TableId, add: &Seq) {
    let seqs = ranges.entry(uid.clone()).or_default();
    match seqs.first_mut() {
        Some((t, seq)) if *t == tid => {
            if let Some(first) = add.first() {
                *seq = seq.below(first).union(add);
            }
        }
        _ => seqs.insert(0, (tid, add.clone())),
    }
}

/// `writers.snapshot`: magic, count, then per writer `uid_len:u16 uid state:u8 last:u64`, then a CRC-32
/// of everything before it (Ra stores `term_to_binary`, which fails to decode when torn; the CRC gives
/// the same "unreadable → empty" outcome).
pub fn encode_writers_snapshot(writers: &BTreeMap<Uid, WriterSeq>) -> Vec<u8> {
    let mut b = WRITERS_MAGIC.to_vec();
    b.extend_from_slice(&(writers.len() as u32).to_be_bytes());
    for (uid, seq) in writers {
        let bytes = uid.as_str().as_bytes();
        b.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        b.extend_from_slice(bytes);
        b.push(match seq {
            WriterSeq::InSeq(_) => 0,
            WriterSeq::OutOfSeq(_) => 1,
        });
        b.extend_from_slice(&seq.last().0.to_be_bytes());
    }
    let crc = crc32(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

/// Decodes `writers.snapshot`; `None` when it is torn or not one.
pub fn decode_writers_snapshot(b: &[u8]) -> Option<BTreeMap<Uid, WriterSeq>> {
    if b.len() < 12 || &b[..4] != WRITERS_MAGIC {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32(body) != u32::from_be_bytes(crc.try_into().ok()?) {
        return None;
    }
    let count = u32::from_be_bytes(body[4..8].try_into().ok()?);
    let mut at = 8;
    let mut out = BTreeMap::new();
    for _ in 0..count {
        let len = usize::from(u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?));
        at += 2;
        let uid = Uid(String::from_utf8(body.get(at..at + len)?.to_vec()).ok()?);
        at += len;
        let state = *body.get(at)?;
        let last = LogIndex(u64::from_be_bytes(body.get(at + 1..at + 9)?.try_into().ok()?));
        at += 9;
        out.insert(uid, if state == 0 { WriterSeq::InSeq(last) } else { WriterSeq::OutOfSeq(last) });
    }
    (at == body.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_snapshot_round_trips_and_rejects_torn_files() {
        let mut w = BTreeMap::new();
        w.insert(Uid::new("a"), WriterSeq::InSeq(LogIndex(10)));
        w.insert(Uid::new("bb"), WriterSeq::OutOfSeq(LogIndex(3)));
        let bytes = encode_writers_snapshot(&w);
        assert_eq!(decode_writers_snapshot(&bytes), Some(w));
        for cut in 0..bytes.len() {
            assert_eq!(decode_writers_snapshot(&bytes[..cut]), None, "prefix of {cut} bytes");
        }
    }
}
