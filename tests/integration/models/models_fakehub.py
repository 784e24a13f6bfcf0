"""A fake Hugging Face hub on 127.0.0.1: the revision API and /resolve/ downloads with HTTP Range."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    commit: str = "a" * 40
    lfs: set[str] = field(default_factory=set)  # files published with an LFS sha256
    published_sha256: dict[str, str] = field(default_factory=dict)  # override (to simulate corruption)


@dataclass
class HubState:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)  # file -> bytes sent before cutting, once
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


def _sibling(name: str, data: bytes, repo: FakeRepo) -> dict:
    blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
    entry = {"rfilename": name, "size": len(data), "blobId": blob}
    if name in repo.lfs:
        sha = repo.published_sha256.get(name, hashlib.sha256(data).hexdigest())
        entry["lfs"] = {"sha256": sha, "size": len(data), "pointerSize": 134}
    return entry


def make_handler(state: HubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _json(self, status: int, body: dict) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            state.requests.append((path, self.headers.get("range")))
            api = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path)
            if api:
                repo = state.repos.get(api.group(1))
                if repo is None:
                    return self._json(404, {"error": "Repository not found"})
                siblings = [_sibling(n, d, repo) for n, d in repo.files.items()]
                return self._json(200, {"id": api.group(1), "sha": repo.commit, "siblings": siblings})
            res = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            repo = state.repos.get(res.group(1)) if res else None
            if repo is None or res.group(3) not in repo.files:
                return self._json(404, {"error": "Entry not found"})
            self._send_file(res.group(3), repo.files[res.group(3)])

        def _send_file(self, name: str, data: bytes) -> None:
            start = 0
            rng = self.headers.get("range")
            if rng:
                start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("content-range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("content-length", str(len(body)))
            self.send_header("etag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.end_headers()
            cut = state.drop_after.pop(name, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    return Handler


class FakeHub:
    def __init__(self) -> None:
        self.state = HubState()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
