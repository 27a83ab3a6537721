"""POP3 connections over poplib, through the outbound-network policy."""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import poplib
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from accounts.models import OAuthToken, Security
from accounts.servers import ServerSettings
from mailbox import net
from mailbox.errors import Problem, ServerProblem


class _POP3(poplib.POP3):
    """poplib transport that connects through mailbox.net (checked address)."""

    def _create_socket(self, timeout: float) -> socket.socket:
        return net.open_connection(self.host, self.port, timeout)


class _POP3_SSL(poplib.POP3_SSL):  # noqa: N801 (poplib's naming)
    def _create_socket(self, timeout: float) -> socket.socket:
        sock = net.open_connection(self.host, self.port, timeout)
        # SNI and the certificate check use the name, not the checked address.
        return self.context.wrap_socket(sock, server_hostname=self.host)


def connect(server: ServerSettings, password: str, *, timeout: float) -> poplib.POP3:
    """Return an authenticated POP3 client; raise ServerProblem otherwise."""
    with net.translated_errors():
        try:
            if server.security == Security.SSL:
                client: poplib.POP3 = _POP3_SSL(
                    server.host, server.port, timeout=timeout, context=net.tls_context()
                )
            else:
                client = _POP3(server.host, server.port, timeout=timeout)
        except poplib.error_proto as exc:
            raise ServerProblem(Problem.PROTOCOL, _reply(exc)) from exc
        try:
            if server.security == Security.STARTTLS:
                try:
                    client.stls(net.tls_context())
                except poplib.error_proto as exc:
                    raise ServerProblem(Problem.TLS, "STLS is not offered") from exc
            try:
                if isinstance(password, OAuthToken):
                    _auth_xoauth2(client, server.username, password)
                else:
                    client.user(server.username)
                    client.pass_(password)
            except poplib.error_proto as exc:
                raise ServerProblem(Problem.AUTH) from exc
        except BaseException:
            _close(client)
            raise
    return client


def _auth_xoauth2(client: poplib.POP3, username: str, token: str) -> None:
    """SASL XOAUTH2 (Google's and Microsoft's POP3), the initial response inline."""
    initial = f"user={username}\x01auth=Bearer {token}\x01\x01".encode()
    client._shortcmd("AUTH XOAUTH2 " + base64.b64encode(initial).decode("ascii"))


def probe(server: ServerSettings, password: str, *, timeout: float) -> None:
    """Log in and out once; raise ServerProblem if that cannot be done."""
    client = connect(server, password, timeout=timeout)
    _close(client)


def _reply(exc: poplib.error_proto) -> str:
    arg = exc.args[0] if exc.args else b""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text[:120]


def _close(client: poplib.POP3) -> None:
    try:
        client.quit()
    except (OSError, poplib.error_proto):
        client.close()


# -- talking to a connected server ---------------------------------------------
#
# Message numbers are POP3 session details: they stay inside this module's
# callers' loops and are never stored. Every function below raises
# ``poplib.error_proto`` for a ``-ERR`` answer about one message, and
# ``ServerProblem`` when the connection itself is gone (EOF, reset, timeout,
# TLS), so a caller can tell "skip this message" from "stop and retry later".

_CHUNK = 64 * 1024
_HEADER_LIMIT = 1024 * 1024  # TOP n 0 is a header; a longer one is cut for hashing
HEADER_HASH_PREFIX = "hdr:"
# RETRs in flight on a server with PIPELINING (see pipeline_depth).
PIPELINE_DEPTH = 32


class _Writer(Protocol):
    """Where a RETR answer goes: a binary file, or anything that writes bytes."""

    def write(self, data: bytes, /) -> object: ...


class _Lost(ConnectionResetError):
    """The server closed the connection in the middle of an answer."""

    def __init__(self, text: str) -> None:
        super().__init__(errno.ECONNRESET, text)


def _command(client: poplib.POP3, line: str) -> bytes:
    """Send one command and return its +OK line; a -ERR raises error_proto."""
    client._putcmd(line)
    return _response(client)


def _response(client: poplib.POP3) -> bytes:
    """The status line of the oldest unanswered command; -ERR raises error_proto."""
    try:
        return client._getresp()
    except poplib.error_proto as exc:
        # poplib reports a closed connection as error_proto("-ERR EOF") (a str),
        # while a server's own -ERR arrives as bytes.
        if exc.args and exc.args[0] == "-ERR EOF":
            raise _Lost("connection closed") from exc
        raise


def _multiline(client: poplib.POP3, line: str) -> Iterator[tuple[bytes, bool]]:
    """Send a command with a multi-line answer; yield (piece, starts_line).

    The answer is read in pieces of at most 64 KiB, so an endless line never
    fills memory; dot-stuffing is undone; the final "." is consumed and not
    yielded. Pieces keep their line ends as the server sent them.
    """
    _command(client, line)
    at_line_start = True
    while True:
        piece = client.file.readline(_CHUNK)
        if not piece:
            raise _Lost("connection closed in the middle of an answer")
        if at_line_start and piece[:1] == b".":
            if piece in (b".\r\n", b".\n"):
                return
            piece = piece[1:]
        starts = at_line_start
        at_line_start = piece.endswith(b"\n")
        yield piece, starts


