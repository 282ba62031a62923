//! Writing a run's page (`--html`, `--pages`): the run made again with its timeline recorded (a run with
//! a timeline is the same run), drawn by `sim::run_page`, and written atomically.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;

use sim::run_page::{self, PageSource};
use sim::seedfile::SeedFile;
use sim::{RunResult, WorldConfig};

use super::{Usage, run_world};

/// Writes the page of `result` (a run made with `record_timeline`) to `out`.
pub(crate) fn write_page(out: &Path, source: &PageSource<'_>, result: &RunResult) -> Result<(), String> {
    let page = run_page::render(source, result).map_err(|e| e.to_string())?;
    let tmp = out.with_extension("html.tmp");
    std::fs::write(&tmp, page).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// Runs `config` again with its timeline recorded and writes its page to `out` (a panic of the system
/// under test has no page: the run did not end).
pub(crate) fn page_of_run(mut config: WorldConfig, out: &Path, source: &PageSource<'_>) -> Result<(), String> {
    config.record_timeline = true;
    match run_world(config) {
        Ok(r) => write_page(out, source, &r),
        Err(panic) => Err(format!("no page: the run panicked ({panic})")),
    }
}

/// A seed file's page: titled by the file's name, reproduced by replaying it.
pub(crate) fn seed_file_title(path: &Path) -> (String, String) {
    let title = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    (title, format!("sim replay {}", path.display()))
}

/// The page of a seed file's run, beside it (`NAME.html`): what `--pages` writes for each finding.
pub(crate) fn page_beside(file: &SeedFile, path: &Path) -> Result<(), String> {
    let config = file.config()?;
    let (title, reproduce) = seed_file_title(path);
    let source = PageSource { title: &title, reproduce: &reproduce, bugs: &file.bugs };
    page_of_run(config, &path.with_extension("html"), &source)
}

/// `--html` with several inputs: `OUT` is a directory and each page is `OUT/STEM.html` (as
/// `check-history --html` names its pages).
pub(crate) fn page_path(out: &Path, several: bool, input: &Path) -> Result<std::path::PathBuf, Usage> {
    if !several {
        return Ok(out.to_path_buf());
    }
    std::fs::create_dir_all(out).map_err(|e| Usage(format!("{}: {e}", out.display())))?;
    Ok(super::check_history::file_in(out, input, "html"))
}
