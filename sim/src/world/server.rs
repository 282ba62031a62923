//! A member's consensus server: feeding it its inputs (log events, messages, timers, client commands),
//! executing the effects it returns in order, its timers, and the snapshot sender and accept plumbing
//! around it.
//!
//! Owns: `step_server`, `run_effect(s)`, timer generations, the snapshot sender actors and the follower's
//! accept path. Must not send a message except through `World::send` (`network`), nor answer clients
//! except through `client_done` (`client`).

use raft_core::consensus::StorageLog;
use raft_core::consensus::kv::KvMachine;
use raft_core::consensus::sender::{SenderConfig, SenderEffect, SnapshotSender};
use raft_core::consensus::server::{Effect, Entry, Input, Message, Server, ServerId, Timer};
use raft_core::storage::snapshot::{self, SnapshotAccept};
use raft_core::storage::{LogEvent, StorageError};
use raft_core::{Bug, LogIndex, Term};

use crate::trace::Kind;

use super::node::{Host, ServerWork};
use super::supervision::Failed;
use super::{Event, World};

impl World {
    pub(super) fn step_server(&mut self, i: usize, g: usize, work: ServerWork) {
        let bugs = self.cfg.bugs.clone();
        let now_ms = self.now_ns / 1_000_000;
        let mut out = Vec::new();
        let n = &mut self.nodes[i];
        // A new server waiting for its first entry.
        if let Some((start, process)) = n.members[g].starting.take() {
            let ServerWork::Log(event) = work else {
                // A message, timer or command for a server that is not running yet is lost, as mail to an
                // Erlang name nobody has registered is; the start goes on.
                n.members[g].starting = Some((start, process));
                return;
            };
            match start.handle_event(&event, &bugs, &mut n.shared, &mut n.names, &mut n.fs, &mut out) {
                Ok(Ok(log)) => {
                    let cfg = self.consensus_config(i, g);
                    let n = &mut self.nodes[i];
                    let mut log = log;
                    let mut slog = StorageLog { log: &mut log, shared: &mut n.shared, fs: &mut n.fs, out: &mut out };
                    match Server::recover(cfg, Term(0), None, LogIndex(0), None, &mut slog) {
                        Ok((server, fx)) => {
                            n.members[g].host = Some(Host::new(server, log, process));
                            self.route(i, out);
                            self.after_recovery(i, g);
                            self.run_effects(i, g, fx);
                            self.try_trigger_formation(g);
                        }
                        Err(e) => {
                            self.route(i, out);
                            self.actor_failed(i, Failed::Member(g), "server start", e, true);
                        }
                    }
                }
                Ok(Err(still)) => {
                    n.members[g].starting = Some((still, process));
                    self.route(i, out);
                }
                Err(e) => {
                    self.route(i, out);
                    self.actor_failed(i, Failed::Member(g), "server start", e, true);
                }
            }
            return;
        }
        let Some(host) = n.members[g].host.as_mut() else { return };
        if matches!(work, ServerWork::LogTick) {
            match host.log.tick(&n.shared, &mut out) {
                Ok(true) => {
                    self.count("resends after a WAL restart (tick)");
                    self.route(i, out);
                }
                Ok(false) => {}
                Err(e) => {
                    self.route(i, out);
                    self.actor_failed(i, Failed::Member(g), "server", e, false);
                }
            }
            return;
        }
        let mut notes: Vec<String> = Vec::new();
        // Whether this step is a snapshot's pre-phase, the one place a running Ra server crashes on
        // `wal_down` (`{ok, L} = ra_log:write_sparse(…)`); everywhere else it waits for the WAL.
        let mut pre_phase = false;
        let result: Result<Vec<Effect>, StorageError> = (|| {
            let input = match work {
                ServerWork::Log(event) => {
                    if matches!(event, LogEvent::SnapshotWritten { .. }) {
                        host.refs_before_snapshot = Some(host.log.segrefs().to_vec());
                        host.written_before_event =
                            Some((host.log.last_written().0, crate::checkers::LogEventHandled::Snapshot));
                    }
                    if let LogEvent::Segments { ranges, .. } = &event {
                        host.flushes_handled = ranges.iter().filter_map(|(t, seq)| Some((*t, seq.last()?))).collect();
                        host.written_before_event =
                            Some((host.log.last_written().0, crate::checkers::LogEventHandled::Flush));
                    }
                    let unlinked = host.log.handle_event(&event, &mut n.shared, &mut n.fs, &mut out)?;
                    if let LogEvent::SnapshotWritten { meta, live_indexes, .. } = &event {
                        notes.push(format!("snapshot {} written (live {live_indexes})", meta.index));
                    }
                    if let LogEvent::SnapshotError { meta, error, .. } = &event {
                        notes.push(format!("snapshot {} failed ({error}); what was written of it deleted", meta.index));
                    }
                    if !unlinked.is_empty() {
                        notes.push(format!("unlinked segments {unlinked:?}"));
                    }
                    match event {
                        LogEvent::Written { .. } => Input::Written,
                        LogEvent::SnapshotWritten { meta, .. } => Input::SnapshotWritten { index: meta.index },
                        LogEvent::SnapshotError { meta, .. } => Input::SnapshotFailed { index: meta.index },
                        LogEvent::Segments { .. } | LogEvent::ResendFrom { .. } => return Ok(Vec::new()),
                    }
                }
                ServerWork::Input(input) => input,
                ServerWork::LogTick => unreachable!("handled above"),
            };
            pre_phase = matches!(&input, Input::Message { msg: Message::InstallSnapshotLive { .. }, .. });
            let mut slog = StorageLog { log: &mut host.log, shared: &mut n.shared, fs: &mut n.fs, out: &mut out };
            host.server.handle(now_ms, input, &mut slog)
        })();
        for line in notes {
            self.note_member(i, g, Kind::Snapshot, line);
        }
        self.route(i, out);
        let step_completed = result.is_ok();
        match result {
            Ok(fx) => self.run_effects(i, g, fx),
            Err(e) => self.server_step_failed(i, g, e, pre_phase),
        }
        self.observe(i, g, step_completed);
    }

