//! Snapshot files (Ra's `ra_snapshot` + `ra_log_snapshot`): `snapshots/<term>_<index>/snapshot.dat` and
//! its `indexes` file, the local write path, the follower accept path and init.
//!
//! Key invariant: `snapshot.dat` is fsynced (and its directory entries synced) before anyone relies on
//! it; the `indexes` file is **never** fsynced — Ra treats it as recoverable — so after a power cut it
//! may be missing, empty or torn while its directory entry is durable. Unreadable is rebuilt from the
//! snapshot's machine state (PR 589 fix 1; the `indexes-badmatch` switch restores the crash); Ra reads
//! missing as "no live indexes", which the simulator showed loses live entries, so raft-core rebuilds a
//! missing file too (`indexes-missing-trusted` restores Ra's read).
//!
//! A snapshot directory being written or received holds an `accepting` marker (Ra's name; Ra 3.1.10
//! deletes it in `complete_accept` but never creates it) from its mkdir until `snapshot.dat` is fsynced;
//! the marker is then removed and the directories fsynced, and if any of that fails the directory is
//! deleted. Init never trusts a directory that holds the marker, and fsyncs the directories of the one it
//! trusts again (which fails on a filesystem a failed directory fsync shut down). A write that fails half-way (an EIO; the
//! server restarts) would otherwise leave a `snapshot.dat` that validates from the page cache but, after
//! a failed fsync ("fsyncgate"), may never reach the disk — and the restarted server would drop its log
//! below it (`unfinished-snapshot-trusted` restores Ra's trust).
//!
//! ```text
//! snapshot.dat = "RASN" version:u8(=1) crc:u32 meta_len:u32 meta state      crc = CRC-32 of what follows it
//! meta         = index:u64 term:u64 machine_version:u32 members:u16 (len:u16 name)*
//! indexes      = "RASI" version:u8(=1) crc:u32 data      data = ranges:u32 (lo:u64 hi:u64)*, crc over data
//! ```

use std::fmt;

use crate::bugs::{Bug, Bugs};
use crate::checksum::crc32;
use crate::seq::Seq;
use crate::storage::shared::NodeShared;
use crate::storage::{StorageError, join, sync_dir, sync_dir_best_effort, write_all};
use crate::types::{LogIndex, Term, Uid};
use vfs::{ErrorKind, Fd, FileSystem, FsError, OpenOptions};

/// The snapshot file magic.
pub const SNAPSHOT_MAGIC: &[u8; 4] = b"RASN";
/// The indexes file magic.
pub const INDEXES_MAGIC: &[u8; 4] = b"RASI";
/// The only version of both formats.
pub const VERSION: u8 = 1;
/// The snapshot data file name.
pub const SNAPSHOT_FILE: &str = "snapshot.dat";
/// The live-indexes file name.
pub const INDEXES_FILE: &str = "indexes";
/// The per-server snapshots directory name.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// The marker of a snapshot directory whose write or receive has not finished.
pub const UNFINISHED_MARKER: &str = "accepting";

/// What a snapshot is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers.
    pub index: LogIndex,
    /// That entry's term.
    pub term: Term,
    /// The machine version that wrote the state.
    pub machine_version: u32,
    /// The cluster members at `index`.
    pub cluster: Vec<String>,
}

/// The machine's side of snapshots: its live indexes are a function of its state alone, so they can be
/// recomputed from a snapshot (Ra's `ra_machine:live_indexes/2`).
pub trait LiveIndexes {
    /// The live indexes of a snapshot's machine state, or why the state could not be decoded.
    fn live_indexes(&self, machine_version: u32, state: &[u8]) -> Result<Seq, String>;
}

