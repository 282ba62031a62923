//! A Ra-style Raft server (`ra_server` + the parts of `ra_server_proc` that decide): roles follower,
//! pre-vote candidate, candidate and leader; written-index replication; snapshot transfer with backoff.
//!
//! Key invariant: the leader commits only what a majority has **written** (made durable) — followers
//! report their last written index, never their last appended one, and the leader counts its own last
//! written — and only an entry of its current term commits by counting (Raft §5.4.2).
//!
//! Calling protocol: `handle(now_ms, input, log)` returns effects that the caller executes **in order**.
//! `PersistTermAndVote` must be durable before any later effect of the same list is executed (a vote
//! reply follows it). Log writes happen through `log` during the call and are volatile; the caller
//! later feeds `Input::Written` once the log's last written index moved. Timers are named; setting one
//! replaces its previous deadline.
//!
//! Choices where Ra relies on Erlang: leaders send Ra's tick append-entries (one entry from the peer's
//! next index, which does not move) to every peer every `heartbeat_ms` (Ra sends it to stale peers once a
//! second, and uses process monitors and node failure detection instead); a follower's election timeout
//! is drawn from `[election_timeout_min_ms, election_timeout_max_ms]` with the server's own seeded
//! generator. ARCHITECTURE.md's consensus audit lists every place the server departs from Ra 3.1.10.
//!
//! Layout: `protocol` (the types a caller sees), `election`, `await_condition` (Ra's wait after a failed
//! append), `replication`, `snapshots` (transfer) and `apply` (the machine and its local snapshots); this
//! module keeps `Server`, its recovery and the dispatch of each input.

use std::collections::{BTreeMap, BTreeSet};

use crate::bugs::Bug;
use crate::consensus::RaftLog;
use crate::consensus::kv::KvState;
use crate::storage::StorageError;
use crate::types::{LogIndex, Term};

mod apply;
mod await_condition;
mod election;
mod membership;
mod protocol;
mod replication;
mod snapshots;

use await_condition::Awaiting;
use membership::ClusterState;
pub use protocol::*;

/// A Raft server.
#[derive(Debug, Clone)]
pub struct Server {
    cfg: ConsensusConfig,
    role: Role,
    current_term: Term,
    voted_for: Option<ServerId>,
    leader: Option<ServerId>,
    commit_index: LogIndex,
    last_applied: LogIndex,
    machine: KvState,
    votes: BTreeSet<ServerId>,
    peers: BTreeMap<ServerId, Peer>,
    /// The configuration in force and what Ra keeps with it (`membership.rs`).
    cluster: ClusterState,
    snapshot_pending: bool,
    /// A snapshot asked for at an applied index this server has not yet written (`TakeSnapshot`): Ra's
    /// stashed `pending_release_cursor` under the `{written, Idx}` condition (Ra 3.0.0). A machine whose
    /// state names live entries must not be snapshotted before those entries are durable here — a
    /// follower applies what it has only appended, and a leader what the others have written.
    deferred_snapshot: Option<(LogIndex, Effect)>,
    receiving_snapshot: Option<LogIndex>,
    /// The snapshot being received has live entries (Ra's `snapshot_has_live_indexes`).
    receive_has_live: bool,
    /// Its last chunk, held until nothing the log appended waits for the WAL any more (Ra's
    /// `{awaiting_pending, …}` snapshot phase): completing the install syncs the snapshot, which must not
    /// become durable before the live entries it names.
    awaiting_pending: Option<(ServerId, Message)>,
    /// Ra's `await_condition` state of a follower whose append failed (`await_condition.rs`).
    awaiting: Option<Awaiting>,
    /// The log's last written index and term when the previous input was handled: a follower reports
    /// its written index when a `Written` moved it (Ra's `handle_follower({ra_log_event, …})`).
    written_seen: (LogIndex, Term),
    rng: u64,
}

