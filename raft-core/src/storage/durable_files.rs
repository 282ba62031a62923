//! The small durable files of a node besides the log: each server's `config`, the node's `names` store
//! (registrations) and `meta` store (term, vote, last applied).
//!
//! Key invariant (PR 589 fixes 5/6 and Ra PR 614): a registration is useful only if the server's config
//! is durable too. The config is written `config.tmp` + fsync + rename + fsync(server dir) (the
//! `config-no-dir-sync` switch drops that last fsync); the names store becomes durable only when its
//! auto-save flushes it (Ra's DETS `auto_save`, 500 ms) — so there are windows where one is durable and
//! the other is not, and pre-init must cope (unregister a uid without a readable config).
//!
//! Formats: `config` = "RACF" crc:u32 body; `names`/`meta` = magic crc:u32 count:u32 records. A flush of
//! `names` or `meta` writes a tmp file, fsyncs, renames and fsyncs the directory: DETS' own in-place
//! writes are out of scope, the model keeps only *when* the store becomes durable.

use std::collections::BTreeMap;
use std::fmt;

use crate::bugs::{Bug, Bugs};
use crate::checksum::crc32;
use crate::storage::snapshot::write_file;
use crate::storage::{StorageError, join, sync_dir, sync_dir_best_effort};
use crate::types::{LogIndex, Term, Uid};
use vfs::{ErrorKind, FileSystem};

/// The config file name inside a server directory.
pub const CONFIG_FILE: &str = "config";
/// The names store file in the data directory.
pub const NAMES_FILE: &str = "names";
/// The meta store file in the data directory.
pub const META_FILE: &str = "meta";

/// What pre-init and restart need to know about a server (Ra's server config map, reduced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The server's uid (its directory name).
    pub uid: Uid,
    /// Its registered name.
    pub name: String,
    /// Its Raft group.
    pub cluster_name: String,
    /// The group's initial members (names).
    pub initial_members: Vec<String>,
    /// The machine version it runs.
    pub machine_version: u32,
}

/// Why a config could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// No config file (or no server directory).
    Missing,
    /// The file exists but does not parse (Ra: `ra_lib:consult` fails).
    Unparsable,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::Missing => "config missing",
            ConfigError::Unparsable => "config unparsable",
        })
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.bytes(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.bytes(n)?.to_vec()).ok()
    }
    fn done(&self) -> bool {
        self.at == self.b.len()
    }
}

fn seal(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = magic.to_vec();
    b.extend_from_slice(&crc32(body).to_be_bytes());
    b.extend_from_slice(body);
    b
}

fn unseal<'a>(magic: &[u8; 4], b: &'a [u8]) -> Option<&'a [u8]> {
    if b.len() < 8 || &b[..4] != magic {
        return None;
    }
    let body = &b[8..];
    (crc32(body) == u32::from_be_bytes(b[4..8].try_into().ok()?)).then_some(body)
}

/// A config file's bytes.
pub fn encode_config(c: &ServerConfig) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, c.uid.as_str());
    put_str(&mut body, &c.name);
    put_str(&mut body, &c.cluster_name);
    body.extend_from_slice(&(c.initial_members.len() as u16).to_be_bytes());
    for m in &c.initial_members {
        put_str(&mut body, m);
    }
    body.extend_from_slice(&c.machine_version.to_be_bytes());
    seal(b"RACF", &body)
}

/// Parses a config file's bytes.
pub fn decode_config(b: &[u8]) -> Result<ServerConfig, ConfigError> {
    let body = unseal(b"RACF", b).ok_or(ConfigError::Unparsable)?;
    let mut r = Reader { b: body, at: 0 };
    let parsed = (|| {
        let uid = Uid(r.str()?);
        let name = r.str()?;
        let cluster_name = r.str()?;
        let n = r.u16()?;
        let mut initial_members = Vec::new();
        for _ in 0..n {
            initial_members.push(r.str()?);
        }
        let machine_version = r.u32()?;
        r.done().then_some(ServerConfig { uid, name, cluster_name, initial_members, machine_version })
    })();
    parsed.ok_or(ConfigError::Unparsable)
}

