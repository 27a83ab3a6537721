"""All inboxes: the INBOX of every active account of a user, merged newest first.

Each IMAP account's INBOX is read live through its ``MailSource``. The store is
one per user, so its Inbox (where POP3 accounts import) is read once, however
many POP3 accounts the user has; its rows are credited to the account they were
imported from.

Page k (1-based, ``PAGE_SIZE`` rows) needs the newest k * PAGE_SIZE messages of
each inbox: every inbox is asked for ONE page of that size in arrival order
(newest first; one FETCH per IMAP account), the lists are merged and the page is
sliced out. Beyond ``MAX_PAGES`` pages the list stops and the user is sent to
the accounts' own inboxes, which page through everything.

The merge key is ``MessageSummary.date``: the Date header, or the arrival time
when the header is missing or unreadable (INTERNALDATE for IMAP, the import time
for the store). Arrival itself cannot be compared across accounts: mail
imported from POP3 arrives here in batches (a first import of years of mail
gets one timestamp), so only the Date header puts two accounts' mail in a true
newest-first order. Each inbox keeps its own (arrival) order inside the merge;
the merge always takes the newest of the inboxes' next messages, so a message
whose Date header disagrees with its arrival keeps its place among its own
inbox's mail. Because a k-way merge emits its first n rows from at most the
first n rows of each input, page k sliced from depth k * PAGE_SIZE is exactly
page k of the merge of the whole inboxes: consecutive pages never repeat nor
skip a message, whatever the dates.

The unread count of an inbox comes from that page when it holds the whole
inbox, else from one more listing of unread messages past its end (a SEARCH,
no FETCH). IMAP inboxes are read at the same time (``MAX_PARALLEL`` threads),
so a slow server delays the page by its own wait only. An account that cannot
be read (server down, login refused, an OAuth2 grant to renew, every
connection slot taken) does not stop the others: it is left out and named in
``problems`` with the reason.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db import connections
from django.db.models import Count
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import AccountKind, MailAccount
from accounts.selectors import mail_account_list
from mailbox.access import source_of
from mailbox.errors import Problem, ServerProblem
from mailbox.imap.pool import PoolBusy
from mailbox.sources import (
    DEFAULT_PAGE_SIZE,
    FolderChanged,
    ListQuery,
    MessagePage,
    MessageSummary,
    SortKey,
)

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

PAGE_SIZE = DEFAULT_PAGE_SIZE
# Page 20 asks each inbox for its newest 1,000 headers; past that, the
# account's own inbox pages through the rest at 50 headers a page.
MAX_PAGES = 20
INBOX = "INBOX"
# IMAP inboxes read at the same time by one request.
MAX_PARALLEL = 4
# A page past the end of any inbox: its answer carries the count of unread
# messages and no headers (an empty page FETCHes nothing).
_UNREAD_COUNT = ListQuery(page=1_000_000, page_size=1, unread_only=True)
_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AccountProblem:
    """An account whose inbox could not be read, and why (for the user)."""

    account: MailAccount
    message: str
    reconnect: bool = False  # an OAuth2 grant to renew on the accounts page


@dataclass(frozen=True)
class InboxCount:
    """One account's share of the inboxes: unread messages, or its problem."""

    account: MailAccount
    unread: int | None
    error: str | None = None


@dataclass(frozen=True)
class UnifiedRow:
    """One message of the merged list, with the identity its account needs."""

    account: MailAccount
    folder: str
    validity: int
    summary: MessageSummary

    @property
    def uid(self) -> int:
        return self.summary.uid


@dataclass(frozen=True)
class UnifiedPage:
    query: ListQuery  # page and filters; page_size is PAGE_SIZE
    rows: tuple[UnifiedRow, ...]
    total: int  # matching messages in the inboxes that could be read
    unread: int  # unread messages in those inboxes (filters aside)
    counts: tuple[InboxCount, ...]
    problems: tuple[AccountProblem, ...]

    @property
    def page_count(self) -> int:
        """Pages that can be shown (at most MAX_PAGES)."""
        return min(MAX_PAGES, max(1, math.ceil(self.total / PAGE_SIZE)))

    @property
    def has_previous(self) -> bool:
        return self.query.page > 1

    @property
    def has_next(self) -> bool:
        return self.query.page < self.page_count

    @property
    def beyond_depth(self) -> bool:
        """Asked for a page past MAX_PAGES: nothing shown, the note says why."""
        return self.query.page > MAX_PAGES

    @property
    def truncated(self) -> bool:
        """More mail matches than MAX_PAGES pages show."""
        return self.total > MAX_PAGES * PAGE_SIZE