    pub(super) fn run_effects(&mut self, i: usize, g: usize, fx: Vec<Effect>) {
        for e in fx {
            if !self.nodes[i].up {
                return;
            }
            if !self.run_effect(i, g, e) {
                return;
            }
        }
    }

    pub(super) fn timer_event(&mut self, i: usize, g: usize, timer: Timer, after_ms: Option<u64>) {
        if let (Timer::Election, Some(ms), true) = (&timer, after_ms, self.cfg.checkers) {
            let spec = &self.cfg.spec;
            let result = crate::checkers::election_timeout_in_range(
                ms,
                spec.election_timeout_min_ms,
                spec.election_timeout_max_ms,
            );
            let name = self.nodes[i].members[g].name.0.clone();
            self.checkers.judge("election-timeouts", &name, self.now_ns, result);
        }
        let n = &mut self.nodes[i];
        let generation = n.members[g].timer_generation.entry(timer.clone()).or_default();
        *generation += 1;
        let (generation, incarnation) = (*generation, n.incarnation);
        if let Some(ms) = after_ms {
            self.schedule(ms * 1_000_000, Event::Timer { node: i, group: g, incarnation, timer, generation });
        }
    }

    /// Runs one effect; `false` when the server did not survive it, so the rest of its list must not run.
    pub(super) fn run_effect(&mut self, i: usize, g: usize, e: Effect) -> bool {
        match e {
            Effect::Send { to, msg } => self.send(i, g, &to, msg),
            Effect::SetTimer { timer, after_ms } => self.timer_event(i, g, timer, Some(after_ms)),
            Effect::CancelTimer(timer) => self.timer_event(i, g, timer, None),
            Effect::PersistTermAndVote { term, voted_for } => {
                let n = &mut self.nodes[i];
                let uid = n.members[g].uid.clone();
                if let Err(e) = n.meta.store_term_and_vote_sync(&mut n.fs, "", &uid, term, voted_for.map(|v| v.0)) {
                    // Ra's server waits in `ra_log_meta:store_sync`: a store that fails — a disk error, or
                    // the power going — takes the server with it before the vote it was about to give.
                    self.actor_failed(i, Failed::Meta(g), "meta", e, false);
                    return false;
                }
            }
            Effect::PersistLastApplied(index) => {
                let n = &mut self.nodes[i];
                let uid = n.members[g].uid.clone();
                n.meta.store_last_applied(&uid, index);
            }
            Effect::Reply { client, request, result } => self.client_done(client, request, Some(result), None),
            Effect::Redirect { client, request, leader } => {
                let hint = leader.and_then(|l| self.member_of(&l)).map(|(j, _)| j);
                self.client_done(client, request, None, hint)
            }
            Effect::TakeSnapshot { meta, state, live_indexes } => {
                self.count("snapshots taken");
                let n = &mut self.nodes[i];
                if let Some(h) = n.members[g].host.as_ref() {
                    let env = h.log.take_snapshot(meta, state, live_indexes);
                    self.route(i, vec![env]);
                }
            }
            Effect::StartSnapshotSender { peer, .. } => self.start_sender(i, g, peer),
            Effect::MembershipReply { change, result } => self.membership_reply(i, g, change, result),
            Effect::Stop => self.member_stopped(i, g),
            Effect::AcceptSnapshotChunk { meta, chunk, last, data, leader } => {
                self.accept_chunk(i, g, meta, chunk, last, data, leader)
            }
            Effect::AbortSnapshotAccept => {
                let n = &mut self.nodes[i];
                if let Some(a) = n.members[g].accept.take()
                    && let Err(e) = a.abort(&mut n.fs)
                {
                    self.actor_failed(i, Failed::Member(g), "snapshot abort", e, false);
                }
            }
        }
        true
    }

