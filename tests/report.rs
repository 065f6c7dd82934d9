//! `parmod-plan report`: the text summary, the SVG timeline (rendered to PNG
//! with rsvg-convert and looked at) and the Chrome trace-event JSON, from a
//! plan and a synthetic trace whose answers are known.
//!
//! rsvg-convert (Debian: librsvg2-bin; `make test` installs it) and python3
//! (to decode the PNG) are needed for the picture check. When either is
//! missing that part is skipped with a line starting "SKIP", or fails under
//! PARMOD_REQUIRE_RSVG=1.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use parmod::plan::trace::{kind, result, TraceHeader, TraceRecord, NO_CAUSE, NO_WORKER};
use parmod::plan::{ModuleSpec, Plan, PlanBuilder, DeviceWaitSpec};
use serde_json::Value;

mod plan_tool;
use plan_tool::{skip, Scratch};

fn module(name: &str, deps: &[(u32, bool)]) -> ModuleSpec {
    ModuleSpec {
        name: name.into(),
        path: Some(format!("kernel/test/{name}.ko")),
        weight_us: 1000,
        deps: deps.to_vec(),
        ..ModuleSpec::default()
    }
}

// Module indices.
const A: u32 = 0; // base
const B: u32 = 1; // needs A; its wait /dev/pm_report_node follows it
const C: u32 = 2; // needs A
const D: u32 = 3; // needs B and C: ends last
const E: u32 = 4; // independent
const F: u32 = 5; // soft after E; fails
const G: u32 = 6; // needs F: skipped

const NAMES: [&str; 7] = [
    "pm_report_base",
    "pm_report_long_driver",
    "pm_report_side",
    "pm_report_top",
    "pm_report_lone",
    "pm_report_failing",
    "pm_report_skipped",
];

fn plan() -> PlanBuilder {
    PlanBuilder {
        kernel_release: "0.0.0-parmod-test".into(),
        modules: vec![
            module(NAMES[0], &[]),
            // Its weight is 60 % serial.
            ModuleSpec { serial_us: 600, ..module(NAMES[1], &[(A, true)]) },
            module(NAMES[2], &[(A, true)]),
            module(NAMES[3], &[(B, true), (C, true)]),
            module(NAMES[4], &[]),
            module(NAMES[5], &[(E, false)]),
            module(NAMES[6], &[(F, true)]),
        ],
        waits: vec![DeviceWaitSpec { path: "/dev/pm_report_node".into(), module: Some(B), timeout_ms: 1000 }],
        ..PlanBuilder::default()
    }
}

const T0: u64 = 5_000_000_000;
fn ms(v: u64) -> u64 {
    T0 + v * 1_000_000
}

fn rec(index: u32, start: u64, end: u64, worker: u16, res: u8) -> TraceRecord {
    TraceRecord {
        start_ns: ms(start),
        end_ns: ms(end),
        index,
        errno: 0,
        cause: NO_CAUSE,
        worker,
        kind: kind::MODULE,
        result: res,
    }
}

/// Two workers. Worker 0: base 10-110, long_driver 110-410, top 430-550.
/// Worker 1: lone 10-60, failing 60-100 (ENODEV), side 110-260.
/// The wait after long_driver runs 410-430; skipped never starts.
fn trace(checksum: u32) -> Vec<u8> {
    let mut recs = vec![
        rec(A, 10, 110, 0, result::LOADED),
        rec(B, 110, 410, 0, result::LOADED),
        rec(D, 430, 550, 0, result::LOADED),
        rec(E, 10, 60, 1, result::LOADED),
        TraceRecord { errno: 19, ..rec(F, 60, 100, 1, result::FAILED) },
        rec(C, 110, 260, 1, result::LOADED),
        TraceRecord {
            start_ns: 0,
            end_ns: ms(100),
            index: G,
            errno: 0,
            cause: F,
            worker: NO_WORKER,
            kind: kind::MODULE,
            result: result::SKIPPED,
        },
    ];
    recs.push(TraceRecord {
        start_ns: ms(410),
        end_ns: ms(430),
        index: 0,
        errno: 0,
        cause: B,
        worker: NO_WORKER,
        kind: kind::WAIT,
        result: result::SATISFIED,
    });
    let h = TraceHeader { plan_checksum: checksum, record_count: recs.len() as u32, t0_ns: T0, jobs: 2, simulated: false };
    let mut out = h.encode().to_vec();
    for r in &recs {
        out.extend_from_slice(&r.encode());
    }
    out
}

