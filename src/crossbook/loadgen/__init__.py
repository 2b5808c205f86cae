"""The load generator behind `crossbook bench`: a client of the node, speaking protocol only.

It imports `crossbook.client` (the SDK), `crossbook.protocol` and `crossbook.domain`, never
the node's internals (an import-linter contract). `flow` (the seeded order mix), `targets`
(binary, WebSocket and REST connections), `run` (closed and open loop, HDR histogram),
`setup` (node, accounts, lost-order check, files), `session` (one run end to end).
"""
