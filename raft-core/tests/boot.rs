//! The small durable files and the boot sequence around them: the server `config` (fix 6,
//! `config-no-dir-sync`), the names store and pre-init's handling of a registration without a readable
//! config (Ra PR 614, `config-orphan-registration`), the meta store, and seeded corruption of all three
//! files.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::*;
use raft_core::checksum::crc32;
use raft_core::storage::boot::{PreInitReport, load_directory, pre_init};
use raft_core::storage::durable_files::{
    ConfigError, MetaStore, NamesStore, ServerConfig, decode_config, encode_config, read_config, write_config,
};
use raft_core::storage::log::ServerLog;
use raft_core::storage::new_server::NewServerStart;
use raft_core::storage::shared::NodeShared;
use raft_core::storage::{LogEvent, StorageError};
use raft_core::{Bug, Bugs, LogIndex, ProcessId, Term, Uid};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use vfs::{CrashModel, CrashPoint, ErrorKind, FileSystem, OpKind, OpenOptions, SimFs};

fn node(seed: u64, bugs: &Bugs) -> Node {
    let mut n = Node::new(seed, wal_config(1 << 20, bugs.clone()), segment_writer_config(64));
    n.boot_and_recover().unwrap();
    n
}

/// Creates `dir` and makes its entry durable (fsync of the root), as `Writer::start` does.
fn durable_dir(fs: &mut dyn FileSystem, dir: &str) {
    fs.mkdir_all(dir).unwrap();
    let root = fs.open_dir(".").unwrap();
    fs.fsync(root).unwrap();
    fs.close(root).unwrap();
}

/// Starts a brand-new server in Ra's order (register, log init, first entry written, config). Stops at
/// the first error, e.g. a power cut while writing the config.
fn new_server(
    n: &mut Node,
    names: &mut NamesStore,
    name: &str,
    process: u64,
    bugs: &Bugs,
) -> Result<ServerLog, StorageError> {
    let mut out = Vec::new();
    let start = NewServerStart::begin(
        &server_config(name),
        ProcessId(process),
        "",
        &IndexListMachine,
        bugs,
        &mut n.shared,
        names,
        &mut n.fs,
        &mut out,
    )?;
    n.route(out);
    n.run();
    let events: Vec<LogEvent> = n.events.remove(&ProcessId(process)).unwrap_or_default();
    let mut waiting = Some(start);
    for e in &events {
        let mut out = Vec::new();
        let r = waiting.take().unwrap().handle_event(e, bugs, &mut n.shared, names, &mut n.fs, &mut out)?;
        n.route(out);
        match r {
            Ok(log) => return Ok(log),
            Err(still) => waiting = Some(still),
        }
    }
    panic!("{name}'s first entry was never written: {events:?}");
}

/// Node boot after a power loss: the names store into the directory, pre-init, then WAL recovery.
fn reboot(n: &mut Node, bugs: &Bugs) -> (NamesStore, PreInitReport) {
    let mut names = load_directory(&mut n.fs, "", &mut n.shared).unwrap();
    let report = pre_init(&mut n.fs, "", &mut names, &IndexListMachine, bugs, &mut n.shared).unwrap();
    n.boot_and_recover().unwrap();
    (names, report)
}

fn has_name(names: &NamesStore, name: &str) -> bool {
    names.entries().any(|(n, _)| n == name)
}

fn put_file(fs: &mut dyn FileSystem, path: &str, bytes: &[u8]) {
    let fd = fs.open(path, &OpenOptions::create_truncate()).unwrap();
    let mut at = 0;
    while at < bytes.len() {
        at += fs.write(fd, &bytes[at..]).unwrap();
    }
    fs.fsync(fd).unwrap();
    fs.close(fd).unwrap();
}

fn crash(fs: &mut SimFs, model: CrashModel) {
    fs.crash(model);
    fs.power_on();
}

// ---- config ----------------------------------------------------------------------------------------

