"""Raw RFC 5322 message -> display model.

Pure functions over the standard ``email`` package (``policy.default``): no database,
no network, no Django. Mail is untrusted input, so nothing here raises on a bad message:
a missing or wrong boundary, an unknown charset, broken base64 or quoted-printable, raw
8-bit headers, NUL bytes, absurd nesting or an empty input still give a
:class:`ParsedMessage` with whatever could be rendered, and ``problems`` says what was
wrong in words a user can read.

Part numbers are IMAP part numbers (RFC 3501 §6.4.5, the numbering of BODYSTRUCTURE
and ``BODY[<part>]``), so a part listed here can later be fetched alone from the server:

- the parts of a multipart are numbered 1..n under the number of the multipart; the
  top-level multipart itself has no number, so its children are "1", "2", …;
- a message whose body is not multipart has a single part, "1" (the body itself);
- a ``message/rfc822`` part "2" is the whole encapsulated message; the parts of that
  message's body are numbered under it exactly as for a top-level message: "2.1",
  "2.2", … when its body is multipart, or just "2.1" when it is not;
- a multipart without a usable boundary is a single leaf part (shown as plain text).

``message/global`` (RFC 6532) is encapsulated like ``message/rfc822``; every other
``message/*`` type (``delivery-status``, ``partial``, ``external-body``, …) is a leaf.

Strings returned here never contain lone surrogates (they would break UTF-8 output),
and decoded header values contain no control characters: CR, LF, NUL and the like
become spaces, so a decoded value can never smuggle a line into a reply's headers.
"""

from __future__ import annotations

import base64
import codecs
import functools
import itertools
import logging
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import policy
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from io import BytesIO
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote_to_bytes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)

__all__ = [
    "Address",
    "AttachmentInfo",
    "ParsedMessage",
    "PartNotFound",
    "decode_header_value",
    "find_part",
    "iter_part_payload",
    "parse_message",
    "safe_filename",
]


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Address:
    """One mailbox of an address header, with its display name decoded."""

    name: str
    email: str

    def __str__(self) -> str:
        if self.name and self.email:
            return f"{self.name} <{self.email}>"
        return self.name or self.email


@dataclass(frozen=True)
class AttachmentInfo:
    """A part that is not the displayed body, named by its IMAP part number."""

    part_id: str
    filename: str
    content_type: str
    size: int
    content_id: str | None
    is_inline: bool


@dataclass(frozen=True)
class ParsedMessage:
    """What a message view needs: decoded headers, the chosen body, the other parts."""

    subject: str
    from_: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str | None
    html: str | None
    attachments: tuple[AttachmentInfo, ...]
    attached_messages: tuple[ParsedMessage, ...]
    attached_message_part_ids: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def cid_map(self) -> dict[str, str]:
        """Map each attachment's Content-ID (without ``<>``) to its part number."""
        return {
            attachment.content_id: attachment.part_id
            for attachment in self.attachments
            if attachment.content_id
        }


class PartNotFound(LookupError):
    """The message has no part with the requested IMAP part number."""


# ---------------------------------------------------------------------- constants

_PARSE_POLICY = policy.default
# Serialising a part back to bytes must not refold its headers: the bytes should be
# the ones that arrived, as far as the parser kept them.
_GENERATE_POLICY = policy.default.clone(refold_source="none")

# Parts whose encoded payload is larger than this get an estimated size instead of
# being decoded just to be measured (see _estimated_size).
_EXACT_SIZE_LIMIT = 8 * 1024 * 1024
# Containers (message/rfc822, multiparts) with more parts than this get an estimate.
_EXACT_SIZE_NODES = 64
# Each nesting level costs a few stack frames here and in the email package.
_MAX_DEPTH_CAP = 100

_ENCAPSULATED = frozenset({"message/rfc822", "message/global"})
_IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})
_KNOWN_ENCODINGS = _IDENTITY_ENCODINGS | {
    "base64",
    "quoted-printable",
    "x-uuencode",
    "uuencode",
    "x-uue",
    "uue",
}

_PART_ID = re.compile(r"[1-9][0-9]{0,5}(?:\.[1-9][0-9]{0,5}){0,199}")

# Labels that mailers use but Python does not know, or that Python knows as a stricter
# subset of what is really sent (the WHATWG Encoding Standard makes the same choices).
_CHARSET_ALIASES_BEFORE_LOOKUP = {
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "x-gbk": "gb18030",
    "x-unicode20utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
}
_CHARSET_ALIASES_AFTER_LOOKUP = {
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
    "iso8859-11": "cp874",
    "shift_jis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
}
# Text codecs that are not character sets; a message must not pick them.
_REFUSED_CODECS = frozenset(
    {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode"}
)

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?]*)\?=")
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_HEADER_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Tabs are ordinary folding whitespace; the rest has no business in a header.
_UNEXPECTED_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_BAD_QP = re.compile(r"=(?![0-9A-Fa-f]{2})(?![ \t]*(?:\r?\n|$))")
_META_CHARSET = re.compile(
    rb"<meta[^>]{0,300}?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]{1,40})", re.IGNORECASE
)
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?")
_MAX_FILENAME_CHARS = 150

