"""`TradingApp`: the trading screen on one symbol, talking to a node through the SDK only.

Layout: a status bar (symbol, last price, 24 h change and volume, connection state); the
book ladder with depth bars, the price chart (candles) and the trade tape; then the order
form, my open orders and my balances; the key bindings in the footer.

Data: the book is a `LiveBook` (WebSocket snapshot plus diffs, REST resync on a gap);
trades, candles and the ticker come from the WebSocket channels after a REST load; open
orders and balances are reloaded over REST when the `user` channel reports a change and
every few seconds. The `Stream` reconnects by itself; each reconnection reloads everything.
Panels are redrawn at most ten times a second.

Keys: F2/F3 next/previous symbol, F4 chart interval, F5 reload, Ctrl+F the order form,
Ctrl+O my orders; on my orders: c cancel, a amend (a dialog), x cancel all on the symbol;
q quits. Server refusals appear under the form and as notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Static

from crossbook.client import AsyncClient, CrossbookError, LiveBook, Reconnected, Stream
from crossbook.protocol import native, ws
from crossbook.tui import render
from crossbook.tui.amend import AmendScreen
from crossbook.tui.form import OrderForm

INTERVALS = ("1s", "1m", "5m", "1h")
ORDER_COLUMNS = ("id", "side", "type", "price", "quantity", "filled", "status")


class Panel(Static):
    """A bordered panel whose content is a Rich renderable."""

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__("", id=id)
        self.border_title = title


class TradingApp(App[None]):
    TITLE = "crossbook"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("f2", "symbol(1)", "Next symbol"),
        Binding("f3", "symbol(-1)", "Prev symbol"),
        Binding("f4", "interval", "Interval"),
        Binding("f5", "reload", "Reload"),
        Binding("ctrl+f", "focus_form", "Order form"),
        Binding("ctrl+o", "focus_orders", "My orders"),
        Binding("c", "cancel_order", "Cancel"),
        Binding("a", "amend_order", "Amend"),
        Binding("x", "cancel_all", "Cancel all"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, url: str, ws_url: str, *, api_key: str | None = None,
                 secret: str | None = None, symbol: str | None = None) -> None:
        super().__init__()
        self.rest = AsyncClient(url, api_key=api_key, secret=secret)
        self.stream = Stream(ws_url, api_key=api_key, secret=secret)
        self.trading = bool(api_key and secret)
        self.symbols: list[str] = []
        self.instruments: dict[str, native.InstrumentInfo] = {}
        self.symbol = symbol or ""
        self.interval = INTERVALS[0]
        self.book: LiveBook | None = None
        self.trades: list[native.Trade] = []
        self.candles: list[native.CandleInfo] = []
        self.ticker: ws.TickerMessage | native.Ticker | None = None
        self.orders: list[native.Order] = []
        self.balances: list[native.Balance] = []
        self.dirty: set[str] = set()
        self.account_due = True

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # widgets are kept as attributes: queries would search a dialog when one is open
        self.status_bar = Static("", id="status")
        self.book_panel = Panel("Book", id="book")
        self.chart_panel = Panel("Chart", id="chart")
        self.tape_panel = Panel("Trades", id="tape")
        self.form = OrderForm(id="form")
        self.orders_table: DataTable[str] = DataTable(id="orders", cursor_type="row",
                                                      zebra_stripes=True)
        self.orders_table.border_title = "My open orders"
        self.balances_panel = Panel("Balances", id="balances")
        yield self.status_bar
        with Horizontal(id="market"):
            yield self.book_panel
            yield self.chart_panel
            yield self.tape_panel
        with Horizontal(id="mine"):
            with Vertical(id="form-box") as box:
                box.border_title = "New order"
                yield self.form
            yield self.orders_table
            yield self.balances_panel
        yield Footer()

    async def on_mount(self) -> None:
        self.orders_table.add_columns(*ORDER_COLUMNS)
        self.set_interval(0.1, self.redraw)
        self.set_interval(3.0, self._account_tick)
        self.start()

    @work(exclusive=True, group="stream")
    async def start(self) -> None:
        while not self.symbols:
            try:
                found = await self.rest.instruments()
            except CrossbookError as exc:
                self.status(f"cannot load instruments: {exc}")
                await asyncio.sleep(1.0)
                continue
            self.instruments = {i.symbol: i for i in found}
            self.symbols = sorted(self.instruments)
        if self.symbol not in self.instruments:
            self.symbol = self.symbols[0] if self.symbols else ""
        await self.stream.start(wait=False)
        if self.trading:
            await self.stream.subscribe("user")
        await self.switch(self.symbol)
        await self.consume()

    async def switch(self, symbol: str) -> None:
        old = self.symbol if self.book is not None else None
        if old is not None:
            for channel in ("depth", "trades", "ticker"):
                with contextlib.suppress(CrossbookError):
                    await self.stream.unsubscribe(channel, old)
            with contextlib.suppress(CrossbookError):
                await self.stream.unsubscribe("candles", old, interval=self.interval)
        self.symbol = symbol
        self.book = LiveBook(self.stream, self.rest, symbol)
        self.trades, self.candles, self.ticker = [], [], None
        self.form.set_instrument(self.instruments.get(symbol))
        for channel in ("depth", "trades", "ticker"):
            with contextlib.suppress(CrossbookError):
                await self.stream.subscribe(channel, symbol)  # type: ignore[arg-type]
        with contextlib.suppress(CrossbookError):
            await self.stream.subscribe("candles", symbol, interval=self.interval)
        await self.reload()

    async def reload(self) -> None:
        symbol = self.symbol
        try:
            trades = await self.rest.trades(symbol, 100)
            candles = await self.rest.candles(symbol, self.interval, 200)
            ticker = await self.rest.ticker(symbol)
            if self.book is not None and not self.book.sync.synced:
                await self.book.resync()
        except CrossbookError as exc:
            self.status(f"reload failed: {exc}")
            return
        if symbol == self.symbol:
            self.trades = list(reversed(trades))
            self.candles, self.ticker = candles, ticker
            self.dirty |= {"book", "tape", "chart", "status"}
        self.account_due = True

    async def consume(self) -> None:
        async for message in self.stream:
            book = self.book
            if isinstance(message, Reconnected):
                if book is not None:
                    book.feed(message)
                self.dirty.add("status")
                self.run_worker(self.reload(), group="reload", exclusive=True)
                continue
            if book is not None and isinstance(message, ws.DepthMessage):
                if book.feed(message):
                    await book.resync()
                self.dirty.add("book")
            elif isinstance(message, ws.OrderEvent | ws.BalanceEvent):
                self.account_due = True
            elif getattr(message, "symbol", None) != self.symbol:
                continue
            elif isinstance(message, ws.TradeMessage):
                self.trades.insert(0, native.Trade(
                    message.trade_id, message.price, message.quantity, message.quote_quantity,
                    message.taker_side, message.time))
                del self.trades[200:]
                self.dirty.add("tape")
            elif isinstance(message, ws.CandleMessage) and message.interval == self.interval:
                self._candle(message)
            elif isinstance(message, ws.TickerMessage):
                self.ticker = message
                self.dirty.add("status")

    def _candle(self, m: ws.CandleMessage) -> None:
        candle = native.CandleInfo(m.open_time, m.close_time, m.open, m.high, m.low, m.close,
                                   m.volume, m.quote_volume, m.trade_count)
        if self.candles and self.candles[-1].open_time == m.open_time:
            self.candles[-1] = candle
        elif not self.candles or self.candles[-1].open_time < m.open_time:
            self.candles.append(candle)
            del self.candles[:-500]
        self.dirty.add("chart")

    # -- account ----------------------------------------------------------------------------

    def _account_tick(self) -> None:
        self.account_due = True

    async def refresh_account(self) -> None:
        if not self.trading:
            return
        try:
            orders = await self.rest.open_orders()
            balances = await self.rest.balances()
        except CrossbookError as exc:
            self.status(f"account reload failed: {exc}")
            return
        self.orders, self.balances = orders, balances
        self.dirty |= {"orders", "balances"}

    # -- drawing ----------------------------------------------------------------------------

    def status(self, text: str) -> None:
        self.notify(text, severity="warning", timeout=4)

    async def redraw(self) -> None:
        if not self.is_running or not self.status_bar.is_mounted:
            return
        if self.account_due:
            self.account_due = False
            self.run_worker(self.refresh_account(), group="account", exclusive=True)
        dirty, self.dirty = self.dirty, set()
        if "book" in dirty and self.book is not None:
            panel = self.book_panel
            rows = max(3, panel.size.height)
            sync = self.book.sync
            panel.update(render.ladder(sync.bids(rows), sync.asks(rows), rows,
                                       max(20, panel.size.width)))
            panel.border_subtitle = (f"#{sync.last_update_id}" if sync.synced
                                     else "syncing ...")
        if "tape" in dirty:
            panel = self.tape_panel
            panel.update(render.tape(self.trades, max(1, panel.size.height)))
        if "chart" in dirty:
            panel = self.chart_panel
            panel.border_title = f"Chart {self.symbol} {self.interval}"
            panel.update(render.candles(self.candles, panel.size.width, panel.size.height))
        if "orders" in dirty:
            self._draw_orders()
        if "balances" in dirty:
            lines = [f"{b.asset:<6}{b.free:>20}\n{'':<6}{'locked ' + b.locked:>20}"
                     for b in self.balances]
            self.balances_panel.update("\n".join(lines) or "no balances")
        if "status" in dirty or not dirty:
            self._draw_status()

    def _draw_orders(self) -> None:
        table = self.orders_table
        row = table.cursor_row
        table.clear()
        for o in self.orders:
            if o.symbol == self.symbol:
                table.add_row(str(o.order_id), o.side, o.type, o.price or "market",
                              o.quantity or "", o.filled_quantity, o.status,
                              key=str(o.order_id))
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
        table.border_subtitle = f"{table.row_count} on {self.symbol}"

    def _draw_status(self) -> None:
        t = self.ticker
        connected = "[green]● live[/]" if self.stream.connected else "[red]○ reconnecting[/]"
        parts = [f"[b]{self.symbol or '...'}[/b]"]
        if t is not None and t.last is not None:
            change = ""
            if t.open:
                pct = (Decimal(t.last) - Decimal(t.open)) / Decimal(t.open) * 100
                change = f"[{'green' if pct >= 0 else 'red'}]{pct:+.2f}%[/]"
            parts += [f"last [b]{t.last}[/b]", change, f"high {t.high}", f"low {t.low}",
                      f"vol {t.volume}"]
        symbols = "  ".join(f"[reverse]{s}[/]" if s == self.symbol else s for s in self.symbols)
        who = "" if self.trading else "  [yellow]market data only (no API key)[/]"
        self.status_bar.update(
            f" crossbook  {'  '.join(p for p in parts if p)}   {connected}{who}\n {symbols}")

    # -- actions ----------------------------------------------------------------------------

    async def action_symbol(self, step: int) -> None:
        if not self.symbols:
            return
        index = (self.symbols.index(self.symbol) + step) % len(self.symbols)
        await self.switch(self.symbols[index])

    async def action_interval(self) -> None:
        with contextlib.suppress(CrossbookError):
            await self.stream.unsubscribe("candles", self.symbol, interval=self.interval)
        self.interval = INTERVALS[(INTERVALS.index(self.interval) + 1) % len(INTERVALS)]
        with contextlib.suppress(CrossbookError):
            await self.stream.subscribe("candles", self.symbol, interval=self.interval)
        await self.reload()

    async def action_reload(self) -> None:
        await self.reload()

    def action_focus_form(self) -> None:
        self.form.query_one("#price").focus()

    def action_focus_orders(self) -> None:
        self.orders_table.focus()

    def selected_order(self) -> native.Order | None:
        table = self.orders_table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((o for o in self.orders if str(o.order_id) == key), None)

    async def action_cancel_order(self) -> None:
        order = self.selected_order()
        if order is None:
            return
        try:
            done = await self.rest.cancel_order(order.order_id)
            self.notify(f"order {done.order_id} {done.status}")
        except CrossbookError as exc:
            self.notify(str(exc), severity="error")
        self.account_due = True

    def action_amend_order(self) -> None:
        order = self.selected_order()
        if order is None:
            return

        async def done(change: tuple[str, str] | None) -> None:
            if change is None:
                return
            price, quantity = change
            try:
                amended = await self.rest.amend_order(
                    order.order_id, price=price or None, quantity=quantity or None)
                self.notify(f"order {amended.order_id} now {amended.quantity} @ "
                            f"{amended.price}")
            except CrossbookError as exc:
                self.notify(str(exc), severity="error")
            self.account_due = True

        self.push_screen(AmendScreen(order), done)

    async def action_cancel_all(self) -> None:
        try:
            done = await self.rest.cancel_all(self.symbol)
            self.notify(f"canceled {len(done.canceled)} order(s) on {done.symbol}")
        except CrossbookError as exc:
            self.notify(str(exc), severity="error")
        self.account_due = True

    async def on_order_form_submitted(self, event: OrderForm.Submitted) -> None:
        form = self.form
        if not self.trading:
            form.show_error("no API key: start with --key/--secret or --client-config")
            return
        r = event.request
        try:
            order = await self.rest.place_order(self.symbol, r.side, r.kind, r.quantity,
                                                r.price, time_in_force=r.tif)
        except CrossbookError as exc:
            form.show_error(str(exc))
            return
        filled = f", filled {order.filled_quantity}" if order.fills else ""
        form.show_ok(f"order {order.order_id} {order.status}{filled}")
        self.account_due = True

    async def on_unmount(self) -> None:
        await self.stream.close()
        await self.rest.aclose()
