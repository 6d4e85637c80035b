//! The collectors on fixture trees (tests/fixtures/host/) and on broken input.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::HostConfig;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host")
}

fn config_at(root: &Path) -> HostConfig {
    HostConfig {
        enabled: true,
        procfs: root.join("proc").display().to_string(),
        sysfs: root.join("sys").display().to_string(),
        rootfs: "/".to_string(),
        udev_data: root.join("udev").display().to_string(),
        ..HostConfig::default()
    }
}

fn collector(config: &HostConfig) -> HostCollector {
    HostCollector::new(
        HostSettings::from_config(config).expect("valid settings"),
        HostMetrics::default(),
    )
}

/// The rendered text's sample lines (no comments) that start with `prefix`.
fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
        .collect()
}

#[test]
fn every_collector_succeeds_on_the_fixtures() {
    let text = collector(&config_at(&fixtures())).render();
    for name in COLLECTOR_NAMES {
        let line = format!("node_scrape_collector_success{{collector=\"{name}\"}} 1");
        assert!(text.contains(&line), "{name} failed:\n{text}");
    }
    // The text is valid exposition format: bellwether's own parser takes it.
    let mut parser = crate::collect::scrape::parse::Parser::new(
        text.as_bytes(),
        crate::collect::scrape::parse::Format::Text,
    );
    let mut n = 0;
    while let Some(_entry) = parser.next_entry().expect("parses") {
        n += 1;
    }
    assert!(n > 100);
}

#[test]
fn cpu_keeps_hotplug_gaps_and_guest_modes() {
    let text = collector(&config_at(&fixtures())).render();
    let cpus = lines(&text, "node_cpu_seconds_total{cpu=\"");
    assert_eq!(cpus.len(), 3 * 8, "{cpus:?}");
    assert!(text.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 15571.21\n"));
    assert!(text.contains("node_cpu_seconds_total{cpu=\"3\",mode=\"steal\"} 0.6\n"));
    assert!(!text.contains("cpu=\"2\""), "no series for an offline CPU");
    assert!(text.contains("node_cpu_guest_seconds_total{cpu=\"3\",mode=\"nice\"} 0.07\n"));
    let mut config = config_at(&fixtures());
    config.cpu_guest = false;
    assert!(!collector(&config).render().contains("node_cpu_guest"));
}

#[test]
fn cpu_counters_never_go_backwards() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("proc")).expect("mkdir");
    let stat = dir.path().join("proc/stat");
    let c = collector(&config_at(dir.path()));
    std::fs::write(&stat, "cpu0 100 0 0 1000 50 0 0 0 0 0\n").expect("write");
    c.render();
    // iowait goes back (a known kernel quirk): the old value is kept.
    std::fs::write(&stat, "cpu0 200 0 0 1100 40 0 0 0 0 0\n").expect("write");
    let text = c.render();
    assert!(text.contains("{cpu=\"0\",mode=\"iowait\"} 0.5\n"), "{text}");
    assert!(text.contains("{cpu=\"0\",mode=\"user\"} 2\n"), "{text}");
    // idle goes back by more than 3 s: the CPU was re-plugged, start over.
    std::fs::write(&stat, "cpu0 10 0 0 100 1 0 0 0 0 0\n").expect("write");
    let text = c.render();
    assert!(text.contains("{cpu=\"0\",mode=\"user\"} 0.1\n"), "{text}");
}

#[test]
fn meminfo_loadavg_stat_and_vmstat() {
    let text = collector(&config_at(&fixtures())).render();
    assert!(text.contains("# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.\n# TYPE node_memory_MemTotal_bytes gauge\nnode_memory_MemTotal_bytes 25276502016\n"));
    assert!(text.contains("node_memory_Active_anon_bytes 1263616\n"));
    assert!(text.contains("node_memory_HugePages_Total 0\n"));
    assert!(text.contains("# TYPE node_load1 gauge\nnode_load1 0.13\n"));
    assert!(text.contains("node_load15 1.25\n"));
    assert!(text.contains("node_boot_time_seconds 1795307279\n"));
    assert!(text.contains("node_context_switches_total 30992508\n"));
    assert!(text.contains("node_intr_total 19979389\n"));
    assert!(text.contains("node_forks_total 476080\n"));
    assert!(text.contains("node_procs_blocked 1\n"));
    assert!(text.contains("# TYPE node_vmstat_pgfault untyped\nnode_vmstat_pgfault 311542346\n"));
    assert!(
        !text.contains("node_vmstat_nr_free_pages"),
        "not in the default field regex"
    );
}

