//! Differential test: the same seeded random call sequences (no crashes) on `SimFs` and on `RealFs` in a
//! temporary host directory must return the same values and error kinds and leave the same tree.
//! This is what keeps the model's POSIX semantics equal to Linux's.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // host directories for RealFs roots

mod common;

use common::{below, rng, sim, tree_of};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::RngCore;
use std::collections::BTreeMap;
use std::path::PathBuf;
use vfs::{FallocateMode, Fd, FileSystem, OpenOptions, RealFs};

const SEQUENCES: u64 = 1_200;
const CALLS_PER_SEQUENCE: usize = 60;

/// A fresh host directory, on tmpfs when the machine has one (fsync there is cheap).
fn host_root(tag: &str) -> PathBuf {
    let base = PathBuf::from("/dev/shm");
    let base = if base.is_dir() { base } else { std::env::temp_dir() };
    let dir = base.join(format!("vfs-differential-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[below(rng, items.len() as u64) as usize]
}

fn random_path(rng: &mut ChaCha8Rng) -> String {
    let depth = 1 + below(rng, 3);
    let mut parts: Vec<String> = Vec::new();
    for i in 0..depth {
        if i > 0 && below(rng, 12) == 0 {
            parts.push(pick(rng, &[".", ".."]).to_string());
        }
        parts.push(pick(rng, &["a", "b", "c"]).to_string());
    }
    let mut path = parts.join("/");
    if below(rng, 5) == 0 {
        path.insert(0, '/');
    }
    if below(rng, 25) == 0 {
        path.push('/');
    }
    path
}

fn random_options(rng: &mut ChaCha8Rng) -> OpenOptions {
    let flag = |rng: &mut ChaCha8Rng, num: u64| below(rng, 4) < num;
    OpenOptions {
        read: flag(rng, 3),
        write: flag(rng, 2),
        append: flag(rng, 1),
        truncate: flag(rng, 1),
        create: flag(rng, 2),
        create_new: below(rng, 8) == 0,
    }
}

/// Mostly small offsets; sometimes one past `i64::MAX`, or one whose transfer of at least 8 bytes would
/// end past it (both `EINVAL` on Linux whatever the filesystem's maximum size).
fn random_offset(rng: &mut ChaCha8Rng, small: u64) -> u64 {
    match below(rng, 40) {
        0 => i64::MAX as u64 - below(rng, 4),
        1 => i64::MAX as u64 + 1 + below(rng, 1000),
        2 => u64::MAX,
        _ => below(rng, small),
    }
}

fn random_bytes(rng: &mut ChaCha8Rng, max: u64) -> Vec<u8> {
    let len = below(rng, max + 1) as usize;
    let fill = (rng.next_u32() % 251) as u8;
    (0..len).map(|i| fill.wrapping_add(i as u8)).collect()
}

/// Runs one call on both backends and asserts identical outcomes.
struct Pair<'c> {
    sim: vfs::SimFs,
    real: RealFs,
    handles: Vec<(Fd, Fd)>,
    log: Vec<String>,
    /// (call, outcome) -> count over all sequences: proves the test reached the interesting cases.
    coverage: &'c mut BTreeMap<(String, String), u64>,
}

impl Pair<'_> {
    fn check<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: String,
        f: impl Fn(&mut dyn FileSystem, &[Fd]) -> vfs::Result<T>,
    ) -> Option<(T, T)> {
        let sim_fds: Vec<Fd> = self.handles.iter().map(|h| h.0).collect();
        let real_fds: Vec<Fd> = self.handles.iter().map(|h| h.1).collect();
        let a = f(&mut self.sim, &sim_fds);
        let b = f(&mut self.real, &real_fds);
        let call = what.split(' ').next().unwrap_or("").to_string();
        let outcome = match &b {
            Ok(_) => "ok".to_string(),
            Err(e) => e.kind.errno_name().to_string(),
        };
        *self.coverage.entry((call, outcome)).or_default() += 1;
        self.log.push(what);
        let a_view = a.as_ref().map_err(|e| e.kind);
        let b_view = b.as_ref().map_err(|e| e.kind);
        assert_eq!(a_view, b_view, "SimFs vs RealFs diverged; calls so far:\n{}", self.log.join("\n"));
        match (a, b) {
            (Ok(a), Ok(b)) => Some((a, b)),
            _ => None,
        }
    }
}

