"""Message lists of an IMAP folder: one page of headers, never body bytes.

The order of a folder (or of a search in it) is a list of UIDs: from ``UID SORT``
when the server has SORT (RFC 5256), else from ``UID SEARCH`` and a cheap
``UID FETCH`` of the one sort key (INTERNALDATE, RFC822.SIZE, or the From or
Subject field), sorted here as RFC 5256 would. Only the UIDs of the requested
page are then fetched, in one ``UID FETCH`` of ENVELOPE, FLAGS, RFC822.SIZE,
BODYSTRUCTURE and INTERNALDATE.

The ordered UID lists can be kept in an :class:`OrderCache`, so a repeat view of an
unchanged folder costs one SELECT and one FETCH, whatever the folder's size.
"""

from __future__ import annotations

import calendar
import imaplib
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from imapclient.exceptions import IMAPClientError
from imapclient.imapclient import _literal

from mailbox.mime import Address, decode_header_value
from mailbox.sources import (
    FolderChanged,
    ListQuery,
    MessagePage,
    MessageSummary,
    Neighbours,
    SearchField,
    SortKey,
)

if TYPE_CHECKING:
    from imapclient import IMAPClient

__all__ = [
    "FolderState",
    "OrderCache",
    "list_page",
    "neighbours",
    "search_criteria",
    "select",
]

LIST_ITEMS = ["ENVELOPE", "FLAGS", "RFC822.SIZE", "BODYSTRUCTURE", "INTERNALDATE"]

# Sorting by sender or subject makes the server read the headers of every
# message in the folder (seconds on a big one): above this size a list stays in
# arrival order, as it does for THREAD, which is never asked for.
HEADER_SORT_LIMIT = 10_000


# Without SORT, the sort keys are fetched for at most this many UID ranges per
# command (1,000 ranges are at most ~12 KB; Dovecot refuses lines above 64 KB).
LOCAL_SORT_BATCH = 1_000


def header_sort_refused(query: ListQuery, state: FolderState) -> bool:
    """Whether a list is shown in arrival order instead of the order asked for.

    With SORT: sender and subject orders of folders above HEADER_SORT_LIMIT.
    ``sort_refused`` also covers servers without SORT.
    """
    return (
        query.sort in (SortKey.FROM, SortKey.SUBJECT)
        and state.exists > HEADER_SORT_LIMIT
    )


def sort_refused(
    client: IMAPClient, query: ListQuery, state: FolderState, matched: int
) -> bool:
    """Whether the list of ``matched`` messages is not in the order asked for.

    Without SORT the order is computed here from one fetched key per message, for
    at most HEADER_SORT_LIMIT messages; above that the list is in UID order, which
    is arrival order for SortKey.DATE (so only other keys count as refused).
    """
    if client.has_capability("SORT"):
        return header_sort_refused(query, state)
    return query.sort != SortKey.DATE and matched > HEADER_SORT_LIMIT


