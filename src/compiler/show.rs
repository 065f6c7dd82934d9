//! `parmod-plan show`: a plan (or a trace against its plan) for people, or as JSON.

use std::format;
use std::prelude::rust_2021::*;
use std::string::ToString;

use serde_json::{json, Value};

use crate::plan::{Module, Plan};

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn name_of(plan: &Plan<'_>, i: u32) -> String {
    plan.module(i).map(|m| s(m.name())).unwrap_or_else(|| format!("#{i}"))
}

fn names(plan: &Plan<'_>, it: impl Iterator<Item = crate::plan::Edge>, hard: Option<bool>) -> Vec<String> {
    it.filter(|e| hard.is_none_or(|h| e.hard == h)).map(|e| name_of(plan, e.module)).collect()
}

fn flag_words(m: &Module<'_>) -> Vec<&'static str> {
    use crate::plan::module_flags as f;
    let mut w = Vec::new();
    let fl = m.flags();
    if fl & f::BUILTIN != 0 {
        w.push("builtin");
    }
    if fl & f::REQUESTED != 0 {
        w.push("requested");
    }
    if fl & f::SOFT_ONLY != 0 {
        w.push("soft-only");
    }
    if fl & f::IGNORE_MODVERSIONS != 0 {
        w.push("ignore-modversions");
    }
    if fl & f::IGNORE_VERMAGIC != 0 {
        w.push("ignore-vermagic");
    }
    if fl & f::DISABLED != 0 {
        w.push("disabled");
    }
    if fl & f::BLACKLISTED != 0 {
        w.push("blacklisted");
    }
    if fl & f::POST_ONLY != 0 {
        w.push("post-only");
    }
    if fl & f::ROOT_PATH != 0 {
        w.push("root-path");
    }
    if fl & f::ON_REQUEST != 0 {
        w.push("on-request");
    }
    w
}

/// The module's file as the target sees it: relative to the module
/// directory, or `/`-absolute for a root-relative path.
fn file_path(m: &Module<'_>) -> Option<String> {
    m.path().map(|p| if m.is_root_path() { format!("/{}", s(p)) } else { s(p) })
}

/// The serial parts of the modules a run of the whole plan loads (not the
/// on-request ones), beside the header's `total_weight_us`.
fn run_serial_us(plan: &Plan<'_>) -> u64 {
    plan.modules().filter(|m| !m.is_on_request()).map(|m| m.serial_us() as u64).sum()
}

/// The plan for a person.
pub fn text(plan: &Plan<'_>) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let builtin = plan.modules().filter(|m| m.is_builtin()).count();
    let disabled = plan.modules().filter(|m| m.is_disabled()).count();
    let requested = plan.modules().filter(|m| m.flags() & crate::plan::module_flags::REQUESTED != 0).count();
    let on_request = plan.modules().filter(|m| m.is_on_request()).count();
    let jobs = match plan.jobs() {
        0 => "0 (runtime decides)".to_string(),
        j => j.to_string(),
    };
    let _ = writeln!(o, "kernel:         {}", s(plan.kernel_release()));
    let _ = writeln!(o, "jobs:           {jobs}");
    let _ = writeln!(o, "module timeout: {} ms", plan.module_timeout_ms());
    let _ = writeln!(o, "deadline:       {} ms", plan.deadline_ms());
    let _ = writeln!(
        o,
        "modules:        {} ({} to load, {builtin} built-in, {disabled} disabled, {requested} requested{})",
        plan.module_count(),
        plan.modules().filter(|m| !m.is_builtin() && !m.is_disabled() && !m.is_on_request()).count(),
        if on_request > 0 { format!(", {on_request} only on request") } else { String::new() }
    );
    let _ = writeln!(o, "edges:          {}", plan.edge_count());
    let _ = writeln!(o, "waits:          {}", plan.wait_count());
    let _ = writeln!(o, "aliases:        {} ({} from modprobe.d)", plan.alias_count(), plan.config_alias_count());
    let serial = run_serial_us(plan);
    let _ = writeln!(o, "total weight:   {} us ({serial} us of it serial)", plan.total_weight_us());
    let _ = writeln!(o, "checksum:       {:#010x}", plan.checksum());
    let _ = writeln!(o, "\nload order:");
    for m in plan.modules() {
        let flags = flag_words(&m);
        let where_ = match file_path(&m) {
            Some(p) if m.is_disabled() => format!("{p} (disabled by configuration: never loaded)"),
            Some(p) => format!("{p} ({}, {} bytes)", m.compression().kernel_name(), m.file_size()),
            None if m.is_disabled() => "no module file (disabled by configuration)".to_string(),
            None => "built-in".to_string(),
        };
        let _ = writeln!(
            o,
            "{:5} {}{}  priority {} us, weight {} us{}{}  {where_}",
            m.index(),
            s(m.name()),
            if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join(", ")) },
            m.priority_us(),
            m.weight_us(),
            if m.serial_us() > 0 { format!(" ({} serial)", m.serial_us()) } else { String::new() },
            if m.timeout_ms() == 0 { String::new() } else { format!(", timeout {} ms", m.timeout_ms()) },
        );
        let hard = names(plan, m.deps(), Some(true));
        if !hard.is_empty() {
            let _ = writeln!(o, "        deps: {}", hard.join(" "));
        }
        let soft: Vec<String> = m
            .deps()
            .filter(|e| !e.hard)
            .map(|e| if e.post { format!("{} (post)", name_of(plan, e.module)) } else { name_of(plan, e.module) })
            .collect();
        if !soft.is_empty() {
            let _ = writeln!(o, "        after (soft): {}", soft.join(" "));
        }
        let pre = names(plan, m.soft_pre(), None);
        if !pre.is_empty() {
            let _ = writeln!(o, "        softdep pre: {}", pre.join(" "));
        }
        let post = names(plan, m.soft_post(), None);
        if !post.is_empty() {
            let _ = writeln!(o, "        softdep post: {}", post.join(" "));
        }
        if !m.params().is_empty() {
            let _ = writeln!(o, "        options: {}", s(m.params()));
        }
        if m.timeout_ms() != 0 {
            let _ = writeln!(o, "        timeout: {} ms", m.timeout_ms());
        }
        for w in m.dev_waits().filter_map(|w| plan.wait(w)) {
            let _ = writeln!(o, "        then its device wait: {}", wait_text(&w));
        }
    }
    let final_waits: Vec<_> = plan.waits().filter(|w| w.module().is_none()).collect();
    if !final_waits.is_empty() {
        let _ = writeln!(o, "\nwaits before success:");
        for w in final_waits {
            let _ = writeln!(o, "      {}", wait_text(&w));
        }
    }
    o
}

