//! The trace file `parmod --trace` writes: one fixed-size record per module
//! (and per wait), so the runtime can write it without allocating and
//! `parmod-plan` can read it back. Layout in `docs/plan-format.md`.

use super::{le_u32, le_u64};

pub const TRACE_MAGIC: [u8; 8] = *b"PARMODTR";
pub const TRACE_VERSION: u32 = 2;
pub const TRACE_HEADER_SIZE: usize = 32;
pub const TRACE_RECORD_SIZE: usize = 32;

/// What a record describes.
pub mod kind {
    pub const MODULE: u8 = 0;
    pub const WAIT: u8 = 1;
}

/// How a module or wait ended. A record whose `result` has [`STUCK_FLAG`]
/// set was reported stuck (it outlived its timeout) and then ended as the
/// remaining bits say.
pub mod result {
    /// Loaded by finit_module.
    pub const LOADED: u8 = 1;
    /// finit_module said EEXIST: already loaded.
    pub const PRESENT: u8 = 2;
    /// Built into the kernel.
    pub const BUILTIN: u8 = 3;
    /// finit_module (or opening the file) failed; `errno` says why.
    pub const FAILED: u8 = 4;
    /// Not loaded because the hard dependency `cause` failed or was skipped.
    pub const SKIPPED: u8 = 5;
    /// Still inside finit_module when parmod exited.
    pub const STUCK: u8 = 6;
    /// Never started: still waiting for a dependency when parmod exited.
    pub const BLOCKED: u8 = 7;
    /// A wait whose path appeared.
    pub const SATISFIED: u8 = 8;
    /// A wait whose path did not appear in time.
    pub const TIMED_OUT: u8 = 9;
    /// Disabled by configuration (`install NAME /bin/true`): not loaded.
    pub const DISABLED: u8 = 10;
    /// Or-ed into another result: the load outlived its stuck timeout.
    pub const STUCK_FLAG: u8 = 0x80;

    pub fn name(r: u8) -> &'static str {
        match r & !STUCK_FLAG {
            LOADED => "loaded",
            PRESENT => "present",
            BUILTIN => "builtin",
            FAILED => "failed",
            SKIPPED => "skipped",
            STUCK => "stuck",
            BLOCKED => "blocked",
            SATISFIED => "satisfied",
            TIMED_OUT => "timed-out",
            DISABLED => "disabled",
            _ => "unknown",
        }
    }
}

/// Worker number for records not produced by a worker (skips, blocks, waits).
pub const NO_WORKER: u16 = u16::MAX;
/// `cause` when there is none.
pub const NO_CAUSE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TraceRecord {
    /// CLOCK_MONOTONIC, ns; 0 when the module never started.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Module index in the plan (or wait index for `kind::WAIT`).
    pub index: u32,
    /// Positive errno of a failure, else 0.
    pub errno: i32,
    /// For SKIPPED: the failed dependency; for waits: the module it follows.
    pub cause: u32,
    pub worker: u16,
    pub kind: u8,
    pub result: u8,
}

impl TraceRecord {
    pub fn encode(&self) -> [u8; TRACE_RECORD_SIZE] {
        let mut b = [0u8; TRACE_RECORD_SIZE];
        b[0..8].copy_from_slice(&self.start_ns.to_le_bytes());
        b[8..16].copy_from_slice(&self.end_ns.to_le_bytes());
        b[16..20].copy_from_slice(&self.index.to_le_bytes());
        b[20..24].copy_from_slice(&self.errno.to_le_bytes());
        b[24..28].copy_from_slice(&self.cause.to_le_bytes());
        b[28..30].copy_from_slice(&self.worker.to_le_bytes());
        b[30] = self.kind;
        b[31] = self.result;
        b
    }

