//! Seed files: a failing (or interesting) run as a file that replays it on any machine.
//!
//! Why the resolved world is stored: a scenario's builder may change (a knob added, a plan tuned), and a
//! seed file must still replay the world it was written from; `scenario`, `seed` and `overrides` say how
//! that world was derived, so a replay can also report that the scenario has moved on. Parsing is pure
//! (text in, value or one-line error out) so that the CLI, `cargo xtask regress` and tests share it.

use raft_core::{Bug, Bugs};
use scenarios::WorldSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::WorldConfig;

/// The format this build writes; files of a newer format are refused.
pub const FORMAT_VERSION: u32 = 1;

/// One seed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// The file format.
    pub format_version: u32,
    /// The catalogue scenario the world came from.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Bug switches on, by name.
    pub bugs: Vec<String>,
    /// Knobs set on top of the scenario's world for this seed (field name → value).
    pub overrides: Map<String, Value>,
    /// What a replay must see.
    pub expect: Expect,
    /// Why the file exists, in a sentence.
    pub note: String,
    /// The trace hash when the file was written (hex); a replay reports drift, it does not fail on it.
    pub trace_hash: String,
    /// The resolved world: what is replayed.
    pub world: WorldSpec,
}

/// The expected result of a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `pass` or `violation`.
    pub outcome: ExpectedOutcome,
    /// The checker that must report the violation (for `violation`).
    pub checker: Option<String>,
}

/// `pass` or `violation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedOutcome {
    /// Every checker passes.
    Pass,
    /// A checker reports a violation.
    Violation,
    /// The system under test panics (a broken invariant; `checker` is `None`).
    Panic,
}

impl SeedFile {
    /// Parses a seed file; `Err` is one line naming what is wrong (the field, or the format version).
    pub fn parse(text: &str) -> Result<SeedFile, String> {
        Self::parse_unescaped(text).map_err(|e| one_line(&e))
    }

    fn parse_unescaped(text: &str) -> Result<SeedFile, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let version = value
            .get("format_version")
            .ok_or("missing field `format_version`")?
            .as_u64()
            .ok_or("`format_version` is not a number")?;
        if version > u64::from(FORMAT_VERSION) {
            return Err(format!(
                "format_version {version} is newer than this sim understands ({FORMAT_VERSION}); update the sim"
            ));
        }
        let world = value.get("world").cloned();
        let file: SeedFile = serde_json::from_value(value).map_err(|e| match world {
            Some(Value::Object(fields)) => match knob_in_error(&fields) {
                Some(knob_error) => format!("world.{knob_error}"),
                None => e.to_string(),
            },
            _ => e.to_string(),
        })?;
        file.config()?;
        Ok(file)
    }

    /// The world to replay, with its bug switches; `Err` names an unknown switch or a bad knob.
    pub fn config(&self) -> Result<WorldConfig, String> {
        let bugs = bugs_named(&self.bugs)?;
        let config = WorldConfig::new(self.world.clone(), bugs);
        config.validate().map_err(|e| format!("world.{e}"))?;
        Ok(config)
    }

    /// Renders the file (pretty JSON, one trailing newline).
    pub fn render(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a seed file serialises");
        text.push('\n');
        text
    }
}

/// The switches named `names`; `Err` lists the valid names.
pub fn bugs_named(names: &[String]) -> Result<Bugs, String> {
    let mut bugs = Vec::new();
    for name in names {
        match Bug::from_name(name) {
            Some(b) => bugs.push(b),
            None => {
                let valid: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
                return Err(format!("unknown bug {name:?}; valid: {}", valid.join(", ")));
            }
        }
    }
    Ok(Bugs::of(&bugs))
}

