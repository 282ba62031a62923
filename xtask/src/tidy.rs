//! `cargo xtask tidy`: the rules reviewers should never have to check by eye.
//!
//! Clippy's `disallowed_*` lints (configured in `clippy.toml`) are the first line of determinism
//! enforcement; tidy is the second and catches what a lint cannot: a `#![allow]` that switches the lints
//! off outside the host-facing files, textual uses in macros, ignored or should-panic tests, missing
//! module docs, `Default` on configuration types.

use std::path::{Path, PathBuf};

/// Crates whose code runs inside a simulation and must be deterministic.
const SIMULATED_CRATES: [&str; 4] = ["vfs", "raft-core", "scenarios", "sim"];

/// Files of simulated crates that face the host (real filesystem, clock for benchmarks, CLI threads).
/// Only these may switch off the `disallowed_*` lints or name the host APIs. An entry ending in `/` is a
/// folder: every file under it.
const HOST_FACING: [&str; 16] = [
    "vfs/src/real.rs",
    "vfs/tests/differential.rs",
    "vfs/benches/vfs.rs",
    "raft-core/benches/storage.rs",
    "sim/benches/engine.rs",
    // Reads the process's resident memory as a long run goes on.
    "sim/benches/soak.rs",
    // The `sim` command: prints, reads seed files, writes results, runs seeds on threads, shows progress.
    "sim/src/main.rs",
    // Its subcommands, one module each, and what they share.
    "sim/src/cli/",
    // Runs the `sim` binary in a scratch directory (sharding and merge; the hunt).
    "sim/tests/binary/",
    "sim/tests/shard.rs",
    "sim/tests/hunt.rs",
    // Reads the swarm seed files of `seeds/` for the worlds of bugs found blind.
    "sim/tests/found_worlds.rs",
    // Reads history fixtures and runs `sim check-history` on files it writes.
    "sim/tests/check_history.rs",
    // Runs the `sim` binary on bad worlds, some written as edited seed files.
    "sim/tests/bad_worlds.rs",
    // Runs `sim run`/`replay` with `--html` and `--pages` into a scratch directory and reads the pages.
    "sim/tests/run_page.rs",
    // The mutation oracle: reads the seed files of `seeds/`.
    "sim/tests/mutation_oracle.rs",
];

/// Source folders where a file past this many lines is a sign it holds two things (ARCHITECTURE.md,
/// "Architecture invariants"): split it along its seams, or list it in `LONG_FILES` with the reason.
const LONG_FILE_LINES: usize = 900;
const LONG_FILE_FOLDERS: [&str; 2] = ["sim/src/", "raft-core/src/"];
/// Files allowed past `LONG_FILE_LINES`, each with why it is one thing (none today).
const LONG_FILES: [(&str, &str); 0] = [];

/// Never allowed in a simulated crate, host-facing or not: iteration order would vary per process.
const ALWAYS_BANNED: [&str; 2] = ["HashMap", "HashSet"];

/// Allowed only in host-facing files.
const HOST_ONLY: [&str; 8] = [
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "rand::random",
    "thread::spawn",
    "std::fs",
    "std::env::var",
    "from_os_rng",
];

/// Whether `relative` (a path from the workspace root) is one of the host-facing files.
fn is_host_facing(relative: &str) -> bool {
    HOST_FACING.iter().any(|&f| if f.ends_with('/') { relative.starts_with(f) } else { relative == f })
}

/// One rule broken at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Checks every Rust file of the workspace.
pub(crate) fn check_workspace(root: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for krate in SIMULATED_CRATES.iter().chain(["xtask"].iter()) {
        collect_rs(&root.join(krate), &mut files);
        for entry in ["src/lib.rs", "src/main.rs"] {
            let path = root.join(krate).join(entry);
            if path.is_file() && !read(&path).trim_start().starts_with("//!") {
                problems.push(Problem {
                    file: format!("{krate}/{entry}"),
                    line: 1,
                    message: "crate root must start with a `//!` doc saying why the crate exists".into(),
                });
            }
        }
    }
    for path in files {
        let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        let source = read(&path);
        problems.extend(check_file(&relative, &source));
    }
    problems.extend(check_docs(root));
    problems
}

/// The Markdown files a user reads: the top level's and those of `docs/`, `seeds/` and `mutants/`.
const DOC_FOLDERS: [&str; 5] = ["", "docs", "seeds", "seeds/open", "mutants"];

