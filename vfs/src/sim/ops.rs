//! The [`FileSystem`] calls of `SimFs`: each validates like Linux, changes the cached view and records
//! what must become durable (a pending data or entry operation). Error precedence follows the kernel's
//! (handle, then offsets, then access mode; parent walk, then `.`/`..`/root, then the entry), which the
//! differential test against `RealFs` checks.

use super::*;

/// Linux's `rw_verify_area`: a transfer whose end would pass `i64::MAX` is `EINVAL`.
fn verify_area(pos: u64, count: usize) -> std::result::Result<(), ErrorKind> {
    match pos.checked_add(count as u64) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(ErrorKind::InvalidInput),
    }
}

/// `std::path::Path::parent` of a relative path: drop `.` components and the last component.
fn lexical_parent(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    parts.pop();
    parts.join("/")
}

fn parsed(path: &str) -> std::result::Result<ParsedPath<'_>, ErrorKind> {
    path::parse(path)
}

impl FileSystem for SimFs {
    fn open(&mut self, path: &str, options: &OpenOptions) -> Result<Fd> {
        // An open that will create the file is recorded as a `Create`.
        let creates = options.validate().is_ok()
            && (options.create || options.create_new)
            && path::parse(path)
                .ok()
                .and_then(|p| self.resolve_entry(&p).ok())
                .is_some_and(|(_, last, existing)| matches!(last, Last::Name(_)) && existing.is_none());
        let kind = if creates { OpKind::Create } else { OpKind::Open };
        let options = *options;
        self.run(kind, path, None, (None, None), move |fs, seq, _| {
            options.validate()?;
            let p = parsed(path)?;
            let creating = options.create || options.create_new;
            let (stack, last, existing) = fs.resolve_entry(&p)?;
            let Last::Name(name) = last else {
                // The root, or a final `.`/`..`: only an existing directory can be named so.
                if creating {
                    return Err(ErrorKind::IsADirectory);
                }
                let ino = fs.resolve(&p)?;
                if options.write || options.append {
                    return Err(ErrorKind::IsADirectory);
                }
                return Ok(fs.open_handle(ino, path, true, &options));
            };
            if creating && p.trailing_slash {
                return Err(ErrorKind::IsADirectory);
            }
            let parent = *stack.last().expect("non-empty");
            match existing {
                Some(ino) => {
                    if options.create_new {
                        return Err(ErrorKind::AlreadyExists);
                    }
                    if fs.is_dir(ino) {
                        if options.write || options.append {
                            return Err(ErrorKind::IsADirectory);
                        }
                        return Ok(fs.open_handle(ino, path, true, &options));
                    }
                    if p.trailing_slash {
                        return Err(ErrorKind::NotADirectory);
                    }
                    if options.truncate {
                        fs.do_set_len(ino, seq, 0);
                    }
                    Ok(fs.open_handle(ino, path, false, &options))
                }
                None => {
                    if !creating {
                        return Err(ErrorKind::NotFound);
                    }
                    let ino = fs.alloc_inode(Node::File(FileNode::new()));
                    fs.dir_mut(parent).cached.insert(name.to_string(), ino);
                    fs.add_entry_op(EntryOpKind::Link { dir: parent, name: name.to_string(), ino }, seq);
                    Ok(fs.open_handle(ino, path, false, &options))
                }
            }
        })
    }

    fn open_dir(&mut self, path: &str) -> Result<Fd> {
        self.run(OpKind::OpenDir, path, None, (None, None), |fs, _, _| {
            let p = parsed(path)?;
            let ino = fs.resolve(&p)?;
            if !fs.is_dir(ino) {
                return Err(ErrorKind::NotADirectory);
            }
            Ok(fs.open_handle(ino, path, true, &OpenOptions::read_only()))
        })
    }

