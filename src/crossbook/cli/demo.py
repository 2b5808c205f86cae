"""`crossbook demo`: a real node with instruments, funded accounts and bots trading.

It starts `crossbook serve` as a child process on a data directory (a fresh temporary one
unless `--data-dir` is given; a temporary one is removed on exit), with three instruments
(BTC-USDT, ETH-USDT, SOL-USDT) and rate limits off. Through the SDK it then creates and
funds accounts, prints their API keys and writes one client config per account under
`DATA_DIR/clients/` (for `crossbook trade|watch|tui --client-config FILE`), and runs market
makers and takers (`crossbook.cli.demo_bots`) so that books, trades and candles move.

Account 1 ("you") is left to the human: its key trades from the TUI. Accounts 10.. are the
bots. `--bots 0` starts a quiet market; `--duration S` stops after S seconds (else Ctrl-C).
Stopping sends SIGTERM to the node, which drains and closes its journal; the node's log is
`DATA_DIR/node.log`. On a reused data directory the admin key saved in
`DATA_DIR/demo-admin.json` is used again and existing accounts are kept.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossbook.cli.serve import _address
from crossbook.config import DEFAULT_TOML

if TYPE_CHECKING:
    from crossbook.cli.demo_bots import Market
    from crossbook.client import AsyncClient

DEMO_TOML = DEFAULT_TOML + """
[[assets]]
code = "SOL"
precision = 8

[[instruments]]
symbol = "SOL-USDT"
base = "SOL"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.01"
min_notional = "1"

[fees]
maker_fee_bps = 1
taker_fee_bps = 5

