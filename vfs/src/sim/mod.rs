//! `SimFs`: an in-memory filesystem that remembers, for every inode, what is durable and what is only
//! in the page cache, so that a power cut can lose exactly what a real disk may lose.
//!
//! Key invariant: for every file, the cached view (what reads see) equals the durable image with the
//! pending operations applied in sequence order — except after an fsync failure, when the page cache
//! keeps data the disk never got (`stale_cache`, fsyncgate). For every directory, the cached entries equal
//! the durable entries with the pending entry operations applied, except for operations a failed
//! directory fsync forgot. `check_invariants` verifies all of this and the tests call it after every step.
//!
//! Durability rules (docs/filesystem-model.md): data and size changes become durable by `fsync`/`fdatasync` of the
//! file; a name becomes durable only by `fsync` of its directory (committing an entry operation also
//! commits the earlier entry operations on the same inodes, and both halves of a rename, so a file is
//! never durable in two places); `sync` makes everything durable. A process crash closes every handle
//! and keeps the pending state; a power cut applies a crash model (see `crash.rs`).

mod content;
mod crash;
mod enumerate;
mod faults;
mod invariants;
mod node;
mod ops;
mod peek;

pub use crash::{
    CrashDecisions, CrashModel, DecisionError, EntryDecision, FileDecision, SectorDecision, SectorVersion,
};
pub use enumerate::CrashImage;
pub use faults::{CrashPoint, ErrorRule, FaultEvent, MediaFault, MediaFaultId, MediaFaultKind, MediaSector, PowerCut};
pub use peek::Peek;

use crate::path::{self, Component, Last, ParsedPath};
use crate::{ErrorKind, FallocateMode, Fd, FileKind, FileSystem, FsError, Metadata, OpKind, OpenOptions, Result};
pub(crate) use node::{DataOp, DataOpKind, DirNode, EntryOp, EntryOpKind, FileNode, Inode, Node, WriteData};

use content::PAGE;
use faults::{ArmedCut, ArmedMediaFault};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Every knob of a `SimFs`, written out (no `Default`: a fault configuration states its choices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimFsConfig {
    /// Seeds the fault picker (crash decisions, fsync-failure subsets, media-fault placement).
    pub seed: u64,
    /// The tear unit of power loss: 512 or 4096 bytes.
    pub sector_size: u64,
    /// Total bytes of file data the disk holds before `ENOSPC`.
    pub capacity_bytes: u64,
    /// Largest file size; writes at or past it fail with `EFBIG` (ext4: 16 TiB).
    pub max_file_size: u64,
    /// Keep an [`OpRecord`] of every call (drain with [`SimFs::take_ops`]).
    pub record_ops: bool,
}

/// One filesystem call as recorded in the op log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    /// Global (per filesystem) sequence number; the first call is 1.
    pub seq: u64,
    /// The call.
    pub kind: OpKind,
    /// The path it named, normalised (for handle calls, the handle's path).
    pub path: String,
    /// The rename target.
    pub to: Option<String>,
    /// Byte offset for reads, writes, truncates and fallocate.
    pub offset: Option<u64>,
    /// Byte count for reads, writes and fallocate; the new length for truncate.
    pub len: Option<u64>,
    /// Success, or the error kind returned.
    pub result: std::result::Result<(), ErrorKind>,
}

/// A node of the cached tree, for tests and for hashing a crash image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TreeEntry {
    /// A directory.
    Dir,
    /// A file and its content.
    File(Vec<u8>),
}

pub(crate) type Ino = u64;
pub(crate) const ROOT: Ino = 0;

/// An open handle.
#[derive(Debug, Clone)]
struct OpenFile {
    ino: Ino,
    /// Normalised path at open time, kept current across renames of it or its ancestors.
    path: Rc<str>,
    is_dir: bool,
    read: bool,
    write: bool,
    append: bool,
    cursor: u64,
}

/// Garbage collection runs after at least this many calls that may have orphaned an inode, and at least
/// half as many as the marking walks, so its cost stays proportional to the calls.
const GC_EVERY: usize = 32;

