"""``editshard.torch.Pipeline``: records to batch tensors, paired, in Rust."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.utils.data as tud

from . import _native, _reuse
from ._errors import DecodeError

_DTYPES = {"uint8": torch.uint8, "float32": torch.float32, "bfloat16": torch.bfloat16}
_ROLES = ("source", "output", "rejected", "mask")
_log = logging.getLogger("editshard")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor in private memory (outside a DataLoader worker)."""
    return torch.empty(shape, dtype=dtype)


def _bytes_of(t: torch.Tensor) -> Any:
    """A writable uint8 NumPy view of a contiguous tensor's memory (any dtype)."""
    flat = t.view(-1)
    return (flat if flat.dtype == torch.uint8 else flat.view(torch.uint8)).numpy()


class Pipeline:
    """Decode, resize, crop, flip, convert and normalise a batch of records' images in Rust,
    straight into batch tensors, with the GIL released.

    ``size``: the tensors' height and width (an int for a square). ``resize``: ``"shorter"``
    scales the image to cover the canvas (for a square canvas its shorter side becomes
    ``size``, like torchvision's ``Resize(size)``), ``"longer"`` to fit inside it (the rest is
    padded with black), ``"exact"`` to the canvas exactly. ``crop``: ``"center"`` (like
    ``CenterCrop``), ``"random"`` (any whole-pixel position), or None (only with
    ``resize="exact"``). ``flip``: the probability of a horizontal flip. ``dtype``:
    ``"uint8"`` (0..255), ``"float32"`` or ``"bfloat16"`` (0..1, then ``(x - mean) / std``
    per channel when ``mean`` and ``std`` are given). ``images``: which tensors a batch
    holds, among ``"source"``, ``"output"``, ``"rejected"`` (the first rejected edit) and
    ``"mask"`` (one channel, its luma; resampled with nearest neighbours and never
    normalised); for multi-turn records, the first turn's. ``interpolation``:
    ``"bilinear"`` (antialiased when downscaling, like torchvision's
    ``Resize(antialias=True)``), ``"bicubic"``, ``"lanczos"`` or ``"nearest"``.

    Paired: one crop box and one flip per record, drawn from ``(seed, epoch, record id)``,
    applied to every image of the record in fractions of its own size. ``seed`` defaults to
    the dataset's. ``threads``: images of a batch decoded at once in each process (default:
    the CPUs this process may use divided by the DataLoader's workers). A JPEG needed at
    half its size or less is decoded at that size by its IDCT (``scaled_jpeg=False``
    decodes it whole first). An image whose decoded pixels would take more than
    ``max_decode_bytes`` (default :data:`editshard.MAX_DECODE_BYTES`, 1 GiB, as
    ``editshard verify --decode``) is refused before decoding: a :class:`DecodeError`
    naming the record and image, or skipped with the dataset's ``skip_corrupt``.
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        *,
        resize: str = "shorter",
        crop: str | None = "center",
        flip: float = 0.0,
        dtype: str = "uint8",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        images: Sequence[str] = ("source", "output"),
        interpolation: str = "bilinear",
        seed: int | None = None,
        threads: int | None = None,
        max_decode_bytes: int = _native.MAX_DECODE_BYTES,
        scaled_jpeg: bool = True,
    ) -> None:
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if isinstance(images, str):
            images = (images,)
        images = tuple(images)
        unknown = [r for r in images if r not in _ROLES]
        if unknown or not images or len(set(images)) != len(images):
            raise ValueError(f"images={images!r}: distinct names among {_ROLES}")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype={dtype!r}: expected one of {sorted(_DTYPES)}")
        if threads is not None and threads < 1:
            raise ValueError("threads must be >= 1")
        self.height, self.width = height, width
        self.images: tuple[str, ...] = images
        self.dtype = dtype
        self.seed = seed
        self.threads = threads
        self._args: dict[str, Any] = {
            "resize": resize,
            "crop": crop,
            "flip": float(flip),
            "dtype": dtype,
            "mean": None if mean is None else [float(v) for v in mean],
            "std": None if std is None else [float(v) for v in std],
            "interpolation": interpolation,
            "max_decode_bytes": int(max_decode_bytes),
            "scaled_jpeg": bool(scaled_jpeg),
        }
        self._native: _native.Pipeline | None = self._build()  # validates the settings
        self._pool: _reuse.Pool | None = None

    def _build(self) -> _native.Pipeline:
        return _native.Pipeline(self.height, self.width, **self._args)

    @property
    def native(self) -> _native.Pipeline:
        if self._native is None:
            self._native = self._build()
        return self._native

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_native"] = None
        state["_pool"] = None
        return state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._args.items())
        return f"Pipeline(({self.height}, {self.width}), images={self.images!r}, {args})"

    @property
    def fetch(self) -> str | tuple[str, ...]:
        """The images spec (of :func:`editshard.open`) that fetches what the batch needs."""
        if "mask" in self.images:
            return "all"
        roles = {"source": "source", "output": "outputs", "rejected": "rejected"}
        return tuple(roles[r] for r in self.images)

    def placement(
        self, record: _native.Record, *, epoch: int = 0, seed: int | None = None
    ) -> dict[str, Any]:
        """The crop box and flip this record gets: ``top``/``left`` of the canvas in the
        source image resized (negative where the canvas is padded), that resized size, and
        ``flip``."""
        src = record.source
        (top, left, flipped), (rh, rw) = self.native.placement(
            record.id, src.width, src.height, self._seed(seed), int(epoch)
        )
        return {"top": top, "left": left, "resized": (rh, rw), "flip": flipped}

    def _seed(self, seed: int | None) -> int:
        chosen = self.seed if self.seed is not None else seed
        return int(chosen or 0) % (1 << 64)

    def _threads(self) -> int:
        if self.threads is not None:
            return self.threads
        info = tud.get_worker_info()
        workers = info.num_workers if info is not None else 1
        return max(1, _cpus() // max(1, workers))

    def __call__(
        self,
        records: Sequence[_native.Record],
        *,
        epoch: int = 0,
        seed: int | None = None,
        skip_corrupt: bool = False,
        fill: bool = False,
    ) -> dict[str, Any]:
        """One batch of ``records``: a dict of ``[B, C, H, W]`` tensors (one per image role)
        and the lists ``id``, ``instruction``, ``short_instruction``, ``edit_type``,
        ``scores``. With ``skip_corrupt``, records whose images fail are logged and left
        out (``fill``: replaced by repeats of the others, so the batch keeps its size)."""
        native = self.native
        records = list(records)
        n = len(records)
        shared = tud.get_worker_info() is not None
        dtype = _DTYPES[self.dtype]
        shapes: dict[str, tuple[int, ...]] = {
            r: (n, native.channels(r), self.height, self.width) for r in self.images
        }
        lease = None
        if shared:
            # In a worker: shared memory, reused once no process holds its last batch (see
            # _reuse), so that sending the batch moves a handle and no fresh pages are zeroed.
            if self._pool is None or self._pool.pid != os.getpid():
                self._pool = _reuse.Pool()
            tensors, lease = self._pool.take(shapes, dtype)
        else:
            tensors = {r: _empty(s, dtype) for r, s in shapes.items()}
        try:
            failures = native.run(
                records,
                list(self.images),
                [_bytes_of(t) for t in tensors.values()],
                self._seed(seed),
                int(epoch),
                self._threads(),
            )
            bad = [(i, f) for i, f in enumerate(failures) if f is not None]
            if bad:
                i, (role, message, over_limit) = bad[0]
                if not skip_corrupt:
                    raise DecodeError(
                        message, id=records[i].id, kind="limit" if over_limit else "rejected"
                    )
                for i, (_, message, _) in bad:
                    _log.warning("skipping record: %s", message)
                keep = [i for i, f in enumerate(failures) if f is None]
                if not keep:
                    raise DecodeError(
                        f"no record of the batch decodes; the first: {message}",
                        id=records[bad[0][0]].id,
                        kind="limit" if over_limit else "rejected",
                    )
                rows = keep + ([keep[k % len(keep)] for k in range(n - len(keep))] if fill else [])
                for role, t in tensors.items():
                    # Rare: moved within the same (possibly shared) memory, then narrowed.
                    t[: len(rows)] = t[rows]
                    tensors[role] = t[: len(rows)]
                records = [records[i] for i in rows]
        except BaseException:
            if lease is not None and self._pool is not None:
                self._pool.give_back(lease)
            raise
        batch: dict[str, Any] = dict(tensors)
        turns = [r.turns[0] if r.turns else None for r in records]
        batch["id"] = [r.id for r in records]
        batch["instruction"] = [t.instruction if t else None for t in turns]
        batch["short_instruction"] = [t.short_instruction if t else None for t in turns]
        batch["edit_type"] = [t.edit_type if t else None for t in turns]
        batch["scores"] = [r.scores for r in records]
        if lease is None or self._pool is None:
            return batch
        return _reuse.lend(batch, self._pool, lease)


__all__ = ["Pipeline"]
