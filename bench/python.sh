#!/usr/bin/env bash
# The Python read benchmark (bench/python_bench.py) with the project's venv.
#
#   bash bench/python.sh [--rows 200] [--reps 5] [--keep --workdir DIR] ...
#
# Builds the release binaries it needs (generator, converter), checks that the peers' libraries
# are importable (install them with the pip line below), then runs the benchmark; all arguments
# go to python_bench.py (see its --help). The table is printed and written to
# /tmp/editshard-python-bench.md (--out).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-$HOME/.cache/editshard-tools/pyenv/bin/python}"
cargo build --release --quiet -p editshard-cli -p editshard-tools
if ! "$PY" -c 'import editshard, torch, PIL, numpy' 2> /dev/null; then
    echo "$PY lacks editshard/torch/Pillow/numpy: run scripts/install-test-deps.sh" >&2
    exit 2
fi
missing=$("$PY" - << 'PYEOF'
import importlib.util as u
print(" ".join(m for m in ["webdataset", "pyarrow", "lance", "tfrecord", "streaming", "litdata"]
               if u.find_spec(m) is None))
PYEOF
)
if [[ -n "$missing" ]]; then
    echo "peers not installed ($missing); their rows will say so. To install them:" >&2
    echo "  $(dirname "$PY")/pip install webdataset pyarrow pylance tfrecord mosaicml-streaming litdata" >&2
fi
exec "$PY" bench/python_bench.py "$@"
