"""Drafts: autosave and "Save draft" replace the previous version in Drafts; resume."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailbox.compose.models import OutgoingMessage
from mailbox.store.models import LocalFolder, StoredMessage
from mailbox.store.raw import raw_read
from tests.mailbox.compose.helpers import flags_of, folder_messages, parse, validity_of


def autosave(client, account, message_id=None, **fields):
    data = {
        "account": account.pk,
        "to": "",
        "cc": "",
        "bcc": "",
        "subject": "",
        "body": "",
        **fields,
    }
    if message_id is not None:
        data["message"] = message_id
    return client.post(reverse("mailbox:compose_autosave"), data)


def test_autosave_replaces_the_previous_version_in_drafts(user_client, sending_account):
    """Each autosave puts the latest version in Drafts (\\Draft), the last removed."""
    first = autosave(
        user_client,
        sending_account,
        to="a@example.net",
        bcc="secret@example.net",
        subject="Plan",
        body="version 1",
    )
    assert first.status_code == 200, first.content
    body = first.json()
    message = OutgoingMessage.objects.get(pk=body["id"])
    assert body["edit_url"] == reverse("mailbox:compose_edit", args=[message.pk])
    assert body["warning"] == ""
    [(uid1, data)] = folder_messages(sending_account, "Drafts")
    assert parse(data).get_body(("plain",)).get_content().strip() == "version 1"
    assert parse(data)["Bcc"] == "secret@example.net"  # drafts keep their Bcc
    assert b"\\Draft" in flags_of(sending_account, "Drafts", uid1)

    second = autosave(
        user_client,
        sending_account,
        message.pk,
        to="a@example.net",
        subject="Plan",
        body="version 2",
    )
    assert second.json()["id"] == message.pk
    [(uid2, data)] = folder_messages(sending_account, "Drafts")
    assert uid2 != uid1
    assert parse(data).get_body(("plain",)).get_content().strip() == "version 2"
    # The same Message-ID in every version.
    assert parse(data)["Message-ID"] == message.message_id
    assert OutgoingMessage.objects.count() == 1


def test_save_draft_button_and_resume(user_client, sending_account):
    """ "Save draft" without JavaScript; the draft reopens with what was typed."""
    response = user_client.post(
        reverse("mailbox:compose_new", args=[sending_account.pk]),
        {
            "account": sending_account.pk,
            "to": "Zoë <zoe@example.net>",
            "cc": "",
            "bcc": "",
            "subject": "Unfinished ✎",
            "body": "half a thought",
            "action": "save",
        },
    )
    message = OutgoingMessage.objects.get()
    assert response["Location"] == reverse("mailbox:compose_edit", args=[message.pk])
    page = user_client.get(response["Location"])
    form = page.context["form"]
    assert form.initial["to"] == "Zoë <zoe@example.net>"
    assert form.initial["subject"] == "Unfinished ✎"
    assert form.initial["body"] == "half a thought"
    assert "Draft saved." in page.content.decode()
    assert len(folder_messages(sending_account, "Drafts")) == 1

    outbox = user_client.get(reverse("mailbox:outbox")).content.decode()
    assert "Unfinished ✎" in outbox


def test_a_draft_in_the_drafts_folder_opens_in_the_compose_form(
    user_client, sending_account
):
    """Opening our own draft from the Drafts folder goes back to the same draft."""
    autosave(user_client, sending_account, to="a@example.net", subject="Mine")
    message = OutgoingMessage.objects.get()
    validity = validity_of(sending_account, "Drafts")
    page = user_client.get(
        reverse("mailbox:message_view", args=[sending_account.pk]),
        {"folder": "Drafts", "v": validity, "uid": message.draft_uid},
    ).content.decode()
    assert "Edit draft" in page
    response = user_client.post(
        reverse("mailbox:draft_edit", args=[sending_account.pk]),
        {"folder": "Drafts", "v": validity, "uid": message.draft_uid},
    )
    assert response["Location"] == reverse("mailbox:compose_edit", args=[message.pk])
    assert OutgoingMessage.objects.count() == 1


def test_a_draft_written_elsewhere_is_taken_over(
    user_client, sending_account, dovecot, mail_user
):
    """A draft of another client opens with its fields; saving replaces it there."""
    dovecot.deliver(
        mail_user.username,
        b"From: " + mail_user.email.encode() + b"\r\n"
        b"To: Bob <bob@example.net>\r\n"
        b"Cc: carol@example.net\r\n"
        b"Bcc: dave@example.net\r\n"
        b"Subject: From my phone\r\n"
        b"Message-ID: <phone-draft@example.org>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"typed on the train\r\n",
        folder="Drafts",
        flags="\\Draft",
    )
    validity = validity_of(sending_account, "Drafts")
    response = user_client.post(
        reverse("mailbox:draft_edit", args=[sending_account.pk]),
        {"folder": "Drafts", "v": validity, "uid": 1},
    )
    message = OutgoingMessage.objects.get()
    assert response["Location"] == reverse("mailbox:compose_edit", args=[message.pk])
    assert message.to == "Bob <bob@example.net>"
    assert message.cc == "carol@example.net"
    assert message.bcc == "dave@example.net"
    assert message.subject == "From my phone"
    assert message.body == "typed on the train"
    assert message.message_id == "<phone-draft@example.org>"

    autosave(
        user_client,
        sending_account,
        message.pk,
        to=message.to,
        subject="From my phone",
        body="finished at home",
    )
    [(_uid, data)] = folder_messages(sending_account, "Drafts")
    assert "finished at home" in parse(data).get_body(("plain",)).get_content()


def test_sending_removes_the_draft(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """Once sent, the draft's copy leaves Drafts and the message is in Sent."""
    autosave(user_client, sending_account, to="a@example.net", subject="Go")
    message = OutgoingMessage.objects.get()
    assert len(folder_messages(sending_account, "Drafts")) == 1
    with django_capture_on_commit_callbacks(execute=True):
        user_client.post(
            reverse("mailbox:compose_edit", args=[message.pk]),
            {
                "account": sending_account.pk,
                "to": "a@example.net",
                "subject": "Go",
                "body": "",
                "action": "send",
            },
        )
    message.refresh_from_db()
    assert message.state == OutgoingMessage.State.SENT
    assert folder_messages(sending_account, "Drafts") == []
    assert len(folder_messages(sending_account, "Sent")) == 1
    # A sent message cannot be edited any more: its page is the status page.
    response = user_client.get(reverse("mailbox:compose_edit", args=[message.pk]))
    assert response["Location"] == reverse("mailbox:compose_status", args=[message.pk])


