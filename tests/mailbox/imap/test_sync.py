"""Delta sync of IMAP folders against the private Dovecot.

The diff runs three ways (QRESYNC, CONDSTORE alone, neither): Dovecot has both
extensions, so the CONDSTORE-only and plain ways are forced with the switches of
``mailbox.imap.sync.changes``; the changes are made by another IMAP client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from accounts.models import Security
from accounts.servers import ServerSettings
from mailbox.imap import pool
from mailbox.imap import sync as imap_sync
from mailbox.imap.session import connect
from mailbox.imap.source import ImapSource
from mailbox.sources import BadSyncState, Changes, ListQuery
from tests.servers.dovecot import Dovecot

MODES = {
    "qresync": {},
    "condstore": {"qresync": False},
    "plain": {"extensions": False},
}


def _message(subject: str) -> bytes:
    return f"Subject: {subject}\nFrom: Ann <ann@example.org>\n\nbody\n".encode()


def _connect(dovecot, mail_user):
    return connect(
        ServerSettings(
            dovecot.host, dovecot.imap_port, Security.NONE, mail_user.username
        ),
        mail_user.password,
        timeout=5,
    )


@pytest.fixture
def other(dovecot, mail_user) -> Iterator:
    """Another IMAP client of the same mailbox (a phone, another webmail)."""
    imap = _connect(dovecot, mail_user)
    yield imap
    imap.logout()


class Syncer:
    """Runs the diff the way a test's mode asks, with a readable state."""

    def __init__(self, client, options: dict, mode: str = "") -> None:
        self.client = client
        self.options = options
        self.mode = mode

    def __call__(self, since: str | None, folder: str = "INBOX") -> Changes:
        return imap_sync.changes(
            self.client,
            folder,
            None if since is None else json.loads(since),
            seal=json.dumps,
            **self.options,
        )


@pytest.fixture(params=list(MODES))
def syncer(request, client) -> Syncer:
    return Syncer(client, MODES[request.param], request.param)


def _uids(other, folder: str = "INBOX") -> list[int]:
    other.select_folder(folder)
    return sorted(other.search(["ALL"]))


def test_no_since_gives_only_a_state(dovecot, mail_user, syncer):
    """Without a state: no lists, the folder's validity and a state."""
    dovecot.deliver(mail_user.username, _message("one"))
    result = syncer(None)
    assert result.state
    assert result.validity
    assert (result.added, result.changed, result.removed) == ((), (), ())
    assert not result.full_resync
    modes = {"qresync": "q", "condstore": "c", "plain": "n"}
    assert json.loads(result.state)["m"] == modes[syncer.mode]


def test_nothing_changed_gives_empty_lists(dovecot, mail_user, syncer):
    """A second sync of an unchanged folder reports nothing."""
    dovecot.deliver(mail_user.username, _message("one"), _message("two"))
    first = syncer(None)
    again = syncer(first.state)
    assert (again.added, again.changed, again.removed) == ((), (), ())
    assert not again.full_resync
    assert not again.more


def test_flag_changes_by_another_client(dovecot, mail_user, syncer, other):
    """Flags set and cleared elsewhere come back in changed, with all three flags."""
    dovecot.deliver(mail_user.username, _message("one"), _message("two"))
    dovecot.deliver(mail_user.username, _message("three"), flags="S")
    first = syncer(None)
    one, two, three = _uids(other)
    other.add_flags([one], [b"\\Seen", b"\\Flagged"])
    other.remove_flags([three], [b"\\Seen"])
    result = syncer(first.state)
    changed = {change.uid: change for change in result.changed}
    assert changed[one].seen
    assert changed[one].flagged
    assert not changed[one].answered
    assert not changed[three].seen
    if "extensions" not in syncer.options:
        # With CONDSTORE only the changed messages are reported.
        assert set(changed) == {one, three}
    assert result.added == ()
    assert result.removed == ()
    assert syncer(result.state).changed == ()


def test_new_mail_is_added_with_its_headers(dovecot, mail_user, syncer):
    """Delivered mail comes back in added with its list headers, once."""
    dovecot.deliver(mail_user.username, _message("old"))
    first = syncer(None)
    dovecot.deliver(mail_user.username, _message("new one"), _message("new two"))
    result = syncer(first.state)
    assert [m.subject for m in result.added] == ["new one", "new two"]
    assert result.added[0].from_[0].email == "ann@example.org"
    assert result.changed == ()
    assert result.removed == ()
    assert syncer(result.state).added == ()


