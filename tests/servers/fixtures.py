"""Pytest fixtures for the private servers.

Load from a conftest with ``pytest_plugins = ["tests.servers.fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .dovecot import Dovecot, DovecotMissing, MailUser, find_dovecot
from .redis import redis_url as _redis_url


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A Dovecot for the whole test session (IMAP, IMAPS, POP3, POP3S)."""
    try:
        find_dovecot()
    except DovecotMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def mail_user(dovecot: Dovecot) -> MailUser:
    """A fresh user on the session's Dovecot, with an empty Maildir and 100 MB quota."""
    return dovecot.new_user()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a Redis database for tests (``redis://127.0.0.1:PORT/15``)."""
    return _redis_url()
