//! One test (or more) per durability rule of `docs/filesystem-model.md`: what makes data, sizes and names
//! durable, what a process crash keeps, what each crash model may lose.

mod common;

use common::{file_in, fsync_dir, sim, write_file};
use vfs::{CrashModel, ErrorKind, FallocateMode, FileSystem, OpenOptions, SimFs, TreeEntry};

fn file(fs: &SimFs, path: &str) -> Option<Vec<u8>> {
    file_in(&fs.tree(), path)
}

/// A filesystem with `dir/` durable.
fn with_dir() -> SimFs {
    let mut fs = sim(7);
    fs.mkdir("dir").unwrap();
    fsync_dir(&mut fs, "/");
    fs
}

#[test]
fn unsynced_write_is_lost_by_lose_unsynced_and_kept_by_no_loss() {
    for (model, expect) in [(CrashModel::LoseUnsynced, b"".to_vec()), (CrashModel::NoLoss, b"hello".to_vec())] {
        let mut fs = with_dir();
        write_file(&mut fs, "dir/f", b"", true);
        fsync_dir(&mut fs, "dir");
        let fd = fs.open("dir/f", &OpenOptions::read_write()).unwrap();
        fs.write(fd, b"hello").unwrap();
        fs.crash(model);
        assert_eq!(file(&fs, "dir/f"), Some(expect), "{model:?}");
    }
}

#[test]
fn fsynced_data_and_size_survive_every_model() {
    for model in CrashModel::ALL {
        for seed in 0..20 {
            let mut fs = sim(seed);
            write_file(&mut fs, "f", &[7; 3000], true);
            fsync_dir(&mut fs, "/");
            fs.crash(model);
            assert_eq!(file(&fs, "f"), Some(vec![7; 3000]), "{model:?} seed {seed}");
        }
    }
}

#[test]
fn fdatasync_makes_a_size_change_durable() {
    for model in CrashModel::ALL {
        let mut fs = sim(1);
        write_file(&mut fs, "f", &[1; 100], true);
        fsync_dir(&mut fs, "/");
        let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
        fs.set_len(fd, 10).unwrap();
        fs.append(fd, &[2; 5]).unwrap();
        fs.fdatasync(fd).unwrap();
        fs.crash(model);
        let mut expect = vec![1; 10];
        expect.extend([2; 5]);
        assert_eq!(file(&fs, "f"), Some(expect), "{model:?}");
    }
}

#[test]
fn fsync_of_a_file_does_not_persist_its_name() {
    let mut fs = with_dir();
    write_file(&mut fs, "dir/f", b"data", true);
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(file(&fs, "dir/f"), None);
    assert_eq!(fs.tree().get("dir"), Some(&TreeEntry::Dir));
}

#[test]
fn fsync_of_the_directory_persists_the_name_but_not_the_data() {
    let mut fs = with_dir();
    write_file(&mut fs, "dir/f", b"data", false);
    fsync_dir(&mut fs, "dir");
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(file(&fs, "dir/f"), Some(Vec::new()));
}

#[test]
fn name_and_data_both_synced_survive() {
    let mut fs = with_dir();
    write_file(&mut fs, "dir/f", b"data", true);
    fsync_dir(&mut fs, "dir");
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(file(&fs, "dir/f"), Some(b"data".to_vec()));
}

#[test]
fn an_inode_survives_only_through_a_durable_path_from_the_root() {
    // The file's own entry is durable in `new/`, but `new` itself was never made durable in the root.
    let mut fs = sim(3);
    fs.mkdir("new").unwrap();
    write_file(&mut fs, "new/f", b"data", true);
    fsync_dir(&mut fs, "new");
    fs.crash(CrashModel::LoseUnsynced);
    assert!(fs.tree().is_empty(), "{:?}", fs.tree());
    assert_eq!(fs.inode_count(), 1, "the orphaned inodes are freed");
}

