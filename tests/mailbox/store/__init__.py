"""Tests of the server-side store, and helpers that put sample mail into it."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import AccountKind, MailAccount, Security, User
from accounts.servers import ServerSettings
from accounts.services import AccountOptions, mail_account_create
from mailbox.quota import quota_reserve
from mailbox.store import blobs, services
from mailbox.store.models import LocalFolder, StoredMessage, UidlEntry
from tests.data.loader import load_eml


def offline_pop_account(user: User) -> MailAccount:
    """A POP3 account row whose server is never contacted (store-only tests)."""
    return mail_account_create(
        user=user,
        kind=AccountKind.POP3,
        options=AccountOptions(label="Home", email="alice@pop.example.net"),
        server=ServerSettings("pop.example.net", 995, Security.SSL, "alice"),
        password="not used",
    )


def store_eml(
    user: User,
    sample: str | bytes,
    *,
    account: MailAccount | None = None,
    folder: LocalFolder | None = None,
    received_at: datetime | None = None,
    inline: bool = False,
) -> StoredMessage:
    """Store a sample as the importer does: blob, row, ledger and quota at once.

    A blob file by default (as every message was before small ones were kept
    in the database); with ``inline`` the bytes go into the database instead.
    """
    raw = load_eml(sample) if isinstance(sample, str) else sample
    if folder is None:
        folder = services.folders_ensure(user=user)[LocalFolder.Use.INBOX]
    uidl = secrets.token_hex(8)
    with transaction.atomic():
        name = ""
        if not inline:
            path = blobs.temp_dir() / f"test-{secrets.token_hex(8)}.part"
            path.write_bytes(raw)
            name = blobs.blob_save(path, user_id=user.pk)
        message = services.message_add(
            user=user,
            account=account,
            folder=folder,
            uidl=uidl,
            blob_name=name,
            size=len(raw),
            received_at=received_at,
            data=raw if inline else None,
        )
        if account is not None:
            UidlEntry.objects.create(
                account=account,
                uidl=uidl,
                message=message,
                size=len(raw),
                imported_at=timezone.now(),
            )
        assert quota_reserve(user=user, size=len(raw))
    return message
