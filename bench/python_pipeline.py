#!/usr/bin/env python3
"""Training throughput: (source, output) pairs per second as 512x512 float32 tensors with a
paired random crop and flip, out of a 2-worker DataLoader, in one run.

    python bench/python_pipeline.py [--rows 100] [--reps 3] [--workdir DIR --keep | --reuse]

(or `bash bench/python.sh --pipeline`). The data is `bench/python_bench.py`'s: the realistic
release (`gen_bench_release --realistic`: 0.7-1.5 MB PNG edits at the editor's sizes, 150-400
kB JPEG sources of 512-1024 px), converted with `editshard convert`, exported as WebDataset
tars, and written by each peer's own writer (MDS, LitData, Parquet for Hugging Face
`datasets`) when its library is installed. Pipelines compared:

- editshard's `Pipeline` (Rust: decode, resize, crop, flip, convert into the batch), with and
  without the scaled JPEG decode, and with uint8 output for reference (a quarter of the bytes
  to write into shared memory and hand to the main process);
- editshard records, WebDataset, MDS, LitData and `datasets` (Parquet), each read with its own
  library and decoded with Pillow, then the same torchvision v2 transforms: each image resized
  (shorter side 512, antialiased; the output straight to the source's resized size), then
  `RandomCrop(512)`, `RandomHorizontalFlip(0.5)` and `ToDtype(float32, scale=True)` applied to
  the pair as `tv_tensors.Image`s (one crop and flip for both), default collate;
- the ceiling: the same (source, output) images decoded only, whole, in Rust
  (`Image.to_numpy()`, the image crate), in the same 2 workers.

Every figure is the median of --reps epochs, each in its own subprocess (fresh workers), the
pipelines taken in turn (rep 1 of each, then rep 2, ...).
Prints a Markdown table and writes it to --out.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pybench_common as common  # noqa: E402
import python_bench as pb  # noqa: E402

SIZE = 512
NAMES = [
    "editshard-pipeline",
    "editshard-pipeline-whole-jpeg",
    "editshard-pipeline-uint8",
    "ceiling",
    "editshard-tv",
    "webdataset-tv",
    "mds-tv",
    "litdata-tv",
    "hf-tv",
]
LABEL = {
    "editshard-pipeline": "editshard `Pipeline` (Rust)",
    "editshard-pipeline-whole-jpeg": "editshard `Pipeline`, `scaled_jpeg=False`",
    "editshard-pipeline-uint8": 'editshard `Pipeline`, `dtype="uint8"` (reference: 1/4 the bytes)',
    "ceiling": "ceiling: decode only, whole images, Rust (`to_numpy`)",
    "editshard-tv": "editshard records + PIL + torchvision v2",
    "webdataset-tv": "WebDataset + PIL + torchvision v2",
    "mds-tv": "MDS (`mosaicml-streaming`) + PIL + torchvision v2",
    "litdata-tv": "LitData + PIL + torchvision v2",
    "hf-tv": "Hugging Face `datasets` (Parquet) + PIL + torchvision v2",
}
PEERS = ["editshard-tv", "webdataset-tv", "mds-tv", "litdata-tv", "hf-tv"]
WRITTEN = {"mds-tv": "mds", "litdata-tv": "litdata", "hf-tv": "parquet"}


# --------------------------------------------------------------------------------------------
# The torchvision pipeline every peer runs (in the DataLoader workers)

_TV: Any = None


def tv_pair(src_bytes: Any, out_bytes: Any) -> tuple[Any, Any]:
    global _TV
    import torch
    from PIL import Image
    from torchvision import tv_tensors
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    if _TV is None:
        _TV = v2.Compose(
            [
                v2.RandomCrop(SIZE),
                v2.RandomHorizontalFlip(0.5),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )

    def load(b: Any) -> Any:
        return tv_tensors.Image(F.pil_to_tensor(Image.open(io.BytesIO(b)).convert("RGB")))

    src = F.resize(load(src_bytes), SIZE, antialias=True)
    out = F.resize(load(out_bytes), list(src.shape[-2:]), antialias=True)
    return _TV(src, out)


def es_pair(rec: Any) -> tuple[Any, Any]:
    return tv_pair(rec.source.data, rec.turns[0].output.data)


def wds_pair(s: dict[str, Any]) -> tuple[Any, Any]:
    src = next(v for k, v in s.items() if k.startswith("src."))
    out = next(v for k, v in s.items() if k.startswith(("edit.", "turn1.")))
    return tv_pair(src, out)


def numbered_pair(s: dict[str, Any]) -> tuple[Any, Any]:
    # MDS and LitData rows: img0 is the source, img1 the first turn's output.
    return tv_pair(s["img0"], s["img1"])


class HFPairs:
    """Map-style over a `datasets.Dataset` read from the Parquet file; a DataLoader batch is
    one `ds[indices]`."""

    def __init__(self, path: str) -> None:
        import datasets

        self.ds = datasets.Dataset.from_parquet(path)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> Any:
        return self.__getitems__([i])[0]

    def __getitems__(self, idx: list[int]) -> list[Any]:
        return [tv_pair(im[0], im[1]) for im in self.ds[list(idx)]["images"]]


class DecodeOnly:
    """The ceiling: get_many, then both images decoded whole in Rust, nothing else."""

    def __init__(self, path: str) -> None:
        import editshard

        self.ds = editshard.open(path, images=("source", "outputs"))

    def __len__(self) -> int:
        return len(self.ds)

    def __getitems__(self, idx: list[int]) -> list[int]:
        for rec in self.ds.get_many(list(idx)):
            rec.source.to_numpy()
            rec.turns[0].output.to_numpy()
        return [len(idx)]


def first(batch: Any) -> Any:
    return batch


# --------------------------------------------------------------------------------------------
# One measurement (a child process)


def measure(name: str, w: Path, batch: int, workers: int) -> dict[str, Any]:
    import torch.utils.data as tud

    ds_path = str(w / "ds")
    kw: dict[str, Any] = {"num_workers": workers}
    if name.startswith("editshard-pipeline"):
        from editshard.torch import IterableEditDataset, Pipeline

        pipe = Pipeline(
            SIZE,
            crop="random",
            flip=0.5,
            dtype="uint8" if name.endswith("uint8") else "float32",
            images=("source", "output"),
            scaled_jpeg=not name.endswith("whole-jpeg"),
        )
        d: Any = IterableEditDataset(
            ds_path, batch_size=batch, shuffle=False, pipeline=pipe, equal_steps=None
        )
        loader: Any = tud.DataLoader(d, batch_size=None, **kw)
        count = lambda b: b["source"].shape[0]  # noqa: E731
    elif name == "ceiling":
        loader = tud.DataLoader(DecodeOnly(ds_path), batch_size=batch, collate_fn=first, **kw)
        count = lambda b: b[0]  # noqa: E731
    else:
        if name == "editshard-tv":
            from editshard.torch import EditDataset

            d = EditDataset(ds_path, transform=es_pair, images=("source", "outputs"))
            loader = tud.DataLoader(d, batch_size=batch, **kw)
        elif name == "webdataset-tv":
            import webdataset as wds

            urls = sorted(str(p) for p in (w / "wds").glob("*.tar"))
            d = wds.WebDataset(urls, shardshuffle=False, empty_check=False).map(wds_pair)
            loader = tud.DataLoader(d, batch_size=batch, **kw)
        elif name == "mds-tv":
            pb.stub_transformers()
            from streaming import StreamingDataset
            from streaming.base.util import clean_stale_shared_memory

            clean_stale_shared_memory()

            class MDSPairs(StreamingDataset):  # type: ignore[misc]
                def __getitem__(self, i: int) -> Any:
                    return numbered_pair(super().__getitem__(i))

            d = MDSPairs(local=str(w / "mds"), shuffle=False, batch_size=batch)
            loader = tud.DataLoader(d, batch_size=batch, **kw)
        elif name == "litdata-tv":
            import litdata

            d = litdata.StreamingDataset(str(w / "litdata"), transform=numbered_pair)
            loader = litdata.StreamingDataLoader(d, batch_size=batch, **kw)
        elif name == "hf-tv":
            loader = tud.DataLoader(
                HFPairs(str(w / "parquet" / "data.parquet")), batch_size=batch, **kw
            )
        else:
            raise ValueError(name)
        count = lambda b: b[0].shape[0]  # noqa: E731
    t0 = time.perf_counter()
    pairs = 0
    for b in loader:
        pairs += count(b)
    return {"seconds": time.perf_counter() - t0, "pairs": pairs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=int(os.environ.get("ROWS", "100")))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-size", default="auto")
    ap.add_argument("--names", default=",".join(NAMES))
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse a kept workdir's data")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--out", default="/tmp/editshard-pipeline-bench.md")
    args = ap.parse_args()
    names = [n for n in args.names.split(",") if n]
    start = time.perf_counter()
    w = common.workdir(args.workdir, args.reuse, "editshard-pipebench.")
    log = common.logger(start)

    try:
        if not (args.reuse and (w / "counts.json").exists()):
            log(f"generating, converting and exporting {args.rows} rows")
            pb.prepare(args, w)
        info = json.loads((w / "counts.json").read_text())
        written: dict[str, str] = {}
        for name in names:
            fmt = WRITTEN.get(name)
            if fmt is None or ((w / fmt).exists() and (w / f"{fmt}.written").exists()):
                continue
            log(f"writing {fmt}")
            res = pb.child(["_write", fmt, w], args.timeout)
            if "error" in res:
                written[name] = res["error"]
            else:
                (w / f"{fmt}.written").write_text(json.dumps(res))
        common.warm_page_cache(w)
        load_before = os.getloadavg()
        results: dict[str, dict[str, Any]] = {}
        # Round-robin: rep 1 of every pipeline, then rep 2, ...: on a shared machine a change
        # of load then spreads over all the rows instead of landing on one of them.
        measured = [n for n in names if n not in written]
        runs_of: dict[str, list[dict[str, Any]]] = {n: [] for n in measured}
        for rep in range(args.reps):
            for name in measured:
                log(f"{name} ({rep + 1}/{args.reps})")
                runs_of[name].append(
                    common.child(
                        __file__, ["_measure", name, w, args.batch, args.workers], args.timeout
                    )
                )
        for name in names:
            if name in written:
                results[name] = {"error": "not written: " + written[name]}
                continue
            runs = runs_of[name]
            errors = [r for r in runs if "error" in r]
            if errors:
                print(errors[0].get("stderr", ""), file=sys.stderr)
                results[name] = {"error": errors[0]["error"]}
            else:
                rates = [r["pairs"] / r["seconds"] for r in runs]
                results[name] = {"rate": statistics.median(rates), "pairs": runs[0]["pairs"]}
        load_after = os.getloadavg()
        table = render(results, info, args, load_before, load_after)
        print(table)
        Path(args.out).write_text(table)
    finally:
        if not args.keep and not args.reuse:
            shutil.rmtree(w, ignore_errors=True)


def render(
    results: dict[str, dict[str, Any]],
    info: dict[str, Any],
    args: argparse.Namespace,
    before: tuple[float, float, float],
    after: tuple[float, float, float],
) -> str:
    rates = {n: r["rate"] for n, r in results.items() if "rate" in r}
    best_peer = max((rates[n] for n in PEERS if n in rates), default=None)
    ceiling = rates.get("ceiling")
    lines = [
        f"Pairs/s of (source, output) {SIZE}x{SIZE} float32 tensors, paired random crop and "
        f"flip, {args.workers}-worker DataLoader, batches of {args.batch}; {info['records']} "
        f"records of the realistic release, page cache warm; median of {args.reps} epochs, "
        f"each in a fresh process. {os.cpu_count()} CPUs; load average "
        f"{before[0]:.2f} before, {after[0]:.2f} after.",
        "",
        "| pipeline | pairs/s | vs best peer | vs ceiling |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        if "rate" not in r:
            lines.append(f"| {LABEL[name]} | {r['error']} | | |")
            continue
        vs_peer = f"{r['rate'] / best_peer:.2f}x" if best_peer else ""
        vs_ceiling = f"{r['rate'] / ceiling:.2f}x" if ceiling else ""
        lines.append(f"| {LABEL[name]} | {r['rate']:.1f} | {vs_peer} | {vs_ceiling} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        name, w, batch, workers = sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5]
        print("RESULT " + json.dumps(measure(name, w, int(batch), int(workers))), flush=True)
    else:
        main()
