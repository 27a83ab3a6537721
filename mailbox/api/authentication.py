"""How API calls authenticate: allauth's headless session token."""

from __future__ import annotations

from allauth.headless.contrib.rest_framework.authentication import (
    XSessionTokenAuthentication,
)
from django.http import HttpRequest


class SessionTokenAuthentication(XSessionTokenAuthentication):
    """allauth's ``X-Session-Token`` authentication, answering 401 (not 403).

    DRF sends 401 only when the first authentication class names a scheme in
    ``WWW-Authenticate``; allauth's class names none by default.
    """

    def authenticate_header(self, request: HttpRequest) -> str:
        return "X-Session-Token"
