"""Folder listing, counts and folder changes against the private Dovecot.

The session's Dovecot uses "/" as hierarchy delimiter and flags Drafts, Sent,
Trash, Junk and Archive with RFC 6154 attributes; a second Dovecot in this
module uses "." to show the delimiter is read from the server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accounts.models import Security
from accounts.servers import ServerSettings
from mailbox.imap.folders import (
    Folder,
    FolderError,
    SpecialUse,
    create_folder,
    delete_folder,
    list_folders,
    rename_folder,
    special_use_for_name,
)
from mailbox.imap.session import connect
from tests.servers.dovecot import Dovecot, MailUser

SPECIAL_ORDER = ["INBOX", "Drafts", "Sent", "Archive", "Junk", "Trash"]


def _login(server: Dovecot, user: MailUser, security: str):
    return connect(
        ServerSettings(server.host, server.imap_port, security, user.username),
        user.password,
        timeout=10,
    )


@pytest.fixture
def imap(settings, dovecot, mail_user) -> Iterator:
    """A client logged in to a fresh user over STARTTLS, verified with the test CA."""
    settings.WEBMAIL_EXTRA_CA_FILE = str(dovecot.ca_file)
    client = _login(dovecot, mail_user, Security.STARTTLS)
    yield client
    client.logout()


@pytest.fixture(scope="module")
def dot_dovecot() -> Iterator[Dovecot]:
    """A second Dovecot whose hierarchy delimiter is "."."""
    server = Dovecot(separator=".")
    try:
        server.start()
        yield server
    finally:
        server.close()


def _hide(monkeypatch, client, *capabilities: str) -> None:
    """Make the client believe the server lacks ``capabilities``."""
    hidden = {c.upper() for c in capabilities}
    has = client.has_capability
    monkeypatch.setattr(
        client, "has_capability", lambda cap: cap.upper() not in hidden and has(cap)
    )


def _names(folders: list[Folder]) -> list[str]:
    return [f.name for f in folders]


def _by_name(folders: list[Folder]) -> dict[str, Folder]:
    return {f.name: f for f in folders}


# -- listing ---------------------------------------------------------------


def test_inbox_first_then_special_use_folders_in_fixed_order(imap):
    """INBOX, then Drafts, Sent, Archive, Junk, Trash, then the user's folders."""
    create_folder(imap, "zulu")
    create_folder(imap, "Alpha")

    folders = list_folders(imap)

    assert _names(folders) == [*SPECIAL_ORDER, "Alpha", "zulu"]
    assert [f.special_use for f in folders] == [
        SpecialUse.INBOX,
        SpecialUse.DRAFTS,
        SpecialUse.SENT,
        SpecialUse.ARCHIVE,
        SpecialUse.JUNK,
        SpecialUse.TRASH,
        None,
        None,
    ]
    assert all(f.selectable and f.delimiter == "/" for f in folders)
    assert all(f.depth == 0 and f.display_name == f.name for f in folders)


def test_other_folders_sort_naturally_ignoring_case_and_accents(imap):
    """'Folder 2' before 'folder 10'; 'Éléments' among the E's, not after Z."""
    for name in ("folder 10", "Zebra", "Éléments", "Folder 2", "apple", "Delta"):
        create_folder(imap, name)

    names = _names(list_folders(imap, with_counts=False))[len(SPECIAL_ORDER) :]

    assert names == ["apple", "Delta", "Éléments", "Folder 2", "folder 10", "Zebra"]


def test_counts_follow_delivered_mail(imap, dovecot, mail_user):
    """MESSAGES and UNSEEN per folder: seen mail counts in total only."""
    user = mail_user.username
    dovecot.deliver(user, b"Subject: 1\n\n1\n", b"Subject: 2\n\n2\n", flags="S")
    dovecot.deliver(user, b"Subject: 3\n\n3\n", b"Subject: 4\n\n4\n", b"S: 5\n\n5\n")
    dovecot.deliver(user, b"Subject: 6\n\n6\n", folder="Sent", flags="S")
    dovecot.deliver(user, b"Subject: 7\n\n7\n", folder="Archive/2024", flags="F")

    folders = _by_name(list_folders(imap))

    assert (folders["INBOX"].total, folders["INBOX"].unread) == (5, 3)
    assert (folders["Sent"].total, folders["Sent"].unread) == (1, 0)
    assert (folders["Archive/2024"].total, folders["Archive/2024"].unread) == (1, 1)
    assert (folders["Trash"].total, folders["Trash"].unread) == (0, 0)


