"""Market data: what the public sees of the exchange.

`crossbook.marketdata.views` (pure) folds durable batches into per-symbol views (the L2 book,
trades, aggregated trades, tickers, candles) and into per-batch stream updates. Publishing
those updates to connections is I/O and lives beside the views, never inside them.
"""
