"""`deeplocal deploy`: review what the operator would apply, print the CRD, print a `docker run` line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

app = typer.Typer(help="Deploy on Kubernetes or Docker: render manifests, the CRD, a docker run line.",
                  add_completion=False, no_args_is_help=True)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's deeplocal.yaml) as readable literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def _dump(docs: list[dict], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(docs, indent=2))
    else:
        typer.echo(yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False), nl=False)


@app.command("render")
def render_(
    file: Annotated[Path, typer.Option("--file", "-f", help="An LLMDeployment YAML (several documents allowed).",
                                       exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list instead of YAML documents.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Also print the status the operator would write.")] = False,
) -> None:
    """Print the manifests the operator would apply for an LLMDeployment, so you can review them first."""
    from deeplocal.deploy.reconcile import reconcile

    out: list[dict] = []
    failed = False
    for doc in yaml.safe_load_all(file.read_text(encoding="utf-8")):
        if not doc:
            continue
        result = reconcile(doc, now="1970-01-01T00:00:00Z")
        if not result.ok:
            failed = True
            name = (doc.get("metadata") or {}).get("name", "?")
            for cond in result.status["conditions"]:
                if cond["type"] == "Planned":
                    typer.secho(f"{name}: invalid: {cond['message']}", fg="red", err=True)
            continue
        out += list(result.manifests)
        if status:
            out.append({"status": result.status})
    _dump(out, as_json)
    if failed:
        raise typer.Exit(2)


@app.command("crd")
def crd_(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False) -> None:
    """Print the LLMDeployment CustomResourceDefinition (kubectl apply -f -)."""
    from deeplocal.deploy.crd import crd

    _dump([crd()], as_json)


@app.command("docker")
def docker_(
    print_: Annotated[bool, typer.Option("--print", help="Print the docker run line (the only mode: "
                                                         "deeplocal never runs docker for you).")] = True,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="deeplocal.yaml to mount.",
                                                exists=True, dir_okay=False)] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="The CUDA image with --gpus all.")] = False,
    image: Annotated[str | None, typer.Option(help="Image to run [default: the release image].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The argv as a JSON list.")] = False,
) -> None:
    """Show the `docker run` line for a config: loopback-only port, read-only root, no capabilities,
    secrets passed through from your environment by name."""
    from deeplocal.config import find_config_file, read_yaml
    from deeplocal.deploy.dockerrun import command_line, docker_run

    path = find_config_file(config)
    data = read_yaml(path) if path else {}
    argv = docker_run(data, path, gpu=gpu, image=image)
    if not (data.get("gateway") or {}).get("auth"):
        print("note: the container listens on 0.0.0.0, so deeplocal requires gateway.auth: true in the "
              "config (then create keys with `docker exec deeplocal deeplocal keys create`)", file=sys.stderr)
    typer.echo(json.dumps(argv) if as_json else command_line(argv))
