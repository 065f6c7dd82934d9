//! A small kernel module tree on disk (the compiler stats the module
//! files), made once per fuzzing process under the temporary directory.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The kernel version of the tree.
pub const KVER: &str = "fuzz";

/// The modules of the tree: (file under the module directory, the
/// dependencies modules.dep lists for it).
pub const MODULES: &[(&str, &[&str])] = &[
    ("kernel/a.ko", &[]),
    ("kernel/b.ko", &["kernel/a.ko"]),
    ("kernel/c-d.ko", &["kernel/b.ko", "kernel/a.ko"]),
    ("kernel/e.ko", &[]),
    ("kernel/f.ko.xz", &[]),
    ("kernel/g.ko", &["kernel/e.ko"]),
];

/// Canonical names of [`MODULES`], in that order.
pub const NAMES: &[&str] = &["a", "b", "c_d", "e", "f", "g"];

const ALIASES: &str = "alias pci:v00008086d*sv* e\nalias fs-gee g\nalias usb:v1234p*d* f\nalias c-d-alias c-d\n";
const SYMBOLS: &str = "alias symbol:a_fn a\nalias symbol:b_fn b\n";
const BUILTIN: &str = "kernel/z.ko\n";
const BUILTIN_MODINFO: &[u8] = b"z.alias=zed\0z.description=built in\0";

/// The root directory holding `lib/modules/KVER`.
pub fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        // Made under a name of this process, then renamed into place: the
        // tree is the same for every process, the first rename wins.
        let root = std::env::temp_dir().join("parmod-fuzz-tree");
        if root.join("lib/modules").join(KVER).join("modules.dep").is_file() {
            return root;
        }
        let tmp = std::env::temp_dir().join(format!("parmod-fuzz-tree.{}", std::process::id()));
        let dir = tmp.join("lib/modules").join(KVER);
        let mut dep = String::new();
        for (path, deps) in MODULES {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().expect("a parent")).expect("create the tree");
            std::fs::write(&file, b"not an ELF file: the compiler only stats it here").expect("write a module file");
            dep.push_str(&format!("{path}: {}\n", deps.join(" ")));
        }
        std::fs::write(dir.join("modules.dep"), dep).expect("write modules.dep");
        std::fs::write(dir.join("modules.alias"), ALIASES).expect("write modules.alias");
        std::fs::write(dir.join("modules.symbols"), SYMBOLS).expect("write modules.symbols");
        std::fs::write(dir.join("modules.builtin"), BUILTIN).expect("write modules.builtin");
        std::fs::write(dir.join("modules.builtin.modinfo"), BUILTIN_MODINFO).expect("write modules.builtin.modinfo");
        if std::fs::rename(&tmp, &root).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        root
    })
}
