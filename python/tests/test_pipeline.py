"""editshard.torch.Pipeline: paired crops and flips exact on images that encode their own
coordinates, masks aligned, resampling against torchvision v2, dtypes and normalisation,
the same crops whatever the workers and after a resume, the decode limit, bounded memory.

Datasets are made here: Parquet files written with pyarrow, converted by the CLI with a
mapping file (so every image of every record is chosen by the test)."""

from __future__ import annotations

import gc
import io
import resource
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler
from torchdata.stateful_dataloader import StatefulDataLoader

import editshard
from editshard.torch import EditDataset, IterableEditDataset, Pipeline

W, H = 200, 64  # coordinate images: R = x, G = y (both below 256)


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def coordinates(w: int = W, h: int = H) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x, y, np.full_like(x, 77)], axis=-1).astype(np.uint8)


def photo_like(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, hard edges and some noise: what resampling differences show on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [
            128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0),
            255 * x / w,
            np.where((x // 32 + y // 32) % 2 == 0, 230.0, 25.0),
        ],
        axis=-1,
    )
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(root: Path, cli: Path, rows: list[dict[str, Any]]) -> Path:
    """A dataset of `rows` (id, source, output, optional mask: encoded bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = root / "release"
    src.mkdir(parents=True)
    columns: dict[str, Any] = {
        "id": pa.array([r["id"] for r in rows], pa.string()),
        "source": pa.array([r["source"] for r in rows], pa.binary()),
        "output": pa.array([r["output"] for r in rows], pa.binary()),
        "instruction": pa.array([f"edit {r['id']}" for r in rows], pa.string()),
        "edit_type": pa.array(["recolour"] * len(rows), pa.string()),
    }
    mapping = 'name = "t"\nfiles = ["*.parquet"]\nid = "id"\nsource = "source"\n'
    mapping += 'output = "output"\ninstruction = "instruction"\nedit_type = "edit_type"\n'
    if any("mask" in r for r in rows):
        columns["mask"] = pa.array([r["mask"] for r in rows], pa.binary())
        mapping += 'mask = "mask"\n'
    pq.write_table(pa.table(columns), src / "data.parquet")
    (root / "map.toml").write_text(mapping)
    out = root / "ds"
    subprocess.run(
        [str(cli), "convert", str(src), "--mapping", str(root / "map.toml"), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(out / ".editshard-work", ignore_errors=True)
    return out


@pytest.fixture(scope="module")
def coord_ds(tmp_path_factory: pytest.TempPathFactory, cli: Path) -> Path:
    """24 records whose source and output are the same coordinate PNG and whose mask is its
    R channel (x) as a one-channel PNG."""
    img = png(coordinates())
    mask = png(coordinates()[:, :, 0].copy())
    rows = [{"id": f"r{i:02d}", "source": img, "output": img, "mask": mask} for i in range(24)]
    return make_dataset(tmp_path_factory.mktemp("coord"), cli, rows)


@pytest.fixture(scope="module")
def photo_ds(tmp_path_factory: pytest.TempPathFactory, cli: Path) -> Path:
    """12 records: photo-like JPEG sources (640x480) and PNG outputs (512x384), sizes that
    a 224 crop downscales."""
    rows = []
    for i in range(12):
        rows.append(
            {
                "id": f"p{i:02d}",
                "source": jpeg(photo_like(640, 480, seed=i)),
                "output": png(photo_like(512, 384, seed=100 + i)),
            }
        )
    return make_dataset(tmp_path_factory.mktemp("photo"), cli, rows)


def expected_coordinates(top: int, left: int, flip: bool, size: int) -> np.ndarray:
    cols = np.arange(size)
    if flip:
        cols = cols[::-1]
    x = np.broadcast_to(left + cols, (size, size))
    y = np.broadcast_to((top + np.arange(size))[:, None], (size, size))
    return np.stack([x, y, np.full((size, size), 77)]).astype(np.uint8)


def test_crops_and_flips_are_exact_and_paired(coord_ds: Path) -> None:
    # Shorter side 64 = the canvas: scale 1, so every pixel is a source pixel, moved only.
    pipe = Pipeline(64, crop="random", flip=0.5, images=("source", "output", "mask"))
    ds = IterableEditDataset(coord_ds, batch_size=8, seed=5, shuffle=False, pipeline=pipe)
    ds.set_epoch(2)
    lefts, flips = set(), set()
    records = {r.id: r for r in editshard.open(coord_ds, images="none")}
    n = 0
    for batch in DataLoader(ds, batch_size=None):
        assert batch["source"].shape == (8, 3, 64, 64) and batch["source"].dtype == torch.uint8
        assert batch["mask"].shape == (8, 1, 64, 64)
        assert torch.equal(batch["source"], batch["output"])
        for k, rid in enumerate(batch["id"]):
            p = pipe.placement(records[rid], epoch=2, seed=5)
            assert p["resized"] == (64, W) and p["top"] == 0 and 0 <= p["left"] <= W - 64
            want = expected_coordinates(p["top"], p["left"], p["flip"], 64)
            assert np.array_equal(batch["source"][k].numpy(), want), rid
            assert np.array_equal(batch["mask"][k, 0].numpy(), want[0]), rid
            lefts.add(p["left"])
            flips.add(p["flip"])
            n += 1
        assert batch["instruction"] == [f"edit {i}" for i in batch["id"]]
        assert batch["edit_type"] == ["recolour"] * 8
    assert n == 24
    assert len(lefts) > 10 and flips == {True, False}
    # Another epoch draws other boxes.
    other = [pipe.placement(r, epoch=3, seed=5)["left"] for r in records.values()]
    assert other != [pipe.placement(r, epoch=2, seed=5)["left"] for r in records.values()]


def test_center_crop_and_letterbox_are_exact(coord_ds: Path) -> None:
    rec = editshard.open(coord_ds)[0]
    center = Pipeline(64, images=("source",))([rec])["source"][0].numpy()
    # torchvision's CenterCrop: int(round((200 - 64) / 2)) = 68.
    assert np.array_equal(center, expected_coordinates(0, 68, False, 64))
    # "longer" on a 200-wide canvas of height 128: the image keeps its 200x64 pixels,
    # centred with (128 - 64) // 2 = 32 rows of black above.
    box = Pipeline((128, 200), resize="longer", images=("source",))([rec])["source"][0]
    assert torch.equal(box[:, :32], torch.zeros(3, 32, 200, dtype=torch.uint8))
    assert torch.equal(box[:, 96:], torch.zeros(3, 32, 200, dtype=torch.uint8))
    assert np.array_equal(box[:, 32:96].numpy(), coordinates().transpose(2, 0, 1))


def test_a_mask_lines_up_with_its_image(tmp_path: Path, cli: Path) -> None:
    # A 128x96 source with a white rectangle in its blue channel, and the same rectangle as a
    # half-resolution mask: after a 2x downscale of the source (and none of the mask), the
    # thresholded blue channel and the mask must cover the same canvas pixels.
    src = np.zeros((96, 128, 3), np.uint8)
    src[24:72, 32:96, 2] = 255
    mask = np.zeros((48, 64), np.uint8)
    mask[12:36, 16:48] = 255
    rows = [
        {"id": f"m{i}", "source": png(src), "output": png(src), "mask": png(mask)}
        for i in range(16)
    ]
    ds_path = make_dataset(tmp_path, cli, rows)
    # Canvas 48: the source is halved (96 -> 48 rows), the mask kept at scale 1.
    pipe = Pipeline(48, crop="random", flip=0.5, images=("source", "mask"))
    batch = EditDataset(ds_path, pipeline=pipe)[list(range(16))]
    assert set(batch["mask"].unique().tolist()) <= {0, 255}  # nearest: no blending
    blue = batch["source"][:, 2] > 127
    assert torch.equal(blue, batch["mask"][:, 0] > 127)
    assert blue.any(dim=(1, 2)).all()


def tv_reference(
    img: np.ndarray, size: int, interpolation: Any = None, to_float: bool = False
) -> torch.Tensor:
    from torchvision.transforms import v2

    steps: list[Any] = [
        v2.Resize(
            size, antialias=True, **({"interpolation": interpolation} if interpolation else {})
        ),
        v2.CenterCrop(size),
    ]
    if to_float:
        steps += [
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3]),
        ]
    t = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    out: torch.Tensor = v2.Compose(steps)(t)
    return out


def test_resampling_within_tolerance_of_torchvision(photo_ds: Path) -> None:
    """Stated tolerance (python/README.md): uint8 values within 1 of torchvision v2's
    ``Resize(antialias=True)`` + ``CenterCrop`` on the same decoded pixels, a mean absolute
    difference under 0.3 and no bias (the resampler's fixed-point rounding: about 20% of
    values differ by 1, either way); float32 after normalisation within 1/255 / std."""
    pytest.importorskip("torchvision")
    from torchvision.transforms import InterpolationMode

    ds = editshard.open(photo_ds)
    for size, role in [(224, "output"), (300, "output"), (600, "output"), (224, "source")]:
        # PNG outputs (lossless), and JPEG sources decoded whole (no IDCT scaling) so that
        # both sides start from the same pixels.
        pipe = Pipeline(size, images=(role,), scaled_jpeg=False)
        recs = ds[0:4]
        got = pipe(recs)[role]
        for k, rec in enumerate(recs):
            img = (rec.source if role == "source" else rec.turns[0].output).to_numpy(mode="RGB")
            want = tv_reference(img, size)
            diff = (got[k].int() - want.int()).abs()
            assert diff.max() <= 1, (size, role, diff.max())
            assert diff.float().mean() < 0.3, (size, role)
            assert abs((got[k].float() - want.float()).mean()) < 0.02, (size, role)
    # Bicubic (Catmull-Rom, a = -0.5, as Pillow and torchvision): the same mean, and 99.5%
    # within 1; the rest are overshoots past 0 or 255 between the two passes, clamped
    # differently (up to 16 levels, rarely).
    recs = ds[0:2]
    for size in (224, 600):
        got = Pipeline(size, interpolation="bicubic", images=("output",))(recs)["output"]
        for k, rec in enumerate(recs):
            img = rec.turns[0].output.to_numpy()
            diff = (got[k].int() - tv_reference(img, size, InterpolationMode.BICUBIC).int()).abs()
            assert diff.float().mean() < 0.3 and (diff > 1).float().mean() < 0.005, size
    # float32, normalised.
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    got = Pipeline(224, dtype="float32", mean=mean, std=std, images=("output",))(recs)["output"]
    for k, rec in enumerate(recs):
        want = tv_reference(rec.turns[0].output.to_numpy(), 224, to_float=True)
        tol = torch.tensor([1 / 255 / s + 1e-5 for s in std]).view(3, 1, 1)
        assert ((got[k] - want).abs() <= tol).all()


def test_scaled_jpeg_decoding_stays_close(photo_ds: Path) -> None:
    """A 640x480 JPEG source wanted at 224 (shorter side; at most half) is decoded at 1/2
    by its IDCT: mean absolute difference from the whole decode + resize under 3.5 levels
    (2.7 measured on this noisy image: the IDCT's scaling keeps more fine detail than the
    bilinear filter)."""
    pytest.importorskip("torchvision")
    recs = editshard.open(photo_ds)[0:4]
    fast = Pipeline(224, images=("source",))(recs)["source"].float()
    whole = Pipeline(224, images=("source",), scaled_jpeg=False)(recs)["source"].float()
    mad = (fast - whole).abs().mean().item()
    assert 0 < mad < 3.5, mad


def test_normalisation_and_dtypes(photo_ds: Path) -> None:
    recs = editshard.open(photo_ds)[0:3]
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    kw: dict[str, Any] = {"crop": "random", "flip": 0.5, "images": ("source", "output")}
    u8 = Pipeline(160, **kw)(recs, epoch=1)
    f32 = Pipeline(160, dtype="float32", **kw)(recs, epoch=1)
    norm = Pipeline(160, dtype="float32", mean=mean, std=std, **kw)(recs, epoch=1)
    bf16 = Pipeline(160, dtype="bfloat16", mean=mean, std=std, **kw)(recs, epoch=1)
    for role in ("source", "output"):
        assert u8[role].dtype == torch.uint8 and f32[role].dtype == torch.float32
        assert bf16[role].dtype == torch.bfloat16 and bf16[role].shape == (3, 3, 160, 160)
        assert u8[role].is_contiguous() and bf16[role].is_contiguous()
        assert torch.equal(f32[role], u8[role].float() / 255)
        m = torch.tensor(mean).view(1, 3, 1, 1)
        s = torch.tensor(std).view(1, 3, 1, 1)
        assert torch.allclose(norm[role], (u8[role].float() / 255 - m) / s, atol=1e-6)
        assert torch.equal(bf16[role], norm[role].to(torch.bfloat16))
    with pytest.raises(ValueError, match="float32"):
        Pipeline(64, mean=mean, std=std)
    with pytest.raises(ValueError, match="crop=None"):
        Pipeline(64, crop=None)
    with pytest.raises(ValueError, match="images"):
        Pipeline(64, images=("source", "depth"))


def per_id(batches: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for b in batches:
        for k, rid in enumerate(b["id"]):
            t = torch.cat([b["source"][k], b["output"][k]])
            if rid in out:
                assert torch.equal(out[rid], t)  # a padded repeat gets the same crop
            out[rid] = t.clone()
    return out


def test_same_crops_for_any_workers_and_after_resume(photo_ds: Path) -> None:
    pipe = Pipeline(96, crop="random", flip=0.5, dtype="float32", threads=2)

    def make() -> IterableEditDataset:
        ds = IterableEditDataset(photo_ds, batch_size=2, seed=11, pipeline=pipe)
        ds.set_epoch(4)
        return ds

    ref = None
    for workers in (0, 1, 3):
        loader = DataLoader(make(), batch_size=None, num_workers=workers)
        got = per_id(list(loader))
        assert len(got) == 12
        if ref is None:
            ref = got
        else:
            assert got.keys() == ref.keys()
            assert all(torch.equal(got[i], ref[i]) for i in ref), workers
    assert ref is not None
    # Resume: two batches through a 2-worker stateful loader, then a 3-worker one.
    first = StatefulDataLoader(make(), batch_size=None, num_workers=2)
    it = iter(first)
    head = [next(it), next(it)]
    state = first.state_dict()
    del it, first
    resumed = make()
    resumed.load_state_dict(state)
    tail = list(DataLoader(resumed, batch_size=None, num_workers=3))
    got = per_id(head + tail)
    assert got.keys() == ref.keys()
    assert all(torch.equal(got[i], ref[i]) for i in ref)
    # The map-style dataset draws from the same (seed, epoch, id).
    mds = EditDataset(photo_ds, pipeline=pipe, seed=11)
    mds.set_epoch(4)
    sampler = BatchSampler(SequentialSampler(mds), batch_size=5, drop_last=False)
    got = per_id(list(DataLoader(mds, batch_size=None, sampler=sampler, num_workers=2)))
    assert all(torch.equal(got[i], ref[i]) for i in ref)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose (valid, CRC-correct) header claims width x height, with a tiny body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_an_oversized_image_is_a_bounded_located_error(tmp_path: Path, cli: Path) -> None:
    good = png(coordinates())
    huge = png_claiming(30_000, 30_000)  # 2.7 GB decoded: over the 1 GiB default
    rows = [{"id": f"ok{i}", "source": good, "output": good} for i in range(5)]
    rows.insert(2, {"id": "huge", "source": good, "output": huge})
    ds_path = make_dataset(tmp_path, cli, rows)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pipe = Pipeline(32)
    ds = IterableEditDataset(ds_path, batch_size=3, shuffle=False, pipeline=pipe)
    with pytest.raises(editshard.DecodeError) as err:
        list(DataLoader(ds, batch_size=None))
    assert err.value.id == "huge" and err.value.kind == "limit"
    assert "huge" in str(err.value) and "output" in str(err.value)
    assert "30000x30000" in str(err.value) and "max_decode_bytes" in str(err.value)
    assert isinstance(err.value, ValueError)
    # Skipped with skip_corrupt: the batch is topped up to its size with its other records.
    ds = IterableEditDataset(ds_path, batch_size=3, shuffle=False, pipeline=pipe, skip_corrupt=True)
    batches = list(DataLoader(ds, batch_size=None))
    ids = [i for b in batches for i in b["id"]]
    assert "huge" not in ids and {f"ok{i}" for i in range(5)} <= set(ids)
    assert all(b["source"].shape[0] == 3 for b in batches)
    # The same limit in to_numpy() and decode_image().
    rec = editshard.open(ds_path).get("huge")
    with pytest.raises(editshard.DecodeError, match="max_decode_bytes") as err2:
        rec.turns[0].output.to_numpy()
    assert err2.value.kind == "limit"
    assert rec.source.to_numpy().shape == (H, W, 3)
    with pytest.raises(editshard.DecodeError):
        editshard.decode_image(good, max_decode_bytes=W * H * 3 - 1)
    assert editshard.decode_image(good, max_decode_bytes=W * H * 3).shape == (H, W, 3)
    # A smaller limit refuses what the default accepts; nothing near 2.7 GB was allocated.
    with pytest.raises(editshard.DecodeError):
        Pipeline(32, max_decode_bytes=1000)([rec], skip_corrupt=False)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200, grown_mib


def test_pipeline_memory_bounded_over_an_epoch(big_sample: Path) -> None:
    def rss_mib() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    pipe = Pipeline(256, crop="random", flip=0.5, dtype="float32", mean=[0.5] * 3, std=[0.5] * 3)
    ds = IterableEditDataset(
        big_sample, batch_size=6, seed=1, pipeline=pipe, prefetch_bytes=16 << 20
    )
    run: Callable[[int], int] = lambda e: (ds.set_epoch(e), sum(len(b["id"]) for b in ds))[1]
    for e in range(3):  # warm up: runtime, allocator pools
        run(e)
    gc.collect()
    start = rss_mib()
    peak = start
    pairs = 0
    for e in range(3, 15):
        pairs += run(e)
        gc.collect()
        peak = max(peak, rss_mib())
    print(
        f"\nRSS {start:.1f} MiB after 3 epochs, at most {peak:.1f} MiB over 12 more ({pairs} pairs)"
    )
    # A batch is 2 x 6 x 3 x 256 x 256 float32 = 9 MiB; a leak of batches or decoded images
    # (420x420x3 each) would add tens of MiB per epoch.
    assert peak - start < 60


class _SharedFlag(torch.utils.data.IterableDataset[dict[str, Any]]):
    """Notes, where the batch is made, whether its tensors are in shared memory already."""

    def __init__(self, inner: IterableEditDataset) -> None:
        self.inner = inner

    def __iter__(self) -> Any:
        for b in self.inner:
            b["made_shared"] = b["source"].is_shared() and b["output"].is_shared()
            yield b


def test_worker_batches_are_written_into_shared_memory(photo_ds: Path) -> None:
    # In a worker the pipeline writes into shared memory, so sending the batch to the main
    # process passes a handle: no copy after the pipeline (in the main process, private).
    pipe = Pipeline(64, crop="random", flip=0.5)
    for workers, shared in ((2, True), (0, False)):
        ds = _SharedFlag(IterableEditDataset(photo_ds, batch_size=4, pipeline=pipe))
        flags = [b["made_shared"] for b in DataLoader(ds, batch_size=None, num_workers=workers)]
        assert flags and all(f is shared for f in flags), (workers, flags)