/// The simulated filesystem. See the module documentation for its model and key invariant.
#[derive(Clone)]
pub struct SimFs {
    pub(crate) config: SimFsConfig,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) inodes: Vec<Option<Inode>>,
    free_inos: BTreeSet<Ino>,
    fds: BTreeMap<u64, OpenFile>,
    next_fd: u64,
    /// Pending entry operations of every directory, in sequence order.
    pub(crate) entry_ops: Vec<EntryOp>,
    pub(crate) seq: u64,
    /// Sequence number of the latest successful fsync, fdatasync, directory fsync or sync.
    pub(crate) last_sync_seq: u64,
    used_pages: u64,
    ops: Vec<OpRecord>,
    pub(crate) error_rules: Vec<ErrorRule>,
    /// No rule matches while set (`pause_error_rules`).
    pub(crate) error_rules_paused: bool,
    /// A failed directory fsync shuts the filesystem down (`shut_down_on_dir_sync_failure`).
    pub(crate) shutdown_on_dir_sync_failure: bool,
    /// Shut down: every call that would change or sync the disk fails with `EIO` until power is cut.
    pub(crate) shut_down: bool,
    pub(crate) armed_cut: Option<ArmedCut>,
    pub(crate) powered_off: bool,
    /// A held power cut that fired: its call and trigger, the crash not applied yet.
    pub(crate) held_cut: Option<faults::HeldCut>,
    pub(crate) power_cuts: Vec<PowerCut>,
    pub(crate) fault_events: Vec<FaultEvent>,
    pub(crate) armed_media: Vec<ArmedMediaFault>,
    pub(crate) next_media_id: u64,
    garbage_hint: usize,
    gc_threshold: usize,
}

impl SimFs {
    /// An empty filesystem (just the root directory, durable).
    pub fn new(config: SimFsConfig) -> SimFs {
        assert!(config.sector_size == 512 || config.sector_size == 4096, "sector size must be 512 or 4096");
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let root = Inode { node: Node::Dir(DirNode::new()), open_fds: 0 };
        SimFs {
            config,
            rng,
            inodes: vec![Some(root)],
            free_inos: BTreeSet::new(),
            fds: BTreeMap::new(),
            next_fd: 3,
            entry_ops: Vec::new(),
            seq: 0,
            last_sync_seq: 0,
            used_pages: 0,
            ops: Vec::new(),
            error_rules: Vec::new(),
            error_rules_paused: false,
            shutdown_on_dir_sync_failure: false,
            shut_down: false,
            armed_cut: None,
            powered_off: false,
            held_cut: None,
            power_cuts: Vec::new(),
            fault_events: Vec::new(),
            armed_media: Vec::new(),
            next_media_id: 1,
            garbage_hint: 0,
            gc_threshold: GC_EVERY,
        }
    }

    /// The configuration this filesystem was built with.
    pub fn config(&self) -> &SimFsConfig {
        &self.config
    }

    /// Sequence number of the latest call (0 before the first).
    pub fn op_seq(&self) -> u64 {
        self.seq
    }

    /// The recorded calls not yet taken.
    pub fn ops(&self) -> &[OpRecord] {
        &self.ops
    }

    /// Turns the recording of calls on or off (a world that traces filesystem calls turns it on for
    /// the disks it was handed).
    pub fn set_record_ops(&mut self, on: bool) {
        self.config.record_ops = on;
    }

    /// Takes the recorded calls (the simulator drains them into its trace).
    pub fn take_ops(&mut self) -> Vec<OpRecord> {
        std::mem::take(&mut self.ops)
    }

    /// Bytes held for unsynced partial-page writes (the files' arenas), for memory accounting.
    pub fn unsynced_arena_bytes(&self) -> usize {
        self.live_inodes()
            .map(|(_, i)| match &i.node {
                Node::File(f) => f.arena.len(),
                Node::Dir(_) => 0,
            })
            .sum()
    }