struct Outputs {
    text: String,
    svg: String,
    svg_path: PathBuf,
    json: Value,
}

fn run_report(dir: &Path) -> Outputs {
    let bytes = plan().build().expect("plan builds");
    let checksum = Plan::parse(&bytes).expect("plan parses").checksum();
    let plan_p = dir.join("p.plan");
    let trace_p = dir.join("p.trace");
    fs::write(&plan_p, &bytes).unwrap();
    fs::write(&trace_p, trace(checksum)).unwrap();
    let svg_p = dir.join("t.svg");
    let json_p = dir.join("t.json");
    let out = Command::new(plan_tool::BIN)
        .arg("report")
        .arg("--plan")
        .arg(&plan_p)
        .arg(&trace_p)
        .arg("--svg")
        .arg(&svg_p)
        .arg("--chrome-trace")
        .arg(&json_p)
        .output()
        .expect("run parmod-plan");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "report failed: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", String::from_utf8_lossy(&out.stderr));
    Outputs {
        text,
        svg: fs::read_to_string(&svg_p).expect("svg written"),
        svg_path: svg_p,
        json: serde_json::from_slice(&fs::read(&json_p).expect("json written")).expect("json parses"),
    }
}

/// The lines of a section: after the line starting with `title`, up to a blank line.
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with(title))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

fn first_name_in(line: &str) -> Option<&'static str> {
    // The longest matching name (pm_report_long_driver vs pm_report_lone, ...).
    NAMES.iter().copied().filter(|n| line.split_whitespace().any(|w| w == *n)).max_by_key(|n| n.len())
}

#[test]
fn text_summary() {
    let sc = Scratch::new("report-text");
    let dir = sc.dir.as_path();
    let o = run_report(dir);
    let t = &o.text;
    // Slowest first: 300, 150, 120, 100, 50, 40 ms.
    let slow: Vec<&str> = section(t, "slowest modules:").iter().filter_map(|l| first_name_in(l)).collect();
    assert_eq!(
        slow,
        [NAMES[1], NAMES[2], NAMES[3], NAMES[0], NAMES[4], NAMES[5]],
        "slowest order in:\n{t}"
    );
    assert!(section(t, "slowest modules:")[0].contains("300.0 ms"), "{t}");
    // Critical path: top ended last; its dependency that ended last is
    // long_driver (410 > side's 260), whose only dependency is base.
    let crit: Vec<&str> = section(t, "critical path taken").iter().filter_map(|l| first_name_in(l)).collect();
    assert_eq!(crit, [NAMES[0], NAMES[1], NAMES[3]], "critical path in:\n{t}");
    assert!(t.contains("path: 3 modules, 520.0 ms loading, 30.0 ms before/between them"), "{t}");
    // Workers over 550 ms: worker 0 busy 520, worker 1 busy 240.
    assert!(t.contains("worker 0: 3 modules, busy 520.0 ms, idle 30.0 ms"), "{t}");
    assert!(t.contains("worker 1: 3 modules, busy 240.0 ms, idle 310.0 ms"), "{t}");
    assert!(t.contains("/dev/pm_report_node (after pm_report_long_driver): satisfied, 20.0 ms"), "{t}");
    assert!(t.contains("not started: pm_report_skipped (skipped)"), "{t}");
    assert!(t.contains("failed: pm_report_failing (errno 19)"), "{t}");
    // Lower bound from the measured times: base + long_driver + top = 520 ms
    // of chain; work 760 ms / 2 = 380; serial: 60 % of long_driver's 300 ms.
    assert!(
        t.contains("lower bound: critical path 520.0 ms, work 760.0 ms, serial 180.0 ms, max(critical path, serial, work / 2) = 520.0 ms"),
        "{t}"
    );
    assert!(t.contains("longest chain: pm_report_base -> pm_report_long_driver -> pm_report_top"), "{t}");
}

