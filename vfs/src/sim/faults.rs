//! Faults other than the crash model itself: crash points (power cuts at a chosen call), injected
//! `ENOSPC`/`EIO`, fsync failure with fsyncgate semantics, and media faults kept as overlays.
//!
//! Media faults never modify the durable image: they are overlays per sector, so they can be listed,
//! replayed and removed, and a later durable write of the sector heals them (as a rewrite heals a latent
//! sector error on a real disk). An overlay shows only on a *clean* sector — one no pending operation
//! touches — because a dirty sector is read from the page cache, not the medium. A lost or misdirected
//! write strikes at an fsync, while the page cache still holds what was written, so it becomes visible
//! only once the cache is gone (power cut, `drop_caches`); injected bit flips and latent sector errors
//! are visible at once (the simulator injects them on a cold cache, typically at reboot).

use super::crash::{CrashDecisions, CrashModel, DecisionError};
use super::{DataOpKind, FileNode, Ino, Node, SimFs};
use crate::path::{self, glob_match};
use crate::{ErrorKind, FsError, OpKind};
use rand_chacha::rand_core::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where a power cut fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPoint {
    /// Right after call number `seq` completes (its result is returned; everything after fails).
    AfterOp {
        /// The call's sequence number.
        seq: u64,
    },
    /// Just before the first call after `after_seq` whose kind matches (any kind if `None`) and whose
    /// path — or rename target — matches `path_glob` (see [`crate::glob_match`]). That call does not
    /// happen and fails with [`ErrorKind::PoweredOff`].
    BeforeOp {
        /// The call kind, or any.
        kind: Option<OpKind>,
        /// Glob over the normalised path.
        path_glob: String,
        /// Only calls with a larger sequence number match.
        after_seq: u64,
    },
    /// Right after the first call after `after_seq` whose kind matches (any kind if `None`) and whose
    /// path — or rename target — matches `path_glob` completes (its result is returned; everything after
    /// fails): a cut between a rename and the directory fsync that would make it durable, say.
    AfterMatchingOp {
        /// The call kind, or any.
        kind: Option<OpKind>,
        /// Glob over the normalised path.
        path_glob: String,
        /// Only calls with a larger sequence number match.
        after_seq: u64,
    },
}

/// A held power cut that fired: where, the crash not applied yet.
#[derive(Debug, Clone)]
pub(crate) struct HeldCut {
    seq: u64,
    kind: OpKind,
    path: String,
    trigger: String,
}

#[derive(Debug, Clone)]
pub(crate) struct ArmedCut {
    point: CrashPoint,
    model: CrashModel,
    replay: Option<CrashDecisions>,
    /// Fire without applying a crash: the caller chooses the image later ([`SimFs::release_held_cut`]).
    hold: bool,
}

/// What a power cut did: where it fired and the decisions that made the crash image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerCut {
    /// Sequence number of the call at which it fired.
    pub seq: u64,
    /// That call's kind.
    pub kind: OpKind,
    /// That call's (normalised) path.
    pub path: String,
    /// Human description of the trigger.
    pub trigger: String,
    /// The (normalised) decisions applied; replaying them gives the same image.
    pub decisions: CrashDecisions,
    /// Set when replay decisions no longer matched the pending state and the model chose afresh.
    pub replay_mismatch: Option<DecisionError>,
}

/// An injected error: the next `times` calls matching it fail with `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRule {
    /// The call kind, or any.
    pub kind: Option<OpKind>,
    /// Glob over the normalised path (or rename target).
    pub path_glob: String,
    /// Typically [`ErrorKind::NoSpace`] or [`ErrorKind::Io`]. On `fsync`/`fdatasync`/directory fsync the
    /// failure has fsyncgate semantics (see [`FaultEvent::SyncFailed`]); on other calls nothing happens.
    pub error: ErrorKind,
    /// Only calls with a larger sequence number match.
    pub after_seq: u64,
    /// How many calls fail before the rule is spent.
    pub times: u32,
}

/// Identifies one media fault (all its sectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MediaFaultId(pub u64);

