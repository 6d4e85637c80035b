#!/usr/bin/env bash
# Query latency side by side: bellwether (release build) and Debian's
# Prometheus 2.42 get the same generated data over remote_write
# (examples/bench_query.rs: SERIES counters + a classic histogram with 10
# buckets over 300 label combinations, every 60 s for HOURS, ending now), then
# the same queries and metadata requests are timed RUNS times against each
# (alternating, after warm-up) and the answers checked to agree. Prints a
# Markdown table for docs/benchmarks.md: median and p90 latency, the ratios,
# and the peak RSS of each server while loading and while answering.
#
# Usage: scripts/bench-query-vs-prometheus.sh [RUNS=20] [SERIES=10000] [HOURS=24]
# Everything listens on 127.0.0.1 only. Needs: prometheus (apt), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}; series=${2:-10000}; hours=${3:-24}
prom_port=29091; bw_port=29472
target_dir=${CARGO_TARGET_DIR:-target}

for port in $prom_port $bw_port; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port is in use; change prom_port/bw_port in $0" >&2; exit 1
  fi
done
cargo build --release --bin bellwether --example bench_query >/dev/null
work=$(mktemp -d /tmp/bellwether-query-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

printf 'global:\n  scrape_interval: 1m\n' >"$work/prometheus.yml"
printf 'storage:\n  retention: 15d\n' >"$work/bellwether.yml"

prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom-data" \
  --web.listen-address="127.0.0.1:$prom_port" --web.enable-remote-write-receiver \
  >"$work/prometheus.log" 2>&1 &
prom_pid=$!; pids+=($prom_pid)
"$target_dir/release/bellwether" run --config "$work/bellwether.yml" --data-dir "$work/bw-data" \
  --listen "127.0.0.1:$bw_port" >"$work/bellwether.log" 2>&1 &
bw_pid=$!; pids+=($bw_pid)

wait_ready() {
  for _ in $(seq 1 300); do
    curl -sf "$1" >/dev/null && return 0
    sleep 0.1
  done
  echo "not ready: $1" >&2; cat "$work"/*.log >&2; exit 1
}
wait_ready "http://127.0.0.1:$prom_port/-/ready"
wait_ready "http://127.0.0.1:$bw_port/-/ready"

peak_rss_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }

end=$("$target_dir/release/examples/bench_query" load --series "$series" --hours "$hours" \
  --url "http://127.0.0.1:$bw_port/api/v1/write" --url "http://127.0.0.1:$prom_port/api/v1/write")

# Let Prometheus cut its 2 h blocks from the head (it compacts once the head
# spans more than 3 h, checking every minute) so it is queried in its steady
# state, not mid-compaction; bellwether persists sealed chunks on its own.
echo "waiting for Prometheus to compact its head" >&2
for _ in $(seq 1 120); do
  min=$(metric $prom_port prometheus_tsdb_head_min_time); max=$(metric $prom_port prometheus_tsdb_head_max_time)
  span=$(awk -v a="${min:-0}" -v b="${max:-0}" 'BEGIN { printf "%d", (b - a) / 1000 }')
  [ "$span" -le 10800 ] && break
  sleep 5
done
sleep 20
p_load_peak=$(peak_rss_mib $prom_pid); b_load_peak=$(peak_rss_mib $bw_pid)
p_idle=$(rss_mib $prom_pid); b_idle=$(rss_mib $bw_pid)
blocks=$(metric $prom_port prometheus_tsdb_blocks_loaded)
# Reset the peak-RSS counters (VmHWM) so the query phase is measured on its own.
echo 5 >"/proc/$prom_pid/clear_refs"; echo 5 >"/proc/$bw_pid/clear_refs"

echo "timing queries (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
status=0
"$target_dir/release/examples/bench_query" run --time "$end" --runs "$runs" \
  --bellwether "http://127.0.0.1:$bw_port" --prometheus "http://127.0.0.1:$prom_port" || status=$?
p_query_peak=$(peak_rss_mib $prom_pid); b_query_peak=$(peak_rss_mib $bw_pid)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
cat <<TABLE

| memory (MiB) | Prometheus 2.42 | bellwether | bellwether / Prometheus |
|---|---|---|---|
| peak RSS while loading | ${p_load_peak} | ${b_load_peak} | $(ratio "$b_load_peak" "$p_load_peak") |
| RSS after loading, idle | ${p_idle} | ${b_idle} | $(ratio "$b_idle" "$p_idle") |
| peak RSS while answering the queries | ${p_query_peak} | ${b_query_peak} | $(ratio "$b_query_peak" "$p_query_peak") |

Prometheus blocks loaded: ${blocks:-?}. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg).
TABLE
exit $status
