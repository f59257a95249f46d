#!/usr/bin/env python3
"""Ray Data read throughput: editshard.ray.read_editshard against ray.data.read_webdataset and
ray.data.read_parquet over the same records, in one Ray session of 2 CPUs.

    python bench/ray_read.py [--rows 200] [--small-rows 4000] [--reps 3] [--workdir DIR]

(or `bash bench/ray_read.sh`, which builds what it needs). Two datasets of the same kinds of
records as `bench/run.sh`'s release (`gen_bench_release`, Pico-Banana-400K's sft/preference/
multi-turn split, converted with `editshard convert`): "realistic", whose images are then
redrawn as random pixels of the real release's weights (PNG edits of 0.7-1.5 MB, JPEG sources
of 150-400 KB; written again with `editshard.Writer`, shared images still shared) so the bytes
dominate, and "small", with the generator's 64 px images (~1-10 KB), so the per-row work
dominates. Each is exported with `editshard export --format webdataset` and
`--format hf-parquet`, so the three readers see the same records and the same image bytes.

Each reader produces every record with every image's bytes (WebDataset without decoding:
`decoder=None`; Parquet's image structs as they are), consumed on the driver with
`iter_batches(batch_format="pyarrow")`. Ray picks the number of read tasks for every reader.
A metadata-only row compares `read_editshard(images="none")` with `read_parquet` of the
non-image columns. Every figure is the median of --reps runs (rows/s) with its ratios to
`read_parquet` and `read_webdataset` in the same run; the load average before and after is
printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SPLIT = (257730, 56473, 72000)  # sft, preference, multi-turn in Pico-Banana-400K


def log(msg: str) -> None:
    print(f"[ray_read] {msg}", file=sys.stderr, flush=True)


def run(args: list[Any], **kw: Any) -> None:
    subprocess.run([str(a) for a in args], check=True, **kw)


def binaries() -> Path:
    env = os.environ.get("BIN_DIR")
    if env:
        return Path(env)
    for profile in ("release", "debug"):
        d = REPO / "target" / profile
        if (d / "editshard").exists() and (d / "gen_bench_release").exists():
            return d
    raise SystemExit("build editshard and gen_bench_release first (bench/ray_read.sh does)")


def reimage(src: Path, out: Path, seed: int) -> None:
    """`src`'s records written again to `out` with editshard.Writer, every image replaced by
    random pixels of the real release's weights (edits: PNG of 0.7-1.5 MB; sources: JPEG of
    150-400 KB), an image shared by several records still shared. The release generator's own
    `--realistic` images take minutes to draw without a release build; these take seconds."""
    import io

    import editshard
    import numpy as np
    from editshard._arrow import row_record
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    made: dict[str, bytes] = {}

    def redraw(image: dict[str, Any]) -> None:
        key = image["sha256"]
        if key not in made:
            jpeg = image["media_type"] == "image/jpeg"
            target = rng.uniform(150e3, 400e3) if jpeg else rng.uniform(0.7e6, 1.5e6)
            side = int((target / (0.9 if jpeg else 3.0)) ** 0.5)
            aspect = rng.choice([1.0, 1.5, 2 / 3, 1.37])
            w, h = max(16, int(side * aspect**0.5)), max(16, int(side / aspect**0.5))
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            buf = io.BytesIO()
            if jpeg:
                PILImage.fromarray(pixels).save(buf, "JPEG", quality=90)
            else:
                PILImage.fromarray(pixels).save(buf, "PNG", compress_level=1)
            made[key] = buf.getvalue()
        image["bytes"] = made[key]

    ds = editshard.open(src)
    total = 0
    records = []
    for row in editshard._native.record_rows(ds[:]):
        for image in [row["source"]] + [
            i for t in row["turns"] for i in [t["output"], *t["rejected"], t["mask"]] if i
        ]:
            redraw(image)
            total += len(image["bytes"])
        records.append(row_record(row))
    shard = max(1 << 20, total // 8)  # about 8 shards, so every reader can split the work
    with editshard.Writer(out, shard_size=shard) as writer:
        writer.write_many(records)


def prepare(
    w: Path, name: str, rows: int, gen_args: list[str], seed: int, redraw: bool
) -> dict[str, Any]:
    """Generates, converts and exports one release under w/name; returns its counts."""
    bin_dir = binaries()
    base = w / name
    if (base / "counts.json").exists():
        return dict(json.loads((base / "counts.json").read_text()))
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    total = sum(SPLIT)
    sft = round(rows * SPLIT[0] / total)
    pref = round(rows * SPLIT[1] / total)
    mt = rows - sft - pref
    rel = base / "rel"
    log(f"{name}: generating {rows} rows ({' '.join(gen_args)})")
    run(
        [bin_dir / "gen_bench_release", rel, "--sft", sft, "--preference", pref]
        + ["--multi-turn", mt, "--seed", seed, *gen_args],
        stdout=subprocess.DEVNULL,
    )
    images = sum(f.stat().st_size for f in rel.rglob("*") if f.suffix in (".png", ".jpg"))
    # About 8 shards (and so 8 WebDataset tars), so every reader can split the work.
    shard = max(1 << 20, images // 8)
    log(f"{name}: converting ({images / 1e6:.0f} MB of images, shards of {shard >> 20} MiB)")
    csv = rel / "openimages" / "train-images-boxable-with-rotation.csv"
    run(
        [
            bin_dir / "editshard",
            "convert",
            rel,
            "--out",
            base / "ds",
            "--shard-size",
            shard,
        ]
        + ["--openimages-csv", csv, "--openimages-dir", rel / "openimages"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    shutil.rmtree(base / "ds" / ".editshard-work", ignore_errors=True)
    if redraw:
        log(f"{name}: redrawing the images at the real release's sizes")
        (base / "ds").rename(base / "ds-small")
        reimage(base / "ds-small", base / "ds", seed)
        shutil.rmtree(base / "ds-small")
    ds_bytes = json.loads((base / "ds" / "manifest.json").read_text())["bytes"]
    log(f"{name}: exporting WebDataset and Parquet")
    run(
        [bin_dir / "editshard", "export", base / "ds", "--to", base / "wds"]
        + ["--format", "webdataset"],
        stdout=subprocess.DEVNULL,
    )
    run(
        [bin_dir / "editshard", "export", base / "ds", "--to", base / "hf"]
        + ["--format", "hf-parquet", "--file-size", str(max(1 << 20, ds_bytes // 8))],
        stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(rel)  # the readers never look at it
    manifest = json.loads((base / "ds" / "manifest.json").read_text())
    counts = {
        "records": manifest["records"],
        "shards": len(manifest["shards"]),
        "image_bytes": manifest["images"]["bytes_referenced"],
        "images": manifest["images"]["referenced"],
        "tars": len(list((base / "wds").glob("*.tar"))),
        "parquet_files": len(list((base / "hf").rglob("*.parquet"))),
        "gen": " ".join(gen_args) + (", images redrawn at real sizes" if redraw else ""),
    }
    (base / "counts.json").write_text(json.dumps(counts))
    return counts


def consume(ds: Any) -> tuple[int, int]:
    """Pulls every row to the driver as Arrow batches; returns (rows, bytes held)."""
    rows = size = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        rows += batch.num_rows
        size += batch.nbytes
    return rows, size


def readers(base: Path) -> dict[str, Callable[[], Any]]:
    import editshard.ray
    import ray.data

    parquet = sorted(str(p) for p in (base / "hf").rglob("*.parquet"))
    tars = sorted(str(p) for p in (base / "wds").glob("*.tar"))
    import pyarrow.parquet as pq

    schema = pq.read_schema(parquet[0])
    text_columns = [
        f.name for f in schema if "bytes" not in str(f.type) and "binary" not in str(f.type)
    ]
    return {
        "read_editshard": lambda: editshard.ray.read_editshard(base / "ds"),
        "read_webdataset": lambda: ray.data.read_webdataset(tars, decoder=None),
        "read_parquet": lambda: ray.data.read_parquet(parquet),
        'read_editshard, images="none"': lambda: editshard.ray.read_editshard(
            base / "ds", images="none"
        ),
        "read_parquet, non-image columns": lambda: ray.data.read_parquet(parquet).select_columns(
            text_columns
        ),
    }


def measure(base: Path, reps: int, records: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, make in readers(base).items():
        rows, size = consume(make())  # warm: page cache, worker processes, imports
        if rows != records:
            raise SystemExit(f"{name}: {rows} rows, expected {records}")
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            consume(make())
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
        out[name] = {"seconds": seconds, "rows_s": records / seconds, "bytes": size}
        log(f"{name}: {records / seconds:.0f} rows/s ({seconds:.2f} s, {size / 1e6:.0f} MB)")
    return out


def table(results: dict[str, dict[str, Any]], counts: dict[str, Any]) -> str:
    base = results["read_parquet"]["rows_s"]
    meta_base = results["read_parquet, non-image columns"]["rows_s"]
    lines = [
        (
            f"{counts['records']} records, {counts['images']} images, "
            f"{counts['image_bytes'] / 1e6:.0f} MB of image bytes "
            f"(`gen_bench_release {counts['gen']}`); {counts['shards']} shards, "
            f"{counts['tars']} tars, {counts['parquet_files']} Parquet files"
        ),
        "",
        "| reader | rows/s | MB/s (Arrow) | vs `read_parquet` | vs `read_webdataset` |",
        "|---|---:|---:|---:|---:|",
    ]
    wds = results["read_webdataset"]["rows_s"]
    for name, r in results.items():
        meta = "none" in name or "non-image" in name
        ref = meta_base if meta else base
        vs_wds = "" if meta else f"{r['rows_s'] / wds:.2f}"
        lines.append(
            f"| `{name}` | {r['rows_s']:.0f} | {r['bytes'] / r['seconds'] / 1e6:.0f} | "
            f"{r['rows_s'] / ref:.2f} | {vs_wds} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200, help="rows of the realistic release")
    ap.add_argument("--small-rows", type=int, default=4000, help="rows with 64 px images")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sets", default="realistic,small", help="which releases to measure")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workdir", type=Path, help="keep the data here (reused when present)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/editshard-ray-bench.md"))
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="editshard-ray-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        plans = {
            "realistic": (args.rows, True),
            "small": (args.small_rows, False),
        }
        sets = {
            name: prepare(work, name, rows, ["--px", "64"], args.seed, redraw)
            for name, (rows, redraw) in plans.items()
            if name in args.sets.split(",")
        }
        import ray

        load_before = os.getloadavg()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        sections = []
        for name, counts in sets.items():
            results = measure(work / name, args.reps, counts["records"])
            sections.append(f"### {name} images\n\n{table(results, counts)}")
        ray.shutdown()
        load_after = os.getloadavg()
        import editshard
        import pyarrow

        header = (
            f"Ray {ray.__version__}, pyarrow {pyarrow.__version__}, editshard "
            f"{editshard.__version__}, Python {platform.python_version()}, "
            f"{os.cpu_count()} cores; `ray.init(num_cpus=2)`; median of {args.reps} runs "
            f"after a warm-up run; load average {load_before[0]:.2f} before, "
            f"{load_after[0]:.2f} after (1 min)."
        )
        text = header + "\n\n" + "\n\n".join(sections) + "\n"
        print(text)
        args.out.write_text(text)
        log(f"written to {args.out}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
