"""Logged-in IMAP connections kept per worker process and reused across requests.

A login is the expensive part of an IMAP request (Dovecot rescans a large folder
on the first body fetch of every new session), so each process keeps one logged-in
connection per account and hands it to the next request::

    with pool.connection(account) as client:
        client.select_folder("INBOX", readonly=True)
        ...

    uids = pool.run(account, lambda client: client.search(["ALL"]))
    pool.run(account, append_draft, retry=False)   # not idempotent: no second try

- Connections are keyed by account id plus a fingerprint of the server settings
  and the encrypted password, so an edited account never reuses an old login.
- A connection idle for longer than ``WEBMAIL_IMAP_POOL_CHECK_SECONDS`` gets a
  NOOP before reuse; one idle for ``WEBMAIL_IMAP_POOL_IDLE_SECONDS`` is logged out.
- ``run()`` repeats the operation once on a fresh login when the connection turns
  out to be dead (BYE, abort, timeout, broken pipe, any ``OSError``); pass
  ``retry=False`` for operations that must not run twice. ``connection()`` checks
  the connection before handing it out but cannot repeat the caller's block: a
  connection lost inside it is dropped and reported as ``ServerProblem``.
- At most ``WEBMAIL_IMAP_MAX_CONNECTIONS`` connections per remote account (host +
  user name) across all processes: a counting semaphore in Redis (``REDIS_URL``)
  whose slots are leases that expire unless renewed, so a killed process frees
  its slots; in-process when ``REDIS_URL`` is empty (embedded mode, one process).
  An idle connection holds its slot (the server counts it too) but gives it up
  as soon as another process waits for one.

The selected folder is left as the previous user of a connection left it: callers
select the folder they need.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from django.conf import settings
from django.utils.translation import gettext as _
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from redis.exceptions import RedisError

from accounts.servers import ServerSettings
from mailbox import net, oauth
from mailbox.errors import Problem, ServerProblem
from mailbox.imap import session

if TYPE_CHECKING:
    from accounts.models import MailAccount

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A dead connection shows itself as imaplib's abort (BYE, EOF, "socket error")
# or as a plain socket error (timeout, broken pipe, reset, TLS).
_LOST = (IMAPClientAbortError, OSError)
_SLOT_PREFIX = "webmail:imap:slots:"
_WANT_PREFIX = "webmail:imap:want:"
_REAP_TICK = 0.5


# -- settings ---------------------------------------------------------------


def idle_seconds() -> float:
    return float(getattr(settings, "WEBMAIL_IMAP_POOL_IDLE_SECONDS", 300))


def check_seconds() -> float:
    return float(getattr(settings, "WEBMAIL_IMAP_POOL_CHECK_SECONDS", 5))


def max_connections() -> int:
    return int(getattr(settings, "WEBMAIL_IMAP_MAX_CONNECTIONS", 3))


def slot_wait_seconds() -> float:
    return float(getattr(settings, "WEBMAIL_IMAP_SLOT_WAIT_SECONDS", 5))


def slot_lease_seconds() -> float:
    return float(getattr(settings, "WEBMAIL_IMAP_SLOT_LEASE_SECONDS", 60))


# -- errors -----------------------------------------------------------------


class PoolBusy(Exception):
    """Every connection slot of a remote account stayed taken for the whole wait."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"all {limit} connection slots are taken")
        self.limit = limit

    @property
    def message(self) -> str:
        return _(
            "Too many connections to this mailbox are open at the moment (at most "
            "%(limit)s). Try again in a moment."
        ) % {"limit": self.limit}


def _lost_problem(exc: BaseException) -> ServerProblem:
    if isinstance(exc, OSError):
        return net.problem_from_os_error(exc)
    return ServerProblem(Problem.NETWORK, _("the server closed the connection"))


# -- connection slots (the cross-process limit) -------------------------------


