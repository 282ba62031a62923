//! Faults that take a node or one of its processes down, and when they happen: power loss (the crash
//! model or an explicit image), VM crash, WAL-only restart, segment writer crash, power cuts armed at crash
//! points, the random fault draw, planned faults, slow disks, restarts (with a cut into recovery), the
//! heal.
//!
//! Owns: what a fault does to a node. Every fault that takes effect is reported to the recorder
//! (`record`); how the node reacts to a disk error is `supervision`'s; network faults live in `network`.
//! Must not judge recovered state (`obligations`).

use raft_core::storage::messages::WalMsg;
use raft_core::storage::segment_writer::SegmentWriter;
use raft_core::storage::wal::Wal;
use scenarios::rng::below;
use vfs::{CrashPoint, OpKind, SimFs};

use scenarios::{CrashImage, CutAt, DiskErrorKind, Fault, PlannedFault};

use crate::image;
use crate::trace::{self, Kind};

use super::config::{crash_model, segment_writer_config, wal_config};
use super::{Event, World};

/// Where random disk errors strike: a call kind and a path glob, one per place Ra's storage calls the
/// disk (normalised paths: `wal/…`, `<member>/….segment`, `<member>/snapshots/…`, `<member>/config…`,
/// the node's `names` and `meta` stores at the root).
const DISK_ERROR_SITES: [(&str, &str); 24] = [
    ("write", "wal/*.wal"),
    ("fdatasync", "wal/*.wal"),
    ("read", "wal/*.wal"),
    ("create", "wal/*"),
    ("write", "wal/*.tmp"),
    ("rename", "wal/*"),
    ("fsync_dir", "wal"),
    ("unlink", "wal/*.wal"),
    ("write", "*/*.segment"),
    ("fsync", "*/*.segment"),
    ("read", "*/*.segment"),
    ("open", "*/*.segment"),
    ("fsync_dir", "*"),
    ("write", "*/snapshots/**"),
    ("fsync", "*/snapshots/**"),
    ("read", "*/snapshots/**"),
    ("fsync_dir", "*/snapshots"),
    ("write", "*/config.tmp"),
    ("rename", "*/config.tmp"),
    ("read", "*/config"),
    ("write", "names.tmp"),
    ("write", "meta.tmp"),
    ("fsync", "meta.tmp"),
    ("read", "meta"),
];

/// The directory listings a random disk error fails instead of a file's call, in the share of them
/// `listing_error_percent` says: the WAL's directory (listed by its recovery, at boot and after a WAL
/// restart), a server's directory (its log's init, the segment writer's flush) and its snapshots
/// directory (a snapshot's init and install). A pattern without `/` matches a path's last component.
pub(crate) const LISTING_SITES: [(&str, &str); 3] =
    [("read_dir", "wal"), ("read_dir", "n*g*"), ("read_dir", "snapshots")];

/// The reads a boot makes that a failing disk fails in a recovery (`recovery_disk_error_percent`): the
/// names store, a server's config, the meta store, a snapshot, a segment, a WAL file.
const RECOVERY_READ_SITES: [&str; 6] = ["names", "*/config", "meta", "*/snapshots/**", "*/*.segment", "wal/*.wal"];

/// Every node's disk capacity (a full disk shrinks it to what is used for a while).
pub(super) const DISK_CAPACITY_BYTES: u64 = 1 << 32;

/// A sticky disk error's rule, to remove when it is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DiskRule {
    pub(super) call: OpKind,
    pub(super) path_glob: String,
    pub(super) error: vfs::ErrorKind,
}

/// A slow disk: each WAL sync takes `sync_latency_ns` until `until_ns`.
#[derive(Debug, Clone, Copy)]
pub(super) struct SlowWal {
    pub(super) sync_latency_ns: u64,
    pub(super) until_ns: u64,
}

/// Arms a power cut at `point` that keeps `image`, or lets `model` choose.
pub(super) fn arm(fs: &mut SimFs, point: CrashPoint, model: vfs::CrashModel, image: Option<&CrashImage>) {
    match image {
        Some(image) => fs.arm_power_cut_replay(point, image::to_decisions(image, model)),
        None => fs.arm_power_cut(point, model),
    }
}

