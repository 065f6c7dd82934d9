//! Seed inputs that must follow the current formats, written at fuzzing
//! time (`make fuzz`), so they never go stale: valid plans for the plan
//! targets, a trace for the trace target, and sparse encodings of disk
//! images for the blockid target.
//!
//! `seeds plans DIR_BYTES DIR_RECORDS` / `seeds trace DIR` /
//! `seeds image DIR FLAGS IMAGE...` (FLAGS: the blockid target's flags byte).

use std::path::Path;

use parmod::plan::{module_flags, DeviceWaitSpec, ModuleSpec, PlanBuilder};
use parmod::plan::trace::{kind, result, TraceHeader, TraceRecord, NO_CAUSE, NO_WORKER};

fn m(name: &str, path: Option<&str>, deps: &[(u32, bool)]) -> ModuleSpec {
    ModuleSpec { name: name.into(), path: path.map(str::to_string), weight_us: 300, file_size: 4000, deps: deps.to_vec(), ..ModuleSpec::default() }
}

fn plans() -> Vec<PlanBuilder> {
    let base = PlanBuilder { kernel_release: "6.1.0-fuzz".into(), module_timeout_ms: 1000, deadline_ms: 60_000, ..PlanBuilder::default() };
    let mut out = vec![
        PlanBuilder { modules: vec![m("a", Some("kernel/a.ko"), &[])], ..base.clone() },
        PlanBuilder {
            modules: vec![
                m("base", Some("kernel/base.ko"), &[]),
                m("left", Some("kernel/left.ko.xz"), &[(0, true)]),
                m("right", Some("kernel/right.ko.zst"), &[(0, false)]),
                m("top", Some("kernel/top.ko.gz"), &[(1, true), (2, true)]),
                m("builtin", None, &[]),
            ],
            waits: vec![
                DeviceWaitSpec { path: "/dev/left0".into(), module: Some(1), timeout_ms: 200 },
                DeviceWaitSpec { path: "/sys/class/net/*/address".into(), module: None, timeout_ms: 0 },
            ],
            aliases: vec![("cfg-alias".into(), 3), ("pci:v00008086d*sv*".into(), 1), ("usb:v1234p*".into(), 2), ("fs-top".into(), 3)],
            config_alias_count: 1,
            jobs: 2,
            ..base.clone()
        },
    ];
    let mut soft = vec![
        m("x", Some("kernel/x.ko"), &[]),
        m("pre", Some("kernel/pre.ko"), &[]),
        m("y", Some("kernel/y.ko"), &[(0, true), (1, false)]),
        m("post", Some("kernel/post.ko"), &[(2, false)]),
        m("off", None, &[(0, true)]),
    ];
    soft[2].soft_pre = vec![1];
    soft[2].soft_post = vec![3];
    soft[3].post_deps = vec![2];
    soft[3].flags = module_flags::POST_ONLY;
    soft[4].flags = module_flags::DISABLED;
    soft[0].flags = module_flags::REQUESTED | module_flags::BLACKLISTED;
    soft[1].params = "level=7 name=\"two words\"".into();
    soft[1].timeout_ms = 50;
    out.push(PlanBuilder { modules: soft, flags: parmod::plan::plan_flags::ALL_MODULES, ..base.clone() });
    let chain: Vec<ModuleSpec> = (0..12).map(|i| {
        let deps: Vec<(u32, bool)> = if i == 0 { vec![] } else { vec![(i - 1, i % 3 != 0)] };
        m(&format!("c{i}"), Some(&format!("kernel/c{i}.ko")), &deps)
    }).collect();
    out.push(PlanBuilder { modules: chain, ..base });
    out
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).expect("create the seed directory");
    std::fs::write(dir.join(name), data).expect("write a seed");
}

/// A disk image as the blockid target reads it: the flags byte, the size
/// in 512-byte units, and the image's non-zero 512-byte blocks as pieces
/// (adjacent ones merged), at most `budget` bytes of them.
fn sparse(flags: u8, image: &[u8], budget: usize) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&((image.len() / 512) as u32).to_le_bytes());
    let mut used = 0;
    let mut at = 0;
    while at < image.len() && used < budget {
        if image[at..(at + 512).min(image.len())].iter().all(|&c| c == 0) {
            at += 512;
            continue;
        }
        let start = at;
        while at < image.len() && at - start < 65024 && !image[at..(at + 512).min(image.len())].iter().all(|&c| c == 0) {
            at += 512;
        }
        let end = at.min(image.len()).min(start + budget - used);
        out.extend_from_slice(&(start as u32).to_le_bytes());
        out.extend_from_slice(&((end - start) as u16).to_le_bytes());
        out.extend_from_slice(&image[start..end]);
        used += end - start;
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("plans") if args.len() == 4 => {
            for (i, b) in plans().iter().enumerate() {
                let bytes = b.build().expect("a seed plan builds");
                write(Path::new(&args[2]), &format!("plan-{i}"), &bytes);
                let script = [8u8, 0x17, 10, 0x41, 0x26, 0x03, 0x95, 0x08, 0x00];
                write(Path::new(&args[3]), &format!("plan-{i}"), &[&script[..], &bytes].concat());
            }
        }
        Some("trace") if args.len() == 3 => {
            let rec = |index, result, start_ns, end_ns, worker, cause, kind| TraceRecord {
                start_ns, end_ns, index, errno: if result == result::FAILED { 19 } else { 0 }, cause, worker, kind, result,
            };
            let t0 = 1_000_000_000;
            let recs = [
                rec(0, result::LOADED, t0 + 1_000_000, t0 + 5_000_000, 0, NO_CAUSE, kind::MODULE),
                rec(1, result::FAILED | result::STUCK_FLAG, t0 + 5_000_000, t0 + 9_000_000, 1, NO_CAUSE, kind::MODULE),
                rec(2, result::LOADED, t0 + 5_000_000, t0 + 6_000_000, 0, NO_CAUSE, kind::MODULE),
                rec(3, result::SKIPPED, 0, 0, NO_WORKER, 1, kind::MODULE),
                rec(0, result::SATISFIED, t0 + 5_000_000, t0 + 5_500_000, NO_WORKER, 0, kind::WAIT),
                rec(1, result::TIMED_OUT, t0 + 9_000_000, t0 + 19_000_000, NO_WORKER, NO_CAUSE, kind::WAIT),
            ];
            let h = TraceHeader { plan_checksum: 0, record_count: recs.len() as u32, t0_ns: t0, jobs: 2, simulated: true };
            let mut t = vec![3u8];
            t.extend_from_slice(&h.encode());
            for r in &recs {
                t.extend_from_slice(&r.encode());
            }
            write(Path::new(&args[2]), "trace-0", &t);
        }
        Some("image") if args.len() >= 5 => {
            let flags: u8 = args[3].parse().expect("FLAGS is a number");
            for p in &args[4..] {
                let image = std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}"));
                let name = Path::new(p).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                write(Path::new(&args[2]), &name, &sparse(flags, &image, 16 * 1024));
            }
        }
        _ => {
            eprintln!("usage: seeds plans DIR_BYTES DIR_RECORDS | seeds trace DIR | seeds image DIR FLAGS IMAGE...");
            std::process::exit(2);
        }
    }
}
