"""Helpers for the compose tests: reading the account's folders over real IMAP."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from accounts.models import MailAccount
from mailbox.access import source_of
from mailbox.imap import pool
from mailbox.sources import ListQuery


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def folder_messages(account: MailAccount, folder: str) -> list[tuple[int, bytes]]:
    """(uid, raw bytes) of every message of an IMAP folder, oldest first."""
    source = source_of(account)
    page = source.messages(folder, ListQuery(page_size=200, reverse=False))
    return [
        (m.uid, b"".join(source.raw(folder, m.uid, validity=page.validity)))
        for m in page.messages
    ]


def flags_of(account: MailAccount, folder: str, uid: int) -> set[bytes]:
    def run(client):  # noqa: ANN001, ANN202
        client.select_folder(folder, readonly=True)
        return set(client.get_flags([uid]).get(uid, ()))

    return pool.run(account, run)


def validity_of(account: MailAccount, folder: str) -> int:
    return source_of(account).messages(folder, ListQuery()).validity
