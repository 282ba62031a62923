//! The linearizability checker against brute force on generated histories of every model (linearizable
//! by construction, and perturbed to break them), plus hand-made ones with their explanations.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sim::linearizability::{Budget, Call, Model, Op, Report, Ret, Stale, Value, Verdict, check};

fn op(key: &str, call: Call, ret: Ret, invoke_ns: u64, complete_ns: u64) -> Op {
    Op { process: 0, key: Some(key.into()), call, ret, invoke_ns, complete_ns }
}

fn v(x: u8) -> Value {
    Some(vec![x])
}

fn judge(h: &[Op]) -> Report {
    check(h, Model::Kv, &mut Budget { steps_per_key: 10_000_000, keep_going: None, stop_at_violation: false })
}

fn verdict(h: &[Op]) -> Verdict {
    judge(h).verdict
}

#[test]
fn hand_made_histories() {
    use Verdict::{Linearizable, NotLinearizable};
    let put = |x, a, b| op("k", Call::Write(v(x)), Ret::Ok, a, b);
    let get = |seen, a, b| op("k", Call::Read, Ret::Read(seen), a, b);
    let cases: Vec<(&str, Vec<Op>, Verdict)> = vec![
        ("put 1, then get sees 1", vec![put(1, 0, 10), get(v(1), 20, 30)], Linearizable),
        ("put 1, then get sees 2", vec![put(1, 0, 10), get(v(2), 20, 30)], NotLinearizable),
        (
            "a stale read after a completed write",
            vec![put(1, 0, 10), put(2, 20, 30), get(v(1), 40, 50)],
            NotLinearizable,
        ),
        (
            "the old value, concurrent with the write",
            vec![put(1, 0, 10), put(2, 20, 45), get(v(1), 40, 50)],
            Linearizable,
        ),
        (
            "an unknown write seen",
            vec![op("k", Call::Write(v(7)), Ret::Unknown, 0, 0), get(v(7), 20, 30)],
            Linearizable,
        ),
        (
            "an unknown write not seen",
            vec![op("k", Call::Write(v(7)), Ret::Unknown, 0, 0), get(None, 20, 30)],
            Linearizable,
        ),
        (
            "an unknown write seen, then not",
            vec![op("k", Call::Write(v(7)), Ret::Unknown, 0, 0), get(v(7), 20, 30), get(None, 40, 50)],
            NotLinearizable,
        ),
        (
            "a cas that applied must have seen the expected value",
            vec![put(1, 0, 10), op("k", Call::Cas { expected: None, new: v(3) }, Ret::Ok, 20, 30)],
            NotLinearizable,
        ),
        (
            "a refused cas saw what was there",
            vec![
                put(1, 0, 10),
                op("k", Call::Cas { expected: None, new: v(3) }, Ret::CasRefused { previous: v(1) }, 20, 30),
            ],
            Linearizable,
        ),
        (
            "appends concatenate",
            vec![
                op("k", Call::Append(b"x".to_vec()), Ret::Ok, 0, 10),
                op("k", Call::Append(b"y".to_vec()), Ret::Ok, 20, 30),
                get(Some(b"xy".to_vec()), 40, 50),
            ],
            Linearizable,
        ),
        (
            "appends in the wrong order",
            vec![
                op("k", Call::Append(b"x".to_vec()), Ret::Ok, 0, 10),
                op("k", Call::Append(b"y".to_vec()), Ret::Ok, 20, 30),
                get(Some(b"yx".to_vec()), 40, 50),
            ],
            NotLinearizable,
        ),
        ("keys are independent", vec![put(1, 0, 10), op("b", Call::Read, Ret::Read(None), 20, 30)], Linearizable),
    ];
    for (name, h, expected) in cases {
        assert_eq!(verdict(&h), expected, "{name}");
    }
}

#[test]
fn a_violation_is_explained() {
    // Two writes, then a read that sees the first: the search linearizes both writes and cannot place
    // the read, which could only have seen the second.
    let h = vec![
        op("k", Call::Write(v(1)), Ret::Ok, 0, 10),
        op("k", Call::Write(v(2)), Ret::Ok, 20, 30),
        op("k", Call::Read, Ret::Read(v(1)), 40, 50),
        op("other", Call::Read, Ret::Read(None), 0, 5),
    ];
    let report = judge(&h);
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    let worst = report.worst().expect("a failing key");
    assert_eq!(worst.key.as_deref(), Some("k"));
    assert_eq!(worst.linearized, vec![0, 1]);
    assert_eq!(worst.states_after, vec![v(1), v(2)]);
    assert_eq!(worst.failing, Some(2));
    assert_eq!(worst.could_have_seen, vec![v(2)]);
    // The other key is judged too (the CLI reports every key) and is fine, in order.
    assert_eq!(report.keys.len(), 2);
    assert_eq!(report.keys[1].verdict, Verdict::Linearizable);
    assert_eq!(report.keys[1].linearized, vec![3]);
}

