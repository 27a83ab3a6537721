"""Private servers for tests and benchmarks: Dovecot (IMAP + POP3) and Redis.

Start them from pytest through the fixtures in ``tests.servers.fixtures``, or
standalone::

    from tests.servers.dovecot import Dovecot

    with Dovecot() as d:
        user = d.new_user()
        d.generate(user.username, 1000)
"""

import ctypes
import signal
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before any fork
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _set_parent_death_signal() -> None:
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGTERM the child when we die (Linux).

    Covers what atexit cannot: a test run killed by SIGTERM or SIGKILL. The
    signal is tied to the thread that forks, so it is only used from the main
    thread, which lives as long as the process.
    """
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    return _set_parent_death_signal
