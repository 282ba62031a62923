//! The machine: client commands appended by the leader, committed entries applied in order (values read
//! back from the log), and the local snapshots taken of it — deferred until their index is written here.

use crate::bugs::Bug;
use crate::consensus::RaftLog;
use crate::consensus::kv::{KvCommand, ValueSource};
use crate::storage::StorageError;
use crate::storage::snapshot::SnapshotMeta;
use crate::types::LogIndex;

use super::{ClientId, Effect, EntryBody, Role, Server, encode_cluster};

/// Reads commands back from the log for the machine. A storage error (a power cut's EIO, say) is
/// kept in `error`, not mistaken for a missing entry: the caller returns it instead of `missing_key`.
pub(super) struct LogValues<'a> {
    pub(super) log: &'a mut dyn RaftLog,
    pub(super) error: Option<StorageError>,
}

impl ValueSource for LogValues<'_> {
    fn command_at(&mut self, index: LogIndex) -> Option<KvCommand> {
        let (_, payload) = match self.log.fetch(index) {
            Ok(found) => found?,
            Err(e) => {
                self.error.get_or_insert(e);
                return None;
            }
        };
        match EntryBody::decode(&payload)? {
            EntryBody::Command { command, .. } => Some(command),
            EntryBody::Noop | EntryBody::ClusterChange { .. } => None,
        }
    }
}

impl Server {
    pub(super) fn handle_command(
        &mut self,
        client: ClientId,
        request: u64,
        command: KvCommand,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<(), StorageError> {
        if self.role != Role::Leader {
            fx.push(Effect::Redirect { client, request, leader: self.leader.clone() });
            return Ok(());
        }
        let (last, _) = log.last_index_term();
        let body = EntryBody::Command { client, request, command }.encode();
        if !self.leader_append(LogIndex(last.0 + 1), body, log, fx)? {
            // Ra's `append_error_reply(Cmd, wal_down, …)`: the caller learns it was not appended (the
            // engine's client, like a redirect, tries again).
            fx.push(Effect::Redirect { client, request, leader: None });
            return Ok(());
        }
        // Ra: `{next_event, info, pipeline_rpcs}` after appending a command.
        self.pipeline(false, log, fx)
    }

    /// A leader's append (a command, its noop, a cluster change): `false` when the WAL is down — Ra's
    /// `append_log_leader` catches `wal_down` (`{not_appended, wal_down, …}`) and the leader waits.
    pub(super) fn leader_append(
        &mut self,
        index: LogIndex,
        payload: crate::types::Payload,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
    ) -> Result<bool, StorageError> {
        match log.append(index, self.current_term, payload) {
            Ok(()) => Ok(true),
            Err(StorageError::WalDown) => {
                self.await_wal(fx);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Applies committed entries in order; the leader replies to clients.
    pub(super) fn apply(
        &mut self,
        log: &mut dyn RaftLog,
        fx: &mut Vec<Effect>,
        reply: bool,
    ) -> Result<(), StorageError> {
        let start = self.last_applied;
        while self.last_applied < self.commit_index {
            let index = LogIndex(self.last_applied.0 + 1);
            let Some((term, payload)) = log.fetch(index)? else {
                return Err(StorageError::MissingEntry { uid: crate::types::Uid(self.cfg.id.0.clone()), index });
            };
            match EntryBody::decode(&payload) {
                Some(EntryBody::ClusterChange { cluster }) => self.apply_cluster_change(index, term, cluster),
                Some(EntryBody::Noop) => self.apply_noop(term),
                _ => {}
            }
            if let Some(EntryBody::Command { client, request, command }) = EntryBody::decode(&payload) {
                let mut values = LogValues { log: &mut *log, error: None };
                let result = self.machine.try_apply(index, &command, &mut values).map_err(|missing| {
                    values.error.take().unwrap_or_else(|| StorageError::MissingEntry {
                        uid: crate::types::Uid(self.cfg.id.0.clone()),
                        index: missing,
                    })
                })?;
                if reply && self.role == Role::Leader {
                    fx.push(Effect::Reply { client, request, result });
                }
            }
            self.last_applied = index;
        }
        if self.last_applied > start {
            // Ra's `persist_last_applied`: never beyond what is durable here, or recovery would replay
            // entries that were never written (and may be gone after a crash).
            fx.push(Effect::PersistLastApplied(self.last_applied.min(log.last_written().0)));
            self.maybe_snapshot(log, fx);
        }
        Ok(())
    }

    pub(super) fn maybe_snapshot(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) {
        if self.snapshot_pending || self.cfg.snapshot_interval == 0 {
            return;
        }
        let snap = log.snapshot_index_term().map_or(0, |(i, _)| i.0);
        if self.last_applied.0 < snap.saturating_add(self.cfg.snapshot_interval) {
            return;
        }
        let Ok(Some(term)) = log.term_at(self.last_applied) else { return };
        self.snapshot_pending = true;
        let snapshot = Effect::TakeSnapshot {
            meta: SnapshotMeta {
                index: self.last_applied,
                term,
                machine_version: self.cfg.machine_version,
                cluster: encode_cluster(self.cluster()),
            },
            state: self.machine.encode(),
            live_indexes: self.machine.live_indexes(),
        };
        if self.cfg.bugs.has(Bug::SnapshotBeforeWritten) {
            fx.push(snapshot);
        } else {
            self.deferred_snapshot = Some((self.last_applied, snapshot));
            self.release_deferred_snapshot(log, fx);
        }
    }

    /// Takes the deferred snapshot once its index is written here (Ra's `maybe_emit_pending_release_cursor`).
    pub(super) fn release_deferred_snapshot(&mut self, log: &mut dyn RaftLog, fx: &mut Vec<Effect>) {
        if self.deferred_snapshot.as_ref().is_some_and(|(index, _)| log.last_written().0 >= *index) {
            fx.extend(self.deferred_snapshot.take().map(|(_, snapshot)| snapshot));
        }
    }
}
