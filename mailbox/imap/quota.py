"""The account's storage quota, as the IMAP server reports it (RFC 9208)."""

from __future__ import annotations

import imaplib
from typing import TYPE_CHECKING

from mailbox.sources import Quota

if TYPE_CHECKING:
    from imapclient import IMAPClient

__all__ = ["get_quota"]


def get_quota(client: IMAPClient) -> Quota | None:
    """The STORAGE quota of INBOX's quota root, in bytes; None when there is none.

    None when the server has no QUOTA capability, when INBOX has no quota root
    (Dovecot answers ``OK No quota``, on which imapclient 4.1's
    ``get_quota_root`` raises IndexError), or when no root limits STORAGE.
    STORAGE is counted in KiB (RFC 9208 §5.1).
    """
    if not client.has_capability("QUOTA"):
        return None
    try:
        _, quotas = client.get_quota_root("INBOX")
    except IndexError:
        return None
    except imaplib.IMAP4.error as exc:
        if isinstance(exc, imaplib.IMAP4.abort):
            raise
        return None
    storage = [
        quota
        for quota in quotas
        if str(quota.resource).upper() == "STORAGE" and quota.limit
    ]
    if not storage:
        return None
    # Several roots may limit storage; the tightest one is what the user meets.
    tightest = min(storage, key=lambda quota: quota.limit - quota.usage)
    return Quota(
        used_bytes=int(tightest.usage) * 1024,
        limit_bytes=int(tightest.limit) * 1024,
    )
