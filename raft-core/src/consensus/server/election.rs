//! Roles and elections: stepping down on a higher term, following a leader, the pre-vote round the
//! election timer starts, votes, and becoming leader (its first entry, its peers, its first RPCs).

use crate::consensus::RaftLog;
use crate::storage::StorageError;
use crate::types::{LogIndex, Term};

use super::{Effect, EntryBody, Message, Peer, PeerStatus, Role, Server, ServerId, Timer};

impl Server {
    /// Steps down to follower in `term` (a higher term was seen): term persisted, vote cleared.
    pub(super) fn become_follower(
        &mut self,
        term: Term,
        leader: Option<ServerId>,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        assert!(term >= self.current_term, "terms never go back");
        if self.receiving_snapshot.is_some() && (term > self.current_term || self.leader != leader) {
            // Ra aborts a snapshot receive on a higher term or another leader.
            self.abort_receive(log, fx)?;
        }
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
            fx.push(Effect::PersistTermAndVote { term, voted_for: None });
        }
        if self.role == Role::Leader {
            fx.push(Effect::CancelTimer(Timer::Heartbeat));
            for peer in self.peers.keys() {
                fx.push(Effect::CancelTimer(Timer::SnapshotRetry(peer.clone())));
            }
            self.peers.clear();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        let t = self.election_timer();
        fx.push(t);
        Ok(())
    }

    /// A message from a leader of `term` (≥ ours): follow it, or just restart the election timer.
    pub(super) fn follow(
        &mut self,
        term: Term,
        leader: &ServerId,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if term > self.current_term || self.role != Role::Follower || self.leader.as_ref() != Some(leader) {
            self.become_follower(term, Some(leader.clone()), log, fx)?;
        } else {
            let t = self.election_timer();
            fx.push(t);
        }
        Ok(())
    }

    pub(super) fn log_up_to_date(&self, last_index: LogIndex, last_term: Term, log: &dyn RaftLog) -> bool {
        let (my_index, my_term) = log.last_index_term();
        (last_term, last_index) >= (my_term, my_index)
    }

