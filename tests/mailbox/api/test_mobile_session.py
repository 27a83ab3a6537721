"""A phone's whole session through /api/v1/, against the real Dovecot."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from accounts.models import MailAccount
from mailbox.models import TrustedSender
from tests.data.loader import load_eml
from tests.mailbox.api.conftest import App

API = "/api/v1"


def make(subject: str, *, html: str | None = None, body: str = "Hi") -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.net>"
    message["To"] = "me@example.test"
    message["Subject"] = subject
    message["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes(policy=email.policy.SMTP)


def add_imap_account(app: App, dovecot, mail_user) -> dict:
    response = app.post(
        f"{API}/accounts/",
        {
            "kind": "imap",
            "email": mail_user.email,
            "host": dovecot.host,
            "port": dovecot.imap_port,
            "security": "starttls",
            "username": mail_user.username,
            "password": mail_user.password,
        },
    )
    assert response.status_code == 201, response.content
    return response.json()


def uids_in(app: App, account_id: int, folder: str = "INBOX") -> list[int]:
    response = app.get(f"{API}/accounts/{account_id}/messages/", folder=folder)
    assert response.status_code == 200, response.content
    return [m["uid"] for m in response.json()["messages"]]


def test_add_account_tests_the_login_and_never_returns_the_password(
    app, dovecot, mail_user
):
    """A new account is saved after a real login; its password never comes back."""
    account = add_imap_account(app, dovecot, mail_user)
    assert account["kind"] == "imap"
    assert account["label"] == mail_user.email  # the address by default
    assert "password" not in account
    listed = app.get(f"{API}/accounts/").json()
    assert [a["id"] for a in listed] == [account["id"]]
    assert mail_user.password not in app.get(f"{API}/accounts/").content.decode()
    saved = MailAccount.objects.get(pk=account["id"])
    assert saved.get_password() == mail_user.password


def test_add_account_with_a_wrong_password_is_400_with_the_web_message(
    app, dovecot, mail_user
):
    """A refused login saves nothing and says why, in the web form's words."""
    response = app.post(
        f"{API}/accounts/",
        {
            "kind": "imap",
            "email": mail_user.email,
            "host": dovecot.host,
            "port": dovecot.imap_port,
            "security": "starttls",
            "username": mail_user.username,
            "password": "wrong",
        },
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    message = error["fields"]["non_field_errors"][0]
    assert "refused the user name or password" in message
    assert "Nothing was saved" in message
    assert not MailAccount.objects.exists()


def test_add_account_field_errors_come_from_the_web_form(app):
    """Invalid fields are 400 with per-field messages; nothing is tried."""
    response = app.post(
        f"{API}/accounts/",
        {
            "kind": "imap",
            "email": "not an address",
            "host": "bad host!",
            "security": "none",
            "password": "x",
        },
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "email" in fields
    assert fields["host"] == ["This is not a valid host name."]
    # Clear text needs the explicit consent, as on the web.
    assert "allow_unencrypted" in fields
    assert not MailAccount.objects.exists()


def test_update_changes_only_what_is_sent_and_keeps_the_password(
    app, dovecot, mail_user
):
    """PATCH with a new name tests the stored login again and keeps the rest."""
    account = add_imap_account(app, dovecot, mail_user)
    response = app.patch(f"{API}/accounts/{account['id']}/", {"label": "Work"})
    assert response.status_code == 200, response.content
    assert response.json()["label"] == "Work"
    assert response.json()["port"] == dovecot.imap_port
    saved = MailAccount.objects.get(pk=account["id"])
    assert saved.get_password() == mail_user.password

    response = app.patch(
        f"{API}/accounts/{account['id']}/", {"folder_sent": "INBOX/Sent mail"}
    )
    assert response.json()["special_folders"] == {"sent": "INBOX/Sent mail"}
    assert response.json()["label"] == "Work"

    response = app.patch(f"{API}/accounts/{account['id']}/", {"password": "wrong"})
    assert response.status_code == 400
    saved.refresh_from_db()
    assert saved.get_password() == mail_user.password
    assert saved.label == "Work"

    assert app.delete(f"{API}/accounts/{account['id']}/").status_code == 204
    assert not MailAccount.objects.filter(pk=account["id"]).exists()


def test_mobile_session_imap(app, dovecot, mail_user):
    """Log in, list, page 500 messages by cursor, open, download, flag, move, delete."""
    dovecot.generate(mail_user.username, 500)
    dovecot.deliver(mail_user.username, load_eml("attachments.eml"))
    account = add_imap_account(app, dovecot, mail_user)
    base = f"{API}/accounts/{account['id']}"

    folders = app.get(f"{base}/folders/").json()
    by_name = {f["name"]: f for f in folders}
    assert by_name["INBOX"]["special_use"] == "inbox"
    assert by_name["INBOX"]["total"] == 501
    assert by_name["Trash"]["special_use"] == "trash"

    # The newest (the attachment mail) first, then every generated one once,
    # newest first, by following the cursors.
    seen_uids: list[int] = []
    subjects: list[str] = []
    response = app.get(f"{base}/messages/", folder="INBOX", limit=45)
    pages = 0
    while True:
        assert response.status_code == 200, response.content
        page = response.json()
        assert page["total"] == 501
        seen_uids += [m["uid"] for m in page["messages"]]
        subjects += [m["subject"] for m in page["messages"]]
        pages += 1
        if page["next_cursor"] is None:
            assert page["next"] is None
            break
        response = app.get(f"{base}/messages/", cursor=page["next_cursor"])
    assert pages == 12
    assert len(seen_uids) == len(set(seen_uids)) == 501
    assert seen_uids == sorted(seen_uids, reverse=True)
    assert subjects[0] == "Your documents"
    assert subjects[1].startswith("Generated message 500 of 500")
    assert subjects[-1].startswith("Generated message 1 of 500")
    # The next URL works as well as the cursor.
    first = app.get(f"{base}/messages/", limit=200).json()
    following = app.get(first["next"]).json()
    assert following["messages"][0]["uid"] == seen_uids[200]

    validity = page["validity"]
    uid = seen_uids[0]
    summary = first["messages"][0]
    assert summary["from"] == [{"name": "Hiring", "email": "jobs@example.com"}]
    assert summary["has_attachments"] is True
    assert summary["seen"] is False

    # Open it without marking it read, then read it for real.
    ref = {"folder": "INBOX", "validity": validity}
    message = app.get(f"{base}/messages/{uid}/", mark_seen=0, **ref).json()
    assert message["subject"] == "Your documents"
    assert message["seen"] is False
    assert "<i>attached</i>" in message["html"]
    assert message["text"].startswith("Please find")
    assert message["remote_content_blocked"] is False
    names = {a["filename"]: a for a in message["attachments"]}
    assert "naïve résumé.pdf" in names
    pdf = names["naïve résumé.pdf"]
    download = app.client.get(pdf["url"], headers={"X-Session-Token": app.token})
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"%PDF-1.4")
    assert download["Content-Type"] == "application/octet-stream"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert (
        "filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.pdf"
        in (download["Content-Disposition"])
    )
    raw = app.client.get(message["raw_url"], headers={"X-Session-Token": app.token})
    assert b"Message-ID: <att-1@example.com>" in b"".join(raw.streaming_content)

    # Mark read and flagged.
    response = app.patch(
        f"{base}/messages/{uid}/?folder=INBOX&validity={validity}",
        {"seen": True, "flagged": True},
    )
    assert response.status_code == 204
    row = app.get(f"{base}/messages/", limit=1).json()["messages"][0]
    assert (row["uid"], row["seen"], row["flagged"]) == (uid, True, True)

    # Move one to a new folder, delete another (to the Trash).
    assert app.post(f"{base}/folders/", {"name": "Receipts"}).status_code == 201
    response = app.post(f"{base}/folders/", {"name": "2026", "parent": "Receipts"})
    assert response.status_code == 201
    target = response.json()["name"]
    assert target == "Receipts/2026"
    response = app.post(
        f"{base}/messages/{uid}/move/?folder=INBOX&validity={validity}",
        {"to_folder": target},
    )
    assert response.status_code == 204
    assert len(uids_in(app, account["id"], target)) == 1
    response = app.delete(
        f"{base}/messages/{seen_uids[1]}/?folder=INBOX&validity={validity}"
    )
    assert response.status_code == 204
    assert dovecot.count(mail_user.username, "INBOX") == 499
    assert dovecot.count(mail_user.username, "Trash") == 1

    # Bulk: three read, then two moved.
    three = seen_uids[2:5]
    response = app.post(
        f"{base}/messages/bulk/",
        {"folder": "INBOX", "validity": validity, "uids": three, "action": "read"},
    )
    assert response.status_code == 204
    rows = app.get(f"{base}/messages/", limit=3).json()["messages"]
    assert [(r["uid"], r["seen"]) for r in rows] == [(u, True) for u in three]
    response = app.post(
        f"{base}/messages/bulk/",
        {
            "folder": "INBOX",
            "validity": validity,
            "uids": three[:2],
            "action": "move",
            "to_folder": target,
        },
    )
    assert response.status_code == 204
    assert len(uids_in(app, account["id"], target)) == 3

    # Folder names (with their /) travel in ?folder=.
    response = app.patch(f"{base}/folder/?folder={target}", {"name": "Paid"})
    assert response.status_code == 200, response.content
    renamed = response.json()["name"]
    assert renamed == "Receipts/Paid"
    moved = app.get(f"{base}/folder/", folder=renamed).json()
    assert moved["total"] == 3
    assert len(uids_in(app, account["id"], renamed)) == 3
    assert app.get(f"{base}/folder/", folder=target).status_code == 404
    assert app.post(f"{base}/folders/", {"name": "Old"}).status_code == 201
    response = app.delete(f"{base}/folder/?folder=Old")
    assert response.status_code == 204
    listing = app.get(f"{base}/folders/")
    assert listing.status_code == 200, listing.content
    assert "Old" not in {f["name"] for f in listing.json()}
    # A refusal of the server is a 400 with its reason.
    response = app.post(f"{base}/folders/", {"name": "a.b"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "folder_refused"

    quota = app.get(f"{base}/quota/").json()
    assert quota["limit_bytes"] == 100 * 1024 * 1024
    assert quota["used_bytes"] > 0


@pytest.mark.parametrize(
    "params",
    [
        {"unread": "1"},
        {"flagged": "1"},
        {"q": "Needle"},
        {"sort": "subject", "order": "asc"},
    ],
)
def test_list_filters_search_and_sort(app, dovecot, mail_user, params):
    """unread, flagged, q and sort select and order like the browser list."""
    day = datetime(2026, 11, 1, tzinfo=UTC)
    dovecot.deliver(mail_user.username, make("b Needle"), flags="S", internaldate=day)
    dovecot.deliver(
        mail_user.username,
        make("a other"),
        flags="F",
        internaldate=day + timedelta(hours=1),
    )
    dovecot.deliver(
        mail_user.username, make("c third"), internaldate=day + timedelta(hours=2)
    )
    account = add_imap_account(app, dovecot, mail_user)
    response = app.get(f"{API}/accounts/{account['id']}/messages/", **params)
    assert response.status_code == 200, response.content
    subjects = [m["subject"] for m in response.json()["messages"]]
    expected = {
        "unread": ["c third", "a other"],
        "flagged": ["a other"],
        "q": ["b Needle"],
        "sort": ["a other", "b Needle", "c third"],
    }[next(iter(params))]
    assert subjects == expected


def test_remote_images_blocked_unless_asked(app, user, dovecot, mail_user):
    """Remote content is replaced and reported; remote=1 lets it through the proxy."""
    dovecot.deliver(
        mail_user.username,
        make("Pics", html='<p>Hi<img src="https://tracker.example.com/p.gif"></p>'),
    )
    account = add_imap_account(app, dovecot, mail_user)
    page = app.get(f"{API}/accounts/{account['id']}/messages/").json()
    ref = {"folder": "INBOX", "validity": page["validity"]}
    url = f"{API}/accounts/{account['id']}/messages/{page['messages'][0]['uid']}/"
    blocked = app.get(url, **ref).json()
    assert blocked["remote_content_blocked"] is True
    assert blocked["remote_hosts"] == ["tracker.example.com"]
    assert "tracker.example.com" not in blocked["html"]
    shown = app.get(url, remote=1, **ref).json()
    assert shown["remote_content_blocked"] is False
    assert "/mail/image/?u=" in shown["html"]
    # A sender the user trusts (set in the browser) is shown without asking.
    TrustedSender.objects.create(user=user, email="ann@example.net")
    trusted = app.get(url, **ref).json()
    assert trusted["remote_content_blocked"] is False


def test_deleting_the_folder_just_read_leaves_the_account_usable(
    app, dovecot, mail_user
):
    """After deleting a folder that was just listed, the account still answers."""
    dovecot.deliver(mail_user.username, make("One"), folder="Old")
    account = add_imap_account(app, dovecot, mail_user)
    base = f"{API}/accounts/{account['id']}"
    assert len(uids_in(app, account["id"], "Old")) == 1
    assert app.delete(f"{base}/folder/?folder=Old").status_code == 204
    listing = app.get(f"{base}/folders/")
    assert listing.status_code == 200, listing.content
