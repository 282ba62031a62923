//! The crash-image enumerator on tiny cases whose answers are counted by hand, and the decision vector:
//! typed errors on mismatch, normalisation, and every enumerated image applying cleanly.

mod common;

use common::{fsync_dir, sim, write_file};
use std::collections::BTreeSet;
use vfs::{CrashDecisions, CrashModel, DecisionError, FileSystem, OpenOptions, SimFs, TreeEntry};

fn labels(fs: &SimFs, model: CrashModel) -> Vec<String> {
    fs.enumerate_crash_images(model).into_iter().map(|i| i.label).collect()
}

fn count(fs: &SimFs, model: CrashModel) -> usize {
    fs.enumerate_crash_images(model).len()
}

/// Applies every image of `model` to a fresh copy built by `build`, returning the distinct trees.
fn images(build: impl Fn() -> SimFs, model: CrashModel) -> BTreeSet<Vec<(String, TreeEntry)>> {
    let fs = build();
    let mut trees = BTreeSet::new();
    for image in fs.enumerate_crash_images(model) {
        let mut copy = build();
        copy.crash_with(&image.decisions).unwrap_or_else(|e| panic!("{}: {e}", image.label));
        copy.check_invariants().unwrap();
        trees.insert(copy.tree().into_iter().collect());
    }
    trees
}

/// A durable empty file `f` with an open handle.
fn empty_file() -> (SimFs, vfs::Fd) {
    let mut fs = sim(1);
    write_file(&mut fs, "f", b"", true);
    fsync_dir(&mut fs, "/");
    let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
    (fs, fd)
}

#[test]
fn nothing_pending_has_exactly_one_image() {
    let (fs, _) = empty_file();
    for model in CrashModel::ALL {
        assert_eq!(labels(&fs, model), vec!["none"], "{model:?}");
    }
}

#[test]
fn one_single_sector_append_has_three_images() {
    // None, all, and the size without the data (delayed allocation: 100 zero bytes), which ext4's
    // data=ordered never shows.
    let (mut fs, fd) = empty_file();
    fs.append(fd, &[1; 100]).unwrap();
    assert_eq!(labels(&fs, CrashModel::Pessimistic), vec!["none", "all", "metadata, no data"]);
    assert_eq!(count(&fs, CrashModel::Corrupting), 3, "one sector: nothing to tear");
    assert_eq!(count(&fs, CrashModel::Ext4Ordered), 2);
    assert_eq!(labels(&fs, CrashModel::LoseUnsynced), vec!["none"]);
    assert_eq!(labels(&fs, CrashModel::NoLoss), vec!["all"]);
}

#[test]
fn two_appends_to_different_sectors() {
    // Pessimistic: {}, {w1, w2}, the size of both with no data, {w1} (prefix), {w2} (omit w1; "omit w2"
    // repeats the prefix) = 5. Ext4Ordered: {w2} alone or the size alone would expose zeros inside the
    // surviving size: 3.
    let build = || {
        let (mut fs, fd) = empty_file();
        fs.append(fd, &[1; 512]).unwrap();
        fs.append(fd, &[2; 512]).unwrap();
        fs
    };
    let fs = build();
    let seq = fs.op_seq();
    assert_eq!(
        labels(&fs, CrashModel::Pessimistic),
        vec![
            "none".to_string(),
            "all".into(),
            "metadata, no data".into(),
            format!("prefix<={}", seq - 1),
            format!("omit {}", seq - 1)
        ]
    );
    assert_eq!(count(&fs, CrashModel::Ext4Ordered), 3);
    let contents: BTreeSet<Vec<u8>> = images(build, CrashModel::Pessimistic)
        .into_iter()
        .map(|tree| match &tree[0].1 {
            TreeEntry::File(data) => data.clone(),
            TreeEntry::Dir => panic!(),
        })
        .collect();
    let w1 = vec![1; 512];
    let w2_only: Vec<u8> = [vec![0; 512], vec![2; 512]].concat();
    let both: Vec<u8> = [vec![1; 512], vec![2; 512]].concat();
    let zeros = vec![0; 1024];
    assert_eq!(contents, BTreeSet::from([Vec::new(), w1, w2_only, both, zeros]));
}

#[test]
fn one_four_sector_overwrite_tears_six_ways() {
    // Overwrite of durable data: none, all, torn after 1, 2 or 3 sectors, and torn so that only the
    // last 1, 2 or 3 sectors reached the disk = 8. Corrupting adds a garbage boundary sector to each
    // leading tear = 11.
    let build = || {
        let mut fs = sim(1);
        write_file(&mut fs, "f", &[7; 2048], true);
        fsync_dir(&mut fs, "/");
        let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
        fs.pwrite(fd, 0, &[8; 2048]).unwrap();
        fs
    };
    let fs = build();
    let seq = fs.op_seq();
    assert_eq!(
        labels(&fs, CrashModel::Pessimistic),
        vec![
            "none".to_string(),
            "all".into(),
            format!("torn {seq} 1/4"),
            format!("torn {seq} 2/4"),
            format!("torn {seq} 3/4"),
            format!("torn {seq} last 1/4"),
            format!("torn {seq} last 2/4"),
            format!("torn {seq} last 3/4")
        ]
    );
    assert_eq!(count(&fs, CrashModel::Corrupting), 11);
    assert_eq!(count(&fs, CrashModel::Ext4Ordered), 8, "overwrites tear per sector on ext4 too");
    let trees = images(build, CrashModel::Pessimistic);
    assert_eq!(trees.len(), 8);
    let last_one: Vec<u8> = [vec![7; 1536], vec![8; 512]].concat();
    assert!(trees.iter().any(|t| t[0].1 == TreeEntry::File(last_one.clone())), "the last sector alone");
}

