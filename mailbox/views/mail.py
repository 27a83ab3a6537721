"""Reading mail: folders, message lists (headers first), one message, its parts."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from accounts.models import MailAccount
from accounts.selectors import mail_account_list
from mailbox import capabilities, display, imageproxy, sanitize
from mailbox.access import account_for_user, source_of
from mailbox.errors import ServerProblem
from mailbox.forms import BulkActionForm, FolderForm, ListParamsForm, MessageRefForm
from mailbox.imap.pool import PoolBusy
from mailbox.models import TrustedSender
from mailbox.sources import (
    FolderChanged,
    ListQuery,
    MailSource,
    MessageGone,
    MessageSummary,
    SpecialUse,
)
from mailbox.templatetags.mail import mail_date

logger = logging.getLogger(__name__)


def mail_errors(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """Turn mail-server trouble into a page that says what failed, never a 500."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, account_id: int, *args: Any, **kwargs: Any):
        try:
            return view(request, account_id, *args, **kwargs)
        except (ServerProblem, PoolBusy) as problem:
            account = account_for_user(request.user, account_id)
            logger.info("account %s: %s", account.pk, problem)
            return render(
                request,
                "mailbox/server_problem.html",
                {"account": account, "message": problem.message},
                status=503,
            )
        except FolderChanged:
            folder = request.GET.get("folder") or request.POST.get("folder") or "INBOX"
            if view.__name__ != "message_list":
                messages.warning(
                    request,
                    _("The folder changed on the server; the list is reloaded."),
                )
                return redirect(_list_url(account_id, folder))
            # The list itself cannot be opened: the folder is gone (deleted by
            # another mail client, say). Reloading it would loop.
            account = account_for_user(request.user, account_id)
            logger.info("account %s: a listed folder is gone", account.pk)
            gone = _("The folder “%(name)s” no longer exists on the server.") % {
                "name": folder
            }
            if folder.upper() == "INBOX":
                return render(
                    request,
                    "mailbox/server_problem.html",
                    {"account": account, "message": gone},
                    status=503,
                )
            messages.warning(request, gone)
            return redirect(_list_url(account_id, "INBOX"))
        except MessageGone:
            return render(
                request,
                "mailbox/message_gone.html",
                {"account": account_for_user(request.user, account_id)},
                status=404,
            )

    return wrapped


_USE_LABELS = {
    SpecialUse.INBOX: gettext_lazy("Inbox"),
    SpecialUse.DRAFTS: gettext_lazy("Drafts"),
    SpecialUse.SENT: gettext_lazy("Sent"),
    SpecialUse.ARCHIVE: gettext_lazy("Archive"),
    SpecialUse.JUNK: gettext_lazy("Junk"),
    SpecialUse.TRASH: gettext_lazy("Trash"),
}


def _folder_label(folders: list, name: str) -> str:
    """How a folder is called on screen: special folders by their role."""
    for folder in folders:
        if folder.name == name or (
            folder.special_use == SpecialUse.INBOX and name.upper() == "INBOX"
        ):
            if folder.special_use in _USE_LABELS:
                return str(_USE_LABELS[folder.special_use])
            return folder.display_name
    return name


@dataclass(frozen=True)
class ListRow:
    """One line of a message list, ready to print (rendering 50 is the hot path)."""

    uid: int
    href: str
    unread: bool
    flagged: bool
    answered: bool
    attachments: bool
    sender: str
    subject: str
    date_iso: str
    date_text: str
    size_text: str


def _rows(account_id: int, folder: str, page, list_query: str) -> list[ListRow]:
    base = (
        reverse("mailbox:message_view", args=[account_id])
        + "?"
        + urlencode({"folder": folder, "v": page.validity})
    )
    tail = "&" + list_query if list_query else ""
    printed = row_printer()
    return [
        ListRow(uid=m.uid, href=f"{base}&uid={m.uid}{tail}", **printed(m))
        for m in page.messages
    ]


def row_printer() -> Callable[[MessageSummary], dict[str, Any]]:
    """What a list line shows of a message (the words looked up once per list)."""
    no_sender, no_subject = _("(no sender)"), _("(no subject)")

    def printed(m: MessageSummary) -> dict[str, Any]:
        return {
            "unread": not m.seen,
            "flagged": m.flagged,
            "answered": m.answered,
            "attachments": m.has_attachments,
            "sender": m.from_[0].name or m.from_[0].email if m.from_ else no_sender,
            "subject": m.subject or no_subject,
            "date_iso": m.date.isoformat() if m.date else "",
            "date_text": mail_date(m.date),
            "size_text": filesizeformat(m.size),
        }

    return printed


