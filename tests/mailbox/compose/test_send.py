"""Sending from the compose page: real SMTP (aiosmtpd) and the real Dovecot for Sent."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mailbox.compose.models import Correspondent, OutgoingMessage
from tests.mailbox.compose.helpers import flags_of, folder_messages, parse

SUBJECT = "Grüße aus Köln — 東京 ✓"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


def compose(client, account, *, files=(), **fields):
    data = {
        "account": account.pk,
        "to": "",
        "cc": "",
        "bcc": "",
        "subject": "",
        "body": "",
        "action": "send",
        **fields,
    }
    if files:
        data["attachments"] = list(files)
    return client.post(reverse("mailbox:compose_new", args=[account.pk]), data)


def test_send_with_non_ascii_subject_names_and_attachments(
    user_client,
    sending_account,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    """The bytes the SMTP server got parse back to the same subject, names, files."""
    files = [
        SimpleUploadedFile("naïve résumé.pdf", PDF, "application/pdf"),
        SimpleUploadedFile(
            "日本語 ファイル.txt", "こんにちは\n".encode(), "text/plain"
        ),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = compose(
            user_client,
            sending_account,
            to="Jöhn Dœ <john@example.net>",
            cc='"Müller, Anna" <anna@example.net>',
            bcc="hidden@example.net",
            subject=SUBJECT,
            body="Hallo!\n\nSiehe https://example.org/x?a=1&b=2\n",
            files=files,
        )
    outgoing = OutgoingMessage.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("mailbox:compose_status", args=[outgoing.pk])
    assert outgoing.state == OutgoingMessage.State.SENT, outgoing.last_error

    [received] = smtp_server.received
    assert sorted(received.rcpt_tos) == [
        "anna@example.net",
        "hidden@example.net",
        "john@example.net",
    ]
    assert received.mail_from == sending_account.email
    assert b"hidden@example.net" not in received.data  # Bcc: envelope only
    assert received.data.isascii()  # RFC 2047 / 2231 encoded, 7-bit bodies
    message = parse(received.data)
    assert message["Subject"] == SUBJECT
    assert message["To"].addresses[0].display_name == "Jöhn Dœ"
    assert message["Cc"].addresses[0].display_name == "Müller, Anna"
    assert message["Message-ID"] == outgoing.message_id
    assert message["Date"].datetime is not None
    attachments = {
        part.get_filename(): part.get_content() for part in message.iter_attachments()
    }
    assert attachments == {
        "naïve résumé.pdf": PDF,
        "日本語 ファイル.txt": "こんにちは\n",
    }
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Siehe https://example.org/x?a=1&b=2" in plain
    assert '<a href="https://example.org/x?a=1&amp;b=2"' in html
    assert "<p>Hallo!</p>" in html

    # The Sent copy is on the IMAP server, read, with the Bcc header.
    [(uid, sent)] = folder_messages(sending_account, "Sent")
    copy = parse(sent)
    assert copy["Subject"] == SUBJECT
    assert copy["Bcc"] == "hidden@example.net"
    assert copy["Message-ID"] == outgoing.message_id
    assert b"\\Seen" in flags_of(sending_account, "Sent", uid)
    assert smtp_server.logins == ["PLAIN"]

    assert set(
        Correspondent.objects.filter(user=outgoing.user).values_list("email", "name")
    ) == {
        ("john@example.net", "Jöhn Dœ"),
        ("anna@example.net", "Müller, Anna"),
        ("hidden@example.net", ""),
    }
    page = user_client.get(response["Location"]).content.decode()
    assert "Sent" in page


def test_status_page_says_sending_while_queued(user_client, sending_account):
    """Until the worker is done, the status page says "Sending…" and refreshes."""
    outgoing = OutgoingMessage.objects.create(
        user=sending_account.user,
        account=sending_account,
        to="a@example.net",
        subject="x",
        message_id="<q@example.org>",
        state=OutgoingMessage.State.QUEUED,
    )
    page = user_client.get(
        reverse("mailbox:compose_status", args=[outgoing.pk])
    ).content.decode()
    assert "Sending…" in page
    assert 'http-equiv="refresh"' in page
    status = user_client.get(
        reverse("mailbox:compose_status", args=[outgoing.pk]) + "?format=json"
    ).json()
    assert status["state"] == "queued"


def test_temporary_failure_is_retried_then_sent(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """A 451 reply is temporary: the task tries again and the message goes out."""
    smtp_server.fail_next("451 4.3.0 Mailbox busy, try again later", times=2)
    with django_capture_on_commit_callbacks(execute=True):
        compose(user_client, sending_account, to="a@example.net", subject="retry me")
    outgoing = OutgoingMessage.objects.get()
    assert outgoing.state == OutgoingMessage.State.SENT
    assert outgoing.attempts == 3
    assert [parse(r.data)["Subject"] for r in smtp_server.received] == ["retry me"]
    # The same bytes each time: the MIME is built once and kept.
    assert parse(smtp_server.received[0].data)["Message-ID"] == outgoing.message_id


def test_temporary_failures_past_the_retries_leave_the_message_failed(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """When every retry meets a 4xx, the message ends failed, with the reply, kept."""
    smtp_server.fail_next("421 4.7.0 Too busy", times=20)
    with django_capture_on_commit_callbacks(execute=True):
        compose(user_client, sending_account, to="a@example.net", subject="never")
    outgoing = OutgoingMessage.objects.get()
    assert outgoing.state == OutgoingMessage.State.FAILED
    assert "421 4.7.0 Too busy" in outgoing.last_error
    assert outgoing.attempts == 7  # the first try and six retries
    assert smtp_server.received == []


def test_permanent_failure_is_reported_and_the_message_kept(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """A 550 reply is shown with the server's text; the message stays editable."""
    smtp_server.fail_next("550 5.7.1 Relaying denied for this sender")
    with django_capture_on_commit_callbacks(execute=True):
        response = compose(
            user_client, sending_account, to="a@example.net", subject="refused"
        )
    outgoing = OutgoingMessage.objects.get()
    assert outgoing.state == OutgoingMessage.State.FAILED
    assert outgoing.attempts == 1  # never retried
    assert "550 5.7.1 Relaying denied for this sender" in outgoing.last_error
    assert smtp_server.received == []
    page = user_client.get(response["Location"]).content.decode()
    assert "Not sent" in page
    assert "550 5.7.1 Relaying denied for this sender" in page

    edit_url = reverse("mailbox:compose_edit", args=[outgoing.pk])
    page = user_client.get(edit_url).content.decode()
    assert "refused" in page  # the subject is still there
    assert "550 5.7.1" in page
    with django_capture_on_commit_callbacks(execute=True):
        user_client.post(
            edit_url,
            {
                "account": sending_account.pk,
                "to": "a@example.net",
                "subject": "refused, second try",
                "body": "",
                "action": "send",
            },
        )
    outgoing.refresh_from_db()
    assert outgoing.state == OutgoingMessage.State.SENT
    assert [parse(r.data)["Subject"] for r in smtp_server.received] == [
        "refused, second try"
    ]


