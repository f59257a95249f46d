"""Writing from Python: the record constructors, `editshard.Writer` (local and s3s-fs), its
guarantees (the lock, unique ids, nothing published after an exception), `Dataset.save`,
parts joined by `editshard.mix`, and a 2 GiB stream written in bounded memory."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import S3, run_cli
from PIL import Image as PILImage

import editshard


def pixels(seed: int, h: int = 24, w: int = 32, c: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def png(seed: int) -> editshard.Image:
    return editshard.Image.from_numpy(pixels(seed), "PNG")


def jpeg(seed: int) -> editshard.Image:
    return editshard.Image.from_numpy(pixels(seed), "JPEG")


def image_bytes(img: editshard.Image) -> bytes:
    assert img.data is not None
    return bytes(img.data)


def every_kind() -> list[editshard.Record]:
    """One record of each kind, with rejected edits, masks (one in a multi-turn record's
    middle turn), captions, variants, scores, provenance and extras; two records share a
    source (stored once)."""
    shared = editshard.Image(image_bytes(png(1)), url="https://x/shared.png")
    webp = editshard.Image.from_numpy(pixels(2, c=4), "WEBP", caption="an RGBA photo")
    pil = PILImage.fromarray(pixels(3)[:, :, 0], mode="L")
    mask = editshard.Image.from_pil(pil, "PNG")
    sft = editshard.Record(
        "sft/1",
        "sft",
        shared,
        [
            editshard.Turn(
                "Make the sky purple",
                short_instruction="purple sky",
                edit_type="Change color",
                category="Color",
                output=editshard.Image(
                    image_bytes(jpeg(4)), scores={"instruction_compliance": 0.75, "quality": 1.0}
                ),
                mask=mask,
                instruction_variants=["Turn the sky purple", "Purple sky, please"],
            )
        ],
        provenance={"subset": "sft", "file": "gen.jsonl", "line": 3, "dataset": "me/mine"},
        extras={"judge": {"model": "x", "votes": [1, 2]}, "note": "é ✓"},
    )
    preference = editshard.Record(
        "preference/1",
        "preference",
        shared,
        [
            editshard.Turn(
                "Remove the car",
                output=webp,
                rejected=[jpeg(5), png(6)],
            )
        ],
    )
    multi = editshard.Record(
        "multi-turn/1",
        "multi-turn",
        png(7),
        [
            editshard.Turn("step one", output=png(8)),
            editshard.Turn(
                "step two", output=png(9), mask=editshard.Image.from_numpy(pixels(10, c=1))
            ),
            editshard.Turn(None, output=png(11), rejected=[png(12)]),
        ],
    )
    generic = editshard.Record(
        "generic/1",
        "generic",
        editshard.Image(bytearray(image_bytes(jpeg(13))), path="imgs/13.jpg", rotation=90),
        [editshard.Turn("anything", output=png(14))],
    )
    return [sft, preference, multi, generic]


def test_constructors_read_what_the_bytes_are() -> None:
    img = png(1)
    assert (img.media_type, img.width, img.height) == ("image/png", 32, 24)
    assert img.sha256 == hashlib.sha256(image_bytes(img)).hexdigest() and img.len == len(
        image_bytes(img)
    )
    assert jpeg(1).media_type == "image/jpeg"
    assert editshard.Image.from_numpy(pixels(1)[:, :, 0]).to_numpy().shape == (24, 32, 1)
    rgb = pixels(2)
    assert np.array_equal(editshard.Image.from_numpy(rgb, "WEBP").to_numpy(), rgb), "lossless"
    scored = editshard.Image(image_bytes(img), scores={"b": 0.5, "a": 2.0}, caption="c")
    assert list(scored.scores) == ["b", "a"] and scored.caption == "c"
    with pytest.raises(ValueError, match="not an image"):
        editshard.Image(b"<html>nope</html>")
    with pytest.raises(ValueError, match="media_type"):
        editshard.Image(image_bytes(img), media_type="image/jpeg")
    with pytest.raises(TypeError):
        editshard.Image(12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="output"):
        editshard.Turn("no output")
    with pytest.raises(ValueError, match="kind"):
        editshard.Record("x", "sfT", img, [editshard.Turn("i", output=img)])
    with pytest.raises(ValueError, match='provenance has no field "sorce"'):
        editshard.Record("x", "sft", img, [], provenance={"sorce": 1})
    with pytest.raises(ValueError, match="JSON"):
        editshard.Record("x", "sft", img, [], extras={"raw": b"bytes"})
    with pytest.raises(ValueError, match="JPEG"):
        editshard.Image.from_numpy(pixels(1, c=4), "JPEG")
    with pytest.raises(ValueError, match="GIF"):
        editshard.Image.from_numpy(pixels(1), "GIF")
    with pytest.raises(TypeError, match="uint8"):
        editshard.Image.from_numpy(pixels(1).astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        editshard.Image.from_numpy(pixels(1)[0, 0])
    assert editshard.Record(
        "x", "sft", img, [], provenance={"line": 4, "row": None}
    ).provenance == {"line": 4}


def test_from_file_keeps_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(image_bytes(jpeg(3)))
    img = editshard.Image.from_file(path, url="https://x/a.jpg")
    assert image_bytes(img) == path.read_bytes() and img.url == "https://x/a.jpg"


def test_round_trip_of_every_kind_through_the_cli_and_python(tmp_path: Path) -> None:
    records = every_kind()
    out = tmp_path / "out"
    with editshard.Writer(out, shard_size=2000, licence="CC-BY-4.0") as w:
        w.write_many(records)
    manifest = w.manifest
    assert manifest is not None and manifest["records"] == 4 and len(manifest["shards"]) > 1
    assert manifest["licence"] == "CC-BY-4.0"
    assert manifest["kinds"] == {"generic": 1, "multi-turn": 1, "preference": 1, "sft": 1}
    # The shared source of the first two records is stored once (they are adjacent).
    assert manifest["images"]["referenced"] - manifest["images"]["stored"] >= 1
    assert sorted(os.listdir(out)) == ["manifest.json"] + [s["path"] for s in manifest["shards"]]

    run_cli("verify", str(out), "--decode")  # exit 1 on any problem

    wanted = {r.id: r for r in records}
    lines = run_cli("cat", str(out), "--images").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r.id for r in records]
    for line in lines:
        got = json.loads(line)
        want = wanted[got["id"]]
        expected = want.to_dict()
        expected["provenance"].setdefault("licence", "CC-BY-4.0")
        assert strip_data(got) == expected
        # Byte for byte: every image the CLI prints; masks through their SHA-256.
        printed = [got["source"]] + [
            img for t in got["turns"] for img in [t["output"], *t.get("rejected", [])]
        ]
        originals = [want.source] + [img for t in want.turns for img in [t.output, *t.rejected]]
        assert [base64.b64decode(p["data"]) for p in printed] == [image_bytes(o) for o in originals]
        for t_got, t_want in zip(got["turns"], want.turns):
            if t_want.mask is not None:
                assert (
                    t_got["mask"]["sha256"] == hashlib.sha256(image_bytes(t_want.mask)).hexdigest()
                )

    ds = editshard.open(out)
    assert [r.id for r in ds] == [r.id for r in records]
    for rec in ds:
        want = wanted[rec.id]
        assert rec.to_dict()["turns"] == want.to_dict()["turns"]
        assert [image_bytes(i) for i in rec.images()] == [image_bytes(i) for i in want.images()]
        assert rec.provenance["licence"] == "CC-BY-4.0"
    assert ds.get("sft/1").provenance["dataset"] == "me/mine"
    assert ds.get("generic/1").source.rotation == 90
    assert ds.get("sft/1").turns[0].instruction_variants == [
        "Turn the sky purple",
        "Purple sky, please",
    ]


def strip_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_data(v) for k, v in value.items() if k != "data"}
    if isinstance(value, list):
        return [strip_data(v) for v in value]
    return value


def test_an_exception_in_the_block_publishes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with (
        pytest.raises(RuntimeError, match="judge crashed"),
        editshard.Writer(out, shard_size=1000) as w,
    ):
        w.write_many(every_kind())
        assert w.records == 4
        raise RuntimeError("judge crashed")
    assert not out.exists(), os.listdir(out)

    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(KeyboardInterrupt), editshard.Writer(existing, shard_size=1000) as w:
        w.write_many(every_kind())
        raise KeyboardInterrupt
    assert os.listdir(existing) == []

    def failing() -> Iterator[editshard.Record]:
        yield from every_kind()[:2]
        raise ValueError("the generator broke")

    with pytest.raises(ValueError, match="generator broke"):
        editshard.write(out, failing())
    assert not out.exists()


def test_two_writers_on_one_destination_the_second_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = editshard.Writer(out)
    with pytest.raises(editshard.InvalidError, match="locked by another run") as err:
        editshard.Writer(out)
    assert "editshard.Writer (Python)" in str(err.value)
    # Another process too: the lock is the file system's.
    script = f"import editshard; editshard.Writer({str(out)!r})"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0 and "locked" in proc.stderr, proc.stderr
    first.write(every_kind()[0])
    first.close()
    with pytest.raises(editshard.InvalidError, match="already holds a dataset"):
        editshard.Writer(out)
    with pytest.raises(ValueError, match="closed"):
        first.write(every_kind()[1])


def test_a_repeated_id_is_refused_and_the_writer_goes_on(tmp_path: Path) -> None:
    records = every_kind()
    with editshard.Writer(tmp_path / "out", shard_size=1) as w:
        w.write_many(records)
        for again in (records[0], records[3]):  # a finished shard's, the open shard's
            with pytest.raises(editshard.InvalidError, match="id") as err:
                w.write(again)
            assert err.value.id == again.id
    assert w.manifest is not None and w.manifest["records"] == 4
    assert [r.id for r in editshard.open(tmp_path / "out")] == [r.id for r in records]


def test_format_1_0_refuses_what_it_cannot_hold(tmp_path: Path) -> None:
    sft, _, _, generic = every_kind()
    with editshard.Writer(tmp_path / "old", format_version="1.0") as w:
        w.write(generic)
        with pytest.raises(editshard.InvalidError, match="1.0"):
            w.write(sft)  # a mask, variants and a provenance dataset
    assert editshard.open(tmp_path / "old").manifest["format_version"] == "1.0"
    with pytest.raises(ValueError, match="format_version"):
        editshard.Writer(tmp_path / "x", format_version="2.0")
    for read_only in ("https://example.com/ds", "hf://datasets/org/name"):
        with pytest.raises(ValueError, match="read-only"):
            editshard.Writer(read_only)


def test_save_copies_a_filtered_selection_without_reencoding(sample: Path, tmp_path: Path) -> None:
    ds = editshard.open(sample)
    sft = ds.filter(kind="sft")
    manifest = sft.save(tmp_path / "sft", shard_size="20kB")
    assert manifest["records"] == len(sft) == 12 and manifest["kinds"] == {"sft": 12}
    assert manifest["licence"] == ds.manifest["licence"]
    saved = editshard.open(tmp_path / "sft")
    for a, b in zip(sft[:], saved):
        assert a.to_dict() == b.to_dict()
        assert [i.sha256 for i in a.images()] == [i.sha256 for i in b.images()]
        assert [image_bytes(i) for i in a.images()] == [image_bytes(i) for i in b.images()]
    run_cli("verify", str(tmp_path / "sft"), "--decode")

    whole = ds.save(tmp_path / "all")
    assert whole["records"] == 36 and whole["images"] == ds.manifest["images"]
    assert [r.id for r in editshard.open(tmp_path / "all")] == [r.id for r in ds]


def test_parts_written_apart_are_joined_by_mix(tmp_path: Path) -> None:
    records = every_kind()
    out = tmp_path / "out"
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, {tests!r})
        import editshard
        from test_writer import every_kind
        part = int(sys.argv[1])
        records = every_kind()[part::2]
        editshard.write(f"{out}/part-{{part}}", records, shard_size=1500)
        """
    ).format(tests=str(Path(__file__).parent), out=str(out))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)]) for i in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    report = editshard.mix(out, [out / "part-0", out / "part-1"])
    assert report["records"] == 4 and report["kept"] == report["shards"], report
    assert [s["name"] for s in report["sources"]] == ["part-0", "part-1"]
    joined = editshard.open(out)
    assert sorted(r.id for r in joined) == sorted(r.id for r in records)
    run_cli("verify", str(out))


