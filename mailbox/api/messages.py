"""API: message lists (cursor pages), one message, its parts, flags, moves."""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailbox import display
from mailbox.access import account_for_user, source_for, source_of
from mailbox.api.errors import ApiError, errors
from mailbox.api.serializers import (
    FolderNameField,
    FolderQuery,
    MessagePageSerializer,
    MessageRefQuery,
    MessageSerializer,
    is_part_id,
    query_of,
    uid_field,
    validity_field,
)
from mailbox.sources import (
    FolderChanged,
    FullMessage,
    ListQuery,
    SearchField,
    SortKey,
)

_CURSOR_SALT = "mailbox.api.cursor"
MAX_PAGE_SIZE = 200
MAX_BULK = 1000


# --- lists ----------------------------------------------------------------------------


class ListParams(FolderQuery):
    cursor = serializers.CharField(
        required=False,
        max_length=2000,
        help_text="From next_cursor of the previous page; it carries the folder's "
        "validity, the query and the position (the other parameters are then "
        "ignored). A folder whose validity changed since answers 409.",
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE_SIZE, default=50, required=False
    )
    sort = serializers.ChoiceField(
        choices=[k.value for k in SortKey], default=SortKey.DATE.value, required=False
    )
    order = serializers.ChoiceField(
        choices=["desc", "asc"], default="desc", required=False
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


def _cursor(folder: str, validity: int, query: ListQuery, page: int) -> str:
    return signing.dumps(
        {
            "f": folder,
            "v": validity,
            "p": page,
            "n": query.page_size,
            "s": query.sort.value,
            "r": query.reverse,
            "q": query.text,
            "qf": query.field.value,
            "u": query.unread_only,
            "fl": query.flagged_only,
        },
        salt=_CURSOR_SALT,
        compress=True,
    )


def _from_cursor(cursor: str) -> tuple[str, int, ListQuery]:
    try:
        data = signing.loads(cursor, salt=_CURSOR_SALT)
        query = ListQuery(
            page=int(data["p"]),
            page_size=int(data["n"]),
            sort=SortKey(data["s"]),
            reverse=bool(data["r"]),
            text=str(data["q"]),
            field=SearchField(data["qf"]),
            unread_only=bool(data["u"]),
            flagged_only=bool(data["fl"]),
        )
        return str(data["f"]), int(data["v"]), query
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise serializers.ValidationError(
            {"cursor": [_("This cursor is not valid.")]}
        ) from exc


class MessageListApi(APIView):
    @extend_schema(
        operation_id="messages_list",
        summary="Messages of a folder, headers only, a page at a time",
        parameters=[ListParams],
        responses={200: MessagePageSerializer, **errors(400, 404, 409, 503)},
    )
    def get(self, request: Request, account_id: int) -> Response:
        source = source_for(request.user, account_id)
        params = query_of(ListParams, request)
        expected: int | None = None
        if params.get("cursor"):
            folder, expected, query = _from_cursor(params["cursor"])
        else:
            folder = params["folder"]
            query = ListQuery(
                page=1,
                page_size=params["limit"],
                sort=SortKey(params["sort"]),
                reverse=params["order"] != "asc",
                text=params["q"].strip(),
                field=SearchField(params["field"]),
                unread_only=params["unread"],
                flagged_only=params["flagged"],
            )
        page = source.messages(folder, query)
        if expected is not None and page.validity != expected:
            raise FolderChanged(folder)
        next_cursor = (
            _cursor(folder, page.validity, query, query.page + 1)
            if page.has_next
            else None
        )
        next_url = None
        if next_cursor:
            next_url = request.build_absolute_uri(
                reverse("api:messages", args=[account_id])
                + "?"
                + urlencode({"folder": folder, "cursor": next_cursor})
            )
        return Response(
            MessagePageSerializer(
                {
                    "folder": folder,
                    "validity": page.validity,
                    "total": page.total,
                    "messages": page.messages,
                    "next_cursor": next_cursor,
                    "next": next_url,
                    "sort_fallback": page.sort_fallback,
                }
            ).data
        )


# --- one message ----------------------------------------------------------------------


class MessageParams(MessageRefQuery):
    remote = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Show remote images (through the server's proxy) this time.",
    )
    mark_seen = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Mark the message read; default: the user's preference.",
    )


