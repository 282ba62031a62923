//! Why a liveness checker fired: what each member of the stuck group is doing at the end of the run,
//! and a one-line verdict naming the member that holds the group back and what it waits for.
//!
//! A `converges` or `lagging-follower-caught-up` violation says *that* the cluster is stuck; this says
//! *why* — a follower in snapshot backoff that the leader sends nothing until its retry timer fires, a
//! member that is down, a group with no leader — from the state the run ended in: each server's role,
//! term and indexes, the leader's view of each peer (next and match index, snapshot sender, backoff and
//! when its retry timer fires), and the last append or snapshot chunk each member received and when.
//!
//! Owns: reading the world into those lines. Must not change the world (it runs after the checkers).

use raft_core::consensus::server::{PeerStatus, Role, Timer};

use super::{Event, World};

/// What one member is doing, and what the verdict needs to know about it.
struct MemberState {
    line: String,
    name: String,
    applied: Option<u64>,
    leader_in: Option<u64>,
}

impl World {
    /// The groups a liveness violation concerns: `lagging-follower-caught-up` names its follower;
    /// `converges` every group that did not converge (all of them when none failed that way: then
    /// nothing, or no operation of some kind, was answered after the heal). None for any other checker.
    pub(super) fn liveness_groups(&self, v: &crate::checkers::Violation) -> Vec<usize> {
        let created = (0..self.cfg.spec.groups).filter(|&g| self.created[g]);
        match v.checker.as_str() {
            "lagging-follower-caught-up" => self
                .member_of(&raft_core::consensus::server::ServerId(v.node.clone()))
                .map(|(_, g)| g)
                .into_iter()
                .collect(),
            "converges" => {
                let stuck: Vec<usize> = created
                    .clone()
                    .filter(|&g| crate::checkers::converged_in(&self.member_view(g), &self.config_members(g)).is_err())
                    .collect();
                if stuck.is_empty() { created.collect() } else { stuck }
            }
            _ => Vec::new(),
        }
    }

    /// The diagnosis of group `g`: the verdict first, then a line per member. `focus`: the member the
    /// violation names (`lagging-follower-caught-up`'s follower), judged before the others.
    pub(super) fn diagnose_group(&self, g: usize, focus: Option<&str>) -> Vec<String> {
        let members: Vec<MemberState> = (0..self.nodes.len()).map(|i| self.member_state(i, g)).collect();
        let mut out = vec![format!("why: {}", self.verdict(g, &members, focus))];
        out.extend(members.into_iter().map(|m| format!("  {}", m.line)));
        out
    }

    fn member_state(&self, i: usize, g: usize) -> MemberState {
        let n = &self.nodes[i];
        let m = &n.members[g];
        let name = m.name.0.clone();
        let down = |why: String| MemberState {
            line: format!("{name}: {why}"),
            name: name.clone(),
            applied: None,
            leader_in: None,
        };
        if !n.up {
            return down(match self.restart_at_ns(i) {
                Some(at) => format!("down (its node restarts at {})", seconds(at)),
                None => "down (its node is not scheduled to restart)".into(),
            });
        }
        let Some(h) = m.host.as_ref() else {
            let why = if m.removed {
                "not running (removed itself as leader; an operator starts it again)"
            } else if m.stopped {
                "not running (its supervisor gave up)"
            } else if m.starting.is_some() {
                "starting (waiting for its first entry to be written)"
            } else if m.waits_for_wal {
                "starting (its init waits for the WAL's recovery)"
            } else {
                "not running"
            };
            return down(why.into());
        };
        let s = &h.server;
        let (written, written_term) = h.log.last_written();
        let mut line = format!(
            "{name}: {}, term {}, written {} (term {}), commit {}, applied {}",
            role_name(s.role()),
            s.current_term(),
            written,
            written_term,
            s.commit_index(),
            s.last_applied()
        );
        if let Some(leader) = s.leader().filter(|_| *s.role() != Role::Leader) {
            line.push_str(&format!(", leader {leader}"));
        }
        if let Some(index) = s.receiving_snapshot() {
            line.push_str(&format!(", receiving snapshot {index}"));
        }
        if let Some(why) = s.awaiting_condition() {
            line.push_str(&format!(", in await_condition ({why:?})"));
        }
        match (&m.last_from_leader, s.role()) {
            (_, Role::Leader) => {}
            (Some((at, from, what)), _) => line.push_str(&format!("; last {what} from {from} at {}", seconds(*at))),
            (None, _) => line.push_str("; no append from a leader since it started"),
        }
        if *s.role() == Role::Leader {
            for (peer, p) in s.peers() {
                let status = match p.status {
                    PeerStatus::Normal => "replicating".to_owned(),
                    PeerStatus::SendingSnapshot => "sending it a snapshot".to_owned(),
                    PeerStatus::SnapshotBackoff(failures) => {
                        let retry = self
                            .timer_at_ns(i, g, &Timer::SnapshotRetry(peer.clone()))
                            .map_or("no retry timer".to_owned(), |at| format!("retry at {}", seconds(at)));
                        format!("snapshot backoff after {failures} failed senders, {retry}")
                    }
                };
                line.push_str(&format!("; sees {peer}: next {}, match {}, {status}", p.next_index, p.match_index));
            }
        }
        let leader_in = (*s.role() == Role::Leader).then(|| s.current_term().0);
        MemberState { line, name, applied: Some(s.last_applied().0), leader_in }
    }

