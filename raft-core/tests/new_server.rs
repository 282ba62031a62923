//! A new server's first entry versus a WAL roll-over driven by another server (Ra PR 589 fix 5 and its
//! revert in PR 614; switch `register-after-init`).

mod common;

use common::*;
use raft_core::storage::LogEvent;
use raft_core::storage::new_server::NewServerStart;
use raft_core::storage::wal::WalMsg;
use raft_core::{Bug, Bugs, LogIndex, ProcessId, Uid};

/// s2 starts while s1 writes; s2's `Written` is handled only after a roll-over and the segment
/// writer's flush of the file holding s2's first entry. Returns whether s2's first entry survived.
fn first_entry_survives_roll_over(bugs: Bugs) -> bool {
    let mut n = Node::new(7, wal_config(1 << 20, bugs.clone()), segment_writer_config(4096));
    n.boot_and_recover().unwrap();
    let mut s1 = Writer::start(&mut n, "s1", 1);
    s1.write_range(&mut n, 1, 10, 1);
    let uid = Uid::new("s2");
    let mut out = Vec::new();
    let mut s2 =
        NewServerStart::begin(&uid, "s2", ProcessId(2), "", &bugs, &mut n.shared, &mut n.fs, &mut out).unwrap();
    n.route(out);
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    assert_eq!(n.segment_writer.stats().wal_files_done, 1, "the roll-over's file was flushed");
    // Only now does s2 get to handle its events.
    let events: Vec<LogEvent> = n.events.get(&ProcessId(2)).cloned().unwrap_or_default();
    assert!(events.iter().any(|e| s2.handle_event(e, &mut n.shared)), "s2's first entry was written");
    assert!(n.shared.directory.is_registered(&uid));
    let mt = s2.into_mem_table();
    let in_table = mt.lookup(&n.shared.mem_tables, LogIndex(0));
    let in_segment = segment_contents(&mut n, &uid).contains_key(&0);
    match in_table {
        Ok(Some(_)) => true,
        // The segment writer flushed it (and notified s2): it lives in a segment now.
        Ok(None) => in_segment,
        Err(_gone) => {
            assert!(!in_segment, "a dropped table was not flushed");
            false
        }
    }
}

#[test]
fn registered_before_log_init_keeps_first_entry() {
    assert!(first_entry_survives_roll_over(Bugs::none()));
}

#[test]
fn register_after_init_loses_first_entry_to_a_roll_over() {
    assert!(!first_entry_survives_roll_over(Bugs::of(&[Bug::RegisterAfterInit])));
}

#[test]
fn register_after_init_is_harmless_without_a_roll_over() {
    // The switch alone, with no roll-over in the window, changes nothing: the failure needs the race.
    for bugs in [Bugs::none(), Bugs::of(&[Bug::RegisterAfterInit])] {
        let mut n = Node::new(8, wal_config(1 << 20, bugs.clone()), segment_writer_config(4096));
        n.boot_and_recover().unwrap();
        let uid = Uid::new("s2");
        let mut out = Vec::new();
        let mut s2 =
            NewServerStart::begin(&uid, "s2", ProcessId(2), "", &bugs, &mut n.shared, &mut n.fs, &mut out).unwrap();
        n.route(out);
        n.run();
        let events: Vec<LogEvent> = n.events.get(&ProcessId(2)).cloned().unwrap_or_default();
        assert!(events.iter().any(|e| s2.handle_event(e, &mut n.shared)));
        let mt = s2.into_mem_table();
        assert!(mt.lookup(&n.shared.mem_tables, LogIndex(0)).unwrap().is_some());
    }
}
