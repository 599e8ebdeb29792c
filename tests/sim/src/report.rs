//! The report of a run: `report.md` (tables, pass lines), `figures.json`
//! (the raw figures), and PNG plots: latency CDF, delivery over time,
//! score drift, mesh stability.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::analysis::{CHECKS, Figures};
use crate::scenario::Scenario;

/// A pass line's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The check.
    pub check: String,
    /// What it compares.
    pub meaning: String,
    /// The bound.
    pub bound: f64,
    /// The measured figure (`None`: nothing to measure, a FAIL).
    pub figure: Option<f64>,
    /// PASS or FAIL.
    pub pass: bool,
}

/// Evaluates the scenario's pass lines against the figures.
pub fn verdicts(scenario: &Scenario, figures: &Figures) -> Vec<Verdict> {
    scenario
        .pass
        .iter()
        .map(|line| {
            let (meaning, at_least) = CHECKS
                .iter()
                .find(|(name, _, _)| *name == line.check)
                .map_or(("", false), |(_, m, at_least)| (*m, *at_least));
            let meaning = meaning.to_owned();
            let figure = figures.checks.get(&line.check).copied();
            let pass = figure.is_some_and(|f| if at_least { f >= line.bound } else { f <= line.bound });
            Verdict {
                check: line.check.clone(),
                meaning,
                bound: line.bound,
                figure,
                pass,
            }
        })
        .collect()
}

