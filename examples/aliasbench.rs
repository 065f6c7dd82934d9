//! How long coldplug's name resolution takes: every modalias of a file (one
//! a line) resolved against a plan compiled with `parmod-plan compile --all`,
//! with the runtime's own lookup (modprobe.d aliases, names, the plan's
//! sorted kernel aliases) as coldplug calls it, natively on the build host
//! (or, built for musl, in a guest: `qemu-test/coldplug.sh --aliases`).
//!
//! ```text
//! cargo run --profile host --features host,runtime --example aliasbench -- PLAN MODALIASES [RUNS]
//! ```
//! Prints, per run, the time for the whole list, and the median; with
//! `--show`, each modalias and the modules it names.

#[cfg(not(all(feature = "host", feature = "runtime")))]
fn main() {
    eprintln!("aliasbench needs the host and runtime features: cargo run --profile host --features host,runtime --example aliasbench");
    std::process::exit(2);
}

#[cfg(all(feature = "host", feature = "runtime"))]
fn main() {
    use parmod::cmdline::CmdlineBuf;
    use parmod::plan::Plan;
    use parmod::runtime::lookup::{names_have_colons, resolve_modalias};
    use std::time::Instant;

    let args: Vec<String> = std::env::args().skip(1).collect();
    let show = args.iter().any(|a| a == "--show");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let (Some(plan_path), Some(list_path)) = (pos.first(), pos.get(1)) else {
        eprintln!("usage: aliasbench PLAN MODALIASES [RUNS] [--show]");
        std::process::exit(2);
    };
    let runs: usize = match pos.get(2).map(|r| r.parse()) {
        None => 20,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("aliasbench: RUNS must be a positive number");
            std::process::exit(2);
        }
    };
    let read = |p: &str| {
        std::fs::read(p).unwrap_or_else(|e| {
            eprintln!("aliasbench: cannot read {p}: {e}");
            std::process::exit(1);
        })
    };
    let bytes = read(plan_path);
    let plan = Plan::parse(&bytes).unwrap_or_else(|e| {
        eprintln!("aliasbench: {plan_path}: not a usable plan: {e:?}; compile one with parmod-plan compile --all");
        std::process::exit(1);
    });
    let text = read(list_path);
    let aliases: Vec<&[u8]> = text.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
    let cmdline = CmdlineBuf::read_with(|_| 0);
    // As coldplug resolves a modalias.
    let colon_names = names_have_colons(&plan);
    let resolve = |a: &[u8], f: &mut dyn FnMut(u32)| {
        resolve_modalias(&plan, cmdline.view(), a, colon_names, f);
    };
    let mut named = 0usize;
    for a in &aliases {
        let mut mods = Vec::new();
        resolve(a, &mut |m| mods.push(m));
        named += mods.len();
        if show {
            let names: Vec<String> =
                mods.iter().filter_map(|&m| plan.module(m)).map(|m| String::from_utf8_lossy(m.name()).into_owned()).collect();
            println!("{} -> {}", String::from_utf8_lossy(a), names.join(" "));
        }
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let mut n = 0usize;
        for a in &aliases {
            resolve(a, &mut |_| n += 1);
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(n);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{} modaliases, {} module names, {} kernel aliases in the plan: median {:.3} ms per pass ({:.1} us per modalias), {} runs, min {:.3} max {:.3}",
        aliases.len(),
        named,
        plan.alias_count(),
        times[runs / 2],
        times[runs / 2] * 1e3 / aliases.len().max(1) as f64,
        runs,
        times[0],
        times[runs - 1]
    );
}