#[test]
fn config_write_read_round_trip() {
    let mut fs = sim_fs(1);
    durable_dir(&mut fs, "s1");
    assert_eq!(read_config(&mut fs, "s1").unwrap(), Err(ConfigError::Missing));
    assert_eq!(read_config(&mut fs, "nowhere").unwrap(), Err(ConfigError::Missing));
    let mut config = server_config("s1");
    for bugs in [Bugs::none(), Bugs::of(&[Bug::ConfigNoDirSync])] {
        write_config(&mut fs, "s1", &config, &bugs).unwrap();
        assert_eq!(read_config(&mut fs, "s1").unwrap(), Ok(config.clone()));
        assert_eq!(fs.read_dir("s1").unwrap(), vec!["config".to_owned()], "config.tmp renamed away");
        // A rewrite replaces the whole file.
        config.initial_members = vec!["s1".into(), "s2 on node b".into(), "ü-3".into(), String::new()];
        config.machine_version = u32::MAX;
        config.cluster_name = String::new();
        write_config(&mut fs, "s1", &config, &bugs).unwrap();
        assert_eq!(read_config(&mut fs, "s1").unwrap(), Ok(config.clone()));
        config = server_config("s1");
    }
    for c in [server_config("x"), ServerConfig { initial_members: vec![], ..server_config("") }] {
        assert_eq!(decode_config(&encode_config(&c)), Ok(c));
    }
    // With the fix the durable config survives any crash (the directory entry included).
    for seed in 0..16 {
        let mut fs = sim_fs(100 + seed);
        durable_dir(&mut fs, "s1");
        write_config(&mut fs, "s1", &config, &Bugs::none()).unwrap();
        crash(&mut fs, CrashModel::Pessimistic);
        assert_eq!(read_config(&mut fs, "s1").unwrap(), Ok(config.clone()), "seed {seed}");
    }
}

/// Ra's `recovery_with_missing_config_file`: the config is deleted; after a restart pre-init has
/// unregistered the uid, so the server can be started as new. With `config-orphan-registration` it
/// stays registered.
#[test]
fn recovery_with_missing_config_file() {
    for bugs in [Bugs::none(), Bugs::of(&[Bug::ConfigOrphanRegistration])] {
        let uid = Uid::new("s1");
        let mut n = node(2, &bugs);
        let mut names = NamesStore::new();
        durable_dir(&mut n.fs, "s1");
        let log = new_server(&mut n, &mut names, "s1", 1, &bugs).unwrap();
        names.flush(&mut n.fs, "").unwrap();
        drop(log);
        n.fs.unlink("s1/config").unwrap();
        n.power_loss(CrashModel::NoLoss);

        let (mut names, report) = reboot(&mut n, &bugs);
        if bugs.has(Bug::ConfigOrphanRegistration) {
            assert_eq!(report.orphans, vec![(uid.clone(), ConfigError::Missing)]);
            assert!(report.unregistered.is_empty());
            assert!(n.shared.directory.is_registered(&uid));
            assert!(has_name(&names, "s1"));
            continue;
        }
        assert_eq!(report.unregistered, vec![(uid.clone(), ConfigError::Missing)]);
        assert!(report.orphans.is_empty() && report.ready.is_empty());
        assert!(!n.shared.directory.is_registered(&uid));
        assert!(!has_name(&names, "s1"));
        assert!(names.is_dirty(), "the removal is saved at the next auto-save");
        // Started anew.
        let mut log = new_server(&mut n, &mut names, "s1", 2, &bugs).unwrap();
        assert!(n.shared.directory.is_registered(&uid));
        assert!(has_name(&names, "s1"));
        assert_eq!(read_config(&mut n.fs, "s1").unwrap(), Ok(server_config("s1")));
        assert!(log.fetch(LogIndex(0), &n.shared, &mut n.fs).unwrap().is_some());
    }
}

/// Ra's `recovery_with_missing_directory`: a registration without a data directory is removed and the
/// node still boots.
#[test]
fn registration_without_a_data_directory_is_removed() {
    let bugs = Bugs::none();
    let mut n = node(3, &bugs);
    let mut names = NamesStore::new();
    names.insert("ghost", &Uid::new("ghost"));
    durable_dir(&mut n.fs, "s1");
    new_server(&mut n, &mut names, "s1", 1, &bugs).unwrap();
    names.flush(&mut n.fs, "").unwrap();
    n.power_loss(CrashModel::LoseUnsynced);
    let (mut names, report) = reboot(&mut n, &bugs);
    assert_eq!(report.unregistered, vec![(Uid::new("ghost"), ConfigError::Missing)]);
    assert_eq!(report.ready, vec![server_config("s1")]);
    assert!(report.failed.is_empty());
    assert!(!n.shared.directory.is_registered(&Uid::new("ghost")));
    assert!(n.shared.directory.is_registered(&Uid::new("s1")));
    assert_eq!(n.shared.directory.process_of(&Uid::new("s1")), None, "no process until it restarts");
    names.flush(&mut n.fs, "").unwrap();
    n.power_loss(CrashModel::NoLoss);
    let names = NamesStore::load(&mut n.fs, "").unwrap();
    assert_eq!(names.entries().map(|(n, u)| (n.as_str(), u.as_str())).collect::<Vec<_>>(), vec![("s1", "s1")]);
}

