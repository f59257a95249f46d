#!/usr/bin/env python3
"""editshard from Python against the formats a user would pick instead, in one run.

    python bench/python_bench.py [--rows 200] [--reps 5] [--workdir DIR] [--keep]

(or `bash bench/python.sh`, which uses the project's venv). Generates the `bench/run.sh` release
(`gen_bench_release --realistic`, same ROWS/SEED split), converts it with `editshard convert`,
exports WebDataset tars with `editshard export --format webdataset`, writes a copy of the same
records with each peer's own writer (Parquet via pyarrow, Lance via pylance, TFRecord via
tfrecord, MDS via mosaicml-streaming, LitData via litdata; writing timed apart), then measures
from Python, each format read with its own library:

- sequential read: every record, every image's bytes handed to Python (records/s, MB/s of image
  bytes), metadata JSON parsed where the format stores it as a string;
- random access, warm: p50/p99 latency of fetching one record with its images;
- a torch DataLoader with 4 workers decoding every image of every record to a uint8 tensor
  (the same PIL decode for every format), images/s; plus a profile of editshard's workers.

Every figure is the median of --reps repetitions with its ratio to the fastest peer in the same
run. Each (format, measurement) runs in its own subprocess, so a peer that crashes is recorded in
the table with its error and the run goes on. Prints a Markdown table and writes it to --out.
See bench/README.md ("Python read benchmark").
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pybench_common as common

REPO = Path(__file__).resolve().parent.parent
FORMATS = [
    "editshard",
    "editshard-full",
    "editshard-none",
    "webdataset",
    "tar",
    "wids",
    "parquet",
    "lance",
    "tfrecord",
    "mds",
    "litdata",
    "loose",
]
LABEL = {
    "editshard": 'editshard (`editshard`, default `verify="crc"`)',
    "editshard-full": 'editshard, `verify="full"` (reference: each image\'s SHA-256 too)',
    "editshard-none": 'editshard, `verify="none"` (reference: nothing checked)',
    "webdataset": "WebDataset tars (`webdataset`)",
    "tar": "the same tars, member index + `os.pread` (what users write)",
    "wids": "the same tars, indexed (`wids`)",
    "parquet": "Parquet (`pyarrow`)",
    "lance": "Lance (`pylance`)",
    "tfrecord": "TFRecord (`tfrecord`)",
    "mds": "MosaicML MDS (`mosaicml-streaming`)",
    "litdata": "LitData (`litdata`)",
    "loose": "loose files, `open().read()` (floor)",
}
PEERS = ["webdataset", "tar", "wids", "parquet", "lance", "tfrecord", "mds", "litdata"]
# What each format's reader imports: imported before a fresh process's clock starts (a
# DataLoader worker forked from the main process has them already).
MODULES = {
    "editshard": ["editshard", "editshard.torch"],
    "editshard-full": ["editshard", "editshard.torch"],
    "editshard-none": ["editshard", "editshard.torch"],
    "webdataset": ["webdataset"],
    "tar": ["tarfile"],
    "wids": ["wids"],
    "parquet": ["pyarrow.parquet", "pyarrow.dataset"],
    "lance": ["lance"],
    "tfrecord": ["tfrecord", "tfrecord.reader"],
    "mds": ["streaming"],
    "litdata": ["litdata"],
    "loose": [],
}
WRITTEN = ["parquet", "lance", "tfrecord", "mds", "litdata"]
BATCH = 4  # DataLoader batch size
WORKERS = 4
ROW_GROUP = 32  # Parquet rows per row group / batch size of the Arrow readers


def stub_transformers() -> None:
    """mosaicml-streaming 0.13 imports `transformers` at import time (for its own
    StreamingDataLoader's type checks, which this script does not use). In the project venv
    transformers refuses to import (it wants huggingface-hub<1.0, `datasets` needs >=1.31), so
    any `transformers.*` module is replaced by an empty stub in the MDS processes only."""
    import importlib.abc
    import importlib.machinery
    import types

    class Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name == "transformers" or name.startswith("transformers."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            m = types.ModuleType(spec.name)
            m.__path__ = []

            def getattr_(attr):
                if attr.startswith("__"):
                    raise AttributeError(attr)
                return type(attr, (), {})

            m.__getattr__ = getattr_
            return m

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Stub())


# --------------------------------------------------------------------------------------------
# Decoding (the same for every format)


def decode(buf):
    """Encoded image bytes (any buffer) -> uint8 HxWxC tensor, with Pillow."""
    import numpy as np
    import torch
    from PIL import Image

    return torch.from_numpy(np.array(Image.open(io.BytesIO(buf))))


def collate_list(batch):
    return batch


# --------------------------------------------------------------------------------------------
# Readers: each returns (id, metadata, [image buffers]) per record.


def es_images(rec):
    return [im.data for im in rec.images() if im.data is not None]


class EditshardReader:
    random_access = True

    verify = "crc"

    def __init__(self, w):
        import editshard

        self.path = str(w / "ds")
        self.ds = editshard.open(self.path, verify=self.verify)

    def __len__(self):
        return len(self.ds)

    def seq(self):
        for rec in self.ds.iter():
            yield rec.id, rec.kind, es_images(rec)

    def get(self, i):
        rec = self.ds[i]
        return rec.id, rec.kind, es_images(rec)

    def torch_dataset(self):
        from editshard.torch import EditDataset

        return EditDataset(
            self.path, transform=es_decode_record, verify=self.verify
        ), {}


class EditshardFullReader(EditshardReader):
    verify = "full"


class EditshardNoneReader(EditshardReader):
    verify = "none"


def es_decode_record(rec):
    return [decode(b) for b in es_images(rec)]


def es_native_decode_record(rec):
    import torch

    return [
        torch.from_numpy(im.to_numpy()) for im in rec.images() if im.data is not None
    ]


IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp")


class WebDatasetReader:
    random_access = False  # webdataset 1.x has no index (wids is not in webdataset 1.0)

    def __init__(self, w):
        import webdataset as wds

        self.wds = wds
        self.urls = sorted(str(p) for p in (w / "wds").glob("*.tar"))
        self.n = json.loads((w / "counts.json").read_text())["records"]

    def __len__(self):
        return self.n

    def seq(self):
        for s in self.wds.WebDataset(self.urls, shardshuffle=False, empty_check=False):
            yield s["__key__"], wds_meta(s), wds_images(s)

    def torch_dataset(self):
        d = self.wds.WebDataset(self.urls, shardshuffle=False, empty_check=False).map(
            wds_decode
        )
        return d, {}


WDS_NAME = re.compile(r"^((?:.*/|)[^./]+)[.]([^/]*)$")


def tar_index(w):
    """Every record of the exported tars as (key, tar path, [(member ext, offset, size)]), in
    order, from the tar headers (what a user indexing tars for random access writes once)."""
    import tarfile

    out = []
    for url in sorted(str(p) for p in (w / "wds").glob("*.tar")):
        with tarfile.open(url) as tf:
            for m in tf:
                if not m.isfile():
                    continue
                key, ext = WDS_NAME.match(m.name).groups()
                if not out or out[-1][0] != key or out[-1][1] != url:
                    out.append((key, url, []))
                out[-1][2].append((ext, m.offset_data, m.size))
    return out


class TarPreadReader:
    """The WebDataset tars read by a member index (built from the tar headers when opened)
    and one `os.pread` per member."""

    random_access = True

    def __init__(self, w):
        self.index = tar_index(w)
        self.fds = {}

    def __len__(self):
        return len(self.index)

    def _fd(self, url):
        fd = self.fds.get(url)
        if fd is None:
            fd = self.fds[url] = os.open(url, os.O_RDONLY)
        return fd

    def get(self, i):
        key, url, members = self.index[i]
        fd = self._fd(url)
        meta, imgs = None, []
        for ext, off, size in sorted(members):
            if ext.lower().endswith("json"):
                meta = json.loads(os.pread(fd, size, off))
            elif ("." + ext).lower().endswith(IMAGE_EXT):
                imgs.append(os.pread(fd, size, off))
        return key, meta, imgs

    def seq(self):
        for i in range(len(self.index)):
            yield self.get(i)


class WidsReader:
    """The WebDataset tars through `wids.ShardListDataset` (random access by index over
    tars; it indexes each tar's headers on first use), with no decoding."""

    random_access = True

    def __init__(self, w):
        import wids

        counts = {}
        for _key, url, _m in tar_index(w):
            counts[url] = counts.get(url, 0) + 1
        shards = [{"url": url, "nsamples": n} for url, n in sorted(counts.items())]
        self.ds = wids.ShardListDataset(
            shards, transformations=[], localname=lambda u: u
        )

    def __len__(self):
        return len(self.ds)

    def get(self, i):
        # wids hands out each member as a BytesIO over its bytes
        s = {
            k: (v.getvalue() if hasattr(v, "getvalue") else v)
            for k, v in self.ds[i].items()
        }
        return s["__key__"], wds_meta(s), wds_images(s)

    def seq(self):
        for i in range(len(self.ds)):
            yield self.get(i)


def wds_meta(s):
    for k, v in s.items():
        if k.endswith("json"):
            return json.loads(v)
    return None


def wds_images(s):
    return [s[k] for k in sorted(s) if k.lower().endswith(IMAGE_EXT)]


def wds_decode(s):
    return [decode(b) for b in wds_images(s)]


class ParquetReader:
    random_access = True

    def __init__(self, w):
        import pyarrow.dataset as pads
        import pyarrow.parquet as pq

        self.path = str(w / "parquet" / "data.parquet")
        self.pf = pq.ParquetFile(self.path)
        self.pds = pads.dataset(self.path, format="parquet")

    def __len__(self):
        return self.pf.metadata.num_rows

    def seq(self):
        for batch in self.pf.iter_batches(batch_size=ROW_GROUP):
            yield from arrow_rows(batch)

    def get(self, i):
        return next(arrow_rows(self.pds.take([i])))

    def torch_dataset(self):
        return ParquetTorch(self.path), {}


def arrow_rows(batch):
    ids = batch.column("id").to_pylist()
    metas = batch.column("meta").to_pylist()
    imgs = batch.column("images").to_pylist()
    for i, m, im in zip(ids, metas, imgs):
        yield i, json.loads(m), im


def _iterable_base():
    import torch.utils.data as tud

    return tud.IterableDataset


class ParquetTorch(_iterable_base()):
    """Row groups dealt round-robin to the DataLoader's workers (what users write)."""

    def __init__(self, path):
        self.path = path

    def __iter__(self):
        import pyarrow.parquet as pq
        import torch.utils.data as tud

        info = tud.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        pf = pq.ParquetFile(self.path)
        for rg in range(wid, pf.num_row_groups, nw):
            for _, _, imgs in arrow_rows(pf.read_row_group(rg)):
                yield [decode(b) for b in imgs]


class LanceReader:
    random_access = True

    def __init__(self, w):
        import lance

        self.lance = lance
        self.path = str(w / "lance")
        self.n = json.loads((w / "counts.json").read_text())["records"]
        self._ds = None

    @property
    def ds(self):
        # Opened on first use: a Lance dataset opened before the DataLoader forks its workers
        # crashes them (Lance's runtime does not survive fork).
        if self._ds is None:
            self._ds = self.lance.dataset(self.path)
        return self._ds

    def __len__(self):
        return self.n

    def seq(self):
        for batch in self.ds.to_batches(batch_size=ROW_GROUP):
            yield from arrow_rows(batch)

    def get(self, i):
        return next(arrow_rows(self.ds.take([i])))

    def torch_dataset(self):
        return LanceTorch(self.path, len(self)), {}


class LanceTorch:
    """Map-style; a DataLoader batch is one `take` (Lance's random access)."""

    def __init__(self, path, n):
        self.path, self.n, self.ds = path, n, None

    def __len__(self):
        return self.n

    def _take(self, idx):
        import lance

        if self.ds is None:
            self.ds = lance.dataset(self.path)
        return [
            [decode(b) for b in imgs] for _, _, imgs in arrow_rows(self.ds.take(idx))
        ]

    def __getitem__(self, i):
        return self._take([i])[0]

    def __getitems__(self, idx):
        return self._take(list(idx))


class TFRecordReader:
    """`tfrecord_loader` in order; by index, the offsets in its index file and one `pread`
    per record, parsed with its `example_pb2` (the library's loader only shards by index)."""

    random_access = True

    def __init__(self, w):
        from tfrecord import reader

        self.reader = reader
        self.path = str(w / "tfrecord" / "data.tfrecord")
        self.index = str(w / "tfrecord" / "data.index")
        self.n = json.loads((w / "counts.json").read_text())["records"]
        self.offsets = None
        self.fd = None

    def __len__(self):
        return self.n

    def seq(self):
        for ex in self.reader.tfrecord_loader(self.path, None):
            yield bytes(ex["id"]), json.loads(bytes(ex["meta"])), tf_images(ex)

    def get(self, i):
        from tfrecord import example_pb2

        if self.offsets is None:
            lines = Path(self.index).read_text().splitlines()
            self.offsets = [tuple(map(int, ln.split())) for ln in lines]
            self.fd = os.open(self.path, os.O_RDONLY)
        off, length = self.offsets[i]
        # length u64, its CRC u32, the example, its CRC u32
        ex = example_pb2.Example()
        ex.ParseFromString(os.pread(self.fd, length - 16, off + 12))
        mapping = {"byte": "bytes_list", "float": "float_list", "int": "int64_list"}
        d = self.reader.extract_feature_dict(ex.features, None, mapping)
        return bytes(d["id"]), json.loads(bytes(d["meta"])), tf_images(d)

    def torch_dataset(self):
        from tfrecord.torch.dataset import TFRecordDataset

        return TFRecordDataset(self.path, self.index, transform=tf_decode), {}


def tf_images(ex):
    return [ex[f"img{k}"] for k in range(int(ex["n"][0]))]


def tf_decode(ex):
    return [decode(b) for b in tf_images(ex)]


def mds_images(s):
    return [s[f"img{k}"] for k in range(s["n"])]


def _mds_class():
    stub_transformers()
    from streaming import StreamingDataset

    class MDSDecoded(StreamingDataset):
        def __getitem__(self, i):
            return [decode(b) for b in mds_images(super().__getitem__(i))]

    return StreamingDataset, MDSDecoded


class MDSReader:
    random_access = True

    def __init__(self, w):
        self.path = str(w / "mds")
        base, self.decoded = _mds_class()
        from streaming.base.util import clean_stale_shared_memory

        clean_stale_shared_memory()
        self.ds = None
        self.base = base

    def _ds(self):
        if self.ds is None:
            self.ds = self.base(local=self.path, shuffle=False, batch_size=1)
        return self.ds

    def __len__(self):
        return len(self._ds())

    def seq(self):
        for s in self._ds():
            yield s["id"], json.loads(s["meta"]), mds_images(s)

    def get(self, i):
        s = self._ds()[i]
        return s["id"], json.loads(s["meta"]), mds_images(s)

    def torch_dataset(self):
        return self.decoded(local=self.path, shuffle=False, batch_size=BATCH), {}


def litdata_images(s):
    return [s[f"img{k}"] for k in range(s["n"])]


def litdata_decode(s):
    return [decode(b) for b in litdata_images(s)]


class LitDataReader:
    random_access = True

    def __init__(self, w):
        import litdata

        self.litdata = litdata
        self.path = str(w / "litdata")
        self.ds = litdata.StreamingDataset(self.path)

    def __len__(self):
        return len(self.ds)

    def seq(self):
        for s in self.ds:
            yield s["id"], json.loads(s["meta"]), litdata_images(s)

    def get(self, i):
        s = self.ds[i]
        return s["id"], json.loads(s["meta"]), litdata_images(s)

    def torch_dataset(self):
        d = self.litdata.StreamingDataset(self.path, transform=litdata_decode)
        return d, {"loader": self.litdata.StreamingDataLoader}


class LooseReader:
    random_access = True

    def __init__(self, w):
        self.paths = json.loads((w / "loose.json").read_text())

    def __len__(self):
        return len(self.paths)

    def _read(self, i):
        out = []
        for p in self.paths[i]:
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def seq(self):
        for i in range(len(self.paths)):
            yield i, None, self._read(i)

    def get(self, i):
        return i, None, self._read(i)

    def torch_dataset(self):
        return LooseTorch(self.paths), {}


class LooseTorch:
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        out = []
        for p in self.paths[i]:
            with open(p, "rb") as f:
                out.append(decode(f.read()))
        return out


READERS = {
    "editshard": EditshardReader,
    "editshard-full": EditshardFullReader,
    "editshard-none": EditshardNoneReader,
    "webdataset": WebDatasetReader,
    "tar": TarPreadReader,
    "wids": WidsReader,
    "parquet": ParquetReader,
    "lance": LanceReader,
    "tfrecord": TFRecordReader,
    "mds": MDSReader,
    "litdata": LitDataReader,
    "loose": LooseReader,
}


# --------------------------------------------------------------------------------------------
# Measurements (run in a child process: `python_bench.py _measure FMT MODE WORKDIR ...`)


def consume(it):
    """Counts records, images and image bytes; touches one byte in every 4 KiB of every image,
    so that a reader handing out lazily mapped (mmap) buffers pays for bringing them in."""
    import numpy as np

    n = nimg = nbytes = 0
    for _id, _meta, imgs in it:
        n += 1
        for b in imgs:
            a = np.frombuffer(b, np.uint8)
            a[::4096].sum()
            nimg += 1
            nbytes += a.nbytes
    return n, nimg, nbytes


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def vm_rss():
    for ln in Path("/proc/self/status").read_text().splitlines():
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1]) * 1024
    return 0


