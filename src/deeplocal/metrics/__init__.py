"""Observability: Prometheus metrics (requests, engines, GPUs, host, energy) and structured logs."""
