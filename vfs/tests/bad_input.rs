//! Bad input to `SimFs` gives the documented typed `ErrorKind`, never a panic, and never corrupts the
//! model.
//!
//! Why: the simulator drives `SimFs` with whatever the system under test does — including its bugs
//! (double close, a path built from an empty string, an offset computed from a corrupt header) and the
//! fault API's own misuse. A panic there would end a simulation run with a harness failure instead of a
//! finding, and a wrong error kind would make `SimFs` disagree with Linux (and with `RealFs`). The first
//! tests pin each documented condition (closed or never-issued handles, `..` above the root, empty
//! paths, NUL bytes, over-long names, paths through files, huge and over-large offsets, zero-length
//! fallocate, the root as an entry, renaming a directory into itself, access modes, a full disk, a fired
//! power cut, mismatched crash decisions). The last one is a seeded fuzz over every trait method and the
//! lifecycle calls, checking the error kinds per call and `check_invariants` after every single call.

mod common;

use common::{below, fsync_dir, rng, sim, write_file};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::RngCore;
use std::collections::{BTreeMap, BTreeSet};
use vfs::{
    CrashModel, CrashPoint, ErrorKind, ErrorRule, FallocateMode, Fd, FileSystem, OpKind, OpenOptions, SimFs,
    SimFsConfig,
};

use ErrorKind::{
    AlreadyExists, BadDescriptor, Busy, DirectoryNotEmpty, EscapesRoot, FileTooLarge, InvalidInput, Io, IsADirectory,
    NameTooLong, NoSpace, NotADirectory, NotFound, PoweredOff,
};

type Outcome = Result<(), ErrorKind>;

fn outcome<T>(r: vfs::Result<T>) -> Outcome {
    r.map(|_| ()).map_err(|e| e.kind)
}

/// Asserts that `r` failed with `want`.
#[track_caller]
fn expect_err<T: std::fmt::Debug>(r: vfs::Result<T>, want: ErrorKind, what: &str) {
    match r {
        Ok(v) => panic!("{what}: succeeded with {v:?}, expected {want:?}"),
        Err(e) => assert_eq!(e.kind, want, "{what}: {e}"),
    }
}

#[track_caller]
fn invariants(fs: &SimFs) {
    fs.check_invariants().unwrap_or_else(|e| panic!("invariant broken: {e}"));
}

fn config(seed: u64, capacity_bytes: u64, max_file_size: u64) -> SimFsConfig {
    SimFsConfig { seed, sector_size: 512, capacity_bytes, max_file_size, record_ops: true }
}

/// A filesystem with a durable file `exists` (9 bytes) and a durable empty directory `dir`.
fn small_tree(seed: u64) -> SimFs {
    let mut fs = sim(seed);
    write_file(&mut fs, "exists", b"some data", true);
    fs.mkdir("dir").unwrap();
    fsync_dir(&mut fs, "/");
    fs
}

/// Every call that takes a path, applied to `path` (rename both as source and as target, the other side
/// an existing file), with its outcome. Only for paths that must fail: a success would change the tree.
fn every_path_call(fs: &mut SimFs, path: &str) -> Vec<(&'static str, Outcome)> {
    vec![
        ("open read-only", outcome(fs.open(path, &OpenOptions::read_only()))),
        ("open read-write", outcome(fs.open(path, &OpenOptions::read_write()))),
        ("open create", outcome(fs.open(path, &OpenOptions::create()))),
        ("open create_new", outcome(fs.open(path, &OpenOptions::create_new()))),
        ("open append", outcome(fs.open(path, &OpenOptions::append_create()))),
        ("open_dir", outcome(fs.open_dir(path))),
        ("rename from", outcome(fs.rename(path, "exists"))),
        ("rename to", outcome(fs.rename("exists", path))),
        ("unlink", outcome(fs.unlink(path))),
        ("mkdir", outcome(fs.mkdir(path))),
        ("mkdir_all", outcome(fs.mkdir_all(path))),
        ("rmdir", outcome(fs.rmdir(path))),
        ("read_dir", outcome(fs.read_dir(path))),
        ("metadata", outcome(fs.metadata(path))),
        ("exists", outcome(fs.exists(path))),
        ("read_file", outcome(fs.read_file(path))),
    ]
}

/// Asserts that every path call on each of `paths` fails with `want` and changes nothing.
#[track_caller]
fn every_path_call_fails(paths: &[&str], want: ErrorKind) {
    for path in paths {
        let mut fs = small_tree(1);
        let before = fs.tree();
        for (call, got) in every_path_call(&mut fs, path) {
            assert_eq!(got, Err(want), "{call}({path:?})");
            invariants(&fs);
        }
        assert_eq!(fs.tree(), before, "a failed call on {path:?} changed the tree");
        assert_eq!(fs.open_handle_count(), 0);
    }
}

/// Every call on a handle, with its outcome.
fn every_handle_call(fs: &mut SimFs, fd: Fd) -> Vec<(&'static str, Outcome)> {
    let mut buf = [0u8; 16];
    vec![
        ("read", outcome(fs.read(fd, &mut buf))),
        ("pread", outcome(fs.pread(fd, 0, &mut buf))),
        ("write", outcome(fs.write(fd, b"x"))),
        ("pwrite", outcome(fs.pwrite(fd, 0, b"x"))),
        ("append", outcome(fs.append(fd, b"x"))),
        ("seek", outcome(fs.seek(fd, 3))),
        ("set_len", outcome(fs.set_len(fd, 3))),
        ("fallocate", outcome(fs.fallocate(fd, FallocateMode::Extend, 0, 4096))),
        ("fsync", outcome(fs.fsync(fd))),
        ("fdatasync", outcome(fs.fdatasync(fd))),
        ("fstat", outcome(fs.fstat(fd))),
        ("close", outcome(fs.close(fd))),
    ]
}

/// Linux: `EBADF` for a closed descriptor and for one never returned by open. Handles are never reused,
/// so a closed handle keeps failing even after later opens; every handle call says so, and a second
/// close too.
#[test]
fn closed_and_never_issued_handles_are_bad_descriptors() {
    let mut fs = small_tree(2);
    let fd = fs.open("exists", &OpenOptions::read_write()).unwrap();
    fs.close(fd).unwrap();
    // Later opens must not hand the closed number out again.
    let later: Vec<Fd> = (0..3).map(|_| fs.open("exists", &OpenOptions::read_only()).unwrap()).collect();
    assert!(!later.contains(&fd), "a closed handle was reused");
    let dir = fs.open_dir("dir").unwrap();
    fs.close(dir).unwrap();
    for bad in [fd, dir, Fd(999), Fd(0), Fd(1), Fd(2), Fd(u64::MAX)] {
        for (call, got) in every_handle_call(&mut fs, bad) {
            assert_eq!(got, Err(BadDescriptor), "{call}({bad:?})");
            invariants(&fs);
        }
    }
    // The open handles are untouched, and the file too.
    assert_eq!(fs.open_handle_count(), later.len());
    assert_eq!(fs.read_file("exists").unwrap(), b"some data");
    // A process crash closes everything: the handles it had are bad from then on.
    fs.process_crash();
    for fd in later {
        expect_err(fs.fstat(fd), BadDescriptor, "fstat after process crash");
        expect_err(fs.close(fd), BadDescriptor, "close after process crash");
    }
    invariants(&fs);
}

/// vfs `path.rs`: an empty path is `ENOENT` (as `open("")` on Linux), for every call but `exists`, which
/// reports `Ok(false)` for `NotFound`; nothing changes.
#[test]
fn the_empty_path_is_not_found() {
    let mut fs = small_tree(3);
    for (call, got) in every_path_call(&mut fs, "") {
        let want = if call == "exists" { Ok(()) } else { Err(NotFound) };
        assert_eq!(got, want, "{call}(\"\")");
    }
    assert!(!fs.exists("").unwrap());
    invariants(&fs);
    let mut fs = small_tree(3);
    expect_err(fs.rename("", ""), NotFound, "rename(\"\", \"\")");
}

/// `..` may never climb above the filesystem's root (`EscapesRoot`, the model's refusal to touch
/// anything outside its tree), checked lexically before the walk — so also through missing
/// directories — for every call that takes a path.
#[test]
fn dot_dot_above_the_root_escapes_the_root() {
    every_path_call_fails(
        &["..", "/..", "../x", "./..", "dir/../..", "dir/../../exists", "missing/../../x"],
        EscapesRoot,
    );
}

/// POSIX: a NUL byte cannot be in a path (`EINVAL` from std/the kernel boundary), for every call.
#[test]
fn a_nul_byte_in_a_path_is_invalid_input() {
    every_path_call_fails(&["\0", "a\0b", "dir/\0", "exists\0", "dir/x\0/y"], InvalidInput);
}

