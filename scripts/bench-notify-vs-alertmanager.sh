#!/usr/bin/env bash
# Alert routing and grouping side by side: bellwether and Debian's
# Alertmanager 0.25 get the same alert stream on their API v2 (GROUPS groups
# of PER_GROUP alerts, then REFRESH re-posts of all of them) and notify the
# same kind of webhook receiver (examples/bench_notify.rs, which also drives
# the load). Each round runs Alertmanager, then bellwether, each fresh, with
# the same routing config; the script prints one Markdown row per run with
# the driver's numbers and the peer's CPU seconds and peak RSS over the run.
#
# Usage: scripts/bench-notify-vs-alertmanager.sh [ROUNDS=3] [GROUPS=1000] [PER_GROUP=10] [REFRESH=5]
# Env: BENCH_NO_BUILD=1 skips the cargo build. Everything listens on 127.0.0.1 only.
# Needs: prometheus-alertmanager (apt), curl, jq, a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; groups=${2:-1000}; per_group=${3:-10}; refresh=${4:-5}
am_port=19393; bw_port=19394; hook_port=19395
bin=${CARGO_TARGET_DIR:-target}/release
[[ -n "${BENCH_NO_BUILD:-}" ]] || cargo build --release --bin bellwether --example bench_notify >/dev/null
work=$(mktemp -d /tmp/bellwether-notify-bench.XXXXXX)
cp "$bin/bellwether" "$bin/examples/bench_notify" "$work/"
pid=""
cleanup() { [[ -z "$pid" ]] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

route="route:
  receiver: hook
  group_by: [alertname, group]
  group_wait: 1s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$hook_port/hook
        send_resolved: false"
printf '%s\n' "$route" >"$work/alertmanager.yml"
{ echo "notify:"; printf '%s\n' "$route" | sed 's/^/  /'; } >"$work/bellwether.yml"

cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
peak_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

run() { # name
  local name=$1 url
  rm -rf "$work/data"; mkdir -p "$work/data"
  if [[ $name == alertmanager ]]; then
    prometheus-alertmanager --config.file="$work/alertmanager.yml" --storage.path="$work/data" \
      --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
      >"$work/$name.log" 2>&1 &
    url=http://127.0.0.1:$am_port
  else
    "$work/bellwether" run --config "$work/bellwether.yml" --data-dir "$work/data" \
      --listen "127.0.0.1:$bw_port" >"$work/$name.log" 2>&1 &
    url=http://127.0.0.1:$bw_port
  fi
  pid=$!
  for _ in $(seq 100); do curl -sf "$url/-/ready" >/dev/null && break; sleep 0.1; done
  local cpu0 out cpu1
  cpu0=$(cpu_secs "$pid")
  out=$("$work/bench_notify" --target "$url" --receiver-port "$hook_port" --groups "$groups" \
    --per-group "$per_group" --refresh "$refresh" --group-wait-ms 1000)
  cpu1=$(cpu_secs "$pid")
  echo "$out" | jq -r --arg name "$name" --arg cpu "$(echo "$cpu1 - $cpu0" | bc -l)" --arg rss "$(peak_mib "$pid")" \
    '"| \($name) | \(.groups_notified)/\(.groups) | \(.webhook_requests) | \(.new_alerts_per_sec | floor) | \(.delay_ms_p50 | .*10 | round / 10) | \(.delay_ms_p99 | .*10 | round / 10) | \(.all_notified_secs | .*100 | round / 100) | \(.refresh_alerts_per_sec | floor) | \($cpu | tonumber | .*100 | round / 100) | \($rss) |"'
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $groups groups x $per_group alerts, $refresh refreshes"
echo
echo "| peer | groups notified | webhook requests | new alerts/s | delay p50 ms | delay p99 ms | all notified s | refresh alerts/s | CPU s | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for _ in $(seq "$rounds"); do
  run alertmanager
  run bellwether
done
