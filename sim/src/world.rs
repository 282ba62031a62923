//! The world: nodes, network, clock and event queue, and the loop that steps them.
//!
//! Key invariant: the run is a pure function of [`WorldConfig`] (seed included). Nothing reads the wall
//! clock; every choice — which runnable actor steps next, each message's latency, each crash image —
//! comes from a `ChaCha8Rng` stream derived from the seed, one stream per concern, so that adding a
//! knob in one concern does not reorder another.
//!
//! Scheduling: whenever some actor of some node has work (a continuation or a mailbox message), the
//! scheduler picks one at random and runs one step, which costs `step_cost_us` of simulated time;
//! otherwise the clock jumps to the next event (message delivery, timer, client operation, fault).

use std::collections::{BTreeMap, VecDeque};

use raft_core::consensus::kv::{KvCommand, KvMachine, KvResult};
use raft_core::consensus::sender::{SenderConfig, SenderEffect, SnapshotSender};
use raft_core::consensus::server::{
    ClientId, ConsensusConfig, Effect, Entry, Input, Message, Role, Server, ServerId, Timer,
};
use raft_core::consensus::{RaftLog, StorageLog};
use raft_core::storage::boot::{load_directory, pre_init};
use raft_core::storage::durable_files::{MetaStore, NamesStore, ServerConfig};
use raft_core::storage::log::ServerLog;
use raft_core::storage::new_server::NewServerStart;
use raft_core::storage::segment::SegmentConfig;
use raft_core::storage::segment_writer::{SegmentWriter, SegmentWriterConfig, SegmentWriterMsg};
use raft_core::storage::shared::NodeShared;
use raft_core::storage::snapshot::{self, SnapshotAccept};
use raft_core::storage::wal::{SyncMethod, Wal, WalConfig, WalMsg};
use raft_core::storage::worker::{Worker, WorkerMsg};
use raft_core::storage::{Envelope, LogEvent, NodeNotice, StorageError};
use raft_core::{Bugs, LogIndex, ProcessId, Term, Uid};
use rand_chacha::ChaCha8Rng;
use scenarios::rng::{below, stream};
use vfs::{CrashPoint, OpKind, SimFs, SimFsConfig};

use scenarios::{CrashImage, CutAt, Fault, PlannedFault, RebootCut, WorldSpec};

use crate::checkers::{self, Checkers, Violation};
use crate::image;
use crate::linearizability;
use crate::trace::{self, Kind};

/// Everything a run depends on: the world (`scenarios` data) and what only the engine knows — the bug
/// switches and how much the trace shows. Every knob is written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldConfig {
    /// The world: cluster, workload, network, faults, phases, crash model (its `seed` decides everything
    /// else that is random).
    pub spec: WorldSpec,
    /// Switched-on pre-fix behaviours.
    pub bugs: Bugs,
    /// Render every message delivery and drop in the trace (MSG lines); off, only notable events are.
    pub trace_messages: bool,
    /// Render every filesystem call that changes or syncs a disk in the trace (FS lines, numbered as the
    /// CRASH lines number a power cut's call).
    pub trace_fs: bool,
    /// Run the checkers (always, except to measure what they cost: `cargo xtask bench`'s harness
    /// overhead). Off, only `converges` runs, since it ends the run.
    pub checkers: bool,
    /// Keep the rolling hash after every step and event (`RunResult::trail`), to locate where two runs
    /// diverge: `check_determinism` turns it on. Off, a long run does not hold a word per decision (a
    /// 15-million-event swarm seed held over 200 MB).
    pub record_trail: bool,
}

impl WorldConfig {
    /// A world as `spec` says, with `bugs` switched on and the trace showing notable events only.
    pub fn new(spec: WorldSpec, bugs: Bugs) -> WorldConfig {
        WorldConfig { spec, bugs, trace_messages: false, trace_fs: false, checkers: true, record_trail: false }
    }

