"""L1, pure: the matching engine with accounts, holds, fees and self-trade prevention.

Public API (`crossbook.engine.exchange.Exchange`), deterministic and free of I/O:

    ex = Exchange()
    events = ex.apply(seq, ts, command)     # -> list[Event]; rejections are OrderRejected events
    data = ex.snapshot()                    # bytes (msgpack) of the whole state
    ex2 = Exchange.restore(data)            # ex2.state_hash() == ex.state_hash()
    ex.state_hash()                         # hex digest of the canonical state
    ex.check_invariants()                   # raises InvariantError on a broken invariant
    ex.last_seq                             # seq of the last applied command (0 when fresh)
    ex.next_expiry()                        # earliest GTD expiry stamp among open orders, or None

Queries (read-only views for shells): `instrument(symbol)`, `instruments()`, `assets()`,
`depth(symbol, limit)`, `best_bid_ask(symbol)`, `orders_at(symbol, side, price)`,
`order(order_id)`, `open_orders(account, symbol=None)`, `balances(account)`, `accounts()`,
`fees(account)`, `is_halted(symbol)`, `last_price(symbol)`.
"""
