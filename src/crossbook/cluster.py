"""Edge services of the core process: the binary gateway and, with `--workers N`, the feed
and supervision of gateway worker processes.

Contract:
- `EdgeServices.start(core, context)` (called by `crossbook.node.run_node` once the HTTP
  gateway's views exist) serves the binary protocol on `settings.binary` (TCP) and on
  `DATA_DIR/binary.sock` (Unix), and adds its report router as a sequencer sink. Binary
  sessions charge the context's rate limiter, the one the HTTP and WebSocket gateways of
  this process use.
- With `settings.workers > 0` it also makes sure the journal holds the privileged
  `gateway-workers` API key, serves the view feed on `DATA_DIR/feed.sock`, binds the public
  HTTP address and starts N `crossbook.worker` processes that share that listening socket
  (the kernel spreads connections over them). A worker that exits is started again.
- The feed (`FeedHello`, then one `FeedBatch` per durable batch, in seq order) gives each
  worker an exact copy of the durable gateway and market data views: on connect a pickled
  copy of the views taken at a batch boundary, then every `Applied` batch with the origins
  of the commands that came from binary sessions, so a worker matches its requests to their
  results. Workers send admin commands (accounts, deposits, keys) as `FeedCommand` and get a
  `FeedAnswer`; order entry goes through the binary protocol.
- Listen keys (user-data streams) have one authority, the core's registry: workers send
  create, keepalive and close as `FeedKeyRequest` and get a `FeedKeyAnswer`; the hello
  carries the live keys and every later change reaches every worker as a `FeedKeyState`
  (written before the answer, so the asking worker's copy is current when its route returns).
- The workers also serve WebSocket streams and WebSocket order entry on the public `--ws`
  address (a second inherited listening socket); the core's own WebSocket server then
  listens on a private ephemeral port.
- Frames on the feed socket are a 4-byte little-endian length and a msgpack body.
- `close()` stops the workers (SIGTERM, then SIGKILL after a grace period) and listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, Union

import msgspec

from crossbook.config import NodeConfig
from crossbook.domain import commands as cmd
from crossbook.domain.enums import Permission
from crossbook.domain.values import AccountId
from crossbook.gateway.binary import BinaryServer
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.listen_keys import ListenKey
from crossbook.gateway.native.admin import new_key_pair
from crossbook.history import history_target
from crossbook.sequencer.loop import SequencerError
from crossbook.sequencer.ports import Applied

if TYPE_CHECKING:
    from crossbook.journal.core import Core


class EdgeSettings(Protocol):
    """What the edge services read of `crossbook.node.NodeSettings`."""

    data_dir: Path
    config: NodeConfig
    http: tuple[str, int]
    binary: tuple[str, int]
    workers: int
    public_http: tuple[str, int] | None
    public_ws: tuple[str, int] | None
    ws: tuple[str, int]
    history: str | None

log = logging.getLogger("crossbook.cluster")

BINARY_SOCKET: Final = "binary.sock"
FEED_SOCKET: Final = "feed.sock"
WORKER_KEY_LABEL: Final = "gateway-workers"
LENGTH: Final = struct.Struct("<I")
ALL: Final = int(Permission.READ | Permission.TRADE | Permission.ADMIN)


class FeedKeyState(msgspec.Struct, tag="key"):
    """A listen key of the core's registry as it is now; `expires_ms` 0: closed or expired."""

    key: str
    account: int
    api_key: str
    expires_ms: int


class FeedHello(msgspec.Struct, tag="hello"):
    state: bytes
    """pickle of `(GatewayViews, MarketData)` at a batch boundary."""
    last_seq: int
    keys: list[FeedKeyState] = msgspec.field(default_factory=list)
    """The live listen keys."""


class FeedKeyRequest(msgspec.Struct, tag="key_request"):
    id: int
    op: str
    """create | keepalive | close"""
    account: int
    api_key: str = ""
    key: str = ""


class FeedKeyAnswer(msgspec.Struct, tag="key_answer"):
    id: int
    ok: bool
    key: str = ""


class FeedBatch(msgspec.Struct, tag="batch"):
    applied: list[Applied]
    origins: list[tuple[int, int, int]]
    """(index in `applied`, binary session id, request id)."""


class FeedCommand(msgspec.Struct, tag="command"):
    id: int
    command: cmd.Command


class FeedAnswer(msgspec.Struct, tag="answer"):
    id: int
    applied: Applied | None
    code: int = 0
    message: str = ""


FeedMessage = Union[
    FeedHello, FeedBatch, FeedCommand, FeedAnswer, FeedKeyState, FeedKeyRequest, FeedKeyAnswer
]
feed_encoder: Final = msgspec.msgpack.Encoder()
feed_decoder: Final = msgspec.msgpack.Decoder(FeedMessage)


def frame(message: FeedMessage) -> bytes:
    body = feed_encoder.encode(message)
    return LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> FeedMessage:
    (size,) = LENGTH.unpack(await reader.readexactly(LENGTH.size))
    message: FeedMessage = feed_decoder.decode(await reader.readexactly(size))
    return message


