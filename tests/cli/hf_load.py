"""Loads an `editshard export --format hf-parquet` directory with the real Hugging Face
`datasets` library and prints what it sees as one JSON object, for export_hf.rs to check:

- `features`: each column's feature as `datasets` parsed it (`repr`), and the features of a
  turn, so the test sees `Image` where images are;
- `rows`: every row as stored (images as base64 of their bytes, exactly what `datasets`
  hands to PIL);
- `decoded`: for the ids given after the directory, the source and first output as PIL
  decoded them through the `Image` feature (mode and size);
- `files`: per Parquet file, its `huggingface` metadata key and, per row group, the rows, the
  bytes and each column's codec.

usage: python hf_load.py EXPORT_DIR [ID ...]
"""

import base64
import glob
import json
import os
import sys

import datasets
import pyarrow.parquet as pq


def plain(v):
    if isinstance(v, bytes):
        return {"b64": base64.b64encode(v).decode()}
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def main() -> None:
    root = sys.argv[1]
    decode_ids = set(sys.argv[2:])
    pattern = os.path.join(root, "data", "train-*.parquet")
    paths = sorted(glob.glob(pattern))
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    if total:
        ds = datasets.load_dataset("parquet", data_files={"train": pattern}, split="train")
        feats = ds.features
    else:
        # `datasets` refuses to build a split with no rows ("corresponds to no data"): read
        # the features the way it does, from the file's Arrow schema.
        ds = None
        feats = datasets.Features.from_arrow_schema(pq.read_schema(paths[0]))
    turns = feats["turns"]
    turn = turns.feature if hasattr(turns, "feature") else turns[0]
    features = {name: repr(f) for name, f in feats.items()}
    turn_features = {name: repr(f) for name, f in turn.items()}
    image_columns = {
        "source_image": isinstance(feats["source_image"], datasets.Image),
        "turn.output": isinstance(turn["output"], datasets.Image),
        "turn.mask": isinstance(turn["mask"], datasets.Image),
        "turn.rejected[]": isinstance(
            turn["rejected"].feature
            if hasattr(turn["rejected"], "feature")
            else turn["rejected"][0],
            datasets.Image,
        ),
    }
    rows = [] if ds is None else [plain(r) for r in ds.with_format("arrow")[:].to_pylist()]
    decoded = {}
    for i, rid in enumerate([] if ds is None else ds["id"]):
        if rid in decode_ids:
            row = ds[i]
            src = row["source_image"]
            out = row["turns"][0]["output"] if row["turns"] else None
            decoded[rid] = {
                "source": [type(src).__module__, src.mode, list(src.size)],
                "output": None if out is None else [type(out).__module__, out.mode, list(out.size)],
            }
    files = []
    for path in paths:
        f = pq.ParquetFile(path)
        meta = f.metadata
        groups = []
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            codecs = {
                rg.column(c).path_in_schema: rg.column(c).compression for c in range(rg.num_columns)
            }
            groups.append({"rows": rg.num_rows, "bytes": rg.total_byte_size, "codecs": codecs})
        kv = meta.metadata or {}
        files.append(
            {
                "name": os.path.relpath(path, root),
                "huggingface": kv.get(b"huggingface", b"").decode(),
                "row_groups": groups,
            }
        )
    json.dump(
        {
            "datasets_version": datasets.__version__,
            "features": features,
            "turn_features": turn_features,
            "image_columns": image_columns,
            "rows": rows,
            "decoded": decoded,
            "files": files,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
