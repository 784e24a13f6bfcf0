"""`deeplocal plan` through typer's CliRunner."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from deeplocal.cli.plan import app
from deeplocal.config import Settings

runner = CliRunner()


def test_help() -> None:
    out = runner.invoke(app, ["--help"])
    assert out.exit_code == 0 and "--matrix" in out.output and "--emit" in out.output


def test_json_plan_with_options_after_the_model() -> None:
    out = runner.invoke(app, ["deepseek-r1-distill-qwen-14b", "-p", "fp8", "-c", "16384", "-n", "4",
                              "-g", "h100", "-g", "l40s", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["precision"] == "fp8" and data["context"] == 16384
    assert [o["device"] for o in data["options"]] == ["h100-sxm", "l40s"]
    h100 = data["options"][0]
    assert h100["fits"] and h100["settings"]["vllm_flags"]["--quantization"] == "fp8"


def test_table_output_names_the_recommendation() -> None:
    out = runner.invoke(app, ["deepseek-v3", "-g", "h200", "-g", "h100"])
    assert out.exit_code == 0, out.output
    assert "recommended: 8 x h200" in out.output and "vllm serve deepseek-ai/DeepSeek-V3" in out.output
    assert "estimate:" in out.output


def test_emit_config_for_cpu_is_valid_settings() -> None:
    out = runner.invoke(app, ["smollm2-135m", "-p", "q4_1", "-g", "cpu", "--cpu-ram-gib", "16",
                              "--cpu-bandwidth-gbs", "20", "--cpu-cores", "2", "-c", "2048", "-n", "2",
                              "--emit", "config"])
    assert out.exit_code == 0, out.output
    settings = Settings(**yaml.safe_load(out.output))
    assert settings.engine.n_ctx == 4096 and settings.engine.n_threads == 2


def test_matrix_json() -> None:
    out = runner.invoke(app, ["--matrix", "--models", "deepseek-r1-distill-qwen-7b,deepseek-v3",
                              "-p", "bf16", "-p", "q4_k_m", "-g", "h100", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [(r["model"], r["precision"]) for r in rows] == [
        ("deepseek-r1-distill-qwen-7b", "bf16"), ("deepseek-r1-distill-qwen-7b", "q4_k_m"),
        ("deepseek-v3", "bf16"), ("deepseek-v3", "q4_k_m")]


def test_matrix_table() -> None:
    out = runner.invoke(app, ["--matrix", "-g", "h200"])
    assert out.exit_code == 0, out.output
    assert "deepseek-r1-distill-llama-70b" in out.output and "q4_k_m" in out.output


def test_from_config(tmp_path) -> None:
    cfg = {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 32,
           "num_hidden_layers": 16, "num_key_value_heads": 8, "vocab_size": 128256,
           "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    out = runner.invoke(app, ["--from-config", str(tmp_path / "config.json"), "-g", "a10", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["params_total"] == 1_235_814_400  # Llama-3.2-1B


def test_unknown_names_exit_2() -> None:
    assert runner.invoke(app, ["gpt-17"]).exit_code == 2
    assert runner.invoke(app, ["smollm2", "-g", "voodoo2"]).exit_code == 2


def test_list() -> None:
    out = runner.invoke(app, ["--list"])
    assert out.exit_code == 0 and "deepseek-v3" in out.output and "mi300x" in out.output
