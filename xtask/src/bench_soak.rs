//! `cargo xtask bench --soak-hours H`: the soak bench (`sim/benches/soak.rs`, one world run for `H`
//! simulated hours) and its plot of resident memory over simulated time, `docs/soak-rss.svg` (drawn here
//! as SVG by hand: two polylines and their axes need no plotting library).

use crate::workspace_root;

/// One sample: simulated hours, resident MiB, and what the world holds that could grow (`World::retained`).
struct Sample {
    hours: f64,
    rss_mib: f64,
    history_ops: f64,
    trace_lines: f64,
    unknown_carried: f64,
    unanswered: f64,
    written_indexes: f64,
}

pub(crate) fn section(hours: u64) -> Result<String, String> {
    let minutes = (hours * 60 / 48).max(1).to_string();
    let hours_arg = hours.to_string();
    let args =
        ["bench", "--quiet", "-p", "sim", "--bench", "soak", "--", "--hours", &hours_arg, "--sample-minutes", &minutes];
    let text = crate::bench::cargo_stdout(&args)?;
    let samples: Vec<Sample> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("sim_hours"))
        .filter_map(|l| {
            let f: Vec<f64> = l.split('\t').map(|x| x.parse().unwrap_or(f64::NAN)).collect();
            (f.len() == 9).then(|| Sample {
                hours: f[0],
                rss_mib: f[1],
                history_ops: f[4],
                trace_lines: f[5],
                unknown_carried: f[6],
                unanswered: f[7],
                written_indexes: f[8],
            })
        })
        .collect();
    let outcome =
        text.lines().find(|l| l.starts_with("# outcome")).unwrap_or("# outcome: none").trim_start_matches("# ");
    if samples.len() < 2 {
        return Err(format!("the soak printed {} samples", samples.len()));
    }
    std::fs::create_dir_all(workspace_root().join("docs")).map_err(|e| e.to_string())?;
    std::fs::write(workspace_root().join("docs/soak-rss.svg"), svg(&samples, hours)).map_err(|e| e.to_string())?;
    // The bounds the soak reports (`# name: N` lines).
    let bound = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("# {name}: ")))
            .map(str::to_owned)
            .ok_or_else(|| format!("the soak did not print its {name}"))
    };
    let last = samples.last().expect("two samples");
    // Warm-up is the first half: the log-shape records fill their horizon in about an hour and a half,
    // the trace its cap in about four, the fault recorder its cap (then lets go of its plan) in about
    // eleven. Flat: the second half grows by under 2% of its starting memory.
    let warm = samples.iter().find(|s| s.hours >= last.hours / 2.0).unwrap_or(&samples[1]);
    let slope = (last.rss_mib - warm.rss_mib) / (last.hours - warm.hours).max(1e-9);
    let peak = samples.iter().map(|s| s.rss_mib).fold(0.0, f64::max);
    let verdict = if last.rss_mib - warm.rss_mib < warm.rss_mib * 0.02 { "flat" } else { "not flat" };
    let mut rows = String::new();
    let step = (samples.len() / 8).max(1);
    for s in samples.iter().step_by(step).chain(std::iter::once(last)) {
        rows.push_str(&format!(
            "| {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            s.hours, s.rss_mib, s.history_ops, s.unknown_carried, s.unanswered, s.trace_lines, s.written_indexes
        ));
    }
    Ok(format!(
        "\n## sim: memory over a long run (the soak)\n\n\
         `cargo bench -p sim --bench soak -- --hours {hours}`: one world (three nodes, a put/get/cas every 20 ms \
         on 8 keys with values up to 1 KiB, a snapshot every 50 applied entries, a power loss, VM crash, WAL \
         restart or isolation about every 2 s) run for {hours} simulated hours; the process's resident memory \
         (`VmRSS`) sampled as simulated time passes. Goal: flat after warm-up (the first half). Result \
         ({outcome}): **{verdict}** — {:.0} MiB at the half, {:.0} MiB at the end ({slope:+.2} MiB per \
         simulated hour), {peak:.0} MiB at most.\n\n\
         What keeps it so, each bounded by the work in flight rather than the run's length: the client \
         history is judged in windows as it grows (`linearizability::windows`; an operation with no reply \
         is let go once its command can never commit, `world::fates`); the log-shape checker remembers the \
         last {} indexes each member wrote; the trace keeps its last {} notable lines (the trace hash \
         covers all); the fault recorder keeps at most {} faults, then lets go of its plan (such a run \
         cannot be shrunk as one plan).\n\n\
         ![resident memory over simulated time](docs/soak-rss.svg)\n\n\
         | simulated hours | resident MiB | history operations held | of them unknown, carried | unanswered requests kept | trace lines | log-shape indexes |\n\
         |---|---|---|---|---|---|---|\n{rows}",
        warm.rss_mib,
        last.rss_mib,
        bound("written horizon indexes")?,
        bound("trace keep lines")?,
        bound("max recorded faults")?,
    ))
}