    /// Whether the world can be built: at least one node and one group, and a plan that names existing
    /// nodes and filesystem calls. `Err` says which knob is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.spec;
        if s.nodes == 0 {
            return Err("nodes: at least 1".into());
        }
        if s.groups == 0 {
            return Err("groups: at least 1".into());
        }
        for (k, p) in s.fault_plan.iter().enumerate() {
            if p.node >= s.nodes {
                return Err(format!("fault_plan[{k}].node: {} but the cluster has {} nodes", p.node, s.nodes));
            }
            match &p.fault {
                Fault::PowerCutBefore { call, .. } | Fault::PowerCutAfter { call, .. }
                    if OpKind::from_name(call).is_none() =>
                {
                    let names: Vec<&str> = OpKind::ALL.iter().map(|k| k.name()).collect();
                    return Err(format!("fault_plan[{k}].call: unknown call {call:?} (one of {})", names.join(", ")));
                }
                Fault::PowerCutAfterCalls { calls: 0, .. } => {
                    return Err(format!("fault_plan[{k}].calls: at least 1"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every checker passed.
    Pass,
    /// A checker reported a violation.
    Violation(Violation),
}

impl Outcome {
    /// The `sim` CLI's exit code for this outcome: 0 passed, 10 a safety or correctness violation, 11 a
    /// liveness violation (`converges`, `lagging-follower-caught-up`), 12 a node that failed to boot or
    /// recover (`node-boots`, `registered-implies-config`). (13, a panic of the system under test, and 2,
    /// a usage error, are the CLI's own.)
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Violation(v) => match v.checker.as_str() {
                "converges" | "lagging-follower-caught-up" => 11,
                "node-boots" | "registered-implies-config" => 12,
                _ => 10,
            },
        }
    }

    /// The violated checker, if any.
    pub fn checker(&self) -> Option<&str> {
        match self {
            Outcome::Pass => None,
            Outcome::Violation(v) => Some(&v.checker),
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Pass or the first violation.
    pub outcome: Outcome,
    /// Simulated time at the end.
    pub sim_time_ns: u64,
    /// Events processed (actor steps, deliveries, timers, faults).
    pub events: u64,
    /// Rolling hash of the trace.
    pub trace_hash: u64,
    /// Coverage counts by name.
    pub coverage: BTreeMap<&'static str, u64>,
    /// The rendered trace (one line per notable event).
    pub trace: Vec<String>,
    /// The rolling hash after every step and event, for locating a divergence (empty unless the world
    /// records it: `WorldConfig::record_trail`).
    pub trail: Vec<u64>,
    /// Every fault that took effect, random or planned, as an explicit plan in time order: a power loss
    /// as an `ExactPowerCut` now with the image it left, a crash point that fired as an `ExactPowerCut`
    /// armed when it was, before or after the very call it cut, with its image (armed cuts that never
    /// fired are left out), a power cut during a reboot as the `reboot_cut` of the crash that caused
    /// the reboot (or, after a VM crash or another reboot cut, as an `ExactPowerCut` after its call
    /// that the down node arms at its boot), and VM crashes, WAL and segment writer restarts and
    /// isolations as themselves. The same world with this plan and no random faults
    /// (`fault_every_ms` and `recovery_crash_percent` 0) replays the same run: what `sim shrink`
    /// starts from. Its trace hash differs (fewer queue events, other CRASH lines).
    pub materialized: Vec<PlannedFault>,
    /// Where each power cut of `materialized` fell (the call, and when), in plan order.
    pub fired_cuts: Vec<FiredCut>,
}

/// Where a power cut of a materialised plan fell: what a reader wants to know of an `ExactPowerCut`
/// besides its call number, and what shrinking re-anchors it by once earlier calls change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredCut {
    /// Its entry in `RunResult::materialized`.
    pub entry: usize,
    /// It is the entry's reboot cut (else the entry's own cut).
    pub reboot: bool,
    /// The call it fell before or after: its kind (the `vfs` name, as plans name calls)…
    pub call: String,
    /// …and its normalised path.
    pub path: String,
    /// When it fired.
    pub time_ns: u64,
}

#[derive(Debug, Clone)]
enum Event {
    Deliver {
        to: usize,
        group: usize,
        from: ServerId,
        msg: Message,
    },
    Timer {
        node: usize,
        group: usize,
        incarnation: u64,
        timer: Timer,
        generation: u64,
    },
    SenderTimer {
        node: usize,
        group: usize,
        incarnation: u64,
        peer: ServerId,
        generation: u64,
    },
    ClientOp,
    /// A closed-loop client's operation is still unanswered: give up (outcome unknown).
    ClientTimeout {
        client: usize,
        request: u64,
    },
    /// A closed-loop client sends its redirected operation again.
    ClientRetry {
        client: usize,
        request: u64,
    },
    Fault,
    Restart {
        node: usize,
    },
    Reconnect {
        node: usize,
    },
    AutoSave {
        node: usize,
        incarnation: u64,
    },
    Heal,
    /// Entry `index` of the fault plan is due.
    Planned {
        index: usize,
    },
    /// Group `g` comes into being: every node that is up creates its member.
    CreateGroup {
        group: usize,
    },
    /// Liveness phase: has the cluster converged yet?
    ConvergeCheck,
    /// A slow WAL sync's time has passed: its WAL process may step again (nothing else to do).
    WalReady,
}

#[derive(Clone)]
enum ServerWork {
    Log(LogEvent),
    Input(Input),
}

#[derive(Clone)]
struct Host {
    server: Server,
    log: ServerLog,
    process: ProcessId,
}

/// One Raft group's member on a node: its server (or the new server being started) and what the world
/// keeps for it.
#[derive(Clone)]
struct Member {
    name: ServerId,
    uid: Uid,
    server_box: VecDeque<ServerWork>,
    host: Option<Host>,
    /// A new server waiting for its first entry, and the process it runs as.
    starting: Option<(NewServerStart, ProcessId)>,
    /// Its config, when pre-init found it registered and readable.
    ready_config: Option<ServerConfig>,
    senders: BTreeMap<ServerId, (SnapshotSender, u64)>,
    accept: Option<SnapshotAccept>,
    timer_generation: BTreeMap<Timer, u64>,
    /// The server's last written entry when the node last crashed (`written-survives`).
    written_at_crash: Option<(LogIndex, Term)>,
    /// The server's last written entry when its current snapshot receive began: the live entries the
    /// receive writes sparsely above the log are no promise (a crash mid-receive discards them).
    written_before_receive: Option<(LogIndex, Term)>,
}

impl Member {
    fn new(name: String) -> Member {
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
            written_before_receive: None,
        }
    }

    /// Everything volatile goes with its process (a boot starts from the disk).
    fn reset(&mut self) {
        self.server_box.clear();
        self.host = None;
        self.starting = None;
        self.ready_config = None;
        self.senders.clear();
        self.accept = None;
        self.timer_generation.clear();
        self.written_before_receive = None;
    }

    /// The process of its server, running or starting.
    fn process(&self) -> Option<ProcessId> {
        self.host.as_ref().map(|h| h.process).or(self.starting.as_ref().map(|(_, p)| *p))
    }
}

/// The name (and uid) of group `g`'s member on node `i`: `n1`, `n2`, … for the first group, `n1g2`, … for
/// the others.
fn member_name(i: usize, g: usize) -> String {
    if g == 0 { format!("n{}", i + 1) } else { format!("n{}g{}", i + 1, g + 1) }
}

#[derive(Clone)]
struct Node {
    name: String,
    fs: SimFs,
    shared: NodeShared,
    names: NamesStore,
    meta: MetaStore,
    up: bool,
    incarnation: u64,
    wal: Wal,
    segment_writer: SegmentWriter,
    wal_box: VecDeque<WalMsg>,
    wal_next: Option<WalMsg>,
    sw_box: VecDeque<SegmentWriterMsg>,
    sw_next: Option<SegmentWriterMsg>,
    worker_box: VecDeque<WorkerMsg>,
    /// One per group, by group index.
    members: Vec<Member>,
    next_process: u64,
    /// Between boot and the end of WAL recovery (a WAL-only restart does not restart the servers).
    booting: bool,
    /// A planned power cut this many calls into the next boot, and the image it keeps (`None`: the crash
    /// model chooses).
    next_boot_cut: Option<(u64, Option<CrashImage>)>,
    /// A sweep's held power cut after this call, armed when the node next boots (last, over any other).
    held_boot_cut: Option<u64>,
    /// The plan entry (an exact cut at a call, at time 0) armed before the first boot.
    start_cut: Option<usize>,
    /// A slow disk (`Fault::SlowWal`), until its end.
    slow_wal: Option<SlowWal>,
    /// The batch at the head of the WAL's queue waits for a slow sync until this time (and may go once
    /// it has passed).
    wal_ready_ns: Option<u64>,
}

/// A slow disk: each WAL sync takes `sync_latency_ns` until `until_ns`.
#[derive(Debug, Clone, Copy)]
struct SlowWal {
    sync_latency_ns: u64,
    until_ns: u64,
}

impl Node {
    /// Group `g`'s server log as a [`RaftLog`] for the checkers' reads (nothing they call appends to `out`).
    fn read_log<'a>(&'a mut self, g: usize, out: &'a mut Vec<Envelope>) -> Option<StorageLog<'a>> {
        let h = self.members[g].host.as_mut()?;
        Some(StorageLog { log: &mut h.log, shared: &mut self.shared, fs: &mut self.fs, out })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Actor {
    Wal,
    SegmentWriter,
    Worker,
    /// Group `g`'s server.
    Server(usize),
}

impl Actor {
    /// A number for the trace hash.
    fn code(self) -> u64 {
        match self {
            Actor::Wal => 0,
            Actor::SegmentWriter => 1,
            Actor::Worker => 2,
            Actor::Server(g) => 3 + g as u64,
        }
    }
}

/// A network cut around one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    node: usize,
    /// Messages to the node are dropped.
    inbound: bool,
    /// Messages from the node are dropped.
    outbound: bool,
}

impl Cut {
    fn drops(&self, from: Option<usize>, to: usize) -> bool {
        (self.inbound && self.node == to) || (self.outbound && from == Some(self.node))
    }
}

/// The faults that took effect so far (`RunResult::materialized`), and per node what a power cut that
/// fires later was armed as.
#[derive(Debug, Clone, Default)]
struct Recorder {
    /// Entries in the order they were recorded, each with the order it was armed or took effect in
    /// (entries due at the same time replay in that order).
    plan: Vec<(u64, PlannedFault)>,
    /// The power cuts that fired: entry (index into `plan`), reboot cut or not, (call, path, time).
    fired: Vec<(usize, bool, (String, String, u64))>,
    /// The next arming order.
    order: u64,
    /// By node (grown on demand).
    nodes: Vec<NodeRecord>,
    /// While a fault event is handled: the time it was scheduled for.
    due_ns: Option<u64>,
    /// When the next random fault event is due (`None`: the first, at `fault_every_ms`).
    next_fault_due_ns: Option<u64>,
}

/// What the recorder knows of one node.
#[derive(Debug, Clone, Default)]
struct NodeRecord {
    /// The power cut armed on its disk, if any.
    armed: Option<ArmedRecord>,
    /// The entry of the crash that took it down, while its reboot may still attach a reboot cut to it.
    crash_entry: Option<usize>,
    /// When its last crash's `Restart` event is due.
    restart_due_ns: u64,
}

/// How an armed power cut was armed.
#[derive(Debug, Clone)]
enum ArmedRecord {
    /// At a crash point (random or planned): it becomes an exact cut before or after the call it fires
    /// at, armed at the same time.
    Point { at_ns: u64, order: u64, before: bool, label: Option<String> },
    /// By a reboot, `after_calls` calls into it: the reboot cut of the crash entry `attach`, or else an
    /// exact cut after its call that the down node arms at its boot.
    Boot { after_calls: u64, at_ns: u64, order: u64, attach: Option<usize>, label: Option<String> },
}

impl Recorder {
    fn next_order(&mut self) -> u64 {
        self.order += 1;
        self.order
    }

    fn node(&mut self, i: usize) -> &mut NodeRecord {
        if self.nodes.len() <= i {
            self.nodes.resize_with(i + 1, NodeRecord::default);
        }
        &mut self.nodes[i]
    }

    /// Adds an entry at `at_ns`; its index.
    fn push(&mut self, at_ns: u64, order: u64, node: usize, fault: Fault) -> usize {
        let entry = PlannedFault { at_ms: at_ns / 1_000_000, plus_ns: at_ns % 1_000_000, node, fault };
        self.plan.push((order, entry));
        self.plan.len() - 1
    }

    /// The plan in time order (ties in the order they were armed), and where its cuts fell.
    fn into_plan(self) -> (Vec<PlannedFault>, Vec<FiredCut>) {
        let mut by_time: Vec<usize> = (0..self.plan.len()).collect();
        by_time.sort_by_key(|&k| {
            let (order, p) = &self.plan[k];
            (p.at_ms, p.plus_ns, *order)
        });
        let mut position = vec![0; self.plan.len()];
        for (at, &k) in by_time.iter().enumerate() {
            position[k] = at;
        }
        let mut fired: Vec<FiredCut> = self
            .fired
            .into_iter()
            .map(|(k, reboot, (call, path, time_ns))| FiredCut { entry: position[k], reboot, call, path, time_ns })
            .collect();
        fired.sort_by_key(|f| (f.entry, f.reboot));
        let plan = by_time.into_iter().map(|k| self.plan[k].1.clone()).collect();
        (plan, fired)
    }
}

/// A client operation not yet answered.
#[derive(Clone)]
struct InFlight {
    /// The group whose machine it goes to.
    group: usize,
    key: String,
    op: linearizability::KvOp,
    invoke_ns: u64,
    command: KvCommand,
}

/// A closed-loop client.
#[derive(Clone)]
struct Client {
    /// Where it sends: the leader it last heard of.
    target: Option<usize>,
    /// Its outstanding request.
    request: Option<u64>,
}

/// What [`World::advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stepped {
    /// An actor stepped.
    Actor,
    /// An event was handled.
    Event,
    /// Nothing was left to do.
    Idle,
}

/// A world being run. Cloning it forks the run: both copies go on identically until one is changed
/// (how a sweep explores every crash image of one crash point without replaying the run up to it).
#[derive(Clone)]
pub struct World {
    cfg: WorldConfig,
    now_ns: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    sched_rng: ChaCha8Rng,
    net_rng: ChaCha8Rng,
    fault_rng: ChaCha8Rng,
    client_rng: ChaCha8Rng,
    link_clock: BTreeMap<(usize, usize), u64>,
    client_seq: u64,
    /// The node currently cut off from the network (both ways or one way), if any.
    cut: Option<Cut>,
    /// Client operations in flight: request → (key, operation, invoke time).
    in_flight: BTreeMap<u64, InFlight>,
    /// The closed-loop clients (none for the open-loop generator); client `c` uses group `c % groups`.
    clients: Vec<Client>,
    /// Which groups exist yet.
    created: Vec<bool>,
    /// The completed history (outcomes known or, at the end, unknown).
    history: Vec<linearizability::Operation>,
    faults_on: bool,
    checkers: Checkers,
    /// The liveness phase saw the cluster converge: the run is over.
    converged: bool,
    events: u64,
    hash: u64,
    trace: Vec<String>,
    trail: Vec<u64>,
    coverage: BTreeMap<&'static str, u64>,
    /// The faults that took effect, for `RunResult::materialized`.
    recorder: Recorder,
}

impl World {
    /// A world whose nodes are about to boot for the first time.
    pub fn new(cfg: WorldConfig) -> World {
        let disks = (0..cfg.spec.nodes)
            .map(|i| {
                SimFs::new(SimFsConfig {
                    seed: cfg.spec.seed ^ (0xF5 + i as u64),
                    sector_size: 512,
                    capacity_bytes: 1 << 32,
                    max_file_size: 1 << 40,
                    record_ops: false,
                })
            })
            .collect();
        World::with_disks(cfg, disks)
    }

    /// A world whose nodes boot from the given disks (node `i` from `disks[i]`): how a test hands the
    /// boot path a constructed disk image.
    pub fn with_disks(cfg: WorldConfig, disks: Vec<SimFs>) -> World {
        if let Err(e) = cfg.validate() {
            panic!("an invalid world config (check `WorldConfig::validate` first): {e}");
        }
        assert_eq!(disks.len(), cfg.spec.nodes, "one disk per node");
        let nodes = disks
            .into_iter()
            .map(|mut fs| {
                fs.set_record_ops(cfg.trace_fs);
                fs
            })
            .enumerate()
            .map(|(i, fs)| Node {
                name: format!("n{}", i + 1),
                fs,
                shared: NodeShared::new(),
                names: NamesStore::new(),
                meta: MetaStore::new(),
                up: false,
                incarnation: 0,
                wal: Wal::new(wal_config(&cfg), 0),
                segment_writer: SegmentWriter::new(segment_writer_config(&cfg)),
                wal_box: VecDeque::new(),
                wal_next: None,
                sw_box: VecDeque::new(),
                sw_next: None,
                worker_box: VecDeque::new(),
                members: (0..cfg.spec.groups).map(|g| Member::new(member_name(i, g))).collect(),
                next_process: 1,
                booting: false,
                next_boot_cut: None,
                held_boot_cut: None,
                start_cut: None,
                slow_wal: None,
                wal_ready_ns: None,
            })
            .collect();
        let mut w = World {
            now_ns: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            sched_rng: stream(cfg.spec.seed, 1),
            net_rng: stream(cfg.spec.seed, 2),
            fault_rng: stream(cfg.spec.seed, 3),
            client_rng: stream(cfg.spec.seed, 4),
            link_clock: BTreeMap::new(),
            client_seq: 0,
            cut: None,
            in_flight: BTreeMap::new(),
            clients: (0..cfg.spec.clients).map(|_| Client { target: None, request: None }).collect(),
            created: (0..cfg.spec.groups).map(|g| g == 0 || cfg.spec.group_stagger_ms == 0).collect(),
            history: Vec::new(),
            faults_on: true,
            checkers: Checkers::new(cfg.spec.contact_bound_ms),
            converged: false,
            events: 0,
            hash: 0xcbf2_9ce4_8422_2325,
            trace: Vec::new(),
            trail: Vec::new(),
            coverage: BTreeMap::new(),
            recorder: Recorder::default(),
            cfg,
        };
        // An exact cut at a call, planned for time 0, is armed before the first boot: its call may be
        // one of the boot's own (the plan's events come after it).
        let mut armed_at_start = vec![false; w.cfg.spec.fault_plan.len()];
        for (index, p) in w.cfg.spec.fault_plan.iter().enumerate() {
            if let (0, 0, Fault::ExactPowerCut { at: CutAt::AfterCall(_) | CutAt::BeforeCall(_), .. }) =
                (p.at_ms, p.plus_ns, &p.fault)
            {
                armed_at_start[index] = true;
            }
        }
        for i in 0..w.nodes.len() {
            w.nodes[i].start_cut = armed_at_start
                .iter()
                .enumerate()
                .rfind(|(index, a)| **a && w.cfg.spec.fault_plan[*index].node == i)
                .map(|(index, _)| index);
            w.boot(i, None);
        }
        w.schedule(w.cfg.spec.client_interval_ms * 1_000_000, Event::ClientOp);
        if w.cfg.spec.fault_every_ms > 0 {
            w.schedule(w.cfg.spec.fault_every_ms * 1_000_000, Event::Fault);
        }
        w.schedule(w.cfg.spec.safety_ms * 1_000_000, Event::Heal);
        for (index, armed) in armed_at_start.into_iter().enumerate() {
            let PlannedFault { at_ms, plus_ns, .. } = w.cfg.spec.fault_plan[index];
            // An entry due at the heal's very instant still happens, just before it (`Event::Heal`).
            if at_ms * 1_000_000 + plus_ns <= w.cfg.spec.safety_ms * 1_000_000 && !armed {
                w.schedule(at_ms * 1_000_000 + plus_ns, Event::Planned { index });
            }
        }
        if w.cfg.spec.group_stagger_ms > 0 {
            for group in 1..w.cfg.spec.groups {
                w.schedule(group as u64 * w.cfg.spec.group_stagger_ms * 1_000_000, Event::CreateGroup { group });
            }
        }
        w
    }

    /// Group `g`'s members.
    fn members(&self, g: usize) -> Vec<ServerId> {
        self.nodes.iter().map(|n| n.members[g].name.clone()).collect()
    }

    /// The node and group of a member.
    fn member_of(&self, id: &ServerId) -> Option<(usize, usize)> {
        self.nodes.iter().enumerate().find_map(|(i, n)| n.members.iter().position(|m| m.name == *id).map(|g| (i, g)))
    }

    /// A member's key in the contact obligations.
    fn member_key(&self, i: usize, g: usize) -> usize {
        g * self.nodes.len() + i
    }

    /// A trace line about group `g`'s member on node `i` (prefixed with the member for groups after the
    /// first).
    fn note_member(&mut self, i: usize, g: usize, kind: Kind, detail: String) {
        let detail = if g == 0 { detail } else { format!("{}: {detail}", self.nodes[i].members[g].name) };
        self.note(Some(i), kind, detail);
    }

    fn schedule(&mut self, after_ns: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now_ns + after_ns, self.seq), event);
    }

    /// Adds a trace line (and folds it into the trace hash), after the FS lines of the filesystem calls
    /// made before it.
    fn note(&mut self, node: Option<usize>, kind: Kind, detail: String) {
        self.trace_fs_calls();
        self.push_line(node, kind, &detail);
    }

    /// Renders a line. The optional detail lines (MSG, FS) do not feed the trace hash, so that tracing
    /// more of a run does not change its hash (the run itself is the same).
    fn push_line(&mut self, node: Option<usize>, kind: Kind, detail: &str) {
        let name = node.map_or("-", |i| self.nodes[i].name.as_str());
        let line = trace::render(self.now_ns, name, kind, detail);
        if matches!(kind, Kind::Msg | Kind::Fs) {
            self.trace.push(line);
            return;
        }
        for b in line.as_bytes() {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.trace.push(line);
    }

    /// With `trace_fs`: an FS line per recorded filesystem call that changed or synced a disk.
    fn trace_fs_calls(&mut self) {
        if !self.cfg.trace_fs {
            return;
        }
        for i in 0..self.nodes.len() {
            for op in self.nodes[i].fs.take_ops() {
                if let Some(line) = trace::describe_fs_op(&op) {
                    self.push_line(Some(i), Kind::Fs, &line);
                }
            }
        }
    }

    /// Folds a compact event description into the trace hash (every step and event, not only rendered
    /// lines, so that the determinism check sees every decision).
    fn mix(&mut self, words: &[u64]) {
        for w in words {
            for b in w.to_le_bytes() {
                self.hash ^= u64::from(b);
                self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        if self.cfg.record_trail {
            self.trail.push(self.hash);
        }
    }

    fn count_n(&mut self, what: &'static str, n: u64) {
        *self.coverage.entry(what).or_default() += n;
    }

    fn count(&mut self, what: &'static str) {
        *self.coverage.entry(what).or_default() += 1;
    }

    // ---- boot ------------------------------------------------------------------------------------

    /// Boots node `i`; `cut`: a power cut armed that many filesystem calls into the boot, keeping the
    /// given image (`None`: the crash model chooses).
    fn boot(&mut self, i: usize, cut: Option<(u64, Option<CrashImage>)>) {
        let bugs = self.cfg.bugs.clone();
        let model = crash_model(self.cfg.spec.crash_model);
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
        n.wal = Wal::new(wal_config(&self.cfg), n.incarnation);
        n.segment_writer = SegmentWriter::new(segment_writer_config(&self.cfg));
        n.wal_box.clear();
        n.wal_next = None;
        n.wal_ready_ns = None;
        n.sw_box.clear();
        n.sw_next = None;
        n.worker_box.clear();
        for m in n.members.iter_mut() {
            m.reset();
        }
        let pre = load_directory(&mut n.fs, "", &mut n.shared).and_then(|mut names| {
            let report = pre_init(&mut n.fs, "", &mut names, &KvMachine, &bugs, &mut n.shared)?;
            Ok((names, report))
        });
        match pre {
            Ok((names, report)) => {
                n.names = names;
                // Ra's pre-init catches a server's init error; its restart then fails the same way.
                if let Some((uid, e)) = report.failed.into_iter().find(|(u, _)| n.members.iter().any(|m| m.uid == *u)) {
                    self.actor_failed(i, &format!("server init of {uid}"), e, true);
                    return;
                }
                // `registered-implies-config`: after pre-init every registered server has a readable
                // config (else it can neither restart nor be created anew).
                let n = &mut self.nodes[i];
                if n.fs.is_powered_off() {
                    return; // a second crash during recovery; the node is down again
                }
                let result = if self.cfg.checkers {
                    checkers::registered_implies_config(&n.shared.directory, &mut n.fs)
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
                let n = &mut self.nodes[i];
                for config in report.ready {
                    if let Some(m) = n.members.iter_mut().find(|m| m.uid == config.uid) {
                        m.ready_config = Some(config);
                    }
                }
                n.meta = MetaStore::load(&mut n.fs, "").unwrap_or_default();
                n.wal_box.push_back(WalMsg::Recover);
                self.note(Some(i), Kind::Boot, "pre-init done, WAL recovery begins".into());
            }
            Err(e) => self.actor_failed(i, "pre-init", e, true),
        }
    }

    /// WAL recovery finished: every group that exists restarts its member from its config, or creates it.
    fn wal_recovered(&mut self, i: usize) {
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
    fn start_member(&mut self, i: usize, g: usize) {
        let cfg = self.consensus_config(i, g);
        let bugs = self.cfg.bugs.clone();
        let members = self.members(g);
        let n = &mut self.nodes[i];
        let process = ProcessId(n.next_process);
        n.next_process += 1;
        let m = &mut n.members[g];
        let mut out = Vec::new();
        let mut fx = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let result: Result<&'static str, StorageError> = (|| {
            if let Some(config) = m.ready_config.clone() {
                n.shared.directory.set_process(&config.uid, Some(process));
                let last_wal = n.wal.last_writer_seq(&m.uid).map(|w| w.last());
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
                m.host = Some(Host { server, log, process });
                Ok("restarted")
            } else {
                let config = ServerConfig {
                    uid: m.uid.clone(),
                    name: m.name.0.clone(),
                    cluster_name: format!("c{}", g + 1),
                    initial_members: members.iter().map(|m| m.0.clone()).collect(),
                    machine_version: 1,
                };
                let start = NewServerStart::begin(
                    &config,
                    process,
                    "",
                    &KvMachine,
                    &bugs,
                    &mut n.shared,
                    &mut n.names,
                    &mut n.fs,
                    &mut out,
                )?;
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
                    m.host = Some(Host { server, log, process });
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
                if g == 0 {
                    self.arm_autosave(i);
                }
                if self.nodes[i].members[g].host.is_some() {
                    self.after_recovery(i, g);
                }
                self.run_effects(i, g, fx);
            }
            Err(e) => self.actor_failed(i, "server init", e, true),
        }
    }

    fn consensus_config(&self, i: usize, g: usize) -> ConsensusConfig {
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

    fn arm_autosave(&mut self, i: usize) {
        let incarnation = self.nodes[i].incarnation;
        // Ra's names store auto-saves 500 ms after a change; the meta store every 5 s. One timer here.
        self.schedule(500_000_000, Event::AutoSave { node: i, incarnation });
    }

    // ---- failures ----------------------------------------------------------------------------------

    /// An actor stopped with `e`. A power cut is expected; anything else is a crash Ra would also have:
    /// during boot it is a `node-boots` violation, afterwards a `storage-error` one.
    fn actor_failed(&mut self, i: usize, what: &str, e: StorageError, booting: bool) {
        let name = self.nodes[i].name.clone();
        self.note(Some(i), Kind::Fail, format!("{what}: {e}"));
        if e.is_power_cut() {
            return;
        }
        let checker = if booting { "node-boots" } else { "storage-error" };
        self.checkers.violation(checker, &name, self.now_ns, format!("{what}: {e}"));
        self.nodes[i].up = false;
    }

    /// Bookkeeping of every crash of node `i`: what it had written, and obligations that lapse.
    fn crashed(&mut self, i: usize) {
        for m in self.nodes[i].members.iter_mut() {
            if let Some(h) = m.host.as_ref() {
                m.written_at_crash = Some(m.written_before_receive.unwrap_or_else(|| h.log.last_written()));
            }
        }
        for g in 0..self.cfg.spec.groups {
            let key = self.member_key(i, g);
            self.checkers.obligations.forget(key);
        }
    }

    /// A server came up from its disk: `written-survives` (against what it had written before its
    /// crash), `no-log-gap` (its recovered log) and `commit-durability` (a majority still holds the
    /// highest committed entry).
    fn after_recovery(&mut self, i: usize, g: usize) {
        if !self.cfg.checkers {
            return;
        }
        let mut scratch = Vec::new();
        let n = &mut self.nodes[i];
        let name = n.members[g].name.0.clone();
        let m = &mut n.members[g];
        let Some(h) = m.host.as_ref() else { return };
        if let Some(before) = m.written_at_crash.take() {
            let result = checkers::written_survives(before, h.log.last_written());
            if self.checkers.judge("written-survives", &name, self.now_ns, result) {
                return;
            }
        }
        let n = &mut self.nodes[i];
        let Some(mut log) = n.read_log(g, &mut scratch) else { return };
        let result = checkers::no_log_gap(&mut log);
        if n.fs.is_powered_off() {
            return; // a power cut armed during recovery fired: the node is down, its disk judged at the next boot
        }
        if self.checkers.judge("no-log-gap", &name, self.now_ns, result) {
            return;
        }
        self.check_commit_durability(g);
    }

    /// `commit-durability` of group `g` over the members now up (down members are not judged until they
    /// boot).
    fn check_commit_durability(&mut self, g: usize) {
        let Some(committed) = self.checkers.highest_committed(g) else { return };
        let (mut holding, mut unknown) = (0, 0);
        let mut scratch = Vec::new();
        for n in self.nodes.iter_mut() {
            let up = n.up;
            let Some(mut log) = n.read_log(g, &mut scratch).filter(|_| up) else {
                unknown += 1;
                continue;
            };
            match checkers::holds(&mut log, committed.0, committed.1) {
                Ok(true) => holding += 1,
                Ok(false) => {}
                Err(_) if n.fs.is_powered_off() => unknown += 1,
                Err(detail) => {
                    let name = n.members[g].name.0.clone();
                    self.checkers.violation("storage-error", &name, self.now_ns, detail);
                    return;
                }
            }
        }
        let result = checkers::commit_durability(holding, unknown, self.nodes.len(), committed);
        let cluster = group_label(g);
        self.checkers.judge("commit-durability", &cluster, self.now_ns, result);
    }

    /// Power loss now: `image` says what the disk keeps (`None`: the crash model chooses).
    fn power_loss(&mut self, i: usize, image: Option<&CrashImage>) {
        self.crashed(i);
        let model = crash_model(self.cfg.spec.crash_model);
        let n = &mut self.nodes[i];
        n.fs.disarm_power_cut();
        let pending = n.fs.pending_count();
        let (decisions, mismatch) = match image {
            Some(image) => match n.fs.crash_with(&image::to_decisions(image, model)) {
                Ok(d) => (d, false),
                Err(_) => (n.fs.crash(model), true),
            },
            None => (n.fs.crash(model), false),
        };
        if mismatch {
            self.count("crash images that no longer fit");
        }
        let label = match image {
            Some(image) if !mismatch => image.label.clone(),
            _ => model.name().to_owned(),
        };
        let image = Some(image::from_decisions(&decisions, &label));
        let entry = self.record_now(i, Fault::ExactPowerCut { at: CutAt::Now, image, reboot_cut: None });
        let r = self.recorder.node(i);
        r.armed = None;
        r.crash_entry = Some(entry);
        self.record_down(i);
        let n = &mut self.nodes[i];
        n.fs.power_on();
        n.up = false;
        n.incarnation += 1;
        self.count("power losses");
        if pending > 0 {
            self.count("power losses with unsynced state");
        }
        self.note(Some(i), Kind::Crash, format!("POWER LOSS ({} model, {pending} pending operations)", model.name()));
        for line in trace::describe_crash(&decisions) {
            self.note(Some(i), Kind::Disk, line);
        }
        let after = self.cfg.spec.restart_after_ms * 1_000_000;
        self.schedule(after, Event::Restart { node: i });
    }

    /// VM crash: every process and its volatile state gone; the page cache (unsynced data) survives.
    fn vm_crash(&mut self, i: usize) {
        self.crashed(i);
        let n = &mut self.nodes[i];
        n.fs.process_crash();
        n.up = false;
        n.incarnation += 1;
        self.count("vm crashes");
        self.record_now(i, Fault::VmCrash { reboot_cut_after_calls: None });
        // Its reboot's power cut, if any, is recorded as a cut its boot arms (a VM crash has no image).
        let r = self.recorder.node(i);
        r.armed = None;
        r.crash_entry = None;
        self.record_down(i);
        self.note(Some(i), Kind::Crash, "VM CRASH (processes gone, page cache kept)".into());
        let after = self.cfg.spec.restart_after_ms * 1_000_000;
        self.schedule(after, Event::Restart { node: i });
    }

    /// The WAL process alone restarts (Ra's supervisor): mem tables survive, so it recovers in
    /// post-boot mode; appends that arrive meanwhile wait in its mailbox.
    fn wal_restart(&mut self, i: usize) {
        if self.restart_wal(i) {
            self.record_now(i, Fault::WalRestart);
        }
    }

    /// The WAL restart itself (also a segment writer crash's); whether it happened (a WAL still
    /// recovering is not restarted).
    fn restart_wal(&mut self, i: usize) -> bool {
        let n = &mut self.nodes[i];
        if !matches!(n.wal.phase(), raft_core::storage::wal::WalPhase::Running) {
            return false;
        }
        let incarnation = n.incarnation * 1_000 + n.next_process;
        n.next_process += 1;
        n.wal = Wal::new(wal_config(&self.cfg), incarnation);
        n.wal_next = None;
        n.wal_ready_ns = None;
        let queued: Vec<WalMsg> = n.wal_box.drain(..).collect();
        n.wal_box.push_back(WalMsg::Recover);
        // What was queued for the old process is lost with it, except appends: Ra's writers re-send
        // after a gap, here they simply wait behind recovery.
        n.wal_box.extend(queued.into_iter().filter(|m| matches!(m, WalMsg::Append(_))));
        self.count("wal restarts");
        self.note(Some(i), Kind::Crash, "WAL process restart (mem tables kept)".into());
        true
    }

    /// The segment writer crashes mid-work: a fresh one starts (open segments, queued flushes and
    /// step-wise mem-table deletes of the old one are gone), and Ra's `one_for_all` log supervisor
    /// restarts the WAL with it, whose post-boot recovery hands the WAL files still on disk to the new
    /// segment writer again.
    fn segment_writer_crash(&mut self, i: usize) {
        if !matches!(self.nodes[i].wal.phase(), raft_core::storage::wal::WalPhase::Running) {
            return;
        }
        let n = &mut self.nodes[i];
        n.segment_writer = SegmentWriter::new(segment_writer_config(&self.cfg));
        n.sw_box.clear();
        n.sw_next = None;
        self.count("segment writer crashes");
        self.record_now(i, Fault::SegmentWriterCrash);
        self.note(Some(i), Kind::Crash, "segment writer crash (the log supervisor restarts the WAL too)".into());
        self.restart_wal(i);
    }

    /// Arms a power cut just before the node's next call at a durability point.
    fn arm_crash_point(&mut self, i: usize) {
        const POINTS: [(OpKind, &str); 9] = [
            (OpKind::Unlink, "*.wal"),
            (OpKind::Fdatasync, "*.wal"),
            (OpKind::Rename, "*.wal"),
            (OpKind::Fsync, "*.segment"),
            (OpKind::Unlink, "*.segment"),
            (OpKind::FsyncDir, "*"),
            (OpKind::Rename, "config"),
            (OpKind::Write, "indexes"),
            (OpKind::Rename, "names"),
        ];
        let (kind, glob) = POINTS[below(&mut self.fault_rng, POINTS.len() as u64) as usize];
        let model = crash_model(self.cfg.spec.crash_model);
        let n = &mut self.nodes[i];
        let after_seq = n.fs.op_seq();
        n.fs.arm_power_cut(CrashPoint::BeforeOp { kind: Some(kind), path_glob: glob.to_owned(), after_seq }, model);
        self.record_armed(i, true, None);
        self.count("crash points armed");
        self.note(Some(i), Kind::Crash, format!("power cut armed before the next {} of {glob}", kind.name()));
    }

    /// A power cut armed at a crash point fired during a step: the node is down.
    fn check_fired_cuts(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up || !self.nodes[i].fs.is_powered_off() {
                continue;
            }
            self.crashed(i);
            let n = &mut self.nodes[i];
            let cuts = n.fs.take_power_cuts();
            let recovering = n.booting || n.members.iter().all(|m| m.host.is_none() && m.starting.is_none());
            n.up = false;
            n.incarnation += 1;
            self.count("crash points fired");
            if recovering {
                self.count("crashes during recovery");
            }
            self.record_down(i);
            for cut in cuts {
                self.record_fired(i, &cut);
                if cut.replay_mismatch.is_some() {
                    self.count("crash images that no longer fit");
                }
                self.note(Some(i), Kind::Crash, format!("POWER CUT at op {} ({})", cut.seq, cut.trigger));
                for line in trace::describe_crash(&cut.decisions) {
                    self.note(Some(i), Kind::Disk, line);
                }
            }
            let after = self.cfg.spec.restart_after_ms * 1_000_000;
            self.schedule(after, Event::Restart { node: i });
        }
    }

    /// Applies entry `index` of the fault plan.
    fn planned_fault(&mut self, index: usize) {
        let p = &self.cfg.spec.fault_plan[index];
        self.recorder.due_ns = Some(p.at_ms * 1_000_000 + p.plus_ns);
        self.apply_planned(index);
        self.recorder.due_ns = None;
    }

    fn apply_planned(&mut self, index: usize) {
        let PlannedFault { node: i, fault, .. } = self.cfg.spec.fault_plan[index].clone();
        self.count("planned faults");
        let crashes = fault.crashes();
        let first_boot = self.nodes[i].incarnation == 0;
        // A cut after a numbered call names the call across reboots: a node that is down arms it at its
        // next boot (how a materialised plan replays a power cut during a reboot after a VM crash or after
        // another such cut). At the first boot it is armed now, before the boot's own calls.
        if let Fault::ExactPowerCut { at: CutAt::AfterCall(seq), image, .. } = &fault
            && !self.nodes[i].up
            && !first_boot
            && let Some(k) = seq.checked_sub(self.nodes[i].fs.op_seq()).filter(|k| *k > 0)
        {
            self.nodes[i].next_boot_cut = Some((k, image.clone()));
            self.count("planned cuts armed at the next boot");
            self.note(Some(i), Kind::Crash, format!("power cut after call {seq} armed at the next boot"));
            return;
        }
        if crashes && !self.nodes[i].up && !first_boot {
            self.count("planned faults skipped (node down)");
            self.note(Some(i), Kind::Crash, format!("planned {} skipped: the node is down", fault.name()));
            return;
        }
        if crashes {
            self.nodes[i].next_boot_cut = match &fault {
                Fault::ExactPowerCut { reboot_cut, .. } => reboot_cut.clone().map(|r| (r.after_calls, r.image)),
                _ => fault.reboot_cut_after_calls().map(|k| (k, None)),
            };
        }
        let model = crash_model(self.cfg.spec.crash_model);
        match fault {
            Fault::PowerLoss { .. } => self.power_loss(i, None),
            Fault::ExactPowerCut { at: CutAt::Now, image, .. } => self.power_loss(i, image.as_ref()),
            Fault::ExactPowerCut { at, image, .. } => {
                let n = &mut self.nodes[i];
                let (point, what) = match at {
                    CutAt::BeforeCall(seq) => (
                        CrashPoint::BeforeOp { kind: None, path_glob: "**".into(), after_seq: seq.saturating_sub(1) },
                        format!("before call {seq}"),
                    ),
                    _ => {
                        let seq = match at {
                            CutAt::AfterCall(seq) => seq,
                            CutAt::Now | CutAt::BeforeCall(_) => unreachable!("matched above"),
                        };
                        (CrashPoint::AfterOp { seq }, format!("after call {seq}"))
                    }
                };
                arm(&mut n.fs, point, model, image.as_ref());
                self.record_armed(i, matches!(at, CutAt::BeforeCall(_)), image.as_ref().map(|im| im.label.clone()));
                self.count("crash points armed");
                let keeps = image.as_ref().map_or(String::new(), |im| format!(", keeping image {}", im.label));
                self.note(Some(i), Kind::Crash, format!("power cut armed {what}{keeps}"));
            }
            Fault::VmCrash { .. } => self.vm_crash(i),
            Fault::PowerCutBefore { call, path_glob, .. } => {
                let kind = OpKind::from_name(&call).expect("validated");
                let n = &mut self.nodes[i];
                let after_seq = n.fs.op_seq();
                n.fs.arm_power_cut(
                    CrashPoint::BeforeOp { kind: Some(kind), path_glob: path_glob.clone(), after_seq },
                    model,
                );
                self.record_armed(i, true, None);
                self.count("crash points armed");
                self.note(Some(i), Kind::Crash, format!("power cut armed before the next {call} of {path_glob}"));
            }
            Fault::PowerCutAfter { call, path_glob, .. } => {
                let kind = OpKind::from_name(&call).expect("validated");
                let n = &mut self.nodes[i];
                let after_seq = n.fs.op_seq();
                let point = CrashPoint::AfterMatchingOp { kind: Some(kind), path_glob: path_glob.clone(), after_seq };
                n.fs.arm_power_cut(point, model);
                self.record_armed(i, false, None);
                self.count("crash points armed");
                self.note(Some(i), Kind::Crash, format!("power cut armed after the next {call} of {path_glob}"));
            }
            Fault::PowerCutAfterCalls { calls, .. } => {
                let n = &mut self.nodes[i];
                let seq = n.fs.op_seq() + calls;
                n.fs.arm_power_cut(CrashPoint::AfterOp { seq }, model);
                self.record_armed(i, false, None);
                self.count("crash points armed");
                self.note(Some(i), Kind::Crash, format!("power cut armed after call {seq} ({calls} calls from now)"));
            }
            Fault::WalRestart => self.wal_restart(i),
            Fault::SegmentWriterCrash => self.segment_writer_crash(i),
            Fault::Isolate { inbound, outbound, duration_ms } => self.isolate(i, inbound, outbound, duration_ms),
            Fault::SlowWal { sync_latency_us, duration_ms } => {
                self.record_now(i, Fault::SlowWal { sync_latency_us, duration_ms });
                self.count("slow disks");
                self.nodes[i].slow_wal = Some(SlowWal {
                    sync_latency_ns: sync_latency_us * 1_000,
                    until_ns: self.now_ns + duration_ms * 1_000_000,
                });
                self.note(
                    Some(i),
                    Kind::Disk,
                    format!("SLOW DISK: each WAL sync takes {sync_latency_us} us for {duration_ms} ms"),
                );
            }
        }
    }

    /// Cuts one node off from the network for `partition_ms`: both ways, or one way.
    fn isolate(&mut self, i: usize, inbound: bool, outbound: bool, duration_ms: u64) {
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
        self.schedule(duration_ms * 1_000_000, Event::Reconnect { node: i });
    }

    // ---- materialisation: the faults that took effect, as a plan ------------------------------------

    /// Records a fault that takes effect now; its index in the recorder.
    fn record_now(&mut self, i: usize, fault: Fault) -> usize {
        let order = self.recorder.next_order();
        self.recorder.push(self.due_ns(), order, i, fault)
    }

    /// When the fault being applied was due: the time its event was scheduled for (a plan entry
    /// replaying it must be queued there, so that it comes before the same events), else now.
    fn due_ns(&self) -> u64 {
        self.recorder.due_ns.unwrap_or(self.now_ns)
    }

    /// Notes when node `i`, down from now on, restarts (its `Restart` event's time).
    fn record_down(&mut self, i: usize) {
        let due = self.now_ns + self.cfg.spec.restart_after_ms * 1_000_000;
        self.recorder.node(i).restart_due_ns = due;
    }

    /// Records that a power cut was just armed on node `i` (replacing any armed one): before or after
    /// the call it will fire at, keeping an image labelled `label` (`None`: the crash model chooses).
    fn record_armed(&mut self, i: usize, before: bool, label: Option<String>) {
        let order = self.recorder.next_order();
        let at_ns = self.due_ns();
        self.recorder.node(i).armed = Some(ArmedRecord::Point { at_ns, order, before, label });
    }

    /// Records the power cut a reboot of node `i` arms (`None`: none; its boot disarms any other).
    fn record_boot_cut(&mut self, i: usize, cut: Option<&(u64, Option<CrashImage>)>) {
        let order = self.recorder.next_order();
        let r = self.recorder.node(i);
        let attach = r.crash_entry.take();
        let at_ns = r.restart_due_ns;
        r.armed = cut.map(|(after_calls, image)| ArmedRecord::Boot {
            after_calls: *after_calls,
            at_ns,
            order,
            attach,
            label: image.as_ref().map(|im| im.label.clone()),
        });
    }

    /// Records a power cut that fired on node `i`, as the exact cut it was.
    fn record_fired(&mut self, i: usize, cut: &vfs::PowerCut) {
        let call = (cut.kind.name().to_owned(), cut.path.clone(), self.now_ns);
        let model = crash_model(self.cfg.spec.crash_model);
        let image = |label: Option<String>| {
            let label = label.filter(|_| cut.replay_mismatch.is_none()).unwrap_or_else(|| model.name().to_owned());
            Some(image::from_decisions(&cut.decisions, &label))
        };
        match self.recorder.node(i).armed.take() {
            Some(ArmedRecord::Point { at_ns, order, before, label }) => {
                let at = if before { CutAt::BeforeCall(cut.seq) } else { CutAt::AfterCall(cut.seq) };
                let fault = Fault::ExactPowerCut { at, image: image(label), reboot_cut: None };
                let entry = self.recorder.push(at_ns, order, i, fault);
                self.recorder.fired.push((entry, false, call));
                self.recorder.node(i).crash_entry = Some(entry);
            }
            Some(ArmedRecord::Boot { after_calls, at_ns, order, attach, label }) => {
                let image = image(label);
                let slot = attach.and_then(|e| match &mut self.recorder.plan[e].1.fault {
                    Fault::ExactPowerCut { reboot_cut: slot @ None, .. } => Some(slot),
                    _ => None,
                });
                match slot {
                    Some(slot) => {
                        *slot = Some(RebootCut { after_calls, image });
                        let entry = attach.expect("a slot is an entry's");
                        self.recorder.fired.push((entry, true, call));
                    }
                    None => {
                        let fault = Fault::ExactPowerCut { at: CutAt::AfterCall(cut.seq), image, reboot_cut: None };
                        let entry = self.recorder.push(at_ns, order, i, fault);
                        self.recorder.fired.push((entry, false, call));
                    }
                }
                self.recorder.node(i).crash_entry = None;
            }
            None => self.count("power cuts fired without a record"),
        }
    }
}

impl World {
    /// Runs the safety phase, heals, runs the liveness phase, checks convergence.
    pub fn run(mut self) -> RunResult {
        while self.step() {}
        self.finish()
    }

    /// Whether the run goes on: within its time bound, no violation yet, not converged.
    pub fn running(&self) -> bool {
        let end_ns = (self.cfg.spec.safety_ms + self.cfg.spec.liveness_ms) * 1_000_000;
        self.now_ns < end_ns && self.checkers.first().is_none() && !self.converged
    }

    /// One step of the run — an actor step, or else the next event — and what follows it (fired power
    /// cuts, overdue obligations). `false` when the run is over; then [`World::finish`] judges it.
    pub fn step(&mut self) -> bool {
        if !self.running() {
            return false;
        }
        match self.advance() {
            Stepped::Idle => false,
            stepped => {
                self.settle(stepped);
                true
            }
        }
    }

    /// Steps an actor if one has work, or else handles the next event; nothing after it. A sweep calls
    /// this, chooses the image of the held power cut that fired, then [`World::settle`].
    pub(crate) fn advance(&mut self) -> Stepped {
        if self.step_some_actor() {
            return Stepped::Actor;
        }
        let Some((&(at, seq), _)) = self.queue.iter().next() else { return Stepped::Idle };
        let event = self.queue.remove(&(at, seq)).expect("present");
        self.now_ns = self.now_ns.max(at);
        self.mix(&[at, seq]);
        self.events += 1;
        self.handle_event(event);
        Stepped::Event
    }

    /// What follows a step: its FS lines, the power cuts that fired in it, and (after an event) the
    /// contact obligations that fell due.
    pub(crate) fn settle(&mut self, stepped: Stepped) {
        self.trace_fs_calls();
        self.check_fired_cuts();
        if stepped == Stepped::Event {
            self.check_obligations();
        }
    }

    /// Arms a held power cut ([`SimFs::arm_power_cut_held`]) right after node `i`'s call `seq`: now, or
    /// if the node is down, when it boots (after the boot's own arming, which it replaces — as a planned
    /// cut after a call of a down node's reboot does).
    pub(crate) fn arm_held_cut(&mut self, i: usize, seq: u64) {
        let n = &mut self.nodes[i];
        if n.up {
            n.fs.arm_power_cut_held(CrashPoint::AfterOp { seq });
        } else {
            n.held_boot_cut = Some(seq);
        }
    }

    /// Node `i`'s disk.
    pub(crate) fn disk_mut(&mut self, i: usize) -> &mut SimFs {
        &mut self.nodes[i].fs
    }

    /// Brings the heal forward to `at_ms` (if that is earlier than the world's and later than now): the
    /// safety phase ends then, as if the world's `safety_ms` had been `at_ms`.
    pub(crate) fn heal_at(&mut self, at_ms: u64) {
        if at_ms >= self.cfg.spec.safety_ms || at_ms * 1_000_000 <= self.now_ns {
            return;
        }
        self.cfg.spec.safety_ms = at_ms;
        self.schedule(at_ms * 1_000_000 - self.now_ns, Event::Heal);
    }

    /// Drops all but the last `keep` trace lines once there are twice as many (the trace hash is kept
    /// apart, so only the rendered trace shortens): a sweep clones its world often.
    pub(crate) fn trim_trace(&mut self, keep: usize) {
        if self.trace.len() > 2 * keep {
            self.trace.drain(..self.trace.len() - keep);
        }
    }

    /// Simulated time now.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// The world's configuration.
    pub fn config(&self) -> &WorldConfig {
        &self.cfg
    }

    /// `lagging-follower-caught-up`: a contact obligation that fell due unmet.
    fn check_obligations(&mut self) {
        if let Some((leader, follower, due_ns)) =
            self.checkers.obligations.overdue(self.now_ns).filter(|_| self.cfg.checkers)
        {
            let k = self.nodes.len();
            let l = self.nodes[leader % k].members[leader / k].name.clone();
            let f = self.nodes[follower % k].members[follower / k].name.clone();
            let waited_ms = (self.now_ns - due_ns + self.checkers.obligations.bound_ns()) / 1_000_000;
            let detail = format!("{f} pre-voted to leader {l}, which has not contacted it for {waited_ms} ms");
            self.checkers.violation("lagging-follower-caught-up", &f.0, self.now_ns, detail);
        }
    }

    /// Ends the run: unanswered operations become unknown, then linearizability, convergence, replica
    /// agreement and commit durability are judged.
    pub fn finish(mut self) -> RunResult {
        if self.checkers.first().is_none() && self.cfg.checkers {
            // Whatever never got an answer may or may not have happened.
            let unanswered = std::mem::take(&mut self.in_flight);
            for (_, f) in unanswered {
                self.record_unknown(f);
            }
            self.count_n("history operations", self.history.len() as u64);
            match linearizability::check(&self.history, 2_000_000) {
                linearizability::Verdict::Linearizable => {}
                linearizability::Verdict::NotLinearizable { key } => self.checkers.violation(
                    "linearizability",
                    "cluster",
                    self.now_ns,
                    format!(
                        "no linearization of the {} operations on key {key}",
                        self.history.iter().filter(|o| o.key == key).count()
                    ),
                ),
                linearizability::Verdict::Unknown { .. } => self.count("linearizability unknown"),
            }
        }
        if self.checkers.first().is_none() && !self.converged {
            let result = self.all_converged();
            self.checkers.check_converged(result, self.now_ns);
        }
        let judged_groups = if self.cfg.checkers { self.cfg.spec.groups } else { 0 };
        for g in 0..judged_groups {
            if self.checkers.first().is_none() {
                self.check_replicas_agree(g);
            }
            if self.checkers.first().is_none() {
                self.check_commit_durability(g);
            }
        }
        // Each violation carries the trace that led to it.
        let context: Vec<String> = self.trace.iter().rev().take(24).rev().cloned().collect();
        for v in self.checkers.violations_mut() {
            v.context = context.clone();
        }
        let outcome = match self.checkers.first() {
            None => Outcome::Pass,
            Some(v) => Outcome::Violation(v.clone()),
        };
        let (materialized, fired_cuts) = self.recorder.into_plan();
        RunResult {
            outcome,
            sim_time_ns: self.now_ns,
            events: self.events,
            trace_hash: self.hash,
            coverage: self.coverage,
            trace: self.trace,
            trail: self.trail,
            materialized,
            fired_cuts,
        }
    }

    /// What `converges` sees of each member of group `g`.
    fn member_view(&self, g: usize) -> Vec<checkers::MemberView> {
        self.nodes
            .iter()
            .map(|n| {
                n.members[g]
                    .host
                    .as_ref()
                    .filter(|_| n.up)
                    .map(|h| (h.server.last_applied(), h.server.role().clone(), h.server.current_term()))
            })
            .collect()
    }

    /// `converges` over every group (a group not created yet has nothing to converge).
    fn all_converged(&self) -> Result<(), String> {
        (0..self.cfg.spec.groups).filter(|&g| self.created[g]).try_for_each(|g| {
            checkers::converged(&self.member_view(g))
                .map_err(|why| if g == 0 { why } else { format!("group g{}: {why}", g + 1) })
        })
    }

    /// `state-machine-safety` and `log-matching` of group `g` once converged: members that applied the
    /// same index hold the same machine, and every index all members hold above the highest snapshot has
    /// the same term and payload everywhere; then the storage promises of every member.
    fn check_replicas_agree(&mut self, g: usize) {
        let machines: Vec<(String, LogIndex, &raft_core::consensus::kv::KvState)> = self
            .nodes
            .iter()
            .map(|n| &n.members[g])
            .filter_map(|m| m.host.as_ref().map(|h| (m.name.0.clone(), h.server.last_applied(), h.server.machine())))
            .collect();
        let result = checkers::state_machine_safety(&machines);
        let cluster = group_label(g);
        if self.checkers.judge("state-machine-safety", &cluster, self.now_ns, result) {
            return;
        }
        let hosts = || self.nodes.iter().filter_map(|n| n.members[g].host.as_ref());
        let from = hosts().map(|h| h.log.first_index()).max().unwrap_or(LogIndex(0));
        let to = hosts().map(|h| h.server.commit_index()).min().unwrap_or(LogIndex(0));
        let mut scratch: Vec<Vec<Envelope>> = self.nodes.iter().map(|_| Vec::new()).collect();
        let mut logs: Vec<(String, StorageLog<'_>)> = self
            .nodes
            .iter_mut()
            .zip(scratch.iter_mut())
            .filter_map(|(n, out)| {
                let name = n.members[g].name.0.clone();
                n.read_log(g, out).map(|l| (name, l))
            })
            .collect();
        let result = checkers::log_matching(&mut logs, from, to);
        drop(logs);
        if let Err((node, detail)) = result {
            self.checkers.violation("log-matching", &node, self.now_ns, detail);
            return;
        }
        self.count_n("indexes compared across members", to.0.saturating_sub(from.0.saturating_sub(1)));
        self.check_storage_promises(g);
    }

    /// `segref-files-exist`, `live-indexes-readable` and `no-log-gap` on every member at the end: each
    /// segment ref names an existing file, every index the machine still reads is readable from the log,
    /// and the log has no hole up to its last written entry.
    fn check_storage_promises(&mut self, g: usize) {
        let mut scratch = Vec::new();
        for n in self.nodes.iter_mut() {
            let m = &mut n.members[g];
            let Some(h) = m.host.as_mut() else { continue };
            let name = m.name.0.clone();
            let result = checkers::segref_files_exist(h.log.segrefs(), m.uid.as_str(), &mut n.fs);
            if self.checkers.judge("segref-files-exist", &name, self.now_ns, result) {
                return;
            }
            let live = h.server.machine().live_indexes();
            let Some(mut log) = n.read_log(g, &mut scratch) else { continue };
            let result = checkers::live_indexes_readable(&live, &mut log);
            if self.checkers.judge("live-indexes-readable", &name, self.now_ns, result) {
                return;
            }
            let result = checkers::no_log_gap(&mut log);
            if self.checkers.judge("no-log-gap", &name, self.now_ns, result) {
                return;
            }
        }
    }

    fn runnable(&self, i: usize) -> Vec<Actor> {
        let n = &self.nodes[i];
        if !n.up {
            return Vec::new();
        }
        let mut v = Vec::new();
        if (n.wal_next.is_some() || !n.wal_box.is_empty()) && n.wal_ready_ns.is_none_or(|t| self.now_ns >= t) {
            v.push(Actor::Wal);
        }
        if n.sw_next.is_some() || !n.sw_box.is_empty() {
            v.push(Actor::SegmentWriter);
        }
        if !n.worker_box.is_empty() {
            v.push(Actor::Worker);
        }
        for (g, m) in n.members.iter().enumerate() {
            if !m.server_box.is_empty() {
                v.push(Actor::Server(g));
            }
        }
        v
    }

    fn step_some_actor(&mut self) -> bool {
        // Actors only run while no event is due before the end of the step.
        let cost = self.cfg.spec.step_cost_us * 1_000;
        if self.queue.keys().next().is_some_and(|&(at, _)| at <= self.now_ns) {
            return false;
        }
        let candidates: Vec<(usize, Actor)> =
            (0..self.nodes.len()).flat_map(|i| self.runnable(i).into_iter().map(move |a| (i, a))).collect();
        if candidates.is_empty() {
            return false;
        }
        let (i, actor) = candidates[below(&mut self.sched_rng, candidates.len() as u64) as usize];
        self.now_ns += cost;
        self.mix(&[self.now_ns, i as u64, actor.code()]);
        self.events += 1;
        self.step_actor(i, actor);
        true
    }

    fn step_actor(&mut self, i: usize, actor: Actor) {
        let mut out = Vec::new();
        let n = &mut self.nodes[i];
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
        let booting = !matches!(self.nodes[i].wal.phase(), raft_core::storage::wal::WalPhase::Running);
        self.route(i, out);
        if let Err(e) = result {
            let what = match actor {
                Actor::Wal => "wal",
                Actor::SegmentWriter => "segment writer",
                Actor::Worker => "worker",
                Actor::Server(_) => "server",
            };
            self.actor_failed(i, what, e, booting);
        }
    }

    fn route(&mut self, i: usize, out: Vec<Envelope>) {
        for env in out {
            let n = &mut self.nodes[i];
            match env {
                Envelope::Wal(m) => n.wal_box.push_back(m),
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
                }
            }
        }
    }

    fn step_server(&mut self, i: usize, g: usize, work: ServerWork) {
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
                            n.members[g].host = Some(Host { server, log, process });
                            self.route(i, out);
                            self.after_recovery(i, g);
                            self.run_effects(i, g, fx);
                        }
                        Err(e) => {
                            self.route(i, out);
                            self.actor_failed(i, "server start", e, true);
                        }
                    }
                }
                Ok(Err(still)) => {
                    n.members[g].starting = Some((still, process));
                    self.route(i, out);
                }
                Err(e) => {
                    self.route(i, out);
                    self.actor_failed(i, "server start", e, true);
                }
            }
            return;
        }
        let Some(host) = n.members[g].host.as_mut() else { return };
        let mut notes: Vec<String> = Vec::new();
        let result: Result<Vec<Effect>, StorageError> = (|| {
            let input = match work {
                ServerWork::Log(event) => {
                    let unlinked = host.log.handle_event(&event, &mut n.shared, &mut n.fs, &mut out)?;
                    if let LogEvent::SnapshotWritten { meta, live_indexes, .. } = &event {
                        notes.push(format!("snapshot {} written (live {live_indexes})", meta.index));
                    }
                    if !unlinked.is_empty() {
                        notes.push(format!("unlinked segments {unlinked:?}"));
                    }
                    match event {
                        LogEvent::Written { .. } => Input::Written,
                        LogEvent::SnapshotWritten { meta, .. } => Input::SnapshotWritten { index: meta.index },
                        LogEvent::Segments { .. } | LogEvent::ResendFrom { .. } => return Ok(Vec::new()),
                    }
                }
                ServerWork::Input(input) => input,
            };
            let mut slog = StorageLog { log: &mut host.log, shared: &mut n.shared, fs: &mut n.fs, out: &mut out };
            host.server.handle(now_ms, input, &mut slog)
        })();
        for line in notes {
            self.note_member(i, g, Kind::Snapshot, line);
        }
        self.route(i, out);
        match result {
            Ok(fx) => self.run_effects(i, g, fx),
            Err(e) => self.actor_failed(i, "server", e, false),
        }
        self.observe(i, g);
    }

