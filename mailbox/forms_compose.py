"""Forms of the compose page, the identity (name and signature) and replies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount
from mailbox.compose import build
from mailbox.compose.models import OutgoingMessage
from mailbox.compose.services import Fields
from mailbox.forms import MessageRefForm

if TYPE_CHECKING:
    from accounts.models import User

_ADDRESS_ATTRS = {
    "list": "correspondents",
    "autocomplete": "off",
    "spellcheck": "false",
    "data-addresses": "",
}


def _address_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=10_000,
        strip=False,
        widget=forms.TextInput(attrs=_ADDRESS_ATTRS),
        help_text=_("Separate addresses with commas."),
    )


class ComposeForm(forms.Form):
    account = forms.ModelChoiceField(
        label=_("From"), queryset=MailAccount.objects.none(), empty_label=None
    )
    to = _address_field(_("To"))
    cc = _address_field(_("Cc"))
    bcc = _address_field(_("Bcc"))
    subject = forms.CharField(
        label=_("Subject"), required=False, max_length=build.MAX_SUBJECT, strip=False
    )
    body = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=1_000_000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 18}),
    )

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["account"].queryset = MailAccount.objects.filter(  # type: ignore[attr-defined]
            user=user, is_active=True
        )
        self.fields["account"].label_from_instance = (  # type: ignore[attr-defined]
            lambda account: f"{account.label} <{account.email}>"
        )

    def _addresses(self, name: str) -> str:
        value = self.cleaned_data.get(name, "")
        try:
            mailboxes = build.parse_addresses(value)
        except build.AddressError as exc:
            raise ValidationError(str(exc)) from exc
        return build.format_addresses(mailboxes)

    def clean_to(self) -> str:
        return self._addresses("to")

    def clean_cc(self) -> str:
        return self._addresses("cc")

    def clean_bcc(self) -> str:
        return self._addresses("bcc")

    def clean_subject(self) -> str:
        value = self.cleaned_data.get("subject", "")
        try:
            build.check_header_text(value)
        except build.AddressError as exc:
            raise ValidationError(_("The subject must be one line.")) from exc
        return value.strip()

    def clean_body(self) -> str:
        return self.cleaned_data.get("body", "").replace("\r\n", "\n")

    def as_fields(self) -> Fields:
        d = self.cleaned_data
        return Fields(d["to"], d["cc"], d["bcc"], d["subject"], d["body"])

    @classmethod
    def initial_of(cls, message: OutgoingMessage) -> dict[str, object]:
        return {
            "account": message.account_id,
            "to": message.to,
            "cc": message.cc,
            "bcc": message.bcc,
            "subject": message.subject,
            "body": message.body,
        }


class RespondForm(MessageRefForm):
    kind = forms.ChoiceField(
        choices=[
            (k.value, k.label)
            for k in OutgoingMessage.Kind
            if k != OutgoingMessage.Kind.NEW
        ]
    )


class IdentityForm(forms.Form):
    display_name = forms.CharField(
        label=_("Your name"),
        required=False,
        max_length=100,
        help_text=_("Shown beside your address in the mail you send."),
    )
    signature = forms.CharField(
        label=_("Signature"),
        required=False,
        max_length=2000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Added under new messages, after a “-- ” line."),
    )

    def clean_display_name(self) -> str:
        value = self.cleaned_data.get("display_name", "")
        try:
            build.check_header_text(value)
        except build.AddressError as exc:
            raise ValidationError(str(exc)) from exc
        return value.strip()
