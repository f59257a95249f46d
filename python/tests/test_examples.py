"""The documented examples without PyTorch: a plain NumPy/PIL loop and Hugging Face
`datasets` (skipped if `datasets` is not installed)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_numpy_loop(sample: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "numpy_loop.py"), str(sample)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "36 records" in out and "pairs decoded" in out


def test_huggingface_iterable_dataset(sample: Path) -> None:
    datasets = pytest.importorskip("datasets")
    hf = load("huggingface").as_hf(str(sample), seed=1)
    assert isinstance(hf, datasets.IterableDataset)
    assert hf.features["source"] == datasets.Image()
    rows = list(hf)
    assert len(rows) == 24 and {r["kind"] for r in rows} == {"sft", "preference"}
    first = rows[0]
    assert first["source"].size[0] > 0 and first["edited"].size[1] > 0  # PIL images
    assert isinstance(first["instruction"], str) and first["id"]