/// Why a snapshot file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotFileError {
    /// Not a snapshot file: short, bad magic or version.
    InvalidFormat,
    /// The CRC does not match (a torn or partial snapshot).
    ChecksumError,
    /// The meta section does not decode.
    InvalidMeta,
    /// A chunk numbered past the one the accept takes next (Ra's `ra_snapshot:accept_chunk/3` and
    /// `complete_accept/4` match only the next number or, for `accept_chunk`, a resend below it: anything
    /// else is a `function_clause` crash of the receiving server).
    ChunkOutOfOrder {
        /// The chunk number the accept takes next.
        expected: u32,
        /// The chunk number that arrived.
        got: u32,
    },
}

/// Why an `indexes` file could not be read (Ra's `ra_snapshot:indexes/1` errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexesError {
    /// The CRC does not match.
    ChecksumError,
    /// A `RASI` file of another version.
    InvalidVersion(u8),
    /// Anything else: empty, short, garbage.
    InvalidFormat,
}

impl fmt::Display for SnapshotFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnapshotFileError::InvalidFormat => "invalid snapshot format",
            SnapshotFileError::ChecksumError => "snapshot checksum error",
            SnapshotFileError::InvalidMeta => "invalid snapshot meta",
            SnapshotFileError::ChunkOutOfOrder { expected, got } => {
                return write!(f, "function_clause: snapshot chunk {got} where chunk {expected} was next");
            }
        })
    }
}

impl fmt::Display for IndexesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexesError::ChecksumError => f.write_str("checksum_error"),
            IndexesError::InvalidVersion(v) => write!(f, "invalid_version {v}"),
            IndexesError::InvalidFormat => f.write_str("invalid_format"),
        }
    }
}

/// `<term>_<index>`, each 16 upper-case hex digits (Ra's `zpad_hex`): names sort by term, then index.
pub fn snapshot_dir_name(term: Term, index: LogIndex) -> String {
    format!("{:016X}_{:016X}", term.0, index.0)
}

fn encode_meta(meta: &SnapshotMeta) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&meta.index.0.to_be_bytes());
    b.extend_from_slice(&meta.term.0.to_be_bytes());
    b.extend_from_slice(&meta.machine_version.to_be_bytes());
    b.extend_from_slice(&(meta.cluster.len() as u16).to_be_bytes());
    for m in &meta.cluster {
        b.extend_from_slice(&(m.len() as u16).to_be_bytes());
        b.extend_from_slice(m.as_bytes());
    }
    b
}

fn decode_meta(b: &[u8]) -> Option<SnapshotMeta> {
    let u64_at = |at: usize| b.get(at..at + 8).map(|s| u64::from_be_bytes(s.try_into().expect("8")));
    let u16_at = |at: usize| b.get(at..at + 2).map(|s| usize::from(u16::from_be_bytes(s.try_into().expect("2"))));
    let index = LogIndex(u64_at(0)?);
    let term = Term(u64_at(8)?);
    let machine_version = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
    let members = u16_at(20)?;
    let mut at = 22;
    let mut cluster = Vec::with_capacity(members.min(64));
    for _ in 0..members {
        let len = u16_at(at)?;
        at += 2;
        cluster.push(String::from_utf8(b.get(at..at + len)?.to_vec()).ok()?);
        at += len;
    }
    (at == b.len()).then_some(SnapshotMeta { index, term, machine_version, cluster })
}

