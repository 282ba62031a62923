//! A small deterministic driver for the storage actors: one node (SimFs + shared state + WAL +
//! segment writer), FIFO mailboxes with continuations, and a seeded scheduler that picks which runnable
//! actor steps next. The full simulator comes later; this is just enough to interleave actors the way
//! Erlang's scheduler can.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, VecDeque};

use raft_core::storage::mem_table::{InsertError, MemTable};
use raft_core::storage::messages::SegmentWriterMsg;
use raft_core::storage::messages::{WalAppend, WalMsg};
use raft_core::storage::segment::SegmentConfig;
use raft_core::storage::segment_writer::{SegmentWriter, SegmentWriterConfig};
use raft_core::storage::shared::NodeShared;
use raft_core::storage::wal::{SyncMethod, Wal, WalConfig, WalPhase};
use raft_core::storage::{Envelope, LogEvent, NodeNotice, Ranges, StorageError};
use raft_core::{Bugs, LogIndex, Payload, ProcessId, Seq, TableId, Term, Uid};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use vfs::{CrashModel, SimFs, SimFsConfig};

/// Which actor the scheduler prefers when both can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Seeded coin flip per step.
    Random,
    /// Run the WAL whenever it can run.
    WalFirst,
    /// Run the segment writer whenever it can run.
    SegmentWriterFirst,
}

pub fn sim_fs(seed: u64) -> SimFs {
    SimFs::new(SimFsConfig {
        seed,
        sector_size: 512,
        capacity_bytes: 1 << 32,
        max_file_size: 1 << 40,
        record_ops: false,
    })
}

pub fn wal_config(max_size_bytes: u64, bugs: Bugs) -> WalConfig {
    WalConfig {
        dir: "wal".to_owned(),
        max_size_bytes,
        first_file_max_size_bytes: max_size_bytes,
        max_entries: None,
        sync_method: SyncMethod::Datasync,
        compute_checksums: true,
        bugs,
    }
}

pub fn segment_writer_config(max_count: u16) -> SegmentWriterConfig {
    SegmentWriterConfig {
        data_dir: String::new(),
        segment: SegmentConfig {
            max_count,
            max_size_bytes: 64 << 20,
            max_pending: 1024,
            compute_checksums: true,
            // Ra's parse, like the rest of these ports of Ra's suites.
            index_parse: raft_core::storage::segment::IndexParse::Ra,
        },
        delete_keys_per_step: 8,
        // The storage suites port Ra's tests and reason about Ra's durability: its WAL unlink has no
        // directory fsync, a segment writer appends to the newest segment whoever wrote it and exits on
        // an index missing from a registered server's table. The fixes have their own tests.
        bugs: Bugs::of(&[
            raft_core::Bug::WalUnlinkNoDirSync,
            raft_core::Bug::SegmentReusedAfterFailedSync,
            raft_core::Bug::MissingIndexExit,
        ]),
    }
}

/// One node under test.
pub struct Node {
    pub fs: SimFs,
    pub shared: NodeShared,
    pub wal: Wal,
    pub segment_writer: SegmentWriter,
    pub wal_config: WalConfig,
    pub segment_writer_config: SegmentWriterConfig,
    wal_mailbox: VecDeque<WalMsg>,
    wal_continuation: Option<WalMsg>,
    sw_mailbox: VecDeque<SegmentWriterMsg>,
    sw_continuation: Option<SegmentWriterMsg>,
    /// Events delivered to each server process, in order.
    pub events: BTreeMap<ProcessId, Vec<LogEvent>>,
    pub notices: Vec<NodeNotice>,
    /// Set when an actor stopped; it then takes no further steps.
    pub wal_error: Option<StorageError>,
    pub segment_writer_error: Option<StorageError>,
    pub schedule: Schedule,
    wal_incarnation: u64,
    /// Background-worker jobs not yet run, and the errors of those that failed.
    pub worker_mailbox: VecDeque<raft_core::storage::worker::WorkerMsg>,
    pub worker_errors: Vec<StorageError>,
    rng: ChaCha8Rng,
    pub steps: u64,
    /// Every `MemTables { ranges, wal_file }` the WAL sent to the segment writer, in order (what Ra's
    /// suite observes by standing in for the segment writer).
    pub mem_tables_casts: Vec<(Ranges, String)>,
}

