//! Sparse file content: 4 KiB pages in a `BTreeMap`, absent pages read as zeros, pages shared
//! copy-on-write (`Rc<[u8]>`).
//!
//! Key invariant: every byte at or past `len` is zero and no page lies wholly past `len`. Writes at huge
//! offsets therefore cost one page, not the offset, and a crash image can be built by raw sector writes
//! followed by one `set_len_raw`, which re-establishes the invariant.
//!
//! Why shared pages: the cache, the durable image and a pending page-aligned write often hold the same
//! bytes. Sharing makes an fsync of whole pages, and the cache reset after a crash, pointer copies
//! instead of 4 KiB copies; a later partial write to a shared page copies it once.

use std::collections::BTreeMap;
use std::rc::Rc;

/// Page size of the cache and of `Ext4Ordered` append granularity.
pub(crate) const PAGE: u64 = 4096;
const PAGE_USIZE: usize = PAGE as usize;

/// One page; always `PAGE` bytes long.
pub(crate) type Page = Rc<[u8]>;

static ZEROS: [u8; PAGE_USIZE] = [0; PAGE_USIZE];

fn zero_page() -> Page {
    Rc::from(&ZEROS[..])
}

/// Splits `[offset, offset + len)` into per-page chunks: (page index, offset in page, chunk length,
/// offset of the chunk in the range).
fn chunks(offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let pos = offset + done as u64;
        let in_page = (pos % PAGE) as usize;
        let n = (PAGE_USIZE - in_page).min(len - done);
        let chunk = (pos / PAGE, in_page, n, done);
        done += n;
        Some(chunk)
    })
}

/// Cuts page-aligned whole-page data into shareable pages.
pub(crate) fn pages_of(data: &[u8]) -> Vec<Page> {
    debug_assert!(data.len().is_multiple_of(PAGE_USIZE));
    data.chunks(PAGE_USIZE).map(Rc::from).collect()
}

/// Pages below this index live in a vector indexed directly (the first 256 MiB of a file, where a
/// WAL or segment lives); pages above it in a `BTreeMap`, so a write at a huge offset stays one page.
const DENSE_PAGES: u64 = 1 << 16;

/// The page index of a file: dense for small offsets, sparse beyond.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageTable {
    dense: Vec<Option<Page>>,
    sparse: BTreeMap<u64, Page>,
    count: u64,
}

impl PageTable {
    pub(crate) fn get(&self, index: u64) -> Option<&Page> {
        if index < DENSE_PAGES {
            self.dense.get(index as usize).and_then(Option::as_ref)
        } else {
            self.sparse.get(&index)
        }
    }

    fn get_mut(&mut self, index: u64) -> Option<&mut Page> {
        if index < DENSE_PAGES {
            self.dense.get_mut(index as usize).and_then(Option::as_mut)
        } else {
            self.sparse.get_mut(&index)
        }
    }

    fn slot(&mut self, index: u64) -> &mut Option<Page> {
        debug_assert!(index < DENSE_PAGES);
        let i = index as usize;
        if self.dense.len() <= i {
            self.dense.resize(i + 1, None);
        }
        &mut self.dense[i]
    }

    /// The page, allocated as zeros if absent.
    fn get_or_zero(&mut self, index: u64) -> &mut Page {
        if self.get(index).is_none() {
            self.insert(index, zero_page());
        }
        self.get_mut(index).expect("just inserted")
    }

    pub(crate) fn insert(&mut self, index: u64, page: Page) -> Option<Page> {
        let old = if index < DENSE_PAGES { self.slot(index).replace(page) } else { self.sparse.insert(index, page) };
        if old.is_none() {
            self.count += 1;
        }
        old
    }

    /// Drops every page at or past `from`.
    fn truncate(&mut self, from: u64) {
        if from < DENSE_PAGES && (from as usize) < self.dense.len() {
            let dropped = self.dense.split_off(from as usize);
            self.count -= dropped.iter().filter(|p| p.is_some()).count() as u64;
        }
        let dropped = self.sparse.split_off(&from.max(DENSE_PAGES));
        self.count -= dropped.len() as u64;
    }