def _list_url(account_id: int, folder: str, **params: object) -> str:
    query = urlencode({"folder": folder, **{k: v for k, v in params.items() if v}})
    return reverse("mailbox:message_list", args=[account_id]) + "?" + query


def _source(request: HttpRequest, account_id: int) -> tuple[MailAccount, MailSource]:
    account = account_for_user(request.user, account_id)
    return account, source_of(account)


def _sidebar(request: HttpRequest, account: MailAccount, source: MailSource) -> dict:
    # Unread counts only where the folder list brings them (IMAP LIST-STATUS,
    # the store): otherwise they cost one STATUS round trip per folder, and the
    # page's script gets them from mailbox:folder_status after the page shows.
    # Dovecot 2.3, loopback, 36 folders: LIST-STATUS 5.3 ms, LIST alone 1.1-1.9
    # ms, LIST + 31 STATUS 10.7-11.1 ms; on a network each STATUS adds a round
    # trip (31 x 30 ms is almost a second of a page).
    return {
        "account": account,
        "accounts": mail_account_list(user=request.user).filter(is_active=True),
        "folders": source.folders(counts=None),
        "quota": source.quota(),
        # A POP3 account's import shows where its mail is read, as on the
        # accounts page (one small query).
        "import_job": account.import_jobs.first() if account.is_pop else None,
    }


@login_required
@require_GET
def mail_home(request: HttpRequest) -> HttpResponse:
    """All inboxes with two accounts or more, the inbox of a single one, or the
    page to add one."""
    active = list(mail_account_list(user=request.user).filter(is_active=True)[:2])
    if not active:
        return redirect("mailbox:account_list")
    if len(active) > 1:
        return redirect("mailbox:all_inboxes")
    return redirect(_list_url(active[0].pk, "INBOX"))


@login_required
@require_GET
@mail_errors
def message_list(request: HttpRequest, account_id: int) -> HttpResponse:
    account, source = _source(request, account_id)
    params = ListParamsForm(request.GET)
    if not params.is_valid():
        raise Http404("bad list parameters")
    folder = params.cleaned_data["folder"]
    query = params.query()
    page = source.messages(folder, query)
    context = _sidebar(request, account, source)
    context.update(
        {
            "folder": folder,
            "folder_label": _folder_label(context["folders"], folder),
            "page": page,
            "rows": _rows(account.pk, folder, page, params.as_query_string()),
            "params": params,
            "list_query": params.as_query_string(),
            "bulk_form": BulkActionForm(
                initial={"folder": folder, "validity": page.validity}
            ),
        }
    )
    return render(request, "mailbox/message_list.html", context)


def _message_ref(request: HttpRequest) -> MessageRefForm:
    ref = MessageRefForm(request.GET)
    if not ref.is_valid():
        raise Http404("bad message reference")
    return ref


@login_required
@require_GET
@mail_errors
def message_view(request: HttpRequest, account_id: int) -> HttpResponse:
    """One message, marked read on opening when the user wants that.

    ``?pane=1`` answers the article alone, for the list page's reading pane;
    ``?peek=1`` leaves the message unread (the script fetching the next one ahead).
    """
    account, source = _source(request, account_id)
    ref = _message_ref(request)
    folder, uid, validity = ref.key()
    pane = request.GET.get("pane") == "1"
    peek = request.GET.get("peek") == "1"
    message = source.message(
        folder,
        uid,
        validity=validity,
        mark_seen=request.user.mark_read_on_open and not peek,
    )
    parsed = message.parsed
    sender = parsed.from_[0].email if parsed.from_ else ""
    allow_remote = display.remote_allowed(request, sender)
    body = None
    if parsed.html is not None:
        body = display.sanitized_body(
            request, account, message, allow_remote=allow_remote
        )
    params = ListParamsForm(request.GET)
    query = params.query() if params.is_valid() else ListQuery()
    neighbours = source.neighbours(folder, uid, query, validity=validity)
    if pane:
        # The pane needs the folder names (Move to…), not their counts.
        context = {"account": account, "folders": source.folders(counts=False)}
    else:
        context = _sidebar(request, account, source)
    ref_query = urlencode({"folder": folder, "v": validity, "uid": uid})
    list_query = params.as_query_string() if params.is_valid() else ""
    tail = "&" + list_query if list_query else ""
    context.update(
        {
            "pane": pane,
            "self_url": reverse("mailbox:message_view", args=[account.pk])
            + "?"
            + ref_query
            + tail,
            "list_url": _list_url(account.pk, folder) + tail,
            "folder": folder,
            "message": message,
            "parsed": parsed,
            "sender": sender,
            "text_html": sanitize.text_to_html(parsed.text)
            if parsed.text is not None and parsed.html is None
            else None,
            "remote_blocked": bool(body and body.remote_blocked),
            "remote_hosts": body.remote_hosts if body else (),
            "allow_remote": allow_remote,
            "body_url": reverse("mailbox:message_body", args=[account.pk])
            + "?"
            + ref_query
            + ("&remote=1" if allow_remote else ""),
            "ref_query": ref_query,
            "list_query": list_query,
            "neighbours": neighbours,
            "has_attachments": any(not a.is_inline for a in parsed.attachments),
            "attached": [
                (nested, sanitize.text_to_html(nested.text) if nested.text else None)
                for nested in parsed.attached_messages
            ],
            "bulk_form": BulkActionForm(
                initial={"folder": folder, "validity": validity}
            ),
        }
    )
    if pane:
        return render(request, "mailbox/_message_article.html", context)
    return render(request, "mailbox/message_view.html", context)


