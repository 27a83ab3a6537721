"""Raw messages of the store, as blobs in Django's default storage.

Messages larger than ``WEBMAIL_STORE_INLINE_MAX_BYTES`` only (and those stored
before small ones went into the database); read any message through
``raw.py``, which knows where its bytes are.

A blob is written from a finished temporary file (``blob_save``: the download
streams there first, in ``temp_dir()``), and FileSystemStorage links that file
into place, so a crash leaves either no blob or a whole one. The POP importer
writes straight to a new blob's path instead (``blob_reserve``), which saves
three file-system operations a message; a crash there can leave a partial
file under a name no row holds. An orphan blob (written, then its row never
committed) is harmless: it holds no quota and no row points at it.
``DurableBatch`` makes a batch of blobs durable before the commit that names
them.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
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


def blob_reserve(*, user_id: int) -> tuple[str, Path] | None:
    """A new blob name and the local path to write it at, or None.

    For a FileSystemStorage: the caller writes the file at the path itself
    (its directories exist), then calls ``blob_written``; that saves the
    temporary file, the link and the unlink of ``blob_save`` (each a journal
    update on ext4). A crash while writing leaves a partial file that no row
    names: an orphan like any other, holding no quota. Names are 128 random
    bits, so the path is new. Any other storage: None (write to
    ``temp_dir()`` and use ``blob_save``).
    """
    storage = default_storage
    if not isinstance(storage, FileSystemStorage):
        return None
    prefix = f"store/{user_id}/{timezone.now():%Y/%m}/"
    key = (storage.location, prefix)
    folder = _folders.get(key)
    if folder is None:
        folder = _folders[key] = os.path.dirname(storage.path(prefix + "x"))
    if not os.path.isdir(folder):
        _make_dirs(storage, folder)
        _made_dirs.add(folder)
        _durable_dirs.discard(folder)  # perhaps new: its parents need a sync
    token = secrets.token_hex(16)
    return f"{prefix}{token}.eml", Path(folder, f"{token}.eml")


# (storage location, name prefix) -> the prefix's local folder.
_folders: dict[tuple[str, str], str] = {}


def blob_written(path: Path) -> None:
    """Finish a blob written at a ``blob_reserve`` path: give it the storage's
    ``file_permissions_mode`` (``FILE_UPLOAD_PERMISSIONS``), as ``save`` would."""
    mode = default_storage.file_permissions_mode
    if mode is not None and os.stat(path).st_mode & 0o7777 != mode:
        os.chmod(path, mode)


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
            _durable_dirs.discard(folder)  # perhaps new: its parents need a sync
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


class DurableBatch:
    """Makes a batch of blobs durable, with their names, before a row names them.

    ``add(name)`` notes a finished blob; ``wait()`` returns once the data of
    every blob added so far, its directory entry and any directory made for
    it are on disk, and raises if the system reports a write error. The
    importer calls ``wait()`` once per batch, before the commit that names
    the batch's blobs: a committed row never points at a blob that a power
    cut could empty or lose.

    How: on Linux, one ``syncfs(2)`` of the file system that holds the blobs
    (and reports writeback errors since Linux 5.8). Measured here (ext4, 100
    blobs of 4 KB): ``syncfs`` 4-13 ms a batch, one ``fsync`` per blob and
    directory 50-120 ms on a quiet machine and 0.5-0.8 s while other jobs
    write (ext4 has one journal per file system: every ``fsync`` of a new
    file commits it, so 100 fsyncs are 100 commits, while ``syncfs`` is
    one), and the fsyncs in a background thread cost more CPU than the
    import saved. Unlike ``os.sync()`` it leaves other file systems alone:
    give the media its own volume and nothing else is flushed. Elsewhere,
    each blob is fsynced (their writes started together first), then each
    directory. A storage without local paths is left to make its own writes
    durable. Use as a context manager (``close`` is a no-op kept for that).
    """

    def __init__(self) -> None:
        self._paths: list[str] = []
        self._folders: set[str] = set()

    def __enter__(self) -> DurableBatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, name: str, path: Path | None = None) -> None:
        """Note the finished blob ``name`` (at ``path``, from ``blob_reserve``,
        when known); ``wait`` makes it durable."""
        if path is None:
            try:
                path = Path(default_storage.path(name))
            except NotImplementedError:
                return
        self._paths.append(str(path))
        self._folders.add(os.path.dirname(path))

    def wait(self) -> None:
        """Return once every blob added so far is durable; raise OSError if not."""
        if not self._paths:
            return
        folders = sorted(self._folders)
        if _syncfs is not None:
            devices: set[int] = set()
            for folder in folders:
                fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
                try:
                    device = os.fstat(fd).st_dev
                    if device not in devices:
                        devices.add(device)
                        if _syncfs(fd) != 0:
                            error = ctypes.get_errno()
                            raise OSError(error, os.strerror(error), folder)
                finally:
                    os.close(fd)
            for folder in folders:
                _durable_dirs.add(folder)
        else:
            _fsync_files(self._paths)
            for folder in folders:
                _fsync_dirs(folder)
        self._paths.clear()
        self._folders.clear()

    def close(self) -> None:
        """Nothing to release (the batch holds no open files)."""


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_syncfs = _load_syncfs()


def _fsync_files(paths: Sequence[str]) -> None:
    """fsync each file, after asking the kernel to start all their writes."""
    fadvise = getattr(os, "posix_fadvise", None)
    fds: list[int] = []
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            fds.append(fd)
            if fadvise is not None:
                fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)


# Directories whose own entry (in their parent) is known to be durable.
_durable_dirs: set[str] = set()


def _fsync_dirs(folder: str) -> None:
    """fsync ``folder``, and its parents up to MEDIA_ROOT the first time."""
    _fsync(Path(folder), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    if folder in _durable_dirs:
        return
    # A directory made for the blob is only findable once its parent's entry
    # for it is durable too (and so on up).
    root = os.path.abspath(settings.MEDIA_ROOT)
    child = os.path.abspath(folder)
    while child != root and os.path.commonpath([root, child]) == root:
        child = os.path.dirname(child)
        _fsync(Path(child), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    _durable_dirs.add(folder)


def blobs_make_durable(names: Sequence[str]) -> None:
    """Flush the blobs ``names``, and their names, to disk before a row names them.

    ``DurableBatch`` for blobs already written (see there for how).
    """
    with DurableBatch() as batch:
        for name in names:
            batch.add(name)
        batch.wait()


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
