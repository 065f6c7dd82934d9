//! Errors of the plan compiler. Every message names the input at fault and,
//! where there is one, what to do about it.

use std::fmt;
use std::path::PathBuf;
use std::prelude::rust_2021::*;

#[derive(Debug)]
pub enum Error {
    /// Bad command line (exit status 2).
    Usage(String),
    /// A name that is no module, alias or built-in.
    UnknownModule { name: String, dir: PathBuf },
    /// A cycle of hard dependencies (module names, first repeated at the end).
    Cycle(Vec<String>),
    /// modules.dep names a file that does not exist.
    MissingFile { module: String, path: PathBuf },
    /// A file or directory could not be read.
    Read { path: PathBuf, err: std::io::Error },
    /// A config line the compiler does not understand.
    Config { path: PathBuf, line: usize, msg: String },
    /// A module path in modules.dep that is absolute or leaves the module dir.
    UnsafePath { path: PathBuf, line: usize, module_path: String },
    /// No kernel version directory under the root.
    NoKernel { dir: PathBuf },
    /// Anything else (plan writing, show).
    Other(String),
}

impl Error {
    /// Process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}; see parmod-plan --help"),
            Error::UnknownModule { name, dir } => {
                let d = dir.display();
                write!(
                    f,
                    "unknown module or alias '{name}' (not in {d}/modules.dep, modules.alias, modules.builtin or modprobe.d aliases); check the name or the --kver"
                )
            }
            Error::Cycle(names) => write!(
                f,
                "dependency cycle in modules.dep: {}; the module index is broken, run depmod again",
                names.join(" -> ")
            ),
            Error::MissingFile { module, path } => write!(
                f,
                "module '{module}': file {} does not exist; depmod or the kernel packaging may be out of date (run depmod, or reinstall the kernel's modules)",
                path.display()
            ),
            Error::Read { path, err } => write!(f, "cannot read {}: {err}", path.display()),
            Error::Config { path, line, msg } => write!(f, "{}:{line}: {msg}", path.display()),
            Error::UnsafePath { path, line, module_path } => write!(
                f,
                "{}:{line}: module path '{module_path}' is absolute or leaves the module directory; refusing it (regenerate the file with depmod)",
                path.display()
            ),
            Error::NoKernel { dir } => write!(
                f,
                "no kernel version found under {} (no directory holding modules.dep); install a kernel's modules there, check --root, or pass --kver",
                dir.display()
            ),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Read a whole file, naming it on failure.
pub fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| Error::Read { path: path.to_path_buf(), err })
}
