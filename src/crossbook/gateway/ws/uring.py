"""Many sockets' sends in one system call: a minimal io_uring (Linux 5.6+) through ctypes.

`Ring.open(entries)` sets up a submission and a completion queue shared with the kernel (None
where io_uring is missing or refused, e.g. by a seccomp policy); `Ring.send_all(items)` queues
one `send` per `(fd, data)` with `MSG_DONTWAIT | MSG_NOSIGNAL` and makes one `io_uring_enter`
per `entries` of them that issues them and waits for their completions; it returns, in order,
the bytes each send took or a negative errno (`-EAGAIN`: the socket's buffer is full). With
`MSG_DONTWAIT` the kernel never parks a send to retry it later: each one completes within the
call, as a non-blocking `send` would, so the call cannot wait on a slow peer.

Why: ctypes releases the interpreter lock for the whole foreign call, so a thread that writes
a fan-out round this way takes the lock twice per round instead of once per socket. With a
lock handed back and forth a thousand times a round, on a busy machine every hand-over can
wait for a scheduler slice; here the round's kernel work runs beside the loop's Python in one
stretch.

The caller keeps `data` alive and the descriptors open for the duration of `send_all` (the
ring reads the buffers by address during the call only). CPython only: a buffer's address is
the `bytes` object's address plus the fixed offset of its contents, checked at open.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import sys
from collections.abc import Callable
from typing import Final

_SYS_SETUP: Final = 425
_SYS_ENTER: Final = 426
_SYS_REGISTER: Final = 427
_REGISTER_EVENTFD: Final = 4
_REGISTER_IOWQ_MAX_WORKERS: Final = 19
_ENTER_GETEVENTS: Final = 1
_OFF_CQ_RING: Final = 0x8000000
_OFF_SQES: Final = 0x10000000
_OP_SEND: Final = 26
_SEND_FLAGS: Final = 0x40 | 0x4000  # MSG_DONTWAIT | MSG_NOSIGNAL
_SQE = struct.Struct("<BBHiQQIIQHHiQQ")  # struct io_uring_sqe, 64 bytes
_CQE = struct.Struct("<QiI")  # struct io_uring_cqe: user_data, res, flags
_U32 = struct.Struct("<I")
_MASK32: Final = 0xFFFFFFFF


def _bytes_offset() -> int | None:
    """Where a `bytes` object's contents start, relative to its address (CPython)."""
    if sys.implementation.name != "cpython":
        return None
    sample = b"offset probe"
    address = ctypes.cast(ctypes.c_char_p(sample), ctypes.c_void_p).value
    return None if address is None else address - id(sample)


