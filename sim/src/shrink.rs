//! Shrinking a failing run: delta debugging over its faults, its crash images and its world, while the
//! same checker still fails.
//!
//! Why materialise first: a swarm seed's faults are drawn at random while it runs, and a targeted
//! scenario's plan names crash points ("before the next unlink of a WAL file") that may fire at another
//! call once anything earlier changes. The run's own record of what took effect
//! (`RunResult::materialized`: every power cut at its exact call with the image it left) is a plan that
//! replays the same run with the random faults off, and a plan can be cut down entry by entry. After
//! every accepted candidate the plan is materialised again from the candidate's run, so that the crash
//! images stay those the run applied (a later image that no longer fits the candidate's pending state
//! is replaced by the one the crash model chose instead).
//!
//! A candidate is accepted when it fails with the same checker and — for a world with bug switches —
//! passes with the switches off (what `sim replay --check` demands of a seed file); the candidate's
//! materialised plan must fail the same way too. Each accepted step makes the run strictly smaller in
//! (faults, knobs, kept pieces), in that order: fewer plan entries or reboot cuts; or no more faults and
//! one knob closer to its smallest value; or as many faults and knobs and fewer unsynced pieces kept by
//! an image. So shrinking ends, at a fixpoint (a whole pass accepts nothing) or at the run budget.
//! Pure: no printing, no clock; the `sim` binary prints.

use std::panic::{AssertUnwindSafe, catch_unwind};

use raft_core::Bugs;
use scenarios::{CrashImage, Fault, PlannedFault, WorldSpec};

use crate::world::{FiredCut, Outcome, RunResult, WorldConfig, run};

/// The candidate runs a shrink may spend unless told otherwise (`sim shrink --max-runs`).
pub const DEFAULT_MAX_RUNS: usize = 600;

/// Other world seeds `reseed` tries.
const RESEEDS: u64 = 32;

/// `spec` with its random faults off and `plan` as its whole fault plan: the world that replays a run
/// whose `RunResult::materialized` is `plan`.
pub fn materialized_spec(spec: &WorldSpec, plan: Vec<PlannedFault>) -> WorldSpec {
    WorldSpec {
        fault_every_ms: 0,
        recovery_crash_percent: 0,
        wal_recovery_cut_percent: 0,
        recovery_disk_error_percent: 0,
        fault_plan: plan,
        ..spec.clone()
    }
}

/// Runs `cfg` and returns its result with the world that replays it through an explicit plan.
pub fn materialize(cfg: &WorldConfig) -> (RunResult, WorldConfig) {
    let result = run(cfg.clone());
    let spec = materialized_spec(&cfg.spec, result.materialized.clone());
    (result, WorldConfig { spec, ..cfg.clone() })
}

/// How big a failing run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    /// Faults that took effect (entries of the materialised plan).
    pub faults: usize,
    /// Power cuts during a reboot, carried by crash entries (`reboot_cut`).
    pub reboot_cuts: usize,
    /// Unsynced pieces (sectors, size changes, entry operations) the crash images keep, summed.
    pub kept_pieces: usize,
    /// Events the run processed.
    pub events: u64,
    /// Simulated time at its end.
    pub sim_time_ns: u64,
}

impl Size {
    fn of(plan: &[PlannedFault], result: &RunResult) -> Size {
        Size {
            faults: plan.len(),
            reboot_cuts: plan.iter().filter(|p| reboot_cut(&p.fault).is_some()).count(),
            kept_pieces: images(plan).map(CrashImage::kept_count).sum(),
            events: result.events,
            sim_time_ns: result.sim_time_ns,
        }
    }
}

/// What shrinking produced.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The original world with its faults materialised (the starting point).
    pub materialized: WorldConfig,
    /// The shrunk world: an explicit plan, no random faults.
    pub config: WorldConfig,
    /// Its run (fails with the same checker).
    pub result: RunResult,
    /// The size of the original run (its faults as materialised).
    pub before: Size,
    /// The size of the shrunk run.
    pub after: Size,
    /// Candidate runs spent (switch-off and re-materialisation runs included).
    pub runs: usize,
    /// The budget ran out before a fixpoint.
    pub budget_exhausted: bool,
    /// The accepted steps, in order, one line each.
    pub steps: Vec<String>,
}