@dataclass(frozen=True)
class _Inbox:
    """What one read inbox gave: its rows (newest first), total and unread."""

    rows: tuple[UnifiedRow, ...]
    total: int
    counts: tuple[InboxCount, ...]


def active_accounts(user: User) -> list[MailAccount]:
    """The user's active accounts, in the order of the account list."""
    return list(mail_account_list(user=user).filter(is_active=True))


def all_inboxes_page(user: User, query: ListQuery) -> UnifiedPage:
    """Page ``query.page`` of the merged inboxes of ``user``'s active accounts.

    ``query`` gives the page (1-based) and the filters (unread only, flagged
    only, a search); its sort, order and page size are ignored: the list is
    always newest first, PAGE_SIZE a page. Never raises for an account that
    cannot be read: it is left out and named in ``problems``.
    """
    page = max(1, query.page)
    query = replace(query, page=page, page_size=PAGE_SIZE)
    depth = min(page, MAX_PAGES) * PAGE_SIZE
    asked = replace(query, page=1, page_size=depth, sort=SortKey.DATE, reverse=True)
    accounts, inboxes, problems = _read_all(user, asked)
    rows: tuple[UnifiedRow, ...] = ()
    if page <= MAX_PAGES:
        start = (page - 1) * PAGE_SIZE
        merged = _merge([inbox.rows for inbox in inboxes])
        rows = tuple(itertools.islice(merged, start, start + PAGE_SIZE))
    counts = _counts(accounts, inboxes, problems)
    return UnifiedPage(
        query=query,
        rows=rows,
        total=sum(inbox.total for inbox in inboxes),
        unread=sum(c.unread or 0 for c in counts),
        counts=counts,
        problems=tuple(problems),
    )


def inbox_counts(user: User) -> tuple[InboxCount, ...]:
    """Unread messages in each active account's inbox, or why it could not be
    read. No headers are fetched: one count per IMAP inbox, two queries for the
    store."""
    accounts, inboxes, problems = _read_all(user, None)
    return _counts(accounts, inboxes, problems)


# -- reading ------------------------------------------------------------------


def _read_all(
    user: User, query: ListQuery | None
) -> tuple[list[MailAccount], list[_Inbox], list[AccountProblem]]:
    """Read every inbox: a list page for ``query``, or (None) the unread counts.

    IMAP inboxes are read at the same time, each in a thread of its own, so a
    slow or silent server costs the page its own wait, not the sum of all; the
    store is read here. Results and problems come back in account-list order.
    """
    accounts = active_accounts(user)
    pop_accounts = [a for a in accounts if a.kind == AccountKind.POP3]
    imap_accounts = [a for a in accounts if a.kind != AccountKind.POP3]
    outcomes: dict[int, _Inbox | Exception] = {}
    with _parallel(len(imap_accounts)) as submit:
        pending = {a.pk: submit(_read_imap, a, query) for a in imap_accounts}
        if pop_accounts:
            # One store Inbox for all of them, read through the first.
            outcomes[pop_accounts[0].pk] = _outcome(
                lambda: _read_store(pop_accounts[0], pop_accounts, query)
            )
        for pk, future in pending.items():
            outcomes[pk] = _outcome(future.result)
    inboxes: list[_Inbox] = []
    problems: list[AccountProblem] = []
    for account in accounts:
        outcome = outcomes.get(account.pk)
        if isinstance(outcome, _Inbox):
            inboxes.append(outcome)
        elif outcome is not None:
            problems.append(_problem(account, outcome))
    return accounts, inboxes, problems


_EXPECTED = (ServerProblem, PoolBusy, FolderChanged)


def _outcome(read: Callable[[], _Inbox]) -> _Inbox | Exception:
    try:
        return read()
    except _EXPECTED as exc:
        return exc


def _problem(account: MailAccount, exc: Exception) -> AccountProblem:
    """The notice for an account that could not be read. Made here, in the
    request's thread, where the user's language is active."""
    logger.info("all inboxes: account %s: %s", account.pk, exc)
    if isinstance(exc, ServerProblem | PoolBusy):
        return AccountProblem(
            account=account,
            message=exc.message,
            reconnect=isinstance(exc, ServerProblem)
            and exc.problem == Problem.RECONNECT,
        )
    return AccountProblem(
        account=account, message=_("The server says this account has no inbox.")
    )


