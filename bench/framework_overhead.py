"""Per-request cost of the HTTP stack alone: what an order entry endpoint pays before any
exchange work. Each variant decodes the same JSON order body with msgspec and answers a
small JSON document, so only the server and framework differ.

    python bench/framework_overhead.py [--requests N] [--connections 1,16,64]

Variants (each served in its own process, one worker, on 127.0.0.1):
- raw-uvicorn: a raw ASGI callable on uvicorn with uvloop and httptools;
- raw-granian: the same callable on granian (ASGI interface, one worker, one thread);
- starlette-uvicorn: a Starlette route doing the same, on uvicorn with uvloop and httptools;
- crossbook-server: the same handler on the node's own server (`crossbook.gateway.server`,
  an asyncio protocol on httptools, uvloop).

Each wrk run also records the server process's user+system CPU per request, which the load
of other work on the machine changes far less than requests/s.

The load generator is wrk (C, one thread, keep-alive, closed loop) when installed, else
bench/http_load.py (Python, closed loop); either runs on the other core. Writes
bench/results/framework-<utc>.json. Granian and Starlette are measured here only; they are
not dependencies of crossbook.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_load import run_load

BODY = b'{"symbol":"BTC-USDT","order_type":"limit","side":"buy","quantity":"0.1","price":"60000"}'
VARIANTS = ("raw-uvicorn", "raw-granian", "starlette-uvicorn", "crossbook-server")


class Order(msgspec.Struct):
    symbol: str
    side: str
    quantity: str
    price: str | None = None
    order_type: str | None = None


_decode = msgspec.json.Decoder(Order).decode
_ANSWER = b'{"order_id":1,"status":"new"}'


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    message = await receive()
    body = message.get("body", b"")
    while message.get("more_body"):
        message = await receive()
        body += message.get("body", b"")
    order = _decode(body)
    assert order.symbol
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(_ANSWER))]})
    await send({"type": "http.response.body", "body": _ANSWER})


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def place(request: Request) -> Response:
        order = _decode(await request.body())
        assert order.symbol
        return Response(_ANSWER, 201, media_type="application/json")

    return Starlette(routes=[Route("/v1/orders", place, methods=["POST"])])


async def serve_crossbook(port: int) -> None:
    from crossbook.gateway.http import Request, Response
    from crossbook.gateway.metrics import Metrics
    from crossbook.gateway.server import HttpServer

    async def handle(request: Request) -> Response:
        order = _decode(request.body)
        assert order.symbol
        return Response(201, _ANSWER)

    await HttpServer(handle, Metrics(), "127.0.0.1", port).serve()


def serve(variant: str, port: int) -> None:
    if variant == "crossbook-server":
        import uvloop

        uvloop.run(serve_crossbook(port))
        return
    if variant == "raw-granian":
        from granian.constants import Interfaces, Loops
        from granian.server import Server

        Server(
            "framework_overhead:raw_app", address="127.0.0.1", port=port,
            interface=Interfaces.ASGI, workers=1, loop=Loops.uvloop, log_access=False,
        ).serve()
        return
    import uvicorn

    app = raw_app if variant == "raw-uvicorn" else starlette_app()
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", lifespan="off")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process `pid` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def request_bytes(port: int) -> bytes:
    return (
        b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (port, len(BODY), BODY)
    )


def run_wrk(port: int, requests_file: Path, connections: int, seconds: int) -> dict[str, Any]:
    """wrk (C, one thread) replaying raw requests; its JSON summary (see wrk_requests.lua)."""
    here = Path(__file__).resolve().parent
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s",
         str(here / "wrk_requests.lua"), f"http://127.0.0.1:{port}/"],
        env={**os.environ, "WRK_REQUESTS": str(requests_file)}, capture_output=True,
        text=True, check=True,
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("WRK-JSON "))
    result: dict[str, Any] = json.loads(line[len("WRK-JSON "):])
    result["per_second"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    return result


def measure(variant: str, connections: list[int], requests: int) -> dict[str, Any]:
    port = free_port()
    here = Path(__file__).resolve().parent
    server = subprocess.Popen(
        [sys.executable, str(here / "framework_overhead.py"), "--serve", variant,
         "--port", str(port)],
        cwd=here, env={**os.environ, "PYTHONPATH": str(here)},
    )
    try:
        wait_port(port)
        raw = request_bytes(port)
        out: dict[str, Any] = {}
        if shutil.which("wrk"):
            requests_file = Path(tempfile.mkstemp(suffix=".http")[1])
            requests_file.write_bytes(raw + b"\n--8<--\n")
            run_wrk(port, requests_file, 16, 2)  # warm-up
            for conns in connections:
                before = cpu_seconds(server.pid)
                out[str(conns)] = result = run_wrk(
                    port, requests_file, conns, max(3, requests // 20000))
                result["server_cpu_us_per_request"] = round(
                    (cpu_seconds(server.pid) - before) / max(1, result["requests"]) * 1e6, 1)
                print(variant, conns, out[str(conns)], flush=True)
            requests_file.unlink()
            return out
        for conns in connections:
            asyncio.run(run_load("127.0.0.1", port, lambda i: raw, connections=conns,
                                 total=min(2000, requests)))  # warm-up
            result = asyncio.run(run_load("127.0.0.1", port, lambda i: raw,
                                          connections=conns, total=requests))
            out[str(conns)] = result.summary()
            print(variant, conns, out[str(conns)], flush=True)
        return out
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--serve", choices=VARIANTS)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    import uvloop

    uvloop.install()
    connections = [int(c) for c in args.connections.split(",")]
    results = {v: measure(v, connections, args.requests) for v in args.variants.split(",")}
    record = {
        "benchmark": "framework_overhead",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "python": sys.version.split()[0],
        "requests_per_run": args.requests,
        "body": BODY.decode(),
        "results": results,
    }
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"framework-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
