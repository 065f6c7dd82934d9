//! The plan compiler (host).
