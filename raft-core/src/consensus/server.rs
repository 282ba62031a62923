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
//! Choices where Ra relies on Erlang: leaders send an empty append-entries every `heartbeat_ms` (Ra
//! uses process monitors and node failure detection instead); a follower's election timeout is drawn
//! from `[election_timeout_min_ms, election_timeout_max_ms]` with the server's own seeded generator.

use std::collections::{BTreeMap, BTreeSet};

use crate::bugs::{Bug, Bugs};
use crate::consensus::RaftLog;
use crate::consensus::kv::{KvCommand, KvResult, KvState, ValueSource};
use crate::seq::Seq;
use crate::storage::StorageError;
use crate::storage::snapshot::SnapshotMeta;
use crate::types::{LogIndex, Payload, Term};

/// A member's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(pub String);

/// A client, for replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Consensus settings. Every knob is written out by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusConfig {
    /// This server.
    pub id: ServerId,
    /// Every member, this server included.
    pub members: Vec<ServerId>,
    /// Lower bound of the randomised election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomised election timeout.
    pub election_timeout_max_ms: u64,
    /// How often a leader sends append-entries to every peer.
    pub heartbeat_ms: u64,
    /// Take a snapshot every this many applied entries.
    pub snapshot_interval: u64,
    /// At most this many entries per append-entries.
    pub max_append_entries: usize,
    /// The machine version written into snapshots.
    pub machine_version: u32,
    /// Seeds the election-timeout generator.
    pub rng_seed: u64,
    /// Switched-on pre-fix behaviours (only `backoff-peer-skipped` is read here).
    pub bugs: Bugs,
}

/// One log entry on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its index.
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
    /// Its payload ([`EntryBody`] bytes).
    pub payload: Payload,
}

/// What an entry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBody {
    /// A leader's first entry of its term (and Ra's index-0 entry, whose payload is empty).
    Noop,
    /// A client command, with whom to reply to.
    Command {
        /// The client.
        client: ClientId,
        /// Its request id.
        request: u64,
        /// The command.
        command: KvCommand,
    },
}

impl EntryBody {
    /// The payload bytes.
    pub fn encode(&self) -> Payload {
        match self {
            EntryBody::Noop => Payload::from(&[0u8][..]),
            EntryBody::Command { client, request, command } => {
                let mut b = vec![1u8];
                b.extend_from_slice(&client.0.to_be_bytes());
                b.extend_from_slice(&request.to_be_bytes());
                b.extend_from_slice(&command.encode());
                Payload::from(b)
            }
        }
    }

    /// Decodes a payload; empty (Ra's first entry) is a noop.
    pub fn decode(b: &[u8]) -> Option<EntryBody> {
        match b.first() {
            None | Some(0) => Some(EntryBody::Noop),
            Some(1) if b.len() >= 17 => Some(EntryBody::Command {
                client: ClientId(u64::from_be_bytes(b[1..9].try_into().ok()?)),
                request: u64::from_be_bytes(b[9..17].try_into().ok()?),
                command: KvCommand::decode(&b[17..])?,
            }),
            _ => None,
        }
    }
}