def test_writing_to_s3(s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "staging"))
    (tmp_path / "staging").mkdir()
    records = every_kind()
    url = "s3://bucket/written"
    with editshard.Writer(url, shard_size=1500, s3_endpoint=s3.endpoint) as w:
        w.write_many(records)
        with pytest.raises(editshard.InvalidError, match="locked"):
            editshard.Writer(url, s3_endpoint=s3.endpoint)
    assert w.manifest is not None and len(w.manifest["shards"]) > 2
    ds = editshard.open(url, s3_endpoint=s3.endpoint)
    assert [r.id for r in ds] == [r.id for r in records]
    for got, want in zip(ds, records):
        assert [image_bytes(i) for i in got.images()] == [image_bytes(i) for i in want.images()]
    assert os.listdir(tmp_path / "staging") == [], "staged shards removed"
    stored = sorted(os.listdir(s3.data / "bucket" / "written"))
    assert stored == sorted(["manifest.json"] + [s["path"] for s in w.manifest["shards"]])

    failed = "s3://bucket/failed"
    with (
        pytest.raises(RuntimeError),
        editshard.Writer(failed, shard_size=1500, s3_endpoint=s3.endpoint) as w,
    ):
        w.write_many(records)
        raise RuntimeError("stop")
    left = s3.data / "bucket" / "failed"
    assert not left.exists() or os.listdir(left) == [], os.listdir(left)


