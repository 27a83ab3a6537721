"""API: the signed-in user, their mail accounts, imports and quotas."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AccountKind, MailAccount, Security
from accounts.selectors import mail_account_get, mail_account_list
from accounts.services import mail_account_delete
from mailbox import quota, setup, tasks
from mailbox.access import source_for
from mailbox.api.errors import ApiError, errors
from mailbox.api.serializers import (
    ImportJobSerializer,
    MailAccountSerializer,
    QuotaSerializer,
)
from mailbox.errors import ServerProblem
from mailbox.forms import MailAccountForm
from mailbox.store.models import ImportJob


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    time_zone = serializers.CharField()
    mark_read_on_open = serializers.BooleanField()


class MeApi(APIView):
    @extend_schema(
        operation_id="me",
        summary="The signed-in user",
        responses={200: MeSerializer, **errors()},
    )
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)


class AccountInput(serializers.Serializer):
    """The web form's fields; validated by that same form (same messages)."""

    kind = serializers.ChoiceField(choices=AccountKind.choices, required=False)
    email = serializers.EmailField(required=False)
    label = serializers.CharField(max_length=100, required=False, allow_blank=True)
    host = serializers.CharField(max_length=253, required=False)
    security = serializers.ChoiceField(choices=Security.choices, required=False)
    port = serializers.IntegerField(
        min_value=1, max_value=65535, required=False, allow_null=True
    )
    allow_unencrypted = serializers.BooleanField(required=False)
    username = serializers.CharField(max_length=255, required=False, allow_blank=True)
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Required on create; empty or absent on update keeps it.",
    )
    leave_on_server = serializers.BooleanField(required=False)
    check_interval_minutes = serializers.IntegerField(
        min_value=5, max_value=24 * 60, required=False
    )
    remove_after_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, allow_null=True
    )
    import_target = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="POP3: one of the user's IMAP accounts to import into; null: "
        "the store.",
    )
    import_folder = serializers.CharField(
        max_length=1000, required=False, allow_blank=True
    )
    folder_sent = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        help_text="IMAP: the folder for sent mail; empty: found automatically "
        "(likewise folder_drafts, folder_trash, folder_junk, folder_archive).",
    )
    folder_drafts = serializers.CharField(
        max_length=1000, required=False, allow_blank=True
    )
    folder_trash = serializers.CharField(
        max_length=1000, required=False, allow_blank=True
    )
    folder_junk = serializers.CharField(
        max_length=1000, required=False, allow_blank=True
    )
    folder_archive = serializers.CharField(
        max_length=1000, required=False, allow_blank=True
    )
    smtp_host = serializers.CharField(max_length=253, required=False, allow_blank=True)
    smtp_security = serializers.ChoiceField(choices=Security.choices, required=False)
    smtp_port = serializers.IntegerField(
        min_value=1, max_value=65535, required=False, allow_null=True
    )
    smtp_username = serializers.CharField(
        max_length=255, required=False, allow_blank=True
    )
    smtp_password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
    )


def _form_data(data: dict[str, Any], *, start: dict[str, Any]) -> dict[str, Any]:
    """The form's data: ``start`` overlaid with what the request sent.

    Absent fields keep ``start`` (the web form's defaults, or the account's
    current values); a JSON false or null is the form's "off" or "empty".
    """
    merged = {**start, **data}
    return {
        key: ("" if value is None else value)
        for key, value in merged.items()
        if value is not False
    }


def _form_defaults() -> dict[str, Any]:
    form = MailAccountForm(user=None)  # type: ignore[arg-type]
    return {
        name: field.initial
        for name, field in form.fields.items()
        if field.initial is not None
    }


def _bound_form(
    request: Request, *, account: MailAccount | None, partial: bool
) -> MailAccountForm:
    """The web form, bound to what the request sent; 400 unless it is valid.

    The form's messages come first (the same as on the web); the serializer
    adds what only it sees (a field of the wrong JSON type).
    """
    if not isinstance(request.data, dict):
        raise serializers.ValidationError(_("Send a JSON object."))
    shape = AccountInput(data=request.data, partial=partial)
    shape.is_valid()
    sent = {
        key: request.data[key] for key in AccountInput().fields if key in request.data
    }
    if account is None:
        start = _form_defaults()
    else:
        start = dict(MailAccountForm(user=request.user, account=account).initial)
    form = MailAccountForm(
        _form_data(sent, start=start), user=request.user, account=account
    )
    problems: dict[str, list[str]] = {}
    if not form.is_valid():
        problems = {
            ("non_field_errors" if name == "__all__" else name): list(messages)
            for name, messages in form.errors.items()
        }
    for name, messages in shape.errors.items():
        problems.setdefault(name, [str(m) for m in messages])
    if problems:
        raise serializers.ValidationError(problems)
    return form


