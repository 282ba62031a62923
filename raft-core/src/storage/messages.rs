//! The messages Ra's storage actors exchange: what the WAL handles (`WalMsg`, with a writer's
//! `WalAppend`) and what the segment writer handles (`SegmentWriterMsg`).
//!
//! Why a module of their own: the WAL sends the segment writer its finished files and the segment writer
//! answers the WAL's `Await`, so each actor names the other's messages. Kept here, the two actors depend
//! on this protocol and not on each other.

use crate::storage::Ranges;
use crate::types::{LogIndex, Payload, ProcessId, TableId, Term, Uid};

/// An append request from a server (Ra's `{append, {UId, Pid}, MtTid, PrevIdx, Idx, Term, Cmd}`).
/// The server has already inserted the entry into its mem table `tid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalAppend {
    /// The writer.
    pub uid: Uid,
    /// The writer's current process, which receives `Written`.
    pub process: ProcessId,
    /// The mem table holding the entry.
    pub tid: TableId,
    /// The index the writer's previous entry had (`None` for none: the first entry of a log).
    pub prev_index: Option<LogIndex>,
    /// The entry's index.
    pub index: LogIndex,
    /// The entry's term.
    pub term: Term,
    /// The entry's payload.
    pub payload: Payload,
}

/// Messages the WAL handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalMsg {
    /// Start: recover every WAL file, then open a fresh one. Sent once per WAL process start.
    Recover,
    /// Continuation: recover the next file (one file per step).
    RecoverNextFile,
    /// Reply from the segment writer: everything queued before our `Await { token }` is done.
    SegmentWriterDrained {
        /// The token of the `Await` this answers.
        token: u64,
    },
    /// An append.
    Append(WalAppend),
    /// Queued behind the appends of a batch: write and sync the batch, then notify the writers.
    CompleteBatch,
    /// Continuation of a roll-over: fsync the WAL directory, then resume an interrupted append.
    FinishRollOver,
    /// Roll over now (Ra's `force_roll_over`).
    ForceRollOver,
    /// Forget a writer's sequence tracking (Ra's `forget_writer`).
    ForgetWriter(Uid),
    /// Continuation: handle the next message that arrived during recovery.
    ResumeDeferred,
}

/// Messages the segment writer handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentWriterMsg {
    /// Flush these ranges of a finished WAL file, then delete the file.
    MemTables {
        /// Per server, (table, indexes), newest table first.
        ranges: Ranges,
        /// The WAL file to delete afterwards.
        wal_file: String,
    },
    /// Continuation: the next server's flush, or the next slice of a delete.
    Continue,
    /// Reply `SegmentWriterDrained { token }` to the WAL once everything queued before this is done.
    Await {
        /// Echoed in the reply.
        token: u64,
    },
}
