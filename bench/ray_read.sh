#!/usr/bin/env bash
# The Ray Data read benchmark (bench/ray_read.py) with the test venv, which holds ray[data]
# (scripts/install-test-deps.sh installs it).
#
#   bash bench/ray_read.sh [--rows 200] [--small-rows 4000] [--reps 3] [--workdir DIR] ...
#
# Builds the release binaries it needs (generator, converter) unless BIN_DIR names a directory
# holding them, and the editshard package as a wheel installed into a private directory (the
# venv itself is left as it is); all arguments go to ray_read.py (see its --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${EDITSHARD_TOOLS:-$HOME/.cache/editshard-tools}/pyenv"
PY="$VENV/bin/python"
if ! "$PY" -c 'import ray.data' 2> /dev/null; then
    echo "$PY lacks ray[data]: run scripts/install-test-deps.sh" >&2
    exit 2
fi
# Ray's read_parquet resolves local paths through fsspec's HTTP module, which needs aiohttp
# (its import fails half-way without it, under Ray's threads: "cannot import name").
"$PY" -c 'import aiohttp' 2> /dev/null || "$VENV/bin/pip" install -q aiohttp
if [[ -z "${BIN_DIR:-}" ]]; then
    cargo build --release --quiet -p editshard-cli -p editshard-tools
    export BIN_DIR="$PWD/target/release"
fi
SITE="$(mktemp -d /tmp/editshard-ray-bench-site.XXXXXX)"
trap 'rm -rf "$SITE"' EXIT
"$VENV/bin/pip" install -q maturin
(cd python && CARGO_TARGET_DIR="$PWD/target" "$VENV/bin/maturin" build --release --quiet -o "$SITE/wheel")
"$VENV/bin/pip" install -q --no-deps --target "$SITE/lib" "$SITE"/wheel/editshard-*.whl
PYTHONPATH="$SITE/lib" "$PY" bench/ray_read.py "$@"
