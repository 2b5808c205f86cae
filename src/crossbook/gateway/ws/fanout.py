"""Fan-out: topics, subscribers, and the slow-consumer policy, independent of the socket library.

Theory of operation. A *topic* is one stream (`btcusdt@depth@100ms`, the native depth channel
of a symbol, one account's user events). A publisher encodes each update once per topic and
calls `Hub.publish(topic, payload)`; the hub hands the same bytes to every subscriber (and
wraps them once per topic for Binance combined connections: `{"stream":..,"data":..}`).

Each `Client` wraps a `Sender` (the socket) and has a bounded send queue: the socket's own
write buffer up to its high-water mark, then `backlog`, at most `max_queue` messages. While
the socket is paused (the peer does not read) or the backlog is not empty, a message is
queued according to its topic's `Mode`:

- `APPEND` (trades, user events): appended to the backlog;
- `REPLACE` (book ticker, partial depth, 24 h ticker, open candle): only the newest is kept;
- `DIFF` (depth diffs): dropped, and the topic is marked *conflated*: when the socket drains,
  the client first gets a fresh snapshot from the topic's `resync()` (marked so that it
  resyncs: the next diff's `U` no longer follows what it has) and then diffs again.

A client whose backlog passes `max_queue`, or that has been paused for `max_stall_s`, is
closed with code 1008 and the reason `slow consumer: ...`, then aborted after a grace period
if it still does not read. So a stalled client holds at most the socket buffer, `max_queue`
messages and one entry per REPLACE topic, and costs the others nothing more than a length
check. Counters for `/stats`, `/clients` and `/metrics` live in `HubStats` and on each client.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001


class Mode(enum.IntEnum):
    APPEND = 0
    REPLACE = 1
    DIFF = 2


class Sender(Protocol):
    """The socket of one client."""

    def send(self, data: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        ...


Resync = Callable[[], bytes]
"""Builds a fresh snapshot message for a DIFF topic (raw form)."""


class Topic:
    __slots__ = ("combined", "mode", "name", "raw", "resync")

    def __init__(self, name: str, mode: Mode, resync: Resync | None = None) -> None:
        self.name = name
        self.mode = mode
        self.resync = resync
        self.raw: set[Client] = set()
        self.combined: set[Client] = set()
        """Subscribers that get `{"stream": name, "data": payload}`."""

    @property
    def subscribers(self) -> int:
        return len(self.raw) + len(self.combined)

    def wrap(self, payload: bytes) -> bytes:
        return b'{"stream":"%s","data":%s}' % (self.name.encode(), payload)


@dataclass(slots=True)
class Limits:
    max_connections: int = 10_000
    max_subscriptions: int = 1024
    max_messages_per_s: int = 50
    """Incoming messages per connection and second (order entry connections are exempt)."""
    max_queue: int = 10_000
    """Messages in a paused client's backlog before it is dropped."""
    max_stall_s: float = 10.0
    """Seconds a client may stay paused before it is dropped."""
    write_high_water: int = 1 << 20
    """Socket buffer bytes at which a client counts as paused."""
    send_buffer: int = 0
    """The kernel send buffer per socket in bytes (SO_SNDBUF); 0 keeps the OS default."""
    max_batch: int = 1_000
    """Most depth updates merged into one 100 ms / 1000 ms message."""
    heartbeat_s: float = 20.0
    close_grace_s: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        """Defaults overridden by `CROSSBOOK_WS_<FIELD>` (e.g. `CROSSBOOK_WS_MAX_QUEUE=500`)."""
        limits = cls()
        for name in cls.__dataclass_fields__:
            text = env.get(f"CROSSBOOK_WS_{name.upper()}")
            if text is not None:
                kind = type(getattr(limits, name))
                setattr(limits, name, kind(text))
        return limits


@dataclass(slots=True)
class HubStats:
    messages: int = 0
    """Messages handed to sockets (one per client)."""
    bytes: int = 0
    published: int = 0
    """Messages encoded (one per topic)."""
    batches: int = 0
    """Sequencer batches fanned out."""
    batch_updates: int = 0
    """Updates (commands) those batches carried."""
    conflated: int = 0
    """Depth diffs replaced by a later snapshot for a slow client."""
    resyncs: int = 0
    dropped_clients: int = 0
    connections_total: int = 0
    refused_connections: int = 0
    bad_messages: int = 0


_ids = itertools.count(1)


class Client:
    __slots__ = (
        "backlog", "closed", "conflated", "connected_at", "id", "kind", "latest", "login",
        "paused_at", "peer", "received", "sender", "sent", "topics", "window",
        "window_count",
    )

    def __init__(self, sender: Sender, peer: str, kind: str) -> None:
        self.id = next(_ids)
        self.sender = sender
        self.peer = peer
        self.kind = kind
        self.topics: dict[str, Topic] = {}
        self.backlog: deque[bytes] = deque()
        self.latest: dict[str, bytes] = {}
        self.conflated: set[Topic] = set()
        self.paused_at = 0.0
        """Monotonic time the socket paused, 0.0 while it drains."""
        self.closed = False
        self.sent = 0
        self.received = 0
        self.connected_at = time.time()
        self.window = 0
        self.window_count = 0
        self.login: object | None = None
        """The signed-in key (native) or listen key (Binance user stream)."""

    @property
    def queued(self) -> int:
        return len(self.backlog) + len(self.latest)

    def lag_s(self, now: float) -> float:
        return now - self.paused_at if self.paused_at else 0.0


