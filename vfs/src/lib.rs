//! A POSIX-shaped filesystem interface with two backends: [`SimFs`], an in-memory filesystem whose
//! *durability* behaves like Linux on a real disk — adversarially — and [`RealFs`], the same trait over
//! `std::fs`.
//!
//! Why this crate exists: a simulator can only find the crash-recovery bugs its disk can produce. If the
//! virtual disk loses less than a real one loses after a power cut, bugs such as those fixed in Ra PR 589
//! never appear. `SimFs` therefore keeps, per inode, the durable image and every unsynced operation since,
//! and on a power cut lets a seeded crash model pick what survives: per-sector versions (torn and
//! out-of-order writes), each directory operation kept or dropped, any size reachable by a prefix of the
//! size changes. The choice comes back as data ([`CrashDecisions`]) and replays exactly.
//!
//! The rules follow Linux `fsync(2)` and the crash-consistency literature (ALICE, CrashMonkey, LazyFS,
//! "fsyncgate"); `docs/filesystem-model.md` in the repository states them, and each rule has a test in
//! `tests/`.
//!
//! # Crash-testing your own storage code
//!
//! Write the code under test against [`FileSystem`]; run it on a [`SimFs`]; then ask for every image a
//! power cut could leave ([`SimFs::enumerate_crash_images`]) and check each one. Here a log file is
//! written and fsynced, but its directory entries are not: some images lose the file outright.
//!
//! ```
//! use vfs::{CrashModel, FileSystem, OpenOptions, SimFs, SimFsConfig};
//!
//! /// The code under test: create `db/log`, write a record, fsync the file — and, if `sync_dirs`,
//! /// the directories that name it.
//! fn save(fs: &mut dyn FileSystem, record: &[u8], sync_dirs: bool) -> vfs::Result<()> {
//!     fs.mkdir_all("db")?;
//!     let fd = fs.open("db/log", &OpenOptions::create())?;
//!     fs.write(fd, record)?;
//!     fs.fsync(fd)?;
//!     fs.close(fd)?;
//!     if sync_dirs {
//!         for dir in ["db", "."] {
//!             let d = fs.open_dir(dir)?;
//!             fs.fsync(d)?;
//!             fs.close(d)?;
//!         }
//!     }
//!     Ok(())
//! }
//!
//! /// How many of the images a power cut may leave right after `save` lost the record.
//! fn images_losing_the_record(sync_dirs: bool) -> usize {
//!     let config =
//!         SimFsConfig { seed: 1, sector_size: 512, capacity_bytes: 1 << 30, max_file_size: 1 << 40, record_ops: false };
//!     let mut fs = SimFs::new(config);
//!     save(&mut fs, b"acknowledged", sync_dirs).unwrap();
//!     let images = fs.enumerate_crash_images(CrashModel::Pessimistic);
//!     images
//!         .iter()
//!         .filter(|image| {
//!             let mut after = fs.clone();
//!             after.crash_with(&image.decisions).unwrap();
//!             after.read_file("db/log").ok().as_deref() != Some(&b"acknowledged"[..])
//!         })
//!         .count()
//! }
//!
//! assert!(images_losing_the_record(false) > 0, "an fsync of the file alone does not make its name durable");
//! assert_eq!(images_losing_the_record(true), 0);
//! ```
//!
//! A seeded random crash instead of the enumeration: [`SimFs::crash`] picks one image with the model's
//! own per-sector and per-operation choices and returns it as [`CrashDecisions`], which
//! [`SimFs::crash_with`] applies again exactly.
//!
//! ```
//! use vfs::{CrashModel, FileSystem, OpenOptions, SimFs, SimFsConfig};
//!
//! let config = SimFsConfig { seed: 42, sector_size: 512, capacity_bytes: 1 << 30, max_file_size: 1 << 40, record_ops: false };
//! let mut fs = SimFs::new(config);
//! let fd = fs.open("wal", &OpenOptions::create()).unwrap();
//! fs.write(fd, b"entry 1").unwrap();
//! fs.fsync(fd).unwrap();
//! fs.sync().unwrap(); // the name too
//! fs.write(fd, b", entry 2").unwrap(); // never synced
//! let _decisions = fs.crash(CrashModel::LoseUnsynced);
//! assert_eq!(fs.read_file("wal").unwrap(), b"entry 1");
//! ```
//!
//! Callers (the Raft storage actors) see only [`FileSystem`]; the simulator additionally drives `SimFs`'s
//! fault API (power cuts at crash points, injected errors, slow syncs, media faults).

