"""Benchmark: the POP3 import through a real Celery worker, next to raw poplib.

    python bench/pop_import.py [--count N] [--size BYTES] [--profile N]
                               [--inline-max BYTES]

Starts a private Dovecot, Redis (the local one if it answers, database 13:
not the tests' 15, whose workers would take the task) and a Celery worker on
a temporary SQLite file database, seeds one POP3 mailbox with ``--count``
messages of about ``--size`` bytes, then measures in one run:

- raw: ``poplib.POP3`` on an already-open, logged-in connection doing UIDL and
  RETR of every message, keeping nothing (messages/s);
- ours: ``import_start`` inside ``transaction.atomic()`` and the worker's
  ``import_pop_account`` until the ``ImportJob`` is finished, with
  leave-on-server on (so both read the same mailbox); messages/s from the job's
  started_at/finished_at, and the wall time from queueing;
- the peak RSS (VmHWM) of the worker's pool child after the import.

Dovecot's indexes are warmed by one session (UIDL + LIST) before either is
timed. ``--profile N`` also runs ``importer.run`` in this process under cProfile
on a fresh mailbox of N messages and prints the top costs. ``--inline-max``
sets ``WEBMAIL_STORE_INLINE_MAX_BYTES`` for this run (0: every message a blob
file, as before small messages were kept in the database).

Ends with one line:
    pop_import: ratio=<ours/raw throughput> msgs_per_s=<ours> peak_rss_mb=<n>
"""

from __future__ import annotations