    /// Number of pending (unsynced) operations: data operations of every file plus entry operations.
    pub fn pending_count(&self) -> usize {
        let data: usize = self
            .live_inodes()
            .map(|(_, i)| match &i.node {
                Node::File(f) => f.pending.len(),
                Node::Dir(_) => 0,
            })
            .sum();
        data + self.entry_ops.len()
    }

    /// Number of live inodes (root included); falls when garbage is collected.
    pub fn inode_count(&self) -> usize {
        self.inodes.iter().filter(|i| i.is_some()).count()
    }

    /// Number of open handles.
    pub fn open_handle_count(&self) -> usize {
        self.fds.len()
    }

    /// Bytes of file data currently allocated (what `capacity_bytes` limits).
    pub fn used_bytes(&self) -> u64 {
        self.used_pages * PAGE
    }

    /// Changes the disk's capacity (a disk filling up with other data, or freed again): calls that need
    /// more pages than it leaves fail with `ENOSPC`. What is already stored stays, even above it.
    pub fn set_capacity_bytes(&mut self, capacity_bytes: u64) {
        self.config.capacity_bytes = capacity_bytes;
    }

    // ----- inode table -----

    pub(crate) fn live_inodes(&self) -> impl Iterator<Item = (Ino, &Inode)> {
        self.inodes.iter().enumerate().filter_map(|(i, n)| n.as_ref().map(|n| (i as Ino, n)))
    }

    pub(crate) fn inode(&self, ino: Ino) -> &Inode {
        self.inodes[ino as usize].as_ref().expect("live inode")
    }

    pub(crate) fn inode_mut(&mut self, ino: Ino) -> &mut Inode {
        self.inodes[ino as usize].as_mut().expect("live inode")
    }

    pub(crate) fn file(&self, ino: Ino) -> &FileNode {
        match &self.inode(ino).node {
            Node::File(f) => f,
            Node::Dir(_) => panic!("inode {ino} is a directory"),
        }
    }

    pub(crate) fn file_mut(&mut self, ino: Ino) -> &mut FileNode {
        match &mut self.inode_mut(ino).node {
            Node::File(f) => f,
            Node::Dir(_) => panic!("inode {ino} is a directory"),
        }
    }

    pub(crate) fn dir(&self, ino: Ino) -> &DirNode {
        match &self.inode(ino).node {
            Node::Dir(d) => d,
            Node::File(_) => panic!("inode {ino} is a file"),
        }
    }

    pub(crate) fn dir_mut(&mut self, ino: Ino) -> &mut DirNode {
        match &mut self.inode_mut(ino).node {
            Node::Dir(d) => d,
            Node::File(_) => panic!("inode {ino} is a file"),
        }
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(self.inode(ino).node, Node::Dir(_))
    }

    fn alloc_inode(&mut self, node: Node) -> Ino {
        let inode = Inode { node, open_fds: 0 };
        match self.free_inos.pop_first() {
            Some(ino) => {
                self.inodes[ino as usize] = Some(inode);
                ino
            }
            None => {
                self.inodes.push(Some(inode));
                (self.inodes.len() - 1) as Ino
            }
        }
    }

    pub(crate) fn free_inode(&mut self, ino: Ino) {
        assert_ne!(ino, ROOT, "the root is never freed");
        if let Some(inode) = self.inodes[ino as usize].take()
            && let Node::File(f) = &inode.node
        {
            self.used_pages -= f.usage_pages();
        }
        self.free_inos.insert(ino);
    }

    /// A readable path for an inode (search of the cached tree, then the durable one); used only in
    /// descriptions.
    pub(crate) fn inode_path(&self, target: Ino) -> String {
        if target == ROOT {
            return String::new();
        }
        for durable in [false, true] {
            let mut queue = vec![(ROOT, String::new())];
            while let Some((dir, prefix)) = queue.pop() {
                let d = self.dir(dir);
                let map = if durable { &d.durable } else { &d.cached };
                for (name, child) in map {
                    let p = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
                    if *child == target {
                        return p;
                    }
                    if self.inodes[*child as usize].is_some() && self.is_dir(*child) {
                        queue.push((*child, p));
                    }
                }
            }
        }
        format!("#{target}")
    }

