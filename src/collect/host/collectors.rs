//! One function per node_exporter collector: read the files, parse them
//! (super::parse), and add node_exporter 1.5's metric families — same names,
//! HELP strings, types and label sets — to an [`Exposition`].
//!
//! Each returns `Err` when its source is unreadable or malformed; the caller
//! then reports `node_scrape_collector_success{collector} 0`, as node_exporter
//! does, keeping whatever the collector had added before the failure.

use std::path::{Path, PathBuf};

use super::exposition::{Exposition, Kind};
use super::parse::{self, CpuTimes};
use super::{CollectError, HostCollector};

/// Reads a whole file, the error naming the path (`NotFound` kept apart:
/// some collectors fall back or report "no data" on it).
pub(super) fn read(path: &Path) -> Result<String, CollectError> {
    std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CollectError::NotFound(format!("{}: {e}", path.display()))
        } else {
            CollectError::Failed(format!("reading {}: {e}", path.display()))
        }
    })
}

fn parsed<T>(path: &Path, result: Result<T, String>) -> Result<T, CollectError> {
    result.map_err(|e| CollectError::Failed(format!("parsing {}: {e}", path.display())))
}

/// node_exporter 1.5 forgets its per-CPU high-water marks when a CPU's idle
/// time goes back by this much (a CPU went offline and came back).
const JUMP_BACK_SECONDS: f64 = 3.0;

const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

impl HostCollector {
    pub(super) fn proc_path(&self, name: &str) -> PathBuf {
        self.settings.procfs.join(name)
    }

    pub(super) fn sys_path(&self, name: &str) -> PathBuf {
        self.settings.sysfs.join(name)
    }

    // ------------------------------------------------------------------ cpu

