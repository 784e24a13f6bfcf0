"""The upstream HTTP client (engine/httpclient.py) against scripted servers on 127.0.0.1: each test's
server answers with exact bytes, so framing, connection reuse, drops and garbage are all real."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Self

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deeplocal.engine.httpclient import (
    ConnectFailed,
    ConnectionDropped,
    ConnectionPool,
    Endpoint,
    ProtocolError,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class Scripted:
    """A TCP server whose `handler(reader, writer, n)` runs for each connection (n counts them)."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%b\r\n%b" % (
        len(body), b"".join(h + b"\r\n" for h in extra), body)


def pool(**kw) -> ConnectionPool:
    return ConnectionPool(connect_s=kw.pop("connect_s", 2.0), keepalive_s=kw.pop("keepalive_s", 4.0), **kw)


def endpoint(server: Scripted, path: str = "/v1/chat/completions") -> Endpoint:
    return Endpoint.post(server.url(path), {"Authorization": "Bearer sk-x", "Content-Type": "application/json"})


async def test_content_length_bodies_reuse_one_connection():
    async def handler(reader, writer, n):
        while True:
            body = await server.read_request(reader)
            writer.write(ok(b'{"echo": %b}' % body))
            await writer.drain()

    async with Scripted(handler) as server:
        p = pool()
        for i in range(3):
            r = await p.post(endpoint(server), b"%d" % i)
            assert r.status == 200 and r.content_type == "application/json"
            assert await r.read() == b'{"echo": %d}' % i and r.complete
            r.release()
        await p.close()
    assert server.connections == 1
    head = server.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in head and b"Content-Length: 1" in head
    assert b"Authorization: Bearer sk-x" in head


async def test_chunked_stream_arrives_piece_by_piece_then_the_connection_is_reused():
    gate = asyncio.Event()

    async def handler(reader, writer, n):
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"7\r\ndata: a\r\n")
            await writer.drain()
            await gate.wait()
            writer.write(b"7\r\ndata: b\r\n0\r\n\r\n")
            await writer.drain()

    async with Scripted(handler) as server:
        p = pool()
        r = await p.post(endpoint(server), b"{}")
        assert r.content_type == "text/event-stream"
        assert await r.readany() == b"data: a"     # before the rest was even sent
        assert not r.complete
        gate.set()
        assert await r.read() == b"data: b" and r.complete
        r.release()
        r2 = await p.post(endpoint(server), b"{}")
        assert await r2.read() == b"data: adata: b"
        r2.release()
        await p.close()
    assert server.connections == 1


async def test_body_until_close_and_connection_close_are_not_reused():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        if n == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\": ")
            await writer.drain()
            writer.write(b"1}")
        else:
            writer.write(ok(b"{}", b"Connection: close"))
        await writer.drain()

    async with Scripted(handler) as server:
        p = pool()
        r = await p.post(endpoint(server), b"{}")
        assert await r.read() == b'{"a": 1}' and r.complete
        r.release()
        r = await p.post(endpoint(server), b"{}")
        assert await r.read() == b"{}"
        r.release()
        assert not any(p._idle.values())
        await p.close()
    assert server.connections == 2


async def test_a_pooled_connection_closed_by_the_server_is_retried_once_on_a_new_one():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        writer.write(ok(b'{"n": %d}' % n))   # says keep-alive ...
        await writer.drain()
        if n == 1:   # ... but drops the next request on this connection unanswered
            await server.read_request(reader)
            return
        await asyncio.sleep(1)

    async with Scripted(handler) as server:
        p = pool()
        r = await p.post(endpoint(server), b"{}")
        assert await r.read() == b'{"n": 1}'
        r.release()
        r = await p.post(endpoint(server), b"{}")
        assert await r.read() == b'{"n": 2}'
        r.release()
        await p.close()
    assert server.connections == 2 and len(server.requests) == 3


async def test_a_drop_after_part_of_the_answer_is_an_error_and_never_retried():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    async with Scripted(handler) as server:
        p = pool()
        r = await p.post(endpoint(server), b"{}")
        with pytest.raises(ConnectionDropped):
            await r.read()
        r.close()
        await p.close()
    assert server.connections == 1


