"""One JSON shape for every API error, and the mapping of the known exceptions.

``{"error": {"code": "...", "detail": "...", "fields": {...}}}``; ``fields`` only
for invalid input (400). Mail-server trouble is 503 with ``Retry-After``, a
folder whose UIDVALIDITY changed 409, a message no longer there 404.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from mailbox.errors import Problem, ServerProblem
from mailbox.imap.pool import PoolBusy
from mailbox.sources import FolderChanged, MessageGone

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying when the mail server failed.
RETRY_AFTER_SECONDS = 30


class ApiError(exceptions.APIException):
    """An error with its own code, raised by the endpoints."""

    def __init__(self, code: str, detail: str, status_code: int = 400) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.error_code = code


def _body(code: str, detail: Any, fields: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "detail": str(detail)}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def _field_errors(detail: Any) -> dict[str, Any]:
    """DRF's error detail as {field: [messages]}; "non_field_errors" for the rest."""
    if isinstance(detail, dict):
        return {
            str(k): _field_errors(v) if isinstance(v, dict) else _messages(v)
            for k, v in detail.items()
        }
    return {"non_field_errors": _messages(detail)}


def _messages(detail: Any) -> list[str] | dict[str, Any]:
    if isinstance(detail, dict):
        return _field_errors(detail)
    if isinstance(detail, list):
        return [str(item) for item in detail]
    return [str(detail)]


def _code_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, ApiError):
        return exc.error_code
    return {
        exceptions.NotAuthenticated: "not_authenticated",
        exceptions.AuthenticationFailed: "authentication_failed",
        exceptions.PermissionDenied: "permission_denied",
        exceptions.NotFound: "not_found",
        exceptions.MethodNotAllowed: "method_not_allowed",
        exceptions.NotAcceptable: "not_acceptable",
        exceptions.UnsupportedMediaType: "unsupported_media_type",
        exceptions.Throttled: "throttled",
        exceptions.ParseError: "parse_error",
        exceptions.ValidationError: "invalid",
    }.get(type(exc), exc.default_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer a known exception in the one error shape; None lets Django answer."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ServerProblem | PoolBusy):
        view = context.get("view")
        account_id = getattr(view, "kwargs", {}).get("account_id")
        logger.info("api: account %s: mail server problem: %s", account_id, exc)
        if isinstance(exc, ServerProblem) and exc.problem == Problem.AUTH:
            # The stored password no longer works: waiting will not help.
            return Response(
                _body("server_login_refused", exc.message),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        if isinstance(exc, ServerProblem) and exc.problem == Problem.RECONNECT:
            # The provider withdrew the OAuth2 grant: the user must reconnect.
            return Response(
                _body("needs_reconnect", exc.message),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        response = Response(
            _body("server_unavailable", exc.message),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, FolderChanged):
        return Response(
            _body(
                "folder_changed",
                _("The folder changed on the server (or is gone): reload the list."),
            ),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, MessageGone):
        return Response(
            _body("message_gone", _("The message is no longer in the folder.")),
            status=status.HTTP_404_NOT_FOUND,
        )
    if not isinstance(exc, exceptions.APIException):
        # Unknown: Django's handler answers a plain 500 (no trace outside DEBUG)
        # and reports it; it is a bug to fix, not an answer to shape.
        return None

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]

    if isinstance(exc, exceptions.ValidationError):
        body = _body(
            "invalid", _("The request has invalid fields."), _field_errors(exc.detail)
        )
    else:
        detail = exc.detail
        if isinstance(detail, list | dict):
            detail = _("The request could not be handled.")
        body = _body(_code_of(exc), detail)
    return Response(body, status=exc.status_code, headers=headers)


# --- the shape in the schema ----------------------------------------------------------


class _ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text=(
            "invalid, not_authenticated, authentication_failed, permission_denied, "
            "not_found, message_gone, method_not_allowed, folder_changed, "
            "throttled, server_unavailable, server_login_refused, "
            "needs_reconnect, ..."
        )
    )
    detail = serializers.CharField(help_text="For people; translated.")
    fields = serializers.DictField(
        required=False,
        help_text="Invalid input only: messages per field (non_field_errors "
        "for the request as a whole).",
    )


class ErrorSerializer(serializers.Serializer):
    error = _ErrorDetailSerializer()


_DESCRIPTIONS = {
    400: "Invalid input (code invalid, with fields) or a refused operation.",
    401: "No valid session token (code not_authenticated).",
    403: "Not allowed (code permission_denied).",
    404: "Not one of the user's (code not_found), or the message is gone "
    "(code message_gone).",
    409: "The folder changed on the server (code folder_changed): reload the list.",
    429: "Too many requests (code throttled); see Retry-After.",
    503: "The mail server could not be used: code server_unavailable (see "
    "Retry-After), server_login_refused (the account's password needs "
    "changing) or needs_reconnect (a Gmail or Microsoft account connected with "
    "OAuth2 must be connected again in the web interface).",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema responses for the given error statuses (401 and 429 always)."""
    wanted = sorted({401, 429, *codes})
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=_DESCRIPTIONS[code])
        for code in wanted
    }
