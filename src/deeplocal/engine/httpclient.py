"""A small HTTP/1.1 client for the upstream path: a keep-alive connection pool per origin, requests
whose head is rendered once per endpoint, and responses read on an asyncio Protocol with httptools'
parser (the C parser uvicorn uses).

It does what a proxy to an OpenAI-compatible API needs and no more: POST with a body, HTTP and HTTPS
(TLS verified against the system's CAs by default), bodies by Content-Length, chunked or read until
close, a streamed body read as it arrives (with back-pressure), and reuse of a connection only when its
response was read to the end and the server keeps it alive. No redirects, cookies, proxies, 100-continue
or compression (requests ask for none). Errors: `ConnectFailed` (no connection within `connect_s` or
refused), `ConnectionDropped` (closed before the response was complete), `ProtocolError` (not HTTP).
A request on a pooled connection that the server has closed meanwhile is sent again once on a new
connection, but only when not one byte of a response had arrived (the router would retry such a
failure before any token anyway; here it is not counted against the upstream). Idle connections
are closed after `keepalive_s`. Credentials in the URL become Basic auth; the path is percent-encoded
and an internationalised host name IDNA-encoded.
"""

from __future__ import annotations

import asyncio
import base64
import math
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import httptools

_HIGH_WATER = 256 * 1024   # buffered body bytes before reading from the socket pauses
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"   # RFC 3986 pchar and "/", and "%" so that an encoded path stays as it is
_QUERY_SAFE = _PATH_SAFE + "?"


class HttpClientError(Exception):
    """Base of this client's errors."""


class ConnectFailed(HttpClientError):
    """No connection: refused, unresolvable, or not established within the connect timeout."""


class ConnectionDropped(HttpClientError):
    """The connection closed before the response was complete."""


