//! Segment files (Ra's `ra_log_segment`, format version 2): one server's entries, appended across many
//! WAL flushes.
//!
//! Key invariant: an entry is readable only once *both* its data and its index record are on disk, and
//! nothing orders them before the `fsync` in [`Segment::sync`] — Ra writes data then index with no sync
//! in between, and index records carry no checksum. So Ra's recovery trusts the index up to its first
//! all-zero record, lets a later record for a lower index overwrite (a truncating rewrite), and only the
//! data CRC on read detects a torn entry; raft-core's parse ([`IndexParse::Checked`]) also ends at the
//! first record whose data does not continue the previous record's, and at a record with no data (but
//! for index 0) — the two shapes a record torn at a sector boundary takes. Layout (big-endian):
//!
//! ```text
//! header  "RASG" version:u16(=2) max_count:u16              8 bytes, fsynced on creation
//! index   max_count × (index:u64 term:u64 offset:u64 len:u32 crc:u32)      32 bytes each
//! data    payloads, at offsets >= 8 + 32·max_count
//! ```

use std::fmt;

use crate::checksum::crc32;
use crate::storage::segref::SegRef;
use crate::types::{LogIndex, Term};
use vfs::{Fd, FileSystem, FsError, OpenOptions};

/// The file magic.
pub const MAGIC: &[u8; 4] = b"RASG";
/// The format version written.
pub const VERSION: u16 = 2;
/// Header bytes.
pub const HEADER_SIZE: u64 = 8;
/// Bytes per index record.
pub const INDEX_RECORD_SIZE: u64 = 32;
/// Ra skips the last segment and opens a successor when its entries are all below the smallest live
/// index and it holds more than this much data.
pub const STALE_SEGMENT_BYTES: u64 = 1024;

/// Segment sizing (Ra's `max_count`, `max_size`, `max_pending`, `compute_checksums`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Index slots per file (Ra default 4096; 16 bits on disk).
    pub max_count: u16,
    /// The segment is full once its data *exceeds* this many bytes, as in Ra's `is_full` (default 64 MB).
    pub max_size_bytes: u64,
    /// Appends buffered before they are written out (Ra default 1024).
    pub max_pending: usize,
    /// Whether data CRCs are computed (0 is stored otherwise and never checked).
    pub compute_checksums: bool,
    /// How the index is trusted when an existing segment is reopened.
    pub index_parse: IndexParse,
}

/// Why a segment file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentError {
    /// The file is empty: its header never reached disk (Ra: `missing_segment_header`; the segment
    /// writer deletes it and retries).
    MissingHeader {
        /// The file.
        path: String,
    },
    /// Bad magic, a version newer than 2, or a short header (Ra: `invalid_segment_format`).
    InvalidFormat {
        /// The file.
        path: String,
    },
    /// An entry's data does not match its CRC (Ra: `ra_log_segment_crc_check_failure`).
    CrcMismatch {
        /// The file.
        path: String,
        /// The entry.
        index: LogIndex,
    },
    /// An index record points past the end of the file (Ra: `ra_log_segment_unexpected_eof`).
    UnexpectedEof {
        /// The file.
        path: String,
        /// The entry.
        index: LogIndex,
    },
    /// The filesystem failed.
    Fs(FsError),
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentError::MissingHeader { path } => write!(f, "missing_segment_header: {path}"),
            SegmentError::InvalidFormat { path } => write!(f, "invalid_segment_format: {path}"),
            SegmentError::CrcMismatch { path, index } => write!(f, "segment crc check failure: {path} index {index}"),
            SegmentError::UnexpectedEof { path, index } => write!(f, "segment unexpected eof: {path} index {index}"),
            SegmentError::Fs(e) => write!(f, "{e}"),
        }
    }
}

impl From<FsError> for SegmentError {
    fn from(e: FsError) -> SegmentError {
        SegmentError::Fs(e)
    }
}

/// One index record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexRecord {
    /// The entry's term.
    pub term: Term,
    /// Offset of its data in the file.
    pub offset: u64,
    /// Length of its data.
    pub len: u32,
    /// CRC-32 of its data (0 = unchecked).
    pub crc: u32,
}

/// A segment's index records by log index, ascending (a sorted vector: built in one pass at every open
/// of a segment, which a map's per-record inserts made the costliest step of a run).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexEntries(Vec<(u64, IndexRecord)>);

