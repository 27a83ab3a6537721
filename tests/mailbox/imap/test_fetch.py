"""Opening messages, raw source and attachment downloads against the private Dovecot."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tracemalloc
from email.message import EmailMessage

import pytest

from mailbox.imap.fetch import fetch_message, fetch_part, fetch_raw
from mailbox.imap.listing import select
from mailbox.mime import iter_part_payload, parse_message
from mailbox.sources import FolderChanged, MessageGone
from tests.data.loader import eml_names, load_eml


def _validity(client, folder: str = "INBOX") -> int:
    return select(client, folder).uidvalidity


def _seen(client, uid: int) -> bool:
    client.select_folder("INBOX", readonly=True)
    return b"\\Seen" in client.get_flags([uid])[uid]


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_fetch_parses_the_message(dovecot, mail_user, client):
    """The opened message is parsed like mime.parse_message parses its bytes."""
    dovecot.deliver(mail_user.username, load_eml("attachments.eml"))
    message = fetch_message(client, "INBOX", 1, validity=_validity(client))
    expected = parse_message(_crlf(load_eml("attachments.eml")))
    assert message.parsed.subject == expected.subject == "Your documents"
    assert message.parsed.attachments == expected.attachments
    assert message.uid == 1
    assert message.size == len(_crlf(load_eml("attachments.eml")))
    assert message.received is not None
    assert message.received.tzinfo is not None


def test_fetch_marks_seen_only_when_asked(dovecot, mail_user, client):
    """Opening marks \\Seen after reading; a peek leaves the message unread."""
    dovecot.deliver(mail_user.username, load_eml("plain_utf8.eml"))
    validity = _validity(client)
    peek = fetch_message(client, "INBOX", 1, validity=validity, mark_seen=False)
    assert peek.seen is False
    assert _seen(client, 1) is False
    opened = fetch_message(client, "INBOX", 1, validity=validity)
    assert opened.seen is True
    assert _seen(client, 1) is True


def test_fetch_keeps_other_flags(dovecot, mail_user, client):
    """Flagged and answered are reported; an already seen message stays as is."""
    dovecot.deliver(mail_user.username, load_eml("plain_utf8.eml"), flags="SFR")
    message = fetch_message(client, "INBOX", 1, validity=_validity(client))
    assert (message.seen, message.flagged, message.answered) == (True, True, True)


def test_gone_message_raises_message_gone(dovecot, mail_user, client):
    """A UID the folder does not have is MessageGone, for every fetch."""
    dovecot.deliver(mail_user.username, load_eml("plain_utf8.eml"))
    validity = _validity(client)
    with pytest.raises(MessageGone):
        fetch_message(client, "INBOX", 99, validity=validity)
    with pytest.raises(MessageGone):
        fetch_raw(client, "INBOX", 99, validity=validity)
    with pytest.raises(MessageGone):
        fetch_part(client, "INBOX", 99, "1", validity=validity)
    with pytest.raises(MessageGone):
        fetch_part(client, "INBOX", 1, "7", validity=validity)
    with pytest.raises(MessageGone):
        fetch_part(client, "INBOX", 1, "1 BODY[]", validity=validity)


def test_stale_validity_raises_folder_changed(dovecot, mail_user, client):
    """Another UIDVALIDITY, or a folder that is gone, is FolderChanged."""
    dovecot.deliver(mail_user.username, load_eml("plain_utf8.eml"))
    stale = _validity(client) + 1
    with pytest.raises(FolderChanged):
        fetch_message(client, "INBOX", 1, validity=stale)
    with pytest.raises(FolderChanged):
        fetch_raw(client, "INBOX", 1, validity=stale)
    with pytest.raises(FolderChanged):
        fetch_part(client, "INBOX", 1, "1", validity=stale)
    with pytest.raises(FolderChanged):
        fetch_message(client, "Nowhere", 1, validity=stale)
    assert _seen(client, 1) is False


@pytest.mark.parametrize(
    "name", ["plain_utf8.eml", "forwarded.eml", "intl_headers.eml"]
)
def test_raw_stream_equals_the_delivered_bytes(dovecot, mail_user, client, name):
    """ "Show original" gives the message as delivered (with CRLF line ends)."""
    dovecot.deliver(mail_user.username, load_eml(name))
    chunks = fetch_raw(client, "INBOX", 1, validity=_validity(client))
    assert b"".join(chunks) == _crlf(load_eml(name))


def test_raw_stream_comes_in_chunks(dovecot, mail_user, client):
    """A message bigger than a chunk comes in several, equal to the original."""
    body = base64.encodebytes(os.urandom(3 * 1024 * 1024))
    data = b"Subject: big\r\nFrom: a@example.org\r\n\r\n" + body.replace(b"\n", b"\r\n")
    dovecot.deliver(mail_user.username, data)
    chunks = list(fetch_raw(client, "INBOX", 1, validity=_validity(client)))
    assert len(chunks) == 5
    assert b"".join(chunks) == data
    assert _seen(client, 1) is False


WITH_ATTACHMENTS = {
    "attachments.eml": 6,
    "related_cid.eml": 2,
    "forwarded.eml": 3,  # two attached messages and a file inside one
}


@pytest.mark.parametrize("name", eml_names())
def test_each_attachment_streams_its_original_bytes(dovecot, mail_user, client, name):
    """Every attachment, nested ones too, of every sample message: described as
    mime describes it, with the bytes mime.iter_part_payload gives, and the
    message stays unread."""
    dovecot.deliver(mail_user.username, load_eml(name))
    validity = _validity(client)
    raw = b"".join(fetch_raw(client, "INBOX", 1, validity=validity))
    parsed = parse_message(raw)
    attachments = list(parsed.attachments)
    for inner in parsed.attached_messages:
        attachments += inner.attachments
    if name in WITH_ATTACHMENTS:
        assert len(attachments) == WITH_ATTACHMENTS[name]
    for expected in attachments:
        download = fetch_part(client, "INBOX", 1, expected.part_id, validity=validity)
        got = b"".join(download.chunks)
        wanted = b"".join(iter_part_payload(io.BytesIO(raw), expected.part_id))
        assert got == wanted, expected.part_id
        info = download.info
        assert (
            info.part_id,
            info.filename,
            info.content_type,
            info.content_id,
            info.is_inline,
        ) == (
            expected.part_id,
            expected.filename,
            expected.content_type,
            expected.content_id,
            expected.is_inline,
        )
        # The size is the server's encoded size, decoded by estimate for base64.
        assert abs(info.size - expected.size) <= max(4, expected.size // 20)
    assert _seen(client, 1) is False


def test_quoted_printable_part_is_decoded(dovecot, mail_user, client):
    """A quoted-printable attachment comes out decoded, soft breaks joined."""
    message = EmailMessage()
    message["Subject"] = "qp"
    message.set_content("body\n")
    text = ("Grüße, " * 40 + "\n") * 50000  # > 1 MiB encoded: several chunks
    message.add_attachment(
        text.encode("utf-8"),
        maintype="text",
        subtype="plain",
        filename="grüße.txt",
        cte="quoted-printable",
    )
    dovecot.deliver(mail_user.username, message.as_bytes())
    validity = _validity(client)
    download = fetch_part(client, "INBOX", 1, "2", validity=validity)
    raw = b"".join(fetch_raw(client, "INBOX", 1, validity=validity))
    assert b"".join(download.chunks) == b"".join(
        iter_part_payload(io.BytesIO(raw), "2")
    )
    assert download.info.filename == "grüße.txt"


def test_20_mb_attachment_streams_with_bounded_memory(dovecot, mail_user, client):
    """A 20 MB attachment is never held whole: the peak stays under 10 MB."""
    payload = os.urandom(20 * 1024 * 1024)
    digest = hashlib.sha256(payload).hexdigest()
    message = EmailMessage()
    message["Subject"] = "big attachment"
    message.set_content("see attached\n")
    message.add_attachment(
        payload, maintype="application", subtype="octet-stream", filename="big.bin"
    )
    dovecot.deliver(mail_user.username, message.as_bytes())
    del payload, message
    validity = _validity(client)
    tracemalloc.start()
    try:
        download = fetch_part(client, "INBOX", 1, "2", validity=validity)
        hasher = hashlib.sha256()
        total = 0
        for chunk in download.chunks:
            hasher.update(chunk)
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert hasher.hexdigest() == digest
    assert total == 20 * 1024 * 1024
    assert peak < 10 * 1024 * 1024, peak
    assert download.info.filename == "big.bin"
    assert abs(download.info.size - total) < total // 50
