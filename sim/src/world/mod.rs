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
//!
//! The world's concerns live in one module each; this module keeps `World` itself, the event queue and
//! the step loop (one step: an actor step, or else the next event, then what follows it):
//! - `config` — [`WorldConfig`] and its validation; `outcome` — [`RunResult`], [`Outcome`], coverage marks;
//! - `node` — nodes and members, the boot path, stepping the storage actors and routing their output;
//! - `server` — a member's consensus server, its effects, timers, snapshot sender and accept;
//! - `network` — send, deliver, isolations; `client` — the workload and its history;
//! - `faults` — crashes, restarts, crash points, planned faults, slow disks, the heal;
//! - `record` — the faults that took effect, as an explicit plan;
//! - `membership` — membership changes asked of a group's leader, and a removed leader's stop;
//! - `obligations` — when each checker runs and what it is shown.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raft_core::consensus::server::{Message, ServerId, Timer};
use raft_core::storage::durable_files::{MetaStore, NamesStore};
use raft_core::storage::segment_writer::SegmentWriter;
use raft_core::storage::shared::NodeShared;
use raft_core::storage::wal::Wal;
use rand_chacha::ChaCha8Rng;
use scenarios::rng::{below, stream};
use vfs::{CrashPoint, SimFs, SimFsConfig};

use scenarios::{CutAt, Fault, PlannedFault};

use crate::checkers::Checkers;
use crate::linearizability;
use crate::trace::{self, Kind};

mod bounds;
mod client;
mod config;
mod diagnosis;
mod fates;
mod faults;
pub(crate) use config::survives_a_rotted_node;
pub(crate) use faults::LISTING_SITES;
mod formation;
mod media;
mod membership;
mod network;
mod node;
mod obligations;
mod outcome;
mod record;
mod server;
mod supervision;
mod timeline;

pub use bounds::{KnobRange, knob_ranges, knob_table};
pub use config::{WorldConfig, crash_model};
pub use outcome::{COVERAGE_MARKS, FiredCut, Outcome, RunResult, missed_marks};
pub use record::MAX_RECORDED_FAULTS;
pub use timeline::{Arrow, Fate, Lane, LaneRole, LineMeta, MAX_MESSAGES, MAX_STATES, Span, StateSample, Timeline};

use client::{Client, InFlight};
use config::{segment_writer_config, wal_config};
use network::Cut;
use node::{Actor, Member, Node, member_name};
use record::Recorder;
use supervision::Supervisors;

