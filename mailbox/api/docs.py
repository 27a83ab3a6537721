"""/api/docs/: the API's endpoints, read from its OpenAPI schema, as one page.

Server-rendered, with no third-party script: the site's CSP stays as it is.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.generators import SchemaGenerator

_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    parameters: tuple[tuple[str, str, bool, str], ...]  # name, where, required, help
    request: str
    responses: tuple[tuple[str, str], ...]  # status, description


def _ref_name(content: dict[str, Any]) -> str:
    for media in content.values():
        schema = media.get("schema", {})
        ref = schema.get("$ref") or schema.get("items", {}).get("$ref", "")
        if ref:
            return ref.rsplit("/", 1)[-1]
        return schema.get("type", "")
    return ""


@functools.cache
def _schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]) -> list[Operation]:
    result = []
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            result.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    summary=op.get("summary", ""),
                    description=op.get("description", ""),
                    parameters=tuple(
                        (
                            p["name"],
                            p["in"],
                            bool(p.get("required")),
                            p.get("description", ""),
                        )
                        for p in op.get("parameters", [])
                    ),
                    request=_ref_name(op.get("requestBody", {}).get("content", {})),
                    responses=tuple(
                        (code, r.get("description", ""))
                        for code, r in op.get("responses", {}).items()
                    ),
                )
            )
    return result


@require_GET
def api_docs(request: HttpRequest) -> HttpResponse:
    schema = _schema()
    return render(
        request,
        "mailbox/api_docs.html",
        {"info": schema.get("info", {}), "operations": operations(schema)},
    )
