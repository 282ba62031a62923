//! The typed errors that stop a storage actor.
//!
//! Why typed: a stopped actor is either the fault we injected (a power cut, an I/O error) or a crash Ra
//! would also have had (`wal_checksum_validation_failure`, `gap_detected`, `missing_index`); the
//! `node-boots` checker must tell them apart and name them.

use std::fmt;

use crate::storage::segment::SegmentError;
use crate::storage::snapshot::{IndexesError, SnapshotFileError};
use crate::types::{LogIndex, TableId, Uid};
use vfs::FsError;

/// Why a storage actor stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// A filesystem call failed (including [`vfs::ErrorKind::PoweredOff`] after a power cut).
    Fs(FsError),
    /// A WAL file without Ra's magic and version (Ra: `unknown_wal_file_format`).
    UnknownWalFileFormat {
        /// The WAL file.
        file: String,
    },
    /// A record failed its checksum and non-zero data follows it (Ra: `wal_checksum_validation_failure`,
    /// the node refuses to boot).
    WalChecksumValidationFailure {
        /// The WAL file.
        file: String,
        /// Byte offset of the failing record.
        offset: u64,
    },
    /// A WAL record passed recovery unchecked (checksum 0) and its payload is not a term (Ra:
    /// `binary_to_term` throws `badarg`; the node refuses to boot). Only under `wal-zero-checksum-unchecked`.
    WalRecordUndecodable {
        /// The WAL file.
        file: String,
        /// Byte offset of the record.
        offset: u64,
    },
    /// WAL recovery found a writer's table not ending at the writer's previous index (Ra 3.0.1:
    /// unhandled `{error, gap_detected}`, fixed by PR 589 fix 2).
    GapDetected {
        /// The writer.
        uid: Uid,
        /// The index being recovered.
        index: LogIndex,
        /// The writer's previous index according to the writers map.
        prev: Option<LogIndex>,
        /// The last index the mem table handle held.
        table_last: Option<LogIndex>,
    },
    /// The segment writer could not find an index it was asked to flush for a registered server
    /// (Ra: `exit({missing_index, …})`).
    MissingIndex {
        /// The server.
        uid: Uid,
        /// The missing index.
        index: LogIndex,
    },
    /// A mem table was deleted under its owner (Ra: `badarg`).
    TableGone {
        /// The table.
        tid: TableId,
    },
    /// A segment file could not be used.
    Segment(SegmentError),
    /// Log init found the log range neither adjacent to nor overlapping the snapshot (Ra:
    /// `corrupt_log, gap_between_snapshot_and_log_range`).
    GapBetweenSnapshotAndLog {
        /// The server.
        uid: Uid,
        /// The snapshot index.
        snapshot: Option<LogIndex>,
        /// First index of the log range.
        first: LogIndex,
        /// Last index of the log range.
        last: LogIndex,
    },
    /// An append would leave a gap after the last index (Ra: `integrity_error`).
    IntegrityError {
        /// The server.
        uid: Uid,
        /// The index appended.
        index: LogIndex,
        /// The log's last index.
        last: LogIndex,
    },
    /// A new server's uid is already registered (Ra's `start_server`: `{error, not_new}`).
    NotNew {
        /// The server.
        uid: Uid,
    },
    /// A read of the log found no entry where one must be (Ra: `missing_key`).
    MissingEntry {
        /// The server.
        uid: Uid,
        /// The index.
        index: LogIndex,
    },
    /// A snapshot file could not be used.
    Snapshot {
        /// The snapshot directory.
        dir: String,
        /// What was wrong.
        error: SnapshotFileError,
    },
    /// The WAL's name is not registered: it exited and its successor has not started yet (Ra's
    /// `{error, wal_down}` from `ra_log:write`/`append`, `exit(wal_down)` from `ra_log:init`).
    WalDown,
    /// Server init found an unreadable `indexes` file and crashed (Ra before PR 589 fix 1: `badmatch`).
    IndexesUnreadable {
        /// The snapshot directory.
        dir: String,
        /// What was wrong.
        error: IndexesError,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Fs(e) => write!(f, "{e}"),
            StorageError::WalDown => write!(f, "wal_down"),
            StorageError::UnknownWalFileFormat { file } => write!(f, "unknown_wal_file_format: {file}"),
            StorageError::WalChecksumValidationFailure { file, offset } => {
                write!(f, "wal_checksum_validation_failure: {file} at byte {offset}")
            }
            StorageError::WalRecordUndecodable { file, offset } => {
                write!(f, "badarg (binary_to_term of an empty payload): {file} at byte {offset}")
            }
            StorageError::GapDetected { uid, index, prev, table_last } => write!(
                f,
                "gap_detected: {uid} index {index}, writer prev {}, table last {}",
                prev.map_or("none".to_owned(), |p| p.to_string()),
                table_last.map_or("none".to_owned(), |p| p.to_string())
            ),
            StorageError::MissingIndex { uid, index } => write!(f, "missing_index: {uid} index {index}"),
            StorageError::TableGone { tid } => write!(f, "mem table {tid} was deleted"),
            StorageError::Segment(e) => write!(f, "{e}"),
            StorageError::GapBetweenSnapshotAndLog { uid, snapshot, first, last } => write!(
                f,
                "corrupt_log gap_between_snapshot_and_log_range: {uid} snapshot {} log {first}..{last}",
                snapshot.map_or("none".to_owned(), |s| s.to_string())
            ),
            StorageError::IntegrityError { uid, index, last } => {
                write!(f, "integrity_error: {uid} append at {index} after {last}")
            }
            StorageError::NotNew { uid } => write!(f, "not_new: {uid} is already registered"),
            StorageError::MissingEntry { uid, index } => write!(f, "missing_key: {uid} index {index}"),
            StorageError::Snapshot { dir, error } => write!(f, "{error}: {dir}"),
            StorageError::IndexesUnreadable { dir, error } => write!(f, "badmatch on indexes ({error}): {dir}"),
        }
    }
}

impl std::error::Error for StorageError {}

impl From<FsError> for StorageError {
    fn from(e: FsError) -> StorageError {
        StorageError::Fs(e)
    }
}

impl From<SegmentError> for StorageError {
    fn from(e: SegmentError) -> StorageError {
        match e {
            SegmentError::Fs(fs) => StorageError::Fs(fs),
            other => StorageError::Segment(other),
        }
    }
}

impl StorageError {
    /// Whether this is a power cut rather than a crash of the code itself.
    pub fn is_power_cut(&self) -> bool {
        matches!(self, StorageError::Fs(e) if e.kind == vfs::ErrorKind::PoweredOff)
    }
}
