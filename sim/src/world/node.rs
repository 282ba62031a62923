//! A node and its members: the volatile state of one machine (its `SimFs`, shared storage state, the
//! WAL, segment writer and worker with their mailboxes, one member per Raft group), Ra's boot path, member
//! start, and stepping its storage actors.
//!
//! Owns: `Node`, `Member`, `Actor`; booting a node (names store, pre-init, WAL recovery, every member
//! restarted or started as new); creating a group at run time; stepping the storage actors and routing
//! what they send. Must not decide faults (`faults`), judge anything itself beyond the boot-time checks
//! it hands to `checkers`, or send on the network (`network`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raft_core::consensus::StorageLog;
use raft_core::consensus::kv::KvMachine;
use raft_core::consensus::sender::SnapshotSender;
use raft_core::consensus::server::{ConsensusConfig, EntryBody, Input, Server, ServerId, Timer};
use raft_core::storage::boot::{load_directory, pre_init};
use raft_core::storage::durable_files::{MetaStore, NamesStore, ServerConfig};
use raft_core::storage::log::ServerLog;
use raft_core::storage::messages::SegmentWriterMsg;
use raft_core::storage::messages::WalMsg;
use raft_core::storage::new_server::NewServerStart;
use raft_core::storage::segment_writer::SegmentWriter;
use raft_core::storage::segref::SegRef;
use raft_core::storage::shared::NodeShared;
use raft_core::storage::snapshot::{self, SnapshotAccept};
use raft_core::storage::wal::Wal;
use raft_core::storage::worker::{Worker, WorkerMsg};
use raft_core::storage::{Envelope, LogEvent, NodeNotice, StorageError};
use raft_core::{LogIndex, ProcessId, Seq, TableId, Term, Uid};
use vfs::{CrashPoint, Fd, SimFs};

use scenarios::CrashImage;

use crate::checkers;
use crate::trace::{self, Kind};

use super::config::{crash_model, segment_writer_config, wal_config};
use super::faults::{SlowWal, arm};
use super::supervision::{Failed, Restarts, Supervisors, is_disk_error};
use super::{Event, World};

#[derive(Clone)]
pub(super) struct Node {
    pub(super) name: String,
    pub(super) fs: SimFs,
    /// What each server of the node appended to its log, as seen going to the WAL (`log-shape`); kept
    /// across crashes, as the simulator's own record.
    pub(super) written: BTreeMap<Uid, checkers::WrittenEntries>,
    pub(super) shared: NodeShared,
    pub(super) names: NamesStore,
    pub(super) meta: MetaStore,
    pub(super) up: bool,
    pub(super) incarnation: u64,
    pub(super) wal: Wal,
    pub(super) segment_writer: SegmentWriter,
    pub(super) wal_box: VecDeque<WalMsg>,
    pub(super) wal_next: Option<WalMsg>,
    pub(super) sw_box: VecDeque<SegmentWriterMsg>,
    pub(super) sw_next: Option<SegmentWriterMsg>,
    pub(super) worker_box: VecDeque<WorkerMsg>,
    /// One per group, by group index.
    pub(super) members: Vec<Member>,
    /// Files whose unlink an injected error failed (`resources-released` does not count them: Ra
    /// deletes best effort and forgets the file).
    pub(super) unlinks_failed: BTreeSet<String>,
    pub(super) next_process: u64,
    /// Between boot and the end of WAL recovery (a WAL-only restart does not restart the servers).
    pub(super) booting: bool,
    /// The disk's call count when its handles were last looked at (`resources-released`): a step that
    /// made no call opened or closed nothing.
    pub(super) handles_seen_at_seq: u64,
    /// A process of the node failed in this step: the handles it opened and left in no structure that
    /// outlives it join `dead_handles` (`World::settle_handles`).
    pub(super) process_failed: bool,
    /// Handles of processes that died, which the disk still has open. The runtime would close them
    /// (Erlang closes a dead process's files); the simulated disk keeps them open, so an unlinked file
    /// one names keeps its pages (ARCHITECTURE.md, departures). `resources-released` does not judge them.
    pub(super) dead_handles: BTreeSet<Fd>,
    /// A process of the node crashed on a segment entry's failed CRC while its medium was rotted
    /// (`media`): while the medium stays rotted, or the member is down, `converges` passes over it.
    pub(super) caught_rot: bool,
    /// A planned power cut this many calls into the next boot, and the image it keeps (`None`: the crash
    /// model chooses).
    pub(super) next_boot_cut: Option<(u64, Option<CrashImage>)>,
    /// A sweep's held power cut after this call, armed when the node next boots (last, over any other).
    pub(super) held_boot_cut: Option<u64>,
    /// The plan entry (an exact cut at a call, at time 0) armed before the first boot.
    pub(super) start_cut: Option<usize>,
    /// A slow disk (`Fault::SlowWal`), until its end.
    pub(super) slow_wal: Option<SlowWal>,
    /// The batch at the head of the WAL's queue waits for a slow sync until this time (and may go once
    /// it has passed).
    pub(super) wal_ready_ns: Option<u64>,
    /// Ra's supervisors on this node, and the stores a failed auto-save left unusable.
    pub(super) sup: Supervisors,
    /// The number the next WAL process gets (`NodeShared::wal_process`).
    /// While the log supervisor's restart leaves the WAL unregistered: when the new WAL registers
    /// (`log_restart_ms`; `Event::WalRegisters` carries it, so that a later restart's window wins).
    pub(super) wal_registers_at_ns: Option<u64>,
    pub(super) next_wal_process: u64,
    /// The names and meta auto-save and the servers' tick run (armed by the boot's first server start).
    pub(super) node_timers_armed: bool,
}

