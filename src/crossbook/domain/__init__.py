"""L0, pure: the vocabulary of crossbook (values, enums, instruments, commands, events, rejects).

Imports nothing but the standard library's pure parts and msgspec.
"""
