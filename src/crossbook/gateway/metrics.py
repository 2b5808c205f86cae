"""Prometheus metrics with a hot path of plain integer increments.

prometheus-client's own histograms take a lock per observation (about a microsecond each); at
tens of thousands of orders a second the gateway instead counts into plain lists and dicts
on its one event loop thread, and a custom collector turns them into metric families only
when `/metrics` is scraped.

Exported (all prefixed `crossbook_`):
- `http_requests_total{route,status}`; `orders_total{outcome,code}` with outcome
  accepted / rejected / refused (by the gateway) and the reject code;
- `stage_seconds{stage}` histograms: `decode` (body to command), `auth`, `sequencer` (submit
  until durable and applied: queue wait + journal sync + apply), `journal_sync` (one group
  commit), `response` (encode and send);
- `batch_size` histogram (commands per group commit), `inbox_depth` and `loop_lag_seconds`
  gauges, `sequencer_healthy`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

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
STAGES = ("decode", "auth", "sequencer", "journal_sync", "response")


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
        yield GaugeMetricFamily(
            "crossbook_loop_lag_seconds", "Event loop lag at the last probe",
            value=self.loop_lag,
        )
        yield GaugeMetricFamily(
            "crossbook_sequencer_healthy", "1 while the sequencer accepts commands",
            value=1.0 if self.healthy() else 0.0,
        )
