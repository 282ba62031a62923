//! A run's page (`sim run --html`): the timeline a run records and the data the page draws, checked
//! against the run itself — recording changes nothing, every message the network lost or dropped is an
//! arrow marked so, a power cut's mark carries what its disk kept, and the lost write of a seed file is
//! there to see. (The page's script is tested in a real browser by `.ci/run`, with
//! `scripts/browser-test.sh`.)
// The CLI test writes pages to a scratch directory and reads them back.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use sim::checkers::Violation;
use sim::linearizability::{Call, NO_PROCESS, Op, Ret};
use sim::run_page::{self, PageSource};
use sim::seedfile::SeedFile;
use sim::world::{Fate, LaneRole, StateSample};
use sim::{Outcome, RunResult, WorldConfig};

fn config_of(text: &str) -> WorldConfig {
    SeedFile::parse(text).expect("a valid seed file").config().expect("a valid world")
}

fn recorded(mut config: WorldConfig) -> RunResult {
    config.record_timeline = true;
    sim::run(config)
}

fn page_data(r: &RunResult) -> Value {
    let source = PageSource { title: "test", reproduce: "sim run …", bugs: &[] };
    run_page::data(&source, r).expect("a run with a timeline has a page")
}

const CONFIG_NO_DIR_SYNC: &str = include_str!("../../seeds/recovery_config-dir-entry-lost-0-config-no-dir-sync.json");
const BACKOFF: &str =
    include_str!("../../seeds/liveness_lagging-follower-snapshot-backoff-16-backoff-peer-skipped.json");
const STALE_TAIL: &str =
    include_str!("../../seeds/recovery_stale-leader-installs-snapshot-91-stale-tail-resurrected.json");

#[test]
fn recording_the_timeline_changes_nothing_in_the_run() {
    for text in [CONFIG_NO_DIR_SYNC, BACKOFF, STALE_TAIL] {
        let config = config_of(text);
        let plain = sim::run(config.clone());
        let drawn = recorded(config);
        assert_eq!(plain.trace_hash, drawn.trace_hash);
        assert_eq!(plain.trace, drawn.trace);
        assert_eq!(plain.outcome, drawn.outcome);
        assert!(plain.timeline.is_none());
        let t = drawn.timeline.expect("recorded");
        assert_eq!(t.lines.len(), drawn.trace.len(), "one record per trace line");
    }
}

#[test]
fn every_lost_or_dropped_message_is_an_arrow_marked_so() {
    for text in [CONFIG_NO_DIR_SYNC, BACKOFF, STALE_TAIL] {
        let r = recorded(config_of(text));
        let t = r.timeline.as_ref().expect("recorded");
        assert_eq!(t.omitted_arrows, 0, "these runs are under the cap");
        let count = |fate: Fate| t.arrows.iter().filter(|a| a.fate == fate).count() as u64;
        let coverage = |what: &str| r.coverage.get(what).copied().unwrap_or(0);
        assert_eq!(count(Fate::Lost), coverage("messages lost"));
        assert_eq!(count(Fate::Dropped), coverage("messages dropped"));
        assert_eq!(t.arrows.iter().filter(|a| a.duplicate).count() as u64, coverage("messages duplicated"));
        for a in &t.arrows {
            assert!(a.sent_ns <= a.arrives_ns, "{a:?}");
            match a.fate {
                Fate::InFlight => assert!(a.arrives_ns >= r.sim_time_ns, "{a:?} should have arrived"),
                Fate::Delivered | Fate::Dropped => assert!(a.arrives_ns <= r.sim_time_ns, "{a:?}"),
                Fate::Lost => assert_eq!(a.arrives_ns, a.sent_ns),
            }
            let (from, to) = (&t.lanes[a.from_lane], &t.lanes[a.to_lane]);
            assert_eq!(from.group, to.group, "messages stay inside a group");
            assert_ne!(from.node, to.node);
        }
    }
}

