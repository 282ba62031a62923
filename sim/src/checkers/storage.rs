//! The storage promises' checks: what a member's storage must still hold after a crash
//! (`written-survives`, `no-log-gap`, `log-shape`), what its segment refs and live indexes must name
//! (`segref-files-exist`, `live-indexes-readable`), what a snapshot must free (`resources-released`), and
//! what a running log may report as written (`last-written`).
//! Pure functions over plain observations, as the rest of `crate::checkers`.

use std::collections::{BTreeMap, BTreeSet};

use raft_core::consensus::RaftLog;
use raft_core::storage::segref::SegRef;
use raft_core::{LogIndex, Seq, TableId, Term};
use vfs::{Fd, FileSystem};

/// `written-survives`: after a crash that kept synced data, a server's last written entry is at least as
/// up to date (Raft's order: term, then index) as the one it had reported `Written` before the crash.
/// (A newer term may legitimately replace unsynced or overwritten entries; an older or shorter log means
/// an acknowledged write was lost.)
pub fn written_survives(before: (LogIndex, Term), after: (LogIndex, Term)) -> Result<(), String> {
    if after.1 > before.1 || (after.1 == before.1 && after.0 >= before.0) {
        return Ok(());
    }
    Err(format!(
        "last written was {} (term {}) before the crash and is {} (term {}) after recovery",
        before.0, before.1, after.0, after.1
    ))
}

/// `no-log-gap`: the snapshot and the log are adjacent or overlap, and every index from the log's first
/// index up to the last written one is readable.
pub fn no_log_gap(log: &mut dyn RaftLog) -> Result<(), String> {
    let snapshot = log.snapshot_index_term().map(|(s, _)| s);
    let first = log.first_index();
    let (written, _) = log.last_written();
    if let Some(s) = snapshot
        && first.0 > s.0 + 1
    {
        return Err(format!("snapshot ends at {s} but the log starts at {first}"));
    }
    let from = match snapshot {
        Some(s) => LogIndex(first.0.max(s.0 + 1)),
        None => first,
    };
    let mut i = from;
    while i <= written {
        match log.fetch(i) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(format!("index {i} is missing between {from} and last written {written}")),
            Err(e) => return Err(format!("index {i} is unreadable: {e}")),
        }
        i = LogIndex(i.0 + 1);
    }
    Ok(())
}

/// How many indexes below the highest written one a member's [`WrittenEntries`] remembers at least (it
/// forgets in steps of as many, so it holds at most twice this): 24 bytes each, 6 MiB per member at
/// most; in the soak (an operation every 20 ms), 45 to 90 minutes of writes.
pub const WRITTEN_HORIZON_INDEXES: usize = 1 << 17;

