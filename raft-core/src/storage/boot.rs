//! A node's boot sequence around WAL recovery (Ra's `ra_directory:init`, `ra_log_pre_init`, then
//! `ra_system_recover`): load the names store, pre-init every registered server, recover the WAL
//! (storage I, stepped by the caller), restart servers from their configs.
//!
//! Key invariant: snapshot state is seeded for every registered server **before** WAL recovery, because
//! the WAL and the segment writer drop entries below a server's smallest live index. And a registration
//! without a readable config is removed at pre-init (Ra 3.1.3, PR 614), so the server can be created
//! anew; the `config-orphan-registration` switch keeps it, as Ra 3.0 did, and the member can then
//! neither restart nor be re-created.

use crate::bugs::{Bug, Bugs};
use crate::storage::durable_files::{ConfigError, NamesStore, ServerConfig, read_config};
use crate::storage::shared::NodeShared;
use crate::storage::snapshot::{LiveIndexes, init_snapshots};
use crate::storage::{StorageError, join};
use crate::types::Uid;
use vfs::FileSystem;

/// What pre-init did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreInitReport {
    /// Servers whose snapshot state was seeded, with their configs.
    pub ready: Vec<ServerConfig>,
    /// Registrations removed: no data directory, or a config missing or unparsable.
    pub unregistered: Vec<(Uid, ConfigError)>,
    /// Registrations kept although their config is unreadable (`config-orphan-registration`).
    pub orphans: Vec<(Uid, ConfigError)>,
    /// Servers whose config could not be read (not missing, not unparsable) or whose snapshot init
    /// failed (Ra catches and logs; their own init reads again).
    pub failed: Vec<(Uid, StorageError)>,
}

/// Loads the names store into the directory (no process runs yet).
pub fn load_directory(
    fs: &mut dyn FileSystem,
    data_dir: &str,
    shared: &mut NodeShared,
) -> Result<NamesStore, StorageError> {
    let names = NamesStore::load(fs, data_dir)?;
    for (name, uid) in names.entries() {
        shared.directory.register(uid, name, None);
    }
    Ok(names)
}

/// Ra's `ra_log_pre_init` for every registered server.
pub fn pre_init(
    fs: &mut dyn FileSystem,
    data_dir: &str,
    names: &mut NamesStore,
    machine: &dyn LiveIndexes,
    bugs: &Bugs,
    shared: &mut NodeShared,
) -> Result<PreInitReport, StorageError> {
    let mut report = PreInitReport::default();
    let registered: Vec<(String, Uid)> = names.entries().map(|(n, u)| (n.clone(), u.clone())).collect();
    for (name, uid) in registered {
        let dir = join(data_dir, uid.as_str());
        // No data directory: unregistered in every Ra version (`ra_lib:is_dir(Dir)` is false).
        let has_dir = match fs.metadata(&dir) {
            Ok(m) => m.kind == vfs::FileKind::Dir,
            Err(e) if e.kind == vfs::ErrorKind::PoweredOff => return Err(e.into()),
            Err(_) => false,
        };
        if !has_dir {
            shared.directory.unregister(&uid);
            names.remove(&name);
            report.unregistered.push((uid, ConfigError::Missing));
            continue;
        }
        // Ra unregisters a server only when its config is missing or does not parse; any other read
        // error is logged and pre-init goes on (`ra_log_pre_init:pre_init/2`), the server registered.
        let config = match read_config(fs, &dir) {
            Ok(config) => config,
            Err(e) if e.is_power_cut() => return Err(e),
            Err(e) => {
                report.failed.push((uid, e));
                continue;
            }
        };
        match config {
            Ok(config) => match init_snapshots(fs, &dir, &uid, machine, bugs, shared) {
                Ok(_) => report.ready.push(config),
                Err(e) if e.is_power_cut() => return Err(e),
                Err(e) => report.failed.push((uid, e)),
            },
            Err(why) if bugs.has(Bug::ConfigOrphanRegistration) => report.orphans.push((uid, why)),
            Err(why) => {
                shared.directory.unregister(&uid);
                names.remove(&name);
                report.unregistered.push((uid, why));
            }
        }
    }
    Ok(report)
}
