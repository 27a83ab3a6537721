"""Adding imported messages in bulk: the driver-level INSERTs and the quick
header reading behind them give what the ORM and the ``email`` parser give."""

from __future__ import annotations

import email.policy
import os
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from mailbox.store import blobs, services
from mailbox.store.models import LocalFolder, StoredMessage, UidlEntry
from tests.data.loader import eml_names, load_eml
from tests.mailbox.store import offline_pop_account


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _blob(user, data: bytes) -> str:
    name, path = blobs.blob_reserve(user_id=user.pk)
    path.write_bytes(data)
    blobs.blob_written(path)
    return name


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_messages_add_stores_every_column_and_returns_ids_in_order(user):
    """Each row holds its columns, the source, size and a modseq of its own.

    The rows are written by one driver-level INSERT (on SQLite and on
    PostgreSQL alike: run with DATABASE_URL set to check the other); the ids
    come back in the order of the items, and the ledger rows point at them.
    """
    account = offline_pop_account(user)
    inbox = services.folders_ensure(user=user)[LocalFolder.Use.INBOX]
    samples = ["intl_headers.eml", "attachments.eml", "plain_utf8.eml"]
    raws = [_crlf(load_eml(name)) for name in samples]
    names = [_blob(user, raw) for raw in raws]
    columns = [services.describe(raw, whole=True) for raw in raws]
    columns[2] = None  # read from the blob
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    before = services.next_modseq(user=user)
    with transaction.atomic():
        ids = services.messages_add(
            user=user,
            account=account,
            folder=inbox,
            items=[
                (f"uidl-{i}", name, len(raw))
                for i, (name, raw) in enumerate(zip(names, raws, strict=True))
            ],
            columns=columns,
            received_at=when,
        )
        services.ledger_add(
            account=account,
            entries=[(f"uidl-{i}", len(raws[i]), pk) for i, pk in enumerate(ids)],
            imported_at=when,
        )
    rows = {row.pk: row for row in StoredMessage.objects.filter(pk__in=ids)}
    assert [rows[pk].blob for pk in ids] == names
    for pk, raw, sample in zip(ids, raws, samples, strict=True):
        row = rows[pk]
        # What message_add (the ORM, one row at a time) stores for the same blob.
        with transaction.atomic():
            single = services.message_add(
                user=user,
                account=account,
                folder=inbox,
                uidl=row.uidl,
                blob_name=row.blob,
                size=len(raw),
                received_at=when,
            )
        single.refresh_from_db()
        for field in (
            "user_id", "folder_id", "account_id", "uidl", "message_id", "subject",
            "from_name", "from_email", "to_text", "date", "received_at", "source",
            "size", "has_attachments", "blob", "seen", "flagged", "answered",
            "arrived_modseq",
        ):  # fmt: skip
            assert getattr(row, field) == getattr(single, field), (sample, field)
    assert rows[ids[0]].subject == "Привет из Москвы"
    assert rows[ids[1]].has_attachments
    assert rows[ids[0]].received_at == when
    assert sorted(rows[pk].modseq for pk in ids) == [before + 1, before + 2, before + 3]
    ledger = {entry.uidl: entry for entry in UidlEntry.objects.filter(account=account)}
    assert [ledger[f"uidl-{i}"].message_id for i in range(3)] == ids
    assert ledger["uidl-0"].state == UidlEntry.State.IMPORTED
    assert ledger["uidl-0"].imported_at == when
    assert ledger["uidl-0"].imap_folder == ""
    assert ledger["uidl-0"].removed_from_server_at is None


def test_a_uidl_already_in_the_ledger_adds_nothing(user):
    """The ledger's uidl_once constraint holds for the bulk INSERT: it fails
    whole, so the importer's fallback stores that batch one by one."""
    account = offline_pop_account(user)
    services.ledger_add(account=account, entries=[("same", 10, None)])
    with pytest.raises(IntegrityError), transaction.atomic():
        services.ledger_add(
            account=account, entries=[("new", 1, None), ("same", 2, None)]
        )
    assert list(
        UidlEntry.objects.filter(account=account).values_list("uidl", flat=True)
    ) == ["same"]


def test_the_insert_is_one_statement_for_many_rows(user):
    """100 messages cost as many queries as 2: none is run per row."""
    from django.test.utils import CaptureQueriesContext

    account = offline_pop_account(user)
    inbox = services.folders_ensure(user=user)[LocalFolder.Use.INBOX]
    raw = _crlf(load_eml("plain_utf8.eml"))
    counts = []
    for count in (2, 100):
        names = [_blob(user, raw) for _ in range(count)]
        columns = [services.describe(raw, whole=True)] * count
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            ids = services.messages_add(
                user=user,
                account=account,
                folder=inbox,
                items=[
                    (f"{count}-{i}", name, len(raw)) for i, name in enumerate(names)
                ],
                columns=columns,
            )
            services.ledger_add(
                account=account,
                entries=[(f"{count}-{i}", len(raw), pk) for i, pk in enumerate(ids)],
            )
        assert len(set(ids)) == count
        counts.append(len(queries))
    assert counts[1] <= counts[0] <= 12
    assert StoredMessage.objects.filter(user=user).count() == 102