/// The bytes of the part after the CRC field: `meta_len meta`, to which the state is appended.
fn meta_section(meta: &SnapshotMeta) -> Vec<u8> {
    let meta = encode_meta(meta);
    let mut b = (meta.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(&meta);
    b
}

/// A whole `snapshot.dat`.
pub fn encode_snapshot(meta: &SnapshotMeta, state: &[u8]) -> Vec<u8> {
    let mut body = meta_section(meta);
    body.extend_from_slice(state);
    let mut b = SNAPSHOT_MAGIC.to_vec();
    b.push(VERSION);
    b.extend_from_slice(&crc32(&body).to_be_bytes());
    b.extend_from_slice(&body);
    b
}

/// Validates and decodes a `snapshot.dat` (Ra's `recover/1`, which `validate/1` is).
pub fn decode_snapshot(b: &[u8]) -> Result<(SnapshotMeta, Vec<u8>), SnapshotFileError> {
    if b.len() < 13 || &b[..4] != SNAPSHOT_MAGIC || b[4] != VERSION {
        return Err(SnapshotFileError::InvalidFormat);
    }
    let crc = u32::from_be_bytes(b[5..9].try_into().expect("4"));
    let body = &b[9..];
    if crc32(body) != crc {
        return Err(SnapshotFileError::ChecksumError);
    }
    let meta_len = u32::from_be_bytes(body[..4].try_into().expect("4")) as usize;
    let meta_bytes = body.get(4..4usize.saturating_add(meta_len)).ok_or(SnapshotFileError::InvalidMeta)?;
    let meta = decode_meta(meta_bytes).ok_or(SnapshotFileError::InvalidMeta)?;
    Ok((meta, body[4 + meta_len..].to_vec()))
}

/// A whole `indexes` file.
pub fn encode_indexes(live: &Seq) -> Vec<u8> {
    let ranges: Vec<(LogIndex, LogIndex)> = live.ranges().collect();
    let mut data = (ranges.len() as u32).to_be_bytes().to_vec();
    for (lo, hi) in ranges {
        data.extend_from_slice(&lo.0.to_be_bytes());
        data.extend_from_slice(&hi.0.to_be_bytes());
    }
    let mut b = INDEXES_MAGIC.to_vec();
    b.push(VERSION);
    b.extend_from_slice(&crc32(&data).to_be_bytes());
    b.extend_from_slice(&data);
    b
}

/// Decodes an `indexes` file's bytes.
pub fn decode_indexes(b: &[u8]) -> Result<Seq, IndexesError> {
    if b.len() < 9 || &b[..4] != INDEXES_MAGIC {
        return Err(IndexesError::InvalidFormat);
    }
    if b[4] != VERSION {
        return Err(IndexesError::InvalidVersion(b[4]));
    }
    let crc = u32::from_be_bytes(b[5..9].try_into().expect("4"));
    let data = &b[9..];
    if crc32(data) != crc {
        return Err(IndexesError::ChecksumError);
    }
    let count = data.get(..4).map(|s| u32::from_be_bytes(s.try_into().expect("4")) as usize);
    let count = count.ok_or(IndexesError::InvalidFormat)?;
    if data.len() != 4 + count.saturating_mul(16) {
        return Err(IndexesError::InvalidFormat);
    }
    let mut seq = Seq::new();
    let mut prev_hi: Option<u64> = None;
    for r in data[4..].chunks_exact(16) {
        let lo = u64::from_be_bytes(r[..8].try_into().expect("8"));
        let hi = u64::from_be_bytes(r[8..].try_into().expect("8"));
        if lo > hi || prev_hi.is_some_and(|p| lo <= p) {
            return Err(IndexesError::InvalidFormat);
        }
        seq = seq.union(&Seq::from_range(LogIndex(lo), LogIndex(hi)));
        prev_hi = Some(hi);
    }
    Ok(seq)
}

/// Reads a snapshot directory's `indexes`: missing is `Ok(empty)` (Ra: `{ok, []}`).
pub fn read_indexes(fs: &mut dyn FileSystem, snapshot_dir: &str) -> Result<Result<Seq, IndexesError>, FsError> {
    match fs.read_file(&join(snapshot_dir, INDEXES_FILE)) {
        Ok(bytes) => Ok(decode_indexes(&bytes)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Ok(Seq::new())),
        Err(e) => Err(e),
    }
}

/// Writes `indexes` with no fsync (Ra's `write_indexes`: `ra_lib:write_file(…, false)`).
pub fn write_indexes(fs: &mut dyn FileSystem, snapshot_dir: &str, live: &Seq) -> Result<(), FsError> {
    write_file(fs, &join(snapshot_dir, INDEXES_FILE), &encode_indexes(live), false)
}

/// Ra's `ra_lib:write_file`: open (truncating), write, optionally fsync, close.
pub(crate) fn write_file(fs: &mut dyn FileSystem, path: &str, data: &[u8], sync: bool) -> Result<(), FsError> {
    let fd = fs.open(path, &OpenOptions::create_truncate())?;
    let result = write_all(fs, fd, data).and_then(|()| if sync { fs.fsync(fd) } else { Ok(()) });
    let closed = fs.close(fd);
    result?;
    closed
}

/// Ra's `ra_lib:sync_file`: open, fsync, close.
pub(crate) fn sync_file(fs: &mut dyn FileSystem, path: &str) -> Result<(), FsError> {
    let fd = fs.open(path, &OpenOptions::read_write())?;
    let synced = fs.fsync(fd);
    let closed = fs.close(fd);
    synced?;
    closed
}

/// Ra's `ra_lib:recursive_delete`: unlinks a tree, no fsync. A missing path is fine. A directory's
/// [`UNFINISHED_MARKER`] goes last: a delete cut short (an unlink's EIO, which restarts the server) must
/// leave a partial snapshot still marked, or the next init trusts what a failed write left — here the
/// marker went first (it sorts first), a failed write's `snapshot.dat` survived unmarked, init took it,
/// the segments below it went, and a power cut then lost its unsynced data: the log began above the
/// older snapshot (`node-boots`, found by `sim hunt`; Ra has no marker, so its order does not matter).
pub fn recursive_delete(fs: &mut dyn FileSystem, path: &str) -> Result<(), FsError> {
    match fs.metadata(path) {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.kind == vfs::FileKind::Dir => {
            let mut names = fs.read_dir(path)?;
            names.sort_by_key(|name| name == UNFINISHED_MARKER);
            for name in names {
                recursive_delete(fs, &join(path, &name))?;
            }
            fs.rmdir(path)
        }
        Ok(_) => fs.unlink(path),
    }
}

/// Errors reading a snapshot for its state.
fn read_snapshot_file(
    fs: &mut dyn FileSystem,
    snapshot_dir: &str,
) -> Result<Result<(SnapshotMeta, Vec<u8>), SnapshotFileError>, FsError> {
    match fs.read_file(&join(snapshot_dir, SNAPSHOT_FILE)) {
        Ok(bytes) => Ok(decode_snapshot(&bytes)),
        // `NotADirectory`: a stray file in `snapshots/` (Ra's `pick_first_valid` skips it, then deletes it).
        Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory) => {
            Ok(Err(SnapshotFileError::InvalidFormat))
        }
        Err(e) => Err(e),
    }
}

