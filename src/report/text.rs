//! The text summary of a boot: the slowest modules, the critical path,
//! worker busy and idle time, queueing, device waits, the lower bound.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::format;
use std::prelude::rust_2021::*;
use std::string::ToString;

use super::analysis::Analysis;
use super::decode::Event;
use crate::plan::trace::result;
use crate::plan::Plan;

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
            e.end(),
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
            e.end(),
            e.duration_ms(),
            gap,
            a.critical_via.get(k).copied().unwrap_or("-"),
            e.name,
            e.worker.map(|w| w.to_string()).unwrap_or_else(|| "-".into())
        );
        prev_end = e.end();
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
            e.cause.as_deref().unwrap_or("all modules"),
            e.result_name(),
            e.duration_ms(),
            e.start_ms.unwrap_or(0.0),
            e.end()
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
        "\nlower bound: critical path {:.1} ms, work {:.1} ms, serial {:.1} ms, max(critical path, serial, work / {}) = {:.1} ms (this trace's load times, the plan's edges, the serial parts as the plan splits each module)",
        a.bound_critical_ms,
        a.work_ms,
        a.serial_ms,
        a.lanes(),
        a.bound_ms()
    );
    let _ = writeln!(o, "  longest chain: {}", a.bound_chain.join(" -> "));
    if a.bound_ms() > 0.0 {
        let _ = writeln!(o, "  this run: {:.1} ms = {:.2} x the bound", a.makespan_ms, a.makespan_ms / a.bound_ms());
    }
    o
}

