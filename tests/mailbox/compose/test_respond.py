"""Reply, reply all, forward: threading, quoting, carried attachments, flags."""

from __future__ import annotations

from django.urls import reverse

from mailbox.compose.models import OutgoingMessage
from mailbox.mime import parse_message
from tests.data.loader import load_eml
from tests.mailbox.compose.helpers import flags_of, folder_messages, parse, validity_of

ORIGINAL = (
    b"From: Bob Sender <bob@example.net>\r\n"
    b"Reply-To: Bob's List <list@example.net>\r\n"
    b"To: {me}, Carol <carol@example.net>\r\n"
    b"Cc: Dave <dave@example.net>, {me_upper}\r\n"
    b"Subject: =?utf-8?q?AW=3A_Re=3A_Gr=C3=BC=C3=9Fe?=\r\n"
    b"Date: Thu, 16 May 2024 17:45:00 +0000\r\n"
    b"Message-ID: <three@example.net>\r\n"
    b"In-Reply-To: <two@example.net>\r\n"
    b"References: <one@example.net> <two@example.net>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"First line\r\n"
    b"> an older quote\r\n"
)


def deliver_original(dovecot, mail_user, data: bytes | None = None) -> int:
    if data is None:
        me = mail_user.email.encode()
        data = ORIGINAL.replace(b"{me}", me).replace(b"{me_upper}", me.upper())
    dovecot.deliver(mail_user.username, data)
    return 1


def respond(client, account, kind: str, uid: int = 1) -> OutgoingMessage:
    response = client.post(
        reverse("mailbox:compose_respond", args=[account.pk]),
        {
            "folder": "INBOX",
            "v": validity_of(account, "INBOX"),
            "uid": uid,
            "kind": kind,
        },
    )
    assert response.status_code == 302, response.content[:500]
    message = OutgoingMessage.objects.latest("pk")
    assert response["Location"] == reverse("mailbox:compose_edit", args=[message.pk])
    return message


def send(client, message: OutgoingMessage, capture) -> None:
    with capture(execute=True):
        response = client.post(
            reverse("mailbox:compose_edit", args=[message.pk]),
            {
                "account": message.account_id,
                "to": message.to,
                "cc": message.cc,
                "bcc": message.bcc,
                "subject": message.subject,
                "body": "My answer\n" + message.body,
                "action": "send",
            },
        )
    assert response.status_code == 302, response.context["form"].errors
    message.refresh_from_db()
    assert message.state == OutgoingMessage.State.SENT, message.last_error