def test_expunged_by_another_client_are_removed(dovecot, mail_user, syncer, other):
    """Messages deleted and expunged elsewhere come back in removed."""
    dovecot.deliver(
        mail_user.username, _message("a"), _message("b"), _message("c"), _message("d")
    )
    first = syncer(None)
    a, b, c, d = _uids(other)
    other.add_flags([b, d], [b"\\Deleted"])
    other.expunge()
    result = syncer(first.state)
    assert sorted(result.removed) == [b, d]
    assert result.added == ()
    # The next state no longer reports them.
    assert syncer(result.state).removed == ()


def test_old_holes_are_not_reported(dovecot, mail_user, syncer, other):
    """Mail expunged before the state is not in removed; later removals are."""
    dovecot.deliver(mail_user.username, *[_message(str(i)) for i in range(5)])
    uids = _uids(other)
    other.add_flags(uids[:2], [b"\\Deleted"])
    other.expunge()
    first = syncer(None)
    other.add_flags([uids[3]], [b"\\Deleted"])
    other.expunge()
    result = syncer(first.state)
    assert list(result.removed) == [uids[3]]


def test_add_change_and_remove_together(dovecot, mail_user, syncer, other):
    """One sync reports a new message, a flag change and a removal at once."""
    dovecot.deliver(mail_user.username, _message("a"), _message("b"))
    first = syncer(None)
    a, b = _uids(other)
    other.add_flags([a], [b"\\Flagged"])
    other.add_flags([b], [b"\\Deleted"])
    other.expunge()
    dovecot.deliver(mail_user.username, _message("c"))
    result = syncer(first.state)
    assert [m.subject for m in result.added] == ["c"]
    assert [(c.uid, c.flagged) for c in result.changed] == [(a, True)]
    assert list(result.removed) == [b]


def test_uidvalidity_change_is_a_full_resync(dovecot, mail_user, syncer, other):
    """A folder deleted and made again answers full_resync with a fresh state."""
    dovecot.deliver(mail_user.username, _message("a"), folder="Work")
    first = syncer(None, "Work")
    other.delete_folder("Work")
    other.create_folder("Work")
    other.append("Work", _message("b"))
    result = syncer(first.state, "Work")
    assert result.full_resync
    assert result.validity != first.validity
    assert (result.added, result.changed, result.removed) == ((), (), ())
    assert not syncer(result.state, "Work").full_resync


def test_folder_gone_is_a_full_resync_without_state(dovecot, mail_user, syncer, other):
    """A folder that no longer exists: full_resync, no state to continue from."""
    dovecot.deliver(mail_user.username, _message("a"), folder="Gone")
    first = syncer(None, "Gone")
    other.delete_folder("Gone")
    result = syncer(first.state, "Gone")
    assert result.full_resync
    assert result.state is None


def test_added_come_in_chunks(dovecot, mail_user, syncer, other, monkeypatch):
    """Over the limit, added is cut with more; the next states bring the rest,
    while removals meanwhile (even of mail sent in a chunk) are reported."""
    monkeypatch.setattr(imap_sync, "ADDED_LIMIT", 3)
    first = syncer(None)
    dovecot.deliver(mail_user.username, *[_message(f"m{i}") for i in range(7)])
    one = syncer(first.state)
    assert [m.subject for m in one.added] == ["m0", "m1", "m2"]
    assert one.more
    uids = _uids(other)
    other.add_flags([uids[0]], [b"\\Deleted"])
    other.expunge()
    two = syncer(one.state)
    assert [m.subject for m in two.added] == ["m3", "m4", "m5"]
    assert two.more
    assert uids[0] in two.removed
    other.add_flags([uids[1]], [b"\\Flagged"])  # sent in the first chunk
    three = syncer(two.state)
    assert (uids[1], True) in [(c.uid, c.flagged) for c in three.changed]
    assert [m.subject for m in three.added] == ["m6"]
    assert not three.more
    assert syncer(three.state).added == ()


def test_too_many_changes_is_a_full_resync(
    dovecot, mail_user, syncer, other, monkeypatch
):
    """A diff larger than the limit is answered with a full resync."""
    monkeypatch.setattr(imap_sync, "CHANGES_LIMIT", 2)
    dovecot.deliver(mail_user.username, *[_message(str(i)) for i in range(4)])
    first = syncer(None)
    other.select_folder("INBOX")
    other.add_flags(other.search(["ALL"]), [b"\\Seen"])
    result = syncer(first.state)
    assert result.full_resync
    assert result.changed == ()


def test_plain_fallback_answers_full_resync_above_its_bound(
    dovecot, mail_user, client, monkeypatch
):
    """Without CONDSTORE, a folder larger than FALLBACK_LIMIT is not diffed."""
    monkeypatch.setattr(imap_sync, "FALLBACK_LIMIT", 3)
    syncer = Syncer(client, MODES["plain"])
    dovecot.deliver(mail_user.username, *[_message(str(i)) for i in range(4)])
    first = syncer(None)
    assert syncer(first.state).full_resync


