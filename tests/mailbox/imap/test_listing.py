"""Message lists against the private Dovecot: order, pages, search, cache, wire."""

from __future__ import annotations

import datetime as dt
import re
import time
from email.message import EmailMessage

import pytest

from mailbox.imap.listing import (
    OrderCache,
    list_page,
    neighbours,
    search_criteria,
    select,
)
from mailbox.sources import (
    FolderChanged,
    ListQuery,
    SearchField,
    SortKey,
)
from tests.data.loader import load_eml

BASE = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def _message(
    subject: str, sender: str, body: str = "hello\n", *, size_pad: int = 0
) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = "reader@example.net"
    msg["Date"] = "Mon, 06 Jan 2025 10:00:00 +0000"
    msg.set_content(body + "x" * size_pad + "\n")
    return msg.as_bytes()


def _subjects(page) -> list[str]:
    return [summary.subject for summary in page.messages]


class Wire:
    """Records every command line sent on a real connection."""

    def __init__(self, client) -> None:
        self.sent: list[bytes] = []
        self._imap = client._imap
        self._send = self._imap.send

        def send(data: bytes) -> None:
            self.sent.append(bytes(data))
            self._send(data)

        self._imap.send = send

    def commands(self) -> list[str]:
        text = b"".join(self.sent).decode("utf-8", "replace")
        return [line for line in text.split("\r\n") if line]

    def clear(self) -> None:
        self.sent.clear()

    def stop(self) -> None:
        self._imap.send = self._send


def _deliver_three(dovecot, username: str) -> None:
    """Three messages arriving a day apart; UID order = arrival order."""
    for n, (subject, sender, pad) in enumerate(
        [
            ("Bravo", "Zed <zed@example.org>", 3000),
            ("alpha", "Mia <mia@example.org>", 10),
            ("Charlie", "Abe <abe@example.org>", 900),
        ]
    ):
        dovecot.deliver(
            username,
            _message(subject, sender, size_pad=pad),
            internaldate=BASE + dt.timedelta(days=n),
        )


def test_newest_first_by_default(dovecot, mail_user, client):
    """The default list is arrival order, newest first."""
    _deliver_three(dovecot, mail_user.username)
    page = list_page(client, "INBOX", ListQuery())
    assert _subjects(page) == ["Charlie", "alpha", "Bravo"]
    assert page.total == 3
    assert page.validity == select(client, "INBOX").uidvalidity
    assert all(summary.date.tzinfo is not None for summary in page.messages)


@pytest.mark.parametrize(
    ("sort", "ascending"),
    [
        (SortKey.DATE, ["Bravo", "alpha", "Charlie"]),
        (SortKey.FROM, ["Charlie", "alpha", "Bravo"]),  # abe, mia, zed
        (SortKey.SUBJECT, ["alpha", "Bravo", "Charlie"]),
        (SortKey.SIZE, ["alpha", "Charlie", "Bravo"]),
    ],
)
def test_each_sort_key_both_directions(dovecot, mail_user, client, sort, ascending):
    """Every sort key orders the list, ascending and reversed."""
    _deliver_three(dovecot, mail_user.username)
    up = list_page(client, "INBOX", ListQuery(sort=sort, reverse=False))
    down = list_page(client, "INBOX", ListQuery(sort=sort, reverse=True))
    assert _subjects(up) == ascending
    assert _subjects(down) == ascending[::-1]


@pytest.mark.parametrize("sort", [SortKey.FROM, SortKey.SUBJECT])
def test_big_folders_are_not_sorted_by_headers(
    monkeypatch, dovecot, mail_user, client, sort
):
    """Above the size limit, sender and subject sorts give arrival order and say so;
    the server is never asked to sort by a header."""
    from mailbox.imap import listing

    monkeypatch.setattr(listing, "HEADER_SORT_LIMIT", 2)
    _deliver_three(dovecot, mail_user.username)
    wire = Wire(client)
    try:
        page = list_page(client, "INBOX", ListQuery(sort=sort, reverse=False))
    finally:
        wire.stop()
    assert page.sort_fallback
    assert _subjects(page) == ["Bravo", "alpha", "Charlie"]
    sorts = [line for line in wire.commands() if " SORT " in line.upper()]
    assert sorts
    assert all("ARRIVAL" in line.upper() for line in sorts)
    assert not any(k in line.upper() for line in sorts for k in ("SUBJECT", " FROM"))


