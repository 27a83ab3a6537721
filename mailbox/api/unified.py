"""API: All inboxes, the INBOX of every account merged newest first (see
mailbox/unified.py); the same list as the browser's ``mailbox:all_inboxes``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django.urls import reverse
from django.utils.http import urlencode
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailbox import unified
from mailbox.api.errors import errors
from mailbox.api.serializers import MessageSummarySerializer, query_of
from mailbox.sources import ListQuery, MessageSummary, SearchField


class AllInboxesParams(serializers.Serializer):
    page = serializers.IntegerField(
        min_value=1,
        max_value=unified.MAX_PAGES,
        default=1,
        required=False,
        help_text=f"1-based, {unified.PAGE_SIZE} messages a page; the list stops "
        f"after {unified.MAX_PAGES} pages (older mail: list the account's INBOX).",
    )
    q = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    field = serializers.ChoiceField(
        choices=[k.value for k in SearchField],
        default=SearchField.ALL.value,
        required=False,
        help_text="Where q is searched.",
    )
    unread = serializers.BooleanField(required=False, default=False)
    flagged = serializers.BooleanField(required=False, default=False)


class InboxMessageSerializer(MessageSummarySerializer):
    """A message list row plus where it lives: the account, folder and validity
    that the account's message endpoints take."""

    account = serializers.IntegerField(read_only=True, help_text="The account's id.")
    folder = serializers.CharField(read_only=True)
    validity = serializers.IntegerField(read_only=True)


class InboxAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    label = serializers.CharField(read_only=True)
    inbox_unread = serializers.IntegerField(read_only=True, allow_null=True)
    error = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Why the account's inbox could not be read (its mail is then "
        "missing from the list), or null.",
    )


class AllInboxesPageSerializer(serializers.Serializer):
    page = serializers.IntegerField(read_only=True)
    page_count = serializers.IntegerField(read_only=True)
    total = serializers.IntegerField(
        read_only=True, help_text="Matching messages in the inboxes that were read."
    )
    unread = serializers.IntegerField(
        read_only=True, help_text="Unread messages in those inboxes."
    )
    truncated = serializers.BooleanField(
        read_only=True,
        help_text="More messages match than the pages of this list show.",
    )
    messages = InboxMessageSerializer(many=True, read_only=True)
    accounts = InboxAccountSerializer(many=True, read_only=True)
    previous = serializers.CharField(read_only=True, allow_null=True)
    next = serializers.CharField(
        read_only=True, allow_null=True, help_text="URL of the next page, or null."
    )


def _row(row: unified.UnifiedRow) -> dict[str, Any]:
    summary = row.summary
    data = {f.name: getattr(summary, f.name) for f in fields(MessageSummary)}
    data.update(account=row.account.pk, folder=row.folder, validity=row.validity)
    return data


class AllInboxesApi(APIView):
    @extend_schema(
        operation_id="all_inboxes",
        summary="The INBOX of every active account, merged newest first",
        description="Each inbox is read live (IMAP) or from the store (POP3); an "
        "account that cannot be read is left out and named in accounts[].error, "
        "never an error status.",
        parameters=[AllInboxesParams],
        responses={200: AllInboxesPageSerializer, **errors(400)},
    )
    def get(self, request: Request) -> Response:
        params = query_of(AllInboxesParams, request)
        query = ListQuery(
            page=params["page"],
            text=params["q"].strip(),
            field=SearchField(params["field"]),
            unread_only=params["unread"],
            flagged_only=params["flagged"],
        )
        page = unified.all_inboxes_page(request.user, query)

        def link(number: int) -> str:
            # The filters that were given (the search field only with a search).
            kept = {
                k: "1" if v is True else v
                for k, v in params.items()
                if v and k != "page" and (k != "field" or params["q"])
            }
            return request.build_absolute_uri(
                reverse("api:all_inboxes") + "?" + urlencode({**kept, "page": number})
            )

        return Response(
            AllInboxesPageSerializer(
                {
                    "page": query.page,
                    "page_count": page.page_count,
                    "total": page.total,
                    "unread": page.unread,
                    "truncated": page.truncated,
                    "messages": [_row(row) for row in page.rows],
                    "accounts": [
                        {
                            "id": c.account.pk,
                            "label": c.account.label,
                            "inbox_unread": c.unread,
                            "error": c.error,
                        }
                        for c in page.counts
                    ],
                    "previous": link(query.page - 1) if page.has_previous else None,
                    "next": link(query.page + 1) if page.has_next else None,
                }
            ).data
        )
