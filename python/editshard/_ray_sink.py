"""`EditshardDatasink`: writing a Ray dataset of :data:`editshard._arrow.SCHEMA` rows as one
editshard dataset (re-exported by :mod:`editshard.ray`, which documents it)."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ray.data.block import BlockAccessor
from ray.data.datasource import Datasink

from ._arrow import row_record
from ._dataset import open as _open
from ._errors import InvalidError, ObjectNotFoundError

log = logging.getLogger("editshard")

#: The columns a row needs to be written (the others are optional).
_REQUIRED_COLUMNS = ("id", "kind", "source", "turns")
_STORAGE_OPTIONS = ("s3_endpoint", "timeout", "connect_timeout", "retries")


class EditshardDatasink(Datasink):
    """Writes a Ray dataset of rows in :data:`SCHEMA` (as :func:`read_editshard` gives them)
    as one editshard dataset at ``location`` (a new or empty local directory, on a file system
    every worker sees, or an ``s3://`` prefix):

    >>> ds.write_datasink(EditshardDatasink("s3://bucket/filtered"))

    Every write task writes its own part, ``location/part-TTTTT-JOB-N/``, with an
    :class:`editshard.Writer` (its own shards, ids unique in it, identical images within it
    stored once). When every task has succeeded, ``on_write_complete`` joins the parts as
    :func:`editshard.mix` does, keeping their shards where they are: it checks every id is
    unique across the parts and every shard against its part's manifest (a read of every
    shard), then publishes ``location/manifest.json`` in one atomic step. A job that fails
    publishes nothing (its local parts are removed). The options are those of
    :class:`editshard.Writer` (``shard_size``, ``format_version``, ``licence``, ``dataset``)
    and its storage options.
    """

    def __init__(self, location: str | os.PathLike[str], **options: Any) -> None:
        self._location = os.fspath(location)
        self._options = dict(options)
        self._storage = {k: v for k, v in options.items() if k in _STORAGE_OPTIONS}
        self._job = uuid.uuid4().hex[:8]

    @property
    def location(self) -> str:
        return self._location

    def get_name(self) -> str:
        return "Editshard"

    def _join(self, name: str) -> str:
        return self._location.rstrip("/") + "/" + name

    def _local_dir(self) -> Path | None:
        loc = self._location
        if loc.startswith("file://"):
            return Path(loc[len("file://") :])
        if "://" in loc:
            return None
        return Path(loc)

    def on_write_start(self, schema: Any = None) -> None:
        """Refuses, before any task runs, rows without the needed columns and a destination
        that already holds a dataset or other files."""
        if schema is not None:
            names = set(getattr(schema, "names", ()) or ())
            missing = [c for c in _REQUIRED_COLUMNS if c not in names]
            if names and missing:
                raise InvalidError(
                    f"rows lack the columns {missing} that EditshardDatasink writes: give rows "
                    "of editshard.ray.SCHEMA, as read_editshard reads them"
                )
        try:
            _open(self._location, images="none", **self._storage)
        except ObjectNotFoundError:
            pass
        else:
            raise InvalidError(
                f"{self._location} already holds a dataset (a manifest.json): write to a new "
                "location; nothing was written"
            )
        local = self._local_dir()
        if local is not None and local.exists():
            if not local.is_dir():
                raise InvalidError(f"{local} is not a directory; nothing was written")
            entries = sorted(p.name for p in local.iterdir())
            if entries:
                raise InvalidError(
                    f"{local} is not empty ({', '.join(entries[:5])}): write to a new or "
                    "empty directory; nothing was written"
                )

    def write(self, blocks: Iterable[Any], ctx: Any) -> dict[str, Any]:
        """Writes this task's rows as one part (none when it got no rows)."""
        from . import _writer

        name = f"part-{int(ctx.task_idx):05d}-{self._job}-{uuid.uuid4().hex[:6]}"
        writer: _writer.Writer | None = None
        try:
            for block in blocks:
                table = BlockAccessor.for_block(block).to_arrow()
                if table.num_rows == 0:
                    continue
                if writer is None:
                    writer = _writer.Writer(self._join(name), **self._options)
                writer.write_many(row_record(row) for row in table.to_pylist())
            if writer is None:
                return {"part": None, "records": 0}
            records = writer.records
            writer.close()
            return {"part": name, "records": records}
        except BaseException:
            if writer is not None:
                writer.abort()
            raise

    def on_write_complete(self, write_result: Any) -> None:
        """Joins the parts and publishes the manifest (an empty dataset when no row came)."""
        from . import _writer

        returns = [r for r in write_result.write_returns if r and r.get("part")]
        parts = sorted(str(r["part"]) for r in returns)
        self._remove_strays(keep=set(parts))
        if not parts:
            _writer.Writer(self._location, **self._options).close()
            return
        _writer.mix(self._location, {p: self._join(p) for p in parts}, **self._storage)

    def on_write_failed(self, error: Exception) -> None:
        """Nothing was published; removes this job's local parts (an S3 job's parts stay,
        without a manifest at ``location``: delete the prefix)."""
        if self._local_dir() is None:
            log.warning(
                "editshard: the write to %s failed (%s); nothing was published, and the "
                "parts written so far stay under it as part-*-%s-*: delete them",
                self._location,
                error,
                self._job,
            )
            return
        removed = self._remove_strays(keep=set())
        log.info(
            "editshard: the write to %s failed (%s); nothing was published, and its %d "
            "parts were removed: %s",
            self._location,
            error,
            len(removed),
            ", ".join(removed),
        )

    def _remove_strays(self, keep: set[str]) -> list[str]:
        """Deletes this job's local parts not in ``keep`` (those of failed or retried task
        attempts: a mix refuses a directory holding what it does not write); returns their
        names."""
        local = self._local_dir()
        if local is None or not local.is_dir():
            return []
        removed = []
        for entry in sorted(local.iterdir()):
            mine = entry.name.startswith("part-") and f"-{self._job}-" in entry.name
            if mine and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed
