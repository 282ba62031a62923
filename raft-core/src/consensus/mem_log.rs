//! An in-memory [`RaftLog`] for the consensus unit tests: appends are volatile until the test marks
//! them written, exactly the distinction the server must respect.

use std::collections::BTreeMap;

use crate::consensus::RaftLog;
use crate::seq::Seq;
use crate::storage::StorageError;
use crate::types::{LogIndex, Payload, Term};

/// A log held in memory. A new one holds Ra's first entry (index 0, term 0), already written.
#[derive(Debug, Clone)]
pub struct MemLog {
    entries: BTreeMap<u64, (Term, Payload)>,
    written: (LogIndex, Term),
    snapshot: Option<(LogIndex, Term)>,
    live: Seq,
    /// The WAL is down: appends fail with `WalDown` (a test sets it).
    pub wal_down: bool,
    /// The WAL restarted since the last write, so what is pending may be lost (a test sets it).
    pub wal_restarted: bool,
    /// How many sparse writes were made (what a test of the pre phase counts).
    pub sparse_writes: usize,
}

impl Default for MemLog {
    fn default() -> MemLog {
        MemLog::new()
    }
}

impl MemLog {
    /// A log holding entry 0 (term 0), written.
    pub fn new() -> MemLog {
        let mut entries = BTreeMap::new();
        entries.insert(0, (Term(0), Payload::from(&[][..])));
        MemLog {
            entries,
            written: (LogIndex(0), Term(0)),
            snapshot: None,
            live: Seq::new(),
            wal_down: false,
            wal_restarted: false,
            sparse_writes: 0,
        }
    }

    /// Marks everything appended as written (the WAL's `Written`); returns the new last written.
    pub fn write_all(&mut self) -> (LogIndex, Term) {
        self.written = self.last_index_term();
        self.written
    }

    /// Marks entries up to `index` written.
    pub fn write_up_to(&mut self, index: LogIndex) {
        let i = index.min(self.last_index_term().0);
        let term = self.entries.get(&i.0).map(|(t, _)| *t).or(self.snapshot.map(|s| s.1)).unwrap_or(Term(0));
        self.written = (i, term);
    }

    /// Installs a snapshot: everything at or below it goes, except `keep` (live indexes).
    pub fn install_snapshot(&mut self, index: LogIndex, term: Term, keep: &[LogIndex]) {
        let above_or_live: BTreeMap<u64, (Term, Payload)> = self
            .entries
            .iter()
            .filter(|(i, _)| **i > index.0 || keep.contains(&LogIndex(**i)))
            .map(|(i, e)| (*i, e.clone()))
            .collect();
        self.entries = above_or_live;
        self.live = Seq::from_indexes(keep.iter().copied());
        self.snapshot = Some((index, term));
        if self.written.0 < index {
            self.written = (index, term);
        }
    }

    /// Drops every entry above the snapshot (a follower installing a snapshot discards its log).
    pub fn reset_to_snapshot(&mut self, index: LogIndex, term: Term) {
        // Entries written sparsely by the transfer's live phase stay.
        let live = self.live.clone();
        self.entries.retain(|i, _| live.contains(LogIndex(*i)));
        self.snapshot = Some((index, term));
        self.written = (index, term);
    }
}

impl RaftLog for MemLog {
    fn last_index_term(&self) -> (LogIndex, Term) {
        match self.entries.iter().next_back() {
            Some((i, (t, _))) if self.snapshot.is_none_or(|(s, _)| *i > s.0) => (LogIndex(*i), *t),
            _ => self.snapshot.unwrap_or((LogIndex(0), Term(0))),
        }
    }

    fn last_written(&self) -> (LogIndex, Term) {
        self.written
    }

    fn first_index(&self) -> LogIndex {
        match self.snapshot {
            Some((s, _)) => LogIndex(s.0 + 1),
            None => LogIndex(self.entries.keys().next().copied().unwrap_or(0)),
        }
    }

    fn snapshot_index_term(&self) -> Option<(LogIndex, Term)> {
        self.snapshot
    }

    fn fetch(&mut self, index: LogIndex) -> Result<Option<(Term, Payload)>, StorageError> {
        Ok(self.entries.get(&index.0).cloned())
    }

    fn write_sparse(&mut self, index: LogIndex, term: Term, payload: Payload) -> Result<(), StorageError> {
        if self.wal_down {
            return Err(StorageError::WalDown);
        }
        self.entries.insert(index.0, (term, payload));
        self.live = self.live.union(&Seq::from_range(index, index));
        self.sparse_writes += 1;
        self.wal_restarted = false;
        Ok(())
    }

    fn snapshot_live_indexes(&self) -> Seq {
        self.live.clone()
    }

    fn can_write(&self) -> bool {
        !self.wal_down
    }

    fn has_pending(&self) -> bool {
        self.entries.keys().next_back().is_some_and(|&i| i > self.written.0.0)
    }

    fn pending_may_be_lost(&self) -> bool {
        self.wal_restarted
    }

    fn append(&mut self, index: LogIndex, term: Term, payload: Payload) -> Result<(), StorageError> {
        if self.wal_down {
            return Err(StorageError::WalDown);
        }
        let last = self.last_index_term().0;
        assert!(index.0 <= last.0 + 1 || self.entries.is_empty(), "append at {index} after {last}");
        let doomed: Vec<u64> = self.entries.range(index.0..).map(|(i, _)| *i).collect();
        for i in doomed {
            self.entries.remove(&i);
        }
        if self.written.0 >= index {
            let prev = LogIndex(index.0.saturating_sub(1));
            let t = self.entries.get(&prev.0).map(|(t, _)| *t).unwrap_or(Term(0));
            self.written = (prev, t);
        }
        self.entries.insert(index.0, (term, payload));
        self.wal_restarted = false;
        Ok(())
    }

    fn set_last_index(&mut self, index: LogIndex) -> Result<bool, StorageError> {
        let term = match self.snapshot {
            Some((s, t)) if s == index => t,
            _ => match self.entries.get(&index.0) {
                Some((t, _)) => *t,
                None => return Ok(false),
            },
        };
        let live = self.live.clone();
        let snap = self.snapshot.map_or(0, |(s, _)| s.0);
        self.entries.retain(|i, _| *i <= index.0 || (*i <= snap && live.contains(LogIndex(*i))));
        if self.written.0 > index {
            self.written = (index, term);
        }
        Ok(true)
    }
}