#[test]
fn unlink_mkdir_rmdir_are_pending_until_the_parent_is_fsynced() {
    let mut fs = with_dir();
    write_file(&mut fs, "dir/old", b"x", true);
    fs.mkdir("dir/gone").unwrap();
    fsync_dir(&mut fs, "dir");
    fs.unlink("dir/old").unwrap();
    fs.rmdir("dir/gone").unwrap();
    fs.mkdir("dir/sub").unwrap();
    let mut undone = fs.tree();
    assert!(undone.contains_key("dir/sub") && !undone.contains_key("dir/old"));
    fs.crash(CrashModel::LoseUnsynced);
    undone = fs.tree();
    assert!(undone.contains_key("dir/old") && undone.contains_key("dir/gone") && !undone.contains_key("dir/sub"));

    fs.unlink("dir/old").unwrap();
    fs.rmdir("dir/gone").unwrap();
    fs.mkdir("dir/sub").unwrap();
    fsync_dir(&mut fs, "dir");
    fs.crash(CrashModel::LoseUnsynced);
    let done = fs.tree();
    assert!(!done.contains_key("dir/old") && !done.contains_key("dir/gone") && done.contains_key("dir/sub"));
}

#[test]
fn rename_is_pending_in_both_directories_and_atomic() {
    let mut kept = 0;
    let mut dropped = 0;
    for seed in 0..200 {
        let mut fs = sim(seed);
        fs.mkdir("a").unwrap();
        fs.mkdir("b").unwrap();
        write_file(&mut fs, "a/f", b"payload", true);
        fs.sync().unwrap();
        fs.rename("a/f", "b/g").unwrap();
        fs.crash(CrashModel::Pessimistic);
        match (file(&fs, "a/f"), file(&fs, "b/g")) {
            (Some(_), None) => dropped += 1,
            (None, Some(_)) => kept += 1,
            other => panic!("seed {seed}: rename not atomic: {other:?}"),
        }
    }
    assert!(kept > 50 && dropped > 50, "kept {kept} dropped {dropped}");
}

#[test]
fn fsync_of_either_directory_of_a_rename_makes_all_of_it_durable() {
    for dir in ["a", "b"] {
        let mut fs = sim(5);
        fs.mkdir("a").unwrap();
        fs.mkdir("b").unwrap();
        write_file(&mut fs, "a/f", b"payload", true);
        fs.sync().unwrap();
        fs.rename("a/f", "b/g").unwrap();
        fsync_dir(&mut fs, dir);
        fs.crash(CrashModel::LoseUnsynced);
        assert_eq!((file(&fs, "a/f"), file(&fs, "b/g")), (None, Some(b"payload".to_vec())), "fsync {dir}");
    }
}

#[test]
fn committing_a_name_commits_earlier_names_of_the_same_inode() {
    // create a/f (pending), rename a/f -> b/g, fsync(b): the rename is durable; the create it depends on
    // must not be left pending (else a later crash could show the file in two places).
    let mut fs = sim(9);
    fs.mkdir("a").unwrap();
    fs.mkdir("b").unwrap();
    fs.sync().unwrap();
    write_file(&mut fs, "a/f", b"x", true);
    fs.rename("a/f", "b/g").unwrap();
    fsync_dir(&mut fs, "b");
    assert_eq!(fs.pending_count(), 0);
    for model in CrashModel::ALL {
        let mut copy = sim(9);
        copy.mkdir("a").unwrap();
        copy.mkdir("b").unwrap();
        copy.sync().unwrap();
        write_file(&mut copy, "a/f", b"x", true);
        copy.rename("a/f", "b/g").unwrap();
        fsync_dir(&mut copy, "b");
        copy.crash(model);
        assert_eq!((file(&copy, "a/f"), file(&copy, "b/g")), (None, Some(b"x".to_vec())), "{model:?}");
    }
}

#[test]
fn set_len_and_fallocate_sizes_are_durable_only_after_fsync() {
    let mut fs = sim(2);
    write_file(&mut fs, "f", &[1; 1000], true);
    fsync_dir(&mut fs, "/");
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    fs.set_len(fd, 100).unwrap();
    fs.fallocate(fd, FallocateMode::Extend, 0, 8192).unwrap();
    fs.fallocate(fd, FallocateMode::KeepSize, 0, 1 << 20).unwrap();
    assert_eq!(fs.fstat(fd).unwrap().len, 8192);
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(file(&fs, "f"), Some(vec![1; 1000]));

    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    fs.set_len(fd, 100).unwrap();
    fs.fallocate(fd, FallocateMode::Extend, 0, 8192).unwrap();
    fs.fallocate(fd, FallocateMode::KeepSize, 0, 1 << 20).unwrap();
    fs.fsync(fd).unwrap();
    fs.crash(CrashModel::LoseUnsynced);
    let mut expect = vec![1; 100];
    expect.resize(8192, 0);
    assert_eq!(file(&fs, "f"), Some(expect));
}