    pub(crate) fn join_path(&self, dir: Ino, name: &str) -> String {
        let prefix = self.inode_path(dir);
        if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") }
    }

    // ----- accounting -----

    pub(crate) fn recount_usage(&mut self) {
        self.used_pages = self
            .live_inodes()
            .map(|(_, i)| match &i.node {
                Node::File(f) => f.usage_pages(),
                Node::Dir(_) => 0,
            })
            .sum();
    }

    fn set_usage(&mut self, before: u64, after: u64) {
        self.used_pages = self.used_pages - before + after;
    }

    fn capacity_pages(&self) -> u64 {
        self.config.capacity_bytes / PAGE
    }

    /// Whether `pages` more fit on the disk; a full disk first frees what only garbage still holds (an
    /// unlinked, closed file whose unlink is durable), as the kernel frees blocks when the last reference
    /// goes.
    pub(crate) fn room_for(&mut self, pages: u64) -> bool {
        if self.used_pages + pages <= self.capacity_pages() {
            return true;
        }
        self.collect_garbage();
        self.used_pages + pages <= self.capacity_pages()
    }

    // ----- the call wrapper: sequence numbers, crash points, injected errors, the op log -----

    /// Runs one call on a path (see `run_inner`).
    fn run<T>(
        &mut self,
        kind: OpKind,
        path: &str,
        to: Option<&str>,
        extent: (Option<u64>, Option<u64>),
        body: impl FnOnce(&mut SimFs, u64, Option<ErrorKind>) -> std::result::Result<T, ErrorKind>,
    ) -> Result<T> {
        self.run_inner(kind, path, to, extent, true, body)
    }

    /// Runs one call on a handle (see `run_inner`). A handle that is not open fails with `EBADF` before
    /// any injected error, as the kernel never reaches the device.
    fn run_fd<T>(
        &mut self,
        kind: OpKind,
        fd: Fd,
        extent: (Option<u64>, Option<u64>),
        body: impl FnOnce(&mut SimFs, u64, Option<ErrorKind>) -> std::result::Result<T, ErrorKind>,
    ) -> Result<T> {
        let path = self.fd_path(fd);
        let open = self.fds.contains_key(&fd.0);
        self.run_inner(kind, &path, None, extent, open, body)
    }

    /// Runs one call: assigns its sequence number, fires a crash point or an injected error that matches
    /// it, records it, and fires an `AfterOp` crash point once it completed. `body` receives an injected
    /// error only for fsync-like calls, which fail with fsyncgate semantics rather than doing nothing, and
    /// for `close`, which releases the handle anyway.
    fn run_inner<T>(
        &mut self,
        kind: OpKind,
        path: &str,
        to: Option<&str>,
        extent: (Option<u64>, Option<u64>),
        injectable: bool,
        body: impl FnOnce(&mut SimFs, u64, Option<ErrorKind>) -> std::result::Result<T, ErrorKind>,
    ) -> Result<T> {
        if self.powered_off {
            return Err(FsError::new(ErrorKind::PoweredOff, kind, path));
        }
        self.seq += 1;
        let seq = self.seq;
        if self.before_cut_matches(seq, kind, path, to) {
            self.record(seq, kind, path, to, extent, Err(ErrorKind::PoweredOff));
            self.fire_power_cut(seq, kind, path, format!("before {} {}", kind, path::normalize(path)));
            return Err(FsError::new(ErrorKind::PoweredOff, kind, path));
        }
        if self.shut_down && injectable && kind.is_mutating() && kind != OpKind::Open {
            self.record(seq, kind, path, to, extent, Err(ErrorKind::Io));
            return Err(FsError::new(ErrorKind::Io, kind, path));
        }
        let injected = if injectable { self.take_injected_error(seq, kind, path, to) } else { None };
        let passes_through = matches!(kind, OpKind::Fsync | OpKind::Fdatasync | OpKind::FsyncDir | OpKind::Close);
        let result = match injected {
            Some(error) if !passes_through => Err(error),
            _ => body(self, seq, injected),
        };
        self.record(seq, kind, path, to, extent, result.as_ref().map(|_| ()).map_err(|e| *e));
        if self.after_cut_matches(seq, kind, path, to) {
            self.fire_power_cut(seq, kind, path, format!("after op {seq} ({} {})", kind, path::normalize(path)));
        }
        if self.garbage_hint >= self.gc_threshold {
            self.collect_garbage();
        }
        result.map_err(|e| FsError::new(e, kind, path))
    }

