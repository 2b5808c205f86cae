"""What the client subcommands (admin, trade, watch, tui) share: connection settings and output.

Connection settings come, first match wins, from flags, `CROSSBOOK_*` environment
variables, a TOML file, then defaults:

| flag        | environment             | file key  | default                      |
|-------------|-------------------------|-----------|------------------------------|
| `--url`     | `CROSSBOOK_URL`         | `url`     | `http://127.0.0.1:8000`      |
| `--ws-url`  | `CROSSBOOK_WS_URL`      | `ws_url`  | `ws://127.0.0.1:8001/v1/ws`  |
| `--key`     | `CROSSBOOK_API_KEY`     | `api_key` |                              |
| `--secret`  | `CROSSBOOK_API_SECRET`  | `secret`  |                              |

The file is `--client-config FILE` or `CROSSBOOK_CLIENT_CONFIG`; `crossbook demo` writes one
per demo account. Output is a plain table, or JSON with `--json`. A server error prints its
code and message on stderr and exits 1; an unreachable node exits 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from crossbook.client import Client

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_WS_URL = "ws://127.0.0.1:8001/v1/ws"


@dataclass(frozen=True, slots=True)
class Connection:
    url: str
    ws_url: str
    api_key: str | None
    secret: str | None

    def client(self) -> Client:
        from crossbook.client import Client  # noqa: PLC0415 (keep `crossbook --help` fast)

        return Client(self.url, api_key=self.api_key, secret=self.secret)


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (flag, then CROSSBOOK_* env, then file)")
    group.add_argument("--url", help=f"REST base URL (CROSSBOOK_URL; default {DEFAULT_URL})")
    group.add_argument("--ws-url", help="WebSocket URL (CROSSBOOK_WS_URL; default "
                       f"{DEFAULT_WS_URL})")
    group.add_argument("--key", help="API key (CROSSBOOK_API_KEY)")
    group.add_argument("--secret", help="API secret (CROSSBOOK_API_SECRET)")
    group.add_argument("--client-config", type=Path, metavar="FILE",
                       help="TOML with url, ws_url, api_key, secret (CROSSBOOK_CLIENT_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def connection(args: argparse.Namespace, env: dict[str, str] | None = None) -> Connection:
    environ = dict(os.environ) if env is None else env
    path = args.client_config or (
        Path(environ["CROSSBOOK_CLIENT_CONFIG"]) if environ.get("CROSSBOOK_CLIENT_CONFIG")
        else None
    )
    file: dict[str, Any] = {}
    if path is not None:
        try:
            file = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SystemExit(f"crossbook: cannot read client config {path}: {exc}") from None

    def pick(flag: str | None, env_name: str, key: str, default: str | None) -> str | None:
        for value in (flag, environ.get(env_name), file.get(key)):
            if value:
                return str(value)
        return default

    return Connection(
        url=pick(args.url, "CROSSBOOK_URL", "url", DEFAULT_URL) or DEFAULT_URL,
        ws_url=pick(args.ws_url, "CROSSBOOK_WS_URL", "ws_url", DEFAULT_WS_URL) or DEFAULT_WS_URL,
        api_key=pick(args.key, "CROSSBOOK_API_KEY", "api_key", None),
        secret=pick(args.secret, "CROSSBOOK_API_SECRET", "secret", None),
    )


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def emit(args: argparse.Namespace, value: Any, columns: Sequence[str] | None = None) -> None:
    data = to_builtins(value)
    if getattr(args, "json", False):
        print(msgspec.json.format(msgspec.json.encode(data), indent=2).decode())
        return
    rows = data if isinstance(data, list) else [data]
    if columns is None:
        columns = list(rows[0]) if rows else []
    print(table(rows, columns))


def guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command; SDK errors become a message on stderr and an exit code."""

    def run(args: argparse.Namespace) -> int:
        from crossbook.client import CrossbookError, TransportError  # noqa: PLC0415
        from crossbook.client.errors import ApiError  # noqa: PLC0415

        try:
            return func(args)
        except TransportError as exc:
            print(f"crossbook: cannot reach the node: {exc}", file=sys.stderr)
            return 3
        except ApiError as exc:
            print(f"crossbook: {exc}", file=sys.stderr)
            return 1
        except CrossbookError as exc:
            print(f"crossbook: {exc}", file=sys.stderr)
            return 1

    return run