_DEFECT_TEXT = {
    "NoBoundaryInMultipartDefect": (
        "multipart without a boundary; the body is shown as plain text"
    ),
    "StartBoundaryNotFoundDefect": (
        "the multipart boundary never appears; the body is shown as plain text"
    ),
    "CloseBoundaryNotFoundDefect": (
        "the closing multipart boundary is missing (the message may be cut short)"
    ),
    "MultipartInvariantViolationDefect": None,  # always follows one of the above
    "FirstHeaderLineIsContinuationDefect": "the header block starts with a fold",
    "MisplacedEnvelopeHeaderDefect": "a stray envelope line among the headers",
    "MissingHeaderBodySeparatorDefect": (
        "malformed header block (a line that is not a header before the body)"
    ),
    "InvalidMultipartContentTransferEncodingDefect": (
        "a multipart with a transfer encoding other than 7bit/8bit/binary"
    ),
    "InvalidBase64PaddingDefect": "broken base64; decoded as far as possible",
    "InvalidBase64CharactersDefect": "broken base64; decoded as far as possible",
    "InvalidBase64LengthDefect": "broken base64; decoded as far as possible",
    "UndecodableBytesDefect": "undecodable bytes",
}

_EXTENSIONS = {
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/pgp-signature": ".asc",
    "application/pgp-encrypted": ".asc",
    "application/pgp-keys": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "text/calendar": ".ics",
    "text/plain": ".txt",
    "image/jpeg": ".jpg",
}


# ----------------------------------------------------------------- small helpers


def _scrub(text: str) -> str:
    """Replace lone surrogates, which cannot be encoded as UTF-8, with U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _join(prefix: str, number: int) -> str:
    return f"{prefix}.{number}" if prefix else str(number)


def _part_id_key(part_id: str) -> tuple[int, ...]:
    return tuple(int(number) for number in part_id.split("."))


class _Problems:
    """An ordered set of problem notes."""

    def __init__(self) -> None:
        self._items: dict[str, None] = {}

    def add(self, text: str) -> None:
        self._items.setdefault(_scrub(text), None)

    def as_tuple(self) -> tuple[str, ...]:
        return tuple(self._items)


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


# ------------------------------------------------------------------------ charsets


def _codec_for(charset: str) -> str | None:
    """Return the Python codec for a MIME charset label, or None if unusable."""
    label = charset.strip().strip("\"'").lower()
    if not label or len(label) > 40:
        return None
    label = _CHARSET_ALIASES_BEFORE_LOOKUP.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    # bytes-to-bytes codecs (zlib, base64, rot13, …) are not character sets.
    if info.name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return _CHARSET_ALIASES_AFTER_LOOKUP.get(info.name, info.name)


def _fallback_decode(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown charset: UTF-8 if valid, else windows-1252."""
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        # Five bytes are undefined in windows-1252; ISO-8859-1 maps every byte.
        return data.decode("latin-1"), "ISO-8859-1"


def _decode_bytes(
    data: bytes, charset: str | None, note: Callable[[str], None], where: str
) -> str:
    """Decode bytes in a declared charset, falling back instead of failing."""
    if charset:
        codec = _codec_for(charset)
        if codec is None:
            text, used = _fallback_decode(data)
            note(f"{where}: unknown charset {_short(charset)!r}, decoded as {used}")
            return text
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            if codec == "ascii":
                text, used = _fallback_decode(data)
                note(f"{where}: 8-bit text declared as US-ASCII, decoded as {used}")
                return text
            note(
                f"{where}: text is not valid {_short(charset)}; "
                "undecodable bytes were replaced"
            )
            try:
                return data.decode(codec, errors="replace")
            except (UnicodeError, LookupError, ValueError, TypeError):
                pass
        except (UnicodeError, LookupError, ValueError, TypeError):
            pass
        text, used = _fallback_decode(data)
        note(f"{where}: charset {_short(charset)!r} failed, decoded as {used}")
        return text
    if data.isascii():
        return data.decode("ascii")
    text, used = _fallback_decode(data)
    note(f"{where}: 8-bit text without a declared charset, decoded as {used}")
    return text


# ------------------------------------------------------------------------- headers


def _to_bytes(value: str | bytes) -> bytes:
    """Turn a header value back into its wire bytes.

    The parser hands raw 8-bit header bytes over as surrogate escapes; encoding with
    ``surrogateescape`` restores them.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    try:
        return str(value).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return str(value).encode("utf-8", "replace")


def _raw_to_text(value: str | bytes, issues: list[str]) -> str:
    """Wire header value -> unfolded text; encoded words are left alone."""
    data = _to_bytes(value)
    if data.isascii():
        text = data.decode("ascii")
    else:
        text, used = _fallback_decode(data)
        issues.append(f"raw 8-bit bytes, decoded as {used}")
    return _UNFOLD.sub("", text)


def _decode_b(payload: str, issues: list[str]) -> bytes:
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
    broken = cleaned != payload.rstrip("=")
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
        broken = True
    if broken:
        issues.append("broken base64 in an encoded word")
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))


def _decode_q(payload: str) -> bytes:
    data = payload.replace("_", " ").encode("utf-8", "replace")
    return _Q_ESCAPE.sub(lambda match: bytes([int(match.group(1), 16)]), data)


def _decode_encoded_words(text: str, issues: list[str]) -> str:
    """Decode RFC 2047 encoded words, leniently.

    Whitespace between adjacent encoded words is dropped (RFC 2047 §6.2), and the bytes
    of adjacent words in the same charset are joined before decoding, so a character
    split across two words (common with folded UTF-8 subjects) survives. Encoded words
    glued to other text, or inside quoted strings, are decoded too, as mail clients do.
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending: list[tuple[str, bytes]] = []

    def note(message: str) -> None:
        issues.append(message)

    def flush() -> None:
        for charset, run in itertools.groupby(pending, key=lambda item: item[0]):
            data = b"".join(chunk for _, chunk in run)
            out.append(_decode_bytes(data, charset, note, "encoded word"))
        pending.clear()

    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        if not (pending and between.strip(" \t") == ""):
            flush()
            out.append(between)
        # RFC 2231 §5 allows a language after the charset: =?utf-8*en?q?…?=
        charset = match.group(1).split("*", 1)[0].lower()
        payload = match.group(3)
        if match.group(2) in "Bb":
            chunk = _decode_b(payload, issues)
        else:
            chunk = _decode_q(payload)
        pending.append((charset, chunk))
        position = match.end()
    flush()
    out.append(text[position:])
    return "".join(out)


