"""editshard: read and write sharded, verified text-guided image-editing datasets.

>>> import editshard
>>> ds = editshard.open("s3://bucket/pico")          # reads manifest.json only
>>> rec = ds[0]                                      # one ranged read
>>> rec.turns[0].instruction, rec.source.to_numpy().shape
>>> with editshard.Writer("s3://bucket/mine") as w:  # manifest published on a clean exit
...     w.write(editshard.Record("a/1", "sft", src, [editshard.Turn("...", output=out)]))

PyTorch datasets are in :mod:`editshard.torch`.
"""

from __future__ import annotations

from . import _native
from ._dataset import Dataset, Filter, ImagesSpec, Verify, open
from ._errors import (
    CorruptionError,
    DecodeError,
    Error,
    InvalidError,
    NotFoundError,
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    UnsupportedError,
)
from ._writer import Writer, mix, write

Record = _native.Record
Turn = _native.Turn
Image = _native.Image
ImageData = _native.ImageData
decode_image = _native.decode_image
#: The most bytes of decoded pixels one image may take unless a call says otherwise (1 GiB,
#: the limit of ``editshard verify --decode``): ``to_numpy``, ``decode_image`` and
#: ``editshard.torch.Pipeline`` refuse larger images before decoding them.
MAX_DECODE_BYTES: int = _native.MAX_DECODE_BYTES
__version__: str = _native.__version__

__all__ = [
    "MAX_DECODE_BYTES",
    "CorruptionError",
    "Dataset",
    "DecodeError",
    "Error",
    "Filter",
    "Image",
    "ImageData",
    "ImagesSpec",
    "InvalidError",
    "NotFoundError",
    "ObjectNotFoundError",
    "PermissionDeniedError",
    "Record",
    "StorageError",
    "Turn",
    "UnsupportedError",
    "Verify",
    "Writer",
    "decode_image",
    "mix",
    "open",
    "write",
]
