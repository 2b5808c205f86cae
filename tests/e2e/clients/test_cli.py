"""The client subcommands end to end against a running node (admin, trade, watch; tables,
`--json`, config from flags, environment and file; errors as exit codes), and `crossbook
demo` as a user starts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from crossbook.cli import main
from crossbook.client import Client
from tests.support.node import ADMIN_KEY, ADMIN_SECRET, free_port


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], url: str, ws_url: str) -> None:
        self.capsys, self.url, self.ws_url = capsys, url, ws_url

    def __call__(self, *args: str, key: str = ADMIN_KEY, secret: str = ADMIN_SECRET,
                 code: int = 0) -> str:
        argv = [*args, "--url", self.url, "--ws-url", self.ws_url, "--key", key,
                "--secret", secret]
        assert main(argv) == code, self.capsys.readouterr()
        captured = self.capsys.readouterr()
        return captured.out if code == 0 else captured.err

    def json(self, *args: str, key: str = ADMIN_KEY, secret: str = ADMIN_SECRET) -> object:
        return json.loads(self(*args, "--json", key=key, secret=secret))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], url: str, ws_url: str) -> Cli:
    return Cli(capsys, url, ws_url)


def test_admin_commands(cli: Cli) -> None:
    out = cli("admin", "accounts", "create", "500", "--maker-fee-bps", "1",
              "--taker-fee-bps", "4")
    assert out.splitlines()[0].split() == ["ACCOUNT", "MAKER_FEE_BPS", "TAKER_FEE_BPS"]
    assert out.splitlines()[1].split() == ["500", "1", "4"]
    accounts = cli.json("admin", "accounts", "list")
    assert {"account": 500, "maker_fee_bps": 1, "taker_fee_bps": 4} in accounts  # type: ignore[operator]
    assert "500" in cli("admin", "fees", "500", "--maker-fee-bps", "0", "--taker-fee-bps", "2")
    assert "250.00000000" in cli("admin", "deposit", "500", "USDT", "250", "--tx-id", "d-1")
    assert "200.00000000" in cli("admin", "withdraw", "500", "USDT", "50")
    key = cli.json("admin", "keys", "create", "500", "--permissions", "read", "--label", "x")
    assert isinstance(key, dict)
    assert key["permissions"] == ["read"]
    assert key["key"] in cli("admin", "keys", "list")
    assert key["key"] in cli("admin", "keys", "revoke", key["key"])
    assert "LTC" in cli("admin", "assets", "add", "LTC", "8")
    assert "LTC" in cli("admin", "assets", "list")
    cli("admin", "instruments", "add", "LTC-USDT", "LTC", "USDT", "0.01", "0.001",
        "--min-notional", "1")
    assert "LTC-USDT" in cli("admin", "instruments", "list")
    assert "halted" in cli("admin", "halt", "LTC-USDT")
    assert "trading" in cli("admin", "resume", "LTC-USDT")
    err = cli("admin", "accounts", "create", "500", code=1)
    assert "ACCOUNT_EXISTS (4001)" in err


def test_trade_commands(cli: Cli, url: str) -> None:
    cli("admin", "accounts", "create", "501")
    cli("admin", "deposit", "501", "USDT", "100000")
    cli("admin", "deposit", "501", "BTC", "5")
    key = cli.json("admin", "keys", "create", "501")
    assert isinstance(key, dict)
    me = {"key": key["key"], "secret": key["secret"]}
    placed = cli.json("trade", "place", "BTC-USDT", "sell", "0.5", "--price", "70000",
                      "--cid", "cli-1", **me)
    assert isinstance(placed, dict)
    assert (placed["status"], placed["client_order_id"]) == ("new", "cli-1")
    table = cli("trade", "orders", "BTC-USDT", **me)
    assert "cli-1" in table
    assert "70000.00" in table
    assert "70100.00" in cli("trade", "amend", "--cid", "cli-1", "--price", "70100", **me)
    assert "0.50000" in cli("trade", "get", str(placed["order_id"]), **me)
    bought = cli("trade", "place", "BTC-USDT", "buy", "0.1", "--price", "70100", "--tif",
                 "IOC", **me)
    assert "filled" in bought
    assert "taker" in bought  # the fills table follows the order
    assert "maker" in cli("trade", "fills", "BTC-USDT", **me)
    assert "canceled" in cli("trade", "cancel", str(placed["order_id"]), **me)
    cli("trade", "place", "BTC-USDT", "buy", "0.1", "--price", "100", **me)
    assert "canceled 1 order(s)" in cli("trade", "cancel-all", "BTC-USDT", **me)
    history = cli.json("trade", "history", "BTC-USDT", **me)
    assert isinstance(history, list)
    assert len(history) == 3
    balances = cli("trade", "balances", **me)
    assert balances.splitlines()[0].split() == ["ASSET", "FREE", "LOCKED"]
    assert "read,trade" in cli("trade", "account", **me)
    err = cli("trade", "place", "BTC-USDT", "buy", "100", "--price", "70000", code=1, **me)
    assert "INSUFFICIENT_FUNDS (2001)" in err


def test_config_from_environment_and_file(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROSSBOOK_URL", url)
    monkeypatch.setenv("CROSSBOOK_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("CROSSBOOK_API_SECRET", ADMIN_SECRET)
    assert main(["admin", "accounts", "list", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)
    for name in ("CROSSBOOK_URL", "CROSSBOOK_API_KEY", "CROSSBOOK_API_SECRET"):
        monkeypatch.delenv(name)
    config = tmp_path / "client.toml"
    config.write_text(f'url = "{url}"\napi_key = "{ADMIN_KEY}"\nsecret = "wrong"\n')
    assert main(["admin", "accounts", "list", "--client-config", str(config)]) == 1
    assert "GATEWAY_UNAUTHORIZED" in capsys.readouterr().err
    monkeypatch.setenv("CROSSBOOK_API_SECRET", ADMIN_SECRET)  # the environment beats the file
    assert main(["admin", "accounts", "list", "--client-config", str(config)]) == 0
    capsys.readouterr()
    assert main(["trade", "balances", "--url", f"http://127.0.0.1:{free_port()}",
                 "--key", "k"]) == 3
    assert "cannot reach the node" in capsys.readouterr().err


def test_watch_book_and_trades(cli: Cli, url: str) -> None:
    with Client(url, api_key=ADMIN_KEY, secret=ADMIN_SECRET) as admin:
        admin.create_account(502)
        admin.deposit(502, "USDT", "100000")
        admin.deposit(502, "ETH", "100")
        key = admin.create_api_key(502)
    assert key.secret is not None

    stop = threading.Event()

    def trade() -> None:
        # A trade every half second until the watcher saw one: it may subscribe late.
        with Client(url, api_key=key.key, secret=key.secret) as c:
            for _ in range(60):
                if stop.wait(0.5):
                    return
                c.place_order("ETH-USDT", "sell", "limit", "1", "2000")
                c.place_order("ETH-USDT", "buy", "limit", "1", "2000")

    trader = threading.Thread(target=trade)
    trader.start()
    try:
        out = cli("watch", "trades", "ETH-USDT", "--count", "1", "--json")
    finally:
        stop.set()
        trader.join()
    assert json.loads(out)["price"] == "2000.00"
    book = cli("watch", "book", "ETH-USDT", "--count", "1", "--depth", "3")
    assert "ETH-USDT  update" in book


def test_help_lists_every_group(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for group in ("admin", "trade", "watch", "tui", "demo", "serve"):
        assert group in out
    with pytest.raises(SystemExit):
        main(["trade", "place", "--help"])
    assert "--post-only" in capsys.readouterr().out


def _demo(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, str]:
    http, ws = free_port(), free_port()
    command = [sys.executable, "-c", "import sys; from crossbook.cli import main; "
               "sys.exit(main())", "demo", "--http", f"127.0.0.1:{http}", "--ws",
               f"127.0.0.1:{ws}", "--binary", f"127.0.0.1:{free_port()}", "--durability",
               "os", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=dict(os.environ))
    return process, f"http://127.0.0.1:{http}", f"ws://127.0.0.1:{ws}/v1/ws"


def test_demo_starts_a_node_with_bots_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    process, url, _ = _demo(tmp_path, "--data-dir", str(data))
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C stops the demo" in line:
            break
    banner = "".join(lines)
    assert "crossbook demo is running" in banner, banner
    for name in ("you", "maker-btc", "maker-eth", "maker-sol", "taker-1", "taker-2"):
        assert f"  {name} " in banner
    you = (data / "clients" / "you.toml").read_text()
    assert url in you
    with Client(url) as public:
        assert {i.symbol for i in public.instruments()} == {"BTC-USDT", "ETH-USDT", "SOL-USDT"}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not public.trades("BTC-USDT", 5):
            time.sleep(0.2)
        assert public.trades("BTC-USDT", 5), "the bots made no trade"
        depth = public.depth("ETH-USDT", 20)
        while time.monotonic() < deadline and min(len(depth.bids), len(depth.asks)) < 5:
            time.sleep(0.2)
            depth = public.depth("ETH-USDT", 20)
        assert min(len(depth.bids), len(depth.asks)) >= 5, depth
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert "node stopped cleanly" in rest, rest
    assert process.returncode == 0
    assert (data / "node.log").exists()