    pub(super) fn cpu(&self, out: &mut Exposition) -> Result<(), CollectError> {
        let path = self.proc_path("stat");
        let text = read(&path)?;
        let stat = parsed(&path, parse::stat(&text))?;
        // Counters never go backwards (a kernel bug once made idle and iowait
        // do so); a large jump back of idle means the CPU was re-plugged.
        let mut last = self.cpu_last.lock();
        let mut next: Vec<(u32, CpuTimes)> = Vec::with_capacity(stat.cpus.len());
        for &(id, times) in &stat.cpus {
            let kept = match last.iter().find(|(i, _)| *i == id) {
                Some((_, old)) if old.idle - times.idle < JUMP_BACK_SECONDS => {
                    let (old, new) = (old.fields(), times.fields());
                    let mut merged = [0.0; 10];
                    for i in 0..10 {
                        merged[i] = old[i].max(new[i]);
                    }
                    CpuTimes::from_fields(merged)
                }
                _ => times,
            };
            next.push((id, kept));
        }
        *last = next;
        for (id, times) in last.iter() {
            let cpu = id.to_string();
            let fields = times.fields();
            for (mode, value) in CPU_MODES.iter().zip(fields) {
                out.add(
                    "node_cpu_seconds_total",
                    "Seconds the CPUs spent in each mode.",
                    Kind::Counter,
                    vec![("cpu", cpu.clone()), ("mode", mode.to_string())],
                    value,
                );
            }
            if self.settings.cpu_guest {
                for (mode, value) in [("user", times.guest), ("nice", times.guest_nice)] {
                    out.add(
                        "node_cpu_guest_seconds_total",
                        "Seconds the CPUs spent in guests (VMs) for each mode.",
                        Kind::Counter,
                        vec![("cpu", cpu.clone()), ("mode", mode.to_string())],
                        value,
                    );
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ stat

    pub(super) fn stat(&self, out: &mut Exposition) -> Result<(), CollectError> {
        let path = self.proc_path("stat");
        let text = read(&path)?;
        let s = parsed(&path, parse::stat(&text))?;
        let families: [(&str, &str, Kind, u64); 6] = [
            (
                "node_intr_total",
                "Total number of interrupts serviced.",
                Kind::Counter,
                s.intr,
            ),
            (
                "node_context_switches_total",
                "Total number of context switches.",
                Kind::Counter,
                s.ctxt,
            ),
            (
                "node_forks_total",
                "Total number of forks.",
                Kind::Counter,
                s.processes,
            ),
            (
                "node_boot_time_seconds",
                "Node boot time, in unixtime.",
                Kind::Gauge,
                s.btime,
            ),
            (
                "node_procs_running",
                "Number of processes in runnable state.",
                Kind::Gauge,
                s.procs_running,
            ),
            (
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
                Kind::Gauge,
                s.procs_blocked,
            ),
        ];
        for (name, help, kind, value) in families {
            out.add(name, help, kind, Vec::new(), value as f64);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ meminfo

    pub(super) fn meminfo(&self, out: &mut Exposition) -> Result<(), CollectError> {
        let path = self.proc_path("meminfo");
        let text = read(&path)?;
        for (key, value) in parsed(&path, parse::meminfo(&text))? {
            let kind = if key.ends_with("_total") {
                Kind::Counter
            } else {
                Kind::Gauge
            };
            let name = format!("node_memory_{key}");
            let help = format!("Memory information field {key}.");
            out.add(&name, &help, kind, Vec::new(), value);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ loadavg

    pub(super) fn loadavg(&self, out: &mut Exposition) -> Result<(), CollectError> {
        let path = self.proc_path("loadavg");
        let text = read(&path)?;
        let loads = parsed(&path, parse::loadavg(&text))?;
        for ((name, help), value) in [
            ("node_load1", "1m load average."),
            ("node_load5", "5m load average."),
            ("node_load15", "15m load average."),
        ]
        .into_iter()
        .zip(loads)
        {
            out.add(name, help, Kind::Gauge, Vec::new(), value);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ filesystem

    pub(super) fn filesystem(&self, out: &mut Exposition) -> Result<(), CollectError> {
        // PID 1's mounts (the host's, when bellwether runs in a container
        // with the host's /proc), else our own when hidepid hides PID 1.
        let path = self.proc_path("1/mounts");
        let (path, text) = match read(&path) {
            Ok(text) => (path, text),
            Err(CollectError::NotFound(_)) => {
                let path = self.proc_path("mounts");
                let text = read(&path)?;
                (path, text)
            }
            Err(e) => return Err(e),
        };
        let mounts = parsed(&path, parse::mounts(&text))?;
        let settings = &self.settings;
        let mut seen: Vec<(&str, String, &str)> = Vec::new();
        for mount in &mounts {
            let mount_point = self.rootfs_strip_prefix(&mount.mount_point);
            if settings.mount_points_exclude.is_match(&mount_point)
                || settings.fs_types_exclude.is_match(&mount.fs_type)
            {
                continue;
            }
            let key = (
                mount.device.as_str(),
                mount_point.clone(),
                mount.fs_type.as_str(),
            );
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let labels = || {
                vec![
                    ("device", mount.device.clone()),
                    ("fstype", mount.fs_type.clone()),
                    ("mountpoint", mount_point.clone()),
                ]
            };
            let stats = self.statfs(&mount_point);
            out.add(
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
                Kind::Gauge,
                labels(),
                if stats.is_some() { 0.0 } else { 1.0 },
            );
            let Some(s) = stats else { continue };
            let ro = if mount.read_only() { 1.0 } else { 0.0 };
            for (name, help, value) in [
                (
                    "node_filesystem_size_bytes",
                    "Filesystem size in bytes.",
                    s.blocks * s.block_size,
                ),
                (
                    "node_filesystem_free_bytes",
                    "Filesystem free space in bytes.",
                    s.free * s.block_size,
                ),
                (
                    "node_filesystem_avail_bytes",
                    "Filesystem space available to non-root users in bytes.",
                    s.avail * s.block_size,
                ),
                (
                    "node_filesystem_files",
                    "Filesystem total file nodes.",
                    s.files,
                ),
                (
                    "node_filesystem_files_free",
                    "Filesystem total free file nodes.",
                    s.files_free,
                ),
                (
                    "node_filesystem_readonly",
                    "Filesystem read-only status.",
                    ro,
                ),
            ] {
                out.add(name, help, Kind::Gauge, labels(), value);
            }
        }
        Ok(())
    }

    /// node_exporter's `rootfsStripPrefix`: mount points as seen from the
    /// host root mounted at `rootfs`.
    fn rootfs_strip_prefix(&self, mount_point: &str) -> String {
        let root = self.settings.rootfs.to_string_lossy();
        if root == "/" {
            return mount_point.to_string();
        }
        match mount_point.strip_prefix(root.as_ref()) {
            Some("") => "/".to_string(),
            Some(rest) => rest.to_string(),
            None => mount_point.to_string(),
        }
    }

    /// statfs(2) of a mount point under `rootfs`. `None` on an error, and
    /// for a mount point whose previous statfs has not returned yet (a hung
    /// network filesystem): it is skipped until that call comes back, so one
    /// dead NFS server costs one collection, not every one.
    fn statfs(&self, mount_point: &str) -> Option<FsStats> {
        {
            let mut in_flight = self.statfs_in_flight.lock();
            if in_flight.iter().any(|m| m == mount_point) {
                return None;
            }
            in_flight.push(mount_point.to_string());
        }
        let path = self
            .settings
            .rootfs
            .join(mount_point.trim_start_matches('/'));
        let result = rustix::fs::statfs(&path);
        self.statfs_in_flight.lock().retain(|m| m != mount_point);
        let s = result.ok()?;
        Some(FsStats {
            block_size: s.f_bsize as f64,
            blocks: s.f_blocks as f64,
            free: s.f_bfree as f64,
            avail: s.f_bavail as f64,
            files: s.f_files as f64,
            files_free: s.f_ffree as f64,
        })
    }

    // ------------------------------------------------------------------ diskstats

    pub(super) fn diskstats(&self, out: &mut Exposition) -> Result<(), CollectError> {
        const COUNTERS: [(&str, &str, Kind, f64); 17] = [
            (
                "node_disk_reads_completed_total",
                "The total number of reads completed successfully.",
                Kind::Counter,
                1.0,
            ),
            (
                "node_disk_reads_merged_total",
                "The total number of reads merged.",
                Kind::Counter,
                1.0,
            ),
            (
                "node_disk_read_bytes_total",
                "The total number of bytes read successfully.",
                Kind::Counter,
                512.0,
            ),
            (
                "node_disk_read_time_seconds_total",
                "The total number of seconds spent by all reads.",
                Kind::Counter,
                0.001,
            ),
            (
                "node_disk_writes_completed_total",
                "The total number of writes completed successfully.",
                Kind::Counter,
                1.0,
            ),
            (
                "node_disk_writes_merged_total",
                "The number of writes merged.",
                Kind::Counter,
                1.0,
            ),
            (
                "node_disk_written_bytes_total",
                "The total number of bytes written successfully.",
                Kind::Counter,
                512.0,
            ),
            (
                "node_disk_write_time_seconds_total",
                "This is the total number of seconds spent by all writes.",
                Kind::Counter,
                0.001,
            ),
            (
                "node_disk_io_now",
                "The number of I/Os currently in progress.",
                Kind::Gauge,
                1.0,
            ),
            (
                "node_disk_io_time_seconds_total",
                "Total seconds spent doing I/Os.",
                Kind::Counter,
                0.001,
            ),
            (
                "node_disk_io_time_weighted_seconds_total",
                "The weighted # of seconds spent doing I/Os.",
                Kind::Counter,
                0.001,
            ),
            (
                "node_disk_discards_completed_total",
                "The total number of discards completed successfully.",
                Kind::Counter,
                1.0,
            ),
            (
                "node_disk_discards_merged_total",
                "The total number of discards merged.",
                Kind::Counter,
                1.0,
            ),
            (
                "node_disk_discarded_sectors_total",
                "The total number of sectors discarded successfully.",
                Kind::Counter,
                1.0,
            ),
            (
                "node_disk_discard_time_seconds_total",
                "This is the total number of seconds spent by all discards.",
                Kind::Counter,
                0.001,
            ),
            (
                "node_disk_flush_requests_total",
                "The total number of flush requests completed successfully",
                Kind::Counter,
                1.0,
            ),
            (
                "node_disk_flush_requests_time_seconds_total",
                "This is the total number of seconds spent by all flush requests.",
                Kind::Counter,
                0.001,
            ),
        ];
        let path = self.proc_path("diskstats");
        let text = read(&path)?;
        let disks = parsed(&path, parse::diskstats(&text))?;
        for disk in disks {
            if self.settings.diskstats_device_exclude.is_match(disk.device) {
                continue;
            }
            let udev_path = self
                .settings
                .udev_data
                .join(format!("b{}:{}", disk.major, disk.minor));
            let udev_text = std::fs::read_to_string(udev_path).unwrap_or_default();
            let udev = parse::udev_properties(&udev_text);
            let prop = |key: &str| {
                udev.iter()
                    .find(|(k, _)| *k == key)
                    .map_or(String::new(), |(_, v)| v.to_string())
            };
            let device = disk.device.to_string();
            out.add(
                "node_disk_info",
                "Info of /sys/block/<block_device>.",
                Kind::Gauge,
                vec![
                    ("device", device.clone()),
                    ("major", disk.major.to_string()),
                    ("minor", disk.minor.to_string()),
                    ("path", prop("ID_PATH")),
                    ("wwn", prop("ID_WWN")),
                    ("model", prop("ID_MODEL")),
                    ("serial", prop("ID_SERIAL_SHORT")),
                    ("revision", prop("ID_REVISION")),
                ],
                1.0,
            );
            for ((name, help, kind, factor), value) in COUNTERS.iter().zip(&disk.counters) {
                out.add(
                    name,
                    help,
                    *kind,
                    vec![("device", device.clone())],
                    *value as f64 * factor,
                );
            }
            let fs_type = prop("ID_FS_TYPE");
            if !fs_type.is_empty() {
                out.add(
                    "node_disk_filesystem_info",
                    "Info about disk filesystem.",
                    Kind::Gauge,
                    vec![
                        ("device", device.clone()),
                        ("type", fs_type),
                        ("usage", prop("ID_FS_USAGE")),
                        ("uuid", prop("ID_FS_UUID")),
                        ("version", prop("ID_FS_VERSION")),
                    ],
                    1.0,
                );
            }
            let dm_name = prop("DM_NAME");
            if !dm_name.is_empty() {
                out.add(
                    "node_disk_device_mapper_info",
                    "Info about disk device mapper.",
                    Kind::Gauge,
                    vec![
                        ("device", device.clone()),
                        ("name", dm_name),
                        ("uuid", prop("DM_UUID")),
                        ("vg_name", prop("DM_VG_NAME")),
                        ("lv_name", prop("DM_LV_NAME")),
                        ("lv_layer", prop("DM_LV_LAYER")),
                    ],
                    1.0,
                );
            }
            if !prop("ID_ATA").is_empty() {
                for (key, name, help) in [
                    (
                        "ID_ATA_WRITE_CACHE",
                        "node_disk_ata_write_cache",
                        "ATA disk has a write cache.",
                    ),
                    (
                        "ID_ATA_WRITE_CACHE_ENABLED",
                        "node_disk_ata_write_cache_enabled",
                        "ATA disk has its write cache enabled.",
                    ),
                    (
                        "ID_ATA_ROTATION_RATE_RPM",
                        "node_disk_ata_rotation_rate_rpm",
                        "ATA disk rotation rate in RPMs (0 for SSDs).",
                    ),
                ] {
                    let value = udev
                        .iter()
                        .find(|(k, _)| *k == key)
                        .and_then(|(_, v)| v.parse::<f64>().ok());
                    if let Some(value) = value {
                        out.add(
                            name,
                            help,
                            Kind::Gauge,
                            vec![("device", device.clone())],
                            value,
                        );
                    }
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ netdev

    pub(super) fn netdev(&self, out: &mut Exposition) -> Result<(), CollectError> {
        let path = self.proc_path("net/dev");
        let text = read(&path)?;
        let devices = parsed(&path, parse::netdev(&text))?;
        for (device, counters) in devices {
            if let Some(exclude) = &self.settings.netdev_device_exclude {
                if exclude.is_match(device) {
                    continue;
                }
            }
            for (column, value) in parse::NETDEV_COLUMNS.iter().zip(counters) {
                self.netdev_sample(out, device, column, value as f64);
            }
            // Not in /proc/net/dev; node_exporter 1.5 gets it over netlink.
            let nohandler = self.sys_path(&format!("class/net/{device}/statistics/rx_nohandler"));
            let nohandler = std::fs::read_to_string(nohandler)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            self.netdev_sample(out, device, "receive_nohandler", nohandler);
        }
        Ok(())
    }

    fn netdev_sample(&self, out: &mut Exposition, device: &str, column: &str, value: f64) {
        let name = format!("node_network_{column}_total");
        let help = format!("Network device statistic {column}.");
        out.add(
            &name,
            &help,
            Kind::Counter,
            vec![("device", device.to_string())],
            value,
        );
    }

    // ------------------------------------------------------------------ pressure

    pub(super) fn pressure(&self, out: &mut Exposition) -> Result<(), CollectError> {
        for resource in ["cpu", "io", "memory"] {
            let path = self.proc_path(&format!("pressure/{resource}"));
            let text = match read(&path) {
                Ok(text) => text,
                // No PSI in this kernel (or psi=0): node_exporter's "no data".
                Err(CollectError::NotFound(e)) => return Err(CollectError::NoData(e)),
                Err(CollectError::Failed(e))
                    if e.contains("Operation not supported") || e.contains("os error 95") =>
                {
                    return Err(CollectError::NoData(e))
                }
                Err(e) => return Err(e),
            };
            let p = parsed(&path, parse::pressure(&text))?;
            let seconds = |us: Option<u64>| us.unwrap_or(0) as f64 / 1e6;
            let (some, full) = (seconds(p.some_total_us), seconds(p.full_total_us));
            let samples: &[(&str, &str, f64)] = match resource {
                "cpu" => &[(
                    "node_pressure_cpu_waiting_seconds_total",
                    "Total time in seconds that processes have waited for CPU time",
                    some,
                )],
                "io" => &[
                    (
                        "node_pressure_io_waiting_seconds_total",
                        "Total time in seconds that processes have waited due to IO congestion",
                        some,
                    ),
                    (
                        "node_pressure_io_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to IO congestion",
                        full,
                    ),
                ],
                _ => &[
                    (
                        "node_pressure_memory_waiting_seconds_total",
                        "Total time in seconds that processes have waited for memory",
                        some,
                    ),
                    (
                        "node_pressure_memory_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to memory congestion",
                        full,
                    ),
                ],
            };
            for (name, help, value) in samples {
                out.add(name, help, Kind::Counter, Vec::new(), *value);
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ time

    pub(super) fn time(&self, out: &mut Exposition) -> Result<(), CollectError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        out.add(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            Kind::Gauge,
            Vec::new(),
            now.as_nanos() as f64 / 1e9,
        );
        let (zone, offset) = super::zone::local_zone(now.as_secs() as i64);
        out.add(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            Kind::Gauge,
            vec![("time_zone", zone)],
            offset as f64,
        );
        // /sys/devices/system/clocksource/clocksource<N>; the `device` label
        // is the position in name order, as procfs numbers them.
        let dir = self.sys_path("devices/system/clocksource");
        let mut sources: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| {
                    name.strip_prefix("clocksource")
                        .and_then(|n| n.chars().next())
                        .is_some_and(|c| c.is_ascii_digit())
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        sources.sort();
        for (i, name) in sources.iter().enumerate() {
            let device = i.to_string();
            let base = dir.join(name);
            let available = read(&base.join("available_clocksource"))?;
            let current = read(&base.join("current_clocksource"))?;
            for source in available.split_ascii_whitespace() {
                out.add(
                    "node_time_clocksource_available_info",
                    "Available clocksources read from '/sys/devices/system/clocksource'.",
                    Kind::Gauge,
                    vec![
                        ("clocksource", source.to_string()),
                        ("device", device.clone()),
                    ],
                    1.0,
                );
            }
            out.add(
                "node_time_clocksource_current_info",
                "Current clocksource read from '/sys/devices/system/clocksource'.",
                Kind::Gauge,
                vec![
                    ("clocksource", current.trim().to_string()),
                    ("device", device),
                ],
                1.0,
            );
        }
        Ok(())
    }

    // ------------------------------------------------------------------ uname

    pub(super) fn uname(&self, out: &mut Exposition) -> Result<(), CollectError> {
        let u = rustix::system::uname();
        let s = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
        out.add(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            Kind::Gauge,
            vec![
                ("domainname", s(u.domainname())),
                ("machine", s(u.machine())),
                ("nodename", s(u.nodename())),
                ("release", s(u.release())),
                ("sysname", s(u.sysname())),
                ("version", s(u.version())),
            ],
            1.0,
        );
        Ok(())
    }

    // ------------------------------------------------------------------ vmstat

    pub(super) fn vmstat(&self, out: &mut Exposition) -> Result<(), CollectError> {
        let path = self.proc_path("vmstat");
        let text = read(&path)?;
        for (field, value) in parsed(&path, parse::vmstat(&text))? {
            if !self.settings.vmstat_fields.is_match(field) {
                continue;
            }
            let name = format!("node_vmstat_{field}");
            let help = format!("/proc/vmstat information field {field}.");
            out.add(&name, &help, Kind::Untyped, Vec::new(), value);
        }
        Ok(())
    }
}

struct FsStats {
    block_size: f64,
    blocks: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}