/// The media fault classes of docs/filesystem-model.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaFaultKind {
    /// A flipped bit in durable data.
    BitFlip,
    /// A sector whose reads fail with `EIO` until it is rewritten.
    LatentSectorError,
    /// A write the disk acknowledged but never stored: the sectors keep their previous content.
    LostWrite,
    /// A write stored at the wrong place: the intended sectors keep their old content and other sectors
    /// of the file are overwritten with the data.
    MisdirectedWrite,
}

/// One sector of a media fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaSector {
    /// Sector index in the file.
    pub sector: u64,
    /// Bytes the medium returns instead of the true ones, at a byte offset within the sector; `None`
    /// means the sector is unreadable (`EIO`).
    pub patch: Option<(u64, Vec<u8>)>,
}

/// A media fault as listed, replayed and removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaFault {
    /// Identity.
    pub id: MediaFaultId,
    /// Class.
    pub kind: MediaFaultKind,
    /// The file (current path of its inode).
    pub path: String,
    /// Affected sectors.
    pub sectors: Vec<MediaSector>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overlay {
    pub(crate) id: MediaFaultId,
    pub(crate) kind: MediaFaultKind,
    pub(crate) sector: u64,
    pub(crate) patch: Option<(u64, Vec<u8>)>,
    /// False while the page cache still holds the true bytes.
    pub(crate) visible: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct ArmedMediaFault {
    kind: MediaFaultKind,
    path_glob: String,
}

/// Faults as they happened, for the simulator's trace (drain with [`SimFs::take_fault_events`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEvent {
    /// An [`ErrorRule`] failed a call.
    ErrorInjected {
        /// The call's sequence number.
        seq: u64,
        /// The call.
        kind: OpKind,
        /// Its path.
        path: String,
        /// The error returned.
        error: ErrorKind,
    },
    /// An fsync failed with fsyncgate semantics: `persisted` operations reached the disk, `lost` ones
    /// did not, and neither is pending any more (the next fsync succeeds without them).
    SyncFailed {
        /// The call's sequence number.
        seq: u64,
        /// The file or directory.
        path: String,
        /// Sequence numbers of the operations that did reach the disk.
        persisted: Vec<u64>,
        /// Sequence numbers of the operations silently dropped.
        lost: Vec<u64>,
    },
    /// An armed lost or misdirected write struck a successful fsync.
    MediaFaultStruck {
        /// The fsync's sequence number.
        seq: u64,
        /// The fault now in force.
        fault: MediaFault,
    },
}

impl SimFs {
    // ----- crash points -----

    /// Arms a power cut at `point`, applying `model` when it fires. Replaces any armed cut.
    pub fn arm_power_cut(&mut self, point: CrashPoint, model: CrashModel) {
        self.armed_cut = Some(ArmedCut { point, model, replay: None, hold: false });
    }

    /// Arms a power cut that, when it fires, powers the node off but leaves the pending state as it was,
    /// so the caller can enumerate the crash images of that very moment
    /// ([`SimFs::enumerate_crash_images`]) and apply one with [`SimFs::release_held_cut`] — on this
    /// filesystem or on clones of it. How a sweep explores every image of one crash point.
    pub fn arm_power_cut_held(&mut self, point: CrashPoint) {
        self.armed_cut = Some(ArmedCut { point, model: CrashModel::NoLoss, replay: None, hold: true });
    }

    /// The call at which a held power cut fired and has not been released, if any.
    pub fn held_cut(&self) -> Option<u64> {
        self.held_cut.as_ref().map(|h| h.seq)
    }

    /// Applies `decisions` as the crash image of the held cut that fired, and reports it like any other
    /// cut ([`SimFs::take_power_cuts`]). On a mismatch nothing changes and the cut stays held.
    ///
    /// # Panics
    /// If no held cut fired.
    pub fn release_held_cut(&mut self, decisions: &CrashDecisions) -> Result<CrashDecisions, DecisionError> {
        assert!(self.held_cut.is_some(), "release_held_cut: no held power cut fired");
        let applied = self.crash_with(decisions)?;
        let HeldCut { seq, kind, path, trigger } = self.held_cut.take().expect("checked");
        self.power_cuts.push(PowerCut { seq, kind, path, trigger, decisions: applied.clone(), replay_mismatch: None });
        Ok(applied)
    }

