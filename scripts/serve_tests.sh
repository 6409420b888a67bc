#!/usr/bin/env bash
# The `resincept serve` suite: the real binary on loopback ports, driven by
# the real Open Inference Protocol clients (tritonclient HTTP and gRPC,
# open-inference-openapi) under pytest. Creates (or reuses) a virtualenv in
# target/serve-venv, builds the release binary if needed, runs
# kernels-tests/serve. The suite starts and stops its own servers.
#
#   scripts/serve_tests.sh [pytest args]
#   SERVE_BENCH_OUT=FILE  also write the load test's numbers as JSON
#   SERVE_LOAD_SECONDS=N  length of each load run (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/serve-venv
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c 'import tritonclient.http, tritonclient.grpc, open_inference.openapi, numpy, yaml' 2>/dev/null; then
  echo "== creating $venv"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null && command -v apt-get >/dev/null; then
    apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    'tritonclient[http,grpc]' open-inference-openapi pytest numpy pyyaml
fi

if [ ! -x target/release/resincept ]; then
  cargo build --release --bins
fi

export NODEVICE_SELECT="${NODEVICE_SELECT:-1}"
exec "$venv/bin/pytest" -q -p no:cacheprovider kernels-tests/serve "$@"