impl Node {
    /// A node with an empty disk; call [`Node::boot`] to start its actors.
    pub fn new(seed: u64, wal_config: WalConfig, segment_writer_config: SegmentWriterConfig) -> Node {
        Node {
            fs: sim_fs(seed),
            shared: NodeShared::new(),
            wal: Wal::new(wal_config.clone(), 0),
            segment_writer: SegmentWriter::new(segment_writer_config.clone()),
            wal_config,
            segment_writer_config,
            wal_mailbox: VecDeque::new(),
            wal_continuation: None,
            sw_mailbox: VecDeque::new(),
            sw_continuation: None,
            events: BTreeMap::new(),
            notices: Vec::new(),
            wal_error: None,
            segment_writer_error: None,
            schedule: Schedule::Random,
            wal_incarnation: 0,
            worker_mailbox: VecDeque::new(),
            worker_errors: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed),
            steps: 0,
            mem_tables_casts: Vec::new(),
        }
    }

    /// Fresh actors (keeping disk and shared state) and `Recover` sent to the WAL.
    pub fn boot(&mut self) {
        self.wal_incarnation += 1;
        self.wal = Wal::new(self.wal_config.clone(), self.wal_incarnation);
        self.segment_writer = SegmentWriter::new(self.segment_writer_config.clone());
        self.wal_mailbox.clear();
        self.wal_continuation = None;
        self.sw_mailbox.clear();
        self.sw_continuation = None;
        self.wal_error = None;
        self.segment_writer_error = None;
        self.notices.clear();
        self.wal_mailbox.push_back(WalMsg::Recover);
    }

    /// The WAL alone restarts (Ra's `ra_log_wal_sup`): a fresh WAL process with an empty mailbox and
    /// `Recover` sent; the segment writer, its mailbox and the mem tables carry on (post-boot recovery).
    pub fn restart_wal(&mut self) {
        self.wal_incarnation += 1;
        self.wal = Wal::new(self.wal_config.clone(), self.wal_incarnation);
        self.wal_mailbox.clear();
        self.wal_continuation = None;
        self.wal_error = None;
        self.wal_mailbox.push_back(WalMsg::Recover);
    }

    /// Boot and run until WAL recovery finished (or an actor stopped). Returns the first error.
    pub fn boot_and_recover(&mut self) -> Result<(), StorageError> {
        self.boot();
        self.run();
        if let Some(e) = self.wal_error.clone().or(self.segment_writer_error.clone()) {
            return Err(e);
        }
        assert!(self.notices.contains(&NodeNotice::WalRecovered), "recovery did not finish");
        Ok(())
    }

    /// Boot and step only the WAL, as Ra's suite does with the segment writer mocked out: every WAL file
    /// is recovered into mem tables and handed to the segment writer (whose mailbox keeps the messages),
    /// and the WAL then waits for the segment writer to drain. Returns the WAL's error, if it stopped.
    /// Only for initial (node boot) recovery: post-boot recovery first waits for the segment writer.
    pub fn boot_wal_only(&mut self) -> Result<(), StorageError> {
        self.boot();
        self.run_wal_only();
        match self.wal_error.clone() {
            Some(e) => Err(e),
            None => {
                assert_eq!(self.wal.phase(), &WalPhase::AwaitingDrain, "WAL recovery did not reach the drain");
                Ok(())
            }
        }
    }

    /// After [`Node::boot_wal_only`]: let both actors run until idle; recovery must finish cleanly.
    pub fn finish_recovery(&mut self) {
        self.run();
        assert_eq!(self.wal_error, None, "WAL stopped");
        assert_eq!(self.segment_writer_error, None, "segment writer stopped");
        assert!(self.notices.contains(&NodeNotice::WalRecovered), "recovery did not finish");
    }

    /// The `MemTables` casts recorded so far, leaving none.
    pub fn take_casts(&mut self) -> Vec<(Ranges, String)> {
        std::mem::take(&mut self.mem_tables_casts)
    }

    /// Power loss: volatile state gone, the disk keeps what `model` decides. Registrations must be redone.
    pub fn power_loss(&mut self, model: CrashModel) {
        self.fs.crash(model);
        self.fs.power_on();
        self.shared = NodeShared::new();
        self.events.clear();
    }

    fn wal_runnable(&self) -> bool {
        self.wal_error.is_none() && (self.wal_continuation.is_some() || !self.wal_mailbox.is_empty())
    }

    fn sw_runnable(&self) -> bool {
        self.segment_writer_error.is_none() && (self.sw_continuation.is_some() || !self.sw_mailbox.is_empty())
    }

    /// Runs one step of one actor; false when nothing can run.
    pub fn step(&mut self) -> bool {
        let (w, s) = (self.wal_runnable(), self.sw_runnable());
        let run_wal = match (w, s) {
            // The background worker runs when both log actors are idle.
            (false, false) => return self.step_worker(),
            (true, false) => true,
            (false, true) => false,
            (true, true) => match self.schedule {
                Schedule::Random => self.rng.next_u32() & 1 == 0,
                Schedule::WalFirst => true,
                Schedule::SegmentWriterFirst => false,
            },
        };
        self.steps += 1;
        let mut out = Vec::new();
        if run_wal {
            let msg = self.wal_continuation.take().or_else(|| self.wal_mailbox.pop_front()).expect("runnable");
            if let Err(e) = self.wal.handle(msg, &mut self.shared, &mut self.fs, &mut out) {
                self.wal_error = Some(e);
            }
        } else {
            let msg = self.sw_continuation.take().or_else(|| self.sw_mailbox.pop_front()).expect("runnable");
            if let Err(e) = self.segment_writer.handle(msg, &mut self.shared, &mut self.fs, &mut out) {
                self.segment_writer_error = Some(e);
            }
        }
        self.route(out);
        true
    }

    /// Runs one background-worker job, if any.
    pub fn step_worker(&mut self) -> bool {
        let Some(msg) = self.worker_mailbox.pop_front() else { return false };
        self.steps += 1;
        let mut out = Vec::new();
        if let Err(e) = raft_core::storage::worker::Worker.handle(msg, &mut self.fs, &mut out) {
            self.worker_errors.push(e);
        }
        self.route(out);
        true
    }

    pub fn route(&mut self, out: Vec<Envelope>) {
        for env in out {
            match env {
                Envelope::Worker(m) => self.worker_mailbox.push_back(m),
                Envelope::Wal(m) => self.wal_mailbox.push_back(m),
                Envelope::WalContinue(m) => {
                    assert!(self.wal_continuation.is_none(), "two WAL continuations");
                    self.wal_continuation = Some(m);
                }
                Envelope::SegmentWriter(m) => {
                    if let SegmentWriterMsg::MemTables { ranges, wal_file } = &m {
                        self.mem_tables_casts.push((ranges.clone(), wal_file.clone()));
                    }
                    self.sw_mailbox.push_back(m);
                }
                Envelope::SegmentWriterContinue(m) => {
                    assert!(self.sw_continuation.is_none(), "two segment writer continuations");
                    self.sw_continuation = Some(m);
                }
                Envelope::Server { process, event } => self.events.entry(process).or_default().push(event),
                Envelope::Notice(n) => self.notices.push(n),
            }
        }
    }

    /// Steps only the WAL until it cannot run (the segment writer's mailbox keeps its messages).
    pub fn run_wal_only(&mut self) {
        let saved = self.schedule;
        self.schedule = Schedule::WalFirst;
        while self.wal_runnable() {
            self.step();
        }
        self.schedule = saved;
    }

    /// Steps until nothing can run.
    pub fn run(&mut self) {
        while self.step() {}
    }

    /// Sends a message to the WAL's mailbox.
    pub fn send_wal(&mut self, msg: WalMsg) {
        self.wal_mailbox.push_back(msg);
    }

    /// Registers a server (optionally running as `process`).
    pub fn register(&mut self, uid: &Uid, process: Option<ProcessId>) {
        self.shared.directory.register(uid, uid.as_str(), process);
    }

    /// Every `Written` index a process received, as one set.
    pub fn written(&self, process: ProcessId) -> Seq {
        let mut all = Seq::new();
        for e in self.events.get(&process).into_iter().flatten() {
            if let LogEvent::Written { seq, .. } = e {
                all = all.union(seq);
            }
        }
        all
    }

    /// The `ResendFrom` events a process received.
    pub fn resends(&self, process: ProcessId) -> Vec<LogIndex> {
        self.events
            .get(&process)
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                LogEvent::ResendFrom { from, .. } => Some(*from),
                _ => None,
            })
            .collect()
    }

    /// Names in the WAL directory.
    pub fn wal_files(&mut self) -> Vec<String> {
        use vfs::FileSystem;
        self.fs.read_dir("wal").unwrap_or_default()
    }

    /// Segment file names of a server.
    pub fn segment_files(&mut self, uid: &Uid) -> Vec<String> {
        use vfs::FileSystem;
        self.fs.read_dir(uid.as_str()).unwrap_or_default().into_iter().filter(|n| n.ends_with(".segment")).collect()
    }
}