#[test]
fn diskstats_exclusions_and_udev_info() {
    let text = collector(&config_at(&fixtures())).render();
    let reads = lines(&text, "node_disk_reads_completed_total");
    let devices: Vec<&str> = reads
        .iter()
        .map(|l| l.split('"').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(devices, vec!["nvme0n1", "sdb", "vda", "zram0"]);
    assert!(text.contains("node_disk_read_bytes_total{device=\"vda\"} 11932689408\n"));
    assert!(text.contains("node_disk_io_time_seconds_total{device=\"vda\"} 225.52\n"));
    assert!(text.contains("node_disk_discarded_sectors_total{device=\"vda\"} 145937472\n"));
    // 11 counters on an old kernel: no discard or flush series for sdb.
    assert!(!text.contains("node_disk_discards_completed_total{device=\"sdb\"}"));
    assert!(text.contains("node_disk_io_time_weighted_seconds_total{device=\"sdb\"} 0.011\n"));
    assert!(text.contains("node_disk_info{device=\"vda\",major=\"254\",minor=\"0\",model=\"QEMU HARDDISK\",path=\"pci-0000:00:05.0\",revision=\"\",serial=\"QM0001\",wwn=\"\"} 1\n"), "{text}");
    assert!(text.contains("node_disk_info{device=\"sdb\",major=\"8\",minor=\"16\",model=\"\",path=\"\",revision=\"\",serial=\"\",wwn=\"\"} 1\n"));
    assert!(text.contains("node_disk_filesystem_info{device=\"vda\",type=\"ext4\",usage=\"filesystem\",uuid=\"1234-abcd\",version=\"1.0\"} 1\n"));
    assert!(text.contains("node_disk_ata_rotation_rate_rpm{device=\"vda\"} 0\n"));
}

#[test]
fn netdev_columns_nohandler_and_exclusion() {
    let text = collector(&config_at(&fixtures())).render();
    assert!(text.contains("node_network_receive_errs_total{device=\"eth0\"} 1\n"));
    assert!(text.contains("node_network_transmit_carrier_total{device=\"eth0\"} 11\n"));
    assert!(text.contains("node_network_transmit_colls_total{device=\"eth0\"} 10\n"));
    assert!(text.contains("node_network_receive_nohandler_total{device=\"eth0\"} 3\n"));
    assert!(text.contains("node_network_receive_nohandler_total{device=\"lo\"} 0\n"));
    assert!(text.contains("node_network_receive_bytes_total{device=\"veth-long.name_1\"} 12\n"));
    assert!(text.contains(
        "# HELP node_network_receive_bytes_total Network device statistic receive_bytes.\n"
    ));
    let mut config = config_at(&fixtures());
    config.netdev_device_exclude = "^lo$".to_string();
    assert!(!collector(&config).render().contains("device=\"lo\""));
}

#[test]
fn pressure_and_missing_pressure_files() {
    let text = collector(&config_at(&fixtures())).render();
    assert!(text.contains("node_pressure_cpu_waiting_seconds_total 8362.925565\n"));
    assert!(text.contains("node_pressure_io_stalled_seconds_total 32.889877\n"));
    // A kernel without PSI: no data, success 0, not an error.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("proc")).expect("mkdir");
    let c = collector(&config_at(dir.path()));
    let text = c.render();
    assert!(text.contains("node_scrape_collector_success{collector=\"pressure\"} 0\n"));
    assert!(!text.contains("node_pressure_"));
    let errors = c
        .metrics
        .errors
        .get_or_create(&vec![("collector".to_string(), "pressure".to_string())])
        .get();
    assert_eq!(errors, 0);
}

#[test]
fn time_and_clocksources() {
    let text = collector(&config_at(&fixtures())).render();
    assert!(text.contains(
        "node_time_clocksource_available_info{clocksource=\"kvm-clock\",device=\"0\"} 1\n"
    ));
    assert!(
        text.contains("node_time_clocksource_current_info{clocksource=\"tsc\",device=\"0\"} 1\n")
    );
    assert!(text.contains("node_time_zone_offset_seconds{time_zone=\""));
    let now_line = lines(&text, "node_time_seconds ")[0];
    let now: f64 = now_line[18..].parse().expect("a number");
    let expected = crate::model::now_millis() as f64 / 1000.0;
    assert!((now - expected).abs() < 5.0);
}

#[test]
fn filesystem_exclusions_escapes_and_errors() {
    // The fixture's mount points do not exist here, except `/`: statfs fails
    // for them, which node_exporter reports as device_error 1 and no sizes.
    let text = collector(&config_at(&fixtures())).render();
    let errors = lines(&text, "node_filesystem_device_error");
    let points: Vec<&str> = errors
        .iter()
        .map(|l| {
            l.split("mountpoint=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
        })
        .collect();
    // Excluded: /proc, /sys, /dev, /dev/shm (mount point), /run/credentials/...,
    // overlay and cgroup2 (type); the duplicate `/` line is reported once.
    assert_eq!(points, vec!["/", "/mnt/my disk", "/srv/tab\there", "/run"]);
    assert!(text.contains(
        "node_filesystem_device_error{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0\n"
    ));
    assert!(text.contains("node_filesystem_device_error{device=\"/dev/vdb\",fstype=\"ext4\",mountpoint=\"/mnt/my disk\"} 1\n"));
    let ok = errors.iter().filter(|l| l.ends_with(" 0")).count();
    assert!(ok >= 1);
    assert_eq!(lines(&text, "node_filesystem_size_bytes").len(), ok);
    assert!(text.contains(
        "node_filesystem_readonly{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0\n"
    ));
}

#[test]
fn filesystem_falls_back_to_proc_mounts_and_strips_rootfs() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("proc")).expect("mkdir");
    let root = dir.path().join("host");
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    let mount = format!("/dev/sdz {} ext4 ro 0 0\n", root.join("data").display());
    std::fs::write(dir.path().join("proc/mounts"), mount).expect("write");
    let mut config = config_at(dir.path());
    config.rootfs = root.display().to_string();
    let text = collector(&config).render();
    assert!(
        text.contains("node_filesystem_readonly{device=\"/dev/sdz\",fstype=\"ext4\",mountpoint=\"/data\"} 1\n"),
        "{text}"
    );
}