_SORT_KEYS = {
    SortKey.DATE: "ARRIVAL",
    SortKey.FROM: "FROM",
    SortKey.SUBJECT: "SUBJECT",
    SortKey.SIZE: "SIZE",
}
_SEARCH_KEYS = {
    SearchField.FROM: "FROM",
    SearchField.TO: "TO",
    SearchField.SUBJECT: "SUBJECT",
    SearchField.BODY: "BODY",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Printable ASCII without the atom-specials that imapclient would send unquoted:
# "( ) { % * ]" (RFC 3501 §9). Space, '"' and '\\' make imapclient quote the value.
_PLAIN_TEXT = re.compile(r"[\x20-\x7e]*")
_ATOM_SPECIALS = re.compile(r"[(){%*\]]")

SEEN = b"\\Seen"
FLAGGED = b"\\Flagged"
ANSWERED = b"\\Answered"


@dataclass(frozen=True)
class FolderState:
    """What SELECT/EXAMINE says about a folder."""

    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int | None = None


def _is_abort(exc: Exception) -> bool:
    return isinstance(exc, imaplib.IMAP4.abort)


def _select(client: IMAPClient, folder: str) -> dict[bytes, Any]:
    try:
        return client.select_folder(folder)
    except imaplib.IMAP4.error as exc:
        if _is_abort(exc):
            raise
        # A NO to SELECT: the folder does not exist (any more) or cannot be opened.
        raise FolderChanged(folder) from exc


def select(client: IMAPClient, folder: str) -> FolderState:
    """Open ``folder`` read-write and return its state.

    Re-opening a big folder costs Dovecot ~5 ms at 10,000 messages and ~100 ms at
    100,000, so a connection that already has ``folder`` selected only sends NOOP
    (the session learns of new and expunged messages) and STATUS (UIDVALIDITY,
    UIDNEXT, MESSAGES, HIGHESTMODSEQ; STATUS on the selected folder is discouraged
    by RFC 3501 §6.3.10 for its counts, which is why NOOP comes first). Listing
    and reading share the read-write selection, so switching between a list and
    a message does not re-open the folder either; nothing here changes flags
    except what the caller asks for (BODY.PEEK).

    When the server has CONDSTORE (and UNSELECT) and the session has not enabled
    it yet, the folder is unselected, CONDSTORE enabled (RFC 7162) and the folder
    selected again, once per connection, so HIGHESTMODSEQ is known from then on.
    Raises FolderChanged when the folder does not exist.
    """
    # Our connections (mailbox.imap.session) know which folder they have open.
    if getattr(client, "selected_folder", None) == folder:
        return _refresh(client, folder)
    info = _select(client, folder)
    if (
        b"HIGHESTMODSEQ" not in info
        and b"NOMODSEQ" not in info
        and client.has_capability("CONDSTORE")
        and client.has_capability("UNSELECT")
    ):
        # ENABLE is only valid with no folder selected (RFC 5161 §3.1), and
        # UNSELECT leaves a folder without expunging (CLOSE would expunge).
        client.unselect_folder()
        client.enable("CONDSTORE")
        info = _select(client, folder)
    modseq = info.get(b"HIGHESTMODSEQ")
    return FolderState(
        uidvalidity=int(info[b"UIDVALIDITY"]),
        uidnext=int(info.get(b"UIDNEXT", 0)),
        exists=int(info.get(b"EXISTS", 0)),
        highestmodseq=int(modseq) if modseq is not None else None,
    )


def _refresh(client: IMAPClient, folder: str) -> FolderState:
    items = [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"]
    if client.has_capability("CONDSTORE"):
        items.append(b"HIGHESTMODSEQ")
    try:
        _text, untagged = client.noop()
        if any(
            isinstance(reply, tuple) and reply[:1] in ((b"NO",), (b"BAD",))
            for reply in untagged
        ):
            # The open folder was deleted (and maybe re-created) by another
            # client: Dovecot says "NO Internal error" to NOOP and goes on
            # answering STATUS from the old folder. Only a new SELECT tells.
            client.selected_folder = None
            return select(client, folder)
        status = client.folder_status(folder, items)
    except imaplib.IMAP4.error as exc:
        if _is_abort(exc):
            raise
        raise FolderChanged(folder) from exc
    modseq = status.get(b"HIGHESTMODSEQ")
    return FolderState(
        uidvalidity=int(status[b"UIDVALIDITY"]),
        uidnext=int(status.get(b"UIDNEXT", 0)),
        exists=int(status.get(b"MESSAGES", 0)),
        highestmodseq=int(modseq) if modseq is not None else None,
    )


def open_checked(client: IMAPClient, folder: str, validity: int) -> FolderState:
    """Select ``folder``; FolderChanged unless its UIDVALIDITY is ``validity``."""
    state = select(client, folder)
    if state.uidvalidity != validity:
        raise FolderChanged(folder)
    return state


# --------------------------------------------------------------------------- search


def _search_text(text: str) -> str | bytes:
    """The user's search text as one criteria element imapclient sends safely.

    Control characters become spaces. Text that imapclient would send as a bare
    atom although it holds atom-specials (``a(b``, ``{5}``) is sent as a literal,
    as is non-ASCII text (imapclient does that itself): it can never change the
    command's syntax.
    """
    text = _CONTROL.sub(" ", text)
    if _PLAIN_TEXT.fullmatch(text) and not (
        _ATOM_SPECIALS.search(text) and " " not in text
    ):
        return text
    return _literal(text.encode("utf-8"))


def search_criteria(query: ListQuery) -> list[str | bytes]:
    """IMAP search keys for a query (``["ALL"]`` when it filters nothing).

    ``SearchField.ALL`` is ``OR OR OR FROM x TO x SUBJECT x BODY x``: exactly the
    four fields its name promises (TEXT would also match every other header).
    """
    criteria: list[str | bytes] = []
    if query.unread_only:
        criteria.append("UNSEEN")
    if query.flagged_only:
        criteria.append("FLAGGED")
    text = query.text.strip()
    if text:
        value = _search_text(text)
        if query.field == SearchField.ALL:
            criteria += ["OR", "OR", "OR"]
            for key in ("FROM", "TO", "SUBJECT", "BODY"):
                criteria += [key, value]
        else:
            criteria += [_SEARCH_KEYS[query.field], value]
    return criteria or ["ALL"]


def _needs_utf8(query: ListQuery) -> bool:
    return not query.text.isascii()


# ---------------------------------------------------------------------- the cache


class OrderCache:
    """An in-process LRU of ordered UID lists; thread-safe, at most ``max_entries``.

    An entry is keyed by (scope, folder, sort, reverse, search) and validated by a
    token from SELECT: (UIDVALIDITY, UIDNEXT, EXISTS), which changes whenever a
    message is added to or removed from the folder; for queries that filter on
    flags (unread / flagged only) HIGHESTMODSEQ is added, so a flag change
    invalidates them too. Such queries are not cached on servers without
    CONDSTORE. Sort keys and text searches do not depend on flags, so a flag
    change does not make their order stale (the flags shown come from the FETCH).

    ``scoped(key)`` gives a view sharing the same storage under a caller's key
    (for instance an account id and a fingerprint of its server settings), so one
    process-wide cache serves every account without mixing them.
    """

    def __init__(self, max_entries: int = 64) -> None:
        self._store = _Store(max_entries)
        self._scope: Hashable = None

    @property
    def max_entries(self) -> int:
        return self._store.max_entries

    @property
    def hits(self) -> int:
        """Valid entries found, over every view of this cache."""
        return self._store.hits

    @property
    def misses(self) -> int:
        """Lookups that found no valid entry, over every view of this cache."""
        return self._store.misses

    def scoped(self, key: Hashable) -> OrderCache:
        """A view of this cache whose entries are apart from every other scope's."""
        view = OrderCache.__new__(OrderCache)
        view._store = self._store
        view._scope = (self._scope, key)
        return view

    def get(self, key: Hashable, token: Hashable) -> tuple[int, ...] | None:
        """The UIDs stored under ``key`` if stored with ``token``; a stale entry is
        dropped."""
        store = self._store
        full_key = (self._scope, key)
        with store.lock:
            entry = store.entries.get(full_key)
            if entry is None or entry[0] != token:
                if entry is not None:
                    del store.entries[full_key]
                store.misses += 1
                return None
            store.entries.move_to_end(full_key)
            store.hits += 1
            return entry[1]

    def put(self, key: Hashable, token: Hashable, uids: Sequence[int]) -> None:
        """Store ``uids`` under ``key``; the least recently used entry goes first."""
        store = self._store
        full_key = (self._scope, key)
        with store.lock:
            store.entries[full_key] = (token, tuple(uids))
            store.entries.move_to_end(full_key)
            while len(store.entries) > store.max_entries:
                store.entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry, of every scope."""
        with self._store.lock:
            self._store.entries.clear()

    def __len__(self) -> int:
        with self._store.lock:
            return len(self._store.entries)


class _Store:
    """The storage an OrderCache and its scoped views share."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max(1, max_entries)
        self.entries: OrderedDict[Hashable, tuple[Hashable, tuple[int, ...]]] = (
            OrderedDict()
        )
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0


def _cache_key(folder: str, query: ListQuery) -> Hashable:
    return (
        folder,
        str(query.sort),
        query.reverse,
        query.text.strip(),
        str(query.field) if query.text.strip() else None,
        query.unread_only,
        query.flagged_only,
    )


def _cache_token(state: FolderState, query: ListQuery) -> Hashable | None:
    token: tuple[int, ...] = (state.uidvalidity, state.uidnext, state.exists)
    if query.unread_only or query.flagged_only:
        if state.highestmodseq is None:
            return None
        token += (state.highestmodseq,)
    return token


# ---------------------------------------------------------------------- the order


def ordered_uids(
    client: IMAPClient,
    folder: str,
    query: ListQuery,
    state: FolderState,
    cache: OrderCache | None = None,
) -> tuple[int, ...]:
    """UIDs of the messages matching ``query``, in the query's order.

    The folder must be selected (``state`` is what selecting it said). With SORT:
    ``UID SORT`` (ARRIVAL, FROM, SUBJECT or SIZE, REVERSE as asked, CHARSET UTF-8)
    with the search keys in the same command. Without SORT: ``UID SEARCH``, then
    (see :func:`sort_here`) the sort key of each match fetched and sorted here, for
    up to HEADER_SORT_LIMIT matches; above that UID order (reversed as asked).
    """
    key = _cache_key(folder, query)
    token = _cache_token(state, query)
    if cache is not None and token is not None:
        cached = cache.get(key, token)
        if cached is not None:
            return cached
    criteria = search_criteria(query)
    if state.exists == 0:
        uids: list[int] = []
    elif client.has_capability("SORT"):
        sort_key = SortKey.DATE if header_sort_refused(query, state) else query.sort
        sort = [_SORT_KEYS[sort_key]]
        if query.reverse:
            sort.insert(0, "REVERSE")
        uids = client.sort(sort, criteria, "UTF-8")
    else:
        charset = "UTF-8" if _needs_utf8(query) else None
        uids = sort_here(client, sorted(client.search(criteria, charset)), query)
    result = tuple(int(uid) for uid in uids)
    if cache is not None and token is not None:
        cache.put(key, token, result)
    return result


# Subject prefixes RFC 5256 §2.1 strips to find the base subject: "Re:",
# "Fw:", "Fwd:" (each optionally with a "[blob]" before the colon), leading
# "[blob]"s, and a trailing "(fwd)".
_SUBJ_LEADER = re.compile(
    r"^(?:\s*(?:re|fwd?)\s*(?:\[[^\[\]]*\]\s*)?:|\s*\[[^\[\]]*\](?=\s*\S))\s*",
    re.IGNORECASE,
)
_SUBJ_TRAILER = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)


def base_subject(subject: str) -> str:
    """The RFC 5256 base subject: without reply and forward markers, list tags
    and extra spaces (SORT SUBJECT compares it through :func:`casemap`)."""
    text = " ".join(subject.split())
    while True:
        stripped = _SUBJ_TRAILER.sub("", text)
        while True:
            shorter = _SUBJ_LEADER.sub("", stripped, count=1)
            if shorter == stripped:
                break
            stripped = shorter
        if stripped == text:
            return text
        text = stripped


def casemap(text: str) -> str:
    """The i;unicode-casemap form of ``text`` (RFC 5051), which SORT compares:
    each character titlecased, then NFKD; compared by code point (= UTF-8 order).
    """
    if text.isascii():
        return text.upper()
    return unicodedata.normalize("NFKD", "".join(char.title() for char in text))


_SORT_ITEMS = {
    SortKey.DATE: "INTERNALDATE",
    SortKey.SIZE: "RFC822.SIZE",
    SortKey.FROM: "BODY.PEEK[HEADER.FIELDS (FROM)]",
    SortKey.SUBJECT: "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
}
_RAW_UID = re.compile(rb"[( ]UID (\d+)", re.IGNORECASE)
_RAW_DATE = re.compile(rb'INTERNALDATE "([^"]+)"', re.IGNORECASE)
_RAW_SIZE = re.compile(rb"RFC822\.SIZE (\d+)", re.IGNORECASE)
_HEADER_VALUE = re.compile(rb"^[^:\r\n]+:[ \t]*(.*)", re.DOTALL)
_ANGLE_MAILBOX = re.compile(rb"<\s*([^<>@\s]*)@")
_BARE_MAILBOX = re.compile(rb"([^\s<>,;:\"()]+)@")
_MONTHS = {
    month: number
    for number, month in enumerate(
        (b"jan", b"feb", b"mar", b"apr", b"may", b"jun")
        + (b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"),
        start=1,
    )
}


def _uid_ranges(uids: Sequence[int]) -> list[str]:
    """Ascending UIDs as IMAP ranges ("1:40", "42", "50:51")."""
    ranges: list[str] = []
    first = last = None
    for uid in uids:
        if last is not None and uid == last + 1:
            last = uid
            continue
        if first is not None:
            ranges.append(f"{first}:{last}" if last != first else str(first))
        first = last = uid
    if first is not None:
        ranges.append(f"{first}:{last}" if last != first else str(first))
    return ranges


def _header_key(sort: SortKey, header: bytes) -> str:
    """The sort value of a raw ``From:`` or ``Subject:`` header line."""
    unfolded = re.sub(rb"\r?\n[ \t]", b" ", header).strip()
    match = _HEADER_VALUE.match(unfolded)
    value = match.group(1) if match else b""
    if sort == SortKey.SUBJECT:
        if value.isascii() and b"=?" not in value:  # most subjects: no decoding
            return casemap(base_subject(value.decode("ascii")))
        return casemap(base_subject(decode_header_value(value)))
    # SORT FROM compares the mailbox part of the first From address (RFC 5256 §3):
    # the part before "@" of "Name <box@host>" or of a bare "box@host".
    match = _ANGLE_MAILBOX.search(value) or _BARE_MAILBOX.search(value)
    if match is None:
        return ""
    return casemap(match.group(1).decode("utf-8", "replace"))


def _internaldate(text: bytes) -> Any:
    """An INTERNALDATE (``"dd-Mon-yyyy hh:mm:ss +zzzz"``) as a comparable UTC
    number; the epoch when it cannot be read."""
    try:
        day, month, rest = text.split(b"-", 2)
        year, clock, zone = rest.split(b" ")
        hour, minute, second = (int(part) for part in clock.split(b":"))
        offset = int(zone[1:3]) * 3600 + int(zone[3:5]) * 60
        if zone[:1] == b"-":
            offset = -offset
        stamp = calendar.timegm(
            (int(year), _MONTHS[month.lower()], int(day), hour, minute, second)
        )
    except (ValueError, KeyError, IndexError):
        return 0
    return stamp - offset


def _raw_sort_value(sort: SortKey, line: bytes, literal: bytes | None) -> Any:
    if sort == SortKey.DATE:
        match = _RAW_DATE.search(line)
        return None if match is None else _internaldate(match.group(1).strip())
    if sort == SortKey.SIZE:
        match = _RAW_SIZE.search(line)
        return int(match.group(1)) if match else None
    if literal is None and b"HEADER.FIELDS" not in line.upper():
        return None
    return _header_key(sort, literal or b"")


def _fetch_sort_keys(
    client: IMAPClient, uids: Sequence[int], sort: SortKey
) -> dict[int, Any]:
    """The sort key of each of ``uids`` (ascending), in few cheap commands.

    imapclient's response parser costs ~0.3 ms per message (3 s for 10,000
    INTERNALDATEs on a loaded 2-core machine), so this goes to imaplib with a
    compact UID set (ranges, LOCAL_SORT_BATCH of them per command) and reads the
    one item with a regular expression. Unsolicited FETCH responses (flags
    changed by another session) lack the item and are skipped.
    """
    item = "(" + _SORT_ITEMS[sort] + ")"
    imap = client._imap
    keys: dict[int, Any] = {}
    ranges = _uid_ranges(uids)
    for start in range(0, len(ranges), LOCAL_SORT_BATCH):
        batch = ",".join(ranges[start : start + LOCAL_SORT_BATCH])
        try:
            typ, data = imap.uid("FETCH", batch, item)
        except imaplib.IMAP4.error as exc:
            if _is_abort(exc):
                raise
            raise IMAPClientError(str(exc)) from exc
        if typ != "OK":
            raise IMAPClientError(f"UID FETCH failed: {data!r}"[:200])
        for entry in data:
            if isinstance(entry, tuple):
                line, literal = entry[0], entry[1]
            elif isinstance(entry, bytes):
                line, literal = entry, None
            else:
                continue
            uid = _RAW_UID.search(line)
            if uid is None:
                continue
            value = _raw_sort_value(sort, line, literal)
            if value is not None:
                keys[int(uid.group(1))] = value
    return keys


_MISSING_KEY: dict[SortKey, Any] = {
    SortKey.DATE: 0,
    SortKey.SIZE: 0,
    SortKey.FROM: "",
    SortKey.SUBJECT: "",
}


def sort_here(client: IMAPClient, uids: Sequence[int], query: ListQuery) -> list[int]:
    """``uids`` (ascending) in the query's order, for a server without SORT.

    The sort key of every UID comes from one cheap ``UID FETCH`` (see
    :func:`_fetch_sort_keys`): INTERNALDATE for SortKey.DATE (what SORT ARRIVAL
    compares), RFC822.SIZE, or the From or Subject header field for the first
    sender's mailbox and the RFC 5256 base subject. Ties and messages expunged
    meanwhile stay in ascending UID order, reversed or not, as with SORT (RFC 5256
    §3: REVERSE applies to the key, ties keep mailbox order). Above
    HEADER_SORT_LIMIT UIDs nothing is fetched: UID order, reversed as asked.
    """
    ordered = sorted(uids)
    if 1 < len(ordered) <= HEADER_SORT_LIMIT:
        keys = _fetch_sort_keys(client, ordered, query.sort)
        missing = _MISSING_KEY[query.sort]
        # A stable sort, also with reverse=True: equal keys keep UID order.
        ordered.sort(key=lambda uid: keys.get(uid, missing), reverse=query.reverse)
    elif query.reverse:
        ordered.reverse()
    return ordered


# ------------------------------------------------------------------------ the page


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _addresses(items: Sequence[Any] | None) -> tuple[Address, ...]:
    result = []
    for item in items or ():
        mailbox = item.mailbox or b""
        host = item.host or b""
        if not mailbox and not host:
            continue  # the end of an RFC 5322 group
        name = decode_header_value(item.name) if item.name else ""
        email = decode_header_value(mailbox)
        if host:
            email += "@" + decode_header_value(host)
        result.append(Address(name=name, email=email))
    return tuple(result)


def _lower(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").lower()
    return str(value or "").lower()


def _disposition(part: Any) -> str:
    """Disposition type of a BODYSTRUCTURE part ('' when absent)."""
    if part.is_multipart:
        index = 3
    elif _lower(part[0]) == "text":
        index = 9
    elif _lower(part[0]) == "message" and _lower(part[1]) in ("rfc822", "global"):
        index = 11
    else:
        index = 8
    value = part[index] if len(part) > index else None
    if isinstance(value, tuple) and value:
        return _lower(value[0])
    return ""


def has_attachments(structure: Any, *, in_related: bool = False) -> bool:
    """Whether a BODYSTRUCTURE has a part a user would call an attachment.

    True for any part with ``Content-Disposition: attachment``, and for any leaf
    that is neither text nor multipart (an image, a PDF, an attached message)
    unless it is an image inside a multipart/related (an inline picture of an
    HTML body). Text parts without an attachment disposition are taken as body.
    """
    if structure is None:
        return False
    if structure.is_multipart:
        related = _lower(structure[1]) == "related"
        return any(has_attachments(part, in_related=related) for part in structure[0])
    if _disposition(structure) == "attachment":
        return True
    maintype = _lower(structure[0])
    if maintype in ("text", "multipart"):
        return False
    return not (in_related and maintype == "image")


def _flag_set(flags: Sequence[bytes | str]) -> set[str]:
    return {
        (flag.decode("ascii", "replace") if isinstance(flag, bytes) else flag).lower()
        for flag in flags
    }


def summary_from_fetch(uid: int, data: dict[bytes, Any]) -> MessageSummary:
    """A MessageSummary from one FETCH response of the LIST_ITEMS."""
    envelope = data.get(b"ENVELOPE")
    flags = _flag_set(data.get(b"FLAGS", ()))
    date = _aware(getattr(envelope, "date", None)) or _aware(data.get(b"INTERNALDATE"))
    subject = getattr(envelope, "subject", None)
    return MessageSummary(
        uid=uid,
        subject=decode_header_value(subject) if subject else "",
        from_=_addresses(getattr(envelope, "from_", None)),
        to=_addresses(getattr(envelope, "to", None)),
        date=date,
        size=int(data.get(b"RFC822.SIZE", 0)),
        seen="\\seen" in flags,
        flagged="\\flagged" in flags,
        answered="\\answered" in flags,
        has_attachments=has_attachments(data.get(b"BODYSTRUCTURE")),
    )


def fetch_summaries(
    client: IMAPClient, uids: Sequence[int]
) -> dict[int, MessageSummary]:
    """One ``UID FETCH`` of the list items for ``uids`` (the folder is selected).

    Times come back timezone-aware (imapclient's ``normalise_times`` is switched
    off for this call and restored). UIDs the server no longer has are absent,
    including those another session expunged during the FETCH (see
    :func:`expunged_meanwhile`).
    """
    if not uids:
        return {}
    normalise = client.normalise_times
    client.normalise_times = False
    forget_expunge_notice(client)
    try:
        response = client.fetch(list(uids), LIST_ITEMS)
    finally:
        client.normalise_times = normalise
    wanted = set(uids) - expunged_meanwhile(client, response)
    return {
        uid: summary_from_fetch(uid, data)
        for uid, data in response.items()
        if uid in wanted and b"ENVELOPE" in data
    }


def forget_expunge_notice(client: IMAPClient) -> None:
    """Drop an EXPUNGEISSUED left by an earlier command (call before a FETCH)."""
    client._imap.untagged_responses.pop("EXPUNGEISSUED", None)


def expunged_meanwhile(client: IMAPClient, response: dict[int, Any]) -> set[int]:
    """UIDs of a FETCH ``response`` that another session expunged meanwhile.

    A message expunged by another session but not yet reported to ours is
    answered with empty data (RFC 2180 §4.1.3: NIL envelope, size 0; Dovecot
    adds the EXPUNGEISSUED response code of RFC 5530 to the command's OK). Such
    data would show as an empty message, so when the server says so (or a size
    is 0) one ``UID SEARCH`` asks which of the UIDs are still there.
    """
    notice = client._imap.untagged_responses.pop("EXPUNGEISSUED", None)
    empty = any(data.get(b"RFC822.SIZE") == 0 for data in response.values())
    if not response or (notice is None and not empty):
        return set()
    uids = sorted(response)
    present = set(client.search(["UID", ",".join(str(uid) for uid in uids)]))
    return set(uids) - present


def list_page(
    client: IMAPClient,
    folder: str,
    query: ListQuery,
    *,
    cache: OrderCache | None = None,
) -> MessagePage:
    """One page of ``folder``'s messages matching ``query``, in the query's order.

    Commands: EXAMINE, then ``UID SORT`` (or ``UID SEARCH``) unless ``cache``
    holds a valid order, then one ``UID FETCH`` of the page's UIDs only. Messages
    expunged between the two are left out of the page. A page past the end is
    empty. Without SORT on the server the order is computed here (see
    :func:`sort_here`). Raises FolderChanged when the folder does not exist.
    """
    state = select(client, folder)
    uids = ordered_uids(client, folder, query, state, cache)
    page_size = max(1, query.page_size)
    start = (max(1, query.page) - 1) * page_size
    page_uids = uids[start : start + page_size]
    summaries = fetch_summaries(client, page_uids)
    return MessagePage(
        folder=folder,
        validity=state.uidvalidity,
        query=query,
        total=len(uids),
        messages=tuple(summaries[uid] for uid in page_uids if uid in summaries),
        sort_fallback=sort_refused(client, query, state, len(uids)),
    )


def neighbours(
    client: IMAPClient,
    folder: str,
    uid: int,
    query: ListQuery,
    *,
    validity: int,
    cache: OrderCache | None = None,
) -> Neighbours:
    """The UIDs before and after ``uid`` in the list order of ``query``.

    Uses (and fills) the same cached order as :func:`list_page`. A UID that is no
    longer in the list has no neighbours. Raises FolderChanged when the folder's
    UIDVALIDITY is not ``validity``.
    """
    state = select(client, folder)
    if state.uidvalidity != validity:
        raise FolderChanged(folder)
    uids = ordered_uids(client, folder, query, state, cache)
    try:
        index = uids.index(uid)
    except ValueError:
        return Neighbours()
    return Neighbours(
        previous_uid=uids[index - 1] if index > 0 else None,
        next_uid=uids[index + 1] if index + 1 < len(uids) else None,
    )