def test_without_counts_no_count_is_fetched(imap, dovecot, mail_user):
    """with_counts=False leaves total and unread None everywhere."""
    dovecot.deliver(mail_user.username, b"Subject: 1\n\n1\n")

    folders = list_folders(imap, with_counts=False)

    assert {(f.total, f.unread) for f in folders} == {(None, None)}


def test_nested_folders_follow_their_parent_with_depth(imap, dovecot, mail_user):
    """Children come right after their parent; depth counts delimiters.

    Mail delivered to Projekte/2024/Q1 creates no Maildir for Projekte or
    Projekte/2024: Dovecot lists them (\\NonExistent / \\Noselect), and they
    are not selectable and carry no counts.
    """
    dovecot.deliver(mail_user.username, b"Subject: q\n\nq\n", folder="Projekte/2024/Q1")
    create_folder(imap, "Alt", parent="Projekte")
    create_folder(imap, "Zuletzt")
    create_folder(imap, "2023", parent="Archive")

    folders = list_folders(imap)

    assert _names(folders) == [
        "INBOX",
        "Drafts",
        "Sent",
        "Archive",
        "Archive/2023",
        "Junk",
        "Trash",
        "Projekte",
        "Projekte/2024",
        "Projekte/2024/Q1",
        "Projekte/Alt",
        "Zuletzt",
    ]
    by_name = _by_name(folders)
    q1 = by_name["Projekte/2024/Q1"]
    assert (q1.depth, q1.display_name, q1.total, q1.unread) == (2, "Q1", 1, 1)
    for parent in ("Projekte", "Projekte/2024"):
        folder = by_name[parent]
        assert not folder.selectable
        assert folder.has_children
        assert (folder.total, folder.unread) == (None, None)
    assert by_name["Archive"].has_children
    assert by_name["Archive/2023"].special_use is None
    assert not by_name["Zuletzt"].has_children


def test_list_leaves_no_responses_behind_for_imapclient(imap):
    """The raw LIST-STATUS command's responses are consumed, not left to leak
    into the next imapclient LIST (which would then report every folder twice).
    """
    list_folders(imap)

    names = [name for _flags, _delim, name in imap.list_folders()]

    assert sorted(names) == sorted(SPECIAL_ORDER)


@pytest.mark.parametrize(
    "hidden",
    [
        pytest.param((), id="list-status"),
        pytest.param(("LIST-STATUS",), id="list-extended+status-each"),
        pytest.param(("LIST-STATUS", "LIST-EXTENDED"), id="plain-list+status-each"),
    ],
)
def test_every_listing_path_gives_the_same_folders_and_counts(
    imap, dovecot, mail_user, monkeypatch, hidden
):
    """One LIST-STATUS command, or LIST plus one STATUS per selectable folder:
    the same folders, attributes and counts.
    """
    user = mail_user.username
    dovecot.deliver(user, b"Subject: 1\n\n1\n", flags="S")
    dovecot.deliver(user, b"Subject: 2\n\n2\n", b"Subject: 3\n\n3\n")
    dovecot.deliver(user, b"Subject: 4\n\n4\n", folder="Ordner/Unterordner")
    dovecot.deliver(user, b"Subject: 5\n\n5\n", folder="日本語", flags="S")
    expected = list_folders(imap)
    statuses: list[str] = []
    folder_status = imap.folder_status
    monkeypatch.setattr(
        imap,
        "folder_status",
        lambda name, what=None: statuses.append(name) or folder_status(name, what),
    )
    _hide(monkeypatch, imap, *hidden)

    folders = list_folders(imap)

    assert folders == expected
    counted = {f.name: (f.total, f.unread) for f in folders}
    assert counted["INBOX"] == (3, 2)
    assert counted["Ordner/Unterordner"] == (1, 1)
    assert counted["日本語"] == (1, 0)
    assert counted["Ordner"] == (None, None)
    if hidden:
        assert sorted(statuses) == sorted(f.name for f in folders if f.selectable)
    else:
        assert statuses == []


