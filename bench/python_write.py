#!/usr/bin/env python3
"""Writing a dataset from Python: editshard.Writer against the writers a user would pick
instead, on the same records, in one run.

    python bench/python_write.py [--records 600] [--image-kb 400] [--reps 3] [--out FILE]

(or `bash bench/python_write.sh`, which uses the benchmark venv). The records are what a
generation loop hands a writer: an id, metadata (instruction, edit type, a judge's scores)
and encoded images (a source, an edit, and for one record in four a rejected edit), every
image distinct (a PNG header followed by noise, sliced from a pool: no writer can
deduplicate, and nothing is encoded inside the timed loop). Each writer gets the records one
at a time from the same generator and writes them to the local disk:

- editshard: `editshard.Writer` (each image made with `editshard.Image(bytes)`, which reads
  its header and hashes it), shards of 512 MiB;
- WebDataset: `webdataset.ShardWriter`, tar shards of 512 MB;
- MosaicML MDS: `streaming.MDSWriter`, no compression, shards of 512 MB;
- LitData: `litdata.optimize` over the record indices, one worker, chunks of 512 MB;
- Lance: `lance.write_dataset` from a `pyarrow.RecordBatchReader` of 32-record batches;
- floor: the generator alone, every image's bytes touched.

The clock starts after the writer's library is imported and the generator made, and stops
once every file written is fsynced (editshard syncs each shard itself; the others leave their
files in the page cache), so each row is the time until the data is on disk. MB/s counts the
image bytes handed in; CPU time is user + system of the process and its children over the
same span (what the machine's load does not change much). Peak RSS is the largest of the process and its children (`VmHWM`,
`RUSAGE_CHILDREN`; LitData writes in a worker process), next to the RSS before writing (the
interpreter, the imports and the generator's 32 MiB pool). Each (writer, repetition) runs in a
process of its own, the writers interleaved. The load average of the machine is printed before
and after the run (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

WRITERS = ["floor", "editshard", "webdataset", "mds", "litdata", "lance"]
LABEL = {
    "floor": "the record generator alone (floor)",
    "editshard": "editshard `Writer`",
    "webdataset": "WebDataset `ShardWriter`",
    "mds": "MosaicML `MDSWriter`",
    "litdata": "LitData `optimize`",
    "lance": "Lance `write_dataset`",
}
SHARD_BYTES = 512 << 20


# --------------------------------------------------------------------------------------------
# The records (the same bytes for every writer)


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


class Records:
    """Record i as (id, kind, metadata dict, [image bytes]), from a seeded noise pool."""

    def __init__(self, n: int, image_bytes: int) -> None:
        import random

        self.n = n
        self.image_bytes = image_bytes
        self.header = png_header(1024, 768)
        self.pool = random.Random(42).randbytes(32 << 20)

    def image(self, k: int) -> bytes:
        off = (k * 7919 + k // 3) % (len(self.pool) - self.image_bytes)
        return self.header + self.pool[off : off + self.image_bytes]

    def record(self, i: int) -> tuple[str, str, dict, list[bytes]]:
        kind = "preference" if i % 4 == 3 else "sft"
        images = [self.image(3 * i), self.image(3 * i + 1)]
        if kind == "preference":
            images.append(self.image(3 * i + 2))
        meta = {
            "instruction": f"Make the sky in photo {i} a deep purple at dusk",
            "short_instruction": "purple sky",
            "edit_type": "Change overall color tone (warm ↔ cool)",
            "scores": {"instruction_compliance": (i % 10) / 10, "quality": 0.9},
        }
        return f"gen/{i:08d}", kind, meta, images

    def __iter__(self):
        for i in range(self.n):
            yield self.record(i)

    def image_total(self) -> int:
        return sum(len(b) for _, _, _, imgs in self for b in imgs)


# --------------------------------------------------------------------------------------------
# The writers: each writes every record of `records` under `out`.


def write_floor(records: Records, out: Path) -> None:
    n = 0
    for _, _, meta, images in records:
        n += sum(b[-1] for b in images) + len(json.dumps(meta))
    (out / "floor").write_text(str(n))


def write_editshard(records: Records, out: Path) -> None:
    import editshard

    def recs():
        for rid, kind, meta, images in records:
            turn = editshard.Turn(
                meta["instruction"],
                short_instruction=meta["short_instruction"],
                edit_type=meta["edit_type"],
                output=editshard.Image(images[1], scores=meta["scores"]),
                rejected=[editshard.Image(b) for b in images[2:]],
            )
            yield editshard.Record(rid, kind, editshard.Image(images[0]), [turn])

    editshard.write(out / "ds", recs(), shard_size=SHARD_BYTES)


def write_webdataset(records: Records, out: Path) -> None:
    import webdataset as wds

    (out / "wds").mkdir()
    pattern = str(out / "wds" / "shard-%06d.tar")
    with wds.ShardWriter(pattern, maxsize=SHARD_BYTES, verbose=0) as sink:
        for rid, kind, meta, images in records:
            sample = {"__key__": rid.replace("/", "_"), "json": {"kind": kind, **meta}}
            sample["source.png"] = images[0]
            sample["output.png"] = images[1]
            for j, b in enumerate(images[2:]):
                sample[f"rejected{j}.png"] = b
            sink.write(sample)


def write_mds(records: Records, out: Path) -> None:
    from streaming import MDSWriter

    columns = {"id": "str", "kind": "str", "meta": "json", "source": "bytes", "output": "bytes",
               "rejected": "pkl"}
    with MDSWriter(out=str(out / "mds"), columns=columns, size_limit=SHARD_BYTES) as sink:
        for rid, kind, meta, images in records:
            sink.write({"id": rid, "kind": kind, "meta": meta, "source": images[0],
                        "output": images[1], "rejected": images[2:]})


def write_litdata(records: Records, out: Path) -> None:
    import litdata

    litdata.optimize(
        fn=LitdataSample(records.n, records.image_bytes),
        inputs=list(range(records.n)),
        output_dir=str(out / "litdata"),
        chunk_bytes=SHARD_BYTES,
        num_workers=1,
        mode="overwrite",
    )


class LitdataSample:
    """litdata's `fn`, run in its worker process: record i, from a generator made there (only
    the parameters are pickled, not the pool)."""

    def __init__(self, n: int, image_bytes: int) -> None:
        self.n, self.image_bytes = n, image_bytes
        self.records: Records | None = None

    def __getstate__(self) -> dict:
        return {"n": self.n, "image_bytes": self.image_bytes, "records": None}

    def __call__(self, i: int) -> dict:
        if self.records is None:
            self.records = Records(self.n, self.image_bytes)
        rid, kind, meta, images = self.records.record(i)
        return {"id": rid, "kind": kind, "meta": json.dumps(meta), "source": images[0],
                "output": images[1], "rejected": b"".join(images[2:])}


def write_lance(records: Records, out: Path) -> None:
    import lance
    import pyarrow as pa

    schema = pa.schema([
        ("id", pa.string()), ("kind", pa.string()), ("meta", pa.string()),
        ("source", pa.large_binary()), ("output", pa.large_binary()),
        ("rejected", pa.list_(pa.large_binary())),
    ])

    def batches():
        batch: list = []
        for rec in records:
            batch.append(rec)
            if len(batch) == 32:
                yield to_batch(batch)
                batch = []
        if batch:
            yield to_batch(batch)

    def to_batch(batch: list) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([
            pa.array([r[0] for r in batch], pa.string()),
            pa.array([r[1] for r in batch], pa.string()),
            pa.array([json.dumps(r[2]) for r in batch], pa.string()),
            pa.array([r[3][0] for r in batch], pa.large_binary()),
            pa.array([r[3][1] for r in batch], pa.large_binary()),
            pa.array([r[3][2:] for r in batch], pa.list_(pa.large_binary())),
        ], schema=schema)

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    lance.write_dataset(reader, str(out / "lance"), max_bytes_per_file=SHARD_BYTES)


# --------------------------------------------------------------------------------------------
# One measurement per process


IMPORTS = {
    "floor": [],
    "editshard": ["editshard"],
    "webdataset": ["webdataset"],
    "mds": ["streaming"],
    "litdata": ["litdata"],
    "lance": ["lance", "pyarrow"],
}


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def sync_files(out: Path) -> int:
    """fsyncs every file under `out` (this writer's data only: `os.sync` would wait for the
    whole machine's) and returns their total size."""
    total = 0
    for p in out.rglob("*"):
        if p.is_file():
            total += p.stat().st_size
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return total


def measure(writer: str, n: int, image_bytes: int, out: Path) -> dict:
    import importlib

    for module in IMPORTS[writer]:  # imports are not timed
        importlib.import_module(module)
    records = Records(n, image_bytes)
    base = rss_mb("VmRSS")
    fn = globals()[f"write_{writer}"]

    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    cpu_start = cpu()
    start = time.perf_counter()
    fn(records, out)
    on_disk = sync_files(out)
    seconds = time.perf_counter() - start
    cpu_seconds = cpu() - cpu_start
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": max(rss_mb("VmHWM"), children),
        "base_rss_mb": base,
        "bytes_on_disk": on_disk,
    }