/// A config pre-init cannot read for another reason than its absence or corruption (an `EIO`) leaves
/// the server registered and pre-init goes on to the next (Ra's `ra_log_pre_init:pre_init/2` logs the
/// `{error, eio}`; only `enoent` and `parsing` unregister): the server is reported failed, and once the
/// disk reads again it is ready as before.
#[test]
fn a_config_pre_init_cannot_read_keeps_the_server_registered() {
    let bugs = Bugs::none();
    let mut n = node(4, &bugs);
    let mut names = NamesStore::new();
    for (name, process) in [("s1", 1), ("s2", 2)] {
        durable_dir(&mut n.fs, name);
        new_server(&mut n, &mut names, name, process, &bugs).unwrap();
    }
    names.flush(&mut n.fs, "").unwrap();
    n.power_loss(CrashModel::NoLoss);
    n.fs.inject_error(vfs::ErrorRule {
        kind: Some(OpKind::Read),
        path_glob: "s1/config".into(),
        error: ErrorKind::Io,
        after_seq: n.fs.op_seq(),
        times: 1,
    });
    let mut names = load_directory(&mut n.fs, "", &mut n.shared).unwrap();
    let report = pre_init(&mut n.fs, "", &mut names, &IndexListMachine, &bugs, &mut n.shared).unwrap();
    assert!(
        matches!(&report.failed[..], [(uid, StorageError::Fs(f))] if uid.as_str() == "s1" && f.kind == ErrorKind::Io)
    );
    assert!(report.unregistered.is_empty() && report.orphans.is_empty());
    assert_eq!(report.ready, vec![server_config("s2")], "pre-init went on to the next server");
    assert!(n.shared.directory.is_registered(&Uid::new("s1")) && has_name(&names, "s1"));
    assert!(!names.is_dirty(), "nothing to save: no registration changed");
    n.power_loss(CrashModel::NoLoss);
    let (_, report) = reboot(&mut n, &bugs);
    assert_eq!(report.ready, vec![server_config("s1"), server_config("s2")]);
    assert!(report.failed.is_empty());
}

/// Ra's `recovery_with_corrupt_config_file`: an unparsable config is treated like a missing one.
#[test]
fn recovery_with_corrupt_config_file() {
    for bugs in [Bugs::none(), Bugs::of(&[Bug::ConfigOrphanRegistration])] {
        let uid = Uid::new("s1");
        let mut n = node(4, &bugs);
        let mut names = NamesStore::new();
        durable_dir(&mut n.fs, "s1");
        new_server(&mut n, &mut names, "s1", 1, &bugs).unwrap();
        durable_dir(&mut n.fs, "s2");
        new_server(&mut n, &mut names, "s2", 2, &bugs).unwrap();
        names.flush(&mut n.fs, "").unwrap();
        // An incomplete term: no closing brace, no dot.
        put_file(&mut n.fs, "s1/config", b"{incomplete_term_no_dot");
        n.power_loss(CrashModel::NoLoss);

        let (mut names, report) = reboot(&mut n, &bugs);
        assert_eq!(report.ready, vec![server_config("s2")], "the other server is unaffected");
        if bugs.has(Bug::ConfigOrphanRegistration) {
            assert_eq!(report.orphans, vec![(uid.clone(), ConfigError::Unparsable)]);
            assert!(report.unregistered.is_empty());
            assert!(n.shared.directory.is_registered(&uid), "an orphan registration");
            assert!(has_name(&names, "s1"));
        } else {
            assert_eq!(report.unregistered, vec![(uid.clone(), ConfigError::Unparsable)]);
            assert!(report.orphans.is_empty());
            assert!(!n.shared.directory.is_registered(&uid));
            assert!(!has_name(&names, "s1"));
            // Once saved, the removal is durable.
            names.flush(&mut n.fs, "").unwrap();
            n.power_loss(CrashModel::Pessimistic);
            let names = NamesStore::load(&mut n.fs, "").unwrap();
            assert!(!has_name(&names, "s1") && has_name(&names, "s2"));
        }
    }
}

