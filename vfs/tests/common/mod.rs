//! Helpers shared by the vfs integration tests.
#![allow(dead_code, unreachable_pub)]

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use std::collections::BTreeMap;
use vfs::{FileSystem, OpenOptions, SimFs, SimFsConfig, TreeEntry};

/// A SimFs with every knob written out: 512-byte sectors, 1 GiB, ext4's maximum file size.
pub fn sim(seed: u64) -> SimFs {
    SimFs::new(SimFsConfig {
        seed,
        sector_size: 512,
        capacity_bytes: 1 << 30,
        max_file_size: 1 << 44,
        record_ops: true,
    })
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

/// Creates (or truncates) `path`, writes `data`, optionally fsyncs, closes.
pub fn write_file(fs: &mut dyn FileSystem, path: &str, data: &[u8], fsync: bool) {
    let fd = fs.open(path, &OpenOptions::create_truncate()).unwrap();
    assert_eq!(fs.write(fd, data).unwrap(), data.len());
    if fsync {
        fs.fsync(fd).unwrap();
    }
    fs.close(fd).unwrap();
}

/// fsync of a directory through a handle.
pub fn fsync_dir(fs: &mut dyn FileSystem, path: &str) {
    let fd = fs.open_dir(path).unwrap();
    fs.fsync(fd).unwrap();
    fs.close(fd).unwrap();
}

/// The whole tree of any backend, by walking it through the trait.
pub fn tree_of(fs: &mut dyn FileSystem) -> BTreeMap<String, TreeEntry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        let listing = fs.read_dir(if dir.is_empty() { "/" } else { &dir }).unwrap();
        for name in listing {
            let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
            if fs.metadata(&path).unwrap().kind == vfs::FileKind::Dir {
                out.insert(path.clone(), TreeEntry::Dir);
                stack.push(path);
            } else {
                let data = fs.read_file(&path).unwrap();
                out.insert(path, TreeEntry::File(data));
            }
        }
    }
    out
}

/// Content of a file in a tree, if it is there.
pub fn file_in(tree: &BTreeMap<String, TreeEntry>, path: &str) -> Option<Vec<u8>> {
    match tree.get(path) {
        Some(TreeEntry::File(data)) => Some(data.clone()),
        _ => None,
    }
}