def _crlf_pieces(client: poplib.POP3, line: str) -> Iterator[bytes]:
    """The answer's bytes with every line ending in CRLF (a bare LF gets its CR)."""
    held_cr = b""
    for piece, _starts in _multiline(client, line):
        piece = held_cr + piece
        held_cr = b""
        if piece.endswith(b"\r\n"):
            yield piece
        elif piece.endswith(b"\n"):
            yield piece[:-1] + b"\r\n"
        elif piece.endswith(b"\r"):
            # The LF may come as the next piece: keep the CR back.
            held_cr = b"\r"
            yield piece[:-1]
        else:
            yield piece
    if held_cr:
        yield held_cr


def uidl_map(client: poplib.POP3) -> dict[str, int]:
    """Map each message's unique id to its number in this session (server order).

    A server that answers ``UIDL`` with ``-ERR`` gets ids made from its headers:
    ``"hdr:" + sha256(TOP n 0)`` (with ``#2``, ``#3`` … for identical headers).
    That is weaker than a real UIDL: a server that adds or rewrites a header
    between sessions (a ``Status:`` line after the first download, say) changes
    the id and the message is imported again, and two different messages with
    byte-identical headers are told apart only by their order.
    """
    with net.translated_errors():
        try:
            _resp, lines, _octets = client.uidl()
        except poplib.error_proto as exc:
            if exc.args and exc.args[0] == "-ERR EOF":
                raise _Lost("connection closed") from exc
            return _header_hash_map(client)
    result: dict[str, int] = {}
    for raw in lines:
        parts = raw.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        uidl = parts[1].strip().decode("ascii", "replace")
        # A broken server repeating an id: the first message keeps it.
        result.setdefault(uidl, int(parts[0]))
    return result


def _header_hash_map(client: poplib.POP3) -> dict[str, int]:
    result: dict[str, int] = {}
    for number in sizes(client):
        digest = hashlib.sha256(top_headers(client, number)).hexdigest()
        uidl = HEADER_HASH_PREFIX + digest
        seen = 1
        while uidl in result:
            seen += 1
            uidl = f"{HEADER_HASH_PREFIX}{digest}#{seen}"
        result[uidl] = number
    return result


def sizes(client: poplib.POP3) -> dict[int, int]:
    """Map each message number to its size in octets (LIST), in server order."""
    with net.translated_errors():
        try:
            _resp, lines, _octets = client.list()
        except poplib.error_proto as exc:
            if exc.args and exc.args[0] == "-ERR EOF":
                raise _Lost("connection closed") from exc
            raise
    result: dict[int, int] = {}
    for raw in lines:
        parts = raw.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            result[int(parts[0])] = int(parts[1])
    return result


def top_headers(client: poplib.POP3, number: int) -> bytes:
    """The message's header as the server sends it for ``TOP n 0`` (CRLF lines).

    At most 1 MiB is kept; the rest of an oversized header is read and dropped.
    """
    kept = bytearray()
    with net.translated_errors():
        for piece in _crlf_pieces(client, f"TOP {number} 0"):
            if len(kept) < _HEADER_LIMIT:
                kept += piece[: _HEADER_LIMIT - len(kept)]
    return bytes(kept)


def pipeline_depth(client: poplib.POP3) -> int:
    """How many RETRs the importer may send before reading their answers.

    ``PIPELINE_DEPTH`` when the server lists PIPELINING in its CAPA answer
    (RFC 2449 section 6.6: the client may send several commands at once and
    the server answers them in order), else 1: one command, one answer.
    """
    with net.translated_errors():
        try:
            capabilities = client.capa()
        except poplib.error_proto as exc:
            if exc.args and exc.args[0] == "-ERR EOF":
                raise _Lost("connection closed") from exc
            return 1
    return PIPELINE_DEPTH if "PIPELINING" in capabilities else 1


def send_retrieve(client: poplib.POP3, numbers: Sequence[int]) -> None:
    """Send ``RETR n`` for each of ``numbers`` at once, without reading answers.

    For pipelining (see ``pipeline_depth``): one write for all the commands;
    their answers are then read in order, each with ``retrieve_to_file(...,
    sent=True)``, and a session given up half way through is closed with
    ``abandon``.
    """
    with net.translated_errors():
        client.sock.sendall(b"".join(b"RETR %d\r\n" % number for number in numbers))


def retrieve_to_file(
    client: poplib.POP3,
    number: int,
    path: Path,
    *,
    fsync: bool = True,
    head: bytearray | None = None,
    head_limit: int = 0,
    sent: bool = False,
) -> int:
    """RETR one message into ``path`` (created or truncated); return its size.

    Streamed: at most about 64 KiB of the message is in memory at any time
    (plus ``head``). Dot-stuffing is undone and every line ends in CRLF. With
    ``fsync`` (the default) the file is flushed to disk before this returns,
    so a stored blob survives a power cut; a caller that passes
    ``fsync=False`` must make the file durable itself before anything refers
    to it (the importer does, see ``blobs.DurableBatch``). ``head``, if given,
    receives the first ``head_limit`` bytes as written. With ``sent`` the
    command went out earlier (``send_retrieve``) and only its answer is read.
    """
    with net.translated_errors(), open(path, "wb") as out:
        written = retrieve_to(
            client, number, out, head=head, head_limit=head_limit, sent=sent
        )
        if fsync:
            out.flush()
            os.fsync(out.fileno())
    return written


