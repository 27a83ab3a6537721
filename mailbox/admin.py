"""Import jobs in the admin: follow them, and run an account's import again."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mailbox import tasks
from mailbox.store.models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "account",
        "user_email",
        "status",
        "trigger",
        "progress",
        "imported",
        "failed",
        "created_at",
    ]
    list_filter = ["status", "trigger"]
    search_fields = ["account__email", "account__host", "account__user__email"]
    list_select_related = ["account__user"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]
    actions = ["rerun"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description=_("user"))
    def user_email(self, job: ImportJob) -> str:
        return job.account.user.email

    @admin.display(description=_("progress"))
    def progress(self, job: ImportJob) -> str:
        return f"{job.done}/{job.total}"

    @admin.action(description=_("Run the import of these accounts again"))
    def rerun(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        accounts = {job.account for job in queryset.select_related("account")}
        with transaction.atomic():
            for account in accounts:
                tasks.import_start(account=account, trigger=ImportJob.Trigger.ADMIN)
        self.message_user(
            request,
            ngettext("%(n)d import started.", "%(n)d imports started.", len(accounts))
            % {"n": len(accounts)},
            messages.SUCCESS,
        )
