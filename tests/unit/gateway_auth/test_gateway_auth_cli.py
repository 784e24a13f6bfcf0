"""`deeplocal keys ...` end to end on a real SQLite file, checked through the Gateway."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from deeplocal.cli.keys import app
from deeplocal.gateway.auth import AuthenticationError
from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.principal import Limits
from deeplocal.gateway.service import Gateway

runner = CliRunner()


def cli(*args: str, url: str) -> dict | list:
    result = runner.invoke(app, [*args, "--database-url", url, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_create_list_rotate_revoke(db_url):
    created = cli("create", "--tenant", "acme", "--name", "ci bot", "--models", "smollm2,deepseek-*",
                  "--scopes", "inference", "--rpm", "60", "--tpm", "1000", "--monthly-tokens", "50000",
                  "--max-streams", "2", "--expires", "30d", "--data-class", "internal", url=db_url)
    assert created["key"].startswith(f"dl-{created['key_id']}-")
    assert created["models"] == ["smollm2", "deepseek-*"] and created["state"] == "active"
    listed = cli("list", url=db_url)
    assert [row["key_id"] for row in listed] == [created["key_id"]]
    assert created["key"] not in json.dumps(listed) and "secret_hash" not in listed[0]

    gateway = Gateway(GatewaySettings(auth=True, key_cache_ttl_s=0), db_url)
    try:
        principal = await gateway.authenticate(f"Bearer {created['key']}")
        assert principal.limits == Limits(rpm=60, tpm=1000, monthly_tokens=50000, max_streams=2)
        assert principal.data_class == "internal"
        rotated = cli("rotate", created["key_id"], url=db_url)
        assert rotated["rotated_from"] == created["key_id"]
        with pytest.raises(AuthenticationError, match="revoked"):
            await gateway.authenticate(f"Bearer {created['key']}")
        await gateway.authenticate(f"Bearer {rotated['key']}")
        cli("revoke", rotated["key_id"], url=db_url)
        with pytest.raises(AuthenticationError, match="revoked"):
            await gateway.authenticate(f"Bearer {rotated['key']}")
    finally:
        gateway.close()
    assert cli("list", url=db_url) == []
    assert len(cli("list", "--all", url=db_url)) == 2


def test_bad_input_exits_nonzero_with_a_message(db_url):
    for args in (["create", "--tenant", "acme", "--name", "x", "--scopes", "root"],
                 ["create", "--tenant", "acme", "--name", "x", "--rpm", "0"],
                 ["create", "--tenant", "acme", "--name", "x", "--expires", "yesterday"],
                 ["revoke", "0000000000000000"],
                 ["rotate", "0000000000000000"]):
        result = runner.invoke(app, [*args, "--database-url", db_url])
        assert result.exit_code == 1 and "error:" in result.output, (args, result.output)


def test_tenant_option_confines_revoke(db_url):
    theirs = cli("create", "--tenant", "globex", "--name", "x", url=db_url)
    result = runner.invoke(app, ["revoke", theirs["key_id"], "--tenant", "acme", "--database-url", db_url])
    assert result.exit_code == 1
    assert cli("list", "--tenant", "globex", url=db_url)[0]["state"] == "active"


def test_every_command_has_help():
    for command in ("create", "list", "revoke", "rotate"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "--database-url" in result.output