/// Reads a snapshot's meta and machine state.
pub fn read_snapshot(fs: &mut dyn FileSystem, snapshot_dir: &str) -> Result<(SnapshotMeta, Vec<u8>), StorageError> {
    match read_snapshot_file(fs, snapshot_dir)? {
        Ok(x) => Ok(x),
        Err(e) => Err(StorageError::Snapshot { dir: snapshot_dir.to_owned(), error: e }),
    }
}

/// The machine state of `server_dir`'s snapshot `meta`.
pub fn read_snapshot_state(
    fs: &mut dyn FileSystem,
    server_dir: &str,
    meta: &SnapshotMeta,
) -> Result<Vec<u8>, StorageError> {
    let dir = join(&join(server_dir, SNAPSHOTS_DIR), &snapshot_dir_name(meta.term, meta.index));
    Ok(read_snapshot(fs, &dir)?.1)
}

/// What snapshot init found for a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInit {
    /// The current snapshot (the newest valid one), if any.
    pub current: Option<SnapshotMeta>,
    /// Its directory.
    pub current_dir: Option<String>,
    /// Its live indexes.
    pub live_indexes: Seq,
    /// Whether the `indexes` file was unreadable and rebuilt from the machine state.
    pub indexes_rebuilt: bool,
    /// Snapshot directories deleted (invalid or older).
    pub deleted: Vec<String>,
}

