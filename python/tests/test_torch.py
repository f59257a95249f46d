"""PyTorch: map-style and iterable datasets with DataLoader workers (fork and spawn),
equal steps, and exact resume with StatefulDataLoader."""

from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler
from torchdata.stateful_dataloader import StatefulDataLoader

import editshard
from editshard.torch import EditDataset, IterableEditDataset

N = 36


def record_id(record: editshard.Record) -> str:
    return record.id


def id_and_pixels(record: editshard.Record) -> dict[str, Any]:
    arr = record.source.to_numpy(mode="RGB")
    return {"id": record.id, "mean": torch.from_numpy(arr).float().mean()}


def epoch_order(sample: Path, seed: int, epoch: int, shuffle: str = "full") -> list[str]:
    ds = editshard.open(sample, images="none")
    return [r.id for r in ds.iter(shuffle=shuffle, seed=seed, epoch=epoch)]


def expected_padded(order: list[str], start: int, steps: int, world: int, b: int) -> list[str]:
    """Ids read from position `start` with padding: the rest of the order, then the
    order's first positions again (wrapping) up to steps * world * b."""
    total = steps * world * b
    positions = range(start, start + total)
    return [order[p % len(order)] for p in positions]


@pytest.mark.parametrize("workers,ctx", [(0, None), (4, "fork"), (2, "spawn")])
def test_map_style_dataloader(sample: Path, workers: int, ctx: str | None) -> None:
    ds = EditDataset(sample, transform=id_and_pixels)
    loader = DataLoader(
        ds, batch_size=5, shuffle=True, num_workers=workers, multiprocessing_context=ctx
    )
    ids = [i for batch in loader for i in batch["id"]]
    assert sorted(ids) == sorted(r.id for r in editshard.open(sample, images="none"))


def test_map_style_distributed_sampler(sample: Path) -> None:
    ds = EditDataset(sample, transform=record_id, images="none")
    seen = []
    for rank in range(3):
        sampler = DistributedSampler(ds, num_replicas=3, rank=rank, shuffle=True, seed=1)
        seen += [
            i for b in DataLoader(ds, batch_size=4, sampler=sampler, collate_fn=list) for i in b
        ]
    assert len(seen) == N and len(set(seen)) == N


@pytest.mark.parametrize(
    "workers,ctx,persistent",
    [(0, None, False), (2, "fork", False), (4, "fork", True), (2, "spawn", True)],
)
def test_iterable_coverage_with_workers(
    sample: Path, workers: int, ctx: str | None, persistent: bool
) -> None:
    b = 4
    ds = IterableEditDataset(sample, batch_size=b, seed=7, transform=record_id, images="none")
    loader = DataLoader(
        ds,
        batch_size=b,
        num_workers=workers,
        multiprocessing_context=ctx,
        persistent_workers=persistent,
        collate_fn=list,
    )
    for epoch in range(2 if persistent else 1):
        ds.set_epoch(epoch)
        batches = list(loader)
        ids = [i for batch in batches for i in batch]
        steps = math.ceil(N / b)
        assert len(batches) == steps and all(len(x) == b for x in batches)
        # One rank: the epoch order itself, batch by batch, whatever the worker count.
        assert ids == expected_padded(epoch_order(sample, 7, epoch), 0, steps, 1, b)


@pytest.mark.parametrize(
    "world,b,mode", [(2, 5, "pad"), (3, 4, "pad"), (2, 5, "drop"), (4, 3, None)]
)
def test_ranks_equal_steps_disjoint(sample: Path, world: int, b: int, mode: str | None) -> None:
    per_rank = []
    for rank in range(world):
        ds = IterableEditDataset(
            sample,
            batch_size=b,
            seed=1,
            rank=rank,
            world_size=world,
            transform=record_id,
            images="none",
            equal_steps=mode,
        )
        per_rank.append(
            [list(x) for x in DataLoader(ds, batch_size=b, num_workers=2, collate_fn=list)]
        )
    counts = [len(x) for x in per_rank]
    ids = [i for rank in per_rank for batch in rank for i in batch]
    if mode == "pad":
        assert len(set(counts)) == 1 and counts[0] == math.ceil(N / (world * b))
        assert set(ids) == set(epoch_order(sample, 1, 0))
        c = collections.Counter(ids)
        assert sum(c.values()) == counts[0] * world * b
    elif mode == "drop":
        assert len(set(counts)) == 1 and counts[0] == N // (world * b)
        assert len(ids) == len(set(ids)) == counts[0] * world * b
    else:
        assert sorted(ids) == sorted(epoch_order(sample, 1, 0)) and max(counts) - min(counts) <= 1


