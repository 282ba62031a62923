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
use raft_core::storage::shared::Directory;
use raft_core::{LogIndex, Term};
use vfs::FileSystem;

mod storage;
pub use storage::*;

/// Every checker's name, in the order `docs/checkers.md` gives them.
pub const CHECKERS: [&str; 20] = [
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
    "last-written",
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
