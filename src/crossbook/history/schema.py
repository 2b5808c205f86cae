"""The history schema as an ordered list of migrations, shared by SQLite and PostgreSQL.

Contract:
- `MIGRATIONS[i]` takes a database from version `i` to `i + 1`. A store applies every
  migration past the version recorded in `schema_version`, each in its own transaction, on
  open. Never edit a released migration: append a new one.
- The SQL is the common subset of both dialects (BIGINT, TEXT, window-free aggregates,
  `ON CONFLICT`), so one text serves both stores; a statement that only one dialect runs
  starts with `-- postgresql` or `-- sqlite` (`statements(version, dialect)`).
- `history_meta.last_seq` is the last sequence number whose events are in the tables; it is
  written in the same transaction as the rows, which is what makes projection exactly-once.

Version 1 holds orders (current state and every change), trades, fills, the balance ledger
and current balances. Version 2 adds instruments, one-minute candles (backfilled from the
trades already stored) and the indexes the account queries use. Version 3 makes the order
indexes integer-only: an order's changes by order id, an account's orders by order id.
Version 4 lightens PostgreSQL writes (see `_V4`). Version 5 splits the candles' volume by
aggressor: `taker_buy_volume` and `taker_buy_quote_volume` (Binance klines' "taker buy base /
quote asset volume"), backfilled from the trades already stored. Version 6 stops repeating
an order's acceptance and trades in `order_events` (see `_V6`). Version 7 lightens SQLite
writes (see `_V7`), version 8 and 9 PostgreSQL's (`_V8`, `_V9`).
"""

from __future__ import annotations

from typing import Final

_V1: Final = (
    """CREATE TABLE history_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_seq BIGINT NOT NULL
    )""",
    "INSERT INTO history_meta (id, last_seq) VALUES (1, 0)",
    """CREATE TABLE orders (
        symbol TEXT NOT NULL,
        order_id BIGINT NOT NULL,
        account BIGINT NOT NULL,
        side SMALLINT NOT NULL,
        type SMALLINT NOT NULL,
        tif SMALLINT NOT NULL,
        price BIGINT NOT NULL,
        qty BIGINT NOT NULL,
        quote_qty BIGINT NOT NULL,
        stop_price BIGINT NOT NULL,
        expire_ts BIGINT NOT NULL,
        post_only SMALLINT NOT NULL,
        visible_qty BIGINT NOT NULL,
        stp SMALLINT NOT NULL,
        client_order_id TEXT NOT NULL,
        status SMALLINT NOT NULL,
        filled BIGINT NOT NULL,
        created_seq BIGINT NOT NULL,
        created_ts BIGINT NOT NULL,
        updated_seq BIGINT NOT NULL,
        updated_ts BIGINT NOT NULL,
        PRIMARY KEY (symbol, order_id)
    )""",
    """CREATE TABLE order_events (
        seq BIGINT NOT NULL,
        idx INTEGER NOT NULL,
        leg SMALLINT NOT NULL,
        ts BIGINT NOT NULL,
        order_id BIGINT NOT NULL,
        account BIGINT NOT NULL,
        symbol TEXT NOT NULL,
        kind SMALLINT NOT NULL,
        status SMALLINT NOT NULL,
        filled BIGINT NOT NULL,
        price BIGINT NOT NULL,
        qty BIGINT NOT NULL,
        trade_id BIGINT NOT NULL,
        detail BIGINT NOT NULL,
        PRIMARY KEY (seq, idx, leg)
    )""",
    """CREATE TABLE trades (
        trade_id BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        idx INTEGER NOT NULL,
        ts BIGINT NOT NULL,
        symbol TEXT NOT NULL,
        price BIGINT NOT NULL,
        qty BIGINT NOT NULL,
        quote_qty BIGINT NOT NULL,
        taker_side SMALLINT NOT NULL,
        maker_order_id BIGINT NOT NULL,
        maker_account BIGINT NOT NULL,
        maker_fee BIGINT NOT NULL,
        taker_order_id BIGINT NOT NULL,
        taker_account BIGINT NOT NULL,
        taker_fee BIGINT NOT NULL,
        PRIMARY KEY (symbol, trade_id)
    )""",
    """CREATE TABLE fills (
        seq BIGINT NOT NULL,
        idx INTEGER NOT NULL,
        leg SMALLINT NOT NULL,
        ts BIGINT NOT NULL,
        trade_id BIGINT NOT NULL,
        account BIGINT NOT NULL,
        order_id BIGINT NOT NULL,
        symbol TEXT NOT NULL,
        side SMALLINT NOT NULL,
        liquidity SMALLINT NOT NULL,
        price BIGINT NOT NULL,
        qty BIGINT NOT NULL,
        quote_qty BIGINT NOT NULL,
        fee BIGINT NOT NULL,
        fee_asset TEXT NOT NULL,
        PRIMARY KEY (seq, idx, leg)
    )""",
    """CREATE TABLE ledger (
        seq BIGINT NOT NULL,
        idx INTEGER NOT NULL,
        ts BIGINT NOT NULL,
        account BIGINT NOT NULL,
        asset TEXT NOT NULL,
        free BIGINT NOT NULL,
        locked BIGINT NOT NULL,
        delta_free BIGINT NOT NULL,
        delta_locked BIGINT NOT NULL,
        cause TEXT NOT NULL,
        ref TEXT NOT NULL,
        PRIMARY KEY (seq, idx)
    )""",
    """CREATE TABLE balances (
        account BIGINT NOT NULL,
        asset TEXT NOT NULL,
        free BIGINT NOT NULL,
        locked BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (account, asset)
    )""",
)

