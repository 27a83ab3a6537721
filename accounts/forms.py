from __future__ import annotations

import zoneinfo

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import User


def _zone_choices() -> list[tuple[str, str]]:
    zones = sorted(zoneinfo.available_timezones())
    return [("", _("Server time zone")), *((z, z.replace("_", " ")) for z in zones)]


class PreferencesForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False, choices=())

    class Meta:
        model = User
        fields = ["time_zone", "mark_read_on_open"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["time_zone"].choices = _zone_choices()