    /// Present pages with index in `[lo, hi]`, ascending.
    pub(crate) fn range(&self, lo: u64, hi: u64) -> impl Iterator<Item = (u64, &Page)> {
        let dense_hi = hi.min(DENSE_PAGES - 1).min((self.dense.len() as u64).saturating_sub(1));
        let dense = (lo <= dense_hi && !self.dense.is_empty())
            .then(|| (lo..=dense_hi).filter_map(|i| self.dense[i as usize].as_ref().map(|p| (i, p))))
            .into_iter()
            .flatten();
        let sparse = (hi >= DENSE_PAGES)
            .then(|| self.sparse.range(lo.max(DENSE_PAGES)..=hi).map(|(i, p)| (*i, p)))
            .into_iter()
            .flatten();
        dense.chain(sparse)
    }

    pub(crate) fn len(&self) -> u64 {
        self.count
    }
}

/// Disjoint, merged, inclusive intervals of indexes (sectors or pages).
#[derive(Debug, Clone, Default)]
pub(crate) struct Intervals(BTreeMap<u64, u64>);

impl Intervals {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn insert(&mut self, mut lo: u64, mut hi: u64) {
        while let Some((start, end)) =
            self.0.range(..=hi.saturating_add(1)).next_back().map(|(s, e)| (*s, *e)).filter(|(_, e)| e + 1 >= lo)
        {
            self.0.remove(&start);
            lo = lo.min(start);
            hi = hi.max(end);
        }
        self.0.insert(lo, hi);
    }

    pub(crate) fn contains(&self, index: u64) -> bool {
        self.0.range(..=index).next_back().is_some_and(|(_, end)| *end >= index)
    }

    /// Indexes of `[lo, hi]` covered by some interval.
    pub(crate) fn covered(&self, lo: u64, hi: u64, out: &mut Vec<u64>) {
        for (start, end) in self.0.range(..=hi).rev() {
            if *end < lo {
                break;
            }
            out.extend((*start).max(lo)..=(*end).min(hi));
        }
    }

    /// The parts of `[lo, hi]` no interval covers.
    pub(crate) fn uncovered(&self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut next = lo;
        let first = self.0.range(..=lo).next_back().map(|(s, _)| *s).unwrap_or(lo);
        for (start, end) in self.0.range(first..=hi) {
            if *end < next {
                continue;
            }
            if *start > next {
                gaps.push((next, start - 1));
            }
            next = end.saturating_add(1);
            if next > hi {
                return gaps;
            }
        }
        gaps.push((next, hi));
        gaps
    }

