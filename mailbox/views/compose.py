"""Writing mail in the browser: compose, reply, forward, drafts, the outbox.

Works without JavaScript (every action is a button of one form); with it,
``static/js/compose.js`` autosaves the draft every 30 s and completes addresses.
Uploads are written to temporary files as they arrive and skipped past the
per-message size limit, so a too-large file never fills memory or the disk and
the rest of what was typed is kept.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import MailAccount
from mailbox.access import account_for_user
from mailbox.compose import build, services
from mailbox.compose.models import OutgoingMessage
from mailbox.compose.selectors import outgoing_get, outgoing_list
from mailbox.compose.uploads import CappedUploadHandler, cap_uploads
from mailbox.forms import MessageRefForm
from mailbox.forms_compose import ComposeForm, IdentityForm, RespondForm
from mailbox.views.mail import mail_errors

logger = logging.getLogger(__name__)

RECENT_CORRESPONDENTS = 50
_ADDRESS_FIELDS = ("to", "cc", "bcc")
# How often the page's script saves a changed draft.
AUTOSAVE_SECONDS = 30


def _correspondents(request: HttpRequest) -> list:
    return list(
        services.correspondent_list(user=request.user, limit=RECENT_CORRESPONDENTS)
    )


def _render(
    request: HttpRequest,
    form: ComposeForm,
    message: OutgoingMessage | None,
    account: MailAccount,
    *,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {
        "form": form,
        "outgoing": message,
        "account": account,
        "attachments": list(message.attachments.all()) if message else [],
        "correspondents": _correspondents(request),
        "smtp_missing": services.smtp_missing(account),
        "limit_mb": services.attachment_limit_bytes() // (1024 * 1024),
        "autosave_url": reverse("mailbox:compose_autosave"),
        "autosave_seconds": AUTOSAVE_SECONDS,
    }
    return render(request, "mailbox/compose.html", context, status=status)


@login_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def compose_new(request: HttpRequest, account_id: int) -> HttpResponse:
    """A new message from one of the user's accounts."""
    account = account_for_user(request.user, account_id)
    if request.method == "POST":
        handler = cap_uploads(request)
        return csrf_protect(_post)(request, None, account, handler)
    identity = services.identity_get(account=account)
    initial = {
        "account": account.pk,
        "to": request.GET.get("to", "")[:1000],
        "body": build.with_signature("", identity.signature),
    }
    form = ComposeForm(user=request.user, initial=initial)
    return _render(request, form, None, account)


@login_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def compose_edit(request: HttpRequest, message_id: int) -> HttpResponse:
    """Go on writing a draft (or a message that could not be sent)."""
    message = outgoing_get(user=request.user, message_id=message_id)
    if message.is_pending or message.state == OutgoingMessage.State.SENT:
        return redirect("mailbox:compose_status", message.pk)
    if request.method == "POST":
        handler = cap_uploads(request, services.attachments_total(message))
        return csrf_protect(_post)(request, message, message.account, handler)
    form = ComposeForm(user=request.user, initial=ComposeForm.initial_of(message))
    return _render(request, form, message, message.account)


def _post(
    request: HttpRequest,
    message: OutgoingMessage | None,
    account: MailAccount,
    handler: CappedUploadHandler,
) -> HttpResponse:
    form = ComposeForm(request.POST, user=request.user)
    action = request.POST.get("action", "save")
    if action == "discard":
        if message is not None:
            services.outgoing_delete(message=message)
        messages.success(request, _("The draft was discarded."))
        return redirect("mailbox:message_list", account.pk)
    if not form.is_valid():
        return _render(request, form, message, account, status=400)
    chosen = form.cleaned_data["account"]
    try:
        if message is None:
            message = services.draft_create(
                user=request.user,
                account=chosen,
                fields=form.as_fields(),
                signature=False,
            )
        else:
            message = services.draft_update(
                message=message, account=chosen, fields=form.as_fields()
            )
        for upload in request.FILES.getlist("attachments"):
            services.attachment_add(message=message, upload=upload)
        if handler.refused:
            raise services.AttachmentTooLarge
        if action.startswith("remove:"):
            attachment_id = action.partition(":")[2]
            if attachment_id.isdigit():
                services.attachment_remove(
                    message=message, attachment_id=int(attachment_id)
                )
        elif action == "send":
            services.message_queue(message=message)
            return redirect("mailbox:compose_status", message.pk)
        elif action == "save":
            warning = services.draft_store_remote(message=message)
            if warning:
                messages.warning(request, warning)
            else:
                messages.success(request, _("Draft saved."))
    except services.ComposeError as exc:
        for field, text in exc.errors.items():
            form.add_error(field if field in form.fields else None, text)
        return _render(request, form, message, chosen, status=400)
    return redirect("mailbox:compose_edit", message.pk)


