"""One message of an IMAP folder: the parsed message, its raw bytes, one part.

Every function here SELECTs the folder (read-write), checks its UIDVALIDITY against
the one the caller saw (FolderChanged otherwise) and reads with ``BODY.PEEK`` so
that only :func:`fetch_message` decides about ``\\Seen``, explicitly.

Raw messages and parts are streamed in partial fetches (``BODY.PEEK[]<offset.length>``
of 1 MiB), so neither a big message nor a big attachment is ever held whole.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from imapclient.response_types import BodyData

from mailbox import mime
from mailbox.imap.listing import (
    SEEN,
    expunged_meanwhile,
    forget_expunge_notice,
    open_checked,
)
from mailbox.mime import AttachmentInfo, decode_header_value, parse_message
from mailbox.sources import Download, FullMessage, MessageGone

if TYPE_CHECKING:
    from imapclient import IMAPClient

__all__ = ["CHUNK_SIZE", "fetch_message", "fetch_part", "fetch_raw"]

CHUNK_SIZE = 1024 * 1024
_PART_ID = re.compile(r"[1-9][0-9]{0,5}(?:\.[1-9][0-9]{0,5}){0,99}")
_BASE64_CHARS = re.compile(rb"[^A-Za-z0-9+/]")
_ENCAPSULATED = ("message/rfc822", "message/global")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _fetch_one(client: IMAPClient, uid: int, items: list[str]) -> dict[bytes, Any]:
    """One message's ``items``; MessageGone when it is not there, including when
    another session expunged it and the server answered with empty data."""
    normalise = client.normalise_times
    client.normalise_times = False
    forget_expunge_notice(client)
    try:
        response = client.fetch([uid], items)
    finally:
        client.normalise_times = normalise
    data = response.get(uid)
    if not data or uid in expunged_meanwhile(client, {uid: data}):
        raise MessageGone(uid)
    return data


def _flags(data: dict[bytes, Any]) -> set[bytes]:
    return {
        flag.lower() if isinstance(flag, bytes) else flag.lower().encode()
        for flag in data.get(b"FLAGS", ())
    }


def fetch_message(
    client: IMAPClient,
    folder: str,
    uid: int,
    *,
    validity: int,
    mark_seen: bool = True,
) -> FullMessage:
    """Fetch, parse and return one message.

    ``UID FETCH uid (BODY.PEEK[] FLAGS RFC822.SIZE INTERNALDATE)``; then, when
    ``mark_seen`` and the message was unseen, ``\\Seen`` is stored, after the body
    was read (the result then says seen=True). Raises FolderChanged (stale
    validity or no such folder) and MessageGone (no such UID).
    """
    open_checked(client, folder, validity)
    data = _fetch_one(
        client, uid, ["BODY.PEEK[]", "FLAGS", "RFC822.SIZE", "INTERNALDATE"]
    )
    raw = data.get(b"BODY[]")
    if raw is None:
        raise MessageGone(uid)
    flags = _flags(data)
    seen = b"\\seen" in flags
    parsed = parse_message(bytes(raw))
    if mark_seen and not seen:
        client.add_flags([uid], [SEEN], silent=True)
        seen = True
    return FullMessage(
        folder=folder,
        validity=validity,
        uid=uid,
        size=int(data.get(b"RFC822.SIZE", len(raw))),
        seen=seen,
        flagged=b"\\flagged" in flags,
        answered=b"\\answered" in flags,
        parsed=parsed,
        received=_aware(data.get(b"INTERNALDATE")),
    )


def _partial_chunks(
    client: IMAPClient, uid: int, section: str, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """``BODY.PEEK[section]<offset.chunk_size>`` until a short or empty chunk."""
    offset = 0
    while True:
        item = f"BODY.PEEK[{section}]<{offset}.{chunk_size}>"
        response = client.fetch([uid], [item])
        data = response.get(uid)
        if not data:
            raise MessageGone(uid)
        chunk = data.get(f"BODY[{section}]<{offset}>".encode("ascii"))
        if chunk is None:
            # Some servers answer with the section without the origin.
            chunk = data.get(f"BODY[{section}]".encode("ascii"), b"")
        chunk = bytes(chunk or b"")
        if chunk:
            yield chunk
        if len(chunk) < chunk_size:
            return
        offset += len(chunk)


def fetch_raw(
    client: IMAPClient, folder: str, uid: int, *, validity: int
) -> Iterator[bytes]:
    """The whole message as the server has it, in chunks of up to 1 MiB.

    Streaming: RFC822.SIZE is fetched first (MessageGone and FolderChanged are
    raised at call time, before anything is yielded), then
    ``BODY.PEEK[]<offset.1048576>`` partial fetches as the iterator is consumed,
    so at most one chunk is in memory. The client must not be used for anything
    else until the iterator is exhausted or closed.
    """
    open_checked(client, folder, validity)
    size = int(_fetch_one(client, uid, ["RFC822.SIZE"]).get(b"RFC822.SIZE", 0))

    def chunks() -> Iterator[bytes]:
        if size == 0:
            return
        yield from _partial_chunks(client, uid, "")

    return chunks()


# ----------------------------------------------------------------- BODYSTRUCTURE


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return "" if value is None else str(value)


@dataclass(frozen=True)
class _Node:
    """One part of a BODYSTRUCTURE, with its IMAP part number."""

    part_id: str
    content_type: str
    params: tuple[Any, ...]
    content_id: str | None
    encoding: str
    size: int
    disposition: str
    disposition_params: tuple[Any, ...]
    children: tuple[_Node, ...] = ()
    inner: Any = None  # the encapsulated message's body, for message/rfc822
    envelope: Any = None

    @property
    def is_multipart(self) -> bool:
        return self.content_type.startswith("multipart/")


def _pairs(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple | list) else ()


def _node(structure: Any, part_id: str) -> _Node:
    if structure.is_multipart:
        children = tuple(
            _node(child, f"{part_id}.{n}" if part_id else str(n))
            for n, child in enumerate(structure[0], 1)
        )
        disp = _pairs(structure[3]) if len(structure) > 3 else ()
        return _Node(
            part_id=part_id,
            content_type="multipart/" + _text(structure[1]).lower(),
            params=_pairs(structure[2]),
            content_id=None,
            encoding="",
            size=0,
            disposition=_text(disp[0]).lower() if disp else "",
            disposition_params=_pairs(disp[1]) if len(disp) > 1 else (),
            children=children,
        )
    content_type = f"{_text(structure[0])}/{_text(structure[1])}".lower()
    if content_type.startswith("text/"):
        index = 9
    elif content_type in _ENCAPSULATED:
        index = 11
    else:
        index = 8
    disposition = structure[index] if len(structure) > index else None
    disp = _pairs(disposition)
    content_id = structure[3]
    inner = envelope = None
    if content_type in _ENCAPSULATED and len(structure) > 8:
        envelope, inner = structure[7], _body_data(structure[8])
    return _Node(
        part_id=part_id,
        content_type=content_type,
        params=_pairs(structure[2]),
        content_id=_clean_content_id(content_id),
        encoding=_text(structure[5]).lower(),
        size=int(structure[6] or 0),
        disposition=_text(disp[0]).lower() if disp else "",
        disposition_params=_pairs(disp[1]) if len(disp) > 1 else (),
        inner=inner,
        envelope=envelope,
    )


def _body_data(value: Any) -> Any:
    """imapclient converts only the outer BODYSTRUCTURE; do the same for a nested
    message's body (its multiparts become a list of parts at index 0)."""
    if isinstance(value, tuple) and value and not isinstance(value, BodyData):
        return BodyData.create(value)
    return value if isinstance(value, BodyData) else None


