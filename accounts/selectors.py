"""Reads: every query is scoped to the user who asks."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import MailAccount, User, UserQuota


def mail_account_list(*, user: User) -> QuerySet[MailAccount]:
    return MailAccount.objects.filter(user=user)


def mail_account_get(*, user: User, account_id: int) -> MailAccount:
    """Return one of the user's accounts; Http404 for any other id."""
    return get_object_or_404(MailAccount, pk=account_id, user=user)


def user_quota_get(*, user: User) -> UserQuota:
    """Return the user's quota row, created with the site default on first use."""
    quota, _ = UserQuota.objects.get_or_create(user=user)
    return quota
