"""Binary codec: every message round-trips, framing survives any chunking, and any bytes at
all give messages or a coded `ProtocolError`, never an exception."""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossbook.domain.enums import OrderType, Side, StpMode, TimeInForce
from crossbook.domain.rejects import Reject
from crossbook.protocol.binary import (
    CODECS,
    HEADER,
    FrameDecoder,
    ProtocolError,
    ProtocolErrorCode,
    decode,
    encode,
    encode_many,
    login_payload,
    packer,
    sign_login,
    verify_login,
)
from crossbook.protocol.binary_messages import (
    CLIENT_MESSAGES,
    LAYOUTS,
    SERVER_MESSAGES,
    AcceptedReport,
    Heartbeat,
    Kind,
    Login,
    LoginRejected,
    Logout,
    Message,
    NewOrder,
)

_UINT = {"u8": 8, "u16": 16, "u32": 32, "u64": 64}
_ASCII = st.characters(min_codepoint=1, max_codepoint=127)
_TEXT = st.characters(exclude_categories=["Cs"], exclude_characters="\0")


def field_values(kind: Kind) -> st.SearchStrategy[Any]:
    if isinstance(kind, type) and issubclass(kind, IntEnum):
        return st.sampled_from(list(kind))
    assert isinstance(kind, str)
    if kind in _UINT:
        return st.integers(min_value=0, max_value=2 ** _UINT[kind] - 1)
    if kind == "bool":
        return st.booleans()
    if kind == "reject":
        return st.sampled_from(list(Reject)) | st.integers(min_value=0, max_value=0xFFFF)
    if kind.startswith("ascii"):
        return st.text(_ASCII, max_size=int(kind[5:]))
    if kind.startswith("text"):
        size = int(kind[4:])
        return st.text(_TEXT, max_size=size).filter(lambda t: len(t.encode()) <= size)
    size = int(kind[3:])
    return st.binary(min_size=size, max_size=size)


def message_of(cls: type[Message]) -> st.SearchStrategy[Message]:
    _, fields = LAYOUTS[cls]
    return st.builds(cls, **{name: field_values(kind) for name, kind in fields})


ANY_MESSAGE = st.one_of([message_of(cls) for cls in LAYOUTS])