/// Fix 6: a power cut after the config rename. Without the directory fsync the rename may be lost
/// (the server directory itself is durable beforehand); the names store is durable, so pre-init then
/// finds a registration without a config and unregisters it.
#[test]
fn config_no_dir_sync_loses_the_config_on_a_power_cut() {
    let uid = Uid::new("s1");
    let mut missing = [0u32; 2];
    for seed in 0..40 {
        for (b, bugs) in [Bugs::none(), Bugs::of(&[Bug::ConfigNoDirSync])].into_iter().enumerate() {
            let mut n = node(500 + seed, &bugs);
            let mut names = NamesStore::new();
            durable_dir(&mut n.fs, "s1");
            let mut out = Vec::new();
            let start = NewServerStart::begin(
                &server_config("s1"),
                ProcessId(1),
                "",
                &IndexListMachine,
                &bugs,
                &mut n.shared,
                &mut names,
                &mut n.fs,
                &mut out,
            )
            .unwrap();
            n.route(out);
            names.flush(&mut n.fs, "").unwrap();
            n.run();
            let events = n.events.remove(&ProcessId(1)).unwrap();
            let [written] = events.as_slice() else { panic!("{events:?}") };
            let mut out = Vec::new();
            let log = start.handle_event(written, &bugs, &mut n.shared, &mut names, &mut n.fs, &mut out).unwrap();
            assert!(log.is_ok(), "seed {seed}: the server runs");
            assert_eq!(read_config(&mut n.fs, "s1").unwrap(), Ok(server_config("s1")));
            // The power fails right after `write_config` returned.
            n.power_loss(CrashModel::Pessimistic);
            let config = read_config(&mut n.fs, "s1").unwrap();
            let (names, report) = reboot(&mut n, &bugs);
            match config {
                Ok(c) => {
                    assert_eq!(c, server_config("s1"), "seed {seed}");
                    assert_eq!(report.ready, vec![c], "seed {seed}");
                    assert!(n.shared.directory.is_registered(&uid));
                }
                Err(e) => {
                    assert_eq!(e, ConfigError::Missing, "seed {seed}: a config is whole or absent");
                    missing[b] += 1;
                    assert_eq!(report.unregistered, vec![(uid.clone(), ConfigError::Missing)], "seed {seed}");
                    assert!(!n.shared.directory.is_registered(&uid) && !has_name(&names, "s1"));
                }
            }
        }
    }
    assert_eq!(missing[0], 0, "with the directory fsync the config always survives");
    assert!(missing[1] > 0, "without it the config never went missing: {missing:?}");
}

/// The window Ra PR 614 closed: the names store's auto-save made the registration durable, then the
/// power failed as the config was about to be written. Returns the node after reboot.
fn registration_without_config(bugs: &Bugs) -> (Node, NamesStore, PreInitReport) {
    let uid = Uid::new("s1");
    let mut n = node(6, bugs);
    let mut names = NamesStore::new();
    durable_dir(&mut n.fs, "s1");
    let after = n.fs.op_seq();
    n.fs.arm_power_cut(
        CrashPoint::BeforeOp { kind: Some(OpKind::Create), path_glob: "s1/config.tmp".into(), after_seq: after },
        CrashModel::LoseUnsynced,
    );
    let mut out = Vec::new();
    let start = NewServerStart::begin(
        &server_config("s1"),
        ProcessId(1),
        "",
        &IndexListMachine,
        bugs,
        &mut n.shared,
        &mut names,
        &mut n.fs,
        &mut out,
    )
    .unwrap();
    n.route(out);
    names.flush(&mut n.fs, "").unwrap(); // the auto-save fires
    n.run();
    let events = n.events.remove(&ProcessId(1)).unwrap();
    let [written] = events.as_slice() else { panic!("{events:?}") };
    let mut out = Vec::new();
    match start.handle_event(written, bugs, &mut n.shared, &mut names, &mut n.fs, &mut out) {
        Err(e) => assert!(e.is_power_cut(), "{e}"),
        Ok(_) => panic!("the config write was not cut"),
    }
    assert!(n.fs.is_powered_off());
    n.fs.power_on();
    n.shared = NodeShared::new();
    n.events.clear();
    assert_eq!(read_config(&mut n.fs, "s1").unwrap(), Err(ConfigError::Missing));
    assert!(has_name(&NamesStore::load(&mut n.fs, "").unwrap(), "s1"), "the registration is durable");
    assert!(n.shared.directory.registered().next().is_none());
    let (names, report) = reboot(&mut n, bugs);
    assert_eq!(uid, Uid::new("s1"));
    (n, names, report)
}

