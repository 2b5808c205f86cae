"""The binary order-entry codec: length-prefixed little-endian frames, version 1.

Contract (docs/protocol/binary.md is the full specification):

- A frame is a 4-byte header `length: u16, type: u8, version: u8` followed by the fixed body
  of its type (`binary_messages.LAYOUTS`). `length` counts the whole frame, header included.
  A frame may be longer than the body this version knows; the extra bytes are ignored
  (appended fields from a newer revision).
- `encode(message)` gives one frame and `encode_many(messages)` the concatenation of many
  (one write for a batch). `packer(cls)` gives the same frame from the field values alone,
  in layout order, without building the message (`packer(FillReport)(seq, request_id, ...)`),
  for hot paths that hold the values already. Encoding trusts its input's types: a string
  that is too long, not ASCII, or holds NUL raises `ValueError`, an integer out of range
  `struct.error`.
- `FrameDecoder.feed(chunk)` takes any slice of the byte stream (partial frames, many frames
  per chunk) and returns `(messages, error)`. It never raises on bad bytes: a malformed frame
  gives a `ProtocolError` with a `ProtocolErrorCode`, after which the stream cannot be
  re-framed, so the decoder stays failed and the peer should close the session.
  `feed_values(chunk)` is the same with each message as `(cls, *fields)`, for hot paths
  that read every field once.
- `decode(frame)` decodes exactly one whole frame, to a message or a `ProtocolError`.
- `login_payload`/`sign_login`/`verify_login` define the HMAC-SHA256 login signature.

The per-type codecs are generated once at import from the layouts (like `namedtuple`), so a
frame is one precompiled `struct` call plus field conversions, with no per-field dispatch.

Pure: no I/O, clock, logging or randomness.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from crossbook.domain.rejects import Reject
from crossbook.protocol.binary_messages import (
    API_KEY_SIZE,
    LAYOUTS,
    PROTOCOL_VERSION,
    Kind,
    Login,
    Message,
)

HEADER: Final = struct.Struct("<HBB")
_HEADER_KEY: Final = struct.Struct("<HH")
"""The header read as (length, type | version << 8): one lookup checks type and version."""
HEADER_SIZE: Final = HEADER.size
DEFAULT_MAX_FRAME_SIZE: Final = 1024
MAX_FRAME_SIZE: Final = 0xFFFF


class ProtocolErrorCode(IntEnum):
    """Why a byte stream or session was refused. Stable wire values (Logout `code`)."""

    BAD_LENGTH = 101
    """The header's length is smaller than the header."""
    OVERSIZED = 102
    """The header's length is above the receiver's maximum frame size."""
    UNKNOWN_TYPE = 103
    """A type code this version does not define, or one not sent in this direction."""
    UNSUPPORTED_VERSION = 104
    TRUNCATED = 105
    """The frame is shorter than its type's body."""
    BAD_FIELD = 106
    """An enum or bool byte out of range, or a string that is not valid ASCII/UTF-8."""
    LOGIN_REQUIRED = 107
    """Session rule: the first client frame must be Login."""
    HEARTBEAT_TIMEOUT = 108
    """Session rule: nothing received for three heartbeat intervals."""


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A coded decoding failure; `offset` is the failed frame's position in the stream."""

    code: ProtocolErrorCode
    message: str
    offset: int = 0


# -- field conversions used by the generated codecs ----------------------------------------

_SYMBOL_CACHE_LIMIT: Final = 4096
_symbol_bytes: dict[str, bytes] = {}
"""Encoded symbols (a handful per venue): saves the encode and checks on the hot path."""
_symbol_strings: dict[bytes, str] = {}


def _ascii(value: str, size: int) -> bytes:
    data = value.encode("ascii")
    if len(data) > size or b"\0" in data:
        raise ValueError(f"{value!r} does not fit {size} ASCII bytes without NUL")
    return data


def _symbol(value: str, size: int) -> bytes:
    data = _ascii(value, size)
    if len(_symbol_bytes) < _SYMBOL_CACHE_LIMIT:
        _symbol_bytes[value] = data
    return data