class Ring:
    """One submission queue of `entries` sends and its completion queue."""

    def __init__(self, fd: int, params: bytearray, offset: int,
                 syscall: Callable[..., int]) -> None:
        self.fd = fd
        self._syscall = syscall
        self._offset = offset
        self._flags = 0
        """SQE flags: IOSQE_ASYNC (16) when kernel workers make the sends."""
        self.entries, cq_entries = struct.unpack_from("<2I", params, 0)
        _, sq_tail, sq_mask, _, _, _, sq_array, _ = struct.unpack_from("<8I", params, 40)
        cq_head, cq_tail, cq_mask, _, _, cqes, _, _ = struct.unpack_from("<8I", params, 80)
        rw = mmap.PROT_READ | mmap.PROT_WRITE
        self._sq = mmap.mmap(fd, sq_array + self.entries * 4, mmap.MAP_SHARED, rw, offset=0)
        self._cq = mmap.mmap(fd, cqes + cq_entries * 16, mmap.MAP_SHARED, rw,
                             offset=_OFF_CQ_RING)
        self._sqes = mmap.mmap(fd, self.entries * 64, mmap.MAP_SHARED, rw, offset=_OFF_SQES)
        self._sq_tail = sq_tail
        self._sq_mask = _U32.unpack_from(self._sq, sq_mask)[0]
        self._cq_head, self._cq_tail, self._cqes = cq_head, cq_tail, cqes
        self._cq_mask = _U32.unpack_from(self._cq, cq_mask)[0]
        for i in range(self.entries):  # the submission array maps slot i to entry i, for good
            _U32.pack_into(self._sq, sq_array + 4 * i, i)

    def use_kernel_worker(self) -> bool:
        """Have one kernel worker (io-wq) make the sends, one after the other, with the
        scheduler free to run other tasks between two of them."""
        limits = (ctypes.c_uint32 * 2)(1, 1)
        if self._syscall(_SYS_REGISTER, self.fd, _REGISTER_IOWQ_MAX_WORKERS, limits, 2) < 0:
            return False
        self._flags = 16
        return True

    def kernel_cpu(self) -> float:
        """CPU seconds this process's io-wq workers have run so far (`schedstat`, ns)."""
        total = 0
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/comm", "rb") as f:
                    if not f.read().startswith(b"iou-wrk-"):
                        continue
                with open(f"/proc/self/task/{task}/schedstat", "rb") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return total / 1e9

    @classmethod
    def open(cls, entries: int = 1024) -> Ring | None:
        if not sys.platform.startswith("linux"):
            return None
        offset = _bytes_offset()
        if offset is None:
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return None
        syscall = libc.syscall
        syscall.restype = ctypes.c_long
        params = bytearray(120)  # struct io_uring_params
        fd = syscall(_SYS_SETUP, entries, (ctypes.c_char * 120).from_buffer(params))
        if fd < 0:
            return None
        try:
            ring = cls(fd, params, offset, syscall)
            if ring.send_all([(-1, b"probe")]) != [-9]:  # EBADF: sends are understood
                ring.close()
                return None
        except (OSError, ValueError):
            os.close(fd)
            return None
        return ring

    def close(self) -> None:
        for area in (self._sq, self._cq, self._sqes):
            area.close()
        os.close(self.fd)

    def send_all(self, items: list[tuple[int, bytes]]) -> list[int]:
        """Send each `data` on its `fd` now; bytes taken or -errno, in order."""
        results = [0] * len(items)
        for start in range(0, len(items), self.entries):
            end = min(len(items), start + self.entries)
            self._queue(items, start, end)
            submit, done = end - start, 0
            while done < end - start:
                submit -= self._enter(submit, end - start - done)
                done += self.reap(results)
        return results

    def submit(self, items: list[tuple[int, bytes]]) -> int:
        """Start the sends and return at once (with `use_kernel_worker`): `reap` collects
        the results, by index in `items`, as they complete (the eventfd of
        `register_eventfd` counts completions). `items` must stay alive until then. Returns
        how many were started: the first ones, all unless the kernel refused the rest."""
        started = 0
        for start in range(0, len(items), self.entries):
            end = min(len(items), start + self.entries)
            self._queue(items, start, end)
            submit = end - start
            while submit:
                try:
                    entered = self._enter(submit, 0)
                except OSError:  # take back what the kernel did not take
                    tail = _U32.unpack_from(self._sq, self._sq_tail)[0]
                    _U32.pack_into(self._sq, self._sq_tail, (tail - submit) & _MASK32)
                    return started
                submit -= entered
                started += entered
        return started

    def register_eventfd(self, fd: int) -> None:
        """Have the kernel signal eventfd `fd` on every completion."""
        value = ctypes.c_int32(fd)
        if self._syscall(_SYS_REGISTER, self.fd, _REGISTER_EVENTFD, ctypes.byref(value), 1) < 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))

    def reap(self, results: list[int]) -> int:
        """Store each completion's result at its index; how many there were."""
        cq, cq_mask, cqes = self._cq, self._cq_mask, self._cqes
        head = _U32.unpack_from(cq, self._cq_head)[0]
        tail = _U32.unpack_from(cq, self._cq_tail)[0]
        count = (tail - head) & _MASK32
        unpack = _CQE.unpack_from
        while head != tail:
            user, res, _ = unpack(cq, cqes + (head & cq_mask) * 16)
            results[user] = res
            head = (head + 1) & _MASK32
        _U32.pack_into(cq, self._cq_head, head)
        return int(count)

    def _queue(self, items: list[tuple[int, bytes]], start: int, end: int) -> None:
        sq, sqes, mask, offset = self._sq, self._sqes, self._sq_mask, self._offset
        flags = self._flags
        tail = _U32.unpack_from(sq, self._sq_tail)[0]
        pack = _SQE.pack_into
        for i in range(start, end):
            fd, data = items[i]
            pack(sqes, ((tail + i - start) & mask) * 64, _OP_SEND, flags, 0, fd, 0,
                 id(data) + offset, len(data), _SEND_FLAGS, i, 0, 0, 0, 0, 0)
        _U32.pack_into(sq, self._sq_tail, (tail + end - start) & _MASK32)

    def _enter(self, submit: int, wait: int) -> int:
        """One io_uring_enter: submit `submit` queued sends, wait for `wait` completions;
        how many it submitted (0 after a signal)."""
        entered = self._syscall(_SYS_ENTER, self.fd, submit, wait,
                                _ENTER_GETEVENTS if wait else 0, None, 0)
        if entered < 0:
            error = ctypes.get_errno()
            if error != 4:  # EINTR: enter again
                raise OSError(error, os.strerror(error))
            return 0
        return int(entered)
