"""The `Dataset` object: random access, filters, projection and iteration."""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Literal, overload

from . import _native
from ._errors import NotFoundError

Record = _native.Record

#: Which images' bytes to fetch: "all", "none" (metadata only), or a collection of roles
#: among "source", "outputs", "rejected".
ImagesSpec = str | Sequence[str] | None

_ROLES = ("source", "outputs", "rejected")
_STORAGE_KEYS = (
    "s3_endpoint",
    "hf_token",
    "timeout",
    "connect_timeout",
    "retries",
    "verify",
    "coalesce_gap",
    "concurrency",
    "map_local",
    "footer_cache_bytes",
)


#: What every read checks: "crc" (the default), "full" (also each image's SHA-256) or "none".
Verify = Literal["none", "crc", "full"]
_VERIFY_LEVELS = ("none", "crc", "full")


def _translate_verify_crc(storage: dict[str, Any]) -> None:
    """Replaces the deprecated ``verify_crc`` option (in place) with its ``verify`` level, and
    checks the level's name."""
    if "verify_crc" in storage:
        warnings.warn(
            "verify_crc= is deprecated: use verify='crc' (the default), 'full' or 'none'",
            DeprecationWarning,
            stacklevel=4,
        )
        on = storage.pop("verify_crc")
        if "verify" in storage and storage["verify"] != ("crc" if on else "none"):
            raise TypeError("give verify= or the deprecated verify_crc=, not both")
        storage["verify"] = "crc" if on else "none"
    level = storage.get("verify", "crc")
    if level not in _VERIFY_LEVELS:
        raise ValueError(f"verify={level!r}: expected 'crc' (the default), 'full' or 'none'")


def images_spec(spec: ImagesSpec) -> tuple[bool, bool, bool]:
    """Turns an images spec into the (source, outputs, rejected) flags of the native layer."""
    if spec is None or spec == "all":
        return (True, True, True)
    if spec == "none":
        return (False, False, False)
    if isinstance(spec, str):
        spec = [spec]
    roles = set(spec)
    unknown = roles - set(_ROLES)
    if unknown:
        raise ValueError(
            f"unknown image roles {sorted(unknown)}: use 'all', 'none' or a list of {_ROLES}"
        )
    return ("source" in roles, "outputs" in roles, "rejected" in roles)


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


class Filter:
    """Which records to keep (empty: all). Kinds are checked from the shard index; edit
    types, categories and scores from the metadata, before image bytes are fetched."""

    def __init__(
        self,
        kind: str | Sequence[str] | None = None,
        edit_type: str | Sequence[str] | None = None,
        category: str | Sequence[str] | None = None,
        min_score: tuple[str, float] | None = None,
    ) -> None:
        self.kinds = _as_list(kind)
        self.edit_types = _as_list(edit_type)
        self.categories = _as_list(category)
        self.min_score = (str(min_score[0]), float(min_score[1])) if min_score else None

    def is_empty(self) -> bool:
        return not (self.kinds or self.edit_types or self.categories or self.min_score)

    def native_kwargs(self) -> dict[str, Any]:
        return {
            "kinds": self.kinds,
            "edit_types": self.edit_types,
            "categories": self.categories,
            "min_score": self.min_score,
        }

    def __repr__(self) -> str:
        return (
            f"Filter(kind={self.kinds}, edit_type={self.edit_types}, "
            f"category={self.categories}, min_score={self.min_score})"
        )


