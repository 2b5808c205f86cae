"""Binance-compatible connections: `/ws`, `/ws/<a>/<b>`, `/stream`, `/stream?streams=a/b`.

Control frames `SUBSCRIBE`, `UNSUBSCRIBE` (`params`: stream names) and `LIST_SUBSCRIPTIONS`
are answered `{"result":null,"id":N}` (LIST: the names), with `id` echoed in its JSON type.
A bad frame gets `{"error":{"code":N,"msg":".."},"id":N}` (0 unknown property, 1 bad value,
2 invalid request, 3 invalid JSON) and the connection stays. Names in a path that are
neither a stream nor a live listen key are ignored (ccxt opens `/ws/0`); a listen key
subscribes the connection to its account's user events.

Stream names: `<s>@depth`, `<s>@depth@100ms`, `<s>@depth@1000ms`, `<s>@depth5|10|20`
(`@100ms`, `@1000ms`), `<s>@trade`, `<s>@aggTrade`, `<s>@bookTicker`, `<s>@ticker`,
`<s>@kline_<interval>`, with `<s>` the lower-case symbol id (`btcusdt`).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from crossbook.gateway.ws.fanout import Client, Hub, Mode, Topic
from crossbook.gateway.ws.publisher import Publisher
from crossbook.marketdata.views import INTERVALS

_STREAM = re.compile(
    r"^([a-z0-9]+)@(trade|aggTrade|bookTicker|ticker|kline_(\w+)|depth(5|10|20)?(@100ms|@1000ms)?)$"
)
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_NO_ID = object()


class BinanceSession:
    def __init__(self, hub: Hub, publisher: Publisher, client: Client, combined: bool,
                 account_of: Any) -> None:
        self.hub = hub
        self.publisher = publisher
        self.client = client
        self.combined = combined
        self.account_of = account_of
        """`listen key → account | None`."""

    def topic(self, name: str) -> Topic | None:
        """The topic of a stream name, or None when the name is not a stream."""
        match = _STREAM.match(name)
        if match is None:
            return None
        symbol = self.publisher.native_symbol(match.group(1))
        if symbol is None:
            return None
        kind = match.group(2)
        if kind.startswith("kline_"):
            if match.group(3) not in INTERVALS:
                return None
            return self.hub.topic(name, Mode.APPEND)
        if kind.startswith("depth"):
            if match.group(4):
                return self.hub.topic(name, Mode.REPLACE)
            return self.publisher.depth_topic(name, symbol, binance=True)
        if kind in ("bookTicker", "ticker"):
            return self.hub.topic(name, Mode.REPLACE)
        return self.hub.topic(name, Mode.APPEND)

    def open_path(self, names: list[str]) -> None:
        for name in names:
            topic = self.topic(name)
            if topic is None:
                account = self.account_of(name)
                if account is None:
                    continue  # an unknown name in the path is ignored, not rejected
                topic = self.hub.topic(f"user@{account}", Mode.APPEND)
                self.client.login = name
            self.hub.subscribe(self.client, topic, self.combined)

    def on_text(self, data: bytes, last: bool = True) -> None:
        """One message (`last`, whether more of the same read follow, matters to order entry
        only: this dialect takes none)."""
        try:
            message = _decode(data)
        except msgspec.DecodeError:
            self.error(3, "Invalid JSON", None)
            return
        if not isinstance(message, dict):
            self.error(2, "Invalid request", None)
            return
        request_id = message.get("id", _NO_ID)
        if request_id is _NO_ID or not isinstance(request_id, int | str | None):
            self.error(2, "Invalid request: id must be an integer or a string", None)
            return
        method = message.get("method")
        params = message.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            names = [n for n in self.client.topics if not n.startswith("user@")]
            self.hub.send(self.client, _encode({"result": names, "id": request_id}))
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            self.error(0, f"Unknown property: method {method!r}", request_id)
            return
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            self.error(1, "Invalid value type: params must be a list of stream names",
                       request_id)
            return
        if method == "UNSUBSCRIBE":
            for name in params:
                self.hub.unsubscribe(self.client, name)
        else:
            topics = [self.topic(name) for name in params]
            bad = [name for name, topic in zip(params, topics, strict=True) if topic is None]
            if bad:
                self.error(2, f"Invalid request: unknown stream {bad[0]!r}", request_id)
                return
            for topic in topics:
                assert topic is not None
                if not self.hub.subscribe(self.client, topic, self.combined):
                    self.error(2, "Invalid request: too many subscriptions", request_id)
                    return
        self.hub.send(self.client, _encode({"result": None, "id": request_id}))

    def error(self, code: int, message: str, request_id: Any) -> None:
        self.hub.stats.bad_messages += 1
        self.hub.send(self.client, _encode(
            {"error": {"code": code, "msg": message}, "id": request_id}))
