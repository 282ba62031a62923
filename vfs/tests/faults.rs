//! Faults besides the crash model: crash points, injected ENOSPC/EIO, fsync failure with fsyncgate
//! semantics, capacity exhaustion, media faults as removable overlays, and the op log they are named by.

mod common;

use common::{file_in, fsync_dir, sim, write_file};
use vfs::{
    CrashModel, CrashPoint, ErrorKind, ErrorRule, FaultEvent, FileSystem, MediaFaultKind, OpKind, OpenOptions, SimFs,
    SimFsConfig,
};

fn file(fs: &SimFs, path: &str) -> Option<Vec<u8>> {
    file_in(&fs.tree(), path)
}

#[test]
fn a_power_cut_after_op_k_returns_that_result_and_fails_everything_after() {
    let mut fs = sim(1);
    write_file(&mut fs, "f", b"durable", true);
    fsync_dir(&mut fs, "/");
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    let next = fs.op_seq() + 1;
    fs.arm_power_cut(CrashPoint::AfterOp { seq: next }, CrashModel::LoseUnsynced);
    assert_eq!(fs.pwrite(fd, 0, b"UNSYNC").unwrap(), 6, "op k itself completes");
    assert!(fs.is_powered_off());
    assert_eq!(fs.fsync(fd).unwrap_err().kind, ErrorKind::PoweredOff);
    assert_eq!(fs.read_file("f").unwrap_err().kind, ErrorKind::PoweredOff);
    let cuts = fs.take_power_cuts();
    assert_eq!(cuts.len(), 1);
    assert_eq!(cuts[0].seq, next);
    fs.power_on();
    assert_eq!(fs.read_file("f").unwrap(), b"durable");
    assert_eq!(fs.fsync(fd).unwrap_err().kind, ErrorKind::BadDescriptor, "handles died with the power");
}

/// Sets up a WAL and a segment; returns the sequence number after setup.
fn wal_and_segment(fs: &mut SimFs) -> u64 {
    fs.mkdir_all("wal").unwrap();
    fs.mkdir_all("uid").unwrap();
    fs.sync().unwrap();
    write_file(fs, "wal/0000000000000001.wal", b"entries", true);
    fsync_dir(fs, "wal");
    fs.op_seq()
}

#[test]
fn a_power_cut_before_the_first_matching_op_prevents_it() {
    let mut fs = sim(2);
    let start = wal_and_segment(&mut fs);
    fs.arm_power_cut(
        CrashPoint::BeforeOp { kind: Some(OpKind::Unlink), path_glob: "*.wal".into(), after_seq: start },
        CrashModel::NoLoss,
    );
    write_file(&mut fs, "uid/0000000000000001.segment", b"entries", true);
    fsync_dir(&mut fs, "uid");
    assert!(!fs.is_powered_off(), "no unlink of a .wal yet");
    let err = fs.unlink("wal/0000000000000001.wal").unwrap_err();
    assert_eq!(err.kind, ErrorKind::PoweredOff);
    let cut = &fs.take_power_cuts()[0];
    assert!(cut.trigger.contains("unlink") && cut.trigger.contains("wal/0000000000000001.wal"), "{}", cut.trigger);
    assert_eq!((cut.kind, cut.path.as_str(), cut.seq), (OpKind::Unlink, "wal/0000000000000001.wal", fs.op_seq()));
    fs.power_on();
    assert_eq!(file(&fs, "wal/0000000000000001.wal"), Some(b"entries".to_vec()), "the unlink never happened");
    assert_eq!(file(&fs, "uid/0000000000000001.segment"), Some(b"entries".to_vec()));
    let last = fs.ops().last().unwrap();
    assert_eq!((last.kind, last.result), (OpKind::Unlink, Err(ErrorKind::PoweredOff)));
}