/// Every user doc stands alone: each relative link names a file or folder inside the repository (a
/// clone has nothing beside it), and no issue number appears (they mean nothing to a user).
fn check_docs(root: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    for folder in DOC_FOLDERS {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else { continue };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|x| x == "md")) {
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let text = read(&path);
            let dir = path.parent().unwrap_or(root);
            for (k, line) in text.lines().enumerate() {
                let mut add = |message: String| problems.push(Problem { file: relative.clone(), line: k + 1, message });
                for target in link_targets(line) {
                    if let Some(problem) = link_problem(root, dir, target) {
                        add(problem);
                    }
                }
                if let Some(at) = issue_number(line) {
                    add(format!("`{at}`: an issue number in a user doc (say what it is instead)"));
                }
            }
        }
    }
    problems
}

/// The targets of the Markdown links and images on a line (`[text](target)`).
fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(after[..end].split_whitespace().next().unwrap_or(""));
        rest = &after[end..];
    }
    targets
}

/// Why a link target is not allowed: outside the repository, or naming nothing in it.
fn link_problem(root: &Path, dir: &Path, target: &str) -> Option<String> {
    if target.is_empty() || target.starts_with('#') || target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let path = target.split('#').next().unwrap_or(target);
    let resolved = normalize(&dir.join(path));
    if !resolved.starts_with(normalize(root)) {
        return Some(format!("link `{target}` leaves the repository"));
    }
    if !resolved.exists() {
        return Some(format!("link `{target}` names nothing in the repository"));
    }
    None
}

