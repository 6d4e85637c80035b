#!/usr/bin/env bash
# Host metrics side by side: CPU time and memory of one full collection,
# bellwether's host collector vs Debian's prometheus-node-exporter 1.5, on the
# same machine in the same run, with the same collector set (node_exporter
# with --collector.disable-defaults and bellwether's 11 collectors).
#
# Measures, for N scrapes/collections each (CPU from /proc/<pid>/stat
# utime+stime, 10 ms ticks, so N should make each total >= 1 s):
#   1. node_exporter: N GETs of /metrics (collect + encode + HTTP);
#   2. bellwether daemon with collectors.host.expose_on_metrics: N GETs of
#      /metrics (collect + render + its own metrics + HTTP; the same work as 1);
#   3. examples/bench_host: N in-process collections (collect + render only).
# RSS: node_exporter's and the daemon's VmRSS after the run, bench_host's VmHWM.
#
# Usage: scripts/bench-host-vs-node-exporter.sh [N=200]
# Env: BENCH_NO_BUILD=1 skips the cargo build. Listens on 127.0.0.1 only. Needs curl.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
ne_port=19391; bw_port=19491
bin=${CARGO_TARGET_DIR:-target}/release
[[ -n "${BENCH_NO_BUILD:-}" ]] || cargo build --release --bin bellwether --example bench_host >/dev/null
work=$(mktemp -d /tmp/bellwether-host-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cp "$bin/bellwether" "$bin/examples/bench_host" "$work/"

ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
scrape_n() { for _ in $(seq "$2"); do curl -sf -o /dev/null "$1"; done; }
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }

# Same defaults on both sides (Debian patches node_exporter's: it excludes lo, /run, /mnt, /media).
collectors=(cpu diskstats filesystem loadavg meminfo netdev pressure stat time uname vmstat)
ne_args=(--web.listen-address=127.0.0.1:$ne_port --collector.disable-defaults
  '--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)'
  '--collector.netdev.device-exclude=')
for c in "${collectors[@]}"; do ne_args+=("--collector.$c"); done
/usr/bin/prometheus-node-exporter "${ne_args[@]}" >/dev/null 2>&1 &
ne_pid=$!; pids+=("$ne_pid")

cat > "$work/bw.yml" <<YML
global:
  scrape_interval: 1h
  scrape_timeout: 10s
collectors:
  host:
    enabled: true
    expose_on_metrics: true
web:
  listen_address: 127.0.0.1:$bw_port
YML
"$work/bellwether" run --config "$work/bw.yml" --data-dir "$work/data" >/dev/null 2>&1 &
bw_pid=$!; pids+=("$bw_pid")

wait_up "http://127.0.0.1:$ne_port/metrics"; wait_up "http://127.0.0.1:$bw_port/metrics"
scrape_n "http://127.0.0.1:$ne_port/metrics" 10; scrape_n "http://127.0.0.1:$bw_port/metrics" 10

t0=$(ticks "$ne_pid"); s0=$(date +%s.%N)
scrape_n "http://127.0.0.1:$ne_port/metrics" "$n"
ne_ticks=$(( $(ticks "$ne_pid") - t0 )); ne_wall=$(echo "$(date +%s.%N) - $s0" | bc)
t0=$(ticks "$bw_pid"); s0=$(date +%s.%N)
scrape_n "http://127.0.0.1:$bw_port/metrics" "$n"
bw_ticks=$(( $(ticks "$bw_pid") - t0 )); bw_wall=$(echo "$(date +%s.%N) - $s0" | bc)
ne_rss=$(rss_kb "$ne_pid"); bw_rss=$(rss_kb "$bw_pid")
ne_bytes=$(curl -sf "http://127.0.0.1:$ne_port/metrics" | grep -v '^#' | grep -c '^node_')
bw_bytes=$(curl -sf "http://127.0.0.1:$bw_port/metrics" | grep -v '^#' | grep -c '^node_')
inproc=$("$work/bench_host" "$n")

per() { echo "scale=3; $1 * 10 / $n" | bc; }   # ticks (10 ms) -> ms per scrape
echo "node_exporter: $n scrapes, CPU $(per "$ne_ticks") ms/scrape, wall $(echo "scale=3; $ne_wall*1000/$n" | bc) ms/scrape, RSS ${ne_rss} kB, node_* samples $ne_bytes"
echo "bellwether /metrics: $n scrapes, CPU $(per "$bw_ticks") ms/scrape, wall $(echo "scale=3; $bw_wall*1000/$n" | bc) ms/scrape, RSS ${bw_rss} kB (whole daemon), node_* samples $bw_bytes"
echo "bellwether in-process (examples/bench_host): $inproc"
if [[ $bw_ticks -gt 0 ]]; then
  echo "ratio node_exporter CPU / bellwether /metrics CPU: $(echo "scale=2; $ne_ticks / $bw_ticks" | bc)"
fi
