"""Outgoing messages as MIME, built with the ``email`` package (no DB, no network).

Addresses are parsed and checked one by one, headers refuse CR/LF (header
injection), names and subjects are RFC 2047-encoded by ``policy.SMTP`` where
needed, attachment names RFC 2231-encoded. Reply and forward helpers give the
subject (``Re:``/``Fwd:`` never doubled), the threading headers (RFC 5322
§3.6.4) and the quoted text.
"""

from __future__ import annotations

import email.errors
import email.policy
import email.utils
import mimetypes
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from mailbox import sanitize

if TYPE_CHECKING:
    from mailbox.mime import ParsedMessage

# 7-bit output: every text part is quoted-printable or base64 when it needs to
# be, so any server takes it, with or without 8BITMIME.
POLICY = email.policy.SMTP.clone(cte_type="7bit")
MAX_RECIPIENTS = 100
MAX_SUBJECT = 998
# References: the first id (the thread's root) and the most recent ones; long
# threads would otherwise grow the header without end.
MAX_REFERENCES = 20

_LINE_BREAK = re.compile(r"[\r\n\x00]")
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|antw|vs|ref)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
_FORWARD_PREFIX = re.compile(
    r"^\s*(?:(?:fwd?|tr|wg|rv|enc|vb)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
_MSG_ID = re.compile(r"<[^<>\s]+>")
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


class AddressError(ValueError):
    """An address list that cannot be used; the message is for the user."""


@dataclass(frozen=True)
class Mailbox:
    name: str
    email: str  # ASCII: an internationalised domain is given in its IDNA form

    def __str__(self) -> str:
        """``Name <a@b>`` as typed (quoted when the name holds specials), or ``a@b``."""
        if not self.name:
            return self.email
        name = self.name
        if _SPECIALS.search(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.email}>"

    def header(self) -> Address:
        local, _at, domain = self.email.rpartition("@")
        return Address(display_name=self.name, username=local, domain=domain)


def check_header_text(value: str) -> str:
    """``value`` if it holds no line break or NUL; AddressError otherwise."""
    if _LINE_BREAK.search(value):
        raise AddressError(_("Line breaks are not allowed here."))
    return value


def _ascii_address(addr_spec: str) -> str:
    local, _at, domain = addr_spec.rpartition("@")
    if not local or not domain:
        raise AddressError(
            _("“%(address)s” is not an e-mail address.") % {"address": addr_spec}
        )
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise AddressError(
            _("“%(address)s” has an invalid domain.") % {"address": addr_spec}
        ) from exc
    result = f"{local}@{domain}"
    try:
        validate_email(result)
    except ValidationError as exc:
        raise AddressError(
            _("“%(address)s” is not a valid e-mail address.") % {"address": addr_spec}
        ) from exc
    return result


def parse_addresses(text: str) -> list[Mailbox]:
    """The mailboxes of a To/Cc/Bcc field (comma-separated), each one checked.

    Accepts ``Name <a@b>``, ``"Last, First" <a@b>`` and bare ``a@b``; repeats are
    dropped. Raises AddressError naming the first bad address, for line breaks
    (header injection) and for more than MAX_RECIPIENTS addresses.
    """
    check_header_text(text)
    text = text.strip().strip(",;").replace(";", ",")
    if not text:
        return []
    try:
        header = POLICY.header_factory("To", text)
    except (ValueError, IndexError, email.errors.HeaderParseError) as exc:
        # The stdlib parser trips over some malformed lists (a bare "a@").
        raise AddressError(
            _("This address list could not be read: %(text)s") % {"text": text}
        ) from exc
    result: list[Mailbox] = []
    seen: set[str] = set()
    for address in header.addresses:
        if not address.addr_spec or not address.domain:
            raise AddressError(
                _("“%(address)s” is not an e-mail address.")
                % {"address": str(address) or text}
            )
        addr = _ascii_address(address.addr_spec)
        if addr.lower() in seen:
            continue
        seen.add(addr.lower())
        result.append(Mailbox(address.display_name.strip(), addr))
    if not result:
        raise AddressError(_("No e-mail address found in “%(text)s”.") % {"text": text})
    # Anything the parser could not read as an address is an error, not ignored.
    for defect in header.defects:
        if "invalid" in str(defect).lower() or "missing" in str(defect).lower():
            raise AddressError(
                _("This address list could not be read: %(text)s") % {"text": text}
            )
    if len(result) > MAX_RECIPIENTS:
        raise AddressError(
            _("At most %(n)d addresses per field.") % {"n": MAX_RECIPIENTS}
        )
    return result


def format_addresses(mailboxes: Sequence[Mailbox]) -> str:
    return ", ".join(str(m) for m in mailboxes)


# -- replies and forwards ------------------------------------------------------


def reply_subject(subject: str) -> str:
    """``Re: subject``; reply prefixes (Re:, RE:, AW:, SV: …) folded into one."""
    rest = _REPLY_PREFIX.sub("", subject or "").strip()
    return f"Re: {rest}".strip()


def forward_subject(subject: str) -> str:
    """``Fwd: subject``, with any forward prefixes (Fwd:, Fw:, TR:, WG: …) folded."""
    rest = _FORWARD_PREFIX.sub("", subject or "").strip()
    return f"Fwd: {rest}".strip()


def references_for(
    *, message_id: str | None, references: Sequence[str], in_reply_to: str | None
) -> list[str]:
    """References of a reply (RFC 5322 §3.6.4): the parent's, then the parent.

    Trimmed to MAX_REFERENCES ids: the thread's root and the latest ones.
    """
    ids = list(references)
    if not ids and in_reply_to:
        ids = _MSG_ID.findall(in_reply_to)[:1]
    if message_id:
        ids.append(message_id)
    ids = [i for i in dict.fromkeys(ids) if _MSG_ID.fullmatch(i)]
    if len(ids) > MAX_REFERENCES:
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    return ids


def _names(addresses: Sequence[object]) -> str:
    return ", ".join(str(a) for a in addresses)


def quoted_reply(parsed: ParsedMessage) -> str:
    """The original's text, quoted with "> ", under an attribution line."""
    who = _names(parsed.from_) or _("(unknown sender)")
    if parsed.date is not None:
        intro = _("On %(date)s, %(who)s wrote:") % {
            "date": email.utils.format_datetime(parsed.date),
            "who": who,
        }
    else:
        intro = _("%(who)s wrote:") % {"who": who}
    body = _original_text(parsed)
    quoted = "\n".join(
        (">" + line if line.startswith(">") else "> " + line) if line else ">"
        for line in body.splitlines()
    )
    return f"\n\n{intro}\n{quoted}\n"


def forward_block(parsed: ParsedMessage) -> str:
    """The original's headers and text under a "Forwarded message" line."""
    lines = [
        "",
        "",
        "-------- " + _("Forwarded message") + " --------",
        _("Subject: %(value)s") % {"value": parsed.subject},
    ]
    if parsed.date is not None:
        lines.append(
            _("Date: %(value)s") % {"value": email.utils.format_datetime(parsed.date)}
        )
    lines.append(_("From: %(value)s") % {"value": _names(parsed.from_)})
    if parsed.to:
        lines.append(_("To: %(value)s") % {"value": _names(parsed.to)})
    if parsed.cc:
        lines.append(_("Cc: %(value)s") % {"value": _names(parsed.cc)})
    lines += ["", _original_text(parsed), ""]
    return "\n".join(lines)


def _original_text(parsed: ParsedMessage) -> str:
    if parsed.text is not None:
        return parsed.text.replace("\r\n", "\n").rstrip()
    if parsed.html is not None:
        return html_to_text(parsed.html).rstrip()
    return ""


class _TextOnly(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAK = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skipping:
            self.skipping -= 1
        elif tag in ("p", "div", "blockquote"):
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The readable text of an HTML body (for quoting; markup and scripts dropped)."""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def with_signature(body: str, signature: str) -> str:
    """``body`` with the signature after the "-- " separator (RFC 3676 §4.3)."""
    signature = signature.replace("\r\n", "\n").strip("\n")
    if not signature.strip():
        return body
    return f"{body}\n\n-- \n{signature}"


# -- HTML alternative ----------------------------------------------------------


def text_to_html(text: str) -> str:
    """The plain text as a small HTML document: escaped, linkified, paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p.strip("\n") for p in re.split(r"\n{2,}", text) if p.strip()]
    body = "\n".join(
        "<p>" + str(sanitize.text_to_html(p)).replace("\n", "<br>\n") + "</p>"
        for p in paragraphs
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>'
        f"<body>\n{body}\n</body></html>\n"
    )


# -- the message ---------------------------------------------------------------


@dataclass(frozen=True)
class FilePart:
    filename: str
    content_type: str
    read: Callable[[], bytes] = field(repr=False)  # the file's bytes


@dataclass(frozen=True)
class Draft:
    """Everything a message is built from."""

    sender: Mailbox
    to: Sequence[Mailbox] = ()
    cc: Sequence[Mailbox] = ()
    bcc: Sequence[Mailbox] = ()
    subject: str = ""
    text: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    references: Sequence[str] = ()
    files: Sequence[FilePart] = field(default_factory=tuple)
    date: datetime | None = None


def new_message_id(sender_email: str) -> str:
    domain = sender_email.rpartition("@")[2] or "localhost"
    return email.utils.make_msgid(domain=domain)


def guess_type(filename: str) -> str:
    kind, encoding = mimetypes.guess_type(filename)
    if kind is None or encoding is not None or "/" not in kind:
        return "application/octet-stream"
    return kind


def build(draft: Draft, *, html: bool = True) -> bytes:
    """The message as bytes (CRLF, 7-bit), Bcc header included.

    The Bcc header belongs in the Sent and Drafts copies only: ``without_bcc``
    removes it from the bytes handed to the SMTP server.
    """
    msg = EmailMessage(policy=POLICY)
    msg["From"] = draft.sender.header()
    if draft.to:
        msg["To"] = [m.header() for m in draft.to]
    if draft.cc:
        msg["Cc"] = [m.header() for m in draft.cc]
    if draft.bcc:
        msg["Bcc"] = [m.header() for m in draft.bcc]
    msg["Subject"] = check_header_text(draft.subject)
    msg["Date"] = email.utils.format_datetime(draft.date or datetime.now(UTC))
    msg["Message-ID"] = check_header_text(draft.message_id) or new_message_id(
        draft.sender.email
    )
    if draft.in_reply_to:
        msg["In-Reply-To"] = check_header_text(draft.in_reply_to)
    if draft.references:
        msg["References"] = check_header_text(" ".join(draft.references))
    msg["MIME-Version"] = "1.0"
    text = draft.text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    msg.set_content(text)
    if html:
        msg.add_alternative(text_to_html(text), subtype="html")
    for part in draft.files:
        data = part.read()
        maintype, _slash, subtype = part.content_type.partition("/")
        if part.content_type.lower() == "message/rfc822":
            inner = BytesParser(policy=email.policy.default).parsebytes(data)
            msg.add_attachment(inner, filename=part.filename)
        else:
            msg.add_attachment(
                data,
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=part.filename,
            )
            if maintype == "text":
                # The bytes go as they are (base64); name their charset when
                # they are UTF-8 (or ASCII), else a reader guesses.
                attached = msg.get_payload()[-1]
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    attached.set_param("charset", "utf-8")
    return msg.as_bytes(policy=POLICY)


def without_bcc(data: bytes) -> bytes:
    """``data`` without its top-level Bcc header (and the header's continuation)."""
    end = data.find(b"\r\n\r\n")
    head, body = (data, b"") if end < 0 else (data[: end + 2], data[end + 2 :])
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(b"bcc:")
        if not skipping:
            kept.append(line)
    return b"\r\n".join(kept) + body
