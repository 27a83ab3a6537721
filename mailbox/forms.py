"""Forms of the browser UI."""

from __future__ import annotations

import ipaddress
import re

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from accounts.models import (
    DEFAULT_PORTS,
    SMTP_DEFAULT_PORTS,
    AccountKind,
    MailAccount,
    Security,
    User,
)
from accounts.servers import ServerSettings
from accounts.services import AccountOptions
from mailbox.autoconfig import Suggestion
from mailbox.errors import ServerProblem
from mailbox.sources import ListQuery, SearchField, SortKey

# A DNS name (labels of letters, digits and hyphens) or an IP literal.
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$"
)


def clean_host(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:  # an IPv6 literal
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValidationError(_("This is not a valid host name.")) from None
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError(_("This is not a valid host name.")) from None
    if not _HOST_RE.match(host):
        raise ValidationError(_("This is not a valid host name."))
    return host


class HostField(forms.CharField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_length=253, **kwargs)  # type: ignore[arg-type]

    def clean(self, value: str) -> str:
        value = super().clean(value)
        return clean_host(value) if value else value


# The special uses a user may assign to folders of an IMAP account.
SPECIAL_FOLDER_USES = ("sent", "drafts", "trash", "junk", "archive")


class SetupAssistantForm(forms.Form):
    """Step one of adding an account: the address, and IMAP or POP3."""

    email = forms.EmailField(label=_("Your e-mail address"))
    kind = forms.ChoiceField(
        label=_("Protocol"),
        choices=AccountKind.choices,
        widget=forms.RadioSelect,
        initial=AccountKind.IMAP,
    )

    def initial_for(self, found: Suggestion | None) -> dict[str, object]:
        """The account form's initial values from what the assistant found."""
        email = self.cleaned_data["email"]
        kind = self.cleaned_data["kind"]
        initial: dict[str, object] = {"email": email, "kind": kind}
        if found is None:
            return initial
        incoming = found.imap if kind == AccountKind.IMAP else found.pop3
        if incoming is not None:
            initial.update(incoming.as_fields())
            if incoming.username == email:
                initial["username"] = ""  # the form's default: the address
        if found.smtp is not None:
            initial.update(found.smtp.as_smtp_fields())
            same = (email, incoming.username if incoming else None)
            if found.smtp.username in same:
                initial["smtp_username"] = ""
        return initial


class MailAccountForm(forms.Form):
    """Add or edit a mail account. The login is tested before anything is saved."""

    kind = forms.ChoiceField(
        label=_("Protocol"),
        choices=AccountKind.choices,
        widget=forms.RadioSelect,
        initial=AccountKind.IMAP,
    )
    email = forms.EmailField(label=_("E-mail address"))
    label = forms.CharField(
        label=_("Name"),
        max_length=100,
        required=False,
        help_text=_("How the account is shown here; the e-mail address by default."),
    )
    host = HostField(label=_("Incoming server"))
    security = forms.ChoiceField(
        label=_("Security"), choices=Security.choices, initial=Security.SSL
    )
    port = forms.IntegerField(
        label=_("Port"),
        min_value=1,
        max_value=65535,
        required=False,
        help_text=_("Empty: the usual port for the protocol and security."),
    )
    allow_unencrypted = forms.BooleanField(
        label=_(
            "I understand that without encryption my password and my mail cross "
            "the network in clear, readable by anyone on the way."
        ),
        required=False,
    )
    username = forms.CharField(
        label=_("User name"),
        max_length=255,
        required=False,
        help_text=_("Empty: the e-mail address."),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(render_value=False),
    )
    leave_on_server = forms.BooleanField(
        label=_("Leave a copy of each message on the POP3 server"),
        required=False,
        initial=True,
    )
    check_interval_minutes = forms.IntegerField(
        label=_("Check for new mail every (minutes)"),
        min_value=5,
        max_value=24 * 60,
        initial=15,
    )
    remove_after_days = forms.IntegerField(
        label=_("Remove from the server after (days)"),
        min_value=1,
        max_value=3650,
        required=False,
        help_text=_(
            "Only with a copy left on the server: the copy is removed this many "
            "days after the import. Empty: it stays there."
        ),
    )
    import_target = forms.ModelChoiceField(
        label=_("Import into"),
        queryset=MailAccount.objects.none(),
        required=False,
        empty_label=_("This webmail's store"),
    )
    import_folder = forms.CharField(
        label=_("Folder"),
        max_length=1000,
        required=False,
        help_text=_(
            "Empty: the Inbox. A folder that does not exist yet is created "
            "(“Work” or “Archive/Work” in the store, “INBOX” or a folder name "
            "in an IMAP account)."
        ),
    )
    # IMAP: the folder for each special use, where the server does not say.
    folder_sent = forms.CharField(label=_("Sent"), max_length=1000, required=False)
    folder_drafts = forms.CharField(label=_("Drafts"), max_length=1000, required=False)
    folder_trash = forms.CharField(label=_("Trash"), max_length=1000, required=False)
    folder_junk = forms.CharField(label=_("Junk"), max_length=1000, required=False)
    folder_archive = forms.CharField(
        label=_("Archive"), max_length=1000, required=False
    )
    smtp_host = HostField(label=_("Outgoing server (SMTP)"), required=False)
    smtp_security = forms.ChoiceField(
        label=_("SMTP security"), choices=Security.choices, initial=Security.STARTTLS
    )
    smtp_port = forms.IntegerField(
        label=_("SMTP port"), min_value=1, max_value=65535, required=False
    )
    smtp_username = forms.CharField(
        label=_("SMTP user name"),
        max_length=255,
        required=False,
        help_text=_("Empty: the incoming server's user name."),
    )
    smtp_password = forms.CharField(
        label=_("SMTP password"),
        strip=False,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Empty: the incoming server's password."),
    )

    def __init__(
        self,
        *args: object,
        user: User,
        account: MailAccount | None = None,
        **kwargs,
    ):
        self.user = user
        self.account = account
        if account is not None:
            kwargs.setdefault("initial", _initial_of(account))
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # The user's active IMAP accounts, and the current target in any case
        # (saving the other settings must not fail on it).
        active = Q(is_active=True)
        if account is not None and account.import_imap_account_id is not None:
            active |= Q(pk=account.import_imap_account_id)
        targets = MailAccount.objects.filter(active, user=user, kind=AccountKind.IMAP)
        if account is not None:
            targets = targets.exclude(pk=account.pk)
        self.fields["import_target"].queryset = targets  # type: ignore[attr-defined]
        if account is not None:
            # Changing the protocol would change where the mail lives.
            self.fields["kind"].disabled = True
            self.fields["password"].required = False
            self.fields["password"].help_text = _(
                "Leave empty to keep the current password."
            )
            if account.smtp_password_encrypted:
                self.fields["smtp_password"].help_text = _(
                    "Leave empty to keep the current SMTP password."
                )
        if account is not None and account.uses_oauth:
            # Connected with the provider: its tokens, no passwords to give.
            for name in ("password", "smtp_password"):
                self.fields[name].disabled = True
                self.fields[name].required = False
                self.fields[name].help_text = _(
                    "Connected with the provider: no password is needed."
                )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        clear_in = data.get("security") == Security.NONE
        clear_out = data.get("smtp_host") and data.get("smtp_security") == Security.NONE
        if (clear_in or clear_out) and not data.get("allow_unencrypted"):
            self.add_error(
                "allow_unencrypted",
                _("Confirm that you want to send your password without encryption."),
            )
        folder = (data.get("import_folder") or "").strip()
        if any(ord(c) < 32 or ord(c) == 127 for c in folder):
            self.add_error("import_folder", _("This is not a valid folder name."))
        data["import_folder"] = folder
        for use in SPECIAL_FOLDER_USES:
            name = (data.get(f"folder_{use}") or "").strip()
            if any(ord(c) < 32 or ord(c) == 127 for c in name):
                self.add_error(f"folder_{use}", _("This is not a valid folder name."))
            data[f"folder_{use}"] = name
        return data

    # What the services need, once the form is valid.
    def options(self) -> AccountOptions:
        d = self.cleaned_data
        pop = d["kind"] == AccountKind.POP3
        target = d["import_target"] if pop else None
        return AccountOptions(
            label=d["label"] or d["email"],
            email=d["email"],
            leave_on_server=d["leave_on_server"],
            check_interval_minutes=d["check_interval_minutes"],
            # A removal delay means nothing when no copy stays on the server.
            remove_after_days=(
                d["remove_after_days"] if pop and d["leave_on_server"] else None
            ),
            import_folder=d["import_folder"] if pop else "",
            import_imap_account_id=target.pk if target is not None else None,
            special_folders=(
                {use: d[f"folder_{use}"] for use in SPECIAL_FOLDER_USES}
                if not pop
                else {}
            ),
        )

    def server(self) -> ServerSettings:
        d = self.cleaned_data
        kind = AccountKind(d["kind"])
        security = Security(d["security"])
        return ServerSettings(
            host=d["host"],
            port=d["port"] or DEFAULT_PORTS[(kind, security)],
            security=security,
            username=d["username"] or d["email"],
        )

    def smtp(self) -> ServerSettings | None:
        d = self.cleaned_data
        if not d["smtp_host"]:
            return None
        security = Security(d["smtp_security"])
        return ServerSettings(
            host=d["smtp_host"],
            port=d["smtp_port"] or SMTP_DEFAULT_PORTS[security],
            security=security,
            username=d["smtp_username"] or d["username"] or d["email"],
        )

    def login_failed(self, problem: ServerProblem) -> str:
        """The form's error when the login test failed: where, why, nothing saved."""
        server = self.server()
        return _("%(host)s:%(port)s — %(message)s Nothing was saved.") % {
            "host": server.host,
            "port": server.port,
            "message": problem.message,
        }

    def smtp_secret(self) -> str | None:
        """The SMTP password typed; None means keep the stored one (edit)."""
        typed = self.cleaned_data["smtp_password"]
        if typed:
            return typed
        if self.account is not None and self.account.smtp_password_encrypted:
            return None
        return self.cleaned_data["password"] or None


def _initial_of(account: MailAccount) -> dict[str, object]:
    return {
        "kind": account.kind,
        "email": account.email,
        "label": account.label,
        "host": account.host,
        "security": account.security,
        "port": account.port,
        "allow_unencrypted": account.security == Security.NONE,
        "username": account.username,
        "leave_on_server": account.leave_on_server,
        "check_interval_minutes": account.check_interval_minutes,
        "remove_after_days": account.remove_after_days,
        "import_target": account.import_imap_account_id,
        "import_folder": account.import_folder,
        "smtp_host": account.smtp_host,
        "smtp_security": account.smtp_security,
        "smtp_port": account.smtp_port,
        "smtp_username": account.smtp_username,
        **{
            f"folder_{use}": account.special_folders.get(use, "")
            for use in SPECIAL_FOLDER_USES
        },
    }


# --- reading mail ---------------------------------------------------------------

_PART_RE = re.compile(r"^[1-9][0-9]{0,3}(\.[1-9][0-9]{0,3}){0,30}$")


class FolderNameField(forms.CharField):
    """A folder's full server name: any text but control characters."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("max_length", 1000)
        super().__init__(strip=False, **kwargs)  # type: ignore[arg-type]

    def clean(self, value: str) -> str:
        value = super().clean(value)
        if value and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValidationError(_("This is not a valid folder name."))
        return value


class ListParamsForm(forms.Form):
    """The folder and the list options carried in a list URL."""

    folder = FolderNameField(required=False)
    page = forms.IntegerField(min_value=1, max_value=1_000_000, required=False)
    sort = forms.ChoiceField(
        choices=[(k.value, k.value) for k in SortKey], required=False
    )
    order = forms.ChoiceField(
        choices=[("desc", "desc"), ("asc", "asc")], required=False
    )
    q = forms.CharField(max_length=200, required=False)
    field = forms.ChoiceField(
        choices=[(k.value, k.value) for k in SearchField], required=False
    )
    unread = forms.BooleanField(required=False)
    flagged = forms.BooleanField(required=False)

    def clean_folder(self) -> str:
        return self.cleaned_data["folder"] or "INBOX"

    def query(self) -> ListQuery:
        d = self.cleaned_data
        return ListQuery(
            page=d["page"] or 1,
            sort=SortKey(d["sort"] or SortKey.DATE),
            reverse=d["order"] != "asc",
            text=d["q"].strip(),
            field=SearchField(d["field"] or SearchField.ALL),
            unread_only=d["unread"],
            flagged_only=d["flagged"],
        )

    def as_query_string(self, **changes: object) -> str:
        """The list options (not the folder, nor the page), for links that keep them."""
        d = dict(self.cleaned_data)
        d.pop("folder", None)
        d.pop("page", None)
        d.update(changes)
        return urlencode({k: ("1" if v is True else v) for k, v in d.items() if v})


class MessageRefForm(forms.Form):
    """One message: folder, validity (UIDVALIDITY) and uid; optionally a part."""

    folder = FolderNameField()
    v = forms.IntegerField(min_value=0, max_value=2**32 - 1)
    uid = forms.IntegerField(min_value=1, max_value=2**32 - 1)
    part = forms.RegexField(regex=_PART_RE, required=False)

    def key(self) -> tuple[str, int, int]:
        d = self.cleaned_data
        return d["folder"], d["uid"], d["v"]


class UidListField(forms.Field):
    widget = forms.MultipleHiddenInput

    def to_python(self, value: object) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        try:
            uids = sorted({int(v) for v in values})
        except (TypeError, ValueError):
            raise ValidationError(_("Invalid message selection.")) from None
        if any(not 1 <= uid < 2**32 for uid in uids) or len(uids) > 1000:
            raise ValidationError(_("Invalid message selection."))
        return uids


class BulkActionForm(forms.Form):
    ACTIONS = [
        ("read", _("Mark read")),
        ("unread", _("Mark unread")),
        ("flag", _("Flag")),
        ("unflag", _("Remove flag")),
        ("move", _("Move")),
        ("delete", _("Delete")),
    ]
    folder = FolderNameField(widget=forms.HiddenInput)
    validity = forms.IntegerField(
        min_value=0, max_value=2**32 - 1, widget=forms.HiddenInput
    )
    uids = UidListField(required=True)
    action = forms.ChoiceField(choices=ACTIONS)
    to_folder = FolderNameField(required=False)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("action") == "move" and not data.get("to_folder"):
            self.add_error("to_folder", _("Choose the folder to move to."))
        return data


class FolderForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("create", "create"), ("rename", "rename"), ("delete", "delete")]
    )
    folder = FolderNameField(required=False)
    name = forms.CharField(max_length=100, required=False)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        action = data.get("action")
        if action in ("create", "rename") and not (data.get("name") or "").strip():
            self.add_error("name", _("Give the folder a name."))
        if action in ("rename", "delete") and not data.get("folder"):
            self.add_error("folder", _("Choose a folder."))
        return data
