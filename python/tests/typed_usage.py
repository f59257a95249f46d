"""Checked by mypy --strict in test_memory_and_types.py: typical use of the public API."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from torch.utils.data import DataLoader

import editshard
from editshard.torch import EditDataset, IterableEditDataset, Pipeline


def first_pixels(location: str) -> npt.NDArray[np.uint8]:
    ds: editshard.Dataset = editshard.open(location, images=["source"], timeout=10.0)
    rec: editshard.Record = ds[0]
    turn: editshard.Turn = rec.turns[0]
    instruction: str | None = turn.instruction
    assert instruction is None or isinstance(instruction, str)
    img: editshard.Image = rec.source
    data: editshard.ImageData | None = img.data
    if data is not None:
        raw: bytes = bytes(data)
        view = memoryview(data)
        assert len(raw) == view.nbytes
    sha: str = img.sha256
    width: int = img.width
    assert sha and width
    many: list[editshard.Record] = ds.get_many([0, 1])
    by_id: editshard.Record = ds.get(many[1].id)
    counts: dict[str, int] = ds.kinds
    assert by_id and counts
    try:
        ds.get("missing")
    except editshard.NotFoundError as e:
        shard: str | None = e.shard
        offset: int | None = e.offset
        assert shard is None or offset is None or offset >= 0
    return img.to_numpy(mode="RGB")


def loaders(location: str) -> None:
    def to_id(r: editshard.Record) -> str:
        return r.id

    m = EditDataset(location, transform=to_id)
    it = IterableEditDataset(location, batch_size=8, shuffle="block", seed=1, transform=to_id)
    it.set_epoch(1)
    state = it.state_dict()
    it.load_state_dict(state)
    for batch in DataLoader(it, batch_size=8, collate_fn=list):
        assert batch
    assert len(m) >= 0


def pipeline_batches(location: str) -> None:
    import torch

    pipe = Pipeline(
        (256, 320), crop="random", flip=0.5, dtype="bfloat16", mean=[0.5] * 3, std=[0.5] * 3
    )
    ds = IterableEditDataset(location, batch_size=8, seed=1, pipeline=pipe)
    for batch in DataLoader(ds, batch_size=None, num_workers=2):
        source: torch.Tensor = batch["source"]
        ids: list[str] = batch["id"]
        assert source.shape[0] == len(ids)
    m = EditDataset(location, pipeline=pipe, seed=3)
    m.set_epoch(2)
    box = pipe.placement(m.dataset[0], epoch=2, seed=3)
    assert box["flip"] in (True, False)
    try:
        editshard.decode_image(b"", max_decode_bytes=editshard.MAX_DECODE_BYTES)
    except editshard.DecodeError as e:
        assert e.kind in ("limit", "rejected")


def write_some(location: str, pixels: npt.NDArray[np.uint8], jpeg: bytes) -> int:
    src = editshard.Image(jpeg, url="https://x/a.jpg", scores={"q": 0.5})
    out: editshard.Image = editshard.Image.from_numpy(pixels, "PNG", caption="c")
    turn = editshard.Turn("Make it blue", edit_type="Color", output=out, rejected=[src])
    rec = editshard.Record("a/1", "preference", src, [turn], extras={"k": [1, 2]})
    with editshard.Writer(location, shard_size="64MiB", licence="CC-BY-4.0") as w:
        w.write(rec)
        n: int = w.write_many(iter([rec]))
    manifest: dict[str, object] = editshard.write(location + "-2", [rec], shard_size=1 << 20)
    saved = editshard.open(location).filter(kind="sft").save(location + "-sft")
    report = editshard.mix(location + "-all", {"a": location, "b": location + "-2"})
    return n + len(manifest) + len(saved) + int(report["records"])
