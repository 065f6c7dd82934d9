//! `parmod-plan compile --decompress DIR`: compressed module files (.ko.xz,
//! .ko.zst, .ko.gz) decompressed into DIR, the plan naming the .ko paths.
//! The fixtures are made here: a fake lib/modules/VER tree whose files are
//! compressed with the crates' encoders (and, when installed, the xz, zstd
//! and gzip tools with the kernel's own options).
//!
//! A missing xz, zstd or gzip skips its part of the tools test with a line
//! starting "SKIP", or fails it when PARMOD_REQUIRE_COMPRESSORS=1.
#![cfg(feature = "host")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use parmod::compiler::estimate_weight_us;
use parmod::plan::{Compression, Plan};

mod plan_tool;
use plan_tool::{run, skip, Run, Scratch, BIN};

const KVER: &str = "6.1.0-test";

/// The fake root and its module directory, inside a test's scratch dir.
fn root(s: &Scratch) -> PathBuf {
    s.path("root")
}

fn moddir(s: &Scratch) -> PathBuf {
    root(s).join("lib/modules").join(KVER)
}

/// A dummy module: an ELF magic, the name, then `len` bytes that compress
/// somewhat (a mix of text and a cheap pseudo-random sequence).
fn dummy_ko(name: &str, len: usize) -> Vec<u8> {
    let mut v = b"\x7fELF\x02\x01\x01\0".to_vec();
    v.extend_from_slice(name.as_bytes());
    let mut x: u32 = 0x9e37_79b9 ^ name.len() as u32;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if x.is_multiple_of(3) {
            v.extend_from_slice(b"module_init ");
        } else {
            v.push((x >> 24) as u8);
        }
    }
    v.truncate(len);
    v
}

