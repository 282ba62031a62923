//! The inode model of `SimFs`: what each file and directory holds in the page cache and on the disk,
//! and the pending operations between the two — data writes and size changes per file (`DataOp`, their
//! bytes in a per-file arena or shared pages), entry operations across directories (`EntryOp`, one
//! kept-or-dropped decision per operation, so a rename is atomic). It owns how one operation applies to
//! a durable image and how a file commits a prefix of its pending operations; which operations commit,
//! and when, is `SimFs`'s (`mod.rs`, `ops.rs`) and the crash models' (`crash.rs`).

use std::collections::BTreeMap;

use super::content::{Content, Intervals, PAGE, Page};
use super::faults::{self, Overlay};
use super::{Ino, SimFs};

/// A pending change to a file's data or size, applied to the durable image by a successful fsync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataOp {
    pub(crate) seq: u64,
    pub(crate) kind: DataOpKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataOpKind {
    Write { offset: u64, data: WriteData },
    SetLen { len: u64 },
}

/// The bytes of a pending write: a page-aligned whole-page write shares its pages with the cache (and,
/// once synced, with the durable image); anything else is a copy in the file's arena of unsynced bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteData {
    /// `arena[at..at + len]`.
    Arena {
        at: usize,
        len: usize,
    },
    Pages(Vec<Page>),
}

impl WriteData {
    pub(crate) fn len(&self) -> u64 {
        match self {
            WriteData::Arena { len, .. } => *len as u64,
            WriteData::Pages(p) => p.len() as u64 * PAGE,
        }
    }

    /// Copies the data's bytes `[at, at + buf.len())` into `buf`.
    pub(crate) fn read_at(&self, arena: &[u8], at: u64, buf: &mut [u8]) {
        match self {
            WriteData::Arena { at: start, .. } => {
                let from = start + at as usize;
                buf.copy_from_slice(&arena[from..from + buf.len()]);
            }
            WriteData::Pages(pages) => {
                let mut done = 0usize;
                while done < buf.len() {
                    let pos = at + done as u64;
                    let page = &pages[(pos / PAGE) as usize];
                    let in_page = (pos % PAGE) as usize;
                    let n = (PAGE as usize - in_page).min(buf.len() - done);
                    buf[done..done + n].copy_from_slice(&page[in_page..in_page + n]);
                    done += n;
                }
            }
        }
    }
}

impl DataOpKind {
    /// The first and last page the operation changes (`None`: an empty write).
    pub(crate) fn pages(&self) -> Option<(u64, u64)> {
        match self {
            DataOpKind::Write { offset, data } => {
                let len = match data {
                    WriteData::Arena { len, .. } => *len as u64,
                    WriteData::Pages(pages) => pages.len() as u64 * PAGE,
                };
                (len > 0).then(|| (offset / PAGE, (offset + len - 1) / PAGE))
            }
            DataOpKind::SetLen { len } => Some((len / PAGE, len / PAGE)),
        }
    }

    /// Applies the operation to a content (the durable image at commit, a replay in checks).
    pub(crate) fn apply_to(&self, content: &mut Content, arena: &[u8]) {
        match self {
            DataOpKind::Write { offset, data: WriteData::Arena { at, len } } => {
                content.write(*offset, &arena[*at..at + len])
            }
            DataOpKind::Write { offset, data: WriteData::Pages(pages) } => content.write_pages(*offset, pages),
            DataOpKind::SetLen { len } => content.set_len(*len),
        }
    }