fn fmt(value: f64) -> String {
    if value.is_infinite() {
        "never".into()
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Writes `report.md`, `figures.json` and the plots into `dir`.
pub fn write(
    dir: &Path,
    scenario: &Scenario,
    roles: &[(String, usize)],
    figures: &Figures,
    verdicts: &[Verdict],
    wall_s: f64,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let json = serde_json::json!({
        "scenario": scenario,
        "roles": roles,
        "figures": figures,
        "verdicts": verdicts,
        "latencies_ms": figures.latencies,
    });
    std::fs::write(dir.join("figures.json"), serde_json::to_string_pretty(&json)?)?;
    let plots = plot_all(dir, figures);

    let mut md = String::new();
    let _ = writeln!(md, "# Simulation `{}`\n\n{}\n", scenario.name, scenario.description);
    let passed = verdicts.iter().filter(|v| v.pass).count();
    let _ = writeln!(
        md,
        "**{passed} of {} pass lines pass.** Seed {}, {} s ({} s warm-up), wall time {wall_s:.0} s.\n",
        verdicts.len(),
        scenario.seed,
        scenario.duration_s,
        scenario.warmup_s
    );
    let _ = writeln!(
        md,
        "## Pass lines\n\n| check | meaning | bound | figure | verdict |\n|---|---|---|---|---|"
    );
    for v in verdicts {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} |",
            v.check,
            v.meaning,
            fmt(v.bound),
            v.figure.map_or("not measured".into(), fmt),
            if v.pass { "PASS" } else { "FAIL" }
        );
    }
    let _ = writeln!(md, "\n## Network\n\n| role | nodes |\n|---|---|");
    for (role, count) in roles {
        let _ = writeln!(md, "| {role} | {count} |");
    }
    let _ = writeln!(
        md,
        "\nLinks: {} dials per node (random graph), jitter {:.0} % of the one-way delay, {} Mbit/s upload per node, \
         placement over six regions with measured inter-region round trips (see `tests/sim/src/regions.rs`).",
        scenario.links_per_node,
        scenario.jitter * 100.0,
        scenario.upload_mbps
    );
    let _ = writeln!(
        md,
        "\n## Propagation per topic\n\n| topic | messages | mean bytes | delivery % | p50 ms | p95 ms | p99 ms | shortest p95 ms | reach 90/99/100 % (median ms) | duplicates/msg | accepted / ignored / rejected |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (topic, t) in &figures.topics {
        let _ = writeln!(
            md,
            "| {topic} | {} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {} / {} / {} | {} | {} / {} / {} |",
            t.messages,
            t.mean_bytes,
            t.delivery_percent,
            t.latency_ms.p50,
            t.latency_ms.p95,
            t.latency_ms.p99,
            t.shortest_ms.p95,
            fmt(t.reach_ms[0]),
            fmt(t.reach_ms[1]),
            fmt(t.reach_ms[2]),
            t.duplicates.map_or("-".into(), |d| format!("{d:.2}")),
            t.verdicts[0],
            t.verdicts[1],
            t.verdicts[2],
        );
    }
    let l = &figures.latency_ms;
    let _ = writeln!(
        md,
        "\nAll topics: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms over {} receipts; shortest-path p95 {:.0} ms.",
        l.p50, l.p95, l.p99, l.n, figures.shortest_ms.p95
    );
    let f = &figures.finality_ms;
    let _ = writeln!(
        md,
        "\n## Chain\n\nHeight {}, {:.2} blocks/s, finality p50 {:.0} ms / p95 {:.0} ms / p99 {:.0} ms, forks {}.",
        figures.height, figures.blocks_per_s, f.p50, f.p95, f.p99, figures.forks
    );
    let _ = writeln!(
        md,
        "\n## Meshes\n\n| topic | degree p50 | p95 | max |\n|---|---|---|---|"
    );
    for (topic, d) in &figures.mesh_degree {
        let _ = writeln!(md, "| {topic} | {:.0} | {:.0} | {:.0} |", d.p50, d.p95, d.max);
    }
    let _ = writeln!(
        md,
        "\nGrafts + prunes per node per minute (mesh changes between samples): {:.2}.",
        figures.mesh_changes_per_node_min
    );
    if !figures.never_forward_negative_s.is_empty() {
        let _ = writeln!(
            md,
            "\nAdversaries, longest time holding a mesh slot at an honest node with a score ≥ 0, per topic: {}.",
            figures
                .never_forward_negative_s
                .iter()
                .map(|(topic, s)| format!(
                    "{topic} {}",
                    if s.is_finite() {
                        format!("{s:.1} s")
                    } else {
                        "never".into()
                    }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !figures.forgery_neighbours.is_empty() {
        let _ = writeln!(
            md,
            "\n## Forgeries\n\nEvery honest node that received a forgery straight from an invalid publisher: when the \
             first arrived, how many arrived up to the node's ban of the publisher (by verdict), when it banned it, and \
             the first per-second sample with its GossipSub score of the publisher below the graylist (seconds from \
             the turn).\n\n| forger | node | first forgery after | forgeries before the ban (verdicts) | banned after | graylisted after |\n|---|---|---|---|---|---|"
        );
        for n in &figures.forgery_neighbours {
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} s | {} ({}) | {} | {} |",
                short(&n.forger),
                n.node,
                n.first_forgery_s,
                n.before_ban,
                n.verdicts_before_ban
                    .iter()
                    .map(|(label, count)| format!("{label} {count}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                n.banned_s.map_or("never".into(), |s| format!("{s:.2} s")),
                n.graylisted_s.map_or("-".into(), |s| format!("{s:.2} s")),
            );
        }
    }
    if !figures.flooders.is_empty() {
        let _ = writeln!(
            md,
            "\n## Flood\n\nWhat each flooder published after it turned, and what each honest neighbour got from it: \
             queued by the flooder, dropped by its GossipSub (the node did not read them in time), received by the node's \
             inbound policy, when the first arrived, the rate received from then until the ban, the first ban, how many \
             bans (a flooder comes back when one ends), what reached the node while the first ban lasted, how soon \
             after it ended the flooder was cut again, and the node's GossipSub score of the flooder.\n\n| flooder | published | refused | reconnections |\n|---|---|---|---|"
        );
        for f in &figures.flooders {
            let refused = f
                .refused
                .iter()
                .map(|(e, n)| format!("{e} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                short(&f.flooder),
                f.published,
                refused,
                f.reconnected
            );
        }
        let _ = writeln!(
            md,
            "\n| flooder | node | sent | dropped | received (before the ban) | first after | received/s | banned after | bans | received while banned | cut again after the ban | score at turn / lowest |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for n in &figures.flood_neighbours {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} ({}) | {:.2} s | {:.0} | {} | {} | {} | {} | {} / {} |",
                short(&n.flooder),
                n.node,
                n.sent,
                n.dropped,
                n.receipts,
                n.before_ban,
                n.first_receipt_s,
                n.rate_per_s,
                n.banned_s.map_or("never".into(), |s| format!("{s:.2} s")),
                n.bans,
                n.during_ban,
                n.cut_again_s.map_or("-".into(), |s| format!("{s:.2} s")),
                n.score_at_turn.map_or("-".into(), |s| format!("{s:.1}")),
                n.lowest_score.map_or("-".into(), |s| format!("{s:.1}"))
            );
        }
    }
    let p = &figures.per_node;
    let _ = writeln!(
        md,
        "\n## Resources per node\n\nAll nodes share one process on this 2-core machine; figures are the process totals divided by the node count.\n\n\
         | CPU (% of a core) | memory (MiB) | upload (kB/s) | download (kB/s) |\n|---|---|---|---|\n| {:.1} | {:.1} | {:.1} | {:.1} |",
        p.cpu_percent, p.memory_mib, p.upload_kbps, p.download_kbps
    );
    let _ = writeln!(md, "\n## Plots\n");
    for (file, title) in plots {
        let _ = writeln!(md, "![{title}]({file})\n");
    }
    let _ = writeln!(
        md,
        "## Definitions\n\nSee the module docs of `tests/sim/src/analysis.rs`: delivery counts first arrivals at honest nodes that were up \
         from publication until 5 s after; latency is receipt minus publication; duplicates come from GossipSub's own counters."
    );
    std::fs::write(dir.join("report.md"), md)?;
    Ok(())
}

/// Registers a TrueType font for plot labels (Debian's DejaVu, installed by
/// `scripts/setup`); without one the plots have no text.
fn font() -> bool {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FONT.get_or_init(|| {
        let Ok(bytes) = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf") else {
            return false;
        };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

/// A plot: file, title, x-axis label, series, series names.
type Plot<'a> = (&'a str, &'a str, &'a str, Vec<Vec<(f64, f64)>>, Vec<&'a str>);

fn plot_all(dir: &Path, figures: &Figures) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut sorted = figures.latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let cdf: Vec<(f64, f64)> = sorted
        .iter()
        .enumerate()
        .map(|(i, l)| (*l, (i + 1) as f64 / sorted.len() as f64))
        .collect();
    let plots: Vec<Plot> = vec![
        (
            "latency_cdf.png",
            "Propagation latency CDF",
            "latency (ms)",
            vec![cdf],
            vec!["honest messages"],
        ),
        (
            "delivery.png",
            "Delivery over time",
            "time (s)",
            vec![figures.delivery_over_time.clone()],
            vec!["delivered %"],
        ),
        (
            "score_drift.png",
            "GossipSub score drift",
            "time (s)",
            vec![
                figures
                    .score_drift
                    .iter()
                    .filter_map(|(t, h, _)| h.map(|h| (*t, h)))
                    .collect(),
                figures
                    .score_drift
                    .iter()
                    .filter_map(|(t, _, a)| a.map(|a| (*t, a)))
                    .collect(),
            ],
            vec!["honest peers (mean)", "adversaries (mean)"],
        ),
        (
            "mesh.png",
            "Mesh stability (blocks)",
            "time (s)",
            vec![figures.mesh_over_time.clone()],
            vec!["mean mesh degree"],
        ),
    ];
    for (file, title, x_label, series, names) in plots {
        match plot(&dir.join(file), title, x_label, &series, &names) {
            Ok(()) => out.push((file.to_owned(), title.to_owned())),
            Err(error) => eprintln!("plot {file}: {error}"),
        }
    }
    out
}

fn plot(path: &Path, title: &str, x_label: &str, series: &[Vec<(f64, f64)>], names: &[&str]) -> Result<()> {
    let text = font();
    let points = series.iter().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points.clone() {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if (x1 - x0).abs() < f64::EPSILON {
        x1 = x0 + 1.0;
    }
    if (y1 - y0).abs() < f64::EPSILON {
        y1 = y0 + 1.0;
    }
    let pad = (y1 - y0) * 0.05;
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15).x_label_area_size(40).y_label_area_size(60);
    if text {
        builder.caption(title, ("sans-serif", 22));
    }
    let mut chart = builder
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc(x_label);
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    let colours = [BLUE, RED, GREEN, MAGENTA];
    for (k, (data, name)) in series.iter().zip(names).enumerate() {
        let colour = colours[k % colours.len()];
        let drawn = chart
            .draw_series(LineSeries::new(data.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if text {
            drawn
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// The last six characters of a PeerId (enough to tell a run's peers apart).
fn short(peer: &str) -> &str {
    peer.get(peer.len().saturating_sub(6)..).unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PassLine;

    fn scenario(lines: &[(&str, f64)]) -> Scenario {
        let mut s: Scenario =
            toml::from_str("name = \"t\"\ndescription = \"\"\nduration_s = 60\nvalidators = 1\n").unwrap();
        s.pass = lines
            .iter()
            .map(|(check, bound)| PassLine {
                check: (*check).into(),
                bound: *bound,
            })
            .collect();
        s
    }

    #[test]
    fn pass_lines_compare_in_their_direction_and_a_missing_figure_fails() {
        let s = scenario(&[
            ("delivery_min_percent", 99.9),
            ("forks", 0.0),
            ("flood_cut_s", 1.0),
            ("duplicates_per_large_message", 2.0),
        ]);
        let mut figures = Figures::default();
        figures.checks.insert("delivery_min_percent".into(), 99.95);
        figures.checks.insert("forks".into(), 1.0);
        let v = verdicts(&s, &figures);
        assert!(v[0].pass, "99.95 % ≥ 99.9 %");
        assert!(!v[1].pass, "one fork > 0");
        assert!(!v[2].pass && v[2].figure.is_none(), "not measured is a FAIL");
        figures.checks.insert("duplicates_per_large_message".into(), 2.5);
        assert!(
            !verdicts(&s, &figures)[3].pass,
            "2.5 duplicates > 2, although its meaning mentions ≥ 1 KB"
        );
        figures.checks.insert("delivery_min_percent".into(), 99.0);
        assert!(!verdicts(&s, &figures)[0].pass);
    }

    #[test]
    fn percentiles_of_a_known_sample() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = crate::analysis::percentiles(&values);
        assert_eq!((p.n, p.p50, p.p95, p.p99, p.max), (100, 51.0, 95.0, 99.0, 100.0));
        assert_eq!(crate::analysis::percentiles(&[]).n, 0);
    }
}