#[test]
fn registration_without_config_is_removed_at_pre_init() {
    let bugs = Bugs::none();
    let uid = Uid::new("s1");
    let (mut n, mut names, report) = registration_without_config(&bugs);
    assert_eq!(report.unregistered, vec![(uid.clone(), ConfigError::Missing)]);
    assert!(report.orphans.is_empty() && report.ready.is_empty());
    assert!(!n.shared.directory.is_registered(&uid));
    assert!(!has_name(&names, "s1"));
    // It can be started as a new member.
    let mut log = new_server(&mut n, &mut names, "s1", 2, &bugs).unwrap();
    assert!(n.shared.directory.is_registered(&uid));
    assert_eq!(log.last_written(), (LogIndex(0), Term(0)));
    assert!(log.fetch(LogIndex(0), &n.shared, &mut n.fs).unwrap().is_some());
    assert_eq!(read_config(&mut n.fs, "s1").unwrap(), Ok(server_config("s1")));
    // And restarts from its config after the next power loss.
    names.flush(&mut n.fs, "").unwrap();
    n.power_loss(CrashModel::LoseUnsynced);
    let (_, report) = reboot(&mut n, &bugs);
    assert_eq!(report.ready, vec![server_config("s1")]);
    assert!(report.unregistered.is_empty());
}

#[test]
fn config_orphan_registration_can_neither_restart_nor_be_created() {
    let bugs = Bugs::of(&[Bug::ConfigOrphanRegistration]);
    let uid = Uid::new("s1");
    let (mut n, names, report) = registration_without_config(&bugs);
    assert_eq!(report.orphans, vec![(uid.clone(), ConfigError::Missing)]);
    assert!(report.unregistered.is_empty() && report.ready.is_empty());
    // Restart needs the config; creation as new is refused for a registered uid (Ra: `not_new`).
    assert_eq!(read_config(&mut n.fs, "s1").unwrap(), Err(ConfigError::Missing));
    assert!(n.shared.directory.is_registered(&uid));
    assert!(has_name(&names, "s1"));
    // Permanently: the next boot finds the same orphan.
    n.power_loss(CrashModel::Pessimistic);
    let (names, report) = reboot(&mut n, &bugs);
    assert_eq!(report.orphans, vec![(uid.clone(), ConfigError::Missing)]);
    assert!(n.shared.directory.is_registered(&uid));
    assert!(has_name(&names, "s1"));
}

// ---- names and meta stores -------------------------------------------------------------------------

#[test]
fn names_store_is_durable_only_after_flush() {
    for seed in 0..12 {
        let mut fs = sim_fs(700 + seed);
        let (a, b) = (Uid::new("uid-a"), Uid::new("uid-b"));
        let mut names = NamesStore::new();
        assert!(!names.is_dirty());
        let ops = fs.op_seq();
        names.flush(&mut fs, "").unwrap();
        assert_eq!(fs.op_seq(), ops, "a clean store does not write");
        names.insert("a", &a);
        assert!(names.is_dirty());
        crash(&mut fs, CrashModel::NoLoss);
        assert_eq!(NamesStore::load(&mut fs, "").unwrap(), NamesStore::new(), "seed {seed}: never flushed");

        names.flush(&mut fs, "").unwrap();
        assert!(!names.is_dirty());
        crash(&mut fs, CrashModel::Pessimistic);
        let loaded = NamesStore::load(&mut fs, "").unwrap();
        assert_eq!(loaded.entries().collect::<Vec<_>>(), vec![(&"a".to_owned(), &a)], "seed {seed}");
        assert!(!loaded.is_dirty());

        names.insert("b", &b);
        names.remove("a");
        crash(&mut fs, CrashModel::Pessimistic);
        let loaded = NamesStore::load(&mut fs, "").unwrap();
        assert_eq!(loaded.entries().collect::<Vec<_>>(), vec![(&"a".to_owned(), &a)], "seed {seed}: the last flush");

        names.flush(&mut fs, "").unwrap();
        crash(&mut fs, CrashModel::Pessimistic);
        let loaded = NamesStore::load(&mut fs, "").unwrap();
        assert_eq!(loaded.entries().collect::<Vec<_>>(), vec![(&"b".to_owned(), &b)], "seed {seed}");
        names.remove("nobody");
        assert!(!names.is_dirty(), "removing an absent name changes nothing");
    }
}

