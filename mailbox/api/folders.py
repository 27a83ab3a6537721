"""API: the folders of one mail account."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailbox.access import source_for
from mailbox.api.errors import ApiError, errors
from mailbox.api.serializers import (
    FolderNameField,
    FolderQuery,
    FolderSerializer,
    query_of,
)


class FolderNameOutput(serializers.Serializer):
    name = serializers.CharField(help_text="The folder's full name.")


def _refused(exc: ValueError) -> ApiError:
    # FolderError (IMAP) and the store's ValueError carry a message for the user.
    return ApiError("folder_refused", str(exc))


class FolderCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    parent = FolderNameField(
        required=False, allow_null=True, help_text="Full name of the parent."
    )


class FolderRenameInput(serializers.Serializer):
    name = serializers.CharField(
        max_length=100, help_text="The new last component of the name."
    )


class FolderListApi(APIView):
    @extend_schema(
        operation_id="folders_list",
        summary="The account's folders, with counts and special use",
        responses={200: FolderSerializer(many=True), **errors(404, 503)},
    )
    def get(self, request: Request, account_id: int) -> Response:
        folders = source_for(request.user, account_id).folders()
        return Response(FolderSerializer(folders, many=True).data)

    @extend_schema(
        operation_id="folders_create",
        summary="Create a folder",
        request=FolderCreateInput,
        responses={201: FolderNameOutput, **errors(400, 404, 503)},
    )
    def post(self, request: Request, account_id: int) -> Response:
        source = source_for(request.user, account_id)
        data = FolderCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            name = source.create_folder(
                data.validated_data["name"],
                parent=data.validated_data.get("parent") or None,
            )
        except ValueError as exc:
            raise _refused(exc) from exc
        return Response({"name": name}, status=status.HTTP_201_CREATED)


class FolderDetailApi(APIView):
    @extend_schema(
        operation_id="folders_retrieve",
        summary="One folder, with its counts",
        parameters=[FolderQuery],
        responses={200: FolderSerializer, **errors(400, 404, 503)},
    )
    def get(self, request: Request, account_id: int) -> Response:
        name = query_of(FolderQuery, request)["folder"]
        for folder in source_for(request.user, account_id).folders():
            if folder.name == name or (
                name.upper() == "INBOX" and folder.special_use == "inbox"
            ):
                return Response(FolderSerializer(folder).data)
        raise ApiError("not_found", _("No such folder."), status.HTTP_404_NOT_FOUND)

    @extend_schema(
        operation_id="folders_rename",
        summary="Rename a folder",
        parameters=[FolderQuery],
        request=FolderRenameInput,
        responses={200: FolderNameOutput, **errors(400, 404, 503)},
    )
    def patch(self, request: Request, account_id: int) -> Response:
        source = source_for(request.user, account_id)
        folder = query_of(FolderQuery, request)["folder"]
        data = FolderRenameInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            name = source.rename_folder(folder, data.validated_data["name"])
        except ValueError as exc:
            raise _refused(exc) from exc
        return Response({"name": name})

    @extend_schema(
        operation_id="folders_destroy",
        summary="Delete a folder",
        parameters=[FolderQuery],
        responses={204: None, **errors(400, 404, 503)},
    )
    def delete(self, request: Request, account_id: int) -> Response:
        source = source_for(request.user, account_id)
        folder = query_of(FolderQuery, request)["folder"]
        try:
            source.delete_folder(folder)
        except ValueError as exc:
            raise _refused(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
