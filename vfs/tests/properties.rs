//! Seeded property tests over random call sequences, each ending in a power cut under a random model:
//! every sector of a crash image equals a version from its history; fsync'd data survives every model;
//! rename is all-or-nothing and a file is never in two places; the same decisions give the same image.

mod common;

use common::{below, fsync_dir, rng, sim};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use vfs::{CrashDecisions, CrashModel, FallocateMode, Fd, FileSystem, OpenOptions, SimFs, TreeEntry};

const SECTOR: usize = 512;
const FILES: [&str; 3] = ["f0", "f1", "f2"];

fn content(fs: &SimFs, path: &str) -> Vec<u8> {
    match fs.tree().get(path) {
        Some(TreeEntry::File(data)) => data.clone(),
        other => panic!("{path} is not a file: {other:?}"),
    }
}

fn model_for(r: &mut ChaCha8Rng) -> CrashModel {
    [CrashModel::NoLoss, CrashModel::LoseUnsynced, CrashModel::Pessimistic, CrashModel::Ext4Ordered]
        [below(r, 4) as usize]
}

/// What random data operations did to each of the three files.
struct Run {
    /// Every version since the last successful fsync, the first being the durable one.
    versions: Vec<Vec<Vec<u8>>>,
    /// The file's last operation was an fsync.
    synced_last: Vec<bool>,
    /// Sectors unsynced writes covered.
    written: Vec<BTreeSet<usize>>,
    /// The file's content right after the call with this sequence number.
    after_seq: BTreeMap<u64, Vec<u8>>,
}

/// Runs random data operations on three durable files.
fn random_data_ops(fs: &mut SimFs, r: &mut ChaCha8Rng, steps: usize) -> Run {
    let fds: Vec<Fd> = FILES.iter().map(|f| fs.open(f, &OpenOptions::create()).unwrap()).collect();
    for fd in &fds {
        fs.fsync(*fd).unwrap();
    }
    fsync_dir(fs, "/");
    let mut versions: Vec<Vec<Vec<u8>>> = FILES.iter().map(|_| vec![Vec::new()]).collect();
    let mut synced_last = vec![true; FILES.len()];
    let mut written: Vec<BTreeSet<usize>> = FILES.iter().map(|_| BTreeSet::new()).collect();
    let mut after_seq = BTreeMap::new();
    for step in 0..steps {
        let i = below(r, FILES.len() as u64) as usize;
        let fd = fds[i];
        let byte = (step % 250) as u8 + 1;
        match below(r, 10) {
            0..=3 => {
                let aligned = below(r, 3) == 0;
                let (offset, len) = if aligned {
                    (below(r, 5) * 4096, (1 + below(r, 2)) as usize * 4096)
                } else {
                    (below(r, 20_000), 1 + below(r, 3000) as usize)
                };
                fs.pwrite(fd, offset, &vec![byte; len]).unwrap();
                written[i].extend(offset as usize / SECTOR..=(offset as usize + len - 1) / SECTOR);
            }
            4 | 5 => {
                let len = 1 + below(r, 1500) as usize;
                let at = fs.append(fd, &vec![byte; len]).unwrap() as usize;
                written[i].extend(at / SECTOR..=(at + len - 1) / SECTOR);
            }
            6 => fs.set_len(fd, below(r, 20_000)).unwrap(),
            7 => fs.fallocate(fd, FallocateMode::Extend, below(r, 10_000), 1 + below(r, 10_000)).unwrap(),
            _ => {
                if below(r, 2) == 0 {
                    fs.fsync(fd).unwrap()
                } else {
                    fs.fdatasync(fd).unwrap()
                }
                versions[i] = vec![content(fs, FILES[i])];
                synced_last[i] = true;
                written[i].clear();
                continue;
            }
        }
        versions[i].push(content(fs, FILES[i]));
        after_seq.insert(fs.op_seq(), content(fs, FILES[i]));
        synced_last[i] = false;
    }
    Run { versions, synced_last, written, after_seq }
}

fn sector_of(data: &[u8], sector: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| data.get(sector * SECTOR + k).copied().unwrap_or(0)).collect()
}