def test_reply_threads_quotes_and_marks_the_original_answered(
    user_client,
    sending_account,
    dovecot,
    mail_user,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    """Reply goes to Reply-To, threads with In-Reply-To/References, sets \\Answered."""
    deliver_original(dovecot, mail_user)
    draft = respond(user_client, sending_account, "reply")
    assert draft.to == "Bob's List <list@example.net>"
    assert draft.cc == ""
    assert draft.subject == "Re: Grüße"
    assert draft.in_reply_to == "<three@example.net>"
    assert draft.references == "<one@example.net> <two@example.net> <three@example.net>"
    assert "Bob Sender <bob@example.net> wrote:" in draft.body
    assert "> First line\n>> an older quote" in draft.body
    page = user_client.get(reverse("mailbox:compose_edit", args=[draft.pk]))
    assert "Re: Grüße" in page.content.decode()

    send(user_client, draft, django_capture_on_commit_callbacks)
    [received] = smtp_server.received
    sent = parse(received.data)
    assert sent["In-Reply-To"] == "<three@example.net>"
    assert sent["References"] == (
        "<one@example.net> <two@example.net> <three@example.net>"
    )
    assert sent["Subject"] == "Re: Grüße"
    assert received.rcpt_tos == ["list@example.net"]
    assert b"\\Answered" in flags_of(sending_account, "INBOX", 1)
    assert b"$Forwarded" not in flags_of(sending_account, "INBOX", 1)


def test_reply_all_adds_everyone_but_me(
    user_client, sending_account, dovecot, mail_user
):
    """Reply all: Reply-To in To; the original's To and Cc in Cc, not my addresses."""
    deliver_original(dovecot, mail_user)
    draft = respond(user_client, sending_account, "reply_all")
    assert draft.to == "Bob's List <list@example.net>"
    assert draft.cc == "Carol <carol@example.net>, Dave <dave@example.net>"


def test_reply_without_reply_to_goes_to_the_sender(
    user_client, sending_account, dovecot, mail_user
):
    data = load_eml("attachments.eml")
    dovecot.deliver(mail_user.username, data)
    draft = respond(user_client, sending_account, "reply")
    assert draft.to == "Hiring <jobs@example.com>"
    assert draft.subject == "Re: Your documents"
    assert draft.references == "<att-1@example.com>"


def test_forward_carries_attachments_and_marks_forwarded(
    user_client,
    sending_account,
    dovecot,
    mail_user,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    """Forward inline: header block and text quoted, the original's files attached."""
    dovecot.deliver(mail_user.username, load_eml("attachments.eml"))
    draft = respond(user_client, sending_account, "forward")
    assert draft.subject == "Fwd: Your documents"
    assert draft.to == ""
    assert draft.in_reply_to == ""
    assert "-------- Forwarded message --------" in draft.body
    assert "From: Hiring <jobs@example.com>" in draft.body
    assert "Please find your documents attached." in draft.body
    carried = [
        a.filename
        for a in parse_message(load_eml("attachments.eml")).attachments
        if not a.is_inline
    ]
    assert "naïve résumé.pdf" in carried
    assert "notes.txt" in carried
    assert [a.filename for a in draft.attachments.all()] == carried
    draft.to = "eve@example.net"
    send(user_client, draft, django_capture_on_commit_callbacks)
    [received] = smtp_server.received
    sent = {a.get_filename(): a for a in parse(received.data).iter_attachments()}
    assert list(sent) == carried
    assert sent["naïve résumé.pdf"].get_content().startswith(b"%PDF-1.4")
    assert sent["notes.txt"].get_content_type() == "text/plain"
    assert b"$Forwarded" in flags_of(sending_account, "INBOX", 1)
    assert b"\\Answered" not in flags_of(sending_account, "INBOX", 1)


def test_forward_as_attachment_attaches_the_whole_original(
    user_client,
    sending_account,
    dovecot,
    mail_user,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    """Forward as attachment: the original travels as message/rfc822, intact."""
    deliver_original(dovecot, mail_user)
    draft = respond(user_client, sending_account, "forward_attached")
    assert draft.subject == "Fwd: AW: Re: Grüße"
    draft.to = "eve@example.net"
    send(user_client, draft, django_capture_on_commit_callbacks)
    [received] = smtp_server.received
    [attached] = list(parse(received.data).iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    inner = attached.get_content()
    assert inner["Message-ID"] == "<three@example.net>"
    assert inner["Subject"] == "AW: Re: Grüße"
    assert "First line" in inner.get_content()


def test_subject_prefixes_are_not_doubled(
    user_client, sending_account, dovecot, mail_user
):
    data = ORIGINAL.replace(b"{me}", b"x@example.net").replace(b"{me_upper}", b"")
    data = data.replace(
        b"Subject: =?utf-8?q?AW=3A_Re=3A_Gr=C3=BC=C3=9Fe?=", b"Subject: Fw: TR: Plan"
    )
    dovecot.deliver(mail_user.username, data)
    assert respond(user_client, sending_account, "forward").subject == "Fwd: Plan"
    assert respond(user_client, sending_account, "reply").subject == "Re: Fw: TR: Plan"


def test_the_sent_reply_is_in_sent_with_its_threading(
    user_client,
    sending_account,
    dovecot,
    mail_user,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    deliver_original(dovecot, mail_user)
    draft = respond(user_client, sending_account, "reply")
    send(user_client, draft, django_capture_on_commit_callbacks)
    [(_uid, copy)] = folder_messages(sending_account, "Sent")
    assert parse(copy)["In-Reply-To"] == "<three@example.net>"


def test_reply_to_a_stale_folder_reloads(
    user_client, sending_account, dovecot, mail_user
):
    """A reference with another UIDVALIDITY creates nothing; back to the list."""
    deliver_original(dovecot, mail_user)
    response = user_client.post(
        reverse("mailbox:compose_respond", args=[sending_account.pk]),
        {"folder": "INBOX", "v": 1, "uid": 1, "kind": "reply"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("mailbox:message_list", args=[sending_account.pk])
    )
    assert OutgoingMessage.objects.count() == 0


def test_reply_from_the_message_page(user_client, sending_account, dovecot, mail_user):
    """The message page offers Reply, Reply all, Forward and Forward as attachment."""
    deliver_original(dovecot, mail_user)
    validity = validity_of(sending_account, "INBOX")
    page = user_client.get(
        reverse("mailbox:message_view", args=[sending_account.pk]),
        {"folder": "INBOX", "v": validity, "uid": 1},
    ).content.decode()
    for kind in ("reply", "reply_all", "forward", "forward_attached"):
        assert f'name="kind" value="{kind}"' in page
    assert reverse("mailbox:compose_respond", args=[sending_account.pk]) in page
    assert "Edit draft" not in page
