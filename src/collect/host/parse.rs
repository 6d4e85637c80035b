//! Parsers of the /proc and /sys files the host collectors read: pure
//! functions from the file's text to values, so they are tested on fixture
//! files (tests/fixtures/host/) and fuzzed (fuzz/fuzz_targets/host.rs).
//!
//! Each parser reads the format node_exporter 1.5 (through the `procfs` Go
//! library 0.8) reads, with the same tolerance: missing optional columns are
//! zero, lines a kernel may add are ignored, and a number that does not parse
//! is an error naming the line. They never panic and never allocate per line
//! beyond what they return.

/// USER_HZ: /proc/stat counts CPU time in 1/100 s on every Linux architecture.
pub const USER_HZ: f64 = 100.0;

/// What a parser returns on bad input: a message naming the line.
pub type ParseResult<T> = Result<T, String>;

fn number<T: std::str::FromStr>(field: &str, line: &str) -> ParseResult<T> {
    field.parse().map_err(|_| {
        format!(
            "invalid number {:?} in line {:?}",
            truncate(field),
            truncate(line)
        )
    })
}

/// A line shortened for an error message (a garbage file may have one huge line).
fn truncate(line: &str) -> &str {
    match line.char_indices().nth(120) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

// ------------------------------------------------------------------ /proc/stat

/// One `cpuN` line of /proc/stat, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    pub guest: f64,
    pub guest_nice: f64,
}

impl CpuTimes {
    pub fn fields(&self) -> [f64; 10] {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
            self.guest,
            self.guest_nice,
        ]
    }

    pub fn from_fields(f: [f64; 10]) -> CpuTimes {
        CpuTimes {
            user: f[0],
            nice: f[1],
            system: f[2],
            idle: f[3],
            iowait: f[4],
            irq: f[5],
            softirq: f[6],
            steal: f[7],
            guest: f[8],
            guest_nice: f[9],
        }
    }
}

/// /proc/stat: per-CPU times and the system-wide counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stat {
    /// (CPU number, times), in file order. Offline CPUs have no line, so the
    /// numbers can have gaps (CPU hotplug).
    pub cpus: Vec<(u32, CpuTimes)>,
    pub intr: u64,
    pub ctxt: u64,
    pub btime: u64,
    pub processes: u64,
    pub procs_running: u64,
    pub procs_blocked: u64,
}

pub fn stat(text: &str) -> ParseResult<Stat> {
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        if let Some(id) = key.strip_prefix("cpu") {
            if id.is_empty() {
                continue; // the all-CPU line
            }
            let id: u32 = number(id, line)?;
            let mut values = [0.0; 10];
            for (slot, field) in values.iter_mut().zip(fields) {
                *slot = number::<u64>(field, line)? as f64 / USER_HZ;
            }
            stat.cpus.push((id, CpuTimes::from_fields(values)));
            continue;
        }
        let slot = match key {
            "intr" => &mut stat.intr,
            "ctxt" => &mut stat.ctxt,
            "btime" => &mut stat.btime,
            "processes" => &mut stat.processes,
            "procs_running" => &mut stat.procs_running,
            "procs_blocked" => &mut stat.procs_blocked,
            _ => continue,
        };
        let Some(first) = fields.next() else {
            return Err(format!("missing value in line {:?}", truncate(line)));
        };
        *slot = number(first, line)?;
    }
    Ok(stat)
}

// ------------------------------------------------------------------ /proc/meminfo