#[test]
fn the_power_cut_and_the_lost_write_are_in_the_picture() {
    let r = recorded(config_of(CONFIG_NO_DIR_SYNC));
    let Outcome::Violation(v) = &r.outcome else { panic!("the seed file's switch is on: it fails") };
    assert_eq!(v.checker, "written-survives");
    let data = page_data(&r);
    let t = r.timeline.as_ref().expect("recorded");
    let spec = &config_of(CONFIG_NO_DIR_SYNC).spec;
    assert_eq!(data["lanes"].as_array().map(Vec::len), Some(spec.nodes * spec.groups));
    assert_eq!(data["violation"]["checker"], "written-survives");
    // The power cut's mark, on n1, carrying what the disk kept and dropped (its DISK lines).
    let marks = data["marks"].as_array().expect("marks");
    let cut = marks.iter().find(|m| m["kind"] == "power cut").expect("a power-cut mark");
    assert_eq!(cut["node"], 0);
    let details: Vec<&str> = cut["details"].as_array().expect("details").iter().filter_map(Value::as_str).collect();
    assert!(details.iter().any(|d| d.starts_with("dropped ")), "{details:?}");
    let line = cut["line"].as_u64().expect("a line") as usize;
    assert!(r.trace[line].contains("POWER CUT"), "{}", r.trace[line]);
    for (k, d) in details.iter().enumerate() {
        assert!(r.trace[line + 1 + k].ends_with(d), "the details are the DISK lines after the cut");
    }
    // n1's written index: high before the cut, down (no index) through it, and 0 once recovered.
    let cut_ns = cut["t"].as_u64().expect("a time");
    let n1: Vec<&StateSample> = t.states.iter().filter(|s| s.lane == 0).collect();
    let before = n1.iter().filter(|s| s.time_ns < cut_ns).map(|s| s.written).max().expect("samples before the cut");
    assert!(before >= 100, "n1 wrote {before} before the cut");
    let after: Vec<_> = n1.iter().filter(|s| s.time_ns >= cut_ns).collect();
    assert!(after.iter().any(|s| s.role == LaneRole::NodeDown));
    let last = after.last().expect("samples after the cut");
    assert!(last.role != LaneRole::NodeDown && last.written == 0, "{last:?}");
}

#[test]
fn an_isolation_is_a_span_from_its_line_to_the_reconnection() {
    let r = recorded(config_of(STALE_TAIL));
    let t = r.timeline.as_ref().expect("recorded");
    let isolations: Vec<_> = t.spans.iter().filter(|s| s.kind == "isolated").collect();
    assert!(!isolations.is_empty(), "the seed file isolates a node");
    for s in isolations {
        assert!(s.from_ns < s.to_ns);
        assert!(r.trace[s.line].contains("ISOLATED"), "{}", r.trace[s.line]);
        assert_eq!(t.lines[s.line].time_ns, s.from_ns);
        let ended = t.lines.iter().zip(&r.trace).any(|(m, line)| {
            m.time_ns == s.to_ns && m.node == Some(s.node) && (line.contains("reconnected") || line.contains("HEAL"))
        });
        let heal = t.heal_ns == Some(s.to_ns);
        assert!(ended || heal || s.to_ns == r.sim_time_ns, "{s:?} ends at no reconnection");
    }
}

