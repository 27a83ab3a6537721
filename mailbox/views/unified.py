"""All inboxes: the merged INBOX of every account (see mailbox/unified.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from mailbox import unified
from mailbox.sources import ListQuery, SearchField
from mailbox.views.mail import ListRow, row_printer


class AllInboxesParams(forms.Form):
    """The page and the filters carried in an All inboxes URL."""

    page = forms.IntegerField(min_value=1, max_value=1_000_000, required=False)
    q = forms.CharField(max_length=200, required=False)
    field = forms.ChoiceField(
        choices=[(k.value, k.value) for k in SearchField], required=False
    )
    unread = forms.BooleanField(required=False)
    flagged = forms.BooleanField(required=False)

    def query(self) -> ListQuery:
        d = self.cleaned_data
        return ListQuery(
            page=d["page"] or 1,
            text=d["q"].strip(),
            field=SearchField(d["field"] or SearchField.ALL),
            unread_only=d["unread"],
            flagged_only=d["flagged"],
        )

    def as_query_string(self) -> str:
        """The filters (not the page), for links that keep them."""
        d = {k: v for k, v in self.cleaned_data.items() if k != "page"}
        return urlencode({k: ("1" if v is True else v) for k, v in d.items() if v})


@dataclass(frozen=True)
class InboxRow(ListRow):
    """One line of the merged list: a list line and the account it is from."""

    account_id: int = 0
    account_label: str = ""
    folder: str = ""
    validity: int = 0


def _rows(page: unified.UnifiedPage) -> list[InboxRow]:
    views: dict[int, str] = {}
    printed = row_printer()
    rows = []
    for row in page.rows:
        account = row.account
        if account.pk not in views:
            views[account.pk] = reverse("mailbox:message_view", args=[account.pk])
        m = row.summary
        ref = urlencode({"folder": row.folder, "v": row.validity, "uid": m.uid})
        rows.append(
            InboxRow(
                uid=m.uid,
                href=f"{views[account.pk]}?{ref}",
                account_id=account.pk,
                account_label=account.label,
                folder=row.folder,
                validity=row.validity,
                **printed(m),
            )
        )
    return rows


@login_required
@require_GET
def all_inboxes(request: HttpRequest) -> HttpResponse:
    """The inboxes of all the user's active accounts in one list, newest first."""
    params = AllInboxesParams(request.GET)
    if not params.is_valid():
        raise Http404("bad list parameters")
    accounts = unified.active_accounts(request.user)
    if not accounts:
        return redirect("mailbox:account_list")
    page = unified.all_inboxes_page(request.user, params.query())
    return render(
        request,
        "mailbox/all_inboxes.html",
        {
            # The sidebar lists the accounts; no account is the current one.
            "account": None,
            "accounts": accounts,
            "all_inboxes": True,
            "folders": (),
            "quota": None,
            "page": page,
            "rows": _rows(page),
            "params": params,
            "list_query": params.as_query_string(),
            "max_pages": unified.MAX_PAGES,
        },
    )


@login_required
@require_GET
@never_cache
def all_inboxes_status(request: HttpRequest) -> JsonResponse:
    """Unread counts of every active account's inbox, for the tab title and
    polling: ``{"unread_total": n, "accounts": [{"id", "label", "inbox_unread",
    "error"}]}``; an account that cannot be read has ``inbox_unread`` null and
    ``error`` saying why."""
    counts = unified.inbox_counts(request.user)
    return JsonResponse(
        {
            "unread_total": sum(c.unread or 0 for c in counts),
            "accounts": [
                {
                    "id": c.account.pk,
                    "label": c.account.label,
                    "inbox_unread": c.unread,
                    "error": c.error,
                }
                for c in counts
            ],
        }
    )