def _clean_header_text(text: str) -> str:
    return _scrub(_HEADER_CONTROL.sub(" ", text)).strip()


def _header_text(value: str | bytes) -> tuple[str, list[str]]:
    issues: list[str] = []
    text = _raw_to_text(value, issues)
    return _decode_words_checked(text, issues), issues


def _decode_words_checked(text: str, issues: list[str]) -> str:
    """Decode encoded words, then replace control characters (noting them)."""
    text = _decode_encoded_words(text, issues)
    if _UNEXPECTED_CONTROL.search(text):
        issues.append("control characters (such as CR, LF or NUL) replaced by spaces")
    return _clean_header_text(text)


def decode_header_value(value: str | bytes) -> str:
    """Decode a header value for display; never raises.

    Handles RFC 2047 encoded words (B and Q, any charset Python knows, unknown ones
    decoded as UTF-8 or windows-1252), raw 8-bit UTF-8 or latin-1 bytes (given as bytes
    or as the surrogate escapes the ``email`` parser produces), folding, and replaces
    control characters such as CR, LF and NUL with spaces.
    """
    try:
        return _header_text(value)[0]
    except Exception:  # noqa: BLE001 - promised never to raise on hostile input
        text = _to_bytes(value).decode("ascii", "replace")
        return _clean_header_text(text)


def _raw_headers(part: Message, name: str) -> list[str]:
    """Every raw value of one header, as the parser stored it (folded, undecoded)."""
    wanted = name.lower()
    try:
        return [value for key, value in part.raw_items() if key.lower() == wanted]
    except Exception:  # noqa: BLE001 - a broken header list is treated as empty
        return []


def _raw_header(part: Message, name: str) -> str | None:
    values = _raw_headers(part, name)
    return values[0] if values else None


def _split_params(value: str) -> tuple[str, list[tuple[str, str]]]:
    """Split ``type; a=1; b="x;y"`` into the first item and (name, value) pairs.

    Quoted strings keep their semicolons; inside quotes only ``\\\\`` and ``\\"`` are
    escapes, because Windows mailers send unescaped paths like ``"C:\\tmp\\a.txt"``.
    """
    pieces: list[str] = []
    buffer: list[str] = []
    in_quotes = escaped = False
    for char in value:
        if in_quotes:
            buffer.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
            buffer.append(char)
        elif char == ";":
            pieces.append("".join(buffer))
            buffer = []
        else:
            buffer.append(char)
    pieces.append("".join(buffer))
    params: list[tuple[str, str]] = []
    for piece in pieces[1:]:
        name, _, raw = piece.partition("=")
        name = name.strip().lower()
        raw = raw.strip()
        if not name:
            continue
        if raw.startswith('"'):
            raw = raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:]
            raw = raw.replace("\\\\", "\\").replace('\\"', '"')
        params.append((name, raw))
    return pieces[0].strip(), params


_RFC2231_NAME = re.compile(r"([^*]+)\*([0-9]{1,3})?(\*)?")


def _header_params(raw: str | None, issues: list[str]) -> tuple[str, dict[str, str]]:
    """Parse a Content-Type or Content-Disposition value into (first item, params).

    Parameter values are decoded: RFC 2231 (``name*=charset'lang'%XX``, continuations
    ``name*0*=…; name*1*=…``; these win over a plain ``name=``) and, for plain values,
    RFC 2047 encoded words, which many mailers put in file names although RFC 2047 §5
    forbids it. Control characters are kept so the caller can see them.
    """
    if raw is None:
        return "", {}
    text = _raw_to_text(raw, issues)
    first, pairs = _split_params(text)
    plain: dict[str, str] = {}
    extended: dict[str, dict[int, tuple[str, bool]]] = {}
    for name, value in pairs:
        match = _RFC2231_NAME.fullmatch(name)
        if match is None:
            plain.setdefault(name, value)
            continue
        base, number, star = match.groups()
        if number is None:
            extended.setdefault(base, {}).setdefault(0, (value, True))
        else:
            extended.setdefault(base, {}).setdefault(int(number), (value, bool(star)))
    params = {
        name: _clean_param(_decode_encoded_words(value, issues))
        for name, value in plain.items()
    }

    def note(message: str) -> None:
        issues.append(message)

    for base, segments in extended.items():
        charset = ""
        chunks: list[bytes] = []
        for index, (number, (value, encoded)) in enumerate(sorted(segments.items())):
            if encoded:
                if index == 0 and number == 0 and value.count("'") >= 2:
                    charset, _, value = value.split("'", 2)
                chunks.append(unquote_to_bytes(value))
            else:
                chunks.append(value.encode("utf-8", "replace"))
        params[base] = _clean_param(
            _decode_bytes(b"".join(chunks), charset or None, note, f"parameter {base}")
        )
    return first.lower(), params


