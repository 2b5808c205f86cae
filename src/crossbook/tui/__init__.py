"""L5, the terminal UI (`crossbook tui`): a Textual trading screen built on the SDK only.

- `app.TradingApp`: the screen (book ladder, chart, tape, order form, my orders, balances);
- `form`: the order form and its validation; `amend`: the amend dialog;
- `render`: pure renderers (market data to Rich text), tested without a terminal.

Like `crossbook.client`, it never imports the engine, sequencer, journal or gateway.
"""
