"""Users, their mail accounts (with encrypted credentials) and storage quotas."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts import crypto


class EmailUserManager(UserManager["User"]):
    """Users are known by their e-mail address; there is no username."""

    def _create_user(self, email, password, **extra_fields):  # type: ignore[override]
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):  # type: ignore[override]
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):  # type: ignore[override]
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    username = None  # type: ignore[assignment]
    email = models.EmailField(_("e-mail address"), unique=True)
    # Reading preferences.
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        help_text=_("Empty: the server's time zone."),
    )
    mark_read_on_open = models.BooleanField(
        _("mark messages as read when opened"), default=True
    )
    language = models.CharField(
        _("language"),
        max_length=12,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("Empty: the language of the browser."),
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = EmailUserManager()  # type: ignore[misc]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class AccountKind(models.TextChoices):
    IMAP = "imap", "IMAP"
    POP3 = "pop3", "POP3"


class Security(models.TextChoices):
    SSL = "ssl", _("SSL/TLS")
    STARTTLS = "starttls", _("STARTTLS")
    NONE = "none", _("None (unencrypted)")


class AccountStatus(models.TextChoices):
    OK = "ok", _("Working")
    LOGIN_FAILED = "login_failed", _("Login refused")
    UNREACHABLE = "unreachable", _("Server unreachable")
    NEEDS_RECONNECT = "reconnect", _("Needs reconnecting")


class AuthMethod(models.TextChoices):
    PASSWORD = "password", _("Password")
    OAUTH2 = "oauth2", _("OAuth2 (connected with the provider)")


class OAuthToken(str):
    """An OAuth2 access token, travelling where a password would.

    Protocol clients take a secret string; one of this type makes them log in
    with XOAUTH2 instead of a password.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "OAuthToken(…)"


DEFAULT_PORTS = {
    (AccountKind.IMAP, Security.SSL): 993,
    (AccountKind.IMAP, Security.STARTTLS): 143,
    (AccountKind.IMAP, Security.NONE): 143,
    (AccountKind.POP3, Security.SSL): 995,
    (AccountKind.POP3, Security.STARTTLS): 110,
    (AccountKind.POP3, Security.NONE): 110,
}
SMTP_DEFAULT_PORTS = {Security.SSL: 465, Security.STARTTLS: 587, Security.NONE: 25}

_port = [MinValueValidator(1), MaxValueValidator(65535)]