impl IndexEntries {
    /// The record of log index `index`.
    pub fn get(&self, index: &u64) -> Option<&IndexRecord> {
        self.0.binary_search_by_key(index, |(i, _)| *i).ok().map(|at| &self.0[at].1)
    }

    /// Whether it holds a record of log index `index`.
    pub fn contains_key(&self, index: &u64) -> bool {
        self.get(index).is_some()
    }

    /// The log indexes, ascending.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &u64> + '_ {
        self.0.iter().map(|(i, _)| i)
    }

    /// The records, by ascending log index.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &IndexRecord> + '_ {
        self.0.iter().map(|(_, r)| r)
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ra's map update for a record read after the others: a lower index than the last drops every
    /// higher one (an overwrite), and the record replaces any of its own index.
    fn put(&mut self, index: u64, record: IndexRecord) {
        // Sorted and unique, with the last record read as the largest: remove what lies above it.
        while self.0.last().is_some_and(|(i, _)| *i > index) {
            self.0.pop();
        }
        match self.0.last_mut() {
            Some((i, r)) if *i == index => *r = record,
            _ => self.0.push((index, record)),
        }
    }
}

impl std::ops::Index<&u64> for IndexEntries {
    type Output = IndexRecord;

    fn index(&self, index: &u64) -> &IndexRecord {
        self.get(index).unwrap_or_else(|| panic!("no index record for {index}"))
    }
}

/// What the index region says, parsed Ra's way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedIndex {
    /// Records up to the first all-zero (or partial) one; a later record for a lower index removed
    /// every higher one.
    pub entries: IndexEntries,
    /// Number of index slots consumed (the next append goes to slot `slots`).
    pub slots: u64,
    /// `(min, last written)` as Ra's `update_range` computes it.
    pub range: Option<(LogIndex, LogIndex)>,
    /// Where the next data goes: the last record's `offset + len`, or the data start.
    pub data_offset: u64,
}

