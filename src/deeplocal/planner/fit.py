"""Find the smallest layout of one device type that holds a model at a context and concurrency.

Order of preference: one device; tensor parallel 2, 4, 8 within a node; pipeline stages across 2..N
nodes; and only then weights offloaded to host RAM (or, for llama.cpp, left on SSD via mmap).
"""

from __future__ import annotations

from dataclasses import dataclass

from deeplocal.planner.gpus import Device
from deeplocal.planner.memory import (
    GIB,
    DeviceMemory,
    framework_bytes,
    kv_bytes_per_token_per_device,
    llamacpp_compute_bytes,
    vllm_activation_bytes,
    weight_bytes,
)
from deeplocal.planner.precisions import KvDtype, Precision
from deeplocal.planner.specs import ModelSpec

TP_SIZES = (1, 2, 4, 8, 16)
CPU_RAM_HEADROOM = 0.90  # leave 10% of RAM to the OS and page cache
LLAMACPP_GPU_HEADROOM = 0.95
SSD_GBS = 5.0  # NVMe sequential read, weights streamed by mmap when RAM is short (estimate)


@dataclass(frozen=True, slots=True)
class FitInputs:
    spec: ModelSpec
    precision: Precision
    kv: KvDtype
    engine: str  # "vllm" | "llamacpp"
    context: int
    concurrency: int
    gpu_memory_utilization: float = 0.90
    max_devices_per_node: int | None = None
    max_nodes: int = 4
    host_ram_gib: float = 512.0
    host_bandwidth_gbs: float = 60.0


@dataclass(frozen=True, slots=True)
class Fit:
    device: Device
    tp: int
    pp: int
    memory: DeviceMemory
    max_concurrency: int  # sequences of `context` tokens the KV budget holds
    offload_to: str = ""  # "" | "ram" | "ssd"
    offload_gbs: float = 0.0
    layer_split: bool = False  # llama.cpp: layers split over devices in one host (pp = devices)

    @property
    def n_devices(self) -> int:
        return self.tp * self.pp

    @property
    def nodes(self) -> int:
        """vLLM places one pipeline stage per node; llama.cpp splits layers inside one host."""
        return 1 if self.layer_split else self.pp


def batched_tokens(inp: FitInputs, device: Device) -> int:
    """Tokens per forward step: vLLM's default chunked-prefill budget, llama.cpp's micro-batch."""
    if inp.engine == "llamacpp":
        return 512
    return 8192 if device.memory_gib >= 70 else 2048


def device_memory(inp: FitInputs, device: Device, *, tp: int, pp: int, offloaded: int = 0) -> DeviceMemory:
    n = tp * pp
    spec = inp.spec
    weights = weight_bytes(spec, inp.precision).total // n
    kv_tok = kv_bytes_per_token_per_device(spec, inp.kv, tp=tp, pp=pp)
    kv = int(kv_tok * inp.context * inp.concurrency)
    if inp.engine == "vllm":
        acts = vllm_activation_bytes(spec, tp=tp, batched_tokens=batched_tokens(inp, device),
                                     max_seqs=max(inp.concurrency, 1))
        budget = device.memory_gib * GIB * inp.gpu_memory_utilization
    else:
        acts = llamacpp_compute_bytes(spec, n_ctx=inp.context * inp.concurrency)  # one per device
        headroom = CPU_RAM_HEADROOM if device.is_cpu else LLAMACPP_GPU_HEADROOM
        budget = device.memory_gib * GIB * headroom
    frame = framework_bytes(engine=inp.engine, is_cpu=device.is_cpu, parallel=n > 1, vocab=spec.vocab)
    return DeviceMemory(capacity=int(device.memory_gib * GIB), budget=int(budget), weights=weights - offloaded,
                        kv=kv, activations=acts, framework=frame, offloaded=offloaded)


def max_concurrency(inp: FitInputs, mem: DeviceMemory, *, tp: int, pp: int) -> int:
    per_seq = kv_bytes_per_token_per_device(inp.spec, inp.kv, tp=tp, pp=pp) * inp.context
    return max(0, int(mem.kv_budget // per_seq)) if per_seq else 0


def candidate_layouts(inp: FitInputs, device: Device) -> list[tuple[int, int]]:
    """(tp, pp) pairs from smallest to largest that the engine can run on this device type."""
    if device.is_cpu:
        return [(1, 1)]
    per_node = min(device.per_node, inp.max_devices_per_node or device.per_node)
    heads = inp.spec.attention.n_heads
    tps = [t for t in TP_SIZES if t <= per_node and (inp.engine != "vllm" or heads % t == 0)]
    if inp.engine != "vllm":  # llama.cpp splits layers across the GPUs of one host
        return [(1, t) for t in tps]
    layouts = [(t, 1) for t in tps]
    top = tps[-1]
    layouts += [(top, p) for p in range(2, inp.max_nodes + 1) if p <= inp.spec.n_layers]
    return layouts


def _fit_of(inp: FitInputs, device: Device, tp: int, pp: int, offloaded: int = 0, **kw: object) -> Fit:
    mem = device_memory(inp, device, tp=tp, pp=pp, offloaded=offloaded)
    return Fit(device, tp, pp, mem, max_concurrency(inp, mem, tp=tp, pp=pp),  # type: ignore[arg-type]
               layer_split=inp.engine == "llamacpp", **kw)


def _offload(inp: FitInputs, device: Device, tp: int, pp: int) -> Fit | None:
    """Keep the excess weights in host RAM (vLLM --cpu-offload-gb, llama.cpp partial n_gpu_layers)."""
    base = device_memory(inp, device, tp=tp, pp=pp)
    excess = base.used - base.budget
    if excess <= 0 or excess > base.weights:
        return None
    if device.is_cpu:
        return _fit_of(inp, device, tp, pp, excess, offload_to="ssd", offload_gbs=SSD_GBS)
    if excess * tp * pp <= inp.host_ram_gib * GIB * CPU_RAM_HEADROOM:
        gbs = device.host_link_gbs if inp.engine == "vllm" else inp.host_bandwidth_gbs
        return _fit_of(inp, device, tp, pp, excess, offload_to="ram", offload_gbs=gbs)
    if inp.engine == "llamacpp":
        return _fit_of(inp, device, tp, pp, excess, offload_to="ssd", offload_gbs=SSD_GBS)
    return None


def smallest_fit(inp: FitInputs, device: Device) -> Fit:
    """The first layout that fits; failing all, an offloaded one; failing that, the largest tried."""
    layouts = candidate_layouts(inp, device)
    for tp, pp in layouts:
        fit = _fit_of(inp, device, tp, pp)
        if fit.memory.fits:
            return fit
    one_node = [lay for lay in layouts if lay[1] == 1] if inp.engine == "vllm" else layouts
    offloaded = _offload(inp, device, *one_node[-1])
    if offloaded is not None:
        return offloaded
    tp, pp = layouts[-1]
    return _fit_of(inp, device, tp, pp)
