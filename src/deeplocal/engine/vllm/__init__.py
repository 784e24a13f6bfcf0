"""vLLM behind deeplocal: `vllm serve` as supervised children (GPU, tensor/pipeline parallel, Ray).

Modules: config (VllmSettings), args (the command line), supervisor (one child's lifecycle),
stats (/metrics -> BackendStats), replicas (several children, routed by load), backend (VllmBackend),
ray (the multi-node layout).
"""
