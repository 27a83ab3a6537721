"""ImapSource: the MailSource of an IMAP account, read live over pooled logins."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from django.core.cache import cache
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailbox import sync
from mailbox.errors import Problem, ServerProblem
from mailbox.imap import fetch, flags, folders, listing, pool
from mailbox.imap import sync as imap_sync
from mailbox.imap.quota import get_quota
from mailbox.sources import (
    Changes,
    Download,
    Folder,
    FullMessage,
    ListQuery,
    MessagePage,
    Neighbours,
    Quota,
    SpecialUse,
)

if TYPE_CHECKING:
    from accounts.models import MailAccount

T = TypeVar("T")

QUOTA_CACHE_SECONDS = 60

# Sorted UID lists, per process, validated on every use (see listing.OrderCache).
_order_cache = listing.OrderCache(max_entries=64)


class ImapSource:
    """Every call borrows the account's pooled login for the time it needs it."""

    def __init__(self, account: MailAccount) -> None:
        self.account = account
        self._cache = _order_cache.scoped((account.pk, account.host, account.username))

    def _run(self, fn: Callable[[IMAPClient], T], *, retry: bool = True) -> T:
        try:
            return pool.run(self.account, fn, retry=retry)
        except IMAPClientAbortError as exc:  # pragma: no cover - pool translates
            raise ServerProblem(Problem.NETWORK, str(exc)[:120]) from exc
        except IMAPClientError as exc:
            # A NO or BAD answer: the server refused this one command.
            raise ServerProblem(Problem.PROTOCOL, _reply(exc)) from exc

    # -- folders -----------------------------------------------------------------

    def folders(self, *, counts: bool | None = True) -> list[Folder]:
        chosen = self.account.special_folders
        return self._run(
            lambda c: folders.list_folders(c, with_counts=counts, chosen=chosen)
        )

    def create_folder(self, name: str, parent: str | None = None) -> str:
        return self._run(lambda c: folders.create_folder(c, name, parent), retry=False)

    def rename_folder(self, folder: str, new_name: str) -> str:
        return self._run(
            lambda c: folders.rename_folder(c, folder, new_name), retry=False
        )

    def delete_folder(self, folder: str) -> None:
        self._run(lambda c: folders.delete_folder(c, folder), retry=False)

    # -- messages ------------------------------------------------------------------

    def messages(self, folder: str, query: ListQuery) -> MessagePage:
        return self._run(
            lambda c: listing.list_page(c, folder, query, cache=self._cache)
        )

    def neighbours(
        self, folder: str, uid: int, query: ListQuery, *, validity: int
    ) -> Neighbours:
        return self._run(
            lambda c: listing.neighbours(
                c, folder, uid, query, validity=validity, cache=self._cache
            )
        )

    def message(
        self, folder: str, uid: int, *, validity: int, mark_seen: bool = True
    ) -> FullMessage:
        return self._run(
            lambda c: fetch.fetch_message(
                c, folder, uid, validity=validity, mark_seen=mark_seen
            )
        )

    def raw(self, folder: str, uid: int, *, validity: int) -> Iterator[bytes]:
        return self._stream(
            lambda c: fetch.fetch_raw(c, folder, uid, validity=validity)
        )

    def attachment(
        self, folder: str, uid: int, part_id: str, *, validity: int
    ) -> Download:
        holder: list[Download] = []

        def start(client: IMAPClient) -> Iterator[bytes]:
            download = fetch.fetch_part(client, folder, uid, part_id, validity=validity)
            holder.append(download)
            return download.chunks

        chunks = self._stream(start)
        return Download(holder[0].info, chunks)

    def _stream(
        self, start: Callable[[IMAPClient], Iterator[bytes]]
    ) -> Iterator[bytes]:
        """Keep the login checked out while the caller consumes the stream.

        ``start`` runs now (so errors surface before any byte is sent); the
        connection goes back to the pool when the stream ends or is closed.
        """
        borrowed = pool.connection(self.account)
        client = borrowed.__enter__()
        try:
            chunks = start(client)
        except BaseException:
            if not borrowed.__exit__(*sys.exc_info()):
                raise
            raise  # pragma: no cover - the pool never swallows errors

        def stream() -> Iterator[bytes]:
            try:
                yield from chunks
            except BaseException:
                with contextlib.suppress(BaseException):
                    borrowed.__exit__(*sys.exc_info())
                raise
            borrowed.__exit__(None, None, None)

        return stream()

    def set_flags(
        self,
        folder: str,
        uids: Sequence[int],
        *,
        validity: int,
        seen: bool | None = None,
        flagged: bool | None = None,
    ) -> None:
        self._run(
            lambda c: flags.set_flags(
                c, folder, uids, validity=validity, seen=seen, flagged=flagged
            )
        )

    def move(
        self, folder: str, uids: Sequence[int], *, validity: int, to_folder: str
    ) -> int:
        return self._run(
            lambda c: flags.move(
                c, folder, uids, validity=validity, to_folder=to_folder
            ),
            retry=False,
        )

    def delete(self, folder: str, uids: Sequence[int], *, validity: int) -> int:
        def run(client: IMAPClient) -> int:
            trash = next(
                (
                    f.name
                    for f in folders.list_folders(
                        client,
                        with_counts=False,
                        chosen=self.account.special_folders,
                    )
                    if f.special_use == SpecialUse.TRASH
                ),
                None,
            )
            return flags.delete(client, folder, uids, validity=validity, trash=trash)

        return self._run(run, retry=False)

    def quota(self) -> Quota | None:
        """The server's quota, asked at most once a minute per account.

        GETQUOTAROOT makes Dovecot count the mailbox (~10 ms at 10,000 messages,
        ~110 ms at 100,000), and usage moves slowly: a minute-old bar is fine.
        """
        key = (
            f"imap-quota:{self.account.pk}:{self.account.host}:{self.account.username}"
        )
        cached = cache.get(key)
        if cached is not None:
            return cached or None
        quota = self._run(get_quota)
        cache.set(key, quota or False, timeout=QUOTA_CACHE_SECONDS)
        return quota

    def changes(
        self, folder: str, since: str | None, *, extensions: bool = True
    ) -> Changes:
        """Added, changed and removed messages since ``since`` (mailbox/imap/sync.py).

        ``extensions=False`` diffs without CONDSTORE/QRESYNC, as for a server
        that has neither. Raises BadSyncState for a token not made for this
        account and folder.
        """
        account_id = self.account.pk
        previous = (
            None
            if since is None
            else sync.state_load("imap", since, account_id=account_id, folder=folder)
        )
        if since is not None and previous is None:
            previous = {}  # an older format: a full resync
        return self._run(
            lambda c: imap_sync.changes(
                c,
                folder,
                previous,
                seal=lambda data: sync.state_dump(
                    "imap", account_id=account_id, folder=folder, data=data
                ),
                extensions=extensions,
            )
        )


def _reply(exc: IMAPClientError) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text[:160]
