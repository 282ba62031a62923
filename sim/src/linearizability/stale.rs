//! The stale-read check: a violation decided without search, in O(n log n), when some read returned a
//! value every write of which was overwritten for certain before the read began.

use std::collections::BTreeMap;

use super::model::{State, Step};

/// A read that no write could have left its value for: for every operation that could set the value it
/// returned (and the initial state, for absent), a write of another value took effect for certain
/// after it and before the read began (invoked after it completed, completed before the read was
/// invoked), or nothing wrote it at all. Then no linearization exists: the last such operation before the
/// read is followed by that overwrite, and nothing after it sets the value again. (Sound only without
/// appends, which make new values; `None` then.) Returns the read and the overwrite (none: the value was
/// never written) as positions in `steps_of`.
///
/// Why: it decides in O(n log n) the commonest violation — a stale read — where the search must first
/// try every order of the concurrent writes before it (2^k of them for k writers).
pub(super) fn stale_read(steps_of: &[Step], times: &[(u64, Option<u64>)]) -> Option<(usize, Option<usize>)> {
    if steps_of.iter().any(|s| matches!(s, Step::Append(_) | Step::Never)) {
        return None;
    }
    // Definite overwrites: (invoke, complete, value, position), by invocation.
    let mut overwrites: Vec<(u64, u64, State, usize)> = steps_of
        .iter()
        .zip(times)
        .enumerate()
        .filter_map(|(i, (s, &(invoke, complete)))| match (s, complete) {
            (Step::Write(x) | Step::CasApplied { new: x, .. }, Some(c)) => Some((invoke, c, *x, i)),
            _ => None,
        })
        .collect();
    overwrites.sort_unstable();
    // Suffix minima: the overwrite invoked at or after position j completing first, and the first to
    // complete among those of another value (so that a query for any value finds one of the two).
    type Best = Option<(u64, State, usize)>;
    let mut suffix: Vec<(Best, Best)> = vec![(None, None); overwrites.len() + 1];
    for j in (0..overwrites.len()).rev() {
        let (_, c, x, i) = overwrites[j];
        let e = Some((c, x, i));
        let (b1, b2) = suffix[j + 1];
        suffix[j] = match b1 {
            None => (e, None),
            Some((c1, x1, _)) if c < c1 => (e, if x != x1 { b1 } else { b2 }),
            Some((_, x1, _)) if x != x1 && b2.is_none_or(|(c2, _, _)| c < c2) => (b1, e),
            _ => (b1, b2),
        };
    }
    // The first overwrite of a value other than `v` invoked after `after` (None: before everything).
    let first_overwrite = |after: Option<u64>, v: State| -> Option<(u64, usize)> {
        let j = after.map_or(0, |a| overwrites.partition_point(|o| o.0 <= a));
        let (b1, b2) = suffix[j];
        [b1, b2].into_iter().flatten().filter(|&(_, x, _)| x != v).map(|(c, _, i)| (c, i)).min()
    };
    // Writers of each value: (invoke, complete or MAX for unknown), by invocation, and the running
    // maximum of their completions (the writer that completed last is the hardest to overwrite).
    let mut writers: BTreeMap<State, Vec<(u64, u64)>> = BTreeMap::new();
    for (s, &(invoke, complete)) in steps_of.iter().zip(times) {
        if let Step::Write(x) | Step::CasApplied { new: x, .. } | Step::CasUnknown { new: x, .. } = s {
            writers.entry(*x).or_default().push((invoke, complete.unwrap_or(u64::MAX)));
        }
    }
    let latest: BTreeMap<State, (Vec<u64>, Vec<u64>)> = writers
        .into_iter()
        .map(|(x, mut w)| {
            w.sort_unstable();
            let invokes = w.iter().map(|p| p.0).collect();
            let maxima = w.iter().scan(0u64, |m, p| {
                *m = (*m).max(p.1);
                Some(*m)
            });
            (x, (invokes, maxima.collect()))
        })
        .collect();
    for (r, (s, &(invoke, complete))) in steps_of.iter().zip(times).enumerate() {
        let (Step::Read(v) | Step::CasRefused { previous: v, .. }) = s else { continue };
        let Some(complete) = complete else { continue };
        // The writer of `v` able to take effect before the read returned that completed last.
        let last_writer = latest.get(v).and_then(|(invokes, maxima)| {
            let k = invokes.partition_point(|&i| i <= complete);
            (k > 0).then(|| maxima[k - 1])
        });
        let overwrite = match (last_writer, *v) {
            (Some(u64::MAX), _) => continue,
            (Some(c), _) => first_overwrite(Some(c), *v).filter(|&(oc, _)| oc < invoke),
            // Absent is the initial state: a writer that completed before everything.
            (None, 0) => first_overwrite(None, 0).filter(|&(oc, _)| oc < invoke),
            // A value nobody wrote (before the read returned).
            (None, _) => None,
        };
        match (overwrite, last_writer, *v) {
            (Some((_, x)), _, _) => return Some((r, Some(x))),
            (None, None, v) if v != 0 => return Some((r, None)),
            _ => {}
        }
    }
    None
}