impl World {
    /// Bookkeeping of every crash of node `i`: what it had written, and obligations that lapse.
    pub(super) fn crashed(&mut self, i: usize) {
        self.fates.node_down(i);
        for m in self.nodes[i].members.iter_mut() {
            if let Some(h) = m.host.as_ref() {
                m.written_at_crash = Some(m.written_before_receive.unwrap_or_else(|| h.log.last_written()));
            }
        }
        for g in 0..self.cfg.spec.groups {
            let key = self.member_key(i, g);
            self.checkers.obligations.forget(key);
        }
    }

    /// Power loss now: `image` says what the disk keeps (`None`: the crash model chooses).
    pub(super) fn power_loss(&mut self, i: usize, image: Option<&CrashImage>) {
        self.crashed(i);
        let model = crash_model(self.cfg.spec.crash_model);
        let n = &mut self.nodes[i];
        n.fs.disarm_power_cut();
        let pending = n.fs.pending_count();
        let (decisions, mismatch) = match image {
            Some(image) => match n.fs.crash_with(&image::to_decisions(image, model)) {
                Ok(d) => (d, false),
                Err(_) => (n.fs.crash(model), true),
            },
            None => (n.fs.crash(model), false),
        };
        if mismatch {
            self.count("crash images that no longer fit");
        }
        let label = match image {
            Some(image) if !mismatch => image.label.clone(),
            _ => model.name().to_owned(),
        };
        let image = Some(image::from_decisions(&decisions, &label));
        let entry = self.record_now(i, Fault::ExactPowerCut { at: CutAt::Now, image, reboot_cut: None });
        let r = self.recorder.node(i);
        r.armed = None;
        r.crash_entry = Some(entry).filter(|&e| e != super::record::NOT_KEPT);
        self.record_down(i);
        let n = &mut self.nodes[i];
        n.fs.power_on();
        n.up = false;
        n.incarnation += 1;
        self.count("power losses");
        if pending > 0 {
            self.count("power losses with unsynced state");
        }
        if has_garbage(&decisions) {
            self.count("crash images with garbage sectors");
        }
        self.note(Some(i), Kind::Crash, format!("POWER LOSS ({} model, {pending} pending operations)", model.name()));
        for line in trace::describe_crash(&decisions) {
            self.note(Some(i), Kind::Disk, line);
        }
        let after = self.cfg.spec.restart_after_ms * 1_000_000;
        self.schedule(after, Event::Restart { node: i });
    }

    /// VM crash: every process and its volatile state gone; the page cache (unsynced data) survives.
    pub(super) fn vm_crash(&mut self, i: usize) {
        self.crashed(i);
        let n = &mut self.nodes[i];
        n.fs.process_crash();
        n.up = false;
        n.incarnation += 1;
        self.count("vm crashes");
        self.record_now(i, Fault::VmCrash { reboot_cut_after_calls: None });
        // Its reboot's power cut, if any, is recorded as a cut its boot arms (a VM crash has no image).
        let r = self.recorder.node(i);
        r.armed = None;
        r.crash_entry = None;
        self.record_down(i);
        self.note(Some(i), Kind::Crash, "VM CRASH (processes gone, page cache kept)".into());
        let after = self.cfg.spec.restart_after_ms * 1_000_000;
        self.schedule(after, Event::Restart { node: i });
    }

    /// The WAL process alone restarts (Ra's supervisor): mem tables survive, so it recovers in
    /// post-boot mode; its mailbox is lost with it, and appends cast to the new process wait in its
    /// mailbox while it recovers. Also while a restarted WAL is still recovering (its recovery starts
    /// over); during the node's boot the kill fails the start of its Ra system.
    pub(super) fn wal_restart(&mut self, i: usize) {
        if self.nodes[i].up {
            self.count("wal restart faults");
        }
        if self.nodes[i].up && self.nodes[i].booting {
            self.record_now(i, Fault::WalRestart);
            self.start_failed(i, "the WAL killed while the Ra system starts");
            return;
        }
        if self.restart_wal(i) {
            self.record_now(i, Fault::WalRestart);
            self.maybe_cut_wal_recovery(i);
        }
    }

