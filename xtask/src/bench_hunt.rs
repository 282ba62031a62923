//! `cargo xtask bench --hunt-seeds N --hunt-budget S [--hunt-switches A,B|all]`: `sim hunt` against its
//! own `--blind` mode (every run a fresh swarm world: swarm's sampling, judged by the same code) in the
//! same bench run — coverage points over wall time for N hunts of each with no switch, drawn as
//! `docs/hunt-coverage.svg`, and, per switch asked for, how many of N hunts found it and how fast.

use serde_json::Value;

use crate::workspace_root;

/// One hunt's record: (elapsed s, coverage points) after each run, and its summary line.
struct Hunt {
    curve: Vec<(f64, f64)>,
    summary: Value,
}

fn hunt(sim: &str, dir: &str, seed: u64, budget_s: u64, blind: bool, bug: Option<&str>) -> Result<Hunt, String> {
    let (seed, budget) = (seed.to_string(), budget_s.to_string());
    let mut args = vec!["hunt", "--swarm", "--seed", &seed, "--time-budget", &budget, "--json", "--seed-dir", dir];
    if blind {
        args.push("--blind");
    }
    match bug {
        Some(b) => args.extend(["--bug", b]),
        None => args.push("--keep-going"),
    }
    println!("$ sim {}", args.join(" "));
    // A finding exits non-zero: the summary line says what happened.
    let output = std::process::Command::new(sim).args(&args).output().map_err(|e| format!("cannot run sim: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut curve = Vec::new();
    let mut summary = None;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("sim hunt printed {line:?}: {e}"))?;
        if let Some(s) = v.get("summary") {
            summary = Some(s.clone());
        } else {
            let at = v["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0;
            curve.push((at, v["points"].as_f64().unwrap_or(0.0)));
        }
    }
    let summary =
        summary.ok_or_else(|| format!("sim hunt printed no summary: {}", String::from_utf8_lossy(&output.stderr)))?;
    Ok(Hunt { curve, summary })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[(v.len() - 1) / 2] }
}

/// Points reached by `at` seconds.
fn points_at(h: &Hunt, at: f64) -> f64 {
    h.curve.iter().take_while(|(t, _)| *t <= at).last().map_or(0.0, |p| p.1)
}

pub(crate) fn section(sim: &str, dir: &str, seeds: u64, budget_s: u64, switches: &[String]) -> Result<String, String> {
    let dir = format!("{dir}/hunt");
    let mut guided = Vec::new();
    let mut blind = Vec::new();
    for seed in 0..seeds {
        guided.push(hunt(sim, &dir, seed, budget_s, false, None)?);
        blind.push(hunt(sim, &dir, seed, budget_s, true, None)?);
    }
    std::fs::create_dir_all(workspace_root().join("docs")).map_err(|e| e.to_string())?;
    std::fs::write(workspace_root().join("docs/hunt-coverage.svg"), svg(&guided, &blind, budget_s as f64))
        .map_err(|e| e.to_string())?;
    let budget = budget_s as f64;
    let row = |name: &str, hunts: &[Hunt]| {
        let at = |t: f64| median(hunts.iter().map(|h| points_at(h, t)).collect());
        let rate = median(hunts.iter().map(|h| h.summary["runs"].as_f64().unwrap_or(0.0) / budget).collect());
        let findings: u64 = hunts.iter().map(|h| h.summary["findings"].as_u64().unwrap_or(0)).sum();
        let corpus = median(hunts.iter().map(|h| h.summary["corpus"].as_f64().unwrap_or(0.0)).collect());
        format!(
            "| {name} | {:.0} | {:.0} | {:.0} | {rate:.1} | {corpus:.0} | {findings} |\n",
            at(budget / 4.0),
            at(budget / 2.0),
            at(budget)
        )
    };
    let mut text = format!(
        "\n## sim hunt: coverage over time, guided and blind\n\n\
         `sim hunt --swarm --seed S --time-budget {budget_s} --keep-going --json` and the same with `--blind` \
         (every run a fresh swarm world), hunt seeds 0..{seeds}, no switch, one after the other on this machine \
         (each hunt on every core). Coverage points are `sim::hunt::coverage`'s (trace-line shapes, edges \
         between a node's consecutive shapes, counters by order of magnitude). A finding with no switch is \
         either a real bug or a false alarm: each is in `seeds/open/` or fixed. Medians over the hunts.\n\n\
         ![coverage points over wall time, guided (blue) and blind (grey)](docs/hunt-coverage.svg)\n\n\
         | mode | points at {:.0} s | at {:.0} s | at {budget_s} s | runs/s | corpus | findings (all hunts) |\n\
         |---|---|---|---|---|---|---|\n",
        budget / 4.0,
        budget / 2.0
    );
    text.push_str(&row("guided", &guided));
    text.push_str(&row("blind", &blind));
    if !switches.is_empty() {
        text.push_str(&format!(
            "\nTime to find each switch: `sim hunt --swarm --bug B --seed S --time-budget {budget_s}` and the same \
             with `--blind`, hunt seeds 0..{seeds}, alternating. Median wall seconds (and runs) to the finding; a \
             hunt that found nothing counts as slower than any that did (`>{budget_s}` when half or more found \
             nothing).\n\n| switch | guided: found | guided: median s (runs) | blind: found | blind: median s (runs) |\n\
             |---|---|---|---|---|\n"
        ));
        for b in switches {
            let mut cells = String::new();
            let mut results = [Vec::new(), Vec::new()];
            for seed in 0..seeds {
                for (k, is_blind) in [false, true].into_iter().enumerate() {
                    results[k].push(hunt(sim, &dir, seed, budget_s, is_blind, Some(b))?);
                }
            }
            for hunts in &results {
                let found: Vec<&Hunt> = hunts.iter().filter(|h| h.summary["findings"].as_u64() > Some(0)).collect();
                let wall = |h: &Hunt| h.summary["wall_s"].as_f64().unwrap_or(f64::INFINITY);
                let runs = |h: &Hunt| h.summary["first_finding_run"].as_f64().map_or(f64::INFINITY, |r| r + 1.0);
                let misses = hunts.len() - found.len();
                let all = |f: &dyn Fn(&Hunt) -> f64| {
                    let mut v: Vec<f64> = found.iter().map(|h| f(h)).collect();
                    v.extend(std::iter::repeat_n(f64::INFINITY, misses));
                    median(v)
                };
                let (secs, n) = (all(&wall), all(&runs));
                let med = if secs.is_finite() { format!("{secs:.1} ({n:.0})") } else { format!(">{budget_s}") };
                cells.push_str(&format!(" {}/{} | {med} |", found.len(), hunts.len()));
            }
            text.push_str(&format!("| `{b}` |{cells}\n"));
        }
    }
    Ok(text)
}

