//! The run's checkers, described in `docs/checkers.md`: each violation names its checker, the node, the
//! simulated time and the trace lines that led to it.
//!
//! Why here and not in raft-core: a checker judges the system from outside, from what any observer
//! could see (roles, commit and written indexes, what a log returns, which files exist, boot results);
//! it never reads a bug switch. Why pure functions: each check takes the observation as plain input
//! (a [`RaftLog`], a list of segment refs, a directory), so that a test can hand it a constructed bad
//! input and see it rejected without relying on a bug in the system under test.

use std::collections::{BTreeMap, BTreeSet};

use raft_core::consensus::RaftLog;
use raft_core::consensus::kv::KvState;
use raft_core::consensus::server::{Role, ServerId};
use raft_core::storage::segref::SegRef;
use raft_core::storage::shared::Directory;
use raft_core::{LogIndex, Seq, Term};
use vfs::FileSystem;

/// Every checker's name, in the order `docs/checkers.md` gives them.
pub const CHECKERS: [&str; 19] = [
    "election-safety",
    "log-matching",
    "leader-completeness",
    "state-machine-safety",
    "commit-durability",
    "linearizability",
    "written-survives",
    "vote-survives",
    "segref-files-exist",
    "no-log-gap",
    "live-indexes-readable",
    "registered-implies-config",
    "node-boots",
    "converges",
    "lagging-follower-caught-up",
    "election-timeouts",
    // Not a property of the design but an observation: a storage call failed on a running node.
    "storage-error",
    // What a recovered log holds, against what its member wrote.
    "log-shape",
    "resources-released",
];

/// A checker's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The checker (one of [`CHECKERS`]).
    pub checker: String,
    /// The node it concerns (`cluster` when it concerns all).
    pub node: String,
    /// Simulated time of the finding.
    pub time_ns: u64,
    /// What was seen.
    pub detail: String,
    /// The trace lines before the finding (filled in by the world when the run ends).
    pub context: Vec<String>,
    /// For a liveness violation: why the group is stuck — a verdict line, then a line per member
    /// (filled in by the world when the run ends; empty for the others).
    pub diagnosis: Vec<String>,
}

/// Whether `log` holds the entry `(index, term)`: by its term there, or because its snapshot covers the
/// index (a committed index below the snapshot is applied; its term is no longer kept).
pub fn holds(log: &mut dyn RaftLog, index: LogIndex, term: Term) -> Result<bool, String> {
    if log.snapshot_index_term().is_some_and(|(s, _)| s >= index) {
        return Ok(true);
    }
    match log.term_at(index) {
        Ok(t) => Ok(t == Some(term)),
        Err(e) => Err(format!("cannot read index {index}: {e}")),
    }
}

/// `leader-completeness`: a new leader's log holds the highest entry committed in a term before its own
/// (`Checkers::highest_committed_before`), and so, by log matching, every entry committed before it.
pub fn leader_completeness(log: &mut dyn RaftLog, committed: (LogIndex, Term)) -> Result<(), String> {
    let (index, term) = committed;
    if holds(log, index, term)? {
        return Ok(());
    }
    let (last, last_term) = log.last_index_term();
    Err(format!(
        "the new leader lacks committed entry {index} (term {term}); its log ends at {last} (term {last_term})"
    ))
}

/// `commit-durability`: the highest committed entry is held by enough voters of the configuration that
/// committed it that no election quorum of that configuration can form without one of them (more than
/// `voters − majority`: a majority when the voters are odd, half when even). `holding` counts voters that
/// hold it, `unknown` voters that are down (their disk is not judged until they boot).
pub fn commit_durability(
    holding: usize,
    unknown: usize,
    voters: usize,
    committed: (LogIndex, Term),
) -> Result<(), String> {
    let quorum = voters / 2 + 1;
    if holding + unknown > voters - quorum.min(voters) {
        return Ok(());
    }
    Err(format!(
        "committed entry {} (term {}) is held by {holding} of {voters} voters ({unknown} down): an election \
         quorum of the others could elect a leader without it",
        committed.0, committed.1
    ))
}

