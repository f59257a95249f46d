"""Ray Data over editshard: :func:`read_editshard` and :class:`EditshardDatasink`.

Requires ``ray[data]`` (``pip install "editshard[ray]"``); ``import editshard`` never imports
Ray.

>>> import ray, editshard.ray
>>> ds = editshard.ray.read_editshard("s3://bucket/pico", kind="sft", images="none")
>>> ds.filter(lambda row: dict(row["scores"]).get("instruction_compliance", 0) > 0.8).count()

Rows have the schema :data:`editshard.ray.SCHEMA` (one row per record; see
:mod:`editshard._arrow`). Read tasks are planned from ``manifest.json`` alone: whole shards per
task when there are at least as many shards as tasks, else ranges of records.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    import ray.data
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask
except ImportError as e:  # pragma: no cover - exercised only without ray
    raise ImportError(
        'editshard.ray needs Ray Data: pip install "ray[data]" (or "editshard[ray]")'
    ) from e

import pyarrow as pa

from . import _native
from ._arrow import SCHEMA, records_table
from ._dataset import Dataset, Filter, ImagesSpec, images_spec
from ._dataset import open as _open
from ._plan import TaskPlan, plan_tasks
from ._ray_sink import EditshardDatasink

__all__ = ["MIN_TASK_BYTES", "SCHEMA", "EditshardDatasink", "EditshardDatasource", "read_editshard"]

#: Records fetched per request batch inside a read task (at most; fewer for large records).
_MAX_BATCH_RECORDS = 256
#: The bytes a read task aims to hold in one block.
_TARGET_BLOCK_BYTES = 64 << 20
#: Assumed in-memory bytes of a record's metadata row (ids, texts, hashes, scores).
_ROW_OVERHEAD_BYTES = 1024
#: Unless told a number of tasks, a read task gets at least this much to read (or a whole
#: shard): Ray asks every datasource for 200 tasks or more, and a task has a fixed cost (a
#: worker, the manifest, the footers of its shards).
MIN_TASK_BYTES = 64 << 20


class EditshardDatasource(Datasource):
    """A :class:`ray.data.Datasource` over an editshard dataset (see :func:`read_editshard`).

    Opening reads ``manifest.json`` only; each read task reopens the dataset in its worker
    and fetches its records with coalesced ranged reads, the filters and the image projection
    applied before image bytes are fetched. Of the tasks Ray asks for, at most one per shard
    or per ``min_task_bytes`` of rows (whichever allows more) are made; 0 makes exactly as
    many as asked (up to one per record).
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        images: ImagesSpec = "all",
        kind: str | Sequence[str] | None = None,
        edit_type: str | Sequence[str] | None = None,
        category: str | Sequence[str] | None = None,
        min_score: tuple[str, float] | None = None,
        skip_corrupt: bool = False,
        min_task_bytes: int = MIN_TASK_BYTES,
        **storage: Any,
    ) -> None:
        super().__init__()
        self._min_task_bytes = max(0, int(min_task_bytes))
        self._location = os.fspath(location)
        self._images: ImagesSpec = images
        self._flags = images_spec(images)
        self._filter = Filter(kind, edit_type, category, min_score)
        self._skip_corrupt = bool(skip_corrupt)
        self._storage = dict(storage)
        ds = _open(self._location, images="none", **self._storage)
        manifest = ds.manifest
        self._shard_records = [int(s["records"]) for s in manifest["shards"]]
        self._shard_bytes = [int(s["bytes"]) for s in manifest["shards"]]
        self._shard_paths = [str(s["path"]) for s in manifest["shards"]]
        self._records = int(manifest["records"])
        self._image_totals = dict(manifest.get("images", {}))
        self._display = ds.native.display

    def get_name(self) -> str:
        return "Editshard"

    # -- size ---------------------------------------------------------------------------

    def _image_bytes_per_record(self) -> float:
        """Mean image bytes a row carries under this projection, from the manifest's image
        totals (every reference counts: a row holds its own copy of a shared image)."""
        if self._records == 0 or self._flags == (False, False, False):
            return 0.0
        referenced = int(self._image_totals.get("referenced", 0))
        bytes_referenced = int(self._image_totals.get("bytes_referenced", 0))
        if referenced == 0:
            return 0.0
        per_image = bytes_referenced / referenced
        sources = self._records
        others = max(referenced - sources, 0)
        source, outputs, rejected = self._flags
        # The manifest counts images, not images per role: outputs and rejected images share
        # the non-source count in proportion to the roles asked for.
        wanted = (sources if source else 0) + others * ((outputs + rejected) / 2)
        return per_image * wanted / self._records

    def _row_bytes(self) -> float:
        return _ROW_OVERHEAD_BYTES + self._image_bytes_per_record()

    def estimate_inmemory_data_size(self) -> int:
        """The rows' in-memory size before filtering, from ``manifest.json``."""
        return int(self._records * self._row_bytes())

    # -- planning -----------------------------------------------------------------------

    def plan(self, parallelism: int) -> list[TaskPlan]:
        """The read tasks' record ranges: ``parallelism`` tasks at most, and no more than
        one per shard or per ``min_task_bytes`` of rows, whichever allows more."""
        tasks = max(1, parallelism)
        if self._min_task_bytes > 0:
            shards = sum(1 for n in self._shard_records if n > 0)
            by_size = -(-self.estimate_inmemory_data_size() // self._min_task_bytes)
            tasks = min(tasks, max(shards, by_size, 1))
        return plan_tasks(self._shard_records, self._shard_bytes, tasks)

    def get_read_tasks(
        self,
        parallelism: int,
        per_task_row_limit: int | None = None,
        data_context: Any = None,
    ) -> list[ReadTask]:
        batch = max(1, min(_MAX_BATCH_RECORDS, int(_TARGET_BLOCK_BYTES / self._row_bytes())))
        tasks = []
        for plan in self.plan(parallelism):
            exact = self._filter.is_empty()
            metadata = BlockMetadata(
                num_rows=plan.records if exact else None,
                size_bytes=int(plan.records * self._row_bytes()),
                input_files=[self._shard_paths[s] for s in plan.shards],
                exec_stats=None,
            )
            read = _RangeRead(
                self._location,
                self._storage,
                self._images,
                self._filter,
                self._skip_corrupt,
                plan.start,
                plan.end,
                batch,
            )
            tasks.append(
                ReadTask(read, metadata, schema=SCHEMA, per_task_row_limit=per_task_row_limit)
            )
        return tasks


class _RangeRead:
    """A read task's body: records ``[start, end)`` as Arrow tables of ``batch`` records,
    the next batch fetched (GIL released) while the current one is converted."""

    def __init__(
        self,
        location: str,
        storage: dict[str, Any],
        images: ImagesSpec,
        flt: Filter,
        skip_corrupt: bool,
        start: int,
        end: int,
        batch: int,
    ) -> None:
        self.location = location
        self.storage = storage
        self.images = images
        self.filter = flt
        self.skip_corrupt = skip_corrupt
        self.start = start
        self.end = end
        self.batch = batch

    def __call__(self) -> Iterator[pa.Table]:
        ds = _open(self.location, images=self.images, **self.storage)
        flags = images_spec(self.images)
        fetch = _fetcher(ds, flags, self.filter, self.skip_corrupt)
        chunks = [
            list(range(lo, min(lo + self.batch, self.end)))
            for lo in range(self.start, self.end, self.batch)
        ]
        for records in _prefetched(fetch, chunks):
            kept = [r for r in records if r is not None]
            if kept:
                yield records_table(kept)


def _fetcher(
    ds: Dataset, flags: tuple[bool, bool, bool], flt: Filter, skip_corrupt: bool
) -> Callable[[list[int]], list[_native.Record | None]]:
    native = ds.native
    kwargs = flt.native_kwargs()

    def fetch(indices: list[int]) -> list[_native.Record | None]:
        return native.select(indices, flags, skip_corrupt=skip_corrupt, **kwargs)

    return fetch


def _prefetched(
    fetch: Callable[[list[int]], list[_native.Record | None]], chunks: list[list[int]]
) -> Iterator[list[_native.Record | None]]:
    """``fetch(chunk)`` for each chunk in order, one chunk fetched ahead on a thread (the
    native fetch releases the GIL)."""
    if not chunks:
        return
    result: dict[str, Any] = {}

    def run(chunk: list[int]) -> None:
        try:
            result["value"] = fetch(chunk)
        except BaseException as e:  # noqa: BLE001 - re-raised on the task's thread
            result["error"] = e

    thread = threading.Thread(target=run, args=(chunks[0],), daemon=True)
    thread.start()
    for k in range(len(chunks)):
        thread.join()
        if "error" in result:
            raise result.pop("error")
        value = result.pop("value")
        if k + 1 < len(chunks):
            thread = threading.Thread(target=run, args=(chunks[k + 1],), daemon=True)
            thread.start()
        yield value


def read_editshard(
    location: str | os.PathLike[str],
    *,
    images: ImagesSpec = "all",
    kind: str | Sequence[str] | None = None,
    edit_type: str | Sequence[str] | None = None,
    category: str | Sequence[str] | None = None,
    min_score: tuple[str, float] | None = None,
    skip_corrupt: bool = False,
    override_num_blocks: int | None = None,
    concurrency: int | None = None,
    ray_remote_args: dict[str, Any] | None = None,
    **options: Any,
) -> ray.data.Dataset:
    """An editshard dataset as a :class:`ray.data.Dataset`, one row per record (schema:
    :data:`SCHEMA`).

    ``images`` ("all", "none" or roles among "source", "outputs", "rejected") picks which
    images' bytes are fetched: with ``"none"`` no image byte is read, and image columns keep
    their metadata with ``bytes`` null. ``kind``, ``edit_type``, ``category`` and
    ``min_score=(name, value)`` keep the records that pass, checked before image bytes are
    fetched. ``skip_corrupt`` logs and skips damaged records instead of failing the task.

    ``options`` are the storage options of :func:`editshard.open` (``s3_endpoint``,
    ``timeout``, ``connect_timeout``, ``retries``, ``verify``, ``coalesce_gap``), and
    ``fetch_concurrency`` for its ``concurrency``. S3 credentials come from each Ray worker's
    ``AWS_*`` environment (set them on the cluster, or with
    ``ray.init(runtime_env={"env_vars": {...}})``).

    ``override_num_blocks`` sets the number of read tasks (by default Ray's request, but no
    more than one per shard or per :data:`MIN_TASK_BYTES` of rows, whichever allows more),
    ``concurrency`` how many run at once, and ``ray_remote_args`` their resources.
    """
    storage = dict(options)
    if "fetch_concurrency" in storage:
        storage["concurrency"] = storage.pop("fetch_concurrency")
    source = EditshardDatasource(
        location,
        images=images,
        kind=kind,
        edit_type=edit_type,
        category=category,
        min_score=min_score,
        skip_corrupt=skip_corrupt,
        # A number of tasks the caller asked for is kept as it is.
        min_task_bytes=0 if override_num_blocks else MIN_TASK_BYTES,
        **storage,
    )
    return ray.data.read_datasource(
        source,
        override_num_blocks=override_num_blocks,
        concurrency=concurrency,
        ray_remote_args=ray_remote_args,
    )
