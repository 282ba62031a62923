//! Ra's supervision tree, as the engine models it: which process an error stops, what its supervisor
//! restarts, and how restarts escalate when they come too fast.
//!
//! Why: a disk error (an `EIO` or `ENOSPC` the fault injector put there) is an operating condition, not a
//! bug. Ra matches nearly every file call with `ok = …`, so the process that saw the error crashes and its
//! supervisor restarts it; a node that stops or restarts is correct behaviour, and only what the restarts
//! then lose or bring back is for the checkers to judge. Any *other* error — a checksum failure, a gap, a
//! missing entry — is a crash of the code itself, reported as before (`node-boots`, `storage-error`).
//!
//! The tree (Ra 3.1.10): the WAL under `ra_log_wal_sup` (one_for_one, 2 restarts in 5 s); the WAL's
//! supervisor, the segment writer and the meta store under `ra_log_sup` (one_for_all, 5 in 5 s); that
//! and the mem tables' owner under `ra_system_sup` (one_for_all, 1 in 5 s); each server under its own
//! `ra_server_sup` (one_for_all with its worker, 2 in 5 s, `temporary`: once it gives up the member stays
//! down). Limits count simulated time. Departures, for simplicity: a start that fails at boot takes the
//! node's Ra system down at once (no per-supervisor retries, as a persistent error would end there
//! anyway) and it comes back after `restart_after_ms`, as an operator or RabbitMQ would restart it; a
//! system restart restarts every registered member (Ra's `registered` recovery strategy); a member that
//! its supervisor gave up on is restarted at the heal (`ra:restart_server`).
//!
//! Owns: the restart windows, `actor_failed`'s classification, and the reactions. Must not inject faults
//! (`faults`) or judge recovered state (`obligations`).

use std::collections::VecDeque;

use raft_core::consensus::server::{Input, ServerId};
use raft_core::storage::StorageError;
use raft_core::storage::durable_files::MetaStore;
use raft_core::storage::segment_writer::SegmentWriter;
use vfs::ErrorKind;

use crate::trace::Kind;

use super::config::segment_writer_config;
use super::node::ServerWork;
use super::{Event, World};

/// Ra's supervisors count restarts over a 5 s period.
const RESTART_PERIOD_NS: u64 = 5_000_000_000;
/// `ra_log_wal_sup`'s intensity.
const WAL_SUP_RESTARTS: usize = 2;
/// `ra_log_sup`'s intensity.
const LOG_SUP_RESTARTS: usize = 5;
/// `ra_system_sup`'s intensity.
const SYSTEM_SUP_RESTARTS: usize = 1;
/// `ra_server_sup`'s intensity.
const SERVER_SUP_RESTARTS: usize = 2;

/// The process that stopped with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failed {
    /// The WAL (running, or recovering after a restart).
    Wal,
    /// The segment writer (the node's boot over).
    SegmentWriter,
    /// A server's background worker (it catches its own failures: only a power cut stops it).
    Worker,
    /// The node's boot (names store, pre-init, meta store, the first WAL recovery and the segment
    /// writer's flushes it waits for): the Ra system cannot start.
    Boot,
    /// Group `g`'s server (its init, a log read, its snapshot accept, …).
    Member(usize),
    /// Group `g`'s server, in the meta store's `store_sync` of its term and vote.
    Meta(usize),
    /// Group `g`'s snapshot sender to `peer` (reading the snapshot it sends).
    Sender(usize, ServerId),
    /// The names store's auto-save.
    NamesAutoSave,
    /// The meta store's auto-save.
    MetaAutoSave,
}

/// One supervisor's recent restarts (Ra's intensity over its period, in simulated time).
#[derive(Debug, Clone, Default)]
pub(super) struct Restarts {
    at_ns: VecDeque<u64>,
}

