//! Power loss: the crash models and the decision vector that makes a crash image replayable.
//!
//! A crash is computed in two steps. *Choosing* turns (pending state, model, rng) into
//! [`CrashDecisions`]: per file the size (which prefix of its size changes survived) and, per sector any
//! pending operation touched, which version survived — the durable one (left implicit), the state after
//! one of the pending operations, or garbage; per pending entry operation, kept or dropped. *Applying*
//! turns decisions into the new durable image and forgets everything else. Applying is a pure function of
//! (state, decisions), so the same decisions always give the same image, and decisions are what
//! shrinking minimises and what the exhaustive enumerator produces.
//!
//! Key invariant: every sector of a crash image equals one version from that sector's history (or, in the
//! `Corrupting` model, garbage; in `UnsyncedGarbage`, garbage only in a sector past the file's durable
//! length), and every inode in it is reachable from the root through entries that were durable or kept.

use super::content::{Content, Intervals, PAGE};
use super::{DataOpKind, EntryOp, EntryOpKind, FileNode, Ino, Node, ROOT, SimFs};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How a power cut treats unsynced state (docs/filesystem-model.md, "Crash models").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashModel {
    /// Everything pending survives (what a process crash does); the baseline.
    NoLoss,
    /// Everything pending is lost; finds a missing fsync or directory fsync cheaply.
    LoseUnsynced,
    /// Each touched sector independently takes any version from its history, each entry operation is
    /// independently kept or dropped (in per-inode order), the size is any prefix of the size changes.
    Pessimistic,
    /// ext4 `data=ordered`: metadata (entry operations and size changes of every file) survives as a
    /// prefix of program order that includes everything before the last successful sync call; appended
    /// data within the surviving size is never the old zeros; overwrites are per sector.
    Ext4Ordered,
    /// `Pessimistic`, and a touched sector may hold garbage — even one that held synced data (a drive
    /// that damages committed data under power fault: hardware loss, which no software can survive).
    Corrupting,
    /// `Pessimistic`, and a sector an unsynced write touched may hold garbage if it holds no synced data
    /// (it lies wholly past the file's durable length): what a drive does to the sectors in flight when
    /// power fails (Zheng et al., FAST '13: torn and shorn writes, garbled sectors among those being
    /// written), and never to data an fsync made durable.
    UnsyncedGarbage,
}

impl CrashModel {
    /// Every model.
    pub const ALL: [CrashModel; 6] = [
        CrashModel::NoLoss,
        CrashModel::LoseUnsynced,
        CrashModel::Pessimistic,
        CrashModel::Ext4Ordered,
        CrashModel::Corrupting,
        CrashModel::UnsyncedGarbage,
    ];

    /// Whether a power cut under this model may leave garbage in a sector.
    pub fn garbles(self) -> bool {
        matches!(self, CrashModel::Corrupting | CrashModel::UnsyncedGarbage)
    }

    /// The snake_case name used in seed files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CrashModel::NoLoss => "no_loss",
            CrashModel::LoseUnsynced => "lose_unsynced",
            CrashModel::Pessimistic => "pessimistic",
            CrashModel::Ext4Ordered => "ext4_ordered",
            CrashModel::Corrupting => "corrupting",
            CrashModel::UnsyncedGarbage => "unsynced_garbage",
        }
    }
}

/// The complete choice a power cut made; [`SimFs::crash_with`] replays it exactly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CrashDecisions {
    /// The model the choice was made under. On replay it bounds the damage the decisions may do
    /// ([`DecisionError::NotAdmitted`]).
    pub model: CrashModel,
    /// One entry per file that had pending data operations; a file left out keeps its durable image.
    pub files: Vec<FileDecision>,
    /// One entry per pending entry operation; an operation left out is dropped.
    pub entries: Vec<EntryDecision>,
}

/// The choice for one file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileDecision {
    /// Inode number.
    pub ino: u64,
    /// Its path when the crash happened (informational).
    pub path: String,
    /// The size is the one after this pending size-changing operation; `None`: the durable size.
    pub size_after: Option<u64>,
    /// Sectors that took a non-durable version; every other touched sector keeps its durable bytes.
    pub sectors: Vec<SectorDecision>,
}

