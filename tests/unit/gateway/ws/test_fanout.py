"""The fan-out core without sockets: encode and frame once, one write per client and turn,
combined wrapping, the slow-client policy (append, replace, conflate and resync, drop) and the
connection, subscription and message-rate limits."""

from __future__ import annotations

from collections.abc import Callable

from crossbook.gateway.ws.fanout import CLOSE_POLICY, Client, Hub, Limits, Mode


class FakeSender:
    """Records what the hub writes and how it closes."""

    def __init__(self) -> None:
        self.writes: list[list[bytes]] = []
        self.closed: tuple[int, str] | None = None

    def write(self, frames: list[bytes]) -> None:
        self.writes.append(list(frames))

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def buffered(self) -> int:
        return 0

    @property
    def messages(self) -> list[bytes]:
        """Every frame written, split back into messages (the test framing ends with `|`)."""
        return [m + b"|" for w in self.writes for blob in w for m in blob.split(b"|")[:-1]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_hub(**limits: int | float) -> tuple[Hub, list[Callable[[], None]], list[bytes], Clock]:
    scheduled: list[Callable[[], None]] = []
    framed: list[bytes] = []

    def frame(payload: bytes) -> bytes:
        framed.append(payload)
        return payload + b"|"

    clock = Clock()
    hub = Hub(Limits(**limits), clock=clock, frame=frame,  # type: ignore[arg-type]
              schedule=scheduled.append)
    return hub, scheduled, framed, clock


def connect(hub: Hub) -> tuple[FakeSender, Client]:
    sender = FakeSender()
    client = hub.connect(sender, "127.0.0.1:1", "binance")
    assert client is not None
    return sender, client


def test_one_update_is_framed_once_and_written_once_per_client_and_turn() -> None:
    hub, scheduled, framed, _ = make_hub()
    topic = hub.topic("btcusdt@trade", Mode.APPEND)
    senders = []
    for _ in range(50):
        sender = FakeSender()
        client = hub.connect(sender, "p", "binance")
        assert client is not None
        hub.subscribe(client, topic)
        senders.append(sender)
    for i in range(3):
        hub.publish(topic, b"t%d" % i)
    assert len(scheduled) == 1  # one flush per turn, however many messages
    assert all(not s.writes for s in senders)  # nothing leaves before the flush
    scheduled.pop()()
    assert framed == [b"t0", b"t1", b"t2"]  # framed once per message, not per subscriber
    for sender in senders:
        assert len(sender.writes) == 1  # one write per client for the whole turn
        assert sender.messages == [b"t0|", b"t1|", b"t2|"]
    assert hub.stats.published == 3
    assert hub.stats.messages == 150
    hub.publish(topic, b"t3")
    assert len(scheduled) == 1  # the next turn schedules again


def test_combined_subscribers_get_the_stream_wrapper_built_once() -> None:
    hub, scheduled, framed, _ = make_hub()
    topic = hub.topic("btcusdt@trade", Mode.APPEND)
    raw, raw_client = connect(hub)
    combined, combined_client = connect(hub)
    combined2, combined_client2 = connect(hub)
    hub.subscribe(raw_client, topic)
    hub.subscribe(combined_client, topic, combined=True)
    hub.subscribe(combined_client2, topic, combined=True)
    hub.publish(topic, b'{"p":1}')
    hub.flush()
    assert raw.messages == [b'{"p":1}|']
    wrapped = b'{"stream":"btcusdt@trade","data":{"p":1}}|'
    assert combined.messages == combined2.messages == [wrapped]
    assert len(framed) == 2  # once raw, once wrapped
    assert scheduled


def test_clients_with_the_same_subscriptions_share_one_buffer_per_batch() -> None:
    """A feed (same topics, each raw or combined) gets a batch joined once, in the order the
    topics were published; a client that changes its subscriptions moves to another feed."""
    hub, _, framed, _ = make_hub()
    trade, ticker = hub.topic("t", Mode.APPEND), hub.topic("b", Mode.REPLACE)
    both = [connect(hub) for _ in range(3)]
    for _, client in both:
        hub.subscribe(client, ticker)
        hub.subscribe(client, trade)
    only, only_client = connect(hub)
    hub.subscribe(only_client, trade)
    _, wrapped_client = connect(hub)
    hub.subscribe(wrapped_client, trade, combined=True)
    hub.subscribe(wrapped_client, ticker)
    hub.publish(trade, b"a1")
    hub.publish(ticker, b"b1")
    hub.publish(trade, b"a2")
    hub.distribute()
    assert len(hub.feeds) == 3
    blobs = [client.out for _, client in both]
    assert blobs[0] == [b"a1|a2|b1|"]
    assert all(out[0] is blobs[0][0] for out in blobs)  # the same bytes, not copies
    assert only_client.out == [b"a1|a2|"]
    assert wrapped_client.out == [b'{"stream":"t","data":a1}|{"stream":"t","data":a2}|b1|']
    assert len(framed) == 5  # a1, a2 raw and wrapped, b1 once
    hub.flush()
    moved, moved_client = both[0]
    hub.unsubscribe(moved_client, "b")  # now in the feed of `only`
    hub.publish(ticker, b"b2")
    hub.publish(trade, b"a3")
    hub.flush()
    assert moved.messages == [b"a1|", b"a2|", b"b1|", b"a3|"]
    assert only.messages == [b"a1|", b"a2|", b"a3|"]
    assert both[1][0].messages == [b"a1|", b"a2|", b"b1|", b"b2|", b"a3|"]
    assert len(hub.feeds) == 3
    for _, client in both[1:]:
        hub.disconnect(client)
    hub.disconnect(wrapped_client)
    assert len(hub.feeds) == 1  # feeds without members are gone
    assert not ticker.feeds


def test_direct_replies_follow_the_batch_stream_messages_in_the_same_write() -> None:
    hub, _, _, _ = make_hub()
    topic = hub.topic("user:7", Mode.APPEND)
    sender, client = connect(hub)
    hub.subscribe(client, topic)
    hub.publish(topic, b"event")
    hub.distribute()  # the publisher ends each batch with this
    hub.send(client, b"ack")
    hub.flush()
    assert sender.writes == [[b"event|", b"ack|"]]


def test_a_paused_client_is_conflated_replaced_and_queued_then_resynced_on_resume() -> None:
    hub, _, _, _ = make_hub()
    depth = hub.topic("btcusdt@depth@100ms", Mode.DIFF, resync=lambda: b"SNAP")
    ticker = hub.topic("btcusdt@bookTicker", Mode.REPLACE)
    trades = hub.topic("btcusdt@trade", Mode.APPEND)
    slow, slow_client = connect(hub)
    fast, fast_client = connect(hub)
    for topic in (depth, ticker, trades):
        hub.subscribe(slow_client, topic)
        hub.subscribe(fast_client, topic)
    hub.paused(slow_client)
    for i in range(3):
        hub.publish(depth, b"d%d" % i)
        hub.publish(ticker, b"b%d" % i)
        hub.publish(trades, b"t%d" % i)
        hub.flush()
    assert len(fast.messages) == 9  # the healthy client is not held back
    assert slow.writes == []
    assert slow_client.queued == 3 + 1
    assert hub.stats.conflated == 3
    hub.resumed(slow_client)
    assert slow.messages == [b"SNAP|", b"b2|", b"t0|", b"t1|", b"t2|"]
    assert hub.stats.resyncs == 1
    hub.publish(depth, b"d3")
    hub.flush()
    assert slow.messages[-1] == b"d3|"  # diffs again after the snapshot


def test_a_client_past_max_queue_is_dropped_with_1008_and_leaves_its_topics() -> None:
    hub, _, _, _ = make_hub(max_queue=5)
    trades = hub.topic("btcusdt@trade", Mode.APPEND)
    slow, slow_client = connect(hub)
    fast, fast_client = connect(hub)
    hub.subscribe(slow_client, trades)
    hub.subscribe(fast_client, trades)
    hub.paused(slow_client)
    for i in range(4):
        hub.publish(trades, b"t%d" % i)
    hub.flush()
    assert slow.closed is None
    for i in range(2):
        hub.publish(trades, b"u%d" % i)
    hub.flush()
    assert slow.closed is not None
    assert slow.closed[0] == CLOSE_POLICY
    assert slow.closed[1].startswith("slow consumer")
    assert hub.stats.dropped_clients == 1
    assert slow_client not in trades.raw
    assert slow_client not in hub.clients
    assert len(fast.messages) == 6
    hub.publish(trades, b"v")
    hub.flush()
    assert len(fast.messages) == 7


def test_a_stalled_client_is_dropped_by_the_sweep_even_when_nothing_is_published() -> None:
    hub, _, _, clock = make_hub(max_stall_s=2.0)
    sender, client = connect(hub)
    hub.paused(client)
    clock.now += 1.0
    hub.sweep()
    assert sender.closed is None
    clock.now += 1.5
    hub.sweep()
    assert sender.closed is not None
    assert "not reading" in sender.closed[1]


def test_a_stalled_client_holds_bounded_memory_under_a_flood() -> None:
    hub, _, _, _ = make_hub(max_queue=100)
    depth = hub.topic("d", Mode.DIFF, resync=lambda: b"S")
    ticker = hub.topic("b", Mode.REPLACE)
    _, client = connect(hub)
    hub.subscribe(client, depth)
    hub.subscribe(client, ticker)
    hub.paused(client)
    for i in range(10_000):
        hub.publish(depth, b"%d" % i)
        hub.publish(ticker, b"%d" % i)
    hub.flush()
    assert client.queued == 1
    assert client.conflated == {depth}


def test_connection_subscription_and_message_rate_limits() -> None:
    hub, _, _, clock = make_hub(max_connections=2, max_subscriptions=2, max_messages_per_s=3)
    _, first = connect(hub)
    connect(hub)
    assert hub.connect(FakeSender(), "p", "binance") is None
    assert hub.stats.refused_connections == 1
    topics = [hub.topic(f"t{i}", Mode.APPEND) for i in range(3)]
    assert hub.subscribe(first, topics[0])
    assert hub.subscribe(first, topics[1])
    assert hub.subscribe(first, topics[1])  # again: no change
    assert not hub.subscribe(first, topics[2])
    hub.unsubscribe(first, "t0")
    assert "t0" not in hub.topics  # a topic without subscribers is forgotten
    assert hub.subscribe(first, topics[2])
    assert [hub.allow_message(first) for _ in range(4)] == [True, True, True, False]
    clock.now += 1.0
    assert hub.allow_message(first)


def test_a_failing_socket_is_dropped_without_starving_the_others() -> None:
    hub, _, _, _ = make_hub()
    topic = hub.topic("t", Mode.APPEND)

    class Broken(FakeSender):
        def write(self, frames: list[bytes]) -> None:
            raise RuntimeError("closed")

    broken = Broken()
    bad = hub.connect(broken, "p", "binance")
    assert bad is not None
    hub.subscribe(bad, topic)
    good, good_client = connect(hub)
    hub.subscribe(good_client, topic)
    hub.publish(topic, b"x")
    hub.flush()
    assert good.messages == [b"x|"]
    assert bad.closed
    assert hub.stats.dropped_clients == 1


def test_limits_from_the_environment() -> None:
    limits = Limits.from_env({"CROSSBOOK_WS_MAX_QUEUE": "7", "CROSSBOOK_WS_MAX_STALL_S": "0.5"})
    assert limits.max_queue == 7
    assert limits.max_stall_s == 0.5


def test_an_expensive_flush_delays_the_next_and_coalesces_the_batches() -> None:
    """With flush_share 0.5, a flush that cost 2 s makes the next wait 2 s; what is published
    meanwhile goes out in one write per client, in order."""
    clock = Clock()
    scheduled: list[tuple[float, Callable[[], None]]] = []
    hub = Hub(Limits(flush_share=0.5), clock=clock,
              schedule=lambda cb: scheduled.append((0.0, cb)),
              later=lambda delay, cb: scheduled.append((delay, cb)), work_clock=clock)
    client = hub.connect(FakeSender(), "peer", "raw")
    assert client is not None
    topic = hub.topic("t", Mode.APPEND)
    hub.subscribe(client, topic)

    class SlowSender(FakeSender):
        def write(self, frames: list[bytes]) -> None:
            clock.now += 2.0  # this write costs 2 s
            super().write(frames)

    slow = SlowSender()
    client.sender = slow
    hub.publish(topic, b"a|")
    hub.distribute()
    delay, flush = scheduled.pop()
    assert delay == 0.0  # nothing flushed yet: at once
    flush()
    for payload in (b"b|", b"c|"):
        hub.publish(topic, payload)
        hub.distribute()
    delay, flush = scheduled.pop()
    assert delay == 2.0
    assert not scheduled  # one delayed flush for both batches
    clock.now += delay
    flush()
    assert slow.writes == [[b"a|"], [b"b|", b"c|"]]
    assert hub.stats.flushes == 2
    assert hub.stats.flush_s == 4.0


def test_time_preempted_is_not_counted_as_the_cost_of_a_flush() -> None:
    """Only the loop thread's own time (`work_clock`) holds back the next flush: a flush that
    took long on the wall clock because the process was descheduled delays nothing."""
    clock, work = Clock(), Clock()
    scheduled: list[tuple[float, Callable[[], None]]] = []
    hub = Hub(Limits(flush_share=0.5), clock=clock,
              schedule=lambda cb: scheduled.append((0.0, cb)),
              later=lambda delay, cb: scheduled.append((delay, cb)), work_clock=work)
    client = hub.connect(FakeSender(), "peer", "raw")
    assert client is not None
    topic = hub.topic("t", Mode.APPEND)
    hub.subscribe(client, topic)

    class PreemptedSender(FakeSender):
        def write(self, frames: list[bytes]) -> None:
            clock.now += 2.0  # two wall-clock seconds, no CPU
            super().write(frames)

    client.sender = PreemptedSender()
    hub.publish(topic, b"a|")
    scheduled.pop()[1]()
    hub.publish(topic, b"b|")
    delay, _ = scheduled.pop()
    assert delay == 0.0


def test_flushes_start_at_a_different_client_each_time() -> None:
    hub, scheduled, _, _ = make_hub()
    topic = hub.topic("t", Mode.APPEND)
    order: list[int] = []

    class Recorder(FakeSender):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

        def write(self, frames: list[bytes]) -> None:
            order.append(self.index)

    for i in range(5):
        client = hub.connect(Recorder(i), "p", "raw")
        assert client is not None
        hub.subscribe(client, topic)
    firsts = set()
    for i in range(5):
        order.clear()
        hub.publish(topic, b"%d|" % i)
        scheduled.pop()()
        assert sorted(order) == [0, 1, 2, 3, 4]  # everyone, once
        firsts.add(order[0])
    assert len(firsts) == 5  # no client is always first (or always last)


def test_cheap_flushes_are_never_delayed() -> None:
    clock = Clock()
    scheduled: list[tuple[float, Callable[[], None]]] = []
    hub = Hub(Limits(), clock=clock, schedule=lambda cb: scheduled.append((0.0, cb)),
              later=lambda delay, cb: scheduled.append((delay, cb)), work_clock=clock)
    client = hub.connect(FakeSender(), "peer", "raw")
    assert client is not None
    topic = hub.topic("t", Mode.APPEND)
    hub.subscribe(client, topic)
    delays = []
    for payload in (b"a|", b"b|", b"c|"):
        hub.publish(topic, payload)
        hub.distribute()
        delay, flush = scheduled.pop()
        delays.append(delay)
        flush()
    assert delays == [0.0, 0.0, 0.0]


def test_a_round_over_many_clients_is_split_over_loop_turns() -> None:
    """`flush_clients` per turn; a client not yet written when the next batch comes gets it
    in the same write, one already written gets it in the next round."""
    hub, scheduled, _, _ = make_hub(flush_clients=2)
    topic = hub.topic("t", Mode.APPEND)
    senders = []
    for _ in range(5):
        sender, client = connect(hub)
        hub.subscribe(client, topic)
        senders.append(sender)
    hub.publish(topic, b"a")
    scheduled.pop()()
    written = [s for s in senders if s.writes]
    assert len(written) == 2
    hub.publish(topic, b"b")  # during the round
    while scheduled:
        scheduled.pop()()
    for sender in senders:
        assert sender.messages == [b"a|", b"b|"]
        assert len(sender.writes) == (2 if sender in written else 1)
    assert hub.stats.flushes == 2
    assert hub.stats.writes == 7


def test_output_waiting_for_its_round_goes_before_what_was_queued_while_paused() -> None:
    hub, scheduled, _, _ = make_hub()
    topic = hub.topic("t", Mode.APPEND)
    sender, client = connect(hub)
    hub.subscribe(client, topic)
    hub.publish(topic, b"a")
    hub.distribute()  # handed to the client, its write not made yet
    hub.paused(client)
    hub.publish(topic, b"b")
    hub.distribute()  # queued: the socket is paused
    hub.resumed(client)
    while scheduled:
        scheduled.pop()()
    assert sender.messages == [b"a|", b"b|"]


def test_under_steady_load_a_round_keeps_the_order_of_the_last() -> None:
    """A client written early in a round and given new output during it is written early in
    the next round too: no client waits much more than one round between two writes."""
    hub, scheduled, _, _ = make_hub(flush_clients=2)
    topic = hub.topic("t", Mode.APPEND)
    order: list[int] = []

    class Recorder(FakeSender):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

        def write(self, frames: list[bytes]) -> None:
            order.append(self.index)

    for i in range(6):
        client = hub.connect(Recorder(i), "p", "raw")
        assert client is not None
        hub.subscribe(client, topic)
    for i in range(6):
        hub.publish(topic, b"%d|" % i)  # a batch in every turn: rounds follow each other
        scheduled.pop()()
    assert sorted(order[:6]) == list(range(6))
    assert order[6:] == order[:6]


def test_the_hold_back_counts_the_loops_other_work_between_the_turns_of_a_round() -> None:
    """flush_share bounds the share of the loop's time spent writing: a round spread over turns
    with other work between them has already left that time to the rest of the loop."""
    clock = Clock()
    scheduled: list[tuple[float, Callable[[], None]]] = []
    hub = Hub(Limits(flush_share=0.5, flush_clients=1), clock=clock,
              schedule=lambda cb: scheduled.append((0.0, cb)),
              later=lambda delay, cb: scheduled.append((delay, cb)), work_clock=clock)
    topic = hub.topic("t", Mode.APPEND)

    class CostlySender(FakeSender):
        def write(self, frames: list[bytes]) -> None:
            clock.now += 1.0  # each write costs 1 s
            super().write(frames)

    for _ in range(2):
        client = hub.connect(CostlySender(), "peer", "raw")
        assert client is not None
        hub.subscribe(client, topic)
    hub.publish(topic, b"a|")
    scheduled.pop()[1]()  # the first client, 1 s
    clock.now += 1.5  # the loop's other work
    scheduled.pop()[1]()  # the second: the round took 3.5 s of which 2 s writing
    hub.publish(topic, b"b|")
    delay, _ = scheduled.pop()
    assert delay == 0.5  # 2 s / 0.5 after the round's start, not 2 s after its end
