//! `cargo xtask readme`: runs every command README.md shows, so that the guide cannot go stale.
//!
//! A command is a line of a ```` ```sh ```` block (a line ending in `\` continues on the next; blank and
//! comment lines are skipped). It runs under `bash -c` in the workspace root, with the release `sim` first
//! on the PATH (so `sim …` is the binary this checkout builds), and must exit 0 — or the code its trailing
//! comment names (`# exit 10`). A handful of commands are not run, each for the reason `NOT_RUN` gives;
//! blocks in other languages (the YAML recipes) are shown, not run. Part of `cargo xtask ci`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::workspace_root;

/// Commands the guide shows and this does not run: (the command's start, why).
const NOT_RUN: [(&str, &str); 3] = [
    ("cargo xtask ci", "CI itself: this runs inside it"),
    ("cargo xtask bench", "25 minutes of measurement; its output is BENCHMARKS.md"),
    ("cargo install", "installs into the user's cargo home; the guide's `sim` is the release build"),
];

/// One command of the guide: where it is, what it runs, the exit code it must end with.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    line: usize,
    command: String,
    exit: i32,
}

/// The commands of every ```` ```sh ```` block of `text`.
fn commands(text: &str) -> Vec<Shown> {
    let mut shown = Vec::new();
    let mut in_sh = false;
    let mut pending: Option<(usize, String)> = None;
    for (k, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((k + 1, String::new()));
        if joined.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            joined.push_str(head.trim_end());
            joined.push(' ');
            pending = Some((start, joined));
            continue;
        }
        joined.push_str(trimmed);
        let exit = expected_exit(&joined);
        shown.push(Shown { line: start, command: joined, exit });
    }
    shown
}

/// The exit code a command's trailing comment names (`# exit 10…`), else 0.
fn expected_exit(command: &str) -> i32 {
    command
        .split_once(" # exit ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn run() -> Result<(), String> {
    let root = workspace_root();
    crate::run("cargo", &["build", "--release", "--locked", "-q", "-p", "sim"], &[])?;
    let bin = root.join("target/release");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let text = std::fs::read_to_string(root.join("README.md")).map_err(|e| format!("README.md: {e}"))?;
    let shown = commands(&text);
    let mut failures = Vec::new();
    let mut ran = 0;
    for s in &shown {
        if let Some((_, why)) = NOT_RUN.iter().find(|(start, _)| s.command.starts_with(start)) {
            println!("README.md:{}: not run ({why}): {}", s.line, s.command);
            continue;
        }
        let started = Instant::now();
        let code = run_line(&root, &path, &s.command)?;
        ran += 1;
        let verdict = if code == s.exit { "ok" } else { "WRONG EXIT" };
        println!(
            "README.md:{}: exit {code} ({verdict}, {:.1} s): {}",
            s.line,
            started.elapsed().as_secs_f64(),
            s.command
        );
        if code != s.exit {
            failures.push(format!("README.md:{}: `{}` exited {code}, not {}", s.line, s.command, s.exit));
        }
    }
    if failures.is_empty() {
        println!("xtask readme: {ran} commands ran as the guide says ({} shown)", shown.len());
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Runs one command under bash in `root`; its exit code (output discarded: the guide's examples print
/// what a user reads, and the exit code is the contract).
fn run_line(root: &Path, path: &str, command: &str) -> Result<i32, String> {
    let status = Command::new("bash")
        .args(["-c", command])
        .current_dir(root)
        .env("PATH", path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    Ok(status.code().unwrap_or(-1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_the_lines_of_sh_blocks_with_their_exit_codes() {
        let text = "text\n```sh\n# a comment\nsim list bugs   # every switch\n\nsim run --seed 1 \\\n    --bug x   # exit 10: found\n```\n```yaml\nkind: Job\n```\n```\nplain\n```\n";
        assert_eq!(
            commands(text),
            vec![
                Shown { line: 4, command: "sim list bugs   # every switch".into(), exit: 0 },
                Shown { line: 6, command: "sim run --seed 1 --bug x   # exit 10: found".into(), exit: 10 },
            ]
        );
    }
}