@pytest.mark.parametrize("cls", list(LAYOUTS), ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_every_message_round_trips(cls: type[Message], data: st.DataObject) -> None:
    message = data.draw(message_of(cls))
    frame = encode(message)
    assert len(frame) == CODECS[cls].size
    assert HEADER.unpack_from(frame) == (len(frame), LAYOUTS[cls][0], 1)
    assert decode(frame) == message


@given(message=ANY_MESSAGE)
def test_packing_the_field_values_gives_the_encoded_frame(message: Message) -> None:
    values = [getattr(message, name) for name in message.__struct_fields__]
    assert packer(type(message))(*values) == encode(message)


@given(messages=st.lists(ANY_MESSAGE, max_size=30), cuts=st.lists(st.integers(0, 5000)))
def test_any_chunking_gives_the_same_messages(messages: list[Message], cuts: list[int]) -> None:
    stream = encode_many(messages)
    assert stream == b"".join(encode(m) for m in messages)
    decoder = FrameDecoder()
    received: list[Message] = []
    start = 0
    for cut in [*sorted(c for c in cuts if c <= len(stream)), len(stream)]:
        got, error = decoder.feed(stream[start:cut])
        assert error is None
        received.extend(got)
        start = max(start, cut)
    assert received == messages
    assert decoder.buffered == 0


@given(messages=st.lists(ANY_MESSAGE, max_size=30), cut=st.integers(0, 5000))
def test_field_values_build_the_same_messages(messages: list[Message], cut: int) -> None:
    stream = encode_many(messages)
    decoder = FrameDecoder()
    first, error = decoder.feed_values(stream[:cut])
    rest, later = decoder.feed_values(stream[cut:])
    assert error is None
    assert later is None
    assert [cls(*fields) for cls, *fields in first + rest] == messages


@given(st.binary(max_size=600), st.integers(1, 64))
def test_random_bytes_give_the_same_outcome_as_values(data: bytes, chunk: int) -> None:
    messages, values = FrameDecoder(), FrameDecoder()
    for start in range(0, len(data), chunk):
        part = data[start : start + chunk]
        got, error = messages.feed(part)
        got_values, error_values = values.feed_values(part)
        assert [cls(*fields) for cls, *fields in got_values] == got
        assert error_values == error
        if error is not None:
            break


@given(st.binary(max_size=600), st.integers(1, 64))
def test_random_bytes_never_raise(data: bytes, chunk: int) -> None:
    decoder = FrameDecoder()
    for start in range(0, len(data), chunk):
        messages, error = decoder.feed(data[start : start + chunk])
        assert all(isinstance(m, Message) for m in messages)
        if error is not None:
            assert isinstance(error.code, ProtocolErrorCode)
            assert decoder.feed(b"more") == ([], error)
            break


@given(ANY_MESSAGE, st.data())
def test_corrupted_frames_give_message_or_coded_error(
    message: Message, data: st.DataObject
) -> None:
    frame = bytearray(encode(message))
    for _ in range(data.draw(st.integers(1, 4))):
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    result = decode(bytes(frame))
    assert isinstance(result, Message | ProtocolError)


@given(ANY_MESSAGE, st.binary(min_size=1, max_size=40))
def test_appended_fields_of_a_newer_revision_are_ignored(message: Message, extra: bytes) -> None:
    frame = encode(message) + extra
    patched = struct.pack("<H", len(frame)) + frame[2:]
    assert decode(patched) == message


def frame_with(type_code: int, body: bytes, *, version: int = 1, length: int = -1) -> bytes:
    size = 4 + len(body) if length < 0 else length
    return HEADER.pack(size, type_code, version) + body


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (frame_with(0x03, b"", length=3), ProtocolErrorCode.BAD_LENGTH),
        (frame_with(0x03, b"", length=0), ProtocolErrorCode.BAD_LENGTH),
        (frame_with(0x03, bytes(8), length=2000), ProtocolErrorCode.OVERSIZED),
        (frame_with(0x7F, bytes(8)), ProtocolErrorCode.UNKNOWN_TYPE),
        (frame_with(0x03, bytes(8), version=2), ProtocolErrorCode.UNSUPPORTED_VERSION),
        (frame_with(0x03, bytes(7)), ProtocolErrorCode.TRUNCATED),
        (frame_with(0x13, bytes(8) + b"\xff" + bytes(15) + bytes(8)), ProtocolErrorCode.BAD_FIELD),
        (frame_with(0x02, b"\x00\x00" + b"\xff" + bytes(63)), ProtocolErrorCode.BAD_FIELD),
    ],
)
def test_malformed_frames_are_coded(frame: bytes, code: ProtocolErrorCode) -> None:
    decoder = FrameDecoder()
    messages, error = decoder.feed(encode(Heartbeat(1)) + frame)
    assert messages == [Heartbeat(1)]
    assert error is not None
    assert error.code is code
    assert error.offset == 12
    assert decoder.error is error
    assert decoder.feed(encode(Heartbeat(2))) == ([], error)
    result = decode(frame)
    assert isinstance(result, ProtocolError)
    assert result.code is code


def test_bad_enum_and_bool_values_are_coded() -> None:
    good = bytearray(encode(NewOrder(1, "X", Side.BUY, OrderType.LIMIT, qty=1, price=1)))
    for offset, value in ((28, 3), (29, 0), (46, 9), (71, 2), (80, 77)):
        bad = bytearray(good)
        bad[offset] = value
        result = decode(bytes(bad))
        assert isinstance(result, ProtocolError), offset
        assert result.code is ProtocolErrorCode.BAD_FIELD
        values, error = FrameDecoder().feed_values(bytes(bad))
        assert values == []
        assert error == result


def test_oversized_partial_frame_fails_before_it_is_buffered() -> None:
    decoder = FrameDecoder(max_frame_size=256)
    messages, error = decoder.feed(frame_with(0x10, bytes(10), length=300))
    assert messages == []
    assert error is not None
    assert error.code is ProtocolErrorCode.OVERSIZED


