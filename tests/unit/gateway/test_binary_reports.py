"""Report routing: an account's only session and several sessions get the same frames."""

from __future__ import annotations

import itertools

from crossbook.domain.enums import Permission
from crossbook.engine.exchange import Exchange
from crossbook.gateway.binary.reports import ReportRouter
from crossbook.gateway.binary.sessions import Session, SessionRegistry
from crossbook.gateway.views import KeyRecord
from crossbook.protocol.binary import FrameDecoder, encode
from crossbook.protocol.binary_messages import SERVER_MESSAGES
from crossbook.sequencer.ports import Applied
from crossbook.sequencer.workload import order_flow, setup_commands


def batches() -> list[list[Applied]]:
    engine, seq, ts = Exchange(), 0, 1_700_000_000_000_000_000
    commands = [*setup_commands(1, 3), *itertools.islice(order_flow(3, 1, 3), 300)]
    out = []
    for start in range(0, len(commands), 50):
        ts += 1_000_000
        batch = []
        for command in commands[start : start + 50]:
            seq += 1
            batch.append(Applied(seq, ts, command, engine.apply(seq, ts, command)))
        out.append(batch)
    return out


def key(account: int, name: str = "") -> KeyRecord:
    return KeyRecord(f"key-{account}{name}", b"", account, Permission.TRADE)


def frames(session: Session) -> list[bytes]:
    return list(session.frames)


def test_an_only_session_gets_the_frames_each_of_several_sessions_gets() -> None:
    alone, shared = SessionRegistry(), SessionRegistry()
    solo = {account: alone.open(key(account), 0) for account in (1, 2, 3)}
    pairs = {account: (shared.open(key(account), 0), shared.open(key(account, "b"), 0))
             for account in (1, 2, 3)}
    assert set(alone.sole) == {1, 2, 3}
    assert not shared.sole
    for batch in batches():
        ReportRouter(alone).on_batch(batch)
        ReportRouter(shared).on_batch(batch)
    for account in (1, 2, 3):
        mine = frames(solo[account])
        assert mine, "the flow makes reports for every account"
        assert mine == frames(pairs[account][0]) == frames(pairs[account][1])
        messages, error = FrameDecoder(accept=SERVER_MESSAGES).feed(b"".join(mine))
        assert error is None
        assert [m.seq for m in messages] == list(range(1, len(mine) + 1))  # type: ignore[attr-defined]
        assert all(encode(m) == frame for m, frame in zip(messages, mine, strict=True))


def test_the_origin_session_gets_its_request_id_and_the_others_zero() -> None:
    registry = SessionRegistry()
    first, second = registry.open(key(1), 0), registry.open(key(1, "b"), 0)
    alone = registry.open(key(2), 0)
    router = ReportRouter(registry)
    loop_future = None
    for batch in batches():
        for applied in batch:
            account = getattr(applied.command, "account", 0)
            if account in (1, 2):
                origin = first if account == 1 else alone
                router.track(applied.command, origin, applied.seq, loop_future)  # type: ignore[arg-type]
        router.on_batch(batch)
    decode = FrameDecoder(accept=SERVER_MESSAGES).feed
    for session, expect_ids in ((first, True), (second, False), (alone, True)):
        messages, error = decode(b"".join(frames(session)))
        assert error is None
        assert messages
        ids = {m.request_id for m in messages}  # type: ignore[attr-defined]
        assert (ids != {0}) is expect_ids


def test_sole_follows_opened_and_evicted_sessions() -> None:
    registry = SessionRegistry(max_sessions=2)
    first = registry.open(key(1), 0)
    assert registry.sole == {1: first}
    second = registry.open(key(1, "b"), 0)
    assert registry.sole == {}
    second.outbox = object()  # type: ignore[assignment]  # connected: never evicted
    registry.open(key(2), 0)  # evicts the disconnected first session
    assert registry.by_account[1] == [second]
    assert registry.sole[1] is second
    assert 2 in registry.sole
