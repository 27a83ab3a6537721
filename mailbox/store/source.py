"""StoreSource: the MailSource of a POP3 account, read from the server-side store.

The store is per user: every POP3 account of a user shows the same folders (the
importer files each account's mail into its import folder). Identity follows the
protocol: a folder's validity is its id (a folder deleted and made again under the
same name has a new one), a message's uid is its id. Every query is filtered by the
user, so ids of someone else's mail are simply "gone".

Choices:
- "INBOX" in any case names the Inbox (the views and IMAP habits use it).
- Sort by DATE is arrival order (``received_at``), as IMAP's ARRIVAL; FROM sorts
  by the sender's name, or address when there is no name, ignoring case.
- Search on from/to/subject is ``icontains`` in the database. Body search (the
  BODY field, and ALL besides the headers) reads the messages' bytes (inline or
  blobs, ``store.raw``): only the newest 2,000
  messages that pass the other filters are scanned, so in a bigger folder older
  messages are found by their headers only.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator, Sequence
from email.utils import getaddresses
from typing import TYPE_CHECKING

from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Lower, NullIf
from django.utils.translation import gettext as _

from mailbox import mime, sync
from mailbox.quota import usage
from mailbox.sources import (
    Changes,
    Download,
    Folder,
    FolderChanged,
    FullMessage,
    ListQuery,
    MessageGone,
    MessagePage,
    MessageSummary,
    Neighbours,
    Quota,
    SearchField,
    SortKey,
    SpecialUse,
)
from mailbox.store import raw as store_raw
from mailbox.store import services
from mailbox.store import sync as store_sync
from mailbox.store.models import LocalFolder, StoredMessage

if TYPE_CHECKING:
    from accounts.models import MailAccount

logger = logging.getLogger(__name__)

BODY_SEARCH_LIMIT = 2000
# Bigger messages are searched in their raw bytes only, never parsed for a search.
BODY_PARSE_LIMIT = 2 * 1024 * 1024
_ENCODED = re.compile(
    rb"(?i)content-transfer-encoding:\s*(base64|quoted-printable)"
    rb"|charset=\"?(?!utf-?8|us-ascii)[a-z]"
)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_PART_ID = re.compile(r"[1-9][0-9]{0,5}(?:\.[1-9][0-9]{0,5}){0,99}")

# Display order of the special folders, before all others.
_USE_ORDER = {
    LocalFolder.Use.INBOX: 0,
    LocalFolder.Use.DRAFTS: 1,
    LocalFolder.Use.SENT: 2,
    LocalFolder.Use.TRASH: 3,
}
_OTHER = len(_USE_ORDER)

_SORT_KEYS = {
    SortKey.DATE: F("received_at"),
    SortKey.FROM: Lower(Coalesce(NullIf("from_name", Value("")), "from_email")),
    SortKey.SUBJECT: Lower("subject"),
    SortKey.SIZE: F("size"),
}


def _natural_key(text: str) -> tuple[list[str | int], str]:
    """Case-insensitive, numbers by value ("Folder 2" < "Folder 10")."""
    parts: list[str | int] = [
        int(part) if i % 2 else part
        for i, part in enumerate(re.split(r"(\d+)", text.casefold()))
    ]
    return parts, text


def _addresses(text: str) -> tuple[mime.Address, ...]:
    if not text:
        return ()
    return tuple(
        mime.Address(name, email)
        for name, email in getaddresses([text])
        if name or email
    )


def _body_contains(raw: bytes, needle: str) -> bool:
    """Whether the body of the message ``raw`` contains ``needle`` (any case)."""
    match = _HEADER_END.search(raw)
    body = raw[match.end() :] if match else raw
    if needle in body.decode("utf-8", "replace").casefold():
        return True
    if len(raw) > BODY_PARSE_LIMIT or not _ENCODED.search(raw):
        return False
    parsed = mime.parse_message(raw)
    return any(
        needle in part.casefold()
        for part in (parsed.text, parsed.html)
        if part is not None
    )


class StoreSource:
    """The store of the account's user; every call is scoped to that user."""

    def __init__(self, account: MailAccount) -> None:
        self.account = account
        self.user = account.user

    # -- folders -----------------------------------------------------------------

    def folders(self, *, counts: bool | None = True) -> list[Folder]:
        """All the user's folders: Inbox, Drafts, Sent, Trash, the rest.

        Each child follows its parent; the others sort by name (case-insensitive,
        numbers by value). A parent missing from the store shows as not selectable.
        Counts come with the same query, so ``counts`` None means True here;
        with False, ``total`` and ``unread`` are None.
        """
        services.folders_ensure(user=self.user)
        rows = LocalFolder.objects.filter(user=self.user)
        if counts is not False:
            rows = rows.annotate(
                total=Count("messages"),
                unread=Count("messages", filter=Q(messages__seen=False)),
            )
        by_name: dict[str, LocalFolder | None] = {row.name: row for row in rows}
        for name in list(by_name):
            while services.DELIMITER in name:
                name = name.rsplit(services.DELIMITER, 1)[0]
                by_name.setdefault(name, None)
        children: dict[str | None, list[str]] = {}
        for name in by_name:
            parent = (
                name.rsplit(services.DELIMITER, 1)[0]
                if services.DELIMITER in name
                else None
            )
            children.setdefault(parent, []).append(name)

        def order(name: str) -> tuple[int, tuple[list[str | int], str]]:
            row = by_name[name]
            use = row.special_use if row is not None else ""
            return _USE_ORDER.get(use, _OTHER), _natural_key(name)

        result: list[Folder] = []

        def walk(parent: str | None) -> None:
            for name in sorted(children.get(parent, ()), key=order):
                row = by_name[name]
                result.append(
                    Folder(
                        name=name,
                        display_name=name.rsplit(services.DELIMITER, 1)[-1],
                        delimiter=services.DELIMITER,
                        depth=name.count(services.DELIMITER),
                        special_use=SpecialUse(row.special_use)
                        if row is not None and row.special_use
                        else None,
                        selectable=row is not None,
                        has_children=bool(children.get(name)),
                        total=getattr(row, "total", None),
                        unread=getattr(row, "unread", None),
                    )
                )
                walk(name)

        walk(None)
        return result

    def _folder(self, name: str, validity: int | None = None) -> LocalFolder:
        folder = services.folder_by_name(user=self.user, name=name)
        if folder is None or (validity is not None and folder.pk != validity):
            raise FolderChanged(name)
        return folder

    def _folder_for_change(self, name: str) -> LocalFolder:
        folder = services.folder_by_name(user=self.user, name=name)
        if folder is None:
            raise ValueError(
                _("The folder “%(name)s” does not exist.") % {"name": name}
            )
        return folder

    def create_folder(self, name: str, parent: str | None = None) -> str:
        parent_row = self._folder_for_change(parent) if parent else None
        return services.folder_create(user=self.user, name=name, parent=parent_row).name

    def rename_folder(self, folder: str, new_name: str) -> str:
        row = self._folder_for_change(folder)
        return services.folder_rename(
            user=self.user, folder=row, new_leaf=new_name
        ).name

    def delete_folder(self, folder: str) -> None:
        """Delete a folder; its messages go to the Trash (see services)."""
        services.folder_delete(user=self.user, folder=self._folder_for_change(folder))

    # -- lists ---------------------------------------------------------------------

    def _matching(self, folder: LocalFolder, query: ListQuery) -> QuerySet:
        rows = StoredMessage.objects.filter(user=self.user, folder=folder)
        if query.unread_only:
            rows = rows.filter(seen=False)
        if query.flagged_only:
            rows = rows.filter(flagged=True)
        text = query.text.strip()
        if not text:
            return rows
        by_field = {
            SearchField.FROM: Q(from_name__icontains=text)
            | Q(from_email__icontains=text),
            SearchField.TO: Q(to_text__icontains=text),
            SearchField.SUBJECT: Q(subject__icontains=text),
        }
        if query.field in by_field:
            return rows.filter(by_field[query.field])
        headers = Q(pk__in=[])
        if query.field == SearchField.ALL:
            for condition in by_field.values():
                headers |= condition
        candidates = rows.exclude(headers).order_by("-received_at", "-pk")
        scanned = list(candidates.values_list("pk", "blob")[: BODY_SEARCH_LIMIT + 1])
        if len(scanned) > BODY_SEARCH_LIMIT:
            logger.info("body search limited to %s messages", BODY_SEARCH_LIMIT)
            scanned = scanned[:BODY_SEARCH_LIMIT]
        needle = text.casefold()
        hits = [
            pk
            for pk, raw in store_raw.raw_many(scanned)
            if raw is not None and _body_contains(raw, needle)
        ]
        return rows.filter(headers | Q(pk__in=hits))

    @staticmethod
    def _ordered(rows: QuerySet, query: ListQuery) -> QuerySet:
        rows = rows.annotate(sort_key=_SORT_KEYS[SortKey(query.sort)])
        if query.reverse:
            return rows.order_by(F("sort_key").desc(), "-pk")
        return rows.order_by(F("sort_key").asc(), "pk")

    def messages(self, folder: str, query: ListQuery) -> MessagePage:
        """One page of ``folder`` in the query's order: one COUNT, one page query.

        A page past the end is empty; an unknown folder raises FolderChanged.
        """
        row = self._folder(folder)
        matching = self._matching(row, query)
        total = matching.count()
        page_size = max(1, query.page_size)
        start = (max(1, query.page) - 1) * page_size
        page = self._ordered(matching, query)[start : start + page_size]
        return MessagePage(
            folder=folder,
            validity=row.pk,
            query=query,
            total=total,
            messages=tuple(self._summary(message) for message in page),
        )

    @staticmethod
    def _summary(message: StoredMessage) -> MessageSummary:
        sender = (
            (mime.Address(message.from_name, message.from_email),)
            if message.from_name or message.from_email
            else ()
        )
        return MessageSummary(
            uid=message.pk,
            subject=message.subject,
            from_=sender,
            to=_addresses(message.to_text),
            date=message.date or message.received_at,
            size=message.size,
            seen=message.seen,
            flagged=message.flagged,
            answered=message.answered,
            has_attachments=message.has_attachments,
        )

    def neighbours(
        self, folder: str, uid: int, query: ListQuery, *, validity: int
    ) -> Neighbours:
        """The messages listed before and after ``uid`` in the query's order.

        A message no longer in the list has no neighbours.
        """
        row = self._folder(folder, validity)
        ordered = self._ordered(self._matching(row, query), query)
        current = ordered.filter(pk=uid).values_list("sort_key", flat=True).first()
        if current is None:  # not in the list (any more)
            return Neighbours()
        # Keyset: rows after ``uid`` in list order, and before it (read backwards).
        greater = Q(sort_key__gt=current) | Q(sort_key=current, pk__gt=uid)
        smaller = Q(sort_key__lt=current) | Q(sort_key=current, pk__lt=uid)
        after, before = (smaller, greater) if query.reverse else (greater, smaller)
        next_uid = ordered.filter(after).values_list("pk", flat=True).first()
        previous_uid = (
            ordered.filter(before).reverse().values_list("pk", flat=True).first()
        )
        return Neighbours(previous_uid=previous_uid, next_uid=next_uid)

    # -- one message -------------------------------------------------------------------

    def _message(self, folder: str, uid: int, validity: int) -> StoredMessage:
        row = self._folder(folder, validity)
        message = StoredMessage.objects.filter(
            user=self.user, folder=row, pk=uid
        ).first()
        if message is None:
            raise MessageGone(uid)
        return message

    def _raw(self, message: StoredMessage) -> bytes:
        try:
            return store_raw.raw_read(message)
        except OSError as exc:
            logger.warning("message %s: bytes unreadable", message.pk)
            raise MessageGone(message.pk) from exc

    def message(
        self, folder: str, uid: int, *, validity: int, mark_seen: bool = True
    ) -> FullMessage:
        """The parsed message; marks it seen (a change with a new modseq) if asked."""
        message = self._message(folder, uid, validity)
        parsed = mime.parse_message(self._raw(message))
        seen = message.seen
        if mark_seen and not seen:
            services.messages_set_flags(
                user=self.user, folder=message.folder, ids=[message.pk], seen=True
            )
            seen = True
        return FullMessage(
            folder=folder,
            validity=message.folder_id,
            uid=message.pk,
            size=message.size,
            seen=seen,
            flagged=message.flagged,
            answered=message.answered,
            parsed=parsed,
            received=message.received_at,
            imported_from=message.source,
        )

    def raw(self, folder: str, uid: int, *, validity: int) -> Iterator[bytes]:
        message = self._message(folder, uid, validity)
        try:
            return store_raw.raw_chunks(message)
        except OSError as exc:
            logger.warning("message %s: bytes unreadable", message.pk)
            raise MessageGone(message.pk) from exc

    def attachment(
        self, folder: str, uid: int, part_id: str, *, validity: int
    ) -> Download:
        """One part, described as the message view lists it, streamed decoded.

        A part number the message does not have raises MessageGone.
        """
        message = self._message(folder, uid, validity)
        if not isinstance(part_id, str) or not _PART_ID.fullmatch(part_id):
            raise MessageGone(uid)
        raw = self._raw(message)
        info = self._part_info(raw, part_id)
        if info is None:
            raise MessageGone(uid)
        try:
            # Parses the whole message now; the iterator holds only the part.
            chunks = mime.iter_part_payload(io.BytesIO(raw), part_id)
        except mime.PartNotFound as exc:
            raise MessageGone(uid) from exc
        return Download(info=info, chunks=chunks)

    @staticmethod
    def _part_info(raw: bytes, part_id: str) -> mime.AttachmentInfo | None:
        parsed = mime.parse_message(raw)
        for info in parsed.attachments:
            if info.part_id == part_id:
                return info
        part = mime.find_part(raw, part_id)
        if part is None:
            return None
        content_type = part.get_content_type()
        return mime.AttachmentInfo(
            part_id=part_id,
            filename=mime.safe_filename(
                part.get_filename() or "", part_id, content_type
            ),
            content_type=content_type,
            size=len(part.as_bytes()) if not part.is_multipart() else 0,
            content_id=None,
            is_inline=part.get_content_disposition() != "attachment",
        )

    # -- changes -------------------------------------------------------------------

    def set_flags(
        self,
        folder: str,
        uids: Sequence[int],
        *,
        validity: int,
        seen: bool | None = None,
        flagged: bool | None = None,
    ) -> None:
        row = self._folder(folder, validity)
        services.messages_set_flags(
            user=self.user, folder=row, ids=uids, seen=seen, flagged=flagged
        )

    def move(
        self, folder: str, uids: Sequence[int], *, validity: int, to_folder: str
    ) -> None:
        """Move to ``to_folder``; an unknown target raises FolderChanged."""
        row = self._folder(folder, validity)
        target = self._folder(to_folder)
        services.messages_move(user=self.user, folder=row, ids=uids, to_folder=target)

    def delete(self, folder: str, uids: Sequence[int], *, validity: int) -> None:
        """Move to the Trash; in the Trash, delete for good."""
        row = self._folder(folder, validity)
        services.messages_delete(user=self.user, folder=row, ids=uids)

    def quota(self) -> Quota | None:
        used = usage(user=self.user)
        return Quota(used_bytes=used.used_bytes, limit_bytes=used.limit_bytes)

    def changes(self, folder: str, since: str | None) -> Changes:
        """Added, changed and removed messages since ``since`` (store/sync.py).

        Raises BadSyncState for a token not made for this account and folder.
        """
        account_id = self.account.pk
        previous = (
            None
            if since is None
            else sync.state_load("store", since, account_id=account_id, folder=folder)
        )
        if since is not None and previous is None:
            previous = {}  # an older format: a full resync
        return store_sync.changes(
            user=self.user,
            folder=services.folder_by_name(user=self.user, name=folder),
            name=folder,
            since=previous,
            seal=lambda data: sync.state_dump(
                "store", account_id=account_id, folder=folder, data=data
            ),
            summary=self._summary,
        )
