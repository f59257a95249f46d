"""The dataset object: opening, random access, records and images, filters, errors."""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import editshard


@pytest.fixture(scope="module")
def ds(sample: Path) -> editshard.Dataset:
    return editshard.open(sample)


def test_open_len_and_manifest_tables(ds: editshard.Dataset) -> None:
    assert len(ds) == 36
    assert ds.kinds == {"multi-turn": 12, "preference": 12, "sft": 12}
    assert sum(ds.shard_records) == 36 and len(ds.shard_records) > 1
    assert ds.edit_types and all(isinstance(v, int) for v in ds.edit_types.values())
    assert isinstance(ds.categories, dict)
    assert ds.manifest["records"] == 36


def test_index_negative_and_out_of_range(ds: editshard.Dataset) -> None:
    assert ds[-1].id == ds[35].id
    assert ds[0].id != ds[1].id
    with pytest.raises(IndexError):
        ds[36]
    with pytest.raises(IndexError):
        ds[-37]
    assert [r.id for r in ds[2:5]] == [ds[i].id for i in range(2, 5)]


def test_get_by_id_and_missing_id(ds: editshard.Dataset) -> None:
    rec = ds[7]
    assert ds.get(rec.id).id == rec.id
    assert ds.find(rec.id) == 7 and rec.id in ds
    with pytest.raises(editshard.NotFoundError) as err:
        ds.get("no/such/id")
    assert isinstance(err.value, KeyError) and err.value.id == "no/such/id"


def test_get_many_matches_single_reads(ds: editshard.Dataset) -> None:
    idx = [5, 0, 35, 6, 7]
    many = ds.get_many(idx)
    assert [r.id for r in many] == [ds[i].id for i in idx]
    assert [r.source.sha256 for r in many] == [ds[i].source.sha256 for i in idx]


def test_record_attributes(ds: editshard.Dataset) -> None:
    kinds = set()
    for rec in ds:
        kinds.add(rec.kind)
        assert rec.turns
        for img in rec.images():
            assert img.data is not None
            raw = bytes(img.data)
            assert len(raw) == img.len
            assert hashlib.sha256(raw).hexdigest() == img.sha256
            assert img.media_type in ("image/jpeg", "image/png", "image/webp")
        t = rec.turns[0]
        assert t.output.width > 0 and isinstance(t.rejected, list)
        if rec.kind == "preference":
            assert t.rejected
        d = rec.to_dict()
        assert d["id"] == rec.id and d["kind"] == rec.kind
        assert isinstance(rec.provenance, dict) and isinstance(rec.extras, dict)
        assert isinstance(rec.scores, dict)
    assert kinds == {"sft", "preference", "multi-turn"}
    assert ds[0].turns[0].instruction


def test_image_data_is_a_zero_copy_buffer(ds: editshard.Dataset) -> None:
    img = ds[0].source
    data = img.data
    assert data is not None
    view = memoryview(data)
    assert view.readonly and view.nbytes == img.len and view.format == "B"
    # The same memory every time: no copy per access.
    arr1 = np.frombuffer(data, dtype=np.uint8)
    arr2 = np.frombuffer(data, dtype=np.uint8)
    assert arr1.__array_interface__["data"][0] == arr2.__array_interface__["data"][0]
    del data, img
    assert arr1.sum() > 0  # the array keeps the Rust buffer alive
    with pytest.raises(TypeError):
        view[0] = 1  # type: ignore[index]


def test_to_numpy_matches_pil(ds: editshard.Dataset) -> None:
    for rec in ds[:6]:
        img = rec.source
        arr = img.to_numpy()
        pil = img.to_pil()
        assert arr.dtype == np.uint8 and arr.shape[:2] == (img.height, img.width)
        ref = np.asarray(pil.convert("RGB"))
        rgb = img.to_numpy(mode="RGB")
        assert rgb.shape == ref.shape
        # Different JPEG decoders (zune-jpeg vs libjpeg) may differ by rounding.
        assert np.abs(rgb.astype(int) - ref.astype(int)).mean() < 3
        rgb[0, 0, 0] = 7  # writable