def test_gil_released_while_hashing_and_writing(tmp_path: Path) -> None:
    """Another Python thread keeps running while Rust hashes a new image and while the writer
    appends (CRCs, compression, file writes): it could not if the GIL were held."""
    noise = np.random.default_rng(5).integers(0, 256, 48 << 20, dtype=np.uint8).tobytes()
    data = image_bytes(png(1))[:33] + noise  # a PNG header, then 48 MiB
    counter = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    advanced = []
    try:
        with editshard.Writer(tmp_path / "out") as w:
            before = counter[0]
            img = editshard.Image(data)
            advanced.append(counter[0] - before)
            other = editshard.Image(data[:-1])
            record = editshard.Record("big", "sft", img, [editshard.Turn("x", output=other)])
            before = counter[0]
            w.write(record)
            advanced.append(counter[0] - before)
    finally:
        stop.set()
        t.join()
    assert all(n > 1000 for n in advanced), advanced


MEMORY_SCRIPT = """
import os, sys, editshard

# A PNG header (what the writer reads: signature and IHDR) followed by noise: a valid image
# to the writer and to `verify` without --decode, made without encoding anything.
import struct, zlib
ihdr = struct.pack(">IIBBBBB", 1024, 1024, 8, 2, 0, 0, 0)
header = b"\\x89PNG\\r\\n\\x1a\\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
header += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
pool = os.urandom(16 << 20)
total, image_len = int(sys.argv[2]), 1 << 20

def records():
    for i in range(total // (2 * image_len)):
        off = (i * 7919) % (len(pool) - image_len)
        src = editshard.Image(header + pool[off : off + image_len])
        out = editshard.Image(header + pool[off + 1 : off + 1 + image_len])
        yield editshard.Record(f"r/{i}", "sft", src, [editshard.Turn("x", output=out)])

m = editshard.write(sys.argv[1], records(), shard_size="256MiB")
status = open("/proc/self/status").read()
peak = next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]
print(m["records"], m["bytes"], int(peak) // 1024)
"""


def test_a_2_gib_stream_is_written_in_bounded_memory(tmp_path: Path) -> None:
    out = tmp_path / "big"
    total = 2 << 30
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(out), str(total)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    records, size, peak_mib = (int(x) for x in proc.stdout.split())
    print(f"\nwrote {records} records, {size / 2**30:.2f} GiB; peak RSS {peak_mib} MiB")
    assert size >= total and records == total // (2 << 20)
    run_cli("verify", str(out))
    # The bound: the interpreter and the extension (~25 MiB), the script's 16 MiB pool, the
    # record being made and the one being written (2 MiB each), the shard writer's open group
    # (here one record: records share no image) and the groups it holds back while sampling
    # for its metadata dictionary (8 MiB at most), a 1 MiB write buffer: about 60 MiB, measured
    # 57. Nothing grows with the bytes written (2 GiB here).
    assert peak_mib < 128, f"peak RSS {peak_mib} MiB"
    for p in out.iterdir():
        p.unlink()
