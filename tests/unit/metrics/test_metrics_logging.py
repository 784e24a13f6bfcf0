"""Structured JSON logs on the `deeplocal` logger: one line per request, no secrets, root untouched."""

from __future__ import annotations

import io
import json
import logging

import pytest

from deeplocal.metrics.config import MetricsSettings
from deeplocal.metrics.logging import configure_logging, log_request, redact, request_log_line
from deeplocal.metrics.registry import Metrics


@pytest.fixture
def restore_deeplocal_logger():
    logger = logging.getLogger("deeplocal")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_request_line_is_one_json_object(restore_deeplocal_logger):
    root = logging.getLogger()
    root_state = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    configure_logging("info", json=True, stream=stream)       # reconfiguring does not duplicate lines
    fields = request_log_line(request_id="req-1", principal_id="key_42", model="smol", upstream="local",
                              prompt_tokens=12, completion_tokens=30, latency_s=1.23456, status="200",
                              ttft_s=0.1, finish_reason="stop")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["logger"] == "deeplocal.access" and record["level"] == "info"
    assert {k: record[k] for k in ("request_id", "principal_id", "model", "upstream", "prompt_tokens",
                                   "completion_tokens", "status")} == {
        "request_id": "req-1", "principal_id": "key_42", "model": "smol", "upstream": "local",
        "prompt_tokens": 12, "completion_tokens": 30, "status": "200"}
    assert record["latency_ms"] == pytest.approx(1234.56) and record["ttft_ms"] == pytest.approx(100.0)
    assert fields["request_id"] == "req-1"
    assert (list(root.handlers), root.level) == root_state


def test_level_from_config_and_text_mode(restore_deeplocal_logger):
    stream = io.StringIO()
    configure_logging("warning", json=False, stream=stream)
    log = logging.getLogger("deeplocal.engine")
    log.info("hidden")
    log.warning("shown %d", 7)
    out = stream.getvalue()
    assert "hidden" not in out and "WARNING deeplocal.engine: shown 7" in out


def test_secrets_are_masked(restore_deeplocal_logger):
    stream = io.StringIO()
    configure_logging("debug", json=True, stream=stream)
    logging.getLogger("deeplocal.gateway").warning(
        "bad key sk-abcdefghijklmnop1234 from Authorization: Bearer dl-verysecretvalue99")
    line = json.loads(stream.getvalue())
    assert "abcdefghijklmnop" not in line["msg"] and "verysecret" not in line["msg"]
    assert line["msg"].count("[REDACTED]") == 2
    assert redact("no secrets here, sk-short") == "no secrets here, sk-short"


def test_log_request_from_timer_summary(restore_deeplocal_logger):
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    m = Metrics(MetricsSettings(gpu=False, host_metrics=False, rapl=False, max_label_values=1),
                backends=dict)
    m.request_started(model="first", upstream="local").finish(
        status="200", finish_reason="stop", prompt_tokens=1, completion_tokens=1)
    timer = m.request_started(model="second-model", upstream="local")
    timer.token(2)
    summary = timer.finish(status="200", finish_reason="length", prompt_tokens=5, completion_tokens=2)
    log_request(summary, request_id="req-9", principal_id=None)
    record = json.loads(stream.getvalue().splitlines()[-1])
    # the log names the real model even where the metric label was folded into "other"
    assert record["model"] == "second-model" and record["finish_reason"] == "length"
    assert record["completion_tokens"] == 2 and record["principal_id"] is None
    assert "prompt" not in record and "messages" not in record