import argparse
import os
import poplib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_REDIS_DB = 13
sys.path.insert(0, str(ROOT))


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc, else ``ps --ppid``)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    if not found:
        out = subprocess.run(
            ["ps", "--ppid", str(pid), "-o", "pid="],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        found = [int(p) for p in out.split()]
    return sorted(set(found))


def vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def warm(host: str, port: int, username: str, password: str) -> None:
    """One session so Dovecot builds its index and sizes before timing."""
    client = poplib.POP3(host, port, timeout=60)
    client.user(username)
    client.pass_(password)
    client.uidl()
    client.list()
    client.quit()


def raw_throughput(host: str, port: int, username: str, password: str) -> tuple:
    """(messages, seconds, bytes) of UIDL + RETR of all, login excluded."""
    client = poplib.POP3(host, port, timeout=60)
    client.user(username)
    client.pass_(password)
    t0 = time.perf_counter()
    _, lines, _ = client.uidl()
    numbers = [int(line.split(None, 1)[0]) for line in lines]
    total = 0
    for number in numbers:
        _, body, octets = client.retr(number)
        total += octets
    elapsed = time.perf_counter() - t0
    client.quit()
    return len(numbers), elapsed, total


def main() -> None:  # noqa: PLR0915
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096, help="bytes per message")
    parser.add_argument(
        "--profile", type=int, default=0, help="cProfile importer.run on N messages"
    )
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument(
        "--inline-max",
        type=int,
        default=None,
        help="WEBMAIL_STORE_INLINE_MAX_BYTES for this run (default: the setting's)",
    )
    args = parser.parse_args()
    if args.inline_max is not None:
        # Read by the settings of this process and of the worker it starts.
        os.environ["WEBMAIL_STORE_INLINE_MAX_BYTES"] = str(args.inline_max)

    workdir = Path(tempfile.mkdtemp(prefix="bench-pop-"))
    try:
        run_bench(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_bench(args: argparse.Namespace, workdir: Path) -> None:  # noqa: PLR0915
    from tests.servers.redis import redis_url

    # Its own Redis database: test runs on the same machine start workers on
    # database 15, and any of them would take this run's task (and fail it).
    broker = redis_url().rsplit("/", 1)[0] + f"/{BENCH_REDIS_DB}"
    # A task left queued by an interrupted run would name this run's job 1
    # (the ids restart with each database): start from an empty queue.
    import redis

    redis.Redis.from_url(broker).flushdb()
    # Shared by this process and the worker (which inherits the environment):
    # database file, data dir (secrets, blobs under test-media, locks), Redis.
    os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings_test"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["WEBMAIL_DATA_DIR"] = str(workdir / "data")
    os.environ["REDIS_URL"] = broker
    (workdir / "data").mkdir()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.models import AccountKind, Security, User
    from accounts.servers import ServerSettings
    from accounts.services import AccountOptions, mail_account_create
    from mailbox.store.models import ImportJob
    from mailbox.tasks import import_start
    from tests.servers.celery_worker import database_url, running_worker
    from tests.servers.dovecot import Dovecot
    from webmail.celery import app

    settings.REDIS_URL = broker
    app.conf.task_always_eager = False
    app.conf.broker_url = broker
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench@example.org", "bench-password-1")

    with Dovecot() as dovecot:
        host, port = dovecot.host, dovecot.pop3_port

        def pop_account(count: int, label: str):  # noqa: ANN202
            mail_user = dovecot.new_user(quota_mb=None)
            started = time.monotonic()
            dovecot.generate(mail_user.username, count, size=args.size)
            print(
                f"seeded {count} messages of ~{args.size} B "
                f"in {time.monotonic() - started:.1f} s"
            )
            account = mail_account_create(
                user=user,
                kind=AccountKind.POP3,
                options=AccountOptions(
                    label=label, email=mail_user.email, leave_on_server=True
                ),
                server=ServerSettings(host, port, Security.NONE, mail_user.username),
                password=mail_user.password,
            )
            warm(host, port, mail_user.username, mail_user.password)
            return mail_user, account

        mail_user, account = pop_account(args.count, "bench pop")

        # 1. raw
        raw_n, raw_s, raw_bytes = raw_throughput(
            host, port, mail_user.username, mail_user.password
        )
        assert raw_n == args.count, (raw_n, args.count)
        raw_rate = raw_n / raw_s

        # 2. ours, through a real worker
        with running_worker(
            redis_url=broker,
            db_url=database_url(connection.settings_dict),
            extra_env={"WEBMAIL_DATA_DIR": str(workdir / "data")},
        ) as worker:
            assert worker.process is not None
            main_pid = worker.process.pid
            children = child_pids(main_pid)
            base_kb = {pid: vm_hwm_kb(pid) for pid in children}

            queued = time.perf_counter()
            with transaction.atomic():
                job_id = import_start(account=account, trigger=ImportJob.Trigger.MANUAL)
            deadline = queued + args.timeout
            job = ImportJob.objects.get(pk=job_id)
            while job.finished_at is None:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"import not done in {args.timeout} s: {job}")
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker exited; see {worker.log}")
                time.sleep(0.05)
                job = ImportJob.objects.get(pk=job_id)
            wall = time.perf_counter() - queued

            children = child_pids(main_pid) or children
            peak_kb = max(vm_hwm_kb(pid) for pid in children)
            main_kb = vm_hwm_kb(main_pid)

        if job.status != ImportJob.Status.DONE or job.imported != args.count:
            raise RuntimeError(
                f"import ended {job.status}: imported {job.imported}/{job.total}, "
                f"failed {job.failed}, error {job.error!r}"
            )
        job_s = (job.finished_at - job.started_at).total_seconds()
        ours_rate = job.imported / job_s
        queue_s = (job.started_at - job.created_at).total_seconds()
        peak_mb = peak_kb / 1024

        profile_out = ""
        if args.profile:
            profile_out = profile_in_process(pop_account, args.profile)

    ratio = ours_rate / raw_rate
    mb = raw_bytes / 1e6
    print()
    print(
        f"machine: nproc={os.cpu_count()}  messages={args.count}  {mb:.1f} MB  "
        f"inline up to {settings.WEBMAIL_STORE_INLINE_MAX_BYTES} B"
    )
    print(f"{'':28}{'seconds':>10}{'msgs/s':>10}{'MB/s':>10}")
    print(f"{'raw poplib UIDL+RETR':28}{raw_s:10.2f}{raw_rate:10.1f}{mb / raw_s:10.2f}")
    print(
        f"{'ours (job started->done)':28}{job_s:10.2f}{ours_rate:10.1f}"
        f"{job.bytes / 1e6 / job_s:10.2f}"
    )
    print(f"{'ours (wall from queueing)':28}{wall:10.2f}{job.imported / wall:10.1f}")
    print(f"queue latency (created->started): {queue_s * 1000:.0f} ms")
    print(
        f"worker VmHWM: pool child {peak_mb:.1f} MB "
        f"(before the import {max(base_kb.values(), default=0) / 1024:.1f} MB), "
        f"main {main_kb / 1024:.1f} MB"
    )
    if profile_out:
        print()
        print(profile_out)
    print(
        f"pop_import: ratio={ratio:.2f} msgs_per_s={ours_rate:.1f} "
        f"peak_rss_mb={peak_mb:.0f}"
    )


def profile_in_process(pop_account, count: int) -> str:  # noqa: ANN001
    """cProfile of ``importer.run`` in this process on a fresh mailbox."""
    import cProfile
    import io
    import pstats

    from mailbox.pop import importer

    _, account = pop_account(count, "bench pop profile")
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    job = importer.run(account_id=account.pk, trigger="manual")
    profiler.disable()
    elapsed = time.perf_counter() - t0
    out = io.StringIO()
    out.write(
        f"in-process importer.run: {job.imported} messages in {elapsed:.2f} s "
        f"({job.imported / elapsed:.1f} msgs/s; profiled)\n"
    )
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue()


if __name__ == "__main__":
    main()
