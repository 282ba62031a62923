//! Membership changes as Ra 3.1.10 makes them (`ra_server.erl`): one server at a time, through
//! cluster-change entries that take effect on each server **when appended** (not when committed).
//!
//! - Leader: `'$ra_join'`/`'$ra_leave'` (`append_log_leader`) are refused while an earlier change is
//!   uncommitted or before the leader applied its term's noop (`cluster_change_permitted`); otherwise the
//!   whole new cluster is appended (`append_cluster_change`) and used at once for replication and quorums.
//!   A `promotable` member is promoted by an ordinary join once its match index reaches its target
//!   (`maybe_promote_peer`). A leader that removed itself keeps leading until it sees the change committed
//!   in a success reply, then stops.
//! - Follower: each appended cluster-change entry is adopted, the previous configuration kept one level
//!   deep; an entry that overwrites the configuration's index with another term reverts to it
//!   (`pre_append_log_follower`), and so — a departure, Ra's gap `config-kept-after-truncation` — does a
//!   cut of the log from below that index (`before_cut`).
//! - Apply: a cluster change re-enables changes (and is adopted if newer: recovery); so does the noop of
//!   the current term. Recovery scans the uncommitted tail for changes (`cluster_scan_fun`).
//! - Quorums: a vote counts if it is a voter's of the current cluster (`required_quorum`); a commit is
//!   Ra's `agreed_commit` over `match_indexes` — the leader's own written index and each voter peer's
//!   match index, the (n/2+1)-th highest of those n. For a leader that removed itself that is one more
//!   than half of the list it is in, which still needs a majority of the new configuration's voters.
//! - A non-voter never starts an election and ignores vote and pre-vote requests.
//!
//! Departure: Ra matches a member's standing by its uid too (a server deleted and re-created under the
//! same name is another member); members here are never re-created, so the name identifies them.

use crate::bugs::Bug;
use crate::consensus::RaftLog;
use crate::storage::StorageError;
use crate::types::{LogIndex, Term};

use super::{
    Cluster, Effect, EntryBody, Membership, MembershipChange, MembershipRefusal, Peer, PeerStatus, Role, Server,
    ServerId, Timer,
};

/// The cluster state of a server (Ra's `cluster`, `cluster_index_term`, `previous_cluster`,
/// `cluster_change_permitted` and `membership` keys).
#[derive(Debug, Clone)]
pub(super) struct ClusterState {
    /// The configuration in force.
    pub(super) cluster: Cluster,
    /// The entry that produced it ((0, 0): the initial members; a snapshot's index and term after one).
    pub(super) index_term: (LogIndex, Term),
    /// The configuration before it, one level deep, to revert to when its entry is overwritten.
    pub(super) previous: Option<(LogIndex, Term, Cluster)>,
    /// Whether the leader may append a change.
    pub(super) change_permitted: bool,
    /// This server's own standing (the last one a configuration naming it gave).
    pub(super) membership: Membership,
}

impl ClusterState {
    /// Ra's `make_cluster(Self, Nodes)`: the members named, this server added as a voter when absent.
    pub(super) fn new(id: &ServerId, mut cluster: Cluster, index_term: (LogIndex, Term)) -> ClusterState {
        cluster.entry(id.clone()).or_insert(Membership::Voter);
        let membership = cluster[id];
        ClusterState { cluster, index_term, previous: None, change_permitted: false, membership }
    }

    /// Adopts `cluster` as produced by the entry at `index_term` (Ra's `get_membership` keeps the last
    /// known standing when the configuration does not name this server).
    fn adopt(&mut self, id: &ServerId, cluster: Cluster, index_term: (LogIndex, Term)) {
        if let Some(m) = cluster.get(id) {
            self.membership = *m;
        }
        self.cluster = cluster;
        self.index_term = index_term;
    }
}