/// `vote-survives`: server `own`, which granted its vote in `term` to `candidate`, recovers in a later term,
/// or in that term with a vote that refuses every other candidate — still `candidate`'s, or its own (Ra's
/// pre-vote round records a vote for itself in the current term, `call_for_election(pre_vote)`). Raft
/// keeps `currentTerm` and `votedFor` on stable storage before answering; a forgotten vote lets the
/// server vote twice in one term: two leaders.
pub fn vote_survives(
    own: &ServerId,
    term: Term,
    candidate: &ServerId,
    recovered_term: Term,
    recovered_vote: Option<&ServerId>,
) -> Result<(), String> {
    let refuses_others = recovered_vote.is_some_and(|v| v == candidate || v == own);
    if recovered_term > term || (recovered_term == term && refuses_others) {
        return Ok(());
    }
    let vote = recovered_vote.map_or("nobody".to_owned(), |v| v.0.clone());
    Err(format!(
        "voted for {candidate} in term {} before the crash; recovered in term {} having voted for {vote}",
        term.0, recovered_term.0
    ))
}

/// `election-timeouts`: an election timeout a server arms lies in its configured range, `min_ms` to
/// `max_ms` (a `max_ms` below `min_ms` means `min_ms`). Raft's liveness rests on it: timeouts well above
/// the heartbeat interval, spread so that one server usually times out alone.
pub fn election_timeout_in_range(after_ms: u64, min_ms: u64, max_ms: u64) -> Result<(), String> {
    let max_ms = max_ms.max(min_ms);
    if (min_ms..=max_ms).contains(&after_ms) {
        return Ok(());
    }
    Err(format!("armed an election timeout of {after_ms} ms, outside its configured {min_ms} to {max_ms} ms"))
}

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

/// `log-matching`: every index in `from..=to` has the same term and payload in every log.
pub fn log_matching<L: RaftLog>(
    logs: &mut [(String, L)],
    from: LogIndex,
    to: LogIndex,
) -> Result<(), (String, String)> {
    let mut i = from;
    while i <= to {
        let mut seen: Option<(&str, Term, Vec<u8>)> = None;
        for (name, log) in logs.iter_mut() {
            let got = match log.fetch(i) {
                Ok(Some((t, p))) => (t, p.to_vec()),
                Ok(None) => return Err((name.clone(), format!("{name} lacks committed index {i}"))),
                Err(e) => return Err((name.clone(), format!("{name} cannot read committed index {i}: {e}"))),
            };
            match &seen {
                None => seen = Some((name, got.0, got.1)),
                Some((_, t, p)) if *t == got.0 && *p == got.1 => {}
                Some((other, t, _)) => {
                    let what = if *t == got.0 {
                        "the same term but a different payload".to_owned()
                    } else {
                        format!("term {} here, term {t} on {other}", got.0)
                    };
                    return Err((name.clone(), format!("index {i}: {what}")));
                }
            }
        }
        i = LogIndex(i.0 + 1);
    }
    Ok(())
}

