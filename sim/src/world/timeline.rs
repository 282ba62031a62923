//! The run's timeline, for drawing it (`sim run --html`): every member's role, term and indexes over
//! time, every message from its send to its delivery (or drop or loss), fault spans (isolations, slow
//! and failing disks) and, for each rendered trace line, when it happened, on which node, of what kind.
//!
//! Owns: the [`Timeline`] a run records when `WorldConfig::record_timeline` is on, and the world's hooks
//! that fill it. Must not change the run: nothing here draws randomness, schedules an event or feeds
//! the trace hash, so a run with a timeline is the same run (same hash) as without. Off, nothing is
//! recorded and each hook is one branch.

use std::collections::VecDeque;

use raft_core::consensus::server::{Message, Role};

use super::World;
use crate::trace::Kind;

/// Messages kept: past it the earliest are dropped (and counted), so that a long run's page stays a few
/// MB and still shows the messages around its end, where a violation is found.
pub const MAX_MESSAGES: usize = 25_000;
/// State changes kept before further ones are only counted.
pub const MAX_STATES: usize = 200_000;

/// A member's state at a moment, as a lane draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneRole {
    /// Its node is down.
    NodeDown,
    /// Its node is up but the server is not running (starting, stopped, removed).
    NotRunning,
    /// Following.
    Follower,
    /// Asking for pre-votes.
    PreVoteCandidate,
    /// Asking for votes.
    Candidate,
    /// Leading.
    Leader,
}

impl LaneRole {
    /// The name the page shows.
    pub fn name(self) -> &'static str {
        match self {
            LaneRole::NodeDown => "node down",
            LaneRole::NotRunning => "not running",
            LaneRole::Follower => "follower",
            LaneRole::PreVoteCandidate => "pre-vote",
            LaneRole::Candidate => "candidate",
            LaneRole::Leader => "leader",
        }
    }
}

/// One member's state from `time_ns` until its next sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSample {
    /// When it began.
    pub time_ns: u64,
    /// Index into [`Timeline::lanes`].
    pub lane: usize,
    /// Its role (or that it is down).
    pub role: LaneRole,
    /// Its current term (0 while down).
    pub term: u64,
    /// The last index written to its log (durable as far as the WAL has said).
    pub written: u64,
    /// Its commit index.
    pub commit: u64,
    /// The last index its state machine applied.
    pub applied: u64,
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Still in flight when the run ended.
    InFlight,
    /// Arrived and handed to the member.
    Delivered,
    /// Dropped on arrival: its node down or cut off.
    Dropped,
    /// Lost by the network (`message_loss_percent`): never arrives.
    Lost,
}

impl Fate {
    /// The name the page shows.
    pub fn name(self) -> &'static str {
        match self {
            Fate::InFlight => "in flight",
            Fate::Delivered => "delivered",
            Fate::Dropped => "dropped",
            Fate::Lost => "lost",
        }
    }
}

/// One message between two members' lanes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    /// When it was sent.
    pub sent_ns: u64,
    /// When it arrived (or was due to; the send time for a lost one).
    pub arrives_ns: u64,
    /// The sender's lane.
    pub from_lane: usize,
    /// The receiver's lane.
    pub to_lane: usize,
    /// The kind a reader toggles: append, heartbeat, append reply, vote, snapshot.
    pub kind: &'static str,
    /// The message in one line (the MSG line's text).
    pub text: String,
    /// What became of it.
    pub fate: Fate,
    /// A copy the network duplicated.
    pub duplicate: bool,
}

/// A fault that lasts: an isolation or one-way partition, a slow disk, sticky disk errors, a full disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The node it struck.
    pub node: usize,
    /// When it began.
    pub from_ns: u64,
    /// When it ended (or the end of the run).
    pub to_ns: u64,
    /// `isolated`, `deaf`, `mute`, `slow disk`, `disk errors`, `disk full`.
    pub kind: &'static str,
    /// Its trace line (index into the run's trace).
    pub line: usize,
}

/// When, where and of what kind each rendered trace line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineMeta {
    /// When it happened.
    pub time_ns: u64,
    /// The node it is about (`None`: the cluster).
    pub node: Option<usize>,
    /// Its kind (the trace's column).
    pub kind: Kind,
}

