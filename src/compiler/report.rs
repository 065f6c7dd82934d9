//! `parmod-plan report --plan PLAN TRACE [--svg FILE] [--chrome-trace FILE]`:
//! what a boot did, from a `parmod --trace` file and the plan it ran.
//!
//! * a text summary: the slowest modules, the critical path actually taken
//!   (from the module that ended last, back through the dependency that ended
//!   last before each start), worker busy and idle time, queueing (ready but
//!   no free worker), device waits, and the lower bound the trace's own load
//!   times allow (longest dependency chain, total work / workers);
//! * an SVG timeline: one lane per worker, one bar per module coloured by its
//!   result, device waits in their own lane, the critical path outlined and
//!   linked, a time axis (hand-written SVG);
//! * a Chrome trace-event JSON file (`{"traceEvents": [...]}`), for Perfetto
//!   or chrome://tracing: one complete event (`ph: "X"`, µs) per module load
//!   and per wait, one thread per worker.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::format;
use std::path::PathBuf;
use std::prelude::rust_2021::*;
use std::string::ToString;

use serde_json::{json, Value};

use crate::compiler::error::{read, Error, Result};
use crate::plan::trace::{self, kind, result, NO_CAUSE, NO_WORKER};
use crate::plan::Plan;

/// One trace record with names and times relative to parmod's start (ms).
#[derive(Clone, Debug)]
pub struct Event {
    /// Module index (or wait index for a wait).
    pub index: u32,
    pub name: String,
    pub is_wait: bool,
    /// For a wait: the module it follows.
    pub after: Option<String>,
    pub result: u8,
    pub errno: i32,
    pub worker: Option<u16>,
    /// None when the record never started.
    pub start_ms: Option<f64>,
    pub end_ms: f64,
}

impl Event {
    pub fn started(&self) -> bool {
        self.start_ms.is_some()
    }
    pub fn duration_ms(&self) -> f64 {
        self.start_ms.map(|s| (self.end_ms - s).max(0.0)).unwrap_or(0.0)
    }
    fn result_name(&self) -> String {
        let mut r = result::name(self.result).to_string();
        if self.result & result::STUCK_FLAG != 0 {
            r.push_str("+stuck");
        }
        r
    }
}

/// Everything the three outputs need, computed once.
pub struct Analysis {
    pub jobs: u16,
    pub simulated: bool,
    pub checksum_matches: bool,
    pub events: Vec<Event>,
    /// Module index -> position in `events` (module records only).
    by_module: BTreeMap<u32, usize>,
    /// Positions in `events`, first to last.
    pub critical: Vec<usize>,
    /// For each entry of `critical`, what it waited for before it started:
    /// "start" (the first), "dependency", or "worker" (a busy worker).
    pub critical_via: Vec<&'static str>,
    /// Worker lanes, sorted.
    pub workers: Vec<u16>,
    pub makespan_ms: f64,
    /// From the trace's own load times and the plan's edges.
    pub bound_critical_ms: f64,
    pub bound_chain: Vec<String>,
    pub work_ms: f64,
}

