//! The plan writer and reader together, structure-aware: a plan described
//! by the input (modules, dependencies, soft dependencies, device waits,
//! aliases, header fields) is built with `PlanBuilder`; what the writer
//! accepts the reader must accept and give back as it was described, and a
//! run of it on the fake kernel must end.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use parmod::plan::{module_flags, DeviceWaitSpec, ModuleSpec, Plan, PlanBuilder};
use parmod_fuzz::plan::{check_plan, simulate, Script};

#[derive(Arbitrary, Debug)]
enum File {
    Builtin,
    Ko,
    Xz,
    Zst,
    Gz,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct M {
    /// None: a generated valid name.
    name: Option<String>,
    file: File,
    params: String,
    flags: u16,
    weight_us: u16,
    serial_us: u16,
    timeout_ms: u16,
    deps: Vec<(u8, bool)>,
    post: Vec<u8>,
    soft_pre: Vec<u8>,
    soft_post: Vec<u8>,
    file_size: u32,
}

#[derive(Arbitrary, Debug)]
struct W {
    path: Result<u8, String>,
    module: Option<u8>,
    timeout_ms: u16,
}

#[derive(Arbitrary, Debug)]
struct Spec {
    modules: Vec<M>,
    waits: Vec<W>,
    aliases: Vec<(String, u8)>,
    config_alias_count: u8,
    jobs: u8,
    module_timeout_ms: u16,
    deadline_ms: u16,
    all_modules: bool,
    script: Vec<u8>,
}

const WAIT_PATHS: &[&str] = &["/dev/vda", "/dev/snd/controlC*", "/sys/class/net/eth0/address", "/sys/bus/*/drivers/x", "/dev/../etc"];

fn builder(s: &Spec) -> PlanBuilder {
    let n = s.modules.len().max(1) as u32;
    let modules = s
        .modules
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let name = m.name.clone().unwrap_or_else(|| format!("m{i}"));
            let path = match &m.file {
                File::Builtin => None,
                File::Ko => Some(format!("kernel/{name}.ko")),
                File::Xz => Some(format!("kernel/{name}.ko.xz")),
                File::Zst => Some(format!("kernel/{name}.ko.zst")),
                File::Gz => Some(format!("kernel/{name}.ko.gz")),
                File::Raw(p) => Some(p.clone()),
            };
            // Flags the writer takes from the caller (it derives BUILTIN and the compression).
            let flags = [
                module_flags::REQUESTED,
                module_flags::SOFT_ONLY,
                module_flags::IGNORE_MODVERSIONS,
                module_flags::IGNORE_VERMAGIC,
                module_flags::DISABLED,
                module_flags::BLACKLISTED,
                module_flags::POST_ONLY,
                module_flags::ROOT_PATH,
                module_flags::ON_REQUEST,
            ]
            .iter()
            .enumerate()
            .filter(|(b, _)| m.flags & (1 << b) != 0)
            .fold(0, |f, (_, &bit)| f | bit);
            let earlier = (i as u32).max(1);
            let deps: Vec<(u32, bool)> = if i == 0 { Vec::new() } else { m.deps.iter().map(|&(d, h)| (d as u32 % earlier, h)).collect() };
            ModuleSpec {
                name,
                path,
                params: m.params.clone(),
                flags,
                weight_us: m.weight_us as u32 * 10,
                serial_us: m.serial_us as u32 * 10,
                timeout_ms: m.timeout_ms as u32,
                file_size: m.file_size,
                post_deps: m.post.iter().filter_map(|&p| deps.get(p as usize % deps.len().max(1)).map(|d| d.0)).collect(),
                deps,
                soft_pre: m.soft_pre.iter().map(|&d| d as u32 % n).collect(),
                soft_post: m.soft_post.iter().map(|&d| d as u32 % n).collect(),
            }
        })
        .collect();
    PlanBuilder {
        kernel_release: "6.1.0-fuzz".into(),
        jobs: s.jobs as u32,
        module_timeout_ms: s.module_timeout_ms as u32,
        deadline_ms: s.deadline_ms as u32,
        modules,
        waits: s
            .waits
            .iter()
            .map(|w| DeviceWaitSpec {
                path: match &w.path {
                    Ok(k) => WAIT_PATHS[*k as usize % WAIT_PATHS.len()].into(),
                    Err(p) => p.clone(),
                },
                module: w.module.map(|m| m as u32 % n),
                timeout_ms: w.timeout_ms as u32,
            })
            .collect(),
        aliases: s.aliases.iter().map(|(p, m)| (p.clone(), *m as u32 % n)).collect(),
        config_alias_count: (s.config_alias_count as usize).min(s.aliases.len()) as u32,
        flags: if s.all_modules { parmod::plan::plan_flags::ALL_MODULES } else { 0 },
    }
}