impl Restarts {
    /// Whether the supervisor restarts its child once more at `now_ns` (at most `limit` restarts in the
    /// period); a restart it allows is counted.
    fn allow(&mut self, now_ns: u64, limit: usize) -> bool {
        while self.at_ns.front().is_some_and(|&t| t + RESTART_PERIOD_NS <= now_ns) {
            self.at_ns.pop_front();
        }
        if self.at_ns.len() >= limit {
            return false;
        }
        self.at_ns.push_back(now_ns);
        true
    }
}

/// A node's supervisors and the stores a failed auto-save left in DETS' error mode.
#[derive(Debug, Clone, Default)]
pub(super) struct Supervisors {
    /// `ra_log_wal_sup` (a fresh one at every start of the log supervisor).
    pub(super) wal: Restarts,
    /// `ra_log_sup` (a fresh one at every start of the system).
    pub(super) log: Restarts,
    /// `ra_system_sup`'s own restarts, counted by `ra_systems_sup` (fresh at every boot of the node).
    pub(super) system: Restarts,
    /// A names auto-save failed: the next use of the store fails until the system restarts.
    pub(super) names_poisoned: bool,
    /// A meta auto-save failed: the next `store_sync` fails until the log supervisor restarts.
    pub(super) meta_poisoned: bool,
}

/// Whether `e` is a disk error: an `EIO` or `ENOSPC` (a fault, or a full disk), which Ra's processes
/// crash on and their supervisors restart — not a crash of the code itself.
pub(super) fn is_disk_error(e: &StorageError) -> bool {
    matches!(e, StorageError::Fs(f) if matches!(f.kind, ErrorKind::Io | ErrorKind::NoSpace))
}

impl World {
    /// A process of node `i` stopped with `e` (`what` names it in the trace). A power cut is expected; a
    /// disk error is the process's crash, which its supervisor answers; anything else is a crash Ra would
    /// also have: during boot it is a `node-boots` violation, afterwards a `storage-error` one.
    pub(super) fn actor_failed(&mut self, i: usize, who: Failed, what: &str, e: StorageError, booting: bool) {
        self.note(Some(i), Kind::Fail, format!("{what}: {e}"));
        self.nodes[i].process_failed = true;
        if e.is_power_cut() {
            return;
        }
        if self.rot_caught(i, &e) {
            // Ra's segment read exits on the failed CRC (`ra_log_segment_crc_check_failure`), and the
            // process's supervisor answers as for a disk error. The node may never read that entry again:
            // it is excused from `converges` (`media`).
            self.count("processes crashed on a rotted entry's checksum");
            self.nodes[i].caught_rot = true;
            self.supervise(i, who);
            return;
        }
        if is_disk_error(&e) {
            self.count("disk errors a process crashed on");
            self.supervise(i, who);
            return;
        }
        if matches!(e, StorageError::WalDown) {
            // Ra's `ra_log:init` exits with `wal_down`, a snapshot's pre-phase crashes on it (`{ok, L} =`):
            // the server's supervisor restarts it.
            self.count("servers crashed on wal_down");
            self.supervise(i, who);
            return;
        }
        let checker = if booting { "node-boots" } else { "storage-error" };
        self.crashed_for_good(i, checker, format!("{what}: {e}"));
    }

    /// Group `g`'s server failed a step with `e`; `pre_phase` says whether the step was a snapshot's
    /// pre-phase. Ra's running server meets `wal_down` with `await_condition` everywhere but there
    /// (`{ok, L} = ra_log:write_sparse(…)` crashes it), so a step failing on it elsewhere is a crash Ra
    /// does not have.
    pub(super) fn server_step_failed(&mut self, i: usize, g: usize, e: StorageError, pre_phase: bool) {
        if matches!(e, StorageError::WalDown) && !pre_phase {
            let detail = "server: wal_down outside a snapshot's pre-phase (Ra's server waits for the WAL)";
            self.crashed_unlike_ra(i, "storage-error", detail.into());
            return;
        }
        self.actor_failed(i, Failed::Member(g), "server", e, false);
    }

