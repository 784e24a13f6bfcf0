"""The security gateway inside the real `deeplocal serve`: keys made with the CLI, checked by the
server, with the official client and raw HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serverproc import start_server

MODEL = "smollm2-135m-instruct"


def _key(tmp: Path, *args: str) -> dict:
    env = {**os.environ, "DEEPLOCAL_DATA_DIR": str(tmp / "data")}
    out = subprocess.run([sys.executable, "-m", "deeplocal", "keys", "create", "--json", *args],
                         env=env, capture_output=True, text=True, check=True, cwd=tmp)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secured")
    keys = {
        "user": _key(tmp, "--tenant", "acme", "--name", "app"),
        "other_model": _key(tmp, "--tenant", "acme", "--name", "limited", "--models", "some-other-model"),
        "admin": _key(tmp, "--tenant", "acme", "--name", "ops", "--scopes", "inference,admin"),
        "rpm": _key(tmp, "--tenant", "beta", "--name", "slow", "--rpm", "2"),
        "no_email": _key(tmp, "--tenant", "acme", "--name", "strict", "--pii-policy", "EMAIL_ADDRESS=block"),
    }
    srv = start_server(tmp, "--auth")
    yield srv, {k: v["key"] for k, v in keys.items()}, tmp
    srv.stop()


def _chat(srv, key=None, **extra):
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}], **extra}
    return httpx.post(srv.base_url + "/v1/chat/completions", json=body, headers=headers, timeout=60)


def test_keys_are_required_and_checked(secured):
    srv, keys, _ = secured
    r = _chat(srv)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert _chat(srv, "dl-0000000000000000-" + "x" * 43).status_code == 401
    assert _chat(srv, keys["user"][:-2] + "zz").status_code == 401
    ok = _chat(srv, keys["user"])
    assert ok.status_code == 200 and ok.headers["x-deeplocal-upstream"] == "local"


def test_official_client_with_key(secured):
    srv, keys, _ = secured
    client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key=keys["user"], max_retries=0)
    assert [m.id for m in client.models.list().data] == [MODEL]
    bad = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_model_allow_list(secured):
    srv, keys, _ = secured
    r = _chat(srv, keys["other_model"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
    models = httpx.get(srv.base_url + "/v1/models", headers={"authorization": f"Bearer {keys['other_model']}"})
    assert models.json()["data"] == []


def test_rate_limit_headers_and_429(secured):
    srv, keys, _ = secured
    codes = [_chat(srv, keys["rpm"]) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert "x-ratelimit-limit-requests" in codes[0].headers
    assert int(codes[2].headers["retry-after"]) >= 1
    assert codes[2].json()["error"]["type"] == "rate_limit_error"


def test_metrics_scrape_and_no_secret_in_log(secured):
    srv, keys, _ = secured
    _chat(srv, keys["user"])
    text = httpx.get(srv.base_url + "/metrics").text
    assert "deeplocal_request_time_to_first_token_seconds_count" in text
    log = srv.log()
    for key in keys.values():
        assert key not in log and key.split("-", 2)[2] not in log   # the secret may itself contain "-"
    assert "hi" not in [ln.strip() for ln in log.splitlines()]


def test_public_bind_without_auth_refuses(tmp_path):
    env = {**os.environ, "DEEPLOCAL_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "deeplocal", "serve", "--host", "0.0.0.0", "--port", "0"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "refusing to start" in proc.stderr


def test_a_key_with_its_own_pii_policy(secured):
    srv, keys, _ = secured
    email = [{"role": "user", "content": "Forward this to zhang.san@example.com please."}]
    refused = _chat(srv, keys["no_email"], messages=email)
    assert refused.status_code == 400 and "EMAIL_ADDRESS" in refused.json()["error"]["message"]
    assert _chat(srv, keys["user"], messages=email).status_code == 200   # same tenant, the global policy
    assert _chat(srv, keys["no_email"]).status_code == 200                # no email: served
