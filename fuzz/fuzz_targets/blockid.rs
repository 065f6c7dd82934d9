//! The root device's identification on fuzzed disk images: partition
//! tables (GPT, MBR with extended partitions) and the ext, xfs, btrfs and
//! vfat superblocks, on the whole disk and on every partition found. The
//! input is a flags byte (sector size, checksums to make right, a read
//! error to inject) and a sparse image (see `parmod_fuzz::image`).
//! Partitions found must lie on the disk with distinct numbers, and a
//! PARTUUID or file-system UUID found must find that device again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parmod::blockid::{find_partition, probe_fs, read_partitions, Disk, Key, Partition, Root};
use parmod_fuzz::image::{fix_btrfs, fix_ext4, fix_gpt, fix_xfs, Image, View};
use parmod_fuzz::input::Bytes;

fn check_fs(img: &Image, start: u64, len: u64, fail_at: Option<u64>) {
    let mut v = View { image: img, start, len, fail_at };
    let first = probe_fs(&mut v);
    let again = probe_fs(&mut View { image: img, start, len, fail_at });
    assert_eq!(first.as_ref().ok().map(|f| f.map(|x| (x.kind, x.uuid, x.label))), again.as_ref().ok().map(|f| f.map(|x| (x.kind, x.uuid, x.label))));
    if let Ok(Some(fs)) = first {
        let _ = (fs.kind.name(), fs.kind.module());
        if !fs.uuid.is_empty() {
            assert!(Root::Uuid(Key { raw: fs.uuid.as_bytes(), escaped: false }).names_fs(&fs));
            let upper: Vec<u8> = fs.uuid.as_bytes().to_ascii_uppercase();
            assert!(Root::Uuid(Key { raw: &upper, escaped: false }).names_fs(&fs), "UUIDs match without regard to case");
        }
        if !fs.label.is_empty() {
            assert!(Root::Label(Key { raw: fs.label.as_bytes(), escaped: false }).names_fs(&fs));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let flags = b.u8();
    let sector = 512u32 << (flags & 3);
    let mut img = Image::read(&mut b);
    if flags & 4 != 0 {
        fix_gpt(&mut img, sector as u64);
    }
    if flags & 8 != 0 {
        fix_ext4(&mut img);
    }
    if flags & 16 != 0 {
        fix_xfs(&mut img);
    }
    if flags & 32 != 0 {
        fix_btrfs(&mut img);
    }
    let fail_at = (flags & 64 != 0).then_some(img.size / 2);
    let disk = Disk { sector_size: sector, size: img.size };
    let mut found: Vec<Partition> = Vec::new();
    let table = read_partitions(&mut View { image: &img, start: 0, len: img.size, fail_at }, disk, &mut |p| {
        found.push(*p);
        true
    });
    if let Ok(Some(_)) = table {
        let mut numbers: Vec<u32> = found.iter().map(|p| p.number).collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), found.len(), "partition numbers are distinct");
        for p in &found {
            assert!((1..=255).contains(&p.number), "partition number {}", p.number);
            assert!(p.start < img.size && p.start + p.size <= img.size, "partition {} ({}+{}) off the disk of {}", p.number, p.start, p.size, img.size);
            if !p.uuid.is_empty() {
                let root = Root::PartUuid { uuid: p.uuid.as_bytes(), offset: 0 };
                let first = found.iter().find(|q| root.names_partition(q)).map(|q| q.number);
                let got = find_partition(&mut View { image: &img, start: 0, len: img.size, fail_at }, disk, &root);
                assert_eq!(got.ok().flatten(), first, "PARTUUID={:?}", p.uuid);
            }
            if !p.name.is_empty() {
                let root = Root::PartLabel(Key { raw: p.name.as_bytes(), escaped: false });
                assert!(root.names_partition(p));
            }
        }
        for p in found.iter().take(8) {
            check_fs(&img, p.start, p.size, fail_at.map(|f| f.saturating_sub(p.start)));
        }
    } else {
        assert!(found.is_empty() || table.is_err(), "partitions visited without a table");
    }
    check_fs(&img, 0, img.size, fail_at);
    if std::env::var_os("PARMOD_FUZZ_DEBUG").is_some() {
        eprintln!("table {:?}", table.map(|t| t.map(|t| t.kind)));
        for p in &found {
            let fs = probe_fs(&mut View { image: &img, start: p.start, len: p.size, fail_at: None });
            eprintln!("partition {} {}+{} {:?} {:?}: {:?}", p.number, p.start, p.size, p.uuid, p.name, fs.map(|f| f.map(|f| (f.kind, f.uuid, f.label))));
        }
        let fs = probe_fs(&mut View { image: &img, start: 0, len: img.size, fail_at: None });
        eprintln!("disk: {:?}", fs.map(|f| f.map(|f| (f.kind, f.uuid, f.label))));
    }
});