/// Ra's `ra_log:write_config`: `config.tmp` written with fsync, renamed over `config`, then (fix 6) the
/// server directory fsynced.
pub fn write_config(
    fs: &mut dyn FileSystem,
    server_dir: &str,
    config: &ServerConfig,
    bugs: &Bugs,
) -> Result<(), StorageError> {
    let tmp = join(server_dir, "config.tmp");
    write_file(fs, &tmp, &encode_config(config), true)?;
    fs.rename(&tmp, &join(server_dir, CONFIG_FILE))?;
    if !bugs.has(Bug::ConfigNoDirSync) {
        sync_dir_best_effort(fs, server_dir)?;
    }
    Ok(())
}

/// Reads a server's config: a missing or unparsable one is a [`ConfigError`] (Ra's `ra_log:read_config`
/// gives `{error, enoent}` or `{error, parsing}`), any other failure the filesystem's error (Ra's
/// `prim_file:read_file` error, passed on as it is).
pub fn read_config(
    fs: &mut dyn FileSystem,
    server_dir: &str,
) -> Result<Result<ServerConfig, ConfigError>, StorageError> {
    match fs.read_file(&join(server_dir, CONFIG_FILE)) {
        Ok(bytes) => Ok(decode_config(&bytes)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Err(ConfigError::Missing)),
        Err(e) => Err(e.into()),
    }
}

/// Atomically replaces `dir/name` with `bytes`: tmp + fsync + rename + fsync(dir). This stands for
/// DETS' own sync, whose failure Ra never ignores (`ok = dets:sync(…)`): every step's error stops the
/// caller, the directory fsync's included.
fn replace_durably(fs: &mut dyn FileSystem, dir: &str, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let path = join(dir, name);
    let tmp = format!("{path}.tmp");
    write_file(fs, &tmp, bytes, true)?;
    fs.rename(&tmp, &path)?;
    sync_dir(fs, dir)?;
    Ok(())
}

/// The durable side of the directory (Ra's `names.dets`): name → uid, flushed by auto-save.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamesStore {
    entries: BTreeMap<String, Uid>,
    dirty: bool,
}

impl NamesStore {
    /// An empty store.
    pub fn new() -> NamesStore {
        NamesStore { entries: BTreeMap::new(), dirty: false }
    }

    /// Records a registration (durable at the next [`NamesStore::flush`]).
    pub fn insert(&mut self, name: &str, uid: &Uid) {
        self.entries.insert(name.to_owned(), uid.clone());
        self.dirty = true;
    }

    /// Removes a registration (durable at the next flush).
    pub fn remove(&mut self, name: &str) {
        if self.entries.remove(name).is_some() {
            self.dirty = true;
        }
    }

    /// Whether unsaved changes exist (the auto-save timer should be running).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Every (name, uid).
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Uid)> {
        self.entries.iter()
    }

    /// The auto-save: writes the store durably if it changed.
    pub fn flush(&mut self, fs: &mut dyn FileSystem, data_dir: &str) -> Result<(), StorageError> {
        if !self.dirty {
            return Ok(());
        }
        let mut body = (self.entries.len() as u32).to_be_bytes().to_vec();
        for (name, uid) in &self.entries {
            put_str(&mut body, name);
            put_str(&mut body, uid.as_str());
        }
        replace_durably(fs, data_dir, NAMES_FILE, &seal(b"RANM", &body))?;
        self.dirty = false;
        Ok(())
    }

    /// Loads the store at boot; a missing one is empty, an unreadable one an error.
    pub fn load(fs: &mut dyn FileSystem, data_dir: &str) -> Result<NamesStore, StorageError> {
        // A missing store is an empty one; any other failure stops the boot, as Ra's
        // `{ok, _} = dets:open_file(…)` does (an empty store would forget registrations).
        let bytes = match fs.read_file(&join(data_dir, NAMES_FILE)) {
            Ok(b) => b,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(NamesStore::new()),
            Err(e) => return Err(e.into()),
        };
        let parsed = unseal(b"RANM", &bytes).and_then(|body| {
            let mut r = Reader { b: body, at: 0 };
            let n = r.u32()?;
            let mut entries = BTreeMap::new();
            for _ in 0..n {
                let name = r.str()?;
                entries.insert(name, Uid(r.str()?));
            }
            r.done().then_some(entries)
        });
        Ok(NamesStore { entries: parsed.unwrap_or_default(), dirty: false })
    }
}

/// One server's persisted consensus state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMeta {
    /// The current term.
    pub current_term: Term,
    /// Who this server voted for in `current_term`.
    pub voted_for: Option<String>,
    /// The last applied index (written lazily; may lag).
    pub last_applied: LogIndex,
}

/// The node's meta store (Ra's `ra_log_meta` over `meta.dets`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetaStore {
    by_uid: BTreeMap<Uid, ServerMeta>,
    dirty: bool,
}

impl MetaStore {
    /// An empty store.
    pub fn new() -> MetaStore {
        MetaStore { by_uid: BTreeMap::new(), dirty: false }
    }

    /// A server's meta (term 0, no vote, nothing applied if unknown).
    pub fn get(&self, uid: &Uid) -> ServerMeta {
        self.by_uid.get(uid).cloned().unwrap_or(ServerMeta {
            current_term: Term(0),
            voted_for: None,
            last_applied: LogIndex(0),
        })
    }

    /// Ra's `update_term_and_voted_for` + `store_sync`: durable when this returns, before any vote reply.
    pub fn store_term_and_vote_sync(
        &mut self,
        fs: &mut dyn FileSystem,
        data_dir: &str,
        uid: &Uid,
        term: Term,
        voted_for: Option<String>,
    ) -> Result<(), StorageError> {
        let mut m = self.get(uid);
        m.current_term = term;
        m.voted_for = voted_for;
        self.by_uid.insert(uid.clone(), m);
        self.dirty = true;
        self.flush(fs, data_dir)
    }

    /// Ra's `persist_last_applied`: recorded now, durable at the next auto-save.
    pub fn store_last_applied(&mut self, uid: &Uid, last_applied: LogIndex) {
        let mut m = self.get(uid);
        m.last_applied = last_applied;
        self.by_uid.insert(uid.clone(), m);
        self.dirty = true;
    }

    /// Forgets a server.
    pub fn remove(&mut self, uid: &Uid) {
        if self.by_uid.remove(uid).is_some() {
            self.dirty = true;
        }
    }

    /// Whether unsaved changes exist.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The auto-save (and the sync of `store_sync`).
    pub fn flush(&mut self, fs: &mut dyn FileSystem, data_dir: &str) -> Result<(), StorageError> {
        if !self.dirty {
            return Ok(());
        }
        let mut body = (self.by_uid.len() as u32).to_be_bytes().to_vec();
        for (uid, m) in &self.by_uid {
            put_str(&mut body, uid.as_str());
            body.extend_from_slice(&m.current_term.0.to_be_bytes());
            match &m.voted_for {
                Some(v) => {
                    body.push(1);
                    put_str(&mut body, v);
                }
                None => body.push(0),
            }
            body.extend_from_slice(&m.last_applied.0.to_be_bytes());
        }
        replace_durably(fs, data_dir, META_FILE, &seal(b"RAMT", &body))?;
        self.dirty = false;
        Ok(())
    }

    /// Loads the store at boot; a missing one is empty, an unreadable one an error.
    pub fn load(fs: &mut dyn FileSystem, data_dir: &str) -> Result<MetaStore, StorageError> {
        // A missing store is an empty one; any other failure stops the boot, as Ra's
        // `{ok, _} = dets:open_file(…)` does (an empty store would forget terms and votes: a second
        // vote in a term).
        let bytes = match fs.read_file(&join(data_dir, META_FILE)) {
            Ok(b) => b,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(MetaStore::new()),
            Err(e) => return Err(e.into()),
        };
        let parsed = unseal(b"RAMT", &bytes).and_then(|body| {
            let mut r = Reader { b: body, at: 0 };
            let n = r.u32()?;
            let mut by_uid = BTreeMap::new();
            for _ in 0..n {
                let uid = Uid(r.str()?);
                let current_term = Term(r.u64()?);
                let voted_for = match r.bytes(1)?[0] {
                    0 => None,
                    1 => Some(r.str()?),
                    _ => return None,
                };
                let last_applied = LogIndex(r.u64()?);
                by_uid.insert(uid, ServerMeta { current_term, voted_for, last_applied });
            }
            r.done().then_some(by_uid)
        });
        Ok(MetaStore { by_uid: parsed.unwrap_or_default(), dirty: false })
    }
}