/// Ra's `ra_snapshot:init` / `find_snapshots`: the newest `snapshots/*` whose `snapshot.dat` validates
/// (and, in raft-core, that holds no [`UNFINISHED_MARKER`], and whose directory and `snapshots/` fsync
/// again) wins, every other snapshot directory is deleted (no fsync), its `indexes` are read, and the server's
/// snapshot state is seeded (`-1` / nothing when there is none).
pub fn init_snapshots(
    fs: &mut dyn FileSystem,
    server_dir: &str,
    uid: &Uid,
    machine: &dyn LiveIndexes,
    bugs: &Bugs,
    shared: &mut NodeShared,
) -> Result<SnapshotInit, StorageError> {
    let dir = join(server_dir, SNAPSHOTS_DIR);
    fs.mkdir_all(&dir)?;
    let mut names = fs.read_dir(&dir)?;
    names.sort();
    names.reverse();
    // Ra's `pick_first_valid`: newest first, the first whose snapshot.dat validates.
    let mut current: Option<(String, String, SnapshotMeta, Vec<u8>)> = None;
    for name in &names {
        let path = join(&dir, name);
        if !bugs.has(Bug::UnfinishedSnapshotTrusted) && is_unfinished(fs, &path)? {
            continue;
        }
        if let Ok((meta, state)) = read_snapshot_file(fs, &path)? {
            current = Some((name.clone(), path, meta, state));
            break;
        }
    }
    let Some((chosen, path, meta, state)) = current else {
        let mut deleted = Vec::new();
        for name in &names {
            recursive_delete(fs, &join(&dir, name))?;
            deleted.push(name.clone());
        }
        shared.snapshots.delete(uid);
        return Ok(SnapshotInit {
            current: None,
            current_dir: None,
            live_indexes: Seq::new(),
            indexes_rebuilt: false,
            deleted,
        });
    };
    // Ra's order: read the indexes (the pre-fix badmatch happens here, before anything is deleted),
    // seed the snapshot state, then delete the other snapshot directories.
    let indexes_missing = !fs.exists(&join(&path, INDEXES_FILE))?;
    let (live_indexes, rebuilt) = match read_indexes(fs, &path)? {
        // Ra reads a missing `indexes` as "no live indexes" — but it is written unsynced, before
        // `snapshot.dat` is fsynced, so a power cut can leave a valid snapshot without it, and the
        // log would then forget entries the machine still reads (found by swarm). raft-core asks the
        // machine, as fix 1 does for an unreadable file; `indexes-missing-trusted` restores Ra's read.
        Ok(live) if indexes_missing && !bugs.has(Bug::IndexesMissingTrusted) => {
            let rebuilt = machine.live_indexes(meta.machine_version, &state).unwrap_or_default();
            if rebuilt.is_empty() {
                (live, false)
            } else {
                write_indexes(fs, &path, &rebuilt)?;
                (rebuilt, true)
            }
        }
        Ok(live) => (live, false),
        Err(error) => {
            if bugs.has(Bug::IndexesBadmatch) {
                // Ra 3.0.0: `{ok, Indexes} = indexes(Current)` — a badmatch crashes init.
                return Err(StorageError::IndexesUnreadable { dir: path, error });
            }
            // Fix 1: recover the live indexes from the machine state and rewrite the file (unsynced).
            let live = machine.live_indexes(meta.machine_version, &state).unwrap_or_default();
            write_indexes(fs, &path, &live)?;
            (live, true)
        }
    };
    // A process restart reads the page cache: after a failed directory fsync (which shuts ext4 and XFS
    // down) the snapshot's names may be there and not on the disk. Syncing them again fails on such a
    // filesystem, and persists them on a healthy one (a crash between the marker's removal and the
    // directory fsyncs); either way init trusts nothing the disk may not have.
    if !bugs.has(Bug::UnfinishedSnapshotTrusted) {
        sync_dir(fs, &path)?;
        sync_dir(fs, &dir)?;
    }
    shared.snapshots.insert(uid, meta.index, live_indexes.clone());
    let mut deleted = Vec::new();
    for name in names.iter().filter(|n| **n != chosen) {
        recursive_delete(fs, &join(&dir, name))?;
        deleted.push(name.clone());
    }
    Ok(SnapshotInit { current: Some(meta), current_dir: Some(path), live_indexes, indexes_rebuilt: rebuilt, deleted })
}