#[test]
fn a_crash_point_only_matches_after_its_sequence_number() {
    let mut fs = sim(3);
    fs.mkdir("d").unwrap();
    let first = fs.op_seq();
    fs.mkdir("d/x").unwrap();
    fs.arm_power_cut(
        CrashPoint::BeforeOp { kind: Some(OpKind::Mkdir), path_glob: "d/*".into(), after_seq: first + 1 },
        CrashModel::NoLoss,
    );
    fs.mkdir("e").unwrap();
    assert!(!fs.is_powered_off(), "`e` does not match d/*");
    assert_eq!(fs.mkdir("d/y").unwrap_err().kind, ErrorKind::PoweredOff);
}

#[test]
fn rename_targets_match_crash_points_too() {
    let mut fs = sim(4);
    write_file(&mut fs, "config.tmp", b"c", true);
    fs.arm_power_cut(
        CrashPoint::BeforeOp { kind: Some(OpKind::Rename), path_glob: "config".into(), after_seq: 0 },
        CrashModel::NoLoss,
    );
    assert_eq!(fs.rename("config.tmp", "config").unwrap_err().kind, ErrorKind::PoweredOff);
}

#[test]
fn a_cut_after_a_matching_call_lets_that_call_happen_and_nothing_after() {
    // The config idiom without its directory fsync: the cut lands between the rename and anything else.
    let mut fs = sim(6);
    fs.mkdir("uid").unwrap();
    fsync_dir(&mut fs, "/");
    write_file(&mut fs, "uid/config.tmp", b"c", true);
    fsync_dir(&mut fs, "uid");
    fs.arm_power_cut(
        CrashPoint::AfterMatchingOp { kind: Some(OpKind::Rename), path_glob: "uid/config".into(), after_seq: 0 },
        CrashModel::LoseUnsynced,
    );
    fs.rename("uid/config.tmp", "uid/config").expect("the rename itself completes");
    assert!(fs.is_powered_off());
    assert_eq!(fs.mkdir("uid/next").unwrap_err().kind, ErrorKind::PoweredOff, "everything after fails");
    let cut = &fs.take_power_cuts()[0];
    assert!(cut.trigger.contains("rename") && cut.trigger.contains("uid/config"), "{}", cut.trigger);
    fs.power_on();
    assert_eq!(file(&fs, "uid/config"), None, "the unsynced rename is lost");
    assert_eq!(file(&fs, "uid/config.tmp"), Some(b"c".to_vec()));
}

#[test]
fn a_recorded_cut_replays_exactly_and_a_mismatch_is_reported() {
    let run = |fs: &mut SimFs| {
        let start = wal_and_segment(fs);
        let fd = fs.open("wal/0000000000000001.wal", &OpenOptions::read_write()).unwrap();
        for i in 0..20u8 {
            fs.append(fd, &[i; 300]).unwrap();
        }
        start
    };
    let mut original = sim(5);
    let start = run(&mut original);
    let point = CrashPoint::AfterOp { seq: start + 15 };
    original.arm_power_cut(point.clone(), CrashModel::Pessimistic);
    let fd = original.open("wal/0000000000000001.wal", &OpenOptions::read_write()).unwrap();
    let _ = original.append(fd, b"more");
    let decisions = original.take_power_cuts().remove(0).decisions;

    let mut replay = sim(999); // another seed: only the decisions decide
    run(&mut replay);
    replay.arm_power_cut_replay(point.clone(), decisions.clone());
    let fd = replay.open("wal/0000000000000001.wal", &OpenOptions::read_write()).unwrap();
    let _ = replay.append(fd, b"more");
    let cut = replay.take_power_cuts().remove(0);
    assert_eq!(cut.replay_mismatch, None);
    assert_eq!(cut.decisions, decisions);
    assert_eq!(original.tree(), replay.tree());

    // A different history: the decisions name operations that are not pending.
    let mut other = sim(5);
    other.arm_power_cut_replay(CrashPoint::AfterOp { seq: 3 }, decisions);
    other.mkdir("a").unwrap();
    other.mkdir("b").unwrap();
    other.mkdir("c").unwrap();
    assert!(other.take_power_cuts()[0].replay_mismatch.is_some());
}