/// Linux `NAME_MAX`: a component of 256 bytes or more is `ENAMETOOLONG`, wherever it is in the path;
/// 255 bytes is fine.
#[test]
fn a_component_over_255_bytes_is_name_too_long() {
    let long = "n".repeat(256);
    let longer = "é".repeat(200); // 400 bytes, 200 characters: the limit is in bytes.
    let paths = [long.clone(), format!("dir/{long}"), format!("{long}/x"), format!("/{long}/"), longer];
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    every_path_call_fails(&paths, NameTooLong);

    let mut fs = small_tree(4);
    let max = "m".repeat(255);
    write_file(&mut fs, &max, b"ok", true);
    fs.mkdir(&format!("dir/{max}")).unwrap();
    assert_eq!(fs.read_file(&max).unwrap(), b"ok");
    fs.rename(&max, &format!("dir/{max}/{max}")).unwrap();
    assert_eq!(fs.read_dir(&format!("dir/{max}")).unwrap(), vec![max.clone()]);
    invariants(&fs);
}

/// POSIX `ENOTDIR`: a non-final component that is a file, and `.`/`..` after a file, for every path call;
/// a trailing `/` on a file's name.
#[test]
fn paths_through_files_are_not_directories() {
    every_path_call_fails(&["exists/x", "exists/x/y", "exists/.", "exists/..", "/exists/../dir"], NotADirectory);

    let mut fs = small_tree(5);
    expect_err(fs.open("exists/", &OpenOptions::read_only()), NotADirectory, "open(file/)");
    expect_err(fs.open_dir("exists"), NotADirectory, "open_dir(file)");
    expect_err(fs.open_dir("exists/"), NotADirectory, "open_dir(file/)");
    expect_err(fs.read_dir("exists"), NotADirectory, "read_dir(file)");
    expect_err(fs.metadata("exists/"), NotADirectory, "metadata(file/)");
    expect_err(fs.unlink("exists/"), NotADirectory, "unlink(file/)");
    expect_err(fs.rmdir("exists"), NotADirectory, "rmdir(file)");
    expect_err(fs.rename("exists/", "other"), NotADirectory, "rename(file/, x)");
    expect_err(fs.rename("exists", "other/"), NotADirectory, "rename(file, x/)");
    expect_err(fs.rename("dir", "exists"), NotADirectory, "rename(dir, file)");
    expect_err(fs.rename("exists", "dir"), IsADirectory, "rename(file, dir)");
    expect_err(fs.mkdir_all("exists/a/b"), NotADirectory, "mkdir_all(file/a/b)");
    assert_eq!(fs.read_file("exists").unwrap(), b"some data");
    assert!(fs.metadata("dir").is_ok());
    invariants(&fs);
}

/// The model keeps file content sparse: a pwrite at offset 2^40 succeeds, reads back, reads zeros in the
/// hole, and costs a page or two of memory — also after fsync and a power cut. (`check_invariants` and
/// `tree` are not called here: both materialise whole files, see the report.)
#[test]
fn pwrite_at_two_to_the_forty_uses_bounded_memory() {
    let mut fs = sim(6);
    let fd = fs.open("sparse", &OpenOptions::create()).unwrap();
    fsync_dir(&mut fs, "/");
    let far: u64 = 1 << 40;
    assert_eq!(fs.used_bytes(), 0);
    assert_eq!(fs.pwrite(fd, far, b"far away").unwrap(), 8);
    assert_eq!(fs.fstat(fd).unwrap().len, far + 8);
    assert_eq!(fs.used_bytes(), 4096, "one page for a write inside one page");
    // A write straddling a page boundary further on: two more pages at most.
    assert_eq!(fs.pwrite(fd, 3 * far - 4, b"straddle").unwrap(), 8);
    assert_eq!(fs.fstat(fd).unwrap().len, 3 * far + 4);
    assert_eq!(fs.used_bytes(), 3 * 4096);
    let mut buf = [9u8; 16];
    assert_eq!(fs.pread(fd, far / 2, &mut buf).unwrap(), 16);
    assert_eq!(buf, [0; 16], "the hole reads zeros");
    assert_eq!(fs.pread(fd, far, &mut buf).unwrap(), 16);
    assert_eq!(&buf[..8], b"far away");
    assert_eq!(&buf[8..], &[0; 8]);
    fs.fsync(fd).unwrap();
    assert_eq!(fs.used_bytes(), 3 * 4096);
    fs.crash(CrashModel::Pessimistic);
    assert_eq!(fs.metadata("sparse").unwrap().len, 3 * far + 4);
    assert_eq!(fs.used_bytes(), 3 * 4096);
    let fd = fs.open("sparse", &OpenOptions::read_only()).unwrap();
    assert_eq!(fs.pread(fd, 3 * far - 4, &mut buf).unwrap(), 8);
    assert_eq!(&buf[..8], b"straddle");
    assert_eq!(fs.pread(fd, far, &mut buf).unwrap(), 16);
    assert_eq!(&buf[..8], b"far away");
}

/// Linux `EFBIG`: a write starting at or past the maximum file size fails; one starting below it is
/// cut short at the limit (as `generic_write_checks` does); set_len and fallocate past it fail too.
/// Checked with a small configured maximum and with `sim`'s ext4 maximum (16 TiB).
#[test]
fn offsets_at_or_past_max_file_size_are_file_too_large() {
    let max: u64 = 1 << 20;
    let mut fs = SimFs::new(config(7, 1 << 30, max));
    let fd = fs.open("f", &OpenOptions::create()).unwrap();
    expect_err(fs.pwrite(fd, max, b"x"), FileTooLarge, "pwrite at max");
    expect_err(fs.pwrite(fd, max + 1, b"x"), FileTooLarge, "pwrite past max");
    // At i64::MAX the end of the transfer overflows `loff_t`: rw_verify_area's EINVAL comes first.
    expect_err(fs.pwrite(fd, i64::MAX as u64, b"x"), InvalidInput, "pwrite at i64::MAX");
    expect_err(fs.set_len(fd, max + 1), FileTooLarge, "set_len past max");
    expect_err(fs.fallocate(fd, FallocateMode::Extend, max - 4096, 8192), FileTooLarge, "fallocate past max");
    expect_err(fs.fallocate(fd, FallocateMode::KeepSize, max, 1), FileTooLarge, "fallocate at max");
    assert_eq!(fs.fstat(fd).unwrap().len, 0, "failed calls changed the size");
    assert_eq!(fs.pwrite(fd, 0, b"").unwrap(), 0);
    // A zero-length write does nothing even at a huge offset (Linux returns 0 before the size check).
    assert_eq!(fs.pwrite(fd, max + 7, b"").unwrap(), 0);
    assert_eq!(fs.fstat(fd).unwrap().len, 0);
    invariants(&fs);
    // Starting one byte below the limit: a short write of one byte.
    assert_eq!(fs.pwrite(fd, max - 1, b"xyz").unwrap(), 1);
    assert_eq!(fs.fstat(fd).unwrap().len, max);
    expect_err(fs.append(fd, b"more"), FileTooLarge, "append at max");
    fs.seek(fd, max).unwrap();
    expect_err(fs.write(fd, b"more"), FileTooLarge, "write at cursor max");
    fs.set_len(fd, max).unwrap();
    invariants(&fs);

    // The ext4 limit of `sim`: only the error paths (the model materialises whole files in checks).
    let mut fs = sim(7);
    let ext4_max: u64 = 1 << 44;
    let fd = fs.open("f", &OpenOptions::create()).unwrap();
    expect_err(fs.pwrite(fd, ext4_max, b"x"), FileTooLarge, "pwrite at 16 TiB");
    expect_err(fs.set_len(fd, ext4_max + 1), FileTooLarge, "set_len past 16 TiB");
    expect_err(fs.fallocate(fd, FallocateMode::KeepSize, ext4_max - 1, 2), FileTooLarge, "fallocate across 16 TiB");
    assert_eq!(fs.used_bytes(), 0);
    invariants(&fs);
}

