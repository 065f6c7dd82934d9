//! Small kernel module trees written by the tests, one per case, and kmod's
//! answer for them.
//!
//! A [`Tree`] holds modules (minimal ELF relocatable objects with a
//! `.modinfo` section, exported symbols in `__ksymtab_strings` and undefined
//! symbols for what they use: what depmod reads), configuration files and the
//! kernel's index files, which the tree writes itself from the modules as
//! depmod would (modules.dep from the symbols, modules.alias, modules.symbols,
//! modules.softdep from modinfo). parmod compiles that tree.
//!
//! When kmod is installed, [`Tree::kmod`] copies the tree, runs Debian's
//! `depmod -b` on the copy (checking that its text indexes say what the
//! tree's say) and answers with `modprobe -d COPY -S KVER -C
//! COPY/etc/modprobe.d --show-depends`. Without kmod it returns None after
//! saying so on stderr, and panics under PARMOD_REQUIRE_DEBIAN=1.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One module of a tree.
#[derive(Clone, Debug, Default)]
pub struct Mod {
    /// Path under lib/modules/KVER (or, when it starts with '/', under the root).
    pub path: String,
    pub exports: Vec<String>,
    /// Symbols it uses (exported by other modules of the tree).
    pub needs: Vec<String>,
    /// modinfo `alias=`, `softdep=` (e.g. "pre: a post: b"), `firmware=`.
    pub aliases: Vec<String>,
    pub softdep: Option<String>,
    pub firmware: Vec<String>,
    /// modinfo `depends=` (what modpost writes; depmod reads symbols instead).
    pub depends: Vec<String>,
}

/// Shorthand: a module at `path` exporting `exports` and needing `needs`.
pub fn module(path: &str, exports: &[&str], needs: &[&str]) -> Mod {
    Mod {
        path: path.into(),
        exports: exports.iter().map(|s| s.to_string()).collect(),
        needs: needs.iter().map(|s| s.to_string()).collect(),
        ..Mod::default()
    }
}

impl Mod {
    pub fn alias(mut self, a: &str) -> Self {
        self.aliases.push(a.into());
        self
    }
    pub fn softdep(mut self, s: &str) -> Self {
        self.softdep = Some(s.into());
        self
    }
    pub fn firmware(mut self, f: &str) -> Self {
        self.firmware.push(f.into());
        self
    }
    pub fn depends(mut self, d: &str) -> Self {
        self.depends.push(d.into());
        self
    }
    /// kmod's module name: the file name without `.ko`, `-` as `_`.
    pub fn name(&self) -> String {
        let base = self.path.rsplit('/').next().unwrap();
        base.split(".ko").next().unwrap().replace('-', "_")
    }
}

pub struct Tree {
    pub root: PathBuf,
    pub kver: String,
    pub modules: Vec<Mod>,
    /// Extra files: path under the root -> contents.
    pub files: BTreeMap<String, Vec<u8>>,
    /// depmod.d lines for the kmod copy (e.g. `external`), with ROOT in them
    /// replaced by the copy's absolute path.
    pub depmod_conf: String,
    /// Write no modules.dep at all (a kernel with only built-ins).
    pub no_dep: bool,
    /// Module files outside the indexes: path under the root -> module.
    pub loose: Vec<(String, Mod)>,
}

impl Tree {
    pub fn new(dir: PathBuf, kver: &str) -> Self {
        Tree {
            root: dir,
            kver: kver.into(),
            modules: Vec::new(),
            files: BTreeMap::new(),
            depmod_conf: String::new(),
            no_dep: false,
            loose: Vec::new(),
        }
    }

    pub fn add(mut self, m: Mod) -> Self {
        self.modules.push(m);
        self
    }

    /// A module file at `path` under the root that no index names.
    pub fn loose(mut self, path: &str, m: Mod) -> Self {
        self.loose.push((path.into(), m));
        self
    }

    pub fn file(mut self, path: &str, contents: &[u8]) -> Self {
        self.files.insert(path.into(), contents.to_vec());
        self
    }

    /// A modprobe.d file under etc/modprobe.d.
    pub fn conf(self, name: &str, text: &str) -> Self {
        self.file(&format!("etc/modprobe.d/{name}"), text.as_bytes())
    }