/// `state-machine-safety`: members that applied the same index hold the same machine state.
pub fn state_machine_safety(machines: &[(String, LogIndex, &KvState)]) -> Result<(), String> {
    for (a, b) in machines.iter().zip(machines.iter().skip(1)) {
        if a.1 == b.1 && a.2 != b.2 {
            return Err(format!("{} and {} both applied index {} but hold different machine states", a.0, b.0, a.1));
        }
    }
    Ok(())
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

/// `registered-implies-config`: after pre-init every registered server has a readable config (else it
/// can neither restart nor be created anew). `Err` of the outer result: the filesystem itself failed.
pub fn registered_implies_config(directory: &Directory, fs: &mut dyn FileSystem) -> Result<(), String> {
    let registered: Vec<_> = directory.registered().map(|(u, _)| u.clone()).collect();
    for uid in registered {
        match raft_core::storage::durable_files::read_config(fs, uid.as_str()) {
            Ok(Ok(_)) => {}
            Ok(Err(why)) => return Err(format!("{uid} is registered but has no usable config ({why})")),
            Err(e) => return Err(format!("{uid} is registered but its config cannot be read: {e}")),
        }
    }
    Ok(())
}

/// What the `converges` checker sees of one member: `None` when it is down or has no server.
pub type MemberView = Option<(LogIndex, Role, Term)>;

/// Whether the members have converged: all serving, one leader of the highest term, the same applied
/// index everywhere. `Err` says why not.
pub fn converged(view: &[MemberView]) -> Result<(), String> {
    converged_in(view, &(0..view.len()).collect())
}

/// [`converged`] over the members of the configuration in force only (`in_config`: node positions):
/// a member removed from its group has nothing to converge to.
pub fn converged_in(view: &[MemberView], in_config: &BTreeSet<usize>) -> Result<(), String> {
    if let Some(i) = (0..view.len()).find(|i| in_config.contains(i) && view[*i].is_none()) {
        return Err(format!("node n{} is not serving", i + 1));
    }
    let view: Vec<(LogIndex, Role, Term)> =
        view.iter().enumerate().filter(|(i, _)| in_config.contains(i)).filter_map(|(_, v)| v.clone()).collect();
    let top = view.iter().map(|v| v.2).max().unwrap_or(Term(0));
    let leaders = view.iter().filter(|v| v.1 == Role::Leader && v.2 == top).count();
    if leaders != 1 {
        return Err(format!("{leaders} leaders in the highest term {top}"));
    }
    let applied: Vec<u64> = view.iter().map(|v| v.0.0).collect();
    if applied.iter().any(|a| *a != applied[0]) {
        return Err(format!("members applied different indexes: {applied:?}"));
    }
    Ok(())
}

/// `lagging-follower-caught-up`: a follower that asks for leadership (its pre-vote reached the leader of
/// its term) while both are up and connected must be sent something by that leader within `bound_ns`
/// (sent: a message the network then loses counts, as one to a cut-off node does — the obligation is the
/// leader's, and three lost contacts in a row at 20% loss are not a leader that skips its peer). Ra's leader
/// answers a pre-vote by contacting every peer (PR 589 fix 4 included peers in snapshot backoff), except
/// one it is sending a snapshot to, which it contacts when the transfer fails (2 s chunk timeout) and the
/// follower pre-votes again. The bound (4.9 s in the worlds here) sits above that, with room for lost
/// pre-votes, and just below Ra's shortest retry backoff (5 s), so a leader that waits for the backoff
/// timer instead always exceeds it.
#[derive(Debug, Clone)]
pub struct ContactObligations {
    bound_ns: u64,
    /// (leader, follower) → deadline.
    due: BTreeMap<(usize, usize), u64>,
}

impl ContactObligations {
    /// No obligations yet.
    pub fn new(bound_ns: u64) -> ContactObligations {
        ContactObligations { bound_ns, due: BTreeMap::new() }
    }

    /// A pre-vote from `follower` reached `leader`, which leads the pre-vote's term or a later one.
    pub fn pre_vote_delivered(&mut self, leader: usize, follower: usize, now_ns: u64) {
        self.due.entry((leader, follower)).or_insert(now_ns + self.bound_ns);
    }

    /// `leader` sent `follower` something (append-entries, heartbeat or snapshot chunk).
    pub fn contacted(&mut self, leader: usize, follower: usize) {
        self.due.remove(&(leader, follower));
    }

    /// `node` crashed, was cut off or stopped leading: what it owed or was owed lapses.
    pub fn forget(&mut self, node: usize) {
        self.due.retain(|(l, f), _| *l != node && *f != node);
    }

    /// Whether anything is owed.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// `leader` owes nothing to a follower `still_peer` rejects (removed from its configuration).
    pub fn keep_peers(&mut self, leader: usize, still_peer: impl Fn(usize) -> bool) {
        self.due.retain(|(l, f), _| *l != leader || still_peer(*f));
    }

    /// `leader` stopped leading: it owes nothing any more.
    pub fn forget_leader(&mut self, leader: usize) {
        self.due.retain(|(l, _), _| *l != leader);
    }

    /// The first obligation overdue at `now_ns`: (leader, follower, deadline).
    pub fn overdue(&self, now_ns: u64) -> Option<(usize, usize, u64)> {
        self.due.iter().find(|(_, d)| **d < now_ns).map(|((l, f), d)| (*l, *f, *d))
    }

    /// The bound.
    pub fn bound_ns(&self) -> u64 {
        self.bound_ns
    }
}

/// The kinds of client operation the workload issues. A service that never answers one kind after the
/// heal has not converged, however many of the others it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// A read of a key.
    Get = 0,
    /// A write of a key.
    Put = 1,
    /// A compare-and-set that expects the key absent.
    CasOnAbsent = 2,
    /// A compare-and-set that expects the key to hold a value (only in worlds whose
    /// `cas_expected_percent` is above 0).
    CasOnValue = 3,
}

