"""Accounts that send through the test SMTP server (aiosmtpd, STARTTLS + AUTH)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accounts.models import MailAccount, Security
from mailbox.imap import pool
from tests.servers import smtp as smtp_test


def with_smtp(account: MailAccount, server, *, security: str = Security.STARTTLS):
    account.smtp_host = server.host
    account.smtp_port = server.tls_port if security == Security.SSL else server.port
    account.smtp_security = security
    account.smtp_username = smtp_test.USERNAME
    account.set_smtp_password(smtp_test.PASSWORD)
    account.save()
    return account


@pytest.fixture
def sending_account(imap_account, smtp_server, trust_test_ca) -> MailAccount:
    """The user's IMAP account on the test Dovecot, sending through aiosmtpd."""
    return with_smtp(imap_account, smtp_server)


@pytest.fixture
def sending_pop_account(pop_account, smtp_server, trust_test_ca) -> MailAccount:
    """The user's POP3 account (mail in the store), sending through aiosmtpd."""
    return with_smtp(pop_account, smtp_server)


@pytest.fixture(autouse=True)
def _no_pooled_logins() -> Iterator[None]:
    """Each test's IMAP logins are closed after it (ids are reused across tests)."""
    yield
    pool.close_all()
