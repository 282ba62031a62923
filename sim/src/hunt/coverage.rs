//! A run's coverage for the hunt: an abstraction of the states the cluster went through and the faults
//! that hit it, as a set of points (64-bit hashes).
//!
//! Why from the trace and the counters: they are what the engine already says about every run, in the
//! code's own terms — a power cut's call and what the disk kept, a boot's recovery, a failure, a
//! snapshot, a leader, a membership change — so a point names a state of the system, never a bug switch.
//! Numbers are abstracted away (a file's number, an index, a term, a time) except 0, which marks the
//! empty case (nothing kept, nothing deleted); a repeated word collapses to one (a list of segments is
//! "segments", however long). The points:
//! - each line's *shape* (its kind and abstracted detail);
//! - each *edge* between consecutive shapes on the same node (what a node did next: a cut after an
//!   unlink of a WAL file, then what its disk kept, then what its recovery read back);
//! - each counter of `RunResult::coverage` by its order of magnitude (AFL's hit-count buckets), so that
//!   "several WAL files replayed at boot" differs from "one";
//! - the checker a run failed, if any.
//!
//! Owns: the abstraction. Pure: a function of the run's result.

use std::collections::BTreeMap;

use crate::RunResult;

/// What kind of point a hash stands for, mixed into it so that kinds never collide by construction.
#[derive(Clone, Copy)]
#[repr(u8)]
enum PointKind {
    Shape = 1,
    Edge = 2,
    Counter = 3,
    Checker = 4,
}

/// The coverage points of a run, sorted and without repeats.
pub fn points(result: &RunResult) -> Vec<u64> {
    let mut out = Vec::new();
    // The last shape seen on each node (by the trace's node column; "" for lines about the cluster).
    let mut last_on: BTreeMap<&str, u64> = BTreeMap::new();
    let mut last_kind: BTreeMap<&str, &str> = BTreeMap::new();
    for line in &result.trace {
        let Some((node, kind, detail)) = columns(line) else { continue };
        if kind == "FS" || kind == "MSG" {
            continue;
        }
        let shape = hash(PointKind::Shape, &[kind.as_bytes(), abstract_detail(detail).as_bytes()]);
        out.push(shape);
        // A leader's term is not a state of the node's storage, nor is a cut being armed (the plan acting,
        // not the node); a state that repeats is not a step, and the order in which one power cut's DISK
        // lines list the files is not either.
        if kind == "LEADER" || (kind == "CRASH" && detail.contains(" armed ")) {
            continue;
        }
        let before = last_on.insert(node, shape).unwrap_or(0);
        let after_disk = kind == "DISK" && last_kind.insert(node, kind) == Some("DISK");
        last_kind.insert(node, kind);
        if before != shape && !after_disk {
            out.push(hash(PointKind::Edge, &[&before.to_le_bytes(), &shape.to_le_bytes()]));
        }
    }
    for (name, n) in &result.coverage {
        if *n > 0 {
            out.push(hash(PointKind::Counter, &[name.as_bytes(), &[bucket(*n)]]));
        }
    }
    if let Some(checker) = result.outcome.checker() {
        out.push(hash(PointKind::Checker, &[checker.as_bytes()]));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A trace line's node, kind and detail columns (`trace::render`'s layout: an 11-column time, then the
/// node in four columns, the kind in nine, the detail).
pub fn columns(line: &str) -> Option<(&str, &str, &str)> {
    let start = line.len() - line.trim_start().len();
    let time_end = start + line[start..].find(' ')?;
    let rest = &line[time_end..];
    let node = rest.get(1..5)?.trim();
    let kind = rest.get(6..15)?.trim();
    let detail = rest.get(16..).unwrap_or("");
    Some((node, kind, detail))
}

/// `detail` with its numbers abstracted: a run of eight or more hexadecimal digits (a file's number) is
/// `F`, a decimal number `#` (`0` stays: the empty case); a leading server name (`n1g2: `) is dropped,
/// words are split at spaces and commas, and a word that repeats the one before it is dropped.
pub fn abstract_detail(detail: &str) -> String {
    // Which group's server a line is about does not matter (the first group's lines name none).
    let detail = match detail.split_once(": ") {
        Some((server, rest)) if is_server_name(server) => rest,
        _ => detail,
    };
    let detail = abstract_lists(detail);
    let mut words: Vec<String> = Vec::new();
    for word in detail.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()) {
        let w = abstract_word(word);
        if words.last() != Some(&w) {
            words.push(w);
        }
    }
    words.join(" ")
}

/// Every non-empty `[…]` list as `[…]`: what a list holds (indexes, files) varies from run to run; that
/// it is empty or not is the state.
fn abstract_lists(detail: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut held = false;
    for c in detail.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    out.push('[');
                    held = false;
                }
                depth += 1;
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push_str(if held { "…]" } else { "]" });
                }
            }
            _ if depth > 0 => held = true,
            _ => out.push(c),
        }
    }
    out
}

