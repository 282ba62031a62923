//! The network: sending a member's message (seeded latency, per-link FIFO, loss, duplication,
//! overtaking), delivering it (or dropping it at a down or cut-off node), and isolations and one-way
//! partitions.
//!
//! Owns: the link clocks, the current `Cut`, the network random stream. Must not step actors; a
//! delivered message goes into the member's mailbox (or its snapshot sender).

use raft_core::consensus::server::{Input, Message, Role, ServerId};
use scenarios::rng::below;

use scenarios::Fault;

use crate::trace::{self, Kind};

use super::node::ServerWork;
use super::timeline::{ArrowId, NO_ARROW};
use super::{Event, World};

/// A network cut around one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cut {
    pub(super) node: usize,
    /// Messages to the node are dropped.
    pub(super) inbound: bool,
    /// Messages from the node are dropped.
    pub(super) outbound: bool,
}

impl Cut {
    pub(super) fn drops(&self, from: Option<usize>, to: usize) -> bool {
        (self.inbound && self.node == to) || (self.outbound && from == Some(self.node))
    }
}

impl World {
    /// Cuts one node off from the network for `partition_ms`: both ways, or one way.
    pub(super) fn isolate(&mut self, i: usize, inbound: bool, outbound: bool, duration_ms: u64) {
        self.record_now(i, Fault::Isolate { inbound, outbound, duration_ms });
        self.cut = Some(Cut { node: i, inbound, outbound });
        for g in 0..self.cfg.spec.groups {
            let key = self.member_key(i, g);
            self.checkers.obligations.forget(key);
        }
        let what = match (inbound, outbound) {
            (true, true) => {
                self.count("isolations");
                "ISOLATED"
            }
            (true, false) => {
                self.count("one-way partitions");
                "DEAF (inbound messages dropped)"
            }
            _ => {
                self.count("one-way partitions");
                "MUTE (outbound messages dropped)"
            }
        };
        self.note(Some(i), Kind::Net, what.into());
        let span = match (inbound, outbound) {
            (true, true) => "isolated",
            (true, false) => "deaf",
            _ => "mute",
        };
        self.span_started(i, span, duration_ms * 1_000_000);
        self.schedule(duration_ms * 1_000_000, Event::Reconnect { node: i });
    }

    /// Whether a network fault of `percent` strikes this message (no draw when it is off, so that worlds
    /// without it keep their random streams).
    pub(super) fn net_fault(&mut self, percent: u32) -> bool {
        self.faults_on && percent > 0 && below(&mut self.net_rng, 100) < u64::from(percent)
    }

    /// Group `g`'s member on node `from` sends `msg` to member `to` (of the same group).
    pub(super) fn send(&mut self, from: usize, g: usize, to: &ServerId, msg: Message) {
        let Some((j, group)) = self.member_of(to) else { return };
        // A granted vote is a promise the voter's disk must keep (Raft: votedFor is stable before the
        // reply; Ra's `update_term_and_voted_for` → `ra_log_meta:store_sync`).
        if let Message::RequestVoteReply { term, granted: true } = msg {
            let m = &mut self.nodes[from].members[g];
            m.vote_granted = Some((m.uid.clone(), term, to.clone()));
        }
        // The leader contacted the follower when it sent, whether or not the network then loses the
        // message (as a message to a cut-off node counts): the obligation is on the leader.
        if matches!(
            msg,
            Message::AppendEntries { .. } | Message::InstallSnapshot { .. } | Message::InstallSnapshotLive { .. }
        ) {
            let (l, f) = (self.member_key(from, g), self.member_key(j, group));
            self.checkers.obligations.contacted(l, f);
        }
        if self.net_fault(self.cfg.spec.message_loss_percent) {
            self.count("messages lost");
            self.arrow_sent(from, j, g, &msg, None, false);
            return;
        }
        let (lo, hi) = (self.cfg.spec.latency_min_us, self.cfg.spec.latency_max_us.max(self.cfg.spec.latency_min_us));
        let latency = (lo + below(&mut self.net_rng, hi - lo + 1)) * 1_000;
        // Per-link FIFO, as Erlang distribution delivers, unless this message overtakes.
        let at = if self.net_fault(self.cfg.spec.message_reorder_percent) {
            self.count("messages reordered");
            self.now_ns + latency
        } else {
            let at = (self.now_ns + latency).max(self.link_clock.get(&(from, j)).copied().unwrap_or(0));
            self.link_clock.insert((from, j), at);
            at
        };
        let name = self.nodes[from].members[g].name.clone();
        if self.net_fault(self.cfg.spec.message_duplicate_percent) {
            self.count("messages duplicated");
            let arrow = self.arrow_sent(from, j, g, &msg, Some(at), true);
            self.seq += 1;
            let copy = Event::Deliver { to: j, group, from: name.clone(), msg: msg.clone(), arrow };
            self.queue.insert((at, self.seq), copy);
        }
        let arrow = self.arrow_sent(from, j, g, &msg, Some(at), false);
        self.seq += 1;
        self.queue.insert((at, self.seq), Event::Deliver { to: j, group, from: name, msg, arrow });
    }

    /// A message arrives (or is dropped: its node down or cut off).
    pub(super) fn deliver(&mut self, to: usize, group: usize, from: ServerId, msg: Message, arrow: ArrowId) {
        let from_member = self.member_of(&from);
        let from_node = from_member.map(|(j, _)| j);
        let dropped = !self.nodes[to].up || self.cut.is_some_and(|c| c.drops(from_node, to));
        if arrow != NO_ARROW {
            self.arrow_arrived(arrow, dropped);
        }
        if self.cfg.trace_messages {
            let verb = if dropped { "dropped" } else { "from" };
            let detail = format!("{verb} {from}: {}", trace::describe_message(&msg));
            self.note_member(to, group, Kind::Msg, detail);
        }
        if dropped {
            self.count("messages dropped");
            return;
        }
        if let (Message::PreVote { term, .. }, Some((f, _))) = (&msg, from_member)
            && let Some(h) = self.nodes[to].members[group].host.as_ref()
            && *h.server.role() == Role::Leader
            && h.server.current_term() >= *term
            && h.server.peers().contains_key(&from)
        {
            let (l, f) = (self.member_key(to, group), self.member_key(f, group));
            self.checkers.obligations.pre_vote_delivered(l, f, self.now_ns);
        }
        let m = &mut self.nodes[to].members[group];
        match &msg {
            Message::AppendEntries { .. } => m.last_from_leader = Some((self.now_ns, from.clone(), "append")),
            Message::InstallSnapshot { .. } => m.last_from_leader = Some((self.now_ns, from.clone(), "snapshot chunk")),
            _ => {}
        }
        if matches!(
            msg,
            Message::InstallSnapshotAck { .. }
                | Message::InstallSnapshotLiveAck { .. }
                | Message::InstallSnapshotDeclined { .. }
        ) {
            let fx = match m.senders.get_mut(&from) {
                Some((s, _)) => s.handle_message(&msg),
                None => return,
            };
            self.run_sender_effects(to, group, &from, fx);
            return;
        }
        m.server_box.push_back(ServerWork::Input(Input::Message { from, msg }));
    }

    /// An isolation or one-way partition of `node` ends.
    pub(super) fn reconnect(&mut self, node: usize) {
        if self.cut.is_some_and(|c| c.node == node) {
            self.cut = None;
            self.spans_ended(Some(node), &["isolated", "deaf", "mute"]);
            self.note(Some(node), Kind::Net, "reconnected".into());
        }
    }
}
