"""API views that belong to no resource."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt  # it changes nothing, whatever the method
def not_found(request: HttpRequest) -> JsonResponse:
    """A path under /api/v1/ that names no endpoint: the JSON 404."""
    return JsonResponse(
        {"error": {"code": "not_found", "detail": _("Not found.")}}, status=404
    )
