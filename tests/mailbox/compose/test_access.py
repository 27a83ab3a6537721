"""Every compose page and endpoint is closed to other users: 404, nothing changed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AccountKind, MailAccount
from mailbox.compose.models import OutgoingMessage, SenderIdentity


@pytest.fixture
def bobs(other_user) -> tuple[MailAccount, OutgoingMessage]:
    account = MailAccount.objects.create(
        user=other_user,
        kind=AccountKind.IMAP,
        label="Bob",
        email="bob@example.org",
        host="127.0.0.1",
        port=1,
        username="bob",
    )
    message = OutgoingMessage.objects.create(
        user=other_user,
        account=account,
        to="x@example.net",
        subject="Bob's secret",
        body="secret",
        message_id="<bob@example.org>",
    )
    return account, message


def test_other_users_drafts_and_accounts_are_404(user_client, bobs):
    account, message = bobs
    ref = {"folder": "INBOX", "v": 1, "uid": 1}
    fields = {"account": account.pk, "to": "a@example.net", "action": "send"}
    requests = [
        ("get", reverse("mailbox:compose_new", args=[account.pk]), {}),
        ("post", reverse("mailbox:compose_new", args=[account.pk]), fields),
        ("get", reverse("mailbox:compose_edit", args=[message.pk]), {}),
        ("post", reverse("mailbox:compose_edit", args=[message.pk]), fields),
        (
            "post",
            reverse("mailbox:compose_edit", args=[message.pk]),
            {"action": "discard"},
        ),
        ("get", reverse("mailbox:compose_status", args=[message.pk]), {}),
        (
            "post",
            reverse("mailbox:compose_respond", args=[account.pk]),
            {**ref, "kind": "reply"},
        ),
        ("post", reverse("mailbox:draft_edit", args=[account.pk]), ref),
        ("get", reverse("mailbox:identity_edit", args=[account.pk]), {}),
        (
            "post",
            reverse("mailbox:identity_edit", args=[account.pk]),
            {"display_name": "Mallory", "signature": ""},
        ),
        ("post", reverse("mailbox:compose_autosave"), {"message": message.pk}),
    ]
    for method, url, data in requests:
        response = getattr(user_client, method)(url, data)
        assert response.status_code == 404, (method, url)
    message.refresh_from_db()
    assert message.subject == "Bob's secret"
    assert message.state == OutgoingMessage.State.DRAFT
    assert not SenderIdentity.objects.exists()


def test_another_users_account_cannot_be_chosen_as_sender(
    user_client, imap_account, bobs
):
    """The From choice lists the user's own accounts only."""
    account, _message = bobs
    response = user_client.post(
        reverse("mailbox:compose_new", args=[imap_account.pk]),
        {"account": account.pk, "to": "a@example.net", "action": "save"},
    )
    assert response.status_code == 400
    assert "account" in response.context["form"].errors
    assert not OutgoingMessage.objects.filter(account=imap_account).exists()


def test_the_outbox_lists_only_own_messages(user_client, bobs):
    page = user_client.get(reverse("mailbox:outbox")).content.decode()
    assert "Bob&#x27;s secret" not in page
    assert "Bob's secret" not in page


def test_pages_need_a_sign_in(bobs):
    from django.test import Client

    account, message = bobs
    for url in (
        reverse("mailbox:compose_new", args=[account.pk]),
        reverse("mailbox:compose_edit", args=[message.pk]),
        reverse("mailbox:compose_status", args=[message.pk]),
        reverse("mailbox:outbox"),
        reverse("mailbox:compose_correspondents"),
    ):
        response = Client().get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_compose_post_needs_the_csrf_token(imap_account):
    """The upload-capable compose form still checks CSRF."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(imap_account.user)
    response = client.post(
        reverse("mailbox:compose_new", args=[imap_account.pk]),
        {"account": imap_account.pk, "to": "a@example.net", "action": "save"},
    )
    assert response.status_code == 403
    assert not OutgoingMessage.objects.exists()