#[test]
fn a_process_crash_keeps_pending_state_and_closes_every_handle() {
    let mut fs = with_dir();
    write_file(&mut fs, "dir/f", b"", true);
    fsync_dir(&mut fs, "dir");
    let fd = fs.open("dir/f", &OpenOptions::read_write()).unwrap();
    fs.write(fd, b"unsynced").unwrap();
    let pending = fs.pending_count();
    fs.process_crash();
    assert_eq!(fs.open_handle_count(), 0);
    assert_eq!(fs.pending_count(), pending, "the page cache survives a process crash");
    assert_eq!(fs.write(fd, b"x").unwrap_err().kind, ErrorKind::BadDescriptor);
    assert_eq!(fs.read_file("dir/f").unwrap(), b"unsynced");
    // The kernel would still write it back; a power cut now may still lose it.
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(file(&fs, "dir/f"), Some(Vec::new()));
}

#[test]
fn a_power_loss_invalidates_every_handle() {
    let mut fs = sim(4);
    let fd = fs.open("f", &OpenOptions::create()).unwrap();
    let dir = fs.open_dir("/").unwrap();
    fs.crash(CrashModel::NoLoss);
    assert_eq!(fs.open_handle_count(), 0);
    for result in [fs.fsync(fd), fs.fsync(dir), fs.close(fd)] {
        assert_eq!(result.unwrap_err().kind, ErrorKind::BadDescriptor);
    }
}

#[test]
fn an_unlinked_open_file_stays_readable_until_closed_and_then_is_freed() {
    let mut fs = sim(6);
    write_file(&mut fs, "f", b"still here", true);
    fsync_dir(&mut fs, "/");
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    fs.unlink("f").unwrap();
    fsync_dir(&mut fs, "/");
    let mut buf = [0; 10];
    assert_eq!(fs.pread(fd, 0, &mut buf).unwrap(), 10);
    assert_eq!(&buf, b"still here");
    fs.pwrite(fd, 0, b"STILL").unwrap();
    assert_eq!(fs.fstat(fd).unwrap().len, 10);
    let live = fs.inode_count();
    fs.close(fd).unwrap();
    fs.collect_garbage();
    assert_eq!(fs.inode_count(), live - 1);
    fs.check_invariants().unwrap();
}

#[test]
fn an_unlink_that_is_not_durable_keeps_the_inode_for_a_crash_to_bring_back() {
    let mut fs = sim(6);
    write_file(&mut fs, "f", b"back", true);
    fsync_dir(&mut fs, "/");
    fs.unlink("f").unwrap();
    fs.collect_garbage();
    assert!(fs.tree().is_empty());
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(file(&fs, "f"), Some(b"back".to_vec()));
}

#[test]
fn sync_makes_everything_durable() {
    let mut fs = sim(8);
    fs.mkdir_all("a/b").unwrap();
    write_file(&mut fs, "a/b/f", b"deep", false);
    fs.rename("a/b/f", "a/g").unwrap();
    fs.sync().unwrap();
    assert_eq!(fs.pending_count(), 0);
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(file(&fs, "a/g"), Some(b"deep".to_vec()));
    assert_eq!(fs.tree().get("a/b"), Some(&TreeEntry::Dir));
}

#[test]
fn writeback_makes_operations_up_to_a_sequence_number_durable_in_order() {
    let mut fs = sim(8);
    write_file(&mut fs, "f", b"", true);
    fsync_dir(&mut fs, "/");
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    fs.write(fd, b"first").unwrap();
    let cut = fs.op_seq();
    fs.write(fd, b"-second").unwrap();
    fs.mkdir("late").unwrap();
    fs.writeback(cut);
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(file(&fs, "f"), Some(b"first".to_vec()));
    assert!(!fs.tree().contains_key("late"));
}

