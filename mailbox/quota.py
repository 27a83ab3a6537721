"""Storage quota of the server-side store: exact under concurrency, never negative.

Space is reserved with one conditional UPDATE before a download (so two imports
cannot both take the last megabyte), kept when the message is stored, released if
the download fails, and given back when messages are deleted for good. A periodic
task recomputes usage from the store and corrects any drift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Sum
from django.db.models.functions import Greatest

from accounts.models import User, UserQuota
from accounts.selectors import user_quota_get

logger = logging.getLogger(__name__)

WARN_PERCENT = 80
CRITICAL_PERCENT = 95


@dataclass(frozen=True)
class Usage:
    used_bytes: int
    limit_bytes: int

    @property
    def percent(self) -> int:
        if self.limit_bytes <= 0:
            return 100
        return min(100, round(100 * self.used_bytes / self.limit_bytes))

    @property
    def level(self) -> str:
        """ "", "warning" (80 %) or "critical" (95 %), for the banners."""
        if self.percent >= CRITICAL_PERCENT:
            return "critical"
        if self.percent >= WARN_PERCENT:
            return "warning"
        return ""


def usage(*, user: User) -> Usage:
    quota = user_quota_get(user=user)
    return Usage(quota.used_bytes, quota.effective_limit_bytes)


def quota_reserve(*, user: User, size: int) -> bool:
    """Take ``size`` bytes if they fit under the limit; False (nothing taken) if not.

    One conditional UPDATE: concurrent imports of one user cannot overshoot.
    """
    quota = user_quota_get(user=user)
    limit = quota.effective_limit_bytes
    taken = UserQuota.objects.filter(pk=quota.pk, used_bytes__lte=limit - size).update(
        used_bytes=F("used_bytes") + size
    )
    return taken == 1


def quota_release(*, user_id: int, size: int) -> None:
    """Give back ``size`` bytes (a failed download, a message deleted for good)."""
    if size <= 0:
        return
    UserQuota.objects.filter(user_id=user_id).update(
        used_bytes=Greatest(F("used_bytes") - size, 0)
    )


@transaction.atomic
def quota_reconcile(*, user: User) -> tuple[int, int]:
    """Recompute the user's usage from the store; return (before, after)."""
    from mailbox.store.models import StoredMessage

    quota = UserQuota.objects.select_for_update().get(pk=user_quota_get(user=user).pk)
    actual = (
        StoredMessage.objects.filter(user=user).aggregate(total=Sum("size"))["total"]
        or 0
    )
    before = quota.used_bytes
    if before != actual:
        logger.warning(
            "quota drift for user %s: %s recorded, %s stored", user.pk, before, actual
        )
        quota.used_bytes = actual
        quota.save(update_fields=["used_bytes"])
    return before, actual
