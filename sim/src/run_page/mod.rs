//! `sim run --html`, `sim replay --html`: one self-contained page (no network) drawing a run — a lane per
//! member grouped by node, role and term bands with the written and commit indexes over them, messages
//! as arrows, faults as spans and marks (a power cut's mark lists what the disk kept and dropped), the
//! clients' operations as bars with the violation's operations marked, the checker's message and the
//! liveness diagnosis, and the text trace beside it, each mark linked to its line.
//!
//! Why a hand-written canvas script and not a vendored charting library: the drawing is lanes, bands,
//! arrows and bars on one time axis — a few hundred lines — and a library would be most of the page's
//! size for none of its features; the page must open offline from a CI artifact.
//!
//! Owns: the page's data (built from a run's [`Timeline`], trace, history and outcome) and filling it
//! into `page.html`. Must not run anything: the caller runs the world with `record_timeline` on.

use serde_json::{Value as Json, json};

use crate::history::page::{call_text, result_text};
use crate::linearizability::{self, Model, Ret};
use crate::trace::Kind;
use crate::world::{Fate, LaneRole, Outcome, RunResult, Timeline};

const TEMPLATE: &str = include_str!("page.html");
const PLACEHOLDER: &str = "__RUN_DATA__";

/// Every lane role, in the order the page's data numbers them.
const ROLES: [LaneRole; 6] = [
    LaneRole::NodeDown,
    LaneRole::NotRunning,
    LaneRole::Follower,
    LaneRole::PreVoteCandidate,
    LaneRole::Candidate,
    LaneRole::Leader,
];
/// Every message kind, in the order the page's data numbers them.
const MESSAGE_KINDS: [&str; 5] = ["append", "heartbeat", "append reply", "vote", "snapshot"];
/// Every message fate, in the order the page's data numbers them.
const FATES: [Fate; 4] = [Fate::InFlight, Fate::Delivered, Fate::Dropped, Fate::Lost];

/// What a run's page is titled and says it came from.
pub struct PageSource<'a> {
    /// The page's title: the scenario and seed, or the seed file.
    pub title: &'a str,
    /// The command that reproduces the run.
    pub reproduce: &'a str,
    /// The bug switches on, if any.
    pub bugs: &'a [String],
}

/// Why a run has no page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// The run was made without `WorldConfig::record_timeline`.
    NoTimeline,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::NoTimeline => write!(f, "the run recorded no timeline (WorldConfig::record_timeline was off)"),
        }
    }
}

/// A rendered trace line's detail column (after the time, node and kind columns).
fn detail_of(line: &str) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..3 {
        rest = rest.split_once(char::is_whitespace).map_or("", |(_, r)| r).trim_start();
    }
    rest
}

/// A mark's kind from its trace line: what the page draws and filters by.
fn mark_kind(kind: Kind, text: &str) -> Option<&'static str> {
    let detail = detail_of(text);
    Some(match kind {
        Kind::Crash if detail.starts_with("POWER CUT") || detail.starts_with("POWER LOSS") => "power cut",
        Kind::Crash if detail.starts_with("machine restart") => "power cut",
        Kind::Crash if detail.starts_with("VM CRASH") => "vm crash",
        Kind::Crash if detail.contains("armed") => "cut armed",
        Kind::Crash => "restart",
        Kind::Disk => "disk",
        Kind::Net => "net",
        Kind::Boot => "boot",
        Kind::Recover => "recover",
        Kind::Server => "server",
        Kind::Fail => "fail",
        Kind::Leader => "leader",
        Kind::Member => "member",
        Kind::Snapshot => "snapshot",
        Kind::Phase => "phase",
        Kind::Violation => "violation",
        Kind::Msg | Kind::Fs => return None,
    })
}

/// The marks: one per notable trace line, except that the DISK lines right after a power cut (same node,
/// same instant) are that cut's details — what the disk kept and dropped — rather than marks of their own.
fn marks(t: &Timeline, trace: &[String]) -> Vec<Json> {
    let mut out: Vec<Json> = Vec::new();
    let mut open_cut: Option<(usize, u64, Option<usize>)> = None; // (mark, time, node)
    for (line, (meta, text)) in t.lines.iter().zip(trace).enumerate() {
        let Some(kind) = mark_kind(meta.kind, text) else { continue };
        if kind == "disk"
            && let Some((mark, time, node)) = open_cut
            && time == meta.time_ns
            && node == meta.node
        {
            let detail = detail_of(text).to_owned();
            if let Some(details) = out[mark]["details"].as_array_mut() {
                details.push(json!(detail));
            }
            continue;
        }
        open_cut = (kind == "power cut").then_some((out.len(), meta.time_ns, meta.node));
        out.push(json!({
            "t": meta.time_ns,
            "node": meta.node.map_or(-1, |n| n as i64),
            "kind": kind,
            "line": line,
            "details": [],
        }));
    }
    out
}