impl Server {
    /// The configuration in force on this server.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster.cluster
    }

    /// The index and term of the entry that produced the configuration in force.
    pub fn cluster_index_term(&self) -> (LogIndex, Term) {
        self.cluster.index_term
    }

    /// This server's own standing.
    pub fn membership(&self) -> Membership {
        self.cluster.membership
    }

    /// Whether this server's leader would accept a membership change now.
    pub fn cluster_change_permitted(&self) -> bool {
        self.cluster.change_permitted
    }

    /// Ra's `required_quorum`: a majority of the voters of the configuration in force.
    pub(super) fn quorum(&self) -> usize {
        self.cluster.cluster.values().filter(|m| m.is_voter()).count() / 2 + 1
    }

    /// Every member of the configuration in force but this server (Ra's `peer_ids`).
    pub(super) fn others(&self) -> Vec<ServerId> {
        self.cluster.cluster.keys().filter(|m| **m != self.cfg.id).cloned().collect()
    }

    /// Ra's `match_indexes`: the leader's last written index, and the match index of each voter peer —
    /// the leader's own counts even when the configuration it leads no longer holds it.
    pub(super) fn match_indexes(&self, log: &dyn RaftLog) -> Vec<LogIndex> {
        let mut indexes = vec![log.last_written().0];
        for (id, m) in &self.cluster.cluster {
            if *id != self.cfg.id && m.is_voter() {
                indexes.push(self.peers.get(id).map_or(LogIndex(0), |p| p.match_index));
            }
        }
        indexes
    }

    /// A membership change asked of this server (Ra's `append_log_leader` for `'$ra_join'`/`'$ra_leave'`).
    pub(super) fn change_membership(
        &mut self,
        change: MembershipChange,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        let result = self.append_membership_change(&change, log, fx)?;
        fx.push(Effect::MembershipReply { change, result });
        Ok(())
    }

    fn append_membership_change(
        &mut self,
        change: &MembershipChange,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<Result<LogIndex, MembershipRefusal>, StorageError> {
        if self.role != Role::Leader {
            return Ok(Err(MembershipRefusal::NotLeader));
        }
        if !self.cluster.change_permitted {
            return Ok(Err(MembershipRefusal::NotPermitted));
        }
        let next = LogIndex(log.last_index_term().0.0 + 1);
        let mut cluster = self.cluster.cluster.clone();
        match change {
            MembershipChange::Join { id, membership } => {
                // Ra's `ensure_promotion_target`: a promotable member without a target must reach the
                // index of this change.
                let membership = match membership {
                    Membership::Promotable { target } if target.0 == 0 => Membership::Promotable { target: next },
                    m => *m,
                };
                if cluster.get(id) == Some(&membership) {
                    return Ok(Err(MembershipRefusal::AlreadyMember));
                }
                cluster.insert(id.clone(), membership);
            }
            MembershipChange::Leave { id } => {
                if cluster.remove(id).is_none() {
                    return Ok(Err(MembershipRefusal::NotMember));
                }
            }
        }
        if !self.append_cluster_change(cluster, log, fx)? {
            return Ok(Err(MembershipRefusal::WalDown));
        }
        Ok(Ok(next))
    }

    /// Ra's `append_cluster_change`: the entry is appended and the new configuration is in force at
    /// once (replication follows it; new members start from index 1, Ra's `new_peer`). `false`: the WAL
    /// is down, nothing changed (Ra: `{not_appended, wal_down, …}`), and the leader waits.
    fn append_cluster_change(
        &mut self,
        cluster: Cluster,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<bool, StorageError> {
        let next = LogIndex(log.last_index_term().0.0 + 1);
        if !self.leader_append(next, EntryBody::ClusterChange { cluster: cluster.clone() }.encode(), log, fx)? {
            return Ok(false);
        }
        let (old_index, old_term) = self.cluster.index_term;
        let old = std::mem::take(&mut self.cluster.cluster);
        self.cluster.previous = Some((old_index, old_term, old));
        self.cluster.change_permitted = false;
        self.cluster.adopt(&self.cfg.id.clone(), cluster, (next, self.current_term));
        self.sync_peers(fx);
        self.pipeline(false, log, fx)?;
        Ok(true)
    }

    /// The leader's peers follow the configuration in force: a new member gets Ra's `new_peer`
    /// (next index 1, match index 0), a removed one is forgotten (its snapshot retry cancelled).
    fn sync_peers(&mut self, fx: &mut Vec<Effect>) {
        if self.role != Role::Leader {
            return;
        }
        let members = self.others();
        let gone: Vec<ServerId> = self.peers.keys().filter(|p| !members.contains(p)).cloned().collect();
        for p in gone {
            self.peers.remove(&p);
            fx.push(Effect::CancelTimer(Timer::SnapshotRetry(p)));
        }
        for m in members {
            self.peers.entry(m).or_insert(Peer {
                next_index: LogIndex(1),
                match_index: LogIndex(0),
                status: PeerStatus::Normal,
                snapshot_failures: 0,
                commit_index_sent: LogIndex(0),
            });
        }
    }

    /// Ra's `pre_append_log_follower`, for each entry a follower is about to append: a cluster change
    /// is adopted; an entry of another term at the configuration's own index reverts to the previous
    /// configuration first.
    pub(super) fn pre_append_follower(&mut self, index: LogIndex, term: Term, payload: &[u8]) {
        let change = match EntryBody::decode(payload) {
            Some(EntryBody::ClusterChange { cluster }) => Some(cluster),
            _ => None,
        };
        let id = self.cfg.id.clone();
        let (cit_index, cit_term) = self.cluster.index_term;
        if index == cit_index && term != cit_term {
            match change {
                Some(cluster) => self.cluster.adopt(&id, cluster, (index, term)),
                // (Ra then checks the entry again against the reverted configuration, whose index is
                // lower: as it is no cluster change, nothing more happens.)
                None => {
                    if let Some((pi, pt, prev)) = self.cluster.previous.clone() {
                        self.cluster.adopt(&id, prev, (pi, pt));
                    }
                }
            }
            return;
        }
        if let Some(cluster) = change {
            let (old_index, old_term) = self.cluster.index_term;
            let old = self.cluster.cluster.clone();
            self.cluster.adopt(&id, cluster, (index, term));
            self.cluster.previous = Some((old_index, old_term, old));
        }
    }

    /// The follower's log is about to be cut at `from` (every entry from there on replaced or dropped):
    /// a configuration whose entry goes with it reverts to the previous one, as Raft's rule (a server
    /// uses the latest configuration in its log) has it. Ra reverts only when an entry of another term
    /// lands on the configuration's own index (`pre_append_follower`, above); a cut from a lower index,
    /// or an empty append's `set_last_index`, keeps the configuration — `config-kept-after-truncation`
    /// restores that. (The previous configuration is below the cut: a follower never cuts what is
    /// committed, and a change is appended only once the one before it committed.)
    pub(super) fn before_cut(&mut self, from: LogIndex) {
        if self.cfg.bugs.has(Bug::ConfigKeptAfterTruncation) {
            return;
        }
        let (cit_index, _) = self.cluster.index_term;
        if cit_index < from {
            return;
        }
        if let Some((pi, pt, prev)) = self.cluster.previous.clone()
            && pi < from
        {
            let id = self.cfg.id.clone();
            self.cluster.adopt(&id, prev, (pi, pt));
        }
    }

    /// Ra's `apply_with` of a cluster change: adopted if newer than the configuration in force (the
    /// recovery case), and changes permitted again.
    pub(super) fn apply_cluster_change(&mut self, index: LogIndex, term: Term, cluster: Cluster) {
        let (cit_index, cit_term) = self.cluster.index_term;
        if index > cit_index && term >= cit_term {
            let id = self.cfg.id.clone();
            self.cluster.adopt(&id, cluster, (index, term));
        }
        self.cluster.change_permitted = true;
    }

    /// Ra's `apply_with` of a noop: the current term's noop permits changes.
    pub(super) fn apply_noop(&mut self, term: Term) {
        if term == self.current_term {
            self.cluster.change_permitted = true;
        }
    }

    /// Ra's `cluster_scan_fun` at recovery: every cluster change in the uncommitted tail is adopted.
    pub(super) fn scan_cluster_changes(&mut self, from: LogIndex, log: &mut dyn RaftLog) -> Result<(), StorageError> {
        let (last, _) = log.last_index_term();
        let mut i = from;
        while i <= last {
            if let Some((term, payload)) = log.fetch(i)?
                && let Some(EntryBody::ClusterChange { cluster }) = EntryBody::decode(&payload)
            {
                let id = self.cfg.id.clone();
                self.cluster.adopt(&id, cluster, (i, term));
                self.cluster.change_permitted = true;
            }
            i = LogIndex(i.0 + 1);
        }
        Ok(())
    }

    /// A snapshot was installed: its configuration is in force, produced "at" the snapshot's index
    /// (Ra: "this may not be the actual cluster index").
    pub(super) fn install_snapshot_cluster(&mut self, cluster: Cluster, index_term: (LogIndex, Term)) {
        let id = self.cfg.id.clone();
        let mut cluster = cluster;
        cluster.entry(id.clone()).or_insert(self.cluster.membership);
        self.cluster.adopt(&id, cluster, index_term);
    }

    /// Ra's `maybe_promote_peer` after a success reply or an installed snapshot: a promotable peer whose
    /// match index reached its target becomes a voter by an ordinary join (refused silently while another
    /// change is pending, and tried again at the next reply).
    pub(super) fn maybe_promote(
        &mut self,
        peer: &ServerId,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        let Some(Membership::Promotable { target }) = self.cluster.cluster.get(peer).copied() else { return Ok(()) };
        if self.peers.get(peer).is_none_or(|p| p.match_index < target) {
            return Ok(());
        }
        let change = MembershipChange::Join { id: peer.clone(), membership: Membership::Voter };
        self.append_membership_change(&change, log, fx)?.ok();
        Ok(())
    }

    /// A leader that is not in the configuration it leads stops once that configuration is committed
    /// (Ra's success-reply clause, "leader not in new cluster - goodbye"), after a last round of RPCs.
    pub(super) fn leave_if_removed(
        &mut self,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<bool, StorageError> {
        if self.role != Role::Leader
            || self.cluster.cluster.contains_key(&self.cfg.id)
            || self.commit_index < self.cluster.index_term.0
        {
            return Ok(false);
        }
        self.pipeline(false, log, fx)?;
        fx.push(Effect::Stop);
        Ok(true)
    }
}
