"""`crossbook serve --data-dir DIR`: run a node (core, gateway) until interrupted.

Every flag has a `CROSSBOOK_*` environment variable (the flag wins): `--http HOST:PORT`
(`CROSSBOOK_HTTP`, default 127.0.0.1:8000), `--ws` (`CROSSBOOK_WS`, 127.0.0.1:8001),
`--binary` (`CROSSBOOK_BINARY`, 127.0.0.1:9000; also `DATA_DIR/binary.sock`), `--workers N`
(`CROSSBOOK_WORKERS`: N gateway processes serve `--http` and `--ws`), `--durability fsync|os|none`
(`CROSSBOOK_DURABILITY`), `--history URL` (`CROSSBOOK_HISTORY`), `--config FILE`
(`CROSSBOOK_CONFIG`), `--data-dir` (`CROSSBOOK_DATA_DIR`), `--log-level`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


def register(sub: Any) -> None:
    env = os.environ.get
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run a node: journal, matching engine and HTTP gateway"
    )
    parser.add_argument("--data-dir", type=Path, default=env("CROSSBOOK_DATA_DIR"),
                        required=env("CROSSBOOK_DATA_DIR") is None,
                        help="journal, snapshots and keys live here")
    parser.add_argument("--http", type=_address, default=env("CROSSBOOK_HTTP", "127.0.0.1:8000"),
                        help="REST listen address (default 127.0.0.1:8000)")
    parser.add_argument("--ws", type=_address, default=env("CROSSBOOK_WS", "127.0.0.1:8001"),
                        help="WebSocket listen address (default 127.0.0.1:8001)")
    parser.add_argument("--binary", type=_address,
                        default=env("CROSSBOOK_BINARY", "127.0.0.1:9000"),
                        help="binary protocol listen address (default 127.0.0.1:9000)")
    parser.add_argument("--durability", choices=("fsync", "os", "none"),
                        default=env("CROSSBOOK_DURABILITY", "fsync"),
                        help="fsync (default): acknowledged means on disk")
    parser.add_argument("--history", default=env("CROSSBOOK_HISTORY"),
                        help="history database URL (default: SQLite in the data dir)")
    parser.add_argument("--config", type=Path, default=env("CROSSBOOK_CONFIG"),
                        help="TOML with assets, instruments, fees and limits")
    parser.add_argument("--workers", type=int, default=int(env("CROSSBOOK_WORKERS", "0")),
                        help="gateway processes serving --http and --ws (default 0: in-process)")
    parser.add_argument("--log-level", default=env("CROSSBOOK_LOG_LEVEL", "INFO"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvloop  # noqa: PLC0415 (keep `crossbook --help` fast)

    from crossbook.config import load_config  # noqa: PLC0415
    from crossbook.journal.file import Durability  # noqa: PLC0415
    from crossbook.node import NodeSettings, configure_logging, run_node  # noqa: PLC0415

    configure_logging(args.log_level)
    try:
        config = load_config(args.config)
        config.domain_instruments()
    except (OSError, ValueError) as exc:
        print(f"crossbook serve: {exc}", file=sys.stderr)
        return 2
    settings = NodeSettings(
        data_dir=args.data_dir, config=config, http=args.http, ws=args.ws, binary=args.binary,
        durability=Durability(args.durability), history=args.history,
        workers=args.workers,
    )
    if args.workers > 0:  # workers serve --http and --ws; the core keeps private ports
        settings.public_http, settings.http = args.http, ("127.0.0.1", 0)
        settings.public_ws, settings.ws = args.ws, ("127.0.0.1", 0)
    return uvloop.run(run_node(settings))