    fn close(&mut self, fd: Fd) -> Result<()> {
        self.run_fd(OpKind::Close, fd, (None, None), |fs, _, injected| {
            let handle = fs.fds.remove(&fd.0).ok_or(ErrorKind::BadDescriptor)?;
            let inode = fs.inode_mut(handle.ino);
            inode.open_fds -= 1;
            if inode.open_fds == 0 {
                fs.garbage_hint += 1;
            }
            // Linux releases the descriptor even when close reports an error.
            injected.map_or(Ok(()), Err)
        })
    }

    fn read(&mut self, fd: Fd, buf: &mut [u8]) -> Result<usize> {
        let cursor = self.fds.get(&fd.0).map(|f| f.cursor);
        self.run_fd(OpKind::Read, fd, (cursor, Some(buf.len() as u64)), |fs, _, _| {
            let handle = fs.fd_entry(fd)?;
            if !handle.read {
                return Err(ErrorKind::BadDescriptor);
            }
            verify_area(handle.cursor, buf.len())?;
            if handle.is_dir {
                return Err(ErrorKind::IsADirectory);
            }
            let (ino, cursor) = (handle.ino, handle.cursor);
            let n = fs.read_at(ino, cursor, buf)?;
            fs.fds.get_mut(&fd.0).expect("checked").cursor = cursor + n as u64;
            Ok(n)
        })
    }

    fn pread(&mut self, fd: Fd, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.run_fd(OpKind::Read, fd, (Some(offset), Some(buf.len() as u64)), |fs, _, _| {
            // Linux: a negative position fails before the descriptor is looked up.
            if offset > i64::MAX as u64 {
                return Err(ErrorKind::InvalidInput);
            }
            let handle = fs.fd_entry(fd)?;
            if !handle.read {
                return Err(ErrorKind::BadDescriptor);
            }
            verify_area(offset, buf.len())?;
            if handle.is_dir {
                return Err(ErrorKind::IsADirectory);
            }
            let ino = handle.ino;
            fs.read_at(ino, offset, buf)
        })
    }

    fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize> {
        let cursor = self.fds.get(&fd.0).map(|f| f.cursor);
        self.run_fd(OpKind::Write, fd, (cursor, Some(data.len() as u64)), |fs, seq, _| {
            let handle = fs.fd_entry(fd)?;
            if !handle.write {
                return Err(ErrorKind::BadDescriptor);
            }
            verify_area(handle.cursor, data.len())?;
            let ino = handle.ino;
            let offset = if handle.append { fs.file(ino).cached.len } else { handle.cursor };
            let n = fs.do_write(ino, seq, offset, data)?;
            fs.fds.get_mut(&fd.0).expect("checked").cursor = offset + n as u64;
            Ok(n)
        })
    }

    fn pwrite(&mut self, fd: Fd, offset: u64, data: &[u8]) -> Result<usize> {
        self.run_fd(OpKind::Write, fd, (Some(offset), Some(data.len() as u64)), |fs, seq, _| {
            if offset > i64::MAX as u64 {
                return Err(ErrorKind::InvalidInput);
            }
            let handle = fs.fd_entry(fd)?;
            if !handle.write {
                return Err(ErrorKind::BadDescriptor);
            }
            verify_area(offset, data.len())?;
            let ino = handle.ino;
            // Linux: pwrite on an O_APPEND handle appends, whatever the offset.
            let offset = if handle.append { fs.file(ino).cached.len } else { offset };
            fs.do_write(ino, seq, offset, data)
        })
    }

    fn append(&mut self, fd: Fd, data: &[u8]) -> Result<u64> {
        let end = self.fds.get(&fd.0).filter(|f| !f.is_dir).map(|f| self.file(f.ino).cached.len);
        self.run_fd(OpKind::Write, fd, (end, Some(data.len() as u64)), |fs, seq, _| {
            let handle = fs.fd_entry(fd)?;
            if !handle.write {
                return Err(ErrorKind::BadDescriptor);
            }
            let ino = handle.ino;
            let offset = fs.file(ino).cached.len;
            fs.do_write(ino, seq, offset, data)?;
            Ok(offset)
        })
    }

