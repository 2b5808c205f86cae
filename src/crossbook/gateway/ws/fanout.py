"""Fan-out: topics, subscribers, and the slow-consumer policy, independent of the socket library.

Theory of operation. A *topic* is one stream (`btcusdt@depth@100ms`, the native depth channel
of a symbol, one account's user events). A publisher encodes each update once per topic and
calls `Hub.publish(topic, payload)`; the hub hands the same bytes to every subscriber (and
wraps them once per topic for Binance combined connections: `{"stream":..,"data":..}`).

Delivery is batched per loop turn. `publish` only appends the payload to its topic;
`distribute()` (the publisher calls it at the end of each sequencer batch and each tick)
frames each topic's messages of the turn once (`frame`, the socket's message framing) and
hands them to the subscribers' output lists, and `flush()` (scheduled once per turn with
`schedule`, e.g. `loop.call_soon`) writes each client's output list with one `Sender.write`.
Clients with the same subscriptions (each topic raw or combined) share a *feed*: a batch is
joined once per feed, in the order its topics were published, and handed to each member with
one list append, so the per-subscriber cost is one append per batch and one write per turn,
whatever the number of messages and streams; direct replies (`send`: control answers, order
acks) join the same output list, after the batch's stream messages.

Writes are one system call per client, so with many clients a flush is the node's largest
cost. A flush is a round over the clients with output, `flush_clients` of them per loop
turn: each write sends at once, so the first clients' bytes leave (and their readers, on the
other core, start) while the hub is still writing to the next ones, and requests are served
between the turns. A client that gets new output during the round gets it in its write if it
has not been written yet, else in the next round. A round that starts from idle starts at a
different client (a rotation by a large prime stride), so every client waits on average the
same share of a long round instead of the same ones always coming last. Under steady load
(output arrived during the previous round) a round keeps the order of the previous one, the
clients by their last write: every client then waits about one round and its hold-back
between two writes, where a fresh rotation would make a client written first in one round
and last in the next wait almost two.

The hub keeps its writing to at most `flush_share` of the loop's time: a round that cost `t`
seconds is followed by the next one no earlier than `t / share` after it started (with
`later`, e.g. `loop.call_later`), and the batches of that interval go out in the same writes.
The loop's other work between the round's turns counts toward that interval: a round spread
over many turns has left the loop its share already and the next one waits little or not at
all. The cost is the loop thread's CPU time in the hub's flushes (`work_clock`,
`time.thread_time`), not the wall clock: the time the process spends preempted on a busy
machine is not writing and must not hold the next round back. (picows' transports make the
system call in `write`, so the kernel's part of the writes is in it; a transport that makes
it after the callback leaves it out: measured from outside the callback it would take in
whatever else the loop does in between.) A cheap round (few clients) waits for nothing; an
expensive one adds at most its own cost to the delivery latency, instead of letting rounds
queue up behind each other.

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
import operator
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


_DIFF, _REPLACE = Mode.DIFF, Mode.REPLACE


class Sender(Protocol):
    """The socket of one client."""

    def write(self, frames: list[bytes]) -> None:
        """Write already framed messages (or joined runs of them), in order, at once."""
        ...

    def close(self, code: int, reason: str) -> None: ...

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        ...


Resync = Callable[[], bytes]
"""Builds a fresh snapshot message for a DIFF topic (raw form)."""

Frame = Callable[[bytes], bytes]
"""One message's payload to its bytes on the wire (the WebSocket frame)."""

Schedule = Callable[[Callable[[], None]], object]
Later = Callable[[float, Callable[[], None]], object]
"""Runs a callback soon, once the current batch of work is done (`loop.call_soon`)."""


def _unframed(payload: bytes) -> bytes:
    return payload


class Topic:
    __slots__ = ("combined", "feeds", "mode", "name", "pending", "raw", "resync")

    def __init__(self, name: str, mode: Mode, resync: Resync | None = None) -> None:
        self.name = name
        self.mode = mode
        self.resync = resync
        self.raw: set[Client] = set()
        self.combined: set[Client] = set()
        """Subscribers that get `{"stream": name, "data": payload}`."""
        self.pending: list[bytes] = []
        """Payloads published since the last `Hub.distribute()`."""
        self.feeds: dict[Feed, bool] = {}
        """The feeds that include this topic, each with whether it gets the combined form."""

    @property
    def subscribers(self) -> int:
        return len(self.raw) + len(self.combined)

    def wrap(self, payload: bytes) -> bytes:
        return b'{"stream":"%s","data":%s}' % (self.name.encode(), payload)


