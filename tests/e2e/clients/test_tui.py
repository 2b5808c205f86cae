"""The terminal UI driven with Textual's pilot against a running node: place an order
through the form, see it in my open orders and in the book, amend it in the dialog, cancel
it; validation and server errors under the form; switching symbols. Screenshots of the main
screen are saved as SVG in the test's temporary directory, and into docs/screenshots/ when
CROSSBOOK_UPDATE_SCREENSHOTS=1 (so a test run never rewrites tracked files by accident)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label

from crossbook.client import Client
from crossbook.tui.app import TradingApp
from tests.e2e.clients.conftest import Trader

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
SIZE = (160, 45)


async def until(pilot: Pilot[None], predicate: Callable[[], bool], seconds: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await pilot.pause(0.05)


async def type_into(pilot: Pilot[None], selector: str, text: str, keys: bool = False) -> None:
    """Fill a field: with `keys`, typed key by key (slow); else set at once."""
    await pilot.click(selector)
    field = pilot.app.query_one(selector, Input)
    field.value = "" if keys else text
    if keys:
        await pilot.press(*text)


def seed_market(url: str, maker: Trader, taker: Trader) -> None:
    with Client(url, api_key=maker.key, secret=maker.secret) as m, \
            Client(url, api_key=taker.key, secret=taker.secret) as t:
        for i in range(1, 9):
            m.place_order("BTC-USDT", "buy", "limit", f"0.{i}", 60000 - 15 * i)
            m.place_order("BTC-USDT", "sell", "limit", f"0.{i}", 60000 + 15 * i)
        for i in range(6):
            t.place_order("BTC-USDT", "buy" if i % 2 else "sell", "market", "0.05")


def book_level(app: TradingApp, price: str) -> Decimal | None:
    assert app.book is not None
    levels = dict(app.book.sync.bids() + app.book.sync.asks())
    return levels.get(Decimal(price))


def test_trade_through_the_screen(url: str, ws_url: str, tmp_path: Path,
                                  make_trader: Callable[..., Trader]) -> None:
    maker, taker, me = make_trader(), make_trader(), make_trader()
    seed_market(url, maker, taker)
    update = os.environ.get("CROSSBOOK_UPDATE_SCREENSHOTS") == "1"
    screenshots = DOCS_SCREENSHOTS if update else tmp_path
    screenshots.mkdir(parents=True, exist_ok=True)

    async def scenario() -> None:
        app = TradingApp(url, ws_url, api_key=me.key, secret=me.secret, symbol="BTC-USDT")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.book is not None and app.book.sync.synced
                        and len(app.trades) >= 6 and bool(app.balances))
            status = app.query_one("#form-status", Label)

            # client-side validation: off the lot grid, nothing is sent
            await type_into(pilot, "#price", "59000")
            await type_into(pilot, "#quantity", "0.000001")
            await pilot.click("#buy")
            assert "multiple of 0.00001" in str(status.render())
            assert app.orders == []

            # the server's refusal is shown with its code
            await type_into(pilot, "#quantity", "1000")
            await pilot.click("#buy")
            await until(pilot, lambda: "INSUFFICIENT_FUNDS" in str(status.render()))

            # place through the form: in my open orders and in the book
            await type_into(pilot, "#price", "59000", keys=True)
            await type_into(pilot, "#quantity", "0.25", keys=True)
            await pilot.click("#buy")
            table = app.query_one("#orders", DataTable)
            await until(pilot, lambda: table.row_count == 1)
            await until(pilot, lambda: book_level(app, "59000") == Decimal("0.25"))
            order = app.orders[0]
            assert (order.side, order.price, order.quantity) == ("buy", "59000.00", "0.25000")
            assert "new" in str(status.render())
            await pilot.pause(0.3)
            app.save_screenshot("tui-main.svg", str(screenshots))

            # amend in the dialog
            app.action_focus_orders()
            await pilot.press("a")
            await until(pilot, lambda: app.screen.id != "_default" and bool(
                app.screen.query("#amend-price")))
            app.screen.query_one("#amend-price", Input).value = "59005"
            app.save_screenshot("tui-amend.svg", str(screenshots))
            await pilot.click("#amend-price")
            await pilot.press("enter")
            await until(pilot, lambda: bool(app.orders) and app.orders[0].price == "59005.00")
            await until(pilot, lambda: book_level(app, "59005") == Decimal("0.25"))
            assert book_level(app, "59000") is None

            # cancel from my open orders
            app.action_focus_orders()
            await pilot.press("c")
            await until(pilot, lambda: table.row_count == 0 and not app.orders)
            await until(pilot, lambda: book_level(app, "59005") is None)

            # switch symbols
            await pilot.press("f2")
            await until(pilot, lambda: app.symbol == "ETH-USDT" and app.book is not None
                        and app.book.sync.synced)
            await pilot.press("f3")
            await until(pilot, lambda: app.symbol == "BTC-USDT")

    asyncio.run(scenario())
    assert (screenshots / "tui-main.svg").read_text().startswith("<svg")
    assert (screenshots / "tui-amend.svg").read_text().startswith("<svg")


def test_market_data_only_without_a_key(url: str, ws_url: str) -> None:
    async def scenario() -> None:
        app = TradingApp(url, ws_url, symbol="ETH-USDT")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.book is not None and app.book.sync.synced)
            await type_into(pilot, "#price", "100")
            await type_into(pilot, "#quantity", "1")
            await pilot.click("#sell")
            status = app.query_one("#form-status", Label)
            await until(pilot, lambda: "no API key" in str(status.render()))

    asyncio.run(scenario())