impl Node {
    /// The WAL process exits: Erlang drops its mailbox — its queued appends and its batch are gone, and
    /// the writers find out by a gap, a `Written` that skips what they sent, or their tick (`ra_log`).
    /// How many appends were lost.
    pub(super) fn drop_wal_mailbox(&mut self) -> u64 {
        let lost = self.wal_box.iter().filter(|m| matches!(m, WalMsg::Append(_))).count() as u64;
        self.wal_box.clear();
        self.wal_next = None;
        self.wal_ready_ns = None;
        lost
    }

    /// Group `g`'s server log as a [`RaftLog`] for the checkers' reads (nothing they call appends to `out`).
    pub(super) fn read_log<'a>(&'a mut self, g: usize, out: &'a mut Vec<Envelope>) -> Option<StorageLog<'a>> {
        let h = self.members[g].host.as_mut()?;
        Some(StorageLog { log: &mut h.log, shared: &mut self.shared, fs: &mut self.fs, out })
    }

    /// Each of member `g`'s mem tables, oldest first, with the indexes it holds now (what is there, not
    /// what the log's handles name).
    pub(super) fn mem_table_indexes(&self, g: usize) -> Vec<(TableId, Seq)> {
        let tables = &self.shared.mem_tables;
        tables.tables_of(&self.members[g].uid).into_iter().map(|tid| (tid, tables.indexes_in(tid))).collect()
    }

    /// Every entry member `g`'s storage holds, read where it lies (`log-shape`): its mem tables, and its
    /// segment files over the ranges its segment refs name, parsed with `parse` (contiguous at least:
    /// index records whose data does not follow on are not the log's; data that fails its CRC is left to
    /// the reads that serve it).
    pub(super) fn stored_entries(
        &mut self,
        g: usize,
        parse: raft_core::storage::segment::IndexParse,
    ) -> Vec<checkers::StoredEntry> {
        use raft_core::storage::mem_table::Lookup;
        use raft_core::storage::segment::SegmentReader;
        let m = &self.members[g];
        let Some(h) = m.host.as_ref() else { return Vec::new() };
        let mut out = Vec::new();
        let tables = &self.shared.mem_tables;
        for (tid, indexes) in self.mem_table_indexes(g) {
            for index in indexes.iter() {
                if let Lookup::Found(term, bytes) = tables.lookup(tid, index) {
                    let place = format!("mem table t{}", tid.0);
                    out.push(checkers::StoredEntry { place, index, term, digest: checkers::digest(&bytes) });
                }
            }
        }
        for r in h.log.segrefs() {
            let path = format!("{}/{}", m.uid.as_str(), r.file);
            let Ok(reader) = SegmentReader::open_with(&mut self.fs, &path, parse) else { continue };
            let indexes: Vec<LogIndex> = reader.indexes().filter(|&i| r.first <= i && i <= r.last).collect();
            for index in indexes {
                if let Ok(Some((term, bytes))) = reader.read(&mut self.fs, index) {
                    let place = format!("segment {path}");
                    out.push(checkers::StoredEntry { place, index, term, digest: checkers::digest(&bytes) });
                }
            }
        }
        out
    }
}