def test_page_two_of_120_holds_the_right_50_in_order(dovecot, mail_user, client):
    """Page 2 of 120 messages, newest first, is messages 70 down to 21."""
    dovecot.generate(mail_user.username, 120)
    page = list_page(client, "INBOX", ListQuery(page=2, page_size=50))
    numbers = [
        int(re.match(r"Generated message (\d+) ", s).group(1)) for s in _subjects(page)
    ]
    assert numbers == list(range(70, 20, -1))
    assert page.total == 120
    assert page.page_count == 3
    assert page.has_previous
    assert page.has_next
    last = list_page(client, "INBOX", ListQuery(page=3, page_size=50))
    assert len(last.messages) == 20
    assert list_page(client, "INBOX", ListQuery(page=9)).messages == ()


def test_international_subjects_and_names_are_decoded(dovecot, mail_user, client):
    """RFC 2047 subjects and display names come out as text."""
    dovecot.deliver(mail_user.username, load_eml("intl_headers.eml"))
    (summary,) = list_page(client, "INBOX", ListQuery()).messages
    assert summary.subject == "Привет из Москвы"
    assert summary.from_[0].name == "François Lefèvre"
    assert summary.from_[0].email == "francois@example.fr"
    assert summary.to[0].name == "山田太郎"
    assert summary.to[1].name == "Smith, John"


def test_date_falls_back_to_arrival_time(dovecot, mail_user, client):
    """Without a usable Date header the arrival time is shown, timezone-aware."""
    dovecot.deliver(
        mail_user.username,
        b"Subject: no date\nFrom: a@example.org\n\nhi\n",
        internaldate=BASE,
    )
    (summary,) = list_page(client, "INBOX", ListQuery()).messages
    assert summary.date == BASE


def test_attachment_icon(dovecot, mail_user, client):
    """Messages with attachments say so; plain and inline-image mail does not."""
    dovecot.deliver(
        mail_user.username,
        load_eml("plain_utf8.eml"),
        load_eml("attachments.eml"),
        load_eml("related_cid.eml"),
        load_eml("forwarded.eml"),
        load_eml("alternative.eml"),
    )
    page = list_page(client, "INBOX", ListQuery(reverse=False))
    assert [s.has_attachments for s in page.messages] == [
        False,
        True,
        False,
        True,
        False,
    ]


def test_flags_are_listed(dovecot, mail_user, client):
    """Unread, flagged and answered come from the FLAGS."""
    user = mail_user.username
    dovecot.deliver(user, _message("new", "a@example.org"))
    dovecot.deliver(user, _message("read", "a@example.org"), flags="S")
    dovecot.deliver(user, _message("flagged", "a@example.org"), flags="SF")
    dovecot.deliver(user, _message("answered", "a@example.org"), flags="SR")
    page = list_page(client, "INBOX", ListQuery(reverse=False))
    assert [(s.seen, s.flagged, s.answered) for s in page.messages] == [
        (False, False, False),
        (True, False, False),
        (True, True, False),
        (True, False, True),
    ]


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        (SearchField.FROM, "Jürgen", ["Grüße aus Köln"]),
        (SearchField.FROM, "mia@example.org", ["plain"]),
        (SearchField.SUBJECT, "Grüße", ["Grüße aus Köln"]),
        (SearchField.BODY, "Straße", ["Grüße aus Köln"]),
        (SearchField.TO, "reader@example.net", ["plain", "Grüße aus Köln"]),
        (SearchField.ALL, "Straße", ["Grüße aus Köln"]),
        (SearchField.ALL, "Jürgen", ["Grüße aus Köln"]),
        (SearchField.ALL, "plain", ["plain"]),
        (SearchField.SUBJECT, "a(b", []),
        (SearchField.SUBJECT, "{5}", []),
        (SearchField.SUBJECT, 'x" OR ALL "', []),
    ],
)
def test_search(dovecot, mail_user, client, field, text, expected):
    """Search by field, with non-ASCII text; odd text stays one search value."""
    dovecot.deliver(
        mail_user.username,
        _message("plain", "Mia <mia@example.org>"),
        _message(
            "Grüße aus Köln", "Jürgen Groß <jg@example.de>", "Wir wohnen in der Straße"
        ),
    )
    page = list_page(client, "INBOX", ListQuery(text=text, field=field, reverse=False))
    assert _subjects(page) == expected
    assert page.total == len(expected)
    client.noop()  # the connection is still in step


