from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView

from mailbox.api.docs import api_docs

# The admin signs in through allauth: same rate limits and two-factor step.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
admin.site.site_header = _("Webmail administration")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    # Apps sign in here (allauth headless, /_allauth/app/v1/...).
    path("_allauth/", include("allauth.headless.urls")),
    path("api/v1/", include("mailbox.api.urls", namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs, name="api_docs"),
    path("settings/", include("accounts.urls")),
    # The language switcher of signed-out pages posts to set_language here.
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("mailbox.urls")),
]