@login_required
@require_GET
@xframe_options_sameorigin
@mail_errors
def message_body(request: HttpRequest, account_id: int) -> HttpResponse:
    """The sanitized HTML body alone, for the sandboxed iframe."""
    account, source = _source(request, account_id)
    ref = _message_ref(request).key()
    # The message page has just sanitized this body (its frame URL carries
    # remote=1 when remote content is allowed): serve that without a refetch.
    requested_remote = request.GET.get("remote") == "1"
    body = cache.get(
        display.sanitized_key(request, account, ref, allow_remote=requested_remote)
    )
    if body is None:
        folder, uid, validity = ref
        message = source.message(folder, uid, validity=validity, mark_seen=False)
        parsed = message.parsed
        sender = parsed.from_[0].email if parsed.from_ else ""
        body = display.sanitized_body(
            request,
            account,
            message,
            allow_remote=display.remote_allowed(request, sender),
        )
    response = render(request, "mailbox/message_body.html", {"body": body.html})
    response["Content-Security-Policy"] = display.BODY_CSP
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    # The body carries its own policy; the app-wide one must not replace it.
    response._csp_exempt = True  # type: ignore[attr-defined]
    return response


@login_required
@require_GET
@mail_errors
def attachment(request: HttpRequest, account_id: int) -> HttpResponseBase:
    """One part, streamed as a download."""
    _account, source = _source(request, account_id)
    ref = _message_ref(request)
    folder, uid, validity = ref.key()
    part_id = ref.cleaned_data["part"]
    if not part_id:
        raise Http404("no part")
    download = source.attachment(folder, uid, part_id, validity=validity)
    response = StreamingHttpResponse(
        download.chunks, content_type="application/octet-stream"
    )
    response["Content-Disposition"] = display.content_disposition(
        "attachment", download.info.filename
    )
    return display.as_inert_file(response, cache_control="private, no-store")


@require_GET
def inline_part(request: HttpRequest) -> HttpResponseBase:
    """An inline image of a mail body, through a signed URL (see capabilities)."""
    grant = capabilities.grant_from_token(request.GET.get("t", ""))
    if grant is None:
        raise Http404("bad or expired link")
    account = MailAccount.objects.filter(
        pk=grant.account_id, user_id=grant.user_id, is_active=True
    ).first()
    if account is None:
        raise Http404("no such account")
    try:
        download = source_of(account).attachment(
            grant.folder, grant.uid, grant.part_id, validity=grant.validity
        )
    except (ServerProblem, PoolBusy, FolderChanged, MessageGone) as exc:
        raise Http404("part unavailable") from exc
    if download.info.content_type not in imageproxy.IMAGE_TYPES:
        raise Http404("not an image")
    response = StreamingHttpResponse(
        download.chunks, content_type=download.info.content_type
    )
    response["Content-Disposition"] = display.content_disposition(
        "inline", download.info.filename
    )
    # Asked for by the sandboxed body frame, whose origin is opaque: no CORP.
    return display.as_inert_file(response, cache_control="private, max-age=3600")


