//! The uevent messages coldplug reads from the netlink socket: whatever
//! arrives, `parse_uevent` answers from the message's own bytes, as the
//! kernel lays a uevent out (`ACTION@DEVPATH`, then NUL-separated
//! `KEY=VALUE`), and refuses anything else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parmod::runtime::coldplug::parse_uevent;

fuzz_target!(|data: &[u8]| {
    let got = parse_uevent(data);
    let mut fields = data.split(|&c| c == 0);
    let head = fields.next().unwrap_or(&[]);
    let want = head.iter().position(|&c| c == b'@').and_then(|at| {
        let (action, devpath) = (&head[..at], &head[at + 1..]);
        (!action.is_empty() && devpath.starts_with(b"/")).then(|| {
            let modalias = fields.filter_map(|f| f.strip_prefix(b"MODALIAS=")).find(|v| !v.is_empty());
            (action, devpath, modalias)
        })
    });
    match (got, want) {
        (None, None) => {}
        (Some(u), Some((action, devpath, modalias))) => {
            assert_eq!(u.action, action);
            assert_eq!(u.devpath, devpath);
            assert_eq!(u.modalias, modalias);
        }
        (got, want) => panic!("parse_uevent gave {got:?}, the message holds {want:?}"),
    }
});
