"""mailbox.pop.client against the private Dovecot's POP3."""

from __future__ import annotations

import hashlib
import io
import poplib
import tracemalloc

import pytest

from accounts.servers import ServerSettings
from mailbox.pop import client as pop


def _session(dovecot, mail_user):
    return pop.connect(
        ServerSettings(dovecot.host, dovecot.pop3_port, "starttls", mail_user.username),
        mail_user.password,
        timeout=10,
    )


def test_uidl_map_numbers_messages_in_server_order(dovecot, mail_user, trust_test_ca):
    """Every message has a distinct UIDL, numbered 1..n in delivery order."""
    dovecot.generate(mail_user.username, 3)
    session = _session(dovecot, mail_user)
    try:
        uidls = pop.uidl_map(session)
        assert sorted(uidls.values()) == [1, 2, 3]
        assert len(set(uidls)) == 3
        sizes = pop.sizes(session)
        assert list(sizes) == [1, 2, 3]
        assert all(size > 1000 for size in sizes.values())
    finally:
        pop.quit(session)


def test_retrieve_undoes_dot_stuffing_and_writes_crlf(
    dovecot, mail_user, trust_test_ca, tmp_path
):
    """Lines starting with "." come back as sent, every line ending in CRLF."""
    message = b"Subject: dots\n\n.leading dot\n..two dots\n.\nlast line without end"
    dovecot.deliver(mail_user.username, message)
    session = _session(dovecot, mail_user)
    try:
        target = tmp_path / "m.eml"
        size = pop.retrieve_to_file(session, 1, target)
        data = target.read_bytes()
        assert data == (
            b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n"
            b"last line without end\r\n"
        )
        # LIST counts the message as stored; the wire adds the final CRLF.
        assert size == len(data) == pop.sizes(session)[1] + 2
        headers = pop.top_headers(session, 1)
        assert headers.startswith(b"Subject: dots\r\n")
    finally:
        pop.quit(session)


def test_retrieve_of_a_missing_message_is_a_protocol_error(
    dovecot, mail_user, trust_test_ca, tmp_path
):
    """-ERR for one message raises error_proto; the session goes on."""
    dovecot.generate(mail_user.username, 1)
    session = _session(dovecot, mail_user)
    try:
        with pytest.raises(poplib.error_proto):
            pop.retrieve_to_file(session, 9, tmp_path / "x")
        assert pop.retrieve_to_file(session, 1, tmp_path / "y") > 0
    finally:
        pop.quit(session)


def test_delete_takes_effect_at_quit(dovecot, mail_user, trust_test_ca):
    """DELE marks; only a confirmed QUIT removes the message from the server."""
    dovecot.generate(mail_user.username, 2)
    session = _session(dovecot, mail_user)
    pop.delete(session, 1)
    pop.abandon(session)  # no QUIT: nothing deleted
    assert dovecot.count(mail_user.username) == 2
    session = _session(dovecot, mail_user)
    pop.delete(session, 1)
    pop.quit(session)
    assert dovecot.count(mail_user.username) == 1


def test_thirty_megabytes_stream_in_little_memory(
    dovecot, mail_user, trust_test_ca, tmp_path, capsys
):
    """A 30 MB message is written to disk without being held in memory."""
    size = 30 * 1024 * 1024
    dovecot.generate(mail_user.username, 1, size=size)
    session = _session(dovecot, mail_user)
    try:
        target = tmp_path / "big.eml"
        tracemalloc.start()
        try:
            written = pop.retrieve_to_file(session, 1, target)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert written == target.stat().st_size == pop.sizes(session)[1]
        assert written > size
        assert peak < 2 * 1024 * 1024, peak
        with capsys.disabled():
            print(f"\nRETR of {written} bytes: tracemalloc peak {peak} bytes")
    finally:
        pop.quit(session)


class _CannedSocket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)


def _canned_client(replies: bytes) -> tuple[poplib.POP3, _CannedSocket]:
    client = poplib.POP3.__new__(poplib.POP3)
    sock = _CannedSocket()
    client._debugging = 0
    client.encoding = "UTF-8"
    client.sock = sock
    client.file = io.BytesIO(replies)
    return client, sock


def test_uidl_map_without_uidl_hashes_the_headers():
    """A server answering UIDL with -ERR gets ids from its TOP n 0 headers.

    Dovecot always offers UIDL, so this runs poplib over canned server bytes
    (STYLE §7: a misbehaviour the real server cannot produce). Identical
    headers get "#2"; the hash covers the header bytes as CRLF lines.
    """
    header = b"From: a@example.org\r\nSubject: same\r\n"
    client, sock = _canned_client(
        b"-ERR unknown command\r\n"
        b"+OK 3 messages\r\n1 100\r\n2 120\r\n3 100\r\n.\r\n"
        b"+OK\r\n" + header + b"\r\n.\r\n"
        b"+OK\r\nFrom: b@example.org\r\n..dot: header\r\n\r\n.\r\n"
        b"+OK\r\n" + header + b"\r\n.\r\n"
    )
    uidls = pop.uidl_map(client)
    first = "hdr:" + hashlib.sha256(header + b"\r\n").hexdigest()
    second = (
        "hdr:"
        + hashlib.sha256(b"From: b@example.org\r\n.dot: header\r\n\r\n").hexdigest()
    )
    assert uidls == {first: 1, second: 2, first + "#2": 3}
    assert b"".join(sock.sent) == (b"UIDL\r\nLIST\r\nTOP 1 0\r\nTOP 2 0\r\nTOP 3 0\r\n")