/// Linux: offsets and lengths are `loff_t` (signed 64-bit); anything above `i64::MAX` is `EINVAL` for
/// pwrite, pread, lseek, ftruncate and fallocate, and so is a transfer whose end passes `i64::MAX`
/// (`rw_verify_area`). pread, pwrite and ftruncate check a negative offset before the handle; lseek and
/// fallocate look the handle up first. The access mode comes after the offset.
#[test]
fn offsets_above_i64_max_are_invalid_input() {
    let mut fs = small_tree(8);
    let rw = fs.open("exists", &OpenOptions::read_write()).unwrap();
    let ro = fs.open("exists", &OpenOptions::read_only()).unwrap();
    let mut buf = [0u8; 8];
    for huge in [i64::MAX as u64 + 1, 1 << 63 | 12345, u64::MAX] {
        expect_err(fs.pwrite(rw, huge, b"x"), InvalidInput, "pwrite");
        expect_err(fs.pwrite(rw, huge, b""), InvalidInput, "empty pwrite");
        expect_err(fs.pread(rw, huge, &mut buf), InvalidInput, "pread");
        expect_err(fs.seek(rw, huge), InvalidInput, "seek");
        expect_err(fs.set_len(rw, huge), InvalidInput, "set_len");
        expect_err(fs.fallocate(rw, FallocateMode::Extend, huge, 1), InvalidInput, "fallocate offset");
        expect_err(fs.fallocate(rw, FallocateMode::KeepSize, 0, huge), InvalidInput, "fallocate len");
        // Offset before access mode; for pread, pwrite and ftruncate, offset before the handle too.
        expect_err(fs.pwrite(ro, huge, b"x"), InvalidInput, "pwrite on read-only");
        expect_err(fs.pwrite(Fd(999), huge, b"x"), InvalidInput, "pwrite on bad handle");
        expect_err(fs.pread(Fd(999), huge, &mut buf), InvalidInput, "pread on bad handle");
        expect_err(fs.set_len(Fd(999), huge), InvalidInput, "set_len on bad handle");
        expect_err(fs.seek(Fd(999), huge), BadDescriptor, "seek on bad handle");
        expect_err(fs.fallocate(Fd(999), FallocateMode::Extend, huge, 1), BadDescriptor, "fallocate on bad handle");
    }
    // Exactly i64::MAX is a valid offset: an empty read there, a seek; a read of 8 bytes there overflows.
    assert_eq!(fs.pread(rw, i64::MAX as u64, &mut buf[..0]).unwrap(), 0);
    expect_err(fs.pread(rw, i64::MAX as u64, &mut buf), InvalidInput, "pread ending past i64::MAX");
    expect_err(fs.pwrite(rw, i64::MAX as u64 - 1, b"xyz"), InvalidInput, "pwrite ending past i64::MAX");
    fs.seek(rw, i64::MAX as u64).unwrap();
    assert_eq!(fs.read(rw, &mut buf[..0]).unwrap(), 0);
    expect_err(fs.read(rw, &mut buf), InvalidInput, "read ending past i64::MAX");
    expect_err(fs.write(rw, b"x"), InvalidInput, "write ending past i64::MAX");
    // Offset + length may not overflow the maximum either.
    expect_err(fs.fallocate(rw, FallocateMode::Extend, i64::MAX as u64, i64::MAX as u64), FileTooLarge, "overflow");
    assert_eq!(fs.fstat(rw).unwrap().len, 9);
    assert_eq!(fs.read_file("exists").unwrap(), b"some data");
    invariants(&fs);
}

/// fallocate(2): "EINVAL: len was less than or equal to 0", in both modes, checked before the access mode.
#[test]
fn zero_length_fallocate_is_invalid_input() {
    let mut fs = small_tree(9);
    let rw = fs.open("exists", &OpenOptions::read_write()).unwrap();
    let ro = fs.open("exists", &OpenOptions::read_only()).unwrap();
    for mode in [FallocateMode::Extend, FallocateMode::KeepSize] {
        for offset in [0, 9, 1 << 30] {
            expect_err(fs.fallocate(rw, mode, offset, 0), InvalidInput, "fallocate len 0");
            expect_err(fs.fallocate(ro, mode, offset, 0), InvalidInput, "fallocate len 0 read-only");
        }
        expect_err(fs.fallocate(ro, mode, 0, 1), BadDescriptor, "fallocate on a read-only handle");
        expect_err(fs.fallocate(Fd(999), mode, 0, 0), BadDescriptor, "fallocate len 0 on a bad handle");
    }
    assert_eq!(fs.fstat(rw).unwrap().len, 9);
    assert_eq!(fs.used_bytes(), 4096);
    invariants(&fs);
}

/// Naming the root as an entry (Linux `LAST_ROOT`/`LAST_DOT`/`LAST_DOTDOT`): rmdir("/") is `EBUSY`,
/// rmdir(".") `EINVAL`, rmdir("d/..") `ENOTEMPTY`; rename of or onto the root `EBUSY`; unlink of it
/// `EISDIR`; mkdir of it `EEXIST` (and mkdir -p of it succeeds); opening it for writing or creation
/// `EISDIR`, for reading gives a directory handle. The root survives all of it.
#[test]
fn the_root_cannot_be_removed_renamed_or_recreated() {
    let mut fs = small_tree(10);
    let before = fs.tree();
    for root in ["/", "//", "///"] {
        expect_err(fs.rmdir(root), Busy, "rmdir root");
        expect_err(fs.rename(root, "x"), Busy, "rename root");
        expect_err(fs.rename("dir", root), Busy, "rename onto root");
        expect_err(fs.rename(root, root), Busy, "rename root onto itself");
        expect_err(fs.unlink(root), IsADirectory, "unlink root");
        expect_err(fs.mkdir(root), AlreadyExists, "mkdir root");
        fs.mkdir_all(root).unwrap();
        expect_err(fs.open(root, &OpenOptions::create()), IsADirectory, "open root O_CREAT");
        expect_err(fs.open(root, &OpenOptions::read_write()), IsADirectory, "open root O_RDWR");
        expect_err(fs.open(root, &OpenOptions::create_new()), IsADirectory, "open root O_EXCL");
        invariants(&fs);
    }
    expect_err(fs.rmdir("."), InvalidInput, "rmdir .");
    expect_err(fs.rmdir("dir/."), InvalidInput, "rmdir dir/.");
    expect_err(fs.rmdir("dir/.."), DirectoryNotEmpty, "rmdir dir/..");
    expect_err(fs.rename(".", "x"), Busy, "rename .");
    expect_err(fs.rename("dir/..", "x"), Busy, "rename dir/..");
    expect_err(fs.unlink("."), IsADirectory, "unlink .");
    expect_err(fs.mkdir("dir/.."), AlreadyExists, "mkdir dir/..");
    let fd = fs.open("/", &OpenOptions::read_only()).unwrap();
    let mut buf = [0u8; 4];
    expect_err(fs.read(fd, &mut buf), IsADirectory, "read of the root");
    fs.fsync(fd).unwrap();
    fs.close(fd).unwrap();
    assert_eq!(fs.tree(), before);
    assert_eq!(fs.read_dir("/").unwrap(), vec!["dir".to_string(), "exists".to_string()]);
    invariants(&fs);
}

/// rename(2): "EINVAL: an attempt was made to make a directory a subdirectory of itself". Renaming a
/// directory onto itself is a no-op success; onto its own ancestor (non-empty) `ENOTEMPTY`.
#[test]
fn rename_of_a_directory_into_itself_is_invalid_input() {
    let mut fs = sim(11);
    fs.mkdir_all("a/b/c").unwrap();
    let before = fs.tree();
    for (from, to) in
        [("a", "a/x"), ("a", "a/b"), ("a", "a/b/c/d"), ("a/b", "a/b/x"), ("a/b", "a/b/c"), ("a", "a/b/../x")]
    {
        expect_err(fs.rename(from, to), InvalidInput, &format!("rename({from}, {to})"));
        invariants(&fs);
    }
    fs.rename("a", "a").unwrap();
    fs.rename("a/b", "a/./b").unwrap();
    expect_err(fs.rename("a/b", "a"), DirectoryNotEmpty, "rename onto an ancestor");
    expect_err(fs.rename("a/b/c", "a"), DirectoryNotEmpty, "rename onto a grandparent");
    assert_eq!(fs.tree(), before);
    invariants(&fs);
}

