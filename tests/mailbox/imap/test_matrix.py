"""The capability matrix: the same behaviour on every kind of IMAP server.

Every test runs against three profiles of the private Dovecot (see
``tests.servers.dovecot.PROFILES``): "full" (everything Dovecot 2.3 has),
"minimal" (IMAP4rev1 basics: no SORT, MOVE, UIDPLUS, CONDSTORE, SPECIAL-USE,
QUOTA, LIST-STATUS, LIST-EXTENDED) and "courier" (folders below ``INBOX.`` with
"." as separator; SORT, QUOTA and UIDPLUS but no MOVE, CONDSTORE, SPECIAL-USE).
Dovecot still accepts the commands a profile does not advertise, so the tests
that check a fallback also check on the wire that the command was never sent.
"""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage

import pytest
from django.urls import reverse
from django.utils.http import urlencode
from imapclient import IMAPClient

from mailbox.imap.source import ImapSource
from mailbox.sources import ListQuery, SortKey, SpecialUse

BASE = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
SPECIAL = ["Drafts", "Sent", "Archive", "Junk", "Trash"]


def _message(subject: str, sender: str = "Ann <ann@example.net>", pad: int = 0):
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = "reader@example.test"
    msg["Date"] = "Mon, 03 Mar 2025 10:00:00 +0000"
    msg.set_content("Hello from " + subject + "\n" + "x" * pad + "\n")
    return msg.as_bytes()


def _subjects(page) -> list[str]:
    return [m.subject for m in page.messages]


def _other_client(server, user) -> IMAPClient:
    """A second mail client of the same mailbox (a phone, say)."""
    return server.login(user)


def _list_url(account, folder: str = "INBOX", **params: object) -> str:
    query = urlencode({"folder": folder, **params})
    return reverse("mailbox:message_list", args=[account.pk]) + "?" + query


def _message_links(page: str) -> list[str]:
    return [
        link.replace("&amp;", "&")
        for link in re.findall(r'href="(/mail/\d+/message/\?[^"]+)"', page)
    ]


# -- the profiles themselves ------------------------------------------------------

_LEFT_OUT = {
    "full": set(),
    "minimal": {
        "CONDSTORE",
        "QRESYNC",
        "MOVE",
        "SPECIAL-USE",
        "SORT",
        "QUOTA",
        "LIST-STATUS",
        "LIST-EXTENDED",
        "UIDPLUS",
    },
    "courier": {"CONDSTORE", "QRESYNC", "MOVE", "SPECIAL-USE", "LIST-STATUS"},
}


def test_each_profile_advertises_what_it_stands_for(server, server_user):
    """After login each profile leaves out exactly the extensions it stands
    without, and the Courier-like one keeps every folder below "INBOX."."""
    client = _other_client(server, server_user)
    try:
        advertised = {c.decode().upper() for c in client.capabilities()}
        namespace = client.namespace().personal[0]
    finally:
        client.logout()
    assert "IMAP4REV1" in advertised
    assert not advertised & _LEFT_OUT[server.profile]
    if server.profile == "full":
        assert {"SORT", "MOVE", "CONDSTORE", "QUOTA", "SPECIAL-USE"} <= advertised
    assert namespace == (server.prefix, server.separator)


# -- folders -------------------------------------------------------------------


def test_folder_tree_special_uses_and_counts(server, server_user, server_account):
    """INBOX comes first, then Drafts, Sent, Archive, Junk, Trash (by attribute or
    by name), then the rest; names and nesting follow the server's namespace."""
    name = server.folder_name
    server.deliver(server_user.username, _message("one"), flags="S")
    server.deliver(server_user.username, _message("two"))
    server.deliver(
        server_user.username, _message("old"), folder=name("Archive", "2024")
    )

    folders = ImapSource(server_account).folders()

    assert [f.name for f in folders] == [
        "INBOX",
        name("Drafts"),
        name("Sent"),
        name("Archive"),
        name("Archive", "2024"),
        name("Junk"),
        name("Trash"),
    ]
    by_name = {f.name: f for f in folders}
    assert by_name["INBOX"].special_use == SpecialUse.INBOX
    for leaf in SPECIAL:
        assert by_name[name(leaf)].special_use == SpecialUse(leaf.lower())
    assert (by_name["INBOX"].total, by_name["INBOX"].unread) == (2, 1)
    assert (by_name[name("Archive", "2024")].total,) == (1,)
    assert {f.delimiter for f in folders} == {server.separator}
    assert by_name[name("Archive", "2024")].display_name == "2024"