/// A server's write side, as Ra's `ra_log` does it: insert into its mem table first, then cast to the WAL.
pub struct Writer {
    pub uid: Uid,
    pub process: ProcessId,
    pub mt: Option<MemTable>,
}

impl Writer {
    /// A writer for a registered, running server; creates its data directory.
    pub fn start(node: &mut Node, name: &str, process: u64) -> Writer {
        use vfs::FileSystem;
        let uid = Uid::new(name);
        node.register(&uid, Some(ProcessId(process)));
        node.fs.mkdir_all(name).unwrap();
        // Make the server directory durable (storage II's log init does this for real servers).
        let root = node.fs.open_dir(".").unwrap();
        node.fs.fsync(root).unwrap();
        node.fs.close(root).unwrap();
        Writer { uid, process: ProcessId(process), mt: None }
    }

    /// Appends `index` at `term` with `prev_index = index - 1` (`None` for index 0).
    pub fn write(&mut self, node: &mut Node, index: u64, term: u64, payload: &[u8]) {
        let prev = index.checked_sub(1).map(LogIndex);
        self.write_sparse(node, index, term, payload, prev);
    }

    /// Appends with an explicit previous index (a sparse write).
    pub fn write_sparse(&mut self, node: &mut Node, index: u64, term: u64, payload: &[u8], prev: Option<LogIndex>) {
        let payload: Payload = Payload::from(payload);
        let mut mt = match self.mt.take() {
            Some(mt) => mt,
            None => node.shared.mem_tables.mem_table_please(&self.uid),
        };
        let (idx, t) = (LogIndex(index), Term(term));
        // Ra's ra_log: overwrites (and sparse writes) go to a successor table; sparse inserts use insert_sparse.
        let contiguous = mt.indexes().last().is_none_or(|l| l.0 + 1 == index);
        if contiguous {
            match mt.insert(&mut node.shared.mem_tables, idx, t, payload.clone()) {
                Ok(()) => {}
                Err(InsertError::Overwriting) | Err(InsertError::LimitReached) => {
                    mt = node.shared.mem_tables.new_mem_table_please(&self.uid, mt);
                    mt.insert(&mut node.shared.mem_tables, idx, t, payload.clone()).unwrap();
                }
                Err(e) => panic!("insert failed: {e:?}"),
            }
        } else if mt.indexes().last().is_some_and(|l| idx <= l) {
            mt = node.shared.mem_tables.new_mem_table_please(&self.uid, mt);
            mt.insert(&mut node.shared.mem_tables, idx, t, payload.clone()).unwrap();
        } else {
            let last = mt.indexes().last();
            mt.insert_sparse(&mut node.shared.mem_tables, idx, t, payload.clone(), last).unwrap();
        }
        let tid = mt.tid();
        self.mt = Some(mt);
        node.send_wal(WalMsg::Append(WalAppend {
            uid: self.uid.clone(),
            process: self.process,
            tid,
            prev_index: prev,
            index: idx,
            term: t,
            payload,
        }));
    }

