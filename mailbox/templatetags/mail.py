"""Template helpers for mail lists."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import date_format, time_format

register = template.Library()


@register.filter
def mail_date(value: datetime | None) -> str:
    """Today: the time; this year: day and month; older: the short date."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    today = timezone.localdate()
    if local.date() == today:
        return time_format(local, "TIME_FORMAT")
    if local.year == today.year:
        return date_format(local, "MONTH_DAY_FORMAT")
    return date_format(local, "SHORT_DATE_FORMAT")
