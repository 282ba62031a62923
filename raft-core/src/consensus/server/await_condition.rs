//! Ra's `await_condition` state (`ra_server:handle_await_condition/2`, `ra_server_proc:await_condition/3`):
//! a server waits, silent, for a condition, which every message it receives is checked against — a
//! message that meets it ends the wait and is handled as usual; one that does not is dropped. Ra enters
//! it in four places, each a [`Condition`]:
//!
//! - a follower's append failed because the previous entry is missing or of another term
//!   (`follower_catchup_cond/3`): it answers once and waits for an append (or a snapshot) it can take;
//!   after `AWAIT_CONDITION_TIMEOUT_MS` it repeats its failure reply and becomes a plain follower;
//! - a follower's append found the WAL down (`wal_down_condition/2`): no answer, and any message once the
//!   WAL is registered again ends the wait (30 s at most);
//! - a leader's append — a command, its term's noop, a cluster change — found the WAL down: the client
//!   is told, and the same condition takes it back to leader; still down after 5 s, the leader hands its
//!   leadership to its first peer (`transfer_leadership`) and leads on meanwhile;
//! - a leader transferring leadership (`transfer_leadership_condition/2`): an append or snapshot of a
//!   higher term ends the wait, as a follower; after 30 s it leads again.
//!
//! While it waits a server answers no append, takes no term from one, and reports nothing the WAL
//! writes; a vote request ends any wait (Ra re-handles it as a follower: a waiting leader steps down); a
//! pre-vote is answered without ending it (Ra's `process_pre_vote(await_condition, …)`, which takes a
//! higher term) — except by a waiting leader when the pre-vote's term is higher: Ra's leader takes the
//! term and leads in it when its wait ends, in a term it never won (`waiting-leader-takes-term`); here it
//! steps down first. Commands are turned away with no leader named; the leader's tick sends nothing and
//! its snapshot retries wait with it.
//!
//! This module owns the waits: entering them, which messages end them, their timeouts and the leader's
//! transfer. What a server does with the message that ends a wait is its concern's module's business.

use crate::bugs::Bug;
use crate::consensus::RaftLog;
use crate::storage::StorageError;
use crate::types::LogIndex;

use super::{
    AWAIT_CONDITION_TIMEOUT_MS, Condition, Effect, EntryBody, LEADER_WAL_DOWN_TIMEOUT_MS, Message, PrevEntry, Role,
    Server, ServerId, Timer,
};

/// A server's wait.
#[derive(Debug, Clone)]
pub(super) struct Awaiting {
    /// Why it waits, which decides what ends the wait.
    pub(super) reason: Condition,
    /// A follower catching up: the leader it answered and its failure reply, sent again at the timeout
    /// (Ra captures the reply effect when the wait begins).
    answered: Option<(ServerId, Message)>,
    /// A leader's snapshot retries that fired while it waited (Ra postpones them until it leads again).
    postponed_retries: Vec<ServerId>,
}

impl Server {
    /// Sends `reply` to `leader` and waits (Ra: `{await_condition, State#{condition => …}, Effects}`).
    /// The election timer stops: Ra's `await_condition` has one state timeout, the condition's.
    pub(super) fn await_catch_up(&mut self, reason: Condition, leader: ServerId, reply: Message, fx: &mut Vec<Effect>) {
        fx.push(Effect::Send { to: leader.clone(), msg: reply.clone() });
        self.begin_wait(reason, Some((leader, reply)), AWAIT_CONDITION_TIMEOUT_MS, fx);
    }

    /// An append found the WAL down: a follower waits for it (30 s), a leader too (5 s, then it hands
    /// its leadership over).
    pub(super) fn await_wal(&mut self, fx: &mut Vec<Effect>) {
        if self.role == Role::Leader {
            self.begin_wait(Condition::LeaderWalDown, None, LEADER_WAL_DOWN_TIMEOUT_MS, fx);
        } else {
            self.begin_wait(Condition::WalDown, None, AWAIT_CONDITION_TIMEOUT_MS, fx);
        }
    }

