#!/usr/bin/env bash
# Bytes per sample on a realistic mix: bellwether scrapes Debian's real
# node_exporter every second for MINUTES, is stopped with SIGTERM (which
# checkpoints every open chunk into SQLite and truncates the WAL), and the data
# directory's size is divided by the samples appended.
#
# Usage: scripts/footprint-node-exporter.sh [MINUTES=3]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-3}; ne_port=19910; bw_port=19911
cargo build --release --bin bellwether >/dev/null
work=$(mktemp -d /tmp/bellwether-footprint.XXXXXX)
prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" >"$work/node_exporter.log" 2>&1 &
ne=$!
trap 'kill $ne 2>/dev/null || true' EXIT
printf 'global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' "$ne_port" >"$work/bellwether.yml"
./target/release/bellwether run --config "$work/bellwether.yml" --data-dir "$work/data" \
  --listen "127.0.0.1:$bw_port" >"$work/bellwether.log" 2>&1 &
bw=$!
sleep $((minutes * 60))
metrics=$(curl -s "127.0.0.1:$bw_port/metrics")
samples=$(awk '/^bellwether_storage_samples_appended_total/ {print $2}' <<<"$metrics")
series=$(awk '/^bellwether_storage_active_series/ {print $2}' <<<"$metrics")
kill -TERM "$bw"; wait "$bw" || true
bytes=$(du -sb "$work/data" | cut -f1)
# Chunk bytes alone (what grows with time; the series table and SQLite's
# fixed pages are amortised over a retention period, not over minutes).
blobs=$(python3 -c "
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(sum(db.execute(q).fetchone()[0] or 0 for q in (
    'select sum(length(data)) from chunks', 'select sum(length(data)) from head_chunks')))
" "$work/data/bellwether.db")
awk -v b="$bytes" -v c="$blobs" -v s="$samples" -v n="$series" -v m="$minutes" 'BEGIN {
  printf "| %d min of node_exporter at 1s | %d series | %d samples | %d bytes on disk after SIGTERM (%.2f bytes/sample) | %d bytes of chunks (%.2f bytes/sample) |\n", m, n, s, b, b / s, c, c / s }'