async def test_drop_before_headers_on_a_new_connection_and_garbage_are_errors():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        if n == 2:
            writer.write(b"this is not http\r\n\r\n")
            await writer.drain()

    async with Scripted(handler) as server:
        p = pool()
        with pytest.raises(ConnectionDropped):
            await p.post(endpoint(server), b"{}")
        with pytest.raises(ProtocolError):
            await p.post(endpoint(server), b"{}")
        assert not any(p._idle.values())
        await p.close()


async def test_refused_connection():
    async with Scripted(lambda *a: asyncio.sleep(0)) as server:
        port = server.port
    with pytest.raises(ConnectFailed):
        await pool().post(Endpoint.post(f"http://127.0.0.1:{port}/v1/x", {}), b"{}")


async def test_a_slow_reader_gets_every_byte_of_a_large_body():
    blob = bytes(range(256)) * 8192   # 2 MiB: reading pauses and resumes on the way

    async def handler(reader, writer, n):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(blob))
        for i in range(0, len(blob), 65536):
            writer.write(blob[i:i + 65536])
            await writer.drain()

    async with Scripted(handler) as server:
        p = pool()
        r = await p.post(endpoint(server), b"{}")
        got = []
        while data := await r.readany():
            got.append(data)
            await asyncio.sleep(0.001)
        assert b"".join(got) == blob
        r.release()
        await p.close()


async def test_set_exception_fails_the_pending_read_and_a_cancelled_request_frees_its_connection():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        if n == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            await writer.drain()
        await asyncio.sleep(5)

    async with Scripted(handler) as server:
        p = pool()
        r = await p.post(endpoint(server), b"{}")
        pending = asyncio.ensure_future(r.readany())
        await asyncio.sleep(0.05)
        r.set_exception(TimeoutError("no token in time"))
        with pytest.raises(TimeoutError):
            await pending
        r.close()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):   # no answer at all: the caller gives up
                await p.post(endpoint(server), b"{}")
        assert not any(p._idle.values())
        await p.close()


def test_endpoint_renders_the_head_once_and_refuses_bad_input():
    e = Endpoint.post("https://api.example.com/v1/chat/completions?x=1", {"Accept": "text/event-stream"})
    assert e.origin == ("https", "api.example.com", 443)
    assert e.head.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: api.example.com\r\n")
    assert e.head.endswith(b"Accept: text/event-stream\r\nContent-Length: ")
    assert Endpoint.post("http://[::1]:8080/v1", {}).head.split(b"\r\n")[1] == b"Host: [::1]:8080"
    with pytest.raises(ValueError):
        Endpoint.post("ftp://example.com/v1", {})
    with pytest.raises(ValueError):
        Endpoint.post("http://example.com/v1", {"X-Evil": "a\r\nInjected: yes"})


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


async def test_https_verifies_the_server_certificate(tmp_path):
    cert, key = _self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")

    async def serve(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
            writer.write(ok(b'{"tls": true}'))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    url = f"https://127.0.0.1:{port}/v1/chat/completions"
    try:
        with pytest.raises(ConnectFailed):   # the system's CAs do not know this certificate
            await pool().post(Endpoint.post(url, {}), b"{}")
        trusting = pool(ssl_context=ssl.create_default_context(cafile=str(tmp_path / "c.pem")))
        r = await trusting.post(Endpoint.post(url, {}), b"{}")
        assert await r.read() == b'{"tls": true}'
        r.release()
        await trusting.close()
    finally:
        server.close()


async def test_deadlines_for_the_headers_and_for_the_body():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        if n == 2:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
            await writer.drain()
        await asyncio.sleep(5)

    async with Scripted(handler) as server:
        p = pool()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            await p.post(endpoint(server), b"{}", deadline=t0 + 0.2)
        assert 0.15 < loop.time() - t0 < 1.0
        r = await p.post(endpoint(server), b"{}", deadline=loop.time() + 1)
        with pytest.raises(TimeoutError):
            await r.read(deadline=loop.time() + 0.2)
        r.release()   # an incomplete body never goes back to the pool
        assert not any(p._idle.values())
        await p.close()
    assert server.connections == 2


async def test_a_reset_during_a_body_read_until_close_is_an_error_not_an_end():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: partial")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()   # RST, not FIN

    async with Scripted(handler) as server:
        p = pool()
        r = await p.post(endpoint(server), b"{}")
        with pytest.raises(ConnectionDropped):
            await r.read()
        assert not r.complete
        r.close()
        await p.close()


async def test_a_body_released_unread_leaves_a_working_connection():
    big = b"x" * (300 * 1024)   # more than is buffered before reading pauses

    async def handler(reader, writer, n):
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(big), big))
            await writer.drain()

    async with Scripted(handler) as server:
        p = pool()
        loop = asyncio.get_running_loop()
        r = await p.post(endpoint(server), b"{}")
        while not r.complete:
            await asyncio.sleep(0.01)
            if r._conn._paused:   # reading paused with the whole body in: resume it when released
                break
        if r.complete:
            r.release()
        else:
            assert await r.read() == big
            r.release()
        r2 = await p.post(endpoint(server), b"{}", deadline=loop.time() + 2)
        assert await r2.read(deadline=loop.time() + 2) == big
        r2.release()
        await p.close()
    assert server.connections == 1