# -- reading the header without the email parser -------------------------------

_BLOCKS = [
    b"Subject: plain\r\nFrom: a@example.org\r\n\r\n",
    b"Subject:\r\n folded only\r\nTo: x@example.org\r\n\r\n",
    b"Subject:   spaced \t\r\n\tand folded\r\n  twice\r\n\r\n",
    b"X-Empty:\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n",
    b"To: a@example.org\r\nTo: b@example.org\r\nsubject: lower\r\n\r\n",
    b"Subject: no blank line at the end\r\n",
    b"Received: from x\r\n by y; Sat, 28 Nov 2026 06:07:08 +0000\r\nDate: x\r\n\r\n",
    b"Subject: tab\tinside and: colon\r\n\r\n",
]
_NOT_PLAIN = [
    b"Subject: bare LF\nFrom: a@example.org\n\n",
    b"Subject: bare CR\rFrom: a@example.org\r\n\r\n",
    b"Subject: caf\xc3\xa9\r\n\r\n",  # 8-bit
    b"From sender@example.org Sat Nov 28 06:07:08 2026\r\nSubject: mbox\r\n\r\n",
    b" continuation first\r\nSubject: x\r\n\r\n",
    b"Subject : space before the colon\r\n\r\n",
    b"no colon at all\r\nSubject: x\r\n\r\n",
    b":empty name\r\n\r\n",
]


@pytest.mark.parametrize("block", _BLOCKS)
def test_a_plain_header_splits_as_the_email_parser_splits_it(block):
    """Names and raw values (folding kept) equal BytesHeaderParser's (compat32)."""
    parsed = BytesHeaderParser(policy=email.policy.compat32).parsebytes(block)
    assert services._plain_fields(block) == list(parsed.raw_items())
    kept = services._plain_fields(block, keep=frozenset({"subject"}))
    assert kept == [(k, v) for k, v in parsed.raw_items() if k.lower() == "subject"]


@pytest.mark.parametrize("block", _NOT_PLAIN)
def test_anything_unusual_goes_through_the_email_parser(block):
    """8-bit bytes, bare CR or LF, an mbox From line or a line the parser
    would take as the body: no quick split, the parser's answer is used."""
    assert services._plain_fields(block) is None
    header = services._header_block(block)
    parsed = BytesHeaderParser(policy=email.policy.compat32).parsebytes(block)
    assert list(header.raw_items()) == list(parsed.raw_items())


@pytest.mark.parametrize("name", eml_names())
def test_the_columns_of_every_sample_match_a_full_parse_of_its_header(
    name, monkeypatch
):
    """describe() gives the columns the email parser's header list gives."""
    raw = _crlf(load_eml(name))
    match = services._HEADER_END.search(raw)
    head = raw[: match.end()] if match else raw
    quick = services._header_columns(head)
    monkeypatch.setattr(services, "_plain_fields", lambda block, keep=None: None)
    assert services._header_columns(head) == quick


_SINGLE_PART_BODIES = [
    # Single-part text whose body looks like MIME: still one leaf, no
    # attachment, and the header alone says so.
    b"Subject: a\r\nContent-Type: text/plain\r\n\r\n"
    b"Content-Type: multipart/mixed; boundary=x\r\n--x\r\n"
    b"Content-Disposition: attachment; filename=a.bin\r\n\r\nAAAA\r\n--x--\r\n",
    b"Subject: b\r\n\r\nsee message/rfc822 and name=x and ms-tnef\r\n",
    b"Subject: c\r\nContent-Type: TEXT/HTML; charset=utf-8\r\n\r\n"
    b"<p>attachment</p>\r\n",
    # The header decides the other way: these have an attachment.
    b"Subject: d\r\nContent-Type: text/plain; name=notes.txt\r\n\r\nhello\r\n",
    b"Subject: e\r\nContent-Disposition: attachment\r\n\r\nhello\r\n",
    b"Subject: f\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n",
    b"Subject: g\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
    b"Content-Type: text/plain\r\n\r\nhi\r\n--x\r\n"
    b"Content-Type: application/octet-stream\r\n\r\nAAAA\r\n--x--\r\n",
    b"Subject: i\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n"
    b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x\r\n"
    b"Content-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\n"
    b"%PDF\r\n--x--\r\n",
    # A header that ends early for the parser (a bare CR is a line end to it).
    b"Subject: h\r\rContent-Type: multipart/mixed; boundary=x\r\n\r\nbody\r\n",
]


@pytest.mark.parametrize(
    "raw",
    [_crlf(load_eml(name)) for name in eml_names()] + _SINGLE_PART_BODIES,
)
def test_has_attachments_from_describe_is_what_a_full_parse_says(raw):
    """The quick scan (header only for a single-part text message) never
    decides differently from mime.parse_message."""
    assert (
        services.describe(raw, whole=True).has_attachments
        is services._parsed_columns(raw).has_attachments
    )