def test_discard_removes_the_draft_everywhere(user_client, sending_account):
    autosave(user_client, sending_account, to="a@example.net", subject="Oops")
    message = OutgoingMessage.objects.get()
    user_client.post(
        reverse("mailbox:compose_edit", args=[message.pk]),
        {"account": sending_account.pk, "action": "discard"},
    )
    assert OutgoingMessage.objects.count() == 0
    assert folder_messages(sending_account, "Drafts") == []


def test_autosave_refuses_header_injection(user_client, sending_account):
    response = autosave(
        user_client, sending_account, to="a@example.net", subject="x\r\nBcc: e@x.net"
    )
    assert response.status_code == 400
    assert "subject" in response.json()["errors"]
    assert OutgoingMessage.objects.count() == 0


def test_pop_account_drafts_and_sent_copies_go_to_the_store(
    user_client,
    sending_pop_account,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    """For a POP3 account, Drafts and Sent are the store's folders."""
    account = sending_pop_account
    autosave(user_client, account, to="a@example.net", subject="Store", body="v1")
    message = OutgoingMessage.objects.get()
    autosave(
        user_client, account, message.pk, to="a@example.net", subject="Store", body="v2"
    )
    [draft] = StoredMessage.objects.filter(
        user=account.user, folder__special_use=LocalFolder.Use.DRAFTS
    )
    assert "v2" in parse(raw_read(draft)).get_body(("plain",)).get_content()

    with django_capture_on_commit_callbacks(execute=True):
        user_client.post(
            reverse("mailbox:compose_edit", args=[message.pk]),
            {
                "account": account.pk,
                "to": "a@example.net",
                "bcc": "b@example.net",
                "subject": "Store",
                "body": "final",
                "action": "send",
            },
        )
    message.refresh_from_db()
    assert message.state == OutgoingMessage.State.SENT, message.last_error
    assert not StoredMessage.objects.filter(
        user=account.user, folder__special_use=LocalFolder.Use.DRAFTS
    ).exists()
    [sent] = StoredMessage.objects.filter(
        user=account.user, folder__special_use=LocalFolder.Use.SENT
    )
    assert sent.seen
    assert sent.subject == "Store"
    assert parse(raw_read(sent))["Bcc"] == "b@example.net"
    assert len(smtp_server.received) == 1


def test_autosave_keeps_the_text_while_an_address_is_unfinished(
    user_client, sending_account, smtp_server, django_capture_on_commit_callbacks
):
    """Half-typed addresses do not stop the autosave; sending then names the field."""
    response = autosave(
        user_client,
        sending_account,
        to="carol@exa",
        subject="Notes",
        body="three pages of text",
    )
    assert response.status_code == 200, response.content
    assert "correct the addresses" in response.json()["warning"]
    message = OutgoingMessage.objects.get()
    assert message.body == "three pages of text"
    assert message.to == "carol@exa"
    assert folder_messages(sending_account, "Drafts") == []

    edit_url = reverse("mailbox:compose_edit", args=[message.pk])
    assert user_client.get(edit_url).context["form"].initial["to"] == "carol@exa"
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(
            edit_url,
            {
                "account": sending_account.pk,
                "to": "carol@exa",
                "subject": "Notes",
                "body": "three pages of text",
                "action": "send",
            },
        )
    assert response.status_code == 400
    assert "to" in response.context["form"].errors
    assert smtp_server.received == []

    # Once the address is complete, the next autosave reaches Drafts.
    autosave(
        user_client,
        sending_account,
        message.pk,
        to="carol@example.net",
        subject="Notes",
        body="three pages of text",
    )
    assert len(folder_messages(sending_account, "Drafts")) == 1


def test_autosave_still_refuses_a_line_break_in_the_address(
    user_client, sending_account
):
    """Lenient about unfinished addresses, never about header injection in them."""
    autosave(
        user_client,
        sending_account,
        to="a@example.net\r\nBcc: victim@example.net",
        subject="x",
        body="y",
    )
    message = OutgoingMessage.objects.get()
    # Kept as typed for the user to fix, but it can never reach a header.
    assert folder_messages(sending_account, "Drafts") == []
    from mailbox.compose import services

    with pytest.raises(services.ComposeError) as refused:
        services.message_queue(message=message)
    assert "to" in refused.value.errors
