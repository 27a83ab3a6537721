"""The private Dovecot behaves like the mail server the app will meet."""

from __future__ import annotations

import datetime as dt
import imaplib
import os
import poplib
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from .dovecot import Dovecot, MailUser, _group_members

MESSAGE = (
    b"From: Alice <alice@example.org>\n"
    b"To: Bob <bob@example.org>\n"
    b"Subject: Hello\n"
    b"Message-ID: <hello@example.org>\n"
    b"\n"
    b"Hello, Bob.\n"
)


def tls_context(dovecot: Dovecot) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=dovecot.ca_file)


@contextmanager
def imap(dovecot: Dovecot, user: MailUser) -> Iterator[IMAPClient]:
    """An IMAP session over STARTTLS, logged in as ``user``."""
    client = IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=10)
    client.starttls(tls_context(dovecot))
    client.login(user.username, user.password)
    try:
        yield client
    finally:
        client.logout()


def test_imap_starttls_login_verifies_the_test_ca(dovecot, mail_user):
    """IMAP on the plain port offers STARTTLS with a certificate the test CA signed."""
    client = IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=10)
    assert b"STARTTLS" in client.capabilities()
    client.starttls(tls_context(dovecot))
    assert client.login(mail_user.username, mail_user.password)
    assert b"QUOTA" in client.capabilities()
    assert b"SPECIAL-USE" in client.capabilities()
    client.logout()


def test_imap_plaintext_login_is_allowed(dovecot, mail_user):
    """Login without TLS works: the app, not the server, warns about it."""
    client = IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=10)
    assert client.login(mail_user.username, mail_user.password)
    client.logout()


def test_imaps_login_verifies_the_test_ca(dovecot, mail_user):
    """IMAPS presents a certificate valid for 127.0.0.1 under the test CA."""
    client = IMAPClient(
        dovecot.host, dovecot.imaps_port, ssl=True, ssl_context=tls_context(dovecot)
    )
    assert client.login(mail_user.username, mail_user.password)
    client.logout()