@login_required
@require_GET
@mail_errors
def message_raw(request: HttpRequest, account_id: int) -> HttpResponseBase:
    """Show original: the raw source as text, or as a .eml download."""
    _account, source = _source(request, account_id)
    folder, uid, validity = _message_ref(request).key()
    chunks = source.raw(folder, uid, validity=validity)
    if request.GET.get("download") == "1":
        response = StreamingHttpResponse(chunks, content_type="message/rfc822")
        response["Content-Disposition"] = display.content_disposition(
            "attachment", f"message-{uid}.eml"
        )
    else:
        response = StreamingHttpResponse(
            chunks, content_type="text/plain; charset=utf-8"
        )
    return display.as_inert_file(response, cache_control="private, no-store")


@require_GET
def image_proxy(request: HttpRequest) -> HttpResponse:
    """A remote image of an allowed message, fetched by us (see imageproxy)."""
    try:
        image = imageproxy.fetch(imageproxy.url_from_token(request.GET.get("u", "")))
    except imageproxy.ImageRefused:
        return HttpResponse(status=404, content_type="text/plain")
    response = HttpResponse(image.data, content_type=image.content_type)
    return display.as_inert_file(response, cache_control="private, max-age=86400")


def _back(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@login_required
@require_POST
@mail_errors
def bulk_action(request: HttpRequest, account_id: int) -> HttpResponse:
    """Mark read/unread, flag/unflag, move or delete the selected messages."""
    _account, source = _source(request, account_id)
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose some messages and an action."))
        folder = request.POST.get("folder") or "INBOX"
        return redirect(_back(request, _list_url(account_id, folder)))
    data = form.cleaned_data
    folder, uids, validity = data["folder"], data["uids"], data["validity"]
    action = data["action"]
    if action in ("read", "unread"):
        source.set_flags(folder, uids, validity=validity, seen=action == "read")
    elif action in ("flag", "unflag"):
        source.set_flags(folder, uids, validity=validity, flagged=action == "flag")
    elif action == "move":
        also = source.move(folder, uids, validity=validity, to_folder=data["to_folder"])
        messages.success(
            request,
            ngettext("Moved %(n)d message.", "Moved %(n)d messages.", len(uids))
            % {"n": len(uids)},
        )
        _also_expunged(request, also)
    elif action == "delete":
        also = source.delete(folder, uids, validity=validity)
        messages.success(
            request,
            ngettext("Deleted %(n)d message.", "Deleted %(n)d messages.", len(uids))
            % {"n": len(uids)},
        )
        _also_expunged(request, also)
    return redirect(_back(request, _list_url(account_id, folder)))


def _also_expunged(request: HttpRequest, count: int | None) -> None:
    """Warn that the server removed other messages marked deleted (no UIDPLUS)."""
    if count:
        messages.warning(
            request,
            ngettext(
                "The server also removed %(n)d other message that was marked as "
                "deleted in this folder (it cannot remove single messages).",
                "The server also removed %(n)d other messages that were marked as "
                "deleted in this folder (it cannot remove single messages).",
                count,
            )
            % {"n": count},
        )


@login_required
@require_POST
def trust_sender(request: HttpRequest, account_id: int) -> HttpResponse:
    """Always show remote content of this sender's mail (through the proxy)."""
    account_for_user(request.user, account_id)
    email = request.POST.get("email", "").strip().lower()
    if email and "@" in email and len(email) <= 254:
        TrustedSender.objects.get_or_create(user=request.user, email=email)
        messages.success(
            request, _("Remote content from %(email)s is now shown.") % {"email": email}
        )
    return redirect(_back(request, reverse("mailbox:home")))


@login_required
@mail_errors
def folder_manage(request: HttpRequest, account_id: int) -> HttpResponse:
    """Create, rename and delete folders."""
    account, source = _source(request, account_id)
    form = FolderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["action"] == "create":
                source.create_folder(data["name"], parent=data["folder"] or None)
                messages.success(request, _("Folder created."))
            elif data["action"] == "rename":
                source.rename_folder(data["folder"], data["name"])
                messages.success(request, _("Folder renamed."))
            elif data["action"] == "delete":
                source.delete_folder(data["folder"])
                messages.success(request, _("Folder deleted."))
        except ValueError as exc:
            messages.error(request, str(exc))
        return redirect("mailbox:folder_manage", account.pk)
    context = _sidebar(request, account, source)
    context["form"] = form
    return render(request, "mailbox/folder_manage.html", context)
