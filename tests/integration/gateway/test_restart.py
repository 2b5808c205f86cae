"""A restart recovers from the journal: keys, accounts, balances and open orders remain, and
a generated admin key is written once, with mode 0600."""

from __future__ import annotations

import json
from pathlib import Path

from crossbook.config import DEFAULT_TOML
from tests.support.node import NodeProcess


def test_restart_keeps_keys_and_orders(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data", DEFAULT_TOML)
    node.start()
    try:
        key, secret = node.trader(7, {"USDT": "100000"})
        body = {"symbol": "BTC-USDT", "order_type": "limit", "side": "buy", "quantity": "0.1",
                "price": "60000", "client_order_id": "keep-me"}
        placed = node.signed("POST", "/v1/orders", body, key=key, secret=secret).json()
        node.restart()
        again = node.signed("GET", "/v1/orders/client/keep-me", key=key, secret=secret)
        assert again.status_code == 200, again.text
        assert again.json()["order_id"] == placed["order_id"]
        assert again.json()["status"] == "new"
        balances = node.signed("GET", "/v1/balances", key=key, secret=secret).json()
        assert {"asset": "USDT", "free": "94000.00000000", "locked": "6000.00000000"} in balances
        depth = node.http.get("/v1/depth", params={"symbol": "BTC-USDT"}).json()
        assert depth["bids"] == [["60000.00", "0.10000"]]
        assert depth["last_update_id"] == 1
        canceled = node.signed("DELETE", "/v1/orders/client/keep-me", key=key, secret=secret)
        assert canceled.json()["status"] == "canceled"
    finally:
        node.close()


def test_generated_admin_key_is_written_once(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data")
    node.start_env = {"CROSSBOOK_ADMIN_KEY": "", "CROSSBOOK_ADMIN_SECRET": ""}
    node.start()
    try:
        path = node.data_dir / "admin-key.json"
        assert path.stat().st_mode & 0o777 == 0o600
        written = json.loads(path.read_text())
        response = node.signed("GET", "/v1/admin/accounts", key=written["key"],
                               secret=written["secret"])
        assert response.status_code == 200
        node.restart()
        assert json.loads(path.read_text()) == written
        response = node.signed("GET", "/v1/admin/accounts", key=written["key"],
                               secret=written["secret"])
        assert response.status_code == 200
        assert "secret=" in node.log_path.read_text()
    finally:
        node.close()