fn name_bytes(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decode `trace` against `plan` and compute the critical path and bounds.
pub fn analyse(plan: &Plan<'_>, trace_bytes: &[u8]) -> std::result::Result<Analysis, String> {
    let (h, recs) = trace::parse(trace_bytes).map_err(|e| e.to_string())?;
    let rel = |ns: u64| ns.saturating_sub(h.t0_ns) as f64 / 1e6;
    let mod_name = |i: u32| plan.module(i).map(|m| name_bytes(m.name())).unwrap_or_else(|| format!("#{i}"));
    let mut events = Vec::new();
    let mut by_module = BTreeMap::new();
    for r in recs {
        let is_wait = r.kind == kind::WAIT;
        let name = if is_wait {
            plan.wait(r.index).map(|w| name_bytes(w.path())).unwrap_or_else(|| format!("wait #{}", r.index))
        } else {
            mod_name(r.index)
        };
        let start_ms = (r.start_ns != 0).then(|| rel(r.start_ns));
        let mut end_ms = if r.end_ns != 0 { rel(r.end_ns) } else { start_ms.unwrap_or(0.0) };
        if let Some(s) = start_ms {
            end_ms = end_ms.max(s);
        }
        if !is_wait {
            by_module.insert(r.index, events.len());
        }
        events.push(Event {
            index: r.index,
            name,
            is_wait,
            after: (is_wait && r.cause != NO_CAUSE).then(|| mod_name(r.cause)),
            result: r.result,
            errno: r.errno,
            worker: (r.worker != NO_WORKER).then_some(r.worker),
            start_ms,
            end_ms,
        });
    }
    let mut workers: Vec<u16> = events.iter().filter(|e| e.started() && !e.is_wait).filter_map(|e| e.worker).collect();
    workers.sort_unstable();
    workers.dedup();
    let makespan_ms = events.iter().filter(|e| e.started()).map(|e| e.end_ms).fold(0.0, f64::max);

    // The path actually taken: from the module that ended last, back through
    // what it waited for: the dependency (hard or soft) that ended last
    // before its start, or, when that came later, the module its worker was
    // busy with (it was ready but had no free worker).
    let mut critical = Vec::new();
    let mut critical_via = Vec::new();
    let last = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.started() && !e.is_wait)
        .max_by(|a, b| a.1.end_ms.total_cmp(&b.1.end_ms))
        .map(|(i, _)| i);
    if let Some(mut cur) = last {
        loop {
            critical.push(cur);
            let Some(m) = plan.module(events[cur].index) else { break };
            let start = events[cur].start_ms.unwrap_or(0.0);
            let before = |j: usize| j != cur && events[j].started() && events[j].end_ms <= start + 1e-6;
            let dep = m
                .waits_for()
                .filter_map(|e| by_module.get(&e.module).copied())
                .filter(|&j| before(j))
                .max_by(|&a, &b| events[a].end_ms.total_cmp(&events[b].end_ms));
            let busy = events[cur].worker.and_then(|w| {
                (0..events.len())
                    .filter(|&j| !events[j].is_wait && events[j].worker == Some(w) && before(j))
                    .max_by(|&a, &b| events[a].end_ms.total_cmp(&events[b].end_ms))
            });
            let prev = match (dep, busy) {
                (Some(d), Some(b)) if events[b].end_ms > events[d].end_ms + 1e-6 => Some((b, "worker")),
                (Some(d), _) => Some((d, "dependency")),
                (None, Some(b)) => Some((b, "worker")),
                (None, None) => None,
            };
            match prev {
                Some((p, via)) if !critical.contains(&p) => {
                    critical_via.push(via);
                    cur = p;
                }
                _ => break,
            }
        }
        critical_via.push("start");
        critical.reverse();
        critical_via.reverse();
    }

    // Lower bound from the measured load times: the longest chain of
    // dependencies (every module's time plus its heaviest predecessor's
    // chain; records are in load order, dependencies first) and the total.
    let n = plan.module_count() as usize;
    let mut dur = std::vec![0.0f64; n];
    for e in events.iter().filter(|e| !e.is_wait && e.started()) {
        if (e.index as usize) < n {
            dur[e.index as usize] = e.duration_ms();
        }
    }
    let work_ms: f64 = dur.iter().sum();
    let mut chain = std::vec![0.0f64; n];
    let mut from = std::vec![u32::MAX; n];
    for i in 0..n {
        let Some(m) = plan.module(i as u32) else { continue };
        let mut best = 0.0;
        for e in m.waits_for() {
            let d = e.module as usize;
            if d < i && chain[d] > best {
                best = chain[d];
                from[i] = e.module;
            }
        }
        chain[i] = best + dur[i];
    }
    let mut bound_chain = Vec::new();
    let mut bound_critical_ms = 0.0;
    if let Some((end, &v)) = chain.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) {
        bound_critical_ms = v;
        let mut i = end as u32;
        loop {
            bound_chain.push(mod_name(i));
            let f = from[i as usize];
            if f == u32::MAX {
                break;
            }
            i = f;
        }
        bound_chain.reverse();
    }
    Ok(Analysis {
        jobs: h.jobs,
        simulated: h.simulated,
        checksum_matches: h.plan_checksum == plan.checksum(),
        events,
        by_module,
        critical,
        critical_via,
        workers,
        makespan_ms,
        bound_critical_ms,
        bound_chain,
        work_ms,
    })
}

