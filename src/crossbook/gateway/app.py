"""`GatewayApp`: the raw ASGI callable in front of every HTTP route.

Per request, in order: read the body, resolve the route (404/405), charge the client IP's
rate limits, authenticate natively signed routes (401/403) and charge the key's limits
(429), run the handler, render any `ApiError` in the route's error style, add the usage
headers, send, count. Anything unexpected is logged and answered 500 with code
`GATEWAY_UNAVAILABLE` (the outcome of that request is unknown).

No access log: `/health` and every request stay silent; metrics count them instead.
ASGI lifespan events are acknowledged without work, since the node starts and stops the
core around the server (`crossbook.node`).

Extension: `build_app(context, registrars)` calls each `registrar(router, context)`; the
native API, the operations endpoints and other dialects (`crossbook.gateway.binance`) are
registrars.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from crossbook.domain.rejects import Reject
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import ApiError, Headers, Request, Response, Route, Router

log = logging.getLogger(__name__)

Registrar = Callable[[Router, GatewayContext], None]
_perf = time.perf_counter_ns


class GatewayApp:
    def __init__(self, context: GatewayContext, router: Router) -> None:
        self.context = context
        self.router = router

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await _lifespan(receive, send)
            return
        message = await receive()
        body: bytes = message.get("body", b"")
        while message.get("more_body"):
            message = await receive()
            body += message.get("body", b"")
        path: str = scope["path"]
        route: Route | None = None
        usage: Headers = []
        ctx = self.context
        try:
            route, params = self.router.resolve(scope["method"], path)
            client = scope.get("client")
            request = Request(
                scope["method"], path, scope["query_string"], dict(scope["headers"]), body,
                client[0] if client else "", params, scope,
            )
            orders = 1 if route.orders else 0
            usage = ctx.limits.charge_ip(request.client, route.weight, orders)
            if route.auth == "native":
                auth_start = _perf()
                key = ctx.auth.authenticate(request, route.permission)
                request.key = key
                usage = ctx.limits.charge_key(key.key, route.weight, orders)
                ctx.metrics.observe_ns("auth", _perf() - auth_start)
            response = await route.handler(request)
        except ApiError as error:
            renderer = route.errors if route is not None else self.router.errors_for(path)
            response = renderer(error)
            if route is not None and route.orders:
                ctx.metrics.order("refused", error.code)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], path)
            response = Response(
                500,
                b'{"code":%d,"message":"internal error; the outcome is unknown"}'
                % Reject.GATEWAY_UNAVAILABLE,
            )
        sent = _perf()
        headers = response.headers
        headers.append((b"content-length", b"%d" % len(response.body)))
        if usage:
            headers.extend(usage)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
        metrics = ctx.metrics
        now = _perf()
        metrics.observe_ns("response", now - sent)
        metrics.request(route.label if route is not None else "unmatched", response.status)


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_app(context: GatewayContext, registrars: Iterable[Registrar]) -> GatewayApp:
    router = Router()
    for register in registrars:
        register(router, context)
    return GatewayApp(context, router)
