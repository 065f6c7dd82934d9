//! The tests' kernel: loads are answered from a script and recorded, workers
//! are std threads, and time is virtual.
//!
//! The clock moves only while the main task sleeps ([`Kernel::sleep`]) and
//! every worker is parked or inside a load that takes (virtual) time: then
//! it jumps to the next event (a load's end, a path appearing, the sleep's
//! timeout). Nothing takes real time, so a run's timings depend only on the
//! script and the scheduler: tests of order, overlap, stuck loads, device
//! waits and deadlines are deterministic. A run that can never go on (every
//! worker parked or hung and no timeout) panics instead of hanging the test.

use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::string::{String, ToString};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::vec::Vec;

use crate::plan::glob_match;
use rustix::io::Errno;

use super::real::is_sys;
use super::{Kernel, LoadCall, Seen, UnpackCall, Wake, Work};
use crate::runtime::mapping::Buffer;

/// How a scripted load behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Loads after `ns` of virtual time, using the CPU all along.
    Load(u64),
    /// Loads after `ns` without using the CPU (an init that sleeps, or a
    /// load parked on a kernel lock).
    Sleep(u64),
    /// Fails with `errno` after `ns` (using the CPU).
    Fail(i32, u64),
    /// Never returns, using no CPU (an init that sleeps for ever).
    Hang,
    /// Never returns, using the CPU all along (an init in an endless loop).
    Spin,
}

std::thread_local! {
    /// The task id of the worker thread running this code (0: not a worker).
    static TID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// CPU time of one worker task.
#[derive(Clone, Copy, Default)]
struct Cpu {
    used: u64,
    /// Since when it has been using the CPU (in a load that does).
    busy_since: Option<u64>,
}

/// How a scripted unpack behaves: it takes `ns` of virtual time, then
/// gives an image (`image:NAME`) or fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unpack {
    Image(u64),
    Fail(u64),
}

/// One recorded `unpack` call.
#[derive(Clone, Debug)]
pub struct UnpackRecord {
    pub name: String,
    pub path: String,
    pub start: u64,
    pub end: u64,
    /// Whether it gave an image (not failed, not abandoned).
    pub image: bool,
}

/// One recorded `load` call.
#[derive(Clone, Debug)]
pub struct Call {
    /// The module's index in the plan.
    pub module: u32,
    pub name: String,
    pub path: String,
    pub params: String,
    pub flags: u32,
    /// The image it was given (an unpacked module), if any.
    pub image: Option<Vec<u8>>,
    /// The task that made it (0: the main task).
    pub tid: u32,
    pub start: u64,
    /// None while the load is in progress (or hung).
    pub end: Option<u64>,
}

struct Appear {
    path: String,
    /// Virtual time at which it exists; None until its module loaded.
    at: Option<u64>,
    /// Appears `delay` after this module's load ends.
    after: Option<(String, u64)>,
    /// A device with this modalias (coldplug): its uevent is sent when it
    /// appears, once the uevent socket is open.
    modalias: Option<String>,
    sent: bool,
}

struct Inner {
    now: u64,
    script: HashMap<String, Behaviour>,
    calls: Vec<Call>,
    files: HashMap<String, Vec<u8>>,
    appear: Vec<Appear>,
    /// Paths the main task watches (patterns as asked).
    watched: HashSet<String>,
    /// Tasks that are neither parked nor waiting for virtual time.
    running: u32,
    /// Loads waiting for virtual time: (end, call index).
    timers: Vec<(u64, usize)>,
    /// Parked tasks of the current generation, and the generation.
    parked: u32,
    park_gen: u64,
    /// What the main task's next sleep reports at once.
    pending: u8,
    /// No inotify, no uevent socket: watches cannot be set.
    no_watches: bool,
    /// Whether messages were sent to the kernel log too.
    kmsg: bool,
    /// Block devices (name, contents) and what the hand-over did, in order.
    blocks: Vec<(String, Vec<u8>)>,
    /// Block devices whose node is there before they can be opened (ENXIO
    /// until then, as a new partition between its device_add and bdev_add).
    openable_at: Vec<(String, u64)>,
    actions: Vec<String>,
    /// Coldplug: the uevent socket is open; what it holds; lose the next
    /// uevents (the next read says ENOBUFS) when set.
    uevents_open: bool,
    uevents: std::collections::VecDeque<Vec<u8>>,
    lose_uevents: bool,
    spawns: usize,
    /// Workers inside a `Hang` or `Spin` load (they never return).
    hung: u32,
    /// Virtual time of each worker start.
    spawn_times: Vec<u64>,
    spawn_limit: Option<usize>,
    cpu: HashMap<u32, Cpu>,
    /// Every name each task gave itself, in order.
    names: HashMap<u32, Vec<String>>,
    cpus: u32,
    release: String,
    /// Every nice value set: (virtual time, task, nice), in order; and
    /// whether raising a task's nice value is refused (no CAP_SYS_NICE).
    nices: Vec<(u64, u32, i32)>,
    refuse_raise: bool,
    /// Virtual times [from, to) during which the kernel is loading what it
    /// requested itself (a modprobe personality runs).
    requests: Vec<(u64, u64)>,
    /// How many times workers asked whether it is.
    request_checks: u32,
    /// The unpacker: its memory budget (0: no unpacking), each module's
    /// unpack, the unpacks made, whether the idle class is refused.
    unpack_budget: u64,
    unpack_script: HashMap<String, Unpack>,
    unpacks: Vec<UnpackRecord>,
    refuse_idle: bool,
}