/// The operations a violation involves: for `linearizability`, the failing key's operations and the one
/// that cannot be placed (as the checker judged the history).
fn violation_ops(r: &RunResult) -> (Vec<usize>, Option<usize>, Option<String>) {
    let Outcome::Violation(v) = &r.outcome else { return (Vec::new(), None, None) };
    if v.checker != "linearizability" {
        return (Vec::new(), None, None);
    }
    let report = linearizability::check(&r.history, Model::CasRegister, &mut linearizability::Budget::steps(2_000_000));
    match report.worst() {
        Some(k) if report.verdict == linearizability::Verdict::NotLinearizable => {
            let failing = k.failing.map(|f| k.ops[f]);
            (k.ops.clone(), failing, k.key.clone())
        }
        _ => (Vec::new(), None, None),
    }
}

/// The page's data (the shape `page.html` reads).
pub fn data(source: &PageSource<'_>, r: &RunResult) -> Result<Json, PageError> {
    let t = r.timeline.as_ref().ok_or(PageError::NoTimeline)?;
    let role_index = |role: LaneRole| ROLES.iter().position(|&x| x == role).unwrap_or(0);
    let states: Vec<Json> = t
        .states
        .iter()
        .map(|s| json!([s.time_ns, s.lane, role_index(s.role), s.term, s.written, s.commit, s.applied]))
        .collect();
    let arrows: Vec<Json> = t
        .arrows
        .iter()
        .map(|a| {
            let kind = MESSAGE_KINDS.iter().position(|&k| k == a.kind).unwrap_or(0);
            let fate = FATES.iter().position(|&f| f == a.fate).unwrap_or(0);
            json!([a.sent_ns, a.arrives_ns, a.from_lane, a.to_lane, kind, fate, u8::from(a.duplicate), a.text])
        })
        .collect();
    let spans: Vec<Json> = t
        .spans
        .iter()
        .map(|s| json!({"node": s.node, "from": s.from_ns, "to": s.to_ns, "kind": s.kind, "line": s.line}))
        .collect();
    let lane = crate::history::lanes(&r.history);
    let (involved, failing, key) = violation_ops(r);
    let ops: Vec<Json> = r
        .history
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "client": lane[i],
                "key": o.key,
                "call": call_text(o),
                "result": result_text(o),
                "invoke": o.invoke_ns,
                "complete": if o.ret == Ret::Unknown { Json::Null } else { json!(o.complete_ns) },
            })
        })
        .collect();
    let violation = match &r.outcome {
        Outcome::Pass => Json::Null,
        Outcome::Violation(v) => json!({
            "checker": v.checker,
            "node": v.node,
            "t": v.time_ns,
            "detail": v.detail,
            "diagnosis": v.diagnosis,
            "exit_code": r.outcome.exit_code(),
            "ops": involved,
            "failing_op": failing,
            "key": key,
        }),
    };
    let lanes: Vec<Json> = t.lanes.iter().map(|l| json!({"node": l.node, "group": l.group, "name": l.name})).collect();
    Ok(json!({
        "title": source.title,
        "reproduce": source.reproduce,
        "bugs": source.bugs,
        "end": r.sim_time_ns,
        "events": r.events,
        "trace_hash": format!("{:016x}", r.trace_hash),
        "heal": t.heal_ns,
        "nodes": t.nodes,
        "lanes": lanes,
        "roles": ROLES.iter().map(|r| r.name()).collect::<Vec<_>>(),
        "message_kinds": MESSAGE_KINDS,
        "fates": FATES.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "states": states,
        "arrows": arrows,
        "omitted_arrows": t.omitted_arrows,
        "omitted_states": t.omitted_states,
        "spans": spans,
        "marks": marks(t, &r.trace),
        "trace": r.trace,
        "ops": ops,
        "violation": violation,
    }))
}

/// The page: the template with the data in it (`<` escaped, so no string can close the script tag).
pub fn render(source: &PageSource<'_>, r: &RunResult) -> Result<String, PageError> {
    let text = data(source, r)?.to_string().replace('<', "\\u003c");
    Ok(TEMPLATE.replacen(PLACEHOLDER, &text, 1))
}
