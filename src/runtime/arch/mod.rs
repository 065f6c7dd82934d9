//! Architecture-specific system-call entry points (clone, task exit,
//! signal mask). One file per architecture.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{clone_task, execve, exit_process, exit_task, sigprocmask};

#[cfg(not(target_arch = "x86_64"))]
compile_error!("parmod's runtime has clone support for x86_64 only so far");