class MailAccount(models.Model):
    """One of a user's remote mailboxes: IMAP (read live) or POP3 (imported)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_accounts"
    )
    kind = models.CharField(_("protocol"), max_length=8, choices=AccountKind.choices)
    label = models.CharField(_("name"), max_length=100)
    email = models.EmailField(_("e-mail address"))

    host = models.CharField(_("incoming server"), max_length=253)
    port = models.PositiveIntegerField(_("port"), validators=_port)
    security = models.CharField(
        _("security"), max_length=10, choices=Security.choices, default=Security.SSL
    )
    username = models.CharField(_("user name"), max_length=255)
    password_encrypted = models.TextField(editable=False)
    # Google and Microsoft: OAuth2 tokens instead of a password, encrypted too.
    auth_method = models.CharField(
        _("sign-in"),
        max_length=10,
        choices=AuthMethod.choices,
        default=AuthMethod.PASSWORD,
        editable=False,
    )
    oauth_provider = models.CharField(
        _("OAuth2 provider"), max_length=20, blank=True, editable=False
    )
    oauth_access_encrypted = models.TextField(blank=True, editable=False)
    oauth_refresh_encrypted = models.TextField(blank=True, editable=False)
    oauth_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    # POP3 only.
    leave_on_server = models.BooleanField(_("leave a copy on the server"), default=True)
    check_interval_minutes = models.PositiveIntegerField(
        _("check every (minutes)"),
        default=15,
        validators=[MinValueValidator(5), MaxValueValidator(24 * 60)],
    )
    remove_after_days = models.PositiveIntegerField(
        _("remove from the server after (days)"),
        null=True,
        blank=True,
        help_text=_("With a copy left on the server: empty keeps it there forever."),
    )
    # Where imported mail goes: a folder of the store (by name), or a folder of
    # one of the user's IMAP accounts (by APPEND).
    import_folder = models.CharField(
        _("import into folder"), max_length=1000, blank=True, default=""
    )
    import_imap_account = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("import into IMAP account"),
    )
    last_import_at = models.DateTimeField(null=True, blank=True, editable=False)
    # IMAP: the folder the user picked for a special use ({"sent": "INBOX.Sent
    # Items"}), for servers without SPECIAL-USE where the names are guessed.
    special_folders = models.JSONField(_("special folders"), default=dict, blank=True)

    # Outgoing mail (used by sending); empty host means "not configured".
    smtp_host = models.CharField(_("outgoing server"), max_length=253, blank=True)
    smtp_port = models.PositiveIntegerField(
        _("SMTP port"), null=True, blank=True, validators=_port
    )
    smtp_security = models.CharField(
        _("SMTP security"),
        max_length=10,
        choices=Security.choices,
        default=Security.STARTTLS,
    )
    smtp_username = models.CharField(_("SMTP user name"), max_length=255, blank=True)
    smtp_password_encrypted = models.TextField(blank=True, editable=False)

    is_active = models.BooleanField(_("active"), default=True)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=AccountStatus.choices,
        default=AccountStatus.OK,
    )
    status_detail = models.CharField(_("status detail"), max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user", "label", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=AccountKind.values), name="mailaccount_kind"
            ),
            models.CheckConstraint(
                condition=models.Q(security__in=Security.values),
                name="mailaccount_security",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} <{self.email}>"

    def clean(self) -> None:
        if self.smtp_host and not self.smtp_port:
            raise ValidationError(
                {"smtp_port": _("Give the port of the outgoing server.")}
            )

    # Credentials go in and never come back out except to connect.
    def set_password(self, password: str) -> None:
        self.password_encrypted = crypto.encrypt(password)

    def get_password(self) -> str:
        return crypto.decrypt(self.password_encrypted)

    @property
    def uses_oauth(self) -> bool:
        return self.auth_method == AuthMethod.OAUTH2

    def set_oauth_tokens(
        self, *, access: str, refresh: str | None, expires_at: datetime | None
    ) -> None:
        """Keep new tokens (a refresh answer may omit the refresh token)."""
        self.oauth_access_encrypted = crypto.encrypt(access)
        if refresh:
            self.oauth_refresh_encrypted = crypto.encrypt(refresh)
        self.oauth_expires_at = expires_at

    def get_oauth_access(self) -> OAuthToken:
        return OAuthToken(crypto.decrypt(self.oauth_access_encrypted))

    def get_oauth_refresh(self) -> str:
        if not self.oauth_refresh_encrypted:
            return ""
        return crypto.decrypt(self.oauth_refresh_encrypted)

    def set_smtp_password(self, password: str) -> None:
        self.smtp_password_encrypted = crypto.encrypt(password) if password else ""

    def get_smtp_password(self) -> str:
        if not self.smtp_password_encrypted:
            return ""
        return crypto.decrypt(self.smtp_password_encrypted)

    @property
    def is_pop(self) -> bool:
        return self.kind == AccountKind.POP3

    @property
    def is_unencrypted(self) -> bool:
        return self.security == Security.NONE


class UserQuota(models.Model):
    """How much the server-side store may hold for one user, and how much it does."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota"
    )
    limit_mb = models.PositiveIntegerField(
        _("storage limit (MiB)"),
        null=True,
        blank=True,
        help_text=_("Empty: the site default (WEBMAIL_DEFAULT_QUOTA_MB)."),
    )
    used_bytes = models.BigIntegerField(_("used (bytes)"), default=0, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(used_bytes__gte=0), name="userquota_used_nonnegative"
            ),
        ]

    def __str__(self) -> str:
        return f"quota of {self.user}"

    @property
    def effective_limit_bytes(self) -> int:
        limit_mb = self.limit_mb
        if limit_mb is None:
            limit_mb = settings.WEBMAIL_DEFAULT_QUOTA_MB
        return limit_mb * 1024 * 1024