#[test]
fn usage_errors() {
    let out = Command::new(plan_tool::BIN).args(["report", "x.trace"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "missing --plan is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--plan"));
    let out = Command::new(plan_tool::BIN).args(["report", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let help = Command::new(plan_tool::BIN).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("parmod-plan report --plan PLAN TRACE"));
}

// ------------------------------------------------------------------ SVG

/// Attribute `name` of an SVG element string.
fn attr(el: &str, name: &str) -> Option<f64> {
    let key = format!(" {name}=\"");
    let i = el.find(&key)? + key.len();
    el[i..].split('"').next()?.parse().ok()
}

#[test]
fn svg_timeline() {
    let sc = Scratch::new("report-svg");
    let dir = sc.dir.as_path();
    let o = run_report(dir);
    let svg = &o.svg;
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "not an SVG:\n{svg}");
    for n in NAMES {
        assert!(svg.contains(n), "module {n} missing from the SVG");
    }
    for l in ["worker 0", "worker 1", "waits", "/dev/pm_report_node"] {
        assert!(svg.contains(&format!(">{l}<")) || svg.contains(l), "label {l} missing");
    }
    // One bar per started module, three of them on the critical path.
    assert_eq!(svg.matches("<rect class=\"module").count(), 6);
    assert_eq!(svg.matches("<rect class=\"module critical\"").count(), 3);
    assert_eq!(svg.matches("<rect class=\"wait\"").count(), 1);
    assert_eq!(svg.matches("class=\"critical-link\"").count(), 2);
    // The long bar is wide enough for its label.
    assert!(svg.contains("class=\"bar-label\"") && svg.contains(">pm_report_long_driver</text>"), "{svg}");
    // Lanes: worker 0, worker 1, waits.
    let lanes: Vec<(f64, f64, f64, f64)> = svg
        .lines()
        .filter(|l| l.starts_with("<rect class=\"lane\""))
        .map(|l| (attr(l, "x").unwrap(), attr(l, "y").unwrap(), attr(l, "width").unwrap(), attr(l, "height").unwrap()))
        .collect();
    assert_eq!(lanes.len(), 3, "lanes: {lanes:?}");
    // A time axis with labels.
    assert!(svg.contains(">0 ms<") && svg.contains(">500 ms<"), "time axis labels missing");

    let Some(rsvg) = rsvg_convert() else { return };
    let png = dir.join("t.png");
    let st = Command::new(&rsvg).arg("-o").arg(&png).arg(&o.svg_path).status().expect("run rsvg-convert");
    assert!(st.success(), "rsvg-convert could not render the SVG");
    // Per band: coloured (bar) pixels inside the lane, dark (text) pixels left of it.
    let mut bands = Vec::new();
    for &(x, y, w, h) in &lanes {
        bands.push(vec![x, y, x + w, y + h]);
        bands.push(vec![0.0, y, x, y + h]);
    }
    let Some(counts) = png_bands(&png, &bands) else { return };
    for (i, &(_, y, _, _)) in lanes.iter().enumerate() {
        let (coloured, _) = counts[2 * i];
        let (_, dark) = counts[2 * i + 1];
        assert!(coloured > 200, "lane at y={y}: only {coloured} coloured pixels (no bars drawn?)");
        assert!(dark > 20, "lane at y={y}: only {dark} dark pixels in the label column (no label?)");
    }
}

fn rsvg_convert() -> Option<PathBuf> {
    let find = || {
        std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join("rsvg-convert")).find(|f| f.is_file()))
    };
    if let Some(p) = find() {
        return Some(p);
    }
    skip("PARMOD_REQUIRE_RSVG", "the PNG check", "rsvg-convert is not on PATH", "apt-get install librsvg2-bin");
    None
}

