//! Measured load times (`parmod-plan compile --profile TRACE --profile-plan PLAN`).
//!
//! A trace records module *indices* of the plan it was made with, so the
//! trace is read together with that plan: the trace header's plan checksum
//! must equal the plan's, and each index is turned into a module name.
//!
//! * A module record whose result is `loaded` or `present` (with or without
//!   the stuck flag) and that has a start time gives a measurement:
//!   `end - start`, in µs (at least 1). Every other result (failed, skipped,
//!   stuck, blocked, built-in) gives none. When a name is measured twice the
//!   longer time counts.
//! * A measured module's serial part (see [`super::cost`]) is the share of
//!   the measurement that the estimate gives it: a trace records each load's
//!   whole time, and the estimate says how much of it is serial.
//! * For the modules without a measurement the estimate is kept, but scaled
//!   by the median of `measured / estimate` over the measured modules (their
//!   estimates from this compile), so that measured and estimated weights
//!   stay comparable: on a machine where every module loads three times
//!   slower than the estimate, an unmeasured module is assumed to be three
//!   times slower too.

use std::collections::HashMap;
use std::format;
use std::path::Path;
use std::prelude::rust_2021::*;

use super::cost::Cost;
use super::error::{read, Error, Result};
use super::kmod::canonical;
use crate::plan::trace::{self, kind, result};
use crate::plan::Plan;

/// Load times measured by a trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// Canonical module name -> measured load time, µs.
    pub measured_us: HashMap<String, u32>,
}

impl Profile {
    /// Replace the estimates `costs` of the modules `names` (canonical,
    /// same order) with what the profile measured, splitting each
    /// measurement as its estimate splits; scale the others by the median
    /// of measured / estimated.
    pub fn apply(&self, names: &[&str], costs: &mut [Cost]) {
        let mut ratios: Vec<f64> = names
            .iter()
            .zip(costs.iter())
            .filter_map(|(n, c)| self.measured_us.get(*n).map(|&m| m as f64 / c.weight_us.max(1) as f64))
            .collect();
        let scale = median(&mut ratios).unwrap_or(1.0);
        let scaled = |us: u32| (us as f64 * scale).round().clamp(0.0, u32::MAX as f64) as u32;
        for (n, c) in names.iter().zip(costs.iter_mut()) {
            *c = match self.measured_us.get(*n) {
                Some(&m) => c.split(m),
                None => Cost { weight_us: scaled(c.weight_us).max(1), serial_us: scaled(c.serial_us) },
            };
        }
    }
}

/// Build a profile from trace and plan bytes (`trace_name` and `plan_name`
/// name them in errors).
pub fn from_bytes(
    trace_bytes: &[u8],
    plan_bytes: &[u8],
    trace_name: &str,
    plan_name: &str,
) -> std::result::Result<Profile, String> {
    let what = trace_name;
    let plan = Plan::parse(plan_bytes).map_err(|e| format!("{plan_name}: {e}"))?;
    let (h, recs) = trace::parse(trace_bytes).map_err(|e| format!("{trace_name}: {e}"))?;
    if h.plan_checksum != plan.checksum() {
        return Err(format!(
            "{what}: the trace was made with plan checksum {:#010x}, but the --profile-plan has {:#010x}; give the plan the trace was recorded with",
            h.plan_checksum,
            plan.checksum()
        ));
    }
    let mut measured_us: HashMap<String, u32> = HashMap::new();
    for r in recs {
        let res = r.result & !result::STUCK_FLAG;
        if r.kind != kind::MODULE || !(res == result::LOADED || res == result::PRESENT) {
            continue;
        }
        if r.start_ns == 0 || r.end_ns < r.start_ns {
            continue;
        }
        let Some(m) = plan.module(r.index) else {
            return Err(format!("{what}: record for module #{} which the plan does not have", r.index));
        };
        if m.is_builtin() {
            continue;
        }
        let us = ((r.end_ns - r.start_ns) / 1000).clamp(1, u32::MAX as u64) as u32;
        let name = canonical(&String::from_utf8_lossy(m.name()));
        let e = measured_us.entry(name).or_insert(0);
        *e = (*e).max(us);
    }
    Ok(Profile { measured_us })
}

/// Read `trace` and the plan it was made with.
pub fn load(trace_path: &Path, plan_path: &Path) -> Result<Profile> {
    let t = read(trace_path)?;
    let p = read(plan_path)?;
    from_bytes(&t, &p, &format!("{}", trace_path.display()), &format!("{}", plan_path.display())).map_err(Error::Other)
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(super::median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(super::median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(super::median(&mut []), None);
    }
}