[limits]
key_weight_per_minute = 0
key_orders_per_10s = 0
key_orders_per_day = 0
ip_weight_per_minute = 0
"""
MARKETS = (  # symbol, mid, tick, lot, typical quote size
    ("BTC-USDT", "60000", "0.01", "0.00001", "0.02"),
    ("ETH-USDT", "3000", "0.01", "0.0001", "0.3"),
    ("SOL-USDT", "150", "0.01", "0.01", "5"),
)
FUNDS = {"USDT": "10000000", "BTC": "200", "ETH": "4000", "SOL": "100000"}
YOU = 1
ADMIN_FILE = "demo-admin.json"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo", help="start a node with demo instruments, funded accounts and trading bots",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-dir", type=Path, help="keep the node's data here "
                        "(default: a temporary directory removed on exit)")
    parser.add_argument("--http", type=_address, default=_address("127.0.0.1:8000"),
                        help="REST listen address (default 127.0.0.1:8000)")
    parser.add_argument("--ws", type=_address, default=_address("127.0.0.1:8001"),
                        help="WebSocket listen address (default 127.0.0.1:8001)")
    parser.add_argument("--binary", type=_address, default=_address("127.0.0.1:9000"),
                        help="binary protocol listen address (default 127.0.0.1:9000)")
    parser.add_argument("--durability", choices=("fsync", "os", "none"), default="fsync")
    parser.add_argument("--bots", type=int, default=2,
                        help="takers (one market maker per instrument when > 0; default 2)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (default: until Ctrl-C)")
    parser.set_defaults(func=run)


def _admin_credentials(data_dir: Path) -> tuple[str, str]:
    path = data_dir / ADMIN_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        return str(saved["key"]), str(saved["secret"])
    key, secret = "demo-admin-" + secrets.token_hex(8), secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"key": key, "secret": secret}, out)
    return key, secret


def _start_node(args: argparse.Namespace, data_dir: Path, key: str,
                secret: str) -> subprocess.Popen[bytes]:
    config = data_dir.parent / f"{data_dir.name}-demo.toml"
    config.write_text(DEMO_TOML)
    command = [sys.executable, "-c", "import sys; from crossbook.cli import main; "
               "sys.exit(main())", "serve", "--data-dir", str(data_dir), "--config",
               str(config), "--durability", args.durability,
               "--http", "{}:{}".format(*args.http), "--ws", "{}:{}".format(*args.ws),
               "--binary", "{}:{}".format(*args.binary)]
    env = {**os.environ, "CROSSBOOK_ADMIN_KEY": key, "CROSSBOOK_ADMIN_SECRET": secret}
    with (data_dir / "node.log").open("ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path,
                timeout: float = 30.0) -> None:
    from crossbook.client import Client, CrossbookError  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    with Client(url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"crossbook demo: the node exited:\n{log.read_text()[-3000:]}")
            try:
                if client.ready().ready:
                    return
            except CrossbookError:
                pass
            time.sleep(0.1)
    raise SystemExit(f"crossbook demo: the node is not ready after {timeout} s; see {log}")


def _client_file(path: Path, url: str, ws_url: str, key: str, secret: str) -> None:
    path.write_text(f'url = "{url}"\nws_url = "{ws_url}"\napi_key = "{key}"\n'
                    f'secret = "{secret}"\n')
    path.chmod(0o600)


async def _account(admin: AsyncClient, account: int, label: str) -> tuple[str, str]:
    known = {a.account for a in await admin.list_accounts()}
    if account not in known:
        await admin.create_account(account)
        for asset, amount in FUNDS.items():
            await admin.deposit(account, asset, amount, f"demo-{account}-{asset}")
    created = await admin.create_api_key(account, ["read", "trade"], label)
    assert created.secret is not None
    return created.key, created.secret


async def _setup(url: str, ws_url: str, data_dir: Path, key: str, secret: str,
                 bots: int) -> list[tuple[str, int, str, str]]:
    clients = data_dir / "clients"
    clients.mkdir(exist_ok=True)
    _client_file(clients / "admin.toml", url, ws_url, key, secret)
    people = [("you", YOU)]
    if bots > 0:
        people += [(f"maker-{m[0].split('-')[0].lower()}", 10 + i)
                   for i, m in enumerate(MARKETS)]
        people += [(f"taker-{i + 1}", 20 + i) for i in range(bots)]
    from crossbook.client import AsyncClient  # noqa: PLC0415

    out = []
    async with AsyncClient(url, api_key=key, secret=secret) as admin:
        for name, account in people:
            api_key, api_secret = await _account(admin, account, name)
            _client_file(clients / f"{name}.toml", url, ws_url, api_key, api_secret)
            out.append((name, account, api_key, api_secret))
    return out


def _banner(url: str, ws_url: str, data_dir: Path, people: list[tuple[str, int, str, str]],
            key: str, secret: str) -> str:
    lines = ["", "crossbook demo is running", f"  REST       {url}/v1  (docs: {url}/openapi.json)",
             f"  WebSocket  {ws_url}", f"  data dir   {data_dir}  (node log: node.log)",
             f"  admin      key={key} secret={secret}", "", "API keys (read, trade):"]
    lines += [f"  {name:<11} account {account:<3} key={k} secret={s}"
              for name, account, k, s in people]
    you = data_dir / "clients" / "you.toml"
    script = Path(sys.executable).with_name("crossbook")
    cb = str(script) if script.exists() else "crossbook"
    lines += ["", "Try, in another terminal:",
              f"  {cb} tui --client-config {you}",
              f"  {cb} trade balances --client-config {you}",
              f"  {cb} watch book BTC-USDT --client-config {you}",
              "", "Ctrl-C stops the demo.", ""]
    return "\n".join(lines)


def _markets() -> list[Market]:
    from crossbook.cli.demo_bots import Market  # noqa: PLC0415

    return [Market(symbol, *(Decimal(v) for v in values)) for symbol, *values in MARKETS]


async def _trade(url: str, people: list[tuple[str, int, str, str]], duration: float) -> None:
    from crossbook.cli.demo_bots import MarketMaker, Taker  # noqa: PLC0415
    from crossbook.client import AsyncClient  # noqa: PLC0415

    markets = _markets()
    clients: list[AsyncClient] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for name, _, key, secret in people:
            if name == "you":
                continue
            client = AsyncClient(url, api_key=key, secret=secret)
            clients.append(client)
            if name.startswith("maker-"):
                market = next(m for m in markets if m.symbol.lower().startswith(name[6:]))
                bot: MarketMaker | Taker = MarketMaker(client, market)
            else:
                bot = Taker(client, markets)
            tasks.append(asyncio.create_task(bot.run()))
        if duration > 0:
            await asyncio.sleep(duration)
        else:
            await asyncio.Event().wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.aclose()


def _stop(process: subprocess.Popen[bytes], interrupted: bool) -> int:
    """Stop the node: after Ctrl-C it got SIGINT too (same process group), so give it a
    moment to stop by itself; then SIGTERM, which it handles as a clean stop."""
    if interrupted:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(5)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def run(args: argparse.Namespace) -> int:
    from crossbook.client import TransportError  # noqa: PLC0415

    # Ctrl-C (SIGINT) is how the demo stops, even when started from a shell that made
    # background jobs ignore it (a process inherits an ignored SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    temporary = args.data_dir is None
    base = Path(tempfile.mkdtemp(prefix="crossbook-demo-")) if temporary else None
    data_dir: Path = (base / "data") if base is not None else args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    key, secret = _admin_credentials(data_dir)
    url = "http://{}:{}".format(*args.http)
    ws_url = "ws://{}:{}/v1/ws".format(*args.ws)
    process = _start_node(args, data_dir, key, secret)
    code = node_code = 0
    interrupted = False
    try:
        _wait_ready(url, process, data_dir / "node.log")
        people = asyncio.run(_setup(url, ws_url, data_dir, key, secret, args.bots))
        print(_banner(url, ws_url, data_dir, people, key, secret), flush=True)
        asyncio.run(_trade(url, people, args.duration))
    except KeyboardInterrupt:
        interrupted = True
        print("\nstopping the demo ...", flush=True)
    except TransportError as exc:
        print(f"crossbook demo: lost the node: {exc}", file=sys.stderr)
        code = 1
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            node_code = _stop(process, interrupted)
        clean = node_code in (0, -signal.SIGINT, -signal.SIGTERM)
        print("node stopped cleanly" if clean else f"node stopped with exit code {node_code}",
              flush=True)
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
    return code
