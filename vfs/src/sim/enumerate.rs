//! The distinct crash images of the current pending state, for exhaustive crash-point sweeps (ALICE's
//! exploration inside a simulation).
//!
//! Candidates, over all pending operations (data and entry) in program order: nothing kept, everything
//! kept, each prefix, each "all but one", each torn last write of every file (the write's first `j`
//! sectors reached the disk, the rest did not; under `Corrupting` also with sector `j` garbage; or its
//! last `j` sectors did and the first did not, as a disk may write a request's sectors in any order), and
//! "metadata, no data": every entry operation and size change kept, no pending data — what delayed
//! allocation leaves (XFS, ext4 `data=writeback`): files of the right size reading as zeros. Each
//! candidate becomes a decision vector, is normalised (per-inode order), filtered by what the model
//! admits, and deduplicated; the result is in a fixed order, so a sweep is reproducible.

use super::Ino;
use super::SimFs;
use super::crash::{CrashDecisions, CrashModel, EntryDecision, FileDecision, History, SectorDecision, SectorVersion};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One crash image of the enumerator: a label a human can read and the decisions that produce it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashImage {
    /// `none`, `all`, `metadata, no data`, `prefix<=N`, `omit N`, `torn N j/m`, `torn N j/m garbage`,
    /// `torn N last j/m`; `random K/M` from [`SimFs::sample_crash_images`].
    pub label: String,
    /// Apply with [`SimFs::crash_with`].
    pub decisions: CrashDecisions,
}

/// A write torn at a sector boundary: its sectors in `lost_from..lost_to` did not reach the disk (the
/// first of them holds garbage with `garbage`), the rest did.
#[derive(Clone, Copy)]
struct Tear {
    seq: u64,
    lost_from: u64,
    lost_to: u64,
    garbage: bool,
}

impl SimFs {
    /// The distinct crash images `model` admits for the current pending state (see the module docs).
    pub fn enumerate_crash_images(&self, model: CrashModel) -> Vec<CrashImage> {
        let histories = self.histories();
        let mut units: Vec<u64> = self.entry_ops.iter().map(|op| op.seq).collect();
        for (ino, _) in histories.iter() {
            units.extend(self.file(*ino).pending.iter().map(|op| op.seq));
        }
        units.sort_unstable();
        let all: BTreeSet<u64> = units.iter().copied().collect();

        let mut candidates: Vec<(String, BTreeSet<u64>, Option<Tear>)> =
            vec![("none".to_string(), BTreeSet::new(), None), ("all".to_string(), all.clone(), None)];
        let metadata_only = self.metadata_only(model, &histories);
        for i in 1..units.len() {
            candidates.push((format!("prefix<={}", units[i - 1]), units[..i].iter().copied().collect(), None));
        }
        for seq in &units {
            let mut kept = all.clone();
            kept.remove(seq);
            candidates.push((format!("omit {seq}"), kept, None));
        }
        let ss = self.config.sector_size;
        for ino in histories.keys() {
            let last_write = self
                .file(*ino)
                .pending
                .iter()
                .rev()
                .find_map(|op| op.kind.write_extent().map(|(offset, len)| (op.seq, offset, len)));
            let Some((seq, offset, len)) = last_write else { continue };
            let first_sector = offset / ss;
            let count = (offset + len - 1) / ss - first_sector + 1;
            let end = first_sector + count;
            for keep in 1..count {
                for garbage in [false, true] {
                    let garbles_synced = !histories[ino].holds_no_synced_data(first_sector + keep, ss);
                    if garbage && (model == CrashModel::UnsyncedGarbage && garbles_synced || !model.garbles()) {
                        continue;
                    }
                    let suffix = if garbage { " garbage" } else { "" };
                    candidates.push((
                        format!("torn {seq} {keep}/{count}{suffix}"),
                        all.clone(),
                        Some(Tear { seq, lost_from: first_sector + keep, lost_to: end, garbage }),
                    ));
                }
            }
            // Sectors of one write reach the disk in no set order: the last ones, not the first.
            for keep in 1..count {
                candidates.push((
                    format!("torn {seq} last {keep}/{count}"),
                    all.clone(),
                    Some(Tear { seq, lost_from: first_sector, lost_to: end - keep, garbage: false }),
                ));
            }
        }

        let normal = |raw| self.normalize_with(raw, &histories).expect("enumerated decisions fit the pending state");
        let metadata_only = ("metadata, no data".to_string(), normal(metadata_only));
        let reference_none = normal(self.decisions_for(model, &histories, &BTreeSet::new(), None));
        let reference_all = normal(self.decisions_for(model, &histories, &all, None));
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut decided: Vec<(String, CrashDecisions)> = candidates
            .into_iter()
            .map(|(label, kept, tear)| (label, normal(self.decisions_for(model, &histories, &kept, tear))))
            .collect();
        decided.insert(2.min(decided.len()), metadata_only);
        for (label, decisions) in decided {
            let admitted = match model {
                CrashModel::NoLoss => decisions == reference_all,
                CrashModel::LoseUnsynced => decisions == reference_none,
                CrashModel::Pessimistic => !has_garbage(&decisions),
                CrashModel::Corrupting => true,
                CrashModel::UnsyncedGarbage => garbage_only_unsynced(&decisions, &histories, ss),
                CrashModel::Ext4Ordered => self.ext4_admits(&decisions, &histories),
            };
            if admitted && seen.insert(decisions.clone()) {
                out.push(CrashImage { label, decisions });
            }
        }
        out
    }

