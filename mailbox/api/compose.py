"""API: writing mail — drafts, attachments, sending, replies and forwards, addresses.

The same services as the compose page (``mailbox.compose.services``): a message is
an ``outgoing`` resource from its first save until it is sent; ``send`` queues it
for the worker (202) and its ``state`` says how it went (``sent``, or ``failed``
with the server's reply in ``last_error``). Included by ``mailbox.api.urls``.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailbox.access import account_for_user
from mailbox.api.errors import ApiError, ErrorSerializer, errors
from mailbox.api.serializers import FolderNameField, uid_field, validity_field
from mailbox.compose import build, services
from mailbox.compose.models import OutgoingMessage
from mailbox.compose.selectors import outgoing_get, outgoing_list
from mailbox.compose.uploads import cap_uploads

MAX_LIST = 200


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    """``errors()`` plus 413: the attachments are larger than the limit."""
    responses = errors(*(c for c in codes if c != 413))
    if 413 in codes:
        responses[413] = OpenApiResponse(
            response=ErrorSerializer,
            description="Attachments above WEBMAIL_ATTACHMENT_MAX_MB in all "
            "(code too_large).",
        )
    return responses


# --- shapes ---------------------------------------------------------------------------


class AttachmentSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    filename = serializers.CharField(read_only=True)
    content_type = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)


class OutgoingSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    account = serializers.IntegerField(source="account_id", read_only=True)
    state = serializers.ChoiceField(
        choices=OutgoingMessage.State.choices,
        read_only=True,
        help_text="draft, queued, sending, sent or failed (see last_error).",
    )
    kind = serializers.CharField(
        read_only=True, help_text="Empty, reply, reply_all, forward, forward_attached."
    )
    to = serializers.CharField(read_only=True)
    cc = serializers.CharField(read_only=True)
    bcc = serializers.CharField(read_only=True)
    subject = serializers.CharField(read_only=True)
    body = serializers.CharField(read_only=True)
    message_id = serializers.CharField(read_only=True)
    in_reply_to = serializers.CharField(read_only=True)
    references = serializers.CharField(read_only=True)
    attachments = AttachmentSerializer(many=True, read_only=True)
    last_error = serializers.CharField(
        read_only=True, help_text="The SMTP server's reply when sending failed."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    sent_at = serializers.DateTimeField(read_only=True, allow_null=True)


def _output(message: OutgoingMessage, *, warning: str = "") -> dict[str, Any]:
    data = dict(OutgoingSerializer(message).data)
    data["warning"] = warning
    return data


def _address_list(value: str) -> str:
    try:
        return build.format_addresses(build.parse_addresses(value))
    except build.AddressError as exc:
        raise serializers.ValidationError(str(exc)) from exc


class DraftInput(serializers.Serializer):
    """What the user typed; addresses comma-separated, each one checked."""

    account = serializers.IntegerField(
        required=False, help_text="The sending account (one of the user's)."
    )
    to = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000, trim_whitespace=False
    )
    cc = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000, trim_whitespace=False
    )
    bcc = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000, trim_whitespace=False
    )
    subject = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=build.MAX_SUBJECT,
        trim_whitespace=False,
    )
    body = serializers.CharField(
        required=False, allow_blank=True, max_length=1_000_000, trim_whitespace=False
    )

    def validate_to(self, value: str) -> str:
        return _address_list(value)

    def validate_cc(self, value: str) -> str:
        return _address_list(value)

    def validate_bcc(self, value: str) -> str:
        return _address_list(value)

    def validate_subject(self, value: str) -> str:
        try:
            build.check_header_text(value)
        except build.AddressError as exc:
            raise serializers.ValidationError(
                _("The subject must be one line.")
            ) from exc
        return value.strip()


def _fields(
    data: dict[str, Any], base: OutgoingMessage | None = None
) -> services.Fields:
    def pick(name: str) -> str:
        if name in data:
            return data[name]
        return getattr(base, name) if base is not None else ""

    return services.Fields(
        pick("to"), pick("cc"), pick("bcc"), pick("subject"), pick("body")
    )


def _compose_error(exc: services.ComposeError) -> Exception:
    if isinstance(exc, services.AttachmentTooLarge):
        return ApiError(
            "too_large",
            exc.errors["attachments"],
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if "state" in exc.errors:
        return ApiError("not_editable", exc.errors["state"], status.HTTP_409_CONFLICT)
    return serializers.ValidationError(exc.errors)


# --- drafts ---------------------------------------------------------------------------


class OutgoingListApi(APIView):
    class OutgoingCreate(DraftInput):
        account = serializers.IntegerField(help_text="The sending account.")
        signature = serializers.BooleanField(
            required=False,
            default=True,
            help_text="Add the account's signature under the body.",
        )

    @extend_schema(
        operation_id="outgoing_list",
        summary="The user's drafts and outbox, latest first",
        responses={200: OutgoingSerializer(many=True), **errors()},
    )
    def get(self, request: Request) -> Response:
        rows = outgoing_list(user=request.user).prefetch_related("attachments")
        return Response(OutgoingSerializer(rows[:MAX_LIST], many=True).data)

    @extend_schema(
        operation_id="outgoing_create",
        summary="Start a draft (also saved to the account's Drafts folder)",
        request=OutgoingCreate,
        responses={201: OutgoingSerializer, **errors(400, 404)},
    )
    def post(self, request: Request) -> Response:
        data = self.OutgoingCreate(data=request.data)
        data.is_valid(raise_exception=True)
        account = account_for_user(request.user, data.validated_data["account"])
        try:
            message = services.draft_create(
                user=request.user,
                account=account,
                fields=_fields(data.validated_data),
                signature=data.validated_data["signature"],
            )
        except services.ComposeError as exc:
            raise _compose_error(exc) from exc
        warning = services.draft_store_remote(message=message)
        return Response(
            _output(message, warning=warning), status=status.HTTP_201_CREATED
        )


class OutgoingDetailApi(APIView):
    @extend_schema(
        operation_id="outgoing_get",
        summary="One draft or outgoing message",
        responses={200: OutgoingSerializer, **errors(404)},
    )
    def get(self, request: Request, message_id: int) -> Response:
        message = outgoing_get(user=request.user, message_id=message_id)
        return Response(_output(message))

    @extend_schema(
        operation_id="outgoing_update",
        summary="Save the draft (autosave); the Drafts copy is replaced",
        request=DraftInput,
        responses={200: OutgoingSerializer, **errors(400, 404, 409)},
    )
    def patch(self, request: Request, message_id: int) -> Response:
        message = outgoing_get(user=request.user, message_id=message_id)
        data = DraftInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        account = message.account
        if "account" in data.validated_data:
            account = account_for_user(request.user, data.validated_data["account"])
        try:
            message = services.draft_update(
                message=message,
                account=account,
                fields=_fields(data.validated_data, message),
            )
        except services.ComposeError as exc:
            raise _compose_error(exc) from exc
        warning = services.draft_store_remote(message=message)
        return Response(_output(message, warning=warning))

    @extend_schema(
        operation_id="outgoing_delete",
        summary="Discard a draft (also from the Drafts folder)",
        responses={204: None, **errors(404, 409)},
    )
    def delete(self, request: Request, message_id: int) -> Response:
        message = outgoing_get(user=request.user, message_id=message_id)
        try:
            services.outgoing_delete(message=message)
        except services.ComposeError as exc:
            raise _compose_error(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class AttachmentUploadApi(APIView):
    parser_classes = [MultiPartParser]

    class AttachmentUpload(serializers.Serializer):
        file = serializers.FileField(help_text="The file (multipart/form-data).")

    def initialize_request(self, request, *args: Any, **kwargs: Any) -> Request:  # noqa: ANN001
        # Uploads stream to temporary files and stop at the size limit; set
        # before anything (CSRF check, parsing) reads the body.
        cap_uploads(request)
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        operation_id="outgoing_attachment_add",
        summary="Attach a file (size limit per message: WEBMAIL_ATTACHMENT_MAX_MB)",
        request={"multipart/form-data": AttachmentUpload},
        responses={201: AttachmentSerializer, **_errors(400, 404, 409, 413)},
    )
    def post(self, request: Request, message_id: int) -> Response:
        message = outgoing_get(user=request.user, message_id=message_id)
        handlers = request._request.upload_handlers  # noqa: SLF001
        data = self.AttachmentUpload(data=request.data)
        if any(getattr(h, "refused", False) for h in handlers):
            raise _compose_error(services.AttachmentTooLarge())
        data.is_valid(raise_exception=True)
        try:
            attachment = services.attachment_add(
                message=message, upload=data.validated_data["file"]
            )
        except services.ComposeError as exc:
            raise _compose_error(exc) from exc
        return Response(
            AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED
        )


class AttachmentDetailApi(APIView):
    @extend_schema(
        operation_id="outgoing_attachment_delete",
        summary="Remove an attachment",
        responses={204: None, **errors(404, 409)},
    )
    def delete(self, request: Request, message_id: int, attachment_id: int) -> Response:
        message = outgoing_get(user=request.user, message_id=message_id)
        try:
            removed = services.attachment_remove(
                message=message, attachment_id=attachment_id
            )
        except services.ComposeError as exc:
            raise _compose_error(exc) from exc
        if not removed:
            raise ApiError("not_found", _("Not found."), status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SendApi(APIView):
    @extend_schema(
        operation_id="outgoing_send",
        summary="Send: queued for the worker; poll the message for its state",
        request=None,
        responses={202: OutgoingSerializer, **_errors(400, 404, 409, 413)},
    )
    def post(self, request: Request, message_id: int) -> Response:
        message = outgoing_get(user=request.user, message_id=message_id)
        try:
            services.message_queue(message=message)
        except services.ComposeError as exc:
            raise _compose_error(exc) from exc
        message.refresh_from_db()
        return Response(_output(message), status=status.HTTP_202_ACCEPTED)


# --- from a message of a folder ---------------------------------------------------


class DraftRef(serializers.Serializer):
    folder = FolderNameField()
    validity = validity_field()
    uid = uid_field()


class RespondApi(APIView):
    class RespondInput(DraftRef):
        kind = serializers.ChoiceField(
            choices=[k.value for k in OutgoingMessage.Kind if k.value]
        )

    @extend_schema(
        operation_id="outgoing_respond",
        summary="Reply, reply all or forward a message: a new draft",
        request=RespondInput,
        responses={201: OutgoingSerializer, **_errors(400, 404, 409, 413, 503)},
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = account_for_user(request.user, account_id)
        data = self.RespondInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        try:
            message = services.respond_start(
                user=request.user,
                account=account,
                folder=d["folder"],
                validity=d["validity"],
                uid=d["uid"],
                kind=d["kind"],
            )
        except services.ComposeError as exc:
            raise _compose_error(exc) from exc
        return Response(_output(message), status=status.HTTP_201_CREATED)


class DraftOpenApi(APIView):
    @extend_schema(
        operation_id="outgoing_from_draft",
        summary="Go on with a message of the Drafts folder",
        request=DraftRef,
        responses={200: OutgoingSerializer, **_errors(400, 404, 409, 413, 503)},
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = account_for_user(request.user, account_id)
        data = DraftRef(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        try:
            message = services.draft_open(
                user=request.user,
                account=account,
                folder=d["folder"],
                validity=d["validity"],
                uid=d["uid"],
            )
        except services.ComposeError as exc:
            raise _compose_error(exc) from exc
        return Response(_output(message))


class CorrespondentListApi(APIView):
    class CorrespondentQuery(serializers.Serializer):
        q = serializers.CharField(
            required=False, allow_blank=True, max_length=100, default=""
        )

    class Correspondent(serializers.Serializer):
        name = serializers.CharField()
        email = serializers.CharField()
        text = serializers.CharField(help_text='"Name <address>", ready for To/Cc.')

    @extend_schema(
        operation_id="correspondents",
        summary="Recent correspondents matching q (address completion)",
        parameters=[CorrespondentQuery],
        responses={200: Correspondent(many=True), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        query = self.CorrespondentQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = services.correspondent_list(
            user=request.user, query=query.validated_data["q"], limit=10
        )
        return Response(
            self.Correspondent(
                [{"name": r.name, "email": r.email, "text": str(r)} for r in rows],
                many=True,
            ).data
        )


_outgoing = "outgoing/<int:message_id>/"

urlpatterns = [
    path("outgoing/", OutgoingListApi.as_view(), name="outgoing_list"),
    path(_outgoing, OutgoingDetailApi.as_view(), name="outgoing"),
    path(
        _outgoing + "attachments/",
        AttachmentUploadApi.as_view(),
        name="outgoing_attachments",
    ),
    path(
        _outgoing + "attachments/<int:attachment_id>/",
        AttachmentDetailApi.as_view(),
        name="outgoing_attachment",
    ),
    path(_outgoing + "send/", SendApi.as_view(), name="outgoing_send"),
    path(
        "accounts/<int:account_id>/respond/",
        RespondApi.as_view(),
        name="outgoing_respond",
    ),
    path(
        "accounts/<int:account_id>/drafts/open/",
        DraftOpenApi.as_view(),
        name="outgoing_from_draft",
    ),
    path("correspondents/", CorrespondentListApi.as_view(), name="correspondents"),
]