#[test]
fn a_linearizability_violation_marks_its_key_and_the_operation_that_cannot_be_placed() {
    // A passing run's page, given a history the checker rejects (a read of a value never written) and its
    // verdict: the page names the failing key's operations and the failing one.
    let mut r = recorded(config_of(CONFIG_NO_DIR_SYNC));
    let op = |call, ret, invoke_ns, complete_ns| Op {
        process: NO_PROCESS,
        key: Some("k".into()),
        call,
        ret,
        invoke_ns,
        complete_ns,
    };
    r.history = vec![
        op(Call::Write(Some(b"1".to_vec())), Ret::Ok, 0, 10),
        op(Call::Read, Ret::Read(Some(b"2".to_vec())), 20, 30),
        Op { key: Some("other".into()), ..op(Call::Read, Ret::Read(None), 0, 5) },
    ];
    r.outcome = Outcome::Violation(Violation {
        checker: "linearizability".into(),
        node: "cluster".into(),
        time_ns: 40,
        detail: "no linearization of the 2 operations on key k".into(),
        context: Vec::new(),
        diagnosis: Vec::new(),
    });
    let data = page_data(&r);
    assert_eq!(data["violation"]["key"], "k");
    assert_eq!(data["violation"]["ops"], serde_json::json!([0, 1]));
    assert_eq!(data["violation"]["failing_op"], 1);
    assert_eq!(data["ops"].as_array().map(Vec::len), Some(3));
}

#[test]
fn the_page_holds_its_data_and_nothing_closes_its_script_early() {
    let mut r = recorded(config_of(CONFIG_NO_DIR_SYNC));
    r.trace.push("   1.000 n1   PHASE     </script><script>alert(1)</script>".into());
    if let Some(t) = r.timeline.as_mut() {
        t.lines.push(t.lines[0]);
    }
    let source = PageSource { title: "a </script> title", reproduce: "sim run", bugs: &[] };
    let page = run_page::render(&source, &r).expect("a page");
    assert!(!page.contains("__RUN_DATA__"));
    assert_eq!(page.matches("</script>").count(), 3, "the page's own three script elements only");
    let start = page.find(r#"<script id="run-data" type="application/json">"#).expect("the data element");
    let json = &page[start..];
    let json = &json[json.find('>').expect("tag") + 1..json.find("</script>").expect("end")];
    let parsed: Value = serde_json::from_str(json).expect("the embedded data is JSON");
    assert_eq!(parsed["title"], "a </script> title");
    // A run made without a timeline has no page, and says why.
    let plain = sim::run(config_of(CONFIG_NO_DIR_SYNC));
    assert!(run_page::render(&source, &plain).is_err());
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-run-page-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn the_cli_writes_pages_for_run_replay_and_each_finding() {
    let dir = scratch("cli");
    let sim = env!("CARGO_BIN_EXE_sim");
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/../seeds/");
    // replay --html: the run's exit code, and the page.
    let file = format!("{seeds}recovery_config-dir-entry-lost-0-config-no-dir-sync.json");
    let out = dir.join("one.html");
    let status = Command::new(sim).args(["replay", &file, "--html"]).arg(&out).status().expect("sim runs");
    assert_eq!(status.code(), Some(10));
    let page = std::fs::read_to_string(&out).expect("the page");
    assert!(page.contains(r#""checker":"written-survives""#));
    // Several files: OUT is a directory, a page per file.
    let other = format!("{seeds}liveness_lagging-follower-snapshot-backoff-16-backoff-peer-skipped.json");
    let pages = dir.join("pages");
    let status = Command::new(sim).args(["replay", &file, &other, "--html"]).arg(&pages).status().expect("sim runs");
    assert_eq!(status.code(), Some(10));
    for stem in [
        "recovery_config-dir-entry-lost-0-config-no-dir-sync",
        "liveness_lagging-follower-snapshot-backoff-16-backoff-peer-skipped",
    ] {
        assert!(pages.join(format!("{stem}.html")).is_file(), "{stem}");
    }
    // run --pages: the failure's seed file and its page beside it.
    let found = dir.join("found");
    let status = Command::new(sim)
        .args(["run", "--scenario", "recovery/config-dir-entry-lost", "--seed", "0", "--bug", "config-no-dir-sync"])
        .args(["--pages", "--seed-dir"])
        .arg(&found)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("sim runs");
    assert_eq!(status.code(), Some(10));
    let written: Vec<String> = std::fs::read_dir(&found)
        .expect("seed dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let json = written.iter().find(|n| n.ends_with(".json")).expect("a seed file");
    assert!(written.contains(&json.replace(".json", ".html")), "{written:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
