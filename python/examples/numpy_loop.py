"""Reading an editshard dataset without PyTorch: a plain NumPy/PIL loop.

python examples/numpy_loop.py DATASET      # a path, https://... or s3://bucket/prefix
"""

from __future__ import annotations

import sys

import numpy as np

import editshard


def main(location: str) -> None:
    ds = editshard.open(location)  # reads manifest.json only
    print(f"{len(ds)} records, kinds {ds.kinds}")

    # Shuffled epoch, source and output images only (rejected ones are never fetched).
    pairs = 0
    for rec in ds.iter(shuffle=True, seed=0, images=["source", "outputs"]):
        src = rec.source.to_numpy(mode="RGB")  # uint8 (H, W, 3), decoded with the GIL released
        for turn in rec.turns:
            out = turn.output.to_numpy(mode="RGB")
            assert src.dtype == out.dtype == np.uint8
            pairs += 1
    print(f"{pairs} (source, edited) pairs decoded")

    # Random access and PIL.
    rec = ds[0]
    print(rec.id, rec.kind, repr(rec.turns[0].instruction))
    pil = rec.turns[0].output.to_pil()
    print("output image:", pil.size, pil.mode)


if __name__ == "__main__":
    main(sys.argv[1])
