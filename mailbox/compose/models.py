"""Outgoing mail: drafts and the outbox, their attachments, recent correspondents.

A message is kept here from the first save until it is sent, so nothing typed is
lost when the SMTP server, the IMAP server or the worker is away: state ``draft``
(being written), ``queued``/``sending`` (handed to the worker), ``sent`` or
``failed`` (the server's reply in ``last_error``; the user edits and sends again).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import MailAccount


class SenderIdentity(models.Model):
    """How one account signs its mail: the name beside the address, a signature."""

    account = models.OneToOneField(
        MailAccount, on_delete=models.CASCADE, related_name="identity"
    )
    display_name = models.CharField(_("your name"), max_length=100, blank=True)
    signature = models.TextField(_("signature"), max_length=2000, blank=True)

    def __str__(self) -> str:
        return self.display_name or str(self.account)


class OutgoingMessage(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        QUEUED = "queued", _("Waiting to be sent")
        SENDING = "sending", _("Sending")
        SENT = "sent", pgettext_lazy("message state", "Sent")
        FAILED = "failed", _("Not sent")

    class Kind(models.TextChoices):
        NEW = "", _("New message")
        REPLY = "reply", _("Reply")
        REPLY_ALL = "reply_all", _("Reply all")
        FORWARD = "forward", _("Forward")
        FORWARD_ATTACHED = "forward_attached", _("Forward as attachment")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="outgoing_messages"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    kind = models.CharField(max_length=20, choices=Kind.choices, blank=True)
    to = models.TextField(blank=True)
    cc = models.TextField(blank=True)
    bcc = models.TextField(blank=True)
    subject = models.CharField(max_length=998, blank=True)
    body = models.TextField(blank=True)
    # Stable from the first save: the same Message-ID in every draft version
    # and in the sent message.
    message_id = models.CharField(max_length=255)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    # The message replied to or forwarded (flags are set on it once sent).
    original_folder = models.CharField(max_length=1000, blank=True)
    original_validity = models.BigIntegerField(null=True, blank=True)
    original_uid = models.BigIntegerField(null=True, blank=True)
    # The copy of the latest version in the Drafts folder (IMAP uid, or the
    # store message's id), replaced on each save.
    draft_folder = models.CharField(max_length=1000, blank=True)
    draft_validity = models.BigIntegerField(null=True, blank=True)
    draft_uid = models.BigIntegerField(null=True, blank=True)
    # The MIME built for sending, once (a file in the default storage).
    mime_blob = models.CharField(max_length=255, blank=True)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    sent_copy_saved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["user", "state"], name="outgoing_user_state")]

    def __str__(self) -> str:
        return self.subject or f"message {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("mailbox:compose_edit", args=[self.pk])

    @property
    def is_editable(self) -> bool:
        return self.state in (self.State.DRAFT, self.State.FAILED)

    @property
    def is_pending(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.SENDING)


class OutgoingAttachment(models.Model):
    """A file attached to an outgoing message, kept in the default storage."""

    message = models.ForeignKey(
        OutgoingMessage, on_delete=models.CASCADE, related_name="attachments"
    )
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.BigIntegerField()
    file = models.CharField(max_length=255)  # name in default_storage
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.filename


class Correspondent(models.Model):
    """An address the user wrote to, for autocomplete (most used first)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    email = models.CharField(max_length=320)
    name = models.CharField(max_length=255, blank=True)
    times_used = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_used_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "email"], name="correspondent_once")
        ]
        indexes = [
            models.Index(fields=["user", "-last_used_at"], name="correspondent_recent")
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email
