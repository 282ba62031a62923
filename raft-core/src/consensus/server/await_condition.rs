//! Ra's `await_condition` state for a follower whose append failed (`ra_server:handle_follower`'s
//! `missing` and `term_mismatch` branches, `handle_await_condition/2`, `follower_catchup_cond/3`): the
//! follower answers the failed append once and then waits, silent, for an append (or a snapshot) it can
//! take. While it waits it answers no other append — not a stale one, not a new leader's whose previous
//! entry it lacks —, takes no term from them, and reports nothing the WAL writes; after
//! `AWAIT_CONDITION_TIMEOUT_MS` it repeats its failure reply to the leader it answered and becomes a
//! plain follower again. A vote request ends the wait at once (Ra re-handles it as a follower); a
//! pre-vote is answered without ending it.
//!
//! This module owns the wait: entering it, which messages end it, and its timeout. What a follower does
//! with the message that ends it is `replication.rs`'s (and `snapshots.rs`'s) business.

use crate::consensus::RaftLog;
use crate::storage::StorageError;

use super::{AWAIT_CONDITION_TIMEOUT_MS, CatchUp, Effect, Message, PrevEntry, Server, ServerId, Timer};

/// A follower's wait.
#[derive(Debug, Clone)]
pub(super) struct Awaiting {
    /// Why it waits, which decides what ends the wait.
    pub(super) reason: CatchUp,
    /// The leader it answered, which gets the reply again at the timeout (Ra captures the reply effect
    /// when the wait begins).
    leader: ServerId,
    /// The failure reply it sent.
    reply: Message,
}

impl Server {
    /// Sends `reply` to `leader` and waits (Ra: `{await_condition, State#{condition => …}, Effects}`).
    /// The election timer stops: Ra's `await_condition` has one state timeout, the condition's.
    pub(super) fn await_catch_up(&mut self, reason: CatchUp, leader: ServerId, reply: Message, fx: &mut Vec<Effect>) {
        fx.push(Effect::Send { to: leader.clone(), msg: reply.clone() });
        fx.push(Effect::CancelTimer(Timer::Election));
        fx.push(Effect::SetTimer { timer: Timer::AwaitCondition, after_ms: AWAIT_CONDITION_TIMEOUT_MS });
        self.awaiting = Some(Awaiting { reason, leader, reply });
    }

    /// Whether `msg` ends the wait (then the wait is over and the caller handles `msg` as a follower);
    /// `false`: ignore it, without a reply.
    pub(super) fn await_admits(
        &mut self,
        msg: &Message,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<bool, StorageError> {
        let Some(awaiting) = &self.awaiting else { return Ok(true) };
        let admits = match msg {
            // Ra: `handle_await_condition(#request_vote_rpc{})` → follower, re-handled.
            Message::RequestVote { .. } => true,
            // Ra: `process_pre_vote(await_condition, …)` answers and stays.
            Message::PreVote { .. } => {
                return Ok(true);
            }
            Message::AppendEntries { term, prev_index, prev_term, .. } if *term >= self.current_term => {
                match self.prev_entry(*prev_index, *prev_term, log)? {
                    PrevEntry::Ok => true,
                    PrevEntry::TermMismatch => awaiting.reason == CatchUp::Missing,
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
        };
        if admits {
            self.end_wait(fx);
        }
        Ok(admits)
    }

    /// The wait timed out: the failure reply again, and a plain follower (Ra's `timeout` map:
    /// `effects => [Reply], transition_to => follower`).
    pub(super) fn await_timeout(&mut self, fx: &mut Vec<Effect>) {
        if let Some(awaiting) = self.awaiting.take() {
            fx.push(Effect::Send { to: awaiting.leader, msg: awaiting.reply });
            let t = self.election_timer();
            fx.push(t);
        }
    }

    /// Back to a plain follower, its election timer running (Ra's `follower(enter, …)`).
    pub(super) fn end_wait(&mut self, fx: &mut Vec<Effect>) {
        if self.awaiting.take().is_some() {
            fx.push(Effect::CancelTimer(Timer::AwaitCondition));
            let t = self.election_timer();
            fx.push(t);
        }
    }
}
