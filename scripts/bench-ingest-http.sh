#!/usr/bin/env bash
# Ingest throughput through the real HTTP endpoints of a release daemon:
# OTLP protobuf to POST /v1/metrics (examples/bench_otlp.rs --http) and LLM
# usage JSON to POST /api/v1/usage (examples/bench_llm_usage.rs --http). The
# daemon runs fresh on a config with nothing else to do (no scrape jobs, no
# host collector, no rules); the figure that matters is items per CPU-second
# of the daemon (its /proc/<pid>/stat before and after, "after" once its CPU
# time stops growing, so the ledger writer and WAL flushes are counted), since
# the clients run on the same shared machine.
#
# Usage: scripts/bench-ingest-http.sh [POINTS_PER_REQUEST=10000] [REQUESTS=100] [RECORDS_PER_BODY=1000] [BODIES=200] [CLIENTS=2]
# Env: BENCH_NO_BUILD=1 skips the cargo build. Listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
points=${1:-10000}; requests=${2:-100}; records=${3:-1000}; bodies=${4:-200}; clients=${5:-2}
port=19471
bin=${CARGO_TARGET_DIR:-target}/release
[[ -n "${BENCH_NO_BUILD:-}" ]] ||
  cargo build --release --bin bellwether --example bench_otlp --example bench_llm_usage >/dev/null
work=$(mktemp -d /tmp/bellwether-ingest-bench.XXXXXX)
pid=""
cleanup() { [[ -z "$pid" ]] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cat >"$work/bellwether.yml" <<CONFIG
collectors:
  host:
    enabled: false
  kubernetes:
    enabled: false
CONFIG

start() {
  rm -rf "$work/data"; mkdir -p "$work/data"
  "$bin/bellwether" run --config "$work/bellwether.yml" --data-dir "$work/data" \
    --listen "127.0.0.1:$port" >"$work/daemon.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
peak_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
# Sum of a counter's series on the daemon's /metrics (lines starting with $1).
# What was refused must be 0, or the rates above count refused items.
counter() { curl -s "http://127.0.0.1:$port/metrics" | awk -v n="$1" 'index($0, n) == 1 {s += $NF} END {print s + 0}'; }

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
start
"$bin/examples/bench_otlp" "$points" "$requests" --http "http://127.0.0.1:$port/v1/metrics" "$pid" "$clients"
echo "daemon peak RSS: $(peak_mib "$pid") MiB; samples stored: $(counter bellwether_storage_samples_appended_total), refused by the OTLP translation: $(counter bellwether_otlp_rejected_total), by the store: $(counter bellwether_storage_samples_refused_total)"
stop
start
"$bin/examples/bench_llm_usage" "$records" "$bodies" --http "http://127.0.0.1:$port/api/v1/usage" "$pid" "$clients"
echo "daemon peak RSS: $(peak_mib "$pid") MiB; records refused: $(counter 'bellwether_llm_usage_records_total{outcome="refused"}')"
stop
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