def import_modules(fmt):
    import importlib

    for m in MODULES.get(fmt, []):
        importlib.import_module(m)


def measure(fmt, mode, w, reps, samples, seed, dl_records):
    import_modules(fmt)
    if mode == "seq_fresh":
        # What a fresh DataLoader worker pays: open the dataset, read every record once. This
        # process has read nothing before (the page cache is warm).
        t0 = time.perf_counter()
        r = READERS[fmt](w)
        c = consume(r.seq())
        return {
            "times": [time.perf_counter() - t0],
            "records": c[0],
            "images": c[1],
            "bytes": c[2],
        }
    if mode == "random_fresh":
        # The first reads of a fresh process: each record read once, none before (footers,
        # indexes and shard maps are loaded as the reads need them).
        t0 = time.perf_counter()
        r = READERS[fmt](w)
        open_s = time.perf_counter() - t0
        if not getattr(r, "random_access", False):
            return {"unsupported": True}
        n = len(r)
        rng = random.Random(seed)
        lat = []
        for i in rng.sample(range(n), min(n, samples)):
            t0 = time.perf_counter()
            consume([r.get(i)])
            lat.append(time.perf_counter() - t0)
        return {"p50": [pct(lat, 0.5)], "p99": [pct(lat, 0.99)], "open_s": open_s}
    rss0 = vm_rss()
    r = READERS[fmt](w)
    if mode == "seq":
        consume(r.seq())  # warm-up: this process's first pass is seq_fresh's
        times, counts = [], None
        for _ in range(reps):
            t0 = time.perf_counter()
            c = consume(r.seq())
            times.append(time.perf_counter() - t0)
            counts = c
        return {
            "times": times,
            "records": counts[0],
            "images": counts[1],
            "bytes": counts[2],
        }
    if mode == "random":
        if not getattr(r, "random_access", False):
            return {"unsupported": True}
        n = len(r)
        rng = random.Random(seed)
        for i in range(
            n
        ):  # warm-up: every record read once (random_fresh times first reads)
            consume([r.get(i)])
        p50s, p99s = [], []
        for _ in range(reps):
            lat = []
            for i in [rng.randrange(n) for _ in range(samples)]:
                t0 = time.perf_counter()
                consume([r.get(i)])
                lat.append(time.perf_counter() - t0)
            p50s.append(pct(lat, 0.5))
            p99s.append(pct(lat, 0.99))
        return {"p50": p50s, "p99": p99s, "rss_mb": (vm_rss() - rss0) / 1e6}
    if mode in ("dl", "dl_native"):
        import torch.utils.data as tud

        if mode == "dl_native":
            from editshard.torch import EditDataset

            d, extra = EditDataset(r.path, transform=es_native_decode_record), {}
        else:
            d, extra = r.torch_dataset()
        loader_cls = extra.get("loader", tud.DataLoader)
        times, nimg, nrec = [], 0, 0
        for _ in range(reps):
            loader = loader_cls(
                d, batch_size=BATCH, num_workers=WORKERS, collate_fn=collate_list
            )
            t0 = time.perf_counter()
            nrec = nimg = 0
            for batch in loader:
                for rec in batch:
                    nrec += 1
                    nimg += len(rec)
            times.append(time.perf_counter() - t0)
            del loader
        return {"times": times, "records": nrec, "images": nimg}
    if mode == "profile":
        return profile_editshard(w, dl_records)
    raise ValueError(mode)