/// One member's lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    /// The member's node.
    pub node: usize,
    /// The member's group.
    pub group: usize,
    /// The member's name (`n1`, `n2_g1`).
    pub name: String,
}

/// What a run records for drawing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// The nodes' names.
    pub nodes: Vec<String>,
    /// One lane per member: node-major (node 0's groups, then node 1's).
    pub lanes: Vec<Lane>,
    /// Each member's state, sampled whenever it changed (first: each lane's state after the first step).
    pub states: Vec<StateSample>,
    /// Every message sent, the last [`MAX_MESSAGES`] of them.
    pub arrows: VecDeque<Arrow>,
    /// The faults that lasted.
    pub spans: Vec<Span>,
    /// Parallel to the run's trace lines.
    pub lines: Vec<LineMeta>,
    /// When the safety phase ended (faults off), if it did.
    pub heal_ns: Option<u64>,
    /// The earliest messages, dropped past [`MAX_MESSAGES`].
    pub omitted_arrows: u64,
    /// State changes past [`MAX_STATES`].
    pub omitted_states: u64,
    /// Each lane's last sample (to record changes only).
    last: Vec<Option<StateSample>>,
}

/// Which message of the run an undelivered message is (its arrow's place once the dropped ones are
/// counted in); `NO_ARROW`: none is recorded.
pub(super) type ArrowId = u64;
pub(super) const NO_ARROW: ArrowId = u64::MAX;

/// The kind of `msg` a reader toggles.
pub(super) fn message_kind(msg: &Message) -> &'static str {
    match msg {
        Message::AppendEntries { entries, .. } if entries.is_empty() => "heartbeat",
        Message::AppendEntries { .. } => "append",
        Message::AppendEntriesReply { .. } => "append reply",
        Message::PreVote { .. }
        | Message::PreVoteReply { .. }
        | Message::RequestVote { .. }
        | Message::RequestVoteReply { .. }
        | Message::ElectionTimeout => "vote",
        Message::InstallSnapshot { .. }
        | Message::InstallSnapshotLive { .. }
        | Message::InstallSnapshotLiveAck { .. }
        | Message::InstallSnapshotAck { .. }
        | Message::InstallSnapshotDeclined { .. } => "snapshot",
    }
}

impl Timeline {
    fn new(nodes: Vec<String>, lanes: Vec<Lane>) -> Timeline {
        let last = vec![None; lanes.len()];
        Timeline {
            nodes,
            lanes,
            states: Vec::new(),
            arrows: VecDeque::new(),
            spans: Vec::new(),
            lines: Vec::new(),
            heal_ns: None,
            omitted_arrows: 0,
            omitted_states: 0,
            last,
        }
    }
}

impl World {
    /// Starts recording the timeline (at world construction, when the config asks for it).
    pub(super) fn start_timeline(&mut self) {
        let groups = self.cfg.spec.groups;
        let lanes = (0..self.nodes.len())
            .flat_map(|i| (0..groups).map(move |g| (i, g)))
            .map(|(i, g)| Lane { node: i, group: g, name: self.nodes[i].members[g].name.to_string() })
            .collect();
        let nodes = self.nodes.iter().map(|n| n.name.clone()).collect();
        self.timeline = Some(Box::new(Timeline::new(nodes, lanes)));
    }

    fn lane_of(&self, node: usize, group: usize) -> usize {
        node * self.cfg.spec.groups + group
    }

