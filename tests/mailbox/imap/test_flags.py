"""Flags, moves and deletions against the private Dovecot."""

from __future__ import annotations

import pytest

from mailbox.imap.flags import delete, move, set_flags
from mailbox.imap.listing import select
from mailbox.sources import FolderChanged


def _message(subject: str) -> bytes:
    return f"Subject: {subject}\nFrom: a@example.org\n\nbody\n".encode()


def _flags(client, folder: str = "INBOX") -> dict[int, set[bytes]]:
    client.select_folder(folder, readonly=True)
    uids = client.search(["ALL"])
    return {uid: set(flags) for uid, flags in client.get_flags(uids).items()}


def _subjects(client, folder: str) -> list[str]:
    client.select_folder(folder, readonly=True)
    uids = client.search(["ALL"])
    response = client.fetch(uids, ["ENVELOPE"])
    return sorted(response[uid][b"ENVELOPE"].subject.decode() for uid in uids)


@pytest.fixture
def three(dovecot, mail_user, client) -> int:
    """Three unread messages in INBOX; returns INBOX's UIDVALIDITY."""
    dovecot.deliver(mail_user.username, _message("one"), _message("two"))
    dovecot.deliver(mail_user.username, _message("three"))
    return select(client, "INBOX").uidvalidity


def test_set_and_clear_flags(client, three):
    """seen and flagged are set and cleared; None leaves a flag as it is."""
    set_flags(client, "INBOX", [1, 2], validity=three, seen=True, flagged=True)
    flags = _flags(client)
    assert {b"\\Seen", b"\\Flagged"} <= flags[1]
    assert {b"\\Seen", b"\\Flagged"} <= flags[2]
    assert not {b"\\Seen", b"\\Flagged"} & flags[3]
    set_flags(client, "INBOX", [2], validity=three, seen=False)
    flags = _flags(client)
    assert b"\\Seen" not in flags[2]
    assert b"\\Flagged" in flags[2]
    set_flags(client, "INBOX", [1, 2], validity=three, flagged=False)
    flags = _flags(client)
    assert b"\\Flagged" not in flags[1] | flags[2]
    assert b"\\Seen" in flags[1]


def test_stale_validity_touches_nothing(client, three):
    """A stale UIDVALIDITY raises FolderChanged and changes no message."""
    with pytest.raises(FolderChanged):
        set_flags(client, "INBOX", [1], validity=three + 1, seen=True)
    with pytest.raises(FolderChanged):
        move(client, "INBOX", [1], validity=three + 1, to_folder="Archive")
    with pytest.raises(FolderChanged):
        delete(client, "INBOX", [1], validity=three + 1, trash="Trash")
    assert all(not flags & {b"\\Seen"} for flags in _flags(client).values())
    assert len(_flags(client)) == 3


def test_move(client, three):
    """Moved messages leave the folder and arrive in the other one."""
    move(client, "INBOX", [1, 3], validity=three, to_folder="Archive")
    assert _subjects(client, "INBOX") == ["two"]
    assert _subjects(client, "Archive") == ["one", "three"]


def test_move_without_move_capability(client, three):
    """Without MOVE: COPY, \\Deleted and UID EXPUNGE of those UIDs only.

    MOVE is hidden from a real connection by overriding imapclient's capability
    cache; another message already marked \\Deleted stays.
    """
    set_flags(client, "INBOX", [2], validity=three, seen=True)
    client.select_folder("INBOX")
    client.add_flags([2], [b"\\Deleted"])  # someone else's pending deletion
    capabilities = tuple(c for c in client.capabilities() if c != b"MOVE")
    client._cached_capabilities = capabilities
    assert not client.has_capability("MOVE")
    move(client, "INBOX", [1], validity=three, to_folder="Archive")
    assert _subjects(client, "INBOX") == ["three", "two"]
    assert _subjects(client, "Archive") == ["one"]


def test_delete_moves_to_trash_then_for_good(client, three):
    """Deleting moves to Trash; deleting in Trash removes for good."""
    delete(client, "INBOX", [2], validity=three, trash="Trash")
    assert _subjects(client, "INBOX") == ["one", "three"]
    assert _subjects(client, "Trash") == ["two"]
    trash = select(client, "Trash").uidvalidity
    (uid,) = client.search(["ALL"])
    delete(client, "Trash", [uid], validity=trash, trash="Trash")
    assert _subjects(client, "Trash") == []


def test_delete_without_trash_is_for_good(client, three):
    """With no trash folder, deleted mail is expunged."""
    delete(client, "INBOX", [1, 2], validity=three, trash=None)
    assert _subjects(client, "INBOX") == ["three"]
    assert _subjects(client, "Trash") == []