fn run_sequence(seed: u64, coverage: &mut BTreeMap<(String, String), u64>) {
    let root = host_root(&seed.to_string());
    let mut pair =
        Pair { sim: sim(seed), real: RealFs::new(&root).unwrap(), handles: Vec::new(), log: Vec::new(), coverage };
    let mut r = rng(seed);
    for _ in 0..CALLS_PER_SEQUENCE {
        let h = if pair.handles.is_empty() { 0 } else { below(&mut r, pair.handles.len() as u64) as usize };
        let have = !pair.handles.is_empty();
        match below(&mut r, 24) {
            0..=3 => {
                let path = random_path(&mut r);
                let options = random_options(&mut r);
                if let Some((a, b)) = pair.check(format!("open {path} {options:?}"), |fs, _| fs.open(&path, &options)) {
                    pair.handles.push((a, b));
                }
            }
            4 => {
                let path = random_path(&mut r);
                if let Some((a, b)) = pair.check(format!("open_dir {path}"), |fs, _| fs.open_dir(&path)) {
                    pair.handles.push((a, b));
                }
            }
            5 if have => {
                pair.check(format!("close #{h}"), |fs, fds| fs.close(fds[h]));
            }
            6 if have => {
                let n = below(&mut r, 700) as usize;
                pair.check(format!("read #{h} {n}"), |fs, fds| {
                    let mut buf = vec![0; n];
                    fs.read(fds[h], &mut buf).map(|k| buf[..k].to_vec())
                });
            }
            7 if have => {
                let off = random_offset(&mut r, 9000);
                let n = if off > i64::MAX as u64 - 8 {
                    8 + below(&mut r, 100) as usize
                } else {
                    below(&mut r, 700) as usize
                };
                pair.check(format!("pread #{h} {off} {n}"), |fs, fds| {
                    let mut buf = vec![0; n];
                    fs.pread(fds[h], off, &mut buf).map(|k| buf[..k].to_vec())
                });
            }
            8 | 9 if have => {
                let data = random_bytes(&mut r, 600);
                pair.check(format!("write #{h} {}", data.len()), |fs, fds| fs.write(fds[h], &data));
            }
            10 if have => {
                let off = random_offset(&mut r, 9000);
                let mut data = random_bytes(&mut r, 600);
                if off > i64::MAX as u64 - 8 {
                    data.resize(8 + data.len(), 7);
                }
                pair.check(format!("pwrite #{h} {off} {}", data.len()), |fs, fds| fs.pwrite(fds[h], off, &data));
            }
            11 if have => {
                let data = random_bytes(&mut r, 300);
                pair.check(format!("append #{h} {}", data.len()), |fs, fds| fs.append(fds[h], &data));
            }
            12 if have => {
                let off = below(&mut r, 9000);
                pair.check(format!("seek #{h} {off}"), |fs, fds| fs.seek(fds[h], off));
            }
            13 if have => {
                let len =
                    if below(&mut r, 30) == 0 { i64::MAX as u64 + 1 + below(&mut r, 9) } else { below(&mut r, 9000) };
                pair.check(format!("set_len #{h} {len}"), |fs, fds| fs.set_len(fds[h], len));
            }
            14 if have => {
                let mode = if below(&mut r, 2) == 0 { FallocateMode::Extend } else { FallocateMode::KeepSize };
                let (off, len) = (below(&mut r, 8000), if below(&mut r, 8) == 0 { 0 } else { below(&mut r, 5000) });
                pair.check(format!("fallocate #{h} {mode:?} {off} {len}"), |fs, fds| {
                    fs.fallocate(fds[h], mode, off, len)
                });
                // The size a fallocate leaves must agree too.
                pair.check(format!("fstat #{h}"), |fs, fds| fs.fstat(fds[h]));
            }
            15 if have => {
                let data_only = below(&mut r, 2) == 0;
                pair.check(format!("fsync #{h} data_only={data_only}"), |fs, fds| {
                    if data_only { fs.fdatasync(fds[h]) } else { fs.fsync(fds[h]) }
                });
            }
            16 if have => {
                pair.check(format!("fstat #{h}"), |fs, fds| fs.fstat(fds[h]));
            }
            17 => {
                let (from, to) = (random_path(&mut r), random_path(&mut r));
                pair.check(format!("rename {from} {to}"), |fs, _| fs.rename(&from, &to));
            }
            18 => {
                let path = random_path(&mut r);
                pair.check(format!("unlink {path}"), |fs, _| fs.unlink(&path));
            }
            19 => {
                let path = random_path(&mut r);
                pair.check(format!("mkdir {path}"), |fs, _| fs.mkdir(&path));
            }
            20 => {
                let path = random_path(&mut r);
                pair.check(format!("mkdir_all {path}"), |fs, _| fs.mkdir_all(&path));
            }
            21 => {
                let path = random_path(&mut r);
                pair.check(format!("rmdir {path}"), |fs, _| fs.rmdir(&path));
            }
            22 => {
                let path = random_path(&mut r);
                pair.check(format!("read_dir {path}"), |fs, _| fs.read_dir(&path));
            }
            23 => {
                let path = random_path(&mut r);
                pair.check(format!("stat {path}"), |fs, _| {
                    let exists = fs.exists(&path)?;
                    Ok((exists, fs.metadata(&path).map_err(|e| e.kind)))
                });
            }
            _ => {}
        }
        pair.sim.check_invariants().unwrap_or_else(|e| panic!("invariant broken: {e}\n{}", pair.log.join("\n")));
    }
    let sim_tree = tree_of(&mut pair.sim);
    let real_tree = tree_of(&mut pair.real);
    assert_eq!(sim_tree, real_tree, "trees differ after seed {seed}:\n{}", pair.log.join("\n"));
    drop(pair);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn simfs_matches_linux_on_random_call_sequences() {
    let mut coverage = BTreeMap::new();
    for seed in 0..SEQUENCES {
        run_sequence(seed, &mut coverage);
    }
    let seen = |call: &str, outcome: &str| coverage.get(&(call.to_string(), outcome.to_string())).copied().unwrap_or(0);
    let wanted = [
        ("open", "ok", 1000),
        ("open", "ENOENT", 100),
        ("open", "EEXIST", 20),
        ("open", "EISDIR", 50),
        ("open", "ENOTDIR", 20),
        ("open", "EINVAL", 100),
        ("write", "ok", 1000),
        ("write", "EBADF", 100),
        ("pwrite", "ok", 300),
        ("append", "ok", 300),
        ("read", "ok", 300),
        ("read", "EISDIR", 10),
        ("pread", "ok", 300),
        ("pread", "EINVAL", 5),
        ("pwrite", "EINVAL", 5),
        ("set_len", "ok", 300),
        ("set_len", "EINVAL", 30),
        ("fallocate", "ok", 100),
        ("fallocate", "EINVAL", 10),
        ("fallocate", "EBADF", 30),
        ("close", "ok", 300),
        ("close", "EBADF", 30),
        ("rename", "ok", 100),
        ("rename", "ENOENT", 100),
        ("rename", "EISDIR", 5),
        ("rename", "ENOTDIR", 5),
        ("rename", "EINVAL", 5),
        ("rename", "ENOTEMPTY", 5),
        ("unlink", "ok", 100),
        ("unlink", "EISDIR", 30),
        ("mkdir", "ok", 300),
        ("mkdir", "EEXIST", 100),
        ("mkdir_all", "ok", 300),
        ("rmdir", "ok", 30),
        ("rmdir", "ENOTEMPTY", 30),
        ("rmdir", "ENOTDIR", 30),
        ("read_dir", "ok", 300),
        ("read_dir", "ENOTDIR", 30),
        ("stat", "ok", 300),
    ];
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(call, outcome, min)| seen(call, outcome) < *min)
        .map(|(call, outcome, min)| format!("{call} {outcome}: {} < {min}", seen(call, outcome)))
        .collect();
    assert!(missing.is_empty(), "the generator no longer reaches: {missing:?}\ncoverage: {coverage:?}");
}

#[test]
fn simfs_matches_linux_on_sync_and_dir_handles() {
    let root = host_root("sync");
    let mut real = RealFs::new(&root).unwrap();
    let mut simfs = sim(1);
    for fs in [&mut real as &mut dyn FileSystem, &mut simfs] {
        fs.mkdir_all("x/y").unwrap();
        let fd = fs.open("x/y/f", &OpenOptions::create()).unwrap();
        fs.write(fd, b"data").unwrap();
        fs.sync().unwrap();
        let dir = fs.open_dir("x").unwrap();
        fs.fsync(dir).unwrap();
        fs.fdatasync(dir).unwrap();
        assert_eq!(fs.open_dir("x/y/f").unwrap_err().kind, vfs::ErrorKind::NotADirectory);
        assert_eq!(fs.read_file("x/y/f").unwrap(), b"data");
        assert_eq!(fs.read_file("x/y").unwrap_err().kind, vfs::ErrorKind::IsADirectory);
        fs.close(fd).unwrap();
        fs.close(dir).unwrap();
    }
    assert_eq!(tree_of(&mut real), tree_of(&mut simfs));
    std::fs::remove_dir_all(&root).unwrap();
}