class Slots(Protocol):
    def acquire(self, key: str, *, limit: int, lease: float, wait: float) -> str: ...

    def release(self, key: str, token: str) -> None: ...

    def renew(self, held: list[tuple[str, str]], lease: float) -> set[str]:
        """Extend the leases; return the tokens that had already expired."""
        ...

    def wanted(self, keys: set[str]) -> set[str]:
        """The keys somebody is waiting for a slot of right now."""
        ...

    def count(self, key: str) -> int: ...


def slot_key(server: ServerSettings) -> str:
    """The semaphore's name for one remote account (host + user name).

    A hash, so neither the host nor the user name appears in Redis keys.
    """
    remote = f"{server.host.lower().rstrip('.')}\0{server.username}"
    return hashlib.sha256(remote.encode()).hexdigest()[:32]


_ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RENEW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if score and tonumber(score) > now then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return 1
end
if score then
  redis.call('ZREM', KEYS[1], ARGV[2])
end
return 0
"""

_COUNT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class RedisSlots:
    """Counting semaphore shared by every process: a sorted set of leases per key.

    Each member is one connection's token scored with its expiry in Redis's own
    clock (TIME inside the scripts), so hosts with skewed clocks agree, and a
    process killed without cleanup loses its slots when the lease runs out.
    """

    def __init__(self, url: str) -> None:
        import redis  # the embedded mode has no Redis

        self._redis = redis.Redis.from_url(url)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._count = self._redis.register_script(_COUNT)

    def acquire(self, key: str, *, limit: int, lease: float, wait: float) -> str:
        token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        lease_ms = max(1, int(lease * 1000))
        deadline = time.monotonic() + wait
        delay = 0.02
        waiting = False
        try:
            while True:
                if self._acquire(
                    keys=[_SLOT_PREFIX + key], args=[limit, lease_ms, token]
                ):
                    return token
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolBusy(limit)
                # Asks holders of an idle connection to give it up; renewed
                # while waiting, dropped when done (others renew their own).
                waiting = True
                self._redis.set(_WANT_PREFIX + key, b"1", px=1000)
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.25)
        finally:
            if waiting:
                self._redis.delete(_WANT_PREFIX + key)

    def release(self, key: str, token: str) -> None:
        self._redis.zrem(_SLOT_PREFIX + key, token)

    def renew(self, held: list[tuple[str, str]], lease: float) -> set[str]:
        lease_ms = max(1, int(lease * 1000))
        lost = set()
        for key, token in held:
            if not self._renew(keys=[_SLOT_PREFIX + key], args=[lease_ms, token]):
                lost.add(token)
        return lost

    def wanted(self, keys: set[str]) -> set[str]:
        ordered = sorted(keys)
        if not ordered:
            return set()
        found = self._redis.mget([_WANT_PREFIX + key for key in ordered])
        return {key for key, value in zip(ordered, found, strict=True) if value}

    def count(self, key: str) -> int:
        return int(self._count(keys=[_SLOT_PREFIX + key]))


class LocalSlots:
    """The same semaphore within one process, for the embedded mode (no Redis)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[str, set[str]] = {}
        self._waiting: dict[str, int] = {}

    def acquire(self, key: str, *, limit: int, lease: float, wait: float) -> str:
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait
        with self._cond:
            held = self._held.setdefault(key, set())
            self._waiting[key] = self._waiting.get(key, 0) + 1
            try:
                while len(held) >= limit:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise PoolBusy(limit)
                    self._cond.wait(remaining)
            finally:
                self._waiting[key] -= 1
            held.add(token)
        return token

    def release(self, key: str, token: str) -> None:
        with self._cond:
            self._held.get(key, set()).discard(token)
            self._cond.notify_all()

    def renew(self, held: list[tuple[str, str]], lease: float) -> set[str]:
        return set()

    def wanted(self, keys: set[str]) -> set[str]:
        with self._cond:
            return {key for key in keys if self._waiting.get(key)}

    def count(self, key: str) -> int:
        with self._cond:
            return len(self._held.get(key, ()))


_backends: dict[str, Slots] = {}
_local_fallback = LocalSlots()
_backends_lock = threading.Lock()
_backends_pid = os.getpid()


