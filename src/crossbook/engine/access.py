"""API keys: which key may act for which account, and with which permissions.

Keys are state like any other: `CreateApiKey` and `RevokeApiKey` are journaled commands, so
keys survive restarts through replay and snapshots. The engine never checks a signature; it
only records keys for the gateways, which verify requests against the secret.

Rules (checked before any change, one rejection per failed rule):
- key and secret are 16-128 printable ASCII characters without spaces;
- permissions are a non-empty combination of `Permission` flags;
- the account exists, or is 0 for an operator key (which must carry ADMIN);
- a key is created once: an existing or revoked key is refused (`API_KEY_EXISTS`);
- revoking needs a live key (`UNKNOWN_API_KEY`).

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

from collections.abc import Container

import msgspec

from crossbook.domain.commands import CreateApiKey
from crossbook.domain.enums import Permission
from crossbook.domain.rejects import Reject

ALL_PERMISSIONS = int(Permission.READ | Permission.TRADE | Permission.ADMIN)
MIN_KEY_LENGTH = 16
MAX_KEY_LENGTH = 128


class ApiKey(msgspec.Struct, frozen=True, array_like=True):
    key: str
    secret: str
    account: int
    permissions: int
    label: str
    created_ts: int
    revoked: bool = False


def _well_formed(text: str) -> bool:
    return (
        MIN_KEY_LENGTH <= len(text) <= MAX_KEY_LENGTH
        and text.isascii()
        and text.isprintable()
        and " " not in text
    )


def check_create(
    c: CreateApiKey, keys: dict[str, ApiKey], accounts: Container[int]
) -> tuple[Reject, str] | None:
    """Why `c` cannot be carried out, or None."""
    if not _well_formed(c.key) or not _well_formed(c.secret):
        return Reject.INVALID_API_KEY, "key and secret must be 16-128 printable characters"
    if not 0 < c.permissions <= ALL_PERMISSIONS:
        return Reject.INVALID_API_KEY, "permissions must combine read, trade and admin"
    if c.key in keys:
        return Reject.API_KEY_EXISTS, "the key exists"
    if c.account == 0:
        if not c.permissions & Permission.ADMIN:
            return Reject.INVALID_API_KEY, "a key without an account must have admin permission"
    elif c.account not in accounts:
        return Reject.UNKNOWN_ACCOUNT, "unknown account"
    return None