_V2: Final = (
    """CREATE TABLE instruments (
        symbol TEXT PRIMARY KEY,
        base TEXT NOT NULL,
        quote TEXT NOT NULL,
        tick_size TEXT NOT NULL,
        lot_size TEXT NOT NULL,
        base_precision INTEGER NOT NULL,
        quote_precision INTEGER NOT NULL,
        lot_units BIGINT NOT NULL,
        notional_units BIGINT NOT NULL,
        seq BIGINT NOT NULL
    )""",
    """CREATE TABLE candles (
        symbol TEXT NOT NULL,
        open_ts BIGINT NOT NULL,
        open BIGINT NOT NULL,
        high BIGINT NOT NULL,
        low BIGINT NOT NULL,
        close BIGINT NOT NULL,
        volume BIGINT NOT NULL,
        quote_volume BIGINT NOT NULL,
        trades BIGINT NOT NULL,
        first_trade_id BIGINT NOT NULL,
        last_trade_id BIGINT NOT NULL,
        PRIMARY KEY (symbol, open_ts)
    )""",
    """INSERT INTO candles (symbol, open_ts, open, high, low, close, volume, quote_volume,
                            trades, first_trade_id, last_trade_id)
    SELECT g.symbol, g.open_ts, o.price, g.high, g.low, c.price, g.volume, g.quote_volume,
           g.trades, g.first_trade_id, g.last_trade_id
    FROM (SELECT symbol, ts - ts % 60000000000 AS open_ts, MAX(price) AS high,
                 MIN(price) AS low, SUM(qty) AS volume, SUM(quote_qty) AS quote_volume,
                 COUNT(*) AS trades, MIN(trade_id) AS first_trade_id,
                 MAX(trade_id) AS last_trade_id
          FROM trades GROUP BY symbol, ts - ts % 60000000000) AS g
    JOIN trades AS o ON o.symbol = g.symbol AND o.trade_id = g.first_trade_id
    JOIN trades AS c ON c.symbol = g.symbol AND c.trade_id = g.last_trade_id""",
    "CREATE INDEX orders_account_ts ON orders (account, created_ts)",
    "CREATE INDEX order_events_order ON order_events (symbol, order_id, seq)",
    "CREATE INDEX trades_symbol_ts ON trades (symbol, ts)",
    "CREATE INDEX fills_account_ts ON fills (account, ts)",
    "CREATE INDEX ledger_account_ts ON ledger (account, ts)",
)