    fn seek(&mut self, fd: Fd, offset: u64) -> Result<()> {
        self.run_fd(OpKind::Seek, fd, (Some(offset), None), |fs, _, _| {
            fs.fd_entry(fd)?;
            if offset > i64::MAX as u64 {
                return Err(ErrorKind::InvalidInput);
            }
            fs.fds.get_mut(&fd.0).expect("checked").cursor = offset;
            Ok(())
        })
    }

    fn set_len(&mut self, fd: Fd, len: u64) -> Result<()> {
        self.run_fd(OpKind::SetLen, fd, (None, Some(len)), |fs, seq, _| {
            // Linux: a negative length fails before the descriptor is looked up.
            if len > i64::MAX as u64 {
                return Err(ErrorKind::InvalidInput);
            }
            let handle = fs.fd_entry(fd)?;
            if !handle.write || handle.is_dir {
                return Err(ErrorKind::InvalidInput);
            }
            if len > fs.config.max_file_size {
                return Err(ErrorKind::FileTooLarge);
            }
            let ino = handle.ino;
            fs.do_set_len(ino, seq, len);
            Ok(())
        })
    }

    fn fallocate(&mut self, fd: Fd, mode: FallocateMode, offset: u64, len: u64) -> Result<()> {
        self.run_fd(OpKind::Fallocate, fd, (Some(offset), Some(len)), |fs, seq, _| {
            let handle = fs.fd_entry(fd)?;
            if len == 0 || offset > i64::MAX as u64 || len > i64::MAX as u64 {
                return Err(ErrorKind::InvalidInput);
            }
            if !handle.write {
                return Err(ErrorKind::BadDescriptor);
            }
            let ino = handle.ino;
            let end = offset.checked_add(len).ok_or(ErrorKind::FileTooLarge)?;
            if end > fs.config.max_file_size || end > i64::MAX as u64 {
                return Err(ErrorKind::FileTooLarge);
            }
            let file = fs.file(ino);
            let before = file.usage_pages();
            let (first, last) = (offset / PAGE, (end - 1) / PAGE);
            let gaps = file.reserved.uncovered(first, last);
            let growth: u64 =
                gaps.iter().map(|(lo, hi)| hi - lo + 1 - file.cached.pages.range(*lo, *hi).count() as u64).sum();
            if growth > 0 && !fs.room_for(growth) {
                return Err(ErrorKind::NoSpace);
            }
            let file = fs.file_mut(ino);
            file.reserved.insert(first, last);
            file.reserved_unbacked += growth;
            let after = file.usage_pages();
            fs.set_usage(before, after);
            if mode == FallocateMode::Extend && end > fs.file(ino).cached.len {
                fs.do_set_len(ino, seq, end);
            }
            Ok(())
        })
    }

    fn fsync(&mut self, fd: Fd) -> Result<()> {
        self.sync_handle(fd, OpKind::Fsync)
    }

    fn fdatasync(&mut self, fd: Fd) -> Result<()> {
        self.sync_handle(fd, OpKind::Fdatasync)
    }

