//! Snapshot transfer: a follower receiving one (the pre-phase's live entries, the chunks, the receive
//! timeout, declining a snapshot it already holds), the leader's bookkeeping of its senders (finished,
//! failed, backoff and retry), and the install's completion.

use crate::bugs::Bug;
use crate::consensus::RaftLog;
use crate::consensus::kv::KvState;
use crate::storage::StorageError;
use crate::storage::snapshot::SnapshotMeta;
use crate::types::{LogIndex, Term};

use super::{
    Effect, Entry, Message, PeerStatus, RECEIVE_SNAPSHOT_TIMEOUT_MS, Role, Server, ServerId, Timer, snapshot_backoff_ms,
};

impl Server {
    /// Ra's `mismatch_append_entries_reply(Term, LastApplied)`: tells a (possibly stale) leader where we
    /// are, so it skips ahead instead of sending a snapshot we do not need.
    /// Where this server's log is, for a mismatch reply: the next index it wants, its last written index
    /// and that entry's term.
    pub(super) fn log_position(&self, log: &dyn RaftLog) -> (LogIndex, LogIndex, Term) {
        let (li, lt) = log.last_written();
        (LogIndex(self.last_applied.0.max(li.0).saturating_add(1)), li, lt)
    }

    pub(super) fn reply_already_have(&self, leader: &ServerId, log: &dyn RaftLog, fx: &mut Vec<Effect>) {
        let (next_index, last_index, last_term) = self.log_position(log);
        let msg =
            Message::AppendEntriesReply { term: self.current_term, success: false, next_index, last_index, last_term };
        fx.push(Effect::Send { to: leader.clone(), msg });
    }

    /// Declines a snapshot this server already holds; the reply goes to the sender (Ra: the reply to
    /// the sender's call).
    pub(super) fn decline_snapshot(&self, sender: &ServerId, log: &dyn RaftLog, fx: &mut Vec<Effect>) {
        let (next_index, last_index, last_term) = self.log_position(log);
        let msg = Message::InstallSnapshotDeclined { term: self.current_term, next_index, last_index, last_term };
        fx.push(Effect::Send { to: sender.clone(), msg });
    }

    /// The common start of both snapshot messages: a stale term, a snapshot not above what we applied,
    /// or one whose last entry our written log already holds gets a mismatch reply (Ra: the leader skips
    /// ahead); otherwise follow the sender and (re)arm the receive timeout. Returns whether to go on
    /// receiving.
    pub(super) fn begin_receive(
        &mut self,
        term: Term,
        from: &ServerId,
        (index, snapshot_term): (LogIndex, Term),
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<bool, StorageError> {
        if term < self.current_term {
            self.reply_already_have(from, log, fx);
            return Ok(false);
        }
        self.follow(term, from, log, fx)?;
        if self.receiving_snapshot.is_some_and(|r| r != index) {
            // Ra: another snapshot's start while receiving means the transfer was restarted.
            self.abort_receive(log, fx)?;
        }
        if index <= self.last_applied {
            self.decline_snapshot(from, log, fx);
            return Ok(false);
        }
        // Raft §7: a log that already holds the snapshot's last entry, written, keeps what follows it
        // (the leader may have counted those entries towards a commit); `snapshot-over-written-log`
        // restores Ra's install, which discards them. (Not asked again once a receive has begun: its
        // pre-phase may itself write that entry.)
        if self.receiving_snapshot.is_none()
            && !self.cfg.bugs.has(Bug::SnapshotOverWrittenLog)
            && index <= log.last_written().0
            && log.term_at(index)? == Some(snapshot_term)
        {
            self.decline_snapshot(from, log, fx);
            return Ok(false);
        }
        if self.receiving_snapshot.is_none() {
            self.receive_has_live = false;
        }
        self.receiving_snapshot = Some(index);
        fx.push(Effect::SetTimer { timer: Timer::ReceiveSnapshot, after_ms: RECEIVE_SNAPSHOT_TIMEOUT_MS });
        Ok(true)
    }

    /// Ra's `abort_receive`: the partial snapshot goes, and for a snapshot with live entries the log is
    /// reset to the last applied index again (`ra_log:set_last_index`, when `snapshot_has_live_indexes`),
    /// since the sparse entries above it are not a log the leader can append to.
    pub(super) fn abort_receive(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        self.receiving_snapshot = None;
        self.awaiting_pending = None;
        fx.push(Effect::CancelTimer(Timer::ReceiveSnapshot));
        fx.push(Effect::AbortSnapshotAccept);
        if std::mem::take(&mut self.receive_has_live) {
            log.set_last_index(self.last_applied)?;
        }
        Ok(())
    }

    /// A chunk of a snapshot from the leader's sender.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn install_snapshot(
        &mut self,
        from: ServerId,
        term: Term,
        meta: SnapshotMeta,
        chunk: u32,
        last: bool,
        data: Vec<u8>,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if !self.begin_receive(term, &from, (meta.index, meta.term), log, fx)? {
            return Ok(());
        }
        // Ra 3.0.0+: the last chunk of a snapshot with live entries waits (unanswered) until the log has
        // nothing pending, so the install cannot become durable before the live entries it names;
        // `install-before-live-written` restores the install at once.
        if last && self.receive_has_live && log.has_pending() && !self.cfg.bugs.has(Bug::InstallBeforeLiveWritten) {
            let msg = Message::InstallSnapshot { term, meta, chunk, last, data };
            self.awaiting_pending = Some((from, msg));
            return Ok(());
        }
        fx.push(Effect::AcceptSnapshotChunk { meta, chunk, last, data, leader: from.clone() });
        fx.push(Effect::Send { to: from, msg: Message::InstallSnapshotAck { term: self.current_term, chunk } });
        Ok(())
    }

