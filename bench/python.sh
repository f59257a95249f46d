#!/usr/bin/env bash
# The Python read benchmark (bench/python_bench.py) with the project's venv.
#
#   bash bench/python.sh [--rows 200] [--reps 5] [--keep --workdir DIR] ...
#   bash bench/python.sh --pipeline [--rows 100] [--reps 3] ...
#
# Builds the release binaries it needs (generator, converter), makes sure its own venv holds
# torch, torchvision, Pillow, NumPy, the editshard package and the peers' libraries, then runs
# the benchmark; all arguments go to python_bench.py (see its --help). The table is printed and
# written to /tmp/editshard-python-bench.md (--out). With --pipeline it runs the training
# throughput benchmark instead (bench/python_pipeline.py: pairs/s of 512x512 float tensors
# with a paired random crop and flip through editshard.torch.Pipeline and through PIL +
# torchvision v2 over each peer; table to /tmp/editshard-pipeline-bench.md).
#
# The peers live in a venv of their own (BENCH_VENV, default
# ~/.cache/editshard-tools/bench-pyenv), never in the test suite's: mosaicml-streaming pins
# NumPy below 2.2 and drags in a `transformers` that does not import next to `datasets`.
#
# EDITSHARD_SITE=DIR uses the editshard package installed in DIR (`pip install --target DIR
# WHEEL`, e.g. a wheel built with maturin into a warm target directory) instead of installing
# ./python into the venv: several checkouts can then share one benchmark venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${BENCH_VENV:-$HOME/.cache/editshard-tools/bench-pyenv}"
PY="$VENV/bin/python"
script=bench/python_bench.py
if [[ "${1:-}" == "--pipeline" ]]; then
    shift
    script=bench/python_pipeline.py
fi
cargo build --release --quiet -p editshard-cli -p editshard-tools
# Hugging Face `datasets` (the pipeline benchmark's Parquet row) next to mosaicml-streaming:
# streaming requires `transformers`, whose 4.x releases require huggingface_hub < 1.0, and
# `datasets` 5 imports names only huggingface_hub 1.x has. datasets 4.8 works with both.
HF_PINS="datasets>=4.8,<5 huggingface_hub<1"
if [[ ! -x "$PY" ]]; then
    echo "== creating the benchmark venv $VENV (torch and the peers: a few GB, once)" >&2
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q torch numpy pillow \
        webdataset wids pyarrow pylance tfrecord mosaicml-streaming litdata $HF_PINS
fi
if [[ -n "${EDITSHARD_SITE:-}" ]]; then
    export PYTHONPATH="$EDITSHARD_SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    # The package as it is in this checkout (quick when cargo's build is warm).
    "$VENV/bin/pip" install -q ./python
fi
if ! "$PY" -c 'import torchvision' 2> /dev/null; then
    # Its wheels pin one torch version: keep the venv's.
    "$VENV/bin/pip" install -q torchvision "torch==$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
fi
if ! "$PY" -c 'import datasets' 2> /dev/null; then
    "$VENV/bin/pip" install -q $HF_PINS
fi
if ! "$PY" -c 'import editshard, torch, PIL, numpy' 2> /dev/null; then
    echo "$PY lacks editshard/torch/Pillow/numpy: delete $VENV and run again" >&2
    exit 2
fi
missing=$("$PY" - << 'PYEOF'
import importlib.util as u
print(" ".join(m for m in ["webdataset", "wids", "pyarrow", "lance", "tfrecord", "streaming", "litdata", "datasets"]
               if u.find_spec(m) is None))
PYEOF
)
if [[ -n "$missing" ]]; then
    echo "peers not installed ($missing); their rows will say so. To install them:" >&2
    echo "  $VENV/bin/pip install webdataset wids pyarrow pylance tfrecord mosaicml-streaming litdata 'datasets>=4.8,<5' 'huggingface_hub<1'" >&2
fi
exec "$PY" "$script" "$@"
