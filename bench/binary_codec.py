"""Binary protocol codec benchmark: frames encoded and decoded per second, in batches.

    python bench/binary_codec.py [--messages N] [--repeat R] [--batches 1,16,256]

Workloads (messages built before timing): `new_order` (limit orders with a client order id),
`cancel`, `heartbeat`, `accepted` and `fill` reports, and `mix` (the order-entry traffic of
one session: 50% new orders, 30% cancels, 10% amends, 10% heartbeats). For each batch size B
the N messages are cut into batches of B:

- encode: `encode_many(batch)` per batch (one buffer per write, as the client and server do);
- decode: one `FrameDecoder.feed(buffer)` per encoded batch (one read per batch).

R timed runs each; the median and the spread (min..max) in messages per second are reported
and written to bench/results/binary_codec-<utc>.json with the machine, Python version and
the 1-minute load average before and after (other processes on the machine lower the rates).
This is the codec alone: no sockets, no event loop. GC stays on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from crossbook.domain.enums import Liquidity, OrderStatus, OrderType, Side, StpMode, TimeInForce
from crossbook.protocol.binary import FrameDecoder, encode_many
from crossbook.protocol.binary_messages import (
    AcceptedReport,
    Amend,
    Cancel,
    FillReport,
    Heartbeat,
    Message,
    NewOrder,
)


def new_order(i: int) -> Message:
    side = Side.BUY if i % 2 else Side.SELL
    return NewOrder(
        i,
        "BTCUSDT",
        side,
        OrderType.LIMIT,
        qty=1 + i % 50,
        price=6_500_000 + i % 300,
        client_order_id=f"c{i}",
    )


def cancel(i: int) -> Message:
    return Cancel(i, "BTCUSDT", order_id=i)


def heartbeat(i: int) -> Message:
    return Heartbeat(i)


def accepted(i: int) -> Message:
    return AcceptedReport(
        i,
        i,
        1_700_000_000_000_000_000 + i,
        7,
        i,
        "BTCUSDT",
        Side.BUY,
        OrderType.LIMIT,
        1 + i % 50,
        6_500_000,
        TimeInForce.GTC,
        0,
        0,
        0,
        False,
        0,
        StpMode.NONE,
        True,
        f"c{i}",
    )


def fill(i: int) -> Message:
    return FillReport(
        i,
        i,
        1_700_000_000_000_000_000 + i,
        7,
        i,
        i,
        "BTCUSDT",
        Side.SELL,
        Liquidity.MAKER,
        OrderStatus.PARTIALLY_FILLED,
        6_500_000,
        3,
        19_500_000,
        12,
        3,
        f"c{i}",
    )


def mix(i: int) -> Message:
    kind = i % 10
    if kind < 5:
        return new_order(i)
    if kind < 8:
        return cancel(i)
    if kind < 9:
        return Amend(i, "BTCUSDT", order_id=i, qty=2)
    return heartbeat(i)


WORKLOADS: dict[str, Callable[[int], Message]] = {
    "new_order": new_order,
    "cancel": cancel,
    "heartbeat": heartbeat,
    "accepted": accepted,
    "fill": fill,
    "mix": mix,
}


def measure(messages: list[Message], batch: int, repeat: int) -> dict[str, object]:
    batches = [messages[i : i + batch] for i in range(0, len(messages), batch)]
    buffers = [encode_many(b) for b in batches]
    encode_times, decode_times = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for b in batches:
            encode_many(b)
        encode_times.append(time.perf_counter() - t0)
        decoder = FrameDecoder()
        feed = decoder.feed
        t0 = time.perf_counter()
        for data in buffers:
            feed(data)
        decode_times.append(time.perf_counter() - t0)
        assert decoder.error is None
    n = len(messages)

    def rates(times: list[float]) -> dict[str, float]:
        per_second = sorted(n / t for t in times)
        return {
            "median": round(statistics.median(per_second)),
            "min": round(per_second[0]),
            "max": round(per_second[-1]),
        }

    return {
        "batch": batch,
        "bytes_per_message": round(sum(map(len, buffers)) / n, 1),
        "encode_msgs_per_s": rates(encode_times),
        "decode_msgs_per_s": rates(decode_times),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batches", default="1,16,256")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = []
    for name, build in WORKLOADS.items():
        messages = [build(i + 1) for i in range(args.messages)]
        for batch in map(int, args.batches.split(",")):
            row = {"workload": name, **measure(messages, batch, args.repeat)}
            results.append(row)
            enc, dec = row["encode_msgs_per_s"], row["decode_msgs_per_s"]
            assert isinstance(enc, dict)
            assert isinstance(dec, dict)
            print(
                f"{name:10} batch {batch:4}: encode {enc['median'] / 1e6:5.2f} M/s"
                f"  decode {dec['median'] / 1e6:5.2f} M/s  ({row['bytes_per_message']} B/msg)"
            )
    out = {
        "benchmark": "binary_codec",
        "command": "python bench/binary_codec.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "when": datetime.now(UTC).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        },
        "messages": args.messages,
        "repeat": args.repeat,
        "results": results,
    }
    stamp = str(out["when"])[:19].replace(":", "")
    path = Path(__file__).parent / "results" / f"binary_codec-{stamp}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(Path(__file__).parent.parent)}")


if __name__ == "__main__":
    main()