#[test]
fn every_sector_after_a_crash_is_a_version_from_its_history() {
    let mut torn = 0;
    let mut lost = 0;
    for seed in 0..300 {
        let mut r = rng(seed);
        let mut fs = sim(seed);
        let steps = 5 + below(&mut r, 60) as usize;
        let Run { versions, synced_last, .. } = random_data_ops(&mut fs, &mut r, steps);
        let model = model_for(&mut r);
        fs.crash(model);
        fs.check_invariants().unwrap();
        for (i, file) in FILES.iter().enumerate() {
            let after = content(&fs, file);
            let history = &versions[i];
            assert!(
                history.iter().any(|v| v.len() == after.len()),
                "seed {seed} {model:?}: size {} of {file} is not a size from its history",
                after.len()
            );
            let sectors = after.len().div_ceil(SECTOR);
            let mut from_latest = 0;
            for s in 0..sectors {
                let len = SECTOR.min(after.len() - s * SECTOR);
                let got = &after[s * SECTOR..s * SECTOR + len];
                assert!(
                    history.iter().any(|v| sector_of(v, s, len) == got),
                    "seed {seed} {model:?}: sector {s} of {file} matches no version"
                );
                if sector_of(history.last().unwrap(), s, len) == got {
                    from_latest += 1;
                }
            }
            if synced_last[i] || model == CrashModel::NoLoss {
                assert_eq!(&after, history.last().unwrap(), "seed {seed} {model:?}: {file} lost synced data");
            }
            if model == CrashModel::LoseUnsynced {
                assert_eq!(&after, &history[0], "seed {seed}: LoseUnsynced kept unsynced data of {file}");
            }
            if model == CrashModel::Pessimistic && from_latest > 0 && from_latest < sectors {
                torn += 1;
            }
            if after != *history.last().unwrap() {
                lost += 1;
            }
        }
    }
    // The property must not hold vacuously: crashes did tear files and lose data.
    assert!(torn > 20, "only {torn} torn files");
    assert!(lost > 100, "only {lost} files lost data");
}

#[test]
fn a_crash_image_is_exactly_what_its_decisions_say() {
    let mut intermediate = 0;
    for seed in 0..300 {
        let mut r = rng(seed);
        let mut fs = sim(seed);
        let steps = 5 + below(&mut r, 50) as usize;
        let run = random_data_ops(&mut fs, &mut r, steps);
        let model = [CrashModel::Pessimistic, CrashModel::Ext4Ordered, CrashModel::Corrupting][seed as usize % 3];
        let decisions = fs.crash(model);
        for (i, file) in FILES.iter().enumerate() {
            let durable = &run.versions[i][0];
            let after = content(&fs, file);
            let Some(fd) = decisions.files.iter().find(|f| f.path == *file) else {
                assert_eq!(&after, durable, "seed {seed}: {file} without a decision is not its durable image");
                continue;
            };
            let size = fd.size_after.map_or(durable.len(), |seq| run.after_seq[&seq].len());
            assert_eq!(after.len(), size, "seed {seed} {model:?}: size of {file}");
            let chosen: BTreeMap<u64, &vfs::SectorVersion> =
                fd.sectors.iter().map(|s| (s.sector, &s.version)).collect();
            for s in 0..size.div_ceil(SECTOR) {
                let len = SECTOR.min(size - s * SECTOR);
                let got = sector_of(&after, s, len);
                match chosen.get(&(s as u64)) {
                    None => assert_eq!(got, sector_of(durable, s, len), "seed {seed}: {file} sector {s} not durable"),
                    Some(vfs::SectorVersion::After(seq)) => {
                        let version = &run.after_seq[seq];
                        assert_eq!(
                            got,
                            sector_of(version, s, len),
                            "seed {seed}: {file} sector {s} not after op {seq}"
                        );
                        if version != run.versions[i].last().unwrap() {
                            intermediate += 1;
                        }
                    }
                    Some(vfs::SectorVersion::Garbage(_)) => {}
                }
            }
        }
    }
    assert!(intermediate > 100, "only {intermediate} sectors took an intermediate version");
}

