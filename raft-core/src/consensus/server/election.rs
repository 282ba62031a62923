//! Roles and elections: stepping down on a higher term, following a leader, which followers arm an
//! election timer (a new server does not) and `trigger_election`, the pre-vote round the election timer
//! starts, votes, and becoming leader (its first entry, its peers, its first RPCs).

use crate::bugs::Bug;
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
        self.leave_leadership(fx);
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.arm_follower_timer(log, fx);
        Ok(())
    }

    /// A leader becomes a follower in its term: its heartbeat and snapshot retries stop, its peers go.
    pub(super) fn leave_leadership(&mut self, fx: &mut Vec<Effect>) {
        if self.role == Role::Leader {
            fx.push(Effect::CancelTimer(Timer::Heartbeat));
            for peer in self.peers.keys() {
                fx.push(Effect::CancelTimer(Timer::SnapshotRetry(peer.clone())));
            }
            self.peers.clear();
            self.role = Role::Follower;
            self.leader = None;
        }
    }

    /// Ra's `ra_server_proc:follower(enter, …)`: a follower arms its election timer unless its server is
    /// new (`ra_server:is_new`: nothing in the log above index 0 and no snapshot) — a new cluster's
    /// elections are triggered explicitly (`trigger_election`), and a server joining a running cluster
    /// waits for the leader. A known leader stands for Ra's process monitor on it, which arms the timer
    /// when the leader dies, new server or not.
    pub(super) fn arm_follower_timer(&mut self, log: &dyn RaftLog, fx: &mut Vec<Effect>) {
        if !is_new(log) || self.leader.is_some() {
            let t = self.election_timer();
            fx.push(t);
        }
    }

    /// Ra's `trigger_election` (`ra_server_proc`'s `follower` and `await_condition` clauses): a follower
    /// runs its election timeout at once; a leader, a candidate and a server receiving a snapshot only
    /// acknowledge it (a non-voter's timeout does nothing, as Ra's `handle_follower(election_timeout)`).
    pub(super) fn trigger_election(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        if self.role != Role::Follower || self.receiving_snapshot.is_some() {
            return Ok(());
        }
        self.election_timeout(log, fx)
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
        if self.counted_votes() >= self.quorum() {
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
        // (A leader that is not waiting keeps Ra's answer, below.)
        if (self.role != Role::Leader || self.awaiting.is_some()) && self.ignores_outsider(&from) {
            return Ok(());
        }
        if self.awaiting.is_some() {
            // A waiting leader that learns of a higher term steps down and answers as a follower (Ra's
            // wait takes the term and would lead in it once the WAL is back: `waiting-leader-takes-term`).
            let steps_down = self.role == Role::Leader && term > self.current_term;
            if !steps_down || self.cfg.bugs.has(Bug::WaitingLeaderTakesTerm) {
                self.pre_vote_waiting(from, term, last_index, last_term, log, fx);
                return Ok(());
            }
            self.end_wait_as_follower(log, fx);
        }
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

    /// Ra's `process_pre_vote(await_condition, …)`, for a follower or a leader that waits: a higher term
    /// is taken (durably, no vote) without leaving the wait — a waiting leader leads in it when its wait
    /// ends —, and the pre-vote is answered either way (only a plain follower declines in silence).
    fn pre_vote_waiting(
        &mut self,
        from: ServerId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
        log: &dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) {
        if term < self.current_term {
            fx.push(Effect::Send { to: from, msg: Message::PreVoteReply { term: self.current_term, granted: false } });
            return;
        }
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
            fx.push(Effect::PersistTermAndVote { term, voted_for: None });
        }
        let granted = self.log_up_to_date(last_index, last_term, log);
        fx.push(Effect::Send { to: from, msg: Message::PreVoteReply { term, granted } });
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
            if self.counted_votes() >= self.quorum() {
                self.start_election(log, fx)?;
            }
        }
        Ok(())
    }

    /// The votes of this round that count towards `quorum()`: those of voters of the configuration in
    /// force. Ra counts every grant and its own vote (`call_for_election` casts `VoteForSelf`;
    /// `handle_pre_vote`/`handle_candidate` add one per grant and compare with `required_quorum`, which
    /// counts only the configuration's voters) — so a server whose log removed it, which still takes
    /// itself for a voter (`get_membership` keeps the last known standing), counts itself towards a
    /// quorum it is not part of. Restarted with its removal uncommitted in its log, such a server won a
    /// term with one member's vote while the other two members elected another leader in the same term
    /// (`election-safety`, found by `sim hunt`). Raft counts only configuration members' votes (thesis
    /// §4.1); `removed-candidate-counts-itself` restores Ra's count.
    fn counted_votes(&self) -> usize {
        if self.cfg.bugs.has(Bug::RemovedCandidateCountsItself) {
            return self.votes.len();
        }
        let cluster = self.cluster();
        self.votes.iter().filter(|v| cluster.get(*v).is_some_and(|m| m.is_voter())).count()
    }

    /// Whether a (pre-)vote request from `from` is ignored because `from` is not in this server's
    /// configuration. Ra's leader ignores a higher-term vote request from a server not in its cluster
    /// (`handle_leader(#request_vote_rpc{})`, `peer(Cand)`), but its followers and candidates take the
    /// term of any (`handle_follower(#request_vote_rpc{})`, `process_pre_vote`): a removed member that
    /// missed its removal and became a candidate calls an election in a new term at every timeout
    /// (`handle_candidate(election_timeout)`), nobody sends it anything that ends its candidacy, and
    /// each of its requests makes the followers take its term and the leader step down at their next
    /// reply — the group churns through a term per timeout for as long as it runs (`converges`, found
    /// by `sim hunt`). raft-core's followers ignore a server outside their configuration while they
    /// know a leader, as Ra's leader does; `removed-member-disrupts` restores Ra's. Only while they know
    /// one: a server whose log ends before a member re-joined holds a configuration without it, and
    /// once the leader is gone that member's vote requests are the only way to a new leader (ignoring
    /// them left a group with no leader for good: `converges`, swarm seed 15546 of the 100,000-seed
    /// scale run). Ignoring a request never breaks safety.
    fn ignores_outsider(&self, from: &ServerId) -> bool {
        !self.cluster().contains_key(from) && self.leader.is_some() && !self.cfg.bugs.has(Bug::RemovedMemberDisrupts)
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
        if self.ignores_outsider(&from) {
            return Ok(());
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
        // Ra's `handle_follower(#request_vote_rpc{})` grants without touching the election timer.
        if granted && self.voted_for.is_none() {
            self.voted_for = Some(from.clone());
            // Durable before the reply below.
            fx.push(Effect::PersistTermAndVote { term: self.current_term, voted_for: Some(from.clone()) });
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
            if self.counted_votes() >= self.quorum() {
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
        if self.counted_votes() >= self.quorum() {
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
        fx.push(Effect::SetTimer { timer: Timer::Heartbeat, after_ms: self.cfg.heartbeat_ms });
        // A noop the WAL refused is not appended again: the term goes on without one until a command.
        if self.leader_append(LogIndex(last.0 + 1), EntryBody::Noop.encode(), log, fx)? {
            self.pipeline(true, log, fx)?;
        }
        Ok(())
    }
}

/// Ra's `ra_server:is_new/1` (`ra_log:next_index(Log) =:= 1`): the log holds only the dummy entry 0 a
/// new server writes, and no snapshot.
pub(super) fn is_new(log: &dyn RaftLog) -> bool {
    log.last_index_term().0 == LogIndex(0) && log.snapshot_index_term().is_none()
}
