//! Histories as Jepsen records them: a stream of events — an invocation, then its completion (`:ok`,
//! `:fail`: did not happen, `:info`: outcome unknown) — from Jepsen's log lines or EDN maps, paired per
//! process into operations.

use std::collections::BTreeMap;

use super::edn::{self, Edn};
use super::{BadHistory, History, bad};
use crate::linearizability::{Call, Op, Ret, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One event of the stream.
#[derive(Debug, Clone)]
pub(super) struct Event {
    line: usize,
    process: i64,
    kind: Kind,
    f: String,
    key: Option<Edn>,
    value: Edn,
    time_ns: Option<u64>,
}

fn kind_of(name: &str) -> Option<Kind> {
    match name {
        "invoke" => Some(Kind::Invoke),
        "ok" => Some(Kind::Ok),
        "fail" => Some(Kind::Fail),
        "info" => Some(Kind::Info),
        _ => None,
    }
}

/// Jepsen's log lines: `… PROCESS<TAB>:TYPE<TAB>:F<TAB>VALUE` (tabs or spaces) after whatever prefix the
/// logger wrote (`INFO  jepsen.util - 3<TAB>:invoke …`, or unilog's `INFO [date] thread - jepsen.util 3<TAB>…`):
/// the event is the first place in the line where a process number (or `:nemesis`) is followed by one of
/// `:invoke`, `:ok`, `:fail`, `:info` and an operation keyword. Lines with no such place are the rest of
/// the log and are passed over — unless they mention an event type, which is then an error rather than a
/// silently lost event. The nemesis's lines are passed over.
pub(super) fn jepsen_log(text: &str) -> Result<Vec<Event>, BadHistory> {
    let mut events = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        // Whitespace-separated tokens with where each ends, so the value is the rest of the line.
        let mut tokens: Vec<(&str, usize)> = Vec::new();
        let mut start = None;
        for (at, c) in raw.char_indices() {
            match (c.is_whitespace(), start) {
                (true, Some(s)) => {
                    tokens.push((&raw[s..at], at));
                    start = None;
                }
                (false, None) => start = Some(at),
                _ => {}
            }
        }
        if let Some(s) = start {
            tokens.push((&raw[s..], raw.len()));
        }
        let event_at = tokens.windows(3).position(|w| {
            (w[0].0.parse::<i64>().is_ok() || w[0].0 == ":nemesis")
                && w[1].0.strip_prefix(':').and_then(kind_of).is_some()
                && w[2].0.starts_with(':')
        });
        let Some(t) = event_at else {
            if tokens.iter().any(|(tok, _)| matches!(*tok, ":invoke" | ":ok" | ":fail" | ":info")) {
                return Err(bad(line, "mentions an event type but is not PROCESS :TYPE :F VALUE"));
            }
            continue;
        };
        let (who, kind_text, f_text) = (tokens[t].0, tokens[t + 1].0, tokens[t + 2].0);
        if who == ":nemesis" {
            continue;
        }
        let process: i64 = who.parse().expect("matched as a number");
        if process < 0 {
            return Err(bad(line, format!("process {process} is negative")));
        }
        let kind = kind_text.strip_prefix(':').and_then(kind_of).expect("matched as an event type");
        let f = f_text.strip_prefix(':').expect("matched as a keyword");
        let value_text = raw[tokens[t + 2].1..].trim();
        let value = if value_text.is_empty() {
            Edn::Nil
        } else {
            edn::parse(value_text).map_err(|e| bad(line, format!("value: {e}")))?
        };
        events.push(Event { line, process, kind, f: f.to_owned(), key: None, value, time_ns: None });
    }
    Ok(events)
}

