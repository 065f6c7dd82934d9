//! The one decoder of parmod's trace on the host: records with names, and
//! times in ms since parmod started. `parmod-plan show --trace` prints
//! them; the analysis and its renderers start from them.

use std::format;
use std::prelude::rust_2021::*;
use std::string::ToString;

use crate::plan::trace::{self, kind, result, TraceHeader, NO_CAUSE, NO_WORKER};
use crate::plan::Plan;

/// One trace record with names and times relative to parmod's start (ms).
#[derive(Clone, Debug)]
pub struct Event {
    /// Module index (or wait index for a wait).
    pub index: u32,
    /// The module's name, or the wait's path.
    pub name: String,
    pub is_wait: bool,
    /// A skipped module: the dependency that failed; a wait: the module it follows.
    pub cause: Option<String>,
    pub result: u8,
    pub errno: i32,
    pub worker: Option<u16>,
    /// None when the record never started.
    pub start_ms: Option<f64>,
    /// None when it never ended (stuck, blocked, never started).
    pub end_ms: Option<f64>,
}

impl Event {
    pub fn started(&self) -> bool {
        self.start_ms.is_some()
    }
    /// The end, or the start when there is none (never before the start).
    pub fn end(&self) -> f64 {
        let s = self.start_ms.unwrap_or(0.0);
        self.end_ms.unwrap_or(s).max(s)
    }
    pub fn duration_ms(&self) -> f64 {
        self.start_ms.map(|s| (self.end() - s).max(0.0)).unwrap_or(0.0)
    }
    /// "loaded", "failed+stuck", ...
    pub fn result_name(&self) -> String {
        let mut r = result::name(self.result).to_string();
        if self.result & result::STUCK_FLAG != 0 {
            r.push_str("+stuck");
        }
        r
    }
}

/// A decoded trace.
pub struct Decoded {
    pub header: TraceHeader,
    /// Whether the trace was made with this plan (else names may be wrong).
    pub checksum_matches: bool,
    pub events: Vec<Event>,
}

impl Decoded {
    /// The warning to print when the trace was made with another plan.
    pub fn checksum_note(&self, plan: &Plan<'_>) -> Option<String> {
        (!self.checksum_matches).then(|| {
            format!(
                "trace was made with plan checksum {:#010x}, this plan is {:#010x}: names may be wrong",
                self.header.plan_checksum,
                plan.checksum()
            )
        })
    }
}

fn name_bytes(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The name of module `i` of `plan` (`#i` when it has none).
pub fn module_name(plan: &Plan<'_>, i: u32) -> String {
    plan.module(i).map(|m| name_bytes(m.name())).unwrap_or_else(|| format!("#{i}"))
}

/// Decode `bytes` (a `parmod --trace` file) against `plan`.
pub fn decode(plan: &Plan<'_>, bytes: &[u8]) -> Result<Decoded, String> {
    let (h, recs) = trace::parse(bytes).map_err(|e| e.to_string())?;
    let rel = |ns: u64| (ns != 0).then(|| ns.saturating_sub(h.t0_ns) as f64 / 1e6);
    let events = recs
        .map(|r| {
            let is_wait = r.kind == kind::WAIT;
            let name = if is_wait {
                plan.wait(r.index).map(|w| name_bytes(w.path())).unwrap_or_else(|| format!("wait #{}", r.index))
            } else {
                module_name(plan, r.index)
            };
            Event {
                index: r.index,
                name,
                is_wait,
                cause: (r.cause != NO_CAUSE).then(|| module_name(plan, r.cause)),
                result: r.result,
                errno: r.errno,
                worker: (r.worker != NO_WORKER).then_some(r.worker),
                start_ms: rel(r.start_ns),
                end_ms: rel(r.end_ns),
            }
        })
        .collect();
    Ok(Decoded { header: h, checksum_matches: h.plan_checksum == plan.checksum(), events })
}