#[test]
fn injected_enospc_fails_matching_writes_without_changing_anything() {
    let mut fs = sim(6);
    write_file(&mut fs, "a.wal", b"", true);
    write_file(&mut fs, "b.segment", b"", true);
    fs.inject_error(ErrorRule {
        kind: Some(OpKind::Write),
        path_glob: "*.wal".into(),
        error: ErrorKind::NoSpace,
        after_seq: 0,
        times: 2,
    });
    let wal = fs.open("a.wal", &OpenOptions::read_write()).unwrap();
    let seg = fs.open("b.segment", &OpenOptions::read_write()).unwrap();
    assert_eq!(fs.write(wal, b"x").unwrap_err().kind, ErrorKind::NoSpace);
    assert_eq!(fs.write(seg, b"y").unwrap(), 1, "other files are unaffected");
    assert_eq!(fs.append(wal, b"x").unwrap_err().kind, ErrorKind::NoSpace);
    assert_eq!(fs.write(wal, b"z").unwrap(), 1, "the rule is spent");
    assert_eq!(fs.read_file("a.wal").unwrap(), b"z");
    let injected = fs.take_fault_events().iter().filter(|e| matches!(e, FaultEvent::ErrorInjected { .. })).count();
    assert_eq!(injected, 2);
    fs.check_invariants().unwrap();
}

#[test]
fn injected_eio_on_reads() {
    let mut fs = sim(7);
    write_file(&mut fs, "f", b"data", true);
    fs.inject_error(ErrorRule {
        kind: Some(OpKind::Read),
        path_glob: "f".into(),
        error: ErrorKind::Io,
        after_seq: 0,
        times: 1,
    });
    assert_eq!(fs.read_file("f").unwrap_err().kind, ErrorKind::Io);
    assert_eq!(fs.read_file("f").unwrap(), b"data");
}

#[test]
fn fsyncgate_a_failed_fsync_loses_data_yet_the_retry_succeeds() {
    let mut fs = sim(8);
    write_file(&mut fs, "f", b"old-old-old", true);
    fsync_dir(&mut fs, "/");
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, 0, b"NEW").unwrap();
    fs.inject_error(ErrorRule {
        kind: Some(OpKind::Fsync),
        path_glob: "f".into(),
        error: ErrorKind::Io,
        after_seq: 0,
        times: 1,
    });
    assert_eq!(fs.fsync(fd).unwrap_err().kind, ErrorKind::Io);
    assert_eq!(fs.pending_count(), 0, "the failed pages are marked clean");
    fs.fsync(fd).unwrap();
    // The page cache still shows the write the disk never got…
    assert_eq!(fs.read_file("f").unwrap(), b"NEW-old-old");
    let events = fs.take_fault_events();
    assert!(events.iter().any(|e| matches!(e, FaultEvent::SyncFailed { lost, .. } if !lost.is_empty())), "{events:?}");
    // …until the cache is dropped, or the power goes, even with a model that keeps everything pending.
    fs.drop_caches();
    assert_eq!(fs.read_file("f").unwrap(), b"old-old-old");
    fs.crash(CrashModel::NoLoss);
    assert_eq!(file(&fs, "f"), Some(b"old-old-old".to_vec()));
}

#[test]
fn a_failed_directory_fsync_forgets_names() {
    let mut fs = sim(9);
    fs.mkdir("d").unwrap();
    fs.sync().unwrap();
    write_file(&mut fs, "d/f", b"data", true);
    fs.inject_error(ErrorRule {
        kind: Some(OpKind::FsyncDir),
        path_glob: "d".into(),
        error: ErrorKind::Io,
        after_seq: 0,
        times: 1,
    });
    let dir = fs.open_dir("d").unwrap();
    assert_eq!(fs.fsync(dir).unwrap_err().kind, ErrorKind::Io);
    fs.fsync(dir).unwrap();
    assert!(fs.tree().contains_key("d/f"), "the cache still has the name");
    fs.crash(CrashModel::NoLoss);
    assert!(!fs.tree().contains_key("d/f"), "the disk never got it");
}