@login_required
@require_POST
def compose_autosave(request: HttpRequest) -> JsonResponse:
    """Save the draft being typed (no files); JSON with its id and edit URL."""
    form = ComposeForm(request.POST, user=request.user)
    message = None
    raw_id = request.POST.get("message", "")
    if raw_id:
        if not raw_id.isdigit():
            return JsonResponse({"errors": {"message": _("Bad draft id.")}}, status=400)
        message = outgoing_get(user=request.user, message_id=int(raw_id))
    # Addresses being typed may not parse yet: the draft is saved anyway.
    if not form.is_valid() and not set(form.errors) <= set(_ADDRESS_FIELDS):
        return JsonResponse({"errors": _errors(form)}, status=400)
    fields = services.Fields(
        **{
            name: form.cleaned_data.get(name, request.POST.get(name, "")[:10_000])
            for name in (*_ADDRESS_FIELDS, "subject", "body")
        }
    )
    try:
        if message is None:
            message = services.draft_create(
                user=request.user,
                account=form.cleaned_data["account"],
                fields=fields,
                signature=False,
                lenient=True,
            )
        else:
            message = services.draft_update(
                message=message,
                account=form.cleaned_data["account"],
                fields=fields,
                lenient=True,
            )
    except services.ComposeError as exc:
        return JsonResponse({"errors": exc.errors}, status=400)
    warning = services.draft_store_remote(message=message)
    return JsonResponse(
        {
            "id": message.pk,
            "edit_url": reverse("mailbox:compose_edit", args=[message.pk]),
            "warning": warning,
        }
    )


def _errors(form: ComposeForm) -> dict[str, str]:
    return {name: " ".join(str(e) for e in errs) for name, errs in form.errors.items()}


@login_required
@require_GET
def compose_status(request: HttpRequest, message_id: int) -> HttpResponse:
    """Sending…, Sent, or the server's refusal with a way back to the draft."""
    message = outgoing_get(user=request.user, message_id=message_id)
    if request.GET.get("format") == "json":
        return JsonResponse(
            {
                "state": message.state,
                "state_label": str(message.get_state_display()),
                "error": message.last_error,
            }
        )
    return render(
        request,
        "mailbox/compose_status.html",
        {"outgoing": message, "account": message.account},
    )


@login_required
@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    """The user's drafts, waiting and failed messages, and the latest sent ones."""
    rows = outgoing_list(user=request.user)[:200]
    return render(request, "mailbox/compose_outbox.html", {"rows": rows})


@login_required
@require_POST
@mail_errors
def compose_respond(request: HttpRequest, account_id: int) -> HttpResponse:
    """Reply, reply all or forward a message: a new draft, opened for editing."""
    account = account_for_user(request.user, account_id)
    form = RespondForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Bad message reference."))
    folder, uid, validity = form.key()
    try:
        message = services.respond_start(
            user=request.user,
            account=account,
            folder=folder,
            validity=validity,
            uid=uid,
            kind=form.cleaned_data["kind"],
        )
    except services.AttachmentTooLarge as exc:
        messages.error(request, exc.errors["attachments"])
        return redirect("mailbox:message_list", account.pk)
    return redirect("mailbox:compose_edit", message.pk)


@login_required
@require_POST
@mail_errors
def draft_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    """Open a message of the Drafts folder in the compose form."""
    account = account_for_user(request.user, account_id)
    form = MessageRefForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Bad message reference."))
    folder, uid, validity = form.key()
    try:
        message = services.draft_open(
            user=request.user,
            account=account,
            folder=folder,
            validity=validity,
            uid=uid,
        )
    except services.AttachmentTooLarge as exc:
        messages.error(request, exc.errors["attachments"])
        return redirect("mailbox:message_list", account.pk)
    return redirect("mailbox:compose_edit", message.pk)


@login_required
@require_GET
def correspondents(request: HttpRequest) -> JsonResponse:
    """Recent correspondents matching ``q`` (for address completion)."""
    query = request.GET.get("q", "")[:100]
    rows = services.correspondent_list(user=request.user, query=query, limit=10)
    return JsonResponse(
        {"results": [{"name": r.name, "email": r.email, "text": str(r)} for r in rows]}
    )


@login_required
@require_http_methods(["GET", "POST"])
def identity_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    """The name shown beside the account's address, and its signature."""
    account = account_for_user(request.user, account_id)
    identity = services.identity_get(account=account)
    form = IdentityForm(
        request.POST or None,
        initial={
            "display_name": identity.display_name,
            "signature": identity.signature,
        },
    )
    if request.method == "POST" and form.is_valid():
        services.identity_update(account=account, **form.cleaned_data)
        messages.success(request, _("Name and signature saved."))
        return redirect("mailbox:identity_edit", account.pk)
    return render(
        request, "mailbox/compose_identity.html", {"form": form, "account": account}
    )
