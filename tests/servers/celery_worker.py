"""A real Celery worker process for the tests, on the test Redis and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def database_url(settings_dict: dict) -> str:
    """The URL of the database the tests use right now (the test database)."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class Worker:
    """``celery -A webmail.celery worker`` as a child process; kill it at will."""

    def __init__(self, *, redis_url: str, db_url: str, extra_env: dict[str, str]):
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="webmail.settings_test",
            REDIS_URL=redis_url,
            DATABASE_URL=db_url,
            WEBMAIL_TEST_LIVE_CELERY="1",
            PYTHONUNBUFFERED="1",
            **extra_env,
        )
        self.log = ROOT / "test-output" / f"celery-worker-{os.getpid()}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "webmail.celery",
                "worker",
                "--concurrency=1",
                "--pool=prefork",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited; see {self.log}")
            if b"ready." in self.log.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready in {timeout} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool child)."""
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


@contextmanager
def running_worker(**kwargs: object) -> Iterator[Worker]:
    worker = Worker(**kwargs)  # type: ignore[arg-type]
    worker.log.unlink(missing_ok=True)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