fn read_exact_at(fs: &mut dyn FileSystem, fd: Fd, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = fs.pread(fd, offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// Whether the unreadable header of the segment at `path` never reached the disk: a header of zero
/// bytes only (a power cut may keep a new file's size without its data), or a file no longer than its
/// header. The header is synced as soon as a segment is created, before anything else is written to it
/// (Ra's `write_header`), so a header-only file with a bad header is a creation a power cut interrupted —
/// zeros, or garbage the drive left in the sector it was writing — and holds no entry.
pub fn header_never_synced(fs: &mut dyn FileSystem, path: &str) -> Result<bool, SegmentError> {
    if fs.metadata(path)?.len <= HEADER_SIZE {
        return Ok(true);
    }
    let fd = fs.open(path, &OpenOptions::read_only())?;
    let header = read_exact_at(fs, fd, 0, HEADER_SIZE as usize);
    fs.close(fd)?;
    let header = header?;
    Ok(!header.is_empty() && header.iter().all(|b| *b == 0))
}

/// Reads and validates the header; returns `max_count`.
fn read_header(fs: &mut dyn FileSystem, fd: Fd, path: &str) -> Result<u16, SegmentError> {
    let header = read_exact_at(fs, fd, 0, HEADER_SIZE as usize)?;
    if header.is_empty() {
        return Err(SegmentError::MissingHeader { path: path.to_owned() });
    }
    if header.len() < HEADER_SIZE as usize || &header[..4] != MAGIC {
        return Err(SegmentError::InvalidFormat { path: path.to_owned() });
    }
    let version = u16::from_be_bytes([header[4], header[5]]);
    let max_count = u16::from_be_bytes([header[6], header[7]]);
    if version != VERSION {
        // Version 1 (28-byte records) is Ra's legacy format; this model never writes it.
        return Err(SegmentError::InvalidFormat { path: path.to_owned() });
    }
    Ok(max_count)
}

/// How an index region is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexParse {
    /// Ra's parse: every record up to the first all-zero one.
    Ra,
    /// Also end at the first record whose data does not continue the previous record's (offset +
    /// length; the first at the data start). Data is only ever appended, so valid records are
    /// contiguous; a record torn by a power cut (its index reading 0, say) is not — and under Ra's parse
    /// it can stretch the segment's range down to 0, so that init deletes every older segment (found by
    /// the simulator; switch `segment-index-unchecked` restores Ra's parse).
    Contiguous,
    /// Also end at a record with no data — length and checksum both zero — for any index but 0 (whose
    /// entry is the only empty one raft-core writes; Ra writes none: its data is `term_to_binary`). A
    /// record straddles a sector boundary every sixteenth slot, its index, term and offset before the
    /// boundary and its length and checksum after: a power cut that keeps the first sector and not the
    /// second leaves a contiguous record of an empty entry, and Ra's read skips a zero checksum
    /// (`validate_checksum(0, _) -> true`) and serves it (found by swarm, seed 90054; switch
    /// `segment-empty-record-trusted` restores the contiguous parse alone).
    Checked,
}

impl IndexParse {
    /// The parse a node with `bugs` uses.
    pub fn for_bugs(bugs: &crate::bugs::Bugs) -> IndexParse {
        use crate::bugs::Bug;
        if bugs.has(Bug::SegmentIndexUnchecked) {
            IndexParse::Ra
        } else if bugs.has(Bug::SegmentEmptyRecordTrusted) {
            IndexParse::Contiguous
        } else {
            IndexParse::Checked
        }
    }
}

/// Parses an index region (Ra's `parse_index_data_loop`).
pub fn parse_index(region: &[u8], data_start: u64) -> ParsedIndex {
    parse_index_with(region, data_start, IndexParse::Ra)
}

/// Parses an index region under `rule`.
pub fn parse_index_with(region: &[u8], data_start: u64, rule: IndexParse) -> ParsedIndex {
    let mut entries = IndexEntries(Vec::with_capacity(region.len() / INDEX_RECORD_SIZE as usize));
    let mut range: Option<(LogIndex, LogIndex)> = None;
    let mut data_offset = data_start;
    let mut slots = 0u64;
    for rec in region.chunks_exact(INDEX_RECORD_SIZE as usize) {
        if rec.iter().all(|&b| b == 0) {
            break;
        }
        let word = |at: usize| u64::from_be_bytes(rec[at..at + 8].try_into().expect("8 bytes"));
        let idx = word(0);
        let record = IndexRecord {
            term: Term(word(8)),
            offset: word(16),
            len: u32::from_be_bytes(rec[24..28].try_into().expect("4 bytes")),
            crc: u32::from_be_bytes(rec[28..32].try_into().expect("4 bytes")),
        };
        if rule != IndexParse::Ra && record.offset != data_offset {
            break;
        }
        if rule == IndexParse::Checked && idx != 0 && record.len == 0 && record.crc == 0 {
            break;
        }
        entries.put(idx, record);
        slots += 1;
        data_offset = record.offset.saturating_add(u64::from(record.len));
        range = Some(match range {
            None => (LogIndex(idx), LogIndex(idx)),
            Some((first, _)) => (first.min(LogIndex(idx)), LogIndex(idx)),
        });
    }
    ParsedIndex { entries, slots, range, data_offset }
}

/// A segment open for appending (the segment writer's handle).
#[derive(Debug)]
pub struct Segment {
    path: String,
    fd: Fd,
    config: SegmentConfig,
    max_count: u16,
    data_start: u64,
    slots: u64,
    data_offset: u64,
    range: Option<(LogIndex, LogIndex)>,
    pending_index: Vec<u8>,
    pending_data: Vec<u8>,
    pending_count: usize,
    /// File offsets where the pending index and data buffers go.
    pending_index_at: u64,
    pending_data_at: u64,
}

impl Segment {
    /// Opens `path` for appending, or creates it (header written and fsynced) if it does not exist.
    pub fn open_append(fs: &mut dyn FileSystem, path: &str, config: SegmentConfig) -> Result<Segment, SegmentError> {
        let existed = fs.exists(path)?;
        let fd = fs.open(path, &OpenOptions::create())?;
        match Segment::init(fs, fd, path, config, existed) {
            Ok(s) => Ok(s),
            Err(e) => {
                let _ = fs.close(fd);
                Err(e)
            }
        }
    }

    fn init(
        fs: &mut dyn FileSystem,
        fd: Fd,
        path: &str,
        config: SegmentConfig,
        existed: bool,
    ) -> Result<Segment, SegmentError> {
        let (max_count, parsed) = if existed {
            let max_count = read_header(fs, fd, path)?;
            let data_start = HEADER_SIZE + u64::from(max_count) * INDEX_RECORD_SIZE;
            let region = read_exact_at(fs, fd, HEADER_SIZE, (u64::from(max_count) * INDEX_RECORD_SIZE) as usize)?;
            (max_count, parse_index_with(&region, data_start, config.index_parse))
        } else {
            let mut header = MAGIC.to_vec();
            header.extend_from_slice(&VERSION.to_be_bytes());
            header.extend_from_slice(&config.max_count.to_be_bytes());
            fs.pwrite(fd, 0, &header)?;
            fs.fsync(fd)?;
            let data_start = HEADER_SIZE + u64::from(config.max_count) * INDEX_RECORD_SIZE;
            let empty =
                ParsedIndex { entries: IndexEntries::default(), slots: 0, range: None, data_offset: data_start };
            (config.max_count, empty)
        };
        let data_start = HEADER_SIZE + u64::from(max_count) * INDEX_RECORD_SIZE;
        // Ra: the next data goes at the last record's offset + length, unchecked — a torn index record
        // can point it into the index region, and Ra then writes there.
        let data_offset = parsed.data_offset;
        Ok(Segment {
            path: path.to_owned(),
            fd,
            config,
            max_count,
            data_start,
            slots: parsed.slots,
            data_offset,
            range: parsed.range,
            pending_index: Vec::new(),
            pending_data: Vec::new(),
            pending_count: 0,
            pending_index_at: HEADER_SIZE + parsed.slots * INDEX_RECORD_SIZE,
            pending_data_at: data_offset,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `(first, last)` of what this segment holds, including unflushed appends.
    pub fn range(&self) -> Option<(LogIndex, LogIndex)> {
        self.range
    }

    /// Data bytes held (written or pending); 0 when a torn index put the offset below the data start.
    pub fn data_bytes(&self) -> u64 {
        self.data_offset.saturating_sub(self.data_start)
    }

    /// The segment's ref: its base name and range.
    pub fn segref(&self) -> Option<SegRef> {
        let (first, last) = self.range?;
        let name = self.path.rsplit('/').next().unwrap_or(&self.path).to_owned();
        Some(SegRef { file: name, first, last })
    }

    /// Whether no further entry fits.
    pub fn is_full(&self) -> bool {
        self.slots >= u64::from(self.max_count) || self.data_bytes() > self.config.max_size_bytes
    }

    /// Buffers one entry; `Ok(false)` when the segment is full (Ra: `{error, full}`).
    pub fn append(
        &mut self,
        fs: &mut dyn FileSystem,
        index: LogIndex,
        term: Term,
        data: &[u8],
    ) -> Result<bool, SegmentError> {
        if self.is_full() {
            return Ok(false);
        }
        let len = u32::try_from(data.len()).expect("entry longer than 4 GiB");
        let crc = if self.config.compute_checksums { crc32(data) } else { 0 };
        self.pending_index.extend_from_slice(&index.0.to_be_bytes());
        self.pending_index.extend_from_slice(&term.0.to_be_bytes());
        self.pending_index.extend_from_slice(&self.data_offset.to_be_bytes());
        self.pending_index.extend_from_slice(&len.to_be_bytes());
        self.pending_index.extend_from_slice(&crc.to_be_bytes());
        self.pending_data.extend_from_slice(data);
        self.pending_count += 1;
        self.slots += 1;
        self.data_offset = self.data_offset.saturating_add(u64::from(len));
        self.range = Some(match self.range {
            None => (index, index),
            Some((first, _)) => (first.min(index), index),
        });
        if self.pending_count >= self.config.max_pending {
            self.flush(fs)?;
        }
        Ok(true)
    }

    /// Writes buffered appends: data, then index, with no sync in between (Ra's `flush`).
    pub fn flush(&mut self, fs: &mut dyn FileSystem) -> Result<(), SegmentError> {
        if self.pending_count == 0 {
            return Ok(());
        }
        fs.pwrite(self.fd, self.pending_data_at, &self.pending_data)?;
        fs.pwrite(self.fd, self.pending_index_at, &self.pending_index)?;
        self.pending_data_at += self.pending_data.len() as u64;
        self.pending_index_at += self.pending_index.len() as u64;
        self.pending_data.clear();
        self.pending_index.clear();
        self.pending_count = 0;
        Ok(())
    }

    /// Flush plus fsync.
    pub fn sync(&mut self, fs: &mut dyn FileSystem) -> Result<(), SegmentError> {
        self.flush(fs)?;
        fs.fsync(self.fd)?;
        Ok(())
    }

    /// Sync and close (Ra: close in append mode syncs).
    pub fn close(mut self, fs: &mut dyn FileSystem) -> Result<(), SegmentError> {
        let synced = self.sync(fs);
        let closed = fs.close(self.fd);
        synced?;
        closed?;
        Ok(())
    }

    /// Closes without syncing (after a failure; the handle is useless anyway).
    pub fn abandon(self, fs: &mut dyn FileSystem) {
        let _ = fs.close(self.fd);
    }
}

/// A segment opened for reading: the parsed index plus the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReader {
    path: String,
    index: ParsedIndex,
}

impl SegmentReader {
    /// Opens and parses `path` with Ra's parse.
    pub fn open(fs: &mut dyn FileSystem, path: &str) -> Result<SegmentReader, SegmentError> {
        SegmentReader::open_with(fs, path, IndexParse::Ra)
    }

    /// Opens and parses `path` under `rule`.
    pub fn open_with(fs: &mut dyn FileSystem, path: &str, rule: IndexParse) -> Result<SegmentReader, SegmentError> {
        let fd = fs.open(path, &OpenOptions::read_only())?;
        let result = (|| -> Result<ParsedIndex, SegmentError> {
            let max_count = read_header(fs, fd, path)?;
            let data_start = HEADER_SIZE + u64::from(max_count) * INDEX_RECORD_SIZE;
            let region = read_exact_at(fs, fd, HEADER_SIZE, (u64::from(max_count) * INDEX_RECORD_SIZE) as usize)?;
            Ok(parse_index_with(&region, data_start, rule))
        })();
        let closed = fs.close(fd);
        let index = result?;
        closed?;
        Ok(SegmentReader { path: path.to_owned(), index })
    }

    /// The parsed index.
    pub fn index(&self) -> &ParsedIndex {
        &self.index
    }

    /// `(min, last)` per Ra's index parse.
    pub fn range(&self) -> Option<(LogIndex, LogIndex)> {
        self.index.range
    }

    /// The indexes present, ascending.
    pub fn indexes(&self) -> impl Iterator<Item = LogIndex> + '_ {
        self.index.entries.keys().map(|&i| LogIndex(i))
    }

    /// The segment's ref (base name and range).
    pub fn segref(&self) -> Option<SegRef> {
        let (first, last) = self.index.range?;
        let name = self.path.rsplit('/').next().unwrap_or(&self.path).to_owned();
        Some(SegRef { file: name, first, last })
    }

    /// Ra's `ra_log_segment:term_query`: the term of `index` from the index alone (no data read).
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        self.index.entries.get(&index.0).map(|rec| rec.term)
    }

    /// Reads entry `index`, checking its CRC: `Ok(None)` if the index holds no such entry.
    pub fn read(&self, fs: &mut dyn FileSystem, index: LogIndex) -> Result<Option<(Term, Vec<u8>)>, SegmentError> {
        let Some(rec) = self.index.entries.get(&index.0).copied() else { return Ok(None) };
        let fd = fs.open(&self.path, &OpenOptions::read_only())?;
        // Index records are unchecked: bound the read by the file size before allocating for it.
        let data = fs.fstat(fd).and_then(|meta| match rec.offset.checked_add(u64::from(rec.len)) {
            Some(end) if end <= meta.len => read_exact_at(fs, fd, rec.offset, rec.len as usize),
            _ => Ok(Vec::new()),
        });
        let closed = fs.close(fd);
        let data = data?;
        closed?;
        if data.len() < rec.len as usize {
            return Err(SegmentError::UnexpectedEof { path: self.path.clone(), index });
        }
        if rec.crc != 0 && crc32(&data) != rec.crc {
            return Err(SegmentError::CrcMismatch { path: self.path.clone(), index });
        }
        Ok(Some((rec.term, data)))
    }

    /// Reads entry `index`, checking its CRC when `check_crc` (Ra's `fold` does; its `read_sparse` does
    /// not: `sparse-read-crc-unchecked`). Unchecked, the entry is read as if its record carried no CRC
    /// (0, which `read` leaves unchecked), from a copy of the index: only the switch's path pays for it.
    pub fn read_with(
        &self,
        fs: &mut dyn FileSystem,
        index: LogIndex,
        check_crc: bool,
    ) -> Result<Option<(Term, Vec<u8>)>, SegmentError> {
        if check_crc {
            return self.read(fs, index);
        }
        let mut unchecked = self.clone();
        if let Some((_, rec)) = unchecked.index.entries.0.iter_mut().find(|(i, _)| *i == index.0) {
            rec.crc = 0;
        }
        unchecked.read(fs, index)
    }
}