#[test]
fn a_tiny_budget_answers_undecided_not_a_guess() {
    let h: Vec<Op> = (0..8).map(|i| op("k", Call::Write(v(i)), Ret::Ok, 0, 100)).collect();
    let tiny = check(&h, Model::Kv, &mut Budget::steps(3));
    assert_eq!(tiny.verdict, Verdict::Undecided);
    assert_eq!(check(&h, Model::Kv, &mut Budget::steps(1_000_000)).verdict, Verdict::Linearizable);
    // A caller's own budget (the CLI's clock) ends the search too: 18 concurrent writes, then reads of
    // the first and then of the second, which the search can refuse only after every order of the
    // writes (millions of steps; no read is stale on its own). Asked before the key is searched, the
    // budget says stop: undecided, never linearizable by default.
    let writes = (0..18).map(|i| op("k", Call::Write(v(i)), Ret::Ok, 0, 100));
    let reads = [op("k", Call::Read, Ret::Read(v(0)), 200, 300), op("k", Call::Read, Ret::Read(v(1)), 400, 500)];
    let hard: Vec<Op> = writes.chain(reads).collect();
    let mut asked = 0;
    let mut stop = || {
        asked += 1;
        false
    };
    let report = check(
        &hard,
        Model::Kv,
        &mut Budget { steps_per_key: u64::MAX, keep_going: Some(&mut stop), stop_at_violation: true },
    );
    assert_eq!((report.verdict, asked), (Verdict::Undecided, 1));
    // Asked again during the search (every 16,384 steps), it stops that search too.
    let mut asked = 0;
    let mut once = || {
        asked += 1;
        asked == 1
    };
    let report = check(
        &hard,
        Model::Kv,
        &mut Budget { steps_per_key: u64::MAX, keep_going: Some(&mut once), stop_at_violation: true },
    );
    assert_eq!((report.verdict, report.keys[0].cut_short, report.keys[0].steps), (Verdict::Undecided, true, 16_384));
}

#[test]
fn a_stale_read_is_decided_without_trying_every_order_of_the_writes_before_it() {
    // 18 concurrent writes, all completed before a read of a value one of them wrote and before a
    // later write of another: no order of the 18 matters.
    let mut h: Vec<Op> = (0..18).map(|i| op("k", Call::Write(v(i)), Ret::Ok, 0, 100)).collect();
    h.push(op("k", Call::Write(v(50)), Ret::Ok, 150, 160));
    h.push(op("k", Call::Read, Ret::Read(v(3)), 200, 300));
    let report = check(&h, Model::CasRegister, &mut Budget::steps(1_000));
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    let key = report.worst().expect("the key");
    assert_eq!((key.failing, key.stale), (Some(19), Some(Stale::OverwrittenBy(18))));
    // A read of a value nobody wrote, likewise.
    h[19] = op("k", Call::Read, Ret::Read(v(99)), 200, 300);
    let report = check(&h, Model::CasRegister, &mut Budget::steps(1_000));
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    assert_eq!(report.worst().expect("the key").stale, Some(Stale::NeverWritten));
}

fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

/// The sequential model for brute force, on whole values.
fn apply(state: &Value, o: &Op) -> Option<Value> {
    match (&o.call, &o.ret) {
        (Call::Read, Ret::Unknown) => Some(state.clone()),
        (Call::Read, Ret::Read(seen)) => (seen == state).then(|| state.clone()),
        (Call::Write(x), Ret::Ok | Ret::Unknown) => Some(x.clone()),
        (Call::Append(x), Ret::Ok | Ret::Unknown) => {
            let mut joined = state.clone().unwrap_or_default();
            joined.extend_from_slice(x);
            Some(Some(joined))
        }
        (Call::Cas { expected, new }, ret) => {
            let applies = state == expected;
            let after = if applies { new.clone() } else { state.clone() };
            match ret {
                Ret::Unknown => Some(after),
                Ret::Ok => applies.then_some(after),
                Ret::CasRefused { previous } => (!applies && previous == state).then_some(after),
                Ret::Read(_) => None,
            }
        }
        _ => None,
    }
}