    fn record(
        &mut self,
        seq: u64,
        kind: OpKind,
        path: &str,
        to: Option<&str>,
        extent: (Option<u64>, Option<u64>),
        result: std::result::Result<(), ErrorKind>,
    ) {
        if self.config.record_ops {
            self.ops.push(OpRecord {
                seq,
                kind,
                path: path::normalize(path),
                to: to.map(path::normalize),
                offset: extent.0,
                len: extent.1,
                result,
            });
        }
    }

    // ----- path resolution -----

    /// Walks components from the root; returns the stack of inodes visited (root first, target last).
    pub(crate) fn walk(&self, components: &[Component<'_>]) -> std::result::Result<Vec<Ino>, ErrorKind> {
        let mut stack = vec![ROOT];
        for component in components {
            let top = *stack.last().expect("stack holds the root");
            let Node::Dir(dir) = &self.inode(top).node else {
                return Err(ErrorKind::NotADirectory);
            };
            match component {
                Component::Cur => {}
                Component::Parent => {
                    stack.pop();
                    assert!(!stack.is_empty(), "lexical check keeps `..` below the root");
                }
                Component::Name(name) => match dir.cached.get(*name) {
                    Some(child) => stack.push(*child),
                    None => return Err(ErrorKind::NotFound),
                },
            }
        }
        Ok(stack)
    }

    /// Resolves an existing path to its inode (a trailing `/` requires a directory).
    pub(crate) fn resolve(&self, parsed: &ParsedPath<'_>) -> std::result::Result<Ino, ErrorKind> {
        let stack = self.walk(&parsed.components)?;
        let ino = *stack.last().expect("non-empty stack");
        if parsed.trailing_slash && !self.is_dir(ino) {
            return Err(ErrorKind::NotADirectory);
        }
        Ok(ino)
    }

    /// Walks to the parent of an entry. Returns the ancestors of the parent (root first, parent last), the
    /// final component, and for a plain name the inode it maps to now.
    pub(crate) fn resolve_entry<'p>(
        &self,
        parsed: &ParsedPath<'p>,
    ) -> std::result::Result<(Vec<Ino>, Last<'p>, Option<Ino>), ErrorKind> {
        let (parent, last) = parsed.split_entry();
        let stack = self.walk(parent)?;
        let dir = *stack.last().expect("non-empty stack");
        let Node::Dir(d) = &self.inode(dir).node else {
            return Err(ErrorKind::NotADirectory);
        };
        let existing = match last {
            Last::Name(name) => d.cached.get(name).copied(),
            Last::Root | Last::Dot | Last::DotDot => None,
        };
        Ok((stack, last, existing))
    }

    fn fd_entry(&self, fd: Fd) -> std::result::Result<&OpenFile, ErrorKind> {
        self.fds.get(&fd.0).ok_or(ErrorKind::BadDescriptor)
    }

    fn fd_path(&self, fd: Fd) -> Rc<str> {
        self.fds.get(&fd.0).map(|f| f.path.clone()).unwrap_or_else(|| Rc::from(""))
    }

    // ----- mutations of the cached view (each records what must become durable) -----

    fn add_entry_op(&mut self, kind: EntryOpKind, seq: u64) {
        self.entry_ops.push(EntryOp { seq, kind });
    }

    fn push_data_op(&mut self, ino: Ino, seq: u64, kind: DataOpKind) {
        self.file_mut(ino).pending.push(DataOp { seq, kind });
    }

