//! Real images from Debian's tools (mkfs.*, sfdisk) in a scratch directory,
//! read by this module and by util-linux (`blkid -p`, `partx`), which must
//! agree; then every truncation and thousands of corruptions of them.
//!
//! A test whose tool is missing says SKIP on stderr and passes, unless
//! PARMOD_REQUIRE_DEBIAN=1, when it fails (`make deps` installs e2fsprogs,
//! xfsprogs, btrfs-progs, dosfstools, fdisk and util-linux).

use super::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{eprintln, format, vec};

impl ReadAt for File {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, i32> {
        FileExt::read_at(&*self, buf, offset).map_err(|e| e.raw_os_error().unwrap_or(5))
    }
}

/// A scratch directory, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("parmod-blockid-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A sparse file of `size` bytes.
    fn file(&self, name: &str, size: u64) -> PathBuf {
        let p = self.0.join(name);
        File::create(&p).unwrap().set_len(size).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PACKAGES: &[(&str, &str)] = &[
    ("mkfs.ext4", "e2fsprogs"),
    ("mkfs.ext3", "e2fsprogs"),
    ("mkfs.ext2", "e2fsprogs"),
    ("mkfs.xfs", "xfsprogs"),
    ("mkfs.btrfs", "btrfs-progs"),
    ("mkfs.vfat", "dosfstools"),
    ("sfdisk", "fdisk"),
    ("blkid", "util-linux"),
    ("partx", "util-linux"),
    ("fdisk", "fdisk"),
];

/// The tools, or None after saying SKIP (a failure under
/// PARMOD_REQUIRE_DEBIAN=1), as tests/harness's `skip` does: the line goes
/// to stderr itself, past the harness's capture, so a passing run shows it.
fn tools(test: &str, names: &[&str]) -> Option<Vec<PathBuf>> {
    use std::io::Write;
    let mut found = Vec::new();
    for &name in names {
        let path =
            ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.exists());
        match path {
            Some(p) => found.push(p),
            None => {
                let pkg = PACKAGES.iter().find(|p| p.0 == name).map_or("?", |p| p.1);
                assert!(
                    std::env::var("PARMOD_REQUIRE_DEBIAN").as_deref() != Ok("1"),
                    "{test}: {name} is missing, and PARMOD_REQUIRE_DEBIAN=1 requires it to run (apt-get install {pkg})"
                );
                let line = format!(
                    "SKIP {test}: {name} is missing (apt-get install {pkg}; PARMOD_REQUIRE_DEBIAN=1 makes this a failure)\n"
                );
                let _ = std::io::stderr().write_all(line.as_bytes());
                return None;
            }
        }
    }
    Some(found)
}

fn run(tool: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut cmd = Command::new(tool);
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{} {args:?} failed: {}", tool.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What `blkid -p` reports for a file (empty map: nothing found).
fn blkid(blkid: &Path, img: &Path, offset: Option<u64>) -> BTreeMap<String, String> {
    let mut cmd = Command::new(blkid);
    cmd.args(["-p", "-o", "export"]);
    if let Some(o) = offset {
        cmd.args(["-O", &o.to_string()]);
    }
    let out = cmd.arg(img).output().unwrap();
    // Exit status 2: nothing found; 8: ambivalent.
    assert!(matches!(out.status.code(), Some(0 | 2 | 8)), "blkid {}: {:?}", img.display(), out);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), shell_unescape(v)))
        .collect()
}

/// `-o export` writes a backslash before characters the shell would see.
fn shell_unescape(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().unwrap_or(c) } else { c });
    }
    out
}

fn text(t: &Text) -> &str {
    core::str::from_utf8(t.as_bytes()).unwrap()
}

fn probe(img: &Path) -> Result<Option<FsInfo>, IdError> {
    probe_fs(&mut File::open(img).unwrap())
}

/// The same file system as blkid saw: type, UUID, label.
fn assert_like_blkid(fs: &FsInfo, b: &BTreeMap<String, String>, what: &str) {
    let get = |k: &str| b.get(k).map_or("", |v| v.as_str());
    assert_eq!(core::str::from_utf8(fs.kind.name()).unwrap(), get("TYPE"), "{what}: TYPE");
    assert_eq!(text(&fs.uuid), get("UUID"), "{what}: UUID");
    assert_eq!(text(&fs.label), get("LABEL"), "{what}: LABEL");
}

/// One file-system image: how to make it, what it is.
struct FsCase {
    name: &'static str,
    tool: &'static str,
    size: u64,
    args: &'static [&'static str],
    kind: FsType,
    uuid: &'static str,
    label: &'static str,
}

const MIB: u64 = 1 << 20;

