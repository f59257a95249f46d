"""PyTorch datasets over editshard.

- :class:`EditDataset`: map-style, for ``DataLoader`` with any sampler (``DistributedSampler``
  included). Batched fetches (``__getitems__``) are coalesced into few requests.
- :class:`IterableEditDataset`: the library's epoch order (shuffled, split across ranks and
  data-loader workers, fetched ahead in the background), **equal steps on every rank**, and
  **exact resume** from ``state_dict()`` with any new number of workers or ranks.

Both are picklable and open lazily in each worker process (after ``fork`` they reopen: no
runtime, thread or connection crosses a fork), so ``num_workers``, ``fork``/``spawn`` and
``persistent_workers`` all work. Items are :class:`editshard.Record` objects, or whatever
``transform(record)`` returns; records are not tensors, so without a transform use
``collate_fn=list``.

With ``pipeline=Pipeline(...)`` (see :class:`Pipeline`), an item is a whole batch of
tensors decoded and augmented in Rust: use ``DataLoader(ds, batch_size=None, ...)``.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.context
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch.utils.data as tud

from ._dataset import Dataset, Filter, ImagesSpec, images_spec, shuffle_name
from ._dataset import open as _open
from ._pipeline import Pipeline

Transform = Callable[[Any], Any] | None

_STATE_MARK = "editshard"


def _dist_rank_world() -> tuple[int, int]:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    return 0, 1


class _Epoch:
    """An epoch number shared with DataLoader worker processes (persistent ones too), so
    ``set_epoch()`` in the main process reaches workers started earlier."""

    def __init__(self, epoch: int = 0) -> None:
        self.value = multiprocessing.RawValue("q", epoch)

    def __getstate__(self) -> dict[str, Any]:
        if multiprocessing.context.get_spawning_popen() is None:
            # Not starting a worker: shared memory cannot travel, the number can.
            return {"epoch": int(self.value.value)}
        return {"shared": self.value}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.value = (
            state["shared"] if "shared" in state else multiprocessing.RawValue("q", state["epoch"])
        )


class EditDataset(tud.Dataset[Any]):
    """Map-style dataset: ``ds[i]`` is ``transform(record i)`` (or the record).

    ``options`` are those of :func:`editshard.open` (``images``, ``s3_endpoint``,
    ``timeout``, ``retries``, ...). Use it with any sampler; with several workers each opens
    its own handle lazily.

    With ``pipeline``, ``ds[indices]`` (a list of indices, as a ``BatchSampler`` gives them)
    is one batch of tensors, and ``ds[i]`` a batch of one: use
    ``DataLoader(ds, batch_size=None, sampler=BatchSampler(sampler, batch_size, drop_last))``.
    The crops are drawn from (``seed``, the epoch set by :meth:`set_epoch`, record id).
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        transform: Transform = None,
        *,
        pipeline: Pipeline | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        if pipeline is not None and transform is not None:
            raise ValueError("give a transform or a pipeline, not both")
        self.location = os.fspath(location)
        self.transform = transform
        self.pipeline = pipeline
        self.seed = int(seed)
        if pipeline is not None and options.get("images") is None:
            options["images"] = pipeline.fetch
        self.options = options
        self._epoch = _Epoch()
        self._ds: Dataset | None = _open(self.location, **options)

    @property
    def dataset(self) -> Dataset:
        if self._ds is None:
            self._ds = _open(self.location, **self.options)
        return self._ds

    @property
    def epoch(self) -> int:
        return int(self._epoch.value.value)

    def set_epoch(self, epoch: int) -> None:
        """Selects the epoch the pipeline's crops and flips are drawn for."""
        self._epoch.value.value = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def _apply(self, record: Any) -> Any:
        return self.transform(record) if self.transform is not None else record

    def _batch(self, indices: Sequence[int]) -> dict[str, Any]:
        assert self.pipeline is not None
        records = self.dataset.get_many(list(indices))
        return self.pipeline(
            records,
            epoch=self.epoch,
            seed=self.seed,
            skip_corrupt=self.dataset.skip_corrupt,
        )

    def __getitem__(self, index: Any) -> Any:
        if self.pipeline is not None:
            many = not isinstance(index, int) and isinstance(index, Sequence)
            return self._batch([int(i) for i in index] if many else [int(index)])
        return self._apply(self.dataset[index])

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        if self.pipeline is not None:
            raise TypeError(
                "with a pipeline, every item is a batch: use DataLoader(ds, batch_size=None, "
                "sampler=BatchSampler(...)) rather than the loader's batch_size"
            )
        return [self._apply(r) for r in self.dataset.get_many(list(indices))]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ds"] = None  # reopened lazily in the other process
        return state