    /// The WAL restart itself (a fault's, a supervisor's after a crash, or the log supervisor's);
    /// whether it happened (not on a node that is down).
    pub(super) fn restart_wal(&mut self, i: usize) -> bool {
        let n = &mut self.nodes[i];
        if !n.up || n.fs.is_powered_off() || !n.shared.wal_registered {
            return false; // down, or no WAL runs yet (the log supervisor's restart registers one)
        }
        if n.sup.names_poisoned {
            // Its recovery lists the registered servers from the names store, in DETS' error mode.
            self.note(Some(i), Kind::Fail, "WAL start: names store in error mode".into());
            self.ra_system_restart(i);
            return false;
        }
        let incarnation = n.incarnation * 1_000 + n.next_process;
        n.next_process += 1;
        // The old WAL process is gone; its file's handle is a dead process's.
        n.dead_handles.extend(n.wal.open_handle());
        n.wal = Wal::new(wal_config(&self.cfg), incarnation);
        n.next_wal_process += 1;
        n.shared.wal_process = n.next_wal_process;
        let lost = n.drop_wal_mailbox();
        n.wal_box.push_back(WalMsg::Recover);
        self.count("wal restarts");
        self.count_n("appends lost in a restarted WAL's mailbox", lost);
        self.note(Some(i), Kind::Crash, format!("WAL process restart (mem tables kept, {lost} queued appends lost)"));
        true
    }

    /// A random WAL restart (or segment writer crash): in `wal_recovery_cut_percent` of them, a power cut
    /// a few calls into the recovery it starts.
    fn maybe_cut_wal_recovery(&mut self, i: usize) {
        let pct = u64::from(self.cfg.spec.wal_recovery_cut_percent);
        if !self.faults_on || pct == 0 || below(&mut self.fault_rng, 100) >= pct {
            return;
        }
        let calls = 1 + below(&mut self.fault_rng, 40);
        let model = crash_model(self.cfg.spec.crash_model);
        let n = &mut self.nodes[i];
        let seq = n.fs.op_seq() + calls;
        n.fs.arm_power_cut(CrashPoint::AfterOp { seq }, model);
        self.record_armed(i, false, None);
        self.count("crash points armed");
        self.count("power cuts armed in a WAL restart's recovery");
        self.note(Some(i), Kind::Crash, format!("power cut armed after call {seq}, in the WAL's recovery"));
    }

    /// The segment writer crashes mid-work: a fresh one starts (open segments, queued flushes and
    /// step-wise mem-table deletes of the old one are gone), and Ra's `one_for_all` log supervisor
    /// restarts the WAL with it, whose post-boot recovery hands the WAL files still on disk to the new
    /// segment writer again.
    pub(super) fn segment_writer_crash(&mut self, i: usize) {
        if !self.nodes[i].up {
            return;
        }
        if self.nodes[i].booting {
            self.record_now(i, Fault::SegmentWriterCrash);
            self.start_failed(i, "the segment writer killed while the Ra system starts");
            return;
        }
        let n = &mut self.nodes[i];
        n.segment_writer = SegmentWriter::new(segment_writer_config(&self.cfg));
        n.sw_box.clear();
        n.sw_next = None;
        self.count("segment writer crashes");
        self.record_now(i, Fault::SegmentWriterCrash);
        self.note(Some(i), Kind::Crash, "segment writer crash (the log supervisor restarts the WAL too)".into());
        if self.restart_log_tier_wal(i) {
            self.maybe_cut_wal_recovery(i);
        }
    }

    /// Arms a power cut just before the node's next call at a durability point.
    pub(super) fn arm_crash_point(&mut self, i: usize) {
        const POINTS: [(OpKind, &str); 9] = [
            (OpKind::Unlink, "*.wal"),
            (OpKind::Fdatasync, "*.wal"),
            (OpKind::Rename, "*.wal"),
            (OpKind::Fsync, "*.segment"),
            (OpKind::Unlink, "*.segment"),
            (OpKind::FsyncDir, "*"),
            (OpKind::Rename, "config"),
            (OpKind::Write, "indexes"),
            (OpKind::Rename, "names"),
        ];
        let (kind, glob) = POINTS[below(&mut self.fault_rng, POINTS.len() as u64) as usize];
        let model = crash_model(self.cfg.spec.crash_model);
        let n = &mut self.nodes[i];
        let after_seq = n.fs.op_seq();
        n.fs.arm_power_cut(CrashPoint::BeforeOp { kind: Some(kind), path_glob: glob.to_owned(), after_seq }, model);
        self.record_armed(i, true, None);
        self.count("crash points armed");
        self.note(Some(i), Kind::Crash, format!("power cut armed before the next {} of {glob}", kind.name()));
    }

