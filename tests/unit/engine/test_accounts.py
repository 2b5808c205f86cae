"""Accounts: deposits and withdrawals, holds, fees, and the exact settlement of trades."""

from __future__ import annotations

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import OrderType
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Units
from tests.support.factories import (
    ALICE,
    BOB,
    CAROL,
    Venue,
    accepted_id,
    of,
    only_rejection,
    rejected_code,
    venue,
)

FUNDS = 10**9


def _deposit(v: Venue, account: int, asset: str, amount: int, tx: str) -> list[ev.Event]:
    return v.do(cmd.Deposit(AccountId(account), asset, Units(amount), tx))


def _withdraw(v: Venue, account: int, asset: str, amount: int, tx: str) -> list[ev.Event]:
    return v.do(cmd.Withdraw(AccountId(account), asset, Units(amount), tx))


def _fund(v: Venue, account: int, usd: int = 0, btc: int = 0) -> None:
    """Leave `account` with exactly `usd` and `btc` free."""
    _withdraw(v, account, "USD", FUNDS - usd, f"trim-usd-{account}")
    _withdraw(v, account, "BTC", FUNDS - btc, f"trim-btc-{account}")
    assert v.balance(account, "USD") == (usd, 0)
    assert v.balance(account, "BTC") == (btc, 0)


# -- deposits and withdrawals ------------------------------------------------------------------


def test_a_deposit_credits_free_balance_and_reports_the_absolute_balance() -> None:
    v = venue()
    events = _deposit(v, ALICE, "USD", 500, "d-1")
    [deposited] = of(events, ev.FundsDeposited)
    assert (deposited.amount, deposited.tx_id) == (500, "d-1")
    [changed] = of(events, ev.BalanceChanged)
    assert (changed.asset, changed.free, changed.locked) == ("USD", FUNDS + 500, 0)


def test_a_repeated_deposit_transaction_is_rejected_and_changes_nothing() -> None:
    v = venue()
    _deposit(v, ALICE, "USD", 500, "d-1")
    before = v.ex.state_hash()
    only_rejection(v, _deposit(v, ALICE, "USD", 500, "d-1"), Reject.DUPLICATE_TRANSACTION, before)
    only_rejection(v, _deposit(v, BOB, "BTC", 7, "d-1"), Reject.DUPLICATE_TRANSACTION, before)
    only_rejection(v, _withdraw(v, ALICE, "USD", 5, "d-1"), Reject.DUPLICATE_TRANSACTION, before)
    assert v.balance(ALICE, "USD") == (FUNDS + 500, 0)


def test_a_withdrawal_debits_free_balance_once_per_transaction() -> None:
    v = venue()
    events = _withdraw(v, ALICE, "USD", 300, "w-1")
    assert of(events, ev.FundsWithdrawn)
    assert v.balance(ALICE, "USD") == (FUNDS - 300, 0)
    before = v.ex.state_hash()
    only_rejection(v, _withdraw(v, ALICE, "USD", 300, "w-1"), Reject.DUPLICATE_TRANSACTION, before)


def test_a_withdrawal_cannot_touch_locked_funds() -> None:
    v = venue()
    v.buy(ALICE, 1, 100)
    before = v.ex.state_hash()
    events = _withdraw(v, ALICE, "USD", FUNDS - 99, "w-big")
    only_rejection(v, events, Reject.INSUFFICIENT_FUNDS, before)
    assert of(_withdraw(v, ALICE, "USD", FUNDS - 100, "w-ok"), ev.FundsWithdrawn)
    assert v.balance(ALICE, "USD") == (0, 100)


def test_bad_deposits_and_withdrawals_are_rejected_and_change_nothing() -> None:
    v = venue()
    before = v.ex.state_hash()
    cases = [
        (_deposit(v, 99, "USD", 5, "x-1"), Reject.UNKNOWN_ACCOUNT),
        (_deposit(v, ALICE, "EUR", 5, "x-2"), Reject.UNKNOWN_ASSET),
        (_deposit(v, ALICE, "USD", 0, "x-3"), Reject.INVALID_AMOUNT),
        (_deposit(v, ALICE, "USD", -5, "x-4"), Reject.INVALID_AMOUNT),
        (_deposit(v, ALICE, "USD", 5, ""), Reject.INVALID_AMOUNT),
        (_withdraw(v, ALICE, "USD", -5, "x-5"), Reject.INVALID_AMOUNT),
        (_withdraw(v, 99, "USD", 5, "x-6"), Reject.UNKNOWN_ACCOUNT),
    ]
    for events, code in cases:
        only_rejection(v, events, code, before)
    # the rejected transaction ids were not consumed
    assert of(_deposit(v, ALICE, "USD", 5, "x-3"), ev.FundsDeposited)


