"""Browser views. Each parses input, calls one gate and a service, renders."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import AccountKind
from accounts.selectors import mail_account_get, mail_account_list
from accounts.services import mail_account_delete
from mailbox import autoconfig, oauth, setup, tasks
from mailbox.errors import ServerProblem
from mailbox.forms import MailAccountForm, SetupAssistantForm
from mailbox.store.models import ImportJob


@login_required
@require_GET
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = list(mail_account_list(user=request.user))
    for account in accounts:
        # Few accounts per user: one small query each for the latest import.
        account.latest_job = (
            account.import_jobs.first() if account.is_pop else None  # type: ignore[attr-defined]
        )
    context = {"accounts": accounts, "oauth_providers": oauth.configured_providers()}
    return render(request, "mailbox/account_list.html", context)


@login_required
@require_POST
def account_connect(request: HttpRequest, provider: str) -> HttpResponse:
    """Connect (or reconnect) a Gmail or Microsoft mailbox through OAuth2."""
    if provider not in {p.id for p in oauth.configured_providers()}:
        raise Http404("provider not configured")
    kind = request.POST.get("kind", AccountKind.IMAP)
    if kind not in AccountKind.values:
        kind = AccountKind.IMAP
    return oauth.connect_start(request, provider, kind)


@login_required
@require_http_methods(["GET", "POST"])
def account_add(request: HttpRequest) -> HttpResponse:
    """Add an account: the assistant fills the settings in, the user checks them.

    ``GET ?email=…&kind=…`` runs the assistant (see mailbox.autoconfig) and shows
    the form filled in; every field stays editable.
    """
    assistant = SetupAssistantForm(
        request.GET if "email" in request.GET else None, auto_id="find_%s"
    )
    found, initial = None, None
    if assistant.is_valid():
        try:
            found = autoconfig.suggest(assistant.cleaned_data["email"])
        except ValueError:  # a domain that IDNA refuses: nothing to look up
            found = None
        initial = assistant.initial_for(found)
    form = MailAccountForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            account = setup.account_add(
                user=request.user,
                kind=form.cleaned_data["kind"],
                options=form.options(),
                server=form.server(),
                password=form.cleaned_data["password"],
                smtp=form.smtp(),
                smtp_password=form.smtp_secret() or "",
            )
        except ServerProblem as problem:
            form.add_error(None, form.login_failed(problem))
        except ValidationError as error:
            # A rule checked again on save (say, the import target was removed
            # meanwhile): shown on the form, nothing saved.
            form.add_error(None, error.messages)
        else:
            messages.success(
                request,
                _("The account “%(label)s” is added.") % {"label": account.label},
            )
            return redirect("mailbox:account_list")
    context = {
        "form": form,
        "account": None,
        "assistant": assistant,
        "found": found,
        "looked_up": assistant.is_bound and assistant.is_valid(),
        "oauth_providers": oauth.configured_providers(),
    }
    return render(request, "mailbox/account_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def account_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    account = mail_account_get(user=request.user, account_id=account_id)
    form = MailAccountForm(request.POST or None, user=request.user, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            setup.account_change(
                account=account,
                options=form.options(),
                server=form.server(),
                password=form.cleaned_data["password"] or None,
                smtp=form.smtp(),
                smtp_password=form.smtp_secret(),
            )
        except ServerProblem as problem:
            form.add_error(None, form.login_failed(problem))
        except ValidationError as error:
            # A rule checked again on save (say, the import target was removed
            # meanwhile): shown on the form, nothing saved.
            form.add_error(None, error.messages)
        else:
            messages.success(request, _("The account is saved."))
            return redirect("mailbox:account_list")
    return render(
        request, "mailbox/account_form.html", {"form": form, "account": account}
    )


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest, account_id: int) -> HttpResponse:
    account = mail_account_get(user=request.user, account_id=account_id)
    if request.method == "POST":
        label = account.label
        mail_account_delete(account=account)
        messages.success(
            request, _("The account “%(label)s” is removed.") % {"label": label}
        )
        return redirect("mailbox:account_list")
    return render(request, "mailbox/account_confirm_delete.html", {"account": account})


@login_required
@require_POST
def account_import_now(request: HttpRequest, account_id: int) -> HttpResponse:
    """Start an import of a POP3 account now; show its progress."""
    account = mail_account_get(user=request.user, account_id=account_id)
    if not account.is_pop:
        raise Http404("not a POP3 account")
    with transaction.atomic():
        job_id = tasks.import_start(account=account, trigger=ImportJob.Trigger.MANUAL)
    return redirect("mailbox:import_job", account.pk, job_id)


@login_required
@require_GET
def import_job(request: HttpRequest, account_id: int, job_id: int) -> HttpResponse:
    """One import's progress; the page refreshes itself while the import runs."""
    account = mail_account_get(user=request.user, account_id=account_id)
    job = get_object_or_404(ImportJob, pk=job_id, account=account)
    return render(request, "mailbox/import_job.html", {"account": account, "job": job})
