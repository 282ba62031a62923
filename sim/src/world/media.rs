//! Media faults the engine draws: a bit of a durable segment entry that reads back flipped
//! (`Fault::BitRot`, `bit_rot_weight`), and what the checkers make of a node whose medium rotted.
//!
//! Why only there: an entry's data in a segment is the one place Ra guards with a checksum that a read
//! checks (`ra_log_segment:read_sparse` validates each entry's CRC and exits with
//! `ra_log_segment_crc_check_failure`). A flip there is survivable by design: the read fails, the
//! server's supervisor restarts it, and the cluster goes on without that node's copy. A flip in an
//! index record, a header, the meta store or a snapshot's metadata has no checksum in Ra to catch it
//! and would be blamed on hardware, not on the software, so the engine never draws one.
//!
//! The promise judged: **a corrupted entry is never served**. What a rotted node's log returns is still
//! held to what its member wrote (`log-shape`, and every replica's machine to the others'); what it may
//! fail to do is read the entry (`no-log-gap`, `live-indexes-readable` and `log-matching` pass over a
//! node whose medium holds a media fault) and converge (`converges` passes over a node a process of
//! which crashed on a failed checksum, while its medium stays rotted or its member is down).
//!
//! Owns: choosing the entry to rot from the fault's `pick` (the same way on every replay of the same
//! disk), injecting the flip, and the questions "is node i's medium rotted" and "may this failure be
//! the rot's".

use raft_core::storage::StorageError;
use raft_core::storage::segment::{IndexParse, SegmentError, SegmentReader};
use scenarios::Fault;

use super::World;
use crate::trace::Kind;

impl World {
    /// Node `i`'s medium rots: one bit of one durable entry of its segment files flips, as `pick`
    /// chooses. Nothing happens when no segment holds a durable entry, or when another node's medium is
    /// rotted already (one rotted node at a time, as one node out at a time).
    pub(super) fn bit_rot(&mut self, i: usize, pick: u64) {
        self.record_now(i, Fault::BitRot { pick });
        if (0..self.nodes.len()).any(|j| j != i && self.medium_rotted(j)) {
            self.count("bit rots passed over (another node's medium is rotted)");
            self.note(Some(i), Kind::Disk, "BIT ROT passed over: another node's medium is rotted".into());
            return;
        }
        let candidates = self.rot_candidates(i);
        if candidates.is_empty() {
            self.count("bit rots passed over (no durable segment entry)");
            self.note(Some(i), Kind::Disk, "BIT ROT passed over: no segment holds an entry".into());
            return;
        }
        // The entry first, then the byte of its data and the bit, each from its own bits of `pick`; an
        // entry whose data is not all durable yet (`vfs` refuses a flip past the durable length) is
        // passed over for the next.
        let first = (pick % candidates.len() as u64) as usize;
        let n = &mut self.nodes[i];
        for k in 0..candidates.len() {
            let (path, index, offset, len) = &candidates[(first + k) % candidates.len()];
            let at = offset + (pick >> 20) % u64::from(*len);
            let bit = ((pick >> 8) % 8) as u8;
            if n.fs.inject_bit_flip(path, at, bit).is_ok() {
                self.count("bit rots injected");
                let what = format!("BIT ROT: bit {bit} of byte {at} of {path} flipped (data of index {index})");
                self.note(Some(i), Kind::Disk, what);
                return;
            }
        }
        self.count("bit rots passed over (no durable segment entry)");
        self.note(Some(i), Kind::Disk, "BIT ROT passed over: no segment entry is durable".into());
    }

    /// Every entry with data in node `i`'s segment files, as (path, index, data offset, data length), in
    /// path then index order: read through a peek (no call of the disk's), with Ra's index parse.
    fn rot_candidates(&self, i: usize) -> Vec<(String, u64, u64, u32)> {
        let fs = &self.nodes[i].fs;
        let mut out = Vec::new();
        let mut dirs = fs.cached_dir_names("/").unwrap_or_default();
        dirs.sort();
        for dir in dirs {
            let Some(mut files) = fs.cached_dir_names(&dir) else { continue };
            files.sort();
            for file in files.iter().filter(|f| f.ends_with(".segment")) {
                let path = format!("{dir}/{file}");
                let Ok(reader) = SegmentReader::open_with(&mut fs.peek(), &path, IndexParse::Ra) else { continue };
                for index in reader.indexes() {
                    if let Some(rec) = reader.index().entries.get(&index.0).filter(|r| r.len > 0) {
                        out.push((path.clone(), index.0, rec.offset, rec.len));
                    }
                }
            }
        }
        out
    }

    /// Whether node `i`'s medium holds a media fault now (a rotted file deleted takes its fault with it).
    pub(super) fn medium_rotted(&self, i: usize) -> bool {
        self.nodes[i].fs.has_media_faults()
    }

    /// Whether `e`, met by a process of node `i`, is a checksum catching its rotted medium: a segment
    /// read whose CRC failed, on a node whose medium holds a media fault. Without one, a failed CRC is
    /// the software's own doing.
    pub(super) fn rot_caught(&self, i: usize, e: &StorageError) -> bool {
        matches!(e, StorageError::Segment(SegmentError::CrcMismatch { .. })) && self.medium_rotted(i)
    }
}
