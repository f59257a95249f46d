"""Mapped reads and files changed in place: with ``map_local=False`` the bytes of a record
are its own (ranged reads), so a shard truncated or rewritten in place under a live
``memoryview`` of ``Image.data`` changes nothing; with the default mapped reads, the hazard the
documentation warns of is real (SIGBUS, and a rewrite showing through)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# Runs in a child process: a SIGBUS kills the interpreter.
CHILD = r"""
import json, os, sys
import editshard

path, map_local, change = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
ds = editshard.open(path, map_local=map_local)
rec = ds[0]
view = memoryview(rec.source.data)
before = bytes(view)
shard = os.path.join(path, json.load(open(os.path.join(path, "manifest.json")))["shards"][0]["path"])
size = os.path.getsize(shard)
with open(shard, "r+b") as f:
    if change == "truncate":
        f.truncate(0)
    else:
        f.write(b"\0" * size)
        f.flush()
        os.fsync(f.fileno())
after = bytes(view)
print("SAME" if after == before else "CHANGED", flush=True)
"""


def run(dataset: Path, map_local: bool, change: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(dataset), "1" if map_local else "0", change],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def copy(sample: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ds"
    shutil.copytree(sample, out)
    return out


@pytest.mark.parametrize("change", ["truncate", "rewrite"])
def test_unmapped_reads_survive_a_shard_changed_in_place(copy: Path, change: str) -> None:
    done = run(copy, map_local=False, change=change)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SAME"


def test_mapped_reads_die_of_a_shard_truncated_in_place(copy: Path) -> None:
    # What the warning in python/README.md is about.
    done = run(copy, map_local=True, change="truncate")
    assert done.returncode == -signal.SIGBUS, (done.returncode, done.stdout, done.stderr)


def test_mapped_reads_show_a_shard_rewritten_in_place(copy: Path) -> None:
    done = run(copy, map_local=True, change="rewrite")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "CHANGED"


def test_map_local_is_an_option_of_the_torch_datasets_too(copy: Path) -> None:
    pytest.importorskip("torch")
    from editshard.torch import EditDataset

    ds = EditDataset(copy, map_local=False)
    assert len(ds) > 0
    assert ds[0].id
