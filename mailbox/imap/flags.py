"""Flags, moves and deletions of messages in an IMAP folder.

Every function SELECTs the folder read-write and checks its UIDVALIDITY against the
one the caller saw (FolderChanged otherwise), so a stale list never touches other
messages. UIDs the folder no longer has are ignored by the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailbox.imap.listing import FLAGGED, SEEN, open_checked

if TYPE_CHECKING:
    from imapclient import IMAPClient

__all__ = ["delete", "move", "set_flags"]

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


def _expunge(client: IMAPClient, uids: list[int]) -> None:
    """Remove ``uids`` (already \\Deleted) for good.

    With UIDPLUS only these UIDs are expunged (``UID EXPUNGE``); without it a
    plain EXPUNGE also removes any other message someone marked \\Deleted.
    """
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:
        client.expunge()


def _move_selected(client: IMAPClient, uids: list[int], to_folder: str) -> None:
    if client.has_capability("MOVE"):
        client.move(uids, to_folder)
        return
    client.copy(uids, to_folder)
    client.add_flags(uids, [DELETED], silent=True)
    _expunge(client, uids)


def move(
    client: IMAPClient,
    folder: str,
    uids: Sequence[int],
    *,
    validity: int,
    to_folder: str,
) -> None:
    """Move ``uids`` from ``folder`` to ``to_folder``.

    ``UID MOVE`` (RFC 6851) when the server has MOVE, else ``UID COPY``, then
    ``\\Deleted`` and ``UID EXPUNGE`` (UIDPLUS) or ``EXPUNGE``. Moving to the same
    folder does nothing. A missing target folder raises the server's error
    (imapclient's), and the messages stay where they were.
    """
    wanted = _uids(uids)
    if not wanted or to_folder == folder:
        return
    open_checked(client, folder, validity)
    _move_selected(client, wanted, to_folder)


def delete(
    client: IMAPClient,
    folder: str,
    uids: Sequence[int],
    *,
    validity: int,
    trash: str | None,
) -> None:
    """Move ``uids`` to ``trash``; in the trash itself, or with no trash, delete
    them for good (``\\Deleted`` then ``UID EXPUNGE``, or EXPUNGE without
    UIDPLUS)."""
    wanted = _uids(uids)
    if not wanted:
        return
    open_checked(client, folder, validity)
    if trash and trash != folder:
        _move_selected(client, wanted, trash)
        return
    client.add_flags(wanted, [DELETED], silent=True)
    _expunge(client, wanted)
