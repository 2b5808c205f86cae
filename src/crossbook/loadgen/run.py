"""The measuring loop of `crossbook bench`: closed or open loop, HDR latencies, timeline.

Contract:
- Closed loop (`rate` None): every connection keeps `window` requests in flight; latency is
  send → answer.
- Open loop (`rate` R): requests are due at `start + i / R`, spread round-robin over the
  connections; a timer callback fires every `tick` seconds (1 ms, the event loop's timer
  resolution: under uvloop a shorter delay rounds to 0 and the sender spins a core) and
  sends everything due. Latency is
  measured from the *intended* send time, so a stalled server or a late sender shows up
  as latency instead of fewer samples (no coordinated omission).
- Both loops are driven by the targets' answer callbacks (no task or future per request):
  in closed loop each answer sends the connection's next request at once.
- Answers go into an HDR histogram in microseconds (1 µs .. 100 s, 3 significant digits);
  rejects and lost requests are counted by code (they are latency samples too); completed
  requests per second make the timeline. During the run an answer only appends its latency
  and completion time to two arrays; the histogram and the timeline are built from them
  afterwards (`Stats.fold`), so the load generator spends its CPU on requests while the
  node runs. A progress bar (tqdm, on stderr) shows the rate.
- After the last send, answers are awaited up to `drain_timeout` (120 s): an open loop
  offered more than the node takes leaves a backlog that is still answered, so the
  lost-order check afterwards sees settled accounts.
"""

from __future__ import annotations

import asyncio
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]
from tqdm import tqdm  # type: ignore[import-untyped]

from crossbook.loadgen.flow import OrderFlow
from crossbook.loadgen.targets import Target

PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)
_LOWEST, _HIGHEST = 1, 100_000_000
"""The histogram's range in µs; samples are clamped into it."""


@dataclass(slots=True)
class Stats:
    histogram: HdrHistogram = field(
        default_factory=lambda: HdrHistogram(_LOWEST, _HIGHEST, 3))
    errors: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    timeline: list[int] = field(default_factory=list)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    """Seconds from (intended) send to answer, one per answer not yet folded."""
    finished: array[float] = field(default_factory=lambda: array("d"))
    """Seconds from the run's origin to each answer, in the same order."""
    sent: int = 0
    done: int = 0
    elapsed: float = 0.0

    def record(self, started: float, code: int, now: float) -> None:
        """One answer: latency `now - started` (loop clock), `code` 0 or its reject code."""
        self.latencies.append(now - started)
        self.finished.append(now)
        self.done += 1
        if code:
            self.errors[code] += 1

    def fold(self, origin: float) -> None:
        """Move the recorded answers into the histogram and the per-second timeline."""
        values = Counter(
            min(max(_LOWEST, int(seconds * 1e6)), _HIGHEST) for seconds in self.latencies)
        record = self.histogram.record_value
        for value, count in values.items():
            record(value, count)
        seconds = Counter(int(now - origin) for now in self.finished)
        timeline = self.timeline
        for second, count in sorted(seconds.items()):
            while len(timeline) <= second:
                timeline.append(0)
            timeline[second] += count
        self.latencies, self.finished = array("d"), array("d")

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
    rate: float | None = None, tick: float = 0.001, progress: bool = True,
    drain_timeout: float = 120.0,
) -> Stats:
    """Drive `targets` for `duration` seconds; wait up to `drain_timeout` for late answers."""
    stats = Stats()
    loop = asyncio.get_running_loop()
    clock = loop.time
    origin = clock()
    end = origin + duration
    kinds, record, next_action = stats.kinds, stats.record, flow.next
    in_flight = 0
    drained = loop.create_future()
    bar = tqdm(total=int(duration), unit="s", disable=not progress, leave=False,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s {postfix}")

    async def progress_loop() -> None:
        while True:
            await asyncio.sleep(0.5)
            elapsed = clock() - origin
            bar.n = min(int(elapsed), int(duration))
            bar.set_postfix_str(f"{stats.done / max(elapsed, 1e-9):,.0f} req/s, "
                                f"errors {sum(stats.errors.values())}")

    def send(target: Target, account: int, started: float, answer: Any) -> None:
        nonlocal in_flight
        action = next_action(account)
        kinds[action.kind] += 1
        stats.sent += 1
        in_flight += 1
        target.send(action, partial(answer, target, account, started))

    def answered_closed(target: Target, account: int, started: float, code: int) -> None:
        nonlocal in_flight
        in_flight -= 1
        now = clock()
        record(started, code, now)
        if now < end:
            send(target, account, now, answered_closed)
        elif not in_flight and not drained.done():
            drained.set_result(None)

    def answered_open(target: Target, account: int, intended: float, code: int) -> None:
        nonlocal in_flight
        in_flight -= 1
        record(intended, code, clock())
        if not in_flight and clock() >= end and not drained.done():
            drained.set_result(None)

    async def opened() -> None:
        assert rate is not None
        count, sent = len(targets), 0
        accounts = [getattr(t, "account", 0) for t in targets]
        stopped = loop.create_future()
        interval = max(tick, 0.001)

        def pump() -> None:  # a plain timer callback: no task or sleep future per tick
            nonlocal sent
            now = clock()
            if now >= end:
                stopped.set_result(None)
                return
            due = int((now - origin) * rate)
            while sent < due:
                index = sent % count
                send(targets[index], accounts[index], origin + sent / rate, answered_open)
                sent += 1
            loop.call_later(interval, pump)

        pump()
        await stopped

    reporter = loop.create_task(progress_loop())
    try:
        if rate is None:
            started = clock()
            for target in targets:
                for _ in range(window):
                    send(target, getattr(target, "account", 0), started, answered_closed)
        else:
            await opened()
        if in_flight:
            await asyncio.wait_for(asyncio.shield(drained), drain_timeout)
    except TimeoutError:
        pass  # answers that never came are not samples
    finally:
        stats.elapsed = clock() - origin
        reporter.cancel()
        bar.close()
        stats.fold(origin)
    return stats
