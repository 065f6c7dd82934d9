//! Scheduling benchmark of the parmod runtime in `--simulate` mode.
//!
//! Generates layered random DAGs (fixed seeds) of 100, 1000 and 10000
//! modules with known weights (100–5000 µs), runs `parmod --simulate --jobs J --trace` and
//! reports, per plan and J:
//!
//! * makespan (from the trace: last end − first start) against the list
//!   scheduling lower bound max(critical path, total weight / J); goal: ratio ≤ 1.05.
//!   For context, the makespan of an ideal zero-overhead list schedule with
//!   the plan's priorities (what a perfect runtime would reach) is shown too;
//! * scheduling overhead: the same DAG with every weight 0, trace makespan × J
//!   / modules, in µs per module; goal ≤ 20 µs.
//!
//! Each figure is the median of `--runs` runs (default 3).
//!
//! ```text
//! cargo run --profile host --features host --example simbench [-- --runs N --sizes 100,1000 --jobs 2,4]
//! ```
//! The binary is `$PARMOD_BIN`, else target/x86_64-unknown-linux-musl/release/parmod.

#[cfg(not(feature = "host"))]
fn main() {
    eprintln!("simbench needs the host feature: cargo run --profile host --features host --example simbench");
    std::process::exit(2);
}

#[cfg(feature = "host")]
fn main() {
    bench::main();
}

#[cfg(feature = "host")]
mod bench {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use parmod::plan::trace::{self, result};
    use parmod::plan::{ModuleSpec, PlanBuilder};

    const RATIO_GOAL: f64 = 1.05;
    const OVERHEAD_GOAL_US: f64 = 20.0;

    struct Lcg(u64);