/// One EDN map per line: `:process`, `:type`, `:f`, `:value`, and optionally `:key` and `:time`
/// (nanoseconds). The nemesis's maps are passed over.
pub(super) fn edn_lines(text: &str) -> Result<Vec<Event>, BadHistory> {
    let mut events = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let map = edn::parse(raw).map_err(|e| bad(line, e))?;
        if !matches!(map, Edn::Map(_)) {
            return Err(bad(line, "not an EDN map"));
        }
        let process = match map.get("process") {
            Some(Edn::Int(p)) if *p >= 0 => *p,
            Some(Edn::Keyword(k)) if k == "nemesis" => continue,
            Some(other) => return Err(bad(line, format!(":process {other:?} is not a non-negative number"))),
            None => return Err(bad(line, "no :process")),
        };
        let kind = match map.get("type") {
            Some(Edn::Keyword(k)) => {
                kind_of(k).ok_or_else(|| bad(line, format!(":type :{k} is not :invoke, :ok, :fail or :info")))?
            }
            _ => return Err(bad(line, "no :type keyword")),
        };
        let f = match map.get("f") {
            Some(Edn::Keyword(k)) => k.clone(),
            _ => return Err(bad(line, "no :f keyword")),
        };
        let time_ns = match map.get("time") {
            Some(Edn::Int(t)) if *t >= 0 => Some(*t as u64),
            Some(other) => return Err(bad(line, format!(":time {other:?} is not a non-negative integer"))),
            None => None,
        };
        let value = map.get("value").cloned().unwrap_or(Edn::Nil);
        events.push(Event { line, process, kind, f, key: map.get("key").cloned(), value, time_ns });
    }
    Ok(events)
}

/// A scalar EDN value as a register value.
fn value_of(e: &Edn, line: usize, what: &str) -> Result<Value, BadHistory> {
    Ok(Some(match e {
        Edn::Nil => return Ok(None),
        Edn::Str(s) => s.clone().into_bytes(),
        Edn::Int(n) => n.to_string().into_bytes(),
        Edn::Bool(b) => b.to_string().into_bytes(),
        Edn::Keyword(k) => format!(":{k}").into_bytes(),
        Edn::Other(t) => t.clone().into_bytes(),
        Edn::Vector(_) | Edn::Map(_) => return Err(bad(line, format!("{what} must be a single value, not {e:?}"))),
    }))
}

fn key_of(e: &Edn, line: usize) -> Result<String, BadHistory> {
    match value_of(e, line, "a key")? {
        Some(k) => Ok(String::from_utf8(k).expect("EDN text is UTF-8")),
        None => Err(bad(line, "a key cannot be nil")),
    }
}

/// A pair `[a b]`.
fn pair_of(e: &Edn, line: usize, what: &str) -> Result<(Edn, Edn), BadHistory> {
    match e {
        Edn::Vector(items) if items.len() == 2 => Ok((items[0].clone(), items[1].clone())),
        _ => Err(bad(line, format!("{what} must be a pair [a b], not {e:?}"))),
    }
}

/// The key and the value proper of an event: `:key` if it has one, else, for a key-value operation
/// (`get`, `put`, `append`), the value is Jepsen's independent pair `[key value]`.
fn split_key(ev: &Event, kv: bool) -> Result<(Option<String>, Edn), BadHistory> {
    match (&ev.key, kv) {
        (Some(k), _) => Ok((Some(key_of(k, ev.line)?), ev.value.clone())),
        (None, true) => {
            let (k, v) = pair_of(&ev.value, ev.line, &format!("a :{} value without :key", ev.f))?;
            Ok((Some(key_of(&k, ev.line)?), v))
        }
        (None, false) => Ok((None, ev.value.clone())),
    }
}

/// The call an invocation makes, and its key.
fn call_of(ev: &Event) -> Result<(Option<String>, Call), BadHistory> {
    let kv = matches!(ev.f.as_str(), "get" | "put" | "append");
    let (key, value) = split_key(ev, kv)?;
    let line = ev.line;
    let call = match ev.f.as_str() {
        "read" | "get" => Call::Read,
        "write" | "put" => Call::Write(value_of(&value, line, "a written value")?),
        "cas" => {
            let (expected, new) = pair_of(&value, line, "a :cas value")?;
            Call::Cas {
                expected: value_of(&expected, line, "cas's expected value")?,
                new: value_of(&new, line, "cas's new value")?,
            }
        }
        "append" => match value_of(&value, line, "an appended value")? {
            Some(v) => Call::Append(v),
            None => return Err(bad(line, "an append of nil")),
        },
        other => return Err(bad(line, format!("operation :{other} is not read, write, cas, get, put or append"))),
    };
    Ok((key, call))
}

