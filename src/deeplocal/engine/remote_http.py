"""HTTP plumbing for RemoteBackend: one keep-alive connection pool per backend (engine/httpclient.py),
a POST whose failures become typed engine errors, and a splitter that turns received bytes into SSE lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deeplocal.engine import remote_wire as wire
from deeplocal.engine.errors import BackendUnavailable, UpstreamError
from deeplocal.engine.httpclient import ConnectFailed, ConnectionPool, Endpoint, HttpClientError, Response

# Idle pooled connections are dropped after this, before a typical server's own keep-alive limit
# (uvicorn: 5 s) closes them under us.
KEEPALIVE_S = 4.0


class UpstreamTimeout(UpstreamError):
    """An upstream did not connect, start or finish within its configured time."""

    status_code = 504
    code = "upstream_timeout"


def make_pool(connect_s: float) -> ConnectionPool:
    """A keep-alive pool without a size limit. `connect_s` bounds opening a socket (a pooled connection
    needs no timer); the caller's deadline bounds everything else."""
    return ConnectionPool(connect_s=connect_s, keepalive_s=KEEPALIVE_S)


async def post(pool: ConnectionPool, name: str, endpoint: Endpoint, body: bytes, *, deadline: float) -> Response:
    """POST and wait for the response headers by `deadline`; a status >= 400 is raised as its typed error."""
    try:
        response = await pool.post(endpoint, body, deadline=deadline)
    except TimeoutError as exc:
        raise UpstreamTimeout(f"upstream {name!r} sent no response headers in time") from exc
    except ConnectFailed as exc:
        raise BackendUnavailable(f"upstream {name!r} is unreachable: {exc}") from exc
    except HttpClientError as exc:
        raise UpstreamError(f"upstream {name!r} failed before responding: {exc}") from exc
    if response.status >= 400:
        try:
            raw = await response.read(deadline=deadline)
        except (TimeoutError, HttpClientError):
            raw = b""
        finally:
            response.release()
        raise wire.error_from_status(name, response.status, raw.decode("utf-8", "replace"), response.headers)
    return response


async def read_body(response: Response, name: str, *, deadline: float) -> bytes:
    """The whole response body by `deadline` (the caller then releases the response)."""
    try:
        return await response.read(deadline=deadline)
    except TimeoutError as exc:
        raise UpstreamTimeout(f"upstream {name!r}: no complete answer in time") from exc
    except HttpClientError as exc:
        raise UpstreamError(f"upstream {name!r} dropped the response: {exc}") from exc


class LineSplitter:
    """Bytes in, complete lines out (without terminators: LF, CRLF or CR, as SSE allows)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[str]:
        data = self._rest + data if self._rest else data
        if b"\r" in data:
            return self._feed_with_cr(data)
        *lines, self._rest = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    def _feed_with_cr(self, data: bytes) -> list[str]:
        if data.endswith(b"\r"):   # maybe half of a CRLF: wait for the next byte
            data, tail = data[:-1], b"\r"
        else:
            tail = b""
        *lines, rest = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._rest = rest + tail
        return [line.decode("utf-8", "replace") for line in lines]

    def flush(self) -> list[str]:
        rest, self._rest = self._rest.rstrip(b"\r"), b""
        return [rest.decode("utf-8", "replace")] if rest else []


def json_headers(base: Mapping[str, str], *, accept: str) -> dict[str, Any]:
    return {**base, "Accept": accept, "Content-Type": "application/json"}
