"""The operator image installs deeplocal with --no-deps plus a short pinned list (deploy/operator/Dockerfile):
the reconcile path must import nothing else (no llama.cpp, numpy, FastAPI, SQLAlchemy...)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = r"""
import importlib.abc, sys
ALLOWED = set(sys.argv[1].split(","))
STDLIB = set(sys.stdlib_module_names)

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in ALLOWED and top not in STDLIB and top != "deeplocal" and not top.startswith("_"):
            raise ImportError(f"operator image lacks {top}")
        return None

sys.meta_path.insert(0, Block())
import yaml
from deeplocal.deploy.reconcile import reconcile
from deeplocal.cli.deploy import app  # `deeplocal deploy render` in the operator image
doc = yaml.safe_load(open(sys.argv[2]))
assert reconcile(doc, now="t").ok
print("ok")
"""


def image_packages() -> set[str]:
    """Import names of the distributions the Dockerfile pins and of everything they require (as installed
    here), i.e. what `pip install` puts in the operator image besides deeplocal itself."""
    from importlib import metadata

    from packaging.requirements import Requirement

    text = (ROOT / "deploy/operator/Dockerfile").read_text()
    todo = list(re.findall(r"\s([A-Za-z][\w-]*)==", text))
    dists: set[str] = set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in dists:
            continue
        dists.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue   # e.g. `kubernetes`: used by operator.py only, not by the reconcile path
        for req in requires:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    tops = metadata.packages_distributions()
    return {top for top, owners in tops.items() if any(o.lower().replace("_", "-") in dists for o in owners)}


def test_reconcile_imports_only_what_the_operator_image_installs():
    allowed = ",".join(sorted(image_packages()))
    out = subprocess.run([sys.executable, "-c", PROBE, allowed, str(ROOT / "deploy/operator/example-llmdeployment.yaml")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
