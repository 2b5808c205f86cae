"""The measuring loop with an in-process target: closed and open loop send, every answer is
a sample (rejects counted by code), the histogram and the timeline hold every answer."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from crossbook.loadgen.flow import Action, OrderFlow
from crossbook.loadgen.run import Stats, run_load
from crossbook.loadgen.targets import Answered, Target


class EchoTarget:
    """Answers on the next loop turn; every fifth request is rejected with code 3003."""

    def __init__(self, account: int) -> None:
        self.account = account
        self.sent = 0
        self.in_flight = 0
        self.most_in_flight = 0

    def send(self, action: Action, answered: Answered) -> None:
        self.sent += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        code = 3003 if self.sent % 5 == 0 else 0
        asyncio.get_running_loop().call_later(0.001, self._answer, answered, code)

    def _answer(self, answered: Answered, code: int) -> None:
        self.in_flight -= 1
        answered(code)


def _run(**kwargs: Any) -> tuple[Stats, list[EchoTarget]]:
    targets = [EchoTarget(1), EchoTarget(2)]
    flow = OrderFlow(1, {"BTC-USDT": 10_000})

    async def body() -> Stats:
        return await run_load(cast(list[Target], targets), flow, progress=False, **kwargs)

    return asyncio.run(body()), targets


def _check(stats: Stats, targets: list[EchoTarget]) -> None:
    assert stats.sent == stats.done == sum(t.sent for t in targets) > 0
    assert sum(stats.timeline) == stats.done
    assert stats.histogram.get_total_count() == stats.done
    assert stats.errors[3003] == sum(t.sent // 5 for t in targets)
    assert sum(stats.kinds.values()) == stats.sent
    assert stats.summary()["completed"] == stats.done


def test_closed_loop_keeps_the_window_in_flight() -> None:
    stats, targets = _run(duration=0.3, window=4)
    _check(stats, targets)
    assert all(t.most_in_flight == 4 for t in targets)
    assert all(t.in_flight == 0 for t in targets)


def test_open_loop_sends_at_the_rate() -> None:
    stats, targets = _run(duration=0.5, rate=400)
    _check(stats, targets)
    assert stats.sent <= 0.5 * 400  # never ahead of the schedule
