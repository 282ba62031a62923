//! Log replication, both sides: a follower's handling of append-entries and its reports of what it has
//! written; the leader's RPCs to each peer (pipelined from the peer's next index, or a snapshot sender
//! when the log no longer has what the peer needs), its handling of the replies, heartbeats and commit by
//! a quorum of written indexes.

use crate::bugs::Bug;
use crate::consensus::RaftLog;
use crate::storage::StorageError;
use crate::types::{LogIndex, Term};

use super::{Effect, Entry, Message, PeerStatus, Role, Server, ServerId, Timer};

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
        let (last, _) = log.last_index_term();
        let reply_fail = |log: &mut dyn RaftLog, fx: &mut Vec<Effect>, next: LogIndex, term: Term| {
            let (li, lt) = log.last_written();
            fx.push(Effect::Send {
                to: leader.clone(),
                msg: Message::AppendEntriesReply {
                    term,
                    success: false,
                    next_index: next,
                    last_index: li,
                    last_term: lt,
                },
            });
        };
        if prev_index > last {
            reply_fail(log, fx, LogIndex(last.0 + 1), self.current_term);
            return Ok(());
        }
        let below_snapshot = log.snapshot_index_term().is_some_and(|(s, _)| prev_index < s);
        if !below_snapshot {
            match log.term_at(prev_index)? {
                Some(t) if t == prev_term => {}
                _ => {
                    // Conflict: back up to before the divergence, never below what is committed.
                    let next = LogIndex(prev_index.0.max(self.commit_index.0 + 1).min(prev_index.0.max(1)));
                    reply_fail(log, fx, next, self.current_term);
                    return Ok(());
                }
            }
        }
        let mut last_new = prev_index;
        for e in entries {
            last_new = e.index;
            if log.snapshot_index_term().is_some_and(|(s, _)| e.index <= s) {
                continue;
            }
            match log.term_at(e.index)? {
                Some(t) if t == e.term => continue,
                existing => {
                    if existing.is_some() && e.index <= self.commit_index {
                        // A leader never overwrites a committed entry; a message that would is refused
                        // (the log-matching checker, not a panic, reports such a leader).
                        reply_fail(log, fx, LogIndex(self.commit_index.0.saturating_add(1)), self.current_term);
                        return Ok(());
                    }
                    log.append(e.index, e.term, e.payload)?;
                }
            }
        }
        if leader_commit > self.commit_index {
            self.commit_index = leader_commit.min(last_new.max(self.commit_index)).max(self.commit_index);
        }
        self.apply(log, fx, false)?;
        let (li, lt) = log.last_written();
        let (lasti, _) = log.last_index_term();
        fx.push(Effect::Send {
            to: leader,
            msg: Message::AppendEntriesReply {
                term: self.current_term,
                success: true,
                next_index: LogIndex(lasti.0 + 1),
                last_index: li,
                last_term: lt,
            },
        });
        Ok(())
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
        if self.role != Role::Leader || term < self.current_term {
            return Ok(());
        }
        // Log Matching: a reported written index counts only if it holds our entry there. A
        // follower that learnt of us through a failed append can make its stale older-term
        // tail durable and report it (Ra's follower sits in await_condition then and does not
        // reply); counting it would commit what no quorum holds and pin next_index above the
        // divergence. Indexes compacted into our snapshot cannot be checked and are committed.
        let ours = match log.term_at(last_index)? {
            Some(t) => t == last_term,
            None => log.snapshot_index_term().is_some_and(|(s, _)| last_index <= s),
        };
        let (last, _) = log.last_index_term();
        let Some(p) = self.peers.get_mut(&from) else { return Ok(()) };
        if success && !ours {
            return Ok(());
        }
        if success {
            p.match_index = p.match_index.max(last_index);
            // The follower's next index counts its unwritten (possibly stale) tail: never
            // past our own log, from which the next append-entries is read.
            p.next_index = p.next_index.max(next_index).min(LogIndex(last.0 + 1));
            self.advance_commit(log, fx)?;
        } else {
            // Ra: a follower reporting less than we thought it had (it lost unsynced state, or
            // an install never became durable) resets its match index; continue where it says.
            if last_index < p.match_index {
                p.match_index = last_index;
            }
            p.next_index = next_index.min(LogIndex(last.0.saturating_add(1))).max(LogIndex(1));
            self.send_append_entries(&from, log, fx)?;
        }
        Ok(())
    }

    pub(super) fn handle_written(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        match self.role {
            Role::Leader => self.advance_commit(log, fx),
            Role::Follower => {
                // Tell the leader what is now durable here.
                if let Some(leader) = self.leader.clone() {
                    let (li, lt) = log.last_written();
                    let (last, _) = log.last_index_term();
                    fx.push(Effect::Send {
                        to: leader,
                        msg: Message::AppendEntriesReply {
                            term: self.current_term,
                            success: true,
                            next_index: LogIndex(last.0 + 1),
                            last_index: li,
                            last_term: lt,
                        },
                    });
                }
                Ok(())
            }
            Role::PreVoteCandidate | Role::Candidate => Ok(()),
        }
    }

    /// The leader's heartbeat: append-entries to every peer in normal status.
    pub(super) fn heartbeat(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        if self.role == Role::Leader {
            for peer in self.others() {
                if self.peers.get(&peer).is_some_and(|p| p.status == PeerStatus::Normal) {
                    self.send_append_entries(&peer, log, fx)?;
                }
            }
            fx.push(Effect::SetTimer { timer: Timer::Heartbeat, after_ms: self.cfg.heartbeat_ms });
        }
        Ok(())
    }

    /// Ra's `make_all_rpcs`: fresh RPCs to every peer. With every fix this includes peers in snapshot
    /// backoff (their retry timer cancelled); `backoff-peer-skipped` restores the skip of PR 589 fix 4.
    pub(super) fn make_all_rpcs(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        for peer in self.others() {
            let status = self.peers.get(&peer).map(|p| p.status);
            match status {
                Some(PeerStatus::Normal) => self.send_append_entries(&peer, log, fx)?,
                Some(PeerStatus::SnapshotBackoff(_)) if !self.cfg.bugs.has(Bug::BackoffPeerSkipped) => {
                    fx.push(Effect::CancelTimer(Timer::SnapshotRetry(peer.clone())));
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.status = PeerStatus::Normal;
                    }
                    self.send_append_entries(&peer, log, fx)?;
                }
                _ => {}
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
        let Some(p) = self.peers.get(peer).cloned() else { return Ok(()) };
        if p.status != PeerStatus::Normal {
            return Ok(());
        }
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
        while i <= last && entries.len() < self.cfg.max_append_entries {
            let Some((t, payload)) = log.fetch(i)? else {
                return Err(StorageError::MissingEntry { uid: crate::types::Uid(self.cfg.id.0.clone()), index: i });
            };
            entries.push(Entry { index: i, term: t, payload });
            i = LogIndex(i.0 + 1);
        }
        if let Some(pm) = self.peers.get_mut(peer) {
            pm.next_index = i;
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
        let mut written: Vec<LogIndex> = self.peers.values().map(|p| p.match_index).collect();
        written.push(log.last_written().0);
        written.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = written[self.quorum() - 1];
        if candidate > self.commit_index && log.term_at(candidate)? == Some(self.current_term) {
            self.commit_index = candidate;
            self.apply(log, fx, true)?;
        }
        Ok(())
    }
}