    /// Records each member whose role, term or indexes changed since its last sample.
    pub(super) fn sample_states(&mut self) {
        let Some(mut t) = self.timeline.take() else { return };
        for lane in 0..t.lanes.len() {
            let (i, g) = (t.lanes[lane].node, t.lanes[lane].group);
            let n = &self.nodes[i];
            let m = &n.members[g];
            let mut s = StateSample {
                time_ns: self.now_ns,
                lane,
                role: LaneRole::NodeDown,
                term: 0,
                written: 0,
                commit: 0,
                applied: 0,
            };
            if n.up {
                s.role = LaneRole::NotRunning;
                if let Some(h) = m.host.as_ref() {
                    let server = &h.server;
                    s.role = match server.role() {
                        Role::Follower => LaneRole::Follower,
                        Role::PreVoteCandidate => LaneRole::PreVoteCandidate,
                        Role::Candidate => LaneRole::Candidate,
                        Role::Leader => LaneRole::Leader,
                    };
                    s.term = server.current_term().0;
                    s.written = h.log.last_written().0.0;
                    s.commit = server.commit_index().0;
                    s.applied = server.last_applied().0;
                }
            }
            let changed = t.last[lane].is_none_or(|p| {
                (p.role, p.term, p.written, p.commit, p.applied) != (s.role, s.term, s.written, s.commit, s.applied)
            });
            if changed {
                t.last[lane] = Some(s);
                if t.states.len() < MAX_STATES {
                    t.states.push(s);
                } else {
                    t.omitted_states += 1;
                }
            }
        }
        self.timeline = Some(t);
    }

    /// A message from group `g`'s member on node `from` to node `to`'s, due at `arrives_ns` (`None`: the
    /// network lost it): records its arrow (the send), returning which it is (or [`NO_ARROW`]).
    pub(super) fn arrow_sent(
        &mut self,
        from: usize,
        to: usize,
        g: usize,
        msg: &Message,
        arrives_ns: Option<u64>,
        duplicate: bool,
    ) -> ArrowId {
        let (arrives_ns, fate) = match arrives_ns {
            Some(at) => (at, Fate::InFlight),
            None => (self.now_ns, Fate::Lost),
        };
        let (from_lane, to_lane) = (self.lane_of(from, g), self.lane_of(to, g));
        let now = self.now_ns;
        let Some(t) = self.timeline.as_mut() else { return NO_ARROW };
        if t.arrows.len() >= MAX_MESSAGES {
            t.arrows.pop_front();
            t.omitted_arrows += 1;
        }
        t.arrows.push_back(Arrow {
            sent_ns: now,
            arrives_ns,
            from_lane,
            to_lane,
            kind: message_kind(msg),
            text: crate::trace::describe_message(msg),
            fate,
            duplicate,
        });
        t.omitted_arrows + t.arrows.len() as u64 - 1
    }

    /// The message of arrow `id` arrived (or was dropped on arrival).
    pub(super) fn arrow_arrived(&mut self, id: ArrowId, dropped: bool) {
        let Some(t) = self.timeline.as_mut() else { return };
        let Some(place) = id.checked_sub(t.omitted_arrows) else { return }; // dropped already
        if let Some(a) = t.arrows.get_mut(place as usize) {
            a.fate = if dropped { Fate::Dropped } else { Fate::Delivered };
        }
    }

    /// A fault lasting `duration_ns` from now on node `i` (its trace line is the last one rendered).
    pub(super) fn span_started(&mut self, i: usize, kind: &'static str, duration_ns: u64) {
        let now = self.now_ns;
        let line = self.trace.len().saturating_sub(1);
        if let Some(t) = self.timeline.as_mut() {
            t.spans.push(Span { node: i, from_ns: now, to_ns: now + duration_ns, kind, line });
        }
    }

    /// The spans of node `i` (every node: `None`) of the given kinds that are still on end now.
    pub(super) fn spans_ended(&mut self, node: Option<usize>, kinds: &[&str]) {
        let now = self.now_ns;
        if let Some(t) = self.timeline.as_mut() {
            for s in t.spans.iter_mut().filter(|s| node.is_none_or(|i| s.node == i) && kinds.contains(&s.kind)) {
                s.to_ns = s.to_ns.min(now);
            }
        }
    }

    /// The heal: every lasting fault ends.
    pub(super) fn timeline_healed(&mut self) {
        let now = self.now_ns;
        self.spans_ended(None, &["isolated", "deaf", "mute", "slow disk", "disk errors", "disk full"]);
        if let Some(t) = self.timeline.as_mut() {
            t.heal_ns = Some(now);
        }
    }

    /// A trace line was rendered.
    pub(super) fn line_rendered(&mut self, node: Option<usize>, kind: Kind) {
        let now = self.now_ns;
        if let Some(t) = self.timeline.as_mut() {
            t.lines.push(LineMeta { time_ns: now, node, kind });
        }
    }
}