/// A 64-bit digest of a value or an entry's bytes, a word at a time (a multiply-rotate mix, then the
/// length). Not cryptographic: it tells apart bytes a bug mixed up, not bytes an adversary chose.
pub fn digest(bytes: &[u8]) -> u64 {
    let mix = |h: u64, w: u64| (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        hash = mix(hash, u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    mix(mix(hash, u64::from_le_bytes(tail)), bytes.len() as u64)
}

/// What one member wrote to its log, as the simulator saw its appends go to the WAL: at each index,
/// every version (term and digest of the bytes) ever written there. A crash may bring back any of them
/// (an older one when a newer one was never synced), never anything else.
///
/// It remembers the last [`WRITTEN_HORIZON_INDEXES`] indexes (at least) below the highest one written,
/// so that a run of a simulated day does not hold every index it ever wrote; `log-shape` does not judge
/// an entry below that horizon (a member serving an entry that old is far below its snapshot, which
/// `log-shape`'s snapshot rule and `no-log-gap` judge without it).
#[derive(Debug, Clone, Default)]
pub struct WrittenEntries {
    /// Indexes below this one are forgotten (0: none).
    floor: u64,
    /// The first version written at each index from `base` on (index `base + k` at `first[k]`): one
    /// flat vector, not a map of vectors, because a long run writes millions of indexes and most get
    /// one version (the soak: a map spent about half the heap).
    base: u64,
    first: Vec<Option<(Term, u64)>>,
    /// Further versions at an index (rewritten after a leader change, or re-sent with other bytes).
    more: BTreeMap<u64, Vec<(Term, u64)>>,
}

impl WrittenEntries {
    /// The member appended (or re-sent) `bytes` at `index` in `term`.
    pub fn note(&mut self, index: LogIndex, term: Term, bytes: &[u8]) {
        if index.0 < self.floor {
            return;
        }
        let version = (term, digest(bytes));
        if self.first.is_empty() {
            self.base = index.0;
        }
        if index.0 < self.base {
            // Below everything noted so far (not seen in practice): widen the vector downwards.
            let gap = (self.base - index.0) as usize;
            self.first.splice(0..0, std::iter::repeat_n(None, gap));
            self.base = index.0;
        }
        let at = (index.0 - self.base) as usize;
        if at >= self.first.len() {
            self.first.resize(at + 1, None);
        }
        match self.first[at] {
            None => self.first[at] = Some(version),
            Some(v) if v == version => {}
            Some(_) => {
                let more = self.more.entry(index.0).or_default();
                if !more.contains(&version) {
                    more.push(version);
                }
            }
        }
        if self.first.len() >= 2 * WRITTEN_HORIZON_INDEXES {
            let forget = self.first.len() - WRITTEN_HORIZON_INDEXES;
            self.first.drain(..forget);
            self.base += forget as u64;
            self.floor = self.base;
            self.more = self.more.split_off(&self.base);
        }
    }

    /// Indexes remembered.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Whether `index` is above the horizon (remembered, judged).
    pub fn remembers(&self, index: LogIndex) -> bool {
        index.0 >= self.floor
    }

    /// The highest index ever written.
    pub fn highest(&self) -> Option<LogIndex> {
        self.first.iter().rposition(Option::is_some).map(|k| LogIndex(self.base + k as u64))
    }

    /// Every version written at `index`, first one first.
    fn versions(&self, index: LogIndex) -> impl Iterator<Item = (Term, u64)> + '_ {
        let first = index.0.checked_sub(self.base).and_then(|k| self.first.get(k as usize).copied().flatten());
        first.into_iter().chain(self.more.get(&index.0).into_iter().flatten().copied())
    }

    /// Whether `(term, digest)` was written at `index`.
    pub fn wrote(&self, index: LogIndex, term: Term, digest: u64) -> bool {
        self.versions(index).any(|v| v == (term, digest))
    }

    fn describe(&self, index: LogIndex) -> String {
        let terms: Vec<String> = self.versions(index).map(|(t, _)| format!("term {t}")).collect();
        if terms.is_empty() {
            "nothing was written there".into()
        } else {
            format!("written there: {}", terms.join(", "))
        }
    }
}

/// One entry a member's storage holds, read from where it lies (a mem table or a segment file) rather
/// than through the log, which serves only one copy of each index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Where: `mem table t3`, `segment n1/0000000000000002.segment`.
    pub place: String,
    /// Its index.
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
    /// [`digest`] of its bytes.
    pub digest: u64,
}

/// `log-shape`: a recovered log holds only what its member wrote, where it wrote it. Its last index is
/// no higher than the highest index written (or its snapshot's); nothing at or below the snapshot index
/// is readable except the snapshot's live indexes; every entry it serves, and every entry its mem tables
/// and segments hold, is a version (term and bytes) the member wrote at that index.
pub fn log_shape(log: &mut dyn RaftLog, written: &WrittenEntries, stored: &[StoredEntry]) -> Result<(), String> {
    let snapshot = log.snapshot_index_term().map(|(s, _)| s);
    let (last, _) = log.last_index_term();
    let ceiling = written.highest().max(snapshot).unwrap_or(LogIndex(0));
    if last > ceiling {
        return Err(format!("the log ends at {last}, above anything written to it (highest {ceiling})"));
    }
    let (last_written, _) = log.last_written();
    if last_written > last {
        return Err(format!("last written {last_written} is above the log's last index {last}"));
    }
    let first = log.first_index();
    if let Some(s) = snapshot {
        let live = log.snapshot_live_indexes();
        let mut i = first;
        while i <= s.min(last) {
            if !live.contains(i) && matches!(log.fetch(i), Ok(Some(_))) {
                return Err(format!(
                    "index {i} is readable at or below snapshot {s} and is not one of its live indexes"
                ));
            }
            i = LogIndex(i.0 + 1);
        }
        for li in live.iter() {
            if let Ok(Some((t, bytes))) = log.fetch(li) {
                check_written(written, "the log", li, t, digest(&bytes))?;
            }
        }
    }
    let mut i = match snapshot {
        Some(s) => LogIndex(first.0.max(s.0 + 1)),
        None => first,
    };
    while i <= last {
        // Unreadable or missing entries are `no-log-gap`'s and `storage-error`'s to judge.
        if let Ok(Some((t, bytes))) = log.fetch(i) {
            check_written(written, "the log", i, t, digest(&bytes))?;
        }
        i = LogIndex(i.0 + 1);
    }
    for e in stored {
        check_written(written, &e.place, e.index, e.term, e.digest)?;
    }
    Ok(())
}

