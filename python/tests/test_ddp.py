"""Two-process torch.distributed (gloo on 127.0.0.1): disjoint, complete coverage and the
same number of steps on every rank, on a size that does not divide evenly."""

from __future__ import annotations

import json
import math
import os
import socket
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

import editshard
from editshard.torch import IterableEditDataset

WORLD = 2
BATCH = 5  # 36 records, 2 ranks: 3.6 steps of 10 positions -> 4 steps, 4 padded


def record_id(record: editshard.Record) -> str:
    return record.id


def _rank_main(rank: int, port: int, location: str, out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60))
    try:
        # rank and world size come from torch.distributed
        ds = IterableEditDataset(
            location, batch_size=BATCH, seed=11, transform=record_id, images="none"
        )
        loader = DataLoader(ds, batch_size=BATCH, num_workers=2, collate_fn=list)
        steps, ids = 0, []
        for batch in loader:
            # A collective per step, as DDP's gradient all-reduce: unequal steps would hang.
            t = torch.ones(1)
            dist.all_reduce(t)
            assert t.item() == WORLD
            steps += 1
            ids += batch
        everyone: list[object] = [None] * WORLD
        dist.all_gather_object(
            everyone, {"rank": ds.rank, "world": ds.world_size, "steps": steps, "ids": ids}
        )
        if rank == 0:
            Path(out).write_text(json.dumps(everyone))
    finally:
        dist.destroy_process_group()


def test_two_ranks_gloo(sample: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "result.json"
    # fork: a spawned rank would spend seconds importing torch again. The editshard handles
    # of this process are not used by the ranks (they open their own).
    mp.start_processes(
        _rank_main, args=(port, str(sample), str(out)), nprocs=WORLD, join=True, start_method="fork"
    )
    results = json.loads(out.read_text())
    assert [r["rank"] for r in results] == [0, 1] and all(r["world"] == WORLD for r in results)
    steps = math.ceil(36 / (WORLD * BATCH))
    assert [r["steps"] for r in results] == [steps, steps]
    all_ids = [i for r in results for i in r["ids"]]
    order = [r.id for r in editshard.open(sample, images="none").iter(shuffle=True, seed=11)]
    assert set(all_ids) == set(order)  # complete
    padding = order[: steps * WORLD * BATCH - 36]
    rest = list(all_ids)
    for p in padding:
        rest.remove(p)
    assert sorted(rest) == sorted(order)  # disjoint: every record once, plus the padding