def test_search_criteria_for_all_fields():
    """ALL searches from, to, subject and body."""
    assert search_criteria(ListQuery(text="x")) == [
        "OR",
        "OR",
        "OR",
        "FROM",
        "x",
        "TO",
        "x",
        "SUBJECT",
        "x",
        "BODY",
        "x",
    ]
    assert search_criteria(ListQuery()) == ["ALL"]


def test_unread_and_flagged_filters(dovecot, mail_user, client):
    """unread_only lists unseen mail, flagged_only flagged mail."""
    user = mail_user.username
    dovecot.deliver(user, _message("new", "a@example.org"))
    dovecot.deliver(user, _message("read", "a@example.org"), flags="S")
    dovecot.deliver(user, _message("new flagged", "a@example.org"), flags="F")
    dovecot.deliver(user, _message("read flagged", "a@example.org"), flags="SF")
    unread = list_page(client, "INBOX", ListQuery(unread_only=True, reverse=False))
    flagged = list_page(client, "INBOX", ListQuery(flagged_only=True, reverse=False))
    both = list_page(client, "INBOX", ListQuery(unread_only=True, flagged_only=True))
    assert _subjects(unread) == ["new", "new flagged"]
    assert _subjects(flagged) == ["new flagged", "read flagged"]
    assert _subjects(both) == ["new flagged"]


def test_missing_folder_is_folder_changed(client):
    """Listing a folder that does not exist raises FolderChanged."""
    with pytest.raises(FolderChanged):
        list_page(client, "No such folder", ListQuery())


def test_list_fetches_no_body_bytes(dovecot, mail_user, client):
    """A list fetches headers only: no BODY[...], BODY.PEEK[...] or RFC822 item."""
    dovecot.deliver(
        mail_user.username,
        load_eml("attachments.eml"),
        load_eml("forwarded.eml"),
        load_eml("intl_headers.eml"),
    )
    wire = Wire(client)
    try:
        list_page(client, "INBOX", ListQuery())
        list_page(client, "INBOX", ListQuery(text="Fwd", sort=SortKey.SUBJECT))
        list_page(client, "INBOX", ListQuery(unread_only=True, page=1))
    finally:
        wire.stop()
    fetches = [line for line in wire.commands() if " FETCH " in line.upper()]
    assert len(fetches) == 3
    for line in fetches:
        upper = line.upper()
        assert "BODY[" not in upper
        assert "BODY.PEEK[" not in upper
        assert re.search(r"RFC822(?!\.SIZE)", upper) is None
        assert "BODYSTRUCTURE" in upper
        assert "ENVELOPE" in upper


def test_warm_cached_list_runs_no_sort_or_search(dovecot, mail_user, client):
    """A repeat view of an unchanged, open folder costs NOOP, STATUS and one FETCH."""
    dovecot.generate(mail_user.username, 60)
    cache = OrderCache().scoped(("account", 1))
    first = list_page(client, "INBOX", ListQuery(), cache=cache)
    wire = Wire(client)
    try:
        second = list_page(client, "INBOX", ListQuery(), cache=cache)
        page_two = list_page(client, "INBOX", ListQuery(page=2), cache=cache)
    finally:
        wire.stop()
    verbs = [line.split()[1:3] for line in wire.commands()]
    assert not any("SORT" in verb or "SEARCH" in verb for verb in verbs)
    assert [verb[0] for verb in verbs] == [
        "NOOP",
        "STATUS",
        "UID",
        "NOOP",
        "STATUS",
        "UID",
    ]
    assert second == first
    assert len(page_two.messages) == 10


def _sorts_after(client, action) -> int:
    wire = Wire(client)
    try:
        action()
    finally:
        wire.stop()
    return sum(" SORT " in line for line in wire.commands())


