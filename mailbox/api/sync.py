"""API: delta sync of a folder for phones (what changed since a state token)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailbox.access import source_for
from mailbox.api.errors import ApiError, errors
from mailbox.api.serializers import (
    FolderQuery,
    MessageSummarySerializer,
    query_of,
)
from mailbox.sources import BadSyncState
from mailbox.sync import ADDED_LIMIT, MAX_TOKEN_LENGTH

_DESCRIPTION = f"""
Without `since`: no lists, only `state` (list the folder normally, then sync
from that state). With `since` (the `state` of the previous answer): the
messages added to the folder since (at most {ADDED_LIMIT}, oldest first; with
`more`, call again with the new `state` at once for the rest), the current flags
of messages whose flags changed, and the uids of messages removed (deleted or
moved away). Apply `removed`, then `changed`, then `added` (as an upsert by
uid); an answer may repeat what an earlier one said, and `removed` may name uids
the client never had: applying it again is harmless.

`full_resync: true` (with empty lists): the state cannot be diffed — the
folder's validity (IMAP UIDVALIDITY) changed, the folder was made again, the
state is too old (store: the record of deletions was pruned), the diff would be
too large, or the IMAP server has no CONDSTORE and the folder is too large to
compare. Drop what is cached for the folder, list it again, and continue from
the new `state`. A folder that is gone answers `full_resync` with `state: null`
(reload the folder list).

A `since` that was not issued for this account and folder is refused (400,
code `bad_state`): sync again without it.
"""


class ChangesQuery(FolderQuery):
    since = serializers.CharField(
        required=False,
        max_length=MAX_TOKEN_LENGTH,
        help_text="The state of the previous answer; omit for the current state.",
    )


class FlagChangeSerializer(serializers.Serializer):
    uid = serializers.IntegerField(read_only=True)
    seen = serializers.BooleanField(read_only=True)
    flagged = serializers.BooleanField(read_only=True)
    answered = serializers.BooleanField(read_only=True)


class ChangesSerializer(serializers.Serializer):
    """``mailbox.sources.Changes``."""

    folder = serializers.CharField(read_only=True)
    validity = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The folder's validity for the uids below (null: folder gone).",
    )
    state = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Pass as since next time; null only when the folder is gone.",
    )
    added = MessageSummarySerializer(many=True, read_only=True)
    changed = FlagChangeSerializer(many=True, read_only=True)
    removed = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    full_resync = serializers.BooleanField(read_only=True)
    more = serializers.BooleanField(
        read_only=True, help_text="More added messages: call again with state."
    )


class MessageChangesApi(APIView):
    @extend_schema(
        operation_id="messages_changes",
        summary="Delta sync: messages added, flags changed, messages removed",
        description=_DESCRIPTION.strip(),
        parameters=[ChangesQuery],
        responses={200: ChangesSerializer, **errors(400, 404, 409, 503)},
    )
    def get(self, request: Request, account_id: int) -> Response:
        source = source_for(request.user, account_id)
        params = query_of(ChangesQuery, request)
        try:
            result = source.changes(params["folder"], params.get("since"))
        except BadSyncState as exc:
            raise ApiError(
                "bad_state",
                _("This sync state is not valid here: sync again without it."),
            ) from exc
        return Response(ChangesSerializer(result).data)
