"""IMAP test fixtures: a logged-in client, and the servers of the capability matrix."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator

import pytest

from accounts.models import MailAccount, Security
from accounts.servers import ServerSettings
from mailbox.imap import pool
from mailbox.imap.session import connect
from tests.conftest import make_account
from tests.servers.dovecot import Dovecot, MailUser

PROFILES = ["full", "minimal", "courier"]


@pytest.fixture
def client(dovecot, mail_user) -> Iterator:
    imap = connect(
        ServerSettings(
            dovecot.host, dovecot.imap_port, Security.NONE, mail_user.username
        ),
        mail_user.password,
        timeout=5,
    )
    yield imap
    imap.logout()


@pytest.fixture(params=PROFILES)
def server(request, dovecot_profiles, settings) -> Iterator[Dovecot]:
    """The test Dovecot in each profile of the matrix (full, minimal, courier).

    Its certificates verify; pooled logins are closed after the test.
    """
    dovecot = dovecot_profiles(request.param)
    settings.WEBMAIL_EXTRA_CA_FILE = str(dovecot.ca_file)
    yield dovecot
    pool.close_all()


@pytest.fixture
def server_user(server) -> MailUser:
    """A fresh mailbox on the profiled server."""
    return server.new_user()


@pytest.fixture
def server_account(user, server, server_user) -> MailAccount:
    """The signed-in user's IMAP account on the profiled server (STARTTLS)."""
    return make_account(user, server, server_user)


class Wire:
    """Records every IMAP command line this process sends, on any connection.

    A spy on imaplib's ``send`` (the real bytes still go out): tests use it to
    check that a command the server does not advertise is never sent.
    """

    def __init__(self, monkeypatch) -> None:
        self.sent: list[bytes] = []
        original = imaplib.IMAP4.send

        def send(imap: imaplib.IMAP4, data: bytes) -> None:
            self.sent.append(bytes(data))
            original(imap, data)

        monkeypatch.setattr(imaplib.IMAP4, "send", send)

    def commands(self) -> list[str]:
        """Command lines without their tags, upper case."""
        text = b"".join(self.sent).decode("utf-8", "replace")
        return [line.split(" ", 1)[-1].upper() for line in text.split("\r\n") if line]

    def clear(self) -> None:
        self.sent.clear()


@pytest.fixture
def wire(monkeypatch) -> Wire:
    return Wire(monkeypatch)
