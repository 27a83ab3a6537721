"""Signed, expiring URLs for what a sandboxed mail body loads.

A mail body is shown in an iframe sandboxed without same-origin, so the browser
does not send the session cookie with the body's image requests. Inline (cid)
images and proxied remote images are therefore reached through URLs that carry
their own signed permission, bound to one user and expiring soon.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.http import urlencode

PART_SALT = "mailbox.inline-part"


@dataclass(frozen=True)
class PartGrant:
    user_id: int
    account_id: int
    folder: str
    validity: int
    uid: int
    part_id: str


def inline_part_url(grant: PartGrant) -> str:
    token = signing.dumps(
        [
            grant.user_id,
            grant.account_id,
            grant.folder,
            grant.validity,
            grant.uid,
            grant.part_id,
        ],
        salt=PART_SALT,
        compress=True,
    )
    return reverse("mailbox:inline_part") + "?" + urlencode({"t": token})


def grant_from_token(token: str) -> PartGrant | None:
    max_age = getattr(settings, "WEBMAIL_INLINE_URL_MAX_AGE", 24 * 3600)
    try:
        values = signing.loads(token, salt=PART_SALT, max_age=max_age)
        user_id, account_id, folder, validity, uid, part_id = values
        return PartGrant(
            int(user_id),
            int(account_id),
            str(folder),
            int(validity),
            int(uid),
            str(part_id),
        )
    except (signing.BadSignature, ValueError, TypeError):
        return None