    /// The one member that holds the group back, and why.
    fn verdict(&self, g: usize, members: &[MemberState], focus: Option<&str>) -> String {
        let up: Vec<&MemberState> = members.iter().filter(|m| m.applied.is_some()).collect();
        if up.is_empty() {
            return "every member of the group is down or not running".into();
        }
        let Some(leader_i) =
            (0..members.len()).filter(|&i| members[i].leader_in.is_some()).max_by_key(|&i| members[i].leader_in)
        else {
            let terms: Vec<String> = (0..self.nodes.len())
                .filter_map(|i| {
                    let s = &self.nodes[i].members[g].host.as_ref()?.server;
                    Some(format!("{} {} in term {}", members[i].name, role_name(s.role()), s.current_term()))
                })
                .collect();
            return format!("no leader at the end: {}", terms.join(", "));
        };
        let leader = &members[leader_i];
        let host = self.nodes[leader_i].members[g].host.as_ref().expect("a leader runs");
        let commit = host.server.commit_index().0;
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&i| Some(members[i].name.as_str()) != focus);
        for i in order {
            let m = &members[i];
            if i == leader_i {
                continue;
            }
            let peer = &self.nodes[i].members[g].name;
            let view = host.server.peers().get(peer);
            match (m.applied, view) {
                (_, None) => continue,
                (None, _) => {
                    return format!(
                        "{} is down or not running: {}",
                        m.name,
                        m.line.split_once(": ").map_or("", |p| p.1)
                    );
                }
                (Some(applied), Some(p)) if applied < commit => {
                    let why = match p.status {
                        PeerStatus::SnapshotBackoff(_) => {
                            let until = self
                                .timer_at_ns(leader_i, g, &Timer::SnapshotRetry(peer.clone()))
                                .map_or("with no retry timer set".to_owned(), |at| format!("until {}", seconds(at)));
                            format!("is in snapshot backoff {until}; the leader sends it nothing")
                        }
                        PeerStatus::SendingSnapshot => "is being sent a snapshot that has not completed".to_owned(),
                        PeerStatus::Normal => format!(
                            "is behind: the leader's next index for it is {}, its match index {}",
                            p.next_index, p.match_index
                        ),
                    };
                    return format!(
                        "{} {why} (applied {applied}, the leader {} committed {commit})",
                        m.name, leader.name
                    );
                }
                _ => {}
            }
        }
        format!("no member lags the leader {} (commit {commit}); the leader committed nothing new", leader.name)
    }

    /// When node `i` is scheduled to restart.
    fn restart_at_ns(&self, i: usize) -> Option<u64> {
        self.queue.iter().find_map(|(&(at, _), e)| matches!(e, Event::Restart { node } if *node == i).then_some(at))
    }

    /// When member (`i`, `g`)'s live `timer` fires (a stale generation or incarnation is not live).
    fn timer_at_ns(&self, i: usize, g: usize, timer: &Timer) -> Option<u64> {
        let n = &self.nodes[i];
        let live = n.members[g].timer_generation.get(timer)?;
        self.queue.iter().find_map(|(&(at, _), e)| match e {
            Event::Timer { node, group, incarnation, timer: t, generation }
                if *node == i && *group == g && *incarnation == n.incarnation && t == timer && generation == live =>
            {
                Some(at)
            }
            _ => None,
        })
    }
}

fn role_name(role: &Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Candidate => "candidate",
        Role::PreVoteCandidate => "pre-vote candidate",
        Role::Follower => "follower",
    }
}

fn seconds(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}
