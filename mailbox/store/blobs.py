"""Raw messages of the store, as blobs in Django's default storage.

A blob is written from a finished temporary file (the download streams there
first, in ``temp_dir()``), and FileSystemStorage renames that file into place,
so a crash leaves either no blob or a whole one. An orphan blob (written, then its
row never committed) is harmless: it holds no quota and no row points at it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.utils import timezone
from django.utils._os import safe_makedirs

CHUNK = 1024 * 1024


class _Finished(File):
    """A finished temporary file: FileSystemStorage renames it into place."""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        super().__init__(handle, name=path.name)
        self._path = path

    def temporary_file_path(self) -> str:
        return str(self._path)


def temp_dir() -> Path:
    """Where downloads stream to: beside the blobs, so the final move is a rename."""
    path = Path(settings.MEDIA_ROOT) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def blob_save(path: Path | str, *, user_id: int) -> str:
    """Store the finished file at ``path`` as a new blob (moved, not copied).

    With a FileSystemStorage the file is hard-linked straight to its place
    (names are unique: 128 random bits, and a link never replaces an existing
    file), given the storage's ``file_permissions_mode``
    (``FILE_UPLOAD_PERMISSIONS``, 0o644 by default, as ``save`` would), and
    the temporary name is removed: no existence checks, no
    ``get_available_name``. Any other storage (or a file system without hard
    links) goes through ``default_storage.save``.
    """
    now = timezone.now()
    name = f"store/{user_id}/{now:%Y/%m}/{secrets.token_hex(16)}.eml"
    if isinstance(default_storage, FileSystemStorage):
        try:
            return _move_into_place(default_storage, str(path), name)
        except (FileExistsError, _NoLinks):
            name = f"store/{user_id}/{now:%Y/%m}/{secrets.token_hex(16)}.eml"
    with open(path, "rb") as handle:
        return default_storage.save(name, _Finished(handle, Path(path)))


class _NoLinks(Exception):
    """The file system refuses hard links: use the storage's own save."""


# Directories known to exist (cleared when one turns out to be gone).
_made_dirs: set[str] = set()


def _move_into_place(storage: FileSystemStorage, source: str, name: str) -> str:
    target = storage.path(name)
    folder = os.path.dirname(target)
    mode = storage.file_permissions_mode
    if mode is not None:
        os.chmod(source, mode)
    for _attempt in range(2):
        if folder not in _made_dirs:
            _make_dirs(storage, folder)
            _made_dirs.add(folder)
        try:
            os.link(source, target)
        except FileNotFoundError:
            if not os.path.exists(source):
                raise
            _made_dirs.discard(folder)  # removed since: make it again
            continue
        except FileExistsError:
            raise
        except OSError as exc:
            raise _NoLinks from exc
        break
    else:
        raise FileNotFoundError(target)
    os.unlink(source)
    return name


def _make_dirs(storage: FileSystemStorage, folder: str) -> None:
    """Create ``folder`` as FileSystemStorage._save does."""
    mode = storage.directory_permissions_mode
    if mode is None:
        os.makedirs(folder, exist_ok=True)
    else:
        safe_makedirs(folder, mode, exist_ok=True)


def blob_open(name: str) -> BinaryIO:
    return default_storage.open(name, "rb")


def blob_chunks(name: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
    """The blob's bytes, a chunk at a time (never the whole message in memory)."""
    with blob_open(name) as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def blob_read(name: str) -> bytes:
    with blob_open(name) as handle:
        return handle.read()


def blob_delete(name: str) -> None:
    default_storage.delete(name)


def blobs_make_durable(names: Sequence[str]) -> None:
    """Flush the blobs ``names``, and their names, to disk before a row names them.

    For the importer, which writes a batch of blobs without an fsync each and
    calls this once before the batch's commit: then a committed row never
    points at a blob that a power cut could empty or lose. Each file is
    fsynced, then each directory once (the renames into place). A storage
    without local paths is left to make its own writes durable.

    Where the OS has ``sync()`` (which on Linux returns only once everything
    is on disk), one ``os.sync()`` does all of that: measured here it costs
    about 1 ms for a batch of 100 small files, against ~0.4 ms per file for
    fsync. On a host with much other dirty data it flushes that too.
    """
    try:
        paths = [Path(default_storage.path(name)) for name in names]
    except NotImplementedError:
        return
    if not paths:
        return
    if hasattr(os, "sync"):
        os.sync()
        return
    folders: set[Path] = set()
    for path in paths:
        _fsync(path, os.O_RDONLY)
        folders.add(path.parent)
    for folder in folders:
        _fsync(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
