"""Mail content shown or served to a user, the same through both doors.

The browser views (mailbox.views.mail) and the API (mailbox.api.messages)
sanitize HTML bodies, decide about remote content and serve parts as files
through these, so that both apply the same rules.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from django.core.cache import cache
from django.http import HttpRequest, HttpResponseBase

from accounts.models import MailAccount
from mailbox import capabilities, imageproxy, sanitize
from mailbox.models import TrustedSender

# The sandboxed body: no scripts, no plugins, no forms, no network but our own
# images; a second wall should the sanitizer ever be bypassed.
BODY_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "font-src 'none'; media-src 'none'; frame-ancestors 'self'; base-uri 'none'; "
    "form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
PART_CSP = "default-src 'none'; sandbox"


def remote_allowed(request: HttpRequest, sender: str) -> bool:
    """Remote content of this message may load: asked for now (``remote=1``),
    or the sender is one the user trusts."""
    if request.GET.get("remote") == "1":
        return True
    return (
        bool(sender)
        and TrustedSender.objects.filter(
            user=request.user, email__iexact=sender
        ).exists()
    )


def sanitized_key(
    request: HttpRequest,
    account: MailAccount,
    ref: tuple[str, int, int],
    *,
    allow_remote: bool,
) -> str:
    """Cache key of a sanitized body. (folder, validity, uid) never names other
    content on the same mailbox, so the location is enough: no need to fetch the
    message to know whether its sanitized body is at hand."""
    where = (request.user.pk, account.pk, account.host, account.username, *ref)
    return (
        "sanitized:" + hashlib.sha256(repr((where, allow_remote)).encode()).hexdigest()
    )


def sanitized_body(
    request: HttpRequest, account: MailAccount, message, *, allow_remote: bool
) -> sanitize.SanitizedHtml:
    """The message's HTML, sanitized once and kept a while (it can take 0.5 s)."""
    ref = (message.folder, message.uid, message.validity)
    key = sanitized_key(request, account, ref, allow_remote=allow_remote)
    cached = cache.get(key)
    if cached is None:
        cached = _sanitize(request, account, message, allow_remote=allow_remote)
        # Shorter than the signed inline-image links it holds.
        cache.set(key, cached, timeout=3600)
    return cached


def _sanitize(
    request: HttpRequest, account: MailAccount, message, *, allow_remote: bool
) -> sanitize.SanitizedHtml:
    cid_map = message.parsed.cid_map

    def cid_url(content_id: str) -> str | None:
        part_id = cid_map.get(content_id)
        if part_id is None:
            return None
        return capabilities.inline_part_url(
            capabilities.PartGrant(
                request.user.pk,
                account.pk,
                message.folder,
                message.validity,
                message.uid,
                part_id,
            )
        )

    return sanitize.sanitize_html(
        message.parsed.html or "",
        allow_remote=allow_remote,
        cid_url=cid_url,
        proxy_url=imageproxy.proxy_url,
    )


def as_inert_file(
    response: HttpResponseBase, *, cache_control: str
) -> HttpResponseBase:
    """Headers for mail content served as a file: never sniffed, never run."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = PART_CSP
    response["Cache-Control"] = cache_control
    return response


def content_disposition(kind: str, filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact name in filename*."""
    fallback = "".join(
        c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename
    )
    return (
        f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
    )
