"""Measure this host for a CPU-only plan: RAM, memory bandwidth and matmul rate (takes ~1 s)."""

from __future__ import annotations

import os
import time

import numpy as np

from deeplocal.planner.gpus import Device, cpu_device


def _ram_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


def _bandwidth_gbs(mib: int = 128, repeats: int = 3) -> float:
    """Best of a few large array copies: bytes read + bytes written per second."""
    src = np.ones(mib * 1024 * 1024 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9


def _tflops(n: int = 1024, repeats: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


def measure_cpu() -> Device:
    """A CPU device from measurements of this host (single-threaded copy: a lower bound on bandwidth)."""
    return cpu_device(ram_gib=round(_ram_gib(), 1), bandwidth_gbs=round(_bandwidth_gbs(), 1),
                      tflops=round(_tflops(), 3), cores=os.cpu_count() or 1)
