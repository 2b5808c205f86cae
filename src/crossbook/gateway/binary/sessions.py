"""Binary protocol sessions: login checks, per-session sequence numbers, the resend store.

Contract:
- `LoginPolicy.check(login, now_ns)` authenticates a `Login`: the key must be live in the
  durable views, the HMAC signature right (constant-time), `timestamp` within `skew_ns` of
  the server clock and the `(api_key, nonce)` pair unused within the window (nonces are
  remembered for twice the skew, so a replay is refused while its timestamp could pass).
  Keys need the TRADE permission; keys with ADMIN are *privileged* (gateway workers) and may
  name any account in requests. It returns the `KeyRecord` or a `(Reject, message)` refusal.
- A `Session` belongs to one API key and outlives its connections. `deliver(frame)` stamps
  the next `seq` into an encoded report frame, keeps it in a bounded store (the newest
  `keep` frames) and queues it on the live connection, if any; `deliver_stamped(frame)` does
  the same for a frame encoded with the session's `next_seq` already. `resend(from, to)`
  gives the stored frames of a range, or `None` when part of the range is gone (the caller
  answers `ResendDone(complete=False)`).
- `SessionRegistry` opens and resumes sessions (a resume needs the same API key), indexes
  the sessions by account for report routing (`by_account`, and `sole`: the accounts with
  exactly one session), and forgets the least recently used
  disconnected sessions beyond `max_sessions`.
"""

from __future__ import annotations

import secrets
import struct
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final, Protocol

from crossbook.domain.enums import Permission
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId
from crossbook.gateway.views import KeyRecord
from crossbook.protocol.binary import verify_login
from crossbook.protocol.binary_messages import Login

SEQ_AND_REQUEST: Final = struct.Struct("<QQ")
"""Every report starts `seq: u64, request_id: u64` right after the 4-byte header."""
_HEAD: Final = 4
_TAIL: Final = _HEAD + SEQ_AND_REQUEST.size


class Outbox(Protocol):
    """Where a session queues frames for its live connection."""

    def queue(self, frame: bytes) -> None: ...

    def close_session(self, code: int, message: str) -> None: ...


class LoginPolicy:
    def __init__(
        self,
        keys: dict[str, KeyRecord],
        skew_ns: int = 10_000_000_000,
        max_nonces: int = 1_000_000,
    ) -> None:
        self.keys = keys
        self.skew_ns = skew_ns
        self.max_nonces = max_nonces
        self._nonces: OrderedDict[tuple[str, int], int] = OrderedDict()

    def check(self, login: Login, now_ns: int) -> KeyRecord | tuple[Reject, str]:
        key = self.keys.get(login.api_key)
        if key is None:
            return Reject.GATEWAY_UNAUTHORIZED, "unknown or revoked API key"
        if not verify_login(key.secret, login):
            return Reject.GATEWAY_UNAUTHORIZED, "signature does not match"
        if abs(now_ns - login.timestamp) > self.skew_ns:
            return Reject.GATEWAY_UNAUTHORIZED, "timestamp outside the allowed skew; sync clock"
        self._forget(now_ns)
        nonce = (login.api_key, login.nonce)
        if nonce in self._nonces:
            return Reject.GATEWAY_UNAUTHORIZED, "nonce already used"
        if not key.permissions & (Permission.TRADE | Permission.ADMIN):
            return Reject.GATEWAY_FORBIDDEN, "this API key lacks the trade permission"
        if key.account == 0 and not key.permissions & Permission.ADMIN:
            return Reject.GATEWAY_FORBIDDEN, "this API key holds no account"
        self._nonces[nonce] = now_ns
        return key

    def _forget(self, now_ns: int) -> None:
        nonces, horizon = self._nonces, now_ns - 2 * self.skew_ns
        while nonces and (len(nonces) >= self.max_nonces or next(iter(nonces.values())) < horizon):
            nonces.popitem(last=False)


class Session:
    __slots__ = ("account", "api_key", "frames", "next_seq", "outbox", "privileged", "session_id")

    def __init__(
        self, session_id: int, api_key: str, account: int, privileged: bool, keep: int
    ) -> None:
        self.session_id = session_id
        self.api_key = api_key
        self.account = AccountId(account)
        self.privileged = privileged
        self.next_seq = 1
        self.frames: deque[bytes] = deque(maxlen=keep)
        self.outbox: Outbox | None = None

    @property
    def last_seq(self) -> int:
        return self.next_seq - 1

    def deliver(self, template: bytes, request_id: int) -> None:
        """Stamp seq and request id into an encoded report; keep it; send it if connected."""
        seq = self.next_seq
        self.next_seq = seq + 1
        frame = template[:_HEAD] + SEQ_AND_REQUEST.pack(seq, request_id) + template[_TAIL:]
        self.frames.append(frame)
        if self.outbox is not None:
            self.outbox.queue(frame)

    def deliver_stamped(self, frame: bytes) -> None:
        """`deliver` for a report encoded with this session's `next_seq` (and its request id
        for this session) already: kept and sent as it is."""
        self.next_seq += 1
        self.frames.append(frame)
        if self.outbox is not None:
            self.outbox.queue(frame)

    def resend(self, from_seq: int, to_seq: int) -> list[bytes] | None:
        """Stored frames `from_seq..to_seq` (clamped to the last seq); None if some are gone."""
        oldest = self.next_seq - len(self.frames)
        if from_seq < oldest:
            return None
        last = min(to_seq, self.last_seq)
        if from_seq > last:
            return []
        start = from_seq - oldest
        frames = self.frames
        return [frames[i] for i in range(start, start + last - from_seq + 1)]

    def oldest_seq(self) -> int:
        return self.next_seq - len(self.frames)


class SessionRegistry:
    def __init__(self, keep: int = 65_536, max_sessions: int = 4_096) -> None:
        self.keep = keep
        self.max_sessions = max_sessions
        self.sessions: OrderedDict[int, Session] = OrderedDict()
        self.by_account: dict[int, list[Session]] = {}
        self.sole: dict[int, Session] = {}
        """The accounts of `by_account` with exactly one session, and that session."""
        self._new_id: Callable[[], int] = lambda: secrets.randbits(63) or 1

    def open(self, key: KeyRecord, session_id: int) -> Session:
        """Resume `session_id` when it exists for this key, else open a new session."""
        found = self.sessions.get(session_id) if session_id else None
        if found is not None and found.api_key == key.key:
            self.sessions.move_to_end(session_id)
            return found
        new_id = self._new_id()
        while new_id in self.sessions:
            new_id = self._new_id()
        session = Session(
            new_id, key.key, key.account, bool(key.permissions & Permission.ADMIN), self.keep
        )
        self.sessions[new_id] = session
        listed = self.by_account.setdefault(key.account, [])
        listed.append(session)
        self._index(key.account, listed)
        self._evict()
        return session

    def _evict(self) -> None:
        if len(self.sessions) <= self.max_sessions:
            return
        for session_id, session in list(self.sessions.items()):
            if len(self.sessions) <= self.max_sessions:
                return
            if session.outbox is None:
                del self.sessions[session_id]
                listed = self.by_account[session.account]
                listed.remove(session)
                if not listed:
                    del self.by_account[session.account]
                self._index(session.account, listed)

    def _index(self, account: int, listed: list[Session]) -> None:
        if len(listed) == 1:
            self.sole[account] = listed[0]
        else:
            self.sole.pop(account, None)