    /// The election timer fired: a pre-vote round (never while leading or receiving a snapshot).
    pub(super) fn election_timeout(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        if self.role == Role::Leader || self.receiving_snapshot.is_some() {
            if self.receiving_snapshot.is_some() {
                let t = self.election_timer();
                fx.push(t);
            }
            return Ok(());
        }
        // Ra's `handle_follower(election_timeout, …)`: a non-voter never campaigns.
        if !self.membership().is_voter() {
            return Ok(());
        }
        // Ra's `handle_candidate(election_timeout, …)`: a candidate calls the next election at once.
        if self.role == Role::Candidate {
            return self.start_election(log, fx);
        }
        // Ra: an election timeout in `await_condition` calls a pre-vote election too.
        if self.awaiting.take().is_some() {
            fx.push(Effect::CancelTimer(Timer::AwaitCondition));
        }
        // Ra's `call_for_election(pre_vote, …)`: a pre-vote round in the current term, this server's vote
        // in that term given to itself (durably, before the requests go out).
        self.role = Role::PreVoteCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone());
        if self.voted_for.as_ref() != Some(&self.cfg.id) {
            self.voted_for = Some(self.cfg.id.clone());
            fx.push(Effect::PersistTermAndVote { term: self.current_term, voted_for: Some(self.cfg.id.clone()) });
        }
        let (li, lt) = log.last_index_term();
        for peer in self.others() {
            fx.push(Effect::Send {
                to: peer,
                msg: Message::PreVote { term: self.current_term, last_index: li, last_term: lt },
            });
        }
        let t = self.election_timer();
        fx.push(t);
        if self.votes.len() >= self.quorum() {
            self.start_election(log, fx)?;
        }
        Ok(())
    }

    /// A pre-vote request (Ra's `process_pre_vote`, reached from every state).
    pub(super) fn pre_vote(
        &mut self,
        from: ServerId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.role == Role::Leader && term <= self.current_term {
            // Ra's process_pre_vote on a leader: enforce leadership (make_all_rpcs).
            self.make_all_rpcs(log, fx)?;
            return Ok(());
        }
        if self.role == Role::Leader || (self.role == Role::Candidate && term > self.current_term) {
            // A higher term from a peer: Ra's leader (or candidate) steps down and answers as a follower
            // (a leader ignores one from a server not in its cluster: `peer(Cand)`).
            if self.role == Role::Leader && !self.peers.contains_key(&from) {
                return Ok(());
            }
            self.become_follower(term, None, log, fx)?;
        }
        // Ra: a non-voter follower ignores pre-votes.
        if self.role == Role::Follower && !self.membership().is_voter() {
            return Ok(());
        }
        if term < self.current_term {
            fx.push(Effect::Send { to: from, msg: Message::PreVoteReply { term: self.current_term, granted: false } });
            return Ok(());
        }
        // "Pre-vote must not set voted_for, but should still update current_term to retain the highest
        // known term" (Ra 3.1.10): a higher term is adopted (durably) without a vote.
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
            fx.push(Effect::PersistTermAndVote { term, voted_for: None });
        }
        if self.log_up_to_date(last_index, last_term, log) {
            fx.push(Effect::Send { to: from, msg: Message::PreVoteReply { term, granted: true } });
        } else if self.role == Role::Follower {
            // A follower declines in silence and restarts its election timer (`start_election_timeout`).
            let t = self.election_timer();
            fx.push(t);
        } else {
            fx.push(Effect::Send { to: from, msg: Message::PreVoteReply { term, granted: false } });
        }
        Ok(())
    }

    /// A pre-vote answer.
    pub(super) fn pre_vote_reply(
        &mut self,
        from: ServerId,
        term: Term,
        granted: bool,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if term > self.current_term {
            self.become_follower(term, None, log, fx)?;
            return Ok(());
        }
        // Ra counts a grant only from this round (term equal to ours).
        // Only the members asked count (Ra counts replies, which only the peers it asked send).
        if self.role == Role::PreVoteCandidate
            && granted
            && term == self.current_term
            && self.cluster().contains_key(&from)
        {
            self.votes.insert(from);
            if self.votes.len() >= self.quorum() {
                self.start_election(log, fx)?;
            }
        }
        Ok(())
    }

    /// A vote request.
    pub(super) fn request_vote(
        &mut self,
        from: ServerId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.role == Role::Leader && term > self.current_term && !self.peers.contains_key(&from) {
            return Ok(()); // Ra's leader ignores a vote request from a server not in its cluster
        }
        // Ra: a non-voter ignores vote requests (its term is not even raised).
        if !self.membership().is_voter() {
            return Ok(());
        }
        if term > self.current_term {
            self.become_follower(term, None, log, fx)?;
        }
        let can_vote = self.voted_for.is_none() || self.voted_for.as_ref() == Some(&from);
        let granted = term == self.current_term && can_vote && self.log_up_to_date(last_index, last_term, log);
        if granted {
            if self.voted_for.is_none() {
                self.voted_for = Some(from.clone());
                // Durable before the reply below.
                fx.push(Effect::PersistTermAndVote { term: self.current_term, voted_for: Some(from.clone()) });
            }
            let t = self.election_timer();
            fx.push(t);
        }
        fx.push(Effect::Send { to: from, msg: Message::RequestVoteReply { term: self.current_term, granted } });
        Ok(())
    }

    /// A vote answer.
    pub(super) fn request_vote_reply(
        &mut self,
        from: ServerId,
        term: Term,
        granted: bool,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if term > self.current_term {
            self.become_follower(term, None, log, fx)?;
            return Ok(());
        }
        if self.role == Role::Candidate && term == self.current_term && granted && self.cluster().contains_key(&from) {
            self.votes.insert(from);
            if self.votes.len() >= self.quorum() {
                self.become_leader(log, fx)?;
            }
        }
        Ok(())
    }

    pub(super) fn start_election(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        self.role = Role::Candidate;
        self.current_term = Term(self.current_term.0.saturating_add(1));
        self.voted_for = Some(self.cfg.id.clone());
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone());
        fx.push(Effect::PersistTermAndVote { term: self.current_term, voted_for: Some(self.cfg.id.clone()) });
        let (li, lt) = log.last_index_term();
        for peer in self.others() {
            fx.push(Effect::Send {
                to: peer,
                msg: Message::RequestVote { term: self.current_term, last_index: li, last_term: lt },
            });
        }
        let t = self.election_timer();
        fx.push(t);
        if self.votes.len() >= self.quorum() {
            // A single-member cluster.
            self.become_leader(log, fx)?;
        }
        Ok(())
    }

    pub(super) fn become_leader(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.votes.clear();
        // Ra's `become(leader, …)`: no membership change before this term's noop is applied.
        self.cluster.change_permitted = false;
        fx.push(Effect::CancelTimer(Timer::Election));
        let (last, _) = log.last_index_term();
        self.peers = self
            .others()
            .into_iter()
            .map(|p| {
                (
                    p,
                    Peer {
                        next_index: LogIndex(last.0 + 1),
                        match_index: LogIndex(0),
                        status: PeerStatus::Normal,
                        snapshot_failures: 0,
                        commit_index_sent: LogIndex(0),
                    },
                )
            })
            .collect();
        // Ra's leader first ticks (`make_rpcs`: an empty append-entries after its last index, which makes
        // followers end their logs there), then appends its term's noop (carrying the machine version)
        // and pipelines it regardless of what is in flight.
        self.make_all_rpcs(log, fx)?;
        log.append(LogIndex(last.0 + 1), self.current_term, EntryBody::Noop.encode())?;
        self.pipeline(true, log, fx)?;
        fx.push(Effect::SetTimer { timer: Timer::Heartbeat, after_ms: self.cfg.heartbeat_ms });
        Ok(())
    }
}
