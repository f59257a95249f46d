"""Format 1.1 records: masks, captions, instruction variants and the new provenance fields,
read from the `editing-1.1` golden vector (a shard with a metadata dictionary) made into a
one-shard dataset here, with a manifest written from spec/FORMAT.md section 12."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import shutil
import struct
from pathlib import Path

import pytest

import editshard

VECTORS = Path(__file__).resolve().parents[2] / "crates/format/tests/vectors"


def id_filter(ids: list[str]) -> dict[str, object]:
    """The manifest's Bloom filter of record ids (spec section 12)."""
    m = 8 * math.ceil(max(64, 20 * len(ids)) / 8)
    bits = bytearray(m // 8)
    for rid in ids:
        d = hashlib.sha256(rid.encode()).digest()
        h1 = int.from_bytes(d[0:8], "little")
        h2 = int.from_bytes(d[8:16], "little") | 1
        for i in range(14):
            b = ((h1 + i * h2) % 2**64) % m
            bits[b // 8] |= 1 << (b % 8)
    return {"bits": m, "hashes": 14, "data": base64.b64encode(bytes(bits)).decode()}


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> editshard.Dataset:
    root = tmp_path_factory.mktemp("v11")
    shard = root / "shard-00000.esd"
    shutil.copy(VECTORS / "editing-1.1.esd", shard)
    data = shard.read_bytes()
    index_offset, index_len, count = struct.unpack_from("<QQQ", data, len(data) - 32)
    records = json.loads((VECTORS / "editing-1.1.json").read_text())["records"]
    manifest = {
        "format": "editshard",
        "format_version": "1.1",
        "records": count,
        "bytes": len(data),
        "kinds": {"generic": count},
        "edit_types": {},
        "categories": {},
        "images": {"referenced": 0, "stored": 0, "bytes_referenced": 0, "bytes_stored": 0},
        "shards": [
            {
                "path": shard.name,
                "bytes": len(data),
                "records": count,
                "footer_offset": index_offset,
                "footer_length": index_len + 32,
                "sha256": hashlib.sha256(data).hexdigest(),
                "id_filter": id_filter([r["id"] for r in records]),
            }
        ],
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return editshard.open(root)


def test_masks_captions_variants_and_provenance(ds: editshard.Dataset) -> None:
    assert len(ds) == 80
    r = ds[3]
    assert r.source.caption == "a photo of an empty green field under a grey sky"
    turn = r.turns[0]
    assert turn.output.caption is not None and "turn 1" in turn.output.caption
    assert turn.instruction_variants == [
        "let there be snow in the field",
        "the field should have snow",
    ]
    mask = turn.mask
    assert mask is not None and mask.path == "masks/3-1.png" and mask.len == 24
    # The mask is an image of the record, last in its turn (canonical order).
    assert [i.sha256 for i in r.images()][-1] == r.turns[-1].mask.sha256
    # Its bytes are fetched, with every image and with the outputs (they were never fetched:
    # the fetch listed no role for masks and dropped a record's last images).
    assert mask.data is not None and len(mask.data) == 24
    outputs_only = ds.with_images(["outputs"])[3].turns[0]
    assert outputs_only.mask is not None and outputs_only.mask.has_data
    source_only = ds.with_images(["source"])[3].turns[0].mask
    assert source_only is not None and not source_only.has_data
    assert r.provenance["dataset"] == "osunlp/MagicBrush"
    assert r.provenance["row_group"] == 0 and r.provenance["row"] == 3
    d = r.to_dict()
    assert d["turns"][0]["mask"]["path"] == "masks/3-1.png"
    assert d["turns"][0]["instruction_variants"] == turn.instruction_variants


def test_records_without_the_new_fields_have_none(sample: Path) -> None:
    r = editshard.open(sample)[0]
    assert r.source.caption is None
    assert all(t.mask is None and t.instruction_variants == [] for t in r.turns)
    assert "dataset" not in r.provenance and "row" not in r.provenance