    /// Arms a power cut that replays recorded decisions when it fires.
    pub fn arm_power_cut_replay(&mut self, point: CrashPoint, decisions: CrashDecisions) {
        self.armed_cut = Some(ArmedCut { point, model: decisions.model, replay: Some(decisions), hold: false });
    }

    /// Removes an armed power cut that has not fired.
    pub fn disarm_power_cut(&mut self) {
        self.armed_cut = None;
    }

    /// Whether a power cut fired and the node has not been powered on since.
    pub fn is_powered_off(&self) -> bool {
        self.powered_off
    }

    /// Powers the node back on after a cut (the disk holds the crash image; no handles are open).
    ///
    /// # Panics
    /// If a held cut fired and was not released.
    pub fn power_on(&mut self) {
        assert!(self.held_cut.is_none(), "power_on: release the held power cut first");
        self.powered_off = false;
    }

    /// Reports of the power cuts that fired since the last call.
    pub fn take_power_cuts(&mut self) -> Vec<PowerCut> {
        std::mem::take(&mut self.power_cuts)
    }

    pub(super) fn before_cut_matches(&self, seq: u64, kind: OpKind, path: &str, to: Option<&str>) -> bool {
        match &self.armed_cut {
            Some(ArmedCut { point: CrashPoint::BeforeOp { kind: want, path_glob, after_seq }, .. }) => {
                seq > *after_seq && want.is_none_or(|k| k == kind) && paths_match(path_glob, path, to)
            }
            _ => false,
        }
    }

    pub(super) fn after_cut_matches(&self, seq: u64, kind: OpKind, path: &str, to: Option<&str>) -> bool {
        match &self.armed_cut {
            Some(ArmedCut { point: CrashPoint::AfterOp { seq: at }, .. }) => seq >= *at,
            Some(ArmedCut { point: CrashPoint::AfterMatchingOp { kind: want, path_glob, after_seq }, .. }) => {
                seq > *after_seq && want.is_none_or(|k| k == kind) && paths_match(path_glob, path, to)
            }
            _ => false,
        }
    }

    pub(super) fn fire_power_cut(&mut self, seq: u64, kind: OpKind, path: &str, trigger: String) {
        let armed = self.armed_cut.take().expect("an armed cut fired");
        if armed.hold {
            self.powered_off = true;
            self.held_cut = Some(HeldCut { seq, kind, path: path::normalize(path), trigger });
            return;
        }
        let (decisions, replay_mismatch) = match armed.replay {
            Some(replay) => match self.crash_with(&replay) {
                Ok(applied) => (applied, None),
                Err(mismatch) => (self.crash(armed.model), Some(mismatch)),
            },
            None => (self.crash(armed.model), None),
        };
        self.powered_off = true;
        let path = path::normalize(path);
        self.power_cuts.push(PowerCut { seq, kind, path, trigger, decisions, replay_mismatch });
    }

    // ----- injected errors and fsyncgate -----

    /// Adds an error rule.
    pub fn inject_error(&mut self, rule: ErrorRule) {
        self.error_rules.push(rule);
    }

    /// Removes every error rule.
    pub fn clear_error_rules(&mut self) {
        self.error_rules.clear();
    }

    /// Removes the error rules `which` selects (a sticky failure that is over, say).
    pub fn remove_error_rules(&mut self, which: impl Fn(&ErrorRule) -> bool) {
        self.error_rules.retain(|rule| !which(rule));
    }