    pub fn module_dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.kver)
    }

    /// Where a module's file lives under `root`.
    fn file_of(&self, root: &Path, m: &Mod) -> PathBuf {
        match m.path.strip_prefix('/') {
            Some(abs) => root.join(abs),
            None => root.join("lib/modules").join(&self.kver).join(&m.path),
        }
    }

    /// Every module's transitive dependencies through symbols, as depmod
    /// computes them: path -> set of paths.
    pub fn deps(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut exporter: BTreeMap<&str, &Mod> = BTreeMap::new();
        for m in &self.modules {
            for e in &m.exports {
                exporter.insert(e, m);
            }
        }
        let mut out = BTreeMap::new();
        for m in &self.modules {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<&Mod> = vec![m];
            while let Some(x) = stack.pop() {
                for n in &x.needs {
                    let d = exporter.get(n.as_str()).unwrap_or_else(|| panic!("no module exports {n}"));
                    if d.path != m.path && seen.insert(d.path.clone()) {
                        stack.push(d);
                    }
                }
            }
            out.insert(m.path.clone(), seen);
        }
        out
    }

    /// Write the tree: module files, index files, configuration.
    pub fn write(&self) -> &Self {
        let _ = std::fs::remove_dir_all(&self.root);
        let md = self.module_dir();
        std::fs::create_dir_all(&md).unwrap();
        std::fs::create_dir_all(self.root.join("etc/modprobe.d")).unwrap();
        std::fs::create_dir_all(self.root.join("etc/depmod.d")).unwrap();
        for m in &self.modules {
            let f = self.file_of(&self.root, m);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            let elf = elf_module(m, &self.kver);
            std::fs::write(&f, if m.path.ends_with(".ko.xz") { xz(&elf) } else { elf }).unwrap();
        }
        if !self.no_dep {
            let deps = self.deps();
            let mut dep = String::new();
            for m in &self.modules {
                dep.push_str(&format!("{}:", m.path));
                for d in &deps[&m.path] {
                    dep.push_str(&format!(" {d}"));
                }
                dep.push('\n');
            }
            std::fs::write(md.join("modules.dep"), dep).unwrap();
        }
        let (mut alias, mut symbols, mut softdep) = (String::new(), String::new(), String::new());
        for m in &self.modules {
            let name = m.name();
            for a in &m.aliases {
                alias.push_str(&format!("alias {a} {name}\n"));
            }
            for e in &m.exports {
                symbols.push_str(&format!("alias symbol:{e} {name}\n"));
            }
            if let Some(s) = &m.softdep {
                softdep.push_str(&format!("softdep {name} {s}\n"));
            }
        }
        std::fs::write(md.join("modules.alias"), alias).unwrap();
        std::fs::write(md.join("modules.symbols"), symbols).unwrap();
        std::fs::write(md.join("modules.softdep"), softdep).unwrap();
        for (p, m) in &self.loose {
            let f = self.root.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, elf_module(m, &self.kver)).unwrap();
        }
        for (p, data) in &self.files {
            let f = self.root.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, data).unwrap();
        }
        self
    }

    /// kmod's answer for `names`, or None (said on stderr) when kmod is not
    /// installed. The copy is built with depmod, whose text indexes must
    /// agree with the tree's.
    pub fn kmod(&self, names: &[&str]) -> Option<Vec<KmodAnswer>> {
        let (Some(depmod), Some(modprobe)) = (tool("depmod"), tool("modprobe")) else {
            skip_or_fail("kmod's depmod and modprobe are not installed");
            return None;
        };
        let copy = self.root.with_extension("kmod");
        let _ = std::fs::remove_dir_all(&copy);
        let st = Command::new("cp").arg("-a").arg(&self.root).arg(&copy).status().unwrap();
        assert!(st.success(), "cp -a {}", self.root.display());
        let copy = std::fs::canonicalize(&copy).unwrap();
        // depmod writes its own indexes; ours are compared with them below.
        let md = copy.join("lib/modules").join(&self.kver);
        for f in ["modules.dep", "modules.alias", "modules.symbols", "modules.softdep"] {
            let _ = std::fs::remove_file(md.join(f));
        }
        let conf = self.depmod_conf.replace("ROOT", copy.to_str().unwrap());
        std::fs::write(copy.join("etc/depmod.d/test.conf"), conf).unwrap();
        let out = Command::new(&depmod)
            .arg("-b")
            .arg(&copy)
            .arg("-C")
            .arg(copy.join("etc/depmod.d"))
            .arg(&self.kver)
            .output()
            .unwrap();
        assert!(out.status.success(), "depmod: {}", String::from_utf8_lossy(&out.stderr));
        if self.no_dep {
            for f in ["modules.dep", "modules.dep.bin"] {
                let _ = std::fs::remove_file(md.join(f));
            }
        } else {
            self.check_depmod_agrees(&md, &copy);
        }
        let mut answers = Vec::new();
        for name in names {
            let out = Command::new(&modprobe)
                .arg("-d")
                .arg(&copy)
                .arg("-S")
                .arg(&self.kver)
                .arg("-C")
                .arg(copy.join("etc/modprobe.d"))
                .arg("--show-depends")
                .arg(name)
                .output()
                .unwrap();
            answers.push(KmodAnswer::parse(
                name,
                out.status.success(),
                &String::from_utf8_lossy(&out.stdout),
                &String::from_utf8_lossy(&out.stderr),
            ));
        }
        Some(answers)
    }

    /// depmod's modules.dep of the copy says what the tree's does (module
    /// by module, the same dependency sets; external paths hold the copy's
    /// absolute root where the tree's hold the target's `/`).
    fn check_depmod_agrees(&self, md: &Path, copy: &Path) {
        let theirs = std::fs::read_to_string(md.join("modules.dep")).unwrap();
        let prefix = copy.to_str().unwrap();
        let norm = |p: &str| p.strip_prefix(prefix).unwrap_or(p).to_string();
        let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in theirs.lines() {
            let (m, d) = line.split_once(':').unwrap();
            got.insert(norm(m), d.split_whitespace().map(norm).collect());
        }
        assert_eq!(got, self.deps(), "depmod's modules.dep differs from the tree's");
    }
}

