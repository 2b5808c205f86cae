"""Accounts: balances free and locked per asset, fee rates, and the open orders they own.

Balances are `Balance` records of integer units (`free`, `locked`), one per account and
asset, mutated in place on the hot path; they hash by identity, so the exchange collects the
ones a command touched in a dict without building keys.
Fees are basis points of the quote notional: maker may be zero or negative (a rebate), taker
is never negative. Holds reserve the worst case, so settlement never overdraws (see
`Exchange` for the hold rules).
"""

from __future__ import annotations

from crossbook.engine.order import Order

MAX_FEE_BPS = 1000
MAX_BALANCE = 2**62
"""No balance may exceed this, so every amount fits a signed 64-bit field on every wire."""


class Balance:
    __slots__ = ("account", "asset", "free", "locked")

    def __init__(self, account: int, asset: str, free: int = 0, locked: int = 0) -> None:
        self.account = account
        self.asset = asset
        self.free = free
        self.locked = locked


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
    return -(-notional * bps // 10000) if bps > 0 else 0
