//! Ra-style Raft for deterministic simulation: Ra's storage design (storage I: WAL, mem tables, segment
//! writer, segments) as sans-IO actors over [`vfs::FileSystem`]; the consensus core follows.
//!
//! Why a re-creation rather than a generic Raft: the bugs Ra shipped (PR 589) arise from Ra's exact order
//! of durable steps and its concurrency between actors sharing volatile tables. The model keeps those,
//! so a simulator finds the bugs from the same causes. `design/ra-model.md` is the specification; names
//! follow Ra's where that helps a reader cross-check with Ra's source.

pub mod bugs;
pub mod checksum;
pub mod consensus;
pub mod seq;
pub mod storage;
pub mod types;

pub use bugs::{Bug, Bugs};
pub use seq::Seq;
pub use types::{LogIndex, Payload, ProcessId, TableId, Term, Uid};