mod error;
mod path;
mod real;
mod sim;

pub use error::{ErrorKind, FsError, Result};
pub use path::glob_match;
pub use real::RealFs;
pub use sim::{
    CrashDecisions, CrashImage, CrashModel, CrashPoint, DecisionError, EntryDecision, ErrorRule, FaultEvent,
    FileDecision, MediaFault, MediaFaultId, MediaFaultKind, MediaSector, OpRecord, Peek, PowerCut, SectorDecision,
    SectorVersion, SimFs, SimFsConfig, TreeEntry,
};

use serde::{Deserialize, Serialize};

/// A handle returned by [`FileSystem::open`] or [`FileSystem::open_dir`]. Handles are never reused, so a
/// closed handle reliably fails with [`ErrorKind::BadDescriptor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fd(pub u64);

/// How a file is opened; the same flags and the same validity rules as `std::fs::OpenOptions` on Unix
/// (an invalid combination is [`ErrorKind::InvalidInput`], as `EINVAL` from std).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOptions {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// `O_APPEND`: every write goes to the end of the file (on Linux, `pwrite` too).
    pub append: bool,
    /// `O_TRUNC`: truncate to zero length on open (requires write access).
    pub truncate: bool,
    /// `O_CREAT`: create the file if it does not exist (requires write access).
    pub create: bool,
    /// `O_CREAT | O_EXCL`: create the file, failing with `AlreadyExists` if it exists.
    pub create_new: bool,
}

impl OpenOptions {
    /// Read-only access to an existing file.
    pub fn read_only() -> OpenOptions {
        OpenOptions { read: true, write: false, append: false, truncate: false, create: false, create_new: false }
    }

    /// Read-write access to an existing file.
    pub fn read_write() -> OpenOptions {
        OpenOptions { write: true, ..OpenOptions::read_only() }
    }

    /// Read-write access, creating the file if it is missing (`O_RDWR | O_CREAT`).
    pub fn create() -> OpenOptions {
        OpenOptions { create: true, ..OpenOptions::read_write() }
    }

    /// Read-write access to a file that must not exist yet (`O_RDWR | O_CREAT | O_EXCL`).
    pub fn create_new() -> OpenOptions {
        OpenOptions { create_new: true, ..OpenOptions::read_write() }
    }

    /// Read-write, created if missing, truncated to zero (`O_RDWR | O_CREAT | O_TRUNC`).
    pub fn create_truncate() -> OpenOptions {
        OpenOptions { truncate: true, ..OpenOptions::create() }
    }

    /// Append-only access, created if missing (`O_WRONLY | O_APPEND | O_CREAT`).
    pub fn append_create() -> OpenOptions {
        OpenOptions { read: false, write: true, append: true, truncate: false, create: true, create_new: false }
    }

    /// Checks the flag combination exactly as std does on Unix; `Err` means `EINVAL`.
    pub(crate) fn validate(&self) -> std::result::Result<(), ErrorKind> {
        if !self.read && !self.write && !self.append {
            return Err(ErrorKind::InvalidInput);
        }
        let writes = self.write || self.append;
        if !writes && (self.truncate || self.create || self.create_new) {
            return Err(ErrorKind::InvalidInput);
        }
        if self.append && self.truncate && !self.create_new {
            return Err(ErrorKind::InvalidInput);
        }
        Ok(())
    }
}

/// `fallocate(2)` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FallocateMode {
    /// Mode 0: reserve space and extend the file size if the range ends past it.
    Extend,
    /// `FALLOC_FL_KEEP_SIZE`: reserve space, leave the size unchanged.
    KeepSize,
}

/// Whether a path names a regular file or a directory (the model has no symlinks or devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// What `stat(2)` tells the model. Directories report length 0 on every backend (real directory sizes
/// are filesystem-specific and nothing should depend on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// File or directory.
    pub kind: FileKind,
    /// Size in bytes (0 for directories).
    pub len: u64,
}

