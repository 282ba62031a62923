//! Ra's storage actors and their shared state: the WAL, mem tables, the segment writer, segment files
//! and segment refs (storage I), over `vfs::FileSystem` only.
//!
//! Why actors with explicit steps: three of the six PR 589 bugs exist only because Ra's WAL and segment
//! writer run concurrently against shared ETS tables and a disk that loses unsynced state. Each actor
//! here is a state machine whose `handle` performs one *step* — one message, or one slice of long work —
//! and reports what it sends in an [`Envelope`] list. Long work (recovering a WAL file, flushing one
//! server's tables, deleting keys) continues through *continuations*, which the scheduler runs before
//! the actor's next mailbox message but after any other actor's steps it chooses to interleave.
//!
//! Calling protocol, for a driver (the simulator, or the tests' small loop):
//! - each actor has a FIFO mailbox and at most one pending continuation;
//! - `Envelope::Wal`/`Envelope::SegmentWriter` go to the back of that actor's mailbox;
//!   `Envelope::WalContinue`/`Envelope::SegmentWriterContinue` become that actor's continuation, which
//!   must run before its next mailbox message;
//! - `Envelope::Server` goes to a server process (dropped if that process no longer runs);
//! - an `Err` from `handle` stops the actor at once (a crash); envelopes pushed before the error were
//!   already sent, as in Erlang.

pub mod boot;
pub mod durable_files;
mod error;
pub mod log;
pub mod mem_table;
pub mod messages;
pub mod new_server;
pub mod segment;
pub mod segment_writer;
pub mod segref;
pub mod shared;
pub mod snapshot;
pub mod wal;
pub mod wal_format;
pub mod worker;

use std::collections::BTreeMap;

pub use error::StorageError;

use crate::seq::Seq;
use crate::types::{LogIndex, ProcessId, TableId, Term, Uid};
use segref::SegRef;
use vfs::{ErrorKind, FsError};

/// Per server, the (table, indexes) ranges one WAL file holds, newest table first (Ra's
/// `#{UId => [{Tid, Seq}]}`).
pub type Ranges = BTreeMap<Uid, Vec<(TableId, Seq)>>;

/// What a storage actor sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// To the back of the WAL's mailbox.
    Wal(messages::WalMsg),
    /// The WAL's continuation: runs before the WAL's next mailbox message.
    WalContinue(messages::WalMsg),
    /// To the back of the segment writer's mailbox.
    SegmentWriter(messages::SegmentWriterMsg),
    /// The segment writer's continuation.
    SegmentWriterContinue(messages::SegmentWriterMsg),
    /// A log event for one server process (dropped if that process is gone).
    Server {
        /// The receiving process.
        process: ProcessId,
        /// The event.
        event: LogEvent,
    },
    /// To a server's background worker.
    Worker(worker::WorkerMsg),
    /// A notice for the node's boot sequence.
    Notice(NodeNotice),
}

/// Events the storage actors send to a server's log (Ra's `ra_log_event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// These indexes of `uid`, at `term`, are durable in the WAL.
    Written {
        /// The writer.
        uid: Uid,
        /// The term of the written entries.
        term: Term,
        /// The written indexes (floored by the smallest live index).
        seq: Seq,
    },
    /// The WAL saw a gap: resend everything from `from` (Ra's `resend_write`).
    ResendFrom {
        /// The writer.
        uid: Uid,
        /// The first index to resend.
        from: LogIndex,
    },
    /// The segment writer flushed these ranges into these segments (newest first).
    Segments {
        /// The server.
        uid: Uid,
        /// The flushed (table, indexes) ranges, newest table first.
        ranges: Vec<(TableId, Seq)>,
        /// The segments now holding them, newest first.
        segrefs: Vec<SegRef>,
    },
    /// The background worker made a local snapshot durable.
    SnapshotWritten {
        /// The server.
        uid: Uid,
        /// What the snapshot covers.
        meta: snapshot::SnapshotMeta,
        /// Its live indexes.
        live_indexes: Seq,
    },
    /// The background worker could not write a local snapshot (Ra's `ra_worker` catches the failure and
    /// sends `snapshot_error`): the server deletes what was written of it and carries on.
    SnapshotError {
        /// The server.
        uid: Uid,
        /// The snapshot that failed.
        meta: snapshot::SnapshotMeta,
        /// What failed, for the trace.
        error: String,
    },
}

/// Boot-sequence notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeNotice {
    /// WAL recovery finished (every recovered file flushed, a fresh WAL file open): servers may start.
    WalRecovered,
}

/// Joins a directory and a name (`""` is the filesystem root).
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") }
}

/// `NNNNNNNNNNNNNNNN.ext`, Ra's 16-digit zero-padded file names.
pub(crate) fn zpad_name(num: u64, ext: &str) -> String {
    format!("{num:016}.{ext}")
}

/// Parses a 16-digit zero-padded name with extension `ext`.
pub(crate) fn zpad_num(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 16 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// A directory fsync whose failure is returned (what DETS' own sync amounts to for the stores here).
pub(crate) fn sync_dir(fs: &mut dyn vfs::FileSystem, dir: &str) -> Result<(), StorageError> {
    let path = if dir.is_empty() { "." } else { dir };
    let fd = fs.open_dir(path)?;
    let synced = fs.fsync(fd);
    let closed = fs.close(fd);
    synced?;
    closed?;
    Ok(())
}

/// Ra's `_ = ra_lib:sync_dir(Dir)`: the result is ignored — except that a power cut stops the actor.
pub(crate) fn sync_dir_best_effort(fs: &mut dyn vfs::FileSystem, dir: &str) -> Result<(), StorageError> {
    let path = if dir.is_empty() { "." } else { dir };
    let result = fs.open_dir(path).and_then(|fd| {
        let synced = fs.fsync(fd);
        let closed = fs.close(fd);
        synced.and(closed)
    });
    match result {
        Err(e) if e.kind == ErrorKind::PoweredOff => Err(StorageError::Fs(e)),
        _ => Ok(()),
    }
}

/// Writes all of `data` at the handle's position (a zero-length write is an I/O error).
pub(crate) fn write_all(fs: &mut dyn vfs::FileSystem, fd: vfs::Fd, mut data: &[u8]) -> Result<(), FsError> {
    while !data.is_empty() {
        let n = fs.write(fd, data)?;
        if n == 0 {
            return Err(FsError::new(ErrorKind::Io, vfs::OpKind::Write, ""));
        }
        data = &data[n..];
    }
    Ok(())
}

/// Whether an fs error is a power cut (which always stops an actor).
pub(crate) fn is_power_cut(e: &FsError) -> bool {
    e.kind == ErrorKind::PoweredOff
}