    /// Sends an append for table `tid` without touching any mem table (Ra's suite writing with a bare
    /// `ets:new` table id).
    pub fn append_raw(&self, node: &mut Node, tid: TableId, prev: Option<u64>, index: u64, term: u64, payload: &[u8]) {
        node.send_wal(WalMsg::Append(WalAppend {
            uid: self.uid.clone(),
            process: self.process,
            tid,
            prev_index: prev.map(LogIndex),
            index: LogIndex(index),
            term: Term(term),
            payload: Payload::from(payload),
        }));
    }

    /// The newest mem table this writer inserted into.
    pub fn tid(&self) -> TableId {
        self.mt.as_ref().expect("the writer has written").tid()
    }

    /// Writes `from..=to` at `term` with a payload derived from the index.
    pub fn write_range(&mut self, node: &mut Node, from: u64, to: u64, term: u64) {
        for i in from..=to {
            self.write(node, i, term, &payload_for(i, term));
        }
    }
}

/// A recognisable payload for an index and term.
pub fn payload_for(index: u64, term: u64) -> Vec<u8> {
    format!("entry-{index}-term-{term}").into_bytes()
}

/// Every index of `uid` found in any of its segments (via a reader, newest file wins per index).
pub fn segment_contents(node: &mut Node, uid: &Uid) -> BTreeMap<u64, (u64, Vec<u8>)> {
    use raft_core::storage::segment::SegmentReader;
    let mut out = BTreeMap::new();
    let mut files = node.segment_files(uid);
    files.sort();
    for f in files {
        let path = format!("{}/{}", uid.as_str(), f);
        let reader = SegmentReader::open(&mut node.fs, &path).unwrap();
        let indexes: Vec<LogIndex> = reader.indexes().collect();
        for i in indexes {
            let (term, data) = reader.read(&mut node.fs, i).unwrap().unwrap();
            out.insert(i.0, (term.0, data));
        }
    }
    out
}

