"""The HTTP toolkit under every route: request, response, error, router. Raw ASGI, no framework.

Contract:
- A handler is `async (Request) -> Response`. It raises `ApiError(status, code, message)` for
  any refusal; the route's `errors` renderer turns it into the body (native: `{"code",
  "message"}`; a dialect such as Binance's registers its own).
- `Router.add(method, "/v1/orders/{order_id}", handler, ...)` registers a route with what the
  app needs before the handler runs: `auth` (`"native"`: HMAC headers checked by the app with
  `permission`; `"none"`: public or checked by the handler itself), request `weight` for the
  rate limits, whether it places `orders`, and the schemas and summary for OpenAPI.
- `Router.resolve` is a dict lookup for static paths and a segment compare for templates;
  `HEAD` resolves to the `GET` route (the server sends no body);
  an unknown path is 404 and a known path with another method is 405, rendered in the style
  registered for the longest matching prefix (`Router.errors_for`).

Bodies and query strings are bytes until a handler asks: `Request.json(Type)` decodes with
msgspec (400 with the decoder's message on failure), `Request.query` parses once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl

import msgspec

from crossbook.domain.enums import Permission
from crossbook.domain.rejects import Reject

T = TypeVar("T")
Headers = list[tuple[bytes, bytes]]
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
_encode = msgspec.json.Encoder().encode


class ApiError(Exception):
    """A refusal with an HTTP status, a stable numeric code and a message saying what to fix."""

    def __init__(
        self, status: int, code: int, message: str, headers: Headers | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


def bad_request(message: str, code: int = Reject.GATEWAY_BAD_REQUEST) -> ApiError:
    return ApiError(400, code, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, Reject.GATEWAY_NOT_FOUND, message)


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Headers | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = JSON_HEADERS.copy() if headers is None else headers


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, _encode(value))


class ErrorBody(msgspec.Struct, frozen=True):
    code: int
    message: str


def native_errors(error: ApiError) -> Response:
    return Response(error.status, _encode(ErrorBody(error.code, error.message)), [
        *JSON_HEADERS, *error.headers
    ])


ErrorRenderer = Callable[[ApiError], Response]


class Request:
    __slots__ = (
        "_query", "body", "client", "headers", "key", "method", "params", "path", "raw_query",
        "received_ns", "resumed_ns", "scope", "submitted_ns",
    )

    def __init__(
        self,
        method: str,
        path: str,
        raw_query: bytes,
        headers: dict[bytes, bytes],
        body: bytes,
        client: str,
        params: dict[str, str],
        scope: dict[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.raw_query = raw_query
        self.headers = headers
        self.body = body
        self.client = client
        self.params = params
        self.scope = scope
        """The ASGI scope when the request came through ASGI, else None."""
        self.key: Any = None
        """The authenticated API key record (`views.KeyRecord`) once the app checked it."""
        self.received_ns = 0
        """`time.perf_counter_ns()` at the socket read that completed the request (0: not
        known); an order route adds when it submitted the command and when it resumed after
        durability (`metrics` stages `intake`, `request` and the latency trace)."""
        self.submitted_ns = 0
        self.resumed_ns = 0
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(parse_qsl(self.raw_query.decode("latin-1"), keep_blank_values=True))
        return self._query

    def json(self, kind: type[T]) -> T:
        try:
            return msgspec.json.decode(self.body or b"{}", type=kind)
        except msgspec.ValidationError as exc:
            raise bad_request(f"invalid body: {exc}") from None
        except msgspec.DecodeError as exc:
            raise bad_request(f"body is not valid JSON: {exc}") from None

    def decode_query(self, kind: type[T]) -> T:
        try:
            return msgspec.convert(self.query, kind, strict=False)
        except msgspec.ValidationError as exc:
            raise bad_request(f"invalid query: {exc}") from None


Handler = Callable[[Request], Awaitable[Response]]
Auth = Literal["native", "none"]


@dataclass(slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    auth: Auth = "none"
    permission: Permission = Permission.READ
    weight: int = 1
    orders: bool = False
    summary: str = ""
    tags: tuple[str, ...] = ()
    body: type | None = None
    query: type | None = None
    response: Any = None
    errors: ErrorRenderer = native_errors
    segments: tuple[str, ...] = field(default=())
    label: str = ""
    """The metrics label: method and template, never the raw path."""
    inline: bool = False
    """The handler awaits nothing but the sequencer (`GatewayContext.execute`), so the server
    may run it without a task of its own (order entry: one task fewer per request)."""


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._static: dict[str, dict[str, Route]] = {}
        self._templated: dict[int, list[Route]] = {}
        self._error_styles: list[tuple[str, ErrorRenderer]] = []

    def add(self, method: str, path: str, handler: Handler, **options: Any) -> Route:
        errors = options.pop("errors", None) or self.errors_for(path)
        route = Route(method, path, handler, errors=errors, **options)
        route.label = f"{method} {path}"
        if "{" in path:
            route.segments = tuple(path.strip("/").split("/"))
            self._templated.setdefault(len(route.segments), []).append(route)
        else:
            methods = self._static.setdefault(path, {})
            if method in methods:
                raise ValueError(f"route {method} {path} is registered twice")
            methods[method] = route
        self.routes.append(route)
        return route

    def error_style(self, prefix: str, renderer: ErrorRenderer) -> None:
        """Render errors of routes under `prefix` (and 404/405 there) with `renderer`."""
        self._error_styles.append((prefix, renderer))
        self._error_styles.sort(key=lambda item: -len(item[0]))

    def errors_for(self, path: str) -> ErrorRenderer:
        for prefix, renderer in self._error_styles:
            if path.startswith(prefix):
                return renderer
        return native_errors

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        methods = self._static.get(path)
        if methods is not None:
            route = methods.get(method)
            if route is not None:
                return route, {}
            if method == "HEAD" and "GET" in methods:
                return methods["GET"], {}
            raise ApiError(405, Reject.GATEWAY_NOT_FOUND, f"{method} is not allowed on {path}")
        parts = path.strip("/").split("/")
        allowed = False
        for route in self._templated.get(len(parts), ()):
            params = _match(route.segments, parts)
            if params is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, params
            allowed = True
        if allowed:
            raise ApiError(405, Reject.GATEWAY_NOT_FOUND, f"{method} is not allowed on {path}")
        raise not_found(f"no route for {path}")


def _match(segments: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for template, part in zip(segments, parts, strict=True):
        if template[0] == "{":
            if not part:
                return None
            params[template[1:-1]] = part
        elif template != part:
            return None
    return params


def int_param(request: Request, name: str, default: int, most: int) -> int:
    """A positive integer query parameter no larger than `most` (400 otherwise)."""
    text = request.query.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if not 0 < value <= most:
        raise bad_request(f"{name} must be 1-{most}")
    return value
