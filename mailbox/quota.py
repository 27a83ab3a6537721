"""Storage quota of the server-side store: exact under concurrency, never negative.

Space is reserved with one conditional UPDATE before a download (so two imports
cannot both take the last megabyte), kept when the message is stored, released if
the download fails, and given back when messages are deleted for good. A periodic
task recomputes usage from the store and corrects any drift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import BigIntegerField, F, Sum, Value
from django.db.models.functions import Cast, Coalesce, Greatest

from accounts.models import User, UserQuota
from accounts.selectors import user_quota_get

logger = logging.getLogger(__name__)

WARN_PERCENT = 80
CRITICAL_PERCENT = 95
_MIB = 1024 * 1024


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

    One conditional UPDATE decides, with the limit computed in its WHERE (the
    user's ``limit_mb`` or the site default), so there is no read first and
    concurrent imports of one user cannot overshoot. Only when no row matched
    is the quota row fetched (created with the default on first use) and the
    UPDATE tried once more.
    """
    default_mb = settings.WEBMAIL_DEFAULT_QUOTA_MB
    fits = UserQuota.objects.filter(
        user_id=user.pk,
        # bigint before multiplying: limit_mb is a 32-bit column on PostgreSQL.
        used_bytes__lte=Cast(
            Coalesce(F("limit_mb"), Value(default_mb)), BigIntegerField()
        )
        * _MIB
        - size,
    )
    if fits.update(used_bytes=F("used_bytes") + size) == 1:
        return True
    user_quota_get(user=user)  # the row may not exist yet
    return fits.update(used_bytes=F("used_bytes") + size) == 1


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