    /// The live entries of a snapshot (Ra's `init` and `pre` phases in one message), written sparsely
    /// above the log.
    pub(super) fn install_snapshot_live(
        &mut self,
        from: ServerId,
        term: Term,
        meta: SnapshotMeta,
        entries: Vec<Entry>,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        // A receive starts here (none under way, or another snapshot's, which `begin_receive` aborts).
        let starts = self.receiving_snapshot != Some(meta.index);
        if !self.begin_receive(term, &from, (meta.index, meta.term), log, fx)? {
            return Ok(());
        }
        if !entries.is_empty() {
            self.receive_has_live = true;
        }
        if starts && !entries.is_empty() {
            // Ra's `handle_follower(#install_snapshot_rpc{chunk_state = {0, init}})` (Ra sends `init` only
            // for a snapshot with live indexes, since 3.1.9): the log ends at the last applied index
            // (`ra_log:set_last_index(LastApplied)`) before the pre-phase writes the live entries above
            // it — written entries above it leave the log, whatever their term. The cut is in memory
            // only: a live entry the log held is then written again, and if the server restarts before
            // the install, its sparse entries are flushed into a segment whose range shadows the held
            // entries after it, and recovery ends the log at the first one it lacks — acknowledged
            // entries lost (`receive-cut-loses-written`, found by `sim hunt`). Fixed: a live entry the
            // log holds with the same term vouches for every entry up to it (log matching), so the log
            // is cut after the highest such entry instead, and that entry is not written again.
            let keep_to = if self.cfg.bugs.has(Bug::ReceiveCutLosesWritten) {
                self.last_applied
            } else {
                let (last, _) = log.last_index_term();
                let mut keep_to = self.last_applied;
                for e in &entries {
                    if e.index > keep_to && e.index <= last && log.term_at(e.index)? == Some(e.term) {
                        keep_to = e.index;
                    }
                }
                keep_to
            };
            log.set_last_index(keep_to)?;
        }
        // Ra writes every live entry above the last applied index, at every `pre` phase (a new sender's
        // `init` restarts a receive under way). One the log holds with the same term and has written
        // need not go again. One still pending goes again only if the WAL restarted since the log cast
        // it — it may have been lost with the old WAL's mailbox, and nothing else writes it again while
        // the install's last chunk waits for it (hunt seed 7, run 9170). While its WAL lives, a second
        // copy would be staged in a new mem table with the first still queued: the log's pending set is
        // by index, so the first copy's `Written` takes the second as durable, and a log tier restart
        // that loses part of the second, whose recovered part the WAL then flushes again, makes a
        // segment whose range cuts off the older segments above its first index (`compact_segrefs`) —
        // live entries lost (hunt seed 12, run 7998, reached by a duplicated live-entries message).
        let written = log.last_written().0;
        let pending_lost = log.pending_may_be_lost();
        for e in entries {
            let held = log.term_at(e.index)? == Some(e.term) && (e.index <= written || !pending_lost);
            if e.index > self.last_applied && !held {
                log.write_sparse(e.index, e.term, e.payload)?;
            }
        }
        fx.push(Effect::Send { to: from, msg: Message::InstallSnapshotLiveAck { term: self.current_term } });
        Ok(())
    }

    /// A receive made no progress for `RECEIVE_SNAPSHOT_TIMEOUT_MS`: abandon it.
    pub(super) fn receive_timeout(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        if self.receiving_snapshot.is_some() {
            self.abort_receive(log, fx)?;
            self.arm_follower_timer(log, fx);
        }
        Ok(())
    }