class IterableEditDataset(tud.IterableDataset[Any]):
    """An epoch in the library's order, this rank's and this worker's share of it.

    Positions ``0..N`` of an epoch (``N`` records) map to records through ``shuffle``
    (``"full"``/``True``, ``"block"`` with ``window``, or ``"none"``/``False``) keyed by
    ``(seed, epoch)``. Batches of ``batch_size`` consecutive positions are dealt round-robin
    to ranks, and within a rank to data-loader workers, in the order ``DataLoader`` consumes
    them; ``batch_size`` must equal the ``DataLoader``'s.

    Equal steps: with ``equal_steps="pad"`` (default) every rank yields the same number of
    full batches, ``ceil(N / (world_size * batch_size))``; missing positions are filled
    with records from the start of the epoch's order, like ``DistributedSampler``.
    ``"drop"`` drops the incomplete tail instead; ``None`` yields each share as it is (ranks
    may then differ by a batch). Records rejected by a filter or skipped as damaged leave a
    batch short; it is topped up with repeats of records of the same batch (or the
    previous one), so batches stay aligned with steps.

    Resume: ``state_dict()``/``load_state_dict()`` follow torchdata's ``Stateful`` protocol,
    so ``StatefulDataLoader`` saves and restores this dataset in each worker (same worker
    count). To restart with a different number of workers or ranks, pass the saved
    ``StatefulDataLoader.state_dict()`` (of any rank) to this dataset's
    ``load_state_dict`` before building the new loader: the epoch continues at position
    ``steps * world_size * batch_size`` and every remaining record is read exactly once.
    Exact resume needs equal steps (``"pad"`` or ``"drop"``), the same ``batch_size`` in the
    dataset and the loader, and the loader's default ``in_order=True``.

    ``rank``/``world_size`` default to ``torch.distributed``'s when it is initialised at
    construction time (else 0 and 1). Call ``set_epoch(n)`` at the start of every epoch.
    ``options``: those of :func:`editshard.open` plus the filters ``kind``, ``edit_type``,
    ``category``, ``min_score``; ``prefetch_batches`` and ``prefetch_bytes`` bound the
    background fetching per worker.

    With ``pipeline``, each item is one batch of ``batch_size`` records as tensors (see
    :class:`Pipeline`): use ``DataLoader(ds, batch_size=None, ...)``; ``len(ds)`` is then the
    number of batches. Crops and flips are drawn from (``seed``, epoch, record id), so they
    do not depend on the number of workers or ranks, and a resumed epoch gets the same ones.
    Records whose images fail are skipped with ``skip_corrupt=True`` (the batch is topped
    up with repeats of its other records, keeping equal steps).
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        batch_size: int = 1,
        shuffle: bool | str = True,
        seed: int = 0,
        window: int = 64,
        rank: int | None = None,
        world_size: int | None = None,
        transform: Transform = None,
        pipeline: Pipeline | None = None,
        equal_steps: str | None = "pad",
        kind: str | Sequence[str] | None = None,
        edit_type: str | Sequence[str] | None = None,
        category: str | Sequence[str] | None = None,
        min_score: tuple[str, float] | None = None,
        images: ImagesSpec = None,
        prefetch_batches: int = 4,
        prefetch_bytes: int = 256 << 20,
        **options: Any,
    ) -> None:
        if pipeline is not None and transform is not None:
            raise ValueError("give a transform or a pipeline, not both")
        if pipeline is not None and images is None:
            images = pipeline.fetch
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if equal_steps not in ("pad", "drop", None):
            raise ValueError("equal_steps must be 'pad', 'drop' or None")
        self.location = os.fspath(location)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle_name(shuffle)
        self.seed = int(seed)
        self.window = int(window)
        if rank is None or world_size is None:
            drank, dworld = _dist_rank_world()
            rank = drank if rank is None else rank
            world_size = dworld if world_size is None else world_size
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} of world size {world_size}")
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.transform = transform
        self.pipeline = pipeline
        self.equal_steps = equal_steps
        self.filter = Filter(kind, edit_type, category, min_score)
        self.images = images
        images_spec(images)  # validate early
        self.prefetch_batches = prefetch_batches
        self.prefetch_bytes = prefetch_bytes
        self.options = options
        # Shared with worker processes (persistent ones too), so set_epoch() in the main
        # process reaches workers started earlier.
        self._epoch = multiprocessing.RawValue("q", 0)
        # Where the current epoch's reading starts (a resumed position) and how many of
        # this consumer's batches were already produced from there.
        self._origin = 0
        self._done = 0
        self._resume_epoch: int | None = None
        self._topology: tuple[int, int, int, int] | None = None
        self._produced = 0
        self._ds: Dataset | None = None

    # -- opening -------------------------------------------------------------------------

    @property
    def dataset(self) -> Dataset:
        """The underlying dataset, opened lazily in the current process."""
        if self._ds is None:
            self._ds = _open(self.location, **self.options)
        return self._ds

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ds"] = None
        if multiprocessing.context.get_spawning_popen() is None:
            # Not starting a worker: shared memory cannot travel, the number can.
            state["_epoch"] = self.epoch
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(state["_epoch"], int):
            self._epoch = multiprocessing.RawValue("q", state["_epoch"])

    @property
    def epoch(self) -> int:
        """The current epoch (see :meth:`set_epoch`)."""
        return int(self._epoch.value)

    # -- sizes ---------------------------------------------------------------------------

    def steps_per_epoch(self, position: int | None = None) -> int:
        """Batches every rank yields in an epoch read from ``position`` (default: the
        resume position if one is loaded, else 0)."""
        n = self.dataset.total_records
        start = self._origin if position is None else position
        remaining = max(n - start, 0)
        per_step = self.world_size * self.batch_size
        if self.equal_steps == "drop":
            return remaining // per_step
        return math.ceil(remaining / per_step)

    def __len__(self) -> int:
        """Samples this rank yields per epoch (exact with ``equal_steps``; without it, an
        upper bound); with a pipeline, batches."""
        if self.pipeline is not None:
            return self.steps_per_epoch()
        return self.steps_per_epoch() * self.batch_size

    # -- epochs and state ----------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Selects the epoch (its order). A loaded resume state applies to its own epoch
        only."""
        self._epoch.value = int(epoch)
        self._drop_stale_resume()

    def _drop_stale_resume(self) -> None:
        if self._resume_epoch is not None and self._resume_epoch != self.epoch:
            self._origin, self._done, self._resume_epoch, self._topology = 0, 0, None, None

    def _consumer(self) -> tuple[int, int]:
        info = tud.get_worker_info()
        if info is None:
            return 0, 1
        return int(info.id), int(info.num_workers)

    def state_dict(self) -> dict[str, Any]:
        """This consumer's progress in the epoch: batches produced since ``origin``."""
        worker, workers = self._consumer()
        return {
            _STATE_MARK: 1,
            "seed": self.seed,
            "epoch": self.epoch,
            "shuffle": self.shuffle,
            "origin": self._origin,
            "done": self._done + self._produced // self.batch_size,
            "batch_size": self.batch_size,
            "rank": self.rank,
            "world_size": self.world_size,
            "worker": worker,
            "workers": workers,
        }

    def position_of(self, state: dict[str, Any]) -> dict[str, int]:
        """The epoch and the position (positions consumed) a saved state stands for:
        a ``StatefulDataLoader.state_dict()``, this dataset's ``state_dict()`` (from a
        single-worker loader), or ``{"epoch": e, "position": p}``."""
        if _STATE_MARK not in state and "position" in state:
            return {
                "epoch": int(state.get("epoch", self.epoch)),
                "position": int(state["position"]),
            }
        if _STATE_MARK in state:
            if state["workers"] != 1:
                raise ValueError(
                    "a single worker's state does not say how far its rank got: pass the "
                    "StatefulDataLoader's whole state_dict()"
                )
            steps, ds_state = int(state["done"]), state
        else:
            steps, ds_state = _loader_steps(state)
        return {
            "epoch": int(ds_state["epoch"]),
            "position": int(ds_state["origin"])
            + steps * int(ds_state["world_size"]) * int(ds_state["batch_size"]),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores progress. Accepts this dataset's own state (as ``StatefulDataLoader``
        passes it back to each worker), a whole ``StatefulDataLoader.state_dict()`` (any
        worker count or world size: resumes at the global position), or
        ``{"epoch": e, "position": p}``."""
        if state.get(_STATE_MARK) and state["workers"] > 1:
            # A worker's own state, restored by StatefulDataLoader into the same topology.
            if state["batch_size"] != self.batch_size:
                raise ValueError("batch_size differs from the saved state's")
            self.set_epoch(int(state["epoch"]))
            self._origin, self._done = int(state["origin"]), int(state["done"])
            self._topology = (
                int(state["rank"]),
                int(state["world_size"]),
                int(state["worker"]),
                int(state["workers"]),
            )
        else:
            pos = self.position_of(state)
            self.set_epoch(pos["epoch"])
            self._origin, self._done, self._topology = pos["position"], 0, None
        self._resume_epoch = self.epoch
        self._produced = 0

    # -- iteration -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        ds = self.dataset
        native = ds.native
        worker, workers = self._consumer()
        world, rank, b = self.world_size, self.rank, self.batch_size
        self._drop_stale_resume()
        origin, done = self._origin, self._done
        if self._topology is not None and self._topology != (rank, world, worker, workers):
            raise ValueError(
                f"saved state is for rank/world/worker/workers {self._topology}, not "
                f"{(rank, world, worker, workers)}: load the StatefulDataLoader's whole "
                "state_dict() into the dataset to change the topology"
            )
        n = ds.total_records
        steps = self.steps_per_epoch(origin) if self.equal_steps else None
        mine: int | None = None
        if steps is not None:
            mine = (steps - worker + workers - 1) // workers if steps > worker else 0
        self._produced = 0
        filtering = not self.filter.is_empty()
        spec = images_spec(self.images)
        reader = native.reader(
            seed=self.seed,
            epoch=self.epoch,
            position=min(origin + done * workers * world * b, max(n, 0)),
            shuffle=self.shuffle,
            window=self.window,
            rank=rank,
            world_size=world,
            worker=worker,
            workers=workers,
            batch=b,
            images=spec,
            skip_corrupt=ds.skip_corrupt or bool(self.options.get("skip_corrupt")),
            prefetch_batches=self.prefetch_batches,
            prefetch_bytes=self.prefetch_bytes,
            **self.filter.native_kwargs(),
        )
        last: list[Any] = []
        j = done
        try:
            while mine is None or j < mine:
                first = origin + ((j * workers + worker) * world + rank) * b
                if first < n:
                    got = reader.next_batch()
                    records = list(got) if got is not None else []
                else:
                    records = []
                if mine is None:
                    if first >= n:
                        break
                    if self.pipeline is not None:
                        if records:
                            self._produced += b
                            yield self._batch(records, fill=False)
                    else:
                        for r in records:
                            self._produced += 1
                            yield self._apply(r)
                    j += 1
                    continue
                need = b - len(records)
                if need > 0:
                    records += self._fill(native, n, first, b, records, last, spec, filtering)
                last = records
                if self.pipeline is not None:
                    self._produced += b
                    yield self._batch(records[:b], fill=True)
                else:
                    for r in records[:b]:
                        self._produced += 1
                        yield self._apply(r)
                j += 1
            # The epoch is complete: a later pass starts from its beginning.
            if self._resume_epoch == self.epoch:
                self._origin, self._done, self._resume_epoch, self._topology = 0, 0, None, None
        finally:
            reader.close()

    def _fill(
        self,
        native: Any,
        n: int,
        first: int,
        b: int,
        records: list[Any],
        last: list[Any],
        spec: tuple[bool, bool, bool],
        filtering: bool,
    ) -> list[Any]:
        """Records to top a short batch up to ``b``."""
        need = b - len(records)
        out: list[Any] = []
        pad_positions = [p for p in range(max(first, n), first + b)]
        if pad_positions and not filtering and n > 0:
            # Past the end: the epoch's first positions again, like DistributedSampler.
            indices = native.order(
                [p % n for p in pad_positions],
                shuffle=self.shuffle,
                window=self.window,
                seed=self.seed,
                epoch=self.epoch,
            )
            out = list(native.get_many(indices, spec))
        pool = records or last or self._any_record(native, n, spec)
        k = 0
        while len(out) < need:
            out.append(pool[k % len(pool)])
            k += 1
        return out[:need]

    def _any_record(self, native: Any, n: int, spec: tuple[bool, bool, bool]) -> list[Any]:
        for start in range(0, n, 256):
            indices = list(range(start, min(start + 256, n)))
            for r in native.select(indices, spec, **self.filter.native_kwargs()):
                if r is not None:
                    return [r]
        raise ValueError(f"no record of the dataset passes the filter {self.filter}")

    def _apply(self, record: Any) -> Any:
        return self.transform(record) if self.transform is not None else record

    def _batch(self, records: list[Any], fill: bool) -> dict[str, Any]:
        assert self.pipeline is not None
        return self.pipeline(
            records,
            epoch=self.epoch,
            seed=self.seed,
            skip_corrupt=self.dataset.skip_corrupt,
            fill=fill,
        )


def _loader_steps(state: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Steps taken and one dataset state from a ``StatefulDataLoader.state_dict()``."""
    if "_snapshot" in state:  # multi-process loader
        snap = state["_snapshot"]
        steps = int(snap["_snapshot_step"]) + int(state.get("_steps_since_snapshot", 0))
        for worker_state in snap["_worker_snapshots"].values():
            ds_state = worker_state.get("dataset_state") if worker_state else None
            if ds_state and _STATE_MARK in ds_state:
                return steps, ds_state
        raise ValueError("the loader state holds no editshard dataset state")
    if "_num_yielded" in state:  # single-process loader
        ds_state = state.get("dataset_state")
        if not ds_state or _STATE_MARK not in ds_state:
            raise ValueError("the loader state holds no editshard dataset state")
        return int(state["_num_yielded"]), ds_state
    raise ValueError("not a StatefulDataLoader state_dict nor an editshard state")


__all__ = ["EditDataset", "IterableEditDataset", "Pipeline"]