#[test]
fn capacity_exhaustion_is_enospc_and_freeing_space_helps() {
    let mut fs = SimFs::new(SimFsConfig {
        seed: 1,
        sector_size: 512,
        capacity_bytes: 4 * 4096,
        max_file_size: 1 << 44,
        record_ops: true,
    });
    let fd = fs.open("big", &OpenOptions::create()).unwrap();
    fs.pwrite(fd, 0, &[1; 3 * 4096]).unwrap();
    assert_eq!(fs.pwrite(fd, 3 * 4096, &[1; 2 * 4096]).unwrap_err().kind, ErrorKind::NoSpace);
    assert_eq!(fs.fallocate(fd, vfs::FallocateMode::KeepSize, 0, 8 * 4096).unwrap_err().kind, ErrorKind::NoSpace);
    fs.pwrite(fd, 0, &[2; 4096]).unwrap(); // rewriting allocated pages needs no space
    fs.close(fd).unwrap();
    fs.unlink("big").unwrap();
    fs.collect_garbage();
    assert_eq!(fs.used_bytes(), 3 * 4096, "a crash could still bring the file back");
    fsync_dir(&mut fs, "/");
    fs.collect_garbage();
    assert_eq!(fs.used_bytes(), 0, "space returns once the unlink is durable");
    write_file(&mut fs, "small", &[3; 4 * 4096], false);
    fs.check_invariants().unwrap();
}

#[test]
fn a_disk_filled_by_others_refuses_new_pages_until_space_returns() {
    let mut fs = sim(11);
    let fd = fs.open("wal", &OpenOptions::create()).unwrap();
    fs.pwrite(fd, 0, &[1; 4096]).unwrap();
    fs.set_capacity_bytes(fs.used_bytes());
    assert_eq!(fs.pwrite(fd, 4096, &[1; 10]).unwrap_err().kind, ErrorKind::NoSpace);
    fs.pwrite(fd, 100, &[2; 10]).unwrap(); // an allocated page takes no more space
    fs.fsync(fd).unwrap();
    fs.set_capacity_bytes(1 << 30);
    fs.pwrite(fd, 4096, &[1; 10]).unwrap();
    fs.check_invariants().unwrap();
}

#[test]
fn paused_error_rules_spend_nothing_and_removed_ones_are_gone() {
    let mut fs = sim(12);
    write_file(&mut fs, "a", b"x", true);
    let rule = |path: &str| vfs::ErrorRule {
        kind: Some(OpKind::Read),
        path_glob: path.into(),
        error: ErrorKind::Io,
        after_seq: 0,
        times: 1,
    };
    fs.inject_error(rule("a"));
    fs.inject_error(rule("b"));
    fs.pause_error_rules(true);
    assert_eq!(fs.read_file("a").unwrap(), b"x");
    fs.pause_error_rules(false);
    assert_eq!(fs.read_file("a").unwrap_err().kind, ErrorKind::Io, "the paused read spent nothing");
    fs.remove_error_rules(|r| r.path_glob == "b");
    write_file(&mut fs, "b", b"y", true);
    assert_eq!(fs.read_file("b").unwrap(), b"y");
}

#[test]
fn a_failed_directory_fsync_can_shut_the_filesystem_down_until_power_is_cut() {
    for shutdown in [false, true] {
        let mut fs = sim(13);
        fs.shut_down_on_dir_sync_failure(shutdown);
        write_file(&mut fs, "a", b"x", true);
        fs.inject_error(vfs::ErrorRule {
            kind: Some(OpKind::FsyncDir),
            path_glob: "**".into(),
            error: ErrorKind::Io,
            after_seq: 0,
            times: 1,
        });
        let dir = fs.open_dir(".").unwrap();
        assert_eq!(fs.fsync(dir).unwrap_err().kind, ErrorKind::Io);
        fs.close(dir).unwrap();
        assert_eq!(fs.is_shut_down(), shutdown);
        let write = fs.open("b", &OpenOptions::create()).map(|_| ());
        if shutdown {
            assert_eq!(write.unwrap_err().kind, ErrorKind::Io, "read-only after the journal aborted");
            assert_eq!(fs.read_file("a").unwrap(), b"x", "reads still work");
            fs.process_crash();
            assert!(fs.is_shut_down(), "a process crash does not remount it");
            fs.crash(CrashModel::NoLoss);
            assert!(!fs.is_shut_down(), "a power cycle does");
        } else {
            write.unwrap();
        }
        write_file(&mut fs, "c", b"y", true);
        fs.check_invariants().unwrap();
    }
}

