"""Prometheus metrics with a hot path of plain integer increments.

prometheus-client's own histograms take a lock per observation (about a microsecond each); at
tens of thousands of orders a second the gateway instead counts into plain lists and dicts
on its one event loop thread, and a custom collector turns them into metric families only
when `/metrics` is scraped.

Exported (all prefixed `crossbook_`):
- `http_requests_total{route,status}`; `orders_total{outcome,code}` with outcome
  accepted / rejected / refused (by the gateway) and the reject code;
- `stage_seconds{stage}` histograms: `decode` (body to command), `auth`, `intake` (the
  socket read that completed the request until its command is submitted: parsing, waiting
  behind pipelined requests, auth, decode), `sequencer` (submit until durable and applied:
  queue wait + journal sync + apply), `journal_sync` (one group commit), `response` (encode
  and send), `request` (the node's whole share of an order: that socket read until the
  answer is written, to set beside a client's latency);
- `batch_size` histogram (commands per group commit), `inbox_depth` and `loop_lag_seconds`
  gauges, `sequencer_healthy`;
- `loop_delay_seconds` histogram: how late the loop ran a timer due every `LAG_PROBE`
  seconds (a request arriving then waited as long before it was read);
- `gc_pause_seconds{generation}` histograms: the process's collections, fed by
  `gc_policy.watch_pauses(metrics.gc_paused)`.

`LatencyTrace` (off unless a node is given one) keeps a timestamp record of every order
request, group commit, collection and late probe for offline attribution of slow requests.
"""

from __future__ import annotations

import json
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 1.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)
STAGES = ("decode", "auth", "intake", "sequencer", "journal_sync", "response", "request")
LAG_PROBE = 0.04
"""Seconds between the loop-delay probe's timers."""
_perf = time.perf_counter_ns


class FastHistogram:
    __slots__ = ("bounds", "counts", "scale", "total")

    def __init__(self, bounds: tuple[float, ...], scale: float = 1.0) -> None:
        """Buckets at `bounds`; observations are in units of `1 / scale` of them (1e9: ns)."""
        self.bounds = tuple(b * scale for b in bounds)
        self.scale = scale
        self.counts = [0] * (len(bounds) + 1)
        self.total: float = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def family_buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((repr(bound / self.scale), float(running)))
        running += self.counts[-1]
        out.append(("+Inf", float(running)))
        return out

    @property
    def sum(self) -> float:
        return self.total / self.scale


