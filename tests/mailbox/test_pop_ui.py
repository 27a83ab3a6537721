"""POP3 import through the pages, the tasks and the admin, on the real Dovecot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountKind, MailAccount, Security, UserQuota
from accounts.servers import ServerSettings
from accounts.services import AccountOptions, mail_account_update
from mailbox import tasks
from mailbox.store.models import ImportJob, LocalFolder, StoredMessage
from tests.conftest import login, make_account

pytestmark = pytest.mark.usefixtures("trust_test_ca")

ADD_URL = reverse("mailbox:account_add")
MIB = 1024 * 1024


def pop_form(dovecot, mail_user, **overrides: object) -> dict[str, object]:
    """The add form filled in for a POP3 account on the test Dovecot."""
    data: dict[str, object] = {
        "kind": AccountKind.POP3,
        "email": mail_user.email,
        "label": "Old POP",
        "host": dovecot.host,
        "security": Security.STARTTLS,
        "port": dovecot.pop3_port,
        "username": mail_user.username,
        "password": mail_user.password,
        "leave_on_server": "on",
        "check_interval_minutes": 30,
        "smtp_security": Security.STARTTLS,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def import_now(client, account: MailAccount, capture) -> object:
    """POST “Import now”; the (eager) task runs when the view's transaction commits."""
    with capture(execute=True):
        return client.post(reverse("mailbox:account_import_now", args=[account.pk]))


def job_url(job: ImportJob) -> str:
    return reverse("mailbox:import_job", args=[job.account_id, job.pk])


def admin_url(name: str, *args: object) -> str:
    meta = ImportJob._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{name}", args=args)


# -- the account form ------------------------------------------------------------


def test_pop_options_are_saved(user, user_client, dovecot, mail_user, imap_account):
    """A POP3 account keeps its removal delay, its IMAP target and its folder."""
    data = pop_form(
        dovecot,
        mail_user,
        remove_after_days=30,
        import_target=imap_account.pk,
        import_folder=" From POP ",
    )
    response = user_client.post(ADD_URL, data)
    assert response.status_code == 302
    account = MailAccount.objects.get(user=user, kind=AccountKind.POP3)
    assert account.leave_on_server
    assert account.check_interval_minutes == 30
    assert account.remove_after_days == 30
    assert account.import_imap_account == imap_account
    assert account.import_folder == "From POP"


def test_the_store_is_the_default_target(user, user_client, dovecot, mail_user):
    """Without a target the mail goes to the store, into the folder given."""
    data = pop_form(dovecot, mail_user, import_folder="Archive/POP")
    assert user_client.post(ADD_URL, data).status_code == 302
    account = MailAccount.objects.get(user=user)
    assert account.import_imap_account is None
    assert account.import_folder == "Archive/POP"
    assert account.remove_after_days is None


def test_removal_delay_needs_a_copy_on_the_server(
    user, user_client, dovecot, mail_user
):
    """With no copy left on the server, a removal delay is not kept."""
    data = pop_form(dovecot, mail_user, leave_on_server=None, remove_after_days=7)
    assert user_client.post(ADD_URL, data).status_code == 302
    account = MailAccount.objects.get(user=user)
    assert not account.leave_on_server
    assert account.remove_after_days is None


@pytest.mark.parametrize("days", [0, 3651, -1])
def test_removal_delay_out_of_range_is_refused(user_client, dovecot, mail_user, days):
    """The removal delay is between 1 and 3650 days."""
    response = user_client.post(
        ADD_URL, pop_form(dovecot, mail_user, remove_after_days=days)
    )
    assert response.status_code == 200
    assert 'id="id_remove_after_days"' in response.content.decode()
    assert "has-error" in response.content.decode()
    assert not MailAccount.objects.exists()


