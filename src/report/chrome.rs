//! A Chrome trace-event JSON file (`{"traceEvents": [...]}`) of a boot,
//! for Perfetto or chrome://tracing: one complete event (`ph: "X"`, µs) per
//! module load and per wait, one thread per worker.

use std::format;
use std::prelude::rust_2021::*;

use serde_json::{json, Value};

use super::analysis::Analysis;

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
        if let Some(af) = e.cause.as_ref().filter(|_| e.is_wait) {
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

