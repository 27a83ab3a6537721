"""Per-user request rates of the API."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import UserRateThrottle


class UserThrottle(UserRateThrottle):
    """DRF's per-user throttle, its rate read from the settings at each request.

    ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"]`` (env ``WEBMAIL_API_RATE``);
    DRF itself reads the rates once, at import.
    """

    scope = "user"

    def get_rate(self) -> str | None:
        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
        return rates.get(self.scope)
