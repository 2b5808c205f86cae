"""L4, I/O: HTTP gateways. One application, a tiny router, shared auth and limits.

- `http`: `Request`, `Response`, `ApiError` and the `Router` (static dict + templated paths).
- `app`: `GatewayApp.handle(Request)`: route, rate-limit, authenticate, call, render (also
  an ASGI callable).
- `server`: `HttpServer`, the HTTP/1.1 server on httptools (keep-alive, pipelining) of the
  node and of its gateway workers.
- `context`: `GatewayContext`, everything a route needs (command bus, views, limits, metrics).
- `views`: durable read models fed by sequencer batches (instruments, keys, orders, fills,
  balances); the gateway never reads the engine.
- `auth`, `limits`, `metrics`, `ops` (health, ready, metrics, OpenAPI, docs).
- `native`: the `/v1` API. Other dialects (`binance`) register routes on the same router.
"""