async def test_a_timer_that_fires_with_the_answer_in_does_not_fail_it():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        writer.write(ok(b'{"late": false}'))
        await writer.drain()
        await asyncio.sleep(1)

    async with Scripted(handler) as server:
        p = pool()
        loop = asyncio.get_running_loop()
        r = await p.post(endpoint(server), b"{}")
        await asyncio.sleep(0.05)   # the whole body is in
        r._conn.arm(loop.time() - 1)   # a deadline already past: fires on the next loop pass
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        r.set_exception(TimeoutError("a stream watchdog, just too late"))
        assert await r.read() == b'{"late": false}'
        r.release()
        assert sum(len(c) for c in p._idle.values()) == 1
        await p.close()


async def test_a_second_answer_to_one_request_is_not_taken_and_the_connection_is_dropped():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        writer.write(ok(b"{}") + b"HTTP/1.1 500 Oops\r\nContent-Length: 5\r\n\r\nevil!")
        await writer.drain()
        await asyncio.sleep(1)

    async with Scripted(handler) as server:
        p = pool()
        r = await p.post(endpoint(server), b"{}")
        await asyncio.sleep(0.05)
        assert r.status == 200 and await r.read() == b"{}"
        r.release()
        assert not any(p._idle.values())
        await p.close()


async def test_idle_connections_are_closed_after_keepalive():
    async def handler(reader, writer, n):
        while True:
            await server.read_request(reader)
            writer.write(ok(b"{}"))
            await writer.drain()

    async with Scripted(handler) as server:
        p = pool(keepalive_s=0.2)
        responses = await asyncio.gather(*(p.post(endpoint(server), b"{}") for _ in range(3)))
        for r in responses:
            await r.read()
            r.release()
        assert sum(len(c) for c in p._idle.values()) == 3
        await asyncio.sleep(0.5)
        assert not p._idle
        await p.close()
    assert server.connections == 3


def test_endpoint_credentials_encoding_and_reserved_headers():
    e = Endpoint.post("http://user:p%40ss@例え.jp/v1/a b", {})
    lines = e.head.split(b"\r\n")
    assert lines[0] == b"POST /v1/a%20b HTTP/1.1" and lines[1] == b"Host: xn--r8jz45g.jp"
    assert b"Authorization: Basic dXNlcjpwQHNz" in lines   # user:p@ss
    e = Endpoint.post("http://u:p@h/v1", {"authorization": "Bearer k", "Host": "virtual.example"})
    assert b"authorization: Bearer k" in e.head and b"Basic" not in e.head
    assert e.head.count(b"ost: ") == 1 and b"Host: virtual.example" in e.head
    with pytest.raises(ValueError):
        Endpoint.post("http://h/v1", {"Content-Length": "5"})


async def test_a_later_deadline_for_the_next_read_outlasts_an_earlier_one():
    async def handler(reader, writer, n):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
        await writer.drain()
        await asyncio.sleep(0.4)   # past the first read's deadline, within the second's
        writer.write(b"1\r\nb\r\n0\r\n\r\n")
        await writer.drain()

    async with Scripted(handler) as server:
        p = pool()
        loop = asyncio.get_running_loop()
        r = await p.post(endpoint(server), b"{}", deadline=loop.time() + 0.2)
        assert await r.readany(deadline=loop.time() + 0.2) == b"a"
        assert await r.readany(deadline=loop.time() + 1.0) == b"b"
        assert await r.readany(deadline=loop.time() + 1.0) == b"" and r.complete
        r.release()
        await p.close()
