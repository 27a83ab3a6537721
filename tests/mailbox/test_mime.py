"""mailbox.mime: raw message -> display model, part numbers, payloads, file names."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO

import pytest

from mailbox import mime
from mailbox.mime import (
    Address,
    PartNotFound,
    decode_header_value,
    find_part,
    iter_part_payload,
    parse_message,
    safe_filename,
)
from tests.data.loader import eml_names, load_eml

# The attachment bytes the fixtures in tests/data/eml were written with.
PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
    b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
CSV = b"quarter,revenue\nQ1,1200\nQ2,1350\n"
ZIP = b"PK\x05\x06" + b"\x00" * 18
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
TNEF = b"\x78\x9f\x3e\x22" + b"\x01\x00" * 10
PPTX = b"PK\x03\x04fake-pptx"
BLOB = bytes(range(256))

CLEAN = [
    "plain_utf8.eml",
    "intl_headers.eml",
    "alternative.eml",
    "attachments.eml",
    "related_cid.eml",
    "forwarded.eml",
    "toplevel_attachment.eml",
    "nested_numbering.eml",
    "utf7.eml",
    "no_body.eml",
]


def _strings(parsed: mime.ParsedMessage) -> list[str]:
    """Every string in a parsed message, nested messages included."""
    found = [parsed.subject, parsed.text or "", parsed.html or "", *parsed.problems]
    for address in (*parsed.from_, *parsed.to, *parsed.cc, *parsed.reply_to):
        found += [address.name, address.email]
    found += [attachment.filename for attachment in parsed.attachments]
    for nested in parsed.attached_messages:
        found += _strings(nested)
    return found


def _multipart(content_type: str, *parts: str, boundary: str = "b") -> bytes:
    body = "".join(f"--{boundary}\n{part}\n" for part in parts)
    return (
        f"Subject: built\nContent-Type: {content_type}; boundary={boundary}\n\n"
        f"{body}--{boundary}--\n"
    ).encode()


# ------------------------------------------------------------------------ headers


@pytest.mark.parametrize(
    ("name", "subject", "sender"),
    [
        ("plain_utf8.eml", "Grüße aus Köln", ("Anna Müller", "anna@example.org")),
        (
            "intl_headers.eml",
            "Привет из Москвы",
            ("François Lefèvre", "francois@example.fr"),
        ),
        ("alternative.eml", "Réunion de lundi", ("Claire Dubois", "claire@example.fr")),
        ("unknown_charset.eml", "Café ouvert", ("Café", "cafe@example.fr")),
        ("utf7.eml", "Hi Mom -☺-!", ("Old Client", "old@example.com")),
        (
            "raw_utf8_headers.eml",
            "Überweisung bestätigt ✓",
            ("Jürgen Groß", "juergen@example.de"),
        ),
        (
            "raw_latin1_headers.eml",
            "Grüße aus Zürich",
            ("Zoë Dupré", "zoe@example.fr"),
        ),
        (
            "header_injection.eml",
            "Hello  Bcc: x@evil.example",
            ("Attacker", "attacker@example.net"),
        ),
        ("nul_bytes.eml", "Null byte", ("Nul", "nul@example.com")),
        ("toplevel_attachment.eml", "Scan", ("", "scanner@example.com")),
    ],
)
def test_subject_and_sender_are_decoded(name, subject, sender):
    """Subjects and sender names come out as text, whatever their encoding."""
    parsed = parse_message(load_eml(name))
    assert parsed.subject == subject
    assert parsed.from_ == (Address(*sender),)


def test_international_address_headers_are_decoded():
    """To, Cc and Reply-To decode ISO-8859-1, Shift_JIS and UTF-8 names; groups open."""
    parsed = parse_message(load_eml("intl_headers.eml"))
    assert parsed.to == (
        Address("山田太郎", "taro@example.jp"),
        Address("Smith, John", "john@example.com"),
    )
    assert parsed.cc == (
        Address("Jörg", "joerg@example.de"),
        Address("", "ana@example.pt"),
        Address("Léa", "lea@example.fr"),
    )
    assert parsed.reply_to == (Address("Support 📧", "support@example.org"),)
    assert [str(address) for address in parsed.to] == [
        "山田太郎 <taro@example.jp>",
        "Smith, John <john@example.com>",
    ]


def test_folded_encoded_words_join_split_characters():
    """A UTF-8 character split across two folded encoded words is put back together."""
    raw = load_eml("intl_headers.eml")
    assert b"=?UTF-8?B?0J/RgNC40LLQtdGCINA=?=\r\n =?UTF-8?B?" in raw
    assert parse_message(raw).subject == "Привет из Москвы"


def test_thread_headers_keep_angle_brackets():
    """Message-ID, In-Reply-To and References keep their <>; repeats are dropped."""
    parsed = parse_message(load_eml("intl_headers.eml"))
    assert parsed.message_id == "<intl-1@example.fr>"
    assert parsed.in_reply_to == "<root-0@example.jp>"
    assert parsed.references == ("<root-0@example.jp>", "<reply-1@example.fr>")


def test_dates_are_aware():
    """Dates keep their zone; a missing or unparsable Date gives None."""
    assert parse_message(load_eml("intl_headers.eml")).date == datetime(
        2024, 5, 1, 23, 15, tzinfo=timezone(timedelta(hours=9))
    )
    assert parse_message(b"Date: Mon, 1 Jan 2024 10:00:00 -0000\n\nx").date == (
        datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    )
    assert parse_message(load_eml("bad_date.eml")).date is None
    assert parse_message(b"Subject: no date\n\nx").date is None
    for name in eml_names():
        date = parse_message(load_eml(name)).date
        assert date is None or date.tzinfo is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Re: plain subject", "Re: plain subject"),
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        ("=?UTF-8?B?w6nDqQ==?=", "éé"),
        ("=?Shift_JIS?B?jlKTY5G+mFk=?=", "山田太郎"),
        # RFC 2047 §8: whitespace between adjacent encoded words is dropped.
        ("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        ("=?UTF-8?Q?caf?=\r\n =?UTF-8?Q?=C3=A9?=", "café"),
        ("=?UTF-8?B?ww==?= =?UTF-8?B?qQ==?=", "é"),
        ("=?UTF-8*en?Q?hello?=", "hello"),
        ("=?x-unknown?Q?caf=C3=A9?=", "café"),
        ("=?UTF-8?B?w6nDq!Q?=", "éé"),
        ("=?zlib?Q?x?=", "x"),
        ("=?utf-7?Q?+2D3-?=", "\ufffd"),
        ("Gr\udcc3\udcbc\udcc3\udc9fe", "Grüße"),
        ("Grüße".encode(), "Grüße"),
        (b"Gr\xfc\xdfe", "Grüße"),
        ("=?utf-8?q?a=0D=0Ab?=", "a  b"),
        ("a\x00b", "a b"),
        ("=?", "=?"),
        ("", ""),
    ],
)
def test_decode_header_value(value, expected):
    """Header values decode RFC 2047, raw 8-bit bytes and folding, and drop controls."""
    assert decode_header_value(value) == expected


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    ("name", "text", "html"),
    [
        ("plain_utf8.eml", "schöne Grüße aus Köln – bis bald!", None),
        ("intl_headers.eml", "こんにちは、山田さん。", None),
        ("alternative.eml", "la réunion commence à 10h.", "<b>réunion</b>"),
        ("attachments.eml", "Please find your documents attached.", "<i>attached</i>"),
        ("related_cid.eml", "Our May newsletter:", 'src="cid:logo@example.org"'),
        ("forwarded.eml", "See the forwarded messages below.", None),
        ("nested_numbering.eml", "Planning meeting on Friday.", "<b>Friday</b>"),
        ("missing_boundary.eml", "Hello from a broken mailer.", None),
        ("wrong_boundary.eml", "is not the one used here.", None),
        ("unknown_charset.eml", "Le café est ouvert ce soir.", None),
        ("utf7.eml", "Hi Mom -☺-!", None),
        ("broken_base64.eml", "Hello world", None),
        ("bad_qp.eml", "Price: 100=ZZ euros = a fair price in €", None),
        ("raw_utf8_headers.eml", "Die Überweisung ist eingegangen.", None),
        ("raw_latin1_headers.eml", "Liebe Grüße aus Zürich, à bientôt!", None),
        ("path_traversal.eml", "Open the attached files.", None),
        ("header_injection.eml", "Nothing to see here.", None),
        ("bad_date.eml", "Nobody knows when this was sent.", None),
        ("nul_bytes.eml", "before\ufffdafter", None),
    ],
)
def test_displayed_body(name, text, html):
    """The chosen plain and HTML bodies are decoded text with \\n line ends."""
    parsed = parse_message(load_eml(name))
    assert text in parsed.text
    assert "\r" not in parsed.text
    if html is None:
        assert parsed.html is None
    else:
        assert html in parsed.html


def test_message_without_text_has_no_body():
    """A lone attachment, a header-only message and empty input have no text to show."""
    scan = parse_message(load_eml("toplevel_attachment.eml"))
    assert (scan.text, scan.html) == (None, None)
    headers_only = parse_message(load_eml("no_body.eml"))
    assert (headers_only.subject, headers_only.text, headers_only.html) == (
        "Headers only",
        "",
        None,
    )
    assert headers_only.problems == ()
    empty = parse_message(b"")
    assert (empty.subject, empty.text, empty.attachments) == ("", "", ())
    assert empty.problems == ("the message is empty",)


def test_alternative_prefers_the_last_of_each_kind():
    """In multipart/alternative the last plain and last HTML part win; none attach."""
    raw = _multipart(
        "multipart/alternative",
        "Content-Type: text/plain\n\nfirst plain",
        "Content-Type: text/html\n\n<p>first html</p>",
        "Content-Type: text/plain\n\nsecond plain",
        "Content-Type: text/html\n\n<p>second html</p>",
    )
    parsed = parse_message(raw)
    assert (parsed.text, parsed.html) == ("second plain", "<p>second html</p>")
    assert parsed.attachments == ()


def test_mixed_shows_the_first_text_part_and_lists_the_rest():
    """In multipart/mixed the first inline text part is the body; later ones attach."""
    raw = _multipart(
        "multipart/mixed",
        "Content-Type: image/png\nContent-Disposition: inline\n\npng?",
        "Content-Type: text/plain\n\nthe body",
        "Content-Type: text/plain\n\na footer",
    )
    parsed = parse_message(raw)
    assert parsed.text == "the body"
    assert [(a.part_id, a.filename, a.is_inline) for a in parsed.attachments] == [
        ("1", "attachment-1.png", True),
        ("3", "attachment-3.txt", False),
    ]


def test_related_root_follows_the_start_parameter():
    """multipart/related shows the part named by start=, not simply the first one."""
    raw = (
        b"Subject: start\n"
        b'Content-Type: multipart/related; boundary=r; start="<root@x>"\n\n'
        b"--r\nContent-Type: image/png\nContent-ID: <img@x>\n\npng?\n"
        b"--r\nContent-Type: text/html\nContent-ID: <root@x>\n\n"
        b'<img src="cid:img@x">\n'
        b"--r--\n"
    )
    parsed = parse_message(raw)
    assert parsed.html == '<img src="cid:img@x">'
    assert parsed.cid_map == {"img@x": "1"}
    assert parsed.attachments[0].is_inline


def test_html_without_charset_uses_its_meta_tag():
    """An HTML body without a charset parameter is decoded by its <meta charset>."""
    raw = (
        b"Content-Type: text/html\n\n"
        b'<html><head><meta charset="iso-8859-1"></head><p>Gr\xfc\xdfe</p></html>'
    )
    parsed = parse_message(raw)
    assert "<p>Grüße</p>" in parsed.html
    assert parsed.problems == ()


def test_deep_nesting_stops_at_the_depth_limit():
    """Sixty nested multiparts: the body below max_depth is skipped, with a note."""
    raw = load_eml("deep_nesting.eml")
    shallow = parse_message(raw)
    assert shallow.text is None
    assert shallow.subject == "Sixty levels deep"
    assert any("nested deeper than 10 levels" in p for p in shallow.problems)
    deep = parse_message(raw, max_depth=100)
    assert deep.text == "The bottom of the well."
    assert deep.problems == ()


def test_absurd_nesting_keeps_the_headers():
    """Nesting too deep for the parser still gives the headers and a problem."""
    levels = 1500
    raw = b"Subject: abyss\nContent-Type: multipart/mixed; boundary=b0\n\n"
    for level in range(levels):
        raw += b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (
            level,
            level + 1,
        )
    parsed = parse_message(raw)
    assert parsed.subject == "abyss"
    assert parsed.text is None
    assert "nested too deeply" in " ".join(parsed.problems)
    assert find_part(raw, "1") is None


def test_deeply_nested_attached_messages_stop_at_the_depth_limit():
    """message/rfc822 nesting counts toward max_depth too."""
    raw = b"".join(
        b"Subject: level %d\nContent-Type: message/rfc822\n\n" % level
        for level in range(30)
    )
    raw += b"Subject: bottom\n\nbottom body\n"
    parsed = parse_message(raw, max_depth=5)
    levels = 0
    current = parsed
    while current.attached_messages:
        current = current.attached_messages[0]
        levels += 1
    assert levels == 5
    assert current.subject == "level 5"
    assert "attached message nested deeper than 5 levels" in current.problems[0]


# ---------------------------------------------------------------------- attachments


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "attachments.eml",
            [
                ("2", "naïve résumé.pdf", "application/pdf", len(PDF), None, False),
                ("3", "notes.txt", "text/plain", 25, None, False),
                ("4", "日本語.jpg", "image/jpeg", len(JPEG), None, True),
                ("5", "winmail.dat", "application/ms-tnef", len(TNEF), None, False),
                (
                    "6",
                    "Präsentation.pptx",
                    "application/vnd.openxmlformats-officedocument"
                    ".presentationml.presentation",
                    len(PPTX),
                    None,
                    False,
                ),
                (
                    "7",
                    "attachment-7.bin",
                    "application/octet-stream",
                    len(BLOB),
                    None,
                    False,
                ),
            ],
        ),
        (
            "related_cid.eml",
            [
                ("2.2", "logo.png", "image/png", len(PNG), "logo@example.org", True),
                (
                    "2.3",
                    "attachment-2.3.gif",
                    "image/gif",
                    len(GIF),
                    "chart.png@01D9",
                    True,
                ),
            ],
        ),
        (
            "nested_numbering.eml",
            [
                ("1.3", "attachment-1.3.ics", "text/calendar", 29, None, False),
                ("2.1", "map.png", "image/png", len(PNG), None, False),
                ("2.2", "slides.zip", "application/zip", len(ZIP), None, False),
                ("3", "agenda.pdf", "application/pdf", len(PDF), None, False),
            ],
        ),
        (
            "toplevel_attachment.eml",
            [("1", "scan.pdf", "application/pdf", len(PDF), None, False)],
        ),
        (
            "path_traversal.eml",
            [
                ("2", "passwd", "text/plain", 31, None, False),
                ("3", "system.ini", "application/octet-stream", 9, None, False),
                ("4", "attachment-4.txt", "text/plain", 7, None, False),
                ("5", "invoicefdp.exe", "application/octet-stream", 2, None, False),
            ],
        ),
        (
            "header_injection.eml",
            [
                ("2", "html x.txt", "text/plain", 11, None, False),
                (
                    "3",
                    "invoice Bcc_ x@evil.example.pdf",
                    "application/pdf",
                    len(PDF),
                    None,
                    False,
                ),
            ],
        ),
        ("broken_base64.eml", [("2", "data.bin", "application/octet-stream", 10)]),
    ],
)
def test_attachments(name, expected):
    """Attachments keep their RFC 2231 / RFC 2047 file names, made safe, and sizes."""
    parsed = parse_message(load_eml(name))
    found = [
        (a.part_id, a.filename, a.content_type, a.size, a.content_id, a.is_inline)
        for a in parsed.attachments
    ]
    assert [row[: len(want)] for row, want in zip(found, expected, strict=True)] == [
        tuple(want) for want in expected
    ]


def test_inline_images_are_mapped_by_content_id():
    """Images of multipart/related are inline attachments found by their cid."""
    parsed = parse_message(load_eml("related_cid.eml"))
    assert parsed.cid_map == {"logo@example.org": "2.2", "chart.png@01D9": "2.3"}
    assert all(attachment.is_inline for attachment in parsed.attachments)


def test_forwarded_messages_are_parsed_with_their_own_attachments():
    """A message/rfc822 part is an .eml attachment and a parsed attached message."""
    parsed = parse_message(load_eml("forwarded.eml"))
    assert parsed.attached_message_part_ids == ("2", "3")
    assert [(a.part_id, a.filename, a.content_type) for a in parsed.attachments] == [
        ("2", "Quarterly figures.eml", "message/rfc822"),
        ("3", "lunch.eml", "message/rfc822"),
    ]
    figures, lunch = parsed.attached_messages
    assert figures.subject == "Quarterly figures"
    assert figures.from_ == (Address("Finance", "finance@example.com"),)
    assert figures.text == "The figures for Q1 and Q2 are attached."
    assert [(a.part_id, a.filename, a.size) for a in figures.attachments] == [
        ("2.2", "figures.csv", len(CSV)),
    ]
    assert lunch.subject == "Lunch?"
    assert lunch.text == "Lunch at noon tomorrow?"
    assert lunch.attachments == ()
    assert figures.problems == lunch.problems == ()


def test_attached_message_payload_is_the_original_message():
    """The payload of a message/rfc822 part is the forwarded message, byte for byte."""
    raw = load_eml("forwarded.eml")
    start = raw.index(b"Date: Fri, 17 May 2024")
    end = raw.index(b"\n--fwd-outer\nContent-Type: message/rfc822\nContent-Disposition")
    payload = b"".join(iter_part_payload(BytesIO(raw), "2"))
    assert payload == raw[start:end]
    assert parse_message(raw).attachments[0].size == len(payload)


@pytest.mark.parametrize(
    ("name", "part_id", "expected"),
    [
        ("attachments.eml", "2", PDF),
        ("attachments.eml", "4", JPEG),
        ("attachments.eml", "5", TNEF),
        ("attachments.eml", "6", PPTX),
        ("attachments.eml", "7", BLOB),
        ("attachments.eml", "3", b"Meeting notes\r\n- item one"),
        ("related_cid.eml", "2.2", PNG),
        ("related_cid.eml", "2.3", GIF),
        ("forwarded.eml", "2.2", CSV),
        ("forwarded.eml", "3.1", b"Lunch at noon tomorrow?"),
        ("nested_numbering.eml", "2.1", PNG),
        ("nested_numbering.eml", "2.2", ZIP),
        ("nested_numbering.eml", "3", PDF),
        ("toplevel_attachment.eml", "1", PDF),
        ("header_injection.eml", "3", PDF),
        ("broken_base64.eml", "2", bytes(range(10))),
    ],
)
def test_part_payload_is_the_decoded_attachment(name, part_id, expected):
    """find_part and iter_part_payload give exactly the bytes that were attached."""
    raw = load_eml(name)
    assert find_part(raw, part_id).get_payload(decode=True) == expected
    chunks = list(iter_part_payload(BytesIO(raw), part_id, chunk_size=7))
    assert b"".join(chunks) == expected
    assert all(len(chunk) <= 7 for chunk in chunks)
    sizes = {a.part_id: a.size for a in parse_message(raw).attachments}
    for nested in parse_message(raw).attached_messages:
        sizes.update({a.part_id: a.size for a in nested.attachments})
    if part_id in sizes:
        assert sizes[part_id] == len(expected)


def test_unknown_part_raises_before_streaming():
    """iter_part_payload raises PartNotFound when called, not when first iterated."""
    raw = load_eml("attachments.eml")
    with pytest.raises(PartNotFound):
        iter_part_payload(BytesIO(raw), "9")
    with pytest.raises(PartNotFound):
        iter_part_payload(BytesIO(raw), "../2")


def test_huge_parts_get_an_estimated_size(monkeypatch):
    """Huge parts are measured from their encoded length (exact for clean base64)."""
    monkeypatch.setattr(mime, "_EXACT_SIZE_LIMIT", 10)
    parsed = parse_message(load_eml("attachments.eml"))
    sizes = {a.part_id: a.size for a in parsed.attachments}
    assert sizes["2"] == len(PDF)
    assert sizes["7"] == len(BLOB)


# -------------------------------------------------------------------- part numbers


@pytest.mark.parametrize(
    ("name", "part_id", "content_type"),
    [
        # A message that is not multipart has exactly one part, "1": its body.
        ("plain_utf8.eml", "1", "text/plain"),
        ("plain_utf8.eml", "2", None),
        ("plain_utf8.eml", "1.1", None),
        ("toplevel_attachment.eml", "1", "application/pdf"),
        # Children of the top multipart are 1..n; nested multiparts number below.
        ("nested_numbering.eml", "1", "multipart/alternative"),
        ("nested_numbering.eml", "1.1", "text/plain"),
        ("nested_numbering.eml", "1.2", "text/html"),
        ("nested_numbering.eml", "1.3", "text/calendar"),
        ("nested_numbering.eml", "2", "multipart/mixed"),
        ("nested_numbering.eml", "2.1", "image/png"),
        ("nested_numbering.eml", "2.2", "application/zip"),
        ("nested_numbering.eml", "3", "application/pdf"),
        ("nested_numbering.eml", "4", None),
        ("nested_numbering.eml", "3.1", None),
        ("related_cid.eml", "2.1", "text/html"),
        # message/rfc822 "2" with a multipart body: its children are 2.1, 2.2.
        ("forwarded.eml", "2", "message/rfc822"),
        ("forwarded.eml", "2.1", "text/plain"),
        ("forwarded.eml", "2.2", "text/csv"),
        ("forwarded.eml", "2.3", None),
        # message/rfc822 "3" with a single-part body: that body is 3.1.
        ("forwarded.eml", "3", "message/rfc822"),
        ("forwarded.eml", "3.1", "text/plain"),
        ("forwarded.eml", "3.2", None),
        ("forwarded.eml", "3.1.1", None),
        # A multipart without a boundary is one leaf.
        ("missing_boundary.eml", "1", "multipart/mixed"),
        ("missing_boundary.eml", "1.1", None),
    ],
)
def test_part_numbers_follow_imap_bodystructure(name, part_id, content_type):
    """Part numbers are those of IMAP BODYSTRUCTURE (RFC 3501 §6.4.5)."""
    part = find_part(load_eml(name), part_id)
    if content_type is None:
        assert part is None
    else:
        assert part.get_content_type() == content_type


def test_attached_message_body_part_is_the_inner_message():
    """Part 3.1 of a single-part forwarded message is that message, body and all."""
    part = find_part(load_eml("forwarded.eml"), "3.1")
    assert part["Subject"] == "Lunch?"


def test_message_inside_message_numbers_each_level():
    """message/rfc822 inside message/rfc822: 2 is the outer, 2.1 the inner, 2.1.1 …"""
    raw = _multipart(
        "multipart/mixed",
        "Content-Type: text/plain\n\nouter text",
        "Content-Type: message/rfc822\n\n"
        "Subject: middle\nContent-Type: message/rfc822\n\n"
        "Subject: innermost\n\ninnermost text",
    )
    assert find_part(raw, "2").get_content_type() == "message/rfc822"
    assert find_part(raw, "2.1")["Subject"] == "middle"
    assert find_part(raw, "2.1.1")["Subject"] == "innermost"
    assert find_part(raw, "2.1.1").get_payload(decode=True) == b"innermost text"
    middle = parse_message(raw).attached_messages[0]
    assert middle.subject == "middle"
    assert middle.attached_message_part_ids == ("2.1",)
    assert middle.attached_messages[0].text == "innermost text"


@pytest.mark.parametrize("part_id", ["", "0", "1.0", "01", "a", "1..2", " 1", "-1"])
def test_malformed_part_numbers_find_nothing(part_id):
    """Anything that is not a dotted list of positive numbers finds no part."""
    assert find_part(load_eml("attachments.eml"), part_id) is None


# ------------------------------------------------------------------------ problems


@pytest.mark.parametrize("name", CLEAN)
def test_clean_messages_have_no_problems(name):
    """A well-formed message reports no problems."""
    assert parse_message(load_eml(name)).problems == ()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("missing_boundary.eml", "message: multipart without a boundary"),
        ("wrong_boundary.eml", "the multipart boundary never appears"),
        (
            "unknown_charset.eml",
            "message: unknown charset 'x-unknown', decoded as UTF-8",
        ),
        ("unknown_charset.eml", "header Subject: encoded word: unknown charset"),
        ("broken_base64.eml", "part 1: broken base64"),
        ("broken_base64.eml", "part 2: broken base64"),
        ("bad_qp.eml", "broken quoted-printable"),
        ("raw_utf8_headers.eml", "header Subject: raw 8-bit bytes, decoded as UTF-8"),
        (
            "raw_latin1_headers.eml",
            "header From: raw 8-bit bytes, decoded as windows-1252",
        ),
        (
            "raw_latin1_headers.eml",
            "8-bit text without a declared charset, decoded as windows-1252",
        ),
        ("path_traversal.eml", "part 2: unsafe file name '../../etc/passwd'"),
        ("path_traversal.eml", "part 5: unsafe file name 'invoice\\u202efdp.exe'"),
        ("header_injection.eml", "header Subject: control characters"),
        ("header_injection.eml", "part 2: unsafe file name 'evil\\r\\nContent-Type"),
        ("deep_nesting.eml", "nested deeper than 10 levels are not shown"),
        ("bad_date.eml", "header Date: not a date: 'sometime last tuesday'"),
        ("nul_bytes.eml", "NUL bytes in the text were replaced"),
        ("nul_bytes.eml", "header Subject: control characters"),
    ],
)
def test_malformed_messages_report_problems(name, problem):
    """Each defect a malformed message has is named in problems."""
    problems = parse_message(load_eml(name)).problems
    assert any(found.startswith(problem) or problem in found for found in problems), (
        problems
    )


# -------------------------------------------------------------------- never raises


@pytest.mark.parametrize("name", eml_names())
def test_every_fixture_parses_into_utf8_safe_strings(name):
    """Every sample parses, and every string in the result encodes as UTF-8."""
    parsed = parse_message(load_eml(name))
    for text in _strings(parsed):
        text.encode("utf-8")


def test_random_garbage_never_raises():
    """Random bytes, and sample messages cut or corrupted at random, always parse."""
    rng = random.Random(20240514)
    samples = [load_eml(name) for name in eml_names()]
    for round_number in range(200):
        if round_number % 2:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3000)))
        else:
            data = bytearray(rng.choice(samples))
            for _ in range(rng.randrange(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[: rng.randrange(len(data) + 1)])
        parsed = parse_message(data)
        for text in _strings(parsed):
            text.encode("utf-8")
        for attachment in parsed.attachments:
            assert attachment.filename
            assert find_part(data, attachment.part_id) is not None


# ---------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("name", "part_id", "content_type", "expected"),
    [
        ("report.pdf", "2", "application/pdf", "report.pdf"),
        ("naïve résumé.pdf", "2", "application/pdf", "naïve résumé.pdf"),
        ("e\u0301te\u0301.txt", "2", "text/plain", "été.txt"),
        ("winmail.dat", "2", "application/ms-tnef", "winmail.dat"),
        ("../../etc/passwd", "2", "text/plain", "passwd"),
        ("..\\..\\Windows\\system.ini", "2", "text/plain", "system.ini"),
        ("C:\\Users\\ann\\doc.txt", "2", "text/plain", "doc.txt"),
        ("evil\r\nX-Injected: 1.txt", "2", "text/plain", "evil X-Injected_ 1.txt"),
        ("a\x00b.txt", "2", "text/plain", "a b.txt"),
        ("invoice\u202efdp.exe", "2", "application/octet-stream", "invoicefdp.exe"),
        ('what?<>:"|*.txt', "2", "text/plain", "what_______.txt"),
        (".bashrc", "2", "text/plain", "bashrc"),
        ("trailing. ", "2", "text/plain", "trailing"),
        ("  spaced   out  .txt", "2", "text/plain", "spaced out .txt"),
        ("CON", "2", "text/plain", "_CON"),
        ("nul.txt", "2", "text/plain", "_nul.txt"),
        ("", "2", "image/png", "attachment-2.png"),
        ("", "1.2", "application/octet-stream", "attachment-1.2.bin"),
        ("", "3", "application/x-never-heard-of", "attachment-3.bin"),
        ("", "3", "text/x-weird", "attachment-3.txt"),
        ("", "2", "message/rfc822", "attachment-2.eml"),
        ("", "2", "application/ms-tnef", "attachment-2.dat"),
        ("", "2", "image/jpeg", "attachment-2.jpg"),
        ("..", "4", "text/plain", "attachment-4.txt"),
        ("/", "4", "application/pdf", "attachment-4.pdf"),
        ("", "../1", "text/plain", "attachment-1.txt"),
    ],
)
def test_safe_filename(name, part_id, content_type, expected):
    """File names lose paths, controls and reserved names; empty ones get a fallback."""
    assert safe_filename(name, part_id, content_type) == expected


def test_safe_filename_shortens_long_names_keeping_the_extension():
    """Very long file names are cut to 150 characters, extension kept."""
    name = safe_filename("a" * 300 + ".pdf", "2", "application/pdf")
    assert len(name) == 150
    assert name.endswith("a.pdf")