def _clean_param(value: str) -> str:
    return _scrub(value).strip()


def _addresses(part: Message, name: str, problems: _Problems) -> tuple[Address, ...]:
    result: list[Address] = []
    for raw in _raw_headers(part, name):
        issues: list[str] = []
        text = _raw_to_text(raw, issues)
        try:
            pairs = getaddresses([text])
        except Exception:  # noqa: BLE001 - the compat address parser has had bugs
            pairs = [(text, "")]
            issues.append("could not be split into addresses")
        for display, email_address in pairs:
            display = _decode_words_checked(display, issues)
            # No RFC 2047 decoding in an addr-spec: "=?…?=" there is a local part.
            if _UNEXPECTED_CONTROL.search(email_address):
                issues.append("control characters in an address replaced by spaces")
            email_address = _clean_header_text(email_address)
            if display or email_address:
                result.append(Address(name=display, email=email_address))
        for issue in issues:
            problems.add(f"header {name}: {issue}")
    return tuple(result)


def _single_header(part: Message, name: str, problems: _Problems) -> str | None:
    raw = _raw_header(part, name)
    if raw is None:
        return None
    text, issues = _header_text(raw)
    for issue in issues:
        problems.add(f"header {name}: {issue}")
    return text


def _msg_ids(text: str | None) -> list[str]:
    """Message ids in a header, with their angle brackets, in order, without repeats."""
    if not text:
        return []
    ids = [f"<{found}>" for found in _MSG_ID.findall(text)]
    if not ids:
        # Some mailers omit the brackets; take a lone id-looking token.
        ids = [f"<{token}>" for token in text.split() if "@" in token][:1]
    return list(dict.fromkeys(ids))


def _parse_date(text: str | None, problems: _Problems) -> datetime | None:
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        problems.add(f"header Date: not a date: {_short(text)!r}")
        return None
    if parsed.tzinfo is None:
        # "-0000" (RFC 5322 §3.3) or no zone at all: the time is UTC.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# ------------------------------------------------------------------- MIME headers


def _content_type(part: Message) -> str:
    """The part's lowercased maintype/subtype, as the parser understood it."""
    try:
        return part.get_content_type().lower()
    except Exception:  # noqa: BLE001 - fall back to a hand parse of the header
        first, _ = _header_params(_raw_header(part, "content-type"), [])
        return first if first.count("/") == 1 else "text/plain"


def _params(
    part: Message, header: str, issues: list[str]
) -> tuple[str, dict[str, str]]:
    return _header_params(_raw_header(part, header), issues)


def _disposition(part: Message) -> str:
    first, _ = _params(part, "content-disposition", [])
    return first


def _transfer_encoding(part: Message) -> str:
    raw = _raw_header(part, "content-transfer-encoding")
    if raw is None:
        return ""
    return _raw_to_text(raw, []).strip().lower()


def _content_id(part: Message) -> str | None:
    raw = _raw_header(part, "content-id")
    if raw is None:
        return None
    text = decode_header_value(raw).strip()
    if text.startswith("<"):
        text = text[1:]
    if text.endswith(">"):
        text = text[:-1]
    return text.strip() or None


# ------------------------------------------------------------------------- the tree


def _multipart_children(part: Message) -> list[Message] | None:
    """The sub-parts of a multipart the parser could split, else None."""
    if not _content_type(part).startswith("multipart/"):
        return None
    payload = part.get_payload()
    if isinstance(payload, list):
        return [child for child in payload if isinstance(child, Message)]
    return None


def _inner_message(part: Message) -> Message | None:
    """The message inside a message/rfc822 (or message/global) part, else None."""
    if _content_type(part) not in _ENCAPSULATED:
        return None
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _body_parts(entity: Message) -> list[Message]:
    """The numbered parts of a message's body: its children, or the body itself."""
    children = _multipart_children(entity)
    return children if children is not None else [entity]


def _navigate(message: Message, part_id: str) -> Message | None:
    """The part with an IMAP part number, following the rules in the module doc."""
    if not isinstance(part_id, str) or not _PART_ID.fullmatch(part_id):
        return None
    candidates: list[Message] | None = _body_parts(message)
    part: Message | None = None
    for number in _part_id_key(part_id):
        if candidates is None or not 1 <= number <= len(candidates):
            return None
        part = candidates[number - 1]
        children = _multipart_children(part)
        if children is not None:
            candidates = children
        elif (inner := _inner_message(part)) is not None:
            candidates = _body_parts(inner)
        else:
            candidates = None
    return part


def _parse_bytes(data: bytes) -> tuple[EmailMessage, str | None]:
    """Parse a whole message; on failure keep at least its headers."""
    parser = BytesParser(policy=_PARSE_POLICY)
    try:
        return parser.parsebytes(data), None
    except RecursionError:
        problem = "the MIME structure is nested too deeply to parse; no body shown"
    except Exception as exc:  # noqa: BLE001 - the email package has had crash bugs
        logger.warning("MIME parser failed: %s", type(exc).__name__)
        problem = "the MIME structure could not be parsed; no body shown"
    try:
        message = parser.parsebytes(data, headersonly=True)
    except Exception:  # noqa: BLE001
        message = EmailMessage(policy=_PARSE_POLICY)
    message.set_payload("")
    return message, problem


def _linesep(data: bytes) -> str:
    """The line ending a raw message uses, so re-serialised parts match it."""
    return "\r\n" if b"\r\n" in data[:65536] else "\n"


