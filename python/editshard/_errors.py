"""Exceptions raised by editshard.

Every error carries where it happened, as far as the reader knows: ``shard`` (file, URL or
object key), ``record`` (index of the record), ``id`` (record id), ``offset`` (byte offset in
the shard), and ``kind`` (``"io"``, ``"remote"``, ``"malformed"``, ``"checksum"``,
``"truncated"``, ``"unsupported"``, ``"limit"``, ``"invalid"``, ``"rejected"``, ``"bug"``, or
``"not-found"`` for a missing record id). ``http_status`` is the HTTP status of a failed remote
request when the server sent one, and ``hint`` says what to do about the error.
"""

from __future__ import annotations

from typing import Any


class Error(Exception):
    """Base class of every editshard error."""

    shard: str | None
    record: int | None
    id: str | None
    offset: int | None
    kind: str
    http_status: int | None
    hint: str | None

    def __init__(
        self,
        message: str,
        *,
        shard: str | None = None,
        record: int | None = None,
        id: str | None = None,
        offset: int | None = None,
        kind: str = "invalid",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.shard = shard
        self.record = record
        self.id = id
        self.offset = offset
        self.kind = kind
        self.http_status = None
        self.hint = None

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the location attributes when the error is pickled (e.g. across processes).
        location = {
            "shard": self.shard,
            "record": self.record,
            "id": self.id,
            "offset": self.offset,
            "kind": self.kind,
            "http_status": self.http_status,
            "hint": self.hint,
        }
        return (_rebuild, (type(self), self.message, location))


def _rebuild(cls: type[Error], message: str, location: dict[str, Any]) -> Error:
    err = cls(message)
    for name, value in location.items():
        setattr(err, name, value)
    return err


class CorruptionError(Error):
    """The stored bytes are damaged: a CRC mismatch, a malformed or truncated structure."""


class NotFoundError(Error, KeyError):
    """Something asked for does not exist: a record id (also a ``KeyError``) or an object."""


class StorageError(Error):
    """The storage failed: I/O error, HTTP or S3 failure after retries, timeout."""


class ObjectNotFoundError(StorageError, NotFoundError):
    """The file or object does not exist (e.g. no ``manifest.json`` at the location)."""


class PermissionDeniedError(StorageError):
    """Access was refused: wrong or missing credentials, or file permissions."""


class UnsupportedError(Error):
    """The data uses a newer format version or feature than this reader knows."""


class InvalidError(Error, ValueError):
    """A call or its arguments were invalid."""


class DecodeError(Error, ValueError):
    """An image does not decode (``kind="rejected"``), or its decoded pixels would take more
    than the decode limit (``kind="limit"``). ``id`` names the record when one is known."""


__all__ = [
    "CorruptionError",
    "DecodeError",
    "Error",
    "InvalidError",
    "NotFoundError",
    "ObjectNotFoundError",
    "PermissionDeniedError",
    "StorageError",
    "UnsupportedError",
]
