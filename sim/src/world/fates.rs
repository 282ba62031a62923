//! What became of client commands nobody answered: whether each was committed (it took effect) or can
//! never be (its place in the log went to another entry). An unknown operation may take effect at any
//! time, so the history must keep it for the rest of the run; one whose command can never be committed
//! did not happen, and the history can let it go (`linearizability::windows::Windows::retire`). Without
//! this, a day-long run holds every command a crash lost.
//!
//! How it knows, from what it sees and without reading a disk (a read is a filesystem call, and would
//! change the run): every append a member asks of its WAL names the entry's index, term and command. A
//! command's *position* is (group, index, term). When a leader's commit index passes a position, the
//! leader's own latest append at that index says what was committed there: the same term — the command
//! (Log Matching: one entry per index and term); another term — never this command (in a correct system
//! a committed entry is never replaced; a system that did replace it, or applied the command anyway,
//! shows it as a linearizability violation: a value nobody wrote). A member's appends are forgotten when
//! it crashes or its server stops (unsynced ones may be gone) and when it installs a snapshot (its log
//! below it is the snapshot's): a position whose leader has no append there since stays undecided, and
//! its command stays unknown, as before.
//!
//! Owns: `Fates`. Does not decide which commands to follow (the client workload does) or what to do with
//! a dead one (the history).

use std::collections::BTreeMap;

use raft_core::types::Term;

/// What a commit showed about a followed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Committed: it takes effect.
    Committed(u64),
    /// Every place it was appended holds another committed entry: it never takes effect.
    Dead(u64),
}

#[derive(Debug, Clone, Default)]
pub(super) struct Fates {
    /// Followed commands' positions: (group, index) → (term, request) of each.
    at: BTreeMap<(usize, u64), Vec<(Term, u64)>>,
    /// Each followed request's positions not yet decided: (group, index, term).
    open: BTreeMap<u64, Vec<(usize, u64, Term)>>,
    /// At each (group, index) some position has: each member's latest append there since it last went
    /// down, as (node, term).
    latest: BTreeMap<(usize, u64), Vec<(usize, Term)>>,
}

impl Fates {
    /// Member `g` of node `node` asked its WAL to append `(index, term)`, which carries `request`'s
    /// command when `request` is `Some` (and is followed: the caller knows which are unanswered).
    pub(super) fn appended(&mut self, node: usize, g: usize, index: u64, term: Term, request: Option<u64>) {
        if let Some(r) = request {
            let here = self.at.entry((g, index)).or_default();
            if !here.contains(&(term, r)) {
                here.push((term, r));
                self.open.entry(r).or_default().push((g, index, term));
            }
        }
        if self.at.contains_key(&(g, index)) {
            let here = self.latest.entry((g, index)).or_default();
            match here.iter_mut().find(|(n, _)| *n == node) {
                Some(held) => held.1 = term,
                None => here.push((node, term)),
            }
        }
    }

    /// Node `node` went down (every member): its unsynced appends may be lost.
    pub(super) fn node_down(&mut self, node: usize) {
        for here in self.latest.values_mut() {
            here.retain(|&(n, _)| n != node);
        }
    }

    /// Member `g` of node `node` stopped (its appends not yet written may be lost), or installed a
    /// snapshot (its log below it is the snapshot's, not what it appended).
    pub(super) fn member_down(&mut self, node: usize, g: usize) {
        for (_, here) in self.latest.range_mut((g, 0)..=(g, u64::MAX)) {
            here.retain(|&(n, _)| n != node);
        }
    }

    /// `request` was answered (or is no longer followed).
    pub(super) fn forget(&mut self, request: u64) {
        for (g, index, term) in self.open.remove(&request).unwrap_or_default() {
            self.drop_position(g, index, term, request);
        }
    }

    fn drop_position(&mut self, g: usize, index: u64, term: Term, request: u64) {
        if let Some(here) = self.at.get_mut(&(g, index)) {
            here.retain(|&p| p != (term, request));
            if here.is_empty() {
                self.at.remove(&(g, index));
                self.latest.remove(&(g, index));
            }
        }
    }

    /// The leader of group `g` on node `node` committed up to `commit`: the fates this decides.
    pub(super) fn committed(&mut self, node: usize, g: usize, commit: u64) -> Vec<Fate> {
        let decided: Vec<((usize, u64), Term)> = self
            .at
            .range((g, 0)..=(g, commit))
            .filter_map(|(&place, _)| {
                let held = self.latest.get(&place)?.iter().find(|(n, _)| *n == node)?;
                Some((place, held.1))
            })
            .collect();
        let mut fates = Vec::new();
        for ((g, index), held) in decided {
            for (term, request) in self.at.get(&(g, index)).cloned().unwrap_or_default() {
                if term == held {
                    fates.push(Fate::Committed(request));
                    self.forget(request);
                    continue;
                }
                self.drop_position(g, index, term, request);
                let Some(left) = self.open.get_mut(&request) else { continue };
                left.retain(|&p| p != (g, index, term));
                if left.is_empty() {
                    self.open.remove(&request);
                    fates.push(Fate::Dead(request));
                }
            }
        }
        fates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: appends (node, index, term, request) and downs (node), then a commit by a node; the
    /// fates it decides.
    #[test]
    fn a_commit_decides_the_fates_its_leaders_appends_show() {
        enum Step {
            Append(usize, u64, u64, Option<u64>),
            Down(usize),
        }
        use Step::{Append, Down};
        /// A case's name, its steps, the commit (leader node, index) and the fates it decides.
        type Case = (&'static str, Vec<Step>, (usize, u64), Vec<Fate>);
        let cases: Vec<Case> = vec![
            (
                "committed where appended",
                vec![Append(0, 5, 1, Some(7)), Append(1, 5, 1, None)],
                (0, 5),
                vec![Fate::Committed(7)],
            ),
            (
                "overwritten by the next leader",
                vec![Append(0, 5, 1, Some(7)), Append(1, 5, 2, None)],
                (1, 6),
                vec![Fate::Dead(7)],
            ),
            ("commit below the position", vec![Append(0, 5, 1, Some(7)), Append(1, 5, 2, None)], (1, 4), vec![]),
            ("the leader never appended there", vec![Append(0, 5, 1, Some(7))], (1, 9), vec![]),
            (
                "the leader's append was lost to a crash",
                vec![Append(0, 5, 1, Some(7)), Append(1, 5, 2, None), Down(1)],
                (1, 9),
                vec![],
            ),
            (
                "appended again after the crash",
                vec![Append(0, 5, 1, Some(7)), Down(1), Append(1, 5, 2, None)],
                (1, 9),
                vec![Fate::Dead(7)],
            ),
        ];
        for (name, steps, (leader, commit), want) in cases {
            let mut fates = Fates::default();
            for s in steps {
                match s {
                    Append(node, index, term, request) => fates.appended(node, 0, index, Term(term), request),
                    Down(node) => fates.node_down(node),
                }
            }
            assert_eq!(fates.committed(leader, 0, commit), want, "{name}");
            if !want.is_empty() {
                assert_eq!((fates.open.len(), fates.at.len(), fates.latest.len()), (0, 0, 0), "{name}: all let go");
            }
        }
    }
}