/// Access modes: write to a read-only handle and read from a write-only one are `EBADF`; ftruncate on a
/// read-only handle `EINVAL`; a directory handle reads `EISDIR`, writes `EBADF`, truncates `EINVAL`;
/// a directory cannot be opened for writing (`EISDIR`); an invalid flag combination is `EINVAL` before
/// the path is even looked at.
#[test]
fn access_modes_and_flag_combinations_are_enforced() {
    let mut fs = small_tree(12);
    let ro = fs.open("exists", &OpenOptions::read_only()).unwrap();
    expect_err(fs.write(ro, b"x"), BadDescriptor, "write read-only");
    expect_err(fs.pwrite(ro, 0, b"x"), BadDescriptor, "pwrite read-only");
    expect_err(fs.append(ro, b"x"), BadDescriptor, "append read-only");
    expect_err(fs.set_len(ro, 0), InvalidInput, "set_len read-only");
    let wo = fs.open("exists", &OpenOptions::append_create()).unwrap();
    let mut buf = [0u8; 4];
    expect_err(fs.read(wo, &mut buf), BadDescriptor, "read write-only");
    expect_err(fs.pread(wo, 0, &mut buf), BadDescriptor, "pread write-only");
    // O_APPEND: pwrite appends whatever the offset (Linux).
    assert_eq!(fs.pwrite(wo, 0, b"!").unwrap(), 1);
    assert_eq!(fs.read_file("exists").unwrap(), b"some data!");

    let dir = fs.open_dir("dir").unwrap();
    let dir_ro = fs.open("dir", &OpenOptions::read_only()).unwrap();
    for d in [dir, dir_ro] {
        expect_err(fs.read(d, &mut buf), IsADirectory, "read dir");
        expect_err(fs.pread(d, 0, &mut buf), IsADirectory, "pread dir");
        expect_err(fs.write(d, b"x"), BadDescriptor, "write dir");
        expect_err(fs.pwrite(d, 0, b"x"), BadDescriptor, "pwrite dir");
        expect_err(fs.append(d, b"x"), BadDescriptor, "append dir");
        expect_err(fs.set_len(d, 0), InvalidInput, "set_len dir");
        expect_err(fs.fallocate(d, FallocateMode::Extend, 0, 1), BadDescriptor, "fallocate dir");
        assert_eq!(fs.fstat(d).unwrap().kind, vfs::FileKind::Dir);
        fs.fsync(d).unwrap();
        fs.fdatasync(d).unwrap();
    }
    for options in [OpenOptions::read_write(), OpenOptions::create(), OpenOptions::append_create()] {
        expect_err(fs.open("dir", &options), IsADirectory, "open dir for writing");
    }
    expect_err(fs.open("dir", &OpenOptions::create_new()), AlreadyExists, "open dir O_EXCL");
    expect_err(fs.open("exists", &OpenOptions::create_new()), AlreadyExists, "O_EXCL on a file");

    let none = OpenOptions { read: false, ..OpenOptions::read_only() };
    let invalid = [
        none,
        OpenOptions { create: true, ..OpenOptions::read_only() },
        OpenOptions { create_new: true, ..OpenOptions::read_only() },
        OpenOptions { truncate: true, ..OpenOptions::read_only() },
        OpenOptions { truncate: true, ..OpenOptions::append_create() },
    ];
    for options in invalid {
        for path in ["exists", "missing", "dir", "", "../x"] {
            expect_err(fs.open(path, &options), InvalidInput, &format!("open({path:?}, {options:?})"));
        }
    }
    assert_eq!(fs.read_file("exists").unwrap(), b"some data!");
    invariants(&fs);
}

/// ENOSPC: with a 16 KiB disk, a write that needs pages beyond the capacity fails and changes nothing;
/// overwrites of allocated pages and sparse growth still work; fallocate past the capacity fails; space
/// comes back only once the inode is really gone (durably unlinked, closed, collected).
#[test]
fn capacity_exhaustion_is_no_space_and_changes_nothing() {
    let mut fs = SimFs::new(config(13, 16 * 1024, 1 << 40));
    let f1 = fs.open("f1", &OpenOptions::create()).unwrap();
    let f2 = fs.open("f2", &OpenOptions::create()).unwrap();
    fsync_dir(&mut fs, "/");
    assert_eq!(fs.write(f1, &[1; 12 * 1024]).unwrap(), 12 * 1024);
    assert_eq!(fs.used_bytes(), 12 * 1024);
    expect_err(fs.pwrite(f2, 0, &[2; 8192]), NoSpace, "two pages with one free");
    assert_eq!(fs.fstat(f2).unwrap().len, 0, "a failed write changed the size");
    assert_eq!(fs.used_bytes(), 12 * 1024);
    invariants(&fs);
    assert_eq!(fs.write(f2, &[2; 4096]).unwrap(), 4096);
    assert_eq!(fs.used_bytes(), 16 * 1024);
    expect_err(fs.append(f2, b"x"), NoSpace, "append on a full disk");
    expect_err(fs.pwrite(f1, 1 << 30, b"x"), NoSpace, "sparse write on a full disk");
    expect_err(fs.fallocate(f1, FallocateMode::KeepSize, 0, 65_536), NoSpace, "fallocate on a full disk");
    expect_err(fs.fallocate(f1, FallocateMode::Extend, 0, 65_536), NoSpace, "fallocate extend on a full disk");
    assert_eq!(fs.fstat(f1).unwrap().len, 12 * 1024, "a failed fallocate changed the size");
    // Rewriting allocated pages and growing sparsely need no space.
    assert_eq!(fs.pwrite(f1, 0, &[3; 12 * 1024]).unwrap(), 12 * 1024);
    fs.set_len(f1, 1 << 20).unwrap();
    fs.fallocate(f1, FallocateMode::KeepSize, 0, 4096).unwrap();
    assert_eq!(fs.used_bytes(), 16 * 1024);
    invariants(&fs);
    // Unlinked but open, or unlinked but not durably: still allocated.
    fs.sync().unwrap();
    fs.unlink("f2").unwrap();
    fs.collect_garbage();
    expect_err(fs.pwrite(f1, 1 << 19, b"x"), NoSpace, "the open orphan still holds its page");
    fs.close(f2).unwrap();
    fs.collect_garbage();
    expect_err(fs.pwrite(f1, 1 << 19, b"x"), NoSpace, "the durable name still holds the page");
    fsync_dir(&mut fs, "/");
    fs.collect_garbage();
    assert_eq!(fs.used_bytes(), 12 * 1024);
    assert_eq!(fs.pwrite(f1, 1 << 19, b"x").unwrap(), 1);
    invariants(&fs);
}

/// Every trait call, with valid and invalid arguments, as (call, outcome).
fn every_call(fs: &mut SimFs, fd: Fd, path: &str) -> Vec<(&'static str, Outcome)> {
    let mut calls = every_handle_call(fs, fd);
    calls.extend(every_path_call(fs, path));
    calls.push(("rename", outcome(fs.rename(path, "elsewhere"))));
    calls.push(("sync", outcome(fs.sync())));
    calls
}

/// A fired power cut leaves the node off: every call — valid or not, on any handle or path — returns
/// `PoweredOff` (EIO) and does nothing, until `power_on`; then the disk holds the crash image and the
/// old handles are gone (`EBADF`). A `BeforeOp` cut fails the matching call itself, which never happens.
#[test]
fn every_call_after_a_fired_power_cut_is_powered_off_until_power_on() {
    let mut fs = small_tree(14);
    let fd = fs.open("exists", &OpenOptions::read_write()).unwrap();
    fs.arm_power_cut(CrashPoint::AfterOp { seq: fs.op_seq() + 2 }, CrashModel::Pessimistic);
    assert_eq!(fs.write(fd, b"one").unwrap(), 3);
    assert!(!fs.is_powered_off());
    // The call the cut follows completes and returns its own result.
    assert_eq!(fs.write(fd, b"two").unwrap(), 3);
    assert!(fs.is_powered_off());
    let cuts = fs.take_power_cuts();
    assert_eq!(cuts.len(), 1);
    let seq = fs.op_seq();
    let before = fs.tree();
    for (handle, path) in [(fd, "exists"), (Fd(999), ""), (fd, "../x"), (fd, "a\0"), (fd, "/"), (fd, "new")] {
        for (call, got) in every_call(&mut fs, handle, path) {
            assert_eq!(got, Err(PoweredOff), "{call} ({handle:?}, {path:?}) while powered off");
        }
        assert!(!fs.exists("exists").is_ok_and(|e| e), "exists answered while powered off");
        invariants(&fs);
    }
    assert_eq!(fs.op_seq(), seq, "calls while powered off were numbered");
    assert_eq!(fs.tree(), before, "calls while powered off changed the tree");
    assert!(fs.is_powered_off());
    fs.power_on();
    expect_err(fs.write(fd, b"x"), BadDescriptor, "an old handle after power on");
    // Durable state survived: the name and at least the synced data (sectors of "some data" that the
    // unsynced writes at offsets 0..6 did not touch cannot exist; the file is one sector).
    let data = fs.read_file("exists").unwrap();
    assert!(data.len() == 9, "size {} after overwrites inside the file", data.len());
    assert!(fs.metadata("dir").is_ok());
    invariants(&fs);

    // A BeforeOp cut: the matching call fails and never happens.
    fs.arm_power_cut(
        CrashPoint::BeforeOp { kind: Some(OpKind::Unlink), path_glob: "exists".to_string(), after_seq: 0 },
        CrashModel::NoLoss,
    );
    expect_err(fs.unlink("dir/missing"), NotFound, "a non-matching call");
    expect_err(fs.unlink("exists"), PoweredOff, "the matching call");
    expect_err(fs.metadata("exists"), PoweredOff, "after the cut");
    fs.power_on();
    assert!(fs.exists("exists").unwrap(), "the call the cut preceded happened");
    assert_eq!(fs.take_power_cuts().len(), 1);
    invariants(&fs);
}