/// The version one sector took.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SectorDecision {
    /// Sector index in the file.
    pub sector: u64,
    /// Which version.
    pub version: SectorVersion,
}

/// A non-durable sector version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectorVersion {
    /// The sector as it was right after the pending operation with this sequence number.
    After(u64),
    /// Garbage bytes generated from this seed (`Corrupting`, `UnsyncedGarbage`).
    Garbage(u64),
}

/// Whether one pending entry operation survived.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryDecision {
    /// The operation's sequence number.
    pub seq: u64,
    /// What it did (informational).
    pub op: String,
    /// Kept (durable after the crash) or dropped.
    pub kept: bool,
}

/// Decisions that do not fit the pending state they are applied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionError {
    /// No file with pending operations has this inode number.
    UnknownFile {
        /// The inode.
        ino: u64,
    },
    /// The size operation is not a pending size change of the file.
    UnknownSizeOp {
        /// The inode.
        ino: u64,
        /// The sequence number given.
        seq: u64,
    },
    /// The sector is listed twice, or no pending operation touched it, or the version's operation did
    /// not touch it.
    BadSector {
        /// The inode.
        ino: u64,
        /// The sector.
        sector: u64,
    },
    /// The file is listed twice.
    DuplicateFile {
        /// The inode.
        ino: u64,
    },
    /// No pending entry operation has this sequence number.
    UnknownEntryOp {
        /// The sequence number given.
        seq: u64,
    },
    /// The decisions fit the pending state but put garbage where their model puts none: anywhere under a
    /// model without garbage, in a sector holding synced data under `UnsyncedGarbage` — damage to what an
    /// fsync made durable, which no software survives. Decisions recorded on one state and replayed on
    /// another (a search's mutant) can do that; the caller lets the model choose instead.
    NotAdmitted {
        /// The model the decisions name.
        model: CrashModel,
    },
}

impl std::fmt::Display for DecisionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "crash decisions do not match the pending state: {self:?}")
    }
}

impl std::error::Error for DecisionError {}

/// What a file's pending operations could leave behind.
#[derive(Debug, Clone)]
pub(crate) struct History {
    pub(crate) durable_len: u64,
    /// (sequence number, size after it) for each operation that changed the size.
    pub(crate) sizes: Vec<(u64, u64)>,
    /// (sector, sequence number) for every pending operation that touched the sector, sorted; the
    /// versions of a sector are its run in this list.
    pub(crate) touches: Vec<(u64, u64)>,
    /// Sequence numbers of the truncations among them (a truncation writes no data, so it cannot tear a
    /// sector into garbage).
    pub(crate) shrinks: Vec<u64>,
}

impl History {
    pub(crate) fn of(file: &FileNode, ss: u64) -> History {
        let mut sizes = Vec::new();
        let mut touches = Vec::new();
        let mut shrinks = Vec::new();
        let mut written = Intervals::default();
        let mut size = file.durable.len;
        for op in &file.pending {
            match &op.kind {
                DataOpKind::Write { offset, data } => {
                    let end = offset + data.len();
                    let (lo, hi) = (offset / ss, (end - 1) / ss);
                    touches.extend((lo..=hi).map(|s| (s, op.seq)));
                    written.insert(lo, hi);
                    if end > size {
                        size = end;
                        sizes.push((op.seq, size));
                    }
                }
                DataOpKind::SetLen { len } => {
                    if *len < size {
                        // A shrink rewrites the sectors past the new end that hold data (durable pages,
                        // or sectors earlier pending writes covered); holes stay zero in every version.
                        let (lo, hi) = (len / ss, (size - 1) / ss);
                        let mut hit = Vec::new();
                        written.covered(lo, hi, &mut hit);
                        for (page, _) in file.durable.pages.range(len / PAGE, (size - 1) / PAGE) {
                            let first = page * PAGE / ss;
                            let last = ((page + 1) * PAGE - 1) / ss;
                            hit.extend(first.max(lo)..=last.min(hi));
                        }
                        hit.sort_unstable();
                        hit.dedup();
                        touches.extend(hit.into_iter().map(|s| (s, op.seq)));
                        shrinks.push(op.seq);
                    }
                    if *len != size {
                        size = *len;
                        sizes.push((op.seq, size));
                    }
                }
            }
        }
        // Appends arrive nearly sorted; the stable sort is adaptive to runs.
        touches.sort();
        History { durable_len: file.durable.len, sizes, touches, shrinks }
    }

