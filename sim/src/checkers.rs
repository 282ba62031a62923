//! The run's checkers (the first ones of issue 6): each violation names its checker, the node and the
//! simulated time.
//!
//! Why here and not in raft-core: a checker judges the system from outside, from what any observer could
//! see (roles, applied indexes, boot results); it never reads a bug switch.

use std::collections::BTreeMap;

use raft_core::consensus::server::Role;
use raft_core::{LogIndex, Term};

/// A checker's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The checker (`election-safety`, `node-boots`, `storage-error`, `converges`).
    pub checker: String,
    /// The node it concerns.
    pub node: String,
    /// Simulated time of the finding.
    pub time_ns: u64,
    /// What was seen.
    pub detail: String,
}

/// The checkers' state over one run.
#[derive(Debug)]
pub struct Checkers {
    violations: Vec<Violation>,
    leaders: BTreeMap<u64, String>,
    invoked: BTreeMap<u64, u64>,
    committed: u64,
    liveness_start_ns: Option<u64>,
    committed_in_liveness: u64,
}

impl Checkers {
    /// No findings yet.
    pub fn new(_nodes: usize) -> Checkers {
        Checkers {
            violations: Vec::new(),
            leaders: BTreeMap::new(),
            invoked: BTreeMap::new(),
            committed: 0,
            liveness_start_ns: None,
            committed_in_liveness: 0,
        }
    }

    /// The first violation.
    pub fn first(&self) -> Option<&Violation> {
        self.violations.first()
    }

    /// Records a violation.
    pub fn violation(&mut self, checker: &str, node: &str, time_ns: u64, detail: String) {
        self.violations.push(Violation { checker: checker.into(), node: node.into(), time_ns, detail });
    }

    /// Whether `node` leading `term` is news (for the trace).
    pub fn is_new_leader(&self, term: u64, node: &str) -> bool {
        self.leaders.get(&term).is_none_or(|l| l != node)
    }

    /// `election-safety`: at most one leader per term.
    pub fn leader(&mut self, term: u64, node: &str, time_ns: u64) -> Option<Violation> {
        match self.leaders.get(&term) {
            Some(other) if other != node => {
                let v = Violation {
                    checker: "election-safety".into(),
                    node: node.into(),
                    time_ns,
                    detail: format!("{node} and {other} both lead term {term}"),
                };
                self.violations.push(v.clone());
                Some(v)
            }
            Some(_) => None,
            None => {
                self.leaders.insert(term, node.into());
                None
            }
        }
    }

    /// A node went down (nothing to check yet).
    pub fn node_down(&mut self, _node: usize) {}

    /// A client operation was invoked.
    pub fn invoke(&mut self, request: u64, time_ns: u64) {
        self.invoked.insert(request, time_ns);
    }

    /// A client operation completed with a result.
    pub fn committed(&mut self, request: u64, _time_ns: u64) {
        if self.invoked.remove(&request).is_some() {
            self.committed += 1;
            if self.liveness_start_ns.is_some() {
                self.committed_in_liveness += 1;
            }
        }
    }

    /// Faults are healed.
    pub fn liveness_started(&mut self, time_ns: u64) {
        self.liveness_start_ns = Some(time_ns);
    }

    /// `converges`: at the end of the liveness phase every node is up and serving, one leader leads the
    /// highest term, every member applied the same index, and the cluster committed client operations
    /// after the heal.
    pub fn check_converged(&mut self, view: &[Option<(LogIndex, Role, Term)>], time_ns: u64) {
        let mut fail = |detail: String| {
            self.violations.push(Violation { checker: "converges".into(), node: "cluster".into(), time_ns, detail });
        };
        if let Some(i) = view.iter().position(Option::is_none) {
            fail(format!("node n{} is not serving at the end of the liveness phase", i + 1));
            return;
        }
        let view: Vec<(LogIndex, Role, Term)> = view.iter().flatten().cloned().collect();
        let top = view.iter().map(|v| v.2).max().unwrap_or(Term(0));
        let leaders = view.iter().filter(|v| v.1 == Role::Leader && v.2 == top).count();
        if leaders != 1 {
            fail(format!("{leaders} leaders in the highest term {top}"));
            return;
        }
        let applied: Vec<LogIndex> = view.iter().map(|v| v.0).collect();
        if applied.iter().any(|a| *a != applied[0]) {
            fail(format!("members applied different indexes: {applied:?}"));
            return;
        }
        if self.committed_in_liveness == 0 {
            fail("nothing committed after the heal".into());
        }
    }
}