class TimedEditshard:
    """EditDataset's fetch (one coalesced get_many per batch) and the decode, timed apart."""

    def __init__(self, path):
        from editshard.torch import EditDataset

        self.inner = EditDataset(path)

    def __len__(self):
        return len(self.inner)

    def __getitems__(self, idx):
        t0 = time.perf_counter()
        recs = self.inner.__getitems__(idx)
        t1 = time.perf_counter()
        out = [es_decode_record(rec) for rec in recs]
        t2 = time.perf_counter()
        return [(out, t1 - t0, t2 - t1, os.getpid())]


def profile_editshard(w, n_prof):
    import torch.utils.data as tud

    path = str(w / "ds")
    d = TimedEditshard(path)
    loader = tud.DataLoader(
        d, batch_size=BATCH, num_workers=WORKERS, collate_fn=collate_list
    )
    fetch = dec = 0.0
    t0 = time.perf_counter()
    for batch in loader:
        for _out, f, dd, _pid in batch:
            fetch += f
            dec += dd
    wall = time.perf_counter() - t0
    # cProfile of the same worker function, in process, over the first n_prof records.
    prof = cProfile.Profile()
    idx = list(range(min(n_prof, len(d))))
    prof.enable()
    for k in range(0, len(idx), BATCH):
        d.__getitems__(idx[k : k + BATCH])
    prof.disable()
    st = pstats.Stats(prof)
    total = sum(v[2] for v in st.stats.values())  # tottime
    rows = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:8]
    top = [
        {
            "func": f"{Path(k[0]).name}:{k[1]}({k[2]})",
            "tottime": v[2],
            "share": v[2] / total,
        }
        for k, v in rows
    ]
    return {
        "fetch_s": fetch,
        "decode_s": dec,
        "wall_s": wall,
        "top": top,
        "profiled": len(idx),
    }


