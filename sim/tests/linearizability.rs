//! The linearizability checker against brute force on generated histories, plus hand-made ones.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sim::linearizability::{KvOp, KvOutcome, Operation, Verdict, check};

fn op(key: &str, op: KvOp, outcome: KvOutcome, invoke_ns: u64, return_ns: u64) -> Operation {
    Operation { key: key.into(), op, outcome, invoke_ns, return_ns }
}

fn v(x: u8) -> Vec<u8> {
    vec![x]
}

#[test]
fn hand_made_histories() {
    // put 1, then get sees 1: fine. get sees 2: impossible.
    let ok = [op("k", KvOp::Put(v(1)), KvOutcome::Ok, 0, 10), op("k", KvOp::Get, KvOutcome::Value(Some(v(1))), 20, 30)];
    assert_eq!(check(&ok, 10_000), Verdict::Linearizable);
    let bad =
        [op("k", KvOp::Put(v(1)), KvOutcome::Ok, 0, 10), op("k", KvOp::Get, KvOutcome::Value(Some(v(2))), 20, 30)];
    assert_eq!(check(&bad, 10_000), Verdict::NotLinearizable { key: "k".into() });
    // A stale read after a completed write is not linearizable.
    let stale = [
        op("k", KvOp::Put(v(1)), KvOutcome::Ok, 0, 10),
        op("k", KvOp::Put(v(2)), KvOutcome::Ok, 20, 30),
        op("k", KvOp::Get, KvOutcome::Value(Some(v(1))), 40, 50),
    ];
    assert_eq!(check(&stale, 10_000), Verdict::NotLinearizable { key: "k".into() });
    // Concurrent with the second write, the old value is fine.
    let concurrent = [
        op("k", KvOp::Put(v(1)), KvOutcome::Ok, 0, 10),
        op("k", KvOp::Put(v(2)), KvOutcome::Ok, 20, 45),
        op("k", KvOp::Get, KvOutcome::Value(Some(v(1))), 40, 50),
    ];
    assert_eq!(check(&concurrent, 10_000), Verdict::Linearizable);
    // An unknown write may have happened (a later read sees it) or not.
    for seen in [None, Some(v(7))] {
        let h =
            [op("k", KvOp::Put(v(7)), KvOutcome::Unknown, 0, 0), op("k", KvOp::Get, KvOutcome::Value(seen), 20, 30)];
        assert_eq!(check(&h, 10_000), Verdict::Linearizable);
    }
    // A cas that applied must have seen the expected value.
    let cas_bad = [
        op("k", KvOp::Put(v(1)), KvOutcome::Ok, 0, 10),
        op("k", KvOp::Cas { expected: None, new: v(3) }, KvOutcome::Cas { applied: true, previous: None }, 20, 30),
    ];
    assert_eq!(check(&cas_bad, 10_000), Verdict::NotLinearizable { key: "k".into() });
    // Keys are independent.
    let two = [op("a", KvOp::Put(v(1)), KvOutcome::Ok, 0, 10), op("b", KvOp::Get, KvOutcome::Value(None), 20, 30)];
    assert_eq!(check(&two, 10_000), Verdict::Linearizable);
}

fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