impl Server {
    /// Ra's `ra_server:init` + `recover`: a follower in `term` (with `voted_for`), its machine restored
    /// from the snapshot state (if any) and the log replayed up to `max(last_applied, snapshot index)`.
    /// Returns the server and its first effects (the election timer).
    pub fn recover(
        cfg: ConsensusConfig,
        term: Term,
        voted_for: Option<ServerId>,
        last_applied: LogIndex,
        snapshot_state: Option<&[u8]>,
        log: &mut dyn RaftLog,
    ) -> Result<(Server, Vec<Effect>), StorageError> {
        assert!(cfg.members.contains(&cfg.id), "a server is a member of its own cluster");
        let machine = snapshot_state.and_then(KvState::decode).unwrap_or_default();
        let snap = log.snapshot_index_term();
        let start = snap.map_or(LogIndex(0), |(i, _)| i);
        let rng = cfg.rng_seed ^ 0x9E37_79B9_7F4A_7C15;
        // Ra's `init`: the snapshot's cluster, else the initial members.
        let cluster = match (snap, log.snapshot_cluster()) {
            (Some(index_term), Some(members)) => ClusterState::new(&cfg.id, decode_cluster(&members), index_term),
            _ => ClusterState::new(
                &cfg.id,
                cfg.members.iter().map(|m| (m.clone(), Membership::Voter)).collect(),
                (LogIndex(0), Term(0)),
            ),
        };
        let mut s = Server {
            cfg,
            role: Role::Follower,
            current_term: term,
            voted_for,
            leader: None,
            commit_index: start,
            last_applied: start,
            machine,
            votes: BTreeSet::new(),
            peers: BTreeMap::new(),
            cluster,
            snapshot_pending: false,
            deferred_snapshot: None,
            receiving_snapshot: None,
            receive_has_live: false,
            awaiting_pending: None,
            awaiting: None,
            written_seen: log.last_written(),
            rng,
        };
        s.end_log_at_first_hole(last_applied.max(start), log)?;
        let last = log.last_index_term().0;
        let commit = last_applied.max(start).min(last);
        s.commit_index = commit;
        let mut effects = Vec::new();
        s.apply(log, &mut effects, false)?;
        s.scan_cluster_changes(LogIndex(commit.0 + 1), log)?;
        effects.retain(|e| !matches!(e, Effect::TakeSnapshot { .. }));
        s.snapshot_pending = false;
        s.deferred_snapshot = None;
        // Ra's `follower(enter, recovered)`: a recovered server arms its timer, a new one waits for
        // `trigger_election` (`election::is_new`).
        if !election::is_new(log) {
            effects.push(s.election_timer());
        }
        s.written_seen = log.last_written();
        Ok((s, effects))
    }

    /// Ra's `ra_server:recover` scan of `commit + 1..` (strategy `return`): a crash during a snapshot
    /// receive's pre-phase leaves live entries written sparsely above the log, so the recovered log ends
    /// before the first index it lacks above `from` (the applied index) — `set_last_index`, as an
    /// in-process abort would have left it. The same scan ends the log before the first entry whose
    /// term is lower than its predecessor's: a stale suffix an installed snapshot made obsolete, which
    /// recovery would otherwise bring back (`stale-tail-resurrected` restores Ra's recovery, which keeps
    /// it).
    fn end_log_at_first_hole(&mut self, from: LogIndex, log: &mut dyn RaftLog) -> Result<(), StorageError> {
        let (last, _) = log.last_index_term();
        let check_terms = !self.cfg.bugs.has(Bug::StaleTailResurrected);
        let mut prev_term = log.term_at(from)?;
        let mut i = LogIndex(from.0 + 1);
        while i <= last {
            let term = log.term_at(i)?;
            let stale = check_terms && term.is_some() && prev_term.is_some_and(|p| term < Some(p));
            if term.is_none() || stale {
                log.set_last_index(LogIndex(i.0 - 1))?;
                return Ok(());
            }
            prev_term = term;
            i = LogIndex(i.0 + 1);
        }
        Ok(())
    }

    /// Why this follower waits in Ra's `await_condition`, if it does.
    pub fn awaiting_condition(&self) -> Option<Condition> {
        self.awaiting.as_ref().map(|a| a.reason)
    }

    /// The snapshot being received, if any.
    pub fn receiving_snapshot(&self) -> Option<LogIndex> {
        self.receiving_snapshot
    }

    /// The role.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// The current term.
    pub fn current_term(&self) -> Term {
        self.current_term
    }

    /// The vote in the current term.
    pub fn voted_for(&self) -> Option<&ServerId> {
        self.voted_for.as_ref()
    }

    /// The known leader.
    pub fn leader(&self) -> Option<&ServerId> {
        self.leader.as_ref()
    }