const FS_CASES: &[FsCase] = &[
    FsCase {
        name: "ext4",
        tool: "mkfs.ext4",
        size: 8 * MIB,
        args: &["-q", "-F", "-U", "0123abcd-4567-89ef-0123-456789abcdef", "-L", "rootfs"],
        kind: FsType::Ext4,
        uuid: "0123abcd-4567-89ef-0123-456789abcdef",
        label: "rootfs",
    },
    FsCase {
        name: "ext4-nocsum-4k",
        tool: "mkfs.ext4",
        size: 16 * MIB,
        args: &[
            "-q",
            "-F",
            "-b",
            "4096",
            "-O",
            "^metadata_csum",
            "-U",
            "f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f",
            "-L",
            "x",
        ],
        kind: FsType::Ext4,
        uuid: "f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f",
        label: "x",
    },
    FsCase {
        name: "ext3",
        tool: "mkfs.ext3",
        size: 8 * MIB,
        args: &["-q", "-F", "-U", "33333333-4444-5555-6666-777777777777", "-L", "old-root"],
        kind: FsType::Ext3,
        uuid: "33333333-4444-5555-6666-777777777777",
        label: "old-root",
    },
    FsCase {
        name: "ext2",
        tool: "mkfs.ext2",
        size: 4 * MIB,
        args: &["-q", "-F", "-U", "22222222-aaaa-bbbb-cccc-dddddddddddd"],
        kind: FsType::Ext2,
        uuid: "22222222-aaaa-bbbb-cccc-dddddddddddd",
        label: "",
    },
    FsCase {
        name: "xfs",
        tool: "mkfs.xfs",
        size: 300 * MIB,
        args: &["-q", "-f", "-m", "uuid=11111111-2222-3333-4444-555555555555", "-L", "xroot"],
        kind: FsType::Xfs,
        uuid: "11111111-2222-3333-4444-555555555555",
        label: "xroot",
    },
    FsCase {
        // A v5 superblock whose CRC covers a 4096-byte sector.
        name: "xfs-4k-sector",
        tool: "mkfs.xfs",
        size: 300 * MIB,
        args: &["-q", "-f", "-s", "size=4096", "-m", "uuid=44444444-2222-3333-4444-555555555555", "-L", "twelve-chars"],
        kind: FsType::Xfs,
        uuid: "44444444-2222-3333-4444-555555555555",
        label: "twelve-chars",
    },
    FsCase {
        // v4: no CRC (deprecated, still made and mounted by Debian 12).
        name: "xfs-v4",
        tool: "mkfs.xfs",
        size: 300 * MIB,
        args: &["-q", "-f", "-m", "crc=0", "-m", "uuid=55555555-2222-3333-4444-555555555555"],
        kind: FsType::Xfs,
        uuid: "55555555-2222-3333-4444-555555555555",
        label: "",
    },
    FsCase {
        name: "btrfs",
        tool: "mkfs.btrfs",
        size: 120 * MIB,
        args: &["-q", "-f", "-U", "66666666-3333-4444-5555-666666666666", "-L", "broot"],
        kind: FsType::Btrfs,
        uuid: "66666666-3333-4444-5555-666666666666",
        label: "broot",
    },
    FsCase {
        // Checksum type 1: identified without verifying (blkid verifies).
        name: "btrfs-xxhash",
        tool: "mkfs.btrfs",
        size: 120 * MIB,
        args: &[
            "-q",
            "-f",
            "--csum",
            "xxhash",
            "-U",
            "77777777-3333-4444-5555-666666666666",
            "-L",
            "a longer btrfs label",
        ],
        kind: FsType::Btrfs,
        uuid: "77777777-3333-4444-5555-666666666666",
        label: "a longer btrfs label",
    },
    FsCase {
        name: "fat12",
        tool: "mkfs.vfat",
        size: 1440 << 10,
        args: &["-F", "12", "-i", "DEADBEEF", "-n", "FLOPPY"],
        kind: FsType::Vfat,
        uuid: "DEAD-BEEF",
        label: "FLOPPY",
    },
    FsCase {
        name: "fat16",
        tool: "mkfs.vfat",
        size: 40 * MIB,
        args: &["-F", "16", "-i", "1234abcd", "-n", "EFI"],
        kind: FsType::Vfat,
        uuid: "1234-ABCD",
        label: "EFI",
    },
    FsCase {
        name: "fat32",
        tool: "mkfs.vfat",
        size: 64 * MIB,
        args: &["-F", "32", "-s", "1", "-i", "0badcafe", "-n", "BIG FAT"],
        kind: FsType::Vfat,
        uuid: "0BAD-CAFE",
        label: "BIG FAT",
    },
    FsCase {
        // No -n: the boot sector says "NO NAME", the root directory has no
        // label entry, so no LABEL (as blkid).
        name: "fat32-4k-nolabel",
        tool: "mkfs.vfat",
        size: 300 * MIB,
        args: &["-F", "32", "-S", "4096", "-i", "00c0ffee"],
        kind: FsType::Vfat,
        uuid: "00C0-FFEE",
        label: "",
    },
];

/// Make the image of a case (None: its tool is missing, SKIP said).
fn make_fs(dir: &Scratch, test: &str, c: &FsCase) -> Option<PathBuf> {
    let t = tools(test, &[c.tool])?;
    let img = dir.file(&format!("{}.img", c.name), c.size);
    let mut args = c.args.to_vec();
    let path = img.to_str().unwrap();
    args.push(path);
    run(&t[0], &args, None);
    Some(img)
}

