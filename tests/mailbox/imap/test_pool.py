"""The per-process IMAP connection pool, against the real Dovecot and Redis.

Logins are counted in Dovecot's own log ("Login: user=<...>"), never by mocking.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from accounts.models import Security
from accounts.servers import ServerSettings
from accounts.services import (
    AccountOptions,
    mail_account_set_password,
    mail_account_update,
)
from mailbox.errors import Problem, ServerProblem
from mailbox.imap import pool as imap_pool
from mailbox.imap.pool import ConnectionPool, PoolBusy, slots_in_use

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def logins(dovecot, username: str, *, at_least: int = 0) -> int:
    """Successful IMAP logins of ``username`` in Dovecot's log.

    Dovecot writes its log through a separate process, so wait a moment for
    ``at_least`` lines, then a little more for any extra one to show.
    """
    needle = f"Login: user=<{username}>"
    deadline = time.monotonic() + 3
    while dovecot.log_text().count(needle) < at_least:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    time.sleep(0.2)
    return dovecot.log_text().count(needle)


def logouts(dovecot, username: str) -> int:
    return sum(
        1
        for line in dovecot.log_text().splitlines()
        if f"imap({username})" in line and "Logged out" in line
    )


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def inbox_count(client) -> int:
    return client.select_folder("INBOX", readonly=True)[b"EXISTS"]


@pytest.fixture
def pool(settings, redis_url, trust_test_ca) -> Iterator[ConnectionPool]:
    """A pool of its own, with the slots in the test Redis."""
    settings.REDIS_URL = redis_url
    settings.WEBMAIL_IMAP_SLOT_WAIT_SECONDS = 0.5
    connections = ConnectionPool()
    yield connections
    connections.close()


def test_second_use_reuses_the_login(pool, imap_account, dovecot, mail_user):
    """Two requests in a row share one login, through both doors of the pool."""
    dovecot.generate(mail_user.username, 3)
    with pool.connection(imap_account) as client:
        first = client
        assert inbox_count(client) == 3
    with pool.connection(imap_account) as client:
        assert client is first
        assert inbox_count(client) == 3
    assert pool.run(imap_account, inbox_count) == 3
    assert pool.run(imap_account, lambda client: client) is first
    assert logins(dovecot, mail_user.username, at_least=1) == 1
    assert slots_in_use(imap_account) == 1
    assert pool.stats() == {"live": 1, "idle": 1}


def test_idle_connection_is_logged_out_after_the_idle_timeout(
    pool, settings, imap_account, dovecot, mail_user
):
    """An unused connection is logged out and its slot freed; the next use logs in."""
    settings.WEBMAIL_IMAP_POOL_IDLE_SECONDS = 0.6
    with pool.connection(imap_account) as client:
        first = client
    assert pool.stats()["idle"] == 1
    assert wait_for(lambda: pool.stats()["live"] == 0)
    assert slots_in_use(imap_account) == 0
    assert wait_for(lambda: logouts(dovecot, mail_user.username) == 1)
    with pool.connection(imap_account) as client:
        assert client is not first
        inbox_count(client)
    assert logins(dovecot, mail_user.username, at_least=2) == 2


def test_connection_killed_by_the_server_is_replaced_in_run(
    pool, settings, imap_account, dovecot, mail_user
):
    """A connection dropped by a server restart fails the operation once; ``run``
    repeats it on a fresh login and returns its result."""
    settings.WEBMAIL_IMAP_POOL_CHECK_SECONDS = 3600  # no NOOP: the call itself fails
    dovecot.generate(mail_user.username, 2)
    first = pool.run(imap_account, lambda client: client)
    dovecot.restart()
    calls = []

    def count(client) -> int:
        calls.append(client)
        return inbox_count(client)

    assert pool.run(imap_account, count) == 2
    assert len(calls) == 2
    assert calls[0] is first
    assert calls[1] is not first
    assert logins(dovecot, mail_user.username, at_least=2) == 2
    assert slots_in_use(imap_account) == 1


def test_connection_killed_by_the_server_is_replaced_before_the_block(
    pool, settings, imap_account, dovecot, mail_user
):
    """After an idle moment, the NOOP check finds the dead connection and the
    block gets a fresh login."""
    settings.WEBMAIL_IMAP_POOL_CHECK_SECONDS = 0
    with pool.connection(imap_account) as client:
        first = client
    dovecot.restart()
    with pool.connection(imap_account) as client:
        assert client is not first
        assert inbox_count(client) == 0
    assert slots_in_use(imap_account) == 1


def test_operation_that_opts_out_of_the_retry_runs_once(
    pool, settings, imap_account, dovecot, mail_user
):
    """With ``retry=False`` a dead connection is reported, not worked around."""
    settings.WEBMAIL_IMAP_POOL_CHECK_SECONDS = 3600
    pool.run(imap_account, inbox_count)
    dovecot.restart()
    calls = []

    def append(client) -> None:
        calls.append(client)
        client.append("INBOX", b"Subject: once\r\n\r\nbody\r\n")

    with pytest.raises(ServerProblem) as excinfo:
        pool.run(imap_account, append, retry=False)
    assert excinfo.value.problem == Problem.NETWORK
    assert len(calls) == 1
    assert dovecot.count(mail_user.username) == 0
    assert slots_in_use(imap_account) == 0
    assert pool.stats()["live"] == 0


def test_changed_password_or_settings_gives_a_new_login(
    pool, imap_account, dovecot, mail_user
):
    """An edited account never reuses the old login, which is logged out."""
    with pool.connection(imap_account) as client:
        first = client
    mail_account_set_password(account=imap_account, password=mail_user.password)
    with pool.connection(imap_account) as client:
        second = client
        assert second is not first
    mail_account_update(
        account=imap_account,
        options=AccountOptions(label="Work", email=mail_user.email),
        server=ServerSettings(
            dovecot.host, dovecot.imaps_port, Security.SSL, mail_user.username
        ),
    )
    with pool.connection(imap_account) as client:
        assert client is not second
        inbox_count(client)
    assert logins(dovecot, mail_user.username, at_least=3) == 3
    assert wait_for(lambda: logouts(dovecot, mail_user.username) == 2)
    assert pool.stats() == {"live": 1, "idle": 1}
    assert slots_in_use(imap_account) == 1


@pytest.mark.parametrize("mode", ["redis", "embedded"])
def test_at_most_three_connections_across_threads(
    pool, settings, imap_account, dovecot, mail_user, mode
):
    """Three threads hold three logins; a fourth waits, then gets PoolBusy, and
    succeeds once a slot is free again. Without Redis the limit is in-process."""
    if mode == "embedded":
        settings.REDIS_URL = ""
    holding = threading.Barrier(4)
    release = threading.Event()
    clients = []
    errors = []

    def hold() -> None:
        try:
            with pool.connection(imap_account) as client:
                clients.append(client)
                holding.wait(timeout=10)
                release.wait(timeout=10)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
            holding.abort()

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        holding.wait(timeout=10)
        assert len({id(client) for client in clients}) == 3
        assert slots_in_use(imap_account) == 3
        started = time.monotonic()
        with pytest.raises(PoolBusy) as excinfo, pool.connection(imap_account):
            pass
        assert time.monotonic() - started >= 0.5
        assert "at most 3" in excinfo.value.message
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=10)
    assert errors == []
    with pool.connection(imap_account) as client:
        inbox_count(client)
    assert logins(dovecot, mail_user.username, at_least=3) <= 4
    # One idle connection per account and process is kept; the rest logged out.
    assert pool.stats() == {"live": 1, "idle": 1}
    assert slots_in_use(imap_account) == 1


HOLDER = textwrap.dedent(
    """
    import os, sys, time
    import django
    django.setup()
    from accounts.servers import ServerSettings
    from mailbox.imap.pool import RedisSlots, slot_key

    url, host, port, security, username = sys.argv[1:6]
    key = slot_key(ServerSettings(host, int(port), security, username))
    slots = RedisSlots(url)
    lease = 1.5
    tokens = [slots.acquire(key, limit=3, lease=lease, wait=5) for _ in range(3)]
    print("holding", flush=True)
    parent = os.getppid()
    while os.getppid() == parent:  # a live process keeps renewing its leases
        slots.renew([(key, token) for token in tokens], lease)
        time.sleep(0.3)
    """
)

IDLE_HOLDER = textwrap.dedent(
    """
    import sys, time
    import django
    django.setup()
    from django.conf import settings
    from accounts.models import MailAccount
    from mailbox.imap.pool import ConnectionPool

    url, host, port, security, username, password, ca = sys.argv[1:8]
    settings.REDIS_URL = url
    settings.WEBMAIL_EXTRA_CA_FILE = ca
    account = MailAccount(
        pk=1, host=host, port=int(port), security=security, username=username
    )
    account.set_password(password)
    pool = ConnectionPool()
    with pool.connection(account) as client:
        client.noop()
    print("idle", flush=True)
    deadline = time.monotonic() + 30
    while pool.stats()["live"] and time.monotonic() < deadline:
        time.sleep(0.05)
    print("gave up the slot", flush=True)
    """
)


def spawn(script: str, *args: object) -> subprocess.Popen[str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="webmail.settings_test")
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_at_most_three_connections_across_processes_and_crashed_holder_expires(
    pool, settings, redis_url, imap_account, dovecot, mail_user, processes
):
    """Slots held by another process count against the limit: the fourth acquire
    here waits and gets PoolBusy. When that process is killed, its slots expire
    with their lease and the next acquire succeeds."""
    settings.WEBMAIL_IMAP_SLOT_LEASE_SECONDS = 1.5
    holder = spawn(
        HOLDER,
        redis_url,
        dovecot.host,
        imap_account.port,
        imap_account.security,
        imap_account.username,
    )
    processes.append(holder)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    assert slots_in_use(imap_account) == 3

    started = time.monotonic()
    with pytest.raises(PoolBusy), pool.connection(imap_account):
        pass
    assert time.monotonic() - started >= 0.5
    assert pool.stats()["live"] == 0
    time.sleep(2)  # longer than the lease: the live holder renews it
    assert slots_in_use(imap_account) == 3

    holder.kill()  # SIGKILL: no cleanup of any kind
    holder.wait(timeout=10)
    settings.WEBMAIL_IMAP_SLOT_WAIT_SECONDS = 5
    started = time.monotonic()
    with pool.connection(imap_account) as client:
        inbox_count(client)
    assert time.monotonic() - started < 3
    assert slots_in_use(imap_account) == 1


def test_idle_connection_in_another_process_gives_way_to_a_waiter(
    pool, settings, redis_url, imap_account, dovecot, mail_user, processes
):
    """An idle pooled login elsewhere holds a slot only until someone waits for
    it: with two slots busy here, the third acquire gets the other process's."""
    # Generous: on a loaded machine the other process may be slow to react.
    settings.WEBMAIL_IMAP_SLOT_WAIT_SECONDS = 20
    other = spawn(
        IDLE_HOLDER,
        redis_url,
        dovecot.host,
        imap_account.port,
        imap_account.security,
        imap_account.username,
        mail_user.password,
        dovecot.ca_file,
    )
    processes.append(other)
    assert other.stdout is not None
    assert other.stdout.readline().strip() == "idle"
    assert slots_in_use(imap_account) == 1

    with pool.connection(imap_account), pool.connection(imap_account):
        assert slots_in_use(imap_account) == 3
        started = time.monotonic()
        with pool.connection(imap_account) as client:
            inbox_count(client)
        assert time.monotonic() - started < 19  # before the wait gives up
        assert other.stdout.readline().strip() == "gave up the slot"


