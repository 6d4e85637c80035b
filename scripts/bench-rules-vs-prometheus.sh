#!/usr/bin/env bash
# Rule evaluation side by side: bellwether and Debian's Prometheus scrape the
# same synthetic targets (examples/bench_rule_targets.rs) every 15 s and
# evaluate the same rule file (GROUPS groups x RULES alerting rules, 15 s
# interval). After WARMUP minutes (>= 6 so that [5m] windows are full) the
# script samples, every 15 s for MEASURE minutes, each group's last-duration
# gauge, the alert count of /api/v1/alerts and the RSS of both processes, and
# prints Markdown tables for docs/benchmarks.md.
#
# Usage: scripts/bench-rules-vs-prometheus.sh [WARMUP_MIN=7] [MEASURE_MIN=4] [TARGETS=20] [SERIES=5000] [GROUPS=10] [RULES=100]
# Env: BENCH_NO_BUILD=1 skips the cargo build. Everything listens on 127.0.0.1 only. Needs: prometheus (apt), curl, jq, a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
warmup=${1:-7}; measure=${2:-4}; targets=${3:-20}; series=${4:-5000}
groups=${5:-10}; rules=${6:-100}
base_port=19200; prom_port=19290; bw_port=19571; jobs=4
bin=${CARGO_TARGET_DIR:-target}/release

