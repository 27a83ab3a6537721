"""A logged-in IMAP client on the test Dovecot, for the protocol-level tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accounts.models import Security
from accounts.servers import ServerSettings
from mailbox.imap.session import connect


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
