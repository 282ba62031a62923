//! A sparse set of log indexes kept as ascending, disjoint, non-adjacent inclusive ranges (Ra's `ra_seq`).
//!
//! Why ranges: a mem table or a WAL file usually holds one contiguous run per server, so a `Seq` of
//! a million entries is one pair; live indexes and sparse writes make the general case necessary.
//! Invariant: `ranges` is sorted, every range has `lo <= hi`, and consecutive ranges are separated by
//! at least one missing index.

use crate::types::LogIndex;

/// A sparse, ordered set of log indexes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Seq {
    ranges: Vec<(u64, u64)>,
}

impl Seq {
    /// The empty set.
    pub fn new() -> Seq {
        Seq { ranges: Vec::new() }
    }

    /// The contiguous range `first..=last` (empty when `first > last`).
    pub fn from_range(first: LogIndex, last: LogIndex) -> Seq {
        if first > last { Seq::new() } else { Seq { ranges: vec![(first.0, last.0)] } }
    }

    /// Builds a set from indexes in any order (duplicates allowed).
    pub fn from_indexes(indexes: impl IntoIterator<Item = LogIndex>) -> Seq {
        let mut all: Vec<u64> = indexes.into_iter().map(|i| i.0).collect();
        all.sort_unstable();
        all.dedup();
        let mut seq = Seq::new();
        for i in all {
            seq.push_raw(i);
        }
        seq
    }

    fn push_raw(&mut self, i: u64) {
        match self.ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == i => *hi = i,
            _ => self.ranges.push((i, i)),
        }
    }

    /// Adds `index`, which must be above every member (Ra's `ra_seq:append`).
    pub fn append(&mut self, index: LogIndex) {
        if let Some(last) = self.last() {
            assert!(index > last, "Seq::append({index}) below last {last}");
        }
        self.push_raw(index.0);
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of indexes in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(lo, hi)| hi - lo + 1).sum()
    }

    /// The smallest member.
    pub fn first(&self) -> Option<LogIndex> {
        self.ranges.first().map(|&(lo, _)| LogIndex(lo))
    }

    /// The largest member.
    pub fn last(&self) -> Option<LogIndex> {
        self.ranges.last().map(|&(_, hi)| LogIndex(hi))
    }

    /// `(first, last)`, the span of the set.
    pub fn range(&self) -> Option<(LogIndex, LogIndex)> {
        Some((self.first()?, self.last()?))
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> impl Iterator<Item = (LogIndex, LogIndex)> + '_ {
        self.ranges.iter().map(|&(lo, hi)| (LogIndex(lo), LogIndex(hi)))
    }

    /// Whether `index` is a member.
    pub fn contains(&self, index: LogIndex) -> bool {
        let i = index.0;
        let pos = self.ranges.partition_point(|&(_, hi)| hi < i);
        self.ranges.get(pos).is_some_and(|&(lo, _)| lo <= i)
    }

    /// Every member, ascending.
    pub fn iter(&self) -> impl Iterator<Item = LogIndex> + '_ {
        self.ranges.iter().flat_map(|&(lo, hi)| (lo..=hi).map(LogIndex))
    }

    /// Members `>= index` only (Ra's `ra_seq:floor`).
    pub fn floor(&self, index: LogIndex) -> Seq {
        let i = index.0;
        let mut ranges = Vec::with_capacity(self.ranges.len());
        for &(lo, hi) in &self.ranges {
            if hi >= i {
                ranges.push((lo.max(i), hi));
            }
        }
        Seq { ranges }
    }

    /// Members `<= index` only (Ra's `ra_seq:limit`).
    pub fn limit(&self, index: LogIndex) -> Seq {
        let i = index.0;
        let mut ranges = Vec::with_capacity(self.ranges.len());
        for &(lo, hi) in &self.ranges {
            if lo <= i {
                ranges.push((lo, hi.min(i)));
            }
        }
        Seq { ranges }
    }

    /// Members strictly below `index`.
    pub fn below(&self, index: LogIndex) -> Seq {
        match index.0.checked_sub(1) {
            Some(i) => self.limit(LogIndex(i)),
            None => Seq::new(),
        }
    }

    /// Members inside `first..=last`.
    pub fn in_range(&self, first: LogIndex, last: LogIndex) -> Seq {
        if first > last {
            return Seq::new();
        }
        self.floor(first).limit(last)
    }

    /// The union of two sets (Ra's `ra_seq:add` only when every member of `other` lies above `self`:
    /// `ra_seq:add` first cuts `self` below `other`'s first index).
    pub fn union(&self, other: &Seq) -> Seq {
        let mut all: Vec<(u64, u64)> = self.ranges.iter().chain(other.ranges.iter()).copied().collect();
        all.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(all.len());
        for (lo, hi) in all {
            match out.last_mut() {
                Some((_, h)) if lo <= h.saturating_add(1) => *h = (*h).max(hi),
                _ => out.push((lo, hi)),
            }
        }
        Seq { ranges: out }
    }

    /// Members of `self` not in `other`.
    pub fn subtract(&self, other: &Seq) -> Seq {
        let mut out = Seq::new();
        for i in self.iter() {
            if !other.contains(i) {
                out.push_raw(i.0);
            }
        }
        out
    }
}

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[")?;
        for (n, &(lo, hi)) in self.ranges.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            if lo == hi { write!(f, "{lo}")? } else { write!(f, "{lo}..{hi}")? }
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(indexes: &[u64]) -> Seq {
        Seq::from_indexes(indexes.iter().copied().map(LogIndex))
    }

    #[test]
    fn ranges_merge_and_split() {
        let s = seq(&[1, 2, 3, 5, 9, 10]);
        assert_eq!(s.to_string(), "[1..3,5,9..10]");
        assert_eq!(s.len(), 6);
        assert!(s.contains(LogIndex(5)) && !s.contains(LogIndex(4)) && !s.contains(LogIndex(11)));
        assert_eq!(s.floor(LogIndex(3)).to_string(), "[3,5,9..10]");
        assert_eq!(s.limit(LogIndex(9)).to_string(), "[1..3,5,9]");
        assert_eq!(s.below(LogIndex(0)).to_string(), "[]");
        assert_eq!(s.in_range(LogIndex(2), LogIndex(5)).to_string(), "[2..3,5]");
        assert_eq!(s.union(&seq(&[4, 6, 11])).to_string(), "[1..6,9..11]");
        assert_eq!(s.subtract(&seq(&[2, 9])).to_string(), "[1,3,5,10]");
        assert_eq!(s.range(), Some((LogIndex(1), LogIndex(10))));
    }

    #[test]
    fn append_extends_the_last_range() {
        let mut s = Seq::new();
        for i in [0, 1, 2, 7, 8] {
            s.append(LogIndex(i));
        }
        assert_eq!(s.to_string(), "[0..2,7..8]");
    }
}