# --------------------------------------------------------------------------------------------
# Preparing the release, the editshard dataset and every peer's copy


def run(cmd, **kw):
    print("   $", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def editshard_rows(w):
    """Every record of the editshard dataset: id, metadata JSON, image bytes, image paths."""
    import editshard

    for rec in editshard.open(str(w / "ds")).iter():
        imgs = [im for im in rec.images() if im.data is not None]
        yield {
            "id": rec.id,
            "meta": json.dumps(rec.to_dict()),
            "images": [bytes(im.data) for im in imgs],
            "paths": [(im.path, im.url) for im in imgs],
        }


def write_peer(fmt, w):
    counts = json.loads((w / "counts.json").read_text())
    k_max = counts["max_images"]
    out = w / fmt
    shutil.rmtree(out, ignore_errors=True)
    if fmt in ("parquet", "lance"):
        import pyarrow as pa

        schema = pa.schema(
            [
                ("id", pa.string()),
                ("meta", pa.string()),
                ("images", pa.list_(pa.binary())),
            ]
        )

        def batches():
            buf = []
            for row in editshard_rows(w):
                buf.append(row)
                if len(buf) == ROW_GROUP:
                    yield pa.RecordBatch.from_pylist(buf, schema=schema)
                    buf = []
            if buf:
                yield pa.RecordBatch.from_pylist(buf, schema=schema)

        if fmt == "parquet":
            import pyarrow.parquet as pq

            out.mkdir()
            with pq.ParquetWriter(out / "data.parquet", schema) as wr:
                for b in batches():
                    wr.write_batch(b, row_group_size=ROW_GROUP)
        else:
            import lance

            lance.write_dataset(
                pa.RecordBatchReader.from_batches(schema, batches()), str(out)
            )
    elif fmt == "tfrecord":
        from tfrecord.tools.tfrecord2idx import create_index
        from tfrecord.writer import TFRecordWriter

        out.mkdir()
        wr = TFRecordWriter(str(out / "data.tfrecord"))
        for row in editshard_rows(w):
            ex = {
                "id": (row["id"].encode(), "byte"),
                "meta": (row["meta"].encode(), "byte"),
                "n": (len(row["images"]), "int"),
            }
            for k, b in enumerate(row["images"]):
                ex[f"img{k}"] = (b, "byte")
            wr.write(ex)
        wr.close()
        create_index(str(out / "data.tfrecord"), str(out / "data.index"))
    elif fmt == "mds":
        stub_transformers()
        from streaming import MDSWriter

        cols = {"id": "str", "meta": "str", "n": "int"}
        cols.update({f"img{k}": "bytes" for k in range(k_max)})
        with MDSWriter(out=str(out), columns=cols) as wr:
            for row in editshard_rows(w):
                s = {"id": row["id"], "meta": row["meta"], "n": len(row["images"])}
                for k in range(k_max):
                    s[f"img{k}"] = row["images"][k] if k < len(row["images"]) else b""
                wr.write(s)
    elif fmt == "litdata":
        import litdata

        litdata.optimize(
            fn=litdata_item,
            inputs=[(str(w), i, k_max) for i in range(counts["records"])],
            output_dir=str(out),
            chunk_bytes="64MB",
            num_workers=1,
            verbose=False,
        )
    else:
        raise ValueError(fmt)


_LIT = {}


def litdata_item(arg):
    import editshard

    w, i, k_max = arg
    if w not in _LIT:
        _LIT[w] = editshard.open(str(Path(w) / "ds"))
    rec = _LIT[w][i]
    imgs = [bytes(im.data) for im in rec.images() if im.data is not None]
    item = {"id": rec.id, "meta": json.dumps(rec.to_dict()), "n": len(imgs)}
    for k in range(k_max):
        item[f"img{k}"] = imgs[k] if k < len(imgs) else b""
    return item


def prepare(args, w):
    rel = w / "rel"
    binary = REPO / "target" / "release"
    if (
        not (binary / "editshard").exists()
        or not (binary / "gen_bench_release").exists()
    ):
        run(
            [
                "cargo",
                "build",
                "--release",
                "-p",
                "editshard-cli",
                "-p",
                "editshard-tools",
            ],
            cwd=REPO,
        )
    rows = args.rows
    sft = int(rows * 257730 / 386203 + 0.5)
    pref = int(rows * 56473 / 386203 + 0.5)
    mt = rows - sft - pref
    info = {}
    t0 = time.perf_counter()
    run(
        [
            binary / "gen_bench_release",
            rel,
            "--sft",
            sft,
            "--preference",
            pref,
            "--multi-turn",
            mt,
            "--seed",
            args.seed,
            "--realistic",
        ],
        stdout=subprocess.DEVNULL,
    )
    info["gen_s"] = time.perf_counter() - t0
    shard_size = args.shard_size
    if shard_size == "auto":
        # About 8 shards, so that the WebDataset export (one tar per shard) feeds 4 workers.
        shard_size = f"{max(8, du(rel / 'images') // 8 // (1 << 20))}MiB"
    info["shard_size"] = shard_size
    t0 = time.perf_counter()
    run(
        [
            binary / "editshard",
            "convert",
            rel,
            "--out",
            w / "ds",
            "--shard-size",
            shard_size,
            "--openimages-csv",
            rel / "openimages" / "train-images-boxable-with-rotation.csv",
            "--openimages-dir",
            rel / "openimages",
            "--log-interval",
            "3600",
        ],
        stdout=subprocess.DEVNULL,
    )
    info["convert_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(
        [
            binary / "editshard",
            "export",
            w / "ds",
            "--to",
            w / "wds",
            "--format",
            "webdataset",
        ],
        stdout=subprocess.DEVNULL,
    )
    info["export_s"] = time.perf_counter() - t0

    # Counts, and each record's image files in the release (for the loose-files floor).
    import csv

    with open(
        rel / "openimages" / "train-images-boxable-with-rotation.csv", newline=""
    ) as f:
        by_url = {r["OriginalURL"]: r["ImageID"] for r in csv.DictReader(f)}
    n = nimg = nbytes = k_max = 0
    loose = []
    for row in editshard_rows(w):
        n += 1
        nimg += len(row["images"])
        nbytes += sum(len(b) for b in row["images"])
        k_max = max(k_max, len(row["images"]))
        paths = []
        for (p, u), b in zip(row["paths"], row["images"]):
            f = locate(rel, p, u, by_url)
            if f is None or f.stat().st_size != len(b):
                raise SystemExit(
                    f"release file for image path {p!r} not found (or size differs)"
                )
            paths.append(str(f))
        loose.append(paths)
    (w / "loose.json").write_text(json.dumps(loose))
    info.update(
        records=n,
        images=nimg,
        image_bytes=nbytes,
        max_images=k_max,
        rows=rows,
        sft=sft,
        preference=pref,
        multi_turn=mt,
    )
    (w / "counts.json").write_text(json.dumps(info))
    return info


def locate(rel, im_path, im_url, by_url):
    """The release file an image came from: edits by their path (mirrors such as
    `nano-banana-300k/images/...` are the same `images/...` file), sources through the Open
    Images CSV (URL -> ImageID -> `openimages/train_0/<ImageID>.jpg`), as the converter does."""
    if im_path:
        cands = [rel / im_path]
        if "images/" in im_path:
            cands.append(rel / im_path[im_path.index("images/") :])
        for c in cands:
            if c.is_file():
                return c
    if im_url and im_url in by_url:
        c = rel / "openimages" / "train_0" / f"{by_url[im_url]}.jpg"
        if c.is_file():
            return c
    return None


def du(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# --------------------------------------------------------------------------------------------
# Orchestration


def child(args_list, timeout):
    """One measurement (or peer write) of this script in a child process."""
    return common.child(__file__, args_list, timeout)


def med(xs):
    return statistics.median(xs)


def fmt_ratio(x):
    return f"{x:.2f}x"


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=int(os.environ.get("ROWS", "100")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "42")))
    ap.add_argument("--reps", type=int, default=int(os.environ.get("REPS", "5")))
    ap.add_argument("--dl-reps", type=int, default=int(os.environ.get("DL_REPS", "3")))
    ap.add_argument(
        "--samples", type=int, default=int(os.environ.get("SAMPLES", "200"))
    )
    ap.add_argument(
        "--fresh-samples",
        type=int,
        default=int(os.environ.get("FRESH_SAMPLES", "50")),
        help="first reads timed in each fresh process (random_fresh)",
    )
    ap.add_argument(
        "--modes",
        default="seq_fresh,seq,random_fresh,random,dl",
        help="measurements, in order: seq_fresh, seq, random_fresh, random, dl",
    )
    ap.add_argument("--profile-records", type=int, default=24)
    ap.add_argument(
        "--shard-size", default="auto", help="convert --shard-size; auto: ~8 shards"
    )
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse a kept workdir's data")
    ap.add_argument(
        "--timeout", type=int, default=900, help="per child process, seconds"
    )
    ap.add_argument("--out", default="/tmp/editshard-python-bench.md")
    args = ap.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    start = time.perf_counter()

    w = common.workdir(args.workdir, args.reuse, "editshard-pybench.")
    log = common.logger(start)
    try:
        if args.reuse and (w / "counts.json").exists():
            info = json.loads((w / "counts.json").read_text())
        else:
            log(f"generating, converting and exporting {args.rows} rows")
            info = prepare(args, w)
        log(
            f"{info['records']} records, {info['images']} images, "
            f"{info['image_bytes'] / 1e6:.1f} MB of image bytes"
        )
        writes = {}
        for fmt in WRITTEN:
            if fmt not in formats:
                continue
            if args.reuse and (w / fmt).exists() and (w / f"{fmt}.written").exists():
                writes[fmt] = json.loads((w / f"{fmt}.written").read_text())
                continue
            log(f"writing {fmt}")
            res = child(["_write", fmt, w], args.timeout)
            if "error" not in res:
                res["bytes"] = du(w / fmt)
                (w / f"{fmt}.written").write_text(json.dumps(res))
            else:
                print(res.get("stderr", ""), file=sys.stderr)
            writes[fmt] = res
        writes["editshard"] = {
            "seconds": info["convert_s"],
            "bytes": du(w / "ds"),
            "note": "`editshard convert` from the release",
        }
        for ref in ("editshard-full", "editshard-none"):
            writes[ref] = {
                "seconds": info["convert_s"],
                "bytes": du(w / "ds"),
                "note": "the same dataset",
            }
        for same_tars in ("tar", "wids"):
            writes[same_tars] = {
                "seconds": info["export_s"],
                "bytes": du(w / "wds"),
                "note": "the WebDataset export",
            }
        writes["webdataset"] = {
            "seconds": info["export_s"],
            "bytes": du(w / "wds"),
            "note": f"`editshard export --format webdataset`, "
            f"{len(list((w / 'wds').glob('*.tar')))} tar(s)",
        }
        writes["loose"] = {
            "seconds": info["gen_s"],
            "bytes": None,
            "note": "the release itself",
        }

        common.warm_page_cache(w)

        results = {}
        reps_of = {"seq": args.reps, "random": args.reps, "dl": args.dl_reps}
        modes = [m for m in args.modes.split(",") if m]
        load = {}
        for fmt in formats:
            if fmt in writes and "error" in writes[fmt]:
                results[fmt] = {
                    m: {"error": "not written: " + writes[fmt]["error"]} for m in modes
                }
                continue
            results[fmt] = {}
            for mode in modes:
                if mode == "dl" and fmt in ("editshard-full", "editshard-none"):
                    results[fmt][mode] = {
                        "error": "(not run: as editshard, decode-bound)"
                    }
                    continue
                log(f"{fmt}: {mode}")
                load[(fmt, mode)] = Path("/proc/loadavg").read_text().split()[0]
                if mode.endswith("_fresh"):
                    # One fresh process per repetition, each reading as a new worker would.
                    parts = [
                        child(
                            [
                                "_measure",
                                fmt,
                                mode,
                                w,
                                1,
                                args.fresh_samples,
                                args.seed + k,
                                0,
                            ],
                            args.timeout,
                        )
                        for k in range(args.reps)
                    ]
                    res = next(
                        (p for p in parts if "error" in p or p.get("unsupported")), None
                    )
                    if res is None:
                        res = dict(parts[0])
                        for key in ("times", "p50", "p99", "open_s"):
                            if key in res:
                                res[key] = [
                                    x
                                    for p in parts
                                    for x in (
                                        p[key] if isinstance(p[key], list) else [p[key]]
                                    )
                                ]
                else:
                    res = child(
                        [
                            "_measure",
                            fmt,
                            mode,
                            w,
                            reps_of[mode],
                            args.samples,
                            args.seed,
                            args.profile_records,
                        ],
                        args.timeout,
                    )
                if "error" in res:
                    print(
                        f"   {fmt} {mode} failed: {res['error']}\n{res.get('stderr', '')[-1500:]}",
                        file=sys.stderr,
                    )
                results[fmt][mode] = res
        if "editshard" in formats and "dl" in modes:
            log("editshard: DataLoader with the native decoder, and the worker profile")
            results["editshard"]["dl_native"] = child(
                [
                    "_measure",
                    "editshard",
                    "dl_native",
                    w,
                    args.dl_reps,
                    args.samples,
                    args.seed,
                    args.profile_records,
                ],
                args.timeout,
            )
            profile = child(
                [
                    "_measure",
                    "editshard",
                    "profile",
                    w,
                    1,
                    args.samples,
                    args.seed,
                    args.profile_records,
                ],
                args.timeout,
            )
        else:
            profile = {"error": "(not run: no DataLoader measurement in --modes)"}
        total = time.perf_counter() - start
        md = report(args, info, writes, results, profile, formats, total, load)
        print(md)
        Path(args.out).write_text(md)
        (w / "results.json").write_text(
            json.dumps(
                {
                    "info": info,
                    "writes": writes,
                    "results": results,
                    "profile": profile,
                },
                indent=1,
            )
        )
        print(f"written to {args.out}", file=sys.stderr)
    finally:
        if args.keep or args.reuse:
            print(f"kept {w}", file=sys.stderr)
        else:
            shutil.rmtree(w, ignore_errors=True)


