"""What every page needs to know: how full the user's store is."""

from __future__ import annotations

from django.http import HttpRequest

from mailbox.quota import usage


def storage(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    current = usage(user=user)
    if not current.level:
        return {}
    return {"storage_usage": current}