    fn fstat(&mut self, fd: Fd) -> Result<Metadata> {
        self.run_fd(OpKind::Fstat, fd, (None, None), |fs, _, _| {
            let ino = fs.fd_entry(fd)?.ino;
            Ok(fs.metadata_of(ino))
        })
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.run(OpKind::Rename, from, Some(to), (None, None), |fs, seq, _| {
            let old = parsed(from)?;
            let new = parsed(to)?;
            // Linux order: both parents, then `.`/`..`/root, then the source entry.
            let (old_stack, old_last, source) = fs.resolve_entry(&old)?;
            let (new_stack, new_last, target) = fs.resolve_entry(&new)?;
            let (Last::Name(old_name), Last::Name(new_name)) = (old_last, new_last) else {
                return Err(ErrorKind::Busy);
            };
            let old_dir = *old_stack.last().expect("non-empty");
            let new_dir = *new_stack.last().expect("non-empty");
            let ino = source.ok_or(ErrorKind::NotFound)?;
            let source_is_dir = fs.is_dir(ino);
            if !source_is_dir && (old.trailing_slash || new.trailing_slash) {
                return Err(ErrorKind::NotADirectory);
            }
            // The source may not be an ancestor of the target…
            if new_stack.contains(&ino) {
                return Err(ErrorKind::InvalidInput);
            }
            // …nor the target an ancestor of the source.
            if let Some(t) = target
                && old_stack.contains(&t)
            {
                return Err(ErrorKind::DirectoryNotEmpty);
            }
            if target == Some(ino) {
                return Ok(());
            }
            if let Some(t) = target {
                match (source_is_dir, fs.is_dir(t)) {
                    (true, false) => return Err(ErrorKind::NotADirectory),
                    (false, true) => return Err(ErrorKind::IsADirectory),
                    (true, true) if !fs.dir(t).cached.is_empty() => return Err(ErrorKind::DirectoryNotEmpty),
                    _ => {}
                }
            }
            fs.dir_mut(old_dir).cached.remove(old_name);
            fs.dir_mut(new_dir).cached.insert(new_name.to_string(), ino);
            fs.add_entry_op(
                EntryOpKind::Rename {
                    from_dir: old_dir,
                    from_name: old_name.to_string(),
                    to_dir: new_dir,
                    to_name: new_name.to_string(),
                    ino,
                    replaced: target,
                },
                seq,
            );
            if target.is_some() {
                fs.garbage_hint += 1;
            }
            fs.rename_handle_paths(&path::normalize(from), &path::normalize(to));
            Ok(())
        })
    }

    fn unlink(&mut self, path: &str) -> Result<()> {
        self.run(OpKind::Unlink, path, None, (None, None), |fs, seq, _| {
            let p = parsed(path)?;
            let (stack, last, existing) = fs.resolve_entry(&p)?;
            let Last::Name(name) = last else {
                return Err(ErrorKind::IsADirectory);
            };
            let ino = existing.ok_or(ErrorKind::NotFound)?;
            if fs.is_dir(ino) {
                return Err(ErrorKind::IsADirectory);
            }
            if p.trailing_slash {
                return Err(ErrorKind::NotADirectory);
            }
            let dir = *stack.last().expect("non-empty");
            fs.dir_mut(dir).cached.remove(name);
            fs.add_entry_op(EntryOpKind::Unlink { dir, name: name.to_string(), ino }, seq);
            fs.garbage_hint += 1;
            Ok(())
        })
    }

    fn mkdir(&mut self, path: &str) -> Result<()> {
        self.run(OpKind::Mkdir, path, None, (None, None), |fs, seq, _| {
            let p = parsed(path)?;
            let (stack, last, existing) = fs.resolve_entry(&p)?;
            let Last::Name(name) = last else {
                return Err(ErrorKind::AlreadyExists);
            };
            if existing.is_some() {
                return Err(ErrorKind::AlreadyExists);
            }
            fs.mkdir_at(*stack.last().expect("non-empty"), name, seq);
            Ok(())
        })
    }

    fn mkdir_all(&mut self, path: &str) -> Result<()> {
        if let Err(error) = parsed(path) {
            return self.run(OpKind::Mkdir, path, None, (None, None), |_, _, _| Err(error));
        }
        self.mkdir_all_from(path)
    }