/// Brute force: some order of all operations (unknown ones may also be left out), respecting real
/// time, in which every outcome is what the sequential model gives.
fn brute_force(h: &[Op]) -> bool {
    fn ret(o: &Op) -> u64 {
        if o.ret == Ret::Unknown { u64::MAX } else { o.complete_ns }
    }
    fn go(h: &[Op], used: &mut Vec<bool>, state: Value) -> bool {
        // Done when only unknown operations are left: they never happened.
        if (0..h.len()).all(|i| used[i] || h[i].ret == Ret::Unknown) {
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
            if let Some(s) = apply(&state, &h[i]) {
                used[i] = true;
                let found = go(h, used, s);
                used[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    go(h, &mut vec![false; h.len()], None)
}

/// A random single-key history of up to `max_ops` operations of one model's kinds: outcomes from a real
/// sequential execution at random linearization points (linearizable by construction), or perturbed
/// at random.
fn history(rng: &mut ChaCha8Rng, appends: bool, max_ops: u64) -> Vec<Op> {
    let n = 1 + below(rng, max_ops) as usize;
    let small = |rng: &mut ChaCha8Rng| v(below(rng, 3) as u8);
    let mut ops = Vec::new();
    for _ in 0..n {
        let invoke = below(rng, 100);
        let complete = invoke + 1 + below(rng, 40);
        let call = match (below(rng, 3), appends) {
            (0, _) => Call::Write(small(rng)),
            (1, _) => Call::Read,
            (_, true) => Call::Append(vec![b'a' + below(rng, 3) as u8]),
            (_, false) => Call::Cas { expected: if below(rng, 3) == 0 { None } else { small(rng) }, new: small(rng) },
        };
        ops.push(op("k", call, Ret::Ok, invoke, complete));
    }
    // Execute at random points inside each interval, in point order.
    let mut points: Vec<(u64, usize)> =
        ops.iter().enumerate().map(|(i, o)| (o.invoke_ns + below(rng, o.complete_ns - o.invoke_ns), i)).collect();
    points.sort();
    let mut state: Value = None;
    for (_, i) in points {
        let o = &mut ops[i];
        o.ret = match &o.call {
            Call::Read => Ret::Read(state.clone()),
            Call::Cas { expected, .. } if state != *expected => Ret::CasRefused { previous: state.clone() },
            _ => Ret::Ok,
        };
        state = apply(&state, o).expect("legal by construction");
    }
    let perturb = below(rng, 2) == 0;
    for o in &mut ops {
        if perturb && below(rng, 3) == 0 {
            o.ret = match &o.call {
                Call::Read => Ret::Read(if below(rng, 2) == 0 { None } else { small(rng) }),
                Call::Cas { .. } if below(rng, 2) == 0 => Ret::Ok,
                Call::Cas { .. } => Ret::CasRefused { previous: if below(rng, 2) == 0 { None } else { small(rng) } },
                _ => Ret::Ok,
            };
        }
        if below(rng, 6) == 0 {
            o.ret = Ret::Unknown;
        }
    }
    ops
}

#[test]
fn agrees_with_brute_force_on_generated_histories() {
    // Small histories of every model, then longer register histories (where the stale-read check
    // decides some before the search, and the search must agree with it).
    for (cases, max_ops, seed) in [(2_000, 6, 0x11_1ea5), (400, 10, 0x22_1ea5)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut yes, mut no) = (0, 0);
        for case in 0..cases {
            let h = history(&mut rng, max_ops == 6 && case % 2 == 1, max_ops);
            let expected = brute_force(&h);
            let report = judge(&h);
            assert_ne!(report.verdict, Verdict::Undecided);
            assert_eq!(report.verdict == Verdict::Linearizable, expected, "case {case}: {h:#?}");
            let key = &report.keys[0];
            if expected {
                yes += 1;
                // The linearization found replays in the sequential model, in an order real time allows.
                let searched = h.iter().filter(|o| !(o.call == Call::Read && o.ret == Ret::Unknown)).count();
                assert_eq!(key.linearized.len(), searched);
                let mut state: Value = None;
                for (at, (&i, after)) in key.linearized.iter().zip(&key.states_after).enumerate() {
                    state = apply(&state, &h[i]).expect("each step legal");
                    assert_eq!(&state, after, "case {case}");
                    for &later in &key.linearized[at + 1..] {
                        assert!(h[later].ret == Ret::Unknown || h[later].complete_ns >= h[i].invoke_ns, "case {case}");
                    }
                }
            } else {
                no += 1;
                assert!(key.failing.is_some(), "case {case}: a violation names the operation it could not place");
            }
        }
        assert!(yes > cases / 10 && no > cases / 10, "both kinds generated: {yes} linearizable, {no} not");
    }
}
