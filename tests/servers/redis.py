"""A Redis for tests: a private redis-server per test run.

Private, so that two test runs on one machine (or a leftover worker of an
earlier one) never take each other's Celery tasks, locks or connection slots.
``WEBMAIL_TEST_REDIS_URL`` points the tests at another Redis instead.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from . import die_with_parent
from .ports import HOST, free_port

TEST_DB = 15  # never db 0: a developer's local Redis may hold real data there
APT_PACKAGE = "redis-server"

_lock = threading.Lock()
_url: str | None = None
_proc: subprocess.Popen[bytes] | None = None
_tmpdir: Path | None = None


def _ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop() -> None:
    global _proc, _url, _tmpdir
    proc, _proc = _proc, None
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if _tmpdir is not None:
        shutil.rmtree(_tmpdir, ignore_errors=True)
        _tmpdir = None
    _url = None


def _start() -> int:
    global _proc, _tmpdir
    binary = shutil.which("redis-server") or shutil.which(
        "redis-server", path="/usr/sbin:/usr/local/bin:/usr/local/sbin"
    )
    if binary is None:
        raise RuntimeError(
            "No Redis answers on 127.0.0.1:6379 and redis-server is not installed: "
            f"`apt-get install {APT_PACKAGE}`."
        )
    _tmpdir = Path(tempfile.mkdtemp(prefix="redis-"))
    port = free_port()
    _proc = subprocess.Popen(
        [
            binary,
            "--bind",
            HOST,
            "--port",
            str(port),
            "--dir",
            str(_tmpdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(_tmpdir / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C goes to the test run, which stops us
        preexec_fn=die_with_parent(),
    )
    atexit.register(_stop)
    deadline = time.monotonic() + 10
    while not _ping(port):
        if _proc.poll() is not None or time.monotonic() > deadline:
            log = _tmpdir / "redis.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            _stop()
            raise RuntimeError(f"redis-server did not start:\n{text[-2000:]}")
        time.sleep(0.01)
    return port


def redis_url() -> str:
    """``redis://127.0.0.1:PORT/15`` of a private Redis that answers PING.

    A ``redis-server`` of this test run on a free port (no persistence, stopped
    at exit), or ``WEBMAIL_TEST_REDIS_URL``. Database 15, so that even a shared
    Redis given that way keeps a developer's data in database 0 untouched.
    """
    global _url
    with _lock:
        if _url is not None and (_proc is None or _proc.poll() is None):
            return _url
        given = os.environ.get("WEBMAIL_TEST_REDIS_URL")
        _url = given or f"redis://{HOST}:{_start()}/{TEST_DB}"
        return _url


def stop() -> None:
    """Stop the private redis-server, if this process started one."""
    with _lock, contextlib.suppress(Exception):
        _stop()