/// Shrinks `cfg`, which must fail with `checker`, spending at most `max_runs` runs. `Err` when it does
/// not fail so, or when its materialised plan does not (a fault the recorder cannot express).
pub fn shrink(cfg: &WorldConfig, checker: &str, max_runs: usize) -> Result<Shrunk, String> {
    let original = run_caught(cfg).ok_or("the run panics")?;
    match original.outcome.checker() {
        Some(c) if c == checker => {}
        got => return Err(format!("the run does not fail with {checker} (got {})", got.unwrap_or("a pass"))),
    }
    if original.materialized_overflowed {
        return Err(format!(
            "the run has more faults than a plan keeps ({}): shrink a shorter run of the same world (a lower safety_ms)",
            crate::world::MAX_RECORDED_FAULTS
        ));
    }
    let start = WorldConfig { spec: materialized_spec(&cfg.spec, original.materialized.clone()), ..cfg.clone() };
    let result = run_caught(&start).ok_or("its materialised plan panics")?;
    if result.outcome.checker() != Some(checker) {
        return Err(format!(
            "its materialised plan does not fail with {checker} (got {})",
            result.outcome.checker().unwrap_or("a pass")
        ));
    }
    let before = Size::of(&start.spec.fault_plan, &result);
    let mut s = Shrinker {
        checker: checker.to_owned(),
        current: start.clone(),
        result,
        runs: 2,
        max_runs,
        exhausted: false,
        accepted: 0,
        steps: Vec::new(),
    };
    loop {
        let accepted = s.accepted;
        s.drop_entries();
        s.drop_reboot_cuts();
        s.shorten_safety();
        s.shrink_images();
        s.shrink_workload();
        s.shrink_cluster();
        if s.exhausted {
            break;
        }
        if s.accepted == accepted && !s.reseed() {
            break;
        }
    }
    let after = Size::of(&s.current.spec.fault_plan, &s.result);
    Ok(Shrunk {
        materialized: start,
        config: s.current,
        result: s.result,
        before,
        after,
        runs: s.runs,
        budget_exhausted: s.exhausted,
        steps: s.steps,
    })
}

/// Runs a world; `None` if the system under test panics.
fn run_caught(cfg: &WorldConfig) -> Option<RunResult> {
    catch_unwind(AssertUnwindSafe(|| run(cfg.clone()))).ok()
}

fn reboot_cut(fault: &Fault) -> Option<&scenarios::RebootCut> {
    match fault {
        Fault::ExactPowerCut { reboot_cut, .. } => reboot_cut.as_ref(),
        _ => None,
    }
}

/// Every crash image of a plan (those of reboot cuts included).
fn images(plan: &[PlannedFault]) -> impl Iterator<Item = &CrashImage> {
    plan.iter().flat_map(|p| match &p.fault {
        Fault::ExactPowerCut { image, reboot_cut, .. } => {
            image.iter().chain(reboot_cut.iter().flat_map(|r| r.image.iter())).collect::<Vec<_>>()
        }
        _ => Vec::new(),
    })
}

/// The image of plan entry `entry`: its own (`reboot` false) or its reboot cut's.
fn image_of(spec: &WorldSpec, entry: usize, reboot: bool) -> Option<&CrashImage> {
    match &spec.fault_plan.get(entry)?.fault {
        Fault::ExactPowerCut { image, .. } if !reboot => image.as_ref(),
        Fault::ExactPowerCut { reboot_cut: Some(r), .. } if reboot => r.image.as_ref(),
        _ => None,
    }
}

/// The image slot of plan entry `entry`: its own (`reboot` false) or its reboot cut's.
fn image_slot(spec: &mut WorldSpec, entry: usize, reboot: bool) -> Option<&mut Option<CrashImage>> {
    match &mut spec.fault_plan.get_mut(entry)?.fault {
        Fault::ExactPowerCut { image, .. } if !reboot => Some(image),
        Fault::ExactPowerCut { reboot_cut: Some(r), .. } if reboot => Some(&mut r.image),
        _ => None,
    }
}