def _serialise(part: Message, linesep: str) -> bytes:
    buffer = BytesIO()
    generator = BytesGenerator(
        buffer, mangle_from_=False, policy=_GENERATE_POLICY.clone(linesep=linesep)
    )
    generator.flatten(part, linesep=linesep)
    return buffer.getvalue()


def _payload_bytes(part: Message, linesep: str = "\r\n") -> bytes:
    """The content of a part as IMAP ``BODY[<part>]`` gives it, transfer-decoded.

    A leaf gives its decoded payload; a message/rfc822 part the whole encapsulated
    message (headers and body, re-serialised: equal to the original up to line
    endings); a multipart or other container the bytes of its body.
    """
    payload = part.get_payload()
    if isinstance(payload, str):
        try:
            data = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - an undecodable payload is given as is
            data = None
        if isinstance(data, bytes):
            return data
        return _to_bytes(payload)
    inner = _inner_message(part)
    if inner is not None:
        return _serialise(inner, linesep)
    serialised = _serialise(part, linesep)
    separator = linesep.encode("ascii")
    if serialised.startswith(separator):
        return serialised[len(separator) :]
    _, found, body = serialised.partition(separator * 2)
    return body if found else b""


def _estimated_size(part: Message, payload: str) -> int:
    """Decoded size of a huge leaf, from its encoded length without decoding it."""
    encoding = _transfer_encoding(part)
    if encoding == "base64":
        length = len(payload) - sum(payload.count(ws) for ws in ("\r", "\n", " ", "\t"))
        padding = payload.rstrip()[-2:].count("=")
        return max(0, length * 3 // 4 - padding)
    if encoding == "quoted-printable":
        # Every "=XX" escape and "=\n" soft break shrinks by about two bytes.
        return max(0, len(payload) - 2 * payload.count("="))
    return len(payload)


def _container_size_estimate(part: Message, linesep: str) -> tuple[int, bool]:
    """Estimate the size of a container's content without serialising it.

    Returns (estimate, small): a container is small when it has at most
    _EXACT_SIZE_NODES parts and _EXACT_SIZE_LIMIT characters, and then its exact size
    is cheap to get by serialising it. Serialising every level of a deeply nested
    message would cost quadratic time, so big containers keep the estimate (the sum
    of their header and encoded payload lengths).
    """
    total = 0
    nodes = 0
    stack: list[Message] = [part]
    while stack:
        node = stack.pop()
        nodes += 1
        if nodes > _EXACT_SIZE_NODES * 50:
            break
        total += sum(
            len(key) + len(value) + 2 + len(linesep) for key, value in node.raw_items()
        )
        payload = node.get_payload()
        if isinstance(payload, str):
            total += len(payload)
        elif isinstance(payload, list):
            stack.extend(child for child in payload if isinstance(child, Message))
            total += 80 * len(payload)  # boundary lines
    small = nodes <= _EXACT_SIZE_NODES and total <= _EXACT_SIZE_LIMIT
    return total, small


# ------------------------------------------------------------------------- the plan


@dataclass
class _Plan:
    """Which parts of a subtree are the body and which are attachments."""

    text: tuple[str, Message] | None = None
    html: tuple[str, Message] | None = None
    attachments: list[tuple[str, Message, bool]] = field(default_factory=list)
    messages: list[tuple[str, Message]] = field(default_factory=list)

    @property
    def has_body(self) -> bool:
        return self.text is not None or self.html is not None

    def take_rest(self, other: _Plan) -> None:
        self.attachments.extend(other.attachments)
        self.messages.extend(other.messages)

    def demoted(self, *, related: bool = False) -> list[tuple[str, Message, bool]]:
        """This plan's body parts, listed as attachments instead."""
        result: list[tuple[str, Message, bool]] = []
        for found in (self.text, self.html):
            if found is not None:
                part_id, part = found
                disposition = _disposition(part)
                inline = disposition == "inline" or (
                    related and disposition != "attachment"
                )
                result.append((part_id, part, inline))
        return result


class _Walker:
    """Walks one message entity (top level or encapsulated) and plans its display."""

    def __init__(self, *, max_depth: int, problems: _Problems, linesep: str) -> None:
        self.max_depth = max_depth
        self.linesep = linesep
        self.problems = problems
        self.entity: Message | None = None
        self.sizes: dict[int, int] = {}
        self.depths: dict[str, int] = {}

    def label(self, part: Message, part_id: str) -> str:
        return "message" if part is self.entity else f"part {part_id}"

    def note_defects(self, part: Message, part_id: str) -> None:
        for defect in getattr(part, "defects", ()):
            name = type(defect).__name__
            text = _DEFECT_TEXT.get(name, name)
            if text:
                self.problems.add(f"{self.label(part, part_id)}: {text}")

    def walk_entity(self, entity: Message, prefix: str, depth: int) -> _Plan:
        self.entity = entity
        children = _multipart_children(entity)
        if children is None:
            return self.walk_part(entity, _join(prefix, 1), depth)
        self.note_defects(entity, prefix)
        return self.walk_multipart(entity, children, prefix, depth)

    def walk_part(
        self, part: Message, part_id: str, depth: int, *, related: bool = False
    ) -> _Plan:
        children = _multipart_children(part)
        if children is not None:
            self.note_defects(part, part_id)
            return self.walk_multipart(part, children, part_id, depth)
        content_type = _content_type(part)
        if _inner_message(part) is not None:
            self.note_defects(part, part_id)
            self.sizes[id(part)] = self.measure(part, part_id)
            plan = _Plan(attachments=[(part_id, part, False)])
            if depth >= self.max_depth:
                self.problems.add(
                    f"part {part_id}: attached message nested deeper than "
                    f"{self.max_depth} levels is not shown"
                )
            else:
                plan.messages.append((part_id, part))
                self.depths[part_id] = depth + 1
            return plan
        self.sizes[id(part)] = self.measure(part, part_id)
        self.note_defects(part, part_id)
        disposition = _disposition(part)
        # A multipart the parser could not split is shown as plain text.
        if disposition != "attachment" and content_type.startswith("multipart/"):
            return _Plan(text=(part_id, part))
        if disposition != "attachment" and content_type == "text/plain":
            return _Plan(text=(part_id, part))
        if disposition != "attachment" and content_type == "text/html":
            return _Plan(html=(part_id, part))
        inline = disposition == "inline" or (related and disposition != "attachment")
        return _Plan(attachments=[(part_id, part, inline)])

    def walk_multipart(
        self, part: Message, children: list[Message], part_id: str, depth: int
    ) -> _Plan:
        if depth >= self.max_depth:
            self.problems.add(
                f"{self.label(part, part_id)}: MIME parts nested deeper than "
                f"{self.max_depth} levels are not shown"
            )
            return _Plan()
        numbered = [(_join(part_id, n), child) for n, child in enumerate(children, 1)]
        subtype = _content_type(part).partition("/")[2]
        if subtype == "alternative":
            return self.walk_alternative(numbered, depth + 1)
        if subtype == "related":
            return self.walk_related(part, numbered, depth + 1)
        return self.walk_mixed(numbered, depth + 1)

    def walk_alternative(
        self, numbered: list[tuple[str, Message]], depth: int
    ) -> _Plan:
        """Pick the last plain and the last HTML alternative (RFC 2046 §5.1.4)."""
        plans = [self.walk_part(child, child_id, depth) for child_id, child in numbered]
        html_plan = next((p for p in reversed(plans) if p.html is not None), None)
        text_plan = next((p for p in reversed(plans) if p.text is not None), None)
        result = _Plan(
            text=text_plan.text if text_plan else None,
            html=html_plan.html if html_plan else None,
        )
        for plan in plans:
            # Alternatives that lost are other renderings of the same content; parts
            # that are no rendering at all (a text/calendar invitation) stay listed.
            if plan is html_plan or plan is text_plan or not plan.has_body:
                result.take_rest(plan)
        return result

    def walk_related(
        self, part: Message, numbered: list[tuple[str, Message]], depth: int
    ) -> _Plan:
        """The root is the body; the other parts are its inline resources (RFC 2387)."""
        root_index = 0
        _, params = _params(part, "content-type", [])
        start = params.get("start", "").strip().strip("<>")
        if start:
            for index, (_, child) in enumerate(numbered):
                if _content_id(child) == start:
                    root_index = index
                    break
        result = _Plan()
        for index, (child_id, child) in enumerate(numbered):
            if index == root_index:
                plan = self.walk_part(child, child_id, depth)
                result.text, result.html = plan.text, plan.html
            else:
                plan = self.walk_part(child, child_id, depth, related=True)
                result.attachments.extend(plan.demoted(related=True))
            result.take_rest(plan)
        return result

    def walk_mixed(self, numbered: list[tuple[str, Message]], depth: int) -> _Plan:
        """The first displayable part is the body; everything else is an attachment."""
        result = _Plan()
        for child_id, child in numbered:
            plan = self.walk_part(child, child_id, depth)
            if plan.has_body and not result.has_body:
                result.text, result.html = plan.text, plan.html
            else:
                result.attachments.extend(plan.demoted())
            result.take_rest(plan)
        return result

    def measure(self, part: Message, part_id: str) -> int:
        """Decoded size of a leaf, noting transfer-encoding problems on the way."""
        payload = part.get_payload()
        label = self.label(part, part_id)
        encoding = _transfer_encoding(part)
        if encoding not in _KNOWN_ENCODINGS:
            self.problems.add(
                f"{label}: unknown transfer encoding {_short(encoding)!r}; "
                "content left undecoded"
            )
        if not isinstance(payload, str):
            estimate, exact = _container_size_estimate(part, self.linesep)
            if not exact:
                return estimate
            try:
                return len(_payload_bytes(part, self.linesep))
            except Exception:  # noqa: BLE001 - includes RecursionError on deep trees
                return estimate
        if len(payload) > _EXACT_SIZE_LIMIT:
            return _estimated_size(part, payload)
        if encoding == "quoted-printable" and _BAD_QP.search(payload):
            self.problems.add(
                f"{label}: broken quoted-printable; bad escapes kept as they are"
            )
        return len(_payload_bytes(part, self.linesep))


# --------------------------------------------------------------------- the message


def _body_string(part: Message, where: str, kind: str, problems: _Problems) -> str:
    """Decode a body part to text: declared charset, else <meta> (HTML), else guess."""
    data = _payload_bytes(part)
    _, params = _params(part, "content-type", [])
    charset = params.get("charset")
    if kind == "html" and not charset:
        match = _META_CHARSET.search(data[:4096])
        if match and _codec_for(match.group(1).decode("ascii")):
            charset = match.group(1).decode("ascii")
    text = _decode_bytes(data, charset, problems.add, where)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if "\x00" in text:
        problems.add(f"{where}: NUL bytes in the text were replaced")
        text = text.replace("\x00", "\ufffd")
    return _scrub(text)


def _attachment_info(
    part_id: str,
    part: Message,
    *,
    is_inline: bool,
    size: int | None,
    problems: _Problems,
) -> AttachmentInfo:
    content_type = _content_type(part)
    if content_type.startswith("multipart/"):
        # Shown as text when not split; as an attachment its bytes are the raw body.
        content_type = "text/plain"
    issues: list[str] = []
    _, type_params = _params(part, "content-type", issues)
    _, disposition_params = _params(part, "content-disposition", issues)
    for issue in issues:
        problems.add(f"part {part_id}: {issue}")
    raw_name = disposition_params.get("filename") or type_params.get("name") or ""
    if not raw_name and (inner := _inner_message(part)) is not None:
        subject = _header_text(_raw_header(inner, "subject") or "")[0]
        if subject:
            raw_name = subject.replace("/", "_").replace("\\", "_") + ".eml"
    if raw_name and (
        "/" in raw_name
        or "\\" in raw_name
        or any(unicodedata.category(char) in ("Cc", "Cf") for char in raw_name)
    ):
        problems.add(
            f"part {part_id}: unsafe file name {_short(raw_name)!r} cleaned up"
        )
    if size is None:
        try:
            size = len(_payload_bytes(part))
        except Exception:  # noqa: BLE001
            size = 0
    return AttachmentInfo(
        part_id=part_id,
        filename=safe_filename(raw_name, part_id, content_type),
        content_type=content_type,
        size=size,
        content_id=_content_id(part),
        is_inline=is_inline,
    )


def _build(
    entity: Message, *, prefix: str, depth: int, max_depth: int, linesep: str
) -> ParsedMessage:
    problems = _Problems()
    subject = _single_header(entity, "Subject", problems) or ""
    from_ = _addresses(entity, "From", problems)
    to = _addresses(entity, "To", problems)
    cc = _addresses(entity, "Cc", problems)
    reply_to = _addresses(entity, "Reply-To", problems)
    date = _parse_date(_single_header(entity, "Date", problems), problems)
    message_ids = _msg_ids(_single_header(entity, "Message-ID", problems))
    in_reply_to = _msg_ids(_single_header(entity, "In-Reply-To", problems))
    references = _msg_ids(
        " ".join(_header_text(raw)[0] for raw in _raw_headers(entity, "references"))
    )

    walker = _Walker(max_depth=max_depth, problems=problems, linesep=linesep)
    plan = walker.walk_entity(entity, prefix, depth)
    text: str | None = None
    html: str | None = None
    if plan.text is not None:
        part_id, part = plan.text
        text = _body_string(part, walker.label(part, part_id), "text", problems)
    if plan.html is not None:
        part_id, part = plan.html
        html = _body_string(part, walker.label(part, part_id), "html", problems)

    seen: set[str] = set()
    attachments: list[AttachmentInfo] = []
    for part_id, part, is_inline in sorted(
        plan.attachments, key=lambda item: _part_id_key(item[0])
    ):
        if part_id in seen:
            continue
        seen.add(part_id)
        attachments.append(
            _attachment_info(
                part_id,
                part,
                is_inline=is_inline,
                size=walker.sizes.get(id(part)),
                problems=problems,
            )
        )

    nested: list[ParsedMessage] = []
    nested_ids: list[str] = []
    for part_id, part in plan.messages:
        inner = _inner_message(part)
        if inner is None or part_id in nested_ids:
            continue
        nested.append(
            _build(
                inner,
                prefix=part_id,
                depth=walker.depths.get(part_id, depth + 1),
                max_depth=max_depth,
                linesep=linesep,
            )
        )
        nested_ids.append(part_id)

    return ParsedMessage(
        subject=subject,
        from_=from_,
        to=to,
        cc=cc,
        reply_to=reply_to,
        date=date,
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(references),
        text=text,
        html=html,
        attachments=tuple(attachments),
        attached_messages=tuple(nested),
        attached_message_part_ids=tuple(nested_ids),
        problems=problems.as_tuple(),
    )


def _empty_message(problem: str) -> ParsedMessage:
    return ParsedMessage(
        subject="",
        from_=(),
        to=(),
        cc=(),
        reply_to=(),
        date=None,
        message_id=None,
        in_reply_to=None,
        references=(),
        text=None,
        html=None,
        attachments=(),
        attached_messages=(),
        attached_message_part_ids=(),
        problems=(problem,),
    )


def parse_message(raw: bytes, *, max_depth: int = 10) -> ParsedMessage:
    """Parse a raw RFC 5322 message into its display model; never raises.

    ``text`` is the plain-text body and ``html`` the raw, unsanitised HTML body, both
    decoded to ``str`` with ``\\n`` line ends; either may be None. In
    multipart/alternative the last plain and the last HTML alternative are chosen; in
    multipart/mixed (and unknown multiparts) the first inline text/plain or text/html
    part, or the first alternative/related group, is the body and every other part is
    an attachment; in multipart/related the root is the body and the other parts are
    inline attachments (``cid_map`` maps their Content-IDs). Parts with
    ``Content-Disposition: attachment`` are always attachments, and so is TNEF
    (winmail.dat). A message/rfc822 part is both an attachment (its .eml) and an
    entry of ``attached_messages``, parsed the same way with part numbers under its
    own. ``max_depth`` bounds how many multipart and message levels are opened
    (at most 100); deeper parts are skipped with a note in ``problems``.
    """
    try:
        data = raw if isinstance(raw, bytes) else _to_bytes(raw or b"")
        message, parse_problem = _parse_bytes(data)
        depth_limit = max(0, min(int(max_depth), _MAX_DEPTH_CAP))
        parsed = _build(
            message,
            prefix="",
            depth=0,
            max_depth=depth_limit,
            linesep=_linesep(data),
        )
    except Exception as exc:  # noqa: BLE001 - last line of defence: never raise
        logger.warning("MIME display model failed: %s", type(exc).__name__)
        return _empty_message("the message could not be parsed")
    extra: list[str] = []
    if not data or data.isspace():
        extra.append("the message is empty")
    if parse_problem:
        extra.append(parse_problem)
        parsed = replace(parsed, text=None, html=None)
    if extra:
        parsed = _with_problems(parsed, extra)
    return parsed


def _with_problems(parsed: ParsedMessage, extra: list[str]) -> ParsedMessage:
    return replace(parsed, problems=tuple(dict.fromkeys((*extra, *parsed.problems))))


# -------------------------------------------------------------------- single parts


def find_part(raw: bytes, part_id: str) -> EmailMessage | None:
    """Return the part with IMAP part number ``part_id``, or None.

    For a message/rfc822 part the result is that part (its content is the inner
    message); for "2.1" under a message/rfc822 whose body is not multipart it is the
    inner message itself, whose payload is its body. Never raises.
    """
    try:
        message, problem = _parse_bytes(_to_bytes(raw))
        if problem is not None:
            return None
        part = _navigate(message, part_id)
    except Exception:  # noqa: BLE001 - hostile input gives "no such part"
        return None
    return part if isinstance(part, EmailMessage) else None


def iter_part_payload(
    raw_file: BinaryIO, part_id: str, chunk_size: int = 65536
) -> Iterator[bytes]:
    """Yield the transfer-decoded content of one part in chunks.

    The content is what IMAP ``BODY[<part>]`` holds, decoded from base64 or
    quoted-printable: a leaf's decoded payload; for a message/rfc822 part the whole
    encapsulated message, re-serialised (equal to the original up to line endings,
    which follow the file's); for a multipart the raw bytes of its body. Raises
    :class:`PartNotFound` at call time, before anything is yielded, when there is no
    such part (or the structure is too deep to parse).

    Memory: the file is fed to the ``email`` parser in chunks, but the parser builds
    the whole tree, so the peak is about the size of the message (up to 2-4x for 8-bit
    content, which Python keeps in wider strings) plus the decoded part. The tree is
    dropped before the first chunk is yielded; from then on only the decoded part is
    held. Fine for mail-sized messages, not a true stream.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    parser = BytesFeedParser(policy=_PARSE_POLICY)
    linesep = "\n"
    first = True
    try:
        while block := raw_file.read(1024 * 1024):
            if first:
                linesep = _linesep(block)
                first = False
            parser.feed(block)
        message = parser.close()
    except RecursionError:
        raise PartNotFound(part_id) from None
    part = _navigate(message, part_id)
    if part is None:
        raise PartNotFound(part_id)
    data = _payload_bytes(part, linesep)
    del message, part, parser
    return _chunks(data, chunk_size)


def _chunks(data: bytes, chunk_size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), chunk_size):
        yield bytes(view[start : start + chunk_size])


# ---------------------------------------------------------------------- file names


@functools.cache
def _builtin_mimetypes() -> mimetypes.MimeTypes:
    # Only Python's built-in table: /etc/mime.types differs between hosts.
    return mimetypes.MimeTypes()


def _guess_extension(content_type: str) -> str:
    content_type = content_type.strip().lower()
    if content_type in _EXTENSIONS:
        return _EXTENSIONS[content_type]
    extension = _builtin_mimetypes().guess_extension(content_type)
    if extension:
        return extension
    return ".txt" if content_type.startswith("text/") else ".bin"


def safe_filename(name: str, part_id: str, content_type: str) -> str:
    """Return a file name that is safe to offer for download; never empty.

    Keeps only the last path component (RFC 2183 §2.3: ``../../etc/passwd`` becomes
    ``passwd``, ``C:\\a\\b.txt`` becomes ``b.txt``), turns control characters such as
    CR and LF into spaces and drops invisible format characters such as the
    right-to-left override, replaces ``<>:"|?*`` with ``_``, strips leading dots and
    trailing dots and spaces, prefixes Windows device names (``CON``, ``NUL``, …),
    and shortens long names keeping the extension. Falls back to
    ``attachment-<part_id>`` plus an extension for the content type.
    """
    text = _scrub(name if isinstance(name, str) else str(name or ""))
    text = unicodedata.normalize("NFC", text)
    cleaned = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp"):
            cleaned.append(" ")
        elif category not in ("Cf", "Cs", "Co", "Cn"):
            cleaned.append(char)
    text = "".join(cleaned).replace("\\", "/").rsplit("/", 1)[-1]
    text = _WINDOWS_FORBIDDEN.sub("_", text)
    text = " ".join(text.split()).strip(" .")
    if _WINDOWS_RESERVED.fullmatch(text):
        text = "_" + text
    if len(text) > _MAX_FILENAME_CHARS:
        stem, dot, extension = text.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            keep = _MAX_FILENAME_CHARS - len(extension) - 1
            text = stem[:keep].rstrip(" .") + "." + extension
        else:
            text = text[:_MAX_FILENAME_CHARS].rstrip(" .")
    if text:
        return text
    safe_id = re.sub(r"[^0-9.]", "", str(part_id or "")).strip(".")
    base = f"attachment-{safe_id}" if safe_id else "attachment"
    return base + _guess_extension(str(content_type or ""))