/// `PATH (glob, N ms)` / `PATH (until the deadline)`.
fn wait_text(w: &crate::plan::DeviceWait<'_>) -> String {
    let t = match w.timeout_ms() {
        0 => "until the deadline".to_string(),
        ms => format!("{ms} ms"),
    };
    format!("{} ({}{t})", s(w.path()), if w.is_glob() { "glob, " } else { "" })
}

fn edge_list(plan: &Plan<'_>, it: impl Iterator<Item = crate::plan::Edge>) -> Vec<Value> {
    it.map(|e| json!({"name": name_of(plan, e.module), "index": e.module, "hard": e.hard, "post": e.post})).collect()
}

/// The plan as JSON (modules in plan order, a valid load order).
pub fn json(plan: &Plan<'_>) -> Value {
    let modules: Vec<Value> = plan
        .modules()
        .map(|m| {
            json!({
                "index": m.index(),
                "name": s(m.name()),
                "path": file_path(&m),
                "builtin": m.is_builtin(),
                "disabled": m.is_disabled(),
                "blacklisted": m.is_blacklisted(),
                "post_only": m.is_post_only(),
                "on_request": m.is_on_request(),
                "compression": m.compression().kernel_name(),
                "file_size": m.file_size(),
                "requested": m.flags() & crate::plan::module_flags::REQUESTED != 0,
                "soft_only": m.flags() & crate::plan::module_flags::SOFT_ONLY != 0,
                "flags": flag_words(&m),
                "params": s(m.params()),
                "priority": m.priority_us(),
                "weight": m.weight_us(),
                "serial": m.serial_us(),
                "timeout_ms": m.timeout_ms(),
                "deps": names(plan, m.deps(), Some(true)),
                "softdeps_pre": names(plan, m.soft_pre(), None),
                "softdeps_post": names(plan, m.soft_post(), None),
                "dep_edges": edge_list(plan, m.deps()),
                "dependents": edge_list(plan, m.dependents()),
                "waits": m.dev_waits().filter_map(|w| plan.wait(w)).map(|w| s(w.path())).collect::<Vec<_>>(),
            })
        })
        .collect();
    let waits: Vec<Value> = plan
        .waits()
        .map(|w| {
            json!({
                "path": s(w.path()),
                "after": w.module().map(|i| name_of(plan, i)),
                "timeout_ms": w.timeout_ms(),
                "glob": w.is_glob(),
            })
        })
        .collect();
    let aliases: Vec<Value> =
        plan.aliases().map(|a| json!({"pattern": s(a.pattern), "module": name_of(plan, a.module)})).collect();
    json!({
        "kernel": s(plan.kernel_release()),
        "jobs": plan.jobs(),
        "module_timeout_ms": plan.module_timeout_ms(),
        "deadline_ms": plan.deadline_ms(),
        "total_weight_us": plan.total_weight_us(),
        "total_serial_us": run_serial_us(plan),
        "checksum": plan.checksum(),
        "module_count": plan.module_count(),
        "config_alias_count": plan.config_alias_count(),
        "modules": modules,
        "waits": waits,
        "aliases": aliases,
    })
}