impl OperationKind {
    /// Every kind, in the order `Checkers` counts them.
    pub const ALL: [OperationKind; 4] =
        [OperationKind::Get, OperationKind::Put, OperationKind::CasOnAbsent, OperationKind::CasOnValue];

    fn name(self) -> &'static str {
        match self {
            OperationKind::Get => "get",
            OperationKind::Put => "put",
            OperationKind::CasOnAbsent => "compare-and-set on an absent key",
            OperationKind::CasOnValue => "compare-and-set on a value",
        }
    }
}

/// The checkers' running state over one run.
#[derive(Debug, Clone)]
pub struct Checkers {
    violations: Vec<Violation>,
    /// (group, term) → its leader.
    leaders: BTreeMap<(usize, u64), String>,
    /// Per group, when a leader of a new term was last seen.
    last_election_ns: BTreeMap<usize, u64>,
    /// Client operations invoked and not yet answered, by kind.
    invoked: BTreeMap<u64, OperationKind>,
    liveness_start_ns: Option<u64>,
    /// Client operations answered since the heal, per kind (`OperationKind::ALL`'s order).
    answered_in_liveness: [u64; 4],
    /// The kinds the world's workload issues, which `converges` wants answered after the heal.
    kinds_issued: [bool; 4],
    /// Per group, the highest entry a leader committed: (index, term of that entry).
    highest_committed: BTreeMap<usize, (LogIndex, Term)>,
    /// Per group, the voters (node positions) of the configuration that committed it.
    committing_voters: BTreeMap<usize, BTreeSet<usize>>,
    /// Per group and entry term, the highest committed index of that term (`leader-completeness` judges a
    /// leader of term T by the entries committed in terms before T), less the terms an earlier term beats
    /// (`committed_in_term`).
    committed_by_term: BTreeMap<(usize, Term), LogIndex>,
    /// `lagging-follower-caught-up`.
    pub obligations: ContactObligations,
}

impl Checkers {
    /// No findings yet; a follower must hear from the leader within `contact_bound_ms` of its pre-vote.
    pub fn new(contact_bound_ms: u64) -> Checkers {
        Checkers {
            violations: Vec::new(),
            leaders: BTreeMap::new(),
            last_election_ns: BTreeMap::new(),
            invoked: BTreeMap::new(),
            liveness_start_ns: None,
            answered_in_liveness: [0; 4],
            kinds_issued: [true, true, true, false],
            highest_committed: BTreeMap::new(),
            committing_voters: BTreeMap::new(),
            committed_by_term: BTreeMap::new(),
            obligations: ContactObligations::new(contact_bound_ms * 1_000_000),
        }
    }

    /// The first violation.
    pub fn first(&self) -> Option<&Violation> {
        self.violations.first()
    }

    /// Records a violation.
    pub fn violation(&mut self, checker: &str, node: &str, time_ns: u64, detail: String) {
        debug_assert!(CHECKERS.contains(&checker), "unknown checker {checker}");
        self.violations.push(Violation {
            checker: checker.into(),
            node: node.into(),
            time_ns,
            detail,
            context: Vec::new(),
            diagnosis: Vec::new(),
        });
    }

