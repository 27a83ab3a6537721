"""Flags, moves and deletions of messages in an IMAP folder.

Every function SELECTs the folder read-write and checks its UIDVALIDITY against the
one the caller saw (FolderChanged otherwise), so a stale list never touches other
messages. UIDs the folder no longer has are ignored by the server.

``move`` and ``delete`` return how many *other* messages the server removed with
the ones asked for: without UIDPLUS the only way to remove messages is a plain
EXPUNGE, which also removes every message someone else marked ``\\Deleted`` in
that folder (another mail client, say). The caller tells the user.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailbox.imap.listing import FLAGGED, SEEN, open_checked

if TYPE_CHECKING:
    from imapclient import IMAPClient

__all__ = ["delete", "move", "set_flags"]

logger = logging.getLogger(__name__)

DELETED = b"\\Deleted"


def _uids(uids: Sequence[int]) -> list[int]:
    result = sorted({int(uid) for uid in uids})
    if any(uid < 1 for uid in result):
        raise ValueError("UIDs are positive integers")
    return result


def set_flags(
    client: IMAPClient,
    folder: str,
    uids: Sequence[int],
    *,
    validity: int,
    seen: bool | None = None,
    flagged: bool | None = None,
) -> None:
    """Set or clear \\Seen and \\Flagged on ``uids``; None leaves a flag alone."""
    wanted = _uids(uids)
    if not wanted or (seen is None and flagged is None):
        return
    open_checked(client, folder, validity)
    add = [flag for flag, on in ((SEEN, seen), (FLAGGED, flagged)) if on is True]
    remove = [flag for flag, on in ((SEEN, seen), (FLAGGED, flagged)) if on is False]
    if add:
        client.add_flags(wanted, add, silent=True)
    if remove:
        client.remove_flags(wanted, remove, silent=True)


def _expunge(client: IMAPClient, uids: list[int]) -> int:
    """Remove ``uids`` (already \\Deleted) for good; return how many others went.

    With UIDPLUS only these UIDs are expunged (``UID EXPUNGE``, RFC 4315); without
    it a plain EXPUNGE also removes any other message marked \\Deleted, counted
    by a ``UID SEARCH DELETED`` just before.
    """
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
        return 0
    others = set(client.search(["DELETED"])) - set(uids)
    client.expunge()
    if others:
        logger.info("imap: plain EXPUNGE also removed %s message(s)", len(others))
    return len(others)


def _move_selected(client: IMAPClient, uids: list[int], to_folder: str) -> int:
    if client.has_capability("MOVE"):
        client.move(uids, to_folder)
        return 0
    client.copy(uids, to_folder)
    client.add_flags(uids, [DELETED], silent=True)
    return _expunge(client, uids)


def move(
    client: IMAPClient,
    folder: str,
    uids: Sequence[int],
    *,
    validity: int,
    to_folder: str,
) -> int:
    """Move ``uids`` from ``folder`` to ``to_folder``; return the number of other
    messages expunged with them (see the module's docstring).

    ``UID MOVE`` (RFC 6851) when the server has MOVE, else ``UID COPY``, then
    ``\\Deleted`` and ``UID EXPUNGE`` (UIDPLUS) or ``EXPUNGE``. Moving to the same
    folder does nothing. A missing target folder raises the server's error
    (imapclient's), and the messages stay where they were.
    """
    wanted = _uids(uids)
    if not wanted or to_folder == folder:
        return 0
    open_checked(client, folder, validity)
    return _move_selected(client, wanted, to_folder)


def delete(
    client: IMAPClient,
    folder: str,
    uids: Sequence[int],
    *,
    validity: int,
    trash: str | None,
) -> int:
    """Move ``uids`` to ``trash``; in the trash itself, or with no trash, delete
    them for good (``\\Deleted`` then ``UID EXPUNGE``, or EXPUNGE without
    UIDPLUS). Return the number of other messages expunged with them."""
    wanted = _uids(uids)
    if not wanted:
        return 0
    open_checked(client, folder, validity)
    if trash and trash != folder:
        return _move_selected(client, wanted, trash)
    client.add_flags(wanted, [DELETED], silent=True)
    return _expunge(client, wanted)