#[test]
fn meta_store_syncs_term_and_vote_and_persists_last_applied_lazily() {
    for seed in 0..12 {
        let mut fs = sim_fs(800 + seed);
        let (s1, s2) = (Uid::new("s1"), Uid::new("s2"));
        let mut meta = MetaStore::new();
        let fresh = meta.get(&s1);
        assert_eq!((fresh.current_term, fresh.voted_for.clone(), fresh.last_applied), (Term(0), None, LogIndex(0)));

        meta.store_term_and_vote_sync(&mut fs, "", &s1, Term(2), Some("s2".into())).unwrap();
        assert!(!meta.is_dirty(), "durable when it returns");
        crash(&mut fs, CrashModel::Pessimistic);
        let m = MetaStore::load(&mut fs, "").unwrap().get(&s1);
        assert_eq!((m.current_term, m.voted_for.as_deref(), m.last_applied), (Term(2), Some("s2"), LogIndex(0)));

        // Last applied is lazy: lost if the power fails before the auto-save.
        meta.store_last_applied(&s1, LogIndex(10));
        assert!(meta.is_dirty());
        assert_eq!(meta.get(&s1).last_applied, LogIndex(10));
        crash(&mut fs, CrashModel::Pessimistic);
        let m = MetaStore::load(&mut fs, "").unwrap().get(&s1);
        assert_eq!(
            (m.current_term, m.voted_for.as_deref(), m.last_applied),
            (Term(2), Some("s2"), LogIndex(0)),
            "seed {seed}"
        );

        meta.flush(&mut fs, "").unwrap();
        crash(&mut fs, CrashModel::Pessimistic);
        assert_eq!(MetaStore::load(&mut fs, "").unwrap().get(&s1).last_applied, LogIndex(10), "seed {seed}");

        // A synced vote carries whatever else was pending.
        meta.store_last_applied(&s1, LogIndex(12));
        meta.store_term_and_vote_sync(&mut fs, "", &s2, Term(5), None).unwrap();
        crash(&mut fs, CrashModel::Pessimistic);
        let loaded = MetaStore::load(&mut fs, "").unwrap();
        assert_eq!(loaded.get(&s1).last_applied, LogIndex(12));
        assert_eq!(loaded.get(&s1).current_term, Term(2));
        let m2 = loaded.get(&s2);
        assert_eq!((m2.current_term, m2.voted_for, m2.last_applied), (Term(5), None, LogIndex(0)));
        assert_eq!(loaded, MetaStore::load(&mut fs, "").unwrap());

        meta.remove(&s2);
        assert!(meta.is_dirty());
        meta.flush(&mut fs, "").unwrap();
        crash(&mut fs, CrashModel::Pessimistic);
        assert_eq!(MetaStore::load(&mut fs, "").unwrap().get(&s2).current_term, Term(0), "seed {seed}");
    }
}

// ---- seeded corruption -----------------------------------------------------------------------------

const CASES: u64 = 1000;

fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

fn seal(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = magic.to_vec();
    b.extend_from_slice(&crc32(body).to_be_bytes());
    b.extend_from_slice(body);
    b
}

/// Whether `bytes` carry `magic` and a CRC matching their body: a corrupted file passing this is a CRC
/// collision.
fn crc_valid(magic: &[u8; 4], bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == magic && crc32(&bytes[8..]).to_be_bytes() == bytes[4..8]
}

/// One corruption of a sealed file: `(bytes, description, resealed)`; `resealed` files carry a valid
/// CRC over a damaged body, so their parsers must cope with any content.
fn corrupt(rng: &mut ChaCha8Rng, magic: &[u8; 4], original: &[u8]) -> (Vec<u8>, String, bool) {
    let len = original.len();
    let mut bytes = original.to_vec();
    match below(rng, 9) {
        0 => {
            let flips = 1 + below(rng, 8);
            for _ in 0..flips {
                let at = below(rng, len);
                bytes[at] ^= 1 << below(rng, 8);
            }
            (bytes, format!("{flips} bit flips"), false)
        }
        1 => {
            let cut = below(rng, len);
            bytes.truncate(cut);
            (bytes, format!("truncated to {cut}"), false)
        }
        2 => {
            let at = below(rng, len);
            let end = (at + 1 + below(rng, 32)).min(len);
            for b in &mut bytes[at..end] {
                *b = rng.next_u32() as u8;
            }
            (bytes, format!("random bytes at {at}..{end}"), false)
        }
        3 => {
            let at = below(rng, len);
            let end = (at + 1 + below(rng, 64)).min(len);
            bytes[at..end].fill(0);
            (bytes, format!("zeroed {at}..{end}"), false)
        }
        4 => {
            let extra = 1 + below(rng, 16);
            bytes.extend((0..extra).map(|_| rng.next_u32() as u8));
            (bytes, format!("{extra} garbage bytes appended"), false)
        }
        5 => {
            bytes[below(rng, 4)] ^= 1 + below(rng, 255) as u8;
            (bytes, "bad magic".into(), false)
        }
        6 => (Vec::new(), "empty".into(), false),
        7 => {
            let body: Vec<u8> = (0..below(rng, 64)).map(|_| rng.next_u32() as u8).collect();
            (seal(magic, &body), format!("resealed random body of {} bytes", body.len()), true)
        }
        _ => {
            let mut body = original[8..].to_vec();
            match below(rng, 3) {
                0 if !body.is_empty() => {
                    let at = below(rng, body.len());
                    body[at] ^= 1 << below(rng, 8);
                }
                1 if !body.is_empty() => body.truncate(below(rng, body.len())),
                _ => body.extend((0..1 + below(rng, 8)).map(|_| rng.next_u32() as u8)),
            }
            (seal(magic, &body), "resealed damaged body".into(), true)
        }
    }
}

