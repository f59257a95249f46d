"""An editshard dataset as a Hugging Face `datasets.IterableDataset` with typed features.

pip install datasets
python examples/huggingface.py DATASET
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import datasets

import editshard

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "kind": datasets.Value("string"),
        "instruction": datasets.Value("string"),
        "edit_type": datasets.Value("string"),
        "source": datasets.Image(),
        "edited": datasets.Image(),
    }
)


def rows(location: str, seed: int = 0, shards: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """Single-turn rows (sft and preference records: the chosen edit)."""
    ds = editshard.open(location)
    for rec in ds.iter(shuffle=True, seed=seed, kind=["sft", "preference"]):
        turn = rec.turns[0]
        yield {
            "id": rec.id,
            "kind": rec.kind,
            "instruction": turn.instruction or "",
            "edit_type": turn.edit_type or "",
            # datasets.Image() takes encoded bytes: no decoding here.
            "source": {"bytes": bytes(rec.source.data or b""), "path": None},
            "edited": {"bytes": bytes(turn.output.data or b""), "path": None},
        }


def as_hf(location: str, seed: int = 0) -> datasets.IterableDataset:
    return datasets.IterableDataset.from_generator(
        rows, features=FEATURES, gen_kwargs={"location": location, "seed": seed}
    )


if __name__ == "__main__":
    hf = as_hf(sys.argv[1])
    for row in hf.take(3):
        print(row["id"], row["edit_type"], row["source"].size, row["edited"].size)