fn check_written(
    written: &WrittenEntries,
    place: &str,
    index: LogIndex,
    term: Term,
    digest: u64,
) -> Result<(), String> {
    if !written.remembers(index) || written.wrote(index, term, digest) {
        return Ok(());
    }
    Err(format!(
        "{place} holds index {index} in term {term} with bytes the member never wrote there ({})",
        written.describe(index)
    ))
}

/// `segref-files-exist`: every segment ref of a server names an existing file in `dir`.
pub fn segref_files_exist(refs: &[SegRef], dir: &str, fs: &mut dyn FileSystem) -> Result<(), String> {
    for r in refs {
        let path = if dir.is_empty() { r.file.clone() } else { format!("{dir}/{}", r.file) };
        match fs.exists(&path) {
            Ok(true) => {}
            Ok(false) => return Err(format!("segment ref {r} names a missing file")),
            Err(e) => return Err(format!("segment ref {r}: {e}")),
        }
    }
    Ok(())
}

/// `resources-released`, for a segment file at the end of a run: no entry was appended to it after its
/// data had passed the segment size (Ra's `ra_log_segment:is_full`, checked before every append: full
/// once the data written exceeds `max_size`, so a file holds at most that plus one entry). `records`:
/// the (data offset, length) of each entry its index names within the range its segment ref gives (an
/// index record a crash garbled names some other index); the first data offset stands for the data's
/// start, which can only make the check looser.
pub fn segment_within_size(file: &str, records: &[(u64, u32)], max_size_bytes: u64) -> Result<(), String> {
    let Some(start) = records.iter().map(|&(offset, _)| offset).min() else { return Ok(()) };
    let Some(&(last, len)) = records.iter().max_by_key(|&&(offset, _)| offset) else { return Ok(()) };
    if last - start > max_size_bytes {
        return Err(format!(
            "segment {file} took an entry ({len} bytes) at byte {} of its data, past its size of {max_size_bytes} bytes",
            last - start
        ));
    }
    Ok(())
}

/// `resources-released`, for a node's open handles after a step no process of it failed in: every open
/// handle is one its storage still holds — the WAL's file, a snapshot a server is receiving — and every
/// handle it holds is open. Every handle Ra's storage keeps has an owner that closes it (the WAL's
/// rollover closes the file it leaves, `ra_log_segment:close`, the open-segment cache `ra_flru` closes
/// what it evicts); raft-core opens every other file for the call that uses it (its segment reads
/// too: it keeps parsed indexes, not handles). A handle nothing holds can never be closed, and a node
/// running for months runs out of them. `open`: the disk's handles and their paths; `held`: each
/// handle held and by what.
pub fn handles_released(open: &[(Fd, &str)], held: &[(Fd, &str)]) -> Result<(), String> {
    if let Some((fd, path)) = open.iter().find(|(fd, _)| !held.iter().any(|(h, _)| h == fd)) {
        let holders = match held {
            [] => "nothing holds a handle".to_string(),
            _ => held.iter().map(|(h, by)| format!("{by} holds handle {}", h.0)).collect::<Vec<_>>().join(", "),
        };
        return Err(format!("handle {} on {path} is still open, and nothing holds it ({holders})", fd.0));
    }
    if let Some((fd, by)) = held.iter().find(|(h, _)| !open.iter().any(|(fd, _)| fd == h)) {
        return Err(format!("{by} holds handle {}, which is closed", fd.0));
    }
    Ok(())
}

/// `live-indexes-readable`: every index the machine still reads is readable from the log.
pub fn live_indexes_readable(live: &Seq, log: &mut dyn RaftLog) -> Result<(), String> {
    for li in live.iter() {
        match log.fetch(li) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(format!("live index {li} is missing from the log")),
            Err(e) => return Err(format!("live index {li} is unreadable: {e}")),
        }
    }
    Ok(())
}