def test_cache_invalidates_on_new_mail(dovecot, mail_user, client):
    """New mail in the folder makes the cached order stale."""
    user = mail_user.username
    dovecot.generate(user, 5)
    cache = OrderCache()
    list_page(client, "INBOX", ListQuery(), cache=cache)
    dovecot.deliver(user, _message("fresh", "a@example.org"))
    sorts = _sorts_after(
        client, lambda: list_page(client, "INBOX", ListQuery(), cache=cache)
    )
    assert sorts == 1
    page = list_page(client, "INBOX", ListQuery(), cache=cache)
    assert page.messages[0].subject == "fresh"
    assert page.total == 6


def test_cache_invalidates_on_flag_change_for_flag_filters(dovecot, mail_user, client):
    """With CONDSTORE a flag change makes unread/flagged-only orders stale.

    Orders that do not depend on flags stay valid: their flags come fresh from
    the FETCH anyway.
    """
    assert client.has_capability("CONDSTORE")
    user = mail_user.username
    dovecot.generate(user, 5)
    cache = OrderCache()
    unread = ListQuery(unread_only=True)
    assert list_page(client, "INBOX", unread, cache=cache).total == 5
    list_page(client, "INBOX", ListQuery(), cache=cache)
    assert select(client, "INBOX").highestmodseq is not None
    client.select_folder("INBOX")
    client.add_flags([1], [b"\\Seen"])
    assert (
        _sorts_after(client, lambda: list_page(client, "INBOX", unread, cache=cache))
        == 1
    )
    assert list_page(client, "INBOX", unread, cache=cache).total == 4
    plain = [None]
    assert (
        _sorts_after(
            client,
            lambda: plain.__setitem__(
                0, list_page(client, "INBOX", ListQuery(), cache=cache)
            ),
        )
        == 0
    )
    assert plain[0].messages[-1].seen is True


def test_cache_invalidates_when_uidvalidity_changes(dovecot, mail_user, client):
    """A folder deleted and created again under the same name is a new folder."""
    user = mail_user.username
    client.create_folder("Projects")
    dovecot.deliver(user, _message("one", "a@example.org"), folder="Projects")
    cache = OrderCache()
    before = list_page(client, "Projects", ListQuery(), cache=cache)
    client.unselect_folder()
    client.delete_folder("Projects")
    time.sleep(1.1)  # Maildir UIDVALIDITY is a time stamp
    client.create_folder("Projects")
    dovecot.deliver(user, _message("two", "a@example.org"), folder="Projects")
    sorts = _sorts_after(
        client, lambda: list_page(client, "Projects", ListQuery(), cache=cache)
    )
    after = list_page(client, "Projects", ListQuery(), cache=cache)
    assert after.validity != before.validity
    assert sorts == 1
    assert _subjects(after) == ["two"]


def test_cache_keeps_accounts_apart():
    """Scoped views share storage but never each other's entries."""
    cache = OrderCache(max_entries=2)
    one, two = cache.scoped(1), cache.scoped(2)
    one.put("k", (1,), [1, 2])
    assert two.get("k", (1,)) is None
    assert one.get("k", (1,)) == (1, 2)
    assert one.get("k", (2,)) is None  # another token: stale, dropped
    one.put("a", (1,), [1])
    one.put("b", (1,), [2])
    two.put("c", (1,), [3])
    assert len(cache) == 2
    assert one.get("a", (1,)) is None  # least recently used went first


def test_neighbours_follow_the_list_order(dovecot, mail_user, client):
    """Previous and next are the messages around one in the list's order."""
    _deliver_three(dovecot, mail_user.username)
    query = ListQuery(sort=SortKey.SUBJECT, reverse=False)  # alpha, Bravo, Charlie
    validity = select(client, "INBOX").uidvalidity
    cache = OrderCache()
    middle = neighbours(client, "INBOX", 1, query, validity=validity, cache=cache)
    assert (middle.previous_uid, middle.next_uid) == (2, 3)
    first = neighbours(client, "INBOX", 2, query, validity=validity, cache=cache)
    assert (first.previous_uid, first.next_uid) == (None, 1)
    with pytest.raises(FolderChanged):
        neighbours(client, "INBOX", 1, query, validity=validity + 1)