    /// Starts a sender with the current snapshot (the one `StartSnapshotSender` names, or a newer one).
    pub(super) fn start_sender(&mut self, i: usize, g: usize, peer: ServerId) {
        self.count("snapshot transfers");
        let n = &mut self.nodes[i];
        let m = &mut n.members[g];
        let Some(host) = m.host.as_mut() else { return };
        let term = host.server.current_term();
        let prepared: Result<_, StorageError> = (|| {
            let meta = host.log.snapshot().cloned().expect("a sender implies a snapshot");
            let state = snapshot::read_snapshot_state(&mut n.fs, m.uid.as_str(), &meta)?;
            let mut live = Vec::new();
            // Ra's sender reads them with `read_entries` → `ra_log:partial_read` (`sparse_read` here).
            for li in host.log.live_indexes().clone().iter() {
                if let Some((t, p)) = host.log.sparse_read(li, &n.shared, &mut n.fs)? {
                    live.push(Entry { index: li, term: t, payload: p });
                }
            }
            Ok((meta, state, live))
        })();
        match prepared {
            Ok((meta, state, live)) => {
                let cfg = SenderConfig {
                    leader: m.name.clone(),
                    peer: peer.clone(),
                    term,
                    chunk_bytes: self.cfg.spec.snapshot_chunk_bytes as usize,
                    chunk_timeout_ms: 2_000,
                };
                let (sender, fx) = SnapshotSender::start(cfg, meta, &state, live);
                m.senders.insert(peer.clone(), (sender, 0));
                self.run_sender_effects(i, g, &peer, fx);
            }
            Err(e) => self.actor_failed(i, Failed::Sender(g, peer), "snapshot sender", e, false),
        }
    }

