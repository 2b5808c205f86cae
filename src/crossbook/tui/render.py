"""Pure renderers of the trading screen: market data in, Rich `Text` out (no Textual, no I/O).

- `ladder(bids, asks, rows, width)`: the book as a ladder, asks above bids (best prices
  meeting at the spread line), each level with a depth bar whose length is the cumulative
  quantity from the touch relative to the deepest shown;
- `candles(candles, width, height)`: one column per candle (the newest at the right): a
  thin wick from low to high and a thick body from open to close, green when it closed up;
  a price scale at the left;
- `tape(trades, rows)`: recent trades, newest first, colored by the taker's side.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from rich.text import Text

from crossbook.protocol import native

Level = tuple[Decimal, Decimal]
UP, DOWN = "green", "red"
UP_BAR, DOWN_BAR = "on #0b3d1a", "on #4a1010"


def _cumulative(levels: Sequence[Level]) -> list[Decimal]:
    out: list[Decimal] = []
    total = Decimal(0)
    for _, qty in levels:
        total += qty
        out.append(total)
    return out


def ladder(bids: Sequence[Level], asks: Sequence[Level], rows: int, width: int = 40) -> Text:
    """`rows` lines in all: half asks, the spread line, half bids."""
    half = max(1, (rows - 1) // 2)
    asks, bids = list(asks[:half]), list(bids[:half])
    ask_cum, bid_cum = _cumulative(asks), _cumulative(bids)
    deepest = max([*ask_cum[-1:], *bid_cum[-1:], Decimal(1)])
    text = Text(no_wrap=True, overflow="crop")
    price_w = max([len(str(p)) for p, _ in (*asks, *bids)] + [10])
    qty_w = max([len(str(q)) for _, q in (*asks, *bids)] + [8])

    def line(price: Decimal, qty: Decimal, cum: Decimal, color: str, bar: str) -> None:
        body = f"{price!s:>{price_w}}  {qty!s:>{qty_w}} "
        filled = int((width - len(body)) * float(cum / deepest)) if width > len(body) else 0
        rest = max(0, width - len(body) - filled)
        text.append(body[: price_w + 1], style=f"bold {color}")
        text.append(body[price_w + 1 :])
        text.append(" " * filled, style=bar)
        text.append(" " * rest + "\n")

    for _ in range(half - len(asks)):
        text.append("\n")
    for (price, qty), cum in reversed(list(zip(asks, ask_cum, strict=True))):
        line(price, qty, cum, DOWN, DOWN_BAR)
    if bids and asks:
        spread = asks[0][0] - bids[0][0]
        mid = (asks[0][0] + bids[0][0]) / 2
        bps = spread / mid * 10_000 if mid else Decimal(0)
        text.append(f"{'spread ' + str(spread):>{price_w}}  {f'{bps:.1f} bps':>{qty_w}}\n",
                    style="dim")
    else:
        text.append(f"{'(no ' + ('asks' if bids else 'bids') + ')':>{price_w}}\n", style="dim")
    for (price, qty), cum in zip(bids, bid_cum, strict=True):
        line(price, qty, cum, UP, UP_BAR)
    text.rstrip()
    return text


def candles(data: Sequence[native.CandleInfo], width: int, height: int) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    if not data or height < 3 or width < 12:
        text.append("waiting for trades ...", style="dim")
        return text
    scale_w = max(len(c.high) for c in data) + 1
    shown = list(data[-max(1, width - scale_w):])
    high = max(Decimal(c.high) for c in shown)
    low = min(Decimal(c.low) for c in shown)
    span = high - low or Decimal(1)

    def row(price: Decimal) -> int:
        return int((high - price) / span * (height - 1) + Decimal("0.5"))

    grid = [[(" ", "")] * len(shown) for _ in range(height)]
    for x, c in enumerate(shown):
        o, cl = Decimal(c.open), Decimal(c.close)
        color = UP if cl >= o else DOWN
        top, bottom = row(Decimal(c.high)), row(Decimal(c.low))
        body_top, body_bottom = row(max(o, cl)), row(min(o, cl))
        for y in range(top, bottom + 1):
            grid[y][x] = ("█" if body_top <= y <= body_bottom else "│", color)
    for y, cells in enumerate(grid):
        label = ""
        if y in (0, height - 1, height // 2):
            label = str((high - span * Decimal(y) / Decimal(height - 1)).quantize(
                Decimal(shown[-1].close)))
        text.append(f"{label:>{scale_w - 1}} ", style="dim")
        for char, style in cells:
            text.append(char, style=style)
        if y < height - 1:
            text.append("\n")
    return text


def tape(trades: Sequence[native.Trade], rows: int) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    for trade in list(trades)[:rows]:
        color = UP if trade.taker_side == "buy" else DOWN
        clock = f"{trade.time // 1000 % 86400 // 3600:02d}:{trade.time // 60000 % 60:02d}:" \
                f"{trade.time // 1000 % 60:02d}"
        text.append(f"{clock} ", style="dim")
        text.append(f"{trade.price:>12} ", style=f"bold {color}")
        text.append(f"{trade.quantity:>12}\n")
    text.rstrip()
    if not trades:
        text.append("no trades yet", style="dim")
    return text
