#!/usr/bin/env bash
# The Python write benchmark (bench/python_write.py) with the benchmark venv.
#
#   bash bench/python_write.sh [--records 600] [--image-kb 400] [--reps 3] ...
#
# Uses the venv of bench/python.sh (BENCH_VENV, default ~/.cache/editshard-tools/bench-pyenv:
# the peers' libraries live there, never in the test suite's venv), installs the package as it
# is in this checkout into it, and runs the benchmark; all arguments go to python_write.py
# (see its --help). The table is printed and written to /tmp/editshard-python-write-bench.md
# (--out).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${BENCH_VENV:-$HOME/.cache/editshard-tools/bench-pyenv}"
PY="$VENV/bin/python"
if [[ ! -x "$PY" ]]; then
    echo "== creating the benchmark venv $VENV (the peers: a few GB, once)" >&2
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q numpy pillow webdataset pyarrow pylance mosaicml-streaming litdata
fi
"$VENV/bin/pip" install -q ./python
missing=$("$PY" - << 'PYEOF'
import importlib.util as u
print(" ".join(m for m in ["webdataset", "lance", "streaming", "litdata"] if u.find_spec(m) is None))
PYEOF
)
if [[ -n "$missing" ]]; then
    echo "peers not installed ($missing); their rows will say so. To install them:" >&2
    echo "  $VENV/bin/pip install webdataset pyarrow pylance mosaicml-streaming litdata" >&2
fi
exec "$PY" bench/python_write.py "$@"