FeedKey = frozenset[tuple[Topic, bool]]


class Feed:
    """The clients with the same subscriptions (each topic raw or combined): `distribute` joins
    a batch once per feed and hands it to each member with one append."""

    __slots__ = ("key", "members")

    def __init__(self, key: FeedKey) -> None:
        self.key = key
        self.members: set[Client] = set()


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
    flush_share: float = 0.5
    """Most of the loop's CPU time spent writing to clients (see the module docstring)."""
    flush_clients: int = 100
    """Clients written per loop turn; a round over more continues in the next turns."""

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
    flushes: int = 0
    """Rounds of writes to clients (at most one write per client each)."""
    writes: int = 0
    """`Sender.write` calls (socket writes) made by flushes."""
    flush_s: float = 0.0
    """CPU seconds spent in flushes (the kernel's part of the writes follows them)."""
    round_s: float = 0.0
    """Wall seconds from the start of each round to its last write."""


_ids = itertools.count(1)
_STRIDE = 7919
"""Rotation of the first client written per flush (a prime: it visits every position)."""
_written = operator.attrgetter("written")

_MOVING = Feed(frozenset())
"""The feed of a client whose subscriptions changed, until `Hub.distribute` places it."""

_Part = tuple[Topic, list[bytes], bytes]
"""One topic's messages of a batch in one form: the topic, its frames, and them joined."""


def _part(topic: Topic, frames: list[bytes]) -> _Part:
    return topic, frames, frames[0] if len(frames) == 1 else b"".join(frames)


class Client:
    __slots__ = (
        "backlog", "closed", "conflated", "connected_at", "feed", "id", "kind", "latest",
        "login", "out", "paused_at", "peer", "received", "sender", "sent", "topics", "window",
        "window_count", "written",
    )

    def __init__(self, sender: Sender, peer: str, kind: str) -> None:
        self.id = next(_ids)
        self.sender = sender
        self.peer = peer
        self.kind = kind
        self.topics: dict[str, Topic] = {}
        self.feed: Feed | None = None
        """The clients with the same subscriptions (`_MOVING` from a change of subscriptions
        until the next `Hub.distribute`; None without subscriptions)."""
        self.out: list[bytes] = []
        """Frames for the next `Hub.flush()` (this loop turn), not yet written."""
        self.backlog: deque[bytes] = deque()
        """Frames held while the socket is paused (APPEND topics and direct replies)."""
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
        self.written = 0
        """When the hub last wrote to the client (`Hub` counts its writes), 0 for never."""

    @property
    def queued(self) -> int:
        return len(self.backlog) + len(self.latest)

    @property
    def slow(self) -> bool:
        """Paused or holding queued messages: new messages go through the slow-client policy."""
        return bool(self.paused_at or self.backlog or self.latest or self.conflated)

    def lag_s(self, now: float) -> float:
        return now - self.paused_at if self.paused_at else 0.0