def _clean_content_id(value: Any) -> str | None:
    if not value:
        return None
    text = decode_header_value(value).strip()
    if text.startswith("<"):
        text = text[1:]
    if text.endswith(">"):
        text = text[:-1]
    return text.strip() or None


def _body_nodes(structure: Any, prefix: str) -> list[_Node]:
    """The numbered parts of a message body (its children, or the body as "1")."""
    if structure is None:
        return []
    if structure.is_multipart:
        return list(_node(structure, prefix).children)
    return [_node(structure, f"{prefix}.1" if prefix else "1")]


def _find(structure: Any, part_id: str) -> _Node | None:
    """The node with IMAP part number ``part_id`` (mime._navigate's rules)."""
    candidates = _body_nodes(structure, "")
    found: _Node | None = None
    for number in (int(n) for n in part_id.split(".")):
        if not 1 <= number <= len(candidates):
            return None
        found = candidates[number - 1]
        if found.is_multipart:
            candidates = list(found.children)
        elif found.inner is not None:
            candidates = _body_nodes(found.inner, found.part_id)
        else:
            candidates = []
    return found


# How mime.parse_message plans a message (its _Walker), replayed on BODYSTRUCTURE
# to know whether a part is an inline one: the same rules, without the bytes.


@dataclass
class _Plan:
    text: _Node | None = None
    html: _Node | None = None
    attachments: dict[str, bool] = field(default_factory=dict)

    @property
    def has_body(self) -> bool:
        return self.text is not None or self.html is not None

    def demoted(self, *, related: bool = False) -> dict[str, bool]:
        result = {}
        for node in (self.text, self.html):
            if node is not None:
                result[node.part_id] = node.disposition == "inline" or (
                    related and node.disposition != "attachment"
                )
        return result