# ------------------------------------------------------------------ ImapSource


@pytest.fixture
def source(imap_account, trust_test_ca) -> Iterator[ImapSource]:
    yield ImapSource(imap_account)
    pool.close_all()


def test_source_tokens_are_signed_and_bound(dovecot, mail_user, source, other):
    """The pooled source diffs with signed tokens; forged or foreign ones are
    refused with BadSyncState."""
    dovecot.deliver(mail_user.username, _message("a"))
    dovecot.deliver(mail_user.username, _message("b"), folder="Work")
    first = source.changes("INBOX", None)
    dovecot.deliver(mail_user.username, _message("c"))
    result = source.changes("INBOX", first.state)
    assert [m.subject for m in result.added] == ["c"]
    for bad in ("", "garbage", first.state + "x", first.state[:-2], "a" * 5000):
        with pytest.raises(BadSyncState):
            source.changes("INBOX", bad)
    with pytest.raises(BadSyncState):
        source.changes("Work", first.state)  # a state of another folder


def test_source_syncs_non_ascii_folders(dovecot, mail_user, source):
    """Folder names beyond ASCII sync like any other."""
    dovecot.deliver(mail_user.username, _message("a"), folder="Rechnungen/Übersicht")
    first = source.changes("Rechnungen/Übersicht", None)
    dovecot.deliver(mail_user.username, _message("b"), folder="Rechnungen/Übersicht")
    result = source.changes("Rechnungen/Übersicht", first.state)
    assert [m.subject for m in result.added] == ["b"]


def test_source_fallback_matches_the_extensions(dovecot, mail_user, source, other):
    """The forced fallback on the pooled login reports the same changes."""
    dovecot.deliver(mail_user.username, _message("a"), _message("b"))
    first = source.changes("INBOX", None, extensions=False)
    a, b = _uids(other)
    other.add_flags([b], [b"\\Deleted"])
    other.expunge()
    dovecot.deliver(mail_user.username, _message("c"))
    result = source.changes("INBOX", first.state, extensions=False)
    assert [m.subject for m in result.added] == ["c"]
    assert list(result.removed) == [b]
    assert [change.uid for change in result.changed] == [a]  # digest moved: all


def test_pooled_login_keeps_working_after_sync(dovecot, mail_user, source, other):
    """After a sync switched QRESYNC on for the pooled login, lists, moves and
    deletions on it still work, and the next sync reports them."""
    dovecot.deliver(mail_user.username, *[_message(s) for s in "abcd"])
    first = source.changes("INBOX", None)
    page = source.messages("INBOX", ListQuery())
    a, b, c, d = sorted(m.uid for m in page.messages)
    source.move("INBOX", [a], validity=page.validity, to_folder="Archive")
    source.delete("INBOX", [b], validity=page.validity)  # to the Trash
    source.set_flags("INBOX", [c], validity=page.validity, flagged=True)
    result = source.changes("INBOX", first.state)
    assert sorted(result.removed) == [a, b]
    assert [(x.uid, x.flagged) for x in result.changed] == [(c, True)]
    assert source.messages("INBOX", ListQuery()).total == 2
    trash = source.changes("Trash", None)
    source.delete(
        "Trash",
        [m.uid for m in source.messages("Trash", ListQuery()).messages],
        validity=trash.validity,
    )
    assert source.messages("Trash", ListQuery()).total == 0
    assert len(source.changes("Trash", trash.state).removed) == 1


# ------------------------------------------------- a server without CONDSTORE


@pytest.fixture(scope="module")
def minimal_dovecot() -> Iterator[Dovecot]:
    """A Dovecot advertising IMAP4rev1 basics only (no CONDSTORE, no QRESYNC)."""
    server = Dovecot(profile="minimal")
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_server_without_condstore_gets_the_plain_diff(minimal_dovecot):
    """Where the server advertises no CONDSTORE, the plain diff is chosen by
    itself and reports flags, new mail and removals."""
    user = minimal_dovecot.new_user()
    minimal_dovecot.deliver(user.username, _message("a"), _message("b"))
    client = _connect(minimal_dovecot, user)
    other = _connect(minimal_dovecot, user)
    try:
        syncer = Syncer(client, {})
        first = syncer(None)
        assert json.loads(first.state)["m"] == "n"
        a, b = _uids(other)
        other.add_flags([a], [b"\\Flagged"])
        other.add_flags([b], [b"\\Deleted"])
        other.expunge()
        minimal_dovecot.deliver(user.username, _message("c"))
        result = syncer(first.state)
        assert [m.subject for m in result.added] == ["c"]
        assert [(c.uid, c.flagged) for c in result.changed] == [(a, True)]
        assert list(result.removed) == [b]
        assert not result.full_resync
    finally:
        client.logout()
        other.logout()
