//! The volatile state one node's actors share (Ra's ETS tables): mem tables, the directory of
//! registered servers and the per-server snapshot state.
//!
//! Why one struct: in Ra these are ETS tables any process may read or write at any time; here every
//! actor step receives `&mut NodeShared`, and the simulator interleaves steps. All of it is lost on a VM
//! crash or power loss and survives an actor restart.

use std::collections::BTreeMap;

use crate::seq::Seq;
use crate::storage::mem_table::MemTables;
use crate::types::{LogIndex, ProcessId, Uid};

/// Everything volatile that a node's actors share.
#[derive(Debug, Clone)]
pub struct NodeShared {
    /// Every server's mem tables (Ra's `ra_log_ets` + `ra_mt` tables).
    pub mem_tables: MemTables,
    /// Registered servers and their running process (Ra's `ra_directory`).
    pub directory: Directory,
    /// Per-server snapshot index and live indexes (Ra's `ra_log_snapshot_state`).
    pub snapshots: SnapshotStates,
    /// Which WAL process runs (Ra's `whereis(ra_log_wal)`): the driver gives every WAL process it
    /// starts a new number, so a writer can tell that the WAL restarted since it last wrote.
    pub wal_process: u64,
    /// Whether a WAL process is registered under the WAL's name (Ra's `whereis(ra_log_wal) =/= undefined`,
    /// `ra_log:can_write/1`). False from a WAL's exit until its successor registers — at once under
    /// `ra_log_wal_sup`, after the segment writer and the stores under `ra_log_sup`'s one_for_all restart:
    /// writers then get [`StorageError::WalDown`](crate::storage::StorageError::WalDown) and cast nothing.
    pub wal_registered: bool,
    /// The VM's clock in milliseconds (Ra's `erlang:system_time`), set by the driver before each step.
    pub clock_ms: u64,
}

impl NodeShared {
    /// The state of a freshly booted node: nothing registered, no tables.
    pub fn new() -> NodeShared {
        NodeShared {
            mem_tables: MemTables::new(),
            directory: Directory::new(),
            snapshots: SnapshotStates::new(),
            wal_process: 0,
            wal_registered: true,
            clock_ms: 0,
        }
    }
}

impl Default for NodeShared {
    fn default() -> NodeShared {
        NodeShared::new()
    }
}

/// One registered server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The server's name (Ra's registered process name).
    pub name: String,
    /// The running process, if any: `None` at boot until the server restarts, and while it is stopped.
    pub process: Option<ProcessId>,
}

/// Registered servers (Ra's `ra_directory`, in-memory side; the durable names store comes with storage II).
#[derive(Debug, Clone, Default)]
pub struct Directory {
    servers: BTreeMap<Uid, Registration>,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Directory {
        Directory { servers: BTreeMap::new() }
    }

    /// Registers `uid` (or updates its name and process).
    pub fn register(&mut self, uid: &Uid, name: &str, process: Option<ProcessId>) {
        self.servers.insert(uid.clone(), Registration { name: name.to_owned(), process });
    }

    /// Removes `uid`; returns whether it was registered.
    pub fn unregister(&mut self, uid: &Uid) -> bool {
        self.servers.remove(uid).is_some()
    }

    /// Ra's `is_registered_uid`.
    pub fn is_registered(&self, uid: &Uid) -> bool {
        self.servers.contains_key(uid)
    }

    /// Ra's `pid_of`: the running process of a registered server.
    pub fn process_of(&self, uid: &Uid) -> Option<ProcessId> {
        self.servers.get(uid).and_then(|r| r.process)
    }

    /// Records that `uid` now runs as `process` (or stopped, with `None`). No effect if not registered.
    pub fn set_process(&mut self, uid: &Uid, process: Option<ProcessId>) {
        if let Some(r) = self.servers.get_mut(uid) {
            r.process = process;
        }
    }

    /// Every registration, ordered by uid.
    pub fn registered(&self) -> impl Iterator<Item = (&Uid, &Registration)> {
        self.servers.iter()
    }
}

/// One server's snapshot state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotState {
    /// The index of the current snapshot.
    pub snapshot_index: LogIndex,
    /// `first(live_indexes)`, or `snapshot_index + 1` when there are none: nothing below it is kept.
    pub smallest_live: LogIndex,
    /// Indexes at or below the snapshot that the machine still reads from the log.
    pub live_indexes: Seq,
}

/// Per-server snapshot state (Ra's `ra_log_snapshot_state`). The WAL, the segment writer and compaction
/// drop what lies below a server's smallest live index, so this must be seeded before WAL recovery.
#[derive(Debug, Clone, Default)]
pub struct SnapshotStates {
    by_uid: BTreeMap<Uid, SnapshotState>,
}

impl SnapshotStates {
    /// No snapshot known for any server.
    pub fn new() -> SnapshotStates {
        SnapshotStates { by_uid: BTreeMap::new() }
    }

    /// Records `uid`'s snapshot at `snapshot_index` with its live indexes.
    pub fn insert(&mut self, uid: &Uid, snapshot_index: LogIndex, live_indexes: Seq) {
        let smallest_live = live_indexes.first().unwrap_or(LogIndex(snapshot_index.0.saturating_add(1)));
        self.by_uid.insert(uid.clone(), SnapshotState { snapshot_index, smallest_live, live_indexes });
    }

    /// Forgets `uid`.
    pub fn delete(&mut self, uid: &Uid) {
        self.by_uid.remove(uid);
    }

    /// `uid`'s snapshot state, if it has a snapshot.
    pub fn read(&self, uid: &Uid) -> Option<&SnapshotState> {
        self.by_uid.get(uid)
    }

    /// Ra's `ra_log_snapshot_state:smallest`: the lowest index still kept (0 without a snapshot).
    pub fn smallest(&self, uid: &Uid) -> LogIndex {
        self.by_uid.get(uid).map_or(LogIndex(0), |s| s.smallest_live)
    }
}
