//! What a server exchanges with the world: its config, the messages between members, the inputs it is
//! fed and the effects it returns, roles and the leader's view of a peer. Data only; the server's rules
//! are in the sibling modules.

use crate::bugs::Bugs;
use crate::consensus::kv::{KvCommand, KvResult};
use crate::seq::Seq;
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
    /// The initial members (Ra's `initial_members`), this server included: the cluster until a
    /// snapshot or a cluster-change entry says otherwise.
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

/// What a member may do in its cluster (Ra's `voter_status.membership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Membership {
    /// Votes and counts towards the commit quorum.
    Voter,
    /// Replicated to but not counted; the leader promotes it to a voter once its match index reaches
    /// `target` (Ra's `promotable`, the recommended way to add a member).
    Promotable {
        /// The index it must have written to be promoted.
        target: LogIndex,
    },
    /// Replicated to, never counted, never promoted.
    NonVoter,
}

impl Membership {
    /// Whether it votes and counts towards quorums.
    pub fn is_voter(self) -> bool {
        self == Membership::Voter
    }
}

/// A cluster configuration: every member and its standing (Ra's `cluster` map, without the leader's
/// replication state, which `Peer` holds).
pub type Cluster = std::collections::BTreeMap<ServerId, Membership>;

/// The cluster's on-disk form in a snapshot's meta: one string per member, the name alone for a voter,
/// `name\tpromotable\tTARGET` or `name\tnon_voter` otherwise (a voters-only cluster keeps the plain list
/// of names the snapshot format always had).
pub fn encode_cluster(cluster: &Cluster) -> Vec<String> {
    cluster
        .iter()
        .map(|(id, m)| match m {
            Membership::Voter => id.0.clone(),
            Membership::Promotable { target } => format!("{}\tpromotable\t{}", id.0, target.0),
            Membership::NonVoter => format!("{}\tnon_voter", id.0),
        })
        .collect()
}

/// The cluster a snapshot's meta names (`encode_cluster`'s inverse; an unknown form is a voter, as Ra
/// reads a legacy cluster list).
pub fn decode_cluster(members: &[String]) -> Cluster {
    members
        .iter()
        .map(|s| {
            let mut parts = s.split('\t');
            let name = parts.next().unwrap_or_default();
            let membership = match (parts.next(), parts.next().and_then(|t| t.parse::<u64>().ok())) {
                (Some("promotable"), Some(target)) => Membership::Promotable { target: LogIndex(target) },
                (Some("non_voter"), _) => Membership::NonVoter,
                _ => Membership::Voter,
            };
            (ServerId(name.to_owned()), membership)
        })
        .collect()
}

/// A membership change asked of the leader (Ra's `ra:add_member` / `ra:remove_member`, which send
/// `'$ra_join'` / `'$ra_leave'` commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add `id` with `membership`, or change an existing member's standing. A `Promotable` target of 0
    /// means "the index of this change" (Ra's `ensure_promotion_target`).
    Join {
        /// The member.
        id: ServerId,
        /// Its standing.
        membership: Membership,
    },
    /// Remove `id` (it may be the leader itself).
    Leave {
        /// The member.
        id: ServerId,
    },
}

/// Why a membership change was not appended (Ra's `{not_appended, Reason}` and redirects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipRefusal {
    /// Not the leader.
    NotLeader,
    /// Another change is not yet committed, or the leader has not applied its term's noop (Ra's
    /// `cluster_change_not_permitted`).
    NotPermitted,
    /// The member already has that standing.
    AlreadyMember,
    /// Not a member.
    NotMember,
    /// The WAL was down: not appended (Ra's `{error, wal_down}`).
    WalDown,
}

/// What an entry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBody {
    /// A leader's first entry of its term (and Ra's index-0 entry, whose payload is empty).
    Noop,
    /// A new cluster configuration (Ra's `'$ra_cluster_change'`): it takes effect on each server when
    /// appended, not when committed.
    ClusterChange {
        /// The whole new cluster.
        cluster: Cluster,
    },
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
            EntryBody::ClusterChange { cluster } => {
                let mut b = vec![2u8];
                b.extend_from_slice(&(cluster.len() as u16).to_be_bytes());
                for (id, m) in cluster {
                    b.extend_from_slice(&(id.0.len() as u16).to_be_bytes());
                    b.extend_from_slice(id.0.as_bytes());
                    let (kind, target) = match m {
                        Membership::Voter => (0u8, 0),
                        Membership::Promotable { target } => (1, target.0),
                        Membership::NonVoter => (2, 0),
                    };
                    b.push(kind);
                    b.extend_from_slice(&target.to_be_bytes());
                }
                Payload::from(b)
            }
        }
    }

    /// The request id of a command's payload, without decoding its command (`None`: not a command).
    pub fn command_request(b: &[u8]) -> Option<u64> {
        match b.first() {
            Some(1) if b.len() >= 17 => Some(u64::from_be_bytes(b[9..17].try_into().ok()?)),
            _ => None,
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
            Some(2) => decode_cluster_change(&b[1..]),
            _ => None,
        }
    }
}