/// The local snapshot write path, run by the server's background worker (Ra's `begin_snapshot` job):
/// mkdir, the [`UNFINISHED_MARKER`] (raft-core only), `snapshot.dat` (unsynced), `indexes` (unsynced,
/// only when there are live indexes), fsync `snapshot.dat`, then seals it: remove the marker, fsync the
/// snapshot directory and `snapshots/`. Returns the snapshot directory. The caller then tells the server
/// (`SnapshotWritten`).
pub fn write_local_snapshot(
    fs: &mut dyn FileSystem,
    server_dir: &str,
    meta: &SnapshotMeta,
    state: &[u8],
    live_indexes: &Seq,
    bugs: &Bugs,
) -> Result<String, StorageError> {
    let snapshots = join(server_dir, SNAPSHOTS_DIR);
    let dir = join(&snapshots, &snapshot_dir_name(meta.term, meta.index));
    fs.mkdir_all(&dir)?;
    if !bugs.has(Bug::UnfinishedSnapshotTrusted) {
        write_file(fs, &join(&dir, UNFINISHED_MARKER), &[], false)?;
    }
    let dat = join(&dir, SNAPSHOT_FILE);
    write_file(fs, &dat, &encode_snapshot(meta, state), false)?;
    if !live_indexes.is_empty() {
        write_indexes(fs, &dir, live_indexes)?;
    }
    sync_file(fs, &dat)?;
    seal(fs, &dir, Some(&snapshots), bugs)?;
    Ok(dir)
}

/// Whether a snapshot directory holds the [`UNFINISHED_MARKER`] (a stray file in `snapshots/` holds
/// nothing).
fn is_unfinished(fs: &mut dyn FileSystem, dir: &str) -> Result<bool, FsError> {
    match fs.exists(&join(dir, UNFINISHED_MARKER)) {
        Err(e) if e.kind == ErrorKind::NotADirectory => Ok(false),
        other => other,
    }
}

/// The last steps of a snapshot write or accept, once `snapshot.dat` is fsynced: remove the
/// [`UNFINISHED_MARKER`], fsync the snapshot directory, then `snapshots/` (`parent`; `None` where
/// `accept-no-parent-sync` restores Ra's accept path, which skips it) — Ra's order in `complete_accept`.
///
/// Ra ignores these directory fsyncs' results (`_ = ra_lib:sync_dir(Dir)` in `maybe_sync` and
/// `complete_accept`), and `unfinished-snapshot-trusted` restores that. But a failed directory fsync
/// loses the entries it covered for good while the page cache keeps showing them, so here any failure
/// after the marker is gone deletes the directory (the marker first): a restarted server must not trust
/// what only the cache shows, and nothing relies on the snapshot yet.
fn seal(fs: &mut dyn FileSystem, dir: &str, parent: Option<&str>, bugs: &Bugs) -> Result<(), StorageError> {
    if bugs.has(Bug::UnfinishedSnapshotTrusted) {
        sync_dir_best_effort(fs, dir)?;
        if let Some(parent) = parent {
            sync_dir_best_effort(fs, parent)?;
        }
        return Ok(());
    }
    let sealed = fs
        .unlink(&join(dir, UNFINISHED_MARKER))
        .map_err(StorageError::from)
        .and_then(|()| sync_dir(fs, dir))
        .and_then(|()| parent.map_or(Ok(()), |parent| sync_dir(fs, parent)));
    if let Err(error) = sealed {
        if !error.is_power_cut() {
            let _ = recursive_delete(fs, dir);
        }
        return Err(error);
    }
    Ok(())
}