/// One unsynced piece an image keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// File `f`'s size change.
    Size(usize),
    /// File `f`'s sector at position `s` of its list.
    Sector(usize, usize),
    /// Kept entry operation `e`.
    Entry(usize),
}

fn pieces(image: &CrashImage) -> Vec<Piece> {
    let mut v = Vec::new();
    for (f, file) in image.files.iter().enumerate() {
        if file.size_after.is_some() {
            v.push(Piece::Size(f));
        }
        v.extend((0..file.sectors.len()).map(|s| Piece::Sector(f, s)));
    }
    v.extend((0..image.kept_entries.len()).map(Piece::Entry));
    v
}

/// `image` without `drop`, labelled `shrunk`; files left with nothing are left out.
fn without(image: &CrashImage, drop: &[Piece]) -> CrashImage {
    let mut files = Vec::new();
    for (f, file) in image.files.iter().enumerate() {
        let mut file = file.clone();
        if drop.contains(&Piece::Size(f)) {
            file.size_after = None;
        }
        let sectors = std::mem::take(&mut file.sectors);
        file.sectors = sectors
            .into_iter()
            .enumerate()
            .filter(|(s, _)| !drop.contains(&Piece::Sector(f, *s)))
            .map(|(_, x)| x)
            .collect();
        if file.size_after.is_some() || !file.sectors.is_empty() {
            files.push(file);
        }
    }
    let kept_entries = image
        .kept_entries
        .iter()
        .enumerate()
        .filter(|(e, _)| !drop.contains(&Piece::Entry(*e)))
        .map(|(_, x)| x.clone())
        .collect();
    CrashImage { label: "shrunk".into(), files, kept_entries }
}