    /// From now on a failed directory fsync shuts the filesystem down, as ext4 does when its journal
    /// cannot commit (jbd2 aborts and the filesystem is remounted read-only) and XFS when its log write
    /// fails: every later call that would change or sync the disk fails with `EIO` (reads still work)
    /// until power is cut ([`SimFs::crash`]). Without it a failed directory fsync only forgets the
    /// directory's pending operations (the page cache still shows them) and the filesystem goes on —
    /// a state in which no program can know which of its names are durable.
    pub fn shut_down_on_dir_sync_failure(&mut self, on: bool) {
        self.shutdown_on_dir_sync_failure = on;
    }

    /// Whether a failed directory fsync shut the filesystem down (until the next power cut).
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// While paused, no error rule matches (the rules stay, nothing is spent): an observer's own reads —
    /// a simulator's checkers — must not draw the failures meant for the system under test.
    pub fn pause_error_rules(&mut self, paused: bool) {
        self.error_rules_paused = paused;
    }

    /// Faults that happened since the last [`SimFs::take_fault_events`], left in place.
    pub fn fault_events(&self) -> &[FaultEvent] {
        &self.fault_events
    }

    /// Faults that happened since the last call.
    pub fn take_fault_events(&mut self) -> Vec<FaultEvent> {
        std::mem::take(&mut self.fault_events)
    }

    pub(super) fn take_injected_error(
        &mut self,
        seq: u64,
        kind: OpKind,
        path: &str,
        to: Option<&str>,
    ) -> Option<ErrorKind> {
        if self.error_rules.is_empty() || self.error_rules_paused {
            return None;
        }
        let index = self.error_rules.iter().position(|rule| {
            seq > rule.after_seq && rule.kind.is_none_or(|k| k == kind) && paths_match(&rule.path_glob, path, to)
        })?;
        let rule = &mut self.error_rules[index];
        let error = rule.error;
        rule.times = rule.times.saturating_sub(1);
        if rule.times == 0 {
            self.error_rules.remove(index);
        }
        self.fault_events.push(FaultEvent::ErrorInjected { seq, kind, path: path::normalize(path), error });
        Some(error)
    }

    /// fsyncgate: some pending operations reach the disk, the rest are dropped without being pending any
    /// more; the page cache keeps showing them until `drop_caches` or a power cut.
    pub(super) fn fail_sync(&mut self, ino: Ino, is_dir: bool, seq: u64, _error: ErrorKind) {
        let path = self.inode_path(ino);
        let mut persisted = Vec::new();
        let mut lost = Vec::new();
        if is_dir {
            let touching: Vec<u64> = self.entry_ops.iter().filter(|op| op.touches_dir(ino)).map(|op| op.seq).collect();
            let mut chosen = BTreeSet::new();
            for s in &touching {
                if super::crash::chance(&mut self.rng, 1, 2) {
                    chosen.insert(*s);
                }
            }
            if chosen.len() == touching.len()
                && let Some(last) = touching.last()
            {
                chosen.remove(last);
            }
            if !chosen.is_empty() {
                self.commit_entries(chosen);
            }
            // What is still pending of this directory was not written: forget it (the cache keeps it).
            lost = self.entry_ops.iter().filter(|op| op.touches_dir(ino)).map(|op| op.seq).collect();
            let stale: BTreeSet<Ino> = self
                .entry_ops
                .iter()
                .filter(|op| op.touches_dir(ino))
                .flat_map(|op| op.dirs().into_iter().flatten())
                .collect();
            for dir in stale {
                self.dir_mut(dir).stale_entries = true;
            }
            self.entry_ops.retain(|op| !op.touches_dir(ino));
            persisted = touching.into_iter().filter(|s| !lost.contains(s)).collect();
        } else {
            let sector = self.config.sector_size;
            // Size changes are journalled inode metadata: a failed writeback of data pages does not drop
            // them. Each write independently reached the disk or not; at least one did not.
            let is_write: Vec<bool> =
                self.file(ino).pending.iter().map(|op| matches!(op.kind, DataOpKind::Write { .. })).collect();
            let mut choices = Vec::new();
            for write in &is_write {
                choices.push(!write || super::crash::chance(&mut self.rng, 1, 2));
            }
            let writes: Vec<usize> = (0..choices.len()).filter(|i| is_write[*i]).collect();
            if writes.iter().all(|i| choices[*i])
                && let Some(last) = writes.last()
            {
                choices[*last] = false;
            }
            let FileNode { durable, pending, arena, overlays, .. } = self.file_mut(ino);
            for (op, keep) in pending.drain(..).zip(choices) {
                if keep {
                    heal_overlays(overlays, &op.kind, sector);
                    op.kind.apply_to(durable, arena);
                    persisted.push(op.seq);
                } else {
                    lost.push(op.seq);
                }
            }
            let file = self.file_mut(ino);
            file.clear_arena();
            if !lost.is_empty() {
                file.stale_cache = true;
            }
        }
        self.fault_events.push(FaultEvent::SyncFailed { seq, path, persisted, lost });
    }