#[test]
fn garbage_input_fails_the_collector_not_the_collection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let proc = dir.path().join("proc");
    std::fs::create_dir_all(proc.join("net")).expect("mkdir");
    std::fs::create_dir_all(proc.join("pressure")).expect("mkdir");
    std::fs::create_dir_all(proc.join("1")).expect("mkdir");
    let garbage = "\u{0}\u{ff}garbage line: with : colons\nand x y z\nthird: line x\n";
    for file in [
        "stat",
        "meminfo",
        "loadavg",
        "diskstats",
        "net/dev",
        "vmstat",
        "1/mounts",
        "pressure/cpu",
    ] {
        std::fs::write(proc.join(file), garbage).expect("write");
    }
    // /proc/stat's unknown lines are skipped (kernels add some): garbage in
    // a known line is what fails it.
    std::fs::write(proc.join("stat"), "cpu0 12 \u{0}\u{ff} 3\nbtime 1\n").expect("write");
    let c = collector(&config_at(dir.path()));
    let text = c.render();
    for name in [
        "cpu",
        "stat",
        "meminfo",
        "loadavg",
        "netdev",
        "vmstat",
        "filesystem",
        "pressure",
    ] {
        let line = format!("node_scrape_collector_success{{collector=\"{name}\"}} 0\n");
        assert!(text.contains(&line), "{name}:\n{text}");
        let errors = c
            .metrics
            .errors
            .get_or_create(&vec![("collector".to_string(), name.to_string())])
            .get();
        assert_eq!(errors, 1, "{name}");
    }
    // Truncated files: a stat line cut inside a number is still a number, but
    // a meminfo line without its value is an error.
    std::fs::write(proc.join("meminfo"), "MemTotal:       2468").expect("write");
    std::fs::write(proc.join("loadavg"), "0.1").expect("write");
    let text = c.render();
    assert!(text.contains("node_scrape_collector_success{collector=\"meminfo\"} 1\n"));
    assert!(text.contains("node_memory_MemTotal 2468\n"));
    assert!(text.contains("node_scrape_collector_success{collector=\"loadavg\"} 0\n"));
    // uname and time need no files.
    assert!(text.contains("node_scrape_collector_success{collector=\"uname\"} 1\n"));
}

#[test]
fn disabled_collectors_do_not_run() {
    let mut config = config_at(&fixtures());
    config.disable = vec!["cpu".to_string(), "filesystem".to_string()];
    let text = collector(&config).render();
    assert!(!text.contains("node_cpu_seconds_total"));
    assert!(!text.contains("collector=\"filesystem\""));
    assert!(text.contains("collector=\"meminfo\""));
}