def retrieve_to(
    client: poplib.POP3,
    number: int,
    out: _Writer,
    *,
    head: bytearray | None = None,
    head_limit: int = 0,
    sent: bool = False,
) -> int:
    """RETR one message into ``out`` (anything with ``write(bytes)``); return
    its size.

    As ``retrieve_to_file`` without the file: the message is handed to
    ``out.write`` in blocks of at most about 64 KiB, so the caller decides
    where it goes (the importer keeps a small message in memory and moves to
    a file when it grows past its limit). An error raised by ``out.write``
    that is an OSError counts as a lost connection (ServerProblem), as a
    failed file write does in ``retrieve_to_file``.
    """
    with net.translated_errors():
        if sent:
            _response(client)
        else:
            _command(client, f"RETR {number}")
        return _copy_answer(client.file, out, head, head_limit)


def _copy_answer(
    file: BinaryIO, out: _Writer, head: bytearray | None, head_limit: int
) -> int:
    """Copy the rest of a multi-line answer to ``out``; return the bytes written.

    Two ways through, the same bytes out. Fast: at a line start, the whole
    lines the reader already holds (up to its buffer, 8 KiB) are checked for
    bare LFs; when every line ends in CRLF they are written in one go, the
    dot-stuffing undone by one ``replace`` (every "CRLF ." becomes "CRLF") and
    the end found as "CRLF . CRLF", reading nothing past it (a pipelined next
    answer stays in the reader). Slow, for a line longer than the buffer and
    for an answer with a bare LF (from then on): one line, or 64 KiB of it, at
    a time, with the writes gathered into blocks.
    """
    peek = getattr(file, "peek", None)  # a BufferedReader has it
    read = file.read
    readline = file.readline
    fast = peek is not None
    written = 0
    block: list[bytes] = []
    gathered = 0
    at_line_start = True
    held_cr = False
    while True:
        if fast and at_line_start and not held_cr:
            data = peek(_CHUNK)
            end = data.rfind(b"\n") + 1
            if end:
                lines = data[:end] if end < len(data) else data
                if lines.count(b"\n") == lines.count(b"\r\n"):
                    text = b"\r\n" + lines
                    stop = text.find(b"\r\n.\r\n")
                    if stop >= 0:
                        text = text[: stop + 2]
                        read(stop + 3)
                    else:
                        read(end)
                    if block:
                        written += _write_block(out, block, head, head_limit, written)
                        block.clear()
                        gathered = 0
                    text = text.replace(b"\r\n.", b"\r\n")[2:]
                    written += _write_block(out, [text], head, head_limit, written)
                    if stop >= 0:
                        return written
                    continue
                fast = False  # a bare LF: line by line from here on
        piece = readline(_CHUNK)
        if not piece:
            raise _Lost("connection closed in the middle of an answer")
        if at_line_start and piece[:1] == b".":
            if piece == b".\r\n" or piece == b".\n":
                break
            piece = piece[1:]
        at_line_start = piece[-1:] == b"\n"
        if held_cr:
            piece = b"\r" + piece
            held_cr = False
        if at_line_start:
            if piece[-2:-1] != b"\r":
                piece = piece[:-1] + b"\r\n"
        elif piece[-1:] == b"\r":
            # The LF may come as the next piece: keep the CR back.
            held_cr = True
            piece = piece[:-1]
        block.append(piece)
        gathered += len(piece)
        if gathered >= _CHUNK:
            written += _write_block(out, block, head, head_limit, written)
            block.clear()
            gathered = 0
    if held_cr:
        block.append(b"\r")
    return written + _write_block(out, block, head, head_limit, written)


def _write_block(
    out: _Writer,
    block: list[bytes],
    head: bytearray | None,
    head_limit: int,
    written: int,
) -> int:
    data = block[0] if len(block) == 1 else b"".join(block)
    out.write(data)
    if head is not None and written < head_limit:
        head += data[: head_limit - written]
    return len(data)


def delete(client: poplib.POP3, number: int) -> None:
    """Mark a message for deletion; the server removes it only at QUIT."""
    with net.translated_errors():
        _command(client, f"DELE {number}")


def quit(client: poplib.POP3) -> None:  # noqa: A001 (the POP3 command's name)
    """End the session with QUIT, which makes the DELEs take effect.

    Raises ServerProblem if the server does not confirm: then nothing was deleted.
    """
    try:
        with net.translated_errors():
            try:
                client.quit()
            except poplib.error_proto as exc:
                raise ServerProblem(Problem.PROTOCOL, _reply(exc)) from exc
    finally:
        client.close()


def abandon(client: poplib.POP3) -> None:
    """Drop the connection without QUIT: the server deletes nothing."""
    with contextlib.suppress(OSError):
        client.close()