def _saved(form: MailAccountForm, action: Any) -> MailAccount:
    """Run the setup flow; its refusals are 400s with the web form's messages."""
    try:
        return action()
    except ServerProblem as problem:
        raise serializers.ValidationError(
            {"non_field_errors": [form.login_failed(problem)]}
        ) from problem
    except DjangoValidationError as error:
        raise serializers.ValidationError(
            {"non_field_errors": list(error.messages)}
        ) from error


class AccountListApi(APIView):
    @extend_schema(
        operation_id="accounts_list",
        summary="The user's mail accounts",
        responses={200: MailAccountSerializer(many=True), **errors()},
    )
    def get(self, request: Request) -> Response:
        accounts = mail_account_list(user=request.user)
        return Response(MailAccountSerializer(accounts, many=True).data)

    @extend_schema(
        operation_id="accounts_create",
        summary="Add a mail account (the login is tested first)",
        description="Nothing is saved when the login test fails: 400 with the "
        "reason in non_field_errors.",
        request=AccountInput,
        responses={201: MailAccountSerializer, **errors(400)},
    )
    def post(self, request: Request) -> Response:
        form = _bound_form(request, account=None, partial=False)
        account = _saved(
            form,
            lambda: setup.account_add(
                user=request.user,
                kind=form.cleaned_data["kind"],
                options=form.options(),
                server=form.server(),
                password=form.cleaned_data["password"],
                smtp=form.smtp(),
                smtp_password=form.smtp_secret() or "",
            ),
        )
        return Response(
            MailAccountSerializer(account).data, status=status.HTTP_201_CREATED
        )


class AccountDetailApi(APIView):
    @extend_schema(
        operation_id="accounts_retrieve",
        summary="One mail account",
        responses={200: MailAccountSerializer, **errors(404)},
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = mail_account_get(user=request.user, account_id=account_id)
        return Response(MailAccountSerializer(account).data)

    @extend_schema(
        operation_id="accounts_update",
        summary="Change a mail account (the login is tested first)",
        description="Only the fields sent change; the protocol cannot change. "
        "An empty or absent password keeps the stored one.",
        request=AccountInput,
        responses={200: MailAccountSerializer, **errors(400, 404)},
    )
    def patch(self, request: Request, account_id: int) -> Response:
        account = mail_account_get(user=request.user, account_id=account_id)
        form = _bound_form(request, account=account, partial=True)
        account = _saved(
            form,
            lambda: setup.account_change(
                account=account,
                options=form.options(),
                server=form.server(),
                password=form.cleaned_data["password"] or None,
                smtp=form.smtp(),
                smtp_password=form.smtp_secret(),
            ),
        )
        return Response(MailAccountSerializer(account).data)

    @extend_schema(
        operation_id="accounts_destroy",
        summary="Remove a mail account",
        description="Imported mail of a POP3 account stays in the store.",
        responses={204: None, **errors(404)},
    )
    def delete(self, request: Request, account_id: int) -> Response:
        account = mail_account_get(user=request.user, account_id=account_id)
        mail_account_delete(account=account)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImportStartApi(APIView):
    @extend_schema(
        operation_id="import_start",
        summary="Import a POP3 account's new mail now",
        request=None,
        responses={201: ImportJobSerializer, **errors(400, 404)},
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = mail_account_get(user=request.user, account_id=account_id)
        if not account.is_pop:
            raise ApiError("not_pop3", _("Only POP3 accounts are imported."))
        with transaction.atomic():
            job_id = tasks.import_start(
                account=account, trigger=ImportJob.Trigger.MANUAL
            )
        job = ImportJob.objects.get(pk=job_id)
        return Response(ImportJobSerializer(job).data, status=status.HTTP_201_CREATED)


class ImportJobApi(APIView):
    @extend_schema(
        operation_id="jobs_retrieve",
        summary="One import's progress",
        responses={200: ImportJobSerializer, **errors(404)},
    )
    def get(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(ImportJob, pk=job_id, account__user=request.user)
        return Response(ImportJobSerializer(job).data)


class AccountQuotaApi(APIView):
    @extend_schema(
        operation_id="accounts_quota",
        summary="The account's quota",
        description="IMAP: the server's (null when it has none); POP3: the store's.",
        responses={200: QuotaSerializer(allow_null=True), **errors(404, 503)},
    )
    def get(self, request: Request, account_id: int) -> Response:
        usage = source_for(request.user, account_id).quota()
        return Response(QuotaSerializer(usage).data if usage else None)


class StoreQuotaApi(APIView):
    @extend_schema(
        operation_id="quota",
        summary="The user's storage in the store (imported mail)",
        responses={200: QuotaSerializer, **errors()},
    )
    def get(self, request: Request) -> Response:
        return Response(QuotaSerializer(quota.usage(user=request.user)).data)
