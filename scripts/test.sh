#!/usr/bin/env bash
# The whole test suite, as README.md documents it: installs the reference
# programs the integration tests start (Debian's prometheus, which brings
# promtool, prometheus-alertmanager, which brings amtool, and
# prometheus-node-exporter; python3-aiosmtpd, the SMTP server the email tests
# receive mail with; postgresql and openssl for the probe tests), then builds and
# runs every test.
#
# Long fuzzing and benchmark runs are separate commands (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg_bin in prometheus:/usr/bin/prometheus prometheus-alertmanager:/usr/bin/prometheus-alertmanager prometheus-node-exporter:/usr/bin/prometheus-node-exporter python3-aiosmtpd:/usr/lib/python3/dist-packages/aiosmtpd/__init__.py postgresql:/usr/lib/postgresql/15/bin/postgres openssl:/usr/bin/openssl python3-venv:/usr/lib/python3.11/venv/__init__.py; do
  pkg=${pkg_bin%%:*}; bin=${pkg_bin#*:}
  [ -e "$bin" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # --no-install-recommends keeps the install small; the services are not started
  # (policy-rc.d), the tests start their own instances on 127.0.0.1.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The OpenTelemetry Python SDK for tests/integration/otlp.rs, from PyPI into a venv
# (skipped when already there).
venv=${BELLWETHER_OTEL_VENV:-/opt/bellwether-test-venv}
if ! "$venv/bin/python" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' 2>/dev/null; then
  echo "test.sh: installing the OpenTelemetry Python SDK into $venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2
fi
export BELLWETHER_OTEL_PYTHON="$venv/bin/python"

cargo build --all-targets --locked
cargo test --locked -- --test-threads="${BELLWETHER_TEST_THREADS:-4}"