def test_certificate_is_valid_for_localhost(dovecot):
    """The server certificate also names localhost."""
    context = tls_context(dovecot)
    with (
        socket.create_connection((dovecot.host, dovecot.imaps_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.recv(100).startswith(b"* OK")


def test_certificate_is_refused_without_the_test_ca(dovecot):
    """A client trusting only the system CAs rejects the test certificate."""
    with (
        socket.create_connection((dovecot.host, dovecot.imaps_port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


@pytest.mark.parametrize("wrong", ["password", "user"])
def test_wrong_credentials_are_refused_quickly(dovecot, mail_user, wrong):
    """A wrong password or user is refused in well under 2 s, every time."""
    username = mail_user.username if wrong == "password" else "nobody-here"
    for _ in range(3):  # no penalty builds up from one attempt to the next
        client = IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=10)
        started = time.monotonic()
        with pytest.raises(LoginError):
            client.login(username, "not the password")
        elapsed = time.monotonic() - started
        client.shutdown()
        assert elapsed < 2
    # A correct login right afterwards is not held back either.
    with imap(dovecot, mail_user) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_new_users_can_log_in_at_once(dovecot):
    """Users added while Dovecot runs log in immediately, even several per second."""
    users = [dovecot.new_user() for _ in range(3)]
    for user in users:
        with imap(dovecot, user) as client:
            assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_pop3_stls_stat_and_uidl_after_deliver(dovecot, mail_user):
    """POP3 with STLS lists delivered messages with STAT and UIDL."""
    dovecot.deliver(mail_user.username, MESSAGE, MESSAGE.replace(b"Hello", b"Again"))
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=10)
    assert "STLS" in pop.capa()
    pop.stls(context=tls_context(dovecot))
    pop.user(mail_user.username)
    pop.pass_(mail_user.password)
    count, size = pop.stat()
    assert count == 2
    assert size > 2 * len(MESSAGE)  # sizes count CRLF line ends
    _, lines, _ = pop.uidl()
    uidls = [line.split()[1] for line in lines]
    assert len(set(uidls)) == 2
    _, body, _ = pop.retr(1)
    assert b"Subject: Hello" in body
    pop.quit()


def test_pop3s_login_and_stat(dovecot, mail_user):
    """POP3S verifies against the test CA and sees delivered mail."""
    dovecot.deliver(mail_user.username, MESSAGE)
    pop = poplib.POP3_SSL(
        dovecot.host, dovecot.pop3s_port, context=tls_context(dovecot), timeout=10
    )
    pop.user(mail_user.username)
    pop.pass_(mail_user.password)
    assert pop.stat()[0] == 1
    pop.quit()


def test_messages_delivered_as_seen_carry_seen(dovecot, mail_user):
    """Messages delivered as seen carry \\Seen; others are unseen and recent."""
    dovecot.deliver(mail_user.username, MESSAGE)
    dovecot.deliver(mail_user.username, MESSAGE, flags="S")
    dovecot.deliver(mail_user.username, MESSAGE, flags="\\Seen \\Flagged")
    with imap(dovecot, mail_user) as client:
        client.select_folder("INBOX", readonly=True)
        flags = {
            uid: set(data[b"FLAGS"])
            for uid, data in client.fetch(client.search("ALL"), ["FLAGS"]).items()
        }
    assert flags == {
        1: {b"\\Recent"},
        2: {b"\\Seen", b"\\Recent"},
        3: {b"\\Seen", b"\\Flagged", b"\\Recent"},
    }


def test_delivery_order_is_uid_order(dovecot, mail_user):
    """Messages get their UIDs in the order they were delivered."""
    subjects = [f"Message {i}" for i in range(20)]
    for i, subject in enumerate(subjects):
        flags = "S" if i % 2 else ""  # mix new/ and cur/
        dovecot.deliver(mail_user.username, f"Subject: {subject}\n\nx\n", flags=flags)
    with imap(dovecot, mail_user) as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    got = [
        fetched[uid][b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip()
        for uid in sorted(uids)
    ]
    assert got == [f"Subject: {subject}" for subject in subjects]


def test_deliver_accepts_str_and_email_message(dovecot, mail_user):
    """Bytes, str and EmailMessage are all delivered as RFC 5322 messages."""
    message = EmailMessage()
    message["From"] = "Zoë <zoe@example.org>"
    message["To"] = mail_user.email
    message["Subject"] = "Grüße"
    message.set_content("Hallo, schöne Grüße.\n")
    dovecot.deliver(mail_user.username, message, "Subject: text\n\nbody\n")
    with imap(dovecot, mail_user) as client:
        client.select_folder("INBOX", readonly=True)
        envelopes = client.fetch([1, 2], ["ENVELOPE"])
    subject = envelopes[1][b"ENVELOPE"].subject.decode()
    assert str(make_header(decode_header(subject))) == "Grüße"
    assert envelopes[2][b"ENVELOPE"].subject == b"text"


def test_internaldate_is_the_one_delivered(dovecot, mail_user):
    """The internaldate given to deliver is the message's INTERNALDATE."""
    when = dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC)
    dovecot.deliver(mail_user.username, MESSAGE, internaldate=when)
    with imap(dovecot, mail_user) as client:
        client.normalise_times = False
        client.select_folder("INBOX", readonly=True)
        date = client.fetch([1], ["INTERNALDATE"])[1][b"INTERNALDATE"]
    assert date == when


@pytest.mark.parametrize("folder", ["Sent", "Archive/2024", "Entwürfe", "A & B"])
def test_message_delivered_to_a_folder_is_visible(dovecot, mail_user, folder):
    """A message delivered to a folder, created on the fly if needed, is in it."""
    dovecot.deliver(mail_user.username, MESSAGE, folder=folder)
    assert dovecot.count(mail_user.username, folder) == 1
    assert dovecot.count(mail_user.username) == 0
    with imap(dovecot, mail_user) as client:
        names = [name for _, _, name in client.list_folders()]
        assert folder in names
        assert client.select_folder(folder)[b"EXISTS"] == 1


def test_folder_created_during_a_session_can_be_selected(dovecot, mail_user):
    """A folder created during a session can be selected at once; LIST in that
    session may lag (Dovecot's mailbox list index), a new session lists it."""
    with imap(dovecot, mail_user) as client:
        assert "Later" not in [name for _, _, name in client.list_folders()]
        dovecot.deliver(mail_user.username, MESSAGE, folder="Later")
        assert client.select_folder("Later")[b"EXISTS"] == 1
        with imap(dovecot, mail_user) as other:
            assert "Later" in [name for _, _, name in other.list_folders()]


def test_special_use_folders_exist(dovecot, mail_user):
    """Drafts, Sent, Trash, Junk and Archive exist, subscribed, with SPECIAL-USE."""
    with imap(dovecot, mail_user) as client:
        uses = {name: set(flags) for flags, _, name in client.list_folders()}
        subscribed = {name for _, _, name in client.list_sub_folders()}
    for name in ("Drafts", "Sent", "Trash", "Junk", "Archive"):
        assert f"\\{name}".encode() in uses[name]
        assert name in subscribed


def test_getquotaroot_reports_the_users_limit(dovecot):
    """GETQUOTAROOT reports the storage limit given to new_user, in KiB."""
    user = dovecot.new_user(quota_mb=7)
    dovecot.deliver(user.username, MESSAGE.replace(b"Hello, Bob.", b"x" * 5000))
    with imap(dovecot, user) as client:
        _, quotas = client.get_quota_root("INBOX")
    (quota,) = quotas
    assert quota.resource == "STORAGE"
    assert quota.limit == 7 * 1024
    assert quota.usage >= 5


def test_user_without_quota_has_no_quota_root(dovecot):
    """With quota_mb=None, GETQUOTAROOT answers "OK No quota" and nothing else.

    imapclient 4.1's get_quota_root() raises IndexError on that reply, hence
    imaplib here.
    """
    user = dovecot.new_user(quota_mb=None)
    client = imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10)
    client.login(user.username, user.password)
    typ, data = client.getquotaroot("INBOX")
    client.logout()
    assert typ == "OK"
    assert data == [[None], [None]]  # no QUOTAROOT, no QUOTA response


def test_generate_1000_shows_exists_1000(dovecot, mail_user):
    """generate seeds distinct messages that IMAP counts."""
    dovecot.generate(mail_user.username, 1000)
    assert dovecot.count(mail_user.username) == 1000
    with imap(dovecot, mail_user) as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1000
        fetched = client.fetch([1, 1000], ["ENVELOPE", "RFC822.SIZE"])
    first, last = fetched[1][b"ENVELOPE"], fetched[1000][b"ENVELOPE"]
    assert first.subject != last.subject
    assert first.message_id != last.message_id
    assert first.date < last.date
    assert 1900 <= fetched[1][b"RFC822.SIZE"] <= 2200


def test_generate_10000_is_fast(dovecot, mail_user):
    """Seeding 10,000 messages takes well under 10 s."""
    started = time.monotonic()
    dovecot.generate(mail_user.username, 10_000, folder="Archive/2024")
    elapsed = time.monotonic() - started
    print(f"generate(10,000): {elapsed:.2f} s")
    assert elapsed < 10
    with imap(dovecot, mail_user) as client:
        assert client.select_folder("Archive/2024")[b"EXISTS"] == 10_000


def test_restart_keeps_mail_and_users():
    """After a restart, on the same ports, users log in and find their mail."""
    with Dovecot() as server:
        user = server.new_user()
        server.deliver(user.username, MESSAGE, flags="S")
        ports = (server.imap_port, server.pop3_port)
        server.restart()
        assert (server.imap_port, server.pop3_port) == ports
        with imap(server, user) as client:
            assert client.select_folder("INBOX")[b"EXISTS"] == 1


def test_dot_separator_maps_folders_the_same_way():
    """With separator=".", "Archive.2024" is the same Maildir++ folder."""
    with Dovecot(separator=".") as server:
        user = server.new_user()
        server.deliver(user.username, MESSAGE, folder="Archive.2024")
        assert server.folder_path(user.username, "Archive.2024").name == (
            ".Archive.2024"
        )
        with imap(server, user) as client:
            assert client.namespace().personal[0][1] == "."
            assert client.select_folder("Archive.2024")[b"EXISTS"] == 1


def test_stop_leaves_no_process():
    """Closing the server ends every Dovecot process, even with clients connected."""
    with Dovecot() as server:
        user = server.new_user()
        pgid = server._proc.pid
        client = IMAPClient(server.host, server.imap_port, ssl=False, timeout=10)
        client.login(user.username, user.password)
        client.select_folder("INBOX")
        started = time.monotonic()
    assert _group_members(pgid) == []
    assert time.monotonic() - started < 3
    assert not server.root.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.imap_port), timeout=1)
    client.shutdown()


def test_maildir_files_belong_to_the_mail_user(dovecot, mail_user):
    """Delivered files and folders belong to the uid Dovecot's mail processes use."""
    dovecot.deliver(mail_user.username, MESSAGE, folder="Projects/2025", flags="S")
    folder = dovecot.folder_path(mail_user.username, "Projects/2025")
    (path,) = (folder / "cur").iterdir()
    assert path.name.endswith(":2,S")
    assert ",S=" in path.name
    for item in (
        path,
        folder,
        folder / "maildirfolder",
        dovecot.maildir(mail_user.username),
    ):
        assert item.stat().st_uid == dovecot.uid
    if os.geteuid() == 0:
        assert dovecot.uid != 0  # Dovecot refuses mail processes as root