    /// Counts the injected disk errors that failed a call during a step, and the failed syncs that
    /// dropped writes (`fault_classes`).
    pub(super) fn count_disk_faults(&mut self) {
        for i in 0..self.nodes.len() {
            for e in self.nodes[i].fs.take_fault_events() {
                match e {
                    vfs::FaultEvent::ErrorInjected { kind, error, path, .. } => {
                        if kind == OpKind::Unlink {
                            self.nodes[i].unlinks_failed.insert(path);
                        }
                        self.count(disk_error_fired(kind, error))
                    }
                    vfs::FaultEvent::SyncFailed { lost, .. } if !lost.is_empty() => {
                        self.count("failed syncs that dropped writes")
                    }
                    vfs::FaultEvent::SyncFailed { .. } | vfs::FaultEvent::MediaFaultStruck { .. } => {}
                }
            }
        }
    }

    /// A power cut armed at a crash point fired during a step: the node is down.
    pub(super) fn check_fired_cuts(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up || !self.nodes[i].fs.is_powered_off() {
                continue;
            }
            self.crashed(i);
            let n = &mut self.nodes[i];
            let cuts = n.fs.take_power_cuts();
            let recovering = n.booting || n.members.iter().all(|m| m.host.is_none() && m.starting.is_none());
            let wal_recovering = !n.booting && !matches!(n.wal.phase(), raft_core::storage::wal::WalPhase::Running);
            let garbage = cuts.iter().any(|c| has_garbage(&c.decisions));
            n.up = false;
            n.incarnation += 1;
            self.count("crash points fired");
            if recovering {
                self.count("crashes during recovery");
            }
            if wal_recovering {
                self.count("power cuts during a WAL restart's recovery");
            }
            if garbage {
                self.count("crash images with garbage sectors");
            }
            self.record_down(i);
            for cut in cuts {
                self.record_fired(i, &cut);
                if cut.replay_mismatch.is_some() {
                    self.count("crash images that no longer fit");
                }
                self.note(Some(i), Kind::Crash, format!("POWER CUT at op {} ({})", cut.seq, cut.trigger));
                for line in trace::describe_crash(&cut.decisions) {
                    self.note(Some(i), Kind::Disk, line);
                }
            }
            let after = self.cfg.spec.restart_after_ms * 1_000_000;
            self.schedule(after, Event::Restart { node: i });
        }
    }

    /// Applies entry `index` of the fault plan.
    pub(super) fn planned_fault(&mut self, index: usize) {
        let p = &self.cfg.spec.fault_plan[index];
        self.recorder.due_ns = Some(p.at_ms * 1_000_000 + p.plus_ns);
        self.apply_planned(index);
        self.recorder.due_ns = None;
    }

    pub(super) fn apply_planned(&mut self, index: usize) {
        let PlannedFault { node: i, fault, .. } = self.cfg.spec.fault_plan[index].clone();
        self.count("planned faults");
        let crashes = fault.crashes();
        let first_boot = self.nodes[i].incarnation == 0;
        // A cut after a numbered call names the call across reboots: a node that is down arms it at its
        // next boot (how a materialised plan replays a power cut during a reboot after a VM crash or after
        // another such cut). At the first boot it is armed now, before the boot's own calls.
        if let Fault::ExactPowerCut { at: CutAt::AfterCall(seq), image, .. } = &fault
            && !self.nodes[i].up
            && !first_boot
            && let Some(k) = seq.checked_sub(self.nodes[i].fs.op_seq()).filter(|k| *k > 0)
        {
            self.nodes[i].next_boot_cut = Some((k, image.clone()));
            self.count("planned cuts armed at the next boot");
            self.note(Some(i), Kind::Crash, format!("power cut after call {seq} armed at the next boot"));
            return;
        }
        if crashes && !self.nodes[i].up && !first_boot {
            self.count("planned faults skipped (node down)");
            self.note(Some(i), Kind::Crash, format!("planned {} skipped: the node is down", fault.name()));
            return;
        }
        if crashes {
            self.nodes[i].next_boot_cut = match &fault {
                Fault::ExactPowerCut { reboot_cut, .. } => reboot_cut.clone().map(|r| (r.after_calls, r.image)),
                _ => fault.reboot_cut_after_calls().map(|k| (k, None)),
            };
        }
        let model = crash_model(self.cfg.spec.crash_model);
        match fault {
            Fault::PowerLoss { .. } => self.power_loss(i, None),
            Fault::ExactPowerCut { at: CutAt::Now, image, .. } => self.power_loss(i, image.as_ref()),
            Fault::ExactPowerCut { at, image, .. } => {
                let n = &mut self.nodes[i];
                let (point, what) = match at {
                    CutAt::BeforeCall(seq) => (
                        CrashPoint::BeforeOp { kind: None, path_glob: "**".into(), after_seq: seq.saturating_sub(1) },
                        format!("before call {seq}"),
                    ),
                    _ => {
                        let seq = match at {
                            CutAt::AfterCall(seq) => seq,
                            CutAt::Now | CutAt::BeforeCall(_) => unreachable!("matched above"),
                        };
                        (CrashPoint::AfterOp { seq }, format!("after call {seq}"))
                    }
                };
                arm(&mut n.fs, point, model, image.as_ref());
                self.record_armed(i, matches!(at, CutAt::BeforeCall(_)), image.as_ref().map(|im| im.label.clone()));
                self.count("crash points armed");
                let keeps = image.as_ref().map_or(String::new(), |im| format!(", keeping image {}", im.label));
                self.note(Some(i), Kind::Crash, format!("power cut armed {what}{keeps}"));
            }
            Fault::VmCrash { .. } => self.vm_crash(i),
            Fault::PowerCutBefore { call, path_glob, .. } => {
                let kind = OpKind::from_name(&call).expect("validated");
                let n = &mut self.nodes[i];
                let after_seq = n.fs.op_seq();
                n.fs.arm_power_cut(
                    CrashPoint::BeforeOp { kind: Some(kind), path_glob: path_glob.clone(), after_seq },
                    model,
                );
                self.record_armed(i, true, None);
                self.count("crash points armed");
                self.note(Some(i), Kind::Crash, format!("power cut armed before the next {call} of {path_glob}"));
            }
            Fault::PowerCutAfter { call, path_glob, .. } => {
                let kind = OpKind::from_name(&call).expect("validated");
                let n = &mut self.nodes[i];
                let after_seq = n.fs.op_seq();
                let point = CrashPoint::AfterMatchingOp { kind: Some(kind), path_glob: path_glob.clone(), after_seq };
                n.fs.arm_power_cut(point, model);
                self.record_armed(i, false, None);
                self.count("crash points armed");
                self.note(Some(i), Kind::Crash, format!("power cut armed after the next {call} of {path_glob}"));
            }
            Fault::PowerCutAfterCalls { calls, .. } => {
                let n = &mut self.nodes[i];
                let seq = n.fs.op_seq() + calls;
                n.fs.arm_power_cut(CrashPoint::AfterOp { seq }, model);
                self.record_armed(i, false, None);
                self.count("crash points armed");
                self.note(Some(i), Kind::Crash, format!("power cut armed after call {seq} ({calls} calls from now)"));
            }
            Fault::WalRestart => self.wal_restart(i),
            Fault::SegmentWriterCrash => self.segment_writer_crash(i),
            Fault::Isolate { inbound, outbound, duration_ms } => self.isolate(i, inbound, outbound, duration_ms),
            Fault::SlowWal { sync_latency_us, duration_ms } => self.apply_slow_wal(i, sync_latency_us, duration_ms),
            Fault::DiskError { call, path_glob, error, times, duration_ms } => {
                self.disk_error(i, &call, &path_glob, error, times, duration_ms)
            }
            Fault::DiskFull { duration_ms } => self.disk_full(i, duration_ms),
            Fault::BitRot { pick } => self.bit_rot(i, pick),
            Fault::Membership { group, change } => self.change_membership(i, group, change),
        }
    }

    /// Node `i`'s disk turns slow: each WAL sync takes `sync_latency_us` for `duration_ms`.
    fn apply_slow_wal(&mut self, i: usize, sync_latency_us: u64, duration_ms: u64) {
        self.record_now(i, Fault::SlowWal { sync_latency_us, duration_ms });
        self.count("slow disks");
        self.nodes[i].slow_wal =
            Some(SlowWal { sync_latency_ns: sync_latency_us * 1_000, until_ns: self.now_ns + duration_ms * 1_000_000 });
        self.note(
            Some(i),
            Kind::Disk,
            format!("SLOW DISK: each WAL sync takes {sync_latency_us} us for {duration_ms} ms"),
        );
        self.span_started(i, "slow disk", duration_ms * 1_000_000);
    }

    /// Node `i`'s disk fails calls of kind `call` on `path_glob` with `error`: the next `times` of them,
    /// or every one for `duration_ms` when that is above 0.
    pub(super) fn disk_error(
        &mut self,
        i: usize,
        call: &str,
        path_glob: &str,
        error: DiskErrorKind,
        times: u32,
        duration_ms: u64,
    ) {
        let fault = Fault::DiskError { call: call.into(), path_glob: path_glob.into(), error, times, duration_ms };
        self.record_now(i, fault);
        let kind = OpKind::from_name(call).expect("validated");
        let errno = match error {
            DiskErrorKind::Eio => vfs::ErrorKind::Io,
            DiskErrorKind::Enospc => vfs::ErrorKind::NoSpace,
        };
        let n = &mut self.nodes[i];
        let sticky = duration_ms > 0;
        n.fs.inject_error(vfs::ErrorRule {
            kind: Some(kind),
            path_glob: path_glob.into(),
            error: errno,
            after_seq: n.fs.op_seq(),
            times: if sticky { u32::MAX } else { times },
        });
        let name = match error {
            DiskErrorKind::Eio => "EIO",
            DiskErrorKind::Enospc => "ENOSPC",
        };
        if sticky {
            self.count("sticky disk errors");
            let rule = DiskRule { call: kind, path_glob: path_glob.into(), error: errno };
            self.schedule(duration_ms * 1_000_000, Event::DiskRecovered { node: i, rule: Some(rule) });
            self.note(
                Some(i),
                Kind::Disk,
                format!("DISK ERRORS: every {call} of {path_glob} fails with {name} for {duration_ms} ms"),
            );
            self.span_started(i, "disk errors", duration_ms * 1_000_000);
        } else {
            self.count("transient disk errors");
            self.note(
                Some(i),
                Kind::Disk,
                format!("DISK ERROR: the next {times} {call} of {path_glob} fail with {name}"),
            );
        }
    }

    /// Node `i`'s disk fills up (other data) for `duration_ms`.
    pub(super) fn disk_full(&mut self, i: usize, duration_ms: u64) {
        self.record_now(i, Fault::DiskFull { duration_ms });
        self.count("full disks");
        let n = &mut self.nodes[i];
        let used = n.fs.used_bytes();
        n.fs.set_capacity_bytes(used);
        self.schedule(duration_ms * 1_000_000, Event::DiskRecovered { node: i, rule: None });
        self.note(Some(i), Kind::Disk, format!("DISK FULL for {duration_ms} ms (every new page: ENOSPC)"));
        self.span_started(i, "disk full", duration_ms * 1_000_000);
    }

    /// A sticky disk error's time is over (`rule`), or a full disk has room again (`None`).
    pub(super) fn disk_recovered(&mut self, i: usize, rule: Option<DiskRule>) {
        let n = &mut self.nodes[i];
        match rule {
            Some(r) => n.fs.remove_error_rules(|e| {
                e.kind == Some(r.call) && e.path_glob == r.path_glob && e.error == r.error && e.times > u32::MAX / 2
            }),
            None => n.fs.set_capacity_bytes(DISK_CAPACITY_BYTES),
        }
        if self.faults_on {
            self.note(Some(i), Kind::Disk, "disk errors over".into());
        }
    }

    /// A random fault is due: draw one (while every node is in) and schedule the next.
    pub(super) fn random_fault(&mut self) {
        if !self.faults_on {
            return;
        }
        // Faults stay within what Raft claims to survive: never a second node out at a time.
        let all_in = self.nodes.iter().all(|n| n.up) && self.cut.is_none();
        if all_in {
            let victim = below(&mut self.fault_rng, self.nodes.len() as u64) as usize;
            let c = &self.cfg.spec;
            let weights = [
                c.power_loss_weight,
                c.vm_crash_weight,
                c.wal_restart_weight,
                c.partition_weight,
                c.crash_point_weight,
                c.one_way_partition_weight,
                c.segment_writer_crash_weight,
                c.slow_disk_weight,
                c.disk_error_weight,
                c.membership_change_weight,
                c.bit_rot_weight,
            ];
            let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
            let mut pick = below(&mut self.fault_rng, total.max(1));
            let mut kind = 0;
            for (k, w) in weights.iter().enumerate() {
                if pick < u64::from(*w) {
                    kind = k;
                    break;
                }
                pick -= u64::from(*w);
            }
            if total > 0 {
                let first = self.cfg.spec.fault_every_ms * 1_000_000;
                self.recorder.due_ns = Some(self.recorder.next_fault_due_ns.unwrap_or(first));
                match kind {
                    0 => self.power_loss(victim, None),
                    1 => self.vm_crash(victim),
                    2 => self.wal_restart(victim),
                    3 => self.isolate(victim, true, true, self.cfg.spec.partition_ms),
                    4 => self.arm_crash_point(victim),
                    5 => {
                        let inbound = below(&mut self.fault_rng, 2) == 0;
                        self.isolate(victim, inbound, !inbound, self.cfg.spec.partition_ms)
                    }
                    6 => self.segment_writer_crash(victim),
                    7 => self.random_slow_disk(victim),
                    8 => self.random_disk_error(victim),
                    9 => self.random_membership_change(victim),
                    _ => {
                        let pick = below(&mut self.fault_rng, u64::MAX);
                        self.bit_rot(victim, pick)
                    }
                }
                self.recorder.due_ns = None;
            }
        }
        let every = self.cfg.spec.fault_every_ms * 1_000_000;
        let jitter = below(&mut self.fault_rng, every.max(1));
        self.recorder.next_fault_due_ns = Some(self.now_ns + every / 2 + jitter);
        self.schedule(every / 2 + jitter, Event::Fault);
    }

    /// A slow disk for a while: each WAL sync takes 1 to 20 ms for 100 ms to 1 s.
    fn random_slow_disk(&mut self, i: usize) {
        let mut pick = |choices: &[u64]| choices[below(&mut self.fault_rng, choices.len() as u64) as usize];
        let sync_latency_us = pick(&[1_000, 5_000, 12_000, 20_000]);
        let duration_ms = pick(&[100, 300, 1_000]);
        self.apply_slow_wal(i, sync_latency_us, duration_ms);
    }

    /// A disk error at one of the places Ra's storage calls the disk (the WAL's writes, syncs and
    /// roll-over, the segment writer's, snapshots, the config, the stores, the reads of recovery and
    /// of the log) or a directory listing (`listing_error_percent` of them), `EIO` — or `ENOSPC` where a
    /// call can run out of space — transient (1 to 3 calls) or sticky (100 ms to 1 s); or the disk full
    /// for a while.
    fn random_disk_error(&mut self, i: usize) {
        let listing_percent = self.cfg.spec.listing_error_percent as usize;
        let mut pick = |n: usize| below(&mut self.fault_rng, n as u64) as usize;
        if pick(8) == 0 {
            let duration_ms = [100, 300, 1_000][pick(3)];
            self.disk_full(i, duration_ms);
            return;
        }
        // The call kind first, then one of its sites: every kind of call fails as often as any other,
        // however many sites it has.
        let mut kinds: Vec<&str> = DISK_ERROR_SITES.iter().map(|(c, _)| *c).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let kind = kinds[pick(kinds.len())];
        let sites: Vec<(&str, &str)> = DISK_ERROR_SITES.iter().copied().filter(|(c, _)| *c == kind).collect();
        let (mut call, mut path_glob) = sites[pick(sites.len())];
        // Drawn only in worlds that ask for listing errors, so that every other world's draws stay as
        // they were.
        if listing_percent > 0 && pick(100) < listing_percent {
            (call, path_glob) = LISTING_SITES[pick(LISTING_SITES.len())];
        }
        let may_fill = matches!(call, "write" | "create" | "fallocate" | "set_len");
        let error = if may_fill && pick(3) == 0 { DiskErrorKind::Enospc } else { DiskErrorKind::Eio };
        let (times, duration_ms) = if pick(3) == 0 { (0, [100, 300, 1_000][pick(3)]) } else { (1 + pick(3) as u32, 0) };
        self.disk_error(i, call, path_glob, error, times, duration_ms);
    }

    /// A crashed node's restart is due: boot it, maybe with a power cut into its recovery.
    pub(super) fn restart(&mut self, node: usize) {
        // The heal may have booted it already.
        if !self.nodes[node].up && self.checkers.first().is_none() {
            let disk_pct = u64::from(self.cfg.spec.recovery_disk_error_percent);
            if self.faults_on && disk_pct > 0 && below(&mut self.fault_rng, 100) < disk_pct {
                // Recorded as a disk error due now, before the boot and before the boot's cut (the order a
                // plan replaying both applies them in): its entry is queued before this `Restart` event
                // (plan events are queued first), so it is armed in time.
                let site = RECOVERY_READ_SITES[below(&mut self.fault_rng, RECOVERY_READ_SITES.len() as u64) as usize];
                let times = 1 + below(&mut self.fault_rng, 3) as u32;
                self.count("disk errors armed into a recovery");
                self.disk_error(node, "read", site, DiskErrorKind::Eio, times, 0);
            }
            let pct = u64::from(self.cfg.spec.recovery_crash_percent);
            let planned = self.nodes[node].next_boot_cut.take().filter(|_| self.faults_on);
            let cut = if planned.is_some() {
                planned
            } else if self.faults_on && pct > 0 && below(&mut self.fault_rng, 100) < pct {
                Some((1 + below(&mut self.fault_rng, 60), None))
            } else {
                None
            };
            if cut.is_some() {
                self.count("recovery crashes armed");
            }
            self.record_boot_cut(node, cut.as_ref());
            self.boot(node, cut);
            self.count("restarts");
        }
    }

    /// Entry `index` of the fault plan is due.
    pub(super) fn planned_due(&mut self, index: usize) {
        if self.faults_on {
            self.planned_fault(index);
        }
    }

    /// The safety phase ends: faults off, every node back, the liveness phase begins.
    pub(super) fn heal(&mut self) {
        if !self.faults_on {
            return; // healed early already (`World::heal_at`)
        }
        // Entries planned for the heal's very instant come first, as a random fault drawn for it
        // does (its event is older): how a materialised plan replays one.
        let heal_ns = self.cfg.spec.safety_ms * 1_000_000;
        let due: Vec<(u64, u64)> = self
            .queue
            .iter()
            .filter(|(k, e)| k.0 == heal_ns && matches!(e, Event::Planned { .. }))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            if let Some(Event::Planned { index }) = self.queue.remove(&key) {
                self.planned_fault(index);
                self.check_fired_cuts();
            }
        }
        self.faults_on = false;
        self.cut = None;
        for n in self.nodes.iter_mut() {
            n.fs.disarm_power_cut();
            n.fs.clear_error_rules();
            n.fs.set_capacity_bytes(DISK_CAPACITY_BYTES);
            n.slow_wal = None;
        }
        self.timeline_healed();
        self.note(None, Kind::Phase, "HEAL: faults off, liveness phase".into());
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up && self.checkers.first().is_none() {
                self.boot(i, None);
            }
        }
        // A log supervisor's restart still under way completes: its WAL registers now.
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if let Some(at_ns) = n.wal_registers_at_ns.filter(|_| n.up) {
                let incarnation = n.incarnation;
                self.count("WAL down windows ended by the heal");
                self.wal_registers(i, incarnation, at_ns);
            }
        }
        // Members whose supervisor gave up are restarted (`ra:restart_server`, an operator's job).
        for i in 0..self.nodes.len() {
            for g in 0..self.cfg.spec.groups {
                let m = &self.nodes[i].members[g];
                if m.stopped && !m.removed && self.checkers.first().is_none() {
                    self.count("stopped members restarted at the heal");
                    self.restart_member(i, g);
                }
            }
        }
        self.checkers.liveness_started(self.now_ns);
        self.schedule(self.cfg.spec.liveness_workload_ms * 1_000_000, Event::ConvergeCheck);
    }
}

/// Whether a crash image put garbage in some sector.
fn has_garbage(decisions: &vfs::CrashDecisions) -> bool {
    decisions.files.iter().any(|f| f.sectors.iter().any(|s| matches!(s.version, vfs::SectorVersion::Garbage(_))))
}

/// The coverage counter of an injected error that failed a call (`fault_classes`).
fn disk_error_fired(kind: OpKind, error: vfs::ErrorKind) -> &'static str {
    if error == vfs::ErrorKind::NoSpace {
        return "disk errors fired: ENOSPC";
    }
    match kind {
        OpKind::Write => "disk errors fired: write EIO",
        OpKind::Fdatasync => "disk errors fired: fdatasync EIO",
        OpKind::Fsync => "disk errors fired: fsync EIO",
        OpKind::FsyncDir => "disk errors fired: directory fsync EIO",
        OpKind::Rename => "disk errors fired: rename EIO",
        OpKind::Read => "disk errors fired: read EIO",
        OpKind::Create => "disk errors fired: create EIO",
        OpKind::Open => "disk errors fired: open EIO",
        OpKind::Unlink => "disk errors fired: unlink EIO",
        OpKind::ReadDir => "disk errors fired: directory listing EIO",
        _ => "disk errors fired: other EIO",
    }
}
