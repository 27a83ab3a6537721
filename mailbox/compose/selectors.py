"""Reads of outgoing mail, always scoped to the signed-in user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from mailbox.compose.models import OutgoingMessage

if TYPE_CHECKING:
    from accounts.models import User


def outgoing_get(*, user: User, message_id: int) -> OutgoingMessage:
    """One of the user's outgoing messages; Http404 for any other id."""
    return get_object_or_404(
        OutgoingMessage.objects.select_related("account"),
        pk=message_id,
        user=user,
        account__is_active=True,
    )


def outgoing_list(*, user: User) -> QuerySet[OutgoingMessage]:
    """The user's drafts and outbox, latest first (sent ones of the last days too)."""
    return OutgoingMessage.objects.filter(
        user=user, account__is_active=True
    ).select_related("account")
