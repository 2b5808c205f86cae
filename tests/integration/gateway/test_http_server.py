"""The node's HTTP/1.1 server (`gateway.server.HttpServer`) over raw sockets: keep-alive,
pipelining in order, Content-Length and chunked bodies, `Expect: 100-continue`, HEAD,
HTTP/1.0, malformed requests, oversized bodies, idle connections, and a stop that answers
the request in flight."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from crossbook.gateway.http import Request, Response, json_response
from crossbook.gateway.metrics import Metrics
from crossbook.gateway.server import HttpServer

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
SEEN: list[str] = []


async def _echo(request: Request) -> Response:
    SEEN.append(request.path)
    if request.path == "/slow":
        await asyncio.sleep(0.2)
    return json_response({
        "method": request.method, "path": request.path, "query": request.raw_query.decode(),
        "body": request.body.decode(), "client": request.client,
        "header": request.headers.get(b"x-test", b"").decode(),
    })


def serving(client: Callable[[HttpServer], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        server = HttpServer(_echo, Metrics(), "127.0.0.1", 0, max_body=1000, **options)
        task = asyncio.get_running_loop().create_task(server.serve())
        await server.started.wait()
        try:
            await client(server)
        finally:
            server.exit()
            await task

    asyncio.run(main())


async def connect(server: HttpServer) -> Streams:
    return await asyncio.open_connection(*server.address)


async def read_response(
    reader: asyncio.StreamReader, head: bool = False
) -> tuple[bytes, dict[bytes, bytes], bytes]:
    status = (await reader.readline()).rstrip(b"\r\n")
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readline()) != b"\r\n":
        name, _, value = line.rstrip(b"\r\n").partition(b": ")
        headers[name.lower()] = value
    length = int(headers.get(b"content-length", b"0"))
    body = b"" if head else await reader.readexactly(length)
    return status, headers, body


def test_keep_alive_and_pipelining_answer_in_order() -> None:
    async def client(server: HttpServer) -> None:
        reader, writer = await connect(server)
        writer.write(
            b"GET /slow?n=1 HTTP/1.1\r\nHost: x\r\nX-Test: one\r\n\r\n"
            b"POST /a%20b?n=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        first = json.loads((await read_response(reader))[2])
        second = json.loads((await read_response(reader))[2])
        status, headers, body = await read_response(reader)
        assert (first["path"], first["query"], first["header"]) == ("/slow", "n=1", "one")
        assert first["client"] == "127.0.0.1"
        assert (second["method"], second["path"], second["body"]) == ("POST", "/a b", "hello")
        assert status == b"HTTP/1.1 200 OK"
        assert b"connection" not in headers
        assert headers[b"content-type"] == b"application/json"
        assert json.loads(body)["path"] == "/c"
        writer.write(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")  # still open
        assert json.loads((await read_response(reader))[2])["path"] == "/again"
        writer.close()
        await writer.wait_closed()

    serving(client)


def test_chunked_body_and_expect_continue() -> None:
    async def client(server: HttpServer) -> None:
        reader, writer = await connect(server)
        writer.write(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
        assert json.loads((await read_response(reader))[2])["body"] == "abcdefg"
        writer.write(b"POST /y HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ok")
        assert json.loads((await read_response(reader))[2])["body"] == "ok"
        writer.close()
        await writer.wait_closed()

    serving(client)


def test_head_has_headers_and_no_body() -> None:
    async def client(server: HttpServer) -> None:
        reader, writer = await connect(server)
        writer.write(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = await read_response(reader, head=True)
        assert status == b"HTTP/1.1 200 OK"
        assert int(headers[b"content-length"]) > 0
        assert json.loads((await read_response(reader))[2])["path"] == "/g"
        writer.close()
        await writer.wait_closed()

    serving(client)


def test_close_requests_and_http_1_0_close_after_the_answer() -> None:
    async def client(server: HttpServer) -> None:
        for request in (b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                        b"GET /a HTTP/1.0\r\n\r\n"):
            reader, writer = await connect(server)
            writer.write(request)
            status, headers, _ = await read_response(reader)
            assert status == b"HTTP/1.1 200 OK"
            assert headers[b"connection"] == b"close"
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()

    serving(client)


def test_malformed_and_oversized_requests_are_refused_and_closed() -> None:
    async def client(server: HttpServer) -> None:
        for request, expected in (
            (b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
            (b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000
             + b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n",  # never answered
             b"HTTP/1.1 413 Request Entity Too Large"),
        ):
            reader, writer = await connect(server)
            writer.write(request)
            status, headers, _ = await read_response(reader)
            assert status == expected
            assert headers[b"connection"] == b"close"
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
        assert "/after" not in SEEN

    serving(client)


def test_idle_connections_are_closed() -> None:
    async def client(server: HttpServer) -> None:
        reader, writer = await connect(server)
        writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_response(reader)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()

    serving(client, idle_timeout=0.2)


def test_stop_answers_the_request_in_flight_then_closes() -> None:
    async def client(server: HttpServer) -> None:
        reader, writer = await connect(server)
        idle_reader, idle_writer = await connect(server)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.05)
        server.exit()
        status, headers, body = await read_response(reader)
        assert status == b"HTTP/1.1 200 OK"
        assert headers[b"connection"] == b"close"
        assert json.loads(body)["path"] == "/slow"
        assert await reader.read() == b""
        assert await idle_reader.read() == b""
        writer.close()
        await writer.wait_closed()
        idle_writer.close()
        await idle_writer.wait_closed()

    serving(client)
