//! `RealFs`: the [`FileSystem`] trait over `std::fs`, rooted at a host directory.
//!
//! It exists for production use of the same storage code and, above all, for the differential test that
//! keeps `SimFs` honest: the same call sequence must give the same contents, listings and error kinds on
//! both. Paths are validated by the shared lexical rules before any host call, so `..` can never leave
//! the root; the walk itself is the kernel's. This is the only module of the simulated crates allowed to
//! touch the host filesystem (enforced by `clippy.toml` and `cargo xtask tidy`).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use crate::path::{self, ParsedPath};
use crate::{ErrorKind, FallocateMode, Fd, FileKind, FileSystem, FsError, Metadata, OpKind, OpenOptions, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;

struct Handle {
    file: File,
    path: String,
}

/// The host filesystem under one root directory.
pub struct RealFs {
    root: PathBuf,
    handles: BTreeMap<u64, Handle>,
    next_fd: u64,
}

fn kind_of(error: &std::io::Error) -> ErrorKind {
    if let Some(code) = error.raw_os_error() {
        return ErrorKind::from_errno(code).unwrap_or(ErrorKind::Other(code));
    }
    match error.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        std::io::ErrorKind::InvalidInput => ErrorKind::InvalidInput,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Io,
    }
}

impl RealFs {
    /// A filesystem rooted at `root`, which must be an existing directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<RealFs> {
        let root = root.into();
        let display = root.display().to_string();
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(RealFs { root, handles: BTreeMap::new(), next_fd: 3 }),
            Ok(_) => Err(FsError::new(ErrorKind::NotADirectory, OpKind::Stat, &display)),
            Err(e) => Err(FsError::new(kind_of(&e), OpKind::Stat, &display)),
        }
    }

    /// The host directory this filesystem is rooted at.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    fn host_path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn checked<'p>(&self, op: OpKind, path: &'p str) -> Result<ParsedPath<'p>> {
        path::parse(path).map_err(|k| FsError::new(k, op, path))
    }

    /// Validates a path naming a directory entry. The bare root (`/`) is answered here, with Linux's
    /// error for the call, because the host's "root" is our root directory, which must never be removed
    /// or renamed; everything else (`a/..`, `a/.`) goes to the kernel.
    fn checked_entry(&self, op: OpKind, path: &str, root_error: ErrorKind) -> Result<PathBuf> {
        let parsed = self.checked(op, path)?;
        if parsed.is_bare_root() {
            return Err(FsError::new(root_error, op, path));
        }
        Ok(self.host_path(path))
    }

    fn handle(&mut self, fd: Fd, op: OpKind) -> Result<&mut Handle> {
        self.handles.get_mut(&fd.0).ok_or_else(|| FsError::new(ErrorKind::BadDescriptor, op, ""))
    }

    fn add(&mut self, file: File, path: &str) -> Fd {
        let fd = self.next_fd;
        self.next_fd += 1;
        self.handles.insert(fd, Handle { file, path: path.to_string() });
        Fd(fd)
    }
}

fn io_err(op: OpKind, path: &str) -> impl Fn(std::io::Error) -> FsError + '_ {
    move |e| FsError::new(kind_of(&e), op, path)
}

fn offset_ok(offset: u64, op: OpKind, path: &str) -> Result<()> {
    if offset > i64::MAX as u64 {
        return Err(FsError::new(ErrorKind::InvalidInput, op, path));
    }
    Ok(())
}

impl FileSystem for RealFs {
    fn open(&mut self, path: &str, options: &OpenOptions) -> Result<Fd> {
        self.checked(OpKind::Open, path)?;
        let file = std::fs::OpenOptions::new()
            .read(options.read)
            .write(options.write)
            .append(options.append)
            .truncate(options.truncate)
            .create(options.create)
            .create_new(options.create_new)
            .open(self.host_path(path))
            .map_err(io_err(OpKind::Open, path))?;
        Ok(self.add(file, path))
    }

