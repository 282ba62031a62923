//! The engine's history format: one JSON object per operation, per line (`docs/history-format.md`).
//!
//! ```text
//! {"process":0,"f":"write","value":"4","type":"ok","invoke_ns":100,"complete_ns":250}
//! {"process":1,"key":"k1","f":"cas","value":[null,"x"],"type":"ok","output":{"applied":false,"previous":"y"},"invoke_ns":120,"complete_ns":300}
//! {"process":3,"f":"write","value":"5","type":"info","invoke_ns":400}
//! ```

use serde_json::{Map, Value as Json, json};

use super::{BadHistory, History, bad, lanes};
use crate::linearizability::{Call, Model, Op, Ret, Value};

const FIELDS: [&str; 8] = ["process", "key", "f", "value", "output", "type", "invoke_ns", "complete_ns"];

pub(super) fn read(text: &str) -> Result<History, BadHistory> {
    let mut history = History { ops: Vec::new(), lines: Vec::new(), kv_names: false, timed_by_lines: false };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let object: Map<String, Json> = match serde_json::from_str(raw) {
            Ok(Json::Object(o)) => o,
            Ok(_) => return Err(bad(line, "not a JSON object")),
            Err(e) => return Err(bad(line, format!("not JSON: {e}"))),
        };
        if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(bad(line, format!("unknown field {unknown:?}; the fields are {}", FIELDS.join(", "))));
        }
        history.kv_names |= matches!(object.get("f").and_then(Json::as_str), Some("get" | "put" | "append"));
        if let Some(op) = operation(&object).map_err(|what| bad(line, what))? {
            history.ops.push(op);
            history.lines.push(line);
        }
    }
    Ok(history)
}

fn value(j: Option<&Json>, what: &str) -> Result<Value, String> {
    match j {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone().into_bytes())),
        Some(other) => Err(format!("{what} must be a string or null, not {other}")),
    }
}

fn number(j: Option<&Json>, what: &str) -> Result<Option<u64>, String> {
    match j {
        None => Ok(None),
        Some(n) => n.as_u64().map(Some).ok_or_else(|| format!("{what} must be a non-negative integer, not {n}")),
    }
}

/// One line's operation; `None` for a `fail` (it did not happen).
fn operation(o: &Map<String, Json>) -> Result<Option<Op>, String> {
    let kind = o.get("type").and_then(Json::as_str).ok_or("no \"type\" (ok, info or fail)")?;
    let f = o.get("f").and_then(Json::as_str).ok_or("no \"f\" (read, write, cas, get, put or append)")?;
    let process = number(o.get("process"), "\"process\"")?.unwrap_or(crate::linearizability::NO_PROCESS);
    let key = match o.get("key") {
        None | Some(Json::Null) => None,
        Some(Json::String(k)) => Some(k.clone()),
        Some(other) => return Err(format!("\"key\" must be a string, not {other}")),
    };
    let call = match f {
        "read" | "get" => Call::Read,
        "write" | "put" => Call::Write(value(o.get("value"), "a written \"value\"")?),
        "cas" => match o.get("value") {
            Some(Json::Array(pair)) if pair.len() == 2 => Call::Cas {
                expected: value(Some(&pair[0]), "cas's expected value")?,
                new: value(Some(&pair[1]), "cas's new value")?,
            },
            _ => return Err("a cas's \"value\" must be [expected, new]".into()),
        },
        "append" => Call::Append(value(o.get("value"), "an appended \"value\"")?.ok_or("an append of null")?),
        other => return Err(format!("\"f\": {other:?} is not read, write, cas, get, put or append")),
    };
    let invoke_ns = number(o.get("invoke_ns"), "\"invoke_ns\"")?.ok_or("no \"invoke_ns\"")?;
    let complete_ns = number(o.get("complete_ns"), "\"complete_ns\"")?;
    let ret = match kind {
        "fail" => return Ok(None),
        "info" => Ret::Unknown,
        "ok" => match (&call, o.get("output")) {
            (Call::Read, None) => return Err("an ok read needs \"output\" (null: it read nothing)".into()),
            (Call::Read, output) => Ret::Read(value(output, "a read's \"output\"")?),
            (Call::Cas { .. }, Some(Json::Object(out))) => match out.get("applied").and_then(Json::as_bool) {
                Some(true) => Ret::Ok,
                Some(false) => Ret::CasRefused { previous: value(out.get("previous"), "\"previous\"")? },
                None => return Err("a cas's \"output\" must be {\"applied\": bool, \"previous\": …}".into()),
            },
            (_, None) => Ret::Ok,
            (_, Some(other)) => return Err(format!("a {f} has no \"output\" (found {other})")),
        },
        other => return Err(format!("\"type\": {other:?} is not ok, info or fail")),
    };
    let complete_ns = match (&ret, complete_ns) {
        (Ret::Unknown, _) => u64::MAX,
        (_, None) => return Err("an ok operation needs \"complete_ns\"".into()),
        (_, Some(c)) if c < invoke_ns => {
            return Err(format!("\"complete_ns\" {c} is before \"invoke_ns\" {invoke_ns}"));
        }
        (_, Some(c)) => c,
    };
    Ok(Some(Op { process, key, call, ret, invoke_ns, complete_ns }))
}

/// A value as JSON: its text if it is UTF-8, else escaped (`super::escape`).
fn to_json(v: &Value) -> Json {
    match v {
        None => Json::Null,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => json!(s),
            Err(_) => json!(super::escape(bytes)),
        },
    }
}

/// One operation as its line (no newline); `process` is the lane it is drawn in. Reads and writes are
/// named `get`/`put` in the kv model and `read`/`write` otherwise, so that a file read back infers the
/// model it was written in (the kv model's `""` is nil; a register's is not).
fn to_jsonl_line(o: &Op, process: u64, model: Model) -> String {
    let mut m = Map::new();
    m.insert("process".into(), json!(process));
    if let Some(k) = &o.key {
        m.insert("key".into(), json!(k));
    }
    let (f, value) = match (&o.call, model == Model::Kv) {
        (Call::Read, false) => ("read", None),
        (Call::Read, true) => ("get", None),
        (Call::Write(v), false) => ("write", Some(to_json(v))),
        (Call::Write(v), true) => ("put", Some(to_json(v))),
        (Call::Cas { expected, new }, _) => ("cas", Some(json!([to_json(expected), to_json(new)]))),
        (Call::Append(v), _) => ("append", Some(to_json(&Some(v.clone())))),
    };
    m.insert("f".into(), json!(f));
    if let Some(v) = value {
        m.insert("value".into(), v);
    }
    m.insert("type".into(), json!(if o.ret == Ret::Unknown { "info" } else { "ok" }));
    match &o.ret {
        Ret::Read(v) => {
            m.insert("output".into(), to_json(v));
        }
        Ret::CasRefused { previous } => {
            m.insert("output".into(), json!({"applied": false, "previous": to_json(previous)}));
        }
        Ret::Ok | Ret::Unknown => {}
    }
    m.insert("invoke_ns".into(), json!(o.invoke_ns));
    if o.ret != Ret::Unknown {
        m.insert("complete_ns".into(), json!(o.complete_ns));
    }
    Json::Object(m).to_string()
}

/// A whole history as JSON lines, in invocation order; operations with no process get lanes.
pub fn to_jsonl(ops: &[Op], model: Model) -> String {
    let lanes = lanes(ops);
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].invoke_ns, i));
    let mut out = String::new();
    for i in order {
        out.push_str(&to_jsonl_line(&ops[i], lanes[i], model));
        out.push('\n');
    }
    out
}