# BENCH_NO_BUILD=1 uses the binaries already built (the shared target dir may be locked by other builds).
[[ -n "${BENCH_NO_BUILD:-}" ]] || cargo build --release --bin bellwether --example bench_rule_targets >/dev/null
work=$(mktemp -d /tmp/bellwether-rule-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# Private copies: other worktrees sharing CARGO_TARGET_DIR may rebuild these paths mid-run.
cp "$bin/bellwether" "$bin/examples/bench_rule_targets" "$work/"
bin=$work; bw_bin=$work/bellwether
gen=("$bin/bench_rule_targets" --targets "$targets" --series "$series" --base-port "$base_port")
expected=$("${gen[@]}" --write-rules "$work/rules.yml" --groups "$groups" --rules-per-group "$rules")
"${gen[@]}" 2>/dev/null &
pids+=($!)

# JOBS jobs of consecutive targets, as the generator assumes.
per_job=$((targets / jobs))
scrape="scrape_configs:"
for j in $(seq 0 $((jobs - 1))); do
  first=$((base_port + j * per_job))
  list=$(seq -s, -f "'127.0.0.1:%g'" "$first" $((first + per_job - 1)))
  scrape+="
  - job_name: bench-$j
    static_configs:
      - targets: [$list]"
done
global="global:
  scrape_interval: 15s
  scrape_timeout: 10s
  evaluation_interval: 15s
rule_files:
  - $work/rules.yml"
printf '%s\n%s\n' "$global" "$scrape" >"$work/prometheus.yml"
printf '%s\n%s\n' "$global" "$scrape" >"$work/bellwether.yml"
promtool check config "$work/prometheus.yml" >/dev/null
"$bw_bin" check rules "$work/rules.yml" >/dev/null

prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom-data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!; pids+=($prom_pid)
"$bw_bin" run --config "$work/bellwether.yml" --data-dir "$work/bw-data" \
  --listen "127.0.0.1:$bw_port" >"$work/bellwether.log" 2>&1 &
bw_pid=$!; pids+=($bw_pid)

hz=$(getconf CLK_TCK)
cpu_seconds() { awk -v hz="$hz" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# "GROUP VALUE" per group for metric $2 at URL $1 (group = name after the ';').
group_values() {
  curl -sf "$1/metrics" | awk -v m="$2" '
    index($0, m "{") == 1 { g = $0; sub(/.*;/, "", g); sub(/".*/, "", g); print g, $NF }'
}
alert_count() { curl -sf "$1/api/v1/alerts" | jq '[.data.alerts[] | select(.state == "firing" or .state == "pending")] | length'; }
sum_values() { awk '{s += $2} END {print s + 0}'; }

echo "warm-up ${warmup} min, then ${measure} min of samples: ${targets} targets x ${series} series, ${groups} x ${rules} rules, ${expected} alerts expected (work dir $work)" >&2
sleep $((warmup * 60))
for p in "$prom_pid" "$bw_pid"; do kill -0 "$p" || { echo "a daemon died during warm-up; logs in $work" >&2; exit 1; }; done

P=http://127.0.0.1:$prom_port; B=http://127.0.0.1:$bw_port
p_missed0=$(group_values "$P" prometheus_rule_group_iterations_missed_total | sum_values)
b_missed0=$(group_values "$B" bellwether_rule_group_iterations_missed_total | sum_values)
p_evals0=$(group_values "$P" prometheus_rule_evaluations_total | sum_values)
b_evals0=$(group_values "$B" bellwether_rule_evaluations_total | sum_values)
p_cpu0=$(cpu_seconds $prom_pid); b_cpu0=$(cpu_seconds $bw_pid)
p_rss_max=0; b_rss_max=0
: >"$work/durations"; : >"$work/alerts"
ticks=$((measure * 4))
for t in $(seq 1 "$ticks"); do
  group_values "$P" prometheus_rule_group_last_duration_seconds | sed "s/^/$t prom /" >>"$work/durations"
  group_values "$B" bellwether_rule_group_last_duration_seconds | sed "s/^/$t bw /" >>"$work/durations"
  echo "$t $(alert_count "$P") $(alert_count "$B")" >>"$work/alerts"
  r=$(rss_kib $prom_pid); ((r > p_rss_max)) && p_rss_max=$r
  r=$(rss_kib $bw_pid); ((r > b_rss_max)) && b_rss_max=$r
  sleep 15
done
p_cpu1=$(cpu_seconds $prom_pid); b_cpu1=$(cpu_seconds $bw_pid)
p_evals1=$(group_values "$P" prometheus_rule_evaluations_total | sum_values)
b_evals1=$(group_values "$B" bellwether_rule_evaluations_total | sum_values)
p_missed1=$(group_values "$P" prometheus_rule_group_iterations_missed_total | sum_values)
b_missed1=$(group_values "$B" bellwether_rule_group_iterations_missed_total | sum_values)
p_hwm=$(hwm_mib $prom_pid); b_hwm=$(hwm_mib $bw_pid)

# Per-group medians (ms), and per-tick totals over all groups (ms).
median() { sort -g | awk '{v[NR] = $1} END { if (NR == 0) print "n/a"; else if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
group_median() { awk -v d="$1" -v g="$2" '$2 == d && $3 == g {print $4 * 1000}' "$work/durations" | median; }
total_median() { awk -v d="$1" '$2 == d {s[$1] += $4 * 1000} END {for (t in s) print s[t]}' "$work/durations" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo "| group (${rules} rules) | Prometheus 2.42, median ms | bellwether, median ms | bellwether / Prometheus |"
echo "|---|---|---|---|"
for g in $(awk '{print $3}' "$work/durations" | sort -uV); do
  pm=$(group_median prom "$g"); bm=$(group_median bw "$g")
  echo "| $g | $pm | $bm | $(ratio "$bm" "$pm") |"
done
pt=$(total_median prom); bt=$(total_median bw)
echo "| **all ${groups} groups, per cycle** | **$pt** | **$bt** | **$(ratio "$bt" "$pt")** |"
echo
p_cpu=$(awk -v a="$p_cpu0" -v b="$p_cpu1" 'BEGIN {printf "%.2f", b - a}')
b_cpu=$(awk -v a="$b_cpu0" -v b="$b_cpu1" 'BEGIN {printf "%.2f", b - a}')
p_rss=$(awk -v k="$p_rss_max" 'BEGIN {printf "%.1f", k / 1024}')
b_rss=$(awk -v k="$b_rss_max" 'BEGIN {printf "%.1f", k / 1024}')
per_eval() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", c * 1000 / n; else print "n/a" }'; }
alerts() { awk -v c="$1" 'NR == 1 {lo = hi = $c} {if ($c < lo) lo = $c; if ($c > hi) hi = $c} END {print (lo == hi) ? lo : lo "-" hi}' "$work/alerts"; }
cat <<TABLE
| ${measure} min after ${warmup} min warm-up | Prometheus 2.42 | bellwether | bellwether / Prometheus |
|---|---|---|---|
| CPU seconds in the window (scrape + rules) | ${p_cpu} | ${b_cpu} | $(ratio "$b_cpu" "$p_cpu") |
| peak RSS in the window, sampled every 15 s (MiB) | ${p_rss} | ${b_rss} | $(ratio "$b_rss" "$p_rss") |
| peak RSS since start, VmHWM (MiB) | ${p_hwm} | ${b_hwm} | $(ratio "$b_hwm" "$p_hwm") |
| rule evaluations done in the window | $((p_evals1 - p_evals0)) | $((b_evals1 - b_evals0)) | |
| CPU ms per rule evaluation (all CPU / evaluations) | $(per_eval "$p_cpu" $((p_evals1 - p_evals0))) | $(per_eval "$b_cpu" $((b_evals1 - b_evals0))) | $(ratio "$(per_eval "$b_cpu" $((b_evals1 - b_evals0)))" "$(per_eval "$p_cpu" $((p_evals1 - p_evals0)))") |
| iterations missed in the window | $((p_missed1 - p_missed0)) | $((b_missed1 - b_missed0)) | |
| alerts pending + firing (expected ${expected}) | $(alerts 2) | $(alerts 3) | |
TABLE
echo "raw samples in $work (durations, alerts)" >&2
