"""Signing, permissions, rate limits, admin endpoints and operations endpoints."""

from __future__ import annotations

import time

from tests.support.node import ADMIN_KEY, ADMIN_SECRET, NodeProcess

ORDER = {"symbol": "BTC-USDT", "type": "limit", "side": "buy", "quantity": "0.001",
         "price": "10000"}


def test_signature_checks(node: NodeProcess) -> None:
    def status(**kwargs: object) -> tuple[int, int]:
        response = node.signed("GET", "/v1/admin/accounts", **kwargs)  # type: ignore[arg-type]
        code = 0 if response.status_code == 200 else response.json()["code"]
        return response.status_code, code

    assert status() == (200, 0)
    assert status(secret="wrong-secret-0000000000") == (401, 10004)
    assert status(key="no-such-key-0000000000") == (401, 10004)
    assert status(timestamp=int(time.time() * 1000) - 10_000) == (401, 10004)
    assert status(timestamp=int(time.time() * 1000) + 10_000) == (401, 10004)
    long_window = {"X-CB-RECV-WINDOW": "30000"}
    assert status(timestamp=int(time.time() * 1000) - 10_000, headers=long_window) == (200, 0)
    assert status(headers={"X-CB-RECV-WINDOW": "70000"}) == (401, 10004)
    assert node.http.get("/v1/admin/accounts").status_code == 401
    # the query string is signed: changing it after signing fails
    response = node.signed("GET", "/v1/orders?symbol=BTC-USDT")
    assert response.status_code == 200
    tampered = node.http.get("/v1/orders?symbol=ETH-USDT", headers={
        k: v for k, v in response.request.headers.items() if k.lower().startswith("x-cb-")})
    assert tampered.status_code == 401


def test_permissions_and_revocation(node: NodeProcess) -> None:
    read_key, read_secret = node.trader(300, {"USDT": "1000"}, ("read",))
    denied = node.signed("POST", "/v1/orders", ORDER, key=read_key, secret=read_secret)
    assert (denied.status_code, denied.json()["code"]) == (403, 10005)
    assert node.signed("GET", "/v1/balances", key=read_key, secret=read_secret).status_code == 200
    trade_key, trade_secret = node.trader(300, {}, ("read", "trade"))
    admin_try = node.signed("GET", "/v1/admin/api-keys", key=trade_key, secret=trade_secret)
    assert admin_try.status_code == 403
    keys = node.admin("GET", "/v1/admin/api-keys")
    assert {"key": trade_key, "account": 300, "permissions": ["read", "trade"], "label": "",
            "secret": None} in keys
    node.admin("DELETE", f"/v1/admin/api-keys/{trade_key}")
    gone = node.signed("GET", "/v1/balances", key=trade_key, secret=trade_secret)
    assert gone.status_code == 401
    again = node.signed("DELETE", f"/v1/admin/api-keys/{trade_key}")
    assert again.status_code == 404
    bad = node.signed("POST", "/v1/admin/api-keys", {"account": 999, "permissions": ["read"]})
    assert (bad.status_code, bad.json()["code"]) == (400, 1002)


def test_order_rate_limit_answers_429_with_retry_after(node: NodeProcess) -> None:
    key, secret = node.trader(301, {"USDT": "100000"})
    statuses = []
    for _ in range(45):
        response = node.signed("POST", "/v1/orders", ORDER, key=key, secret=secret)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses.count(201) == 40
    assert statuses[-1] == 429
    assert 1 <= int(response.headers["retry-after"]) <= 10
    assert response.json()["code"] == 10007
    # reads are weighed, not counted as orders
    assert node.signed("GET", "/v1/orders", key=key, secret=secret).status_code == 200