/// Runs `f`, turning a panic into a failure that names the case.
fn no_panic<T>(case: u64, what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("case {case} ({what}) panicked: {msg}")
        }
    }
}

/// Tallies of a corruption run.
#[derive(Debug, Default)]
struct Tally {
    correct: u32,
    rejected: u32,
    resealed_other: u32,
    collisions: Vec<String>,
}

impl Tally {
    fn finish(self, file: &str) {
        // Deterministic seeds: a collision here is reproducible, and it is a CRC-32 collision, not a
        // parser bug (the corrupted bytes carried a matching CRC); change the seeds if one ever shows.
        assert!(self.collisions.is_empty(), "{file}: CRC-32 collisions: {:?}", self.collisions);
        assert!(self.rejected > CASES as u32 / 2, "{file}: {self:?}");
        assert!(self.correct > 0, "{file}: {self:?}");
    }
}

#[test]
fn corrupt_config_files_never_panic() {
    let config = ServerConfig {
        initial_members: vec!["s1".into(), "s2@node-b".into(), "s3@node-c".into()],
        ..server_config("s1")
    };
    let original = encode_config(&config);
    let mut fs = sim_fs(9);
    durable_dir(&mut fs, "s1");
    let mut tally = Tally::default();
    for case in 0..CASES {
        let mut rng = ChaCha8Rng::seed_from_u64(0xc0f1 + case);
        let (bytes, what, resealed) = corrupt(&mut rng, b"RACF", &original);
        put_file(&mut fs, "s1/config", &bytes);
        let read = no_panic(case, &what, || read_config(&mut fs, "s1")).unwrap();
        // Pre-init sees the same: ready with the config, or the registration removed.
        let mut shared = NodeShared::new();
        let mut names = NamesStore::new();
        names.insert("s1", &Uid::new("s1"));
        let report =
            no_panic(case, &what, || pre_init(&mut fs, "", &mut names, &IndexListMachine, &Bugs::none(), &mut shared))
                .unwrap();
        match &read {
            Ok(c) if *c == config => {
                tally.correct += 1;
                assert_eq!(report.ready, vec![config.clone()], "case {case} ({what})");
            }
            Ok(other) if resealed => {
                tally.resealed_other += 1;
                assert_eq!(report.ready, vec![other.clone()], "case {case} ({what})");
            }
            Ok(other) => {
                assert!(crc_valid(b"RACF", &bytes), "case {case} ({what}): the CRC check let {other:?} through");
                tally.collisions.push(format!("case {case} ({what}) read as {other:?}"));
            }
            Err(e) => {
                assert!(matches!(e, ConfigError::Unparsable | ConfigError::Missing), "case {case}");
                tally.rejected += 1;
                assert_eq!(report.unregistered, vec![(Uid::new("s1"), e.clone())], "case {case} ({what})");
                assert!(!has_name(&names, "s1"));
            }
        }
    }
    tally.finish("config");
}

#[test]
fn corrupt_names_files_never_panic() {
    let mut fs = sim_fs(10);
    let mut names = NamesStore::new();
    for (name, uid) in [("s1", "uid-1"), ("queue/ü", "uid-2"), ("", "uid-3"), ("s4", "")] {
        names.insert(name, &Uid::new(uid));
    }
    names.flush(&mut fs, "").unwrap();
    let original_store = NamesStore::load(&mut fs, "").unwrap();
    assert_eq!(original_store.entries().count(), 4);
    let original = fs.read_file("names").unwrap();
    let mut tally = Tally::default();
    for case in 0..CASES {
        let mut rng = ChaCha8Rng::seed_from_u64(0x4a3e + case);
        let (bytes, what, resealed) = corrupt(&mut rng, b"RANM", &original);
        put_file(&mut fs, "names", &bytes);
        let loaded = no_panic(case, &what, || NamesStore::load(&mut fs, "")).unwrap();
        // And the directory built from it.
        let mut shared = NodeShared::new();
        let dir = no_panic(case, &what, || load_directory(&mut fs, "", &mut shared)).unwrap();
        assert_eq!(dir, loaded);
        assert_eq!(shared.directory.registered().count(), loaded.entries().count());
        if loaded == original_store {
            tally.correct += 1;
        } else if loaded == NamesStore::new() {
            tally.rejected += 1;
        } else if resealed {
            tally.resealed_other += 1;
        } else {
            assert!(crc_valid(b"RANM", &bytes), "case {case} ({what}): the CRC check let {loaded:?} through");
            tally.collisions.push(format!("case {case} ({what}) loaded as {loaded:?}"));
        }
    }
    tally.finish("names");
}