def test_names_do_not_override_the_servers_special_use_attributes(imap, monkeypatch):
    """With attributes from the server, a folder called "Papierkorb" or "Spam"
    stays an ordinary folder: Trash and Junk are already claimed.
    """
    create_folder(imap, "Papierkorb")
    create_folder(imap, "Spam")
    _hide(monkeypatch, imap, "SPECIAL-USE")

    folders = _by_name(list_folders(imap, with_counts=False))

    assert folders["Trash"].special_use == SpecialUse.TRASH
    assert folders["Junk"].special_use == SpecialUse.JUNK
    assert folders["Papierkorb"].special_use is None
    assert folders["Spam"].special_use is None


# -- name fallbacks (pure) -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "delimiter", "use"),
    [
        ("INBOX", "/", SpecialUse.INBOX),
        ("inbox", ".", SpecialUse.INBOX),
        ("Sent", "/", SpecialUse.SENT),
        ("Sent Items", "/", SpecialUse.SENT),
        ("Sent Messages", "/", SpecialUse.SENT),
        ("Envoyés", "/", SpecialUse.SENT),
        ("Éléments envoyés", "/", SpecialUse.SENT),
        ("Gesendet", "/", SpecialUse.SENT),
        ("Gesendete Objekte", "/", SpecialUse.SENT),
        ("Enviados", "/", SpecialUse.SENT),
        ("Inviati", "/", SpecialUse.SENT),
        ("Verzonden", "/", SpecialUse.SENT),
        ("Trash", "/", SpecialUse.TRASH),
        ("Deleted Items", "/", SpecialUse.TRASH),
        ("Deleted Messages", "/", SpecialUse.TRASH),
        ("Corbeille", "/", SpecialUse.TRASH),
        ("Éléments supprimés", "/", SpecialUse.TRASH),
        ("Papierkorb", "/", SpecialUse.TRASH),
        ("Papelera", "/", SpecialUse.TRASH),
        ("Cestino", "/", SpecialUse.TRASH),
        ("Prullenbak", "/", SpecialUse.TRASH),
        ("Drafts", "/", SpecialUse.DRAFTS),
        ("Brouillons", "/", SpecialUse.DRAFTS),
        ("Entwürfe", "/", SpecialUse.DRAFTS),
        ("Borradores", "/", SpecialUse.DRAFTS),
        ("Bozze", "/", SpecialUse.DRAFTS),
        ("Concepten", "/", SpecialUse.DRAFTS),
        ("Junk", "/", SpecialUse.JUNK),
        ("Spam", "/", SpecialUse.JUNK),
        ("Courrier indésirable", "/", SpecialUse.JUNK),
        ("Junk E-mail", "/", SpecialUse.JUNK),
        ("Indésirables", "/", SpecialUse.JUNK),
        ("Spam-Verdacht", "/", SpecialUse.JUNK),
        ("Archive", "/", SpecialUse.ARCHIVE),
        ("Archives", "/", SpecialUse.ARCHIVE),
        ("Archiv", "/", SpecialUse.ARCHIVE),
        ("Archivio", "/", SpecialUse.ARCHIVE),
        # Case and Unicode normalisation do not matter.
        ("SENT ITEMS", "/", SpecialUse.SENT),
        ("E\u0301le\u0301ments envoye\u0301s", "/", SpecialUse.SENT),
        # Courier-style: everything below INBOX.
        ("INBOX.Sent", ".", SpecialUse.SENT),
        ("INBOX.Corbeille", ".", SpecialUse.TRASH),
        ("Inbox.Entwürfe", ".", SpecialUse.DRAFTS),
        ("INBOX/Spam", "/", SpecialUse.JUNK),
        # Deeper, elsewhere, or merely similar: ordinary folders.
        ("INBOX.Archive.2024", ".", None),
        ("Projects/Sent", "/", None),
        ("Projects.Trash", ".", None),
        ("Sentinel", "/", None),
        ("Sent.Old", "/", None),
        ("INBOX.Sent", "/", None),
        ("Private", None, None),
        ("Trash", None, SpecialUse.TRASH),
    ],
)
def test_special_use_from_name(name, delimiter, use):
    """Known names in several languages, at the top or directly below INBOX."""
    assert special_use_for_name(name, delimiter) == use