    pub(crate) fn size_for(&self, size_after: Option<u64>) -> Option<u64> {
        match size_after {
            None => Some(self.durable_len),
            Some(seq) => self.sizes.iter().find(|(s, _)| *s == seq).map(|(_, size)| *size),
        }
    }

    /// Each touched sector with its versions (sequence numbers ascending), ascending sector.
    pub(crate) fn sectors(&self) -> impl Iterator<Item = (u64, &[(u64, u64)])> {
        self.touches.chunk_by(|a, b| a.0 == b.0).map(|run| (run[0].0, run))
    }

    /// Whether sector `sector` lies wholly past the durable length: it holds no synced data, so garbage
    /// there (`UnsyncedGarbage`) destroys nothing an fsync made durable.
    pub(crate) fn holds_no_synced_data(&self, sector: u64, ss: u64) -> bool {
        sector * ss >= self.durable_len
    }

    /// Whether a pending write (not only a truncation) touched this run of versions.
    pub(crate) fn written(&self, versions: &[(u64, u64)]) -> bool {
        versions.iter().any(|(_, seq)| self.shrinks.binary_search(seq).is_err())
    }

    /// `Ext4Ordered`: for a sector holding appended bytes (past the durable size), the oldest version it
    /// may take when the size after `size_after` survives — the last pending write touching it up to that
    /// size change. `None` where any version, durable included, is possible.
    pub(crate) fn ordered_floor(
        &self,
        sector: u64,
        versions: &[(u64, u64)],
        size_after: Option<u64>,
        ss: u64,
    ) -> Option<u64> {
        let size_point = size_after?;
        if (sector + 1) * ss <= self.durable_len {
            return None;
        }
        versions
            .iter()
            .rev()
            .map(|(_, seq)| *seq)
            .find(|seq| *seq <= size_point && self.shrinks.binary_search(seq).is_err())
    }
}

/// The bytes of one sector (`[start, start + ss)`) right after pending operation `seq`: the durable bytes
/// with the operations of its history up to `seq` applied, into `buf`.
fn sector_version(file: &FileNode, versions: &[(u64, u64)], seq: u64, start: u64, ss: u64, buf: &mut Vec<u8>) {
    buf.resize(ss as usize, 0);
    file.durable.read_raw(start, buf);
    let end = start + ss;
    for (_, v) in versions.iter().take_while(|(_, v)| *v <= seq) {
        let index = file.pending.binary_search_by_key(v, |op| op.seq).expect("a pending operation");
        match &file.pending[index].kind {
            DataOpKind::Write { offset, data } => {
                let lo = start.max(*offset);
                let hi = end.min(offset + data.len());
                if lo < hi {
                    data.read_at(&file.arena, lo - offset, &mut buf[(lo - start) as usize..(hi - start) as usize]);
                }
            }
            DataOpKind::SetLen { len } => {
                if *len < end {
                    buf[(start.max(*len) - start) as usize..].fill(0);
                }
            }
        }
    }
}