    /// Writes into the cached view and records the pending operation; returns the bytes written.
    fn do_write(&mut self, ino: Ino, seq: u64, offset: u64, data: &[u8]) -> std::result::Result<usize, ErrorKind> {
        if offset > i64::MAX as u64 {
            return Err(ErrorKind::InvalidInput);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let max = self.config.max_file_size;
        if offset >= max {
            return Err(ErrorKind::FileTooLarge);
        }
        let n = (data.len() as u64).min(max - offset) as usize;
        let data = &data[..n];
        let file = self.file(ino);
        let before = file.usage_pages();
        let (first, last) = (offset / PAGE, (offset + n as u64 - 1) / PAGE);
        // New data pages inside a reservation take no more space.
        let reserved_new = if file.reserved.is_empty() {
            0
        } else {
            (first..=last).filter(|p| file.cached.pages.get(*p).is_none() && file.reserved.contains(*p)).count() as u64
        };
        // The exact count of new pages (a range walk) only when the disk might be full.
        if self.used_pages + (last - first + 1) > self.capacity_pages() {
            let growth = file.cached.new_pages_for(offset, n as u64) - reserved_new;
            if !self.room_for(growth) {
                return Err(ErrorKind::NoSpace);
            }
        }
        let file = self.file_mut(ino);
        file.reserved_unbacked -= reserved_new;
        let data = if offset.is_multiple_of(PAGE) && (n as u64).is_multiple_of(PAGE) {
            let pages = content::pages_of(data);
            file.cached.write_pages(offset, &pages);
            WriteData::Pages(pages)
        } else {
            file.cached.write(offset, data);
            let at = file.arena.len();
            file.arena.extend_from_slice(data);
            WriteData::Arena { at, len: n }
        };
        file.pending.push(DataOp { seq, kind: DataOpKind::Write { offset, data } });
        let after = file.usage_pages();
        self.set_usage(before, after);
        Ok(n)
    }

    fn do_set_len(&mut self, ino: Ino, seq: u64, len: u64) {
        let file = self.file(ino);
        if file.cached.len == len {
            return;
        }
        let before = file.usage_pages();
        let file = self.file_mut(ino);
        file.cached.set_len(len);
        if !file.reserved.is_empty() {
            // ftruncate frees the blocks past the new end, preallocated ones included.
            file.reserved.clip(len.div_ceil(PAGE));
            file.recount_reserved();
        }
        let after = file.usage_pages();
        self.push_data_op(ino, seq, DataOpKind::SetLen { len });
        self.set_usage(before, after);
    }

    /// Makes a file's pending operations durable (successful fsync / fdatasync).
    pub(crate) fn commit_file(&mut self, ino: Ino) {
        let sector = self.config.sector_size;
        self.file_mut(ino).commit_through(u64::MAX, sector);
    }

    /// Makes the given entry operations durable, together with the earlier pending operations on the
    /// same inodes (a journal commits in order), removing them from the pending list.
    pub(crate) fn commit_entries(&mut self, mut chosen: BTreeSet<u64>) {
        crash::close_entries(&self.entry_ops, &mut chosen);
        let (commit, keep): (Vec<EntryOp>, Vec<EntryOp>) =
            std::mem::take(&mut self.entry_ops).into_iter().partition(|op| chosen.contains(&op.seq));
        self.entry_ops = keep;
        let mut maps: BTreeMap<Ino, BTreeMap<String, Ino>> = BTreeMap::new();
        for op in &commit {
            for dir in op.dirs().into_iter().flatten() {
                if let std::collections::btree_map::Entry::Vacant(slot) = maps.entry(dir) {
                    slot.insert(std::mem::take(&mut self.dir_mut(dir).durable));
                }
            }
            op.apply_to(&mut maps);
        }
        for (dir, map) in maps {
            self.dir_mut(dir).durable = map;
        }
        if !commit.is_empty() {
            self.garbage_hint += 1;
        }
    }

    /// fsync of a directory; returns whether anything was pending.
    fn commit_dir(&mut self, dir: Ino) -> bool {
        let chosen: BTreeSet<u64> = self.entry_ops.iter().filter(|op| op.touches_dir(dir)).map(|op| op.seq).collect();
        let wrote = !chosen.is_empty();
        if wrote {
            self.commit_entries(chosen);
        }
        wrote
    }

    // ----- garbage collection -----

    /// Frees every inode that no name (cached or durable), handle or pending operation can reach.
    pub fn collect_garbage(&mut self) {
        self.garbage_hint = 0;
        let mut marked = vec![false; self.inodes.len()];
        let mut stack: Vec<Ino> = vec![ROOT];
        stack.extend(self.fds.values().map(|f| f.ino));
        for op in &self.entry_ops {
            stack.extend(op.inodes().into_iter().flatten());
            stack.extend(op.dirs().into_iter().flatten());
        }
        while let Some(ino) = stack.pop() {
            if std::mem::replace(&mut marked[ino as usize], true) {
                continue;
            }
            if let Node::Dir(d) = &self.inode(ino).node {
                stack.extend(d.cached.values().copied());
                stack.extend(d.durable.values().copied());
            }
        }
        for (ino, mark) in marked.into_iter().enumerate() {
            if !mark && self.inodes[ino].is_some() {
                self.free_inode(ino as Ino);
            }
        }
        self.gc_threshold = GC_EVERY.max((self.inodes.len() + self.entry_ops.len() + self.fds.len()) / 2);
    }

    /// The kernel's background writeback: every pending operation with a sequence number up to `seq`
    /// becomes durable, in order (a file's data as a prefix of its pending operations, entry operations
    /// with their per-inode predecessors). The simulator calls this to model the flusher and the journal
    /// commit interval (dirty data older than ~30 s, metadata older than ~5 s on ext4); without it,
    /// unsynced data stays pending until a sync call, the most adversarial choice.
    pub fn writeback(&mut self, seq: u64) {
        let files: Vec<Ino> = self
            .live_inodes()
            .filter(|(_, i)| matches!(&i.node, Node::File(f) if f.pending.first().is_some_and(|op| op.seq <= seq)))
            .map(|(ino, _)| ino)
            .collect();
        let sector = self.config.sector_size;
        for ino in files {
            self.file_mut(ino).commit_through(seq, sector);
        }
        let entries: BTreeSet<u64> = self.entry_ops.iter().map(|op| op.seq).filter(|s| *s <= seq).collect();
        if !entries.is_empty() {
            self.commit_entries(entries);
        }
    }

    // ----- lifecycle -----

    /// A process crash (kill -9 of the VM): every handle is gone, the page cache survives, so pending
    /// operations stay pending and a later power cut may still lose them.
    pub fn process_crash(&mut self) {
        self.fds.clear();
        for inode in self.inodes.iter_mut().flatten() {
            inode.open_fds = 0;
        }
        self.collect_garbage();
    }

    /// Everything pending becomes durable (as `sync(2)`), without recording a call.
    fn sync_everything(&mut self) {
        let files: Vec<Ino> = self
            .live_inodes()
            .filter(|(_, i)| matches!(&i.node, Node::File(f) if !f.pending.is_empty()))
            .map(|(ino, _)| ino)
            .collect();
        for ino in files {
            self.commit_file(ino);
        }
        let all: BTreeSet<u64> = self.entry_ops.iter().map(|op| op.seq).collect();
        if !all.is_empty() {
            self.commit_entries(all);
        }
    }

    /// Drops the page cache: files whose cache kept data a failed fsync never wrote (fsyncgate) now read
    /// what the disk has, plus what is still pending, and lost or misdirected writes become visible.
    pub fn drop_caches(&mut self) {
        for inode in self.inodes.iter_mut().flatten() {
            if let Node::File(f) = &mut inode.node {
                f.reveal_overlays();
            }
        }
        let stale: Vec<Ino> = self
            .live_inodes()
            .filter(|(_, i)| matches!(&i.node, Node::File(f) if f.stale_cache))
            .map(|(ino, _)| ino)
            .collect();
        for ino in stale {
            let file = self.file(ino);
            let before = file.usage_pages();
            let cached = file.replay();
            let file = self.file_mut(ino);
            file.cached = cached;
            file.stale_cache = false;
            file.recount_reserved();
            let after = file.usage_pages();
            self.set_usage(before, after);
        }
    }

    /// The names directory `path` holds in the cache now (what a process listing it would see), or
    /// `None` when `path` is no directory. An observer's look, not a call: it takes no sequence number,
    /// is not recorded and meets no fault, so a checker may use it without changing the run.
    pub fn cached_dir_names(&self, path: &str) -> Option<Vec<String>> {
        let ino = self.resolve(&crate::path::parse(path).ok()?).ok()?;
        match &self.inode(ino).node {
            Node::Dir(d) => Some(d.cached.keys().cloned().collect()),
            Node::File(_) => None,
        }
    }

    /// Whether `fd` is open. An observer's look, as [`SimFs::cached_dir_names`].
    pub fn is_open(&self, fd: Fd) -> bool {
        self.fds.contains_key(&fd.0)
    }

    /// Every open handle and the path it was opened at (kept current across renames), in the order the
    /// handles were opened. An observer's look, as [`SimFs::cached_dir_names`].
    pub fn open_handles(&self) -> impl Iterator<Item = (Fd, &str)> + '_ {
        self.fds.iter().map(|(&fd, open)| (Fd(fd), &*open.path))
    }

