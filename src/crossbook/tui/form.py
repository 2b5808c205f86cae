"""The order form: side buttons, type, time in force, price and quantity, with validation.

`check(kind, price, quantity, instrument)` is the pure validation: it returns the list of
problems (empty when the order may be sent): quantity and, for limit orders, price must be
positive decimals on the instrument's lot and tick grids and within its bounds. The server
still decides; its refusals are shown in the same place (`show_error`).

`OrderForm` posts `OrderForm.Submitted` with the parsed fields when Buy or Sell is pressed
(or Enter in a field, which buys when the last pressed side was buy, and so on) and the
fields pass `check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Select

from crossbook.protocol import native

Kind = str


@dataclass(frozen=True, slots=True)
class OrderRequest:
    side: native.SideName
    kind: native.TypeName
    tif: native.TifName
    price: str | None
    quantity: str


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _on_grid(value: Decimal, step: str) -> bool:
    return (value / Decimal(step)) % 1 == 0


def check(kind: str, price: str, quantity: str,
          instrument: native.InstrumentInfo | None) -> list[str]:
    problems: list[str] = []
    qty = _decimal(quantity)
    if qty is None or qty <= 0:
        problems.append("quantity must be a positive number")
    elif instrument is not None:
        if not _on_grid(qty, instrument.lot_size):
            problems.append(f"quantity must be a multiple of {instrument.lot_size}")
        elif qty < Decimal(instrument.min_quantity):
            problems.append(f"quantity must be at least {instrument.min_quantity}")
    if kind == "limit":
        value = _decimal(price)
        if value is None or value <= 0:
            problems.append("price must be a positive number")
        elif instrument is not None:
            if not _on_grid(value, instrument.tick_size):
                problems.append(f"price must be a multiple of {instrument.tick_size}")
            elif value < Decimal(instrument.min_price) or value > Decimal(instrument.max_price):
                problems.append(f"price must be within {instrument.min_price}.."
                                f"{instrument.max_price}")
            elif not problems and qty is not None and \
                    value * qty < Decimal(instrument.min_notional):
                problems.append(f"notional must be at least {instrument.min_notional}")
    return problems


class OrderForm(Vertical):
    class Submitted(Message):
        def __init__(self, request: OrderRequest) -> None:
            self.request = request
            super().__init__()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.instrument: native.InstrumentInfo | None = None
        self.last_side: native.SideName = "buy"

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Select([("limit", "limit"), ("market", "market")], value="limit",
                         allow_blank=False, id="kind", compact=True)
            yield Select([("GTC", "GTC"), ("IOC", "IOC"), ("FOK", "FOK")], value="GTC",
                         allow_blank=False, id="tif", compact=True)
        yield Input(placeholder="price", id="price", compact=True)
        yield Input(placeholder="quantity", id="quantity", compact=True)
        with Horizontal(classes="row"):
            yield Button("Buy", id="buy", variant="success", compact=True)
            yield Button("Sell", id="sell", variant="error", compact=True)
        yield Label("", id="form-status")

    def set_instrument(self, instrument: native.InstrumentInfo | None) -> None:
        self.instrument = instrument
        if instrument is not None:
            self.query_one("#price", Input).placeholder = f"price (tick {instrument.tick_size})"
            self.query_one("#quantity", Input).placeholder = (
                f"quantity (lot {instrument.lot_size})")

    def show_error(self, message: str) -> None:
        label = self.query_one("#form-status", Label)
        label.update(message)
        label.set_class(True, "error")
        label.set_class(False, "ok")

    def show_ok(self, message: str) -> None:
        label = self.query_one("#form-status", Label)
        label.update(message)
        label.set_class(False, "error")
        label.set_class(True, "ok")

    def fill_price(self, price: str) -> None:
        self.query_one("#price", Input).value = price

    def submit(self, side: native.SideName) -> None:
        self.last_side = side
        kind = str(self.query_one("#kind", Select).value)
        tif = str(self.query_one("#tif", Select).value)
        price = self.query_one("#price", Input).value.strip()
        quantity = self.query_one("#quantity", Input).value.strip()
        problems = check(kind, price, quantity, self.instrument)
        if problems:
            self.show_error("; ".join(problems))
            return
        self.show_ok(f"sending {side} {quantity} ...")
        self.post_message(self.Submitted(OrderRequest(
            side, "limit" if kind == "limit" else "market",
            tif if tif in ("GTC", "IOC", "FOK") else "GTC",  # type: ignore[arg-type]
            price if kind == "limit" else None, quantity,
        )))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id in ("buy", "sell"):
            self.submit("buy" if event.button.id == "buy" else "sell")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(self.last_side)