/// A random single-key history of up to 6 operations: outcomes either from a real sequential execution
/// at random linearization points (linearizable by construction) or perturbed at random.
fn history(rng: &mut ChaCha8Rng) -> Vec<Operation> {
    let n = 1 + below(rng, 6) as usize;
    let mut ops = Vec::new();
    for _ in 0..n {
        let invoke = below(rng, 100);
        let ret = invoke + 1 + below(rng, 40);
        let kind = match below(rng, 3) {
            0 => KvOp::Put(v(below(rng, 3) as u8)),
            1 => KvOp::Get,
            _ => KvOp::Cas {
                expected: if below(rng, 3) == 0 { None } else { Some(v(below(rng, 3) as u8)) },
                new: v(below(rng, 3) as u8),
            },
        };
        ops.push((invoke, ret, kind));
    }
    // Execute at random points inside each interval, in point order.
    let mut points: Vec<(u64, usize)> =
        ops.iter().enumerate().map(|(i, (a, b, _))| (a + below(rng, b - a), i)).collect();
    points.sort();
    let mut state: Option<Vec<u8>> = None;
    let mut outcomes = vec![KvOutcome::Ok; ops.len()];
    for (_, i) in points {
        outcomes[i] = match &ops[i].2 {
            KvOp::Put(x) => {
                state = Some(x.clone());
                KvOutcome::Ok
            }
            KvOp::Get => KvOutcome::Value(state.clone()),
            KvOp::Cas { expected, new } => {
                let applied = state == *expected;
                let previous = state.clone();
                if applied {
                    state = Some(new.clone());
                }
                KvOutcome::Cas { applied, previous }
            }
        };
    }
    let perturb = below(rng, 2) == 0;
    ops.into_iter()
        .zip(outcomes)
        .map(|((invoke, ret, kind), mut outcome)| {
            if perturb && below(rng, 3) == 0 {
                outcome = match &kind {
                    KvOp::Get => KvOutcome::Value(if below(rng, 2) == 0 { None } else { Some(v(below(rng, 3) as u8)) }),
                    KvOp::Cas { .. } => KvOutcome::Cas {
                        applied: below(rng, 2) == 0,
                        previous: if below(rng, 2) == 0 { None } else { Some(v(below(rng, 3) as u8)) },
                    },
                    KvOp::Put(_) => KvOutcome::Ok,
                };
            }
            if below(rng, 6) == 0 {
                outcome = KvOutcome::Unknown;
            }
            op("k", kind, outcome, invoke, ret)
        })
        .collect()
}

/// Brute force: some order of all operations, respecting real time (unknown ones return at infinity),
/// in which every outcome is what the sequential model gives.
fn brute_force(h: &[Operation]) -> bool {
    fn ret(o: &Operation) -> u64 {
        if o.outcome == KvOutcome::Unknown { u64::MAX } else { o.return_ns }
    }
    fn go(h: &[Operation], used: &mut Vec<bool>, state: Option<Vec<u8>>) -> bool {
        if used.iter().all(|u| *u) {
            return true;
        }
        for i in 0..h.len() {
            if used[i] {
                continue;
            }
            // i may go next only if no unused operation returned before i was invoked.
            if (0..h.len()).any(|j| !used[j] && j != i && ret(&h[j]) < h[i].invoke_ns) {
                continue;
            }
            let o = &h[i];
            let next = match (&o.op, &o.outcome) {
                (KvOp::Put(x), _) => Some(Some(x.clone())),
                (KvOp::Get, KvOutcome::Unknown) => Some(state.clone()),
                (KvOp::Get, KvOutcome::Value(seen)) => (*seen == state).then(|| state.clone()),
                (KvOp::Cas { expected, new }, out) => {
                    let applies = state == *expected;
                    let after = if applies { Some(new.clone()) } else { state.clone() };
                    match out {
                        KvOutcome::Unknown => Some(after),
                        KvOutcome::Cas { applied, previous } if *applied == applies && *previous == state => {
                            Some(after)
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some(s) = next {
                used[i] = true;
                if go(h, used, s) {
                    used[i] = false;
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    go(h, &mut vec![false; h.len()], None)
}

#[test]
fn agrees_with_brute_force_on_1000_generated_histories() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x11_1ea5);
    let (mut yes, mut no) = (0, 0);
    for case in 0..1_000 {
        let h = history(&mut rng);
        let expected = brute_force(&h);
        let got = check(&h, 1_000_000);
        assert_eq!(got == Verdict::Linearizable, expected, "case {case}: {h:#?}");
        assert!(!matches!(got, Verdict::Unknown { .. }));
        if expected { yes += 1 } else { no += 1 }
    }
    assert!(yes > 100 && no > 100, "both kinds generated: {yes} linearizable, {no} not");
}

#[test]
fn a_tiny_budget_answers_unknown_not_a_guess() {
    let h: Vec<Operation> = (0..8).map(|i| op("k", KvOp::Put(v(i)), KvOutcome::Ok, 0, 100)).collect();
    assert_eq!(check(&h, 3), Verdict::Unknown { key: "k".into() });
    assert_eq!(check(&h, 1_000_000), Verdict::Linearizable);
}