/// Messages between servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Replicate entries (empty: a heartbeat).
    AppendEntries {
        /// The leader's term.
        term: Term,
        /// The entry before `entries`.
        prev_index: LogIndex,
        /// Its term.
        prev_term: Term,
        /// Entries to append.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: LogIndex,
    },
    /// A follower's answer: `last_index` is its **last written** index.
    AppendEntriesReply {
        /// The follower's term.
        term: Term,
        /// Whether the entries matched and were appended.
        success: bool,
        /// Where the leader should continue.
        next_index: LogIndex,
        /// The follower's last written index.
        last_index: LogIndex,
        /// Its term.
        last_term: Term,
    },
    /// Would you vote for me? (does not bump anyone's term)
    PreVote {
        /// The candidate's current term.
        term: Term,
        /// Its last index.
        last_index: LogIndex,
        /// Its last term.
        last_term: Term,
    },
    /// Pre-vote answer.
    PreVoteReply {
        /// The voter's term.
        term: Term,
        /// Whether it would vote.
        granted: bool,
    },
    /// A vote request.
    RequestVote {
        /// The candidate's (new) term.
        term: Term,
        /// Its last index.
        last_index: LogIndex,
        /// Its last term.
        last_term: Term,
    },
    /// Vote answer.
    RequestVoteReply {
        /// The voter's term.
        term: Term,
        /// Whether it voted for the candidate.
        granted: bool,
    },
    /// A chunk of a snapshot, from the leader's snapshot sender.
    InstallSnapshot {
        /// The leader's term.
        term: Term,
        /// The snapshot.
        meta: SnapshotMeta,
        /// Chunk number, from 0.
        chunk: u32,
        /// Whether this is the last chunk.
        last: bool,
        /// Machine-state bytes.
        data: Vec<u8>,
    },
    /// Ra's pre-phase of a snapshot transfer: the live entries (at or below the snapshot, above the
    /// follower's last applied) the snapshot's machine state refers to, written sparsely first.
    InstallSnapshotLive {
        /// The leader's term.
        term: Term,
        /// The snapshot that follows.
        meta: SnapshotMeta,
        /// The live entries, ascending.
        entries: Vec<Entry>,
    },
    /// The follower's acknowledgement of the live entries, for the sender.
    InstallSnapshotLiveAck {
        /// The follower's term.
        term: Term,
    },
    /// The follower's acknowledgement of a chunk, for the sender.
    InstallSnapshotAck {
        /// The follower's term.
        term: Term,
        /// The chunk acknowledged.
        chunk: u32,
    },
    /// The follower already holds the snapshot (applied it, or has written its last entry in the same
    /// term) and declines it, saying where its log is — for the sender, which forwards it to the leader
    /// as a failed append-entries reply so that the leader skips ahead (Ra 3.1.9, commit 51f9810e).
    InstallSnapshotDeclined {
        /// The follower's term.
        term: Term,
        /// Where the follower's log continues.
        next_index: LogIndex,
        /// The follower's last written index.
        last_index: LogIndex,
        /// Its term.
        last_term: Term,
    },
}

/// Named timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Follower and candidates: start (another) election.
    Election,
    /// Leader: send append-entries to every peer.
    Heartbeat,
    /// Leader: a peer's snapshot backoff is over.
    SnapshotRetry(ServerId),
    /// Follower: a snapshot receive made no progress for 30 s (Ra's `receive_snapshot_timeout`).
    ReceiveSnapshot,
}

/// What a server receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message from a peer.
    Message {
        /// The sender.
        from: ServerId,
        /// The message.
        msg: Message,
    },
    /// A timer fired.
    Timer(Timer),
    /// The log's last written index moved (the caller gave the log its `Written` first).
    Written,
    /// A local snapshot is durable and the log has taken it (`SnapshotWritten` handled).
    SnapshotWritten {
        /// Its index.
        index: LogIndex,
    },
    /// A client command.
    Command {
        /// The client.
        client: ClientId,
        /// Its request id.
        request: u64,
        /// The command.
        command: KvCommand,
    },
    /// A snapshot sender delivered every chunk to `peer`.
    SnapshotSenderFinished {
        /// The peer.
        peer: ServerId,
        /// The snapshot index sent.
        index: LogIndex,
    },
    /// A snapshot sender failed (the receiver restarted, a chunk timed out).
    SnapshotSenderFailed {
        /// The peer.
        peer: ServerId,
    },
    /// The follower install path finished (storage: accept completed, log reset above the snapshot).
    SnapshotInstalled {
        /// The snapshot.
        meta: SnapshotMeta,
        /// Its machine state.
        state: Vec<u8>,
        /// The leader to answer.
        leader: ServerId,
    },
}