fn synced(fs: &mut SimFs, path: &str, data: &[u8]) {
    write_file(fs, path, data, true);
    fsync_dir(fs, "/");
}

#[test]
fn bit_flips_are_listed_removable_and_healed_by_a_durable_rewrite() {
    let mut fs = sim(10);
    synced(&mut fs, "seg", &[0u8; 2048]);
    let id = fs.inject_bit_flip("seg", 1000, 3).unwrap();
    let data = fs.read_file("seg").unwrap();
    assert_eq!(data[1000], 8);
    assert_eq!(data.iter().filter(|b| **b != 0).count(), 1);
    let listed = fs.media_faults();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].kind, listed[0].path.as_str()), (id, MediaFaultKind::BitFlip, "seg"));
    // Replaying a listed fault on a fresh filesystem gives the same reads.
    let mut twin = sim(10);
    synced(&mut twin, "seg", &[0u8; 2048]);
    twin.add_media_fault(&listed[0]).unwrap();
    assert_eq!(twin.read_file("seg").unwrap(), data);
    // Removal restores the true bytes.
    assert!(fs.remove_media_fault(id));
    assert!(fs.read_file("seg").unwrap().iter().all(|b| *b == 0));
    // A durable rewrite of the sector heals it.
    twin.crash(CrashModel::NoLoss);
    let fd = twin.open("seg", &OpenOptions::read_write()).unwrap();
    twin.pwrite(fd, 1000, &[0]).unwrap();
    assert_eq!(twin.read_file("seg").unwrap()[1000], 0, "a dirty sector reads from the cache");
    twin.fsync(fd).unwrap();
    assert!(twin.media_faults().is_empty());
}

#[test]
fn a_latent_sector_error_fails_reads_of_that_sector_until_rewritten() {
    let mut fs = sim(11);
    synced(&mut fs, "seg", &[5u8; 2048]);
    fs.inject_latent_sector_error("seg", 600).unwrap();
    let fd = fs.open("seg", &OpenOptions::read_write()).unwrap();
    let mut buf = [0; 100];
    assert_eq!(fs.pread(fd, 0, &mut buf).unwrap(), 100, "sector 0 is fine");
    assert_eq!(fs.pread(fd, 1000, &mut buf).unwrap_err().kind, ErrorKind::Io);
    assert_eq!(fs.pread(fd, 1100, &mut buf).unwrap(), 100, "sector 2 is fine");
    fs.pwrite(fd, 512, &[6; 512]).unwrap();
    fs.fsync(fd).unwrap();
    assert_eq!(fs.pread(fd, 1000, &mut buf).unwrap(), 100);
    assert!(fs.media_faults().is_empty());
}

#[test]
fn a_lost_write_shows_once_the_cache_is_gone() {
    let mut fs = sim(12);
    synced(&mut fs, "wal", &[1u8; 4096]);
    fs.arm_media_fault(MediaFaultKind::LostWrite, "wal").unwrap();
    let fd = fs.open("wal", &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, 1024, &[2; 512]).unwrap();
    fs.fsync(fd).unwrap();
    assert_eq!(fs.read_file("wal").unwrap()[1024], 2, "the page cache has the acknowledged write");
    fs.crash(CrashModel::NoLoss);
    assert_eq!(fs.read_file("wal").unwrap(), vec![1u8; 4096], "the disk never got it");
    let faults = fs.media_faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].kind, MediaFaultKind::LostWrite);
}