/// `crash_with` is part of the fault API, so it too gets bad input: decisions that do not fit the pending
/// state (unknown file, unknown size operation, a sector nothing touched, a file listed twice, an unknown
/// entry operation) are a typed `DecisionError`, and nothing changes.
#[test]
fn mismatched_crash_decisions_are_rejected_without_effect() {
    let build = || {
        let mut fs = small_tree(15);
        let fd = fs.open("exists", &OpenOptions::read_write()).unwrap();
        fs.pwrite(fd, 0, &[7; 1000]).unwrap();
        write_file(&mut fs, "dir/new", b"fresh", false);
        fs
    };
    let mut fs = build();
    let images = fs.enumerate_crash_images(CrashModel::Pessimistic);
    let good = images.iter().find(|i| i.label == "all").expect("an `all` image").decisions.clone();
    let file = good.files.iter().find(|f| f.path == "exists").expect("a decision for exists").clone();
    let mut variants = Vec::new();
    let mut d = good.clone();
    d.files[0].ino = 9999;
    variants.push(("unknown file", d, vfs::DecisionError::UnknownFile { ino: 9999 }));
    let mut d = good.clone();
    let i = d.files.iter().position(|f| f.ino == file.ino).unwrap();
    d.files[i].size_after = Some(1_000_000);
    variants.push(("unknown size op", d, vfs::DecisionError::UnknownSizeOp { ino: file.ino, seq: 1_000_000 }));
    let mut d = good.clone();
    d.files[i].sectors.push(vfs::SectorDecision { sector: 77, version: vfs::SectorVersion::After(1) });
    variants.push(("untouched sector", d, vfs::DecisionError::BadSector { ino: file.ino, sector: 77 }));
    let mut d = good.clone();
    d.files.push(file.clone());
    variants.push(("file twice", d, vfs::DecisionError::DuplicateFile { ino: file.ino }));
    let mut d = good.clone();
    d.entries.push(vfs::EntryDecision { seq: 424_242, op: String::new(), kept: true });
    variants.push(("unknown entry op", d, vfs::DecisionError::UnknownEntryOp { seq: 424_242 }));
    let tree = fs.tree();
    let pending = fs.pending_count();
    for (what, decisions, want) in variants {
        assert_eq!(fs.crash_with(&decisions), Err(want.clone()), "{what}");
        assert_eq!(fs.normalize_decisions(&decisions), Err(want), "{what}");
        assert_eq!(fs.tree(), tree, "{what}: a rejected crash changed the tree");
        assert_eq!(fs.pending_count(), pending, "{what}: a rejected crash changed the pending state");
        invariants(&fs);
    }
    // The unmodified decisions still apply, and give what a fresh build gives.
    fs.crash_with(&good).unwrap();
    let mut fresh = build();
    fresh.crash_with(&good).unwrap();
    assert_eq!(fs.tree(), fresh.tree());
    invariants(&fs);
}

/// The media-fault half of the fault API, also driven from replayed seed files, gets bad targets too: a
/// missing path, a path through a file, a directory, an offset past the durable data, a bit index above
/// 7, a replayed fault whose id is in use — each a typed error, with no fault added and reads unchanged.
#[test]
fn media_fault_api_rejects_bad_targets() {
    let mut fs = small_tree(16);
    expect_err(fs.inject_bit_flip("missing", 0, 0), NotFound, "bit flip on a missing file");
    expect_err(fs.inject_bit_flip("exists/x", 0, 0), NotADirectory, "bit flip through a file");
    expect_err(fs.inject_bit_flip("dir", 0, 0), IsADirectory, "bit flip on a directory");
    expect_err(fs.inject_bit_flip("exists", 9, 0), InvalidInput, "bit flip past the durable data");
    expect_err(fs.inject_bit_flip("exists", 0, 8), InvalidInput, "bit 8");
    expect_err(fs.inject_bit_flip("../x", 0, 0), EscapesRoot, "bit flip above the root");
    expect_err(fs.inject_latent_sector_error("", 0), NotFound, "latent error on the empty path");
    expect_err(fs.inject_latent_sector_error("dir", 0), IsADirectory, "latent error on a directory");
    expect_err(fs.inject_latent_sector_error("a\0", 0), InvalidInput, "latent error on a NUL path");
    assert!(fs.media_faults().is_empty(), "a rejected fault was added");
    assert_eq!(fs.read_file("exists").unwrap(), b"some data");
    // A listed fault replays once; replaying it again is refused.
    let id = fs.inject_bit_flip("exists", 0, 0).unwrap();
    let listed = fs.media_faults();
    assert_eq!(listed.len(), 1);
    expect_err(fs.add_media_fault(&listed[0]), AlreadyExists, "replaying a fault in force");
    assert_eq!(fs.read_file("exists").unwrap(), b"rome data", "bit 0 of 's' flipped");
    assert!(fs.remove_media_fault(id));
    assert!(!fs.remove_media_fault(id), "removed twice");
    assert_eq!(fs.read_file("exists").unwrap(), b"some data");
    let mut moved = listed[0].clone();
    moved.path = "dir".to_string();
    expect_err(fs.add_media_fault(&moved), IsADirectory, "replaying onto a directory");
    assert!(fs.media_faults().is_empty());
    invariants(&fs);
}

#[test]
fn replayed_media_faults_are_validated() {
    let mut fs = small_tree(17);
    let id = fs.inject_bit_flip("exists", 0, 0).unwrap();
    let mut fault = fs.media_faults().remove(0);
    assert!(fs.remove_media_fault(id));
    let mut bad = fault.clone();
    bad.id = vfs::MediaFaultId(u64::MAX);
    expect_err(fs.add_media_fault(&bad), InvalidInput, "the last id");
    let mut bad = fault.clone();
    bad.sectors[0].sector = u64::MAX;
    expect_err(fs.add_media_fault(&bad), InvalidInput, "a sector past the maximum file size");
    let mut bad = fault.clone();
    bad.sectors[0].patch = Some((510, vec![9; 10]));
    expect_err(fs.add_media_fault(&bad), InvalidInput, "a patch running into the next sector");
    bad.sectors[0].patch = Some((u64::MAX, vec![9]));
    expect_err(fs.add_media_fault(&bad), InvalidInput, "a patch offset that overflows");
    assert!(fs.media_faults().is_empty());
    fault.sectors[0].patch = Some((502, vec![9; 10]));
    fs.add_media_fault(&fault).unwrap();
    assert_eq!(fs.read_file("exists").unwrap(), b"some data", "the patch is past the 9 bytes of data");
    invariants(&fs);
}

#[test]
fn invariant_checks_on_a_sparse_terabyte_file_cost_its_pages_not_its_length() {
    let mut fs = sim(18);
    let fd = fs.open("sparse", &OpenOptions::create()).unwrap();
    fs.pwrite(fd, 1 << 40, b"x").unwrap();
    invariants(&fs);
    fs.fsync(fd).unwrap();
    invariants(&fs);
}

#[test]
fn reading_a_directory_as_a_file_is_is_a_directory() {
    let mut fs = small_tree(19);
    expect_err(fs.read_file("dir"), IsADirectory, "read_file of a directory");
    expect_err(fs.read_file("/"), IsADirectory, "read_file of the root");
    assert_eq!(fs.open_handle_count(), 0, "the handle was closed");
}

// ----- the fuzz -----

const FUZZ_SEEDS: u64 = 10;
const STEPS_PER_SEED: usize = 1500;
/// Files stay small so that `check_invariants` after every call stays cheap (it materialises files);
/// offsets up to `u64::MAX` are still drawn and must fail with the right kind.
const FUZZ_MAX_FILE: u64 = 64 * 1024;
const FUZZ_CAPACITY: u64 = 256 * 1024;

/// The plain names random paths are made of: few enough that calls find what earlier calls created,
/// and mostly separate for files and directories, so that the namespace does not fill with one kind.
const FILE_NAMES: [&str; 4] = ["w", "x", "y", "z"];
const DIR_NAMES: [&str; 3] = ["a", "b", "c"];