/// One Raft group's member on a node: its server (or the new server being started) and what the world
/// keeps for it.
#[derive(Clone)]
pub(super) struct Member {
    pub(super) name: ServerId,
    pub(super) uid: Uid,
    pub(super) server_box: VecDeque<ServerWork>,
    pub(super) host: Option<Host>,
    /// A new server waiting for its first entry, and the process it runs as.
    pub(super) starting: Option<(NewServerStart, ProcessId)>,
    /// Its config, when pre-init found it registered and readable.
    pub(super) ready_config: Option<ServerConfig>,
    pub(super) senders: BTreeMap<ServerId, (SnapshotSender, u64)>,
    pub(super) accept: Option<SnapshotAccept>,
    pub(super) timer_generation: BTreeMap<Timer, u64>,
    /// The server's last written entry when the node last crashed (`written-survives`).
    pub(super) written_at_crash: Option<(LogIndex, Term)>,
    /// The last vote it granted: the server (by uid), the term, the candidate (`vote-survives`).
    pub(super) vote_granted: Option<(Uid, Term, raft_core::consensus::server::ServerId)>,
    /// The server's last written entry when its current snapshot receive began: the live entries the
    /// receive writes sparsely above the log are no promise (a crash mid-receive discards them).
    pub(super) written_before_receive: Option<(LogIndex, Term)>,
    /// Its `ra_server_sup`'s recent restarts.
    pub(super) restarts: Restarts,
    /// Its supervisor gave up: down until restarted (at the heal, or with its node).
    pub(super) stopped: bool,
    /// Stopped because it led a cluster it had removed itself from: not restarted at the heal (an
    /// operator starts it again when adding it back).
    pub(super) removed: bool,
    /// Restarted while the WAL recovers: its init waits for the WAL's answer (Ra's `last_writer_seq`
    /// call sits in the recovering WAL's mailbox) and goes on at `WalRecovered`.
    pub(super) waits_for_wal: bool,
    /// Created as a new server since the node booted: a restart by its supervisor starts it with the
    /// config in memory and writes that config again.
    pub(super) created_here: bool,
    /// The last append or snapshot chunk it received: when, from whom, which (the liveness diagnosis).
    pub(super) last_from_leader: Option<(u64, raft_core::consensus::server::ServerId, &'static str)>,
    /// Why its server waited in `await_condition` after its last step (coverage counts each new wait).
    pub(super) last_condition: Option<raft_core::consensus::server::Condition>,
}

impl Member {
    pub(super) fn new(name: String) -> Member {
        Member {
            uid: Uid(name.clone()),
            name: ServerId(name),
            server_box: VecDeque::new(),
            host: None,
            starting: None,
            ready_config: None,
            senders: BTreeMap::new(),
            accept: None,
            timer_generation: BTreeMap::new(),
            written_at_crash: None,
            vote_granted: None,
            written_before_receive: None,
            restarts: Restarts::default(),
            stopped: false,
            removed: false,
            waits_for_wal: false,
            created_here: false,
            last_from_leader: None,
            last_condition: None,
        }
    }

    /// Everything volatile goes with its process (a boot starts from the disk); the handle of a snapshot
    /// it was receiving joins the node's `dead_handles`.
    pub(super) fn reset(&mut self, dead_handles: &mut BTreeSet<Fd>) {
        self.server_box.clear();
        self.host = None;
        self.starting = None;
        self.ready_config = None;
        self.senders.clear();
        if let Some(accept) = self.accept.take() {
            dead_handles.insert(accept.handle());
        }
        self.timer_generation.clear();
        self.written_before_receive = None;
        self.waits_for_wal = false;
        self.last_condition = None;
    }

