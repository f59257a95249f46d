"""Type stubs of the Rust extension module `editshard._native`."""

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self, TypeAlias, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

__version__: str
MAX_DECODE_BYTES: int

_ImagesFlags: TypeAlias = tuple[bool, bool, bool]

@final
class ImageData:
    """Image bytes owned by Rust; supports the buffer protocol (read-only, no copy)."""

    def __len__(self) -> int: ...
    def __bytes__(self) -> bytes: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __eq__(self, other: object) -> bool: ...

@final
class Image:
    """One stored image: metadata always, bytes when fetched. Made from encoded bytes to be
    written: media type, width and height read from the header, SHA-256 computed (GIL
    released)."""

    def __init__(
        self,
        data: Buffer | ImageData,
        *,
        media_type: str | None = None,
        url: str | None = None,
        path: str | None = None,
        caption: str | None = None,
        scores: Mapping[str, float] | None = None,
        rotation: int | None = None,
    ) -> None: ...
    @classmethod
    def from_file(
        cls,
        file: str | os.PathLike[str],
        *,
        media_type: str | None = None,
        url: str | None = None,
        path: str | None = None,
        caption: str | None = None,
        scores: Mapping[str, float] | None = None,
        rotation: int | None = None,
    ) -> Self:
        """The bytes of a file, stored as they are."""
    @classmethod
    def from_pil(
        cls,
        img: Any,
        format: str = "PNG",
        *,
        url: str | None = None,
        path: str | None = None,
        caption: str | None = None,
        scores: Mapping[str, float] | None = None,
        rotation: int | None = None,
    ) -> Self:
        """A PIL image encoded by Pillow in ``format``."""
    @classmethod
    def from_numpy(
        cls,
        array: npt.NDArray[np.uint8],
        format: str = "PNG",
        *,
        url: str | None = None,
        path: str | None = None,
        caption: str | None = None,
        scores: Mapping[str, float] | None = None,
        rotation: int | None = None,
    ) -> Self:
        """A uint8 (H, W) or (H, W, C) array encoded in Rust as PNG, JPEG or lossless WEBP."""

    @property
    def data(self) -> ImageData | None:
        """The encoded bytes (buffer protocol, no copy), None when not fetched."""
    @property
    def has_data(self) -> bool: ...
    @property
    def media_type(self) -> str:
        """IANA media type: image/jpeg, image/png, image/webp."""
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def len(self) -> int:
        """Length of the encoded bytes (known even when not fetched)."""
    @property
    def sha256(self) -> str:
        """SHA-256 of the encoded bytes, lower-case hex."""
    @property
    def url(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def rotation(self) -> int | None:
        """Counter-clockwise rotation (degrees) recorded by the source; pixels not rotated."""
    @property
    def scores(self) -> dict[str, float]: ...
    @property
    def caption(self) -> str | None:
        """A description of the image's content (format 1.1)."""
    def to_numpy(
        self,
        mode: str | None = None,
        exif_transpose: bool = False,
        max_decode_bytes: int = ...,
    ) -> npt.NDArray[np.uint8]:
        """Decoded pixels, uint8, shape (H, W, C); GIL released while decoding. Raises
        editshard.DecodeError when the pixels would take more than max_decode_bytes."""
    def to_pil(self) -> Any:
        """A PIL.Image.Image (requires Pillow)."""
    def to_dict(self) -> dict[str, Any]: ...

@final
class Turn:
    def __init__(
        self,
        instruction: str | None,
        *,
        short_instruction: str | None = None,
        edit_type: str | None = None,
        category: str | None = None,
        output: Image | None = None,
        rejected: Sequence[Image] = (),
        mask: Image | None = None,
        instruction_variants: Sequence[str] = (),
    ) -> None:
        """A turn to write; ``output`` is required."""
    @property
    def instruction(self) -> str | None: ...
    @property
    def short_instruction(self) -> str | None: ...
    @property
    def edit_type(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...
    @property
    def output(self) -> Image:
        """The edited image (preference records: the chosen one)."""
    @property
    def rejected(self) -> list[Image]:
        """Failed edits of the same instruction."""
    @property
    def mask(self) -> Image | None:
        """The region the edit may change, as an image (format 1.1)."""
    @property
    def instruction_variants(self) -> list[str]:
        """Other phrasings of the instruction (format 1.1)."""
    def to_dict(self) -> dict[str, Any]: ...

@final
class Record:
    def __init__(
        self,
        id: str,
        kind: str,
        source: Image,
        turns: Sequence[Turn],
        *,
        provenance: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        """A record to write; ``kind``: 'sft', 'preference', 'multi-turn' or 'generic'."""
    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str:
        """'sft', 'preference', 'multi-turn' or 'generic'."""
    @property
    def source(self) -> Image: ...
    @property
    def turns(self) -> list[Turn]: ...
    @property
    def scores(self) -> dict[str, float]: ...
    @property
    def provenance(self) -> dict[str, Any]: ...
    @property
    def extras(self) -> dict[str, Any]: ...
    def images(self) -> list[Image]: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Reader:
    def next_batch(self) -> list[Record] | None: ...
    def close(self) -> None: ...

@final
class NativeDataset:
    @staticmethod
    def open(
        url: str,
        s3_endpoint: str | None = None,
        hf_token: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        retries: int | None = None,
        verify: str = "crc",
        coalesce_gap: int | None = None,
        concurrency: int | None = None,
        map_local: bool = True,
        footer_cache_bytes: int | None = None,
    ) -> NativeDataset: ...
    def reopen(self) -> NativeDataset: ...
    @property
    def pid(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def display(self) -> str: ...
    def __len__(self) -> int: ...
    def manifest_json(self) -> str: ...
    def manifest_summary_json(self) -> str: ...
    def shard_records(self) -> list[int]: ...
    def get(self, index: int, images: _ImagesFlags = ...) -> Record: ...
    def get_many(self, indices: list[int], images: _ImagesFlags = ...) -> list[Record]: ...
    def find(self, id: str) -> int | None: ...
    def get_by_id(self, id: str, images: _ImagesFlags = ...) -> Record | None: ...
    def select(
        self,
        indices: list[int],
        images: _ImagesFlags = ...,
        kinds: list[str] = ...,
        edit_types: list[str] = ...,
        categories: list[str] = ...,
        min_score: tuple[str, float] | None = None,
        skip_corrupt: bool = False,
    ) -> list[Record | None]: ...
    def order(
        self,
        positions: list[int],
        shuffle: str = "none",
        window: int = 64,
        seed: int = 0,
        epoch: int = 0,
    ) -> list[int]: ...
    def reader(
        self,
        *,
        seed: int = 0,
        epoch: int = 0,
        position: int = 0,
        shuffle: str = "none",
        window: int = 64,
        rank: int = 0,
        world_size: int = 1,
        worker: int = 0,
        workers: int = 1,
        batch: int = 64,
        images: _ImagesFlags = ...,
        kinds: list[str] = ...,
        edit_types: list[str] = ...,
        categories: list[str] = ...,
        min_score: tuple[str, float] | None = None,
        skip_corrupt: bool = False,
        prefetch_batches: int = 4,
        prefetch_bytes: int = ...,
    ) -> Reader: ...

@final
class Pipeline:
    """Decode, resize, crop, flip and convert into batch tensors (editshard.torch.Pipeline)."""

    def __init__(
        self,
        height: int,
        width: int,
        *,
        resize: str = "shorter",
        crop: str | None = "center",
        flip: float = 0.0,
        dtype: str = "uint8",
        mean: list[float] | None = None,
        std: list[float] | None = None,
        interpolation: str = "bilinear",
        max_decode_bytes: int = ...,
        scaled_jpeg: bool = True,
    ) -> None: ...
    def channels(self, role: str) -> int: ...
    def placement(
        self, id: str, ref_width: int, ref_height: int, seed: int, epoch: int
    ) -> tuple[tuple[int, int, bool], tuple[int, int]]:
        """((top, left, flipped), (resized height, resized width))."""
    def run(
        self,
        records: list[Record],
        roles: list[str],
        outputs: list[Any],
        seed: int,
        epoch: int,
        threads: int,
    ) -> list[tuple[str, str, bool] | None]:
        """Writes each record's images into its slot of each output buffer; per record None
        or its first failure (role, message, over the decode limit)."""

@final
class NativeWriter:
    def __init__(
        self,
        location: str,
        *,
        shard_size: int | str,
        format_version: str,
        licence: str | None = None,
        dataset: str | None = None,
        s3_endpoint: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        retries: int | None = None,
        break_lock: bool = False,
    ) -> None: ...
    def write(self, record: Record) -> None: ...
    def write_many(self, records: Iterable[Record]) -> int: ...
    def close(self) -> str: ...
    def abort(self) -> None: ...
    @property
    def records(self) -> int: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def display(self) -> str: ...

def mix(
    out: str,
    sources: list[tuple[str | None, str]],
    *,
    copy: bool = False,
    break_lock: bool = False,
    s3_endpoint: str | None = None,
    hf_token: str | None = None,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    retries: int | None = None,
) -> str: ...
def decode_image(
    data: bytes,
    mode: str | None = None,
    exif_transpose: bool = False,
    max_decode_bytes: int = ...,
) -> npt.NDArray[np.uint8]: ...
def record_rows(records: list[Record]) -> list[dict[str, Any]]:
    """The records as rows of `editshard._arrow.SCHEMA` (image bytes as memoryviews)."""
