//! Crash-consistency patterns from the published bug lists of CrashMonkey/ACE (Mohan et al., OSDI 2018,
//! "Finding Crash-Consistency Bugs with Bounded Black-Box Crash Testing") and ALICE (Pillai et al., OSDI
//! 2014, "All File Systems Are Not Created Equal"), replayed against `SimFs`.
//!
//! Why: a simulator finds only the crash bugs its disk can produce. Each test therefore checks both
//! directions of one pattern. What POSIX/Linux guarantees (fsync'd data, names made durable by a
//! directory fsync, atomic rename) must survive every crash model — every image the enumerator lists,
//! each replayed with `crash_with` on a freshly rebuilt identical filesystem, and many seeded crashes.
//! What the guarantee does not cover must really be losable under `Pessimistic` (a model that never
//! loses it would hide the application bugs these papers found), and no image may show a state no
//! real disk could produce (data neither old nor new, a file in two places, a renamed file nowhere).
//! `Ext4Ordered` is checked against what `crash.rs` documents for it: metadata survives as a prefix of
//! program order covering everything before the last successful sync call, and appended data inside the
//! surviving size is never the old zeros.

mod common;

use common::{file_in, fsync_dir, sim, write_file};
use std::collections::{BTreeMap, BTreeSet};
use vfs::{CrashModel, FallocateMode, FileSystem, OpenOptions, SimFs, TreeEntry};

type Tree = BTreeMap<String, TreeEntry>;

/// The tear unit of `common::sim`.
const SECTOR: usize = 512;

/// Seeded crashes per model, on top of the enumerated images.
const SEEDS: u64 = 32;

/// How a test sorts one crash image: a class name, or `Err` for a state no real disk can produce.
type Classify<'a> = &'a dyn Fn(CrashModel, &Tree) -> Result<&'static str, String>;

/// The crash images `model` can make of the state `build(seed)` leaves: every image the enumerator lists
/// (each applied with `crash_with` to a fresh, identical build), then `SEEDS` seeded crashes. Each comes
/// with a label for failure messages; the model's invariants are checked on every image.
fn outcomes(build: &dyn Fn(u64) -> SimFs, model: CrashModel) -> Vec<(String, Tree)> {
    let images = build(0).enumerate_crash_images(model);
    assert!(!images.is_empty(), "{model:?}: the enumerator listed no image");
    let mut out = Vec::new();
    for image in images {
        let label = format!("{model:?} image `{}`", image.label);
        let mut fs = build(0);
        fs.crash_with(&image.decisions).unwrap_or_else(|e| panic!("{label}: {e}"));
        fs.check_invariants().unwrap_or_else(|e| panic!("{label}: {e}"));
        out.push((label, fs.tree()));
    }
    for seed in 0..SEEDS {
        let label = format!("{model:?} seed {seed}");
        let mut fs = build(seed);
        fs.crash(model);
        fs.check_invariants().unwrap_or_else(|e| panic!("{label}: {e}"));
        out.push((label, fs.tree()));
    }
    out
}

