//! `cargo xtask bench`'s comparison of `sim check-history` with Porcupine (a Go linearizability checker)
//! on the same history files in the same run: the engine bench's generated histories and, from a
//! Porcupine checkout (`--porcupine DIR`), its own test data (Jepsen etcd logs, MIT 6.824 key-value
//! histories) converted to our JSON lines by `sim check-history --write-jsonl`. Porcupine runs through
//! `bench/porcupine-driver` (built offline by `scripts/porcupine.sh`) with `GOMAXPROCS=1`, as our checker
//! is single-threaded; each side times its check only, not reading the file. Without a checkout (or Go),
//! the section says so and times ours alone.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::workspace_root;

/// Seconds either checker may spend on one file before it answers undecided.
const TIME_BUDGET_S: &str = "10";

/// One set of files: its name and each file as (ours to read, Porcupine's JSON lines).
struct Set {
    name: String,
    files: Vec<(String, String)>,
}

/// (file → (verdict, ms)) from `sim check-history --json`.
fn ours(sim: &str, files: &[String]) -> Result<BTreeMap<String, (String, f64)>, String> {
    let mut args = vec!["check-history", "--json", "--time-budget", TIME_BUDGET_S];
    args.extend(files.iter().map(String::as_str));
    let out = Command::new(sim).args(&args).output().map_err(|e| format!("cannot run {sim}: {e}"))?;
    let mut by_file = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("check-history --json: {e}"))?;
        let file = v["file"].as_str().unwrap_or_default().to_string();
        by_file.insert(file, (v["verdict"].as_str().unwrap_or_default().to_string(), v["ms"].as_f64().unwrap_or(0.0)));
    }
    if by_file.len() != files.len() {
        return Err(format!(
            "check-history judged {} of {} files: {}",
            by_file.len(),
            files.len(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(by_file)
}

/// (file → (verdict, ms)) from the Porcupine driver.
fn porcupine(driver: &str, files: &[String]) -> Result<BTreeMap<String, (String, f64)>, String> {
    let out = Command::new(driver)
        .args(["--timeout-s", TIME_BUDGET_S])
        .args(files)
        .env("GOMAXPROCS", "1")
        .output()
        .map_err(|e| format!("cannot run {driver}: {e}"))?;
    if !out.status.success() {
        return Err(format!("porcupine-driver failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut by_file = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let [file, verdict, ms] = fields[..] {
            by_file.insert(file.to_string(), (verdict.to_string(), ms.parse().unwrap_or(f64::NAN)));
        }
    }
    Ok(by_file)
}

fn listed(dir: &Path, extension: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == extension)).collect())
        .unwrap_or_else(|_| Vec::new())
        .into_iter()
        .filter_map(|p: std::path::PathBuf| p.to_str().map(str::to_string))
        .collect();
    files.sort();
    files
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    xs[xs.len() / 2]
}

/// The section, with `reps` repetitions of each side (the median of each file set's total).
pub(crate) fn section(sim: &str, scratch: &str, porcupine_dir: Option<&str>, reps: usize) -> Result<String, String> {
    let generated = Path::new(scratch).join("histories");
    std::fs::create_dir_all(&generated).map_err(|e| e.to_string())?;
    let write = ["bench", "--quiet", "-p", "sim", "--bench", "engine", "--", "--write-histories"];
    crate::run("cargo", &[&write[..], &[generated.to_str().ok_or("scratch path is not UTF-8")?]].concat(), &[])?;
    let mut sets: Vec<Set> = listed(&generated, "jsonl")
        .into_iter()
        .map(|f| {
            let stem = Path::new(&f).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            Set { name: format!("generated `{stem}`"), files: vec![(f.clone(), f)] }
        })
        .collect();
    let mut driver = None;
    let mut skipped = String::new();
    match porcupine_dir {
        None => skipped = "Porcupine not run: no checkout given (`cargo xtask bench --porcupine DIR`).".into(),
        Some(dir) => {
            let out = Path::new(scratch).join("porcupine-driver");
            let out = out.to_str().ok_or("scratch path is not UTF-8")?.to_string();
            let script = workspace_root().join("scripts/porcupine.sh");
            let built = Command::new(script).args(["build", dir, &out]).output().map_err(|e| e.to_string())?;
            if built.status.success() {
                driver = Some(out);
            } else {
                skipped = format!("Porcupine not run: {}", String::from_utf8_lossy(&built.stderr).trim());
            }
            for (name, sub, extension) in [
                ("Porcupine's Jepsen etcd logs", "test_data/jepsen", "log"),
                ("Porcupine's key-value histories", "test_data/kv", "txt"),
            ] {
                let originals = listed(&Path::new(dir).join(sub), extension);
                let converted_dir = Path::new(scratch).join(sub.replace('/', "-"));
                std::fs::create_dir_all(&converted_dir).map_err(|e| e.to_string())?;
                let converted = converted_dir.to_str().ok_or("scratch path is not UTF-8")?;
                let mut args = vec!["check-history", "--write-jsonl", converted];
                args.extend(originals.iter().map(String::as_str));
                let status = Command::new(sim).args(&args).output().map_err(|e| e.to_string())?;
                if status.status.code().is_some_and(|c| c == 2) {
                    return Err(format!("converting {sub}: {}", String::from_utf8_lossy(&status.stderr)));
                }
                let files = originals
                    .iter()
                    .map(|o| {
                        let stem =
                            Path::new(o).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                        (o.clone(), format!("{converted}/{stem}.jsonl"))
                    })
                    .collect();
                sets.push(Set { name: format!("{name} ({})", originals.len()), files });
            }
        }
    }
    let mut rows = String::new();
    for set in &sets {
        let ours_files: Vec<String> = set.files.iter().map(|f| f.0.clone()).collect();
        let theirs_files: Vec<String> = set.files.iter().map(|f| f.1.clone()).collect();
        let mut our_totals = Vec::new();
        let mut their_totals = Vec::new();
        let mut agree = 0;
        let mut verdicts = BTreeMap::<String, usize>::new();
        let mut their_verdicts = BTreeMap::<String, usize>::new();
        for rep in 0..reps {
            let a = ours(sim, &ours_files)?;
            our_totals.push(a.values().map(|v| v.1).sum::<f64>());
            if rep == 0 {
                for (v, _) in a.values() {
                    *verdicts.entry(v.clone()).or_default() += 1;
                }
            }
            if let Some(d) = &driver {
                let b = porcupine(d, &theirs_files)?;
                their_totals.push(b.values().map(|v| v.1).sum::<f64>());
                if rep == 0 {
                    for (o, t) in set.files.iter() {
                        let (mine, theirs) = (&a[o].0, b.get(t).map(|v| v.0.as_str()).unwrap_or("missing"));
                        *their_verdicts.entry(theirs.to_string()).or_default() += 1;
                        agree += usize::from(mine == theirs);
                    }
                }
            }
        }
        let show =
            |m: &BTreeMap<String, usize>| m.iter().map(|(v, n)| format!("{n} {v}")).collect::<Vec<_>>().join(", ");
        let ours_ms = median(our_totals);
        match driver {
            Some(_) => {
                let theirs_ms = median(their_totals);
                rows.push_str(&format!(
                    "| {} | {} | {ours_ms:.1} | {} | {theirs_ms:.1} | {:.1}× | {agree}/{} |\n",
                    set.name,
                    show(&verdicts),
                    show(&their_verdicts),
                    theirs_ms / ours_ms.max(0.001),
                    set.files.len()
                ));
            }
            None => rows.push_str(&format!("| {} | {} | {ours_ms:.1} | — | — | — | — |\n", set.name, show(&verdicts))),
        }
    }
    Ok(format!(
        "\n## sim check-history against Porcupine\n\n\
         The same history files, checked by `sim check-history` and by Porcupine (github.com/anishathalye/porcupine, \
         through `bench/porcupine-driver`, `GOMAXPROCS=1`); each side's check time only (not reading the file), \
         summed over a set's files, median of {reps} repetitions; {TIME_BUDGET_S} s per file before either \
         answers undecided (`unknown`). \"Same verdict\": files where both gave the same verdict (Porcupine's `unknown` is not ours' decided one). {skipped}\n\n\
         | histories | ours: verdicts | ours: ms | Porcupine: verdicts | Porcupine: ms | Porcupine ÷ ours | same verdict |\n\
         |---|---|---|---|---|---|---|\n{rows}"
    ))
}