def test_partial_header_and_body_are_held() -> None:
    frame = encode(Heartbeat(7))
    decoder = FrameDecoder()
    assert decoder.feed(frame[:3]) == ([], None)
    assert decoder.buffered == 3
    assert decoder.feed(frame[3:9]) == ([], None)
    assert decoder.feed(frame[9:] + frame) == ([Heartbeat(7), Heartbeat(7)], None)


def test_direction_filter() -> None:
    server_side = FrameDecoder(accept=CLIENT_MESSAGES)
    report = AcceptedReport(
        0,
        0,
        0,
        0,
        0,
        "X",
        Side.BUY,
        OrderType.LIMIT,
        1,
        1,
        TimeInForce.GTC,
        0,
        0,
        0,
        False,
        0,
        StpMode.NONE,
        True,
        "",
    )
    _, error = server_side.feed(encode(report))
    assert error is not None
    assert error.code is ProtocolErrorCode.UNKNOWN_TYPE
    client_side = FrameDecoder(accept=SERVER_MESSAGES)
    assert client_side.feed(encode(report)) == ([report], None)
    assert set(LAYOUTS) == CLIENT_MESSAGES | SERVER_MESSAGES
    assert {Heartbeat, Logout} == CLIENT_MESSAGES & SERVER_MESSAGES


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ProtocolErrorCode.BAD_LENGTH),
        (encode(Heartbeat(1)) * 2, ProtocolErrorCode.BAD_LENGTH),
        (encode(Heartbeat(1))[:5], ProtocolErrorCode.TRUNCATED),
        (encode(Heartbeat(1))[:3], ProtocolErrorCode.TRUNCATED),
    ],
)
def test_decode_wants_exactly_one_frame(data: bytes, code: ProtocolErrorCode) -> None:
    result = decode(data)
    assert isinstance(result, ProtocolError)
    assert result.code is code


@pytest.mark.parametrize(
    "message",
    [
        NewOrder(1, "X" * 17, Side.BUY, OrderType.LIMIT),
        NewOrder(1, "é", Side.BUY, OrderType.LIMIT),
        NewOrder(1, "A\0B", Side.BUY, OrderType.LIMIT),
        NewOrder(1, "X", Side.BUY, OrderType.LIMIT, client_order_id="c" * 37),
        Login("key", 1, 1, 0, 1000, 1, b"short"),
    ],
)
def test_encoding_refuses_what_does_not_fit(message: Message) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the field's value
        encode(message)


def test_out_of_range_integers_refuse_to_encode() -> None:
    with pytest.raises(struct.error):
        encode(Heartbeat(-1))
    with pytest.raises(struct.error):
        encode(Heartbeat(2**64))


def test_text_is_cut_at_a_character_boundary() -> None:
    message = decode(encode(Logout(0, "€" * 30)))
    assert isinstance(message, Logout)
    assert message.message == "€" * 21


def test_unknown_reject_codes_survive_as_int() -> None:
    message = decode(encode(LoginRejected(65000, "later")))
    assert isinstance(message, LoginRejected)
    assert message.code == 65000
    known = decode(encode(LoginRejected(Reject.GATEWAY_UNAUTHORIZED, "no")))
    assert isinstance(known, LoginRejected)
    assert known.code is Reject.GATEWAY_UNAUTHORIZED


@given(
    secret=st.binary(min_size=1, max_size=64),
    key=st.text(_ASCII, min_size=1, max_size=64),
    timestamp=st.integers(0, 2**64 - 1),
    nonce=st.integers(0, 2**64 - 1),
    session=st.integers(0, 2**64 - 1),
)
def test_login_signature(secret: bytes, key: str, timestamp: int, nonce: int, session: int) -> None:
    signature = sign_login(secret, key, timestamp, nonce, session)
    login = Login(key, timestamp, nonce, session, 1000, 1, signature)
    assert len(signature) == 32
    assert verify_login(secret, login)
    assert not verify_login(secret + b"x", login)
    assert not verify_login(secret, Login(key, timestamp, nonce ^ 1, session, 1000, 1, signature))
    assert login_payload(key, timestamp, nonce, session).startswith(b"crossbook-binary-login-v1\n")