# -- changes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "renamed"),
    [
        ("Éléments envoyés", "Éléments reçus"),
        ("日本語", "中文"),
        ("Tom & Jerry", "Tom &amp; Jerry"),
        ("Ünïcödé ✓ 📁", "Ascii again"),
        ("Reports", "Rapports d’été"),
    ],
)
def test_international_names_round_trip(imap, name, renamed):
    """Create, list, rename and delete: the decoded name survives each step."""
    assert create_folder(imap, name) == name
    assert name in _names(list_folders(imap))

    assert rename_folder(imap, name, renamed) == renamed
    names = _names(list_folders(imap))
    assert renamed in names
    assert name not in names

    delete_folder(imap, renamed)
    assert renamed not in _names(list_folders(imap))


def test_subfolder_round_trip_under_international_parent(imap):
    """Ordner/Unterordner: created under its parent with the server's "/"."""
    create_folder(imap, "Ordner")
    assert create_folder(imap, "Unterordner", parent="Ordner") == "Ordner/Unterordner"
    assert create_folder(imap, "Éléments", parent="Ordner") == "Ordner/Éléments"

    folders = _by_name(list_folders(imap))
    assert folders["Ordner"].has_children
    assert folders["Ordner/Unterordner"].depth == 1
    assert folders["Ordner/Éléments"].display_name == "Éléments"

    assert rename_folder(imap, "Ordner/Unterordner", "Überordner") == (
        "Ordner/Überordner"
    )
    delete_folder(imap, "Ordner/Überordner")
    delete_folder(imap, "Ordner/Éléments")
    delete_folder(imap, "Ordner")
    assert not any(n.startswith("Ordner") for n in _names(list_folders(imap)))


def test_rename_moves_subfolders_with_their_mail(imap, dovecot, mail_user):
    """Renaming a parent renames its children; their mail goes along."""
    dovecot.deliver(mail_user.username, b"Subject: x\n\nx\n", folder="Kunden/Acme")
    create_folder(imap, "Beta", parent="Kunden")

    assert rename_folder(imap, "Kunden/Acme", "ACME GmbH") == "Kunden/ACME GmbH"
    create_folder(imap, "Projekte")
    create_folder(imap, "Alt", parent="Projekte")
    assert rename_folder(imap, "Projekte", "Projects") == "Projects"

    folders = _by_name(list_folders(imap))
    assert folders["Kunden/ACME GmbH"].total == 1
    assert "Projects/Alt" in folders
    assert "Projekte/Alt" not in folders


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a/b", "“/”"),
        ("x" * 101, "at most 100"),
        ("Stern*", "“*”"),
        ("tab\there", "control"),
        ("INBOX", "INBOX"),
        ("inbox", "INBOX"),
    ],
)
def test_create_rejects_bad_names(imap, name, message):
    """Empty, too long, the delimiter, wildcards, controls, INBOX again."""
    with pytest.raises(FolderError, match=message):
        create_folder(imap, name)


def test_create_rejects_a_name_too_long_once_encoded(imap):
    """100 CJK characters pass the length rule but not the 250-byte limit of
    the encoded full name (Maildir++ keeps it in one directory name).
    """
    with pytest.raises(FolderError, match="too long"):
        create_folder(imap, "日" * 100)