#[test]
fn file_systems_read_as_blkid_reads_them() {
    let dir = Scratch::new("fs");
    let Some(b) = tools("file_systems_read_as_blkid_reads_them", &["blkid"]) else { return };
    let mut seen = 0;
    for c in FS_CASES {
        let Some(img) = make_fs(&dir, "file_systems_read_as_blkid_reads_them", c) else { continue };
        let fs = probe(&img).unwrap().unwrap_or_else(|| panic!("{}: nothing found", c.name));
        assert_eq!((fs.kind, text(&fs.uuid), text(&fs.label)), (c.kind, c.uuid, c.label), "{}", c.name);
        assert_like_blkid(&fs, &blkid(&b[0], &img, None), c.name);
        seen += 1;
        std::fs::remove_file(&img).unwrap();
    }
    eprintln!("{seen} of {} file-system images checked against blkid", FS_CASES.len());
}

#[test]
fn no_file_system_on_zeros_or_a_bare_partition_table() {
    let dir = Scratch::new("nofs");
    let zeros = dir.file("zeros.img", 4 * MIB);
    assert_eq!(probe(&zeros), Ok(None));
    // Shorter than every superblock's place.
    let tiny = dir.file("tiny.img", 100);
    assert_eq!(probe(&tiny), Ok(None));
    let Some(t) = tools("no_file_system_on_zeros_or_a_bare_partition_table", &["sfdisk", "blkid"]) else { return };
    let img = dir.file("disk.img", 16 * MIB);
    run(&t[0], &["-q", img.to_str().unwrap()], Some("label: dos\nlabel-id: 0x01020304\nsize=4MiB, type=83\n"));
    assert_eq!(probe(&img), Ok(None));
    assert_eq!(blkid(&t[1], &img, None).get("TYPE"), None);
}

#[test]
fn two_file_systems_on_one_device_are_refused() {
    let dir = Scratch::new("ambivalent");
    let (Some(ext), Some(fat)) = (
        make_fs(&dir, "two_file_systems_on_one_device_are_refused", &FS_CASES[0]),
        make_fs(&dir, "two_file_systems_on_one_device_are_refused", &FS_CASES[10]),
    ) else {
        return;
    };
    // An ext4 superblock at 1024 with a FAT boot sector in front of it.
    let boot = std::fs::read(&fat).unwrap();
    File::options().write(true).open(&ext).unwrap().write_all_at(&boot[..512], 0).unwrap();
    assert_eq!(probe(&ext), Err(IdError::Ambivalent(FsType::Ext4, FsType::Vfat)));
    if let Some(b) = tools("two_file_systems_on_one_device_are_refused", &["blkid"]) {
        assert_eq!(blkid(&b[0], &ext, None).get("TYPE"), None, "blkid refuses it too");
    }
}

/// Every partition of a disk image, in table order.
fn partitions(img: &Path, sector_size: u32) -> (Result<Option<Table>, IdError>, Vec<Partition>) {
    let mut f = File::open(img).unwrap();
    let size = f.metadata().unwrap().len();
    let mut all = Vec::new();
    let t = read_partitions(&mut f, Disk { sector_size, size }, &mut |p| {
        all.push(*p);
        true
    });
    (t, all)
}

/// partx's reading (number → start sector, sectors, uuid, name).
fn partx(partx: &Path, img: &Path) -> BTreeMap<u32, (u64, u64, String, String)> {
    run(partx, &["-g", "-o", "NR,START,SECTORS,UUID,NAME", "-r", img.to_str().unwrap()], None)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let name = f.get(4).map_or(String::new(), |n| unescape(n));
            (f[0].parse().unwrap(), (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].to_string(), name))
        })
        .collect()
}

/// util-linux's `\xNN` escapes in raw output.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 3 < b.len() {
            out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

const MBR_SCRIPT: &str = "label: dos\nlabel-id: 0x1234abcd\n\
size=4MiB, type=83\nsize=4MiB, type=83, bootable\ntype=5\n\
size=2MiB, type=83\nsize=2MiB, type=82\nsize=2MiB, type=83\n";

const GPT_SCRIPT: &str = "label: gpt\nlabel-id: 5A8E1E7B-1111-2222-3333-444455556666\n\
start=2048, size=8MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=AAAAAAAA-1111-2222-3333-444444444444, name=\"EFI system\"\n\
size=16MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=BBBBBBBB-1111-2222-3333-444444444444, name=\"root\"\n\
DISK5 : size=4MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=CCCCCCCC-1111-2222-3333-444444444444, name=\"café  \"\n";

fn make_disk(dir: &Scratch, sfdisk: &Path, name: &str, size: u64, script: &str, extra: &[&str]) -> PathBuf {
    let img = dir.file(name, size);
    let path = img.to_str().unwrap();
    let mut args = extra.to_vec();
    args.extend(["-q", path]);
    run(sfdisk, &args, Some(&script.replace("DISK", path)));
    img
}