# This process's id, kept current in a fork's child by the hook below, so that `native`
# compares it on every call instead of asking the kernel (a getpid system call was 1-2% of a
# first `ds[i]` from Python; bench/README.md, "Python read benchmark").
_this_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _this_pid
    _this_pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Dataset:
    """An editshard dataset opened for reading (see :func:`editshard.open`).

    Indexing is by global record index (``ds[i]``, negative too); ``ds.get(id)`` by record
    id. Every read releases the GIL. A ``Dataset`` may be used from several threads, pickled
    (it reopens in the other process) and survives ``fork`` (it reopens lazily in the child:
    no runtime, thread or connection is carried across).
    """

    def __init__(
        self,
        location: str,
        *,
        images: ImagesSpec = "all",
        skip_corrupt: bool = False,
        _native_ds: _native.NativeDataset | None = None,
        _indices: list[int] | None = None,
        **storage: Any,
    ) -> None:
        _translate_verify_crc(storage)
        unknown = set(storage) - set(_STORAGE_KEYS)
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}")
        self._location = str(location)
        self._storage = dict(storage)
        self._images = images_spec(images)
        self._images_arg = images
        self.skip_corrupt = bool(skip_corrupt)
        self._lock = threading.Lock()
        if _native_ds is None:
            _native_ds = _native.NativeDataset.open(str(os.fspath(location)), **storage)
        self._nat: _native.NativeDataset = _native_ds
        self._pid = _this_pid
        self._indices = _indices
        # Fixed for the life of the view (the manifest's count or the view's indices): read
        # once, not through the native handle on every index check.
        self._len = len(_indices) if _indices is not None else len(_native_ds)
        self._index_set_cache = set(_indices) if _indices is not None else None
        self._manifest: dict[str, Any] | None = None
        self._summary: dict[str, Any] | None = None

    # -- process handling --------------------------------------------------------------

    @property
    def native(self) -> _native.NativeDataset:
        """The native handle, reopened (without I/O) if this process is a fork's child."""
        pid = _this_pid
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._nat = self._nat.reopen()
                    self._pid = pid
        return self._nat

    def __getstate__(self) -> dict[str, Any]:
        return {
            "location": self._location,
            "storage": self._storage,
            "images": self._images_arg,
            "skip_corrupt": self.skip_corrupt,
            "indices": self._indices,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["location"],
            images=state["images"],
            skip_corrupt=state["skip_corrupt"],
            _indices=state["indices"],
            **state["storage"],
        )

    # -- description -------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self._location

    @property
    def manifest(self) -> dict[str, Any]:
        """``manifest.json`` as a dict."""
        if self._manifest is None:
            self._manifest = json.loads(self.native.manifest_json())
        return self._manifest

    @property
    def _manifest_summary(self) -> dict[str, Any]:
        """The manifest's top-level fields without ``shards``: the whole manifest holds every
        shard's id filter, some 3 bytes a record, which a summary does not need."""
        if self._manifest is not None:
            return self._manifest
        if self._summary is None:
            self._summary = json.loads(self.native.manifest_summary_json())
        return self._summary

    @property
    def total_records(self) -> int:
        """Records in the whole dataset (before any filter)."""
        return len(self.native)

    @property
    def kinds(self) -> dict[str, int]:
        """Records per kind, from the manifest."""
        return dict(self._manifest_summary.get("kinds", {}))

    @property
    def edit_types(self) -> dict[str, int]:
        """Turns per edit type, from the manifest."""
        return dict(self._manifest_summary.get("edit_types", {}))

    @property
    def categories(self) -> dict[str, int]:
        """Turns per category, from the manifest."""
        return dict(self._manifest_summary.get("categories", {}))

    @property
    def shard_records(self) -> list[int]:
        return list(self.native.shard_records())

    def __repr__(self) -> str:
        view = "" if self._indices is None else f" (filtered from {self.total_records})"
        return f"<editshard.Dataset {self._location!r}: {len(self)} records{view}>"

    # -- random access -----------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def _global(self, index: int) -> int:
        n = self._len
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"record index {index} out of range for {n} records")
        return self._indices[i] if self._indices is not None else i

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return self.get_many(range(len(self))[index])
        return self.native.get(self._global(int(index)), self._images)

    def __iter__(self) -> Iterator[Record]:
        return self.iter()

    def get(self, id: str, images: ImagesSpec = None) -> Record:
        """The record with this id; raises :class:`NotFoundError` (a ``KeyError``) if absent."""
        spec = self._images if images is None else images_spec(images)
        if self._indices is not None:
            index = self.native.find(id)
            if index is None or index not in self._index_set():
                raise NotFoundError(f"no record with id {id!r}", id=id, kind="not-found")
            return self.native.get(index, spec)
        record = self.native.get_by_id(id, spec)
        if record is None:
            raise NotFoundError(
                f"no record with id {id!r} in {self._location}", id=id, kind="not-found"
            )
        return record

    def find(self, id: str) -> int | None:
        """The index of the record with this id (in this view), or None."""
        index = self.native.find(id)
        if index is None or self._indices is None:
            return index
        try:
            return self._indices.index(index)
        except ValueError:
            return None

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and self.find(id) is not None

    def _index_set(self) -> set[int]:
        return self._index_set_cache or set()

    def get_many(self, indices: Sequence[int], images: ImagesSpec = None) -> list[Record]:
        """Several records, in the order asked; neighbouring byte ranges are fetched with one
        request."""
        spec = self._images if images is None else images_spec(images)
        return self.native.get_many([self._global(int(i)) for i in indices], spec)

    # -- views -------------------------------------------------------------------------

    def with_images(self, images: ImagesSpec) -> Dataset:
        """The same records with another projection ("all", "none", or roles)."""
        return Dataset(
            self._location,
            images=images,
            skip_corrupt=self.skip_corrupt,
            _native_ds=self.native,
            _indices=self._indices,
            **self._storage,
        )

    def filter(
        self,
        kind: str | Sequence[str] | None = None,
        edit_type: str | Sequence[str] | None = None,
        category: str | Sequence[str] | None = None,
        min_score: tuple[str, float] | None = None,
    ) -> Dataset:
        """A view of the records that pass the filter, for random access. Finding them reads
        the metadata of every record once (no image bytes; kinds from the shard index only)."""
        flt = Filter(kind, edit_type, category, min_score)
        base = self._indices if self._indices is not None else range(len(self.native))
        keep: list[int] = []
        chunk = 512
        for start in range(0, len(base), chunk):
            indices = list(base[start : start + chunk])
            got = self.native.select(
                indices,
                (False, False, False),
                skip_corrupt=self.skip_corrupt,
                **flt.native_kwargs(),
            )
            keep.extend(i for i, r in zip(indices, got) if r is not None)
        return Dataset(
            self._location,
            images=self._images_arg,
            skip_corrupt=self.skip_corrupt,
            _native_ds=self.native,
            _indices=keep,
            **self._storage,
        )

    # -- saving ------------------------------------------------------------------------

    def save(self, location: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
        """Copies this dataset's records (a filtered view's only), in order, into a new
        dataset at ``location`` and returns its manifest. Image bytes are copied as stored:
        nothing is decoded or re-encoded. Every byte read is checked (CRCs and each image's
        SHA-256: ``verify="full"``) whatever this dataset was opened with. The options are those of
        :class:`editshard.Writer`; ``licence`` defaults to this dataset's."""
        from ._writer import Writer

        options.setdefault("licence", self._manifest_summary.get("licence"))
        verified = self._storage.get("verify", "crc") == "full"
        source = Dataset(
            self._location,
            images="all",
            skip_corrupt=self.skip_corrupt,
            _native_ds=self.native if verified else None,
            _indices=self._indices,
            **{**self._storage, "verify": "full"},
        )
        with Writer(location, **options) as w:
            w.write_many(source._records_in_order())
        assert w.manifest is not None
        return w.manifest

    def _records_in_order(self) -> Iterator[Record]:
        """Every record of this view in order: streamed with the background prefetch (its
        memory bounded) for a whole dataset, fetched a few at a time for a filtered view."""
        if self._indices is None:
            yield from self.iter(prefetch_bytes=64 << 20)
            return
        chunk = 16
        for start in range(0, len(self._indices), chunk):
            yield from self.native.get_many(self._indices[start : start + chunk], self._images)

    # -- iteration ---------------------------------------------------------------------

    def iter(
        self,
        *,
        shuffle: bool | str = False,
        seed: int = 0,
        epoch: int = 0,
        window: int = 64,
        position: int = 0,
        rank: int = 0,
        world_size: int = 1,
        batch: int = 64,
        kind: str | Sequence[str] | None = None,
        edit_type: str | Sequence[str] | None = None,
        category: str | Sequence[str] | None = None,
        min_score: tuple[str, float] | None = None,
        images: ImagesSpec = None,
        prefetch_batches: int = 4,
        prefetch_bytes: int = 256 << 20,
    ) -> Iterator[Record]:
        """Records of an epoch (the whole dataset, not a filtered view's subset), in
        dataset order or shuffled (``shuffle=True``/``"full"``, or ``"block"`` for windows of
        ``window`` records), this rank's share, with filters and projection applied before
        image bytes are fetched; fetched ahead in the background. Damaged records are
        skipped and logged when the dataset was opened with ``skip_corrupt=True``."""
        if self._indices is not None:
            raise ValueError("iter() reads whole epochs: call it on the unfiltered dataset")
        reader = self.native.reader(
            seed=seed,
            epoch=epoch,
            position=position,
            shuffle=shuffle_name(shuffle),
            window=window,
            rank=rank,
            world_size=world_size,
            batch=batch,
            images=self._images if images is None else images_spec(images),
            skip_corrupt=self.skip_corrupt,
            prefetch_batches=prefetch_batches,
            prefetch_bytes=prefetch_bytes,
            **Filter(kind, edit_type, category, min_score).native_kwargs(),
        )
        try:
            while True:
                batch_records = reader.next_batch()
                if batch_records is None:
                    return
                yield from batch_records
        finally:
            reader.close()


def shuffle_name(shuffle: bool | str | None) -> str:
    if shuffle is True:
        return "full"
    if shuffle is False or shuffle is None:
        return "none"
    if shuffle in ("none", "full", "block"):
        return shuffle
    raise ValueError(f"shuffle={shuffle!r}: expected a bool, 'none', 'full' or 'block'")


def open(
    location: str | os.PathLike[str],
    *,
    images: ImagesSpec = "all",
    skip_corrupt: bool = False,
    s3_endpoint: str | None = None,
    hf_token: str | None = None,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    retries: int | None = None,
    verify: Verify = "crc",
    coalesce_gap: int | None = None,
    concurrency: int | None = None,
    map_local: bool = True,
    verify_crc: bool | None = None,
    footer_cache_bytes: int | None = None,
) -> Dataset:
    """Opens the dataset at ``location``: a local path, ``file:///abs``, ``https://host/prefix``,
    ``hf://datasets/ORG/NAME[@REVISION][/PATH]`` (the Hugging Face Hub) or
    ``s3://bucket/prefix``. Reads ``manifest.json`` only.

    S3 settings come from ``s3_endpoint`` or ``AWS_ENDPOINT_URL(_S3)``, ``AWS_REGION``,
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` (no credentials:
    unsigned requests). The Hub's come from ``HF_ENDPOINT`` and ``hf_token``, else
    ``HF_TOKEN``, else the token ``hf auth login`` saved; the token is sent to the Hub only,
    never to the CDN it redirects to. Redirects are followed (at most 5, never from https to
    http). ``timeout`` (seconds without progress) and ``retries`` apply to HTTP and S3.
    ``images`` picks which images' bytes are fetched ("all", "none" or roles);
    ``skip_corrupt`` makes iteration log and skip damaged records.

    ``map_local`` (default ``True``): the shards of a local dataset are memory-mapped, and
    image bytes (``Image.data``) are views of the map, not copies. A program that truncates a
    shard file in place while such a view is alive kills the interpreter with SIGBUS when the
    view is touched, and one that rewrites it in place changes the bytes seen through the
    view. editshard itself never does either (it replaces files by renaming new ones over
    them); if another program may, pass ``map_local=False``: shards are then read with
    ranged reads into memory the record owns.

    ``verify`` is what every read checks: ``"crc"`` (the default) checks every byte read
    against its CRC32 and each record's frame head against the shard's index, which catches
    damage on disk and in transit; ``"full"`` also checks each image against the SHA-256 in its
    record's metadata, which catches a shard whose index and metadata disagree with valid CRCs
    (a broken writer), at about 1 GB/s a core; ``"none"`` checks nothing (for measurements).
    ``verify_crc`` is its deprecated form (``False`` is ``verify="none"``).

    ``footer_cache_bytes`` (default 16 MiB) bounds the shard indexes (footers) a process keeps
    loaded, the least recently used going first: about 150 bytes a record, so 16 MiB holds
    some 110,000 records' indexes. A random read from a shard whose footer is not loaded
    loads it again (~0.25 ms for a 512 MiB shard of the release); raise it for fast random
    metadata reads over a larger dataset (see "Memory" in python/README.md).
    """
    storage: dict[str, Any] = {
        "s3_endpoint": s3_endpoint,
        "hf_token": hf_token,
        "timeout": timeout,
        "connect_timeout": connect_timeout,
        "retries": retries,
        "verify": verify,
        "coalesce_gap": coalesce_gap,
        "concurrency": concurrency,
        "map_local": map_local,
        "footer_cache_bytes": footer_cache_bytes,
    }
    storage = {k: v for k, v in storage.items() if v is not None}
    if verify_crc is not None:
        if verify != "crc":
            raise TypeError("give verify= or the deprecated verify_crc=, not both")
        del storage["verify"]
        storage["verify_crc"] = verify_crc
    return Dataset(os.fspath(location), images=images, skip_corrupt=skip_corrupt, **storage)
