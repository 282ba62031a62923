//! `check-history --html`: one self-contained page (no network) drawing a history and its verdict — a
//! lane per process, each operation a bar from invocation to completion, the linearization found (or
//! the longest one, for a key that has none) numbered on the bars, and the operation that cannot be
//! placed marked, with what it could have seen. The page's script and styles are `page.html`,
//! hand-written; this module only fills in the data.

use serde_json::{Value as Json, json};

use super::{lanes, show};
use crate::linearizability::{Call, Model, Op, Report, Ret, Verdict};

const TEMPLATE: &str = include_str!("page.html");
const PLACEHOLDER: &str = "__HISTORY_DATA__";

/// A verdict's name in pages, JSON output and messages.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "not-linearizable",
        Verdict::Undecided => "undecided",
    }
}

/// An operation's call as people read it: `write "4"`, `cas nil→"4"`, `read`.
pub fn call_text(o: &Op) -> String {
    match &o.call {
        Call::Read => "read".to_owned(),
        Call::Write(v) => format!("write {}", show(v)),
        Call::Cas { expected, new } => format!("cas {}→{}", show(expected), show(new)),
        Call::Append(v) => format!("append {}", show(&Some(v.clone()))),
    }
}

/// An operation's outcome as people read it.
pub fn result_text(o: &Op) -> String {
    match &o.ret {
        Ret::Ok => "ok".to_owned(),
        Ret::Read(v) => show(v),
        Ret::CasRefused { previous } => format!("refused, saw {}", show(previous)),
        Ret::Unknown => "unknown".to_owned(),
    }
}

/// The page's data (the shape `page.html` reads). `timed_by_lines`: the history's times are its file's
/// line numbers (Jepsen's log lines carry no clock), and the page says "line" rather than "ns".
pub fn data(title: &str, model: Model, ops: &[Op], report: &Report, message: &str, timed_by_lines: bool) -> Json {
    let lane = lanes(ops);
    let keys: Vec<Json> = report
        .keys
        .iter()
        .map(|k| {
            let ops_json: Vec<Json> = k
                .ops
                .iter()
                .map(|&i| {
                    let o = &ops[i];
                    json!({
                        "id": i,
                        "process": lane[i],
                        "call": call_text(o),
                        "result": result_text(o),
                        "invoke_ns": o.invoke_ns,
                        "complete_ns": if o.ret == Ret::Unknown { Json::Null } else { json!(o.complete_ns) },
                    })
                })
                .collect();
            json!({
                "key": k.key,
                "verdict": verdict_name(k.verdict),
                "ops": ops_json,
                "linearized": k.linearized,
                "states_after": k.states_after.iter().map(show).collect::<Vec<_>>(),
                "failing_op": k.failing,
                "could_have_seen": k.could_have_seen.iter().map(show).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "title": title,
        "model": model.name(),
        "verdict": verdict_name(report.verdict),
        "message": message,
        "time_unit": if timed_by_lines { "line" } else { "ns" },
        "keys": keys,
    })
}

/// The page: the template with the data in it (`<` escaped, so no string can close the script tag).
pub fn render(data: &Json) -> String {
    let text = data.to_string().replace('<', "\\u003c");
    TEMPLATE.replacen(PLACEHOLDER, &text, 1)
}