def test_folders_are_created_in_the_personal_namespace(
    server, server_user, server_account
):
    """A new top-level folder goes where the server keeps the user's folders
    (below "INBOX." on a Courier-like server); subfolders, renames and deletes
    use the server's separator."""
    source = ImapSource(server_account)
    name = server.folder_name

    top = source.create_folder("Projects")
    child = source.create_folder("2026", parent=top)
    below_inbox = source.create_folder("Notes", parent="INBOX")

    assert top == name("Projects")
    assert child == name("Projects", "2026")
    sep = server.separator
    assert below_inbox == "INBOX" + sep + "Notes"
    renamed = source.rename_folder(child, "2027")
    assert renamed == name("Projects", "2027")
    server.deliver(server_user.username, _message("kept"), folder=renamed)
    names = [f.name for f in source.folders()]
    assert {top, renamed, below_inbox} <= set(names)
    source.delete_folder(renamed)
    assert renamed not in [f.name for f in source.folders()]


def test_changing_folders_while_one_is_open_loses_nothing(
    server, server_user, server_account, caplog
):
    """Renaming and deleting the open folder keeps our login (the selection is
    left first: UNSELECT, or EXAMINE INBOX + CLOSE without it), and leaving the
    inbox never expunges a message another client marked deleted there."""
    server.deliver(server_user.username, _message("marked"), _message("kept"))
    source = ImapSource(server_account)
    page = source.messages("INBOX", ListQuery())
    other = _other_client(server, server_user)
    try:
        other.select_folder("INBOX")
        other.add_flags([page.messages[-1].uid], [b"\\Deleted"])
    finally:
        other.logout()
    folder = source.create_folder("Open")
    server.deliver(server_user.username, _message("inside"), folder=folder)

    source.rename_folder(source.create_folder("Other"), "Renamed")  # INBOX open
    source.messages(folder, ListQuery())
    renamed = source.rename_folder(folder, "Moved")  # the open folder itself
    source.messages(renamed, ListQuery())
    source.delete_folder(renamed)

    assert server.count(server_user.username, "INBOX") == 2
    assert [f.name for f in source.folders()][0] == "INBOX"
    assert "lost its connection" not in caplog.text


# -- lists, sort and search ----------------------------------------------------


def _deliver_unordered(server, username: str) -> None:
    """Three messages whose arrival times are not in UID order."""
    for subject, sender, pad, days in [
        ("Re: bravo", "Zed <zed@example.org>", 3000, 2),
        ("alpha", "Mia <mia@example.org>", 10, 0),
        ("Charlie", "Abe <abe@example.org>", 900, 1),
    ]:
        server.deliver(
            username,
            _message(subject, sender, pad),
            internaldate=BASE + dt.timedelta(days=days),
        )


@pytest.mark.parametrize(
    ("sort", "ascending"),
    [
        (SortKey.DATE, ["alpha", "Charlie", "Re: bravo"]),
        (SortKey.FROM, ["Charlie", "alpha", "Re: bravo"]),  # abe, mia, zed
        (SortKey.SUBJECT, ["alpha", "Re: bravo", "Charlie"]),  # base subjects
        (SortKey.SIZE, ["alpha", "Charlie", "Re: bravo"]),
    ],
)
def test_every_sort_order_with_or_without_sort(
    server, server_user, server_account, wire, sort, ascending
):
    """Each sort key gives the same order whether the server sorts (SORT) or the
    order is computed here from fetched keys; UID SORT is sent only to servers
    that advertise SORT."""
    _deliver_unordered(server, server_user.username)
    source = ImapSource(server_account)

    up = source.messages("INBOX", ListQuery(sort=sort, reverse=False))
    down = source.messages("INBOX", ListQuery(sort=sort, reverse=True))

    assert _subjects(up) == ascending
    assert _subjects(down) == ascending[::-1]
    assert not up.sort_fallback
    sorted_on_server = any(c.startswith("UID SORT") for c in wire.commands())
    assert sorted_on_server == (server.profile != "minimal")