    pub fn decode(b: &[u8; TRACE_RECORD_SIZE]) -> Self {
        TraceRecord {
            start_ns: le_u64(b, 0),
            end_ns: le_u64(b, 8),
            index: le_u32(b, 16),
            errno: le_u32(b, 20) as i32,
            cause: le_u32(b, 24),
            worker: u16::from_le_bytes([b[28], b[29]]),
            kind: b[30],
            result: b[31],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHeader {
    /// Checksum of the plan the trace was made with.
    pub plan_checksum: u32,
    pub record_count: u32,
    /// CLOCK_MONOTONIC when parmod started, ns.
    pub t0_ns: u64,
    pub jobs: u16,
    pub simulated: bool,
}

impl TraceHeader {
    pub fn encode(&self) -> [u8; TRACE_HEADER_SIZE] {
        let mut b = [0u8; TRACE_HEADER_SIZE];
        b[0..8].copy_from_slice(&TRACE_MAGIC);
        b[8..12].copy_from_slice(&TRACE_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(TRACE_RECORD_SIZE as u32).to_le_bytes());
        b[16..20].copy_from_slice(&self.plan_checksum.to_le_bytes());
        b[20..24].copy_from_slice(&self.record_count.to_le_bytes());
        b[24..32].copy_from_slice(&self.t0_ns.to_le_bytes());
        // jobs and the simulate bit share the record-size word's high half.
        b[14..16].copy_from_slice(&(self.jobs | if self.simulated { 0x8000 } else { 0 }).to_le_bytes());
        b
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceError {
    Truncated,
    BadMagic,
    Version(u32),
    Size,
}

impl core::fmt::Display for TraceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TraceError::Truncated => write!(f, "truncated trace file"),
            TraceError::BadMagic => write!(f, "not a parmod trace (bad magic)"),
            TraceError::Version(v) => write!(f, "trace format version {v}, expected {TRACE_VERSION}"),
            TraceError::Size => write!(f, "trace size does not match its record count"),
        }
    }
}

/// Parse a trace: its header and its records.
pub fn parse(bytes: &[u8]) -> Result<(TraceHeader, impl Iterator<Item = TraceRecord> + '_), TraceError> {
    if bytes.len() < TRACE_HEADER_SIZE {
        return Err(TraceError::Truncated);
    }
    if bytes[0..8] != TRACE_MAGIC {
        return Err(TraceError::BadMagic);
    }
    let version = le_u32(bytes, 8);
    if version != TRACE_VERSION {
        return Err(TraceError::Version(version));
    }
    let rs = u16::from_le_bytes([bytes[12], bytes[13]]) as usize;
    let jw = u16::from_le_bytes([bytes[14], bytes[15]]);
    let count = le_u32(bytes, 20);
    if rs != TRACE_RECORD_SIZE || (count as usize).checked_mul(rs).and_then(|n| n.checked_add(TRACE_HEADER_SIZE)) != Some(bytes.len()) {
        return Err(TraceError::Size);
    }
    let header = TraceHeader {
        plan_checksum: le_u32(bytes, 16),
        record_count: count,
        t0_ns: le_u64(bytes, 24),
        jobs: jw & 0x7fff,
        simulated: jw & 0x8000 != 0,
    };
    let recs = bytes[TRACE_HEADER_SIZE..]
        .chunks_exact(TRACE_RECORD_SIZE)
        .map(|c| TraceRecord::decode(c.try_into().unwrap_or(&[0; TRACE_RECORD_SIZE])));
    Ok((header, recs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = TraceHeader { plan_checksum: 0xdead_beef, record_count: 1, t0_ns: 99, jobs: 4, simulated: true };
        let r = TraceRecord { start_ns: 5, end_ns: 9, index: 3, errno: 19, cause: 7, worker: 2, kind: kind::MODULE, result: result::FAILED };
        let mut f = std::vec::Vec::new();
        f.extend_from_slice(&h.encode());
        f.extend_from_slice(&r.encode());
        let (h2, mut it) = parse(&f).unwrap();
        assert_eq!(h2, h);
        assert_eq!(it.next(), Some(r));
        assert_eq!(it.next(), None);
        drop(it);
        assert_eq!(parse(&f[..40]).err(), Some(TraceError::Size));
        f[0] = b'X';
        assert_eq!(parse(&f).err(), Some(TraceError::BadMagic));
    }
}
