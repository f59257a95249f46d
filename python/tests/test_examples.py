"""The documented examples without PyTorch: a plain NumPy/PIL loop, Hugging Face `datasets`
(skipped if `datasets` is not installed), and the README's "Write from Python" example."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import editshard

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
README = Path(__file__).resolve().parents[2] / "README.md"


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


def readme_python_block(heading: str) -> str:
    """The first ```python block of the README section under `heading`."""
    section = README.read_text().split(f"\n{heading}\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_write_from_python(tmp_path: Path) -> None:
    code = readme_python_block("## Write from Python")
    code = code.replace("/tmp/my-edits", str(tmp_path / "my-edits"))
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert "100 {'preference': 100}" in out, out
    good = editshard.open(tmp_path / "my-edits-good")
    assert len(good) == 100 and good[0].scores["judge"] == pytest.approx(0.9)
    assert good.manifest["licence"] == "CC-BY-4.0"