_V3: Final = (
    # Order and trade ids are exchange-wide, so one integer column finds an order's changes;
    # the text-led index cost every order change a collated comparison per level.
    "DROP INDEX order_events_order",
    "CREATE INDEX order_events_order_id ON order_events (order_id)",
    # account queries page by order id
    "DROP INDEX orders_account_ts",
    "CREATE INDEX orders_account_id ON orders (account, order_id)",
)

_V4: Final = (
    # Write cost on PostgreSQL, where the projector's throughput is bound by index upkeep.
    # The append-only tables drop their primary keys: rows are keyed (seq, idx[, leg]) by
    # construction and each transaction claims exactly the sequence it was built on
    # (`history_meta.last_seq`), so a duplicate cannot be written; the unique index only cost
    # a second b-tree per row. Orders leave room on each page so that state changes (no
    # indexed column changes) are HOT updates.
    "-- postgresql\nALTER TABLE order_events DROP CONSTRAINT order_events_pkey",
    "-- postgresql\nALTER TABLE fills DROP CONSTRAINT fills_pkey",
    "-- postgresql\nALTER TABLE ledger DROP CONSTRAINT ledger_pkey",
    "-- postgresql\nALTER TABLE orders SET (fillfactor = 70)",
)

_TAKER_BUY_SUM: Final = """COALESCE((SELECT SUM(t.{column}) FROM trades AS t
        WHERE t.symbol = candles.symbol AND t.ts >= candles.open_ts
          AND t.ts < candles.open_ts + 60000000000 AND t.taker_side = 1), 0)"""

_V5: Final = (
    "ALTER TABLE candles ADD COLUMN taker_buy_volume BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE candles ADD COLUMN taker_buy_quote_volume BIGINT NOT NULL DEFAULT 0",
    # taker_side 1 is a buy: the buyer took liquidity
    f"""UPDATE candles SET taker_buy_volume = {_TAKER_BUY_SUM.format(column="qty")},
        taker_buy_quote_volume = {_TAKER_BUY_SUM.format(column="quote_qty")}""",
)

_V6: Final = (
    # An order's acceptance is its `orders` row and its trades are its fills: `order_events`
    # keeps only the other changes (cancels, expiries, amends, triggers, rejects), and
    # `queries.order_events` merges the three. The order keeps where and as what it was
    # accepted (an amend changes its price and quantity), each fill its order's state after
    # it; an order's fills are found by order id like its other changes.
    "ALTER TABLE orders ADD COLUMN accepted_idx INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE orders ADD COLUMN accepted_price BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE orders ADD COLUMN accepted_qty BIGINT NOT NULL DEFAULT 0",
    """UPDATE orders SET accepted_idx = e.idx, accepted_price = e.price, accepted_qty = e.qty
    FROM order_events AS e
    WHERE e.order_id = orders.order_id AND e.symbol = orders.symbol AND e.kind = 1""",
    "ALTER TABLE fills ADD COLUMN order_status SMALLINT NOT NULL DEFAULT 0",
    "ALTER TABLE fills ADD COLUMN order_filled BIGINT NOT NULL DEFAULT 0",
    """UPDATE fills SET order_status = e.status, order_filled = e.filled
    FROM order_events AS e
    WHERE e.seq = fills.seq AND e.idx = fills.idx AND e.leg = fills.leg AND e.kind = 3""",
    "DELETE FROM order_events WHERE kind IN (1, 3)",
    "CREATE INDEX fills_order_id ON fills (order_id)",
)


def _rebuild_sqlite(table: str, create: str, indexes: tuple[str, ...]) -> tuple[str, ...]:
    """SQLite cannot change a table's key in place: copy it into `create` (the same columns
    in the same order, as `{table}_new`), swap the two and build its indexes again."""
    return tuple(
        f"-- sqlite\n{statement}"
        for statement in (
            create,
            f"INSERT INTO {table}_new SELECT * FROM {table}",
            f"DROP TABLE {table}",
            f"ALTER TABLE {table}_new RENAME TO {table}",
            *indexes,
        )
    )