/// Decode the PNG (8-bit RGB or RGBA, as rsvg-convert writes) with python3's
/// zlib and count, per band [x0, y0, x1, y1], the coloured pixels (channel
/// spread > 60) and the dark ones (all channels < 100).
fn png_bands(png: &Path, bands: &[Vec<f64>]) -> Option<Vec<(u64, u64)>> {
    const PY: &str = r#"
import sys, zlib, struct, json
data = open(sys.argv[1], 'rb').read()
bands = json.loads(sys.argv[2])
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat = 8, b''
while pos < len(data):
    n, t = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if t == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif t == b'IDAT':
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 4 if ctype == 6 else 3
raw = zlib.decompress(idat)
stride = w * bpp
rows, prev, i = [], bytearray(stride), 0
for y in range(h):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 255
    rows.append(line); prev = line
out = []
for x0, y0, x1, y1 in bands:
    col = dark = 0
    for y in range(max(0, int(y0)), min(h, int(y1))):
        r = rows[y]
        for x in range(max(0, int(x0)), min(w, int(x1))):
            px = r[x * bpp:x * bpp + 3]
            if bpp == 4 and r[x * bpp + 3] < 128:
                continue
            if max(px) - min(px) > 60: col += 1
            if max(px) < 100: dark += 1
    out.append([col, dark])
print(json.dumps(out))
"#;
    let bands_json = serde_json::to_string(bands).unwrap();
    let out = match Command::new("python3").arg("-c").arg(PY).arg(png).arg(&bands_json).output() {
        Ok(o) => o,
        Err(e) => {
            skip("PARMOD_REQUIRE_RSVG", "the PNG check", &format!("python3 cannot run: {e}"), "apt-get install python3");
            return None;
        }
    };
    assert!(out.status.success(), "PNG decode failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Vec<(u64, u64)> = serde_json::from_slice(&out.stdout).expect("band counts");
    Some(v)
}

// ------------------------------------------------------------------ trace-event JSON

#[test]
fn chrome_trace_events() {
    let sc = Scratch::new("report-json");
    let dir = sc.dir.as_path();
    let o = run_report(dir);
    let evs = o.json["traceEvents"].as_array().expect("traceEvents is an array");
    assert!(!evs.is_empty());
    let mut last_ts: std::collections::HashMap<(u64, u64), f64> = Default::default();
    let mut names_x = Vec::new();
    let mut thread_names = Vec::new();
    for e in evs {
        let ob = e.as_object().unwrap_or_else(|| panic!("event is not an object: {e}"));
        let ph = ob.get("ph").and_then(Value::as_str).unwrap_or_else(|| panic!("no ph: {e}"));
        assert!(["X", "M", "B", "E", "i", "I", "C"].contains(&ph), "unknown ph {ph}");
        let name = ob.get("name").and_then(Value::as_str).unwrap_or_else(|| panic!("no name: {e}"));
        let pid = ob.get("pid").and_then(Value::as_u64).unwrap_or_else(|| panic!("pid not an integer: {e}"));
        let tid = ob.get("tid").and_then(Value::as_u64).unwrap_or_else(|| panic!("tid not an integer: {e}"));
        let ts = ob.get("ts").and_then(Value::as_f64).unwrap_or_else(|| panic!("ts not a number: {e}"));
        assert!(ts >= 0.0);
        if let Some(a) = ob.get("args") {
            assert!(a.is_object(), "args must be an object: {e}");
        }
        match ph {
            "X" => {
                let dur = ob.get("dur").and_then(Value::as_f64).unwrap_or_else(|| panic!("X without dur: {e}"));
                assert!(dur >= 0.0, "negative dur: {e}");
                let prev = last_ts.entry((pid, tid)).or_insert(f64::MIN);
                assert!(ts >= *prev, "ts not monotonic on tid {tid}: {ts} after {prev}");
                *prev = ts;
                names_x.push((name.to_string(), tid, ts, dur, ob["args"].clone()));
            }
            "M" if name == "thread_name" => {
                thread_names.push((tid, ob["args"]["name"].as_str().expect("thread name").to_string()));
            }
            _ => {}
        }
    }
    // Six module loads and one wait; times in µs since parmod started.
    assert_eq!(names_x.len(), 7, "{names_x:?}");
    let get = |n: &str| names_x.iter().find(|x| x.0 == n).unwrap_or_else(|| panic!("no event {n}"));
    let ld = get(NAMES[1]);
    assert_eq!((ld.1, ld.2, ld.3), (0, 110_000.0, 300_000.0));
    assert_eq!(ld.4["critical_path"], Value::Bool(true));
    assert_eq!(get(NAMES[2]).4["critical_path"], Value::Bool(false));
    assert_eq!(get(NAMES[5]).4["result"], "failed");
    assert_eq!(get(NAMES[5]).4["errno"], 19);
    let w = get("/dev/pm_report_node");
    assert_eq!(w.4["after"], NAMES[1]);
    thread_names.sort();
    assert_eq!(
        thread_names,
        [(0, "worker 0".to_string()), (1, "worker 1".to_string()), (2, "waits".to_string())]
    );
}
