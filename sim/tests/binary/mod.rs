//! Running the `sim` binary from a test: in a fresh scratch directory under the target directory, with
//! its exit code, stdout and stderr (shared by the suites that test the CLI end to end).
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the `sim` binary in `dir`; (exit code, stdout, stderr).
pub(crate) fn sim(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sim")).args(args).current_dir(dir).output().expect("sim runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// A fresh directory under the target directory for one test case of `suite`.
pub(crate) fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(suite).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}