    /// A peer's snapshot backoff is over: try it again.
    pub(super) fn snapshot_retry(
        &mut self,
        peer: ServerId,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        // Ra's `handle_leader({snapshot_retry_timeout, PeerId})`: a peer still in backoff is sent the
        // current snapshot (whether or not its next index still needs one).
        if self.role == Role::Leader
            && let Some(p) = self.peers.get_mut(&peer)
            && matches!(p.status, PeerStatus::SnapshotBackoff(_))
            && let Some((index, _)) = log.snapshot_index_term()
        {
            p.status = PeerStatus::SendingSnapshot;
            fx.push(Effect::StartSnapshotSender { peer, index });
        }
        Ok(())
    }

    /// The snapshot sender for `peer` finished: the follower continues from after the snapshot.
    pub(super) fn snapshot_sender_finished(
        &mut self,
        peer: ServerId,
        index: LogIndex,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.role == Role::Leader
            && let Some(p) = self.peers.get_mut(&peer)
            && p.status == PeerStatus::SendingSnapshot
        {
            // Only the follower's own reply (after its install) says what it holds: match index
            // is not raised here (Ra: `install_snapshot_result`).
            p.status = PeerStatus::Normal;
            p.snapshot_failures = 0;
            p.next_index = p.next_index.max(LogIndex(index.0.saturating_add(1)));
            p.commit_index_sent = index;
            self.maybe_promote(&peer, log, fx)?;
            self.send_append_entries(&peer, log, fx)?;
        }
        Ok(())
    }

    /// The snapshot sender for `peer` failed: back off.
    pub(super) fn snapshot_sender_failed(&mut self, peer: ServerId, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        // Ra acts only on the exit of the sender it monitors for the peer: a stale report must
        // not put a peer into backoff.
        if self.role == Role::Leader
            && let Some(p) = self.peers.get_mut(&peer)
            && p.status == PeerStatus::SendingSnapshot
        {
            p.snapshot_failures += 1;
            p.status = PeerStatus::SnapshotBackoff(p.snapshot_failures);
            fx.push(Effect::SetTimer {
                timer: Timer::SnapshotRetry(peer),
                after_ms: snapshot_backoff_ms(p.snapshot_failures),
            });
        }
        Ok(())
    }

    /// The follower's accept path refused the snapshot (a live entry it names is not in the log): the
    /// receive ends, as on Ra's `abort_receive`, and the leader's next append finds the log short and
    /// sends the snapshot again — live phase first.
    pub(super) fn snapshot_refused(
        &mut self,
        meta: &SnapshotMeta,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.receiving_snapshot == Some(meta.index) {
            self.abort_receive(log, fx)?;
            self.arm_follower_timer(log, fx);
        }
        Ok(())
    }

    /// The follower's accept path installed the snapshot: adopt its machine and tell the leader.
    pub(super) fn snapshot_installed(
        &mut self,
        meta: SnapshotMeta,
        state: Vec<u8>,
        leader: ServerId,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.receiving_snapshot != Some(meta.index) || meta.index <= self.last_applied {
            return Ok(()); // an abandoned or outdated install
        }
        self.receiving_snapshot = None;
        self.receive_has_live = false;
        self.awaiting_pending = None;
        fx.push(Effect::CancelTimer(Timer::ReceiveSnapshot));
        let Some(machine) = KvState::decode(&state) else {
            return Err(StorageError::MissingEntry {
                uid: crate::types::Uid(self.cfg.id.0.clone()),
                index: meta.index,
            });
        };
        self.machine = machine;
        if self.deferred_snapshot.take().is_some() {
            // The installed snapshot supersedes the state it would have saved.
            self.snapshot_pending = false;
        }
        self.commit_index = self.commit_index.max(meta.index);
        self.last_applied = meta.index;
        self.install_snapshot_cluster(super::decode_cluster(&meta.cluster), (meta.index, meta.term));
        fx.push(Effect::PersistLastApplied(meta.index));
        let (li, lt) = log.last_written();
        fx.push(Effect::Send {
            to: leader,
            msg: Message::AppendEntriesReply {
                term: self.current_term,
                success: true,
                next_index: LogIndex(li.0 + 1),
                last_index: li,
                last_term: lt,
            },
        });
        Ok(())
    }

    /// The log's `Written` may have cleared what the held last chunk waits for: handle it again (Ra
    /// replays the deferred event once `ra_log:has_pending` is false).
    pub(super) fn release_awaiting_chunk(
        &mut self,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.awaiting_pending.is_none() || log.has_pending() {
            return Ok(());
        }
        match self.awaiting_pending.take() {
            Some((from, msg)) if self.receiving_snapshot.is_some() => self.handle_message(from, msg, log, fx),
            _ => Ok(()),
        }
    }
}