    /// A failure where Ra's code would have gone on: a FAIL line in the trace, then as
    /// [`World::crashed_for_good`].
    pub(super) fn crashed_unlike_ra(&mut self, i: usize, checker: &str, detail: String) {
        self.note(Some(i), Kind::Fail, detail.clone());
        self.crashed_for_good(i, checker, detail);
    }

    /// A crash of node `i` no supervisor answers: `checker` reports it and the node stays down.
    pub(super) fn crashed_for_good(&mut self, i: usize, checker: &str, detail: String) {
        let name = self.nodes[i].name.clone();
        self.checkers.violation(checker, &name, self.now_ns, detail);
        self.nodes[i].up = false;
    }

    /// Ra's reaction to a process of node `i` crashing on a disk error.
    fn supervise(&mut self, i: usize, who: Failed) {
        match who {
            Failed::Wal => self.wal_crashed(i),
            Failed::SegmentWriter => self.log_sup_restart(i),
            Failed::Worker => {}
            Failed::Boot => self.start_failed(i, "a disk error"),
            Failed::Member(g) => self.member_crashed(i, g),
            Failed::Meta(g) => {
                // `ra_log_meta` crashes (its supervisor restarts the whole log tier) and so does the
                // server waiting on its `store_sync`: the vote it was about to give is never sent.
                self.log_sup_restart(i);
                if self.nodes[i].up {
                    self.member_crashed(i, g);
                }
            }
            Failed::Sender(g, peer) => {
                // A spawned process: the leader sees it exit and backs off. It did try to reach the
                // follower — its disk failed it — so the follower's claim on its attention is met
                // (`lagging-follower-caught-up` judges a leader that does not try).
                if let Some((j, _)) = self.member_of(&peer) {
                    let (l, f) = (self.member_key(i, g), self.member_key(j, g));
                    self.checkers.obligations.contacted(l, f);
                }
                let m = &mut self.nodes[i].members[g];
                m.senders.remove(&peer);
                m.server_box.push_back(ServerWork::Input(Input::SnapshotSenderFailed { peer }));
                self.count("snapshot sender failures");
            }
            Failed::NamesAutoSave => {
                self.nodes[i].sup.names_poisoned = true;
                self.note(Some(i), Kind::Crash, "names store in error mode until the Ra system restarts".into());
            }
            Failed::MetaAutoSave => {
                self.nodes[i].sup.meta_poisoned = true;
                self.note(Some(i), Kind::Crash, "meta store in error mode until the log supervisor restarts".into());
            }
        }
    }

    /// Node `i`'s Ra system fails to start: its WAL recovers in its `init`, while the supervisors above it
    /// are themselves still starting, so a WAL (or the segment writer it waits for) that dies then fails
    /// the start of `ra_log_wal_sup`, `ra_log_sup` and `ra_system_sup` in turn — no supervisor restarts
    /// anything, and the mem tables go with `ra_log_ets`. The system stays down until restarted.
    pub(super) fn start_failed(&mut self, i: usize, why: &str) {
        self.count("ra system starts failed");
        self.note(Some(i), Kind::Crash, format!("Ra system start failed: {why}"));
        self.ra_system_down(i, false);
    }

    /// The WAL crashed: `ra_log_wal_sup` restarts it (its mailbox and batch lost), or gives up and its own
    /// supervisor restarts the log tier.
    pub(super) fn wal_crashed(&mut self, i: usize) {
        let now = self.now_ns;
        if self.nodes[i].sup.wal.allow(now, WAL_SUP_RESTARTS) {
            self.count("wal crashes restarted");
            self.restart_wal(i);
        } else {
            self.log_sup_restart(i);
        }
    }