    fn begin_wait(&mut self, reason: Condition, answered: Option<(ServerId, Message)>, ms: u64, fx: &mut Vec<Effect>) {
        if self.role != Role::Leader {
            fx.push(Effect::CancelTimer(Timer::Election));
        }
        fx.push(Effect::SetTimer { timer: Timer::AwaitCondition, after_ms: ms });
        self.awaiting = Some(Awaiting { reason, answered, postponed_retries: Vec::new() });
    }

    /// Whether `msg` ends the wait (then the wait is over and the caller handles `msg` as usual);
    /// `false`: ignore it, without a reply.
    pub(super) fn await_admits(
        &mut self,
        msg: &Message,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<bool, StorageError> {
        let Some(awaiting) = &self.awaiting else { return Ok(true) };
        let reason = awaiting.reason;
        // Ra: `process_pre_vote(await_condition, …)` answers and stays; a vote request makes any waiting
        // server a follower and is re-handled as one.
        match msg {
            // Ra's `handle_await_condition(election_timeout)` calls a pre-vote election (a leader ignores it).
            Message::PreVote { .. } | Message::ElectionTimeout => return Ok(true),
            Message::RequestVote { .. } => {
                self.end_wait_as_follower(log, fx);
                return Ok(true);
            }
            _ => {}
        }
        let admits = match reason {
            Condition::Missing | Condition::TermMismatch => match msg {
                Message::AppendEntries { term, prev_index, prev_term, .. } if *term >= self.current_term => {
                    match self.prev_entry(*prev_index, *prev_term, log)? {
                        PrevEntry::Ok => true,
                        PrevEntry::TermMismatch => reason == Condition::Missing,
                        PrevEntry::Missing => false,
                    }
                }
                Message::InstallSnapshot { term, meta, .. } | Message::InstallSnapshotLive { term, meta, .. }
                    if *term >= self.current_term =>
                {
                    // Ra: the snapshot's index is at least the log's next index.
                    meta.index.0 > log.last_index_term().0.0
                }
                _ => false,
            },
            // Ra's `wal_down_condition`: any message, once the WAL is registered again.
            Condition::WalDown | Condition::LeaderWalDown => log.can_write(),
            // Ra's `transfer_leadership_condition`: a newer leader's append or snapshot.
            Condition::TransferLeadership => match msg {
                Message::AppendEntries { term, .. }
                | Message::InstallSnapshot { term, .. }
                | Message::InstallSnapshotLive { term, .. } => *term > self.current_term,
                _ => false,
            },
        };
        if admits {
            match reason {
                Condition::LeaderWalDown => self.end_wait_as_leader(log, fx)?,
                Condition::TransferLeadership => self.end_wait_as_follower(log, fx),
                _ => self.end_wait(log, fx),
            }
        }
        Ok(admits)
    }

    /// The wait timed out (Ra's `await_condition_timeout`: the condition once more, then the timeout's
    /// effects and state).
    pub(super) fn await_timeout(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        let Some(awaiting) = &self.awaiting else { return Ok(()) };
        match awaiting.reason {
            // `effects => [Reply], transition_to => follower`.
            Condition::Missing | Condition::TermMismatch => {
                if let Some((leader, reply)) = self.awaiting.take().and_then(|a| a.answered) {
                    fx.push(Effect::Send { to: leader, msg: reply });
                }
                self.arm_follower_timer(log, fx);
            }
            Condition::WalDown => {
                self.awaiting = None;
                self.arm_follower_timer(log, fx);
            }
            // Back to leader either way; still down, `{transfer_leadership, FirstPeer}` (Ra: "TODO: pick
            // peer with highest match_index") — the first other member of the cluster map.
            Condition::LeaderWalDown => {
                let still_down = !log.can_write();
                self.end_wait_as_leader(log, fx)?;
                if still_down && let Some(peer) = self.others().into_iter().next() {
                    self.transfer_leadership(peer, log, fx);
                }
            }
            // `timeout => #{transition_to => leader}`.
            Condition::TransferLeadership => self.end_wait_as_leader(log, fx)?,
        }
        Ok(())
    }

    /// A follower's wait ends: a plain follower again, its election timer running (Ra's
    /// `follower(enter, …)`; a follower catching up always knows the leader it answered, whose monitor
    /// arms Ra's timer even on a new server).
    pub(super) fn end_wait(&mut self, log: &dyn RaftLog, fx: &mut Vec<Effect>) {
        if self.awaiting.take().is_some() {
            fx.push(Effect::CancelTimer(Timer::AwaitCondition));
            self.arm_follower_timer(log, fx);
        }
    }

    /// Any wait ends in `follower` (a vote request; a transfer's newer leader): a waiting leader leaves
    /// its leadership in its term, as Ra's `transition_to => follower` does.
    pub(super) fn end_wait_as_follower(&mut self, log: &dyn RaftLog, fx: &mut Vec<Effect>) {
        if self.role == Role::Leader {
            self.awaiting = None;
            fx.push(Effect::CancelTimer(Timer::AwaitCondition));
            self.leave_leadership(fx);
            self.arm_follower_timer(log, fx);
        } else {
            self.end_wait(log, fx);
        }
    }

    /// A leader's wait ends in `leader`: its postponed snapshot retries run, and a term still without an
    /// entry of its own gets its noop now. Ra drops a noop the down WAL refused (`handle_leader({command,
    /// Noop})` → `append_error_reply`, and nobody asked for it) and does not send it again: the term then
    /// commits nothing — not even its predecessors' entries, which count only through an entry of the
    /// current term — until a client's command arrives, and an idle group stays with members that applied
    /// different indexes (`converges`, found by `sim hunt`). `leader-noop-dropped` restores Ra's.
    fn end_wait_as_leader(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        let Some(awaiting) = self.awaiting.take() else { return Ok(()) };
        fx.push(Effect::CancelTimer(Timer::AwaitCondition));
        for peer in awaiting.postponed_retries {
            self.snapshot_retry(peer, log, fx)?;
        }
        let (last, last_term) = log.last_index_term();
        if !self.cfg.bugs.has(Bug::LeaderNoopDropped)
            && self.role == Role::Leader
            && last_term < self.current_term
            && log.can_write()
            && self.leader_append(LogIndex(last.0 + 1), EntryBody::Noop.encode(), log, fx)?
        {
            self.pipeline(true, log, fx)?;
        }
        Ok(())
    }

    /// Ra's `await_condition({timeout, {snapshot_retry, _}}, …)`: postponed until the server leads again.
    pub(super) fn postpone_snapshot_retry(&mut self, peer: ServerId) {
        if let Some(awaiting) = self.awaiting.as_mut()
            && !awaiting.postponed_retries.contains(&peer)
        {
            awaiting.postponed_retries.push(peer);
        }
    }

    /// Ra's `handle_leader({transfer_leadership, ServerId})`: to an up-to-date voter (its next index the
    /// leader's), an `election_timeout` and a wait for a newer leader; otherwise nothing
    /// (`{error, non_voter}`, `{error, not_up_to_date}` to nobody).
    fn transfer_leadership(&mut self, peer: ServerId, log: &dyn RaftLog, fx: &mut Vec<Effect>) {
        let voter = self.cluster().get(&peer).is_some_and(|m| m.is_voter());
        let next = LogIndex(log.last_index_term().0.0 + 1);
        let up_to_date = self.peers.get(&peer).is_some_and(|p| p.next_index == next);
        if !voter || !up_to_date {
            return;
        }
        fx.push(Effect::Send { to: peer, msg: Message::ElectionTimeout });
        self.begin_wait(Condition::TransferLeadership, None, AWAIT_CONDITION_TIMEOUT_MS, fx);
    }
}