/// A follower receiving a snapshot in chunks (Ra's `begin_accept` / `accept_chunk` / `complete_accept`).
#[derive(Debug, Clone)]
pub struct SnapshotAccept {
    dir: String,
    fd: Fd,
    crc_state: Vec<u8>,
    meta: SnapshotMeta,
    /// The number of the chunk it takes next (Ra's `#accept.next`; chunks are numbered from 0).
    next: u32,
}

impl SnapshotAccept {
    /// mkdir `snapshots/<t>_<i>`, create the [`UNFINISHED_MARKER`] (raft-core only), open
    /// `snapshot.dat`, write the header with a zero CRC and the meta. Nothing is synced.
    pub fn begin(
        fs: &mut dyn FileSystem,
        server_dir: &str,
        meta: &SnapshotMeta,
        bugs: &Bugs,
    ) -> Result<SnapshotAccept, StorageError> {
        let dir = join(&join(server_dir, SNAPSHOTS_DIR), &snapshot_dir_name(meta.term, meta.index));
        fs.mkdir_all(&dir)?;
        if !bugs.has(Bug::UnfinishedSnapshotTrusted) {
            write_file(fs, &join(&dir, UNFINISHED_MARKER), &[], false)?;
        }
        let fd = fs.open(&join(&dir, SNAPSHOT_FILE), &OpenOptions::create_truncate())?;
        let section = meta_section(meta);
        let mut header = SNAPSHOT_MAGIC.to_vec();
        header.push(VERSION);
        header.extend_from_slice(&0u32.to_be_bytes());
        header.extend_from_slice(&section);
        write_all(fs, fd, &header)?;
        Ok(SnapshotAccept { dir, fd, crc_state: section, meta: meta.clone(), next: 0 })
    }

    /// The handle of the `snapshot.dat` it writes, held from `begin` to `finish` or `abort`.
    pub fn handle(&self) -> Fd {
        self.fd
    }

    /// Whether it takes `meta`'s snapshot and has taken its first chunk (a first chunk now is a resend).
    pub fn has_begun(&self, meta: &SnapshotMeta) -> bool {
        (self.meta.index, self.meta.term) == (meta.index, meta.term) && self.next > 0
    }

    /// Appends the next chunk of machine state (unsynced).
    pub fn chunk(&mut self, fs: &mut dyn FileSystem, data: &[u8]) -> Result<(), StorageError> {
        write_all(fs, self.fd, data)?;
        self.crc_state.extend_from_slice(data);
        self.next += 1;
        Ok(())
    }

    /// Ra's `accept_chunk/3`'s and `complete_accept/4`'s test of a chunk's number: `Ok(true)` for the
    /// chunk it takes next, `Ok(false)` for a resend of one it took already (Ra ignores it: a duplicated
    /// or retried message), and Ra's `function_clause` crash for one past the next.
    pub fn takes_chunk(&self, num: u32) -> Result<bool, StorageError> {
        if num > self.next {
            let error = SnapshotFileError::ChunkOutOfOrder { expected: self.next, got: num };
            return Err(StorageError::Snapshot { dir: self.dir.clone(), error });
        }
        Ok(num == self.next)
    }

    /// The last chunk, then the seal ([`SnapshotAccept::finish`] and [`ReceivedSnapshot::seal`] in one
    /// step, for a caller with nothing to check between them). Returns the meta and live indexes.
    pub fn complete(
        self,
        fs: &mut dyn FileSystem,
        last: &[u8],
        uid: &Uid,
        machine: &dyn LiveIndexes,
        bugs: &Bugs,
        shared: &mut NodeShared,
    ) -> Result<(SnapshotMeta, Seq), StorageError> {
        self.finish(fs, last, machine)?.seal(fs, uid, bugs, shared)
    }