    // ----- media faults -----

    /// Flips bit `bit` (0–7) of the durable byte at `offset` of the file at `path`.
    pub fn inject_bit_flip(&mut self, path: &str, offset: u64, bit: u8) -> crate::Result<MediaFaultId> {
        let ino = self.media_target(path)?;
        let file = self.file(ino);
        if offset >= file.durable.len || bit > 7 {
            return Err(FsError::new(ErrorKind::InvalidInput, OpKind::Write, path));
        }
        let mut byte = [0u8];
        file.durable.read_raw(offset, &mut byte);
        let ss = self.config.sector_size;
        let id = self.new_media_id().ok_or_else(|| FsError::new(ErrorKind::InvalidInput, OpKind::Write, path))?;
        self.file_mut(ino).overlays.push(Overlay {
            id,
            kind: MediaFaultKind::BitFlip,
            sector: offset / ss,
            patch: Some((offset % ss, vec![byte[0] ^ (1 << bit)])),
            visible: true,
        });
        Ok(id)
    }

    /// Makes the sector holding `offset` of the file at `path` unreadable until rewritten.
    pub fn inject_latent_sector_error(&mut self, path: &str, offset: u64) -> crate::Result<MediaFaultId> {
        let ino = self.media_target(path)?;
        let ss = self.config.sector_size;
        if offset >= self.config.max_file_size {
            return Err(FsError::new(ErrorKind::InvalidInput, OpKind::Read, path));
        }
        let id = self.new_media_id().ok_or_else(|| FsError::new(ErrorKind::InvalidInput, OpKind::Read, path))?;
        self.file_mut(ino).overlays.push(Overlay {
            id,
            kind: MediaFaultKind::LatentSectorError,
            sector: offset / ss,
            patch: None,
            visible: true,
        });
        Ok(id)
    }

    /// Arms a lost or misdirected write: the next successful fsync of a file matching `path_glob` that
    /// has a pending write loses one of its writes (chosen by the seed) or stores it elsewhere in the file.
    ///
    /// Only write faults are armed (`InvalidInput` otherwise): bit flips and latent sector errors are
    /// injected directly.
    pub fn arm_media_fault(&mut self, kind: MediaFaultKind, path_glob: &str) -> crate::Result<()> {
        if !matches!(kind, MediaFaultKind::LostWrite | MediaFaultKind::MisdirectedWrite) {
            return Err(FsError::new(ErrorKind::InvalidInput, OpKind::Fsync, path_glob));
        }
        self.armed_media.push(ArmedMediaFault { kind, path_glob: path_glob.to_string() });
        Ok(())
    }

    /// Whether any media fault is in force (what [`SimFs::media_faults`] would list, without listing it).
    pub fn has_media_faults(&self) -> bool {
        self.live_inodes().any(|(_, inode)| matches!(&inode.node, Node::File(file) if !file.overlays.is_empty()))
    }

    /// Every media fault in force.
    pub fn media_faults(&self) -> Vec<MediaFault> {
        let mut grouped: BTreeMap<MediaFaultId, MediaFault> = BTreeMap::new();
        for (ino, inode) in self.live_inodes() {
            let Node::File(file) = &inode.node else { continue };
            for overlay in &file.overlays {
                grouped
                    .entry(overlay.id)
                    .or_insert_with(|| MediaFault {
                        id: overlay.id,
                        kind: overlay.kind,
                        path: self.inode_path(ino),
                        sectors: Vec::new(),
                    })
                    .sectors
                    .push(MediaSector { sector: overlay.sector, patch: overlay.patch.clone() });
            }
        }
        grouped.into_values().collect()
    }

