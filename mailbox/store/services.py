"""Writes to the server-side store: folders, imported messages, flags, moves, deletes.

Every function is scoped to one user: ids that belong to someone else are ignored,
never acted on. Each change takes the user's next modseq (see ``next_modseq``) so a
later delta sync can ask "what changed since N". A message deleted for good leaves
no row behind, only a higher counter.

Transactions: each function owns its transaction, except ``message_add``, which
expects the caller's (the importer commits message row, ledger row and quota
together) and ``next_modseq``, which joins the caller's when there is one.
"""

from __future__ import annotations

import email.message
import email.policy
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Model, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from mailbox import mime
from mailbox.quota import quota_release
from mailbox.store import blobs
from mailbox.store.models import (
    ChangeCounter,
    InlineRaw,
    LocalFolder,
    StoredMessage,
    UidlEntry,
)
from mailbox.store.sync import tombstones_add

if TYPE_CHECKING:
    from accounts.models import MailAccount, User

logger = logging.getLogger(__name__)

DELIMITER = "/"
MAX_LEAF_LENGTH = 100
MAX_NAME_LENGTH = 255  # LocalFolder.name
# Whole blobs up to this size are parsed for the list columns; larger ones only
# up to the end of their header (at most this much).
HEADER_PARSE_LIMIT = 256 * 1024

# The special folders, created on first use, in this order.
SPECIAL_FOLDERS: dict[str, str] = {
    LocalFolder.Use.INBOX: "Inbox",
    LocalFolder.Use.SENT: "Sent",
    LocalFolder.Use.DRAFTS: "Drafts",
    LocalFolder.Use.TRASH: "Trash",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_TO_TEXT_LIMIT = 10_000


# -- counters ----------------------------------------------------------------


def next_modseq(*, user: User, count: int = 1) -> int:
    """Increment the user's change counter by ``count``; return its new value.

    The caller owns the ``count`` values ending at the returned one (a range
    reserved for a batch: ``value - count + 1`` … ``value``). One conditional
    UPDATE (``value = value + count``) takes the row lock, so two concurrent
    callers never get the same value; the first call creates the row (a
    concurrent creation is caught and retried). Joins the caller's transaction.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    with transaction.atomic():
        updated = ChangeCounter.objects.filter(user=user).update(
            value=F("value") + count
        )
        if not updated:
            try:
                with transaction.atomic():
                    ChangeCounter.objects.create(user=user, value=count)
                return count
            except IntegrityError:
                ChangeCounter.objects.filter(user=user).update(value=F("value") + count)
        return ChangeCounter.objects.values_list("value", flat=True).get(user=user)


# -- folders -------------------------------------------------------------------


def folders_ensure(*, user: User) -> dict[str, LocalFolder]:
    """The user's Inbox, Sent, Drafts and Trash by special use, created if missing.

    Safe under concurrency: a creation that loses a race (IntegrityError) reads
    the winner's row. A plain folder that already has the special name (say a
    "Trash" the user made) is given the role instead of a duplicate.
    """
    found = {
        folder.special_use: folder
        for folder in LocalFolder.objects.filter(user=user).exclude(special_use="")
    }
    for use, name in SPECIAL_FOLDERS.items():
        if use not in found:
            found[use] = _special_create(user, use, name)
    return {use: found[use] for use in SPECIAL_FOLDERS}


def _special_create(user: User, use: str, name: str) -> LocalFolder:
    for _attempt in range(3):
        existing = LocalFolder.objects.filter(user=user, special_use=use).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                claimed = LocalFolder.objects.filter(
                    user=user, name=name, special_use=""
                ).update(special_use=use)
                if claimed:
                    return LocalFolder.objects.get(user=user, special_use=use)
                return LocalFolder.objects.create(user=user, name=name, special_use=use)
        except IntegrityError:
            continue  # a concurrent request created it: read theirs
    return LocalFolder.objects.get(user=user, special_use=use)


def special_folder(*, user: User, use: str) -> LocalFolder:
    """One of the user's special folders (``LocalFolder.Use``), created if missing."""
    return folders_ensure(user=user)[use]


def is_inbox_alias(name: str) -> bool:
    """ "INBOX" in any case names the Inbox, as on IMAP servers and in our URLs."""
    return name.casefold() == "inbox"


