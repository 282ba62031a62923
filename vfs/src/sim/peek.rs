//! `Peek`: a read-only look at a [`SimFs`] through the [`FileSystem`] trait, for a checker that must read
//! a file while a run goes on (a segment's index, say) with the code that reads it for real.
//!
//! A call through it is not one of the filesystem's: it takes no sequence number, is not recorded, meets
//! no crash point or injected error, and opens no handle of the filesystem's (its handles are its own,
//! gone with it). So a run that peeks is exactly the run that does not: the same calls, numbered the same,
//! the same faults. It reads the cached view — what the running processes' reads see — with a media
//! fault's overlay applied, as their reads get it. A call that would change the tree, a file or what is
//! durable fails with `EROFS`, and changes nothing.

use std::collections::BTreeMap;

use super::node::Node;
use super::{Ino, SimFs};
use crate::path;
use crate::{ErrorKind, FallocateMode, Fd, FileSystem, FsError, Metadata, OpKind, OpenOptions, Result};

/// What a call that would write gets.
const READ_ONLY: ErrorKind = ErrorKind::ReadOnly;

/// A read-only look at a [`SimFs`] ([`SimFs::peek`]).
pub struct Peek<'a> {
    fs: &'a SimFs,
    handles: BTreeMap<u64, PeekHandle>,
    next_handle: u64,
}

struct PeekHandle {
    ino: Ino,
    is_dir: bool,
    cursor: u64,
    path: String,
}

impl SimFs {
    /// A read-only look at the filesystem as it is now, through the [`FileSystem`] trait: nothing done
    /// through it is a call of the filesystem's (see [`Peek`]).
    pub fn peek(&self) -> Peek<'_> {
        Peek { fs: self, handles: BTreeMap::new(), next_handle: 3 }
    }
}

impl Peek<'_> {
    fn resolve(&self, op: OpKind, path: &str) -> Result<Ino> {
        let parsed = path::parse(path).map_err(|kind| FsError::new(kind, op, path))?;
        self.fs.resolve(&parsed).map_err(|kind| FsError::new(kind, op, path))
    }

    fn handle(&mut self, op: OpKind, fd: Fd) -> Result<&mut PeekHandle> {
        self.handles.get_mut(&fd.0).ok_or_else(|| FsError::new(ErrorKind::BadDescriptor, op, ""))
    }

    fn add_handle(&mut self, ino: Ino, path: &str) -> Fd {
        let fd = self.next_handle;
        self.next_handle += 1;
        let is_dir = self.fs.is_dir(ino);
        self.handles.insert(fd, PeekHandle { ino, is_dir, cursor: 0, path: path.to_string() });
        Fd(fd)
    }

    fn read_handle(&mut self, op: OpKind, fd: Fd, offset: Option<u64>, buf: &mut [u8]) -> Result<usize> {
        let fs = self.fs;
        let handle = self.handle(op, fd)?;
        let at = offset.unwrap_or(handle.cursor);
        let error = |kind| FsError::new(kind, op, &handle.path);
        if at.checked_add(buf.len() as u64).is_none_or(|end| end > i64::MAX as u64) {
            return Err(error(ErrorKind::InvalidInput));
        }
        if handle.is_dir {
            return Err(error(ErrorKind::IsADirectory));
        }
        let n = fs.read_at(handle.ino, at, buf).map_err(error)?;
        if offset.is_none() {
            handle.cursor = at + n as u64;
        }
        Ok(n)
    }
}

impl FileSystem for Peek<'_> {
    fn open(&mut self, path: &str, options: &OpenOptions) -> Result<Fd> {
        if options.write || options.append || options.create || options.create_new || options.truncate {
            return Err(FsError::new(READ_ONLY, OpKind::Open, path));
        }
        let ino = self.resolve(OpKind::Open, path)?;
        Ok(self.add_handle(ino, path))
    }

    fn open_dir(&mut self, path: &str) -> Result<Fd> {
        let ino = self.resolve(OpKind::OpenDir, path)?;
        if !self.fs.is_dir(ino) {
            return Err(FsError::new(ErrorKind::NotADirectory, OpKind::OpenDir, path));
        }
        Ok(self.add_handle(ino, path))
    }

    fn close(&mut self, fd: Fd) -> Result<()> {
        self.handles.remove(&fd.0).map(drop).ok_or_else(|| FsError::new(ErrorKind::BadDescriptor, OpKind::Close, ""))
    }

    fn read(&mut self, fd: Fd, buf: &mut [u8]) -> Result<usize> {
        self.read_handle(OpKind::Read, fd, None, buf)
    }

    fn pread(&mut self, fd: Fd, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.read_handle(OpKind::Read, fd, Some(offset), buf)
    }

    fn write(&mut self, fd: Fd, _data: &[u8]) -> Result<usize> {
        Err(FsError::new(READ_ONLY, OpKind::Write, &self.handle(OpKind::Write, fd)?.path))
    }

    fn pwrite(&mut self, fd: Fd, _offset: u64, _data: &[u8]) -> Result<usize> {
        Err(FsError::new(READ_ONLY, OpKind::Write, &self.handle(OpKind::Write, fd)?.path))
    }

    fn append(&mut self, fd: Fd, _data: &[u8]) -> Result<u64> {
        Err(FsError::new(READ_ONLY, OpKind::Write, &self.handle(OpKind::Write, fd)?.path))
    }

    fn seek(&mut self, fd: Fd, offset: u64) -> Result<()> {
        self.handle(OpKind::Seek, fd)?.cursor = offset;
        Ok(())
    }

    fn set_len(&mut self, fd: Fd, _len: u64) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::SetLen, &self.handle(OpKind::SetLen, fd)?.path))
    }

    fn fallocate(&mut self, fd: Fd, _mode: FallocateMode, _offset: u64, _len: u64) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::Fallocate, &self.handle(OpKind::Fallocate, fd)?.path))
    }

    fn fsync(&mut self, fd: Fd) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::Fsync, &self.handle(OpKind::Fsync, fd)?.path))
    }

    fn fdatasync(&mut self, fd: Fd) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::Fdatasync, &self.handle(OpKind::Fdatasync, fd)?.path))
    }

    fn fstat(&mut self, fd: Fd) -> Result<Metadata> {
        let ino = self.handle(OpKind::Fstat, fd)?.ino;
        Ok(self.fs.metadata_of(ino))
    }

    fn rename(&mut self, from: &str, _to: &str) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::Rename, from))
    }

    fn unlink(&mut self, path: &str) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::Unlink, path))
    }

    fn mkdir(&mut self, path: &str) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::Mkdir, path))
    }

    fn mkdir_all(&mut self, path: &str) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::Mkdir, path))
    }

    fn rmdir(&mut self, path: &str) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::Rmdir, path))
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<String>> {
        let ino = self.resolve(OpKind::ReadDir, path)?;
        match &self.fs.inode(ino).node {
            Node::Dir(d) => Ok(d.cached.keys().cloned().collect()),
            Node::File(_) => Err(FsError::new(ErrorKind::NotADirectory, OpKind::ReadDir, path)),
        }
    }

    fn metadata(&mut self, path: &str) -> Result<Metadata> {
        let ino = self.resolve(OpKind::Stat, path)?;
        Ok(self.fs.metadata_of(ino))
    }

    fn sync(&mut self) -> Result<()> {
        Err(FsError::new(READ_ONLY, OpKind::Sync, ""))
    }
}
