"""Records as Arrow rows: the schema `editshard.ray` reads into and writes from.

One row per record. Every field of the record model has a column, so a row converts back to
the same record (ids, metadata, scores in order, image bytes); see :data:`SCHEMA`.

- ``id``, ``kind``: strings.
- ``source``: an image struct (below).
- ``turns``: a list of turn structs: ``instruction``, ``short_instruction``, ``edit_type``,
  ``category`` (strings or null), ``output`` (image), ``rejected`` (list of images), ``mask``
  (image or null), ``instruction_variants`` (list of strings).
- ``scores``: map of score name to value over the turns' outputs (a later turn's value
  replacing an earlier one's), for filtering; derived, so ignored when writing.
- ``provenance``: a struct of ``subset``, ``file``, ``line``, ``licence``, ``dataset``,
  ``revision``, ``row_group``, ``row`` (null where unknown).
- ``extras``: the source row's other fields as JSON text (null when there are none).

An image struct: ``bytes`` (the encoded bytes as stored; null when not fetched, e.g. with
``images="none"``), ``media_type``, ``width``, ``height``, ``len`` and ``sha256`` (hex) of
the bytes, ``url``, ``path``, ``rotation`` (degrees, not applied), ``caption``, and
``scores`` (map of name to float32, in the stored order).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from . import _native
from ._errors import InvalidError

SCORES = pa.map_(pa.string(), pa.float32())

IMAGE = pa.struct(
    [
        pa.field("bytes", pa.large_binary()),
        pa.field("media_type", pa.string()),
        pa.field("width", pa.uint32()),
        pa.field("height", pa.uint32()),
        pa.field("len", pa.uint64()),
        pa.field("sha256", pa.string()),
        pa.field("url", pa.string()),
        pa.field("path", pa.string()),
        pa.field("rotation", pa.uint16()),
        pa.field("caption", pa.string()),
        pa.field("scores", SCORES),
    ]
)

TURN = pa.struct(
    [
        pa.field("instruction", pa.string()),
        pa.field("short_instruction", pa.string()),
        pa.field("edit_type", pa.string()),
        pa.field("category", pa.string()),
        pa.field("output", IMAGE),
        pa.field("rejected", pa.list_(IMAGE)),
        pa.field("mask", IMAGE),
        pa.field("instruction_variants", pa.list_(pa.string())),
    ]
)

PROVENANCE_FIELDS = ("subset", "file", "line", "licence", "dataset", "revision", "row_group", "row")
_PROVENANCE_INTS = ("line", "row_group", "row")

PROVENANCE = pa.struct(
    [
        pa.field(name, pa.uint64() if name in _PROVENANCE_INTS else pa.string())
        for name in PROVENANCE_FIELDS
    ]
)

#: The schema of `editshard.ray.read_editshard`'s rows (see the module's docstring).
SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("source", IMAGE),
        pa.field("turns", pa.list_(TURN)),
        pa.field("scores", SCORES),
        pa.field("provenance", PROVENANCE),
        pa.field("extras", pa.string()),
    ]
)


def records_table(records: list[_native.Record]) -> pa.Table:
    """Records as an Arrow table of :data:`SCHEMA` (rows made in Rust: no JSON round trip)."""
    return pa.Table.from_pylist(_native.record_rows(records), schema=SCHEMA)


def row_record(row: Mapping[str, Any]) -> _native.Record:
    """A row of :data:`SCHEMA` as a record to write. Image bytes are the truth: media type,
    width, height, length and SHA-256 are found from them again (so a row whose bytes a job
    replaced is described by its new bytes); the ``scores`` column is derived and ignored.
    Raises :class:`InvalidError` naming the record and the field when one is missing."""
    rid = row.get("id")
    if not isinstance(rid, str) or not rid:
        raise InvalidError(f"a row without an id (got {rid!r}): every row needs 'id'")

    def fail(message: str) -> InvalidError:
        return InvalidError(f"record {rid!r}: {message}", id=rid)

    def image(value: Mapping[str, Any] | None, what: str) -> _native.Image:
        if value is None:
            raise fail(f"{what} is missing")
        data = value.get("bytes")
        if data is None:
            raise fail(
                f"the bytes of {what} were not read (images='none' or a projection without "
                "it): read with images='all' to write records"
            )
        try:
            return _native.Image(
                data,
                url=value.get("url"),
                path=value.get("path"),
                caption=value.get("caption"),
                scores=dict(value.get("scores") or ()),
                rotation=value.get("rotation"),
            )
        except (ValueError, TypeError) as e:
            raise fail(f"{what}: {e}") from e

    kind = row.get("kind")
    if not isinstance(kind, str):
        raise fail(f"no kind (got {kind!r}): one of sft, preference, multi-turn, generic")
    turns = []
    for t, turn in enumerate(row.get("turns") or ()):
        mask = turn.get("mask")
        turns.append(
            _native.Turn(
                turn.get("instruction"),
                short_instruction=turn.get("short_instruction"),
                edit_type=turn.get("edit_type"),
                category=turn.get("category"),
                output=image(turn.get("output"), f"turn {t}'s output"),
                rejected=[
                    image(r, f"turn {t}'s rejected image {k}")
                    for k, r in enumerate(turn.get("rejected") or ())
                ],
                mask=None if mask is None else image(mask, f"turn {t}'s mask"),
                instruction_variants=list(turn.get("instruction_variants") or ()),
            )
        )
    provenance = {k: v for k, v in (row.get("provenance") or {}).items() if v is not None}
    extras_text = row.get("extras")
    extras = json.loads(extras_text) if extras_text else None
    try:
        return _native.Record(
            rid,
            kind,
            image(row.get("source"), "the source image"),
            turns,
            provenance=provenance,
            extras=extras,
        )
    except (ValueError, TypeError) as e:
        raise fail(str(e)) from e
