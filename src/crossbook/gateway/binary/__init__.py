"""The binary order-entry gateway (docs/protocol/binary.md): TCP and Unix socket listeners.

`BinaryServer(bus, keys)` authenticates against the durable API keys, turns requests into
domain commands for the sequencer and answers with execution reports once the commands are
durable; `server.router` must be added as a sequencer sink. See `server`, `sessions` and
`reports` for the contracts.
"""

from crossbook.gateway.binary.server import BinaryServer

__all__ = ["BinaryServer"]
