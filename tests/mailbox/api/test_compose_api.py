"""The compose API: drafts, attachments, send, replies, addresses, as apps use it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mailbox.compose.models import OutgoingMessage
from tests.mailbox.api.conftest import error_of
from tests.mailbox.compose.conftest import with_smtp
from tests.mailbox.compose.helpers import folder_messages, parse, validity_of

BASE = "/api/v1/"


@pytest.fixture
def account(imap_account, smtp_server):
    return with_smtp(imap_account, smtp_server)


def new_draft(app, account, **fields):
    return app.post(BASE + "outgoing/", {"account": account.pk, **fields})


def test_draft_autosave_attach_and_send(
    app, account, smtp_server, django_capture_on_commit_callbacks
):
    """Create, save again (Drafts copy replaced), attach, send (202), then sent."""
    created = new_draft(
        app, account, to="Jöhn <john@example.net>", subject="Hi", body="v1"
    )
    assert created.status_code == 201, created.content
    draft = created.json()
    assert draft["state"] == "draft"
    assert draft["to"] == "Jöhn <john@example.net>"
    assert draft["warning"] == ""
    url = f"{BASE}outgoing/{draft['id']}/"

    saved = app.patch(url, {"body": "v2", "subject": "Hi there ✓"})
    assert saved.status_code == 200, saved.content
    assert saved.json()["body"] == "v2"
    assert saved.json()["to"] == "Jöhn <john@example.net>"  # untouched fields kept
    [(_uid, copy)] = folder_messages(account, "Drafts")
    assert parse(copy)["Subject"] == "Hi there ✓"

    upload = app.client.post(
        url + "attachments/",
        {"file": SimpleUploadedFile("plan ü.pdf", b"%PDF-1.4 x", "application/pdf")},
        headers=app._headers(),
    )
    assert upload.status_code == 201, upload.content
    assert upload.json()["filename"] == "plan ü.pdf"

    with django_capture_on_commit_callbacks(execute=True):
        sent = app.post(url + "send/")
    assert sent.status_code == 202, sent.content
    assert sent.json()["state"] == "queued"
    assert app.get(url).json()["state"] == "sent"
    [received] = smtp_server.received
    message = parse(received.data)
    assert message["Subject"] == "Hi there ✓"
    assert [p.get_filename() for p in message.iter_attachments()] == ["plan ü.pdf"]
    assert folder_messages(account, "Drafts") == []
    assert len(folder_messages(account, "Sent")) == 1

    # Sent: no more changes.
    refused = app.patch(url, {"body": "too late"})
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "not_editable"

    suggestions = app.get(BASE + "correspondents/", q="joh").json()
    assert suggestions == [
        {"name": "Jöhn", "email": "john@example.net", "text": "Jöhn <john@example.net>"}
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hi\r\nBcc: victim@example.net"},
        {"to": "a@example.net\r\nBcc: victim@example.net"},
        {"cc": "a@example.net\nX-Evil: 1"},
        {"bcc": "not-an-address"},
    ],
)
def test_header_injection_is_refused(app, account, fields):
    response = new_draft(app, account, **{"to": "a@example.net", **fields})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert set(error["fields"]) == set(fields)
    assert OutgoingMessage.objects.count() == 0


def test_permanent_failure_comes_back_with_the_server_reply(
    app, account, smtp_server, django_capture_on_commit_callbacks
):
    draft = new_draft(app, account, to="a@example.net", subject="x").json()
    smtp_server.fail_next("550 5.7.1 Sender address rejected")
    with django_capture_on_commit_callbacks(execute=True):
        app.post(f"{BASE}outgoing/{draft['id']}/send/")
    state = app.get(f"{BASE}outgoing/{draft['id']}/").json()
    assert state["state"] == "failed"
    assert "550 5.7.1 Sender address rejected" in state["last_error"]
    # Still editable, and sendable again.
    assert (
        app.patch(f"{BASE}outgoing/{draft['id']}/", {"body": "again"}).json()["state"]
        == "draft"
    )


def test_attachment_size_limit(app, account, settings):
    settings.WEBMAIL_ATTACHMENT_MAX_MB = 1
    draft = new_draft(app, account, to="a@example.net").json()
    response = app.client.post(
        f"{BASE}outgoing/{draft['id']}/attachments/",
        {"file": SimpleUploadedFile("big.bin", b"x" * (1024 * 1024 + 1))},
        headers=app._headers(),
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert OutgoingMessage.objects.get().attachments.count() == 0


def test_send_without_smtp_server_is_refused(app, imap_account):
    draft = new_draft(app, imap_account, to="a@example.net").json()
    response = app.post(f"{BASE}outgoing/{draft['id']}/send/")
    assert response.status_code == 400
    assert "account" in error_of(response)["fields"]


def test_reply_through_the_api(app, account, dovecot, mail_user):
    dovecot.deliver(
        mail_user.username,
        b"From: Bob <bob@example.net>\r\nSubject: Lunch?\r\n"
        b"Message-ID: <lunch@example.net>\r\n\r\nNoon?\r\n",
    )
    response = app.post(
        f"{BASE}accounts/{account.pk}/respond/",
        {
            "folder": "INBOX",
            "validity": validity_of(account, "INBOX"),
            "uid": 1,
            "kind": "reply",
        },
    )
    assert response.status_code == 201, response.content
    draft = response.json()
    assert draft["to"] == "Bob <bob@example.net>"
    assert draft["subject"] == "Re: Lunch?"
    assert draft["in_reply_to"] == "<lunch@example.net>"
    assert "> Noon?" in draft["body"]


def test_other_users_outgoing_is_404(app, other_app, account):
    """Another user's draft or account: 404 for every endpoint, nothing changed."""
    mine = new_draft(app, account, to="a@example.net", subject="mine").json()
    url = f"{BASE}outgoing/{mine['id']}/"
    calls = [
        other_app.get(url),
        other_app.patch(url, {"subject": "stolen"}),
        other_app.delete(url),
        other_app.post(url + "send/"),
        other_app.client.post(
            url + "attachments/",
            {"file": SimpleUploadedFile("a.txt", b"a")},
            headers=other_app._headers(),
        ),
        other_app.delete(url + "attachments/1/"),
        other_app.post(
            f"{BASE}accounts/{account.pk}/respond/",
            {"folder": "INBOX", "validity": 1, "uid": 1, "kind": "reply"},
        ),
        other_app.post(
            f"{BASE}accounts/{account.pk}/drafts/open/",
            {"folder": "Drafts", "validity": 1, "uid": 1},
        ),
        other_app.post(BASE + "outgoing/", {"account": account.pk, "to": "a@b.org"}),
    ]
    for response in calls:
        assert response.status_code == 404, response.request
        assert error_of(response)["code"] == "not_found"
    assert [m["id"] for m in other_app.get(BASE + "outgoing/").json()] == []
    assert OutgoingMessage.objects.get().subject == "mine"


def test_compose_endpoints_need_a_token(account):
    from tests.mailbox.api.conftest import App

    anonymous = App()
    assert anonymous.get(BASE + "outgoing/").status_code == 401
    assert (
        anonymous.post(BASE + "outgoing/", {"account": account.pk}).status_code == 401
    )
    assert anonymous.get(BASE + "correspondents/").status_code == 401