const PATH_ERRORS: &[ErrorKind] = &[NotFound, NotADirectory, InvalidInput, NameTooLong, EscapesRoot];
const READ_FILE_ERRORS: &[ErrorKind] = &[NotFound, NotADirectory, InvalidInput, NameTooLong, EscapesRoot, IsADirectory];
const OPEN_ERRORS: &[ErrorKind] =
    &[NotFound, NotADirectory, InvalidInput, NameTooLong, EscapesRoot, AlreadyExists, IsADirectory];
const EXISTS_ERRORS: &[ErrorKind] = &[NotADirectory, InvalidInput, NameTooLong, EscapesRoot];
const RENAME_ERRORS: &[ErrorKind] =
    &[NotFound, NotADirectory, InvalidInput, NameTooLong, EscapesRoot, IsADirectory, DirectoryNotEmpty, Busy];
const UNLINK_ERRORS: &[ErrorKind] = &[NotFound, NotADirectory, InvalidInput, NameTooLong, EscapesRoot, IsADirectory];
const MKDIR_ERRORS: &[ErrorKind] = &[NotFound, NotADirectory, InvalidInput, NameTooLong, EscapesRoot, AlreadyExists];
const RMDIR_ERRORS: &[ErrorKind] =
    &[NotFound, NotADirectory, InvalidInput, NameTooLong, EscapesRoot, DirectoryNotEmpty, Busy];
// read/write at the cursor: a cursor seeked near i64::MAX makes the transfer end overflow (EINVAL).
const READ_ERRORS: &[ErrorKind] = &[BadDescriptor, IsADirectory, InvalidInput];
const PREAD_ERRORS: &[ErrorKind] = &[BadDescriptor, IsADirectory, InvalidInput];
const WRITE_ERRORS: &[ErrorKind] = &[BadDescriptor, NoSpace, FileTooLarge, InvalidInput];
const PWRITE_ERRORS: &[ErrorKind] = &[BadDescriptor, NoSpace, FileTooLarge, InvalidInput];
const SEEK_ERRORS: &[ErrorKind] = &[BadDescriptor, InvalidInput];
const SET_LEN_ERRORS: &[ErrorKind] = &[BadDescriptor, InvalidInput, FileTooLarge];
const FALLOCATE_ERRORS: &[ErrorKind] = &[BadDescriptor, InvalidInput, FileTooLarge, NoSpace];
const HANDLE_ERRORS: &[ErrorKind] = &[BadDescriptor];
const NO_ERRORS: &[ErrorKind] = &[];

/// Every trait method the fuzz calls (`read_file` is the trait's provided method).
const CALLS: [&str; 24] = [
    "open",
    "open_dir",
    "close",
    "read",
    "pread",
    "write",
    "pwrite",
    "append",
    "seek",
    "set_len",
    "fallocate",
    "fsync",
    "fdatasync",
    "fstat",
    "rename",
    "unlink",
    "mkdir",
    "mkdir_all",
    "rmdir",
    "read_dir",
    "metadata",
    "exists",
    "sync",
    "read_file",
];

fn fd_call(name: &'static str, outcome: Outcome, allowed: &'static [ErrorKind], fd: Fd) -> Call {
    Call { name, outcome, allowed, fd: Some(fd) }
}

fn path_call(name: &'static str, outcome: Outcome, allowed: &'static [ErrorKind]) -> Call {
    Call { name, outcome, allowed, fd: None }
}

/// One trait call as the fuzz saw it.
struct Call {
    name: &'static str,
    outcome: Outcome,
    allowed: &'static [ErrorKind],
    /// The handle a handle call named.
    fd: Option<Fd>,
}

struct Fuzz {
    seed: u64,
    fs: SimFs,
    r: ChaCha8Rng,
    /// Handles the fuzz believes open (checked against the filesystem's count after every call).
    open: BTreeSet<Fd>,
    /// `open` as it was before the current call: handle calls are judged against it.
    before: BTreeSet<Fd>,
    /// Every handle ever returned.
    issued: Vec<Fd>,
    cut_armed: bool,
    write_rules: bool,
    sync_rules: bool,
    media_faults: bool,
    calls: usize,
    /// Per call: (successes, failures).
    stats: BTreeMap<&'static str, (u64, u64)>,
    lifecycle: BTreeMap<&'static str, u64>,
}

