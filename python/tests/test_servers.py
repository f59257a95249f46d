"""Reading over HTTP (nginx) and S3 (s3s-fs), with request counts from nginx's log."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import S3, Nginx

import editshard
from editshard.torch import IterableEditDataset


def test_http_requests_per_record(nginx: Nginx, sample: Path) -> None:
    ds = editshard.open(f"{nginx.url}/ds")
    assert len(nginx.requests()) == 1  # the manifest only
    assert len(ds) == 36
    local = editshard.open(sample)
    rec = ds[0]
    assert rec.to_dict() == local[0].to_dict()
    assert bytes(rec.source.data) == bytes(local[0].source.data)  # type: ignore[arg-type]
    after_first = len(nginx.requests())
    assert after_first == 3  # manifest, footer of shard 0, the record
    # Further records of the same shard: one ranged GET each.
    shard0 = ds.shard_records[0]
    for i in range(1, shard0):
        ds[i]
    assert len(nginx.requests()) == after_first + (shard0 - 1)
    assert all('" 206 ' in line or '" 200 ' in line for line in nginx.requests())
    # A batch of neighbouring records of that shard: coalesced into one request.
    n = len(nginx.requests())
    assert [r.id for r in ds.get_many(range(shard0))] == [local[i].id for i in range(shard0)]
    assert len(nginx.requests()) == n + 1
    # The first lookup by id reads the manifest again for its id filters (a reader does
    # not keep them), then the record (footer cached); later lookups one request each.
    n = len(nginx.requests())
    assert ds.get(local[1].id).id == local[1].id
    assert len(nginx.requests()) == n + 2
    n = len(nginx.requests())
    assert ds.get(local[2].id).id == local[2].id
    assert len(nginx.requests()) == n + 1


def test_http_iterable_and_missing(nginx: Nginx) -> None:
    ds = IterableEditDataset(
        f"{nginx.url}/ds", batch_size=4, images="none", transform=lambda r: r.id
    )
    assert len(set(iter(ds))) == 36
    with pytest.raises(editshard.ObjectNotFoundError):
        editshard.open(f"{nginx.url}/nothing-here")


def test_s3_read(s3: S3, sample: Path) -> None:
    ds = editshard.open("s3://bucket/ds", s3_endpoint=s3.endpoint)
    local = editshard.open(sample)
    assert len(ds) == 36
    assert [r.id for r in ds] == [r.id for r in local]
    assert ds[-1].turns[0].output.sha256 == local[-1].turns[0].output.sha256
    assert bytes(ds[5].source.data) == bytes(local[5].source.data)  # type: ignore[arg-type]


def record_id(record: editshard.Record) -> str:
    return record.id


def test_s3_iterable_with_workers(s3: S3, sample: Path) -> None:
    from torch.utils.data import DataLoader

    ds = IterableEditDataset(
        "s3://bucket/ds", s3_endpoint=s3.endpoint, batch_size=4, seed=3, transform=record_id
    )
    ids = [i for b in DataLoader(ds, batch_size=4, num_workers=2, collate_fn=list) for i in b]
    assert len(ids) == 36 and set(ids) == {r.id for r in editshard.open(sample, images="none")}


def test_s3_wrong_credentials(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(editshard.StorageError) as err:
        editshard.open("s3://bucket/ds", s3_endpoint=s3.endpoint, retries=0)
    assert err.value.shard and "manifest.json" in err.value.shard