    /// Records `result` of `checker` as a violation when it is an `Err`; true when it was.
    pub fn judge(&mut self, checker: &str, node: &str, time_ns: u64, result: Result<(), String>) -> bool {
        match result {
            Ok(()) => false,
            Err(detail) => {
                self.violation(checker, node, time_ns, detail);
                true
            }
        }
    }

    /// Every violation recorded.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Every violation recorded, to fill in what the world knows at the end.
    pub fn violations_mut(&mut self) -> &mut Vec<Violation> {
        &mut self.violations
    }

    /// Whether `node` leading `term` of `group` is news (for the trace).
    pub fn is_new_leader(&self, group: usize, term: u64, node: &str) -> bool {
        self.leaders.get(&(group, term)).is_none_or(|l| l != node)
    }

    /// `election-safety`: at most one leader per term of a group.
    pub fn leader(&mut self, group: usize, term: u64, node: &str, time_ns: u64) -> Option<Violation> {
        match self.leaders.get(&(group, term)) {
            Some(other) if other != node => {
                let detail = format!("{node} and {other} both lead term {term}");
                self.violation("election-safety", node, time_ns, detail);
                self.violations.last().cloned()
            }
            Some(_) => None,
            None => {
                self.leaders.insert((group, term), node.into());
                self.last_election_ns.insert(group, time_ns);
                None
            }
        }
    }

    /// When a leader of a new term of `group` was last seen.
    pub fn last_election_ns(&self, group: usize) -> Option<u64> {
        self.last_election_ns.get(&group).copied()
    }

    /// A leader of `group` advanced its commit index to `index`, whose entry has `term`, with `voters`
    /// (node positions) the voters of the configuration it had in force.
    pub fn commit_advanced(&mut self, group: usize, index: LogIndex, term: Term, voters: BTreeSet<usize>) {
        self.committed_in_term(group, term, index);
        if self.highest_committed(group).is_none_or(|(i, _)| index > i) {
            self.highest_committed.insert(group, (index, term));
            self.committing_voters.insert(group, voters);
        }
    }

    /// Notes that an entry of `term` at `index` was committed. What `highest_committed_before` asks is
    /// the highest (index, term) among earlier terms, so an entry another of an earlier term beats in
    /// index is never an answer: the map keeps only the others (indexes never decreasing with the term),
    /// and a question is one lookup rather than a walk over every term of a long run.
    fn committed_in_term(&mut self, group: usize, term: Term, index: LogIndex) {
        let index = self.committed_by_term.get(&(group, term)).map_or(index, |&i| i.max(index));
        let earlier = self.committed_by_term.range((group, Term(0))..(group, term)).next_back();
        if earlier.is_some_and(|(_, &i)| i > index) {
            return;
        }
        self.committed_by_term.insert((group, term), index);
        let beaten: Vec<(usize, Term)> = self
            .committed_by_term
            .range((group, Term(term.0 + 1))..=(group, Term(u64::MAX)))
            .take_while(|&(_, &i)| i < index)
            .map(|(&k, _)| k)
            .collect();
        for k in beaten {
            self.committed_by_term.remove(&k);
        }
    }

    /// The voters of the configuration that committed the highest entry of `group`.
    pub fn committing_voters(&self, group: usize) -> Option<&BTreeSet<usize>> {
        self.committing_voters.get(&group)
    }

    /// The highest entry of `group` committed so far.
    pub fn highest_committed(&self, group: usize) -> Option<(LogIndex, Term)> {
        self.highest_committed.get(&group).copied()
    }

    /// The highest entry of `group` committed so far among those of a term before `term`: what a leader
    /// of `term` must hold (Raft's Leader Completeness: an entry committed in a term is in the log of
    /// every leader of a higher term). A leader of a lower term — elected by members that had not yet
    /// heard of the entry's term — need not hold it, and cannot commit past it: the members that did hear
    /// of that term refuse its appends.
    pub fn highest_committed_before(&self, group: usize, term: Term) -> Option<(LogIndex, Term)> {
        self.committed_by_term.range((group, Term(0))..(group, term)).next_back().map(|(&(_, t), &i)| (i, t))
    }