def test_bare_lf_and_long_lines_from_a_server_become_crlf(tmp_path):
    """Bare LF line ends and lines longer than the read size are kept whole.

    Canned bytes (STYLE §7): Dovecot always sends CRLF and short lines.
    """
    long_line = b"x" * 200_000
    client, _sock = _canned_client(b"+OK\r\nA: b\n\n" + long_line + b"\r\n..x\n.\r\n")
    target = tmp_path / "m"
    assert pop.retrieve_to_file(client, 1, target) == target.stat().st_size
    assert target.read_bytes() == b"A: b\r\n\r\n" + long_line + b"\r\n.x\r\n"


def test_a_connection_closed_mid_answer_is_a_server_problem(tmp_path):
    """EOF inside RETR raises ServerProblem (retry later), not error_proto."""
    from mailbox.errors import Problem, ServerProblem

    client, _sock = _canned_client(b"+OK\r\nSubject: cut\r\n\r\nhalf a bo")
    with pytest.raises(ServerProblem) as info:
        pop.retrieve_to_file(client, 1, tmp_path / "m")
    assert info.value.problem == Problem.NETWORK


def test_pipelined_retrs_come_back_in_order_and_whole(
    dovecot, mail_user, trust_test_ca, tmp_path
):
    """RETRs sent at once are answered in order; each file is the message.

    Dovecot offers PIPELINING (RFC 2449), so the importer may send several
    RETRs before reading; a -ERR for one of them leaves the others intact.
    """
    dovecot.generate(mail_user.username, 3, size=20_000)
    dovecot.deliver(mail_user.username, b"Subject: dots\n\n.a\n..b\n.\nend")
    session = _session(dovecot, mail_user)
    try:
        assert pop.pipeline_depth(session) == pop.PIPELINE_DEPTH
        one_by_one = []
        for number in (1, 2, 3, 4):
            target = tmp_path / f"single-{number}"
            pop.retrieve_to_file(session, number, target)
            one_by_one.append(target.read_bytes())
        pop.send_retrieve(session, [1, 9, 2, 3, 4])
        piped = []
        for number in (1, 9, 2, 3, 4):
            target = tmp_path / f"piped-{number}"
            if number == 9:
                with pytest.raises(poplib.error_proto):
                    pop.retrieve_to_file(session, number, target, sent=True)
                continue
            size = pop.retrieve_to_file(session, number, target, sent=True)
            assert size == target.stat().st_size
            piped.append(target.read_bytes())
        assert piped == one_by_one
        assert one_by_one[3] == b"Subject: dots\r\n\r\n.a\r\n..b\r\n.\r\nend\r\n"
        assert pop.sizes(session)[1] > 0  # the session is still in step
    finally:
        pop.quit(session)


def _slow_copy(wire: bytes) -> tuple[bytes, bytes, int]:
    out = io.BytesIO()
    source = io.BytesIO(wire)  # no peek(): line by line only
    written = pop._copy_answer(source, out, None, 0)
    return out.getvalue(), source.read(), written


_PIECES = [
    b"a",
    b"bc",
    b".",
    b"..",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n.",
    b"\r\n..",
    b"x" * 30,
    b".\r\n",
    b"\r\n.\r",
]


def test_the_block_copy_gives_what_line_by_line_reading_gives():
    """Whole-buffer copying writes the same bytes as reading line by line.

    Dot-stuffing, bare LFs and CRs, lines split across reads, the end marker
    anywhere in the buffer: for 3,000 generated answers read through buffers
    of 1 to 40 bytes, the file, its size, the captured head and the bytes
    left for the next answer (a pipelined one) are the same. Canned bytes
    (STYLE §7): Dovecot sends only well-formed CRLF answers.
    """
    import random

    rng = random.Random(4)
    for _ in range(3000):
        body = b"".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 30)))
        wire = body + b"\r\n.\r\n+OK next answer\r\n"
        expected, rest, written = _slow_copy(wire)
        reader = io.BufferedReader(io.BytesIO(wire), buffer_size=rng.randint(1, 40))
        out = io.BytesIO()
        head = bytearray()
        limit = rng.randint(0, 20)
        assert pop._copy_answer(reader, out, head, limit) == written
        assert out.getvalue() == expected, wire
        assert bytes(head) == expected[:limit]
        assert reader.read() == rest


def test_the_block_copy_reports_a_cut_answer():
    """An answer that ends without its final "." is a lost connection."""
    reader = io.BufferedReader(io.BytesIO(b"Subject: x\r\n\r\nbody\r\n"))
    with pytest.raises(ConnectionResetError):
        pop._copy_answer(reader, io.BytesIO(), None, 0)


def test_a_server_without_capa_gets_one_command_at_a_time():
    """-ERR to CAPA (an old server) means no pipelining: depth 1.

    Canned bytes (STYLE §7): Dovecot answers CAPA.
    """
    client, sock = _canned_client(b"-ERR unknown command\r\n")
    assert pop.pipeline_depth(client) == 1
    client, sock = _canned_client(b"+OK\r\nTOP\r\nUIDL\r\n.\r\n")
    assert pop.pipeline_depth(client) == 1
    client, sock = _canned_client(b"+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n")
    assert pop.pipeline_depth(client) == pop.PIPELINE_DEPTH