#[test]
fn mbr_partitions_as_the_kernel_numbers_them() {
    let dir = Scratch::new("mbr");
    let Some(t) = tools("mbr_partitions_as_the_kernel_numbers_them", &["sfdisk", "partx", "blkid"]) else { return };
    let img = make_disk(&dir, &t[0], "mbr.img", 32 * MIB, MBR_SCRIPT, &[]);
    let (table, parts) = partitions(&img, 512);
    let table = table.unwrap().unwrap();
    assert_eq!(table.kind, TableKind::Mbr);
    assert_eq!(text(&table.id), blkid(&t[2], &img, None)["PTUUID"]);
    let want = partx(&t[1], &img);
    let numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 3, 5, 6, 7]);
    for p in &parts {
        let (start, sectors, uuid, _) = &want[&p.number];
        assert_eq!(p.start, start * 512, "partition {}", p.number);
        if p.number == 3 {
            // The extended partition: the kernel's 1 KiB stub, no PARTUUID.
            assert_eq!((p.size, text(&p.uuid)), (1024, ""));
        } else {
            assert_eq!((p.size, text(&p.uuid)), (sectors * 512, uuid.as_str()), "partition {}", p.number);
        }
        assert!(p.name.is_empty());
    }
    assert_eq!(want.len(), parts.len());
    // Read with 4096-byte logical blocks the same table means other places:
    // partition 1 at 8 MiB, cut at the end of the disk; the others start
    // past it and do not exist.
    let (_, parts4k) = partitions(&img, 4096);
    let seen: Vec<_> = parts4k.iter().map(|p| (p.number, p.start, p.size)).collect();
    assert_eq!(seen, [(1, 8 * MIB, 24 * MIB)]);
    assert_eq!(
        read_partitions(&mut File::open(&img).unwrap(), Disk { sector_size: 520, size: 32 * MIB }, &mut |_| true),
        Err(IdError::SectorSize(520))
    );
}

#[test]
fn gpt_partitions_as_the_kernel_numbers_them() {
    let dir = Scratch::new("gpt");
    let Some(t) = tools("gpt_partitions_as_the_kernel_numbers_them", &["sfdisk", "partx", "blkid"]) else { return };
    let img = make_disk(&dir, &t[0], "gpt.img", 64 * MIB, GPT_SCRIPT, &[]);
    let (table, parts) = partitions(&img, 512);
    let table = table.unwrap().unwrap();
    assert_eq!((table.kind, text(&table.id)), (TableKind::Gpt, "5a8e1e7b-1111-2222-3333-444455556666"));
    assert_eq!(text(&table.id), blkid(&t[2], &img, None)["PTUUID"]);
    let want = partx(&t[1], &img);
    assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2, 5]);
    for p in &parts {
        let (start, sectors, uuid, name) = &want[&p.number];
        assert_eq!(
            (p.start, p.size, text(&p.uuid), text(&p.name)),
            (start * 512, sectors * 512, uuid.as_str(), name.as_str()),
            "partition {}",
            p.number
        );
    }
    // UTF-16 to UTF-8, trailing blanks dropped (as blkid).
    assert_eq!(text(&parts[2].name), "café");
    // The visitor stops when asked.
    let mut n = 0;
    read_partitions(&mut File::open(&img).unwrap(), Disk { sector_size: 512, size: 64 * MIB }, &mut |_| {
        n += 1;
        false
    })
    .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn gpt_on_4096_byte_blocks() {
    let dir = Scratch::new("gpt4k");
    let Some(t) = tools("gpt_on_4096_byte_blocks", &["fdisk"]) else { return };
    // sfdisk 2.38 has no --sector-size; fdisk -b does, from its dialogue:
    // a GPT, partition 1 at block 256 of 2048 blocks, named in expert mode.
    let img = dir.file("gpt4k.img", 64 * MIB);
    let path = img.to_str().unwrap();
    run(&t[0], &["-b", "4096", path], Some("g\nn\n1\n256\n+2047\nx\nn\nrootfs\nr\nw\n"));
    let listing = run(&t[0], &["-b", "4096", "-l", "-o", "Device,Start,Sectors,UUID,Name", path], None);
    let row: Vec<&str> = listing.lines().last().unwrap().split_whitespace().collect();
    let (table, parts) = partitions(&img, 4096);
    assert_eq!(table.unwrap().map(|t| t.kind), Some(TableKind::Gpt));
    assert_eq!(parts.len(), 1);
    let p = &parts[0];
    assert_eq!((p.number, p.start, p.size, text(&p.name)), (1, 256 * 4096, 2048 * 4096, "rootfs"));
    assert_eq!(row[1..3], ["256", "2048"]);
    assert_eq!(text(&p.uuid), row[3].to_ascii_lowercase());
    assert_eq!(row[4], "rootfs");
    // Read with 512-byte blocks the header is not at LBA 1: no table, as
    // for the kernel.
    let (table, parts) = partitions(&img, 512);
    assert_eq!((table, parts.len()), (Ok(None), 0));
}

/// A partition of a disk image as a device of its own.
struct Slice<'f> {
    file: &'f File,
    start: u64,
    size: u64,
}

impl ReadAt for Slice<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, i32> {
        let room = self.size.saturating_sub(offset).min(buf.len() as u64) as usize;
        FileExt::read_at(self.file, &mut buf[..room], self.start + offset).map_err(|e| e.raw_os_error().unwrap_or(5))
    }
}

