//! Segment refs (Ra's `ra_log_segments` segref list): which segment file serves which index range.
//!
//! Key invariant: a ref's identity is its **file name**; its range may legitimately shrink. Segments
//! are appended to across WAL files, and a replayed WAL (its unlink lost in a power cut) is flushed a
//! second time into a newer segment, so a newer segment's first index truncates — or removes — older
//! overlapping refs. Comparing `(name, range)` pairs instead of names deletes a file that is still
//! referenced (PR 589 fix 3).

use crate::types::LogIndex;

/// A segment file and the range it serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegRef {
    /// The file's base name (`0000000000000001.segment`).
    pub file: String,
    /// First index served.
    pub first: LogIndex,
    /// Last index served.
    pub last: LogIndex,
}

impl std::fmt::Display for SegRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}..{}]", self.file, self.first, self.last)
    }
}

/// Ra's `compact_segrefs(New, Cur)`: both lists newest first; each ref of `new`, oldest first, is put
/// in front of what came before after cutting that at its first index (Ra's `limit`: refs wholly at or
/// above the cut are dropped, the first one below it ends before the cut, older ones are kept).
///
/// Worked oldest first, so that each cut touches only the refs it drops: linear in the lists' lengths
/// (minor compaction rebuilds the whole list through here after every snapshot).
pub fn compact(new: &[SegRef], cur: &[SegRef]) -> Vec<SegRef> {
    let mut acc: Vec<SegRef> = cur.iter().rev().cloned().collect();
    for r in new.iter().rev() {
        while acc.last().is_some_and(|older| older.first >= r.first) {
            acc.pop();
        }
        if let Some(older) = acc.last_mut() {
            older.last = older.last.min(LogIndex(r.first.0 - 1));
        }
        acc.push(r.clone());
    }
    acc.reverse();
    acc
}

/// A server's segment refs, newest first, as its log keeps them at runtime.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegRefs {
    refs: Vec<SegRef>,
}

impl SegRefs {
    /// No segments.
    pub fn new() -> SegRefs {
        SegRefs { refs: Vec::new() }
    }

    /// Refs from a newest-first list, compacted.
    pub fn from_newest_first(refs: &[SegRef]) -> SegRefs {
        SegRefs { refs: compact(refs, &[]) }
    }

    /// The refs, newest first.
    pub fn refs(&self) -> &[SegRef] {
        &self.refs
    }

    /// The ref serving `index`, if any.
    pub fn find(&self, index: LogIndex) -> Option<&SegRef> {
        self.refs.iter().find(|r| r.first <= index && index <= r.last)
    }

    /// Applies a `Segments` notification (Ra's `update_segments`): compacts `new` over the current refs
    /// and returns the names of the *new* refs whose files did not survive compaction (wholly overwritten
    /// within the same notification) — by **name**, never by range. Old refs that compaction drops are
    /// only forgotten; their files are left to init-time cleanup, as in Ra.
    pub fn update(&mut self, new: &[SegRef]) -> Vec<String> {
        let compacted = compact(new, &self.refs);
        let mut gone: Vec<String> =
            new.iter().filter(|n| !compacted.iter().any(|r| r.file == n.file)).map(|n| n.file.clone()).collect();
        gone.dedup();
        self.refs = compacted;
        gone
    }
}
