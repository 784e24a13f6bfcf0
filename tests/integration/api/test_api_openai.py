"""The OpenAI surface against a real server (bundled model, 1 thread) through the official client."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def test_chat_names_paris(client, model):
    r = client.chat.completions.create(model=model, temperature=0, max_tokens=20, messages=[
        SYSTEM, {"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_with_usage(client, model):
    stream = client.chat.completions.create(
        model=model, temperature=0, max_tokens=12, stream=True, stream_options={"include_usage": True},
        messages=[SYSTEM, {"role": "user", "content": "Name a color."}])
    text, usage, finish = [], None, None
    for ev in stream:
        if ev.usage:
            usage = ev.usage
        for ch in ev.choices:
            text.append(ch.delta.content or "")
            finish = ch.finish_reason or finish
    assert "".join(text).strip()
    assert finish in {"stop", "length"}
    assert usage is not None and usage.completion_tokens <= 12


def test_stream_and_non_stream_agree(client, model):
    msgs = [SYSTEM, {"role": "user", "content": "Say something about cats."}]
    full = client.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=24)
    parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=model, messages=msgs, temperature=0, max_tokens=24, stream=True) if c.choices]
    assert "".join(parts) == full.choices[0].message.content


def test_completions(client, model):
    r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert r.choices[0].text
    assert r.usage.completion_tokens == 8 and r.choices[0].finish_reason == "length"
    chunks = list(client.completions.create(model=model, prompt="One, two, three,", max_tokens=6,
                                            temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == client.completions.create(
        model=model, prompt="One, two, three,", max_tokens=6, temperature=0).choices[0].text


def test_stop_strings(client, model):
    r = client.completions.create(model=model, prompt="1, 2, 3, 4, 5, 6,", max_tokens=30, temperature=0,
                                  stop=["9"])
    assert "9" not in r.choices[0].text and r.choices[0].finish_reason == "stop"


def test_same_seed_same_text(client, model):
    msgs = [{"role": "user", "content": "Write a short poem about the sea."}]
    a = client.chat.completions.create(model=model, messages=msgs, temperature=0.8, seed=1234, max_tokens=30)
    b = client.chat.completions.create(model=model, messages=msgs, temperature=0.8, seed=1234, max_tokens=30)
    c = client.chat.completions.create(model=model, messages=msgs, temperature=0.8, seed=99, max_tokens=30)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert c.choices[0].message.content != a.choices[0].message.content


SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string"}, "population": {"type": "integer"}, "capital": {"type": "boolean"}},
    "required": ["city", "population", "capital"], "additionalProperties": False}


def test_json_schema_output(client, model):
    r = client.chat.completions.create(
        model=model, temperature=0, max_tokens=80,
        messages=[SYSTEM, {"role": "user", "content": "Describe Paris as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}})
    jsonschema.validate(json.loads(r.choices[0].message.content), SCHEMA)


def test_json_object_output(client, model):
    r = client.chat.completions.create(model=model, temperature=0, max_tokens=300,
                                       messages=[SYSTEM, {"role": "user", "content": "Give me a JSON object with a dog's name and age."}],
                                       response_format={"type": "json_object"})
    print(r.choices[0].message.content)
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content), dict)


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_tool_call(client, model, choice):
    r = client.chat.completions.create(model=model, temperature=0, max_tokens=60, tools=TOOLS, tool_choice=choice,
                                       messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls and msg.tool_calls[0].function.name == "get_weather"
    args = json.loads(msg.tool_calls[0].function.arguments)
    assert isinstance(args["city"], str)


def test_tool_result_round_trip(client, model):
    r = client.chat.completions.create(model=model, temperature=0, max_tokens=30, tools=TOOLS, messages=[
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"}])
    assert r.choices[0].message.content is not None


def test_logprobs(client, model):
    r = client.chat.completions.create(model=model, temperature=0, max_tokens=5, logprobs=True, top_logprobs=3,
                                       messages=[{"role": "user", "content": "Hello"}])
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens or len(content) >= 1
    first = content[0]
    assert first.logprob <= 0 and len(first.top_logprobs) == 3
    assert first.top_logprobs[0].logprob >= first.top_logprobs[-1].logprob
    assert abs(first.top_logprobs[0].logprob - first.logprob) < 1e-4  # greedy picks the argmax
    c = client.completions.create(model=model, prompt="Hello", max_tokens=3, temperature=0, logprobs=2)
    assert len(c.choices[0].logprobs.token_logprobs) == 3


def test_embeddings(client, model):
    r = client.embeddings.create(model=model, input=["hello world", "bonjour le monde"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 576   # SmolLM2-135M hidden size
    norm = sum(x * x for x in r.data[0].embedding) ** 0.5
    assert abs(norm - 1.0) < 1e-3


def test_models_lists_served(client, model):
    assert [m.id for m in client.models.list().data] == [model]
    assert client.models.retrieve(model).id == model


def _raw(server, body, **kw):
    return httpx.post(server.base_url + "/v1/chat/completions", content=body,
                      headers={"content-type": "application/json", **kw.pop("headers", {})}, timeout=60, **kw)


BAD = [
    ("malformed json", b'{"model": "x", "messages": [', 400, None),
    ("wrong type", json.dumps({"model": "smollm2-135m-instruct", "messages": "hi"}).encode(), 400, "messages"),
    ("temperature range", json.dumps({"model": "smollm2-135m-instruct", "temperature": 5,
                                      "messages": [{"role": "user", "content": "hi"}]}).encode(), 400, "temperature"),
    ("top_p range", json.dumps({"model": "smollm2-135m-instruct", "top_p": 0,
                                "messages": [{"role": "user", "content": "hi"}]}).encode(), 400, "top_p"),
    ("empty messages", json.dumps({"model": "smollm2-135m-instruct", "messages": []}).encode(), 400, "messages"),
    ("unknown model", json.dumps({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}).encode(),
     404, "model"),
    ("bad schema", json.dumps({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}],
                               "response_format": {"type": "json_schema", "json_schema": {
                                   "name": "x", "schema": {"type": "not-a-type"}}}}).encode(), 400, None),
    ("too long", json.dumps({"model": "smollm2-135m-instruct",
                             "messages": [{"role": "user", "content": "word " * 5000}]}).encode(), 400, "messages"),
    ("max_tokens too large", json.dumps({"model": "smollm2-135m-instruct", "max_tokens": 100000,
                                         "messages": [{"role": "user", "content": "hi"}]}).encode(), 400, None),
]


@pytest.mark.parametrize("name,body,status,param", BAD, ids=[b[0] for b in BAD])
def test_bad_input_then_good(server, client, model, name, body, status, param):
    r = _raw(server, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if param:
        assert err["param"] == param
    assert r.headers["x-request-id"]
    ok = client.chat.completions.create(model=model, max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    assert ok.choices[0].message.content is not None


def test_token_prompt_and_bad_token_ids(server, client, model):
    r = client.completions.create(model=model, prompt=[1, 4093, 198], max_tokens=3, temperature=0)
    assert r.usage.prompt_tokens == 3
    bad = httpx.post(server.base_url + "/v1/completions", json={"model": model, "prompt": [10**9]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "prompt"
    bad = httpx.post(server.base_url + "/v1/completions", json={"model": model, "prompt": "x",
                                                                "logit_bias": {"99999999": 5}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "logit_bias"


def test_unknown_model_code(server):
    r = _raw(server, json.dumps({"model": "nope", "messages": [{"role": "user", "content": "x"}]}).encode())
    assert r.json()["error"]["code"] == "model_not_found"


def test_oversized_body(server, client, model):
    r = _raw(server, b"{" + b" " * (5 * 1024 * 1024) + b"}")
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert client.models.list().data


def test_openai_client_error_type(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="smollm2-135m-instruct", messages=[])


def test_request_id_echo_and_safety(server):
    r = httpx.get(server.base_url + "/health", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = httpx.get(server.base_url + "/health", headers={"x-request-id": "bad id\twith stuff"})
    assert r.headers["x-request-id"].startswith("req-")


def test_disconnect_frees_generation(server, model):
    body = {"model": model, "stream": True, "max_tokens": 2000, "ignore_eos": True,
            "messages": [{"role": "user", "content": "Tell me a very long story."}]}
    with httpx.Client(timeout=60) as c, c.stream("POST", server.base_url + "/v1/chat/completions", json=body) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i > 5:
                break
    import time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        load = httpx.get(server.base_url + "/ready").json()["load"][model]
        if load["running"] == 0 and load["kv_used"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"generation still running after disconnect: {load}")


def test_queue_time_is_observed(server, client, model):
    def count() -> float:
        for line in httpx.get(server.base_url + "/metrics").text.splitlines():
            if line.startswith("deeplocal_request_queue_time_seconds_count") and model in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    client.chat.completions.create(model=model, max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    assert count() == before + 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_declared_json_is_refused(server, model, content_type):
    """What a web page can make a browser send cross-site without a preflight is not served."""
    body = json.dumps({"model": model, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
    headers = {"Origin": "https://evil.example"} | ({"content-type": content_type} if content_type else {})
    r = httpx.post(server.base_url + "/v1/chat/completions", content=body, headers=headers, timeout=60)
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    ok = _raw(server, body.encode(), headers={"content-type": "application/vnd.api+json; charset=utf-8"})
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] is not None