#[test]
fn a_misdirected_write_lands_elsewhere_in_the_file() {
    let mut fs = sim(13);
    synced(&mut fs, "seg", &[1u8; 8192]);
    fs.arm_media_fault(MediaFaultKind::MisdirectedWrite, "seg").unwrap();
    let fd = fs.open("seg", &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, 0, &[9; 512]).unwrap();
    fs.fsync(fd).unwrap();
    fs.drop_caches();
    let data = fs.read_file("seg").unwrap();
    assert_eq!(&data[..512], &[1; 512], "the intended sector kept its old bytes");
    let landed: Vec<usize> = (1..16).filter(|s| data[s * 512..(s + 1) * 512].iter().all(|b| *b == 9)).collect();
    assert_eq!(landed.len(), 1, "the data landed in exactly one other sector");
    assert!(matches!(fs.take_fault_events().last(), Some(FaultEvent::MediaFaultStruck { .. })));
}

#[test]
fn the_op_log_records_every_call_with_kind_path_and_result() {
    let mut fs = sim(14);
    fs.mkdir_all("a/b").unwrap();
    let fd = fs.open("/a/./b/f", &OpenOptions::create()).unwrap();
    fs.pwrite(fd, 10, b"xyz").unwrap();
    fs.fdatasync(fd).unwrap();
    fs.rename("a/b/f", "a/g").unwrap();
    let _ = fs.unlink("missing");
    let dir = fs.open_dir("a").unwrap();
    fs.fsync(dir).unwrap();
    let ops = fs.take_ops();
    type Row<'a> = (u64, OpKind, &'a str, Option<&'a str>, Result<(), ErrorKind>);
    let summary: Vec<Row> = ops.iter().map(|o| (o.seq, o.kind, o.path.as_str(), o.to.as_deref(), o.result)).collect();
    assert_eq!(
        summary,
        vec![
            (1, OpKind::Mkdir, "a/b", None, Err(ErrorKind::NotFound)),
            (2, OpKind::Mkdir, "a", None, Ok(())),
            (3, OpKind::Mkdir, "a/b", None, Ok(())),
            (4, OpKind::Create, "a/b/f", None, Ok(())),
            (5, OpKind::Write, "a/b/f", None, Ok(())),
            (6, OpKind::Fdatasync, "a/b/f", None, Ok(())),
            (7, OpKind::Rename, "a/b/f", Some("a/g"), Ok(())),
            (8, OpKind::Unlink, "missing", None, Err(ErrorKind::NotFound)),
            (9, OpKind::OpenDir, "a", None, Ok(())),
            (10, OpKind::FsyncDir, "a", None, Ok(())),
        ]
    );
    assert_eq!((ops[4].offset, ops[4].len), (Some(10), Some(3)));
    assert!(fs.ops().is_empty(), "taken");
    fs.pwrite(fd, 0, b"1").unwrap();
    assert_eq!(fs.ops()[0].path, "a/g", "handles follow renames");
}

#[test]
fn a_truncation_into_a_sector_heals_its_lost_write() {
    let mut fs = sim(15);
    synced(&mut fs, "f", &[b'A'; 512]);
    fs.arm_media_fault(MediaFaultKind::LostWrite, "f").unwrap();
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, 0, &[b'B'; 512]).unwrap();
    fs.fsync(fd).unwrap();
    fs.set_len(fd, 100).unwrap();
    fs.fsync(fd).unwrap();
    fs.set_len(fd, 512).unwrap();
    fs.fsync(fd).unwrap();
    fs.drop_caches();
    let data = fs.read_file("f").unwrap();
    assert_eq!(&data[..100], &[b'B'; 100], "the truncate rewrote the sector with the acknowledged bytes");
    assert!(data[100..].iter().all(|b| *b == 0), "truncated bytes never come back");
}

#[test]
fn a_failed_fsync_loses_data_pages_but_not_size_changes() {
    let mut fs = sim(16);
    synced(&mut fs, "f", b"");
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    fs.set_len(fd, 4096).unwrap();
    fs.pwrite(fd, 0, b"data").unwrap();
    fs.inject_error(ErrorRule {
        kind: Some(OpKind::Fsync),
        path_glob: "f".into(),
        error: ErrorKind::Io,
        after_seq: 0,
        times: 1,
    });
    assert_eq!(fs.fsync(fd).unwrap_err().kind, ErrorKind::Io);
    fs.crash(CrashModel::NoLoss);
    assert_eq!(file(&fs, "f"), Some(vec![0; 4096]), "the size (journalled metadata) survived, the data did not");
}