def test_admin_accounts_transfers_assets_instruments(node: NodeProcess) -> None:
    node.admin("POST", "/v1/admin/accounts", {"account": 400, "taker_fee_bps": 10})
    dup = node.signed("POST", "/v1/admin/accounts", {"account": 400})
    assert (dup.status_code, dup.json()["code"]) == (409, 4001)
    fees = node.admin("PUT", "/v1/admin/accounts/400/fees",
                      {"maker_fee_bps": 1, "taker_fee_bps": 5})
    assert fees == {"account": 400, "maker_fee_bps": 1, "taker_fee_bps": 5}
    done = node.admin("POST", "/v1/admin/deposits",
                      {"account": 400, "asset": "USDT", "amount": "12.5", "tx_id": "d-400"})
    assert done["balance"]["free"] == "12.50000000"
    twice = node.signed("POST", "/v1/admin/deposits",
                        {"account": 400, "asset": "USDT", "amount": "1", "tx_id": "d-400"})
    assert twice.status_code == 409
    too_much = node.signed("POST", "/v1/admin/withdrawals",
                           {"account": 400, "asset": "USDT", "amount": "13", "tx_id": "w-1"})
    assert (too_much.status_code, too_much.json()["code"]) == (400, 2001)
    out = node.admin("POST", "/v1/admin/withdrawals",
                     {"account": 400, "asset": "USDT", "amount": "2.5", "tx_id": "w-2"})
    assert out["balance"]["free"] == "10.00000000"
    node.admin("POST", "/v1/admin/assets", {"code": "SOL", "precision": 6})
    inst = node.admin("POST", "/v1/admin/instruments", {
        "symbol": "SOL-USDT", "base": "SOL", "quote": "USDT", "tick_size": "0.001",
        "lot_size": "0.01"})
    assert inst["status"] == "trading"
    symbols = [i["symbol"] for i in node.http.get("/v1/instruments").json()]
    assert "SOL-USDT" in symbols
    bad = node.signed("POST", "/v1/admin/instruments", {
        "symbol": "X-USDT", "base": "SOL", "quote": "USDT", "tick_size": "0.0000001",
        "lot_size": "0.0000001"})
    assert (bad.status_code, bad.json()["code"]) == (400, 4006)
    accounts = node.admin("GET", "/v1/admin/accounts")
    assert {"account": 400, "maker_fee_bps": 1, "taker_fee_bps": 5} in accounts


def test_operations_endpoints(node: NodeProcess) -> None:
    assert node.http.get("/health").json() == {"status": "ok"}
    ready = node.http.get("/ready").json()
    assert ready["ready"] is True
    assert set(ready["components"]) >= {"sequencer", "event_loop"}
    node.signed("POST", "/v1/orders", ORDER)  # the admin key has no account: a rejection
    metrics = node.http.get("/metrics").text
    assert 'crossbook_http_requests_total{route="GET /health",status="200"}' in metrics
    assert 'crossbook_orders_total{code="1002",outcome="rejected"}' in metrics
    assert "crossbook_stage_seconds_bucket" in metrics
    for stage in ("intake", "request"):  # the order's: from the socket read on
        count = f'crossbook_stage_seconds_count{{stage="{stage}"}} '
        assert float(metrics.split(count)[1].split()[0]) >= 1
    assert "crossbook_loop_delay_seconds_count" in metrics
    assert 'crossbook_gc_pause_seconds_count{generation="2"}' in metrics
    assert "crossbook_batch_size_count" in metrics
    assert "crossbook_inbox_depth" in metrics
    spec = node.http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "post" in spec["paths"]["/v1/orders"]
    assert "NewOrder" in spec["components"]["schemas"]
    assert "swagger" in node.http.get("/docs").text.lower()
    missing = node.http.get("/nowhere")
    assert (missing.status_code, missing.json()["code"]) == (404, 10006)
    assert node.http.put("/v1/time").status_code == 405


def test_admin_key_is_the_one_from_the_environment(node: NodeProcess) -> None:
    assert node.signed("GET", "/v1/account", key=ADMIN_KEY, secret=ADMIN_SECRET).json()[
        "permissions"] == ["read", "trade", "admin"]
    assert not (node.data_dir / "admin-key.json").exists()


def test_head_answers_like_get_without_a_body(node: NodeProcess) -> None:
    get, head = node.http.get("/health"), node.http.head("/health")
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert node.http.head("/no/such/route").status_code == 404