    /// A client operation was invoked.
    pub fn invoke(&mut self, request: u64, kind: OperationKind) {
        self.invoked.insert(request, kind);
    }

    /// A client operation completed with a result.
    pub fn committed(&mut self, request: u64, _time_ns: u64) {
        if let Some(kind) = self.invoked.remove(&request)
            && self.liveness_start_ns.is_some()
        {
            self.answered_in_liveness[kind as usize] += 1;
        }
    }

    /// A client operation that can never complete (its command can never commit): no longer awaited.
    pub fn forget_invocation(&mut self, request: u64) {
        self.invoked.remove(&request);
    }

    /// Client operations completed since the heal.
    pub fn committed_in_liveness(&self) -> u64 {
        self.answered_in_liveness.iter().sum()
    }

    /// The workload also issues `kind` (by default it issues every kind but compare-and-sets on a value).
    pub fn kind_issued(&mut self, kind: OperationKind) {
        self.kinds_issued[kind as usize] = true;
    }

    /// The kinds the workload issues that have not been answered since the heal.
    fn kinds_unanswered_in_liveness(&self) -> impl Iterator<Item = OperationKind> + '_ {
        OperationKind::ALL
            .into_iter()
            .filter(|k| self.kinds_issued[*k as usize] && self.answered_in_liveness[*k as usize] == 0)
    }

    /// Whether every kind of client operation the workload issues has been answered since the heal: the
    /// post-heal workload goes on until it has, and `converges` wants it.
    pub fn every_kind_answered_in_liveness(&self) -> bool {
        self.kinds_unanswered_in_liveness().next().is_none()
    }

    /// Faults are healed.
    pub fn liveness_started(&mut self, time_ns: u64) {
        self.liveness_start_ns = Some(time_ns);
    }

    /// `converges`, at the liveness bound: the members have converged (`members`: [`converged`] over
    /// every group) and the cluster answered client operations of every kind after the heal.
    pub fn check_converged(&mut self, members: Result<(), String>, time_ns: u64) {
        // A kind never answered comes first when others were: the workload goes on until every kind has
        // been, so the members are still applying its operations at the bound.
        let unanswered: Vec<&str> = self.kinds_unanswered_in_liveness().map(OperationKind::name).collect();
        let result = if self.committed_in_liveness() > 0 && !unanswered.is_empty() {
            Err(format!("no {} answered after the heal", unanswered.join(" and no ")))
        } else {
            members.map_err(|why| format!("{why} at the end of the liveness phase")).and_then(|()| {
                if self.committed_in_liveness() == 0 { Err("nothing committed after the heal".into()) } else { Ok(()) }
            })
        };
        self.judge("converges", "cluster", time_ns, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `highest_committed_before` answers as a walk over every (term, index) committed would, for
    /// commits in any order (a buggy system's too), while keeping only the terms that can be answers.
    #[test]
    fn the_highest_entry_committed_before_a_term_is_the_one_a_full_walk_finds() {
        let mut state = 7u64;
        let mut draw = |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        for case in 0..300 {
            let mut checkers = Checkers::new(1_000);
            let mut all: Vec<(Term, LogIndex)> = Vec::new();
            let (terms, indexes) = (1 + draw(12), 1 + draw(30));
            for _ in 0..draw(40) {
                let (t, i) = (Term(1 + draw(terms)), LogIndex(1 + draw(indexes)));
                checkers.commit_advanced(0, i, t, BTreeSet::new());
                all.push((t, i));
                for question in 0..=terms + 1 {
                    let walk = all.iter().filter(|(t, _)| t.0 < question).map(|&(t, i)| (i, t)).max();
                    assert_eq!(
                        checkers.highest_committed_before(0, Term(question)),
                        walk,
                        "case {case}, term {question}"
                    );
                }
            }
            let kept: Vec<LogIndex> = checkers.committed_by_term.values().copied().collect();
            assert!(kept.windows(2).all(|w| w[0] <= w[1]), "case {case}: {kept:?}");
        }
    }
}