    /// The process of its server, running or starting.
    pub(super) fn process(&self) -> Option<ProcessId> {
        self.host.as_ref().map(|h| h.process).or(self.starting.as_ref().map(|(_, p)| *p))
    }
}

#[derive(Clone)]
pub(super) struct Host {
    pub(super) server: Server,
    pub(super) log: ServerLog,
    pub(super) process: ProcessId,
    /// The highest snapshot index `resources-released` has judged this log at; it starts at the one the
    /// log booted with, whose compaction an earlier process may not have finished (Ra's init compacts
    /// nothing).
    pub(super) snapshot_judged: Option<LogIndex>,
    /// The log's segment refs just before it handled a snapshot, for `resources-released`.
    pub(super) refs_before_snapshot: Option<Vec<SegRef>>,
    /// The (table, last index) of each flush the log handled in the step, for `resources-released`.
    pub(super) flushes_handled: Vec<(TableId, LogIndex)>,
    /// The log's last written index just before it handled a flush or a snapshot in the step (and which),
    /// for `last-written`.
    pub(super) written_before_event: Option<(LogIndex, checkers::LogEventHandled)>,
}

impl Host {
    pub(super) fn new(server: Server, log: ServerLog, process: ProcessId) -> Host {
        let snapshot_judged = log.snapshot().map(|s| s.index);
        Host {
            server,
            log,
            process,
            snapshot_judged,
            refs_before_snapshot: None,
            flushes_handled: Vec::new(),
            written_before_event: None,
        }
    }
}

/// Ra's server `tick_timeout`.
const LOG_TICK_NS: u64 = 1_000_000_000;
/// How long a new server's init waits for its first entry to be written (Ra's `maybe_append_first_entry`).
const FIRST_ENTRY_TIMEOUT_NS: u64 = 60_000_000_000;

#[derive(Clone)]
pub(super) enum ServerWork {
    /// A storage event for the server's log (and then, for most, an input to the server).
    Log(LogEvent),
    /// An input for the consensus server.
    Input(Input),
    /// The server's tick, for its log (`ServerLog::tick`).
    LogTick,
}

/// The name (and uid) of group `g`'s member on node `i`: `n1`, `n2`, … for the first group, `n1g2`, … for
/// the others.
pub(super) fn member_name(i: usize, g: usize) -> String {
    if g == 0 { format!("n{}", i + 1) } else { format!("n{}g{}", i + 1, g + 1) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Actor {
    Wal,
    SegmentWriter,
    Worker,
    /// Group `g`'s server.
    Server(usize),
}

impl Actor {
    /// A number for the trace hash.
    pub(super) fn code(self) -> u64 {
        match self {
            Actor::Wal => 0,
            Actor::SegmentWriter => 1,
            Actor::Worker => 2,
            Actor::Server(g) => 3 + g as u64,
        }
    }
}

impl World {
    /// Group `g`'s members.
    pub(super) fn members(&self, g: usize) -> Vec<ServerId> {
        self.nodes.iter().map(|n| n.members[g].name.clone()).collect()
    }

    /// The node and group of a member.
    pub(super) fn member_of(&self, id: &ServerId) -> Option<(usize, usize)> {
        self.nodes.iter().enumerate().find_map(|(i, n)| n.members.iter().position(|m| m.name == *id).map(|g| (i, g)))
    }

    /// A member's key in the contact obligations.
    pub(super) fn member_key(&self, i: usize, g: usize) -> usize {
        g * self.nodes.len() + i
    }

    /// Boots node `i`; `cut`: a power cut armed that many filesystem calls into the boot, keeping the
    /// given image (`None`: the crash model chooses).
    pub(super) fn boot(&mut self, i: usize, cut: Option<(u64, Option<CrashImage>)>) {
        let bugs = self.cfg.bugs.clone();
        let model = crash_model(self.cfg.spec.crash_model);
        let n = &mut self.nodes[i];
        if n.fs.is_shut_down() {
            // Its filesystem went read-only (a failed directory fsync): only restarting the machine
            // brings it back, and what was not yet on the disk is then what a power cut leaves.
            n.fs.disarm_power_cut();
            let decisions = n.fs.crash(model);
            self.count("machines restarted after their filesystem shut down");
            self.note(Some(i), Kind::Crash, "machine restart: its filesystem was read-only".into());
            for line in trace::describe_crash(&decisions) {
                self.note(Some(i), Kind::Disk, line);
            }
        }
        let n = &mut self.nodes[i];
        n.fs.disarm_power_cut();
        n.fs.power_on();
        if let Some((k, image)) = cut {
            let seq = n.fs.op_seq() + k;
            arm(&mut n.fs, CrashPoint::AfterOp { seq }, model, image.as_ref());
        }
        if let Some(index) = n.start_cut.take() {
            self.planned_fault(index);
        }
        if let Some(seq) = self.nodes[i].held_boot_cut.take() {
            self.nodes[i].fs.arm_power_cut_held(CrashPoint::AfterOp { seq });
        }
        let n = &mut self.nodes[i];
        n.up = true;
        n.booting = true;
        n.incarnation += 1;
        n.shared = NodeShared::new();
        n.shared.clock_ms = self.now_ns / 1_000_000;
        n.next_wal_process += 1;
        n.shared.wal_process = n.next_wal_process;
        // A fresh Ra system: fresh log and WAL supervisors, the stores opened anew.
        n.sup.wal = Restarts::default();
        n.sup.log = Restarts::default();
        n.sup.names_poisoned = false;
        n.sup.meta_poisoned = false;
        n.node_timers_armed = false;
        n.wal = Wal::new(wal_config(&self.cfg), n.incarnation);
        n.segment_writer = SegmentWriter::new(segment_writer_config(&self.cfg));
        n.wal_box.clear();
        n.wal_next = None;
        n.wal_ready_ns = None;
        n.sw_box.clear();
        n.sw_next = None;
        n.worker_box.clear();
        for m in n.members.iter_mut() {
            m.reset(&mut n.dead_handles);
            m.restarts = Restarts::default();
            m.stopped = false;
            m.created_here = false;
        }
        let pre = match load_directory(&mut n.fs, "", &mut n.shared) {
            Ok(mut names) => match pre_init(&mut n.fs, "", &mut names, &KvMachine, &bugs, &mut n.shared) {
                Ok(report) => Ok((names, report)),
                Err(e) if e.is_power_cut() => Err(e),
                Err(e) => {
                    // Ra's pre-init catches every server's failure and goes on (`try pre_init(…) catch`
                    // in `ra_log_pre_init:init/1`): a pre-init that stops the Ra system's start is the
                    // port's, not Ra's.
                    let detail = format!("pre-init: {e} (Ra's pre-init catches a server's failure and goes on)");
                    self.crashed_unlike_ra(i, "node-boots", detail);
                    return;
                }
            },
            Err(e) => Err(e),
        };
        match pre {
            Ok((names, report)) => {
                n.names = names;
                // Ra's pre-init catches a server's init error and goes on. A disk error there is the
                // fault's (the server's own init reads again); anything else makes its restart fail the
                // same way.
                let failed: Vec<_> =
                    report.failed.into_iter().filter(|(u, _)| n.members.iter().any(|m| m.uid == *u)).collect();
                let mut restart_anyway = Vec::new();
                for (uid, e) in failed {
                    if is_disk_error(&e) {
                        // Still registered: the system's recovery restarts it from its config (Ra's
                        // `registered` strategy), whose init does the reads again.
                        self.count("disk errors a process crashed on");
                        self.note(Some(i), Kind::Fail, format!("pre-init of {uid} (caught, goes on): {e}"));
                        restart_anyway.extend(self.nodes[i].members.iter().position(|m| m.uid == uid));
                        continue;
                    }
                    self.actor_failed(i, Failed::Boot, &format!("server init of {uid}"), e, true);
                    return;
                }
                // `registered-implies-config`: after pre-init every registered server has a readable
                // config (else it can neither restart nor be created anew).
                let n = &mut self.nodes[i];
                if n.fs.is_powered_off() {
                    return; // a second crash during recovery; the node is down again
                }
                let result = if self.cfg.checkers {
                    n.fs.pause_error_rules(true);
                    let result = checkers::registered_implies_config(&n.shared.directory, &mut n.fs);
                    n.fs.pause_error_rules(false);
                    result
                } else {
                    Ok(())
                };
                if n.fs.is_powered_off() {
                    return; // the cut fired during the check's own reads
                }
                let name = n.name.clone();
                if self.checkers.judge("registered-implies-config", &name, self.now_ns, result) {
                    return;
                }
                for g in restart_anyway {
                    let config = self.server_config(i, g);
                    self.nodes[i].members[g].ready_config = Some(config);
                }
                let n = &mut self.nodes[i];
                for config in report.ready {
                    if let Some(m) = n.members.iter_mut().find(|m| m.uid == config.uid) {
                        m.ready_config = Some(config);
                    }
                }
                match MetaStore::load(&mut n.fs, "") {
                    Ok(meta) => n.meta = meta,
                    Err(e) => {
                        self.actor_failed(i, Failed::Boot, "meta store", e, true);
                        return;
                    }
                }
                let n = &mut self.nodes[i];
                n.wal_box.push_back(WalMsg::Recover);
                self.note(Some(i), Kind::Boot, "pre-init done, WAL recovery begins".into());
            }
            Err(e) => self.actor_failed(i, Failed::Boot, "pre-init", e, true),
        }
    }

    /// WAL recovery finished: every group that exists restarts its member from its config, or creates it.
    pub(super) fn wal_recovered(&mut self, i: usize) {
        for g in 0..self.cfg.spec.groups {
            if !self.created[g] {
                continue;
            }
            if !self.nodes[i].up || self.nodes[i].fs.is_powered_off() {
                return;
            }
            self.start_member(i, g);
        }
    }

    /// Starts group `g`'s member on node `i` (its WAL running): from its config when pre-init found one,
    /// else as a new server (register, init the log, write its first entry, then the config).
    pub(super) fn start_member(&mut self, i: usize, g: usize) {
        if self.nodes[i].sup.names_poisoned {
            // Registering the server uses the names store, which is in DETS' error mode.
            self.note_member(i, g, Kind::Fail, "server start: names store in error mode".into());
            self.ra_system_restart(i);
            return;
        }
        let cfg = self.consensus_config(i, g);
        let bugs = self.cfg.bugs.clone();
        let new_config = self.server_config(i, g);
        let n = &mut self.nodes[i];
        n.shared.clock_ms = self.now_ns / 1_000_000;
        let process = ProcessId(n.next_process);
        n.next_process += 1;
        let m = &mut n.members[g];
        let mut out = Vec::new();
        let mut fx = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let result: Result<&'static str, StorageError> = (|| {
            // The WAL's last index for this server (Ra's `last_writer_seq`), which its log init reads.
            let last_wal = n.wal.last_writer_seq(&m.uid).map(|w| w.last());
            if let Some(config) = m.ready_config.clone() {
                n.shared.directory.set_process(&config.uid, Some(process));
                let (mut log, report) = ServerLog::init(
                    &m.uid,
                    process,
                    "",
                    last_wal,
                    &KvMachine,
                    &bugs,
                    &mut n.shared,
                    &mut n.fs,
                    &mut out,
                )?;
                notes.push(format!(
                    "log: snapshot {:?}, segments {}, deleted {:?}, indexes rebuilt {}",
                    log.snapshot().map(|m| m.index.0),
                    report.compacted.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(" "),
                    report.deleted_segments,
                    report.indexes_rebuilt
                ));
                let meta = n.meta.get(&m.uid);
                let state = match log.snapshot() {
                    Some(s) => Some(snapshot::read_snapshot_state(&mut n.fs, m.uid.as_str(), s)?),
                    None => None,
                };
                let voted = meta.voted_for.map(ServerId);
                let mut slog = StorageLog { log: &mut log, shared: &mut n.shared, fs: &mut n.fs, out: &mut out };
                let (server, effects) =
                    Server::recover(cfg, meta.current_term, voted, meta.last_applied, state.as_deref(), &mut slog)?;
                fx = effects;
                m.host = Some(Host::new(server, log, process));
                Ok("restarted")
            } else {
                let restarting = std::mem::replace(&mut m.created_here, true);
                let start = if restarting {
                    // Its supervisor restarts a server created in this run with the config it was
                    // started with: `ra_server:init` again, config rewritten.
                    NewServerStart::restart(
                        &new_config,
                        process,
                        "",
                        last_wal,
                        &KvMachine,
                        &bugs,
                        &mut n.shared,
                        &mut n.names,
                        &mut n.fs,
                        &mut out,
                    )?
                } else {
                    NewServerStart::begin(
                        &new_config,
                        process,
                        "",
                        &KvMachine,
                        &bugs,
                        &mut n.shared,
                        &mut n.names,
                        &mut n.fs,
                        &mut out,
                    )?
                };
                if start.is_started() {
                    // Unregistered at pre-init (config lost) but its log survived: it starts at once.
                    let mut log = start.into_log();
                    let meta = n.meta.get(&m.uid);
                    let voted = meta.voted_for.map(ServerId);
                    let state = match log.snapshot() {
                        Some(s) => Some(snapshot::read_snapshot_state(&mut n.fs, m.uid.as_str(), s)?),
                        None => None,
                    };
                    let mut slog = StorageLog { log: &mut log, shared: &mut n.shared, fs: &mut n.fs, out: &mut out };
                    let (server, effects) =
                        Server::recover(cfg, meta.current_term, voted, LogIndex(0), state.as_deref(), &mut slog)?;
                    fx = effects;
                    m.host = Some(Host::new(server, log, process));
                    return Ok("started as new over its old log");
                }
                m.starting = Some((start, process));
                Ok("started as new")
            }
        })();
        for line in notes {
            self.note_member(i, g, Kind::Recover, line);
        }
        self.route(i, out);
        match result {
            Ok(how) => {
                self.note_member(i, g, Kind::Server, how.into());
                if self.nodes[i].members[g].starting.is_some() {
                    // Ra's `maybe_append_first_entry` waits 60 s for its first entry's `written`.
                    let incarnation = self.nodes[i].incarnation;
                    let event = Event::StartTimeout { node: i, group: g, incarnation, process: process.0 };
                    self.schedule(FIRST_ENTRY_TIMEOUT_NS, event);
                }
                if !std::mem::replace(&mut self.nodes[i].node_timers_armed, true) {
                    self.arm_autosave(i);
                    let incarnation = self.nodes[i].incarnation;
                    self.schedule(LOG_TICK_NS, Event::LogTick { node: i, incarnation });
                }
                if self.nodes[i].members[g].host.is_some() {
                    self.after_recovery(i, g);
                }
                self.run_effects(i, g, fx);
                self.try_trigger_formation(g);
            }
            Err(e) => self.actor_failed(i, Failed::Member(g), "server init", e, true),
        }
    }

    /// The config group `g`'s member on node `i` is created with (and restarted from: a supervisor
    /// restarts a server with the config it was started with).
    pub(super) fn server_config(&self, i: usize, g: usize) -> ServerConfig {
        let m = &self.nodes[i].members[g];
        ServerConfig {
            uid: m.uid.clone(),
            name: m.name.0.clone(),
            cluster_name: format!("c{}", g + 1),
            initial_members: self.members(g).iter().map(|m| m.0.clone()).collect(),
            machine_version: 1,
        }
    }

    pub(super) fn consensus_config(&self, i: usize, g: usize) -> ConsensusConfig {
        ConsensusConfig {
            id: self.nodes[i].members[g].name.clone(),
            members: self.members(g),
            election_timeout_min_ms: self.cfg.spec.election_timeout_min_ms,
            election_timeout_max_ms: self.cfg.spec.election_timeout_max_ms,
            heartbeat_ms: self.cfg.spec.heartbeat_ms,
            snapshot_interval: self.cfg.spec.snapshot_interval,
            max_append_entries: 64,
            machine_version: 1,
            rng_seed: self.cfg.spec.seed ^ (0x51 + i as u64) ^ (self.nodes[i].incarnation << 32) ^ ((g as u64) << 56),
            bugs: self.cfg.bugs.clone(),
        }
    }

    pub(super) fn arm_autosave(&mut self, i: usize) {
        let incarnation = self.nodes[i].incarnation;
        // Ra's names store auto-saves 500 ms after a change; the meta store every 5 s. One timer here.
        self.schedule(500_000_000, Event::AutoSave { node: i, incarnation });
    }

    /// A new server's init still waits for its first entry after Ra's 60 s (its append was lost with a
    /// WAL that crashed): it exits, and its supervisor restarts it.
    pub(super) fn start_timeout(&mut self, node: usize, group: usize, incarnation: u64, process: u64) {
        let n = &self.nodes[node];
        let waiting = n.members[group].starting.as_ref().is_some_and(|(_, p)| p.0 == process);
        if n.up && n.incarnation == incarnation && waiting {
            self.note_member(node, group, Kind::Fail, "server start: first entry not written in 60 s".into());
            self.member_crashed(node, group);
        }
    }

    /// The servers' tick (each second): each running server's log resends what a restarted WAL lost.
    pub(super) fn log_tick(&mut self, node: usize, incarnation: u64) {
        let n = &mut self.nodes[node];
        if !n.up || n.incarnation != incarnation {
            return;
        }
        for m in n.members.iter_mut().filter(|m| m.host.is_some()) {
            m.server_box.push_back(ServerWork::LogTick);
        }
        self.schedule(LOG_TICK_NS, Event::LogTick { node, incarnation });
        // A node that went down while its group was starting no longer holds the trigger up.
        for g in 0..self.cfg.spec.groups {
            self.try_trigger_formation(g);
        }
    }

    /// The names and meta stores' auto-save timer fired.
    pub(super) fn autosave(&mut self, node: usize, incarnation: u64) {
        let n = &mut self.nodes[node];
        if !n.up || n.incarnation != incarnation {
            return;
        }
        // A store whose auto-save failed is in DETS' error mode: it writes nothing until it is reopened.
        if !n.sup.names_poisoned
            && let Err(e) = n.names.flush(&mut n.fs, "")
        {
            self.actor_failed(node, Failed::NamesAutoSave, "auto-save", e, false);
            if !self.nodes[node].up {
                return;
            }
        }
        let n = &mut self.nodes[node];
        if !n.sup.meta_poisoned
            && let Err(e) = n.meta.flush(&mut n.fs, "")
        {
            self.actor_failed(node, Failed::MetaAutoSave, "auto-save", e, false);
            if !self.nodes[node].up {
                return;
            }
        }
        self.schedule(500_000_000, Event::AutoSave { node, incarnation });
    }

    /// Group `group` comes into being: every node that is up creates its member.
    pub(super) fn create_group(&mut self, group: usize) {
        self.created[group] = true;
        self.count("groups created at run time");
        self.note(None, Kind::Phase, format!("group g{} created", group + 1));
        // Nodes still booting create it when their WAL recovery ends; down nodes when they boot.
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.up && !n.booting && !n.fs.is_powered_off() && self.checkers.first().is_none() {
                self.start_member(i, group);
            }
        }
    }

