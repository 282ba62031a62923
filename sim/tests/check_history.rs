//! `sim check-history` and the history readers behind it: every format read into the same operations,
//! each fixture's verdict and explanation, bad input refused in one line naming the line, the engine's
//! own history exported and read back, and the command's exit codes.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::process::Command;

use sim::history::{self, Format};
use sim::linearizability::{self, Budget, Call, Model, Ret, Verdict};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories").join(name)
}

fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("a fixture")
}

fn sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sim")).args(args).output().expect("sim runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn judge(ops: &[linearizability::Op], model: Model) -> linearizability::Report {
    linearizability::check(
        ops,
        model,
        &mut Budget { steps_per_key: 10_000_000, keep_going: None, stop_at_violation: false },
    )
}

/// (file, format detected, model inferred, operations, verdict, the line of the operation it blames).
type FixtureCase = (&'static str, Format, Model, usize, Verdict, Option<usize>);

#[test]
fn fixtures_are_read_and_judged() {
    let cases: [FixtureCase; 5] = [
        ("stale-read.log", Format::JepsenLog, Model::CasRegister, 5, Verdict::NotLinearizable, Some(7)),
        ("crashed-cas.log", Format::JepsenLog, Model::CasRegister, 5, Verdict::Linearizable, None),
        ("kv-appends.edn", Format::Edn, Model::Kv, 6, Verdict::Linearizable, None),
        ("kv-appends-reordered.edn", Format::Edn, Model::Kv, 3, Verdict::NotLinearizable, Some(5)),
        ("engine.jsonl", Format::Jsonl, Model::Kv, 6, Verdict::Linearizable, None),
    ];
    for (name, format, model, count, verdict, blamed) in cases {
        let text = read_fixture(name);
        assert_eq!(Format::detect(&text), format, "{name}");
        let (h, inferred) = history::read(&text, None, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((inferred, h.ops.len()), (model, count), "{name}");
        let report = judge(&h.ops, model);
        assert_eq!(report.verdict, verdict, "{name}");
        let failing = report.worst().and_then(|k| k.failing).map(|f| h.lines[f]);
        assert_eq!(failing, blamed, "{name}");
    }
}

#[test]
fn jepsen_pairing_drops_failures_and_renames_crashed_processes() {
    let (h, _) = history::read(&read_fixture("crashed-cas.log"), None, None).expect("reads");
    // The failed cas is gone; the crashed cas is unknown; process 1 reads again as a fresh process (the
    // file's highest is 4, so 5); process 4's write never completed: unknown.
    let summary: Vec<(u64, &Call, &Ret)> = h.ops.iter().map(|o| (o.process, &o.call, &o.ret)).collect();
    let v = |s: &str| Some(s.as_bytes().to_vec());
    assert_eq!(
        summary,
        vec![
            (0, &Call::Write(v("1")), &Ret::Ok),
            (1, &Call::Cas { expected: v("1"), new: v("3") }, &Ret::Unknown),
            (5, &Call::Read, &Ret::Read(v("3"))),
            (2, &Call::Read, &Ret::Read(v("3"))),
            (4, &Call::Write(v("5")), &Ret::Unknown),
        ]
    );
    // Jepsen's lines carry no clock: times are line numbers.
    assert!(h.timed_by_lines);
    assert_eq!((h.ops[0].invoke_ns, h.ops[0].complete_ns), (1, 3));
}

#[test]
fn jepsen_logs_in_either_layout_and_kv_absence() {
    // unilog's layout puts the logger's name after the dash; the event is found wherever it starts.
    let unilog = "INFO [2024-01-01 00:00:00,000] jepsen worker 3 - jepsen.util 3\t:invoke\t:write\t1\n\
                  INFO [2024-01-01 00:00:00,001] jepsen worker 3 - jepsen.util 3\t:ok\t:write\t1\n\
                  INFO [2024-01-01 00:00:00,002] jepsen worker 4 - jepsen.util 4\t:invoke\t:read\tnil\n\
                  INFO [2024-01-01 00:00:00,003] jepsen worker 4 - jepsen.util 4\t:ok\t:read\t1\n";
    let (h, _) = history::read(unilog, None, None).expect("reads");
    assert_eq!(h.ops.len(), 2);
    // In the kv model "" and nil are one state: a cas expecting "" that was refused seeing nil is
    // impossible (it had to apply).
    let refused = "{\"key\":\"k\",\"f\":\"cas\",\"value\":[\"\",\"x\"],\"type\":\"ok\",\
                   \"output\":{\"applied\":false,\"previous\":null},\"invoke_ns\":0,\"complete_ns\":1}\n\
                   {\"key\":\"k\",\"f\":\"get\",\"output\":null,\"type\":\"ok\",\"invoke_ns\":5,\"complete_ns\":6}\n";
    let (h, model) = history::read(refused, None, None).expect("reads");
    assert_eq!(model, Model::Kv);
    assert_eq!(judge(&h.ops, model).verdict, Verdict::NotLinearizable);
}

#[test]
fn every_format_reads_into_the_same_operations() {
    // One history in three formats, and the JSON lines the engine writes for it read back.
    let log = "1\t:invoke\t:write\t3\n1\t:ok\t:write\t3\n2\t:invoke\t:cas\t[3 4]\n2\t:ok\t:cas\t[3 4]\n\
               1\t:invoke\t:read\tnil\n1\t:ok\t:read\t4\n";
    let edn = "{:process 1, :type :invoke, :f :write, :value 3}\n{:process 1, :type :ok, :f :write, :value 3}\n\
               {:process 2, :type :invoke, :f :cas, :value [3 4]}\n{:process 2, :type :ok, :f :cas, :value [3 4]}\n\
               {:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value 4}\n";
    let (a, _) = history::read(log, Some(Format::JepsenLog), None).expect("log");
    let (b, _) = history::read(edn, Some(Format::Edn), None).expect("edn");
    assert_eq!(a.ops, b.ops);
    let jsonl = history::to_jsonl(&a.ops, Model::CasRegister);
    assert_eq!(Format::detect(&jsonl), Format::Jsonl);
    let (c, model) = history::read(&jsonl, None, None).expect("jsonl");
    assert_eq!((c.ops, model), (a.ops, Model::CasRegister));
}

#[test]
fn bad_input_is_refused_naming_its_line() {
    // (format, text, the line blamed, words the message must contain).
    let cases: [(Option<Format>, &str, usize, &str); 19] = [
        (None, "{\"f\":\"read\",\"type\":\"ok\",\"invoke_ns\":1,\"complete_ns\":2}\n", 1, "needs \"output\""),
        (None, "INFO  jepsen.util - -3\t:invoke\t:write\t1\n", 1, "negative"),
        (None, "INFO  jepsen.util - 3\t:invoke\t:write\n3 :ok :write\n3 :invoke oops\n", 3, "mentions an event type"),
        (
            None,
            "{:process 0, :type :invoke, :f :put, :key \"a\", :value 1}\n{:process 0, :type :ok, :f :put, :key \"b\", :value 1}\n",
            2,
            "completes key",
        ),
        (None, "0\t:invoke\t:get\t[a nil]\n0\t:ok\t:get\t[b 1]\n", 2, "reads key"),
        (None, "{\"f\":\"read\"\n", 1, "not JSON"),
        (None, "{\"f\":\"read\",\"type\":\"ok\",\"invoke_ns\":1,\"complete_ns\":2,\"colour\":1}\n", 1, "unknown field"),
        (None, "{\"f\":\"write\",\"value\":\"1\",\"type\":\"ok\",\"invoke_ns\":5,\"complete_ns\":2}\n", 1, "before"),
        (None, "{\"f\":\"write\",\"value\":\"1\",\"type\":\"ok\",\"invoke_ns\":5}\n", 1, "complete_ns"),
        (
            None,
            "{\"f\":\"cas\",\"value\":\"1\",\"type\":\"ok\",\"invoke_ns\":1,\"complete_ns\":2}\n",
            1,
            "[expected, new]",
        ),
        (None, "\n{\"f\":\"frob\",\"type\":\"ok\",\"invoke_ns\":1,\"complete_ns\":2}\n", 2, "frob"),
        (None, "{:process 0, :type :invoke, :f :write, :value 1\n", 1, "unclosed"),
        (None, "{:process 0, :type :begin, :f :write, :value 1}\n", 1, ":type"),
        (None, "{:process 0, :type :ok, :f :write, :value 1}\n", 1, "never invoked"),
        (None, "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :invoke, :f :read}\n", 2, "again"),
        (None, "0\t:invoke\t:cas\t4\n", 1, "pair"),
        (None, "0\t:invoke\t:write\t1\n0\t:ok\t:read\t1\n", 2, "invoked :write"),
        (None, "this is not a history\n", 0, "no operations"),
        (Some(Format::Edn), "[1 2]\n", 1, "not an EDN map"),
    ];
    for (format, text, line, words) in cases {
        let err = history::read(text, format, None).expect_err(text);
        assert_eq!(err.line, line, "{text:?}: {err}");
        assert!(err.to_string().contains(words), "{text:?}: {err}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
    // A model that lacks an operation refuses it, naming the line.
    let err = history::read(&read_fixture("stale-read.log"), None, Some(Model::Register)).expect_err("a cas");
    assert_eq!((err.line, err.to_string().contains("no cas")), (8, true), "{err}");
    // Nesting a hostile file deep is refused, not followed.
    let deep = format!("0\t:invoke\t:write\t{}1{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert!(history::read(&deep, None, None).expect_err("too deep").to_string().contains("nested"));
}

#[test]
fn the_engine_exports_its_history_and_check_history_agrees() {
    let cfg =
        sim::WorldConfig { keep_history: true, ..sim::WorldConfig::new(scenarios::swarm(3), raft_core::Bugs::none()) };
    let result = sim::run(cfg);
    assert!(result.history.len() > 100, "a workload ran");
    let text = history::to_jsonl(&result.history, Model::CasRegister);
    let (h, model) = history::read(&text, None, None).expect("the engine's JSON lines read back");
    assert_eq!(h.ops.len(), result.history.len());
    assert_eq!(judge(&h.ops, model).verdict, Verdict::Linearizable);
    // The same operations (order aside: the file is in invocation order).
    let key = |o: &linearizability::Op| (o.invoke_ns, o.key.clone(), format!("{:?}{:?}", o.call, o.ret));
    let (mut a, mut b): (Vec<_>, Vec<_>) = (h.ops.iter().map(key).collect(), result.history.iter().map(key).collect());
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn exit_codes_and_outputs() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("check-history");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    let path = |p: &Path| p.to_str().expect("UTF-8").to_string();
    let (ok, bad) = (path(&fixture("kv-appends.edn")), path(&fixture("stale-read.log")));
    let (code, out, _) = sim(&["check-history", &ok]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("linearizable: 6 operations on 2 keys"), "{out}");
    let page = path(&dir.join("stale.html"));
    let (code, out, _) = sim(&["check-history", &ok, &bad, "--json", "--html", &path(&dir.join("pages"))]);
    assert_eq!(code, 10, "{out}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(
        (lines[0]["verdict"].as_str(), lines[1]["verdict"].as_str()),
        (Some("linearizable"), Some("not-linearizable"))
    );
    assert_eq!(lines[1]["failing"]["line"], 7);
    assert!(dir.join("pages/stale-read.html").exists() && dir.join("pages/kv-appends.html").exists());
    let (code, _, _) = sim(&["check-history", &bad, "--html", &page]);
    assert_eq!(code, 10);
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(html.contains("\"failing_op\":2") && !html.contains("__HISTORY_DATA__") && !html.contains("http"));
    // Undecided: 22 concurrent writes and reads of the first two, in order, cannot be decided in a
    // millisecond.
    let mut hard = String::new();
    for i in 0..22 {
        hard += &format!("{{\"f\":\"write\",\"value\":\"{i}\",\"type\":\"ok\",\"invoke_ns\":0,\"complete_ns\":100}}\n");
    }
    hard += "{\"f\":\"read\",\"output\":\"0\",\"type\":\"ok\",\"invoke_ns\":200,\"complete_ns\":300}\n";
    hard += "{\"f\":\"read\",\"output\":\"1\",\"type\":\"ok\",\"invoke_ns\":400,\"complete_ns\":500}\n";
    let hard_path = dir.join("hard.jsonl");
    std::fs::write(&hard_path, hard).expect("write");
    let (code, out, _) = sim(&["check-history", &path(&hard_path), "--time-budget", "0.001"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("undecided"), "{out}");
    // Bad input: exit 2, one line naming the file and the line.
    let broken = dir.join("broken.jsonl");
    let lines = "{\"f\":\"read\",\"output\":null,\"type\":\"ok\",\"invoke_ns\":1,\"complete_ns\":2}\n{oops\n";
    std::fs::write(&broken, lines).expect("write");
    let (code, out, err) = sim(&["check-history", &path(&broken)]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("broken.jsonl: line 2: not JSON") && err.trim().lines().count() == 1, "{err}");
    // Conversion: the Jepsen log as JSON lines judges the same.
    let converted = path(&dir.join("stale.jsonl"));
    let (code, _, _) = sim(&["check-history", &bad, "--write-jsonl", &converted]);
    assert_eq!(code, 10);
    let (code, _, _) = sim(&["check-history", &converted, "--model", "cas-register"]);
    assert_eq!(code, 10);
    let (code, _, err) = sim(&["check-history", &converted, "--model", "register"]);
    assert_eq!(code, 2, "{err}");
}