fn decode_cluster_change(b: &[u8]) -> Option<EntryBody> {
    let count = u16::from_be_bytes(b.get(0..2)?.try_into().ok()?) as usize;
    let mut at = 2;
    let mut cluster = Cluster::new();
    for _ in 0..count {
        let len = u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize;
        let name = String::from_utf8(b.get(at + 2..at + 2 + len)?.to_vec()).ok()?;
        at += 2 + len;
        let kind = *b.get(at)?;
        let target = LogIndex(u64::from_be_bytes(b.get(at + 1..at + 9)?.try_into().ok()?));
        at += 9;
        let membership = match kind {
            0 => Membership::Voter,
            1 => Membership::Promotable { target },
            2 => Membership::NonVoter,
            _ => return None,
        };
        cluster.insert(ServerId(name), membership);
    }
    (at == b.len()).then_some(EntryBody::ClusterChange { cluster })
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
    /// A leader handing its leadership over tells the peer to campaign now (Ra's
    /// `{send_msg, Peer, election_timeout, cast}` from `transfer_leadership`).
    ElectionTimeout,
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
    /// Follower in Ra's `await_condition` after a failed append: the wait is over (Ra's
    /// `await_condition_timeout`, 30 s by default); the failure reply is sent again.
    AwaitCondition,
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
    /// A local snapshot could not be written (`SnapshotError` handled: what was written of it is gone);
    /// a later one may be taken.
    SnapshotFailed {
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
    /// An operator's membership change, for the leader.
    ChangeMembership(MembershipChange),
    /// Ra's `ra:trigger_election`: what `ra:start_cluster` sends one member of a new cluster, whose
    /// servers arm no election timer of their own while their logs are empty.
    TriggerElection,
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
    /// The follower's accept path refused the snapshot it received whole: the log does not hold a live
    /// entry its machine state names (the live phase went to an earlier incarnation of this server, or
    /// its writes were lost), so installing it would leave the machine reading an entry nobody wrote.
    SnapshotRefused {
        /// The snapshot.
        meta: SnapshotMeta,
        /// A live index the log does not hold.
        missing: LogIndex,
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
    /// The answer to a membership change: appended (at this index), or why not. Ra answers a
    /// `'$ra_join'`/`'$ra_leave'` when the change is appended (`after_log_append`).
    MembershipReply {
        /// The change.
        change: MembershipChange,
        /// The index of its cluster-change entry, or why it was not appended.
        result: Result<LogIndex, MembershipRefusal>,
    },
    /// The server stops (Ra's `{stop, normal}`): a leader that removed itself once the change is
    /// committed. Its supervisor does not restart it.
    Stop,
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
    /// The commit index last sent to it (Ra's `commit_index_sent`): a leader whose commit index moved
    /// past it sends the peer an append even with no new entry.
    pub commit_index_sent: LogIndex,
}

/// Ra's `receive_snapshot_timeout`: a follower abandons a snapshot receive that made no progress.
pub const RECEIVE_SNAPSHOT_TIMEOUT_MS: u64 = 30_000;

/// Ra's `max_pipeline_count` (`ra_server.hrl`): a leader pipelines no further batch to a peer with this many
/// entries sent and not yet acknowledged.
pub const MAX_PIPELINE_COUNT: u64 = 4096;

/// Ra's `await_condition_timeout` (`ra_server_proc`, default 30 000 ms): how long a follower that failed
/// an append waits for one it can take before it repeats its reply and becomes a plain follower again.
pub const AWAIT_CONDITION_TIMEOUT_MS: u64 = 30_000;

/// How long a leader whose append found the WAL down waits before it hands its leadership over (Ra's
/// `handle_leader({command, …})`: `timeout => #{duration => 5000, …}`).
pub const LEADER_WAL_DOWN_TIMEOUT_MS: u64 = 5_000;

/// Why a server waits in Ra's `await_condition` (its `condition`'s predicate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// A follower's append whose previous entry was missing (`follower_catchup_cond/3`): an append whose
    /// previous entry is there, or whose previous entry has another term, ends the wait.
    Missing,
    /// A follower's append whose previous entry had another term: only an append whose previous entry
    /// is there ends the wait.
    TermMismatch,
    /// A follower's append found the WAL down (`wal_down_condition/2`): any message once it is back.
    WalDown,
    /// A leader's append found the WAL down: the same, back to leader; after 5 s, a leadership transfer.
    LeaderWalDown,
    /// A leader handing its leadership over (`transfer_leadership_condition/2`): a newer leader's append
    /// or snapshot ends it; after 30 s it leads again.
    TransferLeadership,
}

/// What `has_log_entry_or_snapshot` finds at an append's previous index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrevEntry {
    /// The log (or the snapshot) holds that index with that term.
    Ok,
    /// It holds the index with another term.
    TermMismatch,
    /// It does not hold the index.
    Missing,
}

/// The snapshot retry delay after `n` consecutive failures: `min(5 s · 2^(n−1), 60 s)`.
pub fn snapshot_backoff_ms(n: u32) -> u64 {
    let shift = n.saturating_sub(1).min(16);
    (5_000u64 << shift).min(60_000)
}
