from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import User


def _zone_choices() -> list[tuple[str, str]]:
    zones = sorted(zoneinfo.available_timezones())
    return [("", _("Server time zone")), *((z, z.replace("_", " ")) for z in zones)]


def _language_choices() -> list[tuple[str, str]]:
    # Each language is named in itself ("Français"), as language menus do.
    return [("", _("The browser's language")), *settings.LANGUAGES]


class PreferencesForm(forms.ModelForm):
    language = forms.ChoiceField(label=_("Language"), required=False, choices=())
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False, choices=())

    class Meta:
        model = User
        fields = ["language", "time_zone", "mark_read_on_open"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["language"].choices = _language_choices()
        self.fields["time_zone"].choices = _zone_choices()


class LanguageForm(forms.ModelForm):
    """The language switcher's one field (a language code of LANGUAGES)."""

    class Meta:
        model = User
        fields = ["language"]