/// What a server asks its caller to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a message.
    Send {
        /// The receiver.
        to: ServerId,
        /// The message.
        msg: Message,
    },
    /// Arm a timer `after_ms` from now (replacing its previous deadline).
    SetTimer {
        /// Which.
        timer: Timer,
        /// Delay.
        after_ms: u64,
    },
    /// Disarm a timer.
    CancelTimer(Timer),
    /// Make term and vote durable (meta store `store_sync`) **before** the following effects.
    PersistTermAndVote {
        /// The term.
        term: Term,
        /// The vote in that term.
        voted_for: Option<ServerId>,
    },
    /// Record the last applied index (lazily durable).
    PersistLastApplied(LogIndex),
    /// Answer a client.
    Reply {
        /// The client.
        client: ClientId,
        /// Its request.
        request: u64,
        /// The result.
        result: KvResult,
    },
    /// Tell a client to go elsewhere.
    Redirect {
        /// The client.
        client: ClientId,
        /// Its request.
        request: u64,
        /// The leader, if known.
        leader: Option<ServerId>,
    },
    /// Start a snapshot sender for `peer` with the current snapshot.
    StartSnapshotSender {
        /// The peer.
        peer: ServerId,
        /// The snapshot index to send.
        index: LogIndex,
    },
    /// Take a local snapshot (the log's background worker writes it).
    TakeSnapshot {
        /// What it covers.
        meta: SnapshotMeta,
        /// The machine state.
        state: Vec<u8>,
        /// The machine's live indexes.
        live_indexes: Seq,
    },
    /// Follower: abandon a snapshot receive (storage: `SnapshotAccept::abort`).
    AbortSnapshotAccept,
    /// Follower: a snapshot transfer chunk to store (the first begins, the last completes the accept
    /// path of storage II; the caller then feeds `Input::SnapshotInstalled`).
    AcceptSnapshotChunk {
        /// The snapshot.
        meta: SnapshotMeta,
        /// Chunk number.
        chunk: u32,
        /// Whether it is the last.
        last: bool,
        /// Its bytes.
        data: Vec<u8>,
        /// The leader.
        leader: ServerId,
    },
}

/// A server's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Following `leader` (if known).
    Follower,
    /// Asking for pre-votes (term not bumped).
    PreVoteCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Leading.
    Leader,
}

/// A peer's replication status on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    /// Normal replication.
    Normal,
    /// A snapshot sender is running for it.
    SendingSnapshot,
    /// The last `n` senders failed; retry when the timer fires.
    SnapshotBackoff(u32),
}

/// The leader's view of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The next index to send.
    pub next_index: LogIndex,
    /// The highest index known written on the peer.
    pub match_index: LogIndex,
    /// Replication status.
    pub status: PeerStatus,
    /// Consecutive snapshot-sender failures.
    pub snapshot_failures: u32,
}

/// Ra's `receive_snapshot_timeout`: a follower abandons a snapshot receive that made no progress.
pub const RECEIVE_SNAPSHOT_TIMEOUT_MS: u64 = 30_000;

/// The snapshot retry delay after `n` consecutive failures: `min(5 s · 2^(n−1), 60 s)`.
pub fn snapshot_backoff_ms(n: u32) -> u64 {
    let shift = n.saturating_sub(1).min(16);
    (5_000u64 << shift).min(60_000)
}

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
    snapshot_pending: bool,
    /// A snapshot asked for at an applied index this server has not yet written (`TakeSnapshot`): Ra's
    /// stashed `pending_release_cursor` under the `{written, Idx}` condition (Ra 3.0.0). A machine whose
    /// state names live entries must not be snapshotted before those entries are durable here — a
    /// follower applies what it has only appended, and a leader what the others have written.
    deferred_snapshot: Option<(LogIndex, Effect)>,
    receiving_snapshot: Option<LogIndex>,
    /// The receive's pre-phase wrote live entries sparsely above the last applied index.
    receive_wrote_live: bool,
    rng: u64,
}