def _symbol_text(raw: bytes) -> str:
    text = raw.rstrip(b"\0").decode("ascii")
    if len(_symbol_strings) < _SYMBOL_CACHE_LIMIT:
        _symbol_strings[raw] = text
    return text


def _text(value: str, size: int) -> bytes:
    data = value.encode("utf-8")
    if len(data) > size:
        data = data[:size].decode("utf-8", "ignore").encode("utf-8")
    return data


def _raw(value: bytes, size: int) -> bytes:
    if len(value) != size:
        raise ValueError(f"expected {size} bytes, got {len(value)}")
    return value


_BOOL: Final = {0: False, 1: True}
_REJECTS: Final = {member.value: member for member in Reject}
_INTEGERS: Final = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}


@dataclass(frozen=True, slots=True)
class Codec:
    """The compiled codec of one message type."""

    type_code: int
    size: int
    """Whole frame size, header included."""
    encode: Callable[[Any], bytes]
    pack: Callable[..., bytes]
    """The frame from the field values, in layout order (the same checks as `encode`)."""
    decode: Callable[[bytes, int], Message]
    """Decode the body at an offset; raises KeyError/UnicodeDecodeError on a bad field."""
    decode_values: Callable[[bytes, int], tuple[Any, ...]]
    """`decode` without the message: `(cls, *fields)`, the same checked field values in
    layout order, for hot paths that read every field once (no struct to build and read)."""


def _compile(cls: type[Message], type_code: int, fields: tuple[tuple[str, Kind], ...]) -> Codec:
    names = tuple(cls.__struct_fields__)
    if names != tuple(name for name, _ in fields):
        raise TypeError(f"{cls.__name__}: layout fields {fields} differ from {names}")
    formats, packed, built = ["<"], [], []
    scope: dict[str, Any] = {
        "cls": cls,
        "_ascii": _ascii,
        "_text": _text,
        "_raw": _raw,
        "_BOOL": _BOOL,
        "_REJECTS": _REJECTS,
        "_symbol": _symbol,
        "_SB": _symbol_bytes,
        "_symbol_text": _symbol_text,
        "_SS": _symbol_strings,
    }
    for name, kind in fields:
        value = f"m.{name}"
        if isinstance(kind, type):
            scope[f"_E_{name}"] = {member.value: member for member in kind}
            formats.append("B")
            packed.append(value)
            built.append(f"_E_{name}[{name}]")
        elif kind in _INTEGERS:
            formats.append(_INTEGERS[kind])
            packed.append(value)
            built.append(name)
        elif kind == "bool":
            formats.append("B")
            packed.append(value)
            built.append(f"_BOOL[{name}]")
        elif kind == "reject":
            formats.append("H")
            packed.append(value)
            built.append(f"_REJECTS.get({name}, {name})")
        elif kind.startswith("ascii") and name == "symbol":
            size = int(kind[5:])
            formats.append(f"{size}s")
            packed.append(f"(_SB[{value}] if {value} in _SB else _symbol({value}, {size}))")
            built.append(f"(_SS[{name}] if {name} in _SS else _symbol_text({name}))")
        elif kind.startswith("ascii"):
            size = int(kind[5:])
            formats.append(f"{size}s")
            # inline fast path for the common valid case; `_ascii` raises for the others
            packed.append(
                f"({value}.encode() if {value}.isascii() and len({value}) <= {size}"
                f" and '\\0' not in {value} else _ascii({value}, {size}))"
            )
            built.append(f"{name}.rstrip(b'\\0').decode('ascii')")
        elif kind.startswith("text"):
            size = int(kind[4:])
            formats.append(f"{size}s")
            packed.append(f"_text({value}, {size})")
            built.append(f"{name}.rstrip(b'\\0').decode('utf-8')")
        elif kind.startswith("raw"):
            size = int(kind[3:])
            formats.append(f"{size}s")
            packed.append(f"_raw({value}, {size})")
            built.append(name)
        else:
            raise TypeError(f"{cls.__name__}.{name}: unknown wire kind {kind!r}")
    body = struct.Struct("".join(formats))
    frame = struct.Struct("<HBB" + "".join(formats[1:]))
    scope["_pack"] = frame.pack
    scope["_unpack"] = body.unpack_from
    targets = ", ".join(name for name, _ in fields)
    values = ", ".join(
        expression.replace(f"m.{name}", name)
        for expression, (name, _) in zip(packed, fields, strict=True)
    )
    source = (
        f"def encode(m):\n"
        f"    return _pack({frame.size}, {type_code}, {PROTOCOL_VERSION}, {', '.join(packed)})\n"
        f"def pack({targets}):\n"
        f"    return _pack({frame.size}, {type_code}, {PROTOCOL_VERSION}, {values})\n"
        f"def decode(buf, offset):\n"
        f"    ({targets},) = _unpack(buf, offset)\n"
        f"    return cls({', '.join(built)})\n"
        f"def decode_values(buf, offset):\n"
        f"    ({targets},) = _unpack(buf, offset)\n"
        f"    return (cls, {', '.join(built)})\n"
    )
    exec(compile(source, f"<binary codec {cls.__name__}>", "exec"), scope)
    return Codec(
        type_code, frame.size, scope["encode"], scope["pack"], scope["decode"],
        scope["decode_values"],
    )