impl Analysis {
    /// When a module could have started: its dependencies' last end (0 without any).
    fn ready_ms(&self, plan: &Plan<'_>, ev: &Event) -> f64 {
        plan.module(ev.index)
            .map(|m| {
                m.waits_for()
                    .filter_map(|e| self.by_module.get(&e.module))
                    .map(|&j| self.events[j].end_ms)
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0)
    }

    fn is_critical(&self, i: usize) -> bool {
        self.critical.contains(&i)
    }

    /// The number of CPUs/workers the bound divides the work by.
    fn lanes(&self) -> usize {
        (self.jobs as usize).max(self.workers.len()).max(1)
    }

    pub fn bound_ms(&self) -> f64 {
        self.bound_critical_ms.max(self.work_ms / self.lanes() as f64)
    }
}

/// The text summary.
pub fn text(plan: &Plan<'_>, a: &Analysis) -> String {
    let mut o = String::new();
    let modules: Vec<&Event> = a.events.iter().filter(|e| !e.is_wait).collect();
    let waits: Vec<&Event> = a.events.iter().filter(|e| e.is_wait).collect();
    let _ = writeln!(
        o,
        "trace: {} modules, {} waits, jobs {}{}{}",
        modules.len(),
        waits.len(),
        a.jobs,
        if a.simulated { ", simulated" } else { "" },
        if a.checksum_matches { "" } else { " (WARNING: made with another plan; names may be wrong)" }
    );
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in &modules {
        *counts.entry(e.result_name()).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(o, "results: {}", counts.join(", "));
    let first = modules.iter().filter_map(|e| e.start_ms).fold(f64::INFINITY, f64::min);
    let _ = writeln!(
        o,
        "time: last end {:.1} ms after parmod started (first load started at {:.1} ms)",
        a.makespan_ms,
        if first.is_finite() { first } else { 0.0 }
    );

    let mut slow: Vec<&Event> = modules.iter().copied().filter(|e| e.started()).collect();
    slow.sort_by(|x, y| y.duration_ms().total_cmp(&x.duration_ms()).then_with(|| x.name.cmp(&y.name)));
    let _ = writeln!(o, "\nslowest modules:");
    for (k, e) in slow.iter().take(10).enumerate() {
        let _ = writeln!(
            o,
            "  {:2}. {:<24} {:9.1} ms  worker {:<3} {:>9.1} - {:<9.1} {}",
            k + 1,
            e.name,
            e.duration_ms(),
            e.worker.map(|w| w.to_string()).unwrap_or_else(|| "-".into()),
            e.start_ms.unwrap_or(0.0),
            e.end_ms,
            e.result_name()
        );
    }

    let _ = writeln!(
        o,
        "\ncritical path taken (from the module that ended last, back through the dependency that ended last,\n\
         or the module its worker was busy with when that ended later):"
    );
    let _ = writeln!(o, "  {:>9} {:>9} {:>9} {:>9}  {:<10}  module", "start_ms", "end_ms", "load_ms", "gap_ms", "after");
    let mut prev_end = 0.0;
    let (mut load_sum, mut gap_sum) = (0.0, 0.0);
    for (k, &i) in a.critical.iter().enumerate() {
        let e = &a.events[i];
        let s = e.start_ms.unwrap_or(0.0);
        let gap = (s - prev_end).max(0.0);
        load_sum += e.duration_ms();
        gap_sum += gap;
        let _ = writeln!(
            o,
            "  {:9.1} {:9.1} {:9.1} {:9.1}  {:<10}  {} (worker {})",
            s,
            e.end_ms,
            e.duration_ms(),
            gap,
            a.critical_via.get(k).copied().unwrap_or("-"),
            e.name,
            e.worker.map(|w| w.to_string()).unwrap_or_else(|| "-".into())
        );
        prev_end = e.end_ms;
    }
    let _ = writeln!(
        o,
        "  path: {} modules, {:.1} ms loading, {:.1} ms before/between them",
        a.critical.len(),
        load_sum,
        gap_sum
    );
    let by_worker = a.critical_via.iter().filter(|v| **v == "worker").count();
    if by_worker > 0 {
        let _ = writeln!(
            o,
            "  {by_worker} of its steps waited for a busy worker, not for a dependency: the run was bound by workers"
        );
    }

    let _ = writeln!(o, "\nworkers (over {:.1} ms):", a.makespan_ms);
    let mut idle_total = 0.0;
    for &w in &a.workers {
        let mine: Vec<&Event> = modules.iter().copied().filter(|e| e.worker == Some(w) && e.started()).collect();
        let busy: f64 = mine.iter().map(|e| e.duration_ms()).sum();
        let idle = (a.makespan_ms - busy).max(0.0);
        idle_total += idle;
        let _ = writeln!(
            o,
            "  worker {w}: {} modules, busy {:.1} ms, idle {:.1} ms ({:.0} %)",
            mine.len(),
            busy,
            idle,
            if a.makespan_ms > 0.0 { 100.0 * idle / a.makespan_ms } else { 0.0 }
        );
    }
    let _ = writeln!(o, "  idle in all: {idle_total:.1} ms");

    // Queueing: ready (dependencies done) but not started yet.
    let mut queued: Vec<(f64, &Event)> = modules
        .iter()
        .copied()
        .filter(|e| e.started())
        .map(|e| ((e.start_ms.unwrap_or(0.0) - a.ready_ms(plan, e)).max(0.0), e))
        .collect();
    let total_q: f64 = queued.iter().map(|q| q.0).sum();
    queued.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.name.cmp(&y.1.name)));
    let top: Vec<String> = queued.iter().take(5).map(|(q, e)| format!("{} {:.1} ms", e.name, q)).collect();
    let _ = writeln!(
        o,
        "\nqueued (dependencies done, no free worker): {:.1} ms in all; longest: {}",
        total_q,
        if top.is_empty() { "none".to_string() } else { top.join(", ") }
    );

