//! The consensus core: a Ra-style Raft server as a pure state machine, its log interface, the KV
//! machine, and an in-memory log for unit tests.
//!
//! Why pure: a simulator must decide every interleaving, so the server never does I/O or reads a clock.
//! It receives inputs (`Server::handle`) and returns effects; its log is reached through the
//! [`RaftLog`] trait, whose writes are volatile (Ra: mem table insert + WAL cast) — **durability arrives
//! as an input** (`Input::Written`), never as a return value.

pub mod kv;
pub mod mem_log;
pub mod sender;
pub mod server;

use crate::storage::StorageError;
use crate::types::{LogIndex, Payload, Term};

/// A server's log as consensus sees it. Implemented by `storage::log::ServerLog` (through
/// [`StorageLog`]) and by [`mem_log::MemLog`] for unit tests.
pub trait RaftLog {
    /// The last index and its term (the snapshot's when nothing is above it).
    fn last_index_term(&self) -> (LogIndex, Term);
    /// The last durable index and its term.
    fn last_written(&self) -> (LogIndex, Term);
    /// The lowest index readable above the snapshot (`snapshot + 1`, or 0 without one).
    fn first_index(&self) -> LogIndex;
    /// The current snapshot's index and term.
    fn snapshot_index_term(&self) -> Option<(LogIndex, Term)>;
    /// The entry at `index` (live indexes below the snapshot included).
    fn fetch(&mut self, index: LogIndex) -> Result<Option<(Term, Payload)>, StorageError>;
    /// Appends at `index` (≤ last + 1; at or below the last index it truncates the rest first).
    fn append(&mut self, index: LogIndex, term: Term, payload: Payload) -> Result<(), StorageError>;
    /// Ra's `write_sparse`: writes one live entry of an incoming snapshot after the log's last index,
    /// which it becomes (the log's range now spans a hole until the snapshot is installed).
    fn write_sparse(&mut self, index: LogIndex, term: Term, payload: Payload) -> Result<(), StorageError>;
    /// The cluster the current snapshot's meta names (its on-disk form, `server::encode_cluster`).
    fn snapshot_cluster(&self) -> Option<Vec<String>> {
        None
    }
    /// The live indexes of the current snapshot (what a snapshot transfer must send first).
    fn snapshot_live_indexes(&self) -> crate::seq::Seq;
    /// Whether appended entries still wait for the WAL's `Written` (Ra's `ra_log:has_pending`).
    fn has_pending(&self) -> bool;
    /// Whether entries still pending may be lost: the WAL restarted since this log last cast to it, and
    /// what sat in its mailbox went with it (the test of Ra's `ra_log:tick` resend).
    fn pending_may_be_lost(&self) -> bool;
    /// Whether the WAL is registered, so that an append can be made (Ra's `ra_log:can_write/1`); while
    /// it is not, `append` and `write_sparse` fail with [`StorageError::WalDown`].
    fn can_write(&self) -> bool;

    /// Ra's `ra_log:set_last_index`: the log ends at `index` (which it holds, or which is the snapshot's
    /// index); entries above it are no longer part of the log and the next append follows `index`.
    /// `Ok(false)` when the log holds no such index (Ra: `not_found`) and nothing changed.
    fn set_last_index(&mut self, index: LogIndex) -> Result<bool, StorageError>;

    /// The term at `index`, counting the snapshot's own index.
    fn term_at(&mut self, index: LogIndex) -> Result<Option<Term>, StorageError> {
        if let Some((si, st)) = self.snapshot_index_term()
            && si == index
        {
            return Ok(Some(st));
        }
        Ok(self.fetch(index)?.map(|(t, _)| t))
    }
}

/// [`RaftLog`] over a storage [`crate::storage::log::ServerLog`]: reads go to mem tables and segments,
/// appends insert into the mem table and push the WAL cast into `out`.
pub struct StorageLog<'a> {
    /// The server's log.
    pub log: &'a mut crate::storage::log::ServerLog,
    /// The node's shared state.
    pub shared: &'a mut crate::storage::shared::NodeShared,
    /// The node's filesystem.
    pub fs: &'a mut dyn vfs::FileSystem,
    /// Where the WAL casts go.
    pub out: &'a mut Vec<crate::storage::Envelope>,
}

impl RaftLog for StorageLog<'_> {
    fn can_write(&self) -> bool {
        self.shared.wal_registered
    }

    fn last_index_term(&self) -> (LogIndex, Term) {
        self.log.last_index_term().unwrap_or((LogIndex(0), Term(0)))
    }

    fn last_written(&self) -> (LogIndex, Term) {
        self.log.last_written()
    }

    fn first_index(&self) -> LogIndex {
        self.log.first_index()
    }

    fn snapshot_index_term(&self) -> Option<(LogIndex, Term)> {
        self.log.snapshot().map(|m| (m.index, m.term))
    }

    fn fetch(&mut self, index: LogIndex) -> Result<Option<(Term, Payload)>, StorageError> {
        self.log.fetch(index, self.shared, self.fs)
    }

    fn term_at(&mut self, index: LogIndex) -> Result<Option<Term>, StorageError> {
        // Ra's `fetch_term`: from the mem table or a segment's index, the entry's data not read.
        self.log.fetch_term(index, self.shared, self.fs)
    }

    fn append(&mut self, index: LogIndex, term: Term, payload: Payload) -> Result<(), StorageError> {
        self.log.append(index, term, payload, self.shared, self.fs, self.out)
    }

    fn write_sparse(&mut self, index: LogIndex, term: Term, payload: Payload) -> Result<(), StorageError> {
        self.log.write_sparse(index, term, payload, self.shared, self.out)
    }

    fn snapshot_live_indexes(&self) -> crate::seq::Seq {
        self.log.live_indexes().clone()
    }

    fn snapshot_cluster(&self) -> Option<Vec<String>> {
        self.log.snapshot().map(|m| m.cluster.clone())
    }

    fn has_pending(&self) -> bool {
        !self.log.pending().is_empty()
    }

    fn pending_may_be_lost(&self) -> bool {
        self.log.wal_restarted_since_last_cast(self.shared)
    }

    fn set_last_index(&mut self, index: LogIndex) -> Result<bool, StorageError> {
        self.log.set_last_index(index, self.shared, self.fs)
    }
}