/// One mem table's entries: index -> (term, payload).
pub type TableContents = BTreeMap<u64, (u64, Vec<u8>)>;

/// Every open mem table of `uid` (oldest first) with what it holds now.
pub fn mem_table_contents(node: &Node, uid: &Uid) -> Vec<(TableId, TableContents)> {
    use raft_core::storage::mem_table::Lookup;
    let store = &node.shared.mem_tables;
    store
        .tables_of(uid)
        .into_iter()
        .map(|tid| {
            let entries = store
                .indexes_in(tid)
                .iter()
                .map(|i| match store.lookup(tid, i) {
                    Lookup::Found(term, payload) => (i.0, (term.0, payload.to_vec())),
                    other => panic!("{tid} index {i}: {other:?}"),
                })
                .collect();
            (tid, entries)
        })
        .collect()
}

/// `from..=to` at `term` with [`payload_for`] payloads, as mem table or segment contents.
pub fn entries(from: u64, to: u64, term: u64) -> TableContents {
    (from..=to).map(|i| (i, (term, payload_for(i, term)))).collect()
}

/// The path of WAL file number `num` under the test WAL directory.
pub fn wal_path(num: u64) -> String {
    format!("wal/{num:016}.wal")
}

/// A file's length.
pub fn file_len(node: &mut Node, path: &str) -> u64 {
    use vfs::FileSystem;
    node.fs.metadata(path).unwrap().len
}

