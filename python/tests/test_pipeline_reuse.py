"""A DataLoader worker's pipeline writes a new batch into the shared memory of an old one only
once no process holds the old one: batches kept by the training loop, or shared on to
another process, are never overwritten, and the values are those of a run without workers."""

from __future__ import annotations

import os
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import pytest
import torch
from test_pipeline import jpeg, make_dataset, per_id, photo_like, png
from torch.utils.data import DataLoader

from editshard.torch import IterableEditDataset, Pipeline

BATCHES = 20


@pytest.fixture(scope="module")
def many_ds(tmp_path_factory: pytest.TempPathFactory, cli: Path) -> Path:
    """40 small records: 20 batches of 2, more than a worker's pool of buffers."""
    rows = [
        {
            "id": f"m{i:02d}",
            "source": jpeg(photo_like(96, 72, seed=i)),
            "output": png(photo_like(80, 60, seed=200 + i)),
        }
        for i in range(2 * BATCHES)
    ]
    return make_dataset(tmp_path_factory.mktemp("many"), cli, rows)


def loader(path: Path, workers: int) -> DataLoader[Any]:
    pipe = Pipeline(48, crop="random", flip=0.5, dtype="float32", threads=1)
    ds = IterableEditDataset(path, batch_size=2, seed=5, pipeline=pipe)
    return DataLoader(ds, batch_size=None, num_workers=workers)


def inode(t: torch.Tensor) -> int:
    """The shared-memory file behind a tensor received from a worker."""
    fd, _ = t.untyped_storage()._share_fd_cpu_()  # type: ignore[attr-defined]
    return os.fstat(fd).st_ino


@pytest.fixture(scope="module")
def reference(many_ds: Path) -> dict[str, torch.Tensor]:
    return per_id(list(loader(many_ds, 0)))


def test_released_batches_are_reused_with_the_right_values(
    many_ds: Path, reference: dict[str, torch.Tensor]
) -> None:
    got: dict[str, torch.Tensor] = {}
    files = []
    for b in loader(many_ds, 1):  # each batch dropped before the next but one arrives
        got.update(per_id([b]))
        files.append(inode(b["source"]))
    assert got.keys() == reference.keys()
    assert all(torch.equal(got[i], reference[i]) for i in reference)
    assert len(files) == BATCHES
    assert len(set(files)) < BATCHES / 2, files  # the memory was written again


def test_held_batches_are_never_written_again(
    many_ds: Path, reference: dict[str, torch.Tensor]
) -> None:
    held = list(loader(many_ds, 2))
    assert len({inode(b["source"]) for b in held}) == BATCHES
    got = per_id(held)
    assert all(torch.equal(got[i], reference[i]) for i in reference)


@pytest.mark.parametrize("what", ["tensor", "batch"])
def test_a_batch_shared_on_is_never_written_again(
    many_ds: Path, reference: dict[str, torch.Tensor], what: str
) -> None:
    # Pickled for another process (as a torch.multiprocessing queue does), then dropped
    # here: that process may still map the memory, so the worker must not write it again.
    sent: Any = None
    for k, b in enumerate(loader(many_ds, 1)):
        if k == 3:
            sent_ids, sent_file = list(b["id"]), inode(b["source"])
            sent = ForkingPickler.dumps(b["source"] if what == "tensor" else b)
        elif k > 3:
            assert inode(b["source"]) != sent_file, k
    received = ForkingPickler.loads(sent)
    source = received if what == "tensor" else received["source"]
    for k, rid in enumerate(sent_ids):
        assert torch.equal(source[k], reference[rid][:3])
