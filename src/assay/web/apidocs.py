"""``/docs``: a server-rendered reference of the API, built from its OpenAPI schema.

The page needs no script and nothing from another host, unlike the usual
JavaScript API explorers, so it works on isolated networks and under the
service's content security policy.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from assay.web.render import page

router = APIRouter(include_in_schema=False)


def _resolve(schema: dict[str, Any], spec: dict[str, Any], depth: int = 0) -> Any:
    """Inline ``$ref``s (a few levels deep) so a body's fields can be read in place."""
    if depth > 4:
        return schema
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            target = spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1])
            return _resolve(target or {}, spec, depth + 1)
        return {k: _resolve(v, spec, depth + 1) for k, v in schema.items()
                if k not in ("title",)}
    if isinstance(schema, list):
        return [_resolve(v, spec, depth + 1) for v in schema]
    return schema


def _type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    t = schema.get("type", "object")
    if t == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    return str(t)


def operations(spec: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            params = [{"name": p["name"], "where": p["in"], "required": p.get("required", False),
                       "type": _type(p.get("schema", {})),
                       "description": p.get("description") or p.get("schema", {}).get(
                           "description", "")}
                      for p in op.get("parameters", [])]
            body = body_type = None
            content = (op.get("requestBody") or {}).get("content") or {}
            for media, item in content.items():
                body_type = media
                body = json.dumps(_resolve(item.get("schema", {}), spec), indent=2)
                break
            responses = [(code, r.get("description", ""))
                         for code, r in sorted(op.get("responses", {}).items())]
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""), "params": params, "body": body,
                "body_type": body_type, "responses": responses})
    return list(groups.items())


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> Response:
    spec = request.app.openapi()
    info = spec.get("info", {})
    return page(request, "api_docs.html", title=info.get("title", "assay"),
                version=info.get("version", ""), description=info.get("description", ""),
                openapi=spec.get("openapi", ""), groups=operations(spec))