/// Closes a set of kept entry operations under the orders a journalling filesystem never breaks, so no
/// crash image loses a file that was durable and never removed. Keeping an operation keeps every earlier
/// pending operation that
/// - links, unlinks or renames one of its inodes, or changes one of its (directory, name) slots (program
///   order per inode and per slot: a file is never in two places, a reused name never loses its first use);
/// - emptied a directory it removes (rmdir, or a rename over an empty directory): what was moved out of the
///   directory must have left before the directory went, or the moved files would vanish with it;
/// - made reachable a directory it moves an inode into (a rename): the destination's own link, and its
///   parents' links, transitively — else a durable file moved into a new directory would vanish.
///
/// A create (or mkdir) kept without its parent directory's link is allowed: the new file was never
/// durable, and POSIX loses it with its directory. One backwards pass suffices.
pub(crate) fn close_entries(ops: &[EntryOp], kept: &mut BTreeSet<u64>) {
    let mut inodes: BTreeSet<Ino> = BTreeSet::new();
    let mut slots: BTreeSet<(Ino, &str)> = BTreeSet::new();
    let mut emptied: BTreeSet<Ino> = BTreeSet::new();
    let mut needs_path: BTreeSet<Ino> = BTreeSet::new();
    for op in ops.iter().rev() {
        let op_inodes = op.inodes();
        let op_slots = op.slots();
        let on_path = op_inodes.iter().flatten().any(|i| needs_path.contains(i));
        let forced = on_path
            || op_inodes.iter().flatten().any(|i| inodes.contains(i))
            || op_slots.iter().flatten().any(|s| slots.contains(s))
            || op.dirs().iter().flatten().any(|d| emptied.contains(d));
        if !forced && !kept.contains(&op.seq) {
            continue;
        }
        kept.insert(op.seq);
        inodes.extend(op_inodes.iter().flatten());
        slots.extend(op_slots.into_iter().flatten());
        emptied.extend(op.removed());
        if on_path || matches!(op.kind, EntryOpKind::Rename { .. }) {
            needs_path.extend(op.destination());
        }
    }
}

/// A uniform integer in `0..n` (`n > 0`), by rejection (no modulo bias).
pub(crate) fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    assert!(n > 0);
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let v = rng.next_u64();
        if v < zone {
            return v % n;
        }
    }
}

/// `true` with probability `num/den`.
pub(crate) fn chance(rng: &mut ChaCha8Rng, num: u64, den: u64) -> bool {
    below(rng, den) < num
}

pub(crate) fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

impl SimFs {
    /// Files with pending data operations and their histories, ascending inode.
    pub(crate) fn histories(&self) -> BTreeMap<Ino, History> {
        let ss = self.config.sector_size;
        self.live_inodes()
            .filter_map(|(ino, inode)| match &inode.node {
                Node::File(f) if !f.pending.is_empty() => Some((ino, History::of(f, ss))),
                _ => None,
            })
            .collect()
    }

    /// Metadata operations in program order (entry operations and size changes of every file), and how
    /// many of them `Ext4Ordered` must keep (those before the last successful sync call).
    pub(crate) fn metadata_order(&self, histories: &BTreeMap<Ino, History>) -> (Vec<u64>, usize) {
        let mut order: Vec<u64> = self.entry_ops.iter().map(|op| op.seq).collect();
        for h in histories.values() {
            order.extend(h.sizes.iter().map(|(seq, _)| *seq));
        }
        order.sort_unstable();
        let forced = order.iter().take_while(|seq| **seq < self.last_sync_seq).count();
        (order, forced)
    }

    /// Power loss now under `model`: chooses with the filesystem's rng, applies, and returns the
    /// (normalised) decisions. The node is immediately usable again, with no open handles.
    pub fn crash(&mut self, model: CrashModel) -> CrashDecisions {
        let histories = self.histories();
        let decisions = self.choose(model, &histories);
        self.apply_crash(decisions, &histories).expect("freshly chosen decisions fit the pending state")
    }

    /// `count` crash images `model` chooses at random for the current pending state, drawn from a rng
    /// seeded with `seed` (the filesystem's own rng is left as it was), labelled `random K/count` and
    /// normalised. What a sweep adds to the enumerated images: per-sector choices the enumerator never
    /// makes (a torn write keeping a middle sector but not its neighbours, say).
    pub fn sample_crash_images(&mut self, model: CrashModel, count: u64, seed: u64) -> Vec<super::CrashImage> {
        let histories = self.histories();
        let own = std::mem::replace(&mut self.rng, ChaCha8Rng::seed_from_u64(seed));
        let images = (1..=count)
            .map(|k| {
                let chosen = self.choose(model, &histories);
                let decisions = self.normalize_decisions(&chosen).expect("freshly chosen decisions fit");
                super::CrashImage { label: format!("random {k}/{count}"), decisions }
            })
            .collect();
        self.rng = own;
        images
    }