/// `path` with every run of eight or more hexadecimal digits made `*`: a file of the same kind (the next
/// WAL file, a segment, a snapshot's directory) whatever its number.
pub fn generalise(path: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in path.chars().chain(std::iter::once('/')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if run.len() >= 8 {
            out.push('*');
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Re-anchors the exact cuts of `plan` from entry `from` on: a cut before (after) call number N becomes
/// a cut before (after) the next call of the same kind on a path like the one it fell at
/// (`generalise`), armed at the same time, with the image the crash model chooses — what the cut meant,
/// once a change before it shifts the numbers of later calls. `fired` says where each cut fell (the
/// current plan's, from its own run). Whether any cut was re-anchored.
pub fn reanchor(plan: &mut [PlannedFault], fired: &[FiredCut], from: usize) -> bool {
    let mut any = false;
    for (k, p) in plan.iter_mut().enumerate().skip(from) {
        let Fault::ExactPowerCut { at, reboot_cut, .. } = &p.fault else { continue };
        let Some(f) = fired.iter().find(|f| f.entry == k && !f.reboot) else { continue };
        let (call, path_glob) = (f.call.clone(), generalise(&f.path));
        let reboot_cut_after_calls = reboot_cut.as_ref().map(|r| r.after_calls);
        p.fault = match at {
            scenarios::CutAt::BeforeCall(_) => Fault::PowerCutBefore { call, path_glob, reboot_cut_after_calls },
            scenarios::CutAt::AfterCall(_) => Fault::PowerCutAfter { call, path_glob, reboot_cut_after_calls },
            scenarios::CutAt::Now => continue,
        };
        any = true;
    }
    any
}

/// `len` items in `n` contiguous chunks (as even as can be), as index ranges.
/// Delta debugging's next granularity: coarser after a success, finer after a failure, `None` once
/// single pieces have all been tried.
fn ddmin_next(accepted: bool, n: usize, len: usize) -> Option<usize> {
    if accepted {
        Some((n - 1).max(2))
    } else if n >= len {
        None
    } else {
        Some((2 * n).min(len))
    }
}

fn chunks(len: usize, n: usize) -> Vec<std::ops::Range<usize>> {
    let n = n.clamp(1, len.max(1));
    (0..n).map(|k| (k * len / n)..((k + 1) * len / n)).filter(|r| !r.is_empty()).collect()
}

struct Shrinker {
    checker: String,
    /// The smallest failing world so far (its plan materialised from its own run).
    current: WorldConfig,
    /// Its run.
    result: RunResult,
    runs: usize,
    max_runs: usize,
    exhausted: bool,
    /// Candidates accepted so far.
    accepted: usize,
    steps: Vec<String>,
}

impl Shrinker {
    /// Runs a world, counting it; `None` when the budget is spent or it panics.
    fn run(&mut self, cfg: &WorldConfig) -> Option<RunResult> {
        if self.runs >= self.max_runs {
            self.exhausted = true;
            return None;
        }
        self.runs += 1;
        run_caught(cfg)
    }

    fn fails_alike(&self, r: &RunResult) -> bool {
        r.outcome.checker() == Some(self.checker.as_str())
    }

    /// Tries `spec` in place of the current world; accepts it (materialised from its own run) when it
    /// fails with the same checker, passes with the switches off and is no bigger in faults and kept
    /// pieces than `limit` says. `what` is the step, for the report.
    fn try_spec(&mut self, spec: WorldSpec, what: impl Fn() -> String, limit: Limit) -> bool {
        if self.exhausted || spec == self.current.spec {
            return false;
        }
        let cfg = WorldConfig { spec, ..self.current.clone() };
        if cfg.validate().is_err() {
            return false;
        }
        let Some(r) = self.run(&cfg) else { return false };
        if !self.fails_alike(&r) {
            return false;
        }
        let (cfg, r) = if r.materialized == cfg.spec.fault_plan {
            (cfg, r)
        } else {
            let again = WorldConfig { spec: materialized_spec(&cfg.spec, r.materialized.clone()), ..cfg };
            match self.run(&again) {
                Some(r) if self.fails_alike(&r) => (again, r),
                _ => return false,
            }
        };
        let (old, new) = (Size::of(&self.current.spec.fault_plan, &self.result), Size::of(&cfg.spec.fault_plan, &r));
        let smaller = match limit {
            Limit::FewerFaults => (new.faults + new.reboot_cuts) < (old.faults + old.reboot_cuts),
            Limit::FewerPieces => {
                (new.faults, new.reboot_cuts) == (old.faults, old.reboot_cuts) && new.kept_pieces < old.kept_pieces
            }
            Limit::NoMoreFaults => new.faults + new.reboot_cuts <= old.faults + old.reboot_cuts,
        };
        if !smaller {
            return false;
        }
        if self.current.bugs != Bugs::none() {
            let fixed = WorldConfig { bugs: Bugs::none(), ..cfg.clone() };
            match self.run(&fixed) {
                Some(f) if f.outcome == Outcome::Pass => {}
                _ => return false,
            }
        }
        push_step(&mut self.steps, what());
        self.accepted += 1;
        self.current = cfg;
        self.result = r;
        true
    }

    /// Tries the current world changed by `modify`; if that is not accepted and the plan has exact
    /// cuts from entry `from` on, tries it again with those cuts re-anchored first (`reanchor`): a change
    /// before them shifts the calls they name.
    fn try_modified(
        &mut self,
        modify: impl Fn(&mut WorldSpec),
        from: usize,
        what: impl Fn() -> String,
        limit: Limit,
    ) -> bool {
        let mut spec = self.current.spec.clone();
        modify(&mut spec);
        if self.try_spec(spec, &what, limit) {
            return true;
        }
        let mut spec = self.current.spec.clone();
        if !reanchor(&mut spec.fault_plan, &self.result.fired_cuts, from) {
            return false;
        }
        modify(&mut spec);
        self.try_spec(spec, || format!("{} (cuts re-anchored)", what()), limit)
    }

    /// ddmin over the plan's entries: drop halves, then smaller chunks, down to single entries.
    fn drop_entries(&mut self) {
        // First the ideal: one fault alone (the last first: it is nearest the failure).
        let len = self.current.spec.fault_plan.len();
        for k in (0..len).rev() {
            if len < 2 || self.exhausted {
                break;
            }
            let name = entry_name(&self.current.spec.fault_plan[k]);
            let keep = |s: &mut WorldSpec| {
                let only = s.fault_plan[k].clone();
                s.fault_plan = vec![only];
            };
            if self.try_modified(keep, 0, || format!("kept only {name}"), Limit::FewerFaults) {
                break;
            }
        }
        let mut n = 2;
        loop {
            let len = self.current.spec.fault_plan.len();
            if len == 0 || self.exhausted {
                return;
            }
            n = n.min(len);
            let mut accepted = false;
            for range in chunks(len, n) {
                let dropped = &self.current.spec.fault_plan[range.clone()];
                let names: Vec<String> = dropped.iter().map(entry_name).collect();
                let what =
                    || format!("dropped {} plan entr{} ({})", names.len(), plural_y(names.len()), names.join(", "));
                let modify = |s: &mut WorldSpec| {
                    s.fault_plan.drain(range.clone());
                };
                if self.try_modified(modify, range.start, what, Limit::FewerFaults) {
                    accepted = true;
                    break;
                }
            }
            match ddmin_next(accepted, n, len) {
                Some(next) => n = next,
                None => return,
            }
        }
    }

    /// When dropping faults fails: the same candidates under other world seeds — the last fault alone
    /// (nearest the failure), then the plan without one fault (without its only one: no fault at all)
    /// — up to `RESEEDS` seeds each, every cut re-anchored. With an explicit plan the seed decides only
    /// the interleaving (scheduling, latencies, the workload), and a failure that needs a rare
    /// interleaving after a crash (a race during recovery, say) often shows after fewer crashes under
    /// another seed. Whether one was accepted.
    fn reseed(&mut self) -> bool {
        let len = self.current.spec.fault_plan.len();
        if len == 0 {
            return false;
        }
        let seed = self.current.spec.seed;
        let mut anchored = self.current.spec.clone();
        reanchor(&mut anchored.fault_plan, &self.result.fired_cuts, 0);
        let names: Vec<String> = self.current.spec.fault_plan.iter().map(entry_name).collect();
        let mut candidates: Vec<(Vec<PlannedFault>, String)> = Vec::new();
        if len > 1 {
            candidates.push((vec![anchored.fault_plan[len - 1].clone()], format!("kept only {}", names[len - 1])));
        }
        for k in (0..len).rev() {
            let mut plan = anchored.fault_plan.clone();
            plan.remove(k);
            candidates.push((plan, format!("dropped {}", names[k])));
        }
        for (plan, what) in candidates {
            for k in 1..=RESEEDS {
                if self.exhausted {
                    return false;
                }
                let other = seed.wrapping_add(k);
                let spec = WorldSpec { seed: other, fault_plan: plan.clone(), ..anchored.clone() };
                let what = || format!("{what} (cuts re-anchored), world seed {seed} → {other}");
                if self.try_spec(spec, what, Limit::FewerFaults) {
                    return true;
                }
            }
        }
        false
    }

    /// Drops each reboot cut.
    fn drop_reboot_cuts(&mut self) {
        let mut k = 0;
        while k < self.current.spec.fault_plan.len() && !self.exhausted {
            let entry = &self.current.spec.fault_plan[k];
            if reboot_cut(&entry.fault).is_some() {
                let name = entry_name(entry);
                let modify = |s: &mut WorldSpec| {
                    if let Fault::ExactPowerCut { reboot_cut, .. } = &mut s.fault_plan[k].fault {
                        *reboot_cut = None;
                    }
                };
                self.try_modified(modify, k + 1, || format!("dropped the reboot cut of {name}"), Limit::FewerFaults);
            }
            k += 1;
        }
    }

    /// The safety phase ends as early as the failure allows (binary search above the last entry).
    fn shorten_safety(&mut self) {
        let last = self.current.spec.fault_plan.iter().map(|p| p.at_ms + 1).max().unwrap_or(1);
        self.search_down(last, "safety_ms", |s| s.safety_ms, |s, v| s.safety_ms = v);
    }

    /// Each crash image: keep nothing unsynced, else drop files, then pieces (halves, then one by one).
    fn shrink_images(&mut self) {
        for entry in 0..self.current.spec.fault_plan.len() {
            for reboot in [false, true] {
                self.shrink_image(entry, reboot);
            }
        }
    }

    fn shrink_image(&mut self, entry: usize, reboot: bool) {
        let image = |s: &Shrinker| image_of(&s.current.spec, entry, reboot).cloned();
        let Some(first) = image(self) else { return };
        if first.kept_count() == 0 {
            return;
        }
        let p = &self.current.spec.fault_plan[entry];
        let name = format!("{}{}", entry_name(p), if reboot { "'s reboot cut" } else { "" });
        let empty = CrashImage { label: "shrunk".into(), files: Vec::new(), kept_entries: Vec::new() };
        if self.try_image(entry, reboot, empty, || format!("{name}: the image keeps nothing unsynced")) {
            return;
        }
        // Whole files first.
        let mut f = 0;
        while let Some(image) = image(self) {
            if f >= image.files.len() || self.exhausted {
                break;
            }
            let mut smaller = image.clone();
            let gone = smaller.files.remove(f);
            smaller.label = "shrunk".into();
            let what = || format!("{name}: the image keeps nothing of {}", gone.path);
            if !self.try_image(entry, reboot, smaller, what) {
                f += 1;
            }
        }
        // Then pieces: halves, then smaller chunks, down to one.
        let mut n = 2;
        loop {
            let Some(image) = image(self) else { return };
            let all = pieces(&image);
            let len = all.len();
            if len == 0 || self.exhausted {
                return;
            }
            n = n.min(len);
            let mut accepted = false;
            for range in chunks(len, n) {
                let drop = &all[range];
                let smaller = without(&image, drop);
                let what = || format!("{name}: the image keeps {} unsynced piece(s) fewer", drop.len());
                if self.try_image(entry, reboot, smaller, what) {
                    accepted = true;
                    break;
                }
            }
            match ddmin_next(accepted, n, len) {
                Some(next) => n = next,
                None => return,
            }
        }
    }

    fn try_image(&mut self, entry: usize, reboot: bool, image: CrashImage, what: impl Fn() -> String) -> bool {
        let modify = |s: &mut WorldSpec| {
            if let Some(slot) = image_slot(s, entry, reboot) {
                *slot = Some(image.clone());
            }
        };
        self.try_modified(modify, entry + 1, what, Limit::FewerPieces)
    }

    /// A shorter post-heal workload, fewer closed-loop clients, a slower client, fewer keys.
    fn shrink_workload(&mut self) {
        self.search_down(0, "liveness_workload_ms", |s| s.liveness_workload_ms, |s, v| s.liveness_workload_ms = v);
        if self.current.spec.clients > 0 {
            self.search_down(1, "clients", |s| u64::from(s.clients), |s, v| s.clients = v as u32);
        }
        self.search_down(1, "keys", |s| u64::from(s.keys), |s, v| s.keys = v as u32);
        // A slower client: doubling while it still fails, up to one operation a second.
        while self.current.spec.client_interval_ms < 1_000 && !self.exhausted {
            let from = self.current.spec.client_interval_ms;
            let to = (from * 2).clamp(1, 1_000);
            let what = || format!("client_interval_ms {from} → {to}");
            if !self.try_modified(|s| s.client_interval_ms = to, 0, what, Limit::NoMoreFaults) {
                break;
            }
        }
    }

    /// Fewer groups, fewer nodes (as the plan's nodes allow), no message loss, duplication or
    /// overtaking.
    fn shrink_cluster(&mut self) {
        self.search_down(1, "groups", |s| s.groups as u64, |s, v| s.groups = v as usize);
        let lowest = self.current.spec.fault_plan.iter().map(|p| p.node + 1).max().unwrap_or(1);
        for nodes in lowest..self.current.spec.nodes {
            let from = self.current.spec.nodes;
            if self.try_modified(|s| s.nodes = nodes, 0, || format!("nodes {from} → {nodes}"), Limit::NoMoreFaults) {
                break;
            }
        }
        let net = |s: &WorldSpec| (s.message_loss_percent, s.message_duplicate_percent, s.message_reorder_percent);
        if net(&self.current.spec) != (0, 0, 0) {
            let quiet = |s: &mut WorldSpec| {
                (s.message_loss_percent, s.message_duplicate_percent, s.message_reorder_percent) = (0, 0, 0);
            };
            if !self.try_modified(quiet, 0, || "no message loss, duplication or overtaking".into(), Limit::NoMoreFaults)
            {
                let (loss, dup, reorder) =
                    ("message_loss_percent", "message_duplicate_percent", "message_reorder_percent");
                self.search_down(
                    0,
                    loss,
                    |s| u64::from(s.message_loss_percent),
                    |s, v| s.message_loss_percent = v as u32,
                );
                self.search_down(
                    0,
                    dup,
                    |s| u64::from(s.message_duplicate_percent),
                    |s, v| s.message_duplicate_percent = v as u32,
                );
                self.search_down(
                    0,
                    reorder,
                    |s| u64::from(s.message_reorder_percent),
                    |s, v| s.message_reorder_percent = v as u32,
                );
            }
        }
    }

    /// Binary search for the smallest value of knob `name` in `[lowest, current]` that still fails
    /// (assuming smaller values fail less; each accepted value is a step).
    fn search_down(&mut self, lowest: u64, name: &str, get: fn(&WorldSpec) -> u64, set: fn(&mut WorldSpec, u64)) {
        let mut lo = lowest;
        loop {
            let hi = get(&self.current.spec);
            if lo >= hi || self.exhausted {
                return;
            }
            let mid = lo + (hi - lo) / 2;
            if !self.try_modified(|s| set(s, mid), 0, || format!("{name} {hi} → {mid}"), Limit::NoMoreFaults) {
                lo = mid + 1;
            }
        }
    }
}

/// Adds an accepted step; `knob a → b` right after `knob x → a` becomes `knob x → b`.
fn push_step(steps: &mut Vec<String>, step: String) {
    let knob_change = |s: &str| -> Option<(String, String, String)> {
        let (knob, rest) = s.split_once(' ')?;
        let (from, to) = rest.split_once(" → ")?;
        let plain = !knob.is_empty() && [from, to].iter().all(|v| v.chars().all(|c| c.is_ascii_digit()));
        plain.then(|| (knob.to_owned(), from.to_owned(), to.to_owned()))
    };
    if let (Some((knob, from, to)), Some(last)) = (knob_change(&step), steps.last_mut())
        && let Some((last_knob, first, last_to)) = knob_change(last)
        && last_knob == knob
        && last_to == from
    {
        *last = format!("{knob} {first} → {to}");
        return;
    }
    steps.push(step);
}

/// What a candidate may not grow.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// Fewer plan entries and reboot cuts than now (dropping faults).
    FewerFaults,
    /// As many faults, fewer kept pieces (shrinking an image).
    FewerPieces,
    /// No more faults (a smaller knob; images may change with the run).
    NoMoreFaults,
}

fn plural_y(n: usize) -> &'static str {
    if n == 1 { "y" } else { "ies" }
}

/// A plan entry in a few words: `n1 power cut before call 412 at 1.336 s`.
pub fn entry_name(p: &PlannedFault) -> String {
    let what = match &p.fault {
        Fault::ExactPowerCut { at, .. } => match at {
            scenarios::CutAt::Now => "power loss".to_owned(),
            scenarios::CutAt::BeforeCall(seq) => format!("power cut before call {seq}"),
            scenarios::CutAt::AfterCall(seq) => format!("power cut after call {seq}"),
        },
        other => other.name().to_owned(),
    };
    format!("n{} {what} at {}", p.node + 1, time(p))
}

fn time(p: &PlannedFault) -> String {
    let ns = p.at_ms * 1_000_000 + p.plus_ns;
    format!("{}.{:06} s", ns / 1_000_000_000, (ns % 1_000_000_000) / 1_000)
}

/// A plan as a reader follows it: per entry when, where and what — for a power cut the call it fell at
/// and when (`fired`: the cuts of the run of this very plan) — and what its image keeps.
pub fn describe_plan(plan: &[PlannedFault], fired: &[FiredCut]) -> Vec<String> {
    let mut lines = Vec::new();
    let fell = |k: usize, reboot: bool| {
        fired.iter().find(|f| f.entry == k && f.reboot == reboot).map_or(String::new(), |f| {
            let t = f.time_ns;
            format!(" ({} {}, at {}.{:06} s)", f.call, f.path, t / 1_000_000_000, (t % 1_000_000_000) / 1_000)
        })
    };
    for (k, p) in plan.iter().enumerate() {
        let head = format!("n{} at {}:", p.node + 1, time(p));
        match &p.fault {
            Fault::ExactPowerCut { at, image, reboot_cut } => {
                lines.push(match at {
                    scenarios::CutAt::Now => format!("{head} power loss"),
                    scenarios::CutAt::BeforeCall(seq) => {
                        format!("{head} power cut armed; it falls before call #{seq}{}", fell(k, false))
                    }
                    scenarios::CutAt::AfterCall(seq) => {
                        format!("{head} power cut armed; it falls after call #{seq}{}", fell(k, false))
                    }
                });
                lines.push(format!("  {}", describe_image(image.as_ref())));
                if let Some(r) = reboot_cut {
                    lines.push(format!("  its reboot: a power cut after {} calls{}", r.after_calls, fell(k, true)));
                    lines.push(format!("    {}", describe_image(r.image.as_ref())));
                }
            }
            Fault::Isolate { inbound, outbound, duration_ms } => {
                let how = match (inbound, outbound) {
                    (true, true) => "isolated",
                    (true, false) => "deaf (its inbound messages dropped)",
                    _ => "mute (its outbound messages dropped)",
                };
                lines.push(format!("{head} {how} for {duration_ms} ms"));
            }
            Fault::SlowWal { sync_latency_us, duration_ms } => {
                lines.push(format!("{head} slow disk for {duration_ms} ms: each WAL sync takes {sync_latency_us} us"));
            }
            Fault::DiskError { call, path_glob, error, times, duration_ms } => {
                let error = match error {
                    scenarios::DiskErrorKind::Eio => "EIO",
                    scenarios::DiskErrorKind::Enospc => "ENOSPC",
                };
                lines.push(if *duration_ms > 0 {
                    format!("{head} every {call} of {path_glob} fails with {error} for {duration_ms} ms")
                } else {
                    format!("{head} the next {times} {call} of {path_glob} fail with {error}")
                });
            }
            Fault::DiskFull { duration_ms } => lines.push(format!("{head} disk full for {duration_ms} ms")),
            Fault::BitRot { pick } => {
                lines.push(format!("{head} a bit of a durable segment entry flips (pick {pick})"))
            }
            Fault::Membership { group, change } => {
                let what = match change {
                    scenarios::MemberChange::Leave => "leaves",
                    scenarios::MemberChange::JoinVoter => "joins as a voter",
                    scenarios::MemberChange::JoinPromotable => "joins as promotable",
                    scenarios::MemberChange::JoinNonVoter => "joins as a non-voter",
                };
                lines.push(format!("{head} its member of group g{} {what}", group + 1));
            }
            other => lines.push(format!("{head} {}", other.name())),
        }
    }
    lines
}

/// What an image keeps, in one line.
fn describe_image(image: Option<&CrashImage>) -> String {
    let Some(image) = image else { return "the crash model chooses what the disk keeps".into() };
    if image.kept_count() == 0 {
        return format!("the disk keeps nothing unsynced (image {})", image.label);
    }
    let mut kept: Vec<String> = image
        .files
        .iter()
        .map(|f| {
            let size = f.size_after.map(|s| format!(", size as after call #{s}")).unwrap_or_default();
            format!("{} sector(s) of {}{size}", f.sectors.len(), f.path)
        })
        .collect();
    kept.extend(image.kept_entries.iter().map(|e| format!("{} (#{})", e.op, e.seq)));
    format!("the disk keeps, of its unsynced state, only: {} (image {})", kept.join("; "), image.label)
}