    fn rmdir(&mut self, path: &str) -> Result<()> {
        self.run(OpKind::Rmdir, path, None, (None, None), |fs, seq, _| {
            let p = parsed(path)?;
            let (stack, last, existing) = fs.resolve_entry(&p)?;
            let name = match last {
                Last::Name(name) => name,
                Last::DotDot => return Err(ErrorKind::DirectoryNotEmpty),
                Last::Dot => return Err(ErrorKind::InvalidInput),
                Last::Root => return Err(ErrorKind::Busy),
            };
            let ino = existing.ok_or(ErrorKind::NotFound)?;
            if !fs.is_dir(ino) {
                return Err(ErrorKind::NotADirectory);
            }
            if !fs.dir(ino).cached.is_empty() {
                return Err(ErrorKind::DirectoryNotEmpty);
            }
            let dir = *stack.last().expect("non-empty");
            fs.dir_mut(dir).cached.remove(name);
            fs.add_entry_op(EntryOpKind::Unlink { dir, name: name.to_string(), ino }, seq);
            fs.garbage_hint += 1;
            Ok(())
        })
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<String>> {
        self.run(OpKind::ReadDir, path, None, (None, None), |fs, _, _| {
            let ino = fs.resolve(&parsed(path)?)?;
            match &fs.inode(ino).node {
                Node::Dir(d) => Ok(d.cached.keys().cloned().collect()),
                Node::File(_) => Err(ErrorKind::NotADirectory),
            }
        })
    }

    fn metadata(&mut self, path: &str) -> Result<Metadata> {
        self.run(OpKind::Stat, path, None, (None, None), |fs, _, _| {
            let ino = fs.resolve(&parsed(path)?)?;
            Ok(fs.metadata_of(ino))
        })
    }

    fn sync(&mut self) -> Result<()> {
        self.run(OpKind::Sync, "", None, (None, None), |fs, seq, _| {
            fs.sync_everything();
            fs.last_sync_seq = seq;
            Ok(())
        })
    }
}

impl SimFs {
    /// `mkdir -p` as `std::fs::create_dir_all` does it (so both backends agree even on `..`): try the
    /// path; if its parent is missing, create the lexical parent first, then try again; an error on a
    /// path that is by then a directory counts as success. Each attempt is one recorded `mkdir`. An
    /// explicit stack instead of std's recursion: a path may have 2,000 components.
    fn mkdir_all_from(&mut self, path: &str) -> Result<()> {
        let mut stack = vec![(path.to_string(), false)];
        while let Some((p, retry)) = stack.pop() {
            match self.mkdir(&p) {
                Ok(()) => {}
                Err(e) if e.kind == ErrorKind::PoweredOff => return Err(e),
                Err(e) if e.kind == ErrorKind::NotFound && !retry => {
                    let parent = lexical_parent(&p);
                    stack.push((p, true));
                    if !parent.is_empty() {
                        stack.push((parent, false));
                    }
                }
                Err(e) => {
                    if !self.is_dir_path(&p) {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    fn is_dir_path(&self, path: &str) -> bool {
        parsed(path).ok().and_then(|p| self.resolve(&p).ok()).is_some_and(|ino| self.is_dir(ino))
    }

    pub(super) fn metadata_of(&self, ino: Ino) -> Metadata {
        match &self.inode(ino).node {
            Node::Dir(_) => Metadata { kind: FileKind::Dir, len: 0 },
            Node::File(f) => Metadata { kind: FileKind::File, len: f.cached.len },
        }
    }

    fn sync_handle(&mut self, fd: Fd, requested: OpKind) -> Result<()> {
        let kind = match self.fds.get(&fd.0) {
            Some(f) if f.is_dir => OpKind::FsyncDir,
            _ => requested,
        };
        self.run_fd(kind, fd, (None, None), |fs, seq, injected| {
            let handle = fs.fd_entry(fd)?;
            let (ino, is_dir) = (handle.ino, handle.is_dir);
            if let Some(error) = injected {
                fs.fail_sync(ino, is_dir, seq, error);
                if is_dir && fs.shutdown_on_dir_sync_failure {
                    fs.shut_down = true;
                }
                return Err(error);
            }
            // A file whose name a pending rename or link changed is dirty metadata too (ctime), so its fsync
            // commits a journal transaction even with no data to write.
            let renamed = !is_dir && fs.entry_ops.iter().any(|op| op.inodes().contains(&Some(ino)));
            let wrote = if is_dir { fs.commit_dir(ino) } else { fs.commit_file_with_media_faults(ino, seq) };
            // A sync call with nothing to write commits no journal transaction (what Ext4Ordered keys on).
            if wrote || renamed {
                fs.last_sync_seq = seq;
            }
            Ok(())
        })
    }
}