    /// The cached tree: every path (normalised, root excluded) and what it holds. File contents are
    /// materialised, so this is for tests and small images, not for sparse files of terabytes.
    pub fn tree(&self) -> BTreeMap<String, TreeEntry> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(ROOT, String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            for (name, child) in &self.dir(dir).cached {
                let p = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
                match &self.inode(*child).node {
                    Node::Dir(_) => {
                        out.insert(p.clone(), TreeEntry::Dir);
                        stack.push((*child, p));
                    }
                    Node::File(f) => {
                        out.insert(p, TreeEntry::File(f.cached.to_vec()));
                    }
                }
            }
        }
        out
    }

    fn open_handle(&mut self, ino: Ino, path: &str, is_dir: bool, options: &OpenOptions) -> Fd {
        let fd = self.next_fd;
        self.next_fd += 1;
        self.fds.insert(
            fd,
            OpenFile {
                ino,
                path: Rc::from(path::normalize(path)),
                is_dir,
                read: options.read || is_dir,
                write: !is_dir && (options.write || options.append),
                append: !is_dir && options.append,
                cursor: 0,
            },
        );
        self.inode_mut(ino).open_fds += 1;
        Fd(fd)
    }

    /// Renames keep handle paths current (so the op log names files as they are now called).
    fn rename_handle_paths(&mut self, from: &str, to: &str) {
        let prefix = format!("{from}/");
        for f in self.fds.values_mut() {
            if &*f.path == from {
                f.path = Rc::from(to);
            } else if let Some(rest) = f.path.strip_prefix(&prefix) {
                f.path = Rc::from(format!("{to}/{rest}"));
            }
        }
    }

    fn mkdir_at(&mut self, parent: Ino, name: &str, seq: u64) -> Ino {
        let ino = self.alloc_inode(Node::Dir(DirNode::new()));
        self.dir_mut(parent).cached.insert(name.to_string(), ino);
        self.add_entry_op(EntryOpKind::Link { dir: parent, name: name.to_string(), ino }, seq);
        ino
    }

    fn read_at(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> std::result::Result<usize, ErrorKind> {
        if offset > i64::MAX as u64 {
            return Err(ErrorKind::InvalidInput);
        }
        let file = self.file(ino);
        let n = file.cached.read(offset, buf);
        if !file.overlays.is_empty() {
            faults::apply_overlays_on_read(file, offset, &mut buf[..n], self.config.sector_size)?;
        }
        Ok(n)
    }
}