/// `path` with `.` and `..` components resolved lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// "issue 12", "issues 6, 7", "issue #12": the first on the line, if any.
fn issue_number(line: &str) -> Option<&str> {
    let lower = line.to_ascii_lowercase();
    for word in ["issue ", "issues ", "issue #"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(word) {
            let start = from + at;
            let after = &line[start + word.len()..];
            if after.starts_with(|c: char| c.is_ascii_digit()) {
                let digits = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
                return Some(&line[start..start + word.len() + digits]);
            }
            from = start + word.len();
        }
    }
    None
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect_rs(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The code part of a line: without a `//` comment (naive about `//` inside string literals, which is
/// conservative: it can only hide code, and the lints still see it).
fn code_of(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Checks one file; `relative` is its path from the workspace root with `/` separators.
pub(crate) fn check_file(relative: &str, source: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let krate = relative.split('/').next().unwrap_or("");
    let simulated = SIMULATED_CRATES.contains(&krate);
    let host_facing = is_host_facing(relative);
    let mut add = |line: usize, message: String| problems.push(Problem { file: relative.to_string(), line, message });

    let in_src = relative.contains("/src/");
    if in_src && !source.trim_start().starts_with("//!") {
        add(1, "module must start with a `//!` doc saying why it exists".into());
    }
    let length = source.lines().count();
    if length > LONG_FILE_LINES
        && LONG_FILE_FOLDERS.iter().any(|f| relative.starts_with(f))
        && !LONG_FILES.iter().any(|(f, _)| *f == relative)
    {
        add(
            1,
            format!(
                "{length} lines (over {LONG_FILE_LINES}): split it along its seams, or list it in LONG_FILES with why it is one thing"
            ),
        );
    }

    // Built from pieces so this file does not flag itself.
    let ignore_attr = format!("#[{}", "ignore");
    let should_panic_attr = format!("#[{}", "should_panic");
    let allow_disallowed = format!("clippy::{}", "disallowed_");

    let lines: Vec<&str> = source.lines().collect();
    for (index, raw) in lines.iter().enumerate() {
        let line = index + 1;
        let code = code_of(raw);
        if code.contains(&ignore_attr) {
            add(line, "ignored tests are not allowed: a test runs or is deleted".into());
        }
        if code.contains(&should_panic_attr) {
            add(line, "should-panic tests are not allowed: assert on a typed error instead".into());
        }
        if !simulated {
            continue;
        }
        for banned in ALWAYS_BANNED {
            if code.contains(banned) {
                add(line, format!("`{banned}` in a simulated crate: iteration order is not deterministic"));
            }
        }
        if !host_facing {
            for banned in HOST_ONLY {
                if code.contains(banned) {
                    add(line, format!("`{banned}` outside the host-facing files {HOST_FACING:?}"));
                }
            }
            if code.contains(&allow_disallowed) {
                add(line, format!("the disallowed_* lints may only be allowed in {HOST_FACING:?}"));
            }
        }
        // No `Default` on configuration types: every knob is written out.
        if code.contains("derive(") && code.contains("Default") {
            let next_item = lines[index + 1..]
                .iter()
                .map(|l| code_of(l).trim())
                .find(|l| l.contains("struct ") || l.contains("enum "));
            if let Some(item) = next_item
                && is_config_type(item)
            {
                add(line, format!("`Default` derived on a configuration type ({item}): write every knob out"));
            }
        }
        if let Some(rest) = code.trim().strip_prefix("impl Default for ")
            && is_config_type(rest)
        {
            add(line, format!("`impl Default for {}`: write every knob out", rest.trim_end_matches(" {")));
        }
    }
    problems
}

fn is_config_type(item: &str) -> bool {
    let name: String = item
        .split(['{', '(', '<', ' '])
        .rfind(|w| !w.is_empty() && w.chars().next().is_some_and(char::is_uppercase))
        .unwrap_or("")
        .to_string();
    ["Config", "Spec", "Plan", "Options"].iter().any(|suffix| name.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(relative: &str, source: &str) -> Vec<String> {
        check_file(relative, source).into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn the_workspace_is_tidy() {
        let problems = check_workspace(&crate::workspace_root());
        let listing: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(problems.is_empty(), "tidy problems:\n{}", listing.join("\n"));
    }

    #[test]
    fn user_docs_link_inside_the_repository_and_name_no_issue_numbers() {
        let root = crate::workspace_root();
        let docs = root.join("docs");
        let cases: [(&str, bool); 7] = [
            ("../README.md", true),
            ("../README.md#the-two-commands", true),
            ("https://github.com/rabbitmq/ra", true),
            ("#exit-codes", true),
            ("../../outside/notes.md", false),
            ("missing.md", false),
            ("../seeds/", true),
        ];
        for (target, ok) in cases {
            assert_eq!(link_problem(&root, &docs, target).is_none(), ok, "{target}");
        }
        assert_eq!(link_targets("see [a](x.md) and ![b](y.png \"t\")"), ["x.md", "y.png"]);
        assert_eq!(issue_number("built (issue 23): the search"), Some("issue 23"));
        assert_eq!(issue_number("Issues 6, 7"), Some("Issues 6"));
        assert_eq!(issue_number("an issue with the disk"), None);
    }

    #[test]
    fn hash_collections_are_banned_in_simulated_crates_even_in_host_files() {
        let src = "//! doc\nuse std::collections::HashMap;\n";
        assert_eq!(messages("raft-core/src/log.rs", src).len(), 1);
        assert_eq!(messages("vfs/src/real.rs", src).len(), 1);
        assert!(messages("xtask/src/x.rs", src).is_empty());
        assert!(messages("vfs/src/a.rs", "//! doc\n// a HashMap in a comment is fine\n").is_empty());
    }

    #[test]
    fn host_apis_only_in_host_facing_files() {
        let src = "//! doc\nfn f() { let _ = std::time::Instant::now(); std::fs::read(\"x\"); }\n";
        assert_eq!(messages("sim/src/world.rs", src).len(), 2);
        assert!(messages("vfs/src/real.rs", src).is_empty());
        let allow = format!("//! doc\n#![allow(clippy::{}methods)]\n", "disallowed_");
        assert_eq!(messages("vfs/src/sim/mod.rs", &allow).len(), 1);
        assert!(messages("vfs/benches/vfs.rs", &allow).is_empty());
        // A folder entry covers the files under it, and only those.
        assert!(messages("sim/src/cli/explore.rs", src).is_empty());
        assert_eq!(messages("sim/src/client.rs", src).len(), 2);
    }

    #[test]
    fn long_files_only_outside_the_engine_and_the_core() {
        let long = format!("//! doc\n{}", "fn f() {}\n".repeat(LONG_FILE_LINES));
        assert_eq!(messages("sim/src/world/x.rs", &long).len(), 1);
        assert_eq!(messages("raft-core/src/x.rs", &long).len(), 1);
        assert!(messages("raft-core/tests/x.rs", &long).is_empty());
        assert!(
            messages("sim/src/x.rs", &"fn f() {}\n".repeat(LONG_FILE_LINES - 1).replacen("fn", "//! doc\nfn", 1))
                .is_empty()
        );
    }

    #[test]
    fn ignored_and_should_panic_tests_are_banned_everywhere() {
        let src = format!("#[test]\n#[{}]\nfn a() {{}}\n#[{}]\nfn b() {{}}\n", "ignore", "should_panic");
        assert_eq!(messages("xtask/tests/t.rs", &src).len(), 2);
    }

    #[test]
    fn modules_need_docs() {
        assert_eq!(
            messages("vfs/src/x.rs", "fn f() {}\n"),
            vec!["module must start with a `//!` doc saying why it exists"]
        );
        assert!(messages("vfs/tests/x.rs", "fn f() {}\n").is_empty());
    }

    #[test]
    fn default_is_banned_on_config_types_only() {
        let bad = "//! doc\n#[derive(Debug, Default)]\npub struct FaultPlan {\n}\nimpl Default for SimFsConfig {\n";
        assert_eq!(messages("scenarios/src/x.rs", bad).len(), 2);
        let fine = "//! doc\n#[derive(Debug, Default)]\npub struct Counters {\n}\n";
        assert!(messages("scenarios/src/x.rs", fine).is_empty());
    }
}