    fn choose(&mut self, model: CrashModel, histories: &BTreeMap<Ino, History>) -> CrashDecisions {
        let ss = self.config.sector_size;
        let (meta_order, forced) = self.metadata_order(histories);
        let meta_kept: BTreeSet<u64> = match model {
            CrashModel::Ext4Ordered => {
                let p = forced + below(&mut self.rng, (meta_order.len() - forced) as u64 + 1) as usize;
                meta_order[..p].iter().copied().collect()
            }
            _ => BTreeSet::new(),
        };
        let mut files = Vec::new();
        for (ino, h) in histories {
            let size_after = match model {
                CrashModel::NoLoss => h.sizes.last().map(|(seq, _)| *seq),
                CrashModel::LoseUnsynced => None,
                CrashModel::Pessimistic | CrashModel::Corrupting | CrashModel::UnsyncedGarbage => {
                    let i = below(&mut self.rng, h.sizes.len() as u64 + 1) as usize;
                    i.checked_sub(1).map(|i| h.sizes[i].0)
                }
                CrashModel::Ext4Ordered => {
                    h.sizes.iter().rev().find(|(seq, _)| meta_kept.contains(seq)).map(|(s, _)| *s)
                }
            };
            let mut sectors = Vec::new();
            for (sector, versions) in h.sectors() {
                let seq_at = |i: usize| versions[i].1;
                let version = match model {
                    CrashModel::NoLoss => Some(SectorVersion::After(seq_at(versions.len() - 1))),
                    CrashModel::LoseUnsynced => None,
                    CrashModel::Pessimistic | CrashModel::Corrupting | CrashModel::UnsyncedGarbage => {
                        let may_garble = match model {
                            CrashModel::Corrupting => h.written(versions),
                            CrashModel::UnsyncedGarbage => h.written(versions) && h.holds_no_synced_data(sector, ss),
                            _ => false,
                        };
                        if may_garble && chance(&mut self.rng, 1, 8) {
                            Some(SectorVersion::Garbage(self.rng.next_u64()))
                        } else {
                            let i = below(&mut self.rng, versions.len() as u64 + 1) as usize;
                            i.checked_sub(1).map(|i| SectorVersion::After(seq_at(i)))
                        }
                    }
                    CrashModel::Ext4Ordered => match h.ordered_floor(sector, versions, size_after, ss) {
                        // Appended data: data=ordered writes it before the size that exposes it, so the
                        // sector holds at least what the last write before the surviving size put there.
                        Some(floor) => {
                            let first = versions.partition_point(|(_, seq)| *seq < floor);
                            let i = first + below(&mut self.rng, (versions.len() - first) as u64) as usize;
                            Some(SectorVersion::After(seq_at(i)))
                        }
                        None => {
                            let i = below(&mut self.rng, versions.len() as u64 + 1) as usize;
                            i.checked_sub(1).map(|i| SectorVersion::After(seq_at(i)))
                        }
                    },
                };
                if let Some(version) = version {
                    sectors.push(SectorDecision { sector, version });
                }
            }
            files.push(FileDecision { ino: *ino, path: self.inode_path(*ino), size_after, sectors });
        }
        let mut entries = Vec::new();
        for op in &self.entry_ops {
            let kept = match model {
                CrashModel::NoLoss => true,
                CrashModel::LoseUnsynced => false,
                CrashModel::Pessimistic | CrashModel::Corrupting | CrashModel::UnsyncedGarbage => {
                    chance(&mut self.rng, 1, 2)
                }
                CrashModel::Ext4Ordered => meta_kept.contains(&op.seq),
            };
            entries.push(EntryDecision { seq: op.seq, op: String::new(), kept });
        }
        CrashDecisions { model, files, entries }
    }