class Hub:
    def __init__(self, limits: Limits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or Limits()
        self.stats = HubStats()
        self.clients: set[Client] = set()
        self.topics: dict[str, Topic] = {}
        self.clock = clock

    # -- connections and subscriptions --------------------------------------------------------

    def connect(self, sender: Sender, peer: str, kind: str) -> Client | None:
        if len(self.clients) >= self.limits.max_connections:
            self.stats.refused_connections += 1
            return None
        client = Client(sender, peer, kind)
        self.clients.add(client)
        self.stats.connections_total += 1
        return client

    def disconnect(self, client: Client) -> None:
        client.closed = True
        self.clients.discard(client)
        for topic in list(client.topics.values()):
            self._leave(client, topic)
        client.topics.clear()
        client.backlog.clear()
        client.latest.clear()

    def topic(self, name: str, mode: Mode, resync: Resync | None = None) -> Topic:
        found = self.topics.get(name)
        if found is None:
            found = self.topics[name] = Topic(name, mode, resync)
        return found

    def subscribe(self, client: Client, topic: Topic, combined: bool = False) -> bool:
        """False when the client is at its subscription limit."""
        if topic.name in client.topics:
            return True
        if len(client.topics) >= self.limits.max_subscriptions:
            return False
        client.topics[topic.name] = topic
        (topic.combined if combined else topic.raw).add(client)
        return True

    def unsubscribe(self, client: Client, name: str) -> None:
        topic = client.topics.pop(name, None)
        if topic is not None:
            self._leave(client, topic)

    def _leave(self, client: Client, topic: Topic) -> None:
        topic.raw.discard(client)
        topic.combined.discard(client)
        client.conflated.discard(topic)
        client.latest.pop(topic.name, None)
        if not topic.subscribers:
            self.topics.pop(topic.name, None)

    def subscribed(self, name: str) -> bool:
        topic = self.topics.get(name)
        return topic is not None and topic.subscribers > 0

    def allow_message(self, client: Client) -> bool:
        """Charge one incoming message against the per-second limit."""
        client.received += 1
        second = int(self.clock())
        if second != client.window:
            client.window, client.window_count = second, 0
        client.window_count += 1
        return client.window_count <= self.limits.max_messages_per_s

    # -- delivery -----------------------------------------------------------------------------

    def publish(self, topic: Topic, payload: bytes) -> None:
        """Send one encoded update to every subscriber of `topic`."""
        self.stats.published += 1
        if topic.raw:
            self._fan(topic, topic.raw, payload)
        if topic.combined:
            self._fan(topic, topic.combined, topic.wrap(payload))

    def _fan(self, topic: Topic, clients: Iterable[Client], data: bytes) -> None:
        stats = self.stats
        sent = 0
        for client in list(clients) if topic.mode is Mode.DIFF else clients:
            if client.paused_at or client.backlog or client.latest or client.conflated:
                self._queue(client, topic, data)
                continue
            client.sender.send(data)
            client.sent += 1
            sent += 1
        stats.messages += sent
        stats.bytes += sent * len(data)

    def send(self, client: Client, data: bytes) -> None:
        """A direct reply (control answers, order acks): queued like APPEND when paused."""
        if client.closed:
            return
        if client.paused_at or client.backlog:
            client.backlog.append(data)
            self._check(client)
            return
        client.sender.send(data)
        client.sent += 1
        self.stats.messages += 1
        self.stats.bytes += len(data)

    def _queue(self, client: Client, topic: Topic, data: bytes) -> None:
        mode = topic.mode
        if mode is Mode.DIFF:
            client.conflated.add(topic)
            self.stats.conflated += 1
        elif mode is Mode.REPLACE:
            client.latest[topic.name] = data
        else:
            client.backlog.append(data)
        self._check(client)

    def _check(self, client: Client) -> None:
        limits = self.limits
        if len(client.backlog) > limits.max_queue:
            self.drop(client, f"slow consumer: more than {limits.max_queue} messages queued")
        elif client.paused_at and self.clock() - client.paused_at > limits.max_stall_s:
            self.drop(client, f"slow consumer: not reading for {limits.max_stall_s:g} s")

    def drop(self, client: Client, reason: str, code: int = CLOSE_POLICY) -> None:
        if client.closed:
            return
        self.stats.dropped_clients += 1
        self.disconnect(client)
        client.sender.close(code, reason)

    def paused(self, client: Client) -> None:
        if not client.paused_at:
            client.paused_at = self.clock()

    def resumed(self, client: Client) -> None:
        """The socket drained: resync conflated depth, then flush what was queued."""
        client.paused_at = 0.0
        sender = client.sender
        while client.conflated and not client.paused_at and not client.closed:
            topic = client.conflated.pop()
            if topic.resync is not None:
                snapshot = topic.resync()
                sender.send(topic.wrap(snapshot) if client in topic.combined else snapshot)
                client.sent += 1
                self.stats.resyncs += 1
        while client.latest and not client.paused_at and not client.closed:
            _, data = client.latest.popitem()
            sender.send(data)
            client.sent += 1
        backlog = client.backlog
        while backlog and not client.paused_at and not client.closed:
            sender.send(backlog.popleft())
            client.sent += 1

    def sweep(self) -> None:
        """Periodic: drop clients stalled past `max_stall_s` even when nothing is published."""
        for client in list(self.clients):
            if client.paused_at:
                self._check(client)

    def note_batch(self, updates: int) -> None:
        self.stats.batches += 1
        self.stats.batch_updates += updates
