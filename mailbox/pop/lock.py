"""One import per POP3 account at a time, across worker processes.

With ``REDIS_URL`` set (workers on several machines) the lock is a Redis lock
with a short lease that a thread of the holder renews while the import runs: a
worker killed mid-import (SIGKILL, a lost machine) frees the account within one
lease, so the next import is not held up for the length of a task. Without
Redis (the embedded single-machine mode) it is an ``flock`` on a file under
``DATA_DIR/locks``, which the kernel releases when the holding process dies. A
database row lock is not used: it would hold a transaction open for the whole
import.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


class ImportBusy(Exception):
    """Another import of the same account is running."""

    def __init__(self, account_id: int) -> None:
        super().__init__(f"an import of account {account_id} is already running")
        self.account_id = account_id


def lease_seconds() -> float:
    """How long the Redis lock lives without renewal (renewed every third)."""
    return float(getattr(settings, "WEBMAIL_IMPORT_LOCK_LEASE_SECONDS", 60))


@contextmanager
def account_lock(account_id: int) -> Iterator[None]:
    """Hold the import lock of one account for the block; ImportBusy if taken."""
    url = getattr(settings, "REDIS_URL", "")
    if url:
        with _redis_lock(url, account_id):
            yield
    else:
        with _file_lock(account_id):
            yield


@contextmanager
def _redis_lock(url: str, account_id: int) -> Iterator[None]:
    import redis
    from redis.exceptions import LockError, RedisError

    client = redis.Redis.from_url(url)
    lease = lease_seconds()
    lock = client.lock(f"webmail:pop:import:{account_id}", timeout=lease)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease / 3):
            try:
                lock.reacquire()
            except (LockError, RedisError):
                logger.warning(
                    "pop import lock of account %s: renewal failed", account_id
                )

    try:
        if not lock.acquire(blocking=False):
            raise ImportBusy(account_id)
        renewer = threading.Thread(target=renew, name="pop-lock-renew", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            try:
                lock.release()
            except LockError:
                logger.warning("pop import lock of account %s had expired", account_id)
    finally:
        client.close()


def _lock_dir() -> Path:
    path = Path(settings.DATA_DIR) / "locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _file_lock(account_id: int) -> Iterator[None]:
    path = _lock_dir() / f"pop-import-{account_id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ImportBusy(account_id) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