def test_pages_and_search(server, server_user, server_account):
    """Pages hold the right messages newest first; searches by subject, by
    non-ASCII text and for unread mail find exactly the matches."""
    server.generate(server_user.username, 60)
    server.deliver(server_user.username, _message("Größe des Schuhs"), flags="S")
    source = ImapSource(server_account)

    first = source.messages("INBOX", ListQuery())
    second = source.messages("INBOX", ListQuery(page=2))

    assert first.total == 61
    assert first.messages[0].subject == "Größe des Schuhs"
    assert first.messages[1].subject.startswith("Generated message 60 of 60")
    assert second.messages[-1].subject.startswith("Generated message 1 of 60")
    assert len(second.messages) == 11
    found = source.messages("INBOX", ListQuery(text="message 17 of"))
    assert [m.subject.split(" (")[0] for m in found.messages] == [
        "Generated message 17 of 60"
    ]
    assert _subjects(source.messages("INBOX", ListQuery(text="größe"))) == [
        "Größe des Schuhs"
    ]
    assert source.messages("INBOX", ListQuery(unread_only=True)).total == 60


def test_repeat_list_uses_the_cached_order_until_mail_arrives(
    server, server_user, server_account, wire
):
    """A second view of an unchanged folder does not search or sort again; a new
    message makes the next view compute the order afresh (validated by UIDNEXT
    and MESSAGES where there is no CONDSTORE)."""
    _deliver_unordered(server, server_user.username)
    source = ImapSource(server_account)
    query = ListQuery(sort=SortKey.SUBJECT, reverse=False)
    source.messages("INBOX", query)
    wire.clear()

    source.messages("INBOX", query)

    ordering = ("UID SORT", "UID SEARCH")
    assert not [c for c in wire.commands() if c.startswith(ordering)]
    server.deliver(server_user.username, _message("Delta"))
    page = source.messages("INBOX", query)
    assert _subjects(page) == ["alpha", "Re: bravo", "Charlie", "Delta"]


# -- reading and flags -----------------------------------------------------------


def test_open_a_message_in_the_browser(
    server, server_user, server_account, user_client
):
    """The list links to the message; opening it shows its text and marks it read
    on the server."""
    server.deliver(server_user.username, _message("Open me"))
    page = user_client.get(_list_url(server_account)).content.decode()
    (link,) = _message_links(page)

    response = user_client.get(link)

    assert response.status_code == 200
    assert "Open me" in response.content.decode()
    other = _other_client(server, server_user)
    try:
        other.select_folder("INBOX", readonly=True)
        flags = other.get_flags(other.search(["ALL"]))
        assert all(b"\\Seen" in value for value in flags.values())
    finally:
        other.logout()


def test_flags_are_set_and_cleared(server, server_user, server_account):
    """Read and flagged marks change on the server and show in the next list."""
    server.deliver(server_user.username, _message("a"), _message("b"))
    source = ImapSource(server_account)
    page = source.messages("INBOX", ListQuery(reverse=False))
    a, b = (m.uid for m in page.messages)

    source.set_flags("INBOX", [a, b], validity=page.validity, seen=True)
    source.set_flags("INBOX", [b], validity=page.validity, flagged=True)
    source.set_flags("INBOX", [a], validity=page.validity, seen=False)

    rows = source.messages("INBOX", ListQuery(reverse=False)).messages
    assert [(m.seen, m.flagged) for m in rows] == [(False, False), (True, True)]
    flagged = source.messages("INBOX", ListQuery(flagged_only=True))
    assert [m.uid for m in flagged.messages] == [b]


# -- move and delete -------------------------------------------------------------