    let _ = writeln!(o, "\ndevice waits:{}", if waits.is_empty() { " none" } else { "" });
    for e in &waits {
        let _ = writeln!(
            o,
            "  {} (after {}): {}, {:.1} ms ({:.1} - {:.1})",
            e.name,
            e.after.as_deref().unwrap_or("all modules"),
            e.result_name(),
            e.duration_ms(),
            e.start_ms.unwrap_or(0.0),
            e.end_ms
        );
    }
    let notstarted: Vec<String> = modules
        .iter()
        .filter(|e| !e.started())
        .map(|e| format!("{} ({})", e.name, e.result_name()))
        .collect();
    if !notstarted.is_empty() {
        let _ = writeln!(o, "\nnot started: {}", notstarted.join(", "));
    }
    let failed: Vec<String> = modules
        .iter()
        .filter(|e| e.result & !result::STUCK_FLAG == result::FAILED)
        .map(|e| format!("{} (errno {})", e.name, e.errno))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(o, "failed: {}", failed.join(", "));
    }

    let _ = writeln!(
        o,
        "\nlower bound: critical path {:.1} ms, work {:.1} ms, max(critical path, work / {}) = {:.1} ms (this trace's load times, the plan's edges)",
        a.bound_critical_ms,
        a.work_ms,
        a.lanes(),
        a.bound_ms()
    );
    let _ = writeln!(o, "  longest chain: {}", a.bound_chain.join(" -> "));
    if a.bound_ms() > 0.0 {
        let _ = writeln!(o, "  this run: {:.1} ms = {:.2} x the bound", a.makespan_ms, a.makespan_ms / a.bound_ms());
    }
    o
}

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
        let w = (x(e.end_ms) - x0).max(1.0);
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
            e.end_ms,
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
            x(p.end_ms),
            x(q.start_ms.unwrap_or(q.end_ms))
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