/// What `resources-released` needs of a log that has just handled a snapshot.
#[derive(Debug, Clone)]
pub struct AfterSnapshot<'a> {
    /// The snapshot's index.
    pub snapshot: LogIndex,
    /// The indexes the snapshot's machine still reads from the log.
    pub live: &'a Seq,
    /// Every index the server's mem tables hold now.
    pub in_memory: &'a Seq,
    /// The segment refs the log held before it handled the snapshot.
    pub refs_before: &'a [SegRef],
    /// The segment refs it holds now.
    pub refs_now: &'a [SegRef],
    /// The files in its directory now.
    pub on_disk: &'a BTreeSet<String>,
    /// Files an unlink of which failed (Ra deletes best effort and forgets them).
    pub unlink_failed: &'a BTreeSet<String>,
}

/// `resources-released`: once a running log has handled a snapshot — taken, or installed from a leader
/// — what the snapshot made redundant is gone (Ra's `ra_log:handle_event({snapshot_written, …})` and
/// `ra_log:install_snapshot`: `ra_mt:set_first` releases the mem tables, a minor compaction deletes the
/// segments). Memory holds no entry below the smallest index the log still keeps (its smallest live
/// index, else the one above the snapshot); of the segments the log named before, each lying wholly at or
/// below the snapshot and holding no live index is neither named nor on disk any more — all but the
/// newest, which the segment writer may still append to. (Segments an overwrite made the log forget are
/// not its to delete: Ra's next init does.) Without this, a log that never releases memory or disk passes
/// every other checker: reads go through what it still names.
pub fn resources_released(seen: &AfterSnapshot<'_>) -> Result<(), String> {
    let above = LogIndex(seen.snapshot.0.saturating_add(1));
    let kept_from = seen.live.first().map_or(above, |l| l.min(above));
    let stale = seen.in_memory.below(kept_from);
    if let (Some(lo), Some(hi)) = (stale.first(), stale.last()) {
        return Err(format!(
            "after its snapshot at {} its mem tables still hold indexes {lo}..{hi} ({} of them) below {kept_from}",
            seen.snapshot,
            stale.len()
        ));
    }
    let newest = seen.refs_before.iter().map(|r| r.file.as_str()).max();
    for r in seen.refs_before {
        let redundant = Some(r.file.as_str()) != newest
            && r.last <= seen.snapshot
            && seen.live.in_range(r.first, r.last).is_empty()
            && !seen.unlink_failed.contains(&r.file);
        if !redundant {
            continue;
        }
        if seen.refs_now.iter().any(|n| n.file == r.file) {
            return Err(format!(
                "after its snapshot at {} its log still names segment {r}, which holds no live index",
                seen.snapshot
            ));
        }
        if seen.on_disk.contains(&r.file) {
            return Err(format!(
                "after its snapshot at {} segment {r} is still on disk: it holds no live index",
                seen.snapshot
            ));
        }
    }
    Ok(())
}

/// `resources-released`, for a flush: right after a running log has handled the segment writer's
/// notification that table `t` is flushed up to index `e` (each of `flushed`), its mem tables — `held`,
/// each table of the server with the indexes it holds now — keep no entry of `t`, nor of a table older
/// than `t`, at or below `e`: the segments hold them now (Ra's `ra_log:handle_event({segments, …})` →
/// `ra_mt:record_flushed`, which releases the table up to the flushed index and every older table below
/// it). Table ids grow with creation, so an older table has a smaller id.
pub fn flush_released(flushed: &[(TableId, LogIndex)], held: &[(TableId, Seq)]) -> Result<(), String> {
    for &(t, e) in flushed {
        for (tid, indexes) in held.iter().filter(|(tid, _)| *tid <= t) {
            let kept = indexes.limit(e);
            if let (Some(lo), Some(hi)) = (kept.first(), kept.last()) {
                return Err(format!(
                    "after the flush of table t{} up to {e} its mem tables still hold indexes {lo}..{hi} ({} of \
                     them) of table t{}",
                    t.0,
                    kept.len(),
                    tid.0
                ));
            }
        }
    }
    Ok(())
}

/// A log event after which `last-written` holds the last written index to what it was before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEventHandled {
    /// The segment writer's notification of a flush (Ra's `segments`).
    Flush,
    /// A snapshot taken (Ra's `snapshot_written`).
    Snapshot,
}

