//! A server's background worker (Ra's `ra_worker`): writes local snapshots off the server's path and
//! tells the server when they are durable.
//!
//! Key invariant: `SnapshotWritten` is sent only after `snapshot.dat`, its directory and `snapshots/`
//! were fsynced (the `indexes` file never is); until then the server's snapshot state — which the WAL
//! and segment writer use to drop entries — does not move. A write that fails (an I/O error, a full disk)
//! is reported as `SnapshotError`, as Ra's worker catches every failure of its job (`ra_worker`'s
//! `try … catch` and the snapshot's `err_fun`); only a power cut stops it.

use crate::bugs::Bugs;
use crate::seq::Seq;
use crate::storage::snapshot::{self, SnapshotMeta};
use crate::storage::{Envelope, LogEvent, StorageError};
use crate::types::{ProcessId, Uid};
use vfs::FileSystem;

/// Work for the background worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerMsg {
    /// Write a local snapshot, then send `SnapshotWritten` to `process`.
    WriteSnapshot {
        /// The server.
        uid: Uid,
        /// Its process, which receives the event.
        process: ProcessId,
        /// Its directory.
        server_dir: String,
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// The machine state.
        state: Vec<u8>,
        /// The machine's live indexes at `meta.index`.
        live_indexes: Seq,
        /// The server's bug switches (the write path reads `unfinished-snapshot-trusted`).
        bugs: Bugs,
    },
}

/// The worker actor (stateless between jobs).
#[derive(Debug, Default)]
pub struct Worker;

impl Worker {
    /// Handles one job (one step).
    pub fn handle(
        &mut self,
        msg: WorkerMsg,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        match msg {
            WorkerMsg::WriteSnapshot { uid, process, server_dir, meta, state, live_indexes, bugs } => {
                let written = snapshot::write_local_snapshot(fs, &server_dir, &meta, &state, &live_indexes, &bugs);
                let event = match written {
                    Ok(_) => LogEvent::SnapshotWritten { uid, meta, live_indexes },
                    Err(e) if e.is_power_cut() => return Err(e),
                    Err(e) => LogEvent::SnapshotError { uid, meta, error: e.to_string() },
                };
                out.push(Envelope::Server { process, event });
                Ok(())
            }
        }
    }
}
