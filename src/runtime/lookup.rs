//! Looking a name up as kmod's modprobe does (kmod_module_new_from_lookup),
//! for the modprobe personality and coldplug: the modprobe.d aliases first
//! (if any matches, that is the answer), then module names, then the
//! kernel's aliases (`symbol:NAME` only among the modules.symbols ones).
//! Modules found through an alias are skipped when modprobe.d
//! (`BLACKLISTED`) or the kernel command line (`modprobe.blacklist=`,
//! `rd.driver.blacklist=`) blacklist them; what the kernel's own
//! `module_blacklist=` names is never loaded (the kernel would refuse).

use crate::cmdline::Cmdline;
use crate::plan::{glob_match, Plan};

/// The longest name resolved. A modalias can be long: an x86 CPU's lists
/// every feature bit (`cpu:type:x86,ven...:feature:,0000,0001,...`, ~600
/// bytes in QEMU with `-cpu max`); the kernel's uevent buffer (2048 bytes,
/// every variable included) bounds it.
pub const NAME_MAX: usize = 2048;

/// What a name resolved to.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found,
    /// Only blacklisted modules match.
    Blacklisted,
    Unknown,
}

/// Resolve `name`, calling `each` with every module it names (see the
/// module documentation).
pub fn resolve(plan: &Plan<'_>, cmdline: Cmdline<'_>, name: &[u8], each: &mut dyn FnMut(u32)) -> Lookup {
    resolve_as(plan, cmdline, name, true, each)
}

/// Whether a module of `plan` has a `:` in its name (no kernel module's
/// can; a modalias always has one): see [`resolve_modalias`].
pub fn names_have_colons(plan: &Plan<'_>) -> bool {
    plan.modules().any(|m| m.name().contains(&b':'))
}

/// [`resolve`] for a device's modalias: looked up as a module name only when
/// it could be one (`colon_names`: [`names_have_colons`] of the plan, or no
/// `:` in it), since finding a name reads every module of the plan.
pub fn resolve_modalias(plan: &Plan<'_>, cmdline: Cmdline<'_>, ma: &[u8], colon_names: bool, each: &mut dyn FnMut(u32)) -> Lookup {
    resolve_as(plan, cmdline, ma, colon_names || !ma.contains(&b':'), each)
}

/// [`resolve`], the module names looked at only when `by_name`.
fn resolve_as(plan: &Plan<'_>, cmdline: Cmdline<'_>, name: &[u8], by_name: bool, each: &mut dyn FnMut(u32)) -> Lookup {
    let mut norm = [0u8; NAME_MAX];
    let Some(n) = norm.get_mut(..name.len()) else { return Lookup::Unknown };
    n.copy_from_slice(name);
    crate::plan::normalize_alias_in_place(n);
    let name_n: &[u8] = n;
    let symbol = name_n.starts_with(b"symbol:");
    let (mut matched, mut taken) = (false, 0u32);
    let mut add = |m: u32, via_alias: bool, matched: &mut bool| {
        *matched = true;
        let Some(module) = plan.module(m) else { return };
        if cmdline.refuses(module.name()) || (via_alias && (module.is_blacklisted() || cmdline.blacklists(module.name()))) {
            return;
        }
        taken += 1;
        each(m);
    };
    for a in plan.config_aliases() {
        if glob_match(a.pattern, name_n) {
            add(a.module, true, &mut matched);
        }
    }
    if !matched && by_name {
        if let Some(m) = plan.find_module(name) {
            add(m.index(), false, &mut matched);
        }
    }
    if !matched {
        for a in plan.kernel_aliases_matching(name_n) {
            if a.pattern.starts_with(b"symbol:") == symbol {
                add(a.module, true, &mut matched);
            }
        }
    }
    match (matched, taken) {
        (false, _) => Lookup::Unknown,
        (true, 0) => Lookup::Blacklisted,
        (true, _) => Lookup::Found,
    }
}