def _walk_part(node: _Node, *, related: bool = False) -> _Plan:
    if node.is_multipart:
        return _walk_multipart(node)
    if node.inner is not None or node.content_type in _ENCAPSULATED:
        return _Plan(attachments={node.part_id: False})
    if node.disposition != "attachment" and node.content_type == "text/plain":
        return _Plan(text=node)
    if node.disposition != "attachment" and node.content_type == "text/html":
        return _Plan(html=node)
    inline = node.disposition == "inline" or (
        related and node.disposition != "attachment"
    )
    return _Plan(attachments={node.part_id: inline})


def _walk_multipart(node: _Node) -> _Plan:
    subtype = node.content_type.partition("/")[2]
    result = _Plan()
    if subtype == "alternative":
        plans = [_walk_part(child) for child in node.children]
        html_plan = next((p for p in reversed(plans) if p.html is not None), None)
        text_plan = next((p for p in reversed(plans) if p.text is not None), None)
        result.text = text_plan.text if text_plan else None
        result.html = html_plan.html if html_plan else None
        for plan in plans:
            if plan is html_plan or plan is text_plan or not plan.has_body:
                result.attachments.update(plan.attachments)
        return result
    if subtype == "related":
        root = 0
        start = ""
        params = dict(zip(node.params[::2], node.params[1::2], strict=False))
        for key, value in params.items():
            if _text(key).lower() == "start":
                start = decode_header_value(value).strip().strip("<>")
        if start:
            for index, child in enumerate(node.children):
                if child.content_id == start:
                    root = index
                    break
        for index, child in enumerate(node.children):
            if index == root:
                plan = _walk_part(child)
                result.text, result.html = plan.text, plan.html
            else:
                plan = _walk_part(child, related=True)
                result.attachments.update(plan.demoted(related=True))
            result.attachments.update(plan.attachments)
        return result
    for child in node.children:
        plan = _walk_part(child)
        if plan.has_body and not result.has_body:
            result.text, result.html = plan.text, plan.html
        else:
            result.attachments.update(plan.demoted())
        result.attachments.update(plan.attachments)
    return result


def _entity_attachments(structure: Any, prefix: str) -> dict[str, bool]:
    """Attachment part ids of one message entity -> is_inline, with nested ones."""
    if structure is None:
        return {}
    if structure.is_multipart:
        plan = _walk_multipart(_node(structure, prefix))
    else:
        plan = _walk_part(_node(structure, f"{prefix}.1" if prefix else "1"))
    found = dict(plan.attachments)
    for part_id in list(found):
        node = _find_in(structure, prefix, part_id)
        if node is not None and node.inner is not None:
            found.update(_entity_attachments(node.inner, part_id))
    return found


def _find_in(structure: Any, prefix: str, part_id: str) -> _Node | None:
    for node in _iter_nodes(_body_nodes(structure, prefix)):
        if node.part_id == part_id:
            return node
    return None


def _iter_nodes(nodes: list[_Node]) -> Iterator[_Node]:
    for node in nodes:
        yield node
        yield from _iter_nodes(list(node.children))


def _header_params(first: str, params: tuple[Any, ...]) -> dict[str, str]:
    """Decode BODYSTRUCTURE parameters exactly as mime decodes MIME headers.

    The pairs are put back into a header value and read by mime's parameter
    parser, so RFC 2231 (charset, continuations) and RFC 2047 names in
    parameters give the same text here as in ``parse_message``.
    """
    pieces = [first.encode("ascii", "replace")]
    for key, value in zip(params[::2], params[1::2], strict=False):
        raw_key = key if isinstance(key, bytes) else str(key).encode()
        raw_value = value if isinstance(value, bytes) else str(value or "").encode()
        quoted = raw_value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        pieces.append(raw_key + b'="' + quoted + b'"')
    # mime has no public name for its parameter parser yet.
    return mime._header_params(b"; ".join(pieces), [])[1]  # noqa: SLF001