/// Copy a file-system image into a disk image at `at` (sparse: only the
/// blocks that hold data).
fn copy_into(disk: &Path, fs: &Path, at: u64) {
    let src = std::fs::read(fs).unwrap();
    let dst = File::options().write(true).open(disk).unwrap();
    for (i, block) in src.chunks(4096).enumerate() {
        if block.iter().any(|&b| b != 0) {
            dst.write_all_at(block, at + i as u64 * 4096).unwrap();
        }
    }
}

/// How /init finds its root on a disk: by the table for PARTUUID and
/// PARTLABEL, by probing each partition for UUID and LABEL.
fn find_root(img: &Path, line: &str) -> Option<u32> {
    let spec = RootSpec::parse(crate::cmdline::Cmdline(line.as_bytes())).unwrap();
    let mut f = File::open(img).unwrap();
    let disk = Disk { sector_size: 512, size: f.metadata().unwrap().len() };
    if let n @ Some(_) = find_partition(&mut f, disk, &spec.root).unwrap() {
        return n;
    }
    let (_, parts) = partitions(img, 512);
    parts.iter().find_map(|p| {
        let fs = probe_fs(&mut Slice { file: &f, start: p.start, size: p.size }).unwrap()?;
        spec.root.names_fs(&fs).then_some(p.number)
    })
}

#[test]
fn root_found_on_a_disk_by_every_form() {
    let dir = Scratch::new("disk");
    let test = "root_found_on_a_disk_by_every_form";
    let Some(t) = tools(test, &["sfdisk", "blkid"]) else { return };
    // A FAT12 file system in the 8 MiB ESP, ext4 in the root partition.
    let (Some(fat12), Some(ext)) = (make_fs(&dir, test, &FS_CASES[9]), make_fs(&dir, test, &FS_CASES[0])) else {
        return;
    };
    let gpt = make_disk(&dir, &t[0], "gpt.img", 64 * MIB, GPT_SCRIPT, &[]);
    copy_into(&gpt, &fat12, 2048 * 512);
    copy_into(&gpt, &ext, 18432 * 512);
    // blkid agrees on what is where.
    assert_eq!(blkid(&t[1], &gpt, Some(18432 * 512))["UUID"], FS_CASES[0].uuid);
    for (line, want) in [
        ("root=PARTUUID=bbbbbbbb-1111-2222-3333-444444444444", Some(2)),
        ("root=PARTUUID=BBBBBBBB-1111-2222-3333-444444444444", Some(2)),
        ("root=PARTUUID=aaaaaaaa-1111-2222-3333-444444444444/PARTNROFF=1", Some(2)),
        ("root=PARTUUID=bbbbbbbb-1111-2222-3333-444444444444/PARTNROFF=3", Some(5)),
        // Partition 3 does not exist.
        ("root=PARTUUID=bbbbbbbb-1111-2222-3333-444444444444/PARTNROFF=1", None),
        ("root=PARTLABEL=root", Some(2)),
        ("\"root=PARTLABEL=EFI system\"", Some(1)),
        ("root=/dev/disk/by-partlabel/EFI\\x20system", Some(1)),
        ("root=PARTLABEL=café", Some(5)),
        ("root=UUID=0123ABCD-4567-89ef-0123-456789abcdef", Some(2)),
        ("root=/dev/disk/by-uuid/0123abcd-4567-89ef-0123-456789abcdef", Some(2)),
        ("root=LABEL=rootfs", Some(2)),
        ("root=LABEL=ROOTFS", None),
        ("root=UUID=dead-beef", Some(1)),
        ("root=LABEL=FLOPPY", Some(1)),
        ("root=UUID=00000000-0000-0000-0000-000000000000", None),
    ] {
        assert_eq!(find_root(&gpt, line), want, "{line}");
    }

    // An MBR disk with the root in a logical partition.
    let mbr = make_disk(&dir, &t[0], "mbr.img", 32 * MIB, MBR_SCRIPT, &[]);
    let Some(small) = make_fs(&dir, test, &FS_CASES[3]) else { return };
    copy_into(&mbr, &small, 26624 * 512);
    for (line, want) in [
        ("root=PARTUUID=1234abcd-06", Some(6)),
        ("root=PARTUUID=1234ABCD-05/PARTNROFF=2", Some(7)),
        ("root=PARTUUID=1234abcd-05/PARTNROFF=-4", Some(1)),
        ("root=PARTUUID=1234abcd-03", None),
        ("root=UUID=22222222-aaaa-bbbb-cccc-dddddddddddd", Some(6)),
    ] {
        assert_eq!(find_root(&mbr, line), want, "{line}");
    }
    let mut name = [0u8; 16];
    let n = partition_node(b"vda", 6, &mut name).unwrap();
    assert_eq!(&name[..n], b"vda6");
    let n = partition_node(b"nvme0n1", 12, &mut name).unwrap();
    assert_eq!(&name[..n], b"nvme0n1p12");
    assert_eq!(partition_node(b"mmcblk0", 1, &mut name[..8]), None);
}

// ---- truncations and corruptions ----

/// A device image seen through changes: cut at `len`, bytes replaced; each
/// read request recorded.
struct Mangled<'f> {
    file: &'f File,
    len: u64,
    patches: Vec<(u64, u8)>,
    reads: Vec<(u64, usize)>,
}

