//! Log replication, both sides, as Ra 3.1.10 does it: a follower's handling of append-entries (the
//! previous entry checked, entries it holds dropped, a failure answered once before `await_condition`,
//! new entries answered when the WAL has written them) and its reports of what it has written; the
//! leader's RPCs to each peer (pipelined from the peer's next index up to `MAX_PIPELINE_COUNT` in flight,
//! one-entry tick appends, or a snapshot sender when the log no longer has what the peer needs), its
//! handling of the replies, and commit by a quorum of written indexes. Two fixes of Ra gaps live here:
//! `next-index-past-log` and `unvalidated-reply-unwritten`.

use crate::bugs::Bug;
use crate::consensus::RaftLog;
use crate::storage::StorageError;
use crate::types::{LogIndex, Term};

use super::{
    Condition, Effect, Entry, MAX_PIPELINE_COUNT, Message, PeerStatus, PrevEntry, Role, Server, ServerId, Timer,
};

impl Server {
    /// An append-entries from a leader (or a stale one).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append_entries(
        &mut self,
        from: ServerId,
        term: Term,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: LogIndex,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        // Malformed: entries must follow `prev_index` contiguously.
        let contiguous =
            entries.iter().enumerate().all(|(n, e)| Some(e.index.0) == prev_index.0.checked_add(n as u64 + 1));
        if !contiguous {
            return Ok(());
        }
        if term < self.current_term {
            let (li, lt) = log.last_written();
            fx.push(Effect::Send {
                to: from,
                msg: Message::AppendEntriesReply {
                    term: self.current_term,
                    success: false,
                    next_index: LogIndex(li.0 + 1),
                    last_index: li,
                    last_term: lt,
                },
            });
            return Ok(());
        }
        if term == self.current_term && self.receiving_snapshot.is_some() {
            // Ra's `receive_snapshot` state ignores appends of its own term: the pre-phase may
            // have written live entries sparsely above the log, and an append chained to one of
            // them would make the log claim the hole below it (a higher term aborts the receive).
            return Ok(());
        }
        self.follow(term, &from, log, fx)?;
        self.handle_append_entries(from, prev_index, prev_term, entries, commit, log, fx)
    }

    /// Ra's `ra_log:fetch_term`: the term of an entry in the log's range (above the snapshot; live
    /// entries below it do not count).
    pub(super) fn term_in_range(&self, index: LogIndex, log: &mut dyn RaftLog) -> Result<Option<Term>, StorageError> {
        if index < log.first_index() {
            return Ok(None);
        }
        log.term_at(index)
    }

    /// Ra's `ra_server:fetch_term`: the log's range, else the snapshot's own index.
    pub(super) fn term_or_snapshot(
        &self,
        index: LogIndex,
        log: &mut dyn RaftLog,
    ) -> Result<Option<Term>, StorageError> {
        match self.term_in_range(index, log)? {
            Some(t) => Ok(Some(t)),
            None => Ok(log.snapshot_index_term().filter(|(s, _)| *s == index).map(|(_, t)| t)),
        }
    }

    /// Ra's `has_log_entry_or_snapshot`: what this log holds at an append's previous index.
    pub(super) fn prev_entry(
        &self,
        prev_index: LogIndex,
        prev_term: Term,
        log: &mut dyn RaftLog,
    ) -> Result<PrevEntry, StorageError> {
        Ok(match self.term_or_snapshot(prev_index, log)? {
            Some(t) if t == prev_term => PrevEntry::Ok,
            Some(_) => PrevEntry::TermMismatch,
            None => PrevEntry::Missing,
        })
    }

    /// Ra's `append_entries_reply/3`: the last written index and term, and the next index after the
    /// last one appended.
    fn written_reply(&self, success: bool, log: &dyn RaftLog) -> Message {
        let (li, lt) = log.last_written();
        let (last, _) = log.last_index_term();
        Message::AppendEntriesReply {
            term: self.current_term,
            success,
            next_index: LogIndex(last.0 + 1),
            last_index: li,
            last_term: lt,
        }
    }

    /// Ra's `handle_follower(#append_entries_rpc{})` for a leader of our term: the previous entry is
    /// checked (missing or of another term: a failure reply and `await_condition`); the entries the log
    /// already holds are dropped; with none left the log is validated to its end (an empty append
    /// truncates what follows its previous entry) and answered, or — when the log goes on past what the
    /// append covered — answered with only what it validated; new entries are written and answered
    /// when the WAL has written them (`handle_written`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_append_entries(
        &mut self,
        leader: ServerId,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        match self.prev_entry(prev_index, prev_term, log)? {
            PrevEntry::Ok => {}
            PrevEntry::Missing => {
                let reply = self.written_reply(false, log);
                self.await_catch_up(Condition::Missing, leader, reply, fx);
                return Ok(());
            }
            PrevEntry::TermMismatch => {
                // Ra's `mismatch_append_entries_reply(Term, LastApplied)`: rewind to the applied index.
                let applied = self.last_applied;
                let applied_term = self.term_or_snapshot(applied, log)?;
                assert!(applied_term.is_some(), "the applied index {applied:?} is in the log or the snapshot");
                let reply = Message::AppendEntriesReply {
                    term: self.current_term,
                    success: false,
                    next_index: LogIndex(applied.0 + 1),
                    last_index: applied,
                    last_term: applied_term.unwrap_or(Term(0)),
                };
                self.await_catch_up(Condition::TermMismatch, leader, reply, fx);
                return Ok(());
            }
        }
        // Ra's `drop_existing`: the leading entries the log holds with the same term.
        let was_empty = entries.is_empty();
        let mut last_valid = prev_index;
        let mut remaining = entries.into_iter().peekable();
        while let Some(e) = remaining.peek() {
            if self.term_in_range(e.index, log)? != Some(e.term) {
                break;
            }
            last_valid = e.index;
            remaining.next();
        }
        let remaining: Vec<Entry> = remaining.collect();
        if remaining.is_empty() {
            let (local_last, _) = log.last_index_term();
            let validated = if was_empty && local_last > prev_index {
                // An empty append ends the log at its previous entry (Ra: `set_last_index(PLIdx)`) — but
                // not when the entry after it is of the leader's own term: the leader sent it after this
                // append, which a later one overtook (Ra sends through a spawned process when the
                // distribution buffer is busy, and the two senders' messages are not ordered), and the
                // follower may have written it and told the leader, who counted it towards a commit.
                // `stale-empty-append-truncates` restores Ra's cut.
                let newer = !self.cfg.bugs.has(Bug::StaleEmptyAppendTruncates)
                    && self.term_in_range(LogIndex(prev_index.0 + 1), log)? == Some(self.current_term);
                if newer {
                    false
                } else {
                    assert!(
                        prev_index >= self.last_applied,
                        "a leader's empty append never cuts below what was applied"
                    );
                    self.before_cut(LogIndex(prev_index.0 + 1));
                    log.set_last_index(prev_index)?;
                    true
                }
            } else {
                local_last <= last_valid
            };
            if validated {
                self.raise_commit(leader_commit, log);
                self.apply(log, fx, false)?;
                let reply = self.written_reply(true, log);
                fx.push(Effect::Send { to: leader, msg: reply });
            } else {
                // The log goes on past what this append covered (a resend after a failure): answer
                // success up to what it validated only, so the leader makes progress — and, as its
                // match index, no further than what is written here: the leader counts it towards a
                // commit (`unvalidated-reply-unwritten` restores Ra's reply, which claims the validated
                // index even when only the mem table holds it).
                let validated = LogIndex(self.last_applied.0.max(last_valid.0));
                let reported = if self.cfg.bugs.has(Bug::UnvalidatedReplyUnwritten) {
                    validated
                } else {
                    validated.min(log.last_written().0)
                };
                let term = self.term_or_snapshot(reported, log)?.unwrap_or(Term(0));
                let msg = Message::AppendEntriesReply {
                    term: self.current_term,
                    success: true,
                    next_index: LogIndex(validated.0 + 1),
                    last_index: reported,
                    last_term: term,
                };
                fx.push(Effect::Send { to: leader, msg });
            }
            return Ok(());
        }
        if !log.can_write() {
            // Ra folds `pre_append_log_follower` over the entries and takes the leader's commit index,
            // then `ra_log:write` finds the WAL down: no reply, the log as it was, and a wait for the WAL
            // ("we dont know exactly which in flight messages made it to the wal").
            for e in &remaining {
                self.pre_append_follower(e.index, e.term, &e.payload);
            }
            self.raise_commit(leader_commit, log);
            self.await_wal(fx);
            return Ok(());
        }
        // The first entry left either extends the log or replaces it from there on.
        if let Some(first) = remaining.first()
            && first.index <= log.last_index_term().0
            && !(first.index <= self.last_applied && self.term_in_range(first.index, log)?.is_some())
        {
            self.before_cut(first.index);
        }
        for e in remaining {
            if e.index <= self.last_applied && self.term_in_range(e.index, log)?.is_some() {
                // A leader never overwrites an applied entry; a message that would is refused (Ra asserts
                // `FstIdx >= LastApplied`; the log-matching checker, not a panic, reports such a leader).
                // Not the commit index: Ra raises it to the leader's before the write, even over
                // entries of an older term this append replaces — and when the WAL was down then, the
                // resent append must still overwrite them (refusing it had the leader and follower
                // trade the same two failures every millisecond for good: `converges`, found by
                // `sim hunt`).
                let msg = Message::AppendEntriesReply {
                    term: self.current_term,
                    success: false,
                    next_index: LogIndex(self.last_applied.0.saturating_add(1)),
                    last_index: log.last_written().0,
                    last_term: log.last_written().1,
                };
                fx.push(Effect::Send { to: leader, msg });
                return Ok(());
            }
            self.pre_append_follower(e.index, e.term, &e.payload);
            log.append(e.index, e.term, e.payload)?;
        }
        // No reply now: the WAL's `Written` brings it (Ra replies from `handle_follower({ra_log_event, …})`).
        self.raise_commit(leader_commit, log);
        self.apply(log, fx, false)
    }

    /// Ra sets a follower's commit index to the leader's and applies up to `min(last index, commit)`;
    /// here the commit index is that bound itself, and never goes down (a new leader may know less than
    /// the old one told us): the same entries are applied, and the commit index stays one the log holds.
    fn raise_commit(&mut self, leader_commit: LogIndex, log: &dyn RaftLog) {
        self.commit_index = self.commit_index.max(leader_commit.min(log.last_index_term().0));
    }

    /// A follower's answer to an append-entries (or its report of what it has written).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append_entries_reply(
        &mut self,
        from: ServerId,
        term: Term,
        success: bool,
        next_index: LogIndex,
        last_index: LogIndex,
        last_term: Term,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if term > self.current_term {
            self.become_follower(term, None, log, fx)?;
            return Ok(());
        }
        if self.role != Role::Leader {
            return Ok(());
        }
        if success {
            // Ra's `handle_leader({PeerId, #append_entries_reply{success = true}})`: the reply's written
            // index is the peer's match index, its next index moves ours forward (a success of an
            // older term matches no clause and is dropped).
            if term < self.current_term {
                return Ok(());
            }
            let bound = self.next_index_bound(log);
            let Some(p) = self.peers.get_mut(&from) else { return Ok(()) };
            p.match_index = p.match_index.max(last_index);
            p.next_index = p.next_index.max(next_index).min(bound);
            self.maybe_promote(&from, log, fx)?;
            self.advance_commit(log, fx)?;
            if self.leave_if_removed(log, fx)? {
                return Ok(());
            }
            return self.pipeline(false, log, fx);
        }
        // Ra's failure clause, of any term: where the peer's last written index stands in our log.
        let Some(p) = self.peers.get(&from).cloned() else { return Ok(()) };
        let (match_index, next) = match self.term_in_range(last_index, log)? {
            None => (p.match_index, next_index),
            Some(t) if t == last_term && last_index >= p.match_index => (last_index, next_index),
            Some(_) if last_index < p.match_index => (last_index, LogIndex(last_index.0 + 1)),
            // An older term's entries there: back off, never below what the peer is known to hold.
            Some(_) => {
                (p.match_index, LogIndex(p.next_index.0.saturating_sub(1).min(last_index.0).max(p.match_index.0 + 1)))
            }
        };
        let bound = self.next_index_bound(log);
        if let Some(pm) = self.peers.get_mut(&from) {
            pm.match_index = match_index;
            pm.next_index = next.min(bound);
        }
        self.pipeline(false, log, fx)
    }

    /// The highest next index a peer may have: the leader's last index + 1, from which its next RPC is
    /// read (`next-index-past-log` restores Ra's unbounded next index).
    fn next_index_bound(&self, log: &dyn RaftLog) -> LogIndex {
        if self.cfg.bugs.has(Bug::NextIndexPastLog) {
            return LogIndex(u64::MAX);
        }
        LogIndex(log.last_index_term().0.0 + 1)
    }

    /// A `Written`: the leader counts its own written index; a follower tells its leader when its
    /// written index moved (Ra: `handle_follower({ra_log_event, …})` compares `last_written` before and
    /// after the event).
    pub(super) fn handle_written(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        match self.role {
            Role::Leader => {
                self.advance_commit(log, fx)?;
                self.pipeline(false, log, fx)
            }
            Role::Follower => {
                if log.last_written() != self.written_seen
                    && let Some(leader) = self.leader.clone()
                {
                    let reply = self.written_reply(true, log);
                    fx.push(Effect::Send { to: leader, msg: reply });
                }
                Ok(())
            }
            Role::PreVoteCandidate | Role::Candidate => Ok(()),
        }
    }

    /// The leader's heartbeat, Ra's tick: a one-entry append-entries from each normal peer's next index,
    /// which it does not move (Ra's `make_rpcs_for`). Ra sends it to stale peers only, every second; here
    /// every peer gets one every `heartbeat_ms`, since followers detect a dead leader by its silence.
    pub(super) fn heartbeat(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        if self.role == Role::Leader {
            for peer in self.others() {
                if self.peers.get(&peer).is_some_and(|p| p.status == PeerStatus::Normal) {
                    self.send_rpc(&peer, 1, false, log, fx)?;
                }
            }
            fx.push(Effect::SetTimer { timer: Timer::Heartbeat, after_ms: self.cfg.heartbeat_ms });
        }
        Ok(())
    }

    /// Ra's `make_all_rpcs`: a one-entry append-entries (next index not moved) to every peer. With every
    /// fix this includes peers in snapshot backoff: their retry timer is cancelled and they go back to
    /// normal replication (`backoff-status-kept` restores Ra 3.1.10, which leaves the status
    /// `snapshot_backoff`, so that a peer needing no snapshot is skipped by the pipeline and the ticks;
    /// `backoff-peer-skipped` restores the skip of PR 589 fix 4).
    pub(super) fn make_all_rpcs(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        for peer in self.others() {
            let status = self.peers.get(&peer).map(|p| p.status);
            match status {
                Some(PeerStatus::Normal) => self.send_rpc(&peer, 1, false, log, fx)?,
                Some(PeerStatus::SnapshotBackoff(_)) if !self.cfg.bugs.has(Bug::BackoffPeerSkipped) => {
                    fx.push(Effect::CancelTimer(Timer::SnapshotRetry(peer.clone())));
                    if !self.cfg.bugs.has(Bug::BackoffStatusKept)
                        && let Some(p) = self.peers.get_mut(&peer)
                    {
                        p.status = PeerStatus::Normal;
                    }
                    self.make_rpc(&peer, 1, false, log, fx)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Ra's `make_pipelined_rpc_effects`: the next batch to every normal peer that has entries not yet
    /// sent or has not been sent the current commit index, while fewer than `MAX_PIPELINE_COUNT` are in
    /// flight to it (`force`: regardless, as Ra sends a new leader's noop), the batch no larger than what
    /// the pipeline has room for.
    pub(super) fn pipeline(
        &mut self,
        force: bool,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.role != Role::Leader {
            return Ok(());
        }
        let (last, _) = log.last_index_term();
        for peer in self.others() {
            let Some(p) = self.peers.get(&peer) else { continue };
            let in_flight = p.next_index.0.saturating_sub(p.match_index.0 + 1);
            let unsent = p.next_index <= last || p.commit_index_sent < self.commit_index;
            if p.status == PeerStatus::Normal && unsent && (force || in_flight < MAX_PIPELINE_COUNT) {
                let room = MAX_PIPELINE_COUNT.saturating_sub(in_flight).max(1);
                let batch = (self.cfg.max_append_entries as u64).min(room) as usize;
                self.send_rpc(&peer, batch, true, log, fx)?;
            }
        }
        Ok(())
    }

    /// Append-entries from the peer's next index (pipelined: next index moves optimistically), or a
    /// snapshot sender when the peer needs entries the log no longer has.
    pub(super) fn send_append_entries(
        &mut self,
        peer: &ServerId,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        let batch = self.cfg.max_append_entries;
        self.send_rpc(peer, batch, true, log, fx)
    }

    /// [`Server::make_rpc`] to a peer whose status is normal.
    fn send_rpc(
        &mut self,
        peer: &ServerId,
        batch: usize,
        advance: bool,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.peers.get(peer).is_some_and(|p| p.status == PeerStatus::Normal) {
            self.make_rpc(peer, batch, advance, log, fx)?;
        }
        Ok(())
    }

    /// Ra's `make_rpc_effect`: up to `batch` entries from the peer's next index (which moves past them
    /// when `advance`), or a snapshot sender when the peer needs entries the log no longer has.
    fn make_rpc(
        &mut self,
        peer: &ServerId,
        batch: usize,
        advance: bool,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        let Some(p) = self.peers.get(peer).cloned() else { return Ok(()) };
        let first = log.first_index();
        if let Some((snap_index, _)) = log.snapshot_index_term()
            && p.next_index < first
        {
            if let Some(pm) = self.peers.get_mut(peer) {
                pm.status = PeerStatus::SendingSnapshot;
            }
            fx.push(Effect::StartSnapshotSender { peer: peer.clone(), index: snap_index });
            return Ok(());
        }
        let (last, _) = log.last_index_term();
        let prev_index = LogIndex(p.next_index.0.saturating_sub(1));
        let Some(prev_term) = log.term_at(prev_index)? else {
            return Err(StorageError::MissingEntry {
                uid: crate::types::Uid(self.cfg.id.0.clone()),
                index: prev_index,
            });
        };
        let mut entries = Vec::new();
        let mut i = p.next_index;
        while i <= last && entries.len() < batch {
            let Some((t, payload)) = log.fetch(i)? else {
                return Err(StorageError::MissingEntry { uid: crate::types::Uid(self.cfg.id.0.clone()), index: i });
            };
            entries.push(Entry { index: i, term: t, payload });
            i = LogIndex(i.0 + 1);
        }
        if advance && let Some(pm) = self.peers.get_mut(peer) {
            pm.next_index = i;
            pm.commit_index_sent = self.commit_index;
        }
        let prev_index = if p.next_index.0 == 0 { LogIndex(0) } else { prev_index };
        fx.push(Effect::Send {
            to: peer.clone(),
            msg: Message::AppendEntries {
                term: self.current_term,
                prev_index,
                prev_term,
                entries,
                commit: self.commit_index,
            },
        });
        Ok(())
    }

    pub(super) fn advance_commit(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        if self.role != Role::Leader {
            return Ok(());
        }
        // Ra's `agreed_commit`: of the n indexes `match_indexes` lists, the (n/2+1)-th highest. With the
        // leader a voter, n is the configuration's voters and that is a quorum of them; a leader that
        // removed itself is one index more, and the rule still needs a majority of the voters (⌊(v+1)/2⌋
        // of v voters besides itself, which overlaps every election quorum of ⌊v/2⌋+1).
        let mut written = self.match_indexes(log);
        written.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&candidate) = written.get(written.len() / 2) else { return Ok(()) };
        if candidate > self.commit_index && log.term_at(candidate)? == Some(self.current_term) {
            self.commit_index = candidate;
            self.apply(log, fx, true)?;
        }
        Ok(())
    }
}
