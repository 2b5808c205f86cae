"""API keys are journaled state: created once, revoked once, kept by snapshots."""

from __future__ import annotations

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import Permission
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Nanos, Seq
from crossbook.engine.exchange import Exchange

KEY = "k" * 20
SECRET = "s" * 32
TRADER = int(Permission.READ | Permission.TRADE)


def _run(ex: Exchange, *commands: cmd.Command) -> list[ev.Event]:
    out: list[ev.Event] = []
    for command in commands:
        out = ex.apply(Seq(ex.last_seq + 1), Nanos(ex.last_seq + 1), command)
    return out


def _codes(events: list[ev.Event]) -> list[Reject]:
    return [e.code for e in events if isinstance(e, ev.OrderRejected)]


def test_create_and_revoke_roundtrip_through_snapshot() -> None:
    ex = Exchange()
    _run(ex, cmd.CreateAccount(AccountId(7)))
    events = _run(ex, cmd.CreateApiKey(KEY, SECRET, AccountId(7), TRADER, "bot"))
    assert events == [ev.ApiKeyCreated(KEY, AccountId(7), TRADER, "bot")]
    restored = Exchange.restore(ex.snapshot())
    assert restored.api_keys() == ex.api_keys()
    assert restored.state_hash() == ex.state_hash()
    assert _run(ex, cmd.RevokeApiKey(KEY)) == [ev.ApiKeyRevoked(KEY, AccountId(7))]
    assert ex.api_keys()[0].revoked
    assert _codes(_run(ex, cmd.RevokeApiKey(KEY))) == [Reject.UNKNOWN_API_KEY]
    assert _codes(_run(ex, cmd.CreateApiKey(KEY, SECRET, AccountId(7), TRADER))) == [
        Reject.API_KEY_EXISTS
    ]


def test_invalid_keys_are_refused_without_change() -> None:
    ex = Exchange()
    before = ex.state_hash()
    cases = [
        (cmd.CreateApiKey("short", SECRET, AccountId(0), 7), Reject.INVALID_API_KEY),
        (cmd.CreateApiKey(KEY, "with space" * 3, AccountId(0), 7), Reject.INVALID_API_KEY),
        (cmd.CreateApiKey(KEY, SECRET, AccountId(0), 0), Reject.INVALID_API_KEY),
        (cmd.CreateApiKey(KEY, SECRET, AccountId(0), 8), Reject.INVALID_API_KEY),
        (cmd.CreateApiKey(KEY, SECRET, AccountId(0), TRADER), Reject.INVALID_API_KEY),
        (cmd.CreateApiKey(KEY, SECRET, AccountId(3), TRADER), Reject.UNKNOWN_ACCOUNT),
    ]
    for command, code in cases:
        assert _codes(_run(ex, command)) == [code]
    assert ex.state_hash() == before
    assert _run(ex, cmd.CreateApiKey(KEY, SECRET, AccountId(0), int(Permission.ADMIN)))
