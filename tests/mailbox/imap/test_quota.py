"""The IMAP quota of an account, with and without a limit."""

from __future__ import annotations

from accounts.models import Security
from accounts.servers import ServerSettings
from mailbox.imap.quota import get_quota
from mailbox.imap.session import connect


def _client(dovecot, user):
    return connect(
        ServerSettings(dovecot.host, dovecot.imap_port, Security.NONE, user.username),
        user.password,
        timeout=5,
    )


def test_quota_with_a_limit(dovecot):
    """STORAGE usage and limit come in bytes (the server counts KiB)."""
    user = dovecot.new_user(quota_mb=10)
    dovecot.deliver(user.username, b"Subject: x\n\n" + b"y" * 200_000 + b"\n")
    client = _client(dovecot, user)
    try:
        quota = get_quota(client)
    finally:
        client.logout()
    assert quota is not None
    assert quota.limit_bytes == 10 * 1024 * 1024
    assert 200_000 <= quota.used_bytes <= 220 * 1024
    assert quota.percent == 2


def test_no_limit_is_none(dovecot):
    """An account without a quota root has no quota (Dovecot: "OK No quota")."""
    user = dovecot.new_user(quota_mb=None)
    client = _client(dovecot, user)
    try:
        assert get_quota(client) is None
        client.noop()  # the connection is still usable
    finally:
        client.logout()


def test_no_quota_capability_is_none(dovecot):
    """A server without QUOTA has no quota to show, and is not asked.

    The capability is hidden from a real connection by overriding imapclient's
    capability cache, as Dovecot cannot be told to drop it per connection.
    """
    user = dovecot.new_user()
    client = _client(dovecot, user)
    try:
        client._cached_capabilities = (b"IMAP4REV1",)
        assert get_quota(client) is None
    finally:
        client.logout()