    /// Checks decisions against the pending state and normalises them: entries listed for every pending
    /// entry operation, kept flags closed under per-inode order, files and sectors sorted.
    pub fn normalize_decisions(&self, decisions: &CrashDecisions) -> Result<CrashDecisions, DecisionError> {
        let histories = self.histories();
        self.normalize_with(decisions.clone(), &histories)
    }

    pub(crate) fn normalize_with(
        &self,
        decisions: CrashDecisions,
        histories: &BTreeMap<Ino, History>,
    ) -> Result<CrashDecisions, DecisionError> {
        let mut files: Vec<FileDecision> = Vec::new();
        let mut seen_files = BTreeSet::new();
        for fd in decisions.files {
            let h = histories.get(&fd.ino).ok_or(DecisionError::UnknownFile { ino: fd.ino })?;
            if !seen_files.insert(fd.ino) {
                return Err(DecisionError::DuplicateFile { ino: fd.ino });
            }
            if h.size_for(fd.size_after).is_none() {
                return Err(DecisionError::UnknownSizeOp { ino: fd.ino, seq: fd.size_after.unwrap_or(0) });
            }
            let mut sectors = fd.sectors;
            if !sectors.is_sorted() {
                sectors.sort();
            }
            // Both lists are sorted by sector: one merge walk validates every decision.
            let mut runs = h.sectors().peekable();
            for (i, sd) in sectors.iter().enumerate() {
                let bad = DecisionError::BadSector { ino: fd.ino, sector: sd.sector };
                if i > 0 && sectors[i - 1].sector == sd.sector {
                    return Err(bad);
                }
                while runs.next_if(|(sector, _)| *sector < sd.sector).is_some() {}
                let Some((_, versions)) = runs.next_if(|(sector, _)| *sector == sd.sector) else {
                    return Err(bad);
                };
                if let SectorVersion::After(seq) = sd.version
                    && !versions.iter().any(|(_, v)| *v == seq)
                {
                    return Err(bad);
                }
            }
            files.push(FileDecision { ino: fd.ino, path: self.inode_path(fd.ino), size_after: fd.size_after, sectors });
        }
        files.sort();
        let pending: BTreeSet<u64> = self.entry_ops.iter().map(|op| op.seq).collect();
        let mut kept = BTreeSet::new();
        for e in &decisions.entries {
            if !pending.contains(&e.seq) {
                return Err(DecisionError::UnknownEntryOp { seq: e.seq });
            }
            if e.kept {
                kept.insert(e.seq);
            }
        }
        close_entries(&self.entry_ops, &mut kept);
        let entries = self
            .entry_ops
            .iter()
            .map(|op| EntryDecision { seq: op.seq, op: op.describe(self), kept: kept.contains(&op.seq) })
            .collect();
        Ok(CrashDecisions { model: decisions.model, files, entries })
    }

    /// Power loss with given decisions (replay). On success returns the normalised decisions applied;
    /// on mismatch — decisions that do not fit the pending state, or damage more than their model may
    /// ([`DecisionError::NotAdmitted`]) — nothing changes.
    pub fn crash_with(&mut self, decisions: &CrashDecisions) -> Result<CrashDecisions, DecisionError> {
        let histories = self.histories();
        let normalized = self.normalize_with(decisions.clone(), &histories)?;
        if !self.admits(&normalized, &histories) {
            return Err(DecisionError::NotAdmitted { model: decisions.model });
        }
        self.apply_crash(normalized, &histories)
    }