#[test]
fn pessimistic_tears_writes_at_sector_granularity_and_out_of_order() {
    let mut saw_torn = false;
    let mut saw_non_prefix = false;
    for seed in 0..200 {
        let mut fs = sim(seed);
        write_file(&mut fs, "f", &[0xAA; 2048], true);
        fsync_dir(&mut fs, "/");
        let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
        fs.pwrite(fd, 0, &[0xBB; 2048]).unwrap();
        fs.crash(CrashModel::Pessimistic);
        let data = file(&fs, "f").unwrap();
        assert_eq!(data.len(), 2048);
        let new: Vec<bool> = (0..4)
            .map(|s| {
                let sector = &data[s * 512..(s + 1) * 512];
                assert!(sector.iter().all(|b| *b == 0xAA) || sector.iter().all(|b| *b == 0xBB), "mixed sector");
                sector[0] == 0xBB
            })
            .collect();
        saw_torn |= new.iter().any(|n| *n) && new.iter().any(|n| !*n);
        saw_non_prefix |= new.windows(2).any(|w| !w[0] && w[1]);
    }
    assert!(saw_torn && saw_non_prefix);
}

#[test]
fn four_kilobyte_sectors_tear_at_four_kilobytes() {
    let mut fs = SimFs::new(vfs::SimFsConfig {
        seed: 1,
        sector_size: 4096,
        capacity_bytes: 1 << 30,
        max_file_size: 1 << 44,
        record_ops: false,
    });
    write_file(&mut fs, "f", &[1; 8192], true);
    fsync_dir(&mut fs, "/");
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, 100, &[2; 8000]).unwrap();
    let images = fs.enumerate_crash_images(CrashModel::Pessimistic);
    // none, all, the first of two sectors without the second, and the second without the first.
    let seq = fs.op_seq();
    let labels: Vec<String> = images.into_iter().map(|i| i.label).collect();
    assert_eq!(labels, ["none".into(), "all".into(), format!("torn {seq} 1/2"), format!("torn {seq} last 1/2")]);
}

#[test]
fn ext4_ordered_commits_earlier_metadata_on_any_fsync() {
    for seed in 0..50 {
        let mut fs = sim(seed);
        write_file(&mut fs, "synced", b"", true);
        fs.sync().unwrap();
        fs.mkdir("created-before").unwrap();
        let fd = fs.open("synced", &OpenOptions::read_write()).unwrap();
        fs.write(fd, b"data").unwrap();
        fs.fsync(fd).unwrap();
        fs.mkdir("created-after").unwrap();
        fs.crash(CrashModel::Ext4Ordered);
        assert!(fs.tree().contains_key("created-before"), "seed {seed}");
    }
}

#[test]
fn ext4_ordered_an_fsync_with_nothing_to_write_commits_nothing() {
    // jbd2 only commits when the inode's transaction is still running: a clean file's fsync is free.
    let mut lost = 0;
    for seed in 0..100 {
        let mut fs = sim(seed);
        write_file(&mut fs, "clean", b"x", true);
        fs.sync().unwrap();
        fs.mkdir("new").unwrap();
        let fd = fs.open("clean", &OpenOptions::read_only()).unwrap();
        fs.fsync(fd).unwrap();
        fs.crash(CrashModel::Ext4Ordered);
        lost += usize::from(!fs.tree().contains_key("new"));
    }
    assert!(lost > 10, "the earlier mkdir was lost in only {lost} of 100 crashes");
}

#[test]
fn ext4_ordered_never_exposes_unwritten_zeros_in_appended_data() {
    let mut shorter = false;
    for seed in 0..200 {
        let mut fs = sim(seed);
        write_file(&mut fs, "wal", &[1; 1000], true);
        fs.sync().unwrap();
        let fd = fs.open("wal", &OpenOptions::read_write()).unwrap();
        for i in 0..6u8 {
            fs.append(fd, &[10 + i; 700]).unwrap();
        }
        fs.crash(CrashModel::Ext4Ordered);
        let data = file(&fs, "wal").unwrap();
        assert!(data.len() >= 1000 && (data.len() - 1000).is_multiple_of(700), "seed {seed}: size {}", data.len());
        assert!(data[1000..].iter().all(|b| *b >= 10), "seed {seed}: zeros inside the surviving size");
        shorter |= data.len() < 1000 + 6 * 700;
    }
    assert!(shorter, "Ext4Ordered never lost an unsynced append");
}

