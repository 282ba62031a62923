//! What the world promises to check, and when: after every recovery (`written-survives`, `no-log-gap`,
//! `commit-durability`), after every server step (election safety, leader completeness, the highest
//! committed entry), after every event (overdue contact obligations), during the liveness phase
//! (`converges`), and at the end (linearizability, replica agreement, the storage promises).
//!
//! Owns: the world's side of the checkers — what it reads of each member and hands to the pure functions
//! of `crate::checkers`. Must not change the run's state beyond recording verdicts.

use raft_core::consensus::server::{Condition, Role};
use raft_core::consensus::{RaftLog, StorageLog};
use raft_core::storage::Envelope;
use raft_core::storage::segment::{IndexParse, SegmentReader};
use raft_core::storage::segref::SegRef;
use raft_core::{LogIndex, TableId};
use scenarios::MemberChange;
use std::collections::BTreeSet;
use vfs::Fd;

use crate::checkers;
use crate::linearizability;
use crate::trace::Kind;

use super::outcome::{Outcome, RunResult};
use super::{Event, World};

/// What a cluster-wide finding of group `g` names: `cluster` for the first group, `cluster g2`, … else.
pub(super) fn group_label(g: usize) -> String {
    if g == 0 { "cluster".into() } else { format!("cluster g{}", g + 1) }
}

impl World {
    /// Holds off every node's injected disk errors while a checker reads (nested holds count), so that
    /// the checkers' own reads never draw a failure meant for the system under test.
    fn hold_disk_errors(&mut self) {
        self.judging += 1;
        if self.judging == 1 {
            for n in self.nodes.iter_mut() {
                n.fs.pause_error_rules(true);
            }
        }
    }

    /// Ends a [`World::hold_disk_errors`].
    fn release_disk_errors(&mut self) {
        self.judging -= 1;
        if self.judging == 0 {
            for n in self.nodes.iter_mut() {
                n.fs.pause_error_rules(false);
            }
        }
    }

    /// A server came up from its disk: `written-survives` (against what it had written before its
    /// crash), `no-log-gap` (its recovered log) and `commit-durability` (a majority still holds the
    /// highest committed entry).
    pub(super) fn after_recovery(&mut self, i: usize, g: usize) {
        self.hold_disk_errors();
        self.after_recovery_checks(i, g);
        self.release_disk_errors();
    }

    fn after_recovery_checks(&mut self, i: usize, g: usize) {
        if !self.cfg.checkers {
            return;
        }
        let mut scratch = Vec::new();
        let n = &mut self.nodes[i];
        let name = n.members[g].name.0.clone();
        let m = &mut n.members[g];
        let Some(h) = m.host.as_ref() else { return };
        if let Some(before) = m.written_at_crash.take() {
            let result = checkers::written_survives(before, h.log.last_written());
            if self.checkers.judge("written-survives", &name, self.now_ns, result) {
                return;
            }
        }
        if let Some((_, term, candidate)) = m.vote_granted.as_ref().filter(|(uid, ..)| *uid == m.uid) {
            let own = &m.name;
            let result = checkers::vote_survives(own, *term, candidate, h.server.current_term(), h.server.voted_for());
            if self.checkers.judge("vote-survives", &name, self.now_ns, result) {
                return;
            }
        }
        // A rotted medium may fail a read (the entry's CRC): readability is not promised there (`media`).
        let rotted = self.medium_rotted(i);
        let n = &mut self.nodes[i];
        let Some(mut log) = n.read_log(g, &mut scratch) else { return };
        let result = if rotted { Ok(()) } else { checkers::no_log_gap(&mut log) };
        if n.fs.is_powered_off() {
            return; // a power cut armed during recovery fired: the node is down, its disk judged at the next boot
        }
        if self.checkers.judge("no-log-gap", &name, self.now_ns, result) {
            return;
        }
        if self.check_log_shape(i, g) {
            return;
        }
        self.check_commit_durability(g);
    }

