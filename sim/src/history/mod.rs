//! Client histories recorded anywhere, read into the checker's operations: Jepsen's log lines, Knossos's
//! EDN maps, and the engine's own JSON lines (which `sim run --history` writes). What `sim check-history`
//! judges; the checker itself is `crate::linearizability`.
//!
//! Why here and not in the CLI: the readers are pure functions of text (no filesystem), so tests and the
//! fuzzing of bad input reach exactly what a user's file reaches.
//!
//! Owns: format detection, the three readers, pairing invocations with completions (per process; a
//! process whose operation crashed — `:info` — continues as a fresh process, as Jepsen numbers it), and
//! the JSON-lines writer. Every error names the line and what is wrong, in one line.

mod edn;
mod events;
mod jsonl;
pub mod page;

pub use jsonl::to_jsonl;

use crate::linearizability::{Model, Op};

/// A history file's format; `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Jepsen's log lines: `INFO  jepsen.util - 3<TAB>:invoke<TAB>:write<TAB>4` (process, type, f, value).
    JepsenLog,
    /// One EDN map per line: `{:process 0, :type :invoke, :f :write, :value 4}` (Knossos, Jepsen's
    /// history.edn).
    Edn,
    /// The engine's JSON lines, one operation per line (`docs/history-format.md`).
    Jsonl,
}

impl Format {
    /// Every format, in the order `--format` lists them.
    pub const ALL: [Format; 3] = [Format::JepsenLog, Format::Edn, Format::Jsonl];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::JepsenLog => "jepsen-log",
            Format::Edn => "edn",
            Format::Jsonl => "jsonl",
        }
    }

    /// The format of that name.
    pub fn named(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The format of a file's text, from its first line that is not blank: a JSON object, an EDN map, or
    /// else Jepsen's log lines.
    pub fn detect(text: &str) -> Format {
        let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        if first.starts_with("{:") {
            Format::Edn
        } else if first.starts_with('{') {
            Format::Jsonl
        } else {
            Format::JepsenLog
        }
    }
}

/// What is wrong with a history, and where: one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHistory {
    /// The line (1-based); 0 for the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for BadHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 { write!(f, "{}", self.what) } else { write!(f, "line {}: {}", self.line, self.what) }
    }
}

fn bad(line: usize, what: impl Into<String>) -> BadHistory {
    BadHistory { line, what: what.into() }
}

/// A history read from a file: its operations (in the order they were invoked) and the line each came
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The operations (`:fail` ones left out: they did not happen).
    pub ops: Vec<Op>,
    /// The line of each operation's invocation (its one line in JSON lines).
    pub lines: Vec<usize>,
    /// Whether it names its operations as a key-value store does (`get`, `put`, `append`).
    pub kv_names: bool,
    /// Whether its times are the file's line numbers (no event carried a clock).
    pub timed_by_lines: bool,
}

/// Reads a history in `format` (`None`: detected), checking every operation against `model` (`None`:
/// the smallest model that admits them all, returned beside the history).
pub fn read(text: &str, format: Option<Format>, model: Option<Model>) -> Result<(History, Model), BadHistory> {
    let format = format.unwrap_or_else(|| Format::detect(text));
    let history = match format {
        Format::JepsenLog => events::pair(events::jepsen_log(text)?)?,
        Format::Edn => events::pair(events::edn_lines(text)?)?,
        Format::Jsonl => jsonl::read(text)?,
    };
    // An empty file is an empty history (linearizable); text with no operation in it is not a history.
    if history.ops.is_empty() && text.lines().any(|l| !l.trim().is_empty()) {
        return Err(bad(0, format!("no operations found (read as {})", format.name())));
    }
    let model = match model {
        Some(m) => m,
        None if history.kv_names => Model::Kv,
        None => Model::of(&history.ops),
    };
    for (o, &line) in history.ops.iter().zip(&history.lines) {
        if !model.admits(&o.call) {
            return Err(bad(line, format!("the {} model has no {} operation", model.name(), call_name(&o.call))));
        }
    }
    Ok((history, model))
}

/// An operation's name as histories spell it (`read`, `write`, `cas`, `append`).
pub fn call_name(call: &crate::linearizability::Call) -> &'static str {
    use crate::linearizability::Call;
    match call {
        Call::Read => "read",
        Call::Write(_) => "write",
        Call::Cas { .. } => "cas",
        Call::Append(_) => "append",
    }
}

