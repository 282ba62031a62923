//! Membership changes in a run: an operator's `ra:add_member` / `ra:remove_member` (a `Membership`
//! fault, random or planned) asked of the group's leader, the leader's answer, and a removed leader
//! that stops. Which configuration is in force is the servers' business (raft-core); the checkers ask
//! the leader's (`config_members`).
//!
//! An operator wants what it asked: a change the leader refused (not leader, or one change at a time),
//! or appended and lost with its leader, is asked again after the heal until the configuration in force
//! has it, and `converges` holds the cluster to it (`membership_unsettled`).
//!
//! Owns: turning a `Fault::Membership` into an input for the leader, the configuration the operator
//! wants, and the effects `MembershipReply` and `Stop`. Must not change a configuration itself: only
//! the servers do, through their logs.

use std::collections::BTreeSet;

use raft_core::consensus::server::{Input, Membership, MembershipChange, Role};
use scenarios::rng::below;
use scenarios::{Fault, MemberChange};

use super::World;
use super::node::ServerWork;
use crate::trace::Kind;

/// How long the operator waits before asking again for a change not in force after the heal.
const MEMBERSHIP_RETRY_NS: u64 = 500_000_000;

impl World {
    /// The node whose member of group `g` leads the highest term among the serving members, if any.
    pub(super) fn group_leader(&self, g: usize) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.serving(i, g))
            .filter_map(|i| {
                let h = self.nodes[i].members[g].host.as_ref()?;
                (*h.server.role() == Role::Leader).then_some((h.server.current_term(), i))
            })
            .max()
            .map(|(_, i)| i)
    }

    /// The nodes whose member of group `g` is in the configuration its leader has in force (every node
    /// when no member leads: nothing says who is out).
    pub(super) fn config_members(&self, g: usize) -> BTreeSet<usize> {
        let Some(l) = self.group_leader(g) else { return (0..self.nodes.len()).collect() };
        let Some(h) = self.nodes[l].members[g].host.as_ref() else { return BTreeSet::new() };
        (0..self.nodes.len()).filter(|&i| h.server.cluster().contains_key(&self.nodes[i].members[g].name)).collect()
    }

    /// The nodes whose member of group `g` is a voter of the configuration node `i`'s member has in force.
    pub(super) fn voters(&self, i: usize, g: usize) -> BTreeSet<usize> {
        let Some(h) = self.nodes[i].members[g].host.as_ref() else { return BTreeSet::new() };
        let cluster = h.server.cluster();
        (0..self.nodes.len())
            .filter(|&j| cluster.get(&self.nodes[j].members[g].name).is_some_and(|m| m.is_voter()))
            .collect()
    }

    /// A random membership change on node `i`: its member of a random group leaves if the leader's
    /// configuration holds it and more than a majority of the nodes would stay voters (so that one node
    /// out at a time never leaves a group without a quorum); otherwise it joins, as a voter, a
    /// promotable member or a non-voter.
    pub(super) fn random_membership_change(&mut self, i: usize) {
        let g = below(&mut self.fault_rng, self.cfg.spec.groups as u64) as usize;
        let join = [
            MemberChange::JoinPromotable,
            MemberChange::JoinPromotable,
            MemberChange::JoinVoter,
            MemberChange::JoinNonVoter,
        ][below(&mut self.fault_rng, 4) as usize];
        let change = match self.group_leader(g).and_then(|l| self.nodes[l].members[g].host.as_ref()) {
            Some(h) => {
                let in_config = h.server.cluster().contains_key(&self.nodes[i].members[g].name);
                if in_config && self.leave_keeps_majority(g, i) == Some(true) {
                    Some(MemberChange::Leave)
                } else if in_config {
                    None
                } else {
                    Some(join)
                }
            }
            None => None,
        };
        match change {
            Some(change) => self.change_membership(i, g, change),
            None => self.count("membership changes not drawn (no leader, or a quorum would go)"),
        }
    }

    /// Asks group `g`'s leader to change the membership of node `i`'s member (a member to be added that
    /// is not running is started first, as an operator would); with a leader to ask, the operator wants
    /// the change from now on.
    pub(super) fn change_membership(&mut self, i: usize, g: usize, change: MemberChange) {
        self.record_now(i, Fault::Membership { group: g, change });
        if self.ask_leader(i, g, change) {
            self.membership_wanted.insert((g, i), (change, self.now_ns));
        }
    }

    /// The operator's changes the configuration in force does not have yet (none in force at all
    /// without a leader): (group, node, change, when last asked).
    pub(super) fn membership_unsettled(&self) -> Vec<(usize, usize, MemberChange, u64)> {
        self.membership_wanted
            .iter()
            .filter(|&(&(g, i), &(change, _))| {
                let Some(h) = self.group_leader(g).and_then(|l| self.nodes[l].members[g].host.as_ref()) else {
                    return true;
                };
                h.server.cluster().contains_key(&self.nodes[i].members[g].name) == (change == MemberChange::Leave)
            })
            .map(|(&(g, i), &(change, at_ns))| (g, i, change, at_ns))
            .collect()
    }

    /// After the heal: asks again, at most every `MEMBERSHIP_RETRY_NS`, each change the configuration in
    /// force does not have (a leader refuses a change while another is uncommitted; with no leader the
    /// operator tries again later).
    /// A leave asked while it kept a majority is given up once others have left since, so that it no
    /// longer would (as the random draw never asks one that would not): else leaves refused one at a time
    /// during faults, asked again together after the heal, would remove every member.
    pub(super) fn retry_membership_changes(&mut self) {
        for (g, i, change, at_ns) in self.membership_unsettled() {
            if self.now_ns < at_ns + MEMBERSHIP_RETRY_NS {
                continue;
            }
            if change == MemberChange::Leave && self.leave_keeps_majority(g, i) == Some(false) {
                self.membership_wanted.remove(&(g, i));
                self.count("membership changes given up (a majority would go)");
                let id = self.nodes[i].members[g].name.clone();
                self.note_member(i, g, Kind::Member, format!("Leave of {id} given up: a majority would go"));
                continue;
            }
            self.count("membership changes asked again after the heal");
            self.ask_leader(i, g, change);
            self.membership_wanted.insert((g, i), (change, self.now_ns));
        }
    }

    /// Whether the configuration of group `g`'s leader keeps more voters than half of the nodes without
    /// node `i`'s member (`None`: no leader).
    fn leave_keeps_majority(&self, g: usize, i: usize) -> Option<bool> {
        let h = self.group_leader(g).and_then(|l| self.nodes[l].members[g].host.as_ref())?;
        let cluster = h.server.cluster();
        let voters = cluster.values().filter(|m| m.is_voter()).count();
        let voter = cluster.get(&self.nodes[i].members[g].name).is_some_and(|m| m.is_voter());
        Some(voters - usize::from(voter) > self.nodes.len() / 2)
    }

    /// Hands the change to group `g`'s leader; whether there was one.
    fn ask_leader(&mut self, i: usize, g: usize, change: MemberChange) -> bool {
        let id = self.nodes[i].members[g].name.clone();
        let request = match change {
            MemberChange::Leave => MembershipChange::Leave { id: id.clone() },
            MemberChange::JoinVoter => MembershipChange::Join { id: id.clone(), membership: Membership::Voter },
            MemberChange::JoinPromotable => MembershipChange::Join {
                id: id.clone(),
                membership: Membership::Promotable { target: raft_core::LogIndex(0) },
            },
            MemberChange::JoinNonVoter => MembershipChange::Join { id: id.clone(), membership: Membership::NonVoter },
        };
        let Some(l) = self.group_leader(g) else {
            self.count("membership changes without a leader");
            self.note_member(i, g, Kind::Member, format!("{change:?} of {id} asked: no leader, nothing done"));
            return false;
        };
        self.count("membership changes asked");
        if change != MemberChange::Leave && self.nodes[i].members[g].stopped {
            self.restart_member(i, g);
        }
        self.note_member(l, g, Kind::Member, format!("{change:?} of {id} asked of the leader"));
        self.nodes[l].members[g].server_box.push_back(ServerWork::Input(Input::ChangeMembership(request)));
        true
    }

    /// The leader's answer to a membership change.
    pub(super) fn membership_reply(
        &mut self,
        i: usize,
        g: usize,
        change: MembershipChange,
        result: Result<raft_core::LogIndex, raft_core::consensus::server::MembershipRefusal>,
    ) {
        let what = match &change {
            MembershipChange::Join { id, membership } => format!("join of {id} as {membership:?}"),
            MembershipChange::Leave { id } => format!("leave of {id}"),
        };
        match result {
            Ok(index) => {
                self.count("membership changes appended");
                self.note_member(i, g, Kind::Member, format!("{what} appended at {index}"));
            }
            Err(why) => {
                self.count("membership changes refused");
                self.note_member(i, g, Kind::Member, format!("{what} refused: {why:?}"));
            }
        }
    }

    /// A leader that removed itself stopped (Ra's `{stop, normal}`; its supervisor does not restart
    /// it): down until an operator adds it back.
    pub(super) fn member_stopped(&mut self, i: usize, g: usize) {
        self.count("removed leaders stopped");
        self.note_member(i, g, Kind::Member, "removed from its cluster: the leader stops".into());
        let key = self.member_key(i, g);
        self.checkers.obligations.forget(key);
        self.fates.member_down(i, g);
        let n = &mut self.nodes[i];
        let m = &mut n.members[g];
        if let Some(h) = m.host.as_ref() {
            m.written_at_crash = Some(m.written_before_receive.unwrap_or_else(|| h.log.last_written()));
        }
        m.reset(&mut n.dead_handles);
        m.stopped = true;
        m.removed = true;
    }
}