def folder_by_name(*, user: User, name: str) -> LocalFolder | None:
    """The user's folder called ``name`` ("INBOX" in any case is the Inbox)."""
    if is_inbox_alias(name):
        return special_folder(user=user, use=LocalFolder.Use.INBOX)
    return LocalFolder.objects.filter(user=user, name=name).first()


def _check_leaf(leaf: str) -> str:
    leaf = (leaf or "").strip()
    if not leaf:
        raise ValueError(_("A folder name cannot be empty."))
    if len(leaf) > MAX_LEAF_LENGTH:
        raise ValueError(
            _("A folder name can have at most %(max)d characters.")
            % {"max": MAX_LEAF_LENGTH}
        )
    if DELIMITER in leaf:
        raise ValueError(
            _("A folder name cannot contain “%(delimiter)s”.")
            % {"delimiter": DELIMITER}
        )
    if _CONTROL.search(leaf):
        raise ValueError(_("A folder name cannot contain control characters."))
    return leaf


def _check_full(user: User, name: str, *, exclude_pk: int | None = None) -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(_("This folder name is too long."))
    if is_inbox_alias(name):
        raise ValueError(_("The Inbox already exists."))
    taken = LocalFolder.objects.filter(user=user, name=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValueError(_("A folder “%(name)s” already exists.") % {"name": name})


def _ensure_path(user: User, name: str) -> LocalFolder:
    """The folder ``name``, created with any missing parents (race-safe)."""
    parts = name.split(DELIMITER)
    folder = None
    for depth in range(1, len(parts) + 1):
        path = DELIMITER.join(parts[:depth])
        try:
            with transaction.atomic():
                folder, _created = LocalFolder.objects.get_or_create(
                    user=user, name=path
                )
        except IntegrityError:
            folder = LocalFolder.objects.get(user=user, name=path)
    assert folder is not None  # noqa: S101 - a name has at least one part
    return folder


@transaction.atomic
def folder_create(
    *, user: User, name: str, parent: LocalFolder | None = None
) -> LocalFolder:
    """Create the folder ``name`` (one level) at the top or below ``parent``.

    Raises ValueError with a user-facing message for an empty name, a name with
    "/", control characters or more than 100 characters, a name that exists, or
    "INBOX" at the top.
    """
    leaf = _check_leaf(name)
    if parent is not None:
        if parent.user_id != user.pk:
            raise ValueError(_("The parent folder does not exist."))
        full = parent.name + DELIMITER + leaf
    else:
        full = leaf
    _check_full(user, full)
    try:
        with transaction.atomic():
            return LocalFolder.objects.create(user=user, name=full)
    except IntegrityError:
        raise ValueError(
            _("A folder “%(name)s” already exists.") % {"name": full}
        ) from None


@transaction.atomic
def folder_rename(*, user: User, folder: LocalFolder, new_leaf: str) -> LocalFolder:
    """Give ``folder`` the last component ``new_leaf``; its subfolders follow.

    Special folders are refused, as are bad or taken names (ValueError with a
    user-facing message). The folder keeps its id, so its validity is unchanged;
    lists opened under the old name see FolderChanged.
    """
    folder = LocalFolder.objects.select_for_update().get(pk=folder.pk, user=user)
    if folder.special_use:
        raise ValueError(
            _("“%(name)s” is a special folder and cannot be renamed.")
            % {"name": folder.name}
        )
    leaf = _check_leaf(new_leaf)
    old = folder.name
    parent, _sep, _old_leaf = old.rpartition(DELIMITER)
    new = f"{parent}{DELIMITER}{leaf}" if parent else leaf
    if new == old:
        return folder
    _check_full(user, new, exclude_pk=folder.pk)
    children = list(
        LocalFolder.objects.filter(user=user, name__startswith=old + DELIMITER)
    )
    for child in children:
        renamed = new + child.name[len(old) :]
        _check_full(user, renamed, exclude_pk=child.pk)
    folder.name = new
    folder.save(update_fields=["name"])
    for child in children:
        child.name = new + child.name[len(old) :]
        child.save(update_fields=["name"])
    return folder


@transaction.atomic
def folder_delete(*, user: User, folder: LocalFolder) -> int:
    """Delete ``folder``; the messages it held go to the Trash first.

    Returns how many messages went to the Trash. Refused with a user-facing
    ValueError for a special folder and for a folder with subfolders (delete
    those first), so no mail is ever lost by deleting a folder.
    """
    folder = LocalFolder.objects.select_for_update().get(pk=folder.pk, user=user)
    if folder.special_use:
        raise ValueError(
            _("“%(name)s” is a special folder and cannot be deleted.")
            % {"name": folder.name}
        )
    if LocalFolder.objects.filter(
        user=user, name__startswith=folder.name + DELIMITER
    ).exists():
        raise ValueError(
            _("“%(name)s” has subfolders; delete them first.") % {"name": folder.name}
        )
    trash = special_folder(user=user, use=LocalFolder.Use.TRASH)
    moved = StoredMessage.objects.filter(user=user, folder=folder)
    count = 0
    if moved.exists():
        modseq = next_modseq(user=user)
        # No tombstones: they would go with the folder (a sync state of it is
        # stale anyway); in the Trash the messages are new arrivals.
        count = moved.update(folder=trash, modseq=modseq, arrived_modseq=modseq)
    folder.delete()
    return count


def import_folder_for(*, account: MailAccount) -> LocalFolder:
    """Where an account's imported mail goes: its ``import_folder`` or the Inbox.

    A named folder that does not exist is created (with its parents); "INBOX" in
    any case, and a name that is not a valid folder name, mean the Inbox.
    """
    user = account.user
    name = (account.import_folder or "").strip().strip(DELIMITER)
    if not name or is_inbox_alias(name):
        return special_folder(user=user, use=LocalFolder.Use.INBOX)
    try:
        for leaf in name.split(DELIMITER):
            _check_leaf(leaf)
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(name)
    except ValueError:
        logger.warning("account %s: unusable import folder, using Inbox", account.pk)
        return special_folder(user=user, use=LocalFolder.Use.INBOX)
    return _ensure_path(user, name)


# -- adding messages -------------------------------------------------------------


def _head_bytes(blob_name: str) -> tuple[bytes, bool]:
    """The blob's bytes to parse and whether they are the whole message."""
    with blobs.blob_open(blob_name) as handle:
        data = handle.read(HEADER_PARSE_LIMIT + 1)
    if len(data) <= HEADER_PARSE_LIMIT:
        return data, True
    match = _HEADER_END.search(data)
    head = data[: match.end()] if match else data[:HEADER_PARSE_LIMIT]
    return head, False


def _multipart_mixed_hint(head: bytes) -> bool:
    """Header-only guess: a multipart/mixed top level usually carries attachments."""
    text = head.decode("latin-1").lower()
    return bool(re.search(r"(?m)^content-type:\s*multipart/mixed", text))


def _address_text(address: mime.Address) -> str:
    name = address.name
    if name and any(c in name for c in ',;<>"()@:'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if name and address.email:
        return f"{name} <{address.email}>"
    return name or address.email


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class MessageColumns:
    subject: str = ""
    from_name: str = ""
    from_email: str = ""
    to_text: str = ""
    date: datetime | None = None
    message_id: str = ""
    has_attachments: bool = False


# Whole messages (up to 256 KiB) are parsed in full only when one of these
# appears; otherwise ``mime.parse_message`` could find no attachment in them
# (it counts non-inline parts, parts of multipart/mixed and unknown
# multiparts, attached messages and TNEF, and those need one of: a
# Content-Disposition of attachment, a (file)name parameter, a message/* or
# TNEF type, or a Content-Type other than text/*, multipart/alternative and
# multipart/related). The scan looks at the whole text, bodies included, so
# it over-reports: a hit only costs the full parse, never a wrong answer.
# A message whose header gives no hint and a text/* type (or none) is one
# leaf: its body is not scanned (a ~50 KB one costs 0.14 ms less).
_NAME_PARAM = re.compile(rb";\s*(?:file)?name\*?(?:\d+\*?)?\s*=")
_PLAIN_TYPES = (b"text/", b"multipart/alternative", b"multipart/related")


def _may_have_attachments(data: bytes) -> bool:
    # A single-part text message is one leaf: its body is never split into
    # parts, so its header alone decides. The block up to the first empty
    # line holds at least the parser's header (which may end sooner), so a
    # block that passes means a header that passes.
    match = _HEADER_END.search(data)
    if match is not None and not _any_attachment_hint(
        data[: match.end()].lower(), plain=(b"text/",)
    ):
        return False
    return _any_attachment_hint(data.lower(), plain=_PLAIN_TYPES)


def _any_attachment_hint(low: bytes, *, plain: tuple[bytes, ...]) -> bool:
    """Whether the lower-case text ``low`` has one of the hints above, a
    Content-Type not starting with one of ``plain`` counting as one."""
    if b"attachment" in low or b"message/" in low or b"ms-tnef" in low:
        return True
    if b"name" in low and _NAME_PARAM.search(low):
        return True
    start = 0
    while (found := low.find(b"content-type:", start)) >= 0:
        start = found + 13
        value = low[start : start + 64].lstrip(b' \t\r\n"')
        if not value.startswith(plain):
            return True
    return False


# An address header value that ``mime._addresses`` would turn into exactly
# these groups: one plain ASCII address, bare or after a display name of
# letters and digits in words separated by single spaces (no quotes,
# comments, encoded words, folding or 8-bit bytes). Anything else takes
# ``mime._addresses``.
_SIMPLE_ADDRESS = re.compile(
    r"[ \t]*(?:([A-Za-z0-9]+(?: [A-Za-z0-9]+)*) ?<"
    r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
    r"|([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*))"
    r"[ \t]*"
)


def _addresses(
    header: email.message.Message, name: str, problems: mime._Problems
) -> tuple[mime.Address, ...]:
    """``mime._addresses``, with a fast path for a plain single address."""
    raws = mime._raw_headers(header, name)  # noqa: SLF001
    result: list[mime.Address] = []
    for raw in raws:
        match = _SIMPLE_ADDRESS.fullmatch(raw) if isinstance(raw, str) else None
        if match is None:
            return mime._addresses(header, name, problems)  # noqa: SLF001
        display, bracketed, bare = match.groups()
        result.append(mime.Address(name=display or "", email=bracketed or bare))
    return tuple(result)


# A header field's name as the ``email`` feed parser accepts it (its
# ``headerRE``): printable ASCII but ":" (and no "From " line, see below).
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+:")


# The fields the list columns come from (lower case).
_COLUMN_FIELDS = frozenset({"subject", "from", "to", "date", "message-id"})


def _header_block(block: bytes) -> email.message.Message:
    """The header block parsed as ``BytesHeaderParser(policy=compat32)`` does.

    A plain block (ASCII, every line ending in CRLF, every line a "Name:"
    field or a folded continuation of one) is split here, several times
    faster, into the same (name, raw value) list the parser makes, keeping
    only the fields of ``_COLUMN_FIELDS``; anything else (8-bit bytes, bare
    CR or LF, an mbox "From " line, a line the parser would take as the start
    of the body) goes through the parser itself (all fields kept).
    """
    fields = _plain_fields(block, keep=_COLUMN_FIELDS)
    if fields is None:
        return BytesHeaderParser(policy=email.policy.compat32).parsebytes(block)
    message = email.message.Message(policy=email.policy.compat32)
    message._headers = fields  # noqa: SLF001 - what the parser fills in
    return message


def _plain_fields(
    block: bytes, *, keep: frozenset[str] | None = None
) -> list[tuple[str, str]] | None:
    """(name, raw value) of each field of a plain header block, else None.

    Raw values as compat32's ``header_source_parse`` makes them: the text
    after the colon without leading blanks, continuation lines joined with
    their CRLFs, the final line end dropped. With ``keep``, only the fields
    whose lower-case name is in it (the block is still checked whole).
    """
    if not block.isascii() or _PLAIN_BLOCK.fullmatch(block) is None:
        return None
    fields: list[tuple[str, str]] = []
    for name, value in _PLAIN_FIELD.findall(block.decode("ascii")):
        if keep is None or name.lower() in keep:
            fields.append((name, value.lstrip(" \t")))
    return fields


# A plain header block: fields of printable ASCII names (the feed parser's
# ``headerRE`` without its "From " case) and CRLF lines, folded lines
# starting with a blank, up to and with the empty line (or the end).
_PLAIN_BLOCK = re.compile(
    rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*(?:\r\n)?"
)
_PLAIN_FIELD = re.compile(
    r"^([\x21-\x39\x3b-\x7e]+):([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n", re.M
)


# The usual RFC 5322 date, "Sat, 28 Nov 2026 06:07:08 +0100": read here
# without ``email.utils`` (a fifth of the columns' time); any other form, or
# a value out of range, takes ``mime._parse_date``.
_USUAL_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([1-9][0-9]{3}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)
_MONTHS = {
    "Jan": 1,
    "Feb": 2,
    "Mar": 3,
    "Apr": 4,
    "May": 5,
    "Jun": 6,  # fmt: skip
    "Jul": 7,
    "Aug": 8,
    "Sep": 9,
    "Oct": 10,
    "Nov": 11,
    "Dec": 12,  # fmt: skip
}


def _quick_date(text: str | None) -> datetime | None:
    """The instant of a Date value in the usual form, else None (parse it then)."""
    match = _USUAL_DATE.fullmatch(text) if text else None
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
    try:
        return datetime(
            int(year),
            _MONTHS[month],
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=dt_timezone(-offset if sign == "-" else offset),
        )
    except ValueError:
        return None


def _header_columns(head: bytes) -> MessageColumns:
    """The list columns from the header block alone (no MIME tree); never raises.

    Uses the same header decoding as ``mime.parse_message`` (encoded words,
    raw 8-bit, control characters), so the columns are the ones a full parse
    gives, at a small fraction of its cost.
    """
    match = _HEADER_END.search(head)
    block = head[: match.end()] if match else head
    try:
        header = _header_block(block)
        problems = mime._Problems()  # noqa: SLF001 - the parser's own helpers
        subject = mime._single_header(header, "Subject", problems) or ""  # noqa: SLF001
        from_ = _addresses(header, "From", problems)
        to = _addresses(header, "To", problems)
        date_text = mime._single_header(header, "Date", problems)  # noqa: SLF001
        date = _quick_date(date_text) or mime._parse_date(date_text, problems)  # noqa: SLF001
        ids = mime._msg_ids(mime._single_header(header, "Message-ID", problems))  # noqa: SLF001
    except Exception:  # noqa: BLE001 - a bad header still gets a row
        logger.warning("a message header could not be read")
        return MessageColumns()
    return MessageColumns(
        subject=subject,
        from_name=from_[0].name[:255] if from_ else "",
        from_email=from_[0].email[:320] if from_ else "",
        to_text=", ".join(_address_text(a) for a in to)[:_TO_TEXT_LIMIT],
        date=_aware(date),
        message_id=(ids[0] if ids else "")[:998],
    )


def _parsed_columns(head: bytes) -> MessageColumns:
    """The list columns from a full parse of the whole message (exact)."""
    parsed = mime.parse_message(head)
    return MessageColumns(
        subject=parsed.subject or "",
        from_name=parsed.from_[0].name[:255] if parsed.from_ else "",
        from_email=parsed.from_[0].email[:320] if parsed.from_ else "",
        to_text=", ".join(_address_text(a) for a in parsed.to)[:_TO_TEXT_LIMIT],
        date=_aware(parsed.date),
        message_id=(parsed.message_id or "")[:998],
        has_attachments=bool(parsed.attached_messages)
        or any(not attachment.is_inline for attachment in parsed.attachments),
    )


def describe(head: bytes, *, whole: bool) -> MessageColumns:
    """The list columns of a message from its first bytes; never raises.

    ``head`` is the whole message (``whole``) or at least its header. A whole
    message's header gives the columns, and the message is parsed in full only
    when it may hold an attachment (``_may_have_attachments``), so
    ``has_attachments`` is exact. Otherwise only the header is read and a
    top-level multipart/mixed is taken as "has attachments".
    """
    if not whole:
        match = _HEADER_END.search(head)
        head = head[: match.end()] if match else head[:HEADER_PARSE_LIMIT]
    try:
        if whole and _may_have_attachments(head):
            return _parsed_columns(head)
        columns = _header_columns(head)
        if not whole and _multipart_mixed_hint(head):
            columns = replace(columns, has_attachments=True)
    except Exception:  # noqa: BLE001 - a bad message still gets a row
        logger.warning("a message header could not be read")
        return MessageColumns()
    return columns


def _blob_columns(blob_name: str) -> MessageColumns:
    """The list columns of a stored blob; empty ones if it cannot be read/parsed."""
    try:
        head, whole = _head_bytes(blob_name)
    except Exception:  # noqa: BLE001 - an unreadable blob still gets a row
        logger.warning("blob %s: header could not be read", blob_name)
        return MessageColumns()
    return describe(head, whole=whole)


def _data_columns(data: bytes) -> MessageColumns:
    """The list columns of a message's bytes at hand (an inline message)."""
    whole = len(data) <= HEADER_PARSE_LIMIT
    return describe(data if whole else data[: HEADER_PARSE_LIMIT + 1], whole=whole)


def _message_row(
    *,
    user: User,
    account: MailAccount | None,
    folder: LocalFolder,
    uidl: str,
    blob_name: str,
    size: int,
    received_at: datetime,
    modseq: int,
    columns: MessageColumns | None = None,
    data: bytes | None = None,
) -> StoredMessage:
    if columns is None:
        columns = _blob_columns(blob_name) if data is None else _data_columns(data)
    source = ""
    if account is not None:
        source = f"{account.host} ({account.label})"[:255]
    return StoredMessage(
        user=user,
        folder=folder,
        account=account,
        uidl=uidl[:255],
        message_id=columns.message_id,
        subject=columns.subject,
        from_name=columns.from_name,
        from_email=columns.from_email,
        to_text=columns.to_text,
        date=columns.date,
        received_at=received_at,
        source=source,
        size=size,
        has_attachments=columns.has_attachments,
        blob=blob_name,
        modseq=modseq,
    )


def message_add(
    *,
    user: User,
    account: MailAccount | None,
    folder: LocalFolder,
    uidl: str,
    blob_name: str = "",
    size: int,
    received_at: datetime | None = None,
    data: bytes | None = None,
) -> StoredMessage:
    """Add a message to ``folder``: the stored blob ``blob_name``, or ``data``.

    With ``data`` (and no blob) the bytes go into the database with the row
    (``InlineRaw``; see mailbox/store/raw.py for which messages). The list
    columns (subject, sender, recipients, Date, Message-ID) come from the
    message's header; for blobs up to 256 KiB ``has_attachments`` is exact (a
    non-inline attachment or an attached message: the whole message is parsed
    when it may have one); for larger ones only the header is read and a
    top-level multipart/mixed is taken as "has attachments". A message that
    cannot be parsed, or a blob that cannot be read, still gets a row (with
    empty columns). Expects the caller's transaction: the importer adds the
    ledger row and the quota charge in the same one.
    """
    if folder.user_id != user.pk:
        raise ValueError("folder of another user")
    if bool(blob_name) == (data is not None):
        raise ValueError("give either a blob or the bytes")
    message = _message_row(
        user=user,
        account=account,
        folder=folder,
        uidl=uidl,
        blob_name=blob_name,
        size=size,
        received_at=received_at or timezone.now(),
        modseq=0,
        data=data,
    )
    message.modseq = next_modseq(user=user)
    message.save(force_insert=True)
    if data is not None:
        InlineRaw.objects.create(message=message, data=data)
    return message


def messages_add(
    *,
    user: User,
    account: MailAccount | None,
    folder: LocalFolder,
    items: Sequence[tuple[str, str, int]],
    columns: Sequence[MessageColumns | None] | None = None,
    received_at: datetime | None = None,
    inline: Sequence[bytes | None] | None = None,
) -> list[int]:
    """``message_add`` for many at once: ``items`` are (uidl, blob, size).

    ``inline`` may give an item's bytes, kept in the database (its blob is
    then ""). ``columns`` may give each item's list columns (``describe`` of
    its bytes, taken while they were at hand); a missing one is read from the
    blob or the bytes. One modseq range, one INSERT run by the driver for all
    rows (``_insert_many``), one SELECT for their ids and one INSERT for the
    inline bytes; returns the new rows' ids in the order of ``items``.
    Expects the caller's transaction.
    """
    if folder.user_id != user.pk:
        raise ValueError("folder of another user")
    if not items:
        return []
    datas: Sequence[bytes | None] = inline or [None] * len(items)
    if len(datas) != len(items) or any(
        bool(blob_name) == (data is not None)
        for (_uidl, blob_name, _size), data in zip(items, datas, strict=True)
    ):
        raise ValueError("give each item either a blob or its bytes")
    when = received_at or timezone.now()
    first = next_modseq(user=user, count=len(items)) - len(items) + 1
    source = f"{account.host} ({account.label})"[:255] if account is not None else ""
    account_id = account.pk if account is not None else None
    rows = []
    for index, (uidl, blob_name, size) in enumerate(items):
        cols = columns[index] if columns else None
        if cols is None:
            data = datas[index]
            cols = _blob_columns(blob_name) if data is None else _data_columns(data)
        rows.append(
            (
                user.pk,
                folder.pk,
                account_id,
                uidl[:255],
                cols.message_id,
                cols.subject,
                cols.from_name,
                cols.from_email,
                cols.to_text,
                cols.date,
                when,
                source,
                size,
                cols.has_attachments,
                blob_name,
                first + index,
            )
        )
    _insert_many(StoredMessage, _MESSAGE_FIELDS, rows)
    # The modseqs were just taken from the user's counter: only these rows
    # have them, one each (``first + index``).
    ids = dict(
        StoredMessage.objects.filter(
            user=user, modseq__gte=first, modseq__lte=first + len(items) - 1
        ).values_list("modseq", "pk")
    )
    pks = [ids[first + index] for index in range(len(items))]
    _insert_many(
        InlineRaw,
        ("message_id", "data"),
        [(pk, data) for pk, data in zip(pks, datas, strict=True) if data is not None],
    )
    return pks


_MESSAGE_FIELDS = (
    "user_id",
    "folder_id",
    "account_id",
    "uidl",
    "message_id",
    "subject",
    "from_name",
    "from_email",
    "to_text",
    "date",
    "received_at",
    "source",
    "size",
    "has_attachments",
    "blob",
    "modseq",
)


def ledger_add(
    *,
    account: MailAccount,
    entries: Sequence[tuple[str, int, int | None]],
    imported_at: datetime | None = None,
) -> None:
    """Ledger rows for newly imported messages: ``entries`` are (uidl, size, id).

    ``id`` is the StoredMessage the uidl became. One INSERT run by the driver
    for all rows; a uidl already in the account's ledger raises IntegrityError
    (the ``uidl_once`` constraint) and nothing is added. Expects the caller's
    transaction (the importer's, with the message rows and the quota).
    """
    when = imported_at or timezone.now()
    imported = UidlEntry.State.IMPORTED
    _insert_many(
        UidlEntry,
        ("account_id", "uidl", "state", "size", "imported_at", "message_id"),
        [(account.pk, uidl, imported, size, when, pk) for uidl, size, pk in entries],
    )


def _insert_many(
    model: type[Model], names: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """INSERT ``rows`` (values of the fields ``names``, by attname) in one go.

    What ``bulk_create`` does without its per-row cost (a model instance and
    a prepared value per field and row, ~0.5 ms a StoredMessage row): the
    values go to the driver's ``executemany`` as they are, except datetimes,
    adapted as the ORM adapts them (aware, stored as UTC), and the fields not
    in ``names`` get their model default, prepared once. Only for plain
    values (ints, strings, bytes, booleans, None, aware datetimes), on any
    backend.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    ops = connection.ops
    by_name = {field.attname: field for field in model._meta.concrete_fields}
    given = [by_name[name] for name in names]
    rest = [
        field
        for field in model._meta.concrete_fields
        if field.attname not in names and not field.primary_key
    ]
    if any(getattr(field, "auto_now", False) for field in rest) or any(
        getattr(field, "auto_now_add", False) for field in rest
    ):
        raise ValueError("an auto_now field must be given")  # no pre_save here
    defaults = tuple(
        field.get_db_prep_save(field.get_default(), connection) for field in rest
    )
    stamps = [
        index
        for index, field in enumerate(given)
        if field.get_internal_type() == "DateTimeField"
    ]
    params: list[Sequence[object]] = []
    # A batch's rows share their import time: each distinct value is adapted
    # once (~2.5 us a call on SQLite).
    adapted: dict[object, object] = {}
    for row in rows:
        if stamps:
            row = list(row)
            for index in stamps:
                value = row[index]
                if value not in adapted:
                    adapted[value] = ops.adapt_datetimefield_value(value)
                row[index] = adapted[value]
        params.append((*row, *defaults))
    columns = ", ".join(ops.quote_name(field.column) for field in (*given, *rest))
    marks = ", ".join(["%s"] * (len(given) + len(rest)))
    table = ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608 - names from the model
            params,
        )


# -- changing messages -------------------------------------------------------------


def _selected(
    user: User, folder: LocalFolder, ids: Sequence[int]
) -> QuerySet[StoredMessage]:
    wanted = sorted({int(pk) for pk in ids})
    return StoredMessage.objects.filter(user=user, folder=folder, pk__in=wanted)


@transaction.atomic
def messages_set_flags(
    *,
    user: User,
    folder: LocalFolder,
    ids: Sequence[int],
    seen: bool | None = None,
    flagged: bool | None = None,
) -> int:
    """Set or clear seen/flagged on the user's messages ``ids`` of ``folder``.

    None leaves a flag alone; ids not in the folder (or not the user's) are
    ignored. Only rows that change get a new modseq. Returns how many changed.
    """
    changes = {
        name: value
        for name, value in (("seen", seen), ("flagged", flagged))
        if value is not None
    }
    if not changes or not ids:
        return 0
    differs = Q()
    for name, value in changes.items():
        differs |= ~Q(**{name: value})
    rows = _selected(user, folder, ids).filter(differs)
    if not rows.exists():
        return 0
    # Keep when each row came into its folder (delta sync): a NULL means "at
    # its insert", i.e. its modseq until this first change.
    return rows.update(
        **changes,
        arrived_modseq=Coalesce("arrived_modseq", "modseq"),
        modseq=next_modseq(user=user),
    )


@transaction.atomic
def messages_move(
    *, user: User, folder: LocalFolder, ids: Sequence[int], to_folder: LocalFolder
) -> int:
    """Move the user's messages ``ids`` from ``folder`` to ``to_folder``.

    Ids not in ``folder`` are ignored; moving to the same folder does nothing.
    Raises ValueError when ``to_folder`` is not the user's. Returns how many moved.
    """
    if to_folder.user_id != user.pk:
        raise ValueError("target folder of another user")
    if to_folder.pk == folder.pk or not ids:
        return 0
    moved = list(
        _selected(user, folder, ids).select_for_update().values_list("pk", flat=True)
    )
    if not moved:
        return 0
    modseq = next_modseq(user=user)
    # Delta sync: removed from ``folder``, arrived in ``to_folder``.
    tombstones_add(user=user, folder_id=folder.pk, ids=moved, modseq=modseq)
    return StoredMessage.objects.filter(user=user, pk__in=moved).update(
        folder=to_folder, modseq=modseq, arrived_modseq=modseq
    )


def _purge(user: User, rows: QuerySet[StoredMessage]) -> int:
    """Delete ``rows`` for good (inside the caller's transaction)."""
    doomed = list(
        rows.select_for_update().values(
            "pk", "blob", "size", "account_id", "uidl", "folder_id"
        )
    )
    if not doomed:
        return 0
    pks = [row["pk"] for row in doomed]
    UidlEntry.objects.filter(message_id__in=pks).update(
        state=UidlEntry.State.DELETED_HERE
    )
    # Ledger rows that lost their link to the message still match by UIDL.
    for row in doomed:
        if row["account_id"] and row["uidl"]:
            UidlEntry.objects.filter(
                account_id=row["account_id"], uidl=row["uidl"]
            ).update(state=UidlEntry.State.DELETED_HERE)
    StoredMessage.objects.filter(user=user, pk__in=pks).delete()
    quota_release(user_id=user.pk, size=sum(row["size"] for row in doomed))
    modseq = next_modseq(user=user)
    for folder_id in {row["folder_id"] for row in doomed}:
        tombstones_add(
            user=user,
            folder_id=folder_id,
            ids=[row["pk"] for row in doomed if row["folder_id"] == folder_id],
            modseq=modseq,
        )
    # Inline bytes go with their rows (CASCADE); blobs once this commits.
    names = [row["blob"] for row in doomed if row["blob"]]
    if names:
        transaction.on_commit(lambda: _delete_blobs(names))
    return len(doomed)


def _delete_blobs(names: Sequence[str]) -> None:
    for name in names:
        try:
            blobs.blob_delete(name)
        except OSError:
            # An orphan blob holds no quota; a cleanup job can find it later.
            logger.warning("blob %s could not be deleted", name)


@transaction.atomic
def messages_delete(*, user: User, folder: LocalFolder, ids: Sequence[int]) -> int:
    """Move the user's messages ``ids`` to the Trash; in the Trash, delete for good.

    Deleting for good removes the rows, gives their bytes back to the quota,
    marks their ledger entries DELETED_HERE (the importer never brings them
    back) and deletes their blobs once the transaction has committed. Returns
    how many messages were moved or deleted.
    """
    if not ids:
        return 0
    trash = special_folder(user=user, use=LocalFolder.Use.TRASH)
    if folder.pk != trash.pk:
        return messages_move(user=user, folder=folder, ids=ids, to_folder=trash)
    return _purge(user, _selected(user, folder, ids))


@transaction.atomic
def trash_empty(*, user: User) -> int:
    """Delete every message in the user's Trash for good; return how many."""
    trash = special_folder(user=user, use=LocalFolder.Use.TRASH)
    return _purge(user, StoredMessage.objects.filter(user=user, folder=trash))
