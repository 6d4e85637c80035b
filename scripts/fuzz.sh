#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300), one after another,
# one process at a time. Installs cargo-fuzz if missing, seeds each corpus
# from fuzz/seeds/<target>/ (the corpus itself is gitignored and grows across
# runs) and stops at the first target that finds a crash, leaving the input in
# fuzz/artifacts/<target>/. See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(exposition remote_write config api_params rule_file template notify_config silence_json alerts_body llm_usage cert_expiry host otlp kubernetes_watch)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, ...); this lets
# the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  cp -n "seeds/$target/"* "corpus/$target/" 2>/dev/null || true
  echo "fuzz.sh: $target for ${seconds}s"
  # -max_len: the largest seed is a 57 KiB node_exporter scrape; 64 KiB lets
  # mutations of it grow a little without slowing every other input.
  # -jobs=1 -workers=1: one fuzzing process (libFuzzer then writes its
  # output to fuzz-0.log, moved to logs/<target>.log and summarised below).
  status=0
  cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -jobs=1 -workers=1 \
    -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 || status=$?
  mkdir -p logs
  mv -f fuzz-0.log "logs/$target.log"
  grep -E '^#[0-9]+.*DONE|^stat::(number_of_executed_units|average_exec_per_sec)|SUMMARY|panicked|^==[0-9]+==' \
    "logs/$target.log" || true
  if [ "$status" -ne 0 ] || grep -q '^artifact_prefix\|Test unit written to' "logs/$target.log"; then
    echo "fuzz.sh: $target failed; see fuzz/logs/$target.log and fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