/// Reads commands back from the log for the machine. A storage error (a power cut's EIO, say) is
/// kept in `error`, not mistaken for a missing entry: the caller returns it instead of `missing_key`.
struct LogValues<'a> {
    log: &'a mut dyn RaftLog,
    error: Option<StorageError>,
}

impl ValueSource for LogValues<'_> {
    fn command_at(&mut self, index: LogIndex) -> Option<KvCommand> {
        let (_, payload) = match self.log.fetch(index) {
            Ok(found) => found?,
            Err(e) => {
                self.error.get_or_insert(e);
                return None;
            }
        };
        match EntryBody::decode(&payload)? {
            EntryBody::Command { command, .. } => Some(command),
            EntryBody::Noop => None,
        }
    }
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
        let snap = log.snapshot_index_term().map(|(i, _)| i);
        let start = snap.unwrap_or(LogIndex(0));
        let rng = cfg.rng_seed ^ 0x9E37_79B9_7F4A_7C15;
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
            snapshot_pending: false,
            deferred_snapshot: None,
            receiving_snapshot: None,
            receive_wrote_live: false,
            rng,
        };
        s.end_log_at_first_hole(last_applied.max(start), log)?;
        let last = log.last_index_term().0;
        let commit = last_applied.max(start).min(last);
        s.commit_index = commit;
        let mut effects = Vec::new();
        s.apply(log, &mut effects, false)?;
        effects.retain(|e| !matches!(e, Effect::TakeSnapshot { .. }));
        s.snapshot_pending = false;
        s.deferred_snapshot = None;
        effects.push(s.election_timer());
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
            let term = log.fetch(i)?.map(|(t, _)| t);
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

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic from the configured seed.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn election_timer(&mut self) -> Effect {
        let (lo, hi) =
            (self.cfg.election_timeout_min_ms, self.cfg.election_timeout_max_ms.max(self.cfg.election_timeout_min_ms));
        let after_ms = lo + self.next_random() % (hi - lo + 1);
        Effect::SetTimer { timer: Timer::Election, after_ms }
    }

    fn others(&self) -> Vec<ServerId> {
        self.cfg.members.iter().filter(|m| **m != self.cfg.id).cloned().collect()
    }

    fn quorum(&self) -> usize {
        self.cfg.members.len() / 2 + 1
    }

    /// Handles one input; see the module docs for the protocol.
    pub fn handle(&mut self, now_ms: u64, input: Input, log: &mut dyn RaftLog) -> Result<Vec<Effect>, StorageError> {
        let _ = now_ms;
        let mut fx = Vec::new();
        match input {
            Input::Message { from, msg } => self.handle_message(from, msg, log, &mut fx)?,
            Input::Timer(t) => self.handle_timer(t, log, &mut fx)?,
            Input::Written => {
                self.handle_written(log, &mut fx)?;
                self.release_deferred_snapshot(log, &mut fx);
            }
            Input::SnapshotWritten { .. } => self.snapshot_pending = false,
            Input::Command { client, request, command } => {
                self.handle_command(client, request, command, log, &mut fx)?
            }
            Input::SnapshotSenderFinished { peer, index } => {
                if self.role == Role::Leader
                    && let Some(p) = self.peers.get_mut(&peer)
                    && p.status == PeerStatus::SendingSnapshot
                {
                    // Only the follower's own reply (after its install) says what it holds: match index
                    // is not raised here (Ra: `install_snapshot_result`).
                    p.status = PeerStatus::Normal;
                    p.snapshot_failures = 0;
                    p.next_index = p.next_index.max(LogIndex(index.0.saturating_add(1)));
                    self.send_append_entries(&peer, log, &mut fx)?;
                }
            }
            Input::SnapshotSenderFailed { peer } => {
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
            }
            Input::SnapshotInstalled { meta, state, leader } => {
                if self.receiving_snapshot != Some(meta.index) || meta.index <= self.last_applied {
                    return Ok(fx); // an abandoned or outdated install
                }
                self.receiving_snapshot = None;
                self.receive_wrote_live = false;
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
            }
        }
        self.check_invariants();
        Ok(fx)
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

    /// Steps down to follower in `term` (a higher term was seen): term persisted, vote cleared.
    fn become_follower(
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

    /// Ra's `abort_receive`: the partial snapshot goes, and when the pre-phase wrote live entries the
    /// log is reset to the last applied index (`ra_log:set_last_index`), since the sparse entries above it
    /// are not a log the leader can append to.
    fn abort_receive(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        self.receiving_snapshot = None;
        fx.push(Effect::CancelTimer(Timer::ReceiveSnapshot));
        fx.push(Effect::AbortSnapshotAccept);
        if std::mem::take(&mut self.receive_wrote_live) {
            log.set_last_index(self.last_applied)?;
        }
        Ok(())
    }

    /// Ra's `mismatch_append_entries_reply(Term, LastApplied)`: tells a (possibly stale) leader where we
    /// are, so it skips ahead instead of sending a snapshot we do not need.
    /// Where this server's log is, for a mismatch reply: the next index it wants, its last written index
    /// and that entry's term.
    fn log_position(&self, log: &dyn RaftLog) -> (LogIndex, LogIndex, Term) {
        let (li, lt) = log.last_written();
        (LogIndex(self.last_applied.0.max(li.0).saturating_add(1)), li, lt)
    }

    fn reply_already_have(&self, leader: &ServerId, log: &dyn RaftLog, fx: &mut Vec<Effect>) {
        let (next_index, last_index, last_term) = self.log_position(log);
        let msg =
            Message::AppendEntriesReply { term: self.current_term, success: false, next_index, last_index, last_term };
        fx.push(Effect::Send { to: leader.clone(), msg });
    }

    /// Declines a snapshot this server already holds; the reply goes to the sender (Ra: the reply to
    /// the sender's call).
    fn decline_snapshot(&self, sender: &ServerId, log: &dyn RaftLog, fx: &mut Vec<Effect>) {
        let (next_index, last_index, last_term) = self.log_position(log);
        let msg = Message::InstallSnapshotDeclined { term: self.current_term, next_index, last_index, last_term };
        fx.push(Effect::Send { to: sender.clone(), msg });
    }

    /// The common start of both snapshot messages: a stale term, a snapshot not above what we applied,
    /// or one whose last entry our written log already holds gets a mismatch reply (Ra: the leader skips
    /// ahead); otherwise follow the sender and (re)arm the receive timeout. Returns whether to go on
    /// receiving.
    fn begin_receive(
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
        self.receiving_snapshot = Some(index);
        fx.push(Effect::SetTimer { timer: Timer::ReceiveSnapshot, after_ms: RECEIVE_SNAPSHOT_TIMEOUT_MS });
        Ok(true)
    }

    /// A message from a leader of `term` (≥ ours): follow it, or just restart the election timer.
    fn follow(
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

    fn log_up_to_date(&self, last_index: LogIndex, last_term: Term, log: &dyn RaftLog) -> bool {
        let (my_index, my_term) = log.last_index_term();
        (last_term, last_index) >= (my_term, my_index)
    }

    fn handle_message(
        &mut self,
        from: ServerId,
        msg: Message,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if !self.cfg.members.contains(&from) || from == self.cfg.id {
            return Ok(()); // not a peer (Ra: `peer(Cand)`)
        }
        match msg {
            Message::AppendEntries { term, prev_index, prev_term, entries, commit } => {
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
            Message::AppendEntriesReply { term, success, next_index, last_index, last_term } => {
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
            Message::PreVote { term, last_index, last_term } => {
                if self.role == Role::Leader && term <= self.current_term {
                    // Ra's process_pre_vote on a leader: enforce leadership (make_all_rpcs).
                    self.make_all_rpcs(log, fx)?;
                    return Ok(());
                }
                if self.role == Role::Leader {
                    // A higher term: Ra's leader steps down and answers as a follower.
                    self.become_follower(term, None, log, fx)?;
                }
                let granted = term >= self.current_term && self.log_up_to_date(last_index, last_term, log);
                fx.push(Effect::Send { to: from, msg: Message::PreVoteReply { term: self.current_term, granted } });
                Ok(())
            }
            Message::PreVoteReply { term, granted } => {
                if term > self.current_term {
                    self.become_follower(term, None, log, fx)?;
                    return Ok(());
                }
                // Ra counts a grant only from this round (term equal to ours).
                if self.role == Role::PreVoteCandidate && granted && term == self.current_term {
                    self.votes.insert(from);
                    if self.votes.len() >= self.quorum() {
                        self.start_election(log, fx)?;
                    }
                }
                Ok(())
            }
            Message::RequestVote { term, last_index, last_term } => {
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
            Message::RequestVoteReply { term, granted } => {
                if term > self.current_term {
                    self.become_follower(term, None, log, fx)?;
                    return Ok(());
                }
                if self.role == Role::Candidate && term == self.current_term && granted {
                    self.votes.insert(from);
                    if self.votes.len() >= self.quorum() {
                        self.become_leader(log, fx)?;
                    }
                }
                Ok(())
            }
            Message::InstallSnapshot { term, meta, chunk, last, data } => {
                if !self.begin_receive(term, &from, (meta.index, meta.term), log, fx)? {
                    return Ok(());
                }
                fx.push(Effect::AcceptSnapshotChunk { meta, chunk, last, data, leader: from.clone() });
                fx.push(Effect::Send { to: from, msg: Message::InstallSnapshotAck { term: self.current_term, chunk } });
                Ok(())
            }
            Message::InstallSnapshotLive { term, meta, entries } => {
                if !self.begin_receive(term, &from, (meta.index, meta.term), log, fx)? {
                    return Ok(());
                }
                for e in entries {
                    if e.index > self.last_applied && log.fetch(e.index)?.is_none_or(|(t, _)| t != e.term) {
                        log.write_sparse(e.index, e.term, e.payload)?;
                        self.receive_wrote_live = true;
                    }
                }
                fx.push(Effect::Send { to: from, msg: Message::InstallSnapshotLiveAck { term: self.current_term } });
                Ok(())
            }
            // For the snapshot sender, not the server.
            Message::InstallSnapshotAck { .. }
            | Message::InstallSnapshotLiveAck { .. }
            | Message::InstallSnapshotDeclined { .. } => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_append_entries(
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

    fn handle_written(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
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

    fn handle_timer(&mut self, t: Timer, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        match t {
            Timer::Election => {
                if self.role == Role::Leader || self.receiving_snapshot.is_some() {
                    if self.receiving_snapshot.is_some() {
                        let t = self.election_timer();
                        fx.push(t);
                    }
                    return Ok(());
                }
                // Pre-vote before every election.
                self.role = Role::PreVoteCandidate;
                self.leader = None;
                self.votes.clear();
                self.votes.insert(self.cfg.id.clone());
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
            Timer::Heartbeat => {
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
            Timer::ReceiveSnapshot => {
                if self.receiving_snapshot.is_some() {
                    self.abort_receive(log, fx)?;
                    let t = self.election_timer();
                    fx.push(t);
                }
                Ok(())
            }
            Timer::SnapshotRetry(peer) => {
                if self.role == Role::Leader
                    && let Some(p) = self.peers.get_mut(&peer)
                    && matches!(p.status, PeerStatus::SnapshotBackoff(_))
                {
                    p.status = PeerStatus::Normal;
                    self.send_append_entries(&peer, log, fx)?;
                }
                Ok(())
            }
        }
    }

    fn start_election(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
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

    fn become_leader(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.votes.clear();
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
                    },
                )
            })
            .collect();
        // The leader's first entry of its term (Ra: a noop carrying the machine version).
        log.append(LogIndex(last.0 + 1), self.current_term, EntryBody::Noop.encode())?;
        self.make_all_rpcs(log, fx)?;
        fx.push(Effect::SetTimer { timer: Timer::Heartbeat, after_ms: self.cfg.heartbeat_ms });
        Ok(())
    }

    /// Ra's `make_all_rpcs`: fresh RPCs to every peer. With every fix this includes peers in snapshot
    /// backoff (their retry timer cancelled); `backoff-peer-skipped` restores the skip of PR 589 fix 4.
    fn make_all_rpcs(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
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
    fn send_append_entries(
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

    fn advance_commit(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) -> Result<(), StorageError> {
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

    fn handle_command(
        &mut self,
        client: ClientId,
        request: u64,
        command: KvCommand,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.role != Role::Leader {
            fx.push(Effect::Redirect { client, request, leader: self.leader.clone() });
            return Ok(());
        }
        let (last, _) = log.last_index_term();
        log.append(LogIndex(last.0 + 1), self.current_term, EntryBody::Command { client, request, command }.encode())?;
        for peer in self.others() {
            self.send_append_entries(&peer, log, fx)?;
        }
        Ok(())
    }

    /// Applies committed entries in order; the leader replies to clients.
    fn apply(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>, reply: bool) -> Result<(), StorageError> {
        let start = self.last_applied;
        while self.last_applied < self.commit_index {
            let index = LogIndex(self.last_applied.0 + 1);
            let Some((_, payload)) = log.fetch(index)? else {
                return Err(StorageError::MissingEntry { uid: crate::types::Uid(self.cfg.id.0.clone()), index });
            };
            if let Some(EntryBody::Command { client, request, command }) = EntryBody::decode(&payload) {
                let mut values = LogValues { log: &mut *log, error: None };
                let result = self.machine.try_apply(index, &command, &mut values).map_err(|missing| {
                    values.error.take().unwrap_or_else(|| StorageError::MissingEntry {
                        uid: crate::types::Uid(self.cfg.id.0.clone()),
                        index: missing,
                    })
                })?;
                if reply && self.role == Role::Leader {
                    fx.push(Effect::Reply { client, request, result });
                }
            }
            self.last_applied = index;
        }
        if self.last_applied > start {
            // Ra's `persist_last_applied`: never beyond what is durable here, or recovery would replay
            // entries that were never written (and may be gone after a crash).
            fx.push(Effect::PersistLastApplied(self.last_applied.min(log.last_written().0)));
            self.maybe_snapshot(log, fx);
        }
        Ok(())
    }

    fn maybe_snapshot(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) {
        if self.snapshot_pending || self.cfg.snapshot_interval == 0 {
            return;
        }
        let snap = log.snapshot_index_term().map_or(0, |(i, _)| i.0);
        if self.last_applied.0 < snap.saturating_add(self.cfg.snapshot_interval) {
            return;
        }
        let Ok(Some(term)) = log.term_at(self.last_applied) else { return };
        self.snapshot_pending = true;
        let snapshot = Effect::TakeSnapshot {
            meta: SnapshotMeta {
                index: self.last_applied,
                term,
                machine_version: self.cfg.machine_version,
                cluster: self.cfg.members.iter().map(|m| m.0.clone()).collect(),
            },
            state: self.machine.encode(),
            live_indexes: self.machine.live_indexes(),
        };
        if self.cfg.bugs.has(Bug::SnapshotBeforeWritten) {
            fx.push(snapshot);
        } else {
            self.deferred_snapshot = Some((self.last_applied, snapshot));
            self.release_deferred_snapshot(log, fx);
        }
    }

    /// Takes the deferred snapshot once its index is written here (Ra's `maybe_emit_pending_release_cursor`).
    fn release_deferred_snapshot(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) {
        if self.deferred_snapshot.as_ref().is_some_and(|(index, _)| log.last_written().0 >= *index) {
            fx.extend(self.deferred_snapshot.take().map(|(_, snapshot)| snapshot));
        }
    }
}