    fn observe(&mut self, i: usize, g: usize) {
        let Some(host) = self.nodes[i].members[g].host.as_ref() else { return };
        let (role, term, commit) = (host.server.role().clone(), host.server.current_term(), host.server.commit_index());
        let receiving = host.server.receiving_snapshot().is_some();
        let written = host.log.last_written();
        let m = &mut self.nodes[i].members[g];
        match (receiving, m.written_before_receive) {
            (true, None) => m.written_before_receive = Some(written),
            (false, Some(_)) => m.written_before_receive = None,
            _ => {}
        }
        let key = self.member_key(i, g);
        self.mix(&[key as u64, term.0, commit.0]);
        if role != Role::Leader || !self.cfg.checkers {
            self.checkers.obligations.forget_leader(key);
            return;
        }
        let name = self.nodes[i].members[g].name.0.clone();
        let new_leader = self.checkers.is_new_leader(g, term.0, &name);
        if new_leader {
            self.count("elections won");
            self.note_member(i, g, Kind::Leader, format!("term {term} (commit {commit})"));
        }
        if let Some(v) = self.checkers.leader(g, term.0, &name, self.now_ns) {
            self.note(Some(i), Kind::Violation, format!("{}: {}", v.checker, v.detail));
            return;
        }
        let mut scratch = Vec::new();
        let n = &mut self.nodes[i];
        // A power cut fired during this step: the node is down; its disk is read again after boot.
        if n.fs.is_powered_off() {
            return;
        }
        let Some(mut log) = n.read_log(g, &mut scratch) else { return };
        let completeness = match self.checkers.highest_committed(g) {
            Some(committed) if new_leader => Some(checkers::leader_completeness(&mut log, committed)),
            _ => None,
        };
        let advanced = if self.checkers.highest_committed(g).is_none_or(|(c, _)| commit > c) {
            Some(log.term_at(commit))
        } else {
            None
        };
        // The checks' own reads may have fired a power cut armed during recovery: the node is down.
        if n.fs.is_powered_off() {
            return;
        }
        if let Some(result) = completeness
            && self.checkers.judge("leader-completeness", &name, self.now_ns, result)
        {
            return;
        }
        match advanced {
            Some(Ok(Some(t))) => self.checkers.commit_advanced(g, commit, t),
            Some(Err(e)) => {
                let detail = format!("term at commit {commit}: {e}");
                self.checkers.violation("storage-error", &name, self.now_ns, detail);
            }
            Some(Ok(None)) | None => {}
        }
    }

