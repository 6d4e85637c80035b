#!/usr/bin/env bash
# Side-by-side run: bellwether and Debian's Prometheus scrape the same synthetic
# targets (examples/bench_targets.rs) for the same minutes; prints CPU seconds,
# peak RSS and disk bytes of each and the ratios, as a Markdown table for
# docs/benchmarks.md.
#
# Usage: scripts/bench-vs-prometheus.sh [MINUTES=5] [TARGETS=20] [SERIES=5000] [INTERVAL=1s]
# Everything listens on 127.0.0.1 only. Needs: prometheus (apt), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-5}; targets=${2:-20}; series=${3:-5000}; interval=${4:-1s}
base_port=19100; prom_port=19090; bw_port=19471

cargo build --release --bin bellwether --example bench_targets >/dev/null
work=$(mktemp -d /tmp/bellwether-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

./target/release/examples/bench_targets --targets "$targets" --series "$series" --base-port "$base_port" 2>/dev/null &
pids+=($!)

target_list=$(seq -s, -f "'127.0.0.1:%g'" "$base_port" $((base_port + targets - 1)))
scrape="scrape_configs:
  - job_name: bench
    scrape_interval: $interval
    scrape_timeout: $interval
    static_configs:
      - targets: [$target_list]"
printf 'global:\n  scrape_interval: %s\n%s\n' "$interval" "$scrape" >"$work/prometheus.yml"
printf 'global:\n  scrape_interval: %s\n%s\nstorage:\n  retention: 15d\n' "$interval" "$scrape" >"$work/bellwether.yml"

prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom-data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!; pids+=($prom_pid)
./target/release/bellwether run --config "$work/bellwether.yml" --data-dir "$work/bw-data" \
  --listen "127.0.0.1:$bw_port" >"$work/bellwether.log" 2>&1 &
bw_pid=$!; pids+=($bw_pid)

cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
disk_bytes() { du -sb "$1" | cut -f1; }

echo "running ${minutes} min: ${targets} targets x ${series} series every ${interval} (work dir $work)" >&2
sleep $((minutes * 60))

p_cpu=$(cpu_seconds $prom_pid); b_cpu=$(cpu_seconds $bw_pid)
p_rss=$(peak_rss_mib $prom_pid); b_rss=$(peak_rss_mib $bw_pid)
p_disk=$(disk_bytes "$work/prom-data"); b_disk=$(disk_bytes "$work/bw-data")
samples=$(curl -s "127.0.0.1:$bw_port/metrics" | awk '/^bellwether_storage_samples_appended_total/ {print $2}')
p_samples=$(curl -s "127.0.0.1:$prom_port/metrics" | awk '/^prometheus_tsdb_head_samples_appended_total/ {s += $2} END {print s}')

# Stop both cleanly (SIGTERM) and measure again: bellwether checkpoints on
# shutdown (open chunks to SQLite, WAL truncated), so its figure is the
# compressed form; Prometheus keeps its WAL until a 2 h block is cut, which a
# run of minutes never reaches.
kill -TERM "$bw_pid" "$prom_pid"
for p in "$bw_pid" "$prom_pid"; do
  for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
done
p_disk_stop=$(disk_bytes "$work/prom-data"); b_disk_stop=$(disk_bytes "$work/bw-data")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
per_sample() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
cat <<TABLE
| ${minutes} min, ${targets} targets x ${series} series, ${interval} | Prometheus 2.42 | bellwether | bellwether / Prometheus |
|---|---|---|---|
| CPU seconds | ${p_cpu} | ${b_cpu} | $(ratio "$b_cpu" "$p_cpu") |
| peak RSS (MiB) | ${p_rss} | ${b_rss} | $(ratio "$b_rss" "$p_rss") |
| disk bytes, running | ${p_disk} | ${b_disk} | $(ratio "$b_disk" "$p_disk") |
| disk bytes, after SIGTERM | ${p_disk_stop} | ${b_disk_stop} | $(ratio "$b_disk_stop" "$p_disk_stop") |
| samples appended | ${p_samples:-?} | ${samples:-?} | |
| disk bytes / sample, running | $(per_sample "$p_disk" "${p_samples:-0}") | $(per_sample "$b_disk" "${samples:-0}") | |
| disk bytes / sample, after SIGTERM | $(per_sample "$p_disk_stop" "${p_samples:-0}") | $(per_sample "$b_disk_stop" "${samples:-0}") | |
TABLE