# -- holds --------------------------------------------------------------------------------------


def test_a_limit_buy_holds_its_notional_plus_the_worst_case_fee_rounded_up() -> None:
    v = venue(maker_bps=10, taker_bps=25)
    v.buy(ALICE, 3, 101)  # notional 303, fee at 25 bps = 0.7575 -> 1
    assert v.balance(ALICE, "USD") == (FUNDS - 304, 304)


def test_a_limit_sell_holds_its_size_in_base() -> None:
    v = venue(maker_bps=10, taker_bps=25)
    v.sell(ALICE, 3, 101)
    assert v.balance(ALICE, "BTC") == (FUNDS - 3, 3)
    assert v.balance(ALICE, "USD") == (FUNDS, 0)


def test_a_buy_is_accepted_with_exactly_its_hold_and_rejected_one_unit_short() -> None:
    v = venue(taker_bps=100)
    _fund(v, ALICE, usd=1_010)
    before = v.ex.state_hash()
    events = v.buy(ALICE, 10, 101)  # 1010 + 11 fee
    only_rejection(v, events, Reject.INSUFFICIENT_FUNDS, before)
    assert accepted_id(v.buy(ALICE, 10, 100))  # 1000 + 10 fee
    assert v.balance(ALICE, "USD") == (0, 1_010)


def test_a_sell_larger_than_the_free_base_is_rejected() -> None:
    v = venue()
    _fund(v, ALICE, btc=5)
    before = v.ex.state_hash()
    only_rejection(v, v.sell(ALICE, 6, 100), Reject.INSUFFICIENT_FUNDS, before)
    only_rejection(v, v.sell(ALICE, 6, type=OrderType.MARKET), Reject.NO_LIQUIDITY, before)
    v.buy(BOB, 10, 90)
    before = v.ex.state_hash()
    events = v.sell(ALICE, 6, type=OrderType.MARKET)
    only_rejection(v, events, Reject.INSUFFICIENT_FUNDS, before)


def test_an_account_without_any_quote_balance_cannot_buy() -> None:
    v = venue(accounts=(ALICE,))
    v.do(cmd.CreateAccount(AccountId(CAROL)))
    before = v.ex.state_hash()
    only_rejection(v, v.buy(CAROL, 1, 100), Reject.INSUFFICIENT_FUNDS, before)


def test_a_partial_fill_releases_the_hold_of_the_filled_part_at_a_better_price() -> None:
    v = venue()
    v.sell(BOB, 2, 90)
    v.buy(ALICE, 5, 100)  # 2 fill at 90, 3 rest at 100
    assert v.balance(ALICE, "USD") == (FUNDS - 180 - 300, 300)
    assert v.balance(ALICE, "BTC") == (FUNDS + 2, 0)


# -- fees and settlement ------------------------------------------------------------------------


def test_a_trade_settles_notional_and_fees_exactly_on_both_sides() -> None:
    v = venue(maker_bps=10, taker_bps=20)
    v.sell(ALICE, 10, 1_000)  # maker
    events = v.buy(BOB, 10, 1_000)  # taker
    [trade] = of(events, ev.TradeExecuted)
    assert (trade.quote_qty, trade.maker_fee, trade.taker_fee) == (10_000, 10, 20)
    assert v.balance(ALICE, "USD") == (FUNDS + 10_000 - 10, 0)
    assert v.balance(ALICE, "BTC") == (FUNDS - 10, 0)
    assert v.balance(BOB, "USD") == (FUNDS - 10_000 - 20, 0)
    assert v.balance(BOB, "BTC") == (FUNDS + 10, 0)
    assert v.ex.fees_collected["USD"] == 30
    changed = {(c.account, c.asset): (c.free, c.locked) for c in of(events, ev.BalanceChanged)}
    assert changed == {
        (ALICE, "USD"): (FUNDS + 9_990, 0),
        (ALICE, "BTC"): (FUNDS - 10, 0),
        (BOB, "USD"): (FUNDS - 10_020, 0),
        (BOB, "BTC"): (FUNDS + 10, 0),
    }


def test_zero_fees_move_exactly_the_notional() -> None:
    v = venue()
    v.buy(ALICE, 4, 250)
    events = v.sell(BOB, 4, 250)
    [trade] = of(events, ev.TradeExecuted)
    assert (trade.maker_fee, trade.taker_fee) == (0, 0)
    assert v.balance(ALICE, "USD") == (FUNDS - 1_000, 0)
    assert v.balance(BOB, "USD") == (FUNDS + 1_000, 0)
    assert v.ex.fees_collected.get("USD", 0) == 0