/// Cuts `bytes` off the end of a file (durably).
pub fn truncate_by(node: &mut Node, path: &str, bytes: u64) {
    use vfs::{FileSystem, OpenOptions};
    let len = file_len(node, path);
    let fd = node.fs.open(path, &OpenOptions::read_write()).unwrap();
    node.fs.set_len(fd, len - bytes).unwrap();
    node.fs.fsync(fd).unwrap();
    node.fs.close(fd).unwrap();
}

/// Overwrites bytes of a file at `offset` (durably).
pub fn overwrite_at(node: &mut Node, path: &str, offset: u64, data: &[u8]) {
    use vfs::{FileSystem, OpenOptions};
    let fd = node.fs.open(path, &OpenOptions::read_write()).unwrap();
    assert_eq!(node.fs.pwrite(fd, offset, data).unwrap(), data.len());
    node.fs.fsync(fd).unwrap();
    node.fs.close(fd).unwrap();
}

/// A `Ranges` value from (uid, [(table, indexes)]) pairs, newest table first.
pub fn ranges_of(items: &[(&Uid, Vec<(TableId, Seq)>)]) -> Ranges {
    items.iter().map(|(uid, seqs)| ((*uid).clone(), seqs.clone())).collect()
}

/// Which actor took a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The WAL.
    Wal,
    /// The segment writer.
    SegmentWriter,
}

impl Node {
    /// Like [`Node::step`] (same choice, same draw from the scheduler's rng), but says which actor ran;
    /// `None` when nothing can run.
    pub fn step_actor(&mut self) -> Option<Actor> {
        let actor = match (self.wal_runnable(), self.sw_runnable()) {
            (false, false) => return None,
            (true, false) => Actor::Wal,
            (false, true) => Actor::SegmentWriter,
            (true, true) => match self.schedule {
                Schedule::Random if self.rng.next_u32() & 1 == 0 => Actor::Wal,
                Schedule::Random => Actor::SegmentWriter,
                Schedule::WalFirst => Actor::Wal,
                Schedule::SegmentWriterFirst => Actor::SegmentWriter,
            },
        };
        let saved = self.schedule;
        self.schedule = match actor {
            Actor::Wal => Schedule::WalFirst,
            Actor::SegmentWriter => Schedule::SegmentWriterFirst,
        };
        self.step();
        self.schedule = saved;
        Some(actor)
    }

    /// Sends a message to the back of the segment writer's mailbox (Ra's suite casting `mem_tables`
    /// to the segment writer directly).
    pub fn send_segment_writer(&mut self, msg: SegmentWriterMsg) {
        self.route(vec![Envelope::SegmentWriter(msg)]);
    }
}

/// A machine whose snapshot state is its live indexes, one `u64` (big-endian) each.
pub struct IndexListMachine;

impl raft_core::storage::snapshot::LiveIndexes for IndexListMachine {
    fn live_indexes(&self, _machine_version: u32, state: &[u8]) -> Result<Seq, String> {
        if !state.len().is_multiple_of(8) {
            return Err(format!("state of {} bytes is not a list of u64", state.len()));
        }
        Ok(Seq::from_indexes(state.chunks_exact(8).map(|c| LogIndex(u64::from_be_bytes(c.try_into().unwrap())))))
    }
}

/// The machine state `IndexListMachine` reads back as `live`.
pub fn index_list_state(live: &[u64]) -> Vec<u8> {
    live.iter().flat_map(|i| i.to_be_bytes()).collect()
}

/// A server config for `uid` with every field written out.
pub fn server_config(uid: &str) -> raft_core::storage::durable_files::ServerConfig {
    raft_core::storage::durable_files::ServerConfig {
        uid: Uid::new(uid),
        name: uid.to_owned(),
        cluster_name: "c1".to_owned(),
        initial_members: vec![uid.to_owned()],
        machine_version: 1,
    }
}