def test_another_users_imap_account_is_no_target(
    user, other_user, user_client, dovecot, mail_user
):
    """Another user's IMAP account is neither offered nor accepted; nothing is saved."""
    theirs = make_account(other_user, dovecot, dovecot.new_user())
    theirs.label = "Bob's private IMAP"
    theirs.save()
    page = user_client.get(ADD_URL).content.decode()
    assert "Bob&#x27;s private IMAP" not in page
    assert "This webmail&#x27;s store" in page
    response = user_client.post(
        ADD_URL, pop_form(dovecot, mail_user, import_target=theirs.pk)
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not MailAccount.objects.filter(user=user).exists()


def test_only_active_imap_accounts_are_offered(user_client, imap_account, pop_account):
    """Neither a POP3 account nor an inactive IMAP account is offered as a target."""
    page = user_client.get(ADD_URL).content.decode()
    assert f'<option value="{imap_account.pk}">' in page
    assert f'<option value="{pop_account.pk}"' not in page
    imap_account.is_active = False
    imap_account.save()
    page = user_client.get(ADD_URL).content.decode()
    assert f'<option value="{imap_account.pk}"' not in page


def test_edit_shows_and_keeps_the_pop_options(user_client, imap_account, pop_account):
    """The edit page shows the saved options; the edited account is no target."""
    pop_account.remove_after_days = 14
    pop_account.import_folder = "Imported"
    pop_account.import_imap_account = imap_account
    pop_account.save()
    url = reverse("mailbox:account_edit", args=[pop_account.pk])
    page = user_client.get(url).content.decode()
    assert f'<option value="{imap_account.pk}" selected>' in page
    assert 'value="Imported"' in page
    assert 'value="14"' in page
    response = user_client.post(
        url,
        {
            "email": pop_account.email,
            "label": "Renamed",
            "host": pop_account.host,
            "security": pop_account.security,
            "port": pop_account.port,
            "username": pop_account.username,
            "leave_on_server": "on",
            "check_interval_minutes": 15,
            "remove_after_days": 14,
            "import_target": imap_account.pk,
            "import_folder": "Imported",
            "smtp_security": Security.STARTTLS,
        },
    )
    assert response.status_code == 302
    pop_account.refresh_from_db()
    assert pop_account.label == "Renamed"
    assert pop_account.import_imap_account == imap_account
    assert (pop_account.remove_after_days, pop_account.import_folder) == (
        14,
        "Imported",
    )
    other = user_client.get(reverse("mailbox:account_edit", args=[imap_account.pk]))
    assert f'<option value="{imap_account.pk}"' not in other.content.decode()


def test_services_refuse_a_target_that_is_not_the_users_imap_account(
    other_user, dovecot, mail_user, pop_account
):
    """The rule holds below the form: another user's account, or a POP3 one, is
    refused with a ValidationError and the account is not changed."""
    theirs = make_account(other_user, dovecot, dovecot.new_user())
    server = ServerSettings.incoming_of(pop_account)
    for target in (theirs, pop_account):
        options = AccountOptions(
            label="Work", email=mail_user.email, import_imap_account_id=target.pk
        )
        with pytest.raises(ValidationError):
            mail_account_update(account=pop_account, options=options, server=server)
        pop_account.refresh_from_db()
        assert pop_account.import_imap_account_id is None


# -- import now, the job page and the list ---------------------------------------


def test_import_now_imports_and_shows_the_counts(
    user_client, pop_account, dovecot, mail_user, django_capture_on_commit_callbacks
):
    """“Import now” imports the mail; the job page shows the counts, the list the
    latest status, and the messages are readable in the account's list."""
    dovecot.generate(mail_user.username, 3)
    response = import_now(user_client, pop_account, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job = ImportJob.objects.get(account=pop_account)
    assert response["Location"] == job_url(job)
    assert (job.status, job.trigger) == ("done", "manual")
    assert (job.total, job.imported, job.failed) == (3, 3, 0)

    page = user_client.get(job_url(job)).content.decode()
    assert "3 of 3 new messages handled" in page
    assert "<dd>3 (" in page
    assert 'http-equiv="refresh"' not in page  # finished: no more refreshing

    listing = user_client.get(reverse("mailbox:account_list")).content.decode()
    assert "status-done" in listing
    assert "3 messages imported" in listing
    assert job_url(job) in listing

    messages = user_client.get(reverse("mailbox:message_list", args=[pop_account.pk]))
    text = messages.content.decode()
    subjects = StoredMessage.objects.filter(account=pop_account).values_list(
        "subject", flat=True
    )
    assert len(subjects) == 3
    for subject in subjects:
        assert subject.startswith("Generated message")
        assert subject in text
    assert dovecot.count(mail_user.username) == 3  # a copy stays on the server


def test_the_mail_sidebar_shows_the_import(user_client, pop_account):
    """Reading a POP3 account's mail, its import's progress is in the sidebar."""
    listing = reverse("mailbox:message_list", args=[pop_account.pk])
    assert "import-status" not in user_client.get(listing).content.decode()
    job = ImportJob.objects.create(
        account=pop_account, status="running", total=10, done=4
    )
    page = user_client.get(listing).content.decode()
    assert 'class="import-status status-running"' in page
    assert job_url(job) in page
    assert '<progress max="10" value="4">' in page


def test_import_now_into_the_chosen_store_folder(
    user_client, pop_account, dovecot, mail_user, django_capture_on_commit_callbacks
):
    """The store folder chosen in the options receives the imported mail."""
    pop_account.import_folder = "From POP"
    pop_account.save()
    dovecot.generate(mail_user.username, 2)
    import_now(user_client, pop_account, django_capture_on_commit_callbacks)
    folder = LocalFolder.objects.get(user=pop_account.user, name="From POP")
    assert folder.messages.count() == 2


def test_a_running_job_page_refreshes_itself(user_client, pop_account):
    """While an import waits or runs, its page reloads itself."""
    job = ImportJob.objects.create(account=pop_account, status="running", total=10)
    page = user_client.get(job_url(job)).content.decode()
    assert 'http-equiv="refresh"' in page


def test_import_now_needs_post(user_client, pop_account):
    """A GET on “Import now” starts nothing and answers 405."""
    response = user_client.get(
        reverse("mailbox:account_import_now", args=[pop_account.pk])
    )
    assert response.status_code == 405
    assert not ImportJob.objects.exists()


def test_import_now_of_an_imap_account_is_404(user_client, imap_account):
    """An IMAP account has nothing to import."""
    response = user_client.post(
        reverse("mailbox:account_import_now", args=[imap_account.pk])
    )
    assert response.status_code == 404
    assert not ImportJob.objects.exists()


def test_another_users_account_answers_404(
    other_user, pop_account, dovecot, mail_user, django_capture_on_commit_callbacks
):
    """Another user can neither start an import of my account nor see its jobs."""
    dovecot.generate(mail_user.username, 1)
    job = ImportJob.objects.create(account=pop_account, status="done")
    client = login(other_user)
    response = import_now(client, pop_account, django_capture_on_commit_callbacks)
    assert response.status_code == 404
    assert ImportJob.objects.filter(account=pop_account).count() == 1
    assert not StoredMessage.objects.exists()
    assert client.get(job_url(job)).status_code == 404


def test_a_job_of_another_account_answers_404(
    user, user_client, other_user, pop_account, dovecot
):
    """A job id is looked up within the account of the URL only."""
    mine = make_account(user, dovecot, dovecot.new_user(), kind=AccountKind.POP3)
    theirs = make_account(
        other_user, dovecot, dovecot.new_user(), kind=AccountKind.POP3
    )
    for account in (mine, theirs):
        job = ImportJob.objects.create(account=account)
        url = reverse("mailbox:import_job", args=[pop_account.pk, job.pk])
        assert user_client.get(url).status_code == 404


# -- scheduled imports and quotas ------------------------------------------------


def test_dispatch_starts_only_due_imports(
    user, dovecot, django_capture_on_commit_callbacks
):
    """Accounts never imported or past their interval are imported; recent ones and
    those with a job on its way are left alone."""

    def account(label: str, *, minutes_ago: int | None) -> MailAccount:
        mail_user = dovecot.new_user()
        dovecot.generate(mail_user.username, 1)
        made = make_account(user, dovecot, mail_user, kind=AccountKind.POP3)
        made.label = label
        made.save()
        if minutes_ago is not None:
            last = timezone.now() - timedelta(minutes=minutes_ago)
            MailAccount.objects.filter(pk=made.pk).update(last_import_at=last)
        return made

    never = account("never", minutes_ago=None)
    overdue = account("overdue", minutes_ago=16)  # interval: 15 minutes
    recent = account("recent", minutes_ago=5)
    queued = account("queued", minutes_ago=None)
    running = account("running", minutes_ago=60)
    inactive = account("inactive", minutes_ago=None)
    inactive.is_active = False
    inactive.save()
    ImportJob.objects.create(account=queued, status=ImportJob.Status.QUEUED)
    ImportJob.objects.create(account=running, status=ImportJob.Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        started = tasks.dispatch_due_imports()

    assert started == 2
    for due in (never, overdue):
        job = ImportJob.objects.get(account=due)
        assert (job.trigger, job.status, job.imported) == ("schedule", "done", 1)
        due.refresh_from_db()
        assert due.last_import_at is not None
    assert not ImportJob.objects.filter(account__in=[recent, inactive]).exists()
    for busy in (queued, running):
        assert ImportJob.objects.filter(account=busy).count() == 1
    assert StoredMessage.objects.filter(user=user).count() == 2


def test_reconcile_corrects_drifted_usage(
    user,
    user_client,
    pop_account,
    dovecot,
    mail_user,
    django_capture_on_commit_callbacks,
):
    """The periodic reconciliation sets usage to the sum of the stored sizes."""
    dovecot.generate(mail_user.username, 3, size=5000)
    import_now(user_client, pop_account, django_capture_on_commit_callbacks)
    stored = StoredMessage.objects.filter(user=user).aggregate(total=Sum("size"))
    assert stored["total"] > 15000
    UserQuota.objects.filter(user=user).update(used_bytes=123)
    assert tasks.reconcile_quotas() == 1
    assert UserQuota.objects.get(user=user).used_bytes == stored["total"]
    assert tasks.reconcile_quotas() == 0  # nothing left to correct


@pytest.mark.parametrize(
    ("percent", "banner"),
    [(79, None), (80, "warning"), (94, "warning"), (95, "critical"), (100, "critical")],
)
def test_storage_banner(user, user_client, percent, banner):
    """The storage banner warns at 80 % and says imports stop when full at 95 %."""
    UserQuota.objects.update_or_create(
        user=user,
        defaults={"limit_mb": 10, "used_bytes": 10 * MIB * percent // 100},
    )
    page = user_client.get(reverse("mailbox:account_list")).content.decode()
    if banner is None:
        assert "storage-banner" not in page
        return
    assert f'class="storage-banner {banner}"' in page
    assert f"Your storage here is {percent}% full" in page
    stops = "Imports stop when it is full" in page
    assert stops == (banner == "critical")


def test_over_quota_stops_and_leaves_the_rest_on_the_server(
    user,
    user_client,
    pop_account,
    dovecot,
    mail_user,
    django_capture_on_commit_callbacks,
):
    """When the store is full the import stops, says so, and the messages it did
    not take stay on the POP3 server."""
    UserQuota.objects.update_or_create(user=user, defaults={"limit_mb": 1})
    pop_account.leave_on_server = False
    pop_account.save()
    # About 400 kB each: two fit in 1 MiB, the third does not.
    dovecot.generate(mail_user.username, 4, size=400_000)
    import_now(user_client, pop_account, django_capture_on_commit_callbacks)
    job = ImportJob.objects.get(account=pop_account)
    assert (job.status, job.imported, job.total) == ("over_quota", 2, 4)
    assert StoredMessage.objects.filter(account=pop_account).count() == 2
    assert dovecot.count(mail_user.username) == 2  # the two not imported
    quota = UserQuota.objects.get(user=user)
    assert quota.used_bytes <= quota.effective_limit_bytes
    page = user_client.get(job_url(job)).content.decode()
    assert "Stopped: storage full" in page
    assert "Your storage here is full" in page
    assert "still on the POP3 server" in page


# -- the admin -------------------------------------------------------------------


def test_admin_rerun_starts_a_new_import(
    superuser, pop_account, dovecot, mail_user, django_capture_on_commit_callbacks
):
    """The admin action “rerun” starts a new job of the account, which imports."""
    first = ImportJob.objects.create(account=pop_account, status="failed")
    dovecot.generate(mail_user.username, 2)
    client = login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            admin_url("changelist"),
            {"action": "rerun", "_selected_action": [first.pk]},
        )
    assert response.status_code == 302
    job = ImportJob.objects.exclude(pk=first.pk).get(account=pop_account)
    assert (job.trigger, job.status, job.imported) == ("admin", "done", 2)
    assert StoredMessage.objects.filter(account=pop_account).count() == 2
    page = client.get(response["Location"]).content.decode()
    assert "1 import started." in page


def test_admin_rerun_needs_staff(user_client, pop_account):
    """An ordinary user cannot reach the admin action."""
    first = ImportJob.objects.create(account=pop_account, status="failed")
    response = user_client.post(
        admin_url("changelist"), {"action": "rerun", "_selected_action": [first.pk]}
    )
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
    assert ImportJob.objects.count() == 1


def test_admin_job_pages_never_show_a_password(superuser, pop_account, mail_user):
    """Neither the list nor a job's page shows the account's password or token."""
    job = ImportJob.objects.create(account=pop_account, status="done", imported=1)
    client = login(superuser)
    for url in (admin_url("changelist"), admin_url("change", job.pk)):
        response = client.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert pop_account.email in page
        assert mail_user.password not in page
        assert pop_account.password_encrypted not in page
