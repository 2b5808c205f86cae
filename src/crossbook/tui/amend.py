"""The amend dialog: new price and/or quantity for one of my orders (Enter applies, Esc
cancels). Dismisses with `(price, quantity)` (empty strings for unchanged) or None."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from crossbook.protocol import native


class AmendScreen(ModalScreen[tuple[str, str] | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, order: native.Order) -> None:
        super().__init__()
        self.order = order

    def compose(self) -> ComposeResult:
        o = self.order
        with Vertical(id="amend"):
            yield Label(f"Amend order {o.order_id}: {o.side} {o.quantity} @ {o.price}")
            yield Input(value=o.price or "", placeholder="new price", id="amend-price")
            yield Input(value=o.quantity or "", placeholder="new total quantity",
                        id="amend-quantity")
            yield Label("Enter applies, Esc cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        price = self.query_one("#amend-price", Input).value.strip()
        quantity = self.query_one("#amend-quantity", Input).value.strip()
        o = self.order
        self.dismiss((price if price != o.price else "",
                      quantity if quantity != o.quantity else ""))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
