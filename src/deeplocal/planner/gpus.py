"""Accelerator catalog: memory, bandwidth, dense tensor throughput, links, power and a typical price.

Figures are vendors' datasheet values for dense (not 2:4 sparse) math. `memory_gib` is what the driver
reports as usable (nvidia-smi / rocm-smi), not the marketing figure: an "80 GB" H100 shows 79.6 GiB.
Prices are typical 2025 street prices per card in USD and only a rough guide: edit or pass your own.
"CPU only" has no fixed figures; build it with `cpu_device()` from numbers the user gives or measures.
"""

from __future__ import annotations

from dataclasses import dataclass

from deeplocal.planner.errors import UnknownGpu
from deeplocal.planner.precisions import Compute


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    memory_gib: float
    bandwidth_gbs: float  # memory bandwidth, GB/s (1e9 bytes)
    bf16_tflops: float  # dense
    fp8_tflops: float | None  # dense; None: no FP8 tensor cores
    int8_tops: float | None
    interconnect: str
    link_gbs: float  # per-device bandwidth to its peers within a node, GB/s
    tdp_w: int
    price_usd: int
    per_node: int = 8  # devices in a typical server
    host_link_gbs: float = 25.0  # effective PCIe bandwidth to host RAM (offload), GB/s
    vendor: str = "nvidia"
    is_cpu: bool = False
    cores: int = 0  # CPU only: physical cores (llama.cpp threads)
    aliases: tuple[str, ...] = ()

    def tflops(self, compute: Compute) -> float:
        """Dense TFLOP/s for the precision the matmuls run at (falls back to BF16 when unsupported)."""
        if compute is Compute.FP8 and self.fp8_tflops:
            return self.fp8_tflops
        if compute is Compute.INT8 and self.int8_tops:
            return self.int8_tops
        if compute is Compute.FP32:
            return self.bf16_tflops / 2
        return self.bf16_tflops


GPUS: tuple[Device, ...] = (
    Device("rtx-4090", 23.99, 1008, 165.2, 330.3, 660.6, "PCIe 4.0 x16 (no NVLink)", 25, 450, 1800,
           aliases=("4090",)),
    Device("a10", 22.49, 600, 125, None, 250, "PCIe 4.0 x16", 25, 150, 3000, per_node=4),
    Device("l40s", 44.99, 864, 362, 733, 733, "PCIe 4.0 x16", 25, 350, 8000),
    Device("a100-40gb", 39.39, 1555, 312, None, 624, "NVLink 3 (600 GB/s)", 300, 400, 9000,
           aliases=("a100-40",)),
    Device("a100-80gb", 79.15, 2039, 312, None, 624, "NVLink 3 (600 GB/s)", 300, 400, 15000,
           aliases=("a100", "a100-80")),
    Device("h20", 95.58, 4000, 148, 296, 296, "NVLink 4 (900 GB/s)", 450, 400, 13000, host_link_gbs=50),
    Device("h100-sxm", 79.65, 3350, 989, 1979, 1979, "NVLink 4 (900 GB/s)", 450, 700, 30000,
           host_link_gbs=50, aliases=("h100",)),
    Device("h100-pcie", 79.65, 2000, 756, 1513, 1513, "PCIe 5.0 x16 (NVLink bridge pairs)", 50, 350, 25000,
           host_link_gbs=50),
    Device("h200", 140.4, 4800, 989, 1979, 1979, "NVLink 4 (900 GB/s)", 450, 700, 35000, host_link_gbs=50,
           aliases=("h200-sxm",)),
    Device("b200", 179.1, 8000, 2250, 4500, 4500, "NVLink 5 (1.8 TB/s)", 900, 1000, 40000, host_link_gbs=50),
    Device("mi300x", 191.5, 5300, 1307, 2615, 2615, "Infinity Fabric (896 GB/s)", 448, 750, 15000,
           host_link_gbs=50, vendor="amd"),
    Device("ascend-910b", 64.0, 1600, 320, None, 640, "HCCS (392 GB/s)", 196, 400, 15000,
           vendor="huawei", aliases=("910b",)),
)


def gpu_names() -> tuple[str, ...]:
    return tuple(g.name for g in GPUS)


def gpu_from_name(name: str) -> Device:
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    for g in GPUS:
        if key == g.name or key in g.aliases:
            return g
    raise UnknownGpu(f"unknown GPU {name!r}; known: {', '.join(gpu_names())}, cpu", param="gpu")


def cpu_device(*, ram_gib: float, bandwidth_gbs: float, tflops: float = 1.0, cores: int = 8,
               price_usd: int = 0, tdp_w: int = 250) -> Device:
    """A CPU-only host: RAM as memory, its memory bandwidth, and its (measured or guessed) matmul rate."""
    return Device(f"cpu ({cores} cores)", ram_gib, bandwidth_gbs, tflops, None, None, "none", 0.0, tdp_w,
                  price_usd, per_node=1, host_link_gbs=bandwidth_gbs, vendor="cpu", is_cpu=True,
                  cores=cores, aliases=("cpu",))
