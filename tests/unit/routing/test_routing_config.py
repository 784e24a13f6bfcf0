"""RoutingSettings: the documented YAML shape parses; mistakes are refused with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from deeplocal.routing import config as routing_config
from deeplocal.routing.config import RoutingSettings


def docstring_example() -> dict:
    text = routing_config.__doc__ or ""
    return yaml.safe_load(text.split("\n", 2)[2])["routing"]


def test_the_documented_example_parses_with_safe_defaults():
    cfg = RoutingSettings(**docstring_example())
    assert cfg.upstreams["local"].allowed == {"public", "internal", "restricted"}
    assert cfg.upstreams["deepseek"].allowed == {"public", "internal"}
    assert [t.upstream for t in cfg.aliases["deepseek-chat"]] == ["local", "gpu-box", "deepseek"]
    assert cfg.upstreams["deepseek"].price.output_per_mtok == 1.10


def test_docs_example_parses():
    doc = Path(__file__).parents[3] / "docs" / "routing.md"
    block = doc.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = RoutingSettings(**yaml.safe_load(block)["routing"])
    assert cfg.aliases


def test_remote_may_receive_only_public_unless_told():
    cfg = RoutingSettings(upstreams={"r": {"kind": "remote", "base_url": "https://x.example/v1"}},
                          aliases={"m": ["r"]})
    assert cfg.upstreams["r"].allowed == {"public"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"upstreams": {"x": {"kind": "local"}}}, "exactly one of"),
        ({"upstreams": {"x": {"kind": "remote", "engine": "m"}}}, "needs `base_url`"),
        ({"upstreams": {"x": {"kind": "remote", "base_url": "ftp://h"}}}, "http://"),
        ({"upstreams": {}, "aliases": {"m": ["ghost"]}}, "unknown upstream 'ghost'"),
        ({"upstreams": {"x": {"kind": "local", "engine": "m", "colour": 1}}}, "Extra inputs"),
        ({"upstreams": {"x": {"kind": "local", "engine": "m", "may_receive": ["secret"]}}}, "restricted"),
        ({"aliases": {"m": []}}, "lists no upstreams"),
    ],
)
def test_mistakes_are_refused(data, message):
    with pytest.raises(ValidationError, match=message):
        RoutingSettings(**data)


def test_settings_are_frozen():
    cfg = RoutingSettings()
    with pytest.raises(ValidationError):
        cfg.policy = None  # type: ignore[misc]