@contextlib.contextmanager
def _parallel(count: int) -> Iterator[Callable[..., Future]]:
    """``submit(fn, *args)``: in a thread pool when there are several reads,
    else run at once (a finished future)."""
    if count < 2:

        def now(fn: Callable[..., _Inbox], *args: object) -> Future:
            future: Future = Future()
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # handed over as a thread would hand it
                future.set_exception(exc)
            return future

        yield now
        return
    with ThreadPoolExecutor(
        max_workers=min(count, MAX_PARALLEL), thread_name_prefix="all-inboxes"
    ) as executor:
        language = translation.get_language()

        def in_thread(fn: Callable[..., _Inbox], *args: object) -> Future:
            return executor.submit(_in_thread, language, fn, *args)

        yield in_thread


def _in_thread(
    language: str | None, fn: Callable[..., _Inbox], *args: object
) -> _Inbox:
    """Run ``fn`` in a pool thread, in the request's language (error details are
    translated where they are made); close the database connection it may have
    opened (an OAuth2 token refresh locks the account's row)."""
    try:
        with translation.override(language):
            return fn(*args)
    finally:
        connections.close_all()


def _read_imap(account: MailAccount, query: ListQuery | None) -> _Inbox:
    source = source_of(account)
    if query is None:
        unread = source.messages(INBOX, _UNREAD_COUNT).total
        return _Inbox(rows=(), total=0, counts=(InboxCount(account, unread),))
    page = source.messages(INBOX, query)
    unread = _unread_from_page(page)
    if unread is None:
        unread = source.messages(INBOX, _UNREAD_COUNT).total
    rows = tuple(
        UnifiedRow(account=account, folder=INBOX, validity=page.validity, summary=m)
        for m in page.messages
    )
    return _Inbox(rows=rows, total=page.total, counts=(InboxCount(account, unread),))


def _unread_from_page(page: MessagePage) -> int | None:
    """The inbox's unread count when the page tells it without another call."""
    query = page.query
    if query.unread_only and not query.flagged_only and not query.text:
        return page.total
    if not query.is_search and len(page.messages) >= page.total:
        return sum(1 for m in page.messages if not m.seen)
    return None


def _read_store(
    reader: MailAccount,
    pop_accounts: Sequence[MailAccount],
    query: ListQuery | None,
) -> _Inbox:
    """The store's Inbox, read through ``reader`` (any of the user's POP3 accounts
    reads the same store). Each row and unread message is credited to the active
    POP3 account it was imported from, else to ``reader``."""
    from mailbox.store.models import StoredMessage

    source = source_of(reader)
    by_id = {a.pk: a for a in pop_accounts}
    page = source.messages(INBOX, _UNREAD_COUNT if query is None else query)
    inbox = StoredMessage.objects.filter(
        user_id=reader.user_id, folder_id=page.validity
    )
    unread_by_origin = dict(
        inbox.filter(seen=False)
        .values("account_id")
        .annotate(n=Count("pk"))
        .values_list("account_id", "n")
    )
    unread = dict.fromkeys(by_id, 0)
    for origin, n in unread_by_origin.items():
        unread[origin if origin in by_id else reader.pk] += n
    counts = tuple(InboxCount(a, unread[a.pk]) for a in pop_accounts)
    if query is None:
        return _Inbox(rows=(), total=0, counts=counts)
    origins = dict(
        inbox.filter(pk__in=[m.uid for m in page.messages]).values_list(
            "pk", "account_id"
        )
    )
    rows = tuple(
        UnifiedRow(
            account=by_id.get(origins.get(m.uid) or 0, reader),
            folder=INBOX,
            validity=page.validity,
            summary=m,
        )
        for m in page.messages
    )
    return _Inbox(rows=rows, total=page.total, counts=counts)


# -- merging ------------------------------------------------------------------


def _key(row: UnifiedRow) -> datetime:
    return row.summary.date or _OLDEST


def _merge(lists: Sequence[Sequence[UnifiedRow]]) -> Iterator[UnifiedRow]:
    """Newest first by date, each list's own order kept; on equal dates the
    earlier list (the account listed first) comes first."""
    return heapq.merge(*lists, key=_key, reverse=True)


def _counts(
    accounts: Sequence[MailAccount],
    inboxes: Sequence[_Inbox],
    problems: Sequence[AccountProblem],
) -> tuple[InboxCount, ...]:
    """One entry per account, in account-list order: its count or its problem."""
    by_id = {c.account.pk: c for inbox in inboxes for c in inbox.counts}
    for problem in problems:
        by_id.setdefault(
            problem.account.pk, InboxCount(problem.account, None, problem.message)
        )
    return tuple(by_id[a.pk] for a in accounts if a.pk in by_id)