#[test]
fn fsynced_data_survives_every_model_but_media_faults() {
    for seed in 0..100 {
        for model in CrashModel::ALL {
            let mut r = rng(seed);
            let mut fs = sim(seed);
            let Run { versions, .. } = random_data_ops(&mut fs, &mut r, 40);
            let durable: Vec<Vec<u8>> = versions.iter().map(|v| v[0].clone()).collect();
            // Everything since the last fsync of each file is unsynced; sync one file now.
            let fd = fs.open("f1", &OpenOptions::read_write()).unwrap();
            fs.fsync(fd).unwrap();
            let synced = content(&fs, "f1");
            fs.crash(model);
            assert_eq!(content(&fs, "f1"), synced, "seed {seed} {model:?}");
            if model != CrashModel::Corrupting {
                // Sectors no unsynced operation changed keep their durable bytes.
                let f0 = content(&fs, "f0");
                let d0 = &durable[0];
                let history = &versions[0];
                for s in 0..f0.len().div_ceil(SECTOR) {
                    let len = SECTOR.min(f0.len() - s * SECTOR);
                    let untouched = history.iter().all(|v| sector_of(v, s, len) == sector_of(d0, s, len));
                    if untouched {
                        assert_eq!(sector_of(&f0, s, len), sector_of(d0, s, len), "seed {seed} {model:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn corrupting_model_only_garbles_sectors_that_had_unsynced_writes() {
    let mut garbled = 0;
    for seed in 0..200 {
        let mut r = rng(seed);
        let mut fs = sim(seed);
        let Run { versions, synced_last, written, .. } = random_data_ops(&mut fs, &mut r, 30);
        fs.crash(CrashModel::Corrupting);
        fs.check_invariants().unwrap();
        for (i, file) in FILES.iter().enumerate() {
            let after = content(&fs, file);
            if synced_last[i] {
                assert_eq!(&after, versions[i].last().unwrap(), "seed {seed}: synced {file} corrupted");
                continue;
            }
            for s in 0..after.len().div_ceil(SECTOR) {
                let len = SECTOR.min(after.len() - s * SECTOR);
                let got = &after[s * SECTOR..s * SECTOR + len];
                if !versions[i].iter().any(|v| sector_of(v, s, len) == got) {
                    garbled += 1;
                    // Garbage only where an unsynced write was in flight.
                    assert!(written[i].contains(&s), "seed {seed}: unwritten sector {s} of {file} garbled");
                }
            }
        }
    }
    assert!(garbled > 10, "the corrupting model produced only {garbled} garbage sectors");
}

/// `UnsyncedGarbage` garbles only sectors that held no synced data: past the durable length, and only
/// where an unsynced write was in flight. Below the durable length every sector is a version from its
/// history, so nothing an fsync made durable is ever destroyed.
#[test]
fn unsynced_garbage_model_never_garbles_a_sector_holding_synced_data() {
    let mut garbled = 0;
    for seed in 0..300 {
        let mut r = rng(seed);
        let mut fs = sim(seed);
        let Run { versions, written, .. } = random_data_ops(&mut fs, &mut r, 30);
        fs.crash(CrashModel::UnsyncedGarbage);
        fs.check_invariants().unwrap();
        for (i, file) in FILES.iter().enumerate() {
            let after = content(&fs, file);
            let durable_len = versions[i][0].len();
            for s in 0..after.len().div_ceil(SECTOR) {
                let len = SECTOR.min(after.len() - s * SECTOR);
                let got = &after[s * SECTOR..s * SECTOR + len];
                if !versions[i].iter().any(|v| sector_of(v, s, len) == got) {
                    garbled += 1;
                    assert!(written[i].contains(&s), "seed {seed}: unwritten sector {s} of {file} garbled");
                    assert!(s * SECTOR >= durable_len, "seed {seed}: sector {s} of {file} held synced data");
                }
            }
        }
    }
    assert!(garbled > 5, "the unsynced-garbage model produced only {garbled} garbage sectors");
}

/// Random namespace operations over files with unique content; see the assertions for the properties.
#[test]
fn rename_is_all_or_nothing_and_a_file_is_never_in_two_places() {
    let names = ["d0/a", "d0/b", "d0/c", "d1/a", "d1/b", "d1/c"];
    let mut kept_after_rename = 0;
    let mut dropped_rename = 0;
    for seed in 0..400 {
        let mut r = rng(seed);
        let mut fs = sim(seed);
        fs.mkdir("d0").unwrap();
        fs.mkdir("d1").unwrap();
        fs.sync().unwrap();
        // id -> every name it has had; ids that were durable (a full sync while alive) and never unlinked.
        let mut history: BTreeMap<u8, BTreeSet<&str>> = BTreeMap::new();
        let mut at: BTreeMap<&str, u8> = BTreeMap::new();
        let mut must_survive: BTreeSet<u8> = BTreeSet::new();
        let mut renamed_since_sync: BTreeSet<u8> = BTreeSet::new();
        let mut next_id = 1u8;
        for _ in 0..(5 + below(&mut r, 30)) {
            let name = names[below(&mut r, names.len() as u64) as usize];
            match below(&mut r, 8) {
                0 | 1 if !at.contains_key(name) => {
                    let id = next_id;
                    next_id += 1;
                    let fd = fs.open(name, &OpenOptions::create_new()).unwrap();
                    fs.write(fd, &[id; 700]).unwrap();
                    fs.fsync(fd).unwrap();
                    fs.close(fd).unwrap();
                    history.entry(id).or_default().insert(name);
                    at.insert(name, id);
                }
                2..=4 if at.contains_key(name) => {
                    let to = names[below(&mut r, names.len() as u64) as usize];
                    fs.rename(name, to).unwrap();
                    let id = at.remove(name).unwrap();
                    if let Some(victim) = at.insert(to, id)
                        && victim != id
                    {
                        must_survive.remove(&victim);
                    }
                    history.get_mut(&id).unwrap().insert(to);
                    renamed_since_sync.insert(id);
                }
                5 if at.contains_key(name) => {
                    fs.unlink(name).unwrap();
                    let id = at.remove(name).unwrap();
                    must_survive.remove(&id);
                }
                6 => fsync_dir(&mut fs, if below(&mut r, 2) == 0 { "d0" } else { "d1" }),
                7 => {
                    fs.sync().unwrap();
                    must_survive.extend(at.values().copied());
                    renamed_since_sync.clear();
                }
                _ => {}
            }
        }
        let model = [CrashModel::Pessimistic, CrashModel::Ext4Ordered, CrashModel::LoseUnsynced][seed as usize % 3];
        fs.crash(model);
        fs.check_invariants().unwrap();
        let mut found: BTreeMap<u8, Vec<String>> = BTreeMap::new();
        for (path, entry) in fs.tree() {
            if let TreeEntry::File(data) = entry {
                assert!(data.len() == 700 && data.iter().all(|b| *b == data[0]), "seed {seed}: {path} mixed content");
                found.entry(data[0]).or_default().push(path);
            }
        }
        for (id, paths) in &found {
            assert_eq!(paths.len(), 1, "seed {seed} {model:?}: file {id} in two places: {paths:?}");
            assert!(history[id].contains(paths[0].as_str()), "seed {seed}: file {id} at a name it never had");
            if renamed_since_sync.contains(id) {
                let current = at.iter().find(|(_, v)| *v == id).map(|(k, _)| *k);
                if Some(paths[0].as_str()) == current {
                    kept_after_rename += 1;
                } else {
                    dropped_rename += 1;
                }
            }
        }
        for id in &must_survive {
            assert!(found.contains_key(id), "seed {seed} {model:?}: durable file {id} lost by a rename");
        }
    }
    assert!(kept_after_rename > 10 && dropped_rename > 10, "kept {kept_after_rename}, dropped {dropped_rename}");
}

fn random_mixed_run(seed: u64) -> SimFs {
    let mut r = rng(seed);
    let mut fs = sim(seed);
    random_data_ops(&mut fs, &mut r, 30);
    fs.mkdir("d").unwrap();
    for i in 0..(below(&mut r, 6)) {
        let fd = fs.open(&format!("d/x{i}"), &OpenOptions::create()).unwrap();
        fs.write(fd, &[i as u8; 1000]).unwrap();
        if below(&mut r, 2) == 0 {
            fs.rename(&format!("d/x{i}"), &format!("y{i}")).unwrap();
        }
    }
    fs
}

#[test]
fn the_same_decisions_give_the_same_image() {
    for seed in 0..100 {
        for model in CrashModel::ALL {
            let mut a = random_mixed_run(seed);
            let mut b = random_mixed_run(seed);
            let decisions = a.crash(model);
            let json = serde_json::to_string(&decisions).unwrap();
            let decoded: CrashDecisions = serde_json::from_str(&json).unwrap();
            assert_eq!(decoded, decisions);
            let replayed = b.crash_with(&decoded).unwrap();
            assert_eq!(replayed, decisions, "seed {seed} {model:?}: normalisation is not idempotent");
            assert_eq!(a.tree(), b.tree(), "seed {seed} {model:?}: replay gave another image");
            // And the crash is a pure function of (state, model, seed).
            let mut c = random_mixed_run(seed);
            assert_eq!(c.crash(model), decisions);
        }
    }
}

/// Random namespace operations over a small tree with directories (mkdir, rmdir, renames of files and
/// directories, unlinks, directory fsyncs, sync, writeback) on files whose data is always durable.
/// Returns the filesystem and the ids that must survive any crash: present at the last `sync`, never
/// removed since.
fn namespace_run(seed: u64) -> (SimFs, BTreeSet<u8>) {
    let mut r = rng(seed);
    let mut fs = sim(seed);
    let ids = |fs: &SimFs| -> BTreeSet<u8> {
        fs.tree().values().filter_map(|e| if let TreeEntry::File(d) = e { Some(d[0]) } else { None }).collect()
    };
    let mut must_survive = BTreeSet::new();
    let mut next_id = 1u8;
    for _ in 0..(10 + below(&mut r, 40)) {
        let dirs: Vec<String> = std::iter::once(String::new())
            .chain(fs.tree().into_iter().filter(|(_, e)| *e == TreeEntry::Dir).map(|(p, _)| p))
            .collect();
        let entries: Vec<String> = fs.tree().into_keys().collect();
        let dir = dirs[below(&mut r, dirs.len() as u64) as usize].clone();
        let name = ["x", "y", "z"][below(&mut r, 3) as usize];
        let fresh = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
        let existing = (!entries.is_empty()).then(|| entries[below(&mut r, entries.len() as u64) as usize].clone());
        match below(&mut r, 12) {
            0 | 1 => drop(fs.mkdir(&fresh)),
            2 | 3 => {
                if let Ok(fd) = fs.open(&fresh, &OpenOptions::create_new()) {
                    fs.write(fd, &[next_id; 600]).unwrap();
                    fs.fsync(fd).unwrap();
                    fs.close(fd).unwrap();
                    next_id += 1;
                }
            }
            4..=6 => {
                if let Some(from) = existing {
                    let _ = fs.rename(&from, &fresh);
                }
            }
            7 => {
                if let Some(path) = existing {
                    let _ = fs.unlink(&path);
                    let _ = fs.rmdir(&path);
                }
            }
            8 | 9 => fsync_dir(&mut fs, if dir.is_empty() { "/" } else { &dir }),
            10 => {
                fs.sync().unwrap();
                must_survive = ids(&fs);
            }
            _ => {
                let upto = below(&mut r, fs.op_seq() + 1);
                fs.writeback(upto);
            }
        }
        let now = ids(&fs);
        must_survive.retain(|id| now.contains(id));
    }
    (fs, must_survive)
}

fn check_namespace_image(fs: &SimFs, must_survive: &BTreeSet<u8>, what: &str) {
    fs.check_invariants().unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut found: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    for (path, entry) in fs.tree() {
        if let TreeEntry::File(data) = entry {
            assert!(data.len() == 600 && data.iter().all(|b| *b == data[0]), "{what}: {path} has mixed content");
            found.entry(data[0]).or_default().push(path);
        }
    }
    for (id, paths) in &found {
        assert_eq!(paths.len(), 1, "{what}: file {id} in two places: {paths:?}");
    }
    for id in must_survive {
        assert!(found.contains_key(id), "{what}: durable file {id} lost; tree {:?}", fs.tree().keys());
    }
}

#[test]
fn no_crash_image_loses_a_durable_file_through_directory_moves_and_removals() {
    let mut checked_survivors = 0;
    for seed in 0..600 {
        let model =
            [CrashModel::Pessimistic, CrashModel::LoseUnsynced, CrashModel::Ext4Ordered, CrashModel::Corrupting]
                [seed as usize % 4];
        let (mut fs, must_survive) = namespace_run(seed);
        checked_survivors += must_survive.len();
        fs.crash(model);
        check_namespace_image(&fs, &must_survive, &format!("seed {seed} {model:?}"));
    }
    // Every enumerated image too, on fewer seeds (each image replays the run).
    for seed in 0..60 {
        let (fs, must_survive) = namespace_run(seed);
        for image in fs.enumerate_crash_images(CrashModel::Pessimistic) {
            let (mut copy, _) = namespace_run(seed);
            copy.crash_with(&image.decisions).unwrap();
            check_namespace_image(&copy, &must_survive, &format!("seed {seed} image {}", image.label));
        }
    }
    assert!(checked_survivors > 300, "only {checked_survivors} durable files were at stake");
}