/// `n1g2`: a node's member of a group other than the first.
fn is_server_name(word: &str) -> bool {
    let Some(rest) = word.strip_prefix('n') else { return false };
    let Some((node, group)) = rest.split_once('g') else { return false };
    !node.is_empty() && !group.is_empty() && node.chars().chain(group.chars()).all(|c| c.is_ascii_digit())
}

fn abstract_word(word: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = word.chars().collect();
    let mut k = 0;
    while k < chars.len() {
        let hex_end = chars[k..].iter().position(|c| !c.is_ascii_hexdigit()).map_or(chars.len(), |n| k + n);
        if hex_end - k >= 8 {
            out.push('F');
            k = hex_end;
            continue;
        }
        // A hex run shorter than a file number: letters stay letters, digit runs become numbers. A
        // letter in a word is only abstracted inside a file number, so "dead" and "f" stay as written.
        if chars[k].is_ascii_digit() {
            let end = chars[k..].iter().position(|c| !c.is_ascii_digit()).map_or(chars.len(), |n| k + n);
            let all_zero = chars[k..end].iter().all(|c| *c == '0');
            out.push(if all_zero { '0' } else { '#' });
            k = end;
            continue;
        }
        out.push(chars[k]);
        k += 1;
    }
    out
}

/// Orders of magnitude, coarser than AFL's hit-count buckets (a counter that follows the workload's
/// length would otherwise make every longer run new): 1, 2, 3–7, 8–63, 64 and more.
fn bucket(n: u64) -> u8 {
    match n {
        0 => 0,
        1 => 1,
        2 => 2,
        3..=7 => 3,
        8..=63 => 4,
        _ => 5,
    }
}

/// FNV-1a over the kind and the parts (each part's length first, so that parts cannot run together).
fn hash(kind: PointKind, parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(kind as u8);
    for part in parts {
        for b in (part.len() as u64).to_le_bytes() {
            eat(b);
        }
        for b in *part {
            eat(*b);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_abstracted_and_repeats_collapse() {
        let cases = [
            ("snapshot 1200 written (live [1197])", "snapshot # written (live […])"),
            (
                "POWER CUT at op 10994 (before unlink wal/0000000000000092.wal)",
                "POWER CUT at op # (before unlink wal/F.wal)",
            ),
            (
                "log: snapshot Some(1000), segments 0000000000000007.segment[1182..1198] 0000000000000006.segment[998..1181], deleted [], indexes rebuilt false",
                "log: snapshot Some(#) segments F.segment[…] deleted [] indexes rebuilt false",
            ),
            ("n1g2: 0 unsynced sector(s) kept", "0 unsynced sector(s) kept"),
            ("snapshot 400 written (live [396,397,398..399])", "snapshot # written (live […])"),
            ("written 109 -> 0", "written # -> 0"),
        ];
        for (detail, want) in cases {
            assert_eq!(abstract_detail(detail), want, "{detail}");
        }
    }

    #[test]
    fn columns_follow_the_rendered_layout() {
        let line = crate::trace::render(3_527_305_000, "n1", crate::trace::Kind::Crash, "POWER CUT at op 7");
        assert_eq!(columns(&line), Some(("n1", "CRASH", "POWER CUT at op 7")));
        let line = crate::trace::render(1_000, "", crate::trace::Kind::Phase, "heal");
        assert_eq!(columns(&line), Some(("", "PHASE", "heal")));
    }
}
