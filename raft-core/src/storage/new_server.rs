//! Starting a brand-new server: registration, log init (whose first entry, index 0, must be written
//! through the WAL) and the config file — in Ra's final order (3.1.3, PR 614): register, init log,
//! write config.
//!
//! Key invariant: a server is registered **before** any of its entries reach the WAL. The segment
//! writer drops every mem table of an unregistered uid when it flushes a WAL file, so an entry written
//! before registration can vanish if a roll-over (driven by any other server's writes) lands in between.
//! PR 589 fix 5 moved registration after log init and config; Ra PR 614 reverted that for exactly this
//! reason. The `register-after-init` switch restores the fix-5 order. The window PR 614 then had to
//! close — registration durable, config not — is handled at pre-init ([`crate::storage::boot`]). The
//! opposite window — config durable, registration not (Ra's names store syncs only on auto-save) — made
//! WAL recovery drop a new server's acknowledged entries in the simulator; the registration is synced
//! here, and `registration-not-synced` restores Ra's behaviour.

use crate::bugs::{Bug, Bugs};
use crate::storage::durable_files::{NamesStore, ServerConfig, write_config};
use crate::storage::log::{LogInitReport, ServerLog};
use crate::storage::shared::NodeShared;
use crate::storage::snapshot::LiveIndexes;
use crate::storage::{Envelope, LogEvent, StorageError, join};
use crate::types::{LogIndex, ProcessId};
use vfs::FileSystem;

/// Makes a registration durable before anything relies on it (the fix for what Ra 3.1.10 leaves to the
/// names store's auto-save; `registration-not-synced` restores that).
fn sync_registration(
    names: &mut NamesStore,
    fs: &mut dyn FileSystem,
    data_dir: &str,
    bugs: &Bugs,
) -> Result<(), StorageError> {
    if bugs.has(Bug::RegistrationNotSynced) { Ok(()) } else { names.flush(fs, data_dir) }
}

/// A new server between its log init and the `Written` of its first entry.
#[derive(Debug, Clone)]
pub struct NewServerStart {
    config: ServerConfig,
    process: ProcessId,
    data_dir: String,
    registered: bool,
    log: ServerLog,
    report: LogInitReport,
    started: bool,
}

impl NewServerStart {
    /// Registers (unless `register-after-init`), then inits the brand-new log, which casts its first
    /// entry (`index 0`) to the WAL.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        config: &ServerConfig,
        process: ProcessId,
        data_dir: &str,
        machine: &dyn LiveIndexes,
        bugs: &Bugs,
        shared: &mut NodeShared,
        names: &mut NamesStore,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<NewServerStart, StorageError> {
        if shared.directory.is_registered(&config.uid) {
            return Err(StorageError::NotNew { uid: config.uid.clone() });
        }
        NewServerStart::restart(config, process, data_dir, None, machine, bugs, shared, names, fs, out)
    }

    /// Ra's supervisor restarting a server that was created in this run (`ra_server:init` again, with
    /// the config it was started with): registers again, inits the log (waiting once more for its first
    /// entry if that never became durable) and writes the config — which Ra rewrites at every init of a
    /// server started from a config in memory. `last_wal_index` is the WAL's last index for it.
    #[allow(clippy::too_many_arguments)]
    pub fn restart(
        config: &ServerConfig,
        process: ProcessId,
        data_dir: &str,
        last_wal_index: Option<LogIndex>,
        machine: &dyn LiveIndexes,
        bugs: &Bugs,
        shared: &mut NodeShared,
        names: &mut NamesStore,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<NewServerStart, StorageError> {
        let register_first = !bugs.has(Bug::RegisterAfterInit);
        if register_first {
            shared.directory.register(&config.uid, &config.name, Some(process));
            names.insert(&config.name, &config.uid);
            sync_registration(names, fs, data_dir, bugs)?;
        }
        let (log, report) =
            ServerLog::init(&config.uid, process, data_dir, last_wal_index, machine, bugs, shared, fs, out)?;
        let mut start = NewServerStart {
            config: config.clone(),
            process,
            data_dir: data_dir.to_owned(),
            registered: register_first,
            log,
            report,
            started: false,
        };
        if !start.report.brand_new {
            // The directory still held a log (a uid unregistered at pre-init and started again): no first
            // entry to wait for — Ra skips `maybe_append_first_entry` and goes on to the config.
            start.finish(bugs, shared, names, fs)?;
        }
        Ok(start)
    }

    /// Whether the server is fully started (config written, registered): take its log with
    /// [`NewServerStart::into_log`].
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The started server's log.
    pub fn into_log(self) -> ServerLog {
        assert!(self.started, "the server has not finished starting");
        self.log
    }

    fn finish(
        &mut self,
        bugs: &Bugs,
        shared: &mut NodeShared,
        names: &mut NamesStore,
        fs: &mut dyn FileSystem,
    ) -> Result<(), StorageError> {
        write_config(fs, &join(&self.data_dir, self.config.uid.as_str()), &self.config, bugs)?;
        if !self.registered {
            shared.directory.register(&self.config.uid, &self.config.name, Some(self.process));
            names.insert(&self.config.name, &self.config.uid);
            sync_registration(names, fs, &self.data_dir, bugs)?;
            self.registered = true;
        }
        self.started = true;
        Ok(())
    }

    /// What log init found.
    pub fn report(&self) -> &LogInitReport {
        &self.report
    }

    /// Handles a log event while waiting. Once the first entry is written: writes the config and (under
    /// `register-after-init`, only now) registers; returns the running server's log.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_event(
        mut self,
        event: &LogEvent,
        bugs: &Bugs,
        shared: &mut NodeShared,
        names: &mut NamesStore,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<Result<ServerLog, NewServerStart>, StorageError> {
        self.log.handle_event(event, shared, fs, out)?;
        let first_written = matches!(event, LogEvent::Written { seq, .. } if seq.contains(LogIndex(0)))
            && self.log.pending().is_empty();
        if !first_written {
            return Ok(Err(self));
        }
        self.finish(bugs, shared, names, fs)?;
        Ok(Ok(self.log))
    }
}