def test_a_refused_recipient_fails_the_whole_message(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """A refused address among good ones: nothing is sent and the address is named."""
    with django_capture_on_commit_callbacks(execute=True):
        compose(
            user_client,
            sending_account,
            to="a@example.net, nobody@refused.example",
            subject="x",
        )
    outgoing = OutgoingMessage.objects.get()
    assert outgoing.state == OutgoingMessage.State.FAILED
    assert "nobody@refused.example" in outgoing.last_error
    assert "550 5.1.1" in outgoing.last_error
    assert smtp_server.received == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Hello\r\nBcc: victim@example.net"),
        ("subject", "Hello\nX-Injected: yes"),
        ("to", "a@example.net\r\nBcc: victim@example.net"),
        ("cc", "a@example.net\nSubject: spoofed"),
        ("bcc", "a@example.net%0d%0aBcc: victim@example.net"),
        ("to", "not an address"),
        ("to", "a@example.net, @nowhere"),
        ("to", "Name <a@exa mple.net>"),
    ],
)
def test_header_injection_and_bad_addresses_are_refused(
    user_client,
    sending_account,
    smtp_server,
    django_capture_on_commit_callbacks,
    field,
    value,
):
    """Line breaks or bad addresses give a field error; nothing is saved or sent."""
    fields = {"to": "a@example.net", "subject": "ok", field: value}
    with django_capture_on_commit_callbacks(execute=True):
        response = compose(user_client, sending_account, **fields)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors
    assert OutgoingMessage.objects.count() == 0
    assert smtp_server.received == []
    # What was typed is still in the form.
    assert response.context["form"].data["body"] == ""


