//! `cargo xtask bench`'s run-page section: for seed files from a few thousand events to a long run, the
//! page's size, what recording its timeline costs `sim replay`, and how long the page takes to load and to
//! redraw in headless Chromium (the page measures itself; `scripts/browser-test.sh` reads the figures).

use std::process::Command;
use std::time::Instant;

use crate::workspace_root;

/// (seed file, what it is): a short run with a power cut, a liveness failure, a long swarm run.
const FILES: [(&str, &str); 3] = [
    ("seeds/recovery_config-dir-entry-lost-0-config-no-dir-sync.json", "power cut, lost write"),
    ("seeds/liveness_lagging-follower-snapshot-backoff-16-backoff-peer-skipped.json", "stuck follower"),
    ("seeds/swarm-78-backoff-peer-skipped.json", "long swarm run"),
];

fn median(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

/// Wall seconds of `sim ARGS` (its exit code is the replay's verdict, not an error).
fn timed(sim: &str, args: &[&str]) -> Result<f64, String> {
    let start = Instant::now();
    Command::new(sim)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run {sim}: {e}"))?;
    Ok(start.elapsed().as_secs_f64())
}

/// The page's own load and redraw figures, in milliseconds, from one headless Chromium load.
fn browser_figures(page: &str) -> Result<(f64, f64), String> {
    let out = Command::new("scripts/browser-test.sh")
        .args(["--show", "data-load-ms", "--show", "data-redraw-ms", page, "data-rendered=ok", "data-console-errors=0"])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run scripts/browser-test.sh: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("browser test failed: {text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let value = |name: &str| -> Result<f64, String> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in {text:?}"))
    };
    Ok((value("data-load-ms")?, value("data-redraw-ms")?))
}

pub(crate) fn section(sim: &str, scratch: &str, reps: usize) -> Result<String, String> {
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for (file, what) in FILES {
        let page = format!("{scratch}/page.html");
        println!("$ sim replay {file} --html {page}");
        let mut plain = Vec::new();
        let mut drawn = Vec::new();
        for _ in 0..reps {
            plain.push(timed(sim, &["replay", file])?);
            drawn.push(timed(sim, &["replay", file, "--html", &page])?);
        }
        let events = Command::new(sim)
            .args(["replay", "--json", file])
            .current_dir(workspace_root())
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["events"].as_u64())
            .unwrap_or(0);
        let size_mb = std::fs::metadata(&page).map_err(|e| format!("{page}: {e}"))?.len() as f64 / 1e6;
        let mut loads = Vec::new();
        let mut redraws = Vec::new();
        let mut browser = Ok(());
        for _ in 0..reps {
            match browser_figures(&page) {
                Ok((load, redraw)) => {
                    loads.push(load);
                    redraws.push(redraw);
                }
                Err(e) => {
                    browser = Err(e);
                    break;
                }
            }
        }
        let (p, d) = (median(plain), median(drawn));
        let figures = match browser {
            Ok(()) => {
                let (l, r) = (median(loads), median(redraws));
                format!("{:.0} ms ({:.0}–{:.0}) | {:.1} ms ({:.1}–{:.1})", l.0, l.1, l.2, r.0, r.1, r.2)
            }
            Err(e) => format!("not measured: {} | –", e.lines().next().unwrap_or("")),
        };
        rows.push(format!(
            "| `{}` ({what}) | {events} | {size_mb:.1} MB | {:.0} ms ({:.0}–{:.0}) | {:.0} ms ({:.0}–{:.0}) | {figures} |",
            file.trim_start_matches("seeds/"),
            p.0 * 1e3,
            p.1 * 1e3,
            p.2 * 1e3,
            d.0 * 1e3,
            d.1 * 1e3,
            d.2 * 1e3
        ));
    }
    Ok(format!(
        "\n## sim: a run's page\n\n`sim replay FILE --html PAGE` against `sim replay FILE`, and the page in headless \
         Chromium (`scripts/browser-test.sh --show data-load-ms --show data-redraw-ms PAGE`): load is from the \
         page's first script to the end of its first drawing, redraw is one whole-run redraw (what each zoom or \
         pan step costs). Past 25,000 messages the page keeps the last ones. {reps} repetitions; median (min–max).\n\n\
         | seed file | events | page | replay | replay --html | page load | redraw |\n\
         |---|---:|---:|---:|---:|---:|---:|\n{}\n",
        rows.join("\n")
    ))
}
