"""Pytest fixtures for the private servers.

Load from a conftest with ``pytest_plugins = ["tests.servers.fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .dovecot import Dovecot, DovecotMissing, MailUser, find_dovecot
from .redis import redis_url as _redis_url
from .smtp import SmtpServer


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


@pytest.fixture(scope="session")
def dovecot_profiles(dovecot: Dovecot) -> Iterator[Callable[[str], Dovecot]]:
    """A Dovecot per profile ("full", "minimal", "courier"; see dovecot.PROFILES).

    "full" is the session's ``dovecot``; the others start on first use (~0.2 s
    each) and run until the end of the session.
    """
    started: dict[str, Dovecot] = {"full": dovecot}

    def get(profile: str) -> Dovecot:
        if profile not in started:
            server = Dovecot(profile=profile)
            server.start()
            started[profile] = server
        return started[profile]

    try:
        yield get
    finally:
        for name, server in started.items():
            if name != "full":
                server.close()


@pytest.fixture
def mail_user(dovecot: Dovecot) -> MailUser:
    """A fresh user on the session's Dovecot, with an empty Maildir and 100 MB quota."""
    return dovecot.new_user()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a Redis database for tests (``redis://127.0.0.1:PORT/15``)."""
    return _redis_url()


@pytest.fixture(scope="session")
def smtp_session_server(dovecot: Dovecot) -> Iterator[SmtpServer]:
    """One SMTP server (aiosmtpd) for the session, with the test CA's certificate."""
    server = SmtpServer(dovecot.cert_file, dovecot.key_file).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server(smtp_session_server: SmtpServer) -> SmtpServer:
    """The session's SMTP server, with nothing received and no failure pending."""
    smtp_session_server.reset()
    return smtp_session_server