def test_a_negative_maker_fee_is_a_rebate_paid_out_of_the_taker_fee() -> None:
    v = venue(maker_bps=-10, taker_bps=20)
    v.buy(ALICE, 10, 1_000)  # maker buy: holds 10_000 + 20 (the larger rate)
    assert v.balance(ALICE, "USD") == (FUNDS - 10_020, 10_020)
    events = v.sell(BOB, 10, 1_000)
    [trade] = of(events, ev.TradeExecuted)
    assert (trade.maker_fee, trade.taker_fee) == (-10, 20)
    assert v.balance(ALICE, "USD") == (FUNDS - 9_990, 0)
    assert v.balance(BOB, "USD") == (FUNDS + 10_000 - 20, 0)
    assert v.ex.fees_collected["USD"] == 10


def test_fees_are_truncated_toward_zero() -> None:
    v = venue(maker_bps=-7, taker_bps=7)
    v.sell(ALICE, 1, 1_000)  # notional 1000: 0.7 -> 0 either way
    [trade] = of(v.buy(BOB, 1, 1_000), ev.TradeExecuted)
    assert (trade.maker_fee, trade.taker_fee) == (0, 0)
    v.sell(ALICE, 3, 1_000)  # notional 3000: 2.1 -> 2, rebate -2.1 -> -2
    [trade] = of(v.buy(BOB, 3, 1_000), ev.TradeExecuted)
    assert (trade.maker_fee, trade.taker_fee) == (-2, 2)


def test_a_raised_fee_never_exceeds_what_the_resting_buys_hold_reserved() -> None:
    v = venue(maker_bps=0, taker_bps=10)
    v.buy(ALICE, 10, 1_000)  # hold reserves 10 bps: 10_000 + 10
    events = v.do(cmd.SetFees(AccountId(ALICE), 50, 50))
    assert of(events, ev.FeesChanged)
    assert v.ex.fees(ALICE) == (50, 50)
    [trade] = of(v.sell(BOB, 10, 1_000), ev.TradeExecuted)
    assert trade.maker_fee == 10
    assert v.balance(ALICE, "USD") == (FUNDS - 10_010, 0)


def test_invalid_fee_rates_are_rejected() -> None:
    v = venue()
    before = v.ex.state_hash()
    for maker, taker in ((0, -1), (-11, 10), (1_001, 0), (0, 1_001)):
        events = v.do(cmd.SetFees(AccountId(ALICE), maker, taker))
        only_rejection(v, events, Reject.INVALID_FEES, before)
    events = v.do(cmd.CreateAccount(AccountId(77), -5, 0))
    only_rejection(v, events, Reject.INVALID_FEES, before)
    only_rejection(v, v.do(cmd.SetFees(AccountId(77), 0, 0)), Reject.UNKNOWN_ACCOUNT, before)


def test_creating_an_existing_account_is_rejected() -> None:
    v = venue()
    before = v.ex.state_hash()
    only_rejection(v, v.do(cmd.CreateAccount(AccountId(ALICE))), Reject.ACCOUNT_EXISTS, before)
    only_rejection(v, v.do(cmd.CreateAccount(AccountId(0))), Reject.ACCOUNT_EXISTS, before)


def test_conservation_holds_after_trading_with_fees() -> None:
    v = venue(maker_bps=-5, taker_bps=30)
    for price in range(9_500, 10_500, 100):
        v.sell(ALICE, 3, price)
        v.buy(CAROL, 2, price - 1_000)
    v.buy(BOB, 17, 11_000)
    v.sell(BOB, 9, type=OrderType.MARKET)
    total_usd = sum(v.balance(a, "USD")[0] + v.balance(a, "USD")[1] for a in (ALICE, BOB, CAROL))
    assert total_usd + v.ex.fees_collected["USD"] == 3 * FUNDS
    assert v.ex.fees_collected["USD"] > 0
    assert rejected_code(v.buy(BOB, 1, 1)) is None


def test_a_deposit_that_would_overflow_64_bit_fields_is_rejected_and_changes_nothing() -> None:
    from crossbook.domain import commands as cmd
    from crossbook.domain import events as ev
    from crossbook.domain.rejects import Reject
    from tests.support.factories import ALICE, of, venue

    v = venue()
    before = v.ex.state_hash()
    events = v.do(cmd.Deposit(ALICE, "BTC", 2**62, "too-much"))
    assert [e.code for e in of(events, ev.OrderRejected)] == [Reject.INVALID_AMOUNT]
    assert v.ex.state_hash() == before
