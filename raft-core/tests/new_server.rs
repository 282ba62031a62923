//! A new server's first entry versus a WAL roll-over driven by another server (Ra PR 589 fix 5 and its
//! revert in PR 614; switch `register-after-init`).

mod common;

use common::*;
use raft_core::storage::durable_files::NamesStore;
use raft_core::storage::log::ServerLog;
use raft_core::storage::messages::WalMsg;
use raft_core::storage::new_server::NewServerStart;
use raft_core::storage::{LogEvent, StorageError};
use raft_core::{Bug, Bugs, LogIndex, ProcessId};

/// Starts s2 as a new server; lets the node run `between` before s2 handles its events.
fn start_s2(
    n: &mut Node,
    bugs: &Bugs,
    names: &mut NamesStore,
    between: impl FnOnce(&mut Node),
) -> Result<ServerLog, StorageError> {
    let mut out = Vec::new();
    let start = NewServerStart::begin(
        &server_config("s2"),
        ProcessId(2),
        "",
        &IndexListMachine,
        bugs,
        &mut n.shared,
        names,
        &mut n.fs,
        &mut out,
    )
    .unwrap();
    assert!(start.report().brand_new);
    n.route(out);
    between(n);
    n.run();
    let events: Vec<LogEvent> = n.events.remove(&ProcessId(2)).unwrap_or_default();
    let mut waiting = Some(start);
    let mut log = None;
    for e in &events {
        let mut out = Vec::new();
        match waiting.take().unwrap().handle_event(e, bugs, &mut n.shared, names, &mut n.fs, &mut out)? {
            Ok(l) => {
                log = Some(l);
                break;
            }
            Err(still) => waiting = Some(still),
        }
    }
    Ok(log.expect("s2's first entry was written"))
}

/// s2 starts while s1 writes and a roll-over's flush lands before s2 handles its `Written`. Returns
/// what reading s2's first entry gives afterwards.
fn first_entry_after_roll_over(bugs: Bugs) -> Result<bool, StorageError> {
    let mut n = Node::new(7, wal_config(1 << 20, bugs.clone()), segment_writer_config(4096));
    n.boot_and_recover().unwrap();
    let mut names = NamesStore::new();
    let mut s1 = Writer::start(&mut n, "s1", 1);
    s1.write_range(&mut n, 1, 10, 1);
    let mut log = start_s2(&mut n, &bugs, &mut names, |n| n.send_wal(WalMsg::ForceRollOver))?;
    assert_eq!(n.segment_writer.stats().wal_files_done, 1, "the roll-over's file was flushed");
    assert!(n.shared.directory.is_registered(log.uid()));
    assert!(names.entries().any(|(name, _)| name == "s2"));
    Ok(log.fetch(LogIndex(0), &n.shared, &mut n.fs)?.is_some())
}

#[test]
fn registered_before_log_init_keeps_first_entry() {
    assert_eq!(first_entry_after_roll_over(Bugs::none()), Ok(true));
}

#[test]
fn register_after_init_loses_first_entry_to_a_roll_over() {
    // The segment writer dropped the unregistered uid's tables: the server crashes on its next
    // mem-table access — handling its first `Written` (Ra: badarg in `fetch_term`).
    assert!(matches!(
        first_entry_after_roll_over(Bugs::of(&[Bug::RegisterAfterInit])),
        Err(StorageError::TableGone { .. })
    ));
}

#[test]
fn register_after_init_is_harmless_without_a_roll_over() {
    // The switch alone, with no roll-over in the window, changes nothing: the failure needs the race.
    for bugs in [Bugs::none(), Bugs::of(&[Bug::RegisterAfterInit])] {
        let mut n = Node::new(8, wal_config(1 << 20, bugs.clone()), segment_writer_config(4096));
        n.boot_and_recover().unwrap();
        let mut names = NamesStore::new();
        let mut log = start_s2(&mut n, &bugs, &mut names, |_| {}).unwrap();
        assert!(log.fetch(LogIndex(0), &n.shared, &mut n.fs).unwrap().is_some());
        assert_eq!(log.last_written().0, LogIndex(0));
        use vfs::FileSystem;
        assert!(n.fs.exists("s2/config").unwrap(), "config written after the first entry");
    }
}
