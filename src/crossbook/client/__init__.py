"""L5, the SDK: clients that speak crossbook's wire protocols.

Contract: this package imports only `crossbook.protocol`, `crossbook.domain`, the standard
library and third-party libraries. It never imports the engine, sequencer, journal or
gateway (an import-linter contract enforces it), so it can ship and run apart from a node.

- `crossbook.client.binary.BinaryClient`: asyncio client of the binary order-entry protocol.
"""