CODECS: Final[dict[type[Message], Codec]] = {
    cls: _compile(cls, type_code, fields) for cls, (type_code, fields) in LAYOUTS.items()
}
BY_TYPE_CODE: Final[dict[int, Codec]] = {codec.type_code: codec for codec in CODECS.values()}
_ENCODERS: Final = {cls: codec.encode for cls, codec in CODECS.items()}


def encode(message: Message) -> bytes:
    """One frame."""
    return _ENCODERS[message.__class__](message)


def packer(cls: type[Message]) -> Callable[..., bytes]:
    """`cls`'s frame from its field values in layout order: `encode` without the message."""
    return CODECS[cls].pack


def encode_many(messages: Iterable[Message]) -> bytes:
    """The frames of `messages`, concatenated: one buffer for one write."""
    encoders = _ENCODERS
    return b"".join([encoders[m.__class__](m) for m in messages])


class FrameDecoder:
    """Incremental decoder: feed stream chunks, get whole messages or a coded error."""

    __slots__ = ("_codecs", "_consumed", "_max", "_pending", "_values", "error")

    def __init__(
        self,
        accept: Collection[type[Message]] | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        kinds = CODECS if accept is None else {cls: CODECS[cls] for cls in accept}
        self._codecs = {
            c.type_code | PROTOCOL_VERSION << 8: (c.size, c.decode) for c in kinds.values()
        }
        self._values = {
            c.type_code | PROTOCOL_VERSION << 8: (c.size, c.decode_values)
            for c in kinds.values()
        }
        self._max = min(max_frame_size, MAX_FRAME_SIZE)
        self._pending = b""
        self._consumed = 0
        self.error: ProtocolError | None = None
        """Set by the first malformed frame; the decoder then refuses every later chunk."""

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held for the next `feed`."""
        return len(self._pending)

    def feed(self, data: bytes) -> tuple[list[Message], ProtocolError | None]:
        """Decode every whole frame of the stream so far; keep a partial one for later."""
        return self._feed(data, self._codecs)

    def feed_values(self, data: bytes) -> tuple[list[tuple[Any, ...]], ProtocolError | None]:
        """`feed`, each message given as `(cls, *fields)` (`Codec.decode_values`); `cls(*fields)`
        is the message `feed` would give."""
        return self._feed(data, self._values)

    def _feed(
        self, data: bytes, codecs: dict[int, tuple[int, Callable[[bytes, int], Any]]]
    ) -> tuple[list[Any], ProtocolError | None]:
        if self.error is not None:
            return [], self.error
        if self._pending:
            data = self._pending + data
        messages: list[Any] = []
        append = messages.append
        header = _HEADER_KEY.unpack_from
        largest = self._max
        offset, end, key = 0, len(data), 0
        try:
            while offset + HEADER_SIZE <= end:
                length, key = header(data, offset)
                entry = codecs.get(key)
                if entry is None or length < entry[0] or length > largest:
                    return messages, self._fail(offset, length, key)
                following = offset + length
                if following > end:
                    break
                append(entry[1](data, offset + HEADER_SIZE))
                offset = following
        except (KeyError, UnicodeDecodeError) as exc:
            return messages, self._fail_field(offset, key & 0xFF, exc)
        self._pending = data[offset:]
        self._consumed += offset
        return messages, None

    def _fail(self, offset: int, length: int, key: int) -> ProtocolError:
        type_code, version = key & 0xFF, key >> 8
        codec = BY_TYPE_CODE.get(type_code)
        if length < HEADER_SIZE:
            code, text = ProtocolErrorCode.BAD_LENGTH, f"frame length {length} < {HEADER_SIZE}"
        elif length > self._max:
            code, text = ProtocolErrorCode.OVERSIZED, f"frame length {length} > {self._max}"
        elif version != PROTOCOL_VERSION:
            code, text = ProtocolErrorCode.UNSUPPORTED_VERSION, f"version {version}"
        elif codec is None or key not in self._codecs:
            code, text = ProtocolErrorCode.UNKNOWN_TYPE, f"message type 0x{type_code:02x}"
        else:
            code = ProtocolErrorCode.TRUNCATED
            text = f"type 0x{type_code:02x} needs {codec.size} bytes, frame has {length}"
        self.error = ProtocolError(code, text, self._consumed + offset)
        return self.error

    def _fail_field(self, offset: int, type_code: int, exc: Exception) -> ProtocolError:
        detail = f"value {exc}" if isinstance(exc, KeyError) else "string encoding"
        text = f"type 0x{type_code:02x}: bad field ({detail})"
        self.error = ProtocolError(ProtocolErrorCode.BAD_FIELD, text, self._consumed + offset)
        return self.error


def decode(
    frame: bytes,
    accept: Collection[type[Message]] | None = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
) -> Message | ProtocolError:
    """Exactly one whole frame to its message, or a `ProtocolError`."""
    decoder = FrameDecoder(accept, max_frame_size)
    messages, error = decoder.feed(frame)
    if error is not None:
        return error
    if decoder.buffered:
        return ProtocolError(ProtocolErrorCode.TRUNCATED, "incomplete frame")
    if len(messages) != 1:
        return ProtocolError(ProtocolErrorCode.BAD_LENGTH, "not exactly one frame")
    return messages[0]


# -- login signature ---------------------------------------------------------------------

_SIGNED: Final = struct.Struct(f"<{API_KEY_SIZE}sQQQ")
_SIGNED_PREFIX: Final = b"crossbook-binary-login-v1\n"


def login_payload(api_key: str, timestamp: int, nonce: int, session_id: int) -> bytes:
    """The bytes a Login signature covers: a fixed prefix, then the fields as in the frame."""
    return _SIGNED_PREFIX + _SIGNED.pack(
        _ascii(api_key, API_KEY_SIZE), timestamp, nonce, session_id
    )


def sign_login(secret: bytes, api_key: str, timestamp: int, nonce: int, session_id: int) -> bytes:
    """HMAC-SHA256 of `login_payload` with the API key's secret (32 bytes)."""
    payload = login_payload(api_key, timestamp, nonce, session_id)
    return hmac.new(secret, payload, hashlib.sha256).digest()


def verify_login(secret: bytes, login: Login) -> bool:
    """Whether `login.signature` is right for `secret` (constant-time comparison).

    Freshness of `timestamp` and uniqueness of `nonce` are the server's checks.
    """
    expected = sign_login(secret, login.api_key, login.timestamp, login.nonce, login.session_id)
    return hmac.compare_digest(expected, login.signature)