/// Classifies every image of every model; fails naming the image if one is impossible. Returns the
/// classes each model reached.
fn reached(build: &dyn Fn(u64) -> SimFs, classify: Classify<'_>) -> BTreeMap<CrashModel, BTreeSet<&'static str>> {
    let mut out = BTreeMap::new();
    for model in CrashModel::ALL {
        let mut classes = BTreeSet::new();
        for (label, tree) in outcomes(build, model) {
            match classify(model, &tree) {
                Ok(class) => {
                    classes.insert(class);
                }
                Err(why) => panic!("{label}: impossible crash image: {why}\n{}", describe(&tree)),
            }
        }
        out.insert(model, classes);
    }
    out
}

fn set(classes: &[&'static str]) -> BTreeSet<&'static str> {
    classes.iter().copied().collect()
}

/// Asserts that `model` reached exactly `expected`.
fn assert_exactly(
    reached: &BTreeMap<CrashModel, BTreeSet<&'static str>>,
    model: CrashModel,
    expected: &[&'static str],
) {
    assert_eq!(reached[&model], set(expected), "{model:?} reached other crash states than expected");
}

/// Asserts that `model` reached (at least) every class in `expected`.
fn assert_reaches(
    reached: &BTreeMap<CrashModel, BTreeSet<&'static str>>,
    model: CrashModel,
    expected: &[&'static str],
) {
    let missing: Vec<_> = expected.iter().filter(|c| !reached[&model].contains(*c)).collect();
    assert!(missing.is_empty(), "{model:?} never reached {missing:?} (reached {:?})", reached[&model]);
}

/// Asserts that every model reached exactly the one class `only` (a guarantee that holds model-independently).
fn assert_every_model(reached: &BTreeMap<CrashModel, BTreeSet<&'static str>>, only: &'static str) {
    for model in CrashModel::ALL {
        assert_exactly(reached, model, &[only]);
    }
}

fn describe(tree: &Tree) -> String {
    tree.iter()
        .map(|(path, entry)| match entry {
            TreeEntry::Dir => format!("  {path}/"),
            TreeEntry::File(data) => format!("  {path}: {} bytes, first {:?}", data.len(), data.first()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `Err` if the tree holds a path outside `allowed`.
fn only(tree: &Tree, allowed: &[&str]) -> Result<(), String> {
    match tree.keys().find(|p| !allowed.contains(&p.as_str())) {
        Some(p) => Err(format!("unexpected path {p}")),
        None => Ok(()),
    }
}

fn is_dir(tree: &Tree, path: &str) -> bool {
    matches!(tree.get(path), Some(TreeEntry::Dir))
}

/// Sector `s` of `data`, `len` bytes, reading zeros past its end.
fn sector_of(data: &[u8], s: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| data.get(s * SECTOR + k).copied().unwrap_or(0)).collect()
}

/// Whether every sector of `got` equals the same sector of one of `versions` (zeros past a version's end).
fn sectors_from(got: &[u8], versions: &[&[u8]]) -> bool {
    (0..got.len().div_ceil(SECTOR)).all(|s| {
        let len = SECTOR.min(got.len() - s * SECTOR);
        let have = &got[s * SECTOR..s * SECTOR + len];
        versions.iter().any(|v| sector_of(v, s, len) == have)
    })
}

/// Bytes whose value names their sector, so a sector at the wrong place shows.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| ((i / SECTOR) as u8).wrapping_mul(7).wrapping_add(salt) | 1).collect()
}

fn open_rw(fs: &mut SimFs, path: &str) -> vfs::Fd {
    fs.open(path, &OpenOptions::read_write()).unwrap()
}

/// CrashMonkey/ACE's most common workload shape and ALICE's "missing directory fsync": create a file,
/// write it, fsync the file, crash. Linux's fsync(2): "Calling fsync() does not necessarily ensure that
/// the entry in the directory containing the file has also reached disk. For that an explicit fsync() on
/// a file descriptor for the directory is also needed." So the file may be missing after a crash — but if
/// its name survives, its data must be the fsync'd data, complete. ext4 commits the whole journal on
/// fsync, so `Ext4Ordered` (earlier metadata persists with any sync call) always keeps the name.
#[test]
fn create_and_fsync_of_the_file_alone_may_lose_its_name() {
    let data = pattern(5000, 3);
    let build = |seed| {
        let mut fs = sim(seed);
        write_file(&mut fs, "foo", &data, true);
        fs
    };
    let classify = |_: CrashModel, t: &Tree| {
        only(t, &["foo"])?;
        match file_in(t, "foo") {
            None => Ok("missing"),
            Some(d) if d == data => Ok("complete"),
            Some(d) => Err(format!("foo has {} bytes that are not its fsync'd data", d.len())),
        }
    };
    let r = reached(&build, &classify);
    assert_exactly(&r, CrashModel::NoLoss, &["complete"]);
    assert_exactly(&r, CrashModel::LoseUnsynced, &["missing"]);
    assert_exactly(&r, CrashModel::Pessimistic, &["missing", "complete"]);
    assert_exactly(&r, CrashModel::Corrupting, &["missing", "complete"]);
    assert_exactly(&r, CrashModel::Ext4Ordered, &["complete"]);
}

/// The fix for the previous pattern, as CrashMonkey's and ALICE's reports prescribe: create, write,
/// fsync(file), fsync(parent directory). POSIX: after both calls return, the name and the data are
/// durable, so the file survives every crash with exactly its data, whatever the crash model.
#[test]
fn create_and_fsync_of_file_and_parent_is_never_lost() {
    let data = pattern(5000, 5);
    let build = |seed| {
        let mut fs = sim(seed);
        fs.mkdir("dir").unwrap();
        fsync_dir(&mut fs, "/");
        write_file(&mut fs, "dir/foo", &data, true);
        fsync_dir(&mut fs, "dir");
        fs
    };
    let classify = |_: CrashModel, t: &Tree| {
        only(t, &["dir", "dir/foo"])?;
        match file_in(t, "dir/foo") {
            Some(d) if d == data => Ok("complete"),
            Some(d) => Err(format!("dir/foo has {} bytes that are not its fsync'd data", d.len())),
            None => Err("dir/foo lost although file and parent were fsync'd".to_string()),
        }
    };
    assert_every_model(&reached(&build, &classify), "complete");
}

/// CrashMonkey/ACE's "new directory + new file, fsync only the file" workload shape (the bug class where
/// a file fsync'd inside a freshly created directory was missing after recovery): mkdir A, create A/foo,
/// fsync(A/foo). POSIX persists neither A's name in the root nor foo's name in A, so the file may vanish
/// together with its directory. fsync(A) persists foo's name in A but not A's own name, so both may
/// still vanish — but A can no longer come back without foo. Only fsync(A) and fsync(root) together make
/// the path durable. In every case a surviving A/foo has its fsync'd data.
#[test]
fn child_of_a_new_directory_fsynced_alone_may_vanish_with_the_directory() {
    #[derive(Clone, Copy, PartialEq)]
    enum Syncs {
        OnlyChild,
        ChildAndDir,
        WholePath,
    }
    let data = pattern(3000, 9);
    for syncs in [Syncs::OnlyChild, Syncs::ChildAndDir, Syncs::WholePath] {
        let build = |seed| {
            let mut fs = sim(seed);
            fs.mkdir("A").unwrap();
            write_file(&mut fs, "A/foo", &data, true);
            if syncs != Syncs::OnlyChild {
                fsync_dir(&mut fs, "A");
            }
            if syncs == Syncs::WholePath {
                fsync_dir(&mut fs, "/");
            }
            fs
        };
        let classify = |_: CrashModel, t: &Tree| {
            only(t, &["A", "A/foo"])?;
            match (is_dir(t, "A"), file_in(t, "A/foo")) {
                (false, _) => Ok("nothing"),
                (true, None) if syncs == Syncs::OnlyChild => Ok("empty dir"),
                (true, None) => Err("A survived without foo although fsync(A) made foo's name durable".to_string()),
                (true, Some(d)) if d == data => Ok("dir and file"),
                (true, Some(d)) => Err(format!("A/foo has {} bytes that are not its fsync'd data", d.len())),
            }
        };
        let r = reached(&build, &classify);
        match syncs {
            Syncs::OnlyChild => {
                assert_exactly(&r, CrashModel::Pessimistic, &["nothing", "empty dir", "dir and file"]);
                assert_exactly(&r, CrashModel::LoseUnsynced, &["nothing"]);
                assert_exactly(&r, CrashModel::Ext4Ordered, &["dir and file"]);
            }
            Syncs::ChildAndDir => {
                assert_exactly(&r, CrashModel::Pessimistic, &["nothing", "dir and file"]);
                assert_exactly(&r, CrashModel::LoseUnsynced, &["nothing"]);
                assert_exactly(&r, CrashModel::Ext4Ordered, &["dir and file"]);
            }
            Syncs::WholePath => assert_every_model(&r, "dir and file"),
        }
        assert_exactly(&r, CrashModel::NoLoss, &["dir and file"]);
    }
}

/// ALICE's rename-atomicity finding and CrashMonkey's "rename over an existing file" workloads: f is
/// durable with old content; tmp is created, written and fsync'd; rename(tmp, f); no directory fsync.
/// POSIX rename(2) is atomic: after a crash f holds the old or the new content — never neither, never a
/// mix — and the new inode is never in two places (tmp may survive only while f is still old).
#[test]
fn rename_over_an_existing_file_keeps_old_or_new_never_neither() {
    let old = pattern(3000, 11);
    let new = pattern(5000, 77);
    let build = |seed| {
        let mut fs = sim(seed);
        write_file(&mut fs, "f", &old, true);
        fsync_dir(&mut fs, "/");
        write_file(&mut fs, "tmp", &new, true);
        fs.rename("tmp", "f").unwrap();
        fs
    };
    let classify = |_: CrashModel, t: &Tree| {
        only(t, &["f", "tmp"])?;
        let f = file_in(t, "f").ok_or("f lost: neither old nor new content survived")?;
        match (f == old, f == new, file_in(t, "tmp")) {
            (true, _, None) => Ok("old"),
            (true, _, Some(d)) if d == new => Ok("old, tmp kept"),
            (true, _, Some(d)) => Err(format!("tmp has {} bytes that are not its fsync'd data", d.len())),
            (_, true, None) => Ok("new"),
            (_, true, Some(_)) => Err("the renamed inode is in two places".to_string()),
            _ => Err(format!("f has {} bytes that are neither old nor new (a mix)", f.len())),
        }
    };
    let r = reached(&build, &classify);
    assert_exactly(&r, CrashModel::NoLoss, &["new"]);
    assert_exactly(&r, CrashModel::LoseUnsynced, &["old"]);
    assert_exactly(&r, CrashModel::Pessimistic, &["old", "old, tmp kept", "new"]);
    assert_exactly(&r, CrashModel::Corrupting, &["old", "old, tmp kept", "new"]);
    // The fsync of tmp commits its creation on ext4; the later rename may or may not be committed.
    assert_exactly(&r, CrashModel::Ext4Ordered, &["old, tmp kept", "new"]);
}

/// ALICE's canonical atomic-replace idiom (the one its study found applications getting wrong): write
/// tmp, fsync(tmp), rename(tmp, target), fsync(dir). POSIX: once the directory fsync returns, the target
/// holds the new content, complete, in every crash, and tmp is gone.
#[test]
fn atomic_replace_idiom_always_yields_the_new_content() {
    let old = pattern(4096, 21);
    let new = pattern(9000, 33);
    let build = |seed| {
        let mut fs = sim(seed);
        fs.mkdir("db").unwrap();
        fsync_dir(&mut fs, "/");
        write_file(&mut fs, "db/CURRENT", &old, true);
        fsync_dir(&mut fs, "db");
        write_file(&mut fs, "db/CURRENT.tmp", &new, true);
        fs.rename("db/CURRENT.tmp", "db/CURRENT").unwrap();
        fsync_dir(&mut fs, "db");
        fs
    };
    let classify = |_: CrashModel, t: &Tree| {
        only(t, &["db", "db/CURRENT"])?;
        match file_in(t, "db/CURRENT") {
            Some(d) if d == new => Ok("new"),
            Some(d) if d == old => Err("the durable rename was lost: CURRENT is old".to_string()),
            Some(d) => Err(format!("CURRENT has {} bytes that are neither old nor new", d.len())),
            None => Err("CURRENT lost".to_string()),
        }
    };
    assert_every_model(&reached(&build, &classify), "new");
}

/// ALICE's best-known finding (the ext4 delayed-allocation "zero-length file" problem): the replace idiom
/// without fsync of tmp — write tmp, rename(tmp, target), with or without fsync(dir). POSIX orders
/// nothing between the data and the rename, so under `Pessimistic` the target may end up empty or with
/// zero sectors, although the rename is durable. ext4 `data=ordered` writes the data before the
/// metadata that exposes it, so under `Ext4Ordered` the target is never empty: old or new content
/// without the directory fsync, always new with it. The target is never missing, and never old once the
/// directory was fsync'd.
#[test]
fn replace_without_fsync_of_tmp_may_leave_an_empty_file_but_not_on_ext4_ordered() {
    let old = pattern(3000, 41);
    let new = pattern(6000, 91);
    for dir_fsync in [true, false] {
        let build = |seed| {
            let mut fs = sim(seed);
            write_file(&mut fs, "f", &old, true);
            fsync_dir(&mut fs, "/");
            write_file(&mut fs, "tmp", &new, false);
            fs.rename("tmp", "f").unwrap();
            if dir_fsync {
                fsync_dir(&mut fs, "/");
            }
            fs
        };
        // The unsynced new inode: empty, complete, or its size with some sectors never written.
        let unsynced = |model: CrashModel, d: &[u8]| -> Result<&'static str, String> {
            if d.is_empty() {
                Ok("empty")
            } else if d == new {
                Ok("new")
            } else if d.len() != new.len() {
                Err(format!("{} bytes: a size the file never had", d.len()))
            } else if sectors_from(d, &[&new, &[]]) {
                Ok("zero sectors")
            } else if model.garbles() {
                Ok("garbled")
            } else {
                Err("sectors that are neither written nor zero".to_string())
            }
        };
        let classify = |model: CrashModel, t: &Tree| {
            only(t, &["f", "tmp"])?;
            let f = file_in(t, "f").ok_or("f lost: neither old nor new")?;
            if f == old {
                if dir_fsync {
                    return Err("f is old although the rename was made durable".to_string());
                }
                if let Some(tmp) = file_in(t, "tmp") {
                    unsynced(model, &tmp).map_err(|e| format!("tmp: {e}"))?;
                }
                return Ok("old");
            }
            if t.contains_key("tmp") {
                return Err("the renamed inode is in two places".to_string());
            }
            unsynced(model, &f).map_err(|e| format!("f: {e}"))
        };
        let r = reached(&build, &classify);
        assert_exactly(&r, CrashModel::NoLoss, &["new"]);
        assert_reaches(&r, CrashModel::Pessimistic, &["empty", "zero sectors", "new"]);
        if dir_fsync {
            assert_exactly(&r, CrashModel::LoseUnsynced, &["empty"]);
            assert_exactly(&r, CrashModel::Ext4Ordered, &["new"]);
        } else {
            assert_exactly(&r, CrashModel::LoseUnsynced, &["old"]);
            assert_exactly(&r, CrashModel::Ext4Ordered, &["old", "new"]);
            assert_reaches(&r, CrashModel::Pessimistic, &["old"]);
        }
    }
}

/// ALICE's "overwrite atomicity" assumption and CrashMonkey's write-after-fsync workloads: a file is
/// durable with content A; sectors 1..14 are overwritten with B and not synced. Linux promises nothing
/// for the overwrite, and disks tear at sector granularity in any order, so each sector holds A or B
/// independently (torn, and not only as a prefix) — but never anything else, the size never changes,
/// and sectors the write did not touch keep A in every model. Once the file is fsync'd, B is there in
/// every model.
#[test]
fn unsynced_overwrite_of_synced_data_keeps_each_sector_old_or_new() {
    let a = vec![b'a'; 8192];
    let mut b = a.clone();
    b[SECTOR..15 * SECTOR].fill(b'b');
    for synced in [false, true] {
        let build = |seed| {
            let mut fs = sim(seed);
            write_file(&mut fs, "f", &a, true);
            fsync_dir(&mut fs, "/");
            let fd = open_rw(&mut fs, "f");
            fs.pwrite(fd, SECTOR as u64, &b[SECTOR..15 * SECTOR]).unwrap();
            if synced {
                fs.fsync(fd).unwrap();
            }
            fs
        };
        let classify = |model: CrashModel, t: &Tree| {
            only(t, &["f"])?;
            let f = file_in(t, "f").ok_or("f lost")?;
            if f.len() != a.len() {
                return Err(format!("an overwrite changed the size to {}", f.len()));
            }
            if f[..SECTOR] != a[..SECTOR] || f[15 * SECTOR..] != a[15 * SECTOR..] {
                return Err("a sector the write never touched changed".to_string());
            }
            let new: Vec<bool> =
                (1..15).map(|s| f[s * SECTOR..(s + 1) * SECTOR] == b[s * SECTOR..(s + 1) * SECTOR]).collect();
            let old: Vec<bool> =
                (1..15).map(|s| f[s * SECTOR..(s + 1) * SECTOR] == a[s * SECTOR..(s + 1) * SECTOR]).collect();
            if (0..14).any(|i| !new[i] && !old[i]) {
                return if model == CrashModel::Corrupting {
                    Ok("garbled")
                } else {
                    Err("a sector is neither old nor new".to_string())
                };
            }
            Ok(if new.iter().all(|n| *n) {
                "new"
            } else if old.iter().all(|o| *o) {
                "old"
            } else if new.windows(2).all(|w| w[0] || !w[1]) {
                "torn prefix"
            } else {
                "torn out of order"
            })
        };
        let r = reached(&build, &classify);
        if synced {
            assert_every_model(&r, "new");
        } else {
            assert_exactly(&r, CrashModel::NoLoss, &["new"]);
            assert_exactly(&r, CrashModel::LoseUnsynced, &["old"]);
            assert_reaches(&r, CrashModel::Pessimistic, &["old", "new", "torn prefix", "torn out of order"]);
            // ext4 orders appends, not overwrites: they tear per sector there too.
            assert_reaches(&r, CrashModel::Ext4Ordered, &["old", "new", "torn out of order"]);
            assert_reaches(&r, CrashModel::Corrupting, &["garbled"]);
            // Every sector overwritten here held synced data: no garbage in them.
            assert!(!r[&CrashModel::UnsyncedGarbage].contains("garbled"), "unsynced garbage over synced data");
        }
    }
}

/// CrashMonkey/ACE's fdatasync bug class (a new size lost after append + fdatasync, since fdatasync may
/// skip metadata): append to a durable file, fdatasync. fdatasync(2) must flush the size
/// when it changed, so size and data survive every model. A further unsynced append may be lost, or
/// survive with its size but zero sectors (ALICE: appends are not atomic) under `Pessimistic`; under
/// `Ext4Ordered` appended data inside the surviving size is never zeros. The fdatasync'd prefix is never
/// damaged (in `Corrupting`, only its last sector may be, as the in-flight append shares it; in
/// `UnsyncedGarbage` not even that one, since it holds synced bytes).
#[test]
fn append_then_fdatasync_keeps_size_and_data() {
    let mut synced = vec![b'x'; 1000];
    synced.extend(vec![b'y'; 3000]);
    let mut all = synced.clone();
    all.extend(vec![b'z'; 2000]);
    for extra_append in [false, true] {
        let build = |seed| {
            let mut fs = sim(seed);
            write_file(&mut fs, "log", &synced[..1000], true);
            fsync_dir(&mut fs, "/");
            let fd = open_rw(&mut fs, "log");
            assert_eq!(fs.append(fd, &synced[1000..]).unwrap(), 1000);
            fs.fdatasync(fd).unwrap();
            if extra_append {
                assert_eq!(fs.append(fd, &all[4000..]).unwrap(), 4000);
            }
            fs
        };
        let classify = |model: CrashModel, t: &Tree| {
            only(t, &["log"])?;
            let log = file_in(t, "log").ok_or("log lost")?;
            let intact = if model == CrashModel::Corrupting { 7 * SECTOR } else { 4000 };
            if log.len() < 4000 || log[..intact] != synced[..intact] {
                return Err(format!("the fdatasync'd 4000 bytes are damaged (size {})", log.len()));
            }
            if log == synced {
                Ok("synced size")
            } else if log.len() == synced.len() && model.garbles() {
                Ok("garbled")
            } else if log == all {
                Ok("complete")
            } else if log.len() != all.len() {
                Err(format!("size {} was never the file's size", log.len()))
            } else if sectors_from(&log, &[&all, &synced]) {
                Ok("zero sectors")
            } else if model.garbles() {
                Ok("garbled")
            } else {
                Err("appended sectors hold neither the data nor zeros".to_string())
            }
        };
        let r = reached(&build, &classify);
        if !extra_append {
            assert_every_model(&r, "synced size");
        } else {
            assert_exactly(&r, CrashModel::NoLoss, &["complete"]);
            assert_exactly(&r, CrashModel::LoseUnsynced, &["synced size"]);
            assert_exactly(&r, CrashModel::Pessimistic, &["synced size", "complete", "zero sectors"]);
            assert_exactly(&r, CrashModel::Ext4Ordered, &["synced size", "complete"]);
        }
    }
}

/// CrashMonkey/ACE's truncate bug class (the old size recovered after ftruncate + fsync):
/// shrink a durable file with set_len, fsync; or shrink, fsync, grow, fsync. fsync(2) persists the size,
/// so every model recovers exactly the new size (a grown file reads zeros past the old end). A further
/// unsynced shrink may be lost (`Pessimistic`, `LoseUnsynced`), leaving the synced size; the cut-off
/// sectors then hold their old bytes or the zeros the truncation wrote, nothing else.
#[test]
fn truncate_then_fsync_keeps_the_new_size() {
    let data = pattern(10_000, 13);
    let short = data[..3000].to_vec();
    let mut grown = short.clone();
    grown.resize(20_000, 0);
    let shortest = data[..1000].to_vec();
    #[derive(Clone, Copy, PartialEq)]
    enum Then {
        Nothing,
        GrowAndFsync,
        UnsyncedShrink,
    }
    for then in [Then::Nothing, Then::GrowAndFsync, Then::UnsyncedShrink] {
        let build = |seed| {
            let mut fs = sim(seed);
            write_file(&mut fs, "f", &data, true);
            fsync_dir(&mut fs, "/");
            let fd = open_rw(&mut fs, "f");
            fs.set_len(fd, 3000).unwrap();
            fs.fsync(fd).unwrap();
            match then {
                Then::Nothing => {}
                Then::GrowAndFsync => {
                    fs.set_len(fd, 20_000).unwrap();
                    fs.fsync(fd).unwrap();
                }
                Then::UnsyncedShrink => fs.set_len(fd, 1000).unwrap(),
            }
            fs
        };
        let classify = |_: CrashModel, t: &Tree| {
            only(t, &["f"])?;
            let f = file_in(t, "f").ok_or("f lost")?;
            if f == short {
                Ok("3000")
            } else if f == grown {
                Ok("20000")
            } else if f == shortest {
                Ok("1000")
            } else if f.len() == 3000 && sectors_from(&f, &[&short, &shortest]) {
                Ok("3000, tail zeroed")
            } else {
                Err(format!("{} bytes that match no size or content the file had", f.len()))
            }
        };
        let r = reached(&build, &classify);
        match then {
            Then::Nothing => assert_every_model(&r, "3000"),
            Then::GrowAndFsync => assert_every_model(&r, "20000"),
            Then::UnsyncedShrink => {
                assert_exactly(&r, CrashModel::NoLoss, &["1000"]);
                assert_exactly(&r, CrashModel::LoseUnsynced, &["3000"]);
                assert_reaches(&r, CrashModel::Pessimistic, &["1000", "3000"]);
                assert_reaches(&r, CrashModel::Ext4Ordered, &["1000", "3000"]);
            }
        }
    }
}

/// CrashMonkey/ACE's fallocate(FALLOC_FL_KEEP_SIZE) bug class (a recovered size, or blocks, that
/// included the range preallocated past EOF after KEEP_SIZE + fsync): preallocate past EOF with
/// KEEP_SIZE, with and without fsync, then write a little inside the preallocated range and fdatasync.
/// KEEP_SIZE must never change the size, before or after a crash, in any model; the later write extends
/// the file to exactly its end, with a hole of zeros before it.
#[test]
fn fallocate_keep_size_then_fsync_never_changes_the_size() {
    let data = pattern(5000, 17);
    let mut written = data.clone();
    written.resize(6000, 0);
    written.extend(vec![b'w'; 100]);
    for (fsync, write_after) in [(false, false), (true, false), (true, true)] {
        let build = |seed| {
            let mut fs = sim(seed);
            write_file(&mut fs, "f", &data, true);
            fsync_dir(&mut fs, "/");
            let fd = open_rw(&mut fs, "f");
            fs.fallocate(fd, FallocateMode::KeepSize, 4096, 65_536).unwrap();
            assert_eq!(fs.fstat(fd).unwrap().len, 5000, "KEEP_SIZE changed the size");
            if fsync {
                fs.fsync(fd).unwrap();
            }
            if write_after {
                fs.pwrite(fd, 6000, &[b'w'; 100]).unwrap();
                fs.fdatasync(fd).unwrap();
            }
            fs
        };
        let classify = |_: CrashModel, t: &Tree| {
            only(t, &["f"])?;
            match file_in(t, "f") {
                Some(f) if f == data => Ok("unchanged"),
                Some(f) if f == written => Ok("written"),
                Some(f) => Err(format!("{} bytes: KEEP_SIZE or the write changed the size or data", f.len())),
                None => Err("f lost".to_string()),
            }
        };
        let r = reached(&build, &classify);
        assert_every_model(&r, if write_after { "written" } else { "unchanged" });
    }
}

/// CrashMonkey/ACE's fallocate (mode 0) + fdatasync bug class (the extended size lost although fdatasync
/// returned): preallocating past EOF without KEEP_SIZE extends the file, and fdatasync must persist a changed
/// size, so every model recovers the new size with zeros past the old end. Without the fdatasync the
/// extension may be lost: `Pessimistic` reaches both sizes, and no other.
#[test]
fn fallocate_extend_then_fdatasync_keeps_the_new_size() {
    let data = pattern(5000, 19);
    let mut extended = data.clone();
    extended.resize(4096 + 16_384, 0);
    for fdatasync in [true, false] {
        let build = |seed| {
            let mut fs = sim(seed);
            write_file(&mut fs, "f", &data, true);
            fsync_dir(&mut fs, "/");
            let fd = open_rw(&mut fs, "f");
            fs.fallocate(fd, FallocateMode::Extend, 4096, 16_384).unwrap();
            assert_eq!(fs.fstat(fd).unwrap().len, 20_480);
            if fdatasync {
                fs.fdatasync(fd).unwrap();
            }
            fs
        };
        let classify = |_: CrashModel, t: &Tree| {
            only(t, &["f"])?;
            match file_in(t, "f") {
                Some(f) if f == extended => Ok("extended"),
                Some(f) if f == data => Ok("old size"),
                Some(f) => Err(format!("{} bytes: neither the old nor the extended file", f.len())),
                None => Err("f lost".to_string()),
            }
        };
        let r = reached(&build, &classify);
        if fdatasync {
            assert_every_model(&r, "extended");
        } else {
            assert_exactly(&r, CrashModel::NoLoss, &["extended"]);
            assert_exactly(&r, CrashModel::LoseUnsynced, &["old size"]);
            assert_exactly(&r, CrashModel::Pessimistic, &["extended", "old size"]);
            assert_exactly(&r, CrashModel::Ext4Ordered, &["extended", "old size"]);
        }
    }
}

/// CrashMonkey/ACE's directory-rename workload shape (the bug class where a renamed directory or its
/// children were missing after fsync of the new parent): A/sub/x and B are durable; rename(A/sub, B/sub). After
/// fsync(B) the rename is durable — both halves, atomically — so every model finds the subtree under B
/// with x intact, and nothing left under A. Without the fsync the rename may be lost, but the subtree is
/// always in exactly one place, never in both and never nowhere.
#[test]
fn directory_rename_then_fsync_of_the_new_parent_keeps_children_reachable() {
    let data = pattern(2500, 23);
    for fsync_new_parent in [true, false] {
        let build = |seed| {
            let mut fs = sim(seed);
            fs.mkdir_all("A/sub").unwrap();
            write_file(&mut fs, "A/sub/x", &data, true);
            fs.mkdir("B").unwrap();
            fs.sync().unwrap();
            fs.rename("A/sub", "B/sub").unwrap();
            if fsync_new_parent {
                fsync_dir(&mut fs, "B");
            }
            fs
        };
        let classify = |_: CrashModel, t: &Tree| {
            only(t, &["A", "B", "A/sub", "A/sub/x", "B/sub", "B/sub/x"])?;
            if !is_dir(t, "A") || !is_dir(t, "B") {
                return Err("a durable directory vanished".to_string());
            }
            let place = |p: &str| -> Result<bool, String> {
                match (is_dir(t, p), file_in(t, &format!("{p}/x"))) {
                    (false, _) => Ok(false),
                    (true, Some(d)) if d == data => Ok(true),
                    (true, _) => Err(format!("{p} survived without its durable child x intact")),
                }
            };
            match (place("A/sub")?, place("B/sub")?) {
                (true, false) => Ok("old place"),
                (false, true) => Ok("new place"),
                (true, true) => Err("the directory is in two places".to_string()),
                (false, false) => Err("the directory is nowhere".to_string()),
            }
        };
        let r = reached(&build, &classify);
        if fsync_new_parent {
            assert_every_model(&r, "new place");
        } else {
            assert_exactly(&r, CrashModel::NoLoss, &["new place"]);
            assert_exactly(&r, CrashModel::LoseUnsynced, &["old place"]);
            assert_exactly(&r, CrashModel::Pessimistic, &["old place", "new place"]);
            assert_exactly(&r, CrashModel::Ext4Ordered, &["old place", "new place"]);
        }
    }
}

/// CrashMonkey/ACE's "rename + fsync(file)" bug class (a file renamed across directories and then
/// fsync'd was lost from both names, or left under both): A/f is durable; rename(A/f, B/f); fsync of the file
/// itself, not of a directory. POSIX does not make the rename durable, but it is atomic: the file is at
/// exactly one of the two names with its data. ext4 commits the rename with the fsync.
#[test]
fn rename_then_fsync_of_the_file_leaves_it_in_exactly_one_place() {
    let data = pattern(1500, 29);
    let build = |seed| {
        let mut fs = sim(seed);
        fs.mkdir("A").unwrap();
        fs.mkdir("B").unwrap();
        write_file(&mut fs, "A/f", &data, true);
        fs.sync().unwrap();
        fs.rename("A/f", "B/f").unwrap();
        let fd = open_rw(&mut fs, "B/f");
        fs.fsync(fd).unwrap();
        fs
    };
    let classify = |_: CrashModel, t: &Tree| {
        only(t, &["A", "B", "A/f", "B/f"])?;
        let (a, b) = (file_in(t, "A/f"), file_in(t, "B/f"));
        if [&a, &b].iter().any(|x| x.as_ref().is_some_and(|d| *d != data)) {
            return Err("the file's durable data changed".to_string());
        }
        match (a.is_some(), b.is_some()) {
            (true, false) => Ok("old name"),
            (false, true) => Ok("new name"),
            (true, true) => Err("the file is under both names".to_string()),
            (false, false) => Err("the file is under neither name".to_string()),
        }
    };
    let r = reached(&build, &classify);
    assert_exactly(&r, CrashModel::NoLoss, &["new name"]);
    assert_exactly(&r, CrashModel::LoseUnsynced, &["old name"]);
    assert_exactly(&r, CrashModel::Pessimistic, &["old name", "new name"]);
    assert_exactly(&r, CrashModel::Ext4Ordered, &["new name"]);
}

/// CrashMonkey/ACE's unlink workload shape (the bug class where an unlinked file reappeared after fsync
/// of its directory): f and g are durable; unlink(f), with a handle on f kept open that writes and fsyncs the
/// orphan; then fsync(dir). The unlink is durable: f is gone after every crash (an open handle does not
/// resurrect it) and g is untouched. Without the directory fsync f may come back — with its old
/// durable data exactly — or stay gone.
#[test]
fn unlink_then_dir_fsync_is_gone_after_every_crash() {
    let f_data = pattern(2000, 31);
    let g_data = pattern(1000, 37);
    for dir_fsync in [true, false] {
        let build = |seed| {
            let mut fs = sim(seed);
            write_file(&mut fs, "f", &f_data, true);
            write_file(&mut fs, "g", &g_data, true);
            fsync_dir(&mut fs, "/");
            let fd = open_rw(&mut fs, "f");
            fs.unlink("f").unwrap();
            if dir_fsync {
                // Writing the orphan through the open handle, even durably, must not bring the name back.
                fs.pwrite(fd, 0, &[b'o'; 700]).unwrap();
                fs.fsync(fd).unwrap();
                fsync_dir(&mut fs, "/");
            }
            fs
        };
        let classify = |_: CrashModel, t: &Tree| {
            only(t, &["f", "g"])?;
            if file_in(t, "g").as_deref() != Some(&g_data[..]) {
                return Err("g changed".to_string());
            }
            match file_in(t, "f") {
                None => Ok("gone"),
                Some(d) if d == f_data => Ok("back"),
                Some(d) => Err(format!("f came back with {} bytes that are not its durable data", d.len())),
            }
        };
        let r = reached(&build, &classify);
        if dir_fsync {
            assert_every_model(&r, "gone");
        } else {
            assert_exactly(&r, CrashModel::NoLoss, &["gone"]);
            assert_exactly(&r, CrashModel::LoseUnsynced, &["back"]);
            assert_exactly(&r, CrashModel::Pessimistic, &["gone", "back"]);
            assert_exactly(&r, CrashModel::Ext4Ordered, &["gone", "back"]);
        }
    }
}

/// CrashMonkey/ACE's rmdir workload shape (the bug class where a removed directory reappeared after
/// fsync of its parent): p/q is durable; rmdir(p/q); fsync(p). The removal
/// is then durable in every model; without the parent fsync q may come back (empty, as it was).
#[test]
fn rmdir_then_parent_fsync_is_gone_after_every_crash() {
    for parent_fsync in [true, false] {
        let build = |seed| {
            let mut fs = sim(seed);
            fs.mkdir_all("p/q").unwrap();
            fs.sync().unwrap();
            fs.rmdir("p/q").unwrap();
            if parent_fsync {
                fsync_dir(&mut fs, "p");
            }
            fs
        };
        let classify = |_: CrashModel, t: &Tree| {
            only(t, &["p", "p/q"])?;
            if !is_dir(t, "p") {
                return Err("p vanished".to_string());
            }
            Ok(if is_dir(t, "p/q") { "back" } else { "gone" })
        };
        let r = reached(&build, &classify);
        if parent_fsync {
            assert_every_model(&r, "gone");
        } else {
            assert_exactly(&r, CrashModel::NoLoss, &["gone"]);
            assert_exactly(&r, CrashModel::LoseUnsynced, &["back"]);
            assert_exactly(&r, CrashModel::Pessimistic, &["gone", "back"]);
        }
    }
}

/// ALICE's "directory fsync does not persist file data" (and the ext4 zero-length-file reports): create
/// and write f, fsync only the directory. The name is durable in every model, but the data is not:
/// f may be empty (`LoseUnsynced`, `Pessimistic`) or have its size with zero sectors (`Pessimistic`).
/// Under `Ext4Ordered` the directory fsync commits the earlier size change, and appended data within
/// it is never zeros, so f is complete.
#[test]
fn dir_fsync_persists_a_name_but_not_its_data() {
    let data = pattern(3000, 43);
    let build = |seed| {
        let mut fs = sim(seed);
        write_file(&mut fs, "f", &data, false);
        fsync_dir(&mut fs, "/");
        fs
    };
    let classify = |model: CrashModel, t: &Tree| {
        only(t, &["f"])?;
        let f = file_in(t, "f").ok_or("f lost although its directory was fsync'd")?;
        if f.is_empty() {
            Ok("empty")
        } else if f == data {
            Ok("complete")
        } else if f.len() != data.len() {
            Err(format!("size {} the file never had", f.len()))
        } else if sectors_from(&f, &[&data, &[]]) {
            Ok("zero sectors")
        } else if model.garbles() {
            Ok("garbled")
        } else {
            Err("sectors that are neither written nor zero".to_string())
        }
    };
    let r = reached(&build, &classify);
    assert_exactly(&r, CrashModel::NoLoss, &["complete"]);
    assert_exactly(&r, CrashModel::LoseUnsynced, &["empty"]);
    assert_exactly(&r, CrashModel::Pessimistic, &["empty", "complete", "zero sectors"]);
    assert_exactly(&r, CrashModel::Ext4Ordered, &["complete"]);
}

/// The ext4-versus-POSIX distinction CrashMonkey and ALICE both draw (applications that "work on ext4"
/// because its fsync commits the whole journal): create and write a, then write and fsync an unrelated
/// durable file b. POSIX persists only b, so under `Pessimistic` a may be missing; under `Ext4Ordered`
/// the fsync commits a's creation and size, and its appended data, so a is always there, complete. b
/// holds its fsync'd content in every model.
#[test]
fn ext4_ordered_fsync_of_an_unrelated_file_persists_an_earlier_create() {
    let a_data = pattern(3000, 47);
    let mut b_data = vec![1u8; 1000];
    b_data[..100].fill(3);
    let build = |seed| {
        let mut fs = sim(seed);
        write_file(&mut fs, "b", &[1u8; 1000], true);
        fsync_dir(&mut fs, "/");
        write_file(&mut fs, "a", &a_data, false);
        let fd = open_rw(&mut fs, "b");
        fs.pwrite(fd, 0, &[3u8; 100]).unwrap();
        fs.fsync(fd).unwrap();
        fs
    };
    let classify = |model: CrashModel, t: &Tree| {
        only(t, &["a", "b"])?;
        if file_in(t, "b").as_deref() != Some(&b_data[..]) {
            return Err("b lost its fsync'd content".to_string());
        }
        match file_in(t, "a") {
            None => Ok("a missing"),
            Some(d) if d == a_data => Ok("a complete"),
            Some(d) if d.is_empty() || (d.len() == a_data.len() && sectors_from(&d, &[&a_data, &[]])) => {
                Ok("a partial")
            }
            Some(_) if model.garbles() => Ok("a garbled"),
            Some(d) => Err(format!("a has {} bytes it never had", d.len())),
        }
    };
    let r = reached(&build, &classify);
    assert_exactly(&r, CrashModel::Ext4Ordered, &["a complete"]);
    assert_reaches(&r, CrashModel::Pessimistic, &["a missing", "a complete"]);
    assert_exactly(&r, CrashModel::NoLoss, &["a complete"]);
    assert_exactly(&r, CrashModel::LoseUnsynced, &["a missing"]);
}