pub struct Fake {
    inner: Mutex<Inner>,
    cv: Condvar,
    /// The worker threads, for [`Fake::end_run`].
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Where the virtual clock starts (not 0: that means "never" in traces).
pub const T0: u64 = 1_000_000_000;

/// The task id of the first worker (the next ones count up).
const FIRST_TID: u32 = 100;

impl Default for Fake {
    fn default() -> Self {
        Self::new()
    }
}

impl Fake {
    pub fn new() -> Fake {
        Fake {
            inner: Mutex::new(Inner {
                now: T0,
                script: HashMap::new(),
                calls: Vec::new(),
                files: HashMap::new(),
                appear: Vec::new(),
                watched: HashSet::new(),
                running: 0,
                timers: Vec::new(),
                parked: 0,
                park_gen: 0,
                pending: 0,
                no_watches: false,
                kmsg: false,
                blocks: Vec::new(),
                openable_at: Vec::new(),
                actions: Vec::new(),
                uevents_open: false,
                uevents: std::collections::VecDeque::new(),
                lose_uevents: false,
                spawns: 0,
                hung: 0,
                spawn_times: Vec::new(),
                spawn_limit: None,
                cpu: HashMap::new(),
                names: HashMap::new(),
                cpus: 2,
                release: "6.1.0-test".to_string(),
                nices: Vec::new(),
                refuse_raise: false,
                requests: Vec::new(),
                request_checks: 0,
                unpack_budget: 0,
                unpack_script: HashMap::new(),
                unpacks: Vec::new(),
                refuse_idle: false,
            }),
            cv: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Let the unpacker run with `budget` bytes of memory for images.
    pub fn unpacking(&self, budget: u64) -> &Self {
        self.lock().unpack_budget = budget;
        self
    }

    /// How unpacking module `name` goes (default: an image, at once).
    pub fn unpack_script(&self, name: &str, u: Unpack) -> &Self {
        self.lock().unpack_script.insert(name.replace('-', "_"), u);
        self
    }

    /// The kernel refuses the idle scheduling class.
    pub fn refuse_idle(&self) -> &Self {
        self.lock().refuse_idle = true;
        self
    }

    pub fn unpacks(&self) -> Vec<UnpackRecord> {
        self.lock().unpacks.clone()
    }

    /// A fake that lives for the rest of the test process.
    pub fn leak(self) -> &'static Fake {
        std::boxed::Box::leak(std::boxed::Box::new(self))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How loads of `name` behave (default: load at once).
    pub fn script(&self, name: &str, b: Behaviour) -> &Self {
        self.lock().script.insert(name.replace('-', "_"), b);
        self
    }

    /// A file `read_small` answers with.
    pub fn file(&self, path: &str, contents: &[u8]) -> &Self {
        self.lock().files.insert(path.to_string(), contents.to_vec());
        self
    }

    /// `path` exists from virtual time `at` on.
    pub fn appear_at(&self, path: &str, at: u64) -> &Self {
        self.lock().appear.push(Appear { path: path.to_string(), at: Some(at), after: None, modalias: None, sent: false });
        self
    }

    /// `path` appears `delay` ns after the load of `module` ended.
    pub fn appear_after(&self, path: &str, module: &str, delay: u64) -> &Self {
        self.lock().appear.push(Appear { path: path.to_string(), at: None, after: Some((module.replace('-', "_"), delay)), modalias: None, sent: false });
        self
    }

    /// A device with `modalias` present from virtual time `at` on (T0: from
    /// the start).
    pub fn device_at(&self, modalias: &str, at: u64) -> &Self {
        let path = std::format!("/devices/fake/{}", self.lock().appear.len());
        self.lock().appear.push(Appear { path, at: Some(at), after: None, modalias: Some(modalias.to_string()), sent: false });
        self
    }

    /// A device with `modalias` that appears `delay` ns after the load of
    /// `module` ended (a bus driver's children).
    pub fn device_after(&self, modalias: &str, module: &str, delay: u64) -> &Self {
        let path = std::format!("/devices/fake/{}", self.lock().appear.len());
        let after = Some((module.replace('-', "_"), delay));
        self.lock().appear.push(Appear { path, at: None, after, modalias: Some(modalias.to_string()), sent: false });
        self
    }

    /// A block device `name` (`/dev/NAME`, `/sys/class/block/NAME`) with
    /// these contents, there from virtual time `at` on (its node appears
    /// then too).
    pub fn block_device(&self, name: &str, contents: Vec<u8>, at: u64) -> &Self {
        let mut g = self.lock();
        // sysfs: the size in 512-byte sectors, the logical block size, and
        // for a partition (a name that extends a disk's) its number.
        let sys = |f: &str| std::format!("/sys/class/block/{name}/{f}");
        g.files.insert(sys("size"), std::format!("{}\n", contents.len() / 512).into_bytes());
        g.files.insert(sys("queue/logical_block_size"), b"512\n".to_vec());
        if g.blocks.iter().any(|(d, _)| name.len() > d.len() && name.starts_with(d.as_str())) {
            g.files.insert(sys("partition"), b"1\n".to_vec());
        }
        g.blocks.push((name.to_string(), contents));
        g.appear.push(Appear { path: std::format!("/dev/{name}"), at: Some(at), after: None, modalias: None, sent: false });
        self
    }

    /// Block device `name` answers ENXIO until `at` (its node is there).
    pub fn openable_at(&self, name: &str, at: u64) -> &Self {
        self.lock().openable_at.push((name.to_string(), at));
        self
    }

    /// What the root hand-over did (mounts, moves, exec), in order.
    pub fn actions(&self) -> Vec<String> {
        self.lock().actions.clone()
    }

    /// The uevent socket overflows: the next read says ENOBUFS.
    pub fn lose_uevents(&self) -> &Self {
        self.lock().lose_uevents = true;
        self
    }

    /// Only `n` workers can be started; later `spawn`s fail with EAGAIN.
    pub fn spawn_limit(&self, n: usize) -> &Self {
        self.lock().spawn_limit = Some(n);
        self
    }

    /// Watches cannot be set (as without inotify and the uevent socket).
    pub fn no_watches(&self) -> &Self {
        self.lock().no_watches = true;
        self
    }

    /// Whether the run asked for its messages in the kernel log.
    pub fn logged_to_kmsg(&self) -> bool {
        self.lock().kmsg
    }

    pub fn cpus(&self, n: u32) -> &Self {
        self.lock().cpus = n;
        self
    }

    pub fn release_name(&self, r: &str) -> &Self {
        self.lock().release = r.to_string();
        self
    }

    /// Every load call so far, in the order they were made.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every nice value a task was given: (virtual time, task, nice).
    pub fn nices(&self) -> Vec<(u64, u32, i32)> {
        self.lock().nices.clone()
    }

    /// Refuse to raise a task's priority (a nice value lower than its
    /// current one), as the kernel does without CAP_SYS_NICE.
    pub fn refuse_raise(&self) -> &Self {
        self.lock().refuse_raise = true;
        self
    }

    /// The kernel loads what it requested itself from `from` until `to`
    /// (virtual time).
    pub fn request_between(&self, from: u64, to: u64) -> &Self {
        self.lock().requests.push((from, to));
        self
    }

    /// How many times the run asked whether a request is loading.
    pub fn request_checks(&self) -> u32 {
        self.lock().request_checks
    }

    /// Workers started so far.
    pub fn spawns(&self) -> usize {
        self.lock().spawns
    }

    /// When each worker started (virtual time).
    pub fn spawn_times(&self) -> Vec<u64> {
        self.lock().spawn_times.clone()
    }

    /// The names worker `id` (the `id`th started, from 0) gave itself.
    pub fn task_names(&self, id: usize) -> Vec<String> {
        self.lock().names.get(&(FIRST_TID + id as u32)).cloned().unwrap_or_default()
    }

    /// The virtual clock.
    pub fn time(&self) -> u64 {
        self.lock().now
    }

    /// After a run returned (at its deadline, loads may still be in
    /// flight): let virtual time run out for every worker and wait until
    /// every worker thread has exited, so that the caller may free what the
    /// run borrowed (its plan, its state, the fake itself). False, with
    /// nothing joined, when a worker is in a `Hang` or `Spin` load: that
    /// one never returns.
    pub fn end_run(&self) -> bool {
        loop {
            let mut g = self.lock();
            if g.hung > 0 {
                return false;
            }
            let live: Vec<_> = {
                let mut t = self.threads.lock().unwrap_or_else(|e| e.into_inner());
                let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *t).into_iter().partition(|h| h.is_finished());
                for h in done {
                    let _ = h.join();
                }
                *t = live;
                t.iter().map(|h| h.thread().id()).collect()
            };
            if live.is_empty() {
                return true;
            }
            // Every timed load ends now; every parked worker looks again
            // (a retired one exits, one with nothing left to do too).
            if let Some(end) = g.timers.iter().map(|t| t.0).max() {
                g.now = g.now.max(end);
            }
            g.running += g.timers.len() as u32 + g.parked;
            g.timers.clear();
            g.parked = 0;
            g.park_gen += 1;
            self.cv.notify_all();
            drop(g);
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }

    /// Queue the uevent of every device that has appeared (socket open).
    fn send_uevents(g: &mut Inner) -> bool {
        let (now, open) = (g.now, g.uevents_open);
        let mut any = false;
        let mut out = Vec::new();
        for a in g.appear.iter_mut().filter(|a| !a.sent && a.at.is_some_and(|t| t <= now)) {
            if let Some(ma) = &a.modalias {
                a.sent = true;
                if open {
                    out.push(std::format!("add@{}\0ACTION=add\0DEVPATH={}\0MODALIAS={ma}\0", a.path, a.path).into_bytes());
                    any = true;
                }
            }
        }
        g.uevents.extend(out);
        any
    }

    fn exists(g: &Inner, pattern: &str) -> bool {
        g.appear.iter().any(|a| a.at.is_some_and(|t| g.now >= t) && glob_match(pattern.as_bytes(), a.path.as_bytes()))
    }
}

impl Kernel for Fake {
    fn now(&self) -> u64 {
        self.lock().now
    }

    fn cpus(&self) -> u32 {
        self.lock().cpus
    }

    fn release(&self, buf: &mut [u8; 65]) -> usize {
        let g = self.lock();
        let n = g.release.len().min(buf.len());
        buf[..n].copy_from_slice(&g.release.as_bytes()[..n]);
        n
    }

    fn read_small(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        let g = self.lock();
        let f = g.files.get(path.to_str().map_err(|_| Errno::INVAL)?).ok_or(Errno::NOENT)?;
        let n = f.len().min(buf.len());
        buf[..n].copy_from_slice(&f[..n]);
        Ok(n)
    }

    fn load(&self, call: &LoadCall<'_>) -> Result<(), Errno> {
        let name = String::from_utf8_lossy(call.name).into_owned();
        let mut g = self.lock();
        let b = g.script.get(&name.replace('-', "_")).copied().unwrap_or(Behaviour::Load(0));
        let start = g.now;
        let i = g.calls.len();
        g.calls.push(Call {
            module: call.module,
            name: name.clone(),
            path: call.path.to_string_lossy().into_owned(),
            params: call.params.to_string_lossy().into_owned(),
            flags: call.flags,
            image: call.image.map(|i| i.to_vec()),
            tid: 0,
            start,
            end: None,
        });
        let tid = TID.with(|t| t.get());
        g.calls[i].tid = tid;
        let uses_cpu = matches!(b, Behaviour::Load(_) | Behaviour::Fail(..) | Behaviour::Spin);
        if uses_cpu {
            g.cpu.entry(tid).or_default().busy_since = Some(start);
        }
        let (errno, ns) = match b {
            Behaviour::Load(ns) | Behaviour::Sleep(ns) => (None, ns),
            Behaviour::Fail(e, ns) => (Some(e), ns),
            Behaviour::Hang | Behaviour::Spin => {
                g.running -= 1;
                g.hung += 1;
                self.cv.notify_all();
                loop {
                    g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            }
        };
        if ns > 0 && tid == 0 {
            // The main task loads itself (no worker could start): nothing
            // else runs, so the time of the load simply passes.
            g.now += ns;
        } else if ns > 0 {
            let end = start + ns;
            g.running -= 1;
            g.timers.push((end, i));
            self.cv.notify_all();
            // The clock's mover counts this task as running again when it
            // moves the clock to `end`.
            while g.now < end {
                g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        }
        let now = g.now;
        g.calls[i].end = Some(now);
        if let Some(c) = g.cpu.get_mut(&tid) {
            if let Some(s) = c.busy_since.take() {
                c.used += now - s;
            }
        }
        for a in g.appear.iter_mut() {
            if a.at.is_none() && a.after.as_ref().is_some_and(|(m, _)| *m == name) {
                a.at = Some(now + a.after.as_ref().map_or(0, |x| x.1));
            }
        }
        if Fake::send_uevents(&mut g) {
            g.pending |= Wake::UEVENT;
            self.cv.notify_all();
        }
        match errno {
            Some(e) => Err(Errno::from_raw_os_error(e)),
            None => Ok(()),
        }
    }

    fn spawn(&'static self, work: &'static dyn Work, id: usize, tid: &'static AtomicU32) -> Result<(), Errno> {
        let me = self;
        {
            let mut g = self.lock();
            if g.spawn_limit.is_some_and(|n| g.spawns >= n) {
                return Err(Errno::AGAIN);
            }
            g.spawns += 1;
            let now = g.now;
            g.spawn_times.push(now);
            g.running += 1;
        }
        let task = FIRST_TID + id as u32;
        tid.store(task, SeqCst);
        std::thread::Builder::new()
            .name(std::format!("pm-worker-{id}"))
            .spawn(move || {
                TID.with(|t| t.set(task));
                work.work(id);
                let mut g = me.lock();
                g.running -= 1;
                me.cv.notify_all();
                drop(g);
                tid.store(0, SeqCst);
                let _ = rustix::thread::futex::wake(tid, rustix::thread::futex::Flags::empty(), i32::MAX as u32);
            })
            .map(|h| self.threads.lock().unwrap_or_else(|e| e.into_inner()).push(h))
            .map_err(|_| Errno::AGAIN)
    }

    fn unpack_budget(&self) -> u64 {
        self.lock().unpack_budget
    }

    fn idle_class(&self) -> bool {
        !self.lock().refuse_idle
    }

    fn unpack(&self, call: &mut UnpackCall<'_>) -> Result<Buffer, Errno> {
        let name = String::from_utf8_lossy(call.name).into_owned();
        let u = self.lock().unpack_script.get(&name.replace('-', "_")).copied().unwrap_or(Unpack::Image(0));
        let start = self.lock().now;
        let ns = match u {
            Unpack::Image(ns) | Unpack::Fail(ns) => ns,
        };
        let mut g = self.lock();
        if ns > 0 {
            // Virtual time passes as in `pause`, but the decode gives up as
            // soon as it is not wanted (the real one asks between chunks).
            let end = start + ns;
            g.running -= 1;
            g.timers.push((end, usize::MAX));
            self.cv.notify_all();
            while g.now < end && (call.go_on)() {
                g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            if g.now < end {
                // Given up early: our timer goes, and we run again.
                if let Some(i) = g.timers.iter().position(|t| *t == (end, usize::MAX)) {
                    g.timers.remove(i);
                    g.running += 1;
                }
            }
        }
        let text = std::format!("image:{name}");
        let made = matches!(u, Unpack::Image(_)) && (call.go_on)();
        let end = g.now;
        g.unpacks.push(UnpackRecord { name, path: call.path.to_string_lossy().into_owned(), start, end, image: made });
        drop(g);
        if !made {
            return Err(if matches!(u, Unpack::Fail(_)) { Errno::INVAL } else { Errno::CANCELED });
        }
        let mut b = Buffer::new(text.len())?;
        b.bytes_mut().copy_from_slice(text.as_bytes());
        Ok(b)
    }

    fn task_cpu_ns(&self, tid: u32) -> Option<u64> {
        let g = self.lock();
        let c = g.cpu.get(&tid).copied().unwrap_or_default();
        Some(c.used + c.busy_since.map_or(0, |s| g.now - s))
    }

    fn set_nice(&self, tid: u32, nice: i32) -> bool {
        let mut g = self.lock();
        let now_nice = g.nices.iter().rev().find(|n| n.1 == tid).map_or(0, |n| n.2);
        if g.refuse_raise && nice < now_nice {
            return false;
        }
        let now = g.now;
        g.nices.push((now, tid, nice));
        true
    }

    fn requests_loading(&self) -> bool {
        let mut g = self.lock();
        g.request_checks += 1;
        let now = g.now;
        g.requests.iter().any(|&(from, to)| from <= now && now < to)
    }

    fn pause(&self, ns: u64) {
        let tid = TID.with(|t| t.get());
        let mut g = self.lock();
        let end = g.now + ns;
        if tid == 0 {
            g.now = end;
            return;
        }
        g.running -= 1;
        g.timers.push((end, usize::MAX));
        self.cv.notify_all();
        while g.now < end {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn name_task(&self, name: &CStr) {
        let tid = TID.with(|t| t.get());
        self.lock().names.entry(tid).or_default().push(name.to_string_lossy().into_owned());
    }

    fn park(&self, word: &AtomicU32, expected: u32) {
        let mut g = self.lock();
        if word.load(SeqCst) != expected {
            return;
        }
        let gen = g.park_gen;
        g.parked += 1;
        g.running -= 1;
        self.cv.notify_all();
        while g.park_gen == gen {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn unpark(&self, _word: &AtomicU32, _n: u32) {
        // Every parked task wakes (and counts as running again); the
        // scheduler treats a wake-up as "look at the queue again".
        let mut g = self.lock();
        g.running += g.parked;
        g.parked = 0;
        g.park_gen += 1;
        self.cv.notify_all();
    }

    fn path_exists(&self, path: &[u8], watch: bool) -> Seen {
        let p = String::from_utf8_lossy(path).into_owned();
        let mut g = self.lock();
        if Fake::exists(&g, &p) {
            return Seen::Exists;
        }
        if watch && !g.no_watches {
            g.watched.insert(p);
            return Seen::Watched;
        }
        Seen::Unwatched
    }

    fn log_to_kmsg(&self) {
        self.lock().kmsg = true;
    }

    fn open_uevents(&self) -> Result<(), Errno> {
        let mut g = self.lock();
        g.uevents_open = true;
        // What appeared before the socket opened is found by the scan.
        let now = g.now;
        for a in g.appear.iter_mut().filter(|a| a.modalias.is_some() && a.at.is_some_and(|t| t <= now)) {
            a.sent = true;
        }
        Ok(())
    }

    fn recv_uevent(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut g = self.lock();
        if std::mem::take(&mut g.lose_uevents) && !g.uevents.is_empty() {
            g.uevents.clear();
            return Err(Errno::NOBUFS);
        }
        let m = g.uevents.pop_front().ok_or(Errno::AGAIN)?;
        let n = m.len().min(buf.len());
        buf[..n].copy_from_slice(&m[..n]);
        Ok(n)
    }

    fn list_block_devices(&self, f: &mut dyn FnMut(&[u8])) {
        let names: Vec<String> = {
            let g = self.lock();
            g.blocks.iter().filter(|(n, _)| Fake::exists(&g, &std::format!("/dev/{n}"))).map(|b| b.0.clone()).collect()
        };
        for n in names {
            f(n.as_bytes());
        }
    }

    fn read_at(&self, path: &CStr, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let g = self.lock();
        let p = path.to_string_lossy();
        let name = p.strip_prefix("/dev/").ok_or(Errno::NOENT)?;
        if !Fake::exists(&g, &p) {
            return Err(Errno::NOENT);
        }
        if g.openable_at.iter().any(|(n, at)| n == name && g.now < *at) {
            return Err(Errno::NXIO);
        }
        let (_, data) = g.blocks.iter().find(|(n, _)| n == name).ok_or(Errno::NOENT)?;
        let from = data.get(offset as usize..).unwrap_or(&[]);
        let n = from.len().min(buf.len());
        buf[..n].copy_from_slice(&from[..n]);
        Ok(n)
    }

    fn make_dir(&self, path: &CStr, _mode: u32) -> Result<(), Errno> {
        self.lock().actions.push(std::format!("mkdir {}", path.to_string_lossy()));
        Ok(())
    }

    fn mount(&self, source: &CStr, target: &CStr, fstype: &CStr, flags: u64, data: Option<&CStr>) -> Result<(), Errno> {
        let mut g = self.lock();
        let (src, t) = (source.to_string_lossy(), fstype.to_string_lossy());
        g.actions.push(std::format!(
            "mount {src} {} {t} {flags:#x} {}",
            target.to_string_lossy(),
            data.map_or(String::new(), |d| d.to_string_lossy().into_owned())
        ));
        // A scripted failure: a type named "broken".
        if t == "broken" {
            return Err(Errno::INVAL);
        }
        g.appear.push(Appear { path: "/root/sbin/init".into(), at: Some(0), after: None, modalias: None, sent: true });
        Ok(())
    }

    fn move_mount(&self, from: &CStr, to: &CStr) -> Result<(), Errno> {
        self.lock().actions.push(std::format!("move {} {}", from.to_string_lossy(), to.to_string_lossy()));
        Ok(())
    }

    fn remove_initramfs(&self, keep: &CStr) {
        self.lock().actions.push(std::format!("remove-initramfs keep {}", keep.to_string_lossy()));
    }

    fn enter_root(&self, dir: &CStr) -> Result<(), Errno> {
        self.lock().actions.push(std::format!("enter {}", dir.to_string_lossy()));
        Ok(())
    }

    fn exec(&self, path: &CStr, args: &[&CStr], env: &[&CStr]) -> Errno {
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let env: Vec<String> = env.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        self.lock().actions.push(std::format!("exec {} [{}] [{}]", path.to_string_lossy(), args.join(" "), env.join(" ")));
        // The fake cannot become another program: as a failed exec.
        Errno::NOEXEC
    }

    fn scan_modaliases(&self, f: &mut dyn FnMut(&[u8])) {
        let present: Vec<String> = {
            let g = self.lock();
            g.appear.iter().filter(|a| a.at.is_some_and(|t| t <= g.now)).filter_map(|a| a.modalias.clone()).collect()
        };
        for ma in present {
            f(ma.as_bytes());
        }
    }

    fn sleep(&self, until: Option<u64>) -> Wake {
        let mut g = self.lock();
        loop {
            // The main task goes on only once every worker waits: at each
            // instant of virtual time the workers run first.
            if g.running > 0 {
                g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            if g.pending != 0 {
                return Wake(std::mem::take(&mut g.pending));
            }
            if until.is_some_and(|u| g.now >= u) {
                return Wake::default();
            }
            // Move the clock to the next event.
            let timer = g.timers.iter().map(|t| t.0).min();
            let appear = g.appear.iter().filter_map(|a| a.at).filter(|&t| t > g.now).min();
            let Some(next) = [until, timer, appear].into_iter().flatten().min() else {
                panic!("fake kernel: the run can never go on (every worker parked or hung, nothing timed)");
            };
            g.now = g.now.max(next);
            let now = g.now;
            let due = g.timers.iter().filter(|t| t.0 <= now).count() as u32;
            g.timers.retain(|t| t.0 > now);
            g.running += due;
            let mut events = 0;
            // A watch is on the path's directory (inotify on its nearest
            // existing ancestor): anything created there wakes it.
            let dir = |p: &str| p.rsplit_once('/').map_or(String::new(), |d| d.0.to_string());
            for w in g.watched.iter() {
                if g.appear.iter().any(|a| a.at == Some(now) && (glob_match(w.as_bytes(), a.path.as_bytes()) || dir(w) == dir(&a.path))) {
                    events |= if is_sys(w.as_bytes()) { Wake::UEVENT } else { Wake::FILES };
                }
            }
            g.pending |= events;
            if Fake::send_uevents(&mut g) {
                g.pending |= Wake::UEVENT;
            }
            self.cv.notify_all();
        }
    }

    fn wake(&self) {
        let mut g = self.lock();
        g.pending |= Wake::WORKER;
        self.cv.notify_all();
    }
}