    pub(super) fn run_sender_effects(&mut self, i: usize, g: usize, peer: &ServerId, fx: Vec<SenderEffect>) {
        for e in fx {
            match e {
                SenderEffect::Send(msg) => self.send(i, g, peer, msg),
                SenderEffect::SetTimer { after_ms } => {
                    // A generation unique across senders: a finished sender's timers must never fire into
                    // the next sender for the same peer (Ra's sender is its own process).
                    let unique = self.seq + 1;
                    let n = &mut self.nodes[i];
                    let Some((_, generation)) = n.members[g].senders.get_mut(peer) else { continue };
                    *generation = unique;
                    let (generation, incarnation) = (*generation, n.incarnation);
                    let p = peer.clone();
                    self.schedule(
                        after_ms * 1_000_000,
                        Event::SenderTimer { node: i, group: g, incarnation, peer: p, generation },
                    );
                }
                SenderEffect::Report(input) => {
                    if matches!(input, Input::SnapshotSenderFailed { .. }) {
                        self.count("snapshot sender failures");
                    }
                    let m = &mut self.nodes[i].members[g];
                    m.senders.remove(peer);
                    m.server_box.push_back(ServerWork::Input(input));
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn accept_chunk(
        &mut self,
        i: usize,
        g: usize,
        meta: snapshot::SnapshotMeta,
        chunk: u32,
        last: bool,
        data: Vec<u8>,
        leader: ServerId,
    ) {
        let bugs = self.cfg.bugs.clone();
        let n = &mut self.nodes[i];
        let m = &mut n.members[g];
        let uid = m.uid.clone();
        let result: Result<Option<Accepted>, StorageError> = (|| {
            // Ra installs at the last chunk within the same step, so a duplicate of the first chunk finds a
            // follower whose applied index is the snapshot's and is declined. Here the install reaches the
            // server as a later input: a first chunk of the snapshot the log already holds arriving in
            // between must not begin an accept, which would mark and truncate the installed snapshot's
            // own directory (found by `sim hunt`: a duplicated chunk and a power cut left no snapshot
            // at all, `node-boots`).
            //
            // A first chunk of the snapshot an accept is already taking is a resend, not a new accept
            // (Ra's first `next` chunk finds its receive under way and `accept_chunk` ignores it).
            if chunk == 0 && !m.accept.as_ref().is_some_and(|a| a.has_begun(&meta)) {
                if m.host.as_ref().and_then(|h| h.log.snapshot()).is_some_and(|s| s.index >= meta.index) {
                    return Ok(None);
                }
                if let Some(old) = m.accept.take() {
                    old.abort(&mut n.fs)?;
                }
                m.accept = Some(SnapshotAccept::begin(&mut n.fs, uid.as_str(), &meta, &bugs)?);
            }
            let Some(mut accept) = m.accept.take() else { return Ok(None) };
            // Ra's `accept_chunk`: a resend of a chunk already taken is ignored (taking it again would
            // append its bytes twice: a state that decodes to other keys and indexes); one past the next
            // crashes the server.
            if !accept.takes_chunk(chunk)? {
                m.accept = Some(accept);
                return Ok(None);
            }
            if !last {
                accept.chunk(&mut n.fs, &data)?;
                m.accept = Some(accept);
                return Ok(None);
            }
            let received = accept.finish(&mut n.fs, &data, &KvMachine)?;
            // The machine state names entries it still needs from the log; one the log does not hold
            // (its live phase reached an earlier incarnation of this server) would be read by nobody's
            // write: refuse the snapshot. `install-without-live-entries` restores Ra's install.
            if let Some(h) = m.host.as_mut()
                && !bugs.has(Bug::InstallWithoutLiveEntries)
            {
                let mut missing = None;
                for index in received.live_indexes().iter() {
                    if h.log.fetch_term(index, &n.shared, &mut n.fs)?.is_none() {
                        missing = Some(index);
                        break;
                    }
                }
                if let Some(missing) = missing {
                    let meta = received.meta().clone();
                    received.abort(&mut n.fs)?;
                    return Ok(Some(Accepted::Refused { meta, missing }));
                }
            }
            let (meta, live) = received.seal(&mut n.fs, &uid, &bugs, &mut n.shared)?;
            let state = snapshot::read_snapshot_state(&mut n.fs, uid.as_str(), &meta)?;
            if let Some(h) = m.host.as_mut() {
                h.refs_before_snapshot = Some(h.log.segrefs().to_vec());
                h.log.install_snapshot(&meta, &live, &mut n.shared, &mut n.fs)?;
            }
            Ok(Some(Accepted::Installed { meta, state }))
        })();
        match result {
            Ok(Some(Accepted::Installed { meta, state })) => {
                self.count("snapshots installed");
                // Its log below the snapshot is the snapshot's now, not what it appended there.
                self.fates.member_down(i, g);
                self.note_member(i, g, Kind::Snapshot, format!("installed snapshot {} from {leader}", meta.index));
                let installed = Input::SnapshotInstalled { meta, state, leader };
                self.nodes[i].members[g].server_box.push_back(ServerWork::Input(installed));
            }
            Ok(Some(Accepted::Refused { meta, missing })) => {
                self.count("snapshots refused");
                let line =
                    format!("refused snapshot {} from {leader}: live index {missing} not in the log", meta.index);
                self.note_member(i, g, Kind::Snapshot, line);
                let refused = Input::SnapshotRefused { meta, missing };
                self.nodes[i].members[g].server_box.push_back(ServerWork::Input(refused));
            }
            Ok(None) => {}
            Err(e) => self.actor_failed(i, Failed::Member(g), "snapshot accept", e, false),
        }
    }

    /// A server timer fired (ignored when the node restarted or the timer was re-armed or cancelled since).
    pub(super) fn timer_fired(&mut self, node: usize, group: usize, incarnation: u64, timer: Timer, generation: u64) {
        let n = &mut self.nodes[node];
        let m = &mut n.members[group];
        if !n.up || n.incarnation != incarnation || m.timer_generation.get(&timer) != Some(&generation) {
            return;
        }
        m.server_box.push_back(ServerWork::Input(Input::Timer(timer)));
    }

    /// A snapshot sender's timer fired (ignored when it belongs to a sender that has finished).
    pub(super) fn sender_timer_fired(
        &mut self,
        node: usize,
        group: usize,
        incarnation: u64,
        peer: ServerId,
        generation: u64,
    ) {
        let n = &mut self.nodes[node];
        if !n.up || n.incarnation != incarnation {
            return;
        }
        let fx = match n.members[group].senders.get_mut(&peer) {
            Some((s, g)) if *g == generation => s.handle_timeout(),
            _ => return,
        };
        self.run_sender_effects(node, group, &peer, fx);
    }
}

/// How a snapshot's last chunk ended on the follower.
enum Accepted {
    /// Sealed and installed in the log.
    Installed { meta: snapshot::SnapshotMeta, state: Vec<u8> },
    /// Refused: the log does not hold live index `missing`.
    Refused { meta: snapshot::SnapshotMeta, missing: LogIndex },
}
