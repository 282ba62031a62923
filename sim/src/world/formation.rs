//! How a group's cluster comes into being, as Ra's `ra:start_cluster/3` (`ra.erl`) forms one: every
//! member starts as a new server, and once they have started, one of them is told `trigger_election`.
//! A new server arms no election timer of its own (`ra_server_proc:follower(enter)` skips it while
//! `ra_server:is_new`), so without the trigger a new cluster never elects.
//!
//! Ra then waits `members(TriggeredId, N × 5 s)` for a leader; if none comes, it force-deletes the
//! servers it started and returns `cluster_not_formed`, and the caller (RabbitMQ declaring a queue)
//! tries again. The world models that retry as a new trigger to a member drawn again, for as long as no
//! member knows a leader or holds an entry (deleting and re-creating servers whose logs are empty
//! would differ only in the terms they remember). Once a member holds an entry, a restart arms its
//! timer (`follower(enter, recovered)`), and once a follower knows a leader, Ra's monitor on it does:
//! the cluster is formed and the world triggers nothing more.
//!
//! This module owns that state per group ([`Formation`]): when to trigger, whom, and the check after.

use raft_core::LogIndex;
use raft_core::consensus::server::Input;
use scenarios::rng::below;

use super::node::ServerWork;
use super::{Event, World};
use crate::trace::Kind;

/// Ra's `?DEFAULT_TIMEOUT` (`ra.hrl`), which `start_cluster` multiplies by the number of servers.
const START_TIMEOUT_NS: u64 = 5_000_000_000;

/// Where a group's cluster formation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Formation {
    /// Its members are starting: the trigger goes out once every member that can start has.
    Starting,
    /// One member was triggered; the check after Ra's timeout is scheduled.
    Triggered,
    /// A member knows a leader or holds an entry: elections need no trigger any more.
    Formed,
}

impl World {
    /// Triggers group `g`'s election if its members have all started (a member on a node that is down
    /// or whose member stopped does not hold it up: Ra's `start_cluster` triggers among those that
    /// started). Called when a member comes up and at every node's tick.
    pub(super) fn try_trigger_formation(&mut self, g: usize) {
        if self.formation[g] != Formation::Starting || !self.created[g] || self.checkers.first().is_some() {
            return;
        }
        let mut started = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.up || n.fs.is_powered_off() {
                continue;
            }
            let m = &n.members[g];
            if m.host.is_some() {
                started.push(i);
            } else if n.booting || m.starting.is_some() {
                return; // its `start_server` has not returned yet
            }
        }
        if started.is_empty() {
            return;
        }
        let i = started[below(&mut self.sched_rng, started.len() as u64) as usize];
        self.formation[g] = Formation::Triggered;
        self.count("elections triggered to form a cluster");
        self.note_member(i, g, Kind::Server, "trigger_election (the cluster's start)".into());
        self.nodes[i].members[g].server_box.push_back(ServerWork::Input(Input::TriggerElection));
        self.schedule(self.nodes.len() as u64 * START_TIMEOUT_NS, Event::FormationCheck { group: g });
    }

    /// Ra's `start_cluster` timeout after a trigger: formed, or triggered again.
    pub(super) fn formation_check(&mut self, g: usize) {
        if self.formation[g] != Formation::Triggered {
            return;
        }
        let formed = self.nodes.iter().any(|n| {
            n.up && n.members[g].host.as_ref().is_some_and(|h| {
                h.server.leader().is_some()
                    || h.log.snapshot().is_some()
                    || h.log.last_index_term().is_some_and(|(index, _)| index > LogIndex(0))
            })
        });
        if formed {
            self.formation[g] = Formation::Formed;
            return;
        }
        self.count("cluster starts retried (no leader after Ra's start timeout)");
        self.note(None, Kind::Phase, format!("g{}: no leader after the start timeout: triggered again", g + 1));
        self.formation[g] = Formation::Starting;
        self.try_trigger_formation(g);
    }
}