#[derive(Debug, Clone)]
enum Event {
    Deliver {
        to: usize,
        group: usize,
        from: ServerId,
        msg: Message,
        /// Its arrow in the timeline (`timeline::NO_ARROW` when none is recorded).
        arrow: timeline::ArrowId,
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
    /// Ra's `start_cluster` timeout after group `group`'s election was triggered (`formation.rs`).
    FormationCheck {
        group: usize,
    },
    /// Liveness phase: has the cluster converged yet?
    ConvergeCheck,
    /// A slow WAL sync's time has passed: its WAL process may step again (nothing else to do).
    WalReady,
    /// A sticky disk error is over (`rule`), or a full disk has room again (`None`).
    DiskRecovered {
        node: usize,
        rule: Option<faults::DiskRule>,
    },
    /// Every server of the node ticks (Ra's `tick_timeout`, each second): its log resends what a
    /// restarted WAL lost.
    LogTick {
        node: usize,
        incarnation: u64,
    },
    /// The log supervisor's restart reaches the WAL: it registers and recovers (`log_restart_ms`).
    WalRegisters {
        node: usize,
        incarnation: u64,
        at_ns: u64,
    },
    /// A new server's init has waited 60 s for its first entry (`process` is the start's).
    StartTimeout {
        node: usize,
        group: usize,
        incarnation: u64,
        process: u64,
    },
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
    /// The scheduler's scratch list of runnable actors (kept to reuse its allocation).
    candidates: Vec<(usize, Actor)>,
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
    /// Open-loop operations still unanswered that the history recorded as unknown (`settle_history`):
    /// an answer still counts for the run.
    given_up: BTreeSet<u64>,
    /// Given-up operations whose commands can never commit: counted, not kept (no answer will come; while
    /// any exist the workload is not done, as while they were in flight).
    given_up_dead: u64,
    /// Per key, the value the workload last asked to write (what a compare-and-set may expect; kept only
    /// when `cas_expected_percent` is above 0).
    last_value_asked: BTreeMap<String, Vec<u8>>,
    /// Operations the history recorded as unknown (given up on, or a closed-loop client's timeout) whose
    /// commands may still commit: request → (key, call), until `fates` decides.
    unknown_followed: BTreeMap<u64, (String, linearizability::Call)>,
    /// Open-loop operations in flight whose commands can never commit (`fates`): when given up on, they
    /// are not recorded.
    dead_in_flight: BTreeSet<u64>,
    /// What became of unanswered commands.
    fates: fates::Fates,
    /// The closed-loop clients (none for the open-loop generator); client `c` uses group `c % groups`.
    clients: Vec<Client>,
    /// Which groups exist yet.
    created: Vec<bool>,
    /// Per (group, node), the last membership change asked of a leader for that member, and when it was
    /// last asked: the configuration the operator wants, which `converges` holds the cluster to (the
    /// operator asks again, after the heal, until it is in force).
    membership_wanted: BTreeMap<(usize, usize), (scenarios::MemberChange, u64)>,
    /// Each group's cluster formation (Ra's `start_cluster` trigger).
    formation: Vec<formation::Formation>,
    /// The completed history (outcomes known or, at the end, unknown), judged in windows as it grows
    /// (`linearizability::windows`): what is held is the operations since each key's last cut.
    history: linearizability::windows::Windows,
    /// Every operation, when the config asks for the history itself (`WorldConfig::keep_history`).
    whole_history: Option<Vec<linearizability::Op>>,
    faults_on: bool,
    checkers: Checkers,
    /// The liveness phase saw the cluster converge: the run is over.
    converged: bool,
    events: u64,
    hash: u64,
    trace: Vec<String>,
    /// Trace lines dropped from the front (`TRACE_KEEP_LINES`).
    trace_dropped: u64,
    trail: Vec<u64>,
    coverage: BTreeMap<&'static str, u64>,
    /// The faults that took effect, for `RunResult::materialized`.
    recorder: Recorder,
    /// How many checkers are reading now (`hold_disk_errors`): injected disk errors are held off.
    judging: u32,
    /// What the run records for drawing it, when the config asks (`WorldConfig::record_timeline`).
    timeline: Option<Box<Timeline>>,
}

impl World {
    /// A world whose nodes are about to boot for the first time.
    pub fn new(cfg: WorldConfig) -> World {
        let disks = (0..cfg.spec.nodes)
            .map(|i| {
                SimFs::new(SimFsConfig {
                    seed: cfg.spec.seed ^ (0xF5 + i as u64),
                    sector_size: 512,
                    capacity_bytes: faults::DISK_CAPACITY_BYTES,
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
                // A failed directory fsync aborts the journal: read-only until the machine restarts.
                fs.shut_down_on_dir_sync_failure(true);
                fs
            })
            .enumerate()
            .map(|(i, fs)| Node {
                name: format!("n{}", i + 1),
                fs,
                written: BTreeMap::new(),
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
                unlinks_failed: BTreeSet::new(),
                next_process: 1,
                booting: false,
                handles_seen_at_seq: 0,
                process_failed: false,
                dead_handles: BTreeSet::new(),
                caught_rot: false,
                next_boot_cut: None,
                held_boot_cut: None,
                start_cut: None,
                slow_wal: None,
                wal_ready_ns: None,
                sup: Supervisors::default(),
                next_wal_process: 0,
                wal_registers_at_ns: None,
                node_timers_armed: false,
            })
            .collect();
        let mut w = World {
            now_ns: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            candidates: Vec::new(),
            sched_rng: stream(cfg.spec.seed, 1),
            net_rng: stream(cfg.spec.seed, 2),
            fault_rng: stream(cfg.spec.seed, 3),
            client_rng: stream(cfg.spec.seed, 4),
            link_clock: BTreeMap::new(),
            client_seq: 0,
            cut: None,
            in_flight: BTreeMap::new(),
            given_up: BTreeSet::new(),
            given_up_dead: 0,
            last_value_asked: BTreeMap::new(),
            unknown_followed: BTreeMap::new(),
            dead_in_flight: BTreeSet::new(),
            fates: fates::Fates::default(),
            clients: (0..cfg.spec.clients).map(|_| Client { target: None, request: None }).collect(),
            created: (0..cfg.spec.groups).map(|g| g == 0 || cfg.spec.group_stagger_ms == 0).collect(),
            membership_wanted: BTreeMap::new(),
            formation: vec![formation::Formation::Starting; cfg.spec.groups],
            history: linearizability::windows::Windows::new(
                linearizability::Model::CasRegister,
                client::HISTORY_WINDOW_OPS,
            ),
            whole_history: (cfg.keep_history || cfg.record_timeline).then(Vec::new),
            faults_on: true,
            checkers: {
                let mut checkers = Checkers::new(cfg.spec.contact_bound_ms);
                if cfg.spec.cas_expected_percent > 0 {
                    checkers.kind_issued(crate::checkers::OperationKind::CasOnValue);
                }
                checkers
            },
            converged: false,
            events: 0,
            hash: 0xcbf2_9ce4_8422_2325,
            trace: Vec::new(),
            trace_dropped: 0,
            trail: Vec::new(),
            coverage: BTreeMap::new(),
            recorder: Recorder::default(),
            judging: 0,
            timeline: None,
            cfg,
        };
        if w.cfg.record_timeline {
            w.start_timeline();
        }
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
        if self.timeline.is_some() {
            self.line_rendered(node, kind);
        }
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
        // Only the notable lines: a run asked for its detail (FS, MSG lines, a timeline) keeps all of them.
        let detailed = self.cfg.trace_fs || self.cfg.trace_messages || self.cfg.record_timeline;
        if !detailed && self.trace.len() >= 2 * TRACE_KEEP_LINES {
            let dropped = self.trace.len() - TRACE_KEEP_LINES;
            self.trace.drain(..dropped);
            self.trace_dropped += dropped as u64;
        }
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

    /// The actors of node `i` that have work (a continuation or mail) and may step now.
    /// Appends node `i`'s actors that have work to `out`.
    fn runnable(&self, i: usize, out: &mut Vec<(usize, Actor)>) {
        let n = &self.nodes[i];
        if !n.up {
            return;
        }
        if (n.wal_next.is_some() || !n.wal_box.is_empty()) && n.wal_ready_ns.is_none_or(|t| self.now_ns >= t) {
            out.push((i, Actor::Wal));
        }
        if n.sw_next.is_some() || !n.sw_box.is_empty() {
            out.push((i, Actor::SegmentWriter));
        }
        if !n.worker_box.is_empty() {
            out.push((i, Actor::Worker));
        }
        for (g, m) in n.members.iter().enumerate() {
            if !m.server_box.is_empty() {
                out.push((i, Actor::Server(g)));
            }
        }
    }

    /// Picks one runnable actor of any node at random and steps it (unless an event is due first).
    fn step_some_actor(&mut self) -> bool {
        // Actors only run while no event is due before the end of the step.
        let cost = self.cfg.spec.step_cost_us * 1_000;
        if self.queue.keys().next().is_some_and(|&(at, _)| at <= self.now_ns) {
            return false;
        }
        // One buffer for the run: this is the hottest loop of the engine.
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        for i in 0..self.nodes.len() {
            self.runnable(i, &mut candidates);
        }
        let picked = match candidates.len() {
            0 => None,
            len => Some(candidates[below(&mut self.sched_rng, len as u64) as usize]),
        };
        self.candidates = candidates;
        let Some((i, actor)) = picked else { return false };
        self.now_ns += cost;
        self.mix(&[self.now_ns, i as u64, actor.code()]);
        self.events += 1;
        self.step_actor(i, actor);
        true
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
        self.count_disk_faults();
        self.settle_handles();
        self.check_fired_cuts();
        self.check_shut_down_disks();
        if stepped == Stepped::Event {
            self.check_obligations();
        }
        if self.timeline.is_some() {
            self.sample_states();
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

    /// What the world holds whose size could grow with the run's length (the soak bench watches it).
    pub fn retained(&self) -> Retained {
        Retained {
            history_ops: self.history.held() + self.whole_history.as_ref().map_or(0, Vec::len),
            unknown_carried: self.history.carried(),
            unanswered: self.in_flight.len() + self.given_up.len() + self.unknown_followed.len(),
            trace_lines: self.trace.len(),
            written_indexes: self
                .nodes
                .iter()
                .flat_map(|n| n.written.values())
                .map(crate::checkers::WrittenEntries::len)
                .sum(),
        }
    }
}

/// What a world holds whose size could grow with the run's length: [`World::retained`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// Client operations held: each key's window since its last cut, and unknown operations carried
    /// (every operation, with `WorldConfig::keep_history`).
    pub history_ops: usize,
    /// Of those, unknown operations carried across cuts (their values never observed: they may still
    /// take effect).
    pub unknown_carried: usize,
    /// Client requests with no answer yet that the world keeps a record of: in flight, given up on by the
    /// history, or recorded as unknown with their commands' fate still undecided.
    pub unanswered: usize,
    /// Trace lines.
    pub trace_lines: usize,
    /// Indexes remembered by the log-shape checker's records of what members wrote.
    pub written_indexes: usize,
}

/// A run keeps at least its last this many notable trace lines (at most twice as many; the trace hash
/// covers every line): a simulated day renders half a million, and nobody reads a trace that long from
/// its start. A run rendering its detail (FS or MSG lines, a timeline) keeps every line.
pub const TRACE_KEEP_LINES: usize = 20_000;

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

impl World {
    /// Handles one event: each kind is its concern's.
    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Deliver { to, group, from, msg, arrow } => self.deliver(to, group, from, msg, arrow),
            Event::Timer { node, group, incarnation, timer, generation } => {
                self.timer_fired(node, group, incarnation, timer, generation)
            }
            Event::SenderTimer { node, group, incarnation, peer, generation } => {
                self.sender_timer_fired(node, group, incarnation, peer, generation)
            }
            Event::CreateGroup { group } => self.create_group(group),
            Event::ClientOp => self.client_tick(),
            Event::Fault => self.random_fault(),
            Event::Reconnect { node } => self.reconnect(node),
            Event::Restart { node } => self.restart(node),
            Event::AutoSave { node, incarnation } => self.autosave(node, incarnation),
            Event::Planned { index } => self.planned_due(index),
            Event::WalReady => {}
            Event::DiskRecovered { node, rule } => self.disk_recovered(node, rule),
            Event::LogTick { node, incarnation } => self.log_tick(node, incarnation),
            Event::StartTimeout { node, group, incarnation, process } => {
                self.start_timeout(node, group, incarnation, process)
            }
            Event::Heal => self.heal(),
            Event::ClientTimeout { client, request } => self.client_timeout(client, request),
            Event::ClientRetry { client, request } => self.client_retry(client, request),
            Event::FormationCheck { group } => self.formation_check(group),
            Event::WalRegisters { node, incarnation, at_ns } => self.wal_registers(node, incarnation, at_ns),
            Event::ConvergeCheck => self.converge_check(),
        }
    }
}
