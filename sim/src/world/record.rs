//! The recorder: every fault that took effect, random or planned, as an explicit plan
//! (`RunResult::materialized`), and where each power cut fell (`fired_cuts`) — what `sim shrink` starts
//! from and the same world with its random faults off replays.
//!
//! Owns: `Recorder` and the arming bookkeeping per node. Must not change the run: it only writes down
//! what `faults` and `network` did.

use scenarios::{CrashImage, CutAt, Fault, PlannedFault, RebootCut};

use crate::image;

use super::World;
use super::config::crash_model;
use super::outcome::FiredCut;

/// The faults that took effect so far (`RunResult::materialized`), and per node what a power cut that
/// fires later was armed as.
#[derive(Debug, Clone, Default)]
pub(super) struct Recorder {
    /// Entries in the order they were recorded, each with the order it was armed or took effect in
    /// (entries due at the same time replay in that order).
    pub(super) plan: Vec<(u64, PlannedFault)>,
    /// The power cuts that fired: entry (index into `plan`), reboot cut or not, (call, path, time).
    pub(super) fired: Vec<(usize, bool, (String, String, u64))>,
    /// The next arming order.
    pub(super) order: u64,
    /// By node (grown on demand).
    pub(super) nodes: Vec<NodeRecord>,
    /// While a fault event is handled: the time it was scheduled for.
    pub(super) due_ns: Option<u64>,
    /// When the next random fault event is due (`None`: the first, at `fault_every_ms`).
    pub(super) next_fault_due_ns: Option<u64>,
    /// More faults took effect than the recorder keeps (`MAX_RECORDED_FAULTS`): it let go of its plan
    /// and records no more.
    pub(super) overflowed: bool,
}

/// The most faults a run's recorder keeps (each a few hundred bytes with its crash image): a run with
/// more — a fault every two seconds for eleven simulated hours — is too long to shrink as one plan, and
/// a day of them would hold tens of megabytes. `RunResult::materialized_overflowed` says so.
pub const MAX_RECORDED_FAULTS: usize = 20_000;

/// The entry number of a fault the recorder did not keep.
pub(super) const NOT_KEPT: usize = usize::MAX;

/// What the recorder knows of one node.
#[derive(Debug, Clone, Default)]
pub(super) struct NodeRecord {
    /// The power cut armed on its disk, if any.
    pub(super) armed: Option<ArmedRecord>,
    /// The entry of the crash that took it down, while its reboot may still attach a reboot cut to it.
    pub(super) crash_entry: Option<usize>,
    /// When its last crash's `Restart` event is due.
    pub(super) restart_due_ns: u64,
}

/// How an armed power cut was armed.
#[derive(Debug, Clone)]
pub(super) enum ArmedRecord {
    /// At a crash point (random or planned): it becomes an exact cut before or after the call it fires
    /// at, armed at the same time.
    Point { at_ns: u64, order: u64, before: bool, label: Option<String> },
    /// By a reboot, `after_calls` calls into it: the reboot cut of the crash entry `attach`, or else an
    /// exact cut after its call that the down node arms at its boot.
    Boot { after_calls: u64, at_ns: u64, order: u64, attach: Option<usize>, label: Option<String> },
}

impl Recorder {
    pub(super) fn next_order(&mut self) -> u64 {
        self.order += 1;
        self.order
    }

    pub(super) fn node(&mut self, i: usize) -> &mut NodeRecord {
        if self.nodes.len() <= i {
            self.nodes.resize_with(i + 1, NodeRecord::default);
        }
        &mut self.nodes[i]
    }

    /// Adds an entry at `at_ns`; its index (`NOT_KEPT` once the recorder overflowed).
    pub(super) fn push(&mut self, at_ns: u64, order: u64, node: usize, fault: Fault) -> usize {
        if self.plan.len() >= MAX_RECORDED_FAULTS {
            self.overflowed = true;
            self.plan = Vec::new();
            self.fired = Vec::new();
            for n in &mut self.nodes {
                n.crash_entry = None;
            }
        }
        if self.overflowed {
            return NOT_KEPT;
        }
        let entry = PlannedFault { at_ms: at_ns / 1_000_000, plus_ns: at_ns % 1_000_000, node, fault };
        self.plan.push((order, entry));
        self.plan.len() - 1
    }

    fn fired(&mut self, entry: usize, reboot: bool, call: (String, String, u64)) {
        if entry != NOT_KEPT {
            self.fired.push((entry, reboot, call));
        }
    }