/// /proc/meminfo as node_exporter names it: `Active(anon):  12 kB` becomes
/// (`Active_anon_bytes`, 12288); a line without a unit keeps its name
/// (`HugePages_Total`). In file order; a repeated key keeps its last value.
pub fn meminfo(text: &str) -> ParseResult<Vec<(String, f64)>> {
    let mut out: Vec<(String, f64)> = Vec::with_capacity(64);
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        let Some(value) = fields.next() else {
            return Err(format!("missing value in line {:?}", truncate(line)));
        };
        let mut value: f64 = number(value, line)?;
        let unit = fields.next();
        if fields.next().is_some() {
            return Err(format!("invalid line {:?}", truncate(line)));
        }
        let key = key.strip_suffix(':').unwrap_or(key);
        let mut name = String::with_capacity(key.len() + 6);
        // `\((.*)\)` → `_$1`: the outermost parentheses of the key.
        match (key.find('('), key.rfind(')')) {
            (Some(open), Some(close)) if open < close => {
                name.push_str(&key[..open]);
                name.push('_');
                name.push_str(&key[open + 1..close]);
                name.push_str(&key[close + 1..]);
            }
            _ => name.push_str(key),
        }
        if unit.is_some() {
            value *= 1024.0;
            name.push_str("_bytes");
        }
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => out.push((name, value)),
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ /proc/loadavg

pub fn loadavg(text: &str) -> ParseResult<[f64; 3]> {
    let mut fields = text.split_ascii_whitespace();
    let mut loads = [0.0; 3];
    for slot in &mut loads {
        let Some(field) = fields.next() else {
            return Err(format!(
                "expected three load averages, got {:?}",
                truncate(text)
            ));
        };
        *slot = number(field, text)?;
    }
    Ok(loads)
}

// ------------------------------------------------------------------ mounts

/// One line of /proc/1/mounts (fstab(5) format).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
}

impl Mount {
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// /proc/1/mounts. The mount point's `\040` (space) and `\011` (tab) escapes
/// are decoded, as node_exporter decodes them (and no others).
pub fn mounts(text: &str) -> ParseResult<Vec<Mount>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().take(4).collect();
        if fields.is_empty() {
            continue;
        }
        let [device, mount_point, fs_type, options] = fields[..] else {
            return Err(format!(
                "malformed mount point information: {:?}",
                truncate(line)
            ));
        };
        out.push(Mount {
            device: device.to_string(),
            mount_point: mount_point.replace("\\040", " ").replace("\\011", "\t"),
            fs_type: fs_type.to_string(),
            options: options.to_string(),
        });
    }
    Ok(out)
}

// ------------------------------------------------------------------ /proc/diskstats

/// One line of /proc/diskstats: the device and its 11, 15 or 17 counters.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskStats<'a> {
    pub major: u32,
    pub minor: u32,
    pub device: &'a str,
    /// The counters present, in the kernel's order (at most 17 are used).
    pub counters: Vec<u64>,
}

/// /proc/diskstats. Lines with fewer than 14 fields (partitions on kernels
/// before 2.6.25) are skipped, as procfs skips them.
pub fn diskstats(text: &str) -> ParseResult<Vec<DiskStats<'_>>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().take(20).collect();
        if fields.len() < 14 {
            continue;
        }
        out.push(DiskStats {
            major: number(fields[0], line)?,
            minor: number(fields[1], line)?,
            device: fields[2],
            counters: fields[3..]
                .iter()
                .map(|f| number(f, line))
                .collect::<ParseResult<_>>()?,
        });
    }
    Ok(out)
}

/// A udev database file (/run/udev/data/b<major>:<minor>): its `E:KEY=VALUE`
/// properties.
pub fn udev_properties(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("E:")?.split_once('='))
        .collect()
}

// ------------------------------------------------------------------ /proc/net/dev

/// The 16 counters of one /proc/net/dev line, in the file's column order:
/// receive bytes, packets, errs, drop, fifo, frame, compressed, multicast;
/// transmit bytes, packets, errs, drop, fifo, colls, carrier, compressed.
pub const NETDEV_COLUMNS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// /proc/net/dev: (device, counters) per interface, after the two header lines.
pub fn netdev(text: &str) -> ParseResult<Vec<(&str, [u64; 16])>> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((device, rest)) = line.split_once(':') else {
            return Err(format!(
                "missing `:` after the device name in line {:?}",
                truncate(line)
            ));
        };
        let mut counters = [0u64; 16];
        let mut fields = rest.split_ascii_whitespace();
        for slot in &mut counters {
            let Some(field) = fields.next() else {
                return Err(format!("expected 16 counters in line {:?}", truncate(line)));
            };
            *slot = number(field, line)?;
        }
        out.push((device.trim(), counters));
    }
    Ok(out)
}

// ------------------------------------------------------------------ /proc/pressure