def _estimated_size(node: _Node) -> int:
    """Decoded size from the encoded size, as mime estimates it for big parts.

    base64: the encoded characters (lines of 76 plus CRLF assumed) times 3/4;
    quoted-printable and the identity encodings: the encoded size.
    """
    if node.encoding == "base64":
        lines = -(-node.size // 78)
        return max(0, (node.size - 2 * lines) * 3 // 4)
    return node.size


def _mime_header_params(header: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """Content-Type and Content-Disposition parameters of a part's MIME header."""
    message = BytesParser(policy=policy.default).parsebytes(header, headersonly=True)
    # mime has no public name for its parameter parser yet.
    type_params = mime._params(message, "content-type", [])[1]  # noqa: SLF001
    disposition_params = mime._params(message, "content-disposition", [])[1]  # noqa: SLF001
    return type_params, disposition_params


def part_info(
    structure: Any, part_id: str, mime_header: bytes | None = None
) -> AttachmentInfo | None:
    """The AttachmentInfo of one part, from a BODYSTRUCTURE, as mime would give it.

    ``mime_header`` is the part's own MIME header (``BODY[<part>.MIME]``); its
    parameters are read by mime's own parser, which keeps what servers normalise
    away in BODYSTRUCTURE (Windows paths in quoted names lose their backslashes
    there). Without it the BODYSTRUCTURE parameters are used. ``size`` is the size
    the server reports for the encoded part (a decoded estimate for base64); the
    rest — file name (RFC 2231/2047 decoded, made safe), content type, Content-ID,
    inline — follows ``mime.parse_message``'s rules.
    """
    node = _find(structure, part_id)
    if node is None:
        return None
    content_type = node.content_type
    if content_type.startswith("multipart/"):
        content_type = "text/plain"
    if mime_header and mime_header.strip():
        type_params, disposition_params = _mime_header_params(mime_header)
    else:
        type_params = _header_params(content_type, node.params)
        disposition_params = _header_params(
            node.disposition or "attachment", node.disposition_params
        )
    raw_name = disposition_params.get("filename") or type_params.get("name") or ""
    if not raw_name and node.envelope is not None:
        # imapclient leaves a nested ENVELOPE as its raw tuple (subject second).
        envelope = node.envelope
        subject = getattr(envelope, "subject", None)
        if subject is None and isinstance(envelope, tuple) and len(envelope) > 1:
            subject = envelope[1]
        if subject:
            text = decode_header_value(subject)
            if text:
                raw_name = text.replace("/", "_").replace("\\", "_") + ".eml"
    # Inline or not comes from the plan of the message entity holding the part.
    inline = _entity_attachments(structure, "").get(part_id, False)
    return AttachmentInfo(
        part_id=part_id,
        filename=mime.safe_filename(raw_name, part_id, content_type),
        content_type=content_type,
        size=_estimated_size(node),
        content_id=node.content_id,
        is_inline=inline,
    )


# ------------------------------------------------------------------ decoding


def _decode_base64(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Decode base64 incrementally: whole 4-character groups, the rest carried."""
    carry = b""
    for chunk in chunks:
        data = carry + _BASE64_CHARS.sub(b"", chunk)
        usable = len(data) - len(data) % 4
        carry = data[usable:]
        if usable:
            yield binascii.a2b_base64(data[:usable])
    # Lenient end, as the email package: a lone extra character is dropped,
    # missing padding is added.
    if len(carry) % 4 == 1:
        carry = carry[:-1]
    if carry:
        yield binascii.a2b_base64(carry + b"=" * (-len(carry) % 4))


def _decode_qp(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Decode quoted-printable on whole lines (a soft break never splits)."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        carry = data[cut:]
        if cut:
            yield binascii.a2b_qp(data[:cut])
    if carry:
        yield binascii.a2b_qp(carry)


def fetch_part(
    client: IMAPClient, folder: str, uid: int, part_id: str, *, validity: int
) -> Download:
    """One part of a message, described and streamed transfer-decoded.

    ``part_id`` is an IMAP part number ("2", "1.3"); anything else, or a number
    the message does not have, raises MessageGone, as does a missing UID. The
    BODYSTRUCTURE and the part's MIME header (``BODY.PEEK[<part_id>.MIME]``, a few
    hundred bytes) give the description at call time; the bytes come in
    ``BODY.PEEK[<part_id>]<offset.1048576>`` partial fetches as the iterator is
    consumed, decoded incrementally (base64 with the remainder carried across
    chunks, quoted-printable on whole lines), so memory stays about two chunks
    whatever the part's size. A message/rfc822 part gives the encapsulated
    message's bytes. The client must not be used for anything else until the
    iterator is exhausted or closed.
    """
    if not isinstance(part_id, str) or not _PART_ID.fullmatch(part_id):
        raise MessageGone(uid)
    open_checked(client, folder, validity)
    data = _fetch_one(client, uid, ["BODYSTRUCTURE", f"BODY.PEEK[{part_id}.MIME]"])
    structure = data.get(b"BODYSTRUCTURE")
    header = data.get(f"BODY[{part_id}.MIME]".encode("ascii"))
    try:
        info = part_info(structure, part_id, header)
    except (TypeError, ValueError, IndexError, AttributeError, RecursionError):
        info = None  # a BODYSTRUCTURE this module cannot read: no such part
    node = _find(structure, part_id)
    if info is None or node is None:
        raise MessageGone(uid)
    raw = _partial_chunks(client, uid, part_id)
    if node.encoding == "base64":
        chunks = _decode_base64(raw)
    elif node.encoding == "quoted-printable":
        chunks = _decode_qp(raw)
    else:
        chunks = raw
    return Download(info=info, chunks=chunks)