/// The decoded trace (the one decoder: `crate::report::decode`).
fn decoded(plan: &Plan<'_>, bytes: &[u8]) -> Result<crate::report::Decoded, String> {
    crate::report::decode(plan, bytes)
}

/// A trace against its plan, one line per record.
pub fn trace_text(plan: &Plan<'_>, bytes: &[u8]) -> Result<(String, Option<String>), String> {
    use std::fmt::Write;
    let d = decoded(plan, bytes)?;
    let h = &d.header;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# trace: {} records, jobs {}{}",
        h.record_count,
        h.jobs,
        if h.simulated { ", simulated" } else { "" }
    );
    let _ = writeln!(o, "# module result worker start_ms end_ms errno cause");
    let ms = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
    for e in &d.events {
        let _ = writeln!(
            o,
            "{}{} {} {} {} {} {} {}",
            if e.is_wait { "wait:" } else { "" },
            e.name,
            e.result_name(),
            e.worker.map(|w| w.to_string()).unwrap_or_else(|| "-".into()),
            ms(e.start_ms),
            ms(e.end_ms),
            e.errno,
            e.cause.as_deref().unwrap_or("-")
        );
    }
    Ok((o, d.checksum_note(plan)))
}

pub fn trace_json(plan: &Plan<'_>, bytes: &[u8]) -> Result<(Value, Option<String>), String> {
    let d = decoded(plan, bytes)?;
    let recs: Vec<Value> = d
        .events
        .iter()
        .map(|e| {
            json!({
                "module": if e.is_wait { format!("wait:{}", e.name) } else { e.name.clone() },
                "result": e.result_name(),
                "worker": e.worker,
                "start_ms": e.start_ms,
                "end_ms": e.end_ms,
                "errno": e.errno,
                "cause": e.cause,
            })
        })
        .collect();
    let h = &d.header;
    let v = json!({
        "plan_checksum": h.plan_checksum,
        "plan_matches": d.checksum_matches,
        "jobs": h.jobs,
        "simulated": h.simulated,
        "records": recs,
    });
    Ok((v, d.checksum_note(plan)))
}
