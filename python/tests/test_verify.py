"""Verification levels (`verify=` of `editshard.open` and the PyTorch datasets): each catches
what it promises and no more. A flipped image byte is caught by the default ("crc") and by
"full"; metadata claiming another image's SHA-256 with every CRC valid (a broken writer) only
by "full"; "none" returns the bytes as stored."""

from __future__ import annotations

import hashlib
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import tool_bin
from test_basic import _damage_a_record

import editshard
from editshard.torch import EditDataset

LEVELS = ("none", "crc", "full")


def _reads(ds: editshard.Dataset, index: int) -> dict[str, Callable[[], editshard.Record]]:
    """Record `index` read every way the package offers."""
    return {
        "ds[i]": lambda: ds[index],
        "get(id)": lambda: ds.get(ds.with_images("none")[index].id),
        "get_many": lambda: ds.get_many(range(len(ds)))[index],
        "iter": lambda: list(ds.iter())[index],
        "EditDataset": lambda: EditDataset(ds.location, verify=ds_level(ds)).__getitems__([index])[
            0
        ],
    }


def ds_level(ds: editshard.Dataset) -> str:
    return str(ds._storage.get("verify", "crc"))


def test_a_flipped_image_byte_is_caught_by_default_and_returned_by_none(
    sample_copy: Path,
) -> None:
    before = bytes(editshard.open(sample_copy)[0].source.data or b"")
    index, rid, _ = _damage_a_record(sample_copy)
    assert editshard.open(sample_copy, images="none")[index].id == rid
    for level in LEVELS:
        ds = editshard.open(sample_copy, verify=level)  # type: ignore[arg-type]
        for how, read in _reads(ds, index).items():
            if level == "none":
                got = bytes(read().source.data or b"")
                assert len(got) == len(before) and got != before, f"{how}: not the stored bytes"
                continue
            with pytest.raises(editshard.CorruptionError) as err:
                read()
            e = err.value
            assert "CRC32 mismatch" in str(e), f"{how} at {level}: {e}"
            assert e.shard and e.offset is not None, f"{how} at {level}: {e}"


def test_a_false_image_hash_is_caught_only_by_full(sample_copy: Path) -> None:
    index = 5
    rid = editshard.open(sample_copy)[index].id
    subprocess.run([str(tool_bin("tamper_false_hash")), str(sample_copy), rid], check=True)
    for level in LEVELS:
        ds = editshard.open(sample_copy, verify=level)  # type: ignore[arg-type]
        for how, read in _reads(ds, index).items():
            if level != "full":
                rec = read()
                out = rec.turns[0].output
                assert rec.id == rid and out.data is not None
                assert hashlib.sha256(bytes(out.data)).hexdigest() != out.sha256, how
                continue
            with pytest.raises(editshard.CorruptionError) as err:
                read()
            e = err.value
            assert "SHA-256" in str(e), f"{how}: {e}"
            assert e.id == rid and e.shard and e.offset is not None, f"{how}: {e}"


def test_verify_levels_are_checked_and_verify_crc_still_works(sample_copy: Path) -> None:
    with pytest.raises(ValueError, match="'full'"):
        editshard.open(sample_copy, verify="sha")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        editshard.open(sample_copy, verify="full", verify_crc=False)
    before = bytes(editshard.open(sample_copy)[0].source.data or b"")
    _damage_a_record(sample_copy)
    with pytest.warns(DeprecationWarning, match="verify="):
        unchecked = editshard.open(sample_copy, verify_crc=False)
    assert bytes(unchecked[0].source.data or b"") != before
    with pytest.warns(DeprecationWarning):
        checked = editshard.open(sample_copy, verify_crc=True)
    with pytest.raises(editshard.CorruptionError):
        checked[0]
    # The level travels with a pickled dataset (DataLoader workers reopen from it).
    import pickle

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = pickle.loads(pickle.dumps(unchecked))
    assert bytes(again[0].source.data or b"") != before
