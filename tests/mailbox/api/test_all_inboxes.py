"""/api/v1/all-inboxes/: the merged inboxes for apps, against the real Dovecot."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import AccountKind
from mailbox import unified
from mailbox.pop import importer
from mailbox.store.models import StoredMessage
from tests.mailbox.test_all_inboxes import START, add_account, deliver
from tests.servers.ports import free_port

API = "/api/v1"
URL = f"{API}/all-inboxes/"


@pytest.fixture
def two_inboxes(user, dovecot, mail_user):
    """An IMAP account ("Work", 30 messages on the even minutes) and a POP3
    account ("Home", 30 imported, on the odd minutes, all read)."""
    pop_user = dovecot.new_user()
    work = add_account(user, dovecot, mail_user, label="Work")
    home = add_account(user, dovecot, pop_user, kind=AccountKind.POP3, label="Home")
    work_mail = [(f"work {i:02d}", START + timedelta(minutes=2 * i)) for i in range(30)]
    home_mail = [
        (f"home {i:02d}", START + timedelta(minutes=2 * i + 1)) for i in range(30)
    ]
    deliver(dovecot, mail_user, work_mail)
    deliver(dovecot, pop_user, home_mail)
    importer.run(account_id=home.pk)
    StoredMessage.objects.filter(account=home).update(seen=True)
    expected = [s for s, _ in sorted(work_mail + home_mail, key=lambda x: x[1])]
    return work, home, expected[::-1]


def test_pages_merge_every_inbox_newest_first(app, two_inboxes):
    """Two pages list every message once, newest first, each with its account,
    folder and validity; the next link carries the filters."""
    work, home, expected = two_inboxes
    first = app.get(URL)
    assert first.status_code == 200
    data = first.json()
    assert (data["page"], data["page_count"], data["total"]) == (1, 2, 60)
    assert data["unread"] == 30
    assert data["truncated"] is False
    assert data["previous"] is None
    assert data["next"].endswith("/api/v1/all-inboxes/?page=2")
    second = app.get(data["next"]).json()
    assert second["next"] is None
    assert second["previous"].endswith("?page=1")
    listed = data["messages"] + second["messages"]
    assert [m["subject"] for m in listed] == expected
    assert {m["account"] for m in listed} == {work.pk, home.pk}
    assert {m["folder"] for m in listed} == {"INBOX"}
    assert data["accounts"] == [
        {"id": home.pk, "label": "Home", "inbox_unread": 0, "error": None},
        {"id": work.pk, "label": "Work", "inbox_unread": 30, "error": None},
    ]
    first_message = data["messages"][0]
    assert {"uid", "from", "to", "date", "seen", "size"} <= set(first_message)


def test_a_row_opens_through_its_account(app, two_inboxes):
    """account, folder, validity and uid of a row open the message."""
    for row in app.get(URL).json()["messages"][:2]:
        opened = app.get(
            f"{API}/accounts/{row['account']}/messages/{row['uid']}/",
            folder=row["folder"],
            validity=row["validity"],
            mark_seen=0,
        )
        assert opened.status_code == 200
        assert opened.json()["subject"] == row["subject"]


def test_filters_and_their_links(app, two_inboxes):
    """unread=1 lists only unread mail; the links keep the filter."""
    data = app.get(URL, unread="1").json()
    assert data["total"] == 30
    assert {m["seen"] for m in data["messages"]} == {False}
    assert data["page_count"] == 1
    searched = app.get(URL, q="home 2", field="subject").json()
    assert [m["subject"] for m in searched["messages"]] == [
        f"home 2{i}" for i in range(9, -1, -1)
    ]


def test_an_unreachable_account_is_named_not_an_error(app, user, dovecot, two_inboxes):
    """A server that refuses connections: 200, its account has an error, the
    others' mail is listed."""
    broken = add_account(user, dovecot, dovecot.new_user(), label="Dead")
    broken.port = free_port()
    broken.save()
    data = app.get(URL).json()
    assert data["total"] == 60
    dead = next(a for a in data["accounts"] if a["id"] == broken.pk)
    assert dead["inbox_unread"] is None
    assert "refused the connection" in dead["error"]


def test_another_users_mail_is_not_listed(app, other_app, two_inboxes):
    """Each user sees their own inboxes only; anonymous callers get 401."""
    theirs = other_app.get(URL).json()
    assert theirs["messages"] == []
    assert theirs["accounts"] == []
    assert theirs["total"] == 0
    assert app.__class__().get(URL).status_code == 401


@pytest.mark.parametrize(
    "params",
    [{"page": "x"}, {"page": "0"}, {"page": str(unified.MAX_PAGES + 1)}],
)
def test_bad_pages_are_400(app, two_inboxes, params):
    """Not a page number, or past the last page the list shows: 400 invalid."""
    response = app.get(URL, **params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