#[test]
fn lose_unsynced_restores_exactly_the_durable_tree() {
    let mut fs = sim(11);
    fs.mkdir_all("x/y").unwrap();
    write_file(&mut fs, "x/y/a", &[3; 5000], true);
    fs.sync().unwrap();
    let durable = fs.tree();
    let fd = fs.open("x/y/a", &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, 4000, &[4; 3000]).unwrap();
    fs.rename("x/y", "x/z").unwrap();
    write_file(&mut fs, "x/new", b"n", true);
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(fs.tree(), durable);
    fs.check_invariants().unwrap();
}

#[test]
fn removing_a_directory_keeps_what_was_moved_out_of_it() {
    for (target, expect) in [("e/f", "e/f"), ("g", "g")] {
        let mut fs = sim(12);
        fs.mkdir("d").unwrap();
        fs.mkdir("e").unwrap();
        write_file(&mut fs, "d/f", b"precious", true);
        fs.sync().unwrap();
        fs.rename("d/f", target).unwrap();
        fs.rmdir("d").unwrap();
        fsync_dir(&mut fs, "/"); // commits the rmdir, and with it the move out of `d`
        fs.crash(CrashModel::LoseUnsynced);
        assert_eq!(file(&fs, expect), Some(b"precious".to_vec()), "{target}: {:?}", fs.tree().keys());
    }
}

#[test]
fn moving_a_durable_file_into_a_new_directory_keeps_the_directory() {
    let mut fs = sim(13);
    write_file(&mut fs, "g", b"precious", true);
    fs.sync().unwrap();
    fs.mkdir("d").unwrap();
    fs.rename("g", "d/g").unwrap();
    fsync_dir(&mut fs, "d"); // the rename is durable, so `d` must be reachable
    fs.crash(CrashModel::LoseUnsynced);
    assert_eq!(file(&fs, "d/g"), Some(b"precious".to_vec()), "{:?}", fs.tree().keys());
}

#[test]
fn directory_renames_never_make_a_cycle_that_loses_both_directories() {
    let build = || {
        let mut fs = sim(14);
        fs.mkdir("a").unwrap();
        fs.mkdir("b").unwrap();
        write_file(&mut fs, "a/fa", b"A", true);
        write_file(&mut fs, "b/fb", b"B", true);
        fs.sync().unwrap();
        fs.rename("b", "a/b").unwrap();
        fs.rename("a/b", "x").unwrap();
        fs.rename("a", "x/a").unwrap();
        fs
    };
    for image in build().enumerate_crash_images(CrashModel::Pessimistic) {
        let mut fs = build();
        fs.crash_with(&image.decisions).unwrap();
        let files: Vec<Vec<u8>> =
            fs.tree().into_values().filter_map(|e| if let TreeEntry::File(d) = e { Some(d) } else { None }).collect();
        assert_eq!(files.len(), 2, "{}: {:?}", image.label, fs.tree().keys());
    }
}

#[test]
fn periodic_writeback_keeps_unsynced_memory_bounded() {
    let mut fs = sim(15);
    write_file(&mut fs, "wal", b"", true);
    fsync_dir(&mut fs, "/");
    let fd = fs.open("wal", &OpenOptions::read_write()).unwrap();
    for i in 0..20_000u32 {
        fs.append(fd, &[(i % 251) as u8; 100]).unwrap();
        let behind = fs.op_seq() - 1;
        fs.writeback(behind); // the flusher writes everything but the newest append
    }
    assert_eq!(fs.pending_count(), 1);
    assert!(fs.unsynced_arena_bytes() < 200 << 10, "{} bytes held", fs.unsynced_arena_bytes());
    fs.crash(CrashModel::Pessimistic);
    let data = file(&fs, "wal").unwrap();
    assert!(data.len() == 1_999_900 || data.len() == 2_000_000, "{}", data.len());
    assert!(data[..1_999_900].chunks(100).enumerate().all(|(i, c)| c.iter().all(|b| *b == (i % 251) as u8)));
}
