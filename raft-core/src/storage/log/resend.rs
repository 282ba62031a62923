//! The log's side of the WAL conversation (Ra's `ra_log`): what a `Written` notice confirms, and what
//! goes to the WAL again — when it asks (a gap), when a notice is not a prefix of what is pending, and
//! when a tick finds the WAL restarted since the last cast (its mailbox lost). Split from `log.rs`,
//! which owns the log's state, appends and reads.

use super::{RESEND_WINDOW_SECONDS, ServerLog, WAL_RESEND_TIMEOUT_MS};
use crate::bugs::Bug;
use crate::seq::Seq;
use crate::storage::messages::{WalAppend, WalMsg};
use crate::storage::shared::NodeShared;
use crate::storage::{Envelope, StorageError};
use crate::types::{LogIndex, Term};
use vfs::FileSystem;

impl ServerLog {
    pub(super) fn handle_written(
        &mut self,
        term: Term,
        seq: &Seq,
        shared: &NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        let mut seq = seq.clone();
        while let Some(last) = seq.last() {
            // Ra's `fetch_term` answers only inside the log range (not for the snapshot or live indexes).
            let in_range = self.range.is_some_and(|(f, l)| f <= last && last <= l);
            let found = if in_range { self.fetch_term(last, shared, fs)? } else { None };
            match found {
                Some(t) if t == term => {
                    // Ra's `remove_prefix(WrittenSeq, Pending)`: a pending index below the written ones
                    // that was not written means the WAL lost it (a restart dropped its mailbox):
                    // resend everything pending, and take nothing as written yet.
                    if !self.pending.below(last).subtract(&seq).is_empty() {
                        let prev = Some(self.last_written.0);
                        return self.resend_pending(prev, shared, out);
                    }
                    self.last_written = (last, term);
                    self.pending = self.pending.floor(LogIndex(last.0.saturating_add(1)));
                    return Ok(());
                }
                None if self.snapshot.as_ref().is_some_and(|s| last <= s.index) => {
                    // A snapshot overtook the written event: only pending shrinks.
                    self.pending = self.pending.subtract(&seq);
                    return Ok(());
                }
                // A term mismatch: an overwritten entry. Retry with the range below it.
                _ => seq = seq.below(last),
            }
        }
        Ok(())
    }

    /// Ra's `resend_pending`: re-casts every pending index, chained from `prev` (the WAL's last index).
    pub(super) fn resend_pending(
        &mut self,
        prev: Option<LogIndex>,
        shared: &NodeShared,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        match self.pending.first() {
            Some(first) => self.resend_from0(first, prev, shared, out),
            None => Ok(()),
        }
    }

    /// Ra's `resend_from`: the WAL saw a gap and asks to continue from `from`.
    pub(super) fn resend_from(
        &mut self,
        from: LogIndex,
        shared: &NodeShared,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        self.resend_from0(from, from.0.checked_sub(1).map(LogIndex), shared, out)
    }

    /// Ra's `resend_from0`: only the *pending* entries from `from` go again (the rest are durable,
    /// possibly already in segments and gone from the mem tables), the first chained to `prev`. A resend
    /// within the resend window of the last one, to the same WAL process, does nothing; after the window
    /// or a WAL restart it goes ahead (chained to `from - 1`, as Ra's second clause calls `resend_from`).
    /// So does one from below the last one's `from`, which the last could not have satisfied
    /// (`wal-gap-request-ignored` restores Ra's window over it).
    fn resend_from0(
        &mut self,
        from: LogIndex,
        prev: Option<LogIndex>,
        shared: &NodeShared,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        // Ra's `resend_from` catches `wal_down` and keeps its state: the next tick tries again.
        if !shared.wal_registered {
            return Ok(());
        }
        if let Some((at_s, wal, last_from)) = self.last_resend {
            // A tick's resend after a WAL restart starts after the last written index, chained to it;
            // when that is a snapshot's index and the restarted WAL's last record for this server lies
            // below it (records from the smallest live index on survive its recovery), the WAL takes
            // the chain for a gap, asks once to resend from after its own last (Ra's `resend_write`)
            // and drops every later write of the server until a write chains to what it has
            // (`out_of_seq`). Ra's window refuses that request — it comes a few milliseconds after the
            // tick's resend — and nothing asks again: the follower never writes another entry
            // (`wal-gap-request-ignored`, found by `sim hunt`).
            let below_last = from < last_from && !self.bugs.has(Bug::WalGapRequestIgnored);
            if shared.clock_ms / 1000 > at_s + RESEND_WINDOW_SECONDS || wal != shared.wal_process || below_last {
                self.last_resend = None;
                return self.resend_from(from, shared, out);
            }
            return Ok(());
        }
        self.pending = self.pending.floor(from);
        self.last_resend = Some((shared.clock_ms / 1000, shared.wal_process, from));
        if !self.pending.is_empty() {
            self.last_wal_write = (shared.wal_process, shared.clock_ms);
        }
        let mut prev = prev;
        for i in self.pending.clone().iter() {
            let Some((term, payload)) =
                self.mt.lookup(&shared.mem_tables, i).map_err(|g| StorageError::TableGone { tid: g.0 })?
            else {
                // Pending entries live in the mem tables until written (Ra's lookup would crash here).
                return Err(StorageError::MissingEntry { uid: self.uid.clone(), index: i });
            };
            let tid = self.mt.tid_for(&shared.mem_tables, i, term).unwrap_or(self.mt.tid());
            out.push(Envelope::Wal(WalMsg::Append(WalAppend {
                uid: self.uid.clone(),
                process: self.process,
                tid,
                prev_index: prev,
                index: i,
                term,
                payload,
            })));
            prev = Some(i);
        }
        Ok(())
    }

    /// Whether the WAL restarted since this log last cast to it: what was pending then may have been in
    /// the old process's mailbox and lost (`tick`'s test, without its timeout).
    pub fn wal_restarted_since_last_cast(&self, shared: &NodeShared) -> bool {
        self.last_wal_write.0 != shared.wal_process
    }

    /// Ra's `ra_log:tick` (every server tick): once the WAL has restarted since this log last wrote to it,
    /// at least `WAL_RESEND_TIMEOUT_MS` ago, and the entry after the last written one is still in the mem
    /// table, what is pending goes again — the restarted WAL lost the appends in its mailbox.
    pub fn tick(&mut self, shared: &NodeShared, out: &mut Vec<Envelope>) -> Result<bool, StorageError> {
        let (wal, at_ms) = self.last_wal_write;
        let next = LogIndex(self.last_written.0.0.saturating_add(1));
        let due = shared.clock_ms > at_ms + WAL_RESEND_TIMEOUT_MS
            && wal != shared.wal_process
            && self.mt.range().is_some_and(|(f, l)| f <= next && next <= l);
        if due {
            self.resend_from(next, shared, out)?;
        }
        Ok(due)
    }
}