def test_wrong_password_raises_auth_and_leaves_no_slot_taken(
    pool, imap_account, dovecot
):
    """A refused login is a ServerProblem(AUTH), and its slot is given back."""
    imap_account.set_password("not the password")
    for _ in range(4):  # more attempts than slots: none leaks
        with pytest.raises(ServerProblem) as excinfo, pool.connection(imap_account):
            pass
        assert excinfo.value.problem == Problem.AUTH
    assert slots_in_use(imap_account) == 0
    assert pool.stats()["live"] == 0


def test_module_level_pool_is_shared_by_callers(
    settings, redis_url, trust_test_ca, imap_account, dovecot, mail_user
):
    """``connection`` and ``run`` of the module share this process's pool."""
    settings.REDIS_URL = redis_url
    try:
        with imap_pool.connection(imap_account) as client:
            first = client
        assert imap_pool.run(imap_account, lambda client: client) is first
    finally:
        imap_pool.close_all()
    assert slots_in_use(imap_account) == 0
    assert logins(dovecot, mail_user.username, at_least=1) == 1


def test_mail_stays_readable_when_redis_is_down(
    settings, trust_test_ca, imap_account, dovecot, mail_user
):
    """Without Redis the limit is kept per process, and mail is still read."""
    from tests.servers.ports import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    dovecot.generate(mail_user.username, 2)
    connections = ConnectionPool()
    try:
        assert connections.run(imap_account, inbox_count) == 2
        assert connections.run(imap_account, inbox_count) == 2
        assert logins(dovecot, mail_user.username, at_least=1) == 1
    finally:
        connections.close()