def test_warm_page_of_10000_equals_cold(dovecot, mail_user, client):
    """A page of a 10,000-message folder: cold (SORT) and warm (cached order)."""
    dovecot.generate(mail_user.username, 10_000)
    cache = OrderCache()
    select(client, "INBOX")
    started = time.perf_counter()
    cold = list_page(client, "INBOX", ListQuery(), cache=cache)
    cold_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    warm = list_page(client, "INBOX", ListQuery(), cache=cache)
    warm_ms = (time.perf_counter() - started) * 1000
    print(f"10,000 messages: cold {cold_ms:.1f} ms, warm {warm_ms:.1f} ms")
    assert warm == cold
    assert len(warm.messages) == 50


def _hide(client, *names: bytes) -> None:
    """Hide capabilities of a real connection (imapclient's capability cache)."""
    capabilities = client.capabilities()
    client._cached_capabilities = tuple(c for c in capabilities if c not in names)


def test_without_sort_the_order_is_computed_here(dovecot, mail_user, client):
    """Without SORT: UID SEARCH, then the sort key fetched and sorted here; no
    SORT command is sent."""
    _deliver_three(dovecot, mail_user.username)
    _hide(client, b"SORT")
    wire = Wire(client)
    try:
        by_date = list_page(client, "INBOX", ListQuery())
        by_subject = list_page(client, "INBOX", ListQuery(sort=SortKey.SUBJECT))
        found = list_page(client, "INBOX", ListQuery(text="Charlie", reverse=False))
        found_utf8 = list_page(client, "INBOX", ListQuery(text="Ünïcode"))
    finally:
        wire.stop()
    assert not any(" SORT " in line for line in wire.commands())
    assert _subjects(by_date) == ["Charlie", "alpha", "Bravo"]
    assert _subjects(by_subject) == ["Charlie", "Bravo", "alpha"]
    assert not by_subject.sort_fallback
    assert _subjects(found) == ["Charlie"]
    assert found_utf8.total == 0


@pytest.mark.parametrize(
    ("sort", "fallback"),
    [(SortKey.DATE, False), (SortKey.SUBJECT, True), (SortKey.SIZE, True)],
)
def test_without_sort_big_results_stay_in_uid_order(
    monkeypatch, dovecot, mail_user, client, sort, fallback
):
    """Without SORT, more matches than the limit are not fetched to be sorted:
    UID (arrival) order, with the fallback note unless the order asked for is
    arrival anyway."""
    from mailbox.imap import listing

    monkeypatch.setattr(listing, "HEADER_SORT_LIMIT", 2)
    _deliver_three(dovecot, mail_user.username)
    _hide(client, b"SORT")
    wire = Wire(client)
    try:
        page = list_page(client, "INBOX", ListQuery(sort=sort, reverse=False))
    finally:
        wire.stop()
    assert _subjects(page) == ["Bravo", "alpha", "Charlie"]
    assert page.sort_fallback is fallback
    fetches = [line for line in wire.commands() if " FETCH " in line.upper()]
    assert len(fetches) == 1  # the page only


def test_without_sort_keys_are_fetched_in_batches(
    monkeypatch, dovecot, mail_user, client
):
    """The sort keys are fetched for a batch of UID ranges at a time, and the
    whole folder comes out in order."""
    from mailbox.imap import listing

    monkeypatch.setattr(listing, "LOCAL_SORT_BATCH", 1)
    _deliver_three(dovecot, mail_user.username)
    client.select_folder("INBOX")
    client.add_flags([2], [b"\\Deleted"])
    client.expunge()  # UIDs 1 and 3: two ranges
    _hide(client, b"SORT")
    wire = Wire(client)
    try:
        page = list_page(client, "INBOX", ListQuery(sort=SortKey.SIZE))
    finally:
        wire.stop()
    assert _subjects(page) == ["Bravo", "Charlie"]
    sizes = [line for line in wire.commands() if "(RFC822.SIZE)" in line.upper()]
    assert len(sizes) == 2


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Hello", "Hello"),
        ("Re: Hello", "Hello"),
        ("RE: Fwd: re:hello", "hello"),
        ("Fw: [list] Re: Hello (fwd)", "Hello"),
        ("[list] Hello", "Hello"),
        ("[only a blob]", "[only a blob]"),
        ("  Spaced   out  ", "Spaced out"),
        ("Regarding", "Regarding"),
    ],
)
def test_base_subject(subject, base):
    """The base subject drops reply and forward markers, list tags and extra
    spaces (RFC 5256 §2.1), as SORT SUBJECT on the server does."""
    from mailbox.imap.listing import base_subject

    assert base_subject(subject) == base