    fn apply_crash(
        &mut self,
        decisions: CrashDecisions,
        histories: &BTreeMap<Ino, History>,
    ) -> Result<CrashDecisions, DecisionError> {
        let decisions = self.normalize_with(decisions, histories)?;
        let ss = self.config.sector_size;
        // The machine restarts: a filesystem a failed directory fsync shut down mounts again.
        self.shut_down = false;

        // Everything was validated: from here on nothing fails. The image of a file is built in its
        // cache (which equals durable + all pending, and is discarded anyway), so only sectors that did
        // not take their latest version cost anything; a stale cache (fsyncgate) starts from durable.
        let by_ino: BTreeMap<Ino, &FileDecision> = decisions.files.iter().map(|f| (f.ino, f)).collect();
        let mut buf = Vec::new();
        for (ino, h) in histories {
            let Some(fd) = by_ino.get(ino) else {
                continue; // The durable image stands.
            };
            let size = h.size_for(fd.size_after).expect("validated");
            let file = self.file_mut(*ino);
            let from_cache = !file.stale_cache;
            let mut image =
                if from_cache { std::mem::replace(&mut file.cached, Content::empty()) } else { file.durable.clone() };
            let file = &*file;
            let mut chosen = fd.sectors.iter().peekable();
            for (sector, versions) in h.sectors() {
                let decision = chosen.next_if(|sd| sd.sector == sector).map(|sd| sd.version);
                let latest = versions.last().expect("non-empty").1;
                let start = sector * ss;
                match decision {
                    Some(SectorVersion::After(seq)) if seq == latest && from_cache => {}
                    Some(SectorVersion::Garbage(seed)) => image.write_raw(start, &garbage(seed, ss as usize)),
                    Some(SectorVersion::After(seq)) => {
                        sector_version(file, versions, seq, start, ss, &mut buf);
                        image.write_raw(start, &buf);
                    }
                    None if from_cache && file.durable.pages.get(start / PAGE).is_none() => {
                        image.zero_raw(start, ss as usize);
                    }
                    None if from_cache => {
                        buf.resize(ss as usize, 0);
                        file.durable.read_raw(start, &mut buf);
                        image.write_raw(start, &buf);
                    }
                    None => {}
                }
            }
            image.set_len_raw(size);
            let file = self.file_mut(*ino);
            if !file.overlays.is_empty() {
                // A sector that took a pending version was rewritten on the medium: its faults heal.
                let rewritten: BTreeSet<u64> = fd.sectors.iter().map(|s| s.sector).collect();
                file.overlays.retain(|o| !rewritten.contains(&o.sector) && o.sector < size.div_ceil(ss));
            }
            file.durable = image;
        }
        let mut maps: BTreeMap<Ino, BTreeMap<String, Ino>> = BTreeMap::new();
        let kept: BTreeSet<u64> = decisions.entries.iter().filter(|e| e.kept).map(|e| e.seq).collect();
        for op in self.entry_ops.iter().filter(|op| kept.contains(&op.seq)) {
            for dir in op.dirs().into_iter().flatten() {
                maps.entry(dir).or_insert_with(|| self.dir(dir).durable.clone());
            }
            op.apply_to(&mut maps);
        }

        for (dir, map) in maps {
            self.dir_mut(dir).durable = map;
        }
        self.entry_ops.clear();
        self.reset_to_durable();
        Ok(decisions)
    }

    /// After a crash: only what durable entries reach from the root survives; caches equal disk.
    fn reset_to_durable(&mut self) {
        self.fds.clear();
        let mut reachable = vec![false; self.inodes.len()];
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if std::mem::replace(&mut reachable[ino as usize], true) {
                continue;
            }
            if let Node::Dir(d) = &self.inode(ino).node {
                stack.extend(d.durable.values().copied());
            }
        }
        for (ino, alive) in reachable.into_iter().enumerate() {
            if self.inodes[ino].is_none() {
                continue;
            }
            if !alive {
                self.free_inode(ino as Ino);
                continue;
            }
            let inode = self.inode_mut(ino as Ino);
            inode.open_fds = 0;
            match &mut inode.node {
                Node::Dir(d) => {
                    d.cached = d.durable.clone();
                    d.stale_entries = false;
                }
                Node::File(f) => {
                    f.reveal_overlays();
                    f.cached = f.durable.clone();
                    f.pending.clear();
                    f.clear_arena();
                    f.stale_cache = false;
                    f.clear_reserved();
                }
            }
        }
        self.recount_usage();
    }
}