class FeedServer:
    """A sequencer sink that streams durable batches to the connected workers."""

    def __init__(self, context: GatewayContext, binary: BinaryServer) -> None:
        self.context = context
        self.binary = binary
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        context.listen_keys.on_change.append(self._key_changed)

    async def listen(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale socket of a previous run
        self.server = await asyncio.start_unix_server(self._serve, str(path), limit=1 << 24)
        os.chmod(path, 0o600)

    def on_batch(self, batch: Sequence[Applied]) -> None:
        if not self.writers:
            return
        data = frame(FeedBatch(list(batch), list(self.binary.router.origins)))
        for writer in self.writers:
            writer.write(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ctx = self.context
        state = pickle.dumps((ctx.views, ctx.market), protocol=pickle.HIGHEST_PROTOCOL)
        keys = [FeedKeyState(k.key, k.account, k.api_key, k.expires_ms)
                for k in ctx.listen_keys.live(ctx.now_ms())]
        writer.write(frame(FeedHello(state, ctx.views.last_seq, keys)))
        self.writers.add(writer)
        try:
            while True:
                message = await read_frame(reader)
                if isinstance(message, FeedCommand):
                    asyncio.get_running_loop().create_task(self._execute(message, writer))
                elif isinstance(message, FeedKeyRequest):
                    writer.write(frame(await self._key_request(message)))
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def _key_changed(self, key: ListenKey) -> None:
        data = frame(FeedKeyState(key.key, key.account, key.api_key, key.expires_ms))
        for writer in self.writers:
            writer.write(data)

    async def _key_request(self, message: FeedKeyRequest) -> FeedKeyAnswer:
        ops = self.context.listen_key_ops
        if message.op == "create":
            created = await ops.create(message.account, message.api_key)
            return FeedKeyAnswer(message.id, True, created)
        if message.op == "keepalive":
            return FeedKeyAnswer(message.id, await ops.keepalive(message.key, message.account))
        if message.op == "close":
            return FeedKeyAnswer(message.id, await ops.close(message.key, message.account))
        return FeedKeyAnswer(message.id, False)

    async def _execute(self, message: FeedCommand, writer: asyncio.StreamWriter) -> None:
        try:
            applied = await self.context.bus.submit(message.command)
            answer = FeedAnswer(message.id, applied)
        except SequencerError as exc:
            answer = FeedAnswer(message.id, None, int(exc.code), str(exc))
        if not writer.is_closing():
            writer.write(frame(answer))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()


class EdgeServices:
    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.binary: BinaryServer | None = None
        self.feed: FeedServer | None = None
        self.workers: list[asyncio.subprocess.Process | None] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._http: socket.socket | None = None
        self._ws: socket.socket | None = None

    async def start(self, core: Core, context: GatewayContext) -> None:
        settings = self.settings
        workers = settings.workers
        binary = self.binary = BinaryServer(
            core.sequencer, context.views.keys, record_origins=workers > 0,
            limits=context.limits,
        )
        core.sequencer.add_sink(binary.router)
        host, port = settings.binary
        await binary.listen_tcp(host, port)
        await binary.listen_unix(settings.data_dir / BINARY_SOCKET)
        if workers > 0:
            await self._start_workers(core, context, workers)

    async def _start_workers(self, core: Core, context: GatewayContext, count: int) -> None:
        assert self.binary is not None
        key, secret = await worker_key(core, context)
        feed = self.feed = FeedServer(context, self.binary)
        core.sequencer.add_sink(feed)
        await feed.listen(self.settings.data_dir / FEED_SOCKET)
        sock = self._http = shared_listener(self.settings.public_http or self.settings.http)
        ws = self._ws = shared_listener(self.settings.public_ws or self.settings.ws)
        env = {
            **os.environ,
            "CROSSBOOK_WORKER_KEY": key,
            "CROSSBOOK_WORKER_SECRET": secret,
            "CROSSBOOK_WORKER_FD": str(sock.fileno()),
            "CROSSBOOK_WORKER_WS_FD": str(ws.fileno()),
            "CROSSBOOK_DATA_DIR": str(self.settings.data_dir),
            "CROSSBOOK_WORKER_LIMITS": msgspec.json.encode(self.settings.config.limits).decode(),
            "CROSSBOOK_WORKER_HISTORY": history_target(
                self.settings.history, self.settings.data_dir
            ) or "",
        }
        self.workers = [None] * count
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(env, (sock.fileno(), ws.fileno()))
        )

    async def _spawn(
        self, env: dict[str, str], fds: tuple[int, ...], index: int
    ) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crossbook.worker", env={**env, "CROSSBOOK_WORKER": str(index)},
            pass_fds=fds,
        )
        log.info("worker started", extra={"fields": {"worker": index, "pid": process.pid}})
        return process

    async def _supervise(self, env: dict[str, str], fds: tuple[int, ...]) -> None:
        while not self._stopping:
            for index, process in enumerate(self.workers):
                if process is None or process.returncode is not None:
                    if process is not None:
                        log.warning("worker exited, starting it again", extra={"fields": {
                            "worker": index, "code": process.returncode}})
                    self.workers[index] = await self._spawn(env, fds, index)
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        running = [p for p in self.workers if p is not None and p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        for sock in (self._http, self._ws):
            if sock is not None:
                sock.close()
        if self.feed is not None:
            await self.feed.close()
        if self.binary is not None:
            await self.binary.close()


def shared_listener(address: tuple[str, int]) -> socket.socket:
    """A listening TCP socket the workers inherit (the kernel spreads connections over them)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


async def worker_key(core: Core, context: GatewayContext) -> tuple[str, str]:
    """The privileged key gateway workers log in with; created (journaled) on first use."""
    for record in context.views.keys.values():
        if record.label == WORKER_KEY_LABEL and record.permissions & Permission.ADMIN:
            return record.key, record.secret.decode()
    key, secret = new_key_pair()
    await core.sequencer.submit(cmd.CreateApiKey(key, secret, AccountId(0), ALL, WORKER_KEY_LABEL))
    return key, secret
