"""Saving our own messages on an IMAP server: Sent and Drafts copies (APPEND).

The folder is found by its special use (RFC 6154, or the usual names when the
server has no SPECIAL-USE); when the account has none, one is created with the
usual name, as Thunderbird does. Every function takes a logged-in client (see
``mailbox.imap.pool``) and plain values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailbox.imap.folders import list_folders, personal_namespace
from mailbox.imap.listing import open_checked
from mailbox.sources import FolderChanged, SpecialUse

logger = logging.getLogger(__name__)

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
DEFAULT_NAMES = {SpecialUse.SENT: "Sent", SpecialUse.DRAFTS: "Drafts"}
DRAFT = b"\\Draft"
SEEN = b"\\Seen"
ANSWERED = b"\\Answered"
FORWARDED = b"$Forwarded"


def special_folder(
    client: IMAPClient,
    use: SpecialUse,
    *,
    create: bool = True,
    chosen: Mapping[str, str] | None = None,
) -> str:
    """The name of the account's folder for ``use``; created when missing.

    ``chosen``: the folders the user picked per use (the account's setting).
    """
    for folder in list_folders(client, with_counts=False, chosen=chosen):
        if folder.special_use == use and folder.selectable:
            return folder.name
    if not create:
        raise FolderChanged(DEFAULT_NAMES[use])
    # At the top of the personal namespace: "INBOX.Sent" on Courier-IMAP.
    prefix, _delimiter = personal_namespace(client)
    name = prefix + DEFAULT_NAMES[use]
    try:
        client.create_folder(name)
    except IMAPClientError:
        # Created meanwhile by another client: appending will tell.
        logger.info("imap: could not create the %s folder", use)
    return name


def appenduid(response: object) -> tuple[int, int] | None:
    """(uidvalidity, uid) from an APPEND answer ``[APPENDUID v u] ...`` (RFC 4315)."""
    if isinstance(response, str):
        response = response.encode()
    if not isinstance(response, bytes):
        return None
    match = _APPENDUID.search(response)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def append(
    client: IMAPClient, folder: str, data: bytes, flags: Sequence[bytes]
) -> tuple[int, int | None]:
    """APPEND ``data`` to ``folder``; return (uidvalidity, uid).

    The uid comes from APPENDUID (UIDPLUS); without it, from a search for the
    message's Message-ID, or None when even that finds nothing.
    """
    response = client.append(folder, data, flags=tuple(flags), msg_time=None)
    found = appenduid(response)
    if found is not None:
        return found
    info = client.select_folder(folder)
    validity = int(info[b"UIDVALIDITY"])
    match = re.search(rb"(?im)^message-id:\s*(<[^>\r\n]+>)", data.split(b"\r\n\r\n")[0])
    if match is None:
        return validity, None
    uids = client.search(["HEADER", "Message-ID", match.group(1).decode("latin-1")])
    return validity, (max(uids) if uids else None)


def delete_message(client: IMAPClient, folder: str, uid: int, *, validity: int) -> bool:
    """Remove one message for good (\\Deleted, then UID EXPUNGE where possible).

    Returns False when the folder changed (another UIDVALIDITY) or is gone: the
    uid then names nothing we know, and nothing is touched.
    """
    try:
        open_checked(client, folder, validity)
    except FolderChanged:
        return False
    client.add_flags([uid], [b"\\Deleted"], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge([uid])
    else:
        client.expunge()
    return True


def add_flags(
    client: IMAPClient,
    folder: str,
    uid: int,
    flags: Sequence[bytes],
    *,
    validity: int,
) -> bool:
    """Add ``flags`` to one message; False when the folder changed meanwhile."""
    try:
        open_checked(client, folder, validity)
    except FolderChanged:
        return False
    client.add_flags([uid], list(flags), silent=True)
    return True
