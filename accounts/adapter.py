"""django-allauth hooks."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        """Operators close sign-up with WEBMAIL_SIGNUP_OPEN=0."""
        return bool(settings.WEBMAIL_SIGNUP_OPEN)