impl Fuzz {
    fn new(seed: u64) -> Fuzz {
        let sector_size = if seed.is_multiple_of(2) { 512 } else { 4096 };
        let fs = SimFs::new(SimFsConfig {
            seed,
            sector_size,
            capacity_bytes: FUZZ_CAPACITY,
            max_file_size: FUZZ_MAX_FILE,
            record_ops: seed.is_multiple_of(3),
        });
        Fuzz {
            seed,
            fs,
            r: rng(0xBAD1_DEA5 ^ seed),
            before: BTreeSet::new(),
            open: BTreeSet::new(),
            issued: Vec::new(),
            cut_armed: false,
            write_rules: false,
            sync_rules: false,
            media_faults: false,
            calls: 0,
            stats: BTreeMap::new(),
            lifecycle: BTreeMap::new(),
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        below(&mut self.r, n)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn component(&mut self) -> String {
        match self.below(48) {
            0 => ".".to_string(),
            1 => "..".to_string(),
            2 => String::new(),
            3 => "n\0ul".to_string(),
            4 => "L".repeat(256),
            5 => "M".repeat(255),
            6 => "\0".to_string(),
            7 => "é".repeat(128),
            n if n % 2 == 0 => FILE_NAMES[(n / 2 % 4) as usize].to_string(),
            n => DIR_NAMES[(n / 2 % 3) as usize].to_string(),
        }
    }

    /// A plain path: an optional directory, then a file name (`file`) or a directory name.
    fn plain(&mut self, file: bool) -> String {
        let last = if file { FILE_NAMES[self.below(4) as usize] } else { DIR_NAMES[self.below(3) as usize] };
        if self.chance(50) { format!("{}/{last}", DIR_NAMES[self.below(3) as usize]) } else { last.to_string() }
    }

    /// A path for a call on files (`file`) or directories: often plain, so that calls also succeed;
    /// otherwise anything, including what no call should accept.
    fn path_for(&mut self, file: bool) -> String {
        if self.chance(55) { self.plain(file) } else { self.path() }
    }

    fn path(&mut self) -> String {
        match self.below(40) {
            0 => String::new(),
            1 => "/".to_string(),
            2 => ".".to_string(),
            3 => "..".to_string(),
            4 => "//".to_string(),
            _ => {
                let depth = match self.below(20) {
                    0..=9 => 1,
                    10..=16 => 2,
                    _ => 3,
                };
                let parts: Vec<String> = (0..depth).map(|_| self.component()).collect();
                let mut p = parts.join("/");
                if self.chance(15) {
                    p.insert(0, '/');
                }
                if self.chance(8) {
                    p.push('/');
                }
                p
            }
        }
    }

    fn fd(&mut self) -> Fd {
        let pick = self.below(10);
        if pick < 7 && !self.open.is_empty() {
            let i = self.below(self.open.len() as u64) as usize;
            return *self.open.iter().nth(i).expect("in range");
        }
        if pick < 9 && !self.issued.is_empty() {
            let i = self.below(self.issued.len() as u64) as usize;
            return self.issued[i];
        }
        let next = self.issued.iter().map(|f| f.0).max().unwrap_or(3);
        [Fd(0), Fd(1), Fd(2), Fd(999), Fd(u64::MAX), Fd(next + 1), Fd(next + 1000)][self.below(7) as usize]
    }

    /// An offset or length: mostly small, sometimes at the edges of the file size limit and of `loff_t`.
    fn offset(&mut self) -> u64 {
        match self.below(24) {
            0 => FUZZ_MAX_FILE - 1,
            1 => FUZZ_MAX_FILE,
            2 => FUZZ_MAX_FILE + 1,
            3 => 1 << 40,
            4 => 1 << 44,
            5 => i64::MAX as u64,
            6 => i64::MAX as u64 + 1,
            7 => u64::MAX,
            8 => 0,
            9..=11 => self.below(8) * 4096,
            _ => self.below(20_000),
        }
    }

    fn data(&mut self) -> Vec<u8> {
        let len = match self.below(10) {
            0 => 0,
            1 => 4096 * (1 + self.below(3)) as usize,
            _ => self.below(5000) as usize,
        };
        let mut data = vec![0u8; len];
        self.r.fill_bytes(&mut data);
        data
    }

    fn options(&mut self) -> OpenOptions {
        if self.chance(25) {
            let bits = self.below(64);
            return OpenOptions {
                read: bits & 1 != 0,
                write: bits & 2 != 0,
                append: bits & 4 != 0,
                truncate: bits & 8 != 0,
                create: bits & 16 != 0,
                create_new: bits & 32 != 0,
            };
        }
        [
            OpenOptions::read_only(),
            OpenOptions::read_write(),
            OpenOptions::create(),
            OpenOptions::create(),
            OpenOptions::create_new(),
            OpenOptions::create_truncate(),
            OpenOptions::append_create(),
        ][self.below(7) as usize]
    }

    fn model(&mut self) -> CrashModel {
        CrashModel::ALL[self.below(CrashModel::ALL.len() as u64) as usize]
    }

    /// Every handle is gone (process crash, power cut, crash).
    fn all_closed(&mut self) {
        self.open.clear();
    }

    fn step(&mut self) {
        let off = self.fs.is_powered_off();
        if self.chance(3) || (off && self.chance(30)) {
            self.lifecycle_step();
        } else {
            let was_off = self.fs.is_powered_off();
            self.before = self.open.clone();
            let call = self.trait_call();
            self.check(call, was_off);
        }
        self.fs.check_invariants().unwrap_or_else(|e| panic!("seed {}: invariant broken: {e}", self.seed));
        assert_eq!(self.fs.open_handle_count(), self.open.len(), "seed {}: handle count", self.seed);
    }

    fn count(&mut self, what: &'static str) {
        *self.lifecycle.entry(what).or_default() += 1;
    }

    /// The simulator's calls around the trait: crashes, writeback, collection, fault injection.
    fn lifecycle_step(&mut self) {
        if self.fs.is_powered_off() {
            self.fs.power_on();
            self.count("power_on");
            return;
        }
        match self.below(12) {
            0 => {
                // A process crash closes every handle and keeps the page cache; what is pending stays
                // pending, except on orphans the closed handles were the last path to.
                let (tree, pending) = (self.fs.tree(), self.fs.pending_count());
                self.fs.process_crash();
                self.all_closed();
                assert_eq!(self.fs.tree(), tree, "seed {}: a process crash changed the tree", self.seed);
                assert!(self.fs.pending_count() <= pending, "seed {}: a process crash added work", self.seed);
                self.count("process_crash");
            }
            1 | 2 => {
                let model = self.model();
                let tree = self.fs.tree();
                self.fs.crash(model);
                self.all_closed();
                assert_eq!(self.fs.pending_count(), 0, "seed {}: pending state survived a crash", self.seed);
                // `NoLoss` is a process crash on the disk's side, unless a failed fsync made the cache
                // show what the disk never got.
                if model == CrashModel::NoLoss && !self.sync_rules {
                    assert_eq!(self.fs.tree(), tree, "seed {}: NoLoss lost something", self.seed);
                }
                self.count("crash");
            }
            3 => {
                let seq = self.below(self.fs.op_seq() + 5);
                self.fs.writeback(seq);
                if seq >= self.fs.op_seq() {
                    assert_eq!(self.fs.pending_count(), 0, "seed {}: writeback of everything", self.seed);
                }
                self.count("writeback");
            }
            4 => {
                self.fs.collect_garbage();
                self.count("collect_garbage");
            }
            5 => {
                self.fs.drop_caches();
                self.count("drop_caches");
            }
            6 => {
                let point = if self.chance(50) {
                    CrashPoint::AfterOp { seq: self.fs.op_seq() + 1 + self.below(20) }
                } else {
                    let kind = if self.chance(30) { None } else { Some(OpKind::ALL[self.below(20) as usize]) };
                    CrashPoint::BeforeOp { kind, path_glob: "**".to_string(), after_seq: self.fs.op_seq() }
                };
                let model = self.model();
                self.fs.arm_power_cut(point, model);
                self.cut_armed = true;
                self.count("arm_power_cut");
            }
            7 => {
                let (kind, error) = match self.below(4) {
                    0 => (OpKind::Fsync, Io),
                    1 => (OpKind::Fdatasync, Io),
                    2 => (OpKind::FsyncDir, Io),
                    _ => (OpKind::Write, if self.chance(50) { Io } else { NoSpace }),
                };
                if kind == OpKind::Write {
                    self.write_rules = true;
                } else {
                    self.sync_rules = true;
                }
                let after_seq = self.fs.op_seq() + self.below(10);
                let times = 1 + self.below(2) as u32;
                self.fs.inject_error(ErrorRule {
                    kind: Some(kind),
                    path_glob: "**".to_string(),
                    error,
                    after_seq,
                    times,
                });
                self.count("inject_error");
            }
            8 => {
                // A latent sector error or bit flip on a random path and offset: typed errors for bad
                // targets; reads of the file may fail with EIO from now on.
                let path = self.path();
                let offset = self.offset();
                let result = if self.chance(50) {
                    self.fs.inject_latent_sector_error(&path, offset)
                } else {
                    let bit = self.below(10) as u8;
                    self.fs.inject_bit_flip(&path, offset, bit)
                };
                match result {
                    Ok(_) => self.media_faults = true,
                    Err(e) => assert!(
                        [NotFound, NotADirectory, IsADirectory, InvalidInput, NameTooLong, EscapesRoot]
                            .contains(&e.kind),
                        "seed {}: media fault on {path:?}: {e}",
                        self.seed
                    ),
                }
                self.count("inject_media_fault");
            }
            9 if self.fs.pending_count() <= 40 => {
                let model = self.model();
                let images = self.fs.enumerate_crash_images(model);
                assert!(!images.is_empty(), "seed {}: no crash image", self.seed);
                let i = self.below(images.len() as u64) as usize;
                self.fs.crash_with(&images[i].decisions).unwrap_or_else(|e| panic!("seed {}: {e}", self.seed));
                self.all_closed();
                self.count("enumerate_and_crash_with");
            }
            _ => {
                let before = self.fs.pending_count();
                self.fs.take_ops();
                self.fs.take_fault_events();
                assert_eq!(self.fs.pending_count(), before);
                self.count("take_logs");
            }
        }
    }

    fn check(&mut self, call: Call, was_off: bool) {
        let seed = self.seed;
        let name = call.name;
        self.calls += 1;
        let stats = self.stats.entry(name).or_default();
        match call.outcome {
            Ok(()) => stats.0 += 1,
            Err(_) => stats.1 += 1,
        }
        let armed = self.cut_armed;
        if self.fs.take_power_cuts().into_iter().next().is_some() {
            self.cut_armed = false;
            self.all_closed();
        }
        if was_off {
            assert_eq!(call.outcome, Err(PoweredOff), "seed {seed}: {name} while powered off");
            return;
        }
        let write_like = matches!(name, "write" | "pwrite" | "append");
        let injected = |kind: ErrorKind| {
            (self.write_rules && write_like && matches!(kind, Io | NoSpace))
                || (self.sync_rules && matches!(name, "fsync" | "fdatasync") && kind == Io)
                || (self.media_faults && matches!(name, "read" | "pread" | "read_file") && kind == Io)
        };
        if let Err(kind) = call.outcome {
            let expected = call.allowed.contains(&kind) || injected(kind) || (armed && kind == PoweredOff);
            assert!(expected, "seed {seed}: {name} failed with unexpected {kind:?}");
        }
        if let Some(fd) = call.fd
            && !self.before.contains(&fd)
        {
            let ok = match call.outcome {
                Err(BadDescriptor) => true,
                // A negative offset is checked before the handle by pread, pwrite and ftruncate.
                Err(InvalidInput) => matches!(name, "pread" | "pwrite" | "set_len"),
                Err(PoweredOff) => armed,
                Err(kind) => write_like && injected(kind),
                Ok(()) => false,
            };
            assert!(ok, "seed {seed}: {name} on a closed or never-issued handle gave {:?}", call.outcome);
        }
    }

    fn trait_call(&mut self) -> Call {
        let pick = self.below(94);
        match pick {
            0..=14 => {
                let path = self.path_for(true);
                let options = self.options();
                let r = self.fs.open(&path, &options);
                if let Ok(fd) = r {
                    assert!(!self.issued.contains(&fd), "seed {}: handle {fd:?} reused", self.seed);
                    self.issued.push(fd);
                    self.open.insert(fd);
                }
                path_call("open", outcome(r), OPEN_ERRORS)
            }
            15 | 16 => {
                let path = self.path_for(false);
                let r = self.fs.open_dir(&path);
                if let Ok(fd) = r {
                    assert!(!self.issued.contains(&fd), "seed {}: handle {fd:?} reused", self.seed);
                    self.issued.push(fd);
                    self.open.insert(fd);
                }
                path_call("open_dir", outcome(r), PATH_ERRORS)
            }
            17..=19 => {
                let fd = self.fd();
                let was_open = self.open.contains(&fd);
                let r = outcome(self.fs.close(fd));
                if r.is_ok() {
                    assert!(self.open.remove(&fd), "seed {}: closed {fd:?} twice", self.seed);
                } else if was_open {
                    assert!(
                        r == Err(PoweredOff) || self.fs.is_powered_off(),
                        "seed {}: close of open {fd:?} failed: {r:?}",
                        self.seed
                    );
                }
                fd_call("close", r, HANDLE_ERRORS, fd)
            }
            20..=23 => {
                let fd = self.fd();
                let mut buf = vec![0u8; self.below(6000) as usize];
                let r = self.fs.read(fd, &mut buf);
                if let Ok(n) = r {
                    assert!(n <= buf.len());
                }
                fd_call("read", outcome(r), READ_ERRORS, fd)
            }
            24..=27 => {
                let fd = self.fd();
                let offset = self.offset();
                let mut buf = vec![0u8; self.below(6000) as usize];
                let r = self.fs.pread(fd, offset, &mut buf);
                if let Ok(n) = r {
                    assert!(n <= buf.len());
                }
                fd_call("pread", outcome(r), PREAD_ERRORS, fd)
            }
            28..=33 => {
                let fd = self.fd();
                let data = self.data();
                let r = self.fs.write(fd, &data);
                if let Ok(n) = r {
                    assert!(n <= data.len() && (n > 0 || data.is_empty()), "seed {}: write returned {n}", self.seed);
                }
                fd_call("write", outcome(r), WRITE_ERRORS, fd)
            }
            34..=39 => {
                let fd = self.fd();
                let offset = self.offset();
                let data = self.data();
                let r = self.fs.pwrite(fd, offset, &data);
                if let Ok(n) = r {
                    assert!(n <= data.len() && (n > 0 || data.is_empty()), "seed {}: pwrite returned {n}", self.seed);
                }
                fd_call("pwrite", outcome(r), PWRITE_ERRORS, fd)
            }
            40..=43 => {
                let fd = self.fd();
                let data = self.data();
                let r = self.fs.append(fd, &data);
                if let Ok(at) = r {
                    assert!(at <= FUZZ_MAX_FILE, "seed {}: appended at {at}", self.seed);
                }
                fd_call("append", outcome(r), WRITE_ERRORS, fd)
            }
            44..=46 => {
                let fd = self.fd();
                let offset = self.offset();
                let r = self.fs.seek(fd, offset);
                fd_call("seek", outcome(r), SEEK_ERRORS, fd)
            }
            47..=49 => {
                let fd = self.fd();
                let len = self.offset();
                let r = self.fs.set_len(fd, len);
                fd_call("set_len", outcome(r), SET_LEN_ERRORS, fd)
            }
            50..=52 => {
                let fd = self.fd();
                let mode = if self.chance(50) { FallocateMode::Extend } else { FallocateMode::KeepSize };
                let offset = self.offset();
                let len = if self.chance(15) { 0 } else { self.offset() };
                let r = self.fs.fallocate(fd, mode, offset, len);
                fd_call("fallocate", outcome(r), FALLOCATE_ERRORS, fd)
            }
            53..=56 => {
                let fd = self.fd();
                let r = self.fs.fsync(fd);
                fd_call("fsync", outcome(r), HANDLE_ERRORS, fd)
            }
            57..=59 => {
                let fd = self.fd();
                let r = self.fs.fdatasync(fd);
                fd_call("fdatasync", outcome(r), HANDLE_ERRORS, fd)
            }
            60..=62 => {
                let fd = self.fd();
                let r = self.fs.fstat(fd);
                fd_call("fstat", outcome(r), HANDLE_ERRORS, fd)
            }
            63..=67 => {
                let file = self.chance(70);
                let (from, to) = (self.path_for(file), self.path_for(file));
                let r = self.fs.rename(&from, &to);
                path_call("rename", outcome(r), RENAME_ERRORS)
            }
            68..=71 => {
                let path = self.path_for(true);
                let r = self.fs.unlink(&path);
                path_call("unlink", outcome(r), UNLINK_ERRORS)
            }
            72..=74 => {
                let path = self.path_for(false);
                let r = self.fs.mkdir(&path);
                path_call("mkdir", outcome(r), MKDIR_ERRORS)
            }
            75 | 76 => {
                let path = self.path_for(false);
                let r = self.fs.mkdir_all(&path);
                path_call("mkdir_all", outcome(r), MKDIR_ERRORS)
            }
            77..=80 => {
                let path = self.path_for(false);
                let r = self.fs.rmdir(&path);
                path_call("rmdir", outcome(r), RMDIR_ERRORS)
            }
            81..=83 => {
                let path = self.path_for(false);
                let r = self.fs.read_dir(&path);
                if let Ok(names) = &r {
                    assert!(names.windows(2).all(|w| w[0] < w[1]), "seed {}: read_dir not sorted", self.seed);
                }
                path_call("read_dir", outcome(r), PATH_ERRORS)
            }
            84..=86 => {
                let file = self.chance(50);
                let path = self.path_for(file);
                let r = self.fs.metadata(&path);
                path_call("metadata", outcome(r), PATH_ERRORS)
            }
            87 | 88 => {
                let file = self.chance(50);
                let path = self.path_for(file);
                let r = self.fs.exists(&path);
                path_call("exists", outcome(r), EXISTS_ERRORS)
            }
            89 => {
                let r = self.fs.sync();
                if r.is_ok() {
                    assert_eq!(self.fs.pending_count(), 0, "seed {}: pending after sync", self.seed);
                }
                path_call("sync", outcome(r), NO_ERRORS)
            }
            _ => {
                let path = self.path_for(true);
                let r = self.fs.read_file(&path);
                if let Ok(data) = &r {
                    assert!(data.len() as u64 <= FUZZ_MAX_FILE);
                }
                path_call("read_file", outcome(r), READ_FILE_ERRORS)
            }
        }
    }
}

/// Seeded fuzz: at least 10,000 trait calls over `FUZZ_SEEDS` seeds, mixing valid and invalid arguments
/// (paths with `..`, `.`, empty components, trailing slashes, NUL, over-long and maximal names; closed,
/// never-issued and absurd handles; offsets and lengths at the size limit, at `i64::MAX` and beyond;
/// random and invalid open flags), every trait method, and the simulator's lifecycle calls (process
/// crash, power loss under every model, replay of enumerated images, writeback, garbage collection,
/// dropped caches, armed power cuts, injected fsync/write errors, media faults). Asserted: no panic,
/// every error is one the call may return, a handle the fuzz knows is not open is `EBADF`, every call
/// while powered off is `PoweredOff`, the handle count matches, and `check_invariants` holds after
/// every single call. The outcome counts show each call both succeeded and failed, so the fuzz cannot
/// pass vacuously.
#[test]
fn random_calls_with_bad_arguments_never_panic_and_keep_invariants() {
    let mut stats: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let mut lifecycle: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut calls = 0;
    for seed in 0..FUZZ_SEEDS {
        let mut fuzz = Fuzz::new(seed);
        for _ in 0..STEPS_PER_SEED {
            fuzz.step();
        }
        calls += fuzz.calls;
        for (name, (ok, err)) in fuzz.stats {
            let s = stats.entry(name).or_default();
            s.0 += ok;
            s.1 += err;
        }
        for (name, n) in fuzz.lifecycle {
            *lifecycle.entry(name).or_default() += n;
        }
    }
    assert!(calls >= 10_000, "only {calls} trait calls");
    for name in CALLS {
        let (ok, err) = stats.get(name).copied().unwrap_or_default();
        assert!(ok > 0, "{name} never succeeded ({stats:?})");
        if name != "sync" {
            assert!(err > 0, "{name} never failed ({stats:?})");
        }
    }
    for what in [
        "process_crash",
        "crash",
        "writeback",
        "collect_garbage",
        "drop_caches",
        "arm_power_cut",
        "power_on",
        "inject_error",
        "inject_media_fault",
        "enumerate_and_crash_with",
    ] {
        assert!(lifecycle.get(what).copied().unwrap_or(0) > 0, "{what} never ran ({lifecycle:?})");
    }
}

#[test]
fn paths_of_path_max_bytes_or_more_are_name_too_long_and_deep_trees_work() {
    let mut fs = sim(20);
    let long = "a/".repeat(2048);
    expect_err(fs.mkdir_all(&long), NameTooLong, "mkdir -p of a 4096-byte path");
    expect_err(fs.metadata(&long), NameTooLong, "stat of a 4096-byte path");
    let deep = "d/".repeat(2000);
    fs.mkdir_all(&deep).unwrap();
    assert!(fs.metadata(&deep).unwrap().kind == vfs::FileKind::Dir);
    fs.mkdir_all(&deep).unwrap();
    invariants(&fs);
}