/// Every hunt's coverage points over wall seconds: guided in blue, blind in dashed grey.
fn svg(guided: &[Hunt], blind: &[Hunt], budget: f64) -> String {
    let (w, h, left, bottom, top, right) = (720.0, 360.0, 70.0, 40.0, 30.0, 20.0);
    let max = guided.iter().chain(blind).flat_map(|h| h.curve.iter().map(|p| p.1)).fold(1.0, f64::max) * 1.1;
    let x = |t: f64| left + t.min(budget) / budget * (w - left - right);
    let y = |v: f64| h - bottom - v / max * (h - bottom - top);
    let line = |hunt: &Hunt, style: &str| {
        let points: Vec<String> = hunt.curve.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect();
        format!("<polyline fill='none' {style} points='{}'/>", points.join(" "))
    };
    let mut body = String::new();
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let t = budget * f64::from(k) / 4.0;
        body.push_str(&format!(
            "<line x1='{left}' x2='{}' y1='{yv:.1}' y2='{yv:.1}' stroke='#eee'/>\
             <text x='{}' y='{:.1}' text-anchor='end' font-size='11'>{v:.0}</text>\
             <text x='{:.1}' y='{}' text-anchor='middle' font-size='11'>{t:.0} s</text>",
            w - right,
            left - 6.0,
            y(v) + 4.0,
            x(t),
            h - bottom + 16.0,
            yv = y(v)
        ));
    }
    for hunt in blind {
        body.push_str(&line(hunt, "stroke='#999' stroke-width='1.5' stroke-dasharray='4 3'"));
    }
    for hunt in guided {
        body.push_str(&line(hunt, "stroke='#1f6feb' stroke-width='2'"));
    }
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif'>\
         <rect width='100%' height='100%' fill='white'/>{body}\
         <line x1='{left}' y1='{}' x2='{}' y2='{}' stroke='#333'/><line x1='{left}' y1='{top}' x2='{left}' y2='{}' stroke='#333'/>\
         <text x='{left}' y='18' font-size='13'>coverage points over wall time: sim hunt guided (blue) and --blind (grey)</text>\
         <text x='14' y='{}' font-size='11' transform='rotate(-90 14 {})'>points</text></svg>\n",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom,
        h / 2.0,
        h / 2.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_draws_every_hunt_inside_its_frame() {
        let hunt = |slope: f64| Hunt {
            curve: (0..=60).map(|k| (f64::from(k), slope * f64::from(k).sqrt())).collect(),
            summary: Value::Null,
        };
        let plot = svg(&[hunt(900.0), hunt(800.0)], &[hunt(500.0)], 60.0);
        assert_eq!(plot.matches("<polyline").count(), 3);
        for points in plot.split("points='").skip(1).map(|p| p.split('\'').next().unwrap_or("")) {
            for (x, y) in points.split(' ').filter_map(|p| p.split_once(',')) {
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((0.0..=720.0).contains(&x) && (0.0..=360.0).contains(&y), "{x},{y}");
            }
        }
    }

    #[test]
    fn points_are_read_off_the_curve_at_a_time() {
        let h = Hunt { curve: vec![(0.5, 10.0), (1.5, 20.0), (3.0, 25.0)], summary: Value::Null };
        assert_eq!(
            [points_at(&h, 0.1), points_at(&h, 1.0), points_at(&h, 2.0), points_at(&h, 9.0)],
            [0.0, 10.0, 20.0, 25.0]
        );
    }
}