fn xz(data: &[u8]) -> Vec<u8> {
    // As the kernel's `make modules_install` does: CRC32 check.
    let stream = liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32).unwrap();
    let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zst(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Write the module tree: `modules` are (path in modules.dep, file bytes, deps).
fn tree(s: &Scratch, modules: &[(&str, &[u8], &str)]) {
    let dir = moddir(s);
    std::fs::create_dir_all(&dir).unwrap();
    let mut dep = String::new();
    for (path, bytes, deps) in modules {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        dep.push_str(&format!("{path}:{}{deps}\n", if deps.is_empty() { "" } else { " " }));
    }
    std::fs::write(dir.join("modules.dep"), dep).unwrap();
    std::fs::write(dir.join("modules.alias"), "").unwrap();
}

fn compile(s: &Scratch, decompress: Option<&Path>, names: &[&str]) -> (Run, PathBuf) {
    let plan = s.path("out.plan");
    let (root, out) = (root(s).display().to_string(), plan.display().to_string());
    let decompress = decompress.map(|d| d.display().to_string());
    let mut args = vec!["compile", "--root", &root, "--kver", KVER, "-o", &out];
    if let Some(d) = &decompress {
        args.extend(["--decompress", d]);
    }
    args.extend_from_slice(names);
    (run(&args), plan)
}

/// (name, path, compression, file size, weight) of every module in the plan.
fn modules(plan: &Path) -> Vec<(String, String, Compression, u32, u32)> {
    let bytes = std::fs::read(plan).unwrap();
    let p = Plan::parse(&bytes).expect("the plan parses");
    let mut v: Vec<_> = p
        .modules()
        .map(|m| {
            (
                String::from_utf8_lossy(m.name()).into_owned(),
                String::from_utf8_lossy(m.path().unwrap_or_default()).into_owned(),
                m.compression(),
                m.file_size(),
                m.weight_us(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut v = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut v);
    }
    v.sort();
    v
}

/// The usual fixture: one module of each compression and a plain .ko.
fn standard_tree(s: &Scratch) -> Vec<(&'static str, Vec<u8>)> {
    let (x, z, g, p) =
        (dummy_ko("xfs", 300_000), dummy_ko("zz_drv", 70_000), dummy_ko("gg_net", 5_000), dummy_ko("libcrc", 3_000));
    tree(
        s,
        &[
            ("kernel/fs/xfs/xfs.ko.xz", &xz(&x), "kernel/lib/libcrc.ko"),
            ("kernel/drivers/zz_drv.ko.zst", &zst(&z), ""),
            ("kernel/net/gg_net.ko.gz", &gz(&g), "kernel/lib/libcrc.ko"),
            ("kernel/lib/libcrc.ko", &p, ""),
        ],
    );
    vec![("xfs", x), ("zz_drv", z), ("gg_net", g), ("libcrc", p)]
}

#[test]
fn decompresses_each_format_into_dir() {
    let s = Scratch::new("formats");
    let orig = standard_tree(&s);
    let out = s.path("decompressed");
    let (r, plan) = compile(&s, Some(&out), &["xfs", "zz_drv", "gg_net"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        files_under(&out),
        ["kernel/drivers/zz_drv.ko", "kernel/fs/xfs/xfs.ko", "kernel/net/gg_net.ko"],
        "only the compressed modules are written, without their suffix (and no temporary file is left)"
    );
    assert_eq!(std::fs::read(out.join("kernel/fs/xfs/xfs.ko")).unwrap(), orig[0].1);
    assert_eq!(std::fs::read(out.join("kernel/drivers/zz_drv.ko")).unwrap(), orig[1].1);
    assert_eq!(std::fs::read(out.join("kernel/net/gg_net.ko")).unwrap(), orig[2].1);
    let size = |n: &str| orig.iter().find(|o| o.0 == n).unwrap().1.len() as u32;
    let m = modules(&plan);
    let want: Vec<(String, String, Compression, u32, u32)> = [
        ("gg_net", "kernel/net/gg_net.ko"),
        ("libcrc", "kernel/lib/libcrc.ko"),
        ("xfs", "kernel/fs/xfs/xfs.ko"),
        ("zz_drv", "kernel/drivers/zz_drv.ko"),
    ]
    .iter()
    .map(|&(n, p)| (n.to_string(), p.to_string(), Compression::None, size(n), estimate_weight_us(size(n) as u64)))
    .collect();
    assert_eq!(m, want, "uncompressed paths, no compression flag, weights from the decompressed size");
    // The module directory is untouched.
    assert_eq!(
        files_under(&moddir(&s)),
        [
            "kernel/drivers/zz_drv.ko.zst",
            "kernel/fs/xfs/xfs.ko.xz",
            "kernel/lib/libcrc.ko",
            "kernel/net/gg_net.ko.gz",
            "modules.alias",
            "modules.dep"
        ]
    );

    // Again over the same DIR: the files are replaced, the plan is the same.
    let before = std::fs::read(&plan).unwrap();
    let (r, plan) = compile(&s, Some(&out), &["xfs", "zz_drv", "gg_net"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(&plan).unwrap(), before);
    assert_eq!(files_under(&out).len(), 3);
}

#[test]
fn without_decompress_the_plan_keeps_compressed_paths() {
    let s = Scratch::new("keep");
    standard_tree(&s);
    let (r, plan) = compile(&s, None, &["xfs", "zz_drv", "gg_net"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = modules(&plan);
    let got: Vec<(&str, &str, Compression)> = m.iter().map(|m| (m.0.as_str(), m.1.as_str(), m.2)).collect();
    assert_eq!(
        got,
        [
            ("gg_net", "kernel/net/gg_net.ko.gz", Compression::Gzip),
            ("libcrc", "kernel/lib/libcrc.ko", Compression::None),
            ("xfs", "kernel/fs/xfs/xfs.ko.xz", Compression::Xz),
            ("zz_drv", "kernel/drivers/zz_drv.ko.zst", Compression::Zstd),
        ]
    );
}

#[test]
fn decompress_into_the_module_dir_itself() {
    let s = Scratch::new("inplace");
    let orig = standard_tree(&s);
    let dir = moddir(&s);
    let (r, plan) = compile(&s, Some(&dir), &["xfs", "zz_drv", "gg_net"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        files_under(&dir),
        [
            "kernel/drivers/zz_drv.ko",
            "kernel/drivers/zz_drv.ko.zst",
            "kernel/fs/xfs/xfs.ko",
            "kernel/fs/xfs/xfs.ko.xz",
            "kernel/lib/libcrc.ko",
            "kernel/net/gg_net.ko",
            "kernel/net/gg_net.ko.gz",
            "modules.alias",
            "modules.dep"
        ]
    );
    assert_eq!(std::fs::read(dir.join("kernel/fs/xfs/xfs.ko")).unwrap(), orig[0].1);
    assert_eq!(std::fs::read(dir.join("kernel/lib/libcrc.ko")).unwrap(), orig[3].1);
    assert!(modules(&plan).iter().all(|m| m.2 == Compression::None && m.1.ends_with(".ko")));
}

#[test]
fn only_the_plan_modules_are_decompressed() {
    let s = Scratch::new("subset");
    standard_tree(&s);
    let out = s.path("d");
    let (r, _) = compile(&s, Some(&out), &["zz_drv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(files_under(&out), ["kernel/drivers/zz_drv.ko"]);
}

#[test]
fn concatenated_streams_are_decoded_in_full() {
    let s = Scratch::new("concat");
    let (a, b) = (dummy_ko("part_a", 20_000), dummy_ko("part_b", 9_000));
    let whole = [a.clone(), b.clone()].concat();
    let cat = |f: fn(&[u8]) -> Vec<u8>| [f(&a), f(&b)].concat();
    tree(
        &s,
        &[
            ("kernel/x/cx.ko.xz", &cat(xz), ""),
            ("kernel/x/cz.ko.zst", &cat(zst), ""),
            ("kernel/x/cg.ko.gz", &cat(gz), ""),
        ],
    );
    let out = s.path("d");
    let (r, plan) = compile(&s, Some(&out), &["cx", "cz", "cg"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in ["cx", "cz", "cg"] {
        assert_eq!(std::fs::read(out.join(format!("kernel/x/{f}.ko"))).unwrap(), whole, "{f}");
    }
    assert!(modules(&plan).iter().all(|m| m.3 == whole.len() as u32));
}

/// Files compressed by the real tools with the options of the kernel's
/// scripts/Makefile.modinst, when the tools are installed.
#[test]
fn files_from_the_command_line_tools() {
    let tools = [
        ("xz", "ko.xz", &["--check=crc32", "--lzma2=dict=1MiB", "-c"][..]),
        ("zstd", "ko.zst", &["-q", "-T0", "-c"][..]),
        ("gzip", "ko.gz", &["-n", "-9", "-c"][..]),
    ];
    let s = Scratch::new("tools");
    let src = s.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut mods: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
    for (tool, ext, args) in tools {
        let name = format!("t_{tool}");
        let data = dummy_ko(&name, 150_000);
        let f = src.join(&name);
        std::fs::write(&f, &data).unwrap();
        match Command::new(tool).args(args).arg(&f).output() {
            Ok(o) if o.status.success() => mods.push((format!("kernel/t/{name}.{ext}"), o.stdout, data)),
            Ok(o) => panic!("{tool} {args:?} {} failed: {}", f.display(), String::from_utf8_lossy(&o.stderr)),
            Err(e) => skip(
                "PARMOD_REQUIRE_COMPRESSORS",
                &format!("the {ext} file made by {tool}"),
                &format!("{tool} cannot run: {e}"),
                "apt-get install xz-utils zstd gzip",
            ),
        }
    }
    if mods.is_empty() {
        return;
    }
    let list: Vec<(&str, &[u8], &str)> = mods.iter().map(|m| (m.0.as_str(), m.1.as_slice(), "")).collect();
    tree(&s, &list);
    let out = s.path("d");
    let names: Vec<String> = mods
        .iter()
        .map(|m| Path::new(&m.0).file_name().unwrap().to_str().unwrap().split('.').next().unwrap().into())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (r, _) = compile(&s, Some(&out), &names);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (path, _, data) in &mods {
        let ko = &path[..path.find(".ko").unwrap() + 3];
        assert_eq!(&std::fs::read(out.join(ko)).unwrap(), data, "{path}");
    }
}

/// A damaged file of each format: exit 1, the message names the file, no
/// plan is written.
#[test]
fn corrupt_archives_fail_naming_the_file() {
    let data = dummy_ko("bad", 40_000);
    let mut flipped = xz(&data);
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let truncated_zst = {
        let z = zst(&data);
        z[..z.len() / 2].to_vec()
    };
    let mut bad_crc_gz = gz(&data);
    let n = bad_crc_gz.len();
    bad_crc_gz[n - 6] ^= 0xff; // the CRC32 in the trailer
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("kernel/b/bad.ko.xz", flipped, "xz"),
        ("kernel/b/bad.ko.zst", truncated_zst, "zstd"),
        ("kernel/b/bad.ko.gz", bad_crc_gz, "gzip"),
        ("kernel/b/bad.ko.gz", b"this is not gzip at all".to_vec(), "gzip"),
    ];
    for (i, (path, bytes, algo)) in cases.iter().enumerate() {
        let s = Scratch::new(&format!("corrupt{i}"));
        let good = dummy_ko("good", 10_000);
        tree(&s, &[(path, bytes, ""), ("kernel/g/good.ko.xz", &xz(&good), "")]);
        let out = s.path("d");
        let (r, plan) = compile(&s, Some(&out), &["good", "bad"]);
        assert_eq!(r.code, 1, "case {i}: {}", r.stderr);
        let full = moddir(&s).join(path);
        assert!(r.stderr.contains(&full.display().to_string()), "case {i}: the file is named: {}", r.stderr);
        assert!(r.stderr.contains(&format!("not valid {algo} data")), "case {i}: {}", r.stderr);
        assert!(r.stderr.contains("reinstall"), "case {i}: what to do: {}", r.stderr);
        assert!(!plan.exists(), "case {i}: no plan written");
        let stray: Vec<String> =
            files_under(&out).into_iter().filter(|f| f.contains(".tmp.") || f.contains("bad")).collect();
        assert!(stray.is_empty(), "case {i}: no partial file left: {stray:?}");
    }
}

#[test]
fn an_unwritable_dir_fails_with_a_clear_message() {
    let s = Scratch::new("unwritable");
    standard_tree(&s);
    // A path under a regular file can never be created, root or not.
    let blocker = s.path("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("sub");
    let (r, plan) = compile(&s, Some(&out), &["xfs"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--decompress") && r.stderr.contains(&out.display().to_string()), "{}", r.stderr);
    assert!(r.stderr.contains("writ"), "says what to do: {}", r.stderr);
    assert!(!plan.exists());

    // A DIR whose subdirectory is taken by a file: the module's file is named.
    let out = s.path("d");
    std::fs::create_dir_all(out.join("kernel/fs")).unwrap();
    std::fs::write(out.join("kernel/fs/xfs"), "in the way").unwrap();
    let (r, plan) = compile(&s, Some(&out), &["xfs"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("xfs.ko.xz") && r.stderr.contains("kernel/fs/xfs/xfs.ko"), "{}", r.stderr);
    assert!(!plan.exists());
}

#[test]
fn a_missing_module_file_is_reported_before_decompressing() {
    let s = Scratch::new("missing");
    standard_tree(&s);
    std::fs::remove_file(moddir(&s).join("kernel/lib/libcrc.ko")).unwrap();
    let out = s.path("d");
    let (r, plan) = compile(&s, Some(&out), &["xfs"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("libcrc.ko") && r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(!plan.exists());
    assert!(files_under(&out).is_empty(), "nothing decompressed");
}

#[test]
fn decompress_needs_a_value() {
    let s = Scratch::new("usage");
    standard_tree(&s);
    let out = Command::new(BIN).args(["compile", "-o"]).arg(s.path("p")).arg("--decompress").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--decompress needs a value"));
}