def test_send_without_recipients_is_refused(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """No recipient: the draft is kept and the To field says why."""
    with django_capture_on_commit_callbacks(execute=True):
        response = compose(user_client, sending_account, subject="to nobody")
    assert response.status_code == 400
    assert "to" in response.context["form"].errors
    assert OutgoingMessage.objects.get().state == OutgoingMessage.State.DRAFT
    assert smtp_server.received == []


def test_attachments_above_the_limit_are_refused_and_the_text_kept(
    user_client, sending_account, smtp_server, settings
):
    """Past WEBMAIL_ATTACHMENT_MAX_MB the upload is refused; the text is kept."""
    settings.WEBMAIL_ATTACHMENT_MAX_MB = 1
    big = SimpleUploadedFile("big.bin", b"x" * (1024 * 1024 + 10))
    response = compose(
        user_client,
        sending_account,
        to="a@example.net",
        subject="big one",
        body="my long text",
        files=[big],
        action="attach",
    )
    assert response.status_code == 400
    assert "at most 1 MB" in response.context["form"].non_field_errors()[0]
    outgoing = OutgoingMessage.objects.get()
    assert outgoing.body == "my long text"
    assert outgoing.attachments.count() == 0
    assert smtp_server.received == []


def test_attachments_are_added_and_removed_before_sending(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """Attach, remove one, send: only the kept file goes out."""
    compose(
        user_client,
        sending_account,
        to="a@example.net",
        files=[
            SimpleUploadedFile("keep.txt", b"keep"),
            SimpleUploadedFile("drop.txt", b"drop"),
        ],
        action="attach",
    )
    outgoing = OutgoingMessage.objects.get()
    drop = outgoing.attachments.get(filename="drop.txt")
    edit_url = reverse("mailbox:compose_edit", args=[outgoing.pk])
    page = user_client.get(edit_url).content.decode()
    assert "keep.txt" in page
    assert "drop.txt" in page
    base = {"account": sending_account.pk, "to": "a@example.net", "subject": "s"}
    user_client.post(edit_url, {**base, "action": f"remove:{drop.pk}"})
    with django_capture_on_commit_callbacks(execute=True):
        user_client.post(edit_url, {**base, "action": "send"})
    [received] = smtp_server.received
    names = [p.get_filename() for p in parse(received.data).iter_attachments()]
    assert names == ["keep.txt"]


def test_signature_is_added_to_new_messages(user_client, sending_account):
    """The account's signature follows the "-- " separator in a new message."""
    user_client.post(
        reverse("mailbox:identity_edit", args=[sending_account.pk]),
        {"display_name": "Alice Liddell", "signature": "Alice\nWonderland Ltd."},
    )
    response = user_client.get(
        reverse("mailbox:compose_new", args=[sending_account.pk])
    )
    assert response.context["form"].initial["body"] == "\n\n-- \nAlice\nWonderland Ltd."


def test_the_identity_name_is_in_from(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """From carries the account's display name (RFC 2047 encoded) and address."""
    user_client.post(
        reverse("mailbox:identity_edit", args=[sending_account.pk]),
        {"display_name": "Zoë Ångström", "signature": ""},
    )
    with django_capture_on_commit_callbacks(execute=True):
        compose(user_client, sending_account, to="a@example.net", subject="hi")
    [received] = smtp_server.received
    sender = parse(received.data)["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == (
        "Zoë Ångström",
        sending_account.email,
    )
    assert b"=?utf-8?" in received.data.split(b"\r\n\r\n")[0]


def test_identity_name_with_a_line_break_is_refused(user_client, sending_account):
    response = user_client.post(
        reverse("mailbox:identity_edit", args=[sending_account.pk]),
        {"display_name": "Eve\r\nBcc: x@example.net", "signature": ""},
    )
    assert response.status_code == 200
    assert "display_name" in response.context["form"].errors


def test_no_smtp_server_is_a_clear_error(
    user_client, imap_account, django_capture_on_commit_callbacks
):
    """An account without an outgoing server says so; sending is refused, draft kept."""
    page = user_client.get(reverse("mailbox:compose_new", args=[imap_account.pk]))
    assert "no outgoing (SMTP) server" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = compose(user_client, imap_account, to="a@example.net", subject="x")
    assert response.status_code == 400
    assert "account" in response.context["form"].errors
    assert OutgoingMessage.objects.get().state == OutgoingMessage.State.DRAFT


def test_correspondents_complete_addresses(
    user_client,
    sending_account,
    smtp_server,
    other_user,
    django_capture_on_commit_callbacks,
):
    """Addresses written to come back as suggestions, for their user only."""
    with django_capture_on_commit_callbacks(execute=True):
        compose(
            user_client,
            sending_account,
            to="Carol Jones <carol@example.net>",
            subject="x",
        )
    url = reverse("mailbox:compose_correspondents")
    assert user_client.get(url, {"q": "car"}).json()["results"] == [
        {
            "name": "Carol Jones",
            "email": "carol@example.net",
            "text": "Carol Jones <carol@example.net>",
        }
    ]
    assert user_client.get(url, {"q": "jones"}).json()["results"][0]["email"] == (
        "carol@example.net"
    )
    from tests.conftest import login

    assert login(other_user).get(url, {"q": "car"}).json()["results"] == []
    page = user_client.get(reverse("mailbox:compose_new", args=[sending_account.pk]))
    assert '<option value="Carol Jones &lt;carol@example.net&gt;">' in (
        page.content.decode()
    )


def test_an_oauth2_account_sends_with_xoauth2(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """An account connected with OAuth2 logs in to SMTP with its access token."""
    from accounts.models import AuthMethod
    from tests.servers import smtp as smtp_test

    sending_account.auth_method = AuthMethod.OAUTH2
    sending_account.set_oauth_tokens(
        access=smtp_test.OAUTH_TOKEN, refresh=None, expires_at=None
    )
    sending_account.save()
    with django_capture_on_commit_callbacks(execute=True):
        compose(user_client, sending_account, to="a@example.net", subject="oauth")
    outgoing = OutgoingMessage.objects.get()
    assert outgoing.state == OutgoingMessage.State.SENT, outgoing.last_error
    assert smtp_server.logins == ["XOAUTH2"]
    assert len(smtp_server.received) == 1


def test_a_lost_attachment_file_fails_the_message_instead_of_hanging(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """A message that cannot be built ends "Not sent" with the reason, editable."""
    from django.core.files.storage import default_storage

    compose(
        user_client,
        sending_account,
        to="a@example.net",
        files=[SimpleUploadedFile("a.txt", b"a")],
        action="attach",
    )
    outgoing = OutgoingMessage.objects.get()
    default_storage.delete(outgoing.attachments.get().file)
    with django_capture_on_commit_callbacks(execute=True):
        user_client.post(
            reverse("mailbox:compose_edit", args=[outgoing.pk]),
            {"account": sending_account.pk, "to": "a@example.net", "action": "send"},
        )
    outgoing.refresh_from_db()
    assert outgoing.state == OutgoingMessage.State.FAILED
    assert "could not be put together" in outgoing.last_error
    assert smtp_server.received == []


def test_a_forged_upload_content_type_cannot_add_headers(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """The browser's Content-Type is checked; a bad one is replaced by a guess."""
    upload = SimpleUploadedFile(
        "page.html", b"<p>x</p>", "text/html\r\nX-Injected: yes"
    )
    with django_capture_on_commit_callbacks(execute=True):
        compose(user_client, sending_account, to="a@example.net", files=[upload])
    [received] = smtp_server.received
    assert b"X-Injected" not in received.data
    [part] = list(parse(received.data).iter_attachments())
    assert part.get_content_type() == "text/html"


def test_without_a_worker_a_dead_server_does_not_hold_the_page(
    user_client,
    sending_account,
    smtp_server,
    settings,
    django_capture_on_commit_callbacks,
):
    """The embedded mode sends inside the request: one retry, then "Not sent"
    with the server's reply, instead of seven tries in a row."""
    settings.WEBMAIL_EAGER_SEND_RETRIES = 1
    smtp_server.fail_next("421 4.7.0 Too busy", times=20)
    with django_capture_on_commit_callbacks(execute=True):
        compose(user_client, sending_account, to="a@example.net", subject="later")
    outgoing = OutgoingMessage.objects.get()
    assert outgoing.state == OutgoingMessage.State.FAILED
    assert outgoing.attempts == 2
    assert "421 4.7.0 Too busy" in outgoing.last_error