    /// `log-shape` of member `g` of node `i`; whether it found a violation.
    fn check_log_shape(&mut self, i: usize, g: usize) -> bool {
        let n = &mut self.nodes[i];
        let name = n.members[g].name.0.clone();
        let uid = n.members[g].uid.clone();
        // As strict as the member's own parse, and never laxer than contiguous.
        let parse = match IndexParse::for_bugs(&self.cfg.bugs) {
            IndexParse::Checked => IndexParse::Checked,
            IndexParse::Ra | IndexParse::Contiguous => IndexParse::Contiguous,
        };
        let stored = n.stored_entries(g, parse);
        let written = n.written.remove(&uid).unwrap_or_default();
        let mut scratch = Vec::new();
        let result = match n.read_log(g, &mut scratch) {
            Some(mut log) => checkers::log_shape(&mut log, &written, &stored),
            None => Ok(()),
        };
        n.written.insert(uid, written);
        // A power cut armed during recovery may have fired in the checker's reads: judged at the next boot.
        if n.fs.is_powered_off() {
            return false;
        }
        self.checkers.judge("log-shape", &name, self.now_ns, result)
    }

    /// `commit-durability` of group `g` over the members now up (down members are not judged until they
    /// boot).
    pub(super) fn check_commit_durability(&mut self, g: usize) {
        self.hold_disk_errors();
        self.check_commit_durability_now(g);
        self.release_disk_errors();
    }

