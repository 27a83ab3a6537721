"""Sending through the real Celery worker (real Redis), as in production."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from mailbox.compose.models import OutgoingMessage
from tests.mailbox.compose.conftest import with_smtp
from tests.mailbox.compose.helpers import folder_messages, parse
from tests.mailbox.test_tasks import live_celery  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def wait_state(
    pk: int, *, until: tuple[str, ...], timeout: float = 60
) -> OutgoingMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = OutgoingMessage.objects.get(pk=pk)
        if message.state in until:
            return message
        time.sleep(0.1)
    raise AssertionError(f"outgoing {pk} still {message.state} after {timeout} s")


def test_the_worker_sends_and_files_the_sent_copy(
    live_celery,  # noqa: F811
    user_client,
    imap_account,
    smtp_server,
    trust_test_ca,
):
    """Send queues the message after commit; the worker sends it and saves Sent."""
    account = with_smtp(imap_account, smtp_server)
    response = user_client.post(
        reverse("mailbox:compose_new", args=[account.pk]),
        {
            "account": account.pk,
            "to": "a@example.net",
            "bcc": "b@example.net",
            "subject": "Über den Worker",
            "body": "hello",
            "action": "send",
        },
    )
    outgoing = OutgoingMessage.objects.get()
    assert response["Location"] == reverse("mailbox:compose_status", args=[outgoing.pk])
    sent = wait_state(outgoing.pk, until=("sent", "failed"))
    assert sent.state == "sent", sent.last_error
    [received] = smtp_server.received
    assert parse(received.data)["Subject"] == "Über den Worker"
    assert sorted(received.rcpt_tos) == ["a@example.net", "b@example.net"]
    # "sent" is recorded when the SMTP server accepts; the Sent copy follows.
    deadline = time.monotonic() + 30
    while not folder_messages(account, "Sent") and time.monotonic() < deadline:
        time.sleep(0.1)
    [(_uid, copy)] = folder_messages(account, "Sent")
    assert parse(copy)["Bcc"] == "b@example.net"
    page = user_client.get(response["Location"]).content.decode()
    assert "Sent" in page
    assert 'http-equiv="refresh"' not in page
