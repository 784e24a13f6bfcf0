from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from deeplocal.cli.models import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_import_list_info_quantize_compare_rm(tiny_gguf: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "models")
    code, out = run("import", str(tiny_gguf), "--id", "tiny", "--models-dir", store, "--json")
    assert code == 0, out
    assert json.loads(out)["id"] == "tiny"
    code, out = run("list", "--models-dir", store, "--json")
    assert [m["id"] for m in json.loads(out)] == ["tiny"]
    code, out = run("info", "tiny", "--models-dir", store)
    assert code == 0 and "architecture: llama" in out and "sha256" in out
    code, out = run("quantize", "tiny", "Q8_0", "--models-dir", store)
    assert code == 0 and "created tiny-q8_0" in out, out
    code, out = run("compare", "tiny", "tiny-q8_0", "--models-dir", store, "--ctx", "128", "--no-mc")
    assert code == 0, out
    assert out.splitlines()[0].startswith("| model | quant | file MB")
    assert "| tiny-q8_0 | Q8_0 |" in out
    cached = list((tmp_path / "models" / "tiny").glob("eval-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["model"] == "tiny"
    code, out = run("eval", "tiny", "--models-dir", store, "--ctx", "128", "--no-mc", "--json")
    assert code == 0 and json.loads(out)["seconds"] == json.loads(cached[0].read_text())["seconds"]
    code, out = run("rm", "tiny-q8_0", "--yes", "--models-dir", store)
    assert code == 0 and "removed tiny-q8_0" in out
    code, out = run("list", "--models-dir", store)
    assert "tiny-q8_0" not in out and "tiny" in out


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    store = str(tmp_path / "models")
    code, out = run("info", "no-such-model", "--models-dir", store)
    assert code == 1 and "error: model 'no-such-model' not found" in out
    folder = tmp_path / "hf"
    folder.mkdir()
    code, out = run("import", str(folder), "--models-dir", store)
    assert code == 1 and "no config.json" in out
    code, out = run("list", "--models-dir", store)
    assert code == 0 and "no models in" in out
