//! `parmod --simulate`: the real kernel for everything but the loads, which
//! sleep the module's planned weight (measuring the scheduler without
//! loading anything). `--fail` names modules whose load fails (ENODEV),
//! `--hang` modules whose load never ends (an hour).

use core::ffi::CStr;
use core::sync::atomic::AtomicU32;

use crate::plan::{same_name, Compression};
use rustix::io::Errno;
use rustix::time::ClockId;

use super::real::Real;
use super::{Kernel, LoadCall, Seen, Wake, Work};
use crate::runtime::clock;

/// Most names given to --fail / --hang.
pub const MAX_SIM_NAMES: usize = 64;

pub struct Sim {
    pub real: &'static Real,
    pub fail: heapless::Vec<&'static [u8], MAX_SIM_NAMES>,
    pub hang: heapless::Vec<&'static [u8], MAX_SIM_NAMES>,
}

impl Kernel for Sim {
    fn open(&self) -> Result<(), Errno> {
        self.real.open()
    }
    fn now(&self) -> u64 {
        self.real.now()
    }
    fn cpus(&self) -> u32 {
        self.real.cpus()
    }
    fn release(&self, buf: &mut [u8; 65]) -> usize {
        self.real.release(buf)
    }
    fn read_small(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        self.real.read_small(path, buf)
    }
    /// Nothing is loaded for real, so nothing is loaded already.
    fn is_live(&self, _name: &[u8]) -> bool {
        false
    }
    /// Simulated loads read no file: any compression is fine.
    fn decompresses(&self, _c: Compression) -> bool {
        true
    }

    fn load(&self, call: &LoadCall<'_>) -> Result<(), Errno> {
        let named = |list: &[&[u8]]| list.iter().any(|n| same_name(n, call.name));
        let hang = named(&self.hang);
        if hang || call.weight_us > 0 {
            // One sleep per load (weight 0: no system call at all), also when
            // its end has passed already (a late worker): the sleep returns
            // at once then.
            let until = call.start_ns + if hang { 3600 * 1_000_000_000 } else { call.weight_us as u64 * 1000 };
            let ts = clock::timespec(until);
            while let Err(Errno::INTR) = rustix::thread::clock_nanosleep_absolute(ClockId::Monotonic, &ts) {}
        }
        if named(&self.fail) {
            Err(Errno::NODEV)
        } else {
            Ok(())
        }
    }

    fn spawn(&'static self, work: &'static dyn Work, id: usize, tid: &'static AtomicU32) -> Result<(), Errno> {
        // Simulated loads are sleeps: no timer slack for the workers.
        crate::runtime::thread::spawn_worker(work, id, tid, true)
    }
    /// Simulated loads sleep: their CPU time says nothing; stuck loads are
    /// told by time alone.
    fn task_cpu_ns(&self, _tid: u32) -> Option<u64> {
        None
    }
    fn path_exists(&self, path: &[u8], watch: bool) -> Seen {
        self.real.path_exists(path, watch)
    }
    fn log_to_kmsg(&self) {
        self.real.log_to_kmsg()
    }
    fn open_uevents(&self) -> Result<(), Errno> {
        self.real.open_uevents()
    }
    fn recv_uevent(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.real.recv_uevent(buf)
    }
    fn scan_modaliases(&self, f: &mut dyn FnMut(&[u8])) {
        self.real.scan_modaliases(f)
    }
    fn list_block_devices(&self, f: &mut dyn FnMut(&[u8])) {
        self.real.list_block_devices(f)
    }
    fn read_at(&self, path: &CStr, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.real.read_at(path, offset, buf)
    }
    fn make_dir(&self, path: &CStr, mode: u32) -> Result<(), Errno> {
        self.real.make_dir(path, mode)
    }
    fn mount(&self, source: &CStr, target: &CStr, fstype: &CStr, flags: u64, data: Option<&CStr>) -> Result<(), Errno> {
        self.real.mount(source, target, fstype, flags, data)
    }
    fn move_mount(&self, from: &CStr, to: &CStr) -> Result<(), Errno> {
        self.real.move_mount(from, to)
    }
    fn remove_initramfs(&self, keep: &CStr) {
        self.real.remove_initramfs(keep)
    }
    fn enter_root(&self, dir: &CStr) -> Result<(), Errno> {
        self.real.enter_root(dir)
    }
    fn exec(&self, path: &CStr, args: &[&CStr], env: &[&CStr]) -> Errno {
        self.real.exec(path, args, env)
    }
    fn sleep(&self, until: Option<u64>) -> Wake {
        self.real.sleep(until)
    }
    fn wake(&self) {
        self.real.wake()
    }
    fn simulated(&self) -> bool {
        true
    }
}