fn tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.exists())
}

/// Say why kmod's side of a comparison is skipped; under
/// PARMOD_REQUIRE_DEBIAN=1, fail instead.
pub fn skip_or_fail(why: &str) {
    if std::env::var("PARMOD_REQUIRE_DEBIAN").as_deref() == Ok("1") {
        panic!("PARMOD_REQUIRE_DEBIAN=1 but {why}");
    }
    eprintln!("skipped: the comparison with kmod: {why}; install kmod to run it");
}

/// What `modprobe --show-depends NAME` printed.
#[derive(Clone, Debug, Default)]
pub struct KmodAnswer {
    pub name: String,
    pub ok: bool,
    /// `insmod` lines: (module name, options as printed, trimmed).
    pub insmod: Vec<(String, String)>,
    pub builtin: Vec<String>,
    /// `install` lines: the command and options as printed, trimmed.
    pub install: Vec<String>,
    pub stderr: String,
}

impl KmodAnswer {
    fn parse(name: &str, ok: bool, stdout: &str, stderr: &str) -> Self {
        let mut a = KmodAnswer { name: name.into(), ok, stderr: stderr.into(), ..Default::default() };
        for line in stdout.lines() {
            if let Some(rest) = line.strip_prefix("insmod ") {
                let (path, opts) = rest.split_once(' ').unwrap_or((rest, ""));
                let base = path.rsplit('/').next().unwrap();
                a.insmod.push((base.split(".ko").next().unwrap().replace('-', "_"), opts.trim().to_string()));
            } else if let Some(n) = line.strip_prefix("builtin ") {
                a.builtin.push(n.trim().replace('-', "_"));
            } else if let Some(c) = line.strip_prefix("install ") {
                a.install.push(c.trim().to_string());
            }
        }
        a
    }

    /// Every module kmod would load or find built in, as a set.
    pub fn modules(&self) -> BTreeSet<String> {
        self.insmod.iter().map(|(n, _)| n.clone()).chain(self.builtin.iter().cloned()).collect()
    }
}

