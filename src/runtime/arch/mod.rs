//! Architecture-specific system-call entry points (clone, task exit,
//! signal mask, execve). One file per architecture, each with the same five
//! functions and contracts.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{clone_task, execve, exit_process, exit_task, sigprocmask};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::{clone_task, execve, exit_process, exit_task, sigprocmask};

#[cfg(target_arch = "arm")]
mod arm;
#[cfg(target_arch = "arm")]
pub use arm::{clone_task, execve, exit_process, exit_task, sigprocmask};

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm")))]
compile_error!("parmod's runtime has clone support for x86_64, aarch64 and arm only");
