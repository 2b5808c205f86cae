"""Accounts: balances free and locked per asset, fee rates, and the open orders they own.

Balances are `Balance` records of integer units (`free`, `locked`), one per account and
asset, mutated in place on the hot path; `touched` marks the ones the current command has
already queued for its closing `BalanceChanged`, so the exchange collects them in a list, in
order of first touch, without a dict.
Fees are basis points of the quote notional: maker may be zero or negative (a rebate), taker
is never negative. Holds reserve the worst case, so settlement never overdraws (see
`Exchange` for the hold rules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # order.py imports this module
    from crossbook.engine.order import Order

MAX_FEE_BPS = 1000
MAX_BALANCE = 2**62
"""No balance may exceed this, so every amount fits a signed 64-bit field on every wire."""


class Balance:
    __slots__ = ("account", "asset", "free", "locked", "touched")

    def __init__(self, account: int, asset: str, free: int = 0, locked: int = 0) -> None:
        self.account = account
        self.asset = asset
        self.free = free
        self.locked = locked
        self.touched = False


class Account:
    __slots__ = ("account_id", "balances", "maker_bps", "open_orders", "taker_bps")

    def __init__(self, account_id: int, maker_bps: int, taker_bps: int) -> None:
        self.account_id = account_id
        self.maker_bps = maker_bps
        self.taker_bps = taker_bps
        self.balances: dict[str, Balance] = {}
        self.open_orders: dict[int, Order] = {}

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = Balance(self.account_id, asset)
        return bal


def valid_fees(maker_bps: int, taker_bps: int) -> bool:
    """Taker fee non-negative, a maker rebate never larger than the taker fee, both bounded."""
    return 0 <= taker_bps <= MAX_FEE_BPS and -taker_bps <= maker_bps <= MAX_FEE_BPS


def hold_fee(notional: int, bps: int) -> int:
    """The fee a hold reserves: rounded up, never negative."""
    if bps <= 0:
        return 0
    if notional >= 0:
        # notional * bps split so every product stays small: mypyc multiplies inline only
        # non-negative operands below 2**30 and otherwise goes through Python int objects
        high = notional // 10000
        return high * bps + ((notional - high * 10000) * bps + 9999) // 10000
    return -(-notional * bps // 10000)