impl<'f> Mangled<'f> {
    fn new(file: &'f File) -> Self {
        Mangled { file, len: file.metadata().unwrap().len(), patches: Vec::new(), reads: Vec::new() }
    }
}

impl ReadAt for Mangled<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, i32> {
        self.reads.push((offset, buf.len()));
        let room = self.len.saturating_sub(offset).min(buf.len() as u64) as usize;
        let n = FileExt::read_at(self.file, &mut buf[..room], offset).unwrap();
        for &(at, b) in &self.patches {
            if (offset..offset + n as u64).contains(&at) {
                buf[(at - offset) as usize] = b;
            }
        }
        Ok(n)
    }
}

// A test value, compared and printed; its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
enum Outcome {
    Fs(Result<Option<FsInfo>, IdError>),
    Parts(Result<Option<Table>, IdError>, Vec<Partition>),
}

fn outcome(dev: &mut Mangled, table: bool) -> Outcome {
    if table {
        let mut all = Vec::new();
        let size = dev.file.metadata().unwrap().len();
        let t = read_partitions(dev, Disk { sector_size: 512, size }, &mut |p| {
            all.push(*p);
            true
        });
        Outcome::Parts(t, all)
    } else {
        Outcome::Fs(probe_fs(dev))
    }
}

fn found(o: &Outcome) -> bool {
    match o {
        Outcome::Fs(r) => matches!(r, Ok(Some(_))),
        Outcome::Parts(r, _) => matches!(r, Ok(Some(_))),
    }
}

/// xorshift64*: the same corruptions on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every truncation, then corruptions, of one image.
///
/// Truncations: the probes read in a sequence that depends only on bytes
/// already read, so cutting the image at `n` changes nothing until the
/// first read request that reaches past `n`, which then comes back short.
/// Two cuts inside the same gap between request ends therefore behave
/// alike; every cut at a request's start, last byte and end covers every
/// behaviour there is. Below 32 KiB every cut is tried besides.
///
/// Corruptions: bytes within what the probe read (elsewhere a change is
/// not seen). A single changed byte inside `guarded` (CRC-covered) must make
/// the probe refuse the image.
fn mangle(img: &Path, table: bool, guarded: &[(u64, u64)], trials: u32, seed: u64) {
    let file = File::open(img).unwrap();
    let mut dev = Mangled::new(&file);
    let whole = outcome(&mut dev, table);
    assert!(found(&whole), "{}: nothing found unchanged", img.display());
    let reads = std::mem::take(&mut dev.reads);
    let end = reads.iter().map(|&(o, l)| o + l as u64).max().unwrap();
    let mut cuts: Vec<u64> = reads.iter().flat_map(|&(o, l)| [o, o + l as u64 - 1, o + l as u64]).collect();
    cuts.extend(0..=end.min(32 << 10));
    cuts.sort_unstable();
    cuts.dedup();
    for &n in &cuts {
        let mut dev = Mangled { len: n, ..Mangled::new(&file) };
        let o = outcome(&mut dev, table);
        if n >= end {
            assert_eq!(o, whole, "{} cut at {n}", img.display());
        }
        if guarded.iter().any(|&(_, b)| n < b) {
            assert!(!found(&o), "{} cut at {n}, inside a checksum, yet found {o:?}", img.display());
        }
        if n == 0 {
            assert!(!found(&o), "{}: found {o:?} in nothing", img.display());
        }
    }
    // Corruptions, weighted by the bytes each read covers.
    let total: u64 = reads.iter().map(|r| r.1 as u64).sum();
    let pick = |rng: &mut Rng| {
        let mut k = rng.below(total);
        for &(o, l) in &reads {
            if k < l as u64 {
                return o + k;
            }
            k -= l as u64;
        }
        unreachable!()
    };
    let mut rng = Rng(seed);
    let (mut refused, mut single) = (0, 0);
    for trial in 0..trials {
        let bytes = if trial % 2 == 0 { 1 } else { 1 + rng.below(8) };
        let mut dev = Mangled::new(&file);
        for _ in 0..bytes {
            let at = pick(&mut rng);
            let mut old = [0u8];
            FileExt::read_at(&file, &mut old, at).unwrap();
            dev.patches.push((at, old[0] ^ (1 + rng.below(255) as u8)));
        }
        let o = outcome(&mut dev, table);
        refused += !found(&o) as u32;
        if bytes == 1 && guarded.iter().any(|&(a, b)| (a..b).contains(&dev.patches[0].0)) {
            single += 1;
            assert!(
                !found(&o),
                "{}: byte {} changed inside a checksum, yet found {o:?}",
                img.display(),
                dev.patches[0].0
            );
        }
    }
    eprintln!(
        "{}: {} cuts, {trials} corruptions ({refused} refused, {single} single bytes under a checksum)",
        img.file_name().unwrap().to_string_lossy(),
        cuts.len()
    );
}

