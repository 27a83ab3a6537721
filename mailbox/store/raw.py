"""A stored message's raw bytes, wherever they are: in the database or a blob.

A message of up to ``inline_max_bytes()`` (``WEBMAIL_STORE_INLINE_MAX_BYTES``,
64 KiB by default) is kept in the database, in an ``InlineRaw`` row added in
the same transaction as its message row, ledger row and usage: no file to
create, make durable, name or delete, and a crash before the commit leaves
nothing behind. Its ``StoredMessage.blob`` is empty. A larger message is a blob
file (``blobs``), exactly as before; so are messages stored before inlining
existed, whatever their size. Readers go through this module and never care
which.

Why a table of its own and not a column of ``StoredMessage``: lists, counts,
quota sums and the ORM's delete collector load message rows, and would then
carry up to 64 KiB each (50 rows a page); on SQLite a row's bytes also sit in
the table's pages, so every scan of the message table would read them. Apart,
the bytes are read only when a message is opened, and an import batch adds
them with one more ``executemany``.

Why 64 KiB, measured on SQLite (docs/benchmarks.md, POP3 import): a ~4 KB
message costs ~0.24 ms in all to import inline against ~0.63 ms as a file
(creating, writing, naming and syncing one file is most of it); at ~50 KB
0.90 ms against 1.29 ms; at ~120 KB 1.67 ms against 1.54 ms (the batch's
commit then writes megabytes to the database's log). The SQLite project's
own figures ("Internal Versus External BLOBs", 4 KiB pages) have blobs read
faster from the database up to about 50 KB and slower from about 100 KB. Past
the limit files win, and keep big messages out of memory (an inline message
is read whole) and out of database backups.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from django.conf import settings

from mailbox.store import blobs
from mailbox.store.models import InlineRaw, StoredMessage

# How many inline messages one query reads when many are scanned (search).
_READ_BATCH = 100


def inline_max_bytes() -> int:
    """The largest message kept in the database; 0 when none is."""
    return max(0, int(getattr(settings, "WEBMAIL_STORE_INLINE_MAX_BYTES", 0)))


def is_inline_size(size: int) -> bool:
    """Whether a message of ``size`` bytes is kept in the database."""
    limit = inline_max_bytes()
    return limit > 0 and size <= limit


class RawGone(FileNotFoundError):
    """A message row whose bytes are missing (neither inline nor a blob)."""

    def __init__(self, message_id: int) -> None:
        super().__init__(errno.ENOENT, "stored message without bytes", message_id)


def _inline(message_id: int) -> bytes:
    data = (
        InlineRaw.objects.filter(message_id=message_id)
        .values_list("data", flat=True)
        .first()
    )
    if data is None:
        raise RawGone(message_id)
    return bytes(data)  # a memoryview on PostgreSQL


def raw_read(message: StoredMessage) -> bytes:
    """The message's bytes; raises OSError when they cannot be read."""
    if message.blob:
        return blobs.blob_read(message.blob)
    return _inline(message.pk)


def raw_chunks(
    message: StoredMessage, chunk_size: int = blobs.CHUNK
) -> Iterator[bytes]:
    """The message's bytes a chunk at a time; a blob is never read whole.

    Raises OSError when they cannot be read, before the first chunk: the
    bytes are looked up here, not when iteration starts.
    """
    if message.blob:
        handle = blobs.blob_open(message.blob)
        return _file_chunks(handle, chunk_size)
    data = _inline(message.pk)
    return (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))


def _file_chunks(handle: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def raw_many(rows: Sequence[tuple[int, str]]) -> Iterator[tuple[int, bytes | None]]:
    """(id, bytes) for each (id, blob) of ``rows``, in order; None if unreadable.

    Inline ones are read ``_READ_BATCH`` at a time (one query each), so at
    most that many messages are in memory at once.
    """
    for start in range(0, len(rows), _READ_BATCH):
        chunk = rows[start : start + _READ_BATCH]
        wanted = [pk for pk, blob in chunk if not blob]
        inline = (
            dict(
                InlineRaw.objects.filter(message_id__in=wanted).values_list(
                    "message_id", "data"
                )
            )
            if wanted
            else {}
        )
        for pk, blob in chunk:
            if not blob:
                data = inline.pop(pk, None)
                yield pk, bytes(data) if data is not None else None
                continue
            try:
                yield pk, blobs.blob_read(blob)
            except OSError:
                yield pk, None