/// The Chrome trace-event JSON (times in µs since parmod started).
pub fn chrome(a: &Analysis) -> Value {
    let wait_tid = a.workers.iter().copied().max().map(|w| w as u64 + 1).unwrap_or(0);
    let mut threads: Vec<(u64, String)> = a.workers.iter().map(|&w| (w as u64, format!("worker {w}"))).collect();
    if a.events.iter().any(|e| e.is_wait && e.started()) {
        threads.push((wait_tid, "waits".into()));
    }
    let mut ev: Vec<(u64, f64, Value)> = Vec::new();
    for (i, e) in a.events.iter().enumerate() {
        let Some(s) = e.start_ms else { continue };
        let tid = if e.is_wait {
            wait_tid
        } else {
            match e.worker {
                Some(w) => w as u64,
                None => continue,
            }
        };
        // µs, to the ns the trace has (no binary-fraction noise in the file).
        let ts = ((s * 1e6).round() / 1000.0).max(0.0);
        let dur = ((e.duration_ms() * 1e6).round() / 1000.0).max(0.0);
        let mut args = json!({
            "result": e.result_name(),
            "critical_path": !e.is_wait && a.is_critical(i),
        });
        if e.errno != 0 {
            args["errno"] = json!(e.errno);
        }
        if let Some(af) = &e.after {
            args["after"] = json!(af);
        }
        ev.push((
            tid,
            ts,
            json!({
                "name": e.name,
                "cat": if e.is_wait { "wait" } else { "module" },
                "ph": "X",
                "ts": ts,
                "dur": dur,
                "pid": 1,
                "tid": tid,
                "args": args,
            }),
        ));
    }
    ev.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
    let mut out = std::vec![json!({"name": "process_name", "ph": "M", "ts": 0, "pid": 1, "tid": 0, "args": {"name": "parmod"}})];
    for (tid, name) in threads {
        out.push(json!({"name": "thread_name", "ph": "M", "ts": 0, "pid": 1, "tid": tid, "args": {"name": name}}));
        out.push(json!({"name": "thread_sort_index", "ph": "M", "ts": 0, "pid": 1, "tid": tid, "args": {"sort_index": tid}}));
    }
    out.extend(ev.into_iter().map(|e| e.2));
    json!({ "traceEvents": out, "displayTimeUnit": "ms" })
}

pub const USAGE: &str = "  parmod-plan report --plan PLAN TRACE [--svg FILE] [--chrome-trace FILE]\n";

/// `parmod-plan report` (arguments after the command name).
pub fn run_cmd(args: &[String]) -> Result<i32> {
    let (mut plan_p, mut trace_p, mut svg_p, mut chrome_p): (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>, Option<PathBuf>) =
        (None, None, None, None);
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (k, inline) = match a.split_once('=') {
            Some((k, v)) if a.starts_with("--") => (k, Some(v.to_string())),
            _ => (a, None),
        };
        let val = |i: &mut usize| -> Result<PathBuf> {
            if let Some(v) = &inline {
                return Ok(PathBuf::from(v));
            }
            *i += 1;
            args.get(*i).map(PathBuf::from).ok_or_else(|| Error::Usage(format!("report: {k} needs a value")))
        };
        match k {
            "--plan" => plan_p = Some(val(&mut i)?),
            "--svg" => svg_p = Some(val(&mut i)?),
            "--chrome-trace" => chrome_p = Some(val(&mut i)?),
            "-h" | "--help" => {
                std::print!("usage:\n{USAGE}");
                return Ok(0);
            }
            _ if k.starts_with('-') && k != "-" => return Err(Error::Usage(format!("report: unknown option '{a}'"))),
            _ => {
                if trace_p.is_some() {
                    return Err(Error::Usage("report: only one TRACE".into()));
                }
                trace_p = Some(PathBuf::from(a));
            }
        }
        i += 1;
    }
    let plan_p = plan_p.ok_or_else(|| Error::Usage("report: --plan PLAN is required (the plan the trace was made with)".into()))?;
    let trace_p = trace_p.ok_or_else(|| Error::Usage("report: TRACE is required (a parmod --trace file)".into()))?;
    let pb = read(&plan_p)?;
    let plan = Plan::parse(&pb).map_err(|e| Error::Other(format!("{}: {e}", plan_p.display())))?;
    let tb = read(&trace_p)?;
    let a = analyse(&plan, &tb).map_err(|e| Error::Other(format!("{}: {e}", trace_p.display())))?;
    if !a.checksum_matches {
        std::eprintln!(
            "parmod-plan: warning: {} was made with another plan than {}: names may be wrong",
            trace_p.display(),
            plan_p.display()
        );
    }
    let write = |p: &PathBuf, data: &[u8]| -> Result<()> {
        std::fs::write(p, data).map_err(|e| Error::Other(format!("writing {}: {e}", p.display())))
    };
    if let Some(p) = &svg_p {
        write(p, svg(&a).as_bytes())?;
    }
    if let Some(p) = &chrome_p {
        let s = serde_json::to_string(&chrome(&a)).map_err(|e| Error::Other(format!("{}: {e}", p.display())))?;
        write(p, s.as_bytes())?;
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text(&plan, &a).as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Other(format!("writing to stdout: {e}"))),
        _ => Ok(0),
    }
}