    pub(super) fn step_actor(&mut self, i: usize, actor: Actor) {
        let mut out = Vec::new();
        let n = &mut self.nodes[i];
        n.shared.clock_ms = self.now_ns / 1_000_000;
        let result = match actor {
            Actor::Wal => {
                let msg = n.wal_next.take().or_else(|| n.wal_box.pop_front()).expect("runnable");
                if matches!(msg, WalMsg::CompleteBatch) {
                    // A slow disk: the batch's write and sync start only once its sync time has passed
                    // (the process blocked in fdatasync; what it has not written yet is lost to a crash).
                    let slow = n.slow_wal.filter(|s| self.now_ns < s.until_ns);
                    if let Some(s) = slow
                        && n.wal_ready_ns.is_none()
                    {
                        n.wal_ready_ns = Some(self.now_ns + s.sync_latency_ns);
                        n.wal_next = Some(msg);
                        self.schedule(s.sync_latency_ns, Event::WalReady);
                        return;
                    }
                    n.wal_ready_ns = None;
                }
                n.wal.handle(msg, &mut n.shared, &mut n.fs, &mut out)
            }
            Actor::SegmentWriter => {
                let msg = n.sw_next.take().or_else(|| n.sw_box.pop_front()).expect("runnable");
                n.segment_writer.handle(msg, &mut n.shared, &mut n.fs, &mut out)
            }
            Actor::Worker => {
                let msg = n.worker_box.pop_front().expect("runnable");
                Worker.handle(msg, &mut n.fs, &mut out)
            }
            Actor::Server(g) => {
                let work = n.members[g].server_box.pop_front().expect("runnable");
                return self.step_server(i, g, work);
            }
        };
        // The node boots until its first WAL recovery is over: a crash then is `node-boots`, one during a
        // restarted WAL's recovery `storage-error` like any other on a running node.
        let booting = self.nodes[i].booting;
        self.route(i, out);
        if let Err(e) = result {
            let starting = booting;
            let (who, what) = match actor {
                Actor::Wal if starting => (Failed::Boot, "wal (boot recovery)"),
                Actor::SegmentWriter if starting => (Failed::Boot, "segment writer (boot recovery)"),
                Actor::Wal => (Failed::Wal, "wal"),
                Actor::SegmentWriter => (Failed::SegmentWriter, "segment writer"),
                Actor::Worker => (Failed::Worker, "worker"),
                Actor::Server(g) => (Failed::Member(g), "server"),
            };
            self.actor_failed(i, who, what, e, booting);
        }
    }