/// The plan gives back what the builder was told.
fn check_round_trip(b: &PlanBuilder, p: &Plan<'_>) {
    assert_eq!(p.kernel_release(), b.kernel_release.as_bytes());
    assert_eq!((p.jobs(), p.module_timeout_ms(), p.deadline_ms()), (b.jobs, b.module_timeout_ms, b.deadline_ms));
    assert_eq!(p.module_count() as usize, b.modules.len());
    for (m, spec) in p.modules().zip(&b.modules) {
        let i = m.index();
        assert_eq!(m.name(), spec.name.as_bytes(), "module {i}: name");
        assert_eq!(m.params(), spec.params.as_bytes(), "module {i}: params");
        assert_eq!(m.path().map(<[u8]>::to_vec), spec.path.as_ref().map(|p| p.as_bytes().to_vec()), "module {i}: path");
        assert_eq!(m.is_builtin(), spec.path.is_none() && spec.flags & module_flags::DISABLED == 0, "module {i}: built in");
        assert_eq!((m.weight_us(), m.timeout_ms(), m.file_size()), (spec.weight_us, spec.timeout_ms, spec.file_size), "module {i}");
        // The writer caps the serial part at the weight.
        assert_eq!(m.serial_us(), spec.serial_us.min(spec.weight_us), "module {i}: serial_us");
        let mut want: Vec<(u32, bool)> = spec.deps.clone();
        want.sort_by_key(|&(d, h)| (d, !h));
        want.dedup_by_key(|e| e.0);
        let got: Vec<(u32, bool)> = m.deps().map(|e| (e.module, e.hard)).collect();
        assert_eq!(got, want, "module {i}: deps");
        for e in m.deps() {
            assert_eq!(e.post, !e.hard && spec.post_deps.contains(&e.module), "module {i}: post edge to {}", e.module);
        }
        assert_eq!(m.soft_pre().map(|e| e.module).collect::<Vec<_>>(), spec.soft_pre, "module {i}: soft_pre");
        assert_eq!(m.soft_post().map(|e| e.module).collect::<Vec<_>>(), spec.soft_post, "module {i}: soft_post");
        assert_eq!(m.flags() & !(module_flags::BUILTIN | module_flags::COMPRESSION_MASK), spec.flags, "module {i}: flags");
    }
    let mut want: Vec<(Vec<u8>, Option<u32>, u32)> = b.waits.iter().map(|w| (w.path.as_bytes().to_vec(), w.module, w.timeout_ms)).collect();
    let mut got: Vec<(Vec<u8>, Option<u32>, u32)> = p.waits().map(|w| (w.path().to_vec(), w.module(), w.timeout_ms())).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "device waits");
    let cfg = b.config_alias_count as usize;
    let got: Vec<(Vec<u8>, u32)> = p.aliases().map(|a| (a.pattern.to_vec(), a.module)).collect();
    let want: Vec<(Vec<u8>, u32)> = b.aliases.iter().map(|(s, m)| (s.as_bytes().to_vec(), *m)).collect();
    assert_eq!(got[..cfg], want[..cfg], "modprobe.d aliases keep their order");
    let (mut g, mut w) = (got[cfg..].to_vec(), want[cfg..].to_vec());
    g.sort();
    w.sort();
    assert_eq!(g, w, "kernel aliases");
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = Spec::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else { return };
    let b = builder(&spec);
    match b.build() {
        Ok(bytes) => {
            let plan = Plan::parse(&bytes).unwrap_or_else(|e| panic!("the reader refuses what the writer built: {e}"));
            check_round_trip(&b, &plan);
            check_plan(&plan);
            simulate(&bytes, &Script::read(&plan, &spec.script));
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
