from django.urls import path

from mailbox import views

app_name = "mailbox"

urlpatterns = [
    path("", views.home, name="home"),
    path("mail-accounts/", views.account_list, name="account_list"),
    path("mail-accounts/add/", views.account_add, name="account_add"),
    path(
        "mail-accounts/<int:account_id>/edit/", views.account_edit, name="account_edit"
    ),
    path(
        "mail-accounts/<int:account_id>/delete/",
        views.account_delete,
        name="account_delete",
    ),
]