def test_create_reports_the_servers_refusal(imap):
    """An existing name, or a missing parent: FolderError, not imapclient's."""
    create_folder(imap, "Twice")
    with pytest.raises(FolderError, match="already exists"):
        create_folder(imap, "Twice")
    with pytest.raises(FolderError, match="does not exist"):
        create_folder(imap, "Child", parent="Nowhere")


@pytest.mark.parametrize("name", SPECIAL_ORDER)
def test_delete_and_rename_refuse_inbox_and_special_folders(imap, name):
    """INBOX and the special-use folders stay, whatever is asked."""
    with pytest.raises(FolderError, match="special folder"):
        delete_folder(imap, name)
    with pytest.raises(FolderError, match="special folder"):
        rename_folder(imap, name, "Other")

    assert name in _names(list_folders(imap, with_counts=False))


def test_rename_rejects_the_delimiter_and_missing_folders(imap):
    """The new last component is one level; the old folder must exist."""
    create_folder(imap, "Here")
    with pytest.raises(FolderError, match="“/”"):
        rename_folder(imap, "Here", "There/Elsewhere")
    with pytest.raises(FolderError, match="does not exist"):
        rename_folder(imap, "Gone", "Back")
    assert rename_folder(imap, "Here", "Here") == "Here"


def test_delete_of_a_missing_folder_is_refused(imap):
    """Deleting what is not there says so."""
    with pytest.raises(FolderError, match="does not exist"):
        delete_folder(imap, "Never created")


def test_delete_removes_the_folder_and_its_mail(imap, dovecot, mail_user):
    """The folder and its messages are gone; the others stay."""
    dovecot.deliver(mail_user.username, b"Subject: x\n\nx\n", folder="Old")

    delete_folder(imap, "Old")

    assert _names(list_folders(imap)) == SPECIAL_ORDER


# -- a server with "." as delimiter ----------------------------------------


def test_dot_delimiter_server_nests_folders(settings, dot_dovecot):
    """The tree follows the "." the server announces; "/" is a plain character
    there, and "." inside a new name is refused.
    """
    settings.WEBMAIL_EXTRA_CA_FILE = str(dot_dovecot.ca_file)
    user = dot_dovecot.new_user()
    dot_dovecot.deliver(user.username, b"Subject: y\n\ny\n", folder="Archive.2024")
    client = _login(dot_dovecot, user, Security.STARTTLS)
    try:
        assert create_folder(client, "Ordner") == "Ordner"
        assert create_folder(client, "Unterordner", parent="Ordner") == (
            "Ordner.Unterordner"
        )
        assert create_folder(client, "日本語", parent="Ordner") == "Ordner.日本語"
        with pytest.raises(FolderError, match="“.”"):
            create_folder(client, "a.b")

        folders = list_folders(client)

        assert _names(folders) == [
            "INBOX",
            "Drafts",
            "Sent",
            "Archive",
            "Archive.2024",
            "Junk",
            "Trash",
            "Ordner",
            "Ordner.Unterordner",
            "Ordner.日本語",
        ]
        by_name = _by_name(folders)
        assert {f.delimiter for f in folders} == {"."}
        assert by_name["Archive.2024"].depth == 1
        assert by_name["Archive.2024"].display_name == "2024"
        assert (by_name["Archive.2024"].total, by_name["Archive.2024"].unread) == (
            1,
            1,
        )
        assert by_name["Ordner"].has_children
        assert by_name["Ordner.日本語"].display_name == "日本語"

        assert rename_folder(client, "Ordner.日本語", "中文") == "Ordner.中文"
        delete_folder(client, "Ordner.中文")
        assert "Ordner.中文" not in _names(list_folders(client, with_counts=False))
    finally:
        client.logout()


def test_dot_delimiter_server_over_plain_connection(dot_dovecot):
    """Security "none" works the same (the test server allows plain logins)."""
    user = dot_dovecot.new_user()
    client = _login(dot_dovecot, user, Security.NONE)
    try:
        assert _names(list_folders(client)) == SPECIAL_ORDER
    finally:
        client.logout()