def run_one(writer: str, args: argparse.Namespace, work: Path) -> dict:
    out = work / f"{writer}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", writer, "--records", str(args.records),
         "--image-kb", str(args.image_kb), "--workdir", str(out)],
        capture_output=True, text=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=600)
    ap.add_argument("--image-kb", type=int, default=400)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--writers", default=",".join(WRITERS))
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--out", type=Path, default=Path("/tmp/editshard-python-write-bench.md"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    image_bytes = args.image_kb * 1000
    if args.child:
        print(json.dumps(measure(args.child, args.records, image_bytes, args.workdir)))
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="editshard-write-bench."))
    writers = args.writers.split(",")
    total = Records(args.records, image_bytes).image_total()
    load_before = os.getloadavg()
    results: dict[str, list[dict]] = {w: [] for w in writers}
    for rep in range(args.reps):
        for w in writers:  # interleaved: a burst of load hits every writer alike
            r = run_one(w, args, work)
            results[w].append(r)
            shown = r.get("error") or f"{r['seconds']:.2f} s, {r['peak_rss_mb']:.0f} MB"
            print(f"rep {rep + 1}/{args.reps} {w}: {shown}", file=sys.stderr)
    load_after = os.getloadavg()
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)

    def med(w: str, key: str) -> float | None:
        ok = [r[key] for r in results[w] if "error" not in r]
        return statistics.median(ok) if ok else None

    es = med("editshard", "seconds") if "editshard" in writers else None
    lines = [
        f"Python write: {args.records} records, {total / 1e6:.0f} MB of images "
        f"({args.image_kb} kB each; 1 record in 4 with a rejected edit); median of "
        f"{args.reps}; load average {load_before[0]:.2f} / {load_before[1]:.2f} before, "
        f"{load_after[0]:.2f} / {load_after[1]:.2f} after (1 / 5 min), {os.cpu_count()} CPUs",
        "",
        "| writer | MB/s of images | time (s) | editshard's MB/s / this | CPU time (s) | "
        "peak RSS (MB) | RSS before writing (MB) | on disk (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in writers:
        secs = med(w, "seconds")
        if secs is None:
            err = next(r["error"] for r in results[w])
            lines.append(f"| {LABEL[w]} | failed: {err} | | | | | | |")
            continue
        ratio = f"{secs / es:.2f}" if es and w != "floor" else ""
        lines.append(
            f"| {LABEL[w]} | {total / 1e6 / secs:.0f} | {secs:.2f} | {ratio} | "
            f"{med(w, 'cpu_seconds'):.2f} | {med(w, 'peak_rss_mb'):.0f} | {med(w, 'base_rss_mb'):.0f} | "
            f"{med(w, 'bytes_on_disk') / 1e6:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
