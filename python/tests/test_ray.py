"""editshard.ray with real Ray Data: one local Ray session (2 CPUs) for the whole module.

Reading checks every field and byte of every row against the records read directly, the
task plan and size estimate against the manifest, filter pushdown, and (with nginx's access
log) that a metadata-only read requests no byte of any image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import S3, Nginx

import editshard

ray = pytest.importorskip(
    "ray", reason="Ray Data tests need ray[data]: scripts/install-test-deps.sh"
)
import editshard.ray as esray


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    # Workers get S3 credentials from their environment: the s3s-fs fixture's fixed keys.
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={
            "env_vars": {
                "AWS_ACCESS_KEY_ID": S3.access_key,
                "AWS_SECRET_ACCESS_KEY": S3.secret_key,
                "AWS_REGION": "us-east-1",
            }
        },
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    # A job that stops making progress fails in two minutes rather than Ray's thirty.
    ctx.execution_no_progress_timeout_s = 120
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def scored(sample: Path, cli: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample converted again with judge scores on every record's last output (two
    scores, spread over [0, 1)) and on some rejected images, so score filters select some."""
    import json
    import subprocess

    from conftest import SAMPLE

    work = tmp_path_factory.mktemp("scored")
    lines = []
    for k, rec in enumerate(editshard.open(sample, images="none")):
        lines.append(
            {
                "id": rec.id,
                "scores": {"instruction_compliance": (k * 7 % 36) / 36, "realism": k / 36},
            }
        )
        for r in rec.turns[-1].rejected:
            lines.append(
                {"id": rec.id, "image": r.path, "scores": {"instruction_compliance": 0.125}}
            )
    scores = work / "scores.jsonl"
    scores.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = work / "ds"
    subprocess.run(
        [str(cli), "convert", str(SAMPLE), "--out", str(out), "--scores", str(scores)]
        + [
            "--openimages-csv",
            str(SAMPLE / "openimages" / "train-images-boxable-with-rotation.csv"),
        ]
        + ["--openimages-dir", str(SAMPLE / "openimages"), "--shard-size", "12000"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out


def image_dict(image: dict[str, Any] | None) -> dict[str, Any] | None:
    """An image struct of a row in the shape of `Image.to_dict()` (no bytes)."""
    if image is None:
        return None
    out = {k: image[k] for k in ("media_type", "width", "height", "len", "sha256")}
    for k in ("url", "path", "rotation", "caption"):
        if image[k] is not None:
            out[k] = image[k]
    if image["scores"]:
        out["scores"] = [{"name": n, "value": v} for n, v in image["scores"]]
    return out


def row_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A row in the shape of `Record.to_dict()`."""
    import json

    turns = []
    for t in row["turns"]:
        turn: dict[str, Any] = {
            k: t[k]
            for k in ("instruction", "short_instruction", "edit_type", "category")
            if t[k] is not None
        }
        turn["output"] = image_dict(t["output"])
        if t["rejected"]:
            turn["rejected"] = [image_dict(r) for r in t["rejected"]]
        if t["mask"] is not None:
            turn["mask"] = image_dict(t["mask"])
        if t["instruction_variants"]:
            turn["instruction_variants"] = list(t["instruction_variants"])
        turns.append(turn)
    out: dict[str, Any] = {
        "id": row["id"],
        "kind": row["kind"],
        "source": image_dict(row["source"]),
        "turns": turns,
        "provenance": {k: v for k, v in row["provenance"].items() if v is not None},
    }
    if row["extras"] is not None:
        out["extras"] = json.loads(row["extras"])
    return out


def row_images(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A row's images in the canonical order (source, then per turn output, rejected, mask)."""
    images = [row["source"]]
    for t in row["turns"]:
        images.append(t["output"])
        images.extend(t["rejected"])
        if t["mask"] is not None:
            images.append(t["mask"])
    return images


def assert_rows_are_records(rows: list[dict[str, Any]], records: list[editshard.Record]) -> None:
    """Every field and every image byte of each row equals its record's."""
    assert [r["id"] for r in rows] == [r.id for r in records]
    for row, rec in zip(rows, records):
        assert row_dict(row) == rec.to_dict(), rec.id
        assert dict(row["scores"]) == pytest.approx(rec.scores), rec.id
        images = row_images(row)
        assert len(images) == len(rec.images())
        for got, want in zip(images, rec.images()):
            expected = None if want.data is None else bytes(want.data)
            assert got["bytes"] == expected, rec.id


def filtered_records(location: Path, **flt: Any) -> list[editshard.Record]:
    return sorted(editshard.open(location).filter(**flt)[:], key=lambda r: r.id)


def by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["id"])


def records_by_id(location: Path | str, **kw: Any) -> list[editshard.Record]:
    return sorted(editshard.open(location, **kw), key=lambda r: r.id)


# -- reading ---------------------------------------------------------------------------


def test_rows_carry_every_field_and_byte(scored: Path) -> None:
    ds = esray.read_editshard(scored, override_num_blocks=3)
    assert ds.schema().base_schema == esray.SCHEMA
    rows = by_id(ds.take_all())
    records = records_by_id(scored)
    assert len(rows) == 36
    assert_rows_are_records(rows, records)
    kinds = {r["kind"] for r in rows}
    assert kinds == set(editshard.open(scored).kinds)
    # The sample has preference records (rejected images) and multi-turn ones.
    assert any(t["rejected"] for r in rows for t in r["turns"])
    assert any(len(r["turns"]) > 1 for r in rows)


def test_tasks_planned_from_the_manifest(sample: Path) -> None:
    src = esray.EditshardDatasource(sample)
    manifest = editshard.open(sample).manifest
    shards = manifest["shards"]
    assert len(shards) >= 3
    # Fewer tasks than shards: whole shards per task, every shard in exactly one task.
    tasks = src.get_read_tasks(2)
    assert len(tasks) == 2
    files = [f for t in tasks for f in t.metadata.input_files]
    assert files == [s["path"] for s in shards]
    assert sum(t.metadata.num_rows for t in tasks) == manifest["records"]
    # Ray asks for 200 tasks whatever the size: a small dataset gets one task per shard.
    assert len(src.get_read_tasks(200)) == len(shards)
    # More tasks than shards when asked for exactly (override_num_blocks): ranges of records.
    src = esray.EditshardDatasource(sample, min_task_bytes=0)
    tasks = src.get_read_tasks(20)
    assert len(tasks) == 20
    assert sum(t.metadata.num_rows for t in tasks) == manifest["records"]
    rows = [row for t in tasks for block in t() for row in block.to_pylist()]
    assert [r["id"] for r in rows] == [r.id for r in editshard.open(sample, images="none")]
    # The size estimate comes from the manifest and is close to the rows' real size.
    estimate = src.estimate_inmemory_data_size()
    actual = esray.read_editshard(sample).materialize().size_bytes()
    assert actual / 2 < estimate < actual * 2, (estimate, actual)
    meta_only = esray.EditshardDatasource(sample, images="none").estimate_inmemory_data_size()
    assert meta_only < estimate


def test_filters_pushed_down(scored: Path) -> None:
    ds = esray.read_editshard(
        scored, kind=["sft", "preference"], min_score=("instruction_compliance", 0.5)
    )
    rows = by_id(ds.take_all())
    want = filtered_records(
        scored, kind=["sft", "preference"], min_score=("instruction_compliance", 0.5)
    )
    assert 0 < len(rows) < 36
    assert_rows_are_records(rows, want)
    # The same selection with Ray's own filter on the rows.
    ray_side = (
        esray.read_editshard(scored, images="none")
        .filter(
            lambda r: (
                r["kind"] in ("sft", "preference")
                and dict(r["scores"]).get("instruction_compliance", -1.0) >= 0.5
            )
        )
        .take_all()
    )
    assert sorted(r["id"] for r in ray_side) == [r["id"] for r in rows]


def test_image_projection(sample: Path) -> None:
    rows = by_id(esray.read_editshard(sample, images=["source"]).take_all())
    assert_rows_are_records(rows, records_by_id(sample, images=["source"]))
    assert all(r["source"]["bytes"] for r in rows)
    assert all(t["output"]["bytes"] is None for r in rows for t in r["turns"])


def logged_ranges(server: Nginx) -> list[tuple[str, int, int]]:
    """(path, first byte, last byte) of every GET in the access log."""
    out = []
    for method, uri, status, rng, _auth in server.fields():
        assert method == "GET" and status in ("200", "206"), (method, uri, status)
        size = (server.root / uri.lstrip("/")).stat().st_size
        if rng == "-":  # no Range header: the whole file
            out.append((uri, 0, size - 1))
            continue
        r = re.fullmatch(r"bytes=(\d*)-(\d*)", rng)
        assert r, rng
        if r.group(1):
            lo = int(r.group(1))
            hi = min(int(r.group(2)), size - 1) if r.group(2) else size - 1
        else:
            lo, hi = size - int(r.group(2)), size - 1
        out.append((uri, lo, hi))
    return out


def image_extents(dataset: Path) -> dict[str, list[tuple[int, int]]]:
    """Each shard's image byte ranges [first, last], found by their bytes (images are stored
    as received, and these are large noise images: no false matches)."""
    ds = editshard.open(dataset)
    extents: dict[str, list[tuple[int, int]]] = {}
    for entry in ds.manifest["shards"]:
        shard = (dataset / entry["path"]).read_bytes()
        extents[entry["path"]] = []
        for rec in ds:
            for img in rec.images():
                data = bytes(img.data)  # type: ignore[arg-type]
                at = shard.find(data)
                if at >= 0:
                    extents[entry["path"]].append((at, at + len(data) - 1))
    return extents


def test_metadata_only_read_fetches_no_image_bytes(big_sample: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "www"
    shutil.copytree(big_sample, root / "ds")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    # Any directive gives the access log its fields (method, target, status, Range, ...).
    server = Nginx(root, prefix, directives="autoindex off;")
    try:
        extents = image_extents(root / "ds")
        image_bytes = sum(hi - lo + 1 for e in extents.values() for lo, hi in e)
        assert image_bytes > 10 << 20

        def overlapping(reads: list[tuple[str, int, int]]) -> int:
            hits = 0
            for path, lo, hi in reads:
                for a, b in extents.get(path.removeprefix("/ds/"), []):
                    hits += max(0, min(hi, b) - max(lo, a) + 1)
            return hits

        rows = esray.read_editshard(f"{server.url}/ds", images="none").take_all()
        assert len(rows) == 36
        assert all(img["bytes"] is None for r in rows for img in row_images(r))
        meta_reads = logged_ranges(server)
        assert meta_reads and overlapping(meta_reads) == 0, meta_reads
        read = sum(hi - lo + 1 for _, lo, hi in meta_reads)
        assert read < image_bytes / 50, (read, image_bytes)

        # The check can fail: a read with images requests every image byte.
        server.access_log.write_text("")
        esray.read_editshard(f"{server.url}/ds").materialize()
        assert overlapping(logged_ranges(server)) >= image_bytes
    finally:
        server.stop()


def test_s3_read(s3: S3, sample: Path) -> None:
    rows = by_id(esray.read_editshard("s3://bucket/ds", s3_endpoint=s3.endpoint).take_all())
    assert_rows_are_records(rows, records_by_id(sample))


def test_errors_name_what_to_do(sample: Path, tmp_path: Path) -> None:
    with pytest.raises(editshard.ObjectNotFoundError):
        esray.read_editshard(tmp_path / "nothing-here")
    with pytest.raises(TypeError, match="s3_endpont"):
        esray.read_editshard(sample, s3_endpont="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="unknown image roles"):
        esray.read_editshard(sample, images=["sources"])


# -- writing ---------------------------------------------------------------------------


def verify(cli: Path, location: str | Path, *extra: str, env: dict[str, str] | None = None) -> str:
    import os
    import subprocess

    done = subprocess.run(
        [str(cli), "verify", str(location), *extra],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_read_filter_write_verify(scored: Path, tmp_path: Path, cli: Path) -> None:
    out = tmp_path / "filtered"
    ds = esray.read_editshard(scored, override_num_blocks=3).filter(
        lambda r: (
            r["kind"] in ("sft", "preference")
            and dict(r["scores"]).get("instruction_compliance", -1.0) >= 0.5
        )
    )
    ds.write_datasink(esray.EditshardDatasink(out, shard_size=6000))
    verify(cli, out)
    want = filtered_records(
        scored, kind=["sft", "preference"], min_score=("instruction_compliance", 0.5)
    )
    written = editshard.open(out)
    assert 0 < len(written) == len(want)
    got = sorted(written, key=lambda r: r.id)
    for a, b in zip(got, want):
        assert a.to_dict() == b.to_dict()
        assert [bytes(i.data) for i in a.images()] == [bytes(i.data) for i in b.images()]  # type: ignore[arg-type]
    # Several write tasks, each its own part, joined under one manifest.
    manifest = written.manifest
    assert len(manifest["sources"]) >= 2
    assert all(s["path"].startswith("part-") for s in manifest["shards"])
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("part-")) == sorted(
        s["name"] for s in manifest["sources"]
    )


def test_round_trip_keeps_every_field_and_byte(scored: Path, tmp_path: Path, cli: Path) -> None:
    out = tmp_path / "copy"
    esray.read_editshard(scored, override_num_blocks=2).write_datasink(esray.EditshardDatasink(out))
    verify(cli, out)
    before = by_id(esray.read_editshard(scored).take_all())
    after = by_id(esray.read_editshard(out).take_all())
    assert after == before  # every column, every image byte
    assert_rows_are_records(after, records_by_id(scored))


def test_s3_round_trip(s3: S3, sample: Path, cli: Path) -> None:
    esray.read_editshard("s3://bucket/ds", s3_endpoint=s3.endpoint).write_datasink(
        esray.EditshardDatasink("s3://bucket/copy", s3_endpoint=s3.endpoint)
    )
    env = {"AWS_ENDPOINT_URL": s3.endpoint}
    verify(cli, "s3://bucket/copy", env=env)
    after = by_id(esray.read_editshard("s3://bucket/copy", s3_endpoint=s3.endpoint).take_all())
    assert_rows_are_records(after, records_by_id(sample))
    assert (s3.data / "bucket" / "copy" / "manifest.json").exists()


def fail_on(target: str) -> Any:
    def check(row: dict[str, Any]) -> dict[str, Any]:
        if row["id"] == target:
            raise RuntimeError(f"job failure at {target}")
        return row

    return check


def test_a_failed_job_publishes_nothing(
    sample: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [r.id for r in editshard.open(sample, images="none")]
    out = tmp_path / "failed"
    # One task fails (the last record's); the first tasks, run before it, write their parts.
    ds = esray.read_editshard(sample, override_num_blocks=4).map(fail_on(ids[-1]))
    with caplog.at_level("INFO", logger="editshard"), pytest.raises(Exception, match="job fail"):
        ds.write_datasink(esray.EditshardDatasink(out))
    removed = re.search(r"its (\d+) parts were removed", caplog.text)
    assert removed and int(removed.group(1)) >= 1, caplog.text
    assert not (out / "manifest.json").exists()
    assert not out.exists() or list(out.iterdir()) == []
    with pytest.raises(editshard.ObjectNotFoundError):
        editshard.open(out)

    # A row that cannot be written (its images were not read) fails the job too, naming it.
    with pytest.raises(Exception, match="images='all'") as err:
        esray.read_editshard(sample, images="none").write_datasink(esray.EditshardDatasink(out))
    assert ids[0] in str(err.value) or any(i in str(err.value) for i in ids)
    assert not (out / "manifest.json").exists()


def test_destination_holding_data_is_refused(sample: Path, tmp_path: Path) -> None:
    with pytest.raises(editshard.InvalidError, match="already holds a dataset"):
        esray.read_editshard(sample).write_datasink(esray.EditshardDatasink(sample))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(editshard.InvalidError, match="not empty"):
        esray.read_editshard(sample).write_datasink(esray.EditshardDatasink(busy))
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]


def test_readme_example(sample: Path, tmp_path: Path, cli: Path) -> None:
    import contextlib
    import io

    from test_examples import readme_python_block

    code = readme_python_block("## Ray Data")
    # The module's Ray session is already up: the example's ray.init joins it.
    assert "ray.init(num_cpus=2)" in code
    code = code.replace("ray.init(num_cpus=2)", "ray.init(ignore_reinit_error=True)")
    code = code.replace("/tmp/sample-shards", str(sample))
    code = code.replace("/tmp/sample-short", str(tmp_path / "short"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md (Ray Data)", "exec"), {})  # noqa: S102 - the README's own code
    lines = out.getvalue().splitlines()
    assert lines[0] == "24 ['id', 'kind', 'source', 'turns', 'scores', 'provenance', 'extras']"
    assert lines[1] == "6"
    verify(cli, tmp_path / "short")
