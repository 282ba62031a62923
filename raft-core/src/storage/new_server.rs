//! The first steps of a brand-new server: registration and the first log entry (Ra's `ra_server_proc`
//! `do_init` for a new server, with `ra_log:init`'s `maybe_append_first_entry`).
//!
//! Key invariant: a server is registered **before** any of its entries reach the WAL. The segment
//! writer drops every mem table of an unregistered uid when it flushes a WAL file, so an entry written
//! before registration can vanish if a roll-over (driven by any other server's writes) lands in between.
//! PR 589 fix 5 moved registration after log init and was reverted by Ra PR 614 for exactly that
//! reason; the `register-after-init` switch restores the fix-5 order. Storage II adds the rest of log
//! init (segment refs, snapshot, config); this module is the part whose order storage I depends on.

use crate::bugs::{Bug, Bugs};
use crate::storage::mem_table::{InsertError, MemTable};
use crate::storage::shared::NodeShared;
use crate::storage::wal::{WalAppend, WalMsg};
use crate::storage::{Envelope, LogEvent, StorageError, join};
use crate::types::{LogIndex, Payload, ProcessId, Term, Uid};
use vfs::FileSystem;

/// A new server between its first log write and that write's `Written`.
#[derive(Debug)]
pub struct NewServerStart {
    uid: Uid,
    name: String,
    process: ProcessId,
    registered: bool,
    mem_table: MemTable,
}

impl NewServerStart {
    /// Registers (unless `register-after-init`), creates the server directory, inserts the first entry
    /// (`index 0`, term 0, empty payload) into a fresh mem table and casts it to the WAL.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        uid: &Uid,
        name: &str,
        process: ProcessId,
        data_dir: &str,
        bugs: &Bugs,
        shared: &mut NodeShared,
        fs: &mut dyn FileSystem,
        out: &mut Vec<Envelope>,
    ) -> Result<NewServerStart, StorageError> {
        let register_first = !bugs.has(Bug::RegisterAfterInit);
        if register_first {
            shared.directory.register(uid, name, Some(process));
        }
        fs.mkdir_all(&join(data_dir, uid.as_str()))?;
        let mut mem_table = shared.mem_tables.mem_table_please(uid);
        let payload: Payload = Payload::from(&[][..]);
        match mem_table.insert(&mut shared.mem_tables, LogIndex(0), Term(0), payload.clone()) {
            Ok(()) => {}
            Err(InsertError::TableGone(tid)) => return Err(StorageError::TableGone { tid }),
            Err(e) => panic!("a brand-new log refused its first entry: {e:?}"),
        }
        out.push(Envelope::Wal(WalMsg::Append(WalAppend {
            uid: uid.clone(),
            process,
            tid: mem_table.tid(),
            prev_index: None,
            index: LogIndex(0),
            term: Term(0),
            payload,
        })));
        Ok(NewServerStart { uid: uid.clone(), name: name.to_owned(), process, registered: register_first, mem_table })
    }

    /// Handles a log event while waiting; returns `true` once the first entry is written (and, under
    /// `register-after-init`, the server registered only now).
    pub fn handle_event(&mut self, event: &LogEvent, shared: &mut NodeShared) -> bool {
        let LogEvent::Written { uid, seq, .. } = event else { return false };
        if *uid != self.uid || !seq.contains(LogIndex(0)) {
            return false;
        }
        if !self.registered {
            shared.directory.register(&self.uid, &self.name, Some(self.process));
            self.registered = true;
        }
        true
    }

    /// The server's mem table handle (for its log to continue with).
    pub fn into_mem_table(self) -> MemTable {
        self.mem_table
    }
}