/// The `total=` (microseconds) of the `some` and `full` lines of a
/// /proc/pressure file; `full` is absent from `cpu` on older kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pressure {
    pub some_total_us: Option<u64>,
    pub full_total_us: Option<u64>,
}

pub fn pressure(text: &str) -> ParseResult<Pressure> {
    let mut out = Pressure::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let slot = match fields.next() {
            Some("some") => &mut out.some_total_us,
            Some("full") => &mut out.full_total_us,
            Some(_) => return Err(format!("unknown pressure line {:?}", truncate(line))),
            None => continue,
        };
        let mut total = None;
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                return Err(format!(
                    "malformed field {field:?} in line {:?}",
                    truncate(line)
                ));
            };
            match key {
                "total" => total = Some(number::<u64>(value, line)?),
                "avg10" | "avg60" | "avg300" => {
                    number::<f64>(value, line)?;
                }
                _ => {}
            }
        }
        match total {
            Some(t) => *slot = Some(t),
            None => return Err(format!("missing total= in line {:?}", truncate(line))),
        }
    }
    if out.some_total_us.is_none() {
        return Err("no `some` line".to_string());
    }
    Ok(out)
}

// ------------------------------------------------------------------ /proc/vmstat

/// /proc/vmstat: (field, value) per line. Every value must parse, as in
/// node_exporter (it parses before it filters).
pub fn vmstat(text: &str) -> ParseResult<Vec<(&str, f64)>> {
    let mut out = Vec::with_capacity(200);
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(value) = fields.next() else {
            return Err(format!("missing value in line {:?}", truncate(line)));
        };
        out.push((name, number(value, line)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/host")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn stat_with_a_cpu_hotplug_gap() {
        let s = stat(&fixture("proc/stat")).expect("parses");
        let ids: Vec<u32> = s.cpus.iter().map(|c| c.0).collect();
        assert_eq!(ids, vec![0, 1, 3]);
        assert_eq!(s.cpus[0].1.user, 15571.21);
        assert_eq!(s.cpus[0].1.steal, 130.21);
        assert_eq!(s.cpus[2].1.guest_nice, 0.07);
        assert_eq!(s.intr, 19979389);
        assert_eq!(s.ctxt, 30992508);
        assert_eq!(s.btime, 1795307279);
        assert_eq!(s.processes, 476080);
        assert_eq!(s.procs_running, 2);
        assert_eq!(s.procs_blocked, 1);
    }

    #[test]
    fn stat_of_an_old_kernel_without_guest_columns() {
        let s = stat("cpu 1 2 3 4\ncpu0 100 200 300 400 500 600 700\nbtime 5\n").expect("parses");
        assert_eq!(s.cpus[0].1.softirq, 7.0);
        assert_eq!(s.cpus[0].1.steal, 0.0);
        assert_eq!(s.btime, 5);
    }

    #[test]
    fn meminfo_names_as_node_exporter() {
        let m = meminfo(&fixture("proc/meminfo")).expect("parses");
        let get = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        assert_eq!(get("MemTotal_bytes"), Some(24684084.0 * 1024.0));
        assert_eq!(get("Active_anon_bytes"), Some(1234.0 * 1024.0));
        assert_eq!(get("HugePages_Total"), Some(0.0));
        assert_eq!(get("Hugepagesize_bytes"), Some(2048.0 * 1024.0));
        assert_eq!(m[0].0, "MemTotal_bytes");
    }

    #[test]
    fn loadavg_parses_and_refuses_short_input() {
        assert_eq!(
            loadavg(&fixture("proc/loadavg")).expect("parses"),
            [0.13, 0.78, 1.25]
        );
        assert!(loadavg("0.1 0.2").is_err());
        assert!(loadavg("0.1 x 0.3").is_err());
    }

    #[test]
    fn mounts_decode_spaces_and_tabs() {
        let m = mounts(&fixture("proc/1/mounts")).expect("parses");
        assert!(m.iter().any(|m| m.mount_point == "/mnt/my disk"));
        assert!(m.iter().any(|m| m.mount_point == "/srv/tab\there"));
        let root = m.iter().find(|m| m.mount_point == "/").expect("root");
        assert_eq!(root.device, "/dev/vda");
        assert_eq!(root.fs_type, "ext4");
        assert!(!root.read_only());
        assert!(m.iter().any(|m| m.read_only()));
        assert!(mounts("/dev/sda1 /boot ext4\n").is_err());
    }

    #[test]
    fn diskstats_with_11_15_and_17_columns() {
        let text = fixture("proc/diskstats");
        let d = diskstats(&text).expect("parses");
        let vda = d.iter().find(|d| d.device == "vda").expect("vda");
        assert_eq!((vda.major, vda.minor), (254, 0));
        assert_eq!(vda.counters.len(), 17);
        assert_eq!(vda.counters[0], 86042);
        let old = d.iter().find(|d| d.device == "sdb").expect("sdb");
        assert_eq!(old.counters.len(), 11);
        assert!(
            !d.iter().any(|d| d.device == "sdb1"),
            "4-field partition line skipped"
        );
    }

    #[test]
    fn netdev_parses_interfaces() {
        let text = fixture("proc/net/dev");
        let n = netdev(&text).expect("parses");
        let names: Vec<&str> = n.iter().map(|d| d.0).collect();
        assert_eq!(names, vec!["lo", "ifb0", "eth0", "veth-long.name_1"]);
        assert_eq!(n[2].1[0], 323563308);
        assert_eq!(n[2].1[9], 15023);
        assert!(netdev("h\nh\neth0 1 2 3\n").is_err());
        assert!(netdev("h\nh\neth0: 1 2 3\n").is_err());
    }

    #[test]
    fn pressure_with_and_without_full() {
        let cpu = pressure(&fixture("proc/pressure/cpu")).expect("parses");
        assert_eq!(cpu.some_total_us, Some(8362925565));
        let io = pressure(&fixture("proc/pressure/io")).expect("parses");
        assert_eq!(io.full_total_us, Some(32889877));
        assert!(pressure("some avg10=0.00\n").is_err());
        assert!(pressure("").is_err());
    }

    #[test]
    fn vmstat_parses_every_line() {
        let text = fixture("proc/vmstat");
        let v = vmstat(&text).expect("parses");
        assert!(v.contains(&("pgfault", 311542346.0)));
        assert!(vmstat("pgfault x\n").is_err());
    }

    #[test]
    fn udev_properties_read_e_lines() {
        let p = udev_properties(
            "S:disk/by-id/x\nE:ID_MODEL=QEMU HARDDISK\nE:ID_PATH=pci-0000:00:05.0\nE:BROKEN\n",
        );
        assert_eq!(
            p,
            vec![
                ("ID_MODEL", "QEMU HARDDISK"),
                ("ID_PATH", "pci-0000:00:05.0")
            ]
        );
    }

    #[test]
    fn a_very_long_line_is_an_error_with_a_short_message() {
        let line = format!("MemTotal: {}x kB\n", "9".repeat(100_000));
        let err = meminfo(&line).expect_err("refused");
        assert!(err.len() < 300, "{err}");
        let line = format!("loadavg {}\n", "x".repeat(100_000));
        assert!(loadavg(&line).expect_err("refused").len() < 300);
    }

    fn all_parsers(text: &str) {
        let _ = stat(text);
        let _ = meminfo(text);
        let _ = loadavg(text);
        let _ = mounts(text);
        if let Ok(disks) = diskstats(text) {
            assert!(disks.iter().all(|d| d.counters.len() >= 11));
        }
        let _ = udev_properties(text);
        if let Ok(devices) = netdev(text) {
            assert!(devices.iter().all(|(name, _)| !name.contains(':')));
        }
        let _ = pressure(text);
        let _ = vmstat(text);
        for error in [stat(text).err(), meminfo(text).err(), vmstat(text).err()]
            .into_iter()
            .flatten()
        {
            // Field and line are cut at 120 characters each (Debug-escaped).
            assert!(
                error.len() < 2000,
                "error messages stay short: {}",
                error.len()
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            all_parsers(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn proc_like_text_never_panics(
            text in "(cpu[0-9]{0,3}|[a-z_]{1,8}|[0-9]{1,25}|\\.[0-9]|[:()=]| |\n|  |kB|some|full|total=|-){0,120}"
        ) {
            all_parsers(&text);
        }
    }
}
