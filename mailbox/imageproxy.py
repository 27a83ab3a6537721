"""Remote images of HTML mail, fetched by the server on the reader's behalf.

Once a reader allows remote content, images load through here: the sender sees
this server, not the reader's address, and gets no cookie and no referrer. URLs are
signed by us (only images that the sanitizer met can be asked for), hosts go
through the outbound policy of mailbox.net, and only raster image types up to a
size limit come back.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.http import urlencode

from mailbox import net
from mailbox.errors import ServerProblem

SALT = "mailbox.imageproxy"
MAX_REDIRECTS = 3
# Raster types only: SVG can carry scripts and external references.
IMAGE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "image/x-icon",
        "image/vnd.microsoft.icon",
    }
)


class ImageRefused(Exception):
    """The image cannot be served: bad signature, host, type, size or network."""


@dataclass(frozen=True)
class Image:
    content_type: str
    data: bytes


def proxy_url(url: str) -> str:
    """Our signed URL for a remote image URL."""
    token = signing.dumps(url, salt=SALT, compress=True)
    return reverse("mailbox:image_proxy") + "?" + urlencode({"u": token})


def url_from_token(token: str) -> str:
    max_age = getattr(settings, "WEBMAIL_IMAGE_PROXY_MAX_AGE", 30 * 24 * 3600)
    try:
        return signing.loads(token, salt=SALT, max_age=max_age)
    except signing.BadSignature as exc:
        raise ImageRefused("bad signature") from exc


def fetch(url: str) -> Image:
    """GET a remote image, following a few redirects, each checked again."""
    limit = getattr(settings, "WEBMAIL_IMAGE_PROXY_MAX_BYTES", 5 * 1024 * 1024)
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImageRefused("not an http(s) URL")
        cls = net.HTTPSConnection if parts.scheme == "https" else net.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=net.timeout_seconds())
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            conn.request(
                "GET",
                path,
                headers={
                    "User-Agent": "Webmail image proxy",
                    "Accept": "image/*",
                    "Accept-Encoding": "identity",
                },
            )
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise ImageRefused("redirect without a location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise ImageRefused(f"HTTP {response.status}")
            content_type = (response.getheader("Content-Type") or "").split(";")[0]
            content_type = content_type.strip().lower()
            if content_type not in IMAGE_TYPES:
                raise ImageRefused("not an image type we serve")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise ImageRefused("too large")
            data = response.read(limit + 1)
            if len(data) > limit:
                raise ImageRefused("too large")
            return Image(content_type, data)
        except (ServerProblem, OSError, http.client.HTTPException) as exc:
            raise ImageRefused(str(exc)[:100]) from exc
        finally:
            conn.close()
    raise ImageRefused("too many redirects")