    /// Removes a media fault; returns whether it existed.
    pub fn remove_media_fault(&mut self, id: MediaFaultId) -> bool {
        let mut found = false;
        for inode in self.inodes.iter_mut().flatten() {
            if let Node::File(file) = &mut inode.node {
                let before = file.overlays.len();
                file.overlays.retain(|o| o.id != id);
                found |= file.overlays.len() != before;
            }
        }
        found
    }

    /// Re-applies a listed media fault (replay). Its id must not be in use, its sectors must lie below
    /// the maximum file size and each patch inside its sector (else `InvalidInput`).
    pub fn add_media_fault(&mut self, fault: &MediaFault) -> crate::Result<MediaFaultId> {
        let ino = self.media_target(&fault.path)?;
        if self.media_faults().iter().any(|f| f.id == fault.id) {
            return Err(FsError::new(ErrorKind::AlreadyExists, OpKind::Write, &fault.path));
        }
        let ss = self.config.sector_size;
        let max_sector = self.config.max_file_size / ss;
        let fits = |s: &MediaSector| {
            s.sector < max_sector
                && s.patch
                    .as_ref()
                    .is_none_or(|(at, bytes)| at.checked_add(bytes.len() as u64).is_some_and(|end| end <= ss))
        };
        if fault.id.0 == u64::MAX || !fault.sectors.iter().all(fits) {
            return Err(FsError::new(ErrorKind::InvalidInput, OpKind::Write, &fault.path));
        }
        self.next_media_id = self.next_media_id.max(fault.id.0 + 1);
        let file = self.file_mut(ino);
        for s in &fault.sectors {
            file.overlays.push(Overlay {
                id: fault.id,
                kind: fault.kind,
                sector: s.sector,
                patch: s.patch.clone(),
                visible: true,
            });
        }
        Ok(fault.id)
    }

    /// A fresh id, or `None` once all 2^64 − 1 are used (replayed faults may have taken the last ones).
    fn new_media_id(&mut self) -> Option<MediaFaultId> {
        let id = self.next_media_id;
        self.next_media_id = id.checked_add(1)?;
        Some(MediaFaultId(id))
    }

    fn media_target(&self, path: &str) -> crate::Result<Ino> {
        let err = |kind| FsError::new(kind, OpKind::Write, path);
        let parsed = path::parse(path).map_err(err)?;
        let stack = self.resolve(&parsed).map_err(err)?;
        match &self.inode(stack).node {
            Node::File(_) => Ok(stack),
            Node::Dir(_) => Err(err(ErrorKind::IsADirectory)),
        }
    }