    /// `ra_log_sup` restarts everything under it (one_for_all): a fresh segment writer (its queued and
    /// half-done flushes lost), a fresh WAL supervisor and WAL, and the meta store reloaded from its file
    /// (what it had not synced is lost). Past its intensity the Ra system restarts.
    pub(super) fn log_sup_restart(&mut self, i: usize) {
        let now = self.now_ns;
        if !self.nodes[i].sup.log.allow(now, LOG_SUP_RESTARTS) {
            self.ra_system_restart(i);
            return;
        }
        self.count("log supervisor restarts");
        self.note(Some(i), Kind::Crash, "log supervisor restart (segment writer, WAL, meta store)".into());
        let seg_cfg = segment_writer_config(&self.cfg);
        let n = &mut self.nodes[i];
        n.segment_writer = SegmentWriter::new(seg_cfg);
        n.sw_box.clear();
        n.sw_next = None;
        n.sup.wal = Restarts::default();
        n.sup.meta_poisoned = false;
        match MetaStore::load(&mut n.fs, "") {
            Ok(meta) => n.meta = meta,
            Err(e) if e.is_power_cut() => return,
            Err(e) => {
                self.note(Some(i), Kind::Fail, format!("meta store: {e}"));
                self.ra_system_restart(i);
                return;
            }
        }
        self.restart_log_tier_wal(i);
    }

    /// The WAL's part in `ra_log_sup`'s one_for_all restart: a new WAL at once (`log_restart_ms` 0), or
    /// none until `log_restart_ms` later. Whether a WAL restarted now.
    pub(super) fn restart_log_tier_wal(&mut self, i: usize) -> bool {
        let wait_ms = self.cfg.spec.log_restart_ms;
        if wait_ms == 0 {
            return self.restart_wal(i);
        }
        if !self.nodes[i].up || !self.nodes[i].shared.wal_registered {
            return false; // down, or a restart's window already open: its registration is scheduled
        }
        // The WAL stopped with the others; its successor registers only once pre-init, the meta store
        // and the segment writer have started: until then writers find it down (Ra's `wal_down`).
        let n = &mut self.nodes[i];
        let lost = n.drop_wal_mailbox();
        n.shared.wal_registered = false;
        let at_ns = self.now_ns + wait_ms * 1_000_000;
        n.wal_registers_at_ns = Some(at_ns);
        let incarnation = n.incarnation;
        self.count("WAL down while the log supervisor restarts");
        self.count_n("appends lost in a restarted WAL's mailbox", lost);
        self.note(Some(i), Kind::Crash, format!("WAL down for {wait_ms} ms ({lost} queued appends lost)"));
        self.schedule(wait_ms * 1_000_000, Event::WalRegisters { node: i, incarnation, at_ns });
        false
    }

    /// The log supervisor's restart reaches the WAL: a new one registers and recovers.
    pub(super) fn wal_registers(&mut self, i: usize, incarnation: u64, at_ns: u64) {
        let n = &mut self.nodes[i];
        if !n.up || n.incarnation != incarnation || n.wal_registers_at_ns != Some(at_ns) {
            return;
        }
        n.wal_registers_at_ns = None;
        n.shared.wal_registered = true;
        self.restart_wal(i);
    }

    /// `ra_system_sup` restarts the node's Ra system: every process and the mem tables gone, the page
    /// cache kept; it boots again at once (twice within its period and the system is gone until it is
    /// restarted from outside).
    pub(super) fn ra_system_restart(&mut self, i: usize) {
        let now = self.now_ns;
        let again = self.nodes[i].sup.system.allow(now, SYSTEM_SUP_RESTARTS);
        self.ra_system_down(i, again);
    }

    /// Node `i`'s Ra system goes down (its processes and volatile state, not the page cache): back in a
    /// moment when `restart_now` (its supervisor restarts it), else after `restart_after_ms`.
    fn ra_system_down(&mut self, i: usize, restart_now: bool) {
        if !self.nodes[i].up {
            return;
        }
        self.crashed(i);
        let restart_after_ns = self.cfg.spec.restart_after_ms * 1_000_000;
        let n = &mut self.nodes[i];
        n.fs.process_crash();
        n.up = false;
        n.incarnation += 1;
        let (what, after_ns) = if restart_now {
            self.count("ra system restarts");
            ("Ra system restart (processes and mem tables gone, page cache kept)", 1_000_000)
        } else {
            self.count("ra system down");
            ("Ra system down until restarted (processes gone, page cache kept)", restart_after_ns)
        };
        self.note(Some(i), Kind::Crash, what.into());
        self.record_down_for(i, after_ns);
        self.schedule(after_ns, super::Event::Restart { node: i });
    }