def slots() -> Slots:
    """The semaphore for the current ``REDIS_URL`` (in-process when it is empty)."""
    global _backends_pid
    url = getattr(settings, "REDIS_URL", "") or ""
    with _backends_lock:
        if _backends_pid != os.getpid():  # forked: the parent's leases are not ours
            _backends.clear()
            _backends_pid = os.getpid()
        backend = _backends.get(url)
        if backend is None:
            backend = RedisSlots(url) if url else LocalSlots()
            _backends[url] = backend
        return backend


# -- the pool -----------------------------------------------------------------

_PoolKey = tuple[int, str]


def _fingerprint(account: MailAccount) -> str:
    """Changes whenever the server settings or the stored password change."""
    parts = (
        account.host,
        str(account.port),
        account.security,
        account.username,
        account.password_encrypted,  # a new ciphertext on every password change
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(eq=False)
class _Entry:
    client: IMAPClient
    account_id: int
    pool_key: _PoolKey
    slot_key: str
    token: str
    backend: Slots
    last_used: float = field(default_factory=time.monotonic)
    slot_lost: bool = False


class ConnectionPool:
    """Per-process pool of logged-in IMAP connections; safe to share across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._idle: dict[_PoolKey, list[_Entry]] = {}
        self._live: set[_Entry] = set()
        self._current: dict[int, str] = {}  # account id -> newest fingerprint
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    # -- public ---------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self, account: MailAccount) -> Iterator[IMAPClient]:
        """Lend a checked, logged-in client for the block; return it afterwards.

        Raises ServerProblem (cannot connect or log in, or the connection died
        inside the block) or PoolBusy (no free slot within the wait).
        """
        entry = self._checkout(account)
        try:
            yield entry.client
        except _LOST as exc:
            self._discard(entry, logout=False, drop_idle=True)
            raise _lost_problem(exc) from exc
        except BaseException as exc:
            self._checkin_after(entry, exc)
            raise
        else:
            self._checkin(entry)

    def run(
        self, account: MailAccount, fn: Callable[[IMAPClient], T], *, retry: bool = True
    ) -> T:
        """Return ``fn(client)``; if the connection dies meanwhile, run it once more
        on a fresh login (unless ``retry`` is False).

        Raises ServerProblem or PoolBusy like ``connection()``.
        """
        fresh = False
        while True:
            entry = self._checkout(account, fresh=fresh)
            try:
                result = fn(entry.client)
            except _LOST as exc:
                self._discard(entry, logout=False, drop_idle=True)
                if retry and not fresh:
                    logger.info(
                        "imap pool: account %s lost its connection; retrying once",
                        entry.account_id,
                    )
                    fresh = True
                    continue
                raise _lost_problem(exc) from exc
            except BaseException as exc:
                self._checkin_after(entry, exc)
                raise
            self._checkin(entry)
            return result

    def close(self) -> None:
        """Log out every idle connection and stop the background sweeper.

        Connections lent out at the time come back to the pool as usual.
        """
        with self._lock:
            if self._pid != os.getpid():
                self._reset()
                return
            idle = [entry for entries in self._idle.values() for entry in entries]
            self._idle.clear()
            self._current.clear()
            self._stop.set()
            self._stop = threading.Event()
            self._reaper = None
        for entry in idle:
            self._discard(entry, logout=True)

    def stats(self) -> dict[str, int]:
        """Counts for logs and tests: live (idle + lent) and idle connections."""
        with self._lock:
            idle = sum(len(entries) for entries in self._idle.values())
            return {"live": len(self._live), "idle": idle}

    # -- lending ----------------------------------------------------------------

    def _checkout(self, account: MailAccount, *, fresh: bool = False) -> _Entry:
        key: _PoolKey = (account.pk, _fingerprint(account))
        stale: list[_Entry] = []
        with self._lock:
            if self._pid != os.getpid():  # forked: the sockets are the parent's
                self._reset()
            if self._current.get(account.pk) != key[1]:
                self._current[account.pk] = key[1]
                for other in [k for k in self._idle if k[0] == account.pk]:
                    if other != key:
                        stale.extend(self._idle.pop(other))
        for entry in stale:
            logger.info("imap pool: account %s changed; old login closed", account.pk)
            self._discard(entry, logout=True)
        self._sweep(wanted=False)
        while not fresh:
            with self._lock:
                entries = self._idle.get(key)
                entry = entries.pop() if entries else None
            if entry is None:
                break
            if self._healthy(entry):
                return entry
            self._discard(entry, logout=False)
        return self._open(account, key)

    def _healthy(self, entry: _Entry) -> bool:
        if entry.slot_lost:
            return False
        if time.monotonic() - entry.last_used <= check_seconds():
            return True
        try:
            entry.client.noop()
        except (*_LOST, IMAPClientError):
            logger.info("imap pool: account %s failed its NOOP", entry.account_id)
            return False
        return True

    def _open(self, account: MailAccount, key: _PoolKey) -> _Entry:
        server = ServerSettings.incoming_of(account)
        skey = slot_key(server)
        backend = slots()
        limit = max_connections()
        try:
            token = backend.acquire(
                skey, limit=limit, lease=slot_lease_seconds(), wait=slot_wait_seconds()
            )
        except PoolBusy:
            logger.warning(
                "imap pool: account %s has all %s slots taken", account.pk, limit
            )
            raise
        except RedisError:
            # Reading mail matters more than the shared limit: count in this
            # process only until Redis answers again.
            logger.warning("imap pool: Redis unreachable; limiting per process")
            backend = _local_fallback
            token = backend.acquire(
                skey, limit=limit, lease=slot_lease_seconds(), wait=slot_wait_seconds()
            )
        try:
            client = oauth.with_login_retry(
                account,
                lambda secret: session.connect(
                    server, secret, timeout=net.timeout_seconds()
                ),
            )
        except BaseException:
            with contextlib.suppress(Exception):
                backend.release(skey, token)
            raise
        entry = _Entry(client, account.pk, key, skey, token, backend)
        with self._lock:
            self._live.add(entry)
            live = len(self._live)
            self._start_reaper()
        logger.info(
            "imap pool: account %s logged in (%s live in this process)",
            account.pk,
            live,
        )
        return entry

    def _checkin(self, entry: _Entry) -> None:
        entry.last_used = time.monotonic()
        if entry.slot_lost:
            self._discard(entry, logout=True)
            return
        try:
            wanted = bool(entry.backend.wanted({entry.slot_key}))
        except Exception:
            logger.exception("imap pool: slot store failed")
            wanted = True
        with self._lock:
            keep = (
                not wanted
                and self._pid == os.getpid()
                and self._current.get(entry.account_id) == entry.pool_key[1]
                and not self._idle.get(entry.pool_key)
            )
            if keep:
                self._idle.setdefault(entry.pool_key, []).append(entry)
                return
        # One idle connection per account and process is enough; the rest go.
        self._discard(entry, logout=True)

    def _checkin_after(self, entry: _Entry, exc: BaseException) -> None:
        # A NO/BAD answer or an error in the caller's own code leaves the
        # connection in a known state; anything else (KeyboardInterrupt in the
        # middle of a reply, say) may not.
        if isinstance(exc, Exception):
            self._checkin(entry)
        else:
            self._discard(entry, logout=False)

    def _discard(self, entry: _Entry, *, logout: bool, drop_idle: bool = False) -> None:
        doomed = [entry]
        with self._lock:
            if drop_idle:  # a dead server killed its siblings too
                doomed.extend(self._idle.pop(entry.pool_key, []))
        for item in doomed:
            _close(item.client, logout=logout)
            try:
                item.backend.release(item.slot_key, item.token)
            except Exception:
                # The lease expires on its own.
                logger.exception("imap pool: could not release a slot")
            # Counted as live until its slot is free, so that "no live
            # connection" also means "no slot held" (stats, tests).
            with self._lock:
                self._live.discard(item)
        logger.info(
            "imap pool: account %s dropped %s connection(s)",
            entry.account_id,
            len(doomed),
        )

    # -- upkeep -----------------------------------------------------------------

    def _sweep(self, *, wanted: bool) -> None:
        """Log out idle connections past the idle timeout (and, from the sweeper,
        those whose slot another process is waiting for)."""
        limit = time.monotonic() - idle_seconds()
        doomed: list[_Entry] = []
        with self._lock:
            for key in list(self._idle):
                keep = []
                for entry in self._idle[key]:
                    if entry.last_used < limit or entry.slot_lost:
                        doomed.append(entry)
                    else:
                        keep.append(entry)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
            idle = [entry for entries in self._idle.values() for entry in entries]
        if wanted and idle:
            by_backend: dict[int, tuple[Slots, set[str]]] = {}
            for entry in idle:
                by_backend.setdefault(id(entry.backend), (entry.backend, set()))
                by_backend[id(entry.backend)][1].add(entry.slot_key)
            asked: set[str] = set()
            for backend, keys in by_backend.values():
                asked |= backend.wanted(keys)
            if asked:
                with self._lock:
                    for key in list(self._idle):
                        entries = self._idle[key]
                        doomed.extend(e for e in entries if e.slot_key in asked)
                        entries[:] = [e for e in entries if e.slot_key not in asked]
                        if not entries:
                            del self._idle[key]
        for entry in doomed:
            self._discard(entry, logout=True)

    def _start_reaper(self) -> None:
        # Called with the lock held.
        if self._reaper is not None and self._reaper.is_alive():
            return
        self._reaper = threading.Thread(
            target=self._reap, args=(self._stop,), name="imap-pool", daemon=True
        )
        self._reaper.start()

    def _reap(self, stop: threading.Event) -> None:
        """Renew the leases of live connections and sweep idle ones, until none.

        Wakes up twice a second at most, so that a process waiting for a slot
        held by an idle connection here gets it within about that time; leases
        are renewed when a third of their time has passed.
        """
        renewed = time.monotonic()
        while True:
            lease = slot_lease_seconds()
            tick = min(_REAP_TICK, idle_seconds() / 3, lease / 3)
            if stop.wait(max(0.05, tick)):
                return
            with self._lock:
                if self._pid != os.getpid() or not self._live:
                    if self._reaper is threading.current_thread():
                        self._reaper = None
                    return
                live = list(self._live)
            try:
                if time.monotonic() - renewed >= lease / 3:
                    renewed = time.monotonic()
                    self._renew(live)
                self._sweep(wanted=True)
            except Exception:
                logger.exception("imap pool: upkeep failed")

    def _renew(self, live: list[_Entry]) -> None:
        groups: dict[int, tuple[Slots, list[_Entry]]] = {}
        for entry in live:
            groups.setdefault(id(entry.backend), (entry.backend, []))[1].append(entry)
        for backend, entries in groups.values():
            lost = backend.renew(
                [(e.slot_key, e.token) for e in entries], slot_lease_seconds()
            )
            for entry in entries:
                if entry.token in lost:
                    # Too late: another process may have the slot by now.
                    entry.slot_lost = True
                    logger.warning(
                        "imap pool: account %s lost a slot lease", entry.account_id
                    )


def _close(client: IMAPClient, *, logout: bool) -> None:
    if logout:
        try:
            client.logout()
            return
        except (OSError, IMAPClientError, imaplib.IMAP4.error):
            pass
    with contextlib.suppress(OSError, IMAPClientError):
        client.shutdown()


# -- the process's pool -----------------------------------------------------

_pool = ConnectionPool()


def connection(account: MailAccount) -> contextlib.AbstractContextManager[IMAPClient]:
    """``with connection(account) as client:`` on this process's pool."""
    return _pool.connection(account)


def run(
    account: MailAccount, fn: Callable[[IMAPClient], T], *, retry: bool = True
) -> T:
    """``fn(client)`` on this process's pool, repeated once on a dead connection."""
    return _pool.run(account, fn, retry=retry)


def close_all() -> None:
    """Log out this process's idle connections (tests, worker shutdown)."""
    _pool.close()


def slots_in_use(account: MailAccount) -> int:
    """Connection slots of the account's remote mailbox taken across processes."""
    return slots().count(slot_key(ServerSettings.incoming_of(account)))