@pytest.mark.parametrize(
    "text",
    [
        "Sat, 28 Nov 2026 06:07:08 +0000",
        "28 Nov 2026 06:07:08 -0000",
        "Mon, 1 Jan 2024 23:59:59 +1245",
        "Tue, 09 Feb 1999 00:00:00 -0800",
        "Wed, 31 Dec 2025 12:00:00 +0530",
    ],
)
def test_a_usual_date_is_read_as_email_utils_reads_it(text):
    """The quick Date reading gives the same instant as parsedate_to_datetime."""
    expected = parsedate_to_datetime(text)
    if expected.tzinfo is None:
        expected = expected.replace(tzinfo=UTC)
    assert services._quick_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "Sat, 28 Nov 26 06:07:08 +0000",  # two-digit year
        "Sat, 28 Nov 2026 06:07 +0000",  # no seconds
        "Sat, 31 Feb 2026 06:07:08 +0000",  # no such day
        "Sat, 28 Nov 2026 06:07:08 GMT",
        "Sat, 28 Nov 2026 06:07:08 +9999",  # no such zone
    ],
)
def test_any_other_date_is_left_to_email_utils(text):
    """Other forms and impossible values are not read quickly (None)."""
    assert services._quick_date(text) is None


# -- blobs written in place and made durable ------------------------------------


def test_a_reserved_blob_is_a_new_file_of_the_storage(user, settings):
    """The name maps to the path, its folder exists, and blob_written gives it
    the storage's permissions; blob_open reads it back."""
    settings.FILE_UPLOAD_PERMISSIONS = 0o600
    name, path = blobs.blob_reserve(user_id=user.pk)
    other, _ = blobs.blob_reserve(user_id=user.pk)
    assert name != other
    assert name.startswith(f"store/{user.pk}/{timezone.now():%Y/%m}/")
    assert os.path.isdir(path.parent)
    assert not path.exists()
    path.write_bytes(b"Subject: x\r\n\r\nhello\r\n")
    blobs.blob_written(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert blobs.blob_read(name) == b"Subject: x\r\n\r\nhello\r\n"


def test_a_reserved_blob_finds_its_folder_again_after_it_was_removed(user):
    """A folder removed since the last reservation is made again."""
    _name, path = blobs.blob_reserve(user_id=user.pk)
    os.rmdir(path.parent)
    _name, path = blobs.blob_reserve(user_id=user.pk)
    path.write_bytes(b"x")
    assert path.exists()


@pytest.mark.parametrize("strategy", ["syncfs", "fsync"])
def test_a_durable_batch_returns_once_its_blobs_are_synced(user, monkeypatch, strategy):
    """Both ways (syncfs where Linux has it, else fsync per file and folder)
    return normally for written blobs; a blob that vanished before its fsync
    is an error, so its batch is not committed."""
    if strategy == "fsync":
        monkeypatch.setattr(blobs, "_syncfs", None)
    elif blobs._syncfs is None:
        pytest.skip("no syncfs(2) here")
    names = [_blob(user, b"data %d" % i) for i in range(3)]
    with blobs.DurableBatch() as batch:
        for name in names:
            batch.add(name)
        batch.wait()
        batch.wait()  # nothing new: nothing to do
    if strategy == "fsync":
        batch = blobs.DurableBatch()
        batch.add(names[0])
        blobs.blob_delete(names[0])
        with pytest.raises(FileNotFoundError):
            batch.wait()


def test_a_durable_batch_reports_a_failed_syncfs(user, monkeypatch):
    """syncfs failing (a writeback error, Linux 5.8+) raises OSError."""
    if blobs._syncfs is None:
        pytest.skip("no syncfs(2) here")

    def failing(fd: int) -> int:
        import ctypes

        ctypes.set_errno(5)
        return -1

    monkeypatch.setattr(blobs, "_syncfs", failing)
    batch = blobs.DurableBatch()
    batch.add(_blob(user, b"x"))
    with pytest.raises(OSError, match="Input/output error"):
        batch.wait()


def test_the_stored_columns_keep_their_time_zone_on_every_backend(user):
    """A Date in another zone is stored as the same instant."""
    account = offline_pop_account(user)
    inbox = services.folders_ensure(user=user)[LocalFolder.Use.INBOX]
    raw = b"Date: Mon, 1 Jan 2024 23:59:59 +1245\r\nSubject: z\r\n\r\nbody\r\n"
    name = _blob(user, raw)
    with transaction.atomic():
        [pk] = services.messages_add(
            user=user,
            account=account,
            folder=inbox,
            items=[("z", name, len(raw))],
            columns=[services.describe(raw, whole=True)],
        )
    stored = StoredMessage.objects.get(pk=pk)
    assert stored.date == datetime(2024, 1, 1, 11, 14, 59, tzinfo=UTC)
    assert stored.received_at <= timezone.now()
    assert stored.received_at > timezone.now() - timedelta(minutes=5)
    assert connection.vendor in {"sqlite", "postgresql"}