_V7: Final = (
    # Write cost on SQLite, where the embedded store's CPU is mostly b-tree upkeep: the
    # append-only tables drop their primary keys as PostgreSQL's did in v4 (each was a second
    # b-tree beside the rowid, and a transaction claims exactly the sequence it was built on,
    # so a duplicate cannot be written), and an order is stored under its id (order ids are
    # exchange-wide) as the rowid itself: a new order appends to one b-tree instead of two,
    # and a state change finds its row by rowid.
    *_rebuild_sqlite(
        "orders",
        """CREATE TABLE orders_new (
        symbol TEXT NOT NULL,
        order_id INTEGER PRIMARY KEY,
        account BIGINT NOT NULL,
        side SMALLINT NOT NULL,
        type SMALLINT NOT NULL,
        tif SMALLINT NOT NULL,
        price BIGINT NOT NULL,
        qty BIGINT NOT NULL,
        quote_qty BIGINT NOT NULL,
        stop_price BIGINT NOT NULL,
        expire_ts BIGINT NOT NULL,
        post_only SMALLINT NOT NULL,
        visible_qty BIGINT NOT NULL,
        stp SMALLINT NOT NULL,
        client_order_id TEXT NOT NULL,
        status SMALLINT NOT NULL,
        filled BIGINT NOT NULL,
        created_seq BIGINT NOT NULL,
        created_ts BIGINT NOT NULL,
        updated_seq BIGINT NOT NULL,
        updated_ts BIGINT NOT NULL,
        accepted_idx INTEGER NOT NULL DEFAULT 0,
        accepted_price BIGINT NOT NULL DEFAULT 0,
        accepted_qty BIGINT NOT NULL DEFAULT 0
    )""",
        ("CREATE INDEX orders_account_id ON orders (account, order_id)",),
    ),
    *_rebuild_sqlite(
        "order_events",
        """CREATE TABLE order_events_new (
        seq BIGINT NOT NULL,
        idx INTEGER NOT NULL,
        leg SMALLINT NOT NULL,
        ts BIGINT NOT NULL,
        order_id BIGINT NOT NULL,
        account BIGINT NOT NULL,
        symbol TEXT NOT NULL,
        kind SMALLINT NOT NULL,
        status SMALLINT NOT NULL,
        filled BIGINT NOT NULL,
        price BIGINT NOT NULL,
        qty BIGINT NOT NULL,
        trade_id BIGINT NOT NULL,
        detail BIGINT NOT NULL
    )""",
        ("CREATE INDEX order_events_order_id ON order_events (order_id)",),
    ),
    *_rebuild_sqlite(
        "fills",
        """CREATE TABLE fills_new (
        seq BIGINT NOT NULL,
        idx INTEGER NOT NULL,
        leg SMALLINT NOT NULL,
        ts BIGINT NOT NULL,
        trade_id BIGINT NOT NULL,
        account BIGINT NOT NULL,
        order_id BIGINT NOT NULL,
        symbol TEXT NOT NULL,
        side SMALLINT NOT NULL,
        liquidity SMALLINT NOT NULL,
        price BIGINT NOT NULL,
        qty BIGINT NOT NULL,
        quote_qty BIGINT NOT NULL,
        fee BIGINT NOT NULL,
        fee_asset TEXT NOT NULL,
        order_status SMALLINT NOT NULL DEFAULT 0,
        order_filled BIGINT NOT NULL DEFAULT 0
    )""",
        (
            "CREATE INDEX fills_account_ts ON fills (account, ts)",
            "CREATE INDEX fills_order_id ON fills (order_id)",
        ),
    ),
    *_rebuild_sqlite(
        "ledger",
        """CREATE TABLE ledger_new (
        seq BIGINT NOT NULL,
        idx INTEGER NOT NULL,
        ts BIGINT NOT NULL,
        account BIGINT NOT NULL,
        asset TEXT NOT NULL,
        free BIGINT NOT NULL,
        locked BIGINT NOT NULL,
        delta_free BIGINT NOT NULL,
        delta_locked BIGINT NOT NULL,
        cause TEXT NOT NULL,
        ref TEXT NOT NULL
    )""",
        ("CREATE INDEX ledger_account_ts ON ledger (account, ts)",),
    ),
)