def _ref_query(folder: str, validity: int) -> str:
    return urlencode({"folder": folder, "validity": validity})


def _message_data(
    request: Request, account: Any, message: FullMessage, *, allow_remote: bool
) -> dict[str, Any]:
    parsed = message.parsed
    body = None
    if parsed.html is not None:
        # The very code of the browser's message view (and its cache).
        body = display.sanitized_body(
            request, account, message, allow_remote=allow_remote
        )
    query = _ref_query(message.folder, message.validity)
    attachments = [
        {
            **vars(info),
            "url": request.build_absolute_uri(
                reverse(
                    "api:message_attachment",
                    args=[account.pk, message.uid, info.part_id],
                )
                + "?"
                + query
            ),
        }
        for info in parsed.attachments
    ]
    return {
        "folder": message.folder,
        "validity": message.validity,
        "uid": message.uid,
        "size": message.size,
        "seen": message.seen,
        "flagged": message.flagged,
        "answered": message.answered,
        "received": message.received,
        "imported_from": message.imported_from,
        "subject": parsed.subject,
        "from_": parsed.from_,
        "to": parsed.to,
        "cc": parsed.cc,
        "reply_to": parsed.reply_to,
        "date": parsed.date,
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": list(parsed.references),
        "text": parsed.text,
        "html": str(body.html) if body is not None else None,
        "remote_content_blocked": bool(body and body.remote_blocked),
        "remote_hosts": list(body.remote_hosts) if body else [],
        "attachments": attachments,
        "attached_messages": list(parsed.attached_messages),
        "problems": list(parsed.problems),
        "raw_url": request.build_absolute_uri(
            reverse("api:message_raw", args=[account.pk, message.uid]) + "?" + query
        ),
    }


