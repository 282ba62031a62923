//! Ra-style Raft for deterministic simulation: Ra's storage design (the shared WAL, mem tables, segment
//! writer, segments, snapshots with live indexes, the per-server log, config and meta) as sans-IO actors
//! over [`vfs::FileSystem`], and a consensus server ([`consensus::server::Server`]) that takes closed
//! inputs and returns effects for its caller to carry out.
//!
//! Why a re-creation rather than a generic Raft: the bugs Ra shipped (PR 589) arise from Ra's exact order
//! of durable steps and its concurrency between actors sharing volatile tables. The model keeps those,
//! so a simulator finds the bugs from the same causes. Names follow Ra's where that helps a reader
//! cross-check with Ra's source; `docs/ra-design.md` in the repository describes each actor and
//! ARCHITECTURE.md every place the port departs from Ra. [`Bug`] switches put one of Ra's code paths
//! back each (a PR 589 fix undone, or a gap the simulator found).
//!
//! # A server, sans IO
//!
//! A server never touches a disk, a clock or a socket: its caller feeds it an input and carries out the
//! effects it returns, in order. A one-member cluster asked to elect itself:
//!
//! ```
//! use raft_core::consensus::RaftLog;
//! use raft_core::consensus::mem_log::MemLog;
//! use raft_core::consensus::server::{ConsensusConfig, Effect, Input, Role, Server, ServerId};
//! use raft_core::{Bugs, LogIndex, Term};
//!
//! let me = ServerId("a".into());
//! let cfg = ConsensusConfig {
//!     id: me.clone(),
//!     members: vec![me.clone()],
//!     election_timeout_min_ms: 150,
//!     election_timeout_max_ms: 300,
//!     heartbeat_ms: 50,
//!     snapshot_interval: 0,
//!     max_append_entries: 64,
//!     machine_version: 1,
//!     rng_seed: 7,
//!     bugs: Bugs::none(),
//! };
//! let mut log = MemLog::new();
//! let (mut server, _boot_effects) = Server::recover(cfg, Term(0), None, LogIndex(0), None, &mut log).unwrap();
//! let effects = server.handle(0, Input::TriggerElection, &mut log).unwrap();
//! assert_eq!(server.role(), &Role::Leader);
//! // The caller makes each term and vote durable, in order (the pre-vote round's, then the election's),
//! // and arms the timers it is asked to; the term's first entry went to the log.
//! let persisted: Vec<Term> = effects
//!     .iter()
//!     .filter_map(|e| match e {
//!         Effect::PersistTermAndVote { term, .. } => Some(*term),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(persisted, [Term(0), Term(1)]);
//! assert_eq!(log.last_index_term(), (LogIndex(1), Term(1)));
//! ```

pub mod bugs;
pub mod checksum;
pub mod consensus;
pub mod seq;
pub mod storage;
pub mod types;

pub use bugs::{Bug, Bugs};
pub use seq::Seq;
pub use types::{LogIndex, Payload, ProcessId, TableId, Term, Uid};