    /// Decisions for "every entry operation and size change reached the disk, no pending data did".
    fn metadata_only(&self, model: CrashModel, histories: &BTreeMap<Ino, History>) -> CrashDecisions {
        let files = histories
            .iter()
            .map(|(ino, h)| FileDecision {
                ino: *ino,
                path: String::new(),
                size_after: h.sizes.last().map(|(seq, _)| *seq),
                sectors: Vec::new(),
            })
            .collect();
        let entries =
            self.entry_ops.iter().map(|op| EntryDecision { seq: op.seq, op: String::new(), kept: true }).collect();
        CrashDecisions { model, files, entries }
    }

    /// Decisions for "exactly the operations in `kept` reached the disk", optionally with one torn write.
    fn decisions_for(
        &self,
        model: CrashModel,
        histories: &BTreeMap<Ino, History>,
        kept: &BTreeSet<u64>,
        tear: Option<Tear>,
    ) -> CrashDecisions {
        let mut files = Vec::new();
        for (ino, h) in histories {
            let size_after = h.sizes.iter().rev().find(|(seq, _)| kept.contains(seq)).map(|(s, _)| *s);
            let mut sectors = Vec::new();
            for (sector, versions) in h.sectors() {
                let mut version = None;
                for (_, seq) in versions.iter().rev() {
                    if !kept.contains(seq) {
                        continue;
                    }
                    if let Some(t) = tear
                        && t.seq == *seq
                        && (t.lost_from..t.lost_to).contains(&sector)
                    {
                        if t.garbage && sector == t.lost_from {
                            version = Some(SectorVersion::Garbage(t.seq ^ (sector << 32)));
                            break;
                        }
                        continue;
                    }
                    version = Some(SectorVersion::After(*seq));
                    break;
                }
                if let Some(version) = version {
                    sectors.push(SectorDecision { sector, version });
                }
            }
            files.push(FileDecision { ino: *ino, path: String::new(), size_after, sectors });
        }
        let entries = self
            .entry_ops
            .iter()
            .map(|op| EntryDecision { seq: op.seq, op: String::new(), kept: kept.contains(&op.seq) })
            .collect();
        CrashDecisions { model, files, entries }
    }

    /// Whether replayed `decisions` (normalised) damage no more than their model may: garbage only where
    /// the model puts it (`Corrupting` anywhere, `UnsyncedGarbage` only in sectors holding no synced data,
    /// the others nowhere). Which pending operations they keep is not checked against the model: a sweep's
    /// images are chosen under the sweep's model (pessimistic by default) and replayed in worlds that name
    /// another, and shrunk images keep less than their model chose — both on purpose.
    pub(crate) fn admits(&self, decisions: &CrashDecisions, histories: &BTreeMap<Ino, History>) -> bool {
        match decisions.model {
            CrashModel::Corrupting => true,
            CrashModel::UnsyncedGarbage => garbage_only_unsynced(decisions, histories, self.config.sector_size),
            CrashModel::NoLoss | CrashModel::LoseUnsynced | CrashModel::Pessimistic | CrashModel::Ext4Ordered => {
                !has_garbage(decisions)
            }
        }
    }

    /// `Ext4Ordered`: kept metadata is a prefix of program order covering the forced part, and no
    /// appended sector inside the surviving size reads as the old zeros.
    pub(crate) fn ext4_admits(&self, decisions: &CrashDecisions, histories: &BTreeMap<Ino, History>) -> bool {
        let (order, forced) = self.metadata_order(histories);
        let mut kept_meta: BTreeSet<u64> = decisions.entries.iter().filter(|e| e.kept).map(|e| e.seq).collect();
        let ss = self.config.sector_size;
        let by_ino: BTreeMap<Ino, &FileDecision> = decisions.files.iter().map(|f| (f.ino, f)).collect();
        for (ino, h) in histories {
            let fd = by_ino.get(ino);
            let size_after = fd.and_then(|f| f.size_after);
            if let Some(at) = size_after {
                kept_meta.extend(h.sizes.iter().map(|(s, _)| *s).filter(|s| *s <= at));
            }
            let size = h.size_for(size_after).expect("validated");
            let chosen: BTreeMap<u64, SectorVersion> =
                fd.map(|f| f.sectors.iter().map(|s| (s.sector, s.version)).collect()).unwrap_or_default();
            for (sector, versions) in h.sectors() {
                if sector * ss >= size {
                    continue;
                }
                if let Some(floor) = h.ordered_floor(sector, versions, size_after, ss) {
                    match chosen.get(&sector) {
                        Some(SectorVersion::After(seq)) if *seq >= floor => {}
                        _ => return false,
                    }
                }
            }
        }
        let n = kept_meta.len();
        n >= forced && order[..n].iter().copied().collect::<BTreeSet<u64>>() == kept_meta
    }
}

/// Whether every garbage sector of `decisions` held no synced data (what `UnsyncedGarbage` admits).
fn garbage_only_unsynced(decisions: &CrashDecisions, histories: &BTreeMap<Ino, History>, ss: u64) -> bool {
    decisions.files.iter().all(|f| {
        f.sectors.iter().all(|s| match s.version {
            SectorVersion::Garbage(_) => histories.get(&f.ino).is_some_and(|h| h.holds_no_synced_data(s.sector, ss)),
            SectorVersion::After(_) => true,
        })
    })
}

fn has_garbage(decisions: &CrashDecisions) -> bool {
    decisions.files.iter().any(|f| f.sectors.iter().any(|s| matches!(s.version, SectorVersion::Garbage(_))))
}