class FlagsInput(serializers.Serializer):
    seen = serializers.BooleanField(required=False)
    flagged = serializers.BooleanField(required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data:
            raise serializers.ValidationError(_("Give seen or flagged."))
        return data


class MessageDetailApi(APIView):
    @extend_schema(
        operation_id="messages_retrieve",
        summary="One message: headers, sanitized HTML, text, attachments",
        description="html is sanitized (remote images replaced unless allowed); "
        "show it in a sandboxed web view.",
        parameters=[MessageParams],
        responses={200: MessageSerializer, **errors(400, 404, 409, 503)},
    )
    def get(self, request: Request, account_id: int, uid: int) -> Response:
        account = account_for_user(request.user, account_id)
        params = query_of(MessageParams, request)
        mark_seen = params["mark_seen"]
        if mark_seen is None:
            mark_seen = request.user.mark_read_on_open
        message = source_of(account).message(
            params["folder"], uid, validity=params["validity"], mark_seen=mark_seen
        )
        sender = message.parsed.from_[0].email if message.parsed.from_ else ""
        # The browser's rule: asked for this once, or a sender the user trusts.
        allow_remote = params["remote"] or display.remote_allowed(
            request._request, sender
        )
        data = _message_data(request, account, message, allow_remote=allow_remote)
        return Response(MessageSerializer(data).data)

    @extend_schema(
        operation_id="messages_flags",
        summary="Set a message's flags (seen, flagged)",
        parameters=[MessageRefQuery],
        request=FlagsInput,
        responses={204: None, **errors(400, 404, 409, 503)},
    )
    def patch(self, request: Request, account_id: int, uid: int) -> Response:
        source = source_for(request.user, account_id)
        ref = query_of(MessageRefQuery, request)
        data = FlagsInput(data=request.data)
        data.is_valid(raise_exception=True)
        source.set_flags(
            ref["folder"], [uid], validity=ref["validity"], **data.validated_data
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="messages_destroy",
        summary="Delete a message (to the Trash; in the Trash, for good)",
        parameters=[MessageRefQuery],
        responses={204: None, **errors(400, 404, 409, 503)},
    )
    def delete(self, request: Request, account_id: int, uid: int) -> Response:
        source = source_for(request.user, account_id)
        ref = query_of(MessageRefQuery, request)
        source.delete(ref["folder"], [uid], validity=ref["validity"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MoveInput(serializers.Serializer):
    to_folder = FolderNameField()


class MessageMoveApi(APIView):
    @extend_schema(
        operation_id="messages_move",
        summary="Move a message to another folder",
        parameters=[MessageRefQuery],
        request=MoveInput,
        responses={204: None, **errors(400, 404, 409, 503)},
    )
    def post(self, request: Request, account_id: int, uid: int) -> Response:
        source = source_for(request.user, account_id)
        ref = query_of(MessageRefQuery, request)
        data = MoveInput(data=request.data)
        data.is_valid(raise_exception=True)
        source.move(
            ref["folder"],
            [uid],
            validity=ref["validity"],
            to_folder=data.validated_data["to_folder"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class BulkInput(serializers.Serializer):
    folder = FolderNameField()
    validity = validity_field()
    uids = serializers.ListField(child=uid_field(), min_length=1, max_length=MAX_BULK)
    action = serializers.ChoiceField(
        choices=["read", "unread", "flag", "unflag", "move", "delete"]
    )
    to_folder = FolderNameField(required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["action"] == "move" and not data.get("to_folder"):
            raise serializers.ValidationError(
                {"to_folder": [_("Choose the folder to move to.")]}
            )
        return data


class MessageBulkApi(APIView):
    @extend_schema(
        operation_id="messages_bulk",
        summary="Mark read/unread, flag/unflag, move or delete several messages",
        request=BulkInput,
        responses={204: None, **errors(400, 404, 409, 503)},
    )
    def post(self, request: Request, account_id: int) -> Response:
        source = source_for(request.user, account_id)
        data = BulkInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        folder, validity, action = d["folder"], d["validity"], d["action"]
        uids = sorted(set(d["uids"]))
        if action in ("read", "unread"):
            source.set_flags(folder, uids, validity=validity, seen=action == "read")
        elif action in ("flag", "unflag"):
            source.set_flags(folder, uids, validity=validity, flagged=action == "flag")
        elif action == "move":
            source.move(folder, uids, validity=validity, to_folder=d["to_folder"])
        else:
            source.delete(folder, uids, validity=validity)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- parts and raw source -------------------------------------------------------------


class AnyAccept(BaseContentNegotiation):
    """Downloads are bytes whatever the client accepts; errors are JSON."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list, format_suffix: str | None = None
    ) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type


class DownloadApi(APIView):
    content_negotiation_class = AnyAccept


class AttachmentApi(DownloadApi):
    @extend_schema(
        operation_id="messages_attachment",
        summary="Download one part of a message (streamed)",
        parameters=[
            MessageRefQuery,
            OpenApiParameter(
                "part_id", str, OpenApiParameter.PATH, description="e.g. 2 or 1.2"
            ),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The decoded part; the name in Content-Disposition.",
            ),
            **errors(400, 404, 409, 503),
        },
    )
    def get(
        self, request: Request, account_id: int, uid: int, part_id: str
    ) -> StreamingHttpResponse:
        source = source_for(request.user, account_id)
        ref = query_of(MessageRefQuery, request)
        if not is_part_id(part_id):
            raise ApiError("not_found", _("No such part."), status.HTTP_404_NOT_FOUND)
        download = source.attachment(
            ref["folder"], uid, part_id, validity=ref["validity"]
        )
        response = StreamingHttpResponse(
            download.chunks, content_type="application/octet-stream"
        )
        response["Content-Disposition"] = display.content_disposition(
            "attachment", download.info.filename
        )
        return display.as_inert_file(response, cache_control="private, no-store")


class RawApi(DownloadApi):
    @extend_schema(
        operation_id="messages_raw",
        summary="The message's raw source (streamed)",
        parameters=[MessageRefQuery],
        responses={
            (200, "message/rfc822"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The message as stored."
            ),
            **errors(400, 404, 409, 503),
        },
    )
    def get(self, request: Request, account_id: int, uid: int) -> StreamingHttpResponse:
        source = source_for(request.user, account_id)
        ref = query_of(MessageRefQuery, request)
        chunks = source.raw(ref["folder"], uid, validity=ref["validity"])
        response = StreamingHttpResponse(chunks, content_type="message/rfc822")
        response["Content-Disposition"] = display.content_disposition(
            "attachment", f"message-{uid}.eml"
        )
        return display.as_inert_file(response, cache_control="private, no-store")
