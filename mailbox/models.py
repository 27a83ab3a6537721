"""Mail-side rows. The POP3 store's models will join them here."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TrustedSender(models.Model):
    """A sender whose remote images a user always loads (through the proxy)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    email = models.EmailField(_("sender address"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "email"], name="trustedsender_once")
        ]

    def __str__(self) -> str:
        return self.email


# The store's and compose's models live in their packages; importing them here
# registers them.
from mailbox.compose.models import (  # noqa: E402
    Correspondent,
    OutgoingAttachment,
    OutgoingMessage,
    SenderIdentity,
)
from mailbox.store.models import (  # noqa: E402
    ChangeCounter,
    ImportJob,
    LocalFolder,
    StoredMessage,
    UidlEntry,
)

__all__ = [
    "ChangeCounter",
    "Correspondent",
    "ImportJob",
    "LocalFolder",
    "OutgoingAttachment",
    "OutgoingMessage",
    "SenderIdentity",
    "StoredMessage",
    "TrustedSender",
    "UidlEntry",
]
