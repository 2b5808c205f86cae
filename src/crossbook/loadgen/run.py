"""The measuring loop of `crossbook bench`: closed or open loop, HDR latencies, timeline.

Contract:
- Closed loop (`rate` None): every connection keeps `window` requests in flight; latency is
  send → answer.
- Open loop (`rate` R): requests are due at `start + i / R`, spread round-robin over the
  connections; a sender wakes every `tick` seconds and sends everything due. Latency is
  measured from the *intended* send time, so a stalled server or a late sender shows up
  as latency instead of fewer samples (no coordinated omission).
- Answers go into an HDR histogram in microseconds (1 µs .. 100 s, 3 significant digits);
  rejects and lost requests are counted by code (they are latency samples too); completed
  requests per second make the timeline. A progress bar (tqdm, on stderr) shows the rate.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]
from tqdm import tqdm  # type: ignore[import-untyped]

from crossbook.loadgen.flow import OrderFlow
from crossbook.loadgen.targets import Outcome, Target

PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)


@dataclass(slots=True)
class Stats:
    histogram: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 100_000_000, 3))
    errors: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    timeline: list[int] = field(default_factory=list)
    sent: int = 0
    done: int = 0
    elapsed: float = 0.0

    def record(self, started: float, outcome: Outcome, now: float, origin: float) -> None:
        self.histogram.record_value(max(1, int((now - started) * 1e6)))
        self.done += 1
        if not outcome.ok:
            self.errors[outcome.code] += 1
        second = int(now - origin)
        timeline = self.timeline
        while len(timeline) <= second:
            timeline.append(0)
        timeline[second] += 1

    def summary(self) -> dict[str, Any]:
        h = self.histogram
        latency = {f"p{p:g}": h.get_value_at_percentile(p) for p in PERCENTILES}
        latency["max"] = h.get_max_value()
        latency["mean"] = round(h.get_mean_value(), 1)
        return {
            "sent": self.sent, "completed": self.done, "seconds": round(self.elapsed, 3),
            "throughput_per_s": round(self.done / self.elapsed, 1) if self.elapsed else 0,
            "latency_us": latency, "errors_by_code": {str(k): v for k, v in self.errors.items()},
            "mix": dict(self.kinds), "timeline_per_s": self.timeline,
        }

    def curve(self) -> list[tuple[float, int]]:
        """(percentile, µs) points for the percentile plot."""
        marks = (0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999, 100)
        return [(float(p), int(self.histogram.get_value_at_percentile(p))) for p in marks]


async def run_load(
    targets: Sequence[Target], flow: OrderFlow, *, duration: float, window: int = 1,
    rate: float | None = None, tick: float = 0.0005, progress: bool = True,
) -> Stats:
    stats = Stats()
    loop = asyncio.get_running_loop()
    clock = loop.time
    origin = clock()
    end = origin + duration
    bar = tqdm(total=int(duration), unit="s", disable=not progress, leave=False,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s {postfix}")

    async def progress_loop() -> None:
        while True:
            await asyncio.sleep(0.5)
            elapsed = clock() - origin
            bar.n = min(int(elapsed), int(duration))
            bar.set_postfix_str(f"{stats.done / max(elapsed, 1e-9):,.0f} req/s, "
                                f"errors {sum(stats.errors.values())}")

    async def closed(target: Target) -> None:
        account = getattr(target, "account", 0)
        while clock() < end:
            action = flow.next(account)
            stats.kinds[action.kind] += 1
            stats.sent += 1
            started = clock()
            outcome = await target.send(action)
            stats.record(started, outcome, clock(), origin)

    async def opened() -> None:
        assert rate is not None
        count, sent = len(targets), 0
        pending: set[asyncio.Future[Outcome]] = set()

        def answered(intended: float, future: asyncio.Future[Outcome]) -> None:
            pending.discard(future)
            stats.record(intended, future.result(), clock(), origin)
        while True:
            now = clock()
            if now >= end:
                break
            due = int((now - origin) * rate)
            while sent < due:
                target = targets[sent % count]
                intended = origin + sent / rate
                action = flow.next(getattr(target, "account", 0))
                stats.kinds[action.kind] += 1
                future = target.send(action)
                pending.add(future)
                future.add_done_callback(partial(answered, intended))
                sent += 1
            stats.sent = sent
            await asyncio.sleep(tick)
        if pending:
            await asyncio.wait(pending, timeout=30)

    reporter = loop.create_task(progress_loop())
    try:
        if rate is None:
            await asyncio.gather(*(closed(t) for t in targets for _ in range(window)))
        else:
            await opened()
    finally:
        stats.elapsed = clock() - origin
        reporter.cancel()
        bar.close()
    return stats