/// A value for people: text as a quoted string when it is printable, else with `\xHH` escapes; `nil`
/// for absent. Distinct values print differently.
pub fn show(value: &crate::linearizability::Value) -> String {
    match value {
        None => "nil".to_owned(),
        Some(v) => format!("\"{}\"", escape(v)),
    }
}

/// Bytes as text: printable ASCII as itself (but `\` and `"`), everything else as `\xHH`; injective.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' && b != b'"' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The lane each operation is drawn in: its process, or for an operation with none (the engine's
/// open-loop generator), the first lane free at its invocation above every process's — as if each
/// lane were a client with one operation outstanding. An operation with an unknown outcome keeps its
/// lane forever.
pub fn lanes(ops: &[Op]) -> Vec<u64> {
    use crate::linearizability::{NO_PROCESS, Ret};
    let first_free = ops.iter().map(|o| o.process).filter(|&p| p != NO_PROCESS).max().map_or(0, |p| p + 1);
    let mut lane = vec![0u64; ops.len()];
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].invoke_ns, i));
    // Each extra lane's busy-until time.
    let mut busy: Vec<u64> = Vec::new();
    for i in order {
        let o = &ops[i];
        if o.process != NO_PROCESS {
            lane[i] = o.process;
            continue;
        }
        let until = if o.ret == Ret::Unknown { u64::MAX } else { o.complete_ns };
        let l = match busy.iter().position(|&b| b < o.invoke_ns) {
            Some(l) => l,
            None => {
                busy.push(0);
                busy.len() - 1
            }
        };
        busy[l] = until;
        lane[i] = first_free + l as u64;
    }
    lane
}

/// Why a report's verdict is what it is, in one line (a key that is not linearizable: the operation the
/// search could not place after the longest linearization it found, and what it could have seen).
/// `lines`: each operation's line in the file, when it came from one.
pub fn explain(ops: &[Op], lines: Option<&[usize]>, report: &crate::linearizability::Report) -> String {
    use crate::linearizability::{Call, Stale, Verdict};
    let key_name = |k: &Option<String>| k.as_ref().map_or("the register".to_owned(), |k| format!("key {k:?}"));
    let at = |i: usize| lines.map_or(String::new(), |l| format!(" (line {})", l[i]));
    let who = |i: usize| {
        if ops[i].process == crate::linearizability::NO_PROCESS {
            String::new()
        } else {
            format!(" of process {}", ops[i].process)
        }
    };
    match (report.verdict, report.worst()) {
        (Verdict::Linearizable, _) => {
            let keys = report.keys.len();
            format!("linearizable: {} operations on {keys} key{}", ops.len(), if keys == 1 { "" } else { "s" })
        }
        (Verdict::Undecided, Some(k)) => format!(
            "undecided: the search on {} ({} operations) ran out of budget after {} steps",
            key_name(&k.key),
            k.ops.len(),
            k.steps
        ),
        (Verdict::NotLinearizable, Some(k)) => {
            let seen: Vec<String> = k.could_have_seen.iter().map(show).collect();
            let could = if seen.is_empty() { "nothing".to_owned() } else { seen.join(" or ") };
            let Some(f) = k.failing else { return format!("not linearizable ({})", key_name(&k.key)) };
            let o = &ops[f];
            let read = format!("the {}{}{} returned {}", page::call_text(o), who(f), at(f), page::result_text(o));
            let what = match (k.stale, &o.call) {
                (Some(Stale::OverwrittenBy(x)), _) => format!(
                    "{read}, but every write of that value had been overwritten before it began (by the {}{}{}, at least)",
                    page::call_text(&ops[x]),
                    who(x),
                    at(x)
                ),
                (Some(Stale::NeverWritten), _) => format!("{read}, a value nothing wrote before it returned"),
                (None, Call::Read) => format!(
                    "{read}, but at the deepest points the search reached ({} operations linearized before it) the value could only be {could}",
                    k.linearized.len()
                ),
                (None, _) => format!(
                    "the {} → {}{}{} cannot be placed after the {} operations linearized before it (the value there: {could})",
                    page::call_text(o),
                    page::result_text(o),
                    who(f),
                    at(f),
                    k.linearized.len(),
                ),
            };
            format!("not linearizable ({}): {what}", key_name(&k.key))
        }
        (_, None) => "no operations".to_owned(),
    }
}