#[test]
fn injected_errors_never_precede_ebadf_and_close_always_releases_the_handle() {
    let mut fs = sim(17);
    synced(&mut fs, "f", b"x");
    let rule =
        |kind| ErrorRule { kind: Some(kind), path_glob: "**".into(), error: ErrorKind::Io, after_seq: 0, times: 1 };
    fs.inject_error(rule(OpKind::Write));
    fs.inject_error(rule(OpKind::Fsync));
    assert_eq!(fs.write(vfs::Fd(999), b"x").unwrap_err().kind, ErrorKind::BadDescriptor);
    assert_eq!(fs.fsync(vfs::Fd(999)).unwrap_err().kind, ErrorKind::BadDescriptor);
    assert!(fs.take_fault_events().is_empty(), "no rule was spent on a bad handle");
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    assert_eq!(fs.write(fd, b"y").unwrap_err().kind, ErrorKind::Io, "the rule is still armed");
    fs.inject_error(rule(OpKind::Close));
    assert_eq!(fs.close(fd).unwrap_err().kind, ErrorKind::Io);
    assert_eq!(fs.open_handle_count(), 0, "close released the handle despite the error");
    assert_eq!(fs.close(fd).unwrap_err().kind, ErrorKind::BadDescriptor);
}

fn small_disk(pages: u64) -> SimFs {
    SimFs::new(SimFsConfig {
        seed: 3,
        sector_size: 512,
        capacity_bytes: pages * 4096,
        max_file_size: 1 << 44,
        record_ops: false,
    })
}

#[test]
fn fallocate_reserves_exactly_its_range_and_truncation_frees_it() {
    let mut fs = small_disk(256); // 1 MiB
    let fd = fs.open("wal", &OpenOptions::create()).unwrap();
    fs.fallocate(fd, vfs::FallocateMode::KeepSize, 2 << 30, 4096).unwrap();
    assert_eq!(fs.used_bytes(), 4096, "a reservation far out costs its own pages only");
    fs.fallocate(fd, vfs::FallocateMode::KeepSize, 0, 64 * 4096).unwrap();
    assert_eq!(fs.used_bytes(), 65 * 4096);
    fs.pwrite(fd, 0, &[1; 3 * 4096]).unwrap();
    assert_eq!(fs.used_bytes(), 65 * 4096, "data inside a reservation takes no more space");
    fs.pwrite(fd, 100 * 4096, &[1; 4096]).unwrap();
    assert_eq!(fs.used_bytes(), 66 * 4096);
    fs.set_len(fd, 4096).unwrap();
    assert_eq!(fs.used_bytes(), 4096, "ftruncate frees data and preallocated blocks past the end");
    fs.check_invariants().unwrap();
}

#[test]
fn a_full_disk_frees_deleted_files_before_failing() {
    let mut fs = small_disk(2);
    write_file(&mut fs, "old", &[1; 8192], true);
    fs.sync().unwrap();
    fs.unlink("old").unwrap();
    fs.sync().unwrap();
    write_file(&mut fs, "new", &[2; 4096], false);
    assert_eq!(fs.read_file("new").unwrap(), vec![2; 4096]);
    fs.check_invariants().unwrap();
}

#[test]
fn misdirected_writes_in_a_sparse_file_cost_nothing_per_sector() {
    let mut fs = sim(18);
    synced(&mut fs, "sparse", b"head");
    let fd = fs.open("sparse", &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, 1 << 40, b"tail").unwrap();
    fs.fsync(fd).unwrap();
    fs.arm_media_fault(MediaFaultKind::MisdirectedWrite, "sparse").unwrap();
    fs.pwrite(fd, 0, b"HEAD").unwrap();
    fs.fsync(fd).unwrap();
    let faults = fs.media_faults();
    assert_eq!(faults[0].sectors.len(), 2, "the lost sector and the one it landed in");
    assert!(fs.used_bytes() <= 2 * 4096);
}