/// Pairs each invocation with its process's next completion. An invocation never completed, or
/// completed `:info`, has an unknown outcome; a `:fail` did not happen and is dropped. Times are the
/// events' `:time` if all have one, else their line numbers (the order of the file).
pub(super) fn pair(events: Vec<Event>) -> Result<History, BadHistory> {
    let timed = !events.is_empty() && events.iter().all(|e| e.time_ns.is_some());
    let time = |e: &Event| if timed { e.time_ns.expect("all timed") } else { e.line as u64 };
    let mut fresh = events.iter().map(|e| e.process).max().unwrap_or(0).saturating_add(1);
    // Process in the file → the process it is now (a crashed one continues as a fresh one).
    let mut renamed: BTreeMap<i64, i64> = BTreeMap::new();
    let mut crashed: BTreeMap<i64, bool> = BTreeMap::new();
    // Open invocation per process: its slot in `slots`.
    let mut open: BTreeMap<i64, usize> = BTreeMap::new();
    let mut slots: Vec<Option<(Op, usize, &str)>> = Vec::new();
    for ev in &events {
        let process = *renamed.entry(ev.process).or_insert(ev.process);
        match ev.kind {
            Kind::Invoke => {
                let process = if crashed.remove(&process).unwrap_or(false) {
                    let p = fresh;
                    fresh = fresh.saturating_add(1);
                    renamed.insert(ev.process, p);
                    p
                } else {
                    process
                };
                if let Some(&slot) = open.get(&process) {
                    let first = slots[slot].as_ref().map_or(0, |(_, l, _)| *l);
                    return Err(bad(
                        ev.line,
                        format!("process {} invokes again before its invocation on line {first} completed", ev.process),
                    ));
                }
                let (key, call) = call_of(ev)?;
                let op = Op {
                    process: process as u64,
                    key,
                    call,
                    ret: Ret::Unknown,
                    invoke_ns: time(ev),
                    complete_ns: u64::MAX,
                };
                open.insert(process, slots.len());
                slots.push(Some((op, ev.line, ev.f.as_str())));
            }
            Kind::Ok | Kind::Fail | Kind::Info => {
                let Some(slot) = open.remove(&process) else {
                    return Err(bad(
                        ev.line,
                        format!("process {} completes an operation it never invoked", ev.process),
                    ));
                };
                let (op, invoked_line, f) = slots[slot].as_mut().expect("open slots are filled");
                if *f != ev.f {
                    return Err(bad(ev.line, format!("completes :{} but line {invoked_line} invoked :{f}", ev.f)));
                }
                if let Some(k) = &ev.key
                    && Some(key_of(k, ev.line)?) != op.key
                {
                    return Err(bad(
                        ev.line,
                        format!("completes key {k:?} but line {invoked_line} invoked {:?}", op.key),
                    ));
                }
                match ev.kind {
                    Kind::Fail => slots[slot] = None,
                    Kind::Info => {
                        crashed.insert(process, true);
                    }
                    _ => {
                        op.complete_ns = time(ev);
                        if op.complete_ns < op.invoke_ns {
                            return Err(bad(ev.line, "completes before its invocation (:time goes back)"));
                        }
                        op.ret = match &op.call {
                            Call::Read => {
                                let (key, value) = split_key(ev, ev.f == "get")?;
                                if key != op.key {
                                    return Err(bad(
                                        ev.line,
                                        format!("reads key {key:?} but line {invoked_line} invoked {:?}", op.key),
                                    ));
                                }
                                Ret::Read(value_of(&value, ev.line, "a read's value")?)
                            }
                            _ => Ret::Ok,
                        };
                    }
                }
            }
        }
    }
    let kv_names = events.iter().any(|e| matches!(e.f.as_str(), "get" | "put" | "append"));
    let (ops, lines) = slots.into_iter().flatten().map(|(op, line, _)| (op, line)).unzip();
    Ok(History { ops, lines, kv_names, timed_by_lines: !timed })
}