    /// A successful fsync of a file, letting an armed lost or misdirected write strike it; returns whether
    /// anything was pending.
    pub(super) fn commit_file_with_media_faults(&mut self, ino: Ino, seq: u64) -> bool {
        if self.file(ino).pending.is_empty() {
            return false;
        }
        let armed = if self.armed_media.is_empty() || self.next_media_id == u64::MAX {
            None
        } else {
            let path = self.inode_path(ino);
            let has_write = self.file(ino).pending.iter().any(|op| matches!(op.kind, DataOpKind::Write { .. }));
            self.armed_media.iter().position(|a| has_write && glob_match(&a.path_glob, &path))
        };
        let Some(index) = armed else {
            self.commit_file(ino);
            return true;
        };
        let armed = self.armed_media.remove(index);
        let ss = self.config.sector_size;
        let writes: Vec<(u64, u64)> = self.file(ino).pending.iter().filter_map(|op| op.kind.write_extent()).collect();
        let (offset, len) = writes[(self.rng.next_u64() % writes.len() as u64) as usize];
        let first = offset / ss;
        let last = (offset + len - 1) / ss;
        let stale: Vec<Vec<u8>> = (first..=last)
            .map(|s| {
                let mut b = vec![0; ss as usize];
                self.file(ino).durable.read_raw(s * ss, &mut b);
                b
            })
            .collect();
        self.commit_file(ino);
        let id = self.new_media_id().expect("checked above: an id is left");
        let mut overlays: Vec<Overlay> = (first..=last)
            .zip(stale)
            .map(|(sector, bytes)| Overlay { id, kind: armed.kind, sector, patch: Some((0, bytes)), visible: false })
            .collect();
        if armed.kind == MediaFaultKind::MisdirectedWrite {
            let count = last - first + 1;
            let file_sectors = self.file(ino).durable.len.div_ceil(ss);
            // Any aligned run of `count` sectors inside the file that does not overlap the intended one.
            // Counted, not listed: a sparse file may have billions of sectors.
            let before = if first >= count { first - count + 1 } else { 0 };
            let after = file_sectors.saturating_sub(last + count);
            if before + after > 0 {
                let k = self.rng.next_u64() % (before + after);
                let target = if k < before { k } else { last + 1 + (k - before) };
                for i in 0..count {
                    let mut b = vec![0; ss as usize];
                    self.file(ino).durable.read_raw((first + i) * ss, &mut b);
                    overlays.push(Overlay {
                        id,
                        kind: armed.kind,
                        sector: target + i,
                        patch: Some((0, b)),
                        visible: false,
                    });
                }
            }
        }
        self.file_mut(ino).overlays.extend(overlays);
        let fault = self.media_faults().into_iter().find(|f| f.id == id).expect("just added");
        self.fault_events.push(FaultEvent::MediaFaultStruck { seq, fault });
        true
    }
}

fn paths_match(glob: &str, path: &str, to: Option<&str>) -> bool {
    glob_match(glob, &path::normalize(path)) || to.is_some_and(|t| glob_match(glob, &path::normalize(t)))
}

/// Removes overlays on sectors a now-durable operation rewrote (or cut off).
pub(crate) fn heal_overlays(overlays: &mut Vec<Overlay>, op: &DataOpKind, ss: u64) {
    if overlays.is_empty() {
        return;
    }
    match op {
        DataOpKind::Write { offset, data } => {
            if data.len() == 0 {
                return;
            }
            let first = offset / ss;
            let last = (offset + data.len() - 1) / ss;
            overlays.retain(|o| o.sector < first || o.sector > last);
        }
        DataOpKind::SetLen { len } => {
            // A truncation rewrites the sector it cuts into (its tail is zeroed) and frees those past it.
            let first_rewritten = len / ss;
            overlays.retain(|o| o.sector < first_rewritten);
        }
    }
}

/// Applies overlays of clean sectors to bytes just read from the cache at `offset`.
pub(crate) fn apply_overlays_on_read(
    file: &FileNode,
    offset: u64,
    buf: &mut [u8],
    ss: u64,
) -> std::result::Result<(), ErrorKind> {
    if buf.is_empty() {
        return Ok(());
    }
    let end = offset + buf.len() as u64;
    let dirty = dirty_sectors(file, ss);
    for overlay in &file.overlays {
        let sector_start = overlay.sector * ss;
        if !overlay.visible || sector_start >= end || sector_start + ss <= offset || dirty.contains(&overlay.sector) {
            continue;
        }
        match &overlay.patch {
            None => return Err(ErrorKind::Io),
            Some((at, bytes)) => {
                for (i, byte) in bytes.iter().enumerate() {
                    let pos = sector_start + at + i as u64;
                    if pos >= offset && pos < end {
                        buf[(pos - offset) as usize] = *byte;
                    }
                }
            }
        }
    }
    Ok(())
}

fn dirty_sectors(file: &FileNode, ss: u64) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for op in &file.pending {
        if let Some((offset, len)) = op.kind.write_extent()
            && len > 0
        {
            out.extend(offset / ss..=(offset + len - 1) / ss);
        }
    }
    out
}
