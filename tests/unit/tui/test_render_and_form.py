"""The TUI's pure parts: ladder, candles and tape rendering; order form validation."""

from __future__ import annotations

from decimal import Decimal

from crossbook.protocol import native
from crossbook.tui import render
from crossbook.tui.form import check

BTC = native.InstrumentInfo("BTC-USDT", "BTC", "USDT", "0.01", "0.00001", "0.00001",
                            "1000", "0.01", "1000000", "1", "trading")


def test_ladder_puts_asks_above_bids_with_the_spread_between() -> None:
    bids = [(Decimal("99.00"), Decimal("1")), (Decimal("98.00"), Decimal("3"))]
    asks = [(Decimal("101.00"), Decimal("2")), (Decimal("102.00"), Decimal("2"))]
    lines = render.ladder(bids, asks, rows=5, width=40).plain.splitlines()
    assert [line.split()[0] for line in lines] == ["102.00", "101.00", "spread", "99.00",
                                                   "98.00"]
    assert "2.00" in lines[2]
    assert len(lines[0]) == 40  # the deepest level's bar reaches the edge


def test_ladder_of_a_one_sided_book() -> None:
    text = render.ladder([(Decimal("5"), Decimal("1"))], [], rows=3).plain
    assert "(no asks)" in text


def test_candles_draw_one_column_each_with_a_price_scale() -> None:
    candles = [native.CandleInfo(i, i + 1, o, h, lo, c, "1", "1", 1)
               for i, (o, h, lo, c) in enumerate([("10.00", "12.00", "9.00", "11.00"),
                                                   ("11.00", "11.50", "8.00", "8.50")])]
    lines = render.candles(candles, width=20, height=5).plain.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("12.00")
    assert lines[-1].startswith(" 8.00")
    assert all(len(line) == len(lines[0]) for line in lines)
    assert render.candles([], 20, 5).plain == "waiting for trades ..."


def test_tape_lists_newest_first_up_to_the_rows() -> None:
    trades = [native.Trade(i, f"{100 + i}.00", "1", "1", "buy", 3_600_000 + i * 1000)
              for i in range(3)]
    lines = render.tape(trades, rows=2).plain.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("01:00:00")
    assert "100.00" in lines[0]


def test_form_validation() -> None:
    assert check("limit", "60000.00", "0.5", BTC) == []
    assert check("market", "", "0.5", BTC) == []
    assert check("limit", "abc", "0", BTC) == ["quantity must be a positive number",
                                               "price must be a positive number"]
    assert check("limit", "60000.001", "0.5", BTC) == ["price must be a multiple of 0.01"]
    assert check("limit", "60000", "0.000001", BTC) == [
        "quantity must be a multiple of 0.00001"]
    assert check("limit", "0.01", "0.5", BTC) == ["notional must be at least 1"]
    assert check("limit", "2000000", "0.5", BTC) == ["price must be within 0.01..1000000"]