def test_filter_keeps_steps_aligned(sample: Path) -> None:
    b = 4
    ds = IterableEditDataset(sample, batch_size=b, seed=2, kind="sft", transform=record_id)
    batches = list(DataLoader(ds, batch_size=b, num_workers=2, collate_fn=list))
    assert len(batches) == math.ceil(N / b) and all(len(x) == b for x in batches)
    sft = {r.id for r in editshard.open(sample, images="none").filter(kind="sft")[:]}
    assert {i for x in batches for i in x} == sft


def _consume(
    sample: Path,
    *,
    world: int,
    workers: int,
    b: int,
    steps: int | None,
    state: dict[str, Any] | None = None,
    via_loader: bool = False,
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Runs every rank for `steps` steps (None: to the end); returns ids per rank and each
    rank's loader state."""
    ids, states = [], []
    for rank in range(world):
        ds = IterableEditDataset(
            sample,
            batch_size=b,
            seed=5,
            rank=rank,
            world_size=world,
            transform=record_id,
            images="none",
        )
        if state is not None and not via_loader:
            ds.load_state_dict(state)
        loader = StatefulDataLoader(ds, batch_size=b, num_workers=workers, collate_fn=list)
        if state is not None and via_loader:
            loader.load_state_dict(state)
        got: list[str] = []
        it = iter(loader)
        k = 0
        while steps is None or k < steps:
            try:
                got += next(it)
            except StopIteration:
                break
            k += 1
        states.append(loader.state_dict())
        del it, loader
        ids.append(got)
    return ids, states


@pytest.mark.parametrize(
    "before,after",
    [((2, 2), (3, 4)), ((1, 0), (2, 3)), ((3, 2), (1, 0)), ((2, 4), (2, 4))],
)
def test_resume_with_other_topology(
    sample: Path, before: tuple[int, int], after: tuple[int, int]
) -> None:
    b, k = 3, 2
    (w1, n1), (w2, n2) = before, after
    first, states = _consume(sample, world=w1, workers=n1, b=b, steps=k)
    assert all(len(x) == k * b for x in first)
    consumed = k * w1 * b
    # Any rank's state says the same; restart with the new topology from rank 0's.
    rest, _ = _consume(sample, world=w2, workers=n2, b=b, steps=None, state=states[0])
    order = epoch_order(sample, 5, 0)
    done = [i for x in first for i in x]
    assert sorted(done) == sorted(order[:consumed])
    remaining = [i for x in rest for i in x]
    steps2 = math.ceil((N - consumed) / (w2 * b))
    assert all(len(x) == steps2 * b for x in rest)  # equal steps after resume too
    expected = expected_padded(order, consumed, steps2, w2, b)
    assert collections.Counter(remaining) == collections.Counter(expected)
    # Every record of the epoch exactly once, apart from the padding past the end.
    real = collections.Counter(done + remaining) - collections.Counter(
        order[: len(done) + len(remaining) - N]
    )
    assert real == collections.Counter(order)


def test_resume_same_topology_through_loader(sample: Path) -> None:
    b, k = 3, 3
    first, states = _consume(sample, world=1, workers=2, b=b, steps=k)
    rest, _ = _consume(
        sample, world=1, workers=2, b=b, steps=None, state=states[0], via_loader=True
    )
    order = epoch_order(sample, 5, 0)
    assert first[0] + rest[0] == expected_padded(order, 0, math.ceil(N / b), 1, b)


def test_state_dict_single_process(sample: Path) -> None:
    b = 4
    ds = IterableEditDataset(sample, batch_size=b, seed=5, transform=record_id, images="none")
    loader = StatefulDataLoader(ds, batch_size=b, num_workers=0, collate_fn=list)
    it = iter(loader)
    for _ in range(4):
        next(it)
    sd = loader.state_dict()
    assert ds.position_of(sd) == {"epoch": 0, "position": 16}
    ds2 = IterableEditDataset(sample, batch_size=b, seed=5, transform=record_id, images="none")
    ds2.load_state_dict({"epoch": 0, "position": 16})
    rest = [i for x in DataLoader(ds2, batch_size=b, collate_fn=list) for i in x]
    assert rest[: N - 16] == epoch_order(sample, 5, 0)[16:]


def test_iteration_from_threads(sample: Path) -> None:
    import threading

    ds = IterableEditDataset(sample, batch_size=4, seed=9, transform=record_id, images="none")
    out: dict[int, list[str]] = {}

    def run(t: int) -> None:
        out[t] = list(iter(ds))

    threads = [threading.Thread(target=run, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert out[0] == out[1] == out[2] and len(out[0]) == 36


def test_transform_to_tensors_default_collate(sample: Path) -> None:
    ds = IterableEditDataset(sample, batch_size=4, transform=id_and_pixels)
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    assert batch["mean"].shape == (4,) and len(batch["id"]) == 4
    assert np.isfinite(batch["mean"].numpy()).all()


def test_readme_loop_resume_then_next_epoch(sample: Path) -> None:
    """The README's loop: persistent workers, checkpoint mid-epoch, restart with another
    worker count, finish the epoch, then a whole next epoch."""
    b = 4

    def make() -> IterableEditDataset:
        return IterableEditDataset(
            sample, batch_size=b, shuffle=True, seed=42, images="none", transform=record_id
        )

    ds = make()
    loader = StatefulDataLoader(
        ds, batch_size=b, num_workers=2, persistent_workers=True, collate_fn=list
    )
    ds.set_epoch(0)
    seen: list[str] = []
    for step, batch in enumerate(loader):
        seen += batch
        if step == 2:
            ckpt = loader.state_dict()
            break
    del loader
    ds = make()
    ds.load_state_dict(ckpt)
    assert ds.epoch == 0
    loader = StatefulDataLoader(
        ds, batch_size=b, num_workers=3, persistent_workers=True, collate_fn=list
    )
    epochs: dict[int, list[str]] = {}
    for epoch in range(ds.epoch, 2):
        ds.set_epoch(epoch)
        epochs[epoch] = [i for batch in loader for i in batch]
    order0, order1 = epoch_order(sample, 42, 0), epoch_order(sample, 42, 1)
    assert seen == order0[:12]
    assert epochs[0] == order0[12:]  # 36 = 9 steps of 4: no padding
    assert epochs[1] == order1


def test_skip_corrupt_with_workers_keeps_steps(sample_copy: Path) -> None:
    from test_basic import _damage_a_record

    _, _, damaged = _damage_a_record(sample_copy)
    b = 4
    ds = IterableEditDataset(
        sample_copy, batch_size=b, seed=3, transform=record_id, images="all", skip_corrupt=True
    )
    batches = list(DataLoader(ds, batch_size=b, num_workers=2, collate_fn=list))
    assert len(batches) == N // b and all(len(x) == b for x in batches)
    ids = {i for x in batches for i in x}
    assert not ids & damaged and len(ids) == N - len(damaged)
    strict = IterableEditDataset(sample_copy, batch_size=b, seed=3, transform=record_id)
    with pytest.raises(editshard.CorruptionError):
        list(DataLoader(strict, batch_size=b, num_workers=0, collate_fn=list))


def test_iterable_dataset_works_with_a_plain_dataloader(sample: Path) -> None:
    """``batch_size`` defaults to a plain ``DataLoader``'s (1): no argument is required."""
    ds = IterableEditDataset(sample, shuffle=False, transform=record_id, images="none")
    ids = [batch[0] for batch in DataLoader(ds)]
    assert len(ids) == 36 and len(set(ids)) == 36