impl std::fmt::Display for LogEventHandled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogEventHandled::Flush => "a flush",
            LogEventHandled::Snapshot => "a snapshot",
        })
    }
}

/// What `last-written` reads of a running member after one of its steps (never while it receives a
/// snapshot: the snapshot's sparse live entries move the log's last index below its last written one
/// until the install, as in Ra's `ra_log:write_sparse`).
#[derive(Debug, Clone)]
pub struct WrittenSeen {
    /// The log's last written index and term: what its replies report as written.
    pub last_written: (LogIndex, Term),
    /// The log's last index (its snapshot's when the log proper is empty; none when it has neither).
    pub last_index: Option<LogIndex>,
    /// The log's snapshot (index, term).
    pub snapshot: Option<(LogIndex, Term)>,
    /// The term the member's mem tables hold at the last written index (the newest table holding it).
    pub memory_term: Option<Term>,
    /// Whether one of the log's segment refs spans the last written index.
    pub in_segments: bool,
    /// When the step handled a flush or a snapshot: the last written index just before it.
    pub before_event: Option<(LogIndex, LogEventHandled)>,
    /// When the step handled a flush: the highest index the log's segment refs name now.
    pub segments_last: Option<LogIndex>,
    /// When the step handled a flush and a segment ref spans the last written index: the term the
    /// segment the log reads that index from holds there (read through a `Peek`, not a call).
    pub segment_term: Option<Term>,
}

/// `last-written`: the last written index and term a running log holds — what its `append_entries`
/// replies report, and what the leader counts towards commitment — name an entry the log holds, with
/// that entry's term; and handling a flush or a snapshot never lowers it.
///
/// - It is never above the log's last index nor below its snapshot's, and at the snapshot's index it
///   carries the snapshot's term (Ra's `ra_log:write/2`, which lowers it before an overwrite "otherwise,
///   we might report a stale, higher `last_written` index"; `set_last_index`; `handle_event` on
///   `snapshot_written`, which raises it to the snapshot).
/// - Above the snapshot, where the mem tables hold the index and no segment spans it, its term is the
///   mem tables' (a segment may hold an older version there, taken by Ra's flush handling while an
///   overwrite is still pending).
/// - Right after a flush, where a segment spans the index, its term is the one that segment holds there
///   (Ra's flush handling reads it there: `ra_log_segments:fetch_term`) or, where the mem tables hold
///   the index too, theirs (an overwrite written since).
/// - `ra_log:handle_event({segments, …})` only raises it, and raises it to the segments' last index
///   when that is higher ("the segment writer flush _could_ over take WAL notifications": what a segment
///   holds is written); raft-core does so only up to the log's last index (one a later overwrite cut off
///   is not part of the log), and so is this rule. `{snapshot_written, …}` keeps it or raises it to the
///   snapshot's.
pub fn last_written(seen: &WrittenSeen) -> Result<(), String> {
    let (lw, term) = seen.last_written;
    let shown = format!("last written {lw} (term {term})");
    if let Some((before, event)) = seen.before_event
        && lw < before
    {
        return Err(format!("handling {event} lowered the last written index from {before} to {lw}"));
    }
    let last = seen.last_index.unwrap_or(LogIndex(0));
    if let Some(s) = seen.segments_last
        && lw < s
        && s <= last
    {
        return Err(format!("{shown} is below {s}, the last index its segments hold, after it handled a flush"));
    }
    if lw > last {
        return Err(format!("{shown} is above the log's last index {last}"));
    }
    if let Some((s, snapshot_term)) = seen.snapshot {
        if lw < s {
            return Err(format!("{shown} is below the snapshot's index {s}"));
        }
        if lw == s {
            return match term == snapshot_term {
                true => Ok(()),
                false => Err(format!("{shown} is the snapshot's index, whose term is {snapshot_term}")),
            };
        }
    }
    match (seen.memory_term, seen.segment_term) {
        (Some(held), _) if held != term && !seen.in_segments => {
            Err(format!("{shown}: the mem tables hold term {held} there and no segment spans it"))
        }
        (memory, Some(on_disk)) if on_disk != term && memory != Some(term) => {
            let tables = memory.map_or(String::new(), |held| format!(", and its mem tables term {held}"));
            Err(format!("{shown} after a flush: the segment it is read from holds term {on_disk} there{tables}"))
        }
        _ => Ok(()),
    }
}