    pub(super) fn route(&mut self, i: usize, out: Vec<Envelope>) {
        for env in out {
            let n = &mut self.nodes[i];
            match env {
                // A cast to a name nobody has registered is lost (only the segment writer casts
                // without checking: writers see `wal_down` first).
                Envelope::Wal(_) if !n.shared.wal_registered => {
                    *self.coverage.entry("casts to an unregistered WAL dropped").or_default() += 1;
                }
                Envelope::Wal(m) => {
                    if let WalMsg::Append(a) = &m {
                        n.written.entry(a.uid.clone()).or_default().note(a.index, a.term, &a.payload);
                        let followed = EntryBody::command_request(&a.payload)
                            .filter(|r| self.in_flight.contains_key(r) || self.unknown_followed.contains_key(r));
                        if let Some(g) = n.members.iter().position(|m| m.uid == a.uid) {
                            self.fates.appended(i, g, a.index.0, a.term, followed);
                        }
                    }
                    self.nodes[i].wal_box.push_back(m)
                }
                Envelope::WalContinue(m) => {
                    if n.booting && matches!(m, WalMsg::RecoverNextFile) {
                        *self.coverage.entry("wal files replayed at boot").or_default() += 1;
                    }
                    n.wal_next = Some(m)
                }
                Envelope::SegmentWriter(m) => {
                    if matches!(m, SegmentWriterMsg::MemTables { .. }) {
                        *self.coverage.entry("segment flushes").or_default() += 1;
                        if n.booting {
                            *self.coverage.entry("segment flushes during recovery").or_default() += 1;
                        }
                    }
                    n.sw_box.push_back(m)
                }
                Envelope::SegmentWriterContinue(m) => n.sw_next = Some(m),
                Envelope::Worker(m) => n.worker_box.push_back(m),
                Envelope::Server { process, event } => {
                    // To the member whose process it is; a dead process's mail is lost with it.
                    if let Some(m) = n.members.iter_mut().find(|m| m.process() == Some(process)) {
                        m.server_box.push_back(ServerWork::Log(event));
                    }
                }
                Envelope::Notice(NodeNotice::WalRecovered) => {
                    if std::mem::take(&mut self.nodes[i].booting) {
                        self.wal_recovered(i);
                    }
                    // Servers restarted while the WAL recovered were blocked in their call asking it
                    // for their last index (`last_writer_seq`): they go on now.
                    for g in 0..self.nodes[i].members.len() {
                        if std::mem::take(&mut self.nodes[i].members[g].waits_for_wal) {
                            self.start_member(i, g);
                        }
                    }
                }
            }
        }
    }
}