/// `spec` with `overrides` (knob name → JSON value) set; `Err` names an unknown knob or a bad value.
pub fn apply_overrides(spec: &WorldSpec, overrides: &Map<String, Value>) -> Result<WorldSpec, String> {
    apply_overrides_unescaped(spec, overrides).map_err(|e| one_line(&e))
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`): an error message that quotes what a
/// user wrote stays one line and cannot drive the terminal (serde quotes an unknown field or variant as
/// it is).
pub fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

fn apply_overrides_unescaped(spec: &WorldSpec, overrides: &Map<String, Value>) -> Result<WorldSpec, String> {
    let Value::Object(mut fields) = serde_json::to_value(spec).expect("a world serialises") else {
        unreachable!("a world is an object")
    };
    for (knob, value) in overrides {
        if !fields.contains_key(knob) {
            let valid: Vec<&str> = fields.keys().map(String::as_str).collect();
            return Err(format!("unknown knob {knob:?}; valid: {}", valid.join(", ")));
        }
        fields.insert(knob.clone(), value.clone());
    }
    serde_json::from_value(Value::Object(fields.clone()))
        .map_err(|e| knob_in_error(&fields).unwrap_or_else(|| format!("overrides: {e}")))
}

/// Why a world's fields do not make a `WorldSpec`, naming the first knob whose value alone is wrong
/// (serde's own message names the type, not the field): each field is tried in a world known to be
/// good. `None` if no single field is to blame.
fn knob_in_error(fields: &Map<String, Value>) -> Option<String> {
    let Value::Object(good) = serde_json::to_value(scenarios::base(0)).expect("a world serialises") else {
        unreachable!("a world is an object")
    };
    fields.iter().find_map(|(knob, value)| {
        let mut one = good.clone();
        one.insert(knob.clone(), value.clone());
        serde_json::from_value::<WorldSpec>(Value::Object(one)).err().map(|e| format!("{knob}: {e}"))
    })
}

/// The overrides that turn `from` into `to`: every knob whose value differs (so that a file whose world
/// was derived — a sweep's cut, a shrunk plan — still says exactly how, and `apply_overrides(from, …)`
/// gives `to`).
pub fn overrides_between(from: &WorldSpec, to: &WorldSpec) -> Map<String, Value> {
    let (Value::Object(a), Value::Object(b)) = (
        serde_json::to_value(from).expect("a world serialises"),
        serde_json::to_value(to).expect("a world serialises"),
    ) else {
        unreachable!("a world is an object")
    };
    b.into_iter().filter(|(knob, value)| a.get(knob) != Some(value)).collect()
}

/// Parses `knob=value` (the value as JSON, or as a string when it is not JSON) into `overrides`.
pub fn parse_override(text: &str, overrides: &mut Map<String, Value>) -> Result<(), String> {
    let (knob, value) = text.split_once('=').ok_or_else(|| format!("--set {text:?}: expected knob=value"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    overrides.insert(knob.to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> SeedFile {
        let world = scenarios::find("recovery/torn-wal-tail").expect("in the catalogue").world(3);
        SeedFile {
            format_version: FORMAT_VERSION,
            scenario: "recovery/torn-wal-tail".into(),
            seed: 3,
            bugs: vec!["config-no-dir-sync".into()],
            overrides: Map::new(),
            expect: Expect { outcome: ExpectedOutcome::Pass, checker: None },
            note: "a test".into(),
            trace_hash: "0".into(),
            world,
        }
    }

    #[test]
    fn a_rendered_file_parses_back() {
        let f = file();
        assert_eq!(SeedFile::parse(&f.render()), Ok(f));
    }

    #[test]
    fn bad_files_get_one_line_naming_the_problem() {
        let text = file().render();
        let newer = text.replace("\"format_version\": 1", "\"format_version\": 2");
        assert!(SeedFile::parse(&newer).unwrap_err().contains("format_version 2 is newer"));
        let missing = text.replace("\"note\": \"a test\",", "");
        assert!(SeedFile::parse(&missing).unwrap_err().contains("missing field `note`"));
        let missing_knob = text.replace("\"safety_ms\": 6000,", "");
        assert!(SeedFile::parse(&missing_knob).unwrap_err().contains("missing field `safety_ms`"));
        let bug = text.replace("config-no-dir-sync", "no-such-bug");
        assert!(SeedFile::parse(&bug).unwrap_err().starts_with("unknown bug \"no-such-bug\"; valid: indexes-badmatch"));
        let node = text.replace("\"nodes\": 3", "\"nodes\": 0");
        assert_eq!(
            SeedFile::parse(&node),
            Err("world.nodes: 0 is outside 1..=15 (RabbitMQ runs quorum queues on 3, 5 or 7 nodes)".into())
        );
        let typed = text.replace("\"nodes\": 3", "\"nodes\": \"three\"");
        assert!(SeedFile::parse(&typed).unwrap_err().starts_with("world.nodes: invalid type: string \"three\""));
        assert!(SeedFile::parse("").unwrap_err().starts_with("not JSON"));
        for e in [newer, missing, missing_knob, bug, node].map(|t| SeedFile::parse(&t).unwrap_err()) {
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn overrides_name_knobs_by_field() {
        let spec = file().world;
        let mut o = Map::new();
        parse_override("groups=2", &mut o).unwrap();
        parse_override("crash_model=lose_unsynced", &mut o).unwrap();
        let changed = apply_overrides(&spec, &o).unwrap();
        assert_eq!((changed.groups, changed.crash_model), (2, scenarios::CrashModel::LoseUnsynced));
        parse_override("grups=2", &mut o).unwrap();
        assert!(apply_overrides(&spec, &o).unwrap_err().starts_with("unknown knob \"grups\""));
        let mut bad = Map::new();
        parse_override("groups=many", &mut bad).unwrap();
        assert!(apply_overrides(&spec, &bad).unwrap_err().starts_with("groups: invalid type: string \"many\""));
        assert!(parse_override("groups", &mut bad).is_err());
    }
}