#[test]
fn truncated_and_corrupted_file_systems_are_refused_or_read_without_panic() {
    let dir = Scratch::new("fuzzfs");
    let test = "truncated_and_corrupted_file_systems_are_refused_or_read_without_panic";
    // (case, CRC-covered bytes). Each format's switch for its checksum lies
    // outside it: the metadata_csum byte of ext4 (0x65 in the superblock),
    // the version nibble of xfs (101), btrfs's checksum type (0xc4-0xc5).
    // Changed there, the superblock reads as its unchecksummed variant, for
    // blkid too. A CRC-32C leaves bytes 4-31 of btrfs's checksum field
    // unused.
    let guarded: &[(&str, &[(u64, u64)])] = &[
        ("ext4", &[(1024, 1024 + 0x65), (1024 + 0x66, 2048)]),
        ("ext4-nocsum-4k", &[]),
        ("xfs", &[(0, 101), (102, 512)]),
        ("xfs-4k-sector", &[(0, 101), (102, 4096)]),
        ("btrfs", &[(65536, 65536 + 4), (65536 + 32, 65536 + 0xc4), (65536 + 0xc6, 65536 + 4096)]),
        ("fat16", &[]),
        ("fat32", &[]),
    ];
    for (i, &(name, g)) in guarded.iter().enumerate() {
        let c = FS_CASES.iter().find(|c| c.name == name).unwrap();
        let Some(img) = make_fs(&dir, test, c) else { continue };
        mangle(&img, false, g, 2000, 0x9e37_79b9_7f4a_7c15 + i as u64);
        std::fs::remove_file(&img).unwrap();
    }
}

#[test]
fn truncated_and_corrupted_partition_tables_are_refused_or_read_without_panic() {
    let dir = Scratch::new("fuzzpt");
    let Some(t) = tools("truncated_and_corrupted_partition_tables_are_refused_or_read_without_panic", &["sfdisk"])
    else {
        return;
    };
    let gpt = make_disk(&dir, &t[0], "gpt.img", 64 * MIB, GPT_SCRIPT, &[]);
    // The header (92 bytes at LBA 1) and the entry array (LBA 2-33).
    mangle(&gpt, true, &[(512, 512 + 92), (1024, 1024 + 128 * 128)], 3000, 7);
    let mbr = make_disk(&dir, &t[0], "mbr.img", 32 * MIB, MBR_SCRIPT, &[]);
    mangle(&mbr, true, &[], 3000, 11);
}

#[test]
fn hostile_tables_end() {
    // An EBR whose link points back at itself, and whose data entry is
    // empty: the kernel's 100-link limit ends it.
    let mut disk = vec![0u8; 64 << 10];
    let sector = put_mbr;
    sector(&mut disk, 0, &[(0x83, 1, 8), (0x05, 16, 64)]);
    sector(&mut disk, 16 * 512, &[(0, 0, 0), (0x05, 0, 64)]);
    let mut dev: &[u8] = &disk;
    let mut n = Vec::new();
    let t = read_partitions(&mut dev, Disk { sector_size: 512, size: disk.len() as u64 }, &mut |p| {
        n.push(p.number);
        true
    });
    assert_eq!(t.map(|t| t.map(|t| t.kind)), Ok(Some(TableKind::Mbr)));
    assert_eq!(n, [1, 2]);
    // The same loop with a data partition in each EBR: numbers stop at 255.
    sector(&mut disk, 16 * 512, &[(0x83, 1, 4), (0x05, 0, 64)]);
    let mut dev: &[u8] = &disk;
    let mut n = Vec::new();
    read_partitions(&mut dev, Disk { sector_size: 512, size: disk.len() as u64 }, &mut |p| {
        n.push(p.number);
        true
    })
    .unwrap();
    assert_eq!(n.len(), 2 + 251);
    assert_eq!(n.last(), Some(&255));
    // A read error is reported with its place.
    struct Broken;
    impl ReadAt for Broken {
        fn read_at(&mut self, _: u64, _: &mut [u8]) -> Result<usize, i32> {
            Err(5)
        }
    }
    assert_eq!(probe_fs(&mut Broken), Err(IdError::Read { offset: 1024, errno: 5 }));
    assert_eq!(
        read_partitions(&mut Broken, Disk { sector_size: 512, size: 1 << 20 }, &mut |_| true),
        Err(IdError::Read { offset: 0, errno: 5 })
    );
}

