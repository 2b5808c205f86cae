"""The composition root: the only module that knows every adapter.

`run_node(settings)` recovers the data directory (`open_core`), applies the configuration
(assets and instruments the journal lacks, the admin key on first start), seeds the
gateway's durable views and the market data views from the recovered engine, wires the
sinks (views, market data, metrics, the history projector), builds the gateway app (native
`/v1`, operations, and the Binance dialect when its module is present) and serves it with
`gateway.server.HttpServer` on the same event loop as the sequencer, until SIGINT or
SIGTERM; then it drains the inbox and closes the journal.

History: `--history URL` (default: `history.sqlite3` in the data dir; `postgresql://...`;
`off` to run without) gets a projector registered as a sink after the views. The projector
runs in a child process fed over a pipe (`history.process`), so building rows never takes
the interpreter lock from the sequencer. It catches up from the journal on start, shows its
lag and health in `/ready` (advisory: it never makes the node unready) and `/metrics`,
serves reads past memory through `context.history`, and is flushed (bounded) and closed
after the journal on stop.

Reads: the gateway serves only sink-fed views (durable state); the engine is read here once,
at start, when it is exactly the recovered durable state and no batch is in flight.

Admin bootstrap: when the journal holds no live admin key, `CROSSBOOK_ADMIN_KEY` and
`CROSSBOOK_ADMIN_SECRET` become one if both are set; otherwise a key is generated, printed
once and written to `DATA_DIR/admin-key.json` with mode 0600.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossbook import __version__
from crossbook.cluster import EdgeServices
from crossbook.config import NodeConfig
from crossbook.domain import commands as cmd
from crossbook.domain.enums import Permission
from crossbook.domain.values import AccountId
from crossbook.engine.exchange import Exchange
from crossbook.gateway import native, ops
from crossbook.gateway.app import GatewayApp, Registrar, build_app
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.history import HistoryMonitor, HistoryReader
from crossbook.gateway.limits import LimitConfig, RateLimiter
from crossbook.gateway.metrics import LatencyTrace, LoopDelayProbe, Metrics
from crossbook.gateway.native.admin import new_key_pair
from crossbook.gateway.views import GatewayViews, OrderRecord
from crossbook.gateway.ws import Limits, WebSocketGateway
from crossbook.gc_policy import tune_gc, use_thresholds, watch_pauses
from crossbook.history import history_target
from crossbook.history.process import ProjectorProcess
from crossbook.journal.core import Core, open_core
from crossbook.journal.file import Durability
from crossbook.marketdata.views import MarketData
from crossbook.sequencer.loop import SequencerConfig
from crossbook.sequencer.ports import Applied

log = logging.getLogger("crossbook.node")

ADMIN_KEY_FILE = "admin-key.json"
ALL = int(Permission.READ | Permission.TRADE | Permission.ADMIN)


@dataclass(slots=True)
class NodeSettings:
    data_dir: Path
    config: NodeConfig
    http: tuple[str, int] = ("127.0.0.1", 8000)
    ws: tuple[str, int] = ("127.0.0.1", 8001)
    binary: tuple[str, int] = ("127.0.0.1", 9000)
    durability: Durability = Durability.FSYNC
    history: str | None = None
    workers: int = 0
    """Gateway worker processes serving `public_http` and `public_ws` (`crossbook.cluster`);
    0: none."""
    public_http: tuple[str, int] | None = None
    public_ws: tuple[str, int] | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


class _MetricsSink:
    """Batch sizes and group-commit latency from the sequencer's samples, per batch."""

    def __init__(self, core: Core, metrics: Metrics) -> None:
        self.stats = core.sequencer.stats
        self.metrics = metrics

    def on_batch(self, batch: Sequence[Applied]) -> None:
        stats, metrics = self.stats, self.metrics
        for size in stats.batch_sizes:
            metrics.batch_size.observe(size)
        for nanos in stats.commit_ns:
            metrics.observe_ns("journal_sync", nanos)
        if metrics.trace is not None:
            now = time.perf_counter_ns()
            metrics.trace.batches.extend(
                (now, nanos, size)
                for nanos, size in zip(stats.commit_ns, stats.batch_sizes, strict=True)
            )
            metrics.trace.turns += stats.turns
            stats.turns.clear()
        stats.batch_sizes.clear()
        stats.commit_ns.clear()


