"""L1, pure: wire schemas and codecs shared by the gateways and the clients.

Decimal strings exist only here: conversions to integer ticks, lots and units use the
instrument's steps and refuse off-grid values with a coded error instead of rounding.
"""
