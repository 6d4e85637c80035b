//! A node_exporter-like workload shared by the storage bench and the
//! footprint tool: realistic label sets and values. Included with `#[path]`
//! (it lives in a subfolder so cargo does not take it for an example).

use bellwether::model::Labels;

/// xorshift64*: deterministic and dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const METRICS: &[(&str, &[&str])] = &[
    ("node_cpu_seconds_total", &["cpu", "mode"]),
    ("node_network_receive_bytes_total", &["device"]),
    ("node_network_transmit_bytes_total", &["device"]),
    (
        "node_filesystem_avail_bytes",
        &["device", "fstype", "mountpoint"],
    ),
    (
        "node_filesystem_size_bytes",
        &["device", "fstype", "mountpoint"],
    ),
    ("node_disk_io_time_seconds_total", &["device"]),
    ("node_memory_bytes", &["kind"]),
    ("node_pressure_waiting_seconds", &["resource"]),
    ("node_network_receive_errs_total", &["device"]),
    (
        "node_hwmon_temp_celsius",
        &["chip", "sensor", "type", "unit"],
    ),
];

/// How a series' value evolves.
#[derive(Clone, Copy)]
pub enum Kind {
    Constant,
    IntegerCounter,
    SecondsCounter,
    RandomWalk,
    RareCounter,
}

pub struct SeriesGen {
    pub labels: Labels,
    pub kind: Kind,
    pub value: f64,
}

/// `n` series spread over instances of ~100 series each.
pub fn series(n: usize, rng: &mut Rng) -> Vec<SeriesGen> {
    (0..n)
        .map(|i| {
            let id = i / 100;
            let instance = format!(
                "10.{}.{}.{}:9100",
                id / 65536 % 256,
                id / 256 % 256,
                id % 256
            );
            let (name, extra) = METRICS[i % METRICS.len()];
            let k = i / METRICS.len();
            let mut pairs = vec![
                ("__name__".to_string(), name.to_string()),
                ("instance".to_string(), instance),
                ("job".to_string(), "node".to_string()),
            ];
            for (j, label) in extra.iter().enumerate() {
                let value = match *label {
                    "mode" => [
                        "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
                    ][k % 8]
                        .to_string(),
                    "cpu" => (k / 8 % 64).to_string(),
                    "fstype" => "ext4".to_string(),
                    "mountpoint" => format!("/mnt/data{}", k % 10),
                    _ => format!("{label}{}", (k + j) % 10),
                };
                pairs.push((label.to_string(), value));
            }
            let kind = match name {
                "node_filesystem_size_bytes" => Kind::Constant,
                "node_network_receive_errs_total" => Kind::RareCounter,
                n if n.ends_with("seconds_total") => Kind::SecondsCounter,
                "node_pressure_waiting_seconds" => Kind::RandomWalk,
                n if n.ends_with("_total") => Kind::IntegerCounter,
                _ => Kind::RandomWalk,
            };
            let value = match kind {
                Kind::Constant => 4.0e11,
                Kind::RandomWalk => (rng.next() % 1_000_000) as f64 * 4096.0,
                _ => (rng.next() % 1_000_000) as f64,
            };
            SeriesGen {
                labels: Labels::new(pairs),
                kind,
                value,
            }
        })
        .collect()
}

impl SeriesGen {
    /// The value at the next scrape.
    pub fn step(&mut self, rng: &mut Rng) -> f64 {
        match self.kind {
            Kind::Constant => {}
            Kind::IntegerCounter => self.value += (15_000.0 * (0.7 + 0.6 * rng.unit())).round(),
            // /proc/stat ticks: hundredths of a second.
            Kind::SecondsCounter => {
                self.value = ((self.value * 100.0).round() + (rng.next() % 1500) as f64) / 100.0
            }
            Kind::RandomWalk => {
                self.value += ((rng.next() % 9) as f64 - 4.0) * 4096.0;
            }
            Kind::RareCounter => {
                if rng.next().is_multiple_of(20) {
                    self.value += 1.0;
                }
            }
        }
        self.value
    }
}

/// Scrape `i`'s timestamp: 15 s apart with up to ±3 ms jitter.
pub fn scrape_time(start: i64, i: i64, rng: &mut Rng) -> i64 {
    start + i * 15_000 + (rng.next() % 7) as i64 - 3
}