def test_without_condstore_flag_filters_are_not_cached(dovecot, mail_user, client):
    """Without HIGHESTMODSEQ a flag change cannot be seen, so unread/flagged-only
    orders are always asked for; other orders are still cached."""
    dovecot.generate(mail_user.username, 5)
    _hide(client, b"CONDSTORE")
    cache = OrderCache()
    unread = ListQuery(unread_only=True)
    list_page(client, "INBOX", unread, cache=cache)
    list_page(client, "INBOX", ListQuery(), cache=cache)
    assert select(client, "INBOX").highestmodseq is None
    assert (
        _sorts_after(client, lambda: list_page(client, "INBOX", unread, cache=cache))
        == 1
    )
    assert (
        _sorts_after(
            client, lambda: list_page(client, "INBOX", ListQuery(), cache=cache)
        )
        == 0
    )


_VARIED = [
    ("Re: Zebra", "Zed <zed@example.org>", 5),
    ("zebra", '"Smith, Ann" <ann@example.org>', 1),
    ("Fwd: [team] apple", "bob@example.org", 3),
    ("=?utf-8?q?=C3=A9clair?=", "=?utf-8?q?=C3=89mile?= <emile@example.org>", 4),
    ("", "Carl <CARL@example.org>", 2),
    ("[team] Banana (fwd)", "dora@example.org (Dora)", 0),
    ("RE: re: mango", "Eve <eve@example.org>, Fay <fay@example.org>", 6),
]


@pytest.mark.parametrize("sort", list(SortKey))
@pytest.mark.parametrize("reverse", [False, True])
def test_local_sort_matches_the_servers_sort(dovecot, mail_user, client, sort, reverse):
    """For varied subjects (reply and forward markers, list tags, encoded words,
    none) and senders, the order computed here is the order Dovecot's SORT
    gives."""
    for subject, sender, days in _VARIED:
        msg = f"Subject: {subject}\nFrom: {sender}\nTo: x@example.net\n\n"
        dovecot.deliver(
            mail_user.username,
            (msg + "x" * (100 * days) + "\n").encode(),
            internaldate=BASE + dt.timedelta(days=days),
        )
    query = ListQuery(sort=sort, reverse=reverse)
    on_server = list_page(client, "INBOX", query)
    _hide(client, b"SORT")
    here = list_page(client, "INBOX", query)
    assert [m.uid for m in here.messages] == [m.uid for m in on_server.messages]


@pytest.mark.parametrize(
    ("uids", "ranges"),
    [
        ([], []),
        ([7], ["7"]),
        ([1, 2, 3], ["1:3"]),
        ([1, 2, 4, 6, 7, 8, 10], ["1:2", "4", "6:8", "10"]),
    ],
)
def test_uid_ranges(uids, ranges):
    """Ascending UIDs become the shortest list of IMAP ranges."""
    from mailbox.imap.listing import _uid_ranges

    assert _uid_ranges(uids) == ranges


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"01-Mar-2025 09:00:00 +0000", dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)),
        (b" 1-Mar-2025 10:00:00 +0100", dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)),
        (b"28-Feb-2025 23:30:00 -0930", dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)),
        (b"not a date", None),
    ],
)
def test_internaldate_is_read_as_utc(text, expected):
    """INTERNALDATEs compare in UTC, whatever their zone; garbage sorts first."""
    from mailbox.imap.listing import _internaldate

    stamp = _internaldate(text.strip())
    assert stamp == (expected.timestamp() if expected else 0)


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (b"From: Ann <ann@example.org>\r\n\r\n", "ANN"),
        (b'From: "Smith, Bob" <Bob.S@example.org>\r\n\r\n', "BOB.S"),
        (b"From: carl@example.org (Carl)\r\n\r\n", "CARL"),
        (b"From: Dora\r\n <dora@example.org>\r\n\r\n", "DORA"),
        (b"From: undisclosed-recipients:;\r\n\r\n", ""),
        (b"\r\n", ""),
    ],
)
def test_sender_sort_key_is_the_first_mailbox(header, key):
    """SORT FROM compares the mailbox of the first From address."""
    from mailbox.imap.listing import _header_key

    assert _header_key(SortKey.FROM, header) == key