def report(args, info, writes, results, profile, formats, total, load_at):
    n_rec, n_img, n_bytes = info["records"], info["images"], info["image_bytes"]
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    load = Path("/proc/loadavg").read_text().split()[:3]
    out = []
    P = out.append
    P(
        f"### Python read benchmark: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"commit {git_rev()}"
    )
    P("")
    P(
        f"Machine: {os.cpu_count()} cores (`nproc` {os.cpu_count()}, {cpu}), Python "
        f"{platform.python_version()}, load average at the end {' '.join(load)}."
    )
    P(
        f"Release: {info['rows']} rows ({info['sft']} sft, {info['preference']} preference, "
        f"{info['multi_turn']} multi-turn; seed {args.seed}) -> {n_rec} records in editshard "
        f"shards of {info.get('shard_size')}, {n_img} image "
        f"references, {n_bytes / 1e6:.1f} MB of image bytes per pass. Medians of {args.reps} "
        f"repetitions (fresh: {args.reps} fresh processes, {args.fresh_samples} first reads "
        f"each; warm random: {args.samples} reads per repetition after every record was read "
        f"once; DataLoader: {args.dl_reps}). Whole run {total:.0f} s."
    )
    P("")

    def val(fmt, mode):
        return results.get(fmt, {}).get(mode)

    def ok(r):
        return r is not None and "error" not in r and not r.get("unsupported")

    mb_per_rec = n_bytes / n_rec / 1e6
    seq = {
        m: {f: n_rec / med(val(f, m)["times"]) for f in formats if ok(val(f, m))}
        for m in ("seq_fresh", "seq")
    }
    rnd = {
        m: {f: med(val(f, m)["p50"]) for f in formats if ok(val(f, m))}
        for m in ("random_fresh", "random")
    }
    rnd99 = {f: med(val(f, "random")["p99"]) for f in formats if ok(val(f, "random"))}
    dl = {
        f: val(f, "dl")["images"] / med(val(f, "dl")["times"])
        for f in formats
        if ok(val(f, "dl"))
    }

    def best(table, pick):
        peers = [f for f in PEERS if f in table]
        return (
            (
                pick(peers, key=lambda f: table[f]),
                table[pick(peers, key=lambda f: table[f])],
            )
            if peers
            else (None, None)
        )

    best_seq = {m: best(seq[m], max) for m in seq}
    best_rnd = {m: best(rnd[m], min) for m in rnd}
    best_dl = best(dl, max)

    def why(f, mode):
        r = val(f, mode)
        if r is None:
            return "not run"
        if r.get("unsupported"):
            return "no random access"
        if r["error"].startswith("("):
            return r["error"]
        return "**failed**: " + r["error"].replace("|", "\\|")

    def seq_cell(f, m):
        if f not in seq[m]:
            return why(f, m)
        r = val(f, m)
        bad = (
            ""
            if (r["records"], r["images"], r["bytes"]) == (n_rec, n_img, n_bytes)
            else f" (read {r['records']} records/{r['images']} images!)"
        )
        return f"{seq[m][f] * mb_per_rec:.0f}{bad}"

    def seq_ratio(f, m):
        b = best_seq[m][1]
        return fmt_ratio(seq[m][f] / b) if f in seq[m] and b else ""

    def rnd_cell(f, m):
        if f not in rnd[m]:
            return why(f, m)
        extra = f" / {rnd99[f] * 1e3:.3f}" if m == "random" else ""
        return f"{rnd[m][f] * 1e3:.3f}{extra}"

    def rnd_ratio(f, m):
        b = best_rnd[m][1]
        return fmt_ratio(b / rnd[m][f]) if f in rnd[m] and b else ""

    P(
        "| Format (library) | Sequential MB/s, fresh process | ratio | warm | ratio | "
        "Random p50 ms, fresh process (first reads) | ratio | warm p50 / p99 | ratio | "
        "DataLoader images/s | ratio | Written in (s) | Size (MB) |"
    )
    P("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for f in formats:
        cells = [LABEL[f]]
        for m in ("seq_fresh", "seq"):
            cells += [seq_cell(f, m), seq_ratio(f, m)]
        for m in ("random_fresh", "random"):
            cells += [rnd_cell(f, m), rnd_ratio(f, m)]
        if f in dl:
            extra = (
                ""
                if val(f, "dl")["images"] == n_img
                else f" ({val(f, 'dl')['images']} of {n_img} images!)"
            )
            cells += [
                f"{dl[f]:.1f}{extra}",
                fmt_ratio(dl[f] / best_dl[1]) if best_dl[1] else "",
            ]
        else:
            cells += [why(f, "dl"), ""]
        wr = writes.get(f, {})
        if "error" in wr:
            cells += ["**failed**: " + wr["error"].replace("|", "\\|"), ""]
        else:
            note = f" ({wr['note']})" if wr.get("note") else ""
            cells += [
                f"{wr.get('seconds', float('nan')):.1f}{note}",
                f"{wr['bytes'] / 1e6:.0f}" if wr.get("bytes") else "-",
            ]
        P("| " + " | ".join(cells) + " |")
    nat = val("editshard", "dl_native")
    if ok(nat):
        ips = nat["images"] / med(nat["times"])
        P(
            f"| editshard, DataLoader decoding with `img.to_numpy()` (Rust, GIL released) "
            f"| | | | | | | | | {ips:.1f} | {fmt_ratio(ips / best_dl[1]) if best_dl[1] else '-'} | | |"
        )
    P("")
    P(
        "Ratios: sequential, this format's MB/s over the fastest peer's; random, the fastest "
        "peer's p50 over this format's (above 1: faster). Peers: "
        + ", ".join(LABEL[f] for f in PEERS if f in formats)
        + "; the editshard references and the loose-files floor are not peers. Fresh: each "
        "repetition a new process that opens the dataset and reads (sequential: open plus one "
        "pass; random: first reads, the open timed apart), as a DataLoader worker does every "
        "epoch; the page cache is warm. DataLoader: 4 workers, batch size 4, every image "
        "decoded with Pillow to a uint8 tensor."
    )
    if load_at:
        P("")
        P(
            "Load average (1 min) when each measurement started: "
            + ", ".join(f"{f} {m} {v}" for (f, m), v in load_at.items())
            + "."
        )
    P("")
    P("| Target | Result | |")
    P("|---|---|---|")
    for m, what in (("seq_fresh", "fresh process"), ("seq", "warm")):
        who, b = best_seq[m]
        if "editshard" in seq[m] and b:
            r = seq[m]["editshard"] / b
            P(
                f"| Sequential MB/s, {what}, >= 1.5x the fastest peer ({who}) | {r:.2f}x | "
                f"{mark(r >= 1.5)} |"
            )
    for m, what in (("random_fresh", "fresh process"), ("random", "warm")):
        who, b = best_rnd[m]
        if "editshard" in rnd[m] and b:
            P(
                f"| Random p50, {what}, below the fastest peer with random access ({who}, "
                f"{b * 1e3:.3f} ms) | {rnd[m]['editshard'] * 1e3:.3f} ms | "
                f"{mark(rnd[m]['editshard'] < b)} |"
            )
    if "error" not in profile:
        busy = profile["fetch_s"] + profile["decode_s"]
        share = profile["fetch_s"] / busy
        P(
            f"| DataLoader bound by image decoding, not editshard (editshard's fetch <= 10% of "
            f"worker time) | fetch {share:.1%}, decode {1 - share:.1%} of worker time | "
            f"{mark(share <= 0.10)} |"
        )
        P("")
        P(
            f"Worker time in editshard's DataLoader (4 workers, one pass): fetch "
            f"(`EditDataset.__getitems__`, one coalesced `get_many` per batch, CRC checked) "
            f"{profile['fetch_s']:.2f} s, Pillow decode {profile['decode_s']:.2f} s "
            f"(wall {profile['wall_s']:.2f} s). cProfile of the same worker function in process over "
            f"{profile['profiled']} records, top functions by own time:"
        )
        P("")
        P("| function | own time (s) | share |")
        P("|---|---|---|")
        for t in profile["top"]:
            P(f"| `{t['func']}` | {t['tottime']:.3f} | {t['share']:.1%} |")
    else:
        P(f"| DataLoader profile | {profile['error']} | |")
    P("")
    return "\n".join(out)


def mark(b):
    return "met" if b else "**missed**"


def git_rev():
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                check=False,
                cwd=REPO,
                text=True,
                capture_output=True,
            ).stdout.strip()
            or "unknown"
        )
    except OSError:
        return "unknown"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("_measure", "_write"):
        try:
            if sys.argv[1] == "_write":
                fmt, w = sys.argv[2], Path(sys.argv[3])
                t0 = time.perf_counter()
                write_peer(fmt, w)
                print(
                    "RESULT " + json.dumps({"seconds": time.perf_counter() - t0}),
                    flush=True,
                )
            else:
                fmt, mode, w = sys.argv[2], sys.argv[3], Path(sys.argv[4])
                reps, samples, seed, dl_records = map(int, sys.argv[5:9])
                if fmt == "mds":
                    stub_transformers()
                res = measure(fmt, mode, w, reps, samples, seed, dl_records)
                print("RESULT " + json.dumps(res), flush=True)
        except Exception:  # noqa: BLE001 (reported to the parent, which records it)
            traceback.print_exc()
            sys.exit(1)
        sys.stdout.flush()
        os._exit(0)  # some peers leave non-daemon threads behind
    main()