class Metrics(Collector):
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.orders: dict[tuple[str, str], int] = {}
        self.stages = {stage: FastHistogram(LATENCY_BUCKETS, 1e9) for stage in STAGES}
        self.batch_size = FastHistogram(tuple(float(b) for b in BATCH_BUCKETS))
        self.loop_lag = 0.0
        self.loop_delay = FastHistogram(LATENCY_BUCKETS, 1e9)
        self.gc_pause = [FastHistogram(LATENCY_BUCKETS, 1e9) for _ in range(3)]
        self.trace: LatencyTrace | None = None
        self.inbox_depth: Callable[[], int] = lambda: 0
        self.healthy: Callable[[], bool] = lambda: True
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def request(self, route: str, status: int) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def order(self, outcome: str, code: int = 0) -> None:
        key = (outcome, str(code) if code else "")
        self.orders[key] = self.orders.get(key, 0) + 1

    def observe_ns(self, stage: str, nanos: int) -> None:
        histogram = self.stages[stage]  # counts integer nanoseconds: no float per request
        histogram.counts[bisect_left(histogram.bounds, nanos)] += 1
        histogram.total += nanos

    def gc_paused(self, generation: int, started_ns: int, ended_ns: int) -> None:
        """One collection (`gc_policy.watch_pauses`)."""
        self.gc_pause[generation].observe(ended_ns - started_ns)
        if self.trace is not None:
            self.trace.gcs.append((started_ns, ended_ns, generation))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "crossbook_http_requests", "HTTP requests by route and status",
            labels=["route", "status"],
        )
        for (route, status), count in sorted(self.requests.items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        orders = CounterMetricFamily(
            "crossbook_orders", "Order requests by outcome and reject code",
            labels=["outcome", "code"],
        )
        for (outcome, code), count in sorted(self.orders.items()):
            orders.add_metric([outcome, code], count)
        yield orders
        stages = HistogramMetricFamily(
            "crossbook_stage_seconds", "Latency per request stage", labels=["stage"]
        )
        for name, histogram in self.stages.items():
            stages.add_metric([name], histogram.family_buckets(), histogram.sum)
        yield stages
        batch = HistogramMetricFamily("crossbook_batch_size", "Commands per group commit")
        batch.add_metric([], self.batch_size.family_buckets(), self.batch_size.sum)
        yield batch
        yield GaugeMetricFamily(
            "crossbook_inbox_depth", "Commands waiting for the sequencer",
            value=self.inbox_depth(),
        )
        delay = HistogramMetricFamily(
            "crossbook_loop_delay_seconds", "How late the loop ran a timer (probed every 40 ms)"
        )
        delay.add_metric([], self.loop_delay.family_buckets(), self.loop_delay.sum)
        yield delay
        pauses = HistogramMetricFamily(
            "crossbook_gc_pause_seconds", "Garbage collections by generation",
            labels=["generation"],
        )
        for generation, histogram in enumerate(self.gc_pause):
            pauses.add_metric([str(generation)], histogram.family_buckets(), histogram.sum)
        yield pauses
        yield GaugeMetricFamily(
            "crossbook_loop_lag_seconds", "Event loop lag at the last probe",
            value=self.loop_lag,
        )
        yield GaugeMetricFamily(
            "crossbook_sequencer_healthy", "1 while the sequencer accepts commands",
            value=1.0 if self.healthy() else 0.0,
        )


class LatencyTrace:
    """Timestamps (`time.perf_counter_ns`, CLOCK_MONOTONIC: comparable across the machine's
    processes) of what happened to each order request and around it, kept in memory and
    written as JSON by `dump`. For benchmarks: memory grows with every order."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, int, int, int, int, int]] = []
        """(peer port, received, submitted, resumed, written, status): received is the socket
        read that completed the request, resumed when the handler ran again after durability."""
        self.batches: list[tuple[int, int, int]] = []
        """(when the sinks saw the batch, its group commit's duration, commands)."""
        self.turns: list[tuple[int, int, int, int, int]] = []
        """Each batch's hand-offs (`SequencerStats.turns`): turn started, commit began and
        ended on the commit thread, released on the loop; commands."""
        self.gcs: list[tuple[int, int, int]] = []
        """(start, end, generation)."""
        self.lags: list[tuple[int, int]] = []
        """(due, ran) of each loop-delay probe that ran more than 2 ms late (the probe rides a
        timer wheel of 1 ms ticks)."""

    def dump(self, path: Path, **extra: Any) -> None:
        path.write_text(json.dumps({
            "requests": self.requests, "batches": self.batches, "gcs": self.gcs,
            "lags": self.lags, "turns": self.turns, **extra,
        }))


class LoopDelayProbe:
    """A timer every `interval` seconds on the running loop; how late each runs goes to
    `metrics.loop_delay` (and `metrics.loop_lag`, the latest)."""

    def __init__(self, metrics: Metrics, interval: float = LAG_PROBE) -> None:
        import asyncio  # noqa: PLC0415 (only where a loop runs)

        self.metrics = metrics
        self.interval = interval
        self._loop = asyncio.get_running_loop()
        self._due = _perf() + int(interval * 1e9)
        self._handle = self._loop.call_later(interval, self._fire)

    def _fire(self) -> None:
        now = _perf()
        late = max(0, now - self._due)
        metrics = self.metrics
        metrics.loop_delay.observe(late)
        metrics.loop_lag = late / 1e9
        if late > 2_000_000 and metrics.trace is not None:
            metrics.trace.lags.append((self._due, now))
        self._due = now + int(self.interval * 1e9)
        self._handle = self._loop.call_later(self.interval, self._fire)

    def close(self) -> None:
        self._handle.cancel()
