"""Staff manage users, mail accounts and quotas; stored passwords never leave the DB."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount, User, UserQuota


class MailAccountAdminForm(forms.ModelForm):
    """Edits everything but the credentials, which can only be replaced."""

    new_password = forms.CharField(
        label=_("New password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Leave empty to keep the stored password. It is never shown."),
    )
    new_smtp_password = forms.CharField(
        label=_("New SMTP password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Leave empty to keep the stored SMTP password."),
    )

    class Meta:
        model = MailAccount
        # The encrypted credentials are not listed: they never reach the form.
        fields = [
            "user",
            "kind",
            "label",
            "email",
            "is_active",
            "host",
            "port",
            "security",
            "username",
            "leave_on_server",
            "check_interval_minutes",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "status",
        ]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if not self.instance.pk and not data.get("new_password"):
            self.add_error("new_password", _("A new account needs a password."))
        return data

    def save(self, commit: bool = True) -> MailAccount:
        account: MailAccount = super().save(commit=False)
        if self.cleaned_data.get("new_password"):
            account.set_password(self.cleaned_data["new_password"])
        if self.cleaned_data.get("new_smtp_password"):
            account.set_smtp_password(self.cleaned_data["new_smtp_password"])
        if commit:
            account.save()
        return account


@admin.register(MailAccount)
class MailAccountAdmin(admin.ModelAdmin):
    form = MailAccountAdminForm
    list_display = ["label", "email", "user", "kind", "host", "status", "is_active"]
    list_filter = ["kind", "status", "is_active", "security"]
    search_fields = ["label", "email", "host", "username", "user__email"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    # The OAuth2 tokens are never shown: only how the account signs in.
    readonly_fields = [
        "auth_method",
        "oauth_provider",
        "oauth_expires_at",
        "status_detail",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["user", "kind", "label", "email", "is_active"]}),
        (
            _("Sign-in"),
            {"fields": ["auth_method", "oauth_provider", "oauth_expires_at"]},
        ),
        (
            _("Incoming server"),
            {"fields": ["host", "port", "security", "username", "new_password"]},
        ),
        (_("POP3 import"), {"fields": ["leave_on_server", "check_interval_minutes"]}),
        (
            _("Outgoing server (SMTP)"),
            {
                "classes": ["collapse"],
                "fields": [
                    "smtp_host",
                    "smtp_port",
                    "smtp_security",
                    "smtp_username",
                    "new_smtp_password",
                ],
            },
        ),
        (
            _("Status"),
            {"fields": ["status", "status_detail", "created_at", "updated_at"]},
        ),
    ]


class MailAccountInline(admin.TabularInline):
    model = MailAccount
    fields = ["label", "email", "kind", "host", "status", "is_active"]
    readonly_fields = ["label", "email", "kind", "host", "status"]
    show_change_link = True
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # New accounts need a password: they are added from the mail-account page.
        return False


class UserQuotaInline(admin.StackedInline):
    model = UserQuota
    fields = ["limit_mb", "used_bytes"]
    readonly_fields = ["used_bytes"]
    can_delete = False


class EmailUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ["email"]


class EmailUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = EmailUserChangeForm
    add_form = EmailUserCreationForm
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Personal info"), {"fields": ["first_name", "last_name"]}),
        (
            _("Permissions"),
            {
                "fields": [
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                ]
            },
        ),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "password1", "password2"],
            },
        )
    ]
    inlines = [UserQuotaInline, MailAccountInline]

    def get_inlines(self, request: HttpRequest, obj: User | None) -> list[type]:
        return list(self.inlines) if obj is not None else []


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    list_display = ["user", "limit_mb", "used_bytes"]
    search_fields = ["user__email"]
    readonly_fields = ["used_bytes"]
    autocomplete_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserQuota]:
        return super().get_queryset(request).select_related("user")
