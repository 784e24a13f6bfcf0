"""Where and how the engine runs: GPUs per pod, nodes per replica and the engine command line.

`plan: auto` asks deeplocal's planner (`deeplocal.planner.plan`) for the smallest layout that fits the
model at `maxContext` x `concurrency`; `plan: manual` takes `spec.gpus` as given. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from deeplocal.config import ConfigError
from deeplocal.deploy.errors import DeploySpecError
from deeplocal.deploy.spec import LLMDeploymentSpec
from deeplocal.errors import DeeplocalError
from deeplocal.planner.gpus import gpu_from_name
from deeplocal.planner.plan import DeviceOption, PlanRequest, plan
from deeplocal.planner.specs import model_from_name

MODELS_MOUNT = "/models"
ENGINE_PORT = 8000
MAX_LLAMACPP_SEQS = 16


@dataclass(frozen=True, slots=True)
class EngineLayout:
    engine: str                     # "vllm" | "llamacpp"
    gpus_per_pod: int               # 0 for llamacpp
    nodes: int                      # pods per engine replica (>1: LeaderWorkerSet + Ray)
    tensor_parallel: int
    pipeline_parallel: int
    device: str | None              # planner GPU name, for the node selector hint and the status
    vllm_flags: tuple[tuple[str, str | None], ...] = ()
    llamacpp: tuple[tuple[str, int], ...] = ()   # deeplocal.yaml `engine:` settings
    planned: bool = False
    summary: str = ""


def model_path(spec: LLMDeploymentSpec) -> str:
    """What the engine loads: a path as given, else the store folder the init step fills."""
    src = spec.model.source
    return src if src.startswith("/") else f"{MODELS_MOUNT}/{spec.model.name}"


def needs_import(spec: LLMDeploymentSpec) -> bool:
    """A hub repo (ORG/NAME) is pulled into the model volume by an init step; paths and catalog names
    (the bundled model is inside the image) are not."""
    return "/" in spec.model.source and not spec.model.source.startswith("/")


def _auto_option(spec: LLMDeploymentSpec) -> DeviceOption:
    gpus = spec.gpus
    try:
        model = model_from_name(spec.model.architecture or spec.model.name)
        devices = (gpu_from_name(gpus.type),) if gpus and gpus.type else ()
        result = plan(PlanRequest(model=model, precision=spec.precision, context=spec.max_context,
                                  concurrency=spec.concurrency, devices=devices,
                                  max_devices_per_node=gpus.per_node if gpus else None,
                                  source=spec.model.source))
    except DeeplocalError as exc:
        raise DeploySpecError([f"plan: auto failed: {exc.message}"]) from None
    option = result.options[0] if devices else result.recommended
    if option is None or not option.fits or option.fit.offload_to:
        where = f"{option.label}" if option else "any catalogued GPU"
        raise DeploySpecError([(f"plan: auto found no layout: {spec.model.name} at {spec.precision}, context "
                                f"{spec.max_context} x {spec.concurrency} does not fit on {where} without "
                                "offload; lower maxContext/concurrency, pick a smaller precision or more GPUs")])
    if option.engine != "vllm":
        raise DeploySpecError([(f"plan: auto chose {option.engine} on {option.device.name}; engine vllm "
                                "needs a GPU type (spec.gpus.type)")])
    if gpus and "count" in gpus.model_fields_set and option.fit.n_devices > gpus.count:
        raise DeploySpecError([(f"plan: auto needs {option.fit.n_devices} x {option.device.name} per replica "
                                f"but spec.gpus.count caps it at {gpus.count}")])
    return option


def _auto_layout(spec: LLMDeploymentSpec) -> EngineLayout:
    o = _auto_option(spec)
    f = o.fit
    per_pod = f.tp * max(1, f.pp // f.nodes)
    return EngineLayout(
        engine="vllm", gpus_per_pod=per_pod, nodes=f.nodes, tensor_parallel=f.tp, pipeline_parallel=f.pp,
        device=o.device.name, vllm_flags=o.settings.vllm_flags, planned=True,
        summary=(f"{o.label} (TP{f.tp} PP{f.pp}, {f.nodes} node(s)), up to {f.max_concurrency} sequences "
                 f"of {spec.max_context} tokens, ~{o.decode_single.tokens_per_s_per_seq:.0f} tok/s per "
                 "sequence (planner estimate)"),
    )


def _manual_layout(spec: LLMDeploymentSpec) -> EngineLayout:
    g = spec.gpus
    assert g is not None  # checked by semantic_problems
    if g.count > g.per_node and g.count % g.per_node:
        raise DeploySpecError([(f"spec.gpus.count {g.count} spans nodes of {g.per_node} GPUs: it must be a "
                                "multiple of spec.gpus.perNode (one pipeline stage per node)")])
    nodes = max(1, g.count // g.per_node)
    tp = min(g.count, g.per_node)
    flags: list[tuple[str, str | None]] = [("--tensor-parallel-size", str(tp))]
    if nodes > 1:
        flags.append(("--pipeline-parallel-size", str(nodes)))
    flags += [("--max-model-len", str(spec.max_context)), ("--max-num-seqs", str(spec.concurrency))]
    return EngineLayout(engine="vllm", gpus_per_pod=tp, nodes=nodes, tensor_parallel=tp, pipeline_parallel=nodes,
                        device=g.type, vllm_flags=tuple(flags),
                        summary=f"{g.count} GPU(s) per replica as given (TP{tp} PP{nodes})")


def _llamacpp_layout(spec: LLMDeploymentSpec) -> EngineLayout:
    seqs = min(spec.concurrency, MAX_LLAMACPP_SEQS)
    settings = (("n_ctx", spec.max_context * seqs), ("max_num_seqs", seqs), ("max_queue", 4 * seqs))
    return EngineLayout(engine="llamacpp", gpus_per_pod=0, nodes=1, tensor_parallel=1, pipeline_parallel=1,
                        device=None, llamacpp=settings,
                        summary=f"llama.cpp in the gateway pods, {seqs} sequences of {spec.max_context} tokens")


def engine_layout(spec: LLMDeploymentSpec) -> EngineLayout:
    if spec.engine == "llamacpp":
        return _llamacpp_layout(spec)
    return _auto_layout(spec) if spec.plan == "auto" else _manual_layout(spec)


def vllm_argv(spec: LLMDeploymentSpec, layout: EngineLayout) -> list[str]:
    """`vllm serve` for an engine pod, built and checked by deeplocal's own vLLM argument builder.

    The builder insists on a loopback child (deeplocal supervises it locally); in a pod the engine must
    listen on the pod address, and the NetworkPolicy admits only the gateway, so the host is swapped.
    """
    from deeplocal.engine.vllm.args import ServeTarget, build_serve_argv, settings_from_flags

    extra = {"nodes": layout.nodes, "distributed_executor_backend": "ray"} if layout.nodes > 1 else {}
    try:
        settings = settings_from_flags(layout.vllm_flags, **extra)
        argv = build_serve_argv(settings, ServeTarget(model=model_path(spec), served_name=spec.model.name,
                                                       port=ENGINE_PORT))
    except (ConfigError, ValueError) as exc:
        raise DeploySpecError([f"engine arguments: {exc}"]) from None
    host_at = argv.index("--host") + 1
    argv[host_at] = "0.0.0.0"
    return argv