    impl Lcg {
        fn new(seed: u64) -> Self {
            let mut l = Lcg(seed ^ 0x9e37_79b9_7f4a_7c15);
            l.next_u32();
            l
        }
        fn next_u32(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 32) as u32
        }
        fn below(&mut self, n: u32) -> u32 {
            ((self.next_u32() as u64 * n as u64) >> 32) as u32
        }
        fn range(&mut self, lo: u32, hi: u32) -> u32 {
            lo + self.below(hi - lo + 1)
        }
    }

    /// A layered random DAG of `n` modules: layers of 4–16 modules; every
    /// module past the first layer waits for 2–3 earlier ones (70 % from the
    /// layer right above, the rest from any earlier layer; 80 % hard edges).
    /// Narrow enough that the critical path matters at 4 jobs.
    fn layered_dag(seed: u64, n: u32, w_lo: u32, w_hi: u32) -> PlanBuilder {
        let mut rng = Lcg::new(seed);
        let mut modules = Vec::with_capacity(n as usize);
        let (mut prev_start, mut start) = (0u32, 0u32);
        while start < n {
            let end = (start + rng.range(4, 16)).min(n);
            for i in start..end {
                let mut waits = Vec::new();
                if start > 0 {
                    for _ in 0..rng.range(2, 3) {
                        let d = if rng.below(10) < 7 {
                            rng.range(prev_start, start - 1)
                        } else {
                            rng.below(start)
                        };
                        waits.push((d, rng.below(10) < 8));
                    }
                }
                modules.push(ModuleSpec {
                    name: format!("b{seed}_{i}"),
                    path: Some(format!("kernel/bench/b{i}.ko")),
                    weight_us: rng.range(w_lo, w_hi),
                    deps: waits,
                    ..ModuleSpec::default()
                });
            }
            prev_start = start;
            start = end;
        }
        PlanBuilder {
            kernel_release: "0.0.0-simbench".into(),
            modules,
            ..PlanBuilder::default()
        }
    }

    /// Makespan of an ideal list schedule (zero overhead, `jobs` machines,
    /// ready modules started by highest plan priority), µs: what a perfect
    /// runtime with parmod's rule would achieve.
    fn list_schedule_us(pb: &PlanBuilder, jobs: u32) -> u64 {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let n = pb.modules.len();
        let prio = pb.priorities();
        let mut pending: Vec<usize> = vec![0; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, m) in pb.modules.iter().enumerate() {
            let mut ds: Vec<usize> = m.deps.iter().map(|&(d, _)| d as usize).collect();
            ds.sort_unstable();
            ds.dedup();
            pending[i] = ds.len();
            for d in ds {
                dependents[d].push(i);
            }
        }
        let mut ready: BinaryHeap<(u64, Reverse<usize>)> = (0..n)
            .filter(|&i| pending[i] == 0)
            .map(|i| (prio[i], Reverse(i)))
            .collect();
        let mut running: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
        let (mut now, mut end) = (0u64, 0u64);
        loop {
            while running.len() < jobs as usize {
                let Some((_, Reverse(i))) = ready.pop() else {
                    break;
                };
                running.push(Reverse((now + pb.modules[i].weight_us as u64, i)));
            }
            let Some(Reverse((t, i))) = running.pop() else {
                break;
            };
            now = t;
            end = end.max(t);
            for &d in &dependents[i] {
                pending[d] -= 1;
                if pending[d] == 0 {
                    ready.push((prio[d], Reverse(d)));
                }
            }
        }
        end
    }

    /// Longest weighted path (hard and soft edges both order), µs.
    fn critical_path_us(pb: &PlanBuilder) -> u64 {
        let mut finish = vec![0u64; pb.modules.len()];
        for (i, m) in pb.modules.iter().enumerate() {
            let start = m
                .deps
                .iter()
                .map(|&(d, _)| finish[d as usize])
                .max()
                .unwrap_or(0);
            finish[i] = start + m.weight_us as u64;
        }
        finish.into_iter().max().unwrap_or(0)
    }

    fn parmod_bin() -> PathBuf {
        if let Some(p) = std::env::var_os("PARMOD_BIN") {
            return PathBuf::from(p);
        }
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/x86_64-unknown-linux-musl/release/parmod")
    }

    struct RunResult {
        /// Trace makespan, ns.
        makespan_ns: u64,
        /// Process wall time, ns.
        wall_ns: u64,
        /// Median of (end − start − weight) over the loads, ns: how late the
        /// simulated load's sleep woke up (the machine's timer latency).
        overshoot_ns: u64,
        /// Mean time a worker spent between the end of one load and the
        /// start of its next, ns (dispatch cost plus waiting for ready work).
        gap_ns: u64,
    }

    fn run(
        bin: &Path,
        plan: &Path,
        trace_path: &Path,
        jobs: u32,
        weights: &[u32],
    ) -> Result<RunResult, String> {
        let n = weights.len();
        let _ = std::fs::remove_file(trace_path);
        let t0 = Instant::now();
        let out = Command::new(bin)
            .arg("--simulate")
            .arg("--quiet")
            .arg("--jobs")
            .arg(jobs.to_string())
            .arg("--trace")
            .arg(trace_path)
            .arg(plan)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let wall_ns = t0.elapsed().as_nanos() as u64;
        if out.status.code() != Some(0) {
            return Err(format!(
                "parmod exited with {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let bytes = std::fs::read(trace_path).map_err(|e| format!("no trace: {e}"))?;
        let (_, recs) = trace::parse(&bytes).map_err(|e| format!("bad trace: {e}"))?;
        let (mut lo, mut hi, mut count) = (u64::MAX, 0u64, 0usize);
        let mut overshoot = Vec::with_capacity(n);
        let mut by_worker: std::collections::HashMap<u16, Vec<(u64, u64)>> = Default::default();
        for r in recs {
            if r.result != result::LOADED {
                return Err(format!(
                    "module {} ended as {}",
                    r.index,
                    result::name(r.result)
                ));
            }
            lo = lo.min(r.start_ns);
            hi = hi.max(r.end_ns);
            count += 1;
            let w = weights.get(r.index as usize).copied().unwrap_or(0) as u64 * 1000;
            overshoot.push((r.end_ns - r.start_ns).saturating_sub(w));
            by_worker
                .entry(r.worker)
                .or_default()
                .push((r.start_ns, r.end_ns));
        }
        let (mut gap_sum, mut gaps) = (0u64, 0u64);
        for list in by_worker.values_mut() {
            list.sort_unstable();
            for p in list.windows(2) {
                gap_sum += p[1].0.saturating_sub(p[0].1);
                gaps += 1;
            }
        }
        if count != n {
            return Err(format!("trace has {count} records for {n} modules"));
        }
        Ok(RunResult {
            makespan_ns: hi.saturating_sub(lo),
            wall_ns,
            overshoot_ns: if overshoot.is_empty() {
                0
            } else {
                median(overshoot)
            },
            gap_ns: gap_sum / gaps.max(1),
        })
    }

    fn median(mut v: Vec<u64>) -> u64 {
        v.sort_unstable();
        v[v.len() / 2]
    }

    fn list_arg(args: &[String], name: &str, default: &[u32]) -> Vec<u32> {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .map(|s| {
                    s.split(',')
                        .map(|x| x.trim().parse().expect("a number"))
                        .collect()
                })
                .unwrap_or_else(|| panic!("{name} needs a value")),
            None => default.to_vec(),
        }
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let runs = list_arg(&args, "--runs", &[3])[0].max(1) as usize;
        let sizes = list_arg(&args, "--sizes", &[100, 1000, 10000]);
        let jobs_list = list_arg(&args, "--jobs", &[2, 4]);
        let bin = parmod_bin();
        if !bin.is_file() {
            eprintln!(
                "simbench: {} is missing: build it with `make` (or set PARMOD_BIN)",
                bin.display()
            );
            std::process::exit(2);
        }
        let dir = std::env::temp_dir().join(format!("parmod-simbench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let trace_path = dir.join("trace.bin");

        println!("parmod --simulate scheduling benchmark ({runs} runs per row, medians)\n");
        println!(
            "| modules | edges | jobs | critical path ms | work/jobs ms | bound ms | ideal list ms | makespan ms | ratio | goal ≤ {RATIO_GOAL} \
             | timer overshoot µs | dispatch gap µs | overhead µs/module | wall ms (w=0) | goal ≤ {OVERHEAD_GOAL_US} µs |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|:---:|");
        let mut misses = 0;
        let mut errors = 0;
        for (k, &n) in sizes.iter().enumerate() {
            let seed = 0x5eed_0000 + k as u64;
            let pb = layered_dag(seed, n, 100, 5000);
            let mut zero = pb.clone();
            for m in &mut zero.modules {
                m.weight_us = 0;
            }
            let edges: usize = pb.modules.iter().map(|m| m.deps.len()).sum();
            let plan_path = dir.join(format!("dag{n}.plan"));
            let zero_path = dir.join(format!("dag{n}-zero.plan"));
            std::fs::write(&plan_path, pb.build().expect("plan builds")).expect("write plan");
            std::fs::write(&zero_path, zero.build().expect("plan builds")).expect("write plan");
            let cp = critical_path_us(&pb);
            let total: u64 = pb.modules.iter().map(|m| m.weight_us as u64).sum();
            let weights: Vec<u32> = pb.modules.iter().map(|m| m.weight_us).collect();
            let zeros = vec![0u32; weights.len()];
            for &jobs in &jobs_list {
                let per_job = total as f64 / jobs as f64;
                let bound_us = (cp as f64).max(per_job);
                let ideal_ms = list_schedule_us(&pb, jobs) as f64 / 1e3;
                let mut spans = Vec::new();
                let mut overshoots = Vec::new();
                let mut dgaps = Vec::new();
                let mut zspans = Vec::new();
                let mut zwalls = Vec::new();
                let mut err = None;
                for _ in 0..runs {
                    match run(&bin, &plan_path, &trace_path, jobs, &weights) {
                        Ok(r) => {
                            spans.push(r.makespan_ns);
                            overshoots.push(r.overshoot_ns);
                            dgaps.push(r.gap_ns);
                        }
                        Err(e) => err = Some(e),
                    }
                    match run(&bin, &zero_path, &trace_path, jobs, &zeros) {
                        Ok(r) => {
                            zspans.push(r.makespan_ns);
                            zwalls.push(r.wall_ns);
                        }
                        Err(e) => err = Some(e),
                    }
                }
                if let Some(e) = err {
                    errors += 1;
                    println!("| {n} | {edges} | {jobs} | {:.1} | {:.1} | {:.1} | {ideal_ms:.1} | ERROR: {e} | | | | | | | |", cp as f64 / 1e3, per_job / 1e3, bound_us / 1e3);
                    continue;
                }
                let span_us = median(spans) as f64 / 1e3;
                let ratio = span_us / bound_us;
                let overhead_us = median(zspans) as f64 / 1e3 * jobs as f64 / n as f64;
                let zwall_ms = median(zwalls) as f64 / 1e6;
                let overshoot_us = median(overshoots) as f64 / 1e3;
                let gap_us = median(dgaps) as f64 / 1e3;
                let ok_ratio = ratio <= RATIO_GOAL;
                let ok_over = overhead_us <= OVERHEAD_GOAL_US;
                misses += usize::from(!ok_ratio) + usize::from(!ok_over);
                println!(
                    "| {n} | {edges} | {jobs} | {:.1} | {:.1} | {:.1} | {ideal_ms:.1} | {:.1} | {ratio:.3} | {} | {overshoot_us:.1} | {gap_us:.1} | {overhead_us:.2} | {zwall_ms:.1} | {} |",
                    cp as f64 / 1e3,
                    per_job / 1e3,
                    bound_us / 1e3,
                    span_us / 1e3,
                    if ok_ratio { "PASS" } else { "MISS" },
                    if ok_over { "PASS" } else { "MISS" },
                );
            }
        }
        println!();
        println!(
            "bound = max(critical path, total weight / jobs); ideal list = zero-overhead list schedule \
             with the plan's priorities; ratio = makespan / bound; timer overshoot = median of \
             (end − start − weight) per load, the machine's wake-up latency, which the ratio includes; \
             dispatch gap = mean idle time of a worker between two loads; overhead = makespan of the \
             same DAG with all weights 0 × jobs / modules."
        );
        println!("{misses} goal(s) missed, {errors} row(s) with errors");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
