//! The trace reader and everything that reads a trace on the host: the
//! decoder, `show --trace` (text and JSON), the report (analysis, text,
//! SVG, Chrome JSON) and `compile --profile`. The input is a trace of a
//! fixed plan; its first byte says whether to make its checksum and record
//! count right, so that the records themselves are reached.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use parmod::compiler::cost::Cost;
use parmod::plan::trace::{self, TraceHeader, TRACE_HEADER_SIZE, TRACE_RECORD_SIZE};
use parmod::plan::{DeviceWaitSpec, ModuleSpec, Plan, PlanBuilder};

fn plan_bytes() -> &'static [u8] {
    static PLAN: OnceLock<Vec<u8>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let m = |name: &str, deps: &[(u32, bool)]| ModuleSpec {
            name: name.into(),
            path: Some(format!("kernel/{name}.ko")),
            weight_us: 1000,
            file_size: 8000,
            deps: deps.to_vec(),
            ..ModuleSpec::default()
        };
        let b = PlanBuilder {
            kernel_release: "6.1.0-fuzz".into(),
            modules: vec![m("a", &[]), m("b", &[(0, true)]), m("c", &[(0, false)]), m("d", &[(1, true), (2, false)])],
            waits: vec![
                DeviceWaitSpec { path: "/dev/a0".into(), module: Some(0), timeout_ms: 100 },
                DeviceWaitSpec { path: "/sys/class/net/*/address".into(), module: None, timeout_ms: 0 },
            ],
            ..PlanBuilder::default()
        };
        b.build().expect("the trace target's plan builds")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let plan_bytes = plan_bytes();
    let plan = Plan::parse(plan_bytes).expect("the plan parses");
    let mut t = rest.to_vec();
    if t.len() >= TRACE_HEADER_SIZE {
        if flags & 1 != 0 {
            t[16..20].copy_from_slice(&plan.checksum().to_le_bytes());
        }
        if flags & 2 != 0 {
            let count = ((t.len() - TRACE_HEADER_SIZE) / TRACE_RECORD_SIZE) as u32;
            t.truncate(TRACE_HEADER_SIZE + count as usize * TRACE_RECORD_SIZE);
            t[20..24].copy_from_slice(&count.to_le_bytes());
            t[12..14].copy_from_slice(&(TRACE_RECORD_SIZE as u16).to_le_bytes());
        }
    }
    let parsed = trace::parse(&t).map(|(h, _)| h.record_count);
    if let Ok((h, recs)) = trace::parse(&t) {
        // What was read is what the file says: encoding it again gives the file.
        let recs: Vec<_> = recs.collect();
        assert_eq!(recs.len(), h.record_count as usize);
        let mut again = TraceHeader { ..h }.encode().to_vec();
        for r in &recs {
            again.extend_from_slice(&r.encode());
        }
        assert_eq!(again, t, "a trace read and written again is the same file");
    }
    match parmod::report::decode(&plan, &t) {
        Ok(d) => {
            assert!(parsed.is_ok());
            assert_eq!(d.events.len(), parsed.map(|c| c as usize).unwrap_or(0));
            for e in &d.events {
                let _ = (e.result_name(), e.duration_ms(), e.end());
                assert!(e.duration_ms() >= 0.0);
            }
            let a = parmod::report::analyse(&plan, d);
            let _ = parmod::report::text::text(&plan, &a);
            let _ = parmod::report::svg::svg(&a);
            let _ = parmod::report::chrome::chrome(&a).to_string();
        }
        Err(e) => {
            assert!(parsed.is_err());
            assert!(!e.is_empty());
        }
    }
    let text = parmod::compiler::show::trace_text(&plan, &t);
    let json = parmod::compiler::show::trace_json(&plan, &t);
    assert_eq!(text.is_ok(), json.is_ok());
    match parmod::compiler::profile::from_bytes(&t, plan_bytes, "fuzz.trace", "fuzz.plan") {
        Ok(p) => {
            assert!(p.measured_us.values().all(|&us| us >= 1));
            // Applied to estimates: a measured module gets its measurement,
            // every weight is at least 1 µs, no serial part exceeds its weight.
            let mut names: Vec<&str> = p.measured_us.keys().map(String::as_str).collect();
            names.push("not measured");
            let mut costs: Vec<Cost> = (0..names.len() as u32).map(|i| Cost { weight_us: 1000 + i, serial_us: 400 }).collect();
            p.apply(&names, &mut costs);
            for (n, c) in names.iter().zip(&costs) {
                assert!(c.weight_us >= 1 && c.serial_us <= c.weight_us, "{n}: {c:?}");
                if let Some(&m) = p.measured_us.get(*n) {
                    assert_eq!(c.weight_us, m, "{n}");
                }
            }
        }
        Err(e) => assert!(e.starts_with("fuzz.trace") || e.starts_with("fuzz.plan"), "{e}"),
    }
});