#[test]
fn sampled_images_are_seeded_apply_cleanly_and_leave_the_filesystems_rng_alone() {
    let build = || {
        let mut fs = sim(5);
        write_file(&mut fs, "f", &[7; 4096], true);
        fsync_dir(&mut fs, "/");
        let fd = fs.open("f", &OpenOptions::read_write()).unwrap();
        fs.pwrite(fd, 0, &[8; 4096]).unwrap();
        fs.mkdir("d").unwrap();
        fs
    };
    let sample = |seed| build().sample_crash_images(CrashModel::Pessimistic, 16, seed);
    assert_eq!(sample(1), sample(1), "one seed, one sample");
    assert_ne!(sample(1), sample(2));
    let labels: Vec<String> = sample(1).into_iter().map(|i| i.label).collect();
    assert_eq!(labels[0], "random 1/16");
    for image in sample(1) {
        let mut copy = build();
        copy.crash_with(&image.decisions).unwrap_or_else(|e| panic!("{}: {e}", image.label));
        copy.check_invariants().unwrap();
    }
    // Eight sectors chosen independently: a sample holds images no enumerated one does (a middle
    // sector kept without its neighbours, say).
    let enumerated: BTreeSet<CrashDecisions> =
        build().enumerate_crash_images(CrashModel::Pessimistic).into_iter().map(|i| i.decisions).collect();
    assert!(sample(1).iter().any(|i| !enumerated.contains(&i.decisions)));
    // The filesystem's own crash choices do not depend on whether a sample was drawn first.
    let mut plain = build();
    let mut sampled = build();
    sampled.sample_crash_images(CrashModel::Pessimistic, 3, 9);
    assert_eq!(plain.crash(CrashModel::Pessimistic), sampled.crash(CrashModel::Pessimistic));
}

#[test]
fn a_created_file_and_a_rename_each_have_two_images() {
    let mut fs = sim(2);
    fs.mkdir("a").unwrap();
    fs.mkdir("b").unwrap();
    fs.sync().unwrap();
    let fd = fs.open("a/f", &OpenOptions::create()).unwrap();
    fs.fsync(fd).unwrap();
    assert_eq!(count(&fs, CrashModel::Pessimistic), 2, "create kept or dropped");
    fsync_dir(&mut fs, "a");
    fs.rename("a/f", "b/g").unwrap();
    assert_eq!(count(&fs, CrashModel::Pessimistic), 2, "the rename is one unit");
}

#[test]
fn per_inode_order_folds_create_then_rename_into_three_images() {
    // create x (1), rename x -> y (2): {}, {1}, {1,2}; "omit 1" keeps 2, which forces 1.
    let build = || {
        let mut fs = sim(3);
        fs.open("x", &OpenOptions::create()).unwrap();
        fs.rename("x", "y").unwrap();
        fs
    };
    assert_eq!(count(&build(), CrashModel::Pessimistic), 3);
    let names: BTreeSet<Vec<String>> =
        images(build, CrashModel::Pessimistic).into_iter().map(|t| t.into_iter().map(|(p, _)| p).collect()).collect();
    assert_eq!(names, BTreeSet::from([vec![], vec!["x".to_string()], vec!["y".to_string()]]));
}

#[test]
fn every_enumerated_image_applies_and_labels_are_deterministic() {
    let build = || {
        let mut fs = sim(4);
        fs.mkdir_all("wal").unwrap();
        fs.sync().unwrap();
        let fd = fs.open("wal/1.wal", &OpenOptions::create()).unwrap();
        for i in 0..5u8 {
            fs.append(fd, &[i + 1; 700]).unwrap();
        }
        fs.rename("wal/1.wal", "wal/2.wal").unwrap();
        fs.mkdir("snap").unwrap();
        fs
    };
    for model in CrashModel::ALL {
        let a = build().enumerate_crash_images(model);
        let b = build().enumerate_crash_images(model);
        assert_eq!(a, b, "{model:?}");
        let distinct: BTreeSet<&CrashDecisions> = a.iter().map(|i| &i.decisions).collect();
        assert_eq!(distinct.len(), a.len(), "{model:?}: duplicates");
        images(build, model);
    }
    assert!(count(&build(), CrashModel::Pessimistic) > count(&build(), CrashModel::Ext4Ordered));
}