    /// The commit index.
    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }

    /// The last applied index.
    pub fn last_applied(&self) -> LogIndex {
        self.last_applied
    }

    /// The machine.
    pub fn machine(&self) -> &KvState {
        &self.machine
    }

    /// The leader's peers.
    pub fn peers(&self) -> &BTreeMap<ServerId, Peer> {
        &self.peers
    }

    /// This server's id.
    pub fn id(&self) -> &ServerId {
        &self.cfg.id
    }

    pub(super) fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic from the configured seed.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(super) fn election_timer(&mut self) -> Effect {
        let (lo, hi) =
            (self.cfg.election_timeout_min_ms, self.cfg.election_timeout_max_ms.max(self.cfg.election_timeout_min_ms));
        let after_ms = lo + self.next_random() % (hi - lo + 1);
        Effect::SetTimer { timer: Timer::Election, after_ms }
    }

    /// Handles one input; see the module docs for the protocol.
    pub fn handle(&mut self, now_ms: u64, input: Input, log: &mut dyn RaftLog) -> Result<Vec<Effect>, StorageError> {
        let _ = now_ms;
        let mut fx = Vec::new();
        match input {
            Input::Message { from, msg } => self.handle_message(from, msg, log, &mut fx)?,
            Input::Timer(t) => self.handle_timer(t, log, &mut fx)?,
            // Ra's `await_condition` hands log events to the log only: no reply, no release cursor.
            Input::Written if self.awaiting.is_some() => {}
            Input::Written => {
                self.handle_written(log, &mut fx)?;
                self.release_deferred_snapshot(log, &mut fx);
                self.release_awaiting_chunk(log, &mut fx)?;
            }
            Input::SnapshotWritten { .. } | Input::SnapshotFailed { .. } => self.snapshot_pending = false,
            // Ra's `await_condition` turns commands away with no leader named (`{not_leader, undefined, …}`).
            Input::Command { client, request, .. } if self.awaiting.is_some() => {
                fx.push(Effect::Redirect { client, request, leader: None })
            }
            Input::Command { client, request, command } => {
                self.handle_command(client, request, command, log, &mut fx)?
            }
            Input::ChangeMembership(change) if self.awaiting.is_some() => {
                fx.push(Effect::MembershipReply { change, result: Err(MembershipRefusal::NotLeader) })
            }
            Input::ChangeMembership(change) => self.change_membership(change, log, &mut fx)?,
            Input::TriggerElection => self.trigger_election(log, &mut fx)?,
            Input::SnapshotSenderFinished { peer, index } => {
                self.snapshot_sender_finished(peer, index, log, &mut fx)?
            }
            Input::SnapshotSenderFailed { peer } => self.snapshot_sender_failed(peer, &mut fx)?,
            Input::SnapshotRefused { meta, missing: _ } => self.snapshot_refused(&meta, log, &mut fx)?,
            Input::SnapshotInstalled { meta, state, leader } => {
                self.snapshot_installed(meta, state, leader, log, &mut fx)?
            }
        }
        self.written_seen = log.last_written();
        self.check_invariants();
        Ok(fx)
    }

    /// A message from a member: each kind is handled by its concern's module.
    pub(super) fn handle_message(
        &mut self,
        from: ServerId,
        msg: Message,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if from == self.cfg.id {
            return Ok(());
        }
        if self.awaiting.is_some() && !self.await_admits(&msg, log, fx)? {
            return Ok(());
        }
        match msg {
            Message::AppendEntries { term, prev_index, prev_term, entries, commit } => {
                self.append_entries(from, term, prev_index, prev_term, entries, commit, log, fx)
            }
            Message::AppendEntriesReply { term, success, next_index, last_index, last_term } => {
                self.append_entries_reply(from, term, success, next_index, last_index, last_term, log, fx)
            }
            Message::PreVote { term, last_index, last_term } => {
                self.pre_vote(from, term, last_index, last_term, log, fx)
            }
            Message::PreVoteReply { term, granted } => self.pre_vote_reply(from, term, granted, log, fx),
            Message::RequestVote { term, last_index, last_term } => {
                self.request_vote(from, term, last_index, last_term, log, fx)
            }
            Message::RequestVoteReply { term, granted } => self.request_vote_reply(from, term, granted, log, fx),
            Message::InstallSnapshot { term, meta, chunk, last, data } => {
                self.install_snapshot(from, term, meta, chunk, last, data, log, fx)
            }
            Message::InstallSnapshotLive { term, meta, entries } => {
                self.install_snapshot_live(from, term, meta, entries, log, fx)
            }
            // Ra: the cast `election_timeout` a leader handing over sends is handled as the timer's.
            Message::ElectionTimeout => self.election_timeout(log, fx),
            // For the snapshot sender, not the server.
            Message::InstallSnapshotAck { .. }
            | Message::InstallSnapshotLiveAck { .. }
            | Message::InstallSnapshotDeclined { .. } => Ok(()),
        }
    }

    /// A timer fired.
    fn handle_timer(&mut self, t: Timer, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        match t {
            Timer::Election => self.election_timeout(log, fx),
            // Ra's `await_condition(_, tick_timeout, …)`: the tick runs `aux` only, no RPCs.
            Timer::Heartbeat if self.awaiting.is_some() => {
                if self.role == Role::Leader {
                    fx.push(Effect::SetTimer { timer: Timer::Heartbeat, after_ms: self.cfg.heartbeat_ms });
                }
                Ok(())
            }
            Timer::Heartbeat => self.heartbeat(log, fx),
            Timer::ReceiveSnapshot => self.receive_timeout(log, fx),
            Timer::SnapshotRetry(peer) if self.awaiting.is_some() => {
                self.postpone_snapshot_retry(peer);
                Ok(())
            }
            Timer::SnapshotRetry(peer) => self.snapshot_retry(peer, log, fx),
            Timer::AwaitCondition => self.await_timeout(log, fx),
        }
    }

    fn check_invariants(&self) {
        debug_assert!(
            self.last_applied <= self.commit_index
                || self.receiving_snapshot.is_some()
                || self.commit_index == LogIndex(0)
        );
        // (Whether a quorum still holds the commit index is not asserted here: a follower that loses
        // written entries makes the leader lower its match index. That is a storage failure the
        // simulator's `commit-durability` checker judges, not a broken invariant of this code.)
    }
}