    fn run_effects(&mut self, i: usize, g: usize, fx: Vec<Effect>) {
        for e in fx {
            if !self.nodes[i].up {
                return;
            }
            self.run_effect(i, g, e);
        }
    }

    fn timer_event(&mut self, i: usize, g: usize, timer: Timer, after_ms: Option<u64>) {
        let n = &mut self.nodes[i];
        let generation = n.members[g].timer_generation.entry(timer.clone()).or_default();
        *generation += 1;
        let (generation, incarnation) = (*generation, n.incarnation);
        if let Some(ms) = after_ms {
            self.schedule(ms * 1_000_000, Event::Timer { node: i, group: g, incarnation, timer, generation });
        }
    }

    /// Whether a network fault of `percent` strikes this message (no draw when it is off, so that worlds
    /// without it keep their random streams).
    fn net_fault(&mut self, percent: u32) -> bool {
        self.faults_on && percent > 0 && below(&mut self.net_rng, 100) < u64::from(percent)
    }

    /// Group `g`'s member on node `from` sends `msg` to member `to` (of the same group).
    fn send(&mut self, from: usize, g: usize, to: &ServerId, msg: Message) {
        let Some((j, group)) = self.member_of(to) else { return };
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
            self.seq += 1;
            let copy = Event::Deliver { to: j, group, from: name.clone(), msg: msg.clone() };
            self.queue.insert((at, self.seq), copy);
        }
        self.seq += 1;
        self.queue.insert((at, self.seq), Event::Deliver { to: j, group, from: name, msg });
    }

    fn run_effect(&mut self, i: usize, g: usize, e: Effect) {
        match e {
            Effect::Send { to, msg } => self.send(i, g, &to, msg),
            Effect::SetTimer { timer, after_ms } => self.timer_event(i, g, timer, Some(after_ms)),
            Effect::CancelTimer(timer) => self.timer_event(i, g, timer, None),
            Effect::PersistTermAndVote { term, voted_for } => {
                let n = &mut self.nodes[i];
                let uid = n.members[g].uid.clone();
                if let Err(e) = n.meta.store_term_and_vote_sync(&mut n.fs, "", &uid, term, voted_for.map(|v| v.0)) {
                    self.actor_failed(i, "meta", e, false);
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
            Effect::AcceptSnapshotChunk { meta, chunk, last, data, leader } => {
                self.accept_chunk(i, g, meta, chunk, last, data, leader)
            }
            Effect::AbortSnapshotAccept => {
                let n = &mut self.nodes[i];
                if let Some(a) = n.members[g].accept.take()
                    && let Err(e) = a.abort(&mut n.fs)
                {
                    self.actor_failed(i, "snapshot abort", e, false);
                }
            }
        }
    }

    /// Starts a sender with the current snapshot (the one `StartSnapshotSender` names, or a newer one).
    fn start_sender(&mut self, i: usize, g: usize, peer: ServerId) {
        self.count("snapshot transfers");
        let n = &mut self.nodes[i];
        let m = &mut n.members[g];
        let Some(host) = m.host.as_mut() else { return };
        let term = host.server.current_term();
        let prepared: Result<_, StorageError> = (|| {
            let meta = host.log.snapshot().cloned().expect("a sender implies a snapshot");
            let state = snapshot::read_snapshot_state(&mut n.fs, m.uid.as_str(), &meta)?;
            let mut live = Vec::new();
            for li in host.log.live_indexes().clone().iter() {
                if let Some((t, p)) = host.log.fetch(li, &n.shared, &mut n.fs)? {
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
                    chunk_bytes: 4096,
                    chunk_timeout_ms: 2_000,
                };
                let (sender, fx) = SnapshotSender::start(cfg, meta, &state, live);
                m.senders.insert(peer.clone(), (sender, 0));
                self.run_sender_effects(i, g, &peer, fx);
            }
            Err(e) => self.actor_failed(i, "snapshot sender", e, false),
        }
    }

    fn run_sender_effects(&mut self, i: usize, g: usize, peer: &ServerId, fx: Vec<SenderEffect>) {
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
    fn accept_chunk(
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
        let result: Result<Option<(snapshot::SnapshotMeta, Vec<u8>)>, StorageError> = (|| {
            if chunk == 0 {
                if let Some(old) = m.accept.take() {
                    old.abort(&mut n.fs)?;
                }
                m.accept = Some(SnapshotAccept::begin(&mut n.fs, uid.as_str(), &meta)?);
            }
            let Some(mut accept) = m.accept.take() else { return Ok(None) };
            if !last {
                accept.chunk(&mut n.fs, &data)?;
                m.accept = Some(accept);
                return Ok(None);
            }
            let (meta, live) = accept.complete(&mut n.fs, &data, &uid, &KvMachine, &bugs, &mut n.shared)?;
            let state = snapshot::read_snapshot_state(&mut n.fs, uid.as_str(), &meta)?;
            if let Some(h) = m.host.as_mut() {
                h.log.install_snapshot(&meta, &live, &mut n.shared, &mut n.fs)?;
            }
            Ok(Some((meta, state)))
        })();
        match result {
            Ok(Some((meta, state))) => {
                self.count("snapshots installed");
                self.note_member(i, g, Kind::Snapshot, format!("installed snapshot {} from {leader}", meta.index));
                let installed = Input::SnapshotInstalled { meta, state, leader };
                self.nodes[i].members[g].server_box.push_back(ServerWork::Input(installed));
            }
            Ok(None) => {}
            Err(e) => self.actor_failed(i, "snapshot accept", e, false),
        }
    }

    // ---- events ------------------------------------------------------------------------------------

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Deliver { to, group, from, msg } => {
                let from_member = self.member_of(&from);
                let from_node = from_member.map(|(j, _)| j);
                let dropped = !self.nodes[to].up || self.cut.is_some_and(|c| c.drops(from_node, to));
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
                {
                    let (l, f) = (self.member_key(to, group), self.member_key(f, group));
                    self.checkers.obligations.pre_vote_delivered(l, f, self.now_ns);
                }
                let m = &mut self.nodes[to].members[group];
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
            Event::Timer { node, group, incarnation, timer, generation } => {
                let n = &mut self.nodes[node];
                let m = &mut n.members[group];
                if !n.up || n.incarnation != incarnation || m.timer_generation.get(&timer) != Some(&generation) {
                    return;
                }
                m.server_box.push_back(ServerWork::Input(Input::Timer(timer)));
            }
            Event::SenderTimer { node, group, incarnation, peer, generation } => {
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
            Event::CreateGroup { group } => {
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
            Event::ClientOp => {
                // The workload stops a while after the heal (once something has completed after it), so
                // that members can converge.
                let stop = (self.cfg.spec.safety_ms + self.cfg.spec.liveness_workload_ms) * 1_000_000;
                if self.now_ns < stop || self.checkers.committed_in_liveness() == 0 {
                    self.client_op();
                    let interval = self.cfg.spec.client_interval_ms * 1_000_000;
                    self.schedule(interval, Event::ClientOp);
                }
            }
            Event::Fault => {
                if !self.faults_on {
                    return;
                }
                // Faults stay within what Raft claims to survive: never a second node out at a time.
                let all_in = self.nodes.iter().all(|n| n.up) && self.cut.is_none();
                if all_in {
                    let victim = below(&mut self.fault_rng, self.nodes.len() as u64) as usize;
                    let c = &self.cfg.spec;
                    let weights = [
                        c.power_loss_weight,
                        c.vm_crash_weight,
                        c.wal_restart_weight,
                        c.partition_weight,
                        c.crash_point_weight,
                        c.one_way_partition_weight,
                        c.segment_writer_crash_weight,
                    ];
                    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
                    let mut pick = below(&mut self.fault_rng, total.max(1));
                    let mut kind = 0;
                    for (k, w) in weights.iter().enumerate() {
                        if pick < u64::from(*w) {
                            kind = k;
                            break;
                        }
                        pick -= u64::from(*w);
                    }
                    if total > 0 {
                        let first = self.cfg.spec.fault_every_ms * 1_000_000;
                        self.recorder.due_ns = Some(self.recorder.next_fault_due_ns.unwrap_or(first));
                        match kind {
                            0 => self.power_loss(victim, None),
                            1 => self.vm_crash(victim),
                            2 => self.wal_restart(victim),
                            3 => self.isolate(victim, true, true, self.cfg.spec.partition_ms),
                            4 => self.arm_crash_point(victim),
                            5 => {
                                let inbound = below(&mut self.fault_rng, 2) == 0;
                                self.isolate(victim, inbound, !inbound, self.cfg.spec.partition_ms)
                            }
                            _ => self.segment_writer_crash(victim),
                        }
                        self.recorder.due_ns = None;
                    }
                }
                let every = self.cfg.spec.fault_every_ms * 1_000_000;
                let jitter = below(&mut self.fault_rng, every.max(1));
                self.recorder.next_fault_due_ns = Some(self.now_ns + every / 2 + jitter);
                self.schedule(every / 2 + jitter, Event::Fault);
            }
            Event::Reconnect { node } => {
                if self.cut.is_some_and(|c| c.node == node) {
                    self.cut = None;
                    self.note(Some(node), Kind::Net, "reconnected".into());
                }
            }
            Event::Restart { node } => {
                // The heal may have booted it already.
                if !self.nodes[node].up && self.checkers.first().is_none() {
                    let pct = u64::from(self.cfg.spec.recovery_crash_percent);
                    let planned = self.nodes[node].next_boot_cut.take().filter(|_| self.faults_on);
                    let cut = if planned.is_some() {
                        planned
                    } else if self.faults_on && pct > 0 && below(&mut self.fault_rng, 100) < pct {
                        Some((1 + below(&mut self.fault_rng, 60), None))
                    } else {
                        None
                    };
                    if cut.is_some() {
                        self.count("recovery crashes armed");
                    }
                    self.record_boot_cut(node, cut.as_ref());
                    self.boot(node, cut);
                    self.count("restarts");
                }
            }
            Event::AutoSave { node, incarnation } => {
                let n = &mut self.nodes[node];
                if !n.up || n.incarnation != incarnation {
                    return;
                }
                let r = n.names.flush(&mut n.fs, "").and_then(|()| n.meta.flush(&mut n.fs, ""));
                if let Err(e) = r {
                    self.actor_failed(node, "auto-save", e, false);
                    return;
                }
                self.schedule(500_000_000, Event::AutoSave { node, incarnation });
            }
            Event::Planned { index } => {
                if self.faults_on {
                    self.planned_fault(index);
                }
            }
            Event::WalReady => {}
            Event::Heal => {
                if !self.faults_on {
                    return; // healed early already (`World::heal_at`)
                }
                // Entries planned for the heal's very instant come first, as a random fault drawn for it
                // does (its event is older): how a materialised plan replays one.
                let heal_ns = self.cfg.spec.safety_ms * 1_000_000;
                let due: Vec<(u64, u64)> = self
                    .queue
                    .iter()
                    .filter(|(k, e)| k.0 == heal_ns && matches!(e, Event::Planned { .. }))
                    .map(|(k, _)| *k)
                    .collect();
                for key in due {
                    if let Some(Event::Planned { index }) = self.queue.remove(&key) {
                        self.planned_fault(index);
                        self.check_fired_cuts();
                    }
                }
                self.faults_on = false;
                self.cut = None;
                for n in self.nodes.iter_mut() {
                    n.fs.disarm_power_cut();
                    n.slow_wal = None;
                }
                self.note(None, Kind::Phase, "HEAL: faults off, liveness phase".into());
                for i in 0..self.nodes.len() {
                    if !self.nodes[i].up && self.checkers.first().is_none() {
                        self.boot(i, None);
                    }
                }
                self.checkers.liveness_started(self.now_ns);
                self.schedule(self.cfg.spec.liveness_workload_ms * 1_000_000, Event::ConvergeCheck);
            }
            Event::ClientTimeout { client, request } => {
                if self.clients[client].request == Some(request)
                    && let Some(f) = self.in_flight.remove(&request)
                {
                    self.count("client timeouts");
                    self.record_unknown(f);
                    self.clients[client] = Client { target: None, request: None };
                }
            }
            Event::ClientRetry { client, request } => {
                if self.clients[client].request == Some(request) && self.in_flight.contains_key(&request) {
                    self.client_send(client, request);
                }
            }
            Event::ConvergeCheck => {
                let workload_done = self.in_flight.is_empty() && self.checkers.committed_in_liveness() > 0;
                if workload_done && self.all_converged().is_ok() {
                    self.converged = true;
                    self.note(None, Kind::Phase, "CONVERGED".into());
                } else {
                    self.schedule(100_000_000, Event::ConvergeCheck);
                }
            }
        }
    }

    // ---- workload ----------------------------------------------------------------------------------

    /// Whether group `g`'s member on node `i` serves (its node up, its server running).
    fn serving(&self, i: usize, g: usize) -> bool {
        self.nodes[i].up && self.nodes[i].members[g].host.is_some()
    }

    /// Where an operation for group `g` goes without a better hint: the member that believes it leads,
    /// else any serving member (which redirects); `None` when none serves.
    fn pick_target(&mut self, g: usize) -> Option<usize> {
        let up: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.serving(i, g)).collect();
        if up.is_empty() {
            return None;
        }
        let leader = up
            .iter()
            .copied()
            .find(|&i| self.nodes[i].members[g].host.as_ref().is_some_and(|h| *h.server.role() == Role::Leader));
        // The draw happens even when a leader is known: the worlds swarm found bugs in were drawn so.
        let any = up[below(&mut self.client_rng, up.len() as u64) as usize];
        Some(leader.unwrap_or(any))
    }

    /// A new operation: from the open-loop generator, or from an idle closed-loop client.
    fn client_op(&mut self) {
        let closed_loop = !self.clients.is_empty();
        let client = if closed_loop {
            let idle: Vec<usize> = (0..self.clients.len()).filter(|&c| self.clients[c].request.is_none()).collect();
            if idle.is_empty() {
                self.count("client operations skipped (every client busy)");
                return;
            }
            Some(idle)
        } else {
            None
        };
        // A closed-loop client keeps to its group; the open-loop generator picks one (no draw with one
        // group, so that single-group worlds keep their random streams).
        let groups: Vec<usize> = (0..self.cfg.spec.groups).filter(|&g| self.created[g]).collect();
        let open_loop_group =
            if groups.len() > 1 { groups[below(&mut self.client_rng, groups.len() as u64) as usize] } else { 0 };
        let serving_somewhere = |w: &World, g: usize| (0..w.nodes.len()).any(|i| w.serving(i, g));
        let (client, group) = match client {
            Some(idle) => {
                let idle: Vec<usize> = idle
                    .into_iter()
                    .filter(|&c| {
                        self.created[c % self.cfg.spec.groups] && serving_somewhere(self, c % self.cfg.spec.groups)
                    })
                    .collect();
                if idle.is_empty() {
                    return;
                }
                let c = idle[below(&mut self.client_rng, idle.len() as u64) as usize];
                (Some(c), c % self.cfg.spec.groups)
            }
            None => (None, open_loop_group),
        };
        // The open-loop generator asks the node that believes it leads, else anyone (who redirects).
        let target = if closed_loop {
            0
        } else {
            match self.pick_target(group) {
                Some(t) => t,
                None => return,
            }
        };
        let k = below(&mut self.client_rng, u64::from(self.cfg.spec.keys.max(1)));
        let key = if group == 0 { format!("k{k}") } else { format!("g{}/k{k}", group + 1) };
        self.client_seq += 1;
        let value = self.client_seq.to_be_bytes().to_vec();
        let (command, op) = match below(&mut self.client_rng, 3) {
            0 => (KvCommand::Get { key: key.clone() }, linearizability::KvOp::Get),
            1 => (KvCommand::Put { key: key.clone(), value: value.clone() }, linearizability::KvOp::Put(value)),
            _ => (
                KvCommand::Cas { key: key.clone(), expected: None, new: value.clone() },
                linearizability::KvOp::Cas { expected: None, new: value },
            ),
        };
        let request = self.client_seq;
        let f = InFlight { group, key, op, invoke_ns: self.now_ns, command: command.clone() };
        self.in_flight.insert(request, f);
        self.checkers.invoke(request, self.now_ns);
        self.count("client operations");
        match client {
            Some(c) => {
                self.clients[c].request = Some(request);
                self.client_send(c, request);
                let timeout = self.cfg.spec.client_timeout_ms * 1_000_000;
                self.schedule(timeout, Event::ClientTimeout { client: c, request });
            }
            None => self.nodes[target].members[group].server_box.push_back(ServerWork::Input(Input::Command {
                client: ClientId(1),
                request,
                command,
            })),
        }
    }

    /// A closed-loop client sends its outstanding operation: to the leader it last heard of if that member
    /// is serving, else to a member that believes it leads, else to any serving member.
    fn client_send(&mut self, c: usize, request: u64) {
        let g = self.in_flight[&request].group;
        let target = match self.clients[c].target.filter(|&t| self.serving(t, g)) {
            Some(t) => t,
            None => match self.pick_target(g) {
                Some(t) => t,
                None => return, // the timeout will give up on it
            },
        };
        self.clients[c].target = Some(target);
        let command = self.in_flight[&request].command.clone();
        let client = ClientId(c as u64 + 2);
        let input = Input::Command { client, request, command };
        self.nodes[target].members[g].server_box.push_back(ServerWork::Input(input));
    }

    /// A server answered `request`: with a result, or with a redirect (the command was not appended;
    /// `hint` is the leader it knows). The first answer counts (a new leader may answer again for an
    /// inherited entry).
    fn client_done(&mut self, client: ClientId, request: u64, result: Option<KvResult>, hint: Option<usize>) {
        let closed = (client.0 >= 2).then(|| (client.0 - 2) as usize);
        if !self.in_flight.contains_key(&request) {
            return;
        }
        let Some(result) = result else {
            match closed {
                // A closed-loop client follows the redirect a moment later.
                Some(c) if self.clients[c].request == Some(request) => {
                    self.count("client redirects");
                    self.clients[c].target = hint;
                    self.schedule(10_000_000, Event::ClientRetry { client: c, request });
                }
                // The open-loop generator drops it.
                _ => {
                    self.in_flight.remove(&request);
                }
            }
            return;
        };
        let f = self.in_flight.remove(&request).expect("checked");
        if let Some(c) = closed
            && self.clients[c].request == Some(request)
        {
            self.clients[c].request = None;
        }
        self.count("client operations ok");
        self.checkers.committed(request, self.now_ns);
        let outcome = match result {
            KvResult::Ok => linearizability::KvOutcome::Ok,
            KvResult::Value(v) => linearizability::KvOutcome::Value(v),
            KvResult::Cas { applied, previous } => linearizability::KvOutcome::Cas { applied, previous },
        };
        let (key, op, invoke_ns) = (f.key, f.op, f.invoke_ns);
        self.history.push(linearizability::Operation { key, op, outcome, invoke_ns, return_ns: self.now_ns });
    }

    /// An operation whose outcome nobody will learn: it may take effect at any time after its invocation.
    fn record_unknown(&mut self, f: InFlight) {
        let outcome = linearizability::KvOutcome::Unknown;
        let op =
            linearizability::Operation { key: f.key, op: f.op, outcome, invoke_ns: f.invoke_ns, return_ns: u64::MAX };
        self.history.push(op);
    }
}

/// Arms a power cut at `point` that keeps `image`, or lets `model` choose.
fn arm(fs: &mut SimFs, point: CrashPoint, model: vfs::CrashModel, image: Option<&CrashImage>) {
    match image {
        Some(image) => fs.arm_power_cut_replay(point, image::to_decisions(image, model)),
        None => fs.arm_power_cut(point, model),
    }
}

/// The `vfs` crash model a scenario's model names.
pub fn crash_model(model: scenarios::CrashModel) -> vfs::CrashModel {
    match model {
        scenarios::CrashModel::NoLoss => vfs::CrashModel::NoLoss,
        scenarios::CrashModel::LoseUnsynced => vfs::CrashModel::LoseUnsynced,
        scenarios::CrashModel::Pessimistic => vfs::CrashModel::Pessimistic,
        scenarios::CrashModel::Ext4Ordered => vfs::CrashModel::Ext4Ordered,
        scenarios::CrashModel::Corrupting => vfs::CrashModel::Corrupting,
    }
}

/// What a cluster-wide finding of group `g` names: `cluster` for the first group, `cluster g2`, … else.
fn group_label(g: usize) -> String {
    if g == 0 { "cluster".into() } else { format!("cluster g{}", g + 1) }
}

/// The WAL settings of every node.
fn wal_config(cfg: &WorldConfig) -> WalConfig {
    WalConfig {
        dir: "wal".into(),
        max_size_bytes: cfg.spec.wal_max_size_bytes,
        first_file_max_size_bytes: cfg.spec.wal_max_size_bytes,
        max_entries: None,
        sync_method: SyncMethod::Datasync,
        compute_checksums: true,
        bugs: cfg.bugs.clone(),
    }
}

/// The segment writer settings of every node.
fn segment_writer_config(cfg: &WorldConfig) -> SegmentWriterConfig {
    SegmentWriterConfig {
        data_dir: String::new(),
        segment: SegmentConfig {
            max_count: cfg.spec.segment_max_count,
            max_size_bytes: 64 << 20,
            max_pending: 1024,
            compute_checksums: true,
            index_parse: if cfg.bugs.has(raft_core::Bug::SegmentIndexUnchecked) {
                raft_core::storage::segment::IndexParse::Ra
            } else {
                raft_core::storage::segment::IndexParse::Contiguous
            },
        },
        delete_keys_per_step: 8,
        bugs: cfg.bugs.clone(),
    }
}

/// Coverage marks ("sometimes" assertions): things a suite of runs must have made happen at least
/// once, or it has not tested what it claims to. A suite reports the marks it missed.
pub const COVERAGE_MARKS: [&str; 10] = [
    "client operations ok",
    "elections won",
    "power losses with unsynced state",
    "crash points fired",
    "crashes during recovery",
    "wal files replayed at boot",
    "segment flushes during recovery",
    "snapshots installed",
    "snapshot sender failures",
    "restarts",
];

/// The coverage marks `coverage` (summed over a suite) never hit.
pub fn missed_marks(coverage: &BTreeMap<&'static str, u64>) -> Vec<&'static str> {
    COVERAGE_MARKS.into_iter().filter(|m| coverage.get(m).copied().unwrap_or(0) == 0).collect()
}

/// Runs one world and returns its result.
pub fn run(cfg: WorldConfig) -> RunResult {
    World::new(cfg).run()
}

/// Where two runs of the same configuration first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Index of the first step or event whose hash differs.
    pub event: usize,
    /// The last trace line of each run up to that point.
    pub last_lines: (Option<String>, Option<String>),
}

/// Runs `cfg` twice; `Ok(trace hash)` when both runs are identical, else where they first diverge.
pub fn check_determinism(cfg: &WorldConfig) -> Result<u64, Divergence> {
    let cfg = WorldConfig { record_trail: true, ..cfg.clone() };
    let a = run(cfg.clone());
    let b = run(cfg);
    if a.trail == b.trail && a.trace == b.trace {
        return Ok(a.trace_hash);
    }
    let event = a.trail.iter().zip(&b.trail).position(|(x, y)| x != y).unwrap_or(a.trail.len().min(b.trail.len()));
    let first_diff_line = a.trace.iter().zip(&b.trace).position(|(x, y)| x != y).unwrap_or(0);
    Err(Divergence {
        event,
        last_lines: (a.trace.get(first_diff_line).cloned(), b.trace.get(first_diff_line).cloned()),
    })
}
