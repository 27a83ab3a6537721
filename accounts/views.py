"""The user's own settings (sign-in pages are django-allauth's)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django.views.i18n import set_language

from accounts.forms import LanguageForm, PreferencesForm


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # The confirmation already speaks the language just chosen.
        translation.activate(
            user.language or translation.get_language_from_request(request)
        )
        messages.success(request, _("Your preferences are saved."))
        response = redirect("accounts:preferences")
        _remember_language(response, user.language)
        return response
    return render(request, "accounts/preferences.html", {"form": form})


@login_required
@require_POST
def language(request: HttpRequest) -> HttpResponse:
    """The footer's language switcher, signed in: also saves the preference.

    Then behaves as Django's set_language (cookie, redirect to a safe ``next``).
    """
    form = LanguageForm(request.POST, instance=request.user)
    if form.is_valid() and form.cleaned_data["language"]:
        form.save()
    return set_language(request)


def _remember_language(response: HttpResponse, code: str) -> None:
    """Keep the choice after sign-out in the language cookie; none: the browser's."""
    if code:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            code,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
    else:
        response.delete_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