class Hub:
    """Topics, clients and delivery.

    `frame` turns a payload into wire bytes (identity by default); `schedule` is asked once
    per turn to run `flush()` (without it, the owner calls `flush()` itself), `later` to run
    it after a delay when the last flush was expensive (without it, flushes are never
    delayed); `work_clock` measures what a flush cost (the loop thread's CPU time).
    """

    def __init__(self, limits: Limits | None = None,
                 clock: Callable[[], float] = time.monotonic, frame: Frame = _unframed,
                 schedule: Schedule | None = None, later: Later | None = None,
                 work_clock: Callable[[], float] = time.thread_time) -> None:
        self.limits = limits or Limits()
        self.stats = HubStats()
        self.clients: set[Client] = set()
        self.topics: dict[str, Topic] = {}
        self.feeds: dict[FeedKey, Feed] = {}
        self._moved: list[Client] = []
        """Clients whose subscriptions changed since the last `distribute` (placed there, once
        for any number of changes)."""
        self.clock = clock
        self.frame = frame
        self.schedule = schedule
        self.later = later
        self.work_clock = work_clock
        self._next_flush = 0.0
        """Clock time before which a flush waits (see `flush_share`)."""
        self._published: list[Topic] = []
        """Topics with pending payloads, in first-publish order."""
        self._dirty: list[Client] = []
        """Clients with a non-empty `out`, for the next round of writes."""
        self._round: list[Client] = []
        """Clients of the round in progress not written yet, the next one last."""
        self._round_cost = 0.0
        self._round_start = 0.0
        self._carried = False
        """The last round ended with output waiting (steady load): keep the order of writes."""
        self._scheduled = False

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
        self._unfeed(client)
        for topic in list(client.topics.values()):
            self._leave(client, topic)
        client.topics.clear()
        client.backlog.clear()
        client.latest.clear()
        client.out.clear()

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
        self._unfeed(client)
        return True

    def unsubscribe(self, client: Client, name: str) -> None:
        topic = client.topics.pop(name, None)
        if topic is not None:
            self._leave(client, topic)
            self._unfeed(client)

    def _unfeed(self, client: Client) -> None:
        """Take the client out of its feed; the next `distribute` places it again."""
        feed = client.feed
        if feed is _MOVING:
            if client.closed:
                client.feed = None
            return
        if feed is not None:
            feed.members.discard(client)
            if not feed.members:
                del self.feeds[feed.key]
                for topic, _ in feed.key:
                    topic.feeds.pop(feed, None)
        if client.closed:
            client.feed = None
        else:
            client.feed = _MOVING
            self._moved.append(client)

    def _place(self) -> None:
        moved, self._moved = self._moved, []
        feeds = self.feeds
        for client in moved:
            if client.feed is not _MOVING:
                continue
            if not client.topics:
                client.feed = None
                continue
            key = frozenset((t, client in t.combined) for t in client.topics.values())
            feed = feeds.get(key)
            if feed is None:
                feed = feeds[key] = Feed(key)
                for topic, combined in key:
                    topic.feeds[feed] = combined
            feed.members.add(client)
            client.feed = feed

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
        """Queue one encoded update for every subscriber of `topic` (see `distribute`)."""
        self.stats.published += 1
        if not topic.pending:
            self._published.append(topic)
            self._wake()
        topic.pending.append(payload)

    def distribute(self) -> None:
        """Hand each topic's pending payloads to its subscribers: frame and join once per topic
        (and once more for the combined form), join once per feed what its topics got, then
        one append per healthy member."""
        published = self._published
        if not published:
            return
        self._published = []
        if self._moved:
            self._place()
        frame = self.frame
        batch: dict[Feed, list[_Part]] = {}
        for topic in published:
            payloads = topic.pending
            topic.pending = []
            raw: _Part | None = None
            wrapped: _Part | None = None
            for feed, combined in topic.feeds.items():
                if combined:
                    if wrapped is None:
                        wrap = topic.wrap
                        wrapped = _part(topic, [frame(wrap(p)) for p in payloads])
                    part = wrapped
                else:
                    if raw is None:
                        raw = _part(topic, [frame(p) for p in payloads])
                    part = raw
                parts = batch.get(feed)
                if parts is None:
                    batch[feed] = [part]
                else:
                    parts.append(part)
        for feed, parts in batch.items():
            self._fan(feed.members, parts)

    def _fan(self, clients: Iterable[Client], parts: list[_Part]) -> None:
        if len(parts) == 1:
            _, frames, blob = parts[0]
            count = len(frames)
        else:
            blob = b"".join([part[2] for part in parts])
            count = sum([len(part[1]) for part in parts])
        dirty = self._dirty
        slow: list[Client] = []
        sent = 0
        for client in clients:
            if client.paused_at or client.backlog or client.latest or client.conflated:
                slow.append(client)
                continue
            out = client.out
            if not out:
                dirty.append(client)
            out.append(blob)
            client.sent += count
            sent += 1
        if sent:
            stats = self.stats
            stats.messages += sent * count
            stats.bytes += sent * len(blob)
            self._wake()
        for client in slow:  # after the loop: the policy may drop a client (leave its topics)
            for topic, frames, _ in parts:
                if client.closed:
                    break
                self._queue(client, topic, frames)

    def send(self, client: Client, data: bytes) -> None:
        """A direct reply (control answers, order acks): queued like APPEND when paused."""
        if client.closed:
            return
        frame = self.frame(data)
        if client.paused_at or client.backlog:
            client.backlog.append(frame)
            self._check(client)
            return
        out = client.out
        if not out:
            self._dirty.append(client)
            self._wake()
        out.append(frame)
        client.sent += 1
        self.stats.messages += 1
        self.stats.bytes += len(frame)

    def send_many(self, client: Client, payloads: list[bytes]) -> None:
        """`send` for each of `payloads`, in order, with one hand-over to the output list."""
        if client.closed or not payloads:
            return
        frame = self.frame
        frames = [frame(p) for p in payloads]
        if client.paused_at or client.backlog:
            client.backlog.extend(frames)
            self._check(client)
            return
        out = client.out
        if not out:
            self._dirty.append(client)
            self._wake()
        out += frames
        count = len(frames)
        client.sent += count
        stats = self.stats
        stats.messages += count
        stats.bytes += sum(map(len, frames))

    def _wake(self) -> None:
        if self._scheduled or self.schedule is None:
            return
        self._scheduled = True
        wait = self._next_flush - self.clock() if self.later is not None else 0.0
        if wait > 0:
            assert self.later is not None
            self.later(wait, self.flush)
        else:
            self.schedule(self.flush)

    def flush(self) -> None:
        """Write each client's output with one `Sender.write`: a round over the clients with
        output, `flush_clients` of them per loop turn (see the module docstring)."""
        self._scheduled = False
        self.distribute()
        stats = self.stats
        pending = self._round
        if not pending:
            dirty = self._dirty
            if not dirty:
                return
            self._dirty = []
            if self._carried:
                # Steady load: the clients written first last round go first again, so none
                # waits much more than one round between two writes.
                dirty.sort(key=_written, reverse=True)
            else:
                count = len(dirty)
                if count > 1:
                    start = stats.flushes * _STRIDE % count
                    dirty = dirty[start:] + dirty[:start]
                dirty.reverse()  # taken from the end, so the rotation's start goes first
            self._round = pending = dirty
            self._round_cost = 0.0
            self._round_start = self.clock()
            stats.flushes += 1
        started = self.work_clock()
        chunk = len(pending) if self.schedule is None else max(1, self.limits.flush_clients)
        pop = pending.pop
        written = 0
        seq = stats.writes
        while pending and written < chunk:
            client = pop()
            out = client.out
            if out and not client.closed:
                client.out = []
                written += 1
                client.written = seq + written
                try:
                    client.sender.write(out)
                except Exception as exc:  # one broken socket must not starve the others
                    self.drop(client, f"write failed: {exc}", CLOSE_GOING_AWAY)
        stats.writes += written
        cost = self.work_clock() - started
        stats.flush_s += cost
        self._round_cost += cost
        if pending:  # the rest of the round in the next turn, held back by nothing
            if self.schedule is not None:
                self._scheduled = True
                self.schedule(self.flush)
            return
        stats.round_s += self.clock() - self._round_start
        if self.later is not None:
            share = min(max(self.limits.flush_share, 0.05), 1.0)
            self._next_flush = self._round_start + self._round_cost / share
        self._carried = bool(self._dirty)
        if self._dirty or self._published:  # arrived during the round
            self._wake()

    def _queue(self, client: Client, topic: Topic, frames: list[bytes]) -> None:
        mode = topic.mode
        if mode is _DIFF:
            client.conflated.add(topic)
            self.stats.conflated += len(frames)
        elif mode is _REPLACE:
            client.latest[topic.name] = frames[-1]
        else:
            client.backlog.extend(frames)
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
        """The socket drained: resync conflated depth, then flush what was queued. Output
        handed to the client before it paused, still waiting for its write in a round, is
        older than all of that and goes first."""
        client.paused_at = 0.0
        sender = client.sender
        frame = self.frame
        if client.out and not client.closed:
            out, client.out = client.out, []
            sender.write(out)
        while client.conflated and not client.paused_at and not client.closed:
            topic = client.conflated.pop()
            if topic.resync is not None:
                snapshot = topic.resync()
                sender.write([frame(topic.wrap(snapshot) if client in topic.combined
                                    else snapshot)])
                client.sent += 1
                self.stats.resyncs += 1
        while client.latest and not client.paused_at and not client.closed:
            _, data = client.latest.popitem()
            sender.write([data])
            client.sent += 1
        backlog = client.backlog
        while backlog and not client.paused_at and not client.closed:
            sender.write([backlog.popleft()])
            client.sent += 1

    def sweep(self) -> None:
        """Periodic: drop clients stalled past `max_stall_s` even when nothing is published."""
        for client in list(self.clients):
            if client.paused_at:
                self._check(client)

    def note_batch(self, updates: int) -> None:
        self.stats.batches += 1
        self.stats.batch_updates += updates