    /// The byte range a write covers.
    pub(crate) fn write_extent(&self) -> Option<(u64, u64)> {
        match self {
            DataOpKind::Write { offset, data } => Some((*offset, data.len())),
            DataOpKind::SetLen { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FileNode {
    pub(crate) cached: Content,
    pub(crate) durable: Content,
    pub(crate) pending: Vec<DataOp>,
    /// The bytes of pending writes that are not whole pages (one buffer per file, not one per write).
    pub(crate) arena: Vec<u8>,
    /// A failed fsync dropped pending operations the cache still shows (fsyncgate).
    pub(crate) stale_cache: bool,
    /// Pages fallocate reserved (capacity accounting only; the model does not make them durable).
    pub(crate) reserved: Intervals,
    /// How many reserved pages hold no data yet (they count towards capacity on top of the data pages).
    pub(crate) reserved_unbacked: u64,
    pub(crate) overlays: Vec<Overlay>,
}

impl FileNode {
    pub(crate) fn new() -> FileNode {
        FileNode {
            cached: Content::empty(),
            durable: Content::empty(),
            pending: Vec::new(),
            arena: Vec::new(),
            stale_cache: false,
            reserved: Intervals::default(),
            reserved_unbacked: 0,
            overlays: Vec::new(),
        }
    }

    /// The page cache is gone (power cut, `drop_caches`): every media fault shows from now on.
    pub(crate) fn reveal_overlays(&mut self) {
        for overlay in &mut self.overlays {
            overlay.visible = true;
        }
    }

    /// Pages this file takes on the disk: its data pages plus reserved pages without data.
    pub(crate) fn usage_pages(&self) -> u64 {
        self.cached.page_count() + self.reserved_unbacked
    }

    /// Recounts the reserved pages without data (after a truncation or a cache rebuild).
    pub(crate) fn recount_reserved(&mut self) {
        self.reserved_unbacked =
            self.reserved.iter().map(|(lo, hi)| hi - lo + 1 - self.cached.pages.range(lo, hi).count() as u64).sum();
    }

    /// Drops every reservation (after a crash).
    pub(crate) fn clear_reserved(&mut self) {
        self.reserved = Intervals::default();
        self.reserved_unbacked = 0;
    }

    /// Makes the pending operations with sequence numbers up to `seq` durable, in order (all of them for
    /// a successful fsync, a prefix for writeback), then drops or compacts the unsynced bytes.
    pub(crate) fn commit_through(&mut self, seq: u64, sector: u64) {
        let FileNode { durable, cached, pending, arena, overlays, .. } = self;
        let split = pending.partition_point(|op| op.seq <= seq);
        for op in pending.drain(..split) {
            faults::heal_overlays(overlays, &op.kind, sector);
            op.kind.apply_to(durable, arena);
            // The pages the write made durable usually hold what the cache holds: one copy for both.
            if let Some((first, last)) = op.kind.pages() {
                durable.share_equal_pages(cached, first, last);
            }
        }
        if self.pending.is_empty() {
            self.clear_arena();
        } else {
            self.compact_arena();
        }
    }

    /// Forgets the unsynced bytes once nothing pending refers to them. The buffer is kept for the next
    /// writes unless it grew past 16 MiB.
    pub(crate) fn clear_arena(&mut self) {
        debug_assert!(self.pending.is_empty());
        if self.arena.capacity() > 16 << 20 {
            self.arena = Vec::new();
        } else {
            self.arena.clear();
        }
    }

    /// After a partial writeback: if most of the arena is bytes of operations no longer pending, copies
    /// the live ones to a fresh buffer (periodic writeback must not grow memory without bound).
    pub(crate) fn compact_arena(&mut self) {
        let live: usize = self
            .pending
            .iter()
            .map(|op| match &op.kind {
                DataOpKind::Write { data: WriteData::Arena { len, .. }, .. } => *len,
                _ => 0,
            })
            .sum();
        if self.arena.len() <= 2 * live + (64 << 10) {
            return;
        }
        let mut fresh = Vec::with_capacity(live);
        for op in &mut self.pending {
            if let DataOpKind::Write { data: WriteData::Arena { at, len }, .. } = &mut op.kind {
                let start = fresh.len();
                fresh.extend_from_slice(&self.arena[*at..*at + *len]);
                *at = start;
            }
        }
        self.arena = fresh;
    }

    /// The cached view rebuilt from the durable image and the pending operations.
    pub(crate) fn replay(&self) -> Content {
        let mut content = self.durable.clone();
        for op in &self.pending {
            op.kind.apply_to(&mut content, &self.arena);
        }
        content
    }
}

#[derive(Debug, Clone)]
pub(crate) struct DirNode {
    pub(crate) cached: BTreeMap<String, Ino>,
    pub(crate) durable: BTreeMap<String, Ino>,
    /// A failed directory fsync forgot pending operations the cache still shows (fsyncgate).
    pub(crate) stale_entries: bool,
}

impl DirNode {
    pub(crate) fn new() -> DirNode {
        DirNode { cached: BTreeMap::new(), durable: BTreeMap::new(), stale_entries: false }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug, Clone)]
pub(crate) struct Inode {
    pub(crate) node: Node,
    pub(crate) open_fds: u32,
}

/// A pending directory-entry operation; one decision (kept or dropped) covers all of it, so a rename is
/// atomic across its two directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryOp {
    pub(crate) seq: u64,
    pub(crate) kind: EntryOpKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryOpKind {
    /// create or mkdir.
    Link {
        dir: Ino,
        name: String,
        ino: Ino,
    },
    /// unlink or rmdir.
    Unlink {
        dir: Ino,
        name: String,
        ino: Ino,
    },
    Rename {
        from_dir: Ino,
        from_name: String,
        to_dir: Ino,
        to_name: String,
        ino: Ino,
        replaced: Option<Ino>,
    },
}

impl EntryOp {
    pub(crate) fn touches_dir(&self, d: Ino) -> bool {
        match &self.kind {
            EntryOpKind::Link { dir, .. } | EntryOpKind::Unlink { dir, .. } => *dir == d,
            EntryOpKind::Rename { from_dir, to_dir, .. } => *from_dir == d || *to_dir == d,
        }
    }

    /// The inodes whose names this operation changes (ordering is kept per inode).
    pub(crate) fn inodes(&self) -> [Option<Ino>; 2] {
        match &self.kind {
            EntryOpKind::Link { ino, .. } | EntryOpKind::Unlink { ino, .. } => [Some(*ino), None],
            EntryOpKind::Rename { ino, replaced, .. } => [Some(*ino), *replaced],
        }
    }

    /// The inode this operation removes from the tree (an unlink, or the target a rename replaced).
    pub(crate) fn removed(&self) -> Option<Ino> {
        match &self.kind {
            EntryOpKind::Unlink { ino, .. } => Some(*ino),
            EntryOpKind::Rename { replaced, .. } => *replaced,
            EntryOpKind::Link { .. } => None,
        }
    }

    /// The directory this operation puts an inode into.
    pub(crate) fn destination(&self) -> Option<Ino> {
        match &self.kind {
            EntryOpKind::Link { dir, .. } => Some(*dir),
            EntryOpKind::Rename { to_dir, .. } => Some(*to_dir),
            EntryOpKind::Unlink { .. } => None,
        }
    }

    /// The (directory, name) slots this operation changes.
    pub(crate) fn slots(&self) -> [Option<(Ino, &str)>; 2] {
        match &self.kind {
            EntryOpKind::Link { dir, name, .. } | EntryOpKind::Unlink { dir, name, .. } => {
                [Some((*dir, name.as_str())), None]
            }
            EntryOpKind::Rename { from_dir, from_name, to_dir, to_name, .. } => {
                [Some((*from_dir, from_name.as_str())), Some((*to_dir, to_name.as_str()))]
            }
        }
    }

    pub(crate) fn dirs(&self) -> [Option<Ino>; 2] {
        match &self.kind {
            EntryOpKind::Link { dir, .. } | EntryOpKind::Unlink { dir, .. } => [Some(*dir), None],
            EntryOpKind::Rename { from_dir, to_dir, .. } => [Some(*from_dir), Some(*to_dir)],
        }
    }

    /// Applies the operation to directory maps (durable maps at commit, candidate maps at a crash).
    /// A missing map is treated as empty. An unlink removes a name only if it still names the same inode.
    pub(crate) fn apply_to(&self, maps: &mut BTreeMap<Ino, BTreeMap<String, Ino>>) {
        match &self.kind {
            EntryOpKind::Link { dir, name, ino } => {
                maps.entry(*dir).or_default().insert(name.clone(), *ino);
            }
            EntryOpKind::Unlink { dir, name, ino } => {
                let map = maps.entry(*dir).or_default();
                if map.get(name) == Some(ino) {
                    map.remove(name);
                }
            }
            EntryOpKind::Rename { from_dir, from_name, to_dir, to_name, ino, .. } => {
                let from = maps.entry(*from_dir).or_default();
                if from.get(from_name) == Some(ino) {
                    from.remove(from_name);
                }
                maps.entry(*to_dir).or_default().insert(to_name.clone(), *ino);
            }
        }
    }

    /// A short human description for decision vectors and traces.
    pub(crate) fn describe(&self, fs: &SimFs) -> String {
        match &self.kind {
            EntryOpKind::Link { dir, name, .. } => format!("link {}", fs.join_path(*dir, name)),
            EntryOpKind::Unlink { dir, name, .. } => format!("unlink {}", fs.join_path(*dir, name)),
            EntryOpKind::Rename { from_dir, from_name, to_dir, to_name, .. } => {
                format!("rename {} -> {}", fs.join_path(*from_dir, from_name), fs.join_path(*to_dir, to_name))
            }
        }
    }
}
