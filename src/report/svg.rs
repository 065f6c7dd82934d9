//! The SVG timeline of a boot (hand-written SVG): one lane per worker, one
//! bar per module coloured by its result, device waits in their own lane,
//! the critical path outlined and linked, a time axis.

use std::fmt::Write;
use std::format;
use std::prelude::rust_2021::*;
use std::string::ToString;

use super::analysis::Analysis;
use super::decode::Event;
use crate::plan::trace::result;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Fill colour of a bar.
pub fn colour(e: &Event) -> &'static str {
    if e.is_wait {
        return if e.result == result::TIMED_OUT { "#8e24aa" } else { "#42a5f5" };
    }
    if e.result & result::STUCK_FLAG != 0 {
        return "#ffb300";
    }
    match e.result {
        result::LOADED => "#43a047",
        result::PRESENT => "#90a4ae",
        result::BUILTIN => "#cfd8dc",
        result::FAILED => "#e53935",
        result::STUCK => "#fb8c00",
        _ => "#9e9e9e",
    }
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) for about `n` ticks.
fn tick_step(span_ms: f64, n: f64) -> f64 {
    let raw = (span_ms / n).max(1e-3);
    let p = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= raw {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_time(ms: f64, step: f64) -> String {
    if step >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else if step >= 100.0 && ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if step >= 1.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Geometry of the SVG, shared with the tests through the output itself.
pub const SVG_LEFT: f64 = 110.0;
pub const SVG_LANE_H: f64 = 34.0;
pub const SVG_TOP: f64 = 56.0;

/// The SVG timeline.
pub fn svg(a: &Analysis) -> String {
    let width = 1400.0;
    let right = 20.0;
    let plot_w = width - SVG_LEFT - right;
    let has_waits = a.events.iter().any(|e| e.is_wait && e.started());
    let lanes = a.workers.len() + usize::from(has_waits);
    let lane_of = |e: &Event| -> Option<usize> {
        if e.is_wait {
            has_waits.then_some(a.workers.len())
        } else {
            e.worker.and_then(|w| a.workers.iter().position(|&x| x == w))
        }
    };
    let span = if a.makespan_ms > 0.0 { a.makespan_ms } else { 1.0 };
    let x = |ms: f64| SVG_LEFT + ms / span * plot_w;
    let plot_h = lanes.max(1) as f64 * SVG_LANE_H;
    let axis_y = SVG_TOP + plot_h;
    let legend_y = axis_y + 40.0;
    let not_started: Vec<String> = a
        .events
        .iter()
        .filter(|e| !e.started())
        .map(|e| format!("{} ({})", e.name, e.result_name()))
        .collect();
    let height = legend_y + if not_started.is_empty() { 30.0 } else { 50.0 };
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">"#
    );
    let _ = writeln!(o, r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##);
    let title = format!(
        "parmod: {} modules, {} workers (jobs {}), {:.1} ms; critical path marked in black",
        a.events.iter().filter(|e| !e.is_wait && e.started()).count(),
        a.workers.len(),
        a.jobs,
        a.makespan_ms
    );
    let _ = writeln!(o, r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#, esc(&title));
    // Lane backgrounds and labels.
    for l in 0..lanes {
        let y = SVG_TOP + l as f64 * SVG_LANE_H;
        let label = if l < a.workers.len() { format!("worker {}", a.workers[l]) } else { "waits".to_string() };
        let fill = if l % 2 == 0 { "#f5f5f5" } else { "#ececec" };
        let _ = writeln!(
            o,
            r#"<rect class="lane" x="{SVG_LEFT}" y="{y}" width="{plot_w}" height="{SVG_LANE_H}" fill="{fill}"/>"#
        );
        let _ = writeln!(
            o,
            r#"<text class="lane-label" x="{}" y="{}" text-anchor="end" font-size="12">{}</text>"#,
            SVG_LEFT - 8.0,
            y + SVG_LANE_H / 2.0 + 4.0,
            label
        );
    }
    // Time axis with grid lines.
    let step = tick_step(span, 10.0);
    let mut t = 0.0;
    while t <= span + step * 1e-9 {
        let xx = x(t);
        let _ = writeln!(
            o,
            r##"<line x1="{xx:.1}" y1="{SVG_TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#bdbdbd" stroke-width="0.5"/>"##,
            axis_y + 5.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            axis_y + 18.0,
            fmt_time(t, step)
        );
        t += step;
    }
    let _ = writeln!(
        o,
        r##"<line x1="{SVG_LEFT}" y1="{axis_y}" x2="{:.1}" y2="{axis_y}" stroke="#424242" stroke-width="1"/>"##,
        SVG_LEFT + plot_w
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">time since parmod started</text>"#,
        SVG_LEFT + plot_w,
        axis_y + 32.0
    );
    // Bars: background of the lane, then a label when it fits, a tooltip always.
    for (i, e) in a.events.iter().enumerate() {
        let (Some(l), Some(s)) = (lane_of(e), e.start_ms) else { continue };
        let y = SVG_TOP + l as f64 * SVG_LANE_H + 4.0;
        let h = SVG_LANE_H - 8.0;
        let x0 = x(s);
        let w = (x(e.end()) - x0).max(1.0);
        let crit = !e.is_wait && a.is_critical(i);
        let stroke = r##" stroke="#ffffff" stroke-width="0.5""##;
        let cls = if e.is_wait { "wait" } else if crit { "module critical" } else { "module" };
        let tip = format!(
            "{}{}: {}, {:.1} ms ({:.1} - {:.1} ms){}",
            if e.is_wait { "wait " } else { "" },
            e.name,
            e.result_name(),
            e.duration_ms(),
            s,
            e.end(),
            if crit { ", critical path" } else { "" }
        );
        let pattern = if e.is_wait { r#" fill-opacity="0.75""# } else { "" };
        let _ = writeln!(
            o,
            r#"<rect class="{cls}" x="{x0:.2}" y="{y:.1}" width="{w:.2}" height="{h:.1}" fill="{}"{pattern}{stroke}><title>{}</title></rect>"#,
            colour(e),
            esc(&tip)
        );
        if crit {
            // The critical path: a black strip along the top of the bar.
            let _ = writeln!(
                o,
                r##"<rect class="critical-mark" x="{x0:.2}" y="{:.1}" width="{w:.2}" height="3" fill="#000000"/>"##,
                y - 3.5
            );
        }
        // ~6.2 px per character at 11 px.
        if w >= e.name.len() as f64 * 6.2 + 6.0 {
            let _ = writeln!(
                o,
                r#"<text class="bar-label" x="{:.2}" y="{:.1}" fill="{}">{}</text>"#,
                x0 + 3.0,
                y + h / 2.0 + 4.0,
                if e.result == result::LOADED || e.result == result::FAILED || e.is_wait { "#ffffff" } else { "#000000" },
                esc(&e.name)
            );
        }
    }
    // The critical path: links from each module's end to the next one's start.
    for pair in a.critical.windows(2) {
        let (p, q) = (&a.events[pair[0]], &a.events[pair[1]]);
        let (Some(lp), Some(lq)) = (lane_of(p), lane_of(q)) else { continue };
        let y1 = SVG_TOP + lp as f64 * SVG_LANE_H + 2.0;
        let y2 = SVG_TOP + lq as f64 * SVG_LANE_H + 2.0;
        let _ = writeln!(
            o,
            r##"<line class="critical-link" x1="{:.2}" y1="{y1:.1}" x2="{:.2}" y2="{y2:.1}" stroke="#000000" stroke-width="1.2" stroke-dasharray="3,2"/>"##,
            x(p.end()),
            x(q.start_ms.unwrap_or(q.end()))
        );
    }
    // Legend.
    let mut lx = SVG_LEFT;
    let mut entries: Vec<(&str, &str)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for e in a.events.iter().filter(|e| e.started()) {
        let c = colour(e);
        if seen.insert(c) {
            entries.push((c, if e.is_wait { if e.result == result::TIMED_OUT { "wait timed out" } else { "wait" } } else { legend_name(e) }));
        }
    }
    for (c, label) in entries {
        let _ = writeln!(o, r##"<rect x="{lx}" y="{:.1}" width="14" height="12" fill="{c}" stroke="#616161" stroke-width="0.5"/>"##, legend_y - 10.0);
        let _ = writeln!(o, r#"<text x="{}" y="{legend_y}">{label}</text>"#, lx + 18.0);
        lx += 30.0 + label.len() as f64 * 6.5;
    }
    let _ = writeln!(o, r##"<rect x="{lx}" y="{:.1}" width="14" height="3" fill="#000000"/>"##, legend_y - 6.0);
    let _ = writeln!(o, r#"<text x="{}" y="{legend_y}">critical path (strip above the bars)</text>"#, lx + 18.0);
    if !not_started.is_empty() {
        let _ = writeln!(
            o,
            r#"<text class="not-started" x="{SVG_LEFT}" y="{}">not started: {}</text>"#,
            legend_y + 22.0,
            esc(&not_started.join(", "))
        );
    }
    o.push_str("</svg>\n");
    o
}

fn legend_name(e: &Event) -> &'static str {
    if e.result & result::STUCK_FLAG != 0 {
        return "loaded late (stuck)";
    }
    match e.result {
        result::LOADED => "loaded",
        result::PRESENT => "already present",
        result::BUILTIN => "built in",
        result::FAILED => "failed",
        result::STUCK => "stuck",
        _ => "other",
    }
}

