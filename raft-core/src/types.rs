//! Identifier and index newtypes shared by the storage actors and (later) the consensus core.
//!
//! Why newtypes: a WAL record carries an index, a term, a table id and a writer reference side by side;
//! mixing any two up is a silent corruption, so each gets its own type.

use std::fmt;
use std::rc::Rc;

/// A Raft log index. A brand-new Ra log writes its first entry at index 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogIndex(pub u64);

/// A Raft term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub u64);

/// A server's unique id (Ra's `UId`): names its data directory, its mem tables and its WAL records.
/// Restarted servers keep their uid; their process id changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(pub String);

/// One incarnation of a server process (Ra's writer `Pid`). `Written` events go to a process, so a
/// restarted server never receives an event meant for its predecessor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId(pub u64);

/// A mem table (one ETS table in Ra). Ids are never reused within a node's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub u64);

/// An entry's opaque payload (Ra's `term_to_iovec(Cmd)`), shared between the mem table, the WAL batch
/// and the segment writer without copying.
pub type Payload = Rc<[u8]>;

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

impl Uid {
    /// A uid from a string (test and scenario convenience).
    pub fn new(name: &str) -> Uid {
        Uid(name.to_owned())
    }

    /// The uid as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