    /// Drops every index at or past `limit`.
    pub(crate) fn clip(&mut self, limit: u64) {
        let _dropped = self.0.split_off(&limit);
        if let Some((_, end)) = self.0.iter_mut().next_back()
            && *end >= limit
        {
            *end = limit - 1;
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().map(|(s, e)| (*s, *e))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Content {
    pub(crate) len: u64,
    pub(crate) pages: PageTable,
}

impl Content {
    pub(crate) fn empty() -> Content {
        Content { len: 0, pages: PageTable::default() }
    }

    /// Pages a write of `len` bytes at `offset` would newly allocate.
    pub(crate) fn new_pages_for(&self, offset: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let first = offset / PAGE;
        let last = (offset + len - 1) / PAGE;
        let present = self.pages.range(first, last).count() as u64;
        (last - first + 1) - present
    }

    /// Makes each page of `[first, last]` that holds the same bytes as `other`'s page there share it:
    /// after an fsync the durable image and the cache hold one copy of what they agree on, not two (the
    /// durable copy of a long run's segments was half the harness's memory). A later partial write to a
    /// shared page copies it first, so neither side ever sees the other's changes. `other`'s last page,
    /// when partly filled, is left alone: appends go on writing there, and sharing it would cost both
    /// sides a copy per append.
    pub(crate) fn share_equal_pages(&mut self, other: &Content, first: u64, last: u64) {
        let tail = if other.len.is_multiple_of(PAGE) { u64::MAX } else { other.len / PAGE };
        for index in first..last.saturating_add(1).min(tail) {
            let (Some(mine), Some(theirs)) = (self.pages.get(index), other.pages.get(index)) else { continue };
            if !Rc::ptr_eq(mine, theirs) && mine[..] == theirs[..] {
                let theirs = theirs.clone();
                self.pages.insert(index, theirs);
            }
        }
    }

    /// Writes `data` at `offset`, extending `len` if needed.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.write_raw(offset, data);
        self.len = self.len.max(offset + data.len() as u64);
    }

    /// Installs shared whole pages at page-aligned `offset`, extending `len` if needed.
    pub(crate) fn write_pages(&mut self, offset: u64, pages: &[Page]) {
        debug_assert!(offset.is_multiple_of(PAGE));
        for (i, page) in pages.iter().enumerate() {
            self.pages.insert(offset / PAGE + i as u64, page.clone());
        }
        self.len = self.len.max(offset + pages.len() as u64 * PAGE);
    }

    /// Writes bytes without touching `len` (callers restore the invariant with `set_len_raw`). A chunk
    /// covering a whole page replaces it (one copy); a partial chunk copies a shared page first.
    pub(crate) fn write_raw(&mut self, offset: u64, data: &[u8]) {
        for (index, in_page, n, at) in chunks(offset, data.len()) {
            let bytes = &data[at..at + n];
            if n == PAGE_USIZE {
                self.pages.insert(index, Rc::from(bytes));
            } else {
                let page = self.pages.get_or_zero(index);
                Rc::make_mut(page)[in_page..in_page + n].copy_from_slice(bytes);
            }
        }
    }

    /// Zeroes `[offset, offset + len)` without touching `len`, allocating nothing for holes.
    pub(crate) fn zero_raw(&mut self, offset: u64, len: usize) {
        for (index, in_page, n, _) in chunks(offset, len) {
            if let Some(page) = self.pages.get_mut(index)
                && page[in_page..in_page + n].iter().any(|b| *b != 0)
            {
                Rc::make_mut(page)[in_page..in_page + n].fill(0);
            }
        }
    }

    /// Copies bytes at `offset` into `buf` ignoring `len` (holes and the tail read as zeros).
    pub(crate) fn read_raw(&self, offset: u64, buf: &mut [u8]) {
        for (index, in_page, n, at) in chunks(offset, buf.len()) {
            match self.pages.get(index) {
                Some(page) => buf[at..at + n].copy_from_slice(&page[in_page..in_page + n]),
                None => buf[at..at + n].fill(0),
            }
        }
    }

    /// Reads up to `buf.len()` bytes at `offset`, bounded by `len`; returns the count.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = ((self.len - offset).min(buf.len() as u64)) as usize;
        self.read_raw(offset, &mut buf[..n]);
        n
    }

    /// `ftruncate`: shrinking zeroes the cut tail and drops whole pages past it; growing leaves a hole.
    pub(crate) fn set_len(&mut self, len: u64) {
        if len < self.len {
            self.set_len_raw(len);
        } else {
            self.len = len;
        }
    }

    /// Sets `len` and re-establishes the invariant whatever raw writes happened past it.
    pub(crate) fn set_len_raw(&mut self, len: u64) {
        self.len = len;
        self.pages.truncate(len.div_ceil(PAGE));
        let in_page = (len % PAGE) as usize;
        if in_page != 0 {
            self.zero_raw(len, PAGE_USIZE - in_page);
        }
    }

    pub(crate) fn page_count(&self) -> u64 {
        self.pages.len()
    }

    /// Whether two contents hold the same bytes, compared page by page (cost proportional to the stored
    /// pages, not the length: a sparse 1 TiB file compares in microseconds).
    pub(crate) fn same_bytes(&self, other: &Content) -> bool {
        if self.len != other.len {
            return false;
        }
        let zero = |p: &Page| p.iter().all(|b| *b == 0);
        let mine = self.pages.range(0, u64::MAX);
        let theirs = other.pages.range(0, u64::MAX);
        for (index, page) in mine {
            match other.pages.get(index) {
                Some(o) if o[..] == page[..] => {}
                None if zero(page) => {}
                _ => return false,
            }
        }
        theirs.filter(|(index, _)| self.pages.get(*index).is_none()).all(|(_, page)| zero(page))
    }

    /// The whole content as a vector (tests and tree snapshots; proportional to the length).
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.len as usize];
        self.read_raw(0, &mut out);
        out
    }

    /// Checks the key invariant (used by `SimFs::check_invariants`).
    pub(crate) fn invariant_holds(&self) -> bool {
        let all = self.pages.range(0, u64::MAX);
        let mut count = 0;
        for (index, page) in all {
            count += 1;
            if page.len() != PAGE_USIZE || index >= self.len.div_ceil(PAGE) {
                return false;
            }
        }
        if count != self.pages.len() {
            return false;
        }
        let in_page = (self.len % PAGE) as usize;
        match self.pages.get(self.len / PAGE) {
            Some(page) if in_page != 0 => page[in_page..].iter().all(|b| *b == 0),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_write_at_huge_offset_allocates_one_page() {
        let mut c = Content::empty();
        c.write(1 << 40, b"hello");
        assert_eq!(c.len, (1 << 40) + 5);
        assert_eq!(c.page_count(), 1);
        let mut buf = [7u8; 8];
        assert_eq!(c.read(1 << 39, &mut buf), 8);
        assert_eq!(buf, [0; 8]);
        assert!(c.invariant_holds());
    }

    #[test]
    fn shrink_zeroes_tail_and_regrow_reads_zeros() {
        let mut c = Content::empty();
        c.write(0, &[1; 5000]);
        c.set_len(10);
        assert!(c.invariant_holds());
        c.set_len(5000);
        let v = c.to_vec();
        assert_eq!(&v[..10], &[1; 10]);
        assert!(v[10..].iter().all(|b| *b == 0));
    }

    #[test]
    fn dense_and_sparse_pages_behave_alike() {
        let mut c = Content::empty();
        let far = DENSE_PAGES * PAGE + 10;
        c.write(100, b"near");
        c.write(far, b"far");
        assert_eq!(c.page_count(), 2);
        assert_eq!(c.pages.range(0, u64::MAX).map(|(i, _)| i).collect::<Vec<_>>(), vec![0, DENSE_PAGES]);
        c.set_len(DENSE_PAGES * PAGE);
        assert_eq!(c.page_count(), 1);
        assert!(c.invariant_holds());
        c.set_len(50);
        assert_eq!(c.page_count(), 1);
        assert_eq!(c.to_vec(), vec![0; 50]);
        assert!(c.invariant_holds());
    }

    #[test]
    fn intervals_merge_clip_and_report_gaps() {
        let mut i = Intervals::default();
        i.insert(10, 20);
        i.insert(21, 25);
        i.insert(40, 50);
        assert_eq!(i.iter().collect::<Vec<_>>(), vec![(10, 25), (40, 50)]);
        assert!(i.contains(25) && !i.contains(26) && i.contains(40));
        assert_eq!(i.uncovered(0, 60), vec![(0, 9), (26, 39), (51, 60)]);
        assert_eq!(i.uncovered(12, 45), vec![(26, 39)]);
        assert_eq!(i.uncovered(12, 20), vec![]);
        i.clip(45);
        assert_eq!(i.iter().collect::<Vec<_>>(), vec![(10, 25), (40, 44)]);
        i.clip(5);
        assert!(i.is_empty());
    }

    #[test]
    fn shared_pages_are_copied_on_write() {
        let mut a = Content::empty();
        a.write_pages(0, &pages_of(&[3; 8192]));
        let b = a.clone();
        a.write(100, &[9; 10]);
        assert_eq!(b.to_vec(), vec![3; 8192]);
        assert_eq!(&a.to_vec()[100..110], &[9; 10]);
        assert_eq!(a.to_vec()[110], 3);
        a.zero_raw(0, 8192);
        assert_eq!(b.to_vec(), vec![3; 8192]);
        assert!(a.to_vec().iter().all(|x| *x == 0));
    }
}
