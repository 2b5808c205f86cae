"""The load generator behind `crossbook bench`: a client of the node, speaking protocol only.

`flow` (the seeded order mix), `targets` (binary and REST connections), `run` (closed and
open loop, HDR histogram), `setup` (node, accounts, lost-order check, files), `session`
(one run end to end).
"""