    fn check_commit_durability_now(&mut self, g: usize) {
        let Some(committed) = self.checkers.highest_committed(g) else { return };
        let voters = self.checkers.committing_voters(g).cloned().unwrap_or_default();
        let (mut holding, mut unknown) = (0, 0);
        let mut scratch = Vec::new();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if !voters.contains(&i) {
                continue;
            }
            let up = n.up;
            let Some(mut log) = n.read_log(g, &mut scratch).filter(|_| up) else {
                unknown += 1;
                continue;
            };
            match checkers::holds(&mut log, committed.0, committed.1) {
                Ok(true) => holding += 1,
                Ok(false) => {}
                Err(_) if n.fs.is_powered_off() => unknown += 1,
                Err(detail) => {
                    let name = n.members[g].name.0.clone();
                    self.checkers.violation("storage-error", &name, self.now_ns, detail);
                    return;
                }
            }
        }
        let result = checkers::commit_durability(holding, unknown, voters.len(), committed);
        let cluster = group_label(g);
        self.checkers.judge("commit-durability", &cluster, self.now_ns, result);
    }

    /// After a server step: what it did is judged (injected disk errors held off while reading).
    /// After a server step; `step_completed` is false when the step failed (a power cut inside it, say).
    pub(super) fn observe(&mut self, i: usize, g: usize, step_completed: bool) {
        self.hold_disk_errors();
        self.observe_now(i, g, step_completed);
        self.check_resources_released(i, g, step_completed && self.cfg.checkers);
        self.check_last_written(i, g, step_completed && self.cfg.checkers);
        self.release_disk_errors();
    }

    /// After every step, each running node's open handles (`resources-released`): those a process that
    /// failed in the step opened and no surviving structure holds are a dead process's (`dead_handles`);
    /// otherwise every open handle but a dead process's must be one the node's storage holds, and every
    /// one it holds open. A node whose disk took no call in the step opened and closed nothing.
    pub(super) fn settle_handles(&mut self) {
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            let seq = n.fs.op_seq();
            let failed = std::mem::take(&mut n.process_failed);
            if seq == n.handles_seen_at_seq && !failed {
                continue;
            }
            n.handles_seen_at_seq = seq;
            if !n.up || n.fs.is_powered_off() {
                continue;
            }
            let wal_handle = n.wal.open_handle();
            let members = &n.members;
            let held = || {
                let accepts = members.iter().filter_map(|m| m.accept.as_ref().map(|a| (a.handle(), m.name.0.as_str())));
                wal_handle.map(|fd| (fd, "the WAL")).into_iter().chain(accepts)
            };
            // A crash of the node closed them all.
            let fs = &n.fs;
            n.dead_handles.retain(|&dead| fs.is_open(dead));
            if failed {
                let orphaned: Vec<Fd> =
                    fs.open_handles().map(|(fd, _)| fd).filter(|&fd| !held().any(|(h, _)| h == fd)).collect();
                n.dead_handles.extend(orphaned);
                continue;
            }
            if !self.cfg.checkers {
                continue;
            }
            // The common case without a vector: every handle held is open, and no other is (held handles
            // are distinct).
            let dead = &n.dead_handles;
            let open_count = fs.open_handles().filter(|(fd, _)| !dead.contains(fd)).count();
            if open_count == held().count() && held().all(|(fd, _)| fs.is_open(fd)) {
                continue;
            }
            let open: Vec<(Fd, &str)> = fs.open_handles().filter(|(fd, _)| !dead.contains(fd)).collect();
            let held: Vec<(Fd, &str)> = held().collect();
            let result = checkers::handles_released(&open, &held);
            if result.is_err() {
                let name = n.name.clone();
                self.checkers.judge("resources-released", &name, self.now_ns, result);
            }
        }
    }

    /// `last-written`, after every step of a running member's server (the last written index before a
    /// flush or a snapshot the step handled is consumed either way).
    fn check_last_written(&mut self, i: usize, g: usize, judge: bool) {
        let n = &mut self.nodes[i];
        let Some(h) = n.members[g].host.as_mut() else { return };
        let before_event = h.written_before_event.take();
        if !judge || !n.up || n.fs.is_powered_off() || h.server.receiving_snapshot().is_some() {
            return;
        }
        let n = &self.nodes[i];
        let m = &n.members[g];
        let Some(h) = m.host.as_ref() else { return };
        let last_written = h.log.last_written();
        let tables = &n.shared.mem_tables;
        // The newest table holding the index decides, as in the chain's own `MemTable::term_at`
        // (`tables_of` lists them oldest first).
        let memory_term =
            tables.tables_of(&m.uid).into_iter().rev().find_map(|tid| tables.term_at(tid, last_written.0));
        let flushed = before_event.filter(|&(_, event)| event == checkers::LogEventHandled::Flush);
        let seen = checkers::WrittenSeen {
            last_written,
            last_index: h.log.last_index_term().map(|(l, _)| l),
            snapshot: h.log.snapshot().map(|s| (s.index, s.term)),
            memory_term,
            in_segments: h.log.segrefs().iter().any(|r| r.first <= last_written.0 && last_written.0 <= r.last),
            segments_last: flushed.and_then(|_| h.log.segrefs().iter().map(|r| r.last).max()),
            segment_term: flushed.and_then(|_| {
                // The newest segment spanning it, as the log's own reads choose (`SegRefs::find`).
                let r = h.log.segrefs().iter().find(|r| r.first <= last_written.0 && last_written.0 <= r.last)?;
                let path = format!("{}/{}", h.log.dir(), r.file);
                let reader =
                    SegmentReader::open_with(&mut n.fs.peek(), &path, IndexParse::for_bugs(&self.cfg.bugs)).ok()?;
                reader.term(last_written.0)
            }),
            before_event,
        };
        let result = checkers::last_written(&seen);
        let name = m.name.0.clone();
        self.checkers.judge("last-written", &name, self.now_ns, result);
    }

    /// `resources-released`, when member `g`'s log handled a flush or a snapshot in the step just done
    /// (what the step recorded for it is consumed either way, so a failed step's is never judged later).
    fn check_resources_released(&mut self, i: usize, g: usize, judge: bool) {
        let Some(h) = self.nodes[i].members[g].host.as_mut() else { return };
        let refs_before = h.refs_before_snapshot.take();
        let flushed = std::mem::take(&mut h.flushes_handled);
        if !judge {
            return;
        }
        if !flushed.is_empty() && self.check_flush_released(i, g, &flushed) {
            return;
        }
        self.check_snapshot_released(i, g, refs_before);
    }

    /// After the log handled flushes (`(table, last index)` each); `true` when it failed.
    fn check_flush_released(&mut self, i: usize, g: usize, flushed: &[(TableId, LogIndex)]) -> bool {
        let n = &self.nodes[i];
        let result = checkers::flush_released(flushed, &n.mem_table_indexes(g));
        let name = n.members[g].name.0.clone();
        self.checkers.judge("resources-released", &name, self.now_ns, result)
    }

    /// After the log's snapshot index rose above the last one judged, or the one it booted with.
    /// `refs_before`: its segment refs just before it handled the snapshot.
    fn check_snapshot_released(&mut self, i: usize, g: usize, refs_before: Option<Vec<SegRef>>) {
        let n = &mut self.nodes[i];
        let m = &mut n.members[g];
        let Some(h) = m.host.as_mut() else { return };
        let Some(snapshot) = h.log.snapshot().map(|s| s.index) else { return };
        if h.snapshot_judged.is_some_and(|j| j >= snapshot) {
            return;
        }
        h.snapshot_judged = Some(snapshot);
        // A power cut in the step (the install's compaction, say) took the node down mid-way: what its
        // disk keeps is judged by the recovery checkers.
        let Some(refs_before) = refs_before.filter(|_| n.up && !n.fs.is_powered_off()) else { return };
        let n = &self.nodes[i];
        let in_memory = n.mem_table_indexes(g).iter().fold(raft_core::Seq::new(), |all, (_, seq)| all.union(seq));
        let m = &n.members[g];
        let Some(h) = m.host.as_ref() else { return };
        let on_disk = n.fs.cached_dir_names(m.uid.as_str()).unwrap_or_default().into_iter().collect();
        let prefix = format!("{}/", m.uid.as_str());
        let unlink_failed = n
            .unlinks_failed
            .iter()
            .chain(n.fs.fault_events().iter().filter_map(|e| match e {
                vfs::FaultEvent::ErrorInjected { kind: vfs::OpKind::Unlink, path, .. } => Some(path),
                _ => None,
            }))
            .filter_map(|p| p.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        let seen = checkers::AfterSnapshot {
            snapshot,
            live: h.log.live_indexes(),
            in_memory: &in_memory,
            refs_before: &refs_before,
            refs_now: h.log.segrefs(),
            on_disk: &on_disk,
            unlink_failed: &unlink_failed,
        };
        let result = checkers::resources_released(&seen);
        let name = m.name.0.clone();
        self.checkers.judge("resources-released", &name, self.now_ns, result);
    }

    fn observe_now(&mut self, i: usize, g: usize, step_completed: bool) {
        let Some(host) = self.nodes[i].members[g].host.as_ref() else { return };
        let (role, term, commit) = (host.server.role().clone(), host.server.current_term(), host.server.commit_index());
        let receiving = host.server.receiving_snapshot().is_some();
        // A leader waiting in Ra's `await_condition` (its WAL down, or handing over) is not in Ra's
        // `leader` state: it contacts nobody, as a crashed one cannot, and leads again only when the
        // wait ends — when it is judged as a leader again.
        let condition = host.server.awaiting_condition();
        let waiting = condition.is_some();
        let written = host.log.last_written();
        let m = &mut self.nodes[i].members[g];
        if condition != std::mem::replace(&mut m.last_condition, condition)
            && let Some(c) = condition
        {
            self.count(match c {
                Condition::Missing => "await_condition: a follower's previous entry missing",
                Condition::TermMismatch => "await_condition: a follower's previous entry of another term",
                Condition::WalDown => "await_condition: a follower's WAL down",
                Condition::LeaderWalDown => "await_condition: a leader's WAL down",
                Condition::TransferLeadership => "await_condition: a leader handing its leadership over",
            });
        }
        let m = &mut self.nodes[i].members[g];
        // The last written index from before a receive stands for the member while it receives (a
        // sparse live entry raises the log's above a hole). A step that failed may have ended the
        // server's receive before its log came down (an abort whose `set_last_index` a power cut
        // interrupted: hunt seed 13, run 1783), so only a completed step clears the record.
        match (receiving, m.written_before_receive) {
            (true, None) => m.written_before_receive = Some(written),
            (false, Some(_)) if step_completed => m.written_before_receive = None,
            _ => {}
        }
        let key = self.member_key(i, g);
        self.mix(&[key as u64, term.0, commit.0]);
        if role != Role::Leader || waiting || !self.cfg.checkers {
            self.checkers.obligations.forget_leader(key);
            return;
        }
        // A follower removed from the leader's configuration is owed nothing (Ra's leader stops
        // replicating to it the moment it appends the change).
        if !self.checkers.obligations.is_empty()
            && let Some(h) = self.nodes[i].members[g].host.as_ref()
        {
            let k = self.nodes.len();
            let peers: Vec<usize> =
                (0..k).filter(|&j| h.server.peers().contains_key(&self.nodes[j].members[g].name)).collect();
            self.checkers.obligations.keep_peers(key, |f| peers.contains(&(f % k)));
        }
        let name = self.nodes[i].members[g].name.0.clone();
        let new_leader = self.checkers.is_new_leader(g, term.0, &name);
        if new_leader {
            self.count("elections won");
            self.note_member(i, g, Kind::Leader, format!("term {term} (commit {commit})"));
        }
        if let Some(v) = self.checkers.leader(g, term.0, &name, self.now_ns) {
            self.note(Some(i), Kind::Violation, format!("{}: {}", v.checker, v.detail));
            return;
        }
        let mut scratch = Vec::new();
        let n = &mut self.nodes[i];
        // A power cut fired during this step: the node is down; its disk is read again after boot.
        if n.fs.is_powered_off() {
            return;
        }
        let Some(mut log) = n.read_log(g, &mut scratch) else { return };
        let completeness = match self.checkers.highest_committed_before(g, term) {
            Some(committed) if new_leader => Some(checkers::leader_completeness(&mut log, committed)),
            _ => None,
        };
        let advanced = if self.checkers.highest_committed(g).is_none_or(|(c, _)| commit > c) {
            Some(log.term_at(commit))
        } else {
            None
        };
        // The checks' own reads may have fired a power cut armed during recovery: the node is down.
        if n.fs.is_powered_off() {
            return;
        }
        if let Some(result) = completeness
            && self.checkers.judge("leader-completeness", &name, self.now_ns, result)
        {
            return;
        }
        match advanced {
            Some(Ok(Some(t))) => {
                let voters = self.voters(i, g);
                self.checkers.commit_advanced(g, commit, t, voters);
                let fates = self.fates.committed(i, g, commit.0);
                self.learn_fates(fates);
            }
            Some(Err(e)) => {
                let detail = format!("term at commit {commit}: {e}");
                self.checkers.violation("storage-error", &name, self.now_ns, detail);
            }
            Some(Ok(None)) | None => {}
        }
    }

    /// `lagging-follower-caught-up`: a contact obligation that fell due unmet.
    pub(super) fn check_obligations(&mut self) {
        if let Some((leader, follower, due_ns)) =
            self.checkers.obligations.overdue(self.now_ns).filter(|_| self.cfg.checkers)
        {
            let k = self.nodes.len();
            let l = self.nodes[leader % k].members[leader / k].name.clone();
            let f = self.nodes[follower % k].members[follower / k].name.clone();
            let waited_ms = (self.now_ns - due_ns + self.checkers.obligations.bound_ns()) / 1_000_000;
            let detail = format!("{f} pre-voted to leader {l}, which has not contacted it for {waited_ms} ms");
            self.checkers.violation("lagging-follower-caught-up", &f.0, self.now_ns, detail);
        }
    }

    /// Liveness phase: has the cluster converged yet (then the run is over)?
    pub(super) fn converge_check(&mut self) {
        self.retry_membership_changes();
        let workload_done = self.in_flight.is_empty()
            && self.given_up.is_empty()
            && self.given_up_dead == 0
            && self.checkers.every_kind_answered_in_liveness();
        if workload_done && self.all_converged().is_ok() {
            self.converged = true;
            self.note(None, Kind::Phase, "CONVERGED".into());
        } else {
            self.schedule(100_000_000, Event::ConvergeCheck);
        }
    }

    /// Ends the run: unanswered operations become unknown, then linearizability, convergence, replica
    /// agreement and commit durability are judged.
    pub fn finish(mut self) -> RunResult {
        self.hold_disk_errors();
        // Whatever never got an answer may or may not have happened.
        let unanswered = std::mem::take(&mut self.in_flight);
        for (_, f) in unanswered {
            self.record_unknown(f);
        }
        if self.checkers.first().is_none() && self.cfg.checkers {
            self.count_n("history operations", self.history.recorded());
            let residual = self.history.residual();
            let report = linearizability::check(
                &residual,
                linearizability::Model::CasRegister,
                &mut linearizability::Budget::steps(2_000_000),
            );
            match (report.verdict, report.worst()) {
                (linearizability::Verdict::NotLinearizable, Some(failed)) => {
                    let key = failed.key.as_deref().unwrap_or_default();
                    let (settled, cut_ns) = self.history.settled_on(failed.key.as_deref());
                    let earlier = if settled == 0 {
                        String::new()
                    } else {
                        format!(
                            " since its last cut at {} ms ({settled} earlier operations on it were linearizable)",
                            cut_ns / 1_000_000
                        )
                    };
                    self.checkers.violation(
                        "linearizability",
                        "cluster",
                        self.now_ns,
                        format!("no linearization of the {} operations on key {key}{earlier}", failed.ops.len()),
                    )
                }
                (linearizability::Verdict::Undecided, _) => self.count("linearizability unknown"),
                _ => {}
            }
        }
        if self.checkers.first().is_none() && !self.converged {
            // Converged at the bound means settled: members that look converged at the very end, a
            // leader elected between two of a churn's elections, have not.
            let result = self.all_converged().and_then(|()| self.leaders_settled());
            self.checkers.check_converged(result, self.now_ns);
        }
        let judged_groups = if self.cfg.checkers { self.cfg.spec.groups } else { 0 };
        for g in 0..judged_groups {
            if self.checkers.first().is_none() {
                self.check_replicas_agree(g);
            }
            if self.checkers.first().is_none() {
                self.check_commit_durability(g);
            }
        }
        if self.timeline.is_some() {
            self.sample_states();
        }
        // Each violation carries the trace that led to it.
        let context: Vec<String> = self.trace.iter().rev().take(24).rev().cloned().collect();
        let diagnoses: Vec<Vec<String>> = self
            .checkers
            .violations()
            .iter()
            .map(|v| {
                let focus = (v.checker == "lagging-follower-caught-up").then_some(v.node.as_str());
                self.liveness_groups(v).into_iter().flat_map(|g| self.diagnose_group(g, focus)).collect()
            })
            .collect();
        for (v, diagnosis) in self.checkers.violations_mut().iter_mut().zip(diagnoses) {
            v.context = context.clone();
            v.diagnosis = diagnosis;
        }
        let outcome = match self.checkers.first() {
            None => Outcome::Pass,
            Some(v) => Outcome::Violation(v.clone()),
        };
        let materialized_overflowed = self.recorder.overflowed;
        let (materialized, fired_cuts) = self.recorder.into_plan();
        // A fault still on when the run stopped (at a violation, say) ends with the run.
        let end_ns = self.now_ns;
        if let Some(t) = self.timeline.as_mut() {
            for s in t.spans.iter_mut() {
                s.to_ns = s.to_ns.min(end_ns);
            }
        }
        let mut trace = self.trace;
        if self.trace_dropped > 0 {
            let note = format!(
                "[{} earlier trace lines not kept: a run keeps its last {} notable lines; --fs, --messages or --html keep every line]",
                self.trace_dropped,
                trace.len()
            );
            trace.insert(0, note);
        }
        RunResult {
            outcome,
            sim_time_ns: self.now_ns,
            events: self.events,
            trace_hash: self.hash,
            coverage: self.coverage,
            trace,
            trail: self.trail,
            materialized,
            materialized_overflowed,
            fired_cuts,
            history: self.whole_history.unwrap_or_default(),
            timeline: self.timeline.map(|t| *t),
        }
    }

    /// Every created group's leader has held its term for two of the longest election timeouts.
    fn leaders_settled(&self) -> Result<(), String> {
        let settle_ns = 2 * self.cfg.spec.election_timeout_max_ms * 1_000_000;
        (0..self.cfg.spec.groups).filter(|&g| self.created[g]).try_for_each(|g| {
            match self.checkers.last_election_ns(g).filter(|&t| self.now_ns < t + settle_ns) {
                None => Ok(()),
                Some(t) => Err(format!(
                    "{}'s leader was elected {} ms before the end (leadership still changing)",
                    group_label(g),
                    (self.now_ns - t) / 1_000_000
                )),
            }
        })
    }

    /// What `converges` sees of each member of group `g`.
    pub(super) fn member_view(&self, g: usize) -> Vec<checkers::MemberView> {
        self.nodes
            .iter()
            .map(|n| {
                n.members[g]
                    .host
                    .as_ref()
                    .filter(|_| n.up)
                    .map(|h| (h.server.last_applied(), h.server.role().clone(), h.server.current_term()))
            })
            .collect()
    }

    /// `converges` over every group (a group not created yet has nothing to converge), then the
    /// membership the operator asked for in force.
    pub(super) fn all_converged(&self) -> Result<(), String> {
        (0..self.cfg.spec.groups).filter(|&g| self.created[g]).try_for_each(|g| {
            let view = self.member_view(g);
            let members = self.config_members(g);
            checkers::converged_in(&view, &members)
                .or_else(|why| {
                    // A node whose process crashed on its rotted medium's checksum may be left out
                    // (`media`): while its medium stays rotted it may never read that entry again, and
                    // a member its supervisor gave up on meanwhile stays down (Ra restarts it only when
                    // asked). A node serving on a medium the rot has left is judged like any other.
                    let excused = |i: usize| self.nodes[i].caught_rot && (view[i].is_none() || self.medium_rotted(i));
                    let sound: BTreeSet<usize> = members.iter().copied().filter(|&i| !excused(i)).collect();
                    if sound.len() < members.len() { checkers::converged_in(&view, &sound) } else { Err(why) }
                })
                .map_err(|why| if g == 0 { why } else { format!("group g{}: {why}", g + 1) })
        })?;
        match self.membership_unsettled().first() {
            None => Ok(()),
            Some(&(g, i, change, at_ns)) => {
                let id = &self.nodes[i].members[g].name;
                let (asked, state) =
                    if change == MemberChange::Leave { ("leave", "still in") } else { ("join", "not in") };
                Err(format!(
                    "{id} was asked to {asked} (last at {} ms) and is {state} the configuration in force",
                    at_ns / 1_000_000
                ))
            }
        }
    }

    /// `state-machine-safety` and `log-matching` of group `g` once converged: members that applied the
    /// same index hold the same machine, and every index all members hold above the highest snapshot has
    /// the same term and payload everywhere; then the storage promises of every member.
    pub(super) fn check_replicas_agree(&mut self, g: usize) {
        let machines: Vec<(String, LogIndex, &raft_core::consensus::kv::KvState)> = self
            .nodes
            .iter()
            .map(|n| &n.members[g])
            .filter_map(|m| m.host.as_ref().map(|h| (m.name.0.clone(), h.server.last_applied(), h.server.machine())))
            .collect();
        let result = checkers::state_machine_safety(&machines);
        let cluster = group_label(g);
        if self.checkers.judge("state-machine-safety", &cluster, self.now_ns, result) {
            return;
        }
        let hosts = || self.nodes.iter().filter_map(|n| n.members[g].host.as_ref());
        let from = hosts().map(|h| h.log.first_index()).max().unwrap_or(LogIndex(0));
        let to = hosts().map(|h| h.server.commit_index()).min().unwrap_or(LogIndex(0));
        let mut scratch: Vec<Vec<Envelope>> = self.nodes.iter().map(|_| Vec::new()).collect();
        // A rotted medium may fail a read: its member is left out (`log-shape` holds what it serves to
        // what it wrote).
        let rotted: Vec<bool> = (0..self.nodes.len()).map(|i| self.medium_rotted(i)).collect();
        let mut logs: Vec<(String, StorageLog<'_>)> = self
            .nodes
            .iter_mut()
            .zip(scratch.iter_mut())
            .zip(rotted)
            .filter(|(_, rotted)| !rotted)
            .filter_map(|((n, out), _)| {
                let name = n.members[g].name.0.clone();
                n.read_log(g, out).map(|l| (name, l))
            })
            .collect();
        let result = checkers::log_matching(&mut logs, from, to);
        drop(logs);
        if let Err((node, detail)) = result {
            self.checkers.violation("log-matching", &node, self.now_ns, detail);
            return;
        }
        self.count_n("indexes compared across members", to.0.saturating_sub(from.0.saturating_sub(1)));
        self.check_storage_promises(g);
    }

    /// `segref-files-exist`, `live-indexes-readable` and `no-log-gap` on every member at the end: each
    /// segment ref names an existing file, every index the machine still reads is readable from the log,
    /// and the log has no hole up to its last written entry.
    pub(super) fn check_storage_promises(&mut self, g: usize) {
        let mut scratch = Vec::new();
        let rotted: Vec<bool> = (0..self.nodes.len()).map(|i| self.medium_rotted(i)).collect();
        for (n, rotted) in self.nodes.iter_mut().zip(rotted) {
            let m = &mut n.members[g];
            let Some(h) = m.host.as_mut() else { continue };
            let name = m.name.0.clone();
            let result = checkers::segref_files_exist(h.log.segrefs(), m.uid.as_str(), &mut n.fs);
            if self.checkers.judge("segref-files-exist", &name, self.now_ns, result) {
                return;
            }
            let result = segments_within_size(h.log.segrefs(), m.uid.as_str(), &mut n.fs, &self.cfg);
            if self.checkers.judge("resources-released", &name, self.now_ns, result) {
                return;
            }
            let live = h.server.machine().live_indexes();
            let receiving = h.server.receiving_snapshot().is_some();
            // A rotted medium may fail a read (the entry's CRC): readability is not promised there.
            if rotted {
                continue;
            }
            let Some(mut log) = n.read_log(g, &mut scratch) else { continue };
            let result = checkers::live_indexes_readable(&live, &mut log);
            if self.checkers.judge("live-indexes-readable", &name, self.now_ns, result) {
                return;
            }
            // A member still receiving a snapshot holds its live entries written sparsely above its log
            // by design (Ra's `write_sparse`): the hole closes at the install, or the abort and recovery
            // end the log below it. (Only a member removed from its group can be left so at the end: the
            // others must converge first.)
            let result = if receiving { Ok(()) } else { checkers::no_log_gap(&mut log) };
            if self.checkers.judge("no-log-gap", &name, self.now_ns, result) {
                return;
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].members[g].host.is_some() && self.check_log_shape(i, g) {
                return;
            }
        }
    }
}

/// `resources-released` for each segment file a member's refs name (`checkers::segment_within_size`),
/// its index read with Ra's parse; a file that does not open is `segref-files-exist`'s to judge.
fn segments_within_size(
    refs: &[SegRef],
    dir: &str,
    fs: &mut dyn vfs::FileSystem,
    cfg: &crate::WorldConfig,
) -> Result<(), String> {
    for r in refs {
        let path = format!("{dir}/{}", r.file);
        let Ok(reader) = raft_core::storage::segment::SegmentReader::open(fs, &path) else { continue };
        let entries = &reader.index().entries;
        let records: Vec<(u64, u32)> = entries
            .keys()
            .zip(entries.values())
            .filter(|&(&i, _)| r.first.0 <= i && i <= r.last.0)
            .map(|(_, rec)| (rec.offset, rec.len))
            .collect();
        checkers::segment_within_size(&path, &records, cfg.spec.segment_max_size_bytes)?;
    }
    Ok(())
}