def seed_views(engine: Exchange, views: GatewayViews, market: MarketData) -> None:
    for asset in engine.assets():
        views.seed_asset(asset)
    for inst in engine.instruments():
        views.seed_instrument(inst, engine.is_halted(inst.symbol))
        bids, asks = engine.depth(inst.symbol, limit=1 << 30)
        # the book's update counter is engine state with no query of its own
        market.restore_book(inst.symbol, engine.books[inst.symbol].update_id, bids, asks)
    for account in engine.accounts():
        views.seed_account(account, engine.fees(account) or (0, 0), engine.balances(account))
        for o in engine.open_orders(account):
            views.seed_order(OrderRecord(
                o.order_id, o.account, o.symbol, o.side, o.type, o.tif, o.qty, o.price,
                o.quote_qty, o.stop_price, o.expire_ts, o.post_only, o.visible_qty, o.stp,
                o.client_order_id, o.filled, o.status, o.working,
            ))
    for key in engine.api_keys():
        if not key.revoked:
            views.seed_key(key.key, key.secret, key.account, key.permissions, key.label)


async def apply_config(core: Core, config: NodeConfig) -> None:
    engine = core.engine
    have_assets = {a.code for a in engine.assets()}
    have_symbols = {i.symbol for i in engine.instruments()}
    for asset in config.domain_assets():
        if asset.code not in have_assets:
            await core.sequencer.submit(cmd.AddAsset(asset))
    for inst in config.domain_instruments():
        if inst.symbol not in have_symbols:
            await core.sequencer.submit(cmd.AddInstrument(inst))


async def bootstrap_admin(core: Core, data_dir: Path, env: dict[str, str]) -> None:
    if any(k.permissions & Permission.ADMIN and not k.revoked for k in core.engine.api_keys()):
        return
    key, secret = env.get("CROSSBOOK_ADMIN_KEY"), env.get("CROSSBOOK_ADMIN_SECRET")
    generated = not (key and secret)
    if generated:
        key, secret = new_key_pair()
    assert key is not None
    assert secret is not None
    applied = await core.sequencer.submit(
        cmd.CreateApiKey(key, secret, AccountId(0), ALL, "admin")
    )
    if not any(type(e).__name__ == "ApiKeyCreated" for e in applied.events):
        raise SystemExit(f"admin key refused: {applied.events}")
    if generated:
        path = data_dir / ADMIN_KEY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"key": key, "secret": secret}, out)
        print(f"admin API key (shown once, also in {path}): key={key} secret={secret}",
              flush=True)


def open_history(settings: NodeSettings) -> ProjectorProcess | None:
    """The history projector for `settings.history` (not started), or None when off."""
    target = history_target(settings.history, settings.data_dir)
    return None if target is None else ProjectorProcess(target, settings.data_dir)


def history_label(settings: NodeSettings) -> str:
    """Where history goes, without credentials: `sqlite` or `postgresql://host:port/db`."""
    target = settings.history or ""
    if "://" not in target:
        return "sqlite"
    scheme, rest = target.split("://", 1)
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


DIALECTS = ("crossbook.gateway.binance",)
"""Optional route modules: each, when present, exposes `register(router, context)`."""


def registrars() -> list[Registrar]:
    found: list[Registrar] = [native.register, ops.register]
    for name in DIALECTS:
        if importlib.util.find_spec(name) is None:
            continue
        register = getattr(importlib.import_module(name), "register", None)
        if register is not None:
            found.append(register)
    return found


TRACE_ENV = "CROSSBOOK_LATENCY_TRACE"  # the same name as history.process.TRACE_ENV
"""A file name: the node keeps a `LatencyTrace` and writes it there when it stops (its
history process writes the times of its database writes beside it, `FILE.history`)."""