def _encode(mode: str, fmt: str, size: tuple[int, int] = (23, 17)) -> bytes:
    rng = np.random.default_rng(1)
    if mode == "CMYK":
        arr = rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
    elif mode == "L":
        arr = rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    else:
        arr = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
    out = io.BytesIO()
    kwargs = {"quality": 95} if fmt == "JPEG" else {}
    PILImage.fromarray(arr, mode=mode).save(out, format=fmt, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize(
    "mode,fmt,channels",
    [
        ("RGB", "PNG", 3),
        ("RGBA", "PNG", 4),
        ("L", "PNG", 1),
        ("RGB", "JPEG", 3),
        ("L", "JPEG", 1),
        ("CMYK", "JPEG", 3),
        ("RGBA", "WEBP", 4),
    ],
)
def test_decode_modes(mode: str, fmt: str, channels: int) -> None:
    data = _encode(mode, fmt)
    arr = editshard.decode_image(data)
    pil = PILImage.open(io.BytesIO(data))
    assert arr.shape == (pil.height, pil.width, channels)
    target = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    ref = np.asarray(pil.convert(target)).reshape(arr.shape)
    tolerance = 0 if fmt in ("PNG", "WEBP") and mode != "RGBA" else 4
    if fmt == "WEBP":
        tolerance = 0  # lossless WebP from Pillow
    assert np.abs(arr.astype(int) - ref.astype(int)).mean() <= tolerance
    assert editshard.decode_image(data, mode="RGB").shape[2] == 3
    assert editshard.decode_image(data, mode="L").shape[2] == 1


def test_exif_orientation_is_opt_in() -> None:
    img = PILImage.fromarray(np.zeros((10, 20, 3), dtype=np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif.tobytes())
    assert editshard.decode_image(out.getvalue()).shape == (10, 20, 3)
    assert editshard.decode_image(out.getvalue(), exif_transpose=True).shape == (20, 10, 3)


def test_metadata_only_and_projection(sample: Path) -> None:
    meta = editshard.open(sample, images="none")
    rec = meta[3]
    assert rec.source.data is None and rec.source.len > 0 and rec.source.sha256
    with pytest.raises(ValueError):
        rec.source.to_numpy()
    src = editshard.open(sample, images=["source"])[3]
    assert src.source.data is not None and src.turns[0].output.data is None
    assert editshard.open(sample).with_images("none")[3].source.data is None


def test_filters(ds: editshard.Dataset) -> None:
    sft = ds.filter(kind="sft")
    assert len(sft) == 12 and all(r.kind == "sft" for r in sft[:])
    edit_type = next(iter(ds.edit_types))
    by_type = ds.filter(edit_type=edit_type)
    assert 0 < len(by_type) <= 36
    assert all(any(t.edit_type == edit_type for t in r.turns) for r in by_type[:])
    it = list(ds.iter(kind=["sft", "preference"], images="none"))
    assert len(it) == 24 and all(r.source.data is None for r in it)


def test_iteration_orders(ds: editshard.Dataset) -> None:
    plain = [r.id for r in ds]
    assert plain == [ds[i].id for i in range(36)]
    shuffled = [r.id for r in ds.iter(shuffle=True, seed=3)]
    assert sorted(shuffled) == sorted(plain) and shuffled != plain
    block = [r.id for r in ds.iter(shuffle="block", window=4, seed=3, batch=5)]
    assert sorted(block) == sorted(plain)
    r0 = [r.id for r in ds.iter(shuffle=True, seed=3, rank=0, world_size=2, batch=4)]
    r1 = [r.id for r in ds.iter(shuffle=True, seed=3, rank=1, world_size=2, batch=4)]
    assert sorted(r0 + r1) == sorted(plain) and not set(r0) & set(r1)


def test_pickle_records_and_dataset(ds: editshard.Dataset) -> None:
    rec = ds[10]
    back = pickle.loads(pickle.dumps(rec))
    assert back.to_dict() == rec.to_dict()
    assert bytes(back.turns[0].output.data) == bytes(rec.turns[0].output.data)  # type: ignore[arg-type]
    img = pickle.loads(pickle.dumps(rec.source))
    assert bytes(img.data) == bytes(rec.source.data)  # type: ignore[arg-type]
    ds2 = pickle.loads(pickle.dumps(ds))
    assert len(ds2) == 36 and ds2[10].id == rec.id


def test_threads(ds: editshard.Dataset) -> None:
    results: dict[int, list[str]] = {}

    def work(t: int) -> None:
        results[t] = [ds[(t * 7 + i) % 36].id for i in range(36)]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in range(4):
        assert results[t] == [ds[(t * 7 + i) % 36].id for i in range(36)]


def test_fork_child_reopens(ds: editshard.Dataset) -> None:
    import os
    import signal

    expected = ds[5].id  # the parent's runtime and connections are live
    pid = os.fork()
    if pid == 0:  # child: no runtime threads here; the dataset must reopen itself
        signal.alarm(20)
        try:
            os._exit(0 if ds[5].id == expected and len(list(ds)) == 36 else 1)
        except BaseException:  # noqa: BLE001 - a forked child must never return into pytest
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert ds[5].id == expected  # the parent is unaffected


def test_fork_child_looks_up_by_id_first(sample: Path) -> None:
    """The id filters are read by a handle's first lookup by id, a forked worker's too."""
    import os
    import signal

    fresh = editshard.open(sample)
    expected = fresh[9].id  # no lookup by id yet: the filters are not read
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)
        try:
            ok = fresh.get(expected).id == expected and fresh.find(expected) == 9
            os._exit(0 if ok and "no/such/id" not in fresh else 1)
        except BaseException:  # noqa: BLE001 - a forked child must never return into pytest
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert fresh.get(expected).id == expected


def test_manifest_replaced_before_the_first_lookup_by_id(sample_copy: Path) -> None:
    import json

    ds = editshard.open(sample_copy)
    rid = ds[3].id
    assert ds.kinds  # a summary does not need the filters
    path = sample_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["note"] = "rewritten"
    path.write_text(json.dumps(manifest))
    with pytest.raises(editshard.InvalidError) as err:
        ds.get(rid)
    assert "changed since the dataset was opened" in str(err.value)
    assert err.value.shard and err.value.shard.endswith("manifest.json")
    assert err.value.id == rid
    assert ds[3].id == rid  # reads by index need no filter


# -- bad input ---------------------------------------------------------------------------


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(editshard.ObjectNotFoundError) as err:
        editshard.open(tmp_path)
    assert isinstance(err.value, editshard.StorageError)
    assert isinstance(err.value, editshard.NotFoundError)
    assert err.value.shard and err.value.shard.endswith("manifest.json")


def test_bad_location() -> None:
    with pytest.raises(editshard.Error):
        editshard.open("ftp://example/x")


def _damage_a_record(path: Path) -> tuple[int, str, set[str]]:
    """Flips bytes in the middle of the first shard's first record's source image; returns
    the record, its id, and the ids of every record sharing that (deduplicated) image."""
    ds = editshard.open(path, images="none")
    shard = sorted(path.glob("shard-*.esd"))
    first = shard[0]
    rec = ds[0]
    blob = bytearray(first.read_bytes())
    # find the source image by its hash: locate bytes of the image in the shard
    full = editshard.open(path)[0].source.data
    assert full is not None
    at = bytes(blob).find(bytes(full)[:64])
    assert at > 0
    mid = at + len(bytes(full)) // 2
    blob[mid : mid + 8] = bytes(b ^ 0xFF for b in blob[mid : mid + 8])
    first.write_bytes(bytes(blob))
    sha = rec.source.sha256
    sharing = {r.id for r in ds if any(i.sha256 == sha for i in r.images())}
    return 0, rec.id, sharing


def test_corrupt_record_is_located(sample_copy: Path) -> None:
    index, rid, _ = _damage_a_record(sample_copy)
    ds = editshard.open(sample_copy)
    with pytest.raises(editshard.CorruptionError) as err:
        ds[index]
    e = err.value
    assert e.shard and e.offset is not None
    assert e.record == index or e.id == rid
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is type(e) and (back.shard, back.offset, back.id) == (e.shard, e.offset, e.id)
    assert str(back) == str(e)
    assert ds[-1].id  # other records still read


def test_skip_corrupt_logs_and_skips(sample_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, rid, sharing = _damage_a_record(sample_copy)
    with pytest.raises(editshard.CorruptionError):
        list(editshard.open(sample_copy))
    ds = editshard.open(sample_copy, skip_corrupt=True)
    with caplog.at_level(logging.WARNING, logger="editshard"):
        ids = [r.id for r in ds]
    assert rid in sharing and len(ids) == 36 - len(sharing) and not sharing & set(ids)
    assert any("skipping damaged record" in m for m in caplog.messages)


def test_gil_released_while_decoding_and_reading(ds: editshard.Dataset) -> None:
    """Another Python thread keeps running while Rust decodes or reads (it could not if the
    GIL were held for the whole call)."""
    rng = np.random.default_rng(0)
    big = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (1500, 1500, 3), dtype=np.uint8)).save(big, "PNG")
    data = big.getvalue()
    counter = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time_ok = []
        for work in (
            lambda: editshard.decode_image(data),
            lambda: [ds.get_many(list(range(36))) for _ in range(20)],
        ):
            before = counter[0]
            work()
            time_ok.append(counter[0] - before)
    finally:
        stop.set()
        t.join()
    assert all(n > 1000 for n in time_ok), time_ok


def test_a_footer_cache_smaller_than_one_footer_still_reads_every_record(
    sample: Path, ds: editshard.Dataset
) -> None:
    """With ``footer_cache_bytes`` below one footer, every read jumping between shards loads
    its shard's footer again, and every record still comes back whole; the option survives
    pickling (as DataLoader workers receive it)."""
    tiny = pickle.loads(pickle.dumps(editshard.open(sample, footer_cache_bytes=1)))
    assert len(tiny.shard_records) > 1
    n = len(ds)
    for k in range(2 * n):
        i = (k * 7) % n
        got, want = tiny[i], ds[i]
        assert got.id == want.id
        assert bytes(got.source.data) == bytes(want.source.data)
    with pytest.raises(TypeError):
        editshard.open(sample, footer_cache_bytes="big")  # type: ignore[arg-type]
