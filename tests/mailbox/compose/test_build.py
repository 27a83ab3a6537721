"""Message building: addresses, subjects, threading, quoting, MIME (pure functions)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from mailbox.compose import build
from mailbox.mime import Address, ParsedMessage


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a@example.net", [("", "a@example.net")]),
        ("Jöhn Dœ <j@example.net>", [("Jöhn Dœ", "j@example.net")]),
        ('"Last, First" <lf@example.net>', [("Last, First", "lf@example.net")]),
        (
            "a@example.net; b@example.net",
            [("", "a@example.net"), ("", "b@example.net")],
        ),
        ("a@example.net, A@Example.net", [("", "a@example.net")]),
        ("z@bücher.example", [("", "z@xn--bcher-kva.example")]),
        ("  ,a@example.net,  ", [("", "a@example.net")]),
        ("", []),
    ],
)
def test_addresses_are_parsed(text, expected):
    assert [(m.name, m.email) for m in build.parse_addresses(text)] == expected


@pytest.mark.parametrize(
    "text",
    [
        "a@example.net\r\nBcc: victim@example.net",
        "a@example.net\nb@example.net",
        "a@example.net\x00",
        "plainword",
        "a@",
        "@example.net",
        "<>",
        "a@exa mple.net",
        "Name <a@example.net> trailing",
        ", ".join(f"u{i}@example.net" for i in range(build.MAX_RECIPIENTS + 1)),
    ],
)
def test_bad_address_lists_are_refused(text):
    with pytest.raises(build.AddressError):
        build.parse_addresses(text)


@pytest.mark.parametrize(
    ("subject", "reply", "forward"),
    [
        ("Hello", "Re: Hello", "Fwd: Hello"),
        ("Re: Hello", "Re: Hello", "Fwd: Re: Hello"),
        ("RE: re: Hello", "Re: Hello", "Fwd: RE: re: Hello"),
        ("AW: Hello", "Re: Hello", "Fwd: AW: Hello"),
        ("Re[2]: Hello", "Re: Hello", "Fwd: Re[2]: Hello"),
        ("Fwd: Hello", "Re: Fwd: Hello", "Fwd: Hello"),
        ("Fw: TR: WG: Hello", "Re: Fw: TR: WG: Hello", "Fwd: Hello"),
        ("", "Re:", "Fwd:"),
        ("Regarding: Rebus", "Re: Regarding: Rebus", "Fwd: Regarding: Rebus"),
    ],
)
def test_subject_prefixes_are_never_doubled(subject, reply, forward):
    assert build.reply_subject(subject) == reply
    assert build.forward_subject(subject) == forward


def test_references_follow_rfc_5322_and_are_capped():
    assert build.references_for(
        message_id="<c@x>", references=["<a@x>", "<b@x>"], in_reply_to="<b@x>"
    ) == ["<a@x>", "<b@x>", "<c@x>"]
    # No References: the parent's In-Reply-To stands in (RFC 5322 §3.6.4).
    assert build.references_for(
        message_id="<c@x>", references=[], in_reply_to="<b@x>"
    ) == ["<b@x>", "<c@x>"]
    long = [f"<{i}@x>" for i in range(50)]
    capped = build.references_for(message_id="<new@x>", references=long, in_reply_to="")
    assert len(capped) == build.MAX_REFERENCES
    assert capped[0] == "<0@x>"  # the thread's root stays
    assert capped[-2:] == ["<49@x>", "<new@x>"]


def _parsed(**values) -> ParsedMessage:
    base = {
        "subject": "Plan",
        "from_": (Address("Bob", "bob@example.net"),),
        "to": (Address("", "me@example.org"),),
        "cc": (),
        "reply_to": (),
        "date": datetime(2024, 5, 16, 17, 45, tzinfo=UTC),
        "message_id": "<m@x>",
        "in_reply_to": None,
        "references": (),
        "text": "line one\n> quoted\n\nline three",
        "html": None,
        "attachments": (),
        "attached_messages": (),
        "attached_message_part_ids": (),
        "problems": (),
    }
    return ParsedMessage(**{**base, **values})


def test_reply_quotes_the_text_under_an_attribution():
    quoted = build.quoted_reply(_parsed())
    assert "On Thu, 16 May 2024 17:45:00 +0000, Bob <bob@example.net> wrote:" in quoted
    assert "> line one\n>> quoted\n>\n> line three" in quoted


def test_an_html_only_original_is_quoted_as_text():
    parsed = _parsed(text=None, html="<p>Hi <b>there</b></p><script>x()</script>")
    assert "> Hi there" in build.quoted_reply(parsed)
    assert "x()" not in build.quoted_reply(parsed)


def test_signature_separator():
    assert build.with_signature("Hello", "Alice\r\nACME") == "Hello\n\n-- \nAlice\nACME"
    assert build.with_signature("Hello", "  \n") == "Hello"


def test_html_alternative_is_escaped_linkified_and_in_paragraphs():
    html = build.text_to_html(
        '<script>alert(1)</script> & "x"\nhttps://a.example/?q=1\n\nEnd'
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert '<a href="https://a.example/?q=1"' in html
    assert "<p>End</p>" in html
    assert "<br>" in html


def test_built_message_is_7bit_with_encoded_words_and_no_bcc_in_the_smtp_copy():
    draft = build.Draft(
        sender=build.Mailbox("Zoë", "z@example.org"),
        to=build.parse_addresses("Jöhn <j@example.net>"),
        bcc=build.parse_addresses("hidden@example.net"),
        subject=("Grüße " * 30).strip(),  # long: folded, still one header
        text="Schöne Grüße\n.\nA line starting with a dot above.",
        message_id="<fixed@example.org>",
        in_reply_to="<p@x>",
        references=["<o@x>", "<p@x>"],
        files=[
            build.FilePart("über.bin", "application/octet-stream", lambda: b"\x00\xff")
        ],
    )
    data = build.build(draft)
    assert data.isascii()
    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["Subject"] == ("Grüße " * 30).strip()
    assert message["Message-ID"] == "<fixed@example.org>"
    assert message["References"] == "<o@x> <p@x>"
    assert message["Bcc"] == "hidden@example.net"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "über.bin"
    assert attachment.get_content() == b"\x00\xff"

    smtp_copy = build.without_bcc(data)
    assert b"hidden@example.net" not in smtp_copy
    assert smtp_copy == data.replace(b"Bcc: hidden@example.net\r\n", b"")


def test_a_subject_with_a_line_break_cannot_be_built():
    draft = build.Draft(
        sender=build.Mailbox("", "z@example.org"), subject="x\r\nBcc: v@example.net"
    )
    with pytest.raises(build.AddressError):
        build.build(draft)
