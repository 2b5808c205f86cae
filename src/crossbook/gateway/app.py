"""`GatewayApp`: the request handler in front of every HTTP route.

`handle(request)` per request, in order: resolve the route (404/405; `HEAD` takes the `GET`
route), charge the client IP's rate limits, authenticate natively signed routes (401/403)
and charge the key's limits (429), run the handler, render any `ApiError` in the route's
error style, add the usage headers (the key's on signed routes, else the IP's), count. It
never raises: anything unexpected is logged and answered 500 with code
`GATEWAY_UNAVAILABLE` (the outcome of that request is unknown). The HTTP server
(`crossbook.gateway.server`) of the node and of its gateway workers calls it directly; the
app is also an ASGI callable (any ASGI server, or in process with httpx's `ASGITransport`),
which acknowledges lifespan events without work since the node starts and stops the core.

No access log: `/health` and every request stay silent; metrics count them instead.

Extension: `build_app(context, registrars)` calls each `registrar(router, context)`; the
native API, the operations endpoints and other dialects (`crossbook.gateway.binance`) are
registrars.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from crossbook.domain.rejects import Reject
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import ApiError, Headers, Request, Response, Route, Router
from crossbook.gateway.limits import Usage, usage_headers

log = logging.getLogger(__name__)

Registrar = Callable[[Router, GatewayContext], None]
_perf = time.perf_counter_ns


class GatewayApp:
    def __init__(self, context: GatewayContext, router: Router) -> None:
        self.context = context
        self.router = router

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The same app as an ASGI callable: under any ASGI server, or in process (tests)."""
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
        client = scope.get("client")
        response = await self.handle(Request(
            scope["method"], scope["path"], scope["query_string"], dict(scope["headers"]),
            body, client[0] if client else "", {}, scope,
        ))
        headers = response.headers
        headers.append((b"content-length", b"%d" % len(response.body)))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def handle(self, request: Request) -> Response:
        """Answer one request; never raises. The server adds `content-length` and framing."""
        path = request.path
        route: Route | None = None
        usage: Headers | None = None
        ip_used: Usage | None = None
        ctx = self.context
        try:
            route, request.params = self.router.resolve(request.method, path)
            orders = 1 if route.orders else 0
            if route.auth == "native":
                ip_used = ctx.limits.count_ip(request.client, route.weight, orders)
                auth_start = _perf()
                key = ctx.auth.authenticate(request, route.permission)
                request.key = key
                usage = ctx.limits.charge_key(key.key, route.weight, orders)
                ctx.metrics.observe_ns("auth", _perf() - auth_start)
            else:
                usage = ctx.limits.charge_ip(request.client, route.weight, orders)
            if route.inline:
                response = await route.handler(request)
            else:  # in a task of its own: it may use timeouts, cancellation, other tasks
                response = await asyncio.ensure_future(route.handler(request))
        except ApiError as error:
            renderer = route.errors if route is not None else self.router.errors_for(path)
            response = renderer(error)
            if route is not None and route.orders:
                ctx.metrics.order("refused", error.code)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, path)
            response = Response(
                500,
                b'{"code":%d,"message":"internal error; the outcome is unknown"}'
                % Reject.GATEWAY_UNAVAILABLE,
            )
        if usage is None and ip_used is not None:  # refused before the key was charged
            usage = usage_headers(ip_used)
        if usage:
            response.headers.extend(usage)
        ctx.metrics.request(route.label if route is not None else "unmatched", response.status)
        return response


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