#[test]
fn decisions_that_do_not_fit_are_typed_errors_and_change_nothing() {
    let (mut fs, fd) = empty_file();
    fs.append(fd, &[1; 600]).unwrap();
    fs.mkdir("d").unwrap();
    let good = fs.enumerate_crash_images(CrashModel::Pessimistic).pop().unwrap().decisions;
    let before = (fs.tree(), fs.pending_count());
    let ino = good.files[0].ino;

    let mut bad = good.clone();
    bad.files[0].ino = 999;
    assert_eq!(fs.crash_with(&bad).unwrap_err(), DecisionError::UnknownFile { ino: 999 });

    let mut bad = good.clone();
    bad.files[0].size_after = Some(12345);
    assert_eq!(fs.crash_with(&bad).unwrap_err(), DecisionError::UnknownSizeOp { ino, seq: 12345 });

    let mut bad = good.clone();
    bad.files[0].sectors[0].sector = 40;
    assert_eq!(fs.crash_with(&bad).unwrap_err(), DecisionError::BadSector { ino, sector: 40 });

    let mut bad = good.clone();
    let first = bad.files[0].sectors[0].clone();
    bad.files[0].sectors.push(first);
    assert!(matches!(fs.crash_with(&bad).unwrap_err(), DecisionError::BadSector { .. }));

    let mut bad = good.clone();
    bad.files.push(bad.files[0].clone());
    assert_eq!(fs.crash_with(&bad).unwrap_err(), DecisionError::DuplicateFile { ino });

    let mut bad = good.clone();
    bad.entries[0].seq = 4242;
    assert_eq!(fs.crash_with(&bad).unwrap_err(), DecisionError::UnknownEntryOp { seq: 4242 });

    assert_eq!((fs.tree(), fs.pending_count()), before, "a rejected replay changes nothing");
    fs.crash_with(&good).unwrap();
}

#[test]
fn normalisation_fills_in_dropped_entries_and_per_inode_order() {
    let mut fs = sim(5);
    fs.open("x", &OpenOptions::create()).unwrap();
    fs.rename("x", "y").unwrap();
    fs.mkdir("z").unwrap();
    let rename_seq = fs.op_seq() - 1;
    // Keep only the rename: normalisation keeps the create it depends on and lists the mkdir as dropped.
    let sparse = CrashDecisions {
        model: CrashModel::Pessimistic,
        files: vec![],
        entries: vec![vfs::EntryDecision { seq: rename_seq, op: String::new(), kept: true }],
    };
    let normal = fs.normalize_decisions(&sparse).unwrap();
    let kept: Vec<(bool, &str)> = normal.entries.iter().map(|e| (e.kept, e.op.as_str())).collect();
    assert_eq!(kept, vec![(true, "link x"), (true, "rename x -> y"), (false, "link z")]);
    fs.crash_with(&sparse).unwrap();
    assert_eq!(fs.tree().keys().collect::<Vec<_>>(), vec!["y"]);
}

/// Decisions replayed on another state may hold garbage their model does not admit there: garbage in a
/// sector that holds synced data under `UnsyncedGarbage`, any garbage under a model without it. They are
/// refused (the caller lets the model choose instead), so a replay can never damage more than the model
/// allows; `Corrupting` takes them.
#[test]
fn replayed_garbage_is_refused_where_the_model_admits_none() {
    // Sector 0 holds 100 synced bytes; an unsynced write covers sectors 0 and 1.
    let build = || {
        let (mut fs, fd) = empty_file();
        fs.append(fd, &[1; 100]).unwrap();
        fs.fsync(fd).unwrap();
        fs.pwrite(fd, 0, &[2; 1024]).unwrap();
        fs
    };
    let fs = build();
    // The enumerator's one garbage image (a tear whose first lost sector, 1, is garbage), and the same
    // garbage moved to sector 0, which the write touched too.
    let torn = fs
        .enumerate_crash_images(CrashModel::Corrupting)
        .into_iter()
        .find(|i| i.label.ends_with("garbage"))
        .expect("a torn image with garbage")
        .decisions;
    let garbage_in = |sector: u64| -> CrashDecisions {
        let mut decisions = torn.clone();
        for f in &mut decisions.files {
            f.sectors.retain(|s| matches!(s.version, vfs::SectorVersion::Garbage(_)));
            for s in &mut f.sectors {
                s.sector = sector;
            }
        }
        decisions
    };
    let cases = [
        (0, CrashModel::UnsyncedGarbage, false),
        (1, CrashModel::UnsyncedGarbage, true),
        (1, CrashModel::Pessimistic, false),
        (0, CrashModel::Corrupting, true),
    ];
    for (sector, model, admitted) in cases {
        let mut decisions = garbage_in(sector);
        decisions.model = model;
        let result = build().crash_with(&decisions);
        assert_eq!(result.is_ok(), admitted, "garbage in sector {sector} under {model:?}: {result:?}");
        if !admitted {
            assert_eq!(result, Err(DecisionError::NotAdmitted { model }));
        }
    }
}
