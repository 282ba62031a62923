//! Crash images as data: `scenarios::CrashImage` (what a seed file's plan says a power cut keeps) to and
//! from `vfs::CrashDecisions` (what `SimFs` applies).
//!
//! Why a second type: `scenarios` is data and knows nothing of `vfs`. The conversion is exact both ways
//! for the fields that decide the image; `vfs` fills in the informational ones (paths, what an entry
//! operation did) when it normalises.

use scenarios::{CrashImage, FileImage, KeptEntry, SectorImage};
use vfs::{CrashDecisions, CrashModel, EntryDecision, FileDecision, SectorDecision, SectorVersion};

/// The decisions that make `image` (its entry list holds only the kept operations: `vfs` drops the
/// others).
pub fn to_decisions(image: &CrashImage, model: CrashModel) -> CrashDecisions {
    let files = image
        .files
        .iter()
        .map(|f| FileDecision {
            ino: f.ino,
            path: f.path.clone(),
            size_after: f.size_after,
            sectors: f
                .sectors
                .iter()
                .map(|s| SectorDecision {
                    sector: s.sector,
                    version: match (s.after, s.garbage) {
                        (_, Some(seed)) => SectorVersion::Garbage(seed),
                        (Some(seq), None) => SectorVersion::After(seq),
                        // Neither: the durable bytes, which an absent decision means too; `After(0)`
                        // names no pending operation, so `vfs` refuses it as a mismatch.
                        (None, None) => SectorVersion::After(0),
                    },
                })
                .collect(),
        })
        .collect();
    let entries =
        image.kept_entries.iter().map(|e| EntryDecision { seq: e.seq, op: e.op.clone(), kept: true }).collect();
    CrashDecisions { model, files, entries }
}

/// The image `decisions` make, labelled `label`. Files that keep nothing non-durable are left out.
pub fn from_decisions(decisions: &CrashDecisions, label: &str) -> CrashImage {
    let files = decisions
        .files
        .iter()
        .filter(|f| f.size_after.is_some() || !f.sectors.is_empty())
        .map(|f| FileImage {
            ino: f.ino,
            path: f.path.clone(),
            size_after: f.size_after,
            sectors: f
                .sectors
                .iter()
                .map(|s| match s.version {
                    SectorVersion::After(seq) => SectorImage { sector: s.sector, after: Some(seq), garbage: None },
                    SectorVersion::Garbage(seed) => SectorImage { sector: s.sector, after: None, garbage: Some(seed) },
                })
                .collect(),
        })
        .collect();
    let kept_entries =
        decisions.entries.iter().filter(|e| e.kept).map(|e| KeptEntry { seq: e.seq, op: e.op.clone() }).collect();
    CrashImage { label: label.to_owned(), files, kept_entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_round_trips_through_decisions() {
        let image = CrashImage {
            label: "omit 7".into(),
            files: vec![FileImage {
                ino: 4,
                path: "wal/00000001.wal".into(),
                size_after: Some(9),
                sectors: vec![
                    SectorImage { sector: 0, after: Some(9), garbage: None },
                    SectorImage { sector: 1, after: None, garbage: Some(77) },
                ],
            }],
            kept_entries: vec![KeptEntry { seq: 3, op: "create wal/00000001.wal".into() }],
        };
        let decisions = to_decisions(&image, CrashModel::Pessimistic);
        assert_eq!(decisions.entries.len(), 1);
        assert_eq!(from_decisions(&decisions, "omit 7"), image);
        assert_eq!(image.kept_count(), 4);
    }
}
