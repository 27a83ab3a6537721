"""API: the setup assistant (server settings from an e-mail address)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailbox import autoconfig
from mailbox.api.errors import errors


class ServerSerializer(serializers.Serializer):
    host = serializers.CharField()
    port = serializers.IntegerField()
    security = serializers.CharField()
    username = serializers.CharField()


class SuggestionSerializer(serializers.Serializer):
    found = serializers.BooleanField()
    provider = serializers.CharField(allow_blank=True)
    source = serializers.ChoiceField(
        choices=["builtin", "autoconfig", "srv", "mx", ""],
        help_text="Where the settings come from; empty when nothing was found.",
    )
    imap = ServerSerializer(allow_null=True)
    pop3 = ServerSerializer(allow_null=True)
    smtp = ServerSerializer(allow_null=True)
    oauth = serializers.CharField(
        allow_blank=True,
        help_text="google or microsoft: the provider refuses ordinary passwords.",
    )
    note = serializers.CharField(allow_blank=True)


class AutoconfigApi(APIView):
    class Query(serializers.Serializer):
        email = serializers.EmailField()

    @extend_schema(
        operation_id="autoconfig",
        summary="Suggested server settings for an e-mail address",
        description="From the built-in provider table, then (when the operator "
        "allows lookups) the domain's autoconfiguration file, SRV and MX records. "
        "A suggestion only: the account is tested when it is created.",
        parameters=[Query],
        responses={200: SuggestionSerializer, **errors(400)},
    )
    def get(self, request: Request) -> Response:
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            found = autoconfig.suggest(query.validated_data["email"])
        except ValueError:
            found = None
        if found is None:
            empty = {"provider": "", "source": "", "oauth": "", "note": ""}
            body = {"found": False, "imap": None, "pop3": None, "smtp": None, **empty}
            return Response(body)

        def server(settings: object) -> dict[str, object] | None:
            return None if settings is None else settings.as_fields()

        return Response(
            {
                "found": True,
                "provider": found.provider,
                "source": found.source,
                "imap": server(found.imap),
                "pop3": server(found.pop3),
                "smtp": server(found.smtp),
                "oauth": found.oauth,
                "note": str(found.note),
            }
        )