/// An MBR sector (or EBR) in `d` at byte `at`: entries (type, start, length).
fn put_mbr(d: &mut [u8], at: usize, entries: &[(u8, u32, u32)]) {
    for (i, &(kind, start, len)) in entries.iter().enumerate() {
        let e = at + 446 + 16 * i;
        d[e + 4] = kind;
        d[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
        d[e + 12..e + 16].copy_from_slice(&len.to_le_bytes());
    }
    d[at + 510] = 0x55;
    d[at + 511] = 0xaa;
}

fn numbered(disk: &[u8]) -> Vec<(u32, u64, u64, String)> {
    let mut dev: &[u8] = disk;
    let mut all = Vec::new();
    read_partitions(&mut dev, Disk { sector_size: 512, size: disk.len() as u64 }, &mut |p| {
        all.push((p.number, p.start / 512, p.size / 512, text(&p.uuid).to_string()));
        true
    })
    .unwrap();
    all
}

#[test]
fn extended_boot_records_as_the_kernel_reads_them() {
    // 128 sectors; the extended partition covers sectors 16-115.
    let mut d = vec![0u8; 128 * 512];
    d[440..444].copy_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    put_mbr(&mut d, 0, &[(0x83, 1, 8), (0x05, 16, 100), (0, 0, 0), (0x83, 200, 8)]);
    // EBR 1: data at +1; the link (relative to the extended partition) to
    // sector 36; a third entry inside this EBR's range, a fourth outside.
    put_mbr(&mut d, 16 * 512, &[(0x83, 1, 4), (0x05, 20, 30), (0x83, 2, 3), (0x83, 90, 20)]);
    // EBR 2: the link first (DR-DOS does so), then the data.
    put_mbr(&mut d, 36 * 512, &[(0x0f, 40, 10), (0x83, 1, 2)]);
    // EBR 3 (sector 56): no signature, the chain ends.
    assert_eq!(
        numbered(&d),
        [
            (1, 1, 8, "a1b2c3d4-01".to_string()),
            (2, 16, 2, String::new()),
            (5, 17, 4, "a1b2c3d4-05".to_string()),
            (6, 18, 3, "a1b2c3d4-06".to_string()),
            (7, 37, 2, "a1b2c3d4-07".to_string()),
        ]
    );
    // Slot 4 starts past the end of the disk: no partition 4, as the kernel.
    // A boot indicator other than 0 and 0x80: not a partition table.
    d[446 + 16] = 0x01;
    assert_eq!(numbered(&d), []);
}

#[test]
fn gpt_entry_ending_before_its_start_reaches_the_end_of_the_disk() {
    let dir = Scratch::new("gptwrap");
    let Some(t) = tools("gpt_entry_ending_before_its_start_reaches_the_end_of_the_disk", &["sfdisk"]) else { return };
    let img = make_disk(&dir, &t[0], "gpt.img", 64 * MIB, GPT_SCRIPT, &[]);
    let mut d = std::fs::read(&img).unwrap();
    // Entry 2 (at LBA 2 + 128 bytes) made to end before it starts, the CRCs
    // made right again.
    let e = 1024 + 128;
    let first = u64::from_le_bytes(d[e + 32..e + 40].try_into().unwrap());
    let set_end = |d: &mut Vec<u8>, last: u64| {
        d[e + 40..e + 48].copy_from_slice(&last.to_le_bytes());
        let array = crc32(&CRC32_IEEE, 0, &d[1024..1024 + 128 * 128]);
        d[512 + 88..512 + 92].copy_from_slice(&array.to_le_bytes());
        d[512 + 16..512 + 20].fill(0);
        let header = crc32(&CRC32_IEEE, 0, &d[512..512 + 92]);
        d[512 + 16..512 + 20].copy_from_slice(&header.to_le_bytes());
    };
    // Two blocks before: cut at the end of the disk.
    set_end(&mut d, first - 2);
    let p2 = numbered(&d).into_iter().find(|p| p.0 == 2).unwrap();
    assert_eq!((p2.1, p2.2), (first, 64 * MIB / 512 - first));
    // One block before: a length of 0, no partition 2.
    set_end(&mut d, first - 1);
    assert_eq!(numbered(&d).iter().map(|p| p.0).collect::<Vec<_>>(), [1, 5]);
    // A wrong array CRC: no table at all.
    d[512 + 88] ^= 1;
    assert_eq!(numbered(&d), []);
}

#[test]
fn crc32_known_values() {
    // The check values of both CRCs ("123456789").
    assert_eq!(crc32(&CRC32_IEEE, 0, b"123456789"), 0xcbf4_3926);
    assert_eq!(crc32(&CRC32C, 0, b"123456789"), 0xe306_9283);
    assert_eq!(crc32(&CRC32C, crc32(&CRC32C, 0, b"1234"), b"56789"), 0xe306_9283);
    assert_eq!(crc32(&CRC32C, 0, &[0x5a; 300]), crate::plan::crc32c(&[0x5a; 300]));
}

#[test]
fn uuid_and_label_text() {
    let b: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
    assert_eq!(text(&uuid_text(&b, false)), "00112233-4455-6677-8899-aabbccddeeff");
    assert_eq!(text(&uuid_text(&b, true)), "33221100-5544-7766-8899-aabbccddeeff");
    assert_eq!(fs::fs_uuid(&[0; 16]), None);
    assert_eq!(fs::fs_uuid(&b).map(|t| t.len), Some(36));
    assert_eq!(text(&Text::label(b"ab c  \t\0junk")), "ab c");
    assert_eq!(text(&Text::label(b"   ")), "");
    // A GPT name with a surrogate pair, and a high surrogate left
    // unpaired, encoded as it stands (as blkid).
    let mut raw = [0u8; 72];
    for (i, u) in [0x41u16, 0xd83d, 0xde00, 0xd800, 0x42].iter().enumerate() {
        raw[2 * i..2 * i + 2].copy_from_slice(&u.to_le_bytes());
    }
    assert_eq!(part::utf16_name(&raw).as_bytes(), [0x41, 0xf0, 0x9f, 0x98, 0x80, 0xed, 0xa0, 0x80, 0x42]);
}