class ProtocolError(HttpClientError):
    """The peer's bytes are not a valid HTTP/1.1 response."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One URL, parsed once: where to connect and the request head up to Content-Length."""

    origin: tuple[str, str, int]   # scheme, host, port
    head: bytes

    @classmethod
    def post(cls, url: str, headers: Mapping[str, str]) -> Endpoint:
        """`headers` are sent as given; a `Host` or `Accept-Encoding` among them replaces ours, and
        credentials in the URL (`user:pass@`) become Basic auth unless `Authorization` is given."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        hostname = parts.hostname.encode("idna").decode("ascii") if not parts.hostname.isascii() else parts.hostname
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        host = f"[{hostname}]" if ":" in hostname else hostname   # an IPv6 literal
        if port != default:
            host += f":{port}"
        target = quote(parts.path or "/", safe=_PATH_SAFE) + (f"?{quote(parts.query, safe=_QUERY_SAFE)}"
                                                              if parts.query else "")
        given = {name.lower(): (name, value) for name, value in headers.items()}
        for name in ("content-length", "transfer-encoding"):
            if name in given:
                raise ValueError(f"header {given[name][0]!r} is set by the client, not by configuration")
        fields = {"host": ("Host", host), "accept-encoding": ("Accept-Encoding", "identity")}
        if parts.username is not None and "authorization" not in given:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            fields["authorization"] = ("Authorization", "Basic " + base64.b64encode(userinfo).decode("ascii"))
        fields.update(given)
        lines = [f"POST {target} HTTP/1.1"]
        for name, value in fields.values():
            if any(c in f"{name}{value}" for c in "\r\n") or not name or ":" in name:
                raise ValueError(f"header {name!r} is not a valid header line")
            lines.append(f"{name}: {value}")
        head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        return cls((parts.scheme, hostname, port), head)


class Response:
    """Status and headers as soon as they arrive; the body by `read()` or piece by piece by `readany()`.
    Give it back with `release()` once read to the end (the connection is pooled again), else `close()`."""

    def __init__(self, conn: _Connection):
        self._conn = conn
        self.status = 0
        self.headers: dict[str, str] = {}
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.complete = False   # the whole body has arrived

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    async def readany(self, *, deadline: float | None = None) -> bytes:
        """The body bytes that have arrived (waiting for some), or b"" at the end of the body;
        TimeoutError (and the connection dropped) if none have by `deadline` (the loop's clock)."""
        self._conn.arm(deadline)
        try:
            return await self._next()
        finally:
            self._conn.disarm()

    async def read(self, *, deadline: float | None = None) -> bytes:
        """The rest of the body; TimeoutError (and the connection dropped) if it is not all there by
        `deadline`."""
        parts = []
        self._conn.arm(deadline)
        try:
            while data := await self._next():
                parts.append(data)
        finally:
            self._conn.disarm()
        return b"".join(parts)

    async def _next(self) -> bytes:
        while not self._buffer:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            self._waiter = self._conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = b"".join(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer.clear()
        if self._buffered >= _HIGH_WATER:
            self._conn.resume()
        self._buffered = 0
        return data

    def set_exception(self, exc: BaseException) -> None:
        """Fail the pending read (or the next one) with `exc`; the connection will not be reused. A body
        that has arrived whole is not failed any more (its bytes are read as they are)."""
        if self.complete:
            return
        if self._error is None:
            self._error = exc
        self._wake(exc)

    def release(self) -> None:
        self._conn.done(self, reuse=self.complete and self._error is None)

    def close(self) -> None:
        self._conn.done(self, reuse=False)

    # -- from the connection ------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= _HIGH_WATER:
            self._conn.pause()
        self._wake(None)

    def _end(self, error: BaseException | None) -> None:
        if self.complete:
            return
        if error is None:
            self.complete = True
        elif self._error is None:
            self._error = error
        self._wake(error)

    def _wake(self, error: BaseException | None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


class _Connection(asyncio.Protocol):
    """One socket. Carries one request at a time; httptools calls the on_* methods while parsing."""

    def __init__(self, pool: ConnectionPool, origin: tuple[str, str, int]):
        self.pool = pool
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._armed = math.inf      # when the timer fires
        self._deadline = math.inf   # when what is awaited now is late (inf: nothing is awaited)
        self._parser = httptools.HttpResponseParser(self)
        self._response: Response | None = None
        self._headers_ready: asyncio.Future[None] | None = None
        self._got_bytes = False
        self._until_close = False   # no Content-Length, not chunked: the body ends with the connection
        self._keep_alive = False    # the server lets the connection carry another request
        self._paused = False

    # -- the caller's side --------------------------------------------------------------------------

    async def send(self, endpoint: Endpoint, body: bytes, deadline: float | None) -> Response:
        assert self.transport is not None
        response = self._response = Response(self)
        self._headers_ready = self.loop.create_future()
        self._got_bytes = False
        self._until_close = self._keep_alive = False
        self.transport.write(b"%b%d\r\n\r\n%b" % (endpoint.head, len(body), body))
        self.arm(deadline)
        try:
            await self._headers_ready
        finally:
            self.disarm()
        return response

    def arm(self, deadline: float | None) -> None:
        """What is awaited next on this connection must arrive by `deadline`, else it fails with
        TimeoutError. One timer per connection, moved only when a deadline comes earlier than the one
        it is set for: a stream's reads each state a deadline without a timer each."""
        self._deadline = math.inf if deadline is None else deadline
        if self._deadline < self._armed:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(self._deadline, self._expire)
            self._armed = self._deadline

    def disarm(self) -> None:
        """Nothing is awaited now: the timer stays set and finds nothing due when it fires."""
        self._deadline = math.inf

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._armed = None, math.inf

    def _expire(self) -> None:
        """Fail only what is still pending: headers that have arrived, or a body that has arrived whole,
        are not failed by a timer that fires in the same loop pass."""
        self._timer, self._armed = None, math.inf
        if self._deadline == math.inf:
            return
        if self.loop.time() < self._deadline:   # a later deadline was stated since the timer was set
            self.arm(self._deadline)
            return
        error = TimeoutError("the upstream did not answer in time")
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_exception(error)
        elif self._response is not None and not self._response.complete:
            self._response._end(error)
        else:
            return
        self.abort()

    def pause(self) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def done(self, response: Response, *, reuse: bool) -> None:
        """`response` is finished with: back to the pool when it was read whole and may be reused.
        A second call, or one for an earlier response of this connection, does nothing."""
        if response is not self._response:
            return
        self._response = None
        self._stop_timer()
        if reuse and not self.closed and not self._until_close and self._keep_alive:
            self.resume()   # the body may have been left unread while reading was paused
            self.pool._put(self)
        else:
            self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport   # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._response is None:   # bytes nobody asked for: this connection cannot be trusted
            self.abort()
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:   # what a callback raised arrives wrapped in this too
            self._fail(ProtocolError(f"malformed HTTP response: {exc.__cause__ or exc}"))
            self.abort()   # never reused; a response already complete keeps its body

    def eof_received(self) -> bool:
        return False   # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_timer()
        response = self._response
        if response is None or response.complete:
            return
        if exc is None and self._until_close and self._headers_ready is not None and self._headers_ready.done():
            response._end(None)   # the end of a read-until-close body (a reset is not an end)
            return
        self._fail(ConnectionDropped("the connection closed before the response was complete"
                                     + (f" ({exc})" if exc else "")))

    # -- httptools callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        response = self._response
        if response is not None and response.complete:   # a second answer to one request
            raise ProtocolError("the upstream sent more than one response to one request")

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._response is not None
        self._response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        response = self._response
        assert response is not None and self._headers_ready is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:   # an interim response: its headers are not the answer's
            response.headers.clear()
            return
        response.status = status
        self._keep_alive = self._parser.should_keep_alive()   # only valid while the message is parsed
        headers = response.headers
        self._until_close = "content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", "").lower() and status not in (204, 304)
        if not self._headers_ready.done():
            self._headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response._feed(body)

    def on_message_complete(self) -> None:
        response = self._response
        if response is None or response.status == 0:   # the end of an interim (1xx) response
            return
        response._end(None)

    def _fail(self, error: HttpClientError) -> None:
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_exception(error)
        elif self._response is not None:
            self._response._end(error)


async def _send(conn: _Connection, endpoint: Endpoint, body: bytes, deadline: float | None) -> Response:
    try:
        return await conn.send(endpoint, body, deadline)
    except BaseException:   # failed, timed out or cancelled half-way: the connection is spent
        conn.abort()
        raise


class ConnectionPool:
    """Keep-alive connections per origin. `keepalive_s`: an idle connection older than this is closed
    rather than reused (set it below the servers' own idle limit, e.g. uvicorn's 5 s)."""

    def __init__(self, *, connect_s: float, keepalive_s: float, ssl_context: ssl.SSLContext | None = None):
        self.connect_s = connect_s
        self.keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def post(self, endpoint: Endpoint, body: bytes, *, deadline: float | None = None) -> Response:
        """Send the request and return once the response's status and headers have arrived; TimeoutError
        if they have not by `deadline` (the loop's clock), which also bounds connecting."""
        if self._closed:
            raise ConnectFailed("the connection pool is closed")
        conn = self._take(endpoint.origin)
        if conn is not None:
            try:
                return await _send(conn, endpoint, body, deadline)
            except ConnectionDropped:
                if conn._got_bytes:
                    raise
                # The server closed the idle connection as we reused it: nothing was answered.
        conn = await self._connect(endpoint.origin, deadline)
        return await _send(conn, endpoint, body, deadline)

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conns in self._idle.values():
            for conn in conns:
                conn.abort()
        self._idle.clear()

    def _take(self, origin: tuple[str, str, int]) -> _Connection | None:
        conns = self._idle.get(origin)
        if not conns:
            return None
        now = time.monotonic()
        while conns:
            conn = conns.pop()   # the most recently used: the least likely to have been closed
            if not conn.closed and now - conn.idle_since < self.keepalive_s:
                return conn
            conn.abort()
        return None

    def _put(self, conn: _Connection) -> None:
        if self._closed:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.origin, deque()).append(conn)
        if self._sweeper is None:
            self._sweeper = conn.loop.call_later(self.keepalive_s, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for longer than keepalive_s (the oldest are at the left of each deque),
        looking again while any are left."""
        self._sweeper = None
        cutoff = time.monotonic() - self.keepalive_s
        loop = None
        for origin, conns in list(self._idle.items()):
            while conns and (conns[0].closed or conns[0].idle_since <= cutoff):
                conns.popleft().abort()
            if conns:
                loop = conns[0].loop
            else:
                del self._idle[origin]
        if loop is not None and not self._closed:
            self._sweeper = loop.call_later(self.keepalive_s, self._sweep)

    async def _connect(self, origin: tuple[str, str, int], deadline: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        limit = self.connect_s if deadline is None else min(self.connect_s, deadline - loop.time())
        tls = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        try:
            async with asyncio.timeout(limit):
                _, conn = await loop.create_connection(lambda: _Connection(self, origin), host, port, ssl=tls,
                                                       server_hostname=host if tls else None)
        except TimeoutError as exc:
            if limit < self.connect_s:
                raise   # the caller's deadline came first
            raise ConnectFailed(f"no connection to {host}:{port} within {self.connect_s:g} s") from exc
        except OSError as exc:   # refused, unreachable, unresolvable, TLS handshake failure
            raise ConnectFailed(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn
