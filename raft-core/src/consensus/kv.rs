//! The KV machine (Ra's `ra_kv`): `put`, `get`, `cas` over keys whose state maps each key to the log
//! index of its latest value — values are read back from the log, so those indexes are **live**.
//!
//! Key invariant: `live_indexes(state)` depends on the state alone (PR 589 fix 1 recomputes it from a
//! snapshot), and every live index stays readable: the storage keeps them below the snapshot.

use std::collections::BTreeMap;

use crate::seq::Seq;
use crate::storage::snapshot::LiveIndexes;
use crate::types::LogIndex;

/// A client command, as carried in a log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvCommand {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Read `key` (linearizable: goes through the log).
    Get {
        /// The key.
        key: String,
    },
    /// Set `key` to `new` if its current value is `expected` (`None`: absent).
    Cas {
        /// The key.
        key: String,
        /// The value required now.
        expected: Option<Vec<u8>>,
        /// The value to set.
        new: Vec<u8>,
    },
}

/// What applying a command returns to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvResult {
    /// A put succeeded.
    Ok,
    /// A get's value (`None`: absent).
    Value(Option<Vec<u8>>),
    /// A cas: whether it applied, and the value found.
    Cas {
        /// Whether the swap happened.
        applied: bool,
        /// The value before the command.
        previous: Option<Vec<u8>>,
    },
}

fn put_bytes(b: &mut Vec<u8>, data: &[u8]) {
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
}

fn take_bytes<'a>(b: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(b.get(*at..*at + 4)?.try_into().ok()?) as usize;
    *at += 4;
    let s = b.get(*at..at.checked_add(len)?)?;
    *at += len;
    Some(s)
}

impl KvCommand {
    /// The command's bytes (inside a log entry's payload).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            KvCommand::Put { key, value } => {
                b.push(1);
                put_bytes(&mut b, key.as_bytes());
                put_bytes(&mut b, value);
            }
            KvCommand::Get { key } => {
                b.push(2);
                put_bytes(&mut b, key.as_bytes());
            }
            KvCommand::Cas { key, expected, new } => {
                b.push(3);
                put_bytes(&mut b, key.as_bytes());
                match expected {
                    Some(e) => {
                        b.push(1);
                        put_bytes(&mut b, e);
                    }
                    None => b.push(0),
                }
                put_bytes(&mut b, new);
            }
        }
        b
    }

    /// Decodes a command; `None` for bytes that are not one.
    pub fn decode(b: &[u8]) -> Option<KvCommand> {
        let mut at = 1;
        let key = |at: &mut usize| take_bytes(b, at).and_then(|k| String::from_utf8(k.to_vec()).ok());
        let cmd = match *b.first()? {
            1 => KvCommand::Put { key: key(&mut at)?, value: take_bytes(b, &mut at)?.to_vec() },
            2 => KvCommand::Get { key: key(&mut at)? },
            3 => {
                let k = key(&mut at)?;
                let expected = match *b.get(at)? {
                    0 => {
                        at += 1;
                        None
                    }
                    1 => {
                        at += 1;
                        Some(take_bytes(b, &mut at)?.to_vec())
                    }
                    _ => return None,
                };
                KvCommand::Cas { key: k, expected, new: take_bytes(b, &mut at)?.to_vec() }
            }
            _ => return None,
        };
        (at == b.len()).then_some(cmd)
    }
}

/// The machine's state: key → index of the entry holding its current value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvState {
    keys: BTreeMap<String, LogIndex>,
}

/// Reads the value a put or cas at `index` wrote (from the log).
pub trait ValueSource {
    /// The command stored at `index`, if the log still holds it.
    fn command_at(&mut self, index: LogIndex) -> Option<KvCommand>;
}

impl KvState {
    /// The empty store.
    pub fn new() -> KvState {
        KvState { keys: BTreeMap::new() }
    }

    /// The log index holding `key`'s value.
    pub fn index_of(&self, key: &str) -> Option<LogIndex> {
        self.keys.get(key).copied()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `key`'s value, read from the log; `Err(index)` when its live index is not readable.
    fn value_of(&self, key: &str, log: &mut dyn ValueSource) -> Result<Option<Vec<u8>>, LogIndex> {
        let Some(index) = self.keys.get(key) else { return Ok(None) };
        match log.command_at(*index) {
            Some(KvCommand::Put { value, .. }) => Ok(Some(value)),
            Some(KvCommand::Cas { new, .. }) => Ok(Some(new)),
            _ => Err(*index),
        }
    }

    /// Applies the command at `index`; `Err(i)` when a live index `i` it must read is not readable (a
    /// lost live entry: the storage broke its promise).
    pub fn try_apply(
        &mut self,
        index: LogIndex,
        cmd: &KvCommand,
        log: &mut dyn ValueSource,
    ) -> Result<KvResult, LogIndex> {
        Ok(match cmd {
            KvCommand::Put { key, .. } => {
                self.keys.insert(key.clone(), index);
                KvResult::Ok
            }
            KvCommand::Get { key } => KvResult::Value(self.value_of(key, log)?),
            KvCommand::Cas { key, expected, .. } => {
                let previous = self.value_of(key, log)?;
                let applied = previous == *expected;
                if applied {
                    self.keys.insert(key.clone(), index);
                }
                KvResult::Cas { applied, previous }
            }
        })
    }

    /// [`KvState::try_apply`] for callers whose log always holds live entries (panics otherwise).
    pub fn apply(&mut self, index: LogIndex, cmd: &KvCommand, log: &mut dyn ValueSource) -> KvResult {
        self.try_apply(index, cmd, log).unwrap_or_else(|i| panic!("live index {i} does not hold a value"))
    }

    /// Ra's `live_indexes/1`: every index a key points at.
    pub fn live_indexes(&self) -> Seq {
        Seq::from_indexes(self.keys.values().copied())
    }

    /// The snapshot bytes of this state.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = (self.keys.len() as u32).to_be_bytes().to_vec();
        for (k, i) in &self.keys {
            put_bytes(&mut b, k.as_bytes());
            b.extend_from_slice(&i.0.to_be_bytes());
        }
        b
    }

    /// Decodes snapshot bytes.
    pub fn decode(b: &[u8]) -> Option<KvState> {
        let n = u32::from_be_bytes(b.get(..4)?.try_into().ok()?);
        let mut at = 4;
        let mut keys = BTreeMap::new();
        for _ in 0..n {
            let k = String::from_utf8(take_bytes(b, &mut at)?.to_vec()).ok()?;
            let i = u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?);
            at += 8;
            keys.insert(k, LogIndex(i));
        }
        (at == b.len()).then_some(KvState { keys })
    }
}

/// The KV machine as the storage's live-index source (fix 1 rebuilds `indexes` through this).
#[derive(Debug, Clone, Copy, Default)]
pub struct KvMachine;

impl LiveIndexes for KvMachine {
    fn live_indexes(&self, _machine_version: u32, state: &[u8]) -> Result<Seq, String> {
        KvState::decode(state).map(|s| s.live_indexes()).ok_or_else(|| "undecodable KV state".to_owned())
    }
}
