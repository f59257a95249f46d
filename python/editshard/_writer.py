"""Writing datasets from Python: :class:`Writer`, :func:`write` and :func:`mix`."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from . import _native

Record = _native.Record

#: Shards roll over at this size unless told otherwise (as ``convert``'s ``--shard-size``).
DEFAULT_SHARD_SIZE = 512 << 20


class Writer:
    """Writes a new dataset to a local directory or an ``s3://`` prefix.

    >>> with editshard.Writer("out/") as w:
    ...     w.write(editshard.Record("id/1", "sft", source, [editshard.Turn("...", output=edit)]))

    The guarantees are ``convert``'s: the destination is locked for the writer's life (a
    second writer is refused, naming the first); ids are unique in the dataset (a duplicate is
    refused with :class:`InvalidError` and the writer stays usable); records that share an
    image and are written one after another store it once; shards appear whole, each under its
    final name only when complete; ``manifest.json`` is published atomically by :meth:`close`
    (the end of a ``with`` block that raised nothing) and never otherwise: an exception in the
    block, :meth:`abort`, or a writer dropped unclosed removes what was written. Metadata
    encoding, compression, CRCs and file writes run with the GIL released; images were hashed,
    also without the GIL, when their :class:`Image` was made.

    ``shard_size``: bytes (int) or a size such as ``"512MiB"``. ``format_version``: ``"1.1"``
    (default) or ``"1.0"`` (for older readers; records with 1.1 fields are then refused).
    ``licence``: the manifest's licence, and each record's ``provenance["licence"]`` where it
    has none; ``dataset``: each record's ``provenance["dataset"]`` where it has none. S3
    settings are those of :func:`editshard.open`; shards for S3 are written under ``TMPDIR``
    first and uploaded while the next one is written. ``break_lock`` deletes a lock left at an
    S3 destination by a writer that is gone.
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        shard_size: int | str = DEFAULT_SHARD_SIZE,
        format_version: str = "1.1",
        licence: str | None = None,
        dataset: str | None = None,
        s3_endpoint: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        retries: int | None = None,
        break_lock: bool = False,
    ) -> None:
        self._location = os.fspath(location)
        self._manifest: dict[str, Any] | None = None
        self._native = _native.NativeWriter(
            self._location,
            shard_size=shard_size,
            format_version=format_version,
            licence=licence,
            dataset=dataset,
            s3_endpoint=s3_endpoint,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            break_lock=break_lock,
        )

    @property
    def location(self) -> str:
        return self._location

    @property
    def records(self) -> int:
        """Records written so far."""
        return self._native.records

    @property
    def closed(self) -> bool:
        return not self._native.is_open

    @property
    def manifest(self) -> dict[str, Any] | None:
        """The published manifest once :meth:`close` succeeded, else None."""
        return self._manifest

    def write(self, record: Record) -> None:
        """Appends one record."""
        self._native.write(record)

    def write_many(self, records: Iterable[Record]) -> int:
        """Appends every record of an iterable (a generator is consumed one record at a
        time); returns how many were written."""
        return self._native.write_many(records)

    def close(self) -> dict[str, Any]:
        """Finishes the last shard, waits for the uploads and publishes ``manifest.json``;
        returns the manifest. The lock is released."""
        self._manifest = json.loads(self._native.close())
        return self._manifest

    def abort(self) -> None:
        """Removes everything written and releases the destination; nothing is published."""
        self._native.abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        native = getattr(self, "_native", None)
        if native is not None and native.is_open:
            warnings.warn(
                f"editshard.Writer of {self._location} was never closed: aborted, nothing "
                "published (use it in a with block, or call close())",
                ResourceWarning,
                stacklevel=1,
            )
            native.abort()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<editshard.Writer {self._location!r}: {self.records} records, {state}>"


def write(
    location: str | os.PathLike[str], records: Iterable[Record], **options: Any
) -> dict[str, Any]:
    """Writes ``records`` as a new dataset at ``location`` and returns its manifest (the
    options are :class:`Writer`'s). Nothing is published if iterating or writing raises."""
    with Writer(location, **options) as w:
        w.write_many(records)
    manifest = w.manifest
    assert manifest is not None
    return manifest


def mix(
    out: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]],
    *,
    copy: bool = False,
    break_lock: bool = False,
    s3_endpoint: str | None = None,
    hf_token: str | None = None,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    retries: int | None = None,
) -> dict[str, Any]:
    """Joins datasets into one at ``out``, as ``editshard mix`` does: each source's shards go
    under ``out/NAME/`` (hard-linked when local on one file system, else copied and checked),
    then one ``manifest.json`` listing them all with each source's counts and licence. Ids must
    be unique across the sources. ``sources``: locations (local, ``https://``, ``s3://``,
    ``hf://``; named by their last path segment) or a mapping of names to locations. Sources already at ``out/NAME`` (parts that writers wrote
    there) are kept where they are: only the manifest is written. Returns the report."""
    if isinstance(sources, Mapping):
        pairs: list[tuple[str | None, str]] = [
            (str(name), os.fspath(loc)) for name, loc in sources.items()
        ]
    else:
        pairs = [(None, os.fspath(loc)) for loc in sources]
    report: dict[str, Any] = json.loads(
        _native.mix(
            os.fspath(out),
            pairs,
            copy=copy,
            break_lock=break_lock,
            s3_endpoint=s3_endpoint,
            hf_token=hf_token,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
        )
    )
    return report
