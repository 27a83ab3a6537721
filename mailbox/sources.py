"""What the browser UI and the API need from a mail account, whatever its kind.

``ImapSource`` (mailbox/imap/source.py) reads an IMAP server live; ``StoreSource``
(mailbox/store/) reads mail imported from POP3. Views and API endpoints talk to this
protocol only, through ``mailbox.access.source_for``.

Message identity is (folder, validity, uid): for IMAP, validity is the folder's
UIDVALIDITY. Every call that names messages passes the validity its caller saw;
a different one raises FolderChanged ("reload"), never touches another message.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from mailbox.mime import Address, AttachmentInfo, ParsedMessage

DEFAULT_PAGE_SIZE = 50


class FolderChanged(Exception):
    """The folder's validity changed (or the folder is gone): reload the list."""


class MessageGone(Exception):
    """The message is no longer in the folder."""


class SpecialUse(StrEnum):
    """RFC 6154 roles of folders, and INBOX."""

    INBOX = "inbox"
    DRAFTS = "drafts"
    SENT = "sent"
    ARCHIVE = "archive"
    JUNK = "junk"
    TRASH = "trash"
    ALL = "all"
    FLAGGED = "flagged"


@dataclass(frozen=True)
class Folder:
    name: str  # the server's full name, decoded; the folder's identity in URLs
    display_name: str  # the last component of the name
    delimiter: str | None
    depth: int
    special_use: SpecialUse | None = None
    selectable: bool = True
    has_children: bool = False
    total: int | None = None
    unread: int | None = None


class SortKey(StrEnum):
    DATE = "date"  # arrival order (INTERNALDATE), the usual inbox order
    FROM = "from"
    SUBJECT = "subject"
    SIZE = "size"


class SearchField(StrEnum):
    ALL = "all"  # from, to, subject and body
    FROM = "from"
    TO = "to"
    SUBJECT = "subject"
    BODY = "body"


@dataclass(frozen=True)
class ListQuery:
    """Which messages of a folder, in which order, which page (1-based)."""

    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    sort: SortKey = SortKey.DATE
    reverse: bool = True  # newest (largest) first
    text: str = ""
    field: SearchField = SearchField.ALL
    unread_only: bool = False
    flagged_only: bool = False

    @property
    def is_search(self) -> bool:
        return bool(self.text) or self.unread_only or self.flagged_only


@dataclass(frozen=True)
class MessageSummary:
    """One row of a message list: headers and flags only, never body bytes."""

    uid: int
    subject: str
    from_: tuple[Address, ...]
    to: tuple[Address, ...]
    date: datetime | None  # the Date header, or the arrival time when missing
    size: int
    seen: bool
    flagged: bool
    answered: bool
    has_attachments: bool


@dataclass(frozen=True)
class MessagePage:
    folder: str
    validity: int
    query: ListQuery
    total: int  # messages matching the query in the folder
    messages: tuple[MessageSummary, ...]
    # True when the folder was too large for the asked sort (by sender or
    # subject) and the list is in arrival order instead.
    sort_fallback: bool = False

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.total / self.query.page_size))

    @property
    def has_previous(self) -> bool:
        return self.query.page > 1

    @property
    def has_next(self) -> bool:
        return self.query.page < self.page_count


@dataclass(frozen=True)
class FullMessage:
    folder: str
    validity: int
    uid: int
    size: int
    seen: bool
    flagged: bool
    answered: bool
    parsed: ParsedMessage
    received: datetime | None = None
    # For imported mail: where it was imported from ("pop.example.net (Work)").
    imported_from: str = ""


@dataclass(frozen=True)
class Neighbours:
    """The messages before and after one, in the list order it was opened from."""

    previous_uid: int | None = None
    next_uid: int | None = None


@dataclass(frozen=True)
class FlagChange:
    """The flags of a message whose flags changed since a sync state."""

    uid: int
    seen: bool
    flagged: bool
    answered: bool


@dataclass(frozen=True)
class Changes:
    """What changed in a folder since a sync state (see ``MailSource.changes``).

    ``state`` is the token to pass next time (None only when the folder is gone).
    With ``full_resync`` the lists are empty and the client must list the folder
    again from scratch, then continue from ``state``. ``added`` holds at most a
    bounded number of messages, oldest first: with ``more`` the client asks
    again with ``state`` for the rest. The lists may repeat what an earlier
    answer already said (an added message may appear again, a removed UID the
    client never had may appear): applying an answer twice is harmless.
    """

    folder: str
    validity: int | None
    state: str | None
    added: tuple[MessageSummary, ...] = ()
    changed: tuple[FlagChange, ...] = ()
    removed: tuple[int, ...] = ()
    full_resync: bool = False
    more: bool = False


class BadSyncState(ValueError):
    """A sync state token that was not made here, or not for this account."""


@dataclass(frozen=True)
class Quota:
    used_bytes: int
    limit_bytes: int

    @property
    def percent(self) -> int:
        if self.limit_bytes <= 0:
            return 0
        return min(100, round(100 * self.used_bytes / self.limit_bytes))

    @property
    def is_warning(self) -> bool:
        return self.percent >= 90


@dataclass(frozen=True)
class Download:
    """A streamed part: its description and an iterator over its decoded bytes."""

    info: AttachmentInfo
    chunks: Iterator[bytes] = field(repr=False)


class MailSource(Protocol):
    """One account's mail. Errors: ServerProblem, FolderChanged, MessageGone."""

    def folders(self, *, counts: bool | None = True) -> list[Folder]:
        """Every folder, in display order. ``counts``: True, each selectable
        folder's total and unread; False, none (None in each Folder); None,
        only where they cost nothing more than the list itself (an IMAP server
        with LIST-STATUS; the store always)."""
        ...

    def create_folder(self, name: str, parent: str | None = None) -> str: ...

    def rename_folder(self, folder: str, new_name: str) -> str: ...

    def delete_folder(self, folder: str) -> None: ...

    def messages(self, folder: str, query: ListQuery) -> MessagePage: ...

    def neighbours(
        self, folder: str, uid: int, query: ListQuery, *, validity: int
    ) -> Neighbours: ...

    def message(
        self, folder: str, uid: int, *, validity: int, mark_seen: bool = True
    ) -> FullMessage: ...

    def raw(self, folder: str, uid: int, *, validity: int) -> Iterator[bytes]: ...

    def attachment(
        self, folder: str, uid: int, part_id: str, *, validity: int
    ) -> Download: ...

    def set_flags(
        self,
        folder: str,
        uids: Sequence[int],
        *,
        validity: int,
        seen: bool | None = None,
        flagged: bool | None = None,
    ) -> None: ...

    def move(
        self, folder: str, uids: Sequence[int], *, validity: int, to_folder: str
    ) -> int | None:
        """Move the messages; return how many *other* messages the server removed
        with them (an IMAP server without UIDPLUS expunges every message marked
        deleted); 0 or None when none."""
        ...

    def delete(self, folder: str, uids: Sequence[int], *, validity: int) -> int | None:
        """Move to Trash; in Trash (or with no Trash), delete for good. Returns
        like ``move``."""
        ...

    def quota(self) -> Quota | None: ...

    def changes(self, folder: str, since: str | None) -> Changes:
        """What changed in ``folder`` since the state token ``since``.

        ``since`` None: no lists, only the current state. BadSyncState for a
        token that was not made here for this account and folder.
        """
        ...
