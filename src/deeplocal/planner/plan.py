"""`plan(request) -> PlanResult`: memory, fitting hardware, expected speed and engine settings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from deeplocal.models.catalog import is_bundled_name
from deeplocal.planner.engine_settings import EngineSettings, deeplocal_yaml, engine_settings
from deeplocal.planner.errors import IncompatibleOptions
from deeplocal.planner.fit import Fit, FitInputs, smallest_fit
from deeplocal.planner.gpus import GPUS, Device
from deeplocal.planner.memory import GIB, DeviceMemory, kv_bytes_per_token, weight_bytes
from deeplocal.planner.params import count_params
from deeplocal.planner.precisions import (
    Compute,
    Format,
    KvDtype,
    Precision,
    kv_dtype_from_name,
    precision_from_name,
)
from deeplocal.planner.specs import ModelSpec
from deeplocal.planner.throughput import DecodeEstimate, Layout, PrefillEstimate, decode, prefill

ESTIMATES = (
    ("weights and KV cache bytes are computed exactly from the architecture and format; activations, "
     "engine workspace and framework overhead are estimates"),
    "speeds are roofline estimates (datasheet peaks x 80% bandwidth, 50-60% compute), not measurements",
    "prices are typical street prices per card",
)


@dataclass(frozen=True, slots=True)
class PlanRequest:
    model: ModelSpec
    precision: str = "bf16"
    kv_dtype: str = "fp16"
    context: int = 8192
    concurrency: int = 1
    prompt_tokens: int | None = None  # default: half the context, at most 2048
    output_tokens: int = 256
    devices: tuple[Device, ...] = ()  # default: the whole GPU catalog
    gpu_memory_utilization: float = 0.90
    max_devices_per_node: int | None = None
    max_nodes: int = 4
    host_ram_gib: float = 512.0
    host_bandwidth_gbs: float = 60.0
    custom_precision: Precision | None = None  # e.g. measured from a GGUF file; overrides `precision`
    source: str = ""  # what deeplocal.yaml's models[].source should say


@dataclass(frozen=True, slots=True)
class DeviceOption:
    device: Device
    engine: str
    precision: Precision
    kv: KvDtype
    fit: Fit
    decode_single: DecodeEstimate
    decode_target: DecodeEstimate
    prefill: PrefillEstimate
    settings: EngineSettings
    config_yaml: str
    notes: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        return self.fit.memory.fits and self.fit.max_concurrency > 0

    @property
    def memory(self) -> DeviceMemory:
        return self.fit.memory

    @property
    def price_usd(self) -> int:
        return self.device.price_usd * self.fit.n_devices

    @property
    def label(self) -> str:
        return f"{self.fit.n_devices} x {self.device.name}"

    def to_dict(self) -> dict[str, object]:
        f = self.fit
        return {
            "device": self.device.name, "engine": self.engine, "fits": self.fits,
            "precision": self.precision.name, "kv_dtype": self.kv.name,
            "devices": f.n_devices, "tensor_parallel": f.tp, "pipeline_parallel": f.pp, "nodes": f.nodes,
            "offload": f.offload_to or None, "memory_per_device": f.memory.to_dict(),
            "max_concurrency": f.max_concurrency, "price_usd": self.price_usd,
            "power_w": self.device.tdp_w * f.n_devices,
            "decode_single": self.decode_single.to_dict(), "decode_target": self.decode_target.to_dict(),
            "prefill": self.prefill.to_dict(), "settings": self.settings.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class PlanResult:
    request: PlanRequest
    precision: Precision
    params_total: int
    params_active: int
    weights_bytes: int
    kv_bytes_per_token: float
    kv_bytes_target: int  # concurrency x context
    options: tuple[DeviceOption, ...]
    estimates: tuple[str, ...] = field(default=ESTIMATES)

    @property
    def recommended(self) -> DeviceOption | None:
        """The fewest nodes, then the cheapest, of the GPU options that fit without offload; then those
        with offload; then a CPU-only host."""
        fitting = [o for o in self.options if o.fits]
        for pool in ([o for o in fitting if not o.fit.offload_to and not o.device.is_cpu],
                     [o for o in fitting if not o.device.is_cpu],
                     fitting):
            if pool:
                return min(pool, key=lambda o: (o.fit.nodes, o.price_usd, o.fit.n_devices))
        return None

    def option(self, device_name: str) -> DeviceOption:
        for o in self.options:
            if o.device.name == device_name:
                return o
        raise KeyError(device_name)

    def to_dict(self) -> dict[str, object]:
        r = self.request
        rec = self.recommended
        return {
            "model": r.model.name, "precision": self.precision.name, "kv_dtype": r.kv_dtype,
            "context": r.context, "concurrency": r.concurrency,
            "params_total": self.params_total, "params_active": self.params_active,
            "memory": {
                "weights_gib": round(self.weights_bytes / GIB, 3),
                "kv_bytes_per_token": round(self.kv_bytes_per_token, 1),
                "kv_target_gib": round(self.kv_bytes_target / GIB, 3),
                "weights_plus_kv_gib": round((self.weights_bytes + self.kv_bytes_target) / GIB, 3),
            },
            "recommended": rec.device.name if rec else None,
            "options": [o.to_dict() for o in self.options],
            "estimates": list(self.estimates),
        }


_LLAMACPP_EQUIVALENT = {Compute.FP8: "q8_0", Compute.INT8: "q8_0"}


def _engine_choice(req: PlanRequest, device: Device, precision: Precision,
                   kv: KvDtype) -> tuple[str, Precision, KvDtype, list[str]]:
    notes: list[str] = []
    engine = "llamacpp" if device.is_cpu or precision.format is Format.GGUF else "vllm"
    quantized_hf = precision.compute in _LLAMACPP_EQUIVALENT or precision.name.startswith("int4")
    if engine == "llamacpp" and precision.format is Format.HF and quantized_hf:
        sub = precision_from_name(_LLAMACPP_EQUIVALENT.get(precision.compute, "q4_k_m"))
        notes.append(f"llama.cpp runs GGUF: {precision.name} priced as {sub.name}")
        precision = sub
    if engine == "llamacpp" and kv.llamacpp_name is None:
        notes.append(f"llama.cpp has no {kv.name} KV cache: q8_0 used")
        kv = kv_dtype_from_name("q8_0")
    if engine == "vllm" and kv.vllm_name is None:
        notes.append(f"vLLM has no {kv.name} KV cache: fp8 used")
        kv = kv_dtype_from_name("fp8")
    if engine == "vllm" and precision.compute is Compute.FP8 and not device.fp8_tflops:
        notes.append("no FP8 tensor cores: FP8 weights run as W8A16 (Marlin) at BF16 speed")
    if engine == "vllm" and device.vendor == "amd":
        notes.append("vLLM on ROCm")
    if engine == "vllm" and device.vendor == "huawei":
        notes.append("needs vllm-ascend (or MindIE); AWQ/GPTQ/FP8 kernels differ on Ascend")
    return engine, precision, kv, notes


def _default_source(spec: ModelSpec, engine: str, precision: Precision) -> str:
    """vLLM takes a Hugging Face id; llama.cpp a store id, a catalog name or a GGUF path."""
    if engine == "vllm":
        return spec.hf_repo or spec.name
    if is_bundled_name(spec.name):
        return spec.name
    return f"{spec.name}-{precision.name}"


def _option(req: PlanRequest, device: Device, precision: Precision, kv_req: KvDtype) -> DeviceOption:
    engine, prec, kv, notes = _engine_choice(req, device, precision, kv_req)
    inp = FitInputs(req.model, prec, kv, engine, req.context, req.concurrency, req.gpu_memory_utilization,
                    req.max_devices_per_node, req.max_nodes, req.host_ram_gib, req.host_bandwidth_gbs)
    fit = smallest_fit(inp, device)
    if fit.offload_to:
        notes.append(f"{fit.memory.offloaded / GIB:.1f} GiB of weights per device stay in "
                     f"{'host RAM' if fit.offload_to == 'ram' else 'SSD (mmap)'} and stream at "
                     f"~{fit.offload_gbs:.0f} GB/s every step: decode is bounded by that")
    if not fit.memory.fits:
        notes.append("does not fit at the requested context and concurrency")
    lay = Layout(device, fit.tp, fit.pp, fit.memory.offloaded, fit.offload_gbs or 25.0)
    prompt = req.prompt_tokens or min(req.context // 2, 2048)
    kv_len = min(req.context, prompt + req.output_tokens // 2)
    batch = max(1, min(req.concurrency, fit.max_concurrency or 1))
    settings = engine_settings(inp, fit)
    source = req.source or _default_source(req.model, engine, prec)
    return DeviceOption(
        device=device, engine=engine, precision=prec, kv=kv, fit=fit,
        decode_single=decode(req.model, prec, kv, lay, batch=1, kv_len=kv_len),
        decode_target=decode(req.model, prec, kv, lay, batch=batch, kv_len=kv_len),
        prefill=prefill(req.model, prec, lay, prompt_tokens=prompt),
        settings=settings,
        config_yaml=deeplocal_yaml(inp, fit, settings, source=source, model_id=req.model.name),
        notes=tuple(notes),
    )


def plan(request: PlanRequest) -> PlanResult:
    """Plan a model on every requested device type. Pure: no I/O, same request -> same result."""
    if request.context < 16 or request.concurrency < 1:
        raise IncompatibleOptions("context must be >= 16 and concurrency >= 1", param="context")
    precision = request.custom_precision or precision_from_name(request.precision)
    kv = kv_dtype_from_name(request.kv_dtype)
    devices = request.devices or GPUS
    counts = count_params(request.model)
    kv_tok = kv_bytes_per_token(request.model, kv)
    options = tuple(_option(request, d, precision, kv) for d in devices)
    return PlanResult(
        request=replace(request, devices=tuple(devices)), precision=precision,
        params_total=counts.total, params_active=counts.active,
        weights_bytes=weight_bytes(request.model, precision).total, kv_bytes_per_token=kv_tok,
        kv_bytes_target=int(kv_tok * request.context * request.concurrency), options=options,
    )