def test_move_uses_move_only_where_advertised(
    server, server_user, server_account, wire
):
    """Messages move to the target folder and leave the source; UID MOVE where
    the server has MOVE, else UID COPY + \\Deleted + UID EXPUNGE (UIDPLUS) or
    EXPUNGE."""
    server.deliver(server_user.username, _message("m1"), _message("m2"), _message("m3"))
    source = ImapSource(server_account)
    page = source.messages("INBOX", ListQuery(reverse=False))
    uids = [m.uid for m in page.messages[:2]]
    archive = server.folder_name("Archive")
    wire.clear()

    also = source.move("INBOX", uids, validity=page.validity, to_folder=archive)

    assert also == 0
    assert server.count(server_user.username, "INBOX") == 1
    assert server.count(server_user.username, archive) == 2
    commands = wire.commands()
    moved = [c for c in commands if c.startswith("UID MOVE")]
    expunged = [c for c in commands if c.startswith("UID EXPUNGE")]
    plain = [c for c in commands if c == "EXPUNGE"]
    expected = {
        "full": (1, 0, 0),
        "courier": (0, 1, 0),
        "minimal": (0, 0, 1),
    }[server.profile]
    assert (len(moved), len(expunged), len(plain)) == expected


def test_delete_goes_to_trash_then_for_good(
    server, server_user, server_account, user_client
):
    """Deleting in a folder moves to the Trash (found by attribute or name);
    deleting in the Trash removes the message."""
    server.deliver(server_user.username, _message("bin me"))
    trash = server.folder_name("Trash")
    url = reverse("mailbox:bulk_action", args=[server_account.pk])
    source = ImapSource(server_account)
    page = source.messages("INBOX", ListQuery())

    user_client.post(
        url,
        {
            "folder": "INBOX",
            "validity": page.validity,
            "uids": [page.messages[0].uid],
            "action": "delete",
        },
    )

    assert server.count(server_user.username, "INBOX") == 0
    assert server.count(server_user.username, trash) == 1
    page = source.messages(trash, ListQuery())
    response = user_client.post(
        url,
        {
            "folder": trash,
            "validity": page.validity,
            "uids": [page.messages[0].uid],
            "action": "delete",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert server.count(server_user.username, trash) == 0


def test_other_deleted_messages_are_kept_or_reported(
    server, server_user, server_account, user_client
):
    """A message another client marked \\Deleted survives our deletion where the
    server has UIDPLUS; without it, the plain EXPUNGE removes it too and the page
    says so."""
    server.deliver(server_user.username, _message("mine"), _message("theirs"))
    source = ImapSource(server_account)
    page = source.messages("INBOX", ListQuery(reverse=False))
    mine, theirs = (m.uid for m in page.messages)
    other = _other_client(server, server_user)
    try:
        other.select_folder("INBOX")
        other.add_flags([theirs], [b"\\Deleted"])
    finally:
        other.logout()
    archive = server.folder_name("Archive")

    response = user_client.post(
        reverse("mailbox:bulk_action", args=[server_account.pk]),
        {
            "folder": "INBOX",
            "validity": page.validity,
            "uids": [mine],
            "action": "move",
            "to_folder": archive,
        },
        follow=True,
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert server.count(server_user.username, archive) == 1
    if server.profile == "minimal":
        assert server.count(server_user.username, "INBOX") == 0
        assert "also removed 1 other message" in text
    else:
        assert server.count(server_user.username, "INBOX") == 1
        assert "also removed" not in text


# -- quota -----------------------------------------------------------------------


def test_quota_bar_only_where_the_server_has_quota(
    server, server_user, server_account, user_client, wire
):
    """Servers with QUOTA show a usage bar; without it there is no bar, and
    GETQUOTAROOT is never sent."""
    server.deliver(server_user.username, _message("big", pad=200_000))

    page = user_client.get(_list_url(server_account)).content.decode()

    has_bar = '<progress id="quota-' in page
    asked = any(c.startswith("GETQUOTAROOT") for c in wire.commands())
    assert has_bar == asked == (server.profile != "minimal")
    quota = ImapSource(server_account).quota()
    if server.profile == "minimal":
        assert quota is None
    else:
        assert quota is not None
        assert quota.limit_bytes == 100 * 1024 * 1024
        assert quota.used_bytes >= 200_000


# -- never a command the server did not advertise --------------------------------


_REQUIRES = {
    "UID SORT": "SORT",
    "UID MOVE": "MOVE",
    "UID EXPUNGE": "UIDPLUS",
    "GETQUOTAROOT": "QUOTA",
    "ENABLE CONDSTORE": "CONDSTORE",
    "LIST-RETURN": "LIST-EXTENDED",
    "LIST-STATUS": "LIST-STATUS",
}


def _needs(command: str) -> list[str]:
    """The capabilities a command line relies on (see _REQUIRES)."""
    needed = [cap for prefix, cap in _REQUIRES.items() if command.startswith(prefix)]
    if command.startswith("LIST ") and " RETURN " in command:
        needed.append("LIST-EXTENDED")
        if "STATUS (" in command:
            needed.append("LIST-STATUS")
        if "SPECIAL-USE" in command:
            needed.append("SPECIAL-USE")
    return needed


def test_only_advertised_extensions_are_used(
    server, server_user, server_account, user_client, wire
):
    """A whole session (folders, every sort, search, flags, move, delete, quota,
    folder changes) sends no command of an extension the server did not
    advertise after login."""
    _deliver_unordered(server, server_user.username)
    source = ImapSource(server_account)
    archive, trash = server.folder_name("Archive"), server.folder_name("Trash")

    user_client.get(_list_url(server_account))
    for sort in SortKey:
        source.messages("INBOX", ListQuery(sort=sort))
    page = source.messages("INBOX", ListQuery(text="alpha", unread_only=True))
    uid = page.messages[0].uid
    source.set_flags("INBOX", [uid], validity=page.validity, flagged=True)
    source.messages("INBOX", ListQuery(flagged_only=True))
    source.move("INBOX", [uid], validity=page.validity, to_folder=archive)
    source.delete("INBOX", [page.messages[0].uid + 1], validity=page.validity)
    in_trash = source.messages(trash, ListQuery())
    source.delete(trash, [m.uid for m in in_trash.messages], validity=in_trash.validity)
    source.delete_folder(source.create_folder("Scratch"))

    probe = _other_client(server, server_user)
    try:
        advertised = {c.decode().upper() for c in probe.capabilities()}
    finally:
        probe.logout()
    used = {cap for command in wire.commands() for cap in _needs(command)}
    assert used <= advertised
    if server.profile == "full":
        assert {"SORT", "MOVE", "QUOTA", "LIST-STATUS", "CONDSTORE"} <= used


# -- delta sync ------------------------------------------------------------------


def test_delta_sync_reports_added_changed_and_removed(
    server, server_user, server_account
):
    """From a sync state, the next sync reports the new message, the message whose
    flags another client changed and the one it expunged, with or without
    CONDSTORE/QRESYNC."""
    server.deliver(server_user.username, _message("keep"), _message("drop"))
    source = ImapSource(server_account)
    start = source.changes("INBOX", None)
    other = _other_client(server, server_user)
    try:
        other.select_folder("INBOX")
        keep, drop = sorted(other.search(["ALL"]))
        other.add_flags([keep], [b"\\Flagged"])
        other.add_flags([drop], [b"\\Deleted"])
        other.expunge()
    finally:
        other.logout()
    server.deliver(server_user.username, _message("new"))

    delta = source.changes("INBOX", start.state)

    assert not delta.full_resync
    assert [m.subject for m in delta.added] == ["new"]
    assert [(c.uid, c.flagged) for c in delta.changed if c.uid == keep] == [
        (keep, True)
    ]
    assert drop in delta.removed
    assert keep not in delta.removed
    again = source.changes("INBOX", delta.state)
    assert (again.added, again.removed) == ((), ())


def test_the_user_chooses_a_special_folder(
    server, server_user, server_account, user_client
):
    """Where the guess is wrong, the account's settings pick the Sent folder:
    the folder list marks it, no other folder keeps the role, and the Sent copy
    of a message goes there."""
    from mailbox.imap import append, pool

    source = ImapSource(server_account)
    mine = source.create_folder("Outbox Copies")
    url = reverse("mailbox:account_edit", args=[server_account.pk])
    form = user_client.get(url).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None}
    data["folder_sent"] = mine
    response = user_client.post(url, {**data, "password": ""})
    assert response.status_code == 302, response.context["form"].errors
    server_account.refresh_from_db()
    assert server_account.special_folders == {"sent": mine}

    uses = {f.name: f.special_use for f in ImapSource(server_account).folders()}
    assert uses[mine] == SpecialUse.SENT
    assert uses[server.folder_name("Sent")] is None
    chosen = pool.run(
        server_account,
        lambda client: append.special_folder(
            client, SpecialUse.SENT, chosen=server_account.special_folders
        ),
    )
    assert chosen == mine