/// The plot: resident MiB (and history operations, scaled to the same height) over simulated hours.
fn svg(samples: &[Sample], hours: u64) -> String {
    let (w, h, left, bottom, top, right) = (720.0, 360.0, 70.0, 40.0, 30.0, 20.0);
    let max_rss = samples.iter().map(|s| s.rss_mib).fold(1.0, f64::max) * 1.1;
    let max_ops = samples.iter().map(|s| s.history_ops).fold(1.0, f64::max) * 1.1;
    let span = (hours as f64).max(samples.last().map_or(1.0, |s| s.hours));
    let x = |hours: f64| left + hours / span * (w - left - right);
    let y = |v: f64, max: f64| h - bottom - v / max * (h - bottom - top);
    let line = |f: &dyn Fn(&Sample) -> f64, max: f64| {
        samples.iter().map(|s| format!("{:.1},{:.1}", x(s.hours), y(f(s), max))).collect::<Vec<_>>().join(" ")
    };
    let mut ticks = String::new();
    for k in 0..=4 {
        let v = max_rss * f64::from(k) / 4.0;
        ticks.push_str(&format!(
            "<line x1='{left}' x2='{}' y1='{y:.1}' y2='{y:.1}' stroke='#eee'/><text x='{}' y='{:.1}' text-anchor='end' font-size='11'>{v:.0}</text>",
            w - right,
            left - 6.0,
            y(v, max_rss) + 4.0,
            y = y(v, max_rss)
        ));
        let t = span * f64::from(k) / 4.0;
        let digits = if span < 8.0 { 1 } else { 0 };
        ticks.push_str(&format!(
            "<text x='{:.1}' y='{}' text-anchor='middle' font-size='11'>{t:.digits$} h</text>",
            x(t),
            h - bottom + 16.0
        ));
    }
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif'>\
         <rect width='100%' height='100%' fill='white'/>{ticks}\
         <line x1='{left}' y1='{}' x2='{}' y2='{}' stroke='#333'/><line x1='{left}' y1='{top}' x2='{left}' y2='{}' stroke='#333'/>\
         <polyline fill='none' stroke='#bbb' stroke-width='1.5' stroke-dasharray='4 3' points='{}'/>\
         <polyline fill='none' stroke='#1f6feb' stroke-width='2' points='{}'/>\
         <text x='{left}' y='18' font-size='13'>resident MiB (blue) and client history operations held (grey, to {:.0}) by simulated hour</text>\
         <text x='14' y='{}' font-size='11' transform='rotate(-90 14 {})'>MiB</text></svg>\n",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom,
        line(&|s| s.history_ops, max_ops),
        line(&|s| s.rss_mib, max_rss),
        max_ops / 1.1,
        h / 2.0,
        h / 2.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_draws_both_lines_inside_its_frame() {
        let samples: Vec<Sample> = (0..=8)
            .map(|k| Sample {
                hours: f64::from(k) / 4.0,
                rss_mib: 3.0 + 55.0 * f64::from(k) / 4.0,
                history_ops: 86_000.0 * f64::from(k),
                trace_lines: 0.0,
                unknown_carried: 0.0,
                unanswered: 0.0,
                written_indexes: 0.0,
            })
            .collect();
        let plot = svg(&samples, 2);
        assert_eq!(plot.matches("<polyline").count(), 2);
        // Every point lies inside the 720 × 360 frame.
        for points in plot.split("points='").skip(1).map(|p| p.split('\'').next().unwrap_or("")) {
            for (x, y) in points.split(' ').filter_map(|p| p.split_once(',')) {
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((0.0..=720.0).contains(&x) && (0.0..=360.0).contains(&y), "{x},{y}");
            }
        }
        if let Ok(out) = std::env::var("SOAK_SVG_OUT") {
            std::fs::write(out, plot).unwrap();
        }
    }
}
