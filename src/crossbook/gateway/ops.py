"""Operations endpoints: `/health`, `/ready`, `/metrics`, `/openapi.json`, `/docs`.

- `/health`: liveness only (the process answers); never logged, never rate-limited by weight.
- `/ready`: 200 when every component is ready, else 503, with per-component status: the
  sequencer (journal writable: it stops for good on the first journal error), event-loop lag
  under `max_loop_lag` seconds, and every extra check the node registered (history database).
  A check named in `context.advisory` is shown but does not gate readiness: the history
  database being down or behind never stops trading, so it never takes the node out.
- `/metrics`: Prometheus text format (`crossbook.gateway.metrics`).
- `/openapi.json`: OpenAPI 3.1 built from the router's table and msgspec's JSON schemas;
  `/docs`: a small page that renders it (Swagger UI from a CDN, the document itself works
  offline).
"""

from __future__ import annotations

from typing import Any

import msgspec

from crossbook.gateway.auth import permission_name
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import Request, Response, Route, Router, json_response
from crossbook.protocol import native as wire

_SIGNING = (
    "Signed routes need X-CB-APIKEY, X-CB-TIMESTAMP (ms) and X-CB-SIGNATURE: hex "
    "HMAC-SHA256(secret, timestamp + METHOD + path[?query] + body); optional X-CB-RECV-WINDOW."
)
_DOCS = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>crossbook API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>"""


def openapi(router: Router, info: dict[str, str]) -> dict[str, Any]:
    types: list[Any] = [wire.Error]
    for route in router.routes:
        types += [t for t in (route.body, route.response) if t is not None]
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    refs = dict(zip(map(id, types), schemas, strict=True))
    error_ref = refs[id(wire.Error)]
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, refs, error_ref
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": "crossbook", "version": info.get("version", "0"),
                 "description": _SIGNING},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header",
                                           "name": "X-CB-APIKEY"}},
        },
    }


def _operation(route: Route, refs: dict[int, Any], error_ref: Any) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": route.summary,
        "tags": list(route.tags),
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {
                "schema": refs.get(id(route.response), {})}}},
            "default": {"description": "Error", "content": {"application/json": {
                "schema": error_ref}}},
        },
    }
    params = [s[1:-1] for s in route.segments if s.startswith("{")]
    if params:
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": refs[id(route.body)]}}}
    if route.auth == "native":
        op["security"] = [{"apiKey": []}]
        op["description"] = f"Needs the {permission_name(route.permission)} permission."
    return op


def register(router: Router, ctx: GatewayContext, max_loop_lag: float = 0.5) -> None:
    document: list[bytes] = []

    async def health(request: Request) -> Response:
        return Response(200, b'{"status":"ok"}')

    async def ready(request: Request) -> Response:
        components = {
            "sequencer": wire.ComponentStatus(
                ctx.bus.healthy, "accepting commands" if ctx.bus.healthy else "stopped"
            ),
            "event_loop": wire.ComponentStatus(
                ctx.metrics.loop_lag <= max_loop_lag, f"lag {ctx.metrics.loop_lag:.4f} s"
            ),
            # which process answered: the node, or one of its gateway workers
            "process": wire.ComponentStatus(True, ctx.info.get("process", "node")),
        }
        for name, check in ctx.checks.items():
            try:
                ok, detail = await check()
            except Exception as exc:  # a failing probe is a not-ready component
                ok, detail = False, repr(exc)
            components[name] = wire.ComponentStatus(ok, detail)
        ok = all(c.ok for name, c in components.items() if name not in ctx.advisory)
        return json_response(wire.Readiness(ok, components), 200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(200, ctx.metrics.render(),
                        [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")])

    async def openapi_json(request: Request) -> Response:
        if not document:
            document.append(msgspec.json.encode(openapi(router, ctx.info)))
        return Response(200, document[0])

    async def docs(request: Request) -> Response:
        return Response(200, _DOCS, [(b"content-type", b"text/html; charset=utf-8")])

    ops = {"tags": ("operations",), "weight": 0}
    router.add("GET", "/health", health, summary="Liveness", **ops)
    router.add("GET", "/ready", ready, response=wire.Readiness,
               summary="Readiness per component", **ops)
    router.add("GET", "/metrics", metrics, summary="Prometheus metrics", **ops)
    router.add("GET", "/openapi.json", openapi_json, summary="This document", **ops)
    router.add("GET", "/docs", docs, summary="Interactive documentation", **ops)
