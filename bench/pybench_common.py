"""What the Python benchmarks (python_bench.py, python_pipeline.py) share: the work directory,
progress lines, the page-cache warm-up, and running one measurement in a child process.

The data itself (release, conversion, export, each peer's copy) is made by
`python_bench.prepare` and `python_bench.write_peer`; python_pipeline.py reuses them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARKER = ".editshard-python-bench"


def workdir(path: str | None, reuse: bool, prefix: str) -> Path:
    """The benchmark's work directory: `path` (emptied first unless `reuse`; refused when it
    holds anything and is not a benchmark's), else a new one under /tmp."""
    if not path:
        w = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    else:
        w = Path(path).resolve()
        if w.exists() and not reuse:
            if any(w.iterdir()) and not (w / MARKER).exists():
                raise SystemExit(f"{w} is not empty and not a previous python_bench directory")
            shutil.rmtree(w)
        w.mkdir(parents=True, exist_ok=True)
    (w / MARKER).touch()
    return w


def logger(start: float) -> Callable[[str], None]:
    """Progress lines on stderr, with the seconds since `start`."""

    def log(msg: str) -> None:
        print(f"== {msg} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)

    return log


def warm_page_cache(w: Path) -> None:
    """Reads every file under `w` once, so that what is measured is not the disk."""
    for p in w.rglob("*"):
        if p.is_file() and p.suffix != ".json":
            with open(p, "rb") as f:
                while f.read(1 << 24):
                    pass


def child(script: str | Path, args: list[Any], timeout: int) -> dict[str, Any]:
    """Runs `python SCRIPT ARGS...` and returns the JSON of its last `RESULT ` line, or
    {"error": ..., "stderr": ...} when it fails, times out or prints no result (a peer that
    crashes becomes a row saying why, and the run goes on)."""
    cmd = [sys.executable, str(Path(script).resolve())] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()
        msg = next((ln for ln in reversed(tail) if ln.strip()), f"exit {p.returncode}")
        return {"error": f"exit {p.returncode}: {msg.strip()[:200]}", "stderr": p.stderr[-4000:]}
    return dict(json.loads(lines[-1][len("RESULT ") :]))