/// The kinds of filesystem calls, as recorded in the op log and named by crash points and error rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// `open` of an existing file, or of a directory read-only.
    Open,
    /// `open` that created the file (`O_CREAT` on a missing name, or `O_EXCL`).
    Create,
    /// `open(O_DIRECTORY)`.
    OpenDir,
    /// `close`.
    Close,
    /// `read` / `pread`.
    Read,
    /// `write` / `pwrite` / `append`.
    Write,
    /// `lseek`.
    Seek,
    /// `ftruncate` (also `O_TRUNC` at open is recorded as part of the `Open`).
    SetLen,
    /// `fallocate`.
    Fallocate,
    /// `fsync` of a regular file.
    Fsync,
    /// `fdatasync` of a regular file.
    Fdatasync,
    /// `fsync` (or `fdatasync`) of a directory handle.
    FsyncDir,
    /// `fstat`.
    Fstat,
    /// `rename`.
    Rename,
    /// `unlink`.
    Unlink,
    /// `mkdir` (each directory `mkdir -p` creates is one `Mkdir`).
    Mkdir,
    /// `rmdir`.
    Rmdir,
    /// `readdir`.
    ReadDir,
    /// `stat` / existence test.
    Stat,
    /// `sync` / `syncfs`.
    Sync,
}

impl OpKind {
    /// Every kind, in declaration order.
    pub const ALL: [OpKind; 20] = [
        OpKind::Open,
        OpKind::Create,
        OpKind::OpenDir,
        OpKind::Close,
        OpKind::Read,
        OpKind::Write,
        OpKind::Seek,
        OpKind::SetLen,
        OpKind::Fallocate,
        OpKind::Fsync,
        OpKind::Fdatasync,
        OpKind::FsyncDir,
        OpKind::Fstat,
        OpKind::Rename,
        OpKind::Unlink,
        OpKind::Mkdir,
        OpKind::Rmdir,
        OpKind::ReadDir,
        OpKind::Stat,
        OpKind::Sync,
    ];

