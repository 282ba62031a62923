//! `cargo xtask bench`: runs the release benchmarks and writes `BENCHMARKS.md` with the machine, the
//! date and the exact commands, so every figure in the file can be reproduced.

use crate::workspace_root;
use std::process::Command;

/// Benchmark binaries, each printing a Markdown section on stdout.
const BENCHES: [(&str, &str); 2] = [("vfs", "vfs"), ("raft-core", "storage")];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let reps = match args {
        [] => "5".to_string(),
        [flag, n] if flag == "--reps" && n.parse::<u32>().is_ok_and(|n| n >= 1) => n.clone(),
        _ => return Err("usage: cargo xtask bench [--reps N]".into()),
    };
    let mut sections = Vec::new();
    let mut commands = Vec::new();
    for (package, bench) in BENCHES {
        let args = ["bench", "--quiet", "-p", package, "--bench", bench, "--", "--reps", &reps];
        commands.push(format!("cargo {}", args.join(" ")));
        println!("$ cargo {}", args.join(" "));
        let output = Command::new("cargo")
            .args(args)
            .current_dir(workspace_root())
            .output()
            .map_err(|e| format!("cannot run cargo bench: {e}"))?;
        if !output.status.success() {
            return Err(format!("bench {bench} failed:\n{}", String::from_utf8_lossy(&output.stderr)));
        }
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        print!("{text}");
        sections.push(text);
    }
    let document = format!(
        "# Benchmarks\n\n\
         Written by `cargo xtask bench --reps {reps}`; do not edit by hand. Every figure is a median over the \
         repetitions with (min–max), from a release build.\n\n\
         - date: {}\n- machine: {}\n- toolchain: {}\n- commands: {}\n\n{}",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine(),
        command_line("rustc", &["--version"]),
        commands.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
        sections.join("\n")
    );
    std::fs::write(workspace_root().join("BENCHMARKS.md"), document)
        .map_err(|e| format!("write BENCHMARKS.md: {e}"))?;
    println!("wrote BENCHMARKS.md");
    Ok(())
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    format!("{model}, {cores} cores, {memory} RAM, Linux {}", kernel.trim())
}
