//! What a boot did, from its decoded trace and plan: the critical path
//! actually taken (from the module that ended last, back through the
//! dependency that ended last before each start, or the module its worker
//! was busy with), worker lanes, and the lower bound the trace's own load
//! times allow (the longest dependency chain, total work / workers).

use std::collections::BTreeMap;
use std::prelude::rust_2021::*;

use super::decode::{module_name, Decoded, Event};
use crate::plan::Plan;

/// Everything the three outputs need, computed once.
pub struct Analysis {
    pub jobs: u16,
    pub simulated: bool,
    pub checksum_matches: bool,
    pub events: Vec<Event>,
    /// Module index -> position in `events` (module records only).
    pub by_module: BTreeMap<u32, usize>,
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
    /// The serial parts of those load times: each split as the plan splits
    /// the module's weight (`serial_us / weight_us`). The kernel runs them
    /// one at a time, so no run is shorter than their sum.
    pub serial_ms: f64,
}

/// Compute the critical path and the bounds of a decoded trace.
pub fn analyse(plan: &Plan<'_>, d: Decoded) -> Analysis {
    let mod_name = |i: u32| module_name(plan, i);
    let events = d.events;
    let mut by_module = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if !e.is_wait {
            by_module.insert(e.index, i);
        }
    }
    let mut workers: Vec<u16> = events.iter().filter(|e| e.started() && !e.is_wait).filter_map(|e| e.worker).collect();
    workers.sort_unstable();
    workers.dedup();
    let makespan_ms = events.iter().filter(|e| e.started()).map(|e| e.end()).fold(0.0, f64::max);

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
        .max_by(|a, b| a.1.end().total_cmp(&b.1.end()))
        .map(|(i, _)| i);
    if let Some(mut cur) = last {
        loop {
            critical.push(cur);
            let Some(m) = plan.module(events[cur].index) else { break };
            let start = events[cur].start_ms.unwrap_or(0.0);
            let before = |j: usize| j != cur && events[j].started() && events[j].end() <= start + 1e-6;
            let dep = m
                .deps()
                .filter_map(|e| by_module.get(&e.module).copied())
                .filter(|&j| before(j))
                .max_by(|&a, &b| events[a].end().total_cmp(&events[b].end()));
            let busy = events[cur].worker.and_then(|w| {
                (0..events.len())
                    .filter(|&j| !events[j].is_wait && events[j].worker == Some(w) && before(j))
                    .max_by(|&a, &b| events[a].end().total_cmp(&events[b].end()))
            });
            let prev = match (dep, busy) {
                (Some(d), Some(b)) if events[b].end() > events[d].end() + 1e-6 => Some((b, "worker")),
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
    let serial_ms: f64 = (0..n)
        .filter_map(|i| plan.module(i as u32).map(|m| (i, m)))
        .filter(|(_, m)| m.weight_us() > 0)
        .map(|(i, m)| dur[i] * m.serial_us() as f64 / m.weight_us() as f64)
        .sum();
    let mut chain = std::vec![0.0f64; n];
    let mut from = std::vec![u32::MAX; n];
    for i in 0..n {
        let Some(m) = plan.module(i as u32) else { continue };
        let mut best = 0.0;
        for e in m.deps() {
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
    Analysis {
        jobs: d.header.jobs,
        simulated: d.header.simulated,
        checksum_matches: d.checksum_matches,
        events,
        by_module,
        critical,
        critical_via,
        workers,
        makespan_ms,
        bound_critical_ms,
        bound_chain,
        work_ms,
        serial_ms,
    }
}

impl Analysis {
    /// When a module could have started: its dependencies' last end (0 without any).
    pub fn ready_ms(&self, plan: &Plan<'_>, ev: &Event) -> f64 {
        plan.module(ev.index)
            .map(|m| {
                m.deps()
                    .filter_map(|e| self.by_module.get(&e.module))
                    .map(|&j| self.events[j].end())
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0)
    }

    pub fn is_critical(&self, i: usize) -> bool {
        self.critical.contains(&i)
    }

    /// The number of CPUs/workers the bound divides the work by.
    pub fn lanes(&self) -> usize {
        (self.jobs as usize).max(self.workers.len()).max(1)
    }

    /// max(the longest chain, the serial parts, the work / the lanes).
    pub fn bound_ms(&self) -> f64 {
        self.bound_critical_ms.max(self.serial_ms).max(self.work_ms / self.lanes() as f64)
    }
}