    /// The plan in time order (ties in the order they were armed), and where its cuts fell (both empty
    /// once the recorder overflowed).
    pub(super) fn into_plan(self) -> (Vec<PlannedFault>, Vec<FiredCut>) {
        let mut by_time: Vec<usize> = (0..self.plan.len()).collect();
        by_time.sort_by_key(|&k| {
            let (order, p) = &self.plan[k];
            (p.at_ms, p.plus_ns, *order)
        });
        let mut position = vec![0; self.plan.len()];
        for (at, &k) in by_time.iter().enumerate() {
            position[k] = at;
        }
        let mut fired: Vec<FiredCut> = self
            .fired
            .into_iter()
            .map(|(k, reboot, (call, path, time_ns))| FiredCut { entry: position[k], reboot, call, path, time_ns })
            .collect();
        fired.sort_by_key(|f| (f.entry, f.reboot));
        let plan = by_time.into_iter().map(|k| self.plan[k].1.clone()).collect();
        (plan, fired)
    }
}

impl World {
    /// Records a fault that takes effect now; its index in the recorder.
    pub(super) fn record_now(&mut self, i: usize, fault: Fault) -> usize {
        let order = self.recorder.next_order();
        self.recorder.push(self.due_ns(), order, i, fault)
    }

    /// When the fault being applied was due: the time its event was scheduled for (a plan entry
    /// replaying it must be queued there, so that it comes before the same events), else now.
    pub(super) fn due_ns(&self) -> u64 {
        self.recorder.due_ns.unwrap_or(self.now_ns)
    }

    /// Notes when node `i`, down from now on, restarts (its `Restart` event's time).
    pub(super) fn record_down(&mut self, i: usize) {
        self.record_down_for(i, self.cfg.spec.restart_after_ms * 1_000_000);
    }

    /// Notes that node `i`, down from now on, restarts `after_ns` from now.
    pub(super) fn record_down_for(&mut self, i: usize, after_ns: u64) {
        let due = self.now_ns + after_ns;
        self.recorder.node(i).restart_due_ns = due;
    }

    /// Records that a power cut was just armed on node `i` (replacing any armed one): before or after
    /// the call it will fire at, keeping an image labelled `label` (`None`: the crash model chooses).
    pub(super) fn record_armed(&mut self, i: usize, before: bool, label: Option<String>) {
        let order = self.recorder.next_order();
        let at_ns = self.due_ns();
        self.recorder.node(i).armed = Some(ArmedRecord::Point { at_ns, order, before, label });
    }

    /// Records the power cut a reboot of node `i` arms (`None`: none; its boot disarms any other).
    pub(super) fn record_boot_cut(&mut self, i: usize, cut: Option<&(u64, Option<CrashImage>)>) {
        let order = self.recorder.next_order();
        let r = self.recorder.node(i);
        let attach = r.crash_entry.take();
        let at_ns = r.restart_due_ns;
        r.armed = cut.map(|(after_calls, image)| ArmedRecord::Boot {
            after_calls: *after_calls,
            at_ns,
            order,
            attach,
            label: image.as_ref().map(|im| im.label.clone()),
        });
    }

    /// Records a power cut that fired on node `i`, as the exact cut it was.
    pub(super) fn record_fired(&mut self, i: usize, cut: &vfs::PowerCut) {
        let call = (cut.kind.name().to_owned(), cut.path.clone(), self.now_ns);
        let model = crash_model(self.cfg.spec.crash_model);
        let image = |label: Option<String>| {
            let label = label.filter(|_| cut.replay_mismatch.is_none()).unwrap_or_else(|| model.name().to_owned());
            Some(image::from_decisions(&cut.decisions, &label))
        };
        match self.recorder.node(i).armed.take() {
            Some(ArmedRecord::Point { at_ns, order, before, label }) => {
                let at = if before { CutAt::BeforeCall(cut.seq) } else { CutAt::AfterCall(cut.seq) };
                let fault = Fault::ExactPowerCut { at, image: image(label), reboot_cut: None };
                let entry = self.recorder.push(at_ns, order, i, fault);
                self.recorder.fired(entry, false, call);
                self.recorder.node(i).crash_entry = Some(entry).filter(|&e| e != NOT_KEPT);
            }
            Some(ArmedRecord::Boot { after_calls, at_ns, order, attach, label }) => {
                let image = image(label);
                let slot = attach.and_then(|e| match self.recorder.plan.get_mut(e).map(|p| &mut p.1.fault) {
                    Some(Fault::ExactPowerCut { reboot_cut: slot @ None, .. }) => Some(slot),
                    _ => None,
                });
                match slot {
                    Some(slot) => {
                        *slot = Some(RebootCut { after_calls, image });
                        let entry = attach.expect("a slot is an entry's");
                        self.recorder.fired(entry, true, call);
                    }
                    None => {
                        let fault = Fault::ExactPowerCut { at: CutAt::AfterCall(cut.seq), image, reboot_cut: None };
                        let entry = self.recorder.push(at_ns, order, i, fault);
                        self.recorder.fired(entry, false, call);
                    }
                }
                self.recorder.node(i).crash_entry = None;
            }
            None => self.count("power cuts fired without a record"),
        }
    }
}
