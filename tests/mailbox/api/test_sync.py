"""GET /api/v1/accounts/<id>/messages/changes/: delta sync for phones.

IMAP against the real Dovecot, with the changes made by another IMAP client;
the store with its own services (import, flags, delete, move).
"""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from mailbox.store import services
from mailbox.store.models import LocalFolder
from tests.mailbox.api.conftest import error_of
from tests.mailbox.store import offline_pop_account, store_eml

API = "/api/v1"


def make(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.net>"
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message.set_content("Hi")
    return message.as_bytes()


def changes_url(account_id: int) -> str:
    return f"{API}/accounts/{account_id}/messages/changes/"


@pytest.fixture
def other(dovecot, mail_user) -> Iterator:
    """Another IMAP client of the same mailbox."""
    imap = dovecot.login(mail_user)
    yield imap
    imap.logout()


def sync(app, account_id: int, folder: str = "INBOX", since: str | None = None):
    params = {"folder": folder}
    if since is not None:
        params["since"] = since
    response = app.get(changes_url(account_id), **params)
    assert response.status_code == 200, response.content
    return response.json()


def test_imap_delta_after_changes_by_another_client(
    app, imap_account, dovecot, mail_user, other
):
    """Flags changed, mail delivered, mail deleted and expunged elsewhere: one
    answer says all three; the next says nothing."""
    dovecot.deliver(mail_user.username, make("a"), make("b"), make("c"))
    first = sync(app, imap_account.pk)
    assert first["added"] == []
    assert first["full_resync"] is False
    other.select_folder("INBOX")
    a, b, c = sorted(other.search(["ALL"]))
    other.add_flags([a], [b"\\Seen"])
    other.add_flags([c], [b"\\Deleted"])
    other.expunge()
    dovecot.deliver(mail_user.username, make("d"))

    body = sync(app, imap_account.pk, since=first["state"])
    assert [m["subject"] for m in body["added"]] == ["d"]
    assert body["added"][0]["from"] == [{"name": "Ann", "email": "ann@example.net"}]
    assert body["changed"] == [
        {"uid": a, "seen": True, "flagged": False, "answered": False}
    ]
    assert body["removed"] == [c]
    assert body["full_resync"] is False
    assert body["more"] is False
    assert body["validity"] == first["validity"]

    again = sync(app, imap_account.pk, since=body["state"])
    assert (again["added"], again["changed"], again["removed"]) == ([], [], [])


def test_imap_uidvalidity_change_is_a_full_resync(
    app, imap_account, dovecot, mail_user, other
):
    """A folder deleted and made again: 200 with full_resync and a fresh state."""
    dovecot.deliver(mail_user.username, make("a"), folder="Work")
    first = sync(app, imap_account.pk, folder="Work")
    other.delete_folder("Work")
    other.create_folder("Work")
    body = sync(app, imap_account.pk, folder="Work", since=first["state"])
    assert body["full_resync"] is True
    assert body["state"]
    assert body["validity"] != first["validity"]
    other.delete_folder("Work")
    gone = sync(app, imap_account.pk, folder="Work", since=body["state"])
    assert gone["full_resync"] is True
    assert gone["state"] is None


def test_bad_states_are_400(app, imap_account, dovecot, mail_user):
    """A forged, foreign or absurd state is refused with 400, never a 500."""
    dovecot.deliver(mail_user.username, make("a"), folder="Work")
    state = sync(app, imap_account.pk)["state"]
    for bad, code in (
        ("garbage", "bad_state"),
        (state[:-1] + ("A" if state[-1] != "A" else "B"), "bad_state"),
        ("x" * 5000, "invalid"),
    ):
        response = app.get(changes_url(imap_account.pk), folder="INBOX", since=bad)
        assert response.status_code == 400, response.content
        assert error_of(response)["code"] == code
    response = app.get(changes_url(imap_account.pk), folder="Work", since=state)
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_state"


def test_unknown_folder_without_state_is_409(app, imap_account):
    """Asking the state of a folder that does not exist: 409 folder_changed."""
    response = app.get(changes_url(imap_account.pk), folder="Nope")
    assert response.status_code == 409
    assert error_of(response)["code"] == "folder_changed"


def test_another_users_account_is_404(app, other_app, imap_account, user):
    """Another user's IMAP or store account is 404, with or without a state."""
    store_account = offline_pop_account(user)
    for account in (imap_account, store_account):
        state = sync(app, account.pk)["state"]
        for params in ({}, {"since": state}):
            response = other_app.get(changes_url(account.pk), **params)
            assert response.status_code == 404
            assert error_of(response)["code"] == "not_found"


def test_signed_out_is_401(imap_account):
    """Without a session token: 401."""
    from django.test import Client

    response = Client().get(changes_url(imap_account.pk))
    assert response.status_code == 401


@pytest.fixture
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.usefixtures("_media")
def test_store_delta_after_flags_import_delete_and_move(app, user):
    """The store: a flag change, imported mail, a deletion and a move out of
    the folder, in one answer."""
    account = offline_pop_account(user)
    folders = services.folders_ensure(user=user)
    inbox = folders[LocalFolder.Use.INBOX]
    work = services.folder_create(user=user, name="Work")
    flagged, deleted, moved = (store_eml(user, make(s)) for s in ("f", "d", "m"))
    first = sync(app, account.pk)
    services.messages_set_flags(user=user, folder=inbox, ids=[flagged.pk], flagged=True)
    services.messages_delete(user=user, folder=inbox, ids=[deleted.pk])
    services.messages_move(user=user, folder=inbox, ids=[moved.pk], to_folder=work)
    new = store_eml(user, make("new"))

    body = sync(app, account.pk, since=first["state"])
    assert [(m["uid"], m["subject"]) for m in body["added"]] == [(new.pk, "new")]
    assert body["changed"] == [
        {"uid": flagged.pk, "seen": False, "flagged": True, "answered": False}
    ]
    assert body["removed"] == sorted([deleted.pk, moved.pk])
    assert body["validity"] == inbox.pk
    assert body["full_resync"] is False

    again = sync(app, account.pk, since=body["state"])
    assert (again["added"], again["changed"], again["removed"]) == ([], [], [])
    response = app.get(changes_url(account.pk), folder="Work", since=body["state"])
    assert response.status_code == 400