#[test]
fn media_fault_arguments_are_typed_errors() {
    let mut fs = sim(19);
    synced(&mut fs, "f", b"data");
    assert_eq!(fs.arm_media_fault(MediaFaultKind::BitFlip, "f").unwrap_err().kind, ErrorKind::InvalidInput);
    assert_eq!(fs.inject_latent_sector_error("f", 1 << 44).unwrap_err().kind, ErrorKind::InvalidInput);
    let id = fs.inject_bit_flip("f", 0, 1).unwrap();
    let mut last = fs.media_faults().remove(0);
    assert!(fs.remove_media_fault(id));
    last.id = vfs::MediaFaultId(u64::MAX - 1);
    fs.add_media_fault(&last).unwrap();
    assert_eq!(fs.inject_bit_flip("f", 1, 0).unwrap_err().kind, ErrorKind::InvalidInput, "ids exhausted");
    fs.arm_media_fault(MediaFaultKind::LostWrite, "f").unwrap();
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, 0, b"DATA").unwrap();
    fs.fsync(fd).unwrap(); // no id left: the armed fault cannot strike, the fsync is a plain one
    assert!(!fs.take_fault_events().iter().any(|e| matches!(e, FaultEvent::MediaFaultStruck { .. })));
    assert!(fs.media_faults().is_empty(), "the rewrite healed the replayed flip");
}

/// A peek (`SimFs::peek`) reads what a read would, through the same trait, and is not a call: no sequence
/// number, no record, no crash point, no handle of the filesystem's; a write through it is `EROFS`.
#[test]
fn a_peek_reads_the_cached_view_without_a_call() {
    let mut fs = sim(1);
    fs.mkdir("d").unwrap();
    write_file(&mut fs, "d/f", b"durable", true);
    let fd = fs.open("d/f", &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, 0, b"CACHED").unwrap();
    let seq = fs.op_seq();
    let ops = fs.ops().len();
    fs.arm_power_cut(CrashPoint::AfterOp { seq: seq + 1 }, CrashModel::LoseUnsynced);
    {
        let mut peek = fs.peek();
        assert_eq!(peek.read_file("d/f").unwrap(), b"CACHEDe", "the page cache, as a process reads it");
        assert_eq!(peek.read_dir("d").unwrap(), vec!["f".to_string()]);
        assert!(!peek.exists("d/g").unwrap());
        let handle = peek.open("d/f", &OpenOptions::read_only()).unwrap();
        let mut buf = [0u8; 3];
        assert_eq!(peek.pread(handle, 4, &mut buf).unwrap(), 3);
        assert_eq!(&buf, b"EDe");
        assert_eq!(peek.read(handle, &mut buf).unwrap(), 3, "the cursor is the peek's own");
        assert_eq!(&buf, b"CAC");
        for refused in [
            peek.pwrite(handle, 0, b"x").map(drop),
            peek.fsync(handle),
            peek.open("d/g", &OpenOptions::create()).map(drop),
            peek.unlink("d/f"),
            peek.rename("d/f", "d/g"),
            peek.mkdir("e"),
            peek.sync(),
        ] {
            assert_eq!(refused.unwrap_err().kind.errno_name(), "EROFS");
        }
        peek.close(handle).unwrap();
        assert_eq!(peek.close(handle).unwrap_err().kind, ErrorKind::BadDescriptor);
        assert_eq!(peek.open("d/nope", &OpenOptions::read_only()).unwrap_err().kind, ErrorKind::NotFound);
    }
    assert_eq!((fs.op_seq(), fs.ops().len()), (seq, ops), "nothing recorded or numbered");
    assert!(!fs.is_powered_off(), "the armed cut did not fire");
    assert_eq!(fs.open_handles().map(|(fd, _)| fd).collect::<Vec<_>>(), vec![fd], "the peek's handles are its own");
    fs.close(fd).unwrap();
    assert!(fs.is_powered_off(), "the next real call is the one the cut was armed after");
}
