//! What the fuzz targets check, beyond "no panic": the properties each
//! parser's output must have, and the reference readings some are compared
//! with. Each target in `fuzz_targets/` is a thin entry over one of these.

pub mod cmdline;
pub mod config;
pub mod image;
pub mod input;
pub mod plan;
pub mod tree;