_V8: Final = (
    # PostgreSQL: orders keyed by their exchange-wide id alone, as SQLite's since v7. The
    # text-led key cost every new order and every order change a collated comparison per
    # b-tree level (backend CPU of a live projection 4.0-4.4 -> 3.5-3.7 s per 334,035 events).
    "-- postgresql\nALTER TABLE orders DROP CONSTRAINT orders_pkey",
    "-- postgresql\nALTER TABLE orders ADD PRIMARY KEY (order_id)",
)

_NO_DEDUP: Final = (
    "orders_account_id", "trades_symbol_ts", "fills_account_ts", "fills_order_id",
    "ledger_account_ts",
)  # fmt: skip
"""PostgreSQL indexes built without b-tree deduplication (see `_V9`)."""

_V9: Final = tuple(
    # PostgreSQL: the secondary indexes whose keys rarely repeat stop deduplicating. A full
    # leaf page is first scanned for duplicates to merge, which on these keys (an account's
    # time, an order id) frees little, so the page splits anyway after the pass; every
    # insertion into a full page paid it. Backend CPU of a live projection, alternating:
    # see bench/results/history-projector.md.
    f"-- postgresql\nALTER INDEX {name} SET (deduplicate_items = off)"
    for name in _NO_DEDUP
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    _V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9,
)  # fmt: skip
"""Statements of each migration, oldest first; the schema version is how many ran."""


def statements(version: int, dialect: str) -> list[str]:
    """The statements of `MIGRATIONS[version]` that `dialect` (`postgresql`, `sqlite`) runs."""
    out = []
    for statement in MIGRATIONS[version]:
        if statement.startswith("-- "):
            tag = statement[3:].split("\n", 1)[0].strip()
            if tag != dialect:
                continue
        out.append(statement)
    return out

VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version INTEGER NOT NULL, applied_ts BIGINT NOT NULL)"
)

SECONDARY_INDEXES: Final = (
    ("orders_account_id", "orders (account, order_id)"),
    ("order_events_order_id", "order_events (order_id)"),
    ("trades_symbol_ts", "trades (symbol, ts)"),
    ("fills_account_ts", "fills (account, ts)"),
    ("fills_order_id", "fills (order_id)"),
    ("ledger_account_ts", "ledger (account, ts)"),
)
"""The indexes that only reads use, as the migrations leave them (name, table and columns).
A bulk load into an empty database drops them and builds them again at the end (one sort
each instead of one b-tree insertion per row); primary keys stay, writes rely on them."""


def drop_secondary_indexes() -> list[str]:
    return [f"DROP INDEX IF EXISTS {name}" for name, _ in SECONDARY_INDEXES]


def create_secondary_indexes(dialect: str) -> list[str]:
    """The statements that build each secondary index as the migrations left it in `dialect`
    (`postgresql`, `sqlite`), largest table first; each is independent of the others."""
    out = []
    for name, on in sorted(SECONDARY_INDEXES, key=lambda index: _BUILD_ORDER.index(index[0])):
        options = " WITH (deduplicate_items = off)" if (
            dialect == "postgresql" and name in _NO_DEDUP
        ) else ""  # fmt: skip
        out.append(f"CREATE INDEX IF NOT EXISTS {name} ON {on}{options}")
    return out


_BUILD_ORDER: Final = (
    "ledger_account_ts", "fills_account_ts", "fills_order_id", "orders_account_id",
    "trades_symbol_ts", "order_events_order_id",
)  # fmt: skip


TABLES: Final = (
    "orders", "order_events", "trades", "fills", "ledger", "balances", "instruments", "candles",
)  # fmt: skip
"""Every projected table, for checks that compare two databases."""

ORDER_KEYS: Final = {
    "orders": "symbol, order_id",
    "order_events": "seq, idx, leg",
    "trades": "symbol, trade_id",
    "fills": "seq, idx, leg",
    "ledger": "seq, idx",
    "balances": "account, asset",
    "instruments": "symbol",
    "candles": "symbol, open_ts",
}
"""A total order of each table's rows (its primary key)."""