// ---------------------------------------------------------------- ELF

/// xz with a CRC32 check, as the kernel's `make modules_install` compresses.
pub fn xz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let stream = liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32).unwrap();
    let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A minimal ELF64 little-endian relocatable object as depmod and parmod
/// read a module: `.modinfo`, `__ksymtab_strings` (exports), `.symtab` with
/// the undefined symbols it needs, `.strtab`, `.shstrtab`.
pub fn elf_module(m: &Mod, kver: &str) -> Vec<u8> {
    let mut modinfo = Vec::new();
    let mut info = |k: &str, v: &str| {
        modinfo.extend_from_slice(format!("{k}={v}").as_bytes());
        modinfo.push(0);
    };
    info("license", "GPL");
    for a in &m.aliases {
        info("alias", a);
    }
    if let Some(s) = &m.softdep {
        info("softdep", s);
    }
    for f in &m.firmware {
        info("firmware", f);
    }
    if !m.depends.is_empty() {
        info("depends", &m.depends.join(","));
    }
    info("name", &m.name());
    info("vermagic", &format!("{kver} SMP mod_unload "));
    let mut ksymtab = vec![0u8];
    for e in &m.exports {
        ksymtab.extend_from_slice(e.as_bytes());
        ksymtab.push(0);
    }
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    for n in &m.needs {
        let name_off = strtab.len() as u32;
        strtab.extend_from_slice(n.as_bytes());
        strtab.push(0);
        let mut sym = [0u8; 24];
        sym[0..4].copy_from_slice(&name_off.to_le_bytes());
        sym[4] = 0x10; // STB_GLOBAL, STT_NOTYPE; st_shndx 0 = SHN_UNDEF
        symtab.extend_from_slice(&sym);
    }
    let names = [".modinfo", "__ksymtab_strings", ".symtab", ".strtab", ".shstrtab"];
    let mut shstrtab = vec![0u8];
    let mut name_offs = Vec::new();
    for n in names {
        name_offs.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(n.as_bytes());
        shstrtab.push(0);
    }
    // (type, data, link, info, entsize)
    let sections: [(u32, &[u8], u32, u32, u64); 5] = [
        (1, &modinfo, 0, 0, 0),  // PROGBITS
        (1, &ksymtab, 0, 0, 0),  // PROGBITS
        (2, &symtab, 4, 1, 24),  // SYMTAB, strings in section 4
        (3, &strtab, 0, 0, 0),   // STRTAB
        (3, &shstrtab, 0, 0, 0), // STRTAB
    ];
    let mut out = vec![0u8; 64];
    let mut offs = Vec::new();
    for (_, data, ..) in &sections {
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        offs.push(out.len() as u64);
        out.extend_from_slice(data);
    }
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let shoff = out.len() as u64;
    out.extend_from_slice(&[0u8; 64]); // section 0
    for (i, (ty, data, link, info, entsize)) in sections.iter().enumerate() {
        let mut sh = [0u8; 64];
        sh[0..4].copy_from_slice(&name_offs[i].to_le_bytes());
        sh[4..8].copy_from_slice(&ty.to_le_bytes());
        sh[0x18..0x20].copy_from_slice(&offs[i].to_le_bytes());
        sh[0x20..0x28].copy_from_slice(&(data.len() as u64).to_le_bytes());
        sh[0x28..0x2c].copy_from_slice(&link.to_le_bytes());
        sh[0x2c..0x30].copy_from_slice(&info.to_le_bytes());
        sh[0x30..0x38].copy_from_slice(&1u64.to_le_bytes());
        sh[0x38..0x40].copy_from_slice(&entsize.to_le_bytes());
        out.extend_from_slice(&sh);
    }
    let h = &mut out[..64];
    h[0..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // little endian
    h[6] = 1; // EV_CURRENT
    h[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
    h[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    h[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    h[0x3c..0x3e].copy_from_slice(&6u16.to_le_bytes()); // e_shnum
    h[0x3e..0x40].copy_from_slice(&5u16.to_le_bytes()); // e_shstrndx
    out
}