    /// Group `g`'s server on node `i` crashed: its `ra_server_sup` restarts it from its config (mem tables
    /// and the rest of the node untouched), or — a third crash within the period — gives up, and the
    /// member stays down until the heal restarts it.
    pub(super) fn member_crashed(&mut self, i: usize, g: usize) {
        let now = self.now_ns;
        let n = &mut self.nodes[i];
        if !n.up {
            return;
        }
        if n.members[g].stopped {
            return;
        }
        self.take_down_member(i, g);
        if !self.nodes[i].members[g].restarts.allow(now, SERVER_SUP_RESTARTS) {
            self.nodes[i].members[g].stopped = true;
            self.count("members stopped by their supervisor");
            self.note_member(i, g, Kind::Crash, "server supervisor gave up: member down until restarted".into());
            return;
        }
        self.count("member restarts");
        self.note_member(i, g, Kind::Crash, "server restart (its supervisor)".into());
        self.restart_member(i, g);
    }

    /// Group `g`'s server on node `i` is gone (crashed or stopped): what it had written is noted for
    /// `written-survives`, its volatile state goes, and contact obligations to or from it lapse.
    pub(super) fn take_down_member(&mut self, i: usize, g: usize) {
        self.fates.member_down(i, g);
        let n = &mut self.nodes[i];
        let m = &mut n.members[g];
        if let Some(h) = m.host.as_ref() {
            m.written_at_crash = Some(m.written_before_receive.unwrap_or_else(|| h.log.last_written()));
        }
        m.reset(&mut n.dead_handles);
        let key = self.member_key(i, g);
        self.checkers.obligations.forget(key);
    }

    /// Starts group `g`'s member on node `i` again from its config (a supervisor's or an operator's
    /// restart), unless its node is down or still booting (the boot starts it).
    pub(super) fn restart_member(&mut self, i: usize, g: usize) {
        let n = &mut self.nodes[i];
        if !n.up || n.booting || n.fs.is_powered_off() || !self.created[g] {
            return;
        }
        let config = self.server_config(i, g);
        let wal_running = matches!(self.nodes[i].wal.phase(), raft_core::storage::wal::WalPhase::Running);
        let m = &mut self.nodes[i].members[g];
        m.stopped = false;
        m.removed = false;
        // A server created in this run restarts as one (its config written again); one pre-init found
        // restarts from that config.
        m.ready_config = if m.created_here { None } else { Some(config) };
        if wal_running {
            self.start_member(i, g);
        } else {
            m.waits_for_wal = true;
        }
    }

    /// A node whose filesystem a failed directory fsync made read-only cannot go on: what its processes
    /// would read back is the page cache, not the disk, and nothing new becomes durable. It stops, and
    /// its machine restarts after `restart_after_ms` (the boot remounts the filesystem, keeping what a
    /// power cut keeps).
    pub(super) fn check_shut_down_disks(&mut self) {
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if !n.up || !n.fs.is_shut_down() {
                continue;
            }
            self.crashed(i);
            let n = &mut self.nodes[i];
            n.fs.process_crash();
            n.up = false;
            n.incarnation += 1;
            self.count("filesystems shut down");
            self.note(Some(i), Kind::Crash, "filesystem read-only (a directory fsync failed): the node stops".into());
            self.record_down(i);
            self.schedule(self.cfg.spec.restart_after_ms * 1_000_000, super::Event::Restart { node: i });
        }
    }
}
