"""Delta sync of a store folder: what was added, changed and removed since a state.

Every change in a user's store takes the next value of the user's counter
(``ChangeCounter``) as the row's ``modseq``. A state is (folder id, counter
value). Since a state at modseq N, for one folder:

- added: rows of the folder with ``modseq > N`` that came into the folder after
  N (``arrived_modseq``, or their modseq when they never changed since their
  insert): imported, or moved in;
- changed: rows of the folder with ``modseq > N`` that were there at N (flags);
- removed: tombstones of the folder with ``modseq > N`` (deleted for good, or
  moved out), except messages back in the folder since.

A state whose folder is gone or was made again (another id), whose modseq is
beyond the counter, or older than the pruned tombstones, is answered with a
full resync. New messages come oldest change first, at most ``ADDED_LIMIT``;
with more, the state keeps N and a cursor (modseq, id) of the last one sent.

Reading the counter before the rows keeps nothing from being missed: a change
not committed yet holds the counter's row lock, so the committed counter is
below its modseq and the next sync sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from mailbox.sources import Changes, FlagChange, FolderChanged, MessageSummary
from mailbox.store.models import (
    ChangeCounter,
    LocalFolder,
    StoredMessage,
    StoreTombstone,
)
from mailbox.sync import ADDED_LIMIT, CHANGES_LIMIT, int_field

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

TOMBSTONE_DAYS = 60


def arrival() -> Coalesce:
    """The modseq at which a row came into its folder (an expression)."""
    return Coalesce(F("arrived_modseq"), F("modseq"))


# -- writes (called by mailbox/store/services.py) -----------------------------


def tombstones_add(
    *, user: User, folder_id: int, ids: Sequence[int], modseq: int
) -> None:
    """Record that messages ``ids`` left folder ``folder_id`` at ``modseq``.

    Joins the caller's transaction (the move or delete it records).
    """
    StoreTombstone.objects.bulk_create(
        StoreTombstone(user=user, folder_id=folder_id, message_id=pk, modseq=modseq)
        for pk in ids
    )


@transaction.atomic
def tombstones_prune(*, older_than: timedelta = timedelta(days=TOMBSTONE_DAYS)) -> int:
    """Delete tombstones older than ``older_than``; return how many went.

    Each user's ``pruned_modseq`` moves up to the newest modseq pruned, so a
    sync state from before it answers with a full resync instead of missing
    removals.
    """
    cutoff = timezone.now() - older_than
    tops = (
        StoreTombstone.objects.filter(created_at__lt=cutoff)
        .values("user_id")
        .annotate(top=Max("modseq"))
    )
    count = 0
    for row in tops:
        ChangeCounter.objects.filter(
            user_id=row["user_id"], pruned_modseq__lt=row["top"]
        ).update(pruned_modseq=row["top"])
        deleted, _kinds = StoreTombstone.objects.filter(
            user_id=row["user_id"], modseq__lte=row["top"]
        ).delete()
        count += deleted
    if count:
        logger.info("store sync: %s tombstones pruned", count)
    return count


# -- the diff ----------------------------------------------------------------


def _counter(user: User) -> tuple[int, int]:
    row = ChangeCounter.objects.filter(user=user).values("value", "pruned_modseq")
    found = row.first()
    return (found["value"], found["pruned_modseq"]) if found else (0, 0)


def changes(
    *,
    user: User,
    folder: LocalFolder | None,
    name: str,
    since: Mapping[str, Any] | None,
    seal: Callable[[dict[str, Any]], str],
    summary: Callable[[StoredMessage], MessageSummary],
) -> Changes:
    """What changed in the user's ``folder`` (named ``name``) since ``since``.

    ``folder`` None: the folder does not exist (FolderChanged without a state,
    a full resync with no state otherwise). ``seal`` turns state data into a
    token; ``summary`` makes a list row of a message.
    """
    if folder is None:
        if since is None:
            raise FolderChanged(name)
        return Changes(folder=name, validity=None, state=None, full_resync=True)
    now, pruned = _counter(user)
    fresh = {"fid": folder.pk, "ms": now}
    if since is None:
        return Changes(folder=name, validity=folder.pk, state=seal(fresh))
    modseq = int_field(since, "ms")
    cursor = since.get("c")
    if (
        int_field(since, "fid") != folder.pk
        or modseq is None
        or modseq < pruned
        or modseq > now
        or (cursor is not None and not _is_cursor(cursor))
    ):
        return _full(name, folder, seal(fresh))

    rows = StoredMessage.objects.filter(user=user, folder=folder, modseq__gt=modseq)
    rows = rows.annotate(arrived=arrival())
    changed_rows = rows.filter(arrived__lte=modseq)
    present = StoredMessage.objects.filter(user=user, folder=folder).values("pk")
    gone = (
        StoreTombstone.objects.filter(user=user, folder=folder, modseq__gt=modseq)
        .exclude(message_id__in=present)
        .values_list("message_id", flat=True)
        .distinct()
    )
    if changed_rows.count() + gone.count() > CHANGES_LIMIT:
        logger.info("store sync: diff over %s entries, full resync", CHANGES_LIMIT)
        return _full(name, folder, seal(fresh))
    changed = tuple(
        FlagChange(uid=pk, seen=seen, flagged=flagged, answered=answered)
        for pk, seen, flagged, answered in changed_rows.order_by("pk").values_list(
            "pk", "seen", "flagged", "answered"
        )
    )
    removed = tuple(sorted(gone))

    new_rows = rows.filter(arrived__gt=modseq)
    if cursor is not None:
        last_modseq, last_pk = cursor
        new_rows = new_rows.filter(
            Q(modseq__gt=last_modseq) | Q(modseq=last_modseq, pk__gt=last_pk)
        )
    batch = list(new_rows.order_by("modseq", "pk")[: ADDED_LIMIT + 1])
    more = len(batch) > ADDED_LIMIT
    batch = batch[:ADDED_LIMIT]
    if more:
        state: dict[str, Any] = {
            "fid": folder.pk,
            "ms": modseq,
            "c": [batch[-1].modseq, batch[-1].pk],
        }
    else:
        state = fresh
    return Changes(
        folder=name,
        validity=folder.pk,
        state=seal(state),
        added=tuple(summary(row) for row in batch),
        changed=changed,
        removed=removed,
        more=more,
    )


def _is_cursor(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _full(name: str, folder: LocalFolder, state: str) -> Changes:
    return Changes(folder=name, validity=folder.pk, state=state, full_resync=True)