    /// The last chunk: write it, write the CRC at offset 5, fsync, close; recover the machine state and
    /// its live indexes. The snapshot is not sealed yet (its [`UNFINISHED_MARKER`] is still there, so a
    /// boot ignores it): the caller may still refuse it ([`ReceivedSnapshot::abort`]).
    pub fn finish(
        mut self,
        fs: &mut dyn FileSystem,
        last: &[u8],
        machine: &dyn LiveIndexes,
    ) -> Result<ReceivedSnapshot, StorageError> {
        self.chunk(fs, last)?;
        let crc = crc32(&self.crc_state);
        fs.pwrite(self.fd, 5, &crc.to_be_bytes())?;
        fs.fsync(self.fd)?;
        fs.close(self.fd)?;
        let (meta, state) = read_snapshot(fs, &self.dir)?;
        debug_assert_eq!(meta, self.meta);
        let live = machine.live_indexes(meta.machine_version, &state).unwrap_or_default();
        Ok(ReceivedSnapshot { dir: self.dir, meta, live })
    }

    /// Abandons the transfer (the receive timed out): closes and deletes the partial snapshot.
    pub fn abort(self, fs: &mut dyn FileSystem) -> Result<(), StorageError> {
        let _ = fs.close(self.fd);
        recursive_delete(fs, &self.dir)?;
        Ok(())
    }
}

/// A snapshot received whole and synced but not sealed: the accept's last step, where the receiver can
/// still refuse it (Ra's `complete_accept` goes straight on to the seal).
#[derive(Debug, Clone)]
pub struct ReceivedSnapshot {
    dir: String,
    meta: SnapshotMeta,
    live: Seq,
}

impl ReceivedSnapshot {
    /// The snapshot's meta.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// The entries the snapshot's machine state still needs from the log.
    pub fn live_indexes(&self) -> &Seq {
        &self.live
    }

    /// Writes `indexes` unsynced, then seals the snapshot: remove the [`UNFINISHED_MARKER`] (Ra deletes a
    /// marker it never created), fsync the snapshot directory and then `snapshots/` itself; seed the
    /// snapshot state; finally (Ra: background work) delete the older snapshots, unsynced. Returns the
    /// meta and live indexes.
    ///
    /// Ra (3.1.10) does not fsync `snapshots/` on this path: after a power cut the new snapshot's entry
    /// can be lost while the deletion of the old snapshot and the unlinks of the segments it made
    /// obsolete survive, and the follower cannot boot (`gap_between_snapshot_and_log_range`). The
    /// simulator found this with no switch on; the `accept-no-parent-sync` switch restores Ra's code.
    pub fn seal(
        self,
        fs: &mut dyn FileSystem,
        uid: &Uid,
        bugs: &Bugs,
        shared: &mut NodeShared,
    ) -> Result<(SnapshotMeta, Seq), StorageError> {
        let ReceivedSnapshot { dir, meta, live } = self;
        write_indexes(fs, &dir, &live)?;
        let snapshots = dir.rsplit_once('/').map_or(String::new(), |(p, _)| p.to_owned());
        let parent = if bugs.has(Bug::AcceptNoParentSync) { None } else { Some(snapshots.as_str()) };
        seal(fs, &dir, parent, bugs)?;
        shared.snapshots.insert(uid, meta.index, live.clone());
        let own = dir.rsplit('/').next().unwrap_or_default().to_owned();
        for name in fs.read_dir(&snapshots)? {
            if name != own {
                recursive_delete(fs, &join(&snapshots, &name))?;
            }
        }
        Ok((meta, live))
    }

    /// Refuses the snapshot: deletes it (still marked unfinished, so a power cut before the delete
    /// leaves a directory boot ignores — unless `unfinished-snapshot-trusted` left the marker out).
    pub fn abort(self, fs: &mut dyn FileSystem) -> Result<(), StorageError> {
        recursive_delete(fs, &self.dir)?;
        Ok(())
    }
}
