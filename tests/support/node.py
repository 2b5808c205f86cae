"""A crossbook node started as a user would: `crossbook serve` in a subprocess.

`NodeProcess(data_dir, config_text)` picks free ports, sets a known admin key through
`CROSSBOOK_ADMIN_KEY`/`CROSSBOOK_ADMIN_SECRET`, starts the node, and waits until `/ready`
answers 200. `signed(...)` sends natively signed requests; `stop()` sends SIGTERM and waits
(a clean stop); `restart()` starts again on the same data directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from crossbook.gateway.auth import sign

ADMIN_KEY = "test-admin-key-0123456789"
ADMIN_SECRET = "test-admin-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NodeProcess:
    def __init__(self, data_dir: Path, config_text: str | None = None) -> None:
        self.data_dir = data_dir
        self.config_path: Path | None = None
        if config_text is not None:
            self.config_path = data_dir.parent / f"{data_dir.name}.toml"
            self.config_path.write_text(config_text)
        self.port = free_port()
        self.ws_port = free_port()
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.start_env: dict[str, str] = {
            "CROSSBOOK_ADMIN_KEY": ADMIN_KEY, "CROSSBOOK_ADMIN_SECRET": ADMIN_SECRET,
        }

    def start(self, timeout: float = 20.0) -> None:
        script = Path(sys.executable).with_name("crossbook")
        command = [str(script)] if script.exists() else [
            sys.executable, "-c", "import sys; from crossbook.cli import main; sys.exit(main())"]
        args = [
            *command, "serve", "--data-dir", str(self.data_dir),
            "--http", f"127.0.0.1:{self.port}", "--ws", f"127.0.0.1:{self.ws_port}",
            "--binary", f"127.0.0.1:{free_port()}",
        ]
        if self.config_path is not None:
            args += ["--config", str(self.config_path)]
        env = {**os.environ, **self.start_env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited: {self.log_path.read_text()}")
            try:
                if self.http.get("/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"node not ready: {self.log_path.read_text()}")

    def stop(self) -> int:
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(20)
        self.process = None
        return code

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.http.close()

    def signed(
        self, method: str, path: str, body: Any = None, *, key: str = ADMIN_KEY,
        secret: str = ADMIN_SECRET, timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        ts = timestamp if timestamp is not None else time.time_ns() // 1_000_000
        all_headers = {
            "X-CB-APIKEY": key, "X-CB-TIMESTAMP": str(ts),
            "X-CB-SIGNATURE": sign(secret, ts, method, path, raw),
            "Content-Type": "application/json", **(headers or {}),
        }
        return self.http.request(method, path, content=raw, headers=all_headers)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = self.signed(method, path, body)
        assert response.status_code < 300, response.text
        return response.json()

    def trader(
        self, account: int, deposits: dict[str, str], permissions: tuple[str, ...] = (
            "read", "trade")
    ) -> tuple[str, str]:
        """Create (if needed) and fund an account; return a new key and secret for it."""
        self.signed("POST", "/v1/admin/accounts", {"account": account})
        for asset, amount in deposits.items():
            self.admin("POST", "/v1/admin/deposits", {
                "account": account, "asset": asset, "amount": amount,
                "tx_id": f"fund-{account}-{asset}-{time.monotonic_ns()}",
            })
        created = self.admin("POST", "/v1/admin/api-keys", {
            "account": account, "permissions": list(permissions),
        })
        return created["key"], created["secret"]