    /// True if the call can change what is on disk or what would survive a crash. Crash-point sweeps
    /// only need to cut power at the boundaries of these.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            OpKind::Create
                | OpKind::Open // O_TRUNC
                | OpKind::Write
                | OpKind::SetLen
                | OpKind::Fallocate
                | OpKind::Fsync
                | OpKind::Fdatasync
                | OpKind::FsyncDir
                | OpKind::Rename
                | OpKind::Unlink
                | OpKind::Mkdir
                | OpKind::Rmdir
                | OpKind::Sync
        )
    }

    /// The kind named `name` (as [`OpKind::name`] spells it).
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The snake_case name used in op logs, traces and seed files.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Open => "open",
            OpKind::Create => "create",
            OpKind::OpenDir => "open_dir",
            OpKind::Close => "close",
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Seek => "seek",
            OpKind::SetLen => "set_len",
            OpKind::Fallocate => "fallocate",
            OpKind::Fsync => "fsync",
            OpKind::Fdatasync => "fdatasync",
            OpKind::FsyncDir => "fsync_dir",
            OpKind::Fstat => "fstat",
            OpKind::Rename => "rename",
            OpKind::Unlink => "unlink",
            OpKind::Mkdir => "mkdir",
            OpKind::Rmdir => "rmdir",
            OpKind::ReadDir => "read_dir",
            OpKind::Stat => "stat",
            OpKind::Sync => "sync",
        }
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The filesystem calls the Ra model needs, shaped like POSIX.
///
/// Paths are `/`-separated and relative to the filesystem's root (a leading `/` is allowed and means the
/// root). `.` and `..` are resolved by walking, as the kernel does, but `..` may never climb above the
/// root ([`ErrorKind::EscapesRoot`]). Calls that name a directory entry (create, unlink, rename, mkdir,
/// rmdir) need a final component that is a plain name; the root itself is [`ErrorKind::Busy`].
///
/// Nothing here says *when* data becomes durable: that is the caller's job (`fsync`, `fdatasync`, `fsync`
/// of a directory handle, `sync`), exactly as on Linux.
pub trait FileSystem {
    /// `open(2)` with the given flags.
    fn open(&mut self, path: &str, options: &OpenOptions) -> Result<Fd>;
    /// `open(path, O_RDONLY | O_DIRECTORY)`: a handle whose `fsync` makes the directory's entries durable.
    fn open_dir(&mut self, path: &str) -> Result<Fd>;
    /// `close(2)`.
    fn close(&mut self, fd: Fd) -> Result<()>;
    /// `read(2)` at the handle's cursor; returns the bytes read (0 at end of file).
    fn read(&mut self, fd: Fd, buf: &mut [u8]) -> Result<usize>;
    /// `pread(2)`: read at `offset` without moving the cursor.
    fn pread(&mut self, fd: Fd, offset: u64, buf: &mut [u8]) -> Result<usize>;
    /// `write(2)` at the cursor (at the end with `append`); returns the bytes written.
    fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize>;
    /// `pwrite(2)` at `offset` (Linux: at the end if the handle has `append`).
    fn pwrite(&mut self, fd: Fd, offset: u64, data: &[u8]) -> Result<usize>;
    /// Writes `data` at the current end of the file, whatever the cursor; returns the offset written at.
    fn append(&mut self, fd: Fd, data: &[u8]) -> Result<u64>;
    /// `lseek(fd, offset, SEEK_SET)`.
    fn seek(&mut self, fd: Fd, offset: u64) -> Result<()>;
    /// `ftruncate(2)`: shrink (dropping data) or extend (a hole reading as zeros).
    fn set_len(&mut self, fd: Fd, len: u64) -> Result<()>;
    /// `fallocate(2)`.
    fn fallocate(&mut self, fd: Fd, mode: FallocateMode, offset: u64, len: u64) -> Result<()>;
    /// `fsync(2)` of a file (its data and size) or of a directory handle (its entries).
    fn fsync(&mut self, fd: Fd) -> Result<()>;
    /// `fdatasync(2)`: data and, when it changed, the size.
    fn fdatasync(&mut self, fd: Fd) -> Result<()>;
    /// `fstat(2)`.
    fn fstat(&mut self, fd: Fd) -> Result<Metadata>;
    /// `rename(2)`: atomic, replaces an existing target of the same kind.
    fn rename(&mut self, from: &str, to: &str) -> Result<()>;
    /// `unlink(2)` of a file; open handles keep working until closed.
    fn unlink(&mut self, path: &str) -> Result<()>;
    /// `mkdir(2)`.
    fn mkdir(&mut self, path: &str) -> Result<()>;
    /// `mkdir -p`: every missing directory along the path; an existing directory is fine.
    fn mkdir_all(&mut self, path: &str) -> Result<()>;
    /// `rmdir(2)` of an empty directory.
    fn rmdir(&mut self, path: &str) -> Result<()>;
    /// The names in a directory, sorted bytewise, without `.` and `..`.
    fn read_dir(&mut self, path: &str) -> Result<Vec<String>>;
    /// `stat(2)`.
    fn metadata(&mut self, path: &str) -> Result<Metadata>;
    /// Whether the path exists (a `stat`): `Ok(false)` for `NotFound`, other errors are returned.
    fn exists(&mut self, path: &str) -> Result<bool> {
        match self.metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    /// `sync(2)` / `syncfs(2)`: everything pending becomes durable.
    fn sync(&mut self) -> Result<()>;

    /// Reads a whole file (open, fstat, pread, close); a directory is `IsADirectory`, as `read(2)` says.
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>> {
        let fd = self.open(path, &OpenOptions::read_only())?;
        let result = (|| {
            let meta = self.fstat(fd)?;
            if meta.kind == FileKind::Dir {
                return Err(FsError::new(ErrorKind::IsADirectory, OpKind::Read, path));
            }
            let len = meta.len;
            let len = usize::try_from(len).map_err(|_| FsError::new(ErrorKind::FileTooLarge, OpKind::Read, path))?;
            let mut buf = vec![0; len];
            let mut done = 0;
            while done < len {
                let n = self.pread(fd, done as u64, &mut buf[done..])?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            buf.truncate(done);
            Ok(buf)
        })();
        let closed = self.close(fd);
        let data = result?;
        closed?;
        Ok(data)
    }
}
