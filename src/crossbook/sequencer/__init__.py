"""L3: the single writer. The only code that changes the exchange's state."""
