"""`deeplocal doctor`: the GPU preflight judged from facts, the plain-HTTP warning, and the command."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import typer
from typer.testing import CliRunner

from deeplocal.cli.doctor import doctor, exposure_check
from deeplocal.config import ServerSettings
from deeplocal.engine.vllm.config import VllmSettings
from deeplocal.engine.vllm.preflight import GpuFacts, GpuInfo, gpu_checks, visible_gpus

H100 = 80 * 2**30
FOUR = tuple(GpuInfo(i, "NVIDIA H100 80GB HBM3", H100, f"GPU-{i}aaa") for i in range(4))
GOOD = GpuFacts(driver_version="550.54.15", cuda_driver_version=12040, gpus=FOUR, interfaces=("eth0", "lo"),
                shm_bytes=16 * 2**30, vllm_launcher="/opt/v/bin/python", vllm_version="0.33.0",
                torch_cuda="12.4", ray_found=True)


def with_(**changes) -> GpuFacts:
    return replace(GOOD, **changes)


def by_name(facts: GpuFacts, s: VllmSettings | None = None) -> dict:
    return {c.name: c for c in gpu_checks(facts, s or VllmSettings())}


def test_a_healthy_gpu_machine_passes_every_check():
    checks = by_name(GOOD, VllmSettings(tensor_parallel_size=4))
    assert {c.status for c in checks.values()} == {"ok"}
    assert "4 visible" in checks["gpus"].detail and "550.54.15" in checks["driver"].detail


def test_no_driver_explains_what_to_install_and_containers_get_their_own_hint():
    checks = by_name(GpuFacts(nvml_error="NVMLError_LibraryNotFound"))
    assert checks["driver"].status == "fail" and "install the NVIDIA driver" in checks["driver"].fix
    assert checks["cuda"].status == "skip" and checks["gpus"].status == "fail"
    in_container = by_name(GpuFacts(nvml_error="NVMLError_LibraryNotFound", device_nodes=True))
    assert "Container Toolkit" in in_container["driver"].fix


def test_a_driver_older_than_vllms_cuda_fails():
    check = by_name(with_(driver_version="525", cuda_driver_version=12000, torch_cuda="12.8"))["cuda"]
    assert check.status == "fail" and "12.8" in check.detail and "12.0" in check.detail


def test_cuda_visible_devices_limits_what_a_child_sees():
    assert [g.index for g in visible_gpus(with_(env={"CUDA_VISIBLE_DEVICES": "2,3"}))] == [2, 3]
    assert [g.index for g in visible_gpus(with_(env={"CUDA_VISIBLE_DEVICES": "GPU-1"}))] == [1]
    assert visible_gpus(with_(env={"CUDA_VISIBLE_DEVICES": ""})) == []
    assert [g.index for g in visible_gpus(with_(env={"CUDA_VISIBLE_DEVICES": "0,9,1"}))] == [0]


def test_too_few_visible_gpus_for_the_settings_fails_with_the_arithmetic():
    facts = with_(env={"CUDA_VISIBLE_DEVICES": "0,1"})
    check = by_name(facts, VllmSettings(replicas=2, tensor_parallel_size=2))["gpus"]
    assert check.status == "fail" and "need 4" in check.detail
    none = by_name(with_(env={"CUDA_VISIBLE_DEVICES": ""}))["gpus"]
    assert none.status == "fail" and "no GPU visible" in none.detail


def test_multi_node_needs_nccl_and_gloo_interfaces_and_host_ip():
    s = VllmSettings(nodes=2, tensor_parallel_size=4, pipeline_parallel_size=2)
    check = by_name(GOOD, s)["nccl"]
    assert check.status == "fail"
    for key in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "VLLM_HOST_IP"):
        assert key in check.detail
    env = {"NCCL_SOCKET_IFNAME": "eth0", "GLOO_SOCKET_IFNAME": "eth0", "VLLM_HOST_IP": "10.0.0.2"}
    assert by_name(with_(env=env), s)["nccl"].status == "ok"
    wrong = by_name(with_(env={**env, "NCCL_SOCKET_IFNAME": "ib7"}), s)["nccl"]
    assert wrong.status == "fail" and "matches no interface" in wrong.detail
    assert by_name(GOOD, s)["ray"].status == "ok"
    assert by_name(with_(ray_found=False), s)["ray"].status == "fail"


def test_small_shm_fails_only_when_workers_share_it():
    tiny = with_(shm_bytes=64 * 2**20)
    assert by_name(tiny)["shm"].status == "ok"
    check = by_name(tiny, VllmSettings(tensor_parallel_size=2))["shm"]
    assert check.status == "fail" and "--ipc=host" in check.fix


def test_missing_vllm_is_explained():
    assert by_name(with_(vllm_launcher=None))["vllm"].status == "fail"
    assert "not installed" in by_name(with_(vllm_version=None))["vllm"].detail


@pytest.mark.parametrize(("server", "status"), [
    ({}, "ok"),
    ({"host": "127.0.0.2"}, "ok"),
    ({"host": "0.0.0.0"}, "warn"),
    ({"host": "10.1.2.3", "tls_cert": "/nope/cert.pem"}, "fail"),
])
def test_plain_http_off_loopback_warns(server, status):
    check = exposure_check(ServerSettings(**server), auth_enabled=True)
    assert check.status == status
    if status == "warn":
        assert "unencrypted" in check.detail and "tls_cert" in check.fix


def test_tls_with_both_files_is_ok(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    check = exposure_check(ServerSettings(host="0.0.0.0", tls_cert=str(cert), tls_key=str(key)), auth_enabled=True)
    assert check.status == "ok" and "HTTPS" in check.detail


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("doctor")(doctor)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps `doctor` a named subcommand
        pass

    return app


@pytest.mark.parametrize("yaml,status,exit_code", [
    ("server:\n  host: 0.0.0.0\ngateway:\n  auth: true\n", "warn", 0),   # exposed plain HTTP, keys required
    ("server:\n  host: 0.0.0.0\n", "fail", 1),                            # serve refuses this: so does doctor
])
def test_command_judges_exposure_with_the_configured_auth(tmp_path, yaml, status, exit_code):
    config = tmp_path / "deeplocal.yaml"
    config.write_text(yaml)
    result = CliRunner().invoke(cli(), ["doctor", "--config", str(config), "--json"])
    report = json.loads(result.output)
    tls = next(c for c in report["checks"] if c["name"] == "tls")
    assert tls["status"] == status and result.exit_code == exit_code and report["ok"] == (exit_code == 0)


def test_command_reports_a_bad_config_and_exits_1(tmp_path):
    config = tmp_path / "deeplocal.yaml"
    config.write_text("server:\n  hots: 0.0.0.0\n")
    result = CliRunner().invoke(cli(), ["doctor", "--config", str(config)])
    assert result.exit_code == 1 and "unknown key 'server.hots'" in result.output


def test_gpu_probe_on_this_machine_explains_the_missing_driver(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli(), ["doctor", "--gpu"])
    if "[ok  ] driver" in result.output:
        pytest.skip("this machine has an NVIDIA driver")
    assert result.exit_code == 1
    assert "[FAIL] driver" in result.output and "fix: install the NVIDIA driver" in result.output