#[test]
fn corrupt_meta_files_never_panic() {
    let mut fs = sim_fs(11);
    let mut meta = MetaStore::new();
    meta.store_term_and_vote_sync(&mut fs, "", &Uid::new("s1"), Term(7), Some("s2".into())).unwrap();
    meta.store_term_and_vote_sync(&mut fs, "", &Uid::new("s2"), Term(u64::MAX), None).unwrap();
    meta.store_last_applied(&Uid::new("s1"), LogIndex(42));
    meta.store_last_applied(&Uid::new("s3"), LogIndex(1));
    meta.flush(&mut fs, "").unwrap();
    let original_store = MetaStore::load(&mut fs, "").unwrap();
    assert_eq!(original_store.get(&Uid::new("s1")).last_applied, LogIndex(42));
    let original = fs.read_file("meta").unwrap();
    let mut tally = Tally::default();
    for case in 0..CASES {
        let mut rng = ChaCha8Rng::seed_from_u64(0x3e7a + case);
        let (bytes, what, resealed) = corrupt(&mut rng, b"RAMT", &original);
        put_file(&mut fs, "meta", &bytes);
        let loaded = no_panic(case, &what, || MetaStore::load(&mut fs, "")).unwrap();
        if loaded == original_store {
            tally.correct += 1;
        } else if loaded == MetaStore::new() {
            tally.rejected += 1;
        } else if resealed {
            tally.resealed_other += 1;
        } else {
            assert!(crc_valid(b"RAMT", &bytes), "case {case} ({what}): the CRC check let {loaded:?} through");
            tally.collisions.push(format!("case {case} ({what}) loaded as {loaded:?}"));
        }
    }
    tally.finish("meta");
}

/// A missing names or meta file loads empty (a node that never flushed them); an unreadable one (a
/// directory in its place, an I/O error) is an error, not a panic and not an empty store: Ra's
/// `{ok, _} = dets:open_file(…)` crashes the boot rather than forget registrations, terms and votes.
#[test]
fn missing_stores_load_empty_and_unreadable_ones_stop_the_boot() {
    let mut fs = sim_fs(12);
    assert_eq!(NamesStore::load(&mut fs, "").unwrap(), NamesStore::new());
    assert_eq!(MetaStore::load(&mut fs, "").unwrap(), MetaStore::new());
    fs.mkdir_all("names").unwrap();
    fs.mkdir_all("meta").unwrap();
    let is_a_directory = |e: StorageError| matches!(e, StorageError::Fs(f) if f.kind == ErrorKind::IsADirectory);
    assert!(is_a_directory(NamesStore::load(&mut fs, "").unwrap_err()));
    assert!(is_a_directory(MetaStore::load(&mut fs, "").unwrap_err()));
    // A config that cannot be read is the filesystem's error (Ra's `ra_lib:consult` passes `eisdir` on).
    fs.mkdir_all("s1/config").unwrap();
    assert!(is_a_directory(read_config(&mut fs, "s1").unwrap_err()));
    fs.rmdir("names").unwrap();
    write_names(&mut fs);
    fs.inject_error(vfs::ErrorRule {
        kind: Some(vfs::OpKind::Read),
        path_glob: "names".into(),
        error: ErrorKind::Io,
        after_seq: 0,
        times: 1,
    });
    assert!(matches!(NamesStore::load(&mut fs, ""), Err(StorageError::Fs(f)) if f.kind == ErrorKind::Io));
    assert!(NamesStore::load(&mut fs, "").is_ok(), "a transient error: the next boot reads it");
}

/// A names store with one registration, flushed.
fn write_names(fs: &mut SimFs) {
    let mut names = NamesStore::new();
    names.insert("s1", &raft_core::Uid("s1".into()));
    names.flush(fs, "").unwrap();
}