    fn open_dir(&mut self, path: &str) -> Result<Fd> {
        self.checked(OpKind::OpenDir, path)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::DIRECTORY.bits() as i32)
            .open(self.host_path(path))
            .map_err(io_err(OpKind::OpenDir, path))?;
        Ok(self.add(file, path))
    }

    fn close(&mut self, fd: Fd) -> Result<()> {
        self.handles.remove(&fd.0).map(drop).ok_or_else(|| FsError::new(ErrorKind::BadDescriptor, OpKind::Close, ""))
    }

    fn read(&mut self, fd: Fd, buf: &mut [u8]) -> Result<usize> {
        let h = self.handle(fd, OpKind::Read)?;
        h.file.read(buf).map_err(io_err(OpKind::Read, &h.path))
    }

    fn pread(&mut self, fd: Fd, offset: u64, buf: &mut [u8]) -> Result<usize> {
        // Linux checks a negative position before the descriptor.
        offset_ok(offset, OpKind::Read, "")?;
        let h = self.handle(fd, OpKind::Read)?;
        // At least one call even for an empty buffer, so errors (EISDIR, EBADF) surface as on Linux.
        let mut done = 0;
        loop {
            match h.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => return Err(io_err(OpKind::Read, &h.path)(e)),
            }
            if done == buf.len() {
                break;
            }
        }
        Ok(done)
    }

    fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize> {
        let h = self.handle(fd, OpKind::Write)?;
        h.file.write(data).map_err(io_err(OpKind::Write, &h.path))
    }

    fn pwrite(&mut self, fd: Fd, offset: u64, data: &[u8]) -> Result<usize> {
        offset_ok(offset, OpKind::Write, "")?;
        let h = self.handle(fd, OpKind::Write)?;
        h.file.write_at(data, offset).map_err(io_err(OpKind::Write, &h.path))
    }

    fn append(&mut self, fd: Fd, data: &[u8]) -> Result<u64> {
        let h = self.handle(fd, OpKind::Write)?;
        let end = h.file.metadata().map_err(io_err(OpKind::Write, &h.path))?.len();
        // One call even for empty data, so a read-only handle fails as on Linux.
        let n = h.file.write_at(data, end).map_err(io_err(OpKind::Write, &h.path))?;
        h.file.write_all_at(&data[n..], end + n as u64).map_err(io_err(OpKind::Write, &h.path))?;
        Ok(end)
    }

    fn seek(&mut self, fd: Fd, offset: u64) -> Result<()> {
        let h = self.handle(fd, OpKind::Seek)?;
        offset_ok(offset, OpKind::Seek, &h.path)?;
        h.file.seek(SeekFrom::Start(offset)).map(drop).map_err(io_err(OpKind::Seek, &h.path))
    }

    fn set_len(&mut self, fd: Fd, len: u64) -> Result<()> {
        offset_ok(len, OpKind::SetLen, "")?;
        let h = self.handle(fd, OpKind::SetLen)?;
        h.file.set_len(len).map_err(io_err(OpKind::SetLen, &h.path))
    }

    fn fallocate(&mut self, fd: Fd, mode: FallocateMode, offset: u64, len: u64) -> Result<()> {
        let h = self.handle(fd, OpKind::Fallocate)?;
        if len == 0 || offset > i64::MAX as u64 || len > i64::MAX as u64 {
            return Err(FsError::new(ErrorKind::InvalidInput, OpKind::Fallocate, &h.path));
        }
        let flags = match mode {
            FallocateMode::Extend => rustix::fs::FallocateFlags::empty(),
            FallocateMode::KeepSize => rustix::fs::FallocateFlags::KEEP_SIZE,
        };
        rustix::fs::fallocate(&h.file, flags, offset, len).map_err(|e| {
            FsError::new(
                ErrorKind::from_errno(e.raw_os_error()).unwrap_or(ErrorKind::Other(e.raw_os_error())),
                OpKind::Fallocate,
                &h.path,
            )
        })
    }

    fn fsync(&mut self, fd: Fd) -> Result<()> {
        let h = self.handle(fd, OpKind::Fsync)?;
        h.file.sync_all().map_err(io_err(OpKind::Fsync, &h.path))
    }

    fn fdatasync(&mut self, fd: Fd) -> Result<()> {
        let h = self.handle(fd, OpKind::Fdatasync)?;
        h.file.sync_data().map_err(io_err(OpKind::Fdatasync, &h.path))
    }

    fn fstat(&mut self, fd: Fd) -> Result<Metadata> {
        let h = self.handle(fd, OpKind::Fstat)?;
        let m = h.file.metadata().map_err(io_err(OpKind::Fstat, &h.path))?;
        Ok(to_metadata(&m))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let source = self.checked_entry(OpKind::Rename, from, ErrorKind::Busy)?;
        let target = self.checked_entry(OpKind::Rename, to, ErrorKind::Busy)?;
        std::fs::rename(source, target).map_err(io_err(OpKind::Rename, from))
    }

    fn unlink(&mut self, path: &str) -> Result<()> {
        let host = self.checked_entry(OpKind::Unlink, path, ErrorKind::IsADirectory)?;
        std::fs::remove_file(host).map_err(io_err(OpKind::Unlink, path))
    }

    fn mkdir(&mut self, path: &str) -> Result<()> {
        let host = self.checked_entry(OpKind::Mkdir, path, ErrorKind::AlreadyExists)?;
        std::fs::create_dir(host).map_err(io_err(OpKind::Mkdir, path))
    }

    fn mkdir_all(&mut self, path: &str) -> Result<()> {
        self.checked(OpKind::Mkdir, path)?;
        std::fs::create_dir_all(self.host_path(path)).map_err(io_err(OpKind::Mkdir, path))
    }

    fn rmdir(&mut self, path: &str) -> Result<()> {
        let host = self.checked_entry(OpKind::Rmdir, path, ErrorKind::Busy)?;
        std::fs::remove_dir(host).map_err(io_err(OpKind::Rmdir, path))
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<String>> {
        self.checked(OpKind::ReadDir, path)?;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.host_path(path)).map_err(io_err(OpKind::ReadDir, path))? {
            let entry = entry.map_err(io_err(OpKind::ReadDir, path))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn metadata(&mut self, path: &str) -> Result<Metadata> {
        self.checked(OpKind::Stat, path)?;
        let m = std::fs::metadata(self.host_path(path)).map_err(io_err(OpKind::Stat, path))?;
        Ok(to_metadata(&m))
    }

    fn sync(&mut self) -> Result<()> {
        let root = File::open(&self.root).map_err(io_err(OpKind::Sync, ""))?;
        rustix::fs::syncfs(&root).map_err(|e| {
            FsError::new(
                ErrorKind::from_errno(e.raw_os_error()).unwrap_or(ErrorKind::Other(e.raw_os_error())),
                OpKind::Sync,
                "",
            )
        })
    }
}

fn to_metadata(m: &std::fs::Metadata) -> Metadata {
    if m.is_dir() { Metadata { kind: FileKind::Dir, len: 0 } } else { Metadata { kind: FileKind::File, len: m.len() } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_typed_kinds() {
        assert_eq!(kind_of(&std::io::Error::from_raw_os_error(2)), ErrorKind::NotFound);
        assert_eq!(kind_of(&std::io::Error::from_raw_os_error(39)), ErrorKind::DirectoryNotEmpty);
        assert_eq!(kind_of(&std::io::Error::from_raw_os_error(13)), ErrorKind::PermissionDenied);
        assert_eq!(kind_of(&std::io::Error::from_raw_os_error(95)), ErrorKind::Other(95));
        assert_eq!(kind_of(&std::io::Error::new(std::io::ErrorKind::InvalidInput, "nul")), ErrorKind::InvalidInput);
    }
}