async def start_gateway(
    core: Core, settings: NodeSettings, websocket: WebSocketGateway | None = None,
    history: ProjectorProcess | None = None,
) -> GatewayApp:
    config = settings.config
    await apply_config(core, config)
    await bootstrap_admin(core, settings.data_dir, settings.env)
    views, market, metrics = GatewayViews(), MarketData(), Metrics()
    seed_views(core.engine, views, market)
    views.seed_position(core.sequencer.last_seq, 0)
    sequencer = core.sequencer
    sequencer.add_sink(views)
    # with WebSocket streams, the fan-out folds the market data views and then publishes
    sequencer.add_sink(market if websocket is None else websocket.folding(market, views))
    sequencer.add_sink(_MetricsSink(core, metrics))
    if history is not None:  # queued from now on; everything before comes from the journal
        sequencer.add_sink(history)
        history.head_seq = max(history.head_seq, sequencer.last_seq)
        await history.start()
    metrics.inbox_depth = lambda: sequencer.inbox_depth
    metrics.healthy = lambda: sequencer.healthy
    limits = RateLimiter(LimitConfig(**{
        name: getattr(config.limits, name) for name in LimitConfig.__dataclass_fields__
    }), lambda: time.time_ns() // 1_000_000)
    context = GatewayContext(
        bus=sequencer, views=views, market=market, limits=limits, metrics=metrics,
        info={"version": __version__, "durability": str(settings.durability)},
    )
    if history is not None:
        monitor = HistoryMonitor(history.status, history_label(settings))
        context.history = HistoryReader(history.store)
        context.checks["history"] = monitor.check
        context.advisory.add("history")
        metrics.registry.register(monitor)
    if websocket is None:
        return build_app(context, registrars())
    websocket.bind(context)
    return build_app(context, [*registrars(), websocket.register])


async def run_node(settings: NodeSettings) -> int:
    from crossbook.gateway.server import HttpServer  # noqa: PLC0415 (only when serving)

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    use_thresholds()  # recovery replays with the serving policy too
    seq_config = settings.config.sequencer
    trace_path = settings.env.get(TRACE_ENV)
    core = await open_core(
        settings.data_dir, durability=settings.durability,
        config=SequencerConfig(
            inbox_size=seq_config.inbox_size, max_batch=seq_config.max_batch,
            record_samples=True, record_turns=bool(trace_path),
        ),
    )
    probe: LoopDelayProbe | None = None
    unwatch_gc: Callable[[], None] | None = None
    trace = LatencyTrace() if trace_path else None
    history = open_history(settings)
    edge = EdgeServices(settings)
    websocket = WebSocketGateway(settings.ws, Limits.from_env(settings.env))
    try:
        log.info("recovered", extra={"fields": {
            "last_seq": core.recovery.last_seq, "replayed": core.recovery.replayed,
            "snapshot_seq": core.recovery.snapshot_seq, "durability": str(core.durability),
        }})
        app = await start_gateway(core, settings, websocket, history)
        tune_gc()
        await websocket.start()
        await edge.start(core, app.context)
        metrics = app.context.metrics
        metrics.trace = trace
        probe, unwatch_gc = LoopDelayProbe(metrics), watch_pauses(metrics.gc_paused)
        host, port = settings.http
        server = HttpServer(app.handle, app.context.metrics, host, port)  # see docs/adr/0001
        log.info("serving", extra={"fields": {
            "http": f"http://{host}:{port}", "durability": str(settings.durability),
            "data_dir": str(settings.data_dir),
        }})
        await server.serve()
    finally:
        if probe is not None:
            probe.close()
        if unwatch_gc is not None:
            unwatch_gc()
        await edge.close()
        await websocket.close()
        await core.close()
        if history is not None:
            await history.stop()
        if trace is not None and trace_path:
            trace.dump(Path(trace_path))
    log.info("stopped", extra={"fields": {"last_seq": core.sequencer.last_seq}})
    return 0


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # picows logs every WebSocket connect and disconnect at INFO: an access log, which the
    # node does not keep by default (and formatting it cost ~4% of a 1,000-client connect storm).
    logging.getLogger("picows").setLevel(max(logging.WARNING, root.level))
